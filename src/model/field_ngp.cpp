// instant-ngp's field (Mueller et al. 2022, as nerfacc's NGPRadianceField runs it): a multiresolution
// hash encoding of the point (include/nerf/math/hash_grid.h), a density network 32 -> 64 -> 16
// whose output 0 is the density logit (density = trunc_exp) and 1..15 geometry features, and a
// colour network [SH_4(d) (16), features (15)] -> 64 -> 64 -> 3 (logits; compositing's sigmoid);
// both networks without biases (tiny-cuda-nn's FullyFusedMLP), include/nerf/small_mlp.h.
//
// Parameters, each block at a multiple of 16 floats in the flat buffer: the hash table
// [entries, features] (level after level), the density network's weights, the colour network's.
// Adam: the table with tiny-cuda-nn's rule for non-matrix parameters (an entry whose gradient is
// exactly 0 is left alone) and no weight decay; the networks' weights with L2 weight decay.
#include "fields.h"

#include "nerf/common.h"
#include "nerf/math/hash_grid.h"
#include "nerf/math/rng.h"

#include <algorithm>
#include <cstdio>

namespace nerf {

namespace {

constexpr int kShWidth = 16;         // degree-4 spherical harmonics of the view direction
constexpr int kDensityOutputs = 16;  // the density logit and 15 geometry features
constexpr int kRawWidth = 4;
// The colour network reads 31 inputs from rows of 32 floats: 64-byte rows for the vector loads.
constexpr int kColourInStride = 32;

size_t align16(size_t floats) { return (floats + 15) / 16 * 16; }

class NgpField final : public Field {
public:
	NgpField(Backend& backend, const Config& cfg, const OccGridSpec& box, size_t offset, size_t max_batch,
	         Precision precision)
	    : m_backend(backend), m_max_batch(max_batch) {
		m_grid = make_hash_grid_spec(cfg.n_levels, cfg.n_features_per_level, cfg.log2_hashmap_size, cfg.base_resolution,
		                             cfg.finest_resolution, box.aabb_min, box.aabb_max);
		m_enc_width = m_grid.n_levels * m_grid.n_features_per_level;
		m_density_spec = SmallMlpSpec{m_enc_width, 64, 1, kDensityOutputs};
		m_colour_spec = SmallMlpSpec{kShWidth + kDensityOutputs - 1, 64, 2, 3};
		m_offset = offset;
		m_table_offset = align16(offset);
		m_table_floats = (size_t)m_grid.n_entries * m_grid.n_features_per_level;
		m_density_offset = align16(m_table_offset + m_table_floats);
		m_colour_offset = align16(m_density_offset + small_mlp_params(m_density_spec));
		m_end = m_colour_offset + small_mlp_params(m_colour_spec);
		m_density = backend.create_small_mlp(m_density_spec, max_batch, precision);
		m_colour = backend.create_small_mlp(m_colour_spec, max_batch, precision);
		m_adam.beta1 = cfg.beta1;
		m_adam.beta2 = cfg.beta2;
		m_adam.eps = cfg.epsilon;
		m_l2_reg = cfg.l2_reg;
	}

	const char* type() const override { return "ngp"; }
	int raw_width() const override { return kRawWidth; }
	size_t offset() const override { return m_offset; }
	size_t n_params() const override {
		return m_table_floats + small_mlp_params(m_density_spec) + small_mlp_params(m_colour_spec);
	}
	size_t n_floats() const override { return m_end - m_offset; }
	size_t max_batch() const override { return m_max_batch; }

	std::vector<ParamTensor> tensors(const std::string& prefix) const override {
		std::vector<ParamTensor> out;
		const int F = m_grid.n_features_per_level;
		for (int l = 0; l < m_grid.n_levels; ++l) {
			char name[32];
			std::snprintf(name, sizeof name, "hash_grid.level_%02d", l);
			const HashGridLevel& level = m_grid.levels[l];
			out.push_back({prefix + name, {(int64_t)level.n_entries, F}, m_table_offset + (size_t)level.offset * F,
			               (size_t)level.n_entries * F});
		}
		auto add_network = [&](const char* name, const SmallMlpSpec& spec, size_t first) {
			for (int layer = 0; layer <= spec.hidden_layers; ++layer) {
				const int rows = small_mlp_layer_out(spec, layer), cols = small_mlp_layer_in(spec, layer);
				out.push_back({prefix + name + "." + std::to_string(layer) + ".weight", {rows, cols},
				               first + small_mlp_layer_offset(spec, layer), (size_t)rows * cols});
			}
		};
		add_network("density_net", m_density_spec, m_density_offset);
		add_network("colour_net", m_colour_spec, m_colour_offset);
		return out;
	}

	std::vector<ParamGroup> param_groups(const std::string& prefix) const override {
		AdamSpec table = m_adam;
		table.skip_zero_grad = true;
		AdamSpec networks = m_adam;
		networks.weight_decay = m_l2_reg;
		return {ParamGroup{prefix + "hash_grid", m_table_offset, m_table_floats, table},
		        ParamGroup{prefix + "networks", m_density_offset, m_end - m_density_offset, networks}};
	}

	void init_params(float* flat, uint64_t seed) const override {
		// instant-ngp: table entries uniform in [-1e-4, 1e-4], keyed by the entry so that the values do
		// not depend on where the field sits in the buffer.
		for (size_t i = 0; i < m_table_floats; ++i) {
			const float u = random_uniform(seed, (uint32_t)(i >> 32), (uint32_t)i, 0u, RngStream::HashGridInit);
			flat[m_table_offset + i] = (2.0f * u - 1.0f) * 1e-4f;
		}
		// The two networks from seeds of their own (correlated weights otherwise).
		init_small_mlp_params_host(flat + m_density_offset, m_density_spec, seed ^ 0x6a09e667f3bcc908ull);
		init_small_mlp_params_host(flat + m_colour_offset, m_colour_spec, seed ^ 0xbb67ae8584caa73bull);
	}

