// nerf_render: renders a checkpoint without any training code. The architecture and options come
// from the checkpoint's metadata (a --config file may override them); the dataset is read only when
// the poses or the ground truth come from it.
#include "nerf/backend.h"
#include "nerf/checkpoint.h"
#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/model.h"
#include "nerf/render.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace fs = std::filesystem;

namespace {

struct Options {
	std::string ckpt, config, path = "render", out, device, datadir;
	int H = 0, W = 0, render_factor = -1, chunk = 0, threads = -1;
	float focal = 0.0f;
	bool eval = false, video = false, no_depth = false, quiet = false;
};

/// A poses file: {"camera_angle_x" or "focal", "H", "W", optional "near"/"far", "frames": [{"transform_matrix"}]}.
struct PosesFile {
	int H = 0, W = 0;
	float focal = 0.0f;
	float near = NAN, far = NAN;
	std::vector<nerf::Pose> poses;
};

PosesFile read_poses_file(const std::string& path, const Options& opt) {
	std::ifstream in(path);
	if (!in) NERF_FAIL(path << ": cannot open the poses file");
	nlohmann::json j;
	try {
		j = nlohmann::json::parse(in);
	} catch (const nlohmann::json::exception& e) {
		NERF_FAIL(path << ": not valid JSON (" << e.what() << ")");
	}
	PosesFile p;
	p.H = opt.H > 0 ? opt.H : j.value("H", 0);
	p.W = opt.W > 0 ? opt.W : j.value("W", 0);
	if (p.H <= 0 || p.W <= 0) NERF_FAIL(path << ": needs \"H\" and \"W\" (or pass --H and --W)");
	if (opt.focal > 0)
		p.focal = opt.focal;
	else if (j.contains("focal"))
		p.focal = j["focal"].get<float>();
	else if (j.contains("camera_angle_x"))
		p.focal = (float)(0.5 * p.W / std::tan(0.5 * j["camera_angle_x"].get<double>()));
	else
		NERF_FAIL(path << ": needs \"camera_angle_x\" or \"focal\" (or pass --focal)");
	if (j.contains("near")) p.near = j["near"].get<float>();
	if (j.contains("far")) p.far = j["far"].get<float>();
	if (!j.contains("frames") || !j["frames"].is_array() || j["frames"].empty())
		NERF_FAIL(path << ": needs a non-empty \"frames\" array");
	for (size_t f = 0; f < j["frames"].size(); ++f) {
		const nlohmann::json& m = j["frames"][f].value("transform_matrix", nlohmann::json());
		if (!m.is_array() || m.size() < 3)
			NERF_FAIL(path << ": frame " << f << " needs a 4x4 \"transform_matrix\"");
		nerf::Pose pose{};
		for (int r = 0; r < 3; ++r) {
			if (!m[r].is_array() || m[r].size() != 4) NERF_FAIL(path << ": frame " << f << ": transform_matrix is not 4x4");
			for (int c = 0; c < 4; ++c) {
				pose[4 * r + c] = m[r][c].get<float>();
				if (!std::isfinite(pose[4 * r + c])) NERF_FAIL(path << ": frame " << f << ": transform_matrix is not finite");
			}
		}
		p.poses.push_back(pose);
	}
	return p;
}


nerf::Camera pinhole(int H, int W, float focal) {
	nerf::Camera cam;
	cam.H = H;
	cam.W = W;
	cam.fx = cam.fy = focal;
	cam.cx = 0.5f * W;
	cam.cy = 0.5f * H;
	return cam;
}

std::string step_text(long step) {
	char buf[32];
	std::snprintf(buf, sizeof(buf), "%06ld", step);
	return buf;
}

int run(const Options& opt) {
	nerf::Config cfg = nerf::config_from_checkpoint(opt.ckpt);
	if (!opt.config.empty()) {
		nerf::load_config_file(opt.config, cfg);
		cfg.config = opt.config;
	}
	// Where to run is this machine's choice, not the training machine's.
	cfg.device = opt.device.empty() ? "auto" : opt.device;
	cfg.threads = opt.threads >= 0 ? opt.threads : 0;
	if (!opt.datadir.empty()) cfg.datadir = opt.datadir;
	if (opt.render_factor >= 0) cfg.render_factor = opt.render_factor;
	if (opt.chunk > 0) cfg.chunk = opt.chunk;
	cfg.quiet = opt.quiet;
	const bool poses_from_file = opt.path != "render" && opt.path != "test" && opt.path != "val" && opt.path != "train";
	if (opt.eval && (poses_from_file || opt.path == "render"))
		NERF_FAIL("--eval needs ground truth: use --path test, val or train");
	const bool custom_size = opt.H > 0 || opt.W > 0 || opt.focal > 0;
	if (opt.eval && (custom_size || cfg.render_factor > 1))
		NERF_FAIL("--eval compares with the dataset's images, so it renders at their size (no --H/--W/--focal/--render_factor)");

	std::unique_ptr<nerf::Backend> backend = nerf::create_backend(cfg.device, cfg.threads);
	nerf::NerfModel model(*backend, cfg);
	const nerf::CheckpointInfo info = nerf::load_checkpoint(opt.ckpt, model);
	if (!cfg.quiet)
		std::printf("loaded %s (step %ld, %zu parameters) on %s\n", opt.ckpt.c_str(), info.global_step, model.n_params(),
		            backend->name().c_str());

	std::vector<nerf::Pose> poses;
	std::vector<nerf::Camera> cameras;  // each pose's, when the dataset's images have their own
	std::vector<const float*> targets;
	std::vector<int> indices;
	nerf::Camera cam;
	nerf::RenderSettings settings;
	nerf::Dataset data;
	std::string split = opt.path;
	if (poses_from_file) {
		const PosesFile pf = read_poses_file(opt.path, opt);
		poses = pf.poses;
		cam = pinhole(pf.H, pf.W, pf.focal);
		if (cfg.render_factor > 1) cam = pinhole(pf.H / cfg.render_factor, pf.W / cfg.render_factor, pf.focal / cfg.render_factor);
		// near/far and NDC as the run's dataset had them, unless the file says otherwise.
		nerf::Dataset bounds;
		if (cfg.dataset_type == "blender" || cfg.dataset_type == "builtin") {
			bounds.near = 2.0f;
			bounds.far = 6.0f;
		} else if (cfg.dataset_type == "llff" && !cfg.no_ndc) {
			bounds.near = 0.0f;
			bounds.far = 1.0f;
			bounds.ndc = true;
		} else if (std::isnan(pf.near) || std::isnan(pf.far)) {
			NERF_FAIL(opt.path << ": a " << cfg.dataset_type << " run needs \"near\" and \"far\" in the poses file");
		}
		if (!std::isnan(pf.near)) bounds.near = pf.near;
		if (!std::isnan(pf.far)) bounds.far = pf.far;
		cam.ndc = bounds.ndc;
		settings = nerf::RenderSettings::from_config(cfg, bounds, false);
		split = fs::path(opt.path).stem().string();
	} else {
		data = nerf::load_dataset(cfg);
		cam = nerf::dataset_camera(data, cfg.render_factor);
		if (custom_size) {
			const int W = opt.W > 0 ? opt.W : cam.W, H = opt.H > 0 ? opt.H : cam.H;
			const float focal = opt.focal > 0 ? opt.focal : cam.fx * (float)W / (float)cam.W;
			const bool ndc = cam.ndc;
			cam = pinhole(H, W, focal);
			cam.ndc = ndc;
		}
		settings = nerf::RenderSettings::from_config(cfg, data, false);
		if (opt.path == "render") {
			poses = data.render_poses;
			split = "path";
		} else {
			indices = nerf::split_views(data, opt.path);
			for (int v : indices) {
				poses.push_back(data.poses[v]);
				// A dataset view is rendered through its own camera (size, intrinsics, lens) unless the
				// command line asks for another.
				cameras.push_back(custom_size ? cam : nerf::image_camera(data, v, cfg.render_factor));
				if (opt.eval) targets.push_back(data.image(v));
			}
		}
	}
	if (poses.empty()) NERF_FAIL("no poses to render for --path " << opt.path);
	if (cameras.empty()) cameras.assign(poses.size(), cam);

	nerf::RenderViewsOptions options;
	options.out_dir = !opt.out.empty() ? opt.out
	                                   : (fs::path(opt.ckpt).parent_path() / ("render_" + split + "_" + step_text(info.global_step))).string();
	options.save_depth = !opt.no_depth;
	options.quiet = cfg.quiet;
	options.split = split;
	options.step = info.global_step;
	nerf::RenderedFrames frames;
	const nerf::EvalReport report = nerf::render_views(model, poses, cameras, settings, cfg.chunk, options, targets,
	                                                   indices, opt.video ? &frames : nullptr);
	if (opt.video && !frames.same_size) {
		std::printf("no video: the views have images of different sizes\n");
	} else if (opt.video) {
		nerf::write_video((fs::path(options.out_dir) / "video_rgb.mp4").string(), frames.rgb, frames.width, frames.height, 3);
		nerf::write_video((fs::path(options.out_dir) / "video_disp.mp4").string(), nerf::normalise_disparity(frames.disp),
		                  frames.width, frames.height, 1);
	}
	if (opt.eval) {
		const nlohmann::json summary = {{"checkpoint", opt.ckpt},         {"step", info.global_step},
		                                {"split", split},                 {"n_views", report.views.size()},
		                                {"width", report.width},          {"height", report.height},
		                                {"mean_psnr", report.mean_psnr},  {"mean_ssim", report.mean_ssim},
		                                {"mean_mse", report.mean_mse}};
		const std::string path = (fs::path(options.out_dir) / "eval_summary.json").string();
		std::ofstream out(path);
		out << summary.dump(2) << "\n";
		if (!out) NERF_FAIL(path << ": cannot write");
		std::printf("%s: %zu views, mean PSNR %.4f dB, mean SSIM %.4f -> %s\n", split.c_str(), report.views.size(),
		            report.mean_psnr, report.mean_ssim, path.c_str());
	} else if (!cfg.quiet) {
		std::printf("rendered %zu views to %s\n", poses.size(), options.out_dir.c_str());
	}
	return 0;
}

} // namespace

