// bench_kernels' core, shared by its stage families (bench_stages_*.cpp, one file per family of
// pipeline stages): the options and sizes, the table of rows, timing, the device's peaks, and the
// KernelBench class whose bench_* members each family file defines. See bench_kernels.cpp for what
// the program measures and its counting conventions.
#pragma once

#include "common.h"
#include "stage_registry.h"

#include "nerf/backend.h"
#include "nerf/config.h"
#include "nerf/math/encoding.h"
#include "nerf/math/sampling.h"
#include "nerf/mlp_layout.h"
#include "nerf/model.h"

#include <CLI/CLI.hpp>
#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace nerf::bench {

struct Options {
	std::string device = "auto";
	bool small = false;
	int repeats = 20;
	int warmup = 3;
	int heavy_repeats = -1;  ///< train step and render; -1: same as repeats
	std::string json_path;
	std::vector<int> n_rands;  ///< empty: the preset's
	int render_hw = 0;         ///< 0: the preset's
	size_t check_rows = 16384;
	int threads = 0;
	int flush_mib = -1;  ///< scratch overwritten before each repeat; -1: 256 on CUDA, 0 on the CPU
	std::string only;  ///< comma-separated substrings of stage names; empty: all
	std::vector<std::string> precisions;  ///< CUDA MLP precisions; empty: all four
};

/// The sizes of one run: the lego config's, or small ones for CPU smoke runs.
struct Sizes {
	std::vector<int> n_rands;
	int n_coarse = 64, n_fine = 128;
	int depth = 8, width = 256;
	int multires = 10, multires_views = 4;
	int render_hw = 800;
	int n_images = 4;  ///< images in the training-step stack
	int occ_resolution = 128;  ///< occupancy grid cells per side (occ_grid stages)
	size_t copy_bytes = 0;
	int gemm_size = 0;  ///< CPU: square GEMM size; CUDA: the width of the one-layer MLP
};

inline Sizes lego_sizes(bool cuda) {
	Sizes s;
	s.n_rands = {1024, 4096};
	s.copy_bytes = cuda ? (size_t)1 << 30 : (size_t)256 << 20;
	s.gemm_size = cuda ? 4096 : 1024;
	return s;
}

inline Sizes small_sizes(bool cuda) {
	Sizes s;
	s.n_rands = {64};
	s.n_coarse = 16;
	s.n_fine = 16;
	// Depth 6 (not 4) so that the skip connection after layer 4 is exercised by the checks.
	s.depth = 6;
	s.width = 64;
	s.render_hw = 32;
	s.n_images = 2;
	s.occ_resolution = 32;
	s.copy_bytes = cuda ? (size_t)256 << 20 : (size_t)32 << 20;
	s.gemm_size = cuda ? 2048 : 384;
	return s;
}

const Precision kAllPrecisions[] = {Precision::FP32, Precision::TF32, Precision::FP16, Precision::BF16};

/// Bounds of the MLP comparison against the CPU's fp32, as a fraction of the largest reference
/// magnitude of the compared tensor (per layer for gradients). Unit roundoff u of the GEMM inputs:
/// fp32 2^-24 (only the summation order differs from Eigen: error ~ sqrt(K) u per layer, K <= 319,
/// so ~1e-6 after 9 layers; 1e-4 leaves room for unlucky cancellation); tf32 and fp16 2^-11 (inputs
/// rounded to 10 mantissa bits at every layer: ~u per layer, compounded over 9-10 chained layers ->
/// ~5e-3; fp16 also stores activations in half); bf16 2^-8 (7 mantissa bits: ~4e-2 over the chain).
/// Backward chains twice as many roundings (dX then dW), hence twice the forward bound.
/// These are first estimates: no GPU was available when they were written; see bench/RESULTS.md.
inline double mlp_forward_tolerance(Precision p) {
	switch (p) {
	case Precision::FP32: return 1e-4;
	case Precision::TF32: return 1e-2;
	case Precision::FP16: return 1e-2;
	case Precision::BF16: return 5e-2;
	}
	return 0.0;
}
inline double mlp_backward_tolerance(Precision p) { return 2.0 * mlp_forward_tolerance(p); }

/// Relative bound on the training losses of a whole step, CUDA vs CPU: the forward's bound (the
/// loss is a mean of squared rgb errors, so relative errors of rgb carry over at most doubled).
inline double train_loss_tolerance(Precision p) { return 2.0 * mlp_forward_tolerance(p) + 1e-5; }

