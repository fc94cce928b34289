// Tests of include/nerf/math/occupancy.h: cell lookup, the ray-box interval, marching against a
// brute-force reference in double (every step point of the ray tested against the grid), and the
// grid update's per-cell rules against direct formulas.
#include <catch2/catch.hpp>

#include "nerf/math/occupancy.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using namespace nerf;

namespace {

OccGridSpec test_grid(int resolution) {
	OccGridSpec g;
	const float lo[3] = {-1.0f, -1.5f, -0.5f}, hi[3] = {1.0f, 1.5f, 2.5f};  // not a cube: axes must not mix
	for (int d = 0; d < 3; ++d) {
		g.aabb_min[d] = lo[d];
		g.aabb_max[d] = hi[d];
	}
	g.resolution = resolution;
	return g;
}

struct ReferenceSample {
	double t;
	int cell;
	bool ambiguous;  ///< within rounding of a cell face or of the interval's end: float may decide either way
};

/// Every step point of the ray in double, each looked up in the grid; returns the occupied ones.
/// `ambiguous_any` is set when a step point lies so close to a face or an end that float rounding
/// could put it on the other side.
std::vector<ReferenceSample> brute_force_march(const float o[3], const float d[3], const std::vector<uint8_t>& occupied,
                                               const MarchSpec& spec, float u, bool* ambiguous_any) {
	*ambiguous_any = false;
	const OccGridSpec& g = spec.grid;
	double t_enter = -1e300, t_exit = 1e300;
	for (int k = 0; k < 3; ++k) {
		if (d[k] == 0.0f) {
			if (o[k] < g.aabb_min[k] || o[k] > g.aabb_max[k]) return {};
			continue;
		}
		const double ta = ((double)g.aabb_min[k] - o[k]) / d[k], tb = ((double)g.aabb_max[k] - o[k]) / d[k];
		t_enter = std::max(t_enter, std::min(ta, tb));
		t_exit = std::min(t_exit, std::max(ta, tb));
	}
	const double t_begin = std::max((double)spec.near, t_enter), t_end = std::min((double)spec.far, t_exit);
	if (!(t_begin < t_end)) return {};
	const double norm = std::sqrt((double)d[0] * d[0] + (double)d[1] * d[1] + (double)d[2] * d[2]);
	const double dt = spec.step_size / norm;
	std::vector<ReferenceSample> out;
	for (int k = 0;; ++k) {
		const double t = t_begin + (k + (double)u) * dt;
		const double end_margin = 1e-5 * std::max(1.0, std::fabs(t_end));
		if (std::fabs(t - t_end) < end_margin) *ambiguous_any = true;
		if (t >= t_end) break;
		int index = 0;
		bool inside = true, near_face = false;
		for (int a = 0; a < 3; ++a) {
			const double x = o[a] + d[a] * t;
			const double cells = (x - g.aabb_min[a]) / ((double)g.aabb_max[a] - g.aabb_min[a]) * g.resolution;
			if (std::fabs(cells - std::round(cells)) < 1e-4) near_face = true;
			const int i = (int)std::floor(cells);
			if (i < 0 || i >= g.resolution) inside = false;
			index = index * g.resolution + std::clamp(i, 0, g.resolution - 1);
		}
		if (near_face) *ambiguous_any = true;
		if (inside && occupied[index]) out.push_back({t, index, near_face});
	}
	return out;
}

/// Rays from points around the box towards points inside it (and some that miss or start inside).
void random_ray(std::mt19937& rng, float o[3], float d[3]) {
	std::uniform_real_distribution<float> wide(-4.0f, 4.0f), inner(-0.8f, 0.8f), pick(0.0f, 1.0f);
	for (int k = 0; k < 3; ++k) o[k] = wide(rng);
	if (pick(rng) < 0.2f)
		for (int k = 0; k < 3; ++k) o[k] = inner(rng);  // starts inside the box
	float target[3];
	for (int k = 0; k < 3; ++k) target[k] = pick(rng) < 0.2f ? wide(rng) : inner(rng);  // some miss
	for (int k = 0; k < 3; ++k) d[k] = (target[k] - o[k]) * (0.5f + pick(rng));          // not unit length
}

} // namespace

