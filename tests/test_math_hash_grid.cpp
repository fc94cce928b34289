// Tests of the multiresolution hash encoding (include/nerf/math/hash_grid.h and the CPU backend's
// hash_encode / hash_encode_backward): the levels make_hash_grid_spec derives, hand-computed corner
// indices (the +0.5 offset, the hash, the modulo), a direct double-precision formula written here on
// random points, the backward against central differences and against the weights themselves, points on
// cell faces and the box's corners, thread-count independence, and the option errors.
#include <catch2/catch.hpp>

#include "nerf/backend.h"
#include "nerf/math/hash_grid.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <vector>

using namespace nerf;

namespace {

const float kLegoMin[3] = {-1.5f, -1.5f, -1.5f}, kLegoMax[3] = {1.5f, 1.5f, 1.5f};

HashGridSpec default_spec() { return make_hash_grid_spec(16, 2, 19, 16, 2048.0f, kLegoMin, kLegoMax); }

/// Two levels over the box [-1, 1] x [-2, 2] x [0, 4]: level 0 dense (N_min 4: scale 3, resolution 4,
/// 64 entries), level 1 hashed (b = 4: scale 15, resolution 16, 16^3 = 4096 > 2^10: 1024 entries).
HashGridSpec small_spec(int n_features = 2) {
	const float lo[3] = {-1.0f, -2.0f, 0.0f}, hi[3] = {1.0f, 2.0f, 4.0f};
	return make_hash_grid_spec(2, n_features, 10, 4, 16.0f, lo, hi);
}

// ---- the reference: the file comment's formulas, in double and 64-bit integers ----

/// A corner's entry in its level, straight from the definition (the % included).
uint64_t reference_level_index(const uint64_t c[3], const HashGridLevel& level) {
	uint64_t index;
	if (level.hashed) {
		const uint64_t m = (uint64_t)1 << 32;
		index = (c[0] % m) ^ ((c[1] * 2654435761ull) % m) ^ ((c[2] * 805459861ull) % m);
	} else {
		const uint64_t r = level.resolution;
		index = c[0] + c[1] * r + c[2] * r * r;
	}
	return index % level.n_entries;
}

struct ReferenceCorner {
	uint64_t entry;  // in the whole table
	double weight;
};

/// The 8 corners of p at level l in double: x = clamp((p - min) / extent), pos = x scale + 0.5.
/// cell_out: the cell, for callers that compare with the float path's.
std::vector<ReferenceCorner> reference_corners(const double p[3], const HashGridSpec& spec, int l, uint64_t* cell_out = nullptr) {
	const HashGridLevel& level = spec.levels[l];
	uint64_t cell[3];
	double frac[3];
	for (int d = 0; d < 3; ++d) {
		double x = (p[d] - spec.aabb_min[d]) / ((double)spec.aabb_max[d] - spec.aabb_min[d]);
		x = std::min(std::max(x, 0.0), 1.0);
		const double pos = x * (double)level.scale + 0.5;
		cell[d] = (uint64_t)std::floor(pos);
		frac[d] = pos - std::floor(pos);
		if (cell_out) cell_out[d] = cell[d];
	}
	std::vector<ReferenceCorner> out;
	for (int k = 0; k < 8; ++k) {
		uint64_t c[3];
		double w = 1.0;
		for (int d = 0; d < 3; ++d) {
			const int bit = (k >> d) & 1;
			c[d] = cell[d] + bit;
			w *= bit ? frac[d] : 1.0 - frac[d];
		}
		out.push_back({level.offset + reference_level_index(c, level), w});
	}
	return out;
}

/// enc [n, L F] in double.
std::vector<double> reference_encode(const std::vector<float>& table, const std::vector<double>& points, const HashGridSpec& spec) {
	const int F = spec.n_features_per_level, width = hash_grid_width(spec);
	const size_t n = points.size() / 3;
	std::vector<double> enc(n * width, 0.0);
	for (size_t s = 0; s < n; ++s)
		for (int l = 0; l < spec.n_levels; ++l)
			for (const ReferenceCorner& c : reference_corners(&points[3 * s], spec, l))
				for (int f = 0; f < F; ++f) enc[s * width + l * F + f] += c.weight * table[c.entry * F + f];
	return enc;
}

std::vector<float> random_floats(size_t n, float lo, float hi, uint32_t seed) {
	std::mt19937 rng(seed);
	std::uniform_real_distribution<float> dist(lo, hi);
	std::vector<float> v(n);
	for (float& x : v) x = dist(rng);
	return v;
}

/// Random points in the box (and a margin of 5% around it, which the clamp maps onto its faces).
std::vector<float> random_points(size_t n, const HashGridSpec& spec, uint32_t seed, float margin = 0.05f) {
	std::mt19937 rng(seed);
	std::vector<float> p(3 * n);
	for (size_t s = 0; s < n; ++s)
		for (int d = 0; d < 3; ++d) {
			const float extent = spec.aabb_max[d] - spec.aabb_min[d];
			std::uniform_real_distribution<float> dist(spec.aabb_min[d] - margin * extent, spec.aabb_max[d] + margin * extent);
			p[3 * s + d] = dist(rng);
		}
	return p;
}

std::vector<float> run_encode(Backend& be, const std::vector<float>& table, const std::vector<float>& points,
                              const HashGridSpec& spec) {
	const size_t n = points.size() / 3;
	Buffer<float> d_table = be.allocate<float>(table.size()), d_points = be.allocate<float>(points.size()),
	              d_enc = be.allocate<float>(n * hash_grid_width(spec));
	be.upload(d_table.data(), table.data(), table.size() * sizeof(float));
	be.upload(d_points.data(), points.data(), points.size() * sizeof(float));
	be.hash_encode(d_enc.data(), d_table.data(), d_points.data(), n, spec);
	std::vector<float> enc(d_enc.size());
	be.download(enc.data(), d_enc.data(), enc.size() * sizeof(float));
	return enc;
}

/// dL_dtable = initial + the backward's contribution.
std::vector<float> run_backward(Backend& be, const std::vector<float>& initial, const std::vector<float>& dL_denc,
                                const std::vector<float>& points, const HashGridSpec& spec) {
	const size_t n = points.size() / 3;
	Buffer<float> d_grad = be.allocate<float>(initial.size()), d_g = be.allocate<float>(dL_denc.size()),
	              d_points = be.allocate<float>(points.size());
	be.upload(d_grad.data(), initial.data(), initial.size() * sizeof(float));
	be.upload(d_g.data(), dL_denc.data(), dL_denc.size() * sizeof(float));
	be.upload(d_points.data(), points.data(), points.size() * sizeof(float));
	be.hash_encode_backward(d_grad.data(), d_g.data(), d_points.data(), n, spec);
	std::vector<float> grad(initial.size());
	be.download(grad.data(), d_grad.data(), grad.size() * sizeof(float));
	return grad;
}

} // namespace

