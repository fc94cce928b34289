// Camera rays, as nerf-pytorch's get_rays / ndc_rays, for real camera models.
//   pixel (i = column, j = row) sits at image coordinates (u, v) = (i, j) in the reference's convention
//   (its loaders use integer coordinates: pixel corners) or (i + 0.5, j + 0.5) with pixel_centers
//   (transforms.json, COLMAP); the lens maps the normalised coordinates ((u - cx) / fx, (v - cy) / fy)
//   back to undistorted ones (x, y), y pointing down as in OpenCV:
//   d_cam = (x, -y, -1);  rays_d = R * d_cam;  rays_o = t (camera centre)
//   viewdir = rays_d / |rays_d|, taken before the NDC warp.
// A pinhole camera does this in float, exactly as before lenses existed; a distorting lens
// undistorts in double, since Newton's iterations in float stall ~1e-4 px short of the solution.
#pragma once

#include "nerf/common.h"

#include <cmath>
#include <cstdint>

namespace nerf {

/// Camera models of transforms.json (nerfstudio's camera_model names) and COLMAP.
enum class LensModel : int32_t {
	Pinhole = 0,        ///< PINHOLE: no distortion
	OpenCV = 1,         ///< OPENCV: radial (k1..k4) and tangential (p1, p2)
	OpenCVFisheye = 2,  ///< OPENCV_FISHEYE: equidistant, radial in the angle (k1..k4)
};

/// Distortion of normalised image coordinates (x, y) = ((u - cx) / fx, (v - cy) / fy):
///   OpenCV:  r2 = x^2 + y^2, radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3 + k4 r2^4 (nerfstudio's polynomial;
///            OpenCV's own k4..k6 form a rational term that no writer of transforms.json uses)
///            x_d = x radial + 2 p1 x y + p2 (r2 + 2 x^2),  y_d = y radial + p1 (r2 + 2 y^2) + 2 p2 x y
///   OpenCVFisheye: theta = atan(r), theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8),
///            (x_d, y_d) = theta_d / r * (x, y)
struct Lens {
	LensModel model = LensModel::Pinhole;
	float k1 = 0, k2 = 0, k3 = 0, k4 = 0, p1 = 0, p2 = 0;
};

struct Camera {
	int H = 0, W = 0;
	float fx = 0, fy = 0, cx = 0, cy = 0;
	bool ndc = false;           ///< forward-facing LLFF scenes: warp to normalised device coordinates
	float ndc_near = 1.0f;      ///< the reference always passes near = 1 to ndc_rays
	bool pixel_centers = false; ///< rays through (i + 0.5, j + 0.5); false: the reference's (i, j)
	Lens lens;
	uint32_t first_pixel = 0;   ///< in a camera table: the flat id of this image's pixel (0, 0)
};

/// Per-image cameras and poses, both in the memory of the backend that reads them. Image k's pixels
/// have the flat ids cameras[k].first_pixel + row * W_k + col; first_pixel ascends with k, images in
/// order with no gaps (so a flat id is also the pixel's index in the images stacked one after another).
struct CameraSet {
	const float* poses = nullptr;     ///< [n_images, 3, 4] camera-to-world, row-major
	const Camera* cameras = nullptr;  ///< [n_images]
	uint32_t n_images = 0;
};

// Newton's method stops once a step moves the solution by less than this (relative, in normalised
// units): convergence is quadratic, so the next step would be ~1e-24, and the iterate is as exact as
// double rounding of the residual allows (~1e-16; 1e-13 px at a focal length of 1000 px).
constexpr double kLensTolerance = 1e-12;
constexpr int kLensMaxIterations = 50;

/// The lens's forward model: undistorted normalised (x, y) -> distorted (xd, yd).
NERF_HD inline void lens_distort(const Lens& lens, double x, double y, double& xd, double& yd) {
	const double k1 = lens.k1, k2 = lens.k2, k3 = lens.k3, k4 = lens.k4;
	if (lens.model == LensModel::OpenCV) {
		const double p1 = lens.p1, p2 = lens.p2;
		const double r2 = x * x + y * y;
		const double radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * k4)));
		xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x);
		yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y;
	} else if (lens.model == LensModel::OpenCVFisheye) {
		const double r = sqrt(x * x + y * y);
		if (r < 1e-300) {
			xd = x;
			yd = y;
			return;
		}
		const double theta = atan(r), t2 = theta * theta;
		const double theta_d = theta * (1.0 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))));
		xd = x * (theta_d / r);
		yd = y * (theta_d / r);
	} else {
		xd = x;
		yd = y;
	}
}

