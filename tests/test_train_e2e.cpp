// End to end on the CPU: the built-in scene trains to a PSNR floor, deterministically; occ_grid against
// the dense path.
#include "nerf/backend.h"
#include "nerf/dataset.h"
#include "nerf/scene.h"
#include "nerf/trainer.h"

#include "small_training.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;

namespace {

// A small scene and network so the whole test runs in seconds on two cores.
struct SmallRun {
	fs::path root;
	nerf::Config cfg;
	nerf::Dataset data;

	explicit SmallRun(const std::string& name) {
		// The pid keeps concurrent runs of the suite (ctest -j, several build trees) apart.
		root = fs::temp_directory_path() / ("nerfcore_e2e_" + name + "_" + std::to_string(::getpid()));
		fs::remove_all(root);
		nerf::SceneOptions scene;
		scene.size = 32;
		scene.n_train = 20;
		scene.n_val = 2;
		scene.n_test = 1;
		nerf::write_builtin_scene((root / "scene").string(), scene);
		cfg.dataset_type = "blender";
		cfg.datadir = (root / "scene").string();
		cfg.basedir = (root / "logs").string();
		cfg.expname = name;
		cfg.testskip = 1;
		test_training::use_small_network(cfg);
		cfg.i_print = 50;
		cfg.quiet = true;
		data = nerf::load_dataset(cfg);
	}
	~SmallRun() { fs::remove_all(root); }
};

std::vector<float> params_after(const nerf::Config& cfg, const nerf::Dataset& data, long steps) {
	auto backend = nerf::create_cpu_backend(2);
	nerf::Trainer trainer(cfg, data, *backend);
	for (long i = 1; i <= steps; ++i) trainer.step(i);
	std::vector<float> params(trainer.model().n_floats());
	backend->download(params.data(), trainer.model().params(), params.size() * sizeof(float));
	return params;
}

} // namespace

TEST_CASE("built-in scene trains to a PSNR floor and writes metrics and summary", "[e2e]") {
	SmallRun run("floor");
	REQUIRE(run.data.i_train.size() == 20);
	REQUIRE(run.data.i_val.size() == 2);
	run.cfg.N_iters = 400;
	run.cfg.n_val_eval = -1;
	auto backend = nerf::create_cpu_backend(0);
	nerf::Trainer trainer(run.cfg, run.data, *backend);
	const double psnr_before = trainer.evaluate_val_psnr(-1);
	const auto run_started = std::chrono::steady_clock::now();
	const nerf::TrainSummary summary = trainer.run();
	const double run_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_started).count();
	INFO("val PSNR " << psnr_before << " -> " << summary.final_val_psnr << " dB in " << summary.seconds << " s");
	CHECK(summary.steps == 400);
	// Measured 20.0 dB for this seed and size; an untrained model is ~7 dB. The floor leaves room for
	// libm differences between machines while still failing on any real regression.
	CHECK(summary.final_val_psnr > 18.0);
	CHECK(summary.final_val_psnr > psnr_before + 8.0);

	const fs::path dir = trainer.run_dir();
	std::ifstream metrics(dir / "metrics.jsonl");
	std::string line;
	long lines = 0, last_step = 0;
	while (std::getline(metrics, line)) {
		const nlohmann::json j = nlohmann::json::parse(line);
		for (const char* key : {"step", "loss", "psnr", "lr", "seconds"}) CHECK(j.contains(key));
		last_step = j["step"].get<long>();
		++lines;
	}
	CHECK(lines == 400 / 50);
	CHECK(last_step == 400);
	std::ifstream summary_file(dir / "summary.json");
	REQUIRE(summary_file);
	const nlohmann::json s = nlohmann::json::parse(summary_file);
	CHECK(s["steps"].get<long>() == 400);
	CHECK(s["final_val_psnr"].get<double>() == Approx(summary.final_val_psnr));
	CHECK(s["device"].get<std::string>() == "cpu");
	// Both val views (n_val_eval -1); the evaluation is timed on its own, outside the training seconds:
	// the two intervals fit in the run's wall-clock only when they do not overlap.
	CHECK(s["val_views"].get<int>() == 2);
	CHECK(s["eval_seconds"].get<double>() > 0.0);
	CHECK(s["seconds"].get<double>() + s["eval_seconds"].get<double>() <= run_seconds);
}

