// Options: nerf-pytorch's defaults, its config files, command-line precedence, errors, round trip.

#include "nerf/common.h"
#include "nerf/config.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;
using nerf::Config;

namespace {

// nerf-pytorch's configs/lego.txt and configs/fern.txt, byte for byte.
const char* const kLegoTxt =
	"expname = blender_paper_lego\nbasedir = ./logs\ndatadir = ./data/nerf_synthetic/lego\ndataset_type = blender\n\n"
	"no_batching = True\n\nuse_viewdirs = True\nwhite_bkgd = True\nlrate_decay = 500\n\nN_samples = 64\n"
	"N_importance = 128\nN_rand = 1024\n\nprecrop_iters = 500\nprecrop_frac = 0.5\n\nhalf_res = True\n";
const char* const kFernTxt =
	"expname = fern_test\nbasedir = ./logs\ndatadir = ./data/nerf_llff_data/fern\ndataset_type = llff\n\n"
	"factor = 8\nllffhold = 8\n\nN_rand = 1024\nN_samples = 64\nN_importance = 64\n\nuse_viewdirs = True\n"
	"raw_noise_std = 1e0\n";

// Every field of Config, in the struct's order.
const std::vector<std::string> kAllOptions = {
	"config", "expname", "basedir", "datadir", "netdepth", "netwidth", "netdepth_fine", "netwidth_fine", "N_rand",
	"lrate", "lrate_decay", "chunk", "netchunk", "no_batching", "no_reload", "ft_path", "N_samples", "N_importance",
	"perturb", "use_viewdirs", "i_embed", "multires", "multires_views", "raw_noise_std", "render_only", "render_test",
	"render_factor", "precrop_iters", "precrop_frac", "dataset_type", "testskip", "shape", "white_bkgd", "half_res",
	"factor", "no_ndc", "lindisp", "spherify", "llffhold", "near", "far", "i_print", "i_img", "i_weights", "i_testset", "i_video",
	"N_iters", "max_seconds", "seed", "device", "precision", "cuda_graph", "quiet", "n_val_eval", "threads",
	"max_image_pixels", "occ_grid", "occ_resolution", "occ_aabb", "occ_update_every", "occ_warmup", "occ_threshold",
	"render_step_size", "target_samples", "model", "n_levels", "n_features_per_level", "log2_hashmap_size",
	"base_resolution", "finest_resolution", "learning_rate", "beta1", "beta2", "epsilon", "l2_reg"};

/// A scratch folder per test case and process (ctest runs test cases in parallel).
class TempDir {
public:
	explicit TempDir(const std::string& tag)
		: path_(fs::temp_directory_path() / ("nerf_test_config_" + tag + "_" + std::to_string(::getpid()))) {
		fs::remove_all(path_);
		fs::create_directories(path_);
	}
	~TempDir() {
		std::error_code ignored;
		fs::remove_all(path_, ignored);
	}
	std::string write(const std::string& name, const std::string& content) const {
		const fs::path file = path_ / name;
		std::ofstream(file, std::ios::binary) << content;
		return file.string();
	}

private:
	fs::path path_;
};

bool parse(const std::vector<std::string>& args, Config& cfg) {
	std::vector<const char*> argv = {"nerf_test"};
	for (const std::string& a : args) argv.push_back(a.c_str());
	return nerf::parse_config(static_cast<int>(argv.size()), argv.data(), cfg, "test program");
}

/// The message of the nerf::Error that `fn` throws ("" when it throws none).
template <typename Fn>
std::string error_of(Fn&& fn) {
	try {
		fn();
	} catch (const nerf::Error& e) {
		return e.what();
	}
	return "";
}

Config load_text(const TempDir& dir, const std::string& content, std::string* path_out = nullptr) {
	const std::string path = dir.write("cfg.txt", content);
	if (path_out) *path_out = path;
	Config cfg;
	nerf::load_config_file(path, cfg);
	return cfg;
}

void require_same(const Config& a, const Config& b) {
	CHECK(a.config == b.config);
	CHECK(a.expname == b.expname);
	CHECK(a.basedir == b.basedir);
	CHECK(a.datadir == b.datadir);
	CHECK(a.netdepth == b.netdepth);
	CHECK(a.netwidth == b.netwidth);
	CHECK(a.netdepth_fine == b.netdepth_fine);
	CHECK(a.netwidth_fine == b.netwidth_fine);
	CHECK(a.N_rand == b.N_rand);
	CHECK(a.lrate == b.lrate);
	CHECK(a.lrate_decay == b.lrate_decay);
	CHECK(a.chunk == b.chunk);
	CHECK(a.netchunk == b.netchunk);
	CHECK(a.no_batching == b.no_batching);
	CHECK(a.no_reload == b.no_reload);
	CHECK(a.ft_path == b.ft_path);
	CHECK(a.N_samples == b.N_samples);
	CHECK(a.N_importance == b.N_importance);
	CHECK(a.perturb == b.perturb);
	CHECK(a.use_viewdirs == b.use_viewdirs);
	CHECK(a.i_embed == b.i_embed);
	CHECK(a.multires == b.multires);
	CHECK(a.multires_views == b.multires_views);
	CHECK(a.raw_noise_std == b.raw_noise_std);
	CHECK(a.render_only == b.render_only);
	CHECK(a.render_test == b.render_test);
	CHECK(a.render_factor == b.render_factor);
	CHECK(a.precrop_iters == b.precrop_iters);
	CHECK(a.precrop_frac == b.precrop_frac);
	CHECK(a.dataset_type == b.dataset_type);
	CHECK(a.testskip == b.testskip);
	CHECK(a.shape == b.shape);
	CHECK(a.white_bkgd == b.white_bkgd);
	CHECK(a.half_res == b.half_res);
	CHECK(a.factor == b.factor);
	CHECK(a.no_ndc == b.no_ndc);
	CHECK(a.lindisp == b.lindisp);
	CHECK(a.spherify == b.spherify);
	CHECK(a.llffhold == b.llffhold);
	CHECK(a.near == b.near);
	CHECK(a.far == b.far);
	CHECK(a.i_print == b.i_print);
	CHECK(a.i_img == b.i_img);
	CHECK(a.i_weights == b.i_weights);
	CHECK(a.i_testset == b.i_testset);
	CHECK(a.i_video == b.i_video);
	CHECK(a.N_iters == b.N_iters);
	CHECK(a.max_seconds == b.max_seconds);
	CHECK(a.seed == b.seed);
	CHECK(a.device == b.device);
	CHECK(a.precision == b.precision);
	CHECK(a.cuda_graph == b.cuda_graph);
	CHECK(a.quiet == b.quiet);
	CHECK(a.n_val_eval == b.n_val_eval);
	CHECK(a.threads == b.threads);
	CHECK(a.max_image_pixels == b.max_image_pixels);
	CHECK(a.occ_grid == b.occ_grid);
	CHECK(a.occ_resolution == b.occ_resolution);
	CHECK(a.occ_aabb == b.occ_aabb);
	CHECK(a.occ_update_every == b.occ_update_every);
	CHECK(a.occ_warmup == b.occ_warmup);
	CHECK(a.occ_threshold == b.occ_threshold);
	CHECK(a.render_step_size == b.render_step_size);
	CHECK(a.target_samples == b.target_samples);
	CHECK(a.model == b.model);
	CHECK(a.n_levels == b.n_levels);
	CHECK(a.n_features_per_level == b.n_features_per_level);
	CHECK(a.log2_hashmap_size == b.log2_hashmap_size);
	CHECK(a.base_resolution == b.base_resolution);
	CHECK(a.finest_resolution == b.finest_resolution);
	CHECK(a.learning_rate == b.learning_rate);
	CHECK(a.beta1 == b.beta1);
	CHECK(a.beta2 == b.beta2);
	CHECK(a.epsilon == b.epsilon);
	CHECK(a.l2_reg == b.l2_reg);
}

} // namespace

