// The cuBLASLt MLP against the CPU (Eigen, fp32) MLP: forward raw outputs and parameter gradients
// for every precision, fused against unfused epilogues, chunked inference, and the fp16 loss-scale
// guard, planning (once, for max_batch, whatever batch sizes follow). The network under test is a
// *fine* network laid out after a coarse one in the flat buffer, as NerfModel does (make_mlp_layout_after:
// 16-float aligned but not 256-byte aligned), and the coarse part of the gradient must stay untouched.
//
// Two kinds of network:
// * An exact one (make_exact_network): one +-1 per hidden-layer weight row (the heads sum disjoint
//   column sets), half-integer / integer biases and integer inputs keep every activation a small
//   multiple of 1/2 (|h| <= 10.5), and dL/draw a small multiple of
//   2^-16, so every GEMM, epilogue and reduction is exact in fp32, tf32, fp16 (after the 2^16 loss
//   scale) and bf16 alike, and no pre-activation is ever 0. CPU and GPU must agree bit for bit, in
//   every precision, fused or not: any layout, sub-block, epilogue or accumulation error shows.
// * A randomly initialised one (nn.Linear init), for realistic numerics. Tolerances are normwise
//   (error relative to the largest reference magnitude of the array, see gpu_test_util.h) and come
//   from a numpy emulation of each precision's roundings on this network (N = 2048, 9 seeds; largest
//   value seen in parentheses), with ~2.5x margin. Gradients are the loose ones because ReLU is
//   piecewise: a pre-activation within rounding of 0 takes the other branch on the other side and
//   moves a whole sample's gradient; one such flip in fp32 already costs ~6e-3.
//     fp32  raw 1e-5 (3.7e-7)   gradients 2e-2 (6.1e-3)
//     tf32  raw 2e-3 (5.1e-4)   gradients 0.25 (9.3e-2)
//     fp16  raw 2e-3 (5.1e-4)   gradients 0.25 (9.7e-2)
//     bf16  raw 1.5e-2 (4.2e-3) gradients 0.4  (1.5e-1)
#include "gpu_test_util.h"

#include "nerf/cuda_backend.h"

using namespace nerf_gpu_test;

#if defined(NERF_WITH_CUDA) && NERF_WITH_CUDA

