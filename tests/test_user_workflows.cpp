// What a new user met (issue 21), one test case per finding: run folders that mixed two runs, options
// changed silently on a resume, summaries overwritten by a re-run, render_only rewriting the training
// run's config or rendering an untrained network, reports that called val views "test", rays dropped
// without a sign, command-line errors without the tool's name or a suggestion, and nerf_render's
// --ckpt and --path taken too literally.
#include "nerf/checkpoint.h"
#include "nerf/config.h"
#include "nerf/io/output_file.h"
#include "nerf/io/safetensors.h"

#include "tools_fixture.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include <sys/stat.h>

namespace fs = std::filesystem;
using nerf_test::config_file;
using nerf_test::fresh_dir;
using nerf_test::read_text;
using nerf_test::run_command;
using nerf_test::tiny_config;
using nerf_test::tool;
using nerf_test::write_text;

namespace {

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_text(path)); }

/// nerf_train with this config (written to dir/config.txt) and extra arguments; returns the exit code.
int train(const nerf::Config& cfg, const std::string& dir, const std::string& args, std::string& out) {
	return run_command(tool("nerf_train") + " --config " + config_file(cfg, dir) + " " + args, out);
}

/// The folders previous_run_* in a run folder.
std::vector<std::string> previous_runs(const std::string& run) {
	std::vector<std::string> found;
	for (const auto& e : fs::directory_iterator(run))
		if (e.is_directory() && e.path().filename().string().rfind("previous_run_", 0) == 0) found.push_back(e.path().string());
	std::sort(found.begin(), found.end());
	return found;
}

std::vector<std::string> names_in(const std::string& dir) {
	std::vector<std::string> names;
	for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
	std::sort(names.begin(), names.end());
	return names;
}

/// The seed a checkpoint's stored config names.
unsigned long long checkpoint_seed(const std::string& path) { return nerf::config_from_checkpoint(path).seed; }

std::vector<nlohmann::json> metrics_lines(const std::string& path) {
	std::vector<nlohmann::json> lines;
	std::istringstream in(read_text(path));
	for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
	return lines;
}

} // namespace

TEST_CASE("a fresh run into a run folder moves the old run's files aside, so the next resume continues the new run",
          "[tools][user]") {
	const std::string dir = fresh_dir("user_no_reload");
	const std::string run = dir + "/run";
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.N_iters = 6;
	cfg.i_weights = 2;
	cfg.seed = 0;
	std::string out;
	REQUIRE(train(cfg, dir, "", out) == 0);
	REQUIRE(nerf::list_checkpoints(run).size() == 3);

	// The sequence: --no_reload with fewer steps and another seed.
	cfg.quiet = false;
	REQUIRE(train(cfg, dir, "--no_reload --N_iters 2 --seed 7", out) == 0);
	INFO(out);
	CHECK_THAT(out, Catch::Contains("moved the previous run's 3 checkpoint(s) and 4 other output(s) from " + run) &&
	                    Catch::Contains("nothing was deleted"));
	CHECK(nerf::list_checkpoints(run) == std::vector<std::string>{run + "/000002.safetensors"});
	CHECK(checkpoint_seed(run + "/000002.safetensors") == 7);
	const std::vector<std::string> aside = previous_runs(run);
	REQUIRE(aside.size() == 1);
	CHECK(names_in(aside[0]) == std::vector<std::string>{"000002.safetensors", "000004.safetensors", "000006.safetensors",
	                                                       "args.txt", "config.txt", "metrics.jsonl", "summary.json"});
	CHECK(checkpoint_seed(aside[0] + "/000006.safetensors") == 0);
	CHECK(read_json(aside[0] + "/summary.json")["steps"] == 6);

	// The next normal run resumes the new run (seed 7, step 2), not the old run's step 6.
	REQUIRE(train(cfg, dir, "--N_iters 4 --seed 7", out) == 0);
	CHECK_THAT(out, Catch::Contains("Reloading from " + run + "/000002.safetensors") && !Catch::Contains("moved"));
	CHECK(nerf::read_checkpoint_info(run + "/000004.safetensors").global_step == 4);
	CHECK(checkpoint_seed(run + "/000004.safetensors") == 7);
	CHECK(previous_runs(run).size() == 1);

	// --ft_path back to an older checkpoint of this folder: the later one is another branch, moved aside
	// with the summary that describes it; the logs are copied.
	REQUIRE(train(cfg, dir, "--N_iters 3 --seed 7 --ft_path " + run + "/000002.safetensors", out) == 0);
	CHECK_THAT(out, Catch::Contains("moved 1 checkpoint(s) past step 2 and 1 other output(s)"));
	CHECK(nerf::list_checkpoints(run) == std::vector<std::string>{run + "/000002.safetensors", run + "/000003.safetensors"});
	const std::vector<std::string> aside2 = previous_runs(run);
	REQUIRE(aside2.size() == 2);
	const std::string branch = aside2[0] == aside[0] ? aside2[1] : aside2[0];
	CHECK(names_in(branch) ==
	      std::vector<std::string>{"000004.safetensors", "args.txt", "config.txt", "metrics.jsonl", "summary.json"});
	CHECK(read_json(branch + "/summary.json")["steps"] == 4);
	CHECK(read_json(run + "/summary.json")["steps"] == 3);
}

