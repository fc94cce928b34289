// bench_small_mlp: the hash-grid field's small bias-free MLPs (include/nerf/small_mlp.h) at a training
// batch: forward and forward+backward of the density network {32 -> 64 -> 16} and the colour network
// {31 -> 64 -> 64 -> 3}, in GFLOP/s and as a fraction of the device's GEMM peak measured in the same run.
//
// On the CPU three implementations run the same inputs: the fused network with each way of feeding
// backward (keep the activations, or recompute each tile's forward) and an Eigen version of the same
// network (per row block, one Eigen GEMM per layer product, as src/cpu/cpu_mlp.cpp does for the
// reference MLP), so that the choice the library makes is visible here. They are checked against each
// other (two independent implementations) and the first rows' outputs against float64.
// On CUDA: the backend's network at fp32 and tf32, checked against the CPU's fused network.
//
// Counting: FLOPs = 2 multiply-adds of the true (unpadded) layer products: forward 2 P per row (P
// weights), backward with dL/din 4 P per row (weight and input products), so forward+backward = 6 P
// per row; a recomputed forward is not counted. GEMM peak: CPU, one Eigen float GEMM of G^3 per thread,
// all threads at once (Eigen's own threading stays off, as in the CPU backend); CUDA, the backend's
// small MLP at its widest shape (4096 x 4096, one hidden layer, batch 32768), per precision.
#include "common.h"

#include "nerf/backend.h"
#include "nerf/small_mlp.h"

#include <CLI/CLI.hpp>
#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nerf::bench {
namespace {

struct Options {
	std::string device = "auto";
	int threads = 0;
	size_t n = 1u << 18;
	int repeats = 10;
	int warmup = 2;
	int gemm_size = 1024;
	size_t eigen_rows = 0;   ///< rows per Eigen GEMM; 0: the whole row block
	size_t check_rows = 2048;
	bool small = false;
	std::string json_path;
};

struct Shape {
	std::string name;
	SmallMlpSpec spec;
	int in_stride, out_stride;  ///< as the field calls them
};

// The field's calls: the density net reads its 32 encoded features and writes 16 (density logit and
// 15 geometry features); the colour net reads [SH(d) | features] from rows of 32 and writes rgb into
// columns 0..2 of the 4-wide raw array.
std::vector<Shape> shapes() {
	return {{"density", SmallMlpSpec{32, 64, 1, 16}, 32, 16}, {"colour", SmallMlpSpec{31, 64, 2, 3}, 32, 4}};
}

// ------------------------------------------------------------------------------------------------
// The Eigen network: the same computation with one Eigen GEMM per layer product over row blocks.

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::OuterStride<>;
using StridedMap = Eigen::Map<RowMatrix, 0, Strided>;
using ConstStridedMap = Eigen::Map<const RowMatrix, 0, Strided>;
using ConstMatMap = Eigen::Map<const RowMatrix>;
using MatMap = Eigen::Map<RowMatrix>;

class EigenSmallMlp {
public:
	EigenSmallMlp(const SmallMlpSpec& spec, size_t chunk_rows) : m_spec(spec), m_chunk_rows(chunk_rows) {}

	void forward(float* out, int out_stride, const float* params, const float* in, int in_stride, size_t n) {
		plan(n);
		m_in = in;
		m_in_stride = in_stride;
		const int L = m_spec.hidden_layers;
#pragma omp parallel for schedule(dynamic, 1)
		for (long b = 0; b < (long)m_blocks.size(); ++b) {
			Block& block = m_blocks[b];
			block.hidden.resize(L);
			for (RowMatrix& h : block.hidden) h.resize((Eigen::Index)block.count, m_spec.width);
			for (size_t r = 0; r < block.count; r += chunk(block)) {
				const Eigen::Index rows = (Eigen::Index)std::min(chunk(block), block.count - r), r0 = (Eigen::Index)r;
				const size_t first = block.begin + r;
				ConstStridedMap x(in + first * in_stride, rows, m_spec.in, Strided(in_stride));
				block.hidden[0].middleRows(r0, rows).noalias() = x * weight(params, 0).transpose();
				block.hidden[0].middleRows(r0, rows) = block.hidden[0].middleRows(r0, rows).cwiseMax(0.0f);
				for (int l = 1; l < L; ++l) {
					block.hidden[l].middleRows(r0, rows).noalias() =
					    block.hidden[l - 1].middleRows(r0, rows) * weight(params, l).transpose();
					block.hidden[l].middleRows(r0, rows) = block.hidden[l].middleRows(r0, rows).cwiseMax(0.0f);
				}
				StridedMap y(out + first * out_stride, rows, m_spec.out, Strided(out_stride));
				y.noalias() = block.hidden[L - 1].middleRows(r0, rows) * weight(params, L).transpose();
			}
		}
	}

