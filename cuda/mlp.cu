// The NeRF MLP (nerf-pytorch's NeRF module, layout in include/nerf/mlp_layout.h) on cuBLASLt.
//
// Layout. Activations are row-per-sample [N, C], which cuBLAS sees as column-major C x N (ld = C).
// A PyTorch weight [out, in] row-major is column-major in x out (ld = in), so a layer is
//   Y (out x N) = op_T(Wstore) (out x in) * X (in x N)          (Wstore: the weight as stored)
// and a column block W[:, c0:c0+w] is the strided view (Wstore + c0, w x out, ld = in).
//
// Every GEMM that carries an epilogue runs with beta = 0: cuBLASLt's header does not say whether an
// epilogue acts on alpha*A*B + beta*C or on alpha*A*B alone, so nothing may depend on it. Hence:
// * Concatenated inputs are real buffers ("concat buffers"): the skip input cat([gamma(x), h]) and the
//   views input cat([feature, gamma(d)]). Each block starts at an aligned row (8 elements), so a
//   buffer is [block 1 | zero pad | block 2 | zero pad] with an aligned leading dimension; the layer
//   that produces h (or feature) writes straight into its block, gamma(x) / gamma(d) are cast or
//   copied in, and the consuming layer is one GEMM over the whole padded width with a packed copy of
//   its weight (zero columns at the pads), rebuilt from the fp32 master weights at each forward.
//   gamma(x) is staged once, aligned, in the first skip buffer (or its own buffer without a skip).
// * The two heads reading the last hidden layer (feature, alpha) are differentiated together: dL/dh =
//   [W_feature; W_alpha]^T [dfeature; dalpha], one GEMM over a stacked weight (packed at backward)
//   and a stacked gradient buffer, carrying the last layer's DRELU_BGRAD.
//
// Forward, per layer, one cuBLASLt matmul with a fused epilogue: RELU_AUX_BIAS for the ReLU layers
// (pts_linears.*, views_linears.0; the aux bit-mask is the ReLU mask that backward needs) and BIAS
// for the linear heads (feature, alpha, rgb, output). The heads write fp32 straight into raw
// [N, raw_width] (rgb rows 0..2 and alpha row 3, ld = 4). Forward keeps every activation (buffers
// sized for max_batch).
//
// Backward, per layer: dW (+)= X * dZ^T as one GEMM per input block (no epilogue, accumulating with
// beta = 1 into the true, unpadded gradient layout); dX = Wstore * dZ for the hidden input only, with
// the DRELU_BGRAD epilogue, which applies the producer layer's ReLU mask (aux) and writes that layer's
// bias gradient in the output (activation) type, as cublasLt.h specifies for the bias gradient
// (CUBLASLT_MATMUL_DESC_BIAS_POINTER), which a small kernel then adds to the fp32 gradient. For fp16
// that sum over the batch can overflow: it is then non-finite, the loss scaler sees it and skips the
// step. The head biases, whose dZ comes from no dReLU, are summed in fp32 by a deterministic
// reduction kernel.
//
// Unfused path (MlpEpilogue::Unfused, and the per-GEMM fallback): DEFAULT epilogue GEMMs followed by
// bias(+ReLU), dReLU (mask = stored post-ReLU activation > 0) and bias-reduction kernels. Any failure
// of a fused GEMM falls back: a descriptor attribute or heuristic query that fails with any status, a
// heuristic with no usable algorithm, or a launch that every candidate algorithm refused. That GEMM
// is then planned with DEFAULT and its epilogue runs as those kernels; describe_cuda_mlp lists which.
//
// Plans. Matmul descriptors, layouts and the heuristic's candidate algorithms are built once, for
// max_batch, at construction (a dry forward + backward that launches nothing). A call at another
// batch size (an inference tail chunk, the marched model's sample count, which changes every step)
// only changes the batch dimension of the layouts in place and launches with the algorithms found for
// max_batch; only when cublasLtMatmul refuses all of them at that size is the heuristic asked again,
// and its answer joins the candidates. Operand alignment is planned from the pointers seen; a later
// pointer with a smaller alignment re-plans that GEMM once. One cuBLASLt workspace per Mlp.
//
// Alignment. The layout puts every layer at a multiple of 16 floats (mlp_layout.h), the concat and
// staging buffers use aligned leading dimensions, and pts_linears.0, whose input gamma(x) is 63 wide,
// runs on a packed copy of its weight with K = 64: every weight, bias and activation operand of a
// fused GEMM is at least 16-byte aligned (for nerf-pytorch's widths), bar one the Mlp interface fixes:
// alpha_linear writes column 3 of raw [n, 4], 4-byte aligned. A fused plan that cuBLASLt still
// refuses falls back to kernels and records why (describe_cuda_mlp, cuda_mlp_fusion).
//
// Precision:
//   FP32  CUBLAS_COMPUTE_32F, fp32 everything (bit-faithful mode).
//   TF32  CUBLAS_COMPUTE_32F_FAST_TF32, fp32 storage (the GPU default).
//   FP16 / BF16: activations, their gradients and a copy of this network's weights and biases in
//     half precision, cast from the fp32 master parameters at each forward; fp32 accumulation
//     (CUBLAS_COMPUTE_32F); the heads write raw in fp32 with the fp32 bias; weight gradients are
//     produced in fp32 (dW GEMMs output fp32), head bias reductions sum in fp32.
//   FP16 dynamic loss scaling, inside the Mlp (the caller sees only overflow_flag()):
//     backward scales dL_draw by S while casting it to fp16, writes this network's gradients into an
//     fp32 staging buffer, checks it for non-finite values, and then either adds staging / S to
//     dL_dparams or, on overflow, adds nothing, raises the overflow flag (read by Adam, which then
//     leaves this network's parameters, moments and step count alone, as GradScaler skips
//     optimizer.step()) and halves S (never below 1). After 2000 clean backward passes in a row S
//     doubles. S starts at 65536 (PyTorch GradScaler's init_scale). S, the clean-step count and the
//     flag live in device memory and are updated by kernels, so there is no host sync; the flag is
//     cleared at the start of the next backward.
//   BF16 has fp32's exponent range and needs no loss scaling.
//
// Gradient contract: dL_dparams ACCUMULATES (+=); every activation gradient is scratch.
#include "common.cuh"
#include "mlp.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <map>
#include <sstream>
#include <vector>

namespace nerf {
namespace cuda {
namespace {

constexpr size_t kLtWorkspaceBytes = 32u << 20;  // cuBLAS's recommendation for Hopper
constexpr int kMaxBiasChunks = 128;               // row chunks of the bias-gradient reduction
constexpr int kLossScaleGrowthInterval = 2000;
constexpr float kInitialLossScale = 65536.0f;
constexpr int kMaxAlgorithms = 8;                 // heuristic candidates kept per GEMM
constexpr int kRowAlignment = 8;                  // elements: 16 bytes of fp16, 32 of fp32

struct LossScaleState {
	float scale;
	int clean_steps;
	int skipped_steps;
	uint32_t overflow;  // set by the finite check, read by Adam, cleared when the next backward starts
};

// ---------------------------------------------------------------------------------------------
// CUDA kernels

template <typename T> __device__ inline float to_float(T x);
template <> __device__ inline float to_float<float>(float x) { return x; }
template <> __device__ inline float to_float<__half>(__half x) { return __half2float(x); }
template <> __device__ inline float to_float<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ inline T from_float(float x);
template <> __device__ inline float from_float<float>(float x) { return x; }
template <> __device__ inline __half from_float<__half>(float x) { return __float2half_rn(x); }
template <> __device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

/// dst[r, j] = T(src[r, j] * scale) for r < rows, j < n, both column-major with their own leading
/// dimensions; scale = loss_scale->scale or 1. Casts, copies, and stages blocks into concat buffers.
template <typename T, typename S>
__global__ void copy_rows_kernel(T* __restrict__ dst, int64_t ld_dst, const S* __restrict__ src, int64_t ld_src, int rows,
                                 size_t n, const LossScaleState* __restrict__ loss_scale) {
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (size_t)rows * n) return;
	const size_t j = i / (size_t)rows;
	const int r = (int)(i - j * (size_t)rows);
	const float scale = loss_scale ? loss_scale->scale : 1.0f;
	dst[(size_t)r + j * (size_t)ld_dst] = from_float<T>(to_float<S>(src[(size_t)r + j * (size_t)ld_src]) * scale);
}

/// A padded copy of a weight [out, in] (fp32 master) as [out, ld] in T: columns 0..w1-1 are the
/// weight's first w1 columns, columns off2..off2+(in-w1)-1 the rest, every other column 0.
template <typename T>
__global__ void pack_weight_kernel(T* __restrict__ dst, const float* __restrict__ weight, int out, int in, int w1, int off2,
                                   int ld) {
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (size_t)out * ld) return;
	const int row = (int)(i / (size_t)ld);
	const int c = (int)(i - (size_t)row * ld);
	int source = -1;
	if (c < w1) source = c;
	else if (c >= off2 && c - off2 < in - w1) source = w1 + (c - off2);
	dst[i] = from_float<T>(source >= 0 ? weight[(size_t)row * in + source] : 0.0f);
}

/// y[c, j] = act(y[c, j] + bias[c]) on a column-major channels x n block with leading dimension ld.
template <typename T, typename B>
__global__ void bias_act_fwd_kernel(T* __restrict__ y, int64_t ld, const B* __restrict__ bias, int channels, size_t n,
                                    bool relu) {
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (size_t)channels * n) return;
	const size_t j = i / (size_t)channels;
	const int c = (int)(i - j * (size_t)channels);
	T* y_cj = y + (size_t)c + j * (size_t)ld;
	const float value = to_float<T>(*y_cj) + to_float<B>(bias[c]);
	*y_cj = from_float<T>(relu ? fmaxf(value, 0.0f) : value);
}
/// dL_dz = dL_dh where the layer's post-ReLU output h > 0, else 0 (relu'(0) = 0, as PyTorch).
template <typename T>
__global__ void relu_bwd_kernel(T* __restrict__ grad, int64_t ld_grad, const T* __restrict__ h, int64_t ld_h, int channels,
                                size_t n) {
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (size_t)channels * n) return;
	const size_t j = i / (size_t)channels;
	const int c = (int)(i - j * (size_t)channels);
	if (!(to_float<T>(h[(size_t)c + j * (size_t)ld_h]) > 0.0f)) grad[(size_t)c + j * (size_t)ld_grad] = from_float<T>(0.0f);
}

