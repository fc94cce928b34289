// The NeRF MLP on the CPU with Eigen: the reference implementation of nerf::Mlp.
//
// Activations are row-per-sample [n, C] (row-major), weights are PyTorch's [out, in] row-major, so a
// layer is  Y = X W^T + b. The skip input cat([gamma(x), h]) and the views input cat([feature, gamma(d)])
// are never materialised: the product is split over the column blocks of W.
// Forward keeps every post-ReLU activation (their sign is the ReLU mask) for backward.
// Gradient contract: dL/dparams accumulate (+=); activation gradients are scratch.
#include "cpu_backend.h"

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

class CpuMlp final : public Mlp {
public:
	CpuMlp(const MlpLayout& layout, size_t max_batch) : m_layout(layout), m_max_batch(std::max<size_t>(max_batch, 1)) {
		const MlpSpec& s = layout.spec;
		m_hidden.resize(s.depth);
	}
	const MlpLayout& layout() const override { return m_layout; }

	void forward(float* raw, const float* params, const float* enc_pts, const float* enc_views, size_t n,
	             bool keep_for_backward) override {
		if (keep_for_backward) {
			NERF_CHECK(n <= m_max_batch);
			forward_chunk(raw, params, enc_pts, enc_views, n);
			m_forward_n = n;
			return;
		}
		const MlpSpec& s = m_layout.spec;
		for (size_t begin = 0; begin < n; begin += m_max_batch) {
			const size_t count = std::min(m_max_batch, n - begin);
			forward_chunk(raw + begin * s.raw_width(), params, enc_pts + begin * s.in_pts,
			              enc_views ? enc_views + begin * s.in_views : nullptr, count);
		}
		m_forward_n = 0;  // activations of a chunked inference forward are not a valid context
	}

