// DeepVoxels and LINEMOD loaders on small scenes written here, with every number checked against the
// files' contents, and their bad inputs.
#include "nerf/data/loaders.h"
#include "nerf/dataset.h"

#include "test_data_helpers.h"

#include <nlohmann/json.hpp>

#include <iomanip>
#include <sstream>

using data_test::orthonormality_error;
using data_test::pattern_value;
using data_test::require_error;
using data_test::TempDir;
using data_test::write_pattern_png;
using data_test::write_text;

namespace {

// A DeepVoxels camera-to-world (OpenCV axes) on a sphere of radius 1.5 + 0.1 i, looking at the origin.
std::array<double, 16> dv_pose(int i) {
	const double az = 0.4 * i, el = 0.3 + 0.05 * i, r = 1.5 + 0.1 * i;
	const double c[3] = {r * std::cos(el) * std::cos(az), r * std::cos(el) * std::sin(az), r * std::sin(el)};
	// forward (+z in OpenCV) towards the origin; x = forward x world-up; y = z x x.
	double f[3] = {-c[0] / r, -c[1] / r, -c[2] / r};
	double x[3] = {f[1] * 1 - f[2] * 0, f[2] * 0 - f[0] * 1, 0};  // f x (0, 0, 1)
	const double xn = std::sqrt(x[0] * x[0] + x[1] * x[1]);
	x[0] /= xn;
	x[1] /= xn;
	const double y[3] = {f[1] * x[2] - f[2] * x[1], f[2] * x[0] - f[0] * x[2], f[0] * x[1] - f[1] * x[0]};
	return {x[0], y[0], f[0], c[0], x[1], y[1], f[1], c[1], x[2], y[2], f[2], c[2], 0, 0, 0, 1};
}

void write_dv_split(const TempDir& dir, const std::string& split, int first, int count) {
	for (int k = 0; k < count; ++k) {
		char name[32];
		std::snprintf(name, sizeof(name), "%06d", k);
		std::ostringstream pose;
		pose << std::setprecision(17);
		const auto p = dv_pose(first + k);
		for (int j = 0; j < 16; ++j) pose << p[j] << (j % 4 == 3 ? "\n" : " ");
		write_text(dir / (split + "/greek/pose/" + name + ".txt"), pose.str());
		write_pattern_png(dir / (split + "/greek/rgb/" + name + ".png"), first + k, 8, 8, 3);
	}
}

// train 3 views (scene frames 0-2), validation 4 (3-6), test 5 (7-11); 8x8 images; calibrated at 16x16.
void write_dv_scene(const TempDir& dir) {
	write_text(dir / "train/greek/intrinsics.txt", "30.0 8.0 8.0 0.\n0. 0. 0.\n0.\n1.\n16 16\n");
	write_dv_split(dir, "train", 0, 3);
	write_dv_split(dir, "validation", 3, 4);
	write_dv_split(dir, "test", 7, 5);
}

} // namespace

