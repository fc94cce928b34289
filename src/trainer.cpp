// The training loop of run_nerf.py's train(), on the host: it picks each step's rays, sets the
// learning rate, and logs. Every random choice is a pure function of (seed, step), so a run that is
// stopped and resumed from a checkpoint at step k continues exactly as if it had not stopped.
#include "nerf/trainer.h"

#include "nerf/checkpoint.h"
#include "nerf/common.h"
#include "nerf/io/output_file.h"
#include "nerf/math/rng.h"
#include "nerf/metrics.h"
#include "nerf/progress.h"
#include "nerf/render.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>

namespace nerf {

namespace fs = std::filesystem;

namespace {

// Keeps the lines of metrics.jsonl up to `step`; a line that does not parse (cut by a kill) goes too.
void drop_metrics_after(const std::string& path, long step) {
	std::ifstream in(path);
	if (!in) return;
	std::string kept, line;
	while (std::getline(in, line)) {
		try {
			const nlohmann::json j = nlohmann::json::parse(line);
			if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<long>() <= step)
				kept += line + "\n";
		} catch (const nlohmann::json::exception&) {
		}
	}
	in.close();
	write_file_atomic(path, kept);
}

/// The step in the name of a run's output (its last run of at least six digits: 000040.safetensors,
/// testset_000040, lego_spiral_000040_rgb.mp4), -1 when there is none.
long step_in_name(const std::string& name) {
	long step = -1;
	for (size_t i = 0; i < name.size();) {
		if (!std::isdigit((unsigned char)name[i])) {
			++i;
			continue;
		}
		size_t j = i;
		while (j < name.size() && std::isdigit((unsigned char)name[j])) ++j;
		if (j - i >= 6 && j - i <= 12) step = std::stol(name.substr(i, j - i));
		i = j;
	}
	return step;
}

bool has_suffix(const std::string& s, const std::string& suffix) {
	return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// What nerf_train and nerf_render write into a run folder, by name.
enum class RunOutput { None, Checkpoint, Log, StepOutput };

RunOutput run_output_kind(const std::string& name) {
	const bool digits_stem = [&] {
		const size_t dot = name.find('.');
		return dot >= 6 && dot != std::string::npos &&
		       std::all_of(name.begin(), name.begin() + (long)dot, [](char c) { return std::isdigit((unsigned char)c); });
	}();
	if (has_suffix(name, ".safetensors") || has_suffix(name, ".safetensors.diverged")) return RunOutput::Checkpoint;
	if (digits_stem && has_suffix(name, ".tar")) return RunOutput::Checkpoint;  // nerf-pytorch's {step:06d}.tar
	if (name == "metrics.jsonl" || name == "summary.json" || name == "config.txt" || name == "args.txt") return RunOutput::Log;
	if (step_in_name(name) >= 0 &&
	    (name.rfind("testset_", 0) == 0 || name.rfind("renderonly_", 0) == 0 || name.rfind("render_", 0) == 0 ||
	     name.find("_spiral_") != std::string::npos))
		return RunOutput::StepOutput;
	return RunOutput::None;
}

/// A new folder in `dir` for the files of a run that is not the one about to train: previous_run_<time>.
fs::path new_previous_run_folder(const fs::path& dir) {
	const std::time_t now = std::time(nullptr);
	std::tm local{};
	localtime_r(&now, &local);
	char stamp[32];
	std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &local);
	fs::path folder = dir / ("previous_run_" + std::string(stamp));
	for (int n = 2; fs::exists(folder); ++n) folder = dir / ("previous_run_" + std::string(stamp) + "_" + std::to_string(n));
	std::error_code ec;
	fs::create_directory(folder, ec);
	if (ec) NERF_FAIL(folder.string() << ": cannot create the folder for the previous run's files (" << ec.message() << ")");
	return folder;
}

/// A run folder must never hold the checkpoints of two runs, or the next resume picks up the wrong one.
/// A fresh run (no checkpoint here resumed: --no_reload, or --ft_path from elsewhere) moves every output
/// of the run before it into previous_run_<time>/ when there is a checkpoint among them; a resume from
/// step k of a checkpoint here moves the outputs of steps after k (another branch, e.g. --ft_path to an
/// older checkpoint) and copies the logs that describe them. Nothing is deleted, and it says so.
void set_aside_previous_run(const fs::path& dir, const CheckpointInfo& resumed, bool quiet) {
	std::error_code same_ec, ec;
	const bool resumed_here =
	    !resumed.path.empty() && fs::equivalent(fs::absolute(resumed.path).parent_path(), dir, same_ec) && !same_ec;
	std::vector<fs::path> move, copy;
	bool any_checkpoint = false;
	for (const auto& entry : fs::directory_iterator(dir, ec)) {
		const std::string name = entry.path().filename().string();
		const RunOutput kind = run_output_kind(name);
		if (kind == RunOutput::None) continue;
		if (!resumed_here) {
			any_checkpoint = any_checkpoint || kind == RunOutput::Checkpoint;
			move.push_back(entry.path());
		} else if (kind == RunOutput::Log) {
			(name == "summary.json" ? move : copy).push_back(entry.path());
		} else if (step_in_name(name) > resumed.global_step) {
			any_checkpoint = any_checkpoint || (kind == RunOutput::Checkpoint && has_suffix(name, ".safetensors"));
			move.push_back(entry.path());
		}
	}
	if (!any_checkpoint) return;
	const fs::path folder = new_previous_run_folder(dir);
	size_t checkpoints = 0;
	for (const fs::path& p : copy) {
		fs::copy(p, folder / p.filename(), fs::copy_options::recursive, ec);
		if (ec) NERF_FAIL(p.string() << ": cannot copy it into " << folder.string() << " (" << ec.message() << ")");
	}
	for (const fs::path& p : move) {
		fs::rename(p, folder / p.filename(), ec);
		if (ec) NERF_FAIL(p.string() << ": cannot move it into " << folder.string() << " (" << ec.message() << ")");
		checkpoints += run_output_kind(p.filename().string()) == RunOutput::Checkpoint;
	}
	(void)quiet;  // said even with --quiet: files moved are worth a line
	if (resumed_here)
		std::printf("moved %zu checkpoint(s) past step %ld and %zu other output(s) of them from %s into %s (the run "
		            "resumes from step %ld, so they are another run's; nothing was deleted)\n",
		            checkpoints, resumed.global_step, move.size() - checkpoints, dir.c_str(), folder.c_str(),
		            resumed.global_step);
	else
		std::printf("moved the previous run's %zu checkpoint(s) and %zu other output(s) from %s into %s (a new run "
		            "starts here; nothing was deleted)\n",
		            checkpoints, move.size() - checkpoints, dir.c_str(), folder.c_str());
	std::fflush(stdout);
}

/// render_only's error when there is no checkpoint to render: where it looked, and what is there.
std::string render_only_without_checkpoint(const Config& cfg, const fs::path& dir) {
	if (cfg.no_reload)
		return "render_only with no_reload: there is nothing to render (no_reload starts from an untrained network); "
		       "drop --no_reload to render the newest checkpoint of " + dir.string() + ", or pass --ft_path FILE";
	std::string runs;
	std::error_code ec;
	const fs::path basedir = dir.parent_path();
	if (fs::is_directory(basedir, ec))
		for (const auto& entry : fs::directory_iterator(basedir, ec))
			if (entry.is_directory(ec) && !list_checkpoints(entry.path().string()).empty())
				runs += (runs.empty() ? "" : ", ") + entry.path().filename().string();
	return "render_only: no checkpoint to render in " + dir.string() + (fs::is_directory(dir, ec) ? "" : " (no such folder)") +
	       "; is --expname right? " + (runs.empty() ? "No run folder in " + basedir.string() + " holds a checkpoint"
	                                               : "Run folders with checkpoints in " + basedir.string() + ": " + runs) +
	       " (or pass --ft_path FILE)";
}

/// Network evaluations per trained ray between two snapshots of the counters (0 when no ray was trained).
double mean_samples_per_ray(const TrainCounters& now, const TrainCounters& before) {
	const uint64_t rays = now.rays - before.rays;
	return rays ? (double)(now.network_samples - before.network_samples) / (double)rays : 0.0;
}
} // namespace

