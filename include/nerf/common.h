// Basic definitions shared by every part of libnerfcore: the host/device
// qualifier for shared math, and the error type the library throws.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#define NERF_HD __host__ __device__
#else
#define NERF_HD
#endif

namespace nerf {

/// @brief Every error libnerfcore reports is a nerf::Error; programs catch it in main.
class Error : public std::runtime_error {
public:
	explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
[[noreturn]] inline void throw_error(const char* file, int line, const std::string& msg) {
	std::ostringstream os;
	os << msg << " (" << file << ":" << line << ")";
	throw Error(os.str());
}
} // namespace detail

} // namespace nerf

/// Throws nerf::Error naming the failed expression and file:line.
#define NERF_CHECK(expr)                                                                  \
	do {                                                                                  \
		if (!(expr)) ::nerf::detail::throw_error(__FILE__, __LINE__, "check failed: " #expr); \
	} while (0)

/// Throws nerf::Error with a streamed message, e.g. NERF_FAIL("bad file " << path).
#define NERF_FAIL(stream_expr)                               \
	do {                                                     \
		std::ostringstream nerf_fail_os_;                    \
		nerf_fail_os_ << stream_expr;                        \
		throw ::nerf::Error(nerf_fail_os_.str());            \
	} while (0)
