/// @file image.h
/// @brief Image files: PNG/JPEG in (stb_image), PNG out (stb_image_write), EXR out (tinyexr).
#pragma once

#include <string>
#include <vector>

namespace nerf {

struct Image {
	int width = 0, height = 0, channels = 0;  ///< channels: 1, 3 or 4
	std::vector<float> pixels;                ///< [height, width, channels], values in [0,1]
};

/// Reads a PNG or JPEG (8 or 16 bit) as floats in [0,1]. Throws nerf::Error naming the file on failure.
Image load_image(const std::string& path);
/// Writes 8-bit PNG (values clamped to [0,1], rounded). Throws on failure.
void save_png(const std::string& path, const float* pixels, int width, int height, int channels);
/// Writes a single-channel float EXR. Throws on failure.
void save_exr(const std::string& path, const float* values, int width, int height);

} // namespace nerf
