/// @file cuda_backend.h
/// @brief CUDA-specific extras beyond nerf::Backend: MLP variants for tests and benchmarks, and
/// diagnostics. Declared for every build; defined only when libnerfcore is built with CUDA
/// (NERF_WITH_CUDA), so callers guard their use with `#if NERF_WITH_CUDA`.
#pragma once

#include "nerf/backend.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nerf {

/// How the MLP applies bias, ReLU and their gradients.
enum class MlpEpilogue {
	Fused,    ///< cuBLASLt epilogues (RELU_AUX_BIAS / BIAS forward, DRELU_BGRAD backward) where supported
	Unfused,  ///< plain GEMMs followed by separate bias / ReLU / dReLU / bias-gradient kernels
};

/// A CUDA MLP with an explicit epilogue choice (Backend::create_mlp gives Fused).
/// `backend` must be a CUDA backend (create_cuda_backend); throws nerf::Error otherwise.
std::unique_ptr<Mlp> create_cuda_mlp(Backend& backend, const MlpLayout& layout, size_t max_batch, Precision precision,
                                     MlpEpilogue epilogue);

/// One line per planned GEMM of a CUDA MLP (shape, types, epilogue, whether it fell back to the
/// unfused path), for test logs and benchmarks. Throws nerf::Error when `mlp` is not a CUDA MLP.
std::string describe_cuda_mlp(const Mlp& mlp);

/// How many planned GEMMs of a CUDA MLP carry an epilogue fused by cuBLASLt, and how many run it as
/// separate kernels (MlpEpilogue::Unfused, or a fallback where cuBLASLt refused the fused form).
struct MlpEpilogueUse {
	int fused = 0;
	int kernels = 0;
	/// With MlpEpilogue::Fused, one "GEMM label: reason" per GEMM whose epilogue cuBLASLt refused to
	/// fuse (the attribute, the heuristic, or the launch that refused it), running as kernels instead.
	std::vector<std::string> fallbacks;
};
/// Keyed by cuBLASLt epilogue name: RELU_AUX_BIAS, BIAS (forward), DRELU_BGRAD (backward).
std::map<std::string, MlpEpilogueUse> cuda_mlp_fusion(const Mlp& mlp);

/// The fp16 dynamic loss scale of a CUDA MLP and how many backward passes it skipped for
/// non-finite gradients (waits for the stream). Scale is 1 and skipped 0 for other precisions.
struct LossScaleInfo {
	float scale = 1.0f;
	int clean_steps = 0;
	int skipped_steps = 0;
};
LossScaleInfo cuda_mlp_loss_scale(const Mlp& mlp);

/// What planning cost a CUDA MLP so far. Its GEMMs are planned once, for max_batch; a call at another
/// batch size changes the layouts' batch dimension (batch_changes) and asks the heuristic again only
/// where cuBLASLt refused every known algorithm at that size (refusals: one query each, and one more
/// where the fused form is then given up). A GEMM is planned anew (replans) only when its problem or
/// its operands' alignment differs from the plan's: pointers less aligned than a fresh allocation, or
/// a dReLU whose forward mask was not written because that forward fell back to kernels.
struct MlpPlanStats {
	size_t planned_batch = 0;
	size_t gemms = 0;           ///< GEMMs of one forward and backward
	int heuristic_queries = 0;  ///< cublasLtMatmulAlgoGetHeuristic calls, construction included
	int batch_changes = 0;
	int refusals = 0;
	int replans = 0;
};
MlpPlanStats cuda_mlp_plan_stats(const Mlp& mlp);

/// A CUDA small MLP (include/nerf/small_mlp.h) with an explicit epilogue choice (Backend::create_small_mlp
/// gives Fused: RELU_AUX forward, DRELU backward where cuBLASLt offers them). `backend` must be a CUDA
/// backend; throws nerf::Error otherwise.
std::unique_ptr<SmallMlp> create_cuda_small_mlp(Backend& backend, const SmallMlpSpec& spec, size_t max_batch,
                                                Precision precision, MlpEpilogue epilogue);
/// One line per GEMM of a CUDA small MLP: its epilogue, how often it ran fused or as kernels, and the
/// size classes planned. Throws nerf::Error when `mlp` is not a CUDA small MLP.
std::string describe_cuda_small_mlp(const SmallMlp& mlp);
/// Over all GEMMs of a CUDA small MLP that carry a ReLU epilogue: the calls it ran fused and the calls
/// that ran it as a separate kernel.
MlpEpilogueUse cuda_small_mlp_fusion(const SmallMlp& mlp);

} // namespace nerf