TEST_CASE("make_hash_grid_spec: the default grid's levels, as the header's table", "[math][hash_grid]") {
	const HashGridSpec spec = default_spec();
	CHECK(spec.per_level_scale == Approx(1.3819128799677760).epsilon(1e-7));  // exp(ln(128) / 15)
	const uint32_t resolution[16] = {16, 23, 31, 43, 59, 81, 112, 154, 213, 295, 407, 562, 777, 1073, 1483, 2048};
	uint32_t offset = 0;
	for (int l = 0; l < 16; ++l) {
		INFO("level " << l);
		const HashGridLevel& level = spec.levels[l];
		// scale = 16 b^l - 1 with b^l = 128^(l / 15).
		CHECK(level.scale == Approx(16.0 * std::pow(128.0, l / 15.0) - 1.0).epsilon(1e-6));
		CHECK(level.resolution == resolution[l]);
		const uint64_t dense = (uint64_t)resolution[l] * resolution[l] * resolution[l];
		CHECK(level.hashed == (dense > (1u << 19) ? 1u : 0u));
		CHECK(level.n_entries == (level.hashed ? (1u << 19) : (uint32_t)((dense + 7) / 8 * 8)));
		CHECK(level.n_entries % 8 == 0);
		CHECK(level.offset == offset);
		offset += level.n_entries;
	}
	CHECK(spec.levels[4].hashed == 0u);  // 59^3 = 205379 -> 205384 entries (a multiple of 8)
	CHECK(spec.levels[4].n_entries == 205384u);
	CHECK(spec.levels[5].hashed == 1u);  // 81^3 = 531441 > 2^19
	CHECK(spec.levels[15].scale == 2047.0f);  // N_max - 1 exactly: resolution 2048, not 2049
	CHECK(spec.n_entries == 6098120u);
	CHECK(hash_grid_table_floats(spec) == 12196240u);
	CHECK(hash_grid_width(spec) == 32);

	// One level: b = 1 whatever the finest resolution, and the level is the base one.
	const HashGridSpec one = make_hash_grid_spec(1, 4, 12, 8, 512.0f, kLegoMin, kLegoMax);
	CHECK(one.per_level_scale == 1.0f);
	CHECK(one.levels[0].scale == 7.0f);
	CHECK(one.levels[0].resolution == 8u);
	CHECK(one.levels[0].n_entries == 512u);
	CHECK(one.n_entries == 512u);
}

