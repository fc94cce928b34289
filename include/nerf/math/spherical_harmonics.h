// Real spherical harmonics of degree 4 (bands l = 0..3: 16 values) of a unit view direction d = (x, y, z):
// the basis, signs, constants and order of tiny-cuda-nn's SphericalHarmonics encoding. Value l^2 + l + m
// (m = -l..l) is
//   Y_l^m = sqrt(2) K_l^|m| P_l^|m|(z) sin(|m| phi)   (m < 0)
//           K_l^0 P_l^0(z)                            (m = 0)
//           sqrt(2) K_l^m P_l^m(z) cos(m phi)         (m > 0)
// with K_l^m = sqrt((2l + 1) / (4 pi) (l - m)! / (l + m)!), P_l^m the associated Legendre functions
// including the Condon-Shortley phase (-1)^m, and phi the azimuth of (x, y); written out below as
// polynomials in x, y, z. An orthonormal basis on the unit sphere.
// tiny-cuda-nn's encoding takes its input in [0, 1]^3 and maps it to [-1, 1]^3 (2 v - 1) first; this
// function takes the unit direction itself (nerfcore's viewdirs are unit vectors), so no caller rescales.
// No backward: directions are data. Plain products and sums only (nothing contractible into an FMA
// differently by two compilers), so the CPU and the GPU compute the same bits.
#pragma once

#include "nerf/common.h"

namespace nerf {

constexpr int kShDeg4Width = 16;

NERF_HD inline void sh_encode_deg4(float* __restrict__ out16, const float* __restrict__ d) {
	const float x = d[0], y = d[1], z = d[2];
	const float xx = x * x, yy = y * y, zz = z * z;
	const float xy = x * y, yz = y * z, xz = x * z;
	// l = 0
	out16[0] = 0.28209479177387814f;  // 1 / (2 sqrt(pi))
	// l = 1: sqrt(3) / (2 sqrt(pi)) (-y, z, -x)
	out16[1] = -0.48860251190291987f * y;
	out16[2] = 0.48860251190291987f * z;
	out16[3] = -0.48860251190291987f * x;
	// l = 2
	out16[4] = 1.0925484305920792f * xy;                            // sqrt(15) / (2 sqrt(pi)) xy
	out16[5] = -1.0925484305920792f * yz;                           // -sqrt(15) / (2 sqrt(pi)) yz
	out16[6] = 0.94617469575755997f * zz - 0.31539156525251999f;    // sqrt(5) / (4 sqrt(pi)) (3 z^2 - 1)
	out16[7] = -1.0925484305920792f * xz;                           // -sqrt(15) / (2 sqrt(pi)) xz
	out16[8] = 0.54627421529603959f * (xx - yy);                    // sqrt(15) / (4 sqrt(pi)) (x^2 - y^2)
	// l = 3
	out16[9] = 0.59004358992664352f * y * (yy - 3.0f * xx);         // sqrt(70) / (8 sqrt(pi)) y (y^2 - 3 x^2)
	out16[10] = 2.8906114426405538f * xy * z;                       // sqrt(105) / (2 sqrt(pi)) xyz
	out16[11] = 0.45704579946446572f * y * (1.0f - 5.0f * zz);      // sqrt(42) / (8 sqrt(pi)) y (1 - 5 z^2)
	out16[12] = 0.3731763325901154f * z * (5.0f * zz - 3.0f);       // sqrt(7) / (4 sqrt(pi)) z (5 z^2 - 3)
	out16[13] = 0.45704579946446572f * x * (1.0f - 5.0f * zz);      // sqrt(42) / (8 sqrt(pi)) x (1 - 5 z^2)
	out16[14] = 1.4453057213202769f * z * (xx - yy);                // sqrt(105) / (4 sqrt(pi)) z (x^2 - y^2)
	out16[15] = 0.59004358992664352f * x * (3.0f * yy - xx);        // sqrt(70) / (8 sqrt(pi)) x (3 y^2 - x^2)
}

} // namespace nerf