struct Trainer::State {
	Buffer<float> images;  // the images one after another, [H_i, W_i, 3] each
	Buffer<float> alpha;   // their alpha [pixels], for training on random backgrounds (else empty)
	CameraBuffers cameras; // poses [n_images, 3, 4] and per-image cameras
	RenderSettings train_settings, test_settings;
	// use_batching: every training pixel once per epoch, in an order reshuffled each epoch.
	std::vector<uint32_t> train_pixel_ids;  // host, unshuffled
	Buffer<uint32_t> epoch_order;           // backend copy of the current epoch's shuffled ids
	long cached_epoch = -1;
	// no_batching: this step's ids, made on the host and uploaded.
	std::vector<uint32_t> step_ids_host;
	std::vector<uint32_t> coord_order;  // identity permutation of the sampling window, between steps
	std::vector<size_t> coord_swaps;
	Buffer<uint32_t> step_ids;
	std::chrono::steady_clock::time_point started;
	double seconds_before_start = 0.0;
	AppendFile metrics;
	double last_loss = NAN, last_psnr = 0.0;
};

Trainer::Trainer(const Config& cfg, const Dataset& data, Backend& backend)
    : m_cfg(cfg), m_data(data), m_backend(backend), m_state(std::make_unique<State>()) {
	NERF_CHECK(data.n_images() > 0 && data.cameras.size() == data.n_images());
	if (data.i_train.empty()) NERF_FAIL("dataset " << cfg.datadir << " has no training images");
	if (data.images.size() / 3 >= 4294967296ull)
		NERF_FAIL("dataset " << cfg.datadir << " has more than 2^32 pixels; flat pixel ids are 32-bit");
	// The grid's box is the dataset's (e.g. its cameras'), fixed now so that the saved config names it.
	if (m_cfg.occ_grid) {
		m_cfg.occ_aabb = occ_grid_box(m_cfg, data);
		if (m_cfg.render_step_size == 0.0f) m_cfg.render_step_size = default_render_step_size(occ_grid_spec(m_cfg), data);
	}
	m_model = std::make_unique<NerfModel>(backend, m_cfg);
	State& st = *m_state;
	st.train_settings = RenderSettings::from_config(cfg, data, true);
	st.test_settings = RenderSettings::from_config(cfg, data, false);
	st.images = backend.allocate<float>(data.images.size());
	backend.upload(st.images.data(), data.images.data(), data.images.size() * sizeof(float));
	if (st.train_settings.random_background) {
		st.alpha = backend.allocate<float>(data.alpha.size());
		backend.upload(st.alpha.data(), data.alpha.data(), data.alpha.size() * sizeof(float));
	}
	st.cameras = upload_cameras(backend, data.poses, data.cameras);
	if (!cfg.no_batching) {
		size_t n_train_pixels = 0;
		for (int image : data.i_train) n_train_pixels += (size_t)data.cameras[image].H * data.cameras[image].W;
		st.train_pixel_ids.reserve(n_train_pixels);
		for (int image : data.i_train) {
			const Camera& cam = data.cameras[image];
			for (uint32_t p = 0; p < (uint32_t)cam.H * cam.W; ++p) st.train_pixel_ids.push_back(cam.first_pixel + p);
		}
		st.epoch_order = backend.allocate<uint32_t>(st.train_pixel_ids.size());
	} else {
		st.step_ids_host.resize(max_rays_per_step());
		st.step_ids = backend.allocate<uint32_t>(max_rays_per_step());
	}
}

