// colmap2llff: a COLMAP sparse model -> LLFF's poses_bounds.npy (as LLFF's imgs2poses.py writes it), and
// with --transforms also a transforms.json with every camera's intrinsics and lens (as instant-ngp's
// colmap2nerf.py and nerfstudio's ns-process-data write it).
//   colmap2llff SCENE                      reads SCENE/sparse/0, writes SCENE/poses_bounds.npy
//   colmap2llff SCENE --sparse DIR --out FILE
//   colmap2llff SCENE --transforms [--transforms_out FILE] [--no_llff]
#include "nerf/common.h"
#include "nerf/data/colmap.h"
#include "nerf/io/npy.h"
#include "nerf/io/output_file.h"

#include "tool_main.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

namespace {

int run(int argc, char** argv) {
	CLI::App app{"Convert a COLMAP sparse model to LLFF's poses_bounds.npy (camera-to-world poses in LLFF's axes, "
	             "H W focal of the first camera, near/far from the 0.1/99.9 percentiles of the observed points' depths)"};
	nerf::tool::apply_command_line_rules(app);
	std::string scene, sparse_dir, out_path, transforms_path;
	bool transforms = false, no_llff = false;
	app.add_option("scene", scene, "scene folder (holding sparse/0 and images/)")->required();
	app.add_option("--sparse", sparse_dir, "COLMAP model folder (default: SCENE/sparse/0)");
	app.add_option("--out", out_path, "output file (default: SCENE/poses_bounds.npy)");
	app.add_flag("--transforms", transforms,
	             "also write a transforms.json (per-camera intrinsics and lens distortion; dataset_type transforms)");
	app.add_option("--transforms_out", transforms_path, "where --transforms writes (default: SCENE/transforms.json)");
	app.add_flag("--no_llff", no_llff, "do not write poses_bounds.npy (with --transforms)");
	if (const int rc = nerf::tool::parse_command_line(app, argc, argv); rc >= 0) return rc;
	if (sparse_dir.empty()) sparse_dir = (std::filesystem::path(scene) / "sparse" / "0").string();
	if (out_path.empty()) out_path = (std::filesystem::path(scene) / "poses_bounds.npy").string();
	if (!transforms_path.empty()) transforms = true;
	if (transforms_path.empty()) transforms_path = (std::filesystem::path(scene) / "transforms.json").string();
	if (no_llff && !transforms) NERF_FAIL("command line: --no_llff leaves nothing to write without --transforms");

	const nerf::ColmapModel model = nerf::read_colmap_model(sparse_dir);
	std::printf("COLMAP model %s: %zu cameras, %zu images, %zu points\n", sparse_dir.c_str(), model.cameras.size(),
	            model.images.size(), model.points.size());
	if (transforms) {
		// file_path is relative to the json: SCENE/images seen from where the json goes.
		namespace fs = std::filesystem;
		const fs::path json_dir = fs::absolute(transforms_path).lexically_normal().parent_path();
		const std::string image_dir = (fs::absolute(scene) / "images").lexically_normal().lexically_relative(json_dir).string();
		const std::string text = nerf::colmap_to_transforms(model, image_dir);
		std::error_code ec;
		fs::create_directories(json_dir, ec);
		if (ec) NERF_FAIL(json_dir.string() << ": cannot create the folder for --transforms_out (" << ec.message() << ")");
		nerf::write_file_atomic(transforms_path, text);
		std::printf("wrote %s: %zu frames, images in %s\n", transforms_path.c_str(), model.images.size(), image_dir.c_str());
		if (no_llff) return 0;
	}
	if (model.cameras.size() > 1)
		std::printf("note: %zu cameras; LLFF uses the first one's H, W, focal for every image\n", model.cameras.size());
	const auto rows = nerf::colmap_to_llff(model);
	std::vector<double> flat;
	double near = INFINITY, far = 0;
	for (const auto& row : rows) {
		flat.insert(flat.end(), row.begin(), row.end());
		near = std::min(near, row[15]);
		far = std::max(far, row[16]);
	}
	nerf::save_npy(out_path, flat.data(), {rows.size(), 17});
	const auto& cam = model.cameras.front();
	std::printf("wrote %s: %zu x 17 (H %llu, W %llu, focal %.4f, %s), depth bounds %.4f .. %.4f\n", out_path.c_str(),
	            rows.size(), (unsigned long long)cam.height, (unsigned long long)cam.width, cam.params.at(0), cam.model.c_str(),
	            near, far);
	return 0;
}

} // namespace

int main(int argc, char** argv) { return nerf::tool::tool_main("colmap2llff", argc, argv, run); }
