#include "loader_util.h"

#include "nerf/common.h"
#include "nerf/data/loaders.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>
#include <sstream>

namespace fs = std::filesystem;

namespace nerf::data {

namespace {

// JSON has no NaN or Infinity, so nlohmann rejects Python's bare words with a parse error at some line.
std::string quote_non_finite_literals(const std::string& text) {
	static const char* const kWords[] = {"-Infinity", "Infinity", "NaN"};
	std::string out;
	out.reserve(text.size());
	bool in_string = false;
	for (size_t i = 0; i < text.size(); ++i) {
		const char c = text[i];
		if (in_string) {
			out += c;
			if (c == '\\' && i + 1 < text.size()) out += text[++i];
			else if (c == '"') in_string = false;
			continue;
		}
		in_string = c == '"';
		bool quoted = false;
		for (const char* word : kWords) {
			const size_t length = std::strlen(word);
			if (!in_string && text.compare(i, length, word) == 0) {
				out += '"' + std::string(word) + '"';
				i += length - 1;
				quoted = true;
				break;
			}
		}
		if (!quoted) out += c;
	}
	return out;
}

} // namespace

nlohmann::json read_json(const std::string& path) {
	std::ifstream in(path, std::ios::binary);
	if (!in) NERF_FAIL(path << ": cannot open JSON file");
	const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	try {
		return nlohmann::json::parse(quote_non_finite_literals(text));
	} catch (const nlohmann::json::exception& e) {
		NERF_FAIL(path << ": malformed JSON (" << e.what() << ")");
	}
}

void require_directory(const std::string& path, const std::string& what) {
	std::error_code ec;
	if (!fs::is_directory(path, ec)) NERF_FAIL(path << ": " << what << " folder does not exist");
}

std::vector<std::string> list_files(const std::string& dir, const std::vector<std::string>& suffixes) {
	require_directory(dir, "image");
	std::vector<std::string> names;
	std::error_code ec;
	fs::directory_iterator it(dir, ec);
	if (ec) NERF_FAIL(dir << ": cannot list folder (" << ec.message() << ")");
	for (; it != fs::directory_iterator(); it.increment(ec)) {
		if (ec) NERF_FAIL(dir << ": cannot list folder (" << ec.message() << ")");
		const std::string name = it->path().filename().string();
		for (const auto& suffix : suffixes) {
			if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
				names.push_back(name);
				break;
			}
		}
	}
	std::sort(names.begin(), names.end());  // byte order, as Python's sorted() on ASCII names
	return names;
}

void check_finite(const double* values, int n, const std::string& source, const std::string& what) {
	for (int i = 0; i < n; ++i)
		if (!std::isfinite(values[i])) NERF_FAIL(source << ": " << what << " has a non-finite value (" << values[i] << ")");
}

std::array<double, 16> read_matrix_json(const nlohmann::json& m, const std::string& source, const std::string& where) {
	if (!m.is_array() || m.size() != 4) NERF_FAIL(source << ": " << where << " is not a 4x4 array");
	std::array<double, 16> values;
	for (int r = 0; r < 4; ++r) {
		if (!m[r].is_array() || m[r].size() != 4) NERF_FAIL(source << ": " << where << " is not a 4x4 array");
		for (int c = 0; c < 4; ++c) {
			const nlohmann::json& v = m[r][c];
			if (v.is_string() && (v == "NaN" || v == "Infinity" || v == "-Infinity"))
				NERF_FAIL(source << ": " << where << " is " << v.get<std::string>() << " at [" << r << "][" << c << "]");
			if (!v.is_number()) NERF_FAIL(source << ": " << where << " has a non-number at [" << r << "][" << c << "]");
			values[4 * r + c] = v.get<double>();
			if (!std::isfinite(values[4 * r + c]))
				NERF_FAIL(source << ": " << where << " is not finite at [" << r << "][" << c << "]");
		}
	}
	return values;
}

// The reference builds transform_matrix with np.array and keeps the 3x4 top; the bottom row is read
// too so that a 3x4 matrix in the file is reported rather than misread.
Pose read_pose_json(const nlohmann::json& m, const std::string& source, int frame_index) {
	const std::array<double, 16> values = read_matrix_json(m, source, "frame " + std::to_string(frame_index) + " transform_matrix");
	Pose pose;
	for (int i = 0; i < 12; ++i) pose[i] = (float)values[i];
	return pose;
}

Pose to_pose(const Eigen::Matrix<double, 3, 4>& m) {
	Pose p;
	for (int r = 0; r < 3; ++r)
		for (int c = 0; c < 4; ++c) p[4 * r + c] = (float)m(r, c);
	return p;
}

void to_rgb(const float* src, int channels, size_t n_pixels, bool white_bkgd, float* rgb, float* alpha_out) {
	for (size_t p = 0; p < n_pixels; ++p, src += channels) {
		const float alpha = channels == 4 ? src[3] : 1.0f;
		if (alpha_out) alpha_out[p] = alpha;
		for (int k = 0; k < 3; ++k) {
			const float v = channels >= 3 ? src[k] : src[0];
			rgb[3 * p + k] = white_bkgd ? v * alpha + (1.0f - alpha) : v;
		}
	}
}