TEST_CASE("config: defaults are nerf-pytorch's", "[config]") {
	Config cfg;
	REQUIRE(parse({}, cfg));
	CHECK(cfg.config.empty());
	CHECK(cfg.basedir == "./logs/");
	CHECK(cfg.datadir == "./data/llff/fern");
	CHECK(cfg.netdepth == 8);
	CHECK(cfg.netwidth == 256);
	CHECK(cfg.N_rand == 4096);
	CHECK(cfg.lrate == 5e-4f);
	CHECK(cfg.lrate_decay == 250);
	CHECK(cfg.chunk == 32768);
	CHECK(cfg.netchunk == 65536);
	CHECK(cfg.N_samples == 64);
	CHECK(cfg.N_importance == 0);
	CHECK(cfg.perturb == 1.0f);
	CHECK(cfg.multires == 10);
	CHECK(cfg.multires_views == 4);
	CHECK(cfg.raw_noise_std == 0.0f);
	CHECK(cfg.precrop_frac == 0.5f);
	CHECK(cfg.dataset_type == "llff");
	CHECK(cfg.testskip == 8);
	CHECK(cfg.shape == "greek");
	// 0: each dataset's default, nerf-pytorch's 8 for LLFF (issue 21: transforms.json scenes use nerfstudio's rule).
	CHECK(cfg.factor == 0);
	CHECK(cfg.llffhold == 8);
	CHECK(cfg.i_print == 100);
	CHECK(cfg.i_img == 500);
	CHECK(cfg.i_weights == 10000);
	CHECK(cfg.i_testset == 50000);
	CHECK(cfg.i_video == 50000);
	CHECK_FALSE(cfg.white_bkgd);
	CHECK_FALSE(cfg.use_viewdirs);
	CHECK(cfg.N_iters == 200000);
	CHECK(cfg.device == "auto");
	CHECK(cfg.precision == "tf32");
	require_same(cfg, Config{});
}

