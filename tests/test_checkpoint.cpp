// Checkpoints: safetensors round trip and corruption errors, nerf-pytorch tensor names, architecture
// checks, the resume choice, and a killed run that resumes bit for bit.
#include "nerf/checkpoint.h"
#include "nerf/io/safetensors.h"
#include "nerf/trainer.h"

#include "tools_fixture.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>

namespace fs = std::filesystem;
using nerf_test::fresh_dir;
using nerf_test::host_params;
using nerf_test::ResumedRun;
using nerf_test::same_bits;
using nerf_test::train_save_resume;
using nerf_test::read_text;
using nerf_test::tiny_config;
using nerf_test::write_text;

namespace {

/// A safetensors file made by hand: 8-byte little-endian length, header, data bytes.
std::string raw_safetensors(const std::string& header, size_t data_bytes) {
	std::string s(8, '\0');
	for (int i = 0; i < 8; ++i) s[i] = (char)((header.size() >> (8 * i)) & 0xff);
	return s + header + std::string(data_bytes, '\x01');
}

} // namespace

TEST_CASE("safetensors: round trip of tensors and metadata", "[tools][checkpoint]") {
	const std::string dir = fresh_dir("st_roundtrip");
	const std::string path = dir + "/t.safetensors";
	const std::vector<float> a = {1.0f, -2.5f, 3.25f, 1e-30f, 7.0f, 8.0f};
	const std::vector<float> b = {0.5f};
	nerf::write_safetensors(path, {{"a.weight", {2, 3}, a.data()}, {"b", {1}, b.data()}}, {{"step", "12"}, {"k", "v w"}});
	const nerf::SafetensorsFile f = nerf::read_safetensors(path);
	REQUIRE(f.tensors.size() == 2);
	CHECK(f.tensors.at("a.weight").shape == std::vector<int64_t>{2, 3});
	CHECK(f.tensors.at("a.weight").data == a);
	CHECK(f.tensors.at("b").data == b);
	CHECK(f.metadata.at("step") == "12");
	CHECK(f.metadata.at("k") == "v w");
	// The layout is the format's: little-endian length, header padded to 8 bytes, data right after.
	const std::string bytes = read_text(path);
	uint64_t len = 0;
	for (int i = 7; i >= 0; --i) len = (len << 8) | (unsigned char)bytes[i];
	CHECK(len % 8 == 0);
	CHECK(bytes.size() == 8 + len + (a.size() + b.size()) * sizeof(float));
	CHECK(bytes.substr(8, 1) == "{");
	CHECK(nerf::read_safetensors_metadata(path).at("step") == "12");
}

TEST_CASE("safetensors: corrupt files are reported with the file name", "[tools][checkpoint][errors]") {
	const std::string dir = fresh_dir("st_corrupt");
	const std::string path = dir + "/bad.safetensors";
	SECTION("missing file") {
		CHECK_THROWS_WITH(nerf::read_safetensors(dir + "/none.safetensors"),
		                  Catch::Contains("none.safetensors") && Catch::Contains("cannot open"));
	}
	SECTION("shorter than the length field") {
		write_text(path, "abc");
		CHECK_THROWS_WITH(nerf::read_safetensors(path), Catch::Contains(path) && Catch::Contains("not a safetensors file"));
	}
	SECTION("header length beyond the file") {
		write_text(path, raw_safetensors("{}", 0).substr(0, 9));
		CHECK_THROWS_WITH(nerf::read_safetensors(path), Catch::Contains(path) && Catch::Contains("truncated"));
	}
	SECTION("header is not JSON") {
		write_text(path, raw_safetensors("{\"a\": [1, 2", 0));
		CHECK_THROWS_WITH(nerf::read_safetensors(path), Catch::Contains(path) && Catch::Contains("not valid JSON"));
	}
	SECTION("data offsets out of range") {
		write_text(path, raw_safetensors(R"({"w":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}})", 16));
		CHECK_THROWS_WITH(nerf::read_safetensors(path),
		                  Catch::Contains(path) && Catch::Contains("tensor w") && Catch::Contains("outside"));
	}
	SECTION("shape does not match the byte range") {
		write_text(path, raw_safetensors(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8));
		CHECK_THROWS_WITH(nerf::read_safetensors(path), Catch::Contains(path) && Catch::Contains("needs 12 bytes"));
	}
	SECTION("overlapping tensors") {
		write_text(path, raw_safetensors(R"({"u":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
		                                 R"("v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
		                                 12));
		CHECK_THROWS_WITH(nerf::read_safetensors(path), Catch::Contains(path) && Catch::Contains("overlap"));
	}
	SECTION("wrong dtype") {
		write_text(path, raw_safetensors(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", 4));
		CHECK_THROWS_WITH(nerf::read_safetensors(path),
		                  Catch::Contains(path) && Catch::Contains("dtype F16") && Catch::Contains("only F32"));
	}
	SECTION("truncated data") {
		std::vector<float> big(1000, 1.0f);
		nerf::write_safetensors(path, {{"w", {1000}, big.data()}}, {});
		fs::resize_file(path, fs::file_size(path) - 100);
		CHECK_THROWS_WITH(nerf::read_safetensors(path), Catch::Contains(path) && Catch::Contains("truncated"));
	}
}

TEST_CASE("safetensors: a failed write (disk full) leaves the previous file intact", "[tools][checkpoint][errors]") {
	const std::string dir = fresh_dir("st_diskfull");
	const std::string path = dir + "/000010.safetensors";
	const std::vector<float> old_data = {1, 2, 3, 4}, new_data = {9, 9, 9, 9};
	nerf::write_safetensors(path, {{"x", {4}, old_data.data()}, {"y", {4}, old_data.data()}}, {{"step", "10"}});
	nerf::set_write_failure_for_testing(1);
	CHECK_THROWS_WITH(nerf::write_safetensors(path, {{"x", {4}, new_data.data()}, {"y", {4}, new_data.data()}}, {}),
	                  Catch::Contains(path) && Catch::Contains("No space left on device") &&
	                      Catch::Contains("previous file, if any, is unchanged"));
	const nerf::SafetensorsFile f = nerf::read_safetensors(path);
	CHECK(f.tensors.at("x").data == old_data);
	CHECK(f.metadata.at("step") == "10");
	// No temporary file is left behind, and the hook fired once only.
	CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}) == 1);
	nerf::write_safetensors(path, {{"x", {4}, new_data.data()}}, {});
	CHECK(nerf::read_safetensors(path).tensors.at("x").data == new_data);
}

