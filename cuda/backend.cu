// The CUDA backend object: one device, one stream on which every stage is enqueued in order, one
// cuBLASLt handle shared by its MLPs, and the memory accounting. The stages themselves are the
// launchers of rays.cu, encoding.cu, sampling.cu, composite.cu, occupancy.cu, loss.cu, hash_encoding.cu,
// ngp_activations.cu and adam.cu; the MLP is
// mlp.cu. Downloads and synchronize() wait for the stream; everything else is asynchronous.
//
// Scratch that a stage needs per call (resample's per-ray cdf, the compositing backward's alphas,
// the loss's block partials, the scans' CUB storage, the grid's mean) comes from one grow-only workspace: stages run in stream order, so
// they can share it; growing it waits for the stream before freeing the old block.
#include "common.cuh"
#include "launchers.cuh"
#include "mlp.cuh"
#include "small_mlp.cuh"

#include "nerf/allocation_tracker.h"
#include "nerf/cuda_backend.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace nerf {
namespace cuda {
namespace {

/// Owners of CUDA handles, so that a constructor that throws half-way releases what it made.
struct EventDeleter {
	void operator()(CUevent_st* e) const { NERF_CUDA_LOG(cudaEventDestroy(e)); }
};
using UniqueEvent = std::unique_ptr<CUevent_st, EventDeleter>;
UniqueEvent make_event() {
	cudaEvent_t e = nullptr;
	NERF_CUDA_CHECK(cudaEventCreate(&e));
	return UniqueEvent(e);
}
struct StreamDeleter {
	void operator()(CUstream_st* s) const {
		NERF_CUDA_LOG(cudaStreamSynchronize(s));
		NERF_CUDA_LOG(cudaStreamDestroy(s));
	}
};
using UniqueStream = std::unique_ptr<CUstream_st, StreamDeleter>;
struct LtDeleter {
	void operator()(cublasLtContext* lt) const { cublasLtDestroy(lt); }
};
using UniqueLt = std::unique_ptr<cublasLtContext, LtDeleter>;

class CudaTimer final : public Backend::Timer {
public:
	explicit CudaTimer(cudaStream_t stream) : m_stream(stream), m_start(make_event()), m_stop(make_event()) {}
	void start() override { NERF_CUDA_CHECK(cudaEventRecord(m_start.get(), m_stream)); }
	void stop() override { NERF_CUDA_CHECK(cudaEventRecord(m_stop.get(), m_stream)); }
	double elapsed_ms() override {
		NERF_CUDA_CHECK(cudaEventSynchronize(m_stop.get()));
		float ms = 0.0f;
		NERF_CUDA_CHECK(cudaEventElapsedTime(&ms, m_start.get(), m_stop.get()));
		return ms;
	}

private:
	cudaStream_t m_stream;
	UniqueEvent m_start, m_stop;
};

/// One device per process: every CUDA backend of a process uses the device the first one made
/// current (cudaSetDevice is per thread and nerfcore calls it once, at construction), so a second
/// backend on another device is refused instead of silently running on the wrong one.
std::mutex g_device_mutex;
int g_device = -1;
int g_backends = 0;

class CudaBackend final : public Backend {
public:
	explicit CudaBackend(int device) : m_device(device) {
		int count = 0;
		NERF_CUDA_CHECK(cudaGetDeviceCount(&count));
		if (device < 0 || device >= count) NERF_FAIL("CUDA device " << device << " requested but " << count << " present");
		{
			std::lock_guard<std::mutex> lock(g_device_mutex);
			if (g_backends > 0 && g_device != device)
				NERF_FAIL("a CUDA backend on device " << g_device << " exists; nerfcore uses one CUDA device per process "
				                                      << "(device " << device << " requested)");
			NERF_CUDA_CHECK(cudaSetDevice(device));
			g_device = device;
			++g_backends;
		}
		m_registered = true;
		cudaDeviceProp prop{};
		NERF_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
		m_name = std::string("cuda (") + prop.name + ")";
		cudaStream_t stream = nullptr;
		NERF_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
		m_stream.reset(stream);
		cublasLtHandle_t lt = nullptr;
		NERF_CUBLAS_CHECK(cublasLtCreate(&lt));
		m_lt.reset(lt);
	}
	~CudaBackend() override {
		m_workspace.reset();
		if (m_allocations.live_allocations() > 0)
			std::fprintf(stderr, "nerfcore: cuda backend destroyed with %zu live allocations (%zu bytes)\n",
			             m_allocations.live_allocations(), m_allocations.current_bytes());
	}

