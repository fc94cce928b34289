// Progress output. In Bar mode every line starts with "\r" and ends with "erase to end of line", so a
// message printed between redraws replaces the bar and the bar is drawn again below it.
#include "nerf/progress.h"

#include "nerf/common.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include <sys/ioctl.h>
#include <unistd.h>

namespace nerf {
namespace {

constexpr double kRedrawSeconds = 0.1;
constexpr const char* kEraseLine = "\x1b[K";

int terminal_columns(std::FILE* out) {
	winsize ws{};
	if (::ioctl(::fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
	return 100;
}

std::string number_text(const char* format, double value) {
	char buf[64];
	std::snprintf(buf, sizeof(buf), format, value);
	return buf;
}

} // namespace

std::string format_duration(double seconds) {
	if (!std::isfinite(seconds) || seconds < 0) return "?";
	const long s = std::lround(seconds);
	char buf[48];
	if (s >= 3600)
		std::snprintf(buf, sizeof(buf), "%ldh%02ldm%02lds", s / 3600, (s / 60) % 60, s % 60);
	else if (s >= 60)
		std::snprintf(buf, sizeof(buf), "%ldm%02lds", s / 60, s % 60);
	else
		std::snprintf(buf, sizeof(buf), "%lds", s);
	return buf;
}

Progress::Progress(long first_step, long last_step, int print_every, bool quiet, std::FILE* out, Mode mode,
                   ProgressLabels labels)
    : m_out(out), m_mode(mode), m_labels(std::move(labels)), m_first(first_step), m_last(last_step), m_step(first_step - 1),
      m_print_every(std::max(1, print_every)), m_start(std::chrono::steady_clock::now()), m_last_draw(m_start) {
	if (quiet)
		m_mode = Mode::Quiet;
	else if (m_mode == Mode::Auto)
		m_mode = ::isatty(::fileno(out)) ? Mode::Bar : Mode::Lines;
}

Progress::~Progress() {
	if (!m_finished && m_drawn && m_mode == Mode::Bar) {
		std::fputc('\n', m_out);
		std::fflush(m_out);
	}
}

double Progress::steps_per_second() const {
	const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
	const long done = m_step - m_first + 1;
	return seconds > 0 && done > 0 ? done / seconds : 0.0;
}

// Steps per second, or seconds per step when a step takes longer than a second (as tqdm), so that a
// slow evaluation reads "95.2 s/view", not "0.0 view/s".
std::string Progress::rate_text(int decimals) const {
	const double rate = steps_per_second();
	char buf[64];
	if (rate > 0 && rate < 1)
		std::snprintf(buf, sizeof(buf), "%.*f s/%s", decimals, 1.0 / rate, m_labels.unit.c_str());
	else
		std::snprintf(buf, sizeof(buf), "%.*f %s/s", decimals, rate, m_labels.unit.c_str());
	return buf;
}

std::string Progress::bar_text(int columns) const {
	const long total = std::max(1L, m_last - m_first + 1);
	const long done = std::clamp(m_step - m_first + 1, 0L, total);
	const double rate = steps_per_second();
	const double eta = rate > 0 ? (m_last - m_step) / rate : NAN;
	const bool any_done = m_step >= m_first;
	std::string tail = " " + std::to_string(m_step) + "/" + std::to_string(m_last) + " [" + rate_text(1) + ", ETA " +
	                   format_duration(eta);
	if (m_labels.show_loss && any_done) tail += ", loss " + number_text("%.4g", m_loss);
	if (m_labels.show_psnr && any_done) tail += ", PSNR " + number_text("%.2f", m_psnr);
	tail += "]";
	const std::string percent = number_text("%3.0f%%", 100.0 * done / total);
	// A fixed width (not "what the text leaves") keeps the bar from jittering as the numbers change.
	const int bar_width = std::clamp(columns - 80, 10, 40);
	const int filled = (int)((double)bar_width * done / total);
	return percent + " |" + std::string(filled, '#') + std::string(bar_width - filled, ' ') + "|" + tail;
}

void Progress::draw() {
	const int columns = terminal_columns(m_out);
	std::fprintf(m_out, "\r%s%s", bar_text(columns - 1).c_str(), kEraseLine);
	std::fflush(m_out);
	m_drawn = true;
	m_last_draw = std::chrono::steady_clock::now();
}

void Progress::update(long step, double loss, double psnr, const std::string& extra) {
	m_step = step;
	m_loss = loss;
	m_psnr = psnr;
	if (m_mode == Mode::Quiet) return;
	// Every print_every steps a line that stays (above the bar on a terminal), as the reference's tqdm.write.
	if (step % m_print_every == 0 || step == m_last) {
		const double rate = steps_per_second();
		std::string line = "[" + m_labels.tag + "] " + m_labels.item + ": " + std::to_string(step) + "/" + std::to_string(m_last);
		if (m_labels.show_loss) line += "  Loss: " + number_text("%.6g", loss);
		if (m_labels.show_psnr) line += "  PSNR: " + number_text("%.3f", psnr);
		line += "  " + rate_text(2) + "  ETA " +
		        format_duration(rate > 0 ? (m_last - step) / rate : NAN) + extra;
		message(line);
	}
	if (m_mode == Mode::Bar) {
		const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_last_draw).count();
		if (!m_drawn || since >= kRedrawSeconds || step == m_last) draw();
	}
}

void Progress::start() {
	if (m_mode == Mode::Bar && !m_drawn) draw();
}

bool Progress::due(long step) const {
	if (m_mode == Mode::Lines) return step % m_print_every == 0 || step == m_last;
	if (m_mode == Mode::Bar)
		return !m_drawn || step == m_last ||
		       std::chrono::duration<double>(std::chrono::steady_clock::now() - m_last_draw).count() >= kRedrawSeconds;
	return false;
}

void Progress::message(const std::string& line) {
	if (m_mode == Mode::Quiet) return;
	if (m_mode == Mode::Bar) {
		std::fprintf(m_out, "\r%s%s\n", line.c_str(), kEraseLine);
		if (m_drawn) draw();
	} else {
		std::fprintf(m_out, "%s\n", line.c_str());
	}
	std::fflush(m_out);
}

void Progress::finish() {
	if (m_finished) return;
	m_finished = true;
	if (m_mode == Mode::Bar) {
		draw();
		std::fputc('\n', m_out);
		std::fflush(m_out);
	}
}

} // namespace nerf
