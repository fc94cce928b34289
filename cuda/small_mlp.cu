// The small bias-free MLPs (include/nerf/small_mlp.h) on cuBLASLt.
//
// Layout. Activations are row-per-sample [n, C] with a row stride, which cuBLAS sees as column-major
// C x n with that leading dimension, so the caller's strided inputs and outputs are GEMM operands as
// they are (no copies): the input is B of the first layer with ld = in_stride, the output layer writes
// D = out x n with ld = out_stride (only `out` rows of each column: the other columns of a wider output
// row are never touched), dL/dout and dL/din likewise. A PyTorch weight [out, in] row-major is the
// column-major in x out matrix S (ld = in), so for a layer Z = W X:
//   forward  Z (out x n)   = op_T(S) X            (A = S transposed, B = X)
//   input    dX (in x n)   = S dZ                 (A = S, B = dZ)
//   weight   dS (in x out) += X dZ^T              (A = X, B = dZ transposed, beta = 1: the gradient
//                                                  contract's +=, into the true parameter layout)
// Hidden activations and their gradients live in this object's buffers, [max_batch] columns of
// pad(width) floats.
//
// ReLU. Forward hidden layers use CUBLASLT_EPILOGUE_RELU_AUX (no bias), which writes relu(Z) and a bit
// mask of Z > 0 (aux, ld a multiple of 128 bits); the product that makes dL/dh of a hidden layer uses
// CUBLASLT_EPILOGUE_DRELU with that mask. Epilogue GEMMs run with beta = 0 only (cublasLt.h does not
// say whether an epilogue sees beta C). Where cuBLASLt refuses a fused form (descriptor, heuristic or
// every algorithm at launch), that GEMM runs with the DEFAULT epilogue and a small kernel applies the
// ReLU (in place) or its gradient (mask: the stored post-ReLU activation > 0, as the CPU); the backward
// product uses DRELU only when the last forward wrote that layer's mask. MlpEpilogue::Unfused forces
// the kernels everywhere (the tests compare both).
//
// Plans. Each GEMM of a pass is a slot with its matmul descriptor, made once. The heuristic's
// candidate algorithms are cached per (power-of-two class of m, n and k, leading dimensions,
// alignments): the training batch (the packed sample count) changes every step, and a cuBLASLt
// algorithm runs any size of its class, so a new n costs new matrix layouts (host only) but no
// heuristic query. A size that every cached candidate refuses queries the heuristic for itself.
//
// Precision: FP32 runs CUBLAS_COMPUTE_32F, TF32 CUBLAS_COMPUTE_32F_FAST_TF32, storage fp32 for both.
// FP16 and BF16 run as TF32 (a one-time warning says so): at width 64 the GEMMs are far from
// compute-bound, so half storage would buy little, and tiny-cuda-nn's fp16 path needs loss scaling.
//
// Gradient contract: dL_dparams ACCUMULATES (+=); dL_din OVERWRITES.
#include "common.cuh"
#include "small_mlp.cuh"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace nerf {
namespace cuda {
namespace {

constexpr size_t kLtWorkspaceBytes = 32u << 20;  // cuBLAS's recommendation for Hopper
constexpr int kMaxAlgorithms = 8;                 // heuristic candidates kept per size class
constexpr int64_t kActivationAlignment = 8;       // floats: 32-byte aligned activation columns

// ---------------------------------------------------------------------------------------------
// CUDA kernels (the unfused epilogues)

/// y = relu(y) on a rows x cols column-major block (ld); NaN stays NaN, as on the CPU.
__global__ void small_mlp_relu_kernel(float* __restrict__ y, int64_t ld, int rows, size_t cols) {
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (size_t)rows * cols) return;
	const size_t j = i / (size_t)rows;
	const int r = (int)(i - j * (size_t)rows);
	float& v = y[j * (size_t)ld + r];
	if (v <= 0.0f) v = 0.0f;
}

/// g = g where h > 0, else 0 (relu'(0) = 0, as the CPU and PyTorch); both rows x cols column-major.
__global__ void small_mlp_relu_grad_kernel(float* __restrict__ g, int64_t ld_g, const float* __restrict__ h,
                                           int64_t ld_h, int rows, size_t cols) {
	const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (size_t)rows * cols) return;
	const size_t j = i / (size_t)rows;
	const int r = (int)(i - j * (size_t)rows);
	if (!(h[j * (size_t)ld_h + r] > 0.0f)) g[j * (size_t)ld_g + r] = 0.0f;
}

