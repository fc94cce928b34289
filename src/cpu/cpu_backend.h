// Internal: pieces of the CPU backend shared between its files.
#pragma once

#include "nerf/backend.h"

namespace nerf {

std::unique_ptr<Mlp> make_cpu_mlp(const MlpLayout& layout, size_t max_batch);

} // namespace nerf
