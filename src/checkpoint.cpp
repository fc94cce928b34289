// Checkpoints: the model's flat buffers cut into nerf-pytorch-named tensors, through safetensors.
#include "nerf/checkpoint.h"

#include "nerf/common.h"
#include "nerf/io/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <unistd.h>

namespace nerf {
namespace fs = std::filesystem;

namespace {

constexpr const char* kFormatName = "nerfcore-checkpoint";
constexpr const char* kAdamM = "optimizer.exp_avg.";
constexpr const char* kAdamV = "optimizer.exp_avg_sq.";
constexpr const char* kGridDensity = "occupancy_grid.density";
constexpr const char* kGridOccupied = "occupancy_grid.occupied";
// Training wall-clock up to global_step, summed over every process that trained it.
constexpr const char* kTrainSeconds = "train_seconds";
// The format version of files without an occupancy grid: they are exactly format 1, which older
// readers accept; a grid makes a file format 2.
constexpr int kDenseFormatVersion = 1;
// Files of the reference's model with a grid are format 2, which nerfcores from before the hash-grid
// model read; a hash-grid model's file is format 3, so that those refuse it by its version instead of
// by a tensor name they do not know.
constexpr int kGridFormatVersion = 2;

/// The field type a checkpoint holds: its "field" metadata ("nerf" in files written before it).
std::string checkpoint_field(const TensorMetadata& meta) {
	const auto it = meta.find("field");
	return it == meta.end() ? std::string("nerf") : it->second;
}

/// TrainCounters as metadata (absent in files written before them: zero).
const std::pair<const char*, uint64_t TrainCounters::*> kCounterKeys[] = {
	{"rays_trained", &TrainCounters::rays},
	{"network_samples", &TrainCounters::network_samples},
	{"dropped_rays", &TrainCounters::dropped_rays},
	{"grid_samples", &TrainCounters::grid_samples},
	{"rays_drawn", &TrainCounters::rays_drawn},
	{"last_marched", &TrainCounters::last_marched},
	{"last_kept", &TrainCounters::last_kept},
};

/// The index of the first NaN or infinity among n floats, or n when all are finite.
size_t first_non_finite(const float* values, size_t n) {
	for (size_t i = 0; i < n; ++i)
		if (!std::isfinite(values[i])) return i;
	return n;
}

std::string shape_text(const std::vector<int64_t>& shape) {
	std::string s = "[";
	for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
	return s + "]";
}

long parse_long(const TensorMetadata& meta, const char* key, const std::string& path) {
	const auto it = meta.find(key);
	if (it == meta.end()) NERF_FAIL(path << ": not a nerfcore checkpoint (metadata has no " << key << ")");
	char* end = nullptr;
	errno = 0;
	const long value = std::strtol(it->second.c_str(), &end, 10);
	if (errno != 0 || end == it->second.c_str() || *end != '\0' || value < 0)
		NERF_FAIL(path << ": corrupt checkpoint metadata: " << key << " = '" << it->second << "' is not a step count");
	return value;
}

CheckpointInfo info_from_metadata(const TensorMetadata& meta, const std::string& path) {
	const auto format = meta.find("format");
	if (format == meta.end() || format->second != kFormatName)
		NERF_FAIL(path << ": not a nerfcore checkpoint (its safetensors metadata has no format = " << kFormatName << ")");
	CheckpointInfo info;
	info.path = path;
	info.format_version = (int)parse_long(meta, "format_version", path);
	if (info.format_version > kCheckpointFormatVersion)
		NERF_FAIL(path << ": checkpoint format version " << info.format_version << " is newer than this nerfcore's ("
		               << kCheckpointFormatVersion << ")");
	info.global_step = parse_long(meta, "global_step", path);
	info.adam_steps = parse_long(meta, "adam_step", path);
	info.adam_steps_fine = meta.count("adam_step_fine") ? parse_long(meta, "adam_step_fine", path) : info.adam_steps;
	const auto loss = meta.find("loss");
	if (loss != meta.end()) info.loss = std::strtod(loss->second.c_str(), nullptr);
	const auto seconds = meta.find(kTrainSeconds);
	if (seconds != meta.end()) {
		char* end = nullptr;
		info.train_seconds = std::strtod(seconds->second.c_str(), &end);
		if (end == seconds->second.c_str() || *end != '\0' || !std::isfinite(info.train_seconds) || info.train_seconds < 0.0)
			NERF_FAIL(path << ": corrupt checkpoint metadata: " << kTrainSeconds << " = '" << seconds->second
			               << "' is not a number of seconds");
	}
	const auto config = meta.find("config");
	if (config != meta.end()) info.config_text = config->second;
	return info;
}

/// A word for a POSIX shell: as it is when it holds only characters no shell treats specially.
std::string shell_word(const std::string& s) {
	const bool plain = !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	                                                     "_-./:+=@%,") == std::string::npos;
	if (plain) return s;
	std::string quoted = "'";
	for (char c : s) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
	return quoted + "'";
}

/// What torch.save wrote, by the file's first bytes: "" when it is not a PyTorch file (or unreadable,
/// which the safetensors reader reports). A safetensors file cannot start like either: its first 8
/// bytes are a header length, and these would make one far above the 100 MB limit.
std::string torch_file_kind(const std::string& path) {
	std::ifstream in(path, std::ios::binary);
	unsigned char magic[4] = {0, 0, 0, 0};
	in.read(reinterpret_cast<char*>(magic), 4);
	if (in.gcount() < 2) return "";
	if (in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4)
		return "a zip archive, as torch.save writes";
	// Pickle protocols 2 to 5 open with PROTO (0x80) and the protocol number; torch.save before
	// PyTorch 1.6 (or with _use_new_zipfile_serialization=False) writes a protocol 2 pickle.
	if (magic[0] == 0x80 && magic[1] >= 2 && magic[1] <= 5) return "a Python pickle, as torch.save wrote before PyTorch 1.6";
	return "";
}

/// The command that converts a nerf-pytorch checkpoint, written next to it with the .safetensors extension.
std::string torch_convert_command(const std::string& torch_path) {
	const std::string out = fs::path(torch_path).replace_extension(".safetensors").string();
	return "python3 tools/convert_nerf_pytorch.py to-nerfcore " + shell_word(torch_path) + " " + shell_word(out);
}

/// Throws nerf::Error with the command that converts `path` when it is a PyTorch file.
void reject_torch_file(const std::string& path) {
	const std::string kind = torch_file_kind(path);
	if (kind.empty()) return;
	NERF_FAIL(path << ": a PyTorch checkpoint (" << kind << ", such as nerf-pytorch's {step:06d}.tar), not a nerfcore "
	               << "checkpoint (safetensors). Convert it once, from nerfcore's source folder, with a Python that has "
	               << "torch and safetensors:\n    " << torch_convert_command(path)
	               << "\nthen use the .safetensors file (nerf_train resumes from it in the same folder).");
}

/// The occupancy grid of an occ_grid model from the file's tensors (shape [R, R, R] each).
void load_grid(const SafetensorsFile& file, const std::string& path, NerfModel& model) {
	const int64_t side = model.occ_grid().resolution;
	const std::vector<int64_t> shape = {side, side, side};
	for (const char* name : {kGridDensity, kGridOccupied}) {
		const auto it = file.tensors.find(name);
		if (it == file.tensors.end())
			NERF_FAIL(path << ": the checkpoint has no tensor " << name << "; the configured model has occ_grid = True "
			               << "(was the checkpoint trained without it?)");
		if (it->second.shape != shape)
			NERF_FAIL(path << ": tensor " << name << " has shape " << shape_text(it->second.shape)
			               << " in the checkpoint but the configured occ_resolution needs " << shape_text(shape));
	}
	const std::vector<float>& density = file.tensors.at(kGridDensity).data;
	const std::vector<float>& occupied = file.tensors.at(kGridOccupied).data;
	std::vector<uint8_t> flags(occupied.size());
	for (size_t i = 0; i < occupied.size(); ++i) {
		if (occupied[i] != 0.0f && occupied[i] != 1.0f)
			NERF_FAIL(path << ": tensor " << kGridOccupied << " holds " << occupied[i] << " at " << i << "; expected 0 or 1");
		flags[i] = occupied[i] != 0.0f ? 1 : 0;
	}
	model.set_occupancy_grid(density, flags);
}

} // namespace

