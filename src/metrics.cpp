// Image metrics, in double precision so that the numbers do not depend on summation order noise.
#include "nerf/metrics.h"

#include "nerf/common.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace nerf {

double mean_squared_error(const float* a, const float* b, size_t n) {
	NERF_CHECK(n > 0);
	double sum = 0.0;
	for (size_t i = 0; i < n; ++i) {
		const double d = (double)a[i] - (double)b[i];
		sum += d * d;
	}
	return sum / (double)n;
}

double psnr_from_mse(double mse) {
	if (mse <= 0.0) return std::numeric_limits<double>::infinity();
	return -10.0 * std::log10(mse);
}

double psnr(const float* a, const float* b, size_t n) { return psnr_from_mse(mean_squared_error(a, b, n)); }

namespace {

constexpr int kWindow = 11;
constexpr double kSigma = 1.5;

/// The normalised 1-D Gaussian of `window` taps; the 2-D window is its outer product, so filtering is separable.
std::vector<double> gaussian_taps(int window, double sigma) {
	std::vector<double> taps(window);
	const int radius = window / 2;
	double sum = 0.0;
	for (int i = 0; i < window; ++i) {
		const double x = i - radius;
		taps[i] = std::exp(-x * x / (2.0 * sigma * sigma));
		sum += taps[i];
	}
	for (double& t : taps) t /= sum;
	return taps;
}

/// 'valid' separable filtering of an [h, w] plane: out is [h - window + 1, w - window + 1].
std::vector<double> filter_valid(const std::vector<double>& plane, int h, int w, const std::vector<double>& taps) {
	const int window = (int)taps.size();
	const int out_w = w - window + 1, out_h = h - window + 1;
	std::vector<double> rows((size_t)h * out_w);
	for (int y = 0; y < h; ++y)
		for (int x = 0; x < out_w; ++x) {
			double s = 0.0;
			for (int k = 0; k < window; ++k) s += taps[k] * plane[(size_t)y * w + x + k];
			rows[(size_t)y * out_w + x] = s;
		}
	std::vector<double> out((size_t)out_h * out_w);
	for (int y = 0; y < out_h; ++y)
		for (int x = 0; x < out_w; ++x) {
			double s = 0.0;
			for (int k = 0; k < window; ++k) s += taps[k] * rows[(size_t)(y + k) * out_w + x];
			out[(size_t)y * out_w + x] = s;
		}
	return out;
}

} // namespace

int ssim_window(int height, int width) {
	const int side = std::min(height, width);
	return side >= kWindow ? kWindow : std::max(1, side % 2 == 1 ? side : side - 1);
}

double ssim(const float* a, const float* b, int height, int width, int channels) {
	NERF_CHECK(height > 0 && width > 0 && channels > 0);
	const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;  // (K1 L)^2, (K2 L)^2 with data range L = 1
	// An image smaller than the window gets a window that fits, its Gaussian narrowed in proportion, so
	// that a run on tiny images scores its test set instead of failing after training.
	const int window = ssim_window(height, width);
	const std::vector<double> taps = gaussian_taps(window, kSigma * window / kWindow);
	const size_t n_pixels = (size_t)height * width;
	std::vector<double> x(n_pixels), y(n_pixels), xx(n_pixels), yy(n_pixels), xy(n_pixels);
	double total = 0.0;
	for (int c = 0; c < channels; ++c) {
		for (size_t p = 0; p < n_pixels; ++p) {
			x[p] = a[p * channels + c];
			y[p] = b[p * channels + c];
			xx[p] = x[p] * x[p];
			yy[p] = y[p] * y[p];
			xy[p] = x[p] * y[p];
		}
		const auto mu_x = filter_valid(x, height, width, taps), mu_y = filter_valid(y, height, width, taps);
		const auto e_xx = filter_valid(xx, height, width, taps), e_yy = filter_valid(yy, height, width, taps);
		const auto e_xy = filter_valid(xy, height, width, taps);
		double sum = 0.0;
		for (size_t i = 0; i < mu_x.size(); ++i) {
			const double var_x = e_xx[i] - mu_x[i] * mu_x[i];
			const double var_y = e_yy[i] - mu_y[i] * mu_y[i];
			const double cov = e_xy[i] - mu_x[i] * mu_y[i];
			sum += ((2.0 * mu_x[i] * mu_y[i] + c1) * (2.0 * cov + c2)) /
			       ((mu_x[i] * mu_x[i] + mu_y[i] * mu_y[i] + c1) * (var_x + var_y + c2));
		}
		total += sum / (double)mu_x.size();
	}
	return total / channels;
}

} // namespace nerf