// ---------------------------------------------------------------------------------------------
// cuBLASLt plumbing

/// Largest power of two (at most 256) dividing an address: the alignment the heuristic may assume.
uint32_t alignment_of(const void* p) {
	const uintptr_t a = reinterpret_cast<uintptr_t>(p);
	if (a == 0) return 256;
	return (uint32_t)std::min<uintptr_t>(a & (~a + 1), 256);
}

int size_class(uint64_t x) {
	int c = 0;
	while (c < 63 && (uint64_t{1} << c) < x) ++c;
	return c;
}

/// Destroy calls in destructors: a failure is logged, not thrown.
void log_cublas(cublasStatus_t status, const char* call) {
	if (status != CUBLAS_STATUS_SUCCESS)
		std::fprintf(stderr, "nerfcore: cuBLAS error %s in %s (%s)\n", cublasGetStatusName(status), call, __FILE__);
}

/// One GEMM's operands and sizes: D (m x n) = alpha op(A) op(B) + beta D, column-major.
struct Problem {
	uint64_t m = 0, n = 0, k = 0;
	int64_t lda = 0, ldb = 0, ldd = 0;
	bool operator==(const Problem& o) const {
		return m == o.m && n == o.n && k == o.k && lda == o.lda && ldb == o.ldb && ldd == o.ldd;
	}
};

/// One cuBLASLt matmul of fixed transposes and epilogue; sizes and pointers vary per call.
class LtMatmul {
public:
	LtMatmul(const LtMatmul&) = delete;
	LtMatmul& operator=(const LtMatmul&) = delete;
	~LtMatmul() {
		release_layouts();
		if (m_desc) log_cublas(cublasLtMatmulDescDestroy(m_desc), "cublasLtMatmulDescDestroy");
	}

	/// Null when cuBLASLt refuses the descriptor (an epilogue it does not offer): the caller falls
	/// back. A DEFAULT-epilogue descriptor that fails is an error (nerf::Error naming the call).
	static std::unique_ptr<LtMatmul> create(cublasComputeType_t compute, cublasOperation_t op_a, cublasOperation_t op_b,
	                                        cublasLtEpilogue_t epilogue, const void* aux, int64_t aux_ld) {
		std::unique_ptr<LtMatmul> mm(new LtMatmul(op_a, op_b, epilogue));
		const bool plain = epilogue == CUBLASLT_EPILOGUE_DEFAULT;
		cublasStatus_t st = cublasLtMatmulDescCreate(&mm->m_desc, compute, CUDA_R_32F);
		if (st != CUBLAS_STATUS_SUCCESS) mm->m_desc = nullptr;
		const uint32_t epi = epilogue;
		if (st == CUBLAS_STATUS_SUCCESS) st = mm->set(CUBLASLT_MATMUL_DESC_TRANSA, op_a);
		if (st == CUBLAS_STATUS_SUCCESS) st = mm->set(CUBLASLT_MATMUL_DESC_TRANSB, op_b);
		if (st == CUBLAS_STATUS_SUCCESS) st = mm->set(CUBLASLT_MATMUL_DESC_EPILOGUE, epi);
		if (st == CUBLAS_STATUS_SUCCESS && !plain) st = mm->set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, aux_ld);
		// The aux buffer is this network's own and fixed: set once, so the heuristic sees its alignment.
		if (st == CUBLAS_STATUS_SUCCESS && !plain) st = mm->set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux);
		if (st == CUBLAS_STATUS_SUCCESS) return mm;
		if (plain) throw_cublas_error(st, "cublasLtMatmulDescCreate / SetAttribute (DEFAULT epilogue)", __FILE__, __LINE__);
		return nullptr;
	}

	/// Enqueues the GEMM; false when no algorithm would run it (nothing was enqueued then).
	bool run(cublasLtHandle_t lt, const Problem& p, const float* a, const float* b, float* d, float beta,
	         const void* aux, void* workspace, cudaStream_t stream) {
		if (!(p == m_problem) || !m_a) {
			release_layouts();
			m_problem = p;
			if (!make_layouts()) return false;
		}
		const Key key{size_class(p.m), size_class(p.n), size_class(p.k), p.lda, p.ldb, p.ldd, alignment_of(a),
		              alignment_of(b), alignment_of(d), alignment_of(aux)};
		auto it = m_algos.find(key);
		if (it == m_algos.end()) it = m_algos.emplace(key, heuristic(lt, key)).first;
		if (launch(lt, it->second, a, b, d, beta, workspace, stream)) return true;
		// A size the class's candidates do not cover: ask for this size itself.
		it->second = heuristic(lt, key);
		return launch(lt, it->second, a, b, d, beta, workspace, stream);
	}

	size_t classes() const { return m_algos.size(); }

