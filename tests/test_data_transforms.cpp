// transforms.json scenes (dataset_type transforms): instant-ngp's and nerfstudio's fields read into per-image
// cameras, the factor with and without images_N/, the documented pose normalisation and near/far, the bad
// inputs it must name, and beer's COLMAP model converted to transforms.json against its poses_bounds.npy.
#include "nerf/data/colmap.h"
#include "nerf/data/loaders.h"
#include "nerf/io/npy.h"

#include "test_data_helpers.h"

#include <Eigen/Dense>
#include <nlohmann/json.hpp>

using data_test::pattern_value;
using data_test::require_error;
using data_test::TempDir;
using data_test::write_pattern_png;
using data_test::write_text;

namespace {

nlohmann::json identity_matrix(double tx = 0, double ty = 0, double tz = 0) {
	return {{1, 0, 0, tx}, {0, 1, 0, ty}, {0, 0, 1, tz}, {0, 0, 0, 1}};
}

// Three frames written out of order, with instant-ngp's global fields and nerfstudio's per-frame ones:
//   a/img0.png 6x4: only the top level (camera_angle_x, k1 -> OPENCV by default, cx/cy default to the centre)
//   b/img1     8x6: its own fl_x, fl_y, cx, cy, w, h, k1, p1 (file_path without extension)
//   c/img2.png 8x8: OPENCV_FISHEYE, fl_x and camera_angle_y of its own
void write_mixed_scene(const TempDir& dir) {
	write_pattern_png(dir / "a/img0.png", 0, 6, 4, 3);
	write_pattern_png(dir / "b/img1.png", 1, 8, 6, 4);
	write_pattern_png(dir / "c/img2.png", 2, 8, 8, 3);
	nlohmann::json meta;
	meta["camera_angle_x"] = 1.0;
	meta["k1"] = 0.05;
	meta["frames"] = {
	    {{"file_path", "c/img2.png"}, {"transform_matrix", identity_matrix(0, 0, 2)}, {"camera_model", "OPENCV_FISHEYE"},
	     {"fl_x", 7.0}, {"camera_angle_y", 0.9}, {"k1", 0.01}, {"k2", -0.002}, {"k3", 0.0005}, {"k4", -0.0001}},
	    {{"file_path", "a/img0.png"}, {"transform_matrix", identity_matrix(1, 0, 0)}},
	    {{"file_path", "b/img1"}, {"transform_matrix", identity_matrix(0, 1, 0)}, {"fl_x", 10.0}, {"fl_y", 11.0},
	     {"cx", 4.5}, {"cy", 2.5}, {"w", 8}, {"h", 6}, {"k1", 0.02}, {"p1", 0.001}},
	};
	write_text(dir / "transforms.json", meta.dump(1));
}

double mean_of_block(int image, int row0, int col0, int size, int channel) {
	double sum = 0;
	for (int r = 0; r < size; ++r)
		for (int c = 0; c < size; ++c) sum += pattern_value(image, row0 + r, col0 + c, channel);
	return sum / (size * size);
}

Eigen::Vector3d position(const nerf::Pose& p) { return {p[3], p[7], p[11]}; }
Eigen::Matrix3d rotation(const nerf::Pose& p) {
	Eigen::Matrix3d R;
	for (int r = 0; r < 3; ++r)
		for (int c = 0; c < 3; ++c) R(r, c) = p[4 * r + c];
	return R;
}

// Four cameras on a circle about world +y (y up, as COLMAP-made worlds often are), at height 1, looking at
// the circle's axis: frame k at angle 90 k degrees, position (2 sin a, 1, 2 cos a).
std::vector<Eigen::Matrix4d> circle_poses() {
	std::vector<Eigen::Matrix4d> poses;
	for (int k = 0; k < 4; ++k) {
		const double a = k * M_PI / 2;
		Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
		m.col(0).head<3>() = Eigen::Vector3d(std::cos(a), 0, -std::sin(a));
		m.col(1).head<3>() = Eigen::Vector3d(0, 1, 0);
		m.col(2).head<3>() = Eigen::Vector3d(std::sin(a), 0, std::cos(a));
		m.col(3).head<3>() = Eigen::Vector3d(2 * std::sin(a), 1, 2 * std::cos(a));
		poses.push_back(m);
	}
	return poses;
}

nlohmann::json matrix_json(const Eigen::Matrix4d& m) {
	nlohmann::json rows = nlohmann::json::array();
	for (int r = 0; r < 4; ++r) rows.push_back({m(r, 0), m(r, 1), m(r, 2), m(r, 3)});
	return rows;
}

void write_circle_scene(const TempDir& dir, const nlohmann::json& extra = nlohmann::json::object()) {
	nlohmann::json meta = extra;
	meta["fl_x"] = 3.0;
	const auto poses = circle_poses();
	for (int k = 0; k < 4; ++k) {
		const std::string file = "images/frame_" + std::to_string(k) + ".png";
		write_pattern_png(dir / file, k, 4, 3, 3);
		meta["frames"].push_back({{"file_path", file}, {"transform_matrix", matrix_json(poses[k])}});
	}
	write_text(dir / "transforms.json", meta.dump());
}

} // namespace