TEST_CASE("safetensors: an unwritable folder fails with the path", "[tools][checkpoint][errors]") {
	const std::vector<float> x = {1};
	CHECK_THROWS_WITH(nerf::write_safetensors("/proc/nerfcore-nope/a.safetensors", {{"x", {1}, x.data()}}, {}),
	                  Catch::Contains("/proc/nerfcore-nope/a.safetensors") && Catch::Contains("cannot create"));
}

TEST_CASE("checkpoint: nerf-pytorch names, shapes and metadata, and load restores everything", "[tools][checkpoint]") {
	const std::string dir = fresh_dir("ckpt_names");
	nerf::Config cfg = tiny_config(dir, "run");
	auto backend = nerf::create_cpu_backend(1);
	nerf::NerfModel model(*backend, cfg);
	// Give Adam's moments recognisable values, in the parameters only: the layout's padding between
	// layers is no tensor, stays zero in a model and is neither saved nor loaded.
	std::vector<float> m(model.n_floats(), 0.0f), v(model.n_floats(), 0.0f);
	REQUIRE(model.fine_layout() != nullptr);
	for (const nerf::MlpLayout* layout : {&model.coarse_layout(), model.fine_layout()})
		for (const nerf::LinearLayer& l : layout->layers)
			for (size_t i = l.weight_offset; i < l.weight_offset + l.n_params(); ++i) {
				m[i] = 0.001f * (float)i;
				v[i] = 1.0f + (float)i;
			}
	backend->upload(model.adam_m(), m.data(), m.size() * sizeof(float));
	backend->upload(model.adam_v(), v.data(), v.size() * sizeof(float));
	model.set_adam_steps(41);
	const std::string path = nerf::checkpoint_path(dir + "/run", 42);
	CHECK(fs::path(path).filename() == "000042.safetensors");
	fs::create_directories(dir + "/run");
	nerf::save_checkpoint(path, model, 42);

	const nerf::SafetensorsFile f = nerf::read_safetensors(path);
	// multires 4: gamma(x) is 3 + 3*2*4 = 27 wide; multires_views 2: gamma(d) is 15 wide.
	CHECK(f.tensors.at("network_fn.pts_linears.0.weight").shape == std::vector<int64_t>{32, 27});
	CHECK(f.tensors.at("network_fn.pts_linears.0.bias").shape == std::vector<int64_t>{32});
	CHECK(f.tensors.at("network_fn.views_linears.0.weight").shape == std::vector<int64_t>{16, 32 + 15});
	CHECK(f.tensors.at("network_fn.alpha_linear.weight").shape == std::vector<int64_t>{1, 32});
	CHECK(f.tensors.at("network_fine.rgb_linear.weight").shape == std::vector<int64_t>{3, 16});
	CHECK(f.tensors.at("optimizer.exp_avg.network_fine.rgb_linear.bias").shape == std::vector<int64_t>{3});
	CHECK(f.tensors.at("optimizer.exp_avg_sq.network_fn.feature_linear.weight").shape == std::vector<int64_t>{32, 32});
	// 2 networks x 6 layers x (weight, bias) x (param, m, v)
	CHECK(f.tensors.size() == 2 * 6 * 2 * 3);
	CHECK(f.metadata.at("global_step") == "42");
	CHECK(f.metadata.at("adam_step") == "41");
	CHECK(f.metadata.at("format") == "nerfcore-checkpoint");
	CHECK(f.metadata.at("format_version") == "1");
	CHECK(f.metadata.at("config").find("netwidth = 32") != std::string::npos);
	// The weight of pts_linears.0 is the first [out, in] block of the flat buffer, row-major.
	const std::vector<float> params = host_params(model, model.params());
	const nerf::LinearLayer& l0 = model.coarse_layout().layer("pts_linears.0");
	CHECK(f.tensors.at("network_fn.pts_linears.0.weight").data[5 * 27 + 3] == params[l0.weight_offset + 5 * 27 + 3]);

	nerf::Config other_seed = cfg;
	other_seed.seed = 99;
	nerf::NerfModel loaded(*backend, other_seed);
	REQUIRE_FALSE(same_bits(host_params(loaded, loaded.params()), params));
	const nerf::CheckpointInfo info = nerf::load_checkpoint(path, loaded);
	CHECK(info.global_step == 42);
	CHECK(loaded.adam_steps() == 41);
	CHECK(same_bits(host_params(loaded, loaded.params()), params));
	CHECK(same_bits(host_params(loaded, loaded.adam_m()), m));
	CHECK(same_bits(host_params(loaded, loaded.adam_v()), v));

	const nerf::Config restored = nerf::config_from_checkpoint(path);
	CHECK(restored.netwidth == 32);
	CHECK(restored.N_importance == 8);
	CHECK(restored.multires == 4);
	CHECK(restored.seed == 7);
	CHECK(restored.datadir == cfg.datadir);
}

