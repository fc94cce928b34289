// The reference's field (nerf-pytorch's NeRF module): positional encoding gamma(x), gamma(d) and the
// D x W skip MLP with the views head, on a backend's Mlp. It owns the encoded inputs: the ones of a
// forward that keeps its activations stay untouched until the backward (the MLP reads them there),
// so a pass without gradients in between (an occupancy-grid update, an early-stop pass) encodes
// into buffers of its own.
#include "fields.h"

#include "nerf/common.h"

#include <algorithm>

namespace nerf {

MlpLayout nerf_field_layout(const Config& cfg, bool fine, size_t offset, size_t first_param) {
	const EncodingSpec pts{3, cfg.multires, cfg.i_embed == -1};
	const EncodingSpec views{3, cfg.multires_views, cfg.i_embed == -1};
	MlpSpec spec;
	spec.depth = fine ? cfg.netdepth_fine : cfg.netdepth;
	spec.width = fine ? cfg.netwidth_fine : cfg.netwidth;
	spec.in_pts = encoded_width(pts);
	spec.in_views = cfg.use_viewdirs ? encoded_width(views) : 0;
	spec.use_viewdirs = cfg.use_viewdirs;
	// The reference's output_ch = 5 with a fine network; marching (occ_grid) has one network only.
	spec.output_ch = cfg.N_importance > 0 && !cfg.occ_grid ? 5 : 4;
	return make_mlp_layout(spec, offset, first_param);
}

namespace {

class NerfField final : public Field {
public:
	NerfField(Backend& backend, const MlpLayout& layout, const EncodingSpec& pts, const EncodingSpec& views,
	          size_t max_batch, Precision precision)
	    : m_backend(backend), m_layout(layout), m_pts(pts), m_views(views), m_max_batch(max_batch),
	      m_mlp(backend.create_mlp(layout, max_batch, precision)) {}

	const char* type() const override { return "nerf"; }
	int raw_width() const override { return m_layout.spec.raw_width(); }
	size_t offset() const override { return m_layout.offset; }
	size_t n_params() const override { return m_layout.n_params; }
	size_t n_floats() const override { return m_layout.n_floats; }
	size_t max_batch() const override { return m_max_batch; }
	const uint32_t* overflow_flag() const override { return m_mlp->overflow_flag(); }
	const MlpLayout& layout() const { return m_layout; }

	std::vector<ParamTensor> tensors(const std::string& prefix) const override {
		std::vector<ParamTensor> out;
		for (const LinearLayer& l : m_layout.layers) {
			out.push_back({prefix + l.name + ".weight", {l.out, l.in}, l.weight_offset, (size_t)l.in * l.out});
			out.push_back({prefix + l.name + ".bias", {l.out}, l.bias_offset, (size_t)l.out});
		}
		return out;
	}

	std::vector<ParamGroup> param_groups(const std::string& prefix) const override {
		// torch.optim.Adam's defaults, as the reference (the learning rate is the model's per step).
		std::string name = prefix;
		if (!name.empty() && name.back() == '.') name.pop_back();
		// Adam runs over the whole slice: the padding's gradient is 0, so its moments and value stay 0.
		return {ParamGroup{name, m_layout.offset, m_layout.n_floats, AdamSpec{}}};
	}

	void init_params(float* flat, uint64_t seed) const override { init_mlp_params_host(flat, m_layout, seed); }

	void forward(float* raw, const float* params, const FieldInputs& in, bool keep_for_backward,
	             FieldOutputs /*outputs: sigma comes out of the trunk either way; the views head costs little*/) override {
		Encoded& enc = keep_for_backward ? m_kept : m_scratch;
		encode(enc, in);
		m_mlp->forward(raw, params, enc.pts.data(), uses_views() ? enc.views.data() : nullptr, in.n, keep_for_backward);
	}

	void backward(float* dL_dparams, const float* params, const float* dL_draw, size_t n) override {
		m_mlp->backward(dL_dparams, params, dL_draw, n);
	}

