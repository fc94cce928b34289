// Marching cubes (Lorensen & Cline, SIGGRAPH 1987) with the face ambiguities resolved by the asymptotic
// decider (Nielson & Hamann, IEEE Visualization 1991).
//
// The case table is derived here, once, from one rule instead of being written in: the classic
// 256-entry table (Lorensen & Cline's 15 cases, or the 256-case listing of Bourke/Bloyd) fixes one
// triangulation per corner sign pattern, so it cannot follow a decider that looks at the values, and
// with a fixed choice per pattern two neighbouring cubes can cut their shared face differently and leave
// a hole. The rule:
//
// 1. Each cube face is cut on its own. Walking its four corners counter-clockwise as seen from outside
//    the cube, a crossed edge is "entering" (outside corner to inside corner) or "exiting"; a face has
//    0, 2 or 4 crossed edges. A segment runs from each entering edge to an exiting edge of the same
//    face: the only one when there are two; on an ambiguous face (inside corners diagonal) the next one
//    counter-clockwise when its inside corners are separated, the previous one when they are joined.
//    Joined or separated is the asymptotic decider's answer: with values taken relative to iso, the
//    bilinear saddle value (ac - bd) / (a - b + c - d) lies above iso exactly when the product of the
//    inside pair exceeds the product of the outside pair. It reads the face's four values only, so both
//    cubes that share a face cut it the same way, the segments running in opposite directions.
// 2. The segments of the six faces close into loops (each crossed edge lies on two faces: it enters on
//    one, exits on the other), each loop one polygon of the surface, ordered so that the inside lies to
//    its right seen from outside: triangulated, its faces point outward.
// 3. A diagonal between two vertices on one cube face could be drawn by the neighbour across that face
//    too, making an edge of four triangles. Only an ambiguous face has such vertex pairs (on any other
//    face the two vertices are joined by the face's segment, a side of the polygon), so each ambiguous
//    face gets one owner, the only cube of the two that may draw a diagonal across it, decided from
//    what both cubes see alike: the face's axis and which of its diagonals is inside (face_owner_below).
//    Then every mesh edge is a face segment (one triangle in each of the two cubes) or a diagonal of one
//    polygon (two triangles of it). The owners must leave every polygon a triangulation: a fixed owner
//    (say, always the cube below) does not (three corners inside, pairwise diagonal on the cube's three
//    lower faces, two of them joined: a 9-sided polygon whose only admissible diagonals would cross
//    those faces). Of the 4096 rules "owner by axis, inside diagonal and joined or not", an exhaustive
//    search found 18 that leave every case a triangulation (none of them looks at "joined");
//    face_owner_below is one, and building the table checks it (a case without one throws, and the
//    tests build the table).
//
// The table key is the 8 corner bits plus one joined-bit per face (used only where a face is ambiguous):
// 2^14 entries, built on first use (a few milliseconds). The interior of a cube is not decided further
// (no tunnels are added between the cube's loops): that changes the topology of rare saddle cells, never
// the closedness.
#include "nerf/geometry/marching_cubes.h"

#include "nerf/common.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace nerf {

std::array<float, 3> ScalarGrid::cell_size() const {
	const int n[3] = {nx, ny, nz};
	std::array<float, 3> h{};
	for (int a = 0; a < 3; ++a) h[a] = n[a] > 1 ? (float)(((double)box.max[a] - box.min[a]) / (n[a] - 1)) : 0.f;
	return h;
}

std::array<float, 3> ScalarGrid::point(int i, int j, int k) const {
	const int n[3] = {nx, ny, nz}, idx[3] = {i, j, k};
	std::array<float, 3> p{};
	for (int a = 0; a < 3; ++a)
		p[a] = n[a] > 1 ? (float)(box.min[a] + ((double)box.max[a] - box.min[a]) * idx[a] / (n[a] - 1)) : box.min[a];
	return p;
}