	void backward(float* dL_dparams, const float* params, const float* dL_dout, int dout_stride, float* dL_din,
	              int din_stride) {
		const int L = m_spec.hidden_layers;
		const size_t n_params = small_mlp_params(m_spec);
#pragma omp parallel for schedule(dynamic, 1)
		for (long b = 0; b < (long)m_blocks.size(); ++b) {
			Block& block = m_blocks[b];
			block.grads.assign(n_params, 0.0f);
			RowMatrix d, product;
			for (size_t r = 0; r < block.count; r += chunk(block)) {
				const Eigen::Index rows = (Eigen::Index)std::min(chunk(block), block.count - r), r0 = (Eigen::Index)r;
				const size_t first = block.begin + r;
				ConstStridedMap g(dL_dout + first * dout_stride, rows, m_spec.out, Strided(dout_stride));
				auto h_last = block.hidden[L - 1].middleRows(r0, rows);
				grad(block, L).noalias() += g.transpose() * h_last;
				product.noalias() = g * weight(params, L);
				d = (h_last.array() > 0.0f).select(product.array(), 0.0f).matrix();
				for (int l = L - 1; l >= 1; --l) {
					auto h_in = block.hidden[l - 1].middleRows(r0, rows);
					grad(block, l).noalias() += d.transpose() * h_in;
					product.noalias() = d * weight(params, l);
					d = (h_in.array() > 0.0f).select(product.array(), 0.0f).matrix();
				}
				ConstStridedMap x(m_in + first * m_in_stride, rows, m_spec.in, Strided(m_in_stride));
				grad(block, 0).noalias() += d.transpose() * x;
				if (dL_din) {
					StridedMap dx(dL_din + first * din_stride, rows, m_spec.in, Strided(din_stride));
					dx.noalias() = d * weight(params, 0);
				}
			}
		}
#pragma omp parallel for schedule(static)
		for (long k = 0; k < (long)n_params; ++k) {
			float sum = dL_dparams[k];
			for (const Block& block : m_blocks) sum += block.grads[k];
			dL_dparams[k] = sum;
		}
	}

private:
	struct Block {
		size_t begin = 0, count = 0;
		std::vector<RowMatrix> hidden;
		std::vector<float> grads;
	};
	// The fused network's row blocks (at most 64, at least 1024 rows, whole 64-row tiles).
	void plan(size_t n) {
		size_t rows = std::max<size_t>(1024, (n + 63) / 64);
		rows = (rows + 63) / 64 * 64;
		const size_t count = (n + rows - 1) / rows;
		m_blocks.resize(count);
		for (size_t b = 0; b < count; ++b) {
			m_blocks[b].begin = b * rows;
			m_blocks[b].count = std::min(rows, n - b * rows);
		}
	}
	size_t chunk(const Block& b) const { return m_chunk_rows ? m_chunk_rows : b.count; }
	ConstMatMap weight(const float* params, int l) const {
		return ConstMatMap(params + small_mlp_layer_offset(m_spec, l), small_mlp_layer_out(m_spec, l),
		                   small_mlp_layer_in(m_spec, l));
	}
	MatMap grad(Block& b, int l) const {
		return MatMap(b.grads.data() + small_mlp_layer_offset(m_spec, l), small_mlp_layer_out(m_spec, l),
		              small_mlp_layer_in(m_spec, l));
	}

