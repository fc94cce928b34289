/// @file npy.h
/// @brief NumPy .npy files: float64/float32 little-endian C-order arrays in, float64 out.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace nerf {

struct NpyArray {
	std::vector<size_t> shape;
	std::string dtype;          ///< as stored: "<f8" or "<f4"
	std::vector<double> data;   ///< C order, converted to double
	size_t size() const;        ///< product of shape (1 for a 0-d array)
};

/// Reads a .npy file (format versions 1-3) of dtype '<f8' or '<f4' in C order. Anything else (another
/// dtype, Fortran order, a truncated file, a malformed header) throws nerf::Error naming the file and
/// what was found.
NpyArray load_npy(const std::string& path);

/// As load_npy, and also requires a 2-d array with `cols` columns (any number of rows).
NpyArray load_npy_matrix(const std::string& path, size_t cols);

/// Writes a float64 C-order .npy (format 1.0), readable by numpy.load.
void save_npy(const std::string& path, const double* data, const std::vector<size_t>& shape);
/// The same as float32 ('<f4').
void save_npy(const std::string& path, const float* data, const std::vector<size_t>& shape);

} // namespace nerf