void validate_grid(const ScalarGrid& grid, const char* what) {
	if (grid.nx < 2 || grid.ny < 2 || grid.nz < 2)
		NERF_FAIL(what << ": the grid is " << grid.nx << " x " << grid.ny << " x " << grid.nz
		               << " samples; marching needs at least 2 along each axis");
	if (grid.values.size() != grid.size())
		NERF_FAIL(what << ": " << grid.values.size() << " values for a " << grid.nx << " x " << grid.ny << " x " << grid.nz
		               << " grid (" << grid.size() << ")");
	for (int a = 0; a < 3; ++a)
		if (!std::isfinite(grid.box.min[a]) || !std::isfinite(grid.box.max[a]) || !(grid.box.max[a] > grid.box.min[a]))
			NERF_FAIL(what << ": the box's " << "xyz"[a] << " range [" << grid.box.min[a] << ", " << grid.box.max[a]
			               << "] is empty or not finite (need min < max)");
	for (size_t i = 0; i < grid.values.size(); ++i)
		if (!std::isfinite(grid.values[i])) {
			const size_t x = i % (size_t)grid.nx, y = (i / (size_t)grid.nx) % (size_t)grid.ny, z = i / ((size_t)grid.nx * grid.ny);
			NERF_FAIL(what << ": the value at grid index (x " << x << ", y " << y << ", z " << z << ") is " << grid.values[i]);
		}
}

namespace {

// --- the cube's numbering ----------------------------------------------------------------------
// Corner c sits at offset (c & 1, (c >> 1) & 1, (c >> 2) & 1). Edge e runs along axis e / 4 from corner
// kEdgeCorner[e][0] (offset 0 along the axis) to kEdgeCorner[e][1]; for the two other axes, taken in
// the order (x, y, z) without the edge's own, r = e % 4 holds their offsets: r & 1 for the first, r >> 1
// for the second. Face f = 2 * axis + side lies at offset `side` along `axis`.

constexpr int kCornerOffset[8][3] = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {1, 1, 0}, {0, 0, 1}, {1, 0, 1}, {0, 1, 1}, {1, 1, 1}};

struct CubeTopology {
	int edge_corner[12][2];
	int face_corner[6][4];     // counter-clockwise seen from outside the cube
	int face_edge[6][4];       // face_edge[f][i] joins face_corner[f][i] and face_corner[f][(i + 1) % 4]
	uint8_t edge_faces[12];    // bit f set when the edge lies on face f

	CubeTopology() {
		for (int e = 0; e < 12; ++e) {
			const int axis = e / 4, r = e % 4;
			int other[2], n = 0;
			for (int a = 0; a < 3; ++a)
				if (a != axis) other[n++] = a;
			int off[3] = {0, 0, 0};
			off[other[0]] = r & 1;
			off[other[1]] = r >> 1;
			const int c0 = off[0] + 2 * off[1] + 4 * off[2];
			edge_corner[e][0] = c0;
			edge_corner[e][1] = c0 + (1 << axis);
			edge_faces[e] = 0;
		}
		for (int f = 0; f < 6; ++f) {
			const int axis = f / 2, side = f % 2;
			// (u, v, outward normal) right-handed, so (0,0), (1,0), (1,1), (0,1) in (u, v) runs
			// counter-clockwise seen from outside.
			const int b = (axis + 1) % 3, c = (axis + 2) % 3;
			const int u = side ? b : c, v = side ? c : b;
			const int uv[4][2] = {{0, 0}, {1, 0}, {1, 1}, {0, 1}};
			for (int i = 0; i < 4; ++i) {
				int off[3];
				off[axis] = side;
				off[u] = uv[i][0];
				off[v] = uv[i][1];
				face_corner[f][i] = off[0] + 2 * off[1] + 4 * off[2];
			}
			for (int i = 0; i < 4; ++i) {
				const int p = face_corner[f][i], q = face_corner[f][(i + 1) % 4];
				face_edge[f][i] = -1;
				for (int e = 0; e < 12; ++e)
					if ((edge_corner[e][0] == p && edge_corner[e][1] == q) || (edge_corner[e][0] == q && edge_corner[e][1] == p))
						face_edge[f][i] = e;
				NERF_CHECK(face_edge[f][i] >= 0);
				edge_faces[face_edge[f][i]] |= (uint8_t)(1u << f);
			}
		}
	}
};

