/// @file query.h
/// @brief A trained scene as a function other programs call: density and colour at points, from a
/// checkpoint, on any backend, without gradients and without the training code's data.
///
///     nerf::FieldQuery scene("logs/builtin/003000.safetensors");   // device "auto", all cores
///     std::vector<float> density(n), rgb(3 * n);
///     scene.density_and_colour(points, view_directions, n, density.data(), rgb.data());
///
/// Units and conventions:
/// - Points are world positions [n, 3], in the frame of the training cameras (for a forward-facing
///   LLFF run with NDC rays, the frame is NDC space: the network never saw world points).
/// - Density is what compositing integrates, per unit of distance along a ray: the reference field's
///   ReLU(sigma) (nerf-pytorch's raw2outputs) or the hash-grid field's exp(logit) (instant-ngp). Opacity
///   over a segment of length dt is 1 - exp(-density dt). Both are >= 0; no noise is added.
/// - Colour is the field's RGB in [0, 1] (sigmoid of the network's output), as the training images
///   store it (sRGB-encoded values), seen along the given view direction: the direction a camera ray
///   travels, from the camera towards the point. It need not be normalised (it is here).
/// - The reference's two-network model is queried through its fine network (the one whose colours
///   the renders show); with one network, that one.
/// The methods take and return host arrays; a call of any size is split into batches (batch_size()).
/// Not thread-safe: one FieldQuery per thread, or calls one at a time.
#pragma once

#include "nerf/config.h"
#include "nerf/geometry/marching_cubes.h"  // GridBox

#include <cstddef>
#include <memory>
#include <string>

namespace nerf {

class Backend;
class NerfModel;

struct FieldQueryOptions {
	std::string device = "auto";  ///< "cpu", "cuda" or "auto" (CUDA when built with it and a GPU is present)
	int threads = 0;              ///< CPU threads (0: all cores)
	size_t batch_size = 1 << 18;  ///< points per network evaluation (memory: ~ batch x the field's widths)
};

class FieldQuery {
public:
	/// Loads a checkpoint written by nerf_train (a .safetensors file; any field type). The model's
	/// options come from the checkpoint's stored config. Throws nerf::Error naming the file when it is
	/// missing, corrupt or not a nerfcore checkpoint.
	explicit FieldQuery(const std::string& checkpoint, const FieldQueryOptions& options = {});
	~FieldQuery();
	FieldQuery(const FieldQuery&) = delete;
	FieldQuery& operator=(const FieldQuery&) = delete;

	const std::string& checkpoint() const { return m_checkpoint; }
	/// "nerf" (the reference's field) or "ngp" (the hash grid).
	const char* field_type() const;
	/// The training step the checkpoint was saved at.
	long step() const { return m_step; }
	/// The run's options as stored in the checkpoint.
	const Config& config() const;
	/// Whether the colour depends on the view direction (use_viewdirs; always for ngp).
	bool view_dependent() const;
	/// The backend the queries run on, e.g. "cpu (2 threads)".
	std::string backend_name() const;
	size_t batch_size() const { return m_batch; }

	/// The box the field was trained in: the occupancy grid's (every ngp run; the reference's with
	/// occ_grid), else [-1.5, 1.5]^3 for Blender-format and built-in scenes and [-1, 1]^3 for NDC
	/// rays. has_box() is false for other reference runs without a grid (the scene's extent was never
	/// fixed); box() then throws nerf::Error.
	bool has_box() const { return m_has_box; }
	GridBox box() const;

	/// density [n] at points [n, 3].
	void density(const float* points, size_t n, float* density);
	/// density [n] and colour rgb [n, 3] at points [n, 3] seen along view_directions [n, 3] (not needed,
	/// may be null, when !view_dependent()).
	void density_and_colour(const float* points, const float* view_directions, size_t n, float* density, float* rgb);
	/// The density's gradient [n, 3] at points [n, 3] (per unit of distance squared) by central
	/// differences with step h (world units, > 0): six density evaluations per point.
	void density_gradient(const float* points, size_t n, float h, float* gradient);

	/// The loaded model (for rendering with NerfModel::render_image, for instance).
	NerfModel& model() { return *m_model; }

private:
	void evaluate(const float* points, const float* view_directions, size_t n, float* density, float* rgb);

	std::string m_checkpoint;
	long m_step = 0;
	size_t m_batch = 0;
	bool m_has_box = false;
	GridBox m_box;
	std::unique_ptr<Backend> m_backend;
	std::unique_ptr<NerfModel> m_model;
};

} // namespace nerf
