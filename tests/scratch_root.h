// This process's scratch folder, shared by the CPU tests (tools_fixture.h) and the GPU tests.
#pragma once

#include <filesystem>
#include <string>
#include <system_error>
#include <unistd.h>

namespace nerf_test {

/// This process's scratch folder, removed when the process ends. Per process, because ctest runs
/// test cases in parallel processes and other checkouts may run the same tests on this machine.
struct ScratchRoot {
	std::filesystem::path path =
	    std::filesystem::temp_directory_path() / ("nerfcore-test-" + std::to_string(::getpid()));
	~ScratchRoot() {
		std::error_code ec;
		std::filesystem::remove_all(path, ec);
	}
};
inline ScratchRoot scratch_root;

} // namespace nerf_test
