// Tests of include/nerf/math/sampling.h: stratified depths (render_rays), inverse-CDF resampling
// (sample_pdf, including the 1e-5 rules and searchsorted(right=True)), sort_small and merge_sorted.
#include <catch2/catch.hpp>

#include "nerf/math/sampling.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using namespace nerf;

namespace {

// The reference's cdf in float32: w + 1e-5, pdf = w / sum(w), cdf = [0, cumsum(pdf)]. It has to be
// float32 like torch's, because searchsorted compares u with these exact float values.
std::vector<float> reference_cdf_float(const std::vector<float>& weights) {
	std::vector<float> padded(weights.size());
	float total = 0.0f;
	for (size_t k = 0; k < weights.size(); ++k) {
		padded[k] = weights[k] + 1e-5f;
		total += padded[k];
	}
	std::vector<float> cdf(1, 0.0f);
	float running = 0.0f;
	for (float w : padded) {
		running += w / total;
		cdf.push_back(running);
	}
	return cdf;
}

struct PdfReference {
	double sample;
	int below, above;
};

// sample_pdf for one u: searchsorted(cdf, u, right=True) as std::upper_bound (first cdf > u), then the
// gather, the denom < 1e-5 -> 1 rule and the interpolation, in double.
PdfReference reference_sample_pdf(const std::vector<float>& bins, const std::vector<float>& cdf, float u) {
	const int idx = (int)(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
	const int last = (int)cdf.size() - 1;
	const int below = std::max(0, idx - 1), above = std::min(last, idx);
	double denom = (double)cdf[above] - (double)cdf[below];
	if (denom < 1e-5) denom = 1.0;
	const double t = ((double)u - (double)cdf[below]) / denom;
	return {(double)bins[below] + t * ((double)bins[above] - (double)bins[below]), below, above};
}

std::vector<float> run_sample_pdf(const std::vector<float>& bins, const std::vector<float>& weights, int n_out,
                                  uint32_t ray, const PdfSpec& spec) {
	REQUIRE(weights.size() + 1 == bins.size());
	std::vector<float> out(n_out), scratch(bins.size());
	sample_pdf(out.data(), bins.data(), weights.data(), (int)bins.size(), n_out, ray, spec, scratch.data());
	return out;
}

std::vector<float> run_stratified(int n_samples, uint32_t ray, const StratifiedSpec& spec) {
	std::vector<float> z(n_samples);
	stratified_samples(z.data(), n_samples, ray, spec);
	return z;
}

} // namespace

TEST_CASE("stratified_samples without perturb: linspace in depth, or in disparity with lindisp", "[math][sampling]") {
	StratifiedSpec spec;
	spec.perturb = false;
	spec.near = 2.0f;
	spec.far = 6.0f;
	const std::vector<float> z5 = run_stratified(5, 0, spec);
	const float expected5[5] = {2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
	for (int k = 0; k < 5; ++k) CHECK(z5[k] == expected5[k]);

	const std::vector<float> z64 = run_stratified(64, 123, spec);
	for (int k = 0; k < 64; ++k) CHECK(std::fabs(z64[k] - (2.0 + 4.0 * k / 63.0)) < 1e-6);

	spec.lindisp = true;
	spec.near = 1.0f;
	spec.far = 4.0f;
	// 1 / (1/near (1 - t) + 1/far t) at t = 0, 1/3, 2/3, 1: 1, 1/(2/3 + 1/12) = 4/3, 1/(1/3 + 1/6) = 2, 4.
	const std::vector<float> zd = run_stratified(4, 0, spec);
	const double expected_disp[4] = {1.0, 4.0 / 3.0, 2.0, 4.0};
	for (int k = 0; k < 4; ++k) CHECK(std::fabs(zd[k] - expected_disp[k]) < 1e-6);

	// linspace(0, 1, 1) = [0]: a single sample sits at near.
	spec.lindisp = false;
	CHECK(run_stratified(1, 0, spec)[0] == 1.0f);
}

TEST_CASE("stratified_samples with perturb: one uniform draw inside each stratum", "[math][sampling]") {
	for (bool lindisp : {false, true}) {
		StratifiedSpec spec;
		spec.lindisp = lindisp;
		spec.near = 2.0f;
		spec.far = 6.0f;
		spec.seed = 99;
		spec.step = 1234;
		const int S = 64;
		std::vector<double> grid(S);
		for (int k = 0; k < S; ++k) {
			const double t = (double)k / (S - 1);
			grid[k] = lindisp ? 1.0 / (1.0 / 2.0 * (1.0 - t) + 1.0 / 6.0 * t) : 2.0 * (1.0 - t) + 6.0 * t;
		}
		double fraction_sum = 0.0;
		int fraction_count = 0;
		for (uint32_t ray = 0; ray < 200; ++ray) {
			const std::vector<float> z = run_stratified(S, ray, spec);
			for (int k = 0; k < S; ++k) {
				// lower = [z_0, mids], upper = [mids, z_{S-1}]
				const double lower = k == 0 ? grid[0] : 0.5 * (grid[k - 1] + grid[k]);
				const double upper = k == S - 1 ? grid[S - 1] : 0.5 * (grid[k] + grid[k + 1]);
				INFO("lindisp " << lindisp << " ray " << ray << " sample " << k);
				CHECK(z[k] >= lower - 1e-6);
				CHECK(z[k] <= upper + 1e-6);
				if (k > 0) CHECK(z[k] >= z[k - 1]);
				// z = lower + (upper - lower) u with u the jitter stream's draw for (seed, step, ray, k).
				const double u = random_uniform(spec.seed, spec.step, ray, (uint32_t)k, RngStream::StratifiedJitter);
				CHECK(std::fabs(z[k] - (lower + (upper - lower) * u)) < 2e-6);
				if (upper > lower) {
					fraction_sum += (z[k] - lower) / (upper - lower);
					++fraction_count;
				}
			}
		}
		// The jitter is uniform within its stratum: mean 1/2, sd 0.289 / sqrt(~12600) = 2.6e-3.
		CHECK(std::fabs(fraction_sum / fraction_count - 0.5) < 5 * 2.6e-3);
	}
}

TEST_CASE("stratified_samples with perturb: reproducible per (seed, step, ray), different otherwise", "[math][sampling]") {
	StratifiedSpec spec;
	spec.seed = 7;
	spec.step = 10;
	const std::vector<float> base = run_stratified(32, 5, spec);
	CHECK(run_stratified(32, 5, spec) == base);
	auto count_differences = [&](const std::vector<float>& other) {
		int n = 0;
		for (size_t k = 0; k < base.size(); ++k) n += other[k] != base[k];
		return n;
	};
	StratifiedSpec other_seed = spec;
	other_seed.seed = 8;
	StratifiedSpec other_step = spec;
	other_step.step = 11;
	CHECK(count_differences(run_stratified(32, 5, other_seed)) >= 30);
	CHECK(count_differences(run_stratified(32, 5, other_step)) >= 30);
	CHECK(count_differences(run_stratified(32, 6, spec)) >= 30);
	// A single perturbed sample stays at near (its stratum is [near, near]).
	CHECK(run_stratified(1, 5, spec)[0] == 2.0f);
}

TEST_CASE("sample_pdf hand cases: the 1e-5 weight padding, the denom rule and searchsorted(right=True)", "[math][sampling]") {
	PdfSpec det;
	det.det = true;

	SECTION("bins [0,1,2,3], weights [0,1,0]: nearly all mass in [1, 2]") {
		const std::vector<float> bins = {0, 1, 2, 3}, weights = {0, 1, 0};
		// Padded weights (1e-5, 1 + 1e-5, 1e-5), total 1 + 3e-5: cdf = [0, a, a + b, 1].
		const double total = 1.0 + 3e-5, a = 1e-5 / total, b = (1.0 + 1e-5) / total;
		const std::vector<float> out = run_sample_pdf(bins, weights, 5, 0, det);  // u = 0, 1/4, 1/2, 3/4, 1
		// u = 0: the first cdf > 0 is cdf[1] = a, so below = 0, above = 1; denom = a < 1e-5 becomes 1
		// and t = 0: the sample is bins[0].
		CHECK(out[0] == 0.0f);
		// Interior u fall in [a, a + b): bins[1] + (u - a) / b.
		CHECK(std::fabs(out[1] - (1.0 + (0.25 - a) / b)) < 1e-6);
		CHECK(std::fabs(out[2] - (1.0 + (0.50 - a) / b)) < 1e-6);
		CHECK(std::fabs(out[3] - (1.0 + (0.75 - a) / b)) < 1e-6);
		// u = 1: the float32 cdf ends exactly at 1, no entry is > 1, so idx = 4, below = above = 3: bins[3].
		REQUIRE(reference_cdf_float(weights).back() == 1.0f);
		CHECK(out[4] == 3.0f);
	}

	SECTION("a degenerate middle bin: denom < 1e-5 is replaced by 1") {
		const std::vector<float> bins = {0, 1, 2, 3}, weights = {1, 0, 1};
		// cdf = [0, p, p + q, 1] with p = (1 + 1e-5)/(2 + 3e-5) = 0.4999975 and q = 1e-5/(2 + 3e-5) = 5e-6.
		const double total = 2.0 + 3e-5, p = (1.0 + 1e-5) / total, q = 1e-5 / total;
		REQUIRE(p < 0.5);
		REQUIRE(p + q > 0.5);
		const std::vector<float> out = run_sample_pdf(bins, weights, 3, 0, det);  // u = 0, 1/2, 1
		CHECK(out[0] == 0.0f);
		// u = 1/2 lies in the tiny bin [p, p + q): t = (u - p) / 1, not (u - p) / q = 1/2, so the sample
		// stays at the bin's left edge, 1 + 2.5e-6, instead of 1.5.
		CHECK(std::fabs(out[1] - (1.0 + (0.5 - p))) < 1e-6);
		CHECK(out[1] > 1.0f);
		CHECK(out[1] < 1.0001f);
		CHECK(out[2] == 3.0f);
	}

	SECTION("u = 1 with a degenerate last bin: right=True gives bins[-1]") {
		const std::vector<float> bins = {0, 1, 2}, weights = {10, 0};
		// cdf = [0, c, 1] with c = 10.00001 / 10.00002 (the last bin holds 1e-6 < 1e-5 of the mass).
		const double c = (10.0 + 1e-5) / (10.0 + 2e-5);
		REQUIRE(reference_cdf_float(weights).back() == 1.0f);
		const std::vector<float> out = run_sample_pdf(bins, weights, 3, 0, det);  // u = 0, 1/2, 1
		CHECK(out[0] == 0.0f);
		CHECK(std::fabs(out[1] - 0.5 / c) < 1e-6);
		// right=True: no cdf entry > 1, idx = 3, below = above = 2, sample = bins[2] = 2. (right=False
		// would pick idx = 2, below = 1, denom -> 1 and give 1 + (1 - c) = 1.000001.)
		CHECK(out[2] == 2.0f);
	}

	SECTION("an exact tie u = cdf[k] inside the range") {
		// Equal weights: cdf = [0, 1/2, 1] exactly; u = 1/2 -> right=True picks idx 2, t = 0: bins[1].
		const std::vector<float> bins = {0, 1, 3}, weights = {0.25f, 0.25f};
		REQUIRE(reference_cdf_float(weights)[1] == 0.5f);
		const std::vector<float> out = run_sample_pdf(bins, weights, 5, 0, det);  // u = 0, .25, .5, .75, 1
		const double expected[5] = {0.0, 0.5, 1.0, 2.0, 3.0};
		for (int s = 0; s < 5; ++s) CHECK(std::fabs(out[s] - expected[s]) < 1e-6);
	}
}

TEST_CASE("sample_pdf matches the reference on random rays, det and random, each sample in its own bin", "[math][sampling]") {
	std::mt19937 rng(2024);
	std::uniform_real_distribution<float> unit(0.0f, 1.0f);
	const int n_bins = 63, n_out = 128;  // N_samples = 64 coarse -> 63 mids, N_importance = 128
	for (int trial = 0; trial < 100; ++trial) {
		// Sorted bins (midpoints of a perturbed coarse set) and sparse, peaky weights as from a trained model.
		std::vector<float> bins(n_bins);
		float edge = 2.0f;
		for (float& b : bins) {
			b = edge;
			edge += 4.0f / 64.0f * (0.5f + unit(rng));
		}
		std::vector<float> weights(n_bins - 1);
		for (float& w : weights) w = unit(rng) < 0.7f ? 0.0f : std::pow(unit(rng), 3.0f);
		if (trial == 0) std::fill(weights.begin(), weights.end(), 0.0f);  // empty ray: uniform in the bins

		const std::vector<float> cdf = reference_cdf_float(weights);
		for (bool is_det : {true, false}) {
			PdfSpec spec;
			spec.det = is_det;
			spec.seed = 31;
			spec.step = 500;
			const uint32_t ray = 1000u + (uint32_t)trial;
			const std::vector<float> out = run_sample_pdf(bins, weights, n_out, ray, spec);
			for (int s = 0; s < n_out; ++s) {
				const float u = is_det ? (float)s / (float)(n_out - 1)
				                       : random_uniform(spec.seed, spec.step, ray, (uint32_t)s, RngStream::PdfUniform);
				const PdfReference ref = reference_sample_pdf(bins, cdf, u);
				INFO("trial " << trial << " det " << is_det << " sample " << s << " u " << u);
				// Interpolation of values below 6 in float: a few ulps of 6.
				CHECK(std::fabs(out[s] - ref.sample) < 4e-6);
				CHECK(out[s] >= bins[ref.below]);
				CHECK(out[s] <= bins[ref.above]);
				CHECK(out[s] >= bins.front());
				CHECK(out[s] <= bins.back());
				if (is_det && s > 0) CHECK(out[s] >= out[s - 1]);  // monotone in u
			}
		}
	}
}

TEST_CASE("sample_pdf random draws: reproducible, seeded, and distributed as the pdf", "[math][sampling]") {
	const std::vector<float> bins = {0.0f, 0.5f, 1.5f, 2.0f, 3.5f, 4.0f};
	const std::vector<float> weights = {0.1f, 0.5f, 0.0f, 0.3f, 0.1f};
	PdfSpec spec;
	spec.seed = 5;
	spec.step = 77;
	const std::vector<float> base = run_sample_pdf(bins, weights, 64, 3, spec);
	CHECK(run_sample_pdf(bins, weights, 64, 3, spec) == base);
	PdfSpec other_seed = spec;
	other_seed.seed = 6;
	const std::vector<float> other = run_sample_pdf(bins, weights, 64, 3, other_seed);
	int differences = 0;
	for (int s = 0; s < 64; ++s) differences += other[s] != base[s];
	CHECK(differences >= 60);

	// det ignores the seed, step and ray: u = linspace(0, 1, N) for every ray.
	PdfSpec det = spec;
	det.det = true;
	const std::vector<float> det_base = run_sample_pdf(bins, weights, 64, 3, det);
	det.seed = 6;
	det.step = 1;
	CHECK(run_sample_pdf(bins, weights, 64, 4, det) == det_base);

	// 20000 draws; each bin split in halves, since within a bin the samples are uniform (linear cdf).
	const int n_rays = 200, n_out = 100, n_draws = n_rays * n_out;
	std::vector<int> counts(2 * weights.size(), 0);
	for (uint32_t ray = 0; ray < (uint32_t)n_rays; ++ray)
		for (float sample : run_sample_pdf(bins, weights, n_out, ray, spec)) {
			const int bin = (int)(std::upper_bound(bins.begin(), bins.end(), sample) - bins.begin()) - 1;
			REQUIRE(bin >= 0);
			const int b = std::min(bin, (int)weights.size() - 1);
			const int half = sample >= 0.5f * (bins[b] + bins[b + 1]) ? 1 : 0;
			counts[2 * b + half]++;
		}
	double total = 0.0;
	for (float w : weights) total += w + 1e-5;
	double chi2 = 0.0;
	int cells = 0;
	for (size_t b = 0; b < weights.size(); ++b) {
		const double expected_half = n_draws * (weights[b] + 1e-5) / total / 2.0;
		for (int half = 0; half < 2; ++half) {
			const int count = counts[2 * b + half];
			if (expected_half < 1.0) {
				CHECK(count <= 3);  // the empty bin: 0.1 expected per half
				continue;
			}
			chi2 += (count - expected_half) * (count - expected_half) / expected_half;
			++cells;
		}
	}
	REQUIRE(cells == 8);
	// chi-square with 7 degrees of freedom: P(chi2 > 30) < 1e-4.
	INFO("chi-square = " << chi2);
	CHECK(chi2 < 30.0);
}

TEST_CASE("sort_small and merge_sorted agree with std::sort", "[math][sampling]") {
	std::mt19937 rng(11);
	std::uniform_real_distribution<float> depth(2.0f, 6.0f);
	for (int n : {0, 1, 2, 3, 17, 64, 192}) {
		for (int pattern = 0; pattern < 4; ++pattern) {
			std::vector<float> v(n);
			for (float& x : v) x = depth(rng);
			if (pattern == 1) std::sort(v.begin(), v.end());
			if (pattern == 2) std::sort(v.rbegin(), v.rend());
			if (pattern == 3)
				for (float& x : v) x = std::round(x);  // many ties
			std::vector<float> expected = v;
			std::sort(expected.begin(), expected.end());
			sort_small(v.data(), n);
			INFO("n " << n << " pattern " << pattern);
			CHECK(v == expected);
		}
	}
	for (int n_a : {0, 1, 5, 64}) {
		for (int n_b : {0, 1, 7, 128}) {
			std::vector<float> a(n_a), b(n_b);
			for (float& x : a) x = std::round(depth(rng) * 4.0f) / 4.0f;  // coarse values: ties across a and b
			for (float& x : b) x = std::round(depth(rng) * 4.0f) / 4.0f;
			std::sort(a.begin(), a.end());
			std::sort(b.begin(), b.end());
			std::vector<float> expected = a;
			expected.insert(expected.end(), b.begin(), b.end());
			std::sort(expected.begin(), expected.end());
			std::vector<float> out(n_a + n_b, -1.0f);
			merge_sorted(out.data(), a.data(), n_a, b.data(), n_b);
			INFO("n_a " << n_a << " n_b " << n_b);
			CHECK(out == expected);
		}
	}
}
