// A hash-grid model trained on the built-in scene with configs/builtin_ngp.txt, shared by the tests that
// need a model that has learnt a real shape (once per test process: ctest runs each case in its own).
#pragma once

#include "nerf/checkpoint.h"
#include "nerf/scene.h"
#include "nerf/trainer.h"

#include "tools_fixture.h"

#include <filesystem>
#include <string>

namespace nerf_test {

constexpr long kBuiltinNgpSteps = 600;

/// The built-in scene at its default size (64x64, 40 train and 8 val views), written once per process.
inline const std::string& builtin_scene() {
	static const std::string dir = [] {
		const std::string d = fresh_dir("export_scene");
		nerf::write_builtin_scene(d, nerf::SceneOptions{});
		return d;
	}();
	return dir;
}

/// configs/builtin_ngp.txt on the built-in scene, trained for kBuiltinNgpSteps steps on 2 threads, its val
/// PSNR (all 8 views) and the saved checkpoint.
struct TrainedScene {
	std::string checkpoint;
	double val_psnr = 0;
};
inline const TrainedScene& trained_ngp_scene() {
	static const TrainedScene scene = [] {
		nerf::Config cfg;
		nerf::load_config_file(std::string(NERF_SOURCE_DIR) + "/configs/builtin_ngp.txt", cfg);
		cfg.dataset_type = "blender";
		cfg.datadir = builtin_scene();
		cfg.basedir = fresh_dir("export_runs");
		cfg.expname = "ngp";
		cfg.N_iters = kBuiltinNgpSteps;
		cfg.device = "cpu";
		cfg.threads = 2;
		cfg.quiet = true;
		cfg.i_print = cfg.i_img = cfg.i_weights = cfg.i_testset = cfg.i_video = 1000000;
		const nerf::Dataset data = nerf::load_dataset(cfg);
		auto backend = nerf::create_cpu_backend(2);
		nerf::Trainer trainer(cfg, data, *backend);
		for (long i = 1; i <= cfg.N_iters; ++i) trainer.step(i);
		TrainedScene s;
		s.val_psnr = trainer.evaluate_val_psnr(-1);
		s.checkpoint = nerf::checkpoint_path(trainer.run_dir(), cfg.N_iters);
		std::filesystem::create_directories(trainer.run_dir());
		nerf::save_checkpoint(s.checkpoint, trainer.model(), cfg.N_iters);
		return s;
	}();
	return scene;
}

} // namespace nerf_test
