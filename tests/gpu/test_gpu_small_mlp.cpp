// The cuBLASLt small MLPs (cuda/small_mlp.cu) against the CPU's fused network, which tests/
// test_small_mlp.cpp checks against float64: the hash-grid field's density {32 -> 64 -> 16} and colour
// {31 -> 64 -> 64 -> 3} networks as the field calls them (strided input rows of 32, rgb into columns 0..2
// of a 4-wide raw array), forward, parameter and input gradients, fused and unfused epilogues.
//
// Two kinds of network:
// * An exact one (make_exact): inputs odd multiples of 1/2 except a constant 1/4 in the last column,
//   first-layer weight rows one +-1 each (the last row picks the constant: a hidden unit fixed at 1/4),
//   second-layer rows one +-1 plus +1 on that constant unit, output rows +-1, dL/dout multiples of 1/16.
//   Every pre-activation is then a nonzero multiple of 1/4 (never 0, so the ReLU mask is the same
//   whether a kernel tests z > 0 or z >= 0), every operand is exact in tf32, and every sum, including
//   the weight gradients' sums over 2^18 rows (random signs: partial sums of a few thousand units of
//   1/64, far inside fp32's 24 bits), is exact in fp32. CPU and GPU must give the same bits in fp32 and
//   tf32, fused or not: any layout, stride, epilogue, mask or accumulation error shows.
// * A Xavier-initialised one with uniform inputs, for realistic numerics, against normwise bounds:
//   forward fp32 1e-5 (summation order only: ~1e-7 observed on the CPU against float64), tf32 2e-3
//   (10-bit mantissas: 2^-11 relative per product, over 2-3 chained layers). Gradients are looser, as
//   in test_gpu_mlp.cpp: ReLU is piecewise, so a pre-activation within rounding of 0 takes the other
//   branch on the other side and moves that row's gradient by a whole term (fp32 2e-2, tf32 0.25), and
//   up to 1% (fp32) / 10% (tf32) of dL/din elements may be off by such a flip.
// No GPU was available when these tests were written: the exact tests' bounds are exact by
// construction; the random tests' bounds are first estimates (see NOTES / bench/RESULTS.md).
#include "gpu_test_util.h"

#include "nerf/cuda_backend.h"
#include "nerf/small_mlp.h"

#include <cstring>

using namespace nerf_gpu_test;

#if defined(NERF_WITH_CUDA) && NERF_WITH_CUDA

