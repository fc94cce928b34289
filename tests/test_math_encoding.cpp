// Tests of include/nerf/math/encoding.h against a direct double evaluation of nerf-pytorch's Embedder:
// [x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)], each block holding all dimensions.
#include <catch2/catch.hpp>

#include "nerf/math/encoding.h"

#include <cmath>
#include <random>
#include <vector>

using namespace nerf;

namespace {

std::vector<double> reference_embed(const std::vector<float>& x, int n_freqs, bool include_periodic) {
	std::vector<double> out(x.begin(), x.end());
	if (!include_periodic) return out;
	for (int f = 0; f < n_freqs; ++f) {
		const double freq = std::pow(2.0, (double)f);
		for (float xd : x) out.push_back(std::sin(freq * (double)xd));
		for (float xd : x) out.push_back(std::cos(freq * (double)xd));
	}
	return out;
}

// The float argument x * 2^f is exact (scaling by a power of two), so the only error is that of
// sinf/cosf on an exact argument: about 1 ulp of a value in [-1, 1], i.e. < 1.2e-7. Were the argument
// rounded instead, the error would grow like 2^(L-1) |x| eps = 512 * 4 * 6e-8 = 1.2e-4 for L = 10.
constexpr double kTrigTolerance = 1e-6;

void check_encoding(int n_dims, int n_freqs, bool identity, int expected_width, float magnitude) {
	EncodingSpec spec;
	spec.n_dims = n_dims;
	spec.n_freqs = n_freqs;
	spec.identity = identity;
	REQUIRE(encoded_width(spec) == expected_width);

	std::mt19937 rng(1234 + n_dims * 100 + n_freqs);
	std::uniform_real_distribution<float> coordinate(-magnitude, magnitude);
	const float kSentinel = -12345.0f;
	for (int trial = 0; trial < 200; ++trial) {
		std::vector<float> x(n_dims);
		for (float& v : x) v = coordinate(rng);
		if (trial == 0)
			for (float& v : x) v = 0.0f;
		std::vector<float> out(expected_width + 8, kSentinel);
		positional_encode(out.data(), x.data(), spec);
		const std::vector<double> expected = reference_embed(x, n_freqs, !identity);
		REQUIRE((int)expected.size() == expected_width);
		for (int i = 0; i < expected_width; ++i) {
			INFO("trial " << trial << " output " << i << " x0 " << x[0]);
			CHECK(std::fabs((double)out[i] - expected[i]) <= kTrigTolerance);
		}
		// Nothing is written past the encoded width.
		for (int i = expected_width; i < expected_width + 8; ++i) CHECK(out[i] == kSentinel);
		// include_input: the first block is x itself, bit for bit.
		for (int d = 0; d < n_dims; ++d) CHECK(out[d] == x[d]);
	}
}

} // namespace

TEST_CASE("positional_encode, L = 10 (multires): 63 values matching the Embedder", "[math][encoding]") {
	// Points of the Blender scenes lie within a few units of the origin (near 2, far 6).
	check_encoding(3, 10, false, 63, 4.0f);
}

TEST_CASE("positional_encode, L = 4 (multires_views): 27 values matching the Embedder", "[math][encoding]") {
	check_encoding(3, 4, false, 27, 1.0f);  // unit view directions
}

TEST_CASE("positional_encode, i_embed = -1 is the identity of width 3", "[math][encoding]") {
	check_encoding(3, 10, true, 3, 4.0f);
}

TEST_CASE("positional_encode, block layout by hand and other widths", "[math][encoding]") {
	// Hand values for x = (pi/2, 0, -pi/4), L = 2: blocks [x | sin x | cos x | sin 2x | cos 2x].
	const float x[3] = {1.57079632679f, 0.0f, -0.785398163397f};
	EncodingSpec spec;
	spec.n_freqs = 2;
	float out[15];
	positional_encode(out, x, spec);
	const double expected[15] = {1.57079632679, 0.0, -0.785398163397,
	                             1.0, 0.0, -0.70710678118,
	                             0.0, 1.0, 0.70710678118,
	                             0.0, 0.0, -1.0,
	                             -1.0, 1.0, 0.0};
	for (int i = 0; i < 15; ++i) {
		INFO("output " << i);
		CHECK(std::fabs(out[i] - expected[i]) < 1e-6);
	}
	// Two-dimensional inputs follow the same layout.
	check_encoding(2, 3, false, 14, 2.0f);
	check_encoding(1, 0, false, 1, 2.0f);
}