TEST_CASE("make_hash_grid_spec: each bad option is one clear error naming it", "[math][hash_grid]") {
	using Catch::Matchers::Contains;
	const float lo[3] = {-1, -1, -1}, hi[3] = {1, 1, 1};
	CHECK_THROWS_WITH(make_hash_grid_spec(0, 2, 19, 16, 2048, lo, hi), Contains("n_levels") && Contains("1..32") && Contains("got 0"));
	CHECK_THROWS_WITH(make_hash_grid_spec(33, 2, 19, 16, 2048, lo, hi), Contains("n_levels") && Contains("got 33"));
	CHECK_THROWS_WITH(make_hash_grid_spec(16, 3, 19, 16, 2048, lo, hi), Contains("n_features_per_level") && Contains("got 3"));
	CHECK_THROWS_WITH(make_hash_grid_spec(16, 0, 19, 16, 2048, lo, hi), Contains("n_features_per_level"));
	CHECK_THROWS_WITH(make_hash_grid_spec(16, 2, 9, 16, 2048, lo, hi), Contains("log2_hashmap_size") && Contains("10..24") && Contains("got 9"));
	CHECK_THROWS_WITH(make_hash_grid_spec(16, 2, 25, 16, 2048, lo, hi), Contains("log2_hashmap_size") && Contains("10..24") && Contains("got 25"));
	CHECK_THROWS_WITH(make_hash_grid_spec(16, 2, 19, 1, 2048, lo, hi), Contains("base_resolution") && Contains("got 1"));
	CHECK_THROWS_WITH(make_hash_grid_spec(16, 2, 19, 16, 8, lo, hi), Contains("finest_resolution") && Contains("base_resolution"));
	CHECK_THROWS_WITH(make_hash_grid_spec(16, 2, 19, 16, NAN, lo, hi), Contains("finest_resolution"));
	for (int axis = 0; axis < 3; ++axis) {
		INFO("axis " << axis);
		float flat[3] = {1, 1, 1}, inverted[3] = {1, 1, 1};
		flat[axis] = -1.0f;      // max == min: zero volume
		inverted[axis] = -2.0f;  // max < min
		const char* name = axis == 0 ? "along x" : axis == 1 ? "along y" : "along z";
		CHECK_THROWS_WITH(make_hash_grid_spec(16, 2, 19, 16, 2048, lo, flat), Contains("box") && Contains(name));
		CHECK_THROWS_WITH(make_hash_grid_spec(16, 2, 19, 16, 2048, lo, inverted), Contains("box") && Contains(name));
	}
	const float nan_box[3] = {1, NAN, 1};
	CHECK_THROWS_WITH(make_hash_grid_spec(16, 2, 19, 16, 2048, lo, nan_box), Contains("box") && Contains("along y"));
	// Every error is a nerf::Error, and the valid edges of the ranges are accepted.
	CHECK_THROWS_AS(make_hash_grid_spec(16, 2, 25, 16, 2048, lo, hi), nerf::Error);
	CHECK_NOTHROW(make_hash_grid_spec(32, 8, 10, 2, 2, lo, hi));
	CHECK_NOTHROW(make_hash_grid_spec(1, 1, 24, 2, 2, lo, hi));
}

