#include "nerf/common.h"
#include "nerf/data/loaders.h"
namespace nerf {
Dataset load_deepvoxels(const std::string& basedir, const std::string&, int) { NERF_FAIL(basedir << ": DeepVoxels loader not implemented yet"); }
Dataset load_linemod(const std::string& basedir, bool, int, bool) { NERF_FAIL(basedir << ": LINEMOD loader not implemented yet"); }
}
