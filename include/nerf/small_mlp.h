/// @file small_mlp.h
/// @brief The small bias-free MLPs of the hash-grid field (tiny-cuda-nn's FullyFusedMLP shape).
///
/// A network of hidden_layers ReLU layers of `width` units and a linear output layer, no biases:
///   h_0 = relu(W_0 x),  h_i = relu(W_i h_{i-1}) (0 < i < hidden_layers),  y = W_out h_last.
/// Parameters, one weight after another in the flat buffer, each PyTorch's [out, in] row-major:
///   hidden 0: [width, in]; hidden 1 .. hidden_layers-1: [width, width]; output: [out, width].
/// Activations are row-per-sample, as everywhere in nerfcore, read and written through row strides so
/// that a network can read a slice of a wider array (the colour net's [SH | features] input) and write
/// into columns of a wider one (rgb into columns 0..2 of a 4-wide raw array) without copies.
/// Gradient contract as backend.h: dL/dparams ACCUMULATE (+=), dL/din OVERWRITES.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace nerf {

struct SmallMlpSpec {
	int in = 32;             ///< input features
	int width = 64;          ///< units of every hidden layer (64: the fast path)
	int hidden_layers = 1;   ///< ReLU layers, >= 1
	int out = 16;            ///< outputs (linear)
	bool operator==(const SmallMlpSpec& o) const {
		return in == o.in && width == o.width && hidden_layers == o.hidden_layers && out == o.out;
	}
	bool operator!=(const SmallMlpSpec& o) const { return !(*this == o); }
};

/// Throws nerf::Error naming the bad field when a size is not positive (or absurdly large).
void check_small_mlp_spec(const SmallMlpSpec& spec);
/// Floats of the network's weights: width*in + (hidden_layers-1)*width*width + out*width.
size_t small_mlp_params(const SmallMlpSpec& spec);
/// First float of weight matrix `layer` (0 .. hidden_layers; hidden_layers is the output layer)
/// relative to the network's first parameter; its shape is [small_mlp_layer_out, small_mlp_layer_in].
size_t small_mlp_layer_offset(const SmallMlpSpec& spec, int layer);
int small_mlp_layer_in(const SmallMlpSpec& spec, int layer);
int small_mlp_layer_out(const SmallMlpSpec& spec, int layer);
/// FLOPs (2 per multiply-add) of one row's forward. A backward with dL/din costs twice that (the weight
/// and the input products of every layer); without dL/din, less the first layer's input product.
double small_mlp_forward_flops(const SmallMlpSpec& spec);

/// Xavier-uniform per layer as tiny-cuda-nn's FullyFusedMLP: U(-s, s), s = sqrt(6 / (fan_in + fan_out)),
/// where, as there, the network's input and output widths count padded to multiples of 16 (tiny-cuda-nn
/// runs the padded matrices; the padding weights are not stored here). Host memory; deterministic in
/// seed (Philox keyed by the weight's index, so it does not depend on where the network sits in a
/// larger buffer). Give the networks of one field different seeds, or their weights are correlated.
void init_small_mlp_params_host(float* params, const SmallMlpSpec& spec, uint64_t seed);

/// One small MLP on a backend (Backend::create_small_mlp). It does not own parameters: forward and
/// backward take a pointer to its first weight. It owns what backward needs for up to max_batch rows,
/// so at most one forward may be pending a backward at a time. Every pointer is in the backend's memory.
class SmallMlp {
public:
	virtual ~SmallMlp() = default;
	virtual const SmallMlpSpec& spec() const = 0;
	/// out: [n, spec.out] in rows of out_stride floats (the columns beyond spec.out are left untouched,
	/// so it may write into the first columns of a wider array); in: [n, spec.in] in rows of in_stride
	/// floats; params: this network's first weight. keep_for_backward=false: inference, any n (processed
	/// in max_batch chunks), nothing kept. keep_for_backward=true: n <= max_batch, and `in` must stay
	/// valid and unchanged until backward (it is read again there).
	virtual void forward(float* out, int out_stride, const float* params, const float* in, int in_stride, size_t n,
	                     bool keep_for_backward) = 0;
	/// dL_dparams (+=, this network's slice: the first weight) from dL_dout ([n, out] rows of
	/// dL_dout_stride), and dL_din (overwrite, [n, in] rows of dL_din_stride; null when not wanted) for
	/// the n of the last forward with keep_for_backward; params as given to that forward.
	virtual void backward(float* dL_dparams, const float* params, const float* dL_dout, int dL_dout_stride, float* dL_din,
	                      int dL_din_stride, size_t n) = 0;
};

/// How the CPU network gets the forward activations that backward needs: Keep stores them for every
/// row (hidden_layers x max_batch x width floats); Recompute stores nothing and re-runs each tile's
/// forward in backward. Both give the same bits; Backend::create_small_mlp on the CPU gives the faster
/// (src/cpu/cpu_small_mlp.cpp says which, and the measurement).
enum class SmallMlpCpuBackward { Keep, Recompute };
/// The CPU network with an explicit choice, for tests and benchmarks (threads: the OpenMP setting,
/// as the CPU backend sets it).
std::unique_ptr<SmallMlp> create_cpu_small_mlp(const SmallMlpSpec& spec, size_t max_batch, SmallMlpCpuBackward backward);

} // namespace nerf
