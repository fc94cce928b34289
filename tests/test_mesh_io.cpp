// PLY, OBJ and density-volume files read back by readers written here from the formats' descriptions
// (not the writers' code): the PLY header line by line, the counts, the little-endian values byte by byte.
#include "nerf/io/mesh_io.h"
#include "nerf/io/npy.h"
#include "nerf/io/output_file.h"
#include "nerf/io/volume_io.h"

#include "ply_reader.h"
#include "test_data_helpers.h"

#include <nlohmann/json.hpp>
#ifdef NERF_WITH_OPENVDB
#include <openvdb/openvdb.h>
#endif

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

using data_test::require_error;
using data_test::TempDir;
using ply_test::read_bytes;
using ply_test::read_ply;
using ply_test::PlyFile;

namespace {

nerf::Mesh sample_mesh(bool normals, bool colors) {
	nerf::Mesh m;
	// A square pyramid with values that need every bit of a float: an exact round trip or nothing.
	m.positions = {0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 1.f, 1.f, 0.f, 0.f, 1.f, 0.f, 0.5f, 0.5f, 0.7071067811865476f};
	m.positions[0] = 1e-7f;
	m.positions[4] = -3.14159265f;
	m.positions[5] = 123456.789f;
	m.triangles = {0, 2, 1, 0, 3, 2, 0, 1, 4, 1, 2, 4, 2, 3, 4, 3, 0, 4};
	if (normals)
		for (size_t v = 0; v < 5; ++v) {
			const float n[3] = {0.6f, -0.8f * (float)v / 5.f, 0.1f + (float)v};
			m.normals.insert(m.normals.end(), n, n + 3);
		}
	if (colors) m.colors = {0, 1, 2, 127, 128, 129, 254, 255, 3, 10, 200, 30, 255, 0, 255};
	return m;
}

std::vector<std::string> expected_ply_header(size_t v, size_t f, bool normals, bool colors, bool faces) {
	std::vector<std::string> h = {"ply", "format binary_little_endian 1.0", "comment written by nerfcore",
	                              "element vertex " + std::to_string(v), "property float x", "property float y", "property float z"};
	if (normals) h.insert(h.end(), {"property float nx", "property float ny", "property float nz"});
	if (colors) h.insert(h.end(), {"property uchar red", "property uchar green", "property uchar blue"});
	if (faces) h.insert(h.end(), {"element face " + std::to_string(f), "property list uchar int vertex_indices"});
	h.push_back("end_header");
	return h;
}

} // namespace

TEST_CASE("PLY: a mesh round trips through an independent reader, with and without normals and colours", "[io][mesh]") {
	TempDir dir("ply");
	for (int variant = 0; variant < 4; ++variant) {
		const bool normals = variant & 1, colors = variant & 2;
		const nerf::Mesh m = sample_mesh(normals, colors);
		const std::string path = dir / ("m" + std::to_string(variant) + ".ply");
		nerf::write_ply(path, m);
		const PlyFile ply = read_ply(path);
		INFO("normals " << normals << ", colours " << colors);
		CHECK(ply.header_lines == expected_ply_header(5, 6, normals, colors, true));
		REQUIRE(ply.elements.size() == 2);
		const auto& verts = ply.records.at("vertex");
		const auto& faces = ply.records.at("face");
		REQUIRE(verts.size() == 5);
		REQUIRE(faces.size() == 6);
		for (size_t v = 0; v < 5; ++v) {
			REQUIRE(verts[v].size() == 3u + (normals ? 3 : 0) + (colors ? 3 : 0));
			for (int a = 0; a < 3; ++a) CHECK(verts[v][a] == (double)m.positions[3 * v + a]);  // bit-exact floats
			if (normals)
				for (int a = 0; a < 3; ++a) CHECK(verts[v][3 + a] == (double)m.normals[3 * v + a]);
			if (colors)
				for (int a = 0; a < 3; ++a) CHECK(verts[v][(normals ? 6 : 3) + a] == (double)m.colors[3 * v + a]);
		}
		for (size_t f = 0; f < 6; ++f) {
			REQUIRE(faces[f].size() == 4);
			CHECK(faces[f][0] == 3);
			for (int k = 0; k < 3; ++k) CHECK(faces[f][1 + k] == (double)m.triangles[3 * f + k]);
		}
		// The size the header implies: nothing more, nothing less (read_ply checked the end too).
		const size_t header_bytes = read_bytes(path).find("end_header\n") + 11;
		CHECK(read_bytes(path).size() == header_bytes + 5 * (12 + (normals ? 12 : 0) + (colors ? 3 : 0)) + 6 * 13);
	}
}

