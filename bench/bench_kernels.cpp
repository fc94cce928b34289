// bench_kernels: time of every pipeline stage at the lego config's sizes, its achieved bandwidth and
// FLOP rate, and both as fractions of this device's own peaks measured in the same run.
//
// Each stage is checked before it is timed. On CUDA the same inputs go through the CPU backend and
// the outputs are compared within a per-stage bound (the comment at each bound says where it comes
// from). On the CPU, comparing the backend with itself would prove nothing, so the outputs are
// checked against double-precision references and invariants instead. A failed check prints the
// stage and the error and the program exits 1.
//
// Counting conventions (see each stage for its formula):
//   bytes  = the compulsory traffic: every input read once and every output written once (a
//            kernel that re-reads from DRAM moves more, so GB/s is a lower bound of the real traffic);
//   FLOPs  = floating-point operations of the formula, with exp/sin/cos/sqrt/div counted as one
//            each (hardware spends more on them), integer RNG work not counted. For the MLP, the
//            GEMMs' 2 * multiply-adds only.
//   peaks  = bandwidth: Backend::copy of a large buffer (bytes read + written);
//            compute: a large GEMM at the same precision (see measure_peaks for how).
//
// The stages live in files by family: bench_stages_rays.cpp (rays, stratified sampling, encodings),
// bench_stages_composite.cpp (compositing, resampling), bench_stages_occupancy.cpp (marching, packed
// compositing, the grid update), bench_stages_mlp.cpp, bench_stages_optim.cpp (loss, Adam),
// bench_stages_train.cpp (a training step, a rendered image), and bench_ngp_stages.cpp (the hash-grid
// model's stages, through stage_registry.h).
#include "kernel_bench.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <string>

namespace nerf::bench {
namespace {

int run_main(int argc, char** argv) {
	Options opt;
	CLI::App app{"nerfcore per-stage benchmark: validated timings, GB/s, TFLOP/s and fraction of the device's peaks"};
	app.add_option("--device", opt.device, "cpu, cuda or auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
	app.add_flag("--small", opt.small, "CPU-friendly sizes (N_rand 64, 16+16 samples, 6x64 MLP, 32x32 render)");
	auto* repeats_opt = app.add_option("--repeats", opt.repeats, "timed repeats per stage (median reported)");
	auto* warmup_opt = app.add_option("--warmup", opt.warmup, "untimed runs before timing");
	app.add_option("--heavy_repeats", opt.heavy_repeats, "repeats for train_step and render_image (default: --repeats)");
	app.add_option("--json", opt.json_path,
	               "write the results as JSON to this file, after every stage (\"complete\": false until the end)");
	app.add_option("--n_rand", opt.n_rands, "ray batch sizes (default: 1024 4096; --small: 64)")->delimiter(',');
	app.add_option("--render_hw", opt.render_hw, "render_image size (default 800; --small: 32)");
	app.add_option("--check_rows", opt.check_rows, "CUDA: samples of the MLP compared against the CPU backend");
	app.add_option("--threads", opt.threads, "CPU threads (0: all cores)");
	app.add_option("--precisions", opt.precisions, "CUDA: MLP precisions to run (default fp32,tf32,fp16,bf16)")
	    ->delimiter(',');
	app.add_option("--flush_mib", opt.flush_mib,
	               "MiB overwritten before each repeat to evict caches (default: 256 on CUDA, 0 on the CPU)");
	std::string sabotage;
	app.add_option("--sabotage", sabotage, "test hook: make every check of this stage fail (the bench must exit 1)")
	    ->group("");
	app.add_option("--only", opt.only, "comma-separated substrings of stage names to run (default: all)");
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError& e) {
		return app.exit(e);
	}
	if (opt.small) {
		if (repeats_opt->count() == 0) opt.repeats = 5;
		if (warmup_opt->count() == 0) opt.warmup = 1;
	}
	NERF_CHECK(opt.repeats >= 1 && opt.warmup >= 0);
	StageCheck::sabotaged_stage() = sabotage;

	std::unique_ptr<Backend> dev = create_backend(opt.device, opt.threads);
	Sizes sizes = opt.small ? small_sizes(dev->is_cuda()) : lego_sizes(dev->is_cuda());
	if (!opt.n_rands.empty()) sizes.n_rands = opt.n_rands;
	if (opt.render_hw > 0) sizes.render_hw = opt.render_hw;
	std::unique_ptr<Backend> ref = dev->is_cuda() ? create_cpu_backend(opt.threads) : nullptr;
	std::fprintf(stderr, "bench_kernels on %s (%s sizes), checks %s\n", dev->name().c_str(), opt.small ? "small" : "lego",
	             ref ? "against the CPU backend" : "against double references and invariants");

	KernelBench bench(*dev, std::move(ref), opt, sizes);
	bench.set_command_line(join_command_line(argc, argv));
	bench.write_json(false);  // an unwritable path fails now, not after the first stage's minutes
	bench.run();
	bench.print_table(std::cout);
	if (!opt.json_path.empty()) std::fprintf(stderr, "wrote %s\n", opt.json_path.c_str());
	return 0;
}

} // namespace
} // namespace nerf::bench

int main(int argc, char** argv) {
	try {
		return nerf::bench::run_main(argc, argv);
	} catch (const nerf::bench::ValidationError& e) {
		std::fprintf(stderr, "bench_kernels: %s\n", e.what());
		return 1;
	} catch (const std::exception& e) {
		std::fprintf(stderr, "bench_kernels: error: %s\n", e.what());
		return 1;
	}
}