TEST_CASE("occupancy: cell lookup and the ray-box interval", "[math][occupancy]") {
	const OccGridSpec g = test_grid(4);
	const float corner[3] = {-1.0f, -1.5f, -0.5f};
	CHECK(occ_cell_of(corner, g) == 0);
	// Cell (ix, iy, iz) = (3, 1, 2): x in [0.5, 1), y in [-0.75, 0), z in [1, 1.75).
	const float p[3] = {0.9f, -0.1f, 1.2f};
	CHECK(occ_cell_of(p, g) == (3 * 4 + 1) * 4 + 2);
	const float on_max[3] = {1.0f, 0.0f, 0.0f}, outside[3] = {0.0f, -1.6f, 0.0f}, nan[3] = {NAN, 0.0f, 0.0f};
	CHECK(occ_cell_of(on_max, g) == -1);  // the box is half-open: [min, max)
	CHECK(occ_cell_of(outside, g) == -1);
	CHECK(occ_cell_of(nan, g) == -1);
	CHECK(occ_cell_count(g) == 64u);

	float t0 = 0, t1 = 0;
	const float o[3] = {-3.0f, 0.0f, 1.0f}, d[3] = {2.0f, 0.0f, 0.0f};
	REQUIRE(ray_box_interval(&t0, &t1, o, d, g));
	CHECK(t0 == 1.0f);  // x = -3 + 2 t reaches -1 at t = 1 and 1 at t = 2
	CHECK(t1 == 2.0f);
	const float above[3] = {-3.0f, 2.0f, 1.0f};
	CHECK_FALSE(ray_box_interval(&t0, &t1, above, d, g));  // parallel to the y slab, outside it
	const float miss_d[3] = {1.0f, 2.0f, 0.0f};
	CHECK_FALSE(ray_box_interval(&t0, &t1, o, miss_d, g));  // passes above the box
}

TEST_CASE("occupancy: marching keeps exactly the occupied step points of a brute-force march, in order",
          "[math][occupancy]") {
	const int R = 16;
	const OccGridSpec g = test_grid(R);
	std::mt19937 rng(5);
	std::vector<uint8_t> occupied(occ_cell_count(g));
	for (uint8_t& o : occupied) o = (rng() % 10) < 3 ? 1 : 0;
	for (bool perturb : {false, true}) {
		MarchSpec spec;
		spec.grid = g;
		spec.near = 0.5f;
		spec.far = 5.0f;
		spec.step_size = 0.05f;
		spec.max_steps = 200;  // diagonal sqrt(4 + 9 + 9) / 0.05 = 94 steps at most
		spec.perturb = perturb;
		spec.seed = 3;
		spec.step = 11;
		int compared = 0, skipped = 0, with_samples = 0, missed = 0;
		for (uint32_t ray = 0; ray < 3000; ++ray) {
			float o[3], d[3];
			random_ray(rng, o, d);
			const float u = perturb ? random_uniform(spec.seed, spec.step, ray, 0, RngStream::MarchJitter) : 0.5f;
			bool ambiguous = false;
			const std::vector<ReferenceSample> ref = brute_force_march(o, d, occupied, spec, u, &ambiguous);
			const uint32_t count = march_ray(nullptr, nullptr, nullptr, o, d, occupied.data(), ray, spec);
			std::vector<float> t(count + 1), dt(count + 1), points(3 * count + 3);
			REQUIRE(march_ray(t.data(), dt.data(), points.data(), o, d, occupied.data(), ray, spec) == count);
			float t0, t1;
			if (!ray_box_interval(&t0, &t1, o, d, g)) ++missed;
			if (ambiguous) {
				++skipped;
				continue;
			}
			++compared;
			if (count) ++with_samples;
			REQUIRE(count == ref.size());
			const double norm = std::sqrt((double)d[0] * d[0] + (double)d[1] * d[1] + (double)d[2] * d[2]);
			for (uint32_t k = 0; k < count; ++k) {
				INFO("ray " << ray << " sample " << k);
				CHECK(std::fabs(t[k] - ref[k].t) <= 1e-5 * std::max(1.0, std::fabs(ref[k].t)));
				CHECK(dt[k] == Approx(spec.step_size / norm).epsilon(1e-6));
				CHECK(occ_cell_of(points.data() + 3 * k, g) == ref[k].cell);
				if (k > 0) CHECK(t[k] > t[k - 1]);
				CHECK(t[k] >= spec.near);
				CHECK(t[k] < spec.far);
			}
		}
		INFO("perturb " << perturb << ": compared " << compared << ", near a face (skipped) " << skipped << ", with samples "
		                << with_samples << ", missing the box " << missed);
		// The comparison must cover most rays, many with samples, and rays that miss the box.
		CHECK(compared > 2000);
		CHECK(with_samples > 1000);
		CHECK(missed > 100);
	}
}

