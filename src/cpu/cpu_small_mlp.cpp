// The small bias-free MLPs (include/nerf/small_mlp.h) on the CPU, fused: a tile of kTileRows rows goes
// through every layer, forward and backward, while its activations stay in the core's L1/L2 (a tile of
// 64-wide activations is 16 KB, a 64x64 weight 16 KB), instead of one GEMM over all rows per layer.
//
// GEMMs. Every product of a pass is one register-blocked kernel, C (M x N) (+)= A (M x K) B (K x N):
// B's rows are contiguous vectors (16 floats, AVX-512), A's elements are broadcast, and an R x NV block
// of C (R rows, NV vectors of 16 columns) stays in registers over the whole K loop. With PyTorch's
// row-major [out, in] weights and row-per-sample activations the three products of a layer are:
//   forward   Y (rows x out)  = X (rows x in) W^T    B = W^T, transposed once per forward call
//   input     dX (rows x in)  = dY W                 B = W as stored (the parameters themselves)
//   weight    dW (out x in)  += dY^T X               B = X's rows, A = dY read down its columns
// N is never padded in memory: the last vector of a row is loaded and stored with a lane mask, so the
// kernel reads the caller's strided inputs and writes into the first columns of a wider output (rgb
// into raw's 4-wide rows) without copies and without touching the other columns. K is the true width.
// The ReLU is fused into the forward store, and the ReLU gradient (keep dL/dh where h > 0) into the
// store of the product that makes dL/dh.
//
// Backward needs the forward's hidden activations. Two ways are implemented (SmallMlpCpuBackward):
// Keep stores them for all rows in forward (rows x width floats per hidden layer, written once and
// read once), Recompute keeps nothing and re-runs a tile's forward in backward (cache-resident, one
// more forward's FLOPs). The default is the faster one as measured by bench_small_mlp at 2^18 rows
// (see the comment at kDefaultBackward).
//
// Threads and determinism: the rows are cut into blocks whose size depends only on n; a block's tiles
// run in order on one thread and accumulate its weight gradients into the block's own buffer, and the
// buffers are summed in block order. Every output row is computed by the same instruction sequence
// wherever its tile falls, so all results are bitwise independent of the thread count.
#include "cpu_backend.h"
#include "../parallel.h"

