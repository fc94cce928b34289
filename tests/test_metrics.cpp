// PSNR and SSIM against independently computed numbers (skimage 0.26, see the comment in each test).
#include "nerf/metrics.h"
#include "nerf/progress.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace {

/// Two smooth, different test images [24, 32, 3]; the same formulas in the Python reference below.
void make_pair(std::vector<float>& a, std::vector<float>& b, int H, int W) {
	a.resize((size_t)H * W * 3);
	b.resize(a.size());
	for (int y = 0; y < H; ++y)
		for (int x = 0; x < W; ++x)
			for (int c = 0; c < 3; ++c) {
				const size_t i = ((size_t)y * W + x) * 3 + c;
				a[i] = (float)(0.5 + 0.4 * std::sin(0.3 * x + 0.2 * y + c));
				const double v = (double)a[i] + 0.15 * std::cos(0.7 * x - 0.4 * y * c);
				b[i] = (float)std::min(1.0, std::max(0.0, v));
			}
}

} // namespace

TEST_CASE("psnr is -10 log10(mse)", "[tools][metrics]") {
	std::vector<float> a(300, 0.25f), b(300, 0.35f);
	CHECK(nerf::mean_squared_error(a.data(), b.data(), a.size()) == Approx(0.01).epsilon(1e-6));
	CHECK(nerf::psnr(a.data(), b.data(), a.size()) == Approx(20.0).epsilon(1e-6));
	CHECK(nerf::psnr_from_mse(1e-3) == Approx(30.0));
	CHECK(std::isinf(nerf::psnr(a.data(), a.data(), a.size())));
}

TEST_CASE("ssim matches skimage's Gaussian-window SSIM", "[tools][metrics]") {
	// Reference (Python, float64 on the same float32 images):
	//   structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
	//                         data_range=1.0, channel_axis=-1) = 0.7651047299243374
	//   mean((a - b)^2) = 0.010900326085298855
	const int H = 24, W = 32;
	std::vector<float> a, b;
	make_pair(a, b, H, W);
	CHECK(nerf::ssim(a.data(), b.data(), H, W, 3) == Approx(0.7651047299243374).epsilon(1e-6));
	CHECK(nerf::mean_squared_error(a.data(), b.data(), a.size()) == Approx(0.010900326085298855).epsilon(1e-6));
	CHECK(nerf::ssim(a.data(), a.data(), H, W, 3) == Approx(1.0).epsilon(1e-12));
	// Symmetric in its arguments.
	CHECK(nerf::ssim(b.data(), a.data(), H, W, 3) == Approx(nerf::ssim(a.data(), b.data(), H, W, 3)).epsilon(1e-12));
}

TEST_CASE("ssim of an image smaller than its window uses a window that fits", "[tools][metrics]") {
	// A 9x9 image gets a 9x9 window with sigma 1.5 * 9 / 11 in one position, so SSIM is the formula on
	// the Gaussian-weighted means, variances and covariance of all its pixels (worked out here).
	std::vector<float> a(10 * 10), b(10 * 10);
	for (int i = 0; i < 100; ++i) {
		a[i] = (float)((i * 37) % 17) / 17.0f;
		b[i] = 0.5f * a[i] + 0.2f;
	}
	const double sigma = 1.5 * 9.0 / 11.0;
	double taps[9], sum = 0.0;
	for (int k = 0; k < 9; ++k) sum += taps[k] = std::exp(-(k - 4) * (k - 4) / (2.0 * sigma * sigma));
	for (double& t : taps) t /= sum;
	double mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
	for (int r = 0; r < 9; ++r)
		for (int c = 0; c < 9; ++c) {
			const double w = taps[r] * taps[c], x = a[r * 10 + c], y = b[r * 10 + c];
			mx += w * x, my += w * y, xx += w * x * x, yy += w * y * y, xy += w * x * y;
		}
	const double c1 = 1e-4, c2 = 9e-4;
	const double expected = ((2 * mx * my + c1) * (2 * (xy - mx * my) + c2)) /
	                        ((mx * mx + my * my + c1) * (xx - mx * mx + yy - my * my + c2));
	std::vector<float> a9, b9;  // the first 9 rows and columns
	for (int r = 0; r < 9; ++r)
		for (int c = 0; c < 9; ++c) a9.push_back(a[r * 10 + c]), b9.push_back(b[r * 10 + c]);
	CHECK(nerf::ssim(a9.data(), b9.data(), 9, 9, 1) == Approx(expected).epsilon(1e-9));
	CHECK(nerf::ssim(a.data(), a.data(), 10, 10, 1) == Approx(1.0));
	CHECK(nerf::ssim_window(10, 10) == 9);
	// The largest odd window that fits the smaller side, up to 11.
	CHECK(nerf::ssim_window(6, 8) == 5);
	CHECK(nerf::ssim_window(10, 40) == 9);
	CHECK(nerf::ssim_window(1, 1) == 1);
	CHECK(nerf::ssim_window(64, 64) == 11);
}

