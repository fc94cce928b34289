// nerf_scene: writes the built-in procedural scene as a Blender-format dataset
// (transforms_{train,val,test}.json and RGBA PNGs), ready for nerf_train --dataset_type blender.
#include "nerf/common.h"
#include "nerf/scene.h"

#include "tool_main.h"

#include <chrono>
#include <cstdio>
#include <string>

namespace {

int run(int argc, char** argv) {
	CLI::App app{"Write nerfcore's built-in procedural scene as a Blender-format dataset"};
	nerf::tool::apply_command_line_rules(app);
	std::string out_dir;
	nerf::SceneOptions opts;
	app.add_option("--out", out_dir, "output folder (created if missing)")->required();
	app.add_option("--size", opts.size, "image width and height in pixels")->capture_default_str();
	app.add_option("--n_train", opts.n_train, "training views")->capture_default_str();
	app.add_option("--n_val", opts.n_val, "validation views")->capture_default_str();
	app.add_option("--n_test", opts.n_test, "test views")->capture_default_str();
	app.add_option("--supersample", opts.supersample, "rays per pixel along each axis (at most 16)")->capture_default_str();
	app.add_option("--seed", opts.seed, "turns the camera layout about +Z; 0 = default layout")->capture_default_str();
	if (const int rc = nerf::tool::parse_command_line(app, argc, argv); rc >= 0) return rc;

	const auto start = std::chrono::steady_clock::now();
	nerf::write_builtin_scene(out_dir, opts);
	const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
	std::printf("wrote %s: %d train, %d val, %d test views of %dx%d RGBA (%dx%d rays per pixel) in %.2f s\n",
	            out_dir.c_str(), opts.n_train, opts.n_val, opts.n_test, opts.size, opts.size, opts.supersample,
	            opts.supersample, seconds);
	return 0;
}

} // namespace

int main(int argc, char** argv) { return nerf::tool::tool_main("nerf_scene", argc, argv, run); }
