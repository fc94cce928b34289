// nerf_scene: writes the built-in procedural scene as a Blender-format dataset
// (transforms_{train,val,test}.json and RGBA PNGs), ready for nerf_train --dataset_type blender, or with
// --capture as a hand-held capture with per-frame intrinsics and lens distortion (transforms.json and
// images/, nerfstudio's layout), ready for nerf_train --dataset_type transforms.
#include "nerf/common.h"
#include "nerf/scene.h"

#include "tool_main.h"

#include <chrono>
#include <cstdio>
#include <string>

namespace {

int run(int argc, char** argv) {
	CLI::App app{"Write nerfcore's built-in procedural scene as a Blender-format dataset (or, with --capture, as a "
	             "transforms.json capture through distorting lenses)"};
	nerf::tool::apply_command_line_rules(app);
	std::string out_dir;
	nerf::SceneOptions opts;
	nerf::CaptureOptions capture_opts;
	bool capture = false, pinhole = false;
	app.add_option("--out", out_dir, "output folder (created if missing)")->required();
	app.add_option("--size", opts.size, "image width and height in pixels")->capture_default_str();
	app.add_option("--n_train", opts.n_train, "training views")->capture_default_str();
	app.add_option("--n_val", opts.n_val, "validation views")->capture_default_str();
	app.add_option("--n_test", opts.n_test, "test views")->capture_default_str();
	app.add_option("--supersample", opts.supersample, "rays per pixel along each axis (at most 16)")->capture_default_str();
	app.add_option("--seed", opts.seed, "turns the camera layout about +Z; 0 = default layout")->capture_default_str();
	app.add_flag("--capture", capture, "write transforms.json + images/ with per-frame intrinsics and OPENCV lenses");
	app.add_option("--width", capture_opts.width, "--capture: width of most frames (every third is 3/4 as wide)")
	    ->capture_default_str();
	app.add_option("--height", capture_opts.height, "--capture: frame height")->capture_default_str();
	app.add_option("--n_frames", capture_opts.n_frames, "--capture: frames")->capture_default_str();
	app.add_flag("--pinhole", pinhole, "--capture: the same cameras without lens distortion (PINHOLE)");
	app.add_option("--radius", capture_opts.radius, "--capture: camera distance from the origin")->capture_default_str();
	app.add_option("--fov", capture_opts.fov_x_deg, "--capture: horizontal field of view in degrees")->capture_default_str();
	if (const int rc = nerf::tool::parse_command_line(app, argc, argv); rc >= 0) return rc;

	const auto start = std::chrono::steady_clock::now();
	if (capture) {
		capture_opts.distorted = !pinhole;
		capture_opts.supersample = opts.supersample;
		capture_opts.seed = opts.seed;
		nerf::write_builtin_capture(out_dir, capture_opts);
	} else {
		nerf::write_builtin_scene(out_dir, opts);
	}
	const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
	if (capture)
		std::printf("wrote %s/transforms.json: %d frames of %dx%d RGBA (%s, %dx%d rays per pixel) in %.2f s\n",
		            out_dir.c_str(), capture_opts.n_frames, capture_opts.width, capture_opts.height,
		            pinhole ? "PINHOLE" : "OPENCV", opts.supersample, opts.supersample, seconds);
	else
		std::printf("wrote %s: %d train, %d val, %d test views of %dx%d RGBA (%dx%d rays per pixel) in %.2f s\n",
		            out_dir.c_str(), opts.n_train, opts.n_val, opts.n_test, opts.size, opts.size, opts.supersample,
		            opts.supersample, seconds);
	return 0;
}

} // namespace

int main(int argc, char** argv) { return nerf::tool::tool_main("nerf_scene", argc, argv, run); }
