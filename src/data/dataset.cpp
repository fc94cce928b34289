// load_dataset: the dispatch on dataset_type that run_nerf.py's train() does, with its near/far choices.
#include "nerf/common.h"
#include "nerf/data/loaders.h"
#include "nerf/dataset.h"
#include "nerf/scene.h"

#include <cstdio>

namespace nerf {

std::vector<Camera> shared_camera_table(const Camera& cam, size_t n_images) {
	std::vector<Camera> table(n_images, cam);
	for (size_t i = 0; i < n_images; ++i) table[i].first_pixel = (uint32_t)(i * (size_t)cam.H * cam.W);
	return table;
}

Camera pinhole_camera(int H, int W, const std::array<float, 9>& K, bool ndc) {
	Camera cam;
	cam.H = H;
	cam.W = W;
	cam.fx = K[0];
	cam.fy = K[4];
	cam.cx = K[2];
	cam.cy = K[5];
	cam.ndc = ndc;
	return cam;
}

const char* lens_model_name(LensModel model) {
	switch (model) {
	case LensModel::Pinhole: return "PINHOLE";
	case LensModel::OpenCV: return "OPENCV";
	case LensModel::OpenCVFisheye: return "OPENCV_FISHEYE";
	}
	return "unknown";
}

namespace {

Dataset load_by_type(const Config& cfg) {
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
	if (type == "transforms") return load_transforms(cfg.datadir, cfg.factor, cfg.llffhold, cfg.white_bkgd);
	NERF_FAIL("unknown dataset_type '" << type << "' (expected blender, llff, deepvoxels, LINEMOD, transforms or builtin)");
}

} // namespace

Dataset load_dataset(const Config& cfg) {
	Dataset ds = load_by_type(cfg);
	// near/far given in the config win over the loader's choice (negative: the loader's).
	if (cfg.near >= 0.0f) ds.near = cfg.near;
	if (cfg.far >= 0.0f) ds.far = cfg.far;
	if (!(ds.far > ds.near))
		NERF_FAIL(cfg.datadir << ": far (" << ds.far << ") must exceed near (" << ds.near << ")"
		                      << (cfg.near >= 0.0f || cfg.far >= 0.0f ? " (near/far options)" : ""));
	return ds;
}

} // namespace nerf
