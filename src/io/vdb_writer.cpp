// write_vdb through OpenVDB (compiled only when CMake's NERF_OPENVDB finds it; volume_io.cpp has the
// build-without stub). OpenVDB's io::File opens its output by name, so it writes AtomicFile's temporary
// file, which replaces `path` on commit as every other output does.
#include "nerf/common.h"
#include "nerf/io/output_file.h"
#include "nerf/io/volume_io.h"

#include <openvdb/openvdb.h>

#include <mutex>

namespace nerf {

bool vdb_available() { return true; }

void write_vdb(const std::string& path, const ScalarGrid& grid, const std::string& grid_name) {
	validate_grid(grid, path.c_str());
	static std::once_flag initialised;
	std::call_once(initialised, [] { openvdb::initialize(); });

	openvdb::FloatGrid::Ptr vdb = openvdb::FloatGrid::create(0.0f);
	vdb->setName(grid_name);
	// A density, not a level set: Blender and Houdini read a fog volume as a volume to render.
	vdb->setGridClass(openvdb::GRID_FOG_VOLUME);
	// Index (i, j, k) -> world box.min + (i, j, k) * cell size: a scale then a translation. The spacing may
	// differ per axis (a non-cubic box), so a general linear map rather than a uniform voxel size.
	const auto h = grid.cell_size();
	openvdb::math::Mat4d index_to_world = openvdb::math::Mat4d::identity();
	index_to_world.preScale(openvdb::math::Vec3d(h[0], h[1], h[2]));
	index_to_world.postTranslate(openvdb::math::Vec3d(grid.box.min[0], grid.box.min[1], grid.box.min[2]));
	vdb->setTransform(openvdb::math::Transform::createLinearTransform(index_to_world));

	openvdb::FloatGrid::Accessor voxels = vdb->getAccessor();
	for (int k = 0; k < grid.nz; ++k)
		for (int j = 0; j < grid.ny; ++j)
			for (int i = 0; i < grid.nx; ++i) {
				const float v = grid.values[grid.index(i, j, k)];
				if (v != 0.0f) voxels.setValue(openvdb::Coord(i, j, k), v);
			}

	AtomicFile out(path);
	try {
		openvdb::io::File file(out.temporary_path());
		file.write({vdb});
		file.close();
	} catch (const openvdb::Exception& e) {
		NERF_FAIL(path << ": OpenVDB could not write the file (" << e.what() << ")");
	}
	out.commit();
}

} // namespace nerf
