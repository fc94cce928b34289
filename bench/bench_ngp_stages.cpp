// bench_kernels rows of the hash-grid (ngp) field's stages, registered through stage_registry.h: the hash
// encoding forward and backward, spherical harmonics, the density activations, and Adam over the hash
// tables. Sizes: the default grid (16 levels, 2 features, 2^19 entries a level, N_min 16, N_max 2048 over
// lego's [-1.5, 1.5]^3: 6.1M entries, 12.2M floats) and 2^18 samples a batch (nerfacc's instant-ngp target
// of samples per step); --small: 8 levels of 2^14 and 4096 samples.
//
// Samples come in two orders: "rays", points marched along random rays through the box at lego's default
// step (diagonal / 1024, reflected at the faces), 128 per ray, as a training batch orders them (neighbouring
// samples share cells at the coarse levels); "random", uniform in the box, the worst case for the caches.
//
// Counting (per call):
//   lookups = n L 8 corner reads (forward) or corner updates (backward);
//   bytes   = points 12 n, the encoding or its gradient 4 L F n, and every corner's F floats: 4 F (read)
//             forward, 8 F (read + write) backward; the corners' cache-line reuse is not subtracted (the
//             count is the traffic of the lookups themselves: GB/s near the copy peak would mean the stage
//             costs no more than its lookups);
//   FLOPs   = per sample 6 (normalise) and per level 6 (pos) + 3 (1 - frac) + 16 (weights) + 2 F 8 (sum).
#include "common.h"
#include "stage_registry.h"

