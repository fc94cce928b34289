// Output files (POSIX): temporary file + fsync + rename for whole files, write-through appends for logs.
#include "nerf/io/output_file.h"

#include "nerf/common.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

namespace nerf {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTmpMarker = ".tmp.";

// --- the test hook -------------------------------------------------------------

struct FailureInjection {
	std::atomic<int> nth_file{0};
	std::mutex mutex;
	std::string file_name;

	FailureInjection() {
		const char* env = std::getenv("NERF_TEST_FAIL_WRITE");
		if (!env || !*env) return;
		char* end = nullptr;
		const long n = std::strtol(env, &end, 10);
		if (*end == '\0') nth_file = (int)n;
		else file_name = env;
	}
	/// True when this new AtomicFile is the one the hook asked to fail.
	bool count_file() {
		int n = nth_file.load();
		while (n > 0)
			if (nth_file.compare_exchange_weak(n, n - 1)) return n == 1;
		return false;
	}
	bool name_matches(const std::string& path) {
		std::lock_guard<std::mutex> lock(mutex);
		return !file_name.empty() && fs::path(path).filename() == file_name;
	}
};

FailureInjection& injection() {
	static FailureInjection instance;
	return instance;
}

/// The process's umask, read without changing it (Linux's /proc/self/status), else by setting and
/// restoring it (racy only with a thread creating a file in between, and only where /proc is missing).
mode_t process_umask() {
	if (FILE* status = std::fopen("/proc/self/status", "r")) {
		char line[256];
		unsigned mask = 0;
		bool found = false;
		while (!found && std::fgets(line, sizeof(line), status)) found = std::sscanf(line, "Umask: %o", &mask) == 1;
		std::fclose(status);
		if (found) return (mode_t)mask;
	}
	const mode_t mask = ::umask(022);
	::umask(mask);
	return mask;
}

std::string parent_dir(const std::string& path) {
	const fs::path parent = fs::path(path).parent_path();
	return parent.empty() ? "." : parent.string();
}

/// Writes all bytes or returns false with errno set (EINTR and short writes retried).
bool write_all(int fd, const char* data, size_t bytes) {
	while (bytes > 0) {
		const ssize_t n = ::write(fd, data, bytes);
		if (n < 0) {
			if (errno == EINTR) continue;
			return false;
		}
		data += n;
		bytes -= (size_t)n;
	}
	return true;
}

} // namespace

// --- AtomicFile ------------------------------------------------------------------

AtomicFile::AtomicFile(std::string path) : m_path(std::move(path)) {
	// The pid in the name lets a later run tell a dead writer's leftovers from a live one's file.
	m_tmp_path = m_path + kTmpMarker + std::to_string(::getpid()) + ".XXXXXX";
	m_fd = ::mkstemp(&m_tmp_path[0]);
	if (m_fd < 0)
		NERF_FAIL(m_path << ": cannot create a temporary file in " << parent_dir(m_path) << " (" << std::strerror(errno) << ")");
	// mkstemp makes 0600; an output gets the mode open(..., 0666) would give it, as every other file.
	::fchmod(m_fd, 0666 & ~process_umask());
	m_inject_failure = injection().count_file() || injection().name_matches(m_path);
}

AtomicFile::~AtomicFile() {
	if (m_fd >= 0) {
		::close(m_fd);
		::unlink(m_tmp_path.c_str());
	}
}

void AtomicFile::fail(const char* what, int err) {
	if (m_fd >= 0) ::close(m_fd);
	m_fd = -1;
	::unlink(m_tmp_path.c_str());
	NERF_FAIL(m_path << ": " << what << " failed (" << std::strerror(err) << "); the previous file, if any, is unchanged");
}

void AtomicFile::write(const void* data, size_t bytes) {
	NERF_CHECK(m_fd >= 0);
	if (!write_all(m_fd, static_cast<const char*>(data), bytes)) fail("writing", errno);
}

