// The CPU MLP against an independent float64 implementation of nerf-pytorch's NeRF.forward:
// forward values, and every parameter gradient against float64 central differences.
#include "nerf/backend.h"
#include "nerf/math/rng.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

using nerf::LinearLayer;
using nerf::MlpLayout;
using nerf::MlpSpec;

// y = x W^T + b for one sample, in double.
std::vector<double> linear(const std::vector<double>& x, const std::vector<double>& params, const LinearLayer& l) {
	std::vector<double> y(l.out);
	for (int o = 0; o < l.out; ++o) {
		double acc = params[l.bias_offset + o];
		for (int i = 0; i < l.in; ++i) acc += params[l.weight_offset + (size_t)o * l.in + i] * x[i];
		y[o] = acc;
	}
	return y;
}

std::vector<double> relu(std::vector<double> v) {
	for (double& x : v) x = x > 0 ? x : 0;
	return v;
}

std::vector<double> concat(const std::vector<double>& a, const std::vector<double>& b) {
	std::vector<double> c = a;
	c.insert(c.end(), b.begin(), b.end());
	return c;
}

// NeRF.forward for one sample, written straight from run_nerf_helpers.py.
std::vector<double> reference_forward(const MlpLayout& layout, const std::vector<double>& params,
                                      const std::vector<double>& pts, const std::vector<double>& views) {
	const MlpSpec& s = layout.spec;
	std::vector<double> h = pts;
	for (int i = 0; i < s.depth; ++i) {
		h = relu(linear(h, params, layout.layers[i]));
		for (int skip : s.skips)
			if (i == skip) h = concat(pts, h);
	}
	if (!s.use_viewdirs) return linear(h, params, layout.layer("output_linear"));
	const std::vector<double> alpha = linear(h, params, layout.layer("alpha_linear"));
	const std::vector<double> feature = linear(h, params, layout.layer("feature_linear"));
	const std::vector<double> hv = relu(linear(concat(feature, views), params, layout.layer("views_linears.0")));
	std::vector<double> rgb = linear(hv, params, layout.layer("rgb_linear"));
	return concat(rgb, alpha);
}

void check_mlp(bool use_viewdirs) {
	MlpSpec spec;
	spec.depth = 4;
	spec.width = 8;
	spec.in_pts = 5;
	spec.in_views = use_viewdirs ? 3 : 0;
	spec.use_viewdirs = use_viewdirs;
	spec.output_ch = 5;
	spec.skips = {1};
	const MlpLayout layout = nerf::make_mlp_layout(spec, 0);
	const int raw_width = spec.raw_width();
	const size_t n = 7;

	std::vector<float> params(layout.n_floats);
	nerf::init_mlp_params_host(params.data(), layout, 42);
	// Biases at PyTorch's init are small; shift them so that some ReLUs are on and some off.
	std::vector<float> pts(n * spec.in_pts), views(n * std::max(1, spec.in_views)), upstream(n * raw_width);
	for (size_t i = 0; i < pts.size(); ++i) pts[i] = 2.0f * nerf::random_uniform(1, 0, (uint32_t)i, 0, nerf::RngStream::Init) - 1.0f;
	for (size_t i = 0; i < views.size(); ++i) views[i] = 2.0f * nerf::random_uniform(1, 0, (uint32_t)i, 1, nerf::RngStream::Init) - 1.0f;
	for (size_t i = 0; i < upstream.size(); ++i) upstream[i] = 2.0f * nerf::random_uniform(1, 0, (uint32_t)i, 2, nerf::RngStream::Init) - 1.0f;

	auto backend = nerf::create_cpu_backend(1);
	auto mlp = backend->create_mlp(layout, n, nerf::Precision::FP32);
	std::vector<float> raw(n * raw_width);
	mlp->forward(raw.data(), params.data(), pts.data(), use_viewdirs ? views.data() : nullptr, n, true);
	std::vector<float> grads(layout.n_floats, 0.0f);
	mlp->backward(grads.data(), params.data(), upstream.data(), n);

	std::vector<double> params64(params.begin(), params.end());
	auto sample_inputs = [&](size_t s, std::vector<double>& p, std::vector<double>& v) {
		p.assign(pts.begin() + s * spec.in_pts, pts.begin() + (s + 1) * spec.in_pts);
		v.assign(views.begin() + s * spec.in_views, views.begin() + (s + 1) * spec.in_views);
	};
	// L = sum over samples and channels of upstream * raw, so dL/dparams is what backward returns.
	auto loss = [&](const std::vector<double>& prm) {
		double total = 0.0;
		std::vector<double> p, v;
		for (size_t s = 0; s < n; ++s) {
			sample_inputs(s, p, v);
			const std::vector<double> out = reference_forward(layout, prm, p, v);
			for (int c = 0; c < raw_width; ++c) total += upstream[s * raw_width + c] * out[c];
		}
		return total;
	};

	// Forward: float32 GEMMs vs float64; sums of <= 16 products of O(1) values -> 1e-5.
	{
		std::vector<double> p, v;
		double max_err = 0.0;
		for (size_t s = 0; s < n; ++s) {
			sample_inputs(s, p, v);
			const std::vector<double> out = reference_forward(layout, params64, p, v);
			for (int c = 0; c < raw_width; ++c) max_err = std::max(max_err, std::abs(out[c] - raw[s * raw_width + c]));
		}
		INFO("max forward error " << max_err);
		CHECK(max_err < 1e-5);
	}
	// Every parameter: float64 central difference. h = 1e-6 keeps truncation error far below the
	// float32 rounding of the analytic gradient; ReLU kinks are not crossed for these inputs
	// (the |pre-activation| are all far above h times the input scale). Every float of the buffer,
	// the layout's padding included: its numeric gradient is 0, and so must the analytic one be.
	const double h = 1e-6;
	double max_err = 0.0;
	size_t checked_nonzero = 0;
	for (size_t k = 0; k < layout.n_floats; ++k) {
		std::vector<double> plus = params64, minus = params64;
		plus[k] += h;
		minus[k] -= h;
		const double numeric = (loss(plus) - loss(minus)) / (2 * h);
		const double err = std::abs(numeric - grads[k]) / (1e-4 + std::abs(numeric));
		max_err = std::max(max_err, err);
		if (std::abs(numeric) > 1e-6) ++checked_nonzero;
		if (err > 1e-3) FAIL("parameter " << k << ": numeric " << numeric << " analytic " << grads[k]);
	}
	INFO("max relative gradient error " << max_err << " over " << layout.n_floats << " floats");
	CHECK(max_err < 1e-3);
	// The check means something only if most gradients are non-zero.
	CHECK(checked_nonzero > layout.n_params / 2);
	if (!use_viewdirs) {
		// views_linears.0 exists (as in the reference) but receives no gradient without viewdirs.
		const LinearLayer& views_layer = layout.layer("views_linears.0");
		for (size_t k = 0; k < views_layer.n_params(); ++k) CHECK(grads[views_layer.weight_offset + k] == 0.0f);
	}
}

} // namespace