const CubeTopology& topology() {
	static const CubeTopology t;
	return t;
}

bool corner_inside(int mask, int corner) { return (mask >> corner) & 1; }

/// A face whose inside corners are diagonal (and not all four inside or outside).
bool face_ambiguous(int mask, int f) {
	const auto& t = topology();
	const bool b0 = corner_inside(mask, t.face_corner[f][0]), b1 = corner_inside(mask, t.face_corner[f][1]);
	const bool b2 = corner_inside(mask, t.face_corner[f][2]), b3 = corner_inside(mask, t.face_corner[f][3]);
	return b0 == b2 && b1 == b3 && b0 != b1;
}

// --- the case table ----------------------------------------------------------------------------

constexpr int kMaxTriangles = 12;  // a loop of k crossed edges gives k - 2 triangles; at most 12 edges cross

struct CaseTable {
	static constexpr int kKeys = 1 << 14;
	uint8_t n_triangles[kKeys];
	uint8_t edges[kKeys][3 * kMaxTriangles];  // cube edge indices, three per triangle
	uint8_t ambiguous_faces[256];             // bit f: face f is ambiguous for this corner mask

	CaseTable();
};

/// Whether the cube below an ambiguous face (along its axis) owns it (rule 3 at the top), from the face's
/// axis and whether its corner with the lowest coordinates is inside (then the inside diagonal runs
/// through it): x faces always; y faces when that corner is inside; z faces when it is outside.
bool face_owner_below(int axis, bool lowest_corner_inside) {
	return axis == 0 || (axis == 1 && lowest_corner_inside) || (axis == 2 && !lowest_corner_inside);
}

/// Triangulates the polygon `loop` (cube edge indices, in order) with no diagonal between two edges that
/// share one of the `forbidden_faces` (bit f: face f). Appends the triangles to `out`; false when none exists.
bool triangulate(const std::vector<int>& loop, uint8_t forbidden_faces, std::vector<int>& out) {
	const auto& t = topology();
	const int k = (int)loop.size();
	auto allowed = [&](int i, int j) {  // positions in the loop
		const int d = (j - i + k) % k;
		if (d == 1 || d == k - 1) return true;  // a side of the polygon, not a diagonal
		return (t.edge_faces[loop[i]] & t.edge_faces[loop[j]] & forbidden_faces) == 0;
	};
	// A fan first: the simplest shape.
	for (int s = 0; s < k; ++s) {
		bool ok = true;
		for (int j = 2; j < k - 1 && ok; ++j) ok = allowed(s, (s + j) % k);
		if (!ok) continue;
		for (int j = 1; j + 1 < k; ++j) {
			out.push_back(loop[s]);
			out.push_back(loop[(s + j) % k]);
			out.push_back(loop[(s + j + 1) % k]);
		}
		return true;
	}
	// Otherwise any triangulation, by intervals: ok[i][j] when the sub-polygon i..j (its closing side
	// i-j allowed) can be triangulated, apex[i][j] the third corner of the triangle on side i-j.
	std::vector<std::vector<int>> apex(k, std::vector<int>(k, -1));
	std::vector<std::vector<char>> ok(k, std::vector<char>(k, 0));
	for (int i = 0; i + 1 < k; ++i) ok[i][i + 1] = 1;
	for (int len = 2; len < k; ++len)
		for (int i = 0; i + len < k; ++i) {
			const int j = i + len;
			if (!allowed(i, j)) continue;
			for (int m = i + 1; m < j && !ok[i][j]; ++m)
				if (ok[i][m] && ok[m][j]) {
					ok[i][j] = 1;
					apex[i][j] = m;
				}
		}
	if (!ok[0][k - 1]) return false;
	std::vector<std::pair<int, int>> stack = {{0, k - 1}};
	while (!stack.empty()) {
		const auto [i, j] = stack.back();
		stack.pop_back();
		if (j - i < 2) continue;
		const int m = apex[i][j];
		out.push_back(loop[i]);
		out.push_back(loop[m]);
		out.push_back(loop[j]);
		stack.push_back({i, m});
		stack.push_back({m, j});
	}
	return true;
}

