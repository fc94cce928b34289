// The small bias-free MLPs (include/nerf/small_mlp.h) on the CPU against a float64 implementation of the
// same network written as plain loops: forward values, parameter and input gradients, strided inputs
// and outputs, partial tiles and blocks, both ways of feeding backward, thread-count independence and
// the initialisation. The float64 gradients are themselves checked against central differences.
#include "nerf/backend.h"
#include "nerf/small_mlp.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace {

using nerf::SmallMlpCpuBackward;
using nerf::SmallMlpSpec;

const SmallMlpSpec kDensity{32, 64, 1, 16};
const SmallMlpSpec kColour{31, 64, 2, 3};

std::vector<float> uniform(size_t n, float lo, float hi, uint32_t seed) {
	std::mt19937 rng(seed);
	std::uniform_real_distribution<float> dist(lo, hi);
	std::vector<float> v(n);
	for (float& x : v) x = dist(rng);
	return v;
}

// ---------------------------------------------------------------------------------------------
// float64 reference: rows of the given strides, weights [out, in] one after another.

struct Reference {
	std::vector<double> out;        // [n, spec.out]
	std::vector<double> dparams;    // [n_params]
	std::vector<double> din;        // [n, spec.in]
	std::vector<double> out_abs;    // sum of |terms| of each output (its rounding scale)
};

/// Forward of one row; pre[l]: pre-activations of hidden layer l.
std::vector<double> ref_forward_row(const SmallMlpSpec& s, const std::vector<double>& w, const std::vector<double>& x,
                                    std::vector<std::vector<double>>* hidden) {
	std::vector<double> h = x;
	for (int l = 0; l <= s.hidden_layers; ++l) {
		const int in = nerf::small_mlp_layer_in(s, l), out = nerf::small_mlp_layer_out(s, l);
		const size_t off = nerf::small_mlp_layer_offset(s, l);
		std::vector<double> y(out, 0.0);
		for (int o = 0; o < out; ++o)
			for (int i = 0; i < in; ++i) y[o] += w[off + (size_t)o * in + i] * h[i];
		if (l < s.hidden_layers) {
			for (double& v : y) v = v > 0 ? v : 0;
			if (hidden) hidden->push_back(y);
		}
		h = y;
	}
	return h;
}

Reference reference(const SmallMlpSpec& s, const std::vector<float>& params, const std::vector<float>& in, int in_stride,
                    const std::vector<float>& dout, int dout_stride, size_t n) {
	const std::vector<double> w(params.begin(), params.end());
	Reference r;
	r.out.assign(n * s.out, 0.0);
	r.dparams.assign(w.size(), 0.0);
	r.din.assign(n * s.in, 0.0);
	for (size_t row = 0; row < n; ++row) {
		std::vector<double> x(in.begin() + row * in_stride, in.begin() + row * in_stride + s.in);
		std::vector<std::vector<double>> hidden;
		const std::vector<double> y = ref_forward_row(s, w, x, &hidden);
		std::copy(y.begin(), y.end(), r.out.begin() + row * s.out);
		// Backward: g = dL/dy of the current layer's output (post-activation for hidden layers).
		std::vector<double> g(dout.begin() + row * dout_stride, dout.begin() + row * dout_stride + s.out);
		for (int l = s.hidden_layers; l >= 0; --l) {
			const int li = nerf::small_mlp_layer_in(s, l), lo = nerf::small_mlp_layer_out(s, l);
			const size_t off = nerf::small_mlp_layer_offset(s, l);
			if (l < s.hidden_layers)
				for (int o = 0; o < lo; ++o) g[o] = hidden[l][o] > 0 ? g[o] : 0.0;  // through the ReLU
			const std::vector<double>& input = l == 0 ? x : hidden[l - 1];
			std::vector<double> gin(li, 0.0);
			for (int o = 0; o < lo; ++o)
				for (int i = 0; i < li; ++i) {
					r.dparams[off + (size_t)o * li + i] += g[o] * input[i];
					gin[i] += g[o] * w[off + (size_t)o * li + i];
				}
			g = gin;
		}
		std::copy(g.begin(), g.end(), r.din.begin() + row * s.in);
	}
	return r;
}