TEST_CASE("a resume names the options that differ from the checkpoint's and refuses those it fixes", "[tools][user]") {
	const std::string dir = fresh_dir("user_changed_options");
	const std::string run = dir + "/run";
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.N_iters = 2;
	std::string out;
	REQUIRE(train(cfg, dir, "", out) == 0);
	cfg.quiet = false;
	REQUIRE(train(cfg, dir, "--N_iters 3 --lrate 0.05 --seed 3 --N_rand 128", out) == 0);
	INFO(out);
	CHECK_THAT(out, Catch::Contains("options that differ from the checkpoint's: N_rand 64 -> 128, lrate 0.005 -> 0.05, "
	                                "N_iters 2 -> 3, seed 7 -> 3\n"));
	// An unchanged resume says nothing of the kind.
	REQUIRE(train(cfg, dir, "--N_iters 4 --lrate 0.05 --seed 3 --N_rand 128", out) == 0);
	CHECK_THAT(out, Catch::Contains("options that differ from the checkpoint's: N_iters 3 -> 4\n"));

	const auto args_before = read_text(run + "/args.txt");
	for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
	         {"--multires 5", "multires = 4 in the checkpoint, 5 now (the positional encoding of positions)"},
	         {"--netdepth_fine 3", "netdepth_fine = 2 in the checkpoint, 3 now (the fine network's shape)"},
	         {"--N_importance 0", "N_importance = 8 in the checkpoint, 0 now (whether there is a fine network)"},
	         {"--occ_grid", "occ_grid = False in the checkpoint, True now (the field type"},
	     }) {
		CHECK(train(cfg, dir, "--N_iters 5 " + args, out) == 1);
		CHECK_THAT(out, Catch::Contains("nerf_train: error: " + run + "/000004.safetensors: this run cannot resume") &&
		                    Catch::Contains(message) && Catch::Contains("--no_reload"));
	}
	CHECK(read_text(run + "/args.txt") == args_before);  // a refused resume starts nothing
	// The number of fine samples is not a shape: it may change.
	REQUIRE(train(cfg, dir, "--N_iters 5 --N_importance 16", out) == 0);
	CHECK_THAT(out, Catch::Contains("N_importance 8 -> 16"));
}

TEST_CASE("the table of options a checkpoint fixes: every name an option, each judged only where it shapes something",
          "[config][user]") {
	const std::vector<std::string> names = nerf::option_names();
	for (const nerf::FixedOption& fixed : nerf::options_fixed_by_checkpoint())
		CHECK(std::find(names.begin(), names.end(), fixed.name) != names.end());
	nerf::Config trained;
	trained.N_importance = 64;
	nerf::Config resumed = trained;
	resumed.N_importance = 128;
	resumed.lrate = 1.0f;
	CHECK(nerf::fixed_option_conflicts(trained, resumed).empty());
	resumed.netwidth = 128;
	resumed.occ_resolution = 64;  // no grid in either: not a shape
	CHECK(nerf::fixed_option_conflicts(trained, resumed) ==
	      std::vector<std::string>{"netwidth = 256 in the checkpoint, 128 now (the coarse network's shape)"});
	trained.N_importance = resumed.N_importance = 0;
	resumed.netwidth = 256;
	resumed.netwidth_fine = 32;  // no fine network: not a shape
	CHECK(nerf::fixed_option_conflicts(trained, resumed).empty());
	trained.occ_grid = resumed.occ_grid = true;
	CHECK(nerf::fixed_option_conflicts(trained, resumed) ==
	      std::vector<std::string>{"occ_resolution = 128 in the checkpoint, 64 now (the occupancy grid's shape)"});
}