std::string checkpoint_path(const std::string& run_dir, long global_step) {
	char name[64];
	std::snprintf(name, sizeof(name), "%06ld.safetensors", global_step);
	return (fs::path(run_dir) / name).string();
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
	std::vector<std::string> names;
	std::error_code ec;
	if (!fs::is_directory(run_dir, ec)) return {};
	for (const auto& entry : fs::directory_iterator(run_dir, ec)) {
		const std::string name = entry.path().filename().string();
		if (entry.is_regular_file(ec) && entry.path().extension() == ".safetensors") names.push_back(name);
	}
	std::sort(names.begin(), names.end());
	std::vector<std::string> paths;
	for (const auto& n : names) paths.push_back((fs::path(run_dir) / n).string());
	return paths;
}

std::string checkpoint_to_resume(const Config& cfg, const std::string& run_dir) {
	if (cfg.no_reload) return "";
	if (!cfg.ft_path.empty() && cfg.ft_path != "None") return cfg.ft_path;
	const std::vector<std::string> found = list_checkpoints(run_dir);
	if (!found.empty()) return found.back();
	// nerf-pytorch would resume from the newest of its .tar files here; starting over instead would be
	// a surprise, so say how to convert it (or to start over).
	std::vector<std::string> torch_files;
	std::error_code ec;
	if (fs::is_directory(run_dir, ec))
		for (const auto& entry : fs::directory_iterator(run_dir, ec))
			if (entry.is_regular_file(ec) && entry.path().extension() == ".tar" && !torch_file_kind(entry.path().string()).empty())
				torch_files.push_back(entry.path().string());
	if (torch_files.empty()) return "";
	const std::string newest = *std::max_element(torch_files.begin(), torch_files.end());
	NERF_FAIL(run_dir << " holds nerf-pytorch checkpoints (" << torch_files.size() << " *.tar) and no nerfcore one, so "
	                  << "there is nothing nerfcore can resume from. To continue from the newest, convert it once, from "
	                  << "nerfcore's source folder, with a Python that has torch and safetensors:\n    "
	                  << torch_convert_command(newest) << "\nor pass --no_reload to train from scratch.");
}

