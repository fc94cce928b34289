// Image I/O through Debian's libstb (stb_image, stb_image_write) and tinyexr.
#include "nerf/io/image.h"

#include "nerf/common.h"

#include <stb_image.h>
#include <stb_image_write.h>
#include <tinyexr.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

namespace nerf {

Image load_image(const std::string& path) {
	FILE* file = std::fopen(path.c_str(), "rb");
	if (!file) NERF_FAIL(path << ": cannot open image (" << std::strerror(errno) << ")");
	Image image;
	const bool sixteen_bit = stbi_is_16_bit_from_file(file);
	std::fseek(file, 0, SEEK_SET);
	int w = 0, h = 0, c = 0;
	if (sixteen_bit) {
		stbi_us* data = stbi_load_from_file_16(file, &w, &h, &c, 0);
		std::fclose(file);
		if (!data) NERF_FAIL(path << ": cannot decode image (" << stbi_failure_reason() << ")");
		image.pixels.resize((size_t)w * h * c);
		for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = data[i] / 65535.0f;
		stbi_image_free(data);
	} else {
		stbi_uc* data = stbi_load_from_file(file, &w, &h, &c, 0);
		std::fclose(file);
		if (!data) NERF_FAIL(path << ": cannot decode image (" << stbi_failure_reason() << ")");
		image.pixels.resize((size_t)w * h * c);
		for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = data[i] / 255.0f;
		stbi_image_free(data);
	}
	if (c == 2) {  // grey + alpha: expand to RGBA so callers see 1, 3 or 4 channels
		std::vector<float> rgba((size_t)w * h * 4);
		for (size_t p = 0; p < (size_t)w * h; ++p) {
			rgba[4 * p + 0] = rgba[4 * p + 1] = rgba[4 * p + 2] = image.pixels[2 * p];
			rgba[4 * p + 3] = image.pixels[2 * p + 1];
		}
		image.pixels.swap(rgba);
		c = 4;
	}
	image.width = w;
	image.height = h;
	image.channels = c;
	return image;
}

void save_png(const std::string& path, const float* pixels, int width, int height, int channels) {
	std::vector<unsigned char> bytes((size_t)width * height * channels);
	for (size_t i = 0; i < bytes.size(); ++i) {
		const float v = std::min(1.0f, std::max(0.0f, pixels[i]));
		bytes[i] = (unsigned char)std::lround(v * 255.0f);
	}
	if (!stbi_write_png(path.c_str(), width, height, channels, bytes.data(), width * channels))
		NERF_FAIL(path << ": cannot write PNG");
}

void save_exr(const std::string& path, const float* values, int width, int height) {
	const char* err = nullptr;
	const int rc = SaveEXR(values, width, height, 1, /*save_as_fp16=*/0, path.c_str(), &err);
	if (rc != TINYEXR_SUCCESS) {
		std::string msg = err ? err : "unknown error";
		if (err) FreeEXRErrorMessage(err);
		NERF_FAIL(path << ": cannot write EXR (" << msg << ")");
	}
}

} // namespace nerf
