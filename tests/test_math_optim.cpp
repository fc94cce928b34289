// Tests of include/nerf/math/optim.h: adam_update/adam_step_constants against a double implementation of
// torch.optim.Adam, nerf-pytorch's learning-rate schedule, and mse2psnr.
#include <catch2/catch.hpp>

#include "nerf/backend.h"
#include "nerf/math/optim.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

using namespace nerf;

namespace {

// torch.optim.Adam's single-tensor step (no amsgrad), with python-float (double) betas; weight_decay is
// torch's L2 term (grad = grad.add(param, alpha=weight_decay)).
struct TorchAdamReference {
	double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
	int step = 0;
	std::vector<double> param, m, v;

	void update(const std::vector<float>& grad) {
		++step;
		const double bias_correction1 = 1.0 - std::pow(beta1, step);
		const double bias_correction2 = 1.0 - std::pow(beta2, step);
		const double step_size = lr / bias_correction1;
		for (size_t i = 0; i < param.size(); ++i) {
			const double g = grad[i] + weight_decay * param[i];
			m[i] += (g - m[i]) * (1.0 - beta1);  // exp_avg.lerp_(grad, 1 - beta1)
			v[i] = v[i] * beta2 + (1.0 - beta2) * g * g;
			const double denom = std::sqrt(v[i]) / std::sqrt(bias_correction2) + eps;
			param[i] -= step_size * m[i] / denom;
		}
	}
};

} // namespace

TEST_CASE("adam_step_constants: bias corrections by hand", "[math][optim]") {
	AdamSpec spec;
	spec.lr = 5e-4f;
	AdamStepConstants c = adam_step_constants(spec, 1);
	// The betas are floats: 0.999f = 0.99900001287 moves 1 - beta2 by 1.3e-5 relative (0.9f: 2.4e-7).
	// adam_update uses the same float betas for m and v, so the bias-corrected moments are unaffected;
	// the hand values (exact decimal betas) are therefore checked to 2e-5 relative.
	CHECK(c.step_size == Approx(5e-3).epsilon(1e-6));                    // lr / (1 - 0.9)
	CHECK(c.inv_sqrt_bias2 == Approx(31.6227766016838).epsilon(2e-5));   // 1 / sqrt(1 - 0.999)

	c = adam_step_constants(spec, 10);
	CHECK(c.step_size == Approx(5e-4 / 0.6513215599).epsilon(1e-6));     // lr / (1 - 0.9^10)
	CHECK(c.inv_sqrt_bias2 == Approx(10.022515922231536).epsilon(2e-5));  // 1 / sqrt(1 - 0.999^10)

	c = adam_step_constants(spec, 100000);  // late in training both corrections tend to 1
	CHECK(c.step_size == Approx(5e-4).epsilon(1e-6));
	CHECK(c.inv_sqrt_bias2 == Approx(1.0).epsilon(1e-6));
}

TEST_CASE("adam_step_constants: the powers by squaring agree with std::pow to a float rounding", "[math][optim]") {
	// power_by_squaring exists so that host and device round identically; it must still be the
	// power torch computes. In double its error is a few ulp (1e-15) at t = 2e5, so after the one
	// rounding to float the constants equal std::pow's, or are one float ulp away where std::pow's
	// value lies within a few double ulps of a float rounding boundary.
	AdamSpec spec;
	spec.lr = 5e-4f;
	for (int t : {1, 2, 3, 7, 64, 1000, 4097, 65535, 200000}) {
		INFO("t = " << t);
		CHECK(power_by_squaring(spec.beta1, t) == Approx(std::pow((double)spec.beta1, t)).epsilon(1e-13));
		const AdamStepConstants c = adam_step_constants(spec, t);
		const double bias1 = 1.0 - std::pow((double)spec.beta1, t), bias2 = 1.0 - std::pow((double)spec.beta2, t);
		CHECK(std::fabs(c.step_size - (float)(spec.lr / bias1)) <= std::nextafter(c.step_size, 1.0f) - c.step_size);
		CHECK(std::fabs(c.inv_sqrt_bias2 - (float)(1.0 / std::sqrt(bias2))) <=
		      std::nextafter(c.inv_sqrt_bias2, 1e9f) - c.inv_sqrt_bias2);
	}
}