TEST_CASE("hash_grid_corners: hand-computed entries and weights at a dense and a hashed level", "[math][hash_grid]") {
	const HashGridSpec spec = small_spec();
	REQUIRE(spec.levels[0].scale == 3.0f);
	REQUIRE(spec.levels[0].resolution == 4u);
	REQUIRE(spec.levels[0].n_entries == 64u);
	REQUIRE(spec.levels[0].hashed == 0u);
	REQUIRE(spec.levels[1].scale == 15.0f);
	REQUIRE(spec.levels[1].resolution == 16u);
	REQUIRE(spec.levels[1].n_entries == 1024u);
	REQUIRE(spec.levels[1].hashed == 1u);
	REQUIRE(spec.levels[1].offset == 64u);

	// p = (0, -1, 3.5) in the box [-1, 1] x [-2, 2] x [0, 4]: x = (0.5, 0.25, 0.875), all exact in float.
	const float p[3] = {0.0f, -1.0f, 3.5f};
	float unit[3];
	hash_grid_normalize(unit, p, spec);
	CHECK(unit[0] == 0.5f);
	CHECK(unit[1] == 0.25f);
	CHECK(unit[2] == 0.875f);

	// Dense level: pos = x 3 + 0.5 = (2, 1.25, 3.125): cell (2, 1, 3), frac (0, 0.25, 0.125). Without the
	// +0.5 the cell would be (1, 0, 2). Entry c.x + 4 c.y + 16 c.z; the z + 1 corners have c.z = 4 =
	// resolution, so 2 + 4 + 64 = 70 wraps to 70 % 64 = 6 (and 71, 74, 75 to 7, 10, 11).
	HashGridCorners c;
	hash_grid_corners(c, unit, spec.levels[0]);
	const uint32_t dense_entries[8] = {54, 55, 58, 59, 6, 7, 10, 11};
	// x frac 0 (the point lies on a cell face in x): the x + 1 corners weigh exactly 0.
	const float dense_weights[8] = {0.65625f, 0.0f, 0.21875f, 0.0f, 0.09375f, 0.0f, 0.03125f, 0.0f};
	for (int k = 0; k < 8; ++k) {
		INFO("dense corner " << k);
		CHECK(c.entry[k] == dense_entries[k]);
		CHECK(c.weight[k] == dense_weights[k]);
	}

	// Hashed level: pos = x 15 + 0.5 = (8, 4.25, 13.625): cell (8, 4, 13), frac (0, 0.25, 0.625).
	// Corner 0: 8 ^ (4 * 2654435761 mod 2^32 = 2027808452) ^ (13 * 805459861 mod 2^32 = 1881043601)
	// = 147035229, mod 1024 = 93, plus the level's offset 64: entry 157.
	hash_grid_corners(c, unit, spec.levels[1]);
	const uint32_t hashed_entries[8] = {157, 156, 812, 813, 298, 299, 667, 666};
	const float hashed_weights[8] = {0.28125f, 0.0f, 0.09375f, 0.0f, 0.46875f, 0.0f, 0.15625f, 0.0f};
	for (int k = 0; k < 8; ++k) {
		INFO("hashed corner " << k);
		CHECK(c.entry[k] == hashed_entries[k]);
		CHECK(c.weight[k] == hashed_weights[k]);
	}

	// The same through the backend: enc = sum of weight * table over those entries.
	std::vector<float> table(2 * spec.n_entries);
	for (size_t i = 0; i < table.size(); ++i) table[i] = (float)(i % 97) * 0.01f - 0.5f;
	std::unique_ptr<Backend> cpu = create_cpu_backend(1);
	const std::vector<float> enc = run_encode(*cpu, table, std::vector<float>(p, p + 3), spec);
	for (int f = 0; f < 2; ++f) {
		double dense = 0.0, hashed = 0.0;
		for (int k = 0; k < 8; ++k) {
			dense += (double)dense_weights[k] * table[2 * dense_entries[k] + f];
			hashed += (double)hashed_weights[k] * table[2 * hashed_entries[k] + f];
		}
		CHECK(enc[f] == Approx(dense).epsilon(1e-6));
		CHECK(enc[2 + f] == Approx(hashed).epsilon(1e-6));
	}
}

