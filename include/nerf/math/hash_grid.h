// Multiresolution hash encoding (Müller et al. 2022), with tiny-cuda-nn's semantics and option names.
//
// Levels. L levels (n_levels) of F features each (n_features_per_level) over an axis-aligned box. With
// N_min = base_resolution, N_max = finest_resolution and b = per_level_scale = exp(ln(N_max / N_min) /
// (L - 1)) (b = 1 when L = 1), level l has
//   scale_l      = N_min b^l - 1                 (computed in double, rounded once to float)
//   resolution_l = ceil(scale_l) + 1             (grid vertices per axis)
//   n_entries_l  = min(resolution_l^3, T) rounded up to a multiple of 8, T = 2^log2_hashmap_size
//   hashed_l     = resolution_l^3 > T
// and the levels lie one after the other in one table, float [n_entries, F] (entry e's features at
// table[e F + f]), level l from entry offset_l = n_entries_0 + ... + n_entries_{l-1}.
//
// The defaults (16 levels, F = 2, T = 2^19, N_min = 16, N_max = 2048: b = 1.3819) give
//   level  scale      resolution  n_entries  hashed        level  scale      resolution  n_entries  hashed
//    0      15.000        16         4096     no             8     211.80       213        524288    yes
//    1      21.111        23        12168     no             9     293.07       295        524288    yes
//    2      29.555        31        29792     no            10     405.37       407        524288    yes
//    3      41.224        43        79512     no            11     560.57       562        524288    yes
//    4      57.350        59       205384     no            12     775.05       777        524288    yes
//    5      79.635        81       524288     yes           13    1071.43      1073        524288    yes
//    6     110.43        112       524288     yes           14    1481.00      1483        524288    yes
//    7     152.99        154       524288     yes           15    2047.00      2048        524288    yes
// in all 6,098,120 entries (12,196,240 floats, 48.8 MB); tests/test_math_hash_grid.cpp checks this table.
//
// Lookup of a point p at level l:
//   x    = clamp((p - aabb_min) / (aabb_max - aabb_min), 0, 1)   per axis
//   pos  = x scale_l + 0.5,  cell = floor(pos),  frac = pos - cell
// and the 8 corners cell + (i, j, k), i, j, k in {0, 1}, weighted trilinearly (weight prod over axes of
// frac or 1 - frac). A corner c's entry in its level: dense levels c.x + c.y r + c.z r^2 (r = resolution_l),
// hashed levels the coherent prime hash (c.x * 1) ^ (c.y * 2654435761) ^ (c.z * 805459861) in uint32
// arithmetic; both then taken modulo n_entries_l, as tiny-cuda-nn.
// Along an axis the corner index reaches r (not only r - 1) when pos lies in the top half of the last
// cell (x > 1 - 1/(2 scale)); a dense level's index then runs into the next row (or past the level's end,
// where the modulo brings it back), as in tiny-cuda-nn: one more deterministic collision, which the
// training learns around as it does around the hash's.
// Output of the encoding: [n, L F], level l's features at columns l F .. l F + F - 1, each the weighted
// sum of the 8 corners' features. The encoding is linear in the table; its backward scatters
// weight * dL/denc into the 8 corners' entries (points are data: no gradient with respect to them).
//
// Every operation is written out (explicit fmaf, no contractible a * b + c), so the CPU and the GPU
// compute the same bits for the forward pass.
#pragma once

