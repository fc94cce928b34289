// The occupancy-grid sampler (occ_grid): rays marched through an occupancy grid, one field evaluated
// at the samples in occupied cells (nerfacc's OccGridEstimator), written against nerf::Backend like
// the dense sampler in sampler_dense.cpp. The grid is updated from the field's density.
//
// A training step: rays -> march (count, scan, fill: samples packed ray by ray) -> the network's
// density at every marched sample, no gradients -> early stop (a ray keeps the samples in front of
// the point where its transmittance falls below 1e-4, a prefix) -> compact the kept samples -> the
// network again with activations kept -> packed compositing -> loss -> backward -> Adam. When the
// early stop keeps most samples (the last step kept more than 2/3) the pass without gradients costs
// more than it saves, and one trained pass over every marched sample finds the stop instead.
// Rendering composites the first pass's outputs directly over each ray's kept prefix.
//
// Sample counts vary, so two caps bound the memory: the samples one step trains on
// (max_step_samples, the network's batch) and the samples marched per batch of rays (8 times that,
// or the former when every marched sample is trained on).
// Where a batch's rays need more, the leading rays that fit are used: a training step drops the rest
// (counted in TrainCounters::dropped_rays), rendering takes them in the next round.
#include "sampler.h"

#include "nerf/common.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <tuple>

