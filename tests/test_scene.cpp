// The built-in procedural scene: the files it writes, its cameras, and that every pixel is the
// ray nerf-pytorch's get_rays would cast for it.
#include "test_data_helpers.h"
#include "nerf/common.h"
#include "nerf/io/image.h"
#include "nerf/scene.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using data_test::TempDir;  // shared with the loader tests

nerf::SceneOptions tiny_options() {
	nerf::SceneOptions opts;
	opts.size = 16;
	opts.n_train = 4;
	opts.n_val = 2;
	opts.n_test = 3;
	return opts;
}

nlohmann::json read_json(const fs::path& path) {
	std::ifstream in(path);
	REQUIRE(in.good());
	return nlohmann::json::parse(in);
}

std::string read_bytes(const fs::path& path) {
	std::ifstream in(path, std::ios::binary);
	REQUIRE(in.good());
	return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// transform_matrix as 3x4 row-major floats, the way a loader would read it.
std::vector<float> pose_3x4(const nlohmann::json& frame) {
	std::vector<float> c2w(12);
	const auto& m = frame.at("transform_matrix");
	for (int r = 0; r < 3; ++r)
		for (int c = 0; c < 4; ++c) c2w[4 * r + c] = m.at(r).at(c).get<float>();
	return c2w;
}

// nerf-pytorch's get_rays for one pixel, spelled out: i = column, j = row, no half-pixel offset;
// sub-pixel offsets (du, dv) are added to (i, j).
void get_rays_pixel(const std::vector<float>& c2w, float focal, int W, int H, float i, float j, float o[3],
                    float d[3]) {
	const float dir[3] = {(i - W * 0.5f) / focal, -(j - H * 0.5f) / focal, -1.0f};
	for (int k = 0; k < 3; ++k) {
		d[k] = dir[0] * c2w[4 * k] + dir[1] * c2w[4 * k + 1] + dir[2] * c2w[4 * k + 2];
		o[k] = c2w[4 * k + 3];
	}
}

constexpr const char* kSplits[3] = {"train", "val", "test"};

} // namespace

TEST_CASE("built-in scene writes a Blender-format dataset", "[scene]") {
	TempDir dir("layout");
	const nerf::SceneOptions opts = tiny_options();
	CHECK_FALSE(nerf::builtin_scene_exists(dir.str()));
	nerf::write_builtin_scene(dir.str(), opts);
	CHECK(nerf::builtin_scene_exists(dir.str()));
	CHECK(nerf::builtin_scene_matches(dir.str(), opts));

	const int expected_frames[3] = {opts.n_train, opts.n_val, opts.n_test};
	for (int split = 0; split < 3; ++split) {
		const std::string name = kSplits[split];
		const nlohmann::json transforms = read_json(dir.path / ("transforms_" + name + ".json"));
		CHECK(transforms.at("camera_angle_x").get<double>() == Approx(0.6911112070083618).epsilon(1e-12));
		REQUIRE(transforms.at("frames").size() == (size_t)expected_frames[split]);
		for (int k = 0; k < expected_frames[split]; ++k) {
			const nlohmann::json& frame = transforms["frames"][k];
			CHECK(frame.at("file_path").get<std::string>() == "./" + name + "/r_" + std::to_string(k));
			CHECK(frame.at("rotation").get<double>() == 0.0);
			const auto& m = frame.at("transform_matrix");
			REQUIRE(m.size() == 4);
			for (int r = 0; r < 4; ++r) REQUIRE(m[r].size() == 4);
			CHECK(m[3][0].get<double>() == 0.0);
			CHECK(m[3][1].get<double>() == 0.0);
			CHECK(m[3][2].get<double>() == 0.0);
			CHECK(m[3][3].get<double>() == 1.0);

			const nerf::Image image = nerf::load_image((dir.path / name / ("r_" + std::to_string(k) + ".png")).string());
			REQUIRE(image.width == 16);
			REQUIRE(image.height == 16);
			REQUIRE(image.channels == 4);
			auto alpha = [&](int row, int col) { return image.pixels[((size_t)row * 16 + col) * 4 + 3]; };
			const float corner_min =
			    std::min(std::min(alpha(0, 0), alpha(0, 15)), std::min(alpha(15, 0), alpha(15, 15)));
			CHECK(corner_min == 0.0f);     // transparent background
			CHECK(alpha(8, 8) > 0.99f);    // the scene is centred on the view axis
		}
	}

	// A different size or view count is told apart; a missing image makes the folder incomplete.
	nerf::SceneOptions other = opts;
	other.size = 32;
	CHECK_FALSE(nerf::builtin_scene_matches(dir.str(), other));
	other = opts;
	other.n_val = 5;
	CHECK_FALSE(nerf::builtin_scene_matches(dir.str(), other));
	fs::remove(dir.path / "test" / "r_2.png");
	CHECK_FALSE(nerf::builtin_scene_exists(dir.str()));
}

