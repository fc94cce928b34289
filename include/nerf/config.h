/// @file config.h
/// @brief Every option of nerf-pytorch's config_parser (same names, same defaults), plus nerfcore's own.
#pragma once

#include "nerf/io/image.h"

#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace nerf {

struct Config {
	// --- nerf-pytorch's options, names and defaults as in run_nerf.py:config_parser ---
	std::string config;  ///< the config file that was read (empty when none)
	std::string expname;
	std::string basedir = "./logs/";
	std::string datadir = "./data/llff/fern";

	int netdepth = 8;
	int netwidth = 256;
	int netdepth_fine = 8;
	int netwidth_fine = 256;
	int N_rand = 32 * 32 * 4;
	float lrate = 5e-4f;
	int lrate_decay = 250;  ///< in thousands of steps
	int chunk = 1024 * 32;
	int netchunk = 1024 * 64;
	bool no_batching = false;
	bool no_reload = false;
	std::string ft_path;

	int N_samples = 64;
	int N_importance = 0;
	float perturb = 1.0f;
	bool use_viewdirs = false;
	int i_embed = 0;
	int multires = 10;
	int multires_views = 4;
	float raw_noise_std = 0.0f;

	bool render_only = false;
	bool render_test = false;
	int render_factor = 0;

	int precrop_iters = 0;
	float precrop_frac = 0.5f;

	std::string dataset_type = "llff";
	int testskip = 8;
	std::string shape = "greek";
	bool white_bkgd = false;
	bool half_res = false;

	/// 0: the dataset's default: 8 for LLFF (nerf-pytorch's default), and for transforms.json the
	/// smallest power of two that brings the longer image side to at most 1600 pixels (nerfstudio's rule).
	int factor = 0;
	bool no_ndc = false;
	bool lindisp = false;
	bool spherify = false;
	int llffhold = 8;
	float near = -1.0f;  ///< nerfcore's: overrides the dataset's near plane when >= 0
	float far = -1.0f;   ///< nerfcore's: overrides the dataset's far plane when >= 0

	int i_print = 100;
	int i_img = 500;  ///< accepted for nerf-pytorch's configs and ignored (its image logging is disabled code there too)
	int i_weights = 10000;
	int i_testset = 50000;
	int i_video = 50000;

	// --- nerfcore's own ---
	int N_iters = 200000;         ///< the reference hard-codes 200000 (+1) iterations
	double max_seconds = 0.0;     ///< stop training after this wall-clock time (0: no limit)
	unsigned long long seed = 0;  ///< seeds every random draw (counter-based RNG)
	std::string device = "auto";  ///< auto | cpu | cuda
	std::string precision = "tf32";  ///< fp32 | tf32 | fp16 | bf16 (GPU only; the CPU is fp32)
	bool cuda_graph = false;
	bool quiet = false;
	/// Val views rendered after training for summary.json's final_val_psnr: the first n (-1: all, 0: none).
	/// One by default: on 2 CPU cores one 400x400 lego view takes about 10 minutes.
	int n_val_eval = 1;
	int threads = 0;     ///< CPU threads (0: all cores)
	/// Largest image (width x height) the loaders decode: a corrupt or hostile file that declares a huge
	/// size fails with a message instead of allocating gigabytes. 2^28 = 16384 x 16384.
	unsigned long long max_image_pixels = kDefaultMaxImagePixels;

	// --- occupancy grid and ray marching (off: the reference's dense coarse + fine sampling) ---
	bool occ_grid = false;        ///< march rays through an occupancy grid, one network at the samples kept
	int occ_resolution = 128;     ///< cells per side
	std::string occ_aabb;         ///< "xmin,ymin,zmin,xmax,ymax,zmax"; empty: from the dataset (occ_grid_box)
	int occ_update_every = 16;    ///< steps between grid updates
	int occ_warmup = 256;         ///< steps during which an update evaluates every cell
	float occ_threshold = 0.01f;  ///< occupied: EMA of sigma * step above min(this, mean EMA)
	float render_step_size = 0.0f;  ///< marching step in world units (0: box diagonal / 1024)
	int target_samples = 0;       ///< adapt the rays per step to about this many samples (0: N_rand rays)

