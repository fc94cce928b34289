// bench_kernels' stages: rays, stratified sampling and the frequency encodings. Each is checked first, then timed;
// the bytes and FLOPs of each row are counted next to it (conventions: bench_kernels.cpp).
#include "kernel_bench.h"

namespace nerf::bench {

KernelBench::RayInputs KernelBench::bench_rays(int n_rays) {
	RayInputs in;
	in.n = (size_t)n_rays;
	in.cam = lego_camera(m_sizes.render_hw);
	in.poses = hemisphere_poses(m_sizes.n_images, 11);
	in.pixel_ids.resize(in.n);
	std::mt19937_64 rng(12);
	const uint64_t n_pixels = (uint64_t)m_sizes.n_images * in.cam.H * in.cam.W;
	for (uint32_t& id : in.pixel_ids) id = (uint32_t)(rng() % n_pixels);

	Buffer<uint32_t> ids = make_buffer(m_dev, in.pixel_ids);
	Buffer<float> poses = make_buffer(m_dev, in.poses);
	const std::vector<Camera> table = shared_camera_table(in.cam, (size_t)m_sizes.n_images);
	Buffer<Camera> cams = make_buffer(m_dev, table);
	const CameraSet set{poses.data(), cams.data(), (uint32_t)table.size()};
	Buffer<float> o = m_dev.allocate<float>(3 * in.n), d = m_dev.allocate<float>(3 * in.n),
	              v = m_dev.allocate<float>(3 * in.n);
	auto run = [&] { m_dev.generate_rays(o.data(), d.data(), v.data(), ids.data(), in.n, set); };
	run();
	in.rays_o = download(m_dev, o);
	in.rays_d = download(m_dev, d);
	in.viewdirs = download(m_dev, v);

	StageCheck check("generate_rays");
	// The ray is ~15 float operations from integer pixel coordinates; an FMA-contracted
	// compiler (nvcc) and an uncontracted one differ by a few ulp: 1e-5 relative + 1e-6 absolute.
	const Tolerance tol{1e-6, 1e-5};
	if (m_ref) {
		Buffer<uint32_t> r_ids = make_buffer(*m_ref, in.pixel_ids);
		Buffer<float> r_poses = make_buffer(*m_ref, in.poses);
		Buffer<Camera> r_cams = make_buffer(*m_ref, table);
		Buffer<float> ro = m_ref->allocate<float>(3 * in.n), rd = m_ref->allocate<float>(3 * in.n),
		              rv = m_ref->allocate<float>(3 * in.n);
		m_ref->generate_rays(ro.data(), rd.data(), rv.data(), r_ids.data(), in.n,
		                     CameraSet{r_poses.data(), r_cams.data(), (uint32_t)table.size()});
		check.arrays("rays_o", in.rays_o, download(*m_ref, ro), tol);
		check.arrays("rays_d", in.rays_d, download(*m_ref, rd), tol);
		check.arrays("viewdirs", in.viewdirs, download(*m_ref, rv), tol);
	} else {
		// get_rays in double: d = R ((i - cx)/f, -(j - cy)/f, -1), o = t, viewdir = d / |d|.
		std::vector<float> ref_o(3 * in.n), ref_d(3 * in.n), ref_v(3 * in.n);
		const uint32_t per_image = (uint32_t)in.cam.H * in.cam.W;
		for (size_t r = 0; r < in.n; ++r) {
			const uint32_t image = in.pixel_ids[r] / per_image, pixel = in.pixel_ids[r] % per_image;
			const double col = pixel % in.cam.W, row = pixel / in.cam.W;
			const double dc[3] = {(col - in.cam.cx) / in.cam.fx, -(row - in.cam.cy) / in.cam.fy, -1.0};
			const float* c2w = in.poses.data() + 12 * (size_t)image;
			double dw[3], norm = 0;
			for (int k = 0; k < 3; ++k) {
				dw[k] = dc[0] * c2w[4 * k] + dc[1] * c2w[4 * k + 1] + dc[2] * c2w[4 * k + 2];
				norm += dw[k] * dw[k];
			}
			for (int k = 0; k < 3; ++k) {
				ref_o[3 * r + k] = c2w[4 * k + 3];
				ref_d[3 * r + k] = (float)dw[k];
				ref_v[3 * r + k] = (float)(dw[k] / std::sqrt(norm));
			}
		}
		check.arrays("rays_o vs double get_rays", in.rays_o, ref_o, tol);
		check.arrays("rays_d vs double get_rays", in.rays_d, ref_d, tol);
		check.arrays("viewdirs vs double get_rays", in.viewdirs, ref_v, tol);
	}
	if (wanted("generate_rays")) {
		const auto ms = time(run);
		// bytes = n (4 id + 3 * 12 outputs); poses (48 B per image) stay in cache.
		// FLOPs = n * 30: pixel -> camera direction 5, rotation 15 (9 mul + 6 add), normalize 10.
		add_row("generate_rays", size_label(in.n, 0), Precision::FP32, ms, (double)in.n * 40.0,
		        (double)in.n * 30.0, check.summary());
	}
	return in;
}

void KernelBench::bench_stratified(const RayInputs& rays, int n_samples) {
	const std::string stage = "stratified_samples";
	if (!wanted(stage)) return;
	const size_t n = rays.n;
	const StratifiedSpec spec = stratified_spec();
	Buffer<float> z = m_dev.allocate<float>(n * n_samples);
	auto run = [&] { m_dev.stratified_samples(z.data(), n, n_samples, 0, spec); };
	run();
	const std::vector<float> got = download(m_dev, z);
	StageCheck check(stage);
	if (m_ref) {
		Buffer<float> rz = m_ref->allocate<float>(n * n_samples);
		m_ref->stratified_samples(rz.data(), n, n_samples, 0, spec);
		// z <= 6 (ulp 4.8e-7); a lerp with or without FMA differs by a few ulp. A different
		// random draw would move a sample by up to a stratum (4 / S), far above 1e-5.
		check.arrays("z", got, download(*m_ref, rz), Tolerance{1e-5, 0.0});
	} else {
		// Each z_k lies in its stratum [mid_{k-1}, mid_k] of linspace(near, far) and the ray is sorted.
		double worst = 0.0;
		bool sorted = true, varied = false;
		for (size_t r = 0; r < n; ++r) {
			const float* zr = got.data() + r * n_samples;
			for (int k = 0; k < n_samples; ++k) {
				auto lin = [&](int i) { return spec.near + (spec.far - spec.near) * (double)i / (n_samples - 1); };
				const double lo = k == 0 ? lin(0) : 0.5 * (lin(k - 1) + lin(k));
				const double hi = k == n_samples - 1 ? lin(k) : 0.5 * (lin(k) + lin(k + 1));
				worst = std::max({worst, lo - zr[k], zr[k] - hi});
				if (k && zr[k] < zr[k - 1]) sorted = false;
				if (std::fabs(zr[k] - lin(k)) > 1e-4) varied = true;
			}
		}
		check.bound("z outside its stratum", worst, 1e-5);
		check.require(sorted, "z not sorted along a ray");
		check.require(varied, "perturb = true but every z sits on the linspace");
	}
	const auto ms = time(run);
	// bytes = n S 4 (write only). FLOPs = n S 8: linspace 3, midpoints 2, lerp 3.
	add_row(stage, size_label(n, n_samples), Precision::FP32, ms, (double)n * n_samples * 4.0,
	        (double)n * n_samples * 8.0, check.summary());
}

void KernelBench::check_encoding(StageCheck& check, const std::vector<float>& enc, const std::vector<double>& x_ref, size_t n_points,
                    const EncodingSpec& spec, double atol) {
	const int width = encoded_width(spec);
	double worst_identity = 0, worst_pythagoras = 0, worst_sin = 0;
	for (size_t p = 0; p < n_points; ++p) {
		const float* e = enc.data() + p * width;
		for (int d = 0; d < 3; ++d) worst_identity = std::max(worst_identity, std::fabs(e[d] - x_ref[3 * p + d]));
		for (int f = 0; f < spec.n_freqs; ++f)
			for (int d = 0; d < 3; ++d) {
				const double s = e[3 * (1 + 2 * f) + d], c = e[3 * (1 + 2 * f) + 3 + d];
				worst_pythagoras = std::max(worst_pythagoras, std::fabs(s * s + c * c - 1.0));
				if (p % 7 == 0)
					worst_sin = std::max(worst_sin, std::fabs(s - std::sin(std::ldexp(x_ref[3 * p + d], f))));
			}
	}
	check.bound("identity block vs double x", worst_identity, atol);
	check.bound("sin^2 + cos^2 - 1", worst_pythagoras, 1e-5);
	check.bound("sin(2^f x) vs double", worst_sin, atol);
}

void KernelBench::bench_encode_points(const RayInputs& rays, int n_samples) {
	const std::string stage = "encode_points";
	if (!wanted(stage)) return;
	const size_t n = rays.n, n_points = n * n_samples;
	const EncodingSpec spec = pts_encoding();
	const int width = encoded_width(spec);
	const std::vector<float> z_host = host_z(n, n_samples, 3);
	Buffer<float> o = make_buffer(m_dev, rays.rays_o), d = make_buffer(m_dev, rays.rays_d),
	              z = make_buffer(m_dev, z_host);
	Buffer<float> enc = m_dev.allocate<float>(n_points * width);
	auto run = [&] { m_dev.encode_points(enc.data(), o.data(), d.data(), z.data(), n, n_samples, spec); };
	run();
	const std::vector<float> got = download(m_dev, enc);
	std::vector<double> x(3 * n_points);
	double x_max = 0;
	for (size_t p = 0; p < n_points; ++p)
		for (int k = 0; k < 3; ++k) {
			const size_t r = p / n_samples;
			x[3 * p + k] = (double)rays.rays_o[3 * r + k] + (double)z_host[p] * rays.rays_d[3 * r + k];
			x_max = std::max(x_max, std::fabs(x[3 * p + k]));
		}
	const double atol = encoding_atol(spec, x_max);
	StageCheck check(stage);
	if (m_ref) {
		Buffer<float> ro = make_buffer(*m_ref, rays.rays_o), rd = make_buffer(*m_ref, rays.rays_d),
		              rz = make_buffer(*m_ref, z_host);
		Buffer<float> renc = m_ref->allocate<float>(n_points * width);
		m_ref->encode_points(renc.data(), ro.data(), rd.data(), rz.data(), n, n_samples, spec);
		check.arrays("gamma(x)", got, download(*m_ref, renc), Tolerance{atol, 0.0});
	} else {
		check_encoding(check, got, x, n_points, spec, atol);
	}
	const auto ms = time(run);
	// bytes = n 24 (o, d) + n S 4 (z) + n S 63 4 (write).
	// FLOPs = n S (6 + 3 L + 6 L): x = o + z d (3 FMA), the 3 L scalings, 3 L sin + 3 L cos.
	const double L = spec.n_freqs;
	add_row(stage, size_label(n, n_samples), Precision::FP32, ms,
	        (double)n * 24.0 + (double)n_points * (4.0 + 4.0 * width), (double)n_points * (6.0 + 9.0 * L),
	        check.summary());
}

void KernelBench::bench_encode_views(const RayInputs& rays, int n_samples) {
	const std::string stage = "encode_views";
	if (!wanted(stage)) return;
	const size_t n = rays.n, n_points = n * n_samples;
	const EncodingSpec spec = views_encoding();
	const int width = encoded_width(spec);
	Buffer<float> v = make_buffer(m_dev, rays.viewdirs);
	Buffer<float> enc = m_dev.allocate<float>(n_points * width);
	auto run = [&] { m_dev.encode_views(enc.data(), v.data(), n, n_samples, spec); };
	run();
	const std::vector<float> got = download(m_dev, enc);
	std::vector<double> x(3 * n_points);
	for (size_t p = 0; p < n_points; ++p)
		for (int k = 0; k < 3; ++k) x[3 * p + k] = rays.viewdirs[3 * (p / n_samples) + k];
	const double atol = encoding_atol(spec, 1.0);
	StageCheck check(stage);
	if (m_ref) {
		Buffer<float> rv = make_buffer(*m_ref, rays.viewdirs);
		Buffer<float> renc = m_ref->allocate<float>(n_points * width);
		m_ref->encode_views(renc.data(), rv.data(), n, n_samples, spec);
		check.arrays("gamma(d)", got, download(*m_ref, renc), Tolerance{atol, 0.0});
	} else {
		check_encoding(check, got, x, n_points, spec, atol);
	}
	const auto ms = time(run);
	// bytes = n 12 (viewdirs) + n S 27 4 (write). FLOPs = n S 9 L (scalings, sin, cos).
	add_row(stage, size_label(n, n_samples), Precision::FP32, ms, (double)n * 12.0 + (double)n_points * 4.0 * width,
	        (double)n_points * 9.0 * spec.n_freqs, check.summary());
}

} // namespace nerf::bench
