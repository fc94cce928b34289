// Tests of include/nerf/math/composite.h: composite_ray against a double implementation of
// nerf-pytorch's raw2outputs, and composite_ray_backward against float64 central differences of it;
// the packed form (occ_grid) likewise, and against the dense form on the same samples.
#include <catch2/catch.hpp>

#include "nerf/math/composite.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace nerf;

namespace {

struct ReferenceOutputs {
	double rgb[3] = {0, 0, 0};
	double depth = 0, disp = 0, acc = 0;
	std::vector<double> weights;
};

// raw2outputs in double. raw: [S, stride] (channels 0-2 rgb logits, 3 sigma); noise: per-sample value
// added to sigma before the relu; dt: each sample's interval (the packed form), or empty for the
// reference's gap to the next sample (1e10 after the last).
ReferenceOutputs reference_raw2outputs(const std::vector<double>& raw, int stride, const std::vector<float>& z,
                                       const float dir[3], const std::vector<double>& noise, bool white_bkgd,
                                       const std::vector<float>& dt = {}) {
	const int S = (int)z.size();
	const double dir_norm = std::sqrt((double)dir[0] * dir[0] + (double)dir[1] * dir[1] + (double)dir[2] * dir[2]);
	ReferenceOutputs out;
	out.weights.resize(S);
	double cumprod = 1.0;  // cumprod of [1, 1 - alpha + 1e-10], exclusive
	for (int k = 0; k < S; ++k) {
		const double gap = !dt.empty() ? (double)dt[k] : k + 1 < S ? (double)z[k + 1] - (double)z[k] : 1e10;
		const double dist = gap * dir_norm;
		const double x = raw[(size_t)k * stride + 3] + noise[k];
		const double alpha = 1.0 - std::exp(-std::max(x, 0.0) * dist);
		const double w = alpha * cumprod;
		out.weights[k] = w;
		for (int c = 0; c < 3; ++c) out.rgb[c] += w / (1.0 + std::exp(-raw[(size_t)k * stride + c]));
		out.depth += w * z[k];
		out.acc += w;
		cumprod *= 1.0 - alpha + 1e-10;
	}
	out.disp = 1.0 / std::max(1e-10, out.depth / out.acc);
	if (white_bkgd)
		for (double& c : out.rgb) c += 1.0 - out.acc;
	return out;
}

struct RayCase {
	int S = 64;
	int stride = 4;
	std::vector<float> z, raw;
	float dir[3] = {0.3f, -0.4f, -1.1f};  // |d| = 1.208, not 1: the deltas must be scaled by it
	uint32_t ray = 0;
	CompositeSpec spec;
};

std::vector<double> noise_of(const RayCase& rc) {
	std::vector<double> noise(rc.S, 0.0);
	if (rc.spec.raw_noise_std > 0.0f)
		for (int k = 0; k < rc.S; ++k)
			noise[k] = (double)(rc.spec.raw_noise_std *
			                    random_normal(rc.spec.seed, rc.spec.step, rc.ray, (uint32_t)k, rc.spec.noise_stream));
	return noise;
}

std::vector<double> as_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// A ray with sorted depths in [2, 6], rgb logits in [-3, 3] and densities |x| >= 0.15 away from the relu
// kink (also after the noise), so that central differences never straddle it.
RayCase make_ray(std::mt19937& rng, int S, int stride, const CompositeSpec& spec, uint32_t ray) {
	RayCase rc;
	rc.S = S;
	rc.stride = stride;
	rc.spec = spec;
	rc.spec.raw_stride = stride;
	rc.ray = ray;
	std::uniform_real_distribution<float> unit(0.0f, 1.0f);
	rc.z.resize(S);
	for (int k = 0; k < S; ++k) rc.z[k] = 2.0f + 4.0f * ((float)k + unit(rng)) / (float)S;
	std::sort(rc.z.begin(), rc.z.end());
	rc.raw.resize((size_t)S * stride);
	for (int k = 0; k < S; ++k) {
		float* r = rc.raw.data() + (size_t)k * stride;
		for (int c = 0; c < 3; ++c) r[c] = -3.0f + 6.0f * unit(rng);
		r[3] = (unit(rng) < 0.3f ? -1.0f : 1.0f) * (0.2f + 6.0f * unit(rng));
		for (int c = 4; c < stride; ++c) r[c] = 100.0f * unit(rng) - 50.0f;  // ignored channel
	}
	const std::vector<double> noise = noise_of(rc);
	for (int k = 0; k < S; ++k) {
		float& sigma = rc.raw[(size_t)k * stride + 3];
		const double x = sigma + noise[k];
		if (std::fabs(x) < 0.15) sigma += x >= 0.0 ? 0.3f : -0.3f;
	}
	return rc;
}

RayOutputs run_forward(const RayCase& rc, std::vector<float>* weights = nullptr) {
	if (weights) weights->assign(rc.S, std::numeric_limits<float>::quiet_NaN());
	return composite_ray(weights ? weights->data() : nullptr, rc.raw.data(), rc.z.data(), rc.dir, rc.S, rc.ray, rc.spec);
}

void check_forward(const RayCase& rc) {
	std::vector<float> weights;
	const RayOutputs out = run_forward(rc, &weights);
	const ReferenceOutputs ref = reference_raw2outputs(as_double(rc.raw), rc.stride, rc.z, rc.dir, noise_of(rc), rc.spec.white_bkgd);
	// float products of up to 64 transmittance factors and sums of 64 terms of order <= 6: relative
	// error about 64 * 6e-8 = 4e-6; 2e-5 (relative to max(1, |value|)) leaves a margin.
	auto close = [](double got, double want) { return std::fabs(got - want) <= 2e-5 * std::max(1.0, std::fabs(want)); };
	for (int c = 0; c < 3; ++c) {
		INFO("rgb channel " << c << " got " << out.rgb[c] << " want " << ref.rgb[c]);
		CHECK(close(out.rgb[c], ref.rgb[c]));
	}
	INFO("depth " << out.depth << " / " << ref.depth << ", acc " << out.acc << " / " << ref.acc << ", disp " << out.disp
	              << " / " << ref.disp);
	CHECK(close(out.depth, ref.depth));
	CHECK(close(out.acc, ref.acc));
	CHECK(std::fabs(out.disp - ref.disp) <= 5e-5 * std::fabs(ref.disp));
	for (int k = 0; k < rc.S; ++k) {
		INFO("weight " << k);
		CHECK(std::fabs(weights[k] - ref.weights[k]) <= 2e-6);
	}
}

struct NumericGradient {
	std::vector<double> dL_dx;
	double scale = 0.0;  // max |dL_dx|: the gradients' tolerances are relative to it
};

// Central differences of loss at x, in double: truncation ~h^2 |L'''| and rounding ~1e-16 / h, both < 1e-9.
template <typename Loss> NumericGradient numeric_gradient(const Loss& loss, const std::vector<double>& x) {
	NumericGradient g;
	g.dL_dx.resize(x.size());
	for (size_t i = 0; i < x.size(); ++i) {
		const double h = 1e-6 * std::max(1.0, std::fabs(x[i]));
		std::vector<double> plus = x, minus = x;
		plus[i] += h;
		minus[i] -= h;
		g.dL_dx[i] = (loss(plus) - loss(minus)) / (2.0 * h);
		g.scale = std::max(g.scale, std::fabs(g.dL_dx[i]));
	}
	return g;
}

// Checks composite_ray_backward for L = sum_c g_c rgb_c against central differences of the double
// reference. Returns the largest |analytic - numeric| / (|numeric| + scale) seen, for reporting.
double check_backward(const RayCase& rc, const float g[3], double abs_floor = 0.0) {
	const int n = rc.S * rc.stride;
	std::vector<float> grad(n, std::numeric_limits<float>::quiet_NaN()), scratch(rc.S);
	composite_ray_backward(grad.data(), g, rc.raw.data(), rc.z.data(), rc.dir, rc.S, rc.ray, rc.spec, scratch.data());

	const std::vector<double> noise = noise_of(rc);
	auto loss = [&](const std::vector<double>& raw) {
		const ReferenceOutputs o = reference_raw2outputs(raw, rc.stride, rc.z, rc.dir, noise, rc.spec.white_bkgd);
		return g[0] * o.rgb[0] + g[1] * o.rgb[1] + g[2] * o.rgb[2];
	};
	const NumericGradient ng = numeric_gradient(loss, as_double(rc.raw));
	const std::vector<double>& numeric = ng.dL_dx;
	const double scale = ng.scale;
	// The float backward carries relative errors of ~1e-6 per term (the T products, g - S, the
	// exponentials), and alpha = 1 - expf(.) has an absolute error of ~6e-8 whatever its size. Allowed:
	// 1e-4 relative plus 1e-5 of the ray's largest gradient (and abs_floor for saturated rays).
	double worst = 0.0;
	for (int i = 0; i < n; ++i) {
		const int k = i / rc.stride, channel = i % rc.stride;
		INFO("sample " << k << " channel " << channel << " analytic " << grad[i] << " numeric " << numeric[i]);
		REQUIRE(std::isfinite(grad[i]));
		if (channel >= 4) {
			CHECK(grad[i] == 0.0f);
			CHECK(numeric[i] == 0.0);
			continue;
		}
		const double error = std::fabs(grad[i] - numeric[i]);
		CHECK(error <= 1e-4 * std::fabs(numeric[i]) + 1e-5 * scale + abs_floor);
		worst = std::max(worst, error / (std::fabs(numeric[i]) + scale));
	}
	return worst;
}

} // namespace

