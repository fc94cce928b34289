// render_one_view: libnerfcore's public API in one page. Loads a checkpoint written by nerf_train,
// builds the model its metadata describes, renders one view of a Blender-style scene from a camera
// built by hand (no dataset needed), and writes a PNG.
//
//   render_one_view CHECKPOINT OUT.png [SIZE] [THETA_DEG]
#include <nerf/backend.h>
#include <nerf/checkpoint.h>
#include <nerf/dataset.h>
#include <nerf/io/image.h>
#include <nerf/model.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

int main(int argc, char** argv) {
	if (argc < 3) {
		std::fprintf(stderr, "usage: %s CHECKPOINT OUT.png [SIZE=100] [THETA_DEG=30]\n", argv[0]);
		return 1;
	}
	try {
		const std::string checkpoint = argv[1], out_png = argv[2];
		const int size = argc > 3 ? std::atoi(argv[3]) : 100;
		const float theta = argc > 4 ? (float)std::atof(argv[4]) : 30.0f;

		// The architecture (and every other option) comes from the checkpoint.
		nerf::Config cfg = nerf::config_from_checkpoint(checkpoint);
		std::unique_ptr<nerf::Backend> backend = nerf::create_cpu_backend();
		nerf::NerfModel model(*backend, cfg);
		const nerf::CheckpointInfo info = nerf::load_checkpoint(checkpoint, model);

		// A pinhole camera with the lego scene's field of view, and a pose on the reference's
		// spherical render path (phi -30 degrees, radius 4).
		const double camera_angle_x = 0.6911112070083618;
		nerf::Camera cam;
		cam.H = cam.W = size;
		cam.fx = cam.fy = (float)(0.5 * size / std::tan(0.5 * camera_angle_x));
		cam.cx = cam.cy = 0.5f * size;
		const nerf::Pose pose = nerf::blender_render_path(360)[(int)std::lround(theta + 180.0f) % 360];

		nerf::RenderSettings settings;  // Blender's near 2, far 6; no perturbation when rendering
		settings.N_samples = cfg.N_samples;
		settings.N_importance = cfg.N_importance;
		settings.perturb = false;
		settings.white_bkgd = cfg.white_bkgd;
		settings.lindisp = cfg.lindisp;

		const nerf::RenderedRays out = model.render_image(pose, cam, settings, cfg.chunk);
		nerf::save_png(out_png, out.rgb.data(), cam.W, cam.H, 3);
		std::printf("rendered %dx%d from step %ld of %s -> %s\n", cam.W, cam.H, info.global_step, checkpoint.c_str(),
		            out_png.c_str());
		return 0;
	} catch (const std::exception& e) {
		std::fprintf(stderr, "render_one_view: error: %s\n", e.what());
		return 1;
	}
}
