// LLFF loader: a small scene written here (poses_bounds.npy and images) checked against numbers worked
// out in the test, the bad inputs it must name, and the shared fern and beer scenes.
#include "nerf/data/loaders.h"
#include "nerf/dataset.h"
#include "nerf/io/npy.h"

#include "test_data_helpers.h"

#include <Eigen/Dense>

using data_test::orthonormality_error;
using data_test::pattern_value;
using data_test::require_error;
using data_test::TempDir;
using data_test::write_pattern_png;
using data_test::write_text;

namespace {

constexpr int kViews = 5, kH = 8, kW = 12;
constexpr double kFocal = 20.0;

// Camera-to-world of view i in LLFF's stored axes (columns: down, right, back, centre): a small rotation
// about each axis and a centre on a line, so the poses are distinct and well spread.
Eigen::Matrix<double, 3, 4> raw_pose(int i) {
	const Eigen::Matrix3d R = (Eigen::AngleAxisd(0.1 * i, Eigen::Vector3d::UnitX()) *
	                           Eigen::AngleAxisd(-0.05 * i, Eigen::Vector3d::UnitY()) *
	                           Eigen::AngleAxisd(0.2 + 0.03 * i, Eigen::Vector3d::UnitZ()))
	                              .toRotationMatrix();
	Eigen::Matrix<double, 3, 4> p;
	p << R, Eigen::Vector3d(0.3 * i - 0.5, 0.1 * i * i, 1.0 - 0.2 * i);
	return p;
}

double raw_near(int i) { return 2.0 + 0.25 * i; }
double raw_far(int i) { return 10.0 + i; }

void write_poses_bounds(const std::string& path, int views, double poison = 0.0) {
	std::vector<double> rows;
	for (int i = 0; i < views; ++i) {
		const auto p = raw_pose(i);
		const double hwf[3] = {(double)kH, (double)kW, kFocal};
		for (int r = 0; r < 3; ++r) {
			for (int c = 0; c < 4; ++c) rows.push_back(p(r, c));
			rows.push_back(hwf[r]);
		}
		rows.push_back(raw_near(i));
		rows.push_back(raw_far(i));
	}
	if (poison != 0.0) rows[17 * 2 + 3] = poison;  // row 2, translation x
	nerf::save_npy(path, rows.data(), {(size_t)views, 17});
}

void write_scene(const TempDir& dir) {
	write_poses_bounds(dir / "poses_bounds.npy", kViews);
	for (int i = 0; i < kViews; ++i) write_pattern_png(dir / ("images/img_" + std::to_string(i) + ".png"), i, kW, kH, 3);
}

// The reference's poses_avg, written out here: mean centre, normalized summed z, summed y as up.
Eigen::Matrix<double, 3, 4> average_pose(const std::vector<nerf::Pose>& poses) {
	Eigen::Vector3d centre = Eigen::Vector3d::Zero(), z = Eigen::Vector3d::Zero(), y = Eigen::Vector3d::Zero();
	for (const auto& p : poses) {
		centre += Eigen::Vector3d(p[3], p[7], p[11]);
		z += Eigen::Vector3d(p[2], p[6], p[10]);
		y += Eigen::Vector3d(p[1], p[5], p[9]);
	}
	centre /= (double)poses.size();
	z.normalize();
	const Eigen::Vector3d x = y.cross(z).normalized();
	Eigen::Matrix<double, 3, 4> m;
	m << x, z.cross(x).normalized(), z, centre;
	return m;
}

double identity_error(const Eigen::Matrix<double, 3, 4>& m) {
	Eigen::Matrix<double, 3, 4> id = Eigen::Matrix<double, 3, 4>::Zero();
	id.leftCols<3>().setIdentity();
	return (m - id).cwiseAbs().maxCoeff();
}

Eigen::Matrix3d rotation(const nerf::Pose& p) {
	Eigen::Matrix3d R;
	for (int r = 0; r < 3; ++r)
		for (int c = 0; c < 3; ++c) R(r, c) = p[4 * r + c];
	return R;
}

Eigen::Vector3d centre(const nerf::Pose& p) { return {p[3], p[7], p[11]}; }

double rms_centre_distance(const std::vector<nerf::Pose>& poses) {
	double sum = 0;
	for (const auto& p : poses) sum += centre(p).squaredNorm();
	return std::sqrt(sum / (double)poses.size());
}

} // namespace

