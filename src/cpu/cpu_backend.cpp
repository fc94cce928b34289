// The CPU reference backend: each stage is the plainest loop over rays or elements that calls the
// shared math of include/nerf/math/ (the CUDA kernels call the same functions), parallel over rays
// with OpenMP. Results do not depend on the thread count except where noted (the loss sum).
#include "cpu_backend.h"
#include "../parallel.h"

#include "nerf/allocation_tracker.h"
#include "nerf/common.h"

#include <Eigen/Core>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __linux__
#include <sys/mman.h>
#endif

namespace nerf {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kHugePage = 2u << 20;
constexpr size_t kHugePageThreshold = 4u << 20;
constexpr size_t kMinParallelWork = kCpuMinParallelWork;

class CpuTimer final : public Backend::Timer {
public:
	void start() override { m_start = std::chrono::steady_clock::now(); }
	void stop() override { m_stop = std::chrono::steady_clock::now(); }
	double elapsed_ms() override { return std::chrono::duration<double, std::milli>(m_stop - m_start).count(); }

private:
	std::chrono::steady_clock::time_point m_start, m_stop;
};

class CpuBackend final : public Backend {
public:
	explicit CpuBackend(int threads) {
#ifdef _OPENMP
		if (threads > 0) omp_set_num_threads(threads);
		// The MLP parallelises over row blocks itself; Eigen's own GEMM threading stays off.
		Eigen::setNbThreads(1);
#else
		(void)threads;
#endif
	}
	~CpuBackend() override = default;

	std::string name() const override { return "cpu"; }
	bool is_cuda() const override { return false; }

	void* allocate_bytes(size_t bytes) override {
		// Large buffers go on 2 MiB pages where the kernel offers them (transparent huge pages, also in
		// its madvise mode): the hash encoding reads its 48 MB table (and updates its gradient) at random,
		// and on 4 KiB pages nearly every fine-level lookup also missed the TLB (measured: 2^18 samples'
		// forward 126 -> 108 ms, backward 161 -> 138 ms on one thread). The advice is only advice.
		const bool huge = bytes >= kHugePageThreshold;
		const size_t align = huge ? kHugePage : kAlignment;
		const size_t rounded = (bytes + align - 1) / align * align;
		void* p = std::aligned_alloc(align, rounded ? rounded : align);
		if (!p) NERF_FAIL("cpu backend: out of memory allocating " << bytes << " bytes");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
		if (huge) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
		m_allocations.add(p, bytes);
		return p;
	}
	void free_bytes(void* p) noexcept override {
		if (!p) return;
		m_allocations.remove(p);
		std::free(p);
	}
	void upload(void* dst, const void* src, size_t bytes) override { copy_bytes(dst, src, bytes); }
	void download(void* dst, const void* src, size_t bytes) override { copy_bytes(dst, src, bytes); }
	void copy(void* dst, const void* src, size_t bytes) override { copy_bytes(dst, src, bytes); }
	void fill_zero(void* dst, size_t bytes) override {
		if (bytes) std::memset(dst, 0, bytes);
	}
	void synchronize() override {}
	std::unique_ptr<Timer> create_timer() override { return std::make_unique<CpuTimer>(); }
	size_t current_bytes() const override { return m_allocations.current_bytes(); }
	size_t peak_bytes() const override { return m_allocations.peak_bytes(); }

	void generate_rays(float* rays_o, float* rays_d, float* viewdirs, const uint32_t* pixel_ids, size_t n_rays,
	                   const CameraSet& cameras) override {
		NERF_CHECK(n_rays == 0 || (cameras.poses && cameras.cameras && cameras.n_images > 0));
#pragma omp parallel for schedule(static) if (n_rays * 64 >= kMinParallelWork)
		for (long r = 0; r < (long)n_rays; ++r)
			pixel_ray(rays_o + 3 * r, rays_d + 3 * r, viewdirs + 3 * r, pixel_ids[r], cameras);
	}

	void gather_pixels(float* target, const float* images, const uint32_t* pixel_ids, size_t n_rays) override {
		for (size_t r = 0; r < n_rays; ++r)
			for (int c = 0; c < 3; ++c) target[3 * r + c] = images[3 * (size_t)pixel_ids[r] + c];
	}

