// LLFF scenes, as nerf-pytorch's load_llff.py (load_llff_data with recenter=True, bd_factor=.75,
// path_zflat=False) followed by the llffhold split and near/far choice of run_nerf.py's train().
// Pose math is done in double; the reference works in float32, which differs by ~1e-7 relative.
#include "loader_util.h"

#include "nerf/common.h"
#include "nerf/data/loaders.h"
#include "nerf/io/npy.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace nerf {

namespace {

using Vec3 = Eigen::Vector3d;
using Mat34 = Eigen::Matrix<double, 3, 4>;
using Mat4 = Eigen::Matrix4d;

Vec3 normalize(const Vec3& v) { return v / v.norm(); }

// viewmatrix(z, up, pos): columns (x, y, z, pos) of a camera looking along +z with y near `up`.
Mat34 viewmatrix(const Vec3& z, const Vec3& up, const Vec3& pos) {
	const Vec3 vec2 = normalize(z);
	const Vec3 vec0 = normalize(up.cross(vec2));
	const Vec3 vec1 = normalize(vec2.cross(vec0));
	Mat34 m;
	m << vec0, vec1, vec2, pos;
	return m;
}

// poses_avg: mean centre, summed z axis, summed y axis as up.
Mat34 poses_avg(const std::vector<Mat34>& poses) {
	Vec3 center = Vec3::Zero(), z = Vec3::Zero(), up = Vec3::Zero();
	for (const auto& p : poses) {
		center += p.col(3);
		z += p.col(2);
		up += p.col(1);
	}
	center /= (double)poses.size();
	return viewmatrix(normalize(z), up, center);
}

Mat4 to4(const Mat34& p) {
	Mat4 m = Mat4::Identity();
	m.topRows<3>() = p;
	return m;
}

void recenter_poses(std::vector<Mat34>& poses) {
	const Mat4 inv_avg = to4(poses_avg(poses)).inverse();
	for (auto& p : poses) p = (inv_avg * to4(p)).topRows<3>();
}

// np.percentile(values, q) with its default linear interpolation.
double percentile(std::vector<double> values, double q) {
	std::sort(values.begin(), values.end());
	const double pos = q / 100.0 * (double)(values.size() - 1);
	const size_t lo = (size_t)std::floor(pos);
	const size_t hi = std::min(lo + 1, values.size() - 1);
	return values[lo] + (pos - (double)lo) * (values[hi] - values[lo]);
}

std::vector<Mat34> render_path_spiral(const Mat34& c2w, const Vec3& up, const Vec3& rads, double focal, double zrate,
                                      int rots, int n_views) {
	std::vector<Mat34> path;
	const Eigen::Vector4d focus_point(0, 0, -focal, 1);
	for (int i = 0; i < n_views; ++i) {
		// np.linspace(0, 2 pi rots, N + 1)[:-1]
		const double theta = 2.0 * M_PI * rots * i / n_views;
		const Eigen::Vector4d offset(std::cos(theta) * rads[0], -std::sin(theta) * rads[1],
		                             -std::sin(theta * zrate) * rads[2], 1.0);
		const Vec3 c = c2w * offset;
		const Vec3 z = normalize(c - c2w * focus_point);
		path.push_back(viewmatrix(z, up, c));
	}
	return path;
}

// spherify_poses: centre the cameras on the point closest to all optical axes, scale to a unit sphere,
// and circle the cameras' mean height. Rescales bds in place.
std::vector<Mat34> spherify_poses(std::vector<Mat34>& poses, std::vector<double>& bds) {
	const size_t n = poses.size();
	// min_line_dist: least-squares point nearest to every ray (o = t, d = z axis).
	Eigen::Matrix3d mean_ata = Eigen::Matrix3d::Zero();
	Vec3 mean_b = Vec3::Zero();
	for (const auto& p : poses) {
		const Vec3 d = p.col(2), o = p.col(3);
		const Eigen::Matrix3d A = Eigen::Matrix3d::Identity() - d * d.transpose();
		mean_ata += A.transpose() * A;
		mean_b += -A * o;
	}
	mean_ata /= (double)n;
	mean_b /= (double)n;
	const Vec3 center = -mean_ata.inverse() * mean_b;

	Vec3 up = Vec3::Zero();
	for (const auto& p : poses) up += Vec3(p.col(3)) - center;
	up /= (double)n;
	const Vec3 vec0 = normalize(up);
	const Vec3 vec1 = normalize(Vec3(.1, .2, .3).cross(vec0));
	const Vec3 vec2 = normalize(vec0.cross(vec1));
	Mat34 c2w;
	c2w << vec1, vec2, vec0, center;
	const Mat4 inv_c2w = to4(c2w).inverse();
	for (auto& p : poses) p = (inv_c2w * to4(p)).topRows<3>();

	double mean_sq = 0.0;
	for (const auto& p : poses) mean_sq += p.col(3).squaredNorm();
	double rad = std::sqrt(mean_sq / (double)n);
	const double sc = 1.0 / rad;
	for (auto& p : poses) p.col(3) *= sc;
	for (auto& b : bds) b *= sc;
	rad *= sc;

	double zh = 0.0;
	for (const auto& p : poses) zh += p(2, 3);
	zh /= (double)n;
	const double radcircle = std::sqrt(rad * rad - zh * zh);
	std::vector<Mat34> path;
	const int n_views = 120;
	for (int i = 0; i < n_views; ++i) {
		// np.linspace(0, 2 pi, 120): the endpoint is included, so the first and last views coincide.
		const double th = 2.0 * M_PI * i / (n_views - 1);
		const Vec3 camorigin(radcircle * std::cos(th), radcircle * std::sin(th), zh);
		const Vec3 path_up(0, 0, -1);
		const Vec3 z = normalize(camorigin);
		const Vec3 x = normalize(z.cross(path_up));
		const Vec3 y = normalize(z.cross(x));
		Mat34 p;
		p << x, y, z, camorigin;
		path.push_back(p);
	}
	return path;
}

} // namespace

