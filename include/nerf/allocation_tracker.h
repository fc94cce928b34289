/// @file allocation_tracker.h
/// @brief Byte accounting shared by the backends: live allocations, current and peak bytes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <unordered_map>

namespace nerf {

class AllocationTracker {
public:
	void add(void* p, size_t bytes) {
		std::lock_guard<std::mutex> lock(m_mutex);
		m_sizes[p] = bytes;
		m_current += bytes;
		m_peak = std::max(m_peak, m_current);
	}
	/// Forgets p; false when p was never added (the caller decides whether that is worth a message).
	bool remove(void* p) noexcept {
		std::lock_guard<std::mutex> lock(m_mutex);
		auto it = m_sizes.find(p);
		if (it == m_sizes.end()) return false;
		m_current -= it->second;
		m_sizes.erase(it);
		return true;
	}
	size_t current_bytes() const { return m_current; }
	size_t peak_bytes() const { return m_peak; }
	size_t live_allocations() const {
		std::lock_guard<std::mutex> lock(m_mutex);
		return m_sizes.size();
	}

private:
	mutable std::mutex m_mutex;
	std::unordered_map<void*, size_t> m_sizes;
	size_t m_current = 0, m_peak = 0;
};

} // namespace nerf
