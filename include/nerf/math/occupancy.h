// The occupancy grid and ray marching of occ_grid mode (after nerfacc's OccGridEstimator).
//
// Grid: resolution^3 cells over an axis-aligned box, flat index (ix R + iy) R + iz. Per cell a
// density EMA and an occupied flag. An update evaluates the network's density sigma at one jittered
// point in each chosen cell and sets
//   ema = max(decay ema, relu(sigma) step_size)     (decay 0.95: an opacity estimate of one step)
//   occupied = ema > min(threshold, mean(ema over all cells))
// with one exception: while every EMA is 0 (a network whose density is 0 everywhere, e.g. a fresh
// ReLU network whose sigma is negative everywhere) every cell stays occupied, because a grid with no
// occupied cell gives no samples and hence no gradient that could ever change it.
// Chosen cells: all during the warmup; afterwards every occupied cell plus each other cell with
// probability 1/4 (nerfacc draws a quarter of the cells at random), a draw keyed by (seed, step, cell).
//
// Marching: along a ray o + t d, the step points t_k = t_begin + (k + u) dt with dt = step_size / |d|
// (so samples are step_size apart in world units), for t_k < t_end, where [t_begin, t_end] is
// [near, far] clipped to the box; u = 1/2 (the middle of each step) or, in training, one uniform draw
// per ray. The points whose cell is occupied are kept, in order, each standing for an interval dt.
// At most max_steps points are tested, which bounds the loop even where t_begin + k dt no longer moves
// in float, and bounds every ray's count.
#pragma once

#include "nerf/common.h"
#include "nerf/math/rays.h"
#include "nerf/math/rng.h"

#include <cmath>
#include <cstdint>