TEST_CASE("checkpoint: a different architecture names the tensor and both shapes", "[tools][checkpoint][errors]") {
	const std::string dir = fresh_dir("ckpt_arch");
	nerf::Config cfg = tiny_config(dir, "run");
	auto backend = nerf::create_cpu_backend(1);
	nerf::NerfModel model(*backend, cfg);
	const std::string path = dir + "/000001.safetensors";
	nerf::save_checkpoint(path, model, 1);

	nerf::Config wider = cfg;
	wider.netwidth = 64;
	nerf::NerfModel wide_model(*backend, wider);
	CHECK_THROWS_WITH(nerf::load_checkpoint(path, wide_model),
	                  Catch::Contains(path) && Catch::Contains("network_fn.pts_linears.0.weight") &&
	                      Catch::Contains("[32, 27] in the checkpoint") && Catch::Contains("[64, 27] in the configured model"));

	nerf::Config no_fine = cfg;
	no_fine.N_importance = 0;
	nerf::NerfModel coarse_only(*backend, no_fine);
	CHECK_THROWS_WITH(nerf::load_checkpoint(path, coarse_only),
	                  Catch::Contains(path) && Catch::Contains("network_fine.") && Catch::Contains("N_importance = 0"));

	nerf::Config deeper = cfg;
	deeper.netdepth = 3;
	nerf::NerfModel deep_model(*backend, deeper);
	CHECK_THROWS_WITH(nerf::load_checkpoint(path, deep_model),
	                  Catch::Contains("no tensor network_fn.pts_linears.2.weight") && Catch::Contains("[32, 32]"));

	// A safetensors file that is not a nerfcore checkpoint.
	const std::vector<float> x = {1};
	nerf::write_safetensors(dir + "/other.safetensors", {{"x", {1}, x.data()}}, {});
	CHECK_THROWS_WITH(nerf::load_checkpoint(dir + "/other.safetensors", model),
	                  Catch::Contains("other.safetensors") && Catch::Contains("not a nerfcore checkpoint"));
}

TEST_CASE("checkpoint: which one to resume from (ft_path, newest, no_reload)", "[tools][checkpoint]") {
	const std::string dir = fresh_dir("ckpt_resume_choice");
	nerf::Config cfg = tiny_config(dir, "run");
	const std::string run = dir + "/run";
	CHECK(nerf::checkpoint_to_resume(cfg, run).empty());  // no folder yet
	fs::create_directories(run);
	for (const char* name : {"000200.safetensors", "000010.safetensors", "001000.safetensors", "notes.txt"})
		write_text(run + "/" + name, "x");
	CHECK(nerf::list_checkpoints(run).size() == 3);
	CHECK(nerf::checkpoint_to_resume(cfg, run) == run + "/001000.safetensors");
	cfg.ft_path = "/elsewhere/000005.safetensors";
	CHECK(nerf::checkpoint_to_resume(cfg, run) == "/elsewhere/000005.safetensors");
	cfg.no_reload = true;
	CHECK(nerf::checkpoint_to_resume(cfg, run).empty());
}