template <typename T> void upload(Backend& b, Buffer<T>& dst, const std::vector<T>& src) {
	NERF_CHECK(dst.size() == src.size());
	b.upload(dst.data(), src.data(), src.size() * sizeof(T));
}
template <typename T> std::vector<T> download(Backend& b, const Buffer<T>& src) {
	std::vector<T> out(src.size());
	b.download(out.data(), src.data(), src.size() * sizeof(T));
	return out;
}
template <typename T> Buffer<T> make_buffer(Backend& b, const std::vector<T>& host) {
	Buffer<T> buf = b.allocate<T>(host.size());
	upload(b, buf, host);
	return buf;
}

inline std::string best_text(double ms) {
	char b[48];
	std::snprintf(b, sizeof b, "best %.4f ms", ms);
	return b;
}

inline std::string size_label(size_t n_rays, int n_samples) {
	std::string s = "R=" + std::to_string(n_rays);
	if (n_samples > 0) s += " S=" + std::to_string(n_samples);
	return s;
}

struct Row {
	std::string stage, size, precision;
	Precision prec = Precision::FP32;
	std::vector<double> ms;
	double median_ms = 0, min_ms = 0;
	double bytes = 0, flops = 0;  ///< per call; 0 where not meaningful
	double gbps = 0, tflops = 0, pct_bw = 0, pct_flops = 0;
	std::string check;
};

class KernelBench final : public StageBench {
public:
	KernelBench(Backend& dev, std::unique_ptr<Backend> ref, Options opt, Sizes sizes)
	    : m_dev(dev), m_ref(std::move(ref)), m_opt(std::move(opt)), m_sizes(std::move(sizes)) {
		if (!m_dev.is_cuda()) m_precisions = {Precision::FP32};  // the CPU backend is fp32 only
		else if (m_opt.precisions.empty()) m_precisions.assign(std::begin(kAllPrecisions), std::end(kAllPrecisions));
		else
			for (const std::string& name : m_opt.precisions) m_precisions.push_back(parse_precision(name));
	}

	void run() {
		measure_peaks("start");
		for (int n_rays : m_sizes.n_rands) {
			RayInputs rays = bench_rays(n_rays);
			for (int n_samples : {m_sizes.n_coarse, m_sizes.n_coarse + m_sizes.n_fine}) {
				bench_stratified(rays, n_samples);
				bench_encode_points(rays, n_samples);
				bench_encode_views(rays, n_samples);
				bench_composite(rays, n_samples);
			}
			bench_resample(rays);
			bench_marched(rays);
			for (Precision p : m_precisions) {
				bench_mlp(n_rays, m_sizes.n_coarse, p);
				bench_mlp(n_rays, m_sizes.n_coarse + m_sizes.n_fine, p);
			}
			bench_loss(n_rays);
			for (Precision p : m_precisions) bench_train_step(n_rays, p);
			bench_ngp_train_step(n_rays);
		}
		bench_adam();
		bench_grid_update();
		for (Precision p : m_precisions) bench_render(p);
		// The families in files of their own (stage_registry.h), e.g. bench_ngp_stages.cpp.
		for (const auto& [name, family] : registered_stage_families()) {
			std::fprintf(stderr, " stage family %s\n", name.c_str());
			family(*this);
		}
		// Peaks again at the end: on a shared machine either measurement may be slowed by others,
		// and the better of the two is the closer estimate of what the device can do.
		measure_peaks("end");
		update_fractions();
		write_json(true);
	}

	/// --json is rewritten after every stage (complete: false until the end), so that a run stopped
	/// by a time limit still leaves every stage it finished; each write replaces the file atomically.
	void set_command_line(std::string command_line) { m_command_line = std::move(command_line); }
	void write_json(bool complete) {
		if (m_opt.json_path.empty()) return;
		update_fractions();
		nlohmann::json j = to_json(m_command_line);
		j["complete"] = complete;
		const std::string tmp = m_opt.json_path + ".tmp";
		{
			std::ofstream f(tmp);
			if (!f) NERF_FAIL(m_opt.json_path << ": cannot open " << tmp << " for writing");
			f << j.dump(2) << "\n";
			if (!f) NERF_FAIL(m_opt.json_path << ": write of " << tmp << " failed");
		}
		std::error_code ec;
		std::filesystem::rename(tmp, m_opt.json_path, ec);
		if (ec) NERF_FAIL(m_opt.json_path << ": cannot replace it with " << tmp << " (" << ec.message() << ")");
	}

