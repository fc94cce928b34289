// occ_grid mode on the CPU backend: the backend's marching stages against the shared math and across
// thread counts, the grid update against a direct computation, the grid in checkpoints (round trip,
// bit-exact resume, what nerf_render loads), the adaptive ray count, and bad options.
#include "nerf/checkpoint.h"
#include "nerf/io/safetensors.h"
#include "nerf/trainer.h"

#include "tools_fixture.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>

namespace fs = std::filesystem;
using nerf_test::fresh_dir;
using nerf_test::host_copy;
using nerf_test::ResumedRun;
using nerf_test::same_bits;
using nerf_test::train_save_resume;
using nerf_test::tiny_config;

namespace {

template <typename T> nerf::Buffer<T> backend_copy(nerf::Backend& b, const std::vector<T>& host) {
	nerf::Buffer<T> buf = b.allocate<T>(host.size());
	b.upload(buf.data(), host.data(), host.size() * sizeof(T));
	return buf;
}

/// tiny_config with the grid on: an 8^3 grid over the built-in scene's box, updated often.
nerf::Config grid_config(const std::string& basedir, const std::string& expname) {
	nerf::Config cfg = tiny_config(basedir, expname);
	cfg.occ_grid = true;
	cfg.occ_resolution = 8;
	cfg.occ_update_every = 2;
	cfg.occ_warmup = 3;
	cfg.render_step_size = 0.05f;
	cfg.raw_noise_std = 0.5f;
	return cfg;
}

struct GridState {
	std::vector<float> density;
	std::vector<uint8_t> occupied;
};
GridState grid_of(nerf::NerfModel& model) {
	const uint32_t cells = nerf::occ_cell_count(model.occ_grid());
	return {host_copy(model.backend(), model.occ_density(), cells), host_copy(model.backend(), model.occ_occupied(), cells)};
}

/// Marched samples of random rays through a random grid by one backend's stages.
struct MarchedBatch {
	std::vector<uint32_t> counts, offsets, kept, kept_offsets;
	std::vector<float> t, dt, points, rgb, kept_t, kept_dt, kept_points;
	std::vector<uint32_t> ray, kept_ray;
};

MarchedBatch march_batch(nerf::Backend& b, const std::vector<float>& o, const std::vector<float>& d,
                         const std::vector<uint8_t>& occupied, const std::vector<float>& raw_per_sample,
                         const nerf::MarchSpec& spec) {
	const size_t n = o.size() / 3;
	auto d_o = backend_copy(b, o), d_d = backend_copy(b, d);
	auto d_occ = backend_copy(b, occupied);
	auto counts = b.allocate<uint32_t>(n), offsets = b.allocate<uint32_t>(n + 1);
	b.march_count(counts.data(), d_o.data(), d_d.data(), n, d_occ.data(), 100, spec);
	b.scan_counts(offsets.data(), counts.data(), n);
	MarchedBatch out;
	out.counts = host_copy(b, counts.data(), n);
	out.offsets = host_copy(b, offsets.data(), n + 1);
	const size_t total = out.offsets[n];
	auto t = b.allocate<float>(total), dt = b.allocate<float>(total), points = b.allocate<float>(3 * total);
	auto ray = b.allocate<uint32_t>(total);
	b.march_fill({t.data(), dt.data(), points.data(), ray.data()}, offsets.data(), d_o.data(), d_d.data(), n,
	             d_occ.data(), 100, spec);
	out.t = host_copy(b, t.data(), total);
	out.dt = host_copy(b, dt.data(), total);
	out.points = host_copy(b, points.data(), 3 * total);
	out.ray = host_copy(b, ray.data(), total);
	// Raw outputs: a per-sample pattern from the caller, so the early stop has something to stop at.
	std::vector<float> raw(4 * total);
	for (size_t k = 0; k < total; ++k)
		for (int c = 0; c < 4; ++c) raw[4 * k + c] = raw_per_sample[(4 * k + c) % raw_per_sample.size()];
	auto d_raw = backend_copy(b, raw);
	auto kept = b.allocate<uint32_t>(n), kept_offsets = b.allocate<uint32_t>(n + 1);
	b.early_stop(kept.data(), d_raw.data(), dt.data(), offsets.data(), counts.data(), d_d.data(), n, 4, 1e-4f);
	b.scan_counts(kept_offsets.data(), kept.data(), n);
	out.kept = host_copy(b, kept.data(), n);
	out.kept_offsets = host_copy(b, kept_offsets.data(), n + 1);
	const size_t n_kept = std::max<size_t>(out.kept_offsets[n], 1);
	auto kt = b.allocate<float>(n_kept), kdt = b.allocate<float>(n_kept), kp = b.allocate<float>(3 * n_kept);
	auto kr = b.allocate<uint32_t>(n_kept);
	b.compact_samples({kt.data(), kdt.data(), kp.data(), kr.data()}, {t.data(), dt.data(), points.data(), ray.data()},
	                  kept_offsets.data(), kept.data(), offsets.data(), n);
	out.kept_t = host_copy(b, kt.data(), out.kept_offsets[n]);
	out.kept_dt = host_copy(b, kdt.data(), out.kept_offsets[n]);
	out.kept_points = host_copy(b, kp.data(), 3 * (size_t)out.kept_offsets[n]);
	out.kept_ray = host_copy(b, kr.data(), out.kept_offsets[n]);
	auto rgb = b.allocate<float>(3 * n);
	nerf::CompositeOutputs co;
	co.rgb = rgb.data();
	nerf::CompositeSpec cs;
	cs.white_bkgd = true;
	b.composite_forward_packed(co, d_raw.data(), t.data(), dt.data(), offsets.data(), kept.data(), d_d.data(), n, 100, cs);
	out.rgb = host_copy(b, rgb.data(), 3 * n);
	return out;
}

} // namespace

