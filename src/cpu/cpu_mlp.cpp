// The NeRF MLP on the CPU with Eigen: the reference implementation of nerf::Mlp.
//
// Activations are row-per-sample [n, C] (row-major), weights are PyTorch's [out, in] row-major, so a
// layer is  Y = X W^T + b. The skip input cat([gamma(x), h]) and the views input cat([feature, gamma(d)])
// are never materialised: the product is split over the column blocks of W.
// Forward keeps every post-ReLU activation (their sign is the ReLU mask) for backward.
// Gradient contract: dL/dparams accumulate (+=); activation gradients are scratch.
//
// Threads: the n samples are cut into row blocks whose size depends only on n; each block runs
// single-threaded Eigen GEMMs (Eigen's own parallel GEMM busy-waits and collapses when cores are
// shared) and, in backward, accumulates its weight gradients into its own buffer; the buffers are
// then summed in block order. Results are therefore bitwise independent of the thread count.
#include "cpu_backend.h"
#include "../parallel.h"

#include "nerf/common.h"

#include <Eigen/Core>

#include <algorithm>
#include <vector>

namespace nerf {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<RowMatrix>;
using ConstMatMap = Eigen::Map<const RowMatrix>;
using VecMap = Eigen::Map<Eigen::RowVectorXf>;
using ConstVecMap = Eigen::Map<const Eigen::RowVectorXf>;

// Activations of one row block, kept from forward for backward.
struct Block {
	size_t begin = 0, count = 0;
	const float* enc_pts = nullptr;    // inputs (owned by the caller), already offset to the block
	const float* enc_views = nullptr;
	std::vector<RowMatrix> hidden;     // [depth] post-ReLU outputs, [count, W]
	RowMatrix feature, views_hidden;   // [count, W], [count, W/2]
	std::vector<float> grads;          // this block's dL/dparams (the network's slice)
};

class CpuMlp final : public Mlp {
public:
	CpuMlp(const MlpLayout& layout, size_t max_batch)
	    : m_layout(layout), m_local(layout), m_max_batch(std::max<size_t>(max_batch, 1)) {
		// Blocks work on this network's slice of the flat buffers, so their offsets start at 0.
		for (LinearLayer& l : m_local.layers) {
			l.weight_offset -= layout.offset;
			l.bias_offset -= layout.offset;
		}
		m_local.offset = 0;
	}
	const MlpLayout& layout() const override { return m_layout; }

	void forward(float* raw, const float* params, const float* enc_pts, const float* enc_views, size_t n,
	             bool keep_for_backward) override {
		if (keep_for_backward) NERF_CHECK(n <= m_max_batch);
		const MlpSpec& s = m_layout.spec;
		// Inference streams through max_batch samples at a time so memory stays bounded.
		const size_t pass = keep_for_backward ? n : std::min(n, m_max_batch);
		for (size_t pass_begin = 0; pass_begin < n; pass_begin += pass) {
			const size_t pass_count = std::min(pass, n - pass_begin);
			plan_blocks(pass_count);
			ParallelErrors errors;  // Eigen's allocations throw std::bad_alloc
#pragma omp parallel for schedule(dynamic, 1)
			for (long b = 0; b < (long)m_blocks.size(); ++b) {
				errors.run([&] {
					Block& block = m_blocks[b];
					const size_t first = pass_begin + block.begin;
					block.enc_pts = enc_pts + first * s.in_pts;
					block.enc_views = enc_views ? enc_views + first * s.in_views : nullptr;
					forward_block(block, raw + first * s.raw_width(), params + m_layout.offset);
				});
			}
			if (keep_for_backward) m_forward_n = 0;  // a failed pass leaves no valid context
			errors.rethrow();
		}
		m_forward_n = keep_for_backward ? n : 0;  // an inference pass leaves no valid context
	}

