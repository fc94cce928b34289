/// @file render.h
/// @brief Rendering tools on top of NerfModel: a set of poses to a folder of images (with PSNR/SSIM
/// against ground truth when there is one), the render-path videos, and the reference's
/// render_only / i_video / i_testset outputs. Used by nerf_train and nerf_render alike, so both
/// report the same numbers for the same views.
#pragma once

#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/model.h"

#include <string>
#include <vector>

namespace nerf {

struct ViewMetrics {
	int index = 0;       ///< the view's index in the dataset (or in the pose list)
	std::string file;    ///< the PNG written for it
	double mse = 0.0, psnr = 0.0, ssim = 0.0;
};

struct EvalReport {
	std::string split;   ///< "test", "val", "path" or a poses file
	long step = 0;
	int width = 0, height = 0;
	std::vector<ViewMetrics> views;  ///< metrics only when ground truth was given
	double mean_mse = 0.0, mean_psnr = 0.0, mean_ssim = 0.0;
	bool has_metrics = false;
};

struct RenderViewsOptions {
	std::string out_dir;          ///< created when missing; "" writes nothing (metrics only)
	bool save_depth = true;       ///< also {i:03d}_depth.exr and {i:03d}_disp.exr (single-channel float)
	bool quiet = false;           ///< no per-view line on stdout
	std::string split = "path";
	long step = 0;
};

struct RenderedFrames {
	int width = 0, height = 0;  ///< of the first frame
	bool same_size = true;      ///< false when the views' cameras differ in size (no video can be made)
	std::vector<std::vector<float>> rgb;   ///< [n][H * W * 3]
	std::vector<std::vector<float>> disp;  ///< [n][H * W]
};

/// Renders every pose (no perturbation, no noise: pass test settings) to {out_dir}/{i:03d}.png, as
/// the reference's render_path. When `targets` is not empty (one [H, W, 3] image per pose, of the
/// camera's size) computes each view's MSE, PSNR and SSIM and writes {out_dir}/metrics.json:
/// {"split", "step", "width", "height", "mean_psnr", "mean_ssim", "mean_mse", "views": [{"index",
/// "file", "mse", "psnr", "ssim"}]}. `indices` (optional) names the views in the report.
EvalReport render_views(NerfModel& model, const std::vector<Pose>& poses, const Camera& cam,
                        const RenderSettings& settings, int chunk, const RenderViewsOptions& options,
                        const std::vector<const float*>& targets = {}, const std::vector<int>& indices = {},
                        RenderedFrames* frames = nullptr);
/// As above with each pose's own camera (cameras.size() == poses.size()), for datasets whose images have
/// their own intrinsics, lens and size; targets are then each of their camera's size.
EvalReport render_views(NerfModel& model, const std::vector<Pose>& poses, const std::vector<Camera>& cameras,
                        const RenderSettings& settings, int chunk, const RenderViewsOptions& options,
                        const std::vector<const float*>& targets = {}, const std::vector<int>& indices = {},
                        RenderedFrames* frames = nullptr);

/// The folder's metrics.json as a string (what render_views writes).
std::string eval_report_json(const EvalReport& report);

/// The ffmpeg executable found on PATH, or "" when there is none.
std::string find_ffmpeg();

/// Writes frames ([n][H * W * channels], values in [0,1], channels 1 or 3) as an H.264 mp4 through
/// ffmpeg (frames piped raw), or, when `ffmpeg` is "", as PNG frames {path without .mp4}/{i:03d}.png
/// with one warning per process on stderr. Returns what was written (the mp4 or the folder).
/// Throws nerf::Error naming the path when ffmpeg fails.
std::string write_video(const std::string& path, const std::vector<std::vector<float>>& frames, int width, int height,
                        int channels, int fps = 30, const std::string& ffmpeg = find_ffmpeg());

/// Disparity frames normalised as the reference's video: disp / max(disp) over all frames. Rays that
/// met no density (disp = 1e10 from 1 / max(1e-10, 0/0), NaN in the reference) are 0 and do not count
/// towards the maximum.
std::vector<std::vector<float>> normalise_disparity(const std::vector<std::vector<float>>& disp);

/// i_video: the dataset's render path as {run_dir}/{expname}_spiral_{step:06d}_rgb.mp4 and _disp.mp4.
/// Returns what was written for the rgb video ("" when the dataset has no render path).
std::string render_path_videos(NerfModel& model, const Dataset& data, const Config& cfg, const std::string& run_dir,
                        const std::string& expname, long step);

/// i_testset: the test split (val when test is empty) to {run_dir}/testset_{step:06d}/ with metrics.json.
EvalReport render_testset(NerfModel& model, const Dataset& data, const Config& cfg, const std::string& run_dir,
                          long step);

/// render_only: the render path (or the test split with render_test: val when there is no test split)
/// at render_factor to {run_dir}/renderonly_{test|val|path}_{step:06d}/ as the reference, plus video_rgb.mp4
/// and video_disp.mp4 there (nerf_render's names; the reference writes video.mp4). Returns the folder.
std::string render_only(NerfModel& model, const Dataset& data, const Config& cfg, const std::string& run_dir, long step);

/// The views of a split by name: "test" (val when test is empty), "val" (test when val is empty), "train".
std::vector<int> split_views(const Dataset& data, const std::string& split);
/// The split split_views(data, split) renders, to label what was rendered: "val" for "test" on a
/// dataset without test views, and the other way round. nerf::Error for a name that is no split.
std::string rendered_split(const Dataset& data, const std::string& split);

} // namespace nerf
