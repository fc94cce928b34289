// Counter-based random numbers: every draw is a pure function of
// (seed, step, ray, sample, stream), so the CPU and CUDA backends, any
// thread order and a resumed run all take exactly the same samples.
//
// Generator: Philox-4x32-10 (Salmon et al., SC'11). Counter words are
// (ray, sample, step, stream); the key is the 64-bit seed.
#pragma once

#include "nerf/common.h"

#include <cmath>
#include <cstdint>

namespace nerf {

/// Independent streams, so that e.g. the stratified jitter and the pdf draws of
/// the same (ray, sample) are uncorrelated.
enum class RngStream : uint32_t {
	StratifiedJitter = 1,
	PdfUniform = 2,
	RawNoiseCoarse = 3,
	RawNoiseFine = 4,
	BatchShuffle = 5,
	ImageChoice = 6,
	PixelChoice = 7,
	Init = 8,
	OccGridJitter = 9,  ///< the point drawn inside each occupancy-grid cell at an update (counter: cell)
	OccGridChoice = 10, ///< which cells an update after the warmup evaluates (counter: cell)
	MarchJitter = 11,   ///< the offset of a marched ray's first sample within one step (counter: ray)
	RandomBackground = 12,  ///< a training ray's background colour on RGBA scenes (counter: ray, channel)
	HashGridInit = 13,      ///< the hash-grid field's initial table entries (counter: entry)
};

struct Philox4 {
	uint32_t v[4];
};

NERF_HD inline uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
	uint64_t product = (uint64_t)a * (uint64_t)b;
	*hi = (uint32_t)(product >> 32);
	return (uint32_t)product;
}

NERF_HD inline Philox4 philox4x32_10(Philox4 counter, uint32_t key0, uint32_t key1) {
	const uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
	const uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
	for (int round = 0; round < 10; ++round) {
		uint32_t hi0, hi1;
		uint32_t lo0 = mulhilo32(kMul0, counter.v[0], &hi0);
		uint32_t lo1 = mulhilo32(kMul1, counter.v[2], &hi1);
		Philox4 next;
		next.v[0] = hi1 ^ counter.v[1] ^ key0;
		next.v[1] = lo1;
		next.v[2] = hi0 ^ counter.v[3] ^ key1;
		next.v[3] = lo0;
		counter = next;
		key0 += kWeyl0;
		key1 += kWeyl1;
	}
	return counter;
}

/// Four independent 32-bit words for one (seed, step, ray, sample, stream).
NERF_HD inline Philox4 random_bits(uint64_t seed, uint32_t step, uint32_t ray, uint32_t sample, RngStream stream) {
	Philox4 counter{{ray, sample, step, (uint32_t)stream}};
	return philox4x32_10(counter, (uint32_t)seed, (uint32_t)(seed >> 32));
}

/// Uniform in [0, 1): the top 24 bits, so every value is exactly representable in float.
NERF_HD inline float bits_to_uniform(uint32_t bits) { return (float)(bits >> 8) * (1.0f / 16777216.0f); }

/// One uniform draw in [0, 1) for (seed, step, ray, sample, stream).
NERF_HD inline float random_uniform(uint64_t seed, uint32_t step, uint32_t ray, uint32_t sample, RngStream stream) {
	return bits_to_uniform(random_bits(seed, step, ray, sample, stream).v[0]);
}

/// One standard normal draw (Box-Muller on two words of the same counter).
NERF_HD inline float random_normal(uint64_t seed, uint32_t step, uint32_t ray, uint32_t sample, RngStream stream) {
	Philox4 bits = random_bits(seed, step, ray, sample, stream);
	// u1 in (0, 1] so the log is finite.
	float u1 = ((float)(bits.v[0] >> 8) + 1.0f) * (1.0f / 16777216.0f);
	float u2 = bits_to_uniform(bits.v[1]);
	return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853071795864769f * u2);
}

} // namespace nerf