/// First pass of the bias gradient sum_j dz[c, j]: block (32, 8) sums 32 channels over one chunk of
/// rows in a fixed order into partials [n_chunks, channels].
template <typename T>
__global__ void bias_grad_partial_kernel(float* __restrict__ partials, const T* __restrict__ dz, int64_t ld, int channels,
                                         size_t n, size_t rows_per_chunk) {
	__shared__ float sums[8][33];
	const int c = (int)(blockIdx.x * 32 + threadIdx.x);
	const size_t begin = (size_t)blockIdx.y * rows_per_chunk;
	const size_t end = min(n, begin + rows_per_chunk);
	float sum = 0.0f;
	if (c < channels)
		for (size_t j = begin + threadIdx.y; j < end; j += 8) sum += to_float<T>(dz[(size_t)c + j * (size_t)ld]);
	sums[threadIdx.y][threadIdx.x] = sum;
	__syncthreads();
	if (threadIdx.y != 0 || c >= channels) return;
	float total = 0.0f;
	for (int k = 0; k < 8; ++k) total += sums[k][threadIdx.x];
	partials[(size_t)blockIdx.y * channels + c] = total;
}

/// dst[c] += scale * sum_k partials[k, c], chunks in order (also adds a bias gradient staged by the
/// DRELU_BGRAD epilogue: n_chunks = 1).
template <typename T>
__global__ void bias_grad_finalize_kernel(float* __restrict__ dst, const T* __restrict__ partials, int channels, int n_chunks) {
	const int c = (int)(blockIdx.x * blockDim.x + threadIdx.x);
	if (c >= channels) return;
	float total = 0.0f;
	for (int k = 0; k < n_chunks; ++k) total += to_float<T>(partials[(size_t)k * channels + c]);
	dst[c] += total;
}

__global__ void check_finite_kernel(LossScaleState* __restrict__ state, const float* __restrict__ grads, size_t n) {
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n) return;
	if (!isfinite(grads[i])) state->overflow = 1u;  // benign race: every writer stores the same value
}

__global__ void apply_scaled_grads_kernel(float* __restrict__ dL_dparams, const float* __restrict__ staged, size_t n,
                                          const LossScaleState* __restrict__ state) {
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n || state->overflow) return;
	dL_dparams[i] += staged[i] / state->scale;
}

__global__ void update_loss_scale_kernel(LossScaleState* state) {
	if (state->overflow) {
		state->scale = fmaxf(1.0f, 0.5f * state->scale);
		state->clean_steps = 0;
		state->skipped_steps += 1;
	} else if (++state->clean_steps >= kLossScaleGrowthInterval) {
		state->scale *= 2.0f;
		state->clean_steps = 0;
	}
}

// ---------------------------------------------------------------------------------------------
// kernel launchers (templated on the activation type T: float, __half or __nv_bfloat16)

/// dst[r, j] = T(src[r, j] * scale) for a rows x n block (see copy_rows_kernel); scale may be null.
template <typename T, typename S>
void copy_rows(T* dst, int64_t ld_dst, const S* src, int64_t ld_src, int rows, size_t n, const LossScaleState* scale,
               cudaStream_t stream) {
	if (n == 0 || rows == 0) return;
	copy_rows_kernel<T, S><<<grid_for((size_t)rows * n), kBlockSize, 0, stream>>>(dst, ld_dst, src, ld_src, rows, n, scale);
	NERF_CHECK_LAUNCH("copy_rows_kernel", stream);
}

/// n contiguous values cast (or copied) from fp32.
template <typename T> void cast_contiguous(T* dst, const float* src, size_t n, cudaStream_t stream) {
	NERF_CHECK(n <= 0x7fffffffu);
	copy_rows<T, float>(dst, (int64_t)n, src, (int64_t)n, (int)n, 1, nullptr, stream);
}

template <typename T>
void pack_weight(T* dst, const float* weight, int out, int in, int w1, int off2, int ld, cudaStream_t stream) {
	if (out == 0 || ld == 0) return;
	pack_weight_kernel<T><<<grid_for((size_t)out * ld), kBlockSize, 0, stream>>>(dst, weight, out, in, w1, off2, ld);
	NERF_CHECK_LAUNCH("pack_weight_kernel", stream);
}

template <typename T, typename B>
void bias_act_forward(T* y, int64_t ld, const B* bias, int channels, size_t n, bool relu, cudaStream_t stream) {
	if (n == 0 || channels == 0) return;
	bias_act_fwd_kernel<T, B><<<grid_for((size_t)channels * n), kBlockSize, 0, stream>>>(y, ld, bias, channels, n, relu);
	NERF_CHECK_LAUNCH("bias_act_fwd_kernel", stream);
}

template <typename T>
void relu_backward(T* grad, int64_t ld_grad, const T* h, int64_t ld_h, int channels, size_t n, cudaStream_t stream) {
	if (n == 0 || channels == 0) return;
	relu_bwd_kernel<T><<<grid_for((size_t)channels * n), kBlockSize, 0, stream>>>(grad, ld_grad, h, ld_h, channels, n);
	NERF_CHECK_LAUNCH("relu_bwd_kernel", stream);
}

/// dst[c] += sum_j dz[c, j] for a column-major channels x n block; partials: kMaxBiasChunks * channels floats.
template <typename T>
void bias_grad_backward(float* dst, float* partials, const T* dz, int64_t ld, int channels, size_t n, cudaStream_t stream) {
	if (n == 0 || channels == 0) return;
	const int n_chunks = (int)std::min<size_t>(kMaxBiasChunks, (n + 255) / 256);
	const size_t rows_per_chunk = (n + n_chunks - 1) / n_chunks;
	const dim3 grid((unsigned)((channels + 31) / 32), (unsigned)n_chunks);
	bias_grad_partial_kernel<T><<<grid, dim3(32, 8), 0, stream>>>(partials, dz, ld, channels, n, rows_per_chunk);
	NERF_CHECK_LAUNCH("bias_grad_partial_kernel", stream);
	bias_grad_finalize_kernel<float><<<grid_for(channels), kBlockSize, 0, stream>>>(dst, partials, channels, n_chunks);
	NERF_CHECK_LAUNCH("bias_grad_finalize_kernel", stream);
}

/// dst[c] += staged[c], the bias gradient a DRELU_BGRAD epilogue wrote (fp32 or the activation type).
template <typename T> void add_staged_bias_grad(float* dst, const T* staged, int channels, cudaStream_t stream) {
	if (channels == 0) return;
	bias_grad_finalize_kernel<T><<<grid_for(channels), kBlockSize, 0, stream>>>(dst, staged, channels, 1);
	NERF_CHECK_LAUNCH("bias_grad_finalize_kernel", stream);
}

void finish_loss_scaled_backward(float* dL_dparams, const float* staged, size_t n, LossScaleState* state,
                                 cudaStream_t stream) {
	if (n > 0) {
		check_finite_kernel<<<grid_for(n), kBlockSize, 0, stream>>>(state, staged, n);
		NERF_CHECK_LAUNCH("check_finite_kernel", stream);
		apply_scaled_grads_kernel<<<grid_for(n), kBlockSize, 0, stream>>>(dL_dparams, staged, n, state);
		NERF_CHECK_LAUNCH("apply_scaled_grads_kernel", stream);
	}
	update_loss_scale_kernel<<<1, 1, 0, stream>>>(state);
	NERF_CHECK_LAUNCH("update_loss_scale_kernel", stream);
}

// ---------------------------------------------------------------------------------------------
// cuBLASLt plumbing

/// Largest power of two (at most 256) dividing an address: the alignment the heuristic may assume.
uint32_t alignment_of(const void* p) {
	const uintptr_t a = reinterpret_cast<uintptr_t>(p);
	if (a == 0) return 256;
	const uintptr_t low = a & (~a + 1);
	return (uint32_t)std::min<uintptr_t>(low, 256);
}

/// A non-dereferenced address with exactly the given alignment, for planning-time bias / aux
/// pointers: the heuristic reads only their alignment.
void* stand_in_pointer(uint32_t alignment) { return reinterpret_cast<void*>((uintptr_t)0x10000000u + alignment); }

bool epilogue_has_bias(cublasLtEpilogue_t e) {
	return e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_RELU_AUX_BIAS || e == CUBLASLT_EPILOGUE_DRELU_BGRAD;
}
bool epilogue_has_aux(cublasLtEpilogue_t e) {
	return e == CUBLASLT_EPILOGUE_RELU_AUX_BIAS || e == CUBLASLT_EPILOGUE_DRELU_BGRAD;
}
const char* epilogue_name(cublasLtEpilogue_t e) {
	switch (e) {
	case CUBLASLT_EPILOGUE_DEFAULT: return "DEFAULT";
	case CUBLASLT_EPILOGUE_BIAS: return "BIAS";
	case CUBLASLT_EPILOGUE_RELU_AUX_BIAS: return "RELU_AUX_BIAS";
	case CUBLASLT_EPILOGUE_DRELU_BGRAD: return "DRELU_BGRAD";
	default: return "?";
	}
}
const char* type_name(cudaDataType_t t) {
	switch (t) {
	case CUDA_R_32F: return "f32";
	case CUDA_R_16F: return "f16";
	case CUDA_R_16BF: return "bf16";
	default: return "?";
	}
}

