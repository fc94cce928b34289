// End to end on the built-in procedural scene (configs/builtin.txt: 64x64 views, 4 x 64 networks,
// coarse + fine, viewdirs): one whole training step from the same seed on the CPU and the GPU, also
// with nerf-pytorch's depth 8 (the skip input), with and without viewdirs and a fine network;
// whole-image rendering of a trained model; and 300 steps on each with the validation PSNR
// compared, in the default precision (tf32) and in fp16 and bf16.
#include "gpu_builtin_scene.h"
#include "gpu_test_util.h"

#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/model.h"
#include "nerf/scene.h"
#include "nerf/trainer.h"

#include <filesystem>

using namespace nerf_gpu_test;

namespace {

/// Step-1 and step-2 losses and each network's gradients of two trainers built from the same config
/// (same seed: the same initial parameters, rays and samples), CPU against GPU.
void compare_training_steps(Trainer& cpu, Trainer& gpu, Backend& cpu_backend, Backend& gpu_backend, const std::string& what) {
	const size_t n_floats = cpu.model().n_floats();
	REQUIRE(gpu.model().n_floats() == n_floats);
	const std::vector<float> params0 = to_host(cpu_backend, cpu.model().params(), n_floats);
	const bool same_init = to_host(gpu_backend, gpu.model().params(), n_floats) == params0;
	CHECK(same_init);  // same seed, same initialisation, bit for bit

	for (long step = 1; step <= 2; ++step) {
		cpu.step(step);
		gpu.step(step);
		const std::pair<float, float> loss_cpu = cpu.model().read_losses(), loss_gpu = gpu.model().read_losses();
		std::printf("%s step %ld: fine loss cpu %.9g gpu %.9g, coarse loss cpu %.9g gpu %.9g\n", what.c_str(), step,
		            loss_cpu.first, loss_gpu.first, loss_cpu.second, loss_gpu.second);
		// Step 1's loss is the whole forward pipeline (rays, samples, MLP, compositing, resampling),
		// continuous in its inputs, so the stage tolerances (<= 2e-5 relative) carry over: 1e-4. Step 2
		// starts from parameters after one Adam update, whose first step moves each parameter by
		// ~lr sign(g): a gradient within rounding of 0 may move its parameter the other way: 1e-3.
		const double loss_tol = step == 1 ? 1e-4 : 1e-3;
		CHECK(loss_gpu.first == Approx(loss_cpu.first).epsilon(loss_tol));
		CHECK(loss_gpu.second == Approx(loss_cpu.second).epsilon(loss_tol));
		// This step's gradients (the model zeroes them each step), normwise per network. ReLU is
		// piecewise: a pre-activation within rounding of 0 takes the other branch and moves one
		// sample's gradient (~6e-3 normwise in a numpy emulation of the fp32 MLP, see
		// test_gpu_mlp.cpp): 2e-2, as the fp32 MLP test.
		const std::vector<float> g_cpu = to_host(cpu_backend, cpu.model().grads(), n_floats);
		const std::vector<float> g_gpu = to_host(gpu_backend, gpu.model().grads(), n_floats);
		const MlpLayout* layouts[2] = {&cpu.model().coarse_layout(), cpu.model().fine_layout()};
		for (const MlpLayout* layout : layouts) {
			if (!layout) continue;
			const std::vector<float> ref(g_cpu.begin() + layout->offset, g_cpu.begin() + layout->end());
			const std::vector<float> got(g_gpu.begin() + layout->offset, g_gpu.begin() + layout->end());
			check_close(what + " step " + std::to_string(step) + (layout->offset == 0 ? " coarse grads" : " fine grads"), ref,
			            got, normwise(ref, 2e-2));
		}
		CHECK(gpu.model().adam_steps(0) == step);
		if (gpu.model().has_fine()) CHECK(gpu.model().adam_steps(1) == step);
	}
}

} // namespace

