// Tests of include/nerf/math/rays.h: get_rays (camera_ray), the flat pixel id decoding of pixel_ray,
// view directions, and ndc_rays against nerf-pytorch's formulas evaluated in double.
#include <catch2/catch.hpp>

#include "nerf/dataset.h"
#include "nerf/math/rays.h"

#include <cmath>
#include <random>
#include <vector>

using namespace nerf;

namespace {

Camera make_camera(int H, int W, float focal) {
	Camera cam;
	cam.H = H;
	cam.W = W;
	cam.fx = cam.fy = focal;
	cam.cx = 0.5f * (float)W;  // the reference's K: principal point at (W/2, H/2)
	cam.cy = 0.5f * (float)H;
	return cam;
}

// c2w = [R | t], row-major 3x4, R the rotation by `angle` about the unit `axis` (Rodrigues, in double).
std::vector<float> make_pose(const double axis[3], double angle, const double t[3]) {
	const double c = std::cos(angle), s = std::sin(angle), C = 1.0 - c;
	const double x = axis[0], y = axis[1], z = axis[2];
	const double R[3][3] = {{c + x * x * C, x * y * C - z * s, x * z * C + y * s},
	                        {y * x * C + z * s, c + y * y * C, y * z * C - x * s},
	                        {z * x * C - y * s, z * y * C + x * s, c + z * z * C}};
	std::vector<float> pose(12);
	for (int r = 0; r < 3; ++r) {
		for (int k = 0; k < 3; ++k) pose[4 * r + k] = (float)R[r][k];
		pose[4 * r + 3] = (float)t[r];
	}
	return pose;
}

// get_rays in double: dirs = ((i - cx)/fx, -(j - cy)/fy, -1); rays_d = sum(dirs * c2w[:3,:3], -1).
void reference_ray(double o[3], double d[3], int col, int row, const float* c2w, const Camera& cam) {
	const double dir[3] = {((double)col - cam.cx) / cam.fx, -((double)row - cam.cy) / cam.fy, -1.0};
	for (int k = 0; k < 3; ++k) {
		d[k] = 0.0;
		for (int j = 0; j < 3; ++j) d[k] += dir[j] * (double)c2w[4 * k + j];
		o[k] = c2w[4 * k + 3];
	}
}

// ndc_rays(H, W, focal, near, rays_o, rays_d) in double.
void reference_ndc(double o[3], double d[3], int H, int W, double focal, double near) {
	const double t = -(near + o[2]) / d[2];
	for (int k = 0; k < 3; ++k) o[k] += t * d[k];
	const double o0 = -1.0 / (W / (2.0 * focal)) * o[0] / o[2];
	const double o1 = -1.0 / (H / (2.0 * focal)) * o[1] / o[2];
	const double o2 = 1.0 + 2.0 * near / o[2];
	const double d0 = -1.0 / (W / (2.0 * focal)) * (d[0] / d[2] - o[0] / o[2]);
	const double d1 = -1.0 / (H / (2.0 * focal)) * (d[1] / d[2] - o[1] / o[2]);
	const double d2 = -2.0 * near / o[2];
	o[0] = o0; o[1] = o1; o[2] = o2;
	d[0] = d0; d[1] = d1; d[2] = d2;
}

} // namespace

TEST_CASE("camera_ray, identity rotation: hand values", "[math][rays]") {
	const Camera cam = make_camera(4, 6, 5.0f);  // cx = 3, cy = 2
	const float c2w[12] = {1, 0, 0, 1.5f, 0, 1, 0, -2.0f, 0, 0, 1, 3.25f};
	float o[3], d[3];
	camera_ray(o, d, 3, 2, c2w, cam);  // the principal point looks straight down -z
	CHECK(d[0] == 0.0f);
	CHECK(d[1] == 0.0f);
	CHECK(d[2] == -1.0f);
	CHECK(o[0] == 1.5f);
	CHECK(o[1] == -2.0f);
	CHECK(o[2] == 3.25f);

	camera_ray(o, d, 0, 0, c2w, cam);  // top-left pixel: left (-x) and up (+y), no half-pixel offset
	CHECK(d[0] == Approx(-0.6).margin(1e-7));
	CHECK(d[1] == Approx(0.4).margin(1e-7));
	CHECK(d[2] == -1.0f);

	camera_ray(o, d, 5, 3, c2w, cam);  // bottom-right pixel
	CHECK(d[0] == Approx(0.4).margin(1e-7));
	CHECK(d[1] == Approx(-0.2).margin(1e-7));
	CHECK(d[2] == -1.0f);

	// Separate focal lengths: x uses fx, y uses fy.
	Camera anisotropic = cam;
	anisotropic.fy = 8.0f;
	camera_ray(o, d, 0, 0, c2w, anisotropic);
	CHECK(d[0] == Approx(-0.6).margin(1e-7));
	CHECK(d[1] == Approx(0.25).margin(1e-7));
}