TEST_CASE("llff: factor, focal, bounds, recentring and splits of a small scene", "[data][llff]") {
	TempDir dir("llff");
	write_scene(dir);
	const nerf::Dataset ds = nerf::load_llff(dir.str(), /*factor=*/2, /*spherify=*/false, /*llffhold=*/2, /*no_ndc=*/false);
	REQUIRE(ds.n_images() == kViews);
	// images/ is downsampled in-process by 2: 8x12 -> 4x6, each pixel the mean of a 2x2 block.
	REQUIRE(ds.H == kH / 2);
	REQUIRE(ds.W == kW / 2);
	CHECK(ds.focal == Approx(kFocal / 2).epsilon(1e-6));
	CHECK(ds.K[2] == 3.0f);
	CHECK(ds.K[5] == 2.0f);
	double worst_pixel = 0;
	for (int i = 0; i < kViews; ++i)
		for (int r = 0; r < ds.H; ++r)
			for (int c = 0; c < ds.W; ++c)
				for (int k = 0; k < 3; ++k) {
					double mean = 0;
					for (int d = 0; d < 4; ++d) mean += 0.25 * pattern_value(i, 2 * r + d / 2, 2 * c + d % 2, k);
					worst_pixel = std::max(worst_pixel, std::abs(ds.image(i)[(r * ds.W + c) * 3 + k] - mean));
				}
	CHECK(worst_pixel < 1e-6);

	// bd_factor: everything scales by 1 / (min near * 0.75).
	const double sc = 1.0 / (raw_near(0) * 0.75);
	REQUIRE(ds.bounds.size() == kViews);
	for (int i = 0; i < kViews; ++i) {
		CHECK(ds.bounds[i][0] == Approx(raw_near(i) * sc).epsilon(1e-6));
		CHECK(ds.bounds[i][1] == Approx(raw_far(i) * sc).epsilon(1e-6));
	}
	// Recentring is rigid: distances between centres scale by sc, relative rotations are those of the
	// stored poses after the axis change [down, right, back] -> [right, up, back] (x' = y, y' = -x).
	Eigen::Matrix3d axis_change;
	axis_change << 0, -1, 0, 1, 0, 0, 0, 0, 1;
	for (int i = 0; i < kViews; ++i) {
		CHECK(orthonormality_error(ds.poses[i]) < 1e-5);
		for (int j = 0; j < kViews; ++j) {
			const double raw_dist = (raw_pose(i).col(3) - raw_pose(j).col(3)).norm();
			CHECK((centre(ds.poses[i]) - centre(ds.poses[j])).norm() == Approx(raw_dist * sc).margin(1e-5));
			const Eigen::Matrix3d expected =
			    axis_change.transpose() * raw_pose(i).leftCols<3>().transpose() * raw_pose(j).leftCols<3>() * axis_change;
			const Eigen::Matrix3d got = rotation(ds.poses[i]).transpose() * rotation(ds.poses[j]);
			CHECK((got - expected).cwiseAbs().maxCoeff() < 1e-5);
		}
	}
	// After recentring, the average pose is the identity.
	CHECK(identity_error(average_pose(ds.poses)) < 1e-5);

	// llffhold 2: every 2nd view is test (and val); the rest train. NDC: near 0, far 1.
	CHECK(ds.i_test == std::vector<int>{0, 2, 4});
	CHECK(ds.i_val == ds.i_test);
	CHECK(ds.i_train == std::vector<int>{1, 3});
	CHECK(ds.ndc);
	CHECK(ds.near == 0.0f);
	CHECK(ds.far == 1.0f);
	REQUIRE(ds.render_poses.size() == 120);
	for (const auto& p : ds.render_poses) CHECK(orthonormality_error(p) < 1e-5);
}

TEST_CASE("llff: no_ndc near/far, holdout view, images_<factor> folder, factor 1", "[data][llff]") {
	TempDir dir("llff");
	write_scene(dir);
	const nerf::Dataset ds = nerf::load_llff(dir.str(), 2, false, /*llffhold=*/0, /*no_ndc=*/true);
	CHECK_FALSE(ds.ndc);
	const double sc = 1.0 / (raw_near(0) * 0.75);
	CHECK(ds.near == Approx(raw_near(0) * sc * 0.9).epsilon(1e-6));
	CHECK(ds.far == Approx(raw_far(kViews - 1) * sc).epsilon(1e-6));
	// The holdout view is the stored camera nearest the mean stored centre (recentring keeps the order).
	Eigen::Vector3d mean = Eigen::Vector3d::Zero();
	for (int i = 0; i < kViews; ++i) mean += raw_pose(i).col(3) / kViews;
	int nearest = 0;
	for (int i = 1; i < kViews; ++i)
		if ((raw_pose(i).col(3) - mean).norm() < (raw_pose(nearest).col(3) - mean).norm()) nearest = i;
	CHECK(ds.i_test == std::vector<int>{nearest});
	CHECK(ds.i_train.size() == kViews - 1);

	// images_2/ takes precedence over downsampling images/ (its pixels differ, so we can tell).
	for (int i = 0; i < kViews; ++i) write_pattern_png(dir / ("images_2/a" + std::to_string(i) + ".png"), 40 + i, 6, 4, 3);
	const nerf::Dataset from_folder = nerf::load_llff(dir.str(), 2, false, 0, true);
	CHECK(from_folder.image(1)[5] == Approx(pattern_value(41, 0, 1, 2)).margin(1e-6));

	const nerf::Dataset full = nerf::load_llff(dir.str(), 1, false, 0, true);
	CHECK(full.H == kH);
	CHECK(full.W == kW);
	CHECK(full.focal == Approx(kFocal).epsilon(1e-6));
	CHECK(full.image(3)[(2 * kW + 7) * 3 + 1] == Approx(pattern_value(3, 2, 7, 1)).margin(1e-6));
}

