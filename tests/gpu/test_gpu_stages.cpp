// Every non-MLP stage of the CUDA backend against the CPU backend on fresh random inputs (fixed
// seeds, so a failure reproduces). Both backends call the same shared math (include/nerf/math/), and
// neither compiler contracts a*b+c into an FMA on its own (-ffp-contract=off, --fmad=false: the math
// writes fmaf where it wants one), so the remaining differences are CUDA's expf/sinf/cosf/logf, which
// differ from glibc's by up to 2 ulp. Each tolerance below says what it covers; some were set when
// contraction differences were still possible and are looser than they need to be. Unit roundoff of float: 2^-24 ~ 6e-8, one ulp of a
// value in [1, 2): 2^-23 ~ 1.2e-7.
#include "gpu_test_util.h"

#include <cstring>

using namespace nerf_gpu_test;

namespace {

/// A rotation from a random unit quaternion, and a translation: camera-to-world 3x4.
std::vector<float> random_poses(int n, uint32_t seed, bool forward_facing) {
	std::mt19937 rng(seed);
	std::normal_distribution<float> normal(0.0f, 1.0f);
	std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
	std::vector<float> poses(12 * (size_t)n);
	for (int i = 0; i < n; ++i) {
		float q[4];
		if (forward_facing) {
			// Small rotations about identity, so the camera keeps looking down -z as LLFF scenes do.
			q[0] = 1.0f;
			for (int k = 1; k < 4; ++k) q[k] = 0.1f * uni(rng);
		} else {
			for (float& x : q) x = normal(rng);
		}
		const float norm = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
		const float w = q[0] / norm, x = q[1] / norm, y = q[2] / norm, z = q[3] / norm;
		const float R[9] = {1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
		                    2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
		                    2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)};
		float* p = poses.data() + 12 * (size_t)i;
		for (int r = 0; r < 3; ++r) {
			for (int c = 0; c < 3; ++c) p[4 * r + c] = R[3 * r + c];
			p[4 * r + 3] = forward_facing ? (r == 2 ? 0.3f * (uni(rng) + 1.0f) : 0.5f * uni(rng)) : 4.0f * uni(rng);
		}
	}
	return poses;
}

std::vector<uint32_t> random_pixel_ids(size_t n, uint32_t n_pixels, uint32_t seed) {
	std::mt19937 rng(seed);
	std::uniform_int_distribution<uint32_t> dist(0, n_pixels - 1);
	std::vector<uint32_t> ids(n);
	for (uint32_t& id : ids) id = dist(rng);
	return ids;
}

/// Sorted depths per ray from the CPU backend (stratified, perturbed), shared by both backends.
std::vector<float> cpu_depths(Backend& cpu, size_t n_rays, int n_samples, uint32_t seed) {
	Buffer<float> z = cpu.allocate<float>(n_rays * n_samples);
	StratifiedSpec spec;
	spec.seed = seed;
	spec.perturb = true;
	cpu.stratified_samples(z.data(), n_rays, n_samples, 0, spec);
	return to_host(cpu, z);
}

} // namespace