TEST_CASE("hash_grid_level_index: the division-free modulo equals % for every corner a lookup reaches", "[math][hash_grid]") {
	// Dense levels of many resolutions (corner coordinates 0..resolution, the top one included) and
	// hashed levels with random coordinates.
	const float lo[3] = {0, 0, 0}, hi[3] = {1, 1, 1};
	std::mt19937 rng(5);
	size_t dense_checked = 0, wrapped = 0, hashed_checked = 0;
	for (int base : {2, 3, 5, 16}) {
		for (int log2 : {10, 13, 19}) {
			const HashGridSpec spec = make_hash_grid_spec(8, 2, log2, base, 300.0f, lo, hi);
			for (int l = 0; l < spec.n_levels; ++l) {
				const HashGridLevel& level = spec.levels[l];
				const uint32_t r = level.resolution;
				for (int trial = 0; trial < 2000; ++trial) {
					uint64_t c[3];
					for (uint64_t& x : c) x = level.hashed ? rng() % 100000 : rng() % (r + 1);
					if (trial < 8) {
						for (int d = 0; d < 3; ++d) c[d] = (trial >> d) & 1 ? r : 0;  // the far corners
					}
					const uint32_t got = hash_grid_level_index((uint32_t)c[0], (uint32_t)c[1], (uint32_t)c[2], level);
					REQUIRE(got == reference_level_index(c, level));
					if (level.hashed) {
						++hashed_checked;
					} else {
						++dense_checked;
						wrapped += c[0] + c[1] * r + c[2] * r * r >= level.n_entries;
					}
				}
			}
		}
	}
	CHECK(dense_checked > 10000);
	CHECK(wrapped > 100);  // the wrapping branch did run
	CHECK(hashed_checked > 10000);
}