TEST_CASE("training seconds accumulate over resumes, nothing to train leaves summary.json as it was", "[tools][user]") {
	const std::string dir = fresh_dir("user_seconds");
	const std::string run = dir + "/run";
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.N_iters = 4;
	cfg.i_print = 1;
	cfg.i_weights = 2;
	std::string out;
	REQUIRE(train(cfg, dir, "", out) == 0);
	const double seconds4 = nerf::read_checkpoint_info(run + "/000004.safetensors").train_seconds;
	CHECK(seconds4 > 0.0);
	CHECK(nerf::read_checkpoint_info(run + "/000002.safetensors").train_seconds < seconds4);
	REQUIRE(train(cfg, dir, "--N_iters 6", out) == 0);
	const double seconds6 = nerf::read_checkpoint_info(run + "/000006.safetensors").train_seconds;
	CHECK(seconds6 > seconds4);
	const nlohmann::json summary = read_json(run + "/summary.json");
	CHECK(summary["steps"] == 6);
	CHECK(summary["seconds"].get<double>() >= seconds6);
	// metrics.jsonl's seconds go on from the checkpoint's, they do not restart at the resume.
	const auto lines = metrics_lines(run + "/metrics.jsonl");
	REQUIRE(lines.size() == 6);
	for (size_t k = 1; k < lines.size(); ++k) CHECK(lines[k]["seconds"].get<double>() > lines[k - 1]["seconds"].get<double>());
	CHECK(lines[4]["seconds"].get<double>() > seconds4);

	// The re-runs: the same N_iters, and one below the checkpoint's step. Nothing is written.
	const std::string summary_text = read_text(run + "/summary.json"), metrics_text = read_text(run + "/metrics.jsonl");
	cfg.quiet = false;
	REQUIRE(train(cfg, dir, "--N_iters 6", out) == 0);
	CHECK_THAT(out, Catch::Contains("nothing to train: " + run + "/000006.safetensors is at step 6 = N_iters") &&
	                    Catch::Contains(run + "/summary.json left as it was") && !Catch::Contains("done:"));
	REQUIRE(train(cfg, dir, "--N_iters 3", out) == 0);
	CHECK_THAT(out, Catch::Contains("is at step 6, past N_iters = 3") && Catch::Contains("--no_reload"));
	CHECK(read_text(run + "/summary.json") == summary_text);
	CHECK(read_text(run + "/metrics.jsonl") == metrics_text);
	CHECK(nerf::list_checkpoints(run).size() == 3);

	// A finished run whose summary.json is missing (killed in the final evaluation) gets it, from the checkpoint.
	fs::remove(run + "/summary.json");
	REQUIRE(train(cfg, dir, "--N_iters 6", out) == 0);
	CHECK_THAT(out, Catch::Contains("writing the missing " + run + "/summary.json"));
	const nlohmann::json rewritten = read_json(run + "/summary.json");
	CHECK(rewritten["steps"] == 6);
	CHECK(rewritten["seconds"].get<double>() == Approx(seconds6).epsilon(1e-6));
	CHECK(rewritten["final_val_psnr"] == summary["final_val_psnr"]);
}

TEST_CASE("checkpoint train_seconds: absent in older files reads as 0, a bad value is corrupt metadata", "[checkpoint][user]") {
	const std::string dir = fresh_dir("user_train_seconds");
	const nerf::Config cfg = tiny_config(dir, "run");
	auto backend = nerf::create_cpu_backend(1);
	nerf::NerfModel model(*backend, cfg);
	const std::string path = dir + "/000005.safetensors";
	nerf::save_checkpoint(path, model, 5, 0.25, 12.5);
	CHECK(nerf::read_checkpoint_info(path).train_seconds == 12.5);
	CHECK(nerf::load_checkpoint(path, model).train_seconds == 12.5);
	// The same file as an older nerfcore wrote it, and with a value that is no number of seconds.
	nerf::SafetensorsFile file = nerf::read_safetensors(path);
	std::vector<nerf::TensorRef> tensors;
	for (const auto& [name, t] : file.tensors) tensors.push_back({name, t.shape, t.data.data()});
	file.metadata.erase("train_seconds");
	nerf::write_safetensors(dir + "/old.safetensors", tensors, file.metadata);
	CHECK(nerf::read_checkpoint_info(dir + "/old.safetensors").train_seconds == 0.0);
	file.metadata["train_seconds"] = "-3";
	nerf::write_safetensors(dir + "/bad.safetensors", tensors, file.metadata);
	CHECK_THROWS_WITH(nerf::read_checkpoint_info(dir + "/bad.safetensors"),
	                  Catch::Contains("bad.safetensors") && Catch::Contains("train_seconds = '-3'"));
}