TEST_CASE("config: nerf-pytorch's lego.txt parses", "[config]") {
	TempDir dir("lego");
	const std::string path = dir.write("lego.txt", kLegoTxt);
	Config cfg;
	REQUIRE(parse({"--config", path}, cfg));
	CHECK(cfg.config == path);
	CHECK(cfg.expname == "blender_paper_lego");
	CHECK(cfg.basedir == "./logs");
	CHECK(cfg.datadir == "./data/nerf_synthetic/lego");
	CHECK(cfg.dataset_type == "blender");
	CHECK(cfg.no_batching);
	CHECK(cfg.use_viewdirs);
	CHECK(cfg.white_bkgd);
	CHECK(cfg.lrate_decay == 500);
	CHECK(cfg.N_samples == 64);
	CHECK(cfg.N_importance == 128);
	CHECK(cfg.N_rand == 1024);
	CHECK(cfg.precrop_iters == 500);
	CHECK(cfg.precrop_frac == 0.5f);
	CHECK(cfg.half_res);
	// Keys the file does not name keep their defaults.
	CHECK(cfg.lrate == 5e-4f);
	CHECK(cfg.testskip == 8);
	CHECK_FALSE(cfg.no_ndc);
	CHECK(cfg.raw_noise_std == 0.0f);
}

TEST_CASE("config: nerf-pytorch's fern.txt parses", "[config]") {
	TempDir dir("fern");
	const std::string path = dir.write("fern.txt", kFernTxt);
	Config cfg;
	nerf::load_config_file(path, cfg);
	CHECK(cfg.config.empty());  // load_config_file reads options only; parse_config records --config
	CHECK(cfg.expname == "fern_test");
	CHECK(cfg.basedir == "./logs");
	CHECK(cfg.datadir == "./data/nerf_llff_data/fern");
	CHECK(cfg.dataset_type == "llff");
	CHECK(cfg.factor == 8);
	CHECK(cfg.llffhold == 8);
	CHECK(cfg.N_rand == 1024);
	CHECK(cfg.N_samples == 64);
	CHECK(cfg.N_importance == 64);
	CHECK(cfg.use_viewdirs);
	CHECK(cfg.raw_noise_std == 1.0f);
	CHECK_FALSE(cfg.white_bkgd);
	CHECK_FALSE(cfg.no_batching);
	CHECK(cfg.precrop_iters == 0);
}

TEST_CASE("config: the command line overrides the file wherever --config appears", "[config]") {
	TempDir dir("override");
	const std::string path = dir.write("fern.txt", std::string(kFernTxt) + "white_bkgd = False\nlrate = 1e-3\n");
	for (bool config_first : {true, false}) {
		std::vector<std::string> args = {"--N_rand", "2048", "--white_bkgd", "--expname=mine", "--raw_noise_std", "0"};
		if (config_first) args.insert(args.begin(), {"--config", path});
		else args.insert(args.end(), {"--config", path});
		Config cfg;
		REQUIRE(parse(args, cfg));
		CHECK(cfg.N_rand == 2048);
		CHECK(cfg.white_bkgd);
		CHECK(cfg.expname == "mine");
		CHECK(cfg.raw_noise_std == 0.0f);
		// File values the command line leaves alone.
		CHECK(cfg.N_importance == 64);
		CHECK(cfg.lrate == 1e-3f);
		CHECK(cfg.config == path);
	}
}