	void print_table(std::ostream& os) const {
		char line[512];
		os << "device: " << m_dev.name() << "   host: " << host_cpu_description() << "   commit: " << NERF_BENCH_COMMIT
		   << "\n";
		std::snprintf(line, sizeof line, "peak bandwidth (copy of %.0f MiB, best repeat): %.1f GB/s\n",
		              (double)m_sizes.copy_bytes / (1 << 20), m_peak_gbps);
		os << line;
		for (const auto& [p, tf] : m_peak_tflops) {
			std::snprintf(line, sizeof line, "peak compute %s (%s, best repeat): %.3f TFLOP/s\n", precision_name(p),
			              m_peak_method.c_str(), tf);
			os << line;
		}
		std::snprintf(line, sizeof line, "%-25s %-18s %-5s %10s %10s %9s %7s %7s  %s\n", "stage", "size", "prec",
		              "median_ms", "GB/s", "TFLOP/s", "%BW", "%FLOP", "check (n, worst/bound)");
		os << line;
		for (const Row& r : m_rows) {
			auto num = [](double v, const char* fmt) {
				if (v <= 0.0) return std::string("-");
				char b[32];
				std::snprintf(b, sizeof b, fmt, v);
				return std::string(b);
			};
			std::snprintf(line, sizeof line, "%-25s %-18s %-5s %10.4f %10s %9s %7s %7s  %s\n", r.stage.c_str(),
			              r.size.c_str(), r.precision.c_str(), r.median_ms, num(r.gbps, "%.2f").c_str(),
			              num(r.tflops, "%.4f").c_str(), num(100.0 * r.pct_bw, "%.1f").c_str(),
			              num(100.0 * r.pct_flops, "%.1f").c_str(), r.check.c_str());
			os << line;
		}
	}

	/// Each row's fraction of the peaks measured so far.
	void update_fractions() {
		for (Row& r : m_rows) {
			r.pct_bw = m_peak_gbps > 0 ? r.gbps / m_peak_gbps : 0.0;
			auto peak = m_peak_tflops.find(r.prec);
			r.pct_flops = peak != m_peak_tflops.end() && peak->second > 0 ? r.tflops / peak->second : 0.0;
		}
	}

	nlohmann::json to_json(const std::string& command_line) const {
		nlohmann::json j;
		j["device"] = m_dev.name();
		j["host"] = host_cpu_description();
		j["threads"] = m_opt.threads;
		j["commit"] = NERF_BENCH_COMMIT;
		j["command"] = command_line;
		j["preset"] = m_opt.small ? "small" : "lego";
		j["repeats"] = m_opt.repeats;
		j["warmup"] = m_opt.warmup;
		j["heavy_repeats"] = heavy_repeats();
		j["sizes"] = {{"n_rands", m_sizes.n_rands},       {"N_samples", m_sizes.n_coarse},
		              {"N_importance", m_sizes.n_fine},   {"netdepth", m_sizes.depth},
		              {"netwidth", m_sizes.width},        {"multires", m_sizes.multires},
		              {"multires_views", m_sizes.multires_views}, {"render_hw", m_sizes.render_hw}};
		nlohmann::json peaks;
		peaks["copy_bytes"] = m_sizes.copy_bytes;
		peaks["bandwidth_gbps"] = m_peak_gbps;
		peaks["compute_method"] = m_peak_method;
		for (const auto& [p, tf] : m_peak_tflops) peaks["tflops"][precision_name(p)] = tf;
		j["peaks"] = peaks;
		nlohmann::json rows = nlohmann::json::array();
		for (const Row& r : m_rows) {
			rows.push_back({{"stage", r.stage},
			                {"size", r.size},
			                {"precision", r.precision},
			                {"median_ms", r.median_ms},
			                {"min_ms", r.min_ms},
			                {"times_ms", r.ms},
			                {"bytes", r.bytes},
			                {"flops", r.flops},
			                {"gbps", r.gbps},
			                {"tflops", r.tflops},
			                {"fraction_peak_bandwidth", r.pct_bw},
			                {"fraction_peak_flops", r.pct_flops},
			                {"check", r.check}});
		}
		j["rows"] = rows;
		return j;
	}

