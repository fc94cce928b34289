// Adam (torch.optim.Adam; with AdamSpec's L2 weight decay and tiny-cuda-nn's skip of zero gradients,
// both inside nerf::adam_update) over one network's slice of the flat parameter buffer:
// a one-thread kernel decides whether the step is skipped (the network's fp16 overflow flag, set on
// the device) and computes the bias corrections from the device-side step count (adam_begin_step);
// then one thread per parameter calls nerf::adam_update. Both are the shared math of
// include/nerf/math/optim.h, so CPU and GPU agree bit for bit, and a skipped step costs no host sync.
#include "common.cuh"
#include "launchers.cuh"

namespace nerf {
namespace cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// CUDA kernels

__global__ void adam_begin_step_kernel(AdamCounter* __restrict__ counter, const uint32_t* __restrict__ skip_flag,
                                       AdamSpec spec) {
	adam_begin_step(counter, spec, skip_flag);
}

__global__ void adam_step_kernel(float* __restrict__ params,              // [n]
                                 float* __restrict__ m,                   // [n]
                                 float* __restrict__ v,                   // [n]
                                 const float* __restrict__ grads,         // [n]
                                 const AdamCounter* __restrict__ counter,  // written by adam_begin_step_kernel
                                 size_t n, AdamSpec spec) {
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n || counter->skip_current) return;
	adam_update(params + i, m + i, v + i, grads[i], spec, counter->current);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// kernel launchers

void adam_step(float* params, float* m, float* v, const float* grads, size_t n, const AdamSpec& spec,
               AdamCounter* counter, const uint32_t* skip_flag, cudaStream_t stream) {
	NERF_CHECK(counter);
	adam_begin_step_kernel<<<1, 1, 0, stream>>>(counter, skip_flag, spec);
	NERF_CHECK_LAUNCH("adam_begin_step_kernel", stream);
	if (n == 0) return;
	NERF_CHECK(params && m && v && grads);
	adam_step_kernel<<<grid_for(n), kBlockSize, 0, stream>>>(params, m, v, grads, counter, n, spec);
	NERF_CHECK_LAUNCH("adam_step_kernel", stream);
}

} // namespace cuda
} // namespace nerf
