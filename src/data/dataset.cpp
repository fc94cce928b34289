// load_dataset: the dispatch on dataset_type that run_nerf.py's train() does, with its near/far choices.
#include "nerf/common.h"
#include "nerf/data/loaders.h"
#include "nerf/dataset.h"
#include "nerf/scene.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace nerf {

std::string pose_problem(const Pose& p) {
	for (float v : p)
		if (!std::isfinite(v)) return "it has a non-finite entry";
	// Columns of the rotation part: the camera's axes in the world. A zero or (nearly) coplanar set
	// makes rays with no direction or all in one plane. Relative to the axes' lengths, so scale-free.
	double norms[3], det = 0.0;
	for (int c = 0; c < 3; ++c) norms[c] = std::sqrt((double)p[c] * p[c] + (double)p[4 + c] * p[4 + c] + (double)p[8 + c] * p[8 + c]);
	det = (double)p[0] * ((double)p[5] * p[10] - (double)p[6] * p[9]) - (double)p[1] * ((double)p[4] * p[10] - (double)p[6] * p[8]) +
	      (double)p[2] * ((double)p[4] * p[9] - (double)p[5] * p[8]);
	const double volume = norms[0] * norms[1] * norms[2];
	if (!(volume > 1e-12) || !(std::abs(det) > 1e-3 * volume))
		return "its rotation part is degenerate (determinant " + std::to_string(det) + ")";
	return "";
}

std::string camera_problem(const Camera& cam) {
	std::ostringstream why;
	if (cam.H < 1 || cam.W < 1) why << "it is " << cam.W << "x" << cam.H << " pixels; both sides must be >= 1";
	else if (!(std::isfinite(cam.fx) && cam.fx > 0.0f && std::isfinite(cam.fy) && cam.fy > 0.0f))
		why << "its focal lengths (" << cam.fx << ", " << cam.fy << ") must be positive and finite";
	else if (!std::isfinite(cam.cx) || !std::isfinite(cam.cy))
		why << "its principal point (" << cam.cx << ", " << cam.cy << ") must be finite";
	return why.str();
}

std::string near_far_problem(float near, float far) {
	if (std::isfinite(near) && std::isfinite(far) && near >= 0.0f && far > near) return "";
	std::ostringstream why;
	why << "near " << near << " and far " << far << " must be finite with 0 <= near < far";
	return why.str();
}

void check_dataset_geometry(const Dataset& ds, const std::string& source) {
	if (ds.H <= 0 || ds.W <= 0) NERF_FAIL(source << ": images are " << ds.W << "x" << ds.H << "; both sides must be >= 1");
	if (!std::isfinite(ds.focal) || ds.focal <= 0.0f)
		NERF_FAIL(source << ": focal is " << ds.focal << "; it must be a positive number of pixels");
	for (float k : ds.K)
		if (!std::isfinite(k)) NERF_FAIL(source << ": the intrinsics K have a non-finite entry");
	if (!(ds.K[0] > 0.0f) || !(ds.K[4] > 0.0f))
		NERF_FAIL(source << ": the intrinsics K have focal lengths " << ds.K[0] << ", " << ds.K[4] << "; both must be > 0");
	const std::string bounds = near_far_problem(ds.near, ds.far);
	if (!bounds.empty()) NERF_FAIL(source << ": " << bounds);
	for (size_t i = 0; i < ds.cameras.size(); ++i) {
		const std::string problem = camera_problem(ds.cameras[i]);
		if (!problem.empty()) NERF_FAIL(source << ": the camera of image " << i << " is unusable: " << problem);
	}
	for (size_t i = 0; i < ds.poses.size(); ++i) {
		const std::string problem = pose_problem(ds.poses[i]);
		if (!problem.empty()) NERF_FAIL(source << ": the pose of image " << i << " is unusable: " << problem);
	}
	for (size_t i = 0; i < ds.render_poses.size(); ++i) {
		const std::string problem = pose_problem(ds.render_poses[i]);
		if (!problem.empty()) NERF_FAIL(source << ": render path pose " << i << " is unusable: " << problem);
	}
}

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
	const uint64_t max_pixels = cfg.max_image_pixels;
	// The hash-grid model trains RGBA scenes on random backgrounds, which needs each pixel's alpha.
	const bool keep_alpha = cfg.model == "ngp";
	if (type == "blender") return load_blender(cfg.datadir, cfg.half_res, cfg.testskip, cfg.white_bkgd, max_pixels, keep_alpha);
	if (type == "builtin") {
		// nerfcore's procedural scene: written into datadir when absent (or written with other options),
		// then read like any Blender scene.
		const SceneOptions scene;
		if (!builtin_scene_matches(cfg.datadir, scene)) {
			if (!cfg.quiet) std::printf("writing the built-in scene to %s\n", cfg.datadir.c_str());
			write_builtin_scene(cfg.datadir, scene);
		}
		return load_blender(cfg.datadir, cfg.half_res, cfg.testskip, cfg.white_bkgd, max_pixels, keep_alpha);
	}
	// factor 0: nerf-pytorch's default for LLFF, 8; transforms.json scenes choose their own (load_transforms).
	if (type == "llff")
		return load_llff(cfg.datadir, cfg.factor > 0 ? cfg.factor : 8, cfg.spherify, cfg.llffhold, cfg.no_ndc, max_pixels);
	if (type == "deepvoxels") return load_deepvoxels(cfg.datadir, cfg.shape, cfg.testskip, max_pixels);
	if (type == "LINEMOD") return load_linemod(cfg.datadir, cfg.half_res, cfg.testskip, cfg.white_bkgd, max_pixels);
	if (type == "transforms") return load_transforms(cfg.datadir, cfg.factor, cfg.llffhold, cfg.white_bkgd, max_pixels);
	NERF_FAIL("unknown dataset_type '" << type << "' (expected blender, llff, deepvoxels, LINEMOD, transforms or builtin)");
}

} // namespace

Dataset load_dataset(const Config& cfg) {
	// A missing scene is most often one not downloaded yet, or a datadir that points elsewhere.
	std::error_code ec;
	if (cfg.dataset_type != "builtin" && !std::filesystem::is_directory(cfg.datadir, ec))
		NERF_FAIL(cfg.datadir << ": the dataset folder does not exist (datadir, dataset_type " << cfg.dataset_type
		                      << "). The example scenes (nerf_synthetic/lego, nerf_llff_data/fern) download into ./data "
		                         "with: bash data_scripts/download_example_data.sh; or point --datadir at your scene");
	Dataset ds = load_by_type(cfg);
	// near/far given in the config win over the loader's choice (negative: the loader's).
	if (cfg.near >= 0.0f) ds.near = cfg.near;
	if (cfg.far >= 0.0f) ds.far = cfg.far;
	if ((cfg.near >= 0.0f || cfg.far >= 0.0f) && !(ds.far > ds.near))
		NERF_FAIL(cfg.datadir << ": far (" << ds.far << ") must exceed near (" << ds.near << ") (near/far options)");
	// Every loader checks its own files; this catches what their combination can still get wrong
	// (a zero focal, near >= far, a degenerate pose) before training turns it into NaN.
	check_dataset_geometry(ds, cfg.datadir + " (" + cfg.dataset_type + ")");
	return ds;
}

} // namespace nerf
