/// @file scene.h
/// @brief The built-in procedural scene: an analytic ray tracer that writes a Blender-format
/// dataset (transforms_{train,val,test}.json + RGBA PNGs, as nerf-pytorch's load_blender.py reads),
/// so that training needs no download.
///
/// Conventions are those of the NeRF synthetic scenes: world +Z is up, cameras sit on the upper
/// hemisphere at radius 4 looking at the origin, poses are camera-to-world with the camera looking
/// down its -Z and +Y up (OpenGL axes), and pixel (i = column, j = row) looks along
/// ((i - W/2) / f, -(j - H/2) / f, -1) with f = 0.5 W / tan(0.5 camera_angle_x), as get_rays does.
/// The objects lie inside [-1.2, 1.2]^3, so Blender's near = 2, far = 6 bound them.
#pragma once

#include <cstdint>
#include <string>

namespace nerf {

struct SceneOptions {
	int size = 64;        ///< images are size x size pixels
	int n_train = 40;     ///< views per split
	int n_val = 8;
	int n_test = 8;
	int supersample = 4;  ///< supersample^2 rays per pixel; alpha is the covered fraction
	uint64_t seed = 0;    ///< turns the whole camera layout about +Z; 0 keeps the default layout
};

/// Field of view of every camera, the value of the lego scene.
constexpr double kBuiltinSceneCameraAngleX = 0.6911112070083618;
/// Distance of every camera from the origin.
constexpr double kBuiltinSceneCameraRadius = 4.0;

/// Shades one ray of the built-in scene. direction need not be unit length.
/// @return true and the colour in rgb (each in [0,1]) when the ray hits an object;
///         false, leaving rgb untouched, when it sees only the (transparent) background.
bool trace_builtin_scene(const float origin[3], const float direction[3], float rgb[3]);

/// Camera-to-world pose (3x4 row-major: rotation columns = camera X, Y, Z; last column = position)
/// of view `index` of a split: 0 = train, 1 = val, 2 = test.
void builtin_scene_pose(int split, int index, const SceneOptions& opts, float c2w[12]);

/// Renders every view and writes dir/transforms_{train,val,test}.json and dir/{train,val,test}/r_K.png
/// (8-bit RGBA, background alpha 0, colour not premultiplied). Creates folders as needed.
/// Throws nerf::Error naming the path on any I/O failure, or on invalid options.
void write_builtin_scene(const std::string& dir, const SceneOptions& opts);

/// The built-in scene as a hand-held capture in nerfstudio's layout (dir/transforms.json, dir/images/*.png),
/// for dataset_type = transforms: cameras on the upper hemisphere as in SceneOptions, but each frame with its
/// own intrinsics (focal length and principal point vary by a few percent) and, when `distorted`, its own
/// OPENCV lens with coefficients of a phone camera's size; rays through pixel centres, RGBA as the
/// Blender layout. Every third frame is 3/4 as wide, so the images come in two sizes.
struct CaptureOptions {
	int width = 48, height = 36;  ///< size of most frames
	int n_frames = 48;
	int supersample = 3;          ///< supersample^2 rays per pixel
	double fov_x_deg = 70.0;      ///< horizontal field of view of a full-width frame (a phone's main camera)
	double radius = 2.7;          ///< distance of every camera from the origin: the objects fill the frame
	bool distorted = true;        ///< false: the same cameras as PINHOLE (no lens distortion)
	uint64_t seed = 0;            ///< turns the camera layout about +Z, as SceneOptions::seed
};

/// Writes the capture; throws nerf::Error naming the path on any I/O failure, or on invalid options.
void write_builtin_capture(const std::string& dir, const CaptureOptions& opts);

/// True when dir holds all three transforms files and every image they list.
bool builtin_scene_exists(const std::string& dir);

/// builtin_scene_exists, and the frame counts and image size are those of opts, so that a
/// folder written with other options can be told apart and rewritten.
bool builtin_scene_matches(const std::string& dir, const SceneOptions& opts);

} // namespace nerf