TEST_CASE("adam_update: the first step moves each parameter by lr * g / (|g| + eps)", "[math][optim]") {
	AdamSpec spec;
	spec.lr = 1e-3f;
	const AdamStepConstants c = adam_step_constants(spec, 1);
	for (float g : {0.5f, -2.0f, 1e-4f, -3e-8f}) {
		float param = 0.25f, m = 0.0f, v = 0.0f;
		adam_update(&param, &m, &v, g, spec, c);
		// m = 0.1 g, v = 0.001 g^2; bias-corrected: m_hat = g, sqrt(v_hat) = |g|.
		const double expected_move = -1e-3 * g / (std::fabs(g) + 1e-8);
		INFO("g = " << g);
		CHECK(std::fabs((param - 0.25) - expected_move) < 1e-8 + 1e-5 * std::fabs(expected_move));
		CHECK(m == Approx(0.1 * g).epsilon(1e-6));
		CHECK(v == Approx(1e-3 * g * g).epsilon(3e-5));
	}
	// A zero gradient from zero moments leaves the parameter alone.
	float param = 0.25f, m = 0.0f, v = 0.0f;
	adam_update(&param, &m, &v, 0.0f, spec, c);
	CHECK(param == 0.25f);
	CHECK(m == 0.0f);
	CHECK(v == 0.0f);
}

TEST_CASE("adam_update: every multiply-add is one explicit fmaf", "[math][optim]") {
	// The bits the update must give whatever the compiler contracts (the GPU test compares the CUDA
	// kernel with the CPU bit for bit; this pins the CPU side to the written operations).
	AdamSpec spec;
	spec.lr = 3e-3f;
	const AdamStepConstants c = adam_step_constants(spec, 5);
	std::mt19937 rng(3);
	std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
	for (int i = 0; i < 1000; ++i) {
		const float p0 = unit(rng), m0 = 1e-2f * unit(rng), v0 = 1e-4f * (1.0f + unit(rng)), g = 1e-2f * unit(rng);
		float p = p0, m = m0, v = v0;
		adam_update(&p, &m, &v, g, spec, c);
		volatile float one_minus_b1 = 1.0f - spec.beta1, one_minus_b2 = 1.0f - spec.beta2;  // no contraction below
		volatile float scaled_g = one_minus_b1 * g, scaled_g2 = one_minus_b2 * g;
		volatile float scaled_gg = scaled_g2 * g;
		const float m_expected = std::fma(spec.beta1, m0, (float)scaled_g);
		const float v_expected = std::fma(spec.beta2, v0, (float)scaled_gg);
		const float denom = std::fma(std::sqrt(v_expected), c.inv_sqrt_bias2, spec.eps);
		volatile float numerator = c.step_size * m_expected;
		volatile float quotient = numerator / denom;
		const float p_expected = p0 - (float)quotient;
		INFO("element " << i);
		REQUIRE(m == m_expected);
		REQUIRE(v == v_expected);
		REQUIRE(p == p_expected);
	}
}

TEST_CASE("adam_begin_step: a set skip flag leaves the step count alone and counts the skip", "[math][optim]") {
	AdamSpec spec;
	spec.lr = 1e-3f;
	AdamCounter counter;
	const uint32_t clear = 0, set = 1;
	CHECK(adam_begin_step(&counter, spec, nullptr));
	CHECK(counter.step == 1);
	CHECK(counter.current.step_size == adam_step_constants(spec, 1).step_size);
	CHECK(adam_begin_step(&counter, spec, &clear));
	CHECK(counter.step == 2);
	CHECK_FALSE(adam_begin_step(&counter, spec, &set));
	CHECK(counter.step == 2);
	CHECK(counter.skipped == 1);
	CHECK(counter.skip_current != 0u);
	CHECK(adam_begin_step(&counter, spec, &clear));
	CHECK(counter.step == 3);  // the next real update is t = 3, as torch's after a skipped step
	CHECK(counter.skip_current == 0u);
	CHECK(counter.current.inv_sqrt_bias2 == adam_step_constants(spec, 3).inv_sqrt_bias2);
}

