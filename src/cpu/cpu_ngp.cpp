// The CPU twins of cuda/hash_encoding.cu and cuda/ngp_activations.cu: the hash-grid field's encoding
// (forward and backward), spherical harmonics and the density activations, as loops around the shared
// math of include/nerf/math/ (hash_grid.h, spherical_harmonics.h, ngp_field.h).
//
// The hash encoding is the field's costliest stage on the CPU: 8 scattered reads of F floats per sample
// and level. Both passes walk the samples in tiles (kTile rows) and, within a tile, level by level, so
//  - the tile's rows of enc / dL_denc stay in L1 while all levels fill or read them (a level-by-level
//    sweep over the whole batch would stream every row of enc through the caches once per level);
//  - one level's corners are computed for the whole tile first, structure of arrays, in loops the
//    compiler vectorises (AVX2/AVX-512), and then read or updated row by row with scalar loads and
//    stores (a row's F floats loaded as one vector measured no faster; a scatter-add cannot be
//    vectorised where corners collide), with software prefetches a few rows ahead (prefetch_corners).
// Tiles of 64 to 512 rows measured the same within the noise of this shared machine.
// Backward: each level's entries belong to one thread (thread t of T owns levels t, t + T, ...), which
// adds its levels' contributions in sample order: the sum into every entry is the same sequence of
// float additions whatever T is, so a run is bit-identical at 1 and at 2 threads and no atomics are needed.
#include "cpu_backend.h"

