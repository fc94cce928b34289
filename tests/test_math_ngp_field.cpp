// Tests of the ngp field's direction encoding and activations: spherical harmonics of degree 4 against
// the textbook real SH (normalisation constants, associated Legendre functions with the Condon-Shortley
// phase and the azimuth, all computed here in double), their orthonormality by Gauss-Legendre x
// trapezoid quadrature on the sphere, the backend's strided and per-ray layouts; trunc_exp and its
// clamped gradient; the density activations' forward and backward through the backend.
#include <catch2/catch.hpp>

#include "nerf/backend.h"
#include "nerf/math/ngp_field.h"
#include "nerf/math/spherical_harmonics.h"

#include <cmath>
#include <memory>
#include <random>
#include <vector>

using namespace nerf;

namespace {

double factorial(int k) {
	double f = 1.0;
	for (int i = 2; i <= k; ++i) f *= i;
	return f;
}

/// P_l^m(z), m >= 0, with the Condon-Shortley phase: P_m^m = (-1)^m (2m - 1)!! (1 - z^2)^(m/2),
/// P_{m+1}^m = z (2m + 1) P_m^m, then (l - m) P_l^m = (2l - 1) z P_{l-1}^m - (l + m - 1) P_{l-2}^m.
double legendre(int l, int m, double z) {
	double pmm = 1.0;
	const double s = std::sqrt(std::max(0.0, 1.0 - z * z));
	for (int i = 1; i <= m; ++i) pmm *= -(2.0 * i - 1.0) * s;
	if (l == m) return pmm;
	double prev = pmm, cur = z * (2.0 * m + 1.0) * pmm;
	for (int ll = m + 2; ll <= l; ++ll) {
		const double next = ((2.0 * ll - 1.0) * z * cur - (ll + m - 1.0) * prev) / (ll - m);
		prev = cur;
		cur = next;
	}
	return cur;
}

/// Real SH Y_l^m of the unit direction d, value index l^2 + l + m.
double real_sh(int l, int m, const double d[3]) {
	const int am = std::abs(m);
	const double K = std::sqrt((2.0 * l + 1.0) / (4.0 * M_PI) * factorial(l - am) / factorial(l + am));
	const double phi = std::atan2(d[1], d[0]);
	const double P = legendre(l, am, d[2]);
	if (m == 0) return K * P;
	if (m > 0) return std::sqrt(2.0) * K * P * std::cos(m * phi);
	return std::sqrt(2.0) * K * P * std::sin(am * phi);
}

std::vector<float> random_unit_dirs(size_t n, uint32_t seed) {
	std::mt19937 rng(seed);
	std::normal_distribution<float> normal(0.0f, 1.0f);
	std::vector<float> d(3 * n);
	for (size_t i = 0; i < n; ++i) {
		float v[3], len2 = 0.0f;
		do {
			len2 = 0.0f;
			for (float& x : v) {
				x = normal(rng);
				len2 += x * x;
			}
		} while (len2 < 1e-6f);
		const float inv = 1.0f / std::sqrt(len2);
		for (int k = 0; k < 3; ++k) d[3 * i + k] = v[k] * inv;
	}
	return d;
}

/// Gauss-Legendre nodes and weights on [-1, 1] (Newton's method on P_n).
void gauss_legendre(int n, std::vector<double>& nodes, std::vector<double>& weights) {
	nodes.resize(n);
	weights.resize(n);
	for (int i = 0; i < n; ++i) {
		double x = std::cos(M_PI * (i + 0.75) / (n + 0.5));
		double dp = 0.0;
		for (int iter = 0; iter < 100; ++iter) {
			double p0 = 1.0, p1 = x;
			for (int k = 2; k <= n; ++k) {
				const double p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
				p0 = p1;
				p1 = p2;
			}
			dp = n * (x * p1 - p0) / (x * x - 1.0);
			const double dx = p1 / dp;
			x -= dx;
			if (std::fabs(dx) < 1e-15) break;
		}
		nodes[i] = x;
		weights[i] = 2.0 / ((1.0 - x * x) * dp * dp);
	}
}

} // namespace