private:
	struct Key {
		int cm, cn, ck;
		int64_t lda, ldb, ldd;
		uint32_t align_a, align_b, align_d, align_aux;
		bool operator<(const Key& o) const {
			return std::tie(cm, cn, ck, lda, ldb, ldd, align_a, align_b, align_d, align_aux) <
			       std::tie(o.cm, o.cn, o.ck, o.lda, o.ldb, o.ldd, o.align_a, o.align_b, o.align_d, o.align_aux);
		}
	};

	LtMatmul(cublasOperation_t op_a, cublasOperation_t op_b, cublasLtEpilogue_t epilogue)
	    : m_op_a(op_a), m_op_b(op_b), m_epilogue(epilogue) {}

	template <typename V> cublasStatus_t set(cublasLtMatmulDescAttributes_t attr, const V& value) {
		return cublasLtMatmulDescSetAttribute(m_desc, attr, &value, sizeof(value));
	}

	bool make_layouts() {
		const Problem& p = m_problem;
		const bool a_n = m_op_a == CUBLAS_OP_N, b_n = m_op_b == CUBLAS_OP_N;
		NERF_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&m_a, CUDA_R_32F, a_n ? p.m : p.k, a_n ? p.k : p.m, p.lda));
		NERF_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&m_b, CUDA_R_32F, b_n ? p.k : p.n, b_n ? p.n : p.k, p.ldb));
		NERF_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&m_d, CUDA_R_32F, p.m, p.n, p.ldd));
		return true;
	}
	void release_layouts() {
		if (m_a) log_cublas(cublasLtMatrixLayoutDestroy(m_a), "cublasLtMatrixLayoutDestroy");
		if (m_b) log_cublas(cublasLtMatrixLayoutDestroy(m_b), "cublasLtMatrixLayoutDestroy");
		if (m_d) log_cublas(cublasLtMatrixLayoutDestroy(m_d), "cublasLtMatrixLayoutDestroy");
		m_a = m_b = m_d = nullptr;
	}

	/// The heuristic's candidates for the current problem at the key's alignments; empty when it has
	/// none (or refuses the query, which for an epilogue means the fallback).
	std::vector<cublasLtMatmulHeuristicResult_t> heuristic(cublasLtHandle_t lt, const Key& key) {
		std::vector<cublasLtMatmulHeuristicResult_t> algos;
		cublasLtMatmulPreference_t pref = nullptr;
		NERF_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
		const uint64_t workspace = kLtWorkspaceBytes;
		const uint32_t aligns[4] = {key.align_a, key.align_b, key.align_d, key.align_d};
		const cublasLtMatmulPreferenceAttributes_t attrs[4] = {
		    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
		    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
		cublasStatus_t st =
		    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace));
		for (int i = 0; i < 4 && st == CUBLAS_STATUS_SUCCESS; ++i)
			st = cublasLtMatmulPreferenceSetAttribute(pref, attrs[i], &aligns[i], sizeof(uint32_t));
		cublasLtMatmulHeuristicResult_t results[kMaxAlgorithms] = {};
		int found = 0;
		if (st == CUBLAS_STATUS_SUCCESS)
			st = cublasLtMatmulAlgoGetHeuristic(lt, m_desc, m_a, m_b, m_d, m_d, pref, kMaxAlgorithms, results, &found);
		log_cublas(cublasLtMatmulPreferenceDestroy(pref), "cublasLtMatmulPreferenceDestroy");
		if (st != CUBLAS_STATUS_SUCCESS && m_epilogue == CUBLASLT_EPILOGUE_DEFAULT)
			throw_cublas_error(st, "cublasLtMatmulAlgoGetHeuristic / PreferenceSetAttribute (DEFAULT epilogue)", __FILE__,
			                   __LINE__);
		// A result whose state is not SUCCESS is a slot the heuristic could not fill: not an algorithm.
		for (int i = 0; i < found && i < kMaxAlgorithms && st == CUBLAS_STATUS_SUCCESS; ++i)
			if (results[i].state == CUBLAS_STATUS_SUCCESS) algos.push_back(results[i]);
		return algos;
	}

	bool launch(cublasLtHandle_t lt, const std::vector<cublasLtMatmulHeuristicResult_t>& algos, const float* a,
	            const float* b, float* d, float beta, void* workspace, cudaStream_t stream) {
		const float alpha = 1.0f;
		for (const cublasLtMatmulHeuristicResult_t& r : algos) {
			const cublasStatus_t st = cublasLtMatmul(lt, m_desc, &alpha, a, m_a, b, m_b, &beta, d, m_d, d, m_d, &r.algo,
			                                         workspace, kLtWorkspaceBytes, stream);
			const cudaError_t launch_err = cudaGetLastError();  // a refused kernel launch; clears it
			if (st == CUBLAS_STATUS_SUCCESS && launch_err == cudaSuccess) {
				NERF_CHECK_LAUNCH("cublasLtMatmul (small MLP)", stream);  // syncs with NERF_SYNC_LAUNCHES
				return true;
			}
		}
		return false;
	}

	cublasOperation_t m_op_a, m_op_b;
	cublasLtEpilogue_t m_epilogue;
	cublasLtMatmulDesc_t m_desc = nullptr;
	cublasLtMatrixLayout_t m_a = nullptr, m_b = nullptr, m_d = nullptr;
	Problem m_problem;
	std::map<Key, std::vector<cublasLtMatmulHeuristicResult_t>> m_algos;
};

