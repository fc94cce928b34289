// Ray marching through the occupancy grid and the grid's update (occ_grid), one thread per ray or
// per cell calling the shared math of include/nerf/math/occupancy.h and composite.h, the functions
// the CPU backend calls; the prefix sums that pack samples ray by ray are CUB's (integers: exact).
//
// Marching is two passes of the same march_ray: one counts each ray's samples, then, after the scan,
// one writes them at the ray's offset, so both agree on every count. The early stop and the
// compaction keep a prefix of each ray's samples. The grid update's mean EMA is summed in double with
// a fixed grid and a fixed tree order (as the loss), so it does not vary from run to run.
#include "common.cuh"
#include "launchers.cuh"

#include <cub/device/device_scan.cuh>

#include <algorithm>

namespace nerf {
namespace cuda {
namespace {

constexpr int kMeanBlock = 256;
constexpr unsigned int kMeanMaxBlocks = 1024;

// ---------------------------------------------------------------------------------------------
// CUDA kernels

__global__ void march_count_kernel(uint32_t* __restrict__ counts,        // [n_rays]
                                   const float* __restrict__ rays_o,     // [n_rays, 3]
                                   const float* __restrict__ rays_d,     // [n_rays, 3]
                                   const uint8_t* __restrict__ occupied, // [cells]
                                   size_t n_rays, uint32_t ray_offset, MarchSpec spec) {
	const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (r >= n_rays) return;
	counts[r] = march_ray(nullptr, nullptr, nullptr, rays_o + 3 * r, rays_d + 3 * r, occupied, ray_offset + (uint32_t)r, spec);
}

__global__ void march_fill_kernel(PackedSamples out,                     // [total] each
                                  const uint32_t* __restrict__ offsets,  // [n_rays]
                                  const float* __restrict__ rays_o,      // [n_rays, 3]
                                  const float* __restrict__ rays_d,      // [n_rays, 3]
                                  const uint8_t* __restrict__ occupied,  // [cells]
                                  size_t n_rays, uint32_t ray_offset, MarchSpec spec) {
	const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (r >= n_rays) return;
	const size_t first = offsets[r];
	const uint32_t count = march_ray(out.t + first, out.dt + first, out.points + 3 * first, rays_o + 3 * r, rays_d + 3 * r,
	                                 occupied, ray_offset + (uint32_t)r, spec);
	for (uint32_t k = 0; k < count; ++k) out.ray[first + k] = (uint32_t)r;
}

__global__ void early_stop_kernel(uint32_t* __restrict__ kept,           // [n_rays]
                                  const float* __restrict__ raw,         // [samples, raw_stride]
                                  const float* __restrict__ dt,          // [samples]
                                  const uint32_t* __restrict__ offsets,  // [n_rays]
                                  const uint32_t* __restrict__ counts,   // [n_rays]
                                  const float* __restrict__ rays_d,      // [n_rays, 3]
                                  size_t n_rays, int raw_stride, float min_transmittance) {
	const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (r >= n_rays) return;
	const size_t first = offsets[r];
	kept[r] = (uint32_t)early_stop_count(raw + first * raw_stride, dt + first, rays_d + 3 * r, (int)counts[r], raw_stride,
	                                     min_transmittance);
}

__global__ void compact_samples_kernel(PackedSamples out, PackedSamples in,
                                       const uint32_t* __restrict__ new_offsets,  // [n_rays]
                                       const uint32_t* __restrict__ kept,         // [n_rays]
                                       const uint32_t* __restrict__ offsets,      // [n_rays]
                                       size_t n_rays) {
	const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (r >= n_rays) return;
	const size_t from = offsets[r], to = new_offsets[r];
	for (uint32_t k = 0; k < kept[r]; ++k) {
		out.t[to + k] = in.t[from + k];
		out.dt[to + k] = in.dt[from + k];
		for (int c = 0; c < 3; ++c) out.points[3 * (to + k) + c] = in.points[3 * (from + k) + c];
		out.ray[to + k] = in.ray[from + k];
	}
}

__global__ void occ_choose_cells_kernel(uint32_t* __restrict__ chosen,         // [cells]
                                        const uint8_t* __restrict__ occupied,  // [cells]
                                        uint32_t n_cells, OccUpdateSpec spec) {
	const uint32_t c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= n_cells) return;
	chosen[c] = occ_cell_chosen(c, occupied[c] != 0, spec) ? 1u : 0u;
}

__global__ void occ_cell_points_kernel(uint32_t* __restrict__ cells,          // [n]
                                       float* __restrict__ points,            // [n, 3]
                                       const uint32_t* __restrict__ chosen,   // [cells]
                                       const uint32_t* __restrict__ offsets,  // [cells]
                                       uint32_t n_cells, OccUpdateSpec spec) {
	const uint32_t c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= n_cells || !chosen[c]) return;
	const uint32_t slot = offsets[c];
	cells[slot] = c;
	occ_cell_point(points + 3 * (size_t)slot, c, spec);
}

__global__ void occ_update_density_kernel(float* __restrict__ density,        // [cells]
                                          const uint32_t* __restrict__ cells,  // [n], distinct
                                          const float* __restrict__ raw,       // [n, raw_stride]
                                          size_t n, int raw_stride, OccUpdateSpec spec) {
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n) return;
	const uint32_t c = cells[i];
	density[c] = occ_ema(density[c], raw[i * raw_stride + 3], spec);
}

