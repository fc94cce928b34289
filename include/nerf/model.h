/// @file model.h
/// @brief The model: a sampler and its field(s) over one flat parameter buffer, one training step
/// (forward, loss, backward, Adam), and rendering. Written once against nerf::Backend.
#pragma once

#include "nerf/backend.h"
#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/field.h"

#include <memory>
#include <vector>

namespace nerf {

/// Everything render_rays needs besides the rays (run_nerf.py's render_kwargs).
struct RenderSettings {
	int N_samples = 64;
	int N_importance = 0;
	bool perturb = true;       ///< perturb > 0 (training); rendering always uses false
	bool lindisp = false;
	float raw_noise_std = 0.0f;
	bool white_bkgd = false;
	/// Training on a random background colour per ray (nerfacc's instant-ngp example): model = ngp on a
	/// white_bkgd scene whose alpha was kept (Dataset::alpha); only the occupancy-grid sampler uses it.
	bool random_background = false;
	/// The training loss's gradient as a multiple of the MSE's (the loss reported is the MSE): 1 for the
	/// reference; 0.5 for model = ngp, nerfacc's smooth L1 (beta 1), which for colours in [0, 1] (every
	/// error below 1) is half the squared error. It matters beside the L2 weight decay (l2_reg).
	float loss_grad_scale = 1.0f;
	float near = 2.0f, far = 6.0f;
	static RenderSettings from_config(const Config& cfg, const Dataset& data, bool training);
};

/// Host-side results of rendering a set of rays (each [n_rays] or [n_rays, 3]).
struct RenderedRays {
	std::vector<float> rgb, disp, acc, depth;  ///< fine (or coarse when N_importance == 0; the one network with occ_grid)
	std::vector<float> rgb0, disp0, acc0, depth0;  ///< coarse, only when N_importance > 0 (never with occ_grid)
	std::vector<float> z_std;  ///< std of the fine samples, only when N_importance > 0 (never with occ_grid)
	std::vector<float> raw;    ///< [n_rays, samples, raw_width] of the last network, only with retraw (dense only)
	uint64_t network_samples = 0;  ///< network evaluations spent on these rays
};

/// Training bookkeeping kept with the model, so that a checkpoint carries it and a resumed run
/// continues exactly (and reports averages over the whole run).
struct TrainCounters {
	uint64_t rays = 0;             ///< rays trained, over all steps
	uint64_t network_samples = 0;  ///< network evaluations: dense, coarse + fine; occ_grid, the early-stop pass + the trained samples
	uint64_t dropped_rays = 0;     ///< occ_grid: rays left out of a step because its samples exceeded the cap
	uint64_t grid_samples = 0;     ///< occ_grid: network evaluations of the grid updates (cells evaluated)
	uint64_t rays_drawn = 0;       ///< target_samples with batching: rays taken from the shuffled order so far
	uint64_t last_marched = 0;     ///< occ_grid: samples marched in the last step (the next step's schedule)
	uint64_t last_kept = 0;        ///< occ_grid: of those, kept by the early stop
	uint32_t next_rays = 0;        ///< target_samples: the rays of the next step (0: not yet adapted, N_rand)
};

/// The box of the occupancy grid for a config and dataset (Config::occ_aabb): the option when set;
/// else [-1.5, 1.5]^3 for blender and builtin scenes, [-1, 1]^3 for NDC rays, and for other scenes
/// the box of the camera centres grown by `far` on every side (every point a ray reaches). As text
/// "xmin,ymin,zmin,xmax,ymax,zmax". Throws nerf::Error on a malformed occ_aabb.
std::string occ_grid_box(const Config& cfg, const Dataset& data);
/// The grid of a config whose occ_aabb is set or implied by dataset_type (nerf::Error otherwise).
OccGridSpec occ_grid_spec(const Config& cfg);
/// How rays march through a grid's box: render_step_size (0: the box diagonal / 1024) and the most
/// steps a ray can take across the box. nerf::Error when that exceeds 2^20.
struct MarchStepping {
	float step_size = 0.0f;
	int max_steps = 0;
};
MarchStepping march_stepping(const OccGridSpec& grid, float render_step_size);
/// The marching step a scene's cameras call for, used when render_step_size is 0 and the dataset is
/// known (nerf_train fixes it in the run's config): one pixel's footprint at the grid's centre, the
/// median over the training cameras of (distance from the camera to the box centre) / (focal length
/// in pixels), but no finer than the box diagonal / 1024 (instant-ngp's step for a scene that fills
/// its unit cube, and the value without a dataset). A ray then takes about one sample per pixel of
/// depth it crosses: 64-pixel views march ten times coarser than 800-pixel ones. NDC rays (the
/// forward-facing LLFF scenes) keep diagonal / 1024.
float default_render_step_size(const OccGridSpec& grid, const Dataset& data);

class Sampler;
class GridSampler;

/// A model: one sampler and its field(s) over one flat parameter buffer, with Adam's state
/// (include/nerf/field.h). The reference's model (model = nerf) is the dense sampler over a coarse
/// and a fine field (nerf-pytorch's network_fn and network_fine) or, with occ_grid, the grid sampler
/// over one; the hash-grid model (model = ngp) is the grid sampler over the hash-grid field.
/// Everything above the model (trainer, renderers, tools) is written against this class only.
class NerfModel {
public:
	/// Builds the field(s) the config asks for and its sampler, allocates parameters, gradients and
	/// Adam state and initialises the parameters from cfg.seed (the reference's as PyTorch's nn.Linear
	/// default).
	NerfModel(Backend& backend, const Config& cfg);
	~NerfModel();
	NerfModel(const NerfModel&) = delete;  // the sampler points at this model's config and buffers
	NerfModel& operator=(const NerfModel&) = delete;