TEST_CASE("composite_ray matches raw2outputs in double", "[math][composite]") {
	std::mt19937 rng(3);
	for (int S : {1, 2, 64, 192}) {
		for (bool white : {false, true}) {
			for (int stride : {4, 5}) {
				CompositeSpec spec;
				spec.white_bkgd = white;
				const RayCase rc = make_ray(rng, S, stride, spec, 0);
				INFO("S " << S << " white " << white << " stride " << stride);
				check_forward(rc);
			}
		}
	}
}

TEST_CASE("composite_ray: hand values of a two-sample ray", "[math][composite]") {
	// z = (2, 2.5), d = (0, 0, -2): deltas (1, 2e10). sigma = (ln 2, 1e-8): alpha = (1/2, 1), the last
	// one only because its delta is 1e10 |d| (1 - exp(-200)).
	// T = (1, 1/2 + 1e-10); w = (1/2, 1/2 + 1e-10); acc = 1 + 1e-10; depth = 1 + 1.25 = 2.25.
	RayCase rc;
	rc.S = 2;
	rc.z = {2.0f, 2.5f};
	rc.dir[0] = 0.0f;
	rc.dir[1] = 0.0f;
	rc.dir[2] = -2.0f;
	rc.raw = {0.0f, 100.0f, -100.0f, 0.69314718056f, 2.0f, 2.0f, 2.0f, 1e-8f};  // colours (1/2, 1, 0) then s(2)
	std::vector<float> weights;
	const RayOutputs out = run_forward(rc, &weights);
	const double s2 = 1.0 / (1.0 + std::exp(-2.0));
	CHECK(weights[0] == Approx(0.5).margin(1e-7));
	CHECK(weights[1] == Approx(0.5).margin(1e-7));
	CHECK(out.acc == Approx(1.0).margin(1e-7));
	CHECK(out.depth == Approx(2.25).margin(1e-6));
	CHECK(out.disp == Approx(1.0 / 2.25).margin(1e-6));
	CHECK(out.rgb[0] == Approx(0.25 + 0.5 * s2).margin(1e-6));
	CHECK(out.rgb[1] == Approx(0.5 + 0.5 * s2).margin(1e-6));
	CHECK(out.rgb[2] == Approx(0.5 * s2).margin(1e-6));

	// All densities <= 0: nothing is hit; rgb is black, or white with white_bkgd.
	rc.raw[3] = -1.0f;
	rc.raw[7] = 0.0f;
	rc.spec.white_bkgd = true;
	const RayOutputs empty = run_forward(rc, &weights);
	CHECK(weights[0] == 0.0f);
	CHECK(weights[1] == 0.0f);
	CHECK(empty.acc == 0.0f);
	for (float c : empty.rgb) CHECK(c == 1.0f);
	// (disp is then 1 / max(1e-10, 0/0): NaN in torch, where torch.max propagates NaN; not checked.)
}

