// Volume compositing, nerf-pytorch's raw2outputs, and its backward.
//
// Forward, for one ray of S samples with raw = (r, g, b, sigma[, unused]) per sample:
//   delta_k = (z_{k+1} - z_k) |d|, delta_{S-1} = 1e10 |d|
//   alpha_k = 1 - exp(-relu(sigma_k + noise_k) delta_k),  noise_k = raw_noise_std * N(0, 1) (0 when std = 0)
//   T_k = prod_{j<k} (1 - alpha_j + 1e-10)   (the reference's cumprod with its 1e-10 term)
//   w_k = alpha_k T_k,  c_k = sigmoid(rgb_k)
//   rgb = sum w_k c_k (+ (1 - acc) with white_bkgd), depth = sum w_k z_k, acc = sum w_k,
//   disp = 1 / max(1e-10, depth / acc)
//
// Backward (only rgb carries a loss gradient; depth, disp and acc are for display):
//   g_k = dL/dw_k = sum_c dL/drgb_c (c_kc - [white_bkgd])
//   dL/dalpha_k = T_k (g_k - S_k), S_k = sum_{j>k} g_j alpha_j prod_{k<i<j} (1 - alpha_i + 1e-10),
//   accumulated back to front as S_{k-1} = g_k alpha_k + (1 - alpha_k + 1e-10) S_k, so nothing is
//   ever divided by (1 - alpha) or T.
//   dalpha/dsigma = exp(-relu(x) delta) delta [x > 0]  (x = sigma + noise; relu'(0) = 0 as in PyTorch)
//   dL/drgb_raw = w_k dL/drgb_c c (1 - c)
// The backward recomputes alpha, T and the noise from (raw, z, seed): nothing is stored per sample.
#pragma once

#include "nerf/common.h"
#include "nerf/math/rng.h"

#include <cmath>

namespace nerf {

struct CompositeSpec {
	float raw_noise_std = 0.0f;
	bool white_bkgd = false;
	int raw_stride = 4;  ///< floats per sample in raw (4, or 5 without viewdirs and with N_importance)
	uint64_t seed = 0;
	uint32_t step = 0;
	RngStream noise_stream = RngStream::RawNoiseCoarse;
};

NERF_HD inline float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

NERF_HD inline float sample_delta(const float* z, int k, int n_samples, float dir_norm) {
	const float gap = k + 1 < n_samples ? z[k + 1] - z[k] : 1e10f;
	return gap * dir_norm;
}

NERF_HD inline float sample_density_input(const float* raw_k, int k, uint32_t ray, const CompositeSpec& spec) {
	float sigma = raw_k[3];
	if (spec.raw_noise_std > 0.0f) sigma += spec.raw_noise_std * random_normal(spec.seed, spec.step, ray, (uint32_t)k, spec.noise_stream);
	return sigma;
}

struct RayOutputs {
	float rgb[3];
	float depth, disp, acc;
};

/// Forward for one ray. raw: [S, raw_stride]; z: [S]; dir: rays_d (un-normalised); weights: [S] out (may be null).
NERF_HD inline RayOutputs composite_ray(float* __restrict__ weights, const float* __restrict__ raw, const float* __restrict__ z,
                                        const float* __restrict__ dir, int n_samples, uint32_t ray, const CompositeSpec& spec) {
	const float dir_norm = sqrtf(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
	RayOutputs out{{0.0f, 0.0f, 0.0f}, 0.0f, 0.0f, 0.0f};
	float transmittance = 1.0f;
	for (int k = 0; k < n_samples; ++k) {
		const float* raw_k = raw + (size_t)k * spec.raw_stride;
		const float x = sample_density_input(raw_k, k, ray, spec);
		const float alpha = 1.0f - expf(-fmaxf(x, 0.0f) * sample_delta(z, k, n_samples, dir_norm));
		const float w = alpha * transmittance;
		if (weights) weights[k] = w;
		for (int c = 0; c < 3; ++c) out.rgb[c] += w * sigmoidf_(raw_k[c]);
		out.depth += w * z[k];
		out.acc += w;
		transmittance *= 1.0f - alpha + 1e-10f;
	}
	out.disp = 1.0f / fmaxf(1e-10f, out.depth / out.acc);
	if (spec.white_bkgd)
		for (int c = 0; c < 3; ++c) out.rgb[c] += 1.0f - out.acc;
	return out;
}

/// Backward for one ray: writes dL/draw [S, raw_stride] (unused channels set to 0) from dL/drgb [3].
/// alpha_scratch must hold n_samples floats.
NERF_HD inline void composite_ray_backward(float* __restrict__ dL_draw, const float* __restrict__ dL_drgb,
                                           const float* __restrict__ raw, const float* __restrict__ z,
                                           const float* __restrict__ dir, int n_samples, uint32_t ray,
                                           const CompositeSpec& spec, float* __restrict__ alpha_scratch) {
	const float dir_norm = sqrtf(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
	const float white_term = spec.white_bkgd ? dL_drgb[0] + dL_drgb[1] + dL_drgb[2] : 0.0f;
	// Front to back: alpha_k kept in scratch, T_k parked in the sigma slot of dL_draw until the
	// backward sweep overwrites it with the gradient.
	float transmittance = 1.0f;
	for (int k = 0; k < n_samples; ++k) {
		const float x = sample_density_input(raw + (size_t)k * spec.raw_stride, k, ray, spec);
		alpha_scratch[k] = 1.0f - expf(-fmaxf(x, 0.0f) * sample_delta(z, k, n_samples, dir_norm));
		dL_draw[(size_t)k * spec.raw_stride + 3] = transmittance;
		transmittance *= 1.0f - alpha_scratch[k] + 1e-10f;
	}
	float suffix = 0.0f;  // S_k
	for (int k = n_samples - 1; k >= 0; --k) {
		float* grad_k = dL_draw + (size_t)k * spec.raw_stride;
		const float* raw_k = raw + (size_t)k * spec.raw_stride;
		const float T = grad_k[3];
		const float alpha = alpha_scratch[k];
		const float w = alpha * T;
		float g = -white_term;
		for (int c = 0; c < 3; ++c) {
			const float color = sigmoidf_(raw_k[c]);
			g += dL_drgb[c] * color;
			grad_k[c] = w * dL_drgb[c] * color * (1.0f - color);
		}
		const float dL_dalpha = T * (g - suffix);
		const float x = sample_density_input(raw_k, k, ray, spec);
		const float delta = sample_delta(z, k, n_samples, dir_norm);
		grad_k[3] = x > 0.0f ? dL_dalpha * expf(-x * delta) * delta : 0.0f;
		for (int c = 4; c < spec.raw_stride; ++c) grad_k[c] = 0.0f;
		suffix = g * alpha + (1.0f - alpha + 1e-10f) * suffix;
	}
}

} // namespace nerf
