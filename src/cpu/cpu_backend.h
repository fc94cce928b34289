// Internal: pieces of the CPU backend shared between its files.
#pragma once

#include "nerf/backend.h"

namespace nerf {

std::unique_ptr<Mlp> make_cpu_mlp(const MlpLayout& layout, size_t max_batch);
/// The small MLP with the default way of feeding backward (cpu_small_mlp.cpp).
std::unique_ptr<SmallMlp> create_cpu_small_mlp(const SmallMlpSpec& spec, size_t max_batch);

} // namespace nerf