namespace {

struct Tolerances {
	double raw, grads;
};
Tolerances vs_cpu(Precision p) {
	switch (p) {
	case Precision::FP32: return {1e-5, 2e-2};
	case Precision::TF32: return {2e-3, 0.25};
	case Precision::FP16: return {2e-3, 0.25};
	case Precision::BF16: return {1.5e-2, 0.4};
	}
	return {0, 0};
}

struct Network {
	MlpLayout coarse, fine;
	size_t total = 0;
	std::vector<float> params;
};

Network make_network(bool viewdirs, uint64_t seed) {
	MlpSpec spec;
	spec.use_viewdirs = viewdirs;
	spec.output_ch = viewdirs ? 4 : 5;  // nerf-pytorch: 5 outputs when N_importance > 0 without viewdirs
	Network net;
	net.coarse = make_mlp_layout(spec, 0);
	net.fine = make_mlp_layout_after(spec, net.coarse);
	net.total = net.fine.end();
	net.params.assign(net.total, 0.0f);
	init_mlp_params_host(net.params.data(), net.coarse, seed);
	init_mlp_params_host(net.params.data(), net.fine, seed + 1);
	return net;
}

/// The exact network (see the top of the file). Hidden layers: each row reads one input column, and
/// rows pick distinct columns where the layer is at least as wide in as out, so a gradient flowing
/// back adds at most two terms. Biases keep pre-activations off 0: in units of 1/2, integer inputs
/// are even and take an odd bias (+-1/2); ReLU outputs are odd or 0 and take an even non-zero bias
/// (+-1). Weights on ReLU outputs are mostly +1, so that many units stay alive through all layers.
/// feature_linear has no bias, so its output keeps the odd-or-0 form that views_linears.0 relies on.
/// The linear heads (alpha, rgb, output) read many columns each (disjoint sets covering the layer's
/// input), so that every unit below receives a gradient.
Network make_exact_network(bool viewdirs, uint64_t seed) {
	MlpSpec spec;
	spec.use_viewdirs = viewdirs;
	spec.output_ch = viewdirs ? 4 : 5;
	Network net;
	net.coarse = make_mlp_layout(spec, 0);
	net.fine = make_mlp_layout_after(spec, net.coarse);
	net.total = net.fine.end();
	net.params.assign(net.total, 0.0f);
	std::mt19937 rng((uint32_t)seed);
	const auto sign = [&](double p_plus) { return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < p_plus ? 1.0f : -1.0f; };
	const int P = spec.in_pts, W = spec.width;
	for (const LinearLayer& l : net.fine.layers) {
		if (!viewdirs && l.name == "views_linears.0") continue;  // unused: leave it zero
		std::vector<int> columns(l.in);
		for (int c = 0; c < l.in; ++c) columns[c] = c;
		std::shuffle(columns.begin(), columns.end(), rng);
		float* weight = net.params.data() + l.weight_offset;
		float* bias = net.params.data() + l.bias_offset;
		const bool head = l.name == "alpha_linear" || l.name == "rgb_linear" || l.name == "output_linear";
		if (head) {
			for (int c = 0; c < l.in; ++c) weight[(size_t)(columns[c] % l.out) * l.in + c] = sign(0.5);
			for (int row = 0; row < l.out; ++row) bias[row] = sign(0.5);
			continue;
		}
		const bool is_pts = l.name.rfind("pts_linears.", 0) == 0;
		const int index = is_pts ? std::stoi(l.name.substr(12)) : -1;
		for (int row = 0; row < l.out; ++row) {
			const int col = columns[row % l.in];  // distinct while out <= in
			if (l.name == "feature_linear") {
				weight[(size_t)row * l.in + col] = sign(0.5);
				bias[row] = 0.0f;
				continue;
			}
			// Does this row read integer data (gamma(x) or gamma(d)) rather than a ReLU / feature output?
			const bool reads_data = index == 0 || (index > 0 && layer_takes_skip(spec, index) && col < P) ||
			                        (l.name == "views_linears.0" && col >= W);
			weight[(size_t)row * l.in + col] = sign(reads_data ? 0.5 : 0.8);
			bias[row] = reads_data ? 0.5f * sign(0.5) : sign(0.5);
		}
	}
	return net;
}

std::vector<float> random_integers(size_t n, int lo, int hi, float unit, uint32_t seed) {
	std::mt19937 rng(seed);
	std::uniform_int_distribution<int> dist(lo, hi);
	std::vector<float> v(n);
	for (float& x : v) x = (float)dist(rng) * unit;
	return v;
}

struct MlpRun {
	std::vector<float> raw, grads;
};

/// forward (keep_for_backward) + backward on `be`, gradients accumulated onto grads0.
MlpRun run_mlp(Backend& be, Mlp& mlp, const Network& net, const std::vector<float>& pts, const std::vector<float>& views,
               const std::vector<float>& dL_draw, const std::vector<float>& grads0, size_t n) {
	const int R = net.fine.spec.raw_width();
	Buffer<float> d_params = to_backend(be, net.params), d_pts = to_backend(be, pts), d_grads = to_backend(be, grads0),
	              d_dL = to_backend(be, dL_draw);
	Buffer<float> d_views = views.empty() ? Buffer<float>() : to_backend(be, views);
	Buffer<float> d_raw = be.allocate<float>(n * R);
	mlp.forward(d_raw.data(), d_params.data(), d_pts.data(), views.empty() ? nullptr : d_views.data(), n, true);
	mlp.backward(d_grads.data(), d_params.data(), d_dL.data(), n);
	return {to_host(be, d_raw), to_host(be, d_grads)};
}

/// Per layer (weight and bias separately), the gradient added by backward, compared normwise; the
/// coarse network's part of the buffer must be bit-for-bit what it was.
void check_grads(const std::string& what, const Network& net, const std::vector<float>& grads0,
                 const std::vector<float>& ref, const std::vector<float>& got, double tol) {
	for (size_t i = 0; i < net.coarse.end(); ++i)
		if (got[i] != grads0[i]) {
			FAIL_CHECK(what << ": gradient of the other network changed at " << i);
			break;
		}
	for (const LinearLayer& l : net.fine.layers) {
		for (int part = 0; part < 2; ++part) {
			const size_t begin = part == 0 ? l.weight_offset : l.bias_offset;
			const size_t count = part == 0 ? (size_t)l.in * l.out : (size_t)l.out;
			std::vector<float> ref_delta(count), got_delta(count);
			for (size_t k = 0; k < count; ++k) {
				ref_delta[k] = ref[begin + k] - grads0[begin + k];
				got_delta[k] = got[begin + k] - grads0[begin + k];
			}
			const std::string name = what + " d" + l.name + (part == 0 ? ".weight" : ".bias");
			if (max_abs(ref_delta) == 0.0) {
				// Unused layer (views_linears.0 without viewdirs): no gradient at all, exactly.
				check_close(name + " (unused)", ref_delta, got_delta, {0.0, 0.0});
				continue;
			}
			check_close(name, ref_delta, got_delta, normwise(ref_delta, tol));
		}
	}
}

const Precision kAllPrecisions[] = {Precision::FP32, Precision::TF32, Precision::FP16, Precision::BF16};

} // namespace

