// bench_kernels' stages: occupancy-grid marching, packed compositing and the grid update. Each is checked first, then timed;
// the bytes and FLOPs of each row are counted next to it (conventions: bench_kernels.cpp).
#include "kernel_bench.h"

namespace nerf::bench {

KernelBench::MarchedHost KernelBench::march_host(Backend& be, const RayInputs& rays, const std::vector<uint8_t>& occ, const MarchSpec& spec) {
	const size_t n = rays.n;
	Buffer<float> o = make_buffer(be, rays.rays_o), d = make_buffer(be, rays.rays_d);
	Buffer<uint8_t> g = make_buffer(be, occ);
	Buffer<uint32_t> counts = be.allocate<uint32_t>(n), offsets = be.allocate<uint32_t>(n + 1);
	be.march_count(counts.data(), o.data(), d.data(), n, g.data(), 0, spec);
	be.scan_counts(offsets.data(), counts.data(), n);
	MarchedHost m;
	m.counts = download(be, counts);
	m.offsets = download(be, offsets);
	const size_t total = m.offsets[n];
	Buffer<float> t = be.allocate<float>(total), dt = be.allocate<float>(total), p = be.allocate<float>(3 * total);
	Buffer<uint32_t> ray = be.allocate<uint32_t>(total);
	be.march_fill({t.data(), dt.data(), p.data(), ray.data()}, offsets.data(), o.data(), d.data(), n, g.data(), 0, spec);
	m.t = download(be, t);
	m.dt = download(be, dt);
	m.points = download(be, p);
	return m;
}

void KernelBench::bench_marched(const RayInputs& rays) {
	const size_t n = rays.n;
	const MarchSpec spec = bench_march_spec();
	const std::vector<uint8_t> occ = shell_grid(spec.grid);
	const MarchedHost got = march_host(m_dev, rays, occ, spec);
	const size_t total = got.offsets[n];

	if (wanted("march")) {
		StageCheck check("march");
		if (m_ref) {
			// Only IEEE-exact operations and the integer RNG (see tests/gpu/test_gpu_occupancy.cpp): exact.
			const MarchedHost ref = march_host(*m_ref, rays, occ, spec);
			check.require(ref.counts == got.counts, "per-ray sample counts differ from the CPU backend");
			check.arrays("t", got.t, ref.t, Tolerance{0.0, 0.0});
			check.arrays("points", got.points, ref.points, Tolerance{0.0, 0.0});
		} else {
			// Invariants from the definition: every sample in an occupied cell, inside [near, far),
			// a whole number of steps after the ray's first sample, and x = o + t d.
			double worst_lattice = 0.0, worst_point = 0.0;
			bool in_occupied = true, in_range = true;
			for (size_t r = 0; r < n; ++r)
				for (uint32_t k = 0; k < got.counts[r]; ++k) {
					const size_t i = got.offsets[r] + k;
					const float* x = got.points.data() + 3 * i;
					const int32_t cell = occ_cell_of(x, spec.grid);
					in_occupied = in_occupied && cell >= 0 && occ[cell];
					in_range = in_range && got.t[i] >= spec.near && got.t[i] < spec.far;
					const double steps = ((double)got.t[i] - got.t[got.offsets[r]]) / got.dt[i];
					worst_lattice = std::max(worst_lattice, std::fabs(steps - std::round(steps)));
					for (int c = 0; c < 3; ++c)
						worst_point = std::max(worst_point, std::fabs((double)x[c] - (rays.rays_o[3 * r + c] +
						                                                             (double)rays.rays_d[3 * r + c] * got.t[i])));
				}
			check.require(in_occupied, "a marched sample lies outside the occupied cells");
			check.require(in_range, "a marched sample lies outside [near, far)");
			// t = t0 + (k + u) dt in float: k dt is exact to ~k ulp of t (<= 1026 steps of ~6): 1e-3 of a step.
			check.bound("distance of samples from the step lattice (steps)", worst_lattice, 1e-2);
			check.bound("|x - (o + t d)|", worst_point, 1e-5);
			check.require(total > n, "the shell grid gave fewer than one sample per ray");
		}
		Buffer<float> o = make_buffer(m_dev, rays.rays_o), d = make_buffer(m_dev, rays.rays_d);
		Buffer<uint8_t> g = make_buffer(m_dev, occ);
		Buffer<uint32_t> counts = m_dev.allocate<uint32_t>(n), offsets = m_dev.allocate<uint32_t>(n + 1);
		Buffer<float> t = m_dev.allocate<float>(total), dt = m_dev.allocate<float>(total), p = m_dev.allocate<float>(3 * total);
		Buffer<uint32_t> ray = m_dev.allocate<uint32_t>(total);
		auto run = [&] {
			m_dev.march_count(counts.data(), o.data(), d.data(), n, g.data(), 0, spec);
			m_dev.scan_counts(offsets.data(), counts.data(), n);
			m_dev.march_fill({t.data(), dt.data(), p.data(), ray.data()}, offsets.data(), o.data(), d.data(), n, g.data(),
			                 0, spec);
		};
		const auto ms = time(run);
		// Without the host read of the total a training step does in between (its count is known here).
		// bytes = n (24 rays + 8 counts/offsets, twice) + samples (4 t + 4 dt + 12 points + 4 ray);
		// the grid's bytes are reads that mostly hit the cache, not counted.
		// FLOPs = n 2 (20 per ray: slab test, norm) + per step point, both passes: 2 (8: t, x, cell).
		double steps = 0.0;
		for (size_t r = 0; r < n; ++r) {
			float t0, t1;
			if (ray_box_interval(&t0, &t1, rays.rays_o.data() + 3 * r, rays.rays_d.data() + 3 * r, spec.grid))
				steps += std::max(0.0, (std::min(t1, spec.far) - std::max(t0, spec.near)) *
				                         std::sqrt((double)rays.rays_d[3 * r] * rays.rays_d[3 * r] +
				                                   (double)rays.rays_d[3 * r + 1] * rays.rays_d[3 * r + 1] +
				                                   (double)rays.rays_d[3 * r + 2] * rays.rays_d[3 * r + 2]) / spec.step_size);
		}
		add_row("march", size_label(n, 0) + " M=" + std::to_string(total), Precision::FP32, ms,
		        (double)n * 64.0 + (double)total * 24.0, (double)n * 40.0 + steps * 16.0, check.summary());
	}
	if (total > 0) bench_composite_packed(rays, got);
}

void KernelBench::bench_composite_packed(const RayInputs& rays, const MarchedHost& marched) {
	const size_t n = rays.n, total = marched.offsets[n];
	const CompositeSpec spec = composite_spec();
	// raw with sigma scaled to the marching step (0.005): densities ~100 make a shell opaque over ~20 steps.
	std::vector<float> raw_host = synthetic_raw(total, 60);
	for (size_t k = 0; k < total; ++k) raw_host[4 * k + 3] *= 12.0f;
	const std::vector<float> dL_drgb_host = normal_floats(3 * n, 1e-3, 61);
	auto packed_inputs = [&](Backend& be) {
		struct {
			Buffer<float> raw, t, dt, d, g;
			Buffer<uint32_t> offsets, counts;
		} in{make_buffer(be, raw_host), make_buffer(be, marched.t), make_buffer(be, marched.dt),
		     make_buffer(be, rays.rays_d), make_buffer(be, dL_drgb_host), make_buffer(be, marched.offsets),
		     make_buffer(be, marched.counts)};
		return in;
	};
	auto in = packed_inputs(m_dev);
	Buffer<float> rgb = m_dev.allocate<float>(3 * n), depth = m_dev.allocate<float>(n), disp = m_dev.allocate<float>(n),
	              acc = m_dev.allocate<float>(n), dL_draw = m_dev.allocate<float>(4 * total);
	const CompositeOutputs out{rgb.data(), depth.data(), disp.data(), acc.data(), nullptr};
	const std::string size = size_label(n, 0) + " M=" + std::to_string(total);

	if (wanted("composite_forward_packed")) {
		auto run = [&] {
			m_dev.composite_forward_packed(out, in.raw.data(), in.t.data(), in.dt.data(), in.offsets.data(),
			                               in.counts.data(), in.d.data(), n, 0, spec);
		};
		run();
		const auto got_rgb = download(m_dev, rgb), got_acc = download(m_dev, acc);
		StageCheck check("composite_forward_packed");
		// As composite_forward: ~2 S ulp of transmittance rounding (S up to ~400 here): rtol 2e-4.
		const Tolerance tol{1e-6, 2e-4};
		if (m_ref) {
			auto ref_in = packed_inputs(*m_ref);
			Buffer<float> r_rgb = m_ref->allocate<float>(3 * n), r_acc = m_ref->allocate<float>(n);
			CompositeOutputs ro;
			ro.rgb = r_rgb.data();
			ro.acc = r_acc.data();
			m_ref->composite_forward_packed(ro, ref_in.raw.data(), ref_in.t.data(), ref_in.dt.data(), ref_in.offsets.data(),
			                                ref_in.counts.data(), ref_in.d.data(), n, 0, spec);
			check.arrays("rgb", got_rgb, download(*m_ref, r_rgb), tol);
			check.arrays("acc", got_acc, download(*m_ref, r_acc), tol);
		} else {
			// Double reference: raw2outputs with each sample's gap replaced by its own dt.
			std::vector<float> ref_rgb(3 * n), ref_acc(n);
			for (size_t r = 0; r < n; ++r) {
				const size_t first = marched.offsets[r];
				const RayRef o = composite_ray_ref(nullptr, raw_host.data() + 4 * first, marched.t.data() + first,
				                                   rays.rays_d.data() + 3 * r, (int)marched.counts[r], 4, spec.white_bkgd,
				                                   marched.dt.data() + first);
				for (int c = 0; c < 3; ++c) ref_rgb[3 * r + c] = (float)o.rgb[c];
				ref_acc[r] = (float)o.acc;
			}
			check.arrays("rgb vs double", got_rgb, ref_rgb, tol);
			check.arrays("acc vs double", got_acc, ref_acc, tol);
		}
		const auto ms = time(run);
		// bytes = M (16 raw + 4 t + 4 dt) + n (8 offsets/counts + 12 rays_d + 24 outputs).
		// FLOPs = M 27 (as composite_forward per sample).
		add_row("composite_forward_packed", size, Precision::FP32, ms, (double)total * 24.0 + (double)n * 44.0,
		        (double)total * 27.0, check.summary());
	}
	if (wanted("composite_backward_packed")) {
		auto run = [&] {
			m_dev.composite_backward_packed(dL_draw.data(), in.g.data(), in.raw.data(), in.dt.data(), in.offsets.data(),
			                                in.counts.data(), in.d.data(), n, total, 0, spec);
		};
		run();
		const auto got = download(m_dev, dL_draw);
		StageCheck check("composite_backward_packed");
		if (m_ref) {
			auto ref_in = packed_inputs(*m_ref);
			Buffer<float> r_out = m_ref->allocate<float>(4 * total);
			m_ref->composite_backward_packed(r_out.data(), ref_in.g.data(), ref_in.raw.data(), ref_in.dt.data(),
			                                 ref_in.offsets.data(), ref_in.counts.data(), ref_in.d.data(), n, total, 0, spec);
			const auto ref = download(*m_ref, r_out);
			// As composite_backward: S * 4 ulp of the largest gradient (S up to ~400), plus 1e-4 relative.
			const double atol = 400.0 * 4.0 * std::ldexp(max_abs(ref.data(), ref.size()), -23);
			check.arrays("dL_draw", got, ref, Tolerance{atol, 1e-4});
		} else {
			// Directional derivative of sum_r dL_drgb_r . rgb_r on a few rays by central differences
			// of the double reference, against sum dL_draw . v (samples at relu's kink left out).
			std::mt19937_64 rng(62);
			std::normal_distribution<double> normal(0.0, 1.0);
			const size_t rays_checked = std::min<size_t>(n, 64);
			const size_t end = marched.offsets[rays_checked];
			std::vector<double> v(4 * end);
			for (size_t i = 0; i < v.size(); ++i) v[i] = (i % 4 == 3 && std::fabs(raw_host[i]) < 1e-2) ? 0.0 : normal(rng);
			const double h = 1e-6;
			auto loss_at = [&](double sign) {
				double loss = 0.0;
				std::vector<double> raw_r;
				for (size_t r = 0; r < rays_checked; ++r) {
					const size_t first = marched.offsets[r];
					raw_r.assign(4 * (size_t)marched.counts[r], 0.0);
					for (size_t i = 0; i < raw_r.size(); ++i) raw_r[i] = raw_host[4 * first + i] + sign * h * v[4 * first + i];
					const RayRef o = composite_ray_ref(nullptr, raw_r.data(), marched.t.data() + first,
					                                   rays.rays_d.data() + 3 * r, (int)marched.counts[r], 4,
					                                   spec.white_bkgd, marched.dt.data() + first);
					for (int c = 0; c < 3; ++c) loss += dL_drgb_host[3 * r + c] * o.rgb[c];
				}
				return loss;
			};
			const double fd = (loss_at(1.0) - loss_at(-1.0)) / (2.0 * h);
			double analytic = 0.0, scale = 0.0;
			for (size_t i = 0; i < v.size(); ++i) {
				analytic += got[i] * v[i];
				scale += std::fabs(got[i] * v[i]);
			}
			check.bound("directional derivative vs double central difference", std::fabs(analytic - fd), 1e-4 * scale + 1e-12);
			check.require(scale > 0.0, "all gradients of the checked rays are 0");
		}
		const auto ms = time(run);
		// bytes = M (16 raw + 4 dt + 16 dL_draw) + n (8 + 12 + 12); FLOPs = M 45 (as composite_backward).
		add_row("composite_backward_packed", size, Precision::FP32, ms, (double)total * 36.0 + (double)n * 32.0,
		        (double)total * 45.0, check.summary());
	}
}

void KernelBench::bench_grid_update() {
	if (!wanted("occ_grid_update") && !wanted("occ_grid_update_warmup")) return;
	const Precision precision = m_dev.is_cuda() ? Precision::TF32 : Precision::FP32;
	auto grid_config = [&](Precision p) {
		Config cfg = model_config(1024, p);
		cfg.occ_grid = true;
		cfg.occ_resolution = m_sizes.occ_resolution;
		cfg.dataset_type = "blender";
		return cfg;
	};
	const Config cfg = grid_config(precision);
	NerfModel model(m_dev, cfg);
	const uint32_t cells = occ_cell_count(model.occ_grid());
	auto grid_of = [cells](Backend& be, NerfModel& m) {
		std::pair<std::vector<float>, std::vector<uint8_t>> g{std::vector<float>(cells), std::vector<uint8_t>(cells)};
		be.download(g.first.data(), m.occ_density(), cells * sizeof(float));
		be.download(g.second.data(), m.occ_occupied(), cells);
		return g;
	};
	const auto initial = grid_of(m_dev, model);
	std::unique_ptr<NerfModel> ref_model;
	if (m_ref) {
		ref_model = std::make_unique<NerfModel>(*m_ref, grid_config(Precision::FP32));
		std::vector<float> params(model.n_floats());
		m_dev.download(params.data(), model.params(), params.size() * sizeof(float));
		m_ref->upload(ref_model->params(), params.data(), params.size() * sizeof(float));
	}
	auto start = initial;
	for (bool warmup : {true, false}) {
		const uint32_t step = warmup ? 1u : (uint32_t)cfg.occ_warmup + 1u;
		StageCheck check("occ_grid_update");
		model.set_occupancy_grid(start.first, start.second);
		const uint64_t before = model.counters().grid_samples;
		model.update_occupancy_grid(step);
		const double evaluated = (double)(model.counters().grid_samples - before);
		const auto after = grid_of(m_dev, model);
		if (ref_model) {
			// The same parameters and starting grid on the CPU backend: the EMA within the MLP forward's
			// bound for this precision (a density is one network output, relu'd and scaled).
			ref_model->set_occupancy_grid(start.first, start.second);
			ref_model->update_occupancy_grid(step);
			const auto ref = grid_of(*m_ref, *ref_model);
			check.arrays("density EMA", after.first, ref.first,
			             Tolerance{mlp_forward_tolerance(precision) * max_abs(ref.first.data(), cells) + 1e-12, 0.0});
		} else if (warmup) {
			// Every cell's EMA is relu(sigma) step_size at its jittered point: 64 cells against the
			// double MLP, within 1e-4 of the largest (the fp32 MLP's bound, mlp_forward_tolerance).
			std::vector<float> params_f(model.n_floats());
			m_dev.download(params_f.data(), model.params(), params_f.size() * sizeof(float));
			const std::vector<double> params(params_f.begin(), params_f.end());
			OccUpdateSpec spec;
			spec.grid = model.occ_grid();
			spec.step_size = model.render_step_size();
			spec.all_cells = true;
			spec.seed = cfg.seed;
			spec.step = step;
			std::vector<float> got, ref;
			std::vector<float> enc_pts(encoded_width(pts_encoding())), enc_views(encoded_width(views_encoding()));
			const float up[3] = {0.0f, 0.0f, 1.0f};
			positional_encode(enc_views.data(), up, views_encoding());
			for (uint32_t c = 0; c < cells; c += cells / 64) {
				float x[3];
				occ_cell_point(x, c, spec);
				positional_encode(enc_pts.data(), x, pts_encoding());
				double raw[4];
				mlp_forward_ref(raw, params.data(), model.coarse_layout(), enc_pts.data(), enc_views.data());
				got.push_back(after.first[c]);
				ref.push_back((float)(std::max(raw[3], 0.0) * spec.step_size));
			}
			check.arrays("density EMA vs double MLP", got, ref, Tolerance{1e-4 * max_abs(ref.data(), ref.size()) + 1e-12, 0.0});
		} else {
			// Cells neither occupied nor drawn keep their EMA exactly; evaluated ones never fall below
			// the decayed EMA.
			bool kept = true, decayed = true;
			for (uint32_t c = 0; c < cells; ++c) {
				const bool drawn = random_uniform(cfg.seed, step, c, 0, RngStream::OccGridChoice) < 0.25f;
				if (!start.second[c] && !drawn) kept = kept && after.first[c] == start.first[c];
				else decayed = decayed && after.first[c] >= 0.95f * start.first[c];
			}
			check.require(kept, "an update changed the EMA of a cell it did not evaluate");
			check.require(decayed, "an evaluated cell's EMA fell below 0.95 of its previous value");
			check.require(evaluated < cells, "an update after the warmup evaluated every cell");
		}
		check.require(evaluated > 0, "the update evaluated no cell");
		auto run = [&] {
			model.set_occupancy_grid(start.first, start.second);  // the choice depends on the grid: same start
			model.update_occupancy_grid(step);
		};
		const auto ms = time(run, true);
		// The network dominates: FLOPs = evaluated cells x one MLP forward. bytes = per cell 4 density +
		// 1 flag read and written, 4 choice + 4 offset written and read, plus per evaluated cell 16
		// (its index and point) and the encoding's rows (written and read by the network).
		const double enc_bytes = 4.0 * (encoded_width(pts_encoding()) + encoded_width(views_encoding())) * 2.0;
		add_row(warmup ? "occ_grid_update_warmup" : "occ_grid_update",
		        "R=" + std::to_string(m_sizes.occ_resolution) + "^3 eval=" + std::to_string((size_t)evaluated), precision,
		        ms, (double)cells * 26.0 + evaluated * (16.0 + enc_bytes),
		        evaluated * mlp_forward_flops(model.coarse_layout(), 1.0), check.summary());
		if (warmup) start = after;
	}
}

} // namespace nerf::bench
