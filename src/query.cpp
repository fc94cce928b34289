#include "nerf/query.h"

#include "nerf/backend.h"
#include "nerf/checkpoint.h"
#include "nerf/math/composite.h"
#include "nerf/model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

namespace nerf {

FieldQuery::FieldQuery(const std::string& checkpoint, const FieldQueryOptions& options)
    : m_checkpoint(checkpoint), m_batch(std::max<size_t>(options.batch_size, 1)) {
	std::error_code ec;
	if (!std::filesystem::is_regular_file(checkpoint, ec))
		NERF_FAIL(checkpoint << ": no such checkpoint file (a .safetensors written by nerf_train)");
	Config cfg = config_from_checkpoint(checkpoint);
	// Where to run is the caller's choice, not the training machine's.
	cfg.device = options.device;
	cfg.threads = options.threads;
	cfg.quiet = true;
	m_backend = create_backend(cfg.device, cfg.threads);
	m_model = std::make_unique<NerfModel>(*m_backend, cfg);
	m_step = load_checkpoint(checkpoint, *m_model).global_step;
	try {
		const OccGridSpec grid = occ_grid_spec(m_model->config());
		for (int d = 0; d < 3; ++d) {
			m_box.min[d] = grid.aabb_min[d];
			m_box.max[d] = grid.aabb_max[d];
		}
		m_has_box = true;
	} catch (const Error&) {
		m_has_box = false;  // an unbounded reference run without a grid: the caller names a box
	}
}

FieldQuery::~FieldQuery() = default;

const char* FieldQuery::field_type() const { return m_model->field_type(); }
const Config& FieldQuery::config() const { return m_model->config(); }
bool FieldQuery::view_dependent() const { return m_model->config().model == "ngp" || m_model->config().use_viewdirs; }
std::string FieldQuery::backend_name() const { return m_backend->name(); }

GridBox FieldQuery::box() const {
	if (!m_has_box)
		NERF_FAIL(m_checkpoint << ": the run (dataset_type " << m_model->config().dataset_type
		                       << ", no occupancy grid) never fixed a scene box; name one (nerf_export --box)");
	return m_box;
}

void FieldQuery::density(const float* points, size_t n, float* density) { evaluate(points, nullptr, n, density, nullptr); }

void FieldQuery::density_and_colour(const float* points, const float* view_directions, size_t n, float* density,
                                    float* rgb) {
	NERF_CHECK(rgb != nullptr);
	if (view_dependent() && view_directions == nullptr)
		NERF_FAIL("FieldQuery::density_and_colour: this field's colour depends on the view direction; pass view_directions");
	evaluate(points, view_directions, n, density, rgb);
}

void FieldQuery::density_gradient(const float* points, size_t n, float h, float* gradient) {
	if (!(h > 0.0f && std::isfinite(h))) NERF_FAIL("FieldQuery::density_gradient: the step h must be > 0, got " << h);
	// Six displaced copies per batch of points, evaluated together.
	const size_t per_batch = std::max<size_t>(m_batch / 6, 1);
	std::vector<float> shifted, values;
	for (size_t begin = 0; begin < n; begin += per_batch) {
		const size_t m = std::min(per_batch, n - begin);
		shifted.resize(18 * m);
		values.resize(6 * m);
		for (int axis = 0; axis < 3; ++axis)
			for (int side = 0; side < 2; ++side) {
				float* block = shifted.data() + (size_t)(2 * axis + side) * 3 * m;
				std::copy(points + 3 * begin, points + 3 * (begin + m), block);
				for (size_t i = 0; i < m; ++i) block[3 * i + axis] += side == 0 ? h : -h;
			}
		evaluate(shifted.data(), nullptr, 6 * m, values.data(), nullptr);
		for (size_t i = 0; i < m; ++i)
			for (int axis = 0; axis < 3; ++axis)
				gradient[3 * (begin + i) + axis] = (values[(size_t)(2 * axis) * m + i] - values[(size_t)(2 * axis + 1) * m + i]) / (2.0f * h);
	}
}

void FieldQuery::evaluate(const float* points, const float* view_directions, size_t n, float* density, float* rgb) {
	if (n == 0) return;
	NERF_CHECK(points != nullptr && density != nullptr);
	Field& field = m_model->field(m_model->n_fields() - 1);  // the fine network when there are two
	const int width = field.raw_width();
	const size_t batch = std::min(m_batch, n);
	Buffer<float> points_dev = m_backend->allocate<float>(3 * batch);
	Buffer<float> raw_dev = m_backend->allocate<float>((size_t)width * batch);
	Buffer<float> dirs_dev;
	std::vector<float> raw((size_t)width * batch), dirs;
	if (rgb) {
		dirs_dev = m_backend->allocate<float>(3 * batch);
		dirs.assign(3 * batch, 0.0f);
	}
	for (size_t begin = 0; begin < n; begin += batch) {
		const size_t m = std::min(batch, n - begin);
		m_backend->upload(points_dev.data(), points + 3 * begin, 3 * m * sizeof(float));
		if (rgb) {
			// The networks saw unit view directions (viewdirs); any direction without one looks down -z.
			for (size_t i = 0; i < m; ++i) {
				float* d = dirs.data() + 3 * i;
				if (view_directions) {
					const float* v = view_directions + 3 * (begin + i);
					const float len = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
					if (len > 0.0f && std::isfinite(len)) {
						for (int c = 0; c < 3; ++c) d[c] = v[c] / len;
						continue;
					}
				}
				d[0] = 0.0f, d[1] = 0.0f, d[2] = -1.0f;
			}
			m_backend->upload(dirs_dev.data(), dirs.data(), 3 * m * sizeof(float));
			field.forward(raw_dev.data(), m_model->params(), FieldInputs::packed(points_dev.data(), dirs_dev.data(), nullptr, m),
			              false, FieldOutputs::All);
		} else {
			field.density(raw_dev.data(), m_model->params(), points_dev.data(), m);
		}
		m_backend->download(raw.data(), raw_dev.data(), (size_t)width * m * sizeof(float));
		for (size_t i = 0; i < m; ++i) {
			const float* r = raw.data() + (size_t)width * i;
			density[begin + i] = std::max(r[3], 0.0f);  // compositing's ReLU (the hash grid's exp is already >= 0)
			if (rgb)
				for (int c = 0; c < 3; ++c) rgb[3 * (begin + i) + c] = sigmoidf_(r[c]);  // as compositing reads it
		}
	}
}

} // namespace nerf
