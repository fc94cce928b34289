// The network, batch and schedule the end-to-end CPU training tests share: large enough to learn the
// built-in scene's shapes and textures, small enough to train in seconds on two cores.
#pragma once

#include "nerf/config.h"

namespace test_training {

inline void use_small_network(nerf::Config& cfg) {
	cfg.white_bkgd = true;
	cfg.use_viewdirs = true;
	// Keeps ReLU(sigma) from starting dead on an all-white start, as configs/builtin.txt.
	cfg.raw_noise_std = 1.0f;
	cfg.netdepth = cfg.netdepth_fine = 3;
	cfg.netwidth = cfg.netwidth_fine = 32;
	cfg.multires = 6;
	cfg.multires_views = 2;
	cfg.N_rand = 256;
	cfg.N_samples = 16;
	cfg.N_importance = 16;
	cfg.lrate = 5e-3f;
	cfg.lrate_decay = 10;
	cfg.chunk = 1024;
}

} // namespace test_training