CaseTable::CaseTable() {
	const auto& t = topology();
	for (int mask = 0; mask < 256; ++mask) {
		ambiguous_faces[mask] = 0;
		for (int f = 0; f < 6; ++f)
			if (face_ambiguous(mask, f)) ambiguous_faces[mask] |= (uint8_t)(1u << f);
	}
	for (int key = 0; key < kKeys; ++key) {
		const int mask = key & 255, joined = key >> 8;
		int next[12];
		std::fill(next, next + 12, -1);
		for (int f = 0; f < 6; ++f) {
			bool in[4];
			for (int i = 0; i < 4; ++i) in[i] = corner_inside(mask, t.face_corner[f][i]);
			for (int i = 0; i < 4; ++i) {
				const bool entering = !in[i] && in[(i + 1) % 4];
				if (!entering) continue;
				int exit_side = -1;
				if ((ambiguous_faces[mask] >> f) & 1) {
					exit_side = ((joined >> f) & 1) ? (i + 3) % 4 : (i + 1) % 4;
				} else {
					for (int s = 0; s < 4; ++s)
						if (in[s] && !in[(s + 1) % 4]) exit_side = s;
				}
				NERF_CHECK(exit_side >= 0);
				const int from = t.face_edge[f][i];
				NERF_CHECK(next[from] < 0);  // an edge enters on one face only
				next[from] = t.face_edge[f][exit_side];
			}
		}
		uint8_t forbidden = 0;  // the ambiguous faces the neighbour owns
		for (int f = 0; f < 6; ++f) {
			if (!((ambiguous_faces[mask] >> f) & 1)) continue;
			const int axis = f / 2, side = f % 2;
			const int lowest_corner = side << axis;  // offset `side` along the axis, 0 along the others
			const bool below_owns = face_owner_below(axis, corner_inside(mask, lowest_corner));
			// This cube is below the face when the face is its upper one (side 1).
			if (below_owns != (side == 1)) forbidden |= (uint8_t)(1u << f);
		}
		std::vector<int> tris;
		bool visited[12] = {};
		for (int e = 0; e < 12; ++e) {
			if (next[e] < 0 || visited[e]) continue;
			std::vector<int> loop;
			for (int x = e; !visited[x]; x = next[x]) {
				NERF_CHECK(next[x] >= 0);
				visited[x] = true;
				loop.push_back(x);
			}
			NERF_CHECK(loop.size() >= 3 && next[loop.back()] == e);
			if (!triangulate(loop, forbidden, tris)) NERF_FAIL("marching cubes: no admissible triangulation for case " << key);
		}
		NERF_CHECK(tris.size() <= 3 * kMaxTriangles);
		n_triangles[key] = (uint8_t)(tris.size() / 3);
		for (size_t i = 0; i < tris.size(); ++i) edges[key][i] = (uint8_t)tris[i];
	}
}

const CaseTable& case_table() {
	static const CaseTable table;  // built on first use; thread-safe (C++11 static initialisation)
	return table;
}

// --- marching ----------------------------------------------------------------------------------

constexpr uint32_t kNoVertex = UINT32_MAX;

