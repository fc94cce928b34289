// CoreShare: /proc/stat says how busy our cores were, the process's own CPU clock how much of that
// was us; the difference is the other processes' load.
#include "core_share.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

#include <sched.h>
#include <unistd.h>

namespace nerf {
namespace {

// Long enough that /proc/stat's 10 ms ticks resolve a core's load to about 1%, short enough to follow
// a build that starts or ends.
constexpr double kIntervalSeconds = 1.0;

} // namespace

int threads_for_load(int n_cores, double others_busy_cores, int max_threads) {
	const double free_cores = (double)n_cores - std::max(0.0, others_busy_cores);
	const int threads = (int)std::lround(free_cores);
	return std::clamp(threads, 1, std::max(1, max_threads));
}

CoreShare::CoreShare(int max_threads) : m_max_threads(std::max(1, max_threads)), m_threads(m_max_threads) {
	cpu_set_t set;
	CPU_ZERO(&set);
	if (::sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
			if (CPU_ISSET(cpu, &set)) m_cpus.push_back(cpu);
	m_last = sample();
}

CoreShare::Sample CoreShare::sample() const {
	Sample s;
	s.when = std::chrono::steady_clock::now();
	timespec own{};
	if (::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &own) != 0) return s;
	s.own_seconds = (double)own.tv_sec + 1e-9 * (double)own.tv_nsec;
	std::ifstream stat("/proc/stat");
	if (!stat) return s;
	const double tick = (double)::sysconf(_SC_CLK_TCK);
	if (!(tick > 0)) return s;
	std::string line;
	size_t found = 0;
	while (std::getline(stat, line)) {
		int cpu = -1;
		if (std::sscanf(line.c_str(), "cpu%d ", &cpu) != 1) continue;
		if (!std::binary_search(m_cpus.begin(), m_cpus.end(), cpu)) continue;
		std::istringstream fields(line.substr(line.find(' ')));
		unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
		fields >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
		// Steal is time the hypervisor gave to other machines: just as unavailable to us.
		s.busy_seconds += (double)(user + nice + system + irq + softirq + steal) / tick;
		++found;
	}
	s.valid = found == m_cpus.size() && found > 0;
	return s;
}

int CoreShare::threads() {
	const auto now = std::chrono::steady_clock::now();
	if (std::chrono::duration<double>(now - m_last.when).count() < kIntervalSeconds) return m_threads;
	const Sample current = sample();
	if (current.valid && m_last.valid) {
		const double wall = std::chrono::duration<double>(current.when - m_last.when).count();
		const double others = (current.busy_seconds - m_last.busy_seconds) - (current.own_seconds - m_last.own_seconds);
		m_threads = threads_for_load((int)m_cpus.size(), others / wall, m_max_threads);
	}
	m_last = current;
	return m_threads;
}

} // namespace nerf
