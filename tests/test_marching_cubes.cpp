// Marching cubes on analytic fields (a sphere, a torus, two spheres, random fields): closed and
// consistently oriented meshes, their topology, how close the vertices lie to the true surface, the
// enclosed volume, the normals; and the mesh helpers (edge counts, Euler characteristic, components).
#include "nerf/geometry/marching_cubes.h"
#include "nerf/geometry/mesh.h"

#include "test_data_helpers.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <set>

using data_test::require_error;

namespace {

constexpr double kPi = 3.14159265358979323846;

using Field = std::function<double(double, double, double)>;

nerf::ScalarGrid sample(int n, float lo, float hi, const Field& f) {
	nerf::ScalarGrid g;
	g.nx = g.ny = g.nz = n;
	g.box.min = {lo, lo, lo};
	g.box.max = {hi, hi, hi};
	g.values.resize(g.size());
	for (int k = 0; k < n; ++k)
		for (int j = 0; j < n; ++j)
			for (int i = 0; i < n; ++i) {
				const auto p = g.point(i, j, k);
				g.values[g.index(i, j, k)] = (float)f(p[0], p[1], p[2]);
			}
	return g;
}

// Signed distances, positive inside (the density convention: inside = value > iso).
double sphere_sdf(double x, double y, double z, double cx, double r) {
	return r - std::sqrt((x - cx) * (x - cx) + y * y + z * z);
}
double torus_sdf(double x, double y, double z, double R, double r) {
	const double q = std::sqrt(x * x + y * y) - R;
	return r - std::sqrt(q * q + z * z);
}

const float* vertex(const nerf::Mesh& m, size_t v) { return &m.positions[3 * v]; }

/// The number of grid edges whose ends lie on different sides of iso, counted here from the values.
size_t crossed_edges(const nerf::ScalarGrid& g, float iso) {
	size_t n = 0;
	for (int k = 0; k < g.nz; ++k)
		for (int j = 0; j < g.ny; ++j)
			for (int i = 0; i < g.nx; ++i) {
				const bool in = g.values[g.index(i, j, k)] > iso;
				if (i + 1 < g.nx && in != (g.values[g.index(i + 1, j, k)] > iso)) ++n;
				if (j + 1 < g.ny && in != (g.values[g.index(i, j + 1, k)] > iso)) ++n;
				if (k + 1 < g.nz && in != (g.values[g.index(i, j, k + 1)] > iso)) ++n;
			}
	return n;
}

/// Checks that hold for any mesh of a surface that stays inside the grid.
void check_closed_oriented(const nerf::Mesh& mesh, const nerf::ScalarGrid& g, float iso) {
	REQUIRE(mesh.n_triangles() > 0);
	nerf::validate_mesh(mesh);
	const nerf::EdgeStats s = nerf::edge_stats(mesh);
	INFO("edges " << s.edges << ", boundary " << s.boundary << ", non-manifold " << s.non_manifold << ", misoriented "
	              << s.misoriented << ", degenerate faces " << s.degenerate_faces);
	CHECK(s.boundary == 0);
	CHECK(s.non_manifold == 0);
	CHECK(s.misoriented == 0);
	CHECK(s.degenerate_faces == 0);
	CHECK(s.closed_and_oriented());
	// A closed triangle mesh: 3F = 2E.
	CHECK(3 * mesh.n_triangles() == 2 * s.edges);
	// One vertex per crossed edge, each used by a face.
	CHECK(mesh.n_vertices() == crossed_edges(g, iso));
	std::vector<char> used(mesh.n_vertices(), 0);
	for (uint32_t v : mesh.triangles) used[v] = 1;
	CHECK(std::count(used.begin(), used.end(), 0) == 0);
}

// --- the bounds ----------------------------------------------------------------------------------
// A vertex is where the linear interpolant of the values along its grid edge crosses iso. For a signed
// distance f with |d2f/ds2| <= kappa along the edge, linear interpolation over an edge of length h is off
// by at most h^2 kappa / 8, and |f| at the vertex is its distance to the surface: so every vertex lies
// within h^2 kappa / 8 of the true surface. kappa is the largest curvature of the level sets within h of
// the surface: 1 / (R - h) for a sphere of radius R; for a torus (tube r, ring R > 2r) 1 / (r - h).
// Float rounding of the positions adds ~1e-7; 1e-5 covers it.
double vertex_bound(double h, double radius_of_curvature) { return h * h / (8.0 * (radius_of_curvature - h)) + 1e-5; }

// The volume: the mesh's triangles are chords, and a flat triangle of side a whose corners lie on a
// surface of curvature radius R sits on average a^2 / (8 R) below it (the mean of (rho^2 - |x|^2) / 2R over
// an equilateral triangle, circumradius rho = a / sqrt 3). A triangle inside one cell has sides up to the
// cell's diagonal sqrt(3) h, so the mean depth is at most 3 h^2 / (8 R), and the volume, area times depth,
// is short by at most a relative 3 h^2 / (8 R) * (area / volume). For a ball area / volume = 3 / R; for a
// torus (tube r) 2 / r. The vertices' own offsets (vertex_bound) are far smaller and of either sign.
double volume_tolerance(double h, double radius_of_curvature, double area_over_volume) {
	return 3.0 * h * h / (8.0 * radius_of_curvature) * area_over_volume;
}

} // namespace