TEST_CASE("transforms: instant-ngp's and nerfstudio's fields give per-image cameras, sizes and lenses", "[data][transforms]") {
	TempDir dir("transforms_fields");
	write_mixed_scene(dir);
	const nerf::Dataset ds = nerf::load_transforms(dir.str(), /*factor=*/1, /*llffhold=*/0, /*white_bkgd=*/false);
	REQUIRE(ds.n_images() == 3);
	REQUIRE(ds.cameras.size() == 3);
	// Sorted by file_path, as nerfstudio; the path without extension found with .png.
	CHECK(ds.image_paths[0] == dir / "a/img0.png");
	CHECK(ds.image_paths[1] == dir / "b/img1.png");
	CHECK(ds.image_paths[2] == dir / "c/img2.png");
	CHECK(ds.i_train == std::vector<int>{0, 1, 2});
	CHECK(ds.i_test.empty());

	const nerf::Camera& a = ds.cameras[0];
	CHECK(a.W == 6);
	CHECK(a.H == 4);
	CHECK(a.fx == Approx(0.5 * 6 / std::tan(0.5)).epsilon(1e-6));  // from camera_angle_x and the file's width
	CHECK(a.fy == Approx(a.fx).epsilon(1e-7));                       // square pixels when only x is given
	CHECK(a.cx == 3.0f);
	CHECK(a.cy == 2.0f);
	CHECK(a.lens.model == nerf::LensModel::OpenCV);  // k1 present, no camera_model
	CHECK(a.lens.k1 == 0.05f);
	CHECK(a.pixel_centers);
	CHECK(a.first_pixel == 0);

	const nerf::Camera& b = ds.cameras[1];
	CHECK(b.W == 8);
	CHECK(b.H == 6);
	CHECK(b.fx == 10.0f);
	CHECK(b.fy == 11.0f);
	CHECK(b.cx == 4.5f);
	CHECK(b.cy == 2.5f);
	CHECK(b.lens.model == nerf::LensModel::OpenCV);
	CHECK(b.lens.k1 == 0.02f);
	CHECK(b.lens.p1 == 0.001f);
	CHECK(b.first_pixel == 24);

	const nerf::Camera& c = ds.cameras[2];
	CHECK(c.lens.model == nerf::LensModel::OpenCVFisheye);
	CHECK(c.fx == 7.0f);
	CHECK(c.fy == Approx(0.5 * 8 / std::tan(0.45)).epsilon(1e-6));
	CHECK(c.lens.k1 == 0.01f);
	CHECK(c.lens.k4 == -0.0001f);
	CHECK(c.first_pixel == 24 + 48);
	REQUIRE(ds.images.size() == 3 * (24 + 48 + 64));

	// Pixels where their camera says (RGBA dropped to RGB without white_bkgd).
	CHECK(ds.image(1)[3 * (2 * 8 + 5) + 1] == pattern_value(1, 2, 5, 1));
	CHECK(ds.image(2)[3 * (7 * 8 + 7) + 2] == pattern_value(2, 7, 7, 2));
	CHECK(ds.H == 4);  // the first image's
	CHECK(ds.W == 6);
	CHECK(ds.K[0] == a.fx);
	CHECK(ds.K[2] == a.cx);

	SECTION("factor 2 downsamples in-process and scales the intrinsics with the size") {
		const nerf::Dataset half = nerf::load_transforms(dir.str(), 2, 0, false);
		const nerf::Camera& hb = half.cameras[1];
		CHECK(hb.W == 4);
		CHECK(hb.H == 3);
		CHECK(hb.fx == 5.0f);
		CHECK(hb.fy == 5.5f);
		CHECK(hb.cx == 2.25f);  // pixel centres: the principal point scales with the image
		CHECK(hb.cy == 1.25f);
		CHECK(hb.lens.k1 == 0.02f);  // distortion acts on normalised coordinates: unchanged
		CHECK(half.cameras[0].W == 3);
		CHECK(half.cameras[2].first_pixel == 6 + 12);
		CHECK(half.image(1)[3 * (1 * 4 + 2) + 0] == Approx(mean_of_block(1, 2, 4, 2, 0)).margin(1e-6));
	}
	SECTION("factor 2 with images_2/ reads the copies there (nerfstudio's layout) and scales by their size") {
		write_pattern_png(dir / "images_2/img0.png", 10, 3, 2, 3);
		write_pattern_png(dir / "images_2/img1.png", 11, 4, 3, 3);
		write_pattern_png(dir / "images_2/img2.png", 12, 4, 4, 3);
		const nerf::Dataset half = nerf::load_transforms(dir.str(), 2, 0, false);
		CHECK(half.image_paths[1] == dir / "images_2/img1.png");
		CHECK(half.cameras[1].fx == 5.0f);
		CHECK(half.image(1)[3 * 5 + 2] == pattern_value(11, 1, 1, 2));
	}
}

