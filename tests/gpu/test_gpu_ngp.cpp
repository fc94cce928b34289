// The hash-grid (ngp) field's CUDA stages against the CPU backend: the hash encoding forward (the same
// float operations, explicit fmaf and IEEE division on both sides: bit for bit) and backward (atomic
// adds in any order: within the rounding bound of each entry's sum, computed here in double) at the
// production size (2^18 points and a partial last block, the default 16-level grid), on a level with
// hash collisions inside one lookup; spherical harmonics (plain products and sums: bit for bit); the
// density activations (CUDA's expf within 2 ulp of glibc's).
#include "gpu_test_util.h"

#include "nerf/math/hash_grid.h"

#include <cstring>
#include <set>

using namespace nerf_gpu_test;

namespace {

const float kBoxMin[3] = {-1.5f, -1.5f, -1.5f}, kBoxMax[3] = {1.5f, 1.5f, 1.5f};

/// Points along random rays through the box (128 a ray, lego's step), then some outside the box and at
/// its corners; n of them.
std::vector<float> field_points(size_t n, uint32_t seed) {
	std::mt19937 rng(seed);
	std::uniform_real_distribution<float> box(-1.5f, 1.5f);
	std::normal_distribution<float> normal(0.0f, 1.0f);
	std::vector<float> p(3 * n);
	for (size_t first = 0; first < n; first += 128) {
		float x[3], d[3], len = 0.0f;
		for (int k = 0; k < 3; ++k) {
			x[k] = box(rng);
			d[k] = normal(rng);
			len += d[k] * d[k];
		}
		for (float& c : d) c /= std::sqrt(len);
		for (size_t s = first; s < std::min(n, first + 128); ++s)
			for (int k = 0; k < 3; ++k) {
				x[k] += 0.00507f * d[k];
				if (x[k] > 1.5f) x[k] = 3.0f - x[k], d[k] = -d[k];
				if (x[k] < -1.5f) x[k] = -3.0f - x[k], d[k] = -d[k];
				p[3 * s + k] = x[k];
			}
	}
	const float extra[] = {-1.5f, -1.5f, -1.5f, 1.5f, 1.5f, 1.5f, -2.0f, 0.3f, 9.0f, 1.5f, -1.5f, 0.0f};
	for (size_t i = 0; i < sizeof extra / sizeof extra[0] && i < p.size(); ++i) p[p.size() - 1 - i] = extra[i];
	return p;
}

struct EncodeResult {
	std::vector<float> enc, grad;
};

EncodeResult run(Backend& be, const HashGridSpec& spec, const std::vector<float>& table, const std::vector<float>& points,
                 const std::vector<float>& dL_denc, const std::vector<float>& grad_start) {
	const size_t n = points.size() / 3;
	Buffer<float> d_table = to_backend(be, table), d_points = to_backend(be, points), d_g = to_backend(be, dL_denc),
	              d_grad = to_backend(be, grad_start), d_enc = be.allocate<float>(n * hash_grid_width(spec));
	be.hash_encode(d_enc.data(), d_table.data(), d_points.data(), n, spec);
	be.hash_encode_backward(d_grad.data(), d_g.data(), d_points.data(), n, spec);
	return {to_host(be, d_enc), to_host(be, d_grad)};
}

/// Each entry's exact gradient sum in double, the count of its terms and the sum of their magnitudes,
/// from the shared corners (both backends use the same entries and weights: the forward is bit-exact).
struct ScatterBound {
	std::vector<double> exact, count, magnitude;
};
ScatterBound scatter_in_double(const HashGridSpec& spec, const std::vector<float>& points, const std::vector<float>& dL_denc,
                               const std::vector<float>& grad_start) {
	const int F = spec.n_features_per_level, W = hash_grid_width(spec);
	ScatterBound b;
	b.exact.assign(grad_start.begin(), grad_start.end());
	b.count.assign(grad_start.size(), 1.0);
	b.magnitude.resize(grad_start.size());
	for (size_t e = 0; e < grad_start.size(); ++e) b.magnitude[e] = std::fabs(grad_start[e]);
	for (size_t s = 0; s < points.size() / 3; ++s) {
		float unit[3];
		hash_grid_normalize(unit, &points[3 * s], spec);
		for (int l = 0; l < spec.n_levels; ++l) {
			HashGridCorners c;
			hash_grid_corners(c, unit, spec.levels[l]);
			for (int k = 0; k < 8; ++k)
				for (int f = 0; f < F; ++f) {
					const size_t e = (size_t)c.entry[k] * F + f;
					const double term = (double)c.weight[k] * dL_denc[s * W + l * F + f];
					b.exact[e] += term;
					b.count[e] += 1.0;
					b.magnitude[e] += std::fabs(term);
				}
		}
	}
	return b;
}

/// Worst |got - exact| / ((k + 1) 2^-24 S): a float sum of k terms in any order (each product rounded
/// once more) lies within k 2^-24 S of the exact sum; <= 1 passes.
double worst_ratio(const std::vector<float>& got, const ScatterBound& b) {
	double worst = 0.0;
	for (size_t e = 0; e < got.size(); ++e) {
		const double bound = (b.count[e] + 1.0) * std::ldexp(1.0, -24) * b.magnitude[e];
		const double err = std::fabs(got[e] - b.exact[e]);
		worst = std::max(worst, bound > 0.0 ? err / bound : (err > 0.0 ? INFINITY : 0.0));
	}
	return worst;
}

} // namespace