namespace {

struct Shape {
	const char* name;
	SmallMlpSpec spec;
	int in_stride, out_stride;
};
const Shape kShapes[] = {{"density", SmallMlpSpec{32, 64, 1, 16}, 32, 16}, {"colour", SmallMlpSpec{31, 64, 2, 3}, 32, 4}};

constexpr float kSentinel = 777.25f;

struct Problem {
	Shape shape;
	size_t n = 0;
	int din_stride = 0;
	std::vector<float> params, in, dout;
};

/// The exact network of the file comment (hidden_layers 1 or 2).
Problem make_exact(const Shape& shape, size_t n, uint32_t seed) {
	const SmallMlpSpec& s = shape.spec;
	REQUIRE(s.hidden_layers <= 2);
	Problem p{shape, n, s.in + 3, {}, {}, {}};
	std::mt19937 rng(seed);
	std::uniform_int_distribution<int> half(-8, 7), sign(0, 1), tenth(-8, 8);
	auto pm1 = [&] { return sign(rng) ? 1.0f : -1.0f; };
	p.params.assign(small_mlp_params(s), 0.0f);
	const int W = s.width, c = W - 1;  // hidden unit c carries the constant
	{
		float* w0 = p.params.data();
		std::uniform_int_distribution<int> col(0, s.in - 2);
		for (int o = 0; o < c; ++o) w0[(size_t)o * s.in + col(rng)] = pm1();
		w0[(size_t)c * s.in + (s.in - 1)] = 1.0f;
	}
	if (s.hidden_layers == 2) {
		float* w1 = p.params.data() + small_mlp_layer_offset(s, 1);
		std::uniform_int_distribution<int> unit(0, c - 1);
		for (int o = 0; o < c; ++o) {
			w1[(size_t)o * W + unit(rng)] = pm1();
			w1[(size_t)o * W + c] = 1.0f;
		}
		w1[(size_t)c * W + c] = 1.0f;
	}
	{
		float* wo = p.params.data() + small_mlp_layer_offset(s, s.hidden_layers);
		std::uniform_int_distribution<int> unit(0, W - 1);
		for (int o = 0; o < s.out; ++o)
			for (int k = 0; k < 3; ++k) wo[(size_t)o * W + unit(rng)] = pm1();  // up to 3 units per output
	}
	p.in.assign(n * shape.in_stride, kSentinel);  // the columns past `in` must never be read as values
	for (size_t r = 0; r < n; ++r) {
		for (int i = 0; i < s.in - 1; ++i) p.in[r * shape.in_stride + i] = 0.5f * (float)(2 * half(rng) + 1);
		p.in[r * shape.in_stride + s.in - 1] = 0.25f;
	}
	p.dout.assign(n * shape.out_stride, kSentinel);
	for (size_t r = 0; r < n; ++r)
		for (int o = 0; o < s.out; ++o) p.dout[r * shape.out_stride + o] = (float)tenth(rng) / 16.0f;
	return p;
}

Problem make_random(const Shape& shape, size_t n, uint32_t seed) {
	const SmallMlpSpec& s = shape.spec;
	Problem p{shape, n, s.in + 3, {}, {}, {}};
	p.params.resize(small_mlp_params(s));
	init_small_mlp_params_host(p.params.data(), s, seed);
	p.in = uniform(n * shape.in_stride, -1.0f, 1.0f, seed + 1);
	p.dout = uniform(n * shape.out_stride, -1.0f, 1.0f, seed + 2);
	return p;
}

struct Run {
	std::vector<float> out, grads, din;
};

/// Forward (kept) and backward on `backend`: out and din start as sentinels, grads at 0.5 (+=).
Run run(Backend& backend, SmallMlp& mlp, const Problem& p, bool keep = true) {
	Buffer<float> params = to_backend(backend, p.params), in = to_backend(backend, p.in),
	              dout = to_backend(backend, p.dout);
	Buffer<float> out = to_backend(backend, std::vector<float>(p.n * p.shape.out_stride, kSentinel));
	Buffer<float> grads = to_backend(backend, std::vector<float>(p.params.size(), 0.5f));
	Buffer<float> din = to_backend(backend, std::vector<float>(p.n * p.din_stride, kSentinel));
	mlp.forward(out.data(), p.shape.out_stride, params.data(), in.data(), p.shape.in_stride, p.n, keep);
	Run r;
	r.out = to_host(backend, out);
	if (keep) {
		mlp.backward(grads.data(), params.data(), dout.data(), p.shape.out_stride, din.data(), p.din_stride, p.n);
		r.grads = to_host(backend, grads);
		r.din = to_host(backend, din);
	}
	return r;
}

Run run_cpu(const Problem& p) {
	std::unique_ptr<Backend> cpu = create_cpu_backend();
	std::unique_ptr<SmallMlp> mlp = cpu->create_small_mlp(p.shape.spec, p.n, Precision::FP32);
	return run(*cpu, *mlp, p);
}

size_t sentinels_changed(const std::vector<float>& rows, size_t n, int stride, int width) {
	size_t changed = 0;
	for (size_t r = 0; r < n; ++r)
		for (int c = width; c < stride; ++c) changed += rows[r * stride + c] != kSentinel;
	return changed;
}

std::vector<float> first_columns(const std::vector<float>& rows, size_t n, int stride, int width) {
	std::vector<float> v(n * (size_t)width);
	for (size_t r = 0; r < n; ++r)
		for (int c = 0; c < width; ++c) v[r * width + c] = rows[r * stride + c];
	return v;
}

void check_exact(const std::string& what, const Problem& p, const Run& ref, const Run& got) {
	const SmallMlpSpec& s = p.shape.spec;
	check_close(what + " out", ref.out, got.out, {0.0, 0.0});
	check_close(what + " grads", ref.grads, got.grads, {0.0, 0.0});
	check_close(what + " din", ref.din, got.din, {0.0, 0.0});
	CHECK(sentinels_changed(got.out, p.n, p.shape.out_stride, s.out) == 0);
	CHECK(sentinels_changed(got.din, p.n, p.din_stride, s.in) == 0);
}

const Precision kRunPrecisions[] = {Precision::FP32, Precision::TF32};

} // namespace

