// The small MLPs' parameter layout and initialisation (include/nerf/small_mlp.h); backend-independent.
#include "nerf/small_mlp.h"

#include "nerf/common.h"
#include "nerf/math/rng.h"

#include <cmath>

namespace nerf {

namespace {
// Sizes far beyond any field's keep every offset and row stride in int range.
constexpr int kMaxSmallMlpDim = 1 << 14;
constexpr int kMaxSmallMlpLayers = 64;
int pad16(int x) { return (x + 15) / 16 * 16; }
} // namespace

void check_small_mlp_spec(const SmallMlpSpec& s) {
	auto check = [](int v, int hi, const char* name) {
		if (v < 1 || v > hi) NERF_FAIL("small MLP: " << name << " = " << v << " (expected 1 .. " << hi << ")");
	};
	check(s.in, kMaxSmallMlpDim, "in");
	check(s.width, kMaxSmallMlpDim, "width");
	check(s.hidden_layers, kMaxSmallMlpLayers, "hidden_layers");
	check(s.out, kMaxSmallMlpDim, "out");
}

int small_mlp_layer_in(const SmallMlpSpec& s, int layer) {
	NERF_CHECK(layer >= 0 && layer <= s.hidden_layers);
	return layer == 0 ? s.in : s.width;
}

int small_mlp_layer_out(const SmallMlpSpec& s, int layer) {
	NERF_CHECK(layer >= 0 && layer <= s.hidden_layers);
	return layer == s.hidden_layers ? s.out : s.width;
}

size_t small_mlp_layer_offset(const SmallMlpSpec& s, int layer) {
	NERF_CHECK(layer >= 0 && layer <= s.hidden_layers);
	size_t offset = 0;
	for (int l = 0; l < layer; ++l) offset += (size_t)small_mlp_layer_in(s, l) * (size_t)small_mlp_layer_out(s, l);
	return offset;
}

size_t small_mlp_params(const SmallMlpSpec& s) {
	check_small_mlp_spec(s);
	return small_mlp_layer_offset(s, s.hidden_layers) + (size_t)s.out * (size_t)s.width;
}

double small_mlp_forward_flops(const SmallMlpSpec& s) { return 2.0 * (double)small_mlp_params(s); }

void init_small_mlp_params_host(float* params, const SmallMlpSpec& s, uint64_t seed) {
	check_small_mlp_spec(s);
	for (int l = 0; l <= s.hidden_layers; ++l) {
		const int in = small_mlp_layer_in(s, l), out = small_mlp_layer_out(s, l);
		// tiny-cuda-nn initialises its padded matrices: the network's input and output widths count
		// rounded up to 16 (the hidden width is a multiple of 16 there anyway).
		const int fan_in = l == 0 ? pad16(in) : in;
		const int fan_out = l == s.hidden_layers ? pad16(out) : out;
		const float bound = std::sqrt(6.0f / (float)(fan_in + fan_out));
		const size_t first = small_mlp_layer_offset(s, l), count = (size_t)in * (size_t)out;
		for (size_t k = 0; k < count; ++k) {
			// A sample index of its own (0x5000 + layer) keeps these draws apart from the reference MLP's
			// (init_mlp_params_host keys its draws by layer index < 0x5000) under the same seed.
			const float u = random_uniform(seed, (uint32_t)(k >> 32), (uint32_t)k, 0x5000u + (uint32_t)l, RngStream::Init);
			params[first + k] = (2.0f * u - 1.0f) * bound;
		}
	}
}

} // namespace nerf