/// The unfused half of a slot's epilogue.
enum class Kernel { None, Relu, ReluGrad };

/// One GEMM of a pass: the fused matmul (made on first use, dropped once refused) and the plain one
/// (made on first need).
struct Slot {
	std::string label;
	cublasOperation_t op_a = CUBLAS_OP_N, op_b = CUBLAS_OP_N;
	cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;  // RELU_AUX / DRELU, or DEFAULT: no epilogue
	bool allow_fused = true;                                  // false: MlpEpilogue::Unfused
	const void* aux = nullptr;
	std::unique_ptr<LtMatmul> fused, plain;
	bool fused_refused = false;
	int fused_runs = 0, kernel_runs = 0;
	bool wants_fused() const { return allow_fused && !fused_refused && epilogue != CUBLASLT_EPILOGUE_DEFAULT; }
};

// ---------------------------------------------------------------------------------------------
// The network

class CudaSmallMlp final : public SmallMlp {
public:
	CudaSmallMlp(const MlpContext& ctx, const SmallMlpSpec& spec, size_t max_batch, Precision precision,
	             MlpEpilogue epilogue)
	    : m_ctx(ctx), m_spec(spec), m_max_batch(std::max<size_t>(max_batch, 1)), m_precision(precision),
	      m_epilogue(epilogue) {
		check_small_mlp_spec(spec);
		if (precision == Precision::FP16 || precision == Precision::BF16) {
			static std::atomic<bool> warned{false};
			if (!warned.exchange(true))
				std::fprintf(stderr, "nerfcore: the small MLPs run %s as tf32 on CUDA (fp32 storage, tf32 GEMM inputs)\n",
				             precision_name(precision));
		}
		m_compute = precision == Precision::FP32 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
		const int L = spec.hidden_layers;
		m_ld = (spec.width + kActivationAlignment - 1) / kActivationAlignment * kActivationAlignment;
		m_aux_ld = (spec.width + 127) / 128 * 128;  // bits
		Backend& b = *ctx.backend;
		for (int l = 0; l < L; ++l) {
			m_hidden.push_back(b.allocate<float>(m_max_batch * (size_t)m_ld));
			m_mask.push_back(b.allocate<uint8_t>(m_max_batch * (size_t)m_aux_ld / 8));
		}
		m_grad[0] = b.allocate<float>(m_max_batch * (size_t)m_ld);
		m_grad[1] = b.allocate<float>(m_max_batch * (size_t)m_ld);
		m_workspace = b.allocate<uint8_t>(kLtWorkspaceBytes);
		m_mask_written.assign((size_t)L, false);
		// Slots in pass order: forward hidden layers and output, then backward.
		for (int l = 0; l < L; ++l)
			add_slot("hidden " + std::to_string(l) + " forward", CUBLAS_OP_T, CUBLAS_OP_N, CUBLASLT_EPILOGUE_RELU_AUX,
			         m_mask[(size_t)l].data());
		add_slot("output forward", CUBLAS_OP_T, CUBLAS_OP_N, CUBLASLT_EPILOGUE_DEFAULT, nullptr);
		for (int l = L; l >= 0; --l) {
			const std::string name = l == L ? std::string("output") : "hidden " + std::to_string(l);
			m_dw_slot.insert(m_dw_slot.begin(), (int)m_slots.size());
			add_slot(name + " dW", CUBLAS_OP_N, CUBLAS_OP_T, CUBLASLT_EPILOGUE_DEFAULT, nullptr);
			m_dx_slot.insert(m_dx_slot.begin(), (int)m_slots.size());
			if (l > 0)
				add_slot(name + " dX (through the ReLU of hidden " + std::to_string(l - 1) + ")", CUBLAS_OP_N, CUBLAS_OP_N,
				         CUBLASLT_EPILOGUE_DRELU, m_mask[(size_t)l - 1].data());
			else
				add_slot(name + " dX (input)", CUBLAS_OP_N, CUBLAS_OP_N, CUBLASLT_EPILOGUE_DEFAULT, nullptr);
		}
	}