TEST_CASE("transforms: poses centred on the cameras, mean up +z, cameras in [-1, 1]^3, near/far, llffhold, path",
          "[data][transforms]") {
	TempDir dir("transforms_poses");
	write_circle_scene(dir);
	const nerf::Dataset ds = nerf::load_transforms(dir.str(), 1, /*llffhold=*/2, false);
	REQUIRE(ds.n_images() == 4);
	const auto input = circle_poses();
	Eigen::Vector3d centroid = Eigen::Vector3d::Zero();
	double extent = 0;
	for (size_t i = 0; i < 4; ++i) {
		INFO("frame " << i);
		centroid += position(ds.poses[i]) / 4.0;
		extent = std::max(extent, position(ds.poses[i]).cwiseAbs().maxCoeff());
		// Every camera's up vector was world +y; it is now +z.
		CHECK((rotation(ds.poses[i]).col(1) - Eigen::Vector3d::UnitZ()).norm() < 1e-6);
		CHECK(data_test::orthonormality_error(ds.poses[i]) < 1e-6);
		for (size_t j = 0; j < 4; ++j) {
			// A similarity: distances halve (the cameras' extent was 2), relative rotations stay.
			const double before = (input[i].col(3) - input[j].col(3)).norm();
			CHECK((position(ds.poses[i]) - position(ds.poses[j])).norm() == Approx(before / 2).margin(1e-6));
			const Eigen::Matrix3d rel_before = input[i].topLeftCorner<3, 3>().transpose() * input[j].topLeftCorner<3, 3>();
			const Eigen::Matrix3d rel_after = rotation(ds.poses[i]).transpose() * rotation(ds.poses[j]);
			CHECK((rel_before - rel_after).cwiseAbs().maxCoeff() < 1e-6);
		}
	}
	CHECK(centroid.norm() < 1e-6);
	CHECK(extent == Approx(1.0).epsilon(1e-6));
	// near 0.05; far reaches the farthest corner of [-1, 1]^3 from a camera at distance 1 along an axis:
	// |(2, 1, 1)| = sqrt(6).
	CHECK(ds.near == 0.05f);
	CHECK(ds.far == Approx(std::sqrt(6.0)).epsilon(1e-6));
	CHECK_FALSE(ds.ndc);
	CHECK(ds.i_test == std::vector<int>{0, 2});
	CHECK(ds.i_val == std::vector<int>{0, 2});
	CHECK(ds.i_train == std::vector<int>{1, 3});
	REQUIRE(ds.render_poses.size() == 120);
	for (int k = 0; k < 12; ++k) {
		CHECK(ds.render_poses.front()[k] == Approx(ds.poses.front()[k]).margin(1e-6));
		CHECK(ds.render_poses.back()[k] == Approx(ds.poses.back()[k]).margin(1e-6));
	}
	for (const auto& p : ds.render_poses) CHECK(data_test::orthonormality_error(p) < 1e-5);

	SECTION("aabb_scale widens the box far reaches") {
		TempDir wide("transforms_aabb");
		write_circle_scene(wide, {{"aabb_scale", 2}});
		const nerf::Dataset w = nerf::load_transforms(wide.str(), 1, 2, false);
		CHECK(w.far == Approx(std::sqrt(9.0 + 4.0 + 4.0)).epsilon(1e-6));  // |(3, 2, 2)| from a camera at (+-1, 0, 0)
	}
	SECTION("near and far options override, through load_dataset") {
		nerf::Config cfg;
		cfg.dataset_type = "transforms";
		cfg.datadir = dir.str();
		cfg.factor = 1;
		cfg.near = 0.5f;
		cfg.far = 2.5f;
		const nerf::Dataset o = nerf::load_dataset(cfg);
		CHECK(o.near == 0.5f);
		CHECK(o.far == 2.5f);
		cfg.far = 0.25f;
		require_error([&] { nerf::load_dataset(cfg); }, {dir.str(), "far (0.25) must exceed near (0.5)"});
	}
}