TEST_CASE("config: command-line flags and values", "[config]") {
	Config cfg;
	REQUIRE(parse({"--use_viewdirs", "--half_res", "--i_embed", "-1", "--seed", "18446744073709551615", "--lrate",
	               "2.5e-4", "--max_seconds", "90.5", "--precision", "bf16", "--device", "cpu", "--dataset_type",
	               "LINEMOD", "--N_rand", "10", "--N_rand", "20"},
	              cfg));
	CHECK(cfg.use_viewdirs);
	CHECK(cfg.half_res);
	CHECK_FALSE(cfg.white_bkgd);
	CHECK(cfg.i_embed == -1);
	CHECK(cfg.seed == 18446744073709551615ull);
	CHECK(cfg.lrate == 2.5e-4f);
	CHECK(cfg.max_seconds == 90.5);
	CHECK(cfg.precision == "bf16");
	CHECK(cfg.device == "cpu");
	CHECK(cfg.dataset_type == "LINEMOD");
	CHECK(cfg.N_rand == 20);
	Config builtin;
	REQUIRE(parse({"--dataset_type", "builtin"}, builtin));
	CHECK(builtin.dataset_type == "builtin");  // argparse keeps the last repeat
}

TEST_CASE("config: booleans, comments and quotes in a file", "[config]") {
	TempDir dir("syntax");
	Config start;
	start.white_bkgd = true;  // an explicit False in the file must clear it
	const std::string path = dir.write("cfg.txt",
	                                   "# whole-line comment\n"
	                                   "   # indented comment\n"
	                                   "white_bkgd = False\n"
	                                   "half_res = true   # trailing comment\n"
	                                   "use_viewdirs=TRUE\n"
	                                   "N_rand = 2048 # comment\n"
	                                   "expname = a#b\n"
	                                   "datadir = \"path with spaces\"  # quoted\n"
	                                   "basedir = './my logs/'\n"
	                                   "; configargparse's other comment line\n"
	                                   "[section headers are skipped too]\n"
	                                   "shape = vase\r\n");
	Config cfg = start;
	nerf::load_config_file(path, cfg);
	CHECK_FALSE(cfg.white_bkgd);
	CHECK(cfg.half_res);
	CHECK(cfg.use_viewdirs);
	CHECK(cfg.N_rand == 2048);
	CHECK(cfg.expname == "a#b");
	CHECK(cfg.datadir == "path with spaces");
	CHECK(cfg.basedir == "./my logs/");
	CHECK(cfg.shape == "vase");

	const Config trailing = load_text(dir, "N_importance = 128 # fine samples\nprecrop_frac = 0.25\t#tab\n");
	CHECK(trailing.N_importance == 128);
	CHECK(trailing.precrop_frac == 0.25f);

	// As in configargparse, '#' starts a trailing comment only after a blank (that is what keeps `a#b`),
	// and ';' only comments out whole lines.
	std::string bad_path;
	std::string err = error_of([&] { load_text(dir, "N_rand = 2048# no blank\n", &bad_path); });
	CHECK(err.find(bad_path + ":1: option 'N_rand' expects an integer, got '2048# no blank'") != std::string::npos);
	err = error_of([&] { load_text(dir, "\nlrate = 1e-3 ; note\n", &bad_path); });
	CHECK(err.find(bad_path + ":2: option 'lrate' expects a number, got '1e-3 ; note'") != std::string::npos);
}

TEST_CASE("config: unknown keys and malformed lines name the file and line", "[config]") {
	TempDir dir("errors");
	std::string path;
	std::string err = error_of([&] { load_text(dir, "N_rand = 8\nfoo = 3\n", &path); });
	CHECK(err.find(path + ":2: unknown option 'foo'") != std::string::npos);

	err = error_of([&] { load_text(dir, "expname = x\n\nuse_viewdirs\n", &path); });
	CHECK(err.find(path + ":3:") != std::string::npos);
	CHECK(err.find("use_viewdirs") != std::string::npos);

	err = error_of([&] { load_text(dir, "= 5\n", &path); });
	CHECK(err.find(path + ":1:") != std::string::npos);
}

