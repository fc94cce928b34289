// Rendering tools: views with metrics, the reference's folder and file names, videos (ffmpeg or PNG
// frames), and nerf_render reproducing the trainer's test-set PSNR.
#include "nerf/checkpoint.h"
#include "nerf/io/image.h"
#include "nerf/metrics.h"
#include "nerf/render.h"
#include "nerf/trainer.h"

#include "tools_fixture.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;
using nerf_test::fresh_dir;
using nerf_test::read_text;
using nerf_test::tiny_config;

namespace {

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_text(path)); }

using nerf_test::run_command;
using nerf_test::tool;

/// ffprobe's "width,height,frames" of a video's first stream.
std::string probe_video(const std::string& path) {
	std::string out;
	run_command("ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=width,height,nb_read_frames -of "
	            "csv=p=0 '" + path + "'",
	            out);
	while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
	return out;
}

} // namespace

TEST_CASE("disparity video frames are disp / max(disp) over all frames, empty rays black", "[tools][render]") {
	const std::vector<std::vector<float>> disp = {{0.5f, 1.0f, 1e10f}, {2.0f, 0.0f, NAN}};
	const auto n = nerf::normalise_disparity(disp);
	CHECK(n[0][0] == 0.25f);
	CHECK(n[0][1] == 0.5f);
	CHECK(n[1][0] == 1.0f);
	CHECK(n[1][1] == 0.0f);
	// Empty rays (no density: 1 / max(1e-10, 0/0)) are black and do not set the maximum.
	CHECK(n[0][2] == 0.0f);
	CHECK(n[1][2] == 0.0f);
}

TEST_CASE("write_video: PNG frames when there is no ffmpeg", "[tools][render]") {
	const std::string dir = fresh_dir("video_png");
	std::vector<std::vector<float>> frames;
	for (int f = 0; f < 3; ++f) frames.push_back(std::vector<float>(5 * 4 * 3, 0.2f * (float)f));
	const std::string written = nerf::write_video(dir + "/clip_rgb.mp4", frames, 5, 4, 3, 30, "");
	CHECK(written == dir + "/clip_rgb");
	CHECK_FALSE(fs::exists(dir + "/clip_rgb.mp4"));
	const nerf::Image last = nerf::load_image(dir + "/clip_rgb/002.png");
	CHECK(last.width == 5);
	CHECK(last.height == 4);
	CHECK(last.channels == 3);
	CHECK(last.pixels[7] == Approx(102.0 / 255.0));  // 0.4 -> round(102.0)
	CHECK_FALSE(fs::exists(dir + "/clip_rgb/003.png"));
}

TEST_CASE("without ffmpeg on PATH nerf_render writes both videos as PNG frames with one warning", "[tools][render]") {
	const std::string dir = fresh_dir("video_warn");
	nerf::Config cfg = tiny_config(dir, "run");
	auto backend = nerf::create_cpu_backend(1);
	nerf::NerfModel model(*backend, cfg);
	nerf::save_checkpoint(dir + "/000001.safetensors", model, 1);
	std::string output;
	const int rc = run_command("PATH=/nonexistent " + tool("nerf_render") + " --ckpt " + dir +
	                               "/000001.safetensors --render_factor 2 --video --no_depth --quiet --threads 1 --out " + dir + "/out",
	                           output);
	INFO(output);
	REQUIRE(rc == 0);
	const std::string warning = "warning: ffmpeg is not on PATH";
	const size_t first = output.find(warning);
	CHECK(first != std::string::npos);
	CHECK(output.find(warning, first + 1) == std::string::npos);
	CHECK(fs::exists(dir + "/out/video_rgb/039.png"));
	CHECK(fs::exists(dir + "/out/video_disp/039.png"));
	CHECK_FALSE(fs::exists(dir + "/out/video_rgb.mp4"));
	CHECK(nerf::load_image(dir + "/out/video_disp/000.png").channels == 1);
}

TEST_CASE("write_video: an mp4 through ffmpeg, odd sizes padded", "[tools][render]") {
	if (nerf::find_ffmpeg().empty()) {
		WARN("ffmpeg is not on PATH: skipping the mp4 test");
		return;
	}
	const std::string dir = fresh_dir("video_mp4");
	std::vector<std::vector<float>> rgb, grey;
	for (int f = 0; f < 4; ++f) {
		rgb.push_back(std::vector<float>(17 * 9 * 3, 0.25f * (float)f));
		grey.push_back(std::vector<float>(17 * 9, 0.25f * (float)f));
	}
	CHECK(nerf::write_video(dir + "/a.mp4", rgb, 17, 9, 3) == dir + "/a.mp4");
	CHECK(nerf::write_video(dir + "/b.mp4", grey, 17, 9, 1) == dir + "/b.mp4");
	CHECK(fs::file_size(dir + "/a.mp4") > 0);
	if (std::system("ffprobe -version > /dev/null 2>&1") == 0) {
		CHECK(probe_video(dir + "/a.mp4") == "18,10,4");
		CHECK(probe_video(dir + "/b.mp4") == "18,10,4");
	}
	CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}) == 2);
}

