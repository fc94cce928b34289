// Internal: the samplers of a model. A sampler decides where rays are sampled and runs a training
// step's forward, loss and backward (into the model's gradients) and rendering over its field(s);
// the model around it owns the parameters and runs Adam. Two samplers:
//   DenseSampler: the reference's stratified coarse samples + inverse-CDF fine samples over two
//                 fields (coarse, fine), dense [rays, samples] tensors (sampler_dense.cpp);
//   GridSampler:  marching through an occupancy grid over one field, packed samples, the grid
//                 updated from the field's density (sampler_grid.cpp).
#pragma once

#include "nerf/field.h"
#include "nerf/model.h"

#include <memory>
#include <utility>

namespace nerf {

/// What a sampler shares with its model: the backend, the run's options, the flat parameter and
/// gradient buffers (backend memory) and the training counters.
struct SamplerContext {
	Backend* backend = nullptr;
	const Config* cfg = nullptr;
	float* params = nullptr;
	float* grads = nullptr;
	size_t n_floats = 0;  // of params and grads
	TrainCounters* counters = nullptr;
};

class Sampler {
public:
	virtual ~Sampler() = default;
	/// Forward, loss and backward of one training step on n_rays rays (pixel ids in backend memory):
	/// the model's gradients are cleared and then hold this step's. `step` keys the RNG. alpha: the
	/// images' alpha [pixels] for settings.random_background (null otherwise).
	virtual void train_step(const uint32_t* pixel_ids, size_t n_rays, const float* images, const CameraSet& cameras,
	                        const RenderSettings& settings, uint32_t step, const float* alpha) = 0;
	/// {fine (or only) MSE, coarse MSE} of the last train_step (a sync on CUDA).
	virtual std::pair<float, float> read_losses() = 0;
	virtual RenderedRays render(const uint32_t* pixel_ids, size_t n_rays, const CameraSet& cameras,
	                            const RenderSettings& settings, int chunk, uint32_t step, bool retraw) = 0;
	/// After the model has queued the step's Adam update: bookkeeping that needs a sync.
	virtual void finish_step() {}
	size_t last_step_rays() const { return m_last_step_rays; }
	size_t last_step_samples() const { return m_last_step_samples; }

protected:
	size_t m_last_step_rays = 0, m_last_step_samples = 0;
};

class DenseSampler final : public Sampler {
public:
	/// fine: null when N_importance = 0 (the coarse samples only).
	DenseSampler(const SamplerContext& ctx, Field& coarse, Field* fine);
	~DenseSampler() override;
	void train_step(const uint32_t* pixel_ids, size_t n_rays, const float* images, const CameraSet& cameras,
	                const RenderSettings& settings, uint32_t step, const float* alpha) override;
	std::pair<float, float> read_losses() override;
	RenderedRays render(const uint32_t* pixel_ids, size_t n_rays, const CameraSet& cameras, const RenderSettings& settings,
	                    int chunk, uint32_t step, bool retraw) override;

private:
	struct Workspace;
	Workspace& ensure_workspace(size_t n_rays, bool training);
	SamplerContext m_ctx;
	Field& m_coarse;
	Field* m_fine;
	std::unique_ptr<Workspace> m_train_ws, m_render_ws;
};

/// How many samples a grid sampler's batches may hold, from the run's options.
struct GridSamplerLimits {
	size_t max_step_samples = 0;     ///< the samples one training step trains on (the field's batch)
	size_t max_marched_samples = 0;  ///< the samples marched per batch of rays
};
GridSamplerLimits grid_sampler_limits(const Config& cfg, const MarchStepping& stepping);
/// The grid's box as occ_aabb text ("xmin,ymin,zmin,xmax,ymax,zmax", reading back to the same floats).
std::string occ_grid_box_text(const OccGridSpec& grid);

class GridSampler final : public Sampler {
public:
	GridSampler(const SamplerContext& ctx, Field& field, const OccGridSpec& grid, const MarchStepping& stepping);
	~GridSampler() override;
	void train_step(const uint32_t* pixel_ids, size_t n_rays, const float* images, const CameraSet& cameras,
	                const RenderSettings& settings, uint32_t step, const float* alpha) override;
	std::pair<float, float> read_losses() override;
	RenderedRays render(const uint32_t* pixel_ids, size_t n_rays, const CameraSet& cameras, const RenderSettings& settings,
	                    int chunk, uint32_t step, bool retraw) override;
	void finish_step() override;

	const OccGridSpec& grid() const { return m_grid_spec; }
	float step_size() const { return m_step_size; }
	size_t max_step_samples() const { return m_limits.max_step_samples; }
	float* density() { return m_occ_density.data(); }
	uint8_t* occupied() { return m_occ_occupied.data(); }
	void update_grid(uint32_t step);
	double occupied_fraction();
	void set_grid(const std::vector<float>& density, const std::vector<uint8_t>& occupied);

private:
	struct MarchWorkspace;
	struct GridWorkspace;
	MarchWorkspace& ensure_march_workspace(size_t n_rays, bool training);
	std::pair<size_t, size_t> march(MarchWorkspace& ws, size_t n_rays, const RenderSettings& settings, uint32_t step,
	                                uint32_t ray_offset, size_t cap);
	void evaluate_marched(MarchWorkspace& ws, size_t n_samples, FieldOutputs outputs);
	MarchSpec march_spec(const RenderSettings& settings, uint32_t step) const;
	OccUpdateSpec update_spec(uint32_t step) const;

	SamplerContext m_ctx;
	Field& m_field;
	OccGridSpec m_grid_spec;
	float m_step_size = 0.0f;
	int m_max_march_steps = 0;
	GridSamplerLimits m_limits;
	Buffer<float> m_occ_density;
	Buffer<uint8_t> m_occ_occupied;
	int m_coarse_factor = 0;       // blocks of the grid marching jumps over when empty (0: none)
	Buffer<uint8_t> m_occ_coarse;  // [(R / factor)^3] their flags, kept with every change of the grid's
	void update_coarse_flags();
	Buffer<uint32_t> m_occ_count;  // [1]: occupied cells after the last update
	Buffer<float> m_loss;          // [1]: the last step's MSE
	std::unique_ptr<MarchWorkspace> m_train_ws, m_render_ws;
	std::unique_ptr<GridWorkspace> m_grid_ws;
	bool m_kept_count_pending = false;  // the last step's kept count is still to be read (finish_step)
	size_t m_kept_count_rays = 0;
};

} // namespace nerf