	std::string name() const override { return m_name; }
	bool is_cuda() const override { return true; }

	// --- memory ---
	void* allocate_bytes(size_t bytes) override {
		void* p = nullptr;
		const cudaError_t err = cudaMalloc(&p, std::max<size_t>(bytes, 1));
		if (err != cudaSuccess) {
			(void)cudaGetLastError();  // cudaMalloc's error is not sticky; clear it for later launch checks
			NERF_FAIL("cuda backend: cudaMalloc of " << bytes << " bytes failed (" << cudaGetErrorString(err) << "); "
			                                         << m_allocations.current_bytes() << " bytes in use");
		}
		m_allocations.add(p, bytes);
		return p;
	}
	void free_bytes(void* p) noexcept override {
		if (!p) return;
		if (!m_allocations.remove(p)) {
			std::fprintf(stderr, "nerfcore: cuda backend asked to free %p, which it did not allocate\n", p);
			return;
		}
		// cudaFree waits for the device, so memory still used by queued work is not reused early.
		NERF_CUDA_LOG(cudaFree(p));
	}
	// Pageable host memory is staged by the driver before cudaMemcpyAsync returns, so the caller may
	// reuse host_src at once; the copy itself stays in stream order.
	void upload(void* dst, const void* host_src, size_t bytes) override {
		if (bytes == 0) return;
		NERF_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, m_stream.get()));
	}
	void download(void* host_dst, const void* src, size_t bytes) override {
		if (bytes == 0) return;
		NERF_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, m_stream.get()));
		NERF_CUDA_CHECK(cudaStreamSynchronize(m_stream.get()));
	}
	void copy(void* dst, const void* src, size_t bytes) override {
		if (bytes == 0) return;
		NERF_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, m_stream.get()));
	}
	void fill_zero(void* dst, size_t bytes) override {
		if (bytes == 0) return;
		NERF_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, m_stream.get()));
	}
	void synchronize() override { NERF_CUDA_CHECK(cudaStreamSynchronize(m_stream.get())); }
	std::unique_ptr<Timer> create_timer() override { return std::make_unique<CudaTimer>(m_stream.get()); }
	size_t current_bytes() const override { return m_allocations.current_bytes(); }
	size_t peak_bytes() const override { return m_allocations.peak_bytes(); }

	// --- stages ---
	void generate_rays(float* rays_o, float* rays_d, float* viewdirs, const uint32_t* pixel_ids, size_t n_rays,
	                   const CameraSet& cameras) override {
		cuda::generate_rays(rays_o, rays_d, viewdirs, pixel_ids, n_rays, cameras, m_stream.get());
	}
	void gather_pixels(float* target, const float* images, const uint32_t* pixel_ids, size_t n_rays) override {
		cuda::gather_pixels(target, images, pixel_ids, n_rays, m_stream.get());
	}
	void random_background(float* target, float* background, const float* alpha, const uint32_t* pixel_ids,
	                       size_t n_rays, uint64_t seed, uint32_t step) override {
		cuda::random_background(target, background, alpha, pixel_ids, n_rays, seed, step, m_stream.get());
	}
	void stratified_samples(float* z, size_t n_rays, int n_samples, uint32_t ray_offset,
	                        const StratifiedSpec& spec) override {
		cuda::stratified_samples(z, n_rays, n_samples, ray_offset, spec, m_stream.get());
	}
	void encode_points(float* enc, const float* rays_o, const float* rays_d, const float* z, size_t n_rays,
	                   int n_samples, const EncodingSpec& spec) override {
		cuda::encode_points(enc, rays_o, rays_d, z, n_rays, n_samples, spec, m_stream.get());
	}
	void encode_views(float* enc, const float* viewdirs, size_t n_rays, int n_samples, const EncodingSpec& spec) override {
		cuda::encode_views(enc, viewdirs, n_rays, n_samples, spec, m_stream.get());
	}
	void composite_forward(const CompositeOutputs& out, const float* raw, const float* z, const float* rays_d,
	                       size_t n_rays, int n_samples, uint32_t ray_offset, const CompositeSpec& spec) override {
		cuda::composite_forward(out, raw, z, rays_d, n_rays, n_samples, ray_offset, spec, m_stream.get());
	}
	void composite_backward(float* dL_draw, const float* dL_drgb, const float* raw, const float* z, const float* rays_d,
	                        size_t n_rays, int n_samples, uint32_t ray_offset, const CompositeSpec& spec) override {
		if (n_rays == 0) return;
		NERF_CHECK(n_samples > 0);
		float* alphas = static_cast<float*>(workspace(n_rays * (size_t)n_samples * sizeof(float)));
		cuda::composite_backward(dL_draw, alphas, dL_drgb, raw, z, rays_d, n_rays, n_samples, ray_offset, spec, m_stream.get());
	}
	void resample(float* z_all, float* z_fine, const float* z_coarse, const float* weights, size_t n_rays, int n_coarse,
	              int n_fine, uint32_t ray_offset, const PdfSpec& spec) override {
		NERF_CHECK(n_coarse >= 3 && n_fine >= 0);
		if (n_rays == 0) return;
		float* scratch = static_cast<float*>(workspace(resample_scratch_floats(n_rays, n_coarse, n_fine) * sizeof(float)));
		cuda::resample(z_all, z_fine, scratch, z_coarse, weights, n_rays, n_coarse, n_fine, ray_offset, spec, m_stream.get());
	}
	void mse_loss(float* loss, float* dL_drgb, const float* rgb, const float* target, size_t n_rays,
	              float grad_scale) override {
		if (n_rays == 0) return;
		double* partials = static_cast<double*>(workspace(mse_loss_scratch_doubles(n_rays) * sizeof(double)));
		cuda::mse_loss(loss, dL_drgb, partials, rgb, target, n_rays, grad_scale, m_stream.get());
	}

	// --- marched samples and the occupancy grid (occupancy.cu, composite.cu, encoding.cu) ---
	void scan_counts(uint32_t* offsets, const uint32_t* counts, size_t n) override {
		const size_t bytes = n ? scan_counts_scratch_bytes(n) : 0;
		cuda::scan_counts(offsets, bytes ? workspace(bytes) : nullptr, bytes, counts, n, m_stream.get());
	}
	void march_count(uint32_t* counts, const float* rays_o, const float* rays_d, size_t n_rays, const uint8_t* occupied,
	                 uint32_t ray_offset, const MarchSpec& spec) override {
		cuda::march_count(counts, rays_o, rays_d, n_rays, occupied, ray_offset, spec, m_stream.get());
	}
	void march_fill(const PackedSamples& out, const uint32_t* offsets, const float* rays_o, const float* rays_d,
	                size_t n_rays, const uint8_t* occupied, uint32_t ray_offset, const MarchSpec& spec) override {
		cuda::march_fill(out, offsets, rays_o, rays_d, n_rays, occupied, ray_offset, spec, m_stream.get());
	}
	void encode_positions(float* enc, const float* points, size_t n, const EncodingSpec& spec) override {
		cuda::encode_positions(enc, points, n, spec, m_stream.get());
	}
	void encode_views_packed(float* enc, const float* viewdirs, const uint32_t* sample_ray, size_t n,
	                         const EncodingSpec& spec) override {
		cuda::encode_views_packed(enc, viewdirs, sample_ray, n, spec, m_stream.get());
	}
	void composite_forward_packed(const CompositeOutputs& out, const float* raw, const float* t, const float* dt,
	                              const uint32_t* offsets, const uint32_t* counts, const float* rays_d, size_t n_rays,
	                              uint32_t ray_offset, const CompositeSpec& spec) override {
		cuda::composite_forward_packed(out, raw, t, dt, offsets, counts, rays_d, n_rays, ray_offset, spec, m_stream.get());
	}
	void composite_backward_packed(float* dL_draw, const float* dL_drgb, const float* raw, const float* dt,
	                               const uint32_t* offsets, const uint32_t* counts, const float* rays_d, size_t n_rays,
	                               size_t n_samples, uint32_t ray_offset, const CompositeSpec& spec) override {
		if (n_rays == 0) return;
		float* alphas = static_cast<float*>(workspace(std::max<size_t>(n_samples, 1) * sizeof(float)));
		cuda::composite_backward_packed(dL_draw, alphas, dL_drgb, raw, dt, offsets, counts, rays_d, n_rays, ray_offset, spec,
		                                m_stream.get());
	}
	void early_stop(uint32_t* kept, const float* raw, const float* dt, const uint32_t* offsets, const uint32_t* counts,
	                const float* rays_d, size_t n_rays, int raw_stride, float min_transmittance) override {
		cuda::early_stop(kept, raw, dt, offsets, counts, rays_d, n_rays, raw_stride, min_transmittance, m_stream.get());
	}
	void compact_samples(const PackedSamples& out, const PackedSamples& in, const uint32_t* new_offsets,
	                     const uint32_t* kept, const uint32_t* offsets, size_t n_rays) override {
		cuda::compact_samples(out, in, new_offsets, kept, offsets, n_rays, m_stream.get());
	}
	void occ_choose_cells(uint32_t* chosen, const uint8_t* occupied, const OccUpdateSpec& spec) override {
		cuda::occ_choose_cells(chosen, occupied, spec, m_stream.get());
	}
	void occ_cell_points(uint32_t* cells, float* points, const uint32_t* chosen, const uint32_t* offsets,
	                     const OccUpdateSpec& spec) override {
		cuda::occ_cell_points(cells, points, chosen, offsets, spec, m_stream.get());
	}
	void occ_update_density(float* density, const uint32_t* cells, const float* raw, size_t n, int raw_stride,
	                        const OccUpdateSpec& spec) override {
		cuda::occ_update_density(density, cells, raw, n, raw_stride, spec, m_stream.get());
	}
	void occ_update_flags(uint8_t* occupied, uint32_t* n_occupied, const float* density, const OccUpdateSpec& spec) override {
		double* scratch = static_cast<double*>(workspace(occ_update_flags_scratch_doubles(spec) * sizeof(double)));
		cuda::occ_update_flags(occupied, n_occupied, scratch, density, spec, m_stream.get());
	}

	// --- the ngp field's stages (hash_encoding.cu, ngp_activations.cu) ---
	void hash_encode(float* enc, const float* table, const float* points, size_t n, const HashGridSpec& spec) override {
		cuda::hash_encode(enc, table, points, n, spec, m_stream.get());
	}
	void hash_encode_backward(float* dL_dtable, const float* dL_denc, const float* points, size_t n,
	                          const HashGridSpec& spec) override {
		cuda::hash_encode_backward(dL_dtable, dL_denc, points, n, spec, m_stream.get());
	}
	void sh_encode(float* enc, int enc_stride, const float* viewdirs, const uint32_t* sample_ray, size_t n) override {
		cuda::sh_encode(enc, enc_stride, viewdirs, sample_ray, n, m_stream.get());
	}
	void ngp_density_forward(float* raw, int raw_stride, float* colour_in, int colour_in_stride, const float* density_out,
	                         size_t n) override {
		cuda::ngp_density_forward(raw, raw_stride, colour_in, colour_in_stride, density_out, n, m_stream.get());
	}
	void ngp_density_backward(float* dL_ddensity_out, const float* dL_draw, int raw_stride, const float* dL_dcolour_in,
	                          int colour_in_stride, const float* density_out, size_t n) override {
		cuda::ngp_density_backward(dL_ddensity_out, dL_draw, raw_stride, dL_dcolour_in, colour_in_stride, density_out, n,
		                           m_stream.get());
	}

	void adam_step(float* params, float* m, float* v, const float* grads, size_t n, const AdamSpec& spec,
	               AdamCounter* counter, const uint32_t* skip_flag) override {
		cuda::adam_step(params, m, v, grads, n, spec, counter, skip_flag, m_stream.get());
	}

	std::unique_ptr<Mlp> create_mlp(const MlpLayout& layout, size_t max_batch, Precision precision) override {
		return create_mlp_with(layout, max_batch, precision, MlpEpilogue::Fused);
	}
	std::unique_ptr<Mlp> create_mlp_with(const MlpLayout& layout, size_t max_batch, Precision precision,
	                                     MlpEpilogue epilogue) {
		return make_mlp(MlpContext{this, m_stream.get(), m_lt.get()}, layout, max_batch, precision, epilogue);
	}
	std::unique_ptr<SmallMlp> create_small_mlp(const SmallMlpSpec& spec, size_t max_batch, Precision precision) override {
		return create_small_mlp_with(spec, max_batch, precision, MlpEpilogue::Fused);
	}
	std::unique_ptr<SmallMlp> create_small_mlp_with(const SmallMlpSpec& spec, size_t max_batch, Precision precision,
	                                                MlpEpilogue epilogue) {
		return make_small_mlp(MlpContext{this, m_stream.get(), m_lt.get()}, spec, max_batch, precision, epilogue);
	}