// Its own test case, with the ffmpeg named, so that it also runs where ffmpeg is not installed.
TEST_CASE("write_video: a missing folder and a failing ffmpeg are errors naming the file, leaving nothing",
          "[tools][render]") {
	const std::string dir = fresh_dir("video_errors");
	const std::vector<std::vector<float>> rgb(2, std::vector<float>(17 * 9 * 3, 0.5f));
	CHECK_THROWS_WITH(nerf::write_video(dir + "/missing/c.mp4", rgb, 17, 9, 3, 30, "/bin/false"),
	                  Catch::Contains("missing/c.mp4") && Catch::Contains("cannot create a temporary file"));
	CHECK_THROWS_WITH(nerf::write_video(dir + "/d.mp4", rgb, 17, 9, 3, 30, "/bin/false"),
	                  Catch::Contains("d.mp4") && Catch::Contains("ffmpeg failed"));
	CHECK_FALSE(fs::exists(dir + "/missing"));
	CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}) == 0);
}

TEST_CASE("render tools: test set, render path videos and render_only, named as the reference", "[tools][render]") {
	const std::string dir = fresh_dir("render_outputs");
	nerf::Config cfg = tiny_config(dir, "scene");
	const nerf::Dataset data = nerf::load_dataset(cfg);
	auto backend = nerf::create_cpu_backend(1);
	nerf::Trainer trainer(cfg, data, *backend);
	for (long i = 1; i <= 5; ++i) trainer.step(i);
	const std::string run = dir + "/scene";

	const nerf::EvalReport report = nerf::render_testset(trainer.model(), data, cfg, run, 5);
	const std::string testset = run + "/testset_000005";
	REQUIRE(report.views.size() == data.i_test.size());
	for (const char* f : {"000.png", "001.png", "000_depth.exr", "000_disp.exr", "metrics.json"})
		CHECK(fs::exists(testset + "/" + f));
	const nlohmann::json metrics = read_json(testset + "/metrics.json");
	CHECK(metrics["split"] == "test");
	CHECK(metrics["step"] == 5);
	CHECK(metrics["views"].size() == data.i_test.size());
	CHECK(metrics["views"][1]["index"] == data.i_test[1]);
	CHECK(metrics["mean_psnr"].get<double>() == Approx(report.mean_psnr).epsilon(1e-12));
	// The numbers are those of an independent render of the same view.
	const nerf::RenderedRays view1 = trainer.model().render_image(
	    data.poses[data.i_test[1]], nerf::dataset_camera(data), nerf::RenderSettings::from_config(cfg, data, false), 64);
	const double psnr1 = nerf::psnr(view1.rgb.data(), data.image(data.i_test[1]), view1.rgb.size());
	CHECK(metrics["views"][1]["psnr"].get<double>() == Approx(psnr1).epsilon(1e-9));
	CHECK(metrics["views"][1]["ssim"].get<double>() ==
	      Approx(nerf::ssim(view1.rgb.data(), data.image(data.i_test[1]), data.H, data.W, 3)).epsilon(1e-9));
	CHECK(report.mean_psnr > 3.0);
	CHECK(report.mean_psnr < 40.0);
	// The PNG is the render, 8-bit.
	const nerf::Image png = nerf::load_image(testset + "/001.png");
	CHECK(png.width == data.W);
	CHECK(png.pixels[10] == Approx(std::round(std::min(1.0f, std::max(0.0f, view1.rgb[10])) * 255.0f) / 255.0f));

	nerf::render_path_videos(trainer.model(), data, cfg, run, "scene", 5);
	if (!nerf::find_ffmpeg().empty()) {
		CHECK(fs::file_size(run + "/scene_spiral_000005_rgb.mp4") > 0);
		CHECK(fs::file_size(run + "/scene_spiral_000005_disp.mp4") > 0);
	} else {
		CHECK(fs::exists(run + "/scene_spiral_000005_rgb/039.png"));
	}

	nerf::Config only = cfg;
	only.render_only = true;
	only.render_test = true;
	CHECK(nerf::render_only(trainer.model(), data, only, run, 5) == run + "/renderonly_test_000005");
	CHECK(fs::exists(run + "/renderonly_test_000005/001.png"));
	CHECK(fs::exists(run + "/renderonly_test_000005/metrics.json"));
	only.render_test = false;
	only.render_factor = 2;
	CHECK(nerf::render_only(trainer.model(), data, only, run, 5) == run + "/renderonly_path_000005");
	const nerf::Image small = nerf::load_image(run + "/renderonly_path_000005/039.png");
	CHECK(small.width == data.W / 2);
	CHECK(small.height == data.H / 2);
	CHECK_FALSE(fs::exists(run + "/renderonly_path_000005/metrics.json"));
}