/// |got - ref| <= tol * max|ref| for every element (normwise: the values are sums with cancellation).
void require_close(const char* what, const std::vector<float>& got, const std::vector<double>& ref, double tol) {
	REQUIRE(got.size() == ref.size());
	double scale = 0.0, worst = 0.0;
	size_t worst_i = 0;
	for (double v : ref) scale = std::max(scale, std::fabs(v));
	REQUIRE(scale > 0.0);
	size_t non_finite = 0;
	for (size_t i = 0; i < ref.size(); ++i) {
		non_finite += !std::isfinite(got[i]);
		const double e = std::fabs((double)got[i] - ref[i]);
		if (e > worst) {
			worst = e;
			worst_i = i;
		}
	}
	INFO(what << ": worst |error| " << worst << " at " << worst_i << " (got " << got[worst_i] << ", want "
	          << ref[worst_i] << "), max |ref| " << scale);
	CHECK(non_finite == 0);
	CHECK(worst <= tol * scale);
}

struct Problem {
	SmallMlpSpec spec;
	size_t n;
	int in_stride, out_stride, dout_stride, din_stride;
	std::vector<float> params, in, dout;
};

Problem make_problem(const SmallMlpSpec& s, size_t n, int in_pad, int out_pad, uint32_t seed) {
	Problem p{s, n, s.in + in_pad, s.out + out_pad, s.out + out_pad + 2, s.in + in_pad + 1, {}, {}, {}};
	p.params.resize(nerf::small_mlp_params(s));
	nerf::init_small_mlp_params_host(p.params.data(), s, seed);
	p.in = uniform(n * p.in_stride, -1.0f, 1.0f, seed + 1);
	p.dout = uniform(n * p.dout_stride, -1.0f, 1.0f, seed + 2);
	return p;
}

struct Result {
	std::vector<float> out, dparams, din;
};

constexpr float kSentinel = 12345.5f;

/// Runs forward (keep) and backward on the CPU backend with `threads`; out and din start as sentinels
/// in every column and dparams at 0.25 (backward adds to it).
Result run(const Problem& p, int threads, SmallMlpCpuBackward mode, bool want_din = true) {
	auto backend = nerf::create_cpu_backend(threads);
	auto mlp = nerf::create_cpu_small_mlp(p.spec, p.n, mode);
	REQUIRE(mlp->spec() == p.spec);
	Result r;
	r.out.assign(p.n * p.out_stride, kSentinel);
	r.dparams.assign(p.params.size(), 0.25f);
	r.din.assign(p.n * p.din_stride, kSentinel);
	mlp->forward(r.out.data(), p.out_stride, p.params.data(), p.in.data(), p.in_stride, p.n, true);
	mlp->backward(r.dparams.data(), p.params.data(), p.dout.data(), p.dout_stride, want_din ? r.din.data() : nullptr,
	              p.din_stride, p.n);
	return r;
}

std::vector<float> columns(const std::vector<float>& rows, size_t n, int stride, int cols) {
	std::vector<float> v(n * cols);
	for (size_t r = 0; r < n; ++r)
		for (int c = 0; c < cols; ++c) v[r * cols + c] = rows[r * stride + c];
	return v;
}

void check_against_reference(const SmallMlpSpec& s, size_t n, SmallMlpCpuBackward mode) {
	const Problem p = make_problem(s, n, 5, 1, 7);
	const Result got = run(p, 2, mode);
	const Reference ref = reference(s, p.params, p.in, p.in_stride, p.dout, p.dout_stride, n);
	// fp32 sums of up to 64 terms per layer (forward, input gradient) and of n per weight gradient: the
	// observed normwise error is below 1e-6; 2e-5 still fails for one dropped or misplaced row of the
	// weight gradient (about 1/n = 4e-4 of it) or a wrong ReLU mask.
	require_close("forward", columns(got.out, n, p.out_stride, s.out), ref.out, 2e-5);
	std::vector<float> dparams = got.dparams;
	for (float& g : dparams) g -= 0.25f;  // backward accumulates onto what was there
	require_close("dL/dparams", dparams, ref.dparams, 2e-5);
	require_close("dL/din", columns(got.din, n, p.din_stride, s.in), ref.din, 2e-5);
	// The columns beyond the network's widths are never written.
	size_t touched = 0;
	for (size_t r = 0; r < n; ++r) {
		for (int c = s.out; c < p.out_stride; ++c) touched += got.out[r * p.out_stride + c] != kSentinel;
		for (int c = s.in; c < p.din_stride; ++c) touched += got.din[r * p.din_stride + c] != kSentinel;
	}
	CHECK(touched == 0);
}

} // namespace