std::vector<float> load_images(const std::vector<std::string>& paths, uint64_t max_pixels, int channels, int& H, int& W,
                               int downsample, int* stored_H_out, int* stored_W_out) {
	const int n = (int)paths.size();
	H = W = 0;
	if (n == 0) return {};
	if (downsample < 1) downsample = 1;
	const Image first = load_image(paths[0], max_pixels);
	const int stored_H = first.height, stored_W = first.width;
	if (stored_H_out) *stored_H_out = stored_H;
	if (stored_W_out) *stored_W_out = stored_W;
	H = stored_H / downsample;
	W = stored_W / downsample;
	if (H <= 0 || W <= 0)
		NERF_FAIL(paths[0] << ": image of " << stored_W << "x" << stored_H << " is too small to downsample by " << downsample);
	const size_t image_floats = (size_t)H * W * channels;
	std::vector<float> out(image_floats * n);
	// An exception may not leave the parallel loop; each image's is kept, and the first in file order
	// is rethrown, so that the message does not depend on the thread timing.
	std::vector<std::exception_ptr> errors(n);

	auto convert = [&](const Image& img, int i) {
		if (img.width != stored_W || img.height != stored_H)
			NERF_FAIL(paths[i] << ": image is " << img.width << "x" << img.height << " but " << paths[0] << " is "
			                   << stored_W << "x" << stored_H << " (all images of a scene must have one size)");
		std::vector<float> converted(downsample > 1 ? (size_t)stored_H * stored_W * channels : 0);
		float* dst = downsample > 1 ? converted.data() : out.data() + image_floats * i;
		const float* src = img.pixels.data();
		const int c = img.channels;
		for (size_t p = 0; p < (size_t)stored_H * stored_W; ++p, src += c, dst += channels) {
			for (int k = 0; k < 3; ++k) dst[k] = c >= 3 ? src[k] : src[0];
			if (channels == 4) dst[3] = c == 4 ? src[3] : 1.0f;
		}
		if (downsample > 1) {
			const auto small = resize_area(converted.data(), stored_H, stored_W, channels, H, W);
			std::copy(small.begin(), small.end(), out.begin() + image_floats * i);
		}
	};
	convert(first, 0);
#pragma omp parallel for schedule(dynamic)
	for (int i = 1; i < n; ++i) {
		try {
			convert(load_image(paths[i], max_pixels), i);
		} catch (...) {
			errors[i] = std::current_exception();
		}
	}
	for (const auto& e : errors)
		if (e) std::rethrow_exception(e);
	return out;
}

std::string join(const std::string& a, const std::string& b) {
	// lexically_normal turns the reference's "./train/r_0" into "train/r_0", so messages show clean paths.
	return (fs::path(a) / fs::path(b)).lexically_normal().string();
}

bool exists(const std::string& path) {
	std::error_code ec;
	return fs::exists(path, ec);
}

std::array<float, 9> default_K(int H, int W, double focal) {
	return {(float)focal, 0.0f, (float)(0.5 * W), 0.0f, (float)focal, (float)(0.5 * H), 0.0f, 0.0f, 1.0f};
}

void set_shared_camera(Dataset& ds) {
	ds.cameras = shared_camera_table(pinhole_camera(ds.H, ds.W, ds.K, ds.ndc), ds.n_images());
}

std::vector<int> iota_range(int begin, int end) {
	std::vector<int> v(std::max(0, end - begin));
	std::iota(v.begin(), v.end(), begin);
	return v;
}

} // namespace nerf::data

namespace nerf {

std::vector<float> resize_area(const float* src, int h, int w, int c, int out_h, int out_w) {
	NERF_CHECK(h > 0 && w > 0 && c > 0 && out_h > 0 && out_w > 0);
	NERF_CHECK(out_h <= h && out_w <= w);  // area averaging only shrinks
	// Per axis, the input span [o*scale, (o+1)*scale) of each output pixel as (index, weight) taps.
	struct Tap { int index; double weight; };
	auto taps_for = [](int in_size, int out_size) {
		std::vector<std::vector<Tap>> taps(out_size);
		const double scale = (double)in_size / out_size;
		for (int o = 0; o < out_size; ++o) {
			const double begin = o * scale, end = std::min((double)in_size, (o + 1) * scale);
			for (int i = (int)std::floor(begin); i < in_size && i < end; ++i) {
				const double overlap = std::min(end, i + 1.0) - std::max(begin, (double)i);
				if (overlap > 1e-12) taps[o].push_back({i, overlap / scale});
			}
		}
		return taps;
	};
	const auto row_taps = taps_for(h, out_h);
	const auto col_taps = taps_for(w, out_w);
	std::vector<float> out((size_t)out_h * out_w * c);
	std::vector<double> acc(c);
	for (int oy = 0; oy < out_h; ++oy) {
		for (int ox = 0; ox < out_w; ++ox) {
			std::fill(acc.begin(), acc.end(), 0.0);
			for (const Tap& ty : row_taps[oy])
				for (const Tap& tx : col_taps[ox]) {
					const float* p = src + ((size_t)ty.index * w + tx.index) * c;
					const double wgt = ty.weight * tx.weight;
					for (int k = 0; k < c; ++k) acc[k] += wgt * p[k];
				}
			float* q = out.data() + ((size_t)oy * out_w + ox) * c;
			for (int k = 0; k < c; ++k) q[k] = (float)acc[k];
		}
	}
	return out;
}

} // namespace nerf
