// The reference's sampler (run_nerf.py's render_rays): N_samples stratified depths per ray through
// the coarse field, N_importance more drawn from its weights (inverse CDF) and the fine field at
// the merged, sorted depths; loss = MSE(fine) + MSE(coarse). Dense [rays, samples] tensors, buffers
// allocated once per batch size and reused every step.
#include "sampler.h"

#include "nerf/common.h"

#include <algorithm>
#include <cmath>

namespace nerf {

// Per-batch buffers in backend memory. Shapes in the comments; S = N_samples, F = N_importance.
// The encoded inputs belong to the fields.
struct DenseSampler::Workspace {
	size_t n_rays = 0;
	bool training = false;
	Buffer<float> rays_o, rays_d, viewdirs, target;  // [R, 3]
	Buffer<float> z_coarse, weights_coarse;          // [R, S]
	Buffer<float> z_fine;                            // [R, F]
	Buffer<float> z_all;                             // [R, S + F]
	Buffer<float> raw_coarse, raw_fine;              // [R * S, raw], [R * (S + F), raw]
	Buffer<float> rgb_coarse, rgb_fine;              // [R, 3]
	Buffer<float> depth, disp, acc;                  // [R] (rendering)
	Buffer<float> dL_drgb_coarse, dL_drgb_fine;      // [R, 3]
	Buffer<float> dL_draw;                           // [R * (S + F), raw]
	Buffer<float> losses;                            // [2]: fine MSE, coarse MSE
};

DenseSampler::DenseSampler(const SamplerContext& ctx, Field& coarse, Field* fine)
    : m_ctx(ctx), m_coarse(coarse), m_fine(fine) {
	NERF_CHECK(!fine || fine->raw_width() == coarse.raw_width());
}

DenseSampler::~DenseSampler() = default;

DenseSampler::Workspace& DenseSampler::ensure_workspace(size_t n_rays, bool training) {
	std::unique_ptr<Workspace>& slot = training ? m_train_ws : m_render_ws;
	if (slot && slot->n_rays >= n_rays) return *slot;
	Backend& b = *m_ctx.backend;
	slot.reset();  // free the old workspace first, so that peak memory is never old + new
	auto ws = std::make_unique<Workspace>();
	const Config& cfg = *m_ctx.cfg;
	const size_t S = cfg.N_samples, F = m_fine ? cfg.N_importance : 0;
	const size_t raw = m_coarse.raw_width();
	ws->n_rays = n_rays;
	ws->training = training;
	ws->rays_o = b.allocate<float>(3 * n_rays);
	ws->rays_d = b.allocate<float>(3 * n_rays);
	ws->viewdirs = b.allocate<float>(3 * n_rays);
	ws->target = b.allocate<float>(3 * n_rays);
	ws->z_coarse = b.allocate<float>(S * n_rays);
	ws->weights_coarse = b.allocate<float>(S * n_rays);
	ws->raw_coarse = b.allocate<float>(S * n_rays * raw);
	ws->rgb_coarse = b.allocate<float>(3 * n_rays);
	ws->depth = b.allocate<float>(n_rays);
	ws->disp = b.allocate<float>(n_rays);
	ws->acc = b.allocate<float>(n_rays);
	if (F > 0) {
		ws->z_fine = b.allocate<float>(F * n_rays);
		ws->z_all = b.allocate<float>((S + F) * n_rays);
		ws->raw_fine = b.allocate<float>((S + F) * n_rays * raw);
		ws->rgb_fine = b.allocate<float>(3 * n_rays);
	}
	if (training) {
		ws->dL_drgb_coarse = b.allocate<float>(3 * n_rays);
		ws->dL_drgb_fine = b.allocate<float>(3 * n_rays);
		ws->dL_draw = b.allocate<float>((S + F) * n_rays * raw);
		ws->losses = b.allocate<float>(2);
	}
	slot = std::move(ws);
	return *slot;
}

void DenseSampler::train_step(const uint32_t* pixel_ids, size_t n_rays, const float* images, const CameraSet& cameras,
                              const RenderSettings& settings, uint32_t step, const float* /*alpha: grid sampler only*/) {
	const Config& cfg = *m_ctx.cfg;
	NERF_CHECK(settings.N_samples == cfg.N_samples && settings.N_importance == cfg.N_importance);
	Workspace& ws = ensure_workspace(n_rays, true);
	Backend& b = *m_ctx.backend;
	const int S = settings.N_samples, F = m_fine ? settings.N_importance : 0;
	const int raw_stride = m_coarse.raw_width();
	const uint64_t seed = cfg.seed;
	float* params = m_ctx.params;

	b.generate_rays(ws.rays_o.data(), ws.rays_d.data(), ws.viewdirs.data(), pixel_ids, n_rays, cameras);
	b.gather_pixels(ws.target.data(), images, pixel_ids, n_rays);

	// Coarse pass.
	StratifiedSpec strat{settings.near, settings.far, settings.lindisp, settings.perturb, seed, step};
	b.stratified_samples(ws.z_coarse.data(), n_rays, S, 0, strat);
	m_coarse.forward(ws.raw_coarse.data(), params,
	                 FieldInputs::dense(ws.rays_o.data(), ws.rays_d.data(), ws.z_coarse.data(), ws.viewdirs.data(), n_rays, S),
	                 true);
	CompositeSpec comp_coarse{settings.raw_noise_std, settings.white_bkgd, raw_stride, seed, step, RngStream::RawNoiseCoarse};
	CompositeOutputs out_coarse;
	out_coarse.rgb = ws.rgb_coarse.data();
	out_coarse.weights = ws.weights_coarse.data();
	b.composite_forward(out_coarse, ws.raw_coarse.data(), ws.z_coarse.data(), ws.rays_d.data(), n_rays, S, 0, comp_coarse);

	// Fine pass on the merged samples.
	CompositeSpec comp_fine = comp_coarse;
	comp_fine.noise_stream = RngStream::RawNoiseFine;
	if (F > 0) {
		PdfSpec pdf{!settings.perturb, seed, step};
		b.resample(ws.z_all.data(), ws.z_fine.data(), ws.z_coarse.data(), ws.weights_coarse.data(), n_rays, S, F, 0, pdf);
		m_fine->forward(ws.raw_fine.data(), params,
		                FieldInputs::dense(ws.rays_o.data(), ws.rays_d.data(), ws.z_all.data(), ws.viewdirs.data(), n_rays,
		                                   S + F),
		                true);
		CompositeOutputs out_fine;
		out_fine.rgb = ws.rgb_fine.data();
		b.composite_forward(out_fine, ws.raw_fine.data(), ws.z_all.data(), ws.rays_d.data(), n_rays, S + F, 0, comp_fine);
	}

	// loss = MSE(rgb, target) + MSE(rgb0, target); each term's gradient is independent.
	b.fill_zero(ws.losses.data(), 2 * sizeof(float));
	b.fill_zero(m_ctx.grads, m_ctx.n_floats * sizeof(float));
	if (F > 0) {
		b.mse_loss(ws.losses.data(), ws.dL_drgb_fine.data(), ws.rgb_fine.data(), ws.target.data(), n_rays, 1.0f);
		b.mse_loss(ws.losses.data() + 1, ws.dL_drgb_coarse.data(), ws.rgb_coarse.data(), ws.target.data(), n_rays, 1.0f);
		b.composite_backward(ws.dL_draw.data(), ws.dL_drgb_fine.data(), ws.raw_fine.data(), ws.z_all.data(),
		                     ws.rays_d.data(), n_rays, S + F, 0, comp_fine);
		m_fine->backward(m_ctx.grads, params, ws.dL_draw.data(), n_rays * (S + F));
	} else {
		b.mse_loss(ws.losses.data(), ws.dL_drgb_coarse.data(), ws.rgb_coarse.data(), ws.target.data(), n_rays, 1.0f);
	}
	b.composite_backward(ws.dL_draw.data(), ws.dL_drgb_coarse.data(), ws.raw_coarse.data(), ws.z_coarse.data(),
	                     ws.rays_d.data(), n_rays, S, 0, comp_coarse);
	m_coarse.backward(m_ctx.grads, params, ws.dL_draw.data(), n_rays * S);

	m_last_step_rays = n_rays;
	m_last_step_samples = n_rays * (size_t)(F > 0 ? S + F : S);
	m_ctx.counters->rays += n_rays;
	m_ctx.counters->network_samples += n_rays * (uint64_t)(F > 0 ? S + S + F : S);
}

std::pair<float, float> DenseSampler::read_losses() {
	NERF_CHECK(m_train_ws != nullptr);
	float host[2];
	m_ctx.backend->download(host, m_train_ws->losses.data(), sizeof(host));
	return {host[0], m_fine ? host[1] : 0.0f};
}

RenderedRays DenseSampler::render(const uint32_t* pixel_ids, size_t n_rays, const CameraSet& cameras,
                                  const RenderSettings& settings, int chunk, uint32_t step, bool retraw) {
	Backend& b = *m_ctx.backend;
	const uint64_t seed = m_ctx.cfg->seed;
	const int S = settings.N_samples, F = m_fine ? settings.N_importance : 0;
	const int raw_stride = m_coarse.raw_width();
	float* params = m_ctx.params;
	RenderedRays out;
	out.rgb.resize(3 * n_rays);
	out.disp.resize(n_rays);
	out.acc.resize(n_rays);
	out.depth.resize(n_rays);
	if (F > 0) {
		out.rgb0.resize(3 * n_rays);
		out.disp0.resize(n_rays);
		out.acc0.resize(n_rays);
		out.depth0.resize(n_rays);
		out.z_std.resize(n_rays);
	}
	const size_t raw_per_ray = (size_t)(S + F) * raw_stride;
	if (retraw) out.raw.resize(n_rays * raw_per_ray);
	out.network_samples = n_rays * (uint64_t)(F > 0 ? S + S + F : S);
	const size_t chunk_rays = std::min<size_t>((size_t)chunk, std::max<size_t>(n_rays, 1));
	std::vector<float> z_fine_host(F > 0 ? chunk_rays * F : 0);
	for (size_t begin = 0; begin < n_rays; begin += chunk_rays) {
		const size_t count = std::min(chunk_rays, n_rays - begin);
		Workspace& ws = ensure_workspace(chunk_rays, false);
		const uint32_t ray_offset = (uint32_t)begin;
		b.generate_rays(ws.rays_o.data(), ws.rays_d.data(), ws.viewdirs.data(), pixel_ids + begin, count, cameras);
		StratifiedSpec strat{settings.near, settings.far, settings.lindisp, settings.perturb, seed, step};
		b.stratified_samples(ws.z_coarse.data(), count, S, ray_offset, strat);
		m_coarse.forward(ws.raw_coarse.data(), params,
		                 FieldInputs::dense(ws.rays_o.data(), ws.rays_d.data(), ws.z_coarse.data(), ws.viewdirs.data(), count, S),
		                 false);
		CompositeSpec comp{settings.raw_noise_std, settings.white_bkgd, raw_stride, seed, step, RngStream::RawNoiseCoarse};
		CompositeOutputs co{ws.rgb_coarse.data(), ws.depth.data(), ws.disp.data(), ws.acc.data(), ws.weights_coarse.data()};
		b.composite_forward(co, ws.raw_coarse.data(), ws.z_coarse.data(), ws.rays_d.data(), count, S, ray_offset, comp);
		if (F > 0) {
			b.download(out.rgb0.data() + 3 * begin, ws.rgb_coarse.data(), 3 * count * sizeof(float));
			b.download(out.disp0.data() + begin, ws.disp.data(), count * sizeof(float));
			b.download(out.acc0.data() + begin, ws.acc.data(), count * sizeof(float));
			b.download(out.depth0.data() + begin, ws.depth.data(), count * sizeof(float));
			PdfSpec pdf{!settings.perturb, seed, step};
			b.resample(ws.z_all.data(), ws.z_fine.data(), ws.z_coarse.data(), ws.weights_coarse.data(), count, S, F,
			           ray_offset, pdf);
			m_fine->forward(ws.raw_fine.data(), params,
			                FieldInputs::dense(ws.rays_o.data(), ws.rays_d.data(), ws.z_all.data(), ws.viewdirs.data(), count,
			                                   S + F),
			                false);
			comp.noise_stream = RngStream::RawNoiseFine;
			CompositeOutputs fo{ws.rgb_fine.data(), ws.depth.data(), ws.disp.data(), ws.acc.data(), nullptr};
			b.composite_forward(fo, ws.raw_fine.data(), ws.z_all.data(), ws.rays_d.data(), count, S + F, ray_offset, comp);
			b.download(z_fine_host.data(), ws.z_fine.data(), count * F * sizeof(float));
			for (size_t r = 0; r < count; ++r) {
				// torch.std(z_samples, dim=-1, unbiased=False)
				const float* z = z_fine_host.data() + r * F;
				double mean = 0.0, var = 0.0;
				for (int k = 0; k < F; ++k) mean += z[k];
				mean /= F;
				for (int k = 0; k < F; ++k) var += (z[k] - mean) * (z[k] - mean);
				out.z_std[begin + r] = (float)std::sqrt(var / F);
			}
		}
		b.download(out.rgb.data() + 3 * begin, F > 0 ? ws.rgb_fine.data() : ws.rgb_coarse.data(), 3 * count * sizeof(float));
		b.download(out.disp.data() + begin, ws.disp.data(), count * sizeof(float));
		b.download(out.acc.data() + begin, ws.acc.data(), count * sizeof(float));
		b.download(out.depth.data() + begin, ws.depth.data(), count * sizeof(float));
		if (retraw)
			b.download(out.raw.data() + begin * raw_per_ray, F > 0 ? ws.raw_fine.data() : ws.raw_coarse.data(),
			           count * raw_per_ray * sizeof(float));
	}
	return out;
}

} // namespace nerf