	Backend& backend() { return *m_backend; }
	/// "nerf" or "ngp": the type of the field(s), as checkpoints name it.
	const char* field_type() const;
	/// The fields: 0 = coarse (or the only one), 1 = fine (dense reference model with N_importance > 0).
	int n_fields() const { return (int)m_fields.size(); }
	Field& field(int i) { return *m_fields.at(i); }
	const Field& field(int i) const { return *m_fields.at(i); }
	/// The reference field's MLP layouts (nerf::Error for another field type).
	const MlpLayout& coarse_layout() const;
	const MlpLayout* fine_layout() const;
	bool has_fine() const { return m_fields.size() > 1; }
	/// Parameters of the fields (nerf-pytorch's count for the reference's; padding not counted).
	size_t n_params() const { return m_n_params; }
	/// Floats in each flat buffer below: the fields' slices with their layouts' zero padding
	/// (Field::n_floats, mlp_layout.h).
	size_t n_floats() const { return m_n_floats; }
	/// Every parameter tensor of every field, by name (checkpoints): network_fn.* / network_fine.* for
	/// the reference's, field.* for the hash grid.
	std::vector<ParamTensor> parameter_tensors() const;
	/// Flat buffers in backend memory, [n_floats] each: field 0 first, then field 1.
	float* params() { return m_params.data(); }
	float* grads() { return m_grads.data(); }
	float* adam_m() { return m_adam_m.data(); }
	float* adam_v() { return m_adam_v.data(); }
	/// Adam's step count t of a field (0: coarse, 1: fine): the updates applied so far. The two
	/// differ only when fp16 overflows skipped one network's update. Reads backend memory (a sync).
	long adam_steps(int network = 0);
	void set_adam_steps(long coarse, long fine);
	void set_adam_steps(long t) { set_adam_steps(t, t); }

	/// One training step on n_rays rays given by flat pixel ids (backend memory) into the stacked
	/// images (pixel id p at images[3 p]) seen by `cameras` (poses and per-image cameras, backend
	/// memory): the sampler's forward, loss and backward (dense: MSE(fine) + MSE(coarse)), then Adam
	/// with learning rate lr. `step` keys the RNG. The loss stays in backend memory; read_losses()
	/// fetches it (a sync on CUDA).
	/// alpha: the images' alpha [pixels] (backend memory) for settings.random_background, else null.
	void train_step(const uint32_t* pixel_ids, size_t n_rays, const float* images, const CameraSet& cameras,
	                const RenderSettings& settings, uint32_t step, float lr, const float* alpha = nullptr);
	/// The learning rate of the step after `completed_steps` steps: the reference's exponential decay
	/// (lrate, lrate_decay) or the hash-grid model's warm-up and steps (learning_rate, N_iters).
	float learning_rate(long completed_steps) const;
	/// {fine MSE, coarse MSE} of the last train_step (coarse = 0 without a fine network).
	std::pair<float, float> read_losses();