private:
	/// At least `bytes` of scratch, valid until the next workspace() call (stream order protects it).
	void* workspace(size_t bytes) {
		if (bytes > m_workspace.size()) {
			// The old block may still be read by queued kernels; cudaFree in free_bytes waits for them.
			m_workspace.reset();
			m_workspace = allocate<char>(std::max(bytes, m_workspace_floor));
		}
		return m_workspace.data();
	}

	/// Releases this backend's claim on the process's device last (declared first: destroyed last).
	struct DeviceClaim {
		bool* registered;
		~DeviceClaim() {
			if (!*registered) return;
			std::lock_guard<std::mutex> lock(g_device_mutex);
			--g_backends;
		}
	};
	bool m_registered = false;
	DeviceClaim m_claim{&m_registered};
	int m_device;
	std::string m_name;
	UniqueLt m_lt;
	UniqueStream m_stream;  // destroyed first: its deleter waits for queued work before anything else goes
	AllocationTracker m_allocations;
	static constexpr size_t m_workspace_floor = 1u << 20;
	Buffer<char> m_workspace;
};

} // namespace
} // namespace cuda

bool cuda_available() {
	int count = 0;
	const cudaError_t err = cudaGetDeviceCount(&count);
	if (err != cudaSuccess) {
		(void)cudaGetLastError();  // e.g. no driver: clear it so it does not surface at a later call
		return false;
	}
	return count > 0;
}

