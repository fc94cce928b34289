// What fuzzing and fault injection found (issue 13), one regression test or more per finding: no crash
// (abort) but one message and exit code 1, no output lost to a full disk, no decoder fed bytes it
// mishandles, no gigabytes for a small file, no bad geometry or checkpoint accepted, no late failure,
// messages that name the file and the option, and a main job that does not depend on the machine's load.
// The malformed inputs are written by the tests themselves.
#include "nerf/backend.h"
#include "nerf/checkpoint.h"
#include "nerf/config.h"
#include "nerf/data/loaders.h"
#include "nerf/io/image.h"
#include "nerf/io/npy.h"
#include "nerf/io/output_file.h"
#include "nerf/io/safetensors.h"
#include "nerf/metrics.h"
#include "nerf/model.h"
#include "nerf/render.h"
#include "nerf/trainer.h"

#include "../tools/tool_main.h"
#include "test_data_helpers.h"
#include "tools_fixture.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
#include <sstream>
#include <stdexcept>

#include <jpeglib.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using data_test::require_error;
using nerf_test::config_file;
using nerf_test::fresh_dir;
using nerf_test::read_text;
using nerf_test::run_command;
using nerf_test::tiny_config;
using nerf_test::tool;
using nerf_test::write_text;

namespace {

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
	write_text(path, std::string(bytes.begin(), bytes.end()));
}

/// A baseline JPEG (libjpeg's standard Huffman tables) of a w x h image, every sample `value`.
std::vector<unsigned char> encode_jpeg(int w, int h, int channels, unsigned char value) {
	jpeg_compress_struct cinfo;
	jpeg_error_mgr err;
	cinfo.err = jpeg_std_error(&err);
	jpeg_create_compress(&cinfo);
	unsigned char* buffer = nullptr;
	unsigned long size = 0;
	jpeg_mem_dest(&cinfo, &buffer, &size);
	cinfo.image_width = (JDIMENSION)w;
	cinfo.image_height = (JDIMENSION)h;
	cinfo.input_components = channels;
	cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_set_defaults(&cinfo);
	jpeg_set_quality(&cinfo, 95, TRUE);
	jpeg_start_compress(&cinfo, TRUE);
	std::vector<unsigned char> row((size_t)w * channels, value);
	while (cinfo.next_scanline < cinfo.image_height) {
		JSAMPROW r = row.data();
		jpeg_write_scanlines(&cinfo, &r, 1);
	}
	jpeg_finish_compress(&cinfo);
	std::vector<unsigned char> out(buffer, buffer + size);
	jpeg_destroy_compress(&cinfo);
	std::free(buffer);
	return out;
}

/// Offset of the first marker segment FF <code> (its FF byte); fails the test when absent.
size_t find_marker(const std::vector<unsigned char>& jpeg, unsigned char code) {
	for (size_t i = 2; i + 1 < jpeg.size(); ++i)
		if (jpeg[i] == 0xFF && jpeg[i + 1] == code) return i;
	FAIL("JPEG marker FF " << (int)code << " not found");
	return 0;
}

/// The frame header's height and width (SOF0: FF C0, length, precision, height, width).
void set_jpeg_size(std::vector<unsigned char>& jpeg, int w, int h) {
	const size_t sof = find_marker(jpeg, 0xC0);
	jpeg[sof + 5] = (unsigned char)(h >> 8);
	jpeg[sof + 6] = (unsigned char)(h & 0xFF);
	jpeg[sof + 7] = (unsigned char)(w >> 8);
	jpeg[sof + 8] = (unsigned char)(w & 0xFF);
}

/// A checkpoint of an untrained tiny model.
std::string make_checkpoint(const nerf::Config& cfg, const std::string& path, long step = 3) {
	auto backend = nerf::create_cpu_backend(1);
	nerf::NerfModel model(*backend, cfg);
	nerf::save_checkpoint(path, model, step);
	return path;
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_text(path)); }

/// A process id that certainly belongs to no running process: a child that has exited and been reaped.
pid_t dead_pid() {
	const pid_t child = ::fork();
	if (child == 0) ::_exit(0);
	int status = 0;
	::waitpid(child, &status, 0);
	return child;
}

} // namespace

// --- 1. crashes (abort) instead of exit 1 ----------------------------------------------------------

