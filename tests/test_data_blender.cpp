// Blender loader: a tiny scene written here with known pixels and poses, the bad inputs it must name,
// and the shared lego scene (half_res of the 800x800 files against the 400x400 box-filtered copy).
#include "nerf/data/loaders.h"
#include "nerf/dataset.h"

#include "test_data_helpers.h"

#include <nlohmann/json.hpp>

using data_test::pattern_value;
using data_test::require_error;
using data_test::TempDir;
using data_test::write_pattern_png;
using data_test::write_text;

namespace {

constexpr double kAngle = 0.8;

// The pose of frame `i`: a rotation about z by 0.3 i and a translation, with the bottom row.
nlohmann::json frame_matrix(int i) {
	const double a = 0.3 * i, c = std::cos(a), s = std::sin(a);
	return nlohmann::json::array({nlohmann::json::array({c, -s, 0.0, 0.5 * i}), nlohmann::json::array({s, c, 0.0, -1.0}),
	                              nlohmann::json::array({0.0, 0.0, 1.0, 4.0 + i}), nlohmann::json::array({0.0, 0.0, 0.0, 1.0})});
}

// transforms_<split>.json with frames first..first+count-1 (images <split>/r_<k>.png), and the PNGs.
void write_split(const TempDir& dir, const std::string& split, int first, int count, int w, int h,
                 bool write_images = true) {
	nlohmann::json meta;
	meta["camera_angle_x"] = kAngle;
	meta["frames"] = nlohmann::json::array();
	for (int k = 0; k < count; ++k) {
		const int i = first + k;
		meta["frames"].push_back({{"file_path", "./" + split + "/r_" + std::to_string(k)}, {"rotation", 0.1},
		                          {"transform_matrix", frame_matrix(i)}});
		if (write_images) write_pattern_png(dir / (split + "/r_" + std::to_string(k) + ".png"), i, w, h, 4);
	}
	write_text(dir / ("transforms_" + split + ".json"), meta.dump(2));
}

// 3 train and 4 val frames of 6x4 RGBA; no transforms_test.json.
void write_scene(const TempDir& dir) {
	write_split(dir, "train", 0, 3, 6, 4);
	write_split(dir, "val", 3, 4, 6, 4);
}

float rgb_of(int image, int row, int col, int k, bool white) {
	const float v = pattern_value(image, row, col, k), a = pattern_value(image, row, col, 3);
	return white ? v * a + (1.0f - a) : v;
}

} // namespace

TEST_CASE("blender: splits, testskip, focal, K, poses and pixels of a small scene", "[data][blender]") {
	TempDir dir("blender");
	write_scene(dir);
	const nerf::Dataset ds = nerf::load_blender(dir.str(), /*half_res=*/false, /*testskip=*/2, /*white_bkgd=*/false);
	REQUIRE(ds.H == 4);
	REQUIRE(ds.W == 6);
	// train takes every frame; val every 2nd (frames 3 and 5); test is missing, so empty.
	REQUIRE(ds.n_images() == 5);
	CHECK(ds.i_train == std::vector<int>{0, 1, 2});
	CHECK(ds.i_val == std::vector<int>{3, 4});
	CHECK(ds.i_test.empty());
	const double focal = 0.5 * 6 / std::tan(0.5 * kAngle);
	CHECK(ds.focal == Approx(focal).epsilon(1e-6));
	CHECK(ds.K[0] == Approx(focal).epsilon(1e-6));
	CHECK(ds.K[4] == Approx(focal).epsilon(1e-6));
	CHECK(ds.K[2] == 3.0f);
	CHECK(ds.K[5] == 2.0f);
	CHECK(ds.K[8] == 1.0f);
	CHECK(ds.near == 2.0f);
	CHECK(ds.far == 6.0f);
	CHECK_FALSE(ds.ndc);
	CHECK(ds.bounds.empty());
	// Dataset index 4 is val frame 2, i.e. scene frame 5.
	const auto m = frame_matrix(5);
	for (int r = 0; r < 3; ++r)
		for (int c = 0; c < 4; ++c) CHECK(ds.poses[4][4 * r + c] == Approx(m[r][c].get<double>()).margin(1e-6));
	// Pixels: RGB as stored (alpha dropped) without white_bkgd.
	const int scene_frame[5] = {0, 1, 2, 3, 5};
	double worst = 0;
	for (int i = 0; i < 5; ++i)
		for (int r = 0; r < 4; ++r)
			for (int c = 0; c < 6; ++c)
				for (int k = 0; k < 3; ++k)
					worst = std::max(worst, (double)std::abs(ds.image(i)[(r * 6 + c) * 3 + k] - rgb_of(scene_frame[i], r, c, k, false)));
	CHECK(worst < 1e-6);

	// testskip 0 behaves as 1.
	const nerf::Dataset all = nerf::load_blender(dir.str(), false, 0, false);
	CHECK(all.i_val == std::vector<int>{3, 4, 5, 6});
}