TEST_CASE("sh_encode_deg4: the textbook real spherical harmonics, computed in double", "[math][sh]") {
	const std::vector<float> dirs = random_unit_dirs(2000, 3);
	// Plus the axes and a few directions with exact zeros, where signs are easiest to get wrong.
	std::vector<float> all = dirs;
	for (float v : {1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f, -1.0f, 0.0f, 0.0f, 0.0f, -1.0f, 0.0f, 0.0f, 0.0f, -1.0f})
		all.push_back(v);
	double worst = 0.0;
	for (size_t i = 0; i < all.size() / 3; ++i) {
		float out[16];
		sh_encode_deg4(out, &all[3 * i]);
		const double d[3] = {all[3 * i], all[3 * i + 1], all[3 * i + 2]};
		for (int l = 0; l <= 3; ++l)
			for (int m = -l; m <= l; ++m) {
				const double ref = real_sh(l, m, d);
				worst = std::max(worst, std::fabs(out[l * l + l + m] - ref));
				INFO("direction " << i << " l " << l << " m " << m);
				// Up to 6 float roundings (2^-24 each) of products of constants <= 2.9 with |x|, |y|, |z| <= 1
				// (~1e-6), plus the float direction's |d|^2 - 1 (up to ~4e-7, as normalised in float), which
				// the polynomials (degree <= 3, slopes <= ~5) and the textbook form (angles only) see differently.
				CHECK(out[l * l + l + m] == Approx(ref).margin(5e-6));
			}
	}
	std::printf("sh_encode_deg4 vs textbook SH: max abs error %.3g\n", worst);
	CHECK(worst > 0.0);  // the comparison saw the float roundings: it compares real numbers
	// Signs spelled out: Y_1^{-1} = -c y, Y_1^1 = -c x (Condon-Shortley), Y_1^0 = c z.
	float e[16];
	const float y_axis[3] = {0.0f, 1.0f, 0.0f};
	sh_encode_deg4(e, y_axis);
	CHECK(e[1] == Approx(-0.48860251190291987));
	CHECK(e[3] == 0.0f);
	const float x_axis[3] = {1.0f, 0.0f, 0.0f};
	sh_encode_deg4(e, x_axis);
	CHECK(e[3] == Approx(-0.48860251190291987));
	CHECK(e[8] == Approx(0.54627421529603959));
	CHECK(e[15] == Approx(-0.59004358992664352));
}

TEST_CASE("sh_encode_deg4: orthonormal on the sphere by quadrature", "[math][sh]") {
	// Products of two band-3 harmonics are polynomials of degree <= 6 in (x, y, z): 8 Gauss-Legendre
	// nodes in z (exact to degree 15) and 16 equally spaced azimuths (exact for cos/sin(k phi), |k| <= 15)
	// integrate them exactly, so only the float evaluation's error (~1e-7 per value) remains.
	std::vector<double> nodes, weights;
	gauss_legendre(8, nodes, weights);
	const int n_phi = 16;
	double gram[16][16] = {};
	for (size_t i = 0; i < nodes.size(); ++i) {
		const double z = nodes[i], s = std::sqrt(1.0 - z * z);
		for (int j = 0; j < n_phi; ++j) {
			const double phi = 2.0 * M_PI * (j + 0.5) / n_phi;
			const float d[3] = {(float)(s * std::cos(phi)), (float)(s * std::sin(phi)), (float)z};
			float y[16];
			sh_encode_deg4(y, d);
			const double w = weights[i] * 2.0 * M_PI / n_phi;
			for (int a = 0; a < 16; ++a)
				for (int b = 0; b < 16; ++b) gram[a][b] += w * y[a] * y[b];
		}
	}
	for (int a = 0; a < 16; ++a)
		for (int b = 0; b < 16; ++b) {
			INFO("<Y_" << a << ", Y_" << b << ">");
			CHECK(gram[a][b] == Approx(a == b ? 1.0 : 0.0).margin(2e-6));
		}
}

