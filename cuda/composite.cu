// Volume compositing (nerf-pytorch's raw2outputs) and its backward, one thread per ray calling
// nerf::composite_ray / nerf::composite_ray_backward (include/nerf/math/composite.h), the functions
// the CPU backend calls. The raw noise is drawn from the counter-based RNG keyed by
// (seed, step, ray_offset + ray, sample), so forward and backward, CPU and GPU, see the same noise.
// Forward saves nothing: backward recomputes alpha and transmittance from (raw, z, seed).
// Gradient contract: dL_draw is overwritten (every channel of every sample, unused ones with 0).
// The backward's per-ray alpha scratch is a workspace [n_rays, n_samples] owned by the backend.
// The packed form (occ_grid) is the same per ray, with each ray's samples at its offset and count
// (include/nerf/math/composite.h: composite_ray_packed); its scratch is packed like the samples.
#include "common.cuh"
#include "launchers.cuh"

namespace nerf {
namespace cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// CUDA kernels

__global__ void composite_fwd_kernel(CompositeOutputs out,
                                     const float* __restrict__ raw,     // [n_rays, n_samples, raw_stride]
                                     const float* __restrict__ z,       // [n_rays, n_samples]
                                     const float* __restrict__ rays_d,  // [n_rays, 3]
                                     size_t n_rays, int n_samples, uint32_t ray_offset, CompositeSpec spec) {
	const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (r >= n_rays) return;
	const size_t first = r * (size_t)n_samples;
	const RayOutputs ray = composite_ray(out.weights ? out.weights + first : nullptr, raw + first * spec.raw_stride,
	                                     z + first, rays_d + 3 * r, n_samples, ray_offset + (uint32_t)r, spec);
	store_ray_outputs(out.rgb, out.depth, out.disp, out.acc, ray, r);
}

__global__ void composite_bwd_kernel(float* __restrict__ dL_draw,        // [n_rays, n_samples, raw_stride]
                                     float* __restrict__ alpha_scratch,  // [n_rays, n_samples]
                                     const float* __restrict__ dL_drgb,  // [n_rays, 3]
                                     const float* __restrict__ raw,      // [n_rays, n_samples, raw_stride]
                                     const float* __restrict__ z,        // [n_rays, n_samples]
                                     const float* __restrict__ rays_d,   // [n_rays, 3]
                                     size_t n_rays, int n_samples, uint32_t ray_offset, CompositeSpec spec) {
	const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (r >= n_rays) return;
	const size_t first = r * (size_t)n_samples;
	composite_ray_backward(dL_draw + first * spec.raw_stride, dL_drgb + 3 * r, raw + first * spec.raw_stride, z + first,
	                       rays_d + 3 * r, n_samples, ray_offset + (uint32_t)r, spec, alpha_scratch + first);
}

__global__ void composite_packed_fwd_kernel(CompositeOutputs out,
                                            const float* __restrict__ raw,        // [n_samples, raw_stride]
                                            const float* __restrict__ t,          // [n_samples]
                                            const float* __restrict__ dt,         // [n_samples]
                                            const uint32_t* __restrict__ offsets, // [n_rays]
                                            const uint32_t* __restrict__ counts,  // [n_rays]
                                            const float* __restrict__ rays_d,     // [n_rays, 3]
                                            size_t n_rays, uint32_t ray_offset, CompositeSpec spec) {
	const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (r >= n_rays) return;
	const size_t first = offsets[r];
	const RayOutputs ray = composite_ray_packed(out.weights ? out.weights + first : nullptr, raw + first * spec.raw_stride,
	                                            t + first, dt + first, rays_d + 3 * r, (int)counts[r],
	                                            ray_offset + (uint32_t)r, spec, ray_background(spec, r));
	store_ray_outputs(out.rgb, out.depth, out.disp, out.acc, ray, r);
}

__global__ void composite_packed_bwd_kernel(float* __restrict__ dL_draw,         // [n_samples, raw_stride]
                                            float* __restrict__ alpha_scratch,   // [n_samples]
                                            const float* __restrict__ dL_drgb,   // [n_rays, 3]
                                            const float* __restrict__ raw,       // [n_samples, raw_stride]
                                            const float* __restrict__ dt,        // [n_samples]
                                            const uint32_t* __restrict__ offsets,  // [n_rays]
                                            const uint32_t* __restrict__ counts,   // [n_rays]
                                            const float* __restrict__ rays_d,    // [n_rays, 3]
                                            size_t n_rays, uint32_t ray_offset, CompositeSpec spec) {
	const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (r >= n_rays) return;
	const size_t first = offsets[r];
	composite_ray_packed_backward(dL_draw + first * spec.raw_stride, dL_drgb + 3 * r, raw + first * spec.raw_stride,
	                              dt + first, rays_d + 3 * r, (int)counts[r], ray_offset + (uint32_t)r, spec,
	                              alpha_scratch + first, ray_background(spec, r));
}

} // namespace