TEST_CASE("training is deterministic in the seed and independent of the thread count", "[e2e]") {
	SmallRun run("determinism");
	const std::vector<float> a = params_after(run.cfg, run.data, 12);
	const std::vector<float> b = params_after(run.cfg, run.data, 12);
	REQUIRE(a.size() == b.size());
	CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);

	nerf::Config one_thread = run.cfg;
	auto backend = nerf::create_cpu_backend(1);
	nerf::Trainer trainer(one_thread, run.data, *backend);
	for (long i = 1; i <= 12; ++i) trainer.step(i);
	std::vector<float> c(trainer.model().n_floats());
	backend->download(c.data(), trainer.model().params(), c.size() * sizeof(float));
	CHECK(std::memcmp(a.data(), c.data(), a.size() * sizeof(float)) == 0);

	nerf::Config other_seed = run.cfg;
	other_seed.seed = 1;
	const std::vector<float> d = params_after(other_seed, run.data, 12);
	CHECK(std::memcmp(a.data(), d.data(), a.size() * sizeof(float)) != 0);
}

TEST_CASE("no_batching with precrop trains, an N_rand larger than the precrop window is an error", "[e2e]") {
	SmallRun run("nobatch");
	run.cfg.no_batching = true;
	run.cfg.precrop_iters = 20;
	run.cfg.precrop_frac = 0.5f;
	run.cfg.N_rand = 300;  // more than the 16x16 precrop window (256 pixels) holds -> must fail clearly
	auto backend = nerf::create_cpu_backend(0);
	{
		nerf::Trainer trainer(run.cfg, run.data, *backend);
		CHECK_THROWS_WITH(trainer.step(1), Catch::Contains("precrop"));
	}
	run.cfg.N_rand = 128;
	nerf::Trainer trainer(run.cfg, run.data, *backend);
	for (long i = 1; i <= 40; ++i) trainer.step(i);
	const auto losses = trainer.model().read_losses();
	CHECK(std::isfinite(losses.first));
	CHECK(losses.first < 0.2f);
}

TEST_CASE("render returns fine and coarse maps, z_std and raw, deterministically", "[e2e]") {
	SmallRun run("render");
	auto backend = nerf::create_cpu_backend(0);
	nerf::Trainer trainer(run.cfg, run.data, *backend);
	for (long i = 1; i <= 30; ++i) trainer.step(i);
	nerf::NerfModel& model = trainer.model();
	const nerf::Camera cam = nerf::dataset_camera(run.data);
	const nerf::RenderSettings settings = nerf::RenderSettings::from_config(run.cfg, run.data, false);
	const size_t n = (size_t)cam.H * cam.W;
	std::vector<uint32_t> ids(n);
	for (size_t k = 0; k < n; ++k) ids[k] = (uint32_t)(run.data.i_val[0] * n + k);
	auto id_buffer = backend->allocate<uint32_t>(n);
	backend->upload(id_buffer.data(), ids.data(), n * sizeof(uint32_t));
	const nerf::CameraBuffers cameras = nerf::upload_cameras(*backend, run.data.poses, run.data.cameras);
	const nerf::RenderedRays a = model.render(id_buffer.data(), n, cameras.set(), settings, 100, 0, true);
	REQUIRE(a.rgb.size() == 3 * n);
	REQUIRE(a.rgb0.size() == 3 * n);
	REQUIRE(a.depth0.size() == n);
	REQUIRE(a.z_std.size() == n);
	REQUIRE(a.raw.size() == n * (16 + 16) * 4);
	for (size_t k = 0; k < n; ++k) {
		CHECK(a.acc[k] >= 0.0f);
		CHECK(a.acc[k] <= 1.0f + 1e-5f);
		CHECK(a.z_std[k] >= 0.0f);
		// depth = sum w z with sum w = acc and z in [near, far].
		CHECK(a.depth[k] <= run.data.far * a.acc[k] + 1e-4f);
		CHECK(a.depth[k] >= run.data.near * a.acc[k] - 1e-4f);
	}
	// The whole-image path is the same rendering, and rendering is deterministic (no perturbation).
	const nerf::RenderedRays b = model.render_image(run.data.poses[run.data.i_val[0]], cam, settings, 333);
	CHECK(std::memcmp(a.rgb.data(), b.rgb.data(), a.rgb.size() * sizeof(float)) == 0);
	CHECK(std::memcmp(a.depth.data(), b.depth.data(), a.depth.size() * sizeof(float)) == 0);
}