TEST_CASE("gpu small mlp: the exact networks at 2^18 rows give the CPU's bits (fp32, tf32, fused and unfused)",
          "[gpu][mlp][big]") {
	std::unique_ptr<Backend> gpu = create_cuda_backend(0);
	const size_t n = 1u << 18;
	for (const Shape& shape : kShapes) {
		const Problem p = make_exact(shape, n, 31);
		const Run ref = run_cpu(p);
		// The gradient reaches the first layer through every ReLU (about half of the units are off in each
		// row: the inputs' signs are random), or the deep half of the comparison would be vacuous.
		const size_t first = (size_t)shape.spec.in * shape.spec.width;
		REQUIRE(std::any_of(ref.grads.begin(), ref.grads.begin() + first, [](float g) { return g != 0.5f; }));
		for (Precision prec : kRunPrecisions)
			for (MlpEpilogue e : {MlpEpilogue::Fused, MlpEpilogue::Unfused}) {
				const std::string what = std::string(shape.name) + " exact n=2^18 " + precision_name(prec) +
				                         (e == MlpEpilogue::Fused ? " fused" : " unfused");
				std::printf("small mlp %s vs cpu\n", what.c_str());
				std::unique_ptr<SmallMlp> mlp = create_cuda_small_mlp(*gpu, shape.spec, n, prec, e);
				check_exact(what, p, ref, run(*gpu, *mlp, p));
				std::printf("%s", describe_cuda_small_mlp(*mlp).c_str());
			}
	}
}

TEST_CASE("gpu small mlp: a partial block and chunked inference give the CPU's bits", "[gpu][mlp]") {
	std::unique_ptr<Backend> gpu = create_cuda_backend(0);
	const size_t n = 1000 + 37;  // no power of two, not a multiple of any tile
	for (const Shape& shape : kShapes) {
		const Problem p = make_exact(shape, n, 41);
		const Run ref = run_cpu(p);
		for (MlpEpilogue e : {MlpEpilogue::Fused, MlpEpilogue::Unfused}) {
			const std::string what = std::string(shape.name) + " exact n=1037" + (e == MlpEpilogue::Fused ? " fused" : " unfused");
			std::unique_ptr<SmallMlp> mlp = create_cuda_small_mlp(*gpu, shape.spec, n, Precision::FP32, e);
			check_exact(what, p, ref, run(*gpu, *mlp, p));
			// Inference in chunks of max_batch = 300 (300, 300, 300, 137): the same rows, the same bits.
			std::unique_ptr<SmallMlp> small = create_cuda_small_mlp(*gpu, shape.spec, 300, Precision::FP32, e);
			const Run inferred = run(*gpu, *small, p, false);
			check_close(what + " inference in chunks", ref.out, inferred.out, {0.0, 0.0});
		}
	}
}

TEST_CASE("gpu small mlp: random networks match the CPU within rounding (fp32, tf32)", "[gpu][mlp]") {
	std::unique_ptr<Backend> gpu = create_cuda_backend(0);
	const size_t n = 8192 + 5;
	for (const Shape& shape : kShapes) {
		const SmallMlpSpec& s = shape.spec;
		const Problem p = make_random(shape, n, 51);
		const Run ref = run_cpu(p);
		const std::vector<float> ref_out = first_columns(ref.out, n, shape.out_stride, s.out);
		const std::vector<float> ref_din = first_columns(ref.din, n, p.din_stride, s.in);
		for (Precision prec : kRunPrecisions) {
			const bool fp32 = prec == Precision::FP32;
			const std::string what = std::string(shape.name) + " random " + precision_name(prec);
			std::unique_ptr<SmallMlp> mlp = gpu->create_small_mlp(s, n, prec);
			const Run got = run(*gpu, *mlp, p);
			check_close(what + " out", ref_out, first_columns(got.out, n, shape.out_stride, s.out),
			            normwise(ref_out, fp32 ? 1e-5 : 2e-3));
			check_close(what + " grads", ref.grads, got.grads, normwise(ref.grads, fp32 ? 2e-2 : 0.25));
			check_close(what + " din", ref_din, first_columns(got.din, n, p.din_stride, s.in),
			            normwise(ref_din, fp32 ? 1e-5 : 2e-3), fp32 ? 0.01 : 0.1);
			CHECK(sentinels_changed(got.out, n, shape.out_stride, s.out) == 0);
		}
	}
}