#include "nerf/common.h"
#include "nerf/small_mlp.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace nerf {
namespace {

// Rows per tile: 64 rows of a 64-wide layer are 16 KB, so a layer's input and output tiles and its
// 16 KB weight fit in L1 (48 KB per core here) and the whole tile's activations in L2; a weight-gradient
// block is loaded and stored once per 64 rows of accumulation. Measured with bench_small_mlp at 2^18 rows
// (1 thread, forward+backward): 32, 48, 64, 96, 128, 256 and 512 rows lie within ~10% of each other on
// this shared machine, 64 at or near the best in every run.
constexpr int kTileRows = 64;
// Row blocks: at most kMaxBlocks (each holds a private copy of the weight gradients), at least
// kMinBlockRows rows each; both depend only on n.
constexpr size_t kMaxBlocks = 64;
constexpr size_t kMinBlockRows = 1024;

// ---------------------------------------------------------------------------------------------
// 16-float vectors: AVX-512 intrinsics, or plain loops elsewhere (this file is compiled with
// -ffp-contract=fast, so there the compiler may fuse a*b+c into FMAs where the target has them).

#if defined(__AVX512F__)
using Vec = __m512;
using Lanes = __mmask16;
constexpr Lanes kAllLanes = 0xFFFF;
inline Vec v_zero() { return _mm512_setzero_ps(); }
inline Vec v_load(const float* p) { return _mm512_loadu_ps(p); }
inline Vec v_load(const float* p, Lanes m) { return _mm512_maskz_loadu_ps(m, p); }
inline void v_store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline void v_store(float* p, Vec v, Lanes m) { _mm512_mask_storeu_ps(p, m, v); }
inline Vec v_broadcast(const float* p) { return _mm512_set1_ps(*p); }
inline Vec v_fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
// max(0, x) with x second: MAXPS returns its second operand when either is NaN, so NaN propagates.
// (The zero-masked form with every lane set is the same instruction; GCC 12's _mm512_max_ps trips
// -Wuninitialized inside its own header.)
inline Vec v_relu(Vec x) { return _mm512_maskz_max_ps(kAllLanes, _mm512_setzero_ps(), x); }
// g where h > 0, else 0 (PyTorch's relu'(0) = 0; a NaN h passes nothing).
inline Vec v_relu_grad(Vec g, Vec h) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(h, _mm512_setzero_ps(), _CMP_GT_OQ), g); }
#else
struct Vec {
	float v[16];
};
using Lanes = uint32_t;
constexpr Lanes kAllLanes = 0xFFFF;
inline Vec v_zero() { return Vec{}; }
inline Vec v_load(const float* p) {
	Vec r;
	for (int i = 0; i < 16; ++i) r.v[i] = p[i];
	return r;
}
inline Vec v_load(const float* p, Lanes m) {
	Vec r;
	for (int i = 0; i < 16; ++i) r.v[i] = (m >> i) & 1 ? p[i] : 0.0f;
	return r;
}
inline void v_store(float* p, Vec v) {
	for (int i = 0; i < 16; ++i) p[i] = v.v[i];
}
inline void v_store(float* p, Vec v, Lanes m) {
	for (int i = 0; i < 16; ++i)
		if ((m >> i) & 1) p[i] = v.v[i];
}
inline Vec v_broadcast(const float* p) {
	Vec r;
	for (int i = 0; i < 16; ++i) r.v[i] = *p;
	return r;
}
inline Vec v_fma(Vec a, Vec b, Vec c) {
	for (int i = 0; i < 16; ++i) c.v[i] = a.v[i] * b.v[i] + c.v[i];
	return c;
}
inline Vec v_relu(Vec x) {
	for (int i = 0; i < 16; ++i) x.v[i] = 0.0f > x.v[i] ? 0.0f : x.v[i];
	return x;
}
inline Vec v_relu_grad(Vec g, Vec h) {
	for (int i = 0; i < 16; ++i) g.v[i] = h.v[i] > 0.0f ? g.v[i] : 0.0f;
	return g;
}
#endif

// ---------------------------------------------------------------------------------------------
// The kernel

enum class Epilogue { None, Relu, ReluGrad };
/// How A is stored: A(m, k) = a[m * lda + k] (RowMajor: activations) or a[m + k * lda] (ColMajor: the
/// transposed activation gradient of the weight product).
enum class ALayout { RowMajor, ColMajor };

struct Gemm {
	float* c = nullptr;
	size_t ldc = 0;
	const float* a = nullptr;
	size_t lda = 0;
	const float* b = nullptr;  ///< B(k, :) = b + k * ldb
	size_t ldb = 0;
	const float* h = nullptr;  ///< ReluGrad: the post-ReLU activation, laid out as C (ldh)
	size_t ldh = 0;
	int m = 0, n = 0, k = 0;
};

/// Registers: R * NV accumulators and NV vectors of B's row, of the 32 AVX-512 registers; the A
/// elements are broadcast straight from memory into the FMAs.
template <int NV> constexpr int rows_per_block() { return NV == 1 ? 16 : NV == 2 ? 12 : NV == 3 ? 8 : 6; }

