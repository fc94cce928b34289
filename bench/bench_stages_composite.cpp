// bench_kernels' stages: compositing (dense) and hierarchical resampling. Each is checked first, then timed;
// the bytes and FLOPs of each row are counted next to it (conventions: bench_kernels.cpp).
#include "kernel_bench.h"

namespace nerf::bench {

void KernelBench::bench_composite(const RayInputs& rays, int n_samples) {
	const size_t n = rays.n, n_points = n * n_samples;
	const CompositeSpec spec = composite_spec();
	const std::vector<float> raw_host = synthetic_raw(n_points, 40 + n_samples);
	const std::vector<float> z_host = host_z(n, n_samples, 4);
	const std::vector<float> dL_drgb_host = normal_floats(3 * n, 1e-3, 41);
	Buffer<float> raw = make_buffer(m_dev, raw_host), z = make_buffer(m_dev, z_host),
	              d = make_buffer(m_dev, rays.rays_d), dL_drgb = make_buffer(m_dev, dL_drgb_host);
	Buffer<float> rgb = m_dev.allocate<float>(3 * n), depth = m_dev.allocate<float>(n),
	              disp = m_dev.allocate<float>(n), acc = m_dev.allocate<float>(n),
	              weights = m_dev.allocate<float>(n_points), dL_draw = m_dev.allocate<float>(4 * n_points);
	const CompositeOutputs out{rgb.data(), depth.data(), disp.data(), acc.data(), weights.data()};

	// Double reference of the forward, used by the CPU checks.
	std::vector<float> ref_rgb(3 * n), ref_acc(n), ref_depth(n), ref_w(n_points);
	auto reference_forward = [&] {
		std::vector<double> w(n_samples);
		for (size_t r = 0; r < n; ++r) {
			const RayRef o = composite_ray_ref(w.data(), raw_host.data() + r * n_samples * 4,
			                                   z_host.data() + r * n_samples, rays.rays_d.data() + 3 * r,
			                                   n_samples, 4, spec.white_bkgd);
			for (int c = 0; c < 3; ++c) ref_rgb[3 * r + c] = (float)o.rgb[c];
			ref_acc[r] = (float)o.acc;
			ref_depth[r] = (float)o.depth;
			for (int k = 0; k < n_samples; ++k) ref_w[r * n_samples + k] = (float)w[k];
		}
	};

	if (wanted("composite_forward")) {
		auto run = [&] { m_dev.composite_forward(out, raw.data(), z.data(), d.data(), n, n_samples, 0, spec); };
		run();
		const auto got_rgb = download(m_dev, rgb), got_acc = download(m_dev, acc),
		           got_depth = download(m_dev, depth), got_w = download(m_dev, weights);
		StageCheck check("composite_forward");
		// Transmittance is a product of up to S factors, each with ~2 ulp of exp rounding, so
		// relative error grows to ~2 S ulp = 192 * 2 * 6e-8 ~ 2.3e-5 at S = 192: rtol 1e-4; atol
		// 1e-6 for weights that are exactly 0 on one side and denormal-small on the other.
		const Tolerance tol{1e-6, 1e-4};
		if (m_ref) {
			Buffer<float> r_raw = make_buffer(*m_ref, raw_host), r_z = make_buffer(*m_ref, z_host),
			              r_d = make_buffer(*m_ref, rays.rays_d);
			Buffer<float> r_rgb = m_ref->allocate<float>(3 * n), r_depth = m_ref->allocate<float>(n),
			              r_disp = m_ref->allocate<float>(n), r_acc = m_ref->allocate<float>(n),
			              r_w = m_ref->allocate<float>(n_points);
			m_ref->composite_forward({r_rgb.data(), r_depth.data(), r_disp.data(), r_acc.data(), r_w.data()},
			                         r_raw.data(), r_z.data(), r_d.data(), n, n_samples, 0, spec);
			check.arrays("rgb", got_rgb, download(*m_ref, r_rgb), tol);
			check.arrays("acc", got_acc, download(*m_ref, r_acc), tol);
			// depth ~ z acc <= 6: the same relative bound.
			check.arrays("depth", got_depth, download(*m_ref, r_depth), Tolerance{6e-6, 1e-4});
			check.arrays("weights", got_w, download(*m_ref, r_w), tol);
		} else {
			reference_forward();
			check.arrays("rgb vs double raw2outputs", got_rgb, ref_rgb, tol);
			check.arrays("acc vs double raw2outputs", got_acc, ref_acc, tol);
			check.arrays("depth vs double raw2outputs", got_depth, ref_depth, Tolerance{6e-6, 1e-4});
			check.arrays("weights vs double raw2outputs", got_w, ref_w, tol);
			// Invariants: weights >= 0, their sum is acc <= 1, white-background rgb in [0, 1].
			double worst_sum = 0, worst_acc = 0, worst_rgb = 0, min_w = 0;
			for (size_t r = 0; r < n; ++r) {
				double sum = 0;
				for (int k = 0; k < n_samples; ++k) {
					sum += got_w[r * n_samples + k];
					min_w = std::min(min_w, (double)got_w[r * n_samples + k]);
				}
				worst_sum = std::max(worst_sum, std::fabs(sum - got_acc[r]));
				worst_acc = std::max(worst_acc, got_acc[r] - 1.0);
				for (int c = 0; c < 3; ++c)
					worst_rgb = std::max({worst_rgb, -(double)got_rgb[3 * r + c], got_rgb[3 * r + c] - 1.0});
			}
			check.bound("sum of weights - acc", worst_sum, 1e-5);
			check.bound("acc - 1", worst_acc, 1e-6);
			check.bound("white-background rgb outside [0, 1]", worst_rgb, 1e-6);
			check.bound("negative weight", -min_w, 0.0);
		}
		const auto ms = time(run);
		// bytes = n S (16 raw + 4 z + 4 weights) + n 12 (rays_d) + n 24 (rgb, depth, disp, acc).
		// FLOPs = n S 27: delta 2, alpha 4 (max, mul, exp, sub), w 1, 3 sigmoids 9, rgb 6, depth 2,
		// acc 1, transmittance 2.
		add_row("composite_forward", size_label(n, n_samples), Precision::FP32, ms,
		        (double)n_points * 24.0 + (double)n * 36.0, (double)n_points * 27.0, check.summary());
	}

	if (wanted("composite_backward")) {
		auto run = [&] {
			m_dev.composite_backward(dL_draw.data(), dL_drgb.data(), raw.data(), z.data(), d.data(), n, n_samples, 0,
			                         spec);
		};
		run();
		const auto got = download(m_dev, dL_draw);
		StageCheck check("composite_backward");
		if (m_ref) {
			Buffer<float> r_raw = make_buffer(*m_ref, raw_host), r_z = make_buffer(*m_ref, z_host),
			              r_d = make_buffer(*m_ref, rays.rays_d), r_g = make_buffer(*m_ref, dL_drgb_host);
			Buffer<float> r_out = m_ref->allocate<float>(4 * n_points);
			m_ref->composite_backward(r_out.data(), r_g.data(), r_raw.data(), r_z.data(), r_d.data(), n, n_samples,
			                          0, spec);
			const auto ref = download(*m_ref, r_out);
			// dL/dsigma_k = T_k (g_k - S_k) with S_k a back-to-front sum of up to S terms: its
			// rounding is ~S ulp of the largest term, and g_k - S_k may cancel, so the bound is
			// absolute: S * 4 ulp of the largest gradient, plus 1e-4 relative.
			const double atol = n_samples * 4.0 * std::ldexp(max_abs(ref.data(), ref.size()), -23);
			check.arrays("dL_draw", got, ref, Tolerance{atol, 1e-4});
		} else {
			// Directional derivative on a subset of rays: the loss sum_r dL_drgb_r . rgb_r(raw) in
			// double by central differences along random directions, against sum dL_draw . v.
			// Samples with |sigma| < 1e-2 are left out of v (relu's kink).
			const size_t n_rays_checked = std::min<size_t>(n, 32);
			std::mt19937_64 rng(43);
			std::normal_distribution<double> normal(0.0, 1.0);
			for (int trial = 0; trial < 3; ++trial) {
				std::vector<double> v(4 * n_rays_checked * n_samples);
				for (size_t i = 0; i < v.size(); ++i)
					v[i] = (i % 4 == 3 && std::fabs(raw_host[i]) < 1e-2) ? 0.0 : normal(rng);
				const double h = 1e-6;
				auto loss_at = [&](double sign) {
					double loss = 0;
					std::vector<double> raw_r(4 * n_samples);
					for (size_t r = 0; r < n_rays_checked; ++r) {
						for (int i = 0; i < 4 * n_samples; ++i)
							raw_r[i] = raw_host[r * 4 * n_samples + i] + sign * h * v[r * 4 * n_samples + i];
						const RayRef o = composite_ray_ref(nullptr, raw_r.data(), z_host.data() + r * n_samples,
						                                   rays.rays_d.data() + 3 * r, n_samples, 4, spec.white_bkgd);
						for (int c = 0; c < 3; ++c) loss += dL_drgb_host[3 * r + c] * o.rgb[c];
					}
					return loss;
				};
				const double fd = (loss_at(1.0) - loss_at(-1.0)) / (2.0 * h);
				double analytic = 0, scale = 0;
				for (size_t i = 0; i < v.size(); ++i) {
					analytic += got[i] * v[i];
					scale += std::fabs(got[i] * v[i]);
				}
				// float gradients (~1e-6 relative each) summed: 1e-4 of the sum of magnitudes.
				check.bound("directional derivative vs double central difference", std::fabs(analytic - fd),
				            1e-4 * scale + 1e-12);
			}
			// The unused fifth-and-beyond channels do not exist here (stride 4); all gradients finite.
			bool finite = true;
			for (float g : got) finite = finite && std::isfinite(g);
			check.require(finite, "non-finite dL_draw");
		}
		const auto ms = time(run);
		// bytes = n S (16 raw + 4 z + 16 dL_draw) + n 24 (rays_d, dL_drgb).
		// FLOPs = n S 45: the forward's alpha and transmittance again (~12), then per sample
		// 3 sigmoids (9), g and the rgb gradients (12), dL/dalpha and dsigma (8), the suffix (4).
		add_row("composite_backward", size_label(n, n_samples), Precision::FP32, ms,
		        (double)n_points * 36.0 + (double)n * 24.0, (double)n_points * 45.0, check.summary());
	}
}

void KernelBench::bench_resample(const RayInputs& rays) {
	const std::string stage = "resample";
	if (!wanted(stage)) return;
	const size_t n = rays.n;
	const int nc = m_sizes.n_coarse, nf = m_sizes.n_fine, nt = nc + nf;
	// Inputs as in training: stratified z and the weights raw2outputs makes of a synthetic raw.
	const std::vector<float> zc_host = host_z(n, nc, 5);
	const std::vector<float> raw_host = synthetic_raw(n * nc, 50);
	std::vector<float> w_host(n * nc);
	{
		std::vector<double> w(nc);
		for (size_t r = 0; r < n; ++r) {
			composite_ray_ref(w.data(), raw_host.data() + r * nc * 4, zc_host.data() + r * nc,
			                  rays.rays_d.data() + 3 * r, nc, 4, true);
			for (int k = 0; k < nc; ++k) w_host[r * nc + k] = (float)w[k];
		}
	}
	PdfSpec spec;
	spec.det = false;  // training (perturb > 0)
	spec.seed = 77;
	spec.step = 5;
	Buffer<float> zc = make_buffer(m_dev, zc_host), w = make_buffer(m_dev, w_host);
	Buffer<float> z_all = m_dev.allocate<float>(n * nt), z_fine = m_dev.allocate<float>(n * nf);
	auto run = [&] { m_dev.resample(z_all.data(), z_fine.data(), zc.data(), w.data(), n, nc, nf, 0, spec); };
	run();
	const auto got_all = download(m_dev, z_all), got_fine = download(m_dev, z_fine);
	StageCheck check(stage);
	if (m_ref) {
		Buffer<float> r_zc = make_buffer(*m_ref, zc_host), r_w = make_buffer(*m_ref, w_host);
		Buffer<float> r_all = m_ref->allocate<float>(n * nt), r_fine = m_ref->allocate<float>(n * nf);
		m_ref->resample(r_all.data(), r_fine.data(), r_zc.data(), r_w.data(), n, nc, nf, 0, spec);
		// The cdf is a running sum whose rounding may differ by FMA contraction; a draw u within
		// an ulp of a cdf value may then fall into the neighbouring bin. The inverse CDF is
		// continuous across ordinary bin edges (such a sample still matches to ~1e-5), but not
		// across degenerate bins (denom < 1e-5 replaced by 1), so allow 0.1% outliers over an
		// absolute 1e-4 (z in [2, 6], bins ~0.06 wide).
		const Tolerance tol{1e-4, 0.0, 1e-3};
		check.arrays("z_fine", got_fine, download(*m_ref, r_fine), tol);
		check.arrays("z_all", got_all, download(*m_ref, r_all), tol);
	} else {
		// z_all is sorted and is exactly the merge of z_coarse and z_fine; z_fine lies within the
		// bins (the coarse midpoints).
		bool sorted = true, merged = true;
		double outside = 0;
		for (size_t r = 0; r < n; ++r) {
			const float* a = got_all.data() + r * nt;
			for (int k = 1; k < nt; ++k) sorted = sorted && a[k - 1] <= a[k];
			std::vector<float> expect(zc_host.begin() + r * nc, zc_host.begin() + (r + 1) * nc);
			expect.insert(expect.end(), got_fine.begin() + r * nf, got_fine.begin() + (r + 1) * nf);
			std::sort(expect.begin(), expect.end());
			merged = merged && std::equal(expect.begin(), expect.end(), a);
			const float* zr = zc_host.data() + r * nc;
			const double lo = 0.5 * (zr[0] + zr[1]), hi = 0.5 * (zr[nc - 2] + zr[nc - 1]);
			for (int k = 0; k < nf; ++k) {
				const double s = got_fine[r * nf + k];
				outside = std::max({outside, lo - s, s - hi});
			}
		}
		check.require(sorted, "z_all not sorted along a ray");
		check.require(merged, "z_all is not sort(cat(z_coarse, z_fine))");
		check.bound("z_fine outside the coarse midpoints", outside, 1e-5);
		// The draws follow the weights: the mean of z_fine tracks the weighted mean of the bins.
		double worst_mean = 0;
		for (size_t r = 0; r < n; ++r) {
			double sw = 0, swz = 0, mean_fine = 0;
			const float* zr = zc_host.data() + r * nc;
			for (int k = 1; k < nc - 1; ++k) {
				const double wk = w_host[r * nc + k] + 1e-5;
				sw += wk;
				swz += wk * 0.25 * (zr[k - 1] + 2.0 * zr[k] + zr[k + 1]);  // the bin's centre
			}
			for (int k = 0; k < nf; ++k) mean_fine += got_fine[r * nf + k] / nf;
			worst_mean = std::max(worst_mean, std::fabs(mean_fine - swz / sw));
		}
		// With nf independent draws the sample mean's error is ~ spread / sqrt(nf) <= 4 / sqrt(nf);
		// 2.5 times that is a loose but failing-capable bound (a wrong cdf moves the mean by ~1).
		check.bound("mean of z_fine vs weighted mean of bins", worst_mean, 2.5 * 4.0 / std::sqrt((double)nf));
	}
	const auto ms = time(run);
	// bytes = n (4 Nc z + 4 Nc weights + 4 Nf z_fine + 4 (Nc + Nf) z_all).
	// FLOPs = n (3 Nc cdf (add eps, div, add) + 2 Nc midpoints + Nf (log2 Nc compares + 7 for the
	// interpolation) + (Nc + Nf) merge compares); compares count as operations.
	const double flops = (double)n * (5.0 * nc + nf * (std::log2((double)nc) + 7.0) + nt);
	add_row(stage, size_label(n, nc) + "+" + std::to_string(nf), Precision::FP32, ms,
	        (double)n * 4.0 * (2.0 * nc + nf + nt), flops, check.summary());
}

} // namespace nerf::bench