TEST_CASE("camera_ray, rotated poses: 90 degrees about y by hand and random poses vs double", "[math][rays]") {
	const Camera cam = make_camera(4, 6, 5.0f);
	// 90 degrees about +y maps camera -z (forward) to world -x and camera +x to world -z.
	const float c2w[12] = {0, 0, 1, 0, 0, 1, 0, 0, -1, 0, 0, 0};
	float o[3], d[3];
	camera_ray(o, d, 3, 2, c2w, cam);
	CHECK(d[0] == -1.0f);
	CHECK(d[1] == 0.0f);
	CHECK(d[2] == 0.0f);
	camera_ray(o, d, 0, 0, c2w, cam);  // d_cam = (-0.6, 0.4, -1) -> (-1, 0.4, 0.6)
	CHECK(d[0] == Approx(-1.0).margin(1e-7));
	CHECK(d[1] == Approx(0.4).margin(1e-7));
	CHECK(d[2] == Approx(0.6).margin(1e-7));

	std::mt19937 rng(5);
	std::uniform_real_distribution<double> uniform(-1.0, 1.0);
	const Camera big = make_camera(400, 400, 555.555f);
	for (int trial = 0; trial < 50; ++trial) {
		double axis[3] = {uniform(rng), uniform(rng), uniform(rng)};
		const double norm = std::sqrt(axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]);
		for (double& a : axis) a /= norm;
		const double t[3] = {4 * uniform(rng), 4 * uniform(rng), 4 * uniform(rng)};
		const std::vector<float> pose = make_pose(axis, 3.0 * uniform(rng), t);
		const int col = (int)(rng() % 400), row = (int)(rng() % 400);
		camera_ray(o, d, col, row, pose.data(), big);
		double ro[3], rd[3];
		reference_ray(ro, rd, col, row, pose.data(), big);
		for (int k = 0; k < 3; ++k) {
			INFO("trial " << trial << " component " << k);
			// |d| <= sqrt(3) and three float products and sums: a few ulps of 2.
			CHECK(std::fabs(d[k] - rd[k]) < 1e-6);
			CHECK(o[k] == (float)ro[k]);
		}
	}
}

