// .npy reading and writing. The format: magic "\x93NUMPY", version bytes, a little-endian header
// length (2 bytes in 1.x, 4 bytes in 2.x/3.x), then a Python dict literal such as
// "{'descr': '<f8', 'fortran_order': False, 'shape': (20, 17), }" padded with spaces and '\n'.
#include "nerf/io/npy.h"

#include "nerf/common.h"
#include "nerf/io/output_file.h"

#include <cctype>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

namespace nerf {

size_t NpyArray::size() const {
	size_t n = 1;
	for (size_t d : shape) n *= d;
	return n;
}

namespace {

// The value text after 'key': in the header dict, up to (not including) the next top-level ',' or '}'.
std::string dict_value(const std::string& header, const std::string& key, const std::string& path) {
	const std::string quoted[2] = {"'" + key + "'", "\"" + key + "\""};
	size_t pos = std::string::npos;
	for (const auto& q : quoted) {
		pos = header.find(q);
		if (pos != std::string::npos) {
			pos += q.size();
			break;
		}
	}
	if (pos == std::string::npos) NERF_FAIL(path << ": .npy header has no '" << key << "' (header: " << header << ")");
	pos = header.find(':', pos);
	if (pos == std::string::npos) NERF_FAIL(path << ": malformed .npy header (" << header << ")");
	++pos;
	int depth = 0;
	size_t end = pos;
	for (; end < header.size(); ++end) {
		const char ch = header[end];
		if (ch == '(') ++depth;
		else if (ch == ')') --depth;
		else if ((ch == ',' || ch == '}') && depth == 0) break;
	}
	std::string value = header.substr(pos, end - pos);
	const size_t first = value.find_first_not_of(" \t");
	const size_t last = value.find_last_not_of(" \t");
	return first == std::string::npos ? std::string() : value.substr(first, last - first + 1);
}

} // namespace

NpyArray load_npy(const std::string& path) {
	std::ifstream in(path, std::ios::binary);
	if (!in) NERF_FAIL(path << ": cannot open .npy file");
	char magic[8];
	if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
		NERF_FAIL(path << ": not a .npy file (bad magic)");
	const int major = (unsigned char)magic[6];
	uint32_t header_len = 0;
	if (major == 1) {
		unsigned char b[2];
		if (!in.read((char*)b, 2)) NERF_FAIL(path << ": truncated .npy header");
		header_len = b[0] | (b[1] << 8);
	} else if (major == 2 || major == 3) {
		unsigned char b[4];
		if (!in.read((char*)b, 4)) NERF_FAIL(path << ": truncated .npy header");
		header_len = b[0] | (b[1] << 8) | (b[2] << 16) | ((uint32_t)b[3] << 24);
	} else {
		NERF_FAIL(path << ": unsupported .npy format version " << major);
	}
	if (header_len > (1u << 20)) NERF_FAIL(path << ": implausible .npy header length " << header_len);
	std::string header(header_len, '\0');
	if (!in.read(header.data(), header_len)) NERF_FAIL(path << ": truncated .npy header");
	while (!header.empty() && (header.back() == '\n' || header.back() == ' ' || header.back() == '\0')) header.pop_back();

	NpyArray arr;
	std::string descr = dict_value(header, "descr", path);
	if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"')) descr = descr.substr(1, descr.size() - 2);
	arr.dtype = descr;
	if (descr != "<f8" && descr != "<f4")
		NERF_FAIL(path << ": .npy dtype is '" << descr << "'; expected little-endian float64 '<f8' or float32 '<f4'");
	const std::string fortran = dict_value(header, "fortran_order", path);
	if (fortran == "True") NERF_FAIL(path << ": .npy array is in Fortran order; expected C order");
	if (fortran != "False") NERF_FAIL(path << ": .npy fortran_order is '" << fortran << "'");
	const std::string shape_text = dict_value(header, "shape", path);
	if (shape_text.size() < 2 || shape_text.front() != '(' || shape_text.back() != ')')
		NERF_FAIL(path << ": .npy shape '" << shape_text << "' is not a tuple");
	const size_t item_bytes = descr == "<f8" ? 8 : 4;
	// The data's size, checked for overflow dimension by dimension: a header may claim anything.
	uint64_t data_bytes = item_bytes;
	{
		std::string inner = shape_text.substr(1, shape_text.size() - 2);
		std::stringstream ss(inner);
		std::string item;
		while (std::getline(ss, item, ',')) {
			size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
			if (a == std::string::npos) continue;  // trailing comma of a 1-tuple
			item = item.substr(a, b - a + 1);
			uint64_t dim = 0;
			for (char ch : item) {
				if (!std::isdigit((unsigned char)ch)) NERF_FAIL(path << ": .npy shape '" << shape_text << "' is malformed");
				if (dim > (UINT64_MAX - 9) / 10)
					NERF_FAIL(path << ": .npy shape " << shape_text << " has a dimension too large for any file");
				dim = 10 * dim + (uint64_t)(ch - '0');
			}
			if (dim != 0 && data_bytes > UINT64_MAX / dim)
				NERF_FAIL(path << ": .npy shape " << shape_text << " describes more bytes than 64 bits can count");
			data_bytes *= dim;
			arr.shape.push_back((size_t)dim);
		}
	}
	const size_t n = arr.size();
	// Compare with what the file holds before allocating: a 128-byte file must not cost gigabytes.
	const std::streamoff data_start = in.tellg();
	in.seekg(0, std::ios::end);
	const std::streamoff file_end = in.tellg();
	in.seekg(data_start);
	if (data_start < 0 || file_end < data_start || (uint64_t)(file_end - data_start) < data_bytes)
		NERF_FAIL(path << ": .npy data is truncated (expected " << data_bytes << " bytes for shape " << shape_text << ", the file has "
		               << (file_end > data_start ? (uint64_t)(file_end - data_start) : 0) << ")");
	std::vector<char> raw(data_bytes);
	if (!in.read(raw.data(), (std::streamsize)raw.size()))
		NERF_FAIL(path << ": .npy data is truncated (expected " << raw.size() << " bytes for shape " << shape_text << ")");
	arr.data.resize(n);
	// The file is little-endian; so is every machine nerfcore targets (x86-64, aarch64 Linux).
	if (n == 0) {
		// Nothing to copy (and memcpy from an empty vector's null pointer is undefined).
	} else if (item_bytes == 8) {
		std::memcpy(arr.data.data(), raw.data(), raw.size());
	} else {
		for (size_t i = 0; i < n; ++i) {
			float f;
			std::memcpy(&f, raw.data() + 4 * i, 4);
			arr.data[i] = f;
		}
	}
	return arr;
}

NpyArray load_npy_matrix(const std::string& path, size_t cols) {
	NpyArray arr = load_npy(path);
	if (arr.shape.size() != 2 || arr.shape[1] != cols) {
		std::ostringstream found;
		found << "(";
		for (size_t i = 0; i < arr.shape.size(); ++i) found << (i ? ", " : "") << arr.shape[i];
		found << ")";
		NERF_FAIL(path << ": .npy shape is " << found.str() << "; expected (N, " << cols << ")");
	}
	return arr;
}

namespace {

// The header and data of a C-order little-endian array of `descr` ('<f8', '<f4') with elements of item_bytes.
void write_npy(const std::string& path, const char* descr, const void* data, size_t item_bytes,
               const std::vector<size_t>& shape) {
	std::ostringstream dict;
	dict << "{'descr': '" << descr << "', 'fortran_order': False, 'shape': (";
	size_t n = 1;
	for (size_t i = 0; i < shape.size(); ++i) {
		dict << shape[i] << (shape.size() == 1 || i + 1 < shape.size() ? "," : "") << (i + 1 < shape.size() ? " " : "");
		n *= shape[i];
	}
	dict << "), }";
	std::string header = dict.str();
	// Pad so that magic + version + length + header is a multiple of 64 and ends in '\n', as numpy does.
	const size_t preamble = 10;
	size_t total = preamble + header.size() + 1;
	header.append((64 - total % 64) % 64, ' ');
	header.push_back('\n');
	AtomicFile out(path);
	out.write("\x93NUMPY\x01\x00", 8);
	const uint16_t len = (uint16_t)header.size();
	const unsigned char len_bytes[2] = {(unsigned char)(len & 0xff), (unsigned char)(len >> 8)};
	out.write(len_bytes, 2);
	out.write(header);
	out.write(data, n * item_bytes);
	out.commit();
}

} // namespace

void save_npy(const std::string& path, const double* data, const std::vector<size_t>& shape) {
	write_npy(path, "<f8", data, sizeof(double), shape);
}

void save_npy(const std::string& path, const float* data, const std::vector<size_t>& shape) {
	write_npy(path, "<f4", data, sizeof(float), shape);
}

} // namespace nerf