TEST_CASE("cpu backend adam_step: the shared math's bits, and a set overflow flag changes nothing", "[optim][backend]") {
	// The backend is compiled with -march=native (hardware FMA); the reference here is the same
	// inline function compiled in this test without it (libm's fmaf): explicit fmaf makes both the same.
	std::unique_ptr<Backend> cpu = create_cpu_backend(2);
	const size_t n = 70001;  // above the backend's parallel threshold
	std::mt19937 rng(4);
	std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
	std::vector<float> p0(n), m0(n), v0(n), g(n);
	for (size_t i = 0; i < n; ++i) {
		p0[i] = unit(rng);
		m0[i] = 1e-2f * unit(rng);
		v0[i] = 1e-4f * (1.0f + unit(rng));
		g[i] = 1e-2f * unit(rng);
	}
	AdamSpec spec;
	spec.lr = 5e-4f;
	Buffer<float> p = cpu->allocate<float>(n), m = cpu->allocate<float>(n), v = cpu->allocate<float>(n),
	              grads = cpu->allocate<float>(n);
	Buffer<AdamCounter> counter = cpu->allocate<AdamCounter>(1);
	Buffer<uint32_t> overflow = cpu->allocate<uint32_t>(1);
	std::copy(p0.begin(), p0.end(), p.data());
	std::copy(m0.begin(), m0.end(), m.data());
	std::copy(v0.begin(), v0.end(), v.data());
	std::copy(g.begin(), g.end(), grads.data());
	*counter.data() = AdamCounter{};
	counter.data()->step = 2;

	// An overflowing step: parameters, moments and t untouched, the skip counted.
	*overflow.data() = 1u;
	cpu->adam_step(p.data(), m.data(), v.data(), grads.data(), n, spec, counter.data(), overflow.data());
	CHECK(std::equal(p0.begin(), p0.end(), p.data()));
	CHECK(std::equal(m0.begin(), m0.end(), m.data()));
	CHECK(std::equal(v0.begin(), v0.end(), v.data()));
	CHECK(counter.data()->step == 2);
	CHECK(counter.data()->skipped == 1);

	// A clean step is update t = 3, bit for bit the shared math's.
	*overflow.data() = 0u;
	cpu->adam_step(p.data(), m.data(), v.data(), grads.data(), n, spec, counter.data(), overflow.data());
	CHECK(counter.data()->step == 3);
	const AdamStepConstants c = adam_step_constants(spec, 3);
	size_t mismatches = 0, moved = 0;
	for (size_t i = 0; i < n; ++i) {
		float pe = p0[i], me = m0[i], ve = v0[i];
		adam_update(&pe, &me, &ve, g[i], spec, c);
		mismatches += pe != p.data()[i] || me != m.data()[i] || ve != v.data()[i];
		moved += p.data()[i] != p0[i];
	}
	CHECK(mismatches == 0);
	CHECK(moved > n / 2);
}

TEST_CASE("adam_update over 40 steps matches torch.optim.Adam in double", "[math][optim]") {
	const int n = 256, n_steps = 40;
	std::mt19937 rng(8);
	std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
	std::vector<float> param(n), m(n, 0.0f), v(n, 0.0f), grad_scale(n);
	for (int i = 0; i < n; ++i) {
		param[i] = unit(rng);
		// Gradients from 1e-7 (where eps matters) to 10, and some parameters that never get one.
		grad_scale[i] = i % 16 == 0 ? 0.0f : std::pow(10.0f, -7.0f + 8.0f * (0.5f + 0.5f * unit(rng)));
	}
	TorchAdamReference reference;
	reference.param.assign(param.begin(), param.end());
	reference.m.assign(n, 0.0);
	reference.v.assign(n, 0.0);
	const std::vector<double> start = reference.param;

	for (int step = 1; step <= n_steps; ++step) {
		// A decaying learning rate, as the trainer passes a new one every step.
		const float lr = 1e-2f * std::pow(0.97f, (float)step);
		AdamSpec spec;
		spec.lr = lr;
		const AdamStepConstants c = adam_step_constants(spec, step);
		reference.lr = lr;
		std::vector<float> grad(n);
		for (int i = 0; i < n; ++i) grad[i] = grad_scale[i] * (0.3f + unit(rng));  // a biased, noisy gradient
		for (int i = 0; i < n; ++i) adam_update(&param[i], &m[i], &v[i], grad[i], spec, c);
		reference.update(grad);
	}
	for (int i = 0; i < n; ++i) {
		INFO("parameter " << i << " grad scale " << grad_scale[i]);
		const double moved = reference.param[i] - start[i];
		// Each step rounds the parameter (|p| < 1.5: half an ulp is 6e-8), 40 steps: <= 2.4e-6 in the
		// worst case; the float update itself is good to ~1e-6 relative.
		CHECK(std::fabs(param[i] - reference.param[i]) <= 3e-6 + 1e-5 * std::fabs(moved));
		// m uses 1 - 0.9f (2.4e-7 relative from 0.1), v uses 1 - 0.999f (1.3e-5 relative from 0.001).
		CHECK(std::fabs(m[i] - reference.m[i]) <= 1e-5 * std::fabs(reference.m[i]) + 1e-30);
		CHECK(std::fabs(v[i] - reference.v[i]) <= 3e-5 * std::fabs(reference.v[i]) + 1e-30);
		if (grad_scale[i] == 0.0f) CHECK(param[i] == (float)start[i]);
	}
	// The parameters with gradients did move: about lr per step at the start.
	CHECK(std::fabs(param[1] - start[1]) > 0.05);
}