TEST_CASE("gpu: generate_rays and gather_pixels match the CPU", "[gpu][rays]") {
	Backends b = make_backends();
	Camera cam;
	cam.H = 48;
	cam.W = 64;
	cam.fx = cam.fy = 55.0f;
	cam.cx = 32.0f;
	cam.cy = 24.0f;
	const int n_images = 3;
	const size_t n_rays = 5000;
	const std::vector<uint32_t> ids = random_pixel_ids(n_rays, (uint32_t)(n_images * cam.H * cam.W), 11);
	for (bool ndc : {false, true}) {
		std::printf("generate_rays ndc=%d\n", (int)ndc);
		cam.ndc = ndc;
		const std::vector<float> poses = random_poses(n_images, 12, ndc);
		std::vector<float> ref[3], got[3];
		for (int which = 0; which < 2; ++which) {
			Backend& be = which == 0 ? *b.cpu : *b.gpu;
			Buffer<uint32_t> d_ids = to_backend(be, ids);
			Buffer<float> d_poses = to_backend(be, poses);
			Buffer<Camera> d_cameras = to_backend(be, shared_camera_table(cam, n_images));
			Buffer<float> o = be.allocate<float>(3 * n_rays), d = be.allocate<float>(3 * n_rays),
			              v = be.allocate<float>(3 * n_rays);
			be.generate_rays(o.data(), d.data(), v.data(), d_ids.data(), n_rays,
			                 CameraSet{d_poses.data(), d_cameras.data(), (uint32_t)n_images});
			std::vector<float>* out = which == 0 ? ref : got;
			out[0] = to_host(be, o);
			out[1] = to_host(be, d);
			out[2] = to_host(be, v);
		}
		// A few roundings of O(1) values (pose entries, |d| <= ~1.5): 4 ulp of 2 absolute and 4 ulp
		// relative. NDC divides by o_z and d_z (|o_z| = near = 1, |d_z| ~ 1 here) and subtracts
		// d/d_z - o/o_z: the same bound on the inputs becomes ~10 ulp of the largest term (|.| < 5).
		const Tolerance tol = ndc ? Tolerance{10 * kUlp * 5, 8 * kUlp} : Tolerance{4 * kUlp * 2, 4 * kUlp};
		check_close("rays_o", ref[0], got[0], tol);
		check_close("rays_d", ref[1], got[1], tol);
		// viewdirs = d / |d| before NDC: one sqrt and a division more than d (both correctly rounded).
		check_close("viewdirs", ref[2], got[2], {8 * kUlp, 8 * kUlp});
	}

	// gather_pixels is a copy: bit-exact.
	const std::vector<float> images = uniform((size_t)n_images * cam.H * cam.W * 3, 0.0f, 1.0f, 13);
	std::vector<float> target[2];
	for (int which = 0; which < 2; ++which) {
		Backend& be = which == 0 ? *b.cpu : *b.gpu;
		Buffer<uint32_t> d_ids = to_backend(be, ids);
		Buffer<float> d_images = to_backend(be, images);
		Buffer<float> t = be.allocate<float>(3 * n_rays);
		be.gather_pixels(t.data(), d_images.data(), d_ids.data(), n_rays);
		target[which] = to_host(be, t);
	}
	check_close("gather_pixels", target[0], target[1], {0.0, 0.0});
}