void save_checkpoint(const std::string& path, NerfModel& model, long global_step, double loss, double train_seconds) {
	const size_t n = model.n_floats();  // the padding between tensors is neither saved nor loaded: zero
	std::vector<float> params(n), m(n), v(n);
	Backend& backend = model.backend();
	backend.download(params.data(), model.params(), n * sizeof(float));
	backend.download(m.data(), model.adam_m(), n * sizeof(float));
	backend.download(v.data(), model.adam_v(), n * sizeof(float));

	const std::vector<ParamTensor> layout = model.parameter_tensors();
	std::vector<TensorRef> tensors;
	for (const ParamTensor& t : layout) tensors.push_back({t.name, t.shape, params.data() + t.offset});
	for (const ParamTensor& t : layout) tensors.push_back({kAdamM + t.name, t.shape, m.data() + t.offset});
	for (const ParamTensor& t : layout) tensors.push_back({kAdamV + t.name, t.shape, v.data() + t.offset});
	// A NaN saved is a NaN resumed: a diverged state must not replace a good checkpoint.
	for (const TensorRef& t : tensors) {
		const size_t count = (size_t)(t.shape.size() == 2 ? t.shape[0] * t.shape[1] : t.shape[0]);
		const size_t bad = first_non_finite(t.data, count);
		if (bad < count)
			NERF_FAIL(path << ": not saved: tensor " << t.name << " holds " << t.data[bad] << " at element " << bad
			               << " at step " << global_step << " (the training diverged)");
	}

	std::vector<float> grid_density, grid_occupied;
	if (model.uses_occupancy_grid()) {
		const uint32_t cells = occ_cell_count(model.occ_grid());
		const int64_t side = model.occ_grid().resolution;
		grid_density.resize(cells);
		std::vector<uint8_t> flags(cells);
		backend.download(grid_density.data(), model.occ_density(), cells * sizeof(float));
		backend.download(flags.data(), model.occ_occupied(), cells);
		grid_occupied.assign(flags.begin(), flags.end());  // safetensors here is F32 only: 0 or 1
		tensors.push_back({kGridDensity, {side, side, side}, grid_density.data()});
		tensors.push_back({kGridOccupied, {side, side, side}, grid_occupied.data()});
	}

	TensorMetadata metadata = {{"format", kFormatName},
	                           {"format_version", std::to_string(std::string(model.field_type()) != "nerf"
	                                                                 ? kCheckpointFormatVersion
	                                                                 : model.uses_occupancy_grid() ? kGridFormatVersion
	                                                                                               : kDenseFormatVersion)},
	                           {"field", model.field_type()},
	                           {"global_step", std::to_string(global_step)},
	                           {"adam_step", std::to_string(model.adam_steps(0))},
	                           {"adam_step_fine", std::to_string(model.has_fine() ? model.adam_steps(1) : 0)},
	                           {"config", config_to_string(model.config())}};
	if (std::isfinite(loss)) {
		char text[32];
		std::snprintf(text, sizeof(text), "%.9g", loss);
		metadata["loss"] = text;
	}
	for (const auto& [key, member] : kCounterKeys) metadata[key] = std::to_string(model.counters().*member);
	metadata["next_rays"] = std::to_string(model.counters().next_rays);
	if (std::isfinite(train_seconds) && train_seconds >= 0.0) {
		char text[32];
		std::snprintf(text, sizeof(text), "%.9g", train_seconds);
		metadata[kTrainSeconds] = text;
	}
	write_safetensors(path, tensors, metadata);
}