TEST_CASE("PLY: a point cloud has the vertex element only", "[io][mesh]") {
	TempDir dir("ply_points");
	nerf::PointCloud pc;
	pc.positions = {1.5f, -2.f, 0.25f, 7.f, 8.f, 9.f};
	pc.colors = {255, 128, 0, 1, 2, 3};
	nerf::write_point_cloud_ply(dir / "p.ply", pc);
	PlyFile ply = read_ply(dir / "p.ply");
	CHECK(ply.header_lines == expected_ply_header(2, 0, false, true, false));
	REQUIRE(ply.records.at("vertex").size() == 2);
	CHECK(ply.records.at("vertex")[1] == std::vector<double>{7, 8, 9, 1, 2, 3});

	pc.normals = {0.f, 0.f, 1.f, 1.f, 0.f, 0.f};
	nerf::write_point_cloud_ply(dir / "pn.ply", pc);
	ply = read_ply(dir / "pn.ply");
	CHECK(ply.header_lines == expected_ply_header(2, 0, true, true, false));
	CHECK(ply.records.at("vertex")[0] == std::vector<double>{1.5, -2, 0.25, 0, 0, 1, 255, 128, 0});

	pc.colors.pop_back();
	require_error([&] { nerf::write_point_cloud_ply(dir / "bad.ply", pc); }, {"bad.ply", "colours for 2 points"});
}

TEST_CASE("OBJ: a mesh round trips through an independent reader", "[io][mesh]") {
	TempDir dir("obj");
	for (int variant = 0; variant < 4; ++variant) {
		const bool normals = variant & 1, colors = variant & 2;
		const nerf::Mesh m = sample_mesh(normals, colors);
		const std::string path = dir / ("m" + std::to_string(variant) + ".obj");
		nerf::write_obj(path, m);
		std::ifstream in(path);
		std::string line;
		std::vector<std::vector<float>> v, vn;
		std::vector<std::vector<std::string>> f;
		while (std::getline(in, line)) {
			if (line.empty() || line[0] == '#') continue;
			std::istringstream words(line);
			std::string kind;
			words >> kind;
			std::vector<std::string> rest;
			for (std::string w; words >> w;) rest.push_back(w);
			if (kind == "v" || kind == "vn") {
				std::vector<float> values;
				for (const auto& w : rest) values.push_back(std::strtof(w.c_str(), nullptr));
				(kind == "v" ? v : vn).push_back(values);
			} else if (kind == "f") {
				f.push_back(rest);
			} else {
				FAIL("unexpected OBJ line: " << line);
			}
		}
		INFO("normals " << normals << ", colours " << colors);
		REQUIRE(v.size() == 5);
		REQUIRE(vn.size() == (normals ? 5u : 0u));
		REQUIRE(f.size() == 6);
		for (size_t i = 0; i < 5; ++i) {
			REQUIRE(v[i].size() == (colors ? 6u : 3u));
			for (int a = 0; a < 3; ++a) CHECK(v[i][a] == m.positions[3 * i + a]);  // shortest round-trip text: exact
			if (colors)
				for (int a = 0; a < 3; ++a) {
					CHECK(v[i][3 + a] >= 0.f);
					CHECK(v[i][3 + a] <= 1.f);
					CHECK(std::lround(v[i][3 + a] * 255.0) == m.colors[3 * i + a]);
				}
			if (normals)
				for (int a = 0; a < 3; ++a) CHECK(vn[i][a] == m.normals[3 * i + a]);
		}
		for (size_t i = 0; i < 6; ++i) {
			REQUIRE(f[i].size() == 3);
			for (int k = 0; k < 3; ++k) {
				const std::string one_based = std::to_string(m.triangles[3 * i + k] + 1);
				CHECK(f[i][k] == (normals ? one_based + "//" + one_based : one_based));
			}
		}
	}
}

