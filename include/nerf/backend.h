/// @file backend.h
/// @brief The Backend interface: one method per pipeline stage, forward and backward.
///
/// Every pointer passed to a stage lives in the backend's own memory (host memory for the CPU
/// backend, device memory for CUDA) and is obtained from Backend::allocate. Stages are
/// asynchronous on CUDA (one stream, in order); `synchronize` or a download waits.
/// Layouts: activations are row-per-sample [N, C]; rays and depths are [n_rays, ...] contiguous.
/// Gradient contract: parameter gradients ACCUMULATE (+=), activation gradients OVERWRITE.
#pragma once

#include "nerf/common.h"
#include "nerf/math/composite.h"
#include "nerf/math/encoding.h"
#include "nerf/math/hash_grid.h"
#include "nerf/math/ngp_field.h"
#include "nerf/math/occupancy.h"
#include "nerf/math/optim.h"
#include "nerf/math/rays.h"
#include "nerf/math/sampling.h"
#include "nerf/math/spherical_harmonics.h"
#include "nerf/mlp_layout.h"
#include "nerf/small_mlp.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace nerf {

class Backend;

/// Move-only owner of `count` elements of T in a backend's memory.
template <typename T> class Buffer {
public:
	Buffer() = default;
	Buffer(Backend* owner, size_t count);
	~Buffer() { reset(); }
	Buffer(const Buffer&) = delete;
	Buffer& operator=(const Buffer&) = delete;
	Buffer(Buffer&& o) noexcept : m_owner(o.m_owner), m_data(o.m_data), m_count(o.m_count) {
		o.m_data = nullptr;
		o.m_count = 0;
	}
	Buffer& operator=(Buffer&& o) noexcept {
		if (this != &o) {
			reset();
			std::swap(m_owner, o.m_owner);
			std::swap(m_data, o.m_data);
			std::swap(m_count, o.m_count);
		}
		return *this;
	}
	T* data() { return m_data; }
	const T* data() const { return m_data; }
	size_t size() const { return m_count; }
	size_t bytes() const { return m_count * sizeof(T); }
	void reset();

private:
	Backend* m_owner = nullptr;
	T* m_data = nullptr;
	size_t m_count = 0;
};

/// Outputs of compositing for a batch of rays; any pointer may be null when not wanted.
struct CompositeOutputs {
	float* rgb = nullptr;      ///< [n_rays, 3]
	float* depth = nullptr;    ///< [n_rays]
	float* disp = nullptr;     ///< [n_rays]
	float* acc = nullptr;      ///< [n_rays]
	float* weights = nullptr;  ///< [n_rays, n_samples]
};

/// Marched samples (occ_grid) in backend memory, packed ray by ray: ray r's samples are
/// [offset_r, offset_r + count_r) of each array, with the offsets and counts held beside it.
struct PackedSamples {
	float* t = nullptr;         ///< [n] depth along the ray (the ray parameter, as the dense z)
	float* dt = nullptr;        ///< [n] the interval each sample stands for (same parameter)
	float* points = nullptr;    ///< [n, 3] o + t d
	uint32_t* ray = nullptr;    ///< [n] the sample's ray, an index into its batch
};

/// Numeric precision of the MLP GEMMs. The CPU backend is always fp32.
enum class Precision { FP32, TF32, FP16, BF16 };
Precision parse_precision(const std::string& name);  ///< throws nerf::Error on an unknown name
const char* precision_name(Precision p);

/// One NeRF MLP (coarse or fine) on a backend. It does not own parameters: forward/backward take
/// pointers into the flat parameter buffer. It owns the activations that backward needs, sized for
/// up to `max_batch` samples, so at most one forward may be pending a backward at a time.
class Mlp {
public:
	virtual ~Mlp() = default;
	virtual const MlpLayout& layout() const = 0;
	/// raw: [n, raw_width]; enc_pts: [n, in_pts]; enc_views: [n, in_views] (null without viewdirs).
	/// keep_for_backward = false for rendering (nothing stored; any n, processed in max_batch chunks).
	virtual void forward(float* raw, const float* params, const float* enc_pts, const float* enc_views, size_t n,
	                     bool keep_for_backward) = 0;
	/// dL_dparams (+=) from dL_draw: [n, raw_width], for the n of the last forward with keep_for_backward.
	virtual void backward(float* dL_dparams, const float* params, const float* dL_draw, size_t n) = 0;
	/// A flag in backend memory, nonzero when the last backward found a non-finite gradient and added
	/// nothing to dL_dparams (fp16 loss scaling); valid until the next backward. Null for an MLP that
	/// never skips. Pass it to Backend::adam_step so that the skipped step leaves Adam's state alone.
	virtual const uint32_t* overflow_flag() const { return nullptr; }
};