TEST_CASE("deepvoxels: intrinsics, pose axes, splits and near/far", "[data][deepvoxels]") {
	TempDir dir("dv");
	write_dv_scene(dir);
	const nerf::Dataset ds = nerf::load_deepvoxels(dir.str(), "greek", /*testskip=*/2);
	REQUIRE(ds.H == 8);
	REQUIRE(ds.W == 8);
	CHECK(ds.focal == Approx(30.0 * 8 / 16).epsilon(1e-6));  // f scaled from the calibrated height to the image
	CHECK(ds.K[2] == 4.0f);
	// Splits: train all 3; validation frames 3, 5; test frames 7, 9, 11.
	CHECK(ds.i_train == std::vector<int>{0, 1, 2});
	CHECK(ds.i_val == std::vector<int>{3, 4});
	CHECK(ds.i_test == std::vector<int>{5, 6, 7});
	const int scene_frame[8] = {0, 1, 2, 3, 5, 7, 9, 11};
	double hemi_R = 0;
	for (int i = 0; i < 8; ++i) {
		const auto raw = dv_pose(scene_frame[i]);
		// OpenCV -> OpenGL camera axes: y and z columns negated, x and the centre kept.
		for (int r = 0; r < 3; ++r)
			for (int c = 0; c < 4; ++c)
				CHECK(ds.poses[i][4 * r + c] == Approx((c == 1 || c == 2 ? -1 : 1) * raw[4 * r + c]).margin(1e-6));
		CHECK(orthonormality_error(ds.poses[i]) < 1e-5);
		hemi_R += std::sqrt(raw[3] * raw[3] + raw[7] * raw[7] + raw[11] * raw[11]) / 8;
		CHECK(ds.image(i)[(3 * 8 + 5) * 3 + 1] == Approx(pattern_value(scene_frame[i], 3, 5, 1)).margin(1e-6));
	}
	CHECK(ds.near == Approx(hemi_R - 1).epsilon(1e-6));
	CHECK(ds.far == Approx(hemi_R + 1).epsilon(1e-6));
	REQUIRE(ds.render_poses.size() == 3);  // the test poses
	CHECK(ds.render_poses[1] == ds.poses[6]);

	nerf::Config cfg;
	cfg.dataset_type = "deepvoxels";
	cfg.datadir = dir.str();
	cfg.shape = "greek";
	cfg.testskip = 0;  // behaves as 1
	const nerf::Dataset all = nerf::load_dataset(cfg);
	CHECK(all.n_images() == 12);
}

TEST_CASE("deepvoxels: bad inputs fail naming the file and the problem", "[data][deepvoxels]") {
	TempDir dir("dv");
	write_dv_scene(dir);
	SECTION("unknown shape") {
		require_error([&] { nerf::load_deepvoxels(dir.str(), "vase", 1); }, {dir / "train/vase/intrinsics.txt", "cannot open"});
	}
	SECTION("short intrinsics") {
		write_text(dir / "train/greek/intrinsics.txt", "30.0 8.0\n");
		require_error([&] { nerf::load_deepvoxels(dir.str(), "greek", 1); }, {dir / "train/greek/intrinsics.txt", "f cx cy"});
	}
	SECTION("pose with 15 numbers") {
		write_text(dir / "validation/greek/pose/000001.txt", "1 0 0 0 0 1 0 0 0 0 1 0 0 0 0\n");
		require_error([&] { nerf::load_deepvoxels(dir.str(), "greek", 1); },
		              {dir / "validation/greek/pose/000001.txt", "16 numbers", "found 15"});
	}
	SECTION("NaN in a pose") {
		write_text(dir / "test/greek/pose/000002.txt", "1 0 0 nan 0 1 0 0 0 0 1 0 0 0 0 1\n");
		require_error([&] { nerf::load_deepvoxels(dir.str(), "greek", 1); }, {dir / "test/greek/pose/000002.txt", "non-finite"});
	}
	SECTION("more poses than images") {
		std::filesystem::remove(dir / "test/greek/rgb/000004.png");
		require_error([&] { nerf::load_deepvoxels(dir.str(), "greek", 1); }, {dir / "test/greek", "5 pose files", "4 images"});
	}
	SECTION("corrupt image") {
		write_text(dir / "train/greek/rgb/000001.png", "\x89PNG garbage");
		require_error([&] { nerf::load_deepvoxels(dir.str(), "greek", 1); }, {dir / "train/greek/rgb/000001.png", "cannot decode"});
	}
}