TEST_CASE("an allocation failure inside the CPU MLP's parallel loop reaches the caller, no abort", "[faults][mlp]") {
	auto backend = nerf::create_cpu_backend(2);
	nerf::MlpSpec spec;
	spec.depth = 2;
	spec.width = 64;
	spec.in_pts = 3;
	spec.in_views = 0;
	const nerf::MlpLayout layout = nerf::make_mlp_layout(spec, 0);
	// 2^46 samples: each of the 64 row blocks asks Eigen for 2^40 x 64 floats (256 TiB, more than any
	// address space) before it reads a single input, so the buffers below are never touched.
	const size_t n = size_t(1) << 46;
	auto mlp = backend->create_mlp(layout, n, nerf::Precision::FP32);
	std::vector<float> params(layout.n_floats, 0.1f), input(3, 0.5f), raw(4);
	CHECK_THROWS_AS(mlp->forward(raw.data(), params.data(), input.data(), nullptr, n, false), std::bad_alloc);
	// The network still works after the failure.
	mlp->forward(raw.data(), params.data(), input.data(), nullptr, 1, false);
	CHECK(std::isfinite(raw[0]));
}

TEST_CASE("the tools' shared main turns every exception into one message and exit code 1", "[faults][tools]") {
	char name[] = "t";
	char* argv[] = {name, nullptr};
	CHECK(nerf::tool::report_errors("t", 1, argv, [](int, char**) -> int { throw std::bad_alloc(); }) == 1);
	CHECK(nerf::tool::report_errors("t", 1, argv, [](int, char**) -> int { throw std::runtime_error("x"); }) == 1);
	CHECK(nerf::tool::report_errors("t", 1, argv, [](int, char**) -> int { throw 42; }) == 1);
	CHECK(nerf::tool::report_errors("t", 1, argv, [](int, char**) -> int { NERF_FAIL("y"); }) == 1);
	CHECK(nerf::tool::report_errors("t", 1, argv, [](int, char**) { return 0; }) == 0);
}

TEST_CASE("nerf_scene out of memory is one message and exit 1, not an abort", "[faults][tools]") {
	const std::string dir = fresh_dir("oom_scene");
	std::string out;
	// 100000^2 RGBA floats are 160 GB; under a 4 GB address-space limit the allocation fails for sure.
	const int rc = run_command("ulimit -v 4000000; " + tool("nerf_scene") + " --out " + dir + "/s --size 100000", out);
	CHECK(rc == 1);
	CHECK_THAT(out, Catch::Contains("nerf_scene: error: out of memory"));
}

// --- 2. a full disk loses nothing silently ---------------------------------------------------------