TEST_CASE("pixel_ray decodes image * H * W + row * W + col and returns unit view directions", "[math][rays]") {
	const int H = 4, W = 6, n_images = 3;
	const Camera cam = make_camera(H, W, 5.0f);
	const std::vector<Camera> table = shared_camera_table(cam, n_images);
	std::vector<float> poses;
	const double axis[3] = {0.0, 0.6, 0.8};
	for (int image = 0; image < n_images; ++image) {
		const double t[3] = {1.0 + image, -2.0 * image, 0.5};
		const std::vector<float> pose = make_pose(axis, 0.7 * image, t);
		poses.insert(poses.end(), pose.begin(), pose.end());
	}
	for (int image = 0; image < n_images; ++image)
		for (int row = 0; row < H; ++row)
			for (int col = 0; col < W; ++col) {
				const uint32_t id = (uint32_t)(image * H * W + row * W + col);
				float o[3], d[3], viewdir[3];
				pixel_ray(o, d, viewdir, id, CameraSet{poses.data(), table.data(), (uint32_t)n_images});
				double ro[3], rd[3];
				reference_ray(ro, rd, col, row, poses.data() + 12 * image, cam);
				const double norm = std::sqrt(rd[0] * rd[0] + rd[1] * rd[1] + rd[2] * rd[2]);
				INFO("pixel id " << id);
				for (int k = 0; k < 3; ++k) {
					CHECK(o[k] == (float)ro[k]);
					CHECK(std::fabs(d[k] - rd[k]) < 1e-6);
					CHECK(std::fabs(viewdir[k] - rd[k] / norm) < 1e-6);
				}
				CHECK(std::fabs(std::sqrt(viewdir[0] * viewdir[0] + viewdir[1] * viewdir[1] + viewdir[2] * viewdir[2]) - 1.0) < 1e-6);
			}

	// Large ids (lego at 800 x 800, image 99, last pixel) decode without overflow.
	const Camera lego = make_camera(800, 800, 1111.0f);
	std::vector<float> many_poses(12 * 100, 0.0f);
	for (int image = 0; image < 100; ++image) {
		float* pose = many_poses.data() + 12 * image;
		pose[0] = pose[5] = pose[10] = 1.0f;
		pose[3] = (float)image;
	}
	const std::vector<Camera> lego_table = shared_camera_table(lego, 100);
	float o[3], d[3], viewdir[3];
	pixel_ray(o, d, viewdir, 99u * 800u * 800u + 799u * 800u + 798u, CameraSet{many_poses.data(), lego_table.data(), 100});
	CHECK(o[0] == 99.0f);
	CHECK(d[0] == Approx((798.0 - 400.0) / 1111.0).margin(1e-6));
	CHECK(d[1] == Approx(-(799.0 - 400.0) / 1111.0).margin(1e-6));
}

TEST_CASE("ndc_ray matches the reference ndc_rays formula", "[math][rays]") {
	// LLFF-like: camera near the origin looking down -z, focal comparable to the image size.
	const int H = 378, W = 504;
	const float focal = 407.5658f;
	Camera cam = make_camera(H, W, focal);
	cam.ndc = true;
	std::mt19937 rng(17);
	std::uniform_real_distribution<double> uniform(-1.0, 1.0);
	for (int trial = 0; trial < 200; ++trial) {
		float o[3] = {(float)(0.3 * uniform(rng)), (float)(0.3 * uniform(rng)), (float)(0.2 * uniform(rng))};
		float d[3] = {(float)(0.6 * uniform(rng)), (float)(0.45 * uniform(rng)), (float)(-1.0 + 0.1 * uniform(rng))};
		double ro[3] = {o[0], o[1], o[2]}, rd[3] = {d[0], d[1], d[2]};
		ndc_ray(o, d, cam);
		reference_ndc(ro, rd, H, W, focal, 1.0);
		for (int k = 0; k < 3; ++k) {
			INFO("trial " << trial << " component " << k << " o " << ro[k] << " d " << rd[k]);
			// About ten float operations of values of order 1, with the 2 focal / W factor ~1.6:
			// a few 1e-7 in the worst case; 2e-6 leaves room without hiding a wrong term.
			CHECK(std::fabs(o[k] - ro[k]) < 2e-6 * (1.0 + std::fabs(ro[k])));
			CHECK(std::fabs(d[k] - rd[k]) < 2e-6 * (1.0 + std::fabs(rd[k])));
		}
		// The shifted origin lies on the near plane z = -near, which NDC maps to z = -1.
		CHECK(std::fabs(o[2] + 1.0f) < 1e-6);
	}
}

TEST_CASE("ndc_ray with a near plane other than 1", "[math][rays]") {
	// The reference always passes near = 1, but ndc_near is a parameter: it must enter the shift, o2 and d2.
	const int H = 60, W = 80;
	Camera cam = make_camera(H, W, 70.0f);
	cam.ndc_near = 0.5f;
	float o[3] = {0.1f, -0.05f, 0.2f}, d[3] = {0.3f, 0.2f, -1.0f};
	double ro[3] = {o[0], o[1], o[2]}, rd[3] = {d[0], d[1], d[2]};
	ndc_ray(o, d, cam);
	reference_ndc(ro, rd, H, W, 70.0, 0.5);
	for (int k = 0; k < 3; ++k) {
		CHECK(std::fabs(o[k] - ro[k]) < 2e-6 * (1.0 + std::fabs(ro[k])));
		CHECK(std::fabs(d[k] - rd[k]) < 2e-6 * (1.0 + std::fabs(rd[k])));
	}
	CHECK(o[2] == Approx(-1.0).margin(1e-6));  // the near plane z = -0.5 still maps to NDC z = -1
	CHECK(d[2] == Approx(2.0).margin(1e-6));  // -2 near / o_z with the shifted o_z = -near
}