TEST_CASE("gpu: hash encoding forward (bit for bit) and backward at production size match the CPU", "[gpu][ngp]") {
	Backends b = make_backends();
	const HashGridSpec spec = make_hash_grid_spec(16, 2, 19, 16, 2048.0f, kBoxMin, kBoxMax);
	// 2^18 + 37 points: 16 (sample, level) threads each, 256 a block: the last block is partial.
	const size_t n = ((size_t)1 << 18) + 37;
	REQUIRE((n * 16) % 256 != 0);
	const std::vector<float> points = field_points(n, 81);
	const std::vector<float> table = uniform(hash_grid_table_floats(spec), -1e-4f, 1e-4f, 82);  // instant-ngp's init
	const std::vector<float> dL_denc = uniform(n * hash_grid_width(spec), -1.0f, 1.0f, 83);
	const std::vector<float> grad_start = uniform(table.size(), -1e-3f, 1e-3f, 84);  // backward accumulates
	const EncodeResult cpu = run(*b.cpu, spec, table, points, dL_denc, grad_start);
	const EncodeResult gpu = run(*b.gpu, spec, table, points, dL_denc, grad_start);
	check_close("hash enc", cpu.enc, gpu.enc, {0.0, 0.0});
	CHECK(max_abs(gpu.enc) > 1e-5);
	const ScatterBound bound = scatter_in_double(spec, points, dL_denc, grad_start);
	const double cpu_ratio = worst_ratio(cpu.grad, bound), gpu_ratio = worst_ratio(gpu.grad, bound);
	std::printf("  hash dL_dtable: worst error / bound cpu %.3g gpu %.3g\n", cpu_ratio, gpu_ratio);
	CHECK(cpu_ratio <= 1.0);
	CHECK(gpu_ratio <= 1.0);
	size_t changed = 0;
	for (size_t e = 0; e < grad_start.size(); ++e) changed += gpu.grad[e] != grad_start[e];
	CHECK(changed > grad_start.size() / 4);
}

TEST_CASE("gpu: hash encoding with collisions inside one lookup matches the CPU", "[gpu][ngp]") {
	Backends b = make_backends();
	// 2^10 entries a level and resolutions up to 4096: every hashed level collides, and among random
	// points some have two of their own 8 corners on one entry (two atomic adds from one thread).
	const HashGridSpec spec = make_hash_grid_spec(8, 4, 10, 16, 4096.0f, kBoxMin, kBoxMax);
	std::vector<float> candidates = uniform(3 * 1000000, -1.5f, 1.5f, 91);  // ~0.3% of them qualify
	std::vector<float> points;
	for (size_t s = 0; s < candidates.size() / 3 && points.size() < 3 * 2001; ++s) {
		float unit[3];
		hash_grid_normalize(unit, &candidates[3 * s], spec);
		bool collides = false;
		for (int l = 0; l < spec.n_levels && !collides; ++l) {
			HashGridCorners c;
			hash_grid_corners(c, unit, spec.levels[l]);
			collides = std::set<uint32_t>(c.entry, c.entry + 8).size() < 8;
		}
		if (collides) points.insert(points.end(), &candidates[3 * s], &candidates[3 * s] + 3);
	}
	REQUIRE(points.size() == 3 * 2001);  // 2001 points, each with a collision among its own corners
	const std::vector<float> table = uniform(hash_grid_table_floats(spec), -1.0f, 1.0f, 92);
	const std::vector<float> dL_denc = uniform(points.size() / 3 * hash_grid_width(spec), -1.0f, 1.0f, 93);
	const std::vector<float> grad_start(table.size(), 0.0f);
	const EncodeResult cpu = run(*b.cpu, spec, table, points, dL_denc, grad_start);
	const EncodeResult gpu = run(*b.gpu, spec, table, points, dL_denc, grad_start);
	check_close("hash enc (collisions)", cpu.enc, gpu.enc, {0.0, 0.0});
	const ScatterBound bound = scatter_in_double(spec, points, dL_denc, grad_start);
	CHECK(worst_ratio(cpu.grad, bound) <= 1.0);
	CHECK(worst_ratio(gpu.grad, bound) <= 1.0);
}

