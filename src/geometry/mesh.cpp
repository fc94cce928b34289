// Mesh checks (edge sharing, Euler characteristic, volume, area) and the connected-component clean-up.
#include "nerf/geometry/mesh.h"

#include "nerf/common.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace nerf {

void validate_mesh(const Mesh& mesh, const char* what) {
	if (mesh.positions.size() % 3 != 0)
		NERF_FAIL(what << ": " << mesh.positions.size() << " position values is not a whole number of xyz vertices");
	const size_t n_vertices = mesh.n_vertices();
	if (!mesh.normals.empty() && mesh.normals.size() != mesh.positions.size())
		NERF_FAIL(what << ": " << mesh.normals.size() / 3.0 << " normals for " << n_vertices << " vertices (need one each, or none)");
	if (!mesh.colors.empty() && mesh.colors.size() != mesh.positions.size())
		NERF_FAIL(what << ": " << mesh.colors.size() / 3.0 << " colours for " << n_vertices << " vertices (need one each, or none)");
	if (mesh.triangles.size() % 3 != 0)
		NERF_FAIL(what << ": " << mesh.triangles.size() << " triangle indices is not a whole number of triangles");
	for (size_t i = 0; i < mesh.triangles.size(); ++i)
		if (mesh.triangles[i] >= n_vertices)
			NERF_FAIL(what << ": triangle " << i / 3 << " names vertex " << mesh.triangles[i] << " of " << n_vertices);
	for (size_t i = 0; i < mesh.positions.size(); ++i)
		if (!std::isfinite(mesh.positions[i])) NERF_FAIL(what << ": vertex " << i / 3 << " has a non-finite position");
}

void validate_point_cloud(const PointCloud& points, const char* what) {
	if (points.positions.size() % 3 != 0)
		NERF_FAIL(what << ": " << points.positions.size() << " position values is not a whole number of xyz points");
	if (!points.normals.empty() && points.normals.size() != points.positions.size())
		NERF_FAIL(what << ": " << points.normals.size() / 3.0 << " normals for " << points.n_points() << " points (need one each, or none)");
	if (!points.colors.empty() && points.colors.size() != points.positions.size())
		NERF_FAIL(what << ": " << points.colors.size() / 3.0 << " colours for " << points.n_points() << " points (need one each, or none)");
	for (size_t i = 0; i < points.positions.size(); ++i)
		if (!std::isfinite(points.positions[i])) NERF_FAIL(what << ": point " << i / 3 << " has a non-finite position");
}

EdgeStats edge_stats(const Mesh& mesh) {
	EdgeStats stats;
	// Each directed edge a -> b as its undirected key (min, max) and whether it runs upward (a < b):
	// sorting groups an undirected edge's uses together.
	std::vector<std::pair<uint64_t, uint8_t>> uses;
	uses.reserve(mesh.triangles.size());
	for (size_t t = 0; t + 2 < mesh.triangles.size(); t += 3) {
		const uint32_t v[3] = {mesh.triangles[t], mesh.triangles[t + 1], mesh.triangles[t + 2]};
		if (v[0] == v[1] || v[1] == v[2] || v[0] == v[2]) {
			++stats.degenerate_faces;
			continue;
		}
		for (int e = 0; e < 3; ++e) {
			const uint32_t a = v[e], b = v[(e + 1) % 3];
			const uint64_t lo = std::min(a, b), hi = std::max(a, b);
			uses.emplace_back((lo << 32) | hi, a < b ? 1 : 0);
		}
	}
	std::sort(uses.begin(), uses.end());
	for (size_t i = 0; i < uses.size();) {
		size_t j = i, forward = 0;
		while (j < uses.size() && uses[j].first == uses[i].first) forward += uses[j++].second;
		const size_t count = j - i;
		++stats.edges;
		if (count == 1) ++stats.boundary;
		else if (count > 2) ++stats.non_manifold;
		else if (forward != 1) ++stats.misoriented;
		i = j;
	}
	return stats;
}

long euler_characteristic(const Mesh& mesh) {
	std::vector<char> used(mesh.n_vertices(), 0);
	for (uint32_t v : mesh.triangles) used[v] = 1;
	const long n_vertices = (long)std::count(used.begin(), used.end(), 1);
	return n_vertices - (long)edge_stats(mesh).edges + (long)mesh.n_triangles();
}

