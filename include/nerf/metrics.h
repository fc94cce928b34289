/// @file metrics.h
/// @brief Image quality metrics: MSE, PSNR and SSIM on float images in [0,1].
#pragma once

#include <cstddef>

namespace nerf {

/// Mean squared error over n floats.
double mean_squared_error(const float* a, const float* b, size_t n);

/// PSNR in dB of a mean squared error for data in [0,1]: -10 log10(mse), the reference's mse2psnr.
/// +infinity when mse == 0.
double psnr_from_mse(double mse);

/// PSNR in dB between two images of n floats each.
double psnr(const float* a, const float* b, size_t n);

/// SSIM (Wang et al. 2004) of two [height, width, channels] images with values in [0,1]: an 11x11
/// Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, data range 1, population (not sample)
/// covariances, the SSIM map averaged over the window positions that fit inside the image, then
/// over channels. This is tf.image.ssim, and skimage's structural_similarity(gaussian_weights=True,
/// sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1).
/// Both of those refuse an image with a side shorter than 11 pixels; here the window shrinks to the
/// largest odd size that fits (ssim_window) and sigma with it (1.5 * window / 11).
double ssim(const float* a, const float* b, int height, int width, int channels);

/// The side of the SSIM window for an image: 11, or the largest odd number <= the shorter side.
int ssim_window(int height, int width);

} // namespace nerf