	const SmallMlpSpec& spec() const override { return m_spec; }

	void forward(float* out, int out_stride, const float* params, const float* in, int in_stride, size_t n,
	             bool keep_for_backward) override {
		m_forward_n = 0;  // a failed forward leaves no valid context
		if (keep_for_backward && n > m_max_batch)
			NERF_FAIL("small MLP (cuda): forward of " << n << " rows kept for backward, but max_batch is " << m_max_batch);
		check_stride("forward", "out_stride", out_stride, m_spec.out);
		check_stride("forward", "in_stride", in_stride, m_spec.in);
		if (n == 0) return;
		NERF_CHECK(out && params && in);
		for (size_t first = 0; first < n; first += m_max_batch) {
			const size_t rows = std::min(m_max_batch, n - first);
			forward_chunk(out + first * (size_t)out_stride, out_stride, params, in + first * (size_t)in_stride, in_stride,
			              rows);
		}
		if (keep_for_backward) {
			m_forward_n = n;
			m_in = in;
			m_in_stride = in_stride;
		}
	}

	void backward(float* dL_dparams, const float* params, const float* dL_dout, int dL_dout_stride, float* dL_din,
	              int dL_din_stride, size_t n) override {
		if (n == 0 || n != m_forward_n)
			NERF_FAIL("small MLP (cuda): backward of " << n << " rows, but the last forward kept " << m_forward_n
			                                           << " for backward");
		check_stride("backward", "dL_dout_stride", dL_dout_stride, m_spec.out);
		if (dL_din) check_stride("backward", "dL_din_stride", dL_din_stride, m_spec.in);
		NERF_CHECK(dL_dparams && params && dL_dout);
		const SmallMlpSpec& s = m_spec;
		const int L = s.hidden_layers, W = s.width;
		const uint64_t N = n;
		// Output layer: dS_out (W x out) += h_last dY^T; dL/dz_{L-1} = S_out dY through the ReLU.
		const size_t w_out = small_mlp_layer_offset(s, L);
		gemm(m_dw_slot[L], {(uint64_t)W, (uint64_t)s.out, N, m_ld, dL_dout_stride, W}, m_hidden[L - 1].data(), dL_dout,
		     dL_dparams + w_out, 1.0f, Kernel::None, nullptr, 0);
		int cur = 0;
		gemm_relu_grad(m_dx_slot[L], {(uint64_t)W, N, (uint64_t)s.out, W, dL_dout_stride, m_ld}, params + w_out, dL_dout,
		               m_grad[cur].data(), L - 1);
		for (int l = L - 1; l >= 0; --l) {
			const size_t w = small_mlp_layer_offset(s, l);
			const int in_l = small_mlp_layer_in(s, l);
			const float* x = l == 0 ? m_in : m_hidden[(size_t)l - 1].data();
			const int64_t ld_x = l == 0 ? m_in_stride : m_ld;
			gemm(m_dw_slot[l], {(uint64_t)in_l, (uint64_t)W, N, ld_x, m_ld, in_l}, x, m_grad[cur].data(), dL_dparams + w,
			     1.0f, Kernel::None, nullptr, 0);
			if (l > 0) {
				gemm_relu_grad(m_dx_slot[l], {(uint64_t)W, N, (uint64_t)W, W, m_ld, m_ld}, params + w, m_grad[cur].data(),
				               m_grad[1 - cur].data(), l - 1);
				cur = 1 - cur;
			} else if (dL_din) {
				gemm(m_dx_slot[0], {(uint64_t)s.in, N, (uint64_t)W, s.in, m_ld, dL_din_stride}, params + w,
				     m_grad[cur].data(), dL_din, 0.0f, Kernel::None, nullptr, 0);
			}
		}
	}