/// Central differences of the values at sample (i, j, k), one-sided at the grid's faces, per world unit.
std::array<double, 3> sample_gradient(const ScalarGrid& g, const double inv_h[3], int i, int j, int k) {
	const int n[3] = {g.nx, g.ny, g.nz};
	const int idx[3] = {i, j, k};
	std::array<double, 3> grad{};
	for (int a = 0; a < 3; ++a) {
		int lo[3] = {i, j, k}, hi[3] = {i, j, k};
		if (idx[a] > 0) --lo[a];
		if (idx[a] < n[a] - 1) ++hi[a];
		const double span = hi[a] - lo[a];
		grad[a] = ((double)g.values[g.index(hi[0], hi[1], hi[2])] - g.values[g.index(lo[0], lo[1], lo[2])]) * inv_h[a] / span;
	}
	return grad;
}

class Marcher {
public:
	Marcher(const ScalarGrid& grid, const MarchingCubesOptions& options)
	    : m_g(grid), m_opt(options), m_table(case_table()), m_nx(grid.nx), m_ny(grid.ny), m_nz(grid.nz) {
		for (int a = 0; a < 3; ++a) {
			const int n = a == 0 ? m_nx : a == 1 ? m_ny : m_nz;
			m_min[a] = grid.box.min[a];
			m_step[a] = ((double)grid.box.max[a] - grid.box.min[a]) / (n - 1);
			m_inv_h[a] = 1.0 / m_step[a];
		}
	}

	Mesh run();

private:
	bool inside(size_t index) const { return m_g.values[index] > m_opt.iso; }
	double rel(size_t index) const { return (double)m_g.values[index] - (double)m_opt.iso; }

	/// The vertex on the edge from sample a to its neighbour b = a + 1 along `axis`, or kNoVertex.
	uint32_t edge_vertex(int i, int j, int k, int axis);
	void make_plane_vertices(int k, std::vector<uint32_t>& x_edges, std::vector<uint32_t>& y_edges);
	void make_slab_vertices(int k, std::vector<uint32_t>& z_edges);
	uint32_t joined_faces(int mask, const size_t corner_index[8]) const;
	void compute_normals();

	const ScalarGrid& m_g;
	const MarchingCubesOptions& m_opt;
	const CaseTable& m_table;
	const int m_nx, m_ny, m_nz;
	double m_min[3], m_step[3], m_inv_h[3];
	Mesh m_mesh;
	// For MeshNormals::Grid: each vertex's edge (its lower sample and axis) and position along it.
	std::vector<uint32_t> m_vertex_sample;  // [i, j, k] of the lower sample, three per vertex
	std::vector<uint8_t> m_vertex_axis;
	std::vector<float> m_vertex_t;
};

uint32_t Marcher::edge_vertex(int i, int j, int k, int axis) {
	int b[3] = {i, j, k};
	++b[axis];
	const size_t ia = m_g.index(i, j, k), ib = m_g.index(b[0], b[1], b[2]);
	if (inside(ia) == inside(ib)) return kNoVertex;
	if (m_mesh.n_vertices() >= (size_t)kNoVertex)
		NERF_FAIL("marching cubes: the mesh has more vertices than 32-bit indices hold; use a coarser grid");
	// Exactly one end is inside, so va != vb and t lies in [0, 1]; each edge is interpolated once,
	// whichever cube asks first.
	const double va = m_g.values[ia], vb = m_g.values[ib];
	const double t = std::clamp(((double)m_opt.iso - va) / (vb - va), 0.0, 1.0);
	const int idx[3] = {i, j, k};
	for (int a = 0; a < 3; ++a)
		m_mesh.positions.push_back((float)(m_min[a] + m_step[a] * (idx[a] + (a == axis ? t : 0.0))));
	if (m_opt.normals == MeshNormals::Grid) {
		m_vertex_sample.insert(m_vertex_sample.end(), {(uint32_t)i, (uint32_t)j, (uint32_t)k});
		m_vertex_axis.push_back((uint8_t)axis);
		m_vertex_t.push_back((float)t);
	}
	return (uint32_t)(m_mesh.n_vertices() - 1);
}

