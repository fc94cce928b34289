/// @file colmap.h
/// @brief COLMAP sparse models (cameras, images, points3D in .bin or .txt) and their conversion to LLFF's
/// poses_bounds.npy rows, as LLFF's imgs2poses.py does it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace nerf {

struct ColmapCamera {
	uint32_t id = 0;
	int model_id = -1;
	std::string model;            ///< SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, ...
	uint64_t width = 0, height = 0;
	std::vector<double> params;   ///< params[0] is the focal length (fx) in every model
};

struct ColmapImage {
	uint32_t id = 0;
	std::array<double, 4> qvec{};  ///< world-to-camera rotation as a quaternion (w, x, y, z)
	std::array<double, 3> tvec{};  ///< world-to-camera translation
	uint32_t camera_id = 0;
	std::string name;
};

struct ColmapPoint {
	uint64_t id = 0;
	std::array<double, 3> xyz{};
	std::vector<uint32_t> image_ids;  ///< the images whose track observes this point (repeats possible)
};

/// A sparse model in file order (the order matters: LLFF takes the first camera's intrinsics).
struct ColmapModel {
	std::vector<ColmapCamera> cameras;
	std::vector<ColmapImage> images;
	std::vector<ColmapPoint> points;
};

/// Reads dir/{cameras,images,points3D}.bin, or the .txt files where the .bin ones are absent. Throws
/// nerf::Error naming the file on a missing file, a truncated or malformed record, or an unknown model.
ColmapModel read_colmap_model(const std::string& dir);
ColmapModel read_colmap_model_binary(const std::string& dir);
ColmapModel read_colmap_model_text(const std::string& dir);

/// The 3x3 rotation of a unit quaternion (w, x, y, z), row-major.
std::array<double, 9> colmap_qvec_to_rotation(const std::array<double, 4>& qvec);

/// LLFF's poses_bounds rows, one per image ordered by image name: the camera-to-world 3x4 in LLFF's
/// axes (down, right, back) with the column (H, W, focal) of the first camera appended, flattened
/// row-major to 15 numbers, then the 0.1 and 99.9 percentiles of the depths of the points the image
/// observes. Throws when an image observes no point or a point names an unknown image.
std::vector<std::array<double, 17>> colmap_to_llff(const ColmapModel& model);

/// The model as a transforms.json (the text), as instant-ngp's colmap2nerf.py and nerfstudio's
/// ns-process-data write it: frames ordered by image name with file_path image_dir/name and the
/// camera-to-world transform_matrix in OpenGL camera axes (y up, z back) and nerfstudio's world axes
/// (COLMAP's x, z, -y); each camera's w, h, fl_x, fl_y, cx, cy and lens: SIMPLE_PINHOLE and PINHOLE as
/// PINHOLE; SIMPLE_RADIAL, RADIAL and OPENCV as OPENCV (k1, k2, p1, p2); OPENCV_FISHEYE (k1..k4). The
/// intrinsics sit at the top level when every image shares one camera, else in each frame. Throws for other
/// camera models, naming the camera.
std::string colmap_to_transforms(const ColmapModel& model, const std::string& image_dir = "images");

} // namespace nerf
