/// @file mlp_layout.h
/// @brief Where each layer of nerf-pytorch's NeRF MLP lives in the flat parameter buffer.
///
/// Layers in state-dict order: pts_linears.0 .. pts_linears.{D-1}, views_linears.0 (always
/// present, as in the reference, though untrained without viewdirs), then with use_viewdirs
/// feature_linear, alpha_linear, rgb_linear; without, output_linear.
/// Each layer is a weight [out, in] (row-major, PyTorch's layout) followed by its bias [out].
/// Input of pts_linears.0 is gamma(x) (in_pts wide); after a skip layer i (i in skips) the next
/// layer's input is cat([gamma(x), h]); views_linears.0 takes cat([feature, gamma(d)]).
///
/// Every layer starts at a multiple of kMlpLayerAlignment floats, zeros in between: the CUDA
/// backend hands weight and bias pointers to cuBLASLt, whose fused epilogues need aligned operands
/// (64 bytes in fp32, 32 in the half-precision copy). The padding is no parameter: n_params counts
/// the parameters (nerf-pytorch's count), n_floats what the network spans in the buffer. Checkpoints
/// store the tensors only, and the initial draws are keyed by a parameter's index without padding
/// (LinearLayer::param_index), so neither depends on the padding.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace nerf {

/// Floats: every layer's (and so every network's) first float sits at a multiple of this.
constexpr size_t kMlpLayerAlignment = 16;

struct MlpSpec {
	int depth = 8;            ///< D
	int width = 256;          ///< W
	int in_pts = 63;          ///< width of gamma(x)
	int in_views = 27;        ///< width of gamma(d)
	bool use_viewdirs = false;
	int output_ch = 4;        ///< 5 when N_importance > 0, else 4 (used only without viewdirs)
	std::vector<int> skips{4};

	/// Floats per sample in the raw output: 4 with viewdirs (rgb, sigma), else output_ch.
	int raw_width() const { return use_viewdirs ? 4 : output_ch; }
	bool operator==(const MlpSpec& o) const {
		return depth == o.depth && width == o.width && in_pts == o.in_pts && in_views == o.in_views &&
		       use_viewdirs == o.use_viewdirs && output_ch == o.output_ch && skips == o.skips;
	}
};

struct LinearLayer {
	std::string name;          ///< e.g. "pts_linears.3"
	int in = 0, out = 0;
	size_t weight_offset = 0;  ///< floats from the start of the flat buffer (a multiple of kMlpLayerAlignment)
	/// weight_offset + in * out: the bias follows its weight directly (a layer is one contiguous
	/// run of n_params() floats), aligned too whenever in * out is, i.e. for every width that is a
	/// multiple of 32 (nerf-pytorch's 256 included).
	size_t bias_offset = 0;
	size_t param_index = 0;    ///< the weight's first element counted over all parameters, without padding
	size_t n_params() const { return (size_t)in * out + out; }
};

struct MlpLayout {
	MlpSpec spec;
	std::vector<LinearLayer> layers;  ///< state-dict order
	size_t offset = 0;                ///< first float of this network in the flat buffer
	size_t n_params = 0;              ///< parameters (weights and biases), padding not counted
	size_t n_floats = 0;              ///< floats spanned from offset, padding included (a multiple of kMlpLayerAlignment)
	size_t first_param = 0;           ///< param_index of the first layer

	/// One past the last float: where a network laid out after this one starts.
	size_t end() const { return offset + n_floats; }
	/// The layer with this state-dict name (throws nerf::Error when absent).
	const LinearLayer& layer(const std::string& name) const;
};

/// Lays out one network starting at `offset` floats (a multiple of kMlpLayerAlignment; throws
/// nerf::Error otherwise), its parameters counted from `first_param`.
MlpLayout make_mlp_layout(const MlpSpec& spec, size_t offset = 0, size_t first_param = 0);
/// Lays out a network directly after `previous` in the same flat buffer (the fine after the coarse).
inline MlpLayout make_mlp_layout_after(const MlpSpec& spec, const MlpLayout& previous) {
	return make_mlp_layout(spec, previous.end(), previous.first_param + previous.n_params);
}

/// True when pts_linears.(i) takes cat([gamma(x), h]) (i.e. i-1 is a skip layer).
inline bool layer_takes_skip(const MlpSpec& spec, int i) {
	for (int s : spec.skips)
		if (i == s + 1) return true;
	return false;
}

} // namespace nerf