/// The inverse of lens_distort by Newton's method from (xd, yd). Returns false when it did not converge, or
/// converged on a folded-over branch of the lens (no real direction maps there), or for fisheye angles at
/// or beyond 90 degrees; (x, y) then hold the last iterate.
NERF_HD inline bool lens_undistort(const Lens& lens, double xd, double yd, double& x, double& y) {
	x = xd;
	y = yd;
	const double k1 = lens.k1, k2 = lens.k2, k3 = lens.k3, k4 = lens.k4;
	if (lens.model == LensModel::OpenCV) {
		const double p1 = lens.p1, p2 = lens.p2;
		for (int it = 0; it < kLensMaxIterations; ++it) {
			const double r2 = x * x + y * y;
			const double radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * k4)));
			const double dradial_dr2 = k1 + r2 * (2.0 * k2 + r2 * (3.0 * k3 + r2 * 4.0 * k4));
			const double fx = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x) - xd;
			const double fy = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y - yd;
			// Jacobian of (x_d, y_d) with respect to (x, y).
			const double j_xx = radial + 2.0 * x * x * dradial_dr2 + 2.0 * p1 * y + 6.0 * p2 * x;
			const double j_xy = 2.0 * x * y * dradial_dr2 + 2.0 * p1 * x + 2.0 * p2 * y;
			const double j_yy = radial + 2.0 * y * y * dradial_dr2 + 6.0 * p1 * y + 2.0 * p2 * x;
			const double det = j_xx * j_yy - j_xy * j_xy;  // the Jacobian is symmetric
			if (!(fabs(det) > 1e-300)) return false;
			const double step_x = (fx * j_yy - fy * j_xy) / det, step_y = (fy * j_xx - fx * j_xy) / det;
			x -= step_x;
			y -= step_y;
			// A strong lens folds over far from the axis, where a second, mirrored root exists: only the
			// branch that grows with r (radial > 0, orientation kept) is the image of a real direction.
			if (fabs(step_x) + fabs(step_y) <= kLensTolerance * (1.0 + fabs(x) + fabs(y)))
				return radial > 0.0 && det > 0.0 && fabs(x) + fabs(y) < 1e300;  // false for NaN
		}
		return false;
	}
	if (lens.model == LensModel::OpenCVFisheye) {
		const double theta_d = sqrt(xd * xd + yd * yd);
		if (theta_d < 1e-300) return true;
		double theta = theta_d;
		constexpr double kHalfPi = 1.57079632679489661923;
		for (int it = 0; it < kLensMaxIterations; ++it) {
			const double t2 = theta * theta;
			const double f = theta * (1.0 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))) - theta_d;
			const double df = 1.0 + t2 * (3.0 * k1 + t2 * (5.0 * k2 + t2 * (7.0 * k3 + t2 * 9.0 * k4)));
			if (!(fabs(df) > 1e-300)) return false;
			const double step = f / df;
			theta -= step;
			if (fabs(step) <= kLensTolerance * (1.0 + theta)) {
				if (!(theta >= 0.0 && theta < kHalfPi && df > 0.0)) return false;
				const double scale = tan(theta) / theta_d;
				x = xd * scale;
				y = yd * scale;
				return true;
			}
		}
		return false;
	}
	return true;
}

