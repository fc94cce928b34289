// Sampling along a ray, as nerf-pytorch's render_rays and sample_pdf.
//
// Stratified (coarse) samples: t_k = k / (S - 1) (linspace(0, 1, S));
//   z_k = near (1 - t_k) + far t_k, or with lindisp 1 / (1/near (1 - t_k) + 1/far t_k).
//   With perturb > 0: mids = (z_k + z_{k+1}) / 2, lower = [z_0, mids], upper = [mids, z_{S-1}],
//   z_k = lower_k + (upper_k - lower_k) u_k with one uniform draw u_k per sample.
//
// Inverse-CDF resampling (sample_pdf): bins = the S-1 midpoints of the coarse z, weights = the
// coarse weights [1:-1] (S-2 values). w += 1e-5; pdf = w / sum(w); cdf = [0, cumsum(pdf)] (S-1 entries).
// u = linspace(0, 1, Nf) when det, else uniform draws. idx = searchsorted(cdf, u, right=True): the first
// index with cdf[idx] > u. below = max(0, idx-1), above = min(len-1, idx);
// denom = cdf[above] - cdf[below], replaced by 1 when < 1e-5; t = (u - cdf[below]) / denom;
// sample = bins[below] + t (bins[above] - bins[below]).
// Outputs carry no gradient (the reference detaches z_samples).
#pragma once

#include "nerf/common.h"
#include "nerf/math/rng.h"

namespace nerf {

struct StratifiedSpec {
	float near = 2.0f, far = 6.0f;
	bool lindisp = false;
	bool perturb = true;  ///< the reference's perturb > 0
	uint64_t seed = 0;
	uint32_t step = 0;
};

/// Writes n_samples sorted depths for one ray. `ray` is the ray's global index (RNG counter).
NERF_HD inline void stratified_samples(float* __restrict__ z, int n_samples, uint32_t ray, const StratifiedSpec& spec) {
	const float inv_span = n_samples > 1 ? 1.0f / (float)(n_samples - 1) : 0.0f;
	for (int k = 0; k < n_samples; ++k) {
		const float t = (float)k * inv_span;
		z[k] = spec.lindisp ? 1.0f / ((1.0f / spec.near) * (1.0f - t) + (1.0f / spec.far) * t)
		                    : spec.near * (1.0f - t) + spec.far * t;
	}
	if (!spec.perturb) return;
	// Jitter in place from the front: lower_k needs the unperturbed z_{k-1}, so keep it aside.
	float previous = z[0];
	for (int k = 0; k < n_samples; ++k) {
		const float current = z[k];
		const float lower = k == 0 ? current : 0.5f * (previous + current);
		const float upper = k == n_samples - 1 ? current : 0.5f * (current + z[k + 1]);
		const float u = random_uniform(spec.seed, spec.step, ray, (uint32_t)k, RngStream::StratifiedJitter);
		z[k] = lower + (upper - lower) * u;
		previous = current;
	}
}

struct PdfSpec {
	bool det = false;  ///< the reference's det = (perturb == 0)
	uint64_t seed = 0;
	uint32_t step = 0;
};

/// sample_pdf for one ray. bins: n_bins edges; weights: n_bins - 1 values; writes n_out samples
/// (unsorted when !det, as the reference). cdf_scratch must hold n_bins floats.
NERF_HD inline void sample_pdf(float* __restrict__ out, const float* __restrict__ bins, const float* __restrict__ weights,
                               int n_bins, int n_out, uint32_t ray, const PdfSpec& spec, float* __restrict__ cdf_scratch) {
	const int n_weights = n_bins - 1;
	float total = 0.0f;
	for (int k = 0; k < n_weights; ++k) total += weights[k] + 1e-5f;
	// cumsum of pdf = w / total, accumulated in the same order as torch.cumsum.
	float running = 0.0f;
	cdf_scratch[0] = 0.0f;
	for (int k = 0; k < n_weights; ++k) {
		running += (weights[k] + 1e-5f) / total;
		cdf_scratch[k + 1] = running;
	}
	const float u_step = n_out > 1 ? 1.0f / (float)(n_out - 1) : 0.0f;
	for (int s = 0; s < n_out; ++s) {
		const float u = spec.det ? (float)s * u_step
		                         : random_uniform(spec.seed, spec.step, ray, (uint32_t)s, RngStream::PdfUniform);
		// searchsorted(right=True): first index whose cdf is strictly greater than u.
		int lo = 0, hi = n_bins;
		while (lo < hi) {
			const int mid = (lo + hi) >> 1;
			if (cdf_scratch[mid] <= u) lo = mid + 1;
			else hi = mid;
		}
		const int below = lo - 1 > 0 ? lo - 1 : 0;
		const int above = lo < n_bins - 1 ? lo : n_bins - 1;
		float denom = cdf_scratch[above] - cdf_scratch[below];
		if (denom < 1e-5f) denom = 1.0f;  // degenerate bin: the reference's where(denom < 1e-5, 1, denom)
		const float t = (u - cdf_scratch[below]) / denom;
		out[s] = bins[below] + t * (bins[above] - bins[below]);
	}
}

/// Sorts a short array in place (insertion sort: n is at most a few hundred and often nearly sorted).
NERF_HD inline void sort_small(float* v, int n) {
	for (int i = 1; i < n; ++i) {
		const float key = v[i];
		int j = i - 1;
		while (j >= 0 && v[j] > key) {
			v[j + 1] = v[j];
			--j;
		}
		v[j + 1] = key;
	}
}

/// out = sort(concat(a, b)) for sorted a and sorted b (the reference's torch.sort of the concatenation).
NERF_HD inline void merge_sorted(float* __restrict__ out, const float* __restrict__ a, int n_a, const float* __restrict__ b,
                                 int n_b) {
	int i = 0, j = 0, k = 0;
	while (i < n_a && j < n_b) out[k++] = (b[j] < a[i]) ? b[j++] : a[i++];
	while (i < n_a) out[k++] = a[i++];
	while (j < n_b) out[k++] = b[j++];
}

} // namespace nerf