TEST_CASE("transforms: bad inputs name the file and the field", "[data][transforms][errors]") {
	TempDir dir("transforms_bad");
	const std::string json = dir / "transforms.json";
	write_pattern_png(dir / "images/a.png", 0, 8, 6, 3);
	auto write = [&](nlohmann::json frame, nlohmann::json top = nlohmann::json::object()) {
		if (!frame.contains("file_path")) frame["file_path"] = "images/a.png";
		if (!frame.contains("transform_matrix")) frame["transform_matrix"] = identity_matrix();
		if (!top.contains("fl_x") && !frame.contains("fl_x") && !frame.contains("camera_angle_x")) top["fl_x"] = 5.0;
		top["frames"] = {frame};
		write_text(json, top.dump());
	};
	auto load = [&] { nerf::load_transforms(dir.str(), 1, 0, false); };

	write({{"file_path", "images/missing.png"}});
	require_error(load, {json, "frame 0 field 'file_path'", "images/missing.png", "does not exist"});
	write({{"file_path", "images/missing"}});
	require_error(load, {json, "frame 0 field 'file_path'", "also with .png"});
	write_text(dir / "images/broken.png", "not a png");
	write({{"file_path", "images/broken.png"}});
	require_error(load, {json, "frame 0 field 'file_path'", "images/broken.png"});

	write({{"w", 10}, {"h", 6}});
	require_error(load, {json, "frame 0 fields 'w'/'h' say 10x6", "images/a.png is 8x6"});

	write({{"transform_matrix", {{2, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, 2, 0}, {0, 0, 0, 1}}}});
	require_error(load, {json, "frame 0 field 'transform_matrix' is not a rigid transform"});
	write({{"transform_matrix", {{-1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}}});  // a mirror
	require_error(load, {json, "'transform_matrix' is not a rigid transform"});
	write({{"transform_matrix", {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}}});
	require_error(load, {json, "'transform_matrix' is not a 4x4 array"});
	// Python's json.dump writes NaN as a bare word.
	write_text(json, R"({"fl_x": 5, "frames": [{"file_path": "images/a.png", "transform_matrix":
	                    [[1, 0, 0, NaN], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}]})");
	require_error(load, {json, "frame 0 field 'transform_matrix' is NaN at [0][3]"});
	write_text(json, R"({"fl_x": NaN, "frames": [{"file_path": "images/a.png", "transform_matrix":
	                    [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}]})");
	require_error(load, {json, "field 'fl_x' is not a number (\"NaN\")"});
	write({{"transform_matrix", nullptr}});
	require_error(load, {json, "'transform_matrix' is not a 4x4 array"});

	write({{"camera_model", "EQUIRECTANGULAR"}});
	require_error(load, {json, "frame 0 field 'camera_model' is 'EQUIRECTANGULAR'", "not a supported camera model"});
	write({{"camera_model", "PINHOLE"}, {"k1", 0.1}});
	require_error(load, {json, "frame 0", "PINHOLE has distortion coefficients"});
	write({{"camera_model", "OPENCV_FISHEYE"}, {"p1", 0.01}});
	require_error(load, {json, "frame 0", "p1/p2"});
	write({{"k1", -2.0}});  // folds over well inside the image
	require_error(load, {json, "frame 0 (images/a.png)", "cannot be inverted"});

	write({}, {{"fl_x", nullptr}});
	require_error(load, {json, "frame 0", "missing intrinsics"});
	write({{"fl_x", "wide"}});
	require_error(load, {json, "frame 0 field 'fl_x' is not a number"});
	write({{"fl_y", -3.0}});
	require_error(load, {json, "frame 0 field 'fl_y' must be positive"});
	write({{"file_path", 5}});
	require_error(load, {json, "frame 0 field 'file_path' is not a string"});

	write_text(json, R"({"fl_x": 5, "frames": []})");
	require_error(load, {json, "non-empty 'frames'"});
	write_text(json, "{\"frames\": [");
	require_error(load, {json, "malformed JSON"});
	std::filesystem::remove(json);
	require_error(load, {json, "no transforms.json"});

	write({});
	std::filesystem::create_directories(dir / "images_2");
	require_error([&] { nerf::load_transforms(dir.str(), 2, 0, false); },
	              {json, "frame 0", "no downsampled copy", "images_2/a.png"});
}

