// COLMAP models: the same small model written as .txt and .bin reads the same; LLFF rows match values
// worked out by hand; bad files are named; beer's sparse/0 reproduces beer's poses_bounds.npy; the
// transforms.json conversion keeps each camera's intrinsics and lens.
#include "nerf/data/colmap.h"
#include "nerf/io/npy.h"

#include "test_data_helpers.h"

#include <nlohmann/json.hpp>

#include <cstdint>

using data_test::require_error;
using data_test::TempDir;
using data_test::write_text;

namespace {

// Two PINHOLE-ish cameras, three images (ids 3, 1, 2 in file order, names out of order), five points.
// Image "b.png" (id 1): identity rotation, t = (0, 0, 5): centre (0, 0, -5) looking down +z.
// Image "a.png" (id 3): 90 degrees about z, t = (1, 2, 3).
// Image "c.png" (id 2): 180 degrees about y, t = (0, 0, 4): centre (0, 0, 4) looking down -z.
struct TinyModel {
	struct Img { uint32_t id; double q[4]; double t[3]; uint32_t cam; std::string name; };
	struct Pt { uint64_t id; double xyz[3]; std::vector<uint32_t> track; };
	std::vector<Img> images = {
		{3, {std::sqrt(0.5), 0, 0, std::sqrt(0.5)}, {1, 2, 3}, 1, "a.png"},
		{1, {1, 0, 0, 0}, {0, 0, 5}, 1, "b.png"},
		{2, {0, 0, 1, 0}, {0, 0, 4}, 2, "c.png"},
	};
	std::vector<Pt> points = {
		{10, {0, 0, 0}, {1, 2, 3}},
		{11, {0.5, -0.5, 1}, {1, 2, 3, 1}},  // image 1 twice: counts once
		{12, {1, 1, -1}, {1, 3}},
		{13, {-1, 0, 2}, {1, 2}},
		{14, {0, 2, -2}, {2, 3}},
	};
};

void write_text_model(const std::string& dir, const TinyModel& m) {
	write_text(dir + "/cameras.txt",
	           "# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
	           "1 SIMPLE_RADIAL 640 480 500.5 320 240 0.01\n2 PINHOLE 640 480 400 410 320 240\n");
	std::ostringstream images;
	images.precision(17);
	images << "# Image list with two lines of data per image:\n";
	for (const auto& img : m.images) {
		images << img.id << " " << img.q[0] << " " << img.q[1] << " " << img.q[2] << " " << img.q[3] << " " << img.t[0] << " "
		       << img.t[1] << " " << img.t[2] << " " << img.cam << " " << img.name << "\n";
		images << (img.id == 2 ? "" : "10.5 20.5 10 30.25 40.75 -1") << "\n";  // an empty POINTS2D line too
	}
	write_text(dir + "/images.txt", images.str());
	std::ostringstream points;
	points << "# 3D point list\n";
	for (const auto& p : m.points) {
		points << p.id << " " << p.xyz[0] << " " << p.xyz[1] << " " << p.xyz[2] << " 10 20 30 0.5";
		for (size_t k = 0; k < p.track.size(); ++k) points << " " << p.track[k] << " " << k;
		points << "\n";
	}
	write_text(dir + "/points3D.txt", points.str());
}

template <typename T>
void put(std::string& out, T v) {
	out.append((const char*)&v, sizeof(T));
}

void write_binary_model(const std::string& dir, const TinyModel& m) {
	std::string cams;
	put<uint64_t>(cams, 2);
	put<uint32_t>(cams, 1); put<int32_t>(cams, 2); put<uint64_t>(cams, 640); put<uint64_t>(cams, 480);
	for (double v : {500.5, 320.0, 240.0, 0.01}) put(cams, v);
	put<uint32_t>(cams, 2); put<int32_t>(cams, 1); put<uint64_t>(cams, 640); put<uint64_t>(cams, 480);
	for (double v : {400.0, 410.0, 320.0, 240.0}) put(cams, v);
	write_text(dir + "/cameras.bin", cams);
	std::string images;
	put<uint64_t>(images, m.images.size());
	for (const auto& img : m.images) {
		put<uint32_t>(images, img.id);
		for (double v : img.q) put(images, v);
		for (double v : img.t) put(images, v);
		put<uint32_t>(images, img.cam);
		images += img.name;
		images.push_back('\0');
		put<uint64_t>(images, 1);
		put(images, 1.5); put(images, 2.5); put<int64_t>(images, -1);
	}
	write_text(dir + "/images.bin", images);
	std::string points;
	put<uint64_t>(points, m.points.size());
	for (const auto& p : m.points) {
		put<uint64_t>(points, p.id);
		for (double v : p.xyz) put(points, v);
		points += std::string("\x0a\x14\x1e", 3);
		put(points, 0.5);
		put<uint64_t>(points, p.track.size());
		for (size_t k = 0; k < p.track.size(); ++k) {
			put<uint32_t>(points, p.track[k]);
			put<uint32_t>(points, (uint32_t)k);
		}
	}
	write_text(dir + "/points3D.bin", points);
}

// np.percentile with linear interpolation, written out for the test.
double percentile_of(std::vector<double> v, double q) {
	std::sort(v.begin(), v.end());
	const double pos = q / 100 * (v.size() - 1);
	const size_t lo = (size_t)pos;
	return lo + 1 < v.size() ? v[lo] + (pos - lo) * (v[lo + 1] - v[lo]) : v[lo];
}

} // namespace