	void random_background(float* target, float* background, const float* alpha, const uint32_t* pixel_ids,
	                       size_t n_rays, uint64_t seed, uint32_t step) override {
		for (size_t r = 0; r < n_rays; ++r)
			random_background_target(target + 3 * r, background + 3 * r, alpha[pixel_ids[r]], seed, step, (uint32_t)r);
	}

	void stratified_samples(float* z, size_t n_rays, int n_samples, uint32_t ray_offset,
	                        const StratifiedSpec& spec) override {
#pragma omp parallel for schedule(static) if (n_rays * n_samples >= kMinParallelWork)
		for (long r = 0; r < (long)n_rays; ++r)
			nerf::stratified_samples(z + (size_t)r * n_samples, n_samples, ray_offset + (uint32_t)r, spec);
	}

	void encode_points(float* enc, const float* rays_o, const float* rays_d, const float* z, size_t n_rays,
	                   int n_samples, const EncodingSpec& spec) override {
		const int width = encoded_width(spec);
#pragma omp parallel for schedule(static) if (n_rays * n_samples * width >= kMinParallelWork)
		for (long r = 0; r < (long)n_rays; ++r) {
			const float* o = rays_o + 3 * r;
			const float* d = rays_d + 3 * r;
			for (int k = 0; k < n_samples; ++k) {
				const size_t sample = (size_t)r * n_samples + k;
				const float t = z[sample];
				const float point[3] = {o[0] + d[0] * t, o[1] + d[1] * t, o[2] + d[2] * t};
				positional_encode(enc + sample * width, point, spec);
			}
		}
	}

	void encode_views(float* enc, const float* viewdirs, size_t n_rays, int n_samples, const EncodingSpec& spec) override {
		const int width = encoded_width(spec);
#pragma omp parallel for schedule(static) if (n_rays * width >= kMinParallelWork)
		for (long r = 0; r < (long)n_rays; ++r) {
			float* first = enc + (size_t)r * n_samples * width;
			positional_encode(first, viewdirs + 3 * r, spec);
			for (int k = 1; k < n_samples; ++k) std::memcpy(first + (size_t)k * width, first, sizeof(float) * width);
		}
	}

	void composite_forward(const CompositeOutputs& out, const float* raw, const float* z, const float* rays_d,
	                       size_t n_rays, int n_samples, uint32_t ray_offset, const CompositeSpec& spec) override {
#pragma omp parallel for schedule(static) if (n_rays * n_samples * 16 >= kMinParallelWork)
		for (long r = 0; r < (long)n_rays; ++r) {
			const RayOutputs ray = composite_ray(out.weights ? out.weights + (size_t)r * n_samples : nullptr,
			                                     raw + (size_t)r * n_samples * spec.raw_stride, z + (size_t)r * n_samples,
			                                     rays_d + 3 * r, n_samples, ray_offset + (uint32_t)r, spec);
			store_ray_outputs(out.rgb, out.depth, out.disp, out.acc, ray, r);
		}
	}

	void composite_backward(float* dL_draw, const float* dL_drgb, const float* raw, const float* z, const float* rays_d,
	                        size_t n_rays, int n_samples, uint32_t ray_offset, const CompositeSpec& spec) override {
		ParallelErrors errors;
#pragma omp parallel if (n_rays * n_samples * 32 >= kMinParallelWork)
		{
			std::vector<float> alpha_scratch;
			errors.run([&] { alpha_scratch.resize(n_samples); });
#pragma omp for schedule(static)
			for (long r = 0; r < (long)n_rays; ++r) {
				errors.run([&] {
					const size_t first = (size_t)r * n_samples;
					composite_ray_backward(dL_draw + first * spec.raw_stride, dL_drgb + 3 * r, raw + first * spec.raw_stride,
					                       z + first, rays_d + 3 * r, n_samples, ray_offset + (uint32_t)r, spec,
					                       alpha_scratch.data());
				});
			}
		}
		errors.rethrow();
	}