TEST_CASE("occupancy: an empty grid gives no samples, a full grid every step point, max_steps bounds a ray",
          "[math][occupancy]") {
	const OccGridSpec g = test_grid(8);
	MarchSpec spec;
	spec.grid = g;
	spec.near = 0.0f;
	spec.far = 100.0f;
	spec.step_size = 0.01f;
	spec.max_steps = 1000;
	const std::vector<uint8_t> empty(occ_cell_count(g), 0), full(occ_cell_count(g), 1);
	// Along +x through the middle: inside for x in [-1, 1), i.e. t in [2, 4) for o_x = -3, |d| = 1.
	const float o[3] = {-3.0f, 0.1f, 1.1f}, d[3] = {1.0f, 0.0f, 0.0f};
	CHECK(march_ray(nullptr, nullptr, nullptr, o, d, empty.data(), 0, spec) == 0u);
	// Step points 2.005, 2.015, ..., 3.995: 200 of them.
	CHECK(march_ray(nullptr, nullptr, nullptr, o, d, full.data(), 0, spec) == 200u);
	spec.max_steps = 50;
	CHECK(march_ray(nullptr, nullptr, nullptr, o, d, full.data(), 0, spec) == 50u);
	// near/far clip the interval: t in [2.5, 3) leaves 50 points.
	spec.max_steps = 1000;
	spec.near = 2.5f;
	spec.far = 3.0f;
	CHECK(march_ray(nullptr, nullptr, nullptr, o, d, full.data(), 0, spec) == 50u);
	// A ray that misses the box, and one pointing away from it.
	const float away[3] = {-1.0f, 0.0f, 0.0f};
	spec.near = 0.0f;
	spec.far = 100.0f;
	CHECK(march_ray(nullptr, nullptr, nullptr, o, away, full.data(), 0, spec) == 0u);
	const float above[3] = {-3.0f, 5.0f, 1.1f};
	CHECK(march_ray(nullptr, nullptr, nullptr, above, d, full.data(), 0, spec) == 0u);
	// A zero direction has no step length: nothing, and no endless loop.
	const float zero[3] = {0.0f, 0.0f, 0.0f}, inside[3] = {0.1f, 0.1f, 1.1f};
	CHECK(march_ray(nullptr, nullptr, nullptr, inside, zero, full.data(), 0, spec) == 0u);
}

TEST_CASE("occupancy: update rules (chosen cells, jittered points, EMA, flags) against direct formulas",
          "[math][occupancy]") {
	OccUpdateSpec spec;
	spec.grid = test_grid(8);
	spec.step_size = 0.02f;
	spec.seed = 9;
	spec.step = 300;
	const uint32_t cells = occ_cell_count(spec.grid);
	// After the warmup: occupied cells always, others about a quarter, deterministically.
	int chosen_empty = 0;
	for (uint32_t c = 0; c < cells; ++c) {
		CHECK(occ_cell_chosen(c, true, spec));
		const bool chosen = occ_cell_chosen(c, false, spec);
		CHECK(chosen == (random_uniform(spec.seed, spec.step, c, 0, RngStream::OccGridChoice) < 0.25f));
		chosen_empty += chosen;
	}
	CHECK(chosen_empty > (int)cells / 4 - 60);
	CHECK(chosen_empty < (int)cells / 4 + 60);
	spec.all_cells = true;
	for (uint32_t c = 0; c < cells; ++c) CHECK(occ_cell_chosen(c, false, spec));

	// The point of cell c lies in c, and differs between steps.
	for (uint32_t c = 0; c < cells; c += 7) {
		float x[3], y[3];
		occ_cell_point(x, c, spec);
		CHECK(occ_cell_of(x, spec.grid) == (int32_t)c);
		OccUpdateSpec later = spec;
		later.step += 16;
		occ_cell_point(y, c, later);
		CHECK((x[0] != y[0] || x[1] != y[1] || x[2] != y[2]));
	}

	// ema = max(0.95 ema, relu(sigma) step_size).
	CHECK(occ_ema(1.0f, 10.0f, spec) == std::max(0.95f * 1.0f, 10.0f * 0.02f));
	CHECK(occ_ema(0.1f, 10.0f, spec) == 10.0f * 0.02f);
	CHECK(occ_ema(0.1f, -3.0f, spec) == 0.95f * 0.1f);
	// occupied = ema > min(threshold, mean); an all-zero grid keeps every cell.
	spec.threshold = 0.01f;
	CHECK(occ_flag(0.02f, 0.5, spec) == 1);   // above the threshold (mean is larger)
	CHECK(occ_flag(0.005f, 0.5, spec) == 0);
	CHECK(occ_flag(0.005f, 0.001, spec) == 1);  // mean below the threshold: above the mean counts
	CHECK(occ_flag(0.0005f, 0.001, spec) == 0);
	CHECK(occ_flag(0.0f, 0.0, spec) == 1);
}

