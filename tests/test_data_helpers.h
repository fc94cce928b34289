// Shared by the [data] tests: temp folders, tiny synthetic scenes written with known contents, and
// matrix checks computed here rather than with the loaders' own code.
#pragma once

#include "nerf/common.h"
#include "nerf/dataset.h"
#include "nerf/io/image.h"

#include <catch2/catch.hpp>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace data_test {

namespace fs = std::filesystem;

/// A fresh folder under the system temp dir, removed when it goes out of scope.
struct TempDir {
	fs::path path;
	explicit TempDir(const std::string& tag) {
		static int counter = 0;
		path = fs::temp_directory_path() /
		       ("nerf_test_data_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
		fs::remove_all(path);
		fs::create_directories(path);
	}
	~TempDir() {
		std::error_code ec;
		fs::remove_all(path, ec);
	}
	std::string str() const { return path.string(); }
	std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline void write_text(const std::string& path, const std::string& text) {
	fs::create_directories(fs::path(path).parent_path());
	std::ofstream out(path, std::ios::binary);
	out << text;
	REQUIRE(out.good());
}

/// A pixel value that survives 8-bit storage exactly: k / 255 for a k that depends on everything.
inline float pattern_value(int image, int row, int col, int channel) {
	return (float)((image * 37 + row * 11 + col * 5 + channel * 61) % 256) / 255.0f;
}

/// Writes an [h, w, channels] 8-bit PNG whose pixels are pattern_value(image, ...).
inline void write_pattern_png(const std::string& path, int image, int w, int h, int channels) {
	fs::create_directories(fs::path(path).parent_path());
	std::vector<float> px((size_t)w * h * channels);
	for (int r = 0; r < h; ++r)
		for (int c = 0; c < w; ++c)
			for (int k = 0; k < channels; ++k) px[((size_t)r * w + c) * channels + k] = pattern_value(image, r, c, k);
	nerf::save_png(path, px.data(), w, h, channels);
}

/// R^T R = I and det R = +1 for the rotation part of a 3x4 pose; returns the largest deviation.
inline double orthonormality_error(const nerf::Pose& p) {
	double worst = 0;
	for (int i = 0; i < 3; ++i)
		for (int j = 0; j < 3; ++j) {
			double dot = 0;
			for (int k = 0; k < 3; ++k) dot += (double)p[4 * k + i] * p[4 * k + j];
			worst = std::max(worst, std::abs(dot - (i == j ? 1.0 : 0.0)));
		}
	const double det = p[0] * ((double)p[5] * p[10] - (double)p[6] * p[9]) - p[1] * ((double)p[4] * p[10] - (double)p[6] * p[8]) +
	                   p[2] * ((double)p[4] * p[9] - (double)p[5] * p[8]);
	return std::max(worst, std::abs(det - 1.0));
}

/// Expects `fn` to throw nerf::Error whose message contains every one of `parts`.
template <typename Fn>
void require_error(Fn&& fn, const std::vector<std::string>& parts) {
	try {
		fn();
	} catch (const nerf::Error& e) {
		const std::string what = e.what();
		INFO("error message: " << what);
		for (const auto& part : parts) CHECK(what.find(part) != std::string::npos);
		return;
	}
	FAIL("expected a nerf::Error mentioning " << (parts.empty() ? std::string() : parts[0]));
}

/// The shared scenes folder, or empty (with a WARN) when it is absent.
inline std::string shared_scene(const std::string& relative) {
	const std::string path = std::string(NERF_SHARED_DATA_DIR) + "/" + relative;
	if (!fs::is_directory(path)) {
		WARN("skipping: " << path << " is absent (shared test data not on this machine)");
		return {};
	}
	return path;
}

} // namespace data_test
