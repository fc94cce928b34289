/// @file trainer.h
/// @brief The host-side training loop of run_nerf.py's train(): ray batching, precrop, the
/// learning-rate schedule, logging (metrics.jsonl), evaluation and the run summary.
#pragma once

#include "nerf/backend.h"
#include "nerf/config.h"
#include "nerf/dataset.h"
#include "nerf/model.h"

#include <functional>
#include <string>

namespace nerf {

struct TrainSummary {
	long steps = 0;
	double seconds = 0.0;       ///< training wall-clock (excluding final evaluation)
	double final_val_psnr = 0.0;
	double final_loss = 0.0;
	std::string device;
	double mean_samples_per_ray = 0.0;  ///< network evaluations per trained ray over the whole training
	double occupied_fraction = -1.0;    ///< occ_grid: the grid's occupied cells at the end (-1 without a grid)
};

class Trainer {
public:
	/// Uploads the dataset's training images and poses to the backend and builds the model.
	Trainer(const Config& cfg, const Dataset& data, Backend& backend);
	~Trainer();

	/// Trains from step start_step()+1 to N_iters (or until max_seconds), writing
	/// <basedir>/<expname>/metrics.jsonl every i_print steps and summary.json at the end.
	TrainSummary run();
	/// One training step (1-based global step as the reference's loop variable i).
	void step(long i);
	/// Mean val PSNR over the first n (all when n <= 0) val views, rendered without perturbation.
	double evaluate_val_psnr(int n_views);

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