namespace nerf {

namespace {

constexpr float kEarlyStopTransmittance = 1e-4f;
constexpr size_t kMarchedPerStepSample = 8;
constexpr int kMaxMarchSteps = 1 << 20;

/// "xmin,ymin,zmin,xmax,ymax,zmax" -> the six numbers; nerf::Error naming the option otherwise.
std::array<float, 6> parse_box(const std::string& text) {
	std::array<float, 6> box{};
	std::stringstream ss(text);
	std::string item;
	int n = 0;
	while (std::getline(ss, item, ',')) {
		char* end = nullptr;
		const float v = n < 6 ? std::strtof(item.c_str(), &end) : 0.0f;
		if (n >= 6 || end == item.c_str() || !std::isfinite(v) || std::string(end).find_first_not_of(" \t") != std::string::npos)
			NERF_FAIL("option 'occ_aabb' expects six numbers 'xmin,ymin,zmin,xmax,ymax,zmax', got '" << text << "'");
		box[n++] = v;
	}
	if (n != 6) NERF_FAIL("option 'occ_aabb' expects six numbers 'xmin,ymin,zmin,xmax,ymax,zmax', got '" << text << "'");
	for (int d = 0; d < 3; ++d)
		if (!(box[d] < box[d + 3]))
			NERF_FAIL("option 'occ_aabb': the box is empty along axis " << d << " (min " << box[d] << " >= max " << box[d + 3]
			                                                              << ") in '" << text << "'");
	return box;
}

std::string box_text(const std::array<float, 6>& box) {
	std::string text;
	for (int i = 0; i < 6; ++i) {
		char b[32];
		std::snprintf(b, sizeof b, "%.9g", box[i]);  // reads back to the same float
		text += (i ? "," : "") + std::string(b);
	}
	return text;
}

/// How many leading rays have at most `cap` samples together, and those rays' samples, from offsets
/// [n_rays + 1] in backend memory.
std::pair<size_t, size_t> leading_rays_within(Backend& b, const uint32_t* offsets, size_t n_rays, size_t cap) {
	std::vector<uint32_t> host(n_rays + 1);
	b.download(host.data(), offsets, host.size() * sizeof(uint32_t));
	// The last k with offsets[k] <= cap; offsets is non-decreasing and offsets[0] = 0.
	const size_t k =
		(size_t)(std::upper_bound(host.begin(), host.end(), (uint32_t)std::min<size_t>(cap, UINT32_MAX)) - host.begin()) - 1;
	return {k, host[k]};
}

uint32_t read_u32(Backend& b, const uint32_t* p) {
	uint32_t v = 0;
	b.download(&v, p, sizeof(v));
	return v;
}

/// The box a config implies without the dataset: occ_aabb when set, else the fixed box of a scene
/// type that has one (blender and builtin scenes, NDC rays); none for unbounded scenes.
std::optional<std::array<float, 6>> configured_box(const Config& cfg) {
	if (!cfg.occ_aabb.empty()) return parse_box(cfg.occ_aabb);
	if (cfg.dataset_type == "blender" || cfg.dataset_type == "builtin")
		return std::array<float, 6>{-1.5f, -1.5f, -1.5f, 1.5f, 1.5f, 1.5f};
	if (cfg.dataset_type == "llff" && !cfg.no_ndc) return std::array<float, 6>{-1.0f, -1.0f, -1.0f, 1.0f, 1.0f, 1.0f};
	return std::nullopt;
}

} // namespace

std::string occ_grid_box(const Config& cfg, const Dataset& data) {
	if (const auto box = configured_box(cfg)) return box_text(*box);
	if (data.poses.empty()) NERF_FAIL("occ_grid: the dataset has no cameras to size the grid's box from; set occ_aabb");
	// Unbounded scenes: every point a ray reaches between near and far lies within far of its camera.
	std::array<float, 6> box = {INFINITY, INFINITY, INFINITY, -INFINITY, -INFINITY, -INFINITY};
	for (const Pose& pose : data.poses)
		for (int d = 0; d < 3; ++d) {
			box[d] = std::min(box[d], pose[4 * d + 3] - data.far);
			box[d + 3] = std::max(box[d + 3], pose[4 * d + 3] + data.far);
		}
	return box_text(box);
}

OccGridSpec occ_grid_spec(const Config& cfg) {
	const auto box = configured_box(cfg);
	if (!box)
		NERF_FAIL("occ_grid: dataset_type " << cfg.dataset_type
		                                    << " has no default box for the occupancy grid; set occ_aabb (nerf_train derives "
		                                       "it from the cameras)");
	OccGridSpec spec;
	for (int d = 0; d < 3; ++d) {
		spec.aabb_min[d] = (*box)[d];
		spec.aabb_max[d] = (*box)[d + 3];
	}
	spec.resolution = cfg.occ_resolution;
	return spec;
}

MarchStepping march_stepping(const OccGridSpec& grid, float render_step_size) {
	double diagonal = 0.0;
	for (int d = 0; d < 3; ++d) {
		const double side = (double)grid.aabb_max[d] - grid.aabb_min[d];
		diagonal += side * side;
	}
	diagonal = std::sqrt(diagonal);
	MarchStepping out;
	out.step_size = render_step_size > 0.0f ? render_step_size : (float)(diagonal / 1024.0);
	const double steps = std::ceil(diagonal / (double)out.step_size) + 2.0;
	if (steps > kMaxMarchSteps)
		NERF_FAIL("occ_grid: render_step_size " << out.step_size << " takes " << steps << " steps across the box (diagonal "
		                                        << diagonal << "); at most " << kMaxMarchSteps << " are allowed");
	out.max_steps = (int)steps;
	return out;
}

// Per-batch buffers of the marched path in backend memory. R = rays, M = marched samples (grows),
// B = the network's batch (the trained samples of a step; the evaluation batch). The encoded
// inputs belong to the field.
struct GridSampler::MarchWorkspace {
	size_t n_rays = 0;
	size_t batch = 0;
	Buffer<float> rays_o, rays_d, viewdirs, target;  // [R, 3]
	Buffer<float> rgb, dL_drgb;                      // [R, 3]
	Buffer<float> background;                        // [R, 3] (training on random backgrounds)
	Buffer<float> depth, disp, acc;                  // [R]
	Buffer<uint32_t> counts, kept;                   // [R] marched, kept by the early stop
	Buffer<uint32_t> offsets, kept_offsets;          // [R + 1]
	size_t marched_capacity = 0;
	Buffer<float> marched_t, marched_dt, marched_points;  // [M], [M], [M, 3]
	Buffer<uint32_t> marched_ray;                         // [M]
	Buffer<float> marched_raw;                            // [M, raw]
	Buffer<float> kept_t, kept_dt, kept_points;  // [B] (training: the compacted samples)
	Buffer<uint32_t> kept_ray;                   // [B]
	Buffer<float> raw, dL_draw;                  // [B, raw] (training)