TEST_CASE("MLP layout matches nerf-pytorch's state dict", "[mlp]") {
	MlpSpec spec;
	spec.use_viewdirs = true;
	const MlpLayout layout = nerf::make_mlp_layout(spec, 0);
	REQUIRE(layout.layers.size() == 12);
	CHECK(layout.layer("pts_linears.0").in == 63);
	CHECK(layout.layer("pts_linears.5").in == 63 + 256);
	CHECK(layout.layer("pts_linears.4").in == 256);
	CHECK(layout.layer("views_linears.0").in == 256 + 27);
	CHECK(layout.layer("views_linears.0").out == 128);
	CHECK(layout.layer("rgb_linear").in == 128);
	// nerf-pytorch's NeRF(D=8, W=256, input_ch=63, input_ch_views=27, use_viewdirs=True) has 595844 parameters.
	CHECK(layout.n_params == 595844);
	spec.use_viewdirs = false;
	spec.in_views = 0;
	spec.output_ch = 5;
	// ...and 527237 without viewdirs (views_linears.0 is W -> W/2 then).
	CHECK(nerf::make_mlp_layout(spec, 0).n_params == 527237);
}

TEST_CASE("MLP layout: every layer on a 16-float boundary, the padding no parameter and no draw", "[mlp]") {
	MlpSpec spec;
	spec.use_viewdirs = false;
	spec.in_views = 0;
	spec.output_ch = 5;  // 527237 parameters: the network after it would start at an odd float
	const MlpLayout coarse = nerf::make_mlp_layout(spec, 0);
	const MlpLayout fine = nerf::make_mlp_layout_after(spec, coarse);
	CHECK(coarse.n_params == 527237);
	CHECK(fine.n_params == 527237);
	CHECK(fine.offset == coarse.end());
	CHECK(fine.first_param == 527237);
	size_t padding = 0, params = 0;
	for (const MlpLayout* layout : {&coarse, &fine}) {
		size_t next = layout->offset, index = layout->first_param;
		for (const LinearLayer& l : layout->layers) {
			INFO(l.name);
			CHECK(l.weight_offset % nerf::kMlpLayerAlignment == 0);
			CHECK(l.bias_offset % nerf::kMlpLayerAlignment == 0);  // W = 256: in * out is a multiple of 16
			CHECK(l.bias_offset == l.weight_offset + (size_t)l.in * l.out);
			CHECK(l.weight_offset >= next);  // in order, no overlap
			CHECK(l.weight_offset - next < nerf::kMlpLayerAlignment);  // no more padding than alignment needs
			padding += l.weight_offset - next;
			// The initial draws are keyed by this index: the unpadded flat index of the layouts before
			// alignment, so that every initialisation (and so every CPU result) stayed the same.
			CHECK(l.param_index == index);
			index += l.n_params();
			params += l.n_params();
			next = l.weight_offset + l.n_params();
		}
		CHECK(layout->end() - next < nerf::kMlpLayerAlignment);
		padding += layout->end() - next;
		CHECK(layout->n_floats % nerf::kMlpLayerAlignment == 0);
	}
	CHECK(params + padding == fine.end());
	CHECK(padding > 0);  // 63 * 256 + 256 = 16384 is aligned, 256 * 5 + 5 (output_linear) is not
	// A network placed at an unaligned offset (the old fine offset, coarse.n_params) is refused.
	CHECK_THROWS_WITH(nerf::make_mlp_layout(spec, coarse.n_params),
	                  Catch::Contains("527237") && Catch::Contains("multiple of 16"));
	// Initialisation writes every parameter and leaves the padding as it was (zero).
	std::vector<float> buffer(fine.end(), 0.0f);
	nerf::init_mlp_params_host(buffer.data(), coarse, 1);
	nerf::init_mlp_params_host(buffer.data(), fine, 2);
	std::vector<char> is_param(buffer.size(), 0);
	for (const MlpLayout* layout : {&coarse, &fine})
		for (const LinearLayer& l : layout->layers)
			std::fill(is_param.begin() + (long)l.weight_offset, is_param.begin() + (long)(l.weight_offset + l.n_params()), 1);
	size_t zero_params = 0, nonzero_padding = 0;
	for (size_t i = 0; i < buffer.size(); ++i) {
		if (is_param[i]) zero_params += buffer[i] == 0.0f;
		else nonzero_padding += buffer[i] != 0.0f;
	}
	CHECK(nonzero_padding == 0);
	CHECK(zero_params < 8);  // a uniform draw is exactly 0 with probability ~2^-24 per parameter
}

