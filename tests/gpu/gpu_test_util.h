// Helpers of the GPU parity tests: moving data between host and a backend, seeded random inputs,
// and the comparison that prints max abs / rel errors and the first mismatches (abs + rel |ref|).
#pragma once

#include <catch2/catch.hpp>

#include "nerf/backend.h"
#include "nerf/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace nerf_gpu_test {

using namespace nerf;

/// One ulp of 1.0f (2^-23): the tests' tolerances are counted in it.
constexpr double kUlp = 1.1920929e-7;

struct Backends {
	std::unique_ptr<Backend> cpu, gpu;
};
inline Backends make_backends() { return {create_cpu_backend(), create_cuda_backend(0)}; }

template <typename T> Buffer<T> to_backend(Backend& b, const std::vector<T>& host) {
	Buffer<T> buf = b.allocate<T>(host.size());
	b.upload(buf.data(), host.data(), host.size() * sizeof(T));
	return buf;
}
template <typename T> std::vector<T> to_host(Backend& b, const T* p, size_t n) {
	std::vector<T> host(n);
	b.download(host.data(), p, n * sizeof(T));
	return host;
}
template <typename T> std::vector<T> to_host(Backend& b, const Buffer<T>& buf) { return to_host(b, buf.data(), buf.size()); }

inline std::vector<float> uniform(size_t n, float lo, float hi, uint32_t seed) {
	std::mt19937 rng(seed);
	std::uniform_real_distribution<float> dist(lo, hi);
	std::vector<float> v(n);
	for (float& x : v) x = dist(rng);
	return v;
}

inline double max_abs(const std::vector<float>& v) {
	double m = 0.0;
	for (float x : v)
		if (std::isfinite(x)) m = std::max(m, (double)std::fabs(x));
	return m;
}

/// |got - ref| <= abs + rel |ref| per element. Each test says where its numbers come from.
struct Tolerance {
	double abs = 0.0, rel = 0.0;
};
/// Normwise: abs = rel_of_max * max|ref|, for results formed by sums with cancellation (GEMMs,
/// gradients), where an element's error scales with the magnitude of the terms, not of the element.
inline Tolerance normwise(const std::vector<float>& ref, double rel_of_max) {
	return {rel_of_max * max_abs(ref), rel_of_max};
}

struct Comparison {
	double max_abs_err = 0.0, max_rel_err = 0.0;
	size_t n_bad = 0;
};

/// Compares and prints one summary line; non-finite references must be matched in kind.
inline Comparison compare(const std::string& what, const std::vector<float>& ref, const std::vector<float>& got,
                          Tolerance tol, size_t max_print = 5) {
	REQUIRE(ref.size() == got.size());
	Comparison c;
	size_t printed = 0;
	for (size_t i = 0; i < ref.size(); ++i) {
		const double r = ref[i], g = got[i];
		bool bad;
		double err = 0.0;
		if (!std::isfinite(r) || !std::isfinite(g)) {
			bad = !(std::isnan(r) && std::isnan(g)) && !(r == g);
		} else {
			err = std::fabs(g - r);
			c.max_abs_err = std::max(c.max_abs_err, err);
			if (std::fabs(r) > 1e-30) c.max_rel_err = std::max(c.max_rel_err, err / std::fabs(r));
			bad = err > tol.abs + tol.rel * std::fabs(r);
		}
		if (bad) {
			++c.n_bad;
			if (printed++ < max_print)
				std::printf("    %s[%zu]: ref %.9g got %.9g (err %.3g)\n", what.c_str(), i, r, g, err);
		}
	}
	std::printf("  %-44s n=%-8zu max_abs=%.3g max_rel=%.3g tol(abs %.3g, rel %.3g) bad=%zu\n", what.c_str(), ref.size(),
	            c.max_abs_err, c.max_rel_err, tol.abs, tol.rel, c.n_bad);
	return c;
}

/// compare + CHECK that at most max_bad_fraction of the elements are outside the tolerance (0 unless
/// the op is piecewise, e.g. a bin lookup, where an ulp can pick the neighbouring bin).
inline void check_close(const std::string& what, const std::vector<float>& ref, const std::vector<float>& got,
                        Tolerance tol, double max_bad_fraction = 0.0) {
	const Comparison c = compare(what, ref, got, tol);
	INFO(what << ": max_abs " << c.max_abs_err << " max_rel " << c.max_rel_err << " bad " << c.n_bad);
	CHECK((double)c.n_bad <= max_bad_fraction * (double)ref.size());
}

/// One line per GPU-against-CPU comparison of a 300-step training run, for the record: the bounds
/// come from the CPU's own spread, so what a GPU measures per precision is the number to set them
/// from. tools/gpu_check.sh copies these lines ("PSNR-300 ...") into its summary.md.
inline void record_psnr_difference(const std::string& what, double gpu, double cpu, double bound) {
	std::printf("PSNR-300 %s: gpu %.3f cpu %.3f difference %+.3f dB (bound %.2f)\n", what.c_str(), gpu, cpu, gpu - cpu,
	            bound);
}

} // namespace nerf_gpu_test
