// safetensors reader and atomic writer (through AtomicFile: a save is all or nothing).
#include "nerf/io/safetensors.h"

#include "nerf/common.h"
#include "nerf/io/output_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

namespace nerf {
namespace {

// The format is little-endian; so is every machine nerfcore targets (x86-64, aarch64).
bool host_is_little_endian() {
	const uint32_t one = 1;
	unsigned char first;
	std::memcpy(&first, &one, 1);
	return first == 1;
}

// Python's safetensors refuses headers above 100 MB; so do we, which also bounds a corrupt length.
constexpr uint64_t kMaxHeaderBytes = 100u * 1000u * 1000u;

/// The byte size of a float32 tensor of this shape, or false when it does not fit in 64 bits (a
/// corrupt shape such as [2^62] would otherwise wrap around to a small number).
bool tensor_bytes(const std::vector<int64_t>& shape, uint64_t& bytes) {
	uint64_t n = sizeof(float);
	for (int64_t d : shape) {
		if (d < 0) return false;
		if (d != 0 && n > UINT64_MAX / (uint64_t)d) return false;
		n *= (uint64_t)d;
	}
	bytes = n;
	return true;
}

std::string shape_text(const std::vector<int64_t>& shape) {
	std::string s = "[";
	for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
	return s + "]";
}

/// The header JSON padded with spaces to a multiple of 8 bytes, as Python's safetensors writes it,
/// so that the tensor data is 8-byte aligned in the file.
std::string make_header(const std::vector<TensorRef>& tensors, const TensorMetadata& metadata) {
	nlohmann::json header = nlohmann::json::object();
	std::set<std::string> names;
	uint64_t offset = 0;
	for (const TensorRef& t : tensors) {
		NERF_CHECK(!t.name.empty() && t.name != "__metadata__");
		if (!names.insert(t.name).second) NERF_FAIL("safetensors: tensor name " << t.name << " appears twice");
		uint64_t bytes = 0;
		NERF_CHECK(tensor_bytes(t.shape, bytes));
		NERF_CHECK(t.data != nullptr || bytes == 0);
		header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
		offset += bytes;
	}
	if (!metadata.empty()) header["__metadata__"] = metadata;
	std::string text = header.dump();
	text.append((8 - text.size() % 8) % 8, ' ');
	return text;
}

struct Header {
	TensorMetadata metadata;
	struct Entry {
		std::string name;
		std::vector<int64_t> shape;
		uint64_t begin = 0, end = 0;
	};
	std::vector<Entry> entries;
	uint64_t data_start = 0;  ///< file offset of the byte buffer
	uint64_t data_bytes = 0;  ///< size of the byte buffer (file size - data_start)
};

uint64_t file_size_or_fail(std::ifstream& in, const std::string& path) {
	in.seekg(0, std::ios::end);
	const std::streamoff size = in.tellg();
	if (size < 0) NERF_FAIL(path << ": cannot determine the file size");
	in.seekg(0, std::ios::beg);
	return (uint64_t)size;
}

Header read_header(std::ifstream& in, const std::string& path) {
	NERF_CHECK(host_is_little_endian());
	const uint64_t file_size = file_size_or_fail(in, path);
	if (file_size < 8) NERF_FAIL(path << ": not a safetensors file (" << file_size << " bytes, shorter than the 8-byte header length)");
	unsigned char len_bytes[8];
	in.read(reinterpret_cast<char*>(len_bytes), 8);
	if (!in) NERF_FAIL(path << ": cannot read the header length");
	uint64_t header_len = 0;
	for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
	if (header_len > kMaxHeaderBytes || header_len > file_size - 8)
		NERF_FAIL(path << ": corrupt safetensors file: header length " << header_len << " does not fit in the file ("
		               << file_size << " bytes); the file is truncated or not a safetensors file");
	std::string text(header_len, '\0');
	in.read(&text[0], (std::streamsize)header_len);
	if (!in) NERF_FAIL(path << ": cannot read the " << header_len << "-byte header");

	nlohmann::json json;
	try {
		json = nlohmann::json::parse(text);
	} catch (const nlohmann::json::exception& e) {
		NERF_FAIL(path << ": corrupt safetensors header (not valid JSON: " << e.what() << ")");
	}
	if (!json.is_object()) NERF_FAIL(path << ": corrupt safetensors header (not a JSON object)");

	Header header;
	header.data_start = 8 + header_len;
	header.data_bytes = file_size - header.data_start;
	for (auto it = json.begin(); it != json.end(); ++it) {
		const std::string& name = it.key();
		const nlohmann::json& value = it.value();
		if (name == "__metadata__") {
			if (!value.is_object()) NERF_FAIL(path << ": corrupt safetensors header (__metadata__ is not an object)");
			for (auto m = value.begin(); m != value.end(); ++m) {
				if (!m.value().is_string())
					NERF_FAIL(path << ": corrupt safetensors header (__metadata__." << m.key() << " is not a string)");
				header.metadata[m.key()] = m.value().get<std::string>();
			}
			continue;
		}
		const bool well_formed = value.is_object() && value.contains("dtype") && value["dtype"].is_string() &&
		                         value.contains("shape") && value["shape"].is_array() &&
		                         value.contains("data_offsets") && value["data_offsets"].is_array() &&
		                         value["data_offsets"].size() == 2 && value["data_offsets"][0].is_number_unsigned() &&
		                         value["data_offsets"][1].is_number_unsigned();
		if (!well_formed)
			NERF_FAIL(path << ": corrupt safetensors header (tensor " << name
			               << " needs dtype, shape and data_offsets [begin, end])");
		const std::string dtype = value["dtype"].get<std::string>();
		if (dtype != "F32")
			NERF_FAIL(path << ": tensor " << name << " has dtype " << dtype << "; nerfcore reads only F32");
		Header::Entry entry;
		entry.name = name;
		for (const auto& d : value["shape"]) {
			// Unsigned and at most 2^63 - 1: a larger one would turn negative as int64.
			if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t)INT64_MAX)
				NERF_FAIL(path << ": corrupt safetensors header (tensor " << name << " has a bad shape " << value["shape"].dump()
				               << "; dimensions are non-negative integers)");
			entry.shape.push_back(d.get<int64_t>());
		}
		uint64_t bytes = 0;
		if (!tensor_bytes(entry.shape, bytes))
			NERF_FAIL(path << ": corrupt safetensors header: tensor " << name << " has shape " << shape_text(entry.shape)
			               << ", whose size overflows 64 bits");
		entry.begin = value["data_offsets"][0].get<uint64_t>();
		entry.end = value["data_offsets"][1].get<uint64_t>();
		if (entry.begin > entry.end || entry.end > header.data_bytes)
			NERF_FAIL(path << ": corrupt safetensors file: tensor " << name << " has data_offsets [" << entry.begin << ", "
			               << entry.end << ") outside the " << header.data_bytes
			               << "-byte data buffer (the file is truncated or the header is wrong)");
		if (entry.end - entry.begin != bytes)
			NERF_FAIL(path << ": corrupt safetensors header: tensor " << name << " of shape " << shape_text(entry.shape)
			               << " needs " << bytes << " bytes but data_offsets span "
			               << entry.end - entry.begin);
		header.entries.push_back(std::move(entry));
	}
	// Overlapping byte ranges mean a corrupt header (Python's safetensors requires them contiguous).
	std::vector<const Header::Entry*> by_offset;
	for (const auto& e : header.entries) by_offset.push_back(&e);
	std::sort(by_offset.begin(), by_offset.end(), [](auto a, auto b) { return a->begin < b->begin; });
	for (size_t i = 1; i < by_offset.size(); ++i)
		if (by_offset[i]->begin < by_offset[i - 1]->end)
			NERF_FAIL(path << ": corrupt safetensors header: tensors " << by_offset[i - 1]->name << " and "
			               << by_offset[i]->name << " overlap");
	return header;
}

