#include "nerf/common.h"
#include "nerf/geometry/mesh.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace nerf {

std::vector<float> render_mesh_preview(const Mesh& mesh, const float* c2w, int width, int height, float focal) {
	validate_mesh(mesh, "preview mesh");
	if (width < 1 || height < 1 || !(focal > 0.0f)) NERF_FAIL("preview: needs a positive image size and focal length");
	const size_t V = mesh.n_vertices();
	struct Screen {
		double x, y, depth;
	};
	std::vector<Screen> screen(V);
	const double cx = 0.5 * width, cy = 0.5 * height;
	for (size_t v = 0; v < V; ++v) {
		double rel[3], c[3];
		for (int k = 0; k < 3; ++k) rel[k] = (double)mesh.positions[3 * v + k] - c2w[4 * k + 3];
		for (int a = 0; a < 3; ++a) c[a] = rel[0] * c2w[a] + rel[1] * c2w[4 + a] + rel[2] * c2w[8 + a];
		screen[v] = {cx + focal * c[0] / -c[2], cy - focal * c[1] / -c[2], -c[2]};
	}
	std::vector<double> zbuffer((size_t)width * height, INFINITY);
	std::vector<float> image((size_t)width * height * 3, 1.0f);
	const double view_dir[3] = {-c2w[2], -c2w[6], -c2w[10]};  // the camera's -z in world space
	for (size_t t = 0; t < mesh.n_triangles(); ++t) {
		const uint32_t* f = &mesh.triangles[3 * t];
		const Screen &a = screen[f[0]], &b = screen[f[1]], &c = screen[f[2]];
		if (a.depth <= 0 || b.depth <= 0 || c.depth <= 0) continue;
		const double area = (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
		if (area == 0) continue;
		// Flat shading by the face's own normal: a headlight, both sides lit.
		double e1[3], e2[3], n[3];
		for (int k = 0; k < 3; ++k) {
			e1[k] = (double)mesh.positions[3 * f[1] + k] - mesh.positions[3 * f[0] + k];
			e2[k] = (double)mesh.positions[3 * f[2] + k] - mesh.positions[3 * f[0] + k];
		}
		n[0] = e1[1] * e2[2] - e1[2] * e2[1];
		n[1] = e1[2] * e2[0] - e1[0] * e2[2];
		n[2] = e1[0] * e2[1] - e1[1] * e2[0];
		const double len = std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
		const double lambert = len > 0 ? std::abs(n[0] * view_dir[0] + n[1] * view_dir[1] + n[2] * view_dir[2]) / len : 1.0;
		const float shade = (float)(0.3 + 0.7 * lambert);
		const int x0 = std::max(0, (int)std::floor(std::min({a.x, b.x, c.x})));
		const int x1 = std::min(width - 1, (int)std::ceil(std::max({a.x, b.x, c.x})));
		const int y0 = std::max(0, (int)std::floor(std::min({a.y, b.y, c.y})));
		const int y1 = std::min(height - 1, (int)std::ceil(std::max({a.y, b.y, c.y})));
		for (int y = y0; y <= y1; ++y)
			for (int x = x0; x <= x1; ++x) {
				const double px = x + 0.5, py = y + 0.5;
				const double wa = ((b.x - px) * (c.y - py) - (b.y - py) * (c.x - px)) / area;
				const double wb = ((c.x - px) * (a.y - py) - (c.y - py) * (a.x - px)) / area;
				const double wc = 1.0 - wa - wb;
				if (wa < 0 || wb < 0 || wc < 0) continue;
				const double z = 1.0 / (wa / a.depth + wb / b.depth + wc / c.depth);
				const size_t p = (size_t)y * width + x;
				if (z >= zbuffer[p]) continue;
				zbuffer[p] = z;
				for (int k = 0; k < 3; ++k) {
					const double colour = mesh.colors.empty() ? 0.6
					                                          : (wa * mesh.colors[3 * f[0] + k] + wb * mesh.colors[3 * f[1] + k] +
					                                             wc * mesh.colors[3 * f[2] + k]) / 255.0;
					image[3 * p + k] = std::clamp((float)colour * shade, 0.0f, 1.0f);
				}
			}
	}
	return image;
}

} // namespace nerf