TEST_CASE("adam_update with weight_decay over 30 steps matches torch.optim.Adam's L2 in double", "[math][optim]") {
	// instant-ngp's network settings: lr 1e-2, betas (0.9, 0.99), eps 1e-15, weight decay 1e-6; and a
	// large decay (0.1) where the L2 term dominates small gradients.
	for (float decay : {1e-6f, 0.1f}) {
		const int n = 128, n_steps = 30;
		std::mt19937 rng(11);
		std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
		std::vector<float> param(n), m(n, 0.0f), v(n, 0.0f);
		for (float& p : param) p = unit(rng);
		TorchAdamReference reference;
		reference.beta2 = 0.99;
		reference.eps = 1e-15;
		reference.weight_decay = decay;
		reference.param.assign(param.begin(), param.end());
		reference.m.assign(n, 0.0);
		reference.v.assign(n, 0.0);
		const std::vector<double> start = reference.param;
		TorchAdamReference plain = reference;  // the same run without decay: the decay must matter
		plain.weight_decay = 0.0;
		AdamSpec spec;
		spec.lr = 1e-2f;
		spec.beta2 = 0.99f;
		spec.eps = 1e-15f;
		spec.weight_decay = decay;
		for (int step = 1; step <= n_steps; ++step) {
			std::vector<float> grad(n);
			for (int i = 0; i < n; ++i) grad[i] = (i % 4 == 0 ? 1e-6f : 1e-2f) * unit(rng);
			const AdamStepConstants c = adam_step_constants(spec, step);
			for (int i = 0; i < n; ++i) adam_update(&param[i], &m[i], &v[i], grad[i], spec, c);
			reference.lr = plain.lr = spec.lr;
			reference.update(grad);
			plain.update(grad);
		}
		double largest_effect = 0.0;
		for (int i = 0; i < n; ++i) {
			INFO("decay " << decay << " parameter " << i);
			// As the plain Adam test: 30 roundings of |p| < 1.5, and ~1e-5 relative on the movement; v uses
			// 1 - 0.99f (2.2e-7 relative from 0.01 in double betas).
			const double moved = reference.param[i] - start[i];
			CHECK(std::fabs(param[i] - reference.param[i]) <= 3e-6 + 1e-5 * std::fabs(moved));
			largest_effect = std::max(largest_effect, std::fabs(reference.param[i] - plain.param[i]));
		}
		// With decay 0.1 the L2 term moves the small-gradient parameters by ~lr per step; 1e-6 still
		// changes the parameters of gradient 1e-6 visibly (their g is p 1e-6 + g ~ 2 g).
		CHECK(largest_effect > (decay > 1e-3f ? 0.1 : 1e-3));
	}
}

