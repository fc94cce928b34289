// NerfModel: run_nerf.py's create_nerf + render_rays + the loss and optimiser step, written once
// against nerf::Backend. Buffers are allocated once per batch size and reused every step.
#include "nerf/model.h"

#include "nerf/common.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace nerf {

RenderSettings RenderSettings::from_config(const Config& cfg, const Dataset& data, bool training) {
	RenderSettings s;
	s.N_samples = cfg.N_samples;
	s.N_importance = cfg.N_importance;
	s.perturb = training && cfg.perturb > 0.0f;
	s.lindisp = cfg.lindisp;
	s.raw_noise_std = training ? cfg.raw_noise_std : 0.0f;  // render_kwargs_test sets raw_noise_std = 0
	s.white_bkgd = cfg.white_bkgd;
	s.near = data.near;
	s.far = data.far;
	return s;
}

CameraBuffers upload_cameras(Backend& backend, const std::vector<Pose>& poses, const std::vector<Camera>& cameras) {
	NERF_CHECK(poses.size() == cameras.size());
	CameraBuffers out;
	out.poses = backend.allocate<float>(12 * poses.size());
	out.cameras = backend.allocate<Camera>(cameras.size());
	backend.upload(out.poses.data(), poses.data(), 12 * poses.size() * sizeof(float));
	backend.upload(out.cameras.data(), cameras.data(), cameras.size() * sizeof(Camera));
	return out;
}

Camera scaled_camera(Camera cam, int render_factor) {
	cam.first_pixel = 0;
	if (render_factor > 0) {
		// The whole view, downscaled: H, W and K divided by render_factor. The reference divides H, W and
		// focal but passes its full-size K on to get_rays, so it renders the top-left H/f x W/f pixels of the
		// full-size view instead (an off-centre crop, README: deliberate differences). With pixel centres
		// (transforms.json cameras) the principal point scales exactly like the focal length.
		const int H = cam.H, W = cam.W;
		if (H / render_factor < 1 || W / render_factor < 1)
			NERF_FAIL("render_factor " << render_factor << " leaves no pixels of the " << W << "x" << H << " images");
		cam.H = H / render_factor;
		cam.W = W / render_factor;
		cam.fx /= (float)render_factor;
		cam.fy /= (float)render_factor;
		cam.cx = cam.pixel_centers ? cam.cx / (float)render_factor : 0.5f * cam.W;
		cam.cy = cam.pixel_centers ? cam.cy / (float)render_factor : 0.5f * cam.H;
	}
	return cam;
}

Camera dataset_camera(const Dataset& data, int render_factor) {
	Camera cam = data.cameras.empty() ? pinhole_camera(data.H, data.W, data.K, data.ndc) : data.cameras.front();
	cam.lens = Lens{};
	return scaled_camera(cam, render_factor);
}

Camera image_camera(const Dataset& data, size_t i, int render_factor) {
	return scaled_camera(data.cameras.at(i), render_factor);
}

void check_render_inputs(const Camera& cam, const RenderSettings& settings, const std::vector<Pose>& poses,
                         const std::string& where) {
	const std::string camera = camera_problem(cam);
	if (!camera.empty())
		NERF_FAIL(where << ": the camera is unusable: " << camera
		                << (cam.H < 1 || cam.W < 1 ? " (is render_factor larger than the image?)" : ""));
	const std::string bounds = near_far_problem(settings.near, settings.far);
	if (!bounds.empty()) NERF_FAIL(where << ": " << bounds);
	for (size_t i = 0; i < poses.size(); ++i) {
		const std::string problem = pose_problem(poses[i]);
		if (!problem.empty()) NERF_FAIL(where << ": pose " << i << " is unusable: " << problem);
	}
}

double image_mse(const float* a, const float* b, size_t n_floats) {
	double sum = 0.0;
	for (size_t i = 0; i < n_floats; ++i) {
		const double d = (double)a[i] - (double)b[i];
		sum += d * d;
	}
	return n_floats ? sum / (double)n_floats : 0.0;
}

