/// @file mesh.h
/// @brief An indexed triangle mesh (what marching cubes makes and the PLY/OBJ writers take), a point
/// cloud, and the checks and clean-ups applied to meshes: edge-face counts, Euler characteristic,
/// enclosed volume, connected components.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nerf {

/// Vertices are shared: a triangle names its corners by index, so a closed mesh has every edge in
/// exactly two triangles. Faces are counter-clockwise seen from outside (the right-hand rule gives
/// the outward normal).
struct Mesh {
	std::vector<float> positions;   ///< [V, 3]
	std::vector<float> normals;     ///< [V, 3] unit vectors (zero where no direction is defined), or empty
	std::vector<uint8_t> colors;    ///< [V, 3] sRGB 0..255, or empty
	std::vector<uint32_t> triangles;///< [F, 3] vertex indices

	size_t n_vertices() const { return positions.size() / 3; }
	size_t n_triangles() const { return triangles.size() / 3; }
};

/// Points without faces (the point-cloud export).
struct PointCloud {
	std::vector<float> positions;   ///< [N, 3]
	std::vector<float> normals;     ///< [N, 3], or empty
	std::vector<uint8_t> colors;    ///< [N, 3] sRGB 0..255, or empty

	size_t n_points() const { return positions.size() / 3; }
};

/// Throws nerf::Error (prefixed with `what`) unless the arrays agree: positions a multiple of 3,
/// normals and colours empty or one per vertex, triangles a multiple of 3 with every index < V,
/// every position finite.
void validate_mesh(const Mesh& mesh, const char* what = "mesh");
void validate_point_cloud(const PointCloud& points, const char* what = "point cloud");

/// How the mesh's undirected edges are shared by its triangles.
struct EdgeStats {
	size_t edges = 0;              ///< distinct undirected edges
	size_t boundary = 0;           ///< edges in exactly one triangle (a hole or the mesh's rim)
	size_t non_manifold = 0;       ///< edges in three or more triangles
	size_t misoriented = 0;        ///< edges in two triangles that run it the same way (their orientations disagree)
	size_t degenerate_faces = 0;   ///< triangles that name one vertex twice
	/// Closed and consistently oriented: every edge in exactly two triangles, once in each direction.
	bool closed_and_oriented() const { return edges > 0 && boundary == 0 && non_manifold == 0 && misoriented == 0; }
};
EdgeStats edge_stats(const Mesh& mesh);

/// V - E + F over the vertices used by some triangle: 2 for a closed sphere-like surface, 0 for a
/// torus, 2 - 2g in general, summed over the connected components.
long euler_characteristic(const Mesh& mesh);

/// The volume enclosed by a closed mesh, by the divergence theorem: the sum over triangles (a, b, c)
/// of a . (b x c) / 6, accumulated in double. Positive when the faces are oriented outward.
double enclosed_volume(const Mesh& mesh);

/// The triangles' total area, in double.
double surface_area(const Mesh& mesh);

/// The connected components (triangles joined through shared vertices): component id per triangle
/// [F], numbered 0.. in the order of each component's first triangle. Returns the number of components.
size_t connected_components(const Mesh& mesh, std::vector<uint32_t>* component_of_triangle = nullptr);

/// The component with the most triangles (the first of those in triangle order on a tie), with its
/// vertices renumbered in their original order and their normals and colours kept: what
/// nerf_export --largest_component uses to drop floaters. An empty mesh stays empty.
Mesh largest_component(const Mesh& mesh);

/// A picture of a mesh for a person to check it (nerf_export --preview): the triangles rasterised with
/// a depth buffer through a pinhole camera looking down its -z axis (the training cameras' convention:
/// camera-to-world `c2w` 3x4 row-major, focal length and image size in pixels, principal point at the
/// centre), each pixel the interpolated vertex colour (mid grey without colours) times a headlight's
/// Lambert term, on a white background. Returns [height, width, 3] floats in [0, 1].
std::vector<float> render_mesh_preview(const Mesh& mesh, const float* c2w, int width, int height, float focal);

} // namespace nerf