double enclosed_volume(const Mesh& mesh) {
	const float* p = mesh.positions.data();
	double six_volume = 0.0;
	for (size_t t = 0; t + 2 < mesh.triangles.size(); t += 3) {
		const float* a = p + 3 * (size_t)mesh.triangles[t];
		const float* b = p + 3 * (size_t)mesh.triangles[t + 1];
		const float* c = p + 3 * (size_t)mesh.triangles[t + 2];
		const double bxc[3] = {(double)b[1] * c[2] - (double)b[2] * c[1], (double)b[2] * c[0] - (double)b[0] * c[2],
		                       (double)b[0] * c[1] - (double)b[1] * c[0]};
		six_volume += a[0] * bxc[0] + a[1] * bxc[1] + a[2] * bxc[2];
	}
	return six_volume / 6.0;
}

double surface_area(const Mesh& mesh) {
	const float* p = mesh.positions.data();
	double twice_area = 0.0;
	for (size_t t = 0; t + 2 < mesh.triangles.size(); t += 3) {
		const float* a = p + 3 * (size_t)mesh.triangles[t];
		const float* b = p + 3 * (size_t)mesh.triangles[t + 1];
		const float* c = p + 3 * (size_t)mesh.triangles[t + 2];
		const double u[3] = {(double)b[0] - a[0], (double)b[1] - a[1], (double)b[2] - a[2]};
		const double w[3] = {(double)c[0] - a[0], (double)c[1] - a[1], (double)c[2] - a[2]};
		const double n[3] = {u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0]};
		twice_area += std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
	}
	return twice_area / 2.0;
}

namespace {

uint32_t find_root(std::vector<uint32_t>& parent, uint32_t v) {
	while (parent[v] != v) {
		parent[v] = parent[parent[v]];  // path halving keeps the trees shallow
		v = parent[v];
	}
	return v;
}

} // namespace

size_t connected_components(const Mesh& mesh, std::vector<uint32_t>* component_of_triangle) {
	const size_t n_triangles = mesh.n_triangles();
	std::vector<uint32_t> parent(mesh.n_vertices());
	std::iota(parent.begin(), parent.end(), 0u);
	for (size_t t = 0; t < n_triangles; ++t)
		for (int e = 1; e < 3; ++e) {
			const uint32_t a = find_root(parent, mesh.triangles[3 * t]), b = find_root(parent, mesh.triangles[3 * t + e]);
			if (a != b) parent[std::max(a, b)] = std::min(a, b);
		}
	constexpr uint32_t kNone = UINT32_MAX;
	std::vector<uint32_t> id_of_root(parent.size(), kNone);
	size_t n_components = 0;
	if (component_of_triangle) component_of_triangle->assign(n_triangles, 0);
	for (size_t t = 0; t < n_triangles; ++t) {
		const uint32_t root = find_root(parent, mesh.triangles[3 * t]);
		if (id_of_root[root] == kNone) id_of_root[root] = (uint32_t)n_components++;
		if (component_of_triangle) (*component_of_triangle)[t] = id_of_root[root];
	}
	return n_components;
}

Mesh largest_component(const Mesh& mesh) {
	validate_mesh(mesh, "largest_component");
	std::vector<uint32_t> component;
	const size_t n_components = connected_components(mesh, &component);
	if (n_components <= 1) return mesh;
	std::vector<size_t> size(n_components, 0);
	for (uint32_t c : component) ++size[c];
	// max_element returns the first maximum, and components are numbered by first triangle: the tie rule.
	const uint32_t keep = (uint32_t)(std::max_element(size.begin(), size.end()) - size.begin());

	constexpr uint32_t kNone = UINT32_MAX;
	std::vector<uint32_t> new_index(mesh.n_vertices(), kNone);
	for (size_t t = 0; t < component.size(); ++t)
		if (component[t] == keep)
			for (int k = 0; k < 3; ++k) new_index[mesh.triangles[3 * t + k]] = 0;
	Mesh out;
	uint32_t next = 0;
	for (size_t v = 0; v < new_index.size(); ++v) {
		if (new_index[v] == kNone) continue;
		new_index[v] = next++;
		out.positions.insert(out.positions.end(), &mesh.positions[3 * v], &mesh.positions[3 * v] + 3);
		if (!mesh.normals.empty()) out.normals.insert(out.normals.end(), &mesh.normals[3 * v], &mesh.normals[3 * v] + 3);
		if (!mesh.colors.empty()) out.colors.insert(out.colors.end(), &mesh.colors[3 * v], &mesh.colors[3 * v] + 3);
	}
	out.triangles.reserve(3 * size[keep]);
	for (size_t t = 0; t < component.size(); ++t)
		if (component[t] == keep)
			for (int k = 0; k < 3; ++k) out.triangles.push_back(new_index[mesh.triangles[3 * t + k]]);
	return out;
}

} // namespace nerf