TEST_CASE("gpu: generate_rays through per-image distorted cameras of different sizes matches the CPU", "[gpu][rays]") {
	Backends b = make_backends();
	// A transforms.json-like camera table: three lenses (OPENCV with phone-sized and with strong barrel
	// coefficients, OPENCV_FISHEYE) and a pinhole, each image its own size, intrinsics and pixel centres.
	std::vector<Camera> table(4);
	const int sizes[4][2] = {{64, 48}, {40, 52}, {72, 40}, {33, 17}};
	const float k[4][6] = {{0.12f, -0.03f, 0.0f, 0.0f, 0.0015f, -0.001f},
	                       {-0.28f, 0.07f, -0.004f, 0.0f, 0.002f, 0.001f},
	                       {0.04f, -0.01f, 0.002f, -0.0004f, 0.0f, 0.0f},
	                       {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}};
	const LensModel models[4] = {LensModel::OpenCV, LensModel::OpenCV, LensModel::OpenCVFisheye, LensModel::Pinhole};
	uint32_t first_pixel = 0;
	for (int i = 0; i < 4; ++i) {
		Camera& cam = table[i];
		cam.W = sizes[i][0];
		cam.H = sizes[i][1];
		cam.fx = 0.8f * cam.W + 3.0f * i;
		cam.fy = cam.fx * 1.01f;
		cam.cx = 0.5f * cam.W + 0.7f;
		cam.cy = 0.5f * cam.H - 0.4f;
		cam.pixel_centers = true;
		cam.lens.model = models[i];
		cam.lens.k1 = k[i][0];
		cam.lens.k2 = k[i][1];
		cam.lens.k3 = k[i][2];
		cam.lens.k4 = k[i][3];
		cam.lens.p1 = k[i][4];
		cam.lens.p2 = k[i][5];
		cam.first_pixel = first_pixel;
		first_pixel += (uint32_t)(cam.W * cam.H);
	}
	const size_t n_rays = 6000;
	const std::vector<uint32_t> ids = random_pixel_ids(n_rays, first_pixel, 17);
	const std::vector<float> poses = random_poses(4, 19, false);
	std::vector<float> ref[3], got[3];
	for (int which = 0; which < 2; ++which) {
		Backend& be = which == 0 ? *b.cpu : *b.gpu;
		Buffer<uint32_t> d_ids = to_backend(be, ids);
		Buffer<float> d_poses = to_backend(be, poses);
		Buffer<Camera> d_cameras = to_backend(be, table);
		Buffer<float> o = be.allocate<float>(3 * n_rays), d = be.allocate<float>(3 * n_rays),
		              v = be.allocate<float>(3 * n_rays);
		be.generate_rays(o.data(), d.data(), v.data(), d_ids.data(), n_rays, CameraSet{d_poses.data(), d_cameras.data(), 4});
		std::vector<float>* out = which == 0 ? ref : got;
		out[0] = to_host(be, o);
		out[1] = to_host(be, d);
		out[2] = to_host(be, v);
	}
	// The undistortion runs in double on both sides to ~1e-16 relative before it is rounded to float, so
	// the directions differ only where FMA contraction rounds the float rotation differently: as the
	// pinhole rays, 4 ulp of |d| <= ~3 (corners of the strong barrel lens reach ~1.9 off axis) absolute.
	check_close("rays_o (distorted)", ref[0], got[0], {0.0, 0.0});
	check_close("rays_d (distorted)", ref[1], got[1], {4 * kUlp * 3, 4 * kUlp});
	check_close("viewdirs (distorted)", ref[2], got[2], {8 * kUlp, 8 * kUlp});
}

TEST_CASE("gpu: stratified samples match the CPU with the same seed", "[gpu][sampling]") {
	Backends b = make_backends();
	const size_t n_rays = 3000;
	const int n_samples = 64;
	for (bool perturb : {false, true}) {
		for (bool lindisp : {false, true}) {
			StratifiedSpec spec;
			spec.near = 2.0f;
			spec.far = 6.0f;
			spec.lindisp = lindisp;
			spec.perturb = perturb;
			spec.seed = 1234;
			spec.step = 7;
			std::printf("stratified perturb=%d lindisp=%d\n", (int)perturb, (int)lindisp);
			std::vector<float> z[2];
			for (int which = 0; which < 2; ++which) {
				Backend& be = which == 0 ? *b.cpu : *b.gpu;
				Buffer<float> d_z = be.allocate<float>(n_rays * n_samples);
				be.stratified_samples(d_z.data(), n_rays, n_samples, 100, spec);
				z[which] = to_host(be, d_z);
			}
			// z in [2, 6]: a lerp and a jitter lerp, each at most an ulp apart (FMA or not): 4 ulp of 8.
			check_close("z", z[0], z[1], {4 * kUlp * 8, 0.0});
			if (perturb) {
				// The jitter must come from the seed: another seed moves the samples.
				StratifiedSpec other = spec;
				other.seed = 1235;
				Buffer<float> d_z = b.gpu->allocate<float>(n_rays * n_samples);
				b.gpu->stratified_samples(d_z.data(), n_rays, n_samples, 100, other);
				const std::vector<float> z_other = to_host(*b.gpu, d_z);
				double moved = 0.0;
				for (size_t i = 0; i < z_other.size(); ++i) moved = std::max(moved, (double)std::fabs(z_other[i] - z[1][i]));
				CHECK(moved > 1e-2);
			}
		}
	}
}