TEST_CASE("a full disk when writing summary.json or metrics.jsonl is an error and exit 1, not done", "[faults][tools]") {
	const std::string dir = fresh_dir("full_summary");
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.N_iters = 2;
	cfg.i_print = 1;
	cfg.quiet = false;
	std::string out;
	CHECK(run_command("NERF_TEST_FAIL_WRITE=summary.json " + tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 1);
	CHECK_THAT(out, Catch::Contains(dir + "/run/summary.json") && Catch::Contains("No space left on device"));
	CHECK_THAT(out, !Catch::Contains("done:"));
	CHECK_FALSE(fs::exists(dir + "/run/summary.json"));

	cfg.no_reload = true;
	CHECK(run_command("NERF_TEST_FAIL_WRITE=metrics.jsonl " + tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 1);
	CHECK_THAT(out, Catch::Contains(dir + "/run/metrics.jsonl") && Catch::Contains("No space left on device"));
}

TEST_CASE("PNG, EXR, metrics.json and video writes are atomic and report a full disk", "[faults][render]") {
	const std::string dir = fresh_dir("full_images");
	const std::vector<float> pixels(4 * 4 * 3, 0.5f);
	nerf::save_png(dir + "/a.png", pixels.data(), 4, 4, 3);
	nerf::set_write_failure_for_testing("a.png");
	CHECK_THROWS_WITH(nerf::save_png(dir + "/a.png", std::vector<float>(48, 1.0f).data(), 4, 4, 3),
	                  Catch::Contains(dir + "/a.png") && Catch::Contains("No space left on device"));
	nerf::set_write_failure_for_testing("a.exr");
	CHECK_THROWS_WITH(nerf::save_exr(dir + "/a.exr", pixels.data(), 4, 4), Catch::Contains("No space left on device"));
	nerf::set_write_failure_for_testing("clip.mp4");
	if (!nerf::find_ffmpeg().empty())
		CHECK_THROWS_WITH(nerf::write_video(dir + "/clip.mp4", {pixels, pixels}, 4, 4, 3), Catch::Contains("clip.mp4"));
	else
		WARN("ffmpeg is not on PATH: the full-disk video write is not tested");
	nerf::set_write_failure_for_testing("");
	// The earlier PNG is intact, nothing half-written is visible, no temporary file is left.
	CHECK(nerf::load_image(dir + "/a.png").pixels[0] == Approx(128.0f / 255.0f));
	CHECK_FALSE(fs::exists(dir + "/a.exr"));
	CHECK_FALSE(fs::exists(dir + "/clip.mp4"));
	size_t files = 0;
	for (const auto& e : fs::directory_iterator(dir)) files += e.path().filename() == "a.png" ? 1 : 100;
	CHECK(files == 1);
	// An appended log meets the disk's error on the very write: /dev/full is always full.
	nerf::AppendFile log;
	log.open("/dev/full", false);
	CHECK_THROWS_WITH(log.append("{\"step\": 1}\n"), Catch::Contains("/dev/full") && Catch::Contains("No space left on device"));
}

// --- 3. JPEG through libjpeg-turbo ----------------------------------------------------------------

TEST_CASE("JPEGs decode through libjpeg-turbo, a Huffman table past 256 codes is an error naming the file", "[faults][image]") {
	data_test::TempDir dir("jpeg");
	write_bytes(dir / "grey.jpg", encode_jpeg(16, 8, 1, 100));
	const nerf::Image grey = nerf::load_image(dir / "grey.jpg");
	CHECK(grey.width == 16);
	CHECK(grey.height == 8);
	CHECK(grey.channels == 1);
	CHECK(grey.pixels[37] == Approx(100.0f / 255.0f).margin(1.5f / 255.0f));
	write_bytes(dir / "rgb.jpg", encode_jpeg(8, 8, 3, 200));
	const nerf::Image rgb = nerf::load_image(dir / "rgb.jpg");
	CHECK(rgb.channels == 3);
	CHECK(rgb.pixels[5] == Approx(200.0f / 255.0f).margin(1.5f / 255.0f));

	// stb_image 2.27 writes out of bounds on this (its code-size table has 257 entries); libjpeg refuses it.
	std::vector<unsigned char> bad = encode_jpeg(8, 8, 1, 100);
	const size_t dht = find_marker(bad, 0xC4);
	bad[dht + 5 + 15] = 250;  // the count of 16-bit codes: the 16 counts now sum past 256
	write_bytes(dir / "huffman.jpg", bad);
	require_error([&] { nerf::load_image(dir / "huffman.jpg"); }, {dir / "huffman.jpg", "Huffman"});

	// A JPEG cut short is an error, not an image filled with grey.
	std::vector<unsigned char> cut = encode_jpeg(64, 64, 3, 10);
	cut.resize(cut.size() / 2);
	write_bytes(dir / "cut.jpg", cut);
	require_error([&] { nerf::load_image(dir / "cut.jpg"); }, {dir / "cut.jpg", "Premature end"});
}

// --- 4. small files do not allocate gigabytes ---------------------------------------------------------

TEST_CASE("npy: a header claiming more data than the file holds fails before allocating, empty arrays load", "[faults][npy]") {
	data_test::TempDir dir("npy_claims");
	const std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 17), }";
	std::string file = std::string("\x93NUMPY\x01\x00", 8);
	std::string padded = header;
	while ((10 + padded.size() + 1) % 64 != 0) padded.push_back(' ');
	padded.push_back('\n');
	file += std::string(1, (char)(padded.size() & 0xff)) + std::string(1, (char)(padded.size() >> 8)) + padded;
	write_text(dir / "huge.npy", file + std::string(64, '\0'));
	// 1.36e14 bytes: allocating first would throw std::bad_alloc, not this message.
	require_error([&] { nerf::load_npy(dir / "huge.npy"); }, {dir / "huge.npy", "truncated", "the file has 64"});

	nerf::save_npy(dir / "empty.npy", static_cast<const double*>(nullptr), {0, 17});
	const nerf::NpyArray empty = nerf::load_npy(dir / "empty.npy");
	CHECK(empty.shape == std::vector<size_t>{0, 17});
	CHECK(empty.data.empty());
}

