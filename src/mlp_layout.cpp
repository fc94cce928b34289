#include "nerf/mlp_layout.h"

#include "nerf/common.h"

namespace nerf {

const LinearLayer& MlpLayout::layer(const std::string& name) const {
	for (const LinearLayer& l : layers)
		if (l.name == name) return l;
	NERF_FAIL("MLP has no layer named '" << name << "'");
}

namespace {
size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
} // namespace

MlpLayout make_mlp_layout(const MlpSpec& spec, size_t offset, size_t first_param) {
	NERF_CHECK(spec.depth >= 1 && spec.width >= 1 && spec.in_pts >= 1);
	if (offset % kMlpLayerAlignment != 0)
		NERF_FAIL("make_mlp_layout: offset " << offset << " is not a multiple of " << kMlpLayerAlignment
		                                     << " floats (lay a second network out with make_mlp_layout_after)");
	MlpLayout layout;
	layout.spec = spec;
	layout.offset = offset;
	layout.first_param = first_param;
	size_t cursor = offset, param = first_param;
	auto add = [&](const std::string& name, int in, int out) {
		LinearLayer l;
		l.name = name;
		l.in = in;
		l.out = out;
		l.weight_offset = cursor;
		l.bias_offset = cursor + (size_t)in * out;
		l.param_index = param;
		cursor = round_up(cursor + l.n_params(), kMlpLayerAlignment);
		param += l.n_params();
		layout.layers.push_back(l);
	};
	for (int i = 0; i < spec.depth; ++i) {
		const int in = i == 0 ? spec.in_pts : (layer_takes_skip(spec, i) ? spec.in_pts + spec.width : spec.width);
		add("pts_linears." + std::to_string(i), in, spec.width);
	}
	// The reference creates views_linears even without viewdirs (input_ch_views = 0 then).
	add("views_linears.0", spec.width + (spec.use_viewdirs ? spec.in_views : 0), spec.width / 2);
	if (spec.use_viewdirs) {
		add("feature_linear", spec.width, spec.width);
		add("alpha_linear", spec.width, 1);
		add("rgb_linear", spec.width / 2, 3);
	} else {
		add("output_linear", spec.width, spec.output_ch);
	}
	layout.n_params = param - first_param;
	layout.n_floats = cursor - offset;
	return layout;
}

} // namespace nerf