TEST_CASE("occ_grid: the CPU backend's marching stages follow the shared math at any thread count", "[occupancy]") {
	std::mt19937 rng(1);
	std::uniform_real_distribution<float> wide(-4.0f, 4.0f), inner(-1.0f, 1.0f);
	const size_t n = 3000;
	std::vector<float> o(3 * n), d(3 * n);
	for (size_t r = 0; r < n; ++r)
		for (int k = 0; k < 3; ++k) {
			o[3 * r + k] = wide(rng);
			d[3 * r + k] = inner(rng) - o[3 * r + k];
		}
	nerf::MarchSpec spec;
	spec.grid.resolution = 16;
	spec.near = 0.1f;
	spec.far = 10.0f;
	spec.step_size = 0.02f;
	spec.max_steps = 300;
	spec.perturb = true;
	spec.seed = 5;
	spec.step = 9;
	std::vector<uint8_t> occupied(nerf::occ_cell_count(spec.grid));
	for (uint8_t& c : occupied) c = rng() % 4 == 0;
	const std::vector<float> raw_pattern = {0.5f, -1.0f, 2.0f, 40.0f, 1.0f, 0.0f, -2.0f, -3.0f, 0.2f, 0.3f, 0.1f, 25.0f};

	auto one = nerf::create_cpu_backend(1), two = nerf::create_cpu_backend(2);
	const MarchedBatch a = march_batch(*one, o, d, occupied, raw_pattern, spec);
	const MarchedBatch b = march_batch(*two, o, d, occupied, raw_pattern, spec);
	CHECK(same_bits(a.counts, b.counts));
	CHECK(same_bits(a.t, b.t));
	CHECK(same_bits(a.dt, b.dt));
	CHECK(same_bits(a.points, b.points));
	CHECK(same_bits(a.ray, b.ray));
	CHECK(same_bits(a.kept, b.kept));
	CHECK(same_bits(a.kept_t, b.kept_t));
	CHECK(same_bits(a.kept_dt, b.kept_dt));
	CHECK(same_bits(a.kept_points, b.kept_points));
	CHECK(same_bits(a.kept_ray, b.kept_ray));
	CHECK(same_bits(a.rgb, b.rgb));

	// Each ray's packed samples are march_ray's, its kept prefix is early_stop_count's, the compacted
	// samples are that prefix, and the colour is composite_ray_packed over it.
	size_t total = 0, stopped = 0;
	for (size_t r = 0; r < n; ++r) {
		INFO("ray " << r);
		const uint32_t count = a.counts[r];
		REQUIRE(a.offsets[r] == total);
		std::vector<float> t(count + 1), dt(count + 1), points(3 * count + 3);
		REQUIRE(nerf::march_ray(t.data(), dt.data(), points.data(), o.data() + 3 * r, d.data() + 3 * r, occupied.data(),
		                        100 + (uint32_t)r, spec) == count);
		for (uint32_t k = 0; k < count; ++k) {
			CHECK(a.t[total + k] == t[k]);
			CHECK(a.dt[total + k] == dt[k]);
			for (int c = 0; c < 3; ++c) CHECK(a.points[3 * (total + k) + c] == points[3 * k + c]);
			CHECK(a.ray[total + k] == r);
		}
		std::vector<float> raw(4 * count + 4);
		for (size_t k = 0; k < 4 * (size_t)count; ++k) raw[k] = raw_pattern[(4 * total + k) % raw_pattern.size()];
		const int kept = nerf::early_stop_count(raw.data(), dt.data(), d.data() + 3 * r, (int)count, 4, 1e-4f);
		CHECK(a.kept[r] == (uint32_t)kept);
		for (int k = 0; k < kept; ++k) {
			const size_t j = a.kept_offsets[r] + k;
			CHECK(a.kept_t[j] == t[k]);
			CHECK(a.kept_dt[j] == dt[k]);
			for (int c = 0; c < 3; ++c) CHECK(a.kept_points[3 * j + c] == points[3 * k + c]);
			CHECK(a.kept_ray[j] == r);
		}
		nerf::CompositeSpec cs;
		cs.white_bkgd = true;
		const nerf::RayOutputs ray =
			nerf::composite_ray_packed(nullptr, raw.data(), t.data(), dt.data(), d.data() + 3 * r, kept, 100 + (uint32_t)r, cs);
		for (int c = 0; c < 3; ++c) CHECK(a.rgb[3 * r + c] == ray.rgb[c]);
		total += count;
		stopped += (uint32_t)kept < count;
	}
	CHECK(a.offsets[n] == total);
	CHECK(total > 10 * n);  // the batch exercises long rays
	CHECK(stopped > n / 10);
}