namespace {

// LINEMOD: Blender-style jsons with per-frame intrinsics; images at rgb/<split>_<k>.png (RGBA, 6x4).
void write_linemod_split(const TempDir& dir, const std::string& split, int first, int count, double near, double far) {
	nlohmann::json meta;
	meta["frames"] = nlohmann::json::array();
	for (int k = 0; k < count; ++k) {
		const int i = first + k;
		const std::string file = "rgb/" + split + "_" + std::to_string(k) + ".png";
		write_pattern_png(dir / file, i, 6, 4, 4);
		const double a = 0.2 * i;
		meta["frames"].push_back(
		    {{"file_path", file},
		     {"transform_matrix", {{std::cos(a), 0, std::sin(a), 0.1 * i}, {0, 1, 0, 0.2}, {-std::sin(a), 0, std::cos(a), 3}, {0, 0, 0, 1}}},
		     {"intrinsic_matrix", {{7.5 + i, 0, 2.9}, {0, 7.25 + i, 2.1}, {0, 0, 1}}}});
	}
	meta["near"] = near;
	meta["far"] = far;
	write_text(dir / ("transforms_" + split + ".json"), meta.dump(1));
}

void write_linemod_scene(const TempDir& dir) {
	write_linemod_split(dir, "train", 0, 2, 0.6, 9.4);
	write_linemod_split(dir, "val", 2, 3, -5.0, 50.0);  // val's near/far are not read
	write_linemod_split(dir, "test", 5, 2, 1.7, 8.3);
}

} // namespace

TEST_CASE("linemod: per-frame intrinsics, near/far from the test json, splits, half_res", "[data][linemod]") {
	TempDir dir("linemod");
	write_linemod_scene(dir);
	const nerf::Dataset ds = nerf::load_linemod(dir.str(), false, /*testskip=*/2, /*white_bkgd=*/true);
	REQUIRE(ds.H == 4);
	REQUIRE(ds.W == 6);
	CHECK(ds.i_train == std::vector<int>{0, 1});
	CHECK(ds.i_val == std::vector<int>{2, 3});  // val frames 0 and 2
	CHECK(ds.i_test == std::vector<int>{4});
	// K and focal: the first test frame's intrinsic_matrix (scene frame 5).
	CHECK(ds.focal == Approx(12.5));
	const float K[9] = {12.5f, 0, 2.9f, 0, 12.25f, 2.1f, 0, 0, 1};
	for (int k = 0; k < 9; ++k) CHECK(ds.K[k] == Approx(K[k]));
	CHECK(ds.near == 0.0f);   // floor(min(train 0.6, test 1.7))
	CHECK(ds.far == 10.0f);   // ceil(max(train 9.4, test 8.3))
	CHECK(ds.poses[3][3] == Approx(0.4));  // val frame 2 = scene frame 4
	const float v = pattern_value(4, 1, 2, 0), a = pattern_value(4, 1, 2, 3);
	CHECK(ds.image(3)[(1 * 6 + 2) * 3] == Approx(v * a + 1 - a).margin(1e-6));
	CHECK(ds.render_poses.size() == 40);

	const nerf::Dataset half = nerf::load_linemod(dir.str(), true, 1, false);
	CHECK(half.H == 2);
	CHECK(half.W == 3);
	CHECK(half.focal == Approx(6.25));
	CHECK(half.K[0] == Approx(6.25));
	CHECK(half.K[2] == Approx(1.45));
	CHECK(half.K[5] == Approx(1.05));
	CHECK(half.K[8] == 1.0f);
	double mean = 0;
	for (int d = 0; d < 4; ++d) mean += 0.25 * pattern_value(0, d / 2, 2 + d % 2, 1);
	CHECK(half.image(0)[1 * 3 + 1] == Approx(mean).margin(1e-6));
}

TEST_CASE("linemod: bad inputs fail naming the file and the problem", "[data][linemod]") {
	TempDir dir("linemod");
	write_linemod_scene(dir);
	SECTION("missing test json") {
		std::filesystem::remove(dir / "transforms_test.json");
		require_error([&] { nerf::load_linemod(dir.str(), false, 1, false); }, {dir / "transforms_test.json", "cannot open"});
	}
	SECTION("no intrinsic_matrix") {
		write_text(dir / "transforms_test.json",
		           R"({"near": 1, "far": 2, "frames": [{"file_path": "rgb/test_0.png", "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]})");
		require_error([&] { nerf::load_linemod(dir.str(), false, 1, false); }, {dir / "transforms_test.json", "intrinsic_matrix"});
	}
	SECTION("missing image") {
		std::filesystem::remove(dir / "rgb/val_1.png");
		require_error([&] { nerf::load_linemod(dir.str(), false, 1, false); }, {"rgb/val_1.png", "cannot open"});
	}
}
