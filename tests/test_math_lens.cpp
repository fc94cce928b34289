// Lens models of include/nerf/math/rays.h: the forward distortion against the formulas written out
// here, undistortion as its inverse over whole images of strong lenses, and camera_ray / pixel_ray
// through distorted cameras of different sizes in one camera table.
#include <catch2/catch.hpp>

#include "nerf/math/rays.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using namespace nerf;

namespace {

Lens make_lens(LensModel model, float k1, float k2, float k3, float k4, float p1, float p2) {
	Lens lens;
	lens.model = model;
	lens.k1 = k1;
	lens.k2 = k2;
	lens.k3 = k3;
	lens.k4 = k4;
	lens.p1 = p1;
	lens.p2 = p2;
	return lens;
}

// OpenCV's radial-tangential model as its documentation writes it, powers of r spelled out.
void opencv_by_hand(const Lens& l, double x, double y, double& xd, double& yd) {
	const double r2 = x * x + y * y, r4 = r2 * r2, r6 = r4 * r2, r8 = r4 * r4;
	const double radial = 1 + l.k1 * r2 + l.k2 * r4 + l.k3 * r6 + l.k4 * r8;
	xd = x * radial + 2 * l.p1 * x * y + l.p2 * (r2 + 2 * x * x);
	yd = y * radial + l.p1 * (r2 + 2 * y * y) + 2 * l.p2 * x * y;
}

// OpenCV's fisheye (equidistant) model as its documentation writes it.
void fisheye_by_hand(const Lens& l, double x, double y, double& xd, double& yd) {
	const double r = std::hypot(x, y), theta = std::atan(r);
	const double theta_d = theta * (1 + l.k1 * std::pow(theta, 2) + l.k2 * std::pow(theta, 4) + l.k3 * std::pow(theta, 6) +
	                                l.k4 * std::pow(theta, 8));
	xd = theta_d / r * x;
	yd = theta_d / r * y;
}

struct LensCase {
	const char* name;
	Camera cam;
};

Camera make_camera(int W, int H, float fx, float fy, float cx, float cy, const Lens& lens) {
	Camera cam;
	cam.W = W;
	cam.H = H;
	cam.fx = fx;
	cam.fy = fy;
	cam.cx = cx;
	cam.cy = cy;
	cam.pixel_centers = true;
	cam.lens = lens;
	return cam;
}

// Strong lenses on a 1280 x 960 sensor: corners 1.0-1.2 focal lengths off axis, where each one moves
// pixels by tens of pixels (checked below), and every one of them still one-to-one over the image.
std::vector<LensCase> strong_lenses() {
	return {
	    {"OpenCV barrel", make_camera(1280, 960, 620.f, 610.f, 652.5f, 470.25f,
	                                  make_lens(LensModel::OpenCV, -0.30f, 0.08f, -0.005f, 0.0f, 0.0015f, -0.002f))},
	    {"OpenCV pincushion + tangential", make_camera(1280, 960, 700.f, 705.f, 631.f, 488.f,
	                                                   make_lens(LensModel::OpenCV, 0.25f, 0.05f, 0.01f, 0.002f, 0.01f, -0.008f))},
	    {"OpenCV fisheye", make_camera(1280, 960, 700.f, 700.f, 640.f, 480.f,
	                                   make_lens(LensModel::OpenCVFisheye, 0.05f, -0.01f, 0.003f, -0.0005f, 0.f, 0.f))},
	};
}

double corner_displacement_px(const Camera& cam) {
	// How far the lens moves the image corner: undistorted position minus distorted one, in pixels.
	const double xd = (0.0 - cam.cx) / cam.fx, yd = (0.0 - cam.cy) / cam.fy;
	double x, y;
	REQUIRE(lens_undistort(cam.lens, xd, yd, x, y));
	return std::hypot((x - xd) * cam.fx, (y - yd) * cam.fy);
}

} // namespace

