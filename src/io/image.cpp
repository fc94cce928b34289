// Image I/O: JPEG through libjpeg-turbo, the other formats through Debian's libstb (stb_image),
// PNG out through stb_image_write and EXR out through tinyexr, both written atomically.
//
// JPEG never reaches stb: Debian's stb_image (2.27) writes out of bounds on a Huffman table whose
// counts sum past 256 (fixed upstream in 2.28), and libjpeg-turbo is also several times faster.
// Every decoder first reads the declared size and refuses it when it exceeds max_pixels, or when the
// file is too small to hold that many pixels under any encoder, before allocating anything.
#include "nerf/io/image.h"

#include "nerf/common.h"
#include "nerf/io/output_file.h"

#include <stb_image.h>
#include <stb_image_write.h>
#include <tinyexr.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

#include <jpeglib.h>
#include <jerror.h>

namespace nerf {
namespace {

std::vector<unsigned char> read_file(const std::string& path) {
	std::ifstream in(path, std::ios::binary);
	if (!in) NERF_FAIL(path << ": cannot open image (" << std::strerror(errno) << ")");
	std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	if (in.bad()) NERF_FAIL(path << ": cannot read image");
	return bytes;
}

void check_declared_size(const std::string& path, const char* format, uint64_t width, uint64_t height,
                         uint64_t max_pixels, uint64_t max_pixels_per_byte, size_t file_bytes) {
	const uint64_t pixels = width * height;
	if (width == 0 || height == 0) NERF_FAIL(path << ": the " << format << " declares an empty " << width << "x" << height << " image");
	if (pixels > max_pixels)
		NERF_FAIL(path << ": the " << format << " declares " << width << "x" << height << " = " << pixels
		               << " pixels, more than max_image_pixels = " << max_pixels
		               << " (raise --max_image_pixels if the image is real)");
	if (max_pixels_per_byte > 0 && pixels / max_pixels_per_byte > file_bytes)
		NERF_FAIL(path << ": the " << format << " declares " << width << "x" << height << " pixels, which no encoder fits in "
		               << file_bytes << " bytes: the file is corrupt");
}

// --- JPEG (libjpeg-turbo) ---------------------------------------------------------

// A progressive JPEG may have any number of scans, each a pass over the whole image; real encoders
// write about 10. Far more is a file built to burn CPU time.
constexpr int kMaxJpegScans = 1000;

struct JpegErrors {
	jpeg_error_mgr manager;  // first, so that libjpeg's pointer to it is a pointer to this
	jpeg_progress_mgr progress;
	std::jmp_buf jump;
	char message[JMSG_LENGTH_MAX + 64];
};

[[noreturn]] void jpeg_fail(j_common_ptr cinfo) {
	JpegErrors* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
	(*cinfo->err->format_message)(cinfo, errors->message);
	std::longjmp(errors->jump, 1);
}

// Warnings are recoverable for libjpeg, which fills missing data with grey. Data that ends early is
// a truncated file, not an image: an error. Other warnings (stray bytes between markers) are harmless.
void jpeg_message(j_common_ptr cinfo, int level) {
	if (level < 0 && (cinfo->err->msg_code == JWRN_JPEG_EOF || cinfo->err->msg_code == JWRN_HIT_MARKER)) jpeg_fail(cinfo);
}

void jpeg_progress(j_common_ptr cinfo) {
	const j_decompress_ptr d = reinterpret_cast<j_decompress_ptr>(cinfo);
	if (d->input_scan_number > kMaxJpegScans) {
		std::snprintf(reinterpret_cast<JpegErrors*>(cinfo->err)->message, JMSG_LENGTH_MAX, "more than %d scans", kMaxJpegScans);
		std::longjmp(reinterpret_cast<JpegErrors*>(cinfo->err)->jump, 1);
	}
}

struct JpegLimits {
	uint64_t max_pixels;
	size_t file_bytes;
	const char* path;
};

// Everything between setjmp and libjpeg's longjmp lives in the caller's frame or in C structs, so a
// longjmp skips no destructor and leaves no local of this function indeterminate that is used after.
// Returns false with errors->message set when libjpeg failed.
// The source is `data` (limits->file_bytes long) or, when data is null, `file`. A null `pixels` stops
// after the header: width and height are then the declared size and channels is left alone.
bool run_jpeg_decoder(jpeg_decompress_struct* cinfo, JpegErrors* errors, const unsigned char* data, std::FILE* file,
                      const JpegLimits* limits, std::vector<unsigned char>* pixels, int* width, int* height, int* channels) {
	if (setjmp(errors->jump)) return false;
	jpeg_create_decompress(cinfo);
	cinfo->progress = &errors->progress;
	if (data) jpeg_mem_src(cinfo, data, (unsigned long)limits->file_bytes);
	else jpeg_stdio_src(cinfo, file);
	jpeg_read_header(cinfo, TRUE);
	// With Huffman coding every 8x8 block of a scanned component costs at least one bit; a component
	// subsampled by (h, v) has a block per 64 h v pixels. Arithmetic coding has no such floor.
	const uint64_t per_byte = cinfo->arith_code ? 0 : 8ull * 64 * cinfo->max_h_samp_factor * cinfo->max_v_samp_factor;
	check_declared_size(limits->path, "JPEG", cinfo->image_width, cinfo->image_height, limits->max_pixels, per_byte,
	                    limits->file_bytes);
	if (!pixels) {
		*width = (int)cinfo->image_width;
		*height = (int)cinfo->image_height;
		return true;
	}
	const bool grey = cinfo->jpeg_color_space == JCS_GRAYSCALE;
	const bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
	cinfo->out_color_space = grey ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
	jpeg_start_decompress(cinfo);
	const size_t row_bytes = (size_t)cinfo->output_width * cinfo->output_components;
	pixels->resize(row_bytes * cinfo->output_height);
	while (cinfo->output_scanline < cinfo->output_height) {
		JSAMPROW row = pixels->data() + (size_t)cinfo->output_scanline * row_bytes;
		jpeg_read_scanlines(cinfo, &row, 1);
	}
	jpeg_finish_decompress(cinfo);
	*width = (int)cinfo->output_width;
	*height = (int)cinfo->output_height;
	*channels = cinfo->output_components;
	return true;
}

// Runs run_jpeg_decoder with this file's error handling; throws naming the file when libjpeg fails.
void run_jpeg(const std::string& path, const unsigned char* data, std::FILE* file, size_t file_bytes, uint64_t max_pixels,
              std::vector<unsigned char>* pixels, int* width, int* height, int* channels) {
	jpeg_decompress_struct cinfo;
	std::memset(&cinfo, 0, sizeof(cinfo));
	JpegErrors errors;
	std::memset(&errors, 0, sizeof(errors));
	cinfo.err = jpeg_std_error(&errors.manager);
	errors.manager.error_exit = jpeg_fail;
	errors.manager.emit_message = jpeg_message;
	errors.progress.progress_monitor = jpeg_progress;
	const JpegLimits limits{max_pixels, file_bytes, path.c_str()};
	bool ok = false;
	try {
		ok = run_jpeg_decoder(&cinfo, &errors, data, file, &limits, pixels, width, height, channels);
	} catch (...) {
		jpeg_destroy_decompress(&cinfo);
		throw;
	}
	jpeg_destroy_decompress(&cinfo);
	if (!ok) NERF_FAIL(path << ": cannot decode JPEG (" << errors.message << ")");
}

Image decode_jpeg(const std::string& path, const std::vector<unsigned char>& bytes, uint64_t max_pixels) {
	std::vector<unsigned char> pixels;
	int width = 0, height = 0, channels = 0;
	run_jpeg(path, bytes.data(), nullptr, bytes.size(), max_pixels, &pixels, &width, &height, &channels);

	Image image;
	image.width = width;
	image.height = height;
	const size_t n_pixels = (size_t)width * height;
	if (channels == 4) {
		// CMYK as Adobe stores it (inverted): R = C K / 255, and so on, as stb_image converts it.
		image.channels = 3;
		image.pixels.resize(3 * n_pixels);
		for (size_t p = 0; p < n_pixels; ++p) {
			const float k = pixels[4 * p + 3] / 255.0f;
			for (int c = 0; c < 3; ++c) image.pixels[3 * p + c] = pixels[4 * p + c] / 255.0f * k;
		}
	} else {
		image.channels = channels;
		image.pixels.resize(pixels.size());
		for (size_t i = 0; i < pixels.size(); ++i) image.pixels[i] = pixels[i] / 255.0f;
	}
	return image;
}

// --- everything else (stb_image) ---------------------------------------------------

// No format stb reads expands further than deflate's 1032:1 (PNG), and a 1-bit PNG packs 8 pixels
// into a byte: 8256 pixels per byte of file at most. The RLE formats (TGA, BMP, PSD, HDR) stay below
// 130, GIF's LZW below 2731.
constexpr uint64_t kStbMaxPixelsPerByte = 16384;

Image decode_with_stb(const std::string& path, const std::vector<unsigned char>& bytes, uint64_t max_pixels) {
	if (bytes.size() > (size_t)INT_MAX) NERF_FAIL(path << ": image file is larger than 2 GB");
	const int size = (int)bytes.size();
	int w = 0, h = 0, c = 0;
	if (!stbi_info_from_memory(bytes.data(), size, &w, &h, &c))
		NERF_FAIL(path << ": cannot decode image (" << stbi_failure_reason() << ")");
	check_declared_size(path, "image", (uint64_t)std::max(w, 0), (uint64_t)std::max(h, 0), max_pixels, kStbMaxPixelsPerByte,
	                    bytes.size());
	Image image;
	if (stbi_is_16_bit_from_memory(bytes.data(), size)) {
		stbi_us* data = stbi_load_16_from_memory(bytes.data(), size, &w, &h, &c, 0);
		if (!data) NERF_FAIL(path << ": cannot decode image (" << stbi_failure_reason() << ")");
		image.pixels.resize((size_t)w * h * c);
		for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = data[i] / 65535.0f;
		stbi_image_free(data);
	} else {
		stbi_uc* data = stbi_load_from_memory(bytes.data(), size, &w, &h, &c, 0);
		if (!data) NERF_FAIL(path << ": cannot decode image (" << stbi_failure_reason() << ")");
		image.pixels.resize((size_t)w * h * c);
		for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = data[i] / 255.0f;
		stbi_image_free(data);
	}
	image.width = w;
	image.height = h;
	image.channels = c;
	return image;
}

// Closes the FILE of image_size on every path out, exceptions included.
struct FileCloser {
	void operator()(std::FILE* f) const { std::fclose(f); }
};

void append_to_string(void* context, void* data, int size) {
	static_cast<std::string*>(context)->append(static_cast<const char*>(data), (size_t)size);
}

// The SOI marker FF D8; stb_image identifies a JPEG by the same two bytes.
bool is_jpeg(const unsigned char* bytes, size_t size) { return size >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8; }

} // namespace

ImageSize image_size(const std::string& path, uint64_t max_pixels) {
	// Through a FILE, so that the decoders read the header and no more of the file.
	const std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
	if (!file) NERF_FAIL(path << ": cannot open image (" << std::strerror(errno) << ")");
	std::error_code ec;
	const uintmax_t file_bytes = std::filesystem::file_size(path, ec);
	if (ec) NERF_FAIL(path << ": cannot read image (" << ec.message() << ")");
	unsigned char magic[2] = {0, 0};
	const size_t got = std::fread(magic, 1, 2, file.get());
	std::rewind(file.get());
	ImageSize size;
	if (is_jpeg(magic, got)) {
		run_jpeg(path, nullptr, file.get(), (size_t)file_bytes, max_pixels, nullptr, &size.width, &size.height, nullptr);
		return size;
	}
	if (file_bytes > (uintmax_t)INT_MAX) NERF_FAIL(path << ": image file is larger than 2 GB");
	int c = 0;
	if (!stbi_info_from_file(file.get(), &size.width, &size.height, &c))
		NERF_FAIL(path << ": cannot decode image (" << stbi_failure_reason() << ")");
	check_declared_size(path, "image", (uint64_t)std::max(size.width, 0), (uint64_t)std::max(size.height, 0), max_pixels,
	                    kStbMaxPixelsPerByte, (size_t)file_bytes);
	return size;
}

Image load_image(const std::string& path, uint64_t max_pixels) {
	const std::vector<unsigned char> bytes = read_file(path);
	Image image = is_jpeg(bytes.data(), bytes.size()) ? decode_jpeg(path, bytes, max_pixels) : decode_with_stb(path, bytes, max_pixels);
	if (image.channels == 2) {  // grey + alpha: expand to RGBA so callers see 1, 3 or 4 channels
		const size_t n = (size_t)image.width * image.height;
		std::vector<float> rgba(n * 4);
		for (size_t p = 0; p < n; ++p) {
			rgba[4 * p + 0] = rgba[4 * p + 1] = rgba[4 * p + 2] = image.pixels[2 * p];
			rgba[4 * p + 3] = image.pixels[2 * p + 1];
		}
		image.pixels.swap(rgba);
		image.channels = 4;
	}
	return image;
}

void save_png(const std::string& path, const float* pixels, int width, int height, int channels) {
	std::vector<unsigned char> bytes((size_t)width * height * channels);
	for (size_t i = 0; i < bytes.size(); ++i) {
		const float v = std::min(1.0f, std::max(0.0f, pixels[i]));
		bytes[i] = (unsigned char)std::lround(v * 255.0f);
	}
	std::string png;
	if (!stbi_write_png_to_func(append_to_string, &png, width, height, channels, bytes.data(), width * channels))
		NERF_FAIL(path << ": cannot encode PNG");
	write_file_atomic(path, png);
}

void save_exr(const std::string& path, const float* values, int width, int height) {
	// tinyexr's SaveEXR writes to the file without checking fclose; encode in memory instead.
	EXRHeader header;
	InitEXRHeader(&header);
	EXRImage image;
	InitEXRImage(&image);
	// EXRImage's planes are non-const, but SaveEXRImageToMemory only reads them.
	float* channel_planes[1] = {const_cast<float*>(values)};
	image.num_channels = 1;
	image.images = reinterpret_cast<unsigned char**>(channel_planes);
	image.width = width;
	image.height = height;
	EXRChannelInfo channel{};
	std::strcpy(channel.name, "A");  // the name SaveEXR gives a single channel
	int pixel_type = TINYEXR_PIXELTYPE_FLOAT, requested_type = TINYEXR_PIXELTYPE_FLOAT;
	header.num_channels = 1;
	header.channels = &channel;
	header.pixel_types = &pixel_type;
	header.requested_pixel_types = &requested_type;
	// As SaveEXR: uncompressed when tiny, ZIP otherwise.
	header.compression_type = (width < 16 && height < 16) ? TINYEXR_COMPRESSIONTYPE_NONE : TINYEXR_COMPRESSIONTYPE_ZIP;
	unsigned char* memory = nullptr;
	const char* err = nullptr;
	const size_t size = SaveEXRImageToMemory(&image, &header, &memory, &err);
	if (size == 0 || !memory) {
		const std::string msg = err ? err : "unknown error";
		if (err) FreeEXRErrorMessage(err);
		std::free(memory);
		NERF_FAIL(path << ": cannot encode EXR (" << msg << ")");
	}
	const std::string bytes(reinterpret_cast<const char*>(memory), size);
	std::free(memory);
	write_file_atomic(path, bytes);
}

} // namespace nerf
