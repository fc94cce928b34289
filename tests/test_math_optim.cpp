// Tests of include/nerf/math/optim.h: adam_update/adam_prepare against a double implementation of
// torch.optim.Adam, nerf-pytorch's learning-rate schedule, and mse2psnr.
#include <catch2/catch.hpp>

#include "nerf/math/optim.h"

#include <cmath>
#include <random>
#include <vector>

using namespace nerf;

namespace {

// torch.optim.Adam's single-tensor step (no weight decay, no amsgrad), with python-float (double) betas.
struct TorchAdamReference {
	double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
	int step = 0;
	std::vector<double> param, m, v;

	void update(const std::vector<float>& grad) {
		++step;
		const double bias_correction1 = 1.0 - std::pow(beta1, step);
		const double bias_correction2 = 1.0 - std::pow(beta2, step);
		const double step_size = lr / bias_correction1;
		for (size_t i = 0; i < param.size(); ++i) {
			const double g = grad[i];
			m[i] += (g - m[i]) * (1.0 - beta1);  // exp_avg.lerp_(grad, 1 - beta1)
			v[i] = v[i] * beta2 + (1.0 - beta2) * g * g;
			const double denom = std::sqrt(v[i]) / std::sqrt(bias_correction2) + eps;
			param[i] -= step_size * m[i] / denom;
		}
	}
};

} // namespace

TEST_CASE("adam_prepare: bias corrections by hand", "[math][optim]") {
	AdamSpec spec;
	spec.lr = 5e-4f;
	spec.step = 1;
	AdamSpec prepared = adam_prepare(spec);
	// The betas are floats: 0.999f = 0.99900001287 moves 1 - beta2 by 1.3e-5 relative (0.9f: 2.4e-7).
	// adam_update uses the same float betas for m and v, so the bias-corrected moments are unaffected;
	// the hand values (exact decimal betas) are therefore checked to 2e-5 relative.
	CHECK(prepared.step_size == Approx(5e-3).epsilon(1e-6));                    // lr / (1 - 0.9)
	CHECK(prepared.inv_sqrt_bias2 == Approx(31.6227766016838).epsilon(2e-5));   // 1 / sqrt(1 - 0.999)
	CHECK(prepared.lr == spec.lr);
	CHECK(prepared.step == 1);

	spec.step = 10;
	prepared = adam_prepare(spec);
	CHECK(prepared.step_size == Approx(5e-4 / 0.6513215599).epsilon(1e-6));     // lr / (1 - 0.9^10)
	CHECK(prepared.inv_sqrt_bias2 == Approx(10.022515922231536).epsilon(2e-5));  // 1 / sqrt(1 - 0.999^10)

	spec.step = 100000;  // late in training both corrections tend to 1
	prepared = adam_prepare(spec);
	CHECK(prepared.step_size == Approx(5e-4).epsilon(1e-6));
	CHECK(prepared.inv_sqrt_bias2 == Approx(1.0).epsilon(1e-6));
}

TEST_CASE("adam_update: the first step moves each parameter by lr * g / (|g| + eps)", "[math][optim]") {
	AdamSpec spec;
	spec.lr = 1e-3f;
	spec.step = 1;
	spec = adam_prepare(spec);
	for (float g : {0.5f, -2.0f, 1e-4f, -3e-8f}) {
		float param = 0.25f, m = 0.0f, v = 0.0f;
		adam_update(&param, &m, &v, g, spec);
		// m = 0.1 g, v = 0.001 g^2; bias-corrected: m_hat = g, sqrt(v_hat) = |g|.
		const double expected_move = -1e-3 * g / (std::fabs(g) + 1e-8);
		INFO("g = " << g);
		CHECK(std::fabs((param - 0.25) - expected_move) < 1e-8 + 1e-5 * std::fabs(expected_move));
		CHECK(m == Approx(0.1 * g).epsilon(1e-6));
		CHECK(v == Approx(1e-3 * g * g).epsilon(3e-5));
	}
	// A zero gradient from zero moments leaves the parameter alone.
	float param = 0.25f, m = 0.0f, v = 0.0f;
	adam_update(&param, &m, &v, 0.0f, spec);
	CHECK(param == 0.25f);
	CHECK(m == 0.0f);
	CHECK(v == 0.0f);
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
		spec.step = step;
		spec = adam_prepare(spec);
		reference.lr = lr;
		std::vector<float> grad(n);
		for (int i = 0; i < n; ++i) grad[i] = grad_scale[i] * (0.3f + unit(rng));  // a biased, noisy gradient
		for (int i = 0; i < n; ++i) adam_update(&param[i], &m[i], &v[i], grad[i], spec);
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
