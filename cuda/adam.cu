// Adam (torch.optim.Adam, no weight decay) over the whole flat parameter buffer in one kernel:
// one thread per parameter calls nerf::adam_update (include/nerf/math/optim.h) with the
// host-prepared bias corrections (adam_prepare), so CPU and GPU apply the same rounded constants.
#include "common.cuh"
#include "launchers.cuh"

namespace nerf {
namespace cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// CUDA kernels

__global__ void adam_step_kernel(float* __restrict__ params,       // [n]
                                 float* __restrict__ m,            // [n]
                                 float* __restrict__ v,            // [n]
                                 const float* __restrict__ grads,  // [n]
                                 size_t n, AdamSpec spec) {
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n) return;
	adam_update(params + i, m + i, v + i, grads[i], spec);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// kernel launchers

void adam_step(float* params, float* m, float* v, const float* grads, size_t n, const AdamSpec& spec,
               cudaStream_t stream) {
	if (n == 0) return;
	NERF_CHECK(params && m && v && grads);
	NERF_CHECK(spec.step >= 1);
	// adam_prepare fills step_size; a zero here means the caller forgot it and nothing would move.
	NERF_CHECK(spec.step_size != 0.0f || spec.lr == 0.0f);
	adam_step_kernel<<<grid_for(n), kBlockSize, 0, stream>>>(params, m, v, grads, n, spec);
	NERF_CHECK_LAUNCH("adam_step_kernel", stream);
}

} // namespace cuda
} // namespace nerf
