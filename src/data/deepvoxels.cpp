// DeepVoxels scenes, as nerf-pytorch's load_deepvoxels.py (load_dv_data) plus run_nerf.py's near/far.
//
// Layout: <basedir>/{train,validation,test}/<shape>/{intrinsics.txt, pose/*.txt, rgb/*.png}.
// intrinsics.txt (DeepVoxels' format, read as the reference reads it):
//   line 1: f cx cy [more numbers ignored]
//   line 2: grid barycenter (x y z)          -- read, unused by NeRF
//   line 3: near plane                       -- read, unused
//   line 4: scale                            -- read, unused
//   line 5: height width (of the calibrated camera)
//   line 6: optional world2cam flag          -- unused (the reference ignores it too)
// A pose file holds 16 numbers, a 4x4 camera-to-world matrix in OpenCV camera axes; the reference
// multiplies by diag(1, -1, -1, 1) on the right to get OpenGL axes.
// Assumptions, where the reference hard-codes: it sets H = W = 512 and scales focal by 512 / height;
// we take H, W from the images and scale by the loaded H / height (identical for the 512x512 scenes),
// and we reject a split whose pose and image counts differ (the reference would silently misalign).
#include "loader_util.h"

#include "nerf/common.h"
#include "nerf/data/loaders.h"

#include <cmath>
#include <fstream>
#include <sstream>

namespace nerf {

namespace {

struct DvIntrinsics {
	double f = 0, cx = 0, cy = 0, height = 0, width = 0;
};

std::vector<double> numbers_of_line(std::istream& in, const std::string& path, const char* what) {
	std::string line;
	if (!std::getline(in, line)) NERF_FAIL(path << ": missing the " << what << " line");
	std::istringstream ss(line);
	std::vector<double> values;
	std::string token;
	while (ss >> token) {
		try {
			size_t used = 0;
			values.push_back(std::stod(token, &used));
			if (used != token.size()) throw std::invalid_argument(token);
		} catch (const std::exception&) {
			NERF_FAIL(path << ": '" << token << "' in the " << what << " line is not a number");
		}
	}
	return values;
}

DvIntrinsics parse_intrinsics(const std::string& path) {
	std::ifstream in(path);
	if (!in) NERF_FAIL(path << ": cannot open DeepVoxels intrinsics");
	DvIntrinsics k;
	const auto first = numbers_of_line(in, path, "f cx cy");
	if (first.size() < 3) NERF_FAIL(path << ": the first line needs f cx cy, found " << first.size() << " numbers");
	k.f = first[0];
	k.cx = first[1];
	k.cy = first[2];
	numbers_of_line(in, path, "grid barycenter");
	numbers_of_line(in, path, "near plane");
	numbers_of_line(in, path, "scale");
	const auto size = numbers_of_line(in, path, "height width");
	if (size.size() != 2) NERF_FAIL(path << ": the fifth line needs height width, found " << size.size() << " numbers");
	k.height = size[0];
	k.width = size[1];
	const double all[5] = {k.f, k.cx, k.cy, k.height, k.width};
	data::check_finite(all, 5, path, "intrinsics");
	if (k.height <= 0 || k.width <= 0) NERF_FAIL(path << ": height and width must be positive");
	return k;
}

Pose load_dv_pose(const std::string& path) {
	std::ifstream in(path);
	if (!in) NERF_FAIL(path << ": cannot open pose file");
	std::vector<double> values;
	std::string token;
	while (in >> token) {
		try {
			size_t used = 0;
			values.push_back(std::stod(token, &used));
			if (used != token.size()) throw std::invalid_argument(token);
		} catch (const std::exception&) {
			NERF_FAIL(path << ": '" << token << "' is not a number");
		}
	}
	if (values.size() != 16) NERF_FAIL(path << ": a pose file needs 16 numbers (4x4), found " << values.size());
	data::check_finite(values.data(), 16, path, "pose");
	// pose @ diag(1, -1, -1, 1): negate the y and z columns.
	Pose pose;
	for (int r = 0; r < 3; ++r)
		for (int c = 0; c < 4; ++c) pose[4 * r + c] = (float)(values[4 * r + c] * ((c == 1 || c == 2) ? -1.0 : 1.0));
	return pose;
}

struct DvSplit {
	std::vector<Pose> poses;
	std::vector<std::string> images;
};

DvSplit read_split(const std::string& dir, int skip) {
	data::require_directory(dir, "DeepVoxels split");
	DvSplit split;
	const std::string pose_dir = data::join(dir, "pose"), rgb_dir = data::join(dir, "rgb");
	const auto pose_names = data::list_files(pose_dir, {"txt"});
	const auto image_names = data::list_files(rgb_dir, {"png"});
	for (size_t i = 0; i < pose_names.size(); i += skip) split.poses.push_back(load_dv_pose(data::join(pose_dir, pose_names[i])));
	for (size_t i = 0; i < image_names.size(); i += skip) split.images.push_back(data::join(rgb_dir, image_names[i]));
	if (split.poses.size() != split.images.size())
		NERF_FAIL(dir << ": " << pose_names.size() << " pose files but " << image_names.size() << " images");
	return split;
}

} // namespace

Dataset load_deepvoxels(const std::string& basedir, const std::string& shape, int testskip, uint64_t max_image_pixels) {
	data::require_directory(basedir, "DeepVoxels");
	if (testskip <= 0) testskip = 1;
	const std::string train_dir = data::join(basedir, "train/" + shape);
	const DvIntrinsics intr = parse_intrinsics(data::join(train_dir, "intrinsics.txt"));

	// Splits in the reference's order: train (all views), validation and test (every testskip-th).
	const DvSplit splits[3] = {read_split(train_dir, 1), read_split(data::join(basedir, "validation/" + shape), testskip),
	                           read_split(data::join(basedir, "test/" + shape), testskip)};
	Dataset ds;
	std::vector<std::string> paths;
	std::vector<int>* indices[3] = {&ds.i_train, &ds.i_val, &ds.i_test};
	for (int s = 0; s < 3; ++s) {
		*indices[s] = data::iota_range((int)ds.poses.size(), (int)(ds.poses.size() + splits[s].poses.size()));
		ds.poses.insert(ds.poses.end(), splits[s].poses.begin(), splits[s].poses.end());
		paths.insert(paths.end(), splits[s].images.begin(), splits[s].images.end());
	}
	if (ds.poses.empty()) NERF_FAIL(basedir << ": the DeepVoxels scene '" << shape << "' has no views");
	ds.images = data::load_images(paths, max_image_pixels, 3, ds.H, ds.W);

	const double focal = ds.H / intr.height * intr.f;
	ds.focal = (float)focal;
	ds.K = data::default_K(ds.H, ds.W, focal);
	ds.render_poses = splits[2].poses;

	// run_nerf.py: the cameras sit on a hemisphere of radius hemi_R (mean distance from the origin).
	double hemi_R = 0.0;
	for (const auto& p : ds.poses) hemi_R += std::sqrt(p[3] * p[3] + p[7] * p[7] + p[11] * p[11]);
	hemi_R /= (double)ds.poses.size();
	ds.near = (float)(hemi_R - 1.0);
	ds.far = (float)(hemi_R + 1.0);
	ds.ndc = false;
	ds.image_paths = paths;
	data::set_shared_camera(ds);
	return ds;
}

} // namespace nerf