TEST_CASE("occupancy: jumping over empty blocks keeps exactly the points of the step-by-step march", "[math][occupancy]") {
	// Sparse blobs of occupied cells (as a trained grid is), so that most blocks are empty and rays
	// jump in and out of occupied ones; both block sizes, axis-parallel rays among the random ones.
	std::mt19937 rng(11);
	std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
	for (const int resolution : {32, 24, 12}) {
		const int factor = occ_coarse_factor(resolution);
		INFO("resolution " << resolution << ", blocks of " << factor);
		REQUIRE(factor == 4);
		const OccGridSpec grid = test_grid(resolution);
		std::vector<uint8_t> occupied(occ_cell_count(grid), 0);
		for (int blob = 0; blob < 6; ++blob) {
			const int c[3] = {(int)(rng() % resolution), (int)(rng() % resolution), (int)(rng() % resolution)};
			for (int x = -1; x <= 1; ++x)
				for (int y = -1; y <= 1; ++y)
					for (int z = -1; z <= 1; ++z) {
						const int i = c[0] + x, j = c[1] + y, k = c[2] + z;
						if (i >= 0 && j >= 0 && k >= 0 && i < resolution && j < resolution && k < resolution)
							occupied[((size_t)i * resolution + j) * resolution + k] = 1;
					}
		}
		const uint32_t B = (uint32_t)(resolution / factor);
		std::vector<uint8_t> coarse(B * B * B);
		size_t empty_blocks = 0;
		for (uint32_t b = 0; b < coarse.size(); ++b) {
			coarse[b] = occ_block_flag(b, occupied.data(), resolution, factor);
			empty_blocks += coarse[b] == 0;
		}
		CHECK(empty_blocks > coarse.size() / 2);
		MarchSpec plain;
		plain.grid = grid;
		plain.near = 0.0f;
		plain.far = 20.0f;
		plain.step_size = 0.013f;
		plain.max_steps = 2000;
		plain.perturb = true;
		plain.seed = 3;
		MarchSpec jumping = plain;
		jumping.coarse_occupied = coarse.data();
		jumping.coarse_factor = factor;
		std::vector<uint32_t> occupied_cells;
		for (uint32_t c = 0; c < occupied.size(); ++c)
			if (occupied[c]) occupied_cells.push_back(c);
		size_t kept_total = 0;
		for (uint32_t ray = 0; ray < 3000; ++ray) {
			float o[3] = {4.0f * uni(rng), 4.0f * uni(rng), 4.0f * uni(rng)};
			float d[3] = {uni(rng), uni(rng), uni(rng)};
			if (ray % 3 != 0) {
				// Two rays in three aim at an occupied cell, so that they cross blobs.
				const uint32_t c = occupied_cells[rng() % occupied_cells.size()];
				const uint32_t index[3] = {c / (resolution * resolution), (c / resolution) % resolution, c % resolution};
				for (int a = 0; a < 3; ++a) {
					const float size = (grid.aabb_max[a] - grid.aabb_min[a]) / (float)resolution;
					d[a] = grid.aabb_min[a] + ((float)index[a] + 0.5f) * size - o[a];
				}
			}
			if (ray % 10 == 0) d[ray % 3] = 0.0f;  // parallel to a face
			if (ray % 30 == 0) d[(ray + 1) % 3] = 0.0f;
			std::vector<float> t0(2000), dt0(2000), x0(6000), t1(2000), dt1(2000), x1(6000);
			const uint32_t n0 = march_ray(t0.data(), dt0.data(), x0.data(), o, d, occupied.data(), ray, plain);
			const uint32_t n1 = march_ray(t1.data(), dt1.data(), x1.data(), o, d, occupied.data(), ray, jumping);
			REQUIRE(n0 == n1);
			kept_total += n0;
			for (uint32_t k = 0; k < n0; ++k) {
				REQUIRE(t0[k] == t1[k]);
				REQUIRE(dt0[k] == dt1[k]);
				for (int c = 0; c < 3; ++c) REQUIRE(x0[3 * k + c] == x1[3 * k + c]);
			}
		}
		CHECK(kept_total > 1000);  // the rays do hit the blobs
	}
}
