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
void random_background(float* target, float* background, const float* alpha, const uint32_t* pixel_ids, size_t n_rays,
                       uint64_t seed, uint32_t step, cudaStream_t stream);

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

/// Packed compositing (occ_grid): ray r composites counts[r] samples from offsets[r] of raw [., raw_stride], t, dt.
void composite_forward_packed(const CompositeOutputs& out, const float* raw, const float* t, const float* dt,
                              const uint32_t* offsets, const uint32_t* counts, const float* rays_d, size_t n_rays,
                              uint32_t ray_offset, const CompositeSpec& spec, cudaStream_t stream);
/// dL_draw (overwrite, packed like raw); alpha_scratch: [n_samples], packed like dt.
void composite_backward_packed(float* dL_draw, float* alpha_scratch, const float* dL_drgb, const float* raw,
                               const float* dt, const uint32_t* offsets, const uint32_t* counts, const float* rays_d,
                               size_t n_rays, uint32_t ray_offset, const CompositeSpec& spec, cudaStream_t stream);

// --- encoding.cu (packed samples) ---
/// enc: [n, encoded_width(spec)] of points [n, 3].
void encode_positions(float* enc, const float* points, size_t n, const EncodingSpec& spec, cudaStream_t stream);
/// enc: [n, encoded_width(spec)], the viewdir [rays, 3] of each sample's ray sample_ray[k].
void encode_views_packed(float* enc, const float* viewdirs, const uint32_t* sample_ray, size_t n,
                         const EncodingSpec& spec, cudaStream_t stream);

// --- occupancy.cu ---
/// Bytes of scratch scan_counts needs for n counts (CUB's temporary storage).
size_t scan_counts_scratch_bytes(size_t n);
/// offsets: [n + 1] exclusive prefix sum of counts [n], offsets[n] the total; scratch: scan_counts_scratch_bytes(n).
void scan_counts(uint32_t* offsets, void* scratch, size_t scratch_bytes, const uint32_t* counts, size_t n,
                 cudaStream_t stream);
/// counts: [n_rays] kept samples per ray; rays_o, rays_d: [n_rays, 3]; occupied: [cells].
void march_count(uint32_t* counts, const float* rays_o, const float* rays_d, size_t n_rays, const uint8_t* occupied,
                 uint32_t ray_offset, const MarchSpec& spec, cudaStream_t stream);
/// out.*: packed from offsets [n_rays] (march_count + scan_counts).
void march_fill(const PackedSamples& out, const uint32_t* offsets, const float* rays_o, const float* rays_d, size_t n_rays,
                const uint8_t* occupied, uint32_t ray_offset, const MarchSpec& spec, cudaStream_t stream);
/// kept: [n_rays] early_stop_count of each packed ray.
void early_stop(uint32_t* kept, const float* raw, const float* dt, const uint32_t* offsets, const uint32_t* counts,
                const float* rays_d, size_t n_rays, int raw_stride, float min_transmittance, cudaStream_t stream);
/// out at new_offsets[r] = the first kept[r] samples of in at offsets[r].
void compact_samples(const PackedSamples& out, const PackedSamples& in, const uint32_t* new_offsets,
                     const uint32_t* kept, const uint32_t* offsets, size_t n_rays, cudaStream_t stream);
/// chosen: [cells] 0/1.
void occ_choose_cells(uint32_t* chosen, const uint8_t* occupied, const OccUpdateSpec& spec, cudaStream_t stream);
/// cells: [n], points: [n, 3] for the chosen cells, at offsets [cells] (scan_counts of chosen).
void occ_cell_points(uint32_t* cells, float* points, const uint32_t* chosen, const uint32_t* offsets,
                     const OccUpdateSpec& spec, cudaStream_t stream);
/// density[cells[i]] = occ_ema(density[cells[i]], raw[i, 3]), i < n.
void occ_update_density(float* density, const uint32_t* cells, const float* raw, size_t n, int raw_stride,
                        const OccUpdateSpec& spec, cudaStream_t stream);
/// Doubles of scratch occ_update_flags needs.
size_t occ_update_flags_scratch_doubles(const OccUpdateSpec& spec);
/// occupied: [cells] flags from density [cells] and its mean; *n_occupied: their count; scratch: doubles.
void occ_update_flags(uint8_t* occupied, uint32_t* n_occupied, double* scratch, const float* density,
                      const OccUpdateSpec& spec, cudaStream_t stream);

// --- loss.cu ---
/// Doubles of scratch mse_loss needs for its per-block partial sums.
size_t mse_loss_scratch_doubles(size_t n_rays);
/// *loss += mean((rgb - target)^2) (deterministic: fixed grid, fixed reduction order); dL_drgb (overwrite,
/// may be null): [n_rays, 3]; loss may be null.
void mse_loss(float* loss, float* dL_drgb, double* partial_scratch, const float* rgb, const float* target,
              size_t n_rays, float grad_scale, cudaStream_t stream);

// --- hash_encoding.cu (the ngp field's position encoding) ---
/// enc: [n, L F]; table: [spec.n_entries, F]; points: [n, 3].
void hash_encode(float* enc, const float* table, const float* points, size_t n, const HashGridSpec& spec,
                 cudaStream_t stream);
/// dL_dtable (+=, atomic adds): [spec.n_entries, F]; dL_denc: [n, L F]; points: [n, 3].
void hash_encode_backward(float* dL_dtable, const float* dL_denc, const float* points, size_t n,
                          const HashGridSpec& spec, cudaStream_t stream);

// --- ngp_activations.cu (the ngp field's direction encoding and density activations) ---
/// enc: rows of enc_stride, columns 0..15; viewdirs: [rays, 3]; sample_ray: [n] or null (row k: ray k).
void sh_encode(float* enc, int enc_stride, const float* viewdirs, const uint32_t* sample_ray, size_t n,
               cudaStream_t stream);
/// raw[:, 3] (rows of raw_stride), colour_in[:, 16..30] (rows of colour_in_stride; may be null) from
/// density_out: [n, 16].
void ngp_density_forward(float* raw, int raw_stride, float* colour_in, int colour_in_stride, const float* density_out,
                         size_t n, cudaStream_t stream);
/// dL_ddensity_out (overwrite): [n, 16]; dL_draw: rows of raw_stride; dL_dcolour_in: rows of colour_in_stride
/// (may be null); density_out: [n, 16].
void ngp_density_backward(float* dL_ddensity_out, const float* dL_draw, int raw_stride, const float* dL_dcolour_in,
                          int colour_in_stride, const float* density_out, size_t n, cudaStream_t stream);

// --- adam.cu ---
/// params, m, v: [n] updated in place; grads: [n].
void adam_step(float* params, float* m, float* v, const float* grads, size_t n, const AdamSpec& spec,
               AdamCounter* counter, const uint32_t* skip_flag, cudaStream_t stream);

} // namespace cuda
} // namespace nerf