TEST_CASE("occ_grid: a grid update equals a direct computation of its rules", "[occupancy]") {
	const std::string dir = fresh_dir("occ_update");
	nerf::Config cfg = grid_config(dir, "run");
	cfg.occ_warmup = 1;
	auto backend = nerf::create_cpu_backend(2);
	nerf::NerfModel model(*backend, cfg);
	const nerf::OccGridSpec& grid = model.occ_grid();
	const uint32_t cells = nerf::occ_cell_count(grid);
	REQUIRE(cells == 512);
	CHECK(model.occupied_fraction() == 1.0);  // nothing known yet: every cell occupied
	CHECK(model.config().occ_aabb == "-1.5,-1.5,-1.5,1.5,1.5,1.5");
	CHECK(model.render_step_size() == 0.05f);

	// The network's raw sigma at a point, computed here from the encoding and a network of our own.
	const nerf::MlpLayout& layout = model.coarse_layout();
	auto mlp = backend->create_mlp(layout, 1, nerf::Precision::FP32);
	const nerf::EncodingSpec pts{3, cfg.multires, false}, views{3, cfg.multires_views, false};
	auto sigma_at = [&](const float x[3]) {
		std::vector<float> enc_pts(nerf::encoded_width(pts)), enc_views(nerf::encoded_width(views)), raw(4);
		nerf::positional_encode(enc_pts.data(), x, pts);
		const float up[3] = {0.0f, 0.0f, 1.0f};
		nerf::positional_encode(enc_views.data(), up, views);
		mlp->forward(raw.data(), model.params(), enc_pts.data(), enc_views.data(), 1, false);
		return raw[3];
	};
	auto check_update = [&](uint32_t step, const GridState& before) {
		model.update_occupancy_grid(step);
		const GridState after = grid_of(model);
		nerf::OccUpdateSpec spec;
		spec.grid = grid;
		spec.threshold = cfg.occ_threshold;
		spec.step_size = model.render_step_size();
		spec.all_cells = step <= (uint32_t)cfg.occ_warmup;
		spec.seed = cfg.seed;
		spec.step = step;
		std::vector<float> expected = before.density;
		size_t chosen = 0, unchosen_moved = 0;
		for (uint32_t c = 0; c < cells; ++c) {
			if (!spec.all_cells && !before.occupied[c] &&
			    !(nerf::random_uniform(cfg.seed, step, c, 0, nerf::RngStream::OccGridChoice) < 0.25f)) {
				// Exact, unlike the evaluated cells below: a cell the update skips keeps its bits.
				unchosen_moved += std::memcmp(&after.density[c], &before.density[c], sizeof(float)) != 0;
				continue;
			}
			++chosen;
			float x[3];
			nerf::occ_cell_point(x, c, spec);
			expected[c] = std::max(0.95f * before.density[c], std::max(sigma_at(x), 0.0f) * spec.step_size);
		}
		double mean = 0.0;
		for (float e : expected) mean += e;
		mean /= cells;
		size_t occupied = 0;
		for (uint32_t c = 0; c < cells; ++c) {
			INFO("step " << step << " cell " << c);
			// The network forward of one sample and of a batch may round differently (GEMM blocking).
			CHECK(after.density[c] == Approx(expected[c]).epsilon(1e-5).margin(1e-9));
			const bool want = mean <= 0.0 || expected[c] > std::min((double)cfg.occ_threshold, mean);
			if (std::fabs(expected[c] - std::min((double)cfg.occ_threshold, mean)) > 1e-6) CHECK((after.occupied[c] != 0) == want);
			occupied += after.occupied[c];
		}
		CHECK(model.occupied_fraction() == Approx((double)occupied / cells));
		CHECK(unchosen_moved == 0);
		return std::make_pair(after, chosen);
	};
	GridState start = grid_of(model);
	const auto [warm, chosen_warm] = check_update(1, start);
	CHECK(chosen_warm == cells);
	// The untrained network sees density in some cells but not all.
	CHECK(model.occupied_fraction() > 0.0);
	CHECK(model.occupied_fraction() < 1.0);
	const auto [later, chosen_later] = check_update(2, warm);
	CHECK(chosen_later < cells);
}

