// Host-side launchers of the CUDA backend's stage kernels, one group per op family (one .cu each).
// Every launcher: outputs first, then const inputs, then sizes, then the stream; it checks its
// preconditions, returns early when there is nothing to do, launches on the given stream and checks
// the launch right away. All pointers are device memory. Shapes are written next to each argument.
#pragma once

#include "nerf/backend.h"

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace nerf {
namespace cuda {

// --- rays.cu ---
/// rays_o, rays_d, viewdirs (may be null): [n_rays, 3]; pixel_ids: [n_rays]; cameras: poses and per-image
/// cameras in device memory.
void generate_rays(float* rays_o, float* rays_d, float* viewdirs, const uint32_t* pixel_ids, size_t n_rays,
                   const CameraSet& cameras, cudaStream_t stream);
/// target: [n_rays, 3] from the stacked images (pixel id p at 3 p) at flat pixel ids.
void gather_pixels(float* target, const float* images, const uint32_t* pixel_ids, size_t n_rays, cudaStream_t stream);

// --- encoding.cu ---
/// enc: [n_rays * n_samples, encoded_width(spec)] of x = o + z d.
void encode_points(float* enc, const float* rays_o, const float* rays_d, const float* z, size_t n_rays, int n_samples,
                   const EncodingSpec& spec, cudaStream_t stream);
/// enc: [n_rays * n_samples, encoded_width(spec)], the ray's viewdir encoded once per sample.
void encode_views(float* enc, const float* viewdirs, size_t n_rays, int n_samples, const EncodingSpec& spec,
                  cudaStream_t stream);

// --- sampling.cu ---
/// z: [n_rays, n_samples].
void stratified_samples(float* z, size_t n_rays, int n_samples, uint32_t ray_offset, const StratifiedSpec& spec,
                        cudaStream_t stream);
/// Floats of per-ray scratch that resample needs (bin edges, cdf, sorted copy of z_fine).
size_t resample_scratch_floats(size_t n_rays, int n_coarse, int n_fine);
/// z_all: [n_rays, n_coarse + n_fine]; z_fine: [n_rays, n_fine]; z_coarse, weights: [n_rays, n_coarse];
/// scratch: resample_scratch_floats(...) floats.
void resample(float* z_all, float* z_fine, float* scratch, const float* z_coarse, const float* weights, size_t n_rays,
              int n_coarse, int n_fine, uint32_t ray_offset, const PdfSpec& spec, cudaStream_t stream);

// --- composite.cu ---
/// out.*: see CompositeOutputs; raw: [n_rays, n_samples, raw_stride]; z: [n_rays, n_samples]; rays_d: [n_rays, 3].
void composite_forward(const CompositeOutputs& out, const float* raw, const float* z, const float* rays_d, size_t n_rays,
                       int n_samples, uint32_t ray_offset, const CompositeSpec& spec, cudaStream_t stream);
/// dL_draw (overwrite): [n_rays, n_samples, raw_stride]; dL_drgb: [n_rays, 3]; alpha_scratch: [n_rays, n_samples].
void composite_backward(float* dL_draw, float* alpha_scratch, const float* dL_drgb, const float* raw, const float* z,
                        const float* rays_d, size_t n_rays, int n_samples, uint32_t ray_offset,
                        const CompositeSpec& spec, cudaStream_t stream);

// --- loss.cu ---
/// Doubles of scratch mse_loss needs for its per-block partial sums.
size_t mse_loss_scratch_doubles(size_t n_rays);
/// *loss += mean((rgb - target)^2) (deterministic: fixed grid, fixed reduction order); dL_drgb (overwrite,
/// may be null): [n_rays, 3]; loss may be null.
void mse_loss(float* loss, float* dL_drgb, double* partial_scratch, const float* rgb, const float* target,
              size_t n_rays, float grad_scale, cudaStream_t stream);

// --- adam.cu ---
/// params, m, v: [n] updated in place; grads: [n].
void adam_step(float* params, float* m, float* v, const float* grads, size_t n, const AdamSpec& spec,
               AdamCounter* counter, const uint32_t* skip_flag, cudaStream_t stream);

} // namespace cuda
} // namespace nerf