namespace nerf {

struct OccGridSpec {
	float aabb_min[3] = {-1.5f, -1.5f, -1.5f};
	float aabb_max[3] = {1.5f, 1.5f, 1.5f};
	int resolution = 128;
};

NERF_HD inline uint32_t occ_cell_count(const OccGridSpec& g) {
	return (uint32_t)g.resolution * (uint32_t)g.resolution * (uint32_t)g.resolution;
}

/// Flat index of the cell holding x, or -1 when x is outside the box (or not finite).
NERF_HD inline int32_t occ_cell_of(const float* __restrict__ x, const OccGridSpec& g) {
	int32_t index = 0;
	for (int d = 0; d < 3; ++d) {
		const float u = (x[d] - g.aabb_min[d]) / (g.aabb_max[d] - g.aabb_min[d]);
		if (!(u >= 0.0f && u < 1.0f)) return -1;  // also NaN
		int32_t i = (int32_t)(u * (float)g.resolution);
		if (i >= g.resolution) i = g.resolution - 1;  // u just below 1 may round up to R
		index = index * g.resolution + i;
	}
	return index;
}

/// The ray's parameter interval inside the box (slab test), false when it misses the box.
NERF_HD inline bool ray_box_interval(float* t_enter, float* t_exit, const float* __restrict__ o, const float* __restrict__ d,
                                     const OccGridSpec& g) {
	float t0 = -INFINITY, t1 = INFINITY;
	for (int k = 0; k < 3; ++k) {
		if (d[k] != 0.0f) {
			const float ta = (g.aabb_min[k] - o[k]) / d[k], tb = (g.aabb_max[k] - o[k]) / d[k];
			t0 = fmaxf(t0, fminf(ta, tb));
			t1 = fminf(t1, fmaxf(ta, tb));
		} else if (!(o[k] >= g.aabb_min[k] && o[k] <= g.aabb_max[k])) {
			return false;  // parallel to this slab and outside it
		}
	}
	*t_enter = t0;
	*t_exit = t1;
	return t0 <= t1;
}

/// The ray parameter at which o + t d leaves the cell `cell` (the flat index of occ_cell_of), going
/// along d: the nearest of the cell's far faces on each axis (+inf when d is 0 on every axis).
NERF_HD inline float occ_cell_exit(int32_t cell, const float* __restrict__ o, const float* __restrict__ d,
                                   const OccGridSpec& g) {
	const int32_t R = g.resolution;
	const int32_t index[3] = {cell / (R * R), (cell / R) % R, cell % R};
	float t_leave = INFINITY;
	for (int a = 0; a < 3; ++a) {
		if (d[a] == 0.0f) continue;
		const float size = (g.aabb_max[a] - g.aabb_min[a]) / (float)R;
		const float face = g.aabb_min[a] + (float)(index[a] + (d[a] > 0.0f ? 1 : 0)) * size;
		const float t = (face - o[a]) / d[a];
		t_leave = t < t_leave ? t : t_leave;  // not fminf: GCC calls libm's for it, and this runs per block
	}
	return t_leave;
}

struct MarchSpec {
	OccGridSpec grid;
	float near = 0.0f, far = 1.0f;
	float step_size = 0.0f;  ///< world distance between samples
	int max_steps = 0;       ///< step points tested per ray at most (>= box diagonal / step_size + 1)
	bool perturb = false;    ///< jitter each ray's first sample within its step (training)
	uint64_t seed = 0;
	uint32_t step = 0;
	/// Optional: the grid's blocks of coarse_factor^3 cells, [(resolution / coarse_factor)^3] flags in
	/// backend memory, 1 where any cell of the block is occupied (occ_block_flag); marching jumps over
	/// empty blocks. Null: every step point is tested. The points kept are the same either way.
	const uint8_t* coarse_occupied = nullptr;
	int coarse_factor = 0;
};

/// The block edge a grid's coarse flags use: 4 cells when the resolution allows it, else none (0). On
/// lego's trained 128^3 grid (4% of cells occupied) 10% of the 4^3 blocks hold an occupied cell and
/// 26% of the 8^3 ones: small blocks leave less to step through, and cost more jumps only in empty space.
NERF_HD inline int occ_coarse_factor(int resolution) { return resolution % 4 == 0 && resolution >= 8 ? 4 : 0; }

/// Block b's flag: 1 when any of its factor^3 cells is occupied (blocks indexed as cells, on a grid of
/// resolution / factor).
NERF_HD inline uint8_t occ_block_flag(uint32_t block, const uint8_t* __restrict__ occupied, int resolution, int factor) {
	const uint32_t B = (uint32_t)(resolution / factor), R = (uint32_t)resolution;
	const uint32_t bx = block / (B * B), by = (block / B) % B, bz = block % B;
	for (int i = 0; i < factor; ++i)
		for (int j = 0; j < factor; ++j) {
			const uint8_t* row = occupied + ((bx * factor + i) * R + (by * factor + j)) * R + bz * factor;
			for (int k = 0; k < factor; ++k)
				if (row[k]) return 1;
		}
	return 0;
}

/// A marched sample's point o + t d: the same expression as the dense encoding's point.
NERF_HD inline void march_point(float* __restrict__ x, const float* __restrict__ o, const float* __restrict__ d, float t) {
	for (int c = 0; c < 3; ++c) x[c] = o[c] + d[c] * t;
}

/// Marches one ray (`ray`: its global index, the jitter's counter) through the grid's occupied flags
/// [cells]. Writes the kept samples' depths t, intervals dt and points x = o + t d ([count, 3]) when
/// those pointers are not null (null: only count). Returns the count, at most spec.max_steps.
NERF_HD inline uint32_t march_ray(float* __restrict__ t_out, float* __restrict__ dt_out, float* __restrict__ points_out,
                                  const float* __restrict__ o, const float* __restrict__ d,
                                  const uint8_t* __restrict__ occupied, uint32_t ray, const MarchSpec& spec) {
	float t_enter, t_exit;
	if (!ray_box_interval(&t_enter, &t_exit, o, d, spec.grid)) return 0;
	const float t_begin = fmaxf(spec.near, t_enter), t_end = fminf(spec.far, t_exit);
	const float dt = spec.step_size / norm3(d);
	if (!(t_begin < t_end) || !(dt > 0.0f)) return 0;
	const float u = spec.perturb ? random_uniform(spec.seed, spec.step, ray, 0, RngStream::MarchJitter) : 0.5f;
	OccGridSpec blocks = spec.grid;
	if (spec.coarse_occupied) blocks.resolution = spec.grid.resolution / spec.coarse_factor;
	int32_t jumped_block = -1;
	uint32_t count = 0;
	for (int k = 0; k < spec.max_steps; ++k) {
		const float t = t_begin + ((float)k + u) * dt;
		if (!(t < t_end)) break;
		float x[3];
		march_point(x, o, d, t);
		if (spec.coarse_occupied) {
			// Most of a trained grid is empty: in a block of cells none of which is occupied, jump to the
			// last step point before the ray leaves the block instead of testing each; that point is
			// tested, so rounding at the exit never skips a point of the next block.
			const int32_t block = occ_cell_of(x, blocks);
			if (block >= 0 && !spec.coarse_occupied[block]) {
				if (block != jumped_block) {  // the point it landed on is still in the block: no second jump
					const float k_leave = ceilf((occ_cell_exit(block, o, d, blocks) - t_begin) / dt - u) - 1.0f;
					if (k_leave > (float)(k + 1)) k = (int)fminf(k_leave, (float)spec.max_steps) - 1;  // the loop adds 1
					jumped_block = block;
				}
				continue;
			}
		}
		const int32_t cell = occ_cell_of(x, spec.grid);
		if (cell < 0 || !occupied[cell]) continue;
		if (t_out) {
			t_out[count] = t;
			dt_out[count] = dt;
			for (int c = 0; c < 3; ++c) points_out[3 * count + c] = x[c];
		}
		++count;
	}
	return count;
}

struct OccUpdateSpec {
	OccGridSpec grid;
	float decay = 0.95f;
	float threshold = 0.01f;  ///< occ_threshold
	float step_size = 0.0f;   ///< the marching step: the EMA holds relu(sigma) step_size
	bool all_cells = false;   ///< the warmup: every cell is evaluated
	uint64_t seed = 0;
	uint32_t step = 0;
};

/// Whether an update evaluates this cell.
NERF_HD inline bool occ_cell_chosen(uint32_t cell, bool occupied, const OccUpdateSpec& spec) {
	return spec.all_cells || occupied || random_uniform(spec.seed, spec.step, cell, 0, RngStream::OccGridChoice) < 0.25f;
}

/// The update's point in a cell: its corner plus a uniform jitter over the cell, per axis.
NERF_HD inline void occ_cell_point(float* __restrict__ x, uint32_t cell, const OccUpdateSpec& spec) {
	const uint32_t R = (uint32_t)spec.grid.resolution;
	const uint32_t index[3] = {cell / (R * R), (cell / R) % R, cell % R};
	const Philox4 bits = random_bits(spec.seed, spec.step, cell, 0, RngStream::OccGridJitter);
	for (int d = 0; d < 3; ++d) {
		const float size = (spec.grid.aabb_max[d] - spec.grid.aabb_min[d]) / (float)R;
		x[d] = spec.grid.aabb_min[d] + ((float)index[d] + bits_to_uniform(bits.v[d])) * size;
	}
}

/// The EMA after an evaluation with raw density output sigma (before the relu).
NERF_HD inline float occ_ema(float ema, float sigma, const OccUpdateSpec& spec) {
	return fmaxf(spec.decay * ema, fmaxf(sigma, 0.0f) * spec.step_size);
}

/// The occupied flag of a cell given the grid's mean EMA.
NERF_HD inline uint8_t occ_flag(float ema, double mean_ema, const OccUpdateSpec& spec) {
	if (!(mean_ema > 0.0)) return 1;  // nothing seen yet: see the header comment
	const float limit = fminf(spec.threshold, (float)mean_ema);
	return ema > limit ? 1 : 0;
}

} // namespace nerf