std::ifstream open_for_reading(const std::string& path) {
	std::ifstream in(path, std::ios::binary);
	if (!in) NERF_FAIL(path << ": cannot open (" << std::strerror(errno) << ")");
	return in;
}

} // namespace

void write_safetensors(const std::string& path, const std::vector<TensorRef>& tensors, const TensorMetadata& metadata) {
	NERF_CHECK(host_is_little_endian());
	const std::string header = make_header(tensors, metadata);
	AtomicFile file(path);
	unsigned char len_bytes[8];
	const uint64_t len = header.size();
	for (int i = 0; i < 8; ++i) len_bytes[i] = (unsigned char)((len >> (8 * i)) & 0xff);
	file.write(len_bytes, 8);
	file.write(header);
	for (const TensorRef& t : tensors) {
		uint64_t bytes = 0;
		NERF_CHECK(tensor_bytes(t.shape, bytes));
		file.write(t.data, bytes);
	}
	file.commit();
}

SafetensorsFile read_safetensors(const std::string& path) {
	std::ifstream in = open_for_reading(path);
	Header header = read_header(in, path);
	SafetensorsFile file;
	file.metadata = std::move(header.metadata);
	for (const Header::Entry& e : header.entries) {
		Tensor t;
		t.shape = e.shape;
		t.data.resize((e.end - e.begin) / sizeof(float));
		in.seekg((std::streamoff)(header.data_start + e.begin));
		in.read(reinterpret_cast<char*>(t.data.data()), (std::streamsize)(e.end - e.begin));
		if (!in) NERF_FAIL(path << ": cannot read the data of tensor " << e.name << " (truncated file?)");
		file.tensors.emplace(e.name, std::move(t));
	}
	return file;
}

TensorMetadata read_safetensors_metadata(const std::string& path) {
	std::ifstream in = open_for_reading(path);
	return read_header(in, path).metadata;
}

} // namespace nerf