	// --- StageBench, for the registered stage families ---
	Backend& device() override { return m_dev; }
	Backend* reference() override { return m_ref.get(); }
	bool small_sizes() const override { return m_opt.small; }
	bool stage_wanted(const std::string& stage) const override { return wanted(stage); }
	std::vector<double> timed_repeats(const std::function<void()>& fn) override { return time(fn); }
	void add_stage_row(const std::string& stage, const std::string& size, const std::vector<double>& ms, double bytes,
	                   double flops, const std::string& check) override {
		add_row(stage, size, Precision::FP32, ms, bytes, flops, check);
	}

private:
	struct RayInputs {
		size_t n = 0;
		Camera cam;
		std::vector<float> poses;  ///< [n_images, 12]
		std::vector<uint32_t> pixel_ids;
		std::vector<float> rays_o, rays_d, viewdirs;  ///< [n, 3], as the device generated them
	};

	bool wanted(const std::string& stage) const {
		if (m_opt.only.empty()) return true;
		std::stringstream ss(m_opt.only);
		std::string item;
		while (std::getline(ss, item, ','))
			if (!item.empty() && stage.find(item) != std::string::npos) return true;
		return false;
	}
	int heavy_repeats() const { return m_opt.heavy_repeats > 0 ? m_opt.heavy_repeats : m_opt.repeats; }

	void add_row(const std::string& stage, const std::string& size, Precision p, const std::vector<double>& ms,
	             double bytes, double flops, const std::string& check) {
		Row r;
		r.stage = stage;
		r.size = size;
		r.precision = precision_name(p);
		r.prec = p;
		r.ms = ms;
		r.median_ms = median_of(ms);
		r.min_ms = *std::min_element(ms.begin(), ms.end());
		r.bytes = bytes;
		r.flops = flops;
		const double seconds = r.median_ms * 1e-3;
		if (seconds > 0) {
			r.gbps = bytes / seconds / 1e9;
			r.tflops = flops / seconds / 1e12;
		}
		m_rows.push_back(r);
		std::fprintf(stderr, "  %-25s %-18s %-5s %10.4f ms  %s\n", stage.c_str(), size.c_str(), r.precision.c_str(),
		             r.median_ms, check.c_str());
		m_rows.back().check = check;
		write_json(false);
	}

	std::vector<double> time(const std::function<void()>& fn, bool heavy = false) {
		return time_repeats(m_dev, m_opt.warmup, heavy ? heavy_repeats() : m_opt.repeats, fn, flush_function());
	}

	/// Overwrites a scratch buffer larger than the last-level cache before a repeat, so that a
	/// stage reads its inputs from DRAM as it would inside a training step (H100's L2 is 50 MB and
	/// would otherwise hold e.g. all of composite's inputs between repeats). Untimed.
	std::function<void()> flush_function() {
		const int mib = m_opt.flush_mib >= 0 ? m_opt.flush_mib : (m_dev.is_cuda() ? 256 : 0);
		if (mib == 0) return {};
		if (m_flush.size() != ((size_t)mib << 20)) m_flush = m_dev.allocate<uint8_t>((size_t)mib << 20);
		return [this] { m_dev.fill_zero(m_flush.data(), m_flush.size()); };
	}

	// --------------------------------------------------------------------------------------------
	// Peaks