	std::string describe() const {
		std::ostringstream os;
		os << "small MLP {in " << m_spec.in << ", width " << m_spec.width << " x " << m_spec.hidden_layers << ", out "
		   << m_spec.out << "}, " << precision_name(m_precision) << " (compute "
		   << (m_compute == CUBLAS_COMPUTE_32F ? "32F" : "32F_FAST_TF32") << ")\n";
		for (const Slot& s : m_slots) {
			os << "  " << s.label << ": ";
			if (s.epilogue == CUBLASLT_EPILOGUE_DEFAULT)
				os << "DEFAULT";
			else
				os << (s.epilogue == CUBLASLT_EPILOGUE_RELU_AUX ? "RELU_AUX" : "DRELU") << " fused " << s.fused_runs
				   << "x, as DEFAULT + kernel " << s.kernel_runs << "x"
				   << (!s.allow_fused ? " (unfused by request)" : s.fused_refused ? " (refused by cuBLASLt)" : "");
			const LtMatmul* mm = s.fused ? s.fused.get() : s.plain.get();
			if (mm) os << ", " << mm->classes() << " size class(es) planned";
			os << "\n";
		}
		return os.str();
	}

	/// Fused epilogue runs and kernel fallbacks, over every slot that wants a fused epilogue.
	std::pair<int, int> fusion() const {
		int fused = 0, kernels = 0;
		for (const Slot& s : m_slots) {
			fused += s.fused_runs;
			kernels += s.kernel_runs;
		}
		return {fused, kernels};
	}

private:
	void add_slot(const std::string& label, cublasOperation_t op_a, cublasOperation_t op_b, cublasLtEpilogue_t epilogue,
	              const void* aux) {
		Slot s;
		s.label = label;
		s.op_a = op_a;
		s.op_b = op_b;
		s.epilogue = epilogue;
		s.allow_fused = m_epilogue == MlpEpilogue::Fused;
		s.aux = aux;
		m_slots.push_back(std::move(s));
	}

