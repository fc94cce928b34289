// Plumbing shared by every file of the CUDA backend: error checks that throw nerf::Error naming the
// failed call and file:line, the launch check, and the grid helper. Kernels never include this for
// math; the math is in include/nerf/math/ and shared with the CPU backend.
#pragma once

#include "nerf/common.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <sstream>

namespace nerf {
namespace cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
	std::ostringstream os;
	os << "CUDA error " << cudaGetErrorName(err) << " (" << cudaGetErrorString(err) << ") in " << call;
	detail::throw_error(file, line, os.str());
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
	std::ostringstream os;
	os << "cuBLAS error " << cublasGetStatusName(status) << " (" << cublasGetStatusString(status) << ") in " << call;
	detail::throw_error(file, line, os.str());
}

/// Checks the launch that just happened. Without NERF_SYNC_LAUNCHES only launch-configuration errors
/// show up here; with it, a fault inside the kernel is reported at this launch instead of at some
/// later call (a debug build option, it serialises the stream).
inline void check_launch(const char* kernel, cudaStream_t stream, const char* file, int line) {
	cudaError_t err = cudaGetLastError();
	if (err != cudaSuccess) throw_cuda_error(err, kernel, file, line);
#if defined(NERF_SYNC_LAUNCHES) && NERF_SYNC_LAUNCHES
	err = cudaStreamSynchronize(stream);
	if (err != cudaSuccess) throw_cuda_error(err, kernel, file, line);
#else
	(void)stream;
#endif
}

constexpr int kBlockSize = 256;

/// Blocks needed to give each of n elements one thread.
inline unsigned int grid_for(size_t n, int block = kBlockSize) {
	const size_t blocks = (n + (size_t)block - 1) / (size_t)block;
	if (blocks > 0x7fffffffu) NERF_FAIL("CUDA grid too large: " << n << " elements");
	return (unsigned int)blocks;
}

#ifdef __CUDACC__
/// Fixed-order tree reduction of one double per thread of a kThreads block (shared: kThreads doubles);
/// the result is valid in thread 0. The order depends only on kThreads, so sums are reproducible.
template <int kThreads> __device__ inline double block_sum(double value, double* shared) {
	shared[threadIdx.x] = value;
	__syncthreads();
	for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
		if ((int)threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
		__syncthreads();
	}
	return shared[0];
}
#endif

} // namespace cuda
} // namespace nerf

/// Throws nerf::Error naming the CUDA runtime call and file:line when it fails.
#define NERF_CUDA_CHECK(call)                                                                    \
	do {                                                                                         \
		const cudaError_t nerf_cuda_err_ = (call);                                               \
		if (nerf_cuda_err_ != cudaSuccess) ::nerf::cuda::throw_cuda_error(nerf_cuda_err_, #call, __FILE__, __LINE__); \
	} while (0)

/// Throws nerf::Error naming the cuBLAS / cuBLASLt call and file:line when it fails.
#define NERF_CUBLAS_CHECK(call)                                                                  \
	do {                                                                                         \
		const cublasStatus_t nerf_cublas_st_ = (call);                                           \
		if (nerf_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                             \
			::nerf::cuda::throw_cublas_error(nerf_cublas_st_, #call, __FILE__, __LINE__);         \
	} while (0)

/// For destructors and free paths: logs instead of throwing.
#define NERF_CUDA_LOG(call)                                                                      \
	do {                                                                                         \
		const cudaError_t nerf_cuda_err_ = (call);                                               \
		if (nerf_cuda_err_ != cudaSuccess)                                                       \
			std::fprintf(stderr, "nerfcore: CUDA error %s in %s (%s:%d)\n", cudaGetErrorName(nerf_cuda_err_), #call, \
			             __FILE__, __LINE__);                                                    \
	} while (0)

/// Right after every <<<...>>>: checks the launch (and, with NERF_SYNC_LAUNCHES, its execution).
#define NERF_CHECK_LAUNCH(kernel_name, stream) ::nerf::cuda::check_launch(kernel_name, stream, __FILE__, __LINE__)
