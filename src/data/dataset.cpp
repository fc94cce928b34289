// load_dataset: the dispatch on dataset_type that run_nerf.py's train() does, with its near/far choices.
#include "nerf/common.h"
#include "nerf/data/loaders.h"
#include "nerf/dataset.h"
#include "nerf/scene.h"

#include <cstdio>

namespace nerf {

Dataset load_dataset(const Config& cfg) {
	const std::string& type = cfg.dataset_type;
	if (type == "blender") return load_blender(cfg.datadir, cfg.half_res, cfg.testskip, cfg.white_bkgd);
	if (type == "builtin") {
		// nerfcore's procedural scene: written into datadir when absent (or written with other options),
		// then read like any Blender scene.
		const SceneOptions scene;
		if (!builtin_scene_matches(cfg.datadir, scene)) {
			if (!cfg.quiet) std::printf("writing the built-in scene to %s\n", cfg.datadir.c_str());
			write_builtin_scene(cfg.datadir, scene);
		}
		return load_blender(cfg.datadir, cfg.half_res, cfg.testskip, cfg.white_bkgd);
	}
	if (type == "llff") return load_llff(cfg.datadir, cfg.factor, cfg.spherify, cfg.llffhold, cfg.no_ndc);
	if (type == "deepvoxels") return load_deepvoxels(cfg.datadir, cfg.shape, cfg.testskip);
	if (type == "LINEMOD") return load_linemod(cfg.datadir, cfg.half_res, cfg.testskip, cfg.white_bkgd);
	NERF_FAIL("unknown dataset_type '" << type << "' (expected blender, llff, deepvoxels, LINEMOD or builtin)");
}

} // namespace nerf