TEST_CASE("blender: white_bkgd composites rgb * a + (1 - a)", "[data][blender]") {
	TempDir dir("blender");
	write_scene(dir);
	const nerf::Dataset ds = nerf::load_blender(dir.str(), false, 1, true);
	double worst = 0;
	for (int i = 0; i < 7; ++i)
		for (int r = 0; r < 4; ++r)
			for (int c = 0; c < 6; ++c)
				for (int k = 0; k < 3; ++k)
					worst = std::max(worst, (double)std::abs(ds.image(i)[(r * 6 + c) * 3 + k] - rgb_of(i, r, c, k, true)));
	CHECK(worst < 1e-6);
}

TEST_CASE("blender: half_res halves H, W and focal and averages 2x2 blocks of RGBA before compositing", "[data][blender]") {
	TempDir dir("blender");
	write_scene(dir);
	const nerf::Dataset ds = nerf::load_blender(dir.str(), true, 1, true);
	REQUIRE(ds.H == 2);
	REQUIRE(ds.W == 3);
	CHECK(ds.focal == Approx(0.5 * 0.5 * 6 / std::tan(0.5 * kAngle)).epsilon(1e-6));
	CHECK(ds.K[2] == 1.5f);
	CHECK(ds.K[5] == 1.0f);
	double worst = 0;
	for (int i = 0; i < 7; ++i)
		for (int r = 0; r < 2; ++r)
			for (int c = 0; c < 3; ++c) {
				float mean[4] = {0, 0, 0, 0};
				for (int k = 0; k < 4; ++k)
					for (int dr = 0; dr < 2; ++dr)
						for (int dc = 0; dc < 2; ++dc) mean[k] += 0.25f * pattern_value(i, 2 * r + dr, 2 * c + dc, k);
				for (int k = 0; k < 3; ++k) {
					const float expected = mean[k] * mean[3] + (1.0f - mean[3]);
					worst = std::max(worst, (double)std::abs(ds.image(i)[(r * 3 + c) * 3 + k] - expected));
				}
			}
	CHECK(worst < 1e-6);
}

TEST_CASE("blender: the render path circles at radius 4, 30 degrees up, 9 degrees apart", "[data][blender]") {
	const auto path = nerf::blender_render_path();
	REQUIRE(path.size() == 40);
	const double ring = 4.0 * std::cos(30.0 * M_PI / 180.0);
	for (int i = 0; i < 40; ++i) {
		const auto& p = path[i];
		INFO("view " << i);
		// Worked out from pose_spherical: centre = (ring sin(theta), ring cos(theta), 4 sin 30deg).
		const double theta = (-180.0 + 9.0 * i) * M_PI / 180.0;
		CHECK(p[3] == Approx(ring * std::sin(theta)).margin(1e-5));
		CHECK(p[7] == Approx(ring * std::cos(theta)).margin(1e-5));
		CHECK(p[11] == Approx(2.0).margin(1e-5));
		// The camera looks at the origin: its +z axis (backwards) points from the origin to the centre.
		for (int k = 0; k < 3; ++k) CHECK(p[4 * k + 2] == Approx(p[4 * k + 3] / 4.0).margin(1e-5));
		CHECK(p[8] == Approx(0.0).margin(1e-6));  // x axis horizontal
		CHECK(data_test::orthonormality_error(p) < 1e-5);
	}
}