TEST_CASE("nerf_render --eval reproduces the PSNR that nerf_train reported for the same views", "[tools][render]") {
	const std::string dir = fresh_dir("render_eval");
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.N_iters = 6;
	cfg.i_testset = 6;
	cfg.i_video = 6;
	cfg.n_val_eval = -1;
	const std::string config = nerf_test::config_file(cfg, dir);
	std::string output;
	REQUIRE(run_command(tool("nerf_train") + " --config " + config, output) == 0);
	const std::string ckpt = dir + "/run/000006.safetensors";
	const nlohmann::json in_trainer = read_json(dir + "/run/testset_000006/metrics.json");
	const nlohmann::json train_summary = read_json(dir + "/run/summary.json");
	const nerf::Dataset data = nerf::load_dataset(cfg);
	if (!nerf::find_ffmpeg().empty()) {
		CHECK(fs::file_size(dir + "/run/run_spiral_000006_rgb.mp4") > 0);
		CHECK(fs::file_size(dir + "/run/run_spiral_000006_disp.mp4") > 0);
	}

	// render_only reloads the newest checkpoint, renders and exits without training.
	REQUIRE(run_command(tool("nerf_train") + " --config " + config + " --render_only --render_test", output) == 0);
	CHECK(fs::exists(dir + "/run/renderonly_test_000006/001.png"));
	CHECK(read_json(dir + "/run/renderonly_test_000006/metrics.json")["mean_psnr"] == in_trainer["mean_psnr"]);
	CHECK(nerf::list_checkpoints(dir + "/run").size() == 1);

	const std::string out_dir = dir + "/eval";
	const int rc = run_command(tool("nerf_render") + " --ckpt " + ckpt + " --path test --eval --quiet --device cpu --threads 1 --out " +
	                               out_dir,
	                           output);
	INFO(output);
	REQUIRE(rc == 0);
	const nlohmann::json summary = read_json(out_dir + "/eval_summary.json");
	CHECK(summary["step"] == 6);
	CHECK(summary["n_views"] == data.i_test.size());
	CHECK(summary["mean_psnr"].get<double>() == Approx(in_trainer["mean_psnr"].get<double>()).epsilon(1e-12));
	CHECK(summary["mean_ssim"].get<double>() == Approx(in_trainer["mean_ssim"].get<double>()).epsilon(1e-12));
	const nlohmann::json views = read_json(out_dir + "/metrics.json")["views"];
	REQUIRE(views.size() == in_trainer["views"].size());
	for (size_t v = 0; v < views.size(); ++v) CHECK(views[v]["psnr"] == in_trainer["views"][v]["psnr"]);
	CHECK(summary["mean_psnr"].get<double>() > 5.0);

	// The val PSNR of nerf_train's summary.json (computed by the trainer's own evaluation, in float).
	REQUIRE(run_command(tool("nerf_render") + " --ckpt " + ckpt + " --path val --eval --quiet --threads 1 --out " + dir + "/val",
	                    output) == 0);
	CHECK(read_json(dir + "/val/eval_summary.json")["mean_psnr"].get<double>() ==
	      Approx(train_summary["final_val_psnr"].get<double>()).epsilon(1e-6));

	// Sizes: render_factor divides H, W and focal; --W alone keeps the dataset's H and scales focal.
	REQUIRE(run_command(tool("nerf_render") + " --ckpt " + ckpt + " --path test --render_factor 2 --no_depth --quiet --threads 1 --out " +
	                        dir + "/half",
	                    output) == 0);
	CHECK(nerf::load_image(dir + "/half/001.png").width == data.W / 2);
	CHECK_FALSE(fs::exists(dir + "/half/001_depth.exr"));
	REQUIRE(run_command(tool("nerf_render") + " --ckpt " + ckpt + " --path val --W 24 --quiet --threads 1 --out " + dir + "/wide",
	                    output) == 0);
	const nerf::Image wide = nerf::load_image(dir + "/wide/000.png");
	CHECK(wide.width == 24);
	CHECK(wide.height == data.H);
	CHECK(run_command(tool("nerf_render") + " --help", output) == 0);
	CHECK_THAT(output, Catch::Contains("--ckpt") && Catch::Contains("--eval"));

	// A poses file: no dataset, a size of our choosing.
	const std::string poses = dir + "/poses.json";
	nlohmann::json frames = nlohmann::json::array();
	const nerf::Pose& p = data.poses[data.i_test[0]];
	frames.push_back({{"transform_matrix",
	                   {{p[0], p[1], p[2], p[3]}, {p[4], p[5], p[6], p[7]}, {p[8], p[9], p[10], p[11]}, {0, 0, 0, 1}}}});
	nerf_test::write_text(poses, nlohmann::json({{"camera_angle_x", 0.6911112070083618}, {"H", 12}, {"W", 20}, {"frames", frames}}).dump());
	REQUIRE(run_command(tool("nerf_render") + " --ckpt " + ckpt + " --path " + poses + " --quiet --threads 1 --out " + dir + "/custom",
	                    output) == 0);
	const nerf::Image custom = nerf::load_image(dir + "/custom/000.png");
	CHECK(custom.width == 20);
	CHECK(custom.height == 12);
}

