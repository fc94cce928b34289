// Backend selection and the pieces every backend shares (initialisation, precision names).
#include "nerf/backend.h"

#include "nerf/math/rng.h"

#include <cmath>

namespace nerf {

Precision parse_precision(const std::string& name) {
	if (name == "fp32") return Precision::FP32;
	if (name == "tf32") return Precision::TF32;
	if (name == "fp16") return Precision::FP16;
	if (name == "bf16") return Precision::BF16;
	NERF_FAIL("unknown precision '" << name << "' (expected fp32, tf32, fp16 or bf16)");
}

const char* precision_name(Precision p) {
	switch (p) {
	case Precision::FP32: return "fp32";
	case Precision::TF32: return "tf32";
	case Precision::FP16: return "fp16";
	case Precision::BF16: return "bf16";
	}
	return "?";
}

void init_mlp_params_host(float* params, const MlpLayout& layout, uint64_t seed) {
	// nn.Linear.reset_parameters: kaiming_uniform(a=sqrt(5)) on the weight is U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
	// and the bias is drawn from the same bound. Draws are keyed by the parameter's index counted
	// without the layout's padding, so the values depend neither on the alignment of the layers nor
	// on where in the buffer the network sits. The padding is left as it is (zero in a fresh buffer).
	for (size_t li = 0; li < layout.layers.size(); ++li) {
		const LinearLayer& l = layout.layers[li];
		const float bound = 1.0f / std::sqrt((float)l.in);
		const size_t n = l.n_params();
		for (size_t k = 0; k < n; ++k) {
			const size_t key = l.param_index + k;
			const float u = random_uniform(seed, (uint32_t)(key >> 32), (uint32_t)key, (uint32_t)li, RngStream::Init);
			params[l.weight_offset + k] = (2.0f * u - 1.0f) * bound;
		}
	}
}

std::unique_ptr<Backend> create_backend(const std::string& which, int cpu_threads) {
	if (which == "cpu") return create_cpu_backend(cpu_threads);
	if (which == "cuda") return create_cuda_backend(0);
	if (which == "auto") return cuda_available() ? create_cuda_backend(0) : create_cpu_backend(cpu_threads);
	NERF_FAIL("unknown device '" << which << "' (expected auto, cpu or cuda)");
}

} // namespace nerf