	/// Peaks from the best (shortest) repeat, not the median: a peak is what the device can do, and
	/// on a shared machine the median of a long measurement includes other processes' time slices.
	/// Each call keeps the better of its result and the previous one.
	void measure_peaks(const std::string& when) {
		// Bandwidth: one large device-to-device copy; it reads and writes every byte.
		{
			const size_t n = m_sizes.copy_bytes;
			Buffer<uint8_t> a = m_dev.allocate<uint8_t>(n), b = m_dev.allocate<uint8_t>(n);
			m_dev.fill_zero(a.data(), n);
			m_dev.fill_zero(b.data(), n);
			const auto ms = time([&] { m_dev.copy(b.data(), a.data(), n); });
			const double best_ms = *std::min_element(ms.begin(), ms.end());
			m_peak_gbps = std::max(m_peak_gbps, 2.0 * (double)n / (best_ms * 1e-3) / 1e9);
			add_row("peak_copy_" + when, std::to_string(n >> 20) + " MiB", Precision::FP32, ms, 2.0 * (double)n, 0.0,
			        best_text(best_ms));
		}
		if (m_dev.is_cuda()) {
			// The Backend interface has no raw GEMM, so the compute peak is the backend's own GEMM path
			// at its best shape: a one-layer MLP of width G (in_pts = G, no viewdirs) whose forward is
			// one G x G GEMM (plus a G -> 4 output layer, 0.1% of the work) over a batch of 8G rows.
			// It is the same cuBLASLt path as the NeRF MLP, at each precision, so "% of peak" says how
			// close the NeRF's narrow layers come to the widest GEMM this backend can run.
			m_peak_method = "1-layer MLP forward, width " + std::to_string(m_sizes.gemm_size) + ", batch " +
			                std::to_string(8 * m_sizes.gemm_size);
			MlpSpec spec;
			spec.depth = 1;
			spec.width = m_sizes.gemm_size;
			spec.in_pts = m_sizes.gemm_size;
			spec.in_views = 0;
			spec.use_viewdirs = false;
			spec.output_ch = 4;
			spec.skips = {};
			const MlpLayout layout = make_mlp_layout(spec, 0);
			const size_t batch = 8 * (size_t)m_sizes.gemm_size;
			std::vector<float> host_params(layout.n_floats);
			init_mlp_params_host(host_params.data(), layout, 7);
			Buffer<float> params = make_buffer(m_dev, host_params);
			Buffer<float> input = make_buffer(m_dev, uniform_floats(batch * spec.in_pts, -1.0, 1.0, 8));
			Buffer<float> raw = m_dev.allocate<float>(batch * 4);
			const double flops = mlp_forward_flops(layout, (double)batch);
			for (Precision p : m_precisions) {
				auto mlp = m_dev.create_mlp(layout, batch, p);
				const auto ms = time([&] { mlp->forward(raw.data(), params.data(), input.data(), nullptr, batch, false); });
				const double best_ms = *std::min_element(ms.begin(), ms.end());
				m_peak_tflops[p] = std::max(m_peak_tflops[p], flops / (best_ms * 1e-3) / 1e12);
				add_row("peak_gemm_" + when, "G=" + std::to_string(m_sizes.gemm_size), p, ms, 0.0, flops,
				        best_text(best_ms));
			}
		} else {
			// CPU: Eigen's float GEMM directly (the library the CPU backend's MLP is built on), square
			// G x G x G, with the same threads.
			const int g = m_sizes.gemm_size;
			m_peak_method = "Eigen float GEMM " + std::to_string(g) + "^3";
			Eigen::MatrixXf a = Eigen::MatrixXf::Random(g, g), b = Eigen::MatrixXf::Random(g, g), c(g, g);
			const auto ms = time([&] { c.noalias() = a * b; });
			const double flops = 2.0 * (double)g * g * g;
			const double best_ms = *std::min_element(ms.begin(), ms.end());
			NERF_CHECK(c.allFinite());
			m_peak_tflops[Precision::FP32] = std::max(m_peak_tflops[Precision::FP32], flops / (best_ms * 1e-3) / 1e12);
			add_row("peak_gemm_" + when, "G=" + std::to_string(g), Precision::FP32, ms, 0.0, flops,
			        best_text(best_ms));
		}
	}

	// --------------------------------------------------------------------------------------------
	// Ray generation

	RayInputs bench_rays(int n_rays);

	// --------------------------------------------------------------------------------------------
	// Stratified sampling

	StratifiedSpec stratified_spec() const {
		StratifiedSpec spec;
		spec.near = 2.0f;
		spec.far = 6.0f;
		spec.perturb = true;
		spec.seed = 1234;
		spec.step = 17;
		return spec;
	}

	/// Host z [n, S]: the shared stratified math (used as input data for later stages).
	std::vector<float> host_z(size_t n, int n_samples, uint32_t step) const {
		StratifiedSpec spec = stratified_spec();
		spec.step = step;
		std::vector<float> z(n * n_samples);
		for (size_t r = 0; r < n; ++r) stratified_samples(z.data() + r * n_samples, n_samples, (uint32_t)r, spec);
		return z;
	}

	void bench_stratified(const RayInputs& rays, int n_samples);

	// --------------------------------------------------------------------------------------------
	// Positional encoding

	EncodingSpec pts_encoding() const { return EncodingSpec{3, m_sizes.multires, false}; }
	EncodingSpec views_encoding() const { return EncodingSpec{3, m_sizes.multires_views, false}; }