	void density(float* raw, const float* params, const float* points, size_t n) override {
		grow(m_scratch.pts, n * m_layout.spec.in_pts);
		m_backend.encode_positions(m_scratch.pts.data(), points, n, m_pts);
		const float* views = nullptr;
		if (uses_views()) {
			// sigma does not depend on the view direction (the alpha head reads the trunk only): any one
			// does, so one fixed direction's encoding is made once and repeated for every row.
			if (m_up_views_rows < n) {
				m_up_views = Buffer<float>();
				m_up_views = m_backend.allocate<float>(n * m_layout.spec.in_views);
				const float up[3] = {0.0f, 0.0f, 1.0f};
				Buffer<float> dir = m_backend.allocate<float>(3);
				m_backend.upload(dir.data(), up, sizeof(up));
				m_backend.encode_views(m_up_views.data(), dir.data(), 1, (int)n, m_views);
				m_backend.synchronize();  // dir is freed at the end of this scope
				m_up_views_rows = n;
			}
			views = m_up_views.data();
		}
		m_mlp->forward(raw, params, m_scratch.pts.data(), views, n, false);
	}

private:
	struct Encoded {
		Buffer<float> pts, views;
	};
	bool uses_views() const { return m_layout.spec.use_viewdirs; }

	/// Grows a buffer to at least `count` floats (freeing the old one first, so that peak memory is
	/// never old + new); never shrinks, so that steady batch sizes allocate once.
	void grow(Buffer<float>& buffer, size_t count) {
		if (buffer.size() >= count && buffer.size() > 0) return;
		buffer = Buffer<float>();
		buffer = m_backend.allocate<float>(std::max<size_t>(count, 1));
	}

	void encode(Encoded& enc, const FieldInputs& in) {
		const MlpSpec& s = m_layout.spec;
		grow(enc.pts, in.n * s.in_pts);
		if (in.points) {
			m_backend.encode_positions(enc.pts.data(), in.points, in.n, m_pts);
		} else {
			NERF_CHECK(in.samples_per_ray > 0 && in.n % (size_t)in.samples_per_ray == 0);
			m_backend.encode_points(enc.pts.data(), in.rays_o, in.rays_d, in.z, in.n / in.samples_per_ray,
			                        in.samples_per_ray, m_pts);
		}
		if (!uses_views()) return;
		NERF_CHECK(in.viewdirs != nullptr);
		grow(enc.views, in.n * s.in_views);
		if (in.sample_ray)
			m_backend.encode_views_packed(enc.views.data(), in.viewdirs, in.sample_ray, in.n, m_views);
		else if (in.samples_per_ray > 0)
			m_backend.encode_views(enc.views.data(), in.viewdirs, in.n / in.samples_per_ray, in.samples_per_ray, m_views);
		else
			m_backend.encode_views(enc.views.data(), in.viewdirs, in.n, 1, m_views);
	}

	Backend& m_backend;
	MlpLayout m_layout;
	EncodingSpec m_pts, m_views;
	size_t m_max_batch;
	std::unique_ptr<Mlp> m_mlp;
	Encoded m_kept, m_scratch;  // inputs of the forward that backward will read; of passes without gradients
	Buffer<float> m_up_views;   // density(): one direction's encoding, repeated
	size_t m_up_views_rows = 0;
};

} // namespace

std::unique_ptr<Field> make_nerf_field(Backend& backend, const MlpLayout& layout, const EncodingSpec& pts_encoding,
                                       const EncodingSpec& views_encoding, size_t max_batch, Precision precision) {
	return std::make_unique<NerfField>(backend, layout, pts_encoding, views_encoding, max_batch, precision);
}

const MlpLayout* nerf_field_layout_of(const Field& field) {
	const auto* nerf = dynamic_cast<const NerfField*>(&field);
	return nerf ? &nerf->layout() : nullptr;
}

} // namespace nerf
