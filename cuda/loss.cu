// The photometric loss: mean squared error over [n_rays, 3] and its gradient.
//   loss += sum (rgb - target)^2 / (3 n_rays);  dL_drgb = 2 (rgb - target) / (3 n_rays) * grad_scale
// The sum is deterministic: the grid depends only on n_rays (never on the device), each thread sums
// a fixed strided set in double, blocks reduce in a fixed tree order into per-block partials, and
// one block sums the partials in a fixed order and adds the mean to the device scalar *loss.
// The per-element gradient is the same float expression as the CPU backend's.
#include "common.cuh"
#include "launchers.cuh"

#include <algorithm>

namespace nerf {
namespace cuda {
namespace {

constexpr int kLossBlock = 256;
constexpr unsigned int kLossMaxBlocks = 512;
constexpr int kFinalBlock = 512;

// ---------------------------------------------------------------------------------------------
// CUDA kernels

/// Per-element loss term and gradient; kept next to the kernel as the loss has no shared-math header.
/// Divides by n (not multiplies by 1/n) as the CPU backend does, so the gradient is bit-identical.
__device__ inline double squared_error(float* __restrict__ dL_dx, float x, float target, float n_float, float grad_scale) {
	const float diff = x - target;
	if (dL_dx) *dL_dx = 2.0f * diff / n_float * grad_scale;
	return (double)diff * (double)diff;
}

__global__ void mse_partial_kernel(double* __restrict__ partials,   // [gridDim.x]
                                   float* __restrict__ dL_drgb,     // [n] or null
                                   const float* __restrict__ rgb,   // [n]
                                   const float* __restrict__ target,  // [n]
                                   size_t n, float n_float, float grad_scale) {
	__shared__ double shared[kLossBlock];
	double sum = 0.0;
	for (size_t i = (size_t)blockIdx.x * kLossBlock + threadIdx.x; i < n; i += (size_t)gridDim.x * kLossBlock)
		sum += squared_error(dL_drgb ? dL_drgb + i : nullptr, rgb[i], target[i], n_float, grad_scale);
	const double block_total = block_sum<kLossBlock>(sum, shared);
	if (threadIdx.x == 0) partials[blockIdx.x] = block_total;
}

__global__ void mse_finalize_kernel(float* __restrict__ loss, const double* __restrict__ partials, unsigned int n_partials,
                                    size_t n) {
	__shared__ double shared[kFinalBlock];
	double sum = 0.0;
	for (unsigned int i = threadIdx.x; i < n_partials; i += kFinalBlock) sum += partials[i];
	const double total = block_sum<kFinalBlock>(sum, shared);
	if (threadIdx.x == 0) *loss += (float)(total / (double)n);
}

unsigned int loss_blocks(size_t n_rays) {
	return std::min(kLossMaxBlocks, std::max(1u, grid_for(3 * n_rays, kLossBlock)));
}

} // namespace

// ---------------------------------------------------------------------------------------------
// kernel launchers

size_t mse_loss_scratch_doubles(size_t n_rays) { return loss_blocks(n_rays); }

void mse_loss(float* loss, float* dL_drgb, double* partial_scratch, const float* rgb, const float* target,
              size_t n_rays, float grad_scale, cudaStream_t stream) {
	if (n_rays == 0 || (!loss && !dL_drgb)) return;
	NERF_CHECK(rgb && target && partial_scratch);
	const size_t n = 3 * n_rays;
	const unsigned int blocks = loss_blocks(n_rays);
	mse_partial_kernel<<<blocks, kLossBlock, 0, stream>>>(partial_scratch, dL_drgb, rgb, target, n, (float)n, grad_scale);
	NERF_CHECK_LAUNCH("mse_partial_kernel", stream);
	if (!loss) return;
	mse_finalize_kernel<<<1, kFinalBlock, 0, stream>>>(loss, partial_scratch, blocks, n);
	NERF_CHECK_LAUNCH("mse_finalize_kernel", stream);
}

} // namespace cuda
} // namespace nerf
