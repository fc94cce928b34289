// The built-in scene of configs/builtin.txt for the GPU tests: written once per process into its
// scratch folder and loaded as nerf_train loads it, shared by the test files of nerf_gpu_tests.
#pragma once

#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/scene.h"

#include "../scratch_root.h"

#include <filesystem>
#include <string>

namespace nerf_gpu_test {

/// The built-in scene written once into this process's scratch folder, loaded as nerf_train loads it.
struct BuiltinScene {
	nerf::Config cfg;
	nerf::Dataset data;
};

inline const BuiltinScene& builtin_scene() {
	static const BuiltinScene scene = [] {
		BuiltinScene s;
		nerf::load_config_file(std::string(NERF_SOURCE_DIR) + "/configs/builtin.txt", s.cfg);
		// Per process: a fixed path would be shared by two checkouts' runs, and by a run and its leftovers.
		const std::filesystem::path dir = nerf_test::scratch_root.path / "builtin";
		nerf::write_builtin_scene(dir.string(), nerf::SceneOptions{});
		s.cfg.datadir = dir.string();
		s.cfg.dataset_type = "blender";
		s.cfg.quiet = true;
		s.cfg.basedir = (nerf_test::scratch_root.path / "logs").string();
		s.data = nerf::load_dataset(s.cfg);
		return s;
	}();
	return scene;
}

} // namespace nerf_gpu_test
