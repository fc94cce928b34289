// Camera rays, as nerf-pytorch's get_rays / ndc_rays.
//   pixel (i = column, j = row), no half-pixel offset (the reference uses integer coordinates):
//   d_cam = ((i - cx) / fx, -(j - cy) / fy, -1);  rays_d = R * d_cam;  rays_o = t (camera centre)
//   viewdir = rays_d / |rays_d|, taken before the NDC warp.
#pragma once

#include "nerf/common.h"

#include <cmath>

namespace nerf {

struct Camera {
	int H = 0, W = 0;
	float fx = 0, fy = 0, cx = 0, cy = 0;
	bool ndc = false;       ///< forward-facing LLFF scenes: warp to normalised device coordinates
	float ndc_near = 1.0f;  ///< the reference always passes near = 1 to ndc_rays
};

/// Ray for pixel (col, row) of a camera with camera-to-world pose c2w (3x4 row-major).
NERF_HD inline void camera_ray(float* __restrict__ o, float* __restrict__ d, int col, int row, const float* __restrict__ c2w,
                               const Camera& cam) {
	const float dir_x = ((float)col - cam.cx) / cam.fx;
	const float dir_y = -((float)row - cam.cy) / cam.fy;
	const float dir_z = -1.0f;
	for (int k = 0; k < 3; ++k) {
		d[k] = dir_x * c2w[4 * k + 0] + dir_y * c2w[4 * k + 1] + dir_z * c2w[4 * k + 2];
		o[k] = c2w[4 * k + 3];
	}
}

NERF_HD inline void normalize3(float* __restrict__ out, const float* __restrict__ v) {
	const float inv_norm = 1.0f / sqrtf(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
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

/// The full ray for a flat pixel id (image * H * W + row * W + col) of a stack of poses.
NERF_HD inline void pixel_ray(float* __restrict__ o, float* __restrict__ d, float* __restrict__ viewdir, uint32_t pixel_id,
                              const float* __restrict__ poses, const Camera& cam) {
	const uint32_t pixels_per_image = (uint32_t)cam.H * (uint32_t)cam.W;
	const uint32_t image = pixel_id / pixels_per_image;
	const uint32_t pixel = pixel_id - image * pixels_per_image;
	const int row = (int)(pixel / (uint32_t)cam.W), col = (int)(pixel % (uint32_t)cam.W);
	camera_ray(o, d, col, row, poses + 12 * (size_t)image, cam);
	normalize3(viewdir, d);
	if (cam.ndc) ndc_ray(o, d, cam);
}

} // namespace nerf