/// C[m0 .. m0+R, n0 .. n0+16 NV) of g; `last`: the lanes of the last vector that exist.
template <int R, int NV, Epilogue E, bool Accumulate, ALayout AL>
inline void kernel_block(const Gemm& g, int m0, int n0, Lanes last) {
	Vec acc[R][NV];
	float* c = g.c + (size_t)m0 * g.ldc + n0;
#pragma GCC unroll 16
	for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
		for (int j = 0; j < NV; ++j) {
			if constexpr (Accumulate)
				acc[i][j] = j == NV - 1 ? v_load(c + i * g.ldc + 16 * j, last) : v_load(c + i * g.ldc + 16 * j);
			else
				acc[i][j] = v_zero();
		}
	const float* a = AL == ALayout::RowMajor ? g.a + (size_t)m0 * g.lda : g.a + m0;
	const float* b = g.b + n0;
	const size_t lda = g.lda, ldb = g.ldb;
	for (int k = 0; k < g.k; ++k) {
		Vec bv[NV];
#pragma GCC unroll 4
		for (int j = 0; j < NV; ++j) bv[j] = j == NV - 1 ? v_load(b + 16 * j, last) : v_load(b + 16 * j);
#pragma GCC unroll 16
		for (int i = 0; i < R; ++i) {
			const Vec av = v_broadcast(AL == ALayout::RowMajor ? a + i * lda + k : a + i);
#pragma GCC unroll 4
			for (int j = 0; j < NV; ++j) acc[i][j] = v_fma(av, bv[j], acc[i][j]);
		}
		if constexpr (AL == ALayout::ColMajor) a += lda;
		b += ldb;
	}
#pragma GCC unroll 16
	for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
		for (int j = 0; j < NV; ++j) {
			Vec v = acc[i][j];
			if constexpr (E == Epilogue::Relu) v = v_relu(v);
			if constexpr (E == Epilogue::ReluGrad) {
				const float* h = g.h + (size_t)(m0 + i) * g.ldh + n0 + 16 * j;
				v = v_relu_grad(v, j == NV - 1 ? v_load(h, last) : v_load(h));
			}
			if (j == NV - 1)
				v_store(c + i * g.ldc + 16 * j, v, last);
			else
				v_store(c + i * g.ldc + 16 * j, v);
		}
}

/// The rows left over after the full R-row blocks: one call of the kernel with exactly `rows` rows.
template <int R, int NV, Epilogue E, bool Accumulate, ALayout AL>
inline void kernel_tail(const Gemm& g, int rows, int m0, int n0, Lanes last) {
	if constexpr (R > 0) {
		if (rows == R)
			kernel_block<R, NV, E, Accumulate, AL>(g, m0, n0, last);
		else
			kernel_tail<R - 1, NV, E, Accumulate, AL>(g, rows, m0, n0, last);
	}
}

template <int NV, Epilogue E, bool Accumulate, ALayout AL> void gemm_panel(const Gemm& g, int n0, Lanes last) {
	constexpr int R = rows_per_block<NV>();
	int m0 = 0;
	for (; m0 + R <= g.m; m0 += R) kernel_block<R, NV, E, Accumulate, AL>(g, m0, n0, last);
	if (m0 < g.m) kernel_tail<R - 1, NV, E, Accumulate, AL>(g, g.m - m0, m0, n0, last);
}