TEST_CASE("built-in scene is reproducible byte for byte", "[scene]") {
	TempDir first("repro_a"), second("repro_b");
	const nerf::SceneOptions opts = tiny_options();
	nerf::write_builtin_scene(first.str(), opts);
	nerf::write_builtin_scene(second.str(), opts);
	int compared = 0;
	for (const auto& entry : fs::recursive_directory_iterator(first.path)) {
		if (!entry.is_regular_file()) continue;
		const fs::path relative = fs::relative(entry.path(), first.path);
		INFO(relative.string());
		CHECK(read_bytes(entry.path()) == read_bytes(second.path / relative));
		++compared;
	}
	CHECK(compared == 3 + opts.n_train + opts.n_val + opts.n_test);
}

TEST_CASE("built-in scene cameras sit on the upper hemisphere looking at the origin", "[scene]") {
	const nerf::SceneOptions opts;  // the default layout: 40 / 8 / 8
	const int counts[3] = {opts.n_train, opts.n_val, opts.n_test};
	std::vector<std::vector<double>> train_positions;
	for (int split = 0; split < 3; ++split) {
		for (int k = 0; k < counts[split]; ++k) {
			float c2w[12];
			nerf::builtin_scene_pose(split, k, opts, c2w);
			INFO("split " << split << " view " << k);
			const double t[3] = {c2w[3], c2w[7], c2w[11]};
			const double radius = std::sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]);
			CHECK(std::abs(radius - 4.0) < 1e-5);
			// Rotation orthonormal and right-handed.
			for (int a = 0; a < 3; ++a)
				for (int b = 0; b < 3; ++b) {
					double dot = 0.0;
					for (int k2 = 0; k2 < 3; ++k2) dot += (double)c2w[4 * k2 + a] * c2w[4 * k2 + b];
					CHECK(std::abs(dot - (a == b ? 1.0 : 0.0)) < 1e-6);
				}
			const double det = c2w[0] * (c2w[5] * c2w[10] - c2w[6] * c2w[9]) -
			                   c2w[1] * (c2w[4] * c2w[10] - c2w[6] * c2w[8]) +
			                   c2w[2] * (c2w[4] * c2w[9] - c2w[5] * c2w[8]);
			CHECK(std::abs(det - 1.0) < 1e-6);
			// The camera looks down its -Z at the origin, with +Y tilted towards world +Z.
			for (int k2 = 0; k2 < 3; ++k2) CHECK(std::abs(-c2w[4 * k2 + 2] - (-t[k2] / radius)) < 1e-6);
			CHECK(c2w[9] > 0.3f);
			CHECK(std::abs(c2w[8]) < 1e-6);  // camera +X is horizontal: no roll
			const double elevation_deg = std::asin(t[2] / radius) * 180.0 / 3.14159265358979323846;
			CHECK(elevation_deg > 9.9);
			CHECK(elevation_deg < 70.1);
			if (split == 0) {
				train_positions.push_back({t[0], t[1], t[2]});
			} else {
				// Val and test are held-out positions, not copies of training views.
				double nearest = 1e9;
				for (const auto& p : train_positions)
					nearest = std::min(nearest, std::hypot(p[0] - t[0], p[1] - t[1], p[2] - t[2]));
				CHECK(nearest > 0.1);
			}
		}
	}
	// The train views cover all azimuths and the elevation band, not one side of the scene.
	int quadrant_counts[4] = {0, 0, 0, 0};
	double min_z = 1e9, max_z = -1e9;
	for (const auto& p : train_positions) {
		quadrant_counts[(p[0] >= 0 ? 0 : 1) + (p[1] >= 0 ? 0 : 2)]++;
		min_z = std::min(min_z, p[2]);
		max_z = std::max(max_z, p[2]);
	}
	for (int q = 0; q < 4; ++q) CHECK(quadrant_counts[q] >= 6);
	CHECK(min_z < 4.0 * std::sin(15.0 * 3.14159265358979323846 / 180.0));
	CHECK(max_z > 4.0 * std::sin(65.0 * 3.14159265358979323846 / 180.0));

	// A seed turns the layout about +Z: same elevations, other azimuths.
	nerf::SceneOptions seeded = opts;
	seeded.seed = 7;
	float base[12], turned[12];
	nerf::builtin_scene_pose(0, 3, opts, base);
	nerf::builtin_scene_pose(0, 3, seeded, turned);
	CHECK(turned[11] == Approx(base[11]).margin(1e-6));
	CHECK(std::hypot(turned[3] - base[3], turned[7] - base[7]) > 1e-3);
	CHECK_THROWS_AS(nerf::builtin_scene_pose(0, opts.n_train, opts, base), nerf::Error);
	CHECK_THROWS_AS(nerf::builtin_scene_pose(3, 0, opts, base), nerf::Error);
}