bool Trainer::adaptive_rays() const { return m_cfg.occ_grid && m_cfg.target_samples > 0; }

size_t Trainer::max_rays_per_step() const {
	return adaptive_rays() ? (size_t)std::max(m_cfg.N_rand, m_cfg.target_samples) : (size_t)m_cfg.N_rand;
}

Trainer::~Trainer() = default;

std::string Trainer::run_dir() const {
	const std::string name = m_cfg.expname.empty() ? fs::path(m_cfg.datadir).filename().string() : m_cfg.expname;
	return (fs::path(m_cfg.basedir) / name).string();
}

void Trainer::step(long i) {
	State& st = *m_state;
	const Config& cfg = m_cfg;
	const uint32_t rng_step = (uint32_t)i;
	const uint32_t* ids = nullptr;
	size_t n_rays = 0;
	// target_samples: the rays of this step were chosen after the last one (TrainCounters, checkpointed).
	TrainCounters& counters = m_model->counters();
	const size_t wanted = adaptive_rays() && counters.next_rays > 0 ? counters.next_rays : (size_t)cfg.N_rand;
	if (!cfg.no_batching) {
		// The reference slices rays_rgb[i_batch:i_batch + N_rand] and reshuffles when it runs out, so
		// an epoch has ceil(total / N_rand) batches and the last one may be short. With a varying
		// number of rays per step the position in the order is counted instead (the same slices).
		const size_t total = st.train_pixel_ids.size();
		const long batches_per_epoch = (long)((total + cfg.N_rand - 1) / cfg.N_rand);
		const long epoch = adaptive_rays() ? (long)(counters.rays_drawn / total) : (i - 1) / batches_per_epoch;
		const size_t offset = adaptive_rays() ? (size_t)(counters.rays_drawn % total)
		                                      : (size_t)((i - 1) % batches_per_epoch) * cfg.N_rand;
		if (epoch != st.cached_epoch) {
			std::vector<uint32_t> order = st.train_pixel_ids;
			// Fisher-Yates with counter-based draws keyed by the epoch.
			for (size_t k = order.size() - 1; k > 0; --k) {
				const float u = random_uniform(cfg.seed, (uint32_t)epoch, (uint32_t)k, (uint32_t)(k >> 32), RngStream::BatchShuffle);
				size_t j = std::min((size_t)(u * (double)(k + 1)), k);
				std::swap(order[k], order[j]);
			}
			m_backend.upload(st.epoch_order.data(), order.data(), order.size() * sizeof(uint32_t));
			st.cached_epoch = epoch;
		}
		ids = st.epoch_order.data() + offset;
		n_rays = std::min(wanted, total - offset);
		counters.rays_drawn += n_rays;
	} else {
		// One random training image per step; N_rand of its pixels without replacement, from the
		// central crop while i < precrop_iters.
		const size_t n_train = m_data.i_train.size();
		const float u_image = random_uniform(cfg.seed, rng_step, 0, 0, RngStream::ImageChoice);
		const int image = m_data.i_train[std::min((size_t)(u_image * n_train), n_train - 1)];
		const Camera& cam = m_data.cameras[image];
		int row0 = 0, col0 = 0, rows = cam.H, cols = cam.W;
		if (i < cfg.precrop_iters) {
			const int dH = (int)((cam.H / 2) * cfg.precrop_frac), dW = (int)((cam.W / 2) * cfg.precrop_frac);
			row0 = cam.H / 2 - dH;
			col0 = cam.W / 2 - dW;
			rows = 2 * dH;
			cols = 2 * dW;
		}
		const size_t n_coords = (size_t)rows * cols;
		if ((size_t)cfg.N_rand > n_coords)
			NERF_FAIL("N_rand = " << cfg.N_rand << " exceeds the " << n_coords << " pixels available per image"
			                      << (i < cfg.precrop_iters ? " in the precrop window" : ""));
		n_rays = std::min(wanted, n_coords);
		// Partial Fisher-Yates over coordinate indices (sampling without replacement, as np.random.choice
		// with replace=False). The index list is kept between steps and restored by undoing the swaps in
		// reverse, so a step costs O(N_rand), not O(H W).
		std::vector<uint32_t>& coords = st.coord_order;
		if (coords.size() != n_coords) {
			coords.resize(n_coords);
			std::iota(coords.begin(), coords.end(), 0u);
		}
		std::vector<size_t>& swaps = st.coord_swaps;
		swaps.resize(n_rays);
		for (size_t k = 0; k < n_rays; ++k) {
			const float u = random_uniform(cfg.seed, rng_step, (uint32_t)k, 1, RngStream::PixelChoice);
			const size_t j = k + std::min((size_t)(u * (double)(n_coords - k)), n_coords - k - 1);
			std::swap(coords[k], coords[j]);
			swaps[k] = j;
			const uint32_t row = row0 + coords[k] / cols, col = col0 + coords[k] % cols;
			st.step_ids_host[k] = cam.first_pixel + row * (uint32_t)cam.W + col;
		}
		for (size_t k = n_rays; k-- > 0;) std::swap(coords[k], coords[swaps[k]]);
		m_backend.upload(st.step_ids.data(), st.step_ids_host.data(), n_rays * sizeof(uint32_t));
		ids = st.step_ids.data();
	}
	// lr = lrate * 0.1^(global_step / (lrate_decay * 1000)) with the 0-based global step.
	const float lr = m_model->learning_rate(i - 1);
	m_model->train_step(ids, n_rays, st.images.data(), st.cameras.set(), st.train_settings, rng_step, lr,
	                    st.train_settings.random_background ? st.alpha.data() : nullptr);
	if (adaptive_rays()) {
		// nerfacc's rule: scale the rays by target / samples seen (doubling when a step saw none).
		const double trained = (double)m_model->last_step_rays(), samples = (double)m_model->last_step_samples();
		const double next = samples > 0.0 ? trained * cfg.target_samples / samples : 2.0 * trained;
		counters.next_rays = (uint32_t)std::clamp(std::round(next), 1.0, (double)max_rays_per_step());
	}
}

