/// @file volume_io.h
/// @brief Density volumes out: a float32 .npy with its box in a side JSON file, and (in a build with
/// OpenVDB) a .vdb float grid that Blender and Houdini import as a volume.
#pragma once

#include "nerf/geometry/marching_cubes.h"  // ScalarGrid

#include <map>
#include <string>

namespace nerf {

/// The side file of a volume: `path` with its ".npy" replaced by ".json" ("density.npy" -> "density.json"),
/// or ".json" appended when it does not end in ".npy".
std::string volume_json_path(const std::string& npy_path);

/// Writes grid.values as a float32 C-order .npy of shape (nz, ny, nx): arr[k, j, i] is the sample at
/// x index i, y index j, z index k, so x varies fastest (numpy's last axis) and the first index is z.
/// Then the side file (volume_json_path), one JSON object:
///
///     {"format": "nerfcore density volume", "version": 1, "array": "<npy file name>",
///      "dtype": "float32", "shape": [nz, ny, nx], "axes": ["z", "y", "x"],
///      "box_min": [x, y, z], "box_max": [x, y, z], "spacing": [hx, hy, hz],
///      "sample_points": "cell corners: index 0 at box_min, n - 1 at box_max",
///      ...metadata}
///
/// so the world point of arr[k, j, i] is box_min + (i, j, k) * spacing. `metadata` adds string fields
/// (e.g. "quantity": what the values are and their units); it may not replace the fields above. Each file
/// is written atomically, the .npy first. Throws nerf::Error naming the path on an invalid grid
/// (validate_grid) or a failed write.
void write_density_volume(const std::string& npy_path, const ScalarGrid& grid,
                          const std::map<std::string, std::string>& metadata = {});

/// True when this build has OpenVDB (the CMake option NERF_OPENVDB), i.e. write_vdb works.
bool vdb_available();

/// Writes the grid as an OpenVDB file holding one float grid named `grid_name`, class fog volume, whose
/// index-to-world transform puts voxel (i, j, k) at box.min + (i, j, k) * cell_size() (the ScalarGrid's
/// sample points). Samples equal to 0 are left as the background (0): empty space costs nothing. Written
/// atomically. Throws nerf::Error naming the path on an invalid grid, a failed write, or in a build
/// without OpenVDB ("needs a build with OpenVDB").
void write_vdb(const std::string& path, const ScalarGrid& grid, const std::string& grid_name = "density");

} // namespace nerf