TEST_CASE("llff: spherify puts the cameras on a unit sphere and circles them", "[data][llff]") {
	TempDir dir("llff");
	write_scene(dir);
	const nerf::Dataset ds = nerf::load_llff(dir.str(), 2, /*spherify=*/true, 0, true);
	CHECK(rms_centre_distance(ds.poses) == Approx(1.0).epsilon(1e-5));
	for (const auto& p : ds.poses) CHECK(orthonormality_error(p) < 1e-5);
	REQUIRE(ds.render_poses.size() == 120);
	// linspace(0, 2 pi, 120) includes both ends: the first and last views coincide.
	for (int k = 0; k < 12; ++k) CHECK(ds.render_poses.front()[k] == Approx(ds.render_poses.back()[k]).margin(1e-5));
	for (const auto& p : ds.render_poses) {
		CHECK(centre(p).norm() == Approx(1.0).epsilon(1e-5));
		CHECK(orthonormality_error(p) < 1e-5);
	}
	// Bounds scale with the poses: a near/far ratio does not change.
	CHECK(ds.bounds[2][1] / ds.bounds[2][0] == Approx(raw_far(2) / raw_near(2)).epsilon(1e-5));
}

TEST_CASE("llff: bad inputs fail naming the file and the problem", "[data][llff]") {
	TempDir dir("llff");
	write_scene(dir);
	SECTION("missing folder") {
		require_error([] { nerf::load_llff("/nonexistent/llff", 8, false, 8, false); }, {"/nonexistent/llff", "does not exist"});
	}
	SECTION("missing poses_bounds.npy") {
		std::filesystem::remove(dir / "poses_bounds.npy");
		require_error([&] { nerf::load_llff(dir.str(), 2, false, 0, false); }, {dir / "poses_bounds.npy", "cannot open"});
	}
	SECTION("npy of the wrong shape") {
		std::vector<double> rows(kViews * 15, 1.0);
		nerf::save_npy(dir / "poses_bounds.npy", rows.data(), {(size_t)kViews, 15});
		require_error([&] { nerf::load_llff(dir.str(), 2, false, 0, false); }, {dir / "poses_bounds.npy", "(5, 15)", "(N, 17)"});
	}
	SECTION("npy of the wrong dtype") {
		std::string header = "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 17), }";
		header.append(128 - 10 - header.size() - 1, ' ');
		header += "\n";
		std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + (char)header.size() + '\0' + header + std::string(17 * 4, '\0');
		write_text(dir / "poses_bounds.npy", bytes);
		require_error([&] { nerf::load_llff(dir.str(), 2, false, 0, false); }, {dir / "poses_bounds.npy", "'<i4'"});
	}
	SECTION("NaN or inf in a pose") {
		write_poses_bounds(dir / "poses_bounds.npy", kViews, std::nan(""));
		require_error([&] { nerf::load_llff(dir.str(), 2, false, 0, false); }, {dir / "poses_bounds.npy", "row 2", "non-finite"});
		write_poses_bounds(dir / "poses_bounds.npy", kViews, INFINITY);
		require_error([&] { nerf::load_llff(dir.str(), 2, false, 0, false); }, {dir / "poses_bounds.npy", "row 2", "inf"});
	}
	SECTION("image count differs from pose count") {
		std::filesystem::remove(dir / "images/img_4.png");
		require_error([&] { nerf::load_llff(dir.str(), 2, false, 0, false); }, {dir / "images", "4 images", "5 poses"});
	}
	SECTION("missing image folder") {
		std::filesystem::remove_all(dir / "images");
		require_error([&] { nerf::load_llff(dir.str(), 2, false, 0, false); }, {dir / "images", "does not exist"});
	}
	SECTION("images of different sizes") {
		write_pattern_png(dir / "images/img_3.png", 3, kW, kH + 2, 3);
		require_error([&] { nerf::load_llff(dir.str(), 2, false, 0, false); }, {dir / "images/img_3.png", "12x10", "12x8"});
	}
	SECTION("corrupt JPEG") {
		std::filesystem::remove(dir / "images/img_1.png");
		// A JPEG start-of-image and APP0 marker, then garbage where the segments should be.
		write_text(dir / "images/img_1.jpg", std::string("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00", 11) + std::string(64, '\x5A'));
		require_error([&] { nerf::load_llff(dir.str(), 2, false, 0, false); }, {dir / "images/img_1.jpg", "cannot decode"});
	}
	SECTION("corrupt PNG") {
		write_text(dir / "images/img_0.png", "not a png");
		require_error([&] { nerf::load_llff(dir.str(), 2, false, 0, false); }, {dir / "images/img_0.png", "cannot decode"});
	}
}