std::string Trainer::val_eval_split() const { return m_data.i_val.empty() ? "test" : "val"; }

std::vector<int> Trainer::val_eval_views(int n_views) const {
	std::vector<int> views = m_data.i_val.empty() ? m_data.i_test : m_data.i_val;
	if (n_views >= 0 && (size_t)n_views < views.size()) views.resize(n_views);
	return views;
}

double Trainer::evaluate_val_psnr(int n_views, bool show_progress) {
	const std::vector<int> views = val_eval_views(n_views);
	if (views.empty()) return NAN;
	// One view can take minutes on a CPU, so the bar is drawn before the first one and after each.
	Progress progress(1, (long)views.size(), 1, !show_progress, stdout, Progress::Mode::Auto,
	                  ProgressLabels{"EVAL", "View", "view", false});
	progress.start();
	double psnr_sum = 0.0;
	for (size_t v = 0; v < views.size(); ++v) {
		const int image = views[v];
		RenderedRays out = m_model->render_image(m_data.poses[image], image_camera(m_data, image), m_state->test_settings, m_cfg.chunk);
		psnr_sum += mse_to_psnr(image_mse(out.rgb.data(), m_data.image(image), out.rgb.size()));
		progress.update((long)v + 1, 0.0, psnr_sum / (double)(v + 1));
	}
	progress.finish();
	return psnr_sum / (double)views.size();
}