	void backward(float* dL_dparams, const float* params, const float* dL_draw, size_t n) override {
		NERF_CHECK(n == m_forward_n && n > 0);
		const MlpSpec& s = m_layout.spec;
		const Eigen::Index rows = (Eigen::Index)n;
		const int W = s.width;
		ConstMatMap pts(m_enc_pts, rows, s.in_pts);
		RowMatrix dL_dh(rows, W);
		const RowMatrix& last = m_hidden[s.depth - 1];
		if (s.use_viewdirs) {
			const LinearLayer& l_rgb = m_layout.layer("rgb_linear");
			const LinearLayer& l_views = m_layout.layer("views_linears.0");
			const LinearLayer& l_feat = m_layout.layer("feature_linear");
			const LinearLayer& l_alpha = m_layout.layer("alpha_linear");
			ConstMatMap dL_draw_all(dL_draw, rows, 4);
			RowMatrix dL_drgb = dL_draw_all.leftCols(3);
			RowMatrix dL_dalpha = dL_draw_all.rightCols(1);
			// rgb head (linear)
			accumulate_linear_grads(dL_dparams, l_rgb, dL_drgb, m_views_hidden);
			RowMatrix dL_dviews_pre = (dL_drgb * weight(params, l_rgb)).cwiseProduct(relu_mask(m_views_hidden));
			// views layer: input cat([feature, gamma(d)])
			ConstMatMap views(m_enc_views, rows, s.in_views);
			MatMap dW_views(dL_dparams + l_views.weight_offset, l_views.out, l_views.in);
			dW_views.leftCols(W).noalias() += dL_dviews_pre.transpose() * m_feature;
			dW_views.rightCols(s.in_views).noalias() += dL_dviews_pre.transpose() * views;
			VecMap(dL_dparams + l_views.bias_offset, l_views.out) += dL_dviews_pre.colwise().sum();
			RowMatrix dL_dfeature = dL_dviews_pre * weight(params, l_views).leftCols(W);
			// feature and alpha heads both read the last hidden layer
			accumulate_linear_grads(dL_dparams, l_feat, dL_dfeature, last);
			accumulate_linear_grads(dL_dparams, l_alpha, dL_dalpha, last);
			dL_dh.noalias() = dL_dfeature * weight(params, l_feat);
			dL_dh.noalias() += dL_dalpha * weight(params, l_alpha);
		} else {
			const LinearLayer& l_out = m_layout.layer("output_linear");
			ConstMatMap dL_dout(dL_draw, rows, s.output_ch);
			accumulate_linear_grads(dL_dparams, l_out, dL_dout, last);
			dL_dh.noalias() = dL_dout * weight(params, l_out);
		}
		for (int i = s.depth - 1; i >= 0; --i) {
			const LinearLayer& l = m_layout.layers[i];
			RowMatrix dL_dpre = dL_dh.cwiseProduct(relu_mask(m_hidden[i]));
			MatMap dW(dL_dparams + l.weight_offset, l.out, l.in);
			VecMap(dL_dparams + l.bias_offset, l.out) += dL_dpre.colwise().sum();
			if (i == 0) {
				dW.noalias() += dL_dpre.transpose() * pts;
				break;
			}
			const RowMatrix& input_h = m_hidden[i - 1];
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
	template <typename M> static RowMatrix relu_mask(const M& post_relu) {
		return (post_relu.array() > 0.0f).template cast<float>().matrix();
	}
	template <typename G, typename X>
	static void accumulate_linear_grads(float* dL_dparams, const LinearLayer& l, const G& dL_dy, const X& x) {
		MatMap(dL_dparams + l.weight_offset, l.out, l.in).noalias() += dL_dy.transpose() * x;
		VecMap(dL_dparams + l.bias_offset, l.out) += dL_dy.colwise().sum();
	}

	void forward_chunk(float* raw, const float* params, const float* enc_pts, const float* enc_views, size_t n) {
		const MlpSpec& s = m_layout.spec;
		const Eigen::Index rows = (Eigen::Index)n;
		const int W = s.width;
		ConstMatMap pts(enc_pts, rows, s.in_pts);
		m_enc_pts = enc_pts;
		m_enc_views = enc_views;
		for (int i = 0; i < s.depth; ++i) {
			const LinearLayer& l = m_layout.layers[i];
			RowMatrix& h = m_hidden[i];
			h.resize(rows, W);
			if (i == 0) {
				h.noalias() = pts * weight(params, l).transpose();
			} else if (layer_takes_skip(s, i)) {
				h.noalias() = pts * weight(params, l).leftCols(s.in_pts).transpose();
				h.noalias() += m_hidden[i - 1] * weight(params, l).rightCols(W).transpose();
			} else {
				h.noalias() = m_hidden[i - 1] * weight(params, l).transpose();
			}
			h.rowwise() += bias(params, l);
			h = h.cwiseMax(0.0f);
		}
		const RowMatrix& last = m_hidden[s.depth - 1];
		if (s.use_viewdirs) {
			NERF_CHECK(enc_views != nullptr);
			const LinearLayer& l_alpha = m_layout.layer("alpha_linear");
			const LinearLayer& l_feat = m_layout.layer("feature_linear");
			const LinearLayer& l_views = m_layout.layer("views_linears.0");
			const LinearLayer& l_rgb = m_layout.layer("rgb_linear");
			ConstMatMap views(enc_views, rows, s.in_views);
			m_feature.resize(rows, W);
			m_feature.noalias() = last * weight(params, l_feat).transpose();
			m_feature.rowwise() += bias(params, l_feat);
			m_views_hidden.resize(rows, l_views.out);
			m_views_hidden.noalias() = m_feature * weight(params, l_views).leftCols(W).transpose();
			m_views_hidden.noalias() += views * weight(params, l_views).rightCols(s.in_views).transpose();
			m_views_hidden.rowwise() += bias(params, l_views);
			m_views_hidden = m_views_hidden.cwiseMax(0.0f);
			MatMap out(raw, rows, 4);
			out.leftCols(3).noalias() = m_views_hidden * weight(params, l_rgb).transpose();
			out.leftCols(3).rowwise() += bias(params, l_rgb);
			out.rightCols(1).noalias() = last * weight(params, l_alpha).transpose();
			out.rightCols(1).array() += params[l_alpha.bias_offset];
		} else {
			const LinearLayer& l_out = m_layout.layer("output_linear");
			MatMap out(raw, rows, s.output_ch);
			out.noalias() = last * weight(params, l_out).transpose();
			out.rowwise() += bias(params, l_out);
		}
	}

	MlpLayout m_layout;
	size_t m_max_batch;
	size_t m_forward_n = 0;
	const float* m_enc_pts = nullptr;    // inputs of the pending forward (owned by the caller)
	const float* m_enc_views = nullptr;
	std::vector<RowMatrix> m_hidden;     // [depth] post-ReLU outputs, [n, W]
	RowMatrix m_feature, m_views_hidden; // [n, W], [n, W/2]
};

} // namespace

std::unique_ptr<Mlp> make_cpu_mlp(const MlpLayout& layout, size_t max_batch) {
	return std::make_unique<CpuMlp>(layout, max_batch);
}

} // namespace nerf