TEST_CASE("gpu: positional encoding of points and view directions matches the CPU", "[gpu][encoding]") {
	Backends b = make_backends();
	const size_t n_rays = 700;
	const int n_samples = 96;
	const std::vector<float> rays_o = uniform(3 * n_rays, -1.0f, 1.0f, 21);
	const std::vector<float> rays_d = uniform(3 * n_rays, -1.0f, 1.0f, 22);
	const std::vector<float> z = uniform(n_rays * n_samples, 2.0f, 6.0f, 23);
	std::vector<float> viewdirs(3 * n_rays);
	for (size_t r = 0; r < n_rays; ++r) normalize3(viewdirs.data() + 3 * r, rays_d.data() + 3 * r);

	struct Case {
		const char* name;
		EncodingSpec spec;
		bool points;
	};
	const Case cases[] = {{"points L=10", {3, 10, false}, true},
	                      {"points identity", {3, 10, true}, true},
	                      {"views L=4", {3, 4, false}, false}};
	for (const Case& c : cases) {
		const int width = encoded_width(c.spec);
		std::vector<float> enc[2];
		for (int which = 0; which < 2; ++which) {
			Backend& be = which == 0 ? *b.cpu : *b.gpu;
			Buffer<float> d_o = to_backend(be, rays_o), d_d = to_backend(be, rays_d), d_z = to_backend(be, z),
			              d_v = to_backend(be, viewdirs);
			Buffer<float> d_enc = be.allocate<float>(n_rays * n_samples * width);
			if (c.points)
				be.encode_points(d_enc.data(), d_o.data(), d_d.data(), d_z.data(), n_rays, n_samples, c.spec);
			else
				be.encode_views(d_enc.data(), d_v.data(), n_rays, n_samples, c.spec);
			enc[which] = to_host(be, d_enc);
		}
		std::printf("encoding %s\n", c.name);
		// The identity block is x = o + z d itself: one multiply-add, at most 1 ulp apart (|x| < 8).
		std::vector<float> ref_x, got_x;
		for (size_t s = 0; s < n_rays * n_samples; ++s)
			for (int d = 0; d < 3; ++d) {
				ref_x.push_back(enc[0][s * width + d]);
				got_x.push_back(enc[1][s * width + d]);
			}
		const Comparison cx = compare(std::string(c.name) + " identity block", ref_x, got_x, {kUlp * 8, 0.0});
		CHECK(cx.n_bad == 0);
		if (c.spec.identity) continue;
		// sin/cos(2^f x): an input difference dx becomes up to 2^f dx, plus each side's sinf/cosf error
		// (CUDA's are within 2 ulp, glibc's within 1): 1e-6 covers the latter for results in [-1, 1].
		for (int f = 0; f < c.spec.n_freqs; ++f) {
			std::vector<float> ref_f, got_f;
			for (size_t s = 0; s < n_rays * n_samples; ++s)
				for (int k = 0; k < 6; ++k) {
					const size_t col = 3 + 6 * (size_t)f + k;
					ref_f.push_back(enc[0][s * width + col]);
					got_f.push_back(enc[1][s * width + col]);
				}
			const double tol = 1e-6 + std::ldexp(1.0, f) * cx.max_abs_err * 1.01;
			check_close(std::string(c.name) + " freq 2^" + std::to_string(f), ref_f, got_f, {tol, 0.0});
		}
	}
}