TrainSummary Trainer::run() {
	State& st = *m_state;
	const Config& cfg = m_cfg;
	const fs::path dir = run_dir();
	// render_only renders a checkpoint; without one it would render the untrained network (a mistyped
	// expname), so it is an error before anything is created.
	if (cfg.render_only && m_start_step == 0 && checkpoint_to_resume(cfg, dir.string()).empty())
		NERF_FAIL(render_only_without_checkpoint(cfg, dir));
	std::error_code ec;
	fs::create_directories(dir, ec);
	if (ec) NERF_FAIL(dir.string() << ": cannot create the run folder (" << ec.message() << "); is basedir writable?");
	const size_t stale = remove_stale_temporaries(dir.string());
	if (stale > 0 && !cfg.quiet)
		std::printf("removed %zu temporary file(s) of an interrupted save from %s\n", stale, dir.c_str());
	// Reload as the reference's create_nerf: ft_path, else the newest checkpoint here, unless no_reload.
	// A caller that set the start step itself has loaded its own state.
	CheckpointInfo resumed;
	const bool own_resume = m_start_step == 0;
	if (own_resume) {
		resumed = resume_training(cfg, dir.string(), *m_model);
		m_start_step = resumed.global_step;
	}
	st.seconds_before_start = resumed.train_seconds;
	if (cfg.render_only) {
		// config.txt and args.txt describe the training run; a render writes its own options beside its images.
		const std::string out = render_only(*m_model, m_data, cfg, dir.string(), m_start_step);
		write_file_atomic((fs::path(out) / "config.txt").string(), config_to_string(cfg));
		TrainSummary summary;
		summary.steps = m_start_step;
		summary.seconds = resumed.train_seconds;
		summary.final_loss = resumed.loss;
		summary.device = m_backend.name();
		return summary;
	}
	const fs::path summary_path = dir / "summary.json";
	const bool nothing_to_train = !resumed.path.empty() && m_start_step >= cfg.N_iters;
	if (nothing_to_train) {
		// The run is done (or past what was asked): what it wrote stays as it was.
		const bool have_summary = fs::exists(summary_path, ec);
		if (!cfg.quiet) {
			if (m_start_step > cfg.N_iters)
				std::printf("nothing to train: %s is at step %ld, past N_iters = %d (N_iters counts from the run's "
				            "start: a larger --N_iters trains on; --no_reload or another --expname trains a new run)",
				            resumed.path.c_str(), m_start_step, cfg.N_iters);
			else
				std::printf("nothing to train: %s is at step %ld = N_iters (a larger --N_iters trains on)",
				            resumed.path.c_str(), m_start_step);
			std::printf(have_summary ? "; %s left as it was\n" : "; writing the missing %s\n", summary_path.c_str());
		}
		if (have_summary) {
			TrainSummary summary;
			summary.steps = m_start_step;
			summary.seconds = resumed.train_seconds;
			summary.final_loss = resumed.loss;
			summary.device = m_backend.name();
			return summary;
		}
	} else if (own_resume) {
		set_aside_previous_run(dir, resumed, cfg.quiet);
		// config.txt holds every option readable by --config; args.txt is nerf-pytorch's listing of them,
		// for the scripts and habits that read it. Written once the checkpoint to resume from has loaded,
		// so that a run that cannot start leaves the folder (perhaps a nerf-pytorch one) as it was.
		for (const auto& [name, text] : {std::pair{"config.txt", config_to_string(cfg)}, std::pair{"args.txt", config_to_args_text(cfg)}})
			write_file_atomic((dir / name).string(), text);
	} else {
		for (const auto& [name, text] : {std::pair{"config.txt", config_to_string(cfg)}, std::pair{"args.txt", config_to_args_text(cfg)}})
			write_file_atomic((dir / name).string(), text);
	}
	const std::string metrics_path = (dir / "metrics.jsonl").string();
	if (!nothing_to_train) {
		// Lines past the resumed step are from a run that died before its next checkpoint; those steps
		// run again now, so their old lines go (as does a half-written last line).
		if (m_start_step > 0) drop_metrics_after(metrics_path, m_start_step);
		st.metrics.open(metrics_path, m_start_step == 0);
	}
	st.last_loss = resumed.loss;

	if (!cfg.quiet && !nothing_to_train) {
		std::cout << "training images: " << m_data.i_train.size() << " train views at " << m_data.W << "x" << m_data.H
		          << (std::all_of(m_data.cameras.begin(), m_data.cameras.end(),
		                          [&](const Camera& c) { return c.W == m_data.W && c.H == m_data.H; })
		                  ? ""
		                  : " (the first; others differ)")
		          << (m_data.resize_note.empty() ? "" : " (" + m_data.resize_note + ")") << "\n";
		std::cout << "training on " << m_backend.name() << ": " << m_model->n_params() << " parameters, steps "
		          << m_start_step + 1 << ".." << cfg.N_iters << std::endl;
	}
	if (!cfg.quiet && !nothing_to_train && ssim_window(m_data.H, m_data.W) < 11)
		std::printf("note: the images are %dx%d, smaller than SSIM's 11x11 window; the test set's SSIM uses a %dx%d window\n",
		            m_data.W, m_data.H, ssim_window(m_data.H, m_data.W), ssim_window(m_data.H, m_data.W));
	// Videos and test sets report through the progress display, not by printing over the bar.
	Config render_cfg = cfg;
	render_cfg.quiet = true;
	const std::string expname = dir.filename().string();
	Progress progress(m_start_step + 1, cfg.N_iters, cfg.i_print, cfg.quiet || nothing_to_train);
	st.started = std::chrono::steady_clock::now();
	// Training time: this process's, for max_seconds; over every resume (the checkpoint's), for the logs.
	auto elapsed_here = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - st.started).count(); };
	auto elapsed = [&] { return st.seconds_before_start + elapsed_here(); };
	// A checkpoint is good when its state is finite (save_checkpoint checks) and the loss computed from
	// it, the next step's, is finite too: an update can diverge to finite but huge weights. The newest
	// checkpoint waits for that loss; the resumed one is not ours to rename.
	std::string good_checkpoint, unconfirmed_checkpoint;
	bool unconfirmed_is_ours = false;
	if (!resumed.path.empty()) unconfirmed_checkpoint = resumed.path;
	long i = m_start_step;
	TrainCounters logged = m_model->counters();  // a metrics line's counts: since the last line
	bool warned_dropped = false;
	while (i < cfg.N_iters) {
		++i;
		const uint64_t dropped_before = m_model->counters().dropped_rays;
		step(i);
		if (i == m_start_step + 1) {
			// Every workspace exists after the first step, so this is the run's peak (bar rendering chunks).
			char text[160];
			std::snprintf(text, sizeof(text), "peak %s memory after the first step: %.1f MiB (the backend's buffers)",
			              m_backend.name().c_str(), (double)m_backend.peak_bytes() / (1024.0 * 1024.0));
			progress.message(text);
		}
		const uint64_t dropped = m_model->counters().dropped_rays - dropped_before;
		const uint64_t trained = m_model->last_step_rays();
		if (!warned_dropped && dropped > trained) {
			warned_dropped = true;
			char text[512];
			std::snprintf(text, sizeof(text),
			              "warning: step %ld trained %llu of its %llu rays and dropped the rest: their samples exceed what "
			              "a step holds (max(N_rand (N_samples + N_importance), 2 target_samples) samples). "
			              "--target_samples N adapts the rays per step to about N samples; a larger "
			              "--render_step_size marches fewer per ray. metrics.jsonl counts dropped_rays (said once)",
			              i, (unsigned long long)trained, (unsigned long long)(trained + dropped));
			if (cfg.quiet) std::fprintf(stderr, "nerf_train: %s\n", text);
			else progress.message(text);
		}
		const bool out_of_time = cfg.max_seconds > 0.0 && elapsed_here() >= cfg.max_seconds;
		const bool last = i == cfg.N_iters || out_of_time;
		const bool print = i % cfg.i_print == 0 || last;
		// The reference saves only every i_weights steps; the end of a run is saved too, so that what
		// was trained can always be rendered and resumed.
		const bool save = i % cfg.i_weights == 0 || last;
		const bool video = i % cfg.i_video == 0;
		const bool testset = i % cfg.i_testset == 0;
		const TrainCounters now = m_model->counters();
		const uint64_t dropped_since_logged = now.dropped_rays - logged.dropped_rays;
		// Reading the loss waits for the device, so it happens only when the loss is used. A NaN or inf
		// stops the run before anything is saved from the broken state.
		if (print || save || video || testset || progress.due(i) || !unconfirmed_checkpoint.empty()) {
			const auto [mse_fine, mse_coarse] = m_model->read_losses();
			const double loss = (double)mse_fine + (double)mse_coarse;
			if (!std::isfinite(loss)) {
				progress.finish();
				std::string bad;
				if (!unconfirmed_checkpoint.empty() && unconfirmed_is_ours) {
					// Out of the way of the next resume, but kept for whoever wants to look at it.
					std::error_code ec;
					fs::rename(unconfirmed_checkpoint, unconfirmed_checkpoint + ".diverged", ec);
					bad = " " + unconfirmed_checkpoint + " was saved after the update that diverged; " +
					      (ec ? "renaming it failed (" + ec.message() + "): do not resume from it."
					          : "it is now " + unconfirmed_checkpoint + ".diverged.");
				} else if (!unconfirmed_checkpoint.empty()) {
					bad = " Resuming from " + unconfirmed_checkpoint + " diverges at once; resume from an older checkpoint "
					      "with --ft_path, or start over with --no_reload.";
				}
				NERF_FAIL("loss is " << loss << " at step " << i << "; stopping." << bad << " "
				                     << (good_checkpoint.empty() ? std::string("No good checkpoint was saved in this run.")
				                                                 : "The last good checkpoint is " + good_checkpoint));
			}
			if (!unconfirmed_checkpoint.empty()) {
				good_checkpoint = unconfirmed_checkpoint;
				unconfirmed_checkpoint.clear();
			}
			st.last_loss = loss;
			st.last_psnr = mse_to_psnr(mse_fine);
			progress.update(i, loss, st.last_psnr,
			                cfg.occ_grid ? "  dropped rays: " + std::to_string(dropped_since_logged) : std::string());
		}
		if (print) {
			nlohmann::json line = {{"step", i},
			                       {"loss", st.last_loss},
			                       {"psnr", st.last_psnr},
			                       {"lr", m_model->learning_rate(i - 1)},
			                       {"seconds", elapsed()}};
			line["mean_samples_per_ray"] = mean_samples_per_ray(now, logged);
			if (cfg.occ_grid) {
				line["occupied_fraction"] = m_model->occupied_fraction();
				line["dropped_rays"] = dropped_since_logged;
			}
			logged = now;
			st.metrics.append(line.dump() + "\n");
		}
		if (save) {
			const std::string path = checkpoint_path(dir.string(), i);
			save_checkpoint(path, *m_model, i, st.last_loss, elapsed());
			unconfirmed_checkpoint = path;
			unconfirmed_is_ours = true;
			progress.message("Saved checkpoints at " + path);
		}
		if (video) {
			const std::string rgb = render_path_videos(*m_model, m_data, render_cfg, dir.string(), expname, i);
			if (!rgb.empty()) {
				std::string disp = rgb;
				disp.replace(disp.rfind("_rgb"), 4, "_disp");
				progress.message("Saved videos " + rgb + ", " + disp);
			}
		}
		if (testset) {
			const EvalReport report = render_testset(*m_model, m_data, render_cfg, dir.string(), i);
			char text[160];
			std::snprintf(text, sizeof(text), "Saved the %s set at step %ld: mean PSNR %.3f, SSIM %.4f", report.split.c_str(), i,
			              report.mean_psnr, report.mean_ssim);
			progress.message(text);
		}
		if (out_of_time) break;
	}
	progress.finish();
	if (!nothing_to_train) st.metrics.close();
	TrainSummary summary;
	summary.steps = i;
	summary.seconds = nothing_to_train ? resumed.train_seconds : elapsed();
	const double seconds_here = nothing_to_train ? 0.0 : elapsed_here();
	summary.final_loss = st.last_loss;
	summary.device = m_backend.name();

	// The final evaluation is nerfcore's addition (the reference just exits): bounded by n_val_eval,
	// announced, shown, and timed apart from training.
	const std::vector<int> eval_views = val_eval_views(cfg.n_val_eval);
	const std::string eval_split = val_eval_split();
	if (!eval_views.empty()) {
		const auto eval_started = std::chrono::steady_clock::now();
		if (!cfg.quiet)
			std::printf("final evaluation: %zu of %zu %s views at %dx%d for summary.json (--n_val_eval N: the first N, "
			            "-1: all, 0: none)%s\n",
			            eval_views.size(), val_eval_views(-1).size(), eval_split.c_str(), m_data.cameras[eval_views[0]].W,
			            m_data.cameras[eval_views[0]].H, eval_split == "val" ? "" : " (the dataset has no val views)");
		std::fflush(stdout);
		summary.final_val_psnr = evaluate_val_psnr(cfg.n_val_eval, !cfg.quiet);
		summary.eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_started).count();
	}
	summary.val_views = (int)eval_views.size();
	const bool evaluated = summary.val_views > 0;
	summary.mean_samples_per_ray = mean_samples_per_ray(m_model->counters(), TrainCounters{});
	if (cfg.occ_grid) summary.occupied_fraction = m_model->occupied_fraction();
	nlohmann::json out = {{"steps", summary.steps},
	                      {"seconds", summary.seconds},
	                      {"final_val_psnr", evaluated ? nlohmann::json(summary.final_val_psnr) : nlohmann::json(nullptr)},
	                      {"val_views", summary.val_views},
	                      {"eval_split", evaluated ? nlohmann::json(eval_split) : nlohmann::json(nullptr)},
	                      {"eval_seconds", summary.eval_seconds},
	                      // null when unknown: a resume with nothing to train from a checkpoint without it
	                      {"final_loss", std::isfinite(summary.final_loss) ? nlohmann::json(summary.final_loss) : nlohmann::json()},
	                      {"device", summary.device},
	                      {"peak_memory_bytes", m_backend.peak_bytes()},
	                      {"n_params", m_model->n_params()},
	                      {"mean_samples_per_ray", summary.mean_samples_per_ray}};
	if (cfg.occ_grid) {
		out["occupied_fraction"] = summary.occupied_fraction;
		out["dropped_rays"] = m_model->counters().dropped_rays;
		out["grid_samples"] = m_model->counters().grid_samples;
	}
	write_file_atomic(summary_path.string(), out.dump(2) + "\n");
	if (!cfg.quiet) {
		char resumed_text[96] = "";
		if (m_start_step > 0 && !nothing_to_train)
			std::snprintf(resumed_text, sizeof(resumed_text), " (steps %ld..%ld in %.1f s here)", m_start_step + 1, i,
			              seconds_here);
		if (evaluated)
			std::printf("done: %ld steps in %.1f s%s, %s PSNR %.2f dB over %d view%s (%.1f s) -> %s\n", summary.steps,
			            summary.seconds, resumed_text, eval_split.c_str(), summary.final_val_psnr, summary.val_views,
			            summary.val_views == 1 ? "" : "s", summary.eval_seconds, summary_path.c_str());
		else
			std::printf("done: %ld steps in %.1f s%s, no final evaluation -> %s\n", summary.steps, summary.seconds,
			            resumed_text, summary_path.c_str());
	}
	return summary;
}

} // namespace nerf
