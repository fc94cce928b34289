// Internal: pieces of the CPU backend shared between its files.
#pragma once

#include "nerf/backend.h"

namespace nerf {

// Below this many per-element operations a parallel region costs more than it saves (fork/join is
// microseconds; on a shared machine a descheduled thread turns it into milliseconds).
constexpr size_t kCpuMinParallelWork = 1 << 15;

std::unique_ptr<Mlp> make_cpu_mlp(const MlpLayout& layout, size_t max_batch);
/// The small MLP with the default way of feeding backward (cpu_small_mlp.cpp).
std::unique_ptr<SmallMlp> create_cpu_small_mlp(const SmallMlpSpec& spec, size_t max_batch);

namespace cpu {

// The hash-grid field's stages (cpu_ngp.cpp), with the Backend methods' contracts.
void hash_encode(float* enc, const float* table, const float* points, size_t n, const HashGridSpec& spec);
void hash_encode_backward(float* dL_dtable, const float* dL_denc, const float* points, size_t n,
                          const HashGridSpec& spec);
void sh_encode(float* enc, int enc_stride, const float* viewdirs, const uint32_t* sample_ray, size_t n);
void ngp_density_forward(float* raw, int raw_stride, float* colour_in, int colour_in_stride, const float* density_out,
                         size_t n);
void ngp_density_backward(float* dL_ddensity_out, const float* dL_draw, int raw_stride, const float* dL_dcolour_in,
                          int colour_in_stride, const float* density_out, size_t n);

} // namespace cpu
} // namespace nerf