TEST_CASE("images: a declared size above max_image_pixels or beyond what the file can hold fails before decoding", "[faults][image]") {
	data_test::TempDir dir("image_claims");
	// A 42-byte run-length TGA declaring 4096 x 4096: stb decodes it (padding with zeros) into 64 MB.
	std::vector<unsigned char> tga(18, 0);
	tga[2] = 10;  // RLE true colour
	tga[12] = 0x00, tga[13] = 0x10;  // width 4096
	tga[14] = 0x00, tga[15] = 0x10;  // height 4096
	tga[16] = 32;
	for (int k = 0; k < 4; ++k) {
		tga.push_back(0xFF);  // a run of 128 pixels
		for (int c = 0; c < 4; ++c) tga.push_back(0x80);
	}
	tga.resize(42, 0);
	write_bytes(dir / "tiny.tga", tga);
	require_error([&] { nerf::load_image(dir / "tiny.tga"); }, {dir / "tiny.tga", "4096x4096", "corrupt"});

	// A few hundred bytes of JPEG declaring 8000 x 8000 (64 M pixels, under the cap).
	std::vector<unsigned char> jpeg = encode_jpeg(16, 16, 3, 50);
	set_jpeg_size(jpeg, 8000, 8000);
	write_bytes(dir / "wide.jpg", jpeg);
	require_error([&] { nerf::load_image(dir / "wide.jpg"); }, {dir / "wide.jpg", "8000x8000", "corrupt"});
	// Above the cap, whatever the file's size; and the cap is an option.
	set_jpeg_size(jpeg, 60000, 60000);
	write_bytes(dir / "huge.jpg", jpeg);
	require_error([&] { nerf::load_image(dir / "huge.jpg"); }, {dir / "huge.jpg", "max_image_pixels = 268435456"});
	data_test::write_pattern_png(dir / "ok.png", 0, 20, 10, 3);
	CHECK(nerf::load_image(dir / "ok.png").width == 20);
	require_error([&] { nerf::load_image(dir / "ok.png", 199); }, {"max_image_pixels = 199"});
	nerf::Config cfg;
	const char* argv[] = {"nerf_train", "--max_image_pixels", "1000"};
	REQUIRE(nerf::parse_config(3, argv, cfg, ""));
	CHECK(cfg.max_image_pixels == 1000);
}

// --- 5. bad geometry is refused at load and at the render call -----------------------------------------

TEST_CASE("llff: a near bound <= 0, a zero focal and a degenerate rotation name the file and row", "[faults][llff]") {
	data_test::TempDir dir("llff_geometry");
	for (int i = 0; i < 3; ++i) data_test::write_pattern_png(dir / ("images/" + std::to_string(i) + ".png"), i, 8, 6, 3);
	auto write_rows = [&](int bad_row, int column, double value) {
		std::vector<double> rows;
		for (int i = 0; i < 3; ++i) {
			const double row[17] = {1, 0, 0, 0.1 * i, 6, 0, 1, 0, 0, 8, 0, 0, 1, 1, 10, 2.0 + i, 9.0};
			rows.insert(rows.end(), row, row + 17);
		}
		if (bad_row >= 0) rows[17 * bad_row + column] = value;
		nerf::save_npy(dir / "poses_bounds.npy", rows.data(), {3, 17});
	};
	write_rows(-1, 0, 0);
	CHECK(nerf::load_llff(dir.str(), 1, false, 0, false).poses.size() == 3);
	write_rows(1, 15, 0.0);
	require_error([&] { nerf::load_llff(dir.str(), 1, false, 0, false); }, {"poses_bounds.npy", "row 1", "near 0"});
	write_rows(2, 15, -3.0);
	require_error([&] { nerf::load_llff(dir.str(), 1, false, 0, false); }, {"poses_bounds.npy", "row 2", "near -3"});
	write_rows(0, 14, 0.0);
	require_error([&] { nerf::load_llff(dir.str(), 1, false, 0, false); }, {"poses_bounds.npy", "row 0", "focal"});
	write_rows(1, 0, 0.0);  // R[0][0] = 0 zeroes the identity's first row and column: determinant 0
	require_error([&] { nerf::load_llff(dir.str(), 1, false, 0, false); }, {"poses_bounds.npy", "row 1", "degenerate"});
}