	void backward(float* dL_dparams, const float* params, const float* dL_draw, size_t n) override {
		NERF_CHECK(n == m_forward_n && n > 0);
		const MlpSpec& s = m_layout.spec;
		ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1)
		for (long b = 0; b < (long)m_blocks.size(); ++b) {
			errors.run([&] {
				Block& block = m_blocks[b];
				block.grads.assign(m_layout.n_floats, 0.0f);
				backward_block(block, block.grads.data(), params + m_layout.offset, dL_draw + block.begin * s.raw_width());
			});
		}
		errors.rethrow();
		float* out = dL_dparams + m_layout.offset;
		const long n_floats = (long)m_layout.n_floats;  // the padding's gradient is 0 and stays so
#pragma omp parallel for schedule(static)
		for (long k = 0; k < n_floats; ++k) {
			float sum = out[k];
			for (const Block& block : m_blocks) sum += block.grads[k];
			out[k] = sum;
		}
	}

private:
	void plan_blocks(size_t n) {
		// Block size depends only on n (at most 64 blocks, at least 1024 rows), never on threads.
		const size_t rows = std::max<size_t>(1024, (n + 63) / 64);
		const size_t n_blocks = (n + rows - 1) / rows;
		if (m_blocks.size() != n_blocks) m_blocks.resize(n_blocks);
		for (size_t b = 0; b < n_blocks; ++b) {
			m_blocks[b].begin = b * rows;
			m_blocks[b].count = std::min(rows, n - b * rows);
		}
	}

	void backward_block(Block& block, float* dL_dparams, const float* params, const float* dL_draw) {
		const MlpSpec& s = m_local.spec;
		const Eigen::Index rows = (Eigen::Index)block.count;
		const int W = s.width;
		ConstMatMap pts(block.enc_pts, rows, s.in_pts);
		RowMatrix dL_dh(rows, W);
		const RowMatrix& last = block.hidden[s.depth - 1];
		if (s.use_viewdirs) {
			const LinearLayer& l_rgb = m_local.layer("rgb_linear");
			const LinearLayer& l_views = m_local.layer("views_linears.0");
			const LinearLayer& l_feat = m_local.layer("feature_linear");
			const LinearLayer& l_alpha = m_local.layer("alpha_linear");
			ConstMatMap dL_draw_all(dL_draw, rows, 4);
			RowMatrix dL_drgb = dL_draw_all.leftCols(3);
			RowMatrix dL_dalpha = dL_draw_all.rightCols(1);
			// rgb head (linear)
			accumulate_linear_grads(dL_dparams, l_rgb, dL_drgb, block.views_hidden);
			RowMatrix dL_dviews_pre = through_relu(dL_drgb * weight(params, l_rgb), block.views_hidden);
			// views layer: input cat([feature, gamma(d)])
			ConstMatMap views(block.enc_views, rows, s.in_views);
			MatMap dW_views(dL_dparams + l_views.weight_offset, l_views.out, l_views.in);
			dW_views.leftCols(W).noalias() += dL_dviews_pre.transpose() * block.feature;
			dW_views.rightCols(s.in_views).noalias() += dL_dviews_pre.transpose() * views;
			accumulate_bias_grad(dL_dparams + l_views.bias_offset, dL_dviews_pre);
			RowMatrix dL_dfeature = dL_dviews_pre * weight(params, l_views).leftCols(W);
			// feature and alpha heads both read the last hidden layer
			accumulate_linear_grads(dL_dparams, l_feat, dL_dfeature, last);
			accumulate_linear_grads(dL_dparams, l_alpha, dL_dalpha, last);
			dL_dh.noalias() = dL_dfeature * weight(params, l_feat);
			dL_dh.noalias() += dL_dalpha * weight(params, l_alpha);
		} else {
			const LinearLayer& l_out = m_local.layer("output_linear");
			ConstMatMap dL_dout(dL_draw, rows, s.output_ch);
			accumulate_linear_grads(dL_dparams, l_out, dL_dout, last);
			dL_dh.noalias() = dL_dout * weight(params, l_out);
		}
		for (int i = s.depth - 1; i >= 0; --i) {
			const LinearLayer& l = m_local.layers[i];
			RowMatrix dL_dpre = through_relu(dL_dh, block.hidden[i]);
			MatMap dW(dL_dparams + l.weight_offset, l.out, l.in);
			accumulate_bias_grad(dL_dparams + l.bias_offset, dL_dpre);
			if (i == 0) {
				dW.noalias() += dL_dpre.transpose() * pts;
				break;
			}
			const RowMatrix& input_h = block.hidden[i - 1];
			if (layer_takes_skip(s, i)) {
				dW.leftCols(s.in_pts).noalias() += dL_dpre.transpose() * pts;
				dW.rightCols(W).noalias() += dL_dpre.transpose() * input_h;
				dL_dh.noalias() = dL_dpre * weight(params, l).rightCols(W);
			} else {
				dW.noalias() += dL_dpre.transpose() * input_h;
				dL_dh.noalias() = dL_dpre * weight(params, l);
			}
		}
	}

private:
	static ConstMatMap weight(const float* params, const LinearLayer& l) {
		return ConstMatMap(params + l.weight_offset, l.out, l.in);
	}
	static ConstVecMap bias(const float* params, const LinearLayer& l) { return ConstVecMap(params + l.bias_offset, l.out); }
	/// dL/dpre = dL/dpost where the unit was active (post > 0), else 0; PyTorch's relu'(0) = 0.
	template <typename G, typename M> static RowMatrix through_relu(const G& dL_dpost, const M& post_relu) {
		return (post_relu.array() > 0.0f).select(dL_dpost.array(), 0.0f).matrix();
	}
	/// Bias gradient: column sums as a GEMV (a colwise reduction over a row-major matrix is strided).
	template <typename G> static void accumulate_bias_grad(float* dL_dbias, const G& dL_dy) {
		VecMap(dL_dbias, dL_dy.cols()).noalias() += Eigen::RowVectorXf::Ones(dL_dy.rows()) * dL_dy;
	}
	template <typename G, typename X>
	static void accumulate_linear_grads(float* dL_dparams, const LinearLayer& l, const G& dL_dy, const X& x) {
		MatMap(dL_dparams + l.weight_offset, l.out, l.in).noalias() += dL_dy.transpose() * x;
		accumulate_bias_grad(dL_dparams + l.bias_offset, dL_dy);
	}