TEST_CASE("lens_distort: OpenCV and fisheye forward models equal their written-out formulas", "[math][rays][lens]") {
	std::mt19937 rng(3);
	std::uniform_real_distribution<double> coord(-1.2, 1.2);
	const Lens opencv = make_lens(LensModel::OpenCV, -0.21f, 0.043f, -0.007f, 0.0011f, 0.0031f, -0.0017f);
	const Lens fisheye = make_lens(LensModel::OpenCVFisheye, 0.031f, -0.012f, 0.0045f, -0.0007f, 0.f, 0.f);
	for (int trial = 0; trial < 1000; ++trial) {
		const double x = coord(rng), y = coord(rng);
		double xd, yd, ex, ey;
		lens_distort(opencv, x, y, xd, yd);
		opencv_by_hand(opencv, x, y, ex, ey);
		CHECK(std::abs(xd - ex) < 1e-13);
		CHECK(std::abs(yd - ey) < 1e-13);
		lens_distort(fisheye, x, y, xd, yd);
		fisheye_by_hand(fisheye, x, y, ex, ey);
		CHECK(std::abs(xd - ex) < 1e-13);
		CHECK(std::abs(yd - ey) < 1e-13);
	}
	// A hand value: k1 = 0.1 alone at (0.5, 0): r2 = 0.25, x_d = 0.5 (1 + 0.025) = 0.5125.
	double xd, yd;
	lens_distort(make_lens(LensModel::OpenCV, 0.1f, 0, 0, 0, 0, 0), 0.5, 0.0, xd, yd);
	CHECK(xd == Approx(0.5125).epsilon(1e-7));  // k1 is stored as a float: 0.1f
	CHECK(yd == 0.0);
	// p1 alone at (0, 0.5): y_d = y + p1 (r2 + 2 y^2) = 0.5 + 0.01 * 0.75.
	lens_distort(make_lens(LensModel::OpenCV, 0, 0, 0, 0, 0.01f, 0), 0.0, 0.5, xd, yd);
	CHECK(xd == 0.0);
	CHECK(yd == Approx(0.5075).epsilon(1e-7));
	// Pinhole and the optical axis are left alone.
	lens_distort(Lens{}, 0.3, -0.7, xd, yd);
	CHECK(xd == 0.3);
	CHECK(yd == -0.7);
	lens_distort(fisheye, 0.0, 0.0, xd, yd);
	CHECK(xd == 0.0);
	CHECK(yd == 0.0);
}

TEST_CASE("lens_undistort inverts lens_distort to 1e-6 px over whole images of strong lenses", "[math][rays][lens]") {
	for (const LensCase& c : strong_lenses()) {
		const Camera& cam = c.cam;
		INFO(c.name);
		// The lens matters: the corner moves by tens of pixels (a pinhole would fail this test).
		const double displacement = corner_displacement_px(cam);
		CAPTURE(displacement);
		CHECK(displacement > 20.0);
		double worst_px = 0.0;
		int failures = 0;
		// Every pixel centre of every 3rd row and column, plus the whole border.
		for (int row = 0; row <= cam.H; ++row) {
			for (int col = 0; col <= cam.W; ++col) {
				const bool border = row == 0 || col == 0 || row == cam.H || col == cam.W;
				if (!border && (row % 3 != 0 || col % 3 != 0)) continue;
				const double u = border ? col : col + 0.5, v = border ? row : row + 0.5;
				const double xd = (u - cam.cx) / cam.fx, yd = (v - cam.cy) / cam.fy;
				double x, y, xr, yr;
				if (!lens_undistort(cam.lens, xd, yd, x, y)) {
					++failures;
					continue;
				}
				lens_distort(cam.lens, x, y, xr, yr);
				worst_px = std::max({worst_px, std::abs(xr - xd) * cam.fx, std::abs(yr - yd) * cam.fy});
			}
		}
		CAPTURE(worst_px);
		CHECK(failures == 0);
		CHECK(worst_px < 1e-6);
	}
}

TEST_CASE("lens_undistort reports what it cannot invert", "[math][rays][lens]") {
	double x, y;
	// A fisheye angle of 90 degrees or more has no pinhole direction with z = -1.
	const Lens fisheye = make_lens(LensModel::OpenCVFisheye, 0, 0, 0, 0, 0, 0);
	CHECK(lens_undistort(fisheye, 1.5, 0.0, x, y));  // theta 1.5 rad < pi / 2
	CHECK(x == Approx(std::tan(1.5)).epsilon(1e-12));
	CHECK_FALSE(lens_undistort(fisheye, 1.6, 0.0, x, y));
	// Strong barrel distortion folds over: past r ~ 1.1 no undistorted point maps out that far.
	const Lens folding = make_lens(LensModel::OpenCV, -0.5f, 0, 0, 0, 0, 0);
	CHECK(lens_undistort(folding, 0.3, 0.2, x, y));
	CHECK_FALSE(lens_undistort(folding, 0.9, 0.0, x, y));
}

TEST_CASE("camera_ray: a distorted camera's ray projects back through the lens onto the pixel centre", "[math][rays][lens]") {
	const float c2w[12] = {0.8f, 0.0f, 0.6f, 1.0f, 0.0f, 1.0f, 0.0f, -2.0f, -0.6f, 0.0f, 0.8f, 0.5f};
	for (const LensCase& c : strong_lenses()) {
		INFO(c.name);
		const Camera& cam = c.cam;
		double worst_px = 0.0;
		for (int row = 0; row < cam.H; row += 37)
			for (int col = 0; col < cam.W; col += 41) {
				float o[3], d[3];
				camera_ray(o, d, col, row, c2w, cam);
				// Back into the camera frame (R^T d), then the OpenCV camera's normalised coordinates.
				double cam_d[3];
				for (int k = 0; k < 3; ++k) cam_d[k] = d[0] * c2w[k] + d[1] * c2w[4 + k] + d[2] * c2w[8 + k];
				const double x = cam_d[0] / -cam_d[2], y = -cam_d[1] / -cam_d[2];
				double xd, yd;
				lens_distort(cam.lens, x, y, xd, yd);
				worst_px = std::max({worst_px, std::abs(cam.fx * xd + cam.cx - (col + 0.5)),
				                     std::abs(cam.fy * yd + cam.cy - (row + 0.5))});
				CHECK(o[0] == c2w[3]);
				CHECK(o[2] == c2w[11]);
			}
		CAPTURE(worst_px);
		// The direction is stored in float: ~1e-7 relative of coordinates up to ~1.5, times f ~ 700.
		CHECK(worst_px < 2e-3);
	}
}