TEST_CASE("mesh files: a bad path, a bad extension and a bad mesh are named, and an earlier file survives a failed write", "[io][mesh][errors]") {
	TempDir dir("mesh_errors");
	const nerf::Mesh m = sample_mesh(true, true);
	const std::string missing = dir / "no_such_folder/out.ply";
	require_error([&] { nerf::write_ply(missing, m); }, {missing, "No such file or directory"});
	require_error([&] { nerf::write_obj(dir / "no_such_folder/out.obj", m); }, {"no_such_folder/out.obj"});
	require_error([&] { nerf::write_mesh(dir / "out.stl", m); }, {"out.stl", "'.stl'", ".ply or .obj"});
	nerf::write_mesh(dir / "upper.PLY", m);
	CHECK(read_ply(dir / "upper.PLY").records.at("face").size() == 6);

	nerf::Mesh bad = m;
	bad.triangles[4] = 5;
	require_error([&] { nerf::write_ply(dir / "bad.ply", bad); }, {"bad.ply", "triangle 1", "vertex 5 of 5"});
	bad = m;
	bad.normals.resize(6);
	require_error([&] { nerf::write_obj(dir / "bad.obj", bad); }, {"bad.obj", "normals for 5 vertices"});
	CHECK_FALSE(std::filesystem::exists(dir / "bad.ply"));

	// A write that fails on commit (a full disk) leaves the earlier file as it was.
	nerf::write_ply(dir / "keep.ply", m);
	const std::string before = read_bytes(dir / "keep.ply");
	nerf::set_write_failure_for_testing(1);
	require_error([&] { nerf::write_ply(dir / "keep.ply", sample_mesh(false, false)); }, {"keep.ply", "unchanged"});
	nerf::set_write_failure_for_testing(0);
	CHECK(read_bytes(dir / "keep.ply") == before);
	CHECK(nerf::remove_stale_temporaries(dir.str()) == 0);  // nothing left behind
}

TEST_CASE("density volume: the .npy and its side file round trip, x fastest", "[io][volume]") {
	TempDir dir("volume");
	nerf::ScalarGrid g;
	g.nx = 5;
	g.ny = 3;
	g.nz = 4;  // three different sizes pin the axis order
	g.box.min = {-1.f, -0.5f, 0.f};
	g.box.max = {1.f, 0.5f, 3.f};
	g.values.resize(g.size());
	for (int k = 0; k < g.nz; ++k)
		for (int j = 0; j < g.ny; ++j)
			for (int i = 0; i < g.nx; ++i) g.values[g.index(i, j, k)] = 100.f * k + 10.f * j + i + 0.125f;
	const std::string npy = dir / "density.npy";
	nerf::write_density_volume(npy, g, {{"quantity", "test values"}});
	CHECK(nerf::volume_json_path(npy) == dir / "density.json");
	CHECK(nerf::volume_json_path("a/b") == "a/b.json");

	const nerf::NpyArray arr = nerf::load_npy(npy);
	REQUIRE(arr.shape == std::vector<size_t>{4, 3, 5});
	CHECK(arr.dtype == "<f4");
	std::ifstream side_in(dir / "density.json");
	const nlohmann::json side = nlohmann::json::parse(side_in);
	CHECK(side["format"] == "nerfcore density volume");
	CHECK(side["array"] == "density.npy");
	CHECK(side["dtype"] == "float32");
	CHECK(side["shape"] == nlohmann::json::array({4, 3, 5}));
	CHECK(side["axes"] == nlohmann::json::array({"z", "y", "x"}));
	CHECK(side["quantity"] == "test values");
	const std::vector<float> lo = side["box_min"], hi = side["box_max"], step = side["spacing"];
	CHECK(lo == std::vector<float>{-1.f, -0.5f, 0.f});
	CHECK(hi == std::vector<float>{1.f, 0.5f, 3.f});
	CHECK(step == std::vector<float>{0.5f, 0.5f, 1.f});
	// arr[k][j][i] is the sample at box_min + (i, j, k) * spacing: check against the position it claims.
	for (size_t k = 0; k < 4; ++k)
		for (size_t j = 0; j < 3; ++j)
			for (size_t i = 0; i < 5; ++i) {
				const double x = lo[0] + i * step[0], y = lo[1] + j * step[1], z = lo[2] + k * step[2];
				const double expected = 100.0 * (z - lo[2]) / step[2] + 10.0 * (y - lo[1]) / step[1] + (x - lo[0]) / step[0] + 0.125;
				CHECK(arr.data[(k * 3 + j) * 5 + i] == expected);
			}

	require_error([&] { nerf::write_density_volume(dir / "d2.npy", g, {{"shape", "x"}}); }, {"d2.json", "'shape'"});
	nerf::ScalarGrid bad = g;
	bad.values.resize(7);
	require_error([&] { nerf::write_density_volume(dir / "d3.npy", bad); }, {"d3.npy", "7 values"});
	require_error([&] { nerf::write_density_volume(dir / "none/d.npy", g); }, {"none/d.npy"});
}

