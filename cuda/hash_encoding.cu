// Multiresolution hash encoding of the ngp field (include/nerf/math/hash_grid.h), forward and backward.
// One thread per (sample, level), the level varying fastest, so a warp writes (forward) or reads
// (backward) a contiguous range of the [n, L F] encoding. Each thread normalises its point, finds its
// level's 8 corners (hash_grid_corners) and interpolates them (hash_grid_interpolate): the functions
// the CPU backend calls, with explicit fmaf and IEEE division, so the forward is bit-identical to it.
// Backward: dL_dtable (+=) by float atomicAdd of weight * dL/denc into each corner's F entries; the
// order of the adds into a shared entry varies, so sums agree with the CPU's to rounding, not bits.
// The levels are copied into shared memory once per block: read from the kernel's parameter space with
// a different level per lane, they would be serialised across the warp.
#include "common.cuh"
#include "launchers.cuh"

namespace nerf {
namespace cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// CUDA kernels

__device__ inline void load_levels(HashGridLevel* __restrict__ levels, const HashGridSpec& spec) {
	for (int l = threadIdx.x; l < spec.n_levels; l += blockDim.x) levels[l] = spec.levels[l];
	__syncthreads();
}

template <int F>
__global__ void hash_encode_fwd_kernel(float* __restrict__ enc,          // [n, L F]
                                       const float* __restrict__ table,  // [n_entries, F]
                                       const float* __restrict__ points, // [n, 3]
                                       size_t n, HashGridSpec spec) {
	__shared__ HashGridLevel levels[kMaxHashLevels];
	load_levels(levels, spec);
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;  // sample i / L, level i % L
	if (i >= n * (size_t)spec.n_levels) return;
	const size_t sample = i / (size_t)spec.n_levels;
	const int l = (int)(i - sample * (size_t)spec.n_levels);
	float unit[3];
	hash_grid_normalize(unit, points + 3 * sample, spec);
	HashGridCorners corners;
	hash_grid_corners(corners, unit, levels[l]);
	hash_grid_interpolate(enc + i * F, table, corners, F);
}

template <int F>
__global__ void hash_encode_bwd_kernel(float* __restrict__ dL_dtable,     // [n_entries, F] (+=)
                                       const float* __restrict__ dL_denc, // [n, L F]
                                       const float* __restrict__ points,  // [n, 3]
                                       size_t n, HashGridSpec spec) {
	__shared__ HashGridLevel levels[kMaxHashLevels];
	load_levels(levels, spec);
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n * (size_t)spec.n_levels) return;
	const size_t sample = i / (size_t)spec.n_levels;
	const int l = (int)(i - sample * (size_t)spec.n_levels);
	float g[F];
	for (int f = 0; f < F; ++f) g[f] = dL_denc[i * F + f];
	float unit[3];
	hash_grid_normalize(unit, points + 3 * sample, spec);
	HashGridCorners corners;
	hash_grid_corners(corners, unit, levels[l]);
	for (int k = 0; k < 8; ++k) {
		float* dst = dL_dtable + (size_t)corners.entry[k] * F;
		for (int f = 0; f < F; ++f) atomicAdd(dst + f, corners.weight[k] * g[f]);
	}
}

/// Calls fn with the compile-time feature count; the spec's count was validated by make_hash_grid_spec.
template <typename Fn> void dispatch_features(int n_features, Fn&& fn) {
	switch (n_features) {
	case 1: fn(std::integral_constant<int, 1>{}); break;
	case 2: fn(std::integral_constant<int, 2>{}); break;
	case 4: fn(std::integral_constant<int, 4>{}); break;
	case 8: fn(std::integral_constant<int, 8>{}); break;
	default: NERF_FAIL("hash encoding: n_features_per_level " << n_features << " is not 1, 2, 4 or 8");
	}
}

void check_spec(const HashGridSpec& spec) {
	NERF_CHECK(spec.n_levels >= 1 && spec.n_levels <= kMaxHashLevels);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// kernel launchers

void hash_encode(float* enc, const float* table, const float* points, size_t n, const HashGridSpec& spec,
                 cudaStream_t stream) {
	check_spec(spec);
	if (n == 0) return;
	NERF_CHECK(enc && table && points);
	const size_t n_threads = n * (size_t)spec.n_levels;
	dispatch_features(spec.n_features_per_level, [&](auto f) {
		hash_encode_fwd_kernel<decltype(f)::value><<<grid_for(n_threads), kBlockSize, 0, stream>>>(enc, table, points, n, spec);
		NERF_CHECK_LAUNCH("hash_encode_fwd_kernel", stream);
	});
}

void hash_encode_backward(float* dL_dtable, const float* dL_denc, const float* points, size_t n,
                          const HashGridSpec& spec, cudaStream_t stream) {
	check_spec(spec);
	if (n == 0) return;
	NERF_CHECK(dL_dtable && dL_denc && points);
	const size_t n_threads = n * (size_t)spec.n_levels;
	dispatch_features(spec.n_features_per_level, [&](auto f) {
		hash_encode_bwd_kernel<decltype(f)::value><<<grid_for(n_threads), kBlockSize, 0, stream>>>(dL_dtable, dL_denc, points,
		                                                                                           n, spec);
		NERF_CHECK_LAUNCH("hash_encode_bwd_kernel", stream);
	});
}

} // namespace cuda
} // namespace nerf