TEST_CASE("composite_ray with raw_noise_std: noise = std * random_normal(seed, step, ray, k, stream)", "[math][composite]") {
	std::mt19937 rng(4);
	CompositeSpec spec;
	spec.raw_noise_std = 1.0f;
	spec.seed = 1234567;
	spec.step = 42;
	for (RngStream stream : {RngStream::RawNoiseCoarse, RngStream::RawNoiseFine}) {
		spec.noise_stream = stream;
		for (bool white : {false, true}) {
			spec.white_bkgd = white;
			const RayCase rc = make_ray(rng, 64, 4, spec, 777);
			check_forward(rc);
		}
	}
	// The noise really enters: another stream, seed, step or ray changes the result.
	RayCase rc = make_ray(rng, 64, 4, spec, 9);
	const float base = run_forward(rc).rgb[0];
	CHECK(run_forward(rc).rgb[0] == base);
	RayCase other = rc;
	other.spec.noise_stream = RngStream::RawNoiseCoarse;
	CHECK(run_forward(other).rgb[0] != base);
	other = rc;
	other.spec.seed += 1;
	CHECK(run_forward(other).rgb[0] != base);
	other = rc;
	other.spec.step += 1;
	CHECK(run_forward(other).rgb[0] != base);
	other = rc;
	other.ray += 1;
	CHECK(run_forward(other).rgb[0] != base);
	// Without noise the seed is irrelevant.
	other = rc;
	other.spec.raw_noise_std = 0.0f;
	const float clean = run_forward(other).rgb[0];
	other.spec.seed += 5;
	CHECK(run_forward(other).rgb[0] == clean);
}