TEST_CASE("progress: plain lines when not a terminal, nothing when quiet", "[tools][progress]") {
	char* buffer = nullptr;
	size_t size = 0;
	FILE* out = open_memstream(&buffer, &size);
	{
		nerf::Progress progress(1, 10, 5, false, out);  // a memstream is not a terminal
		CHECK(progress.mode() == nerf::Progress::Mode::Lines);
		CHECK(progress.due(5));
		CHECK_FALSE(progress.due(4));
		CHECK(progress.due(10));
		for (long s = 1; s <= 10; ++s) progress.update(s, 0.01, 20.0);
		progress.finish();
	}
	{
		nerf::Progress quiet(1, 10, 1, true, out);
		CHECK(quiet.mode() == nerf::Progress::Mode::Quiet);
		CHECK_FALSE(quiet.due(5));
		for (long s = 1; s <= 10; ++s) quiet.update(s, 0.01, 20.0);
		quiet.message("hidden");
		quiet.finish();
	}
	std::fclose(out);
	const std::string text(buffer, size);
	free(buffer);
	CHECK(text.find("[TRAIN] Iter: 5/10  Loss: 0.01  PSNR: 20.000") != std::string::npos);
	CHECK(text.find("[TRAIN] Iter: 10/10") != std::string::npos);
	CHECK(text.find("Iter: 4/10") == std::string::npos);
	CHECK(text.find("hidden") == std::string::npos);
	CHECK(text.find('\r') == std::string::npos);
}

TEST_CASE("progress: the bar redraws in place with rate, ETA, loss and PSNR", "[tools][progress]") {
	char* buffer = nullptr;
	size_t size = 0;
	FILE* out = open_memstream(&buffer, &size);
	{
		nerf::Progress progress(1, 100, 10, false, out, nerf::Progress::Mode::Bar);
		CHECK(progress.due(1));  // nothing drawn yet
		progress.update(1, 0.5, 3.0);
		CHECK_FALSE(progress.due(2));  // drawn less than 0.1 s ago
		CHECK(progress.due(100));      // the last step is always drawn
		progress.message("a log line");
		progress.update(100, 0.25, 6.02);
		progress.finish();
	}
	std::fclose(out);
	const std::string text(buffer, size);
	free(buffer);
	CHECK(text.rfind("\r", 0) == 0);
	CHECK(text.find("\ra log line\x1b[K\n") != std::string::npos);
	// print_every steps leave a line above the bar, as tqdm.write does in the reference.
	CHECK(text.find("\r[TRAIN] Iter: 100/100  Loss: 0.25  PSNR: 6.020") != std::string::npos);
	CHECK(text.find("Iter: 1/100") == std::string::npos);
	CHECK(text.find("100%") != std::string::npos);
	CHECK(text.find("100/100") != std::string::npos);
	CHECK(text.find("loss 0.25, PSNR 6.02") != std::string::npos);
	CHECK(text.find("it/s, ETA 0s") != std::string::npos);
	CHECK(text.back() == '\n');
	CHECK(nerf::format_duration(3723) == "1h02m03s");
	CHECK(nerf::format_duration(65) == "1m05s");
}

TEST_CASE("progress: an evaluation's labels, no loss, and a bar drawn before the first view", "[tools][progress]") {
	char* buffer = nullptr;
	size_t size = 0;
	FILE* out = open_memstream(&buffer, &size);
	const nerf::ProgressLabels eval{"EVAL", "View", "view", false};
	{
		nerf::Progress lines(1, 2, 1, false, out, nerf::Progress::Mode::Lines, eval);
		lines.start();  // nothing in Lines mode
		lines.update(1, 0.0, 25.5);
		lines.update(2, 0.0, 26.25);
		lines.finish();
	}
	const size_t lines_end = size;
	{
		nerf::Progress bar(1, 2, 1, false, out, nerf::Progress::Mode::Bar, eval);
		bar.start();
		std::fflush(out);
		CHECK(std::string(buffer, size).find("0/2 [", lines_end) != std::string::npos);
		bar.update(1, 0.0, 25.5);
		bar.finish();
	}
	std::fclose(out);
	const std::string text(buffer, size);
	free(buffer);
	const std::string line_text = text.substr(0, lines_end), bar_text = text.substr(lines_end);
	CHECK(line_text.rfind("[EVAL] View: 1/2  PSNR: 25.500  ", 0) == 0);
	CHECK(line_text.find("\n[EVAL] View: 2/2  PSNR: 26.250  ") != std::string::npos);
	CHECK(line_text.find("Loss") == std::string::npos);
	CHECK(line_text.find(" view/s  ETA") != std::string::npos);
	CHECK(bar_text.rfind("\r  0% |", 0) == 0);
	CHECK(bar_text.find("PSNR 25.50]") != std::string::npos);
	CHECK(bar_text.find("loss") == std::string::npos);
}