void AtomicFile::commit() {
	NERF_CHECK(m_fd >= 0);
	if (m_inject_failure) fail("writing (injected test failure)", ENOSPC);
	if (::fsync(m_fd) != 0) fail("fsync", errno);
	const int fd = m_fd;
	m_fd = -1;
	if (::close(fd) != 0) {
		const int err = errno;
		::unlink(m_tmp_path.c_str());
		NERF_FAIL(m_path << ": close failed (" << std::strerror(err) << "); the previous file, if any, is unchanged");
	}
	if (std::rename(m_tmp_path.c_str(), m_path.c_str()) != 0) {
		const int err = errno;
		::unlink(m_tmp_path.c_str());
		NERF_FAIL(m_path << ": rename from " << m_tmp_path << " failed (" << std::strerror(err) << ")");
	}
	// The rename is durable only once the folder's entry is on disk.
	const int dir_fd = ::open(parent_dir(m_path).c_str(), O_RDONLY | O_DIRECTORY);
	if (dir_fd >= 0) {
		::fsync(dir_fd);
		::close(dir_fd);
	}
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
	AtomicFile file(path);
	file.write(bytes);
	file.commit();
}

// --- AppendFile ------------------------------------------------------------------

AppendFile::~AppendFile() {
	if (m_fd >= 0) ::close(m_fd);
}

void AppendFile::open(const std::string& path, bool truncate) {
	if (m_fd >= 0) close();
	m_path = path;
	m_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0666);
	if (m_fd < 0) NERF_FAIL(path << ": cannot open for writing (" << std::strerror(errno) << ")");
}

void AppendFile::append(const std::string& text) {
	NERF_CHECK(m_fd >= 0);
	int err = 0;
	if (injection().name_matches(m_path)) err = ENOSPC;
	else if (!write_all(m_fd, text.data(), text.size())) err = errno;
	if (err != 0) NERF_FAIL(m_path << ": writing failed (" << std::strerror(err) << ")");
}

void AppendFile::close() {
	if (m_fd < 0) return;
	const int fd = m_fd;
	m_fd = -1;
	if (::close(fd) != 0) NERF_FAIL(m_path << ": close failed (" << std::strerror(errno) << ")");
}

// --- leftovers -------------------------------------------------------------------

size_t remove_stale_temporaries(const std::string& dir) {
	std::error_code ec;
	if (!fs::is_directory(dir, ec)) return 0;
	size_t removed = 0;
	for (const auto& entry : fs::directory_iterator(dir, ec)) {
		const std::string name = entry.path().filename().string();
		const size_t marker = name.rfind(kTmpMarker);
		if (marker == std::string::npos || !entry.is_regular_file(ec)) continue;
		// Only names exactly as a writer makes them, since the folder also holds the user's files:
		// "<name>.tmp.<pid>.XXXXXX" (mkstemp's six letters and digits), and the "<name>.safetensors.tmp.XXXXXX"
		// of older nerfcore, whose writer is gone too (other old leftovers are small, and a user's name can look
		// like one).
		const std::string prefix = name.substr(0, marker);
		const std::string rest = name.substr(marker + std::strlen(kTmpMarker));
		auto is_mkstemp_suffix = [](const std::string& s) {
			return s.size() == 6 && std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum((unsigned char)c); });
		};
		const size_t dot = rest.find('.');
		if (dot != std::string::npos && dot > 0 && rest.find_first_not_of("0123456789") == dot) {
			if (!is_mkstemp_suffix(rest.substr(dot + 1))) continue;
			const long pid = std::strtol(rest.c_str(), nullptr, 10);
			if (pid > 0 && (::kill((pid_t)pid, 0) == 0 || errno == EPERM)) continue;  // its writer still runs
		} else {
			const std::string old_suffix = ".safetensors";
			const bool old_form = prefix.size() > old_suffix.size() &&
			                      prefix.compare(prefix.size() - old_suffix.size(), old_suffix.size(), old_suffix) == 0;
			if (!old_form || !is_mkstemp_suffix(rest)) continue;  // not one of ours
		}
		if (fs::remove(entry.path(), ec)) ++removed;
	}
	return removed;
}

void set_write_failure_for_testing(int nth_file) { injection().nth_file.store(nth_file); }

void set_write_failure_for_testing(const std::string& file_name) {
	std::lock_guard<std::mutex> lock(injection().mutex);
	injection().file_name = file_name;
}

} // namespace nerf