TEST_CASE("camera_ray: the reference's pinhole rays are unchanged to the bit, pixel centres shift by half a pixel",
          "[math][rays][lens]") {
	std::mt19937 rng(9);
	std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
	for (int trial = 0; trial < 200; ++trial) {
		Camera cam;
		cam.W = 100 + (int)(rng() % 700);
		cam.H = 100 + (int)(rng() % 700);
		cam.fx = 300.0f + 500.0f * std::abs(uniform(rng));
		cam.fy = cam.fx * (1.0f + 0.1f * uniform(rng));
		cam.cx = 0.5f * cam.W;
		cam.cy = 0.5f * cam.H;
		float c2w[12];
		for (float& v : c2w) v = uniform(rng);
		const int col = (int)(rng() % cam.W), row = (int)(rng() % cam.H);
		float o[3], d[3];
		camera_ray(o, d, col, row, c2w, cam);
		// The expression the ray math had before lenses existed, evaluated the same way in float.
		const float dir_x = ((float)col - cam.cx) / cam.fx, dir_y = -((float)row - cam.cy) / cam.fy, dir_z = -1.0f;
		for (int k = 0; k < 3; ++k) {
			const float expected = dir_x * c2w[4 * k + 0] + dir_y * c2w[4 * k + 1] + dir_z * c2w[4 * k + 2];
			CHECK(d[k] == expected);
		}
		Camera centred = cam;
		centred.pixel_centers = true;
		float oc[3], dc[3];
		camera_ray(oc, dc, col, row, c2w, centred);
		const float cdir_x = ((float)col + 0.5f - cam.cx) / cam.fx, cdir_y = -((float)row + 0.5f - cam.cy) / cam.fy;
		for (int k = 0; k < 3; ++k)
			CHECK(dc[k] == cdir_x * c2w[4 * k + 0] + cdir_y * c2w[4 * k + 1] + dir_z * c2w[4 * k + 2]);
	}
}

TEST_CASE("pixel_ray: a table of cameras of different sizes and lenses decodes each flat id", "[math][rays][lens]") {
	std::vector<Camera> table = {
	    make_camera(5, 3, 4.0f, 4.5f, 2.5f, 1.5f, Lens{}),
	    make_camera(2, 4, 3.0f, 3.0f, 1.0f, 2.0f, make_lens(LensModel::OpenCV, 0.1f, 0.01f, 0, 0, 0.002f, 0.001f)),
	    make_camera(7, 2, 6.0f, 6.0f, 3.5f, 1.0f, make_lens(LensModel::OpenCVFisheye, 0.02f, 0, 0, 0, 0, 0)),
	};
	table[0].pixel_centers = false;  // the reference's convention next to transforms.json cameras
	uint32_t first = 0;
	for (Camera& cam : table) {
		cam.first_pixel = first;
		first += (uint32_t)(cam.W * cam.H);
	}
	std::vector<float> poses;
	for (int image = 0; image < 3; ++image) {
		const float pose[12] = {1, 0, 0, (float)image, 0, 1, 0, 0.5f * image, 0, 0, 1, -1.0f * image};
		poses.insert(poses.end(), pose, pose + 12);
	}
	const CameraSet set{poses.data(), table.data(), 3};
	uint32_t id = 0;
	for (int image = 0; image < 3; ++image) {
		const Camera& cam = table[image];
		for (int row = 0; row < cam.H; ++row)
			for (int col = 0; col < cam.W; ++col, ++id) {
				INFO("id " << id << " image " << image << " row " << row << " col " << col);
				CHECK(image_of_pixel(id, table.data(), 3) == (uint32_t)image);
				float o[3], d[3], v[3], eo[3], ed[3], ev[3];
				pixel_ray(o, d, v, id, set);
				camera_ray(eo, ed, col, row, poses.data() + 12 * image, cam);
				normalize3(ev, ed);
				for (int k = 0; k < 3; ++k) {
					CHECK(o[k] == eo[k]);
					CHECK(d[k] == ed[k]);
					CHECK(v[k] == ev[k]);
				}
			}
	}
	CHECK(id == first);
}