	SmallMlpSpec m_spec;
	size_t m_chunk_rows;
	std::vector<Block> m_blocks;
	const float* m_in = nullptr;
	int m_in_stride = 0;
};

// ------------------------------------------------------------------------------------------------

/// Forward of the first `rows` rows in float64.
std::vector<double> reference_forward(const SmallMlpSpec& s, const std::vector<float>& params, const float* in,
                                      int in_stride, size_t rows) {
	std::vector<double> out(rows * s.out);
	for (size_t r = 0; r < rows; ++r) {
		std::vector<double> h(in + r * in_stride, in + r * in_stride + s.in);
		for (int l = 0; l <= s.hidden_layers; ++l) {
			const int li = small_mlp_layer_in(s, l), lo = small_mlp_layer_out(s, l);
			const float* w = params.data() + small_mlp_layer_offset(s, l);
			std::vector<double> y(lo, 0.0);
			for (int o = 0; o < lo; ++o)
				for (int i = 0; i < li; ++i) y[o] += (double)w[(size_t)o * li + i] * h[i];
			if (l < s.hidden_layers)
				for (double& v : y) v = std::max(v, 0.0);
			h = y;
		}
		std::copy(h.begin(), h.end(), out.begin() + r * s.out);
	}
	return out;
}

/// The first `cols` columns of rows of `stride` floats.
std::vector<float> columns(const std::vector<float>& rows, size_t n, int stride, int cols) {
	std::vector<float> v(n * (size_t)cols);
	for (size_t r = 0; r < n; ++r)
		for (int c = 0; c < cols; ++c) v[r * cols + c] = rows[r * stride + c];
	return v;
}

/// Normwise bound: every |got - ref| <= rel * max|ref| (results of sums with cancellation).
Tolerance normwise(const std::vector<float>& ref, double rel) { return {rel * max_abs(ref.data(), ref.size()), 0.0}; }

struct Row {
	std::string network, pass, impl, precision;
	std::vector<double> ms;
	double median_ms = 0, flops = 0, gflops = 0, fraction_peak = 0, mrows_per_s = 0;
	std::string check;
};

class SmallMlpBench {
public:
	SmallMlpBench(Backend& dev, Options opt) : m_dev(dev), m_opt(std::move(opt)) {
		if (m_dev.is_cuda()) {
			m_cpu = create_cpu_backend(m_opt.threads);
			m_precisions = {Precision::FP32, Precision::TF32};
		} else {
			m_precisions = {Precision::FP32};
		}
#ifdef _OPENMP
		m_threads = omp_get_max_threads();
#endif
	}

	void run() {
		measure_peak();
		for (const Shape& shape : shapes()) run_shape(shape);
		measure_peak();  // the better of start and end, as bench_kernels
		for (Row& r : m_rows) {
			const double peak = m_peak_gflops[r.precision];
			r.fraction_peak = peak > 0 ? r.gflops / peak : 0.0;
		}
	}

	void print(std::ostream& os) const {
		char line[512];
		os << "device: " << m_dev.name() << "   host: " << host_cpu_description() << "   threads: " << m_threads
		   << "   commit: " << NERF_BENCH_COMMIT << "\n";
		os << "rows: " << m_opt.n << "\n";
		for (const auto& [p, g] : m_peak_gflops) {
			std::snprintf(line, sizeof line, "peak compute %s (%s, best repeat): %.1f GFLOP/s\n", p.c_str(),
			              m_peak_method.c_str(), g);
			os << line;
		}
		std::snprintf(line, sizeof line, "%-8s %-8s %-18s %-5s %10s %9s %8s %9s  %s\n", "network", "pass", "impl",
		              "prec", "median_ms", "GFLOP/s", "%peak", "Mrows/s", "check (n, worst/bound)");
		os << line;
		for (const Row& r : m_rows) {
			std::snprintf(line, sizeof line, "%-8s %-8s %-18s %-5s %10.3f %9.1f %8.1f %9.2f  %s\n", r.network.c_str(),
			              r.pass.c_str(), r.impl.c_str(), r.precision.c_str(), r.median_ms, r.gflops,
			              100.0 * r.fraction_peak, r.mrows_per_s, r.check.c_str());
			os << line;
		}
	}