	void resample(float* z_all, float* z_fine, const float* z_coarse, const float* weights, size_t n_rays, int n_coarse,
	              int n_fine, uint32_t ray_offset, const PdfSpec& spec) override {
		NERF_CHECK(n_coarse >= 3);
		ParallelErrors errors;
#pragma omp parallel if (n_rays * (n_coarse + n_fine) * 8 >= kMinParallelWork)
		{
			std::vector<float> mids, cdf, sorted_fine;
			errors.run([&] {
				mids.resize(n_coarse - 1);
				cdf.resize(n_coarse - 1);
				sorted_fine.resize(n_fine);
			});
#pragma omp for schedule(static)
			for (long r = 0; r < (long)n_rays; ++r) {
				errors.run([&] {
					const float* zc = z_coarse + (size_t)r * n_coarse;
					float* zf = z_fine + (size_t)r * n_fine;
					for (int k = 0; k + 1 < n_coarse; ++k) mids[k] = 0.5f * (zc[k + 1] + zc[k]);
					// weights[1:-1] pair with the n_coarse - 1 midpoints as bin edges.
					sample_pdf(zf, mids.data(), weights + (size_t)r * n_coarse + 1, n_coarse - 1, n_fine,
					           ray_offset + (uint32_t)r, spec, cdf.data());
					std::copy(zf, zf + n_fine, sorted_fine.begin());
					sort_small(sorted_fine.data(), n_fine);
					merge_sorted(z_all + (size_t)r * (n_coarse + n_fine), zc, n_coarse, sorted_fine.data(), n_fine);
				});
			}
		}
		errors.rethrow();
	}

	void mse_loss(float* loss, float* dL_drgb, const float* rgb, const float* target, size_t n_rays,
	              float grad_scale) override {
		const size_t n = 3 * n_rays;
		// Summed in double in a fixed order, so the value is independent of the thread count.
		double sum = 0.0;
		for (size_t i = 0; i < n; ++i) {
			const float diff = rgb[i] - target[i];
			sum += (double)diff * diff;
			if (dL_drgb) dL_drgb[i] = 2.0f * diff / (float)n * grad_scale;
		}
		if (loss) *loss += (float)(sum / (double)n);
	}

	void scan_counts(uint32_t* offsets, const uint32_t* counts, size_t n) override {
		uint32_t running = 0;
		for (size_t i = 0; i < n; ++i) {
			offsets[i] = running;
			running += counts[i];
		}
		offsets[n] = running;
	}

	// march_fill repeats march_count's march over the same rays (the count-scan-fill sequence a GPU
	// needs); on the CPU march_count keeps each ray's sample depths and march_fill copies them, which
	// halves the marching. The points are recomputed from the depths by the same expression, so the
	// outputs are the bits a second march would write. A fill that does not follow a count of the same
	// rays (pointers, the first ray's values, the spec) marches again.
	void march_count(uint32_t* counts, const float* rays_o, const float* rays_d, size_t n_rays, const uint8_t* occupied,
	                 uint32_t ray_offset, const MarchSpec& spec) override {
		MarchCache& cache = m_march_cache;
		cache.valid = false;
		const size_t n_chunks = (n_rays + kMarchChunk - 1) / kMarchChunk;
		cache.chunks.resize(n_chunks);
		cache.dt.resize(n_rays);
		cache.first.resize(n_rays);
		cache.count.resize(n_rays);
		ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1) if (n_rays * spec.max_steps >= kMinParallelWork)
		for (long c = 0; c < (long)n_chunks; ++c) {
			errors.run([&] {
				std::vector<float>& t = cache.chunks[c];
				t.clear();
				const size_t end = std::min(n_rays, (size_t)(c + 1) * kMarchChunk);
				std::vector<float> ray_t(spec.max_steps), ray_dt(spec.max_steps), points(3 * (size_t)spec.max_steps);
				for (size_t r = (size_t)c * kMarchChunk; r < end; ++r) {
					const uint32_t count = march_ray(ray_t.data(), ray_dt.data(), points.data(), rays_o + 3 * r, rays_d + 3 * r,
					                                 occupied, ray_offset + (uint32_t)r, spec);
					counts[r] = count;
					cache.count[r] = count;
					cache.first[r] = (uint32_t)t.size();
					cache.dt[r] = count ? ray_dt[0] : 0.0f;
					t.insert(t.end(), ray_t.begin(), ray_t.begin() + count);
				}
			});
		}
		errors.rethrow();
		cache.rays_o = rays_o;
		cache.rays_d = rays_d;
		cache.occupied = occupied;
		cache.n_rays = n_rays;
		cache.ray_offset = ray_offset;
		cache.spec = spec;
		if (n_rays) std::copy(rays_o, rays_o + 3, cache.first_ray);
		cache.valid = true;
	}