TEST_CASE("composite_ray_backward matches float64 central differences", "[math][composite]") {
	std::mt19937 rng(5);
	std::uniform_real_distribution<float> coefficient(-1.0f, 1.0f);
	double worst = 0.0;
	for (bool white : {false, true}) {
		for (int stride : {4, 5}) {
			for (float noise_std : {0.0f, 1.0f}) {
				for (int S : {1, 3, 64}) {
					CompositeSpec spec;
					spec.white_bkgd = white;
					spec.raw_noise_std = noise_std;
					spec.seed = 99;
					spec.step = 3;
					spec.noise_stream = RngStream::RawNoiseFine;
					const RayCase rc = make_ray(rng, S, stride, spec, 17);
					const float g[3] = {coefficient(rng), coefficient(rng), coefficient(rng)};
					INFO("white " << white << " stride " << stride << " noise " << noise_std << " S " << S);
					worst = std::max(worst, check_backward(rc, g));
				}
			}
		}
	}
	INFO("worst scaled error " << worst);
	CHECK(worst < 1e-5);
}

TEST_CASE("composite_ray_backward: relu'(0) = 0 and saturated samples keep finite gradients", "[math][composite]") {
	std::mt19937 rng(6);
	const float g[3] = {0.7f, -0.4f, 0.9f};

	SECTION("sigma exactly 0 gets no density gradient, as torch's relu backward") {
		RayCase rc = make_ray(rng, 8, 4, CompositeSpec{}, 0);
		rc.raw[3 * 4 + 3] = 0.0f;
		std::vector<float> grad(8 * 4), scratch(8);
		composite_ray_backward(grad.data(), g, rc.raw.data(), rc.z.data(), rc.dir, 8, 0, rc.spec, scratch.data());
		CHECK(grad[3 * 4 + 3] == 0.0f);
		CHECK(grad[3 * 4 + 0] == 0.0f);  // weight 0: no colour gradient either
	}

	SECTION("alpha -> 1: very large densities") {
		for (int stride : {4, 5}) {
			for (bool white : {false, true}) {
				CompositeSpec spec;
				spec.white_bkgd = white;
				RayCase rc = make_ray(rng, 32, stride, spec, 0);
				// A wall at sample 5 (alpha rounds to 1 in float and in double), more at 12 and 20.
				rc.raw[5 * stride + 3] = 1e3f;
				rc.raw[12 * stride + 3] = 1e6f;
				rc.raw[20 * stride + 3] = 1e30f;
				rc.raw[6 * stride + 3] = 2.0f;
				std::vector<float> weights;
				const RayOutputs out = run_forward(rc, &weights);
				CHECK(std::isfinite(out.rgb[0]));
				CHECK(out.acc == Approx(1.0).margin(1e-6));
				// Behind the wall the transmittance is the reference's 1e-10 floor, not 0.
				CHECK(weights[6] > 0.0f);
				CHECK(weights[6] < 1e-10f);
				check_forward(rc);
				// Gradients behind the wall are ~1e-10; the absolute floor covers float's rounding there.
				check_backward(rc, g, 1e-12);
			}
		}
	}
}