#include "nerf/common.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nerf {
namespace cpu {
namespace {

// Rows per tile: 128 rows of L F = 32 floats are 16 KB of enc (L1 is 48 KB), and the tile's corners
// (8 entries + 8 weights per row, 8 KB) next to them.
constexpr size_t kTile = 128;

void check_hash_grid(const HashGridSpec& spec) {
	NERF_CHECK(spec.n_levels >= 1 && spec.n_levels <= kMaxHashLevels);
	NERF_CHECK(spec.n_features_per_level == 1 || spec.n_features_per_level == 2 || spec.n_features_per_level == 4 ||
	           spec.n_features_per_level == 8);
}

/// A tile's points normalised into the box, axis by axis: unit[d][s].
struct TileUnit {
	float unit[3][kTile];
};

void normalize_tile(TileUnit& out, const float* __restrict__ points, size_t count, const HashGridSpec& spec) {
	for (size_t s = 0; s < count; ++s) {
		float unit[3];
		hash_grid_normalize(unit, points + 3 * s, spec);
		for (int d = 0; d < 3; ++d) out.unit[d][s] = unit[d];
	}
}

/// One level's corners for a tile, corner by corner (structure of arrays): the loops over the tile's
/// rows are what the compiler vectorises. The same functions as hash_grid_corners, element by element,
/// so the same bits.
struct TileCorners {
	uint32_t entry[8][kTile];
	float weight[8][kTile];
};

void tile_corners(TileCorners& out, const TileUnit& in, size_t count, const HashGridLevel& level) {
	uint32_t cell[3][kTile];
	float frac[3][kTile];
	for (int d = 0; d < 3; ++d)
		for (size_t s = 0; s < count; ++s) hash_grid_axis(cell[d][s], frac[d][s], in.unit[d][s], level.scale);
	for (int k = 0; k < 8; ++k) {
		const uint32_t i = k & 1, j = (k >> 1) & 1, m = (k >> 2) & 1;
		for (size_t s = 0; s < count; ++s) {
			out.entry[k][s] = level.offset + hash_grid_level_index(cell[0][s] + i, cell[1][s] + j, cell[2][s] + m, level);
			out.weight[k][s] = hash_grid_weight(k, frac[0][s], frac[1][s], frac[2][s]);
		}
	}
}

// Software prefetch of the table rows that the sample kPrefetchDistance rows ahead will read (forward)
// or update (backward). Its corners are known (the whole tile's are computed first), and the hardware
// cannot guess these addresses; 16 rows ahead covers a level-15 miss to L3 at the loop's pace. Only even
// corners: corner k + 1 is the x neighbour of corner k, whose entry differs in the lowest bits (dense:
// +1; hashed: c.x ^ h with c.x + 1), so it lies in the same 64-byte line in 7 cases of 8.
// Measured on this machine (2^18 ray-ordered samples, default grid): forward 79 -> 61 ms, backward
// 137 -> 88 ms on one thread.
constexpr size_t kPrefetchDistance = 16;

template <bool kForWrite>
inline void prefetch_corners(const float* table, const TileCorners& corners, size_t s, size_t count, int n_features) {
	if (s >= count) return;
	for (int k = 0; k < 8; k += 2) __builtin_prefetch(table + (size_t)corners.entry[k][s] * n_features, kForWrite ? 1 : 0, 3);
}

template <int F>
void encode(float* enc, const float* table, const float* points, size_t n, const HashGridSpec& spec) {
	const size_t n_tiles = (n + kTile - 1) / kTile;
	const int width = spec.n_levels * F;
#pragma omp parallel if (n * spec.n_levels * 8 >= kCpuMinParallelWork)
	{
		TileUnit unit;
		TileCorners corners;
#pragma omp for schedule(static)
		for (long t = 0; t < (long)n_tiles; ++t) {
			const size_t first = (size_t)t * kTile, count = std::min(kTile, n - first);
			normalize_tile(unit, points + 3 * first, count, spec);
			float* enc_tile = enc + first * width;
			for (int l = 0; l < spec.n_levels; ++l) {
				tile_corners(corners, unit, count, spec.levels[l]);
				for (size_t s = 0; s < kPrefetchDistance; ++s) prefetch_corners<false>(table, corners, s, count, F);
				for (size_t s = 0; s < count; ++s) {
					prefetch_corners<false>(table, corners, s + kPrefetchDistance, count, F);
					// hash_grid_interpolate's sums, corner by corner in order (one fmaf each).
					float sum[F] = {};
					for (int k = 0; k < 8; ++k) {
						const float* src = table + (size_t)corners.entry[k][s] * F;
						const float w = corners.weight[k][s];
						for (int f = 0; f < F; ++f) sum[f] = fmaf(w, src[f], sum[f]);
					}
					for (int f = 0; f < F; ++f) enc_tile[s * width + l * F + f] = sum[f];
				}
			}
		}
	}
}

template <int F>
void encode_backward(float* dL_dtable, const float* dL_denc, const float* points, size_t n, const HashGridSpec& spec) {
	const int width = spec.n_levels * F;
#pragma omp parallel if (n * spec.n_levels * 8 >= kCpuMinParallelWork)
	{
#ifdef _OPENMP
		const int n_threads = omp_get_num_threads(), thread = omp_get_thread_num();
#else
		const int n_threads = 1, thread = 0;
#endif
		TileUnit unit;
		TileCorners corners;
		// Every thread walks all tiles in order (normalising costs 3 divisions a point, next to 8 L
		// scattered updates) and scatters only into the levels it owns.
		if (thread < spec.n_levels) {
			for (size_t first = 0; first < n; first += kTile) {
				const size_t count = std::min(kTile, n - first);
				normalize_tile(unit, points + 3 * first, count, spec);
				const float* g_tile = dL_denc + first * width;
				for (int l = thread; l < spec.n_levels; l += n_threads) {
					tile_corners(corners, unit, count, spec.levels[l]);
					for (size_t s = 0; s < kPrefetchDistance; ++s) prefetch_corners<true>(dL_dtable, corners, s, count, F);
					for (size_t s = 0; s < count; ++s) {
						prefetch_corners<true>(dL_dtable, corners, s + kPrefetchDistance, count, F);
						const float* g = g_tile + s * width + l * F;
						for (int k = 0; k < 8; ++k) {
							float* dst = dL_dtable + (size_t)corners.entry[k][s] * F;
							const float w = corners.weight[k][s];
							for (int f = 0; f < F; ++f) dst[f] += w * g[f];
						}
					}
				}
			}
		}
	}
}

template <typename Fn> void dispatch_features(int n_features, Fn&& fn) {
	switch (n_features) {
	case 1: fn(std::integral_constant<int, 1>{}); break;
	case 2: fn(std::integral_constant<int, 2>{}); break;
	case 4: fn(std::integral_constant<int, 4>{}); break;
	case 8: fn(std::integral_constant<int, 8>{}); break;
	default: NERF_FAIL("hash encoding: n_features_per_level " << n_features << " is not 1, 2, 4 or 8");
	}
}

} // namespace

void hash_encode(float* enc, const float* table, const float* points, size_t n, const HashGridSpec& spec) {
	check_hash_grid(spec);
	if (n == 0) return;
	NERF_CHECK(enc && table && points);
	dispatch_features(spec.n_features_per_level, [&](auto f) { encode<decltype(f)::value>(enc, table, points, n, spec); });
}

void hash_encode_backward(float* dL_dtable, const float* dL_denc, const float* points, size_t n,
                          const HashGridSpec& spec) {
	check_hash_grid(spec);
	if (n == 0) return;
	NERF_CHECK(dL_dtable && dL_denc && points);
	dispatch_features(spec.n_features_per_level,
	                  [&](auto f) { encode_backward<decltype(f)::value>(dL_dtable, dL_denc, points, n, spec); });
}

void sh_encode(float* enc, int enc_stride, const float* viewdirs, const uint32_t* sample_ray, size_t n) {
	NERF_CHECK(enc_stride >= kShDeg4Width);
	if (n == 0) return;
	NERF_CHECK(enc && viewdirs);
#pragma omp parallel for schedule(static) if (n * 32 >= kCpuMinParallelWork)
	for (long k = 0; k < (long)n; ++k) {
		const size_t ray = sample_ray ? (size_t)sample_ray[k] : (size_t)k;
		sh_encode_deg4(enc + (size_t)k * enc_stride, viewdirs + 3 * ray);
	}
}

void ngp_density_forward(float* raw, int raw_stride, float* colour_in, int colour_in_stride, const float* density_out,
                         size_t n) {
	NERF_CHECK(raw_stride >= 4 && (!colour_in || colour_in_stride >= kNgpColourInputs));
	if (n == 0) return;
	NERF_CHECK(raw && density_out);
#pragma omp parallel for schedule(static) if (n * 16 >= kCpuMinParallelWork)
	for (long k = 0; k < (long)n; ++k)
		ngp_density_row(raw + (size_t)k * raw_stride, colour_in ? colour_in + (size_t)k * colour_in_stride : nullptr,
		                density_out + (size_t)k * kNgpDensityOutputs);
}

void ngp_density_backward(float* dL_ddensity_out, const float* dL_draw, int raw_stride, const float* dL_dcolour_in,
                          int colour_in_stride, const float* density_out, size_t n) {
	NERF_CHECK(raw_stride >= 4 && (!dL_dcolour_in || colour_in_stride >= kNgpColourInputs));
	if (n == 0) return;
	NERF_CHECK(dL_ddensity_out && dL_draw && density_out);
#pragma omp parallel for schedule(static) if (n * 16 >= kCpuMinParallelWork)
	for (long k = 0; k < (long)n; ++k)
		ngp_density_row_backward(dL_ddensity_out + (size_t)k * kNgpDensityOutputs, dL_draw + (size_t)k * raw_stride,
		                         dL_dcolour_in ? dL_dcolour_in + (size_t)k * colour_in_stride : nullptr,
		                         density_out + (size_t)k * kNgpDensityOutputs);
}

} // namespace cpu
} // namespace nerf
