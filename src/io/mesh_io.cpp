// PLY and OBJ writers. The bytes are assembled in a buffer that is handed to AtomicFile a megabyte at a
// time, so a large mesh never needs a second copy of itself in memory.
#include "nerf/io/mesh_io.h"

#include "nerf/common.h"
#include "nerf/io/output_file.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <limits>

namespace nerf {
namespace {

class BufferedWriter {
public:
	explicit BufferedWriter(const std::string& path) : m_file(path) { m_buffer.reserve(kChunk + 256); }

	void bytes(const void* data, size_t n) {
		m_buffer.append(static_cast<const char*>(data), n);
		if (m_buffer.size() >= kChunk) flush();
	}
	void text(const std::string& s) { bytes(s.data(), s.size()); }
	void u8(uint8_t v) { bytes(&v, 1); }
	// Little-endian whatever the host is: the byte order is the format's, not the machine's.
	void u32_le(uint32_t v) {
		const unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
		bytes(b, 4);
	}
	void f32_le(float f) {
		uint32_t v;
		std::memcpy(&v, &f, 4);
		u32_le(v);
	}
	/// The shortest decimal that reads back as the same float.
	void number(float f) {
		char buf[32];
		const auto result = std::to_chars(buf, buf + sizeof buf, f);
		bytes(buf, (size_t)(result.ptr - buf));
	}
	void number(uint64_t v) {
		char buf[24];
		const auto result = std::to_chars(buf, buf + sizeof buf, v);
		bytes(buf, (size_t)(result.ptr - buf));
	}
	void commit() {
		flush();
		m_file.commit();
	}

private:
	static constexpr size_t kChunk = 1 << 20;
	void flush() {
		m_file.write(m_buffer.data(), m_buffer.size());
		m_buffer.clear();
	}
	AtomicFile m_file;
	std::string m_buffer;
};

std::string ply_vertex_header(size_t n_vertices, bool normals, bool colors) {
	std::string h = "ply\nformat binary_little_endian 1.0\ncomment written by nerfcore\n";
	h += "element vertex " + std::to_string(n_vertices) + "\n";
	h += "property float x\nproperty float y\nproperty float z\n";
	if (normals) h += "property float nx\nproperty float ny\nproperty float nz\n";
	if (colors) h += "property uchar red\nproperty uchar green\nproperty uchar blue\n";
	return h;
}

void write_ply_vertices(BufferedWriter& out, size_t n, const std::vector<float>& positions, const std::vector<float>& normals,
                        const std::vector<uint8_t>& colors) {
	for (size_t v = 0; v < n; ++v) {
		for (int a = 0; a < 3; ++a) out.f32_le(positions[3 * v + a]);
		if (!normals.empty())
			for (int a = 0; a < 3; ++a) out.f32_le(normals[3 * v + a]);
		if (!colors.empty())
			for (int a = 0; a < 3; ++a) out.u8(colors[3 * v + a]);
	}
}

std::string lower_extension(const std::string& path) {
	const size_t slash = path.find_last_of('/');
	const size_t dot = path.find_last_of('.');
	if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
	std::string ext = path.substr(dot);
	for (char& c : ext) c = (char)std::tolower((unsigned char)c);
	return ext;
}

} // namespace

void write_ply(const std::string& path, const Mesh& mesh) {
	validate_mesh(mesh, path.c_str());
	const size_t n_vertices = mesh.n_vertices(), n_faces = mesh.n_triangles();
	if (n_vertices > (size_t)std::numeric_limits<int32_t>::max())
		NERF_FAIL(path << ": " << n_vertices << " vertices are more than PLY's int indices hold");
	BufferedWriter out(path);
	out.text(ply_vertex_header(n_vertices, !mesh.normals.empty(), !mesh.colors.empty()));
	out.text("element face " + std::to_string(n_faces) + "\nproperty list uchar int vertex_indices\nend_header\n");
	write_ply_vertices(out, n_vertices, mesh.positions, mesh.normals, mesh.colors);
	for (size_t f = 0; f < n_faces; ++f) {
		out.u8(3);
		for (int k = 0; k < 3; ++k) out.u32_le(mesh.triangles[3 * f + k]);  // < 2^31: the same bits as the int
	}
	out.commit();
}

void write_point_cloud_ply(const std::string& path, const PointCloud& points) {
	validate_point_cloud(points, path.c_str());
	BufferedWriter out(path);
	out.text(ply_vertex_header(points.n_points(), !points.normals.empty(), !points.colors.empty()));
	out.text("end_header\n");
	write_ply_vertices(out, points.n_points(), points.positions, points.normals, points.colors);
	out.commit();
}

void write_obj(const std::string& path, const Mesh& mesh) {
	validate_mesh(mesh, path.c_str());
	const size_t n_vertices = mesh.n_vertices(), n_faces = mesh.n_triangles();
	const bool normals = !mesh.normals.empty(), colors = !mesh.colors.empty();
	BufferedWriter out(path);
	out.text("# written by nerfcore: " + std::to_string(n_vertices) + " vertices, " + std::to_string(n_faces) + " triangles\n");
	for (size_t v = 0; v < n_vertices; ++v) {
		out.text("v");
		for (int a = 0; a < 3; ++a) {
			out.text(" ");
			out.number(mesh.positions[3 * v + a]);
		}
		if (colors)
			for (int a = 0; a < 3; ++a) {
				out.text(" ");
				out.number((float)mesh.colors[3 * v + a] / 255.0f);
			}
		out.text("\n");
	}
	if (normals)
		for (size_t v = 0; v < n_vertices; ++v) {
			out.text("vn");
			for (int a = 0; a < 3; ++a) {
				out.text(" ");
				out.number(mesh.normals[3 * v + a]);
			}
			out.text("\n");
		}
	for (size_t f = 0; f < n_faces; ++f) {
		out.text("f");
		for (int k = 0; k < 3; ++k) {
			const uint64_t index = (uint64_t)mesh.triangles[3 * f + k] + 1;
			out.text(" ");
			out.number(index);
			if (normals) {
				out.text("//");
				out.number(index);
			}
		}
		out.text("\n");
	}
	out.commit();
}

void write_mesh(const std::string& path, const Mesh& mesh) {
	const std::string ext = lower_extension(path);
	if (ext == ".ply") write_ply(path, mesh);
	else if (ext == ".obj") write_obj(path, mesh);
	else NERF_FAIL(path << ": unknown mesh format '" << ext << "' (the name must end in .ply or .obj)");
}

} // namespace nerf