TEST_CASE("gpu: resample (sample_pdf + sort + merge) matches the CPU, det and random", "[gpu][sampling]") {
	Backends b = make_backends();
	const size_t n_rays = 2000;
	const int n_coarse = 64, n_fine = 128;
	const std::vector<float> z_coarse = cpu_depths(*b.cpu, n_rays, n_coarse, 31);
	std::vector<float> weights = uniform(n_rays * n_coarse, 0.0f, 1.0f, 32);
	std::mt19937 rng(33);
	for (float& w : weights)
		if (rng() % 10 < 3) w = 0.0f;  // empty bins exercise the 1e-5 padding and flat cdf steps
	for (bool det : {true, false}) {
		PdfSpec spec;
		spec.det = det;
		spec.seed = 77;
		spec.step = 5;
		std::vector<float> z_all[2], z_fine[2];
		for (int which = 0; which < 2; ++which) {
			Backend& be = which == 0 ? *b.cpu : *b.gpu;
			Buffer<float> d_zc = to_backend(be, z_coarse), d_w = to_backend(be, weights);
			Buffer<float> d_all = be.allocate<float>(n_rays * (n_coarse + n_fine)), d_fine = be.allocate<float>(n_rays * n_fine);
			be.resample(d_all.data(), d_fine.data(), d_zc.data(), d_w.data(), n_rays, n_coarse, n_fine, 40, spec);
			z_all[which] = to_host(be, d_all);
			z_fine[which] = to_host(be, d_fine);
		}
		std::printf("resample det=%d\n", (int)det);
		// Same cdf arithmetic in the same order on both sides; the final bins + t (above - below) may
		// differ by an FMA: a few ulp of z <= 6. Bin lookup is piecewise, so an ulp in the cdf could pick
		// a neighbouring bin for a u sitting on a bin edge: allow 0.1% such outliers.
		const Tolerance tol{8 * kUlp * 8, 0.0};
		check_close("z_fine", z_fine[0], z_fine[1], tol, 1e-3);
		check_close("z_all", z_all[0], z_all[1], tol, 1e-3);
		// Invariant on the GPU result itself: every ray's merged samples are sorted.
		size_t unsorted = 0;
		for (size_t r = 0; r < n_rays; ++r)
			for (int k = 1; k < n_coarse + n_fine; ++k)
				if (z_all[1][r * (n_coarse + n_fine) + k] < z_all[1][r * (n_coarse + n_fine) + k - 1]) ++unsorted;
		CHECK(unsorted == 0);
	}
}