TEST_CASE("CPU MLP forward and gradients match float64 with viewdirs", "[mlp]") { check_mlp(true); }
TEST_CASE("CPU MLP forward and gradients match float64 without viewdirs", "[mlp]") { check_mlp(false); }

TEST_CASE("PyTorch default Linear init bounds", "[mlp]") {
	MlpSpec spec;
	spec.use_viewdirs = true;
	const MlpLayout layout = nerf::make_mlp_layout(spec, 0);
	std::vector<float> params(layout.n_floats);
	nerf::init_mlp_params_host(params.data(), layout, 7);
	for (const LinearLayer& l : layout.layers) {
		const float bound = 1.0f / std::sqrt((float)l.in);
		float max_abs = 0.0f;
		double mean_sq = 0.0;
		for (size_t k = 0; k < l.n_params(); ++k) {
			max_abs = std::max(max_abs, std::abs(params[l.weight_offset + k]));
			mean_sq += (double)params[l.weight_offset + k] * params[l.weight_offset + k];
		}
		mean_sq /= (double)l.n_params();
		INFO(l.name);
		CHECK(max_abs <= bound);
		// U(-b, b) has variance b^2 / 3; the layers are large enough for 15% agreement (alpha_linear: 257 values).
		CHECK(mean_sq == Approx(bound * bound / 3.0).epsilon(0.15));
	}
}

TEST_CASE("CPU MLP at an offset in the flat buffer (the fine network) equals the same MLP at offset 0", "[mlp]") {
	MlpSpec spec;
	spec.depth = 3;
	spec.width = 8;
	spec.in_pts = 5;
	spec.in_views = 3;
	spec.use_viewdirs = true;
	spec.skips = {1};
	const size_t offset = 1008;  // a multiple of kMlpLayerAlignment (16), as every network's offset
	const MlpLayout at_zero = nerf::make_mlp_layout(spec, 0), shifted = nerf::make_mlp_layout(spec, offset);
	const size_t n = 2500;  // several row blocks
	std::vector<float> params(offset + at_zero.n_floats, 7.0f);
	nerf::init_mlp_params_host(params.data(), at_zero, 3);
	std::copy(params.begin(), params.begin() + at_zero.n_floats, params.begin() + offset);
	std::vector<float> pts(n * 5), views(n * 3), upstream(n * 4);
	for (size_t i = 0; i < pts.size(); ++i) pts[i] = std::sin(0.37f * i);
	for (size_t i = 0; i < views.size(); ++i) views[i] = std::cos(0.11f * i);
	for (size_t i = 0; i < upstream.size(); ++i) upstream[i] = std::sin(1.3f * i + 0.5f);

	auto backend = nerf::create_cpu_backend(2);
	auto run = [&](const MlpLayout& layout, std::vector<float>& raw, std::vector<float>& grads) {
		auto mlp = backend->create_mlp(layout, n, nerf::Precision::FP32);
		raw.assign(n * 4, 0.0f);
		grads.assign(params.size(), 0.0f);
		mlp->forward(raw.data(), params.data(), pts.data(), views.data(), n, true);
		mlp->backward(grads.data(), params.data(), upstream.data(), n);
	};
	std::vector<float> raw0, grads0, raw1, grads1;
	run(at_zero, raw0, grads0);
	run(shifted, raw1, grads1);
	CHECK(std::memcmp(raw0.data(), raw1.data(), raw0.size() * sizeof(float)) == 0);
	CHECK(std::memcmp(grads0.data(), grads1.data() + offset, at_zero.n_floats * sizeof(float)) == 0);
	// Nothing outside the shifted network's slice is touched.
	for (size_t k = 0; k < offset; ++k) REQUIRE(grads1[k] == 0.0f);
}