	void check_stride(const char* pass, const char* name, int stride, int width) const {
		if (stride < width)
			NERF_FAIL("small MLP (cuda) " << pass << ": " << name << " = " << stride << " is less than the " << width
			                              << " columns it holds");
	}

	void forward_chunk(float* out, int out_stride, const float* params, const float* in, int in_stride, size_t n) {
		const SmallMlpSpec& s = m_spec;
		const int L = s.hidden_layers, W = s.width;
		const uint64_t N = n;
		for (int l = 0; l < L; ++l) {
			const int in_l = small_mlp_layer_in(s, l);
			const float* x = l == 0 ? in : m_hidden[(size_t)l - 1].data();
			const int64_t ld_x = l == 0 ? in_stride : m_ld;
			m_mask_written[(size_t)l] =
			    gemm(l, {(uint64_t)W, N, (uint64_t)in_l, in_l, ld_x, m_ld}, params + small_mlp_layer_offset(s, l), x,
			         m_hidden[(size_t)l].data(), 0.0f, Kernel::Relu, nullptr, 0);
		}
		gemm(L, {(uint64_t)s.out, N, (uint64_t)W, W, m_ld, out_stride}, params + small_mlp_layer_offset(s, L),
		     m_hidden[(size_t)L - 1].data(), out, 0.0f, Kernel::None, nullptr, 0);
	}

	/// dst = S x through the ReLU of hidden layer `layer`: DRELU with its mask when the last forward
	/// wrote it, else a plain GEMM and the mask from the stored activation.
	void gemm_relu_grad(int slot, const Problem& p, const float* a, const float* b, float* d, int layer) {
		Slot& s = m_slots[(size_t)slot];
		gemm_impl(s, p, a, b, d, 0.0f, s.wants_fused() && m_mask_written[(size_t)layer], Kernel::ReluGrad,
		          m_hidden[(size_t)layer].data(), m_ld);
	}

	/// One slot's GEMM with its epilogue; returns whether the epilogue ran fused.
	bool gemm(int slot, const Problem& p, const float* a, const float* b, float* d, float beta, Kernel kernel,
	          const float* h, int64_t ld_h) {
		Slot& s = m_slots[(size_t)slot];
		return gemm_impl(s, p, a, b, d, beta, s.wants_fused(), kernel, h, ld_h);
	}