int main(int argc, char** argv) {
	Options opt;
	CLI::App app{"nerf_render: render a nerfcore checkpoint (no training code involved)"};
	app.add_option("--ckpt", opt.ckpt, "checkpoint file (.safetensors) written by nerf_train")->required();
	app.add_option("--config", opt.config, "config file whose options override the checkpoint's");
	app.add_option("--path", opt.path, "what to render: render (the render path), test, val, train, or a poses .json");
	app.add_option("--H", opt.H, "image height (default: the dataset's or the poses file's)");
	app.add_option("--W", opt.W, "image width");
	app.add_option("--focal", opt.focal, "focal length in pixels (default: scaled with W)");
	app.add_option("--render_factor", opt.render_factor, "downsample H, W and focal by this factor");
	app.add_option("--out", opt.out, "output folder (default: render_<path>_<step> beside the checkpoint)");
	app.add_flag("--eval", opt.eval, "compute PSNR and SSIM against the split's images; writes eval_summary.json");
	app.add_flag("--video", opt.video, "also write video_rgb.mp4 and video_disp.mp4 (PNG frames without ffmpeg)");
	app.add_flag("--no_depth", opt.no_depth, "do not write the depth and disparity EXRs");
	app.add_option("--device", opt.device, "cpu, cuda or auto (default: auto, whatever the checkpoint was trained on)");
	app.add_option("--datadir", opt.datadir, "dataset folder (default: the checkpoint's config)");
	app.add_option("--chunk", opt.chunk, "rays rendered at a time");
	app.add_option("--threads", opt.threads, "CPU threads (0: all cores)");
	app.add_flag("--quiet", opt.quiet, "print nothing but errors and the --eval summary");
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError& e) {
		const int rc = app.exit(e);
		return rc == 0 ? 0 : 1;
	}
	try {
		return run(opt);
	} catch (const std::exception& e) {
		std::fprintf(stderr, "nerf_render: error: %s\n", e.what());
		return 1;
	}
}