TEST_CASE("marching cubes: a sphere gives a closed outward mesh near the sphere, for grids of 16, 32, 64", "[geometry][mc]") {
	const double R = 0.6;
	for (int n : {16, 32, 64}) {
		const nerf::ScalarGrid g = sample(n, -1.f, 1.f, [&](double x, double y, double z) { return sphere_sdf(x, y, z, 0.0, R); });
		const double h = 2.0 / (n - 1);
		const nerf::Mesh mesh = nerf::marching_cubes(g, {});
		INFO("n = " << n << ": " << mesh.n_vertices() << " vertices, " << mesh.n_triangles() << " triangles");
		check_closed_oriented(mesh, g, 0.f);
		CHECK(nerf::euler_characteristic(mesh) == 2);
		CHECK(nerf::connected_components(mesh) == 1);

		double worst = 0;
		for (size_t v = 0; v < mesh.n_vertices(); ++v) {
			const float* p = vertex(mesh, v);
			worst = std::max(worst, std::abs(sphere_sdf(p[0], p[1], p[2], 0.0, R)));
		}
		const double bound = vertex_bound(h, R);
		INFO("farthest vertex from the sphere " << worst << ", bound " << bound);
		CHECK(worst <= bound);

		const double volume = nerf::enclosed_volume(mesh), truth = 4.0 / 3.0 * kPi * R * R * R;
		const double rel = std::abs(volume - truth) / truth, tol = volume_tolerance(h, R, 3.0 / R);
		INFO("volume " << volume << " vs " << truth << ": relative error " << rel << ", tolerance " << tol);
		CHECK(volume > 0);  // outward orientation
		CHECK(rel <= tol);

		// Normals from the grid's central differences against the true ones, (x, y, z) / |.|.
		REQUIRE(mesh.normals.size() == mesh.positions.size());
		size_t good = 0;
		double lowest = 1;
		for (size_t v = 0; v < mesh.n_vertices(); ++v) {
			const float* p = vertex(mesh, v);
			const double len = std::sqrt((double)p[0] * p[0] + (double)p[1] * p[1] + (double)p[2] * p[2]);
			const double dot = (p[0] * mesh.normals[3 * v] + p[1] * mesh.normals[3 * v + 1] + p[2] * mesh.normals[3 * v + 2]) / len;
			good += dot > 0.9;
			lowest = std::min(lowest, dot);
		}
		INFO("lowest normal agreement " << lowest);
		CHECK((double)good >= 0.99 * (double)mesh.n_vertices());
		CHECK(lowest > 0.0);

		// Each face, by its winding, faces away from the centre.
		size_t outward = 0;
		for (size_t f = 0; f < mesh.n_triangles(); ++f) {
			const float *a = vertex(mesh, mesh.triangles[3 * f]), *b = vertex(mesh, mesh.triangles[3 * f + 1]),
			            *c = vertex(mesh, mesh.triangles[3 * f + 2]);
			const double u[3] = {(double)b[0] - a[0], (double)b[1] - a[1], (double)b[2] - a[2]};
			const double w[3] = {(double)c[0] - a[0], (double)c[1] - a[1], (double)c[2] - a[2]};
			const double nrm[3] = {u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0]};
			outward += nrm[0] * (a[0] + b[0] + c[0]) + nrm[1] * (a[1] + b[1] + c[1]) + nrm[2] * (a[2] + b[2] + c[2]) > 0;
		}
		CHECK((double)outward >= 0.99 * (double)mesh.n_triangles());
	}
}