TEST_CASE("gpu: compositing forward and backward match the CPU, with and without raw noise", "[gpu][composite]") {
	Backends b = make_backends();
	const size_t n_rays = 2001;  // a partial last block
	const std::vector<float> rays_d = uniform(3 * n_rays, -1.0f, 1.0f, 42);
	const std::vector<float> dL_drgb = uniform(3 * n_rays, -1.0f, 1.0f, 43);
	struct Case {
		float noise;
		bool white;
		int stride;
		int n_samples;  // 64: the coarse pass; 192: the fine pass of the paper's 64 + 128
	};
	for (const Case& c : {Case{0.0f, false, 4, 64}, Case{1.0f, true, 5, 64}, Case{0.0f, true, 4, 192}, Case{1.0f, false, 5, 192}}) {
		const int n_samples = c.n_samples;
		const std::vector<float> z = cpu_depths(*b.cpu, n_rays, n_samples, 41);
		std::vector<float> raw = uniform(n_rays * n_samples * c.stride, -4.0f, 4.0f, 44);
		for (size_t k = 0; k < n_rays * n_samples; ++k) raw[k * c.stride + 3] = raw[k * c.stride + 3] * 2.0f + 2.0f;  // sigma
		CompositeSpec spec;
		spec.raw_noise_std = c.noise;
		spec.white_bkgd = c.white;
		spec.raw_stride = c.stride;
		spec.seed = 99;
		spec.step = 3;
		spec.noise_stream = RngStream::RawNoiseFine;
		std::printf("composite noise=%g white=%d stride=%d samples=%d\n", c.noise, (int)c.white, c.stride, n_samples);
		std::vector<float> out[2][5], grad[2];
		for (int which = 0; which < 2; ++which) {
			Backend& be = which == 0 ? *b.cpu : *b.gpu;
			Buffer<float> d_raw = to_backend(be, raw), d_z = to_backend(be, z), d_d = to_backend(be, rays_d),
			              d_g = to_backend(be, dL_drgb);
			Buffer<float> rgb = be.allocate<float>(3 * n_rays), depth = be.allocate<float>(n_rays),
			              disp = be.allocate<float>(n_rays), acc = be.allocate<float>(n_rays),
			              weights = be.allocate<float>(n_rays * n_samples);
			CompositeOutputs co{rgb.data(), depth.data(), disp.data(), acc.data(), weights.data()};
			be.composite_forward(co, d_raw.data(), d_z.data(), d_d.data(), n_rays, n_samples, 17, spec);
			Buffer<float> dL_draw = be.allocate<float>(raw.size());
			be.composite_backward(dL_draw.data(), d_g.data(), d_raw.data(), d_z.data(), d_d.data(), n_rays, n_samples, 17,
			                      spec);
			out[which][0] = to_host(be, rgb);
			out[which][1] = to_host(be, depth);
			out[which][2] = to_host(be, disp);
			out[which][3] = to_host(be, acc);
			out[which][4] = to_host(be, weights);
			grad[which] = to_host(be, dL_draw);
		}
		// Transmittance is a product of S factors, each from an expf that may differ by 2 ulp between
		// CUDA and glibc (and the noise's logf/cosf likewise): relative error up to ~S * 2 ulp =
		// 64 * 2.4e-7 = 1.5e-5 (1.6e-5 with slack) on every weighted sum. alpha = 1 - expf(-x) carries
		// those ulps of expf's result near 1 as an absolute error whatever alpha is, so a small weight
		// is only good to ~2 ulp of 1 per side: 4 ulp absolute.
		const Tolerance fwd{4 * kUlp, n_samples * 2.5e-7};
		const char* names[5] = {"rgb", "depth", "disp", "acc", "weights"};
		for (int k = 0; k < 5; ++k) check_close(names[k], out[0][k], out[1][k], fwd);
		// Backward: dL/dsigma = T (g - S_k) ... subtracts sums of O(max) terms, so an element's error
		// scales with the largest gradient, not itself: the same S * 2 ulp, normwise.
		check_close("dL_draw", grad[0], grad[1], normwise(grad[0], n_samples * 2.5e-7));

		if (c.noise > 0.0f) {
			// The noise must be drawn: the same inputs without noise give a different image.
			CompositeSpec quiet = spec;
			quiet.raw_noise_std = 0.0f;
			Buffer<float> d_raw = to_backend(*b.gpu, raw), d_z = to_backend(*b.gpu, z), d_d = to_backend(*b.gpu, rays_d);
			Buffer<float> rgb = b.gpu->allocate<float>(3 * n_rays);
			CompositeOutputs co;
			co.rgb = rgb.data();
			b.gpu->composite_forward(co, d_raw.data(), d_z.data(), d_d.data(), n_rays, n_samples, 17, quiet);
			const std::vector<float> rgb_quiet = to_host(*b.gpu, rgb);
			double moved = 0.0;
			for (size_t i = 0; i < rgb_quiet.size(); ++i) moved = std::max(moved, (double)std::fabs(rgb_quiet[i] - out[1][0][i]));
			CHECK(moved > 1e-3);
		}
	}
}

