// NerfModel: run_nerf.py's create_nerf and the optimiser step around a sampler and its field(s)
// (src/model/sampler.h, fields.h), written once against nerf::Backend; and the camera and image
// helpers every renderer shares.
#include "nerf/model.h"

#include "fields.h"
#include "sampler.h"

#include "nerf/common.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace nerf {

RenderSettings RenderSettings::from_config(const Config& cfg, const Dataset& data, bool training) {
	RenderSettings s;
	s.N_samples = cfg.N_samples;
	s.N_importance = cfg.N_importance;
	s.perturb = training && cfg.perturb > 0.0f;
	s.lindisp = cfg.lindisp;
	s.raw_noise_std = training ? cfg.raw_noise_std : 0.0f;  // render_kwargs_test sets raw_noise_std = 0
	s.white_bkgd = cfg.white_bkgd;
	s.random_background = training && cfg.model == "ngp" && cfg.white_bkgd && !data.alpha.empty();
	s.loss_grad_scale = cfg.model == "ngp" ? 0.5f : 1.0f;
	s.near = data.near;
	s.far = data.far;
	return s;
}

CameraBuffers upload_cameras(Backend& backend, const std::vector<Pose>& poses, const std::vector<Camera>& cameras) {
	NERF_CHECK(poses.size() == cameras.size());
	CameraBuffers out;
	out.poses = backend.allocate<float>(12 * poses.size());
	out.cameras = backend.allocate<Camera>(cameras.size());
	backend.upload(out.poses.data(), poses.data(), 12 * poses.size() * sizeof(float));
	backend.upload(out.cameras.data(), cameras.data(), cameras.size() * sizeof(Camera));
	return out;
}

Camera scaled_camera(Camera cam, int render_factor) {
	cam.first_pixel = 0;
	if (render_factor > 0) {
		// The whole view, downscaled: H, W and K divided by render_factor. The reference divides H, W and
		// focal but passes its full-size K on to get_rays, so it renders the top-left H/f x W/f pixels of the
		// full-size view instead (an off-centre crop, README: deliberate differences). With pixel centres
		// (transforms.json cameras) the principal point scales exactly like the focal length.
		const int H = cam.H, W = cam.W;
		if (H / render_factor < 1 || W / render_factor < 1)
			NERF_FAIL("render_factor " << render_factor << " leaves no pixels of the " << W << "x" << H << " images");
		cam.H = H / render_factor;
		cam.W = W / render_factor;
		cam.fx /= (float)render_factor;
		cam.fy /= (float)render_factor;
		cam.cx = cam.pixel_centers ? cam.cx / (float)render_factor : 0.5f * cam.W;
		cam.cy = cam.pixel_centers ? cam.cy / (float)render_factor : 0.5f * cam.H;
	}
	return cam;
}

Camera dataset_camera(const Dataset& data, int render_factor) {
	Camera cam = data.cameras.empty() ? pinhole_camera(data.H, data.W, data.K, data.ndc) : data.cameras.front();
	cam.lens = Lens{};
	return scaled_camera(cam, render_factor);
}

Camera image_camera(const Dataset& data, size_t i, int render_factor) {
	return scaled_camera(data.cameras.at(i), render_factor);
}

void check_render_inputs(const Camera& cam, const RenderSettings& settings, const std::vector<Pose>& poses,
                         const std::string& where) {
	const std::string camera = camera_problem(cam);
	if (!camera.empty())
		NERF_FAIL(where << ": the camera is unusable: " << camera
		                << (cam.H < 1 || cam.W < 1 ? " (is render_factor larger than the image?)" : ""));
	const std::string bounds = near_far_problem(settings.near, settings.far);
	if (!bounds.empty()) NERF_FAIL(where << ": " << bounds);
	for (size_t i = 0; i < poses.size(); ++i) {
		const std::string problem = pose_problem(poses[i]);
		if (!problem.empty()) NERF_FAIL(where << ": pose " << i << " is unusable: " << problem);
	}
}

double image_mse(const float* a, const float* b, size_t n_floats) {
	double sum = 0.0;
	for (size_t i = 0; i < n_floats; ++i) {
		const double d = (double)a[i] - (double)b[i];
		sum += d * d;
	}
	return n_floats ? sum / (double)n_floats : 0.0;
}

