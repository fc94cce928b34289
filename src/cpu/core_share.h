// Internal: how many threads the CPU backend should use while other processes load the machine.
//
// OpenMP runs a parallel region at the pace of its slowest thread. When another process keeps one of
// two cores busy, each of our two threads is descheduled half the time, and the other waits for it
// at every region's barrier: the run got 29% of the machine but ran 8.5 times slower. Using only the
// cores the others leave idle avoids the waiting; the results do not change, since the CPU backend's
// results do not depend on the thread count.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace nerf {

/// Threads to use, given how busy other processes kept our cores over the last interval:
/// round(n_cores - others_busy_cores), within [1, max_threads].
int threads_for_load(int n_cores, double others_busy_cores, int max_threads);

class CoreShare {
public:
	/// max_threads: the most threads to use (the configured count, or all cores).
	explicit CoreShare(int max_threads);
	/// The thread count for the next parallel work: re-measured at most every interval, else the last one.
	int threads();

private:
	struct Sample {
		double busy_seconds = 0.0;  ///< all processes' CPU time on our cores, since boot
		double own_seconds = 0.0;   ///< this process's CPU time
		std::chrono::steady_clock::time_point when;
		bool valid = false;
	};
	Sample sample() const;

	int m_max_threads;
	int m_threads;
	std::vector<int> m_cpus;  ///< the CPUs this process may run on (its affinity)
	Sample m_last;
};

} // namespace nerf