TEST_CASE("gpu: mse_loss matches the CPU and is deterministic", "[gpu][loss]") {
	Backends b = make_backends();
	const size_t n_rays = 4097;  // not a multiple of any block size
	const std::vector<float> rgb = uniform(3 * n_rays, 0.0f, 1.0f, 51), target = uniform(3 * n_rays, 0.0f, 1.0f, 52);
	const float initial_loss = 0.25f;  // mse_loss adds to *loss
	std::vector<float> loss[2], grad[2];
	for (int which = 0; which < 2; ++which) {
		Backend& be = which == 0 ? *b.cpu : *b.gpu;
		Buffer<float> d_rgb = to_backend(be, rgb), d_t = to_backend(be, target);
		Buffer<float> d_loss = to_backend(be, std::vector<float>{initial_loss});
		Buffer<float> d_grad = be.allocate<float>(3 * n_rays);
		be.mse_loss(d_loss.data(), d_grad.data(), d_rgb.data(), d_t.data(), n_rays, 0.5f);
		loss[which] = to_host(be, d_loss);
		grad[which] = to_host(be, d_grad);
	}
	// Both sum in double and round once to float: at most one float rounding apart.
	check_close("loss", loss[0], loss[1], {0.0, 2 * kUlp});
	CHECK(loss[1][0] > initial_loss);
	// dL_drgb = 2 diff / n * scale: the same float operations, none contractible: bit-exact.
	check_close("dL_drgb", grad[0], grad[1], {0.0, 0.0});

	// Deterministic: the same call again gives the same bits.
	Buffer<float> d_rgb = to_backend(*b.gpu, rgb), d_t = to_backend(*b.gpu, target);
	Buffer<float> d_loss = to_backend(*b.gpu, std::vector<float>{initial_loss});
	b.gpu->mse_loss(d_loss.data(), nullptr, d_rgb.data(), d_t.data(), n_rays, 1.0f);
	const std::vector<float> again = to_host(*b.gpu, d_loss);
	CHECK(std::memcmp(again.data(), loss[1].data(), sizeof(float)) == 0);
}

TEST_CASE("gpu: adam_step matches the CPU bit for bit, with weight decay and skip_zero_grad", "[gpu][adam]") {
	Backends b = make_backends();
	const size_t n = 100003;  // not a multiple of the block size
	const std::vector<float> params = uniform(n, -1.0f, 1.0f, 61), m = uniform(n, -1e-2f, 1e-2f, 62),
	                         v = uniform(n, 0.0f, 1e-4f, 63);
	std::vector<float> grads = uniform(n, -1e-2f, 1e-2f, 64);
	for (size_t i = 0; i < n; i += 3) grads[i] = 0.0f;  // a third untouched, as hash-table entries
	struct Case {
		const char* name;
		float weight_decay;
		bool skip_zero_grad;
	};
	// The reference's settings; instant-ngp's networks (L2 1e-6); its hash tables (skip zero gradients).
	for (const Case& k : {Case{"plain", 0.0f, false}, Case{"weight_decay", 1e-6f, false}, Case{"skip_zero_grad", 0.0f, true},
	                      Case{"both", 0.1f, true}}) {
		std::printf("adam %s\n", k.name);
		AdamSpec spec;
		spec.lr = 5e-4f;
		spec.weight_decay = k.weight_decay;
		spec.skip_zero_grad = k.skip_zero_grad;
		AdamCounter start;
		start.step = 2;  // this update is t = 3
		std::vector<float> out[2][3];
		AdamCounter counter[2];
		for (int which = 0; which < 2; ++which) {
			Backend& be = which == 0 ? *b.cpu : *b.gpu;
			Buffer<float> d_p = to_backend(be, params), d_m = to_backend(be, m), d_v = to_backend(be, v),
			              d_g = to_backend(be, grads);
			Buffer<AdamCounter> d_c = to_backend(be, std::vector<AdamCounter>{start});
			be.adam_step(d_p.data(), d_m.data(), d_v.data(), d_g.data(), n, spec, d_c.data(), nullptr);
			out[which][0] = to_host(be, d_p);
			out[which][1] = to_host(be, d_m);
			out[which][2] = to_host(be, d_v);
			counter[which] = to_host(be, d_c)[0];
		}
		// Every multiply-add of the update is an explicit fmaf, the bias corrections are computed in double
		// from products and one fma only, and neither compiler contracts anything else (CMakeLists.txt):
		// the same roundings on both sides, so the same bits.
		check_close("params", out[0][0], out[1][0], {0.0, 0.0});
		check_close("m", out[0][1], out[1][1], {0.0, 0.0});
		check_close("v", out[0][2], out[1][2], {0.0, 0.0});
		CHECK(counter[1].step == 3);
		CHECK(counter[1].skipped == 0);
		CHECK(counter[1].current.step_size == counter[0].current.step_size);
		CHECK(counter[1].current.inv_sqrt_bias2 == counter[0].current.inv_sqrt_bias2);
		double moved = 0.0;
		size_t zero_grad_moved = 0;
		for (size_t i = 0; i < n; ++i) {
			moved = std::max(moved, (double)std::fabs(out[1][0][i] - params[i]));
			if (grads[i] == 0.0f) zero_grad_moved += out[1][0][i] != params[i] || out[1][1][i] != m[i] || out[1][2][i] != v[i];
		}
		CHECK(moved > 1e-4);
		// Skipped entries keep p, m and v; without the skip the moments of every entry decay.
		if (k.skip_zero_grad) CHECK(zero_grad_moved == 0);
		else CHECK(zero_grad_moved > n / 4);
	}
}