TEST_CASE("colmap: quaternion to rotation", "[data][colmap]") {
	const auto id = nerf::colmap_qvec_to_rotation({1, 0, 0, 0});
	const std::array<double, 9> eye = {1, 0, 0, 0, 1, 0, 0, 0, 1};
	for (int k = 0; k < 9; ++k) CHECK(id[k] == eye[k]);
	// 90 degrees about z maps x to y.
	const auto rz = nerf::colmap_qvec_to_rotation({std::sqrt(0.5), 0, 0, std::sqrt(0.5)});
	const std::array<double, 9> expected = {0, -1, 0, 1, 0, 0, 0, 0, 1};
	for (int k = 0; k < 9; ++k) CHECK(rz[k] == Approx(expected[k]).margin(1e-15));
}

TEST_CASE("colmap: text and binary models read the same and convert to LLFF rows", "[data][colmap]") {
	TinyModel tiny;
	TempDir text_dir("colmap"), bin_dir("colmap");
	write_text_model(text_dir.str(), tiny);
	write_binary_model(bin_dir.str(), tiny);
	const nerf::ColmapModel text = nerf::read_colmap_model(text_dir.str());
	const nerf::ColmapModel bin = nerf::read_colmap_model(bin_dir.str());
	for (const auto* m : {&text, &bin}) {
		REQUIRE(m->cameras.size() == 2);
		CHECK(m->cameras[0].model == "SIMPLE_RADIAL");
		CHECK(m->cameras[0].params == std::vector<double>{500.5, 320, 240, 0.01});
		CHECK(m->cameras[1].model == "PINHOLE");
		CHECK(m->cameras[1].width == 640);
		CHECK(m->cameras[1].height == 480);
		REQUIRE(m->images.size() == 3);
		CHECK(m->images[0].name == "a.png");
		CHECK(m->images[0].id == 3);
		CHECK(m->images[2].camera_id == 2);
		CHECK(m->images[1].tvec == std::array<double, 3>{0, 0, 5});
		REQUIRE(m->points.size() == 5);
		CHECK(m->points[1].image_ids == std::vector<uint32_t>{1, 2, 3, 1});
		CHECK(m->points[4].xyz == std::array<double, 3>{0, 2, -2});
	}
	for (size_t i = 0; i < 3; ++i)
		for (int k = 0; k < 4; ++k) CHECK(text.images[i].qvec[k] == bin.images[i].qvec[k]);

	const auto rows = nerf::colmap_to_llff(bin);
	REQUIRE(rows.size() == 3);
	// Sorted by name: a (id 3), b (id 1), c (id 2). hwf from the first camera: H 480, W 640, f 500.5.
	for (const auto& row : rows) {
		CHECK(row[4] == 480);
		CHECK(row[9] == 640);
		CHECK(row[14] == 500.5);
	}
	// b.png: R = I, t = (0, 0, 5) -> c2w columns x, y, z = I, centre (0, 0, -5); LLFF's columns are
	// (y, x, -z, centre) = ((0,1,0), (1,0,0), (0,0,-1), (0,0,-5)).
	const double b_expected[3][4] = {{0, 1, 0, 0}, {1, 0, 0, 0}, {0, 0, -1, -5}};
	for (int r = 0; r < 3; ++r)
		for (int c = 0; c < 4; ++c) CHECK(rows[1][5 * r + c] == Approx(b_expected[r][c]).margin(1e-12));
	// b sees points 10..13 at depth z + 5 (its optical axis is +z): 5, 6, 4, 7.
	const std::vector<double> b_depths = {5, 6, 4, 7};
	CHECK(rows[1][15] == Approx(percentile_of(b_depths, 0.1)).epsilon(1e-12));
	CHECK(rows[1][16] == Approx(percentile_of(b_depths, 99.9)).epsilon(1e-12));
	CHECK(rows[1][15] == Approx(4.003).epsilon(1e-12));
	// c.png: 180 degrees about y, t = (0, 0, 4): centre (0, 0, 4), optical axis -z; it sees points
	// 10, 11, 13, 14 at depths 4 - z: 4, 3, 2, 6.
	const std::vector<double> c_depths = {4, 3, 2, 6};
	CHECK(rows[2][3] == Approx(0).margin(1e-12));
	CHECK(rows[2][13] == Approx(4).margin(1e-12));
	CHECK(rows[2][15] == Approx(percentile_of(c_depths, 0.1)).epsilon(1e-12));
	CHECK(rows[2][16] == Approx(percentile_of(c_depths, 99.9)).epsilon(1e-12));
	// a.png: R = rot_z(90), t = (1, 2, 3): centre -R^T t = (-2, 1, -3); it sees 10, 11, 12, 14.
	CHECK(rows[0][3] == Approx(-2).margin(1e-12));
	CHECK(rows[0][8] == Approx(1).margin(1e-12));
	CHECK(rows[0][13] == Approx(-3).margin(1e-12));
	const std::vector<double> a_depths = {3, 4, 2, 1};  // z + 3
	CHECK(rows[0][15] == Approx(percentile_of(a_depths, 0.1)).epsilon(1e-12));
	CHECK(rows[0][16] == Approx(percentile_of(a_depths, 99.9)).epsilon(1e-12));

	const auto text_rows = nerf::colmap_to_llff(text);
	for (size_t i = 0; i < 3; ++i)
		for (int k = 0; k < 17; ++k) CHECK(text_rows[i][k] == Approx(rows[i][k]).margin(1e-12));
}

