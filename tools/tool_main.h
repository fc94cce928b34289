// What every nerfcore tool's main() shares: exceptions become one message and exit code 1, OpenMP
// threads wait passively, and the command-line rules are the same in every tool. A tool writes
// `int run(int argc, char** argv)` and its main is `return nerf::tool::tool_main("name", argc, argv, run);`.
#pragma once

#include "nerf/checkpoint.h"
#include "nerf/common.h"
#include "nerf/config.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>
#include <new>

#include <unistd.h>

namespace nerf::tool {

/// CLI11 as nerf_train's parser (nerf-pytorch's argparse): an option given twice keeps its last value.
inline void apply_command_line_rules(CLI::App& app) {
	app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

/// Parses a tool's own command line. Returns -1 when the tool should go on, 0 after --help. A parse
/// error throws nerf::Error ("command line: ..."), so that it reads "<tool>: error: ..." as every other
/// error does; an unknown option names the closest known one.
inline int parse_command_line(CLI::App& app, int argc, char** argv) {
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError& e) {
		if (e.get_exit_code() == 0) return app.exit(e);  // --help
		const std::string unknown = unknown_option_message(app, argc, argv);
		NERF_FAIL("command line: " << (unknown.empty() ? std::string(e.what()) : unknown) << " (see --help)");
	}
	return -1;
}

/// OpenMP threads that wait at a barrier by sleeping, not spinning. libgomp's default spins for about
/// 300000 rounds first, which on a shared machine burns the time slices the descheduled threads they
/// wait for (or another program) need: two trainings at once on a 2-core machine ran at 4.15 and 4.16
/// steps/s with the default spin, at 5.22 and 5.71 waiting passively; alone, passive waiting costs 8%
/// (README, "Training on a shared machine"). libgomp reads OMP_WAIT_POLICY once, when it is loaded, so a tool that finds it unset
/// sets it and runs itself again; a value set by the user is kept (ACTIVE to spin).
inline void wait_passively_in_openmp(char** argv) {
	if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
	if (::setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
	::execv("/proc/self/exe", argv);  // returns only on failure: then go on as we are
}

/// --ckpt as nerf-pytorch users pass it: a checkpoint file, or a run folder (logs/<expname>), meaning its
/// newest checkpoint, which is then named on stdout ("... is a folder: <what>ing its newest checkpoint")
/// unless quiet. A folder without checkpoints is an error.
inline std::string checkpoint_file(const std::string& ckpt, bool quiet, const char* what) {
	std::error_code ec;
	if (!std::filesystem::is_directory(ckpt, ec)) return ckpt;
	const std::vector<std::string> found = nerf::list_checkpoints(ckpt);
	if (found.empty()) NERF_FAIL("--ckpt " << ckpt << ": the folder holds no checkpoint (*.safetensors)");
	if (!quiet) std::printf("--ckpt %s is a folder: %s its newest checkpoint, %s\n", ckpt.c_str(), what, found.back().c_str());
	return found.back();
}

/// Runs `run` and turns anything it throws into "<name>: error: <what>" on stderr and exit code 1.
/// Nothing escapes: a std::bad_alloc (a huge image, a huge batch) is reported, not an abort.
template <typename Run>
int report_errors(const char* name, int argc, char** argv, Run&& run) noexcept {
	try {
		return run(argc, argv);
	} catch (const std::bad_alloc&) {
		std::fflush(stdout);
		std::fprintf(stderr, "%s: error: out of memory (the data, batch or image size needs more memory than this "
		                     "machine or its limits allow)\n", name);
	} catch (const std::exception& e) {
		std::fflush(stdout);
		std::fprintf(stderr, "%s: error: %s\n", name, e.what());
	} catch (...) {
		std::fflush(stdout);
		std::fprintf(stderr, "%s: error: unknown exception\n", name);
	}
	return 1;
}

/// A tool's whole main: passive OpenMP waiting, then `run` with every error reported.
template <typename Run>
int tool_main(const char* name, int argc, char** argv, Run&& run) noexcept {
	wait_passively_in_openmp(argv);
	return report_errors(name, argc, argv, run);
}

} // namespace nerf::tool
