// Shared plumbing of the benchmarks: timing, result rows, the table and JSON, result checks,
// synthetic scenes (poses, camera), and the double-precision references that the CPU checks use.
#pragma once

#include "nerf/backend.h"
#include "nerf/common.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#ifndef NERF_BENCH_COMMIT
#define NERF_BENCH_COMMIT "unknown"
#endif

namespace nerf::bench {

/// A check failed: the stage, and the error against its bound. main prints it and exits 1.
class ValidationError : public Error {
public:
	explicit ValidationError(const std::string& what) : Error(what) {}
};

inline std::string join_command_line(int argc, const char* const* argv) {
	std::string line;
	for (int i = 0; i < argc; ++i) {
		if (i) line += ' ';
		line += argv[i];
	}
	return line;
}

/// The host CPU's model name (Linux /proc/cpuinfo) and its hardware threads, for reports.
inline std::string host_cpu_description() {
	std::ifstream cpuinfo("/proc/cpuinfo");
	std::string line, model = "unknown CPU";
	int threads = 0;
	while (std::getline(cpuinfo, line)) {
		if (line.rfind("processor", 0) == 0) ++threads;
		if (line.rfind("model name", 0) == 0 && model == "unknown CPU") {
			const size_t colon = line.find(':');
			if (colon != std::string::npos && colon + 2 <= line.size()) model = line.substr(colon + 2);
		}
	}
	return model + ", " + std::to_string(threads) + " hardware threads";
}

inline double median_of(std::vector<double> v) {
	NERF_CHECK(!v.empty());
	std::sort(v.begin(), v.end());
	const size_t n = v.size();
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Runs fn `warmup` times untimed, then `repeats` times, each between its own start/stop pair of
/// the backend's timer (CUDA events in stream order on CUDA, a steady clock on the CPU). All repeats
/// are enqueued before any time is read, so on CUDA the GPU is not left idle between repeats and a
/// short kernel is not charged for its launch. before_each (optional, untimed) runs ahead of every
/// repeat, e.g. to evict the inputs from the L2 cache.
inline std::vector<double> time_repeats(Backend& backend, int warmup, int repeats, const std::function<void()>& fn,
                                        const std::function<void()>& before_each = {}) {
	for (int i = 0; i < warmup; ++i) fn();
	backend.synchronize();
	std::vector<std::unique_ptr<Backend::Timer>> timers;
	for (int i = 0; i < repeats; ++i) timers.push_back(backend.create_timer());
	for (int i = 0; i < repeats; ++i) {
		if (before_each) before_each();
		timers[i]->start();
		fn();
		timers[i]->stop();
	}
	std::vector<double> ms;
	for (auto& t : timers) ms.push_back(t->elapsed_ms());
	return ms;
}

// ------------------------------------------------------------------------------------------------
// Comparisons

/// |got - ref| <= atol + rtol |ref| elementwise; up to max_outlier_fraction of the elements may
/// exceed it (only for piecewise-constant lookups such as searchsorted, where one rounding step
/// moves a sample into the next bin).
struct Tolerance {
	double atol = 0.0, rtol = 0.0;
	double max_outlier_fraction = 0.0;
};

struct CompareResult {
	double worst_ratio = 0.0;  ///< max |got-ref| / (atol + rtol|ref|): <= 1 passes
	double max_abs_error = 0.0;
	size_t worst_index = 0, outliers = 0, count = 0;
	bool non_finite = false;
};

inline CompareResult compare_arrays(const float* got, const float* ref, size_t n, const Tolerance& tol) {
	CompareResult r;
	r.count = n;
	for (size_t i = 0; i < n; ++i) {
		const double g = got[i], e = ref[i];
		if (!std::isfinite(e)) continue;  // the reference itself is undefined there
		if (!std::isfinite(g)) {
			r.non_finite = true;
			r.worst_index = i;
			r.worst_ratio = INFINITY;
			++r.outliers;
			continue;
		}
		const double err = std::fabs(g - e);
		const double bound = tol.atol + tol.rtol * std::fabs(e);
		const double ratio = bound > 0.0 ? err / bound : (err > 0.0 ? INFINITY : 0.0);
		r.max_abs_error = std::max(r.max_abs_error, err);
		if (ratio > 1.0) ++r.outliers;
		if (ratio > r.worst_ratio) {
			r.worst_ratio = ratio;
			r.worst_index = i;
		}
	}
	return r;
}

inline bool passes(const CompareResult& r, const Tolerance& tol) {
	if (r.non_finite) return false;
	if (tol.max_outlier_fraction > 0.0) return (double)r.outliers <= tol.max_outlier_fraction * (double)r.count;
	return r.worst_ratio <= 1.0;
}

inline double max_abs(const float* v, size_t n) {
	double m = 0.0;
	for (size_t i = 0; i < n; ++i) m = std::max(m, (double)std::fabs(v[i]));
	return m;
}

/// Collects the outcome of the checks of one stage into a short text for the table, and throws
/// ValidationError on the first failure.
class StageCheck {
public:
	explicit StageCheck(std::string stage) : m_stage(std::move(stage)) {}

	/// Test hook (bench_kernels --sabotage STAGE): every check of that stage is given a wrong
	/// result, to show that a mismatch is reported and ends the program with exit code 1.
	static std::string& sabotaged_stage() {
		static std::string stage;
		return stage;
	}

	/// Compares two arrays; `what` names the output.
	void arrays(const std::string& what, const std::vector<float>& got_in, const std::vector<float>& ref,
	            const Tolerance& tol) {
		std::vector<float> got = got_in;
		if (sabotaged()) {
			// Every element off by twice its bound (plus a margin), so no outlier allowance hides it.
			for (size_t i = 0; i < got.size() && i < ref.size(); ++i)
				got[i] = ref[i] + (float)(2.0 * (tol.atol + tol.rtol * std::fabs(ref[i])) + 1e-3 * (1.0 + std::fabs(ref[i])));
		}
		if (got.size() != ref.size())
			fail(what + ": size " + std::to_string(got.size()) + " vs reference " + std::to_string(ref.size()));
		const CompareResult r = compare_arrays(got.data(), ref.data(), got.size(), tol);
		m_worst = std::max(m_worst, tol.max_outlier_fraction > 0.0 ? 0.0 : r.worst_ratio);
		if (!passes(r, tol)) {
			char msg[512];
			std::snprintf(msg, sizeof msg,
			              "%s: %s at index %zu: got %.9g, reference %.9g, |error| %.3g > bound %.3g (atol %.3g + rtol %.3g |ref|); "
			              "%zu of %zu elements outside (allowed fraction %.3g)",
			              what.c_str(), r.non_finite ? "non-finite value" : "mismatch", r.worst_index,
			              (double)got[r.worst_index], (double)ref[r.worst_index],
			              std::fabs((double)got[r.worst_index] - ref[r.worst_index]),
			              tol.atol + tol.rtol * std::fabs((double)ref[r.worst_index]), tol.atol, tol.rtol, r.outliers,
			              r.count, tol.max_outlier_fraction);
			fail(msg);
		}
		++m_checks;
	}

	/// A scalar condition; `detail` says what was measured.
	void require(bool ok, const std::string& detail) {
		if (sabotaged()) ok = false;
		if (!ok) fail(detail);
		++m_checks;
	}

	/// A measured error against its bound (error <= bound passes).
	void bound(const std::string& what, double error, double bound_value) {
		if (sabotaged()) error = 2.0 * bound_value + 1e-3;
		if (!(error <= bound_value)) {
			char msg[256];
			std::snprintf(msg, sizeof msg, "%s: error %.3g exceeds bound %.3g", what.c_str(), error, bound_value);
			fail(msg);
		}
		if (bound_value > 0.0) m_worst = std::max(m_worst, error / bound_value);
		++m_checks;
	}

	/// "ok (n checks, worst 0.12 of bound)" for the table.
	std::string summary() const {
		char text[96];
		std::snprintf(text, sizeof text, "ok %d (%.2f)", m_checks, m_worst);
		return text;
	}

	[[noreturn]] void fail(const std::string& detail) const {
		throw ValidationError("validation failed in stage '" + m_stage + "': " + detail);
	}

private:
	bool sabotaged() const { return !sabotaged_stage().empty() && sabotaged_stage() == m_stage; }

	std::string m_stage;
	int m_checks = 0;
	double m_worst = 0.0;
};

// ------------------------------------------------------------------------------------------------
// Synthetic inputs

/// The lego scene's field of view (transforms_*.json camera_angle_x).
constexpr double kLegoCameraAngleX = 0.6911112070083618;

/// A Blender-style pinhole camera of size hw x hw with the lego field of view.
inline Camera lego_camera(int hw) {
	Camera cam;
	cam.H = cam.W = hw;
	cam.fx = cam.fy = (float)(0.5 * hw / std::tan(0.5 * kLegoCameraAngleX));
	cam.cx = cam.cy = 0.5f * (float)hw;
	return cam;
}

/// Camera-to-world poses (3x4 row-major, OpenGL axes) on the upper hemisphere of radius 4 looking
/// at the origin, as the synthetic scenes' cameras.
inline std::vector<float> hemisphere_poses(int n, uint64_t seed) {
	std::mt19937_64 rng(seed);
	std::uniform_real_distribution<double> azimuth(0.0, 2.0 * M_PI), elevation(0.25, 1.1);
	std::vector<float> poses(12 * (size_t)n);
	for (int i = 0; i < n; ++i) {
		const double theta = azimuth(rng), phi = elevation(rng);
		const double pos[3] = {4.0 * std::cos(phi) * std::cos(theta), 4.0 * std::cos(phi) * std::sin(theta),
		                       4.0 * std::sin(phi)};
		// Camera +Z points away from the target (the camera looks down -Z); +X is horizontal.
		double z[3] = {pos[0] / 4.0, pos[1] / 4.0, pos[2] / 4.0};
		double x[3] = {-z[1], z[0], 0.0};  // cross((0,0,1), z)
		const double xn = std::sqrt(x[0] * x[0] + x[1] * x[1]);
		for (double& c : x) c /= xn;
		const double y[3] = {z[1] * x[2] - z[2] * x[1], z[2] * x[0] - z[0] * x[2], z[0] * x[1] - z[1] * x[0]};
		float* p = poses.data() + 12 * (size_t)i;
		for (int r = 0; r < 3; ++r) {
			p[4 * r + 0] = (float)x[r];
			p[4 * r + 1] = (float)y[r];
			p[4 * r + 2] = (float)z[r];
			p[4 * r + 3] = (float)pos[r];
		}
	}
	return poses;
}

inline std::vector<float> normal_floats(size_t n, double stddev, uint64_t seed, double mean = 0.0) {
	std::mt19937_64 rng(seed);
	std::normal_distribution<float> dist((float)mean, (float)stddev);
	std::vector<float> v(n);
	for (float& x : v) x = dist(rng);
	return v;
}

inline std::vector<float> uniform_floats(size_t n, double lo, double hi, uint64_t seed) {
	std::mt19937_64 rng(seed);
	std::uniform_real_distribution<float> dist((float)lo, (float)hi);
	std::vector<float> v(n);
	for (float& x : v) x = dist(rng);
	return v;
}

// ------------------------------------------------------------------------------------------------
// Double-precision references (independent of include/nerf/math, written from the formulas in
// its comments), used by the CPU-backend checks.

struct RayRef {
	double rgb[3] = {0, 0, 0};
	double depth = 0, acc = 0;
};

/// raw2outputs in double, no noise. raw: [S, stride]; weights: [S] out (may be null). Packed samples
/// (occ_grid) pass their own intervals dt [S] in place of the gaps between the depths z.
template <typename T>
RayRef composite_ray_ref(double* weights, const T* raw, const float* z, const float* dir, int n_samples, int stride,
                         bool white_bkgd, const float* dt = nullptr) {
	const double dir_norm = std::sqrt((double)dir[0] * dir[0] + (double)dir[1] * dir[1] + (double)dir[2] * dir[2]);
	RayRef out;
	double transmittance = 1.0;
	for (int k = 0; k < n_samples; ++k) {
		const double gap = dt ? (double)dt[k] : k + 1 < n_samples ? (double)z[k + 1] - (double)z[k] : 1e10;
		const double sigma = std::max((double)raw[(size_t)k * stride + 3], 0.0);
		const double alpha = 1.0 - std::exp(-sigma * gap * dir_norm);
		const double w = alpha * transmittance;
		if (weights) weights[k] = w;
		for (int c = 0; c < 3; ++c) out.rgb[c] += w / (1.0 + std::exp(-(double)raw[(size_t)k * stride + c]));
		out.depth += w * z[k];
		out.acc += w;
		transmittance *= 1.0 - alpha + 1e-10;
	}
	if (white_bkgd)
		for (double& c : out.rgb) c += 1.0 - out.acc;
	return out;
}

/// nerf-pytorch's NeRF MLP for one sample, in double, from the layout (weights [out, in] row-major).
/// params points at the network's first float (layout.offset already applied).
inline void mlp_forward_ref(double* raw, const double* params, const MlpLayout& layout, const float* enc_pts,
                            const float* enc_views) {
	const MlpSpec& spec = layout.spec;
	auto linear = [&](const LinearLayer& L, const std::vector<double>& x, bool relu) {
		NERF_CHECK((int)x.size() == L.in);
		std::vector<double> y(L.out);
		const double* W = params + (L.weight_offset - layout.offset);
		const double* b = params + (L.bias_offset - layout.offset);
		for (int o = 0; o < L.out; ++o) {
			double s = b[o];
			for (int i = 0; i < L.in; ++i) s += W[(size_t)o * L.in + i] * x[i];
			y[o] = relu ? std::max(s, 0.0) : s;
		}
		return y;
	};
	std::vector<double> pts(enc_pts, enc_pts + spec.in_pts);
	std::vector<double> h = pts;
	for (int i = 0; i < spec.depth; ++i) {
		std::vector<double> in = h;
		if (layer_takes_skip(spec, i)) {
			in = pts;
			in.insert(in.end(), h.begin(), h.end());
		}
		h = linear(layout.layer("pts_linears." + std::to_string(i)), in, true);
	}
	if (spec.use_viewdirs) {
		const std::vector<double> alpha = linear(layout.layer("alpha_linear"), h, false);
		std::vector<double> feature = linear(layout.layer("feature_linear"), h, false);
		feature.insert(feature.end(), enc_views, enc_views + spec.in_views);
		const std::vector<double> hv = linear(layout.layer("views_linears.0"), feature, true);
		const std::vector<double> rgb = linear(layout.layer("rgb_linear"), hv, false);
		raw[0] = rgb[0];
		raw[1] = rgb[1];
		raw[2] = rgb[2];
		raw[3] = alpha[0];
	} else {
		const std::vector<double> out = linear(layout.layer("output_linear"), h, false);
		for (int c = 0; c < spec.output_ch; ++c) raw[c] = out[c];
	}
}

// ------------------------------------------------------------------------------------------------
// FLOP counts of the MLP (multiply-adds of the GEMMs, 2 FLOPs each; bias adds and ReLUs are
// O(n * width) and left out).

inline bool mlp_layer_used(const MlpSpec& spec, const LinearLayer& L) {
	// views_linears.0 exists in every state dict but runs only with viewdirs.
	return spec.use_viewdirs || L.name != "views_linears.0";
}

/// Forward: 2 n sum(in * out) over the layers that run.
inline double mlp_forward_flops(const MlpLayout& layout, double n) {
	double macs = 0.0;
	for (const LinearLayer& L : layout.layers)
		if (mlp_layer_used(layout.spec, L)) macs += (double)L.in * L.out;
	return 2.0 * n * macs;
}

/// Backward: dW = 2 n in out for every layer, plus dX = 2 n in_hidden out where in_hidden leaves
/// out the columns that are data (gamma(x) of pts_linears.0 and of the skip layer, gamma(d) of the
/// views layer), whose gradient nobody needs. This is the work a minimal backward must do.
inline double mlp_backward_flops(const MlpLayout& layout, double n) {
	const MlpSpec& spec = layout.spec;
	double macs = 0.0;
	for (const LinearLayer& L : layout.layers) {
		if (!mlp_layer_used(spec, L)) continue;
		int in_hidden = L.in;
		if (L.name == "pts_linears.0") in_hidden = 0;
		else if (L.name.rfind("pts_linears.", 0) == 0 && layer_takes_skip(spec, std::stoi(L.name.substr(12))))
			in_hidden = L.in - spec.in_pts;
		else if (L.name == "views_linears.0")
			in_hidden = L.in - spec.in_views;
		macs += (double)L.in * L.out + (double)in_hidden * L.out;
	}
	return 2.0 * n * macs;
}

} // namespace nerf::bench