TEST_CASE("gpu mlp: an exactly representable network gives the CPU's bits in every precision", "[gpu][mlp]") {
	Backends b = make_backends();
	const size_t n = 128;  // bias-gradient sums stay <= 256 units, exact even in bf16
	for (bool viewdirs : {true, false}) {
		const Network net = make_exact_network(viewdirs, 17);
		const MlpSpec& s = net.fine.spec;
		const std::vector<float> pts = random_integers(n * s.in_pts, -2, 2, 1.0f, 141);
		const std::vector<float> views = viewdirs ? random_integers(n * s.in_views, -2, 2, 1.0f, 142) : std::vector<float>();
		const std::vector<float> dL_draw = random_integers(n * s.raw_width(), -1, 1, 1.0f / 65536.0f, 143);
		const std::vector<float> grads0(net.total, 0.0f);
		std::unique_ptr<Mlp> cpu_mlp = b.cpu->create_mlp(net.fine, n, Precision::FP32);
		const MlpRun ref = run_mlp(*b.cpu, *cpu_mlp, net, pts, views, dL_draw, grads0, n);
		// The gradient must reach the first layer through all eight ReLUs, or the deep half of the
		// comparison would be vacuous.
		const LinearLayer& first = net.fine.layers[0];
		const std::vector<float> dW0(ref.grads.begin() + first.weight_offset,
		                             ref.grads.begin() + first.weight_offset + (size_t)first.in * first.out);
		REQUIRE(max_abs(dW0) > 0.0);
		for (Precision p : kAllPrecisions) {
			for (MlpEpilogue e : {MlpEpilogue::Fused, MlpEpilogue::Unfused}) {
				const std::string what = std::string("exact ") + (viewdirs ? "viewdirs " : "no-viewdirs ") + precision_name(p) +
				                         (e == MlpEpilogue::Fused ? " fused" : " unfused");
				std::printf("mlp %s vs cpu\n", what.c_str());
				std::unique_ptr<Mlp> gpu_mlp = create_cuda_mlp(*b.gpu, net.fine, n, p, e);
				const MlpRun got = run_mlp(*b.gpu, *gpu_mlp, net, pts, views, dL_draw, grads0, n);
				check_close(what + " raw", ref.raw, got.raw, {0.0, 0.0});
				check_close(what + " grads", ref.grads, got.grads, {0.0, 0.0});
			}
		}
	}
}

/// dL/draw for the exact network at a production batch: zero but for 128 rows spread over the batch
/// (the first, the last, the tail past 65536 and random ones), each a small multiple of 2^-16. Every
/// bias-gradient sum then has at most 128 terms of at most a few units: exact even in bf16 (and as
/// the fp16 bias gradient DRELU_BGRAD writes), while every row still runs through the forward.
std::vector<float> sparse_exact_dL(size_t n, int raw_width, uint32_t seed) {
	std::vector<float> dL(n * raw_width, 0.0f);
	std::mt19937 rng(seed);
	std::uniform_int_distribution<size_t> row(0, n - 1);
	std::uniform_int_distribution<int> unit(-1, 1);
	std::vector<size_t> rows = {0, 1, n - 1, n - 2};
	if (n > 65536) rows.push_back(65536);
	while (rows.size() < 128) rows.push_back(row(rng));
	for (size_t r : rows)
		for (int c = 0; c < raw_width; ++c) dL[r * raw_width + c] = (float)unit(rng) / 65536.0f;
	return dL;
}

