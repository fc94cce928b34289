// Per-element Adam (torch.optim.Adam, no weight decay, amsgrad off) and the loss.
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)      (t = 1-based step)
#pragma once

#include "nerf/common.h"

#include <cmath>

namespace nerf {

struct AdamSpec {
	float lr = 5e-4f;
	float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
	int step = 1;  ///< t, counted from 1 as torch does
	/// Host-computed bias corrections, so every backend uses the same rounded constants.
	float step_size = 0.0f;        ///< lr / (1 - beta1^t)
	float inv_sqrt_bias2 = 0.0f;   ///< 1 / sqrt(1 - beta2^t)
};

/// Fills step_size and inv_sqrt_bias2 from lr, betas and step (in double, then rounded once).
inline AdamSpec adam_prepare(AdamSpec spec) {
	const double bias1 = 1.0 - std::pow((double)spec.beta1, spec.step);
	const double bias2 = 1.0 - std::pow((double)spec.beta2, spec.step);
	spec.step_size = (float)((double)spec.lr / bias1);
	spec.inv_sqrt_bias2 = (float)(1.0 / std::sqrt(bias2));
	return spec;
}

NERF_HD inline void adam_update(float* __restrict__ param, float* __restrict__ m, float* __restrict__ v, float grad,
                                const AdamSpec& spec) {
	const float m_new = spec.beta1 * *m + (1.0f - spec.beta1) * grad;
	const float v_new = spec.beta2 * *v + (1.0f - spec.beta2) * grad * grad;
	*m = m_new;
	*v = v_new;
	const float denom = sqrtf(v_new) * spec.inv_sqrt_bias2 + spec.eps;
	*param -= spec.step_size * m_new / denom;
}

/// nerf-pytorch's learning-rate schedule: lrate * 0.1^(step / (lrate_decay * 1000)).
inline float learning_rate(float lrate, int lrate_decay, long step) {
	return (float)((double)lrate * std::pow(0.1, (double)step / ((double)lrate_decay * 1000.0)));
}

/// PSNR of a mean squared error, as the reference's mse2psnr: -10 log10(mse).
inline float mse_to_psnr(double mse) { return (float)(-10.0 * std::log10(mse)); }

} // namespace nerf
