/// @file checkpoint.h
/// @brief Checkpoints: a model's whole training state in one safetensors file.
///
/// Tensors (float32, PyTorch layouts, names as nerf-pytorch's state-dict keys prefixed by network):
///   network_fn.<layer>.weight [out, in], network_fn.<layer>.bias [out]     coarse network
///   network_fine.<layer>.weight, network_fine.<layer>.bias                  fine network (N_importance > 0)
///   optimizer.exp_avg.<same name>, optimizer.exp_avg_sq.<same name>         Adam's m and v, per tensor
/// where <layer> is pts_linears.0 .. pts_linears.{D-1}, views_linears.0, then feature_linear,
/// alpha_linear, rgb_linear (use_viewdirs) or output_linear.
/// __metadata__ (strings): format = "nerfcore-checkpoint", format_version, global_step (the last
/// completed step), adam_step (Adam's t of the coarse network), adam_step_fine (of the fine one; they
/// differ only after fp16 overflow skips; absent in older files: = adam_step), config
/// (config_to_string of the run's options), and the model's TrainCounters (rays_trained,
/// network_samples, dropped_rays, grid_samples, rays_drawn, last_marched, last_kept, next_rays; absent
/// in older files: 0), loss (the training loss of global_step, when finite), and train_seconds (the
/// training wall-clock up to global_step, summed over every resume, without evaluations; absent in
/// older files: 0).
/// field (string): the model's field type, "nerf" or "ngp" (absent in older files: nerf); a checkpoint
/// loads only into a model of the same type. The hash-grid model's tensors (format_version 3):
///   field.hash_grid.level_<LL> [entries of level LL, n_features_per_level]   the level's table
///   field.density_net.<i>.weight [out, in], field.colour_net.<i>.weight       layer i (no biases)
/// With occ_grid (format_version 2 for the reference's model; files without a grid are format 1):
///   occupancy_grid.density [R, R, R]   the density EMA of each cell
///   occupancy_grid.occupied [R, R, R]  its occupied flag, 0 or 1 (float32, as every tensor here)
/// Files are {basedir}/{expname}/{global_step:06d}.safetensors, as nerf-pytorch's {step:06d}.tar.
#pragma once

#include "nerf/config.h"
#include "nerf/model.h"

#include <cmath>
#include <string>
#include <vector>

namespace nerf {

constexpr int kCheckpointFormatVersion = 3;  ///< the newest format this nerfcore reads and writes

struct CheckpointInfo {
	std::string path;
	int format_version = 0;
	long global_step = 0;   ///< the last completed training step
	long adam_steps = 0;    ///< Adam's t (coarse network)
	long adam_steps_fine = 0;  ///< Adam's t of the fine network
	double loss = NAN;      ///< the training loss of global_step (NaN when the checkpoint does not say)
	double train_seconds = 0.0;  ///< training wall-clock up to global_step over all resumes (0 in older files)
	std::string config_text;  ///< the run's options, `key = value` lines
};

/// "{run_dir}/{step:06d}.safetensors".
std::string checkpoint_path(const std::string& run_dir, long global_step);

/// Checkpoint files (*.safetensors) in run_dir, sorted by name (so by step); empty when none or no folder.
std::vector<std::string> list_checkpoints(const std::string& run_dir);

/// The checkpoint a run should resume from, with the reference's logic: none when no_reload; else
/// ft_path when given; else the last of the sorted checkpoints in run_dir; "" when there is none.
/// Throws nerf::Error with the convert command when run_dir holds nerf-pytorch checkpoints (*.tar)
/// but no nerfcore one, where the reference would have resumed.
std::string checkpoint_to_resume(const Config& cfg, const std::string& run_dir);

/// Saves the model's parameters, Adam moments and step counts atomically (see write_safetensors):
/// a failure leaves any earlier file intact and throws nerf::Error naming the path. A state with a
/// NaN or infinity is not saved (nerf::Error naming the tensor). `loss`, the loss of global_step, is
/// stored as metadata when finite, and so is `train_seconds`, the training time up to global_step.
void save_checkpoint(const std::string& path, NerfModel& model, long global_step, double loss = NAN,
                     double train_seconds = 0.0);

/// Loads parameters, Adam moments and Adam's step count into `model` and returns the metadata.
/// Throws nerf::Error naming the file when it is corrupt or not a nerfcore checkpoint (for a PyTorch
/// file, recognised by its first bytes, with the command that converts it: tools/convert_nerf_pytorch.py),
/// and naming the tensor and both shapes when the checkpoint's architecture differs from the model's.
/// A checkpoint without optimizer tensors (e.g. converted from PyTorch) loads with zero moments.
/// A NaN or infinity in any tensor (parameters or Adam's moments) is an error naming the tensor.
CheckpointInfo load_checkpoint(const std::string& path, NerfModel& model);

/// The reference's reload at the start of training: loads checkpoint_to_resume(cfg, run_dir) into
/// the model (printing which one unless cfg.quiet) and returns its metadata; path "" and global_step 0
/// when there is none. When the newest checkpoint of run_dir does not load, the error names the newest
/// older one that does and how to resume from it (--ft_path); nothing older is loaded silently.
/// Before loading, cfg is compared with the checkpoint's stored config: an option of
/// options_fixed_by_checkpoint() that differs is an error naming it and both values; the other options
/// that differ are printed, one line (unless cfg.quiet).
CheckpointInfo resume_training(const Config& cfg, const std::string& run_dir, NerfModel& model);

/// Reads only the metadata (cheap). Fails as load_checkpoint for a file that is not a nerfcore checkpoint.
CheckpointInfo read_checkpoint_info(const std::string& path);

/// The run's options stored in a checkpoint, applied over `base` (options missing from the
/// checkpoint keep base's values).
Config config_from_checkpoint(const std::string& path, Config base = Config{});

} // namespace nerf