TEST_CASE("gpu: spherical harmonics match the CPU bit for bit, strided and per ray", "[gpu][ngp]") {
	Backends b = make_backends();
	const size_t n_rays = 3001, n = 100003;
	const std::vector<float> raw_dirs = uniform(3 * n_rays, -1.0f, 1.0f, 101);
	std::vector<float> dirs(raw_dirs.size());
	for (size_t r = 0; r < n_rays; ++r) normalize3(&dirs[3 * r], &raw_dirs[3 * r]);
	std::vector<uint32_t> ray(n);
	std::mt19937 rng(102);
	for (uint32_t& r : ray) r = rng() % n_rays;
	for (bool per_ray : {true, false}) {
		const size_t rows = per_ray ? n : n_rays;
		const int stride = per_ray ? 32 : 16;
		std::vector<float> out[2];
		for (int which = 0; which < 2; ++which) {
			Backend& be = which == 0 ? *b.cpu : *b.gpu;
			Buffer<float> d_dirs = to_backend(be, dirs), d_enc = to_backend(be, std::vector<float>(rows * stride, -3.0f));
			Buffer<uint32_t> d_ray = to_backend(be, ray);
			be.sh_encode(d_enc.data(), stride, d_dirs.data(), per_ray ? d_ray.data() : nullptr, rows);
			out[which] = to_host(be, d_enc);
		}
		check_close(per_ray ? "sh (per ray, stride 32)" : "sh (row = ray)", out[0], out[1], {0.0, 0.0});
		CHECK(out[1][0] == Approx(0.28209479177387814));
		if (per_ray) CHECK(out[1][16] == -3.0f);  // columns 16.. untouched
	}
}

TEST_CASE("gpu: density activations forward and backward match the CPU", "[gpu][ngp]") {
	Backends b = make_backends();
	const size_t n = 70001;
	const int raw_stride = 4, colour_stride = 32;
	std::vector<float> out = uniform(n * 16, -2.0f, 2.0f, 111);
	for (size_t k = 0; k < n; ++k) out[k * 16] = 10.0f * out[k * 16] + 5.0f;  // logits in [-15, 25]: some clamped
	const std::vector<float> dL_draw = uniform(n * raw_stride, -1.0f, 1.0f, 112),
	                         dL_dcolour = uniform(n * colour_stride, -1.0f, 1.0f, 113);
	std::vector<float> raw[2], colour[2], grad[2];
	for (int which = 0; which < 2; ++which) {
		Backend& be = which == 0 ? *b.cpu : *b.gpu;
		Buffer<float> d_out = to_backend(be, out), d_raw = to_backend(be, std::vector<float>(n * raw_stride, 0.5f)),
		              d_colour = to_backend(be, std::vector<float>(n * colour_stride, 0.5f)),
		              g_raw = to_backend(be, dL_draw), g_colour = to_backend(be, dL_dcolour), g_out = be.allocate<float>(n * 16);
		be.ngp_density_forward(d_raw.data(), raw_stride, d_colour.data(), colour_stride, d_out.data(), n);
		be.ngp_density_backward(g_out.data(), g_raw.data(), raw_stride, g_colour.data(), colour_stride, d_out.data(), n);
		raw[which] = to_host(be, d_raw);
		colour[which] = to_host(be, d_colour);
		grad[which] = to_host(be, g_out);
	}
	// expf: CUDA's within 2 ulp, glibc's within 1: 3 ulp relative (the backward's product adds a rounding
	// of the same kind on both sides, 4 ulp); the copies are exact.
	check_close("raw (density)", raw[0], raw[1], {0.0, 3 * kUlp});
	check_close("colour_in (features)", colour[0], colour[1], {0.0, 0.0});
	check_close("dL_ddensity_out", grad[0], grad[1], {0.0, 4 * kUlp});
}
