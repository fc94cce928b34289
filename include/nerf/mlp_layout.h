/// @file mlp_layout.h
/// @brief Where each layer of nerf-pytorch's NeRF MLP lives in the flat parameter buffer.
///
/// Layers in state-dict order: pts_linears.0 .. pts_linears.{D-1}, views_linears.0 (always
/// present, as in the reference, though untrained without viewdirs), then with use_viewdirs
/// feature_linear, alpha_linear, rgb_linear; without, output_linear.
/// Each layer is a weight [out, in] (row-major, PyTorch's layout) followed by a bias [out].
/// Input of pts_linears.0 is gamma(x) (in_pts wide); after a skip layer i (i in skips) the next
/// layer's input is cat([gamma(x), h]); views_linears.0 takes cat([feature, gamma(d)]).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace nerf {

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
	size_t weight_offset = 0;  ///< floats from the start of the flat buffer
	size_t bias_offset = 0;
	size_t n_params() const { return (size_t)in * out + out; }
};

struct MlpLayout {
	MlpSpec spec;
	std::vector<LinearLayer> layers;  ///< state-dict order
	size_t offset = 0;                ///< first float of this network in the flat buffer
	size_t n_params = 0;

	/// The layer with this state-dict name (throws nerf::Error when absent).
	const LinearLayer& layer(const std::string& name) const;
};

/// Lays out one network starting at `offset` floats.
MlpLayout make_mlp_layout(const MlpSpec& spec, size_t offset);

/// True when pts_linears.(i) takes cat([gamma(x), h]) (i.e. i-1 is a skip layer).
inline bool layer_takes_skip(const MlpSpec& spec, int i) {
	for (int s : spec.skips)
		if (i == s + 1) return true;
	return false;
}

} // namespace nerf