TEST_CASE("occ_grid: the grid and counters round-trip through a checkpoint, nerf_render's load renders the same",
          "[occupancy][checkpoint]") {
	const std::string dir = fresh_dir("occ_ckpt");
	nerf::Config cfg = grid_config(dir, "run");
	const nerf::Dataset data = nerf::load_dataset(cfg);
	auto backend = nerf::create_cpu_backend(1);
	nerf::Trainer trainer(cfg, data, *backend);
	for (long i = 1; i <= 6; ++i) trainer.step(i);
	nerf::NerfModel& model = trainer.model();
	const std::string path = dir + "/000006.safetensors";
	nerf::save_checkpoint(path, model, 6);

	const nerf::SafetensorsFile f = nerf::read_safetensors(path);
	CHECK(f.metadata.at("format_version") == "2");
	CHECK(f.tensors.at("occupancy_grid.density").shape == std::vector<int64_t>{8, 8, 8});
	CHECK(f.tensors.at("occupancy_grid.occupied").shape == std::vector<int64_t>{8, 8, 8});
	CHECK(f.tensors.count("network_fine.pts_linears.0.weight") == 0);  // one network with occ_grid
	CHECK(f.metadata.at("rays_trained") == std::to_string(model.counters().rays));
	CHECK(model.counters().rays + model.counters().dropped_rays == 6u * 64u);
	CHECK(model.counters().rays > 0u);
	CHECK(model.counters().network_samples > 0u);

	// As nerf_render does: the model from the checkpoint's config, then the checkpoint.
	const nerf::Config restored = nerf::config_from_checkpoint(path);
	CHECK(restored.occ_grid);
	CHECK(restored.occ_aabb == "-1.5,-1.5,-1.5,1.5,1.5,1.5");
	nerf::NerfModel loaded(*backend, restored);
	nerf::load_checkpoint(path, loaded);
	const GridState a = grid_of(model), b = grid_of(loaded);
	CHECK(same_bits(a.density, b.density));
	CHECK(same_bits(a.occupied, b.occupied));
	CHECK(loaded.occupied_fraction() == model.occupied_fraction());
	CHECK(loaded.counters().network_samples == model.counters().network_samples);
	const nerf::Camera cam = nerf::dataset_camera(data);
	const nerf::RenderSettings settings = nerf::RenderSettings::from_config(cfg, data, false);
	const nerf::RenderedRays ra = model.render_image(data.poses[data.i_val[0]], cam, settings, 100);
	const nerf::RenderedRays rb = loaded.render_image(data.poses[data.i_val[0]], cam, settings, 37);
	CHECK(same_bits(ra.rgb, rb.rgb));
	CHECK(same_bits(ra.depth, rb.depth));
	CHECK(ra.network_samples == rb.network_samples);
	CHECK(ra.rgb0.empty());

	// Mismatches are clear errors naming the file.
	nerf::Config dense = restored;
	dense.occ_grid = false;
	nerf::NerfModel dense_model(*backend, dense);
	CHECK_THROWS_WITH(nerf::load_checkpoint(path, dense_model),
	                  Catch::Contains(path) && Catch::Contains("occupancy grid") && Catch::Contains("occ_grid = False"));
	nerf::Config finer = restored;
	finer.occ_resolution = 16;
	nerf::NerfModel finer_model(*backend, finer);
	CHECK_THROWS_WITH(nerf::load_checkpoint(path, finer_model),
	                  Catch::Contains("occupancy_grid.density") && Catch::Contains("[8, 8, 8]") && Catch::Contains("[16, 16, 16]"));
	// A dense checkpoint stays format 1 and cannot feed a grid model.
	nerf::Config dense_cfg = tiny_config(dir, "dense");
	dense_cfg.N_importance = 0;
	nerf::NerfModel plain(*backend, dense_cfg);
	nerf::save_checkpoint(dir + "/dense.safetensors", plain, 1);
	CHECK(nerf::read_safetensors_metadata(dir + "/dense.safetensors").at("format_version") == "1");
	CHECK_THROWS_WITH(nerf::load_checkpoint(dir + "/dense.safetensors", loaded),
	                  Catch::Contains("no tensor") && Catch::Contains("occupancy_grid"));
}