TEST_CASE("adam_update: the weight decay is one fmaf on the gradient, and only when nonzero", "[math][optim]") {
	AdamSpec spec;
	spec.lr = 1e-2f;
	spec.weight_decay = 3e-3f;
	const AdamStepConstants c = adam_step_constants(spec, 4);
	AdamSpec plain = spec;
	plain.weight_decay = 0.0f;
	std::mt19937 rng(12);
	std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
	for (int i = 0; i < 500; ++i) {
		const float p0 = unit(rng), m0 = 1e-2f * unit(rng), v0 = 1e-4f * (1.0f + unit(rng)), g = 1e-2f * unit(rng);
		float p = p0, m = m0, v = v0;
		adam_update(&p, &m, &v, g, spec, c);
		float pe = p0, me = m0, ve = v0;
		adam_update(&pe, &me, &ve, std::fma(spec.weight_decay, p0, g), plain, c);
		REQUIRE(p == pe);
		REQUIRE(m == me);
		REQUIRE(v == ve);
	}
	// weight_decay 0 is not fmaf(0, p, g): a gradient of -0 stays -0 in m (an fmaf would make it +0).
	float p = 1.0f, m = -0.0f, v = 0.0f;
	adam_update(&p, &m, &v, -0.0f, plain, c);
	CHECK(std::signbit(m));
}

TEST_CASE("adam_update with skip_zero_grad: a zero gradient leaves p, m and v alone", "[math][optim]") {
	AdamSpec spec;
	spec.lr = 1e-2f;
	spec.beta2 = 0.99f;
	spec.eps = 1e-15f;
	spec.skip_zero_grad = true;
	AdamSpec dense = spec;
	dense.skip_zero_grad = false;
	const AdamStepConstants c = adam_step_constants(spec, 7);
	for (float g : {0.0f, -0.0f}) {
		float p = 0.3f, m = 2e-3f, v = 4e-6f;
		adam_update(&p, &m, &v, g, spec, c);
		CHECK(p == 0.3f);
		CHECK(m == 2e-3f);
		CHECK(v == 4e-6f);
		// Without the skip the same zero gradient decays the moments and moves p (plain Adam).
		float pd = 0.3f, md = 2e-3f, vd = 4e-6f;
		adam_update(&pd, &md, &vd, g, dense, c);
		CHECK(md != 2e-3f);
		CHECK(vd != 4e-6f);
		CHECK(pd != 0.3f);
	}
	// Any nonzero gradient, however small, is the plain update, bit for bit.
	for (float g : {1e-30f, -3e-4f, 0.5f}) {
		float p = 0.3f, m = 2e-3f, v = 4e-6f, pd = 0.3f, md = 2e-3f, vd = 4e-6f;
		adam_update(&p, &m, &v, g, spec, c);
		adam_update(&pd, &md, &vd, g, dense, c);
		CHECK(p == pd);
		CHECK(m == md);
		CHECK(v == vd);
	}
	// The skip looks at the gradient as given, before the weight decay.
	spec.weight_decay = 0.5f;
	float p = 0.3f, m = 2e-3f, v = 4e-6f;
	adam_update(&p, &m, &v, 0.0f, spec, c);
	CHECK(p == 0.3f);
}

TEST_CASE("cpu backend adam_step: skip_zero_grad and weight decay through the backend", "[optim][backend]") {
	std::unique_ptr<Backend> cpu = create_cpu_backend(2);
	const size_t n = 70001;
	std::mt19937 rng(13);
	std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
	std::vector<float> p0(n), m0(n), v0(n), g(n);
	for (size_t i = 0; i < n; ++i) {
		p0[i] = unit(rng);
		m0[i] = 1e-2f * unit(rng);
		v0[i] = 1e-4f * (1.0f + unit(rng));
		g[i] = i % 3 == 0 ? 0.0f : 1e-2f * unit(rng);  // a third of the entries got no gradient
	}
	AdamSpec spec;
	spec.lr = 1e-2f;
	spec.skip_zero_grad = true;
	spec.weight_decay = 1e-6f;
	Buffer<float> p = cpu->allocate<float>(n), m = cpu->allocate<float>(n), v = cpu->allocate<float>(n),
	              grads = cpu->allocate<float>(n);
	Buffer<AdamCounter> counter = cpu->allocate<AdamCounter>(1);
	std::copy(p0.begin(), p0.end(), p.data());
	std::copy(m0.begin(), m0.end(), m.data());
	std::copy(v0.begin(), v0.end(), v.data());
	std::copy(g.begin(), g.end(), grads.data());
	*counter.data() = AdamCounter{};
	cpu->adam_step(p.data(), m.data(), v.data(), grads.data(), n, spec, counter.data(), nullptr);
	CHECK(counter.data()->step == 1);
	const AdamStepConstants c = adam_step_constants(spec, 1);
	size_t mismatches = 0, skipped_moved = 0;
	for (size_t i = 0; i < n; ++i) {
		float pe = p0[i], me = m0[i], ve = v0[i];
		adam_update(&pe, &me, &ve, g[i], spec, c);
		mismatches += pe != p.data()[i] || me != m.data()[i] || ve != v.data()[i];
		if (g[i] == 0.0f) skipped_moved += p.data()[i] != p0[i] || m.data()[i] != m0[i] || v.data()[i] != v0[i];
	}
	CHECK(mismatches == 0);
	CHECK(skipped_moved == 0);
}

