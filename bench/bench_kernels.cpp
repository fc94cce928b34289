// bench_kernels: time of every pipeline stage at the lego config's sizes, its achieved bandwidth and
// FLOP rate, and both as fractions of this device's own peaks measured in the same run.
//
// Each stage is checked before it is timed. On CUDA the same inputs go through the CPU backend and
// the outputs are compared within a per-stage bound (the comment at each bound says where it comes
// from). On the CPU, comparing the backend with itself would prove nothing, so the outputs are
// checked against double-precision references and invariants instead. A failed check prints the
// stage and the error and the program exits 1.
//
// Counting conventions (see each stage for its formula):
//   bytes  = the compulsory traffic: every input read once and every output written once (a
//            kernel that re-reads from DRAM moves more, so GB/s is a lower bound of the real traffic);
//   FLOPs  = floating-point operations of the formula, with exp/sin/cos/sqrt/div counted as one
//            each (hardware spends more on them), integer RNG work not counted. For the MLP, the
//            GEMMs' 2 * multiply-adds only.
//   peaks  = bandwidth: Backend::copy of a large buffer (bytes read + written);
//            compute: a large GEMM at the same precision (see measure_peaks for how).
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
namespace {

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

Sizes lego_sizes(bool cuda) {
	Sizes s;
	s.n_rands = {1024, 4096};
	s.copy_bytes = cuda ? (size_t)1 << 30 : (size_t)256 << 20;
	s.gemm_size = cuda ? 4096 : 1024;
	return s;
}

Sizes small_sizes(bool cuda) {
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
double mlp_forward_tolerance(Precision p) {
	switch (p) {
	case Precision::FP32: return 1e-4;
	case Precision::TF32: return 1e-2;
	case Precision::FP16: return 1e-2;
	case Precision::BF16: return 5e-2;
	}
	return 0.0;
}
double mlp_backward_tolerance(Precision p) { return 2.0 * mlp_forward_tolerance(p); }

/// Relative bound on the training losses of a whole step, CUDA vs CPU: the forward's bound (the
/// loss is a mean of squared rgb errors, so relative errors of rgb carry over at most doubled).
double train_loss_tolerance(Precision p) { return 2.0 * mlp_forward_tolerance(p) + 1e-5; }

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

std::string best_text(double ms) {
	char b[48];
	std::snprintf(b, sizeof b, "best %.4f ms", ms);
	return b;
}

std::string size_label(size_t n_rays, int n_samples) {
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

	RayInputs bench_rays(int n_rays) {
		RayInputs in;
		in.n = (size_t)n_rays;
		in.cam = lego_camera(m_sizes.render_hw);
		in.poses = hemisphere_poses(m_sizes.n_images, 11);
		in.pixel_ids.resize(in.n);
		std::mt19937_64 rng(12);
		const uint64_t n_pixels = (uint64_t)m_sizes.n_images * in.cam.H * in.cam.W;
		for (uint32_t& id : in.pixel_ids) id = (uint32_t)(rng() % n_pixels);

		Buffer<uint32_t> ids = make_buffer(m_dev, in.pixel_ids);
		Buffer<float> poses = make_buffer(m_dev, in.poses);
		const std::vector<Camera> table = shared_camera_table(in.cam, (size_t)m_sizes.n_images);
		Buffer<Camera> cams = make_buffer(m_dev, table);
		const CameraSet set{poses.data(), cams.data(), (uint32_t)table.size()};
		Buffer<float> o = m_dev.allocate<float>(3 * in.n), d = m_dev.allocate<float>(3 * in.n),
		              v = m_dev.allocate<float>(3 * in.n);
		auto run = [&] { m_dev.generate_rays(o.data(), d.data(), v.data(), ids.data(), in.n, set); };
		run();
		in.rays_o = download(m_dev, o);
		in.rays_d = download(m_dev, d);
		in.viewdirs = download(m_dev, v);

		StageCheck check("generate_rays");
		// The ray is ~15 float operations from integer pixel coordinates; an FMA-contracted
		// compiler (nvcc) and an uncontracted one differ by a few ulp: 1e-5 relative + 1e-6 absolute.
		const Tolerance tol{1e-6, 1e-5};
		if (m_ref) {
			Buffer<uint32_t> r_ids = make_buffer(*m_ref, in.pixel_ids);
			Buffer<float> r_poses = make_buffer(*m_ref, in.poses);
			Buffer<Camera> r_cams = make_buffer(*m_ref, table);
			Buffer<float> ro = m_ref->allocate<float>(3 * in.n), rd = m_ref->allocate<float>(3 * in.n),
			              rv = m_ref->allocate<float>(3 * in.n);
			m_ref->generate_rays(ro.data(), rd.data(), rv.data(), r_ids.data(), in.n,
			                     CameraSet{r_poses.data(), r_cams.data(), (uint32_t)table.size()});
			check.arrays("rays_o", in.rays_o, download(*m_ref, ro), tol);
			check.arrays("rays_d", in.rays_d, download(*m_ref, rd), tol);
			check.arrays("viewdirs", in.viewdirs, download(*m_ref, rv), tol);
		} else {
			// get_rays in double: d = R ((i - cx)/f, -(j - cy)/f, -1), o = t, viewdir = d / |d|.
			std::vector<float> ref_o(3 * in.n), ref_d(3 * in.n), ref_v(3 * in.n);
			const uint32_t per_image = (uint32_t)in.cam.H * in.cam.W;
			for (size_t r = 0; r < in.n; ++r) {
				const uint32_t image = in.pixel_ids[r] / per_image, pixel = in.pixel_ids[r] % per_image;
				const double col = pixel % in.cam.W, row = pixel / in.cam.W;
				const double dc[3] = {(col - in.cam.cx) / in.cam.fx, -(row - in.cam.cy) / in.cam.fy, -1.0};
				const float* c2w = in.poses.data() + 12 * (size_t)image;
				double dw[3], norm = 0;
				for (int k = 0; k < 3; ++k) {
					dw[k] = dc[0] * c2w[4 * k] + dc[1] * c2w[4 * k + 1] + dc[2] * c2w[4 * k + 2];
					norm += dw[k] * dw[k];
				}
				for (int k = 0; k < 3; ++k) {
					ref_o[3 * r + k] = c2w[4 * k + 3];
					ref_d[3 * r + k] = (float)dw[k];
					ref_v[3 * r + k] = (float)(dw[k] / std::sqrt(norm));
				}
			}
			check.arrays("rays_o vs double get_rays", in.rays_o, ref_o, tol);
			check.arrays("rays_d vs double get_rays", in.rays_d, ref_d, tol);
			check.arrays("viewdirs vs double get_rays", in.viewdirs, ref_v, tol);
		}
		if (wanted("generate_rays")) {
			const auto ms = time(run);
			// bytes = n (4 id + 3 * 12 outputs); poses (48 B per image) stay in cache.
			// FLOPs = n * 30: pixel -> camera direction 5, rotation 15 (9 mul + 6 add), normalize 10.
			add_row("generate_rays", size_label(in.n, 0), Precision::FP32, ms, (double)in.n * 40.0,
			        (double)in.n * 30.0, check.summary());
		}
		return in;
	}

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

	void bench_stratified(const RayInputs& rays, int n_samples) {
		const std::string stage = "stratified_samples";
		if (!wanted(stage)) return;
		const size_t n = rays.n;
		const StratifiedSpec spec = stratified_spec();
		Buffer<float> z = m_dev.allocate<float>(n * n_samples);
		auto run = [&] { m_dev.stratified_samples(z.data(), n, n_samples, 0, spec); };
		run();
		const std::vector<float> got = download(m_dev, z);
		StageCheck check(stage);
		if (m_ref) {
			Buffer<float> rz = m_ref->allocate<float>(n * n_samples);
			m_ref->stratified_samples(rz.data(), n, n_samples, 0, spec);
			// z <= 6 (ulp 4.8e-7); a lerp with or without FMA differs by a few ulp. A different
			// random draw would move a sample by up to a stratum (4 / S), far above 1e-5.
			check.arrays("z", got, download(*m_ref, rz), Tolerance{1e-5, 0.0});
		} else {
			// Each z_k lies in its stratum [mid_{k-1}, mid_k] of linspace(near, far) and the ray is sorted.
			double worst = 0.0;
			bool sorted = true, varied = false;
			for (size_t r = 0; r < n; ++r) {
				const float* zr = got.data() + r * n_samples;
				for (int k = 0; k < n_samples; ++k) {
					auto lin = [&](int i) { return spec.near + (spec.far - spec.near) * (double)i / (n_samples - 1); };
					const double lo = k == 0 ? lin(0) : 0.5 * (lin(k - 1) + lin(k));
					const double hi = k == n_samples - 1 ? lin(k) : 0.5 * (lin(k) + lin(k + 1));
					worst = std::max({worst, lo - zr[k], zr[k] - hi});
					if (k && zr[k] < zr[k - 1]) sorted = false;
					if (std::fabs(zr[k] - lin(k)) > 1e-4) varied = true;
				}
			}
			check.bound("z outside its stratum", worst, 1e-5);
			check.require(sorted, "z not sorted along a ray");
			check.require(varied, "perturb = true but every z sits on the linspace");
		}
		const auto ms = time(run);
		// bytes = n S 4 (write only). FLOPs = n S 8: linspace 3, midpoints 2, lerp 3.
		add_row(stage, size_label(n, n_samples), Precision::FP32, ms, (double)n * n_samples * 4.0,
		        (double)n * n_samples * 8.0, check.summary());
	}

	// --------------------------------------------------------------------------------------------
	// Positional encoding

	EncodingSpec pts_encoding() const { return EncodingSpec{3, m_sizes.multires, false}; }
	EncodingSpec views_encoding() const { return EncodingSpec{3, m_sizes.multires_views, false}; }

	/// sin^2 + cos^2 = 1 for every pair, the identity block equals the input, and sin(2^f x) matches
	/// double within `atol` (the input x itself is only float-exact to a few ulp).
	void check_encoding(StageCheck& check, const std::vector<float>& enc, const std::vector<double>& x_ref, size_t n_points,
	                    const EncodingSpec& spec, double atol) {
		const int width = encoded_width(spec);
		double worst_identity = 0, worst_pythagoras = 0, worst_sin = 0;
		for (size_t p = 0; p < n_points; ++p) {
			const float* e = enc.data() + p * width;
			for (int d = 0; d < 3; ++d) worst_identity = std::max(worst_identity, std::fabs(e[d] - x_ref[3 * p + d]));
			for (int f = 0; f < spec.n_freqs; ++f)
				for (int d = 0; d < 3; ++d) {
					const double s = e[3 * (1 + 2 * f) + d], c = e[3 * (1 + 2 * f) + 3 + d];
					worst_pythagoras = std::max(worst_pythagoras, std::fabs(s * s + c * c - 1.0));
					if (p % 7 == 0)
						worst_sin = std::max(worst_sin, std::fabs(s - std::sin(std::ldexp(x_ref[3 * p + d], f))));
				}
		}
		check.bound("identity block vs double x", worst_identity, atol);
		check.bound("sin^2 + cos^2 - 1", worst_pythagoras, 1e-5);
		check.bound("sin(2^f x) vs double", worst_sin, atol);
	}

	/// Bound for a float encoding of |x| <= x_max: x is float-exact to ~2 ulp (FMA or not in
	/// o + z d), and 2^(L-1) multiplies that error; plus the sinf/cosf error of a few ulp of 1.
	static double encoding_atol(const EncodingSpec& spec, double x_max) {
		return std::ldexp(1.0, spec.n_freqs - 1) * 4.0 * std::ldexp(x_max, -23) + 2e-6;
	}

	void bench_encode_points(const RayInputs& rays, int n_samples) {
		const std::string stage = "encode_points";
		if (!wanted(stage)) return;
		const size_t n = rays.n, n_points = n * n_samples;
		const EncodingSpec spec = pts_encoding();
		const int width = encoded_width(spec);
		const std::vector<float> z_host = host_z(n, n_samples, 3);
		Buffer<float> o = make_buffer(m_dev, rays.rays_o), d = make_buffer(m_dev, rays.rays_d),
		              z = make_buffer(m_dev, z_host);
		Buffer<float> enc = m_dev.allocate<float>(n_points * width);
		auto run = [&] { m_dev.encode_points(enc.data(), o.data(), d.data(), z.data(), n, n_samples, spec); };
		run();
		const std::vector<float> got = download(m_dev, enc);
		std::vector<double> x(3 * n_points);
		double x_max = 0;
		for (size_t p = 0; p < n_points; ++p)
			for (int k = 0; k < 3; ++k) {
				const size_t r = p / n_samples;
				x[3 * p + k] = (double)rays.rays_o[3 * r + k] + (double)z_host[p] * rays.rays_d[3 * r + k];
				x_max = std::max(x_max, std::fabs(x[3 * p + k]));
			}
		const double atol = encoding_atol(spec, x_max);
		StageCheck check(stage);
		if (m_ref) {
			Buffer<float> ro = make_buffer(*m_ref, rays.rays_o), rd = make_buffer(*m_ref, rays.rays_d),
			              rz = make_buffer(*m_ref, z_host);
			Buffer<float> renc = m_ref->allocate<float>(n_points * width);
			m_ref->encode_points(renc.data(), ro.data(), rd.data(), rz.data(), n, n_samples, spec);
			check.arrays("gamma(x)", got, download(*m_ref, renc), Tolerance{atol, 0.0});
		} else {
			check_encoding(check, got, x, n_points, spec, atol);
		}
		const auto ms = time(run);
		// bytes = n 24 (o, d) + n S 4 (z) + n S 63 4 (write).
		// FLOPs = n S (6 + 3 L + 6 L): x = o + z d (3 FMA), the 3 L scalings, 3 L sin + 3 L cos.
		const double L = spec.n_freqs;
		add_row(stage, size_label(n, n_samples), Precision::FP32, ms,
		        (double)n * 24.0 + (double)n_points * (4.0 + 4.0 * width), (double)n_points * (6.0 + 9.0 * L),
		        check.summary());
	}

	void bench_encode_views(const RayInputs& rays, int n_samples) {
		const std::string stage = "encode_views";
		if (!wanted(stage)) return;
		const size_t n = rays.n, n_points = n * n_samples;
		const EncodingSpec spec = views_encoding();
		const int width = encoded_width(spec);
		Buffer<float> v = make_buffer(m_dev, rays.viewdirs);
		Buffer<float> enc = m_dev.allocate<float>(n_points * width);
		auto run = [&] { m_dev.encode_views(enc.data(), v.data(), n, n_samples, spec); };
		run();
		const std::vector<float> got = download(m_dev, enc);
		std::vector<double> x(3 * n_points);
		for (size_t p = 0; p < n_points; ++p)
			for (int k = 0; k < 3; ++k) x[3 * p + k] = rays.viewdirs[3 * (p / n_samples) + k];
		const double atol = encoding_atol(spec, 1.0);
		StageCheck check(stage);
		if (m_ref) {
			Buffer<float> rv = make_buffer(*m_ref, rays.viewdirs);
			Buffer<float> renc = m_ref->allocate<float>(n_points * width);
			m_ref->encode_views(renc.data(), rv.data(), n, n_samples, spec);
			check.arrays("gamma(d)", got, download(*m_ref, renc), Tolerance{atol, 0.0});
		} else {
			check_encoding(check, got, x, n_points, spec, atol);
		}
		const auto ms = time(run);
		// bytes = n 12 (viewdirs) + n S 27 4 (write). FLOPs = n S 9 L (scalings, sin, cos).
		add_row(stage, size_label(n, n_samples), Precision::FP32, ms, (double)n * 12.0 + (double)n_points * 4.0 * width,
		        (double)n_points * 9.0 * spec.n_freqs, check.summary());
	}

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

	void bench_composite(const RayInputs& rays, int n_samples) {
		const size_t n = rays.n, n_points = n * n_samples;
		const CompositeSpec spec = composite_spec();
		const std::vector<float> raw_host = synthetic_raw(n_points, 40 + n_samples);
		const std::vector<float> z_host = host_z(n, n_samples, 4);
		const std::vector<float> dL_drgb_host = normal_floats(3 * n, 1e-3, 41);
		Buffer<float> raw = make_buffer(m_dev, raw_host), z = make_buffer(m_dev, z_host),
		              d = make_buffer(m_dev, rays.rays_d), dL_drgb = make_buffer(m_dev, dL_drgb_host);
		Buffer<float> rgb = m_dev.allocate<float>(3 * n), depth = m_dev.allocate<float>(n),
		              disp = m_dev.allocate<float>(n), acc = m_dev.allocate<float>(n),
		              weights = m_dev.allocate<float>(n_points), dL_draw = m_dev.allocate<float>(4 * n_points);
		const CompositeOutputs out{rgb.data(), depth.data(), disp.data(), acc.data(), weights.data()};

		// Double reference of the forward, used by the CPU checks.
		std::vector<float> ref_rgb(3 * n), ref_acc(n), ref_depth(n), ref_w(n_points);
		auto reference_forward = [&] {
			std::vector<double> w(n_samples);
			for (size_t r = 0; r < n; ++r) {
				const RayRef o = composite_ray_ref(w.data(), raw_host.data() + r * n_samples * 4,
				                                   z_host.data() + r * n_samples, rays.rays_d.data() + 3 * r,
				                                   n_samples, 4, spec.white_bkgd);
				for (int c = 0; c < 3; ++c) ref_rgb[3 * r + c] = (float)o.rgb[c];
				ref_acc[r] = (float)o.acc;
				ref_depth[r] = (float)o.depth;
				for (int k = 0; k < n_samples; ++k) ref_w[r * n_samples + k] = (float)w[k];
			}
		};

		if (wanted("composite_forward")) {
			auto run = [&] { m_dev.composite_forward(out, raw.data(), z.data(), d.data(), n, n_samples, 0, spec); };
			run();
			const auto got_rgb = download(m_dev, rgb), got_acc = download(m_dev, acc),
			           got_depth = download(m_dev, depth), got_w = download(m_dev, weights);
			StageCheck check("composite_forward");
			// Transmittance is a product of up to S factors, each with ~2 ulp of exp rounding, so
			// relative error grows to ~2 S ulp = 192 * 2 * 6e-8 ~ 2.3e-5 at S = 192: rtol 1e-4; atol
			// 1e-6 for weights that are exactly 0 on one side and denormal-small on the other.
			const Tolerance tol{1e-6, 1e-4};
			if (m_ref) {
				Buffer<float> r_raw = make_buffer(*m_ref, raw_host), r_z = make_buffer(*m_ref, z_host),
				              r_d = make_buffer(*m_ref, rays.rays_d);
				Buffer<float> r_rgb = m_ref->allocate<float>(3 * n), r_depth = m_ref->allocate<float>(n),
				              r_disp = m_ref->allocate<float>(n), r_acc = m_ref->allocate<float>(n),
				              r_w = m_ref->allocate<float>(n_points);
				m_ref->composite_forward({r_rgb.data(), r_depth.data(), r_disp.data(), r_acc.data(), r_w.data()},
				                         r_raw.data(), r_z.data(), r_d.data(), n, n_samples, 0, spec);
				check.arrays("rgb", got_rgb, download(*m_ref, r_rgb), tol);
				check.arrays("acc", got_acc, download(*m_ref, r_acc), tol);
				// depth ~ z acc <= 6: the same relative bound.
				check.arrays("depth", got_depth, download(*m_ref, r_depth), Tolerance{6e-6, 1e-4});
				check.arrays("weights", got_w, download(*m_ref, r_w), tol);
			} else {
				reference_forward();
				check.arrays("rgb vs double raw2outputs", got_rgb, ref_rgb, tol);
				check.arrays("acc vs double raw2outputs", got_acc, ref_acc, tol);
				check.arrays("depth vs double raw2outputs", got_depth, ref_depth, Tolerance{6e-6, 1e-4});
				check.arrays("weights vs double raw2outputs", got_w, ref_w, tol);
				// Invariants: weights >= 0, their sum is acc <= 1, white-background rgb in [0, 1].
				double worst_sum = 0, worst_acc = 0, worst_rgb = 0, min_w = 0;
				for (size_t r = 0; r < n; ++r) {
					double sum = 0;
					for (int k = 0; k < n_samples; ++k) {
						sum += got_w[r * n_samples + k];
						min_w = std::min(min_w, (double)got_w[r * n_samples + k]);
					}
					worst_sum = std::max(worst_sum, std::fabs(sum - got_acc[r]));
					worst_acc = std::max(worst_acc, got_acc[r] - 1.0);
					for (int c = 0; c < 3; ++c)
						worst_rgb = std::max({worst_rgb, -(double)got_rgb[3 * r + c], got_rgb[3 * r + c] - 1.0});
				}
				check.bound("sum of weights - acc", worst_sum, 1e-5);
				check.bound("acc - 1", worst_acc, 1e-6);
				check.bound("white-background rgb outside [0, 1]", worst_rgb, 1e-6);
				check.bound("negative weight", -min_w, 0.0);
			}
			const auto ms = time(run);
			// bytes = n S (16 raw + 4 z + 4 weights) + n 12 (rays_d) + n 24 (rgb, depth, disp, acc).
			// FLOPs = n S 27: delta 2, alpha 4 (max, mul, exp, sub), w 1, 3 sigmoids 9, rgb 6, depth 2,
			// acc 1, transmittance 2.
			add_row("composite_forward", size_label(n, n_samples), Precision::FP32, ms,
			        (double)n_points * 24.0 + (double)n * 36.0, (double)n_points * 27.0, check.summary());
		}

		if (wanted("composite_backward")) {
			auto run = [&] {
				m_dev.composite_backward(dL_draw.data(), dL_drgb.data(), raw.data(), z.data(), d.data(), n, n_samples, 0,
				                         spec);
			};
			run();
			const auto got = download(m_dev, dL_draw);
			StageCheck check("composite_backward");
			if (m_ref) {
				Buffer<float> r_raw = make_buffer(*m_ref, raw_host), r_z = make_buffer(*m_ref, z_host),
				              r_d = make_buffer(*m_ref, rays.rays_d), r_g = make_buffer(*m_ref, dL_drgb_host);
				Buffer<float> r_out = m_ref->allocate<float>(4 * n_points);
				m_ref->composite_backward(r_out.data(), r_g.data(), r_raw.data(), r_z.data(), r_d.data(), n, n_samples,
				                          0, spec);
				const auto ref = download(*m_ref, r_out);
				// dL/dsigma_k = T_k (g_k - S_k) with S_k a back-to-front sum of up to S terms: its
				// rounding is ~S ulp of the largest term, and g_k - S_k may cancel, so the bound is
				// absolute: S * 4 ulp of the largest gradient, plus 1e-4 relative.
				const double atol = n_samples * 4.0 * std::ldexp(max_abs(ref.data(), ref.size()), -23);
				check.arrays("dL_draw", got, ref, Tolerance{atol, 1e-4});
			} else {
				// Directional derivative on a subset of rays: the loss sum_r dL_drgb_r . rgb_r(raw) in
				// double by central differences along random directions, against sum dL_draw . v.
				// Samples with |sigma| < 1e-2 are left out of v (relu's kink).
				const size_t n_rays_checked = std::min<size_t>(n, 32);
				std::mt19937_64 rng(43);
				std::normal_distribution<double> normal(0.0, 1.0);
				for (int trial = 0; trial < 3; ++trial) {
					std::vector<double> v(4 * n_rays_checked * n_samples);
					for (size_t i = 0; i < v.size(); ++i)
						v[i] = (i % 4 == 3 && std::fabs(raw_host[i]) < 1e-2) ? 0.0 : normal(rng);
					const double h = 1e-6;
					auto loss_at = [&](double sign) {
						double loss = 0;
						std::vector<double> raw_r(4 * n_samples);
						for (size_t r = 0; r < n_rays_checked; ++r) {
							for (int i = 0; i < 4 * n_samples; ++i)
								raw_r[i] = raw_host[r * 4 * n_samples + i] + sign * h * v[r * 4 * n_samples + i];
							const RayRef o = composite_ray_ref(nullptr, raw_r.data(), z_host.data() + r * n_samples,
							                                   rays.rays_d.data() + 3 * r, n_samples, 4, spec.white_bkgd);
							for (int c = 0; c < 3; ++c) loss += dL_drgb_host[3 * r + c] * o.rgb[c];
						}
						return loss;
					};
					const double fd = (loss_at(1.0) - loss_at(-1.0)) / (2.0 * h);
					double analytic = 0, scale = 0;
					for (size_t i = 0; i < v.size(); ++i) {
						analytic += got[i] * v[i];
						scale += std::fabs(got[i] * v[i]);
					}
					// float gradients (~1e-6 relative each) summed: 1e-4 of the sum of magnitudes.
					check.bound("directional derivative vs double central difference", std::fabs(analytic - fd),
					            1e-4 * scale + 1e-12);
				}
				// The unused fifth-and-beyond channels do not exist here (stride 4); all gradients finite.
				bool finite = true;
				for (float g : got) finite = finite && std::isfinite(g);
				check.require(finite, "non-finite dL_draw");
			}
			const auto ms = time(run);
			// bytes = n S (16 raw + 4 z + 16 dL_draw) + n 24 (rays_d, dL_drgb).
			// FLOPs = n S 45: the forward's alpha and transmittance again (~12), then per sample
			// 3 sigmoids (9), g and the rgb gradients (12), dL/dalpha and dsigma (8), the suffix (4).
			add_row("composite_backward", size_label(n, n_samples), Precision::FP32, ms,
			        (double)n_points * 36.0 + (double)n * 24.0, (double)n_points * 45.0, check.summary());
		}
	}

	// --------------------------------------------------------------------------------------------
	// Inverse-CDF resampling and merge

	void bench_resample(const RayInputs& rays) {
		const std::string stage = "resample";
		if (!wanted(stage)) return;
		const size_t n = rays.n;
		const int nc = m_sizes.n_coarse, nf = m_sizes.n_fine, nt = nc + nf;
		// Inputs as in training: stratified z and the weights raw2outputs makes of a synthetic raw.
		const std::vector<float> zc_host = host_z(n, nc, 5);
		const std::vector<float> raw_host = synthetic_raw(n * nc, 50);
		std::vector<float> w_host(n * nc);
		{
			std::vector<double> w(nc);
			for (size_t r = 0; r < n; ++r) {
				composite_ray_ref(w.data(), raw_host.data() + r * nc * 4, zc_host.data() + r * nc,
				                  rays.rays_d.data() + 3 * r, nc, 4, true);
				for (int k = 0; k < nc; ++k) w_host[r * nc + k] = (float)w[k];
			}
		}
		PdfSpec spec;
		spec.det = false;  // training (perturb > 0)
		spec.seed = 77;
		spec.step = 5;
		Buffer<float> zc = make_buffer(m_dev, zc_host), w = make_buffer(m_dev, w_host);
		Buffer<float> z_all = m_dev.allocate<float>(n * nt), z_fine = m_dev.allocate<float>(n * nf);
		auto run = [&] { m_dev.resample(z_all.data(), z_fine.data(), zc.data(), w.data(), n, nc, nf, 0, spec); };
		run();
		const auto got_all = download(m_dev, z_all), got_fine = download(m_dev, z_fine);
		StageCheck check(stage);
		if (m_ref) {
			Buffer<float> r_zc = make_buffer(*m_ref, zc_host), r_w = make_buffer(*m_ref, w_host);
			Buffer<float> r_all = m_ref->allocate<float>(n * nt), r_fine = m_ref->allocate<float>(n * nf);
			m_ref->resample(r_all.data(), r_fine.data(), r_zc.data(), r_w.data(), n, nc, nf, 0, spec);
			// The cdf is a running sum whose rounding may differ by FMA contraction; a draw u within
			// an ulp of a cdf value may then fall into the neighbouring bin. The inverse CDF is
			// continuous across ordinary bin edges (such a sample still matches to ~1e-5), but not
			// across degenerate bins (denom < 1e-5 replaced by 1), so allow 0.1% outliers over an
			// absolute 1e-4 (z in [2, 6], bins ~0.06 wide).
			const Tolerance tol{1e-4, 0.0, 1e-3};
			check.arrays("z_fine", got_fine, download(*m_ref, r_fine), tol);
			check.arrays("z_all", got_all, download(*m_ref, r_all), tol);
		} else {
			// z_all is sorted and is exactly the merge of z_coarse and z_fine; z_fine lies within the
			// bins (the coarse midpoints).
			bool sorted = true, merged = true;
			double outside = 0;
			for (size_t r = 0; r < n; ++r) {
				const float* a = got_all.data() + r * nt;
				for (int k = 1; k < nt; ++k) sorted = sorted && a[k - 1] <= a[k];
				std::vector<float> expect(zc_host.begin() + r * nc, zc_host.begin() + (r + 1) * nc);
				expect.insert(expect.end(), got_fine.begin() + r * nf, got_fine.begin() + (r + 1) * nf);
				std::sort(expect.begin(), expect.end());
				merged = merged && std::equal(expect.begin(), expect.end(), a);
				const float* zr = zc_host.data() + r * nc;
				const double lo = 0.5 * (zr[0] + zr[1]), hi = 0.5 * (zr[nc - 2] + zr[nc - 1]);
				for (int k = 0; k < nf; ++k) {
					const double s = got_fine[r * nf + k];
					outside = std::max({outside, lo - s, s - hi});
				}
			}
			check.require(sorted, "z_all not sorted along a ray");
			check.require(merged, "z_all is not sort(cat(z_coarse, z_fine))");
			check.bound("z_fine outside the coarse midpoints", outside, 1e-5);
			// The draws follow the weights: the mean of z_fine tracks the weighted mean of the bins.
			double worst_mean = 0;
			for (size_t r = 0; r < n; ++r) {
				double sw = 0, swz = 0, mean_fine = 0;
				const float* zr = zc_host.data() + r * nc;
				for (int k = 1; k < nc - 1; ++k) {
					const double wk = w_host[r * nc + k] + 1e-5;
					sw += wk;
					swz += wk * 0.25 * (zr[k - 1] + 2.0 * zr[k] + zr[k + 1]);  // the bin's centre
				}
				for (int k = 0; k < nf; ++k) mean_fine += got_fine[r * nf + k] / nf;
				worst_mean = std::max(worst_mean, std::fabs(mean_fine - swz / sw));
			}
			// With nf independent draws the sample mean's error is ~ spread / sqrt(nf) <= 4 / sqrt(nf);
			// 2.5 times that is a loose but failing-capable bound (a wrong cdf moves the mean by ~1).
			check.bound("mean of z_fine vs weighted mean of bins", worst_mean, 2.5 * 4.0 / std::sqrt((double)nf));
		}
		const auto ms = time(run);
		// bytes = n (4 Nc z + 4 Nc weights + 4 Nf z_fine + 4 (Nc + Nf) z_all).
		// FLOPs = n (3 Nc cdf (add eps, div, add) + 2 Nc midpoints + Nf (log2 Nc compares + 7 for the
		// interpolation) + (Nc + Nf) merge compares); compares count as operations.
		const double flops = (double)n * (5.0 * nc + nf * (std::log2((double)nc) + 7.0) + nt);
		add_row(stage, size_label(n, nc) + "+" + std::to_string(nf), Precision::FP32, ms,
		        (double)n * 4.0 * (2.0 * nc + nf + nt), flops, check.summary());
	}

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
	MarchedHost march_host(Backend& be, const RayInputs& rays, const std::vector<uint8_t>& occ, const MarchSpec& spec) {
		const size_t n = rays.n;
		Buffer<float> o = make_buffer(be, rays.rays_o), d = make_buffer(be, rays.rays_d);
		Buffer<uint8_t> g = make_buffer(be, occ);
		Buffer<uint32_t> counts = be.allocate<uint32_t>(n), offsets = be.allocate<uint32_t>(n + 1);
		be.march_count(counts.data(), o.data(), d.data(), n, g.data(), 0, spec);
		be.scan_counts(offsets.data(), counts.data(), n);
		MarchedHost m;
		m.counts = download(be, counts);
		m.offsets = download(be, offsets);
		const size_t total = m.offsets[n];
		Buffer<float> t = be.allocate<float>(total), dt = be.allocate<float>(total), p = be.allocate<float>(3 * total);
		Buffer<uint32_t> ray = be.allocate<uint32_t>(total);
		be.march_fill({t.data(), dt.data(), p.data(), ray.data()}, offsets.data(), o.data(), d.data(), n, g.data(), 0, spec);
		m.t = download(be, t);
		m.dt = download(be, dt);
		m.points = download(be, p);
		return m;
	}

	void bench_marched(const RayInputs& rays) {
		const size_t n = rays.n;
		const MarchSpec spec = bench_march_spec();
		const std::vector<uint8_t> occ = shell_grid(spec.grid);
		const MarchedHost got = march_host(m_dev, rays, occ, spec);
		const size_t total = got.offsets[n];

		if (wanted("march")) {
			StageCheck check("march");
			if (m_ref) {
				// Only IEEE-exact operations and the integer RNG (see tests/gpu/test_gpu_occupancy.cpp): exact.
				const MarchedHost ref = march_host(*m_ref, rays, occ, spec);
				check.require(ref.counts == got.counts, "per-ray sample counts differ from the CPU backend");
				check.arrays("t", got.t, ref.t, Tolerance{0.0, 0.0});
				check.arrays("points", got.points, ref.points, Tolerance{0.0, 0.0});
			} else {
				// Invariants from the definition: every sample in an occupied cell, inside [near, far),
				// a whole number of steps after the ray's first sample, and x = o + t d.
				double worst_lattice = 0.0, worst_point = 0.0;
				bool in_occupied = true, in_range = true;
				for (size_t r = 0; r < n; ++r)
					for (uint32_t k = 0; k < got.counts[r]; ++k) {
						const size_t i = got.offsets[r] + k;
						const float* x = got.points.data() + 3 * i;
						const int32_t cell = occ_cell_of(x, spec.grid);
						in_occupied = in_occupied && cell >= 0 && occ[cell];
						in_range = in_range && got.t[i] >= spec.near && got.t[i] < spec.far;
						const double steps = ((double)got.t[i] - got.t[got.offsets[r]]) / got.dt[i];
						worst_lattice = std::max(worst_lattice, std::fabs(steps - std::round(steps)));
						for (int c = 0; c < 3; ++c)
							worst_point = std::max(worst_point, std::fabs((double)x[c] - (rays.rays_o[3 * r + c] +
							                                                             (double)rays.rays_d[3 * r + c] * got.t[i])));
					}
				check.require(in_occupied, "a marched sample lies outside the occupied cells");
				check.require(in_range, "a marched sample lies outside [near, far)");
				// t = t0 + (k + u) dt in float: k dt is exact to ~k ulp of t (<= 1026 steps of ~6): 1e-3 of a step.
				check.bound("distance of samples from the step lattice (steps)", worst_lattice, 1e-2);
				check.bound("|x - (o + t d)|", worst_point, 1e-5);
				check.require(total > n, "the shell grid gave fewer than one sample per ray");
			}
			Buffer<float> o = make_buffer(m_dev, rays.rays_o), d = make_buffer(m_dev, rays.rays_d);
			Buffer<uint8_t> g = make_buffer(m_dev, occ);
			Buffer<uint32_t> counts = m_dev.allocate<uint32_t>(n), offsets = m_dev.allocate<uint32_t>(n + 1);
			Buffer<float> t = m_dev.allocate<float>(total), dt = m_dev.allocate<float>(total), p = m_dev.allocate<float>(3 * total);
			Buffer<uint32_t> ray = m_dev.allocate<uint32_t>(total);
			auto run = [&] {
				m_dev.march_count(counts.data(), o.data(), d.data(), n, g.data(), 0, spec);
				m_dev.scan_counts(offsets.data(), counts.data(), n);
				m_dev.march_fill({t.data(), dt.data(), p.data(), ray.data()}, offsets.data(), o.data(), d.data(), n, g.data(),
				                 0, spec);
			};
			const auto ms = time(run);
			// Without the host read of the total a training step does in between (its count is known here).
			// bytes = n (24 rays + 8 counts/offsets, twice) + samples (4 t + 4 dt + 12 points + 4 ray);
			// the grid's bytes are reads that mostly hit the cache, not counted.
			// FLOPs = n 2 (20 per ray: slab test, norm) + per step point, both passes: 2 (8: t, x, cell).
			double steps = 0.0;
			for (size_t r = 0; r < n; ++r) {
				float t0, t1;
				if (ray_box_interval(&t0, &t1, rays.rays_o.data() + 3 * r, rays.rays_d.data() + 3 * r, spec.grid))
					steps += std::max(0.0, (std::min(t1, spec.far) - std::max(t0, spec.near)) *
					                         std::sqrt((double)rays.rays_d[3 * r] * rays.rays_d[3 * r] +
					                                   (double)rays.rays_d[3 * r + 1] * rays.rays_d[3 * r + 1] +
					                                   (double)rays.rays_d[3 * r + 2] * rays.rays_d[3 * r + 2]) / spec.step_size);
			}
			add_row("march", size_label(n, 0) + " M=" + std::to_string(total), Precision::FP32, ms,
			        (double)n * 64.0 + (double)total * 24.0, (double)n * 40.0 + steps * 16.0, check.summary());
		}
		if (total > 0) bench_composite_packed(rays, got);
	}

	void bench_composite_packed(const RayInputs& rays, const MarchedHost& marched) {
		const size_t n = rays.n, total = marched.offsets[n];
		const CompositeSpec spec = composite_spec();
		// raw with sigma scaled to the marching step (0.005): densities ~100 make a shell opaque over ~20 steps.
		std::vector<float> raw_host = synthetic_raw(total, 60);
		for (size_t k = 0; k < total; ++k) raw_host[4 * k + 3] *= 12.0f;
		const std::vector<float> dL_drgb_host = normal_floats(3 * n, 1e-3, 61);
		auto packed_inputs = [&](Backend& be) {
			struct {
				Buffer<float> raw, t, dt, d, g;
				Buffer<uint32_t> offsets, counts;
			} in{make_buffer(be, raw_host), make_buffer(be, marched.t), make_buffer(be, marched.dt),
			     make_buffer(be, rays.rays_d), make_buffer(be, dL_drgb_host), make_buffer(be, marched.offsets),
			     make_buffer(be, marched.counts)};
			return in;
		};
		auto in = packed_inputs(m_dev);
		Buffer<float> rgb = m_dev.allocate<float>(3 * n), depth = m_dev.allocate<float>(n), disp = m_dev.allocate<float>(n),
		              acc = m_dev.allocate<float>(n), dL_draw = m_dev.allocate<float>(4 * total);
		const CompositeOutputs out{rgb.data(), depth.data(), disp.data(), acc.data(), nullptr};
		const std::string size = size_label(n, 0) + " M=" + std::to_string(total);

		if (wanted("composite_forward_packed")) {
			auto run = [&] {
				m_dev.composite_forward_packed(out, in.raw.data(), in.t.data(), in.dt.data(), in.offsets.data(),
				                               in.counts.data(), in.d.data(), n, 0, spec);
			};
			run();
			const auto got_rgb = download(m_dev, rgb), got_acc = download(m_dev, acc);
			StageCheck check("composite_forward_packed");
			// As composite_forward: ~2 S ulp of transmittance rounding (S up to ~400 here): rtol 2e-4.
			const Tolerance tol{1e-6, 2e-4};
			if (m_ref) {
				auto ref_in = packed_inputs(*m_ref);
				Buffer<float> r_rgb = m_ref->allocate<float>(3 * n), r_acc = m_ref->allocate<float>(n);
				CompositeOutputs ro;
				ro.rgb = r_rgb.data();
				ro.acc = r_acc.data();
				m_ref->composite_forward_packed(ro, ref_in.raw.data(), ref_in.t.data(), ref_in.dt.data(), ref_in.offsets.data(),
				                                ref_in.counts.data(), ref_in.d.data(), n, 0, spec);
				check.arrays("rgb", got_rgb, download(*m_ref, r_rgb), tol);
				check.arrays("acc", got_acc, download(*m_ref, r_acc), tol);
			} else {
				// Double reference: raw2outputs with each sample's gap replaced by its own dt.
				std::vector<float> ref_rgb(3 * n), ref_acc(n);
				for (size_t r = 0; r < n; ++r) {
					const size_t first = marched.offsets[r];
					const RayRef o = composite_ray_ref(nullptr, raw_host.data() + 4 * first, marched.t.data() + first,
					                                   rays.rays_d.data() + 3 * r, (int)marched.counts[r], 4, spec.white_bkgd,
					                                   marched.dt.data() + first);
					for (int c = 0; c < 3; ++c) ref_rgb[3 * r + c] = (float)o.rgb[c];
					ref_acc[r] = (float)o.acc;
				}
				check.arrays("rgb vs double", got_rgb, ref_rgb, tol);
				check.arrays("acc vs double", got_acc, ref_acc, tol);
			}
			const auto ms = time(run);
			// bytes = M (16 raw + 4 t + 4 dt) + n (8 offsets/counts + 12 rays_d + 24 outputs).
			// FLOPs = M 27 (as composite_forward per sample).
			add_row("composite_forward_packed", size, Precision::FP32, ms, (double)total * 24.0 + (double)n * 44.0,
			        (double)total * 27.0, check.summary());
		}
		if (wanted("composite_backward_packed")) {
			auto run = [&] {
				m_dev.composite_backward_packed(dL_draw.data(), in.g.data(), in.raw.data(), in.dt.data(), in.offsets.data(),
				                                in.counts.data(), in.d.data(), n, total, 0, spec);
			};
			run();
			const auto got = download(m_dev, dL_draw);
			StageCheck check("composite_backward_packed");
			if (m_ref) {
				auto ref_in = packed_inputs(*m_ref);
				Buffer<float> r_out = m_ref->allocate<float>(4 * total);
				m_ref->composite_backward_packed(r_out.data(), ref_in.g.data(), ref_in.raw.data(), ref_in.dt.data(),
				                                 ref_in.offsets.data(), ref_in.counts.data(), ref_in.d.data(), n, total, 0, spec);
				const auto ref = download(*m_ref, r_out);
				// As composite_backward: S * 4 ulp of the largest gradient (S up to ~400), plus 1e-4 relative.
				const double atol = 400.0 * 4.0 * std::ldexp(max_abs(ref.data(), ref.size()), -23);
				check.arrays("dL_draw", got, ref, Tolerance{atol, 1e-4});
			} else {
				// Directional derivative of sum_r dL_drgb_r . rgb_r on a few rays by central differences
				// of the double reference, against sum dL_draw . v (samples at relu's kink left out).
				std::mt19937_64 rng(62);
				std::normal_distribution<double> normal(0.0, 1.0);
				const size_t rays_checked = std::min<size_t>(n, 64);
				const size_t end = marched.offsets[rays_checked];
				std::vector<double> v(4 * end);
				for (size_t i = 0; i < v.size(); ++i) v[i] = (i % 4 == 3 && std::fabs(raw_host[i]) < 1e-2) ? 0.0 : normal(rng);
				const double h = 1e-6;
				auto loss_at = [&](double sign) {
					double loss = 0.0;
					std::vector<double> raw_r;
					for (size_t r = 0; r < rays_checked; ++r) {
						const size_t first = marched.offsets[r];
						raw_r.assign(4 * (size_t)marched.counts[r], 0.0);
						for (size_t i = 0; i < raw_r.size(); ++i) raw_r[i] = raw_host[4 * first + i] + sign * h * v[4 * first + i];
						const RayRef o = composite_ray_ref(nullptr, raw_r.data(), marched.t.data() + first,
						                                   rays.rays_d.data() + 3 * r, (int)marched.counts[r], 4,
						                                   spec.white_bkgd, marched.dt.data() + first);
						for (int c = 0; c < 3; ++c) loss += dL_drgb_host[3 * r + c] * o.rgb[c];
					}
					return loss;
				};
				const double fd = (loss_at(1.0) - loss_at(-1.0)) / (2.0 * h);
				double analytic = 0.0, scale = 0.0;
				for (size_t i = 0; i < v.size(); ++i) {
					analytic += got[i] * v[i];
					scale += std::fabs(got[i] * v[i]);
				}
				check.bound("directional derivative vs double central difference", std::fabs(analytic - fd), 1e-4 * scale + 1e-12);
				check.require(scale > 0.0, "all gradients of the checked rays are 0");
			}
			const auto ms = time(run);
			// bytes = M (16 raw + 4 dt + 16 dL_draw) + n (8 + 12 + 12); FLOPs = M 45 (as composite_backward).
			add_row("composite_backward_packed", size, Precision::FP32, ms, (double)total * 36.0 + (double)n * 32.0,
			        (double)total * 45.0, check.summary());
		}
	}

	/// The whole grid update of a model (choose cells, points, encoding, the network's density, EMA,
	/// flags), in the warmup (every cell, from the initial grid) and after it (occupied cells plus a
	/// random quarter, from the grid the warmup left).
	void bench_grid_update() {
		if (!wanted("occ_grid_update") && !wanted("occ_grid_update_warmup")) return;
		const Precision precision = m_dev.is_cuda() ? Precision::TF32 : Precision::FP32;
		auto grid_config = [&](Precision p) {
			Config cfg = model_config(1024, p);
			cfg.occ_grid = true;
			cfg.occ_resolution = m_sizes.occ_resolution;
			cfg.dataset_type = "blender";
			return cfg;
		};
		const Config cfg = grid_config(precision);
		NerfModel model(m_dev, cfg);
		const uint32_t cells = occ_cell_count(model.occ_grid());
		auto grid_of = [cells](Backend& be, NerfModel& m) {
			std::pair<std::vector<float>, std::vector<uint8_t>> g{std::vector<float>(cells), std::vector<uint8_t>(cells)};
			be.download(g.first.data(), m.occ_density(), cells * sizeof(float));
			be.download(g.second.data(), m.occ_occupied(), cells);
			return g;
		};
		const auto initial = grid_of(m_dev, model);
		std::unique_ptr<NerfModel> ref_model;
		if (m_ref) {
			ref_model = std::make_unique<NerfModel>(*m_ref, grid_config(Precision::FP32));
			std::vector<float> params(model.n_floats());
			m_dev.download(params.data(), model.params(), params.size() * sizeof(float));
			m_ref->upload(ref_model->params(), params.data(), params.size() * sizeof(float));
		}
		auto start = initial;
		for (bool warmup : {true, false}) {
			const uint32_t step = warmup ? 1u : (uint32_t)cfg.occ_warmup + 1u;
			StageCheck check("occ_grid_update");
			model.set_occupancy_grid(start.first, start.second);
			const uint64_t before = model.counters().grid_samples;
			model.update_occupancy_grid(step);
			const double evaluated = (double)(model.counters().grid_samples - before);
			const auto after = grid_of(m_dev, model);
			if (ref_model) {
				// The same parameters and starting grid on the CPU backend: the EMA within the MLP forward's
				// bound for this precision (a density is one network output, relu'd and scaled).
				ref_model->set_occupancy_grid(start.first, start.second);
				ref_model->update_occupancy_grid(step);
				const auto ref = grid_of(*m_ref, *ref_model);
				check.arrays("density EMA", after.first, ref.first,
				             Tolerance{mlp_forward_tolerance(precision) * max_abs(ref.first.data(), cells) + 1e-12, 0.0});
			} else if (warmup) {
				// Every cell's EMA is relu(sigma) step_size at its jittered point: 64 cells against the
				// double MLP, within 1e-4 of the largest (the fp32 MLP's bound, mlp_forward_tolerance).
				std::vector<float> params_f(model.n_floats());
				m_dev.download(params_f.data(), model.params(), params_f.size() * sizeof(float));
				const std::vector<double> params(params_f.begin(), params_f.end());
				OccUpdateSpec spec;
				spec.grid = model.occ_grid();
				spec.step_size = model.render_step_size();
				spec.all_cells = true;
				spec.seed = cfg.seed;
				spec.step = step;
				std::vector<float> got, ref;
				std::vector<float> enc_pts(encoded_width(pts_encoding())), enc_views(encoded_width(views_encoding()));
				const float up[3] = {0.0f, 0.0f, 1.0f};
				positional_encode(enc_views.data(), up, views_encoding());
				for (uint32_t c = 0; c < cells; c += cells / 64) {
					float x[3];
					occ_cell_point(x, c, spec);
					positional_encode(enc_pts.data(), x, pts_encoding());
					double raw[4];
					mlp_forward_ref(raw, params.data(), model.coarse_layout(), enc_pts.data(), enc_views.data());
					got.push_back(after.first[c]);
					ref.push_back((float)(std::max(raw[3], 0.0) * spec.step_size));
				}
				check.arrays("density EMA vs double MLP", got, ref, Tolerance{1e-4 * max_abs(ref.data(), ref.size()) + 1e-12, 0.0});
			} else {
				// Cells neither occupied nor drawn keep their EMA exactly; evaluated ones never fall below
				// the decayed EMA.
				bool kept = true, decayed = true;
				for (uint32_t c = 0; c < cells; ++c) {
					const bool drawn = random_uniform(cfg.seed, step, c, 0, RngStream::OccGridChoice) < 0.25f;
					if (!start.second[c] && !drawn) kept = kept && after.first[c] == start.first[c];
					else decayed = decayed && after.first[c] >= 0.95f * start.first[c];
				}
				check.require(kept, "an update changed the EMA of a cell it did not evaluate");
				check.require(decayed, "an evaluated cell's EMA fell below 0.95 of its previous value");
				check.require(evaluated < cells, "an update after the warmup evaluated every cell");
			}
			check.require(evaluated > 0, "the update evaluated no cell");
			auto run = [&] {
				model.set_occupancy_grid(start.first, start.second);  // the choice depends on the grid: same start
				model.update_occupancy_grid(step);
			};
			const auto ms = time(run, true);
			// The network dominates: FLOPs = evaluated cells x one MLP forward. bytes = per cell 4 density +
			// 1 flag read and written, 4 choice + 4 offset written and read, plus per evaluated cell 16
			// (its index and point) and the encoding's rows (written and read by the network).
			const double enc_bytes = 4.0 * (encoded_width(pts_encoding()) + encoded_width(views_encoding())) * 2.0;
			add_row(warmup ? "occ_grid_update_warmup" : "occ_grid_update",
			        "R=" + std::to_string(m_sizes.occ_resolution) + "^3 eval=" + std::to_string((size_t)evaluated), precision,
			        ms, (double)cells * 26.0 + evaluated * (16.0 + enc_bytes),
			        evaluated * mlp_forward_flops(model.coarse_layout(), 1.0), check.summary());
			if (warmup) start = after;
		}
	}

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

	void bench_mlp(int n_rays, int n_samples, Precision precision) {
		if (!wanted("mlp_forward") && !wanted("mlp_backward")) return;
		const MlpLayout layout = make_mlp_layout(mlp_spec(), 0);
		const MlpSpec& spec = layout.spec;
		const size_t n = (size_t)n_rays * n_samples;
		const uint64_t seed = 60 + n_samples;
		std::vector<float> params_host(layout.n_floats);
		init_mlp_params_host(params_host.data(), layout, seed);
		// Encoded inputs are bounded like the real ones: gamma values in [-1, 1] (the identity
		// block of points up to ~4 makes no difference to the GEMMs).
		const std::vector<float> pts_host = uniform_floats(n * spec.in_pts, -1.0, 1.0, seed + 1);
		const std::vector<float> views_host = uniform_floats(n * spec.in_views, -1.0, 1.0, seed + 2);
		// dL/draw of order 1, as a loss-scaled gradient (what the fp16 path sees).
		const std::vector<float> dL_draw_host = normal_floats(n * 4, 1.0, seed + 3);
		Buffer<float> params = make_buffer(m_dev, params_host), pts = make_buffer(m_dev, pts_host),
		              views = make_buffer(m_dev, views_host), dL_draw = make_buffer(m_dev, dL_draw_host);
		Buffer<float> raw = m_dev.allocate<float>(n * 4), grads = m_dev.allocate<float>(layout.n_floats);
		m_dev.fill_zero(grads.data(), grads.bytes());
		auto mlp = m_dev.create_mlp(layout, n, precision);

		StageCheck check_fwd("mlp_forward"), check_bwd("mlp_backward");
		if (m_ref) {
			// The same inputs through the CPU backend on the first check_rows samples (rows are
			// independent in the forward; the backward's gradients are sums over those rows).
			const size_t nc = std::min(n, m_opt.check_rows);
			auto ref_key = std::make_pair(n_samples, nc);
			auto cached = m_mlp_reference.find(ref_key);
			if (cached == m_mlp_reference.end()) {
				Buffer<float> r_params = make_buffer(*m_ref, params_host);
				Buffer<float> r_pts = m_ref->allocate<float>(nc * spec.in_pts),
				              r_views = m_ref->allocate<float>(nc * spec.in_views),
				              r_dL = m_ref->allocate<float>(nc * 4), r_raw = m_ref->allocate<float>(nc * 4),
				              r_grads = m_ref->allocate<float>(layout.n_floats);
				m_ref->upload(r_pts.data(), pts_host.data(), r_pts.bytes());
				m_ref->upload(r_views.data(), views_host.data(), r_views.bytes());
				m_ref->upload(r_dL.data(), dL_draw_host.data(), r_dL.bytes());
				m_ref->fill_zero(r_grads.data(), r_grads.bytes());
				auto r_mlp = m_ref->create_mlp(layout, nc, Precision::FP32);
				r_mlp->forward(r_raw.data(), r_params.data(), r_pts.data(), r_views.data(), nc, true);
				r_mlp->backward(r_grads.data(), r_params.data(), r_dL.data(), nc);
				cached = m_mlp_reference.emplace(ref_key, std::make_pair(download(*m_ref, r_raw), download(*m_ref, r_grads)))
				             .first;
			}
			const auto& [ref_raw, ref_grads] = cached->second;
			mlp->forward(raw.data(), params.data(), pts.data(), views.data(), nc, true);
			mlp->backward(grads.data(), params.data(), dL_draw.data(), nc);
			std::vector<float> got_raw(nc * 4), got_grads = download(m_dev, grads);
			m_dev.download(got_raw.data(), raw.data(), got_raw.size() * sizeof(float));
			const double tf = mlp_forward_tolerance(precision), tb = mlp_backward_tolerance(precision);
			check_fwd.arrays("raw", got_raw, ref_raw, Tolerance{tf * max_abs(ref_raw.data(), ref_raw.size()), 0.0});
			for (const LinearLayer& L : layout.layers) {
				if (!mlp_layer_used(spec, L)) continue;
				for (auto [offset, count, part] : {std::make_tuple(L.weight_offset, (size_t)L.in * L.out, "weight"),
				                                    std::make_tuple(L.bias_offset, (size_t)L.out, "bias")}) {
					std::vector<float> g(got_grads.begin() + offset, got_grads.begin() + offset + count),
					    e(ref_grads.begin() + offset, ref_grads.begin() + offset + count);
					check_bwd.arrays("dL/d " + L.name + "." + part, g, e, Tolerance{tb * max_abs(e.data(), e.size()), 0.0});
				}
			}
		} else {
			// Forward vs the double MLP on a few rows; backward: per layer, the directional derivative
			// of L = sum dL_draw . raw along a random direction of that layer's parameters, against a
			// double central difference (h = 1e-7 keeps every ReLU on its side).
			const size_t rows = std::min<size_t>(n, 8);
			std::vector<double> params_d(params_host.begin(), params_host.end());
			std::vector<float> ref_raw(rows * 4);
			auto loss_at = [&](const std::vector<double>& p, std::vector<float>* raw_out) {
				double loss = 0;
				for (size_t r = 0; r < rows; ++r) {
					double out[5];
					mlp_forward_ref(out, p.data(), layout, pts_host.data() + r * spec.in_pts,
					                views_host.data() + r * spec.in_views);
					for (int c = 0; c < 4; ++c) {
						loss += dL_draw_host[4 * r + c] * out[c];
						if (raw_out) (*raw_out)[4 * r + c] = (float)out[c];
					}
				}
				return loss;
			};
			loss_at(params_d, &ref_raw);
			mlp->forward(raw.data(), params.data(), pts.data(), views.data(), rows, true);
			mlp->backward(grads.data(), params.data(), dL_draw.data(), rows);
			std::vector<float> got_raw(rows * 4);
			m_dev.download(got_raw.data(), raw.data(), got_raw.size() * sizeof(float));
			const std::vector<float> got_grads = download(m_dev, grads);
			// float vs double over K <= 319-long dot products and 9-10 layers: ~1e-6 of the scale.
			check_fwd.arrays("raw vs double MLP", got_raw, ref_raw,
			                 Tolerance{1e-5 * max_abs(ref_raw.data(), ref_raw.size()), 1e-5});
			std::mt19937_64 rng(seed + 4);
			std::normal_distribution<double> normal(0.0, 1.0);
			const double h = 1e-7;
			for (const LinearLayer& L : layout.layers) {
				if (!mlp_layer_used(spec, L)) continue;
				std::vector<double> v(L.n_params());
				for (double& x : v) x = normal(rng);
				std::vector<double> plus = params_d, minus = params_d;
				double analytic = 0, scale = 0;
				for (size_t k = 0; k < v.size(); ++k) {
					plus[L.weight_offset + k] += h * v[k];
					minus[L.weight_offset + k] -= h * v[k];
					analytic += got_grads[L.weight_offset + k] * v[k];
					scale += std::fabs(got_grads[L.weight_offset + k] * v[k]);
				}
				const double fd = (loss_at(plus, nullptr) - loss_at(minus, nullptr)) / (2.0 * h);
				// float gradients summed over `rows` samples: 1e-4 of the sum of magnitudes.
				check_bwd.bound("directional derivative of " + L.name + " vs double central difference",
				                std::fabs(analytic - fd), 1e-4 * scale + 1e-9);
			}
		}

		// Timed: the training pattern, a forward that keeps activations and then the backward,
		// each between its own pair of timer marks.
		// All repeats are enqueued before any time is read (see time_repeats).
		for (int i = 0; i < m_opt.warmup; ++i) {
			mlp->forward(raw.data(), params.data(), pts.data(), views.data(), n, true);
			mlp->backward(grads.data(), params.data(), dL_draw.data(), n);
		}
		const auto flush = flush_function();
		std::vector<std::unique_ptr<Backend::Timer>> t_fwd, t_bwd;
		for (int i = 0; i < m_opt.repeats; ++i) {
			t_fwd.push_back(m_dev.create_timer());
			t_bwd.push_back(m_dev.create_timer());
		}
		for (int i = 0; i < m_opt.repeats; ++i) {
			if (flush) flush();
			t_fwd[i]->start();
			mlp->forward(raw.data(), params.data(), pts.data(), views.data(), n, true);
			t_fwd[i]->stop();
			t_bwd[i]->start();
			mlp->backward(grads.data(), params.data(), dL_draw.data(), n);
			t_bwd[i]->stop();
		}
		std::vector<double> ms_fwd, ms_bwd;
		for (int i = 0; i < m_opt.repeats; ++i) {
			ms_fwd.push_back(t_fwd[i]->elapsed_ms());
			ms_bwd.push_back(t_bwd[i]->elapsed_ms());
		}
		const std::string net = n_samples == m_sizes.n_coarse ? "coarse" : "fine";
		// bytes (compulsory) = inputs n (in_pts + in_views) 4 + raw n 16 + parameters 4 P; the
		// activations kept for backward are not counted (the MLP is compute-bound).
		// FLOPs: mlp_forward_flops / mlp_backward_flops in common.h (2 n sum in*out; backward dW for
		// every layer plus dX for the hidden inputs).
		const double P = (double)layout.n_params;
		add_row("mlp_forward_" + net, size_label(n_rays, n_samples), precision, ms_fwd,
		        (double)n * 4.0 * (spec.in_pts + spec.in_views + 4) + 4.0 * P, mlp_forward_flops(layout, (double)n),
		        check_fwd.summary());
		// backward bytes = dL_draw n 16 + parameters 4 P read + gradients 8 P read-modify-write.
		add_row("mlp_backward_" + net, size_label(n_rays, n_samples), precision, ms_bwd, (double)n * 16.0 + 12.0 * P,
		        mlp_backward_flops(layout, (double)n), check_bwd.summary());
	}

	// --------------------------------------------------------------------------------------------
	// Loss

	void bench_loss(int n_rays) {
		const std::string stage = "mse_loss";
		if (!wanted(stage)) return;
		const size_t n = (size_t)n_rays;
		const std::vector<float> rgb_host = uniform_floats(3 * n, 0.0, 1.0, 70), target_host = uniform_floats(3 * n, 0.0, 1.0, 71);
		const float grad_scale = 1.0f;
		Buffer<float> rgb = make_buffer(m_dev, rgb_host), target = make_buffer(m_dev, target_host);
		Buffer<float> loss = m_dev.allocate<float>(1), grad = m_dev.allocate<float>(3 * n);
		auto run = [&] { m_dev.mse_loss(loss.data(), grad.data(), rgb.data(), target.data(), n, grad_scale); };
		m_dev.fill_zero(loss.data(), sizeof(float));
		run();
		const auto got_loss = download(m_dev, loss), got_grad = download(m_dev, grad);
		StageCheck check(stage);
		// A mean of 3n squares: summation order alone changes it by ~log2(3n) ulp (pairwise or
		// tree reductions) up to ~3n ulp (serial): 1e-5 relative covers n <= 4096 with either.
		// The gradient is one subtraction and one scaling per element: 1e-6 relative.
		if (m_ref) {
			Buffer<float> r_rgb = make_buffer(*m_ref, rgb_host), r_target = make_buffer(*m_ref, target_host);
			Buffer<float> r_loss = m_ref->allocate<float>(1), r_grad = m_ref->allocate<float>(3 * n);
			m_ref->fill_zero(r_loss.data(), sizeof(float));
			m_ref->mse_loss(r_loss.data(), r_grad.data(), r_rgb.data(), r_target.data(), n, grad_scale);
			check.arrays("loss", got_loss, download(*m_ref, r_loss), Tolerance{0.0, 1e-5});
			check.arrays("dL_drgb", got_grad, download(*m_ref, r_grad), Tolerance{1e-12, 1e-6});
		} else {
			double sum = 0;
			std::vector<float> ref_grad(3 * n);
			for (size_t i = 0; i < 3 * n; ++i) {
				const double e = (double)rgb_host[i] - target_host[i];
				sum += e * e;
				ref_grad[i] = (float)(2.0 * e / (3.0 * n) * grad_scale);
			}
			check.arrays("loss vs double mean", got_loss, {(float)(sum / (3.0 * n))}, Tolerance{0.0, 1e-5});
			check.arrays("dL_drgb vs double 2 (rgb - target) / 3n", got_grad, ref_grad, Tolerance{1e-12, 1e-5});
		}
		const auto ms = time(run);
		// bytes = n 24 (rgb, target) + n 12 (gradient) + 4. FLOPs = n 3 4: difference, square, sum, scale.
		add_row(stage, size_label(n, 0), Precision::FP32, ms, (double)n * 36.0 + 4.0, (double)n * 12.0,
		        check.summary());
	}

	// --------------------------------------------------------------------------------------------
	// Adam

	void bench_adam() {
		const std::string stage = "adam_step";
		if (!wanted(stage)) return;
		// The full parameter buffer of the model: coarse and fine networks.
		const MlpLayout coarse = make_mlp_layout(mlp_spec(), 0);
		const MlpLayout fine = make_mlp_layout_after(mlp_spec(), coarse);
		const size_t n = fine.end();
		std::vector<float> p_host(n);
		init_mlp_params_host(p_host.data(), coarse, 80);
		init_mlp_params_host(p_host.data(), fine, 81);
		const std::vector<float> g_host = normal_floats(n, 1e-3, 82), m_host = normal_floats(n, 1e-3, 83);
		std::vector<float> v_host(n);
		for (size_t i = 0; i < n; ++i) v_host[i] = m_host[i] * m_host[i] + 1e-8f;
		AdamSpec spec;
		spec.lr = 5e-4f;
		const int t = 10;  // the first update checked; the timed repeats go on counting
		AdamCounter counter_host;
		counter_host.step = t - 1;
		Buffer<float> p = make_buffer(m_dev, p_host), m = make_buffer(m_dev, m_host), v = make_buffer(m_dev, v_host),
		              g = make_buffer(m_dev, g_host);
		Buffer<AdamCounter> counter = m_dev.allocate<AdamCounter>(1);
		m_dev.upload(counter.data(), &counter_host, sizeof(counter_host));
		auto run = [&] { m_dev.adam_step(p.data(), m.data(), v.data(), g.data(), n, spec, counter.data(), nullptr); };
		run();
		const auto got_p = download(m_dev, p), got_m = download(m_dev, m), got_v = download(m_dev, v);
		StageCheck check(stage);
		// Against double Adam: ~8 rounded operations per element: 1e-5 relative. Where terms cancel
		// the error is relative to the terms, not the result, hence absolute floors of a few ulp of
		// the terms: m = b1 m + (1 - b1) g with |terms| <= ~5e-3 (ulp 4.7e-10): 1e-9; p - update with
		// |p| <= 0.13 (ulp 7.5e-9... 1.5e-8): 3e-8; v's terms are all positive.
		const Tolerance tol_p{3e-8, 1e-5}, tol_m{1e-9, 1e-5}, tol_v{1e-14, 1e-5};
		if (m_ref) {
			// The same shared math with explicit FMAs on both backends (optim.h): bit for bit.
			Buffer<float> rp = make_buffer(*m_ref, p_host), rm = make_buffer(*m_ref, m_host),
			              rv = make_buffer(*m_ref, v_host), rg = make_buffer(*m_ref, g_host);
			Buffer<AdamCounter> rc = m_ref->allocate<AdamCounter>(1);
			m_ref->upload(rc.data(), &counter_host, sizeof(counter_host));
			m_ref->adam_step(rp.data(), rm.data(), rv.data(), rg.data(), n, spec, rc.data(), nullptr);
			check.arrays("params", got_p, download(*m_ref, rp), Tolerance{0.0, 0.0});
			check.arrays("m", got_m, download(*m_ref, rm), Tolerance{0.0, 0.0});
			check.arrays("v", got_v, download(*m_ref, rv), Tolerance{0.0, 0.0});
		} else {
			// torch.optim.Adam in double from the formula.
			std::vector<float> ep(n), em(n), ev(n);
			const double b1 = spec.beta1, b2 = spec.beta2;
			for (size_t i = 0; i < n; ++i) {
				const double mm = b1 * m_host[i] + (1 - b1) * g_host[i];
				const double vv = b2 * v_host[i] + (1 - b2) * (double)g_host[i] * g_host[i];
				const double denom = std::sqrt(vv) / std::sqrt(1 - std::pow(b2, t)) + spec.eps;
				ep[i] = (float)(p_host[i] - spec.lr / (1 - std::pow(b1, t)) * mm / denom);
				em[i] = (float)mm;
				ev[i] = (float)vv;
			}
			check.arrays("params vs double Adam", got_p, ep, tol_p);
			check.arrays("m vs double Adam", got_m, em, tol_m);
			check.arrays("v vs double Adam", got_v, ev, tol_v);
		}
		const auto ms = time(run);
		// bytes = n 28: read p, m, v, g (16), write p, m, v (12).
		// FLOPs = n 14: m 3, v 4, sqrt 1, scale and eps 2, division 1, update 2 (+1 for the step size).
		add_row(stage, "P=" + std::to_string(n), Precision::FP32, ms, (double)n * 28.0, (double)n * 14.0,
		        check.summary());
	}

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
	std::array<float, 4> two_step_losses(Backend& backend, const TrainInputs& in, size_t n_rays, Precision p) {
		NerfModel model(backend, model_config((int)n_rays, p));
		Buffer<uint32_t> ids = make_buffer(backend, std::vector<uint32_t>(in.pixel_ids.begin(), in.pixel_ids.begin() + n_rays));
		Buffer<float> images = make_buffer(backend, in.images);
		const CameraBuffers cameras = upload_cameras(backend, in.poses, in.cameras);
		std::array<float, 4> out{};
		for (uint32_t step = 1; step <= 2; ++step) {
			model.train_step(ids.data(), n_rays, images.data(), cameras.set(), render_settings(true), step, 5e-4f);
			const auto [fine, coarse] = model.read_losses();
			out[2 * (step - 1)] = fine;
			out[2 * (step - 1) + 1] = coarse;
		}
		return out;
	}

	void bench_train_step(int n_rays, Precision precision) {
		const std::string stage = "train_step";
		if (!wanted(stage)) return;
		const TrainInputs in = train_inputs((size_t)n_rays);
		StageCheck check(stage);
		const float lr = 5e-4f;
		if (m_ref) {
			// A whole step on a few rays on both backends from the same initialisation.
			const size_t n_check = std::min<size_t>((size_t)n_rays, 128);
			if (!m_train_reference.count(n_rays))
				m_train_reference[n_rays] = two_step_losses(*m_ref, in, n_check, Precision::FP32);
			const auto ref = m_train_reference[n_rays];
			const auto got = two_step_losses(m_dev, in, n_check, precision);
			const char* names[4] = {"step 1 fine loss", "step 1 coarse loss", "step 2 fine loss", "step 2 coarse loss"};
			for (int k = 0; k < 4; ++k)
				check.arrays(names[k], {got[k]}, {ref[k]}, Tolerance{0.0, train_loss_tolerance(precision)});
		}

		NerfModel model(m_dev, model_config(n_rays, precision));
		Buffer<uint32_t> ids = make_buffer(m_dev, in.pixel_ids);
		Buffer<float> images = make_buffer(m_dev, in.images);
		const CameraBuffers cameras = upload_cameras(m_dev, in.poses, in.cameras);
		uint32_t step = 1;
		std::vector<float> params_before;
		if (!m_ref) {
			// Invariants of one step from a fresh model: losses are MSEs of colours in [0, 1], so
			// finite and within (0, 1]; Adam's first update moves every parameter by at most lr
			// (|m_hat / sqrt(v_hat)| = |g| / (|g| + eps) <= 1) and moves some of them.
			params_before.resize(model.n_floats());
			m_dev.download(params_before.data(), model.params(), params_before.size() * sizeof(float));
		}
		auto run = [&] {
			model.train_step(ids.data(), in.pixel_ids.size(), images.data(), cameras.set(), render_settings(true), step++,
			                 lr);
		};
		run();
		if (!m_ref) {
			const auto [fine, coarse] = model.read_losses();
			check.require(std::isfinite(fine) && fine > 0.0f && fine <= 1.0f,
			              "fine loss " + std::to_string(fine) + " not in (0, 1]");
			check.require(std::isfinite(coarse) && coarse > 0.0f && coarse <= 1.0f,
			              "coarse loss " + std::to_string(coarse) + " not in (0, 1]");
			std::vector<float> after(model.n_floats());
			m_dev.download(after.data(), model.params(), after.size() * sizeof(float));
			double largest = 0;
			size_t moved = 0;
			for (size_t i = 0; i < after.size(); ++i) {
				const double delta = std::fabs((double)after[i] - params_before[i]);
				largest = std::max(largest, delta);
				if (delta > 0) ++moved;
			}
			check.bound("largest first Adam update / lr", largest / lr, 1.0 + 1e-3);
			check.require(moved > 0, "no parameter moved in a training step");
			// A parameter whose gradient is exactly 0 stays put (Adam's 0 / (0 + eps)); at
			// initialisation a network whose density is relu-clipped on every sample gets no gradient.
			size_t moved_coarse = 0;
			for (size_t i = 0; i < model.coarse_layout().end(); ++i) moved_coarse += after[i] != params_before[i];
			std::fprintf(stderr, "  train_step: %zu of %zu coarse and %zu of %zu fine parameters moved in step 1\n",
			             moved_coarse, (size_t)model.coarse_layout().n_params, moved - moved_coarse,
			             model.n_params() - model.coarse_layout().n_params);
		}
		const auto ms = time(run, true);
		// FLOPs: the MLPs' GEMMs, forward and backward, coarse on n Nc samples and fine on
		// n (Nc + Nf); the other stages add < 1%. Bytes: not meaningful for a whole step.
		const MlpLayout layout = make_mlp_layout(mlp_spec(), 0);
		const double nc = (double)n_rays * m_sizes.n_coarse, nf = (double)n_rays * (m_sizes.n_coarse + m_sizes.n_fine);
		const double flops = mlp_forward_flops(layout, nc) + mlp_backward_flops(layout, nc) +
		                     mlp_forward_flops(layout, nf) + mlp_backward_flops(layout, nf);
		add_row(stage, size_label(n_rays, m_sizes.n_coarse) + "+" + std::to_string(m_sizes.n_fine), precision, ms, 0.0,
		        flops, check.summary());
	}

	void bench_render(Precision precision) {
		const std::string stage = "render_image";
		if (!wanted(stage)) return;
		const Camera cam = lego_camera(m_sizes.render_hw);
		const std::vector<float> pose_vec = hemisphere_poses(1, 31);
		Pose pose;
		std::copy(pose_vec.begin(), pose_vec.end(), pose.begin());
		const int chunk = 1024 * 32;  // the reference's --chunk default
		StageCheck check(stage);
		if (m_ref) {
			// A small image of the same camera on both backends from the same initialisation. The
			// pixel colours are composites of sigmoids, in [0, 1]: an absolute bound of the forward's
			// relative bound (rgb errors are at most the MLP's, damped by the sigmoid's slope <= 1/4).
			const Camera small = lego_camera(16);
			if (m_render_reference.empty()) {
				NerfModel ref_model(*m_ref, model_config(1024, Precision::FP32));
				m_render_reference = ref_model.render_image(pose, small, render_settings(false), chunk).rgb;
			}
			NerfModel check_model(m_dev, model_config(1024, precision));
			const auto got = check_model.render_image(pose, small, render_settings(false), chunk).rgb;
			check.arrays("rgb of a 16x16 render", got, m_render_reference,
			             Tolerance{mlp_forward_tolerance(precision), 0.0});
		}
		NerfModel model(m_dev, model_config(1024, precision));
		auto run = [&] { m_last_render = model.render_image(pose, cam, render_settings(false), chunk); };
		run();
		if (!m_ref) {
			const RenderedRays& r = m_last_render;
			const size_t n = (size_t)cam.H * cam.W;
			check.require(r.rgb.size() == 3 * n && r.acc.size() == n, "render sizes");
			double outside = 0;
			bool finite = true;
			for (float c : r.rgb) {
				finite = finite && std::isfinite(c);
				outside = std::max({outside, -(double)c, c - 1.0});
			}
			for (float a : r.acc) {
				finite = finite && std::isfinite(a);
				outside = std::max({outside, -(double)a, a - 1.0});
			}
			check.require(finite, "non-finite rgb or acc");
			check.bound("white-background rgb or acc outside [0, 1]", outside, 1e-5);
		}
		const auto ms = time(run, true);
		// FLOPs: MLP forward for H W Nc coarse and H W (Nc + Nf) fine samples (GEMMs only).
		// The time includes the download of rgb, disp, acc and depth to the host.
		const MlpLayout layout = make_mlp_layout(mlp_spec(), 0);
		const double pixels = (double)cam.H * cam.W;
		const double flops = mlp_forward_flops(layout, pixels * m_sizes.n_coarse) +
		                     mlp_forward_flops(layout, pixels * (m_sizes.n_coarse + m_sizes.n_fine));
		add_row(stage, std::to_string(cam.W) + "x" + std::to_string(cam.H) + " S=" + std::to_string(m_sizes.n_coarse) +
		                   "+" + std::to_string(m_sizes.n_fine),
		        precision, ms, 0.0, flops, check.summary());
	}

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

int run_main(int argc, char** argv) {
	Options opt;
	CLI::App app{"nerfcore per-stage benchmark: validated timings, GB/s, TFLOP/s and fraction of the device's peaks"};
	app.add_option("--device", opt.device, "cpu, cuda or auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
	app.add_flag("--small", opt.small, "CPU-friendly sizes (N_rand 64, 16+16 samples, 6x64 MLP, 32x32 render)");
	auto* repeats_opt = app.add_option("--repeats", opt.repeats, "timed repeats per stage (median reported)");
	auto* warmup_opt = app.add_option("--warmup", opt.warmup, "untimed runs before timing");
	app.add_option("--heavy_repeats", opt.heavy_repeats, "repeats for train_step and render_image (default: --repeats)");
	app.add_option("--json", opt.json_path,
	               "write the results as JSON to this file, after every stage (\"complete\": false until the end)");
	app.add_option("--n_rand", opt.n_rands, "ray batch sizes (default: 1024 4096; --small: 64)")->delimiter(',');
	app.add_option("--render_hw", opt.render_hw, "render_image size (default 800; --small: 32)");
	app.add_option("--check_rows", opt.check_rows, "CUDA: samples of the MLP compared against the CPU backend");
	app.add_option("--threads", opt.threads, "CPU threads (0: all cores)");
	app.add_option("--precisions", opt.precisions, "CUDA: MLP precisions to run (default fp32,tf32,fp16,bf16)")
	    ->delimiter(',');
	app.add_option("--flush_mib", opt.flush_mib,
	               "MiB overwritten before each repeat to evict caches (default: 256 on CUDA, 0 on the CPU)");
	std::string sabotage;
	app.add_option("--sabotage", sabotage, "test hook: make every check of this stage fail (the bench must exit 1)")
	    ->group("");
	app.add_option("--only", opt.only, "comma-separated substrings of stage names to run (default: all)");
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError& e) {
		return app.exit(e);
	}
	if (opt.small) {
		if (repeats_opt->count() == 0) opt.repeats = 5;
		if (warmup_opt->count() == 0) opt.warmup = 1;
	}
	NERF_CHECK(opt.repeats >= 1 && opt.warmup >= 0);
	StageCheck::sabotaged_stage() = sabotage;

	std::unique_ptr<Backend> dev = create_backend(opt.device, opt.threads);
	Sizes sizes = opt.small ? small_sizes(dev->is_cuda()) : lego_sizes(dev->is_cuda());
	if (!opt.n_rands.empty()) sizes.n_rands = opt.n_rands;
	if (opt.render_hw > 0) sizes.render_hw = opt.render_hw;
	std::unique_ptr<Backend> ref = dev->is_cuda() ? create_cpu_backend(opt.threads) : nullptr;
	std::fprintf(stderr, "bench_kernels on %s (%s sizes), checks %s\n", dev->name().c_str(), opt.small ? "small" : "lego",
	             ref ? "against the CPU backend" : "against double references and invariants");

	KernelBench bench(*dev, std::move(ref), opt, sizes);
	bench.set_command_line(join_command_line(argc, argv));
	bench.write_json(false);  // an unwritable path fails now, not after the first stage's minutes
	bench.run();
	bench.print_table(std::cout);
	if (!opt.json_path.empty()) std::fprintf(stderr, "wrote %s\n", opt.json_path.c_str());
	return 0;
}

} // namespace
} // namespace nerf::bench

int main(int argc, char** argv) {
	try {
		return nerf::bench::run_main(argc, argv);
	} catch (const nerf::bench::ValidationError& e) {
		std::fprintf(stderr, "bench_kernels: %s\n", e.what());
		return 1;
	} catch (const std::exception& e) {
		std::fprintf(stderr, "bench_kernels: error: %s\n", e.what());
		return 1;
	}
}
