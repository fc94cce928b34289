/// @file output_file.h
/// @brief Output files that lose nothing: a whole file appears at once or not at all (a temporary file
/// in the same folder, fsync'ed, renamed over the target, the folder fsync'ed), an appended log is
/// checked on every write, and any failure (a full disk, an unwritable folder) is a nerf::Error naming
/// the file and the system's reason. Every file nerfcore writes goes through here, with the mode
/// any program's new file gets: 0666 less the process's umask.
#pragma once

#include <cstddef>
#include <string>

namespace nerf {

/// A file written in pieces that appears at `path` only on commit(). Until then the data goes to
/// "<path>.tmp.<pid>.XXXXXX" in the same folder; a destructor without commit() removes it, so an
/// exception half way leaves any earlier file at `path` as it was.
class AtomicFile {
public:
	explicit AtomicFile(std::string path);
	~AtomicFile();
	AtomicFile(const AtomicFile&) = delete;
	AtomicFile& operator=(const AtomicFile&) = delete;

	void write(const void* data, size_t bytes);
	void write(const std::string& text) { write(text.data(), text.size()); }
	/// Flushes to disk, closes and renames over the target; throws (and removes the temporary) on failure.
	void commit();

	/// Where the data goes until commit(), for a writer that opens the file by name (ffmpeg).
	const std::string& temporary_path() const { return m_tmp_path; }

private:
	[[noreturn]] void fail(const char* what, int err);

	std::string m_path, m_tmp_path;
	int m_fd = -1;
	bool m_inject_failure = false;
};

/// The whole file at once (AtomicFile).
void write_file_atomic(const std::string& path, const std::string& bytes);

/// A log that grows line by line (metrics.jsonl). Every append is written through to the file and
/// checked, so a full disk stops the run at the line that did not fit.
class AppendFile {
public:
	AppendFile() = default;
	~AppendFile();
	AppendFile(const AppendFile&) = delete;
	AppendFile& operator=(const AppendFile&) = delete;

	/// Opens `path` for appending, emptying it first when `truncate`.
	void open(const std::string& path, bool truncate);
	void append(const std::string& text);
	/// Closes and reports a failure of the close itself (a deferred write error).
	void close();

private:
	std::string m_path;
	int m_fd = -1;
};

/// Removes the temporary files of AtomicFile in `dir` whose writing process no longer exists (a run
/// killed while saving). Returns how many were removed. Files of a live process are left alone.
size_t remove_stale_temporaries(const std::string& dir);

/// Test hook, to prove that a failed write loses nothing: the n-th AtomicFile from now (1 = the next
/// one) fails on commit as a full disk would (ENOSPC). 0 disables. The environment variable
/// NERF_TEST_FAIL_WRITE=n sets it at start-up, so that a test can inject the failure into a tool.
void set_write_failure_for_testing(int nth_file);
/// As above, for every write (AtomicFile or AppendFile) of a file with this name (the last path
/// component), e.g. "summary.json"; "" disables. NERF_TEST_FAIL_WRITE=<name> sets it at start-up.
void set_write_failure_for_testing(const std::string& file_name);

} // namespace nerf
