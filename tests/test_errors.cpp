// Failures with nothing lost: each one a clear message and exit code 1 from the tool, and the
// checkpoints on disk still valid afterwards.
#include "nerf/checkpoint.h"
#include "nerf/io/safetensors.h"

#include "tools_fixture.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <sys/wait.h>

namespace fs = std::filesystem;
using nerf_test::config_file;
using nerf_test::fresh_dir;
using nerf_test::tiny_config;
using nerf_test::write_text;

namespace {

using nerf_test::run_command;
using nerf_test::tool;

/// A checkpoint of an untrained tiny model.
std::string make_checkpoint(const nerf::Config& cfg, const std::string& path) {
	auto backend = nerf::create_cpu_backend(1);
	nerf::NerfModel model(*backend, cfg);
	nerf::save_checkpoint(path, model, 3);
	return path;
}

/// Loads a checkpoint into a fresh model of its own config: proves that it is whole.
long load_ok(const std::string& path) {
	const nerf::Config cfg = nerf::config_from_checkpoint(path);
	auto backend = nerf::create_cpu_backend(1);
	nerf::NerfModel model(*backend, cfg);
	return nerf::load_checkpoint(path, model).global_step;
}

size_t count_temporary_files(const std::string& dir) {
	size_t n = 0;
	for (const auto& e : fs::directory_iterator(dir))
		if (e.path().filename().string().find(".tmp.") != std::string::npos) ++n;
	return n;
}

} // namespace

TEST_CASE("nerf_train: an unwritable basedir is a clear error, exit 1", "[tools][errors]") {
	const std::string dir = fresh_dir("err_basedir");
	nerf::Config cfg = tiny_config("/proc/nerfcore-no-such-dir", "run");
	cfg.N_iters = 2;
	std::string out;
	CHECK(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 1);
	CHECK_THAT(out, Catch::Contains("nerf_train: error") && Catch::Contains("/proc/nerfcore-no-such-dir"));
}

TEST_CASE("nerf_train: disk full while saving a checkpoint keeps the previous one, exit 1", "[tools][errors]") {
	const std::string dir = fresh_dir("err_diskfull");
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.N_iters = 6;
	cfg.i_weights = 2;
	std::string out;
	// The second checkpoint write (step 4) fails, as on a full disk.
	CHECK(run_command("NERF_TEST_FAIL_WRITE=000004.safetensors " + tool("nerf_train") + " --config " + config_file(cfg, dir),
	                  out) == 1);
	CHECK_THAT(out, Catch::Contains("000004.safetensors") && Catch::Contains("No space left on device"));
	CHECK(load_ok(dir + "/run/000002.safetensors") == 2);
	CHECK_FALSE(fs::exists(dir + "/run/000004.safetensors"));
	CHECK(count_temporary_files(dir + "/run") == 0);
	// The run resumes from the good checkpoint and finishes.
	cfg.quiet = false;
	REQUIRE(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 0);
	CHECK_THAT(out, Catch::Contains("Reloading from " + dir + "/run/000002.safetensors"));
	CHECK_THAT(out, Catch::Contains("Saved checkpoints at " + dir + "/run/000006.safetensors"));
	CHECK(load_ok(dir + "/run/000006.safetensors") == 6);
}

TEST_CASE("nerf_train: a NaN loss stops with the step, the last good checkpoint kept, exit 1", "[tools][errors]") {
	const std::string dir = fresh_dir("err_nan");
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.i_weights = 4;
	std::string out;
	// A healthy run to step 8 (checkpoints at 4 and 8), then a learning rate that diverges at once:
	// Adam's step 9 moves every parameter by ~1e30 (finite), and step 10's forward pass overflows to inf - inf.
	cfg.N_iters = 8;
	REQUIRE(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 0);
	cfg.N_iters = 12;
	cfg.i_weights = 1;
	cfg.lrate = 1e30f;
	CHECK(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 1);
	// Step 9's checkpoint holds the diverged (finite but huge) weights: it is not the good one.
	CHECK_THAT(out, Catch::Contains("at step 10") && Catch::Contains("The last good checkpoint is " + dir + "/run/000008.safetensors"));
	CHECK_THAT(out, Catch::Contains("000009.safetensors.diverged"));
	CHECK(load_ok(dir + "/run/000008.safetensors") == 8);
	CHECK_FALSE(fs::exists(dir + "/run/000009.safetensors"));
	CHECK_FALSE(fs::exists(dir + "/run/000010.safetensors"));
}

TEST_CASE("nerf_train: a corrupt checkpoint to resume from is named, exit 1, and left alone", "[tools][errors]") {
	const std::string dir = fresh_dir("err_corrupt_resume");
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.N_iters = 4;
	fs::create_directories(dir + "/run");
	const std::string ckpt = make_checkpoint(cfg, dir + "/run/000003.safetensors");
	fs::resize_file(ckpt, fs::file_size(ckpt) / 2);
	const auto size = fs::file_size(ckpt);
	std::string out;
	CHECK(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 1);
	CHECK_THAT(out, Catch::Contains(ckpt) && Catch::Contains("truncated"));
	CHECK(fs::file_size(ckpt) == size);
}

TEST_CASE("nerf_train: resuming with a different architecture names the option and both values, exit 1", "[tools][errors]") {
	const std::string dir = fresh_dir("err_arch_resume");
	nerf::Config cfg = tiny_config(dir, "run");
	fs::create_directories(dir + "/run");
	make_checkpoint(cfg, dir + "/run/000003.safetensors");
	cfg.netwidth = 48;
	cfg.N_iters = 4;
	std::string out;
	CHECK(run_command(tool("nerf_train") + " --config " + config_file(cfg, dir), out) == 1);
	CHECK_THAT(out, Catch::Contains("nerf_train: error: " + dir + "/run/000003.safetensors") &&
	                    Catch::Contains("netwidth = 32 in the checkpoint, 48 now (the coarse network's shape)") &&
	                    Catch::Contains("--no_reload"));
	CHECK_FALSE(fs::exists(dir + "/run/args.txt"));  // nothing was started
}

