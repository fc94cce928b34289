// query_density: a trained scene as a function, through libnerfcore's query API (nerf/query.h). Loads
// a checkpoint written by nerf_train, walks one ray through the scene's box from a camera at distance
// 4 on +z looking at the origin, and prints the density and colour at a few points along it, then
// where the ray's opacity first passes one half (the surface a renderer would draw there).
//
//   query_density CHECKPOINT [N_POINTS=9]
#include <nerf/query.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

int main(int argc, char** argv) {
	if (argc < 2) {
		std::fprintf(stderr, "usage: %s CHECKPOINT [N_POINTS=9]\n", argv[0]);
		return 1;
	}
	try {
		const int n_print = argc > 2 ? std::max(2, std::atoi(argv[2])) : 9;
		nerf::FieldQueryOptions options;
		options.device = "cpu";
		nerf::FieldQuery scene(argv[1], options);
		const nerf::GridBox box = scene.box();
		std::printf("%s: model %s, step %ld, box [%g, %g, %g] .. [%g, %g, %g]\n", argv[1], scene.field_type(), scene.step(),
		            box.min[0], box.min[1], box.min[2], box.max[0], box.max[1], box.max[2]);

		// The ray from (0, 0.3, 4) towards -z, sampled finely across the box's depth.
		const int n = 1024;
		const float z_near = box.max[2], z_far = box.min[2];
		std::vector<float> points(3 * n), directions(3 * n), density(n), rgb(3 * n);
		for (int i = 0; i < n; ++i) {
			points[3 * i + 0] = 0.0f;
			points[3 * i + 1] = 0.3f;
			points[3 * i + 2] = z_near + (z_far - z_near) * (float)i / (float)(n - 1);
			directions[3 * i + 0] = 0.0f;
			directions[3 * i + 1] = 0.0f;
			directions[3 * i + 2] = -1.0f;
		}
		scene.density_and_colour(points.data(), directions.data(), n, density.data(), rgb.data());

		std::printf("%10s %12s   %s\n", "z", "density", "rgb");
		for (int k = 0; k < n_print; ++k) {
			const int i = k * (n - 1) / (n_print - 1);
			std::printf("%10.4f %12.4f   %.3f %.3f %.3f\n", points[3 * i + 2], density[i], rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
		}
		// Opacity along the ray: 1 - exp(-integral of density).
		const float dz = (z_near - z_far) / (float)(n - 1);
		double optical_depth = 0.0;
		for (int i = 0; i < n; ++i) {
			optical_depth += density[i] * dz;
			if (1.0 - std::exp(-optical_depth) > 0.5) {
				std::printf("opacity passes 0.5 at z = %.4f (colour %.3f %.3f %.3f)\n", points[3 * i + 2], rgb[3 * i],
				            rgb[3 * i + 1], rgb[3 * i + 2]);
				return 0;
			}
		}
		std::printf("the ray stays transparent (opacity %.3f)\n", 1.0 - std::exp(-optical_depth));
		return 0;
	} catch (const std::exception& e) {
		std::fprintf(stderr, "query_density: error: %s\n", e.what());
		return 1;
	}
}