TEST_CASE("render_only leaves config.txt and args.txt to the training run, and --config of the run trains again",
          "[tools][user]") {
	const std::string dir = fresh_dir("user_render_only_config");
	const std::string run = dir + "/run";
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.N_iters = 2;
	std::string out;
	REQUIRE(train(cfg, dir, "", out) == 0);
	const std::string config_before = read_text(run + "/config.txt"), args_before = read_text(run + "/args.txt");
	REQUIRE(train(cfg, dir, "--render_only --render_factor 2 --N_iters 99", out) == 0);
	CHECK(read_text(run + "/config.txt") == config_before);
	CHECK(read_text(run + "/args.txt") == args_before);
	// The render's own options are beside its images.
	nerf::Config render_options;
	nerf::load_config_file(run + "/renderonly_path_000002/config.txt", render_options);
	CHECK(render_options.render_only);
	CHECK(render_options.render_factor == 2);
	CHECK(render_options.N_iters == 99);
	// The run's config.txt still describes a training run: --config with it and a larger N_iters trains on.
	REQUIRE(run_command(tool("nerf_train") + " --config " + run + "/config.txt --N_iters 3", out) == 0);
	CHECK(nerf::read_checkpoint_info(run + "/000003.safetensors").global_step == 3);
}

TEST_CASE("render_only without a checkpoint is an error naming the folder, not a render of an untrained network",
          "[tools][user]") {
	const std::string dir = fresh_dir("user_render_only_none");
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.N_iters = 1;
	std::string out;
	REQUIRE(train(cfg, dir, "", out) == 0);
	// A mistyped expname: the folder it looked in, and the run folders that do hold checkpoints.
	CHECK(train(cfg, dir, "--render_only --expname rnu", out) == 1);
	CHECK_THAT(out, Catch::Contains("nerf_train: error: render_only: no checkpoint to render in " + dir + "/rnu (no such folder)") &&
	                    Catch::Contains("Run folders with checkpoints in " + dir + ": run"));
	CHECK_FALSE(fs::exists(dir + "/rnu"));
	CHECK(train(cfg, dir, "--render_only --no_reload", out) == 1);
	CHECK_THAT(out, Catch::Contains("render_only with no_reload: there is nothing to render"));
	CHECK(previous_runs(dir + "/run").empty());
	CHECK(nerf::list_checkpoints(dir + "/run").size() == 1);
}

TEST_CASE("a scene without a test split: test views asked for, val views rendered and labelled val in every report",
          "[tools][user]") {
	const std::string dir = fresh_dir("user_no_test_split");
	const std::string scene = dir + "/scene";
	nerf_test::write_small_scene(scene, 16, 4, 2, 1);
	fs::remove(scene + "/transforms_test.json");
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.datadir = scene;
	cfg.N_iters = 2;
	cfg.i_testset = 2;
	std::string out;
	REQUIRE(train(cfg, dir, "", out) == 0);
	CHECK(read_json(dir + "/run/testset_000002/metrics.json")["split"] == "val");
	CHECK(read_json(dir + "/run/summary.json")["eval_split"] == "val");

	REQUIRE(run_command(tool("nerf_render") + " --ckpt " + dir + "/run/000002.safetensors --path test --eval --threads 1", out) == 0);
	INFO(out);
	CHECK_THAT(out, Catch::Contains("note: " + scene + " has no test views; rendering its val views, labelled val") &&
	                    Catch::Contains("[RENDER] val 2/2") && Catch::Contains("val: 2 views"));
	const std::string rendered = dir + "/run/render_val_000002";
	CHECK(read_json(rendered + "/eval_summary.json")["split"] == "val");
	CHECK(read_json(rendered + "/metrics.json")["split"] == "val");
	CHECK_FALSE(fs::exists(dir + "/run/render_test_000002"));

	REQUIRE(train(cfg, dir, "--render_only --render_test", out) == 0);
	CHECK(read_json(dir + "/run/renderonly_val_000002/metrics.json")["split"] == "val");
	CHECK(read_json(dir + "/run/renderonly_val_000002/metrics.json")["mean_psnr"] ==
	      read_json(rendered + "/eval_summary.json")["mean_psnr"]);
}