	PackedSamples marched() { return {marched_t.data(), marched_dt.data(), marched_points.data(), marched_ray.data()}; }
	PackedSamples kept_samples() { return {kept_t.data(), kept_dt.data(), kept_points.data(), kept_ray.data()}; }
};

struct GridSampler::GridWorkspace {
	Buffer<uint32_t> chosen, offsets, cells;  // [cells], [cells + 1], [cells]
	Buffer<float> points;                     // [cells, 3]
	Buffer<float> raw;                        // [B, raw]
	size_t batch = 0;
};

float default_render_step_size(const OccGridSpec& grid, const Dataset& data) {
	const float finest = march_stepping(grid, 0.0f).step_size;
	if (data.ndc || data.cameras.empty()) return finest;
	float centre[3];
	for (int d = 0; d < 3; ++d) centre[d] = 0.5f * (grid.aabb_min[d] + grid.aabb_max[d]);
	std::vector<double> footprints;
	const std::vector<int>& images = data.i_train.empty() ? std::vector<int>() : data.i_train;
	for (size_t k = 0; k < (images.empty() ? data.n_images() : images.size()); ++k) {
		const size_t i = images.empty() ? k : (size_t)images[k];
		const Pose& pose = data.poses[i];
		const Camera& cam = data.cameras[i];
		double distance = 0.0;
		for (int d = 0; d < 3; ++d) distance += ((double)pose[4 * d + 3] - centre[d]) * ((double)pose[4 * d + 3] - centre[d]);
		const double focal = 0.5 * ((double)cam.fx + (double)cam.fy);
		if (focal > 0.0) footprints.push_back(std::sqrt(distance) / focal);
	}
	if (footprints.empty()) return finest;
	std::nth_element(footprints.begin(), footprints.begin() + footprints.size() / 2, footprints.end());
	return std::max(finest, (float)footprints[footprints.size() / 2]);
}

std::string occ_grid_box_text(const OccGridSpec& grid) {
	return box_text({grid.aabb_min[0], grid.aabb_min[1], grid.aabb_min[2], grid.aabb_max[0], grid.aabb_max[1],
	                 grid.aabb_max[2]});
}

GridSamplerLimits grid_sampler_limits(const Config& cfg, const MarchStepping& stepping) {
	GridSamplerLimits limits;
	limits.max_step_samples = std::max<size_t>({(size_t)cfg.N_rand * (size_t)(cfg.N_samples + cfg.N_importance),
	                                            2 * (size_t)cfg.target_samples, (size_t)stepping.max_steps});
	limits.max_marched_samples = kMarchedPerStepSample * limits.max_step_samples;
	if (limits.max_marched_samples >= ((size_t)1 << 31))
		NERF_FAIL("occ_grid: " << limits.max_marched_samples << " marched samples per batch (from N_rand, N_samples, "
		                       << "N_importance and target_samples) exceed the 2^31 that 32-bit sample offsets address");
	return limits;
}

GridSampler::GridSampler(const SamplerContext& ctx, Field& field, const OccGridSpec& grid, const MarchStepping& stepping)
    : m_ctx(ctx), m_field(field), m_grid_spec(grid), m_step_size(stepping.step_size),
      m_max_march_steps(stepping.max_steps), m_limits(grid_sampler_limits(*ctx.cfg, stepping)) {
	Backend& b = *m_ctx.backend;
	const uint32_t cells = occ_cell_count(m_grid_spec);
	m_occ_density = b.allocate<float>(cells);
	m_occ_occupied = b.allocate<uint8_t>(cells);
	m_occ_count = b.allocate<uint32_t>(1);
	m_loss = b.allocate<float>(1);
	// Before the first update nothing is known: every cell is occupied (and every EMA 0).
	b.fill_zero(m_occ_density.data(), m_occ_density.bytes());
	const std::vector<uint8_t> all(cells, 1);
	b.upload(m_occ_occupied.data(), all.data(), cells);
	b.upload(m_occ_count.data(), &cells, sizeof(cells));
	m_coarse_factor = occ_coarse_factor(m_grid_spec.resolution);
	if (m_coarse_factor > 0) {
		m_occ_coarse = b.allocate<uint8_t>(occ_cell_count(OccGridSpec{{}, {}, m_grid_spec.resolution / m_coarse_factor}));
		update_coarse_flags();
	}
	b.fill_zero(m_loss.data(), sizeof(float));
}

GridSampler::~GridSampler() = default;

void GridSampler::update_coarse_flags() {
	if (m_coarse_factor > 0)
		m_ctx.backend->occ_coarse_flags(m_occ_coarse.data(), m_occ_occupied.data(), m_grid_spec, m_coarse_factor);
}

MarchSpec GridSampler::march_spec(const RenderSettings& settings, uint32_t step) const {
	MarchSpec spec;
	spec.grid = m_grid_spec;
	spec.near = settings.near;
	spec.far = settings.far;
	spec.step_size = m_step_size;
	spec.max_steps = m_max_march_steps;
	spec.perturb = settings.perturb;
	spec.seed = m_ctx.cfg->seed;
	spec.step = step;
	if (m_coarse_factor > 0) {
		spec.coarse_occupied = m_occ_coarse.data();
		spec.coarse_factor = m_coarse_factor;
	}
	return spec;
}

OccUpdateSpec GridSampler::update_spec(uint32_t step) const {
	OccUpdateSpec spec;
	spec.grid = m_grid_spec;
	spec.threshold = m_ctx.cfg->occ_threshold;
	spec.step_size = m_step_size;
	spec.all_cells = (long)step <= (long)m_ctx.cfg->occ_warmup;
	spec.seed = m_ctx.cfg->seed;
	spec.step = step;
	return spec;
}

GridSampler::MarchWorkspace& GridSampler::ensure_march_workspace(size_t n_rays, bool training) {
	auto& slot = training ? m_train_ws : m_render_ws;
	const Config& cfg = *m_ctx.cfg;
	// target_samples varies the rays per step (at most max(N_rand, target_samples), the trainer's
	// bound): size for the bound once rather than reallocate at every new maximum.
	if (training) n_rays = std::max({n_rays, (size_t)cfg.N_rand, (size_t)cfg.target_samples});
	if (slot && slot->n_rays >= n_rays) return *slot;
	Backend& b = *m_ctx.backend;
	slot.reset();  // free the old workspace first, so that peak memory is never old + new
	auto ws = std::make_unique<MarchWorkspace>();
	const size_t raw = m_field.raw_width();
	ws->n_rays = n_rays;
	ws->batch = training ? m_limits.max_step_samples : std::max<size_t>(m_limits.max_step_samples, cfg.netchunk);
	ws->rays_o = b.allocate<float>(3 * n_rays);
	ws->rays_d = b.allocate<float>(3 * n_rays);
	ws->viewdirs = b.allocate<float>(3 * n_rays);
	ws->rgb = b.allocate<float>(3 * n_rays);
	ws->counts = b.allocate<uint32_t>(n_rays);
	ws->kept = b.allocate<uint32_t>(n_rays);
	ws->offsets = b.allocate<uint32_t>(n_rays + 1);
	ws->kept_offsets = b.allocate<uint32_t>(n_rays + 1);
	if (training) {
		ws->target = b.allocate<float>(3 * n_rays);
		ws->background = b.allocate<float>(3 * n_rays);
		ws->dL_drgb = b.allocate<float>(3 * n_rays);
		ws->kept_t = b.allocate<float>(ws->batch);
		ws->kept_dt = b.allocate<float>(ws->batch);
		ws->kept_points = b.allocate<float>(3 * ws->batch);
		ws->kept_ray = b.allocate<uint32_t>(ws->batch);
		ws->raw = b.allocate<float>(ws->batch * raw);
		ws->dL_draw = b.allocate<float>(ws->batch * raw);
	} else {
		ws->depth = b.allocate<float>(n_rays);
		ws->disp = b.allocate<float>(n_rays);
		ws->acc = b.allocate<float>(n_rays);
	}
	slot = std::move(ws);
	return *slot;
}

std::pair<size_t, size_t> GridSampler::march(MarchWorkspace& ws, size_t n_rays, const RenderSettings& settings,
                                             uint32_t step, uint32_t ray_offset, size_t cap) {
	Backend& b = *m_ctx.backend;
	const MarchSpec spec = march_spec(settings, step);
	// The 32-bit offsets must not wrap: march no more rays than can each take every step.
	n_rays = std::min(n_rays, (size_t)UINT32_MAX / (size_t)m_max_march_steps);
	b.march_count(ws.counts.data(), ws.rays_o.data(), ws.rays_d.data(), n_rays, m_occ_occupied.data(), ray_offset, spec);
	b.scan_counts(ws.offsets.data(), ws.counts.data(), n_rays);
	size_t n_fit = n_rays, total = read_u32(b, ws.offsets.data() + n_rays);
	if (total > cap) std::tie(n_fit, total) = leading_rays_within(b, ws.offsets.data(), n_rays, cap);
	if (total > ws.marched_capacity || ws.marched_capacity == 0) {
		// Grow with headroom, so that a slowly rising count does not reallocate every step (and never
		// leave the buffers empty: stages get valid pointers even for a batch without samples).
		const size_t capacity = std::max<size_t>(1, std::min(m_limits.max_marched_samples, total + total / 2));
		const size_t raw = m_field.raw_width();
		ws.marched_t.reset();
		ws.marched_dt.reset();
		ws.marched_points.reset();
		ws.marched_ray.reset();
		ws.marched_raw.reset();
		ws.marched_t = b.allocate<float>(capacity);
		ws.marched_dt = b.allocate<float>(capacity);
		ws.marched_points = b.allocate<float>(3 * capacity);
		ws.marched_ray = b.allocate<uint32_t>(capacity);
		ws.marched_raw = b.allocate<float>(capacity * raw);
		ws.marched_capacity = capacity;
	}
	b.march_fill(ws.marched(), ws.offsets.data(), ws.rays_o.data(), ws.rays_d.data(), n_fit, m_occ_occupied.data(),
	             ray_offset, spec);
	return {n_fit, total};
}

void GridSampler::evaluate_marched(MarchWorkspace& ws, size_t n_samples, FieldOutputs outputs) {
	const size_t raw = m_field.raw_width();
	for (size_t begin = 0; begin < n_samples; begin += ws.batch) {
		const size_t rows = std::min(ws.batch, n_samples - begin);
		m_field.forward(ws.marched_raw.data() + begin * raw, m_ctx.params,
		                FieldInputs::packed(ws.marched_points.data() + 3 * begin, ws.viewdirs.data(),
		                                    ws.marched_ray.data() + begin, rows),
		                false, outputs);
	}
}

void GridSampler::train_step(const uint32_t* pixel_ids, size_t n_rays, const float* images, const CameraSet& cameras,
                             const RenderSettings& settings, uint32_t step, const float* alpha) {
	NERF_CHECK(n_rays > 0);
	Backend& b = *m_ctx.backend;
	const Config& cfg = *m_ctx.cfg;
	TrainCounters& counters = *m_ctx.counters;
	const size_t max_step_samples = m_limits.max_step_samples;
	if ((step - 1) % (uint32_t)cfg.occ_update_every == 0) update_grid(step);
	MarchWorkspace& ws = ensure_march_workspace(n_rays, true);
	const int raw_stride = m_field.raw_width();
	const size_t raw = (size_t)raw_stride;
	// Which schedule is cheaper depends on how many samples the early stop keeps (K of M marched): a
	// pass without gradients over all M and a trained pass over the K kept costs about M + 3K forward
	// passes (a backward costs about two), one trained pass over all M about 3M. The last step's
	// ratio decides (none yet: the single pass, as a grid that knows nothing stops nothing).
	const bool early_stop_pass = 3 * counters.last_kept < 2 * counters.last_marched;

	b.generate_rays(ws.rays_o.data(), ws.rays_d.data(), ws.viewdirs.data(), pixel_ids, n_rays, cameras);
	b.gather_pixels(ws.target.data(), images, pixel_ids, n_rays);
	const bool random_background = settings.random_background && alpha;
	if (random_background)
		b.random_background(ws.target.data(), ws.background.data(), alpha, pixel_ids, n_rays, cfg.seed, step);
	const auto [n_marched_rays, n_marched] =
		march(ws, n_rays, settings, step, 0, early_stop_pass ? m_limits.max_marched_samples : max_step_samples);

	size_t n_rays_trained = n_marched_rays, n_kept = 0, n_batch = 0;
	const float* t = nullptr;
	const float* dt = nullptr;
	const uint32_t* offsets = nullptr;
	PackedSamples trained;
	if (early_stop_pass) {
		// The field's density at every marched sample, no gradients, then only the kept samples.
		evaluate_marched(ws, n_marched, FieldOutputs::DensityOnly);
		b.early_stop(ws.kept.data(), ws.marched_raw.data(), ws.marched_dt.data(), ws.offsets.data(), ws.counts.data(),
		             ws.rays_d.data(), n_marched_rays, raw_stride, kEarlyStopTransmittance);
		b.scan_counts(ws.kept_offsets.data(), ws.kept.data(), n_marched_rays);
		n_kept = read_u32(b, ws.kept_offsets.data() + n_marched_rays);
		if (n_kept > max_step_samples)
			std::tie(n_rays_trained, n_kept) = leading_rays_within(b, ws.kept_offsets.data(), n_marched_rays, max_step_samples);
		b.compact_samples(ws.kept_samples(), ws.marched(), ws.kept_offsets.data(), ws.kept.data(), ws.offsets.data(),
		                  n_rays_trained);
		n_batch = n_kept;
		trained = ws.kept_samples();
		t = ws.kept_t.data();
		dt = ws.kept_dt.data();
		offsets = ws.kept_offsets.data();
	} else {
		// One trained pass over every marched sample; the early stop cuts what compositing sees, and
		// the samples behind a ray's stop get no gradient.
		n_batch = n_marched;
		trained = ws.marched();
		t = ws.marched_t.data();
		dt = ws.marched_dt.data();
		offsets = ws.offsets.data();
	}
	if (n_batch > 0)
		m_field.forward(ws.raw.data(), m_ctx.params, FieldInputs::packed(trained.points, ws.viewdirs.data(), trained.ray, n_batch),
		                true);
	if (!early_stop_pass) {
		b.early_stop(ws.kept.data(), ws.raw.data(), dt, offsets, ws.counts.data(), ws.rays_d.data(), n_rays_trained,
		             raw_stride, kEarlyStopTransmittance);
		b.scan_counts(ws.kept_offsets.data(), ws.kept.data(), n_rays_trained);
		b.fill_zero(ws.dL_draw.data(), std::max<size_t>(n_batch, 1) * raw * sizeof(float));
	}
	CompositeSpec comp{settings.raw_noise_std, settings.white_bkgd, raw_stride, cfg.seed, step, RngStream::RawNoiseCoarse};
	if (random_background) comp.background = ws.background.data();
	CompositeOutputs out;
	out.rgb = ws.rgb.data();
	b.composite_forward_packed(out, ws.raw.data(), t, dt, offsets, ws.kept.data(), ws.rays_d.data(), n_rays_trained, 0, comp);
	b.fill_zero(m_loss.data(), sizeof(float));
	b.fill_zero(m_ctx.grads, m_ctx.n_floats * sizeof(float));
	b.mse_loss(m_loss.data(), ws.dL_drgb.data(), ws.rgb.data(), ws.target.data(), n_rays_trained, settings.loss_grad_scale);
	if (n_batch > 0) {
		b.composite_backward_packed(ws.dL_draw.data(), ws.dL_drgb.data(), ws.raw.data(), dt, offsets, ws.kept.data(),
		                            ws.rays_d.data(), n_rays_trained, n_batch, 0, comp);
		m_field.backward(m_ctx.grads, m_ctx.params, ws.dL_draw.data(), n_batch);
	}
	m_last_step_rays = n_rays_trained;
	m_last_step_samples = n_batch;
	counters.rays += n_rays_trained;
	counters.network_samples += early_stop_pass ? n_marched + n_kept : n_marched;
	counters.dropped_rays += n_rays - n_rays_trained;
	counters.last_marched = n_marched;
	counters.last_kept = n_kept;
	// With the single pass only the counters need the kept count: it is read in finish_step, after
	// the model has queued Adam, so that the host does not wait on the forward pass mid-step.
	m_kept_count_pending = !early_stop_pass;
	m_kept_count_rays = n_rays_trained;
}

void GridSampler::finish_step() {
	if (!m_kept_count_pending) return;
	m_kept_count_pending = false;
	m_ctx.counters->last_kept = read_u32(*m_ctx.backend, m_train_ws->kept_offsets.data() + m_kept_count_rays);
}

std::pair<float, float> GridSampler::read_losses() {
	float loss = 0.0f;
	m_ctx.backend->download(&loss, m_loss.data(), sizeof(loss));
	return {loss, 0.0f};
}

RenderedRays GridSampler::render(const uint32_t* pixel_ids, size_t n_rays, const CameraSet& cameras,
                                 const RenderSettings& settings, int chunk, uint32_t step, bool /*retraw: dense only*/) {
	Backend& b = *m_ctx.backend;
	const int raw_stride = m_field.raw_width();
	RenderedRays out;
	out.rgb.resize(3 * n_rays);
	out.disp.resize(n_rays);
	out.acc.resize(n_rays);
	out.depth.resize(n_rays);
	const size_t chunk_rays = std::min<size_t>((size_t)chunk, std::max<size_t>(n_rays, 1));
	MarchWorkspace& ws = ensure_march_workspace(chunk_rays, false);
	const CompositeSpec comp{settings.raw_noise_std, settings.white_bkgd, raw_stride, m_ctx.cfg->seed, step,
	                         RngStream::RawNoiseCoarse};
	for (size_t begin = 0; begin < n_rays;) {
		const size_t count = std::min(chunk_rays, n_rays - begin);
		b.generate_rays(ws.rays_o.data(), ws.rays_d.data(), ws.viewdirs.data(), pixel_ids + begin, count, cameras);
		// Rays beyond the marched-sample cap are generated again at the start of the next round.
		const auto [n_fit, n_marched] = march(ws, count, settings, step, (uint32_t)begin, m_limits.max_marched_samples);
		evaluate_marched(ws, n_marched, FieldOutputs::All);
		b.early_stop(ws.kept.data(), ws.marched_raw.data(), ws.marched_dt.data(), ws.offsets.data(), ws.counts.data(),
		             ws.rays_d.data(), n_fit, raw_stride, kEarlyStopTransmittance);
		const CompositeOutputs co{ws.rgb.data(), ws.depth.data(), ws.disp.data(), ws.acc.data(), nullptr};
		b.composite_forward_packed(co, ws.marched_raw.data(), ws.marched_t.data(), ws.marched_dt.data(), ws.offsets.data(),
		                           ws.kept.data(), ws.rays_d.data(), n_fit, (uint32_t)begin, comp);
		b.download(out.rgb.data() + 3 * begin, ws.rgb.data(), 3 * n_fit * sizeof(float));
		b.download(out.disp.data() + begin, ws.disp.data(), n_fit * sizeof(float));
		b.download(out.acc.data() + begin, ws.acc.data(), n_fit * sizeof(float));
		b.download(out.depth.data() + begin, ws.depth.data(), n_fit * sizeof(float));
		out.network_samples += n_marched;
		begin += n_fit;
	}
	return out;
}

void GridSampler::update_grid(uint32_t step) {
	Backend& b = *m_ctx.backend;
	const OccUpdateSpec spec = update_spec(step);
	const uint32_t cells = occ_cell_count(m_grid_spec);
	const int raw_stride = m_field.raw_width();
	if (!m_grid_ws) {
		auto g = std::make_unique<GridWorkspace>();
		g->chosen = b.allocate<uint32_t>(cells);
		g->offsets = b.allocate<uint32_t>((size_t)cells + 1);
		g->cells = b.allocate<uint32_t>(cells);
		g->points = b.allocate<float>(3 * (size_t)cells);
		g->batch = std::min<size_t>(cells, std::max<size_t>(m_limits.max_step_samples, m_ctx.cfg->netchunk));
		g->raw = b.allocate<float>(g->batch * raw_stride);
		m_grid_ws = std::move(g);
	}
	GridWorkspace& g = *m_grid_ws;
	b.occ_choose_cells(g.chosen.data(), m_occ_occupied.data(), spec);
	b.scan_counts(g.offsets.data(), g.chosen.data(), cells);
	const size_t n = read_u32(b, g.offsets.data() + cells);
	b.occ_cell_points(g.cells.data(), g.points.data(), g.chosen.data(), g.offsets.data(), spec);
	for (size_t begin = 0; begin < n; begin += g.batch) {
		const size_t rows = std::min(g.batch, n - begin);
		m_field.density(g.raw.data(), m_ctx.params, g.points.data() + 3 * begin, rows);
		b.occ_update_density(m_occ_density.data(), g.cells.data() + begin, g.raw.data(), rows, raw_stride, spec);
	}
	b.occ_update_flags(m_occ_occupied.data(), m_occ_count.data(), m_occ_density.data(), spec);
	update_coarse_flags();
	m_ctx.counters->grid_samples += n;
}

double GridSampler::occupied_fraction() {
	return (double)read_u32(*m_ctx.backend, m_occ_count.data()) / (double)occ_cell_count(m_grid_spec);
}

void GridSampler::set_grid(const std::vector<float>& density, const std::vector<uint8_t>& occupied) {
	const uint32_t cells = occ_cell_count(m_grid_spec);
	NERF_CHECK(density.size() == cells && occupied.size() == cells);
	uint32_t count = 0;
	for (uint8_t o : occupied) count += o ? 1u : 0u;
	m_ctx.backend->upload(m_occ_density.data(), density.data(), cells * sizeof(float));
	m_ctx.backend->upload(m_occ_occupied.data(), occupied.data(), cells);
	m_ctx.backend->upload(m_occ_count.data(), &count, sizeof(count));
	update_coarse_flags();
}

} // namespace nerf