TEST_CASE("gpu small mlp: fp16 and bf16 run as tf32, and the epilogue plan is printed", "[gpu][mlp]") {
	std::unique_ptr<Backend> gpu = create_cuda_backend(0);
	const size_t n = 4096;
	for (const Shape& shape : kShapes) {
		const Problem p = make_random(shape, n, 61);
		std::unique_ptr<SmallMlp> tf32 = gpu->create_small_mlp(shape.spec, n, Precision::TF32);
		const Run want = run(*gpu, *tf32, p);
		for (Precision prec : {Precision::FP16, Precision::BF16}) {
			std::unique_ptr<SmallMlp> mlp = gpu->create_small_mlp(shape.spec, n, prec);
			const Run got = run(*gpu, *mlp, p);
			const std::string what = std::string(shape.name) + " " + precision_name(prec) + " as tf32";
			check_close(what + " out", want.out, got.out, {0.0, 0.0});
			check_close(what + " grads", want.grads, got.grads, {0.0, 0.0});
		}
		// Where cuBLASLt refuses RELU_AUX or DRELU without a bias the network runs them as kernels:
		// correct but slower. Record what it did (a finding for bench/RESULTS.md, not a failure).
		std::printf("%s", describe_cuda_small_mlp(*tf32).c_str());
		const MlpEpilogueUse use = cuda_small_mlp_fusion(*tf32);
		// One forward and one backward: every hidden layer's ReLU once each way.
		CHECK(use.fused + use.kernels == 2 * shape.spec.hidden_layers);
		if (use.kernels > 0) WARN(shape.name << ": " << use.kernels << " ReLU epilogues ran as kernels");
		std::unique_ptr<SmallMlp> unfused = create_cuda_small_mlp(*gpu, shape.spec, n, Precision::TF32, MlpEpilogue::Unfused);
		run(*gpu, *unfused, p);
		const MlpEpilogueUse none = cuda_small_mlp_fusion(*unfused);
		CHECK(none.fused == 0);
		CHECK(none.kernels == 2 * shape.spec.hidden_layers);
	}
}

TEST_CASE("gpu small mlp: bad strides and calls are one clear error each", "[gpu][mlp]") {
	std::unique_ptr<Backend> gpu = create_cuda_backend(0);
	const Shape& shape = kShapes[1];
	const Problem p = make_random(shape, 64, 71);
	std::unique_ptr<SmallMlp> mlp = gpu->create_small_mlp(shape.spec, 64, Precision::FP32);
	Buffer<float> params = to_backend(*gpu, p.params), in = to_backend(*gpu, p.in), dout = to_backend(*gpu, p.dout);
	Buffer<float> out = gpu->allocate<float>(64 * 4), grads = gpu->allocate<float>(p.params.size());
	CHECK_THROWS_WITH(mlp->forward(out.data(), 2, params.data(), in.data(), 32, 64, true), Catch::Contains("out_stride = 2"));
	CHECK_THROWS_WITH(mlp->forward(out.data(), 4, params.data(), in.data(), 30, 64, true), Catch::Contains("in_stride = 30"));
	CHECK_THROWS_WITH(mlp->forward(out.data(), 4, params.data(), in.data(), 32, 65, true), Catch::Contains("max_batch is 64"));
	CHECK_THROWS_WITH(mlp->backward(grads.data(), params.data(), dout.data(), 4, nullptr, 0, 64),
	                  Catch::Contains("last forward kept 0"));
	mlp->forward(out.data(), 4, params.data(), in.data(), 32, 64, true);
	CHECK_THROWS_WITH(mlp->backward(grads.data(), params.data(), dout.data(), 4, nullptr, 0, 63),
	                  Catch::Contains("backward of 63 rows"));
	std::unique_ptr<Backend> cpu = create_cpu_backend(1);
	CHECK_THROWS_WITH(create_cuda_small_mlp(*cpu, shape.spec, 64, Precision::FP32, MlpEpilogue::Fused),
	                  Catch::Contains("not a CUDA backend"));
}

#endif
