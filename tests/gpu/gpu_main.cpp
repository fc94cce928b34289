// Entry point of nerf_gpu_tests, the GPU parity tests (ctest label gpu). Without a CUDA device (or
// in a build without the CUDA backend) it says so and exits 77, which ctest reports as skipped.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "nerf/backend.h"

#include <cstdio>

int main(int argc, char** argv) {
	if (!nerf::cuda_available()) {
		std::printf("no CUDA device: GPU tests skipped\n");
		return 77;
	}
	const int failures = Catch::Session().run(argc, argv);
	// Catch returns the failure count; 77 failures must not read as "skipped".
	return failures == 77 ? 1 : failures;
}