	/// Renders rays (pixel ids and cameras in backend memory) in chunks of `chunk` rays, no gradients.
	/// retraw also returns the raw network outputs (the reference's retraw; dense sampler only), which is large.
	RenderedRays render(const uint32_t* pixel_ids, size_t n_rays, const CameraSet& cameras,
	                    const RenderSettings& settings, int chunk, uint32_t step = 0, bool retraw = false);
	/// Renders a whole H x W image for one camera-to-world pose and camera (host), rays in chunks of `chunk`.
	/// Checks the camera, settings and pose first (check_render_inputs).
	RenderedRays render_image(const Pose& pose, const Camera& cam, const RenderSettings& settings, int chunk);

	const Config& config() const { return m_cfg; }

	// --- occ_grid: the occupancy grid (model state: updated by train_step, saved in checkpoints) ---
	bool uses_occupancy_grid() const { return m_grid != nullptr; }
	const OccGridSpec& occ_grid() const;
	float render_step_size() const;
	/// Backend memory, [cells] each: the density EMA and the occupied flags (0/1).
	float* occ_density();
	uint8_t* occ_occupied();
	/// One grid update from the field's density (what train_step does before every occ_update_every-th step);
	/// `step` (1-based) keys the jitter and decides the warmup (step <= occ_warmup: every cell).
	void update_occupancy_grid(uint32_t step);
	/// Occupied cells / cells (reads backend memory).
	double occupied_fraction();
	/// Replaces the grid (checkpoint loading): density EMA and flags, [cells] each, host memory.
	void set_occupancy_grid(const std::vector<float>& density, const std::vector<uint8_t>& occupied);
	/// The most samples one training step trains on (the field's batch); a step whose rays keep more
	/// trains on the leading rays that fit and drops the rest (TrainCounters::dropped_rays).
	size_t max_step_samples() const;

	/// Counters of all train_step calls (and what a checkpoint restored).
	TrainCounters& counters() { return m_counters; }
	/// Rays and network samples of the last train_step: rays trained (with occ_grid possibly fewer than
	/// given) and the samples of the trained pass (the network's batch).
	size_t last_step_rays() const;
	size_t last_step_samples() const;

private:
	void apply_adam(float lr);
	GridSampler& grid() const;

	Backend* m_backend;
	Config m_cfg;
	std::vector<std::unique_ptr<Field>> m_fields;
	std::vector<std::string> m_field_prefixes;  // tensor and group names: "network_fn.", "network_fine.", "field."
	size_t m_n_params = 0;
	size_t m_n_floats = 0;
	Buffer<float> m_params, m_grads, m_adam_m, m_adam_v;
	struct AdamGroup {
		int field = 0;
		size_t offset = 0, count = 0;
		AdamSpec adam;
	};
	std::vector<AdamGroup> m_groups;
	Buffer<AdamCounter> m_adam_counters;  // [groups] (backend memory)
	std::unique_ptr<Sampler> m_sampler;
	GridSampler* m_grid = nullptr;  // the sampler, when it is the grid's
	TrainCounters m_counters;
};

/// Poses and cameras copied into a backend's memory, and the CameraSet that views them.
struct CameraBuffers {
	Buffer<float> poses;     ///< [n_images, 3, 4]
	Buffer<Camera> cameras;  ///< [n_images]
	CameraSet set() const { return {poses.data(), cameras.data(), (uint32_t)cameras.size()}; }
};
CameraBuffers upload_cameras(Backend& backend, const std::vector<Pose>& poses, const std::vector<Camera>& cameras);

/// The whole view of `cam` at 1/render_factor of its size (0: unchanged): H, W and the focal lengths
/// divided, the principal point scaled with pixel centres and at the new centre otherwise; first_pixel 0.
/// Throws when render_factor leaves no pixels.
Camera scaled_camera(Camera cam, int render_factor);
/// The camera of the dataset's render path: the first image's, without lens distortion (the reference's
/// K for its own loaders; NDC when the dataset says so), optionally scaled down by render_factor (H, W and
/// focal divided, as the reference's render_factor).
Camera dataset_camera(const Dataset& data, int render_factor = 0);
/// Image i's own camera (its size, intrinsics and lens), scaled down by render_factor like dataset_camera.
Camera image_camera(const Dataset& data, size_t i, int render_factor = 0);

/// Throws nerf::Error starting with `where` when these cannot render an image: a camera of no pixels
/// (e.g. a render_factor larger than the image), a focal length or principal point that is not
/// positive and finite, near/far not 0 <= near < far, or an unusable pose (see pose_problem).
void check_render_inputs(const Camera& cam, const RenderSettings& settings, const std::vector<Pose>& poses,
                         const std::string& where);

/// Mean squared error and PSNR of a rendered image against a reference [H, W, 3].
double image_mse(const float* a, const float* b, size_t n_floats);

} // namespace nerf
