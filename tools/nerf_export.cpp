// nerf_export: a trained checkpoint as files other programs open: a coloured mesh (PLY or OBJ), a
// coloured point cloud (PLY), the density on a grid (.npy with a JSON side file, and .vdb in a build
// with OpenVDB). Everything it needs comes from the checkpoint; --points also reads the dataset.
#include "nerf/checkpoint.h"
#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/export.h"
#include "nerf/geometry/mesh.h"
#include "nerf/io/image.h"
#include "nerf/io/mesh_io.h"
#include "nerf/io/volume_io.h"
#include "nerf/progress.h"
#include "nerf/query.h"

#include "tool_main.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

namespace fs = std::filesystem;

namespace {

struct Options {
	std::string ckpt, mesh, preview, points, density, vdb, box, device = "auto", datadir;
	int resolution = 256, threads = 0;
	float threshold = NAN;
	bool largest_component = false, quiet = false;
	long long n_points = 1000000;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string lower_extension(const std::string& path) {
	std::string ext = fs::path(path).extension().string();
	std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return (char)std::tolower(c); });
	return ext;
}

/// A progress bar over `steps` steps fed by fractions (the bar of nerf_train, without loss or PSNR).
struct FractionBar {
	FractionBar(const char* tag, long steps, bool quiet)
	    : steps(steps), bar(1, steps, (int)std::max(1L, steps / 4), quiet, stdout, nerf::Progress::Mode::Auto,
	                        nerf::ProgressLabels{tag, "Part", "part", false, false}) {
		bar.start();
	}
	nerf::ProgressFn fn() {
		return [this](double fraction) {
			const long step = std::clamp((long)std::ceil(fraction * (double)steps - 1e-9), 1L, steps);
			if (step > last) bar.update(last = step, 0.0, 0.0);
		};
	}
	void finish() { bar.finish(); }
	long steps, last = 0;
	nerf::Progress bar;
};

/// The preview's camera: the Blender render path's view at theta 30 and phi -30 degrees (above the scene,
/// looking at the box's centre), at the distance that puts lego's [-1.5, 1.5]^3 at the path's radius 4.
nerf::Pose preview_pose(const nerf::GridBox& box) {
	nerf::Pose pose = nerf::blender_render_path(12)[7];
	double half_diagonal = 0, centre[3];
	for (int d = 0; d < 3; ++d) {
		centre[d] = 0.5 * ((double)box.min[d] + box.max[d]);
		half_diagonal += 0.25 * ((double)box.max[d] - box.min[d]) * ((double)box.max[d] - box.min[d]);
	}
	const double radius = 4.0 / std::sqrt(3.0 * 1.5 * 1.5) * std::sqrt(half_diagonal);
	const double norm = std::sqrt((double)pose[3] * pose[3] + (double)pose[7] * pose[7] + (double)pose[11] * pose[11]);
	for (int d = 0; d < 3; ++d) pose[4 * d + 3] = (float)(centre[d] + pose[4 * d + 3] / norm * radius);
	return pose;
}

/// The training cameras' centres, for the vertex colours (each vertex seen from the camera most in front
/// of it); none, with a note, when the run's dataset is not where its config says (nor at --datadir).
std::vector<std::array<float, 3>> training_camera_centres(nerf::Config cfg, const Options& opt) {
	if (!opt.datadir.empty()) cfg.datadir = opt.datadir;
	cfg.quiet = true;
	std::vector<std::array<float, 3>> centres;
	try {
		const nerf::Dataset data = nerf::load_dataset(cfg);
		for (int i : data.i_train) centres.push_back({data.poses[i][3], data.poses[i][7], data.poses[i][11]});
	} catch (const nerf::Error& e) {
		if (!opt.quiet)
			std::printf("note: without the training cameras (%s), vertex colours are seen along the inward normal\n", e.what());
	}
	return centres;
}