	void forward(float* raw, const float* params, const FieldInputs& in, bool keep_for_backward,
	             FieldOutputs outputs) override {
		if (!in.points)
			NERF_FAIL("the hash-grid field (model = ngp) is evaluated at packed points only: it is trained and rendered "
			          "by the occupancy-grid sampler (occ_grid), not the dense coarse + fine sampler");
		Activations& a = keep_for_backward ? m_kept : m_scratch;
		const size_t n = in.n;
		if (keep_for_backward) NERF_CHECK(n <= m_max_batch);
		grow(a, n);
		Backend& b = m_backend;
		b.hash_encode(a.enc.data(), params + m_table_offset, in.points, n, m_grid);
		m_density->forward(a.density.data(), kDensityOutputs, params + m_density_offset, a.enc.data(), m_enc_width, n,
		                   keep_for_backward);
		if (outputs == FieldOutputs::DensityOnly && !keep_for_backward) {
			b.ngp_density_forward(raw, kRawWidth, nullptr, 0, a.density.data(), n);
			return;
		}
		NERF_CHECK(in.viewdirs != nullptr);
		const int colour_in = kColourInStride;
		b.sh_encode(a.colour_in.data(), colour_in, in.viewdirs, in.sample_ray, n);
		b.ngp_density_forward(raw, kRawWidth, a.colour_in.data(), colour_in, a.density.data(), n);
		m_colour->forward(raw, kRawWidth, params + m_colour_offset, a.colour_in.data(), colour_in, n, keep_for_backward);
		if (keep_for_backward) {
			m_kept_points = in.points;
			m_kept_n = n;
		}
	}

	void backward(float* dL_dparams, const float* params, const float* dL_draw, size_t n) override {
		NERF_CHECK(n == m_kept_n && m_kept_points != nullptr);
		Backend& b = m_backend;
		grow(m_grads, n);
		const int colour_in = kColourInStride;
		// colour net -> [SH | features]; the features' gradient and the density's join at the density net's
		// output, whose input gradient scatters into the table.
		m_colour->backward(dL_dparams + m_colour_offset, params + m_colour_offset, dL_draw, kRawWidth,
		                   m_grads.colour_in.data(), colour_in, n);
		b.ngp_density_backward(m_grads.density.data(), dL_draw, kRawWidth, m_grads.colour_in.data(), colour_in,
		                       m_kept.density.data(), n);
		m_density->backward(dL_dparams + m_density_offset, params + m_density_offset, m_grads.density.data(),
		                    kDensityOutputs, m_grads.enc.data(), m_enc_width, n);
		b.hash_encode_backward(dL_dparams + m_table_offset, m_grads.enc.data(), m_kept_points, n, m_grid);
		m_kept_points = nullptr;
		m_kept_n = 0;
	}

	void density(float* raw, const float* params, const float* points, size_t n) override {
		grow(m_scratch, n);
		m_backend.hash_encode(m_scratch.enc.data(), params + m_table_offset, points, n, m_grid);
		m_density->forward(m_scratch.density.data(), kDensityOutputs, params + m_density_offset, m_scratch.enc.data(),
		                   m_enc_width, n, false);
		m_backend.ngp_density_forward(raw, kRawWidth, nullptr, 0, m_scratch.density.data(), n);
	}

	const HashGridSpec& grid() const { return m_grid; }

private:
	/// Per-row buffers: the encoding [n, L F], the density net's output [n, 16], the colour input [n, 31]
	/// (or, for m_grads, their gradients).
	struct Activations {
		size_t rows = 0;
		Buffer<float> enc, density, colour_in;
	};
	void grow(Activations& a, size_t n) {
		if (a.rows >= n && a.rows > 0) return;
		a.enc = Buffer<float>();
		a.density = Buffer<float>();
		a.colour_in = Buffer<float>();
		const size_t rows = std::max<size_t>(n, 1);
		a.enc = m_backend.allocate<float>(rows * m_enc_width);
		a.density = m_backend.allocate<float>(rows * kDensityOutputs);
		a.colour_in = m_backend.allocate<float>(rows * kColourInStride);
		a.rows = rows;
	}

	Backend& m_backend;
	size_t m_max_batch;
	HashGridSpec m_grid;
	int m_enc_width = 0;
	SmallMlpSpec m_density_spec, m_colour_spec;
	size_t m_offset = 0, m_table_offset = 0, m_table_floats = 0, m_density_offset = 0, m_colour_offset = 0, m_end = 0;
	std::unique_ptr<SmallMlp> m_density, m_colour;
	AdamSpec m_adam;
	float m_l2_reg = 0.0f;
	Activations m_kept, m_scratch, m_grads;
	const float* m_kept_points = nullptr;  // the points of the forward that backward scatters from
	size_t m_kept_n = 0;
};

} // namespace

std::unique_ptr<Field> make_ngp_field(Backend& backend, const Config& cfg, const OccGridSpec& box, size_t offset,
                                      size_t max_batch, Precision precision) {
	return std::make_unique<NgpField>(backend, cfg, box, offset, max_batch, precision);
}

const HashGridSpec* ngp_field_grid_of(const Field& field) {
	const auto* ngp = dynamic_cast<const NgpField*>(&field);
	return ngp ? &ngp->grid() : nullptr;
}

} // namespace nerf