TEST_CASE("config: bad values in a file name the option and the value", "[config]") {
	TempDir dir("values");
	struct Case {
		const char* line;
		const char* message;
	};
	const Case cases[] = {
		{"N_rand = abc", "option 'N_rand' expects an integer, got 'abc'"},
		{"N_rand = 12abc", "option 'N_rand' expects an integer, got '12abc'"},
		{"N_rand = 1.5", "option 'N_rand' expects an integer, got '1.5'"},
		{"N_rand = 99999999999", "option 'N_rand' expects an integer, got '99999999999'"},
		{"lrate = fast", "option 'lrate' expects a number, got 'fast'"},
		{"lrate = nan", "option 'lrate' expects a number, got 'nan'"},
		{"white_bkgd = maybe", "option 'white_bkgd' expects True or False, got 'maybe'"},
		{"seed = -1", "option 'seed' expects a non-negative integer, got '-1'"},
		{"N_rand = 0", "option 'N_rand' must be > 0, got 0"},
		{"N_samples = 1", "option 'N_samples' must be >= 2, got 1"},
		{"N_importance = -1", "option 'N_importance' must be >= 0, got -1"},
		{"lrate = 0", "option 'lrate' must be > 0, got 0"},
		{"precrop_frac = 1.5", "option 'precrop_frac' must be <= 1, got 1.5"},
		{"i_print = 0", "option 'i_print' must be >= 1, got 0"},
		{"factor = -1", "option 'factor' must be >= 0, got -1"},
		{"precision = fp64", "option 'precision' must be one of fp32 tf32 fp16 bf16; got 'fp64'"},
		{"dataset_type = nerf", "option 'dataset_type' must be one of llff blender deepvoxels LINEMOD transforms builtin; got 'nerf'"},
		{"device = gpu", "option 'device' must be one of auto cpu cuda; got 'gpu'"},
	};
	for (const Case& c : cases) {
		std::string path;
		const std::string err = error_of([&] { load_text(dir, std::string("expname = x\n") + c.line + "\n", &path); });
		INFO(c.line << " -> " << err);
		CHECK(err.find(path + ":2: " + c.message) != std::string::npos);
	}
}

TEST_CASE("config: a missing config file is an error naming it", "[config]") {
	TempDir dir("missing");
	const std::string missing = dir.write("present.txt", "") + ".absent";
	Config cfg;
	std::string err = error_of([&] { nerf::load_config_file(missing, cfg); });
	CHECK(err.find(missing) != std::string::npos);
	err = error_of([&] { parse({"--config", missing}, cfg); });
	CHECK(err.find(missing) != std::string::npos);
}

TEST_CASE("config: command-line errors", "[config]") {
	Config cfg;
	std::string err = error_of([&] { parse({"--foo", "3"}, cfg); });
	CHECK(err.find("--foo") != std::string::npos);
	err = error_of([&] { parse({"--N_rand", "abc"}, cfg); });
	CHECK(err.find("--N_rand: expects an integer, got 'abc'") != std::string::npos);
	err = error_of([&] { parse({"--N_rand", "8.0"}, cfg); });
	CHECK(err.find("--N_rand: expects an integer, got '8.0'") != std::string::npos);
	// strtoull alone would wrap -1 around to 2^64-1.
	err = error_of([&] { parse({"--seed", "-1"}, cfg); });
	CHECK(err.find("--seed: expects a non-negative integer, got '-1'") != std::string::npos);
	err = error_of([&] { parse({"--lrate", "nan"}, cfg); });
	CHECK(err.find("--lrate: expects a number, got 'nan'") != std::string::npos);
	err = error_of([&] { parse({"--white_bkgd=maybe"}, cfg); });
	CHECK(err.find("white_bkgd") != std::string::npos);
	err = error_of([&] { parse({"--config"}, cfg); });
	CHECK(err.find("--config") != std::string::npos);
	err = error_of([&] { parse({"--N_rand", "-5"}, cfg); });
	CHECK(err.find("option 'N_rand' must be > 0, got -5") != std::string::npos);
	err = error_of([&] { parse({"--precision", "fp64"}, cfg); });
	CHECK(err.find("option 'precision' must be one of") != std::string::npos);
	err = error_of([&] { parse({"stray_positional"}, cfg); });
	CHECK(err.find("stray_positional") != std::string::npos);
}