	bool gemm_impl(Slot& s, const Problem& p, const float* a, const float* b, float* d, float beta, bool want_fused,
	               Kernel kernel, const float* h, int64_t ld_h) {
		if (want_fused) {
			NERF_CHECK(beta == 0.0f);  // an epilogue may only ever see A * B (see the top of the file)
			if (!s.fused) s.fused = LtMatmul::create(m_compute, s.op_a, s.op_b, s.epilogue, s.aux, m_aux_ld);
			if (s.fused && s.fused->run(m_ctx.lt, p, a, b, d, beta, s.aux, m_workspace.data(), m_ctx.stream)) {
				++s.fused_runs;
				return true;
			}
			// Refused by cuBLASLt (descriptor, heuristic or every algorithm): kernels from now on.
			s.fused.reset();
			s.fused_refused = true;
		}
		if (!s.plain) s.plain = LtMatmul::create(m_compute, s.op_a, s.op_b, CUBLASLT_EPILOGUE_DEFAULT, nullptr, 0);
		if (!s.plain->run(m_ctx.lt, p, a, b, d, beta, nullptr, m_workspace.data(), m_ctx.stream))
			NERF_FAIL("cuBLASLt has no algorithm for the small MLP's " << s.label << " (m=" << p.m << " n=" << p.n
			                                                           << " k=" << p.k << ", lda " << p.lda << " ldb "
			                                                           << p.ldb << " ldd " << p.ldd << ")");
		if (kernel != Kernel::None && s.epilogue != CUBLASLT_EPILOGUE_DEFAULT) ++s.kernel_runs;
		const size_t count = (size_t)p.m * p.n;
		if (kernel == Kernel::Relu) {
			small_mlp_relu_kernel<<<grid_for(count), kBlockSize, 0, m_ctx.stream>>>(d, p.ldd, (int)p.m, p.n);
			NERF_CHECK_LAUNCH("small_mlp_relu_kernel", m_ctx.stream);
		} else if (kernel == Kernel::ReluGrad) {
			small_mlp_relu_grad_kernel<<<grid_for(count), kBlockSize, 0, m_ctx.stream>>>(d, p.ldd, h, ld_h, (int)p.m, p.n);
			NERF_CHECK_LAUNCH("small_mlp_relu_grad_kernel", m_ctx.stream);
		}
		return false;
	}

	MlpContext m_ctx;
	SmallMlpSpec m_spec;
	size_t m_max_batch;
	Precision m_precision;
	MlpEpilogue m_epilogue;
	cublasComputeType_t m_compute = CUBLAS_COMPUTE_32F;
	int64_t m_ld = 0, m_aux_ld = 0;
	std::vector<Buffer<float>> m_hidden;   // [L] post-ReLU activations, width x max_batch (ld m_ld)
	std::vector<Buffer<uint8_t>> m_mask;   // [L] RELU_AUX bit masks, m_aux_ld bits per column
	Buffer<float> m_grad[2];               // dL/dz of a hidden layer, ping-pong
	Buffer<uint8_t> m_workspace;
	std::vector<Slot> m_slots;
	std::vector<int> m_dw_slot, m_dx_slot;  // by layer 0..L
	std::vector<bool> m_mask_written;       // by hidden layer, for the last forward chunk
	size_t m_forward_n = 0;
	const float* m_in = nullptr;
	int m_in_stride = 0;
};

} // namespace

std::unique_ptr<SmallMlp> make_small_mlp(const MlpContext& ctx, const SmallMlpSpec& spec, size_t max_batch,
                                         Precision precision, MlpEpilogue epilogue) {
	return std::make_unique<CudaSmallMlp>(ctx, spec, max_batch, precision, epilogue);
}

} // namespace cuda

std::string describe_cuda_small_mlp(const SmallMlp& mlp) {
	const auto* m = dynamic_cast<const cuda::CudaSmallMlp*>(&mlp);
	if (!m) NERF_FAIL("describe_cuda_small_mlp: not a CUDA small MLP");
	return m->describe();
}

MlpEpilogueUse cuda_small_mlp_fusion(const SmallMlp& mlp) {
	const auto* m = dynamic_cast<const cuda::CudaSmallMlp*>(&mlp);
	if (!m) NERF_FAIL("cuda_small_mlp_fusion: not a CUDA small MLP");
	const auto [fused, kernels] = m->fusion();
	return MlpEpilogueUse{fused, kernels};
}

} // namespace nerf
