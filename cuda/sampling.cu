// Depth samples along rays: the stratified coarse samples and the inverse-CDF fine samples
// (nerf-pytorch's render_rays and sample_pdf). One thread per ray calls the shared math of
// include/nerf/math/sampling.h with the ray's global index as RNG counter, so a seed gives the same
// samples here and on the CPU. Outputs carry no gradient (the reference detaches them).
//
// resample per ray: bins = midpoints of z_coarse (n_coarse - 1 edges), weights[1:-1] (n_coarse - 2
// values), z_fine = sample_pdf(...) left as drawn, then z_all = merge(z_coarse, sort(copy of z_fine)).
// The per-ray scratch (edges, cdf, sorted copy) lives in a workspace [n_rays, 2 (n_coarse - 1) + n_fine]
// that the backend owns, so no sample count is capped by a local-memory array.
#include "common.cuh"
#include "launchers.cuh"

namespace nerf {
namespace cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// CUDA kernels

__global__ void stratified_samples_kernel(float* __restrict__ z,  // [n_rays, n_samples]
                                          size_t n_rays, int n_samples, uint32_t ray_offset, StratifiedSpec spec) {
	const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (r >= n_rays) return;
	stratified_samples(z + r * (size_t)n_samples, n_samples, ray_offset + (uint32_t)r, spec);
}

__global__ void resample_kernel(float* __restrict__ z_all,           // [n_rays, n_coarse + n_fine]
                                float* __restrict__ z_fine,          // [n_rays, n_fine]
                                float* __restrict__ scratch,         // [n_rays, 2 (n_coarse - 1) + n_fine]
                                const float* __restrict__ z_coarse,  // [n_rays, n_coarse]
                                const float* __restrict__ weights,   // [n_rays, n_coarse]
                                size_t n_rays, int n_coarse, int n_fine, uint32_t ray_offset, PdfSpec spec) {
	const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (r >= n_rays) return;
	const int n_bins = n_coarse - 1;
	float* bins = scratch + r * (size_t)(2 * n_bins + n_fine);
	float* cdf = bins + n_bins;
	float* sorted_fine = cdf + n_bins;
	const float* zc = z_coarse + r * (size_t)n_coarse;
	float* zf = z_fine + r * (size_t)n_fine;
	for (int k = 0; k < n_bins; ++k) bins[k] = 0.5f * (zc[k + 1] + zc[k]);
	sample_pdf(zf, bins, weights + r * (size_t)n_coarse + 1, n_bins, n_fine, ray_offset + (uint32_t)r, spec, cdf);
	for (int k = 0; k < n_fine; ++k) sorted_fine[k] = zf[k];
	sort_small(sorted_fine, n_fine);
	merge_sorted(z_all + r * (size_t)(n_coarse + n_fine), zc, n_coarse, sorted_fine, n_fine);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// kernel launchers

void stratified_samples(float* z, size_t n_rays, int n_samples, uint32_t ray_offset, const StratifiedSpec& spec,
                        cudaStream_t stream) {
	NERF_CHECK(n_samples >= 0);
	if (n_rays == 0 || n_samples == 0) return;
	NERF_CHECK(z);
	stratified_samples_kernel<<<grid_for(n_rays), kBlockSize, 0, stream>>>(z, n_rays, n_samples, ray_offset, spec);
	NERF_CHECK_LAUNCH("stratified_samples_kernel", stream);
}

size_t resample_scratch_floats(size_t n_rays, int n_coarse, int n_fine) {
	return n_rays * (size_t)(2 * (n_coarse - 1) + n_fine);
}

void resample(float* z_all, float* z_fine, float* scratch, const float* z_coarse, const float* weights, size_t n_rays,
              int n_coarse, int n_fine, uint32_t ray_offset, const PdfSpec& spec, cudaStream_t stream) {
	// sample_pdf needs at least one weight between the first and last sample: weights[1:-1] non-empty.
	NERF_CHECK(n_coarse >= 3 && n_fine >= 0);
	if (n_rays == 0) return;
	NERF_CHECK(z_all && z_coarse && weights && scratch && (z_fine || n_fine == 0));
	resample_kernel<<<grid_for(n_rays), kBlockSize, 0, stream>>>(z_all, z_fine, scratch, z_coarse, weights, n_rays,
	                                                             n_coarse, n_fine, ray_offset, spec);
	NERF_CHECK_LAUNCH("resample_kernel", stream);
}

} // namespace cuda
} // namespace nerf
