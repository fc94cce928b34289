/// @file image.h
/// @brief Image files: JPEG in (libjpeg-turbo), PNG and the other stb formats in (stb_image), PNG out
/// (stb_image_write) and EXR out (tinyexr), written atomically (nerf/io/output_file.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nerf {

struct Image {
	int width = 0, height = 0, channels = 0;  ///< channels: 1, 3 or 4
	std::vector<float> pixels;                ///< [height, width, channels], values in [0,1]
};

/// The default of Config::max_image_pixels: 2^28 = 16384 x 16384.
constexpr uint64_t kDefaultMaxImagePixels = 1ull << 28;

/// Reads a PNG or JPEG (8 or 16 bit; also what else stb_image reads) as floats in [0,1]. Throws
/// nerf::Error naming the file when it cannot be decoded, and before allocating anything when it
/// declares more than max_pixels pixels or more than its size can hold under any encoder.
Image load_image(const std::string& path, uint64_t max_pixels = kDefaultMaxImagePixels);

struct ImageSize {
	int width = 0, height = 0;
};

/// The size load_image would return, from the file's header alone (nothing is decoded). Throws as
/// load_image does, naming the file, when the header cannot be read or declares too many pixels.
ImageSize image_size(const std::string& path, uint64_t max_pixels = kDefaultMaxImagePixels);

/// Writes 8-bit PNG (values clamped to [0,1], rounded), atomically. Throws on failure.
void save_png(const std::string& path, const float* pixels, int width, int height, int channels);
/// Writes a single-channel float EXR, atomically. Throws on failure.
void save_exr(const std::string& path, const float* values, int width, int height);

} // namespace nerf