/// nerf-pytorch's nn.Linear default init for every layer: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
/// weights and biases. Host memory; deterministic in seed.
void init_mlp_params_host(float* params, const MlpLayout& layout, uint64_t seed);

class Backend {
public:
	virtual ~Backend() = default;
	virtual std::string name() const = 0;  ///< "cpu" or "cuda (<device name>)"
	virtual bool is_cuda() const = 0;

	// --- memory ---
	virtual void* allocate_bytes(size_t bytes) = 0;
	virtual void free_bytes(void* p) noexcept = 0;
	virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;    ///< host -> backend
	virtual void download(void* host_dst, const void* src, size_t bytes) = 0;  ///< backend -> host (waits)
	virtual void copy(void* dst, const void* src, size_t bytes) = 0;           ///< backend -> backend
	virtual void fill_zero(void* dst, size_t bytes) = 0;
	virtual void synchronize() = 0;
	template <typename T> Buffer<T> allocate(size_t count) { return Buffer<T>(this, count); }

	// --- stages ---
	/// Rays for flat pixel ids (cameras[k].first_pixel + row * W_k + col for image k) of a camera set whose
	/// poses and per-image cameras are in this backend's memory. rays_o, rays_d, viewdirs: [n_rays, 3].
	/// NDC applied where a camera's ndc is set (viewdirs stay pre-NDC).
	virtual void generate_rays(float* rays_o, float* rays_d, float* viewdirs, const uint32_t* pixel_ids, size_t n_rays,
	                           const CameraSet& cameras) = 0;
	/// target: [n_rays, 3] gathered from images [n_images, H, W, 3] at flat pixel ids.
	virtual void gather_pixels(float* target, const float* images, const uint32_t* pixel_ids, size_t n_rays) = 0;
	/// Training on RGBA scenes with a random background (random_background_target): target [n_rays, 3]
	/// (gathered, composited on white) becomes the pixel on background [n_rays, 3] (written: the colours
	/// drawn), from alpha [pixels] (flat pixel ids as gather_pixels). Ray r draws with counter r.
	virtual void random_background(float* target, float* background, const float* alpha, const uint32_t* pixel_ids,
	                               size_t n_rays, uint64_t seed, uint32_t step) = 0;
	/// z: [n_rays, n_samples]; ray r uses RNG counter ray_offset + r.
	virtual void stratified_samples(float* z, size_t n_rays, int n_samples, uint32_t ray_offset,
	                                const StratifiedSpec& spec) = 0;
	/// enc: [n_rays * n_samples, encoded_width]; points x = o + z d.
	virtual void encode_points(float* enc, const float* rays_o, const float* rays_d, const float* z, size_t n_rays,
	                           int n_samples, const EncodingSpec& spec) = 0;
	/// enc: [n_rays * n_samples, encoded_width]; the ray's viewdir repeated for each sample.
	virtual void encode_views(float* enc, const float* viewdirs, size_t n_rays, int n_samples,
	                          const EncodingSpec& spec) = 0;
	/// raw: [n_rays, n_samples, spec.raw_stride]; z: [n_rays, n_samples]; rays_d: [n_rays, 3].
	virtual void composite_forward(const CompositeOutputs& out, const float* raw, const float* z, const float* rays_d,
	                               size_t n_rays, int n_samples, uint32_t ray_offset, const CompositeSpec& spec) = 0;
	/// dL_draw (overwrite): [n_rays, n_samples, raw_stride] from dL_drgb: [n_rays, 3].
	virtual void composite_backward(float* dL_draw, const float* dL_drgb, const float* raw, const float* z,
	                                const float* rays_d, size_t n_rays, int n_samples, uint32_t ray_offset,
	                                const CompositeSpec& spec) = 0;
	/// z_fine: [n_rays, n_fine] drawn from the coarse weights (sample_pdf on the z midpoints and
	/// weights[1:-1]), then z_all: [n_rays, n_coarse + n_fine] = sort(cat(z_coarse, z_fine)).
	/// z_fine is left as drawn (unsorted unless det), as the reference's z_samples.
	virtual void resample(float* z_all, float* z_fine, const float* z_coarse, const float* weights, size_t n_rays,
	                      int n_coarse, int n_fine, uint32_t ray_offset, const PdfSpec& spec) = 0;
	/// Mean squared error over [n_rays, 3]: adds the mean to *loss (one float in backend memory) and
	/// writes dL_drgb = 2 (rgb - target) / (3 n_rays) * grad_scale (overwrite). Either output may be null.
	virtual void mse_loss(float* loss, float* dL_drgb, const float* rgb, const float* target, size_t n_rays,
	                      float grad_scale) = 0;