NerfModel::NerfModel(Backend& backend, const Config& cfg) : m_backend(&backend), m_cfg(cfg) {
	check_option_combinations(cfg);
	const Precision precision = backend.is_cuda() ? parse_precision(cfg.precision) : Precision::FP32;
	const EncodingSpec pts{3, cfg.multires, cfg.i_embed == -1};
	const EncodingSpec views{3, cfg.multires_views, cfg.i_embed == -1};

	OccGridSpec grid_spec;
	MarchStepping stepping;
	size_t coarse_batch = 0, fine_batch = 0;
	if (cfg.occ_grid) {
		grid_spec = occ_grid_spec(m_cfg);
		// The saved config names the box it was trained with, whatever implied it.
		m_cfg.occ_aabb = occ_grid_box_text(grid_spec);
		stepping = march_stepping(grid_spec, m_cfg.render_step_size);
		coarse_batch = std::max<size_t>(grid_sampler_limits(m_cfg, stepping).max_step_samples, cfg.netchunk);
	} else {
		coarse_batch = std::max<size_t>((size_t)cfg.N_rand * cfg.N_samples, cfg.netchunk);
		fine_batch = std::max<size_t>((size_t)cfg.N_rand * (cfg.N_samples + cfg.N_importance), cfg.netchunk);
	}

	if (cfg.model == "ngp") {
		// check_option_combinations has made sure of the grid: its box is the field's.
		m_fields.push_back(make_ngp_field(backend, m_cfg, grid_spec, 0, coarse_batch, precision));
		m_field_prefixes.push_back("field.");
	} else {
		const MlpLayout coarse = nerf_field_layout(m_cfg, false, 0);
		m_fields.push_back(make_nerf_field(backend, coarse, pts, views, coarse_batch, precision));
		m_field_prefixes.push_back("network_fn.");
	}
	if (cfg.model == "nerf" && cfg.N_importance > 0 && !cfg.occ_grid) {
		const MlpLayout coarse = nerf_field_layout(m_cfg, false, 0);
		const MlpLayout fine = nerf_field_layout(m_cfg, true, coarse.end(), coarse.first_param + coarse.n_params);
		m_fields.push_back(make_nerf_field(backend, fine, pts, views, fine_batch, precision));
		m_field_prefixes.push_back("network_fine.");
	}
	for (const auto& field : m_fields) {
		m_n_params += field->n_params();
		m_n_floats = std::max(m_n_floats, field->offset() + field->n_floats());
	}

	m_params = backend.allocate<float>(m_n_floats);
	m_grads = backend.allocate<float>(m_n_floats);
	m_adam_m = backend.allocate<float>(m_n_floats);
	m_adam_v = backend.allocate<float>(m_n_floats);
	std::vector<float> host(m_n_floats, 0.0f);
	for (const auto& field : m_fields) field->init_params(host.data(), cfg.seed);
	backend.upload(m_params.data(), host.data(), host.size() * sizeof(float));
	backend.fill_zero(m_grads.data(), m_grads.bytes());
	backend.fill_zero(m_adam_m.data(), m_adam_m.bytes());
	backend.fill_zero(m_adam_v.data(), m_adam_v.bytes());
	for (size_t f = 0; f < m_fields.size(); ++f)
		for (const ParamGroup& g : m_fields[f]->param_groups(m_field_prefixes[f]))
			m_groups.push_back(AdamGroup{(int)f, g.offset, g.count, g.adam});
	m_adam_counters = backend.allocate<AdamCounter>(m_groups.size());
	set_adam_steps(0, 0);

	SamplerContext ctx;
	ctx.backend = m_backend;
	ctx.cfg = &m_cfg;
	ctx.params = m_params.data();
	ctx.grads = m_grads.data();
	ctx.n_floats = m_n_floats;
	ctx.counters = &m_counters;
	if (cfg.occ_grid) {
		auto grid = std::make_unique<GridSampler>(ctx, *m_fields[0], grid_spec, stepping);
		m_grid = grid.get();
		m_sampler = std::move(grid);
	} else {
		m_sampler = std::make_unique<DenseSampler>(ctx, *m_fields[0], m_fields.size() > 1 ? m_fields[1].get() : nullptr);
	}
}

NerfModel::~NerfModel() = default;

const char* NerfModel::field_type() const { return m_fields.front()->type(); }

const MlpLayout& NerfModel::coarse_layout() const {
	const MlpLayout* layout = nerf_field_layout_of(*m_fields.front());
	if (!layout) NERF_FAIL("the model's field is '" << field_type() << "', which has no reference MLP layout");
	return *layout;
}

const MlpLayout* NerfModel::fine_layout() const { return has_fine() ? nerf_field_layout_of(*m_fields[1]) : nullptr; }

std::vector<ParamTensor> NerfModel::parameter_tensors() const {
	std::vector<ParamTensor> out;
	for (size_t f = 0; f < m_fields.size(); ++f) {
		std::vector<ParamTensor> t = m_fields[f]->tensors(m_field_prefixes[f]);
		out.insert(out.end(), t.begin(), t.end());
	}
	return out;
}