// Vertices are numbered in a fixed order (plane 0's x then y edges; then per slab its z edges and the
// next plane's x and y edges, each row by row), so the mesh does not depend on anything but the grid.
void Marcher::make_plane_vertices(int k, std::vector<uint32_t>& x_edges, std::vector<uint32_t>& y_edges) {
	for (int j = 0; j < m_ny; ++j)
		for (int i = 0; i + 1 < m_nx; ++i) x_edges[(size_t)j * (m_nx - 1) + i] = edge_vertex(i, j, k, 0);
	for (int j = 0; j + 1 < m_ny; ++j)
		for (int i = 0; i < m_nx; ++i) y_edges[(size_t)j * m_nx + i] = edge_vertex(i, j, k, 1);
}

void Marcher::make_slab_vertices(int k, std::vector<uint32_t>& z_edges) {
	for (int j = 0; j < m_ny; ++j)
		for (int i = 0; i < m_nx; ++i) z_edges[(size_t)j * m_nx + i] = edge_vertex(i, j, k, 2);
}

uint32_t Marcher::joined_faces(int mask, const size_t corner_index[8]) const {
	const auto& t = topology();
	uint32_t joined = 0;
	for (int f = 0, amb = m_table.ambiguous_faces[mask]; amb != 0; ++f, amb >>= 1) {
		if (!(amb & 1)) continue;
		const int* c = t.face_corner[f];
		// Inside pair against outside pair; the products commute, so the cube on the face's other side,
		// which walks the corners in another order, computes the same two numbers.
		const double p02 = rel(corner_index[c[0]]) * rel(corner_index[c[2]]);
		const double p13 = rel(corner_index[c[1]]) * rel(corner_index[c[3]]);
		const bool inside02 = corner_inside(mask, c[0]);
		if (inside02 ? p02 > p13 : p13 > p02) joined |= 1u << f;
	}
	return joined;
}

void Marcher::compute_normals() {
	const size_t n_vertices = m_mesh.n_vertices();
	if (m_opt.normals == MeshNormals::None || n_vertices == 0) return;
	std::vector<float> grad(3 * n_vertices);
	if (m_opt.normals == MeshNormals::Grid) {
		for (size_t v = 0; v < n_vertices; ++v) {
			const uint32_t* s = &m_vertex_sample[3 * v];
			int hi[3] = {(int)s[0], (int)s[1], (int)s[2]};
			++hi[m_vertex_axis[v]];
			const auto g0 = sample_gradient(m_g, m_inv_h, (int)s[0], (int)s[1], (int)s[2]);
			const auto g1 = sample_gradient(m_g, m_inv_h, hi[0], hi[1], hi[2]);
			const double t = m_vertex_t[v];
			for (int a = 0; a < 3; ++a) grad[3 * v + a] = (float)((1.0 - t) * g0[a] + t * g1[a]);
		}
	} else {
		m_opt.gradient(m_mesh.positions.data(), n_vertices, grad.data());
	}
	m_mesh.normals.assign(3 * n_vertices, 0.f);
	std::vector<uint32_t> undefined;
	for (size_t v = 0; v < n_vertices; ++v) {
		const double g[3] = {grad[3 * v], grad[3 * v + 1], grad[3 * v + 2]};
		const double len = std::sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]);
		if (!(len > 0.0) || !std::isfinite(len)) {
			undefined.push_back((uint32_t)v);
			continue;
		}
		for (int a = 0; a < 3; ++a) m_mesh.normals[3 * v + a] = (float)(-g[a] / len);  // density falls outward
	}
	if (undefined.empty()) return;
	// Where the gradient gives no direction, the area-weighted mean of the adjacent faces' normals.
	std::vector<char> wanted(n_vertices, 0);
	for (uint32_t v : undefined) wanted[v] = 1;
	std::vector<double> sum(3 * n_vertices, 0.0);
	const float* p = m_mesh.positions.data();
	for (size_t f = 0; f < m_mesh.n_triangles(); ++f) {
		const uint32_t* tri = &m_mesh.triangles[3 * f];
		if (!wanted[tri[0]] && !wanted[tri[1]] && !wanted[tri[2]]) continue;
		double u[3], w[3];
		for (int a = 0; a < 3; ++a) {
			u[a] = (double)p[3 * tri[1] + a] - p[3 * tri[0] + a];
			w[a] = (double)p[3 * tri[2] + a] - p[3 * tri[0] + a];
		}
		const double n[3] = {u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0]};
		for (int c = 0; c < 3; ++c)
			if (wanted[tri[c]])
				for (int a = 0; a < 3; ++a) sum[3 * tri[c] + a] += n[a];
	}
	for (uint32_t v : undefined) {
		const double* n = &sum[3 * v];
		const double len = std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
		if (len > 0.0)
			for (int a = 0; a < 3; ++a) m_mesh.normals[3 * v + a] = (float)(n[a] / len);
	}
}