	void march_fill(const PackedSamples& out, const uint32_t* offsets, const float* rays_o, const float* rays_d,
	                size_t n_rays, const uint8_t* occupied, uint32_t ray_offset, const MarchSpec& spec) override {
		const MarchCache& cache = m_march_cache;
		const bool cached = cache.valid && cache.rays_o == rays_o && cache.rays_d == rays_d && cache.occupied == occupied &&
		                    n_rays <= cache.n_rays && cache.ray_offset == ray_offset && same_march(cache.spec, spec) &&
		                    (n_rays == 0 || std::equal(rays_o, rays_o + 3, cache.first_ray));
#pragma omp parallel for schedule(dynamic, 256) if (n_rays * spec.max_steps >= kMinParallelWork)
		for (long r = 0; r < (long)n_rays; ++r) {
			const uint32_t first = offsets[r];
			uint32_t count = 0;
			if (cached) {
				count = cache.count[r];
				const float* t = cache.chunks[(size_t)r / kMarchChunk].data() + cache.first[r];
				for (uint32_t k = 0; k < count; ++k) {
					out.t[first + k] = t[k];
					out.dt[first + k] = cache.dt[r];
					march_point(out.points + 3 * ((size_t)first + k), rays_o + 3 * r, rays_d + 3 * r, t[k]);
				}
			} else {
				count = march_ray(out.t + first, out.dt + first, out.points + 3 * (size_t)first, rays_o + 3 * r,
				                  rays_d + 3 * r, occupied, ray_offset + (uint32_t)r, spec);
			}
			for (uint32_t k = 0; k < count; ++k) out.ray[first + k] = (uint32_t)r;
		}
	}

	void encode_positions(float* enc, const float* points, size_t n, const EncodingSpec& spec) override {
		const int width = encoded_width(spec);
#pragma omp parallel for schedule(static) if (n * width >= kMinParallelWork)
		for (long i = 0; i < (long)n; ++i) positional_encode(enc + (size_t)i * width, points + 3 * i, spec);
	}

	void encode_views_packed(float* enc, const float* viewdirs, const uint32_t* sample_ray, size_t n,
	                         const EncodingSpec& spec) override {
		const int width = encoded_width(spec);
#pragma omp parallel for schedule(static) if (n * width >= kMinParallelWork)
		for (long i = 0; i < (long)n; ++i) positional_encode(enc + (size_t)i * width, viewdirs + 3 * (size_t)sample_ray[i], spec);
	}

	void composite_forward_packed(const CompositeOutputs& out, const float* raw, const float* t, const float* dt,
	                              const uint32_t* offsets, const uint32_t* counts, const float* rays_d, size_t n_rays,
	                              uint32_t ray_offset, const CompositeSpec& spec) override {
#pragma omp parallel for schedule(dynamic, 64) if (n_rays * 64 >= kMinParallelWork)
		for (long r = 0; r < (long)n_rays; ++r) {
			const size_t first = offsets[r];
			const RayOutputs ray = composite_ray_packed(out.weights ? out.weights + first : nullptr,
			                                            raw + first * spec.raw_stride, t + first, dt + first, rays_d + 3 * r,
			                                            (int)counts[r], ray_offset + (uint32_t)r, spec,
			                                            ray_background(spec, (size_t)r));
			store_ray_outputs(out.rgb, out.depth, out.disp, out.acc, ray, r);
		}
	}

	void composite_backward_packed(float* dL_draw, const float* dL_drgb, const float* raw, const float* dt,
	                               const uint32_t* offsets, const uint32_t* counts, const float* rays_d, size_t n_rays,
	                               size_t, uint32_t ray_offset, const CompositeSpec& spec) override {
		uint32_t longest = 0;
		for (size_t r = 0; r < n_rays; ++r) longest = std::max(longest, counts[r]);
		ParallelErrors errors;
#pragma omp parallel if (n_rays * 64 >= kMinParallelWork)
		{
			std::vector<float> alpha_scratch;
			errors.run([&] { alpha_scratch.resize(longest); });
#pragma omp for schedule(dynamic, 64)
			for (long r = 0; r < (long)n_rays; ++r) {
				errors.run([&] {
					const size_t first = offsets[r];
					composite_ray_packed_backward(dL_draw + first * spec.raw_stride, dL_drgb + 3 * r,
					                              raw + first * spec.raw_stride, dt + first, rays_d + 3 * r, (int)counts[r],
					                              ray_offset + (uint32_t)r, spec, alpha_scratch.data(),
					                              ray_background(spec, (size_t)r));
				});
			}
		}
		errors.rethrow();
	}