	void forward_block(Block& block, float* raw, const float* params) {
		const MlpSpec& s = m_local.spec;
		const Eigen::Index rows = (Eigen::Index)block.count;
		const int W = s.width;
		ConstMatMap pts(block.enc_pts, rows, s.in_pts);
		block.hidden.resize(s.depth);
		for (int i = 0; i < s.depth; ++i) {
			const LinearLayer& l = m_local.layers[i];
			RowMatrix& h = block.hidden[i];
			h.resize(rows, W);
			if (i == 0) {
				h.noalias() = pts * weight(params, l).transpose();
			} else if (layer_takes_skip(s, i)) {
				h.noalias() = pts * weight(params, l).leftCols(s.in_pts).transpose();
				h.noalias() += block.hidden[i - 1] * weight(params, l).rightCols(W).transpose();
			} else {
				h.noalias() = block.hidden[i - 1] * weight(params, l).transpose();
			}
			h.rowwise() += bias(params, l);
			h = h.cwiseMax(0.0f);
		}
		const RowMatrix& last = block.hidden[s.depth - 1];
		if (s.use_viewdirs) {
			NERF_CHECK(block.enc_views != nullptr);
			const LinearLayer& l_alpha = m_local.layer("alpha_linear");
			const LinearLayer& l_feat = m_local.layer("feature_linear");
			const LinearLayer& l_views = m_local.layer("views_linears.0");
			const LinearLayer& l_rgb = m_local.layer("rgb_linear");
			ConstMatMap views(block.enc_views, rows, s.in_views);
			RowMatrix& feature = block.feature;
			RowMatrix& views_hidden = block.views_hidden;
			feature.resize(rows, W);
			feature.noalias() = last * weight(params, l_feat).transpose();
			feature.rowwise() += bias(params, l_feat);
			views_hidden.resize(rows, l_views.out);
			views_hidden.noalias() = feature * weight(params, l_views).leftCols(W).transpose();
			views_hidden.noalias() += views * weight(params, l_views).rightCols(s.in_views).transpose();
			views_hidden.rowwise() += bias(params, l_views);
			views_hidden = views_hidden.cwiseMax(0.0f);
			MatMap out(raw, rows, 4);
			out.leftCols(3).noalias() = views_hidden * weight(params, l_rgb).transpose();
			out.leftCols(3).rowwise() += bias(params, l_rgb);
			out.rightCols(1).noalias() = last * weight(params, l_alpha).transpose();
			out.rightCols(1).array() += params[l_alpha.bias_offset];
		} else {
			const LinearLayer& l_out = m_local.layer("output_linear");
			MatMap out(raw, rows, s.output_ch);
			out.noalias() = last * weight(params, l_out).transpose();
			out.rowwise() += bias(params, l_out);
		}
	}

	MlpLayout m_layout;  // offsets into the flat buffer shared by both networks
	MlpLayout m_local;   // the same, relative to this network's first parameter
	size_t m_max_batch;
	size_t m_forward_n = 0;        // samples of the pending forward (0: none)
	std::vector<Block> m_blocks;
};

} // namespace

std::unique_ptr<Mlp> make_cpu_mlp(const MlpLayout& layout, size_t max_batch) {
	return std::make_unique<CpuMlp>(layout, max_batch);
}

} // namespace nerf