TEST_CASE("config: --help prints every option and returns false", "[config]") {
	std::ostringstream captured;
	std::streambuf* const old = std::cout.rdbuf(captured.rdbuf());
	Config cfg;
	bool parsed = true;
	try {
		parsed = parse({"--help"}, cfg);
	} catch (...) {
		std::cout.rdbuf(old);
		throw;
	}
	std::cout.rdbuf(old);
	CHECK_FALSE(parsed);
	const std::string help = captured.str();
	CHECK(help.find("test program") != std::string::npos);
	for (const std::string& name : kAllOptions) {
		INFO(name);
		CHECK(help.find("--" + name + " ") != std::string::npos);
	}
	CHECK(help.find("batch size") != std::string::npos);
}

TEST_CASE("config: config_to_string round-trips every option", "[config]") {
	Config cfg;
	cfg.config = "runs/lego.txt";
	cfg.expname = "lego # with a hash";
	cfg.basedir = " padded ";
	cfg.datadir = "\"quoted\" dir";
	cfg.netdepth = 4;
	cfg.netwidth = 128;
	cfg.netdepth_fine = 6;
	cfg.netwidth_fine = 64;
	cfg.N_rand = 1234;
	cfg.lrate = 0.1f;  // not exactly representable: needs enough digits
	cfg.lrate_decay = 500;
	cfg.chunk = 777;
	cfg.netchunk = 999;
	cfg.no_batching = true;
	cfg.no_reload = true;
	cfg.ft_path = "";
	cfg.N_samples = 33;
	cfg.N_importance = 17;
	cfg.perturb = 0.0f;
	cfg.use_viewdirs = true;
	cfg.i_embed = -1;
	cfg.multires = 7;
	cfg.multires_views = 3;
	cfg.raw_noise_std = 1.0f / 3.0f;
	cfg.render_only = true;
	cfg.render_test = true;
	cfg.render_factor = 4;
	cfg.precrop_iters = 321;
	cfg.precrop_frac = 0.7f;
	cfg.dataset_type = "deepvoxels";
	cfg.testskip = 2;
	cfg.shape = "it's";
	cfg.white_bkgd = true;
	cfg.half_res = true;
	cfg.factor = 4;
	cfg.no_ndc = true;
	cfg.lindisp = true;
	cfg.spherify = true;
	cfg.llffhold = 0;
	cfg.near = 0.25f;
	cfg.far = 7.5f;
	cfg.i_print = 1;
	cfg.i_img = 2;
	cfg.i_weights = 3;
	cfg.i_testset = 4;
	cfg.i_video = 5;
	cfg.N_iters = 6;
	cfg.max_seconds = 1.0 / 7.0;
	cfg.seed = 18446744073709551615ull;
	cfg.device = "cuda";
	cfg.precision = "fp16";
	cfg.cuda_graph = true;
	cfg.quiet = true;
	cfg.n_val_eval = 9;
	cfg.threads = 2;
	cfg.max_image_pixels = 12345678901ull;
	cfg.occ_grid = true;
	cfg.occ_resolution = 96;
	cfg.occ_aabb = "-1.5,-2,-0.25,1.5,2,0.75";
	cfg.occ_update_every = 8;
	cfg.occ_warmup = 100;
	cfg.occ_threshold = 0.003f;  // not exactly representable, like lrate
	cfg.render_step_size = 0.0173f;
	cfg.target_samples = 65536;
	cfg.model = "ngp";
	cfg.n_levels = 12;
	cfg.n_features_per_level = 4;
	cfg.log2_hashmap_size = 17;
	cfg.base_resolution = 8;
	cfg.finest_resolution = 1000.5f;
	cfg.learning_rate = 0.03f;
	cfg.beta1 = 0.8f;
	cfg.beta2 = 0.95f;
	cfg.epsilon = 1e-12f;
	cfg.l2_reg = 3e-7f;

	const std::string text = nerf::config_to_string(cfg);
	// One `key = value` line per option, in a stable order.
	std::istringstream lines(text);
	std::string line;
	size_t index = 0;
	while (std::getline(lines, line)) {
		REQUIRE(index < kAllOptions.size());
		CHECK(line.rfind(kAllOptions[index] + " = ", 0) == 0);
		++index;
	}
	CHECK(index == kAllOptions.size());
	CHECK(text.find("use_viewdirs = True\n") != std::string::npos);
	CHECK(text.find("no_ndc = True\n") != std::string::npos);
	CHECK(text.find("lrate = 0.1\n") != std::string::npos);
	CHECK(nerf::config_to_string(cfg) == text);

	TempDir dir("roundtrip");
	Config back;
	nerf::load_config_file(dir.write("saved.txt", text), back);
	require_same(back, cfg);

	// Defaults too, and the printed defaults are readable.
	const std::string default_text = nerf::config_to_string(Config{});
	CHECK(default_text.find("lrate = 0.0005\n") != std::string::npos);
	CHECK(default_text.find("white_bkgd = False\n") != std::string::npos);
	CHECK(default_text.find("N_rand = 4096\n") != std::string::npos);
	Config default_back;
	default_back.N_rand = 1;
	default_back.white_bkgd = true;
	nerf::load_config_file(dir.write("defaults.txt", default_text), default_back);
	require_same(default_back, Config{});
}

