// Internal: what the CUDA backend object hands to its MLPs.
#pragma once

#include "nerf/backend.h"
#include "nerf/cuda_backend.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <memory>

namespace nerf {
namespace cuda {

/// The backend's stream and cuBLASLt handle; MLP memory is allocated through `backend` so that it is
/// counted in current_bytes / peak_bytes. Lives as long as the backend, which outlives its MLPs.
struct MlpContext {
	Backend* backend = nullptr;
	cudaStream_t stream = nullptr;
	cublasLtHandle_t lt = nullptr;
};

std::unique_ptr<Mlp> make_mlp(const MlpContext& ctx, const MlpLayout& layout, size_t max_batch, Precision precision,
                              MlpEpilogue epilogue);

} // namespace cuda
} // namespace nerf