TEST_CASE("gpu mlp: the exact network at production shapes gives the CPU's bits, fused and unfused", "[gpu][mlp][big]") {
	// nerf-pytorch's network (D = 8 with the skip, W = 256) at the batch sizes training uses (a
	// fine pass is 1024 rays x 64 samples = 65536, plus a ragged tail) and ~1e5: layouts, the skip and
	// views concat buffers, the stacked heads, tile edges and the aux bit-mask at full size.
	Backends b = make_backends();
	for (size_t n : {(size_t)65536 + 13, (size_t)100003}) {
		for (bool viewdirs : {true, false}) {
			const Network net = make_exact_network(viewdirs, 19);
			const MlpSpec& s = net.fine.spec;
			REQUIRE(s.depth == 8);
			REQUIRE(s.width == 256);
			const std::vector<float> pts = random_integers(n * s.in_pts, -2, 2, 1.0f, 241);
			const std::vector<float> views = viewdirs ? random_integers(n * s.in_views, -2, 2, 1.0f, 242) : std::vector<float>();
			const std::vector<float> dL_draw = sparse_exact_dL(n, s.raw_width(), 243);
			const std::vector<float> grads0(net.total, 0.0f);
			std::unique_ptr<Mlp> cpu_mlp = b.cpu->create_mlp(net.fine, n, Precision::FP32);
			const MlpRun ref = run_mlp(*b.cpu, *cpu_mlp, net, pts, views, dL_draw, grads0, n);
			const LinearLayer& first = net.fine.layers[0];
			const std::vector<float> dW0(ref.grads.begin() + first.weight_offset,
			                             ref.grads.begin() + first.weight_offset + (size_t)first.in * first.out);
			REQUIRE(max_abs(dW0) > 0.0);  // the gradient reached the first layer through all eight ReLUs
			for (Precision p : kAllPrecisions) {
				MlpRun runs[2];
				for (MlpEpilogue e : {MlpEpilogue::Fused, MlpEpilogue::Unfused}) {
					const std::string what = "exact n=" + std::to_string(n) + (viewdirs ? " viewdirs " : " no-viewdirs ") +
					                         precision_name(p) + (e == MlpEpilogue::Fused ? " fused" : " unfused");
					std::printf("mlp %s vs cpu\n", what.c_str());
					std::unique_ptr<Mlp> gpu_mlp = create_cuda_mlp(*b.gpu, net.fine, n, p, e);
					MlpRun& got = runs[e == MlpEpilogue::Fused ? 0 : 1];
					got = run_mlp(*b.gpu, *gpu_mlp, net, pts, views, dL_draw, grads0, n);
					check_close(what + " raw", ref.raw, got.raw, {0.0, 0.0});
					check_close(what + " grads", ref.grads, got.grads, {0.0, 0.0});
				}
				const std::string what = "exact n=" + std::to_string(n) + (viewdirs ? " viewdirs " : " no-viewdirs ") +
				                         precision_name(p) + " fused vs unfused";
				check_close(what + " raw", runs[1].raw, runs[0].raw, {0.0, 0.0});
				check_close(what + " grads", runs[1].grads, runs[0].grads, {0.0, 0.0});
			}
		}
	}
}

TEST_CASE("gpu mlp: every epilogue is planned, fused or with the reason it is not (the plan is printed)", "[gpu][mlp]") {
	// What cuBLASLt fuses on this device for each precision. Every operand is aligned (the layout's
	// 16-float layers, layer 0 packed to K = 64), so a fused plan is expected everywhere, but nothing in
	// cuBLASLt's documentation promises one: a miss is recorded as a warning with cuBLASLt's reason
	// (tools/gpu_check.sh lists the FUSED-PLAN MISS lines in summary.md), to be written up in
	// bench/RESULTS.md. The fallback runs the same arithmetic as kernels: correct, only slower.
	std::unique_ptr<Backend> gpu = create_cuda_backend(0);
	const size_t n = 65536;
	const char* epilogues[] = {"RELU_AUX_BIAS", "BIAS", "DRELU_BGRAD"};
	for (bool viewdirs : {true, false}) {
		const Network net = make_network(viewdirs, 23);
		for (Precision p : kAllPrecisions) {
			std::unique_ptr<Mlp> mlp = create_cuda_mlp(*gpu, net.fine, n, p, MlpEpilogue::Fused);
			std::printf("plan (%s, %s):\n%s", precision_name(p), viewdirs ? "viewdirs" : "no viewdirs",
			            describe_cuda_mlp(*mlp).c_str());
			const std::map<std::string, MlpEpilogueUse> uses = cuda_mlp_fusion(*mlp);
			for (const char* e : epilogues) {
				INFO(precision_name(p) << (viewdirs ? " viewdirs " : " no-viewdirs ") << e);
				const auto it = uses.find(e);
				REQUIRE(it != uses.end());  // the MLP asks for every epilogue
				const MlpEpilogueUse& use = it->second;
				CHECK(use.fused + use.kernels > 0);
				// Every epilogue that runs as kernels says why cuBLASLt refused to fuse it.
				REQUIRE(use.fallbacks.size() == (size_t)use.kernels);
				for (const std::string& why : use.fallbacks) {
					CHECK(why.find(": ") != std::string::npos);
					CHECK(why.size() > why.find(": ") + 2);
					std::printf("FUSED-PLAN MISS %s %s %s: %s\n", precision_name(p), viewdirs ? "viewdirs" : "no-viewdirs", e,
					            why.c_str());
					WARN("fused plan missed (" << precision_name(p) << (viewdirs ? ", viewdirs, " : ", no viewdirs, ") << e
					                          << "): " << why);
				}
			}
		}
	}
}