TEST_CASE("blender: bad inputs fail naming the file and the problem", "[data][blender]") {
	SECTION("missing folder") {
		require_error([] { nerf::load_blender("/nonexistent/nerf_scene", false, 1, false); },
		              {"/nonexistent/nerf_scene", "does not exist"});
	}
	SECTION("missing image") {
		TempDir dir("blender");
		write_scene(dir);
		std::filesystem::remove(dir / "val/r_2.png");
		require_error([&] { nerf::load_blender(dir.str(), false, 1, false); }, {dir / "val/r_2.png", "cannot open"});
	}
	SECTION("images of different sizes") {
		TempDir dir("blender");
		write_scene(dir);
		write_pattern_png(dir / "train/r_1.png", 1, 8, 4, 4);
		require_error([&] { nerf::load_blender(dir.str(), false, 1, false); }, {dir / "train/r_1.png", "8x4", "6x4"});
	}
	SECTION("a split of another size") {
		TempDir dir("blender");
		write_split(dir, "train", 0, 2, 6, 4);
		write_split(dir, "val", 2, 2, 4, 4);
		require_error([&] { nerf::load_blender(dir.str(), false, 1, false); }, {dir / "val/r_0.png", "4x4", "6x4"});
	}
	SECTION("malformed JSON") {
		TempDir dir("blender");
		write_scene(dir);
		write_text(dir / "transforms_val.json", "{\"camera_angle_x\": 0.8, \"frames\": [ {\"file_path\": ");
		require_error([&] { nerf::load_blender(dir.str(), false, 1, false); }, {dir / "transforms_val.json", "malformed JSON"});
	}
	SECTION("missing train json") {
		TempDir dir("blender");
		write_split(dir, "val", 0, 2, 6, 4);
		require_error([&] { nerf::load_blender(dir.str(), false, 1, false); }, {dir / "transforms_train.json", "cannot open"});
	}
	SECTION("infinite or non-numeric pose values") {
		TempDir dir("blender");
		write_scene(dir);
		// JSON has no NaN or inf literals: an overflowing number is how an infinity arrives.
		std::ifstream in(dir / "transforms_train.json");
		std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
		in.close();
		const size_t at = text.find("4.0");
		REQUIRE(at != std::string::npos);
		write_text(dir / "transforms_train.json", text.substr(0, at) + "4e999" + text.substr(at + 3));
		require_error([&] { nerf::load_blender(dir.str(), false, 1, false); }, {dir / "transforms_train.json", "overflow"});
		write_text(dir / "transforms_train.json", text.substr(0, at) + "\"nan\"" + text.substr(at + 3));
		require_error([&] { nerf::load_blender(dir.str(), false, 1, false); },
		              {dir / "transforms_train.json", "frame 0 transform_matrix", "non-number"});
	}
	SECTION("a 3x4 transform_matrix") {
		TempDir dir("blender");
		write_scene(dir);
		nlohmann::json meta;
		meta["camera_angle_x"] = kAngle;
		auto m = frame_matrix(0);
		m.erase(3);
		meta["frames"] = {{{"file_path", "./train/r_0"}, {"transform_matrix", m}}};
		write_text(dir / "transforms_train.json", meta.dump());
		require_error([&] { nerf::load_blender(dir.str(), false, 1, false); }, {dir / "transforms_train.json", "4x4"});
	}
	SECTION("corrupt PNG") {
		TempDir dir("blender");
		write_scene(dir);
		write_text(dir / "train/r_2.png", std::string("\x89PNG\r\n\x1a\n", 8) + "this is not a PNG stream at all");
		require_error([&] { nerf::load_blender(dir.str(), false, 1, false); }, {dir / "train/r_2.png", "cannot decode"});
	}
	SECTION("unknown dataset_type") {
		nerf::Config cfg;
		cfg.dataset_type = "colmap";
		require_error([&] { nerf::load_dataset(cfg); }, {"colmap", "dataset_type"});
	}
}

TEST_CASE("blender: lego at half_res equals lego_400 within 1/255", "[data][blender][shared]") {
	const std::string lego = data_test::shared_scene("nerf_synthetic/lego");
	const std::string lego_400 = data_test::shared_scene("nerf_synthetic/lego_400");
	if (lego.empty() || lego_400.empty()) return;
	// Four val frames (0, 25, 50, 75) keep this to a fraction of a second.
	const nerf::BlenderSplit half = nerf::load_blender_split(lego, "val", 25, /*half_res=*/true);
	const nerf::BlenderSplit stored = nerf::load_blender_split(lego_400, "val", 25, /*half_res=*/false);
	REQUIRE(half.poses.size() == 4);
	REQUIRE(stored.poses.size() == 4);
	REQUIRE(half.H == 400);
	REQUIRE(half.W == 400);
	REQUIRE(half.stored_W == 800);
	REQUIRE(stored.H == 400);
	REQUIRE(stored.W == 400);
	CHECK(half.camera_angle_x == stored.camera_angle_x);
	for (size_t i = 0; i < 4; ++i) CHECK(half.poses[i] == stored.poses[i]);
	// RGBA before compositing; lego_400 is the float mean of each 2x2 block rounded to 8 bits, so the
	// difference is the rounding (<= 0.5/255) plus float error.
	double worst = 0, sum = 0;
	for (size_t k = 0; k < half.rgba.size(); ++k) {
		const double d = std::abs((double)half.rgba[k] - stored.rgba[k]);
		worst = std::max(worst, d);
		sum += d;
	}
	const double largest_in_levels = worst * 255.0;
	const double mean_in_levels = sum / half.rgba.size() * 255.0;
	CAPTURE(largest_in_levels, mean_in_levels);
	CHECK(largest_in_levels <= 1.0);
	CHECK(mean_in_levels < 0.5);

	// The whole lego_400 scene through load_dataset: focal from camera_angle_x, splits, white background.
	nerf::Config cfg;
	cfg.dataset_type = "blender";
	cfg.datadir = lego_400;
	cfg.testskip = 50;
	cfg.white_bkgd = true;
	const nerf::Dataset ds = nerf::load_dataset(cfg);
	CHECK(ds.H == 400);
	CHECK(ds.W == 400);
	CHECK(ds.focal == Approx(0.5 * 400 / std::tan(0.5 * 0.6911112070083618)).epsilon(1e-6));
	CHECK(ds.i_train.size() == 100);
	CHECK(ds.i_val == std::vector<int>{100, 101});
	CHECK(ds.i_test.empty());
	for (const auto& p : ds.poses) CHECK(data_test::orthonormality_error(p) < 1e-5);
	// lego's background is transparent: with white_bkgd the corner pixel is white.
	CHECK(ds.image(0)[0] == Approx(1.0f).margin(1e-6));
}