TEST_CASE("nerf_render: a zero focal, camera_angle_x 0 or pi and a render_factor past the image are errors", "[faults][render]") {
	const std::string dir = fresh_dir("render_geometry");
	const nerf::Config cfg = tiny_config(dir, "run");
	const std::string ckpt = make_checkpoint(cfg, dir + "/c.safetensors");
	const std::string frames = R"("frames": [{"transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,4],[0,0,0,1]]}])";
	const std::string render = tool("nerf_render") + " --ckpt " + ckpt + " --quiet --threads 1 --no_depth --out " + dir + "/o --path ";
	std::string out;
	write_text(dir + "/focal0.json", R"({"H": 8, "W": 8, "focal": 0, )" + frames + "}");
	CHECK(run_command(render + dir + "/focal0.json", out) == 1);
	CHECK_THAT(out, Catch::Contains("focal0.json") && Catch::Contains("\"focal\" must be > 0"));
	for (const char* angle : {"0", "3.141592653589793"}) {
		write_text(dir + "/angle.json", std::string(R"({"H": 8, "W": 8, "camera_angle_x": )") + angle + ", " + frames + "}");
		CHECK(run_command(render + dir + "/angle.json", out) == 1);
		CHECK_THAT(out, Catch::Contains("angle.json") && Catch::Contains("camera_angle_x"));
	}
	write_text(dir + "/ok.json", R"({"H": 8, "W": 8, "camera_angle_x": 0.7, )" + frames + "}");
	CHECK(run_command(render + dir + "/ok.json --render_factor 1000", out) == 1);
	CHECK_THAT(out, Catch::Contains("render_factor 1000"));
	CHECK_FALSE(fs::exists(dir + "/o/000.png"));
	CHECK(run_command(render + dir + "/ok.json", out) == 0);
	CHECK(nerf::load_image(dir + "/o/000.png").width == 8);
	// The same checks guard the library's render call.
	auto backend = nerf::create_cpu_backend(1);
	nerf::NerfModel model(*backend, cfg);
	nerf::Camera cam;
	cam.H = cam.W = 8;
	cam.fx = cam.fy = 0.0f;
	nerf::RenderSettings settings;
	CHECK_THROWS_WITH(model.render_image(nerf::Pose{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 4}, cam, settings, 64),
	                  Catch::Contains("focal length"));
}

// --- 6. the NaN guard keeps only good checkpoints ---------------------------------------------------

TEST_CASE("a checkpoint saved after the update that diverged is not kept as good, a resume does not pick it", "[faults][checkpoint]") {
	const std::string dir = fresh_dir("diverged");
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.lrate = 1e30f;  // Adam's first step makes every weight ~1e30: finite, and the next forward overflows
	cfg.i_weights = 1;
	cfg.N_iters = 10;
	cfg.quiet = false;
	std::string out;
	CHECK(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 1);
	CHECK_THAT(out, Catch::Contains("at step 2") && Catch::Contains("No good checkpoint was saved") &&
	                    Catch::Contains("000001.safetensors.diverged"));
	CHECK_FALSE(fs::exists(dir + "/run/000001.safetensors"));
	CHECK(nerf::list_checkpoints(dir + "/run").empty());
	CHECK(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 1);
	CHECK_THAT(out, !Catch::Contains("Reloading"));
}

TEST_CASE("a NaN in a checkpoint's parameters or Adam state is refused at save and at load, naming the tensor", "[faults][checkpoint]") {
	const std::string dir = fresh_dir("nan_ckpt");
	const nerf::Config cfg = tiny_config(dir, "run");
	const std::string path = make_checkpoint(cfg, dir + "/a.safetensors");
	nerf::SafetensorsFile file = nerf::read_safetensors(path);
	std::vector<nerf::TensorRef> tensors;
	file.tensors.at("optimizer.exp_avg_sq.network_fn.pts_linears.1.bias").data[3] = NAN;
	for (const auto& [name, t] : file.tensors) tensors.push_back({name, t.shape, t.data.data()});
	nerf::write_safetensors(dir + "/nan.safetensors", tensors, file.metadata);
	auto backend = nerf::create_cpu_backend(1);
	nerf::NerfModel model(*backend, cfg);
	CHECK_THROWS_WITH(nerf::load_checkpoint(dir + "/nan.safetensors", model),
	                  Catch::Contains("nan.safetensors") && Catch::Contains("optimizer.exp_avg_sq.network_fn.pts_linears.1.bias") &&
	                      Catch::Contains("element 3"));
	// A model whose state went non-finite is not saved over a good checkpoint.
	std::vector<float> params(model.n_floats(), 0.0f);
	params[7] = INFINITY;
	backend->upload(model.params(), params.data(), params.size() * sizeof(float));
	CHECK_THROWS_WITH(nerf::save_checkpoint(path, model, 9), Catch::Contains("not saved") && Catch::Contains("inf"));
	CHECK(nerf::read_checkpoint_info(path).global_step == 3);
}