CheckpointInfo load_checkpoint(const std::string& path, NerfModel& model) {
	reject_torch_file(path);
	SafetensorsFile file = read_safetensors(path);
	CheckpointInfo info = info_from_metadata(file.metadata, path);
	const std::string field = checkpoint_field(file.metadata);
	if (field != model.field_type())
		NERF_FAIL(path << ": the checkpoint holds a '" << field << "' model but the configured model is '"
		               << model.field_type() << "' (model = " << model.field_type() << "); pass --model " << field
		               << " with the options it was trained with, or render it with the checkpoint's own config");

	const std::vector<ParamTensor> layout = model.parameter_tensors();
	std::set<std::string> expected;
	for (const ParamTensor& t : layout) expected.insert(t.name);
	bool has_optimizer = false;
	for (const auto& [name, tensor] : file.tensors) {
		if (name == kGridDensity || name == kGridOccupied) {
			if (!model.uses_occupancy_grid())
				NERF_FAIL(path << ": the checkpoint holds an occupancy grid (trained with occ_grid) but the configured model "
				               << "has occ_grid = False");
			continue;
		}
		const bool is_m = name.rfind(kAdamM, 0) == 0, is_v = name.rfind(kAdamV, 0) == 0;
		has_optimizer = has_optimizer || is_m || is_v;
		const std::string param_name = is_m ? name.substr(std::strlen(kAdamM)) : is_v ? name.substr(std::strlen(kAdamV)) : name;
		if (!expected.count(param_name))
			NERF_FAIL(path << ": the checkpoint has tensor " << name << " " << shape_text(tensor.shape)
			               << " that the configured model does not have (a different architecture: "
			               << (param_name.rfind("network_fine.", 0) == 0 ? "the config has no fine network, N_importance = 0"
			                                                              : "check netdepth, use_viewdirs")
			               << ")");
	}

	const size_t n = model.n_floats();  // the padding between tensors is neither saved nor loaded: zero
	std::vector<float> params(n), m(n, 0.0f), v(n, 0.0f);
	auto copy_tensor = [&](const std::string& name, const ParamTensor& t, std::vector<float>& dst) {
		const auto it = file.tensors.find(name);
		if (it == file.tensors.end())
			NERF_FAIL(path << ": the checkpoint has no tensor " << name << "; the configured model needs it with shape "
			               << shape_text(t.shape) << " (a different architecture"
			               << (name.find("network_fine.") != std::string::npos ? ": the config has a fine network, N_importance > 0"
			                                                                  : "")
			               << ")");
		if (it->second.shape != t.shape)
			NERF_FAIL(path << ": architecture mismatch: tensor " << name << " has shape " << shape_text(it->second.shape)
			               << " in the checkpoint but " << shape_text(t.shape)
			               << " in the configured model (check netdepth, netwidth, multires, use_viewdirs, N_importance)");
		const std::vector<float>& data = it->second.data;
		const size_t bad = first_non_finite(data.data(), data.size());
		if (bad < data.size())
			NERF_FAIL(path << ": tensor " << name << " holds " << data[bad] << " at element " << bad
			               << "; a checkpoint with non-finite values cannot be trained or rendered");
		std::copy(it->second.data.begin(), it->second.data.end(), dst.begin() + t.offset);
	};
	for (const ParamTensor& t : layout) copy_tensor(t.name, t, params);
	if (has_optimizer) {
		for (const ParamTensor& t : layout) copy_tensor(kAdamM + t.name, t, m);
		for (const ParamTensor& t : layout) copy_tensor(kAdamV + t.name, t, v);
	} else {
		info.adam_steps = info.adam_steps_fine = 0;
	}

	if (model.uses_occupancy_grid()) load_grid(file, path, model);
	for (const auto& [key, member] : kCounterKeys)
		model.counters().*member = file.metadata.count(key) ? (uint64_t)parse_long(file.metadata, key, path) : 0;
	model.counters().next_rays = file.metadata.count("next_rays") ? (uint32_t)parse_long(file.metadata, "next_rays", path) : 0;

	Backend& backend = model.backend();
	backend.upload(model.params(), params.data(), n * sizeof(float));
	backend.upload(model.adam_m(), m.data(), n * sizeof(float));
	backend.upload(model.adam_v(), v.data(), n * sizeof(float));
	model.set_adam_steps(info.adam_steps, info.adam_steps_fine);
	return info;
}