TEST_CASE("cpu backend sh_encode: strided rows, per-ray directions, other columns untouched", "[sh][backend]") {
	std::unique_ptr<Backend> cpu = create_cpu_backend(2);
	const size_t n_rays = 500, n = 70000;  // above the parallel threshold
	const int stride = 32;
	const std::vector<float> viewdirs = random_unit_dirs(n_rays, 7);
	std::vector<uint32_t> ray(n);
	std::mt19937 rng(8);
	for (uint32_t& r : ray) r = rng() % n_rays;
	Buffer<float> d_dirs = cpu->allocate<float>(viewdirs.size()), enc = cpu->allocate<float>(n * stride);
	Buffer<uint32_t> d_ray = cpu->allocate<uint32_t>(n);
	std::copy(viewdirs.begin(), viewdirs.end(), d_dirs.data());
	std::copy(ray.begin(), ray.end(), d_ray.data());
	std::fill(enc.data(), enc.data() + enc.size(), -7.0f);
	cpu->sh_encode(enc.data(), stride, d_dirs.data(), d_ray.data(), n);
	size_t bad = 0;
	for (size_t k = 0; k < n; ++k) {
		float expected[16];
		sh_encode_deg4(expected, &viewdirs[3 * ray[k]]);
		for (int c = 0; c < stride; ++c) bad += enc.data()[k * stride + c] != (c < 16 ? expected[c] : -7.0f);
	}
	CHECK(bad == 0);
	// Without sample_ray, row k is direction k.
	cpu->sh_encode(enc.data(), 16, d_dirs.data(), nullptr, n_rays);
	for (size_t k = 0; k < n_rays; ++k) {
		float expected[16];
		sh_encode_deg4(expected, &viewdirs[3 * k]);
		for (int c = 0; c < 16; ++c) bad += enc.data()[k * 16 + c] != expected[c];
	}
	CHECK(bad == 0);
	CHECK_THROWS_AS(cpu->sh_encode(enc.data(), 15, d_dirs.data(), nullptr, 1), nerf::Error);
}

TEST_CASE("trunc_exp: exp below 15, the gradient of 15 above it, NaN kept", "[math][ngp]") {
	CHECK(trunc_exp(0.0f) == 1.0f);
	CHECK(trunc_exp(2.0f) == Approx(std::exp(2.0)).epsilon(2e-7));
	CHECK(trunc_exp(-30.0f) == Approx(std::exp(-30.0)).epsilon(2e-7));
	// A logit of 20 gets the value and the gradient of 15.
	CHECK(trunc_exp(20.0f) == trunc_exp(15.0f));
	CHECK(trunc_exp_grad(20.0f) == trunc_exp(15.0f));
	CHECK(trunc_exp_grad(20.0f) == Approx(std::exp(15.0)).epsilon(2e-7));
	CHECK(trunc_exp_grad(1e30f) == trunc_exp_grad(15.0f));
	CHECK(std::isnan(trunc_exp(NAN)));
	CHECK(std::isnan(trunc_exp_grad(NAN)));
	CHECK(trunc_exp(-INFINITY) == 0.0f);
	// Below the clamp the gradient is the derivative: central differences in double around float x.
	for (float x : {-6.0f, -1.0f, 0.0f, 0.7f, 4.0f, 10.0f, 14.5f}) {
		const double h = 1e-3;
		const double numeric = (std::exp(std::min(x + h, 15.0)) - std::exp(std::min(x - h, 15.0))) / (2 * h);
		const double numeric_float = ((double)trunc_exp(x + (float)h) - (double)trunc_exp(x - (float)h)) /
		                             ((double)(x + (float)h) - (double)(x - (float)h));
		INFO("x = " << x);
		CHECK(trunc_exp_grad(x) == Approx(numeric).epsilon(1e-6));
		CHECK(trunc_exp_grad(x) == Approx(numeric_float).epsilon(2e-3));  // the float function itself
	}
}

