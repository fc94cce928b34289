// End to end on the built-in procedural scene (configs/builtin.txt: 64x64 views, 4 x 64 networks,
// coarse + fine, viewdirs): one whole training step from the same seed on the CPU and the GPU, and
// 300 steps on each with the validation PSNR compared.
#include "gpu_test_util.h"

#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/model.h"
#include "nerf/scene.h"
#include "nerf/trainer.h"

#include <filesystem>

using namespace nerf_gpu_test;

namespace {

/// The built-in scene written once into the temp folder, loaded as nerf_train loads it.
struct BuiltinScene {
	Config cfg;
	Dataset data;
};

const BuiltinScene& builtin_scene() {
	static const BuiltinScene scene = [] {
		BuiltinScene s;
		load_config_file(std::string(NERF_SOURCE_DIR) + "/configs/builtin.txt", s.cfg);
		const std::filesystem::path dir = std::filesystem::temp_directory_path() / "nerfcore_gpu_tests_builtin";
		if (!builtin_scene_matches(dir.string(), SceneOptions{})) write_builtin_scene(dir.string(), SceneOptions{});
		s.cfg.datadir = dir.string();
		s.cfg.dataset_type = "blender";
		s.cfg.quiet = true;
		s.cfg.basedir = (std::filesystem::temp_directory_path() / "nerfcore_gpu_tests_logs").string();
		s.data = load_dataset(s.cfg);
		return s;
	}();
	return scene;
}

} // namespace

TEST_CASE("gpu model: one training step matches the CPU (fp32)", "[gpu][model]") {
	Backends b = make_backends();
	const BuiltinScene& scene = builtin_scene();
	Config cfg = scene.cfg;
	cfg.precision = "fp32";
	Trainer cpu(cfg, scene.data, *b.cpu), gpu(cfg, scene.data, *b.gpu);
	const size_t n_params = cpu.model().n_params();
	REQUIRE(gpu.model().n_params() == n_params);
	const std::vector<float> params0 = to_host(*b.cpu, cpu.model().params(), n_params);
	const bool same_init = to_host(*b.gpu, gpu.model().params(), n_params) == params0;
	CHECK(same_init);  // same seed, same initialisation, bit for bit

	for (long step = 1; step <= 2; ++step) {
		cpu.step(step);
		gpu.step(step);
		const std::pair<float, float> loss_cpu = cpu.model().read_losses(), loss_gpu = gpu.model().read_losses();
		std::printf("step %ld: fine loss cpu %.9g gpu %.9g, coarse loss cpu %.9g gpu %.9g\n", step, loss_cpu.first,
		            loss_gpu.first, loss_cpu.second, loss_gpu.second);
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
		const std::vector<float> g_cpu = to_host(*b.cpu, cpu.model().grads(), n_params);
		const std::vector<float> g_gpu = to_host(*b.gpu, gpu.model().grads(), n_params);
		const MlpLayout* layouts[2] = {&cpu.model().coarse_layout(), cpu.model().fine_layout()};
		for (const MlpLayout* layout : layouts) {
			if (!layout) continue;
			const std::vector<float> ref(g_cpu.begin() + layout->offset, g_cpu.begin() + layout->offset + layout->n_params);
			const std::vector<float> got(g_gpu.begin() + layout->offset, g_gpu.begin() + layout->offset + layout->n_params);
			check_close("step " + std::to_string(step) + (layout->offset == 0 ? " coarse grads" : " fine grads"), ref, got,
			            normwise(ref, 2e-2));
		}
	}
}

TEST_CASE("gpu model: 300 training steps reach the CPU's validation PSNR", "[gpu][model][slow]") {
	Backends b = make_backends();
	const BuiltinScene& scene = builtin_scene();
	Config cfg = scene.cfg;  // the GPU runs its default precision (tf32): that is the product's path
	double psnr[2] = {0.0, 0.0}, untrained_gpu_psnr = 0.0;
	for (int which = 0; which < 2; ++which) {
		Backend& be = which == 0 ? *b.cpu : *b.gpu;
		Trainer trainer(cfg, scene.data, be);
		if (which == 1) untrained_gpu_psnr = trainer.evaluate_val_psnr(4);
		for (long step = 1; step <= 300; ++step) trainer.step(step);
		psnr[which] = trainer.evaluate_val_psnr(4);
		std::printf("300 steps on %s (%s): val PSNR over 4 views %.3f dB\n", be.name().c_str(),
		            which == 0 ? "fp32" : cfg.precision.c_str(), psnr[which]);
	}
	// The runs share rays and samples but not rounding, so their trajectories drift apart; 0.3 dB
	// is the agreement the project asks of the GPU path. And the GPU run must have learned something,
	// or two equally broken runs would agree: 2 dB over its own untrained network.
	std::printf("untrained GPU model: val PSNR %.3f dB\n", untrained_gpu_psnr);
	CHECK(std::fabs(psnr[1] - psnr[0]) <= 0.3);
	CHECK(psnr[1] > untrained_gpu_psnr + 2.0);
}