TEST_CASE("gpu mlp: forward and parameter gradients match the CPU for each precision", "[gpu][mlp]") {
	Backends b = make_backends();
	const size_t n = 2048;
	for (bool viewdirs : {true, false}) {
		const Network net = make_network(viewdirs, 5);
		const MlpSpec& s = net.fine.spec;
		const std::vector<float> pts = uniform(n * s.in_pts, -1.0f, 1.0f, 101);
		const std::vector<float> views = viewdirs ? uniform(n * s.in_views, -1.0f, 1.0f, 102) : std::vector<float>();
		const std::vector<float> dL_draw = uniform(n * s.raw_width(), -1e-2f, 1e-2f, 103);
		const std::vector<float> grads0 = uniform(net.total, -1e-3f, 1e-3f, 104);  // backward must add to these
		std::unique_ptr<Mlp> cpu_mlp = b.cpu->create_mlp(net.fine, n, Precision::FP32);
		const MlpRun ref = run_mlp(*b.cpu, *cpu_mlp, net, pts, views, dL_draw, grads0, n);
		for (Precision p : kAllPrecisions) {
			const std::string what = std::string(viewdirs ? "viewdirs " : "no-viewdirs ") + precision_name(p);
			std::printf("mlp %s vs cpu\n", what.c_str());
			std::unique_ptr<Mlp> gpu_mlp = b.gpu->create_mlp(net.fine, n, p);
			const MlpRun got = run_mlp(*b.gpu, *gpu_mlp, net, pts, views, dL_draw, grads0, n);
			std::printf("%s", describe_cuda_mlp(*gpu_mlp).c_str());
			const Tolerances tol = vs_cpu(p);
			check_close(what + " raw", ref.raw, got.raw, normwise(ref.raw, tol.raw));
			check_grads(what, net, grads0, ref.grads, got.grads, tol.grads);
		}
	}
}

TEST_CASE("gpu mlp: fused epilogues give the unfused results", "[gpu][mlp]") {
	std::unique_ptr<Backend> gpu = create_cuda_backend(0);
	const size_t n = 3000;  // not a multiple of 128: the aux bit-mask and tile edges
	for (bool viewdirs : {true, false}) {
		const Network net = make_network(viewdirs, 7);
		const MlpSpec& s = net.fine.spec;
		const std::vector<float> pts = uniform(n * s.in_pts, -1.0f, 1.0f, 111);
		const std::vector<float> views = viewdirs ? uniform(n * s.in_views, -1.0f, 1.0f, 112) : std::vector<float>();
		const std::vector<float> dL_draw = uniform(n * s.raw_width(), -1e-2f, 1e-2f, 113);
		const std::vector<float> grads0(net.total, 0.0f);
		for (Precision p : kAllPrecisions) {
			const std::string what = std::string(viewdirs ? "viewdirs " : "no-viewdirs ") + precision_name(p);
			std::printf("mlp %s fused vs unfused\n", what.c_str());
			std::unique_ptr<Mlp> fused = create_cuda_mlp(*gpu, net.fine, n, p, MlpEpilogue::Fused);
			std::unique_ptr<Mlp> unfused = create_cuda_mlp(*gpu, net.fine, n, p, MlpEpilogue::Unfused);
			const MlpRun a = run_mlp(*gpu, *fused, net, pts, views, dL_draw, grads0, n);
			const MlpRun u = run_mlp(*gpu, *unfused, net, pts, views, dL_draw, grads0, n);
			const std::string plan = describe_cuda_mlp(*fused);
			std::printf("%s", plan.c_str());
			// The comparison is only meaningful where something was fused. Nothing in cuBLASLt's
			// documentation promises a fused plan (see the fused-plan test), so a plan without any is a
			// warning to look at, not a failure of correct code.
			if (plan.find("(fused)") == std::string::npos)
				WARN(what << ": cuBLASLt fused no epilogue, so this comparison compares kernels with kernels");
			CHECK(describe_cuda_mlp(*unfused).find("(fused)") == std::string::npos);
			// The unfused path rounds each pre-activation to the storage type before adding the bias, a
			// perturbation of the same kind as the precision's own: the vs-CPU tolerances apply.
			const Tolerances tol = vs_cpu(p);
			check_close(what + " raw", u.raw, a.raw, normwise(u.raw, tol.raw));
			check_grads(what + " fused", net, grads0, u.grads, a.grads, tol.grads);
		}
	}
}

