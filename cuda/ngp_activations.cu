// The ngp field's direction encoding and the glue between its two networks: spherical harmonics of degree
// 4 of each sample's view direction (include/nerf/math/spherical_harmonics.h: plain products and sums,
// so bit-identical to the CPU), and the density activations (include/nerf/math/ngp_field.h):
// raw[:, 3] = trunc_exp(logit) and the 15 geometry features copied into the colour network's input,
// with their backward (activation gradients: overwrite). trunc_exp is CUDA's expf, within 2 ulp of
// glibc's. One thread per row.
#include "common.cuh"
#include "launchers.cuh"

namespace nerf {
namespace cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// CUDA kernels

__global__ void sh_encode_fwd_kernel(float* __restrict__ enc,                  // [n, enc_stride], columns 0..15
                                     const float* __restrict__ viewdirs,       // [rays, 3]
                                     const uint32_t* __restrict__ sample_ray,  // [n] or null
                                     size_t n, int enc_stride) {
	const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (k >= n) return;
	const size_t ray = sample_ray ? (size_t)sample_ray[k] : k;
	float sh[kShDeg4Width];
	sh_encode_deg4(sh, viewdirs + 3 * ray);
	float* row = enc + k * (size_t)enc_stride;
	for (int c = 0; c < kShDeg4Width; ++c) row[c] = sh[c];
}

__global__ void ngp_density_fwd_kernel(float* __restrict__ raw,                // [n, raw_stride]
                                       float* __restrict__ colour_in,          // [n, colour_in_stride] or null
                                       const float* __restrict__ density_out,  // [n, 16]
                                       size_t n, int raw_stride, int colour_in_stride) {
	const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (k >= n) return;
	ngp_density_row(raw + k * (size_t)raw_stride, colour_in ? colour_in + k * (size_t)colour_in_stride : nullptr,
	                density_out + k * kNgpDensityOutputs);
}

__global__ void ngp_density_bwd_kernel(float* __restrict__ dL_ddensity_out,     // [n, 16] (overwrite)
                                       const float* __restrict__ dL_draw,       // [n, raw_stride]
                                       const float* __restrict__ dL_dcolour_in, // [n, colour_in_stride] or null
                                       const float* __restrict__ density_out,   // [n, 16]
                                       size_t n, int raw_stride, int colour_in_stride) {
	const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (k >= n) return;
	ngp_density_row_backward(dL_ddensity_out + k * kNgpDensityOutputs, dL_draw + k * (size_t)raw_stride,
	                         dL_dcolour_in ? dL_dcolour_in + k * (size_t)colour_in_stride : nullptr,
	                         density_out + k * kNgpDensityOutputs);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// kernel launchers

void sh_encode(float* enc, int enc_stride, const float* viewdirs, const uint32_t* sample_ray, size_t n,
               cudaStream_t stream) {
	NERF_CHECK(enc_stride >= kShDeg4Width);
	if (n == 0) return;
	NERF_CHECK(enc && viewdirs);
	sh_encode_fwd_kernel<<<grid_for(n), kBlockSize, 0, stream>>>(enc, viewdirs, sample_ray, n, enc_stride);
	NERF_CHECK_LAUNCH("sh_encode_fwd_kernel", stream);
}

void ngp_density_forward(float* raw, int raw_stride, float* colour_in, int colour_in_stride, const float* density_out,
                         size_t n, cudaStream_t stream) {
	NERF_CHECK(raw_stride >= 4 && (!colour_in || colour_in_stride >= kNgpColourInputs));
	if (n == 0) return;
	NERF_CHECK(raw && density_out);
	ngp_density_fwd_kernel<<<grid_for(n), kBlockSize, 0, stream>>>(raw, colour_in, density_out, n, raw_stride,
	                                                                colour_in_stride);
	NERF_CHECK_LAUNCH("ngp_density_fwd_kernel", stream);
}

void ngp_density_backward(float* dL_ddensity_out, const float* dL_draw, int raw_stride, const float* dL_dcolour_in,
                          int colour_in_stride, const float* density_out, size_t n, cudaStream_t stream) {
	NERF_CHECK(raw_stride >= 4 && (!dL_dcolour_in || colour_in_stride >= kNgpColourInputs));
	if (n == 0) return;
	NERF_CHECK(dL_ddensity_out && dL_draw && density_out);
	ngp_density_bwd_kernel<<<grid_for(n), kBlockSize, 0, stream>>>(dL_ddensity_out, dL_draw, dL_dcolour_in, density_out,
	                                                                n, raw_stride, colour_in_stride);
	NERF_CHECK_LAUNCH("ngp_density_bwd_kernel", stream);
}

} // namespace cuda
} // namespace nerf