__global__ void density_partial_kernel(double* __restrict__ partials,       // [gridDim.x]
                                       const float* __restrict__ density,   // [cells]
                                       uint32_t n_cells) {
	__shared__ double shared[kMeanBlock];
	double sum = 0.0;
	for (size_t i = (size_t)blockIdx.x * kMeanBlock + threadIdx.x; i < n_cells; i += (size_t)gridDim.x * kMeanBlock)
		sum += density[i];
	const double total = block_sum<kMeanBlock>(sum, shared);
	if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

/// partials[n_partials] = the mean of the cells (summed in a fixed order by one block).
__global__ void density_mean_kernel(double* __restrict__ partials, unsigned int n_partials, uint32_t n_cells) {
	__shared__ double shared[kMeanBlock];
	double sum = 0.0;
	for (unsigned int i = threadIdx.x; i < n_partials; i += kMeanBlock) sum += partials[i];
	const double total = block_sum<kMeanBlock>(sum, shared);
	if (threadIdx.x == 0) partials[n_partials] = total / (double)n_cells;
}

__global__ void occ_flags_kernel(uint8_t* __restrict__ occupied,       // [cells]
                                 uint32_t* __restrict__ n_occupied,    // [1], zeroed before
                                 const float* __restrict__ density,    // [cells]
                                 const double* __restrict__ mean_ema,  // [1]
                                 uint32_t n_cells, OccUpdateSpec spec) {
	__shared__ uint32_t block_count;
	if (threadIdx.x == 0) block_count = 0;
	__syncthreads();
	const uint32_t c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c < n_cells) {
		const uint8_t flag = occ_flag(density[c], *mean_ema, spec);
		occupied[c] = flag;
		if (flag) atomicAdd(&block_count, 1u);
	}
	__syncthreads();
	if (threadIdx.x == 0 && block_count) atomicAdd(n_occupied, block_count);  // integer sums: order-free
}

unsigned int mean_blocks(uint32_t n_cells) { return std::min(kMeanMaxBlocks, std::max(1u, grid_for(n_cells, kMeanBlock))); }

