// bench_kernels' stages: the reference's MLP forward and backward, per precision. Each is checked first, then timed;
// the bytes and FLOPs of each row are counted next to it (conventions: bench_kernels.cpp).
#include "kernel_bench.h"

namespace nerf::bench {

void KernelBench::bench_mlp(int n_rays, int n_samples, Precision precision) {
	if (!wanted("mlp_forward") && !wanted("mlp_backward")) return;
	const MlpLayout layout = make_mlp_layout(mlp_spec(), 0);
	const MlpSpec& spec = layout.spec;
	const size_t n = (size_t)n_rays * n_samples;
	const uint64_t seed = 60 + n_samples;
	std::vector<float> params_host(layout.n_floats);
	init_mlp_params_host(params_host.data(), layout, seed);
	// Encoded inputs are bounded like the real ones: gamma values in [-1, 1] (the identity
	// block of points up to ~4 makes no difference to the GEMMs).
	const std::vector<float> pts_host = uniform_floats(n * spec.in_pts, -1.0, 1.0, seed + 1);
	const std::vector<float> views_host = uniform_floats(n * spec.in_views, -1.0, 1.0, seed + 2);
	// dL/draw of order 1, as a loss-scaled gradient (what the fp16 path sees).
	const std::vector<float> dL_draw_host = normal_floats(n * 4, 1.0, seed + 3);
	Buffer<float> params = make_buffer(m_dev, params_host), pts = make_buffer(m_dev, pts_host),
	              views = make_buffer(m_dev, views_host), dL_draw = make_buffer(m_dev, dL_draw_host);
	Buffer<float> raw = m_dev.allocate<float>(n * 4), grads = m_dev.allocate<float>(layout.n_floats);
	m_dev.fill_zero(grads.data(), grads.bytes());
	auto mlp = m_dev.create_mlp(layout, n, precision);

	StageCheck check_fwd("mlp_forward"), check_bwd("mlp_backward");
	if (m_ref) {
		// The same inputs through the CPU backend on the first check_rows samples (rows are
		// independent in the forward; the backward's gradients are sums over those rows).
		const size_t nc = std::min(n, m_opt.check_rows);
		auto ref_key = std::make_pair(n_samples, nc);
		auto cached = m_mlp_reference.find(ref_key);
		if (cached == m_mlp_reference.end()) {
			Buffer<float> r_params = make_buffer(*m_ref, params_host);
			Buffer<float> r_pts = m_ref->allocate<float>(nc * spec.in_pts),
			              r_views = m_ref->allocate<float>(nc * spec.in_views),
			              r_dL = m_ref->allocate<float>(nc * 4), r_raw = m_ref->allocate<float>(nc * 4),
			              r_grads = m_ref->allocate<float>(layout.n_floats);
			m_ref->upload(r_pts.data(), pts_host.data(), r_pts.bytes());
			m_ref->upload(r_views.data(), views_host.data(), r_views.bytes());
			m_ref->upload(r_dL.data(), dL_draw_host.data(), r_dL.bytes());
			m_ref->fill_zero(r_grads.data(), r_grads.bytes());
			auto r_mlp = m_ref->create_mlp(layout, nc, Precision::FP32);
			r_mlp->forward(r_raw.data(), r_params.data(), r_pts.data(), r_views.data(), nc, true);
			r_mlp->backward(r_grads.data(), r_params.data(), r_dL.data(), nc);
			cached = m_mlp_reference.emplace(ref_key, std::make_pair(download(*m_ref, r_raw), download(*m_ref, r_grads)))
			             .first;
		}
		const auto& [ref_raw, ref_grads] = cached->second;
		mlp->forward(raw.data(), params.data(), pts.data(), views.data(), nc, true);
		mlp->backward(grads.data(), params.data(), dL_draw.data(), nc);
		std::vector<float> got_raw(nc * 4), got_grads = download(m_dev, grads);
		m_dev.download(got_raw.data(), raw.data(), got_raw.size() * sizeof(float));
		const double tf = mlp_forward_tolerance(precision), tb = mlp_backward_tolerance(precision);
		check_fwd.arrays("raw", got_raw, ref_raw, Tolerance{tf * max_abs(ref_raw.data(), ref_raw.size()), 0.0});
		for (const LinearLayer& L : layout.layers) {
			if (!mlp_layer_used(spec, L)) continue;
			for (auto [offset, count, part] : {std::make_tuple(L.weight_offset, (size_t)L.in * L.out, "weight"),
			                                    std::make_tuple(L.bias_offset, (size_t)L.out, "bias")}) {
				std::vector<float> g(got_grads.begin() + offset, got_grads.begin() + offset + count),
				    e(ref_grads.begin() + offset, ref_grads.begin() + offset + count);
				check_bwd.arrays("dL/d " + L.name + "." + part, g, e, Tolerance{tb * max_abs(e.data(), e.size()), 0.0});
			}
		}
	} else {
		// Forward vs the double MLP on a few rows; backward: per layer, the directional derivative
		// of L = sum dL_draw . raw along a random direction of that layer's parameters, against a
		// double central difference (h = 1e-7 keeps every ReLU on its side).
		const size_t rows = std::min<size_t>(n, 8);
		std::vector<double> params_d(params_host.begin(), params_host.end());
		std::vector<float> ref_raw(rows * 4);
		auto loss_at = [&](const std::vector<double>& p, std::vector<float>* raw_out) {
			double loss = 0;
			for (size_t r = 0; r < rows; ++r) {
				double out[5];
				mlp_forward_ref(out, p.data(), layout, pts_host.data() + r * spec.in_pts,
				                views_host.data() + r * spec.in_views);
				for (int c = 0; c < 4; ++c) {
					loss += dL_draw_host[4 * r + c] * out[c];
					if (raw_out) (*raw_out)[4 * r + c] = (float)out[c];
				}
			}
			return loss;
		};
		loss_at(params_d, &ref_raw);
		mlp->forward(raw.data(), params.data(), pts.data(), views.data(), rows, true);
		mlp->backward(grads.data(), params.data(), dL_draw.data(), rows);
		std::vector<float> got_raw(rows * 4);
		m_dev.download(got_raw.data(), raw.data(), got_raw.size() * sizeof(float));
		const std::vector<float> got_grads = download(m_dev, grads);
		// float vs double over K <= 319-long dot products and 9-10 layers: ~1e-6 of the scale.
		check_fwd.arrays("raw vs double MLP", got_raw, ref_raw,
		                 Tolerance{1e-5 * max_abs(ref_raw.data(), ref_raw.size()), 1e-5});
		std::mt19937_64 rng(seed + 4);
		std::normal_distribution<double> normal(0.0, 1.0);
		const double h = 1e-7;
		for (const LinearLayer& L : layout.layers) {
			if (!mlp_layer_used(spec, L)) continue;
			std::vector<double> v(L.n_params());
			for (double& x : v) x = normal(rng);
			std::vector<double> plus = params_d, minus = params_d;
			double analytic = 0, scale = 0;
			for (size_t k = 0; k < v.size(); ++k) {
				plus[L.weight_offset + k] += h * v[k];
				minus[L.weight_offset + k] -= h * v[k];
				analytic += got_grads[L.weight_offset + k] * v[k];
				scale += std::fabs(got_grads[L.weight_offset + k] * v[k]);
			}
			const double fd = (loss_at(plus, nullptr) - loss_at(minus, nullptr)) / (2.0 * h);
			// float gradients summed over `rows` samples: 1e-4 of the sum of magnitudes.
			check_bwd.bound("directional derivative of " + L.name + " vs double central difference",
			                std::fabs(analytic - fd), 1e-4 * scale + 1e-9);
		}
	}

	// Timed: the training pattern, a forward that keeps activations and then the backward,
	// each between its own pair of timer marks.
	// All repeats are enqueued before any time is read (see time_repeats).
	for (int i = 0; i < m_opt.warmup; ++i) {
		mlp->forward(raw.data(), params.data(), pts.data(), views.data(), n, true);
		mlp->backward(grads.data(), params.data(), dL_draw.data(), n);
	}
	const auto flush = flush_function();
	std::vector<std::unique_ptr<Backend::Timer>> t_fwd, t_bwd;
	for (int i = 0; i < m_opt.repeats; ++i) {
		t_fwd.push_back(m_dev.create_timer());
		t_bwd.push_back(m_dev.create_timer());
	}
	for (int i = 0; i < m_opt.repeats; ++i) {
		if (flush) flush();
		t_fwd[i]->start();
		mlp->forward(raw.data(), params.data(), pts.data(), views.data(), n, true);
		t_fwd[i]->stop();
		t_bwd[i]->start();
		mlp->backward(grads.data(), params.data(), dL_draw.data(), n);
		t_bwd[i]->stop();
	}
	std::vector<double> ms_fwd, ms_bwd;
	for (int i = 0; i < m_opt.repeats; ++i) {
		ms_fwd.push_back(t_fwd[i]->elapsed_ms());
		ms_bwd.push_back(t_bwd[i]->elapsed_ms());
	}
	const std::string net = n_samples == m_sizes.n_coarse ? "coarse" : "fine";
	// bytes (compulsory) = inputs n (in_pts + in_views) 4 + raw n 16 + parameters 4 P; the
	// activations kept for backward are not counted (the MLP is compute-bound).
	// FLOPs: mlp_forward_flops / mlp_backward_flops in common.h (2 n sum in*out; backward dW for
	// every layer plus dX for the hidden inputs).
	const double P = (double)layout.n_params;
	add_row("mlp_forward_" + net, size_label(n_rays, n_samples), precision, ms_fwd,
	        (double)n * 4.0 * (spec.in_pts + spec.in_views + 4) + 4.0 * P, mlp_forward_flops(layout, (double)n),
	        check_fwd.summary());
	// backward bytes = dL_draw n 16 + parameters 4 P read + gradients 8 P read-modify-write.
	add_row("mlp_backward_" + net, size_label(n_rays, n_samples), precision, ms_bwd, (double)n * 16.0 + 12.0 * P,
	        mlp_backward_flops(layout, (double)n), check_bwd.summary());
}

} // namespace nerf::bench
