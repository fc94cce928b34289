// Built only without the CUDA backend: CUDA requests fail with a clear message.
#include "nerf/backend.h"

namespace nerf {

bool cuda_available() { return false; }

std::unique_ptr<Backend> create_cuda_backend(int) {
	throw Error("this build of nerfcore has no CUDA backend (configure with -DNERF_CUDA=ON and a CUDA toolkit)");
}

} // namespace nerf