TEST_CASE("small mlp: the float64 reference's gradients agree with central differences", "[small_mlp]") {
	// The reference itself is checked, so that the CPU network is compared with something right.
	const SmallMlpSpec s{5, 7, 2, 3};
	const Problem p = make_problem(s, 3, 0, 0, 3);
	const Reference ref = reference(s, p.params, p.in, p.in_stride, p.dout, p.dout_stride, p.n);
	auto loss = [&](const std::vector<double>& w, const std::vector<float>& in) {
		double L = 0.0;
		for (size_t r = 0; r < p.n; ++r) {
			std::vector<double> x(in.begin() + r * p.in_stride, in.begin() + r * p.in_stride + s.in);
			const std::vector<double> y = ref_forward_row(s, w, x, nullptr);
			for (int o = 0; o < s.out; ++o) L += y[o] * p.dout[r * p.dout_stride + o];
		}
		return L;
	};
	const std::vector<double> w(p.params.begin(), p.params.end());
	const double h = 1e-6;
	for (size_t k = 0; k < w.size(); ++k) {
		std::vector<double> wp = w, wm = w;
		wp[k] += h;
		wm[k] -= h;
		const double numeric = (loss(wp, p.in) - loss(wm, p.in)) / (2 * h);
		INFO("parameter " << k);
		CHECK(std::fabs(numeric - ref.dparams[k]) <= 1e-6 + 1e-6 * std::fabs(numeric));
	}
	// Input gradient: loss as a function of the inputs (kept in float, so step by a float-exact amount).
	for (size_t r = 0; r < p.n; ++r)
		for (int i = 0; i < s.in; ++i) {
			std::vector<float> ip = p.in, im = p.in;
			const float step = 1.0f / 1024;
			ip[r * p.in_stride + i] += step;
			im[r * p.in_stride + i] -= step;
			const double dx = (double)ip[r * p.in_stride + i] - (double)im[r * p.in_stride + i];
			const double numeric = (loss(w, ip) - loss(w, im)) / dx;
			INFO("row " << r << " input " << i);
			// The network is piecewise linear: exact unless a ReLU flips within the step (not for this seed).
			CHECK(std::fabs(numeric - ref.din[r * s.in + i]) <= 1e-9 + 1e-9 * std::fabs(numeric));
		}
}

TEST_CASE("small mlp: density and colour networks match float64 (strided rows, partial tiles and blocks)", "[small_mlp]") {
	// 2500 rows: blocks of 1024, 1024 and 452 rows; 452 = 7 tiles of 64 and a partial one of 4.
	for (SmallMlpCpuBackward mode : {SmallMlpCpuBackward::Keep, SmallMlpCpuBackward::Recompute}) {
		INFO("backward " << (mode == SmallMlpCpuBackward::Keep ? "keep" : "recompute"));
		SECTION("density") { check_against_reference(kDensity, 2500, mode); }
		SECTION("colour") { check_against_reference(kColour, 2500, mode); }
		SECTION("fewer rows than a tile") { check_against_reference(kColour, 37, mode); }
	}
}

TEST_CASE("small mlp: other widths and depths take the generic path and match float64", "[small_mlp]") {
	// Widths that are not multiples of 16 (masked last vectors everywhere), more than 64 columns (two
	// panels), and deeper networks.
	check_against_reference(SmallMlpSpec{7, 40, 3, 20}, 301, SmallMlpCpuBackward::Keep);
	check_against_reference(SmallMlpSpec{70, 96, 2, 1}, 300, SmallMlpCpuBackward::Recompute);
	check_against_reference(SmallMlpSpec{1, 16, 1, 17}, 129, SmallMlpCpuBackward::Keep);
}

