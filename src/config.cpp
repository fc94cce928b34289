/// @file config.cpp
/// @brief nerfcore's options: one table drives the command line (CLI11), the nerf-pytorch config file
/// reader (configargparse's `key = value` format) and config_to_string, so an option is written once.

#include "nerf/config.h"

#include "nerf/common.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <variant>

namespace nerf {
namespace {

using MemberPtr = std::variant<std::string Config::*, bool Config::*, int Config::*, float Config::*, double Config::*,
                               unsigned long long Config::*>;

/// One end of a numeric range; `inclusive` distinguishes >= from >.
struct Bound {
	double value;
	bool inclusive;
};

struct OptionSpec {
	const char* name;  ///< the option's name: the Config field, `--name` and the config file key
	MemberPtr member;
	const char* help;
	std::optional<Bound> low;
	std::optional<Bound> high;
	std::vector<std::string> choices;  ///< allowed values of a string option (empty: any)
};

constexpr std::optional<Bound> none = std::nullopt;
constexpr Bound at_least(double v) { return {v, true}; }
constexpr Bound above(double v) { return {v, false}; }
constexpr Bound at_most(double v) { return {v, true}; }
constexpr Bound below(double v) { return {v, false}; }

// The order is the struct's, which is nerf-pytorch's config_parser order; config_to_string keeps it.
const std::vector<OptionSpec>& option_table() {
	static const std::vector<OptionSpec> table = {
		{"config", &Config::config, "config file path (nerf-pytorch format: key = value lines)", none, none, {}},
		{"expname", &Config::expname, "experiment name", none, none, {}},
		{"basedir", &Config::basedir, "where to store checkpoints and logs", none, none, {}},
		{"datadir", &Config::datadir, "input data directory", none, none, {}},

		{"netdepth", &Config::netdepth, "layers in the coarse network", at_least(1), none, {}},
		{"netwidth", &Config::netwidth, "channels per layer of the coarse network", at_least(1), none, {}},
		{"netdepth_fine", &Config::netdepth_fine, "layers in the fine network", at_least(1), none, {}},
		{"netwidth_fine", &Config::netwidth_fine, "channels per layer of the fine network", at_least(1), none, {}},
		{"N_rand", &Config::N_rand, "batch size: random rays per gradient step", above(0), none, {}},
		{"lrate", &Config::lrate, "learning rate", above(0), none, {}},
		{"lrate_decay", &Config::lrate_decay, "exponential learning rate decay (in 1000 steps)", above(0), none, {}},
		{"chunk", &Config::chunk, "rays processed in parallel; decrease if running out of memory", above(0), none, {}},
		{"netchunk", &Config::netchunk, "points sent through the network in parallel; decrease if running out of memory",
		 above(0), none, {}},
		{"no_batching", &Config::no_batching, "take random rays from one image at a time", none, none, {}},
		{"no_reload", &Config::no_reload, "do not reload weights from a saved checkpoint", none, none, {}},
		{"ft_path", &Config::ft_path, "specific weights file to reload for the coarse network", none, none, {}},

		{"N_samples", &Config::N_samples, "coarse samples per ray", at_least(2), none, {}},
		{"N_importance", &Config::N_importance, "additional fine samples per ray", at_least(0), none, {}},
		{"perturb", &Config::perturb, "0 for no jitter, 1 for jitter of the stratified samples", at_least(0), none, {}},
		{"use_viewdirs", &Config::use_viewdirs, "use the full 5D input (with view direction) instead of 3D", none, none,
		 {}},
		{"i_embed", &Config::i_embed, "0 for the default positional encoding, -1 for none", at_least(-1), at_most(0), {}},
		{"multires", &Config::multires, "log2 of the max frequency of the positional encoding (3D location)",
		 at_least(0), none, {}},
		{"multires_views", &Config::multires_views, "log2 of the max frequency of the positional encoding (view direction)",
		 at_least(0), none, {}},
		{"raw_noise_std", &Config::raw_noise_std, "std dev of noise added to the raw density to regularize it (1e0 recommended)",
		 at_least(0), none, {}},

		{"render_only", &Config::render_only, "do not optimize; reload weights and render the render_poses path", none,
		 none, {}},
		{"render_test", &Config::render_test, "render the test set instead of the render_poses path", none, none, {}},
		{"render_factor", &Config::render_factor, "downsampling factor to speed up rendering (4 or 8 for a fast preview)",
		 at_least(0), none, {}},

		{"precrop_iters", &Config::precrop_iters, "number of steps to train on central crops", at_least(0), none, {}},
		{"precrop_frac", &Config::precrop_frac, "fraction of the image taken for central crops", above(0), at_most(1), {}},

		// builtin is nerfcore's procedural scene (generated into datadir when missing), used by nerf_train.
		{"dataset_type", &Config::dataset_type, "dataset type (builtin: nerfcore's procedural scene)", none, none,
		 {"llff", "blender", "deepvoxels", "LINEMOD", "transforms", "builtin"}},
		{"testskip", &Config::testskip, "load 1/N of the test/val images (for large sets like deepvoxels)", at_least(1),
		 none, {}},
		{"shape", &Config::shape, "deepvoxels shape: armchair / cube / greek / vase", none, none, {}},
		{"white_bkgd", &Config::white_bkgd, "composite synthetic data onto a white background", none, none, {}},
		{"half_res", &Config::half_res, "load blender synthetic data at half resolution (400x400 instead of 800x800)",
		 none, none, {}},

		{"factor", &Config::factor, "downsample factor for LLFF and transforms.json images (0: LLFF 8, as nerf-pytorch; "
		 "transforms.json the smallest power of two that brings the longer side to at most 1600 pixels, as nerfstudio)",
		 at_least(0), none, {}},
		{"no_ndc", &Config::no_ndc, "do not use normalized device coordinates (for non-forward-facing scenes)", none,
		 none, {}},
		{"lindisp", &Config::lindisp, "sample linearly in disparity rather than depth", none, none, {}},
		{"spherify", &Config::spherify, "for spherical 360 scenes", none, none, {}},
		{"llffhold", &Config::llffhold, "take every N-th image as the LLFF or transforms.json test set (the paper uses 8; 0: none)",
		 at_least(0), none, {}},
		// nerfcore's: the sampling range along rays (transforms.json scenes pick one from the scene's size).
		{"near", &Config::near, "near plane of the ray samples (negative: the dataset's choice)", none, none, {}},
		{"far", &Config::far, "far plane of the ray samples (negative: the dataset's choice)", none, none, {}},

		{"i_print", &Config::i_print, "frequency of console printout and metric logging", at_least(1), none, {}},
		{"i_img", &Config::i_img, "frequency of image logging (accepted for nerf-pytorch's configs and ignored: its image "
		 "logging is disabled code there too)", at_least(1), none, {}},
		{"i_weights", &Config::i_weights, "frequency of weight checkpoint saving", at_least(1), none, {}},
		{"i_testset", &Config::i_testset, "frequency of test set rendering", at_least(1), none, {}},
		{"i_video", &Config::i_video, "frequency of render_poses video saving", at_least(1), none, {}},

		{"N_iters", &Config::N_iters, "training iterations (nerf-pytorch: 200000)", at_least(0), none, {}},
		{"max_seconds", &Config::max_seconds, "stop training after this wall-clock time in seconds (0: no limit)",
		 at_least(0), none, {}},
		{"seed", &Config::seed, "seed of every random draw", none, none, {}},
		{"device", &Config::device, "compute device", none, none, {"auto", "cpu", "cuda"}},
		{"precision", &Config::precision, "GPU math precision (the CPU always computes in fp32; fp16 and bf16 there warn)", none, none,
		 {"fp32", "tf32", "fp16", "bf16"}},
		{"cuda_graph", &Config::cuda_graph, "capture the training step as a CUDA graph (not implemented yet: ignored with a warning)", none, none, {}},
		{"quiet", &Config::quiet, "print less", none, none, {}},
		{"n_val_eval", &Config::n_val_eval, "val views rendered after training for summary.json's PSNR (-1: all, 0: none)",
		 at_least(-1), none, {}},
		{"threads", &Config::threads, "CPU threads (0: all cores)", at_least(0), none, {}},
		{"max_image_pixels", &Config::max_image_pixels,
		 "largest image (width x height) a loader decodes, against corrupt or hostile files", at_least(1), none, {}},

		{"occ_grid", &Config::occ_grid, "march rays through an occupancy grid and evaluate one network at the samples in "
		 "occupied cells (instead of coarse + fine sampling)", none, none, {}},
		{"occ_resolution", &Config::occ_resolution, "occupancy grid cells per side", at_least(1), at_most(512), {}},
		{"occ_aabb", &Config::occ_aabb, "occupancy grid box 'xmin,ymin,zmin,xmax,ymax,zmax' (default: [-1.5, 1.5]^3 for "
		 "blender/builtin, [-1, 1]^3 in NDC, else the cameras' centres +- far)", none, none, {}},
		{"occ_update_every", &Config::occ_update_every, "training steps between occupancy grid updates", at_least(1), none,
		 {}},
		{"occ_warmup", &Config::occ_warmup, "steps during which a grid update evaluates every cell", at_least(0), none, {}},
		{"occ_threshold", &Config::occ_threshold, "a cell is occupied when its EMA of sigma * step size exceeds "
		 "min(this, the grid's mean)", at_least(0), none, {}},
		{"render_step_size", &Config::render_step_size, "ray marching step in world units (0: one pixel's footprint at the scene, no finer than the box diagonal / 1024)",
		 at_least(0), none, {}},
		{"target_samples", &Config::target_samples, "occ_grid: adapt the rays per step so the network sees about this "
		 "many samples (0: N_rand rays)", at_least(0), none, {}},

		{"model", &Config::model, "the field trained: nerf (the reference's MLP) or ngp (instant-ngp's hash grid; needs "
		 "occ_grid)", none, none, {"nerf", "ngp"}},
		{"n_levels", &Config::n_levels, "ngp: levels of the multiresolution hash encoding", at_least(1), at_most(32), {}},
		{"n_features_per_level", &Config::n_features_per_level, "ngp: features per hash level (1, 2, 4 or 8)", at_least(1),
		 at_most(8), {}},
		{"log2_hashmap_size", &Config::log2_hashmap_size, "ngp: log2 of the entries of each hashed level's table",
		 at_least(10), at_most(24), {}},
		{"base_resolution", &Config::base_resolution, "ngp: grid resolution of the coarsest level", at_least(2), none, {}},
		{"finest_resolution", &Config::finest_resolution, "ngp: resolution of the finest level across the field's box "
		 "(sets per_level_scale)", at_least(2), none, {}},
		{"learning_rate", &Config::learning_rate, "ngp: Adam's learning rate (warm-up over 100 steps, x0.33 at 50, 75 "
		 "and 90% of N_iters)", above(0), none, {}},
		{"beta1", &Config::beta1, "ngp: Adam's beta1", at_least(0), below(1), {}},
		{"beta2", &Config::beta2, "ngp: Adam's beta2", at_least(0), below(1), {}},
		{"epsilon", &Config::epsilon, "ngp: Adam's epsilon", above(0), none, {}},
		{"l2_reg", &Config::l2_reg, "ngp: L2 weight decay on the networks' weights (not the hash tables)", at_least(0),
		 none, {}},
	};
	return table;
}

const OptionSpec* find_option(const std::string& name) {
	for (const OptionSpec& spec : option_table())
		if (name == spec.name) return &spec;
	return nullptr;
}

// --- values as text ---------------------------------------------------------

std::string trim(const std::string& s) {
	const char* ws = " \t\r\n\f\v";
	const size_t first = s.find_first_not_of(ws);
	if (first == std::string::npos) return "";
	return s.substr(first, s.find_last_not_of(ws) - first + 1);
}

// Text from a file as it may be shown in a message: control characters and bytes that are not UTF-8
// escaped as \xNN, and cut after `max_chars` so that a binary file does not flood the terminal.
std::string printable_excerpt(const std::string& text, size_t max_chars = 60) {
	std::string out;
	size_t i = 0, shown = 0;
	for (; i < text.size() && shown < max_chars; ++shown) {
		const unsigned char c = (unsigned char)text[i];
		// Length of a well-formed UTF-8 sequence starting here (0: not one).
		size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
		for (size_t k = 1; k < len; ++k)
			if (i + k >= text.size() || ((unsigned char)text[i + k] >> 6) != 0x2) len = 0;
		if (len == 0 || (len == 1 && (c < 0x20 || c == 0x7F))) {
			char buf[8];
			std::snprintf(buf, sizeof(buf), "\\x%02X", c);
			out += buf;
			++i;
		} else {
			out.append(text, i, len);
			i += len;
		}
	}
	if (i < text.size()) out += "... (" + std::to_string(text.size()) + " bytes)";
	return out;
}

// The shortest text that reads back to the same float/double, so saved configs stay readable (0.0005,
// not 0.000500000024) and the round trip is exact.
template <typename T>
std::string shortest_float_text(T value, int min_digits, int max_digits) {
	char buf[64];
	for (int digits = min_digits; digits <= max_digits; ++digits) {
		std::snprintf(buf, sizeof(buf), "%.*g", digits, static_cast<double>(value));
		if (std::is_same<T, float>::value ? std::strtof(buf, nullptr) == static_cast<float>(value)
		                                  : std::strtod(buf, nullptr) == static_cast<double>(value))
			break;
	}
	return buf;
}

// A string needs quotes when the reader would otherwise change it: surrounding blanks get trimmed,
// '#' may start a comment, a leading quote would be stripped, and an empty value reads clearer as "".
std::string string_value_text(const std::string& name, const std::string& value) {
	if (value.find_first_of("\r\n") != std::string::npos)
		NERF_FAIL("option '" << name << "' holds a line break, which a config file cannot represent");
	const bool needs_quotes = value.empty() || trim(value) != value || value.find('#') != std::string::npos ||
	                          value.front() == '"' || value.front() == '\'';
	if (!needs_quotes) return value;
	if (value.find('"') == std::string::npos) return '"' + value + '"';
	if (value.find('\'') == std::string::npos) return '\'' + value + '\'';
	NERF_FAIL("option '" << name << "' holds both quote characters and needs quoting; it cannot be written to a config file");
}

std::string value_text(const OptionSpec& spec, const Config& cfg) {
	return std::visit(
		[&](auto member) -> std::string {
			using T = std::decay_t<decltype(cfg.*member)>;
			const T& v = cfg.*member;
			if constexpr (std::is_same_v<T, std::string>) return string_value_text(spec.name, v);
			else if constexpr (std::is_same_v<T, bool>) return v ? "True" : "False";
			else if constexpr (std::is_same_v<T, float>) return shortest_float_text(v, 6, 9);
			else if constexpr (std::is_same_v<T, double>) return shortest_float_text(v, 15, 17);
			else return std::to_string(v);
		},
		spec.member);
}

// Python's repr() of a float (what str() and '{}'.format print): the shortest digits that read back
// to the same value, in fixed notation for decimal exponents -4..15 (".0" on whole numbers), else as
// d.ddde-XX. nerf-pytorch holds float options as doubles; ours that are floats print the digits that
// identify the float, which for any value typed by a person are the digits typed.
template <typename T>
std::string python_float_text(T value) {
	constexpr int max_digits = std::is_same<T, float>::value ? 9 : 17;
	char buf[64];
	for (int digits = 1; digits <= max_digits; ++digits) {
		std::snprintf(buf, sizeof(buf), "%.*e", digits - 1, static_cast<double>(value));
		if (std::is_same<T, float>::value ? std::strtof(buf, nullptr) == static_cast<float>(value)
		                                  : std::strtod(buf, nullptr) == static_cast<double>(value))
			break;
	}
	// buf is [-]d[.ddd]e(+|-)XX
	std::string text = buf;
	std::string sign;
	if (text.front() == '-') {
		sign = "-";
		text.erase(0, 1);
	}
	const size_t e_pos = text.find('e');
	const int exponent = std::atoi(text.c_str() + e_pos + 1);
	std::string digits;
	for (size_t i = 0; i < e_pos; ++i)
		if (text[i] != '.') digits += text[i];
	while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
	if (exponent < -4 || exponent >= 16) {
		char exp_text[16];
		std::snprintf(exp_text, sizeof(exp_text), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
		return sign + digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "") + exp_text;
	}
	if (exponent < 0) return sign + "0." + std::string(-exponent - 1, '0') + digits;
	if ((int)digits.size() <= exponent + 1) return sign + digits + std::string(exponent + 1 - digits.size(), '0') + ".0";
	return sign + digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
}

// An option's value as Python's str() prints it in nerf-pytorch's args.txt: strings unquoted, an
// unset string (the reference's default None) as None.
std::string python_value_text(const OptionSpec& spec, const Config& cfg) {
	return std::visit(
		[&](auto member) -> std::string {
			using T = std::decay_t<decltype(cfg.*member)>;
			const T& v = cfg.*member;
			if constexpr (std::is_same_v<T, std::string>) return v.empty() ? "None" : v;
			else if constexpr (std::is_same_v<T, bool>) return v ? "True" : "False";
			else if constexpr (std::is_floating_point_v<T>) return python_float_text(v);
			else return std::to_string(v);
		},
		spec.member);
}

const char* expected_kind(const OptionSpec& spec) {
	return std::visit(
		[](auto member) -> const char* {
			using T = std::decay_t<decltype(Config{}.*member)>;
			if constexpr (std::is_same_v<T, bool>) return "True or False";
			else if constexpr (std::is_same_v<T, int>) return "an integer";
			else if constexpr (std::is_same_v<T, unsigned long long>) return "a non-negative integer";
			else if constexpr (std::is_floating_point_v<T>) return "a number";
			else return "a string";
		},
		spec.member);
}

// Parses `text` into the option's field; false when the text is not a value of the option's type.
// Integers and numbers must use the whole text, as Python's int()/float() do for configargparse.
bool assign_from_text(const OptionSpec& spec, const std::string& text, Config& cfg) {
	return std::visit(
		[&](auto member) -> bool {
			using T = std::decay_t<decltype(cfg.*member)>;
			if constexpr (std::is_same_v<T, std::string>) {
				cfg.*member = text;
				return true;
			} else if constexpr (std::is_same_v<T, bool>) {
				// configargparse's spellings for store_true options.
				std::string lower;
				for (char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
				if (lower == "true" || lower == "yes" || lower == "1") cfg.*member = true;
				else if (lower == "false" || lower == "no" || lower == "0") cfg.*member = false;
				else return false;
				return true;
			} else {
				if (text.empty() || std::isspace(static_cast<unsigned char>(text.front()))) return false;
				const char* begin = text.c_str();
				char* end = nullptr;
				errno = 0;
				if constexpr (std::is_same_v<T, int>) {
					const long long v = std::strtoll(begin, &end, 10);
					if (*end != '\0' || errno == ERANGE || v < std::numeric_limits<int>::min() ||
					    v > std::numeric_limits<int>::max())
						return false;
					cfg.*member = static_cast<int>(v);
				} else if constexpr (std::is_same_v<T, unsigned long long>) {
					if (text.front() == '-') return false;  // strtoull would wrap it around
					const unsigned long long v = std::strtoull(begin, &end, 10);
					if (*end != '\0' || errno == ERANGE) return false;
					cfg.*member = v;
				} else if constexpr (std::is_same_v<T, float>) {
					const float v = std::strtof(begin, &end);
					if (*end != '\0' || !std::isfinite(v)) return false;
					cfg.*member = v;
				} else {
					const double v = std::strtod(begin, &end);
					if (*end != '\0' || !std::isfinite(v)) return false;
					cfg.*member = v;
				}
				return true;
			}
		},
		spec.member);
}

std::string bound_text(double v) { return shortest_float_text(v, 6, 17); }

// Why the option's current value is not allowed, or "" when it is.
std::string range_problem(const OptionSpec& spec, const Config& cfg) {
	return std::visit(
		[&](auto member) -> std::string {
			using T = std::decay_t<decltype(cfg.*member)>;
			const T& v = cfg.*member;
			std::ostringstream why;
			if constexpr (std::is_same_v<T, std::string>) {
				if (spec.choices.empty()) return "";
				for (const std::string& choice : spec.choices)
					if (v == choice) return "";
				why << "option '" << spec.name << "' must be one of";
				for (const std::string& choice : spec.choices) why << " " << choice;
				why << "; got '" << v << "'";
			} else if constexpr (std::is_same_v<T, bool>) {
				return "";
			} else {
				const double x = static_cast<double>(v);
				// Written so that NaN fails every test.
				if (!std::isfinite(x)) why << "option '" << spec.name << "' must be a finite number";
				else if (spec.low && !(spec.low->inclusive ? x >= spec.low->value : x > spec.low->value))
					why << "option '" << spec.name << "' must be " << (spec.low->inclusive ? ">= " : "> ")
					    << bound_text(spec.low->value);
				else if (spec.high && !(spec.high->inclusive ? x <= spec.high->value : x < spec.high->value))
					why << "option '" << spec.name << "' must be " << (spec.high->inclusive ? "<= " : "< ")
					    << bound_text(spec.high->value);
				else return "";
				why << ", got " << value_text(spec, cfg);
			}
			return why.str();
		},
		spec.member);
}

// Edits (insert, delete, replace, swap two neighbours) from one name to the other, ignoring case: what
// a typo of an option name costs (the optimal string alignment distance).
size_t edit_distance(const std::string& a, const std::string& b) {
	auto same = [&](size_t i, size_t j) { return std::tolower((unsigned char)a[i]) == std::tolower((unsigned char)b[j]); };
	std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
	for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
	for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
	for (size_t i = 1; i <= a.size(); ++i)
		for (size_t j = 1; j <= b.size(); ++j) {
			d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (same(i - 1, j - 1) ? 0 : 1)});
			if (i > 1 && j > 1 && same(i - 1, j - 2) && same(i - 2, j - 1)) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
		}
	return d[a.size()][b.size()];
}

// --- the config file ---------------------------------------------------------

// The value part of `key = value`: an optional quoted value, then an optional comment. As in
// configargparse, '#' starts a comment only at the start of the value or after a blank, so a path like
// `a#b` survives.
std::string parse_value(const std::string& raw) {
	const std::string text = trim(raw);
	auto is_comment = [](const std::string& rest) {
		const std::string t = trim(rest);
		return t.empty() || t.front() == '#';
	};
	if (!text.empty() && (text.front() == '"' || text.front() == '\'')) {
		for (size_t close = text.find(text.front(), 1); close != std::string::npos;
		     close = text.find(text.front(), close + 1)) {
			const std::string rest = text.substr(close + 1);
			if (is_comment(rest)) return text.substr(1, close - 1);
		}
	}
	for (size_t hash = text.find('#'); hash != std::string::npos; hash = text.find('#', hash + 1))
		if (hash == 0 || std::isspace(static_cast<unsigned char>(text[hash - 1]))) return trim(text.substr(0, hash));
	return text;
}

// A config file is text; a NUL or other control byte means another kind of file was given.
std::string not_a_config_hint(const std::string& line) {
	for (char c : line)
		if ((unsigned char)c < 0x20 && c != '\t') return " (this looks like a binary file, not a config file)";
	return "";
}

void load_config_stream(std::istream& in, const std::string& path, Config& out) {
	std::string line;
	int line_number = 0;
	while (std::getline(in, line)) {
		++line_number;
		if (line_number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte order mark
		const std::string text = trim(line);
		// configargparse skips comment lines ('#', ';'), INI section headers and YAML '---' separators.
		if (text.empty() || text.front() == '#' || text.front() == ';' || text.front() == '[' || text.rfind("---", 0) == 0)
			continue;
		const std::string where = path + ":" + std::to_string(line_number) + ": ";
		const size_t equals = text.find('=');
		if (equals == std::string::npos)
			NERF_FAIL(where << "expected 'key = value', got '" << printable_excerpt(text) << "'" << not_a_config_hint(text));
		const std::string key = trim(text.substr(0, equals));
		if (key.empty()) NERF_FAIL(where << "missing option name before '=' in '" << printable_excerpt(text) << "'");
		const OptionSpec* spec = find_option(key);
		if (!spec)
			NERF_FAIL(where << "unknown option '" << printable_excerpt(key) << "'" << did_you_mean(key, option_names(), "")
			                << not_a_config_hint(text));
		const std::string value = parse_value(text.substr(equals + 1));
		if (!assign_from_text(*spec, value, out))
			NERF_FAIL(where << "option '" << key << "' expects " << expected_kind(*spec) << ", got '"
			                << printable_excerpt(value) << "'");
		const std::string problem = range_problem(*spec, out);
		if (!problem.empty()) NERF_FAIL(where << problem);
	}
}

} // namespace

void load_config_file(const std::string& path, Config& out) {
	std::ifstream in(path);
	if (!in) NERF_FAIL("cannot open config file '" << path << "'");
	load_config_stream(in, path, out);
	if (in.bad()) NERF_FAIL("error while reading config file '" << path << "'");
}

std::string did_you_mean(const std::string& given, const std::vector<std::string>& known, const std::string& prefix) {
	// Within a third of the name (at least one edit): N_iter, n_iters, N_itres, nera; not an unrelated word.
	const size_t limit = std::max<size_t>(1, given.size() / 3);
	const std::string* best = nullptr;
	size_t best_distance = limit + 1;
	for (const std::string& name : known) {
		const size_t d = edit_distance(given, name);
		if (d < best_distance) {
			best_distance = d;
			best = &name;
		}
	}
	return best ? " (did you mean " + prefix + *best + "?)" : "";
}

std::vector<std::string> option_names() {
	std::vector<std::string> names;
	for (const OptionSpec& spec : option_table()) names.push_back(spec.name);
	return names;
}

std::string unknown_option_message(const CLI::App& app, int argc, const char* const* argv) {
	std::vector<std::string> known;
	for (const CLI::Option* option : app.get_options())
		for (const std::string& name : option->get_lnames()) known.push_back(name);
	for (int i = 1; i < argc; ++i) {
		const std::string arg = argv[i];
		if (arg == "--") break;
		// A negative number is a value, not an option.
		if (arg.size() < 2 || arg[0] != '-' || std::isdigit((unsigned char)arg[1]) || arg[1] == '.') continue;
		const size_t dashes = arg[1] == '-' ? 2 : 1;
		const size_t equals = arg.find('=');
		const std::string name = arg.substr(dashes, equals == std::string::npos ? std::string::npos : equals - dashes);
		const std::string flag = std::string(dashes, '-') + name;
		const CLI::Option* option = app.get_option_no_throw(flag);
		if (!option) return "unknown option " + flag + did_you_mean(name, known);
		if (option->get_type_size_min() > 0 && equals == std::string::npos) ++i;  // its value, whatever it looks like
	}
	return "";
}

std::vector<OptionChange> config_changes(const Config& before, const Config& after) {
	std::vector<OptionChange> changes;
	for (const OptionSpec& spec : option_table()) {
		std::string a = value_text(spec, before), b = value_text(spec, after);
		if (a != b) changes.push_back({spec.name, std::move(a), std::move(b)});
	}
	return changes;
}

const std::vector<FixedOption>& options_fixed_by_checkpoint() {
	const auto nerf = [](const Config& c) { return c.model == "nerf"; };
	const auto ngp = [](const Config& c) { return c.model == "ngp"; };
	static const std::vector<FixedOption> table = {
		{"model", "the field type"},
		{"netdepth", "the coarse network's shape", nerf},
		{"netwidth", "the coarse network's shape", nerf},
		{"netdepth_fine", "the fine network's shape",
		 [](const Config& c) { return c.model == "nerf" && c.N_importance > 0 && !c.occ_grid; }},
		{"netwidth_fine", "the fine network's shape",
		 [](const Config& c) { return c.model == "nerf" && c.N_importance > 0 && !c.occ_grid; }},
		// Only whether there is a fine network: the number of fine samples may change.
		{"N_importance", "whether there is a fine network", [](const Config& c) { return c.model == "nerf" && !c.occ_grid; },
		 [](const Config& c) { return std::string(c.N_importance > 0 ? "fine" : "none"); }},
		{"use_viewdirs", "the networks' inputs", nerf},
		{"i_embed", "the positional encoding", nerf},
		{"multires", "the positional encoding of positions", [](const Config& c) { return c.model == "nerf" && c.i_embed == 0; }},
		{"multires_views", "the positional encoding of view directions",
		 [](const Config& c) { return c.model == "nerf" && c.i_embed == 0 && c.use_viewdirs; }},
		{"occ_grid", "the field type: an occupancy grid with one network"},
		{"occ_resolution", "the occupancy grid's shape", [](const Config& c) { return c.occ_grid; }},
		{"occ_aabb", "the occupancy grid's box", [](const Config& c) { return c.occ_grid; }},
		{"n_levels", "the hash grid's shape", ngp},
		{"n_features_per_level", "the hash grid's shape", ngp},
		{"log2_hashmap_size", "the hash grid's tables", ngp},
		{"base_resolution", "the hash grid's levels", ngp},
		{"finest_resolution", "the hash grid's levels", ngp},
	};
	return table;
}

std::vector<std::string> fixed_option_conflicts(const Config& trained, const Config& resumed) {
	std::vector<std::string> conflicts;
	for (const FixedOption& fixed : options_fixed_by_checkpoint()) {
		if (fixed.applies && !fixed.applies(trained)) continue;  // another row names what changed
		const OptionSpec* spec = find_option(fixed.name);
		NERF_CHECK(spec != nullptr);
		const std::string a = value_text(*spec, trained), b = value_text(*spec, resumed);
		const bool same = fixed.value ? fixed.value(trained) == fixed.value(resumed) : a == b;
		if (!same) conflicts.push_back(std::string(fixed.name) + " = " + a + " in the checkpoint, " + b + " now (" + fixed.fixes + ")");
	}
	return conflicts;
}

std::string config_to_string(const Config& cfg) {
	std::string text;
	for (const OptionSpec& spec : option_table()) {
		text += spec.name;
		text += " = ";
		text += value_text(spec, cfg);
		text += '\n';
	}
	return text;
}

std::string config_to_args_text(const Config& cfg) {
	std::vector<const OptionSpec*> sorted;
	for (const OptionSpec& spec : option_table()) sorted.push_back(&spec);
	// Python compares str by code point, which for these ASCII names is std::string's byte order
	// (upper case first: N_importance comes before basedir).
	std::sort(sorted.begin(), sorted.end(),
	          [](const OptionSpec* a, const OptionSpec* b) { return std::string(a->name) < std::string(b->name); });
	std::string text;
	for (const OptionSpec* spec : sorted) text += std::string(spec->name) + " = " + python_value_text(*spec, cfg) + "\n";
	return text;
}

bool parse_config(int argc, const char* const* argv, Config& out, const std::string& program_description,
                  const std::function<void(CLI::App&)>& add_tool_options) {
	// CLI11 writes into a scratch copy; which options it saw decides what overrides the file afterwards,
	// so the command line wins wherever --config appears among the arguments.
	Config from_command_line = out;
	CLI::App app(program_description);
	app.option_defaults()->always_capture_default();
	// argparse keeps the last of repeated options.
	app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

	std::vector<std::pair<const OptionSpec*, CLI::Option*>> registered;
	for (const OptionSpec& spec : option_table()) {
		std::string help = spec.help;
		if (!spec.choices.empty()) {
			help += ":";
			for (size_t i = 0; i < spec.choices.size(); ++i) help += (i ? " / " : " ") + spec.choices[i];
		}
		const std::string flag = std::string("--") + spec.name;
		CLI::Option* option = std::visit(
			[&](auto member) -> CLI::Option* {
				using T = std::decay_t<decltype(from_command_line.*member)>;
				if constexpr (std::is_same_v<T, bool>) return app.add_flag(flag, from_command_line.*member, help);
				else return app.add_option(flag, from_command_line.*member, help);
			},
			spec.member);
		// CLI11 alone would let strtoull wrap "-1" around for the seed; this check reads every value the way
		// the config file reader does, so both reject the same text with the same words.
		if (!std::holds_alternative<bool Config::*>(spec.member) && !std::holds_alternative<std::string Config::*>(spec.member)) {
			option->check(CLI::Validator(
				[&spec](std::string& text) -> std::string {
					Config scratch;
					if (assign_from_text(spec, text, scratch)) return "";
					return std::string("expects ") + expected_kind(spec) + ", got '" + text + "'";
				},
				"", "same as a config file value"));
		}
		registered.emplace_back(&spec, option);
	}
	if (add_tool_options) add_tool_options(app);

	try {
		app.parse(argc, argv);
	} catch (const CLI::CallForHelp&) {
		std::cout << app.help();
		return false;
	} catch (const CLI::CallForAllHelp&) {
		std::cout << app.help("", CLI::AppFormatMode::All);
		return false;
	} catch (const CLI::ParseError& e) {
		// CLI11 lists what it could not place, last first ("10 --N_iter"); the option itself is clearer.
		const std::string unknown = unknown_option_message(app, argc, argv);
		NERF_FAIL("command line: " << (unknown.empty() ? std::string(e.what()) : unknown) << " (see --help)");
	}

	const CLI::Option* config_option = app.get_option("--config");
	if (config_option->count() > 0) load_config_file(from_command_line.config, out);

	for (const auto& [spec, option] : registered) {
		if (option->count() == 0) continue;
		std::visit([&](auto member) { out.*member = from_command_line.*member; }, spec->member);
		const std::string problem = range_problem(*spec, out);
		if (!problem.empty()) NERF_FAIL("command line: " << problem);
	}
	// Values that came from neither the file nor the command line are the caller's; check them too.
	validate_config(out);
	return true;
}

void validate_config(const Config& cfg, const std::string& where) {
	for (const OptionSpec& spec : option_table()) {
		const std::string problem = range_problem(spec, cfg);
		if (!problem.empty()) NERF_FAIL(where << ": " << problem);
	}
	try {
		check_option_combinations(cfg);
	} catch (const Error& e) {
		NERF_FAIL(where << ": " << e.what());
	}
}

void check_option_combinations(const Config& cfg) {
	if (cfg.model == "ngp" && !cfg.occ_grid)
		NERF_FAIL("model = ngp is trained and rendered only by ray marching through the occupancy grid: add occ_grid = "
		          "True (--occ_grid); the dense coarse + fine sampler is the reference model's");
	if (cfg.model == "ngp" && cfg.finest_resolution < (float)cfg.base_resolution)
		NERF_FAIL("finest_resolution = " << cfg.finest_resolution << " is below base_resolution = " << cfg.base_resolution
		                                 << ": the finest hash level cannot be coarser than the first");
	if (cfg.N_importance > 0 && cfg.N_samples < 3)
		NERF_FAIL("N_samples = " << cfg.N_samples << " with N_importance = " << cfg.N_importance
		                         << ": the fine pass resamples from the coarse pass's N_samples - 2 inner weights, so it "
		                            "needs N_samples >= 3 (or N_importance = 0)");
}

} // namespace nerf