TEST_CASE("colmap: bad models fail naming the file and the problem", "[data][colmap]") {
	TinyModel tiny;
	TempDir dir("colmap");
	SECTION("missing folder") {
		require_error([] { nerf::read_colmap_model("/nonexistent/sparse/0"); }, {"/nonexistent/sparse/0", "does not exist"});
	}
	SECTION("not a model") {
		require_error([&] { nerf::read_colmap_model(dir.str()); }, {dir.str(), "cameras.bin"});
	}
	SECTION("truncated images.bin") {
		write_binary_model(dir.str(), tiny);
		std::ifstream in(dir / "images.bin", std::ios::binary);
		std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
		in.close();
		write_text(dir / "images.bin", bytes.substr(0, bytes.size() - 30));
		require_error([&] { nerf::read_colmap_model(dir.str()); }, {dir / "images.bin", "truncated"});
	}
	SECTION("unknown camera model") {
		write_text_model(dir.str(), tiny);
		write_text(dir / "cameras.txt", "1 FANCY_LENS 640 480 1 2 3\n");
		require_error([&] { nerf::read_colmap_model(dir.str()); }, {dir / "cameras.txt", ":1", "FANCY_LENS"});
	}
	SECTION("malformed images.txt") {
		write_text_model(dir.str(), tiny);
		write_text(dir / "images.txt", "# header\n1 1 0 0 zero 0 0 5 1 b.png\n\n");
		require_error([&] { nerf::read_colmap_model(dir.str()); }, {dir / "images.txt", ":2", "QW QX QY QZ"});
	}
	SECTION("an image without points, a point of an unknown image") {
		tiny.points = {{10, {0, 0, 0}, {1, 3}}};
		write_binary_model(dir.str(), tiny);
		require_error([&] { nerf::colmap_to_llff(nerf::read_colmap_model(dir.str())); }, {"c.png", "no 3D point"});
		tiny.points = {{10, {0, 0, 0}, {1, 2, 3, 9}}};
		write_binary_model(dir.str(), tiny);
		require_error([&] { nerf::colmap_to_llff(nerf::read_colmap_model(dir.str())); }, {"unknown image id 9"});
	}
}

TEST_CASE("colmap: beer's sparse model reproduces its poses_bounds.npy", "[data][colmap][shared]") {
	const std::string beer = data_test::shared_scene("nerf_llff_data/beer");
	if (beer.empty()) return;
	const nerf::ColmapModel model = nerf::read_colmap_model(beer + "/sparse/0");
	CHECK(model.images.size() == 71);
	const auto rows = nerf::colmap_to_llff(model);
	const nerf::NpyArray reference = nerf::load_npy_matrix(beer + "/poses_bounds.npy", 17);
	REQUIRE(rows.size() == reference.shape[0]);
	double worst_pose = 0, worst_bound_rel = 0;
	for (size_t i = 0; i < rows.size(); ++i)
		for (int k = 0; k < 17; ++k) {
			const double ref = reference.data[17 * i + k], d = std::abs(rows[i][k] - ref);
			if (k < 15) worst_pose = std::max(worst_pose, d);
			else worst_bound_rel = std::max(worst_bound_rel, d / std::abs(ref));
		}
	CAPTURE(worst_pose, worst_bound_rel);
	CHECK(worst_pose < 1e-9);
	CHECK(worst_bound_rel < 1e-9);
}

