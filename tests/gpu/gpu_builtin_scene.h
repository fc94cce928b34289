// The built-in scene of configs/builtin.txt for the GPU tests: written once into the temp folder and
// loaded as nerf_train loads it, shared by the test files of nerf_gpu_tests.
#pragma once

#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/scene.h"

#include <filesystem>
#include <string>

namespace nerf_gpu_test {

/// The built-in scene written once into the temp folder, loaded as nerf_train loads it.
struct BuiltinScene {
	nerf::Config cfg;
	nerf::Dataset data;
};

inline const BuiltinScene& builtin_scene() {
	static const BuiltinScene scene = [] {
		BuiltinScene s;
		nerf::load_config_file(std::string(NERF_SOURCE_DIR) + "/configs/builtin.txt", s.cfg);
		const std::filesystem::path dir = std::filesystem::temp_directory_path() / "nerfcore_gpu_tests_builtin";
		if (!nerf::builtin_scene_matches(dir.string(), nerf::SceneOptions{}))
			nerf::write_builtin_scene(dir.string(), nerf::SceneOptions{});
		s.cfg.datadir = dir.string();
		s.cfg.dataset_type = "blender";
		s.cfg.quiet = true;
		s.cfg.basedir = (std::filesystem::temp_directory_path() / "nerfcore_gpu_tests_logs").string();
		s.data = nerf::load_dataset(s.cfg);
		return s;
	}();
	return scene;
}

} // namespace nerf_gpu_test
