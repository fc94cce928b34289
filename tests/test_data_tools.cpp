// The data tools as a user runs them: nerf_inspect (summary, --json, exit 1 on bad input) and
// colmap2llff (writes a poses_bounds.npy the LLFF loader reads).
#include "nerf/io/npy.h"

#include "test_data_helpers.h"

#include <nlohmann/json.hpp>

#include <cstdlib>

#include <sys/wait.h>

using data_test::TempDir;
using data_test::write_pattern_png;
using data_test::write_text;

namespace {

int run_tool(const std::string& name, const std::string& args, std::string& output) {
	const std::string path = std::string(NERF_TOOLS_DIR) + "/" + name;
	INFO("tool: " << path);
	REQUIRE(std::filesystem::exists(path));  // the tools are built with the project
	output.clear();
	FILE* pipe = ::popen((path + " " + args + " 2>&1").c_str(), "r");
	REQUIRE(pipe != nullptr);
	char buf[4096];
	size_t n;
	while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
	const int status = ::pclose(pipe);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// Two train frames and one val frame of 4x2 RGBA with known poses.
void write_blender_scene(const TempDir& dir) {
	for (const char* split : {"train", "val"}) {
		nlohmann::json meta;
		meta["camera_angle_x"] = 1.0;
		const int count = std::string(split) == "train" ? 2 : 1;
		for (int k = 0; k < count; ++k) {
			const std::string file = std::string(split) + "/r_" + std::to_string(k);
			write_pattern_png(dir / (file + ".png"), k, 4, 2, 4);
			meta["frames"].push_back({{"file_path", "./" + file},
			                          {"transform_matrix", {{1, 0, 0, k}, {0, 1, 0, 0}, {0, 0, 1, 3}, {0, 0, 0, 1}}}});
		}
		write_text(dir / ("transforms_" + std::string(split) + ".json"), meta.dump());
	}
}

// A COLMAP text model under dir/sparse/0: one camera, two images (ids 1 and 2, listed in reverse, identity
// rotation, centres (0,0,-5) and (-1,0,-5)) named img_a and img_b with this extension, three points.
void write_two_view_model(const TempDir& dir, const std::string& extension) {
	write_text(dir / "sparse/0/cameras.txt", "1 PINHOLE 40 30 35 36 20 15\n");
	write_text(dir / "sparse/0/images.txt",
	           "2 1 0 0 0 1 0 5 1 img_b" + extension + "\n\n1 1 0 0 0 0 0 5 1 img_a" + extension + "\n1 2 1\n");
	write_text(dir / "sparse/0/points3D.txt", "1 0 0 0 1 2 3 0.1 1 0 2 0\n2 0 0 1 1 2 3 0.1 1 1 2 1\n3 0 0 -1 1 2 3 0.1 2 2\n");
}

} // namespace

TEST_CASE("nerf_inspect: summary and --json of a Blender scene", "[data][tools]") {
	TempDir dir("inspect");
	write_blender_scene(dir);
	std::string out;
	const std::string json_path = dir / "inspect.json";
	REQUIRE(run_tool("nerf_inspect", "--dataset_type blender --datadir " + dir.str() + " --testskip 1 --white_bkgd --json " + json_path, out) == 0);
	INFO(out);
	CHECK_THAT(out, Catch::Contains("3 of 2 x 4 (H x W)") && Catch::Contains("train 2, val 1, test 0") &&
	                    Catch::Contains("near / far   2.000000 / 6.000000"));
	// Camera centres (0,0,3), (1,0,3), (0,0,3): centroid (1/3, 0, 3), distances 1/3, 2/3, 1/3.
	CHECK_THAT(out, Catch::Contains("min 0.3333 max 0.6667 mean 0.4444"));
	std::ifstream in(json_path);
	const nlohmann::json j = nlohmann::json::parse(in);
	CHECK(j["H"] == 2);
	CHECK(j["W"] == 4);
	const double focal = 0.5 * 4 / std::tan(0.5);
	CHECK(j["focal"].get<double>() == Approx(focal).epsilon(1e-6));
	CHECK(j["K"][0][2].get<double>() == 2.0);
	CHECK(j["K"][1][1].get<double>() == Approx(focal).epsilon(1e-6));
	REQUIRE(j["poses"].size() == 3);
	CHECK(j["poses"][1][0][3].get<double>() == 1.0);
	CHECK(j["poses"][2][2][3].get<double>() == 3.0);
	CHECK(j["render_poses"].size() == 40);
	CHECK(j["i_train"] == std::vector<int>{0, 1});
	CHECK(j["i_val"] == std::vector<int>{2});
	CHECK(j["i_test"].empty());
	CHECK_FALSE(j.contains("bounds"));
	// image_mean: the mean of each composited image, computed here from the pattern.
	for (int i = 0; i < 3; ++i) {
		const int frame = i == 2 ? 0 : i;  // val r_0 uses pattern 0
		double sum = 0;
		for (int r = 0; r < 2; ++r)
			for (int c = 0; c < 4; ++c) {
				const double a = data_test::pattern_value(frame, r, c, 3);
				for (int k = 0; k < 3; ++k) sum += data_test::pattern_value(frame, r, c, k) * a + 1 - a;
			}
		CHECK(j["image_mean"][i].get<double>() == Approx(sum / 24).epsilon(1e-5));
	}
}

TEST_CASE("nerf_inspect: bad input is one clear message and exit 1", "[data][tools]") {
	std::string out;
	CHECK(run_tool("nerf_inspect", "--dataset_type llff --datadir /nonexistent/fern", out) == 1);
	CHECK_THAT(out, Catch::StartsWith("nerf_inspect: error: /nonexistent/fern") && Catch::Contains("does not exist"));
	CHECK(std::count(out.begin(), out.end(), '\n') == 1);
	TempDir dir("inspect");
	write_blender_scene(dir);
	write_text(dir / "transforms_val.json", "{ not json");
	CHECK(run_tool("nerf_inspect", "--dataset_type blender --datadir " + dir.str(), out) == 1);
	CHECK_THAT(out, Catch::Contains("transforms_val.json: malformed JSON"));
	CHECK(run_tool("nerf_inspect", "--dataset_type blender --json", out) == 1);
	CHECK_THAT(out, Catch::StartsWith("nerf_inspect: error: command line: --json") && Catch::Contains("missing"));
}

TEST_CASE("colmap2llff: a text model to poses_bounds.npy", "[data][tools]") {
	TempDir dir("colmap2llff");
	write_two_view_model(dir, ".jpg");
	std::string out;
	REQUIRE(run_tool("colmap2llff", dir.str(), out) == 0);
	INFO(out);
	const nerf::NpyArray arr = nerf::load_npy_matrix(dir / "poses_bounds.npy", 17);
	REQUIRE(arr.shape[0] == 2);
	// Row 0 is img_a (id 1): centre (0, 0, -5), depths of points 1, 2: 5, 6. hwf = (30, 40, 35).
	CHECK(arr.data[3] == Approx(0).margin(1e-12));
	CHECK(arr.data[13] == Approx(-5));
	CHECK(arr.data[4] == 30);
	CHECK(arr.data[9] == 40);
	CHECK(arr.data[14] == 35);
	CHECK(arr.data[15] == Approx(5.001));
	CHECK(arr.data[16] == Approx(5.999));
	// Row 1 is img_b (id 2): centre (-1, 0, -5); the axis change permutes columns, not world coordinates.
	CHECK(arr.data[17 + 3] == Approx(-1));
	CHECK(arr.data[17 + 8] == Approx(0).margin(1e-12));
	CHECK(arr.data[17 + 15] == Approx(4 + 0.001 * 2));  // depths 5, 6, 4

	CHECK(run_tool("colmap2llff", dir / "nothing", out) == 1);
	CHECK_THAT(out, Catch::StartsWith("colmap2llff: error: ") && Catch::Contains("does not exist"));

	// Its output has the mode of any new file under the umask (it was 0600, then 0644 whatever the umask).
	namespace fs = std::filesystem;
	for (const auto& [mask, perms] : {std::pair{"027", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read},
	                                  std::pair{"002", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
	                                                       fs::perms::group_write | fs::perms::others_read}}) {
		const std::string npy = dir / (std::string("umask_") + mask + ".npy");
		REQUIRE(std::system(("umask " + std::string(mask) + "; " + NERF_TOOLS_DIR + "/colmap2llff " + dir.str() + " --out " + npy +
		                     " --transforms --transforms_out " + npy + ".json > /dev/null")
		                        .c_str()) == 0);
		CHECK((fs::status(npy).permissions() & fs::perms::all) == perms);
		CHECK((fs::status(npy + ".json").permissions() & fs::perms::all) == perms);
	}
}

TEST_CASE("colmap2llff --transforms: a transforms.json the transforms loader reads, images found", "[data][tools][transforms]") {
	TempDir dir("colmap2transforms");
	// The model of the test above, and the two images it names (40x30) in SCENE/images.
	write_two_view_model(dir, ".png");
	write_pattern_png(dir / "images/img_a.png", 0, 40, 30, 3);
	write_pattern_png(dir / "images/img_b.png", 1, 40, 30, 3);
	std::string out;
	REQUIRE(run_tool("colmap2llff", dir.str() + " --transforms --no_llff", out) == 0);
	INFO(out);
	CHECK_FALSE(std::filesystem::exists(dir / "poses_bounds.npy"));
	std::ifstream in(dir / "transforms.json");
	const nlohmann::json j = nlohmann::json::parse(in);
	// One camera: its intrinsics at the top level.
	CHECK(j["camera_model"] == "PINHOLE");
	CHECK(j["fl_x"] == 35.0);
	CHECK(j["fl_y"] == 36.0);
	CHECK(j["cx"] == 20.0);
	CHECK(j["w"] == 40);
	REQUIRE(j["frames"].size() == 2);
	CHECK(j["frames"][0]["file_path"] == "images/img_a.png");
	CHECK(j["frames"][1]["file_path"] == "images/img_b.png");

	// Read back as a scene; the json elsewhere finds the images relative to itself.
	REQUIRE(run_tool("colmap2llff", dir.str() + " --transforms_out " + (dir / "elsewhere/t.json") + " --no_llff", out) == 0);
	std::ifstream in2(dir / "elsewhere/t.json");
	CHECK(nlohmann::json::parse(in2)["frames"][0]["file_path"] == "../images/img_a.png");
	const std::string json_path = dir / "cams.json";
	REQUIRE(run_tool("nerf_inspect", "--dataset_type transforms --datadir " + dir.str() + " --factor 1 --llffhold 0 --json " +
	                     json_path, out) == 0);
	std::ifstream cams(json_path);
	const nlohmann::json c = nlohmann::json::parse(cams);
	CHECK(c["cameras"][1]["fx"] == 35.0);
	CHECK(c["cameras"][1]["cy"] == 15.0);
	CHECK(c["image_paths"][1] == dir / "images/img_b.png");

	CHECK(run_tool("colmap2llff", dir.str() + " --no_llff", out) == 1);
	CHECK_THAT(out, Catch::Contains("--no_llff leaves nothing to write"));
}

TEST_CASE("nerf_inspect --json: image paths and each image's camera, for any dataset type", "[data][tools][transforms]") {
	TempDir dir("inspect_cameras");
	write_blender_scene(dir);
	std::string out;
	const std::string json_path = dir / "inspect.json";
	REQUIRE(run_tool("nerf_inspect", "--dataset_type blender --datadir " + dir.str() + " --testskip 1 --json " + json_path, out) == 0);
	std::ifstream in(json_path);
	const nlohmann::json j = nlohmann::json::parse(in);
	REQUIRE(j["image_paths"].size() == 3);
	CHECK(j["image_paths"][0] == dir / "train/r_0.png");
	CHECK(j["image_paths"][2] == dir / "val/r_0.png");
	REQUIRE(j["cameras"].size() == 3);
	const double focal = 0.5 * 4 / std::tan(0.5);
	for (const auto& cam : j["cameras"]) {
		CHECK(cam["H"] == 2);
		CHECK(cam["W"] == 4);
		CHECK(cam["fx"].get<double>() == Approx(focal).epsilon(1e-6));
		CHECK(cam["cx"] == 2.0);
		CHECK(cam["camera_model"] == "PINHOLE");
		CHECK(cam["k1"] == 0.0);
		CHECK(cam["pixel_centers"] == false);  // the reference's pixel corners
	}
}

TEST_CASE("nerf_inspect --dump_rays: image I's rays as float32 [H, W, 6], as get_rays for a Blender scene",
          "[data][tools][transforms]") {
	TempDir dir("inspect_rays");
	write_blender_scene(dir);
	std::string out;
	const std::string npy = dir / "rays.npy";
	REQUIRE(run_tool("nerf_inspect", "--dataset_type blender --datadir " + dir.str() + " --dump_rays " + npy + " --dump_image 1",
	                 out) == 0);
	INFO(out);
	const nerf::NpyArray rays = nerf::load_npy(npy);
	CHECK(rays.dtype == "<f4");
	REQUIRE(rays.shape == std::vector<size_t>{2, 4, 6});
	// Frame 1: identity rotation at (1, 0, 3); get_rays: d = ((i - W/2) / f, -(j - H/2) / f, -1).
	const double focal = 0.5 * 4 / std::tan(0.5);
	for (int row = 0; row < 2; ++row)
		for (int col = 0; col < 4; ++col) {
			const double* r = rays.data.data() + 6 * (row * 4 + col);
			CHECK(r[0] == 1.0);
			CHECK(r[1] == 0.0);
			CHECK(r[2] == 3.0);
			CHECK(r[3] == Approx((col - 2.0) / focal).margin(1e-6));
			CHECK(r[4] == Approx(-(row - 1.0) / focal).margin(1e-6));
			CHECK(r[5] == -1.0);
		}
	CHECK(run_tool("nerf_inspect", "--dataset_type blender --datadir " + dir.str() + " --dump_rays " + npy + " --dump_image 7",
	               out) == 1);
	CHECK_THAT(out, Catch::Contains("--dump_image 7 is not an image of the dataset (0..2)"));
	CHECK(run_tool("nerf_inspect", "--dataset_type blender --datadir " + dir.str() + " --dump_rays " + npy, out) == 1);
	CHECK_THAT(out, Catch::Contains("--dump_rays OUT.npy and --dump_image I go together"));
}

TEST_CASE("nerf_inspect --dump_rays through a distorted transforms.json camera: rays project back onto pixel centres",
          "[data][tools][transforms]") {
	TempDir dir("inspect_lens");
	write_pattern_png(dir / "images/a.png", 0, 12, 8, 3);
	nlohmann::json meta = {{"camera_model", "OPENCV"}, {"fl_x", 10.0}, {"fl_y", 11.0}, {"cx", 6.5}, {"cy", 3.75},
	                       {"k1", 0.2},  {"k2", -0.05}, {"p1", 0.01}, {"p2", -0.02}};
	// A camera looking along world +y with its up vector +z, so the normalisation (centring, up onto +z, no
	// extent to scale) leaves its rotation alone: d = x X + (-y) Y + (-1) Z = (x, 1, -y).
	meta["frames"] = {{{"file_path", "images/a.png"},
	                   {"transform_matrix", {{1, 0, 0, 2}, {0, 0, -1, 3}, {0, 1, 0, 4}, {0, 0, 0, 1}}}}};
	write_text(dir / "transforms.json", meta.dump());
	std::string out;
	const std::string npy = dir / "rays.npy";
	REQUIRE(run_tool("nerf_inspect", "--dataset_type transforms --datadir " + dir.str() +
	                                     " --factor 1 --llffhold 0 --dump_rays " + npy + " --dump_image 0", out) == 0);
	INFO(out);
	const nerf::NpyArray rays = nerf::load_npy(npy);
	REQUIRE(rays.shape == std::vector<size_t>{8, 12, 6});
	// (x, y) is the undistorted pixel centre; push it through OpenCV's model by hand.
	double worst = 0;
	for (int row = 0; row < 8; ++row)
		for (int col = 0; col < 12; ++col) {
			const double* r = rays.data.data() + 6 * (row * 12 + col);
			CHECK(r[0] == 0.0);  // centred on the (only) camera
			CHECK(r[4] == 1.0);
			const double x = r[3], y = -r[5], r2 = x * x + y * y;
			const double radial = 1 + 0.2 * r2 - 0.05 * r2 * r2;
			const double xd = x * radial + 2 * 0.01 * x * y + -0.02 * (r2 + 2 * x * x);
			const double yd = y * radial + 0.01 * (r2 + 2 * y * y) + 2 * -0.02 * x * y;
			worst = std::max({worst, std::abs(10.0 * xd + 6.5 - (col + 0.5)), std::abs(11.0 * yd + 3.75 - (row + 0.5))});
		}
	CAPTURE(worst);
	CHECK(worst < 1e-4);  // float rays
}

TEST_CASE("nerf_inspect: a bad transforms.json is one message naming the file and field, exit 1", "[data][tools][transforms]") {
	TempDir dir("inspect_bad_transforms");
	write_pattern_png(dir / "images/a.png", 0, 4, 3, 3);
	nlohmann::json meta = {{"fl_x", 3.0}, {"camera_model", "FOV"}};
	meta["frames"] = {{{"file_path", "images/a.png"}, {"transform_matrix", {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}}}};
	write_text(dir / "transforms.json", meta.dump());
	std::string out;
	CHECK(run_tool("nerf_inspect", "--dataset_type transforms --datadir " + dir.str(), out) == 1);
	CHECK_THAT(out, Catch::StartsWith("nerf_inspect: error: " + (dir / "transforms.json")) &&
	                    Catch::Contains("field 'camera_model' is 'FOV'"));
	CHECK(std::count(out.begin(), out.end(), '\n') == 1);
}

TEST_CASE("nerf_scene --capture writes a transforms.json of OPENCV frames (or PINHOLE with --pinhole) the loader reads",
          "[data][tools][transforms]") {
	TempDir dir("scene_capture");
	std::string out;
	REQUIRE(run_tool("nerf_scene", "--capture --out " + (dir / "lens") + " --width 16 --height 12 --n_frames 3 --supersample 1",
	                 out) == 0);
	INFO(out);
	CHECK_THAT(out, Catch::Contains("3 frames of 16x12") && Catch::Contains("OPENCV"));
	std::ifstream in(dir / "lens/transforms.json");
	const nlohmann::json j = nlohmann::json::parse(in);
	CHECK(j["camera_model"] == "OPENCV");
	REQUIRE(j["frames"].size() == 3);
	CHECK(j["frames"][0]["w"] == 16);
	CHECK(j["frames"][2]["w"] == 12);  // every third frame is 3/4 as wide
	CHECK(j["frames"][1]["k1"].get<double>() < 0.0);  // barrel
	CHECK(j["frames"][0]["k1"].get<double>() > 0.0);  // pincushion
	CHECK(std::filesystem::exists(std::filesystem::path(dir / "lens") / j["frames"][2]["file_path"].get<std::string>()));

	REQUIRE(run_tool("nerf_scene", "--capture --pinhole --out " + (dir / "pin") + " --width 16 --height 12 --n_frames 3 "
	                 "--supersample 1", out) == 0);
	std::ifstream in_pin(dir / "pin/transforms.json");
	const nlohmann::json p = nlohmann::json::parse(in_pin);
	CHECK(p["camera_model"] == "PINHOLE");
	CHECK_FALSE(p["frames"][0].contains("k1"));
	CHECK(p["frames"][1]["fl_x"] == j["frames"][1]["fl_x"]);  // the same cameras, lens aside
	const std::string json_path = dir / "cams.json";
	REQUIRE(run_tool("nerf_inspect", "--dataset_type transforms --datadir " + (dir / "lens") + " --factor 1 --llffhold 0 "
	                 "--json " + json_path, out) == 0);
	std::ifstream cams(json_path);
	const nlohmann::json c = nlohmann::json::parse(cams);
	REQUIRE(c["cameras"].size() == 3);
	CHECK(c["cameras"][2]["W"] == 12);
	CHECK(c["cameras"][1]["camera_model"] == "OPENCV");

	CHECK(run_tool("nerf_scene", "--capture --out " + (dir / "bad") + " --supersample 17", out) == 1);
	CHECK_THAT(out, Catch::Contains("supersample must be in [1, 16]"));
}
