/// @file dataset.h
/// @brief A loaded scene: what every loader produces and everything downstream consumes.
#pragma once

#include "nerf/config.h"
#include "nerf/io/image.h"
#include "nerf/math/rays.h"

#include <array>
#include <string>
#include <vector>

namespace nerf {

using Pose = std::array<float, 12>;  ///< camera-to-world, 3x4 row-major (OpenGL camera axes, as the reference)

/// The reference's loaders give every image one camera; transforms.json scenes give each image its own
/// (size, intrinsics, lens). `cameras` holds each image's, and H, W, focal and K are the first image's.
struct Dataset {
	int H = 0, W = 0;
	float focal = 0.0f;
	std::array<float, 9> K{};         ///< 3x3 row-major: [[focal,0,W/2],[0,focal,H/2],[0,0,1]] as the reference
	float near = 0.0f, far = 1.0f;
	bool ndc = false;                 ///< rays are warped to NDC (forward-facing LLFF without no_ndc)
	std::vector<float> images;        ///< the images one after another, each [H_i, W_i, 3], linear RGB in [0,1]
	                                  ///< (RGBA composited when white_bkgd); image i starts at pixel cameras[i].first_pixel
	std::vector<float> alpha;         ///< [pixels] the alpha of RGBA images, as images; kept only for training on
	                                  ///< random backgrounds (model = ngp, Blender-format scenes), else empty
	std::vector<Pose> poses;          ///< [n_images]
	std::vector<Camera> cameras;      ///< [n_images] each image's camera (a CameraSet's table)
	std::vector<std::string> image_paths;  ///< [n_images] the file behind each pose
	std::vector<std::array<float, 2>> bounds;  ///< [n_images] near/far after rescale (LLFF only, else empty)
	std::vector<Pose> render_poses;   ///< the render path
	std::vector<int> i_train, i_val, i_test;
	/// How the loader sized the images against their files, for the training log ("" when they are
	/// used as stored), e.g. "half_res: the files are 400x400; --half_res False trains at full size".
	std::string resize_note;

	size_t n_images() const { return poses.size(); }
	const float* image(size_t i) const { return images.data() + 3 * (size_t)cameras.at(i).first_pixel; }
};

/// n_images copies of one camera, image i starting at pixel i * H * W (the reference's loaders).
std::vector<Camera> shared_camera_table(const Camera& cam, size_t n_images);

/// nerfstudio's camera_model name of a lens model: PINHOLE, OPENCV, OPENCV_FISHEYE.
const char* lens_model_name(LensModel model);

/// The reference's camera for H, W and K: pixel corners, no lens distortion.
Camera pinhole_camera(int H, int W, const std::array<float, 9>& K, bool ndc);

/// Loads the dataset named by cfg.dataset_type from cfg.datadir with the reference's options
/// (half_res, white_bkgd, testskip, factor, spherify, llffhold, no_ndc, ...). Sets near/far and ndc as
/// run_nerf.py's train() does. Throws nerf::Error naming the file and the problem on bad input.
Dataset load_dataset(const Config& cfg);

/// Why a camera-to-world pose cannot make rays, or "" when it can: a non-finite entry, or a rotation
/// part whose axes are zero or (nearly) coplanar.
std::string pose_problem(const Pose& pose);

/// Why a camera cannot make rays, or "" when it can: a side below 1 pixel, a focal length that is not
/// positive and finite, or a principal point that is not finite.
std::string camera_problem(const Camera& cam);

/// Why near/far cannot bound rays, or "" when they can (finite, 0 <= near < far).
std::string near_far_problem(float near, float far);

/// Throws nerf::Error starting with `source` when the dataset's geometry cannot be trained or rendered:
/// an empty image size, a focal length or intrinsics that are not positive and finite, near/far not
/// 0 <= near < far, or a pose (training or render path) for which pose_problem says why.
void check_dataset_geometry(const Dataset& ds, const std::string& source);

/// Blender synthetic scenes (transforms_{train,val,test}.json).
/// Images larger than max_image_pixels (Config::max_image_pixels) are refused before decoding.
/// keep_alpha also fills Dataset::alpha.
Dataset load_blender(const std::string& basedir, bool half_res, int testskip, bool white_bkgd,
                     uint64_t max_image_pixels = kDefaultMaxImagePixels, bool keep_alpha = false);

/// The reference's 40-view spherical render path: theta over 360 degrees, phi -30, radius 4.
std::vector<Pose> blender_render_path(int n_views = 40, float phi_deg = -30.0f, float radius = 4.0f);

} // namespace nerf
