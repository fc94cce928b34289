/// @file field.h
/// @brief A radiance field: an encoding, its networks and their parameters, answering "density and
/// colour at these samples" (forward, keeping what backward needs) and "density at these points".
///
/// Fields know nothing of rays beyond the view direction of each sample: where a ray is sampled is
/// the sampler's business (dense stratified + hierarchical over two fields, or marching through the
/// occupancy grid over one; src/sampler.h), and compositing, the loss and Adam are shared by all.
/// A field's parameters are a slice of the model's one flat buffer (parameters, gradients and Adam's
/// moments alike), so that checkpoints, gradient clearing and Adam are passes over one array.
///
/// The raw output is what compositing reads (raw2outputs): per sample raw_width() floats, columns
/// 0..2 the colour logits (compositing applies the sigmoid), column 3 the density before
/// compositing's ReLU (the reference's sigma; the hash-grid field's exp density, which ReLU leaves
/// as it is). Rows are contiguous: row k at raw + k * raw_width().
#pragma once

#include "nerf/backend.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nerf {

/// Where a field is evaluated: n samples, each a position and the view direction of its ray, all
/// in backend memory. Positions are either points [n, 3], or (the dense sampler) sample k of ray
/// k / samples_per_ray at rays_o + z[k] rays_d. View directions are rays' unit viewdirs [rays, 3]:
/// sample k reads row sample_ray[k] when sample_ray is set (packed samples), else row
/// k / samples_per_ray (dense), else row k.
struct FieldInputs {
	size_t n = 0;
	const float* points = nullptr;
	const float* rays_o = nullptr;
	const float* rays_d = nullptr;
	const float* z = nullptr;
	int samples_per_ray = 0;
	const float* viewdirs = nullptr;
	const uint32_t* sample_ray = nullptr;

	/// n packed samples at points, seeing their rays' viewdirs through sample_ray.
	static FieldInputs packed(const float* points, const float* viewdirs, const uint32_t* sample_ray, size_t n) {
		FieldInputs in;
		in.n = n;
		in.points = points;
		in.viewdirs = viewdirs;
		in.sample_ray = sample_ray;
		return in;
	}
	/// n_rays x samples_per_ray dense samples at depths z along the rays.
	static FieldInputs dense(const float* rays_o, const float* rays_d, const float* z, const float* viewdirs,
	                         size_t n_rays, int samples_per_ray) {
		FieldInputs in;
		in.n = n_rays * (size_t)samples_per_ray;
		in.rays_o = rays_o;
		in.rays_d = rays_d;
		in.z = z;
		in.samples_per_ray = samples_per_ray;
		in.viewdirs = viewdirs;
		return in;
	}
};

/// One named tensor of a field's parameters: where it lives in the model's flat buffer and its
/// PyTorch shape. Checkpoints store parameters and Adam's moments under these names.
struct ParamTensor {
	std::string name;  ///< e.g. "network_fn.pts_linears.0.weight", "field.hash_grid.level_03"
	std::vector<int64_t> shape;
	size_t offset = 0;  ///< floats from the start of the flat buffer
	size_t count = 0;
};

/// Parameters that share Adam's hyper-parameters (every group gets its own Adam step count).
struct ParamGroup {
	std::string name;  ///< e.g. "network_fn", "hash_grid", "networks"
	size_t offset = 0;
	size_t count = 0;
	AdamSpec adam;  ///< lr is set per step by the model; betas, eps, weight decay, skip_zero_grad stay
};

/// What a forward pass must produce. Density is what the occupancy grid's early stop needs; a
/// field may then skip its colour (the reference's field computes everything either way, so that
/// its results do not depend on the caller).
enum class FieldOutputs { All, DensityOnly };

class Field {
public:
	virtual ~Field() = default;
	/// "nerf" (the reference: frequency encoding + D x W skip MLP + views head) or "ngp" (hash grid).
	virtual const char* type() const = 0;
	/// Floats per sample in the raw output (4, or the reference's output_ch without viewdirs).
	virtual int raw_width() const = 0;
	/// This field's slice of the flat buffer: n_floats() floats from offset() (a multiple of
	/// kMlpLayerAlignment, mlp_layout.h), of which n_params() are parameters; the rest is padding
	/// between tensors, zero, in no tensor, with a gradient of 0.
	virtual size_t offset() const = 0;
	virtual size_t n_params() const = 0;
	virtual size_t n_floats() const { return n_params(); }
	/// The field's tensors, names starting with `prefix`, offsets into the flat buffer.
	virtual std::vector<ParamTensor> tensors(const std::string& prefix) const = 0;
	/// Groups covering the field's slice, with their Adam hyper-parameters.
	virtual std::vector<ParamGroup> param_groups(const std::string& prefix) const = 0;
	/// Writes the field's initial parameters into its slice of `flat` (host memory, the whole buffer).
	virtual void init_params(float* flat, uint64_t seed) const = 0;
	/// The most samples one forward with keep_for_backward may hold.
	virtual size_t max_batch() const = 0;

	/// raw: [n, raw_width()] at the given samples. keep_for_backward: keeps what backward needs (at
	/// most max_batch() samples; one pending forward at a time; the inputs' arrays must stay valid and
	/// unchanged until the backward, which may read them again); false: any n, nothing kept.
	virtual void forward(float* raw, const float* params, const FieldInputs& in, bool keep_for_backward,
	                     FieldOutputs outputs = FieldOutputs::All) = 0;
	/// dL_dparams (accumulates, +=) from dL_draw [n, raw_width()] for the last forward that kept.
	virtual void backward(float* dL_dparams, const float* params, const float* dL_draw, size_t n) = 0;
	/// Density at points [n, 3] (no gradients): raw rows [n, raw_width()] of which column 3 holds the
	/// density as compositing reads it (before its ReLU); the other columns are unspecified.
	virtual void density(float* raw, const float* params, const float* points, size_t n) = 0;
	/// A flag in backend memory, set when the last backward skipped a non-finite gradient (fp16 loss
	/// scaling); null for a field that never skips. Adam skips the field's groups when it is set.
	virtual const uint32_t* overflow_flag() const { return nullptr; }
};

} // namespace nerf
