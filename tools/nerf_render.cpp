// nerf_render: renders a checkpoint without any training code. The architecture and options come
// from the checkpoint's metadata (a --config file may override them); the dataset is read only when
// the poses or the ground truth come from it.
#include "nerf/backend.h"
#include "nerf/checkpoint.h"
#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/io/output_file.h"
#include "nerf/model.h"
#include "nerf/render.h"

#include "tool_main.h"

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
	int H = 0, W = 0, render_factor = 0, chunk = 0, threads = 0;
	float focal = 0.0f;
	bool eval = false, video = false, no_depth = false, quiet = false;
	bool render_factor_given = false, chunk_given = false, threads_given = false;
};

/// A poses file: {"camera_angle_x" or "focal", "H", "W", optional "near"/"far", "frames": [{"transform_matrix"}]}.
struct PosesFile {
	int H = 0, W = 0;
	float focal = 0.0f;
	float near = NAN, far = NAN;
	std::vector<nerf::Pose> poses;
};

// A number of the poses file; `fallback` when absent. Anything but a finite number names the field.
double number_field(const nlohmann::json& j, const char* key, const std::string& path, double fallback) {
	if (!j.contains(key)) return fallback;
	const nlohmann::json& v = j[key];
	if (!v.is_number()) NERF_FAIL(path << ": \"" << key << "\" must be a number, got " << v.dump().substr(0, 40));
	const double x = v.get<double>();
	if (!std::isfinite(x)) NERF_FAIL(path << ": \"" << key << "\" must be finite, got " << x);
	return x;
}

int size_field(const nlohmann::json& j, const char* key, const std::string& path) {
	const double v = number_field(j, key, path, 0.0);
	if (j.contains(key) && (v != std::floor(v) || v < 1 || v > 1 << 20))
		NERF_FAIL(path << ": \"" << key << "\" must be a whole number of pixels in [1, 2^20], got " << v);
	return (int)v;
}

PosesFile read_poses_file(const std::string& path, const Options& opt) {
	std::ifstream in(path);
	if (!in) NERF_FAIL(path << ": cannot open the poses file");
	nlohmann::json j;
	try {
		j = nlohmann::json::parse(in);
	} catch (const nlohmann::json::exception& e) {
		NERF_FAIL(path << ": not valid JSON (" << e.what() << ")");
	}
	if (!j.is_object()) NERF_FAIL(path << ": a poses file is a JSON object with \"frames\"");
	PosesFile p;
	p.H = opt.H > 0 ? opt.H : size_field(j, "H", path);
	p.W = opt.W > 0 ? opt.W : size_field(j, "W", path);
	if (p.H <= 0 || p.W <= 0) NERF_FAIL(path << ": needs \"H\" and \"W\" (or pass --H and --W)");
	if (opt.focal > 0) {
		p.focal = opt.focal;
	} else if (j.contains("focal")) {
		p.focal = (float)number_field(j, "focal", path, 0.0);
		if (!(p.focal > 0.0f)) NERF_FAIL(path << ": \"focal\" must be > 0 pixels, got " << p.focal);
	} else if (j.contains("camera_angle_x")) {
		// At 0 every ray is the optical axis, at pi the focal length is 0: both render one colour.
		const double angle = number_field(j, "camera_angle_x", path, 0.0);
		if (!(angle > 0.0 && angle < M_PI))
			NERF_FAIL(path << ": \"camera_angle_x\" must be an angle in (0, pi) radians, got " << angle);
		p.focal = (float)(0.5 * p.W / std::tan(0.5 * angle));
	} else {
		NERF_FAIL(path << ": needs \"camera_angle_x\" or \"focal\" (or pass --focal)");
	}
	p.near = (float)number_field(j, "near", path, NAN);
	p.far = (float)number_field(j, "far", path, NAN);
	if (!std::isnan(p.near) && p.near < 0.0f) NERF_FAIL(path << ": \"near\" must be >= 0, got " << p.near);
	if (!std::isnan(p.near) && !std::isnan(p.far) && !(p.far > p.near))
		NERF_FAIL(path << ": \"far\" (" << p.far << ") must be greater than \"near\" (" << p.near << ")");
	if (!j.contains("frames") || !j["frames"].is_array() || j["frames"].empty())
		NERF_FAIL(path << ": needs a non-empty \"frames\" array");
	for (size_t f = 0; f < j["frames"].size(); ++f) {
		const nlohmann::json& frame = j["frames"][f];
		const nlohmann::json& m = frame.is_object() ? frame.value("transform_matrix", nlohmann::json()) : nlohmann::json();
		if (!m.is_array() || m.size() < 3)
			NERF_FAIL(path << ": frame " << f << " needs a 4x4 \"transform_matrix\"");
		nerf::Pose pose{};
		for (int r = 0; r < 3; ++r) {
			if (!m[r].is_array() || m[r].size() != 4) NERF_FAIL(path << ": frame " << f << ": transform_matrix is not 4x4");
			for (int c = 0; c < 4; ++c) {
				if (!m[r][c].is_number()) NERF_FAIL(path << ": frame " << f << ": transform_matrix has a non-number");
				pose[4 * r + c] = m[r][c].get<float>();
				if (!std::isfinite(pose[4 * r + c])) NERF_FAIL(path << ": frame " << f << ": transform_matrix is not finite");
			}
		}
		p.poses.push_back(pose);
	}
	return p;
}