TEST_CASE("built-in scene pixels are the rays of nerf-pytorch's get_rays", "[scene]") {
	const int size = 16;
	for (int supersample : {1, 2}) {
		DYNAMIC_SECTION("supersample " << supersample) {
			TempDir dir("rays");
			nerf::SceneOptions opts = tiny_options();
			opts.supersample = supersample;
			nerf::write_builtin_scene(dir.str(), opts);
			const nlohmann::json transforms = read_json(dir.path / "transforms_val.json");
			const float camera_angle_x = transforms.at("camera_angle_x").get<float>();
			const float focal = 0.5f * size / std::tan(0.5f * camera_angle_x);
			int partial_pixels = 0, hit_pixels = 0;
			for (int view = 0; view < opts.n_val; ++view) {
				const std::vector<float> c2w = pose_3x4(transforms["frames"][view]);
				const nerf::Image image = nerf::load_image((dir.path / "val" / ("r_" + std::to_string(view) + ".png")).string());
				REQUIRE(image.width == size);
				for (int j = 0; j < size; ++j) {
					for (int i = 0; i < size; ++i) {
						INFO("view " << view << " column " << i << " row " << j);
						// Sub-pixel offsets symmetric about the integer pixel coordinate.
						float sum[3] = {0, 0, 0};
						int hits = 0;
						for (int sv = 0; sv < supersample; ++sv)
							for (int su = 0; su < supersample; ++su) {
								const float du = (su + 0.5f) / supersample - 0.5f, dv = (sv + 0.5f) / supersample - 0.5f;
								float o[3], d[3], rgb[3];
								get_rays_pixel(c2w, focal, size, size, i + du, j + dv, o, d);
								if (nerf::trace_builtin_scene(o, d, rgb)) {
									for (int c = 0; c < 3; ++c) sum[c] += rgb[c];
									++hits;
								}
							}
						const float* px = &image.pixels[((size_t)j * size + i) * 4];
						const float expected_alpha = (float)hits / (float)(supersample * supersample);
						REQUIRE(std::abs(px[3] - expected_alpha) < 0.51f / 255.0f);
						if (hits == 0) continue;
						++hit_pixels;
						if (hits < supersample * supersample) ++partial_pixels;
						for (int c = 0; c < 3; ++c) REQUIRE(std::abs(px[c] - sum[c] / hits) < 0.51f / 255.0f);
					}
				}
				// The centre pixel is the camera's -Z axis, which passes through the origin.
				if (supersample == 1) {
					float o[3], d[3], rgb[3];
					get_rays_pixel(c2w, focal, size, size, size / 2, size / 2, o, d);
					for (int k = 0; k < 3; ++k) CHECK(d[k] == Approx(-c2w[4 * k + 2]).margin(1e-7));
					REQUIRE(nerf::trace_builtin_scene(o, d, rgb));
					const float* px = &image.pixels[((size_t)(size / 2) * size + size / 2) * 4];
					CHECK(px[3] == 1.0f);
					for (int c = 0; c < 3; ++c) CHECK(std::abs(px[c] - rgb[c]) < 0.51f / 255.0f);
				}
			}
			CHECK(hit_pixels > 2 * size * size / 4);  // the objects fill a good part of each view
			if (supersample > 1) CHECK(partial_pixels > 10);  // anti-aliased edges exist
		}
	}
}