TEST_CASE("gpu model: one training step matches the CPU (fp32)", "[gpu][model]") {
	Backends b = make_backends();
	Config cfg = builtin_scene().cfg;
	cfg.precision = "fp32";
	Trainer cpu(cfg, builtin_scene().data, *b.cpu), gpu(cfg, builtin_scene().data, *b.gpu);
	compare_training_steps(cpu, gpu, *b.cpu, *b.gpu, "builtin");
}

TEST_CASE("gpu model: training steps with nerf-pytorch's depth 8 (skip), viewdirs and fine network on and off", "[gpu][model]") {
	Backends b = make_backends();
	struct Variant {
		bool viewdirs;
		int n_importance;
	};
	for (const Variant v : {Variant{true, 32}, Variant{true, 0}, Variant{false, 32}, Variant{false, 0}}) {
		Config cfg = builtin_scene().cfg;
		cfg.precision = "fp32";
		cfg.netdepth = cfg.netdepth_fine = 8;  // pts_linears.5 takes cat([gamma(x), h])
		cfg.netwidth = cfg.netwidth_fine = 64;
		cfg.use_viewdirs = v.viewdirs;
		cfg.N_importance = v.n_importance;
		cfg.N_samples = 32;
		cfg.N_rand = 256;
		Trainer cpu(cfg, builtin_scene().data, *b.cpu), gpu(cfg, builtin_scene().data, *b.gpu);
		compare_training_steps(cpu, gpu, *b.cpu, *b.gpu,
		                       std::string("depth 8") + (v.viewdirs ? " viewdirs" : "") + " N_importance " +
		                           std::to_string(v.n_importance));
	}
}

TEST_CASE("gpu model: rendering a trained model matches the CPU (chunks with a tail, every output)", "[gpu][model]") {
	Backends b = make_backends();
	const BuiltinScene& scene = builtin_scene();
	Config cfg = scene.cfg;
	cfg.precision = "fp32";
	cfg.netdepth = cfg.netdepth_fine = 8;
	Trainer cpu(cfg, scene.data, *b.cpu), gpu(cfg, scene.data, *b.gpu);
	for (long step = 1; step <= 30; ++step) cpu.step(step);  // a model with some structure to render
	const size_t n_floats = cpu.model().n_floats();
	const std::vector<float> trained = to_host(*b.cpu, cpu.model().params(), n_floats);
	b.gpu->upload(gpu.model().params(), trained.data(), n_floats * sizeof(float));

	const Camera cam = dataset_camera(scene.data);
	const RenderSettings settings = RenderSettings::from_config(cfg, scene.data, false);
	const Pose& pose = scene.data.poses[(size_t)scene.data.i_val[0]];
	const int chunk = 1000;  // 64 x 64 = 4096 rays: four chunks and a tail of 96
	REQUIRE((size_t)cam.H * cam.W % chunk != 0);
	const RenderedRays ref = cpu.model().render_image(pose, cam, settings, chunk);
	const RenderedRays got = gpu.model().render_image(pose, cam, settings, chunk);
	// The fine samples come from an inverse-CDF lookup, piecewise in the coarse weights: a weight an
	// ulp away can move a sample to the next bin and change that ray's fine outputs by more than
	// rounding. 1e-3 normwise (the fp32 MLP's forward is good to 1e-5) with up to 1% such rays.
	const struct {
		const char* name;
		const std::vector<float>& ref;
		const std::vector<float>& got;
	} outputs[] = {{"rgb", ref.rgb, got.rgb},       {"depth", ref.depth, got.depth}, {"disp", ref.disp, got.disp},
	               {"acc", ref.acc, got.acc},       {"rgb0", ref.rgb0, got.rgb0},    {"depth0", ref.depth0, got.depth0},
	               {"disp0", ref.disp0, got.disp0}, {"acc0", ref.acc0, got.acc0},    {"z_std", ref.z_std, got.z_std}};
	for (const auto& o : outputs) {
		REQUIRE(o.ref.size() == (o.name[0] == 'r' ? 3u : 1u) * cam.H * cam.W);
		check_close(std::string("render ") + o.name, o.ref, o.got, normwise(o.ref, 1e-3), 0.01);
	}
	// The coarse outputs depend on no resampling: those agree everywhere.
	check_close("render rgb0 (every ray)", ref.rgb0, got.rgb0, normwise(ref.rgb0, 1e-3));
}

