/// @file mesh_io.h
/// @brief Meshes and point clouds out, as other programs read them (MeshLab, Blender, Open3D): PLY
/// (binary little-endian) and Wavefront OBJ, written atomically (nerf/io/output_file.h).
#pragma once

#include "nerf/geometry/mesh.h"

#include <string>

namespace nerf {

/// Binary little-endian PLY (format 1.0, the ASCII header as the PLY specification lays it out):
///
///     ply
///     format binary_little_endian 1.0
///     comment written by nerfcore
///     element vertex V
///     property float x              (also y, z)
///     property float nx             (also ny, nz: only when the mesh has normals)
///     property uchar red            (also green, blue: only when the mesh has colours)
///     element face F
///     property list uchar int vertex_indices
///     end_header
///
/// then V vertex records (the properties in that order) and F face records (the count 3 as one byte,
/// then three 32-bit signed indices). Throws nerf::Error naming the path when the mesh is malformed
/// (validate_mesh), has more vertices than int indices hold, or the file cannot be written; an
/// earlier file at `path` is then left as it was.
void write_ply(const std::string& path, const Mesh& mesh);

/// Wavefront OBJ: `v x y z` (with ` r g b` as floats in [0, 1] when the mesh has colours, the extension
/// MeshLab and Blender read), `vn nx ny nz` when it has normals, and one `f a//a b//b c//c` per triangle
/// (1-based; `f a b c` without normals). Numbers in the shortest form that reads back to the same float.
/// Throws as write_ply does.
void write_obj(const std::string& path, const Mesh& mesh);

/// write_ply or write_obj by the path's extension (.ply or .obj, any case); any other extension throws.
void write_mesh(const std::string& path, const Mesh& mesh);

/// A point cloud as binary little-endian PLY: the vertex element of write_ply (normals and colours
/// when present) and no face element.
void write_point_cloud_ply(const std::string& path, const PointCloud& points);

} // namespace nerf