/// C (g.m x g.n) (+)= A B in panels of up to 64 columns.
template <Epilogue E, bool Accumulate, ALayout AL> void gemm(const Gemm& g) {
	for (int n0 = 0; n0 < g.n; n0 += 64) {
		const int cols = std::min(64, g.n - n0);
		const int nv = (cols + 15) / 16;
		const int tail = cols - 16 * (nv - 1);
		const Lanes last = tail == 16 ? kAllLanes : (Lanes)((1u << tail) - 1u);
		switch (nv) {
		case 1: gemm_panel<1, E, Accumulate, AL>(g, n0, last); break;
		case 2: gemm_panel<2, E, Accumulate, AL>(g, n0, last); break;
		case 3: gemm_panel<3, E, Accumulate, AL>(g, n0, last); break;
		default: gemm_panel<4, E, Accumulate, AL>(g, n0, last); break;
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Buffers

struct FreeDeleter {
	void operator()(float* p) const { std::free(p); }
};
/// 64-byte aligned floats (one cache line per vector); contents undefined until written.
class AlignedFloats {
public:
	void reserve(size_t count) {
		if (count <= m_count) return;
		const size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
		float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
		if (!p) NERF_FAIL("small MLP (cpu): out of memory allocating " << bytes << " bytes");
		m_data.reset(p);
		m_count = count;
	}
	float* data() { return m_data.get(); }
	const float* data() const { return m_data.get(); }

private:
	std::unique_ptr<float, FreeDeleter> m_data;
	size_t m_count = 0;
};

int pad16(int x) { return (x + 15) / 16 * 16; }

// Recompute: at 2^18 rows (bench_small_mlp, forward+backward) it is as fast as Keep on one thread and
// 4-8% faster on two (density 22.7 against 24.7 ms, colour 42.7 against 44.6), and it does not hold
// hidden_layers x 256 B per row (64 MB for the density net, 128 MB for the colour net at 2^18 rows). The
// recomputed forward is cache-resident work (about a third more FLOPs); Keep instead writes the
// activations to DRAM in forward and reads them back in backward, and at these sizes the memory traffic
// costs as much as the FLOPs. Keep wins only while everything fits in cache (90% of the GEMM peak
// against 75-80% at 8192 rows), which a training batch does not.
constexpr SmallMlpCpuBackward kDefaultBackward = SmallMlpCpuBackward::Recompute;

// ---------------------------------------------------------------------------------------------
// The network

class CpuSmallMlp final : public SmallMlp {
public:
	CpuSmallMlp(const SmallMlpSpec& spec, size_t max_batch, SmallMlpCpuBackward mode)
	    : m_spec(spec), m_max_batch(std::max<size_t>(max_batch, 1)), m_mode(mode) {
		check_small_mlp_spec(spec);
		m_n_params = small_mlp_params(spec);
		m_ld = (size_t)pad16(spec.width);
		size_t wt = 0;
		for (int l = 0; l <= spec.hidden_layers; ++l) {
			m_wt_offset.push_back(wt);
			wt += (size_t)small_mlp_layer_in(spec, l) * (size_t)pad16(small_mlp_layer_out(spec, l));
		}
		m_wt.reserve(wt);
		if (m_mode == SmallMlpCpuBackward::Keep) m_kept.reserve(m_max_batch * m_ld * (size_t)spec.hidden_layers);
	}
	const SmallMlpSpec& spec() const override { return m_spec; }

	void forward(float* out, int out_stride, const float* params, const float* in, int in_stride, size_t n,
	             bool keep_for_backward) override {
		m_forward_n = 0;  // a failed forward leaves no valid context
		if (keep_for_backward && n > m_max_batch)
			NERF_FAIL("small MLP (cpu): forward of " << n << " rows kept for backward, but max_batch is " << m_max_batch);
		check_strides("forward", out_stride, m_spec.out, "out_stride", in_stride, m_spec.in, "in_stride");
		if (n == 0) return;
		NERF_CHECK(out && params && in);
		transpose_weights(params);
		const bool keep = keep_for_backward && m_mode == SmallMlpCpuBackward::Keep;
		plan_blocks(n);
		prepare_scratch();
		run_blocks([&](size_t b, Scratch& s) {
			const size_t first = m_blocks[b].begin, end = first + m_blocks[b].count;
			for (size_t r = first; r < end; r += kTileRows) {
				const int rows = (int)std::min<size_t>(kTileRows, end - r);
				float* const* hidden = keep ? kept_rows(s, r) : s.hidden.data();
				forward_tile(out + r * (size_t)out_stride, out_stride, in + r * (size_t)in_stride, in_stride, rows, hidden);
			}
		});
		if (keep_for_backward) {
			m_forward_n = n;
			m_in = in;
			m_in_stride = in_stride;
		}
	}

	void backward(float* dL_dparams, const float* params, const float* dL_dout, int dL_dout_stride, float* dL_din,
	              int dL_din_stride, size_t n) override {
		if (n == 0 || n != m_forward_n)
			NERF_FAIL("small MLP (cpu): backward of " << n << " rows, but the last forward kept " << m_forward_n
			                                          << " for backward");
		check_strides("backward", dL_dout_stride, m_spec.out, "dL_dout_stride", dL_din ? dL_din_stride : m_spec.in,
		              m_spec.in, "dL_din_stride");
		NERF_CHECK(dL_dparams && params && dL_dout);
		if (m_mode == SmallMlpCpuBackward::Recompute) transpose_weights(params);
		plan_blocks(n);  // the forward's blocks: they depend only on n
		prepare_scratch();
		if (m_block_grads.size() < m_blocks.size()) m_block_grads.resize(m_blocks.size());
		const bool keep = m_mode == SmallMlpCpuBackward::Keep;
		run_blocks([&](size_t b, Scratch& s) {
			AlignedFloats& grads = m_block_grads[b];
			grads.reserve(m_n_params);
			std::memset(grads.data(), 0, m_n_params * sizeof(float));
			const size_t first = m_blocks[b].begin, end = first + m_blocks[b].count;
			for (size_t r = first; r < end; r += kTileRows) {
				const int rows = (int)std::min<size_t>(kTileRows, end - r);
				const float* in = m_in + r * (size_t)m_in_stride;
				float* const* hidden = keep ? kept_rows(s, r) : s.hidden.data();
				if (!keep) forward_tile(nullptr, 0, in, m_in_stride, rows, hidden);
				backward_tile(grads.data(), params, in, m_in_stride, rows, hidden, dL_dout + r * (size_t)dL_dout_stride,
				              dL_dout_stride, dL_din ? dL_din + r * (size_t)dL_din_stride : nullptr, dL_din_stride, s);
			}
		});
		// Block order, whatever thread ran which block.
		const long n_params = (long)m_n_params;
		const size_t n_blocks = m_blocks.size();
#pragma omp parallel for schedule(static) if (n_params * (long)n_blocks >= (1 << 16))
		for (long k = 0; k < n_params; ++k) {
			float sum = dL_dparams[k];
			for (size_t b = 0; b < n_blocks; ++b) sum += m_block_grads[b].data()[k];
			dL_dparams[k] = sum;
		}
	}

private:
	struct Block {
		size_t begin = 0, count = 0;
	};
	/// One thread's tiles: the hidden activations (unless kept) and two activation-gradient tiles.
	struct Scratch {
		AlignedFloats hidden_tiles, grad_tiles;
		std::vector<float*> hidden, kept;
		float* grad[2] = {nullptr, nullptr};
	};

	void check_strides(const char* pass, int stride_a, int width_a, const char* name_a, int stride_b, int width_b,
	                   const char* name_b) const {
		if (stride_a < width_a)
			NERF_FAIL("small MLP (cpu) " << pass << ": " << name_a << " = " << stride_a << " is less than the " << width_a
			                             << " columns it holds");
		if (stride_b < width_b)
			NERF_FAIL("small MLP (cpu) " << pass << ": " << name_b << " = " << stride_b << " is less than the " << width_b
			                             << " columns it holds");
	}

	void plan_blocks(size_t n) {
		size_t rows = std::max(kMinBlockRows, (n + kMaxBlocks - 1) / kMaxBlocks);
		rows = (rows + kTileRows - 1) / kTileRows * kTileRows;  // whole tiles except the last
		const size_t n_blocks = (n + rows - 1) / rows;
		m_blocks.resize(n_blocks);
		for (size_t b = 0; b < n_blocks; ++b) m_blocks[b] = {b * rows, std::min(rows, n - b * rows)};
	}

	void prepare_scratch() {
#ifdef _OPENMP
		const size_t threads = (size_t)std::max(1, omp_get_max_threads());
#else
		const size_t threads = 1;
#endif
		if (m_scratch.size() < threads) m_scratch.resize(threads);
	}

	/// body(block, scratch) for every block, in parallel over blocks; the scratch is the thread's.
	template <typename Body> void run_blocks(Body&& body) {
		ParallelErrors errors;  // allocations throw std::bad_alloc / nerf::Error
		const long n_blocks = (long)m_blocks.size();
#pragma omp parallel if (n_blocks > 1)
		{
#ifdef _OPENMP
			Scratch& s = m_scratch[(size_t)omp_get_thread_num()];
#else
			Scratch& s = m_scratch[0];
#endif
			errors.run([&] { init_scratch(s); });
#pragma omp for schedule(dynamic, 1)
			for (long b = 0; b < n_blocks; ++b) errors.run([&] { body((size_t)b, s); });
		}
		errors.rethrow();
	}

	void init_scratch(Scratch& s) {
		const size_t tile = (size_t)kTileRows * m_ld;
		const int L = m_spec.hidden_layers;
		s.hidden_tiles.reserve(tile * (size_t)L);
		s.grad_tiles.reserve(2 * tile);
		s.hidden.resize((size_t)L);
		s.kept.resize((size_t)L);
		for (int l = 0; l < L; ++l) s.hidden[(size_t)l] = s.hidden_tiles.data() + (size_t)l * tile;
		s.grad[0] = s.grad_tiles.data();
		s.grad[1] = s.grad_tiles.data() + tile;
	}

	/// The kept hidden activations of the tile starting at row r.
	float* const* kept_rows(Scratch& s, size_t r) {
		for (int l = 0; l < m_spec.hidden_layers; ++l)
			s.kept[(size_t)l] = m_kept.data() + ((size_t)l * m_max_batch + r) * m_ld;
		return s.kept.data();
	}

	/// W_l^T, [in_l, pad16(out_l)], the forward product's B (a few thousand floats: once per call).
	void transpose_weights(const float* params) {
		for (int l = 0; l <= m_spec.hidden_layers; ++l) {
			const int in = small_mlp_layer_in(m_spec, l), out = small_mlp_layer_out(m_spec, l), ld = pad16(out);
			const float* w = params + small_mlp_layer_offset(m_spec, l);
			float* wt = m_wt.data() + m_wt_offset[(size_t)l];
			for (int i = 0; i < in; ++i) {
				for (int o = 0; o < out; ++o) wt[(size_t)i * ld + o] = w[(size_t)o * in + i];
				for (int o = out; o < ld; ++o) wt[(size_t)i * ld + o] = 0.0f;
			}
		}
	}

	/// hidden[l] = relu(...) ([rows, ld]), then out (when not null) = the linear output layer.
	void forward_tile(float* out, int out_stride, const float* in, int in_stride, int rows, float* const* hidden) const {
		const SmallMlpSpec& s = m_spec;
		const int L = s.hidden_layers;
		for (int l = 0; l < L; ++l) {
			Gemm g;
			g.c = hidden[l];
			g.ldc = m_ld;
			g.a = l == 0 ? in : hidden[l - 1];
			g.lda = l == 0 ? (size_t)in_stride : m_ld;
			g.b = m_wt.data() + m_wt_offset[(size_t)l];
			g.ldb = m_ld;
			g.m = rows;
			g.n = s.width;
			g.k = l == 0 ? s.in : s.width;
			gemm<Epilogue::Relu, false, ALayout::RowMajor>(g);
		}
		if (!out) return;
		Gemm g;
		g.c = out;
		g.ldc = (size_t)out_stride;
		g.a = hidden[L - 1];
		g.lda = m_ld;
		g.b = m_wt.data() + m_wt_offset[(size_t)L];
		g.ldb = (size_t)pad16(s.out);
		g.m = rows;
		g.n = s.out;
		g.k = s.width;
		gemm<Epilogue::None, false, ALayout::RowMajor>(g);
	}

	void backward_tile(float* grads, const float* params, const float* in, int in_stride, int rows,
	                   float* const* hidden, const float* dL_dout, int dL_dout_stride, float* dL_din, int dL_din_stride,
	                   Scratch& scratch) const {
		const SmallMlpSpec& s = m_spec;
		const int L = s.hidden_layers;
		// Output layer: dW_out += dY^T h_last, dL/dh_last = dY W_out through the ReLU.
		{
			const size_t w = small_mlp_layer_offset(s, L);
			Gemm dw;
			dw.c = grads + w;
			dw.ldc = (size_t)s.width;
			dw.a = dL_dout;
			dw.lda = (size_t)dL_dout_stride;
			dw.b = hidden[L - 1];
			dw.ldb = m_ld;
			dw.m = s.out;
			dw.n = s.width;
			dw.k = rows;
			gemm<Epilogue::None, true, ALayout::ColMajor>(dw);
			Gemm dx;
			dx.c = scratch.grad[0];
			dx.ldc = m_ld;
			dx.a = dL_dout;
			dx.lda = (size_t)dL_dout_stride;
			dx.b = params + w;
			dx.ldb = (size_t)s.width;
			dx.h = hidden[L - 1];
			dx.ldh = m_ld;
			dx.m = rows;
			dx.n = s.width;
			dx.k = s.out;
			gemm<Epilogue::ReluGrad, false, ALayout::RowMajor>(dx);
		}
		int cur = 0;  // scratch.grad[cur]: dL/d(pre-activation) of hidden layer l
		for (int l = L - 1; l >= 0; --l) {
			const size_t w = small_mlp_layer_offset(s, l);
			const int in_l = l == 0 ? s.in : s.width;
			Gemm dw;
			dw.c = grads + w;
			dw.ldc = (size_t)in_l;
			dw.a = scratch.grad[cur];
			dw.lda = m_ld;
			dw.b = l == 0 ? in : hidden[l - 1];
			dw.ldb = l == 0 ? (size_t)in_stride : m_ld;
			dw.m = s.width;
			dw.n = in_l;
			dw.k = rows;
			gemm<Epilogue::None, true, ALayout::ColMajor>(dw);
			Gemm dx;
			dx.a = scratch.grad[cur];
			dx.lda = m_ld;
			dx.b = params + w;
			dx.ldb = (size_t)in_l;
			dx.m = rows;
			dx.n = in_l;
			dx.k = s.width;
			if (l > 0) {
				dx.c = scratch.grad[1 - cur];
				dx.ldc = m_ld;
				dx.h = hidden[l - 1];
				dx.ldh = m_ld;
				gemm<Epilogue::ReluGrad, false, ALayout::RowMajor>(dx);
				cur = 1 - cur;
			} else if (dL_din) {
				dx.c = dL_din;
				dx.ldc = (size_t)dL_din_stride;
				gemm<Epilogue::None, false, ALayout::RowMajor>(dx);
			}
		}
	}

	SmallMlpSpec m_spec;
	size_t m_max_batch;
	SmallMlpCpuBackward m_mode;
	size_t m_n_params = 0;
	size_t m_ld = 0;  // row stride of every activation tile: width rounded up to a vector
	AlignedFloats m_wt;
	std::vector<size_t> m_wt_offset;
	AlignedFloats m_kept;  // Keep: [hidden_layers][max_batch][m_ld]
	std::vector<Block> m_blocks;
	std::vector<Scratch> m_scratch;
	std::vector<AlignedFloats> m_block_grads;
	// The pending forward (m_forward_n = 0: none).
	size_t m_forward_n = 0;
	const float* m_in = nullptr;
	int m_in_stride = 0;
};

} // namespace

std::unique_ptr<SmallMlp> create_cpu_small_mlp(const SmallMlpSpec& spec, size_t max_batch, SmallMlpCpuBackward mode) {
	return std::make_unique<CpuSmallMlp>(spec, max_batch, mode);
}

std::unique_ptr<SmallMlp> create_cpu_small_mlp(const SmallMlpSpec& spec, size_t max_batch) {
	return create_cpu_small_mlp(spec, max_batch, kDefaultBackward);
}

} // namespace nerf
