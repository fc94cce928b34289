// Rendering outputs: folders of PNG/EXR views with metrics, and videos piped to ffmpeg.
#include "nerf/render.h"

#include "nerf/common.h"
#include "nerf/io/image.h"
#include "nerf/io/output_file.h"
#include "nerf/metrics.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <unistd.h>

namespace nerf {
namespace fs = std::filesystem;

namespace {

std::string numbered(const char* format, long value) {
	char buf[64];
	std::snprintf(buf, sizeof(buf), format, value);
	return buf;
}

void make_dirs(const std::string& dir) {
	std::error_code ec;
	fs::create_directories(dir, ec);
	if (ec) NERF_FAIL(dir << ": cannot create the folder (" << ec.message() << ")");
}

/// Single-quoted for /bin/sh.
std::string shell_quote(const std::string& s) {
	std::string q = "'";
	for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
	return q + "'";
}

std::atomic<bool> g_warned_no_ffmpeg{false};

} // namespace

std::string rendered_split(const Dataset& data, const std::string& split) {
	if (split == "test") return data.i_test.empty() && !data.i_val.empty() ? "val" : "test";
	if (split == "val") return data.i_val.empty() && !data.i_test.empty() ? "test" : "val";
	if (split == "train") return split;
	NERF_FAIL("unknown split '" << split << "' (expected test, val or train)");
}

std::vector<int> split_views(const Dataset& data, const std::string& split) {
	const std::string used = rendered_split(data, split);
	return used == "test" ? data.i_test : used == "val" ? data.i_val : data.i_train;
}

std::string eval_report_json(const EvalReport& report) {
	nlohmann::json views = nlohmann::json::array();
	for (const ViewMetrics& v : report.views)
		views.push_back({{"index", v.index}, {"file", v.file}, {"mse", v.mse}, {"psnr", v.psnr}, {"ssim", v.ssim}});
	nlohmann::json j = {{"split", report.split},   {"step", report.step},         {"width", report.width},
	                    {"height", report.height}, {"mean_psnr", report.mean_psnr}, {"mean_ssim", report.mean_ssim},
	                    {"mean_mse", report.mean_mse}, {"views", views}};
	return j.dump(2) + "\n";
}

EvalReport render_views(NerfModel& model, const std::vector<Pose>& poses, const Camera& cam,
                        const RenderSettings& settings, int chunk, const RenderViewsOptions& options,
                        const std::vector<const float*>& targets, const std::vector<int>& indices,
                        RenderedFrames* frames) {
	return render_views(model, poses, std::vector<Camera>(poses.size(), cam), settings, chunk, options, targets, indices,
	                    frames);
}

EvalReport render_views(NerfModel& model, const std::vector<Pose>& poses, const std::vector<Camera>& cameras,
                        const RenderSettings& settings, int chunk, const RenderViewsOptions& options,
                        const std::vector<const float*>& targets, const std::vector<int>& indices,
                        RenderedFrames* frames) {
	NERF_CHECK(cameras.size() == poses.size());
	NERF_CHECK(targets.empty() || targets.size() == poses.size());
	NERF_CHECK(indices.empty() || indices.size() == poses.size());
	// Checked before the first view, so that nothing is written for a camera that cannot render.
	for (size_t i = 0; i < poses.size(); ++i)
		check_render_inputs(cameras[i], settings, {poses[i]}, "render " + options.split + " view " + std::to_string(i));
	if (!options.out_dir.empty()) make_dirs(options.out_dir);
	EvalReport report;
	report.split = options.split;
	report.step = options.step;
	if (!cameras.empty()) {
		report.width = cameras[0].W;
		report.height = cameras[0].H;
	}
	report.has_metrics = !targets.empty();
	if (frames) {
		frames->width = report.width;
		frames->height = report.height;
		frames->same_size = true;
	}
	for (size_t i = 0; i < poses.size(); ++i) {
		const Camera& cam = cameras[i];
		const size_t n_pixels = (size_t)cam.H * cam.W;
		if (frames && (cam.W != frames->width || cam.H != frames->height)) frames->same_size = false;
		const RenderedRays out = model.render_image(poses[i], cam, settings, chunk);
		ViewMetrics view;
		view.index = indices.empty() ? (int)i : indices[i];
		if (!options.out_dir.empty()) {
			const std::string stem = (fs::path(options.out_dir) / numbered("%03ld", (long)i)).string();
			view.file = fs::path(stem + ".png").filename().string();
			save_png(stem + ".png", out.rgb.data(), cam.W, cam.H, 3);
			if (options.save_depth) {
				save_exr(stem + "_depth.exr", out.depth.data(), cam.W, cam.H);
				save_exr(stem + "_disp.exr", out.disp.data(), cam.W, cam.H);
			}
		}
		if (report.has_metrics) {
			view.mse = mean_squared_error(out.rgb.data(), targets[i], 3 * n_pixels);
			view.psnr = psnr_from_mse(view.mse);
			view.ssim = ssim(out.rgb.data(), targets[i], cam.H, cam.W, 3);
			report.mean_mse += view.mse / (double)poses.size();
			report.mean_psnr += view.psnr / (double)poses.size();
			report.mean_ssim += view.ssim / (double)poses.size();
		}
		if (!options.quiet) {
			std::printf("[RENDER] %s %zu/%zu", options.split.c_str(), i + 1, poses.size());
			if (report.has_metrics) std::printf("  PSNR %.3f  SSIM %.4f", view.psnr, view.ssim);
			std::printf("\n");
			std::fflush(stdout);
		}
		report.views.push_back(view);
		if (frames) {
			frames->rgb.push_back(out.rgb);
			frames->disp.push_back(out.disp);
		}
	}
	if (report.has_metrics && !options.out_dir.empty())
		write_file_atomic((fs::path(options.out_dir) / "metrics.json").string(), eval_report_json(report));
	return report;
}

std::string find_ffmpeg() {
	const char* path_env = std::getenv("PATH");
	if (!path_env) return "";
	const std::string path = path_env;
	size_t begin = 0;
	while (begin <= path.size()) {
		const size_t end = std::min(path.find(':', begin), path.size());
		const std::string dir = path.substr(begin, end - begin);
		if (!dir.empty()) {
			const std::string candidate = (fs::path(dir) / "ffmpeg").string();
			if (::access(candidate.c_str(), X_OK) == 0) return candidate;
		}
		begin = end + 1;
	}
	return "";
}

namespace {
// A ray that met no density has depth = acc = 0, and disp = 1 / max(1e-10, 0/0) = 1e10. In the
// reference 0/0 is NaN, torch.max propagates it, and to8b turns it into 0 (black); here such rays are
// also black, and they stay out of the maximum, which would otherwise turn every other pixel black.
bool is_empty_ray_disparity(float d) { return !std::isfinite(d) || d >= 1e9f; }
} // namespace

std::vector<std::vector<float>> normalise_disparity(const std::vector<std::vector<float>>& disp) {
	float max_disp = 0.0f;
	for (const auto& frame : disp)
		for (float d : frame)
			if (!is_empty_ray_disparity(d)) max_disp = std::max(max_disp, d);
	std::vector<std::vector<float>> out = disp;
	for (auto& frame : out)
		for (float& d : frame) d = is_empty_ray_disparity(d) || max_disp <= 0.0f ? 0.0f : d / max_disp;
	return out;
}

std::string write_video(const std::string& path, const std::vector<std::vector<float>>& frames, int width, int height,
                        int channels, int fps, const std::string& ffmpeg) {
	NERF_CHECK(channels == 1 || channels == 3);
	NERF_CHECK(width > 0 && height > 0);
	const size_t frame_floats = (size_t)width * height * channels;
	for (const auto& f : frames) NERF_CHECK(f.size() == frame_floats);

	if (ffmpeg.empty()) {
		std::string dir = path;
		if (fs::path(dir).extension() == ".mp4") dir = dir.substr(0, dir.size() - 4);
		if (!g_warned_no_ffmpeg.exchange(true))
			std::fprintf(stderr, "warning: ffmpeg is not on PATH; videos are written as PNG frames (first: %s/)\n",
			             dir.c_str());
		make_dirs(dir);
		for (size_t i = 0; i < frames.size(); ++i)
			save_png((fs::path(dir) / numbered("%03ld.png", (long)i)).string(), frames[i].data(), width, height, channels);
		return dir;
	}

	// ffmpeg writes a temporary file (so -f mp4: its name does not say the format), which replaces
	// `path` only once ffmpeg has succeeded: a reader never sees half a video.
	AtomicFile video(path);
	// yuv420p (what every player reads) needs even sides: pad by one pixel when odd.
	const std::string command = shell_quote(ffmpeg) + " -y -loglevel error -f rawvideo -pix_fmt " +
	                            (channels == 3 ? "rgb24" : "gray") + " -s " + std::to_string(width) + "x" +
	                            std::to_string(height) + " -framerate " + std::to_string(fps) +
	                            " -i - -vf 'pad=ceil(iw/2)*2:ceil(ih/2)*2' -c:v libx264 -crf 18 -pix_fmt yuv420p -f mp4 " +
	                            shell_quote(video.temporary_path());
	// A crashed ffmpeg must not kill us with SIGPIPE: the write fails instead and is reported.
	struct sigaction ignore{}, previous{};
	ignore.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ignore, &previous);
	FILE* pipe = ::popen(command.c_str(), "w");
	if (!pipe) {
		sigaction(SIGPIPE, &previous, nullptr);
		NERF_FAIL(path << ": cannot start ffmpeg (" << std::strerror(errno) << ")");
	}
	std::vector<unsigned char> bytes(frame_floats);
	bool write_ok = true;
	for (const auto& f : frames) {
		for (size_t i = 0; i < frame_floats; ++i) {
			const float v = std::isfinite(f[i]) ? std::min(1.0f, std::max(0.0f, f[i])) : 0.0f;
			bytes[i] = (unsigned char)(255.0f * v);  // the reference's to8b: (255 * clip(x, 0, 1)).astype(uint8)
		}
		if (std::fwrite(bytes.data(), 1, bytes.size(), pipe) != bytes.size()) {
			write_ok = false;
			break;
		}
	}
	const int status = ::pclose(pipe);
	sigaction(SIGPIPE, &previous, nullptr);
	if (!write_ok || status != 0)
		NERF_FAIL(path << ": ffmpeg failed (exit status " << status << ") writing the video");
	video.commit();
	return path;
}