#include "nerf/backend.h"
#include "nerf/math/hash_grid.h"
#include "nerf/math/ngp_field.h"
#include "nerf/math/optim.h"
#include "nerf/math/spherical_harmonics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace nerf::bench {
namespace {

template <typename T> Buffer<T> to_device(Backend& b, const std::vector<T>& host) {
	Buffer<T> buf = b.allocate<T>(host.size());
	b.upload(buf.data(), host.data(), host.size() * sizeof(T));
	return buf;
}
template <typename T> std::vector<T> to_host(Backend& b, const Buffer<T>& buf) {
	std::vector<T> host(buf.size());
	b.download(host.data(), buf.data(), buf.size() * sizeof(T));
	return host;
}

struct NgpSizes {
	HashGridSpec grid;
	size_t n = 0;               ///< samples a batch
	size_t samples_per_ray = 128;
	size_t check_rows = 0;      ///< CPU: rows compared with the double reference
};

NgpSizes ngp_sizes(bool small) {
	const float lo[3] = {-1.5f, -1.5f, -1.5f}, hi[3] = {1.5f, 1.5f, 1.5f};
	NgpSizes s;
	s.grid = small ? make_hash_grid_spec(8, 2, 14, 16, 256.0f, lo, hi) : make_hash_grid_spec(16, 2, 19, 16, 2048.0f, lo, hi);
	s.n = small ? 4096 : (size_t)1 << 18;
	s.check_rows = small ? 4096 : 8192;
	return s;
}

/// Points [n, 3]: marched along rays (samples_per_ray consecutive samples a ray) or uniform in the box.
std::vector<float> sample_points(const NgpSizes& s, bool along_rays, uint64_t seed) {
	std::mt19937_64 rng(seed);
	std::uniform_real_distribution<double> unit(0.0, 1.0);
	std::normal_distribution<double> normal(0.0, 1.0);
	const HashGridSpec& g = s.grid;
	std::vector<float> p(3 * s.n);
	if (!along_rays) {
		for (size_t i = 0; i < s.n; ++i)
			for (int d = 0; d < 3; ++d) p[3 * i + d] = (float)(g.aabb_min[d] + unit(rng) * (g.aabb_max[d] - g.aabb_min[d]));
		return p;
	}
	double diag = 0.0;
	for (int d = 0; d < 3; ++d) diag += std::pow((double)g.aabb_max[d] - g.aabb_min[d], 2.0);
	const double step = std::sqrt(diag) / 1024.0;
	for (size_t first = 0; first < s.n; first += s.samples_per_ray) {
		double x[3], dir[3], norm = 0.0;
		for (int d = 0; d < 3; ++d) {
			x[d] = g.aabb_min[d] + unit(rng) * (g.aabb_max[d] - g.aabb_min[d]);
			dir[d] = normal(rng);
			norm += dir[d] * dir[d];
		}
		for (double& c : dir) c /= std::sqrt(norm);
		for (size_t k = first; k < std::min(s.n, first + s.samples_per_ray); ++k) {
			for (int d = 0; d < 3; ++d) {
				x[d] += step * dir[d];
				if (x[d] > g.aabb_max[d]) x[d] = 2.0 * g.aabb_max[d] - x[d], dir[d] = -dir[d];
				if (x[d] < g.aabb_min[d]) x[d] = 2.0 * g.aabb_min[d] - x[d], dir[d] = -dir[d];
				p[3 * k + d] = (float)x[d];
			}
		}
	}
	return p;
}

// ---- double references, written from hash_grid.h's file comment (independent of its functions) ----

struct CornerRef {
	uint64_t entry;
	double weight;
};

void corners_ref(CornerRef out[8], const float* p, const HashGridSpec& g, int l) {
	const HashGridLevel& level = g.levels[l];
	uint64_t cell[3];
	double frac[3];
	for (int d = 0; d < 3; ++d) {
		double x = ((double)p[d] - g.aabb_min[d]) / ((double)g.aabb_max[d] - g.aabb_min[d]);
		x = std::min(std::max(x, 0.0), 1.0);
		const double pos = x * level.scale + 0.5;
		cell[d] = (uint64_t)std::floor(pos);
		frac[d] = pos - std::floor(pos);
	}
	for (int k = 0; k < 8; ++k) {
		uint64_t c[3];
		double w = 1.0;
		for (int d = 0; d < 3; ++d) {
			const int bit = (k >> d) & 1;
			c[d] = cell[d] + bit;
			w *= bit ? frac[d] : 1.0 - frac[d];
		}
		const uint64_t m32 = (uint64_t)1 << 32, r = level.resolution;
		const uint64_t index = level.hashed ? (c[0] ^ ((c[1] * 2654435761ull) % m32) ^ ((c[2] * 805459861ull) % m32))
		                                    : c[0] + c[1] * r + c[2] * r * r;
		out[k] = {level.offset + index % level.n_entries, w};
	}
}

double hash_lookups(const NgpSizes& s) { return (double)s.n * s.grid.n_levels * 8.0; }

std::string with_rate(const std::string& check, double lookups, const std::vector<double>& ms) {
	char b[64];
	std::snprintf(b, sizeof b, "; %.3f G lookups/s", lookups / (median_of(ms) * 1e-3) / 1e9);
	return check + b;
}

// ------------------------------------------------------------------------------------------------

void bench_hash_encode(StageBench& b, const NgpSizes& s, bool along_rays) {
	Backend& dev = b.device();
	const HashGridSpec& g = s.grid;
	const int L = g.n_levels, F = g.n_features_per_level, W = L * F;
	const std::string order = along_rays ? "rays" : "random";
	const std::string size = "n=" + std::to_string(s.n) + " " + order;
	const std::vector<float> points = sample_points(s, along_rays, along_rays ? 101 : 102);
	const std::vector<float> table = uniform_floats(hash_grid_table_floats(g), -1.0, 1.0, 103);
	const std::vector<float> dL_denc = uniform_floats(s.n * W, -1.0, 1.0, 104);
	Buffer<float> d_points = to_device(dev, points), d_table = to_device(dev, table), d_enc = dev.allocate<float>(s.n * W);
	Buffer<float> d_g = to_device(dev, dL_denc), d_grad = dev.allocate<float>(table.size());

	const std::string fwd = "hash_encode_forward";
	if (b.stage_wanted(fwd)) {
		auto run = [&] { dev.hash_encode(d_enc.data(), d_table.data(), d_points.data(), s.n, g); };
		run();
		const std::vector<float> got = to_host(dev, d_enc);
		StageCheck check(fwd);
		if (Backend* ref = b.reference()) {
			// The same float operations on both sides (explicit fmaf, IEEE division): bit for bit.
			Buffer<float> r_points = to_device(*ref, points), r_table = to_device(*ref, table), r_enc = ref->allocate<float>(s.n * W);
			ref->hash_encode(r_enc.data(), r_table.data(), r_points.data(), s.n, g);
			check.arrays("enc vs cpu", got, to_host(*ref, r_enc), Tolerance{0.0, 0.0});
		} else {
			// Against the formula in double on the first rows. The float pos is off the double one by two
			// roundings of values <= scale + 1 (2^-24 each); interpolation is continuous with slope <= 2 per
			// axis (table in [-1, 1]): |error| <= 3 * 2 * 2 * 2^-24 (scale + 1) + 8 roundings of the sum.
			for (int l = 0; l < L; ++l) {
				std::vector<float> got_l, ref_l;
				for (size_t i = 0; i < std::min(s.check_rows, s.n); ++i) {
					CornerRef c[8];
					corners_ref(c, &points[3 * i], g, l);
					for (int f = 0; f < F; ++f) {
						double v = 0.0;
						for (const CornerRef& k : c) v += k.weight * table[k.entry * F + f];
						ref_l.push_back((float)v);
						got_l.push_back(got[i * W + l * F + f]);
					}
				}
				const double atol = 12.0 * std::ldexp(1.0, -24) * (g.levels[l].scale + 1.0) + 8.0 * std::ldexp(1.0, -24);
				check.arrays("enc level " + std::to_string(l) + " vs double", got_l, ref_l, Tolerance{atol, 0.0});
			}
		}
		const auto ms = b.timed_repeats(run);
		const double bytes = (double)s.n * (12.0 + 4.0 * W) + hash_lookups(s) * 4.0 * F;
		const double flops = (double)s.n * (6.0 + L * (6.0 + 3.0 + 16.0 + 16.0 * F));
		b.add_stage_row(fwd, size, ms, bytes, flops, with_rate(check.summary(), hash_lookups(s), ms));
	}

	const std::string bwd = "hash_encode_backward";
	if (b.stage_wanted(bwd)) {
		dev.fill_zero(d_grad.data(), d_grad.bytes());
		auto run = [&] { dev.hash_encode_backward(d_grad.data(), d_g.data(), d_points.data(), s.n, g); };
		run();
		const std::vector<float> got = to_host(dev, d_grad);
		// The scatter in double, with each entry's count of contributions k and sum of their magnitudes
		// S: a float sum of k terms in any order is within k 2^-24 S of the exact one (each product w g is
		// rounded too: one more 2^-24 per term). The float weights are those of the float pos, which is off
		// by two roundings of values <= scale + 1 per axis (the forward's bound): |dw| <= 3 * 2 * 2^-24
		// (scale + 1) per term, times |g|; summed as `slack`. Where the float and double cells differ (a
		// point within an ulp of a face), corners of near-zero weight (<= that |dw|) land in other entries:
		// a floor of 4 such terms (|g| <= 1) per entry of the level. |error| <= (k + 1) 2^-24 S + slack + floor.
		const double u = std::ldexp(1.0, -24);
		std::vector<double> exact(table.size(), 0.0), magnitude(table.size(), 0.0), count(table.size(), 0.0),
		    slack(table.size(), 0.0);
		for (size_t i = 0; i < s.n; ++i)
			for (int l = 0; l < L; ++l) {
				CornerRef c[8];
				corners_ref(c, &points[3 * i], g, l);
				for (const CornerRef& k : c)
					for (int f = 0; f < F; ++f) {
						const double gi = dL_denc[i * W + l * F + f], term = k.weight * gi;
						const size_t e = k.entry * F + f;
						exact[e] += term;
						magnitude[e] += std::fabs(term);
						count[e] += 1.0;
						slack[e] += 6.0 * u * (g.levels[l].scale + 1.0) * std::fabs(gi);
					}
			}
		StageCheck check(bwd);
		std::vector<double> floor_of_level(L);
		for (int l = 0; l < L; ++l) floor_of_level[l] = 4.0 * 6.0 * u * (g.levels[l].scale + 1.0);
		auto worst_ratio = [&](const std::vector<float>& v) {
			double worst = 0.0;
			int l = 0;
			for (size_t e = 0; e < v.size(); ++e) {
				while (l + 1 < L && e >= (size_t)g.levels[l + 1].offset * F) ++l;
				const double bound = (count[e] + 1.0) * u * magnitude[e] + slack[e] + floor_of_level[l];
				worst = std::max(worst, std::fabs(v[e] - exact[e]) / bound);
			}
			return worst;
		};
		check.bound("dL_dtable vs double scatter (error / bound)", worst_ratio(got), 1.0);
		if (Backend* ref = b.reference()) {
			// The CPU's sums are in sample order, CUDA's atomics in any: both within the bound of the exact sum.
			Buffer<float> r_points = to_device(*ref, points), r_g = to_device(*ref, dL_denc), r_grad = ref->allocate<float>(table.size());
			ref->fill_zero(r_grad.data(), r_grad.bytes());
			ref->hash_encode_backward(r_grad.data(), r_g.data(), r_points.data(), s.n, g);
			check.bound("cpu dL_dtable vs double scatter (error / bound)", worst_ratio(to_host(*ref, r_grad)), 1.0);
		}
		size_t touched = 0;
		for (double c : count) touched += c > 0.0;
		const auto ms = b.timed_repeats(run);
		const double bytes = (double)s.n * (12.0 + 4.0 * W) + hash_lookups(s) * 8.0 * F;
		const double flops = (double)s.n * (6.0 + L * (6.0 + 3.0 + 16.0 + 16.0 * F));
		char touched_text[64];
		std::snprintf(touched_text, sizeof touched_text, "; %.1f%% of the table touched", 100.0 * touched / table.size());
		b.add_stage_row(bwd, size, ms, bytes, flops, with_rate(check.summary(), hash_lookups(s), ms) + touched_text);
	}
}

void bench_sh(StageBench& b, const NgpSizes& s) {
	const std::string stage = "sh_encode";
	if (!b.stage_wanted(stage)) return;
	Backend& dev = b.device();
	const size_t n_rays = s.n / s.samples_per_ray, stride = 32;
	std::vector<float> dirs = normal_floats(3 * n_rays, 1.0, 111);
	for (size_t r = 0; r < n_rays; ++r) {
		const double norm = std::sqrt((double)dirs[3 * r] * dirs[3 * r] + (double)dirs[3 * r + 1] * dirs[3 * r + 1] +
		                              (double)dirs[3 * r + 2] * dirs[3 * r + 2]);
		for (int d = 0; d < 3; ++d) dirs[3 * r + d] = (float)(dirs[3 * r + d] / norm);
	}
	std::vector<uint32_t> ray(s.n);
	for (size_t k = 0; k < s.n; ++k) ray[k] = (uint32_t)(k / s.samples_per_ray);
	Buffer<float> d_dirs = to_device(dev, dirs), d_enc = dev.allocate<float>(s.n * stride);
	Buffer<uint32_t> d_ray = to_device(dev, ray);
	dev.fill_zero(d_enc.data(), d_enc.bytes());
	auto run = [&] { dev.sh_encode(d_enc.data(), (int)stride, d_dirs.data(), d_ray.data(), s.n); };
	run();
	const std::vector<float> got = to_host(dev, d_enc);
	StageCheck check(stage);
	if (Backend* ref = b.reference()) {
		// Plain products and sums on both sides: bit for bit.
		Buffer<float> r_dirs = to_device(*ref, dirs), r_enc = ref->allocate<float>(s.n * stride);
		Buffer<uint32_t> r_ray = to_device(*ref, ray);
		ref->fill_zero(r_enc.data(), r_enc.bytes());
		ref->sh_encode(r_enc.data(), (int)stride, r_dirs.data(), r_ray.data(), s.n);
		check.arrays("sh vs cpu", got, to_host(*ref, r_enc), Tolerance{0.0, 0.0});
	} else {
		// The 16 polynomials in double (constants of spherical_harmonics.h's comments), columns 16..31 zero;
		// a few float roundings of O(1) terms: 2e-6 absolute.
		std::vector<float> expected(got.size(), 0.0f);
		const double k0 = 0.5 / std::sqrt(M_PI), k1 = std::sqrt(3.0) * k0, k2 = std::sqrt(15.0) * k0,
		             k20 = std::sqrt(5.0) * k0 / 2.0, k3a = std::sqrt(70.0) * k0 / 4.0, k3b = std::sqrt(105.0) * k0,
		             k3c = std::sqrt(42.0) * k0 / 4.0, k3d = std::sqrt(7.0) * k0 / 2.0;
		for (size_t k = 0; k < s.n; ++k) {
			const double x = dirs[3 * ray[k]], y = dirs[3 * ray[k] + 1], z = dirs[3 * ray[k] + 2];
			const double v[16] = {k0, -k1 * y, k1 * z, -k1 * x, k2 * x * y, -k2 * y * z, k20 * (3 * z * z - 1), -k2 * x * z,
			                      k2 / 2 * (x * x - y * y), k3a * y * (y * y - 3 * x * x), k3b * x * y * z,
			                      k3c * y * (1 - 5 * z * z), k3d * z * (5 * z * z - 3), k3c * x * (1 - 5 * z * z),
			                      k3b / 2 * z * (x * x - y * y), k3a * x * (3 * y * y - x * x)};
			for (int c = 0; c < 16; ++c) expected[k * stride + c] = (float)v[c];
		}
		check.arrays("sh vs double polynomials", got, expected, Tolerance{5e-6, 0.0});
	}
	const auto ms = b.timed_repeats(run);
	// bytes: sample_ray 4 + 16 floats written per row; the directions ([n / 128, 3]) stay in cache.
	// FLOPs: 6 squares and products, then ~30 for the 16 values.
	b.add_stage_row(stage, "n=" + std::to_string(s.n) + " stride 32", ms, (double)s.n * 68.0, (double)s.n * 36.0,
	                check.summary());
}

void bench_density(StageBench& b, const NgpSizes& s) {
	Backend& dev = b.device();
	const int raw_stride = 4, colour_stride = 32;
	std::vector<float> out = uniform_floats(s.n * kNgpDensityOutputs, -2.0, 2.0, 121);
	for (size_t k = 0; k < s.n; ++k) out[k * kNgpDensityOutputs] = 6.0f * out[k * kNgpDensityOutputs] + 4.0f;  // some above 15
	const std::vector<float> dL_draw = uniform_floats(s.n * raw_stride, -1.0, 1.0, 122),
	                         dL_dcolour = uniform_floats(s.n * colour_stride, -1.0, 1.0, 123);
	Buffer<float> d_out = to_device(dev, out), raw = dev.allocate<float>(s.n * raw_stride),
	              colour = dev.allocate<float>(s.n * colour_stride), g_raw = to_device(dev, dL_draw),
	              g_colour = to_device(dev, dL_dcolour), g_out = dev.allocate<float>(s.n * kNgpDensityOutputs);
	dev.fill_zero(raw.data(), raw.bytes());
	dev.fill_zero(colour.data(), colour.bytes());
	for (int backward = 0; backward < 2; ++backward) {
		const std::string stage = backward ? "ngp_density_backward" : "ngp_density_forward";
		if (!b.stage_wanted(stage)) continue;
		auto run = [&] {
			if (backward)
				dev.ngp_density_backward(g_out.data(), g_raw.data(), raw_stride, g_colour.data(), colour_stride, d_out.data(), s.n);
			else
				dev.ngp_density_forward(raw.data(), raw_stride, colour.data(), colour_stride, d_out.data(), s.n);
		};
		run();
		StageCheck check(stage);
		// Against double: exp(min(logit, 15)) (CUDA's expf within 2 ulp, glibc's within 1, plus the reference's
		// rounding and, backward, the product's: 5e-7 relative) and exact copies.
		std::vector<float> got, ref;
		if (backward) {
			got = to_host(dev, g_out);
			ref.resize(got.size());
			for (size_t k = 0; k < s.n; ++k) {
				ref[k * 16] = (float)(dL_draw[k * raw_stride + 3] * std::exp(std::min((double)out[k * 16], 15.0)));
				for (int c = 1; c < 16; ++c) ref[k * 16 + c] = dL_dcolour[k * colour_stride + 15 + c];
			}
		} else {
			const std::vector<float> r = to_host(dev, raw), c = to_host(dev, colour);
			for (size_t k = 0; k < s.n; ++k) {
				got.push_back(r[k * raw_stride + 3]);
				ref.push_back((float)std::exp(std::min((double)out[k * 16], 15.0)));
				for (int j = 1; j < 16; ++j) {
					got.push_back(c[k * colour_stride + 15 + j]);
					ref.push_back(out[k * 16 + j]);
				}
			}
		}
		check.arrays(backward ? "dL_ddensity_out vs double" : "density and features vs double", got, ref, Tolerance{0.0, 5e-7});
		const auto ms = b.timed_repeats(run);
		// bytes: forward reads 16 floats and writes 1 + 15; backward reads the logit, dL_draw's density and the
		// 15 feature gradients, and writes 16. FLOPs: one exp (and one multiply backward) per row.
		b.add_stage_row(stage, "n=" + std::to_string(s.n), ms, (double)s.n * (backward ? 4.0 * 33 : 4.0 * 32),
		                (double)s.n * (backward ? 2.0 : 1.0), check.summary());
	}
}

void bench_adam_tables(StageBench& b, const NgpSizes& s) {
	Backend& dev = b.device();
	const HashGridSpec& g = s.grid;
	const size_t n = hash_grid_table_floats(g);
	// The hash tables' Adam (instant-ngp: lr 1e-2, betas 0.9 / 0.99, eps 1e-15, no weight decay) with
	// tiny-cuda-nn's skip of zero gradients, for two gradients: every entry nonzero ("dense"), and the one
	// backward pass of a ray-ordered batch leaves ("batch": most fine-level entries untouched).
	AdamSpec spec;
	spec.lr = 1e-2f;
	spec.beta2 = 0.99f;
	spec.eps = 1e-15f;
	spec.skip_zero_grad = true;
	const std::vector<float> p_host = uniform_floats(n, -1e-4, 1e-4, 131), m_host = normal_floats(n, 1e-4, 132);
	std::vector<float> v_host(n);
	for (size_t i = 0; i < n; ++i) v_host[i] = m_host[i] * m_host[i] + 1e-10f;
	for (int sparse = 0; sparse < 2; ++sparse) {
		const std::string stage = "adam_hash_tables";
		if (!b.stage_wanted(stage)) continue;
		std::vector<float> g_host;
		if (sparse) {
			Buffer<float> d_points = to_device(dev, sample_points(s, true, 101)),
			              d_g = to_device(dev, uniform_floats(s.n * hash_grid_width(g), -1.0, 1.0, 104));
			Buffer<float> d_grad = dev.allocate<float>(n);
			dev.fill_zero(d_grad.data(), d_grad.bytes());
			dev.hash_encode_backward(d_grad.data(), d_g.data(), d_points.data(), s.n, g);
			g_host = to_host(dev, d_grad);
		} else {
			g_host = normal_floats(n, 1e-3, 133);
		}
		size_t nonzero = 0;
		for (float x : g_host) nonzero += x != 0.0f;
		const int t = 10;
		AdamCounter counter_host;
		counter_host.step = t - 1;
		Buffer<float> p = to_device(dev, p_host), m = to_device(dev, m_host), v = to_device(dev, v_host), grads = to_device(dev, g_host);
		Buffer<AdamCounter> counter = to_device(dev, std::vector<AdamCounter>{counter_host});
		auto run = [&] { dev.adam_step(p.data(), m.data(), v.data(), grads.data(), n, spec, counter.data(), nullptr); };
		run();
		const std::vector<float> got_p = to_host(dev, p), got_m = to_host(dev, m), got_v = to_host(dev, v);
		StageCheck check(stage);
		if (Backend* ref = b.reference()) {
			// Explicit fmaf on both sides (optim.h): bit for bit.
			Buffer<float> rp = to_device(*ref, p_host), rm = to_device(*ref, m_host), rv = to_device(*ref, v_host),
			              rg = to_device(*ref, g_host);
			Buffer<AdamCounter> rc = to_device(*ref, std::vector<AdamCounter>{counter_host});
			ref->adam_step(rp.data(), rm.data(), rv.data(), rg.data(), n, spec, rc.data(), nullptr);
			check.arrays("params vs cpu", got_p, to_host(*ref, rp), Tolerance{0.0, 0.0});
			check.arrays("m vs cpu", got_m, to_host(*ref, rm), Tolerance{0.0, 0.0});
			check.arrays("v vs cpu", got_v, to_host(*ref, rv), Tolerance{0.0, 0.0});
		} else {
			// torch's Adam in double (with the float betas) where the gradient is nonzero, bit for bit untouched
			// where it is 0. Bounds per element, from the float operations: m = fmaf(b1, m, (1 - b1) g) is two
			// roundings of its terms' magnitude T_m, v three of T_v; p's step (lr / bias1) m / denom is good to
			// ~8 roundings relative plus m's error carried through, and p itself is rounded once.
			const double u = std::ldexp(1.0, -24), b1 = spec.beta1, b2 = spec.beta2;
			const double bias1 = 1 - std::pow(b1, t), bias2 = 1 - std::pow(b2, t);
			double worst_p = 0.0, worst_m = 0.0, worst_v = 0.0;
			size_t skipped_changed = 0;
			for (size_t i = 0; i < n; ++i) {
				if (g_host[i] == 0.0f) {
					skipped_changed += got_p[i] != p_host[i] || got_m[i] != m_host[i] || got_v[i] != v_host[i];
					continue;
				}
				const double gi = g_host[i];
				const double mm = b1 * m_host[i] + (1 - b1) * gi, vv = b2 * v_host[i] + (1 - b2) * gi * gi;
				const double denom = std::sqrt(vv) / std::sqrt(bias2) + spec.eps;
				const double step = spec.lr / bias1 * mm / denom, pp = p_host[i] - step;
				const double t_m = std::fabs(b1 * m_host[i]) + std::fabs((1 - b1) * gi), t_v = vv;
				worst_m = std::max(worst_m, std::fabs(got_m[i] - mm) / (3 * u * t_m));
				worst_v = std::max(worst_v, std::fabs(got_v[i] - vv) / (4 * u * t_v));
				const double bound_p = u * std::fabs(pp) + 8 * u * std::fabs(step) + spec.lr / bias1 * 3 * u * t_m / denom;
				worst_p = std::max(worst_p, std::fabs(got_p[i] - pp) / bound_p);
			}
			check.require(skipped_changed == 0, std::to_string(skipped_changed) + " entries with a zero gradient changed");
			check.bound("params vs double Adam (error / bound)", worst_p, 1.0);
			check.bound("m vs double Adam (error / bound)", worst_m, 1.0);
			check.bound("v vs double Adam (error / bound)", worst_v, 1.0);
		}
		const auto ms = b.timed_repeats(run);
		// bytes: every gradient read (4 n), and p, m, v read and written where it is nonzero (24 per entry).
		// FLOPs: 14 per updated entry (as adam_step's row).
		char size[96];
		std::snprintf(size, sizeof size, "P=%zu %s %.0f%%", n, sparse ? "batch" : "dense", 100.0 * nonzero / n);
		b.add_stage_row(stage, size, ms, 4.0 * n + 24.0 * nonzero, 14.0 * nonzero, check.summary());
	}
}

void bench_ngp_stages(StageBench& b) {
	const NgpSizes s = ngp_sizes(b.small_sizes());
	for (bool along_rays : {true, false}) bench_hash_encode(b, s, along_rays);
	bench_sh(b, s);
	bench_density(b, s);
	bench_adam_tables(b, s);
}

const RegisterStageFamily kRegistered("ngp", bench_ngp_stages);

} // namespace
} // namespace nerf::bench