namespace {

// How far apart two 300-step runs of configs/builtin.txt may end although they share every ray and
// sample: rounding differences grow along the trajectory. Measured on the CPU (fp32), by training
// from the same initial parameters perturbed by a relative 1e-3 (a tf32 rounding) with different
// random patterns: val PSNR over 4 views 21.626 (unperturbed); 21.501, 21.565, 21.515, 21.386,
// 21.333, 21.476 (2026-12-01): up to 0.29 dB from the unperturbed run, standard deviation 0.08 dB.
// A GPU run against the CPU run is one such pair; twice the largest deviation seen keeps the test
// from flaking and still catches a GPU path that learns measurably worse.
constexpr double kPsnrAgreement300 = 0.6;

/// Val PSNR over 4 views after 300 steps of cfg on `be`, and (when untrained is not null) before.
double psnr_after_300_steps(const Config& cfg, Backend& be, double* untrained) {
	Trainer trainer(cfg, builtin_scene().data, be);
	if (untrained) *untrained = trainer.evaluate_val_psnr(4);
	for (long step = 1; step <= 300; ++step) trainer.step(step);
	const double psnr = trainer.evaluate_val_psnr(4);
	std::printf("300 steps on %s (%s): val PSNR over 4 views %.3f dB, Adam steps coarse %ld fine %ld\n",
	            be.name().c_str(), be.is_cuda() ? cfg.precision.c_str() : "fp32", psnr, trainer.model().adam_steps(0),
	            trainer.model().has_fine() ? trainer.model().adam_steps(1) : 0L);
	return psnr;
}

/// The CPU's run (fp32 whatever cfg.precision says), the reference of every precision below: computed
/// once per process, and the tests run in one process (the slow group of tools/gpu_check.sh).
double cpu_psnr_after_300_steps() {
	static const double psnr = [] {
		std::unique_ptr<Backend> cpu = create_cpu_backend();
		return psnr_after_300_steps(builtin_scene().cfg, *cpu, nullptr);
	}();
	return psnr;
}

} // namespace

TEST_CASE("gpu model: 300 training steps reach the CPU's validation PSNR", "[gpu][model][slow]") {
	std::unique_ptr<Backend> gpu_backend = create_cuda_backend(0);
	const Config cfg = builtin_scene().cfg;  // the GPU runs its default precision (tf32): the product's path
	double untrained_gpu = 0.0;
	const double cpu = cpu_psnr_after_300_steps();
	const double gpu = psnr_after_300_steps(cfg, *gpu_backend, &untrained_gpu);
	record_psnr_difference(std::string("dense ") + cfg.precision, gpu, cpu, kPsnrAgreement300);
	// The GPU run must also have learned something, or two equally broken runs would agree: 2 dB
	// over its own untrained network.
	std::printf("untrained GPU model: val PSNR %.3f dB\n", untrained_gpu);
	CHECK(std::fabs(gpu - cpu) <= kPsnrAgreement300);
	CHECK(gpu > untrained_gpu + 2.0);
}

TEST_CASE("gpu model: fp16 and bf16 training for 300 steps reach the CPU's validation PSNR", "[gpu][model][slow]") {
	std::unique_ptr<Backend> gpu_backend = create_cuda_backend(0);
	Config cfg = builtin_scene().cfg;
	const double cpu = cpu_psnr_after_300_steps();
	for (const char* precision : {"fp16", "bf16"}) {
		cfg.precision = precision;
		double untrained = 0.0;
		const double gpu = psnr_after_300_steps(cfg, *gpu_backend, &untrained);
		record_psnr_difference(std::string("dense ") + precision, gpu, cpu, kPsnrAgreement300);
		INFO(precision);
		CHECK(std::fabs(gpu - cpu) <= kPsnrAgreement300);
		CHECK(gpu > untrained + 2.0);
	}
}