TEST_CASE("checkpoint: train k steps, save, reload in new objects, continue = train straight (bitwise)",
          "[tools][checkpoint]") {
	const bool no_batching = GENERATE(false, true);
	const std::string dir = fresh_dir(no_batching ? "ckpt_bitwise_nb" : "ckpt_bitwise");
	nerf::Config cfg = tiny_config(dir, "run");
	cfg.no_batching = no_batching;
	cfg.precrop_iters = no_batching ? 4 : 0;  // the resume point falls inside the precrop phase
	cfg.perturb = 1.0f;
	cfg.raw_noise_std = 0.5f;                  // every random stream in play
	const long total = 8, stop_at = 3;
	const nerf::Dataset data = nerf::load_dataset(cfg);

	std::vector<float> straight_params, straight_m, straight_v;
	long straight_adam = 0;
	{
		auto backend = nerf::create_cpu_backend(1);
		nerf::Trainer trainer(cfg, data, *backend);
		for (long i = 1; i <= total; ++i) trainer.step(i);
		straight_params = host_params(trainer.model(), trainer.model().params());
		straight_m = host_params(trainer.model(), trainer.model().adam_m());
		straight_v = host_params(trainer.model(), trainer.model().adam_v());
		straight_adam = trainer.model().adam_steps();
	}
	const ResumedRun run = train_save_resume(cfg, data, stop_at, total, nerf::checkpoint_path(dir, stop_at));
	REQUIRE(run.info.global_step == stop_at);
	nerf::Trainer& resumed = *run.trainer;
	nerf::Backend& backend = *run.backend;
	CHECK(resumed.model().adam_steps() == straight_adam);
	const auto params = host_params(resumed.model(), resumed.model().params());
	CHECK(same_bits(params, straight_params));
	CHECK(same_bits(host_params(resumed.model(), resumed.model().adam_m()), straight_m));
	CHECK(same_bits(host_params(resumed.model(), resumed.model().adam_v()), straight_v));
	// Training moved the parameters at all (the test could not pass with a frozen model).
	nerf::NerfModel fresh(backend, cfg);
	CHECK_FALSE(same_bits(host_params(fresh, fresh.params()), params));
}

TEST_CASE("nerf_train killed after a checkpoint resumes in a new process and ends bit for bit as a straight run",
          "[tools][checkpoint]") {
	const std::string dir = fresh_dir("ckpt_process_resume");
	auto run_train = [&](const nerf::Config& cfg) {
		const std::string command = nerf_test::tool("nerf_train") + " --config " + nerf_test::config_file(cfg, dir) + " > /dev/null 2>&1";
		return std::system(command.c_str());
	};
	nerf::Config straight = tiny_config(dir, "straight");
	straight.N_iters = 9;
	straight.i_weights = 4;
	straight.raw_noise_std = 0.5f;
	REQUIRE(run_train(straight) == 0);

	nerf::Config killed = straight;
	killed.expname = "killed";
	killed.N_iters = 6;  // "killed" after step 6: its last i_weights checkpoint is step 4
	REQUIRE(run_train(killed) == 0);
	fs::remove(dir + "/killed/000006.safetensors");
	killed.N_iters = 9;
	REQUIRE(run_train(killed) == 0);

	const nerf::SafetensorsFile a = nerf::read_safetensors(dir + "/straight/000009.safetensors");
	const nerf::SafetensorsFile b = nerf::read_safetensors(dir + "/killed/000009.safetensors");
	REQUIRE(a.tensors.size() == b.tensors.size());
	for (const auto& [name, tensor] : a.tensors) {
		INFO(name);
		CHECK(same_bits(tensor.data, b.tensors.at(name).data));
	}
	CHECK(a.metadata.at("adam_step") == "9");
	CHECK(b.metadata.at("adam_step") == "9");
	CHECK(b.metadata.at("global_step") == "9");
	// The straight run saved at i_weights steps and at its end.
	CHECK(nerf::list_checkpoints(dir + "/straight").size() == 3);
	const nerf::SafetensorsFile four = nerf::read_safetensors(dir + "/straight/000004.safetensors");
	CHECK_FALSE(same_bits(four.tensors.at("network_fn.pts_linears.0.weight").data,
	                          a.tensors.at("network_fn.pts_linears.0.weight").data));
}