TEST_CASE("colmap: transforms.json of a model with two cameras: per-frame intrinsics, OpenGL and nerfstudio axes",
          "[data][colmap][transforms]") {
	TempDir dir("colmap_transforms");
	write_binary_model(dir.str(), TinyModel{});
	const nerf::ColmapModel model = nerf::read_colmap_model(dir.str());
	const nlohmann::json j = nlohmann::json::parse(nerf::colmap_to_transforms(model, "imgs"));
	CHECK_FALSE(j.contains("fl_x"));  // two cameras: intrinsics per frame
	REQUIRE(j["frames"].size() == 3);
	const nlohmann::json& a = j["frames"][0];
	const nlohmann::json& b = j["frames"][1];
	const nlohmann::json& c = j["frames"][2];
	CHECK(a["file_path"] == "imgs/a.png");
	CHECK(b["file_path"] == "imgs/b.png");
	CHECK(c["file_path"] == "imgs/c.png");
	CHECK(b["colmap_im_id"] == 1);
	// Camera 1 is SIMPLE_RADIAL (f, cx, cy, k): OPENCV with k1 only.
	CHECK(a["camera_model"] == "OPENCV");
	CHECK(a["fl_x"] == 500.5);
	CHECK(a["fl_y"] == 500.5);
	CHECK(a["cx"] == 320.0);
	CHECK(a["cy"] == 240.0);
	CHECK(a["k1"] == 0.01);
	CHECK(a["k2"] == 0.0);
	CHECK(a["p1"] == 0.0);
	CHECK(a["w"] == 640);
	CHECK(a["h"] == 480);
	// Camera 2 is PINHOLE (fx, fy, cx, cy).
	CHECK(c["camera_model"] == "PINHOLE");
	CHECK(c["fl_x"] == 400.0);
	CHECK(c["fl_y"] == 410.0);
	CHECK_FALSE(c.contains("k1"));
	// b.png: R = I, t = (0, 0, 5): c2w = [I | (0, 0, -5)]; OpenGL axes negate columns y and z, nerfstudio's
	// world takes rows (x, z, -y): [[1, 0, 0, 0], [0, 0, -1, -5], [0, 1, 0, 0]].
	const double expected[3][4] = {{1, 0, 0, 0}, {0, 0, -1, -5}, {0, 1, 0, 0}};
	for (int r = 0; r < 3; ++r)
		for (int k = 0; k < 4; ++k) CHECK(b["transform_matrix"][r][k].get<double>() == Approx(expected[r][k]).margin(1e-12));
	CHECK(b["transform_matrix"][3] == nlohmann::json({0.0, 0.0, 0.0, 1.0}));

	SECTION("one shared camera: its intrinsics once, at the top level") {
		nerf::ColmapModel shared = model;
		for (auto& img : shared.images) img.camera_id = 2;
		const nlohmann::json s = nlohmann::json::parse(nerf::colmap_to_transforms(shared));
		CHECK(s["camera_model"] == "PINHOLE");
		CHECK(s["fl_y"] == 410.0);
		CHECK_FALSE(s["frames"][0].contains("fl_x"));
		CHECK(s["frames"][0]["file_path"] == "images/a.png");
	}
	SECTION("OPENCV, RADIAL and OPENCV_FISHEYE parameters land in their fields; other models are refused") {
		nerf::ColmapModel m = model;
		m.cameras[1].model = "OPENCV";
		m.cameras[1].params = {400, 410, 320, 240, 0.1, -0.02, 0.003, -0.004};
		CHECK(nlohmann::json::parse(nerf::colmap_to_transforms(m))["frames"][2]["p2"] == -0.004);
		m.cameras[1].model = "RADIAL";
		m.cameras[1].params = {400, 320, 240, 0.1, -0.02};
		CHECK(nlohmann::json::parse(nerf::colmap_to_transforms(m))["frames"][2]["k2"] == -0.02);
		m.cameras[1].model = "OPENCV_FISHEYE";
		m.cameras[1].params = {400, 410, 320, 240, 0.1, -0.02, 0.003, -0.004};
		const nlohmann::json f = nlohmann::json::parse(nerf::colmap_to_transforms(m))["frames"][2];
		CHECK(f["camera_model"] == "OPENCV_FISHEYE");
		CHECK(f["k4"] == -0.004);
		CHECK_FALSE(f.contains("p1"));
		m.cameras[1].model = "FULL_OPENCV";
		m.cameras[1].params.resize(12);
		require_error([&] { nerf::colmap_to_transforms(m); }, {"COLMAP camera 2", "FULL_OPENCV", "cannot hold"});
		m.images[0].camera_id = 7;
		require_error([&] { nerf::colmap_to_transforms(m); }, {"a.png", "camera 7"});
	}
}