TEST_CASE("cpu backend ngp_density_forward and backward: layouts, and central differences", "[ngp][backend]") {
	std::unique_ptr<Backend> cpu = create_cpu_backend(2);
	const size_t n = 5000;
	const int raw_stride = 5, colour_stride = 32;
	std::mt19937 rng(9);
	std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
	std::vector<float> out(n * 16);
	for (size_t k = 0; k < n; ++k)
		for (int c = 0; c < 16; ++c) out[k * 16 + c] = c == 0 ? 8.0f * unit(rng) + (k % 50 == 0 ? 12.0f : 0.0f) : unit(rng);
	Buffer<float> d_out = cpu->allocate<float>(out.size()), raw = cpu->allocate<float>(n * raw_stride),
	              colour = cpu->allocate<float>(n * colour_stride);
	std::copy(out.begin(), out.end(), d_out.data());
	std::fill(raw.data(), raw.data() + raw.size(), -5.0f);
	std::fill(colour.data(), colour.data() + colour.size(), -5.0f);
	cpu->ngp_density_forward(raw.data(), raw_stride, colour.data(), colour_stride, d_out.data(), n);
	size_t bad = 0;
	for (size_t k = 0; k < n; ++k) {
		for (int c = 0; c < raw_stride; ++c)
			bad += raw.data()[k * raw_stride + c] != (c == 3 ? trunc_exp(out[k * 16]) : -5.0f);
		for (int c = 0; c < colour_stride; ++c)
			bad += colour.data()[k * colour_stride + c] != (c >= 16 && c < 31 ? out[k * 16 + c - 15] : -5.0f);
	}
	CHECK(bad == 0);
	// Density only: colour_in null.
	cpu->ngp_density_forward(raw.data(), raw_stride, nullptr, 0, d_out.data(), n);
	CHECK_THROWS_AS(cpu->ngp_density_forward(raw.data(), 3, nullptr, 0, d_out.data(), n), nerf::Error);
	CHECK_THROWS_AS(cpu->ngp_density_forward(raw.data(), 4, colour.data(), 30, d_out.data(), n), nerf::Error);

	// Backward of L = sum a raw[:, 3] + sum b colour_in[:, 16..30] against central differences in double
	// of the same map (below the clamp), and exactly the clamp's gradient above it.
	std::vector<float> dL_draw(n * raw_stride), dL_dcolour(n * colour_stride);
	for (float& x : dL_draw) x = unit(rng);
	for (float& x : dL_dcolour) x = unit(rng);
	Buffer<float> g_raw = cpu->allocate<float>(dL_draw.size()), g_colour = cpu->allocate<float>(dL_dcolour.size()),
	              g_out = cpu->allocate<float>(n * 16);
	std::copy(dL_draw.begin(), dL_draw.end(), g_raw.data());
	std::copy(dL_dcolour.begin(), dL_dcolour.end(), g_colour.data());
	std::fill(g_out.data(), g_out.data() + g_out.size(), 99.0f);  // overwritten, not accumulated
	cpu->ngp_density_backward(g_out.data(), g_raw.data(), raw_stride, g_colour.data(), colour_stride, d_out.data(), n);
	size_t clamped = 0;
	for (size_t k = 0; k < n; ++k) {
		const double x = out[k * 16], a = dL_draw[k * raw_stride + 3];
		INFO("row " << k << " logit " << x);
		if (x < 14.9) {
			const double h = 1e-4;
			const double numeric = a * (std::exp(x + h) - std::exp(x - h)) / (2 * h);
			REQUIRE(g_out.data()[k * 16] == Approx(numeric).epsilon(1e-5));
		} else if (x > 15.0) {
			REQUIRE(g_out.data()[k * 16] == (float)a * trunc_exp(15.0f));
			++clamped;
		}
		for (int c = 1; c < 16; ++c) REQUIRE(g_out.data()[k * 16 + c] == dL_dcolour[k * colour_stride + 15 + c]);
	}
	CHECK(clamped > 10);
	// Without the colour input's gradient the features get 0.
	cpu->ngp_density_backward(g_out.data(), g_raw.data(), raw_stride, nullptr, 0, d_out.data(), n);
	for (size_t k = 0; k < n; ++k)
		for (int c = 1; c < 16; ++c) bad += g_out.data()[k * 16 + c] != 0.0f;
	CHECK(bad == 0);
}
