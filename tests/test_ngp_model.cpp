// The hash-grid model (model = ngp) as a whole on the CPU: what the model layer promises every field
// (checkpoints named by level and layer that load only into the same field type, a resume that
// continues bit for bit, a result independent of the thread count), the dense sampler refused, its
// options' errors, random backgrounds, and that it learns the built-in scene.
#include "nerf/checkpoint.h"
#include "nerf/io/safetensors.h"
#include "nerf/trainer.h"
#include "tools_fixture.h"
#include "trained_scene.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <set>

using nerf_test::fresh_dir;
using nerf_test::host_copy;
using nerf_test::same_bits;
using nerf_test::tiny_config;

namespace {

/// tiny_config as the hash-grid model: a small table and grid, so that a step takes milliseconds.
nerf::Config ngp_config(const std::string& basedir, const std::string& expname) {
	nerf::Config cfg = tiny_config(basedir, expname);
	cfg.model = "ngp";
	cfg.occ_grid = true;
	cfg.occ_resolution = 16;
	cfg.occ_update_every = 2;
	cfg.occ_warmup = 4;
	cfg.n_levels = 8;
	cfg.log2_hashmap_size = 12;
	cfg.finest_resolution = 128;
	cfg.render_step_size = 0.05f;
	cfg.N_rand = 64;
	cfg.N_iters = 10;
	return cfg;
}

std::vector<float> state_of(nerf::NerfModel& model) {
	std::vector<float> s = host_copy(model.backend(), model.params(), model.n_floats());
	const std::vector<float> m = host_copy(model.backend(), model.adam_m(), model.n_floats());
	const std::vector<float> v = host_copy(model.backend(), model.adam_v(), model.n_floats());
	const uint32_t cells = nerf::occ_cell_count(model.occ_grid());
	const std::vector<float> grid = host_copy(model.backend(), model.occ_density(), cells);
	s.insert(s.end(), m.begin(), m.end());
	s.insert(s.end(), v.begin(), v.end());
	s.insert(s.end(), grid.begin(), grid.end());
	return s;
}

} // namespace

TEST_CASE("ngp: the dense sampler is refused, and bad options are one clear error each", "[ngp][errors]") {
	nerf::Config cfg = ngp_config(fresh_dir("ngp_errors"), "run");
	cfg.occ_grid = false;
	CHECK_THROWS_WITH(nerf::validate_config(cfg), Catch::Contains("model = ngp") && Catch::Contains("occ_grid"));
	cfg.occ_grid = true;
	CHECK_NOTHROW(nerf::validate_config(cfg));
	const std::pair<const char*, std::function<void(nerf::Config&)>> bad[] = {
		{"log2_hashmap_size", [](nerf::Config& c) { c.log2_hashmap_size = 25; }},
		{"log2_hashmap_size", [](nerf::Config& c) { c.log2_hashmap_size = 9; }},
		{"n_levels", [](nerf::Config& c) { c.n_levels = 0; }},
		{"n_features_per_level", [](nerf::Config& c) { c.n_features_per_level = 3; }},
		{"finest_resolution", [](nerf::Config& c) { c.finest_resolution = 8; }},
		{"model", [](nerf::Config& c) { c.model = "instant"; }},
	};
	auto backend = nerf::create_cpu_backend(1);
	for (const auto& [name, spoil] : bad) {
		nerf::Config c = cfg;
		spoil(c);
		INFO(name);
		bool threw = false;
		try {
			nerf::validate_config(c);
			nerf::NerfModel model(*backend, c);
		} catch (const nerf::Error& e) {
			threw = true;
			CHECK_THAT(e.what(), Catch::Contains(name));
		}
		CHECK(threw);
	}
	// A box of zero volume along an axis.
	nerf::Config flat = cfg;
	flat.occ_aabb = "-1,-1,0,1,1,0";
	CHECK_THROWS_WITH(nerf::NerfModel(*backend, flat), Catch::Contains("occ_aabb"));
}

TEST_CASE("ngp: a checkpoint names its field and loads only into the same type", "[ngp][checkpoint]") {
	const std::string dir = fresh_dir("ngp_ckpt");
	nerf::Config cfg = ngp_config(dir, "run");
	const nerf::Dataset data = nerf::load_dataset(cfg);
	auto backend = nerf::create_cpu_backend(1);
	nerf::Trainer trainer(cfg, data, *backend);
	for (long i = 1; i <= 3; ++i) trainer.step(i);
	const std::string path = nerf::checkpoint_path(dir, 3);
	nerf::save_checkpoint(path, trainer.model(), 3);

	const nerf::SafetensorsFile file = nerf::read_safetensors(path);
	CHECK(file.metadata.at("field") == "ngp");
	CHECK(file.metadata.at("format_version") == "3");
	// One tensor per hash level, [entries, features], and the networks' weights by layer, no biases.
	const nerf::HashGridSpec* grid = nullptr;
	(void)grid;
	std::set<std::string> names;
	for (const auto& [name, tensor] : file.tensors) names.insert(name);
	CHECK(names.count("field.hash_grid.level_00"));
	CHECK(names.count("field.hash_grid.level_07"));
	CHECK_FALSE(names.count("field.hash_grid.level_08"));
	CHECK(file.tensors.at("field.hash_grid.level_00").shape == std::vector<int64_t>{16 * 16 * 16, 2});
	CHECK(file.tensors.at("field.hash_grid.level_07").shape == std::vector<int64_t>{1 << 12, 2});
	CHECK(file.tensors.at("field.density_net.0.weight").shape == std::vector<int64_t>{64, 16});
	CHECK(file.tensors.at("field.density_net.1.weight").shape == std::vector<int64_t>{16, 64});
	CHECK(file.tensors.at("field.colour_net.0.weight").shape == std::vector<int64_t>{64, 31});
	CHECK(file.tensors.at("field.colour_net.2.weight").shape == std::vector<int64_t>{3, 64});
	CHECK(names.count("optimizer.exp_avg.field.colour_net.1.weight"));
	for (const std::string& name : names) CHECK(name.find("bias") == std::string::npos);

	// Into an ngp model: the same state; into the reference's model: a clear message.
	nerf::NerfModel again(*backend, trainer.model().config());
	nerf::load_checkpoint(path, again);
	CHECK(same_bits(state_of(again), state_of(trainer.model())));
	nerf::Config reference = tiny_config(dir, "run");
	nerf::NerfModel nerf_model(*backend, reference);
	CHECK_THROWS_WITH(nerf::load_checkpoint(path, nerf_model),
	                  Catch::Contains("holds a 'ngp' model") && Catch::Contains("--model ngp"));
	// And a reference checkpoint into an ngp model.
	const std::string nerf_path = dir + "/nerf.safetensors";
	nerf::save_checkpoint(nerf_path, nerf_model, 0);
	CHECK_THROWS_WITH(nerf::load_checkpoint(nerf_path, again), Catch::Contains("holds a 'nerf' model"));
}