	// --- marched samples (occ_grid; include/nerf/math/occupancy.h), packed as PackedSamples ---
	/// offsets: [n + 1], the exclusive prefix sum of counts [n]; offsets[n] is the total.
	virtual void scan_counts(uint32_t* offsets, const uint32_t* counts, size_t n) = 0;
	/// counts: [n_rays], the samples each ray keeps (march_ray); ray r uses RNG counter ray_offset + r.
	virtual void march_count(uint32_t* counts, const float* rays_o, const float* rays_d, size_t n_rays,
	                         const uint8_t* occupied, uint32_t ray_offset, const MarchSpec& spec) = 0;
	/// The same march writing each ray's samples from offsets[r] (scan_counts of march_count's counts).
	virtual void march_fill(const PackedSamples& out, const uint32_t* offsets, const float* rays_o, const float* rays_d,
	                        size_t n_rays, const uint8_t* occupied, uint32_t ray_offset, const MarchSpec& spec) = 0;
	/// enc: [n, encoded_width] of points [n, 3].
	virtual void encode_positions(float* enc, const float* points, size_t n, const EncodingSpec& spec) = 0;
	/// enc: [n, encoded_width]: sample k gets the encoded viewdir of its ray sample_ray[k] (viewdirs: [rays, 3]).
	virtual void encode_views_packed(float* enc, const float* viewdirs, const uint32_t* sample_ray, size_t n,
	                                 const EncodingSpec& spec) = 0;
	/// Compositing of packed rays: ray r composites raw [., raw_stride], t and dt from offsets[r], counts[r]
	/// samples; out.weights, when wanted, is packed like t. Same semantics as composite_forward.
	virtual void composite_forward_packed(const CompositeOutputs& out, const float* raw, const float* t, const float* dt,
	                                      const uint32_t* offsets, const uint32_t* counts, const float* rays_d,
	                                      size_t n_rays, uint32_t ray_offset, const CompositeSpec& spec) = 0;
	/// dL_draw (overwrite, packed like raw; rows of no ray's samples are left alone) from dL_drgb: [n_rays, 3].
	/// n_samples: the size of the packed arrays (every offsets[r] + counts[r] <= n_samples).
	virtual void composite_backward_packed(float* dL_draw, const float* dL_drgb, const float* raw, const float* dt,
	                                       const uint32_t* offsets, const uint32_t* counts, const float* rays_d,
	                                       size_t n_rays, size_t n_samples, uint32_t ray_offset,
	                                       const CompositeSpec& spec) = 0;
	/// kept: [n_rays], early_stop_count of each packed ray from raw [., raw_stride] (density channel 3).
	virtual void early_stop(uint32_t* kept, const float* raw, const float* dt, const uint32_t* offsets,
	                        const uint32_t* counts, const float* rays_d, size_t n_rays, int raw_stride,
	                        float min_transmittance) = 0;
	/// Copies the first kept[r] samples of each ray from `in` at offsets[r] to `out` at new_offsets[r].
	virtual void compact_samples(const PackedSamples& out, const PackedSamples& in, const uint32_t* new_offsets,
	                             const uint32_t* kept, const uint32_t* offsets, size_t n_rays) = 0;

	// --- the occupancy grid's update (density EMA [cells], occupied flags [cells]) ---
	/// chosen: [cells], 1 where this update evaluates the cell (occ_cell_chosen), else 0.
	virtual void occ_choose_cells(uint32_t* chosen, const uint8_t* occupied, const OccUpdateSpec& spec) = 0;
	/// For every chosen cell c (offsets: scan_counts of chosen): cells[offsets[c]] = c and its jittered
	/// point points[offsets[c]] ([n, 3]).
	virtual void occ_cell_points(uint32_t* cells, float* points, const uint32_t* chosen, const uint32_t* offsets,
	                             const OccUpdateSpec& spec) = 0;
	/// density[cells[i]] = occ_ema(density[cells[i]], raw[i, 3]) for i < n (cells distinct).
	virtual void occ_update_density(float* density, const uint32_t* cells, const float* raw, size_t n, int raw_stride,
	                                const OccUpdateSpec& spec) = 0;
	/// occupied: [cells] = occ_flag of each EMA with the mean over all cells; *n_occupied (backend memory)
	/// = how many are occupied.
	virtual void occ_update_flags(uint8_t* occupied, uint32_t* n_occupied, const float* density,
	                              const OccUpdateSpec& spec) = 0;