TEST_CASE("hash_encode: random points at dense and hashed levels against the formula in double", "[math][hash_grid][backend]") {
	std::unique_ptr<Backend> cpu = create_cpu_backend(2);
	for (int F : {1, 2, 4, 8}) {
		// 12 levels, N_min 6, N_max 600 over the lego box, 2^12 entries: levels 0-2 dense, 3-11 hashed.
		const HashGridSpec spec = make_hash_grid_spec(12, F, 12, 6, 600.0f, kLegoMin, kLegoMax);
		REQUIRE(spec.levels[0].hashed == 0u);
		REQUIRE(spec.levels[11].hashed == 1u);
		const size_t n = 3000;
		const std::vector<float> points = random_points(n, spec, 10 + F);
		const std::vector<float> table = random_floats(hash_grid_table_floats(spec), -1.0f, 1.0f, 20 + F);
		const std::vector<float> enc = run_encode(*cpu, table, points, spec);
		const std::vector<double> points_d(points.begin(), points.end());
		const std::vector<double> ref = reference_encode(table, points_d, spec);
		const int width = hash_grid_width(spec);
		REQUIRE(enc.size() == ref.size());
		size_t different_cell = 0, checked_corners = 0;
		for (int l = 0; l < spec.n_levels; ++l) {
			// The float path's pos differs from the double one by the roundings of the normalisation and
			// of the fmaf (each <= 2^-24 relative, of values <= scale + 1). Trilinear interpolation is
			// continuous across cells and its slope along an axis is a difference of two table values
			// (<= 2 here), so over the 3 axes: |error| <= 3 * 2 * 2 * 2^-24 (scale + 1) plus the sum's 8 roundings.
			const double tol = 12.0 * std::ldexp(1.0, -24) * (spec.levels[l].scale + 1.0) + 8.0 * std::ldexp(1.0, -24) * 8.0;
			double worst = 0.0;
			for (size_t s = 0; s < n; ++s)
				for (int f = 0; f < F; ++f) {
					const size_t i = s * width + l * F + f;
					worst = std::max(worst, std::fabs(enc[i] - ref[i]));
				}
			INFO("F " << F << " level " << l << " (hashed " << spec.levels[l].hashed << "): worst " << worst << " tol " << tol);
			CHECK(worst <= tol);
			// The corner entries themselves: exact wherever the double cell is the float one.
			for (size_t s = 0; s < n; ++s) {
				uint64_t cell[3];
				const std::vector<ReferenceCorner> rc = reference_corners(&points_d[3 * s], spec, l, cell);
				float unit[3];
				hash_grid_normalize(unit, &points[3 * s], spec);
				bool same_cell = true;
				for (int d = 0; d < 3; ++d) same_cell &= (uint64_t)std::floor(std::fma(unit[d], spec.levels[l].scale, 0.5f)) == cell[d];
				if (!same_cell) {
					++different_cell;
					continue;
				}
				HashGridCorners c;
				hash_grid_corners(c, unit, spec.levels[l]);
				for (int k = 0; k < 8; ++k) {
					REQUIRE(c.entry[k] == rc[k].entry);
					REQUIRE(std::fabs(c.weight[k] - rc[k].weight) <= 8.0 * std::ldexp(1.0, -24) * (spec.levels[l].scale + 1.0));
				}
				checked_corners += 8;
			}
		}
		CHECK(different_cell < n * spec.n_levels / 100);  // only points within an ulp of a face
		CHECK(checked_corners > 8 * n * spec.n_levels * 9 / 10);
	}
}

