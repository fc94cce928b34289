// The activations between the hash-grid (ngp) field's two networks, after instant-ngp and nerfacc:
//   density network output [n, 16]: column 0 the density logit, columns 1..15 the geometry features;
//   density = trunc_exp(logit);
//   colour network input [n, 31]: columns 0..15 SH(d) (spherical_harmonics.h), 16..30 the 15 features;
//   raw [n, raw_stride >= 4] as compositing reads it: columns 0..2 the colour network's rgb logits
//   (compositing applies the sigmoid), column 3 the density (already >= 0: compositing's ReLU is then
//   the identity).
// trunc_exp is nerfacc's: its gradient is exp(min(logit, 15)), so a large logit cannot blow the gradient
// up. The forward is clamped at the same point, exp(min(logit, 15)), which changes nothing visible:
// exp(15) = 3.3e6, and any marching step times that density (lego's finest step is ~5e-3) makes
// alpha = 1 - exp(-sigma dt) equal 1 to float precision, as the unclamped value would.
#pragma once

#include "nerf/common.h"

#include <cmath>

namespace nerf {

constexpr int kNgpDensityOutputs = 16;  ///< density logit + geometry features
constexpr int kNgpGeoFeatures = 15;
constexpr int kNgpShColumns = 16;       ///< SH(d) at colour-input columns 0..15
constexpr int kNgpColourInputs = 31;    ///< SH(d) + geometry features
constexpr float kTruncExpClamp = 15.0f;

/// exp(min(x, 15)); the comparison is written so that a NaN logit stays NaN (fminf would turn it into
/// exp(15), a finite density hiding a diverged network).
NERF_HD inline float trunc_exp(float x) { return expf(x > kTruncExpClamp ? kTruncExpClamp : x); }

/// d density / d logit as nerfacc's trunc_exp backward: exp(min(x, 15)) (the clamp is on the gradient's
/// argument, not a zero gradient above it).
NERF_HD inline float trunc_exp_grad(float x) { return expf(x > kTruncExpClamp ? kTruncExpClamp : x); }

/// One row of the density network's output into raw's density column and the colour input's feature
/// columns (colour_in may be null: density only).
NERF_HD inline void ngp_density_row(float* __restrict__ raw, float* __restrict__ colour_in,
                                    const float* __restrict__ density_out) {
	raw[3] = trunc_exp(density_out[0]);
	if (colour_in)
		for (int k = 0; k < kNgpGeoFeatures; ++k) colour_in[kNgpShColumns + k] = density_out[1 + k];
}

/// Its backward for one row (overwrites dL_ddensity_out[0..15]); dL_dcolour_in may be null (density only:
/// the features' gradients are 0).
NERF_HD inline void ngp_density_row_backward(float* __restrict__ dL_ddensity_out, const float* __restrict__ dL_draw,
                                             const float* __restrict__ dL_dcolour_in,
                                             const float* __restrict__ density_out) {
	dL_ddensity_out[0] = dL_draw[3] * trunc_exp_grad(density_out[0]);
	for (int k = 0; k < kNgpGeoFeatures; ++k)
		dL_ddensity_out[1 + k] = dL_dcolour_in ? dL_dcolour_in[kNgpShColumns + k] : 0.0f;
}

} // namespace nerf