std::unique_ptr<Backend> create_cuda_backend(int device) {
	if (!cuda_available()) NERF_FAIL("no CUDA device available (cudaGetDeviceCount found none or failed)");
	return std::make_unique<cuda::CudaBackend>(device);
}

std::unique_ptr<Mlp> create_cuda_mlp(Backend& backend, const MlpLayout& layout, size_t max_batch, Precision precision,
                                     MlpEpilogue epilogue) {
	auto* cuda_backend = dynamic_cast<cuda::CudaBackend*>(&backend);
	if (!cuda_backend) NERF_FAIL("create_cuda_mlp: backend '" << backend.name() << "' is not a CUDA backend");
	return cuda_backend->create_mlp_with(layout, max_batch, precision, epilogue);
}

std::unique_ptr<SmallMlp> create_cuda_small_mlp(Backend& backend, const SmallMlpSpec& spec, size_t max_batch,
                                                Precision precision, MlpEpilogue epilogue) {
	auto* cuda_backend = dynamic_cast<cuda::CudaBackend*>(&backend);
	if (!cuda_backend) NERF_FAIL("create_cuda_small_mlp: backend '" << backend.name() << "' is not a CUDA backend");
	return cuda_backend->create_small_mlp_with(spec, max_batch, precision, epilogue);
}

} // namespace nerf