#ifdef NERF_WITH_OPENVDB
TEST_CASE("vdb: OpenVDB reads back the density grid, its values and its world transform", "[io][volume]") {
	REQUIRE(nerf::vdb_available());
	TempDir dir("vdb");
	nerf::ScalarGrid g;
	g.nx = 5;
	g.ny = 3;
	g.nz = 4;
	g.box.min = {-1.f, -0.5f, 0.f};
	g.box.max = {1.f, 0.5f, 3.f};  // spacing 0.5, 0.5, 1: not cubic
	g.values.resize(g.size());
	size_t nonzero = 0;
	for (int k = 0; k < g.nz; ++k)
		for (int j = 0; j < g.ny; ++j)
			for (int i = 0; i < g.nx; ++i) {
				const float v = (i + j + k) % 3 == 0 ? 0.f : 100.f * k + 10.f * j + i;
				g.values[g.index(i, j, k)] = v;
				nonzero += v != 0.f;
			}
	const std::string path = dir / "d.vdb";
	nerf::write_vdb(path, g);
	openvdb::initialize();
	openvdb::io::File file(path);
	file.open();
	const openvdb::GridBase::Ptr base = file.readGrid("density");
	file.close();
	const openvdb::FloatGrid::Ptr grid = openvdb::gridPtrCast<openvdb::FloatGrid>(base);
	REQUIRE(grid);
	CHECK(grid->getGridClass() == openvdb::GRID_FOG_VOLUME);
	CHECK(grid->activeVoxelCount() == nonzero);  // zeros are background
	const auto voxels = grid->getConstAccessor();
	for (int k = 0; k < g.nz; ++k)
		for (int j = 0; j < g.ny; ++j)
			for (int i = 0; i < g.nx; ++i) {
				CHECK(voxels.getValue(openvdb::Coord(i, j, k)) == g.values[g.index(i, j, k)]);
				const openvdb::Vec3d w = grid->indexToWorld(openvdb::Coord(i, j, k));
				const auto p = g.point(i, j, k);
				for (int a = 0; a < 3; ++a) CHECK(w[a] == Approx(p[a]).margin(1e-6));
			}
	require_error([&] { nerf::write_vdb(dir / "none/d.vdb", g); }, {"none/d.vdb"});
}
#else
TEST_CASE("vdb: a build without OpenVDB says what --vdb needs", "[io][volume]") {
	CHECK_FALSE(nerf::vdb_available());
	nerf::ScalarGrid g;
	g.nx = g.ny = g.nz = 2;
	g.values.assign(8, 1.f);
	require_error([&] { nerf::write_vdb("out.vdb", g); }, {"out.vdb", "needs a build with OpenVDB"});
}
#endif