	/// sin^2 + cos^2 = 1 for every pair, the identity block equals the input, and sin(2^f x) matches
	/// double within `atol` (the input x itself is only float-exact to a few ulp).
	void check_encoding(StageCheck& check, const std::vector<float>& enc, const std::vector<double>& x_ref, size_t n_points,
	                    const EncodingSpec& spec, double atol);

	/// Bound for a float encoding of |x| <= x_max: x is float-exact to ~2 ulp (FMA or not in
	/// o + z d), and 2^(L-1) multiplies that error; plus the sinf/cosf error of a few ulp of 1.
	static double encoding_atol(const EncodingSpec& spec, double x_max) {
		return std::ldexp(1.0, spec.n_freqs - 1) * 4.0 * std::ldexp(x_max, -23) + 2e-6;
	}

	void bench_encode_points(const RayInputs& rays, int n_samples);

	void bench_encode_views(const RayInputs& rays, int n_samples);

	// --------------------------------------------------------------------------------------------
	// Compositing

	CompositeSpec composite_spec() const {
		CompositeSpec spec;
		spec.raw_noise_std = 0.0f;
		spec.white_bkgd = true;  // lego
		spec.raw_stride = 4;
		spec.seed = 99;
		return spec;
	}

	/// raw [n, S, 4]: rgb logits N(0, 2^2), sigma N(0, 8^2) so that about half the samples are empty
	/// (relu) and the rest are opaque enough for transmittance to fall along the ray, as in a scene.
	static std::vector<float> synthetic_raw(size_t n_points, uint64_t seed) {
		std::vector<float> raw = normal_floats(4 * n_points, 2.0, seed);
		std::vector<float> sigma = normal_floats(n_points, 8.0, seed + 1);
		for (size_t p = 0; p < n_points; ++p) raw[4 * p + 3] = sigma[p];
		return raw;
	}

	void bench_composite(const RayInputs& rays, int n_samples);

	// --------------------------------------------------------------------------------------------
	// Inverse-CDF resampling and merge

	void bench_resample(const RayInputs& rays);

	// --------------------------------------------------------------------------------------------
	// occ_grid: marching, packed compositing, the grid update

