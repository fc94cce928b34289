// bench_train: time to PSNR. Trains a config on a scene and, every --eval_every_s seconds of
// training, renders a fixed set of val views and records their mean PSNR. Evaluation time is kept
// off the training clock. Writes the curve (seconds, steps, psnr) as CSV, JSON and a PNG plot, and
// prints the training time at which each --thresholds PSNR was first reached.
//
// Every option not listed below is one of nerf-pytorch's (or nerfcore's), read by parse_config,
// e.g. --N_rand 4096 --precision fp16 --max_seconds 600 --device cuda.
// Defaults: --config configs/lego.txt on NERF_TEST_DATA/nerf_synthetic/lego_400 (CMake cache variable,
// default ../shared/data) with half_res False
// (lego_400 is already the half-resolution scene); --builtin: configs/builtin.txt on the built-in
// procedural scene (written on first use). --compare_occ_grid trains the config twice, with the
// reference's dense sampling and with --occ_grid, and prints both times to each threshold.
#include "common.h"

#include "nerf/backend.h"
#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/io/image.h"
#include "nerf/trainer.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace nerf::bench {
namespace {

struct CurvePoint {
	double seconds = 0;       ///< training time (evaluation excluded)
	long steps = 0;
	double psnr = 0;          ///< mean over the val views
	double loss = 0;          ///< fine MSE of the last training step
	double eval_seconds = 0;  ///< how long this evaluation took (not on the training clock)
};

struct ThresholdHit {
	double psnr = 0;
	bool reached = false;
	double seconds = 0;
	long steps = 0;
};

std::vector<ThresholdHit> time_to_thresholds(const std::vector<CurvePoint>& curve, const std::vector<double>& thresholds) {
	std::vector<ThresholdHit> hits;
	for (double t : thresholds) {
		ThresholdHit hit;
		hit.psnr = t;
		for (const CurvePoint& p : curve)
			if (p.psnr >= t) {
				hit.reached = true;
				hit.seconds = p.seconds;
				hit.steps = p.steps;
				break;
			}
		hits.push_back(hit);
	}
	return hits;
}

// ------------------------------------------------------------------------------------------------
// The plot: drawn into a float RGB image and written with nerf::save_png.

class Canvas {
public:
	Canvas(int w, int h) : m_w(w), m_h(h), m_pixels((size_t)w * h * 3, 1.0f) {}
	int width() const { return m_w; }
	int height() const { return m_h; }
	const float* data() const { return m_pixels.data(); }