TEST_CASE("marching cubes: a torus gives a closed outward mesh of Euler characteristic 0, for grids of 16, 32, 64", "[geometry][mc]") {
	const double R = 0.6, r = 0.3;
	for (int n : {16, 32, 64}) {
		const nerf::ScalarGrid g = sample(n, -1.f, 1.f, [&](double x, double y, double z) { return torus_sdf(x, y, z, R, r); });
		const double h = 2.0 / (n - 1);
		const nerf::Mesh mesh = nerf::marching_cubes(g, {});
		INFO("n = " << n << ": " << mesh.n_vertices() << " vertices, " << mesh.n_triangles() << " triangles");
		check_closed_oriented(mesh, g, 0.f);
		CHECK(nerf::euler_characteristic(mesh) == 0);
		CHECK(nerf::connected_components(mesh) == 1);

		double worst = 0;
		for (size_t v = 0; v < mesh.n_vertices(); ++v) {
			const float* p = vertex(mesh, v);
			worst = std::max(worst, std::abs(torus_sdf(p[0], p[1], p[2], R, r)));
		}
		const double bound = vertex_bound(h, r);
		INFO("farthest vertex from the torus " << worst << ", bound " << bound);
		CHECK(worst <= bound);

		const double volume = nerf::enclosed_volume(mesh), truth = 2.0 * kPi * kPi * R * r * r;
		const double rel = std::abs(volume - truth) / truth, tol = volume_tolerance(h, r, 2.0 / r);
		INFO("volume " << volume << " vs " << truth << ": relative error " << rel << ", tolerance " << tol);
		CHECK(volume > 0);
		CHECK(rel <= tol);

		// The true normal: from the tube's core circle to the point.
		size_t good = 0;
		for (size_t v = 0; v < mesh.n_vertices(); ++v) {
			const float* p = vertex(mesh, v);
			const double rho = std::sqrt((double)p[0] * p[0] + (double)p[1] * p[1]);
			const double d[3] = {p[0] - R * p[0] / rho, p[1] - R * p[1] / rho, p[2]};
			const double len = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
			good += (d[0] * mesh.normals[3 * v] + d[1] * mesh.normals[3 * v + 1] + d[2] * mesh.normals[3 * v + 2]) / len > 0.9;
		}
		CHECK((double)good >= 0.99 * (double)mesh.n_vertices());
	}
}