TEST_CASE("config: args.txt lists every option sorted by name, values as Python prints them", "[config]") {
	Config cfg;
	cfg.expname = "lego test";
	cfg.white_bkgd = true;
	cfg.lrate = 1e-5f;
	cfg.precrop_frac = 0.1f;
	cfg.raw_noise_std = 2.5e-7f;
	cfg.max_seconds = 1.0 / 7.0;
	cfg.N_importance = 128;
	const std::string text = nerf::config_to_args_text(cfg);
	std::vector<std::string> names, lines;
	std::istringstream in(text);
	for (std::string line; std::getline(in, line);) {
		lines.push_back(line);
		names.push_back(line.substr(0, line.find(" = ")));
	}
	std::vector<std::string> expected_names = kAllOptions;
	std::sort(expected_names.begin(), expected_names.end());
	CHECK(names == expected_names);
	// Python's sorted() puts upper case first, as nerf-pytorch's args.txt starts.
	REQUIRE(lines.size() == kAllOptions.size());
	CHECK(lines[0] == "N_importance = 128");
	CHECK(lines[1] == "N_iters = 200000");
	CHECK(lines[2] == "N_rand = 4096");
	CHECK(lines[3] == "N_samples = 64");
	CHECK(lines[4] == "base_resolution = 16");
	CHECK(lines[5] == "basedir = ./logs/");
	for (const char* line : {"config = None", "ft_path = None", "expname = lego test", "white_bkgd = True", "half_res = False",
	                         "lrate = 1e-05", "precrop_frac = 0.1", "raw_noise_std = 2.5e-07", "perturb = 1.0",
	                         "max_seconds = 0.14285714285714285", "lrate_decay = 250", "seed = 0", "epsilon = 1e-15",
	                         "learning_rate = 0.01", "model = nerf"}) {
		INFO(line);
		CHECK(std::find(lines.begin(), lines.end(), line) != lines.end());
	}

	const std::string defaults = nerf::config_to_args_text(Config{});
	CHECK(defaults.find("\nlrate = 0.0005\n") != std::string::npos);
	CHECK(defaults.find("\nraw_noise_std = 0.0\n") != std::string::npos);
	CHECK(defaults.find("\nmax_seconds = 0.0\n") != std::string::npos);
	// Python's repr switches to an exponent from 1e16 and below 1e-4.
	for (const auto& [seconds, text] : std::vector<std::pair<double, std::string>>{
	         {1e16, "1e+16"}, {123456.5, "123456.5"}, {1e15, "1000000000000000.0"}, {2e-5, "2e-05"}, {1e-4, "0.0001"}}) {
		Config cfg_seconds;
		cfg_seconds.max_seconds = seconds;
		CHECK_THAT(nerf::config_to_args_text(cfg_seconds), Catch::Contains("\nmax_seconds = " + text + "\n"));
	}
}