namespace {

/// Refuses a resume that changes an option the checkpoint fixes; prints the other changes.
void check_resumed_options(const std::string& path, const Config& cfg) {
	// A file that does not read is the load's to report (with the checkpoint to fall back on); one without
	// a config (converted from nerf-pytorch without its options) has its tensors checked there.
	Config trained;
	try {
		trained = config_from_checkpoint(path, cfg);
	} catch (const Error&) {
		return;
	}
	const std::vector<std::string> conflicts = fixed_option_conflicts(trained, cfg);
	if (!conflicts.empty()) {
		std::string list;
		for (const std::string& c : conflicts) list += "\n    " + c;
		NERF_FAIL(path << ": this run cannot resume from the checkpoint with options it fixes (they shape what the "
		               << "checkpoint holds):" << list << "\nKeep the checkpoint's values, or train a new run: another "
		               << "--expname, or --no_reload (which moves the old run's files aside)");
	}
	if (cfg.quiet) return;
	// How this invocation runs, not what it trains.
	static const std::set<std::string> invocation = {"config", "ft_path", "no_reload", "quiet", "render_only", "render_test"};
	std::string list;
	for (const OptionChange& change : config_changes(trained, cfg))
		if (!invocation.count(change.name)) list += (list.empty() ? "" : ", ") + change.name + " " + change.before + " -> " + change.after;
	if (!list.empty()) std::printf("options that differ from the checkpoint's: %s\n", list.c_str());
}

} // namespace

CheckpointInfo resume_training(const Config& cfg, const std::string& run_dir, NerfModel& model) {
	const std::string path = checkpoint_to_resume(cfg, run_dir);
	if (path.empty()) return CheckpointInfo{};
	if (!cfg.quiet) std::printf("Reloading from %s\n", path.c_str());
	check_resumed_options(path, cfg);
	try {
		return load_checkpoint(path, model);
	} catch (const Error& e) {
		// ft_path is the user's explicit choice; for the newest checkpoint of the run, name the newest
		// older one that loads, so that the way on is one option away. Nothing is loaded silently.
		const bool chosen_by_user = !cfg.ft_path.empty() && cfg.ft_path != "None";
		if (chosen_by_user) throw;
		const std::vector<std::string> found = list_checkpoints(run_dir);
		for (auto older = found.rbegin(); older != found.rend(); ++older) {
			if (*older == path) continue;
			CheckpointInfo info;
			try {
				info = load_checkpoint(*older, model);  // the run stops below, so the model may be overwritten
			} catch (const Error&) {
				continue;
			}
			NERF_FAIL(e.what() << ". The newest checkpoint that loads is " << *older << " (step " << info.global_step
			                   << "): resume from it with --ft_path " << *older << ", or start over with --no_reload");
		}
		NERF_FAIL(e.what() << ". No other checkpoint in " << run_dir << " loads; start over with --no_reload");
	}
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
	reject_torch_file(path);
	return info_from_metadata(read_safetensors_metadata(path), path);
}

Config config_from_checkpoint(const std::string& path, Config base) {
	const CheckpointInfo info = read_checkpoint_info(path);
	if (info.config_text.empty()) NERF_FAIL(path << ": the checkpoint stores no config");
	// load_config_file reads a file; the text goes through a private temporary one.
	std::string tmp = (fs::temp_directory_path() / "nerfcore-ckpt-config.XXXXXX").string();
	const int fd = ::mkstemp(&tmp[0]);
	if (fd < 0) NERF_FAIL("cannot create a temporary file for the checkpoint's config (" << std::strerror(errno) << ")");
	::close(fd);
	struct Remove {
		std::string p;
		~Remove() { ::unlink(p.c_str()); }
	} remove_tmp{tmp};
	{
		std::ofstream out(tmp);
		out << info.config_text;
		if (!out) NERF_FAIL(tmp << ": cannot write the checkpoint's config");
	}
	const std::string config_file = base.config;
	try {
		load_config_file(tmp, base);
	} catch (const Error& e) {
		NERF_FAIL(path << ": the checkpoint's config does not parse: " << e.what());
	}
	base.config = config_file;
	return base;
}

} // namespace nerf