TEST_CASE("gpu: adam_step after an overflow flag changes nothing but the skip count", "[gpu][adam]") {
	std::unique_ptr<Backend> gpu = create_cuda_backend(0);
	const size_t n = 5003;
	const std::vector<float> params = uniform(n, -1.0f, 1.0f, 71), m = uniform(n, -1e-2f, 1e-2f, 72),
	                         v = uniform(n, 0.0f, 1e-4f, 73), grads = uniform(n, -1e-2f, 1e-2f, 74);
	Buffer<float> d_p = to_backend(*gpu, params), d_m = to_backend(*gpu, m), d_v = to_backend(*gpu, v),
	              d_g = to_backend(*gpu, grads);
	AdamCounter start;
	start.step = 7;
	Buffer<AdamCounter> d_c = to_backend(*gpu, std::vector<AdamCounter>{start});
	Buffer<uint32_t> flag = to_backend(*gpu, std::vector<uint32_t>{1u});
	AdamSpec spec;
	spec.lr = 1e-3f;
	gpu->adam_step(d_p.data(), d_m.data(), d_v.data(), d_g.data(), n, spec, d_c.data(), flag.data());
	CHECK(to_host(*gpu, d_p) == params);
	CHECK(to_host(*gpu, d_m) == m);
	CHECK(to_host(*gpu, d_v) == v);
	AdamCounter after = to_host(*gpu, d_c)[0];
	CHECK(after.step == 7);
	CHECK(after.skipped == 1);
	// Cleared, the next update runs as t = 8.
	gpu->upload(flag.data(), std::vector<uint32_t>{0u}.data(), sizeof(uint32_t));
	gpu->adam_step(d_p.data(), d_m.data(), d_v.data(), d_g.data(), n, spec, d_c.data(), flag.data());
	after = to_host(*gpu, d_c)[0];
	CHECK(after.step == 8);
	CHECK(to_host(*gpu, d_p) != params);
}

TEST_CASE("gpu: memory accounting and stage preconditions", "[gpu][backend]") {
	std::unique_ptr<Backend> gpu = create_cuda_backend(0);
	CHECK(gpu->is_cuda());
	CHECK(gpu->name().rfind("cuda (", 0) == 0);
	const size_t before = gpu->current_bytes();
	{
		Buffer<float> a = gpu->allocate<float>(1 << 20);
		CHECK(gpu->current_bytes() == before + (4u << 20));
		CHECK(gpu->peak_bytes() >= before + (4u << 20));
	}
	CHECK(gpu->current_bytes() == before);
	// resample needs weights[1:-1] non-empty: two coarse samples must be refused.
	Buffer<float> z = gpu->allocate<float>(16);
	CHECK_THROWS_AS(gpu->resample(z.data(), z.data(), z.data(), z.data(), 1, 2, 4, 0, PdfSpec{}), nerf::Error);
	// Asking for a device that is not there is a nerf::Error, not a crash.
	CHECK_THROWS_AS(create_cuda_backend(1 << 20), nerf::Error);
}