TEST_CASE("nerf_render: corrupt checkpoint and architecture mismatch, exit 1", "[tools][errors]") {
	const std::string dir = fresh_dir("err_render");
	nerf::Config cfg = tiny_config(dir, "run");
	const std::string good = make_checkpoint(cfg, dir + "/good.safetensors");
	std::string out;

	const std::string bad = dir + "/bad.safetensors";
	fs::copy_file(good, bad);
	fs::resize_file(bad, fs::file_size(bad) - 64);
	CHECK(run_command(tool("nerf_render") + " --ckpt " + bad + " --quiet --threads 1 --out " + dir + "/o1", out) == 1);
	CHECK_THAT(out, Catch::Contains("nerf_render: error") && Catch::Contains(bad) && Catch::Contains("truncated"));

	write_text(dir + "/wider.txt", "netwidth = 64\n");
	CHECK(run_command(tool("nerf_render") + " --ckpt " + good + " --config " + dir + "/wider.txt --quiet --out " + dir + "/o2",
	                  out) == 1);
	CHECK_THAT(out, Catch::Contains("network_fn.pts_linears.0.weight") && Catch::Contains("[32, 27] in the checkpoint") &&
	                    Catch::Contains("[64, 27] in the configured model"));

	CHECK(run_command(tool("nerf_render") + " --ckpt " + dir + "/none.safetensors", out) == 1);
	CHECK_THAT(out, Catch::Contains("none.safetensors"));
	CHECK(run_command(tool("nerf_render") + " --ckpt " + good + " --path render --eval", out) == 1);
	CHECK_THAT(out, Catch::Contains("--eval needs ground truth"));
}

TEST_CASE("a PyTorch checkpoint is recognised by its first bytes, with the command that converts it",
          "[tools][errors][checkpoint]") {
	const std::string dir = fresh_dir("torch_files");
	nerf::Config cfg = tiny_config(dir, "run");
	const std::string run = dir + "/run";
	fs::create_directories(run);
	// The first bytes torch.save writes: a zip archive (PyTorch >= 1.6), or a protocol 2 pickle of its magic number.
	const std::string zip = run + "/000500.tar", pickle = dir + "/old model.tar";
	write_text(zip, std::string("PK\x03\x04\x14\x00\x00\x00", 8) + "archive/data.pkl");
	write_text(pickle, std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14));

	CHECK_THROWS_WITH(nerf::read_checkpoint_info(zip),
	                  Catch::Contains(zip + ": a PyTorch checkpoint (a zip archive, as torch.save writes") &&
	                      Catch::Contains("\n    python3 tools/convert_nerf_pytorch.py to-nerfcore " + zip + " " + run +
	                                      "/000500.safetensors\n"));
	auto backend = nerf::create_cpu_backend(1);
	nerf::NerfModel model(*backend, cfg);
	// A path with a blank is quoted for the shell.
	CHECK_THROWS_WITH(nerf::load_checkpoint(pickle, model),
	                  Catch::Contains("a Python pickle, as torch.save wrote before PyTorch 1.6") &&
	                      Catch::Contains("to-nerfcore '" + pickle + "' '" + dir + "/old model.safetensors'"));

	// Every tool that reads a checkpoint says the same, exit code 1.
	const std::string config = config_file(cfg, dir);
	std::string output;
	CHECK(run_command(tool("nerf_render") + " --ckpt " + zip + " --quiet", output) == 1);
	CHECK_THAT(output, Catch::Contains("nerf_render: error: " + zip + ": a PyTorch checkpoint") &&
	                       Catch::Contains("to-nerfcore " + zip + " " + run + "/000500.safetensors"));
	CHECK(run_command(tool("nerf_train") + " --config " + config + " --ft_path '" + pickle + "'", output) == 1);
	CHECK_THAT(output, Catch::Contains("nerf_train: error: " + pickle + ": a PyTorch checkpoint") &&
	                       Catch::Contains("convert_nerf_pytorch.py to-nerfcore '" + pickle + "'"));

	// A run folder of nerf-pytorch checkpoints only: the reference would resume, so nerf_train stops and says
	// how to convert the newest, or to start over.
	write_text(run + "/000100.tar", std::string("PK\x03\x04", 4));
	write_text(run + "/notes.tar", "not a checkpoint");
	CHECK_THROWS_WITH(nerf::checkpoint_to_resume(cfg, run),
	                  Catch::Contains(run + " holds nerf-pytorch checkpoints (2 *.tar)") &&
	                      Catch::Contains("to-nerfcore " + zip + " " + run + "/000500.safetensors") &&
	                      Catch::Contains("--no_reload"));
	CHECK(run_command(tool("nerf_train") + " --config " + config + " --N_iters 1", output) == 1);
	CHECK_THAT(output, Catch::Contains("holds nerf-pytorch checkpoints"));
	CHECK_FALSE(fs::exists(run + "/args.txt"));  // a run that cannot start leaves the folder as it was
	CHECK(run_command(tool("nerf_train") + " --config " + config + " --N_iters 1 --no_reload", output) == 0);
	// Once there is a nerfcore checkpoint, it is the one to resume from.
	CHECK(nerf::checkpoint_to_resume(cfg, run) == run + "/000001.safetensors");
}