TEST_CASE("ngp: train, save, resume = train straight (bitwise), and 1 thread = 2 threads", "[ngp][checkpoint]") {
	const std::string dir = fresh_dir("ngp_resume");
	nerf::Config cfg = ngp_config(dir, "run");
	cfg.target_samples = 800;  // the rays per step adapt: state the checkpoint must carry
	const nerf::Dataset data = nerf::load_dataset(cfg);
	const long total = 9, stop_at = 4;
	auto straight_run = [&](int threads) {
		auto backend = nerf::create_cpu_backend(threads);
		nerf::Trainer trainer(cfg, data, *backend);
		for (long i = 1; i <= total; ++i) trainer.step(i);
		return state_of(trainer.model());
	};
	const std::vector<float> one = straight_run(1), two = straight_run(2);
	CHECK(same_bits(one, two));
	const nerf_test::ResumedRun run =
		nerf_test::train_save_resume(cfg, data, stop_at, total, nerf::checkpoint_path(dir, stop_at));
	CHECK(same_bits(state_of(run.trainer->model()), one));
	// Something trained: the parameters moved from their initial values.
	nerf::NerfModel fresh(*run.backend, run.trainer->config());
	CHECK_FALSE(same_bits(host_copy(*run.backend, fresh.params(), fresh.n_floats()),
	                      host_copy(*run.backend, run.trainer->model().params(), fresh.n_floats())));
}

TEST_CASE("ngp: random backgrounds in training, white in evaluation", "[ngp]") {
	const std::string dir = fresh_dir("ngp_background");
	nerf::Config cfg = ngp_config(dir, "run");
	const nerf::Dataset data = nerf::load_dataset(cfg);
	// The hash-grid model keeps the alpha of the RGBA scene, the reference's model does not.
	REQUIRE(data.alpha.size() == data.images.size() / 3);
	CHECK(nerf::load_dataset(tiny_config(dir, "run")).alpha.empty());
	CHECK(nerf::RenderSettings::from_config(cfg, data, true).random_background);
	CHECK_FALSE(nerf::RenderSettings::from_config(cfg, data, false).random_background);
	// The target a random background makes: rgb a + bg (1 - a), from the white-composited pixel.
	auto backend = nerf::create_cpu_backend(1);
	const std::vector<float> images = {0.2f * 0.5f + 0.5f, 1.0f, 0.6f * 0.5f + 0.5f};  // rgb (0.2, 1, 0.6) at alpha 0.5 on white
	const std::vector<float> alpha = {0.5f};
	const std::vector<uint32_t> ids = {0};
	auto d_images = backend->allocate<float>(3), d_alpha = backend->allocate<float>(1), d_bg = backend->allocate<float>(3);
	auto d_ids = backend->allocate<uint32_t>(1);
	backend->upload(d_images.data(), images.data(), 12);
	backend->upload(d_alpha.data(), alpha.data(), 4);
	backend->upload(d_ids.data(), ids.data(), 4);
	backend->random_background(d_images.data(), d_bg.data(), d_alpha.data(), d_ids.data(), 1, 7, 3);
	const std::vector<float> target = host_copy(*backend, d_images.data(), 3), bg = host_copy(*backend, d_bg.data(), 3);
	const float rgb[3] = {0.2f, 1.0f, 0.6f};
	for (int c = 0; c < 3; ++c) {
		CHECK(bg[c] >= 0.0f);
		CHECK(bg[c] < 1.0f);
		CHECK(target[c] == Approx(rgb[c] * 0.5f + bg[c] * 0.5f).margin(1e-6));
	}
	CHECK(bg[0] != bg[1]);
}

TEST_CASE("ngp: configs/builtin_ngp.txt learns the built-in scene: val PSNR above 30 dB after 600 steps", "[ngp][e2e]") {
	const nerf_test::TrainedScene& scene = nerf_test::trained_ngp_scene();
	std::printf("builtin_ngp.txt, %ld steps: val PSNR %.3f dB over the 8 val views\n", nerf_test::kBuiltinNgpSteps, scene.val_psnr);
	CHECK(scene.val_psnr > 30.0);
}
