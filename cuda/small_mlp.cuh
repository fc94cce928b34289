// Internal: the CUDA backend's small MLPs (small_mlp.cu), made by the backend object (backend.cu).
#pragma once

#include "mlp.cuh"

#include "nerf/cuda_backend.h"
#include "nerf/small_mlp.h"

#include <memory>

namespace nerf {
namespace cuda {

std::unique_ptr<SmallMlp> make_small_mlp(const MlpContext& ctx, const SmallMlpSpec& spec, size_t max_batch,
                                         Precision precision, MlpEpilogue epilogue);

} // namespace cuda
} // namespace nerf