TEST_CASE("gpu mlp: inference in chunks of max_batch matches the CPU", "[gpu][mlp]") {
	Backends b = make_backends();
	const size_t max_batch = 1000, n = 2500;  // two full chunks and a tail
	const Network net = make_network(true, 9);
	const MlpSpec& s = net.fine.spec;
	const std::vector<float> pts = uniform(n * s.in_pts, -1.0f, 1.0f, 121);
	const std::vector<float> views = uniform(n * s.in_views, -1.0f, 1.0f, 122);
	std::vector<float> raw[2];
	for (int which = 0; which < 2; ++which) {
		Backend& be = which == 0 ? *b.cpu : *b.gpu;
		std::unique_ptr<Mlp> mlp = be.create_mlp(net.fine, max_batch, Precision::FP32);
		Buffer<float> d_params = to_backend(be, net.params), d_pts = to_backend(be, pts), d_views = to_backend(be, views);
		Buffer<float> d_raw = be.allocate<float>(n * s.raw_width());
		mlp->forward(d_raw.data(), d_params.data(), d_pts.data(), d_views.data(), n, false);
		raw[which] = to_host(be, d_raw);
		// Nothing was kept for backward, and a training batch may not exceed max_batch.
		Buffer<float> d_grads = be.allocate<float>(net.total);
		CHECK_THROWS_AS(mlp->backward(d_grads.data(), d_params.data(), d_raw.data(), n), nerf::Error);
		CHECK_THROWS_AS(mlp->forward(d_raw.data(), d_params.data(), d_pts.data(), d_views.data(), n, true), nerf::Error);
	}
	check_close("chunked raw", raw[0], raw[1], normwise(raw[0], vs_cpu(Precision::FP32).raw));
}

TEST_CASE("gpu mlp: planned once for max_batch, every smaller batch matches the CPU without a new plan", "[gpu][mlp]") {
	// A marched training step sees a new sample count every step, and rendering a tail chunk: the
	// plan's layouts are re-sized to each, and the heuristic is asked again only where cuBLASLt refuses
	// every known algorithm at a size (counted as a refusal; one query each).
	Backends b = make_backends();
	const size_t max_batch = 4096;
	for (bool viewdirs : {true, false}) {
		const Network net = make_network(viewdirs, 27);
		const MlpSpec& s = net.fine.spec;
		for (Precision p : {Precision::FP32, Precision::FP16}) {
			std::unique_ptr<Mlp> gpu_mlp = create_cuda_mlp(*b.gpu, net.fine, max_batch, p, MlpEpilogue::Fused);
			const MlpPlanStats planned = cuda_mlp_plan_stats(*gpu_mlp);
			CHECK(planned.planned_batch == max_batch);
			CHECK(planned.heuristic_queries >= (int)planned.gemms);  // one per GEMM at least (two where a fused plan fell back)
			CHECK(planned.refusals == 0);
			int calls = 0;
			for (size_t n : {(size_t)1, (size_t)37, (size_t)1000, max_batch - 1, max_batch, (size_t)513}) {
				const std::string what = std::string(viewdirs ? "viewdirs " : "no-viewdirs ") + precision_name(p) + " n=" +
				                         std::to_string(n);
				const uint32_t seed = 300 + (uint32_t)n;
				const std::vector<float> pts = uniform(n * s.in_pts, -1.0f, 1.0f, seed);
				const std::vector<float> views = viewdirs ? uniform(n * s.in_views, -1.0f, 1.0f, seed + 1) : std::vector<float>();
				const std::vector<float> dL_draw = uniform(n * s.raw_width(), -1e-2f, 1e-2f, seed + 2);
				const std::vector<float> grads0(net.total, 0.0f);
				std::unique_ptr<Mlp> cpu_mlp = b.cpu->create_mlp(net.fine, n, Precision::FP32);
				const MlpRun ref = run_mlp(*b.cpu, *cpu_mlp, net, pts, views, dL_draw, grads0, n);
				const MlpRun got = run_mlp(*b.gpu, *gpu_mlp, net, pts, views, dL_draw, grads0, n);
				++calls;
				const Tolerances tol = vs_cpu(p);
				check_close(what + " raw", ref.raw, got.raw, normwise(ref.raw, tol.raw));
				check_grads(what, net, grads0, ref.grads, got.grads, tol.grads);
			}
			const MlpPlanStats after = cuda_mlp_plan_stats(*gpu_mlp);
			std::printf("plan stats (%s, %s): %zu GEMMs, %d heuristic queries at construction, %d after %d calls at other "
			            "batch sizes, %d batch changes, %d refusals, %d re-plans\n",
			            precision_name(p), viewdirs ? "viewdirs" : "no viewdirs", after.gemms, planned.heuristic_queries,
			            after.heuristic_queries, calls, after.batch_changes, after.refusals, after.replans);
			CHECK(after.gemms == planned.gemms);
			CHECK(after.batch_changes >= (int)planned.gemms);  // every GEMM ran at a batch other than max_batch
			// Fresh allocations have the alignment the plan assumed: nothing is planned again unless a
			// forward epilogue fell back (its dReLU then differs), which the fused-plan test records.
			bool any_fallback = false;
			for (const auto& use : cuda_mlp_fusion(*gpu_mlp)) any_fallback = any_fallback || use.second.kernels > 0;
			if (!any_fallback) CHECK(after.replans == 0);
			// New heuristic queries only where cuBLASLt refused (at most two each), never one per batch size.
			CHECK(after.heuristic_queries - planned.heuristic_queries <= 2 * after.refusals + 2 * after.replans);
			if (after.refusals > 0)
				WARN(after.refusals << " launches at a re-sized batch were refused by every known algorithm (" << precision_name(p)
				                    << "): the heuristic was asked again for those");
		}
	}
}

