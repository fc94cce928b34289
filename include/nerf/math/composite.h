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
//
// Two forms share every line of this per-sample math (composite_samples and its backward): the
// dense form (fixed S samples per ray, delta from the gap to the next depth) and the packed form of
// marched samples (occ_grid: a ray's own samples at depths t with their step lengths dt, so
// delta_k = dt_k |d|). Fed the dense deltas as dt, the packed form gives the dense result bit for bit.
#pragma once

#include "nerf/common.h"
#include "nerf/math/rays.h"
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
	/// Per-ray background colours [n_rays, 3] in backend memory, indexed by the ray's place in its
	/// batch (the packed form only; null: white_bkgd decides). rgb += (1 - acc) background, as nerfacc's
	/// instant-ngp example trains RGBA scenes on a random colour per ray.
	const float* background = nullptr;
};

NERF_HD inline float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

NERF_HD inline float sample_delta(const float* z, int k, int n_samples, float dir_norm) {
	const float gap = k + 1 < n_samples ? z[k + 1] - z[k] : 1e10f;
	return gap * dir_norm;
}

/// The distances between samples: the dense form takes them from the depths (raw2outputs: the gap
/// to the next sample, 1e10 after the last), the packed form from each sample's own interval (a
/// marched sample stands for one step; the next kept sample may be far behind an empty stretch).
/// Both return a length in the ray's parameter t times |d|, so the same alpha follows.
struct DenseDeltas {
	const float* z;
	int n_samples;
	float dir_norm;
	NERF_HD float operator()(int k) const { return sample_delta(z, k, n_samples, dir_norm); }
};
struct PackedDeltas {
	const float* dt;
	float dir_norm;
	NERF_HD float operator()(int k) const { return dt[k] * dir_norm; }
};

NERF_HD inline float sample_density_input(const float* raw_k, int k, uint32_t ray, const CompositeSpec& spec) {
	float sigma = raw_k[3];
	if (spec.raw_noise_std > 0.0f) sigma += spec.raw_noise_std * random_normal(spec.seed, spec.step, ray, (uint32_t)k, spec.noise_stream);
	return sigma;
}

/// alpha = 1 - exp(-relu(x) delta), the one place both forms (and the early stop) compute it.
NERF_HD inline float sample_alpha(float x, float delta) { return 1.0f - expf(-fmaxf(x, 0.0f) * delta); }

struct RayOutputs {
	float rgb[3];
	float depth, disp, acc;
};

/// Writes ray r's outputs into per-ray arrays, each of which may be null: rgb [n, 3], depth, disp, acc [n].
NERF_HD inline void store_ray_outputs(float* rgb, float* depth, float* disp, float* acc, const RayOutputs& ray, size_t r) {
	if (rgb)
		for (int c = 0; c < 3; ++c) rgb[3 * r + c] = ray.rgb[c];
	if (depth) depth[r] = ray.depth;
	if (disp) disp[r] = ray.disp;
	if (acc) acc[r] = ray.acc;
}

/// Forward for one ray of n samples whose distances come from `deltas` (DenseDeltas or PackedDeltas).
/// raw: [n, raw_stride]; z: [n] (depth); weights: [n] out (may be null). `ray` keys the noise, sample
/// k of the ray draws noise k in both forms.
template <typename Deltas>
NERF_HD inline RayOutputs composite_samples(float* __restrict__ weights, const float* __restrict__ raw,
                                            const float* __restrict__ z, const Deltas& deltas, int n_samples,
                                            uint32_t ray, const CompositeSpec& spec,
                                            const float* __restrict__ background = nullptr) {
	RayOutputs out{{0.0f, 0.0f, 0.0f}, 0.0f, 0.0f, 0.0f};
	float transmittance = 1.0f;
	for (int k = 0; k < n_samples; ++k) {
		const float* raw_k = raw + (size_t)k * spec.raw_stride;
		const float x = sample_density_input(raw_k, k, ray, spec);
		const float alpha = sample_alpha(x, deltas(k));
		const float w = alpha * transmittance;
		if (weights) weights[k] = w;
		for (int c = 0; c < 3; ++c) out.rgb[c] += w * sigmoidf_(raw_k[c]);
		out.depth += w * z[k];
		out.acc += w;
		transmittance *= 1.0f - alpha + 1e-10f;
	}
	out.disp = 1.0f / fmaxf(1e-10f, out.depth / out.acc);
	if (background)
		for (int c = 0; c < 3; ++c) out.rgb[c] += (1.0f - out.acc) * background[c];
	else if (spec.white_bkgd)
		for (int c = 0; c < 3; ++c) out.rgb[c] += 1.0f - out.acc;
	return out;
}