TEST_CASE("transforms: factor 0, the default, downsamples as nerfstudio: the smallest power of two that brings the "
          "longer side to at most 1600 pixels", "[data][transforms]") {
	// Four frames of the given sizes (cycled), fl_x 800 at their own size.
	auto write_sized_scene = [](const TempDir& dir, const std::vector<std::pair<int, int>>& sizes) {
		nlohmann::json meta;
		meta["fl_x"] = 800.0;
		const auto poses = circle_poses();
		for (int k = 0; k < 4; ++k) {
			const auto [w, h] = sizes[k % sizes.size()];
			const std::string file = "images/frame_" + std::to_string(k) + ".png";
			write_pattern_png(dir / file, k, w, h, 3);
			meta["frames"].push_back({{"file_path", file}, {"transform_matrix", matrix_json(poses[k])}});
		}
		write_text(dir / "transforms.json", meta.dump());
	};
	struct Case {
		std::vector<std::pair<int, int>> sizes;
		int factor;
	};
	// The instant-ngp fox's 1920x1080 loads at 960x540 (factor 8 made it 240x135).
	for (const Case& c : std::vector<Case>{{{{1600, 8}}, 1}, {{{1601, 8}}, 2}, {{{1920, 4}}, 2}, {{{3300, 8}}, 4},
	                                       {{{8, 1700}}, 2}, {{{1700, 8}, {800, 6}}, 2}}) {
		TempDir dir("transforms_auto_factor");
		write_sized_scene(dir, c.sizes);
		const nerf::Dataset ds = nerf::load_transforms(dir.str(), /*factor=*/0, /*llffhold=*/0, false);
		INFO(c.sizes[0].first << "x" << c.sizes[0].second << " -> factor " << c.factor << ": " << ds.resize_note);
		for (size_t i = 0; i < ds.n_images(); ++i) {
			const auto [w, h] = c.sizes[i % c.sizes.size()];
			CHECK(ds.cameras[i].W == w / c.factor);
			CHECK(ds.cameras[i].H == h / c.factor);
			CHECK(ds.cameras[i].fx == Approx(800.0 * (w / c.factor) / w).epsilon(1e-6));
		}
		if (c.factor == 1) CHECK(ds.resize_note.empty());
		else CHECK_THAT(ds.resize_note, Catch::Contains("factor " + std::to_string(c.factor) + ", downsampled here") &&
		                                    Catch::Contains("nerfstudio") && Catch::Contains("1600"));
	}
	TempDir dir("transforms_auto_factor");
	write_sized_scene(dir, {{1700, 8}});
	// The option's default through load_dataset; a factor given is used as given.
	nerf::Config cfg;
	cfg.dataset_type = "transforms";
	cfg.datadir = dir.str();
	cfg.llffhold = 0;
	REQUIRE(cfg.factor == 0);
	CHECK(nerf::load_dataset(cfg).W == 850);
	cfg.factor = 1;
	CHECK(nerf::load_dataset(cfg).W == 1700);
	CHECK(nerf::load_dataset(cfg).resize_note.empty());
	// nerfstudio's images_2/ copies are read when the rule picks 2.
	for (int k = 0; k < 4; ++k) write_pattern_png(dir / ("images_2/frame_" + std::to_string(k) + ".png"), 10 + k, 850, 4, 3);
	const nerf::Dataset copies = nerf::load_transforms(dir.str(), 0, 0, false);
	CHECK(copies.image_paths[0] == dir / "images_2/frame_0.png");
	CHECK(copies.W == 850);
	CHECK_THAT(copies.resize_note, Catch::Contains("factor 2, the images of images_2/"));
}