TEST_CASE("small mlp: rgb into columns 0..2 of a 4-wide raw array leaves column 3 alone", "[small_mlp]") {
	const Problem p = make_problem(kColour, 1000, 1, 1, 11);  // in 31 in rows of 32, out 3 in rows of 4
	REQUIRE(p.out_stride == 4);
	auto backend = nerf::create_cpu_backend(1);
	auto mlp = backend->create_small_mlp(kColour, p.n, nerf::Precision::FP32);
	std::vector<float> raw(p.n * 4);
	for (size_t r = 0; r < p.n; ++r) raw[r * 4 + 3] = (float)r - 0.5f;  // density, written by another network
	mlp->forward(raw.data(), 4, p.params.data(), p.in.data(), p.in_stride, p.n, false);
	const Reference ref = reference(kColour, p.params, p.in, p.in_stride, p.dout, p.dout_stride, p.n);
	require_close("rgb", columns(raw, p.n, 4, 3), ref.out, 2e-5);
	size_t changed = 0;
	for (size_t r = 0; r < p.n; ++r) changed += raw[r * 4 + 3] != (float)r - 0.5f;
	CHECK(changed == 0);
}

TEST_CASE("small mlp: 1 and 2 threads and both backward modes give the same bits", "[small_mlp]") {
	// 20000 rows: 20 blocks, so two threads share them in an order that varies from run to run.
	for (const SmallMlpSpec& s : {kDensity, kColour}) {
		const Problem p = make_problem(s, 20000, 3, 1, 5);
		const Result one = run(p, 1, SmallMlpCpuBackward::Keep);
		const Result two = run(p, 2, SmallMlpCpuBackward::Keep);
		const Result recompute = run(p, 2, SmallMlpCpuBackward::Recompute);
		for (const Result* r : {&two, &recompute}) {
			CHECK(std::memcmp(one.out.data(), r->out.data(), one.out.size() * sizeof(float)) == 0);
			CHECK(std::memcmp(one.dparams.data(), r->dparams.data(), one.dparams.size() * sizeof(float)) == 0);
			CHECK(std::memcmp(one.din.data(), r->din.data(), one.din.size() * sizeof(float)) == 0);
		}
		// Without dL/din the parameter gradients are the same, and din is not touched.
		const Result no_din = run(p, 2, SmallMlpCpuBackward::Keep, false);
		CHECK(std::memcmp(one.dparams.data(), no_din.dparams.data(), one.dparams.size() * sizeof(float)) == 0);
		CHECK(std::all_of(no_din.din.begin(), no_din.din.end(), [](float v) { return v == kSentinel; }));
	}
}

TEST_CASE("small mlp: inference of more rows than max_batch equals the kept forward", "[small_mlp]") {
	const Problem p = make_problem(kDensity, 3000, 0, 0, 9);
	auto backend = nerf::create_cpu_backend(2);
	auto big = backend->create_small_mlp(kDensity, p.n, nerf::Precision::FP32);
	auto small = backend->create_small_mlp(kDensity, 100, nerf::Precision::FP32);
	std::vector<float> kept(p.n * p.out_stride), inferred(p.n * p.out_stride);
	big->forward(kept.data(), p.out_stride, p.params.data(), p.in.data(), p.in_stride, p.n, true);
	small->forward(inferred.data(), p.out_stride, p.params.data(), p.in.data(), p.in_stride, p.n, false);
	CHECK(std::memcmp(kept.data(), inferred.data(), kept.size() * sizeof(float)) == 0);
	// An inference pass after a kept one leaves nothing for backward.
	std::vector<float> grads(p.params.size());
	big->forward(kept.data(), p.out_stride, p.params.data(), p.in.data(), p.in_stride, p.n, true);
	big->forward(kept.data(), p.out_stride, p.params.data(), p.in.data(), p.in_stride, p.n, false);
	CHECK_THROWS_WITH(big->backward(grads.data(), p.params.data(), p.dout.data(), p.dout_stride, nullptr, 0, p.n),
	                  Catch::Contains("last forward kept 0"));
}