#include "nerf/common.h"

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace nerf {

constexpr int kMaxHashLevels = 32;

/// One level of the grid (see the file comment for the formulas).
struct HashGridLevel {
	float scale;          ///< N_min b^l - 1: x in [0, 1] maps to pos = x scale + 0.5
	uint32_t resolution;  ///< ceil(scale) + 1 vertices per axis
	uint32_t n_entries;   ///< entries of this level (a multiple of 8)
	uint32_t offset;      ///< the level's first entry in the table
	uint32_t hashed;      ///< 1: resolution^3 > 2^log2_hashmap_size, indexed by the hash; 0: dense
};

/// The whole grid; plain data, passed by value to kernels. Build it with make_hash_grid_spec.
struct HashGridSpec {
	int n_levels = 16;
	int n_features_per_level = 2;
	int log2_hashmap_size = 19;
	int base_resolution = 16;
	float per_level_scale = 1.0f;  ///< b, derived from the finest resolution
	float aabb_min[3] = {-1.5f, -1.5f, -1.5f};
	float aabb_max[3] = {1.5f, 1.5f, 1.5f};
	uint32_t n_entries = 0;  ///< all levels' entries: the table is float [n_entries, n_features_per_level]
	HashGridLevel levels[kMaxHashLevels] = {};
};

/// Encoded width: L F floats per point.
NERF_HD inline int hash_grid_width(const HashGridSpec& spec) { return spec.n_levels * spec.n_features_per_level; }

/// Floats of the table (n_entries F).
inline size_t hash_grid_table_floats(const HashGridSpec& spec) {
	return (size_t)spec.n_entries * (size_t)spec.n_features_per_level;
}

/// Validates the options (one nerf::Error naming the option and the problem) and derives every level.
inline HashGridSpec make_hash_grid_spec(int n_levels, int n_features_per_level, int log2_hashmap_size,
                                        int base_resolution, float finest_resolution, const float aabb_min[3],
                                        const float aabb_max[3]) {
	if (n_levels < 1 || n_levels > kMaxHashLevels)
		NERF_FAIL("hash grid: n_levels must be in 1.." << kMaxHashLevels << " (got " << n_levels << ")");
	if (n_features_per_level != 1 && n_features_per_level != 2 && n_features_per_level != 4 && n_features_per_level != 8)
		NERF_FAIL("hash grid: n_features_per_level must be 1, 2, 4 or 8 (got " << n_features_per_level << ")");
	if (log2_hashmap_size < 10 || log2_hashmap_size > 24)
		NERF_FAIL("hash grid: log2_hashmap_size must be in 10..24 (got " << log2_hashmap_size << ")");
	if (base_resolution < 2) NERF_FAIL("hash grid: base_resolution must be at least 2 (got " << base_resolution << ")");
	if (!(std::isfinite(finest_resolution) && finest_resolution >= (float)base_resolution))
		NERF_FAIL("hash grid: finest_resolution must be a finite number at least base_resolution (" << base_resolution
		                                                                                           << "), got "
		                                                                                           << finest_resolution);
	// 2^24 vertices per axis keeps every resolution and dense index inside uint32 (dense levels are far
	// smaller; a hashed level never multiplies resolutions).
	if (finest_resolution > 16777216.0f)
		NERF_FAIL("hash grid: finest_resolution must be at most 2^24 (got " << finest_resolution << ")");
	const char* axis_names[3] = {"x", "y", "z"};
	for (int d = 0; d < 3; ++d) {
		if (!(std::isfinite(aabb_min[d]) && std::isfinite(aabb_max[d]) && aabb_max[d] > aabb_min[d]))
			NERF_FAIL("hash grid: the box has zero or negative extent along " << axis_names[d] << " (aabb min "
			                                                                   << aabb_min[d] << ", max " << aabb_max[d]
			                                                                   << ")");
	}
	HashGridSpec spec;
	spec.n_levels = n_levels;
	spec.n_features_per_level = n_features_per_level;
	spec.log2_hashmap_size = log2_hashmap_size;
	spec.base_resolution = base_resolution;
	for (int d = 0; d < 3; ++d) {
		spec.aabb_min[d] = aabb_min[d];
		spec.aabb_max[d] = aabb_max[d];
	}
	const double log_b = n_levels > 1 ? std::log((double)finest_resolution / (double)base_resolution) / (n_levels - 1) : 0.0;
	spec.per_level_scale = (float)std::exp(log_b);
	const uint64_t table_size = (uint64_t)1 << log2_hashmap_size;
	uint64_t offset = 0;
	for (int l = 0; l < n_levels; ++l) {
		HashGridLevel& level = spec.levels[l];
		// Rounded to float before the ceil: the resolution is then the one the float lookup reaches
		// (a double N_max - 1 of 2047.0000000000002 would otherwise give a vertex more).
		level.scale = (float)((double)base_resolution * std::exp(log_b * l) - 1.0);
		const uint64_t resolution = (uint64_t)std::ceil((double)level.scale) + 1;
		const uint64_t dense = resolution * resolution * resolution;
		const uint64_t entries = ((dense < table_size ? dense : table_size) + 7) / 8 * 8;
		level.resolution = (uint32_t)resolution;
		level.n_entries = (uint32_t)entries;
		level.offset = (uint32_t)offset;
		level.hashed = dense > table_size ? 1u : 0u;
		offset += entries;
	}
	spec.n_entries = (uint32_t)offset;  // at most 32 levels of 2^24 entries: fits
	return spec;
}

/// The point normalised into the box, each axis clamped to [0, 1]. Marching samples only inside the box,
/// so the clamp changes nothing for the field's own samples except at the far faces, where a point whose
/// (p - min) / extent rounds to just above 1 stays in the last cell instead of reading a cell beyond it.
/// NaN maps to 0 (fmaxf returns the other operand), so no point can index outside the table.
NERF_HD inline void hash_grid_normalize(float* __restrict__ unit, const float* __restrict__ point,
                                        const HashGridSpec& spec) {
	for (int d = 0; d < 3; ++d) {
		const float u = (point[d] - spec.aabb_min[d]) / (spec.aabb_max[d] - spec.aabb_min[d]);
		unit[d] = fminf(fmaxf(u, 0.0f), 1.0f);
	}
}

/// A corner's entry within its level: tiny-cuda-nn's index, then modulo n_entries. The modulo needs no
/// division here, and equals index % n_entries for every corner a lookup makes: a hashed level holds
/// exactly 2^log2_hashmap_size entries (a power of two: a mask), and a dense level's corner coordinates
/// are at most r = resolution (see the file comment), so its index is at most r + r^2 + r^3 < 2 r^3 <=
/// 2 n_entries (r >= 2): one conditional subtraction. (The tests check both against %.)
NERF_HD inline uint32_t hash_grid_level_index(uint32_t cx, uint32_t cy, uint32_t cz, const HashGridLevel& level) {
	if (level.hashed) {
		const uint32_t h = cx ^ (cy * 2654435761u) ^ (cz * 805459861u);
		return h & (level.n_entries - 1u);
	}
	const uint32_t index = cx + level.resolution * (cy + level.resolution * cz);
	return index >= level.n_entries ? index - level.n_entries : index;
}

/// One axis of a lookup: pos = x scale + 0.5, the cell below it and the fraction above the cell.
/// pos >= 0.5 (x >= 0) and pos <= 2^24 + 0.5, so truncating to int is floor and the int is exact as a
/// float; unlike floorf, the conversion vectorises on the CPU without -fno-trapping-math.
NERF_HD inline void hash_grid_axis(uint32_t& cell, float& frac, float unit, float scale) {
	const float pos = fmaf(unit, scale, 0.5f);
	const int32_t below = (int32_t)pos;
	cell = (uint32_t)below;
	frac = pos - (float)below;
}

/// Corner k's trilinear weight (corner k is cell + (k & 1, (k >> 1) & 1, (k >> 2) & 1)), multiplied in
/// the order x, y, z.
NERF_HD inline float hash_grid_weight(int k, float frac_x, float frac_y, float frac_z) {
	return (((k & 1) ? frac_x : 1.0f - frac_x) * ((k & 2) ? frac_y : 1.0f - frac_y)) * ((k & 4) ? frac_z : 1.0f - frac_z);
}

/// The 8 corners of a lookup: their entries in the whole table (level offset included) and weights.
struct HashGridCorners {
	uint32_t entry[8];
	float weight[8];
};

NERF_HD inline void hash_grid_corners(HashGridCorners& out, const float* __restrict__ unit, const HashGridLevel& level) {
	uint32_t cell[3];
	float frac[3];
	for (int d = 0; d < 3; ++d) hash_grid_axis(cell[d], frac[d], unit[d], level.scale);
	for (int k = 0; k < 8; ++k) {
		out.entry[k] = level.offset + hash_grid_level_index(cell[0] + (k & 1), cell[1] + ((k >> 1) & 1),
		                                                    cell[2] + ((k >> 2) & 1), level);
		out.weight[k] = hash_grid_weight(k, frac[0], frac[1], frac[2]);
	}
}

/// out[f] = sum over the corners k = 0..7, in order, of weight_k table[entry_k F + f] (one fmaf each).
NERF_HD inline void hash_grid_interpolate(float* __restrict__ out, const float* __restrict__ table,
                                          const HashGridCorners& corners, int n_features) {
	for (int f = 0; f < n_features; ++f) {
		float sum = 0.0f;
		for (int k = 0; k < 8; ++k) sum = fmaf(corners.weight[k], table[(size_t)corners.entry[k] * n_features + f], sum);
		out[f] = sum;
	}
}

} // namespace nerf