// --- the packed form (occ_grid): marched samples with their own intervals dt -----------------------

namespace {

/// A marched ray: samples a fixed step apart, with gaps where empty cells were skipped.
void make_marched(std::mt19937& rng, RayCase& rc, std::vector<float>& dt) {
	std::uniform_real_distribution<float> unit(0.0f, 1.0f);
	const float step = 0.03f;
	float t = 2.0f + step * unit(rng);
	for (int k = 0; k < rc.S; ++k) {
		rc.z[k] = t;
		t += step * (unit(rng) < 0.2f ? (float)(2 + rng() % 20) : 1.0f);
	}
	dt.assign(rc.S, step);
	// Denser than the dense rays' samples: steps are short, so sigma must be larger to be seen.
	for (int k = 0; k < rc.S; ++k) rc.raw[(size_t)k * rc.stride + 3] *= 8.0f;
}

} // namespace

TEST_CASE("packed compositing fed the dense deltas equals the dense form bit for bit", "[math][composite][occupancy]") {
	std::mt19937 rng(21);
	int seen = 0;  // rays with some density, so that the comparison covers real weights
	for (int S : {1, 2, 64}) {
		for (float noise_std : {0.0f, 1.0f}) {
			for (bool white : {false, true}) {
				CompositeSpec spec;
				spec.white_bkgd = white;
				spec.raw_noise_std = noise_std;
				spec.seed = 8;
				spec.step = 2;
				const RayCase rc = make_ray(rng, S, 4, spec, 31);
				std::vector<float> dt(S);
				for (int k = 0; k < S; ++k) dt[k] = k + 1 < S ? rc.z[k + 1] - rc.z[k] : 1e10f;
				std::vector<float> w_dense(S), w_packed(S);
				const RayOutputs dense = composite_ray(w_dense.data(), rc.raw.data(), rc.z.data(), rc.dir, S, rc.ray, rc.spec);
				const RayOutputs packed =
					composite_ray_packed(w_packed.data(), rc.raw.data(), rc.z.data(), dt.data(), rc.dir, S, rc.ray, rc.spec);
				INFO("S " << S << " noise " << noise_std << " white " << white);
				CHECK(std::memcmp(&dense, &packed, sizeof(RayOutputs)) == 0);
				CHECK(std::memcmp(w_dense.data(), w_packed.data(), S * sizeof(float)) == 0);
				const float g[3] = {0.3f, -0.8f, 0.5f};
				std::vector<float> grad_dense(S * 4), grad_packed(S * 4), scratch(S);
				composite_ray_backward(grad_dense.data(), g, rc.raw.data(), rc.z.data(), rc.dir, S, rc.ray, rc.spec,
				                       scratch.data());
				composite_ray_packed_backward(grad_packed.data(), g, rc.raw.data(), dt.data(), rc.dir, S, rc.ray, rc.spec,
				                              scratch.data());
				CHECK(std::memcmp(grad_dense.data(), grad_packed.data(), grad_dense.size() * sizeof(float)) == 0);
				seen += dense.acc > 0.0f;
			}
		}
	}
	CHECK(seen >= 8);
}