TEST_CASE("small mlp: bad sizes and strides are one clear error each", "[small_mlp]") {
	auto backend = nerf::create_cpu_backend(1);
	CHECK_THROWS_WITH(backend->create_small_mlp(SmallMlpSpec{0, 64, 1, 16}, 10, nerf::Precision::FP32),
	                  Catch::Contains("in = 0"));
	CHECK_THROWS_WITH(nerf::small_mlp_params(SmallMlpSpec{32, 64, 0, 16}), Catch::Contains("hidden_layers = 0"));
	CHECK_THROWS_WITH(nerf::small_mlp_params(SmallMlpSpec{32, -4, 1, 16}), Catch::Contains("width = -4"));
	const Problem p = make_problem(kDensity, 10, 0, 0, 1);
	auto mlp = backend->create_small_mlp(kDensity, 10, nerf::Precision::FP32);
	std::vector<float> out(10 * 16), grads(p.params.size());
	CHECK_THROWS_WITH(mlp->forward(out.data(), 16, p.params.data(), p.in.data(), 31, 10, true),
	                  Catch::Contains("in_stride = 31 is less than the 32 columns"));
	CHECK_THROWS_WITH(mlp->forward(out.data(), 15, p.params.data(), p.in.data(), 32, 10, true),
	                  Catch::Contains("out_stride = 15"));
	CHECK_THROWS_WITH(mlp->forward(out.data(), 16, p.params.data(), p.in.data(), 32, 11, true),
	                  Catch::Contains("max_batch is 10"));
	CHECK_THROWS_WITH(mlp->backward(grads.data(), p.params.data(), p.dout.data(), 16, nullptr, 0, 10),
	                  Catch::Contains("last forward kept 0"));
	mlp->forward(out.data(), 16, p.params.data(), p.in.data(), 32, 10, true);
	CHECK_THROWS_WITH(mlp->backward(grads.data(), p.params.data(), p.dout.data(), 16, nullptr, 0, 9),
	                  Catch::Contains("backward of 9 rows"));
	CHECK_THROWS_WITH(mlp->backward(grads.data(), p.params.data(), p.dout.data(), 16, grads.data(), 30, 10),
	                  Catch::Contains("dL_din_stride = 30"));
}

TEST_CASE("small mlp: Xavier-uniform initialisation, deterministic in the seed", "[small_mlp]") {
	for (const SmallMlpSpec& s : {kDensity, kColour}) {
		std::vector<float> a(nerf::small_mlp_params(s)), b(a.size()), c(a.size());
		nerf::init_small_mlp_params_host(a.data(), s, 42);
		nerf::init_small_mlp_params_host(b.data(), s, 42);
		nerf::init_small_mlp_params_host(c.data(), s, 43);
		CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
		size_t same = 0;
		for (size_t k = 0; k < a.size(); ++k) same += a[k] == c[k];
		CHECK(same < a.size() / 1000 + 1);
		for (int l = 0; l <= s.hidden_layers; ++l) {
			const int in = nerf::small_mlp_layer_in(s, l), out = nerf::small_mlp_layer_out(s, l);
			// tiny-cuda-nn's fan-in / fan-out: the network's input and output widths padded to 16.
			const int fan_in = l == 0 ? (in + 15) / 16 * 16 : in;
			const int fan_out = l == s.hidden_layers ? (out + 15) / 16 * 16 : out;
			const double bound = std::sqrt(6.0 / (fan_in + fan_out));
			const size_t first = nerf::small_mlp_layer_offset(s, l), count = (size_t)in * out;
			double sum = 0.0, sq = 0.0, max_abs = 0.0;
			for (size_t k = first; k < first + count; ++k) {
				sum += a[k];
				sq += (double)a[k] * a[k];
				max_abs = std::max(max_abs, (double)std::fabs(a[k]));
			}
			INFO("layer " << l << ", " << count << " weights, bound " << bound);
			CHECK(max_abs <= bound * (1.0 + 1e-6));  // the bound is computed in float
			CHECK(max_abs >= bound * (1.0 - 20.0 / count));  // the largest of count uniform draws
			// U(-b, b): mean 0 with standard error b / sqrt(3 count); variance b^2 / 3 with standard error
			// sqrt(4/45) b^2 / sqrt(count) (about 0.3 b^2 / sqrt(count)); 5 standard errors each.
			const double mean = sum / count, var = sq / count - mean * mean;
			CHECK(std::fabs(mean) <= 5.0 * bound / std::sqrt(3.0 * count));
			CHECK(std::fabs(var - bound * bound / 3.0) <= 5.0 * bound * bound * 0.3 / std::sqrt((double)count));
		}
	}
	CHECK(nerf::small_mlp_params(kDensity) == 32 * 64 + 64 * 16);
	CHECK(nerf::small_mlp_params(kColour) == 31 * 64 + 64 * 64 + 64 * 3);
	CHECK(nerf::small_mlp_layer_offset(kColour, 2) == 31 * 64 + 64 * 64);
}