// --- 7. images smaller than SSIM's window ----------------------------------------------------------

// The SSIM of a small image itself is checked exactly in test_metrics.cpp; here, that training finishes.
TEST_CASE("SSIM of images smaller than 11x11 uses a window that fits, so tiny scenes finish training", "[faults][metrics]") {
	const std::string dir = fresh_dir("tiny_ssim");
	nerf_test::write_small_scene(dir + "/scene", 8, 2, 1, 1);
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.datadir = dir + "/scene";
	cfg.N_iters = 2;
	cfg.i_testset = 2;
	std::string out;
	REQUIRE(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 0);
	const nlohmann::json metrics = read_json(dir + "/run/testset_000002/metrics.json");
	CHECK(std::isfinite(metrics["mean_ssim"].get<double>()));
}

// --- 8. messages name the file and the option ------------------------------------------------------

TEST_CASE("unclear messages: npy overflow, a JSON type error, binary config text, N_samples with N_importance", "[faults][config]") {
	data_test::TempDir dir("messages");
	std::string npy = std::string("\x93NUMPY\x01\x00", 8);
	std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999, 17), }";
	while ((10 + header.size() + 1) % 64 != 0) header.push_back(' ');
	header.push_back('\n');
	npy += std::string(1, (char)header.size()) + std::string(1, '\0') + header;
	write_text(dir / "overflow.npy", npy);
	require_error([&] { nerf::load_npy(dir / "overflow.npy"); }, {dir / "overflow.npy", "too large"});

	// Binary junk is shown escaped and cut short, never raw.
	std::string junk = "\x01\x02\x1b[31m";
	for (int i = 0; i < 500; ++i) junk.push_back((char)(0x80 + i % 100));
	write_text(dir / "junk.txt", junk);
	nerf::Config cfg;
	try {
		nerf::load_config_file(dir / "junk.txt", cfg);
		FAIL("junk parsed");
	} catch (const nerf::Error& e) {
		const std::string what = e.what();
		CHECK_THAT(what, Catch::Contains("junk.txt:1") && Catch::Contains("\\x01\\x02\\x1B") && Catch::Contains("binary file"));
		CHECK(what.find('\x1b') == std::string::npos);
		CHECK(what.size() < 400);
	}

	const char* argv[] = {"nerf_train", "--N_samples", "2", "--N_importance", "64"};
	CHECK_THROWS_WITH(nerf::parse_config(5, argv, cfg, ""), Catch::Contains("N_samples = 2") && Catch::Contains("N_importance = 64"));
	nerf::Config model_cfg = tiny_config(dir.str(), "m");
	model_cfg.N_samples = 2;
	auto backend = nerf::create_cpu_backend(1);
	CHECK_THROWS_WITH(nerf::NerfModel(*backend, model_cfg),
	                  Catch::Contains("N_samples = 2") && Catch::Contains("N_importance = 8") && !Catch::Contains("check failed"));

	const std::string run_dir = fresh_dir("messages_render");
	const std::string ckpt = make_checkpoint(tiny_config(run_dir, "run"), run_dir + "/c.safetensors");
	write_text(run_dir + "/poses.json", R"({"H": "abc", "W": 8, "focal": 10, "frames": []})");
	std::string out;
	CHECK(run_command(tool("nerf_render") + " --ckpt " + ckpt + " --quiet --path " + run_dir + "/poses.json", out) == 1);
	CHECK_THAT(out, Catch::Contains(run_dir + "/poses.json") && Catch::Contains("\"H\" must be a number") &&
	                    !Catch::Contains("json.exception"));
}

// --- 9. safetensors sizes, and a corrupt newest checkpoint ------------------------------------------