TEST_CASE("ngp_learning_rate: nerfacc's warm-up and step decay, against a table", "[math][optim]") {
	struct Row {
		long step, n_iters;
		double factor;  // of lr
	};
	// n_iters 20000: milestones 10000, 15000, 18000. n_iters 7: 7 // 2 = 3, 21 // 4 = 5, 63 // 10 = 6.
	// n_iters 1: all three milestones are 0. Warm-up factor 0.01 + 0.99 min(step, 100) / 100.
	const Row rows[] = {{0, 20000, 0.01},           {1, 20000, 0.0199},        {50, 20000, 0.505},
	                    {99, 20000, 0.9901},        {100, 20000, 1.0},         {9999, 20000, 1.0},
	                    {10000, 20000, 0.33},       {14999, 20000, 0.33},      {15000, 20000, 0.1089},
	                    {17999, 20000, 0.1089},     {18000, 20000, 0.035937},  {25000, 20000, 0.035937},
	                    {2, 7, 0.0298},             {3, 7, 0.0397 * 0.33},     {4, 7, 0.0496 * 0.33},
	                    {5, 7, 0.0595 * 0.1089},    {6, 7, 0.0694 * 0.035937}, {0, 1, 0.01 * 0.035937},
	                    {60, 100, 0.604 * 0.33},    {75, 100, 0.7525 * 0.1089}, {90, 100, 0.901 * 0.035937}};
	for (const Row& r : rows) {
		INFO("step " << r.step << " of " << r.n_iters);
		CHECK(ngp_learning_rate(1e-2f, r.step, r.n_iters) == Approx(1e-2 * r.factor).epsilon(1e-6));
	}
	CHECK_THROWS_AS(ngp_learning_rate(1e-2f, -1, 100), nerf::Error);
}

TEST_CASE("learning_rate: lrate * 0.1^(step / (lrate_decay * 1000))", "[math][optim]") {
	CHECK(learning_rate(5e-4f, 250, 0) == Approx(5e-4).epsilon(1e-7));
	CHECK(learning_rate(5e-4f, 250, 1000) == Approx(4.954159724463839e-4).epsilon(1e-6));
	CHECK(learning_rate(5e-4f, 250, 125000) == Approx(1.5811388300841897e-4).epsilon(1e-6));
	CHECK(learning_rate(5e-4f, 250, 250000) == Approx(5e-5).epsilon(1e-6));
	CHECK(learning_rate(5e-4f, 250, 500000) == Approx(5e-6).epsilon(1e-6));
	CHECK(learning_rate(5e-4f, 500, 200000) == Approx(1.9905358527674862e-4).epsilon(1e-6));
	// The exponent is a real division, not an integer one: 1 step already decays.
	CHECK(learning_rate(5e-4f, 250, 1) < learning_rate(5e-4f, 250, 0));
}

TEST_CASE("mse_to_psnr: -10 log10(mse)", "[math][optim]") {
	CHECK(mse_to_psnr(0.01) == Approx(20.0).epsilon(1e-7));
	CHECK(mse_to_psnr(1e-3) == Approx(30.0).epsilon(1e-7));
	CHECK(mse_to_psnr(0.5) == Approx(3.010299956639812).epsilon(1e-7));
	CHECK(mse_to_psnr(0.0023) == Approx(26.38272163982407).epsilon(1e-7));
	CHECK(mse_to_psnr(1.0) == 0.0f);
	CHECK(std::isinf(mse_to_psnr(0.0)));
	CHECK(mse_to_psnr(0.0) > 0.0f);
}
