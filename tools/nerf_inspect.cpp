// nerf_inspect: load a scene the way training would and print what the loader produced.
//   nerf_inspect --config FILE [overrides...] [--json OUT] [--dump_rays OUT.npy --dump_image I]
// --json, --dump_rays and --dump_image are this tool's own options, parsed (and listed by --help) with
// the training options.
#include "nerf/backend.h"
#include "nerf/common.h"
#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/io/npy.h"
#include "nerf/io/output_file.h"
#include "nerf/model.h"

#include "tool_main.h"

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

namespace {

nlohmann::json pose_json(const nerf::Pose& p) {
	nlohmann::json rows = nlohmann::json::array();
	for (int r = 0; r < 3; ++r) rows.push_back({p[4 * r], p[4 * r + 1], p[4 * r + 2], p[4 * r + 3]});
	return rows;
}

nlohmann::json poses_json(const std::vector<nerf::Pose>& poses) {
	nlohmann::json out = nlohmann::json::array();
	for (const auto& p : poses) out.push_back(pose_json(p));
	return out;
}

nlohmann::json camera_json(const nerf::Camera& cam) {
	return {{"H", cam.H},
	        {"W", cam.W},
	        {"fx", cam.fx},
	        {"fy", cam.fy},
	        {"cx", cam.cx},
	        {"cy", cam.cy},
	        {"camera_model", nerf::lens_model_name(cam.lens.model)},
	        {"k1", cam.lens.k1},
	        {"k2", cam.lens.k2},
	        {"k3", cam.lens.k3},
	        {"k4", cam.lens.k4},
	        {"p1", cam.lens.p1},
	        {"p2", cam.lens.p2},
	        {"pixel_centers", cam.pixel_centers}};
}

// The rays training makes for every pixel of image `image` (the CPU backend's generate_rays on the
// dataset's cameras), written as float32 [H, W, 6]: origin xyz, direction xyz (after NDC where it applies).
void dump_rays(const nerf::Dataset& ds, long image, const std::string& path) {
	if (image < 0 || image >= (long)ds.n_images())
		NERF_FAIL("--dump_image " << image << " is not an image of the dataset (0.." << (long)ds.n_images() - 1 << ")");
	const nerf::Camera& cam = ds.cameras[image];
	const size_t n_rays = (size_t)cam.H * cam.W;
	auto backend = nerf::create_cpu_backend();
	const nerf::CameraBuffers cameras = nerf::upload_cameras(*backend, ds.poses, ds.cameras);
	std::vector<uint32_t> ids(n_rays);
	std::iota(ids.begin(), ids.end(), cam.first_pixel);
	std::vector<float> o(3 * n_rays), d(3 * n_rays), v(3 * n_rays);
	backend->generate_rays(o.data(), d.data(), v.data(), ids.data(), n_rays, cameras.set());
	std::vector<float> out(6 * n_rays);
	for (size_t r = 0; r < n_rays; ++r)
		for (int k = 0; k < 3; ++k) {
			out[6 * r + k] = o[3 * r + k];
			out[6 * r + 3 + k] = d[3 * r + k];
		}
	nerf::save_npy(path, out.data(), {(size_t)cam.H, (size_t)cam.W, 6});
	std::printf("wrote        %s: rays of image %ld (%s), %d x %d x 6 float32\n", path.c_str(), image,
	            ds.image_paths.empty() ? "" : ds.image_paths[image].c_str(), cam.H, cam.W);
}

int run(int argc, char** argv) {
	std::string json_path, rays_path;
	long dump_image = -1;
	nerf::Config cfg;
	CLI::Option* dump_image_option = nullptr;
	auto own_options = [&](CLI::App& app) {
		const char* group = "nerf_inspect's own options";
		app.add_option("--json", json_path, "write everything the loader produced as JSON to this file")->group(group);
		app.add_option("--dump_rays", rays_path, "write image --dump_image's rays as float32 [H, W, 6] (origin xyz, "
		               "direction xyz, in the frame training uses) to this .npy file")->group(group);
		dump_image_option = app.add_option("--dump_image", dump_image, "the image whose rays --dump_rays writes")->group(group);
	};
	if (!nerf::parse_config(argc, argv, cfg, "Load a dataset as training would and print its cameras and splits.",
	                        own_options))
		return 0;
	if (dump_image_option->count() && dump_image < 0)
		NERF_FAIL("command line: --dump_image expects an image index, got " << dump_image);
	if (rays_path.empty() != (dump_image < 0)) NERF_FAIL("command line: --dump_rays OUT.npy and --dump_image I go together");

	const nerf::Dataset ds = nerf::load_dataset(cfg);
	const size_t n = ds.n_images();

	double centroid[3] = {0, 0, 0};
	for (const auto& p : ds.poses)
		for (int k = 0; k < 3; ++k) centroid[k] += p[4 * k + 3] / (double)n;
	double min_d = INFINITY, max_d = 0, mean_d = 0;
	for (const auto& p : ds.poses) {
		double d2 = 0;
		for (int k = 0; k < 3; ++k) d2 += (p[4 * k + 3] - centroid[k]) * (p[4 * k + 3] - centroid[k]);
		const double d = std::sqrt(d2);
		min_d = std::min(min_d, d);
		max_d = std::max(max_d, d);
		mean_d += d / (double)n;
	}

	std::printf("dataset      %s (%s)\n", cfg.datadir.c_str(), cfg.dataset_type.c_str());
	std::printf("images       %zu of %d x %d (H x W)\n", n, ds.H, ds.W);
	if (!ds.resize_note.empty()) std::printf("resized      %s\n", ds.resize_note.c_str());
	std::printf("focal        %.6f\n", ds.focal);
	std::printf("K            [[%.4f, %.4f, %.4f], [%.4f, %.4f, %.4f], [%.4f, %.4f, %.4f]]\n", ds.K[0], ds.K[1], ds.K[2],
	            ds.K[3], ds.K[4], ds.K[5], ds.K[6], ds.K[7], ds.K[8]);
	size_t lens_count[3] = {0, 0, 0}, other_size = 0, centred = 0;
	for (const auto& cam : ds.cameras) {
		++lens_count[(int)cam.lens.model];
		other_size += cam.H != ds.H || cam.W != ds.W;
		centred += cam.pixel_centers;
	}
	std::printf("cameras      %zu pinhole, %zu OPENCV, %zu OPENCV_FISHEYE; %zu of another size; rays through pixel %s\n",
	            lens_count[0], lens_count[1], lens_count[2], other_size, centred ? "centres" : "corners (the reference's)");
	std::printf("near / far   %.6f / %.6f\n", ds.near, ds.far);
	std::printf("NDC          %s\n", ds.ndc ? "yes (forward-facing LLFF; near/far are in NDC)" : "no");
	std::printf("splits       train %zu, val %zu, test %zu\n", ds.i_train.size(), ds.i_val.size(), ds.i_test.size());
	std::printf("render path  %zu poses\n", ds.render_poses.size());
	std::printf("camera centres: centroid (%.4f, %.4f, %.4f), distance from it min %.4f max %.4f mean %.4f\n",
	            centroid[0], centroid[1], centroid[2], min_d, max_d, mean_d);
	if (!ds.bounds.empty()) {
		float bmin = INFINITY, bmax = -INFINITY;
		for (const auto& b : ds.bounds) {
			bmin = std::min(bmin, b[0]);
			bmax = std::max(bmax, b[1]);
		}
		std::printf("bounds       min near %.6f, max far %.6f\n", bmin, bmax);
	}

	if (!json_path.empty()) {
		nlohmann::json out;
		out["H"] = ds.H;
		out["W"] = ds.W;
		out["focal"] = ds.focal;
		out["K"] = {{ds.K[0], ds.K[1], ds.K[2]}, {ds.K[3], ds.K[4], ds.K[5]}, {ds.K[6], ds.K[7], ds.K[8]}};
		out["near"] = ds.near;
		out["far"] = ds.far;
		out["ndc"] = ds.ndc;
		out["poses"] = poses_json(ds.poses);
		if (!ds.bounds.empty()) {
			nlohmann::json bounds = nlohmann::json::array();
			for (const auto& b : ds.bounds) bounds.push_back({b[0], b[1]});
			out["bounds"] = bounds;
		}
		out["render_poses"] = poses_json(ds.render_poses);
		out["i_train"] = ds.i_train;
		out["i_val"] = ds.i_val;
		out["i_test"] = ds.i_test;
		std::vector<double> image_mean(n);
		for (size_t i = 0; i < n; ++i) {
			const size_t floats = (size_t)ds.cameras[i].H * ds.cameras[i].W * 3;
			double sum = 0;
			const float* img = ds.image(i);
			for (size_t k = 0; k < floats; ++k) sum += img[k];
			image_mean[i] = sum / (double)floats;
		}
		out["image_mean"] = image_mean;
		out["image_paths"] = ds.image_paths;
		nlohmann::json cameras = nlohmann::json::array();
		for (const auto& cam : ds.cameras) cameras.push_back(camera_json(cam));
		out["cameras"] = cameras;
		nerf::write_file_atomic(json_path, out.dump(1) + "\n");
		std::printf("wrote        %s\n", json_path.c_str());
	}
	if (!rays_path.empty()) dump_rays(ds, dump_image, rays_path);
	return 0;
}

} // namespace

int main(int argc, char** argv) { return nerf::tool::tool_main("nerf_inspect", argc, argv, run); }