namespace {

// Stored focal (hwf column) of the first row of a poses_bounds.npy.
double stored_focal(const std::string& scene) { return nerf::load_npy_matrix(scene + "/poses_bounds.npy", 17).data[14]; }

void check_llff_common(const nerf::Dataset& ds) {
	for (const auto& p : ds.poses) CHECK(orthonormality_error(p) < 1e-5);
	for (const auto& p : ds.render_poses) CHECK(orthonormality_error(p) < 1e-5);
	for (const auto& b : ds.bounds) {
		CHECK(b[0] > 0.0f);
		CHECK(b[1] > b[0]);
	}
}

} // namespace

TEST_CASE("llff: fern at factor 8 and 4", "[data][llff][shared]") {
	const std::string fern = data_test::shared_scene("nerf_llff_data/fern");
	if (fern.empty()) return;
	nerf::Config cfg;
	cfg.dataset_type = "llff";
	cfg.datadir = fern;
	cfg.factor = 8;
	cfg.llffhold = 8;
	const nerf::Dataset ds = nerf::load_dataset(cfg);
	REQUIRE(ds.n_images() == 20);
	CHECK(ds.H == 378);
	CHECK(ds.W == 504);
	CHECK(ds.focal == Approx(stored_focal(fern) / 8).epsilon(1e-6));
	CHECK(ds.i_test == std::vector<int>{0, 8, 16});
	CHECK(ds.i_train.size() == 17);
	CHECK(ds.ndc);
	check_llff_common(ds);
	CHECK(identity_error(average_pose(ds.poses)) < 1e-5);
	// bd_factor 0.75: the smallest near bound becomes 1 / 0.75.
	float min_near = INFINITY;
	for (const auto& b : ds.bounds) min_near = std::min(min_near, b[0]);
	CHECK(min_near == Approx(1.0 / 0.75).epsilon(1e-6));
	// Values from nerf-pytorch's load_llff_data on this scene (numpy, float32), printed to 9 digits.
	const double pose3[12] = {0.995121837, 0.003262475, 0.098600373, 0.213791758, -0.005659463, 0.999695003,
	                          0.02404023,  0.107530147, -0.098491855, -0.024480982, 0.994836748, 0.005527358};
	const double render7[12] = {9.976748228e-01, 1.340841758e-03, 6.814099848e-02, 2.931799889e-01,
	                            2.848688564e-05, 9.997981787e-01, -2.009057440e-02, -8.644068241e-02,
	                            -6.815418601e-02, 2.004580013e-02, 9.974734187e-01, -1.461470779e-02};
	double worst = 0;
	for (int k = 0; k < 12; ++k) {
		worst = std::max(worst, std::abs(ds.poses[3][k] - pose3[k]));
		worst = std::max(worst, std::abs(ds.render_poses[7][k] - render7[k]));
	}
	CAPTURE(worst);
	CHECK(worst < 1e-6);
	CHECK(ds.bounds[3][0] == Approx(1.4406018).epsilon(1e-6));
	CHECK(ds.bounds[3][1] == Approx(5.3597636).epsilon(1e-6));
	// The reference's HOLDOUT view for fern is 12.
	cfg.llffhold = 0;
	cfg.no_ndc = true;
	const nerf::Dataset holdout = nerf::load_dataset(cfg);
	CHECK(holdout.i_test == std::vector<int>{12});
	CHECK(holdout.near == Approx(1.2).epsilon(1e-6));
	CHECK(holdout.far == Approx(6.2801065).epsilon(1e-6));

	cfg.factor = 4;
	const nerf::Dataset ds4 = nerf::load_dataset(cfg);
	CHECK(ds4.H == 756);
	CHECK(ds4.W == 1008);
	CHECK(ds4.focal == Approx(stored_focal(fern) / 4).epsilon(1e-6));
	for (size_t i = 0; i < ds.n_images(); ++i)
		for (int k = 0; k < 12; ++k) CHECK(ds4.poses[i][k] == ds.poses[i][k]);  // poses do not depend on factor
	// factor 0, the option's default: nerf-pytorch's default for LLFF, 8.
	cfg.factor = 0;
	CHECK(nerf::load_dataset(cfg).W == 504);
	CHECK(nerf::Config{}.factor == 0);
	// images_4 and images_8 are the same photos: their means agree to within a few 8-bit levels.
	double mean8 = 0, mean4 = 0;
	for (float v : ds.images) mean8 += v;
	for (float v : ds4.images) mean4 += v;
	mean8 /= (double)ds.images.size();
	mean4 /= (double)ds4.images.size();
	CAPTURE(mean8, mean4);
	CHECK(std::abs(mean8 - mean4) < 2.0 / 255);
}