/// Backward for one ray: writes dL/draw [n, raw_stride] (unused channels set to 0) from dL/drgb [3].
/// alpha_scratch must hold n_samples floats. background: as composite_samples'.
template <typename Deltas>
NERF_HD inline void composite_samples_backward(float* __restrict__ dL_draw, const float* __restrict__ dL_drgb,
                                               const float* __restrict__ raw, const Deltas& deltas, int n_samples,
                                               uint32_t ray, const CompositeSpec& spec, float* __restrict__ alpha_scratch,
                                               const float* __restrict__ background = nullptr) {
	// d rgb / d w_k gains -background (d acc / d w_k = 1); white is a background of ones.
	const float white_term = background ? dL_drgb[0] * background[0] + dL_drgb[1] * background[1] +
	                                          dL_drgb[2] * background[2]
	                         : spec.white_bkgd ? dL_drgb[0] + dL_drgb[1] + dL_drgb[2]
	                                           : 0.0f;
	// Front to back: alpha_k kept in scratch, T_k parked in the sigma slot of dL_draw until the
	// backward sweep overwrites it with the gradient.
	float transmittance = 1.0f;
	for (int k = 0; k < n_samples; ++k) {
		const float x = sample_density_input(raw + (size_t)k * spec.raw_stride, k, ray, spec);
		alpha_scratch[k] = sample_alpha(x, deltas(k));
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
		const float delta = deltas(k);
		grad_k[3] = x > 0.0f ? dL_dalpha * expf(-x * delta) * delta : 0.0f;
		for (int c = 4; c < spec.raw_stride; ++c) grad_k[c] = 0.0f;
		suffix = g * alpha + (1.0f - alpha + 1e-10f) * suffix;
	}
}

/// Forward for one ray of the dense form. raw: [S, raw_stride]; z: [S]; dir: rays_d (un-normalised);
/// weights: [S] out (may be null).
NERF_HD inline RayOutputs composite_ray(float* __restrict__ weights, const float* __restrict__ raw, const float* __restrict__ z,
                                        const float* __restrict__ dir, int n_samples, uint32_t ray, const CompositeSpec& spec) {
	return composite_samples(weights, raw, z, DenseDeltas{z, n_samples, norm3(dir)}, n_samples, ray, spec);
}

/// Backward for one ray of the dense form: dL/draw [S, raw_stride] from dL/drgb [3].
NERF_HD inline void composite_ray_backward(float* __restrict__ dL_draw, const float* __restrict__ dL_drgb,
                                           const float* __restrict__ raw, const float* __restrict__ z,
                                           const float* __restrict__ dir, int n_samples, uint32_t ray,
                                           const CompositeSpec& spec, float* __restrict__ alpha_scratch) {
	composite_samples_backward(dL_draw, dL_drgb, raw, DenseDeltas{z, n_samples, norm3(dir)}, n_samples, ray, spec,
	                           alpha_scratch);
}

/// Forward for one ray of the packed form: its n samples at depths t [n] with intervals dt [n]
/// (in the ray parameter; the distance is dt |d|), raw [n, raw_stride].
/// background: this ray's colour ([3], spec.background + 3 r) or null (white_bkgd decides).
NERF_HD inline RayOutputs composite_ray_packed(float* __restrict__ weights, const float* __restrict__ raw,
                                               const float* __restrict__ t, const float* __restrict__ dt,
                                               const float* __restrict__ dir, int n_samples, uint32_t ray,
                                               const CompositeSpec& spec, const float* __restrict__ background = nullptr) {
	return composite_samples(weights, raw, t, PackedDeltas{dt, norm3(dir)}, n_samples, ray, spec, background);
}

NERF_HD inline void composite_ray_packed_backward(float* __restrict__ dL_draw, const float* __restrict__ dL_drgb,
                                                  const float* __restrict__ raw, const float* __restrict__ dt,
                                                  const float* __restrict__ dir, int n_samples, uint32_t ray,
                                                  const CompositeSpec& spec, float* __restrict__ alpha_scratch,
                                                  const float* __restrict__ background = nullptr) {
	composite_samples_backward(dL_draw, dL_drgb, raw, PackedDeltas{dt, norm3(dir)}, n_samples, ray, spec, alpha_scratch,
	                           background);
}

/// The background of batch ray r: spec.background's row r, or null.
NERF_HD inline const float* ray_background(const CompositeSpec& spec, size_t r) {
	return spec.background ? spec.background + 3 * r : nullptr;
}

/// A training target on a random background (nerfacc's instant-ngp example on RGBA scenes): the
/// pixel as loaded, composited on white (white_bkgd), and its alpha give the colour the same pixel
/// has on `background`: rgb a + bg (1 - a) = white_rgb + (bg - 1)(1 - a). The background is three
/// uniform draws in [0, 1) keyed by (seed, step, ray).
NERF_HD inline void random_background_target(float* __restrict__ target, float* __restrict__ background, float alpha,
                                             uint64_t seed, uint32_t step, uint32_t ray) {
	for (int c = 0; c < 3; ++c) {
		const float bg = random_uniform(seed, step, ray, (uint32_t)c, RngStream::RandomBackground);
		background[c] = bg;
		target[c] = fmaf(bg - 1.0f, 1.0f - alpha, target[c]);
	}
}

/// nerfacc's early stop: how many leading samples of a packed ray to keep, i.e. the first k whose
/// transmittance in front of it, prod_{j<k} (1 - alpha_j + 1e-10), is below min_transmittance (the
/// ray's count when none is). No noise: it is an estimate of where the ray becomes opaque.
/// Transmittance only falls along a ray, so the kept samples are always a prefix.
NERF_HD inline int early_stop_count(const float* __restrict__ raw, const float* __restrict__ dt,
                                    const float* __restrict__ dir, int n_samples, int raw_stride,
                                    float min_transmittance) {
	const PackedDeltas deltas{dt, norm3(dir)};
	float transmittance = 1.0f;
	for (int k = 0; k < n_samples; ++k) {
		if (transmittance < min_transmittance) return k;
		transmittance *= 1.0f - sample_alpha(raw[(size_t)k * raw_stride + 3], deltas(k)) + 1e-10f;
	}
	return n_samples;
}

} // namespace nerf