TEST_CASE("marching cubes: a density blob at a nonzero iso, a non-cubic grid and box", "[geometry][mc]") {
	// A Gaussian density (not a distance), cut where it equals exp(-1/2): the sphere of radius sigma.
	const double sigma = 0.5, cx = 0.1;
	const float iso = (float)std::exp(-0.5);
	nerf::ScalarGrid g;
	g.nx = 41;
	g.ny = 27;
	g.nz = 33;
	g.box.min = {-0.7f, -0.8f, -0.75f};
	g.box.max = {0.9f, 0.8f, 0.75f};
	g.values.resize(g.size());
	for (int k = 0; k < g.nz; ++k)
		for (int j = 0; j < g.ny; ++j)
			for (int i = 0; i < g.nx; ++i) {
				const auto p = g.point(i, j, k);
				const double d2 = (p[0] - cx) * (p[0] - cx) + p[1] * p[1] + p[2] * p[2];
				g.values[g.index(i, j, k)] = (float)std::exp(-d2 / (2 * sigma * sigma));
			}
	nerf::MarchingCubesOptions opt;
	opt.iso = iso;
	const nerf::Mesh mesh = nerf::marching_cubes(g, opt);
	check_closed_oriented(mesh, g, iso);
	CHECK(nerf::euler_characteristic(mesh) == 2);
	const auto h = g.cell_size();
	const double hmax = std::max({h[0], h[1], h[2]});
	// Linear interpolation of f = exp(-s^2 / 2 sigma^2) along an edge is off by at most hmax^2 max|f''| / 8 in
	// value (|f''| <= 1 / sigma^2), which moves the crossing by that over |f'| >= exp(-1/2) (sigma - hmax) /
	// sigma^2 near the surface: a bound on the distance to the sphere.
	const double bound = hmax * hmax / 8.0 / (std::exp(-0.5) * (sigma - hmax)) + 1e-5;
	double worst = 0;
	for (size_t v = 0; v < mesh.n_vertices(); ++v) {
		const float* p = vertex(mesh, v);
		worst = std::max(worst, std::abs(sphere_sdf(p[0], p[1], p[2], cx, sigma)));
	}
	INFO("farthest vertex " << worst << ", bound " << bound);
	CHECK(worst <= bound);
	const double volume = nerf::enclosed_volume(mesh), truth = 4.0 / 3.0 * kPi * sigma * sigma * sigma;
	CHECK(std::abs(volume - truth) / truth <= volume_tolerance(hmax, sigma, 3.0 / sigma));
	// The vertices lie on their edges: inside the box.
	for (size_t v = 0; v < mesh.n_vertices(); ++v)
		for (int a = 0; a < 3; ++a) {
			CHECK(vertex(mesh, v)[a] >= g.box.min[a]);
			CHECK(vertex(mesh, v)[a] <= g.box.max[a]);
		}
}

TEST_CASE("marching cubes: random fields give closed, consistently oriented meshes (every ambiguous case)", "[geometry][mc]") {
	// Noise visits every corner pattern and both answers of the face decider; values drawn from {-1, 0, 1}
	// add ties (a sample exactly at iso counts as outside, and the decider's products tie). The grid's outer
	// layer stays outside, so the surface never leaves it and must close.
	std::mt19937 rng(7);
	for (int trial = 0; trial < 40; ++trial) {
		const int n = 16;
		nerf::ScalarGrid g;
		g.nx = g.ny = g.nz = n;
		g.box.min = {0.f, 0.f, 0.f};
		g.box.max = {1.f, 2.f, 3.f};
		g.values.resize(g.size());
		std::uniform_real_distribution<float> uniform(-1.f, 1.f);
		std::uniform_int_distribution<int> ternary(-1, 1);
		for (int k = 0; k < n; ++k)
			for (int j = 0; j < n; ++j)
				for (int i = 0; i < n; ++i) {
					const bool rim = i == 0 || j == 0 || k == 0 || i == n - 1 || j == n - 1 || k == n - 1;
					const float v = trial % 2 == 0 ? uniform(rng) : (float)ternary(rng);
					g.values[g.index(i, j, k)] = rim ? -1.f : v;
				}
		const nerf::Mesh mesh = nerf::marching_cubes(g, {});
		INFO("trial " << trial << ": " << mesh.n_triangles() << " triangles");
		check_closed_oriented(mesh, g, 0.f);
		CHECK(nerf::euler_characteristic(mesh) % 2 == 0);  // closed orientable surfaces
		CHECK(nerf::enclosed_volume(mesh) > 0);
	}
}