TEST_CASE("built-in scene shading: lit, textured, with a view-dependent highlight", "[scene]") {
	const float origin[3] = {0.0f, 0.0f, 4.0f};
	const float down[3] = {0.0f, 0.0f, -1.0f};
	float rgb[3];
	REQUIRE(nerf::trace_builtin_scene(origin, down, rgb));  // the top of the sphere
	for (float c : rgb) {
		CHECK(c >= 0.0f);
		CHECK(c <= 1.0f);
	}
	// A ray that misses everything leaves rgb untouched.
	const float up[3] = {0.0f, 0.0f, 1.0f};
	float untouched[3] = {-1.0f, -1.0f, -1.0f};
	CHECK_FALSE(nerf::trace_builtin_scene(origin, up, untouched));
	CHECK(untouched[0] == -1.0f);
	// Length of the direction does not matter.
	const float down_long[3] = {0.0f, 0.0f, -7.5f};
	float rgb_long[3];
	REQUIRE(nerf::trace_builtin_scene(origin, down_long, rgb_long));
	for (int c = 0; c < 3; ++c) CHECK(rgb_long[c] == Approx(rgb[c]).margin(1e-6));
	// The same surface point seen from two directions differs (specular), by a moderate amount.
	const float target[3] = {0.0f, 0.0f, 0.5f};  // sphere top
	const float eye_a[3] = {2.0f, 1.2f, 3.2f}, eye_b[3] = {-2.0f, -1.2f, 3.2f};
	float rgb_a[3], rgb_b[3];
	const float dir_a[3] = {target[0] - eye_a[0], target[1] - eye_a[1], target[2] - eye_a[2]};
	const float dir_b[3] = {target[0] - eye_b[0], target[1] - eye_b[1], target[2] - eye_b[2]};
	REQUIRE(nerf::trace_builtin_scene(eye_a, dir_a, rgb_a));
	REQUIRE(nerf::trace_builtin_scene(eye_b, dir_b, rgb_b));
	const double difference = std::abs(rgb_a[0] - rgb_b[0]) + std::abs(rgb_a[1] - rgb_b[1]) + std::abs(rgb_a[2] - rgb_b[2]);
	CHECK(difference > 0.05);
	CHECK(difference < 1.5);
}

TEST_CASE("built-in scene reports bad options and unwritable paths", "[scene]") {
	TempDir dir("errors");
	nerf::SceneOptions bad = tiny_options();
	bad.size = 0;
	CHECK_THROWS_AS(nerf::write_builtin_scene(dir.str(), bad), nerf::Error);
	bad = tiny_options();
	bad.supersample = 0;
	CHECK_THROWS_AS(nerf::write_builtin_scene(dir.str(), bad), nerf::Error);

	// A regular file where the output folder should be.
	const fs::path blocker = dir.path / "blocker";
	std::ofstream(blocker) << "not a folder";
	const std::string target = (blocker / "scene").string();
	CHECK_THROWS_WITH(nerf::write_builtin_scene(target, tiny_options()), Catch::Contains(blocker.string()));
	CHECK_FALSE(nerf::builtin_scene_exists(target));
}