	nlohmann::json to_json(const std::string& command) const {
		nlohmann::json j;
		j["device"] = m_dev.name();
		j["host"] = host_cpu_description();
		j["threads"] = m_threads;
		j["commit"] = NERF_BENCH_COMMIT;
		j["command"] = command;
		j["rows"] = m_opt.n;
		j["repeats"] = m_opt.repeats;
		j["warmup"] = m_opt.warmup;
		j["peak_method"] = m_peak_method;
		for (const auto& [p, g] : m_peak_gflops) j["peak_gflops"][p] = g;
		nlohmann::json rows = nlohmann::json::array();
		for (const Row& r : m_rows)
			rows.push_back({{"network", r.network}, {"pass", r.pass}, {"impl", r.impl}, {"precision", r.precision},
			                {"median_ms", r.median_ms}, {"times_ms", r.ms}, {"flops", r.flops}, {"gflops", r.gflops},
			                {"fraction_peak", r.fraction_peak}, {"mrows_per_s", r.mrows_per_s}, {"check", r.check}});
		j["results"] = rows;
		return j;
	}

private:
	std::vector<double> time(const std::function<void()>& fn, const std::function<void()>& before_each = {}) {
		return time_repeats(m_dev, m_opt.warmup, m_opt.repeats, fn, before_each);
	}

	void add_row(const std::string& network, const std::string& pass, const std::string& impl, Precision p,
	             const std::vector<double>& ms, double flops, const std::string& check) {
		Row r;
		r.network = network;
		r.pass = pass;
		r.impl = impl;
		r.precision = precision_name(p);
		r.ms = ms;
		r.median_ms = median_of(ms);
		r.flops = flops;
		r.gflops = flops / (r.median_ms * 1e-3) / 1e9;
		r.mrows_per_s = (double)m_opt.n / (r.median_ms * 1e-3) / 1e6;
		r.check = check;
		std::fprintf(stderr, "  %-8s %-8s %-18s %-5s %10.3f ms %9.1f GFLOP/s  %s\n", network.c_str(), pass.c_str(),
		             impl.c_str(), r.precision.c_str(), r.median_ms, r.gflops, check.c_str());
		m_rows.push_back(r);
	}

	void measure_peak() {
		if (m_dev.is_cuda()) {
			const SmallMlpSpec wide{4096, 4096, 1, 16};
			const size_t batch = 32768;
			m_peak_method = "small MLP forward 4096x4096 (+16 out), batch 32768";
			std::vector<float> host(small_mlp_params(wide));
			init_small_mlp_params_host(host.data(), wide, 3);
			Buffer<float> params = to_device(host);
			Buffer<float> in = to_device(uniform_floats(batch * wide.in, -1.0, 1.0, 4));
			Buffer<float> out = m_dev.allocate<float>(batch * wide.out);
			const double flops = small_mlp_forward_flops(wide) * (double)batch;
			for (Precision p : m_precisions) {
				auto mlp = m_dev.create_small_mlp(wide, batch, p);
				const auto ms = time([&] { mlp->forward(out.data(), wide.out, params.data(), in.data(), wide.in, batch, false); });
				const double best = *std::min_element(ms.begin(), ms.end());
				double& peak = m_peak_gflops[precision_name(p)];
				peak = std::max(peak, flops / (best * 1e-3) / 1e9);
			}
			return;
		}
		// One G^3 GEMM per thread, all at once: what the cores can do with Eigen's best kernel.
		const int g = m_opt.gemm_size;
		m_peak_method = "Eigen float GEMM " + std::to_string(g) + "^3 per thread, " + std::to_string(m_threads) +
		                " at once";
		std::vector<Eigen::MatrixXf> a(m_threads), b(m_threads), c(m_threads);
		for (int t = 0; t < m_threads; ++t) {
			a[t] = Eigen::MatrixXf::Random(g, g);
			b[t] = Eigen::MatrixXf::Random(g, g);
			c[t].resize(g, g);
		}
		const auto ms = time([&] {
#pragma omp parallel for schedule(static, 1)
			for (int t = 0; t < m_threads; ++t) c[t].noalias() = a[t] * b[t];
		});
		for (const Eigen::MatrixXf& m : c) NERF_CHECK(m.allFinite());
		const double best = *std::min_element(ms.begin(), ms.end());
		double& peak = m_peak_gflops["fp32"];
		peak = std::max(peak, 2.0 * g * (double)g * g * m_threads / (best * 1e-3) / 1e9);
	}

	Buffer<float> to_device(const std::vector<float>& host) {
		Buffer<float> buf = m_dev.allocate<float>(host.size());
		m_dev.upload(buf.data(), host.data(), host.size() * sizeof(float));
		return buf;
	}
	std::vector<float> to_host(const Buffer<float>& buf) {
		std::vector<float> host(buf.size());
		m_dev.download(host.data(), buf.data(), buf.bytes());
		return host;
	}

	struct Outputs {
		std::vector<float> out, dparams, din;
	};

