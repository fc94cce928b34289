// nerf_train: run_nerf.py's train() as a program. Options and config files as nerf-pytorch's.
#include "nerf/backend.h"
#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/trainer.h"

#include "tool_main.h"

#include <cstdio>

namespace {

int run(int argc, char** argv) {
	nerf::Config cfg;
	if (!nerf::parse_config(argc, argv, cfg, "nerf_train: train a NeRF (nerf-pytorch's run_nerf.py options)")) return 0;
	if (cfg.cuda_graph)
		std::fprintf(stderr, "nerf_train: warning: --cuda_graph is not implemented yet; training without graph capture\n");
	const nerf::Dataset data = nerf::load_dataset(cfg);
	std::unique_ptr<nerf::Backend> backend = nerf::create_backend(cfg.device, cfg.threads);
	// tf32 is the default and fp32 is what the CPU does; the half precisions would be a silent no-op.
	if (backend->name() == "cpu" && (cfg.precision == "fp16" || cfg.precision == "bf16"))
		std::fprintf(stderr, "nerf_train: warning: --precision %s applies to the CUDA backend; the CPU computes in fp32\n",
		             cfg.precision.c_str());
	nerf::Trainer trainer(cfg, data, *backend);
	trainer.run();
	return 0;
}

} // namespace

int main(int argc, char** argv) { return nerf::tool::tool_main("nerf_train", argc, argv, run); }
