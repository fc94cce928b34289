/// @file marching_cubes.h
/// @brief Iso-surfaces of a sampled scalar field (a density grid) as a closed, consistently oriented
/// triangle mesh: marching cubes, on the host, independent of any Backend (grid in, mesh out).
#pragma once

#include "nerf/geometry/mesh.h"

#include <array>
#include <cstddef>
#include <functional>
#include <vector>

namespace nerf {

/// An axis-aligned box in world units.
struct GridBox {
	std::array<float, 3> min{{0.f, 0.f, 0.f}};
	std::array<float, 3> max{{1.f, 1.f, 1.f}};
};

/// Scalar samples on a regular grid of nx * ny * nz points. Layout: C order [nz][ny][nx], x fastest:
/// the value at grid index (i, j, k) is values[(k * ny + j) * nx + i]. The samples sit at the cell
/// corners and span the box exactly: index (0, 0, 0) is at box.min, (nx-1, ny-1, nz-1) at box.max,
/// so the point of (i, j, k) is box.min + (i, j, k) * cell_size().
struct ScalarGrid {
	int nx = 0, ny = 0, nz = 0;
	GridBox box;
	std::vector<float> values;  ///< [nz, ny, nx]

	size_t size() const { return (size_t)nx * (size_t)ny * (size_t)nz; }
	size_t index(int i, int j, int k) const { return ((size_t)k * (size_t)ny + (size_t)j) * (size_t)nx + (size_t)i; }
	/// The spacing of the samples along x, y, z: (max - min) / (n - 1).
	std::array<float, 3> cell_size() const;
	/// The world position of grid index (i, j, k).
	std::array<float, 3> point(int i, int j, int k) const;
};

/// Throws nerf::Error (prefixed with `what`) unless the grid is usable: every n >= 2, values of
/// size nx * ny * nz and all finite, a box with max > min (finite) on every axis.
void validate_grid(const ScalarGrid& grid, const char* what = "grid");

/// Exact gradients for the normals: fills gradients [n, 3] with d value / d position at points
/// [n, 3] (world units). Called once with every vertex of the mesh; a caller with a network can
/// split the batch as it likes.
using GradientFn = std::function<void(const float* points, size_t n, float* gradients)>;

/// Progress for a person: the fraction of the work done, in [0, 1], non-decreasing, 1 at the end.
using ProgressFn = std::function<void(double fraction)>;

enum class MeshNormals {
	None,      ///< Mesh::normals left empty
	Grid,      ///< from the grid: central differences at the samples (one-sided at the grid's faces),
	           ///< interpolated linearly along the vertex's grid edge (trilinear at a point on an edge)
	Gradient,  ///< from MarchingCubesOptions::gradient at the vertex positions
};

struct MarchingCubesOptions {
	/// The iso level. A sample is inside when value > iso (density): the surface separates the inside
	/// samples from the rest, and a value exactly at iso counts as outside.
	float iso = 0.f;
	MeshNormals normals = MeshNormals::Grid;
	GradientFn gradient;  ///< required for MeshNormals::Gradient
	ProgressFn progress;  ///< optional; called after each slab of cells (z layer)
};

/// Marching cubes over every cell of the grid.
///
/// - One vertex per grid edge the surface crosses (value > iso at one end only), placed by linear
///   interpolation of the values along that edge; triangles share these vertices, never duplicate them.
/// - Faces are oriented outward: counter-clockwise seen from the outside, where density decreases;
///   normals (when asked for) point the same way, -gradient / |gradient|. Where the gradient vanishes the
///   normal is the mean of the adjacent faces' normals.
/// - Ambiguities are resolved per cube face from the face's four values alone (the asymptotic decider:
///   the two inside corners of an ambiguous face are joined when the bilinear interpolant's saddle value
///   is above iso), so the two cubes sharing a face always cut it the same way. With every cell
///   triangulated from its face cuts, the mesh is closed and consistently oriented wherever the surface
///   does not leave the grid: every edge in exactly two triangles, once in each direction. Where it
///   leaves the grid the mesh has a rim there (the grid's outer faces are not capped).
/// - Deterministic: the same grid gives the same mesh, vertex for vertex.
///
/// Throws nerf::Error on an invalid grid (validate_grid), a non-finite iso, MeshNormals::Gradient without a
/// gradient function, or more vertices than 32-bit indices hold. A grid that nothing crosses gives an
/// empty mesh: the caller decides whether that is an error.
Mesh marching_cubes(const ScalarGrid& grid, const MarchingCubesOptions& options);

} // namespace nerf