/// D (m x n) = alpha op(A) op(B) + beta D, column-major, with an optional epilogue. C is D.
/// One of n and k is the batch (the samples): n for the forward and dX GEMMs, k for the dW ones.
struct GemmSpec {
	const char* label = "";
	cublasOperation_t op_a = CUBLAS_OP_N, op_b = CUBLAS_OP_N;
	uint64_t m = 0, n = 0, k = 0;
	bool batch_in_k = false;  // the batch is k (a weight gradient), else n
	int64_t lda = 0, ldb = 0, ldd = 0;
	cudaDataType_t a_type = CUDA_R_32F, b_type = CUDA_R_32F, d_type = CUDA_R_32F;
	cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
	cudaDataType_t bias_type = CUDA_R_32F;
	int64_t aux_ld = 0;  // bits, a multiple of 128
	uint32_t align_a = 256, align_b = 256, align_d = 256, align_bias = 256, align_aux = 256;

	uint64_t batch() const { return batch_in_k ? k : n; }
	void set_batch(uint64_t b) { (batch_in_k ? k : n) = b; }
	/// The same GEMM up to its batch size, which a plan changes in place (LtGemm::set_batch).
	bool same_problem(const GemmSpec& o) const {
		return op_a == o.op_a && op_b == o.op_b && m == o.m && batch_in_k == o.batch_in_k &&
		       (batch_in_k ? n == o.n : k == o.k) && lda == o.lda && ldb == o.ldb && ldd == o.ldd &&
		       a_type == o.a_type && b_type == o.b_type && d_type == o.d_type && epilogue == o.epilogue &&
		       bias_type == o.bias_type && aux_ld == o.aux_ld;
	}
	/// True when pointers with these alignments may run a plan made for `planned`.
	bool alignment_fits(const GemmSpec& planned) const {
		return align_a >= planned.align_a && align_b >= planned.align_b && align_d >= planned.align_d &&
		       align_bias >= planned.align_bias && align_aux >= planned.align_aux;
	}
};

/// What a CudaMlp's GEMMs cost in planning, for tests and describe_cuda_mlp.
struct PlanCounters {
	int heuristic_queries = 0;  // cublasLtMatmulAlgoGetHeuristic calls
	int batch_changes = 0;      // layouts re-sized to another batch (no heuristic query)
	int refusals = 0;           // launches at a re-sized batch that every candidate refused
	int replans = 0;            // GEMMs planned again after construction (another problem or alignment)
};

const char* status_name(cublasStatus_t s) {
	switch (s) {
	case CUBLAS_STATUS_SUCCESS: return "SUCCESS";
	case CUBLAS_STATUS_NOT_INITIALIZED: return "NOT_INITIALIZED";
	case CUBLAS_STATUS_ALLOC_FAILED: return "ALLOC_FAILED";
	case CUBLAS_STATUS_INVALID_VALUE: return "INVALID_VALUE";
	case CUBLAS_STATUS_ARCH_MISMATCH: return "ARCH_MISMATCH";
	case CUBLAS_STATUS_MAPPING_ERROR: return "MAPPING_ERROR";
	case CUBLAS_STATUS_EXECUTION_FAILED: return "EXECUTION_FAILED";
	case CUBLAS_STATUS_INTERNAL_ERROR: return "INTERNAL_ERROR";
	case CUBLAS_STATUS_NOT_SUPPORTED: return "NOT_SUPPORTED";
	default: return "status ?";
	}
}

/// One planned cuBLASLt matmul: descriptors and the heuristic's candidate algorithms, made once, run
/// many times. The batch dimension of its layouts is changed in place for another batch size
/// (set_batch): an algorithm the heuristic chose for the planned batch stays valid for a smaller one
/// unless cublasLtMatmul says otherwise, and only then is the heuristic asked again (add_candidates).
class LtGemm {
public:
	explicit LtGemm(PlanCounters* counters) : m_counters(counters) {}
	LtGemm(const LtGemm&) = delete;
	LtGemm& operator=(const LtGemm&) = delete;
	~LtGemm() { release(); }

	/// Plans `spec`; false when cuBLASLt refuses it in any way (a descriptor attribute, the heuristic
	/// query, or no candidate in a usable state), e.g. an epilogue it does not offer for these types or
	/// this alignment: the caller then falls back, and failure() says what was refused.
	bool plan(cublasLtHandle_t lt, const GemmSpec& spec, cublasComputeType_t compute) {
		release();
		m_spec = spec;
		m_failure.clear();
		if (try_plan(lt, spec, compute)) return true;
		release();
		return false;
	}

	/// Re-sizes the batch dimension (GemmSpec::batch) of the planned layouts; false when cuBLASLt
	/// refuses the attribute (the plan is then unusable: plan again).
	bool set_batch(uint64_t batch) {
		if (batch == m_spec.batch()) return true;
		const bool a_n = m_spec.op_a == CUBLAS_OP_N, b_n = m_spec.op_b == CUBLAS_OP_N;
		bool ok;
		if (m_spec.batch_in_k)  // A is m x k, B is k x n
			ok = set_layout(m_a, a_n ? CUBLASLT_MATRIX_LAYOUT_COLS : CUBLASLT_MATRIX_LAYOUT_ROWS, batch) &&
			     set_layout(m_b, b_n ? CUBLASLT_MATRIX_LAYOUT_ROWS : CUBLASLT_MATRIX_LAYOUT_COLS, batch);
		else  // B is k x n, D is m x n
			ok = set_layout(m_b, b_n ? CUBLASLT_MATRIX_LAYOUT_COLS : CUBLASLT_MATRIX_LAYOUT_ROWS, batch) &&
			     set_layout(m_d, CUBLASLT_MATRIX_LAYOUT_COLS, batch);
		m_spec.set_batch(batch);
		++m_counters->batch_changes;
		return ok;
	}

	/// Asks the heuristic for algorithms at the current batch and adds those not yet known; false when
	/// it offers none (or nothing new).
	bool add_candidates(cublasLtHandle_t lt) {
		std::vector<cublasLtMatmulHeuristicResult_t> found;
		if (!query(lt, found)) return false;
		bool added = false;
		for (const cublasLtMatmulHeuristicResult_t& r : found) {
			bool known = false;
			for (const cublasLtMatmulHeuristicResult_t& k : m_algos)
				known = known || std::memcmp(&k.algo, &r.algo, sizeof(r.algo)) == 0;
			if (!known && m_algos.size() < 3 * (size_t)kMaxAlgorithms) {
				m_algos.push_back(r);
				added = true;
			}
		}
		return added;
	}

	/// D = alpha op(A) op(B) + beta D on `stream`; bias / aux as the epilogue needs (else null). Tries
	/// the candidates from the last one that worked; false when every one was refused (nothing was
	/// enqueued then, and the error state is cleared; failure() has the last status).
	bool run(cublasLtHandle_t lt, const void* a, const void* b, void* d, float alpha, float beta, const void* bias,
	         const void* aux, void* workspace, cudaStream_t stream) {
		if (m_algos.empty()) return false;
		if (epilogue_has_bias(m_spec.epilogue) && !set_desc(CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias)) return false;
		if (epilogue_has_aux(m_spec.epilogue) && !set_desc(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux)) return false;
		for (size_t attempt = 0; attempt < m_algos.size(); ++attempt) {
			const size_t index = (m_working + attempt) % m_algos.size();
			const cublasStatus_t status = cublasLtMatmul(lt, m_desc, &alpha, a, m_a, b, m_b, &beta, d, m_d, d, m_d,
			                                             &m_algos[index].algo, workspace, kLtWorkspaceBytes, stream);
			const cudaError_t launch = cudaGetLastError();  // a refused kernel launch; clears it
			if (status == CUBLAS_STATUS_SUCCESS && launch == cudaSuccess) {
				m_working = index;
				NERF_CHECK_LAUNCH(m_spec.label, stream);  // syncs and checks with NERF_SYNC_LAUNCHES
				return true;
			}
			m_failure = std::string("every candidate refused the launch at batch ") + std::to_string(m_spec.batch()) +
			            " (last: " + (status != CUBLAS_STATUS_SUCCESS ? status_name(status) : cudaGetErrorString(launch)) +
			            ")";
		}
		return false;
	}

	const GemmSpec& spec() const { return m_spec; }
	size_t candidates() const { return m_algos.size(); }
	size_t working() const { return m_working; }
	const std::string& failure() const { return m_failure; }

private:
	template <typename V> bool set_desc(cublasLtMatmulDescAttributes_t attr, const V& value) {
		return cublasLtMatmulDescSetAttribute(m_desc, attr, &value, sizeof(value)) == CUBLAS_STATUS_SUCCESS;
	}
	static bool set_layout(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr, uint64_t value) {
		return cublasLtMatrixLayoutSetAttribute(layout, attr, &value, sizeof(value)) == CUBLAS_STATUS_SUCCESS;
	}
	/// Records why planning failed; returns false.
	bool refused(const std::string& what) {
		m_failure = what;
		return false;
	}