	void early_stop(uint32_t* kept, const float* raw, const float* dt, const uint32_t* offsets, const uint32_t* counts,
	                const float* rays_d, size_t n_rays, int raw_stride, float min_transmittance) override {
#pragma omp parallel for schedule(dynamic, 256) if (n_rays * 64 >= kMinParallelWork)
		for (long r = 0; r < (long)n_rays; ++r) {
			const size_t first = offsets[r];
			kept[r] = (uint32_t)early_stop_count(raw + first * raw_stride, dt + first, rays_d + 3 * r, (int)counts[r],
			                                     raw_stride, min_transmittance);
		}
	}

	void compact_samples(const PackedSamples& out, const PackedSamples& in, const uint32_t* new_offsets,
	                     const uint32_t* kept, const uint32_t* offsets, size_t n_rays) override {
#pragma omp parallel for schedule(static) if (n_rays * 64 >= kMinParallelWork)
		for (long r = 0; r < (long)n_rays; ++r) {
			const size_t from = offsets[r], to = new_offsets[r], n = kept[r];
			std::memmove(out.t + to, in.t + from, n * sizeof(float));
			std::memmove(out.dt + to, in.dt + from, n * sizeof(float));
			std::memmove(out.points + 3 * to, in.points + 3 * from, 3 * n * sizeof(float));
			std::memmove(out.ray + to, in.ray + from, n * sizeof(uint32_t));
		}
	}

	void occ_choose_cells(uint32_t* chosen, const uint8_t* occupied, const OccUpdateSpec& spec) override {
		const uint32_t n = occ_cell_count(spec.grid);
#pragma omp parallel for schedule(static) if (n >= kMinParallelWork)
		for (long c = 0; c < (long)n; ++c) chosen[c] = occ_cell_chosen((uint32_t)c, occupied[c] != 0, spec) ? 1u : 0u;
	}

	void occ_cell_points(uint32_t* cells, float* points, const uint32_t* chosen, const uint32_t* offsets,
	                     const OccUpdateSpec& spec) override {
		const uint32_t n = occ_cell_count(spec.grid);
#pragma omp parallel for schedule(static) if (n >= kMinParallelWork)
		for (long c = 0; c < (long)n; ++c) {
			if (!chosen[c]) continue;
			const uint32_t slot = offsets[c];
			cells[slot] = (uint32_t)c;
			occ_cell_point(points + 3 * (size_t)slot, (uint32_t)c, spec);
		}
	}

	void occ_update_density(float* density, const uint32_t* cells, const float* raw, size_t n, int raw_stride,
	                        const OccUpdateSpec& spec) override {
#pragma omp parallel for schedule(static) if (n >= kMinParallelWork)
		for (long i = 0; i < (long)n; ++i)
			density[cells[i]] = occ_ema(density[cells[i]], raw[(size_t)i * raw_stride + 3], spec);
	}

	void occ_update_flags(uint8_t* occupied, uint32_t* n_occupied, const float* density, const OccUpdateSpec& spec) override {
		const uint32_t n = occ_cell_count(spec.grid);
		// Summed in double in a fixed order, so the threshold is independent of the thread count.
		double sum = 0.0;
		for (uint32_t c = 0; c < n; ++c) sum += density[c];
		const double mean = sum / (double)n;
		uint32_t count = 0;
#pragma omp parallel for schedule(static) reduction(+ : count) if (n >= kMinParallelWork)
		for (long c = 0; c < (long)n; ++c) {
			occupied[c] = occ_flag(density[c], mean, spec);
			count += occupied[c];
		}
		*n_occupied = count;
	}

	void occ_coarse_flags(uint8_t* coarse, const uint8_t* occupied, const OccGridSpec& grid, int factor) override {
		NERF_CHECK(factor > 0 && grid.resolution % factor == 0);
		const long blocks = (long)occ_cell_count(OccGridSpec{{}, {}, grid.resolution / factor});
#pragma omp parallel for schedule(static) if (blocks * factor * factor * factor >= (long)kMinParallelWork)
		for (long b = 0; b < blocks; ++b) coarse[b] = occ_block_flag((uint32_t)b, occupied, grid.resolution, factor);
	}

