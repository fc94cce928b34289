// Stage families that live in their own files add their rows to bench_kernels through this registry.
// A family is one function, registered at static initialisation (a file-scope RegisterStageFamily);
// bench_kernels runs every registered family, in name order, after its own stages and before its final
// peak measurement, through a StageBench: the device, the reference backend, the timing and the table.
// A family follows the bench's rules: validate first (CUDA: against the CPU backend; CPU: against
// double references and invariants; a failure throws ValidationError through StageCheck), then time,
// with the byte and FLOP counts of each row explained next to it.
#pragma once

#include "common.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace nerf::bench {

/// What bench_kernels gives a registered stage family.
class StageBench {
public:
	virtual ~StageBench() = default;
	virtual Backend& device() = 0;
	/// The CPU backend when the device is CUDA (the checks compare against it); null when the device is
	/// the CPU (the checks compare against double references instead).
	virtual Backend* reference() = 0;
	/// --small: sizes for the CPU smoke run (seconds in all).
	virtual bool small_sizes() const = 0;
	/// --only: whether this stage is to be run.
	virtual bool stage_wanted(const std::string& stage) const = 0;
	/// The timed repeats of fn (warm-up, cache flush and repeat count as every other stage).
	virtual std::vector<double> timed_repeats(const std::function<void()>& fn) = 0;
	/// One fp32 row of the table; bytes and flops per call (0 where not meaningful).
	virtual void add_stage_row(const std::string& stage, const std::string& size, const std::vector<double>& ms,
	                           double bytes, double flops, const std::string& check) = 0;
};

using StageFamily = void (*)(StageBench&);

inline std::map<std::string, StageFamily>& registered_stage_families() {
	static std::map<std::string, StageFamily> families;
	return families;
}

/// `static RegisterStageFamily r("name", fn);` at file scope registers fn under name (names are unique).
struct RegisterStageFamily {
	RegisterStageFamily(const char* name, StageFamily run) {
		if (!registered_stage_families().emplace(name, run).second) NERF_FAIL("bench stage family '" << name << "' registered twice");
	}
};

} // namespace nerf::bench