TEST_CASE("nerf_train: args.txt as nerf-pytorch's, and a final evaluation that is bounded, shown and can be off",
          "[tools][render]") {
	const std::string dir = fresh_dir("final_eval");
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.N_iters = 2;
	cfg.quiet = false;
	const std::string config = nerf_test::config_file(cfg, dir);
	std::string output;
	// The tiny scene has 2 val views; n_val_eval's default renders the first.
	REQUIRE(nerf::Config{}.n_val_eval == 1);
	REQUIRE(cfg.n_val_eval == 1);
	REQUIRE(run_command(tool("nerf_train") + " --config " + config, output) == 0);
	INFO(output);
	CHECK_THAT(output, Catch::Contains("final evaluation: 1 of 2 val views at 16x16") &&
	                       Catch::Contains("[EVAL] View: 1/1  PSNR: ") && Catch::Contains("dB over 1 view ("));
	nlohmann::json summary = read_json(dir + "/run/summary.json");
	CHECK(summary["val_views"] == 1);
	CHECK(summary["final_val_psnr"].get<double>() > 5.0);
	CHECK(summary["eval_seconds"].get<double>() > 0.0);

	// The same first view as the trainer's own evaluation, in the same float arithmetic.
	auto backend = nerf::create_cpu_backend(1);
	const nerf::Dataset data = nerf::load_dataset(cfg);
	nerf::Trainer trainer(cfg, data, *backend);
	nerf::load_checkpoint(dir + "/run/000002.safetensors", trainer.model());
	CHECK(trainer.val_eval_views(1) == std::vector<int>{data.i_val[0]});
	CHECK(trainer.val_eval_views(-1) == data.i_val);
	CHECK(trainer.evaluate_val_psnr(1) == summary["final_val_psnr"].get<double>());
	CHECK(std::isnan(trainer.evaluate_val_psnr(0)));

	// args.txt: every option, sorted, values as Python prints them; config.txt stays readable by --config.
	const std::string args = read_text(dir + "/run/args.txt");
	CHECK(args.rfind("N_importance = 8\nN_iters = 2\nN_rand = 64\nN_samples = 8\nbase_resolution = 16\nbasedir = " + dir + "\n", 0) == 0);
	CHECK_THAT(args, Catch::Contains("\nft_path = None\n") && Catch::Contains("\nn_val_eval = 1\n") &&
	                     Catch::Contains("\nperturb = 1.0\n") && Catch::Contains("\nwhite_bkgd = True\n") &&
	                     Catch::Contains("\nlrate = 0.005\n") && Catch::Contains("\nconfig = " + config + "\n"));
	nerf::Config reread;
	nerf::load_config_file(dir + "/run/config.txt", reread);
	CHECK(reread.n_val_eval == 1);

	// --n_val_eval 0: no evaluation at all, and summary.json says so.
	REQUIRE(run_command(tool("nerf_train") + " --config " + config + " --n_val_eval 0 --no_reload", output) == 0);
	CHECK_THAT(output, Catch::Contains("no final evaluation") && !Catch::Contains("[EVAL]") &&
	                       !Catch::Contains("final evaluation:"));
	summary = read_json(dir + "/run/summary.json");
	CHECK(summary["final_val_psnr"].is_null());
	CHECK(summary["val_views"] == 0);
	CHECK(summary["eval_seconds"] == 0.0);
	CHECK(summary["steps"] == 2);
}