TEST_CASE("packed compositing matches raw2outputs in double with per-sample intervals, and its backward central "
          "differences", "[math][composite][occupancy]") {
	std::mt19937 rng(22);
	std::uniform_real_distribution<float> coefficient(-1.0f, 1.0f);
	double worst = 0.0, min_acc = 1.0, max_acc = 0.0;
	int with_gradient = 0;
	for (int S : {1, 5, 80}) {
		for (bool white : {false, true}) {
			for (float noise_std : {0.0f, 1.0f}) {
				CompositeSpec spec;
				spec.white_bkgd = white;
				spec.raw_noise_std = noise_std;
				spec.seed = 4;
				spec.step = 77;
				RayCase rc = make_ray(rng, S, 4, spec, 12);
				std::vector<float> dt;
				make_marched(rng, rc, dt);
				INFO("S " << S << " white " << white << " noise " << noise_std);
				const std::vector<double> noise = noise_of(rc);
				std::vector<float> weights(S);
				const RayOutputs out =
					composite_ray_packed(weights.data(), rc.raw.data(), rc.z.data(), dt.data(), rc.dir, S, rc.ray, rc.spec);
				const ReferenceOutputs ref = reference_raw2outputs(as_double(rc.raw), 4, rc.z, rc.dir, noise, white, dt);
				for (int c = 0; c < 3; ++c) CHECK(out.rgb[c] == Approx(ref.rgb[c]).margin(2e-5));
				CHECK(out.acc == Approx(ref.acc).margin(2e-5));
				CHECK(out.depth == Approx(ref.depth).margin(2e-5 * 6));
				for (int k = 0; k < S; ++k) CHECK(weights[k] == Approx(ref.weights[k]).margin(2e-6));
				min_acc = std::min(min_acc, (double)out.acc);
				max_acc = std::max(max_acc, (double)out.acc);

				const float g[3] = {coefficient(rng), coefficient(rng), coefficient(rng)};
				std::vector<float> grad(S * 4), scratch(S);
				composite_ray_packed_backward(grad.data(), g, rc.raw.data(), dt.data(), rc.dir, S, rc.ray, rc.spec,
				                              scratch.data());
				auto loss = [&](const std::vector<double>& r) {
					const ReferenceOutputs o = reference_raw2outputs(r, 4, rc.z, rc.dir, noise, white, dt);
					return g[0] * o.rgb[0] + g[1] * o.rgb[1] + g[2] * o.rgb[2];
				};
				const NumericGradient ng = numeric_gradient(loss, as_double(rc.raw));
				const std::vector<double>& numeric = ng.dL_dx;
				const double scale = ng.scale;
				// As the dense backward's test: 1e-4 relative plus 1e-5 of the ray's largest gradient.
				for (size_t i = 0; i < numeric.size(); ++i) {
					INFO("element " << i << " analytic " << grad[i] << " numeric " << numeric[i]);
					const double error = std::fabs(grad[i] - numeric[i]);
					CHECK(error <= 1e-4 * std::fabs(numeric[i]) + 1e-5 * scale);
					worst = std::max(worst, error / (std::fabs(numeric[i]) + scale));
				}
				with_gradient += scale > 0.0;
			}
		}
	}
	INFO("worst scaled error " << worst);
	CHECK(worst < 1e-5);
	CHECK(with_gradient >= 10);  // of 12 cases: a lone sample with sigma <= 0 has none
	// The rays must span empty to opaque, or one end of the compositing goes unexercised.
	INFO("acc from " << min_acc << " to " << max_acc);
	CHECK(min_acc < 0.05);
	CHECK(max_acc > 0.95);
}

TEST_CASE("early_stop_count keeps the samples whose transmittance in front is at least the limit",
          "[math][composite][occupancy]") {
	std::mt19937 rng(23);
	int stopped = 0;
	for (int trial = 0; trial < 200; ++trial) {
		RayCase rc = make_ray(rng, 60, 4, CompositeSpec{}, 0);
		std::vector<float> dt;
		make_marched(rng, rc, dt);
		const int kept = early_stop_count(rc.raw.data(), dt.data(), rc.dir, rc.S, 4, 1e-4f);
		// Direct: T_k in double; the first k with T_k < 1e-4 (rays within rounding of the limit are skipped).
		const double norm = std::sqrt((double)rc.dir[0] * rc.dir[0] + (double)rc.dir[1] * rc.dir[1] + (double)rc.dir[2] * rc.dir[2]);
		double T = 1.0;
		int expected = rc.S;
		bool ambiguous = false;
		for (int k = 0; k < rc.S; ++k) {
			if (std::fabs(T / 1e-4 - 1.0) < 1e-4) ambiguous = true;
			if (T < 1e-4) {
				expected = k;
				break;
			}
			T *= 1.0 - (1.0 - std::exp(-std::max((double)rc.raw[k * 4 + 3], 0.0) * dt[k] * norm)) + 1e-10;
		}
		if (ambiguous) continue;
		CHECK(kept == expected);
		stopped += kept < rc.S;
	}
	CHECK(stopped > 20);  // the rays are opaque often enough for the stop to matter
	// No samples, and a transparent ray: all kept.
	const float raw[8] = {0, 0, 0, -1, 0, 0, 0, -2}, dt[2] = {0.1f, 0.1f}, dir[3] = {0, 0, 1};
	CHECK(early_stop_count(raw, dt, dir, 0, 4, 1e-4f) == 0);
	CHECK(early_stop_count(raw, dt, dir, 2, 4, 1e-4f) == 2);
}