TEST_CASE("marching cubes: every corner pattern of one cube, with magnitudes that turn the face decider both ways", "[geometry][mc]") {
	// A 4 x 4 x 4 grid, all outside but the middle cell's eight corners, which take each of the 256
	// patterns with random magnitudes spread over two decades (so that each ambiguous face is joined in some
	// draws and separated in others). The mesh, made by the middle cell and its 26 neighbours, must close.
	std::mt19937 rng(11);
	std::uniform_real_distribution<float> log_mag(-1.f, 1.f);
	size_t meshes = 0;
	for (int mask = 1; mask < 256; ++mask)
		for (int draw = 0; draw < 12; ++draw) {
			nerf::ScalarGrid g;
			g.nx = g.ny = g.nz = 4;
			g.box.max = {3.f, 3.f, 3.f};
			g.values.assign(g.size(), -1.f);
			for (int c = 0; c < 8; ++c) {
				const float mag = std::pow(10.f, log_mag(rng));
				g.values[g.index(1 + (c & 1), 1 + ((c >> 1) & 1), 1 + ((c >> 2) & 1))] = (mask >> c) & 1 ? mag : -mag;
			}
			const nerf::Mesh mesh = nerf::marching_cubes(g, {});
			const nerf::EdgeStats s = nerf::edge_stats(mesh);
			INFO("mask " << mask << ", draw " << draw);
			REQUIRE(s.closed_and_oriented());
			REQUIRE(s.degenerate_faces == 0);
			REQUIRE(nerf::enclosed_volume(mesh) > 0);
			REQUIRE(mesh.n_vertices() == crossed_edges(g, 0.f));
			++meshes;
		}
	CHECK(meshes == 255 * 12);
}

TEST_CASE("marching cubes: the face decider, on a saddle face shared by two cubes", "[geometry][mc]") {
	// The face x = 1, y and z in [1, 2] of a 3 x 4 x 4 grid, shared by two cubes, has its inside corners
	// diagonal; every other sample is outside, so the two inside samples are connected, if at all, across
	// that face: by the decider's answer.
	for (const bool joined : {false, true}) {
		nerf::ScalarGrid g;
		g.nx = 3;
		g.ny = g.nz = 4;
		g.box.max = {2.f, 3.f, 3.f};
		g.values.assign(g.size(), -1.f);
		// Saddle value (ac - bd) / (a + c - b - d) with a = c = 1: above 0 when b d < 1.
		const float out = joined ? -0.5f : -2.f;
		g.values[g.index(1, 1, 1)] = 1.f;
		g.values[g.index(1, 2, 2)] = 1.f;
		g.values[g.index(1, 2, 1)] = out;
		g.values[g.index(1, 1, 2)] = out;
		const nerf::Mesh mesh = nerf::marching_cubes(g, {});
		const nerf::EdgeStats s = nerf::edge_stats(mesh);
		INFO((joined ? "joined" : "separated"));
		CHECK(s.non_manifold == 0);
		CHECK(s.misoriented == 0);
		CHECK(s.boundary == 0);
		CHECK(nerf::connected_components(mesh) == (joined ? 1u : 2u));
		CHECK(nerf::euler_characteristic(mesh) == (joined ? 2 : 4));
		CHECK(nerf::enclosed_volume(mesh) > 0);
	}
}

TEST_CASE("marching cubes: normals from an exact gradient function", "[geometry][mc]") {
	const double R = 0.55;
	const nerf::ScalarGrid g = sample(24, -1.f, 1.f, [&](double x, double y, double z) { return sphere_sdf(x, y, z, 0.0, R); });
	nerf::MarchingCubesOptions opt;
	opt.normals = nerf::MeshNormals::Gradient;
	size_t calls = 0, points = 0;
	opt.gradient = [&](const float* p, size_t n, float* grad) {
		++calls;
		points += n;
		for (size_t v = 0; v < n; ++v) {
			const double len = std::sqrt((double)p[3 * v] * p[3 * v] + (double)p[3 * v + 1] * p[3 * v + 1] + (double)p[3 * v + 2] * p[3 * v + 2]);
			for (int a = 0; a < 3; ++a) grad[3 * v + a] = (float)(-3.0 * p[3 * v + a] / len);  // any length: only the direction counts
		}
	};
	const nerf::Mesh mesh = nerf::marching_cubes(g, opt);
	CHECK(calls == 1);
	CHECK(points == mesh.n_vertices());
	double lowest = 1;
	for (size_t v = 0; v < mesh.n_vertices(); ++v) {
		const float* p = vertex(mesh, v);
		const double len = std::sqrt((double)p[0] * p[0] + (double)p[1] * p[1] + (double)p[2] * p[2]);
		const double dot = (p[0] * mesh.normals[3 * v] + p[1] * mesh.normals[3 * v + 1] + p[2] * mesh.normals[3 * v + 2]) / len;
		lowest = std::min(lowest, dot);
		const double norm = std::sqrt((double)mesh.normals[3 * v] * mesh.normals[3 * v] + (double)mesh.normals[3 * v + 1] * mesh.normals[3 * v + 1] +
		                              (double)mesh.normals[3 * v + 2] * mesh.normals[3 * v + 2]);
		CHECK(std::abs(norm - 1.0) < 1e-6);
	}
	CHECK(lowest > 0.99999);

	opt.normals = nerf::MeshNormals::None;
	CHECK(nerf::marching_cubes(g, opt).normals.empty());
}

