// Tests of include/nerf/math/rng.h: Philox-4x32-10 against the published known answers, the
// counter/key wiring of random_bits, and the statistics of the uniform and normal draws.
#include <catch2/catch.hpp>

#include "nerf/math/rng.h"

#include <cmath>
#include <cstdint>
#include <set>
#include <vector>

using namespace nerf;

namespace {

struct PhiloxKnownAnswer {
	uint32_t counter[4];
	uint32_t key[2];
	uint32_t expected[4];
};

// Random123 tests/kat_vectors, the three "philox4x32 10" lines (CTR[4] KEY[2] -> result[4]).
const PhiloxKnownAnswer kPhiloxKnownAnswers[] = {
	{{0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u}, {0x00000000u, 0x00000000u},
	 {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
	{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu},
	 {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
	{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u},
	 {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
};

constexpr double kTwoTo24 = 16777216.0;

} // namespace

TEST_CASE("philox4x32_10 reproduces the Random123 known-answer vectors", "[math][rng]") {
	for (const PhiloxKnownAnswer& kat : kPhiloxKnownAnswers) {
		Philox4 counter{{kat.counter[0], kat.counter[1], kat.counter[2], kat.counter[3]}};
		const Philox4 result = philox4x32_10(counter, kat.key[0], kat.key[1]);
		for (int i = 0; i < 4; ++i) {
			INFO("counter word 0 = " << kat.counter[0] << ", output word " << i);
			CHECK(result.v[i] == kat.expected[i]);
		}
	}
}

TEST_CASE("random_bits maps (ray, sample, step, stream) to the counter and the seed to the key", "[math][rng]") {
	// The counter is (ray, sample, step, stream) and the key (seed low, seed high), so the third
	// known-answer vector must come out of random_bits with the words placed that way.
	const PhiloxKnownAnswer& kat = kPhiloxKnownAnswers[2];
	const uint64_t seed = ((uint64_t)kat.key[1] << 32) | kat.key[0];
	const Philox4 bits = random_bits(seed, /*step=*/kat.counter[2], /*ray=*/kat.counter[0], /*sample=*/kat.counter[1],
	                                 (RngStream)kat.counter[3]);
	for (int i = 0; i < 4; ++i) CHECK(bits.v[i] == kat.expected[i]);

	const Philox4 ones = random_bits(~0ull, ~0u, ~0u, ~0u, (RngStream)0xffffffffu);
	for (int i = 0; i < 4; ++i) CHECK(ones.v[i] == kPhiloxKnownAnswers[1].expected[i]);

	// The uniform is the top 24 bits of word 0 over 2^24; the normal is Box-Muller on words 0 and 1.
	const float u = random_uniform(seed, kat.counter[2], kat.counter[0], kat.counter[1], (RngStream)kat.counter[3]);
	CHECK(u == (float)((double)(0xd16cfe09u >> 8) / kTwoTo24));
	const double u1 = ((double)(0xd16cfe09u >> 8) + 1.0) / kTwoTo24;
	const double u2 = (double)(0x94fdccebu >> 8) / kTwoTo24;
	const double expected_normal = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
	const float z = random_normal(seed, kat.counter[2], kat.counter[0], kat.counter[1], (RngStream)kat.counter[3]);
	// float logf/cosf/sqrtf of arguments near 1: a few ulps of a value of order 1.
	CHECK(std::fabs((double)z - expected_normal) < 2e-6);
}

TEST_CASE("bits_to_uniform covers 0 to 1 (exclusive) with 24-bit resolution", "[math][rng]") {
	CHECK(bits_to_uniform(0u) == 0.0f);
	CHECK(bits_to_uniform(0xffu) == 0.0f);  // the low 8 bits are dropped
	CHECK(bits_to_uniform(0x100u) == (float)(1.0 / kTwoTo24));
	CHECK(bits_to_uniform(0x80000000u) == 0.5f);
	CHECK(bits_to_uniform(0xffffffffu) == (float)(1.0 - 1.0 / kTwoTo24));
	CHECK(bits_to_uniform(0xffffffffu) < 1.0f);
}

TEST_CASE("random draws are deterministic and every counter word and the seed change them", "[math][rng]") {
	const uint64_t seed = 0x0123456789abcdefull;
	const float base = random_uniform(seed, 7, 11, 13, RngStream::PdfUniform);
	CHECK(random_uniform(seed, 7, 11, 13, RngStream::PdfUniform) == base);
	CHECK(random_normal(seed, 7, 11, 13, RngStream::PdfUniform) == random_normal(seed, 7, 11, 13, RngStream::PdfUniform));

	// Each of these differs from the base draw in exactly one input.
	const float variants[] = {
		random_uniform(seed + 1, 7, 11, 13, RngStream::PdfUniform),
		random_uniform(seed ^ (1ull << 40), 7, 11, 13, RngStream::PdfUniform),  // high key word
		random_uniform(seed, 8, 11, 13, RngStream::PdfUniform),
		random_uniform(seed, 7, 12, 13, RngStream::PdfUniform),
		random_uniform(seed, 7, 11, 14, RngStream::PdfUniform),
		random_uniform(seed, 7, 11, 13, RngStream::StratifiedJitter),
		random_uniform(seed, 7, 11, 13, RngStream::RawNoiseCoarse),
	};
	for (float v : variants) CHECK(v != base);

	// No collisions among the 24-bit uniforms of a small grid of neighbouring counters
	// (4096 draws from 2^24 values: a collision has probability about 0.4, so allow a couple).
	std::set<float> seen;
	int draws = 0;
	for (uint32_t ray = 0; ray < 64; ++ray)
		for (uint32_t sample = 0; sample < 64; ++sample, ++draws) seen.insert(random_uniform(1, 0, ray, sample, RngStream::Init));
	CHECK(draws - (int)seen.size() <= 3);
}

TEST_CASE("random_uniform has the moments and histogram of U(0, 1)", "[math][rng]") {
	const int n = 100000;
	const int n_cells = 16;
	std::vector<int> histogram(n_cells, 0);
	double sum = 0.0, sum_sq = 0.0, lag_product = 0.0, cross_product = 0.0;
	float min_u = 1.0f, max_u = 0.0f, previous = 0.5f;
	for (int i = 0; i < n; ++i) {
		// Rays vary fastest, as in a training batch; samples and steps vary too.
		const uint32_t ray = (uint32_t)(i % 1000), sample = (uint32_t)(i / 1000);
		const float u = random_uniform(42, 3, ray, sample, RngStream::StratifiedJitter);
		const float other_stream = random_uniform(42, 3, ray, sample, RngStream::PdfUniform);
		min_u = std::min(min_u, u);
		max_u = std::max(max_u, u);
		sum += u;
		sum_sq += (u - 0.5) * (u - 0.5);
		lag_product += (u - 0.5) * (previous - 0.5);
		cross_product += (u - 0.5) * (other_stream - 0.5);
		previous = u;
		histogram[(int)(u * n_cells)]++;
	}
	CHECK(min_u >= 0.0f);
	CHECK(max_u < 1.0f);
	// Bounds are 5 standard errors of the estimator for a true U[0,1) (deterministic draws, so the test
	// never flakes; a biased or correlated generator fails them).
	// mean: sd = sqrt(1/12 / n) = 9.1e-4.
	CHECK(std::fabs(sum / n - 0.5) < 5 * 9.13e-4);
	// variance: sd of (u-1/2)^2 is sqrt(1/80 - 1/144) = 0.0745, / sqrt(n) = 2.36e-4.
	CHECK(std::fabs(sum_sq / n - 1.0 / 12.0) < 5 * 2.36e-4);
	// correlations (neighbouring rays; the same counter in two streams): sd = (1/12) / sqrt(n) = 2.6e-4.
	CHECK(std::fabs(lag_product / n) < 5 * 2.64e-4);
	CHECK(std::fabs(cross_product / n) < 5 * 2.64e-4);
	// chi-square with 15 degrees of freedom: P(chi2 > 45) < 1e-4.
	double chi2 = 0.0;
	const double expected = (double)n / n_cells;
	for (int count : histogram) chi2 += (count - expected) * (count - expected) / expected;
	INFO("chi-square = " << chi2);
	CHECK(chi2 < 45.0);
}

TEST_CASE("random_normal has the moments of N(0, 1)", "[math][rng]") {
	const int n = 100000;
	double sum = 0.0, sum_sq = 0.0, sum_fourth = 0.0;
	int within_one = 0;
	bool all_finite = true;
	for (int i = 0; i < n; ++i) {
		const float z = random_normal(7, (uint32_t)(i / 5000), (uint32_t)(i % 5000), 17, RngStream::RawNoiseCoarse);
		all_finite = all_finite && std::isfinite(z);
		sum += z;
		sum_sq += (double)z * z;
		sum_fourth += (double)z * z * z * z;
		within_one += std::fabs(z) < 1.0f;
	}
	CHECK(all_finite);
	// 5 standard errors: mean sd 1/sqrt(n) = 3.16e-3; E z^2 sd sqrt(2/n) = 4.47e-3;
	// E z^4 = 3 with sd sqrt(105 - 9)/sqrt(n) = 3.1e-2; P(|z| < 1) = 0.6827 with sd 1.47e-3.
	CHECK(std::fabs(sum / n) < 5 * 3.17e-3);
	CHECK(std::fabs(sum_sq / n - 1.0) < 5 * 4.48e-3);
	CHECK(std::fabs(sum_fourth / n - 3.0) < 5 * 3.1e-2);
	CHECK(std::fabs((double)within_one / n - 0.682689) < 5 * 1.48e-3);
}
