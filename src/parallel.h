// Internal: exceptions and OpenMP. An exception may not leave an OpenMP region (the runtime calls
// std::terminate, so a std::bad_alloc in a worker thread would abort the process). Every parallel
// loop body that can throw runs through ParallelErrors::run, and the first exception is rethrown on
// the calling thread after the region.
#pragma once

#include <atomic>
#include <exception>
#include <mutex>

namespace nerf {

class ParallelErrors {
public:
	/// Calls body(); an exception is kept (the first one) instead of leaving the region. Once one is
	/// kept the remaining bodies are skipped, since their results will be thrown away.
	template <typename Body>
	void run(Body&& body) noexcept {
		if (m_failed.load(std::memory_order_relaxed)) return;
		try {
			body();
		} catch (...) {
			std::lock_guard<std::mutex> lock(m_mutex);
			if (!m_first) m_first = std::current_exception();
			m_failed.store(true, std::memory_order_relaxed);
		}
	}
	/// After the region: rethrows the kept exception, if any.
	void rethrow() {
		if (m_first) std::rethrow_exception(m_first);
	}

private:
	std::atomic<bool> m_failed{false};
	std::mutex m_mutex;
	std::exception_ptr m_first;
};

} // namespace nerf
