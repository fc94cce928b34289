/// @file model.h
/// @brief The NeRF model: coarse and fine networks over one flat parameter buffer, render_rays,
/// one training step, and whole-image rendering. Written once against nerf::Backend.
#pragma once

#include "nerf/backend.h"
#include "nerf/config.h"
#include "nerf/dataset.h"

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
	float near = 2.0f, far = 6.0f;
	static RenderSettings from_config(const Config& cfg, const Dataset& data, bool training);
};

/// Host-side results of rendering a set of rays (each [n_rays] or [n_rays, 3]).
struct RenderedRays {
	std::vector<float> rgb, disp, acc, depth;  ///< fine (or coarse when N_importance == 0)
	std::vector<float> rgb0, disp0, acc0, depth0;  ///< coarse, only when N_importance > 0
	std::vector<float> z_std;  ///< std of the fine samples, only when N_importance > 0
	std::vector<float> raw;    ///< [n_rays, samples, raw_width] of the last network, only with retraw
};

class NerfModel {
public:
	/// Builds the coarse (netdepth, netwidth) and, when N_importance > 0, fine (netdepth_fine,
	/// netwidth_fine) networks, allocates parameters, gradients and Adam state, and initialises the
	/// parameters as PyTorch's nn.Linear default from cfg.seed. max_rays_per_batch bounds N_rand.
	NerfModel(Backend& backend, const Config& cfg);
	~NerfModel();

	Backend& backend() { return *m_backend; }
	const MlpLayout& coarse_layout() const { return m_coarse_layout; }
	const MlpLayout* fine_layout() const { return m_has_fine ? &m_fine_layout : nullptr; }
	bool has_fine() const { return m_has_fine; }
	size_t n_params() const { return m_n_params; }
	/// Flat buffers in backend memory, [n_params] each: coarse network first, then fine.
	float* params() { return m_params.data(); }
	float* grads() { return m_grads.data(); }
	float* adam_m() { return m_adam_m.data(); }
	float* adam_v() { return m_adam_v.data(); }
	/// Adam's step count t of a network (0: coarse, 1: fine): the updates applied so far. The two
	/// differ only when fp16 overflows skipped one network's update. Reads backend memory (a sync).
	long adam_steps(int network = 0);
	void set_adam_steps(long coarse, long fine);
	void set_adam_steps(long t) { set_adam_steps(t, t); }

	/// One training step on n_rays rays given by flat pixel ids (backend memory) into the stacked
	/// images (pixel id p at images[3 p]) seen by `cameras` (poses and per-image cameras, backend
	/// memory): forward coarse and fine, loss = MSE(fine) + MSE(coarse), backward, Adam with learning
	/// rate lr. `step` keys the RNG. The loss stays in backend memory; read_losses() fetches it (a sync on CUDA).
	void train_step(const uint32_t* pixel_ids, size_t n_rays, const float* images, const CameraSet& cameras,
	                const RenderSettings& settings, uint32_t step, float lr);
	/// {fine MSE, coarse MSE} of the last train_step (coarse = 0 without a fine network).
	std::pair<float, float> read_losses();

	/// Renders rays (pixel ids and cameras in backend memory) in chunks of `chunk` rays, no gradients.
	/// retraw also returns the raw network outputs (the reference's retraw), which is large.
	RenderedRays render(const uint32_t* pixel_ids, size_t n_rays, const CameraSet& cameras,
	                    const RenderSettings& settings, int chunk, uint32_t step = 0, bool retraw = false);
	/// Renders a whole H x W image for one camera-to-world pose and camera (host), rays in chunks of `chunk`.
	/// Checks the camera, settings and pose first (check_render_inputs).
	RenderedRays render_image(const Pose& pose, const Camera& cam, const RenderSettings& settings, int chunk);

	const Config& config() const { return m_cfg; }

private:
	struct Workspace;
	Workspace& ensure_workspace(size_t n_rays, bool training);

	Backend* m_backend;
	Config m_cfg;
	MlpLayout m_coarse_layout, m_fine_layout;
	bool m_has_fine = false;
	size_t m_n_params = 0;
	EncodingSpec m_pts_encoding, m_views_encoding;
	Buffer<float> m_params, m_grads, m_adam_m, m_adam_v;
	Buffer<AdamCounter> m_adam_counters;  // [2]: coarse, fine (backend memory)
	std::unique_ptr<Mlp> m_coarse, m_fine;
	std::unique_ptr<Workspace> m_train_ws, m_render_ws;
};

/// Poses and cameras copied into a backend's memory, and the CameraSet that views them.
struct CameraBuffers {
	Buffer<float> poses;     ///< [n_images, 3, 4]
	Buffer<Camera> cameras;  ///< [n_images]
	CameraSet set() const { return {poses.data(), cameras.data(), (uint32_t)cameras.size()}; }
};
CameraBuffers upload_cameras(Backend& backend, const std::vector<Pose>& poses, const std::vector<Camera>& cameras);

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
