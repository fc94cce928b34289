/// @file export.h
/// @brief A trained field in the forms other programs read: its density sampled on a grid, a coloured
/// mesh of one density level, a coloured point cloud from the training views' depths. What nerf_export
/// runs, callable from a renderer that links libnerfcore.
#pragma once

#include "nerf/dataset.h"
#include "nerf/geometry/marching_cubes.h"
#include "nerf/geometry/mesh.h"
#include "nerf/query.h"

#include <array>
#include <cstdint>
#include <string>

namespace nerf {

constexpr int kMinExportResolution = 16;
/// 1024^3 samples are 4 GiB of float32 density: the most one host grid here holds comfortably.
constexpr int kMaxExportResolution = 1024;

/// The density level a mesh is cut at when none is given, per field type: 10 for the reference's
/// ReLU(sigma), 2.5 for the hash grid's exp density (instant-ngp's --save_mesh default). bmild's
/// extract_mesh used 50 for lego after 200k steps, where a surface's density rises by hundreds within one
/// cell, so that 10 and 50 cut it a fraction of a cell apart; the built-in scene's main job (3000 steps)
/// is softer: at 50 its sphere and much of its floor are missing, at 10 and 20 they are whole.
float default_mesh_threshold(const std::string& field_type);

/// "xmin,ymin,zmin,xmax,ymax,zmax" as a box. Throws nerf::Error starting with `what` unless there are six
/// finite numbers with max > min on every axis (a box of zero volume is an error).
GridBox parse_export_box(const std::string& text, const std::string& what = "--box");

/// The density at resolution^3 points spanning `box` (ScalarGrid: cell corners, x fastest; the box's
/// corners are samples). Throws nerf::Error for a resolution outside [kMinExportResolution,
/// kMaxExportResolution] or an empty box. `progress` sees the fraction of points evaluated.
ScalarGrid sample_density_grid(FieldQuery& field, const GridBox& box, int resolution, const ProgressFn& progress = {});

struct MeshExportOptions {
	float threshold = 0.0f;          ///< the density level of the surface (inside: density > threshold)
	bool largest_component = false;  ///< keep only the component with the most triangles (drops floaters)
	ProgressFn progress;             ///< the marching's progress
	/// The training cameras' centres (world units), when known: a vertex is then seen from the one most in
	/// front of its surface (the smallest angle between the normal and the direction to the camera), along
	/// that camera's ray. Empty: seen along the inward normal, a direction no camera may have looked from.
	std::vector<std::array<float, 3>> camera_centres;
};

/// Marching cubes over `grid` at options.threshold, then:
/// - normals from the field's density gradient (central differences with half a cell's step), pointing
///   out of the surface (where density falls);
/// - vertex colours: the field's colour at the vertex seen along the inward normal, i.e. by a camera in
///   front of the surface looking at it, as 8-bit values of the field's [0, 1] colour.
/// Throws nerf::Error when no sample of the grid is above the threshold, or none below it (the mesh
/// would be empty), giving the grid's density range.
Mesh extract_mesh(FieldQuery& field, const ScalarGrid& grid, const MeshExportOptions& options);

struct PointCloudOptions {
	size_t n_points = 1000000;  ///< rays rendered (training-view pixels, drawn without replacement; all when fewer)
	float min_acc = 0.5f;       ///< a ray gives a point when its accumulated opacity exceeds this
	uint64_t seed = 0;          ///< which pixels are drawn
	int chunk = 0;              ///< rays rendered at a time (0: the run's chunk)
	ProgressFn progress;
};

/// nerfstudio's point-cloud export: renders up to n_points rays of the dataset's training views and
/// keeps, for every ray whose opacity is above min_acc, the point at its expected depth along the ray
/// (origin + depth x direction) with the ray's rendered colour. Points lie in the field's frame (NDC
/// for forward-facing LLFF). Throws nerf::Error when the dataset has no training views or no ray is
/// opaque enough.
PointCloud extract_point_cloud(FieldQuery& field, const Dataset& data, const PointCloudOptions& options);

} // namespace nerf