std::string render_path_videos(NerfModel& model, const Dataset& data, const Config& cfg, const std::string& run_dir,
                               const std::string& expname, long step) {
	if (data.render_poses.empty()) return "";
	const Camera cam = dataset_camera(data, cfg.render_factor);
	RenderViewsOptions options;
	options.quiet = cfg.quiet;
	options.split = "path";
	options.step = step;
	RenderedFrames frames;
	render_views(model, data.render_poses, cam, RenderSettings::from_config(cfg, data, false), cfg.chunk, options, {}, {},
	             &frames);
	const std::string base = (fs::path(run_dir) / (expname + numbered("_spiral_%06ld_", step))).string();
	const std::string rgb = write_video(base + "rgb.mp4", frames.rgb, frames.width, frames.height, 3);
	write_video(base + "disp.mp4", normalise_disparity(frames.disp), frames.width, frames.height, 1);
	if (!cfg.quiet) std::printf("Done, saving videos %s, %s\n", rgb.c_str(), (base + "disp").c_str());
	return rgb;
}

EvalReport render_testset(NerfModel& model, const Dataset& data, const Config& cfg, const std::string& run_dir,
                          long step) {
	const std::string split = rendered_split(data, "test");
	const std::vector<int> views = split_views(data, split);
	if (views.empty()) NERF_FAIL("the dataset has neither test nor val views to render for the test set (i_testset)");
	std::vector<Pose> poses;
	std::vector<Camera> cameras;
	std::vector<const float*> targets;
	for (int v : views) {
		poses.push_back(data.poses[v]);
		cameras.push_back(image_camera(data, v));
		targets.push_back(data.image(v));
	}
	RenderViewsOptions options;
	options.out_dir = (fs::path(run_dir) / numbered("testset_%06ld", step)).string();
	options.quiet = cfg.quiet;
	options.split = split;
	options.step = step;
	// Metrics need the ground truth's resolution, so the test set ignores render_factor.
	EvalReport report = render_views(model, poses, cameras, RenderSettings::from_config(cfg, data, false), cfg.chunk,
	                                 options, targets, views);
	if (!cfg.quiet)
		std::printf("Saved test set %s: mean PSNR %.3f, SSIM %.4f\n", options.out_dir.c_str(), report.mean_psnr,
		            report.mean_ssim);
	return report;
}

