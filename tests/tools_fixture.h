// Shared by the [tools] tests: a tiny built-in scene (written once per process) and a tiny config.
#pragma once

#include "nerf/backend.h"
#include "nerf/checkpoint.h"
#include "nerf/config.h"
#include "nerf/scene.h"
#include "nerf/trainer.h"

#include "scratch_root.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

namespace nerf_test {

/// Runs a shell command; returns its exit status (0..255, 128 when it did not exit normally) and
/// its combined stdout and stderr.
inline int run_command(const std::string& command, std::string& output) {
	output.clear();
	FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
	if (!pipe) return 127;
	char buf[4096];
	size_t n;
	while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
	const int status = ::pclose(pipe);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/// Path of a built tool (nerf_train, nerf_render, ...).
inline std::string tool(const char* name) { return std::string(NERF_TOOLS_DIR) + "/" + name; }

/// A fresh empty folder in this process's scratch folder.
inline std::string fresh_dir(const std::string& name) {
	namespace fs = std::filesystem;
	const fs::path dir = scratch_root.path / name;
	fs::remove_all(dir);
	fs::create_directories(dir);
	return dir.string();
}

/// Writes a size x size built-in scene with these view counts (one ray per pixel) into dir.
inline void write_small_scene(const std::string& dir, int size, int n_train, int n_val, int n_test) {
	nerf::SceneOptions opts;
	opts.size = size;
	opts.n_train = n_train;
	opts.n_val = n_val;
	opts.n_test = n_test;
	opts.supersample = 1;
	nerf::write_builtin_scene(dir, opts);
}

/// A 16x16 built-in scene with 4 train, 2 val and 2 test views.
inline const std::string& tiny_scene() {
	static const std::string dir = [] {
		const std::string d = fresh_dir("scene");
		write_small_scene(d, 16, 4, 2, 2);
		return d;
	}();
	return dir;
}

/// A small network on the tiny scene: a few steps take milliseconds on the CPU.
inline nerf::Config tiny_config(const std::string& basedir, const std::string& expname) {
	nerf::Config cfg;
	cfg.dataset_type = "blender";
	cfg.datadir = tiny_scene();
	cfg.basedir = basedir;
	cfg.expname = expname;
	cfg.white_bkgd = true;
	cfg.testskip = 1;
	cfg.netdepth = 2;
	cfg.netwidth = 32;
	cfg.netdepth_fine = 2;
	cfg.netwidth_fine = 32;
	cfg.N_rand = 64;
	cfg.N_samples = 8;
	cfg.N_importance = 8;
	cfg.use_viewdirs = true;
	cfg.multires = 4;
	cfg.multires_views = 2;
	cfg.chunk = 256;
	cfg.netchunk = 4096;
	cfg.lrate = 5e-3f;
	cfg.device = "cpu";
	cfg.threads = 1;
	cfg.quiet = true;
	cfg.i_print = 1000000;
	cfg.i_img = 1000000;
	cfg.i_weights = 1000000;
	cfg.i_testset = 1000000;
	cfg.i_video = 1000000;
	cfg.seed = 7;
	return cfg;
}

inline std::string read_text(const std::string& path) {
	std::ifstream in(path, std::ios::binary);
	return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_text(const std::string& path, const std::string& text) {
	std::ofstream out(path, std::ios::binary);
	out << text;
}

/// The config as a nerf-pytorch config file `dir`/config.txt (for a tool's --config); returns its path.
inline std::string config_file(const nerf::Config& cfg, const std::string& dir) {
	const std::string path = dir + "/config.txt";
	nerf::Config written = cfg;
	written.config.clear();
	write_text(path, nerf::config_to_string(written));
	return path;
}

/// n elements of backend memory, on the host.
template <typename T> std::vector<T> host_copy(nerf::Backend& b, const T* p, size_t n) {
	std::vector<T> out(n);
	b.download(out.data(), p, n * sizeof(T));
	return out;
}
/// A model's parameter-sized buffer (params, adam_m, adam_v) on the host.
inline std::vector<float> host_params(nerf::NerfModel& model, const float* p) {
	return host_copy(model.backend(), p, model.n_floats());
}
/// Bit for bit, not ==: a resumed or re-threaded run must not even turn 0 into -0.
template <typename T> bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
	return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// What a killed and resumed nerf_train does, in one process: a run trains `stop_at` steps and saves to
/// `path`, then a new backend and trainer load that checkpoint and train on to step `total`.
struct ResumedRun {
	std::unique_ptr<nerf::Backend> backend;  // declared first: outlives the trainer
	std::unique_ptr<nerf::Trainer> trainer;
	nerf::CheckpointInfo info;  // of the checkpoint loaded
};
inline ResumedRun train_save_resume(const nerf::Config& cfg, const nerf::Dataset& data, long stop_at, long total,
                                    const std::string& path) {
	{
		auto backend = nerf::create_cpu_backend(1);
		nerf::Trainer trainer(cfg, data, *backend);
		for (long i = 1; i <= stop_at; ++i) trainer.step(i);
		nerf::save_checkpoint(path, trainer.model(), stop_at);
	}
	ResumedRun run;
	run.backend = nerf::create_cpu_backend(1);
	run.trainer = std::make_unique<nerf::Trainer>(cfg, data, *run.backend);
	run.info = nerf::load_checkpoint(path, run.trainer->model());
	for (long i = run.info.global_step + 1; i <= total; ++i) run.trainer->step(i);
	return run;
}

} // namespace nerf_test