TEST_CASE("occ_grid: dropped rays in every metrics line and the progress line, and one warning", "[tools][user]") {
	const std::string dir = fresh_dir("user_dropped_rays");
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.occ_grid = true;
	cfg.N_iters = 6;
	cfg.i_print = 2;
	cfg.quiet = false;
	// 64 rays x 16 samples per step and a step of the box diagonal / 1024 (the finest default, set
	// here because the default follows the cameras' pixels, far coarser on this tiny scene): a ray
	// needs hundreds.
	cfg.render_step_size = 0.0050745f;
	std::string out;
	REQUIRE(train(cfg, dir, "", out) == 0);
	INFO(out);
	const size_t first = out.find("warning: step 1 trained ");
	CHECK(first != std::string::npos);
	CHECK(out.find("warning:", first + 1) == std::string::npos);  // once
	CHECK_THAT(out, Catch::Contains("--target_samples N") && Catch::Contains("--render_step_size"));
	const auto lines = metrics_lines(dir + "/run/metrics.jsonl");
	REQUIRE(lines.size() == 3);
	uint64_t logged = 0;
	for (const auto& line : lines) {
		logged += line["dropped_rays"].get<uint64_t>();
		CHECK_THAT(out, Catch::Contains("[TRAIN] Iter: " + std::to_string(line["step"].get<long>()) + "/6") &&
		                    Catch::Contains("dropped rays: " + std::to_string(line["dropped_rays"].get<uint64_t>())));
	}
	const uint64_t total = read_json(dir + "/run/summary.json")["dropped_rays"].get<uint64_t>();
	CHECK(logged == total);
	CHECK(total > 6 * 64 / 2);  // more than half of every step's rays, as the warning said

	// A step size that fits: no warning, nothing dropped.
	REQUIRE(train(cfg, dir, "--no_reload --render_step_size 0.5", out) == 0);
	CHECK_THAT(out, !Catch::Contains("warning:"));
	CHECK(read_json(dir + "/run/summary.json")["dropped_rays"] == 0);
}

TEST_CASE("command-line errors carry the tool's name, an unknown option names the closest known one", "[tools][user]") {
	nerf::Config cfg;
	const char* typo[] = {"nerf_train", "--N_iter", "10"};
	CHECK_THROWS_WITH(nerf::parse_config(3, typo, cfg, "t"),
	                  Catch::Contains("command line: unknown option --N_iter (did you mean --N_iters?)"));
	const char* swapped[] = {"nerf_train", "--near", "-1", "--nera=2"};  // a negative value is no option
	CHECK_THROWS_WITH(nerf::parse_config(4, swapped, cfg, "t"),
	                  Catch::Contains("unknown option --nera (did you mean --near?)"));
	const char* far_off[] = {"nerf_train", "--colour", "1"};
	CHECK_THROWS_WITH(nerf::parse_config(3, far_off, cfg, "t"),
	                  Catch::Contains("unknown option --colour") && !Catch::Contains("did you mean"));
	const std::string dir = fresh_dir("user_cli");
	write_text(dir + "/typo.txt", "expname = x\nN_Iters = 5\n");
	CHECK_THROWS_WITH(nerf::load_config_file(dir + "/typo.txt", cfg),
	                  Catch::Contains(":2: unknown option 'N_Iters' (did you mean N_iters?)"));

	std::string out;
	CHECK(run_command(tool("nerf_train") + " --N_iter 10", out) == 1);
	CHECK_THAT(out, Catch::StartsWith("nerf_train: error: command line: unknown option --N_iter (did you mean --N_iters?)"));
	CHECK(run_command(tool("nerf_render"), out) == 1);
	CHECK_THAT(out, Catch::StartsWith("nerf_render: error: command line: --ckpt is required"));
	CHECK(run_command(tool("nerf_render") + " --ckpt x --chunkk 5", out) == 1);
	CHECK_THAT(out, Catch::StartsWith("nerf_render: error: command line: unknown option --chunkk (did you mean --chunk?)"));
	CHECK(run_command(tool("nerf_scene") + " --out " + dir + "/s --sise 8", out) == 1);
	CHECK_THAT(out, Catch::StartsWith("nerf_scene: error: command line: unknown option --sise (did you mean --size?)"));
	CHECK(run_command(tool("colmap2llff"), out) == 1);
	CHECK_THAT(out, Catch::StartsWith("colmap2llff: error: command line: scene is required"));
	CHECK(run_command(tool("nerf_inspect") + " --dump_imag 3", out) == 1);
	CHECK_THAT(out, Catch::StartsWith("nerf_inspect: error: command line: unknown option --dump_imag (did you mean --dump_image?)"));

	// --help of each tool shows its own options and their defaults.
	REQUIRE(run_command(tool("nerf_inspect") + " --help", out) == 0);
	CHECK_THAT(out, Catch::Contains("--json") && Catch::Contains("--dump_rays") && Catch::Contains("--dump_image") &&
	                    Catch::Contains("--datadir"));
	REQUIRE(run_command(tool("nerf_render") + " --help", out) == 0);
	CHECK_THAT(out, Catch::Contains("--path TEXT=render") && Catch::Contains("--render_factor INT=the run's"));
	REQUIRE(run_command(tool("nerf_train") + " --help", out) == 0);
	CHECK_THAT(out, Catch::Contains("accepted for nerf-pytorch's configs and ignored"));
}

