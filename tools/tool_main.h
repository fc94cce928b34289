// What every nerfcore tool's main() shares: exceptions become one message and exit code 1, and the
// command-line rules are the same in every tool. A tool writes `int run(int argc, char** argv)` and
// its main is `return nerf::tool::main_wrapper("name", argc, argv, run);`.
#pragma once

#include "nerf/common.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <new>

namespace nerf::tool {

/// CLI11 as nerf_train's parser (nerf-pytorch's argparse): an option given twice keeps its last value.
inline void apply_command_line_rules(CLI::App& app) {
	app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

/// Parses a tool's own command line. Returns -1 when the tool should go on, else the exit code:
/// 0 after --help, 1 after a parse error (CLI11 has printed it).
inline int parse_command_line(CLI::App& app, int argc, char** argv) {
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError& e) {
		return app.exit(e) == 0 ? 0 : 1;
	}
	return -1;
}

/// Runs `run` and turns anything it throws into "<name>: error: <what>" on stderr and exit code 1.
/// Nothing escapes: a std::bad_alloc (a huge image, a huge batch) is reported, not an abort.
template <typename Run>
int main_wrapper(const char* name, int argc, char** argv, Run&& run) noexcept {
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

} // namespace nerf::tool
