// load_dataset: the dispatch on dataset_type that run_nerf.py's train() does, with its near/far choices.
#include "nerf/common.h"
#include "nerf/data/loaders.h"
#include "nerf/dataset.h"

namespace nerf {

Dataset load_dataset(const Config& cfg) {
	const std::string& type = cfg.dataset_type;
	if (type == "blender") return load_blender(cfg.datadir, cfg.half_res, cfg.testskip, cfg.white_bkgd);
	if (type == "llff") return load_llff(cfg.datadir, cfg.factor, cfg.spherify, cfg.llffhold, cfg.no_ndc);
	if (type == "deepvoxels") return load_deepvoxels(cfg.datadir, cfg.shape, cfg.testskip);
	if (type == "LINEMOD") return load_linemod(cfg.datadir, cfg.half_res, cfg.testskip, cfg.white_bkgd);
	NERF_FAIL("unknown dataset_type '" << type << "' (expected blender, llff, deepvoxels or LINEMOD)");
}

} // namespace nerf