	void hash_encode(float* enc, const float* table, const float* points, size_t n, const HashGridSpec& spec) override {
		cpu::hash_encode(enc, table, points, n, spec);
	}
	void hash_encode_backward(float* dL_dtable, const float* dL_denc, const float* points, size_t n,
	                          const HashGridSpec& spec) override {
		cpu::hash_encode_backward(dL_dtable, dL_denc, points, n, spec);
	}
	void sh_encode(float* enc, int enc_stride, const float* viewdirs, const uint32_t* sample_ray, size_t n) override {
		cpu::sh_encode(enc, enc_stride, viewdirs, sample_ray, n);
	}
	void ngp_density_forward(float* raw, int raw_stride, float* colour_in, int colour_in_stride, const float* density_out,
	                         size_t n) override {
		cpu::ngp_density_forward(raw, raw_stride, colour_in, colour_in_stride, density_out, n);
	}
	void ngp_density_backward(float* dL_ddensity_out, const float* dL_draw, int raw_stride, const float* dL_dcolour_in,
	                          int colour_in_stride, const float* density_out, size_t n) override {
		cpu::ngp_density_backward(dL_ddensity_out, dL_draw, raw_stride, dL_dcolour_in, colour_in_stride, density_out, n);
	}

	void adam_step(float* params, float* m, float* v, const float* grads, size_t n, const AdamSpec& spec,
	               AdamCounter* counter, const uint32_t* skip_flag) override {
		NERF_CHECK(counter);
		if (!adam_begin_step(counter, spec, skip_flag)) return;
		const AdamStepConstants c = counter->current;
		// Per-thread copies (firstprivate): read through the reference (or OpenMP's shared-data pointer)
		// the spec could alias the parameters for all the compiler knows, its fields would be reloaded for
		// every element, and the loop would stay scalar. With the copies and -fno-math-errno (CMakeLists.txt)
		// it is vectorised.
		const AdamSpec local_spec = spec;
#pragma omp parallel for schedule(static) firstprivate(local_spec, c) if (n >= kMinParallelWork)
		for (long i = 0; i < (long)n; ++i) adam_update(params + i, m + i, v + i, grads[i], local_spec, c);
	}

	std::unique_ptr<Mlp> create_mlp(const MlpLayout& layout, size_t max_batch, Precision) override {
		return make_cpu_mlp(layout, max_batch);
	}
	std::unique_ptr<SmallMlp> create_small_mlp(const SmallMlpSpec& spec, size_t max_batch, Precision) override {
		return create_cpu_small_mlp(spec, max_batch);
	}

private:
	/// march_count's samples for march_fill: per chunk of kMarchChunk rays their depths one ray after
	/// another; per ray its first depth in the chunk, its count and its interval.
	static constexpr size_t kMarchChunk = 256;
	struct MarchCache {
		bool valid = false;
		const float* rays_o = nullptr;
		const float* rays_d = nullptr;
		const uint8_t* occupied = nullptr;
		size_t n_rays = 0;
		uint32_t ray_offset = 0;
		MarchSpec spec;
		float first_ray[3] = {0, 0, 0};
		std::vector<std::vector<float>> chunks;
		std::vector<uint32_t> first, count;
		std::vector<float> dt;
	};
	static bool same_march(const MarchSpec& a, const MarchSpec& b) {
		for (int d = 0; d < 3; ++d)
			if (a.grid.aabb_min[d] != b.grid.aabb_min[d] || a.grid.aabb_max[d] != b.grid.aabb_max[d]) return false;
		return a.grid.resolution == b.grid.resolution && a.near == b.near && a.far == b.far && a.step_size == b.step_size &&
		       a.max_steps == b.max_steps && a.perturb == b.perturb && a.seed == b.seed && a.step == b.step &&
		       a.coarse_occupied == b.coarse_occupied && a.coarse_factor == b.coarse_factor;
	}
	MarchCache m_march_cache;
	static void copy_bytes(void* dst, const void* src, size_t bytes) {
		if (bytes) std::memmove(dst, src, bytes);
	}

	AllocationTracker m_allocations;
};

} // namespace

std::unique_ptr<Backend> create_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

} // namespace nerf
