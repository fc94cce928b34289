// Cameras of the built-in scene and the Blender-format dataset it is written as.
#include "nerf/common.h"
#include "nerf/io/image.h"
#include "nerf/io/output_file.h"
#include "nerf/math/rays.h"
#include "nerf/scene.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>

namespace nerf {
namespace {

namespace fs = std::filesystem;

constexpr double kPi = 3.14159265358979323846;
// Successive views turn by the golden angle: the spherical Fibonacci lattice, which covers the
// band evenly for any number of views.
constexpr double kGoldenAngle = 2.39996322972865332;
// Elevation band of the views, as in the NeRF synthetic scenes' upper hemisphere.
constexpr double kMinElevation = 10.0 * kPi / 180.0, kMaxElevation = 70.0 * kPi / 180.0;

constexpr int kMaxSupersample = 16;

constexpr const char* kSplitNames[3] = {"train", "val", "test"};
// Each split is its own Fibonacci lattice over the band; these azimuth phases (fractions of the
// golden angle) put the val and test views between the train views rather than on them.
constexpr double kSplitPhase[3] = {0.0, 0.5 * kGoldenAngle, 0.25 * kGoldenAngle};

int split_count(int split, const SceneOptions& opts) {
	return split == 0 ? opts.n_train : split == 1 ? opts.n_val : opts.n_test;
}

// splitmix64: turns the seed into a layout rotation with no state to carry.
uint64_t mix_seed(uint64_t x) {
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

void validate(const SceneOptions& opts) {
	if (opts.size < 1) NERF_FAIL("built-in scene: size must be >= 1, got " << opts.size);
	if (opts.n_train < 1) NERF_FAIL("built-in scene: n_train must be >= 1, got " << opts.n_train);
	if (opts.n_val < 0 || opts.n_test < 0)
		NERF_FAIL("built-in scene: n_val and n_test must be >= 0, got " << opts.n_val << ", " << opts.n_test);
	// 16 x 16 rays per pixel already resolve edges to 1/256 of a pixel; far more only spends hours.
	if (opts.supersample < 1 || opts.supersample > kMaxSupersample)
		NERF_FAIL("built-in scene: supersample must be in [1, " << kMaxSupersample << "], got " << opts.supersample);
}

void make_directories(const fs::path& path) {
	std::error_code ec;
	fs::create_directories(path, ec);
	if (ec) NERF_FAIL(path.string() << ": cannot create folder (" << ec.message() << ")");
}

// RGBA [H, W, 4], each pixel supersampled n x n. Alpha is the fraction of sub-pixel rays that hit;
// colour is the mean over those rays only (premultiplied sum / coverage), so that compositing
// rgb * a + bg * (1 - a) gives the supersampled image over any background. camera_ray(col, row, sx,
// sy, dir) writes sub-sample (sx, sy)'s direction in camera space and returns false where the camera
// has none; the result is then false too (the pixels are complete either way).
template <typename CameraRay>
bool render_supersampled(std::vector<float>& pixels, const float c2w[12], int W, int H, int n, const CameraRay& camera_ray) {
	pixels.assign((size_t)W * H * 4, 0.0f);
	const float origin[3] = {c2w[3], c2w[7], c2w[11]};
	bool all_mapped = true;
#pragma omp parallel for schedule(static) reduction(&& : all_mapped)
	for (int row = 0; row < H; ++row) {
		for (int col = 0; col < W; ++col) {
			double sum[3] = {0.0, 0.0, 0.0};
			int covered = 0;
			for (int sy = 0; sy < n; ++sy) {
				for (int sx = 0; sx < n; ++sx) {
					double dir_cam[3];
					all_mapped = camera_ray(col, row, sx, sy, dir_cam) && all_mapped;
					float direction[3];
					for (int k = 0; k < 3; ++k)
						direction[k] =
						    (float)(dir_cam[0] * c2w[4 * k] + dir_cam[1] * c2w[4 * k + 1] + dir_cam[2] * c2w[4 * k + 2]);
					float rgb[3];
					if (trace_builtin_scene(origin, direction, rgb)) {
						for (int c = 0; c < 3; ++c) sum[c] += rgb[c];
						++covered;
					}
				}
			}
			float* out = &pixels[((size_t)row * W + col) * 4];
			if (covered > 0)
				for (int c = 0; c < 3; ++c) out[c] = (float)(sum[c] / covered);
			out[3] = (float)covered / (float)(n * n);
		}
	}
	return all_mapped;
}

// The built-in scene's pinhole views, [size, size, 4].
std::vector<float> render_view(const float c2w[12], const SceneOptions& opts) {
	const int size = opts.size, n = opts.supersample;
	const double focal = 0.5 * size / std::tan(0.5 * kBuiltinSceneCameraAngleX);
	const double half = 0.5 * size;
	std::vector<float> pixels;
	render_supersampled(pixels, c2w, size, size, n, [&](int col, int row, int sx, int sy, double dir_cam[3]) {
		// Symmetric offsets about the integer pixel coordinate that get_rays uses.
		const double px = col + ((sx + 0.5) / n - 0.5), py = row + ((sy + 0.5) / n - 0.5);
		dir_cam[0] = (px - half) / focal;
		dir_cam[1] = -(py - half) / focal;
		dir_cam[2] = -1.0;
		return true;
	});
	return pixels;
}

// A pose as transforms.json holds it: 4x4, the bottom row (0, 0, 0, 1).
nlohmann::json matrix_json(const float c2w[12]) {
	nlohmann::json matrix = nlohmann::json::array();
	for (int row = 0; row < 3; ++row) matrix.push_back({c2w[4 * row], c2w[4 * row + 1], c2w[4 * row + 2], c2w[4 * row + 3]});
	matrix.push_back({0.0, 0.0, 0.0, 1.0});
	return matrix;
}

nlohmann::json read_json(const fs::path& path) {
	std::ifstream in(path);
	if (!in) NERF_FAIL(path.string() << ": cannot open");
	try {
		return nlohmann::json::parse(in);
	} catch (const nlohmann::json::exception& e) {
		NERF_FAIL(path.string() << ": malformed JSON (" << e.what() << ")");
	}
}

} // namespace

void builtin_scene_pose(int split, int index, const SceneOptions& opts, float c2w[12]) {
	if (split < 0 || split > 2) NERF_FAIL("built-in scene: split must be 0, 1 or 2, got " << split);
	const int count = split_count(split, opts);
	if (index < 0 || index >= count)
		NERF_FAIL("built-in scene: view " << index << " of " << kSplitNames[split] << " out of range [0, " << count << ")");
	const double seed_turn =
	    opts.seed == 0 ? 0.0 : 2.0 * kPi * (double)(mix_seed(opts.seed) >> 11) * (1.0 / 9007199254740992.0);
	const double fraction = (index + 0.5) / count;
	const double height =
	    std::sin(kMinElevation) + fraction * (std::sin(kMaxElevation) - std::sin(kMinElevation));
	const double elevation = std::asin(height);
	const double azimuth = index * kGoldenAngle + kSplitPhase[split] + seed_turn;

	const double r = kBuiltinSceneCameraRadius;
	const double position[3] = {r * std::cos(elevation) * std::cos(azimuth), r * std::cos(elevation) * std::sin(azimuth),
	                            r * std::sin(elevation)};
	// Camera +Z points away from the origin (the camera looks down -Z), +X = up x Z is horizontal,
	// +Y = Z x X completes a right-handed frame with a positive world-Z component.
	const double back[3] = {position[0] / r, position[1] / r, position[2] / r};
	const double right_norm = std::hypot(back[0], back[1]);
	const double right[3] = {-back[1] / right_norm, back[0] / right_norm, 0.0};
	const double up[3] = {back[1] * right[2] - back[2] * right[1], back[2] * right[0] - back[0] * right[2],
	                      back[0] * right[1] - back[1] * right[0]};
	// + 0.0 turns -0.0 into 0.0, so that the JSON reads as one would write it by hand.
	for (int k = 0; k < 3; ++k) {
		c2w[4 * k + 0] = (float)(right[k] + 0.0);
		c2w[4 * k + 1] = (float)(up[k] + 0.0);
		c2w[4 * k + 2] = (float)(back[k] + 0.0);
		c2w[4 * k + 3] = (float)(position[k] + 0.0);
	}
}

void write_builtin_scene(const std::string& dir, const SceneOptions& opts) {
	validate(opts);
	const fs::path root(dir);
	for (int split = 0; split < 3; ++split) {
		const std::string name = kSplitNames[split];
		make_directories(root / name);
		nlohmann::json frames = nlohmann::json::array();
		for (int index = 0; index < split_count(split, opts); ++index) {
			float c2w[12];
			builtin_scene_pose(split, index, opts, c2w);
			const std::vector<float> pixels = render_view(c2w, opts);
			const std::string stem = "r_" + std::to_string(index);
			save_png((root / name / (stem + ".png")).string(), pixels.data(), opts.size, opts.size, 4);
			frames.push_back({{"file_path", "./" + name + "/" + stem}, {"rotation", 0.0}, {"transform_matrix", matrix_json(c2w)}});
		}
		const nlohmann::json transforms = {{"camera_angle_x", kBuiltinSceneCameraAngleX}, {"frames", frames}};
		write_file_atomic((root / ("transforms_" + name + ".json")).string(), transforms.dump(4) + "\n");
	}
}

namespace {

// Frame i's camera in the capture: a few percent of focal length and principal point, and a tenth of
// each distortion coefficient, vary from frame to frame as they do between COLMAP's per-image cameras.
Camera capture_camera(int i, const CaptureOptions& opts) {
	Camera cam;
	cam.W = i % 3 == 2 ? opts.width * 3 / 4 : opts.width;
	cam.H = opts.height;
	const double focal = 0.5 * opts.width / std::tan(0.5 * opts.fov_x_deg * kPi / 180.0);
	cam.fx = (float)(focal * (1.0 + 0.04 * std::sin(1.7 * i)));
	cam.fy = (float)(cam.fx * (1.0 + 0.003 * std::cos(0.7 * i)));
	cam.cx = (float)(0.5 * cam.W + 0.8 * std::sin(0.9 * i));
	cam.cy = (float)(0.5 * cam.H + 0.6 * std::cos(1.3 * i));
	cam.pixel_centers = true;
	if (opts.distorted) {
		cam.lens.model = LensModel::OpenCV;
		// Odd frames through a barrel lens (a phone's wide camera), even ones through a pincushion one.
		const bool wide = i % 2 == 1;
		cam.lens.k1 = (float)((wide ? -0.2 : 0.14) * (1.0 + 0.1 * std::sin(2.3 * i)));
		cam.lens.k2 = (float)((wide ? 0.05 : 0.03) * (1.0 + 0.1 * std::cos(1.1 * i)));
		cam.lens.p1 = (float)(0.002 * (1.0 + 0.1 * std::sin(0.5 * i)));
		cam.lens.p2 = (float)(-0.0015 * (1.0 + 0.1 * std::cos(0.3 * i)));
	}
	return cam;
}

// RGBA [H, W, 4] through the camera's lens, supersampled within each pixel as render_view.
std::vector<float> render_capture_view(const float c2w[12], const Camera& cam, int n) {
	std::vector<float> pixels;
	const bool unfolded = render_supersampled(pixels, c2w, cam.W, cam.H, n, [&](int col, int row, int sx, int sy, double dir_cam[3]) {
		// Pixel (col, row) covers [col, col + 1) x [row, row + 1): its centre is at + 0.5.
		const double u = col + (sx + 0.5) / n, v = row + (sy + 0.5) / n;
		double x, y;
		const bool inverted = lens_undistort(cam.lens, (u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, x, y);
		dir_cam[0] = x;
		dir_cam[1] = -y;
		dir_cam[2] = -1.0;
		return inverted;
	});
	if (!unfolded) NERF_FAIL("built-in capture: the lens cannot be inverted over the image (fov_x_deg too wide)");
	return pixels;
}

} // namespace

void write_builtin_capture(const std::string& dir, const CaptureOptions& opts) {
	if (opts.width < 4 || opts.height < 1) NERF_FAIL("built-in capture: width must be >= 4 and height >= 1");
	if (opts.n_frames < 1) NERF_FAIL("built-in capture: n_frames must be >= 1, got " << opts.n_frames);
	if (opts.width > 8192 || opts.height > 8192)
		NERF_FAIL("built-in capture: width and height must be at most 8192, got " << opts.width << "x" << opts.height);
	if (opts.supersample < 1 || opts.supersample > kMaxSupersample)
		NERF_FAIL("built-in capture: supersample must be in [1, " << kMaxSupersample << "], got " << opts.supersample);
	if (!(opts.fov_x_deg > 0.0 && opts.fov_x_deg < 150.0)) NERF_FAIL("built-in capture: fov_x_deg must be in (0, 150)");
	if (!(opts.radius > 1.8)) NERF_FAIL("built-in capture: radius must exceed 1.8 (the objects reach 1.7 from the origin)");
	const fs::path root(dir);
	make_directories(root / "images");
	SceneOptions layout;
	layout.n_train = opts.n_frames;
	layout.seed = opts.seed;
	nlohmann::json frames = nlohmann::json::array();
	for (int i = 0; i < opts.n_frames; ++i) {
		float c2w[12];
		builtin_scene_pose(0, i, layout, c2w);
		for (int k = 0; k < 3; ++k) c2w[4 * k + 3] = (float)(c2w[4 * k + 3] * opts.radius / kBuiltinSceneCameraRadius);
		const Camera cam = capture_camera(i, opts);
		char name[32];
		std::snprintf(name, sizeof(name), "frame_%05d.png", i + 1);
		save_png((root / "images" / name).string(), render_capture_view(c2w, cam, opts.supersample).data(), cam.W, cam.H, 4);

		nlohmann::json frame = {{"file_path", std::string("images/") + name},
		                        {"transform_matrix", matrix_json(c2w)},
		                        {"w", cam.W},
		                        {"h", cam.H},
		                        {"fl_x", cam.fx},
		                        {"fl_y", cam.fy},
		                        {"cx", cam.cx},
		                        {"cy", cam.cy}};
		if (opts.distorted) {
			frame["k1"] = cam.lens.k1;
			frame["k2"] = cam.lens.k2;
			frame["p1"] = cam.lens.p1;
			frame["p2"] = cam.lens.p2;
		}
		frames.push_back(frame);
	}
	const nlohmann::json transforms = {{"camera_model", opts.distorted ? "OPENCV" : "PINHOLE"}, {"frames", frames}};
	const fs::path json_path = root / "transforms.json";
	write_file_atomic(json_path.string(), transforms.dump(2) + "\n");
}

bool builtin_scene_exists(const std::string& dir) {
	const fs::path root(dir);
	for (const char* name : kSplitNames) {
		const fs::path json_path = root / (std::string("transforms_") + name + ".json");
		std::error_code ec;
		if (!fs::is_regular_file(json_path, ec)) return false;
		try {
			const nlohmann::json transforms = read_json(json_path);
			for (const auto& frame : transforms.at("frames"))
				if (!fs::is_regular_file(root / (frame.at("file_path").get<std::string>() + ".png"), ec)) return false;
		} catch (const nlohmann::json::exception&) {
			return false;
		} catch (const Error&) {
			return false;
		}
	}
	return true;
}

bool builtin_scene_matches(const std::string& dir, const SceneOptions& opts) {
	if (!builtin_scene_exists(dir)) return false;
	const fs::path root(dir);
	try {
		for (int split = 0; split < 3; ++split) {
			const nlohmann::json transforms = read_json(root / (std::string("transforms_") + kSplitNames[split] + ".json"));
			if ((int)transforms.at("frames").size() != split_count(split, opts)) return false;
		}
		const Image first = load_image((root / "train" / "r_0.png").string());
		return first.width == opts.size && first.height == opts.size && first.channels == 4;
	} catch (const nlohmann::json::exception&) {
		return false;
	} catch (const Error&) {
		return false;
	}
}

} // namespace nerf