/// A small network with viewdirs and a skip (depth 3, width 32), laid out after a coarse one.
Network make_small_network(uint64_t seed) {
	MlpSpec spec;
	spec.depth = 3;
	spec.width = 32;
	spec.in_pts = 15;
	spec.in_views = 9;
	spec.use_viewdirs = true;
	spec.skips = {1};
	Network net;
	net.coarse = make_mlp_layout(spec, 0);
	net.fine = make_mlp_layout_after(spec, net.coarse);
	net.total = net.fine.end();
	net.params.assign(net.total, 0.0f);
	init_mlp_params_host(net.params.data(), net.coarse, seed);
	init_mlp_params_host(net.params.data(), net.fine, seed + 1);
	return net;
}

TEST_CASE("gpu mlp: a small unfused network matches the CPU (bias, ReLU and bias-gradient kernels)", "[gpu][mlp][small]") {
	// The MLP's own shared-memory kernel is the bias-gradient reduction (bias_grad_partial_kernel):
	// n = 1000 spreads it over 4 row chunks. Small on purpose: this is the one MLP test that
	// compute-sanitizer's racecheck runs (tools/gpu_check.sh), next to the stage kernels.
	Backends b = make_backends();
	const size_t n = 1000;
	const Network net = make_small_network(31);
	const MlpSpec& s = net.fine.spec;
	const std::vector<float> pts = uniform(n * s.in_pts, -1.0f, 1.0f, 161);
	const std::vector<float> views = uniform(n * s.in_views, -1.0f, 1.0f, 162);
	const std::vector<float> dL_draw = uniform(n * s.raw_width(), -1e-2f, 1e-2f, 163);
	const std::vector<float> grads0 = uniform(net.total, -1e-3f, 1e-3f, 164);
	std::unique_ptr<Mlp> cpu_mlp = b.cpu->create_mlp(net.fine, n, Precision::FP32);
	const MlpRun ref = run_mlp(*b.cpu, *cpu_mlp, net, pts, views, dL_draw, grads0, n);
	std::unique_ptr<Mlp> gpu_mlp = create_cuda_mlp(*b.gpu, net.fine, n, Precision::FP32, MlpEpilogue::Unfused);
	const MlpRun got = run_mlp(*b.gpu, *gpu_mlp, net, pts, views, dL_draw, grads0, n);
	std::printf("%s", describe_cuda_mlp(*gpu_mlp).c_str());
	CHECK(describe_cuda_mlp(*gpu_mlp).find("(fused)") == std::string::npos);
	// fp32 both sides, K <= 41: the summation order is the only difference (vs_cpu's fp32 bounds).
	check_close("small unfused raw", ref.raw, got.raw, normwise(ref.raw, vs_cpu(Precision::FP32).raw));
	check_grads("small unfused", net, grads0, ref.grads, got.grads, vs_cpu(Precision::FP32).grads);
}