// Per-batch buffers in backend memory. Shapes in the comments; S = N_samples, F = N_importance.
struct NerfModel::Workspace {
	size_t n_rays = 0;
	bool training = false;
	Buffer<float> rays_o, rays_d, viewdirs, target;  // [R, 3]
	Buffer<float> z_coarse, weights_coarse;          // [R, S]
	Buffer<float> z_fine;                            // [R, F]
	Buffer<float> z_all;                             // [R, S + F]
	Buffer<float> enc_pts_coarse, enc_views_coarse;  // [R * S, in_pts], [R * S, in_views]
	Buffer<float> enc_pts_fine, enc_views_fine;      // [R * (S + F), ...]
	Buffer<float> raw_coarse, raw_fine;              // [R * S, raw], [R * (S + F), raw]
	Buffer<float> rgb_coarse, rgb_fine;              // [R, 3]
	Buffer<float> depth, disp, acc;                  // [R] (rendering)
	Buffer<float> dL_drgb_coarse, dL_drgb_fine;      // [R, 3]
	Buffer<float> dL_draw;                           // [R * (S + F), raw]
	Buffer<float> losses;                            // [2]: fine MSE, coarse MSE
};

NerfModel::NerfModel(Backend& backend, const Config& cfg) : m_backend(&backend), m_cfg(cfg) {
	check_option_combinations(cfg);
	m_pts_encoding = EncodingSpec{3, cfg.multires, cfg.i_embed == -1};
	m_views_encoding = EncodingSpec{3, cfg.multires_views, cfg.i_embed == -1};
	MlpSpec coarse;
	coarse.depth = cfg.netdepth;
	coarse.width = cfg.netwidth;
	coarse.in_pts = encoded_width(m_pts_encoding);
	coarse.in_views = cfg.use_viewdirs ? encoded_width(m_views_encoding) : 0;
	coarse.use_viewdirs = cfg.use_viewdirs;
	// The reference's output_ch = 5 with a fine network; marching (occ_grid) has one network only.
	coarse.output_ch = cfg.N_importance > 0 && !cfg.occ_grid ? 5 : 4;
	m_coarse_layout = make_mlp_layout(coarse, 0);
	m_n_params = m_coarse_layout.n_params;
	m_n_floats = m_coarse_layout.end();
	m_has_fine = cfg.N_importance > 0 && !cfg.occ_grid;
	if (m_has_fine) {
		MlpSpec fine = coarse;
		fine.depth = cfg.netdepth_fine;
		fine.width = cfg.netwidth_fine;
		m_fine_layout = make_mlp_layout_after(fine, m_coarse_layout);
		m_n_params += m_fine_layout.n_params;
		m_n_floats = m_fine_layout.end();
	}
	m_params = backend.allocate<float>(m_n_floats);
	m_grads = backend.allocate<float>(m_n_floats);
	m_adam_m = backend.allocate<float>(m_n_floats);
	m_adam_v = backend.allocate<float>(m_n_floats);
	std::vector<float> host(m_n_floats);
	init_mlp_params_host(host.data(), m_coarse_layout, cfg.seed);
	if (m_has_fine) init_mlp_params_host(host.data(), m_fine_layout, cfg.seed);
	backend.upload(m_params.data(), host.data(), host.size() * sizeof(float));
	backend.fill_zero(m_grads.data(), m_grads.bytes());
	backend.fill_zero(m_adam_m.data(), m_adam_m.bytes());
	backend.fill_zero(m_adam_v.data(), m_adam_v.bytes());
	m_adam_counters = backend.allocate<AdamCounter>(2);
	set_adam_steps(0, 0);

	const Precision precision = backend.is_cuda() ? parse_precision(cfg.precision) : Precision::FP32;
	if (cfg.occ_grid) {
		init_occupancy_grid();
		m_coarse = backend.create_mlp(m_coarse_layout, std::max<size_t>(m_max_step_samples, cfg.netchunk), precision);
		return;
	}
	const size_t samples_coarse = (size_t)cfg.N_rand * cfg.N_samples;
	const size_t samples_fine = (size_t)cfg.N_rand * (cfg.N_samples + cfg.N_importance);
	m_coarse = backend.create_mlp(m_coarse_layout, std::max<size_t>(samples_coarse, cfg.netchunk), precision);
	if (m_has_fine)
		m_fine = backend.create_mlp(m_fine_layout, std::max<size_t>(samples_fine, cfg.netchunk), precision);
}