TEST_CASE("hash_encode: a point on a cell face and at the box's corners, and outside the box", "[math][hash_grid][backend]") {
	std::unique_ptr<Backend> cpu = create_cpu_backend(1);
	const HashGridSpec spec = small_spec();
	const std::vector<float> table = random_floats(hash_grid_table_floats(spec), -1.0f, 1.0f, 31);
	const float* lo = spec.aabb_min;
	const float* hi = spec.aabb_max;
	// Box min: x = 0, pos = 0.5 at every level: cell 0, frac 1/2, every corner weighs 1/8 exactly.
	// Box max: x = 1, pos = scale + 0.5: the top corners lie at c = resolution (dense: wrapped).
	// Beyond the box the clamp gives the face's values.
	const std::vector<float> points = {lo[0], lo[1], lo[2], hi[0], hi[1], hi[2], lo[0] - 3.0f, lo[1] - 0.5f, lo[2] - 10.0f,
	                                   hi[0] + 1.0f, hi[1] + 7.0f, hi[2] + 0.01f};
	const std::vector<float> enc = run_encode(*cpu, table, points, spec);
	const std::vector<double> ref = reference_encode(table, std::vector<double>(points.begin(), points.end()), spec);
	for (size_t i = 0; i < enc.size(); ++i) {
		INFO("value " << i);
		CHECK(enc[i] == Approx(ref[i]).margin(1e-6));
	}
	for (int i = 0; i < 4; ++i) {
		INFO("min corner, value " << i);
		CHECK(enc[i] == enc[8 + i]);   // below the box = at its min corner
		CHECK(enc[4 + i] == enc[12 + i]);  // above = at the max corner
	}
	float unit[3];
	hash_grid_normalize(unit, &points[0], spec);
	for (int l = 0; l < 2; ++l) {
		HashGridCorners c;
		hash_grid_corners(c, unit, spec.levels[l]);
		for (int k = 0; k < 8; ++k) CHECK(c.weight[k] == 0.125f);
	}
	hash_grid_normalize(unit, &points[3], spec);
	CHECK((unit[0] == 1.0f && unit[1] == 1.0f && unit[2] == 1.0f));
	{
		// Dense level at the max corner: pos 3.5, cell (3, 3, 3); corner 7 is (4, 4, 4): 4 + 16 + 64 = 84 -> 20.
		HashGridCorners c;
		hash_grid_corners(c, unit, spec.levels[0]);
		CHECK(c.entry[0] == 3u + 12u + 48u);
		CHECK(c.entry[7] == 20u);
		for (int k = 0; k < 8; ++k) CHECK(c.weight[k] == 0.125f);
	}

	// A point on a cell face (dense level: x = 0.5, pos = 2 exactly): the value is that of the face's 4
	// corners, and it is continuous: a point 1e-6 below the face (pos 2 - 1.5e-6, in the cell below) gives
	// the same to the slope (<= 2) times 1.5e-6.
	const float face[3] = {0.0f, 0.3f, 1.7f};
	const float below[3] = {-1e-6f, 0.3f, 1.7f};
	const std::vector<float> two = {face[0], face[1], face[2], below[0], below[1], below[2]};
	const std::vector<float> e2 = run_encode(*cpu, table, two, spec);
	hash_grid_normalize(unit, face, spec);
	CHECK(unit[0] == 0.5f);
	HashGridCorners c;
	hash_grid_corners(c, unit, spec.levels[0]);
	for (int k = 1; k < 8; k += 2) CHECK(c.weight[k] == 0.0f);  // the x + 1 side
	for (int f = 0; f < 2; ++f) {
		double face_value = 0.0;
		for (int k = 0; k < 8; k += 2) face_value += (double)c.weight[k] * table[2 * c.entry[k] + f];
		CHECK(e2[f] == Approx(face_value).margin(1e-6));
		CHECK(e2[4 + f] == Approx(e2[f]).margin(1e-5));  // the other cell, at the same place
	}
	float unit_below[3];
	hash_grid_normalize(unit_below, below, spec);
	HashGridCorners cb;
	hash_grid_corners(cb, unit_below, spec.levels[0]);
	CHECK(cb.entry[0] != c.entry[0]);  // it really is the neighbouring cell
}