Dataset load_llff(const std::string& basedir, int factor, bool spherify, int llffhold, bool no_ndc,
                  uint64_t max_image_pixels) {
	data::require_directory(basedir, "LLFF scene");
	const std::string npy_path = data::join(basedir, "poses_bounds.npy");
	const NpyArray arr = load_npy_matrix(npy_path, 17);
	const size_t n = arr.shape[0];
	if (n == 0) NERF_FAIL(npy_path << ": no poses (shape (0, 17))");

	// poses_bounds row: a 3x5 matrix row-major ([R | t | hwf]) then near, far.
	std::vector<Mat34> poses(n);
	std::vector<double> hwf_focal(n), bds(2 * n);
	for (size_t i = 0; i < n; ++i) {
		const double* row = arr.data.data() + 17 * i;
		data::check_finite(row, 17, npy_path, "row " + std::to_string(i));
		Mat34 raw;
		for (int r = 0; r < 3; ++r)
			for (int c = 0; c < 4; ++c) raw(r, c) = row[5 * r + c];
		hwf_focal[i] = row[5 * 2 + 4];
		bds[2 * i] = row[15];
		bds[2 * i + 1] = row[16];
		// The scene is scaled by 1 / (0.75 min near): a near bound of 0 makes it infinite, a negative one mirrors it.
		if (!(row[15] > 0.0) || row[16] < row[15])
			NERF_FAIL(npy_path << ": row " << i << ": the depth bounds near " << row[15] << ", far " << row[16]
			                   << " must satisfy 0 < near <= far (columns 15 and 16)");
		const std::string rotation_problem = pose_problem(data::to_pose(raw));
		if (!rotation_problem.empty()) NERF_FAIL(npy_path << ": row " << i << ": the camera pose is unusable: " << rotation_problem);
		// The reference's axis change, [x, y, z] -> [y, -x, z]: LLFF's (down, right, back) camera axes to
		// OpenGL's (right, up, back).
		poses[i] << raw.col(1), -raw.col(0), raw.col(2), raw.col(3);
	}
	if (!(hwf_focal[0] > 0.0))
		NERF_FAIL(npy_path << ": row 0: the focal length " << hwf_focal[0] << " (column 14) must be > 0; the reference uses row 0's for every image");

	// Images: images_<factor>/ when it exists (the reference makes it with ImageMagick), otherwise images/
	// area-downsampled here by `factor`.
	if (factor < 1) factor = 1;
	std::string image_dir = data::join(basedir, "images_" + std::to_string(factor));
	int downsample = 1;
	if (factor == 1 && !data::exists(image_dir)) image_dir = data::join(basedir, "images");
	if (factor > 1 && !data::exists(image_dir)) {
		image_dir = data::join(basedir, "images");
		downsample = factor;
	}
	data::require_directory(image_dir, "LLFF image");
	const auto names = data::list_files(image_dir, {"JPG", "jpg", "png"});
	if (names.size() != n)
		NERF_FAIL(image_dir << ": " << names.size() << " images but " << npy_path << " has " << n << " poses");
	std::vector<std::string> paths;
	for (const auto& name : names) paths.push_back(data::join(image_dir, name));

	Dataset ds;
	ds.images = data::load_images(paths, max_image_pixels, 3, ds.H, ds.W, downsample);
	if (factor > 1)
		ds.resize_note = "factor " + std::to_string(factor) + ": " +
		                 (downsample > 1 ? "images/ downsampled here" : "the images of images_" + std::to_string(factor) + "/") +
		                 "; --factor N sets it";
	const double focal = hwf_focal[0] / factor;  // the reference: hwf = poses[0, :3, -1] after poses[2, 4, :] /= factor

	const double bd_factor = 0.75;
	const double sc = 1.0 / (*std::min_element(bds.begin(), bds.end()) * bd_factor);
	for (auto& p : poses) p.col(3) *= sc;
	for (auto& b : bds) b *= sc;

	recenter_poses(poses);

	std::vector<Mat34> render_path;
	if (spherify) {
		render_path = spherify_poses(poses, bds);
	} else {
		const Mat34 c2w = poses_avg(poses);
		Vec3 up = Vec3::Zero();
		for (const auto& p : poses) up += p.col(1);
		up = normalize(up);
		const double close_depth = *std::min_element(bds.begin(), bds.end()) * .9;
		const double inf_depth = *std::max_element(bds.begin(), bds.end()) * 5.;
		const double dt = .75;
		const double mean_dz = 1. / ((1. - dt) / close_depth + dt / inf_depth);
		Vec3 rads;
		for (int k = 0; k < 3; ++k) {
			std::vector<double> abs_t(n);
			for (size_t i = 0; i < n; ++i) abs_t[i] = std::abs(poses[i](k, 3));
			rads[k] = percentile(abs_t, 90.0);
		}
		render_path = render_path_spiral(c2w, up, rads, mean_dz, /*zrate=*/.5, /*rots=*/2, /*n_views=*/120);
	}

	// The reference's "HOLDOUT view": the camera nearest the average camera centre (first on ties).
	const Vec3 avg_center = poses_avg(poses).col(3);
	int holdout = 0;
	double best = INFINITY;
	for (size_t i = 0; i < n; ++i) {
		const double d = (Vec3(poses[i].col(3)) - avg_center).squaredNorm();
		if (d < best) {
			best = d;
			holdout = (int)i;
		}
	}
	if (llffhold > 0) {
		for (size_t i = 0; i < n; i += llffhold) ds.i_test.push_back((int)i);
	} else {
		ds.i_test = {holdout};
	}
	ds.i_val = ds.i_test;
	for (size_t i = 0; i < n; ++i)
		if (std::find(ds.i_test.begin(), ds.i_test.end(), (int)i) == ds.i_test.end()) ds.i_train.push_back((int)i);

	ds.focal = (float)focal;
	ds.K = data::default_K(ds.H, ds.W, focal);
	for (const auto& p : poses) ds.poses.push_back(data::to_pose(p));
	for (const auto& p : render_path) ds.render_poses.push_back(data::to_pose(p));
	// Each pose can be fine and their average still degenerate (viewing directions that cancel out).
	for (const Pose& p : ds.poses)
		if (!pose_problem(p).empty())
			NERF_FAIL(npy_path << ": recentring the poses" << (spherify ? " and spherifying them" : "") << " gives unusable poses ("
			                   << pose_problem(p) << "): the cameras' mean viewing direction or up vector is degenerate"
			                   << (spherify ? ", or their optical axes do not converge" : ""));
	for (const Pose& p : ds.render_poses)
		if (!pose_problem(p).empty())
			NERF_FAIL(npy_path << ": the " << (spherify ? "spherified" : "spiral") << " render path built from these poses is unusable ("
			                   << pose_problem(p) << ")");
	for (size_t i = 0; i < n; ++i) ds.bounds.push_back({(float)bds[2 * i], (float)bds[2 * i + 1]});
	if (no_ndc) {
		ds.near = (float)(*std::min_element(bds.begin(), bds.end()) * .9);
		ds.far = (float)(*std::max_element(bds.begin(), bds.end()) * 1.);
		ds.ndc = false;
	} else {
		ds.near = 0.0f;
		ds.far = 1.0f;
		ds.ndc = true;
	}
	ds.image_paths = paths;
	data::set_shared_camera(ds);
	return ds;
}

} // namespace nerf