	bool try_plan(cublasLtHandle_t lt, const GemmSpec& spec, cublasComputeType_t compute) {
		if (cublasLtMatmulDescCreate(&m_desc, compute, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS) {
			m_desc = nullptr;
			return refused("cublasLtMatmulDescCreate failed");
		}
		const uint32_t epilogue = spec.epilogue;
		if (!set_desc(CUBLASLT_MATMUL_DESC_TRANSA, spec.op_a) || !set_desc(CUBLASLT_MATMUL_DESC_TRANSB, spec.op_b))
			return refused("TRANSA / TRANSB refused");
		if (!set_desc(CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue)) return refused("the EPILOGUE attribute was refused");
		if (epilogue_has_bias(spec.epilogue)) {
			const int32_t bias_type = spec.bias_type;
			if (!set_desc(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type) ||
			    !set_desc(CUBLASLT_MATMUL_DESC_BIAS_POINTER, stand_in_pointer(spec.align_bias)))
				return refused(std::string("the bias (") + type_name(spec.bias_type) + ") was refused");
		}
		if (epilogue_has_aux(spec.epilogue) &&
		    (!set_desc(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, spec.aux_ld) ||
		     !set_desc(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, stand_in_pointer(spec.align_aux))))
			return refused("the aux bit-mask (ld " + std::to_string(spec.aux_ld) + ") was refused");
		const bool a_n = spec.op_a == CUBLAS_OP_N, b_n = spec.op_b == CUBLAS_OP_N;
		if (cublasLtMatrixLayoutCreate(&m_a, spec.a_type, a_n ? spec.m : spec.k, a_n ? spec.k : spec.m, spec.lda) !=
		        CUBLAS_STATUS_SUCCESS ||
		    cublasLtMatrixLayoutCreate(&m_b, spec.b_type, b_n ? spec.k : spec.n, b_n ? spec.n : spec.k, spec.ldb) !=
		        CUBLAS_STATUS_SUCCESS ||
		    cublasLtMatrixLayoutCreate(&m_d, spec.d_type, spec.m, spec.n, spec.ldd) != CUBLAS_STATUS_SUCCESS)
			return refused("a matrix layout was refused");
		std::vector<cublasLtMatmulHeuristicResult_t> found;
		if (!query(lt, found)) return false;
		m_algos = found;
		m_working = 0;
		return true;
	}

	/// The heuristic's usable candidates for the current descriptors; false (with failure()) when none.
	bool query(cublasLtHandle_t lt, std::vector<cublasLtMatmulHeuristicResult_t>& out) {
		const GemmSpec& spec = m_spec;
		cublasLtMatmulPreference_t pref = nullptr;
		if (cublasLtMatmulPreferenceCreate(&pref) != CUBLAS_STATUS_SUCCESS) return refused("cublasLtMatmulPreferenceCreate failed");
		const uint64_t workspace = kLtWorkspaceBytes;
		const uint32_t aligns[4] = {spec.align_a, spec.align_b, spec.align_d, spec.align_d};
		const cublasLtMatmulPreferenceAttributes_t align_attrs[4] = {
			CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
			CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
		cublasStatus_t status = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
		                                                             &workspace, sizeof(workspace));
		for (int i = 0; i < 4 && status == CUBLAS_STATUS_SUCCESS; ++i)
			status = cublasLtMatmulPreferenceSetAttribute(pref, align_attrs[i], &aligns[i], sizeof(uint32_t));
		cublasLtMatmulHeuristicResult_t results[kMaxAlgorithms] = {};
		int found = 0;
		if (status == CUBLAS_STATUS_SUCCESS) {
			++m_counters->heuristic_queries;
			status = cublasLtMatmulAlgoGetHeuristic(lt, m_desc, m_a, m_b, m_d, m_d, pref, kMaxAlgorithms, results, &found);
		}
		cublasLtMatmulPreferenceDestroy(pref);
		// A result whose state is not SUCCESS is a slot the heuristic could not fill: not an algorithm.
		out.clear();
		for (int i = 0; status == CUBLAS_STATUS_SUCCESS && i < found && i < kMaxAlgorithms; ++i)
			if (results[i].state == CUBLAS_STATUS_SUCCESS) out.push_back(results[i]);
		if (!out.empty()) return true;
		std::ostringstream why;
		why << "the heuristic found no algorithm (" << status_name(status) << ", " << found << " results) at alignments A "
		    << spec.align_a << " B " << spec.align_b << " D " << spec.align_d;
		if (epilogue_has_bias(spec.epilogue)) why << " bias " << spec.align_bias;
		if (epilogue_has_aux(spec.epilogue)) why << " aux " << spec.align_aux;
		why << " bytes, lda " << spec.lda << " ldb " << spec.ldb << " ldd " << spec.ldd;
		return refused(why.str());
	}

	void release() {
		if (m_d) cublasLtMatrixLayoutDestroy(m_d);
		if (m_b) cublasLtMatrixLayoutDestroy(m_b);
		if (m_a) cublasLtMatrixLayoutDestroy(m_a);
		if (m_desc) cublasLtMatmulDescDestroy(m_desc);
		m_a = m_b = m_d = nullptr;
		m_desc = nullptr;
		m_algos.clear();
		m_working = 0;
	}

	PlanCounters* m_counters;
	GemmSpec m_spec;
	cublasLtMatmulDesc_t m_desc = nullptr;
	cublasLtMatrixLayout_t m_a = nullptr, m_b = nullptr, m_d = nullptr;
	std::vector<cublasLtMatmulHeuristicResult_t> m_algos;
	size_t m_working = 0;
	std::string m_failure;
};

/// A GEMM slot of the plan: the matmul as planned and whether its epilogue is fused into it.
struct GemmSlot {
	std::unique_ptr<LtGemm> gemm;
	GemmSpec requested;                                      // what the layer asked for (at the planned batch)
	cublasLtEpilogue_t wanted = CUBLASLT_EPILOGUE_DEFAULT;  // requested.epilogue
	bool fused = false;                                      // false: DEFAULT GEMM + kernels
	std::string fallback;                                    // why a wanted epilogue runs as kernels
};

/// Every GEMM of one forward and one backward, in call order, planned for max_batch and used at
/// every batch size up to it.
struct Plan {
	std::vector<GemmSlot> slots;
};

struct DataTypes {
	cudaDataType_t act;           // activations, their gradients, half weight copies
	cublasComputeType_t compute;
	size_t act_bytes;
};

DataTypes data_types(Precision p) {
	switch (p) {
	case Precision::FP32: return {CUDA_R_32F, CUBLAS_COMPUTE_32F, 4};
	case Precision::TF32: return {CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32, 4};
	case Precision::FP16: return {CUDA_R_16F, CUBLAS_COMPUTE_32F, 2};
	case Precision::BF16: return {CUDA_R_16BF, CUBLAS_COMPUTE_32F, 2};
	}
	NERF_FAIL("unknown precision");
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/// A column-major block of activations in the activation type: C x N with leading dimension ld.
struct ActView {
	void* p = nullptr;
	int64_t ld = 0;
};

/// A concatenated layer input [block 1 | pad | block 2 | pad] (see the top of the file) and the
/// packed copy of the consuming layer's weight, [out, ld] with zero columns at the pads.
struct ConcatInput {
	int w1 = 0, w2 = 0;  // the blocks' widths (the layer's in = w1 + w2)
	int off2 = 0;        // block 2's first row: w1 rounded up to kRowAlignment
	int ld = 0;          // off2 + w2 rounded up: the GEMM's K
	Buffer<char> x;      // [max_batch, ld], pads zero
	Buffer<char> packed_weight;
};

// ---------------------------------------------------------------------------------------------
// the MLP

class CudaMlp final : public Mlp {
public:
	CudaMlp(const MlpContext& ctx, const MlpLayout& layout, size_t max_batch, Precision precision, MlpEpilogue epilogue)
		: m_ctx(ctx), m_layout(layout), m_max_batch(std::max<size_t>(max_batch, 1)), m_precision(precision),
		  m_epilogue(epilogue), m_types(data_types(precision)) {
		// Layer pointers refer to this object's copy of the layout, never to the caller's.
		const MlpSpec& s = m_layout.spec;
		NERF_CHECK(s.depth >= 1 && s.width > 0 && s.in_pts > 0 && (!s.use_viewdirs || s.in_views > 0));
		NERF_CHECK((int)m_layout.layers.size() >= s.depth + 1);
		for (int i = 0; i < s.depth; ++i) m_pts.push_back(&m_layout.layers[i]);
		m_views = &m_layout.layer("views_linears.0");
		if (s.use_viewdirs) {
			m_feature = &m_layout.layer("feature_linear");
			m_alpha = &m_layout.layer("alpha_linear");
			m_rgb = &m_layout.layer("rgb_linear");
			NERF_CHECK(m_feature->out == s.width && m_alpha->out == 1 && m_rgb->out == 3);
			NERF_CHECK(m_views->in == s.width + s.in_views && m_rgb->in == m_views->out);
		} else {
			m_output = &m_layout.layer("output_linear");
			NERF_CHECK(m_output->out == s.raw_width());
		}

		Backend& b = *ctx.backend;
		const size_t N = m_max_batch, W = (size_t)s.width, act = m_types.act_bytes;
		// The half copy spans the network with its padding, so that every layer keeps the alignment
		// the layout gives it (kMlpLayerAlignment floats: 32 bytes in half precision).
		if (is_half()) m_half_params = b.allocate<char>(m_layout.n_floats * act);
		// Concat buffers: one per skip layer (gamma(x) staged in the first), one for the views layer.
		m_skip.resize((size_t)s.depth);
		for (int i = 1; i < s.depth; ++i) {
			if (!layer_takes_skip(s, i)) continue;
			NERF_CHECK(m_pts[i]->in == s.in_pts + s.width);
			init_concat(m_skip[i], s.in_pts, s.width, m_pts[i]->out);
			if (m_first_skip < 0) m_first_skip = i;
		}
		if (m_first_skip < 0) {
			m_in_pts_ld = round_up(s.in_pts, kRowAlignment);
			m_in_pts = b.allocate<char>(N * (size_t)m_in_pts_ld * act);
			b.fill_zero(m_in_pts.data(), m_in_pts.bytes());  // the pad rows: read by layer 0 against zero columns
		}
		// pts_linears.0 reads gamma(x) (in_pts = 63 wide for nerf-pytorch): a weight stored with that
		// leading dimension leaves every row but the first misaligned, so the layer runs on a packed
		// copy with K = in_pts rounded up to kRowAlignment (zero columns against the zero pad rows of
		// the staged gamma(x)), as the concat layers do.
		if (s.in_pts % kRowAlignment != 0) {
			m_first_ld = (int)round_up(s.in_pts, kRowAlignment);
			m_first_weight = b.allocate<char>((size_t)m_pts[0]->out * m_first_ld * act);
		}
		// One aux bit-mask and one staged bias-gradient slot per ReLU layer: pts layers, then views. A
		// layer feeding a skip layer writes into that layer's concat buffer instead of a buffer of its own.
		size_t staging = 0;
		for (int i = 0; i < s.depth; ++i) {
			m_hidden.push_back(feeds_skip(i) ? Buffer<char>() : b.allocate<char>(N * W * act));
			m_relu_mask.push_back(b.allocate<char>(N * (size_t)round_up(m_pts[i]->out, 128) / 8));
			m_bias_staging_offset.push_back(staging);
			staging += (size_t)m_pts[i]->out;
		}
		if (s.use_viewdirs) {
			init_concat(m_views_in, s.width, s.in_views, m_views->out);
			m_views_out = b.allocate<char>(N * (size_t)m_views->out * act);
			m_views_mask = b.allocate<char>(N * (size_t)round_up(m_views->out, 128) / 8);
			m_views_staging_offset = staging;
			staging += (size_t)m_views->out;
			m_grad_views = b.allocate<char>(N * (size_t)m_views->out * act);
			// [W_feature; W_alpha] and [dfeature; dalpha], padded to an aligned K with zeros that stay zero.
			m_heads_k = (int)round_up(s.width + 1, kRowAlignment);
			m_heads_weight = b.allocate<char>((size_t)m_heads_k * W * act);
			m_heads_grad = b.allocate<char>(N * (size_t)m_heads_k * act);
			b.fill_zero(m_heads_weight.data(), m_heads_weight.bytes());
			b.fill_zero(m_heads_grad.data(), m_heads_grad.bytes());
		}
		m_bias_staging = b.allocate<char>(staging * act);  // DRELU_BGRAD writes the activation type
		m_grad_a = b.allocate<char>(N * W * act);
		m_grad_b = b.allocate<char>(N * W * act);
		if (is_half()) m_grad_raw = b.allocate<char>(N * (size_t)s.raw_width() * act);  // fp32 reads dL_draw as is
		int widest = std::max(s.width, s.raw_width());
		if (s.use_viewdirs) widest = std::max(widest, m_views->out);
		m_bias_partials = b.allocate<float>((size_t)kMaxBiasChunks * widest);
		if (m_precision == Precision::FP16) {
			m_grad_staging = b.allocate<float>(m_layout.n_floats);
			m_loss_scale = b.allocate<LossScaleState>(1);
			const LossScaleState initial{kInitialLossScale, 0, 0, 0u};
			b.upload(m_loss_scale.data(), &initial, sizeof(initial));
		}
		m_lt_workspace = b.allocate<char>(kLtWorkspaceBytes);
		m_relu_mask_written.assign((size_t)s.depth, false);
		plan_max_batch();
	}

	const MlpLayout& layout() const override { return m_layout; }

	void forward(float* raw, const float* params, const float* enc_pts, const float* enc_views, size_t n,
	             bool keep_for_backward) override {
		const MlpSpec& s = m_layout.spec;
		NERF_CHECK(raw && params && enc_pts);
		NERF_CHECK(!s.use_viewdirs || enc_views);
		m_pending_n = 0;  // any forward replaces the activations a backward would read
		if (n == 0) return;
		if (keep_for_backward && n > m_max_batch)
			NERF_FAIL("Mlp::forward: n = " << n << " samples exceeds max_batch = " << m_max_batch << " with keep_for_backward");
		m_params = params;
		dispatch([&](auto zero) { prepare_weights(zero); });
		for (size_t begin = 0; begin < n; begin += m_max_batch) {
			const size_t count = std::min(m_max_batch, n - begin);
			forward_chunk(raw + begin * s.raw_width(), enc_pts + begin * s.in_pts,
			              enc_views ? enc_views + begin * s.in_views : nullptr, count);
		}
		if (keep_for_backward) m_pending_n = n;
	}

	void backward(float* dL_dparams, const float* params, const float* dL_draw, size_t n) override {
		NERF_CHECK(dL_dparams && params && dL_draw);
		if (n != m_pending_n || n == 0)
			NERF_FAIL("Mlp::backward(n = " << n << ") without a matching forward(keep_for_backward = true) (pending n = "
			                                << m_pending_n << ")");
		NERF_CHECK(params == m_params);  // the weight copies and activations belong to that forward
		m_dL_dparams = dL_dparams;
		dispatch([&](auto zero) { backward_impl(zero, dL_draw, n); });
	}

	const uint32_t* overflow_flag() const override {
		if (m_precision != Precision::FP16) return nullptr;
		return reinterpret_cast<const uint32_t*>(reinterpret_cast<const char*>(m_loss_scale.data()) +
		                                         offsetof(LossScaleState, overflow));
	}

	std::string describe() const {
		std::ostringstream os;
		os << "cuda mlp " << precision_name(m_precision) << ", "
		   << (m_epilogue == MlpEpilogue::Fused ? "fused" : "unfused") << " epilogues, planned for max_batch " << m_max_batch
		   << "; heuristic queries " << m_counters.heuristic_queries << ", batch changes " << m_counters.batch_changes
		   << ", refused at a changed batch " << m_counters.refusals << ", re-planned " << m_counters.replans << "\n";
		for (const GemmSlot& slot : m_plan.slots) {
			if (!slot.gemm) continue;
			const GemmSpec& g = slot.requested;
			os << "  " << g.label << ": m=" << g.m << " n=" << g.n << " k=" << g.k << " "
			   << (g.op_a == CUBLAS_OP_T ? "T" : "N") << (g.op_b == CUBLAS_OP_T ? "T" : "N") << " " << type_name(g.a_type)
			   << "*" << type_name(g.b_type) << "->" << type_name(g.d_type) << " lda " << g.lda << " ldb " << g.ldb << " ldd "
			   << g.ldd << " align A/B/D " << g.align_a << "/" << g.align_b << "/" << g.align_d << " epilogue "
			   << epilogue_name(slot.wanted);
			if (slot.fused && epilogue_has_bias(g.epilogue)) os << " bias " << type_name(g.bias_type);
			if (slot.wanted != CUBLASLT_EPILOGUE_DEFAULT)
				os << (slot.fused ? " (fused)"
				                  : m_epilogue == MlpEpilogue::Fused ? " (FALLBACK to kernels: " + slot.fallback + ")" : " (kernels)");
			os << " algo " << slot.gemm->working() + 1 << "/" << slot.gemm->candidates() << "\n";
		}
		return os.str();
	}

	std::map<std::string, MlpEpilogueUse> fusion() const {
		std::map<std::string, MlpEpilogueUse> uses;
		for (const GemmSlot& slot : m_plan.slots) {
			if (!slot.gemm || slot.wanted == CUBLASLT_EPILOGUE_DEFAULT) continue;
			MlpEpilogueUse& use = uses[epilogue_name(slot.wanted)];
			(slot.fused ? use.fused : use.kernels) += 1;
			if (!slot.fused && m_epilogue == MlpEpilogue::Fused)
				use.fallbacks.push_back(std::string(slot.requested.label) + ": " + slot.fallback);
		}
		return uses;
	}

	MlpPlanStats plan_stats() const {
		MlpPlanStats stats;
		stats.planned_batch = m_max_batch;
		stats.gemms = m_plan.slots.size();
		stats.heuristic_queries = m_counters.heuristic_queries;
		stats.batch_changes = m_counters.batch_changes;
		stats.refusals = m_counters.refusals;
		stats.replans = m_counters.replans;
		return stats;
	}

	LossScaleInfo loss_scale() const {
		LossScaleInfo info;
		if (m_precision != Precision::FP16) return info;
		LossScaleState state{};
		m_ctx.backend->download(&state, m_loss_scale.data(), sizeof(state));
		info.scale = state.scale;
		info.clean_steps = state.clean_steps;
		info.skipped_steps = state.skipped_steps;
		return info;
	}

private:
	// --- precision dispatch ---
	bool is_half() const { return m_types.act_bytes == 2; }
	template <typename F> void dispatch(F&& f) {
		switch (m_precision) {
		case Precision::FP32:
		case Precision::TF32: f(float{}); break;
		case Precision::FP16: f(__half{}); break;
		case Precision::BF16: f(__nv_bfloat16{}); break;
		}
	}

	// --- where things are ---
	void init_concat(ConcatInput& c, int w1, int w2, int out) {
		Backend& b = *m_ctx.backend;
		c.w1 = w1;
		c.w2 = w2;
		c.off2 = (int)round_up(w1, kRowAlignment);
		c.ld = (int)round_up(c.off2 + w2, kRowAlignment);
		c.x = b.allocate<char>(m_max_batch * (size_t)c.ld * m_types.act_bytes);
		b.fill_zero(c.x.data(), c.x.bytes());  // the pads: read by the GEMM against zero weight columns
		c.packed_weight = b.allocate<char>((size_t)out * c.ld * m_types.act_bytes);
	}
	/// Whether pts_linears.(i+1) takes cat([gamma(x), h_i]).
	bool feeds_skip(int i) const { return i + 1 < m_layout.spec.depth && layer_takes_skip(m_layout.spec, i + 1); }
	char* offset_rows(const Buffer<char>& b, int rows) const {
		return const_cast<char*>(b.data()) + (size_t)rows * m_types.act_bytes;
	}
	/// The post-ReLU output of pts layer i.
	ActView hidden_out(int i) const {
		if (feeds_skip(i)) {
			const ConcatInput& c = m_skip[(size_t)i + 1];
			return {offset_rows(c.x, c.off2), c.ld};
		}
		return {const_cast<char*>(m_hidden[(size_t)i].data()), m_layout.spec.width};
	}
	/// gamma(x) in the activation type, aligned: the first skip buffer's block 1, or its own buffer.
	ActView pts_in() const {
		if (m_first_skip >= 0) return {const_cast<char*>(m_skip[(size_t)m_first_skip].x.data()), m_skip[(size_t)m_first_skip].ld};
		return {const_cast<char*>(m_in_pts.data()), m_in_pts_ld};
	}
	/// The weight of layer l, from column `col` on: the half copy or the fp32 master.
	const void* weight(const LinearLayer& l, int col) const {
		if (is_half()) return m_half_params.data() + (l.weight_offset - m_layout.offset + col) * m_types.act_bytes;
		return m_params + l.weight_offset + col;
	}
	/// The bias of layer l in the activation type (what a ReLU layer's epilogue adds).
	const void* bias_act(const LinearLayer& l) const {
		if (is_half()) return m_half_params.data() + (l.bias_offset - m_layout.offset) * m_types.act_bytes;
		return m_params + l.bias_offset;
	}
	/// Where the gradient of parameter `offset` accumulates: the fp16 staging buffer or dL_dparams.
	float* grad(size_t offset) {
		if (m_precision == Precision::FP16) return m_grad_staging.data() + (offset - m_layout.offset);
		return m_dL_dparams + offset;
	}
	template <typename T> static T* as(Buffer<char>& b) { return reinterpret_cast<T*>(b.data()); }
	template <typename T> static const T* as(const Buffer<char>& b) { return reinterpret_cast<const T*>(b.data()); }

	/// The weights this forward reads besides the fp32 masters: the half copy of the network and the
	/// packed weights of layer 0 and the concat layers, from the current parameters.
	template <typename T> void prepare_weights(T) {
		const MlpSpec& s = m_layout.spec;
		if (is_half())
			cast_contiguous<T>(as<T>(m_half_params), m_params + m_layout.offset, m_layout.n_floats, m_ctx.stream);
		if (m_first_ld > 0) {
			const LinearLayer& l = *m_pts[0];
			pack_weight<T>(as<T>(m_first_weight), m_params + l.weight_offset, l.out, l.in, l.in, l.in, m_first_ld, m_ctx.stream);
		}
		for (int i = 1; i < s.depth; ++i) {
			if (!layer_takes_skip(s, i)) continue;
			ConcatInput& c = m_skip[(size_t)i];
			const LinearLayer& l = *m_pts[i];
			pack_weight<T>(as<T>(c.packed_weight), m_params + l.weight_offset, l.out, l.in, c.w1, c.off2, c.ld, m_ctx.stream);
		}
		if (s.use_viewdirs)
			pack_weight<T>(as<T>(m_views_in.packed_weight), m_params + m_views->weight_offset, m_views->out, m_views->in,
			               m_views_in.w1, m_views_in.off2, m_views_in.ld, m_ctx.stream);
	}

	// --- plans ---
	/// The slot-th GEMM of the pass: planned at construction for max_batch (or again when the problem
	/// or a smaller pointer alignment demands), re-sized to this call's batch, launched. Returns whether
	/// the epilogue ran fused.
	bool gemm(const GemmSpec& wanted, const void* a, const void* b, void* d, float alpha, float beta, const void* bias,
	          const void* aux) {
		// An epilogue may only ever see alpha * A * B (see the top of the file).
		NERF_CHECK(wanted.epilogue == CUBLASLT_EPILOGUE_DEFAULT || beta == 0.0f);
		NERF_CHECK(wanted.batch() >= 1 && wanted.batch() <= m_max_batch);
		std::vector<GemmSlot>& slots = m_plan.slots;
		if (m_slot == slots.size()) slots.emplace_back();
		GemmSlot& slot = slots[m_slot++];
		GemmSpec spec = wanted;
		spec.align_a = alignment_of(a);
		spec.align_b = alignment_of(b);
		spec.align_d = alignment_of(d);
		if (epilogue_has_bias(spec.epilogue)) spec.align_bias = alignment_of(bias);
		if (epilogue_has_aux(spec.epilogue)) spec.align_aux = alignment_of(aux);
		bool fits = false;
		if (slot.gemm && slot.requested.same_problem(spec)) {
			// An unfused slot runs its epilogue as kernels: its alignments exclude the epilogue's operands.
			const GemmSpec effective = slot.fused ? spec : without_epilogue(spec);
			fits = effective.alignment_fits(slot.gemm->spec());
		}
		if (fits && !slot.gemm->set_batch(spec.batch())) fits = false;
		if (!fits) {
			if (!m_planning) ++m_counters.replans;
			replan(slot, spec);
		}
		const bool plain = wanted.epilogue == CUBLASLT_EPILOGUE_DEFAULT;
		if (m_planning) return slot.fused || plain;
		if (launch(slot, a, b, d, alpha, beta, bias, aux)) return slot.fused || plain;
		if (slot.fused) {
			// Every candidate refused the fused launch: this GEMM runs unfused from now on.
			const std::string why = slot.gemm->failure();
			plan_unfused(slot, spec);
			slot.fallback = why;
			if (launch(slot, a, b, d, alpha, beta, bias, aux)) return plain;
		}
		NERF_FAIL("cuBLASLt could not launch " << spec.label << " with any of its algorithms (m=" << spec.m << " n="
		                                       << spec.n << " k=" << spec.k << ", " << type_name(spec.a_type) << " -> "
		                                       << type_name(spec.d_type) << "): " << slot.gemm->failure());
	}
	/// Runs a slot's GEMM; at a batch other than the planned one, a launch every candidate refuses asks
	/// the heuristic once more at this batch (its new candidates join the old ones) and tries again.
	bool launch(GemmSlot& slot, const void* a, const void* b, void* d, float alpha, float beta, const void* bias,
	            const void* aux) {
		LtGemm& g = *slot.gemm;
		auto run = [&] {
			return g.run(m_ctx.lt, a, b, d, alpha, beta, slot.fused ? bias : nullptr, slot.fused ? aux : nullptr,
			             m_lt_workspace.data(), m_ctx.stream);
		};
		if (run()) return true;
		if (g.spec().batch() == slot.requested.batch()) return false;
		++m_counters.refusals;
		return g.add_candidates(m_ctx.lt) && run();
	}
	static GemmSpec without_epilogue(GemmSpec spec) {
		spec.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
		spec.bias_type = CUDA_R_32F;
		spec.aux_ld = 0;
		spec.align_bias = spec.align_aux = 256;
		return spec;
	}
	/// Plans a slot from scratch at spec's batch (at construction: max_batch; later only when the
	/// problem or the alignments changed, or the layouts could not be re-sized).
	void replan(GemmSlot& slot, const GemmSpec& spec) {
		slot.requested = spec;
		slot.wanted = spec.epilogue;
		slot.fallback.clear();
		slot.gemm = std::make_unique<LtGemm>(&m_counters);
		const bool want_fused = spec.epilogue != CUBLASLT_EPILOGUE_DEFAULT && m_epilogue == MlpEpilogue::Fused;
		if (want_fused) {
			if (slot.gemm->plan(m_ctx.lt, spec, m_types.compute)) {
				slot.fused = true;
				return;
			}
			const std::string why = slot.gemm->failure();
			plan_unfused(slot, spec);
			slot.fallback = why;
			return;
		}
		plan_unfused(slot, spec);
	}
	void plan_unfused(GemmSlot& slot, const GemmSpec& spec) {
		slot.fused = false;
		if (!slot.gemm->plan(m_ctx.lt, without_epilogue(spec), m_types.compute))
			NERF_FAIL("cuBLASLt has no algorithm for " << spec.label << " (m=" << spec.m << " n=" << spec.n << " k=" << spec.k
			                                           << ", " << type_name(spec.a_type) << " -> " << type_name(spec.d_type)
			                                           << "): " << slot.gemm->failure());
	}
	/// Plans every GEMM of a forward and backward at max_batch now, once: the same code as a real pass
	/// with launches turned off, and stand-in caller pointers with the alignment of a fresh allocation
	/// (parameter offsets keep their own alignment). Every later call, at any batch up to max_batch,
	/// only re-sizes the layouts (LtGemm::set_batch); a call whose pointers turn out less aligned
	/// re-plans that GEMM once.
	void plan_max_batch() {
		const MlpSpec& s = m_layout.spec;
		m_planning = true;
		float* caller = static_cast<float*>(stand_in_pointer(256));
		m_params = caller;
		m_dL_dparams = caller;
		forward_chunk(caller, caller, s.use_viewdirs ? caller : nullptr, m_max_batch);
		dispatch([&](auto zero) { backward_impl(zero, caller, m_max_batch); });
		m_planning = false;
		m_params = nullptr;
		m_dL_dparams = nullptr;
	}

	void begin_pass(size_t) {
		// Forward and backward share the plan: forward slots first, then backward ones.
		m_slot = 0;
	}

	GemmSpec base_spec(const char* label, cudaDataType_t d_type) const {
		GemmSpec g;
		g.label = label;
		g.a_type = g.b_type = m_types.act;
		g.d_type = d_type;
		return g;
	}

	// --- forward ---
	enum class Activation { None, Relu };

	/// y (l.out x n, type y_type) = act(W x + bias), W: the weight as stored from `w` (leading
	/// dimension lda, k input columns), x: k x n. One GEMM with the epilogue; when it could not carry
	/// it, the bias(+ReLU) kernel follows. Returns whether the epilogue ran fused, i.e. for a ReLU
	/// layer whether relu_mask was written.
	template <typename T>
	bool linear_forward(const char* label, const LinearLayer& l, const void* w, int64_t lda, int k, ActView x, ActView y,
	                    cudaDataType_t y_type, Activation act, void* relu_mask, size_t n) {
		const bool y_is_act = y_type == m_types.act;
		// ReLU layers write activations with the activation-type bias; fp32 heads use the fp32 master bias.
		const void* bias = y_is_act ? bias_act(l) : static_cast<const void*>(m_params + l.bias_offset);
		const bool relu = act == Activation::Relu;
		GemmSpec g = base_spec(label, y_type);
		g.op_a = CUBLAS_OP_T;
		g.op_b = CUBLAS_OP_N;
		g.m = (uint64_t)l.out;
		g.n = n;
		g.k = (uint64_t)k;
		g.lda = lda;
		g.ldb = x.ld;
		g.ldd = y.ld;
		g.epilogue = relu ? CUBLASLT_EPILOGUE_RELU_AUX_BIAS : CUBLASLT_EPILOGUE_BIAS;
		g.bias_type = y_is_act ? m_types.act : CUDA_R_32F;
		if (relu) g.aux_ld = round_up(l.out, 128);
		const bool fused = gemm(g, w, x.p, y.p, 1.0f, 0.0f, bias, relu ? relu_mask : nullptr);
		if (fused || m_planning) return fused;
		if (y_is_act)
			bias_act_forward<T, T>(static_cast<T*>(y.p), y.ld, static_cast<const T*>(bias), l.out, n, relu, m_ctx.stream);
		else
			bias_act_forward<float, float>(static_cast<float*>(y.p), y.ld, static_cast<const float*>(bias), l.out, n, relu,
			                               m_ctx.stream);
		return false;
	}

	void forward_chunk(float* raw, const float* enc_pts, const float* enc_views, size_t n) {
		dispatch([&](auto zero) { forward_chunk_typed(zero, raw, enc_pts, enc_views, n); });
	}

	template <typename T> void forward_chunk_typed(T, float* raw, const float* enc_pts, const float* enc_views, size_t n) {
		const MlpSpec& s = m_layout.spec;
		begin_pass(n);
		const int W = s.width, P = s.in_pts;
		const ActView pts = pts_in();
		if (!m_planning) {
			// Stage the encoded inputs (cast for half precisions) into their aligned blocks.
			copy_rows<T, float>(static_cast<T*>(pts.p), pts.ld, enc_pts, P, P, n, nullptr, m_ctx.stream);
			for (int i = 1; i < s.depth; ++i)
				if (layer_takes_skip(s, i) && i != m_first_skip)
					copy_rows<T, T>(as<T>(m_skip[(size_t)i].x), m_skip[(size_t)i].ld, static_cast<const T*>(pts.p), pts.ld, P,
					                n, nullptr, m_ctx.stream);
			if (s.use_viewdirs)
				copy_rows<T, float>(reinterpret_cast<T*>(offset_rows(m_views_in.x, m_views_in.off2)), m_views_in.ld, enc_views,
				                    s.in_views, s.in_views, n, nullptr, m_ctx.stream);
		}
		for (int i = 0; i < s.depth; ++i) {
			const LinearLayer& l = *m_pts[i];
			void* mask = m_relu_mask[(size_t)i].data();
			if (layer_takes_skip(s, i)) {
				const ConcatInput& c = m_skip[(size_t)i];
				m_relu_mask_written[(size_t)i] = linear_forward<T>("pts_linears fwd (skip input)", l, c.packed_weight.data(), c.ld,
				                                                   c.ld, {const_cast<char*>(c.x.data()), c.ld}, hidden_out(i),
				                                                   m_types.act, Activation::Relu, mask, n);
			} else {
				NERF_CHECK(l.in == (i == 0 ? P : W));
				if (i == 0 && m_first_ld > 0)
					m_relu_mask_written[0] = linear_forward<T>("pts_linears.0 fwd (packed)", l, m_first_weight.data(), m_first_ld,
					                                           m_first_ld, pts, hidden_out(0), m_types.act, Activation::Relu,
					                                           mask, n);
				else
					m_relu_mask_written[(size_t)i] = linear_forward<T>("pts_linears fwd", l, weight(l, 0), l.in, l.in,
					                                                   i == 0 ? pts : hidden_out(i - 1), hidden_out(i),
					                                                   m_types.act, Activation::Relu, mask, n);
			}
		}
		const ActView h_last = hidden_out(s.depth - 1);
		if (s.use_viewdirs) {
			linear_forward<T>("alpha_linear fwd", *m_alpha, weight(*m_alpha, 0), W, W, h_last, {raw + 3, 4}, CUDA_R_32F,
			                  Activation::None, nullptr, n);
			const ActView views_in{m_views_in.x.data(), m_views_in.ld};
			linear_forward<T>("feature_linear fwd", *m_feature, weight(*m_feature, 0), W, W, h_last, views_in, m_types.act,
			                  Activation::None, nullptr, n);
			const ActView views_out{m_views_out.data(), m_views->out};
			m_views_mask_written = linear_forward<T>("views_linears.0 fwd (views input)", *m_views,
			                                         m_views_in.packed_weight.data(), m_views_in.ld, m_views_in.ld, views_in,
			                                         views_out, m_types.act, Activation::Relu, m_views_mask.data(), n);
			linear_forward<T>("rgb_linear fwd", *m_rgb, weight(*m_rgb, 0), m_rgb->in, m_rgb->in, views_out, {raw, 4},
			                  CUDA_R_32F, Activation::None, nullptr, n);
		} else {
			linear_forward<T>("output_linear fwd", *m_output, weight(*m_output, 0), W, W, h_last, {raw, s.raw_width()},
			                  CUDA_R_32F, Activation::None, nullptr, n);
		}
		m_forward_slots = m_slot;
	}

	// --- backward ---
	/// dW[:, col:col+width] += x (width x n) * dz^T (n x l.out): one GEMM, fp32 output, beta = 1, no
	/// epilogue, into the true (unpadded) gradient layout.
	template <typename T>
	void weight_grad(const char* label, const LinearLayer& l, int col, int width, ActView x, ActView dz, size_t n) {
		GemmSpec g = base_spec(label, CUDA_R_32F);
		g.op_a = CUBLAS_OP_N;
		g.op_b = CUBLAS_OP_T;
		g.m = (uint64_t)width;
		g.n = (uint64_t)l.out;
		g.k = n;
		g.batch_in_k = true;
		g.lda = x.ld;
		g.ldb = dz.ld;
		g.ldd = l.in;
		gemm(g, x.p, dz.p, grad(l.weight_offset) + col, 1.0f, 1.0f, nullptr, nullptr);
	}

	/// The ReLU layer whose output a dX GEMM differentiates through.
	struct ReluProducer {
		const LinearLayer* layer;
		ActView h;           // its post-ReLU output [n, layer->out]
		const void* mask;    // its aux bit-mask; null when its forward epilogue fell back to kernels (mask unwritten)
		size_t staging;      // its slot in the bias-gradient staging buffer
	};

	/// dx (m x n) = A (m x k, leading dimension lda: a weight as stored, or a packed / stacked one)
	/// * dz (k x n), beta = 0; then, with a producer, dReLU by its mask and its bias gradient
	/// (DRELU_BGRAD, or kernels when unfused).
	template <typename T>
	void input_grad(const char* label, const void* a, int64_t lda, int k, int m, ActView dz, ActView dx,
	                const ReluProducer* producer, size_t n) {
		GemmSpec g = base_spec(label, m_types.act);
		g.op_a = CUBLAS_OP_N;
		g.op_b = CUBLAS_OP_N;
		g.m = (uint64_t)m;
		g.n = n;
		g.k = (uint64_t)k;
		g.lda = lda;
		g.ldb = dz.ld;
		g.ldd = dx.ld;
		void* staged = nullptr;
		if (producer) NERF_CHECK(producer->layer->out == m);
		// DRELU_BGRAD reads the mask the producer's RELU_AUX_BIAS wrote; without it, dReLU runs as kernels on h.
		const bool use_mask = producer && producer->mask;
		if (use_mask) {
			g.epilogue = CUBLASLT_EPILOGUE_DRELU_BGRAD;
			g.bias_type = m_types.act;  // the bias gradient has the output type (cublasLt.h)
			g.aux_ld = round_up(m, 128);
			staged = offset_rows(m_bias_staging, (int)producer->staging);
		}
		const bool fused = gemm(g, a, dz.p, dx.p, 1.0f, 0.0f, staged, use_mask ? producer->mask : nullptr);
		if (!producer || m_planning) return;
		float* dL_dbias = grad(producer->layer->bias_offset);
		if (use_mask && fused) {
			add_staged_bias_grad<T>(dL_dbias, static_cast<const T*>(staged), m, m_ctx.stream);
			return;
		}
		relu_backward<T>(static_cast<T*>(dx.p), dx.ld, static_cast<const T*>(producer->h.p), producer->h.ld, m, n,
		                 m_ctx.stream);
		bias_grad_backward<T>(dL_dbias, m_bias_partials.data(), static_cast<const T*>(dx.p), dx.ld, m, n, m_ctx.stream);
	}

	template <typename T> void bias_grad(const LinearLayer& l, const void* dz, int64_t ld_dz, size_t n) {
		if (m_planning) return;
		bias_grad_backward<T>(grad(l.bias_offset), m_bias_partials.data(), static_cast<const T*>(dz), ld_dz, l.out, n,
		                      m_ctx.stream);
	}

	const void* mask_if_written(int i) const { return m_relu_mask_written[(size_t)i] ? m_relu_mask[(size_t)i].data() : nullptr; }
	ReluProducer pts_producer(int i) const {
		return {m_pts[(size_t)i], hidden_out(i), mask_if_written(i), m_bias_staging_offset[(size_t)i]};
	}

	template <typename T> void backward_impl(T, const float* dL_draw, size_t n) {
		const MlpSpec& s = m_layout.spec;
		const int W = s.width, R = s.raw_width(), P = s.in_pts;
		begin_pass(n);
		m_slot = m_forward_slots;  // backward slots follow the forward ones of the same n
		const bool loss_scaled = m_precision == Precision::FP16;
		if (loss_scaled && !m_planning) {
			NERF_CUDA_CHECK(cudaMemsetAsync(m_grad_staging.data(), 0, m_grad_staging.bytes(), m_ctx.stream));
			// A new backward: the last one's overflow verdict (read by Adam since) no longer applies.
			NERF_CUDA_CHECK(cudaMemsetAsync(const_cast<uint32_t*>(overflow_flag()), 0, sizeof(uint32_t), m_ctx.stream));
		}
		// dL/draw in the activation type ([n, R] = R x n column-major), times the loss scale for fp16;
		// fp32 and tf32 read the caller's array as it is.
		const T* draw = reinterpret_cast<const T*>(dL_draw);
		if (is_half()) {
			if (!m_planning)
				copy_rows<T, float>(as<T>(m_grad_raw), R, dL_draw, R, R, n, loss_scaled ? m_loss_scale.data() : nullptr,
				                    m_ctx.stream);
			draw = as<T>(m_grad_raw);
		}

		const int last = s.depth - 1;
		const ActView h_last = hidden_out(last);
		const ReluProducer last_producer = pts_producer(last);
		// dz of the current pts layer lands in grad_b; the next one down in grad_a; they swap.
		void* dz = m_grad_b.data();
		void* dz_next = m_grad_a.data();
		if (s.use_viewdirs) {
			const ActView drgb{const_cast<T*>(draw), R};      // rows 0..2 of dL/draw
			const ActView dalpha{const_cast<T*>(draw + 3), R};  // row 3
			const int Wv = m_views->out;
			const ActView views_out{m_views_out.data(), Wv}, dviews{m_grad_views.data(), Wv};
			// rgb head
			weight_grad<T>("rgb_linear dW", *m_rgb, 0, Wv, views_out, drgb, n);
			bias_grad<T>(*m_rgb, drgb.p, R, n);
			const ReluProducer views_producer{m_views, views_out, m_views_mask_written ? m_views_mask.data() : nullptr,
			                                  m_views_staging_offset};
			input_grad<T>("rgb_linear dX", weight(*m_rgb, 0), m_rgb->in, m_rgb->out, Wv, drgb, dviews, &views_producer, n);
			// views layer: dW per block of its concat input; dX of the feature block only, into rows
			// 0..W-1 of the stacked heads gradient [dfeature; dalpha].
			const ConcatInput& vc = m_views_in;
			weight_grad<T>("views_linears.0 dW[feature]", *m_views, 0, W, {const_cast<char*>(vc.x.data()), vc.ld}, dviews, n);
			weight_grad<T>("views_linears.0 dW[views]", *m_views, W, s.in_views, {offset_rows(vc.x, vc.off2), vc.ld}, dviews,
			               n);
			const ActView dheads{m_heads_grad.data(), m_heads_k};
			input_grad<T>("views_linears.0 dX[feature]", vc.packed_weight.data(), vc.ld, Wv, W, dviews, dheads, nullptr, n);
			// feature and alpha heads, both reading the last hidden layer
			weight_grad<T>("feature_linear dW", *m_feature, 0, W, h_last, dheads, n);
			bias_grad<T>(*m_feature, dheads.p, dheads.ld, n);
			weight_grad<T>("alpha_linear dW", *m_alpha, 0, W, h_last, dalpha, n);
			bias_grad<T>(*m_alpha, dalpha.p, R, n);
			if (!m_planning) {
				copy_rows<T, T>(as<T>(m_heads_grad) + W, m_heads_k, draw + 3, R, 1, n, nullptr, m_ctx.stream);
				pack_weight<T>(as<T>(m_heads_weight), m_params + m_feature->weight_offset, W, W, W, W, W, m_ctx.stream);
				pack_weight<T>(as<T>(m_heads_weight) + (size_t)W * W, m_params + m_alpha->weight_offset, 1, W, W, W, W,
				               m_ctx.stream);
			}
			input_grad<T>("[feature_linear; alpha_linear] dX", m_heads_weight.data(), W, m_heads_k, W, dheads, {dz, W},
			              &last_producer, n);
		} else {
			const ActView dout{const_cast<T*>(draw), R};
			weight_grad<T>("output_linear dW", *m_output, 0, W, h_last, dout, n);
			bias_grad<T>(*m_output, dout.p, R, n);
			input_grad<T>("output_linear dX", weight(*m_output, 0), W, R, W, dout, {dz, W}, &last_producer, n);
		}
		for (int i = last; i >= 0; --i) {
			const LinearLayer& l = *m_pts[i];
			const ActView dzv{dz, W};
			if (i == 0) {
				weight_grad<T>("pts_linears dW", l, 0, P, pts_in(), dzv, n);
				break;
			}
			const ReluProducer producer = pts_producer(i - 1);
			if (layer_takes_skip(s, i)) {
				const ConcatInput& c = m_skip[(size_t)i];
				weight_grad<T>("pts_linears dW[skip gamma(x)]", l, 0, P, {const_cast<char*>(c.x.data()), c.ld}, dzv, n);
				weight_grad<T>("pts_linears dW[skip h]", l, P, W, hidden_out(i - 1), dzv, n);
				input_grad<T>("pts_linears dX (skip input)", offset_rows(c.packed_weight, c.off2), c.ld, l.out, W, dzv,
				              {dz_next, W}, &producer, n);
			} else {
				weight_grad<T>("pts_linears dW", l, 0, W, hidden_out(i - 1), dzv, n);
				input_grad<T>("pts_linears dX", weight(l, 0), l.in, l.out, W, dzv, {dz_next, W}, &producer, n);
			}
			std::swap(dz, dz_next);
		}
		if (loss_scaled && !m_planning)
			finish_loss_scaled_backward(m_dL_dparams + m_layout.offset, m_grad_staging.data(), m_layout.n_floats,
			                            m_loss_scale.data(), m_ctx.stream);
	}

	MlpContext m_ctx;
	MlpLayout m_layout;
	size_t m_max_batch;
	Precision m_precision;
	MlpEpilogue m_epilogue;
	DataTypes m_types;
	std::vector<const LinearLayer*> m_pts;
	const LinearLayer *m_views = nullptr, *m_feature = nullptr, *m_alpha = nullptr, *m_rgb = nullptr, *m_output = nullptr;

	// Activations of the pending forward (activation type), [max_batch, C] each.
	std::vector<ConcatInput> m_skip;  // [depth]: filled for the layers that take the skip input
	int m_first_skip = -1;            // its buffer stages gamma(x); -1: m_in_pts does
	Buffer<char> m_in_pts;            // gamma(x) without a skip layer, ld m_in_pts_ld
	int64_t m_in_pts_ld = 0;
	ConcatInput m_views_in;           // cat([feature, gamma(d)]) (use_viewdirs)
	std::vector<Buffer<char>> m_hidden, m_relu_mask;
	Buffer<char> m_views_out, m_views_mask;
	// Whether the pending forward's fused epilogue wrote each ReLU mask (a per-GEMM fallback does not).
	std::vector<bool> m_relu_mask_written;
	bool m_views_mask_written = false;
	// Backward scratch.
	Buffer<char> m_grad_a, m_grad_b, m_grad_views, m_grad_raw, m_bias_staging;
	Buffer<char> m_heads_weight, m_heads_grad;  // [W_feature; W_alpha] and [dfeature; dalpha], K = m_heads_k
	int m_heads_k = 0;
	std::vector<size_t> m_bias_staging_offset;
	size_t m_views_staging_offset = 0;
	Buffer<float> m_bias_partials;
	Buffer<char> m_half_params;       // this network's parameters in the activation type
	Buffer<float> m_grad_staging;     // fp16: this network's scaled gradients
	Buffer<LossScaleState> m_loss_scale;
	Buffer<char> m_lt_workspace;

	Buffer<char> m_first_weight;      // pts_linears.0 packed to ld m_first_ld (0: not packed, in_pts is aligned)
	int m_first_ld = 0;

	Plan m_plan;
	PlanCounters m_counters;
	size_t m_slot = 0, m_forward_slots = 0;
	bool m_planning = false;  // plan GEMMs, launch nothing (plan_max_batch)

	// The current call's pointers.
	const float* m_params = nullptr;
	float* m_dL_dparams = nullptr;
	size_t m_pending_n = 0;
};

} // namespace

std::unique_ptr<Mlp> make_mlp(const MlpContext& ctx, const MlpLayout& layout, size_t max_batch, Precision precision,
                              MlpEpilogue epilogue) {
	return std::make_unique<CudaMlp>(ctx, layout, max_batch, precision, epilogue);
}

} // namespace cuda

namespace {
const cuda::CudaMlp& as_cuda_mlp(const Mlp& mlp, const char* caller) {
	const auto* cuda_mlp = dynamic_cast<const cuda::CudaMlp*>(&mlp);
	if (!cuda_mlp) NERF_FAIL(caller << ": not a CUDA MLP");
	return *cuda_mlp;
}
} // namespace

std::string describe_cuda_mlp(const Mlp& mlp) { return as_cuda_mlp(mlp, "describe_cuda_mlp").describe(); }

std::map<std::string, MlpEpilogueUse> cuda_mlp_fusion(const Mlp& mlp) {
	return as_cuda_mlp(mlp, "cuda_mlp_fusion").fusion();
}

LossScaleInfo cuda_mlp_loss_scale(const Mlp& mlp) { return as_cuda_mlp(mlp, "cuda_mlp_loss_scale").loss_scale(); }

MlpPlanStats cuda_mlp_plan_stats(const Mlp& mlp) { return as_cuda_mlp(mlp, "cuda_mlp_plan_stats").plan_stats(); }

} // namespace nerf