TEST_CASE("marching cubes: progress reports fractions up to 1, one per slab", "[geometry][mc]") {
	const nerf::ScalarGrid g = sample(9, -1.f, 1.f, [](double x, double y, double z) { return sphere_sdf(x, y, z, 0.0, 0.5); });
	std::vector<double> seen;
	nerf::MarchingCubesOptions opt;
	opt.progress = [&](double f) { seen.push_back(f); };
	nerf::marching_cubes(g, opt);
	REQUIRE(seen.size() == 8);
	CHECK(std::is_sorted(seen.begin(), seen.end()));
	CHECK(seen.front() > 0.0);
	CHECK(seen.back() == 1.0);
}

TEST_CASE("marching cubes: a surface leaving the grid has a rim, nothing crossing gives an empty mesh", "[geometry][mc]") {
	// A sphere larger than the box: cut by the box's faces, the mesh is open there.
	const nerf::ScalarGrid big = sample(12, -1.f, 1.f, [](double x, double y, double z) { return sphere_sdf(x, y, z, 0.0, 1.2); });
	const nerf::Mesh open = nerf::marching_cubes(big, {});
	const nerf::EdgeStats s = nerf::edge_stats(open);
	CHECK(s.boundary > 0);
	CHECK(s.non_manifold == 0);
	CHECK(s.misoriented == 0);

	const nerf::ScalarGrid all_out = sample(5, -1.f, 1.f, [](double, double, double) { return -1.0; });
	const nerf::Mesh empty = nerf::marching_cubes(all_out, {});
	CHECK(empty.n_vertices() == 0);
	CHECK(empty.n_triangles() == 0);
	nerf::MarchingCubesOptions low;
	low.iso = -2.f;  // everything inside: no surface either
	CHECK(nerf::marching_cubes(all_out, low).n_triangles() == 0);
}

TEST_CASE("marching cubes: bad grids and options are named in the error", "[geometry][mc][errors]") {
	nerf::ScalarGrid g = sample(4, -1.f, 1.f, [](double x, double, double) { return x; });
	nerf::ScalarGrid thin = g;
	thin.nx = 1;
	require_error([&] { nerf::marching_cubes(thin, {}); }, {"marching cubes", "1 x 4 x 4", "at least 2"});
	nerf::ScalarGrid short_values = g;
	short_values.values.pop_back();
	require_error([&] { nerf::marching_cubes(short_values, {}); }, {"marching cubes", "63 values", "(64)"});
	nerf::ScalarGrid flat = g;
	flat.box.max[1] = flat.box.min[1];
	require_error([&] { nerf::marching_cubes(flat, {}); }, {"marching cubes", "y range", "min < max"});
	nerf::ScalarGrid nan = g;
	nan.values[g.index(2, 1, 3)] = std::nanf("");
	require_error([&] { nerf::marching_cubes(nan, {}); }, {"marching cubes", "(x 2, y 1, z 3)", "nan"});
	nerf::MarchingCubesOptions opt;
	opt.iso = std::numeric_limits<float>::infinity();
	require_error([&] { nerf::marching_cubes(g, opt); }, {"iso level", "not finite"});
	opt = {};
	opt.normals = nerf::MeshNormals::Gradient;
	require_error([&] { nerf::marching_cubes(g, opt); }, {"Gradient", "gradient function"});
}

