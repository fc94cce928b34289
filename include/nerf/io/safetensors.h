/// @file safetensors.h
/// @brief float32 tensors in the safetensors format (as Python's `safetensors` reads and writes it):
/// an 8-byte little-endian header length N, N bytes of JSON
/// `{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end)}, ..., "__metadata__": {str: str}}`,
/// then the raw little-endian tensor bytes, offsets relative to the end of the header.
#pragma once

#include "nerf/io/output_file.h"  // set_write_failure_for_testing

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nerf {

/// A tensor to write; its data is borrowed (host memory, product(shape) floats).
struct TensorRef {
	std::string name;
	std::vector<int64_t> shape;
	const float* data = nullptr;
};

struct Tensor {
	std::vector<int64_t> shape;
	std::vector<float> data;  ///< product(shape) floats, row-major
};

using TensorMetadata = std::map<std::string, std::string>;

struct SafetensorsFile {
	TensorMetadata metadata;              ///< the header's "__metadata__" (empty when absent)
	std::map<std::string, Tensor> tensors;
};

/// Writes the tensors atomically: to a temporary file in the same folder, flushed and fsync'ed,
/// renamed over `path`, then the folder fsync'ed. On any failure (disk full, unwritable folder) the
/// temporary file is removed, an existing file at `path` is left as it was, and nerf::Error names
/// the path and the system's reason. Tensor names must be unique.
void write_safetensors(const std::string& path, const std::vector<TensorRef>& tensors,
                       const TensorMetadata& metadata);

/// Reads every tensor. Throws nerf::Error naming the file when it is missing, truncated, its header
/// is not valid JSON or not a safetensors header, a dtype is not F32, a shape does not match its
/// byte range, or a byte range lies outside the file or overlaps another.
SafetensorsFile read_safetensors(const std::string& path);

/// Reads only the header's "__metadata__" (cheap: the tensor bytes are not read).
TensorMetadata read_safetensors_metadata(const std::string& path);

} // namespace nerf