	/// A grid whose occupied cells form a spherical shell of radii 0.5..0.9 in [-1.5, 1.5]^3, as an
	/// object's surface would: rays that hit it keep tens of samples, the rest none.
	std::vector<uint8_t> shell_grid(const OccGridSpec& g) const {
		std::vector<uint8_t> occ(occ_cell_count(g));
		const int R = g.resolution;
		for (int i = 0; i < R; ++i)
			for (int j = 0; j < R; ++j)
				for (int k = 0; k < R; ++k) {
					const double c[3] = {(i + 0.5) / R * 3.0 - 1.5, (j + 0.5) / R * 3.0 - 1.5, (k + 0.5) / R * 3.0 - 1.5};
					const double r = std::sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);
					occ[((size_t)i * R + j) * R + k] = r >= 0.5 && r <= 0.9;
				}
		return occ;
	}

	MarchSpec bench_march_spec() const {
		MarchSpec spec;
		spec.grid.resolution = m_sizes.occ_resolution;
		spec.near = 2.0f;
		spec.far = 6.0f;
		const MarchStepping stepping = march_stepping(spec.grid, 0.0f);  // the default step, as a model's
		spec.step_size = stepping.step_size;
		spec.max_steps = stepping.max_steps;
		spec.perturb = true;
		spec.seed = 31;
		spec.step = 7;
		return spec;
	}

	/// Packed samples of one backend's march (count, scan, fill) of the bench rays.
	struct MarchedHost {
		std::vector<uint32_t> counts, offsets;
		std::vector<float> t, dt, points;
	};
	MarchedHost march_host(Backend& be, const RayInputs& rays, const std::vector<uint8_t>& occ, const MarchSpec& spec);

	void bench_marched(const RayInputs& rays);

	void bench_composite_packed(const RayInputs& rays, const MarchedHost& marched);

	/// The whole grid update of a model (choose cells, points, encoding, the network's density, EMA,
	/// flags), in the warmup (every cell, from the initial grid) and after it (occupied cells plus a
	/// random quarter, from the grid the warmup left).
	void bench_grid_update();

	// --------------------------------------------------------------------------------------------
	// MLP

	MlpSpec mlp_spec() const {
		MlpSpec spec;
		spec.depth = m_sizes.depth;
		spec.width = m_sizes.width;
		spec.in_pts = encoded_width(pts_encoding());
		spec.in_views = encoded_width(views_encoding());
		spec.use_viewdirs = true;
		spec.output_ch = 5;
		spec.skips = {4};
		return spec;
	}

	void bench_mlp(int n_rays, int n_samples, Precision precision);

	// --------------------------------------------------------------------------------------------
	// Loss

	void bench_loss(int n_rays);

	// --------------------------------------------------------------------------------------------
	// Adam

	void bench_adam();

	// --------------------------------------------------------------------------------------------
	// Whole training step and whole render

	Config model_config(int n_rand, Precision precision) const {
		Config cfg;
		cfg.netdepth = cfg.netdepth_fine = m_sizes.depth;
		cfg.netwidth = cfg.netwidth_fine = m_sizes.width;
		cfg.N_rand = n_rand;
		cfg.N_samples = m_sizes.n_coarse;
		cfg.N_importance = m_sizes.n_fine;
		cfg.use_viewdirs = true;
		cfg.multires = m_sizes.multires;
		cfg.multires_views = m_sizes.multires_views;
		cfg.white_bkgd = true;
		cfg.perturb = 1.0f;
		cfg.raw_noise_std = 0.0f;
		cfg.lrate = 5e-4f;
		cfg.lrate_decay = 500;
		cfg.seed = 2024;
		cfg.precision = precision_name(precision);
		cfg.device = m_dev.is_cuda() ? "cuda" : "cpu";
		return cfg;
	}

	RenderSettings render_settings(bool training) const {
		RenderSettings s;
		s.N_samples = m_sizes.n_coarse;
		s.N_importance = m_sizes.n_fine;
		s.perturb = training;
		s.lindisp = false;
		s.raw_noise_std = 0.0f;
		s.white_bkgd = true;
		s.near = 2.0f;
		s.far = 6.0f;
		return s;
	}

	struct TrainInputs {
		Camera cam;
		std::vector<float> images;
		std::vector<Pose> poses;
		std::vector<Camera> cameras;  ///< [n_images] copies of cam
		std::vector<uint32_t> pixel_ids;
	};

	TrainInputs train_inputs(size_t n_rays) const {
		TrainInputs in;
		in.cam = lego_camera(m_sizes.render_hw);
		const std::vector<float> flat_poses = hemisphere_poses(m_sizes.n_images, 21);
		in.poses.resize(m_sizes.n_images);
		for (size_t i = 0; i < in.poses.size(); ++i) std::copy_n(flat_poses.data() + 12 * i, 12, in.poses[i].data());
		in.cameras = shared_camera_table(in.cam, in.poses.size());
		in.images = uniform_floats((size_t)m_sizes.n_images * in.cam.H * in.cam.W * 3, 0.0, 1.0, 22);
		in.pixel_ids.resize(n_rays);
		std::mt19937_64 rng(23);
		for (uint32_t& id : in.pixel_ids) id = (uint32_t)(rng() % ((uint64_t)m_sizes.n_images * in.cam.H * in.cam.W));
		return in;
	}

	/// Losses of two consecutive train steps of a fresh model on `backend` (the second step sees the
	/// first step's Adam update, so it checks backward and Adam too).
	std::array<float, 4> two_step_losses(Backend& backend, const TrainInputs& in, size_t n_rays, Precision p);

	void bench_train_step(int n_rays, Precision precision);
	/// The hash-grid model's whole training step (fp32), as samples trained per second.
	void bench_ngp_train_step(int n_rays);

	void bench_render(Precision precision);

	Backend& m_dev;
	std::unique_ptr<Backend> m_ref;
	Options m_opt;
	Sizes m_sizes;
	std::vector<Precision> m_precisions;
	double m_peak_gbps = 0.0;
	std::map<Precision, double> m_peak_tflops;
	std::string m_peak_method;
	std::vector<Row> m_rows;
	// CPU references are the same for every precision: computed once.
	std::map<std::pair<int, size_t>, std::pair<std::vector<float>, std::vector<float>>> m_mlp_reference;
	std::map<int, std::array<float, 4>> m_train_reference;
	std::vector<float> m_render_reference;
	RenderedRays m_last_render;
	Buffer<uint8_t> m_flush;
	std::string m_command_line;
};

} // namespace nerf::bench