	void run_shape(const Shape& shape) {
		const SmallMlpSpec& s = shape.spec;
		const size_t n = m_opt.n;
		const size_t n_params = small_mlp_params(s);
		std::vector<float> params(n_params);
		init_small_mlp_params_host(params.data(), s, 1);
		const std::vector<float> in = uniform_floats(n * shape.in_stride, -1.0, 1.0, 2);
		const std::vector<float> dout = uniform_floats(n * shape.out_stride, -1.0, 1.0, 3);
		const double fwd_flops = small_mlp_forward_flops(s) * (double)n;
		const double train_flops = 3.0 * fwd_flops;  // forward + weight and input products
		// The CPU network's fp32 results, the reference for every other implementation.
		Outputs ref;
		std::fprintf(stderr, "%s network {%d -> %d x %d -> %d}, %zu rows\n", shape.name.c_str(), s.in, s.width,
		             s.hidden_layers, s.out, n);
		if (!m_dev.is_cuda()) {
			for (SmallMlpCpuBackward mode : {SmallMlpCpuBackward::Keep, SmallMlpCpuBackward::Recompute}) {
				const bool keep = mode == SmallMlpCpuBackward::Keep;
				auto mlp = create_cpu_small_mlp(s, n, mode);
				Outputs got;
				got.out.assign(n * shape.out_stride, 0.0f);
				got.din.assign(n * shape.in_stride, 0.0f);
				got.dparams.assign(n_params, 0.0f);
				const std::string impl = keep ? "fused keep" : "fused recompute";
				if (keep) {
					const auto fwd = time([&] {
						mlp->forward(got.out.data(), shape.out_stride, params.data(), in.data(), shape.in_stride, n, false);
					});
					StageCheck check(shape.name + " forward");
					const std::vector<double> want = reference_forward(s, params, in.data(), shape.in_stride, m_opt.check_rows);
					const std::vector<float> first = columns(got.out, m_opt.check_rows, shape.out_stride, s.out);
					std::vector<float> want_f(want.begin(), want.end());
					// fp32 against float64: sums of at most 64 products per layer, 3 layers: ~1e-6 normwise.
					check.arrays("output vs float64", first, want_f, normwise(want_f, 1e-5));
					add_row(shape.name, "forward", "fused", Precision::FP32, fwd, fwd_flops, check.summary());
				}
				const auto train = time([&] {
					mlp->forward(got.out.data(), shape.out_stride, params.data(), in.data(), shape.in_stride, n, true);
					mlp->backward(got.dparams.data(), params.data(), dout.data(), shape.out_stride, got.din.data(),
					              shape.in_stride, n);
				});
				// Backward alone, each repeat after an untimed kept forward (the warmup's backward passes reuse
				// the first one: a forward stays valid for any number of backward passes).
				auto kept_forward = [&] {
					mlp->forward(got.out.data(), shape.out_stride, params.data(), in.data(), shape.in_stride, n, true);
				};
				kept_forward();
				const auto bwd = time(
				    [&] {
					    mlp->backward(got.dparams.data(), params.data(), dout.data(), shape.out_stride, got.din.data(),
					                  shape.in_stride, n);
				    },
				    kept_forward);
				add_row(shape.name, "backward", impl, Precision::FP32, bwd, train_flops - fwd_flops, "-");
				StageCheck check(shape.name + " train " + impl);
				std::fill(got.dparams.begin(), got.dparams.end(), 0.0f);
				mlp->forward(got.out.data(), shape.out_stride, params.data(), in.data(), shape.in_stride, n, true);
				mlp->backward(got.dparams.data(), params.data(), dout.data(), shape.out_stride, got.din.data(),
				              shape.in_stride, n);
				if (keep) {
					ref = got;
					check.require(true, "reference");
				} else {
					// Keep and recompute run the same instructions on the same values: the same bits.
					check.require(got.out == ref.out && got.dparams == ref.dparams && got.din == ref.din,
					              "recompute differs from keep");
				}
				add_row(shape.name, "fwd+bwd", impl, Precision::FP32, train, train_flops, check.summary());
			}
			run_eigen(shape, params, in, dout, ref, fwd_flops, train_flops);
			return;
		}
		// CUDA: the CPU's fused network is the reference.
		{
			auto cpu = m_cpu->create_small_mlp(s, n, Precision::FP32);
			ref.out.assign(n * shape.out_stride, 0.0f);
			ref.din.assign(n * shape.in_stride, 0.0f);
			ref.dparams.assign(n_params, 0.0f);
			cpu->forward(ref.out.data(), shape.out_stride, params.data(), in.data(), shape.in_stride, n, true);
			cpu->backward(ref.dparams.data(), params.data(), dout.data(), shape.out_stride, ref.din.data(),
			              shape.in_stride, n);
		}
		Buffer<float> d_params = to_device(params), d_in = to_device(in), d_dout = to_device(dout);
		for (Precision p : m_precisions) {
			auto mlp = m_dev.create_small_mlp(s, n, p);
			Buffer<float> d_out = to_device(std::vector<float>(n * shape.out_stride, 0.0f));
			Buffer<float> d_din = to_device(std::vector<float>(n * shape.in_stride, 0.0f));
			Buffer<float> d_grads = to_device(std::vector<float>(n_params, 0.0f));
			// fp32: only the summation order differs (~1e-6); tf32 rounds every GEMM input to 10
			// mantissa bits (2^-11 relative), compounded over 3 chained products: ~1e-3.
			const double tol = p == Precision::FP32 ? 1e-4 : 1e-2;
			const auto fwd = time([&] {
				mlp->forward(d_out.data(), shape.out_stride, d_params.data(), d_in.data(), shape.in_stride, n, false);
			});
			StageCheck fcheck(shape.name + " forward");
			const std::vector<float> out_ref = columns(ref.out, n, shape.out_stride, s.out);
			fcheck.arrays("output", columns(to_host(d_out), n, shape.out_stride, s.out), out_ref, normwise(out_ref, tol));
			add_row(shape.name, "forward", "cuda", p, fwd, fwd_flops, fcheck.summary());
			const auto train = time([&] {
				mlp->forward(d_out.data(), shape.out_stride, d_params.data(), d_in.data(), shape.in_stride, n, true);
				mlp->backward(d_grads.data(), d_params.data(), d_dout.data(), shape.out_stride, d_din.data(),
				              shape.in_stride, n);
			});
			m_dev.fill_zero(d_grads.data(), d_grads.bytes());
			mlp->forward(d_out.data(), shape.out_stride, d_params.data(), d_in.data(), shape.in_stride, n, true);
			mlp->backward(d_grads.data(), d_params.data(), d_dout.data(), shape.out_stride, d_din.data(), shape.in_stride, n);
			StageCheck tcheck(shape.name + " train cuda");
			const std::vector<float> din_ref = columns(ref.din, n, shape.in_stride, s.in);
			tcheck.arrays("dL/dparams", to_host(d_grads), ref.dparams, normwise(ref.dparams, 2 * tol));
			tcheck.arrays("dL/din", columns(to_host(d_din), n, shape.in_stride, s.in), din_ref, normwise(din_ref, 2 * tol));
			add_row(shape.name, "fwd+bwd", "cuda", p, train, train_flops, tcheck.summary());
		}
	}