TEST_CASE("occ_grid reaches the dense run's val PSNR with at most a third of its network samples per ray", "[e2e][occupancy]") {
	SmallRun run("occ_grid_vs_dense");
	run.cfg.N_iters = 400;
	struct Result {
		nerf::TrainSummary summary;
		nerf::TrainCounters counters;
	};
	auto train = [&](const nerf::Config& cfg) {
		auto backend = nerf::create_cpu_backend(0);
		nerf::Trainer trainer(cfg, run.data, *backend);
		Result r;
		r.summary = trainer.run();
		r.counters = trainer.model().counters();
		return r;
	};
	const Result dense = train(run.cfg);
	nerf::Config grid_cfg = run.cfg;
	grid_cfg.expname = "occ_grid";
	grid_cfg.occ_grid = true;
	// Sized for this small scene and short run: cells of 0.094 (what its 32x32 views resolve), a step of
	// 0.08 (still three times finer than the dense run's 16 coarse samples over [2, 6]) and a warmup
	// of 64 steps (all cells evaluated 4 times, not 16).
	grid_cfg.occ_resolution = 32;
	grid_cfg.render_step_size = 0.08f;
	grid_cfg.occ_warmup = 64;
	const Result grid = train(grid_cfg);
	const double dense_work = (double)dense.counters.network_samples;
	const double grid_work = (double)(grid.counters.network_samples + grid.counters.grid_samples);
	std::printf("built-in scene, 400 steps, N_rand 256, CPU: dense %.2f dB, %.1f samples/ray, %.1f s; occ_grid %.2f dB, "
	            "%.1f samples/ray, %.1f s, occupied %.3f, %llu dropped rays; network evaluations grid/dense %.3f\n",
	            dense.summary.final_val_psnr, dense.summary.mean_samples_per_ray, dense.summary.seconds,
	            grid.summary.final_val_psnr, grid.summary.mean_samples_per_ray, grid.summary.seconds,
	            grid.summary.occupied_fraction, (unsigned long long)grid.counters.dropped_rays, grid_work / dense_work);
	INFO("dense " << dense.summary.final_val_psnr << " dB, grid " << grid.summary.final_val_psnr << " dB; samples/ray "
	              << dense.summary.mean_samples_per_ray << " vs " << grid.summary.mean_samples_per_ray);
	// Dense: 16 coarse + (16 + 16) fine evaluations per ray, exactly.
	CHECK(dense.summary.mean_samples_per_ray == 48.0);
	CHECK(dense.summary.occupied_fraction == -1.0);
	CHECK(grid.summary.final_val_psnr >= dense.summary.final_val_psnr - 0.5);
	CHECK(grid.summary.mean_samples_per_ray <= dense.summary.mean_samples_per_ray / 3.0);
	// Wall time on a shared 2-core machine is noisy, so the time goal is checked as work: every network
	// evaluation of the grid run (the early-stop pass, the trained samples and the grid updates) against
	// the dense run's, at most half. The grid run's evaluations are also cheaper (only the trained
	// samples go backward), so this bounds its time from above.
	CHECK(grid_work <= 0.5 * dense_work);
	CHECK(grid.summary.occupied_fraction > 0.0);
	CHECK(grid.summary.occupied_fraction < 0.5);
	std::ifstream summary_file(fs::path(run.cfg.basedir) / "occ_grid" / "summary.json");
	const nlohmann::json s = nlohmann::json::parse(summary_file);
	CHECK(s["mean_samples_per_ray"].get<double>() == Approx(grid.summary.mean_samples_per_ray));
	CHECK(s["occupied_fraction"].get<double>() == Approx(grid.summary.occupied_fraction));
	std::ifstream metrics(fs::path(run.cfg.basedir) / "occ_grid" / "metrics.jsonl");
	std::string line;
	int lines = 0;
	while (std::getline(metrics, line)) {
		const nlohmann::json j = nlohmann::json::parse(line);
		CHECK(j.contains("mean_samples_per_ray"));
		CHECK(j["occupied_fraction"].get<double>() > 0.0);
		++lines;
	}
	CHECK(lines == 400 / 50);
}