TEST_CASE("occ_grid: train k steps, save, reload, continue = train straight (bitwise), with adaptive rays",
          "[occupancy][checkpoint]") {
	const bool no_batching = GENERATE(false, true);
	const std::string dir = fresh_dir(no_batching ? "occ_resume_nb" : "occ_resume");
	nerf::Config cfg = grid_config(dir, "run");
	cfg.no_batching = no_batching;
	cfg.target_samples = 600;  // the rays per step follow the samples: state that must be saved too
	const long total = 9, stop_at = 4;  // updates at steps 1, 3, 5, 7, 9: the resume falls between two
	const nerf::Dataset data = nerf::load_dataset(cfg);

	struct End {
		std::vector<float> params, m;
		GridState grid;
		nerf::TrainCounters counters;
	};
	auto end_of = [](nerf::NerfModel& model) {
		End e;
		e.params = host_copy(model.backend(), model.params(), model.n_floats());
		e.m = host_copy(model.backend(), model.adam_m(), model.n_floats());
		e.grid = grid_of(model);
		e.counters = model.counters();
		return e;
	};
	End straight;
	std::vector<uint32_t> rays_per_step;
	{
		auto backend = nerf::create_cpu_backend(1);
		nerf::Trainer trainer(cfg, data, *backend);
		for (long i = 1; i <= total; ++i) {
			trainer.step(i);
			rays_per_step.push_back((uint32_t)trainer.model().last_step_rays());
		}
		straight = end_of(trainer.model());
	}
	// The ray count did adapt (the first step has N_rand = 64 rays).
	CHECK(*std::max_element(rays_per_step.begin(), rays_per_step.end()) !=
	      *std::min_element(rays_per_step.begin(), rays_per_step.end()));
	const ResumedRun run = train_save_resume(cfg, data, stop_at, total, nerf::checkpoint_path(dir, stop_at));
	REQUIRE(run.info.global_step == stop_at);
	nerf::Trainer& resumed = *run.trainer;
	nerf::Backend& backend = *run.backend;
	const End got = end_of(resumed.model());
	CHECK(same_bits(got.params, straight.params));
	CHECK(same_bits(got.m, straight.m));
	CHECK(same_bits(got.grid.density, straight.grid.density));
	CHECK(same_bits(got.grid.occupied, straight.grid.occupied));
	CHECK(got.counters.rays == straight.counters.rays);
	CHECK(got.counters.network_samples == straight.counters.network_samples);
	CHECK(got.counters.rays_drawn == straight.counters.rays_drawn);
	CHECK(got.counters.next_rays == straight.counters.next_rays);
	nerf::NerfModel fresh(backend, resumed.config());
	CHECK_FALSE(same_bits(host_copy(backend, fresh.params(), fresh.n_floats()), got.params));
}