int run(int argc, char** argv) {
	Options opt;
	CLI::App app{"nerf_export: a nerfcore checkpoint as a mesh, a point cloud or a density volume"};
	nerf::tool::apply_command_line_rules(app);
	app.add_option("--ckpt", opt.ckpt, "checkpoint file (.safetensors) written by nerf_train, or a run folder (its newest)")
	    ->required();
	app.add_option("--mesh", opt.mesh, "write a coloured mesh of the density level --threshold: OUT.ply (binary) or OUT.obj");
	app.add_option("--preview", opt.preview, "with --mesh: also a 400x400 PNG of the mesh seen from above the box (vertex colours, headlight)");
	app.add_option("--points", opt.points, "write a coloured point cloud (PLY) from the training views' expected depths");
	app.add_option("--density", opt.density, "write the density grid as float32 OUT.npy [z, y, x] (x fastest) and OUT.json (its box)");
	app.add_option("--vdb", opt.vdb, "write the density grid as an OpenVDB float grid named density (needs a build with OpenVDB)");
	app.add_option("--resolution", opt.resolution, "samples per axis of the density grid (16 to 1024)")->capture_default_str();
	app.add_option("--box", opt.box, "the grid's box xmin,ymin,zmin,xmax,ymax,zmax (default: the box the field was trained in)");
	app.add_option("--threshold", opt.threshold, "the mesh's density level (default: 10 for model nerf, ReLU(sigma); 2.5 for ngp, exp density)")
	    ->default_str("per model");
	app.add_flag("--largest_component", opt.largest_component, "keep only the mesh's largest connected part (drops floaters)");
	app.add_option("--n_points", opt.n_points, "rays rendered for --points (pixels of the training views)")->capture_default_str();
	app.add_option("--datadir", opt.datadir, "dataset folder for --points (default: the checkpoint's config)");
	app.add_option("--device", opt.device, "cpu, cuda or auto")->capture_default_str();
	app.add_option("--threads", opt.threads, "CPU threads (0: all cores)");
	app.add_flag("--quiet", opt.quiet, "print nothing but errors");
	if (const int rc = nerf::tool::parse_command_line(app, argc, argv); rc >= 0) return rc;

	// Everything that can be checked before the long part is checked first.
	if (opt.mesh.empty() && opt.points.empty() && opt.density.empty() && opt.vdb.empty())
		NERF_FAIL("command line: nothing to export: give --mesh, --points, --density and/or --vdb");
	if (opt.resolution < nerf::kMinExportResolution || opt.resolution > nerf::kMaxExportResolution)
		NERF_FAIL("command line: --resolution must be in [" << nerf::kMinExportResolution << ", " << nerf::kMaxExportResolution
		                                                    << "] samples per axis, got " << opt.resolution);
	if (!opt.mesh.empty() && lower_extension(opt.mesh) != ".ply" && lower_extension(opt.mesh) != ".obj")
		NERF_FAIL("command line: --mesh " << opt.mesh << ": the file name must end in .ply or .obj");
	if (!opt.preview.empty() && opt.mesh.empty()) NERF_FAIL("command line: --preview pictures the mesh: give --mesh too");
	if (!opt.preview.empty() && lower_extension(opt.preview) != ".png")
		NERF_FAIL("command line: --preview " << opt.preview << ": the file name must end in .png");
	if (!opt.points.empty() && lower_extension(opt.points) != ".ply")
		NERF_FAIL("command line: --points " << opt.points << ": the file name must end in .ply");
	if (!opt.vdb.empty() && !nerf::vdb_available())
		NERF_FAIL("command line: --vdb needs a build with OpenVDB (Debian: libopenvdb-dev and libboost-dev, then "
		          "cmake -DNERF_OPENVDB=ON); --density writes the same grid as .npy");
	if (!std::isnan(opt.threshold) && !std::isfinite(opt.threshold))
		NERF_FAIL("command line: --threshold must be a finite density, got " << opt.threshold);
	if (opt.n_points < 1) NERF_FAIL("command line: --n_points must be >= 1, got " << opt.n_points);
	if (opt.threads < 0) NERF_FAIL("command line: --threads must be >= 0, got " << opt.threads);
	nerf::GridBox box;
	if (!opt.box.empty()) box = nerf::parse_export_box(opt.box, "command line: --box");

	opt.ckpt = nerf::tool::checkpoint_file(opt.ckpt, opt.quiet, "exporting");
	nerf::FieldQueryOptions query_options;
	query_options.device = opt.device;
	query_options.threads = opt.threads;
	nerf::FieldQuery field(opt.ckpt, query_options);
	if (opt.box.empty()) box = field.box();
	const float threshold = std::isnan(opt.threshold) ? nerf::default_mesh_threshold(field.field_type()) : opt.threshold;
	if (!opt.quiet)
		std::printf("loaded %s (model %s, step %ld) on %s; box [%g, %g, %g] .. [%g, %g, %g]\n", opt.ckpt.c_str(),
		            field.field_type(), field.step(), field.backend_name().c_str(), box.min[0], box.min[1], box.min[2],
		            box.max[0], box.max[1], box.max[2]);

	if (!opt.mesh.empty() || !opt.density.empty() || !opt.vdb.empty()) {
		auto start = std::chrono::steady_clock::now();
		nerf::ScalarGrid grid;
		{
			FractionBar bar("GRID", opt.resolution, opt.quiet);
			grid = nerf::sample_density_grid(field, box, opt.resolution, bar.fn());
			bar.finish();
		}
		if (!opt.quiet)
			std::printf("density at %d^3 points: %.1f s\n", opt.resolution, seconds_since(start));
		const std::map<std::string, std::string> metadata = {
		    {"quantity", std::string("density per unit length, ") +
		                     (std::string(field.field_type()) == "ngp" ? "exp(logit) (hash grid)" : "ReLU(sigma) (nerf-pytorch)")},
		    {"checkpoint", opt.ckpt},
		    {"model", field.field_type()}};
		if (!opt.density.empty()) {
			nerf::write_density_volume(opt.density, grid, metadata);
			if (!opt.quiet)
				std::printf("wrote %s and %s (float32 [z, y, x], x fastest)\n", opt.density.c_str(),
				            nerf::volume_json_path(opt.density).c_str());
		}
		if (!opt.vdb.empty()) {
			nerf::write_vdb(opt.vdb, grid, "density");
			if (!opt.quiet) std::printf("wrote %s (float grid \"density\")\n", opt.vdb.c_str());
		}
		if (!opt.mesh.empty()) {
			start = std::chrono::steady_clock::now();
			nerf::MeshExportOptions mesh_options;
			mesh_options.threshold = threshold;
			mesh_options.largest_component = opt.largest_component;
			mesh_options.camera_centres = training_camera_centres(field.config(), opt);
			nerf::Mesh mesh;
			{
				FractionBar bar("MESH", opt.resolution, opt.quiet);
				mesh_options.progress = bar.fn();
				mesh = nerf::extract_mesh(field, grid, mesh_options);
				bar.finish();
			}
			nerf::write_mesh(opt.mesh, mesh);
			if (!opt.quiet)
				std::printf("wrote %s: %zu vertices, %zu triangles at density %g (marching, normals, colours: %.1f s)\n",
				            opt.mesh.c_str(), mesh.n_vertices(), mesh.n_triangles(), threshold, seconds_since(start));
			if (!opt.preview.empty()) {
				const int size = 400;
				const nerf::Pose pose = preview_pose(box);
				const float focal = (float)(0.5 * size / std::tan(0.5 * 0.6911112070083618));  // lego's field of view
				const std::vector<float> image = nerf::render_mesh_preview(mesh, pose.data(), size, size, focal);
				nerf::save_png(opt.preview, image.data(), size, size, 3);
				if (!opt.quiet) std::printf("wrote %s\n", opt.preview.c_str());
			}
		}
	}
	if (!opt.points.empty()) {
		const auto start = std::chrono::steady_clock::now();
		nerf::Config cfg = field.config();
		if (!opt.datadir.empty()) cfg.datadir = opt.datadir;
		const nerf::Dataset data = nerf::load_dataset(cfg);
		nerf::PointCloudOptions point_options;
		point_options.n_points = (size_t)opt.n_points;
		nerf::PointCloud cloud;
		{
			FractionBar bar("RAYS", 100, opt.quiet);
			point_options.progress = bar.fn();
			cloud = nerf::extract_point_cloud(field, data, point_options);
			bar.finish();
		}
		nerf::write_point_cloud_ply(opt.points, cloud);
		if (!opt.quiet)
			std::printf("wrote %s: %zu points (%.1f s)\n", opt.points.c_str(), cloud.n_points(), seconds_since(start));
	}
	return 0;
}

} // namespace

int main(int argc, char** argv) { return nerf::tool::tool_main("nerf_export", argc, argv, run); }