TEST_CASE("ndc_ray: points on the world ray map onto the NDC ray, NDC z from -1 up to 1", "[math][rays]") {
	const int H = 60, W = 80;
	const double focal = 70.0;
	Camera cam = make_camera(H, W, (float)focal);
	cam.ndc_near = 1.0f;
	const double world_o[3] = {0.1, -0.05, 0.2}, world_d[3] = {0.3, 0.2, -1.0};
	float o[3] = {(float)world_o[0], (float)world_o[1], (float)world_o[2]};
	float d[3] = {(float)world_d[0], (float)world_d[1], (float)world_d[2]};
	ndc_ray(o, d, cam);
	CHECK(o[2] == Approx(-1.0).margin(1e-6));
	double previous_z = -1.0;
	for (double s : {1.25, 1.5, 2.0, 5.0, 20.0, 1e3, 1e6}) {
		// The projection of p = o + s d: (-2f/W px/pz, -2f/H py/pz, 1 + 2 near/pz), pz < -near.
		const double p[3] = {world_o[0] + s * world_d[0], world_o[1] + s * world_d[1], world_o[2] + s * world_d[2]};
		REQUIRE(p[2] < -1.0);
		const double projected[3] = {-2.0 * focal / W * p[0] / p[2], -2.0 * focal / H * p[1] / p[2], 1.0 + 2.0 / p[2]};
		CHECK(projected[2] > previous_z);
		CHECK(projected[2] < 1.0);
		previous_z = projected[2];
		// It lies on the NDC ray at the parameter that reaches its NDC z.
		const double t_ndc = (projected[2] - o[2]) / d[2];
		INFO("s = " << s);
		CHECK(t_ndc >= -1e-6);
		CHECK(t_ndc <= 1.0 + 1e-6);
		CHECK(std::fabs(o[0] + t_ndc * d[0] - projected[0]) < 1e-5);
		CHECK(std::fabs(o[1] + t_ndc * d[1] - projected[1]) < 1e-5);
	}
	// The point at infinity is at NDC z = 1: o_z + d_z = 1.
	CHECK(o[2] + d[2] == Approx(1.0).margin(1e-6));
}

TEST_CASE("pixel_ray with NDC: view direction from the world ray, origin and direction warped", "[math][rays]") {
	const int H = 30, W = 40;
	Camera cam = make_camera(H, W, 35.0f);
	cam.ndc = true;
	const double axis[3] = {1.0, 0.0, 0.0}, t[3] = {0.05, -0.02, 0.1};
	const std::vector<float> pose = make_pose(axis, 0.1, t);
	for (int row = 0; row < H; row += 7)
		for (int col = 0; col < W; col += 9) {
			float o[3], d[3], viewdir[3];
			pixel_ray(o, d, viewdir, (uint32_t)(row * W + col), CameraSet{pose.data(), &cam, 1});
			double ro[3], rd[3];
			reference_ray(ro, rd, col, row, pose.data(), cam);
			const double norm = std::sqrt(rd[0] * rd[0] + rd[1] * rd[1] + rd[2] * rd[2]);
			double no[3] = {ro[0], ro[1], ro[2]}, nd[3] = {rd[0], rd[1], rd[2]};
			reference_ndc(no, nd, H, W, 35.0, 1.0);
			INFO("row " << row << " col " << col);
			for (int k = 0; k < 3; ++k) {
				CHECK(std::fabs(viewdir[k] - rd[k] / norm) < 1e-6);  // before the warp
				CHECK(std::fabs(o[k] - no[k]) < 2e-6 * (1.0 + std::fabs(no[k])));
				CHECK(std::fabs(d[k] - nd[k]) < 2e-6 * (1.0 + std::fabs(nd[k])));
			}
		}
}