	void set(int x, int y, const float rgb[3]) {
		if (x < 0 || y < 0 || x >= m_w || y >= m_h) return;
		float* p = m_pixels.data() + 3 * ((size_t)y * m_w + x);
		p[0] = rgb[0];
		p[1] = rgb[1];
		p[2] = rgb[2];
	}
	void rect(int x0, int y0, int x1, int y1, const float rgb[3]) {
		for (int y = std::min(y0, y1); y <= std::max(y0, y1); ++y)
			for (int x = std::min(x0, x1); x <= std::max(x0, x1); ++x) set(x, y, rgb);
	}
	/// A line `thickness` pixels wide; dash > 0 leaves gaps of dash pixels every 2 dash.
	void line(double x0, double y0, double x1, double y1, const float rgb[3], int thickness = 1, int dash = 0) {
		const int steps = (int)std::ceil(std::max(std::fabs(x1 - x0), std::fabs(y1 - y0))) + 1;
		for (int i = 0; i <= steps; ++i) {
			if (dash > 0 && (i / dash) % 2 == 1) continue;
			const double t = (double)i / steps;
			const int x = (int)std::lround(x0 + t * (x1 - x0)), y = (int)std::lround(y0 + t * (y1 - y0));
			rect(x - thickness / 2, y - thickness / 2, x + (thickness - 1) / 2, y + (thickness - 1) / 2, rgb);
		}
	}
	/// Text in a 3x5 pixel font scaled by `scale`; (x, y) is the top-left corner.
	void text(int x, int y, const std::string& s, const float rgb[3], int scale = 2) {
		for (char c : s) {
			const uint16_t bits = glyph(c);
			for (int row = 0; row < 5; ++row)
				for (int col = 0; col < 3; ++col)
					if (bits & (1u << (14 - (row * 3 + col)))) rect(x + col * scale, y + row * scale, x + (col + 1) * scale - 1,
					                                               y + (row + 1) * scale - 1, rgb);
			x += 4 * scale;
		}
	}
	static int text_width(const std::string& s, int scale = 2) { return (int)s.size() * 4 * scale - scale; }

private:
	/// 15 bits, row by row from the top, 3 columns each (most significant bit = top-left).
	static uint16_t glyph(char c) {
		switch (c) {
		case '0': return 0b111'101'101'101'111;
		case '1': return 0b010'110'010'010'111;
		case '2': return 0b111'001'111'100'111;
		case '3': return 0b111'001'111'001'111;
		case '4': return 0b101'101'111'001'001;
		case '5': return 0b111'100'111'001'111;
		case '6': return 0b111'100'111'101'111;
		case '7': return 0b111'001'001'001'001;
		case '8': return 0b111'101'111'101'111;
		case '9': return 0b111'101'111'001'111;
		case '.': return 0b000'000'000'000'010;
		case '-': return 0b000'000'111'000'000;
		case 's': return 0b000'011'110'001'110;
		case 'd': return 0b001'001'111'101'111;
		case 'B': return 0b110'101'110'101'110;
		default: return 0;
		}
	}
	int m_w, m_h;
	std::vector<float> m_pixels;
};

std::string format_number(double v) {
	char b[32];
	if (std::fabs(v - std::round(v)) < 1e-9) std::snprintf(b, sizeof b, "%.0f", v);
	else std::snprintf(b, sizeof b, "%.1f", v);
	return b;
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target` ticks over `span`.
double tick_step(double span, int target) {
	const double raw = span / std::max(target, 1);
	const double power = std::pow(10.0, std::floor(std::log10(raw)));
	for (double m : {1.0, 2.0, 5.0, 10.0})
		if (m * power >= raw) return m * power;
	return 10.0 * power;
}

void plot_curve(const std::string& path, const std::vector<CurvePoint>& curve, const std::vector<double>& thresholds) {
	Canvas c(800, 500);
	const int left = 70, right = 20, top = 30, bottom = 50;
	const int pw = c.width() - left - right, ph = c.height() - top - bottom;
	double x_max = 1e-9, y_min = 1e30, y_max = -1e30;
	for (const CurvePoint& p : curve) {
		x_max = std::max(x_max, p.seconds);
		y_min = std::min(y_min, p.psnr);
		y_max = std::max(y_max, p.psnr);
	}
	// Show the thresholds that lie within reach of the curve (up to 5 dB above it).
	for (double t : thresholds)
		if (t <= y_max + 5.0) {
			y_max = std::max(y_max, t);
			y_min = std::min(y_min, t);
		}
	if (!(y_max > y_min)) {
		y_min -= 1.0;
		y_max += 1.0;
	}
	const double ys = tick_step(y_max - y_min, 6), xs = tick_step(x_max, 8);
	y_min = std::floor(y_min / ys) * ys;
	y_max = std::ceil(y_max / ys) * ys;
	x_max = std::max(1.0, std::ceil(x_max / xs - 0.01)) * xs;  // a run that overshoots its budget by < 1% keeps the axis
	auto px = [&](double s) { return left + s / x_max * pw; };
	auto py = [&](double psnr) { return top + (1.0 - (psnr - y_min) / (y_max - y_min)) * ph; };

	const float black[3] = {0, 0, 0}, grid[3] = {0.88f, 0.88f, 0.88f}, blue[3] = {0.12f, 0.35f, 0.8f},
	            red[3] = {0.85f, 0.2f, 0.15f};
	for (double y = y_min; y <= y_max + 1e-9; y += ys) {
		c.line(left, py(y), left + pw, py(y), grid);
		const std::string label = format_number(y);
		c.text(left - 8 - Canvas::text_width(label), (int)py(y) - 5, label, black);
	}
	for (double x = 0; x <= x_max + 1e-9; x += xs) {
		c.line(px(x), top, px(x), top + ph, grid);
		const std::string label = format_number(x);
		c.text((int)px(x) - Canvas::text_width(label) / 2, top + ph + 8, label, black);
	}
	for (double t : thresholds)
		if (t >= y_min && t <= y_max) c.line(left, py(t), left + pw, py(t), red, 1, 6);
	c.line(left, top, left, top + ph, black, 2);
	c.line(left, top + ph, left + pw, top + ph, black, 2);
	c.text(left + pw - Canvas::text_width("s"), top + ph + 28, "s", black);
	c.text(8, 8, "dB", black);
	for (size_t i = 0; i + 1 < curve.size(); ++i)
		c.line(px(curve[i].seconds), py(curve[i].psnr), px(curve[i + 1].seconds), py(curve[i + 1].psnr), blue, 2);
	for (const CurvePoint& p : curve) c.rect((int)px(p.seconds) - 2, (int)py(p.psnr) - 2, (int)px(p.seconds) + 2, (int)py(p.psnr) + 2, blue);
	save_png(path, c.data(), c.width(), c.height(), 3);
}

// ------------------------------------------------------------------------------------------------

bool has_option(const std::vector<std::string>& args, const std::string& name) {
	for (const std::string& a : args)
		if (a == name || a.rfind(name + "=", 0) == 0) return true;
	return false;
}

std::vector<double> parse_thresholds(const std::string& text) {
	std::vector<double> out;
	std::stringstream ss(text);
	std::string item;
	while (std::getline(ss, item, ',')) {
		if (item.empty()) continue;
		size_t used = 0;
		double v = 0;
		try {
			v = std::stod(item, &used);
		} catch (const std::exception&) {
			used = 0;
		}
		if (used != item.size() || !std::isfinite(v)) NERF_FAIL("--thresholds: '" << item << "' is not a number");
		out.push_back(v);
	}
	return out;
}

/// One training run's curve and totals.
struct RunResult {
	std::string device;
	std::vector<CurvePoint> curve;
	double train_seconds = 0.0;
	long steps = 0;
	double samples_per_ray = 0.0;     ///< network evaluations per trained ray (dense: coarse + fine)
	double occupied_fraction = -1.0;  ///< occ_grid only
};

/// Trains cfg on data until its budget or N_iters, evaluating every eval_every_s seconds of training.
RunResult train_curve(const Config& cfg, const Dataset& data, double budget_s, double eval_every_s, int n_val) {
	std::unique_ptr<Backend> backend = create_backend(cfg.device, cfg.threads);
	Trainer trainer(cfg, data, *backend);
	std::fprintf(stderr, "bench_train: %s on %s, %dx%d, %zu train / %zu val views, N_rand %d, %s, budget %.0f s\n",
	             cfg.datadir.c_str(), backend->name().c_str(), data.W, data.H, data.i_train.size(), data.i_val.size(),
	             cfg.N_rand,
	             cfg.occ_grid ? ("occ_grid " + std::to_string(cfg.occ_resolution) + "^3").c_str()
	                          : (std::to_string(cfg.N_samples) + "+" + std::to_string(cfg.N_importance) + " samples").c_str(),
	             budget_s);

	using Clock = std::chrono::steady_clock;
	RunResult result;
	result.device = backend->name();
	auto evaluate = [&](double seconds, long steps) {
		const auto t0 = Clock::now();
		CurvePoint p;
		p.seconds = seconds;
		p.steps = steps;
		p.loss = steps > 0 ? trainer.model().read_losses().first : NAN;
		p.psnr = trainer.evaluate_val_psnr(n_val);
		p.eval_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
		if (!std::isfinite(p.psnr)) NERF_FAIL("val PSNR is not finite at step " << steps);
		result.curve.push_back(p);
		std::fprintf(stderr, "  %8.1f s  step %7ld  val PSNR %6.2f dB  loss %.5f  (eval %.1f s)\n", p.seconds, p.steps,
		             p.psnr, p.loss, p.eval_seconds);
	};

	evaluate(0.0, 0);
	double train_seconds = 0.0, next_eval = eval_every_s;
	long step = trainer.start_step();
	const long last_step = cfg.N_iters;
	while (train_seconds < budget_s && step < last_step) {
		// The clock stops only after the backend has finished the step, so asynchronous work
		// (CUDA) is charged to training, not to the next evaluation.
		const auto t0 = Clock::now();
		trainer.step(++step);
		backend->synchronize();
		train_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
		if (train_seconds >= next_eval) {
			evaluate(train_seconds, step);
			while (next_eval <= train_seconds) next_eval += eval_every_s;
		}
	}
	if (result.curve.back().steps != step) evaluate(train_seconds, step);
	result.train_seconds = train_seconds;
	result.steps = step;
	const TrainCounters& counters = trainer.model().counters();
	result.samples_per_ray = counters.rays ? (double)counters.network_samples / (double)counters.rays : 0.0;
	if (cfg.occ_grid) result.occupied_fraction = trainer.model().occupied_fraction();
	return result;
}

/// PREFIX.csv, PREFIX.json and PREFIX.png of one run, and its summary on stdout.
void report_run(const std::string& out_prefix, const Config& cfg, const RunResult& run, const std::vector<double>& thresholds,
                double budget_s, double eval_every_s, int n_val, const std::string& command) {
	const std::vector<ThresholdHit> hits = time_to_thresholds(run.curve, thresholds);
	std::printf("device: %s   commit: %s   %s\n", run.device.c_str(), NERF_BENCH_COMMIT,
	            cfg.occ_grid ? "occ_grid" : "dense sampling");
	std::printf("trained %ld steps in %.1f s (%.2f steps/s), final val PSNR %.2f dB over %d views, %.1f network samples "
	            "per ray",
	            run.steps, run.train_seconds, run.train_seconds > 0 ? run.steps / run.train_seconds : 0.0,
	            run.curve.back().psnr, n_val, run.samples_per_ray);
	if (run.occupied_fraction >= 0.0) std::printf(", occupied %.4f", run.occupied_fraction);
	std::printf("\n");
	for (const ThresholdHit& h : hits) {
		if (h.reached) std::printf("  %5.1f dB: %8.1f s (step %ld)\n", h.psnr, h.seconds, h.steps);
		else std::printf("  %5.1f dB: not reached\n", h.psnr);
	}
	std::printf("  (resolution: one evaluation every %.1f s of training)\n", eval_every_s);

	{
		std::ofstream csv(out_prefix + ".csv");
		if (!csv) NERF_FAIL(out_prefix << ".csv: cannot open for writing");
		csv << "seconds,steps,psnr,loss,eval_seconds\n";
		for (const CurvePoint& p : run.curve)
			csv << p.seconds << "," << p.steps << "," << p.psnr << "," << p.loss << "," << p.eval_seconds << "\n";
		if (!csv) NERF_FAIL(out_prefix << ".csv: write failed");
	}
	{
		nlohmann::json j;
		j["device"] = run.device;
		j["host"] = host_cpu_description();
		j["commit"] = NERF_BENCH_COMMIT;
		j["command"] = command;
		j["config"] = config_to_string(cfg);
		j["datadir"] = cfg.datadir;
		j["eval_every_s"] = eval_every_s;
		j["n_val"] = n_val;
		j["budget_seconds"] = budget_s;
		j["train_seconds"] = run.train_seconds;
		j["steps"] = run.steps;
		j["mean_samples_per_ray"] = run.samples_per_ray;
		if (run.occupied_fraction >= 0.0) j["occupied_fraction"] = run.occupied_fraction;
		nlohmann::json points = nlohmann::json::array();
		for (const CurvePoint& p : run.curve)
			points.push_back({{"seconds", p.seconds},
			                  {"steps", p.steps},
			                  {"psnr", p.psnr},
			                  {"loss", std::isfinite(p.loss) ? nlohmann::json(p.loss) : nlohmann::json()},
			                  {"eval_seconds", p.eval_seconds}});
		j["curve"] = points;
		nlohmann::json reached = nlohmann::json::array();
		for (const ThresholdHit& h : hits)
			reached.push_back({{"psnr", h.psnr},
			                   {"reached", h.reached},
			                   {"seconds", h.reached ? nlohmann::json(h.seconds) : nlohmann::json()},
			                   {"steps", h.reached ? nlohmann::json(h.steps) : nlohmann::json()}});
		j["time_to_psnr"] = reached;
		std::ofstream f(out_prefix + ".json");
		if (!f) NERF_FAIL(out_prefix << ".json: cannot open for writing");
		f << j.dump(2) << "\n";
		if (!f) NERF_FAIL(out_prefix << ".json: write failed");
	}
	plot_curve(out_prefix + ".png", run.curve, thresholds);
	std::fprintf(stderr, "wrote %s.csv, %s.json, %s.png\n", out_prefix.c_str(), out_prefix.c_str(), out_prefix.c_str());
}

/// The time each threshold took dense and with the grid, side by side.
void print_comparison(const RunResult& dense, const RunResult& grid, const std::vector<double>& thresholds) {
	const std::vector<ThresholdHit> a = time_to_thresholds(dense.curve, thresholds), b = time_to_thresholds(grid.curve, thresholds);
	std::printf("time to PSNR, dense vs occ_grid (%.1f vs %.1f network samples per ray):\n", dense.samples_per_ray,
	            grid.samples_per_ray);
	for (size_t i = 0; i < thresholds.size(); ++i) {
		std::printf("  %5.1f dB: ", thresholds[i]);
		if (a[i].reached) std::printf("dense %8.1f s (step %6ld)", a[i].seconds, a[i].steps);
		else std::printf("dense %8s %15s", "-", "");
		if (b[i].reached) std::printf("   occ_grid %8.1f s (step %6ld)", b[i].seconds, b[i].steps);
		else std::printf("   occ_grid %8s %15s", "-", "");
		if (a[i].reached && b[i].reached && b[i].seconds > 0) std::printf("   %.2fx", a[i].seconds / b[i].seconds);
		std::printf("\n");
	}
}

int run_main(int argc, char** argv) {
	double eval_every_s = 30.0, require_gain = -1.0;
	int n_val = 4;
	std::string thresholds_text = "25,30,32", out_prefix, builtin_dir;
	bool builtin = false, compare_occ_grid = false;
	CLI::App app{"nerfcore time-to-PSNR benchmark. Every other option is nerf_train's (nerf-pytorch's names), "
	             "e.g. --config, --datadir, --N_rand, --device, --precision, --max_seconds (training budget)."};
	app.add_option("--eval_every_s", eval_every_s, "evaluate every this many seconds of training");
	app.add_option("--n_val", n_val, "val views in each evaluation (the first n of the val split)");
	app.add_option("--thresholds", thresholds_text, "comma-separated PSNRs to report the time to reach");
	app.add_option("--out", out_prefix, "output prefix: PREFIX.csv, PREFIX.json, PREFIX.png (default bench_train_<expname>)");
	app.add_flag("--builtin", builtin, "train configs/builtin.txt on the built-in procedural scene");
	app.add_option("--builtin_dir", builtin_dir, "where the built-in scene is written (default: the config's datadir)");
	app.add_option("--require_gain", require_gain,
	               "fail (exit 1) unless the final PSNR exceeds the first evaluation's by this many dB");
	app.add_flag("--compare_occ_grid", compare_occ_grid,
	             "train twice, with the reference's dense sampling and with --occ_grid (the other options as given), "
	             "and compare their time to each threshold (outputs PREFIX_dense.* and PREFIX_occ_grid.*)");
	app.allow_extras();
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError& e) {
		return app.exit(e);
	}
	NERF_CHECK(eval_every_s > 0.0 && n_val >= 1);
	const std::vector<double> thresholds = parse_thresholds(thresholds_text);

	// The remaining arguments go to parse_config, after the default config file.
	const std::vector<std::string> extras = app.remaining();
	std::vector<std::string> args = {argv[0]};
	if (!has_option(extras, "--config")) {
		args.push_back("--config");
		args.push_back(std::string(NERF_SOURCE_DIR) + (builtin ? "/configs/builtin.txt" : "/configs/lego.txt"));
	}
	args.insert(args.end(), extras.begin(), extras.end());
	std::vector<const char*> cargs;
	for (const std::string& a : args) cargs.push_back(a.c_str());
	Config cfg;
	if (!parse_config((int)cargs.size(), cargs.data(), cfg, app.get_description())) return 0;
	if (!builtin && !has_option(extras, "--config")) {
		// lego.txt names ./data/nerf_synthetic/lego with half_res; the shared lego_400 is that
		// half-resolution scene already.
		if (!has_option(extras, "--datadir")) cfg.datadir = std::string(NERF_TEST_DATA) + "/nerf_synthetic/lego_400";
		if (!has_option(extras, "--half_res")) cfg.half_res = false;
	}
	if (builtin) {
		if (!builtin_dir.empty()) cfg.datadir = builtin_dir;
		NERF_CHECK(cfg.dataset_type == "builtin" || cfg.dataset_type == "blender");
		cfg.dataset_type = "builtin";
	}
	const double budget_s = cfg.max_seconds > 0.0 ? cfg.max_seconds : 3600.0;
	if (out_prefix.empty()) out_prefix = "bench_train_" + (cfg.expname.empty() ? std::string("run") : cfg.expname);

	const Dataset data = load_dataset(cfg);
	const std::string command = join_command_line(argc, argv);
	std::vector<std::pair<Config, RunResult>> runs;
	if (compare_occ_grid) {
		Config dense = cfg, grid = cfg;
		dense.occ_grid = false;
		grid.occ_grid = true;
		runs.emplace_back(dense, train_curve(dense, data, budget_s, eval_every_s, n_val));
		report_run(out_prefix + "_dense", dense, runs.back().second, thresholds, budget_s, eval_every_s, n_val, command);
		runs.emplace_back(grid, train_curve(grid, data, budget_s, eval_every_s, n_val));
		report_run(out_prefix + "_occ_grid", grid, runs.back().second, thresholds, budget_s, eval_every_s, n_val, command);
		print_comparison(runs[0].second, runs[1].second, thresholds);
	} else {
		runs.emplace_back(cfg, train_curve(cfg, data, budget_s, eval_every_s, n_val));
		report_run(out_prefix, cfg, runs.back().second, thresholds, budget_s, eval_every_s, n_val, command);
	}

	if (require_gain >= 0.0) {
		for (const auto& [run_cfg, run] : runs) {
			const double gain = run.curve.back().psnr - run.curve.front().psnr;
			if (!(gain >= require_gain)) {
				std::fprintf(stderr, "bench_train: validation failed%s: PSNR gained %.2f dB (%.2f -> %.2f), required %.2f\n",
				             run_cfg.occ_grid ? " (occ_grid)" : "", gain, run.curve.front().psnr, run.curve.back().psnr,
				             require_gain);
				return 1;
			}
		}
	}
	return 0;
}

} // namespace
} // namespace nerf::bench

int main(int argc, char** argv) {
	try {
		return nerf::bench::run_main(argc, argv);
	} catch (const std::exception& e) {
		std::fprintf(stderr, "bench_train: error: %s\n", e.what());
		return 1;
	}
}