	// --- the hash-grid (ngp) field's stages (hash_grid.h, spherical_harmonics.h, ngp_field.h) ---
	/// enc: [n, L F] multiresolution hash encoding of points [n, 3] from table [spec.n_entries, F].
	virtual void hash_encode(float* enc, const float* table, const float* points, size_t n,
	                         const HashGridSpec& spec) = 0;
	/// dL_dtable (+=): [spec.n_entries, F] from dL_denc: [n, L F] for the same points. Deterministic on the
	/// CPU at any thread count (each level's scatter is one pass over the samples in order); atomic adds
	/// on CUDA (the order, and so the last bits of a sum into a shared entry, may vary between runs).
	virtual void hash_encode_backward(float* dL_dtable, const float* dL_denc, const float* points, size_t n,
	                                  const HashGridSpec& spec) = 0;
	/// enc rows of enc_stride floats (>= 16): columns 0..15 = SH degree 4 (sh_encode_deg4) of the unit
	/// direction viewdirs[sample_ray[k]] ([rays, 3]); sample_ray null: row k uses viewdirs row k. The
	/// other columns of each row are left alone (so it can fill the first 16 of the colour input).
	virtual void sh_encode(float* enc, int enc_stride, const float* viewdirs, const uint32_t* sample_ray, size_t n) = 0;
	/// From the density network's output [n, 16]: raw[k, 3] = trunc_exp(out[k, 0]) (rows of raw_stride >= 4;
	/// other columns left alone) and colour_in[k, 16..30] = out[k, 1..15] (rows of colour_in_stride >= 31;
	/// colour_in may be null: density only, e.g. the occupancy grid's update).
	virtual void ngp_density_forward(float* raw, int raw_stride, float* colour_in, int colour_in_stride,
	                                 const float* density_out, size_t n) = 0;
	/// dL_ddensity_out (overwrite): [n, 16] from dL_draw[:, 3] (rows of raw_stride) and dL_dcolour_in[:, 16..30]
	/// (rows of colour_in_stride; null: the features get gradient 0).
	virtual void ngp_density_backward(float* dL_ddensity_out, const float* dL_draw, int raw_stride,
	                                  const float* dL_dcolour_in, int colour_in_stride, const float* density_out,
	                                  size_t n) = 0;

	/// One Adam update over n parameters (one network's slice of the flat buffer), torch.optim.Adam
	/// semantics, with spec.weight_decay and spec.skip_zero_grad (optim.h). counter: that network's
	/// AdamCounter (backend memory). skip_flag: null, or a flag in
	/// backend memory (Mlp::overflow_flag); when it is set the update changes nothing but
	/// counter->skipped, as GradScaler skips optimizer.step() (decided on the device: no host sync).
	virtual void adam_step(float* params, float* m, float* v, const float* grads, size_t n, const AdamSpec& spec,
	                       AdamCounter* counter, const uint32_t* skip_flag) = 0;

	// --- timing (bench, progress) ---
	/// Milliseconds between two points in this backend's stream order: CUDA events on CUDA, a
	/// steady clock on the CPU. start() and stop() enqueue; elapsed_ms() waits for stop.
	class Timer {
	public:
		virtual ~Timer() = default;
		virtual void start() = 0;
		virtual void stop() = 0;
		virtual double elapsed_ms() = 0;
	};
	virtual std::unique_ptr<Timer> create_timer() = 0;
	/// Bytes of backend memory allocated now and at most so far (through allocate_bytes).
	virtual size_t current_bytes() const = 0;
	virtual size_t peak_bytes() const = 0;

	/// An MLP for this backend, able to run batches of up to max_batch samples.
	virtual std::unique_ptr<Mlp> create_mlp(const MlpLayout& layout, size_t max_batch, Precision precision) = 0;
	/// A small bias-free MLP (include/nerf/small_mlp.h) for batches of up to max_batch rows kept for
	/// backward. The CPU is always fp32; CUDA runs fp32 or tf32 GEMMs (fp16 / bf16 run as tf32).
	virtual std::unique_ptr<SmallMlp> create_small_mlp(const SmallMlpSpec& spec, size_t max_batch,
	                                                   Precision precision) = 0;
};

template <typename T> Buffer<T>::Buffer(Backend* owner, size_t count) : m_owner(owner), m_count(count) {
	m_data = count ? static_cast<T*>(owner->allocate_bytes(count * sizeof(T))) : nullptr;
}
template <typename T> void Buffer<T>::reset() {
	if (m_data && m_owner) m_owner->free_bytes(m_data);
	m_data = nullptr;
	m_count = 0;
}

/// The CPU reference backend (Eigen; OpenMP threads when available).
std::unique_ptr<Backend> create_cpu_backend(int threads = 0);
/// True when this build has CUDA and a device is present.
bool cuda_available();
/// The CUDA backend on device `device` (throws nerf::Error when CUDA is unavailable). One device per
/// process: further CUDA backends must use the same device (nerf::Error otherwise).
std::unique_ptr<Backend> create_cuda_backend(int device = 0);
/// "cpu", "cuda" or "auto" (cuda when available, else cpu).
std::unique_ptr<Backend> create_backend(const std::string& which, int cpu_threads = 0);

} // namespace nerf