TEST_CASE("occ_grid: training does not depend on the thread count", "[occupancy]") {
	const std::string dir = fresh_dir("occ_threads");
	nerf::Config cfg = grid_config(dir, "run");
	cfg.occ_resolution = 16;
	const nerf::Dataset data = nerf::load_dataset(cfg);
	auto run = [&](int threads) {
		auto backend = nerf::create_cpu_backend(threads);
		nerf::Trainer trainer(cfg, data, *backend);
		for (long i = 1; i <= 6; ++i) trainer.step(i);
		std::vector<float> params = host_copy(*backend, trainer.model().params(), trainer.model().n_floats());
		const GridState grid = grid_of(trainer.model());
		params.insert(params.end(), grid.density.begin(), grid.density.end());
		return params;
	};
	const std::vector<float> one = run(1), two = run(2), three = run(3);
	CHECK(same_bits(one, two));
	CHECK(same_bits(one, three));
}

TEST_CASE("occ_grid: bad options are one clear error", "[occupancy][errors]") {
	const std::string dir = fresh_dir("occ_errors");
	nerf::Config cfg = grid_config(dir, "run");
	const nerf::Dataset data = nerf::load_dataset(cfg);
	auto backend = nerf::create_cpu_backend(1);
	for (const char* bad : {"1,2,3", "a,b,c,d,e,f", "-1,-1,-1,1,1", "0,0,0,1,1,1,1", "1,-1,-1,-1,1,1", "nan,0,0,1,1,1"}) {
		cfg.occ_aabb = bad;
		INFO(bad);
		CHECK_THROWS_WITH(nerf::Trainer(cfg, data, *backend), Catch::Contains("occ_aabb") && Catch::Contains(bad));
	}
	cfg.occ_aabb = "-2,-2,-2,2,2,2";
	{
		nerf::Trainer trainer(cfg, data, *backend);
		CHECK(trainer.model().config().occ_aabb == "-2,-2,-2,2,2,2");
		CHECK(trainer.model().occ_grid().aabb_max[1] == 2.0f);
	}
	cfg.occ_aabb.clear();
	cfg.render_step_size = 1e-7f;
	CHECK_THROWS_WITH(nerf::Trainer(cfg, data, *backend), Catch::Contains("render_step_size"));
	// A library caller without a box for an unbounded dataset type is told to set one.
	nerf::Config deepvoxels = grid_config(dir, "dv");
	deepvoxels.dataset_type = "deepvoxels";
	CHECK_THROWS_WITH(nerf::NerfModel(*backend, deepvoxels), Catch::Contains("occ_aabb"));
	// nerf_train derives it from the cameras: their centres +- far.
	nerf::Dataset unbounded = data;
	unbounded.far = 3.0f;
	deepvoxels.dataset_type = "LINEMOD";
	const std::string box = nerf::occ_grid_box(deepvoxels, unbounded);
	float lo_x = 1e9f;
	for (const nerf::Pose& p : unbounded.poses) lo_x = std::min(lo_x, p[3] - 3.0f);
	CHECK(std::stof(box.substr(0, box.find(','))) == lo_x);
}
