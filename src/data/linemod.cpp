// LINEMOD scenes, as nerf-pytorch's load_LINEMOD.py plus run_nerf.py's compositing.
//
// The jsons are Blender-style (transforms_{train,val,test}.json, frames with file_path and
// transform_matrix) with, per frame, a 3x3 "intrinsic_matrix", and top-level "near" and "far".
// As the reference: focal and K come from the first frame of the last split read (test); near is
// floor(min(train near, test near)) and far ceil(max(train far, test far)) (val's are not read); images
// keep their stored file_path (no ".png" appended); the render path is the Blender one.
// Assumptions and deliberate differences:
//  - file_path is used as written when absolute; a relative one is looked up under basedir first, then
//    as written (the reference opens it relative to the working directory).
//  - half_res halves K as well as focal: the reference leaves K at full resolution, which would cast
//    rays for the wrong pixels (and its half-res resize into a 3-channel array fails on RGBA input).
#include "loader_util.h"

#include "nerf/common.h"
#include "nerf/data/loaders.h"

#include <cmath>

namespace nerf {

namespace {

std::string resolve_image(const std::string& basedir, const std::string& file_path) {
	if (!file_path.empty() && file_path[0] == '/') return file_path;
	const std::string under_base = data::join(basedir, file_path);
	if (data::exists(under_base) || !data::exists(file_path)) return under_base;
	return file_path;
}

double json_number(const nlohmann::json& meta, const char* key, const std::string& path) {
	if (!meta.contains(key) || !meta[key].is_number()) NERF_FAIL(path << ": no numeric \"" << key << "\"");
	const double v = meta[key].get<double>();
	if (!std::isfinite(v)) NERF_FAIL(path << ": \"" << key << "\" is not finite");
	return v;
}

} // namespace

Dataset load_linemod(const std::string& basedir, bool half_res, int testskip, bool white_bkgd,
                     uint64_t max_image_pixels) {
	data::require_directory(basedir, "LINEMOD scene");
	Dataset ds;
	std::vector<std::string> paths;
	std::array<double, 9> K{};
	double train_near = 0, train_far = 0, test_near = 0, test_far = 0;
	const char* splits[3] = {"train", "val", "test"};
	std::vector<int>* indices[3] = {&ds.i_train, &ds.i_val, &ds.i_test};
	for (int s = 0; s < 3; ++s) {
		const std::string split = splits[s];
		const std::string json_path = data::join(basedir, "transforms_" + split + ".json");
		const nlohmann::json meta = data::read_json(json_path);
		if (!meta.is_object() || !meta.contains("frames") || !meta["frames"].is_array() || meta["frames"].empty())
			NERF_FAIL(json_path << ": no \"frames\" array (or it is empty)");
		const int skip = (split == "train" || testskip <= 0) ? 1 : testskip;
		const auto& frames = meta["frames"];
		const size_t first = ds.poses.size();
		for (size_t i = 0; i < frames.size(); i += skip) {
			const auto& frame = frames[i];
			if (!frame.is_object() || !frame.contains("file_path") || !frame["file_path"].is_string())
				NERF_FAIL(json_path << ": frame " << i << " has no string \"file_path\"");
			if (!frame.contains("transform_matrix")) NERF_FAIL(json_path << ": frame " << i << " has no \"transform_matrix\"");
			paths.push_back(resolve_image(basedir, frame["file_path"].get<std::string>()));
			ds.poses.push_back(data::read_pose_json(frame["transform_matrix"], json_path, (int)i));
		}
		*indices[s] = data::iota_range((int)first, (int)ds.poses.size());
		if (split == "test") {
			const auto& m = frames[0].contains("intrinsic_matrix") ? frames[0]["intrinsic_matrix"] : nlohmann::json();
			bool ok = m.is_array() && m.size() == 3;
			for (int r = 0; ok && r < 3; ++r) {
				ok = m[r].is_array() && m[r].size() == 3;
				for (int c = 0; ok && c < 3; ++c) {
					ok = m[r][c].is_number();
					if (ok) K[3 * r + c] = m[r][c].get<double>();
				}
			}
			if (!ok) NERF_FAIL(json_path << ": frame 0 has no 3x3 numeric \"intrinsic_matrix\"");
			data::check_finite(K.data(), 9, json_path, "frame 0 intrinsic_matrix");
			test_near = json_number(meta, "near", json_path);
			test_far = json_number(meta, "far", json_path);
		} else if (split == "train") {
			train_near = json_number(meta, "near", json_path);
			train_far = json_number(meta, "far", json_path);
		}
	}
	std::vector<float> rgba = data::load_images(paths, max_image_pixels, 4, ds.H, ds.W, half_res ? 2 : 1);
	double focal = K[0];
	if (half_res) {
		focal *= 0.5;
		for (int k : {0, 1, 2, 3, 4, 5}) K[k] *= 0.5;  // the first two rows scale with the image
	}
	ds.focal = (float)focal;
	for (int k = 0; k < 9; ++k) ds.K[k] = (float)K[k];
	ds.near = (float)std::floor(std::min(train_near, test_near));
	ds.far = (float)std::ceil(std::max(train_far, test_far));
	ds.ndc = false;
	ds.render_poses = blender_render_path();
	if (half_res) ds.resize_note = "half_res: half the files' size; --half_res False trains at full size";

	const size_t n_pixels = ds.n_images() * (size_t)ds.H * ds.W;
	ds.images.resize(n_pixels * 3);
	data::to_rgb(rgba.data(), 4, n_pixels, white_bkgd, ds.images.data());
	ds.image_paths = paths;
	data::set_shared_camera(ds);
	return ds;
}

} // namespace nerf