TEST_CASE("mesh helpers: edge counts, Euler characteristic and volume of a hand-made tetrahedron", "[geometry][mesh]") {
	nerf::Mesh tet;
	tet.positions = {0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1};
	tet.triangles = {0, 2, 1, 0, 1, 3, 0, 3, 2, 1, 2, 3};  // outward
	nerf::EdgeStats s = nerf::edge_stats(tet);
	CHECK(s.edges == 6);
	CHECK(s.closed_and_oriented());
	CHECK(nerf::euler_characteristic(tet) == 2);
	CHECK(nerf::enclosed_volume(tet) == Approx(1.0 / 6.0).epsilon(1e-12));
	CHECK(nerf::surface_area(tet) == Approx(1.5 + std::sqrt(3.0) / 2.0).epsilon(1e-12));

	nerf::Mesh flipped = tet;
	std::swap(flipped.triangles[1], flipped.triangles[2]);  // one face turned over
	s = nerf::edge_stats(flipped);
	CHECK(s.misoriented == 3);
	CHECK_FALSE(s.closed_and_oriented());

	nerf::Mesh open = tet;
	open.triangles.resize(9);
	s = nerf::edge_stats(open);
	CHECK(s.boundary == 3);
	CHECK(nerf::euler_characteristic(open) == 1);  // a disc

	nerf::Mesh fin = tet;
	fin.positions.insert(fin.positions.end(), {1, 1, 1});
	fin.triangles.insert(fin.triangles.end(), {1, 2, 4});  // a third face on edge 1-2
	CHECK(nerf::edge_stats(fin).non_manifold == 1);

	nerf::Mesh bad = tet;
	bad.triangles[5] = 9;
	require_error([&] { nerf::validate_mesh(bad); }, {"triangle 1", "vertex 9 of 4"});
}

TEST_CASE("largest_component keeps the bigger of two spheres and drops the other", "[geometry][mesh]") {
	const double ra = 0.42, ca = -0.45, rb = 0.2, cb = 0.6;
	const nerf::ScalarGrid g = sample(40, -1.f, 1.f, [&](double x, double y, double z) {
		return std::max(sphere_sdf(x, y, z, ca, ra), sphere_sdf(x, y, z, cb, rb));
	});
	nerf::Mesh both = nerf::marching_cubes(g, {});
	REQUIRE(nerf::connected_components(both) == 2);
	both.colors.assign(both.positions.size(), 0);
	for (size_t v = 0; v < both.n_vertices(); ++v) both.colors[3 * v] = both.positions[3 * v] < 0 ? 10 : 200;
	const nerf::Mesh kept = nerf::largest_component(both);
	REQUIRE(nerf::connected_components(kept) == 1);
	CHECK(nerf::edge_stats(kept).closed_and_oriented());
	CHECK(nerf::euler_characteristic(kept) == 2);
	CHECK(kept.n_triangles() < both.n_triangles());
	CHECK(kept.n_triangles() > both.n_triangles() / 2);
	REQUIRE(kept.normals.size() == kept.positions.size());
	REQUIRE(kept.colors.size() == kept.positions.size());
	const double h = 2.0 / 39;
	for (size_t v = 0; v < kept.n_vertices(); ++v) {
		const float* p = vertex(kept, v);
		CHECK(std::abs(sphere_sdf(p[0], p[1], p[2], ca, ra)) <= vertex_bound(h, ra));
		CHECK(kept.colors[3 * v] == 10);  // each vertex keeps its own attributes
	}
	// Vertex order is kept: the renumbered vertices are the originals in their order.
	size_t next = 0;
	for (size_t v = 0; v < both.n_vertices() && next < kept.n_vertices(); ++v)
		if (std::equal(vertex(both, v), vertex(both, v) + 3, vertex(kept, next))) ++next;
	CHECK(next == kept.n_vertices());
	CHECK(nerf::enclosed_volume(kept) == Approx(4.0 / 3.0 * kPi * ra * ra * ra).epsilon(volume_tolerance(h, ra, 3.0 / ra)));
	CHECK(nerf::largest_component(nerf::Mesh{}).n_triangles() == 0);
}
