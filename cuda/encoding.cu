// Positional encoding gamma(x) of sample points and view directions (nerf-pytorch's Embedder).
// One thread per sample calls nerf::positional_encode (include/nerf/math/encoding.h), the function
// the CPU backend calls, into shared memory; the block then writes its rows [block, width] as one
// contiguous, coalesced range (a thread writing its own 63-float row directly would scatter each
// warp store over 32 rows). No backward: encoded inputs are data, never parameters.
// The packed forms (occ_grid) encode points given directly and the viewdir of each sample's ray.
#include "common.cuh"
#include "launchers.cuh"

#include <algorithm>

namespace nerf {
namespace cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// CUDA kernels

/// Copies the block's staged rows to enc; rows [first, first + count) are contiguous in enc.
__device__ inline void write_staged_rows(float* __restrict__ enc, const float* __restrict__ staged, size_t first,
                                         size_t n_total, int width) {
	__syncthreads();
	const size_t count = min((size_t)blockDim.x, n_total - first);
	const size_t n_floats = count * (size_t)width;
	float* dst = enc + first * (size_t)width;
	for (size_t j = threadIdx.x; j < n_floats; j += blockDim.x) dst[j] = staged[j];
}

__global__ void encode_points_kernel(float* __restrict__ enc,           // [n_rays * n_samples, width]
                                     const float* __restrict__ rays_o,  // [n_rays, 3]
                                     const float* __restrict__ rays_d,  // [n_rays, 3]
                                     const float* __restrict__ z,       // [n_rays, n_samples]
                                     size_t n_rays, int n_samples, EncodingSpec spec, int width) {
	extern __shared__ float staged[];  // [blockDim.x, width]
	const size_t n_total = n_rays * (size_t)n_samples;
	const size_t first = (size_t)blockIdx.x * blockDim.x;
	const size_t sample = first + threadIdx.x;
	if (sample < n_total) {
		const size_t r = sample / (size_t)n_samples;
		const float t = z[sample];
		// Same expression as the CPU backend (o + d t), and neither compiler contracts it into an FMA
		// (--fmad=false, -ffp-contract=off: CMakeLists.txt), so both round the product and the sum
		// separately and x agrees bit for bit; only the sinf / cosf of the frequency bands differ.
		const float point[3] = {rays_o[3 * r] + rays_d[3 * r] * t, rays_o[3 * r + 1] + rays_d[3 * r + 1] * t,
		                        rays_o[3 * r + 2] + rays_d[3 * r + 2] * t};
		positional_encode(staged + (size_t)threadIdx.x * width, point, spec);
	}
	write_staged_rows(enc, staged, first, n_total, width);
}

__global__ void encode_views_kernel(float* __restrict__ enc,             // [n_rays * n_samples, width]
                                    const float* __restrict__ viewdirs,  // [n_rays, 3]
                                    size_t n_rays, int n_samples, EncodingSpec spec, int width) {
	extern __shared__ float staged[];  // [blockDim.x, width]
	const size_t n_total = n_rays * (size_t)n_samples;
	const size_t first = (size_t)blockIdx.x * blockDim.x;
	const size_t sample = first + threadIdx.x;
	if (sample < n_total) {
		const size_t r = sample / (size_t)n_samples;
		positional_encode(staged + (size_t)threadIdx.x * width, viewdirs + 3 * r, spec);
	}
	write_staged_rows(enc, staged, first, n_total, width);
}

__global__ void encode_positions_kernel(float* __restrict__ enc,           // [n, width]
                                        const float* __restrict__ points,  // [n, 3]
                                        size_t n, EncodingSpec spec, int width) {
	extern __shared__ float staged[];  // [blockDim.x, width]
	const size_t first = (size_t)blockIdx.x * blockDim.x;
	const size_t i = first + threadIdx.x;
	if (i < n) positional_encode(staged + (size_t)threadIdx.x * width, points + 3 * i, spec);
	write_staged_rows(enc, staged, first, n, width);
}

__global__ void encode_views_packed_kernel(float* __restrict__ enc,                 // [n, width]
                                           const float* __restrict__ viewdirs,      // [rays, 3]
                                           const uint32_t* __restrict__ sample_ray, // [n]
                                           size_t n, EncodingSpec spec, int width) {
	extern __shared__ float staged[];  // [blockDim.x, width]
	const size_t first = (size_t)blockIdx.x * blockDim.x;
	const size_t i = first + threadIdx.x;
	if (i < n) positional_encode(staged + (size_t)threadIdx.x * width, viewdirs + 3 * (size_t)sample_ray[i], spec);
	write_staged_rows(enc, staged, first, n, width);
}

/// Threads per block so that the staging buffer fits the default 48 KiB of shared memory.
int staging_block_size(int width) {
	constexpr int kMaxShared = 48 * 1024;
	const int fit = kMaxShared / (width * (int)sizeof(float));
	const int block = std::min(256, fit / 32 * 32);
	if (block < 32) NERF_FAIL("positional encoding too wide for the CUDA kernel: " << width << " floats per sample");
	return block;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// kernel launchers

void encode_points(float* enc, const float* rays_o, const float* rays_d, const float* z, size_t n_rays, int n_samples,
                   const EncodingSpec& spec, cudaStream_t stream) {
	NERF_CHECK(n_samples >= 0 && spec.n_dims == 3);
	const size_t n_total = n_rays * (size_t)n_samples;
	if (n_total == 0) return;
	NERF_CHECK(enc && rays_o && rays_d && z);
	const int width = encoded_width(spec);
	const int block = staging_block_size(width);
	encode_points_kernel<<<grid_for(n_total, block), block, (size_t)block * width * sizeof(float), stream>>>(
		enc, rays_o, rays_d, z, n_rays, n_samples, spec, width);
	NERF_CHECK_LAUNCH("encode_points_kernel", stream);
}

void encode_views(float* enc, const float* viewdirs, size_t n_rays, int n_samples, const EncodingSpec& spec,
                  cudaStream_t stream) {
	NERF_CHECK(n_samples >= 0 && spec.n_dims == 3);
	const size_t n_total = n_rays * (size_t)n_samples;
	if (n_total == 0) return;
	NERF_CHECK(enc && viewdirs);
	const int width = encoded_width(spec);
	const int block = staging_block_size(width);
	encode_views_kernel<<<grid_for(n_total, block), block, (size_t)block * width * sizeof(float), stream>>>(
		enc, viewdirs, n_rays, n_samples, spec, width);
	NERF_CHECK_LAUNCH("encode_views_kernel", stream);
}

void encode_positions(float* enc, const float* points, size_t n, const EncodingSpec& spec, cudaStream_t stream) {
	NERF_CHECK(spec.n_dims == 3);
	if (n == 0) return;
	NERF_CHECK(enc && points);
	const int width = encoded_width(spec);
	const int block = staging_block_size(width);
	encode_positions_kernel<<<grid_for(n, block), block, (size_t)block * width * sizeof(float), stream>>>(enc, points, n,
	                                                                                                      spec, width);
	NERF_CHECK_LAUNCH("encode_positions_kernel", stream);
}

void encode_views_packed(float* enc, const float* viewdirs, const uint32_t* sample_ray, size_t n,
                         const EncodingSpec& spec, cudaStream_t stream) {
	NERF_CHECK(spec.n_dims == 3);
	if (n == 0) return;
	NERF_CHECK(enc && viewdirs && sample_ray);
	const int width = encoded_width(spec);
	const int block = staging_block_size(width);
	encode_views_packed_kernel<<<grid_for(n, block), block, (size_t)block * width * sizeof(float), stream>>>(
		enc, viewdirs, sample_ray, n, spec, width);
	NERF_CHECK_LAUNCH("encode_views_packed_kernel", stream);
}

} // namespace cuda
} // namespace nerf