TEST_CASE("llff: beer with spherify, downsampled in-process by 8", "[data][llff][shared]") {
	const std::string beer = data_test::shared_scene("nerf_llff_data/beer");
	if (beer.empty()) return;
	nerf::Config cfg;
	cfg.dataset_type = "llff";
	cfg.datadir = beer;
	cfg.factor = 8;
	cfg.spherify = true;
	cfg.no_ndc = true;
	cfg.llffhold = 8;
	const nerf::Dataset ds = nerf::load_dataset(cfg);
	REQUIRE(ds.n_images() == 71);
	// The photos are 720 wide and 1280 high; no images_8 folder, so the loader averages 8x8 blocks.
	const nerf::Image first = nerf::load_image(beer + "/images/0000.jpg");
	CHECK(ds.H == first.height / 8);
	CHECK(ds.W == first.width / 8);
	CHECK(ds.H == 160);
	CHECK(ds.W == 90);
	CHECK(ds.focal == Approx(stored_focal(beer) / 8).epsilon(1e-6));
	CHECK_FALSE(ds.ndc);
	check_llff_common(ds);
	CHECK(rms_centre_distance(ds.poses) == Approx(1.0).epsilon(1e-5));
	REQUIRE(ds.render_poses.size() == 120);
	for (const auto& p : ds.render_poses) CHECK(centre(p).norm() == Approx(1.0).epsilon(1e-5));
	CHECK(ds.i_test.size() == 9);
	CHECK(ds.i_train.size() == 62);
	// An exact 8x8 box filter keeps each channel's mean.
	double mean_full[3] = {0, 0, 0}, mean_small[3] = {0, 0, 0};
	for (size_t p = 0; p < (size_t)first.width * first.height; ++p)
		for (int k = 0; k < 3; ++k) mean_full[k] += first.pixels[p * first.channels + k];
	for (size_t p = 0; p < (size_t)ds.H * ds.W; ++p)
		for (int k = 0; k < 3; ++k) mean_small[k] += ds.image(0)[p * 3 + k];
	for (int k = 0; k < 3; ++k)
		CHECK(mean_small[k] / (ds.H * ds.W) == Approx(mean_full[k] / ((double)first.width * first.height)).margin(1e-5));
	// Values from nerf-pytorch's load_llff_data(spherify=True) on this scene's poses_bounds.npy.
	const double pose3[12] = {0.75841713, -0.539095104, 0.36630556, 0.45692569, 0.588235974, 0.808187008,
	                          -0.028496813, -0.101023741, -0.280680925, 0.237086594, 0.930058181, 0.84828794};
	const double render7[12] = {-0.361241668, -0.702107131, 0.613636732, 0.613636732, 0.932472229, -0.27199775,
	                            0.23772414, 0.23772414, 0.0, 0.658075094, 0.752952337, 0.752952337};
	double worst = 0;
	for (int k = 0; k < 12; ++k) {
		worst = std::max(worst, std::abs(ds.poses[3][k] - pose3[k]));
		worst = std::max(worst, std::abs(ds.render_poses[7][k] - render7[k]));
	}
	CAPTURE(worst);
	CHECK(worst < 1e-6);
	CHECK(ds.bounds[3][0] == Approx(0.59415907).epsilon(1e-6));
	CHECK(ds.bounds[3][1] == Approx(3.3242278).epsilon(1e-6));
	CHECK(ds.near == Approx(0.4918383).epsilon(1e-6));
	CHECK(ds.far == Approx(5.511841).epsilon(1e-6));
}