TEST_CASE("safetensors: a shape whose size overflows or turns negative is corrupt", "[faults][checkpoint]") {
	const std::string dir = fresh_dir("st_shapes");
	auto raw = [](const std::string& header) {
		std::string s(8, '\0');
		for (int i = 0; i < 8; ++i) s[i] = (char)((header.size() >> (8 * i)) & 0xff);
		return s + header;
	};
	// 2^62 floats are 2^64 bytes, which wraps to 0 in 64 bits and so "matched" an empty byte range.
	write_text(dir + "/a.safetensors", raw(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})"));
	CHECK_THROWS_WITH(nerf::read_safetensors(dir + "/a.safetensors"), Catch::Contains("a.safetensors") && Catch::Contains("overflows"));
	// 2^63 read as int64 is negative.
	write_text(dir + "/b.safetensors", raw(R"({"w":{"dtype":"F32","shape":[9223372036854775808, 2],"data_offsets":[0,0]}})"));
	CHECK_THROWS_WITH(nerf::read_safetensors(dir + "/b.safetensors"), Catch::Contains("b.safetensors") && Catch::Contains("bad shape"));
	write_text(dir + "/c.safetensors", raw(R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,0]}})"));
	CHECK_THROWS_WITH(nerf::read_safetensors(dir + "/c.safetensors"), Catch::Contains("bad shape"));
}

TEST_CASE("a corrupt newest checkpoint names the newest one that loads and --ft_path, without loading it", "[faults][checkpoint]") {
	const std::string dir = fresh_dir("corrupt_newest");
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.N_iters = 6;
	fs::create_directories(dir + "/run");
	make_checkpoint(cfg, dir + "/run/000002.safetensors", 2);
	make_checkpoint(cfg, dir + "/run/000003.safetensors", 3);
	make_checkpoint(cfg, dir + "/run/000004.safetensors", 4);
	fs::resize_file(dir + "/run/000003.safetensors", 100);
	fs::resize_file(dir + "/run/000004.safetensors", 100);
	std::string out;
	CHECK(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 1);
	CHECK_THAT(out, Catch::Contains("000004.safetensors") && Catch::Contains("truncated") &&
	                    Catch::Contains("The newest checkpoint that loads is " + dir + "/run/000002.safetensors (step 2)") &&
	                    Catch::Contains("--ft_path " + dir + "/run/000002.safetensors"));
	CHECK_FALSE(fs::exists(dir + "/run/summary.json"));
	REQUIRE(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir) + " --ft_path " + dir + "/run/000002.safetensors",
	                    out) == 0);
	CHECK(read_json(dir + "/run/summary.json")["steps"] == 6);
}

// --- 10. leftovers ----------------------------------------------------------------------------------

TEST_CASE("remove_stale_temporaries removes only names exactly as AtomicFile makes them", "[faults]") {
	const std::string dir = fresh_dir("stale_names");
	const std::string dead = std::to_string(dead_pid());
	const std::vector<std::string> ours = {"a.png.tmp." + dead + ".Ab3dEf", "000002.safetensors.tmp.Xy9zQw"};
	// A user's files that merely contain ".tmp.": none is a temporary of ours.
	const std::vector<std::string> theirs = {"notes.tmp." + dead + ".bak", "notes.tmp." + dead + ".Ab3dEf.old",
	                                         "data.tmp.backup", "000002.safetensors.tmp.backup.1", "model.tmp.Ab3dEf"};
	for (const auto& name : ours) write_text(dir + "/" + name, "x");
	for (const auto& name : theirs) write_text(dir + "/" + name, "x");
	CHECK(nerf::remove_stale_temporaries(dir) == ours.size());
	for (const auto& name : ours) CHECK_FALSE(fs::exists(dir + "/" + name));
	for (const auto& name : theirs) CHECK(fs::exists(dir + "/" + name));
}

