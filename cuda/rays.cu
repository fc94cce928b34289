// Camera rays and target pixels for a batch of flat pixel ids (cameras[k].first_pixel + row * W_k + col).
// One thread per ray; the ray math is nerf::pixel_ray (include/nerf/math/rays.h), the same function
// the CPU backend calls: it finds the ray's image in the per-image camera table (device memory) and
// undistorts through that image's lens. No backward: rays are data.
#include "common.cuh"
#include "launchers.cuh"

namespace nerf {
namespace cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// CUDA kernels

__global__ void generate_rays_kernel(float* __restrict__ rays_o,          // [n_rays, 3]
                                     float* __restrict__ rays_d,          // [n_rays, 3]
                                     float* __restrict__ viewdirs,        // [n_rays, 3] or null
                                     const uint32_t* __restrict__ pixel_ids,  // [n_rays]
                                     size_t n_rays,
                                     CameraSet cameras) {  // poses [n_images, 3, 4], cameras [n_images]
	const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (r >= n_rays) return;
	float o[3], d[3], v[3];
	pixel_ray(o, d, v, pixel_ids[r], cameras);
	for (int k = 0; k < 3; ++k) {
		rays_o[3 * r + k] = o[k];
		rays_d[3 * r + k] = d[k];
		if (viewdirs) viewdirs[3 * r + k] = v[k];
	}
}

__global__ void gather_pixels_kernel(float* __restrict__ target,               // [n_rays, 3]
                                     const float* __restrict__ images,         // stacked [H_k, W_k, 3]
                                     const uint32_t* __restrict__ pixel_ids,   // [n_rays]
                                     size_t n_rays) {
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;  // one thread per output float
	if (i >= 3 * n_rays) return;
	const size_t r = i / 3, c = i - 3 * r;
	target[i] = images[3 * (size_t)pixel_ids[r] + c];
}

__global__ void random_background_kernel(float* __restrict__ target,             // [n_rays, 3]
                                         float* __restrict__ background,         // [n_rays, 3]
                                         const float* __restrict__ alpha,        // [pixels]
                                         const uint32_t* __restrict__ pixel_ids, // [n_rays]
                                         size_t n_rays, uint64_t seed, uint32_t step) {
	const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (r >= n_rays) return;
	random_background_target(target + 3 * r, background + 3 * r, alpha[pixel_ids[r]], seed, step, (uint32_t)r);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// kernel launchers

void generate_rays(float* rays_o, float* rays_d, float* viewdirs, const uint32_t* pixel_ids, size_t n_rays,
                   const CameraSet& cameras, cudaStream_t stream) {
	if (n_rays == 0) return;
	NERF_CHECK(rays_o && rays_d && pixel_ids && cameras.poses && cameras.cameras && cameras.n_images > 0);
	generate_rays_kernel<<<grid_for(n_rays), kBlockSize, 0, stream>>>(rays_o, rays_d, viewdirs, pixel_ids, n_rays,
	                                                                   cameras);
	NERF_CHECK_LAUNCH("generate_rays_kernel", stream);
}

void gather_pixels(float* target, const float* images, const uint32_t* pixel_ids, size_t n_rays, cudaStream_t stream) {
	if (n_rays == 0) return;
	NERF_CHECK(target && images && pixel_ids);
	gather_pixels_kernel<<<grid_for(3 * n_rays), kBlockSize, 0, stream>>>(target, images, pixel_ids, n_rays);
	NERF_CHECK_LAUNCH("gather_pixels_kernel", stream);
}

void random_background(float* target, float* background, const float* alpha, const uint32_t* pixel_ids, size_t n_rays,
                       uint64_t seed, uint32_t step, cudaStream_t stream) {
	if (n_rays == 0) return;
	NERF_CHECK(target && background && alpha && pixel_ids);
	random_background_kernel<<<grid_for(n_rays), kBlockSize, 0, stream>>>(target, background, alpha, pixel_ids, n_rays,
	                                                                       seed, step);
	NERF_CHECK_LAUNCH("random_background_kernel", stream);
}

} // namespace cuda
} // namespace nerf
