/// @file progress.h
/// @brief Progress for a person (training steps, or the views of an evaluation): a bar redrawn in place
/// (rate, ETA, loss, PSNR) when the output is a terminal, plain periodic lines when it is a file or a
/// pipe, nothing when quiet.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace nerf {

/// What the output calls the steps: training by default ("[TRAIN] Iter: 5/100  Loss: ..", "it/s"); an
/// evaluation over views is e.g. {"EVAL", "View", "view", false}: "[EVAL] View: 1/2  PSNR: ..", "s/view".
struct ProgressLabels {
	std::string tag = "TRAIN";
	std::string item = "Iter";
	std::string unit = "it";
	bool show_loss = true;
	bool show_psnr = true;  ///< false for work without an image metric (nerf_export's grid evaluation)
};

class Progress {
public:
	enum class Mode { Auto, Bar, Lines, Quiet };

	/// Steps run from first_step to last_step (inclusive). Lines mode prints every print_every steps.
	/// Auto picks Bar when `out` is a terminal (isatty), else Lines; quiet forces Quiet.
	Progress(long first_step, long last_step, int print_every, bool quiet, std::FILE* out = stdout,
	         Mode mode = Mode::Auto, ProgressLabels labels = {});
	~Progress();
	Progress(const Progress&) = delete;
	Progress& operator=(const Progress&) = delete;

	/// Draws the empty bar (Bar mode only), for work whose first step takes long.
	void start();
	/// Reports that `step` is done with this loss and PSNR. Cheap: the bar redraws at most 10 times a second.
	/// `extra` ends the periodic line (e.g. "  dropped rays: 12").
	void update(long step, double loss, double psnr, const std::string& extra = "");
	/// True when update() would draw something now: in Bar mode when a redraw is due, in Lines mode
	/// on a print step. Lets the caller fetch the loss (a device sync on CUDA) only when it is shown.
	bool due(long step) const;
	/// Prints a message on its own line (above the bar in Bar mode; nothing in Quiet mode).
	void message(const std::string& line);
	/// Draws the final state and ends the bar's line.
	void finish();

	Mode mode() const { return m_mode; }
	double steps_per_second() const;

private:
	void draw();
	std::string bar_text(int columns) const;
	std::string rate_text(int decimals) const;

	std::FILE* m_out;
	Mode m_mode;
	ProgressLabels m_labels;
	long m_first, m_last, m_step;
	int m_print_every;
	double m_loss = 0.0, m_psnr = 0.0;
	std::chrono::steady_clock::time_point m_start, m_last_draw;
	bool m_drawn = false, m_finished = false;
};

/// "1h02m03s", "4m05s", "7s": the ETA as a person reads it.
std::string format_duration(double seconds);

} // namespace nerf