std::string render_only(NerfModel& model, const Dataset& data, const Config& cfg, const std::string& run_dir, long step) {
	RenderViewsOptions options;
	options.quiet = cfg.quiet;
	options.step = step;
	std::vector<Pose> poses;
	std::vector<Camera> cameras;
	std::vector<const float*> targets;
	std::vector<int> indices;
	if (cfg.render_test) {
		options.split = rendered_split(data, "test");
		indices = split_views(data, options.split);
		for (int v : indices) {
			poses.push_back(data.poses[v]);
			cameras.push_back(image_camera(data, v, cfg.render_factor));
			if (cfg.render_factor <= 1) targets.push_back(data.image(v));
		}
	} else {
		options.split = "path";
		poses = data.render_poses;
		cameras.assign(poses.size(), dataset_camera(data, cfg.render_factor));
	}
	if (poses.empty()) NERF_FAIL("render_only: the dataset has no " << options.split << " poses to render");
	// Named by what is rendered: a scene without a test split renders (and names) its val views.
	options.out_dir = (fs::path(run_dir) / ("renderonly_" + options.split + numbered("_%06ld", step))).string();
	RenderedFrames frames;
	render_views(model, poses, cameras, RenderSettings::from_config(cfg, data, false), cfg.chunk, options, targets,
	             indices, &frames);
	// The names nerf_render --video writes (the reference writes the rgb one as video.mp4).
	if (frames.same_size) {
		write_video((fs::path(options.out_dir) / "video_rgb.mp4").string(), frames.rgb, frames.width, frames.height, 3);
		write_video((fs::path(options.out_dir) / "video_disp.mp4").string(), normalise_disparity(frames.disp), frames.width,
		            frames.height, 1);
	} else if (!cfg.quiet) {
		std::printf("no video: the %s views have images of different sizes\n", options.split.c_str());
	}
	if (!cfg.quiet) std::printf("Done rendering %s\n", options.out_dir.c_str());
	return options.out_dir;
}

} // namespace nerf