TEST_CASE("hash_encode_backward: central differences, and the weights themselves", "[math][hash_grid][backend]") {
	std::unique_ptr<Backend> cpu = create_cpu_backend(2);
	const HashGridSpec spec = make_hash_grid_spec(6, 2, 10, 4, 64.0f, kLegoMin, kLegoMax);
	const size_t n = 40;
	const int width = hash_grid_width(spec);
	const std::vector<float> points = random_points(n, spec, 41);
	std::vector<float> table = random_floats(hash_grid_table_floats(spec), -1.0f, 1.0f, 42);
	const std::vector<float> dL_denc = random_floats(n * width, -1.0f, 1.0f, 43);
	const std::vector<float> initial = random_floats(table.size(), -0.1f, 0.1f, 44);
	const std::vector<float> grad = run_backward(*cpu, initial, dL_denc, points, spec);

	// L(table) = sum dL_denc * enc(table) is linear in the table, so a central difference with h = 0.25 is
	// exact up to the forward's float roundings: only the values that read entry e change (the others are
	// the same bits on both sides), at most 8 n of them, each rounded to ~2 ulp of |enc| <= 1: the
	// difference is good to 8 * 40 * 2.4e-7 / (2 h) ~ 1.5e-4 in the worst case, far less in practice.
	auto loss = [&](const std::vector<float>& t) {
		const std::vector<float> enc = run_encode(*cpu, t, points, spec);
		double sum = 0.0;
		for (size_t i = 0; i < enc.size(); ++i) sum += (double)dL_denc[i] * enc[i];
		return sum;
	};
	std::mt19937 rng(45);
	size_t touched = 0;
	for (int trial = 0; trial < 120; ++trial) {
		const size_t e = rng() % table.size();
		const float h = 0.25f;
		std::vector<float> plus = table, minus = table;
		plus[e] += h;
		minus[e] -= h;
		const double numeric = (loss(plus) - loss(minus)) / (2.0 * h);
		const double analytic = (double)grad[e] - initial[e];
		INFO("entry " << e);
		CHECK(analytic == Approx(numeric).margin(1.5e-4));
		touched += std::fabs(numeric) > 1e-3;
	}
	CHECK(touched > 20);  // the sample of entries did include ones the points reach

	// One point, one unit gradient: dL_dtable[entry F + f] = the corner's weight, exactly.
	const std::vector<float> one_point = {0.31f, -0.77f, 1.02f};
	for (int l = 0; l < spec.n_levels; ++l) {
		for (int f = 0; f < 2; ++f) {
			std::vector<float> g(width, 0.0f);
			g[l * 2 + f] = 1.0f;
			const std::vector<float> got = run_backward(*cpu, std::vector<float>(table.size(), 0.0f), g, one_point, spec);
			float unit[3];
			hash_grid_normalize(unit, one_point.data(), spec);
			HashGridCorners c;
			hash_grid_corners(c, unit, spec.levels[l]);
			std::map<size_t, float> expected;
			for (int k = 0; k < 8; ++k) expected[(size_t)c.entry[k] * 2 + f] += c.weight[k];
			for (size_t i = 0; i < got.size(); ++i) {
				const auto it = expected.find(i);
				INFO("level " << l << " feature " << f << " float " << i);
				if (it == expected.end()) REQUIRE(got[i] == 0.0f);
				else REQUIRE(got[i] == it->second);
			}
			// And those weights are the trilinear ones of the double formula.
			const std::vector<double> p_d(one_point.begin(), one_point.end());
			const std::vector<ReferenceCorner> rc = reference_corners(p_d.data(), spec, l);
			for (int k = 0; k < 8; ++k) CHECK(c.weight[k] == Approx(rc[k].weight).margin(1e-6));
		}
	}
}

TEST_CASE("hash_encode_backward: 1 and 2 threads give the same bits", "[math][hash_grid][backend]") {
	// A small table (2^10 entries a level) so that many samples add into the same entries, where a
	// different order of the additions would change the last bits.
	const HashGridSpec spec = make_hash_grid_spec(16, 2, 10, 16, 2048.0f, kLegoMin, kLegoMax);
	const size_t n = 20000;
	const std::vector<float> points = random_points(n, spec, 51);
	const std::vector<float> dL_denc = random_floats(n * hash_grid_width(spec), -1.0f, 1.0f, 52);
	const std::vector<float> initial = random_floats(hash_grid_table_floats(spec), -1e-3f, 1e-3f, 53);
	std::vector<float> result[2];
	for (int threads : {1, 2}) {
		std::unique_ptr<Backend> cpu = create_cpu_backend(threads);
		result[threads - 1] = run_backward(*cpu, initial, dL_denc, points, spec);
	}
	CHECK(std::memcmp(result[0].data(), result[1].data(), result[0].size() * sizeof(float)) == 0);
	// The backward did add: every level's table changed somewhere.
	for (int l = 0; l < spec.n_levels; ++l) {
		const HashGridLevel& level = spec.levels[l];
		size_t changed = 0;
		for (size_t i = (size_t)level.offset * 2; i < (size_t)(level.offset + level.n_entries) * 2; ++i)
			changed += result[1][i] != initial[i];
		INFO("level " << l);
		CHECK(changed > level.n_entries / 2);
	}
	// The forward too (each row its own: trivially, but it is the contract).
	const std::vector<float> table = random_floats(hash_grid_table_floats(spec), -1.0f, 1.0f, 54);
	std::unique_ptr<Backend> one = create_cpu_backend(1);
	const std::vector<float> enc1 = run_encode(*one, table, points, spec);
	std::unique_ptr<Backend> two = create_cpu_backend(2);
	const std::vector<float> enc2 = run_encode(*two, table, points, spec);
	CHECK(enc1 == enc2);
}
