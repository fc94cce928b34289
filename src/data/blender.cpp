// Blender synthetic scenes, as nerf-pytorch's load_blender.py plus the compositing in run_nerf.py's train().
#include "loader_util.h"

#include "nerf/common.h"
#include "nerf/data/loaders.h"

#include <cmath>
#include <cstdio>

namespace nerf {

namespace {

using Mat4 = std::array<std::array<double, 4>, 4>;

Mat4 matmul(const Mat4& a, const Mat4& b) {
	Mat4 c{};
	for (int i = 0; i < 4; ++i)
		for (int j = 0; j < 4; ++j)
			for (int k = 0; k < 4; ++k) c[i][j] += a[i][k] * b[k][j];
	return c;
}

} // namespace

Pose pose_spherical(double theta_deg, double phi_deg, double radius) {
	const double phi = phi_deg / 180.0 * M_PI, theta = theta_deg / 180.0 * M_PI;
	const Mat4 trans_t{{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, radius}, {0, 0, 0, 1}}};
	const Mat4 rot_phi{{{1, 0, 0, 0}, {0, std::cos(phi), -std::sin(phi), 0}, {0, std::sin(phi), std::cos(phi), 0}, {0, 0, 0, 1}}};
	const Mat4 rot_theta{
		{{std::cos(theta), 0, -std::sin(theta), 0}, {0, 1, 0, 0}, {std::sin(theta), 0, std::cos(theta), 0}, {0, 0, 0, 1}}};
	const Mat4 flip{{{-1, 0, 0, 0}, {0, 0, 1, 0}, {0, 1, 0, 0}, {0, 0, 0, 1}}};
	const Mat4 c2w = matmul(flip, matmul(rot_theta, matmul(rot_phi, trans_t)));
	Pose pose;
	for (int r = 0; r < 3; ++r)
		for (int c = 0; c < 4; ++c) pose[4 * r + c] = (float)c2w[r][c];
	return pose;
}

std::vector<Pose> blender_render_path(int n_views, float phi_deg, float radius) {
	// np.linspace(-180, 180, n_views + 1)[:-1]
	std::vector<Pose> path;
	for (int i = 0; i < n_views; ++i) path.push_back(pose_spherical(-180.0 + 360.0 * i / n_views, phi_deg, radius));
	return path;
}

BlenderSplit load_blender_split(const std::string& basedir, const std::string& split, int skip, bool half_res,
                                int max_frames, uint64_t max_image_pixels) {
	const std::string json_path = data::join(basedir, "transforms_" + split + ".json");
	const nlohmann::json meta = data::read_json(json_path);
	if (!meta.is_object() || !meta.contains("frames") || !meta["frames"].is_array())
		NERF_FAIL(json_path << ": no \"frames\" array");
	if (!meta.contains("camera_angle_x") || !meta["camera_angle_x"].is_number())
		NERF_FAIL(json_path << ": no numeric \"camera_angle_x\"");
	if (skip <= 0) skip = 1;

	BlenderSplit out;
	out.camera_angle_x = meta["camera_angle_x"].get<double>();
	if (!std::isfinite(out.camera_angle_x) || out.camera_angle_x <= 0.0 || out.camera_angle_x >= M_PI)
		NERF_FAIL(json_path << ": camera_angle_x " << out.camera_angle_x << " is not an angle in (0, pi)");
	const auto& frames = meta["frames"];
	for (size_t i = 0; i < frames.size(); i += skip) {
		if (max_frames > 0 && (int)out.poses.size() >= max_frames) break;
		const auto& frame = frames[i];
		if (!frame.is_object() || !frame.contains("file_path") || !frame["file_path"].is_string())
			NERF_FAIL(json_path << ": frame " << i << " has no string \"file_path\"");
		if (!frame.contains("transform_matrix")) NERF_FAIL(json_path << ": frame " << i << " has no \"transform_matrix\"");
		out.files.push_back(data::join(basedir, frame["file_path"].get<std::string>() + ".png"));
		out.poses.push_back(data::read_pose_json(frame["transform_matrix"], json_path, (int)i));
	}
	// half_res: cv2.resize(INTER_AREA) to (W//2, H//2), done per image as it is read.
	int H = 0, W = 0;
	out.rgba = data::load_images(out.files, max_image_pixels, 4, H, W, half_res ? 2 : 1, &out.stored_H, &out.stored_W);
	out.H = H;
	out.W = W;
	return out;
}