TEST_CASE("a run removes stale temporary files, keeps metrics.jsonl to the resumed step and keeps the real final loss", "[faults][tools]") {
	const std::string dir = fresh_dir("leftovers");
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.N_iters = 4;
	cfg.i_print = 1;
	cfg.i_weights = 2;
	std::string out;
	fs::create_directories(dir + "/run");
	const std::string stale = dir + "/run/000002.safetensors.tmp." + std::to_string(dead_pid()) + ".Ab3dEf";
	const std::string live = dir + "/run/000002.safetensors.tmp." + std::to_string(::getpid()) + ".Xy9zQw";
	write_text(stale, "half a checkpoint");
	write_text(live, "being written");
	REQUIRE(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 0);
	CHECK_FALSE(fs::exists(stale));
	CHECK(fs::exists(live));
	const double final_loss = read_json(dir + "/run/summary.json")["final_loss"].get<double>();
	CHECK(final_loss > 0.0);

	// A kill after step 4's log line but before its checkpoint: the run resumes from step 2.
	fs::remove(dir + "/run/000004.safetensors");
	write_text(dir + "/run/metrics.jsonl", read_text(dir + "/run/metrics.jsonl") + "{\"step\": 5, \"lo");
	REQUIRE(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 0);
	std::vector<long> steps;
	std::istringstream lines(read_text(dir + "/run/metrics.jsonl"));
	for (std::string line; std::getline(lines, line);) steps.push_back(nlohmann::json::parse(line)["step"].get<long>());
	CHECK(steps == std::vector<long>{1, 2, 3, 4});

	// Nothing left to train: said so, and the loss is the checkpoint's, not 0.
	cfg.quiet = false;
	REQUIRE(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 0);
	CHECK_THAT(out, Catch::Contains("nothing to train"));
	CHECK(read_json(dir + "/run/summary.json")["final_loss"].get<double>() == Approx(final_loss).epsilon(1e-6));
}

// --- 11. the command line ---------------------------------------------------------------------------

TEST_CASE("nerf_render validates --threads --H --chunk, nerf_scene bounds --supersample, the last repeated option wins", "[faults][tools]") {
	const std::string dir = fresh_dir("cli");
	const nerf::Config cfg = tiny_config(dir, "run");
	const std::string ckpt = make_checkpoint(cfg, dir + "/c.safetensors");
	write_text(dir + "/p.json",
	           R"({"H": 8, "W": 8, "camera_angle_x": 0.7, "frames": [{"transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,4],[0,0,0,1]]}]})");
	const std::string render = tool("nerf_render") + " --ckpt " + ckpt + " --quiet --no_depth --path " + dir + "/p.json --out " + dir + "/o";
	std::string out;
	CHECK(run_command(render + " --threads -5", out) == 1);
	CHECK_THAT(out, Catch::Contains("threads") && Catch::Contains(">= 0") && Catch::Contains("-5"));
	CHECK(run_command(render + " --H -1", out) == 1);
	CHECK_THAT(out, Catch::Contains("--H must be >= 1, got -1"));
	CHECK(run_command(render + " --chunk -1", out) == 1);
	CHECK_THAT(out, Catch::Contains("chunk") && Catch::Contains("> 0"));
	CHECK(run_command(render + " --threads 1 --H 6 --H 12", out) == 0);
	CHECK(nerf::load_image(dir + "/o/000.png").height == 12);

	CHECK(run_command(tool("nerf_scene") + " --out " + dir + "/s --supersample 100000", out) == 1);
	CHECK_THAT(out, Catch::Contains("supersample must be in [1, 16]"));
	REQUIRE(run_command(tool("nerf_scene") + " --out " + dir + "/s --size 4 --size 6 --n_train 1 --n_val 0 --n_test 0", out) == 0);
	CHECK(nerf::load_image(dir + "/s/train/r_0.png").width == 6);
}

// --- 12. the main job does not depend on the machine's load -------------------------------------------

TEST_CASE("the main job is a fixed number of steps, and the tools' OpenMP threads wait passively", "[faults][config]") {
	nerf::Config cfg;
	nerf::load_config_file(std::string(NERF_SOURCE_DIR) + "/configs/builtin.txt", cfg);
	CHECK(cfg.max_seconds == 0.0);
	CHECK(cfg.N_iters == 3000);

	// libgomp shows its spin count when asked: 0 is passive waiting, 300000 its spinning default.
	const std::string display = "OMP_DISPLAY_ENV=verbose ";
	std::string out;
	REQUIRE(run_command("unset OMP_WAIT_POLICY; " + display + tool("nerf_scene") + " --help", out) == 0);
	CHECK_THAT(out, Catch::Contains("GOMP_SPINCOUNT = '0'") && Catch::Contains("--supersample"));
	// What the user sets is kept.
	REQUIRE(run_command("OMP_WAIT_POLICY=active " + display + tool("nerf_scene") + " --help", out) == 0);
	// The positive form too: without the dump, the negative one would pass on nothing.
	CHECK_THAT(out, Catch::Contains("OMP_WAIT_POLICY = 'ACTIVE'") && Catch::Contains("GOMP_SPINCOUNT = '") &&
	                    !Catch::Contains("GOMP_SPINCOUNT = '0'"));
}