// ---------------------------------------------------------------------------------------------
// kernel launchers

void composite_forward(const CompositeOutputs& out, const float* raw, const float* z, const float* rays_d, size_t n_rays,
                       int n_samples, uint32_t ray_offset, const CompositeSpec& spec, cudaStream_t stream) {
	NERF_CHECK(n_samples > 0 && spec.raw_stride >= 4);
	if (n_rays == 0) return;
	NERF_CHECK(raw && z && rays_d);
	composite_fwd_kernel<<<grid_for(n_rays), kBlockSize, 0, stream>>>(out, raw, z, rays_d, n_rays, n_samples, ray_offset,
	                                                                   spec);
	NERF_CHECK_LAUNCH("composite_fwd_kernel", stream);
}

void composite_backward(float* dL_draw, float* alpha_scratch, const float* dL_drgb, const float* raw, const float* z,
                        const float* rays_d, size_t n_rays, int n_samples, uint32_t ray_offset,
                        const CompositeSpec& spec, cudaStream_t stream) {
	NERF_CHECK(n_samples > 0 && spec.raw_stride >= 4);
	if (n_rays == 0) return;
	NERF_CHECK(dL_draw && alpha_scratch && dL_drgb && raw && z && rays_d);
	composite_bwd_kernel<<<grid_for(n_rays), kBlockSize, 0, stream>>>(dL_draw, alpha_scratch, dL_drgb, raw, z, rays_d,
	                                                                   n_rays, n_samples, ray_offset, spec);
	NERF_CHECK_LAUNCH("composite_bwd_kernel", stream);
}

void composite_forward_packed(const CompositeOutputs& out, const float* raw, const float* t, const float* dt,
                              const uint32_t* offsets, const uint32_t* counts, const float* rays_d, size_t n_rays,
                              uint32_t ray_offset, const CompositeSpec& spec, cudaStream_t stream) {
	NERF_CHECK(spec.raw_stride >= 4);
	if (n_rays == 0) return;
	NERF_CHECK(raw && t && dt && offsets && counts && rays_d);
	composite_packed_fwd_kernel<<<grid_for(n_rays), kBlockSize, 0, stream>>>(out, raw, t, dt, offsets, counts, rays_d,
	                                                                          n_rays, ray_offset, spec);
	NERF_CHECK_LAUNCH("composite_packed_fwd_kernel", stream);
}

void composite_backward_packed(float* dL_draw, float* alpha_scratch, const float* dL_drgb, const float* raw,
                               const float* dt, const uint32_t* offsets, const uint32_t* counts, const float* rays_d,
                               size_t n_rays, uint32_t ray_offset, const CompositeSpec& spec, cudaStream_t stream) {
	NERF_CHECK(spec.raw_stride >= 4);
	if (n_rays == 0) return;
	NERF_CHECK(dL_draw && alpha_scratch && dL_drgb && raw && dt && offsets && counts && rays_d);
	composite_packed_bwd_kernel<<<grid_for(n_rays), kBlockSize, 0, stream>>>(dL_draw, alpha_scratch, dL_drgb, raw, dt,
	                                                                          offsets, counts, rays_d, n_rays, ray_offset,
	                                                                          spec);
	NERF_CHECK_LAUNCH("composite_packed_bwd_kernel", stream);
}

} // namespace cuda
} // namespace nerf