NerfModel::~NerfModel() = default;

NerfModel::Workspace& NerfModel::ensure_workspace(size_t n_rays, bool training) {
	std::unique_ptr<Workspace>& slot = training ? m_train_ws : m_render_ws;
	if (slot && slot->n_rays >= n_rays) return *slot;
	Backend& b = *m_backend;
	slot.reset();  // free the old workspace first, so that peak memory is never old + new
	auto ws = std::make_unique<Workspace>();
	const size_t S = m_cfg.N_samples, F = m_has_fine ? m_cfg.N_importance : 0;
	const size_t raw = m_coarse_layout.spec.raw_width();
	const size_t in_pts = m_coarse_layout.spec.in_pts, in_views = m_coarse_layout.spec.in_views;
	ws->n_rays = n_rays;
	ws->training = training;
	ws->rays_o = b.allocate<float>(3 * n_rays);
	ws->rays_d = b.allocate<float>(3 * n_rays);
	ws->viewdirs = b.allocate<float>(3 * n_rays);
	ws->target = b.allocate<float>(3 * n_rays);
	ws->z_coarse = b.allocate<float>(S * n_rays);
	ws->weights_coarse = b.allocate<float>(S * n_rays);
	ws->enc_pts_coarse = b.allocate<float>(S * n_rays * in_pts);
	ws->enc_views_coarse = b.allocate<float>(S * n_rays * in_views);
	ws->raw_coarse = b.allocate<float>(S * n_rays * raw);
	ws->rgb_coarse = b.allocate<float>(3 * n_rays);
	ws->depth = b.allocate<float>(n_rays);
	ws->disp = b.allocate<float>(n_rays);
	ws->acc = b.allocate<float>(n_rays);
	if (F > 0) {
		ws->z_fine = b.allocate<float>(F * n_rays);
		ws->z_all = b.allocate<float>((S + F) * n_rays);
		ws->enc_pts_fine = b.allocate<float>((S + F) * n_rays * in_pts);
		ws->enc_views_fine = b.allocate<float>((S + F) * n_rays * in_views);
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

void NerfModel::train_step(const uint32_t* pixel_ids, size_t n_rays, const float* images, const CameraSet& cameras,
                           const RenderSettings& settings, uint32_t step, float lr) {
	if (m_cfg.occ_grid) {
		train_step_marched(pixel_ids, n_rays, images, cameras, settings, step, lr);
		return;
	}
	NERF_CHECK(settings.N_samples == m_cfg.N_samples && settings.N_importance == m_cfg.N_importance);
	Workspace& ws = ensure_workspace(n_rays, true);
	Backend& b = *m_backend;
	const int S = settings.N_samples, F = m_has_fine ? settings.N_importance : 0;
	const int raw_stride = m_coarse_layout.spec.raw_width();
	const uint64_t seed = m_cfg.seed;
	const bool viewdirs = m_coarse_layout.spec.use_viewdirs;

	b.generate_rays(ws.rays_o.data(), ws.rays_d.data(), ws.viewdirs.data(), pixel_ids, n_rays, cameras);
	b.gather_pixels(ws.target.data(), images, pixel_ids, n_rays);

	// Coarse pass.
	StratifiedSpec strat{settings.near, settings.far, settings.lindisp, settings.perturb, seed, step};
	b.stratified_samples(ws.z_coarse.data(), n_rays, S, 0, strat);
	b.encode_points(ws.enc_pts_coarse.data(), ws.rays_o.data(), ws.rays_d.data(), ws.z_coarse.data(), n_rays, S,
	                m_pts_encoding);
	if (viewdirs) b.encode_views(ws.enc_views_coarse.data(), ws.viewdirs.data(), n_rays, S, m_views_encoding);
	m_coarse->forward(ws.raw_coarse.data(), m_params.data(), ws.enc_pts_coarse.data(),
	                  viewdirs ? ws.enc_views_coarse.data() : nullptr, n_rays * S, true);
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
		b.encode_points(ws.enc_pts_fine.data(), ws.rays_o.data(), ws.rays_d.data(), ws.z_all.data(), n_rays, S + F,
		                m_pts_encoding);
		if (viewdirs) b.encode_views(ws.enc_views_fine.data(), ws.viewdirs.data(), n_rays, S + F, m_views_encoding);
		m_fine->forward(ws.raw_fine.data(), m_params.data(), ws.enc_pts_fine.data(),
		                viewdirs ? ws.enc_views_fine.data() : nullptr, n_rays * (S + F), true);
		CompositeOutputs out_fine;
		out_fine.rgb = ws.rgb_fine.data();
		b.composite_forward(out_fine, ws.raw_fine.data(), ws.z_all.data(), ws.rays_d.data(), n_rays, S + F, 0, comp_fine);
	}

	// loss = MSE(rgb, target) + MSE(rgb0, target); each term's gradient is independent.
	b.fill_zero(ws.losses.data(), 2 * sizeof(float));
	b.fill_zero(m_grads.data(), m_grads.bytes());
	if (F > 0) {
		b.mse_loss(ws.losses.data(), ws.dL_drgb_fine.data(), ws.rgb_fine.data(), ws.target.data(), n_rays, 1.0f);
		b.mse_loss(ws.losses.data() + 1, ws.dL_drgb_coarse.data(), ws.rgb_coarse.data(), ws.target.data(), n_rays, 1.0f);
		b.composite_backward(ws.dL_draw.data(), ws.dL_drgb_fine.data(), ws.raw_fine.data(), ws.z_all.data(),
		                     ws.rays_d.data(), n_rays, S + F, 0, comp_fine);
		m_fine->backward(m_grads.data(), m_params.data(), ws.dL_draw.data(), n_rays * (S + F));
	} else {
		b.mse_loss(ws.losses.data(), ws.dL_drgb_coarse.data(), ws.rgb_coarse.data(), ws.target.data(), n_rays, 1.0f);
	}
	b.composite_backward(ws.dL_draw.data(), ws.dL_drgb_coarse.data(), ws.raw_coarse.data(), ws.z_coarse.data(),
	                     ws.rays_d.data(), n_rays, S, 0, comp_coarse);
	m_coarse->backward(m_grads.data(), m_params.data(), ws.dL_draw.data(), n_rays * S);
	apply_adam(lr);

	m_last_step_rays = n_rays;
	m_last_step_samples = n_rays * (size_t)(F > 0 ? S + F : S);
	m_counters.rays += n_rays;
	m_counters.network_samples += n_rays * (uint64_t)(F > 0 ? S + S + F : S);
}

void NerfModel::apply_adam(float lr) {
	Backend& b = *m_backend;
	// One update per network, each skipped on the device when that network's fp16 gradient overflowed.
	AdamSpec adam;
	adam.lr = lr;
	const MlpLayout* layouts[2] = {&m_coarse_layout, m_has_fine ? &m_fine_layout : nullptr};
	const Mlp* mlps[2] = {m_coarse.get(), m_fine.get()};
	for (int net = 0; net < 2; ++net) {
		if (!layouts[net]) continue;
		const size_t offset = layouts[net]->offset;
		b.adam_step(m_params.data() + offset, m_adam_m.data() + offset, m_adam_v.data() + offset, m_grads.data() + offset,
		            layouts[net]->n_floats, adam, m_adam_counters.data() + net, mlps[net]->overflow_flag());
	}
}

long NerfModel::adam_steps(int network) {
	NERF_CHECK(network == 0 || (network == 1 && m_has_fine));
	AdamCounter counter;
	m_backend->download(&counter, m_adam_counters.data() + network, sizeof(counter));
	return counter.step;
}

void NerfModel::set_adam_steps(long coarse, long fine) {
	AdamCounter counters[2];
	counters[0].step = (int32_t)coarse;
	counters[1].step = (int32_t)fine;
	m_backend->upload(m_adam_counters.data(), counters, sizeof(counters));
}

std::pair<float, float> NerfModel::read_losses() {
	if (m_cfg.occ_grid) {
		float loss = 0.0f;
		m_backend->download(&loss, m_march_loss.data(), sizeof(loss));
		return {loss, 0.0f};
	}
	NERF_CHECK(m_train_ws != nullptr);
	float host[2];
	m_backend->download(host, m_train_ws->losses.data(), sizeof(host));
	return {host[0], m_has_fine ? host[1] : 0.0f};
}

RenderedRays NerfModel::render(const uint32_t* pixel_ids, size_t n_rays, const CameraSet& cameras,
                               const RenderSettings& settings, int chunk, uint32_t step, bool retraw) {
	NERF_CHECK(chunk > 0);
	if (m_cfg.occ_grid) return render_marched(pixel_ids, n_rays, cameras, settings, chunk, step);
	Backend& b = *m_backend;
	const int S = settings.N_samples, F = m_has_fine ? settings.N_importance : 0;
	const int raw_stride = m_coarse_layout.spec.raw_width();
	const bool viewdirs = m_coarse_layout.spec.use_viewdirs;
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
		StratifiedSpec strat{settings.near, settings.far, settings.lindisp, settings.perturb, m_cfg.seed, step};
		b.stratified_samples(ws.z_coarse.data(), count, S, ray_offset, strat);
		b.encode_points(ws.enc_pts_coarse.data(), ws.rays_o.data(), ws.rays_d.data(), ws.z_coarse.data(), count, S,
		                m_pts_encoding);
		if (viewdirs) b.encode_views(ws.enc_views_coarse.data(), ws.viewdirs.data(), count, S, m_views_encoding);
		m_coarse->forward(ws.raw_coarse.data(), m_params.data(), ws.enc_pts_coarse.data(),
		                  viewdirs ? ws.enc_views_coarse.data() : nullptr, count * S, false);
		CompositeSpec comp{settings.raw_noise_std, settings.white_bkgd, raw_stride, m_cfg.seed, step, RngStream::RawNoiseCoarse};
		CompositeOutputs co{ws.rgb_coarse.data(), ws.depth.data(), ws.disp.data(), ws.acc.data(), ws.weights_coarse.data()};
		b.composite_forward(co, ws.raw_coarse.data(), ws.z_coarse.data(), ws.rays_d.data(), count, S, ray_offset, comp);
		if (F > 0) {
			b.download(out.rgb0.data() + 3 * begin, ws.rgb_coarse.data(), 3 * count * sizeof(float));
			b.download(out.disp0.data() + begin, ws.disp.data(), count * sizeof(float));
			b.download(out.acc0.data() + begin, ws.acc.data(), count * sizeof(float));
			b.download(out.depth0.data() + begin, ws.depth.data(), count * sizeof(float));
			PdfSpec pdf{!settings.perturb, m_cfg.seed, step};
			b.resample(ws.z_all.data(), ws.z_fine.data(), ws.z_coarse.data(), ws.weights_coarse.data(), count, S, F,
			           ray_offset, pdf);
			b.encode_points(ws.enc_pts_fine.data(), ws.rays_o.data(), ws.rays_d.data(), ws.z_all.data(), count, S + F,
			                m_pts_encoding);
			if (viewdirs) b.encode_views(ws.enc_views_fine.data(), ws.viewdirs.data(), count, S + F, m_views_encoding);
			m_fine->forward(ws.raw_fine.data(), m_params.data(), ws.enc_pts_fine.data(),
			                viewdirs ? ws.enc_views_fine.data() : nullptr, count * (S + F), false);
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

RenderedRays NerfModel::render_image(const Pose& pose, const Camera& cam, const RenderSettings& settings, int chunk) {
	check_render_inputs(cam, settings, {pose}, "render_image");
	const size_t n_rays = (size_t)cam.H * cam.W;
	Camera single = cam;
	single.first_pixel = 0;
	const CameraBuffers camera = upload_cameras(*m_backend, {pose}, {single});
	std::vector<uint32_t> ids(n_rays);
	std::iota(ids.begin(), ids.end(), 0u);
	Buffer<uint32_t> id_buffer = m_backend->allocate<uint32_t>(n_rays);
	m_backend->upload(id_buffer.data(), ids.data(), n_rays * sizeof(uint32_t));
	return render(id_buffer.data(), n_rays, camera.set(), settings, chunk);
}

} // namespace nerf