TEST_CASE("transforms: beer's COLMAP model as transforms.json gives its poses_bounds.npy poses up to the normalisation",
          "[data][transforms][colmap][shared]") {
	const std::string beer = data_test::shared_scene("nerf_llff_data/beer");
	if (beer.empty()) return;
	TempDir dir("transforms_beer");
	const nerf::ColmapModel model = nerf::read_colmap_model(beer + "/sparse/0");
	// Absolute image paths: file_path is joined to the json's folder, and an absolute one stays itself.
	write_text(dir / "transforms.json", nerf::colmap_to_transforms(model, beer + "/images"));
	const nerf::Dataset ds = nerf::load_transforms(dir.str(), /*factor=*/8, /*llffhold=*/8, false);
	const nerf::NpyArray rows = nerf::load_npy_matrix(beer + "/poses_bounds.npy", 17);
	const size_t n = rows.shape[0];
	REQUIRE(ds.n_images() == n);

	// Reference poses: LLFF's (down, right, back) columns as OpenGL's (right, up, back) = (c1, -c0, c2).
	std::vector<Eigen::Matrix3d> R_ref(n);
	Eigen::Matrix3Xd c_ref(3, n), c_got(3, n);
	for (size_t i = 0; i < n; ++i) {
		const double* r = rows.data.data() + 17 * i;
		for (int k = 0; k < 3; ++k) {
			R_ref[i](k, 0) = r[5 * k + 1];
			R_ref[i](k, 1) = -r[5 * k + 0];
			R_ref[i](k, 2) = r[5 * k + 2];
			c_ref(k, i) = r[5 * k + 3];
		}
		c_got.col(i) = position(ds.poses[i]);
	}
	// The similarity (scale, rotation, translation) that best maps the reference centres onto the loader's
	// (Umeyama); every camera must then agree in position and orientation.
	const Eigen::Matrix4d S = Eigen::umeyama(c_ref, c_got, true);
	const double scale = S.topLeftCorner<3, 3>().col(0).norm();
	const Eigen::Matrix3d R = S.topLeftCorner<3, 3>() / scale;
	double worst_position = 0, worst_rotation = 0;
	for (size_t i = 0; i < n; ++i) {
		const Eigen::Vector3d mapped = scale * R * c_ref.col(i) + S.topRightCorner<3, 1>();
		worst_position = std::max(worst_position, (mapped - c_got.col(i)).norm());
		worst_rotation = std::max(worst_rotation, (R * R_ref[i] - rotation(ds.poses[i])).cwiseAbs().maxCoeff());
	}
	CAPTURE(scale, worst_position, worst_rotation);
	// float32 poses of size ~1: ~1e-7; the reference npy is float64 of the same model.
	CHECK(worst_position < 1e-5);
	CHECK(worst_rotation < 1e-5);
	CHECK(R.determinant() == Approx(1.0).epsilon(1e-9));

	// The normalisation itself: centred, mean up +z, inside [-1, 1]^3 touching it.
	Eigen::Vector3d centroid = c_got.rowwise().mean(), up = Eigen::Vector3d::Zero();
	for (size_t i = 0; i < n; ++i) up += rotation(ds.poses[i]).col(1);
	CHECK(centroid.norm() < 1e-5);
	CHECK((up.normalized() - Eigen::Vector3d::UnitZ()).norm() < 1e-5);
	CHECK(c_got.cwiseAbs().maxCoeff() == Approx(1.0).epsilon(1e-6));

	// Intrinsics: each image its own SIMPLE_RADIAL camera, at 1/8 of 720 x 1280.
	for (size_t i : {size_t(0), size_t(35), n - 1}) {
		INFO("image " << i);
		const nerf::Camera& cam = ds.cameras[i];
		const nerf::ColmapImage* img = nullptr;
		for (const auto& candidate : model.images)
			if (candidate.name == std::filesystem::path(ds.image_paths[i]).filename().string()) img = &candidate;
		REQUIRE(img != nullptr);
		const nerf::ColmapCamera* colmap_cam = nullptr;
		for (const auto& candidate : model.cameras)
			if (candidate.id == img->camera_id) colmap_cam = &candidate;
		REQUIRE(colmap_cam != nullptr);
		CHECK(colmap_cam->model == "SIMPLE_RADIAL");
		CHECK(cam.W == 90);
		CHECK(cam.H == 160);
		CHECK(cam.fx == Approx(colmap_cam->params[0] / 8).epsilon(1e-6));
		CHECK(cam.fy == Approx(colmap_cam->params[0] / 8).epsilon(1e-6));
		CHECK(cam.cx == Approx(colmap_cam->params[1] / 8).epsilon(1e-6));
		CHECK(cam.cy == Approx(colmap_cam->params[2] / 8).epsilon(1e-6));
		CHECK(cam.lens.model == nerf::LensModel::OpenCV);
		CHECK(cam.lens.k1 == (float)colmap_cam->params[3]);
		CHECK(cam.pixel_centers);
	}
	CHECK(ds.i_test.size() == (n + 7) / 8);
}
