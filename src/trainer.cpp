// The training loop of run_nerf.py's train(), on the host: it picks each step's rays, sets the
// learning rate, and logs. Every random choice is a pure function of (seed, step), so a run that is
// stopped and resumed from a checkpoint at step k continues exactly as if it had not stopped.
#include "nerf/trainer.h"

#include "nerf/checkpoint.h"
#include "nerf/common.h"
#include "nerf/math/rng.h"
#include "nerf/progress.h"
#include "nerf/render.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>

namespace nerf {

namespace fs = std::filesystem;

namespace {
/// Network evaluations per trained ray between two snapshots of the counters (0 when no ray was trained).
double mean_samples_per_ray(const TrainCounters& now, const TrainCounters& before) {
	const uint64_t rays = now.rays - before.rays;
	return rays ? (double)(now.network_samples - before.network_samples) / (double)rays : 0.0;
}
} // namespace

struct Trainer::State {
	Buffer<float> images;  // [n_images, H, W, 3]
	Buffer<float> poses;   // [n_images, 3, 4]
	Camera camera;
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
	std::ofstream metrics;
	double last_loss = 0.0, last_psnr = 0.0;
};

Trainer::Trainer(const Config& cfg, const Dataset& data, Backend& backend)
    : m_cfg(cfg), m_data(data), m_backend(backend), m_state(std::make_unique<State>()) {
	NERF_CHECK(data.n_images() > 0 && data.H > 0 && data.W > 0);
	if (data.i_train.empty()) NERF_FAIL("dataset " << cfg.datadir << " has no training images");
	if ((double)data.n_images() * data.H * data.W >= 4294967296.0)
		NERF_FAIL("dataset " << cfg.datadir << " has more than 2^32 pixels; flat pixel ids are 32-bit");
	// The grid's box is the dataset's (e.g. its cameras'), fixed now so that the saved config names it.
	if (m_cfg.occ_grid) m_cfg.occ_aabb = occ_grid_box(m_cfg, data);
	m_model = std::make_unique<NerfModel>(backend, m_cfg);
	State& st = *m_state;
	st.camera = dataset_camera(data);
	st.train_settings = RenderSettings::from_config(cfg, data, true);
	st.test_settings = RenderSettings::from_config(cfg, data, false);
	st.images = backend.allocate<float>(data.images.size());
	backend.upload(st.images.data(), data.images.data(), data.images.size() * sizeof(float));
	st.poses = backend.allocate<float>(12 * data.n_images());
	backend.upload(st.poses.data(), data.poses.data(), 12 * data.n_images() * sizeof(float));
	const uint32_t pixels_per_image = (uint32_t)data.H * data.W;
	if (!cfg.no_batching) {
		st.train_pixel_ids.reserve((size_t)data.i_train.size() * pixels_per_image);
		for (int image : data.i_train)
			for (uint32_t p = 0; p < pixels_per_image; ++p) st.train_pixel_ids.push_back((uint32_t)image * pixels_per_image + p);
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
		int row0 = 0, col0 = 0, rows = m_data.H, cols = m_data.W;
		if (i < cfg.precrop_iters) {
			const int dH = (int)((m_data.H / 2) * cfg.precrop_frac), dW = (int)((m_data.W / 2) * cfg.precrop_frac);
			row0 = m_data.H / 2 - dH;
			col0 = m_data.W / 2 - dW;
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
			st.step_ids_host[k] = (uint32_t)image * m_data.H * m_data.W + row * m_data.W + col;
		}
		for (size_t k = n_rays; k-- > 0;) std::swap(coords[k], coords[swaps[k]]);
		m_backend.upload(st.step_ids.data(), st.step_ids_host.data(), n_rays * sizeof(uint32_t));
		ids = st.step_ids.data();
	}
	// lr = lrate * 0.1^(global_step / (lrate_decay * 1000)) with the 0-based global step.
	const float lr = learning_rate(cfg.lrate, cfg.lrate_decay, i - 1);
	m_model->train_step(ids, n_rays, st.images.data(), st.poses.data(), st.camera, st.train_settings, rng_step, lr);
	if (adaptive_rays()) {
		// nerfacc's rule: scale the rays by target / samples seen (doubling when a step saw none).
		const double trained = (double)m_model->last_step_rays(), samples = (double)m_model->last_step_samples();
		const double next = samples > 0.0 ? trained * cfg.target_samples / samples : 2.0 * trained;
		counters.next_rays = (uint32_t)std::clamp(std::round(next), 1.0, (double)max_rays_per_step());
	}
}

double Trainer::evaluate_val_psnr(int n_views) {
	const std::vector<int>& views = m_data.i_val.empty() ? m_data.i_test : m_data.i_val;
	if (views.empty()) return 0.0;
	const size_t n = n_views > 0 ? std::min<size_t>(n_views, views.size()) : views.size();
	double psnr_sum = 0.0;
	for (size_t v = 0; v < n; ++v) {
		const int image = views[v];
		RenderedRays out = m_model->render_image(m_data.poses[image], m_state->camera, m_state->test_settings, m_cfg.chunk);
		psnr_sum += mse_to_psnr(image_mse(out.rgb.data(), m_data.image(image), out.rgb.size()));
	}
	return psnr_sum / (double)n;
}

TrainSummary Trainer::run() {
	State& st = *m_state;
	const Config& cfg = m_cfg;
	const fs::path dir = run_dir();
	std::error_code ec;
	fs::create_directories(dir, ec);
	if (ec) NERF_FAIL(dir.string() << ": cannot create the run folder (" << ec.message() << "); is basedir writable?");
	{
		std::ofstream config_out(dir / "config.txt");
		if (!config_out) NERF_FAIL((dir / "config.txt").string() << ": cannot write (is basedir writable?)");
		config_out << config_to_string(cfg);
	}
	// Reload as the reference's create_nerf: ft_path, else the newest checkpoint here, unless no_reload.
	// A caller that set the start step itself has loaded its own state.
	std::string last_checkpoint;
	if (m_start_step == 0) {
		const CheckpointInfo resumed = resume_training(cfg, dir.string(), *m_model);
		last_checkpoint = resumed.path;
		m_start_step = resumed.global_step;
	}
	if (cfg.render_only) {
		render_only(*m_model, m_data, cfg, dir.string(), m_start_step);
		TrainSummary summary;
		summary.steps = m_start_step;
		summary.device = m_backend.name();
		return summary;
	}
	st.metrics.open(dir / "metrics.jsonl", m_start_step > 0 ? std::ios::app : std::ios::trunc);
	if (!st.metrics) NERF_FAIL((dir / "metrics.jsonl").string() << ": cannot write");

	if (!cfg.quiet)
		std::cout << "training on " << m_backend.name() << ": " << m_model->n_params() << " parameters, "
		          << m_data.i_train.size() << " train views " << m_data.W << "x" << m_data.H << ", steps "
		          << m_start_step + 1 << ".." << cfg.N_iters << std::endl;
	// Videos and test sets report through the progress display, not by printing over the bar.
	Config render_cfg = cfg;
	render_cfg.quiet = true;
	const std::string expname = dir.filename().string();
	Progress progress(m_start_step + 1, cfg.N_iters, cfg.i_print, cfg.quiet);
	st.started = std::chrono::steady_clock::now();
	auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - st.started).count(); };
	long i = m_start_step;
	TrainCounters logged = m_model->counters();  // mean_samples_per_ray of a metrics line: since the last line
	while (i < cfg.N_iters) {
		++i;
		step(i);
		if (i == m_start_step + 1) {
			// Every workspace exists after the first step, so this is the run's peak (bar rendering chunks).
			char text[128];
			std::snprintf(text, sizeof(text), "peak %s memory after the first step: %.1f MiB", m_backend.name().c_str(),
			              (double)m_backend.peak_bytes() / (1024.0 * 1024.0));
			progress.message(text);
		}
		const bool out_of_time = cfg.max_seconds > 0.0 && elapsed() >= cfg.max_seconds;
		const bool last = i == cfg.N_iters || out_of_time;
		const bool print = i % cfg.i_print == 0 || last;
		// The reference saves only every i_weights steps; the end of a run is saved too, so that what
		// was trained can always be rendered and resumed.
		const bool save = i % cfg.i_weights == 0 || last;
		const bool video = i % cfg.i_video == 0;
		const bool testset = i % cfg.i_testset == 0;
		// Reading the loss waits for the device, so it happens only when the loss is used. A NaN or inf
		// stops the run before anything is saved from the broken state.
		if (print || save || video || testset || progress.due(i)) {
			const auto [mse_fine, mse_coarse] = m_model->read_losses();
			const double loss = (double)mse_fine + (double)mse_coarse;
			if (!std::isfinite(loss)) {
				progress.finish();
				NERF_FAIL("loss is " << loss << " at step " << i << "; stopping. "
				                     << (last_checkpoint.empty() ? std::string("No checkpoint had been saved yet.")
				                                                 : "The last good checkpoint is " + last_checkpoint));
			}
			st.last_loss = loss;
			st.last_psnr = mse_to_psnr(mse_fine);
			progress.update(i, loss, st.last_psnr);
		}
		if (print) {
			nlohmann::json line = {{"step", i},
			                       {"loss", st.last_loss},
			                       {"psnr", st.last_psnr},
			                       {"lr", learning_rate(cfg.lrate, cfg.lrate_decay, i - 1)},
			                       {"seconds", elapsed()}};
			const TrainCounters& now = m_model->counters();
			line["mean_samples_per_ray"] = mean_samples_per_ray(now, logged);
			logged = now;
			if (cfg.occ_grid) line["occupied_fraction"] = m_model->occupied_fraction();
			st.metrics << line.dump() << "\n";
			st.metrics.flush();
		}
		if (save) {
			const std::string path = checkpoint_path(dir.string(), i);
			save_checkpoint(path, *m_model, i);
			last_checkpoint = path;
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
	TrainSummary summary;
	summary.steps = i;
	summary.seconds = elapsed();
	summary.final_loss = st.last_loss;
	summary.device = m_backend.name();
	summary.final_val_psnr = evaluate_val_psnr(cfg.n_val_eval);
	summary.mean_samples_per_ray = mean_samples_per_ray(m_model->counters(), TrainCounters{});
	if (cfg.occ_grid) summary.occupied_fraction = m_model->occupied_fraction();
	nlohmann::json out = {{"steps", summary.steps},
	                      {"seconds", summary.seconds},
	                      {"final_val_psnr", summary.final_val_psnr},
	                      {"final_loss", summary.final_loss},
	                      {"device", summary.device},
	                      {"peak_memory_bytes", m_backend.peak_bytes()},
	                      {"n_params", m_model->n_params()},
	                      {"mean_samples_per_ray", summary.mean_samples_per_ray}};
	if (cfg.occ_grid) {
		out["occupied_fraction"] = summary.occupied_fraction;
		out["dropped_rays"] = m_model->counters().dropped_rays;
		out["grid_samples"] = m_model->counters().grid_samples;
	}
	std::ofstream summary_out(dir / "summary.json");
	if (!summary_out) NERF_FAIL((dir / "summary.json").string() << ": cannot write");
	summary_out << out.dump(2) << "\n";
	if (!cfg.quiet)
		std::printf("done: %ld steps in %.1f s, val PSNR %.2f dB -> %s\n", summary.steps, summary.seconds,
		            summary.final_val_psnr, (dir / "summary.json").c_str());
	return summary;
}

} // namespace nerf
