/// @file trainer.h
/// @brief The host-side training loop of run_nerf.py's train(): ray batching, precrop, the
/// learning-rate schedule, logging (metrics.jsonl), evaluation and the run summary.
#pragma once

#include "nerf/backend.h"
#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/model.h"

#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace nerf {

struct TrainSummary {
	long steps = 0;
	double seconds = 0.0;       ///< training wall-clock (excluding the final evaluation)
	double final_val_psnr = NAN;  ///< mean over the evaluated val views; NaN when none were (n_val_eval 0)
	int val_views = 0;          ///< val views in final_val_psnr
	double eval_seconds = 0.0;  ///< wall-clock of the final evaluation
	double final_loss = NAN;    ///< loss of the last step; a resume with nothing to train: the checkpoint's (NaN: unknown)
	std::string device;
	double mean_samples_per_ray = 0.0;  ///< network evaluations per trained ray over the whole training
	double occupied_fraction = -1.0;    ///< occ_grid: the grid's occupied cells at the end (-1 without a grid)
};

class Trainer {
public:
	/// Uploads the dataset's training images and poses to the backend and builds the model.
	Trainer(const Config& cfg, const Dataset& data, Backend& backend);
	~Trainer();

	/// Trains from step start_step()+1 to N_iters (or until max_seconds), writing config.txt, args.txt,
	/// metrics.jsonl every i_print steps into <basedir>/<expname>/, then renders the first n_val_eval val
	/// views (with a progress display unless quiet) and writes summary.json.
	TrainSummary run();
	/// One training step (1-based global step as the reference's loop variable i).
	void step(long i);
	/// Mean val PSNR over the first n_views val views (test views when there are no val views; all when
	/// n_views < 0), rendered without perturbation; NaN when that is no view. show_progress draws a
	/// progress bar (or a line per view when stdout is not a terminal).
	double evaluate_val_psnr(int n_views, bool show_progress = false);
	/// The views evaluate_val_psnr(n_views) renders.
	std::vector<int> val_eval_views(int n_views) const;
	/// The split those views are from: "val", or "test" when the dataset has no val views.
	std::string val_eval_split() const;

	NerfModel& model() { return *m_model; }
	const Dataset& dataset() const { return m_data; }
	const Config& config() const { return m_cfg; }
	std::string run_dir() const;
	long start_step() const { return m_start_step; }
	void set_start_step(long s) { m_start_step = s; }

private:
	bool adaptive_rays() const;         ///< occ_grid with target_samples: the rays per step vary
	size_t max_rays_per_step() const;
	struct State;
	Config m_cfg;
	const Dataset& m_data;
	Backend& m_backend;
	std::unique_ptr<NerfModel> m_model;
	std::unique_ptr<State> m_state;
	long m_start_step = 0;
};

} // namespace nerf