TEST_CASE("nerf_render --ckpt takes a run folder's newest checkpoint, --path lists its values, a missing scene names "
          "the download script", "[tools][user]") {
	const std::string dir = fresh_dir("user_render_inputs");
	const std::string run = dir + "/run";
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.N_iters = 4;
	cfg.i_weights = 2;
	std::string out;
	REQUIRE(train(cfg, dir, "", out) == 0);
	REQUIRE(run_command(tool("nerf_render") + " --ckpt " + run + " --path val --eval --threads 1", out) == 0);
	CHECK_THAT(out, Catch::Contains("--ckpt " + run + " is a folder: rendering its newest checkpoint, " + run +
	                                "/000004.safetensors"));
	CHECK(read_json(run + "/render_val_000004/eval_summary.json")["step"] == 4);
	CHECK(read_json(run + "/render_val_000004/eval_summary.json")["checkpoint"] == run + "/000004.safetensors");
	fs::create_directories(dir + "/empty");
	CHECK(run_command(tool("nerf_render") + " --ckpt " + dir + "/empty", out) == 1);
	CHECK_THAT(out, Catch::Contains("nerf_render: error: --ckpt " + dir + "/empty: the folder holds no checkpoint"));

	CHECK(run_command(tool("nerf_render") + " --ckpt " + run + " --path tset", out) == 1);
	CHECK_THAT(out, Catch::Contains("nerf_render: error: --path tset: not one of render, test, val, train"));

	for (const std::string& t : {std::string("nerf_train --config " + config_file(cfg, dir)), std::string("nerf_inspect --dataset_type llff")}) {
		CHECK(run_command(tool("") + t + " --datadir " + dir + "/no_scene", out) == 1);
		CHECK_THAT(out, Catch::Contains(dir + "/no_scene: the dataset folder does not exist") &&
		                    Catch::Contains("bash data_scripts/download_example_data.sh") && Catch::Contains("--datadir"));
	}
	CHECK(run_command(tool("nerf_render") + " --ckpt " + run + " --path test --datadir " + dir + "/no_scene", out) == 1);
	CHECK_THAT(out, Catch::Contains("download_example_data.sh"));
}

TEST_CASE("outputs follow the umask, as any program's new files", "[faults][user]") {
	const std::string dir = fresh_dir("user_umask");
	const mode_t saved = ::umask(027);
	nerf::write_file_atomic(dir + "/a.txt", "x");
	::umask(002);
	nerf::write_file_atomic(dir + "/b.txt", "x");
	nerf::AppendFile log;
	log.open(dir + "/c.jsonl", true);
	log.append("{}\n");
	log.close();
	::umask(saved);
	CHECK((fs::status(dir + "/a.txt").permissions() & fs::perms::all) ==
	      (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
	CHECK((fs::status(dir + "/b.txt").permissions() & fs::perms::all) ==
	      (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::group_write |
	       fs::perms::others_read));
	CHECK((fs::status(dir + "/c.jsonl").permissions() & fs::perms::all) == (fs::status(dir + "/b.txt").permissions() & fs::perms::all));
	// A tool's outputs under the shell's umask (colmap2llff's: tests/test_data_tools.cpp).
	std::string out;
	REQUIRE(run_command("umask 022; " + tool("nerf_scene") + " --out " + dir + "/s2 --size 4 --n_train 1 --n_val 0 --n_test 0", out) == 0);
	CHECK((fs::status(dir + "/s2/transforms_train.json").permissions() & fs::perms::all) ==
	      (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read));
	REQUIRE(run_command("umask 077; " + tool("nerf_scene") + " --out " + dir + "/s3 --size 4 --n_train 1 --n_val 0 --n_test 0", out) == 0);
	CHECK((fs::status(dir + "/s3/train/r_0.png").permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
}