	void run_eigen(const Shape& shape, const std::vector<float>& params, const std::vector<float>& in,
	               const std::vector<float>& dout, const Outputs& ref, double fwd_flops, double train_flops) {
		const SmallMlpSpec& s = shape.spec;
		const size_t n = m_opt.n;
		EigenSmallMlp eigen(s, m_opt.eigen_rows);
		Outputs got;
		got.out.assign(n * shape.out_stride, 0.0f);
		got.din.assign(n * shape.in_stride, 0.0f);
		got.dparams.assign(ref.dparams.size(), 0.0f);
		const std::string impl = m_opt.eigen_rows ? "eigen " + std::to_string(m_opt.eigen_rows) + " rows" : "eigen";
		const auto fwd = time([&] {
			eigen.forward(got.out.data(), shape.out_stride, params.data(), in.data(), shape.in_stride, n);
		});
		StageCheck fcheck(shape.name + " forward " + impl);
		// Two fp32 implementations with different summation orders: ~1e-6 apart normwise.
		const std::vector<float> out_ref = columns(ref.out, n, shape.out_stride, s.out);
		fcheck.arrays("output vs fused", columns(got.out, n, shape.out_stride, s.out), out_ref, normwise(out_ref, 1e-5));
		add_row(shape.name, "forward", impl, Precision::FP32, fwd, fwd_flops, fcheck.summary());
		const auto train = time([&] {
			eigen.forward(got.out.data(), shape.out_stride, params.data(), in.data(), shape.in_stride, n);
			eigen.backward(got.dparams.data(), params.data(), dout.data(), shape.out_stride, got.din.data(),
			               shape.in_stride);
		});
		std::fill(got.dparams.begin(), got.dparams.end(), 0.0f);
		eigen.forward(got.out.data(), shape.out_stride, params.data(), in.data(), shape.in_stride, n);
		eigen.backward(got.dparams.data(), params.data(), dout.data(), shape.out_stride, got.din.data(), shape.in_stride);
		StageCheck tcheck(shape.name + " train " + impl);
		// Weight gradients sum n rows: the orders differ more (blocks of rows vs tiles), ~1e-6 still.
		tcheck.arrays("dL/dparams vs fused", got.dparams, ref.dparams, normwise(ref.dparams, 1e-5));
		const std::vector<float> din_ref = columns(ref.din, n, shape.in_stride, s.in);
		tcheck.arrays("dL/din vs fused", columns(got.din, n, shape.in_stride, s.in), din_ref, normwise(din_ref, 1e-5));
		add_row(shape.name, "fwd+bwd", impl, Precision::FP32, train, train_flops, tcheck.summary());
	}