void NerfModel::train_step(const uint32_t* pixel_ids, size_t n_rays, const float* images, const CameraSet& cameras,
                           const RenderSettings& settings, uint32_t step, float lr, const float* alpha) {
	m_sampler->train_step(pixel_ids, n_rays, images, cameras, settings, step, alpha);
	apply_adam(lr);
	m_sampler->finish_step();
}

void NerfModel::apply_adam(float lr) {
	Backend& b = *m_backend;
	// One update per parameter group, each skipped on the device when its field's fp16 gradient overflowed.
	for (size_t g = 0; g < m_groups.size(); ++g) {
		const AdamGroup& group = m_groups[g];
		AdamSpec adam = group.adam;
		adam.lr = lr;
		b.adam_step(m_params.data() + group.offset, m_adam_m.data() + group.offset, m_adam_v.data() + group.offset,
		            m_grads.data() + group.offset, group.count, adam, m_adam_counters.data() + g,
		            m_fields[group.field]->overflow_flag());
	}
}

long NerfModel::adam_steps(int network) {
	NERF_CHECK(network >= 0 && network < n_fields());
	for (size_t g = 0; g < m_groups.size(); ++g) {
		if (m_groups[g].field != network) continue;
		AdamCounter counter;
		m_backend->download(&counter, m_adam_counters.data() + g, sizeof(counter));
		return counter.step;
	}
	return 0;
}

void NerfModel::set_adam_steps(long coarse, long fine) {
	std::vector<AdamCounter> counters(m_groups.size());
	for (size_t g = 0; g < m_groups.size(); ++g) counters[g].step = (int32_t)(m_groups[g].field == 0 ? coarse : fine);
	if (!counters.empty())
		m_backend->upload(m_adam_counters.data(), counters.data(), counters.size() * sizeof(AdamCounter));
}

float NerfModel::learning_rate(long completed_steps) const {
	if (m_cfg.model == "ngp") return ngp_learning_rate(m_cfg.learning_rate, completed_steps, m_cfg.N_iters);
	return nerf::learning_rate(m_cfg.lrate, m_cfg.lrate_decay, completed_steps);
}

std::pair<float, float> NerfModel::read_losses() { return m_sampler->read_losses(); }

RenderedRays NerfModel::render(const uint32_t* pixel_ids, size_t n_rays, const CameraSet& cameras,
                               const RenderSettings& settings, int chunk, uint32_t step, bool retraw) {
	NERF_CHECK(chunk > 0);
	return m_sampler->render(pixel_ids, n_rays, cameras, settings, chunk, step, retraw);
}

size_t NerfModel::last_step_rays() const { return m_sampler->last_step_rays(); }
size_t NerfModel::last_step_samples() const { return m_sampler->last_step_samples(); }

GridSampler& NerfModel::grid() const {
	if (!m_grid) NERF_FAIL("the model has no occupancy grid (occ_grid is off)");
	return *m_grid;
}
const OccGridSpec& NerfModel::occ_grid() const { return grid().grid(); }
float NerfModel::render_step_size() const { return grid().step_size(); }
float* NerfModel::occ_density() { return grid().density(); }
uint8_t* NerfModel::occ_occupied() { return grid().occupied(); }
void NerfModel::update_occupancy_grid(uint32_t step) { grid().update_grid(step); }
double NerfModel::occupied_fraction() { return grid().occupied_fraction(); }
void NerfModel::set_occupancy_grid(const std::vector<float>& density, const std::vector<uint8_t>& occupied) {
	grid().set_grid(density, occupied);
}
size_t NerfModel::max_step_samples() const { return grid().max_step_samples(); }

RenderedRays NerfModel::render_image(const Pose& pose, const Camera& cam, const RenderSettings& settings, int chunk) {
	check_render_inputs(cam, settings, {pose}, "render_image");
	const size_t n_rays = (size_t)cam.H * cam.W;
	Camera single = cam;
	single.first_pixel = 0;
	const CameraBuffers camera = upload_cameras(*m_backend, {pose}, {single});
	std::vector<uint32_t> ids(n_rays);
	std::iota(ids.begin(), ids.end(), 0u);
	Buffer<uint32_t> id_buffer = m_backend->allocate<uint32_t>(n_rays);
	m_backend->upload(id_buffer.data(), ids.data(), n_rays * sizeof(uint32_t));
	return render(id_buffer.data(), n_rays, camera.set(), settings, chunk);
}

} // namespace nerf

