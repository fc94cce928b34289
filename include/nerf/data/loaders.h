/// @file loaders.h
/// @brief The pieces of the dataset loaders that tools and tests use directly: each loader on its own,
/// a Blender split as stored (RGBA, before any compositing), and the area resize every loader shares.
#pragma once

#include "nerf/dataset.h"
#include "nerf/io/image.h"

#include <array>
#include <string>
#include <vector>

namespace nerf {

/// One split of a Blender scene as stored: RGBA floats, poses, and the camera angle of its json.
struct BlenderSplit {
	int H = 0, W = 0;                 ///< after half_res
	int stored_H = 0, stored_W = 0;   ///< as the files are (focal comes from stored_W)
	double camera_angle_x = 0.0;
	std::vector<float> rgba;          ///< [n, H, W, 4]; alpha is 1 where the PNG has none
	std::vector<Pose> poses;          ///< [n]
	std::vector<std::string> files;   ///< [n] the image files read
};

/// Reads transforms_<split>.json and every `skip`-th frame of it (skip <= 0 behaves as 1).
/// `max_frames` > 0 stops after that many frames (tests use it to keep 800x800 scenes fast).
/// Throws when the json is missing; load_blender decides whether a missing split is allowed.
BlenderSplit load_blender_split(const std::string& basedir, const std::string& split, int skip, bool half_res,
                                int max_frames = 0, uint64_t max_image_pixels = kDefaultMaxImagePixels);

/// LLFF forward-facing or 360 scenes, as load_llff.py's load_llff_data (recenter, bd_factor 0.75) followed
/// by run_nerf.py's llffhold split and near/far choice.
Dataset load_llff(const std::string& basedir, int factor, bool spherify, int llffhold, bool no_ndc,
                  uint64_t max_image_pixels = kDefaultMaxImagePixels);

/// DeepVoxels scenes (load_deepvoxels.py): basedir/{train,validation,test}/<shape>/{intrinsics.txt,pose,rgb}.
Dataset load_deepvoxels(const std::string& basedir, const std::string& shape, int testskip,
                        uint64_t max_image_pixels = kDefaultMaxImagePixels);

/// LINEMOD scenes (load_LINEMOD.py): Blender-style jsons with per-frame intrinsic_matrix and near/far.
Dataset load_linemod(const std::string& basedir, bool half_res, int testskip, bool white_bkgd,
                     uint64_t max_image_pixels = kDefaultMaxImagePixels);

/// transforms.json scenes (instant-ngp, nerfstudio): basedir/transforms.json with global or per-frame
/// intrinsics and lens distortion (PINHOLE, OPENCV, OPENCV_FISHEYE), images of any sizes. `factor` > 1 reads
/// basedir/images_<factor>/ when it exists, else downsamples in-process; intrinsics follow. `factor` 0
/// chooses as nerfstudio: the smallest power of two that brings the longer side of the largest image
/// to at most 1600 pixels (1 when it already is); Dataset::resize_note says what was used. Poses are
/// normalised (centred on the cameras, mean up vector +z, cameras inside [-1, 1]^3), frames are sorted by
/// file_path, every llffhold-th is held out for test (and val). Rays go through pixel centres.
Dataset load_transforms(const std::string& basedir, int factor, int llffhold, bool white_bkgd,
                        uint64_t max_image_pixels = kDefaultMaxImagePixels);

/// Area-average resize of an [h, w, c] float image to [out_h, out_w, c]: each output pixel is the mean of
/// the input area it covers, fractional pixels weighted by their overlap (OpenCV's INTER_AREA when
/// shrinking; an exact box filter when h/out_h and w/out_w are integers).
std::vector<float> resize_area(const float* src, int h, int w, int c, int out_h, int out_w);

/// The pose the reference's pose_spherical(theta, phi, radius) builds (degrees).
Pose pose_spherical(double theta_deg, double phi_deg, double radius);

} // namespace nerf
