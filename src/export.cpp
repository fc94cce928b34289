#include "nerf/export.h"

#include "nerf/backend.h"
#include "nerf/math/rays.h"
#include "nerf/model.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <vector>

namespace nerf {

float default_mesh_threshold(const std::string& field_type) { return field_type == "ngp" ? 2.5f : 10.0f; }

GridBox parse_export_box(const std::string& text, const std::string& what) {
	std::vector<float> v;
	std::stringstream in(text);
	std::string item;
	while (std::getline(in, item, ',')) {
		try {
			size_t used = 0;
			v.push_back(std::stof(item, &used));
			if (item.find_first_not_of(" \t", used) != std::string::npos) throw std::invalid_argument(item);
		} catch (const std::exception&) {
			NERF_FAIL(what << " \"" << text << "\": \"" << item << "\" is not a number (expected xmin,ymin,zmin,xmax,ymax,zmax)");
		}
	}
	if (v.size() != 6) NERF_FAIL(what << " \"" << text << "\": expected six numbers xmin,ymin,zmin,xmax,ymax,zmax, got " << v.size());
	GridBox box;
	for (int d = 0; d < 3; ++d) {
		box.min[d] = v[d];
		box.max[d] = v[d + 3];
		if (!std::isfinite(box.min[d]) || !std::isfinite(box.max[d]))
			NERF_FAIL(what << " \"" << text << "\": the bounds must be finite");
		if (!(box.max[d] > box.min[d]))
			NERF_FAIL(what << " \"" << text << "\": a box of zero volume (" << "xyz"[d] << " max " << box.max[d]
			               << " is not above min " << box.min[d] << ")");
	}
	return box;
}

ScalarGrid sample_density_grid(FieldQuery& field, const GridBox& box, int resolution, const ProgressFn& progress) {
	if (resolution < kMinExportResolution || resolution > kMaxExportResolution)
		NERF_FAIL("resolution must be in [" << kMinExportResolution << ", " << kMaxExportResolution << "] samples per axis, got "
		                                     << resolution);
	for (int d = 0; d < 3; ++d)
		if (!(box.max[d] > box.min[d]) || !std::isfinite(box.min[d]) || !std::isfinite(box.max[d]))
			NERF_FAIL("the box must have max > min (finite) on every axis: a box of zero volume on " << "xyz"[d]);
	ScalarGrid grid;
	grid.nx = grid.ny = grid.nz = resolution;
	grid.box = box;
	grid.values.resize(grid.size());
	const size_t total = grid.size();
	const size_t batch = std::max<size_t>(field.batch_size(), (size_t)resolution);
	std::vector<float> points;
	for (size_t begin = 0; begin < total; begin += batch) {
		const size_t m = std::min(batch, total - begin);
		points.resize(3 * m);
		for (size_t q = 0; q < m; ++q) {
			const size_t flat = begin + q;
			const int i = (int)(flat % (size_t)resolution), j = (int)(flat / (size_t)resolution % (size_t)resolution),
			          k = (int)(flat / ((size_t)resolution * (size_t)resolution));
			const std::array<float, 3> p = grid.point(i, j, k);
			std::copy(p.begin(), p.end(), points.begin() + 3 * q);
		}
		field.density(points.data(), m, grid.values.data() + begin);
		if (progress) progress((double)(begin + m) / (double)total);
	}
	return grid;
}

Mesh extract_mesh(FieldQuery& field, const ScalarGrid& grid, const MeshExportOptions& options) {
	validate_grid(grid, "density grid");
	if (!std::isfinite(options.threshold)) NERF_FAIL("threshold must be a finite density, got " << options.threshold);
	const auto [lo, hi] = std::minmax_element(grid.values.begin(), grid.values.end());
	if (!(*hi > options.threshold) || !(*lo <= options.threshold))
		NERF_FAIL("no sample of the " << grid.nx << "^3 grid crosses density " << options.threshold << " (the density there spans ["
		                              << *lo << ", " << *hi << "]): the mesh would be empty; choose a threshold inside that range");
	const std::array<float, 3> cell = grid.cell_size();
	const float h = 0.5f * std::min({cell[0], cell[1], cell[2]});
	MarchingCubesOptions mc;
	mc.iso = options.threshold;
	mc.normals = MeshNormals::Gradient;
	mc.gradient = [&](const float* points, size_t n, float* gradients) { field.density_gradient(points, n, h, gradients); };
	mc.progress = options.progress;
	Mesh mesh = marching_cubes(grid, mc);
	if (options.largest_component) mesh = largest_component(mesh);

	// What a camera in front of the surface sees: a short ray along the inward normal through the vertex,
	// from two cells outside to two cells inside, composited as rendering does and normalised by its
	// opacity. The colour at the vertex alone is the field's at density = threshold, the faint outer
	// fringe of the surface, where the colour network has seen little weight in training.
	const size_t V = mesh.n_vertices();
	if (V == 0) return mesh;
	constexpr int kSamples = 32;
	const float reach = 8.0f * std::max({cell[0], cell[1], cell[2]});
	const float dt = 2.0f * reach / (float)kSamples;
	const size_t per_batch = std::max<size_t>(field.batch_size() / kSamples, 1);
	std::vector<float> points, dirs, density, rgb;
	mesh.colors.resize(3 * V);
	for (size_t begin = 0; begin < V; begin += per_batch) {
		const size_t m = std::min(per_batch, V - begin);
		points.resize(3 * m * kSamples);
		dirs.resize(3 * m * kSamples);
		density.resize(m * kSamples);
		rgb.resize(3 * m * kSamples);
		for (size_t v = 0; v < m; ++v) {
			const float* position = &mesh.positions[3 * (begin + v)];
			const float* normal = &mesh.normals[3 * (begin + v)];
			float view[3] = {-normal[0], -normal[1], -normal[2]};
			if (!options.camera_centres.empty()) {
				// The camera most in front of the surface: the largest cosine between the normal and the
				// direction from the vertex to the camera.
				float best = -2.0f;
				for (const std::array<float, 3>& centre : options.camera_centres) {
					float to[3], len = 0.0f;
					for (int c = 0; c < 3; ++c) {
						to[c] = centre[c] - position[c];
						len += to[c] * to[c];
					}
					len = std::sqrt(len);
					if (!(len > 0.0f)) continue;
					const float cosine = (to[0] * normal[0] + to[1] * normal[1] + to[2] * normal[2]) / len;
					if (cosine > best) {
						best = cosine;
						for (int c = 0; c < 3; ++c) view[c] = -to[c] / len;
					}
				}
			}
			for (int k = 0; k < kSamples; ++k) {
				const size_t q = v * kSamples + k;
				const float t = -reach + ((float)k + 0.5f) * dt;  // along the view ray, through the vertex
				for (int c = 0; c < 3; ++c) {
					points[3 * q + c] = position[c] + t * view[c];
					dirs[3 * q + c] = view[c];
				}
			}
		}
		field.density_and_colour(points.data(), dirs.data(), m * kSamples, density.data(), rgb.data());
		for (size_t v = 0; v < m; ++v) {
			double transmittance = 1.0, weight_sum = 0.0, colour[3] = {0.0, 0.0, 0.0};
			for (int k = 0; k < kSamples; ++k) {
				const size_t q = v * kSamples + k;
				const double alpha = 1.0 - std::exp(-(double)density[q] * dt);
				const double w = transmittance * alpha;
				for (int c = 0; c < 3; ++c) colour[c] += w * rgb[3 * q + c];
				weight_sum += w;
				transmittance *= 1.0 - alpha;
			}
			// No opacity on the segment (a vertex the normal misses): the field's colour at the vertex.
			const size_t at_vertex = v * kSamples + kSamples / 2;
			for (int c = 0; c < 3; ++c) {
				const double value = weight_sum > 1e-6 ? colour[c] / weight_sum : rgb[3 * at_vertex + c];
				mesh.colors[3 * (begin + v) + c] = (uint8_t)std::lround(255.0 * std::clamp(value, 0.0, 1.0));
			}
		}
	}
	return mesh;
}

PointCloud extract_point_cloud(FieldQuery& field, const Dataset& data, const PointCloudOptions& options) {
	if (data.i_train.empty()) NERF_FAIL("the dataset has no training views to take the point cloud's rays from");
	if (options.n_points == 0) NERF_FAIL("n_points must be >= 1");
	std::vector<uint32_t> pixels;
	for (int image : data.i_train) {
		const Camera& cam = data.cameras[image];
		for (uint32_t p = 0; p < (uint32_t)cam.H * (uint32_t)cam.W; ++p) pixels.push_back(cam.first_pixel + p);
	}
	// Without replacement, the first n of a seeded shuffle (a partial Fisher-Yates), then in pixel order.
	const size_t n = std::min(options.n_points, pixels.size());
	std::mt19937_64 rng(options.seed);
	for (size_t i = 0; i < n && n < pixels.size(); ++i) {
		std::uniform_int_distribution<size_t> pick(i, pixels.size() - 1);
		std::swap(pixels[i], pixels[pick(rng)]);
	}
	pixels.resize(n);
	std::sort(pixels.begin(), pixels.end());

	NerfModel& model = field.model();
	Backend& backend = model.backend();
	const CameraBuffers cameras = upload_cameras(backend, data.poses, data.cameras);
	const RenderSettings settings = RenderSettings::from_config(model.config(), data, false);
	const int chunk = options.chunk > 0 ? options.chunk : model.config().chunk;
	const CameraSet host_set{data.poses.front().data(), data.cameras.data(), (uint32_t)data.cameras.size()};
	// Pieces of a few chunks, so that progress moves and host memory stays bounded.
	const size_t piece = std::max<size_t>((size_t)chunk * 8, 1 << 16);
	Buffer<uint32_t> ids = backend.allocate<uint32_t>(std::min(piece, n));
	PointCloud cloud;
	for (size_t begin = 0; begin < n; begin += piece) {
		const size_t m = std::min(piece, n - begin);
		backend.upload(ids.data(), pixels.data() + begin, m * sizeof(uint32_t));
		const RenderedRays out = model.render(ids.data(), m, cameras.set(), settings, chunk);
		for (size_t r = 0; r < m; ++r) {
			if (!(out.acc[r] > options.min_acc)) continue;
			float o[3], d[3], viewdir[3];
			pixel_ray(o, d, viewdir, pixels[begin + r], host_set);
			for (int c = 0; c < 3; ++c) {
				cloud.positions.push_back(o[c] + out.depth[r] * d[c]);
				cloud.colors.push_back((uint8_t)std::lround(255.0f * std::clamp(out.rgb[3 * r + c], 0.0f, 1.0f)));
			}
		}
		if (options.progress) options.progress((double)(begin + m) / (double)n);
	}
	if (cloud.positions.empty())
		NERF_FAIL("none of the " << n << " rendered rays has opacity above " << options.min_acc << ": the point cloud would be empty");
	return cloud;
}

} // namespace nerf
