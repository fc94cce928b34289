// The built-in scene's geometry and shading: a ground disc, a banded sphere, a checkered box and
// a striped cylinder, intersected analytically and lit by one directional light.
//
// Everything here is chosen to be learnable by a small NeRF at 64x64 in a couple of CPU minutes:
// textures vary over tenths of the scene, never over a pixel; the only view-dependent term is a
// broad Blinn-Phong highlight; there are no shadows, so no hard-edged shading to fit.
#include "nerf/scene.h"

#include <Eigen/Core>
#include <Eigen/Geometry>

#include <algorithm>
#include <cmath>
#include <limits>

namespace nerf {
namespace {

using Vec3 = Eigen::Vector3d;

constexpr double kPi = 3.14159265358979323846;
constexpr double kNoHit = std::numeric_limits<double>::infinity();
// Hits closer than this are the surface the ray leaves, not a new one.
constexpr double kMinT = 1e-6;

enum class Shape { None, Ground, Sphere, Box, Cylinder };

struct Hit {
	double t = kNoHit;
	Shape shape = Shape::None;
	Vec3 normal = Vec3::Zero();
};

// --- the scene (world +Z up; everything inside [-1.2, 1.2]^3) --------------
constexpr double kGroundRadius = 1.1, kGroundTop = -0.5, kGroundBottom = -0.62;

const Vec3 kSphereCentre(0.0, 0.0, 0.0);
constexpr double kSphereRadius = 0.5;
// The sphere's bands run around this axis, tilted so that they are not plain latitude circles.
const Vec3 kSphereBandAxis = Vec3(0.3, 0.2, 1.0).normalized();

const Vec3 kBoxCentre(-0.7, 0.5, -0.23);
constexpr double kBoxHalf = 0.27;  // a cube; cells of the checker are kBoxHalf wide: 2x2 per face
constexpr double kBoxYaw = 0.5236;  // 30 degrees about +Z

constexpr double kCylinderX = 0.45, kCylinderY = -0.72, kCylinderRadius = 0.22;
constexpr double kCylinderBottom = -0.5, kCylinderTop = 0.45;

const Vec3 kLightDir = Vec3(0.5, 0.3, 0.8).normalized();  // towards the light
constexpr double kAmbient = 0.45, kDiffuse = 0.55;
constexpr double kSpecular = 0.25, kShininess = 24.0;

Vec3 mix(const Vec3& a, const Vec3& b, double t) { return a + (b - a) * t; }

double smoothstep(double edge0, double edge1, double x) {
	const double t = std::clamp((x - edge0) / (edge1 - edge0), 0.0, 1.0);
	return t * t * (3.0 - 2.0 * t);
}

void keep_nearer(Hit& best, double t, Shape shape, const Vec3& normal) {
	if (t > kMinT && t < best.t) {
		best.t = t;
		best.shape = shape;
		best.normal = normal;
	}
}

void intersect_sphere(const Vec3& o, const Vec3& d, Hit& best) {
	const Vec3 oc = o - kSphereCentre;
	const double a = d.dot(d), half_b = oc.dot(d), c = oc.dot(oc) - kSphereRadius * kSphereRadius;
	const double disc = half_b * half_b - a * c;
	if (disc < 0.0) return;
	const double root = std::sqrt(disc);
	for (double t : {(-half_b - root) / a, (-half_b + root) / a}) {
		if (t > kMinT) {
			keep_nearer(best, t, Shape::Sphere, (o + t * d - kSphereCentre) / kSphereRadius);
			return;
		}
	}
}

// A solid vertical cylinder: side, bottom cap and top cap.
void intersect_vertical_cylinder(const Vec3& o, const Vec3& d, double cx, double cy, double radius, double z_bottom,
                                 double z_top, Shape shape, Hit& best) {
	const double ox = o.x() - cx, oy = o.y() - cy;
	const double a = d.x() * d.x() + d.y() * d.y();
	if (a > 0.0) {
		const double half_b = ox * d.x() + oy * d.y(), c = ox * ox + oy * oy - radius * radius;
		const double disc = half_b * half_b - a * c;
		if (disc >= 0.0) {
			const double root = std::sqrt(disc);
			for (double t : {(-half_b - root) / a, (-half_b + root) / a}) {
				const double z = o.z() + t * d.z();
				if (t > kMinT && z >= z_bottom && z <= z_top) {
					const Vec3 normal((ox + t * d.x()) / radius, (oy + t * d.y()) / radius, 0.0);
					keep_nearer(best, t, shape, normal);
					break;
				}
			}
		}
	}
	if (d.z() != 0.0) {
		for (double z_cap : {z_bottom, z_top}) {
			const double t = (z_cap - o.z()) / d.z();
			const double x = ox + t * d.x(), y = oy + t * d.y();
			if (x * x + y * y <= radius * radius)
				keep_nearer(best, t, shape, Vec3(0.0, 0.0, z_cap == z_top ? 1.0 : -1.0));
		}
	}
}

// The box's own frame: axis-aligned, centred at the origin.
Vec3 to_box_frame(const Vec3& v, bool is_point) {
	const Vec3 shifted = is_point ? Vec3(v - kBoxCentre) : v;
	const double c = std::cos(kBoxYaw), s = std::sin(kBoxYaw);
	return Vec3(c * shifted.x() + s * shifted.y(), -s * shifted.x() + c * shifted.y(), shifted.z());
}

Vec3 from_box_frame_direction(const Vec3& v) {
	const double c = std::cos(kBoxYaw), s = std::sin(kBoxYaw);
	return Vec3(c * v.x() - s * v.y(), s * v.x() + c * v.y(), v.z());
}

// Slab test in the box frame; the normal is that of the slab the ray enters last.
void intersect_box(const Vec3& o_world, const Vec3& d_world, Hit& best) {
	const Vec3 o = to_box_frame(o_world, true), d = to_box_frame(d_world, false);
	double t_enter = -kNoHit, t_exit = kNoHit;
	int enter_axis = 0;
	double enter_sign = 1.0;
	for (int axis = 0; axis < 3; ++axis) {
		if (d[axis] == 0.0) {
			if (std::abs(o[axis]) > kBoxHalf) return;
			continue;
		}
		double t0 = (-kBoxHalf - o[axis]) / d[axis], t1 = (kBoxHalf - o[axis]) / d[axis];
		// Entering through the -half face when moving in +axis direction.
		double sign = -1.0;
		if (t0 > t1) {
			std::swap(t0, t1);
			sign = 1.0;
		}
		if (t0 > t_enter) {
			t_enter = t0;
			enter_axis = axis;
			enter_sign = sign;
		}
		t_exit = std::min(t_exit, t1);
	}
	if (t_enter > t_exit || t_exit <= kMinT) return;
	if (t_enter > kMinT) {
		Vec3 normal = Vec3::Zero();
		normal[enter_axis] = enter_sign;
		keep_nearer(best, t_enter, Shape::Box, from_box_frame_direction(normal));
	}
	// A ray starting inside the box sees nothing of it from inside; the scene's cameras are outside.
}

Vec3 albedo(const Hit& hit, const Vec3& point) {
	switch (hit.shape) {
	case Shape::Ground: {
		// Broad concentric rings.
		const double r = std::hypot(point.x(), point.y());
		const double t = 0.5 + 0.5 * std::cos(2.0 * kPi * r / 0.55);
		return mix(Vec3(0.85, 0.78, 0.62), Vec3(0.45, 0.50, 0.62), t);
	}
	case Shape::Sphere: {
		// Smooth two-colour bands around a tilted axis: 2.5 periods pole to pole.
		const Vec3 n = (point - kSphereCentre) / kSphereRadius;
		const double latitude = std::asin(std::clamp(n.dot(kSphereBandAxis), -1.0, 1.0));
		const double t = smoothstep(-0.6, 0.6, std::sin(5.0 * latitude));
		return mix(Vec3(0.85, 0.20, 0.15), Vec3(0.95, 0.85, 0.55), t);
	}
	case Shape::Box: {
		// A 2x2 checker on every face, with soft edges (no detail below a tenth of a cell).
		const Vec3 local = to_box_frame(point, true);
		const Vec3 local_normal = to_box_frame(hit.normal, false);
		int normal_axis = 0;
		local_normal.cwiseAbs().maxCoeff(&normal_axis);
		const double u = local[(normal_axis + 1) % 3], v = local[(normal_axis + 2) % 3];
		const double s = std::sin(kPi * u / kBoxHalf) * std::sin(kPi * v / kBoxHalf);
		const double t = smoothstep(-0.35, 0.35, s);
		return mix(Vec3(0.20, 0.35, 0.80), Vec3(0.95, 0.80, 0.25), t);
	}
	case Shape::Cylinder: {
		if (std::abs(hit.normal.z()) > 0.5) return Vec3(0.90, 0.90, 0.82);
		// Two soft horizontal stripes along the height.
		const double height = (point.z() - kCylinderBottom) / (kCylinderTop - kCylinderBottom);
		const double t = smoothstep(-0.5, 0.5, std::sin(2.0 * kPi * 2.0 * height));
		return mix(Vec3(0.15, 0.60, 0.30), Vec3(0.55, 0.85, 0.80), t);
	}
	case Shape::None: break;
	}
	return Vec3::Zero();
}

} // namespace

bool trace_builtin_scene(const float origin[3], const float direction[3], float rgb[3]) {
	const Vec3 o(origin[0], origin[1], origin[2]);
	const Vec3 d(direction[0], direction[1], direction[2]);
	Hit hit;
	intersect_vertical_cylinder(o, d, 0.0, 0.0, kGroundRadius, kGroundBottom, kGroundTop, Shape::Ground, hit);
	intersect_sphere(o, d, hit);
	intersect_box(o, d, hit);
	intersect_vertical_cylinder(o, d, kCylinderX, kCylinderY, kCylinderRadius, kCylinderBottom, kCylinderTop,
	                            Shape::Cylinder, hit);
	if (hit.shape == Shape::None) return false;

	const Vec3 point = o + hit.t * d;
	const Vec3 to_eye = -d.normalized();
	Vec3 normal = hit.normal.normalized();
	if (normal.dot(to_eye) < 0.0) normal = -normal;  // seen from behind (only at grazing edges)
	const Vec3 base = albedo(hit, point);
	const double diffuse = std::max(0.0, normal.dot(kLightDir));
	const Vec3 half_vector = (kLightDir + to_eye).normalized();
	// The highlight is the scene's view-dependent part; gate it by the diffuse term so that faces
	// turned away from the light stay dark.
	const double specular = diffuse > 0.0 ? std::pow(std::max(0.0, normal.dot(half_vector)), kShininess) : 0.0;
	const Vec3 colour = base * (kAmbient + kDiffuse * diffuse) + Vec3::Constant(kSpecular * specular);
	for (int c = 0; c < 3; ++c) rgb[c] = (float)std::clamp(colour[c], 0.0, 1.0);
	return true;
}

} // namespace nerf