	// --- the model: the reference's (nerf) or instant-ngp's hash-grid field (ngp) ---
	std::string model = "nerf";   ///< nerf | ngp (trained only with occ_grid)
	// The hash-grid field, tiny-cuda-nn's JSON names and instant-ngp's defaults.
	int n_levels = 16;
	int n_features_per_level = 2;
	int log2_hashmap_size = 19;
	int base_resolution = 16;
	float finest_resolution = 2048.0f;  ///< per_level_scale = exp(ln(finest / base) / (n_levels - 1)), ~1.38
	// Its optimiser (tiny-cuda-nn's Adam names): lr warmed up over 100 steps, x0.33 at 50/75/90% of N_iters.
	float learning_rate = 1e-2f;  ///< the hash-grid model's learning rate (the reference's is lrate)
	float beta1 = 0.9f;
	float beta2 = 0.99f;
	float epsilon = 1e-15f;
	float l2_reg = 1e-6f;  ///< L2 weight decay on the networks' weights (not the hash tables)
};

/// Reads options: an optional nerf-pytorch config file (--config FILE: `key = value`, `#` comments,
/// True/False), then the command line, which overrides the file. Throws nerf::Error naming an unknown
/// key or a bad value (an unknown option with the closest known one). Returns false when --help was
/// printed. `add_tool_options`, when given, adds a tool's own options to the parser (CLI11), so that
/// --help lists them and they are parsed with the rest.
bool parse_config(int argc, const char* const* argv, Config& out, const std::string& program_description,
                  const std::function<void(CLI::App&)>& add_tool_options = {});

/// " (did you mean --NAME?)" (`prefix` before NAME: "--" on a command line, "" in a config file) for the
/// known option closest to `given` (a name without dashes; case and up to a third of the letters may
/// differ), "" when none is close enough to be a likely typo.
std::string did_you_mean(const std::string& given, const std::vector<std::string>& known, const std::string& prefix = "--");

/// "unknown option --NAME (did you mean --KNOWN?)" for the first argument in argv that names no option
/// of `app` (a tool's CLI11 parser), "" when every option is known (CLI11's own message then says
/// what is wrong). A value of an option is skipped, whatever it looks like.
std::string unknown_option_message(const CLI::App& app, int argc, const char* const* argv);

/// Every option name of the table (the Config fields), in config.txt's order.
std::vector<std::string> option_names();

/// An option whose value differs between two configs, both values as config.txt writes them.
struct OptionChange {
	std::string name, before, after;
};

/// The options whose values differ from `before` to `after`, in config.txt's order.
std::vector<OptionChange> config_changes(const Config& before, const Config& after);

/// An option a checkpoint fixes: it shapes the networks, their encodings or the field, so a run
/// resumed from the checkpoint cannot change it. The one table of these (options_fixed_by_checkpoint);
/// a new model or field option that shapes the parameters belongs in it.
struct FixedOption {
	const char* name;
	const char* fixes;                            ///< what it shapes, for the message
	bool (*applies)(const Config&) = nullptr;     ///< when it matters (nullptr: always), judged on the checkpoint's config
	std::string (*value)(const Config&) = nullptr;  ///< what must stay the same (nullptr: the option's value)
};
const std::vector<FixedOption>& options_fixed_by_checkpoint();

/// The fixed options whose values differ from the checkpoint's config (`trained`) in `resumed`,
/// each as "NAME = <trained> in the checkpoint, <resumed> now (<what it fixes>)"; empty when none.
std::vector<std::string> fixed_option_conflicts(const Config& trained, const Config& resumed);

/// Reads only a config file into `out` (options not in the file keep their current values).
void load_config_file(const std::string& path, Config& out);

/// Throws nerf::Error, its message starting with `where`, when an option is outside its range or
/// options contradict each other (see check_option_combinations).
void validate_config(const Config& cfg, const std::string& where = "invalid configuration");

/// Throws nerf::Error naming the options when they cannot work together: N_importance > 0 resamples
/// from the N_samples - 2 inner weights of the coarse pass, so it needs N_samples >= 3.
void check_option_combinations(const Config& cfg);

/// The config as `key = value` lines, readable by load_config_file.
std::string config_to_string(const Config& cfg);

/// The config as nerf-pytorch's args.txt: `name = value` per option, sorted by name as Python's sorted(),
/// each value as Python's str() prints it (True/False, None for an unset string, 0.0005, 1.0, 1e-05).
std::string config_to_args_text(const Config& cfg);

} // namespace nerf