TEST_CASE("gpu mlp: fp16 loss scaling skips a non-finite backward and halves the scale", "[gpu][mlp]") {
	std::unique_ptr<Backend> gpu = create_cuda_backend(0);
	const size_t n = 512;
	const Network net = make_network(true, 11);
	const MlpSpec& s = net.fine.spec;
	std::unique_ptr<Mlp> mlp = gpu->create_mlp(net.fine, n, Precision::FP16);
	const LossScaleInfo initial = cuda_mlp_loss_scale(*mlp);
	CHECK(initial.scale == 65536.0f);
	CHECK(initial.skipped_steps == 0);

	Buffer<float> d_params = to_backend(*gpu, net.params);
	Buffer<float> d_pts = to_backend(*gpu, uniform(n * s.in_pts, -1.0f, 1.0f, 131));
	Buffer<float> d_views = to_backend(*gpu, uniform(n * s.in_views, -1.0f, 1.0f, 132));
	Buffer<float> d_raw = gpu->allocate<float>(n * s.raw_width());
	Buffer<float> d_grads = gpu->allocate<float>(net.total);
	gpu->fill_zero(d_grads.data(), d_grads.bytes());

	// 1e30 * 65536 overflows fp16: the backward must add nothing and halve the scale.
	Buffer<float> d_huge = to_backend(*gpu, std::vector<float>(n * s.raw_width(), 1e30f));
	mlp->forward(d_raw.data(), d_params.data(), d_pts.data(), d_views.data(), n, true);
	mlp->backward(d_grads.data(), d_params.data(), d_huge.data(), n);
	const std::vector<float> after_overflow = to_host(*gpu, d_grads);
	// Every element exactly 0 (max_abs skips non-finite values, so it would not see an inf / NaN left behind).
	size_t nonzero = 0;
	for (float g : after_overflow) nonzero += g != 0.0f;  // NaN != 0 counts too
	CHECK(nonzero == 0);
	const LossScaleInfo halved = cuda_mlp_loss_scale(*mlp);
	CHECK(halved.scale == 32768.0f);
	CHECK(halved.skipped_steps == 1);
	CHECK(halved.clean_steps == 0);
	// The overflow flag is raised, and Adam given it leaves this network's state alone (GradScaler
	// skips optimizer.step()): parameters, moments and the step count.
	REQUIRE(mlp->overflow_flag() != nullptr);
	CHECK(to_host(*gpu, mlp->overflow_flag(), 1)[0] != 0u);
	{
		const size_t off = net.fine.offset, count = net.fine.n_floats;
		const std::vector<float> m0 = uniform(count, -1e-3f, 1e-3f, 134), v0 = uniform(count, 0.0f, 1e-6f, 135);
		Buffer<float> d_m = to_backend(*gpu, m0), d_v = to_backend(*gpu, v0);
		AdamCounter start;
		start.step = 4;
		Buffer<AdamCounter> d_counter = to_backend(*gpu, std::vector<AdamCounter>{start});
		const std::vector<float> params_before = to_host(*gpu, d_params);
		AdamSpec spec;
		spec.lr = 1e-2f;
		gpu->adam_step(d_params.data() + off, d_m.data(), d_v.data(), d_grads.data() + off, count, spec, d_counter.data(),
		               mlp->overflow_flag());
		CHECK(to_host(*gpu, d_params) == params_before);
		CHECK(to_host(*gpu, d_m) == m0);
		CHECK(to_host(*gpu, d_v) == v0);
		const AdamCounter after = to_host(*gpu, d_counter)[0];
		CHECK(after.step == 4);
		CHECK(after.skipped == 1);
	}

	// A normal gradient goes through, unscaled, and counts as a clean step.
	Buffer<float> d_dL = to_backend(*gpu, uniform(n * s.raw_width(), -1e-2f, 1e-2f, 133));
	mlp->forward(d_raw.data(), d_params.data(), d_pts.data(), d_views.data(), n, true);
	mlp->backward(d_grads.data(), d_params.data(), d_dL.data(), n);
	const std::vector<float> after_clean = to_host(*gpu, d_grads);
	bool finite = true;
	for (float g : after_clean) finite = finite && std::isfinite(g);
	CHECK(finite);
	CHECK(max_abs(after_clean) > 0.0);
	// Unscaled: gradients of a 1e-2-sized dL/draw through a freshly initialised net stay well below 1;
	// a missing 1/S would make them ~3e4 times larger.
	CHECK(max_abs(after_clean) < 10.0);
	const LossScaleInfo clean = cuda_mlp_loss_scale(*mlp);
	CHECK(clean.scale == 32768.0f);
	CHECK(clean.clean_steps == 1);
	CHECK(to_host(*gpu, mlp->overflow_flag(), 1)[0] == 0u);  // a clean backward lowers the flag again
}

TEST_CASE("gpu mlp: fp16 loss scale doubles after 2000 clean backward passes", "[gpu][mlp][slow]") {
	std::unique_ptr<Backend> gpu = create_cuda_backend(0);
	const size_t n = 256;
	const Network net = make_network(false, 13);
	const MlpSpec& s = net.fine.spec;
	std::unique_ptr<Mlp> mlp = gpu->create_mlp(net.fine, n, Precision::FP16);
	Buffer<float> d_params = to_backend(*gpu, net.params);
	Buffer<float> d_pts = to_backend(*gpu, uniform(n * s.in_pts, -1.0f, 1.0f, 151));
	Buffer<float> d_dL = to_backend(*gpu, uniform(n * s.raw_width(), -1e-2f, 1e-2f, 152));
	Buffer<float> d_raw = gpu->allocate<float>(n * s.raw_width());
	Buffer<float> d_grads = gpu->allocate<float>(net.total);
	gpu->fill_zero(d_grads.data(), d_grads.bytes());
	for (int step = 1; step <= 2000; ++step) {
		mlp->forward(d_raw.data(), d_params.data(), d_pts.data(), nullptr, n, true);
		mlp->backward(d_grads.data(), d_params.data(), d_dL.data(), n);
		if (step == 1999) {
			const LossScaleInfo before = cuda_mlp_loss_scale(*mlp);
			CHECK(before.scale == 65536.0f);
			CHECK(before.clean_steps == 1999);
		}
	}
	const LossScaleInfo after = cuda_mlp_loss_scale(*mlp);
	CHECK(after.scale == 131072.0f);
	CHECK(after.clean_steps == 0);
	CHECK(after.skipped_steps == 0);
}

#endif  // NERF_WITH_CUDA