// The reference's camera for a focal length: square pixels, principal point at the centre.
nerf::Camera pinhole(int H, int W, float focal) {
	return nerf::pinhole_camera(H, W, {focal, 0.0f, 0.5f * W, 0.0f, focal, 0.5f * H, 0.0f, 0.0f, 1.0f}, false);
}

std::string step_text(long step) {
	char buf[32];
	std::snprintf(buf, sizeof(buf), "%06ld", step);
	return buf;
}

int render(Options opt) {
	opt.ckpt = nerf::tool::checkpoint_file(opt.ckpt, opt.quiet, "rendering");
	nerf::Config cfg = nerf::config_from_checkpoint(opt.ckpt);
	if (!opt.config.empty()) {
		nerf::load_config_file(opt.config, cfg);
		cfg.config = opt.config;
	}
	// Where to run is this machine's choice, not the training machine's.
	cfg.device = opt.device.empty() ? "auto" : opt.device;
	cfg.threads = opt.threads_given ? opt.threads : 0;
	if (!opt.datadir.empty()) cfg.datadir = opt.datadir;
	if (opt.render_factor_given) cfg.render_factor = opt.render_factor;
	if (opt.chunk_given) cfg.chunk = opt.chunk;
	cfg.quiet = opt.quiet;
	nerf::validate_config(cfg, "command line");
	const bool poses_from_file = opt.path != "render" && opt.path != "test" && opt.path != "val" && opt.path != "train";
	std::error_code ec;
	if (poses_from_file && !fs::exists(opt.path, ec))
		NERF_FAIL("--path " << opt.path << ": not one of render, test, val, train, and no poses file (.json) of that name");
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
		try {
			cam = nerf::scaled_camera(cam, cfg.render_factor);
		} catch (const nerf::Error& e) {
			NERF_FAIL(opt.path << ": " << e.what());
		}
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
			// Labelled by what is rendered: a scene without a test split renders its val views (and back).
			split = nerf::rendered_split(data, opt.path);
			if (split != opt.path && !cfg.quiet)
				std::printf("note: %s has no %s views; rendering its %s views, labelled %s\n", cfg.datadir.c_str(),
				            opt.path.c_str(), split.c_str(), split.c_str());
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
		nerf::write_file_atomic(path, summary.dump(2) + "\n");
		std::printf("%s: %zu views, mean PSNR %.4f dB, mean SSIM %.4f -> %s\n", split.c_str(), report.views.size(),
		            report.mean_psnr, report.mean_ssim, path.c_str());
	} else if (!cfg.quiet) {
		std::printf("rendered %zu views to %s\n", poses.size(), options.out_dir.c_str());
	}
	return 0;
}

int run(int argc, char** argv) {
	Options opt;
	CLI::App app{"nerf_render: render a nerfcore checkpoint (no training code involved)"};
	nerf::tool::apply_command_line_rules(app);
	app.add_option("--ckpt", opt.ckpt, "checkpoint file (.safetensors) written by nerf_train, or a run folder (its newest)")
	    ->required();
	app.add_option("--config", opt.config, "config file whose options override the checkpoint's");
	app.add_option("--path", opt.path, "what to render: render (the render path), test, val, train, or a poses .json")
	    ->capture_default_str();
	CLI::Option* H = app.add_option("--H", opt.H, "image height (default: the dataset's or the poses file's)");
	CLI::Option* W = app.add_option("--W", opt.W, "image width");
	CLI::Option* focal = app.add_option("--focal", opt.focal, "focal length in pixels (default: scaled with W)");
	CLI::Option* render_factor =
	    app.add_option("--render_factor", opt.render_factor, "downsample H, W and focal by this factor (0: full size; "
	                   "default: the run's render_factor, 0 unless it set one)")
	        ->default_str("the run's");
	app.add_option("--out", opt.out, "output folder (default: render_<path>_<step> beside the checkpoint)");
	app.add_flag("--eval", opt.eval, "compute PSNR and SSIM against the split's images; writes eval_summary.json");
	app.add_flag("--video", opt.video, "also write video_rgb.mp4 and video_disp.mp4 (PNG frames without ffmpeg)");
	app.add_flag("--no_depth", opt.no_depth, "do not write the depth and disparity EXRs");
	app.add_option("--device", opt.device, "cpu, cuda or auto (default: auto, whatever the checkpoint was trained on)");
	app.add_option("--datadir", opt.datadir, "dataset folder (default: the checkpoint's config)");
	CLI::Option* chunk = app.add_option("--chunk", opt.chunk, "rays rendered at a time");
	CLI::Option* threads = app.add_option("--threads", opt.threads, "CPU threads (0: all cores)");
	app.add_flag("--quiet", opt.quiet, "print nothing but errors and the --eval summary");
	if (const int rc = nerf::tool::parse_command_line(app, argc, argv); rc >= 0) return rc;
	// A value that would be ignored or silently misread is an error, as nerf_train's options are.
	if (H->count() && opt.H < 1) NERF_FAIL("command line: --H must be >= 1, got " << opt.H);
	if (W->count() && opt.W < 1) NERF_FAIL("command line: --W must be >= 1, got " << opt.W);
	if (focal->count() && !(std::isfinite(opt.focal) && opt.focal > 0.0f))
		NERF_FAIL("command line: --focal must be a positive number of pixels, got " << opt.focal);
	opt.render_factor_given = render_factor->count() > 0;
	opt.chunk_given = chunk->count() > 0;
	opt.threads_given = threads->count() > 0;
	return render(opt);
}

} // namespace

int main(int argc, char** argv) { return nerf::tool::tool_main("nerf_render", argc, argv, run); }