/// Ray for pixel (col, row) of a camera with camera-to-world pose c2w (3x4 row-major).
NERF_HD inline void camera_ray(float* __restrict__ o, float* __restrict__ d, int col, int row, const float* __restrict__ c2w,
                               const Camera& cam) {
	float dir_x, dir_y;
	if (cam.lens.model == LensModel::Pinhole) {
		// (float)col + 0 is exact, so the reference's corner convention gives its rays bit for bit.
		const float offset = cam.pixel_centers ? 0.5f : 0.0f;
		dir_x = ((float)col + offset - cam.cx) / cam.fx;
		dir_y = -((float)row + offset - cam.cy) / cam.fy;
	} else {
		const double offset = cam.pixel_centers ? 0.5 : 0.0;
		double x, y;
		lens_undistort(cam.lens, ((double)col + offset - cam.cx) / cam.fx, ((double)row + offset - cam.cy) / cam.fy, x, y);
		dir_x = (float)x;
		dir_y = -(float)y;
	}
	const float dir_z = -1.0f;
	for (int k = 0; k < 3; ++k) {
		d[k] = dir_x * c2w[4 * k + 0] + dir_y * c2w[4 * k + 1] + dir_z * c2w[4 * k + 2];
		o[k] = c2w[4 * k + 3];
	}
}

NERF_HD inline float norm3(const float* v) { return sqrtf(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]); }

NERF_HD inline void normalize3(float* __restrict__ out, const float* __restrict__ v) {
	const float inv_norm = 1.0f / norm3(v);
	out[0] = v[0] * inv_norm;
	out[1] = v[1] * inv_norm;
	out[2] = v[2] * inv_norm;
}

/// nerf-pytorch's ndc_rays(H, W, focal, near, rays_o, rays_d), in place.
/// Shifts the origin to the near plane z = -near first, then projects.
NERF_HD inline void ndc_ray(float* __restrict__ o, float* __restrict__ d, const Camera& cam) {
	const float near = cam.ndc_near;
	const float t = -(near + o[2]) / d[2];
	const float ox = o[0] + t * d[0], oy = o[1] + t * d[1], oz = o[2] + t * d[2];
	const float sx = -1.0f / ((float)cam.W / (2.0f * cam.fx));
	const float sy = -1.0f / ((float)cam.H / (2.0f * cam.fx));  // the reference uses one focal for both axes
	const float o0 = sx * ox / oz;
	const float o1 = sy * oy / oz;
	const float o2 = 1.0f + 2.0f * near / oz;
	const float d0 = sx * (d[0] / d[2] - ox / oz);
	const float d1 = sy * (d[1] / d[2] - oy / oz);
	const float d2 = -2.0f * near / oz;
	o[0] = o0; o[1] = o1; o[2] = o2;
	d[0] = d0; d[1] = d1; d[2] = d2;
}

/// The image a flat pixel id belongs to: the last camera whose first_pixel is <= pixel_id (binary search).
NERF_HD inline uint32_t image_of_pixel(uint32_t pixel_id, const Camera* __restrict__ cameras, uint32_t n_images) {
	uint32_t lo = 0, hi = n_images;
	while (hi - lo > 1) {
		const uint32_t mid = lo + (hi - lo) / 2;
		if (cameras[mid].first_pixel <= pixel_id) lo = mid;
		else hi = mid;
	}
	return lo;
}

/// The full ray for a flat pixel id of a camera set (see CameraSet).
NERF_HD inline void pixel_ray(float* __restrict__ o, float* __restrict__ d, float* __restrict__ viewdir, uint32_t pixel_id,
                              const CameraSet& set) {
	const uint32_t image = image_of_pixel(pixel_id, set.cameras, set.n_images);
	const Camera& cam = set.cameras[image];
	const uint32_t pixel = pixel_id - cam.first_pixel;
	const int row = (int)(pixel / (uint32_t)cam.W), col = (int)(pixel % (uint32_t)cam.W);
	camera_ray(o, d, col, row, set.poses + 12 * (size_t)image, cam);
	normalize3(viewdir, d);
	if (cam.ndc) ndc_ray(o, d, cam);
}

} // namespace nerf
