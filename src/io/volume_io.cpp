// Density volumes as .npy + side JSON. The OpenVDB writer lives in vdb_writer.cpp, compiled only with
// NERF_OPENVDB; without it write_vdb reports what the build lacks.
#include "nerf/io/volume_io.h"

#include "nerf/common.h"
#include "nerf/io/npy.h"
#include "nerf/io/output_file.h"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace nerf {

std::string volume_json_path(const std::string& npy_path) {
	const std::string ext = ".npy";
	if (npy_path.size() > ext.size() && npy_path.compare(npy_path.size() - ext.size(), ext.size(), ext) == 0)
		return npy_path.substr(0, npy_path.size() - ext.size()) + ".json";
	return npy_path + ".json";
}

void write_density_volume(const std::string& npy_path, const ScalarGrid& grid, const std::map<std::string, std::string>& metadata) {
	validate_grid(grid, npy_path.c_str());
	const std::string json_path = volume_json_path(npy_path);
	const auto h = grid.cell_size();
	nlohmann::ordered_json side = {
	    {"format", "nerfcore density volume"},
	    {"version", 1},
	    {"array", std::filesystem::path(npy_path).filename().string()},
	    {"dtype", "float32"},
	    {"shape", {grid.nz, grid.ny, grid.nx}},
	    {"axes", {"z", "y", "x"}},
	    {"box_min", {grid.box.min[0], grid.box.min[1], grid.box.min[2]}},
	    {"box_max", {grid.box.max[0], grid.box.max[1], grid.box.max[2]}},
	    {"spacing", {h[0], h[1], h[2]}},
	    {"sample_points", "cell corners: index 0 at box_min, n - 1 at box_max"},
	};
	for (const auto& [key, value] : metadata) {
		if (side.contains(key)) NERF_FAIL(json_path << ": metadata key '" << key << "' would replace a field of the format");
		side[key] = value;
	}
	save_npy(npy_path, grid.values.data(), {(size_t)grid.nz, (size_t)grid.ny, (size_t)grid.nx});
	write_file_atomic(json_path, side.dump(2) + "\n");
}

#ifndef NERF_WITH_OPENVDB
bool vdb_available() { return false; }

void write_vdb(const std::string& path, const ScalarGrid&, const std::string&) {
	NERF_FAIL(path << ": writing .vdb needs a build with OpenVDB (configure with -DNERF_OPENVDB=ON; Debian: libopenvdb-dev)");
}
#endif

} // namespace nerf
