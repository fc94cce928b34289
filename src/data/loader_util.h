// Helpers shared by the dataset loaders (private to src/data).
#pragma once

#include "nerf/dataset.h"
#include "nerf/io/image.h"

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <array>
#include <string>
#include <vector>

namespace nerf::data {

/// Parses a JSON file; a missing or malformed file throws naming the file (and the parser's position).
/// Python's bare NaN, Infinity and -Infinity (json.dump writes them) parse as the strings "NaN", ...,
/// so that the check of the field holding one names it.
nlohmann::json read_json(const std::string& path);

/// Throws unless `path` is a directory.
void require_directory(const std::string& path, const std::string& what);

/// Sorted names (not paths) of the files in `dir` that end in one of `suffixes` (case-sensitive,
/// as the reference's endswith checks).
std::vector<std::string> list_files(const std::string& dir, const std::vector<std::string>& suffixes);

/// Throws naming `source` when any of the n values is NaN or infinite.
void check_finite(const double* values, int n, const std::string& source, const std::string& what);

/// A 4x4 matrix of nested arrays, row-major; a wrong shape, a non-number (a quoted NaN named as such)
/// or a non-finite value throws naming `source` and `where`.
std::array<double, 16> read_matrix_json(const nlohmann::json& m, const std::string& source, const std::string& where);

/// A frame's transform_matrix (4x4 nested arrays) as its top 3x4 (read_matrix_json).
Pose read_pose_json(const nlohmann::json& m, const std::string& source, int frame_index);

/// The top 3x4 of a camera-to-world matrix as a Pose.
Pose to_pose(const Eigen::Matrix<double, 3, 4>& m);

/// n_pixels pixels of `channels` (1, 3 or 4) floats to RGB: grey is repeated; with white_bkgd RGBA is
/// composited onto white as run_nerf.py does (rgb * a + (1 - a)), otherwise alpha is dropped.
void to_rgb(const float* src, int channels, size_t n_pixels, bool white_bkgd, float* rgb, float* alpha_out = nullptr);

/// Loads images in parallel, each converted to `channels` (3: drop alpha; 4: alpha 1 where absent).
/// Every image must have the size of the first; a different size throws naming the file.
/// `downsample` > 1 area-averages each image to (H / downsample, W / downsample) as it is read, so a
/// full-resolution scene never sits in memory at once. H and W are the returned (downsampled) size;
/// stored_H and stored_W, when given, receive the size of the files.
/// Each file is decoded with load_image(path, max_pixels). Output: [n, H, W, channels].
std::vector<float> load_images(const std::vector<std::string>& paths, uint64_t max_pixels, int channels, int& H, int& W,
                               int downsample = 1, int* stored_H = nullptr, int* stored_W = nullptr);

/// a/b, normalised ("dir/./x" -> "dir/x").
std::string join(const std::string& a, const std::string& b);

bool exists(const std::string& path);

/// K = [[focal, 0, W/2], [0, focal, H/2], [0, 0, 1]] as run_nerf.py builds it.
std::array<float, 9> default_K(int H, int W, double focal);

/// Gives every image of ds the reference's camera of ds.H, ds.W, ds.K and ds.ndc (ds.cameras).
void set_shared_camera(Dataset& ds);

/// Index range [begin, end).
std::vector<int> iota_range(int begin, int end);

} // namespace nerf::data