Dataset load_blender(const std::string& basedir, bool half_res, int testskip, bool white_bkgd, uint64_t max_image_pixels,
                     bool keep_alpha) {
	data::require_directory(basedir, "Blender scene");
	Dataset ds;
	double camera_angle_x = 0.0;
	std::string size_source;
	int stored_H = 0, stored_W = 0;
	const char* splits[3] = {"train", "val", "test"};
	std::vector<int>* indices[3] = {&ds.i_train, &ds.i_val, &ds.i_test};
	for (int s = 0; s < 3; ++s) {
		const std::string split = splits[s];
		const std::string json_path = data::join(basedir, "transforms_" + split + ".json");
		if (split != "train" && !data::exists(json_path)) {
			std::fprintf(stderr, "warning: %s is missing; the %s split is empty\n", json_path.c_str(), split.c_str());
			continue;
		}
		const int skip = (split == "train" || testskip <= 0) ? 1 : testskip;
		BlenderSplit part = load_blender_split(basedir, split, skip, half_res, 0, max_image_pixels);
		if (part.poses.empty()) continue;
		if (ds.H == 0) {
			ds.H = part.H;
			ds.W = part.W;
			size_source = part.files[0];
			stored_H = part.stored_H;
			stored_W = part.stored_W;
		} else if (part.stored_H != stored_H || part.stored_W != stored_W) {
			NERF_FAIL(part.files[0] << ": image is " << part.stored_W << "x" << part.stored_H << " but " << size_source
			                        << " is " << stored_W << "x" << stored_H << " (all images of a scene must have one size)");
		}
		// The reference takes camera_angle_x from the last split it read.
		camera_angle_x = part.camera_angle_x;
		*indices[s] = data::iota_range((int)ds.poses.size(), (int)(ds.poses.size() + part.poses.size()));
		ds.poses.insert(ds.poses.end(), part.poses.begin(), part.poses.end());
		ds.image_paths.insert(ds.image_paths.end(), part.files.begin(), part.files.end());
		// run_nerf.py's compositing, split by split so that only one split's RGBA is held at a time.
		const size_t n_pixels = part.rgba.size() / 4;
		const size_t offset = ds.images.size();
		ds.images.resize(offset + 3 * n_pixels);
		if (keep_alpha) ds.alpha.resize(offset / 3 + n_pixels);
		data::to_rgb(part.rgba.data(), 4, n_pixels, white_bkgd, ds.images.data() + offset,
		             keep_alpha ? ds.alpha.data() + offset / 3 : nullptr);
	}
	if (ds.poses.empty()) NERF_FAIL(basedir << ": the Blender scene has no frames");
	// As the reference: focal from the stored width, then halved with H and W under half_res.
	double focal = 0.5 * stored_W / std::tan(0.5 * camera_angle_x);
	if (half_res) focal *= 0.5;
	ds.focal = (float)focal;
	ds.K = data::default_K(ds.H, ds.W, focal);
	ds.near = 2.0f;
	ds.far = 6.0f;
	ds.ndc = false;
	ds.render_poses = blender_render_path();
	if (half_res)
		ds.resize_note = "half_res: the files are " + std::to_string(stored_W) + "x" + std::to_string(stored_H) +
		                 "; --half_res False trains at full size";
	data::set_shared_camera(ds);
	return ds;
}

} // namespace nerf
