// bench_kernels' stages: the loss and Adam. Each is checked first, then timed;
// the bytes and FLOPs of each row are counted next to it (conventions: bench_kernels.cpp).
#include "kernel_bench.h"

namespace nerf::bench {

void KernelBench::bench_loss(int n_rays) {
	const std::string stage = "mse_loss";
	if (!wanted(stage)) return;
	const size_t n = (size_t)n_rays;
	const std::vector<float> rgb_host = uniform_floats(3 * n, 0.0, 1.0, 70), target_host = uniform_floats(3 * n, 0.0, 1.0, 71);
	const float grad_scale = 1.0f;
	Buffer<float> rgb = make_buffer(m_dev, rgb_host), target = make_buffer(m_dev, target_host);
	Buffer<float> loss = m_dev.allocate<float>(1), grad = m_dev.allocate<float>(3 * n);
	auto run = [&] { m_dev.mse_loss(loss.data(), grad.data(), rgb.data(), target.data(), n, grad_scale); };
	m_dev.fill_zero(loss.data(), sizeof(float));
	run();
	const auto got_loss = download(m_dev, loss), got_grad = download(m_dev, grad);
	StageCheck check(stage);
	// A mean of 3n squares: summation order alone changes it by ~log2(3n) ulp (pairwise or
	// tree reductions) up to ~3n ulp (serial): 1e-5 relative covers n <= 4096 with either.
	// The gradient is one subtraction and one scaling per element: 1e-6 relative.
	if (m_ref) {
		Buffer<float> r_rgb = make_buffer(*m_ref, rgb_host), r_target = make_buffer(*m_ref, target_host);
		Buffer<float> r_loss = m_ref->allocate<float>(1), r_grad = m_ref->allocate<float>(3 * n);
		m_ref->fill_zero(r_loss.data(), sizeof(float));
		m_ref->mse_loss(r_loss.data(), r_grad.data(), r_rgb.data(), r_target.data(), n, grad_scale);
		check.arrays("loss", got_loss, download(*m_ref, r_loss), Tolerance{0.0, 1e-5});
		check.arrays("dL_drgb", got_grad, download(*m_ref, r_grad), Tolerance{1e-12, 1e-6});
	} else {
		double sum = 0;
		std::vector<float> ref_grad(3 * n);
		for (size_t i = 0; i < 3 * n; ++i) {
			const double e = (double)rgb_host[i] - target_host[i];
			sum += e * e;
			ref_grad[i] = (float)(2.0 * e / (3.0 * n) * grad_scale);
		}
		check.arrays("loss vs double mean", got_loss, {(float)(sum / (3.0 * n))}, Tolerance{0.0, 1e-5});
		check.arrays("dL_drgb vs double 2 (rgb - target) / 3n", got_grad, ref_grad, Tolerance{1e-12, 1e-5});
	}
	const auto ms = time(run);
	// bytes = n 24 (rgb, target) + n 12 (gradient) + 4. FLOPs = n 3 4: difference, square, sum, scale.
	add_row(stage, size_label(n, 0), Precision::FP32, ms, (double)n * 36.0 + 4.0, (double)n * 12.0,
	        check.summary());
}

void KernelBench::bench_adam() {
	const std::string stage = "adam_step";
	if (!wanted(stage)) return;
	// The full parameter buffer of the model: coarse and fine networks.
	const MlpLayout coarse = make_mlp_layout(mlp_spec(), 0);
	const MlpLayout fine = make_mlp_layout_after(mlp_spec(), coarse);
	const size_t n = fine.end();
	std::vector<float> p_host(n);
	init_mlp_params_host(p_host.data(), coarse, 80);
	init_mlp_params_host(p_host.data(), fine, 81);
	const std::vector<float> g_host = normal_floats(n, 1e-3, 82), m_host = normal_floats(n, 1e-3, 83);
	std::vector<float> v_host(n);
	for (size_t i = 0; i < n; ++i) v_host[i] = m_host[i] * m_host[i] + 1e-8f;
	AdamSpec spec;
	spec.lr = 5e-4f;
	const int t = 10;  // the first update checked; the timed repeats go on counting
	AdamCounter counter_host;
	counter_host.step = t - 1;
	Buffer<float> p = make_buffer(m_dev, p_host), m = make_buffer(m_dev, m_host), v = make_buffer(m_dev, v_host),
	              g = make_buffer(m_dev, g_host);
	Buffer<AdamCounter> counter = m_dev.allocate<AdamCounter>(1);
	m_dev.upload(counter.data(), &counter_host, sizeof(counter_host));
	auto run = [&] { m_dev.adam_step(p.data(), m.data(), v.data(), g.data(), n, spec, counter.data(), nullptr); };
	run();
	const auto got_p = download(m_dev, p), got_m = download(m_dev, m), got_v = download(m_dev, v);
	StageCheck check(stage);
	// Against double Adam: ~8 rounded operations per element: 1e-5 relative. Where terms cancel
	// the error is relative to the terms, not the result, hence absolute floors of a few ulp of
	// the terms: m = b1 m + (1 - b1) g with |terms| <= ~5e-3 (ulp 4.7e-10): 1e-9; p - update with
	// |p| <= 0.13 (ulp 7.5e-9... 1.5e-8): 3e-8; v's terms are all positive.
	const Tolerance tol_p{3e-8, 1e-5}, tol_m{1e-9, 1e-5}, tol_v{1e-14, 1e-5};
	if (m_ref) {
		// The same shared math with explicit FMAs on both backends (optim.h): bit for bit.
		Buffer<float> rp = make_buffer(*m_ref, p_host), rm = make_buffer(*m_ref, m_host),
		              rv = make_buffer(*m_ref, v_host), rg = make_buffer(*m_ref, g_host);
		Buffer<AdamCounter> rc = m_ref->allocate<AdamCounter>(1);
		m_ref->upload(rc.data(), &counter_host, sizeof(counter_host));
		m_ref->adam_step(rp.data(), rm.data(), rv.data(), rg.data(), n, spec, rc.data(), nullptr);
		check.arrays("params", got_p, download(*m_ref, rp), Tolerance{0.0, 0.0});
		check.arrays("m", got_m, download(*m_ref, rm), Tolerance{0.0, 0.0});
		check.arrays("v", got_v, download(*m_ref, rv), Tolerance{0.0, 0.0});
	} else {
		// torch.optim.Adam in double from the formula.
		std::vector<float> ep(n), em(n), ev(n);
		const double b1 = spec.beta1, b2 = spec.beta2;
		for (size_t i = 0; i < n; ++i) {
			const double mm = b1 * m_host[i] + (1 - b1) * g_host[i];
			const double vv = b2 * v_host[i] + (1 - b2) * (double)g_host[i] * g_host[i];
			const double denom = std::sqrt(vv) / std::sqrt(1 - std::pow(b2, t)) + spec.eps;
			ep[i] = (float)(p_host[i] - spec.lr / (1 - std::pow(b1, t)) * mm / denom);
			em[i] = (float)mm;
			ev[i] = (float)vv;
		}
		check.arrays("params vs double Adam", got_p, ep, tol_p);
		check.arrays("m vs double Adam", got_m, em, tol_m);
		check.arrays("v vs double Adam", got_v, ev, tol_v);
	}
	const auto ms = time(run);
	// bytes = n 28: read p, m, v, g (16), write p, m, v (12).
	// FLOPs = n 14: m 3, v 4, sqrt 1, scale and eps 2, division 1, update 2 (+1 for the step size).
	add_row(stage, "P=" + std::to_string(n), Precision::FP32, ms, (double)n * 28.0, (double)n * 14.0,
	        check.summary());
}

} // namespace nerf::bench