__global__ void occ_coarse_flags_kernel(uint8_t* __restrict__ coarse, const uint8_t* __restrict__ occupied,
                                        uint32_t n_blocks, int resolution, int factor) {
	const uint32_t b = blockIdx.x * blockDim.x + threadIdx.x;
	if (b >= n_blocks) return;
	coarse[b] = occ_block_flag(b, occupied, resolution, factor);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// kernel launchers

size_t scan_counts_scratch_bytes(size_t n) {
	size_t bytes = 0;
	NERF_CUDA_CHECK(cub::DeviceScan::InclusiveSum(nullptr, bytes, (const uint32_t*)nullptr, (uint32_t*)nullptr, (int)n));
	return bytes;
}

void scan_counts(uint32_t* offsets, void* scratch, size_t scratch_bytes, const uint32_t* counts, size_t n,
                 cudaStream_t stream) {
	NERF_CHECK(offsets);
	if (n > 0x7fffffffu) NERF_FAIL("scan_counts: " << n << " counts exceed CUB's int item count");
	NERF_CUDA_CHECK(cudaMemsetAsync(offsets, 0, sizeof(uint32_t), stream));
	if (n == 0) return;
	NERF_CHECK(counts && scratch);
	// offsets[1..n] = inclusive sums, i.e. offsets[k] = sum of counts[0..k-1] with offsets[0] = 0.
	NERF_CUDA_CHECK(cub::DeviceScan::InclusiveSum(scratch, scratch_bytes, counts, offsets + 1, (int)n, stream));
}

void march_count(uint32_t* counts, const float* rays_o, const float* rays_d, size_t n_rays, const uint8_t* occupied,
                 uint32_t ray_offset, const MarchSpec& spec, cudaStream_t stream) {
	NERF_CHECK(spec.max_steps >= 0 && spec.grid.resolution > 0);
	if (n_rays == 0) return;
	NERF_CHECK(counts && rays_o && rays_d && occupied);
	march_count_kernel<<<grid_for(n_rays), kBlockSize, 0, stream>>>(counts, rays_o, rays_d, occupied, n_rays, ray_offset,
	                                                                 spec);
	NERF_CHECK_LAUNCH("march_count_kernel", stream);
}

void march_fill(const PackedSamples& out, const uint32_t* offsets, const float* rays_o, const float* rays_d, size_t n_rays,
                const uint8_t* occupied, uint32_t ray_offset, const MarchSpec& spec, cudaStream_t stream) {
	NERF_CHECK(spec.max_steps >= 0 && spec.grid.resolution > 0);
	if (n_rays == 0) return;
	NERF_CHECK(out.t && out.dt && out.points && out.ray && offsets && rays_o && rays_d && occupied);
	march_fill_kernel<<<grid_for(n_rays), kBlockSize, 0, stream>>>(out, offsets, rays_o, rays_d, occupied, n_rays,
	                                                                ray_offset, spec);
	NERF_CHECK_LAUNCH("march_fill_kernel", stream);
}

void early_stop(uint32_t* kept, const float* raw, const float* dt, const uint32_t* offsets, const uint32_t* counts,
                const float* rays_d, size_t n_rays, int raw_stride, float min_transmittance, cudaStream_t stream) {
	NERF_CHECK(raw_stride >= 4);
	if (n_rays == 0) return;
	NERF_CHECK(kept && raw && dt && offsets && counts && rays_d);
	early_stop_kernel<<<grid_for(n_rays), kBlockSize, 0, stream>>>(kept, raw, dt, offsets, counts, rays_d, n_rays,
	                                                                raw_stride, min_transmittance);
	NERF_CHECK_LAUNCH("early_stop_kernel", stream);
}

void compact_samples(const PackedSamples& out, const PackedSamples& in, const uint32_t* new_offsets,
                     const uint32_t* kept, const uint32_t* offsets, size_t n_rays, cudaStream_t stream) {
	if (n_rays == 0) return;
	NERF_CHECK(out.t && out.dt && out.points && out.ray && in.t && in.dt && in.points && in.ray);
	NERF_CHECK(new_offsets && kept && offsets);
	compact_samples_kernel<<<grid_for(n_rays), kBlockSize, 0, stream>>>(out, in, new_offsets, kept, offsets, n_rays);
	NERF_CHECK_LAUNCH("compact_samples_kernel", stream);
}

void occ_choose_cells(uint32_t* chosen, const uint8_t* occupied, const OccUpdateSpec& spec, cudaStream_t stream) {
	NERF_CHECK(chosen && occupied && spec.grid.resolution > 0);
	const uint32_t n_cells = occ_cell_count(spec.grid);
	occ_choose_cells_kernel<<<grid_for(n_cells), kBlockSize, 0, stream>>>(chosen, occupied, n_cells, spec);
	NERF_CHECK_LAUNCH("occ_choose_cells_kernel", stream);
}

void occ_cell_points(uint32_t* cells, float* points, const uint32_t* chosen, const uint32_t* offsets,
                     const OccUpdateSpec& spec, cudaStream_t stream) {
	NERF_CHECK(cells && points && chosen && offsets && spec.grid.resolution > 0);
	const uint32_t n_cells = occ_cell_count(spec.grid);
	occ_cell_points_kernel<<<grid_for(n_cells), kBlockSize, 0, stream>>>(cells, points, chosen, offsets, n_cells, spec);
	NERF_CHECK_LAUNCH("occ_cell_points_kernel", stream);
}

void occ_update_density(float* density, const uint32_t* cells, const float* raw, size_t n, int raw_stride,
                        const OccUpdateSpec& spec, cudaStream_t stream) {
	NERF_CHECK(raw_stride >= 4);
	if (n == 0) return;
	NERF_CHECK(density && cells && raw);
	occ_update_density_kernel<<<grid_for(n), kBlockSize, 0, stream>>>(density, cells, raw, n, raw_stride, spec);
	NERF_CHECK_LAUNCH("occ_update_density_kernel", stream);
}

size_t occ_update_flags_scratch_doubles(const OccUpdateSpec& spec) { return mean_blocks(occ_cell_count(spec.grid)) + 1; }

void occ_update_flags(uint8_t* occupied, uint32_t* n_occupied, double* scratch, const float* density,
                      const OccUpdateSpec& spec, cudaStream_t stream) {
	NERF_CHECK(occupied && n_occupied && scratch && density && spec.grid.resolution > 0);
	const uint32_t n_cells = occ_cell_count(spec.grid);
	const unsigned int blocks = mean_blocks(n_cells);
	density_partial_kernel<<<blocks, kMeanBlock, 0, stream>>>(scratch, density, n_cells);
	NERF_CHECK_LAUNCH("density_partial_kernel", stream);
	density_mean_kernel<<<1, kMeanBlock, 0, stream>>>(scratch, blocks, n_cells);
	NERF_CHECK_LAUNCH("density_mean_kernel", stream);
	NERF_CUDA_CHECK(cudaMemsetAsync(n_occupied, 0, sizeof(uint32_t), stream));
	occ_flags_kernel<<<grid_for(n_cells), kBlockSize, 0, stream>>>(occupied, n_occupied, density, scratch + blocks, n_cells,
	                                                                spec);
	NERF_CHECK_LAUNCH("occ_flags_kernel", stream);
}

void occ_coarse_flags(uint8_t* coarse, const uint8_t* occupied, const OccGridSpec& grid, int factor, cudaStream_t stream) {
	NERF_CHECK(coarse && occupied && factor > 0 && grid.resolution % factor == 0);
	const uint32_t n_blocks = occ_cell_count(OccGridSpec{{}, {}, grid.resolution / factor});
	occ_coarse_flags_kernel<<<grid_for(n_blocks), kBlockSize, 0, stream>>>(coarse, occupied, n_blocks, grid.resolution,
	                                                                       factor);
	NERF_CHECK_LAUNCH("occ_coarse_flags_kernel", stream);
}

} // namespace cuda
} // namespace nerf
