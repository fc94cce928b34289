// bench_kernels' stages: a whole training step and a whole rendered image. Each is checked first, then timed;
// the bytes and FLOPs of each row are counted next to it (conventions: bench_kernels.cpp).
#include "kernel_bench.h"

#include <cmath>
#include <cstdio>

namespace nerf::bench {

std::array<float, 4> KernelBench::two_step_losses(Backend& backend, const TrainInputs& in, size_t n_rays, Precision p) {
	NerfModel model(backend, model_config((int)n_rays, p));
	Buffer<uint32_t> ids = make_buffer(backend, std::vector<uint32_t>(in.pixel_ids.begin(), in.pixel_ids.begin() + n_rays));
	Buffer<float> images = make_buffer(backend, in.images);
	const CameraBuffers cameras = upload_cameras(backend, in.poses, in.cameras);
	std::array<float, 4> out{};
	for (uint32_t step = 1; step <= 2; ++step) {
		model.train_step(ids.data(), n_rays, images.data(), cameras.set(), render_settings(true), step, 5e-4f);
		const auto [fine, coarse] = model.read_losses();
		out[2 * (step - 1)] = fine;
		out[2 * (step - 1) + 1] = coarse;
	}
	return out;
}

void KernelBench::bench_train_step(int n_rays, Precision precision) {
	const std::string stage = "train_step";
	if (!wanted(stage)) return;
	const TrainInputs in = train_inputs((size_t)n_rays);
	StageCheck check(stage);
	const float lr = 5e-4f;
	if (m_ref) {
		// A whole step on a few rays on both backends from the same initialisation.
		const size_t n_check = std::min<size_t>((size_t)n_rays, 128);
		if (!m_train_reference.count(n_rays))
			m_train_reference[n_rays] = two_step_losses(*m_ref, in, n_check, Precision::FP32);
		const auto ref = m_train_reference[n_rays];
		const auto got = two_step_losses(m_dev, in, n_check, precision);
		const char* names[4] = {"step 1 fine loss", "step 1 coarse loss", "step 2 fine loss", "step 2 coarse loss"};
		for (int k = 0; k < 4; ++k)
			check.arrays(names[k], {got[k]}, {ref[k]}, Tolerance{0.0, train_loss_tolerance(precision)});
	}

	NerfModel model(m_dev, model_config(n_rays, precision));
	Buffer<uint32_t> ids = make_buffer(m_dev, in.pixel_ids);
	Buffer<float> images = make_buffer(m_dev, in.images);
	const CameraBuffers cameras = upload_cameras(m_dev, in.poses, in.cameras);
	uint32_t step = 1;
	std::vector<float> params_before;
	if (!m_ref) {
		// Invariants of one step from a fresh model: losses are MSEs of colours in [0, 1], so
		// finite and within (0, 1]; Adam's first update moves every parameter by at most lr
		// (|m_hat / sqrt(v_hat)| = |g| / (|g| + eps) <= 1) and moves some of them.
		params_before.resize(model.n_floats());
		m_dev.download(params_before.data(), model.params(), params_before.size() * sizeof(float));
	}
	auto run = [&] {
		model.train_step(ids.data(), in.pixel_ids.size(), images.data(), cameras.set(), render_settings(true), step++,
		                 lr);
	};
	run();
	if (!m_ref) {
		const auto [fine, coarse] = model.read_losses();
		check.require(std::isfinite(fine) && fine > 0.0f && fine <= 1.0f,
		              "fine loss " + std::to_string(fine) + " not in (0, 1]");
		check.require(std::isfinite(coarse) && coarse > 0.0f && coarse <= 1.0f,
		              "coarse loss " + std::to_string(coarse) + " not in (0, 1]");
		std::vector<float> after(model.n_floats());
		m_dev.download(after.data(), model.params(), after.size() * sizeof(float));
		double largest = 0;
		size_t moved = 0;
		for (size_t i = 0; i < after.size(); ++i) {
			const double delta = std::fabs((double)after[i] - params_before[i]);
			largest = std::max(largest, delta);
			if (delta > 0) ++moved;
		}
		check.bound("largest first Adam update / lr", largest / lr, 1.0 + 1e-3);
		check.require(moved > 0, "no parameter moved in a training step");
		// A parameter whose gradient is exactly 0 stays put (Adam's 0 / (0 + eps)); at
		// initialisation a network whose density is relu-clipped on every sample gets no gradient.
		size_t moved_coarse = 0;
		for (size_t i = 0; i < model.coarse_layout().end(); ++i) moved_coarse += after[i] != params_before[i];
		std::fprintf(stderr, "  train_step: %zu of %zu coarse and %zu of %zu fine parameters moved in step 1\n",
		             moved_coarse, (size_t)model.coarse_layout().n_params, moved - moved_coarse,
		             model.n_params() - model.coarse_layout().n_params);
	}
	const auto ms = time(run, true);
	// FLOPs: the MLPs' GEMMs, forward and backward, coarse on n Nc samples and fine on
	// n (Nc + Nf); the other stages add < 1%. Bytes: not meaningful for a whole step.
	const MlpLayout layout = make_mlp_layout(mlp_spec(), 0);
	const double nc = (double)n_rays * m_sizes.n_coarse, nf = (double)n_rays * (m_sizes.n_coarse + m_sizes.n_fine);
	const double flops = mlp_forward_flops(layout, nc) + mlp_backward_flops(layout, nc) +
	                     mlp_forward_flops(layout, nf) + mlp_backward_flops(layout, nf);
	add_row(stage, size_label(n_rays, m_sizes.n_coarse) + "+" + std::to_string(m_sizes.n_fine), precision, ms, 0.0,
	        flops, check.summary());
}

void KernelBench::bench_ngp_train_step(int n_rays) {
	const std::string stage = "ngp_train_step";
	if (!wanted(stage)) return;
	const TrainInputs in = train_inputs((size_t)n_rays);
	StageCheck check(stage);
	// The hash-grid model at its defaults (--small: 8 levels of 2^14) over lego's box, marched at the box
	// diagonal / 1024 through a grid that starts fully occupied, as training does before its warm-up.
	Config cfg = model_config(n_rays, Precision::FP32);
	cfg.model = "ngp";
	cfg.occ_grid = true;
	cfg.occ_aabb = "-1.5,-1.5,-1.5,1.5,1.5,1.5";
	cfg.occ_resolution = m_sizes.occ_resolution;
	cfg.render_step_size = 3.0f * std::sqrt(3.0f) / 1024.0f;
	if (m_opt.small) {
		cfg.n_levels = 8;
		cfg.log2_hashmap_size = 14;
	}
	NerfModel model(m_dev, cfg);
	Buffer<uint32_t> ids = make_buffer(m_dev, in.pixel_ids);
	Buffer<float> images = make_buffer(m_dev, in.images);
	const CameraBuffers cameras = upload_cameras(m_dev, in.poses, in.cameras);
	uint32_t step = 1;
	std::vector<float> before(model.n_floats()), after(model.n_floats());
	m_dev.download(before.data(), model.params(), before.size() * sizeof(float));
	auto run = [&] {
		model.train_step(ids.data(), in.pixel_ids.size(), images.data(), cameras.set(), render_settings(true), step, 1e-2f);
		++step;
	};
	run();
	const float loss = model.read_losses().first;
	check.require(std::isfinite(loss) && loss > 0.0f && loss <= 1.0f, "loss " + std::to_string(loss) + " not in (0, 1]");
	m_dev.download(after.data(), model.params(), after.size() * sizeof(float));
	size_t moved = 0;
	for (size_t i = 0; i < after.size(); ++i) moved += after[i] != before[i];
	check.require(moved > 0, "no parameter moved in a training step");
	check.require(model.last_step_samples() > 0, "the step trained no samples");
	const auto ms = time(run, true);
	const double samples = (double)model.last_step_samples();
	// FLOPs: the two networks' multiply-adds per trained sample (density 32x64 + 64x16 at 16 levels,
	// colour 32x64 + 64x64 + 64x3), x2 for FLOPs, x3 for forward + both backward GEMMs; the hash
	// encoding and the march are not GEMM work (their own rows count them). Bytes: not meaningful.
	const double enc = 2.0 * cfg.n_levels;
	const double macs = enc * 64 + 64 * 16 + 32 * 64 + 64 * 64 + 64 * 3;
	const double median = median_of(ms);
	char rate[96];
	std::snprintf(rate, sizeof rate, ", %.0f samples/step, %.2fM samples/s", samples,
	              samples / (median * 1e-3) / 1e6);
	add_row(stage, "R=" + std::to_string(model.last_step_rays()), Precision::FP32, ms, 0.0, 6.0 * macs * samples,
	        check.summary() + rate);
}

void KernelBench::bench_render(Precision precision) {
	const std::string stage = "render_image";
	if (!wanted(stage)) return;
	const Camera cam = lego_camera(m_sizes.render_hw);
	const std::vector<float> pose_vec = hemisphere_poses(1, 31);
	Pose pose;
	std::copy(pose_vec.begin(), pose_vec.end(), pose.begin());
	const int chunk = 1024 * 32;  // the reference's --chunk default
	StageCheck check(stage);
	if (m_ref) {
		// A small image of the same camera on both backends from the same initialisation. The
		// pixel colours are composites of sigmoids, in [0, 1]: an absolute bound of the forward's
		// relative bound (rgb errors are at most the MLP's, damped by the sigmoid's slope <= 1/4).
		const Camera small = lego_camera(16);
		if (m_render_reference.empty()) {
			NerfModel ref_model(*m_ref, model_config(1024, Precision::FP32));
			m_render_reference = ref_model.render_image(pose, small, render_settings(false), chunk).rgb;
		}
		NerfModel check_model(m_dev, model_config(1024, precision));
		const auto got = check_model.render_image(pose, small, render_settings(false), chunk).rgb;
		check.arrays("rgb of a 16x16 render", got, m_render_reference,
		             Tolerance{mlp_forward_tolerance(precision), 0.0});
	}
	NerfModel model(m_dev, model_config(1024, precision));
	auto run = [&] { m_last_render = model.render_image(pose, cam, render_settings(false), chunk); };
	run();
	if (!m_ref) {
		const RenderedRays& r = m_last_render;
		const size_t n = (size_t)cam.H * cam.W;
		check.require(r.rgb.size() == 3 * n && r.acc.size() == n, "render sizes");
		double outside = 0;
		bool finite = true;
		for (float c : r.rgb) {
			finite = finite && std::isfinite(c);
			outside = std::max({outside, -(double)c, c - 1.0});
		}
		for (float a : r.acc) {
			finite = finite && std::isfinite(a);
			outside = std::max({outside, -(double)a, a - 1.0});
		}
		check.require(finite, "non-finite rgb or acc");
		check.bound("white-background rgb or acc outside [0, 1]", outside, 1e-5);
	}
	const auto ms = time(run, true);
	// FLOPs: MLP forward for H W Nc coarse and H W (Nc + Nf) fine samples (GEMMs only).
	// The time includes the download of rgb, disp, acc and depth to the host.
	const MlpLayout layout = make_mlp_layout(mlp_spec(), 0);
	const double pixels = (double)cam.H * cam.W;
	const double flops = mlp_forward_flops(layout, pixels * m_sizes.n_coarse) +
	                     mlp_forward_flops(layout, pixels * (m_sizes.n_coarse + m_sizes.n_fine));
	add_row(stage, std::to_string(cam.W) + "x" + std::to_string(cam.H) + " S=" + std::to_string(m_sizes.n_coarse) +
	                   "+" + std::to_string(m_sizes.n_fine),
	        precision, ms, 0.0, flops, check.summary());
}

} // namespace nerf::bench
