// Per-element Adam (torch.optim.Adam, amsgrad off) and the loss.
//   g += weight_decay p                      (torch's L2 weight decay; only when weight_decay != 0)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)      (t = 1-based step)
// With skip_zero_grad (tiny-cuda-nn's rule for its non-matrix parameters, the hash tables), an entry
// whose gradient is exactly 0 is left alone: p, m and v keep their values (t still advances: it is the
// network's step count, shared by all its entries).
// Written so that the CPU and the GPU agree bit for bit (see adam_update).
// Also the learning-rate schedules: nerf-pytorch's exponential decay and nerfacc's instant-ngp one.
#pragma once

#include "nerf/common.h"

#include <cmath>
#include <cstdint>

namespace nerf {

/// Adam's hyper-parameters for one update (the learning rate changes every step).
struct AdamSpec {
	float lr = 5e-4f;
	float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
	float weight_decay = 0.0f;    ///< torch's L2 term: g += weight_decay p before the moments; 0: off
	bool skip_zero_grad = false;  ///< an exactly-zero gradient leaves the entry's p, m, v unchanged
};

/// The bias corrections of update t, rounded once to float.
struct AdamStepConstants {
	float step_size = 0.0f;       ///< lr / (1 - beta1^t)
	float inv_sqrt_bias2 = 0.0f;  ///< 1 / sqrt(1 - beta2^t)
};

/// One network's optimiser step state, in backend memory, so that whether a step is skipped (an fp16
/// gradient overflow, found on the device) never needs the host to wait for the device.
struct AdamCounter {
	int32_t step = 0;     ///< t: updates applied so far (torch's state['step']); a skipped step does not count
	int32_t skipped = 0;  ///< updates skipped because the network's gradient was not finite
	AdamStepConstants current;  ///< the constants of the update in progress (written by adam_begin_step)
	uint32_t skip_current = 0;  ///< nonzero while the update in progress is skipped
};

/// b^e for e >= 0 by repeated squaring: multiplications only, so that no compiler can fuse any of
/// them into an FMA and host and device round identically (std::pow and CUDA's pow may differ in
/// the last bit).
NERF_HD inline double power_by_squaring(double b, int e) {
	double result = 1.0;
	while (e > 0) {
		if (e & 1) result *= b;
		b *= b;
		e >>= 1;
	}
	return result;
}

/// Bias corrections of update t (1-based) in double, rounded once. 1 - b^t is one explicit FMA on
/// b^(t-1), the same operation on every compiler; the division and the square root are IEEE-exact
/// on both host and device.
NERF_HD inline AdamStepConstants adam_step_constants(const AdamSpec& spec, int t) {
	const double b1 = spec.beta1, b2 = spec.beta2;
	const double bias1 = fma(-power_by_squaring(b1, t - 1), b1, 1.0);
	const double bias2 = fma(-power_by_squaring(b2, t - 1), b2, 1.0);
	AdamStepConstants c;
	c.step_size = (float)((double)spec.lr / bias1);
	c.inv_sqrt_bias2 = (float)(1.0 / sqrt(bias2));
	return c;
}

/// Starts one update of a network: when *skip_flag (may be null) is set, the update is skipped
/// (torch's GradScaler skips optimizer.step() on inf/NaN gradients) and only `skipped` counts it;
/// otherwise t advances and this update's constants are computed. Returns whether to update.
NERF_HD inline bool adam_begin_step(AdamCounter* counter, const AdamSpec& spec, const uint32_t* skip_flag) {
	if (skip_flag && *skip_flag) {
		counter->skipped += 1;
		counter->skip_current = 1u;
		return false;
	}
	counter->step += 1;
	counter->current = adam_step_constants(spec, counter->step);
	counter->skip_current = 0u;
	return true;
}

/// One parameter's update. Every multiply-add is an explicit fmaf and nothing else is contractible
/// (products feed only fmaf, a division or a square root), so GCC and nvcc, which would fuse
/// `b1 * m + (1 - b1) * g` in different places, compute the same bits.
/// skip_zero_grad looks at the gradient as given (before weight decay), as tiny-cuda-nn. The decay is
/// applied only when nonzero, so that the default path is the same operations (and bits) as before it
/// existed (fmaf(0, p, g) would turn g = -0 into +0 and an infinite p into NaN).
NERF_HD inline void adam_update(float* __restrict__ param, float* __restrict__ m, float* __restrict__ v, float grad,
                                const AdamSpec& spec, const AdamStepConstants& c) {
	if (spec.skip_zero_grad && grad == 0.0f) return;
	if (spec.weight_decay != 0.0f) grad = fmaf(spec.weight_decay, *param, grad);
	const float m_new = fmaf(spec.beta1, *m, (1.0f - spec.beta1) * grad);
	const float v_new = fmaf(spec.beta2, *v, ((1.0f - spec.beta2) * grad) * grad);
	*m = m_new;
	*v = v_new;
	const float denom = fmaf(sqrtf(v_new), c.inv_sqrt_bias2, spec.eps);
	*param -= (c.step_size * m_new) / denom;
}

/// nerf-pytorch's learning-rate schedule: lrate * 0.1^(step / (lrate_decay * 1000)).
inline float learning_rate(float lrate, int lrate_decay, long step) {
	return (float)((double)lrate * std::pow(0.1, (double)step / ((double)lrate_decay * 1000.0)));
}

/// nerfacc's instant-ngp schedule (torch's ChainedScheduler of LinearLR(start_factor 0.01, total_iters
/// 100) and MultiStepLR(milestones n_iters / 2, n_iters * 3 / 4, n_iters * 9 / 10, gamma 0.33)), for the
/// update after `step` completed steps (step 0: the first update):
///   lr * (0.01 + 0.99 min(step, 100) / 100) * 0.33^(milestones m with m <= step)
/// The milestones use integer division, as nerfacc's Python (max_steps // 2, max_steps * 3 // 4, ...).
inline float ngp_learning_rate(float lr, long step, long n_iters) {
	if (step < 0 || n_iters < 0) NERF_FAIL("ngp_learning_rate: step (" << step << ") and n_iters (" << n_iters << ") must be >= 0");
	const double warmup = 0.01 + 0.99 * (double)(step < 100 ? step : 100) / 100.0;
	const long milestones[3] = {n_iters / 2, n_iters * 3 / 4, n_iters * 9 / 10};
	double decay = 1.0;
	for (long m : milestones)
		if (step >= m) decay *= 0.33;
	return (float)((double)lr * warmup * decay);
}

/// PSNR of a mean squared error, as the reference's mse2psnr: -10 log10(mse).
inline float mse_to_psnr(double mse) { return (float)(-10.0 * std::log10(mse)); }

} // namespace nerf