	Backend& m_dev;
	Options m_opt;
	std::unique_ptr<Backend> m_cpu;
	std::vector<Precision> m_precisions;
	int m_threads = 1;
	std::map<std::string, double> m_peak_gflops;
	std::string m_peak_method;
	std::vector<Row> m_rows;
};

int run_main(int argc, char** argv) {
	Options opt;
	CLI::App app{"nerfcore small-MLP benchmark: the hash-grid field's networks, GFLOP/s against the GEMM peak"};
	app.add_option("--device", opt.device, "cpu, cuda or auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
	app.add_option("--threads", opt.threads, "CPU threads (0: all cores)");
	auto* n_opt = app.add_option("--n", opt.n, "rows per batch (default 262144)");
	auto* repeats_opt = app.add_option("--repeats", opt.repeats, "timed repeats (median reported)");
	app.add_option("--warmup", opt.warmup, "untimed runs before timing");
	auto* gemm_opt = app.add_option("--gemm_size", opt.gemm_size, "CPU peak: square Eigen GEMM size (default 1024)");
	app.add_option("--eigen_rows", opt.eigen_rows, "rows per Eigen GEMM (default: the whole row block)");
	app.add_option("--check_rows", opt.check_rows, "rows checked against float64");
	app.add_flag("--small", opt.small, "a quick run: 8192 rows, 3 repeats, 384^3 peak GEMM");
	app.add_option("--json", opt.json_path, "write the results as JSON to this file");
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError& e) {
		return app.exit(e);
	}
	if (opt.small) {
		if (!n_opt->count()) opt.n = 8192;
		if (!repeats_opt->count()) opt.repeats = 3;
		if (!gemm_opt->count()) opt.gemm_size = 384;
	}
	if (opt.n == 0 || opt.repeats < 1 || opt.warmup < 0 || opt.gemm_size < 16)
		NERF_FAIL("--n must be > 0, --repeats >= 1, --warmup >= 0 and --gemm_size >= 16");
	opt.check_rows = std::min(opt.check_rows, opt.n);
	std::unique_ptr<Backend> dev = create_backend(opt.device, opt.threads);
	SmallMlpBench bench(*dev, opt);
	bench.run();
	bench.print(std::cout);
	if (!opt.json_path.empty()) {
		std::ofstream f(opt.json_path);
		if (!f) NERF_FAIL(opt.json_path << ": cannot open for writing");
		f << bench.to_json(join_command_line(argc, argv)).dump(2) << "\n";
		if (!f) NERF_FAIL(opt.json_path << ": write failed");
	}
	return 0;
}

} // namespace
} // namespace nerf::bench

int main(int argc, char** argv) {
	try {
		return nerf::bench::run_main(argc, argv);
	} catch (const nerf::bench::ValidationError& e) {
		std::fprintf(stderr, "bench_small_mlp: %s\n", e.what());
		return 1;
	} catch (const std::exception& e) {
		std::fprintf(stderr, "bench_small_mlp: error: %s\n", e.what());
		return 1;
	}
}
