// Positional encoding, exactly nerf-pytorch's Embedder:
//   gamma(x) = [x, sin(2^0 x), cos(2^0 x), sin(2^1 x), cos(2^1 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)]
// with include_input = True, log-sampled frequencies 2^0 .. 2^(L-1), and each
// sin/cos block holding all input dimensions in order. i_embed = -1 is the identity.
// No backward: the encoded inputs are data (points and directions), never parameters.
#pragma once

#include "nerf/common.h"

#include <cmath>

namespace nerf {

struct EncodingSpec {
	int n_dims = 3;         ///< input dimensions
	int n_freqs = 10;       ///< L (multires or multires_views)
	bool identity = false;  ///< i_embed == -1
};

/// Width of the encoded vector.
NERF_HD inline int encoded_width(const EncodingSpec& spec) {
	return spec.identity ? spec.n_dims : spec.n_dims * (1 + 2 * spec.n_freqs);
}

/// Writes encoded_width(spec) floats to out.
NERF_HD inline void positional_encode(float* __restrict__ out, const float* __restrict__ x, const EncodingSpec& spec) {
	for (int d = 0; d < spec.n_dims; ++d) out[d] = x[d];
	if (spec.identity) return;
	for (int f = 0; f < spec.n_freqs; ++f) {
		// 2^f exactly, as torch.linspace(0, L-1, L) -> 2.**bands gives exact powers of two.
		const float freq = ldexpf(1.0f, f);
		float* sin_block = out + spec.n_dims * (1 + 2 * f);
		float* cos_block = sin_block + spec.n_dims;
		for (int d = 0; d < spec.n_dims; ++d) {
			const float arg = x[d] * freq;
			sin_block[d] = sinf(arg);
			cos_block[d] = cosf(arg);
		}
	}
}

} // namespace nerf