Mesh Marcher::run() {
	std::vector<uint32_t> x_edges[2], y_edges[2], z_edges((size_t)m_nx * m_ny);
	for (int p = 0; p < 2; ++p) {
		x_edges[p].resize((size_t)(m_nx - 1) * m_ny);
		y_edges[p].resize((size_t)m_nx * (m_ny - 1));
	}
	make_plane_vertices(0, x_edges[0], y_edges[0]);
	const size_t sx = 1, sy = (size_t)m_nx, sz = (size_t)m_nx * m_ny;
	const size_t corner_step[8] = {0, sx, sy, sx + sy, sz, sz + sx, sz + sy, sz + sx + sy};
	for (int k = 0; k + 1 < m_nz; ++k) {
		const int lo = k & 1, hi = lo ^ 1;  // planes k and k + 1
		make_slab_vertices(k, z_edges);
		make_plane_vertices(k + 1, x_edges[hi], y_edges[hi]);
		for (int j = 0; j + 1 < m_ny; ++j)
			for (int i = 0; i + 1 < m_nx; ++i) {
				const size_t base = m_g.index(i, j, k);
				size_t corner_index[8];
				int mask = 0;
				for (int c = 0; c < 8; ++c) {
					corner_index[c] = base + corner_step[c];
					mask |= inside(corner_index[c]) ? 1 << c : 0;
				}
				if (mask == 0 || mask == 255) continue;
				const uint32_t key = (uint32_t)mask | (joined_faces(mask, corner_index) << 8);
				const uint8_t* edges = m_table.edges[key];
				for (int e = 0; e < 3 * m_table.n_triangles[key]; ++e) {
					const int edge = edges[e], axis = edge / 4, r = edge % 4;
					uint32_t v = kNoVertex;
					if (axis == 0) v = x_edges[(r >> 1) ? hi : lo][(size_t)(j + (r & 1)) * (m_nx - 1) + i];
					else if (axis == 1) v = y_edges[(r >> 1) ? hi : lo][(size_t)j * m_nx + i + (r & 1)];
					else v = z_edges[(size_t)(j + (r >> 1)) * m_nx + i + (r & 1)];
					NERF_CHECK(v != kNoVertex);  // the table names crossed edges only
					m_mesh.triangles.push_back(v);
				}
			}
		if (m_opt.progress) m_opt.progress((double)(k + 1) / (m_nz - 1));
	}
	compute_normals();
	return std::move(m_mesh);
}

} // namespace

Mesh marching_cubes(const ScalarGrid& grid, const MarchingCubesOptions& options) {
	validate_grid(grid, "marching cubes");
	if (!std::isfinite(options.iso)) NERF_FAIL("marching cubes: the iso level " << options.iso << " is not finite");
	if (options.normals == MeshNormals::Gradient && !options.gradient)
		NERF_FAIL("marching cubes: MeshNormals::Gradient needs a gradient function");
	Marcher marcher(grid, options);
	return marcher.run();
}

} // namespace nerf
