// COLMAP sparse models, binary and text, and LLFF's conversion of a model to poses_bounds rows
// (imgs2poses.py: load_colmap_data + save_poses).
// Binary layout (little-endian), as COLMAP writes it:
//   cameras.bin   u64 n; n x { i32 camera_id, i32 model_id, u64 width, u64 height, f64 params[model] }
//   images.bin    u64 n; n x { i32 image_id, f64 qvec[4], f64 tvec[3], i32 camera_id, char name[] '\0',
//                              u64 n_points2D, n_points2D x { f64 x, f64 y, i64 point3D_id } }
//   points3D.bin  u64 n; n x { u64 point3D_id, f64 xyz[3], u8 rgb[3], f64 error, u64 track_length,
//                              track_length x { i32 image_id, i32 point2D_idx } }
#include "nerf/data/colmap.h"

#include "nerf/common.h"

#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <unordered_map>

namespace nerf {

namespace {

struct CameraModelInfo {
	const char* name;
	int n_params;
};

// COLMAP's model ids (src/colmap/sensor/models.h) and their parameter counts.
const CameraModelInfo kCameraModels[] = {
	{"SIMPLE_PINHOLE", 3}, {"PINHOLE", 4},        {"SIMPLE_RADIAL", 4},         {"RADIAL", 5},
	{"OPENCV", 8},         {"OPENCV_FISHEYE", 8}, {"FULL_OPENCV", 12},          {"FOV", 5},
	{"SIMPLE_RADIAL_FISHEYE", 4}, {"RADIAL_FISHEYE", 5}, {"THIN_PRISM_FISHEYE", 12}, {"RAD_TAN_THIN_PRISM_FISHEYE", 16},
};
constexpr int kNumCameraModels = (int)(sizeof(kCameraModels) / sizeof(kCameraModels[0]));

int model_id_of(const std::string& name) {
	for (int i = 0; i < kNumCameraModels; ++i)
		if (name == kCameraModels[i].name) return i;
	return -1;
}

std::string read_file(const std::string& path) {
	std::ifstream in(path, std::ios::binary);
	if (!in) NERF_FAIL(path << ": cannot open COLMAP file");
	return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Sequential little-endian reads from a whole file, failing with the file name on truncation.
class ByteReader {
public:
	ByteReader(std::string path) : path_(std::move(path)), bytes_(read_file(path_)) {}
	template <typename T>
	T get(const char* what) {
		if (pos_ + sizeof(T) > bytes_.size())
			NERF_FAIL(path_ << ": truncated at byte " << pos_ << " while reading " << what);
		T value;
		std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
		pos_ += sizeof(T);
		return value;
	}
	std::string get_cstring(const char* what) {
		const size_t end = bytes_.find('\0', pos_);
		if (end == std::string::npos) NERF_FAIL(path_ << ": truncated at byte " << pos_ << " while reading " << what);
		std::string s = bytes_.substr(pos_, end - pos_);
		pos_ = end + 1;
		return s;
	}
	void skip(uint64_t count, uint64_t item_bytes, const char* what) {
		if (item_bytes && count > (bytes_.size() - pos_) / item_bytes)
			NERF_FAIL(path_ << ": truncated at byte " << pos_ << " while reading " << what);
		pos_ += count * item_bytes;
	}
	// A count that cannot fit in the rest of the file means a corrupt file, not a huge allocation.
	uint64_t get_count(uint64_t min_item_bytes, const char* what) {
		const uint64_t n = get<uint64_t>(what);
		if (min_item_bytes && n > (bytes_.size() - pos_) / min_item_bytes)
			NERF_FAIL(path_ << ": " << what << " says " << n << " records but only " << (bytes_.size() - pos_) << " bytes remain");
		return n;
	}
	void expect_end() const {
		if (pos_ != bytes_.size()) NERF_FAIL(path_ << ": " << (bytes_.size() - pos_) << " unexpected bytes after the last record");
	}
	const std::string& path() const { return path_; }

private:
	std::string path_;
	std::string bytes_;
	size_t pos_ = 0;
};

std::string join(const std::string& dir, const char* name) { return (std::filesystem::path(dir) / name).string(); }

// Lines of a COLMAP text file with their 1-based numbers; comments and blank lines are kept so that
// images.txt can take the (possibly empty) line after each image as its points.
std::vector<std::string> text_lines(const std::string& path) {
	std::istringstream in(read_file(path));
	std::vector<std::string> lines;
	std::string line;
	while (std::getline(in, line)) {
		if (!line.empty() && line.back() == '\r') line.pop_back();
		lines.push_back(line);
	}
	return lines;
}

bool is_skippable(const std::string& line) {
	const size_t first = line.find_first_not_of(" \t");
	return first == std::string::npos || line[first] == '#';
}

template <typename T>
T parse_token(std::istringstream& ss, const std::string& path, size_t line_no, const char* what) {
	T value;
	if (!(ss >> value)) NERF_FAIL(path << ":" << line_no << ": cannot read " << what);
	return value;
}

void check_quaternion(const std::array<double, 4>& q, const std::array<double, 3>& t, const std::string& where) {
	for (double v : q)
		if (!std::isfinite(v)) NERF_FAIL(where << ": non-finite quaternion");
	for (double v : t)
		if (!std::isfinite(v)) NERF_FAIL(where << ": non-finite translation");
	const double norm = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
	if (norm < 1e-6) NERF_FAIL(where << ": zero quaternion");
}

// np.percentile(values, q) with linear interpolation.
double percentile(std::vector<double> values, double q) {
	std::sort(values.begin(), values.end());
	const double pos = q / 100.0 * (double)(values.size() - 1);
	const size_t lo = (size_t)std::floor(pos);
	const size_t hi = std::min(lo + 1, values.size() - 1);
	return values[lo] + (pos - (double)lo) * (values[hi] - values[lo]);
}

} // namespace

ColmapModel read_colmap_model_binary(const std::string& dir) {
	ColmapModel model;
	{
		ByteReader in(join(dir, "cameras.bin"));
		const uint64_t n = in.get_count(24, "the camera count");
		for (uint64_t i = 0; i < n; ++i) {
			ColmapCamera cam;
			cam.id = in.get<uint32_t>("camera_id");
			cam.model_id = in.get<int32_t>("model_id");
			if (cam.model_id < 0 || cam.model_id >= kNumCameraModels)
				NERF_FAIL(in.path() << ": camera " << cam.id << " has unknown camera model id " << cam.model_id);
			cam.model = kCameraModels[cam.model_id].name;
			cam.width = in.get<uint64_t>("width");
			cam.height = in.get<uint64_t>("height");
			for (int k = 0; k < kCameraModels[cam.model_id].n_params; ++k) cam.params.push_back(in.get<double>("camera params"));
			model.cameras.push_back(std::move(cam));
		}
		in.expect_end();
	}
	{
		ByteReader in(join(dir, "images.bin"));
		const uint64_t n = in.get_count(64 + 1 + 8, "the image count");
		for (uint64_t i = 0; i < n; ++i) {
			ColmapImage img;
			img.id = in.get<uint32_t>("image_id");
			for (auto& q : img.qvec) q = in.get<double>("qvec");
			for (auto& t : img.tvec) t = in.get<double>("tvec");
			img.camera_id = in.get<uint32_t>("camera_id");
			img.name = in.get_cstring("image name");
			const uint64_t n_points2d = in.get<uint64_t>("num_points2D");
			in.skip(n_points2d, 24, "points2D");
			check_quaternion(img.qvec, img.tvec, in.path() + ": image " + img.name);
			model.images.push_back(std::move(img));
		}
		in.expect_end();
	}
	{
		ByteReader in(join(dir, "points3D.bin"));
		const uint64_t n = in.get_count(8 + 24 + 3 + 8 + 8, "the point count");
		model.points.reserve(n);
		for (uint64_t i = 0; i < n; ++i) {
			ColmapPoint pt;
			pt.id = in.get<uint64_t>("point3D_id");
			for (auto& x : pt.xyz) x = in.get<double>("xyz");
			in.skip(3, 1, "rgb");
			in.get<double>("error");
			const uint64_t track_length = in.get_count(8, "track_length");
			pt.image_ids.resize(track_length);
			for (uint64_t k = 0; k < track_length; ++k) {
				pt.image_ids[k] = in.get<uint32_t>("track image_id");
				in.get<uint32_t>("track point2D_idx");
			}
			model.points.push_back(std::move(pt));
		}
		in.expect_end();
	}
	return model;
}

ColmapModel read_colmap_model_text(const std::string& dir) {
	ColmapModel model;
	{
		const std::string path = join(dir, "cameras.txt");
		const auto lines = text_lines(path);
		for (size_t i = 0; i < lines.size(); ++i) {
			if (is_skippable(lines[i])) continue;
			std::istringstream ss(lines[i]);
			ColmapCamera cam;
			cam.id = parse_token<uint32_t>(ss, path, i + 1, "CAMERA_ID");
			cam.model = parse_token<std::string>(ss, path, i + 1, "MODEL");
			cam.model_id = model_id_of(cam.model);
			if (cam.model_id < 0) NERF_FAIL(path << ":" << i + 1 << ": unknown camera model '" << cam.model << "'");
			cam.width = parse_token<uint64_t>(ss, path, i + 1, "WIDTH");
			cam.height = parse_token<uint64_t>(ss, path, i + 1, "HEIGHT");
			for (int k = 0; k < kCameraModels[cam.model_id].n_params; ++k)
				cam.params.push_back(parse_token<double>(ss, path, i + 1, "PARAMS"));
			model.cameras.push_back(std::move(cam));
		}
	}
	{
		const std::string path = join(dir, "images.txt");
		const auto lines = text_lines(path);
		for (size_t i = 0; i < lines.size(); ++i) {
			if (is_skippable(lines[i])) continue;
			std::istringstream ss(lines[i]);
			ColmapImage img;
			img.id = parse_token<uint32_t>(ss, path, i + 1, "IMAGE_ID");
			for (auto& q : img.qvec) q = parse_token<double>(ss, path, i + 1, "QW QX QY QZ");
			for (auto& t : img.tvec) t = parse_token<double>(ss, path, i + 1, "TX TY TZ");
			img.camera_id = parse_token<uint32_t>(ss, path, i + 1, "CAMERA_ID");
			std::string rest;
			std::getline(ss, rest);
			const size_t first = rest.find_first_not_of(" \t");
			if (first == std::string::npos) NERF_FAIL(path << ":" << i + 1 << ": cannot read NAME");
			img.name = rest.substr(first);
			check_quaternion(img.qvec, img.tvec, path + ":" + std::to_string(i + 1));
			model.images.push_back(std::move(img));
			++i;  // the POINTS2D line, possibly empty
		}
	}
	{
		const std::string path = join(dir, "points3D.txt");
		const auto lines = text_lines(path);
		for (size_t i = 0; i < lines.size(); ++i) {
			if (is_skippable(lines[i])) continue;
			std::istringstream ss(lines[i]);
			ColmapPoint pt;
			pt.id = parse_token<uint64_t>(ss, path, i + 1, "POINT3D_ID");
			for (auto& x : pt.xyz) x = parse_token<double>(ss, path, i + 1, "X Y Z");
			for (int k = 0; k < 3; ++k) parse_token<int>(ss, path, i + 1, "R G B");
			parse_token<double>(ss, path, i + 1, "ERROR");
			uint32_t image_id, point2d_idx;
			while (ss >> image_id) {
				if (!(ss >> point2d_idx)) NERF_FAIL(path << ":" << i + 1 << ": a TRACK entry has an IMAGE_ID but no POINT2D_IDX");
				pt.image_ids.push_back(image_id);
			}
			if (!ss.eof()) NERF_FAIL(path << ":" << i + 1 << ": cannot read TRACK");
			model.points.push_back(std::move(pt));
		}
	}
	return model;
}

ColmapModel read_colmap_model(const std::string& dir) {
	std::error_code ec;
	if (!std::filesystem::is_directory(dir, ec)) NERF_FAIL(dir << ": COLMAP model folder does not exist");
	const bool has_bin = std::filesystem::exists(join(dir, "cameras.bin"), ec);
	const bool has_txt = std::filesystem::exists(join(dir, "cameras.txt"), ec);
	if (!has_bin && !has_txt) NERF_FAIL(dir << ": no cameras.bin or cameras.txt (not a COLMAP sparse model)");
	return has_bin ? read_colmap_model_binary(dir) : read_colmap_model_text(dir);
}

std::array<double, 9> colmap_qvec_to_rotation(const std::array<double, 4>& q) {
	const double w = q[0], x = q[1], y = q[2], z = q[3];
	return {1 - 2 * y * y - 2 * z * z, 2 * x * y - 2 * w * z,     2 * z * x + 2 * w * y,
	        2 * x * y + 2 * w * z,     1 - 2 * x * x - 2 * z * z, 2 * y * z - 2 * w * x,
	        2 * z * x - 2 * w * y,     2 * y * z + 2 * w * x,     1 - 2 * x * x - 2 * y * y};
}

namespace {

// Camera-to-world in COLMAP's camera axes (right, down, forward): the inverse of its world-to-camera
// [R(qvec) | tvec], computed as the 4x4 inverse as the reference does.
Eigen::Matrix4d colmap_camera_to_world(const ColmapImage& img) {
	const auto R = colmap_qvec_to_rotation(img.qvec);
	Eigen::Matrix4d w2c = Eigen::Matrix4d::Identity();
	for (int r = 0; r < 3; ++r) {
		for (int c = 0; c < 3; ++c) w2c(r, c) = R[3 * r + c];
		w2c(r, 3) = img.tvec[r];
	}
	return w2c.inverse();
}

} // namespace

std::vector<std::array<double, 17>> colmap_to_llff(const ColmapModel& model) {
	if (model.cameras.empty()) NERF_FAIL("COLMAP model has no cameras");
	if (model.images.empty()) NERF_FAIL("COLMAP model has no registered images");
	const ColmapCamera& cam = model.cameras.front();
	const double hwf[3] = {(double)cam.height, (double)cam.width, cam.params.at(0)};

	// Camera-to-world as the reference computes it (inverse of the 4x4 world-to-camera), then its axis
	// change: columns (x, y, z) of COLMAP's (right, down, forward) camera -> (y, x, -z) = (down, right, back).
	const size_t n = model.images.size();
	std::vector<Eigen::Matrix<double, 3, 4>> c2w(n);
	std::unordered_map<uint32_t, size_t> index_of_id;
	for (size_t i = 0; i < n; ++i) {
		const auto& img = model.images[i];
		const Eigen::Matrix4d inv = colmap_camera_to_world(img);
		c2w[i] << inv.block<3, 1>(0, 1), inv.block<3, 1>(0, 0), -inv.block<3, 1>(0, 2), inv.block<3, 1>(0, 3);
		if (!index_of_id.emplace(img.id, i).second) NERF_FAIL("COLMAP model has two images with id " << img.id);
	}

	// Depth of every point in every image whose track contains it. The reference marks visibility in a
	// column image_id - 1, which assumes ids 1..N in file order; we look the id up instead (the same
	// result when that assumption holds, and correct when it does not).
	std::vector<std::vector<double>> depths(n);
	for (const auto& pt : model.points) {
		const Eigen::Vector3d x(pt.xyz[0], pt.xyz[1], pt.xyz[2]);
		std::vector<size_t> seen;
		for (uint32_t id : pt.image_ids) {
			const auto it = index_of_id.find(id);
			if (it == index_of_id.end()) NERF_FAIL("COLMAP point " << pt.id << " is observed by unknown image id " << id);
			if (std::find(seen.begin(), seen.end(), it->second) != seen.end()) continue;  // one vote per image
			seen.push_back(it->second);
			const auto& p = c2w[it->second];
			// zvals = sum(-(x - c) * back) = (x - c) . forward: the depth along the optical axis.
			depths[it->second].push_back(-(x - p.col(3)).dot(p.col(2)));
		}
	}

	std::vector<size_t> by_name(n);
	std::iota(by_name.begin(), by_name.end(), 0);
	std::stable_sort(by_name.begin(), by_name.end(),
	                 [&](size_t a, size_t b) { return model.images[a].name < model.images[b].name; });
	std::vector<std::array<double, 17>> rows;
	for (size_t i : by_name) {
		if (depths[i].empty()) NERF_FAIL("COLMAP image " << model.images[i].name << " observes no 3D point, so it has no depth bounds");
		std::array<double, 17> row{};
		for (int r = 0; r < 3; ++r) {
			for (int c = 0; c < 4; ++c) row[5 * r + c] = c2w[i](r, c);
			row[5 * r + 4] = hwf[r];
		}
		row[15] = percentile(depths[i], 0.1);
		row[16] = percentile(depths[i], 99.9);
		rows.push_back(row);
	}
	return rows;
}

namespace {

// A COLMAP camera's fields in transforms.json (COLMAP's params order per model: src/colmap/sensor/models.h).
nlohmann::json transforms_intrinsics(const ColmapCamera& cam) {
	const std::vector<double>& p = cam.params;
	nlohmann::json j = {{"w", cam.width}, {"h", cam.height}};
	auto focal_centre = [&](double fx, double fy, double cx, double cy) {
		j["fl_x"] = fx;
		j["fl_y"] = fy;
		j["cx"] = cx;
		j["cy"] = cy;
	};
	// The models whose name and parameter order transforms.json shares: fx, fy, cx, cy, then four coefficients.
	auto full_model = [&](const std::array<const char*, 4>& coefficients) {
		focal_centre(p[0], p[1], p[2], p[3]);
		j["camera_model"] = cam.model;
		for (int k = 0; k < 4; ++k) j[coefficients[k]] = p[4 + k];
	};
	if (cam.model == "SIMPLE_PINHOLE") {  // f, cx, cy
		focal_centre(p[0], p[0], p[1], p[2]);
		j["camera_model"] = "PINHOLE";
	} else if (cam.model == "PINHOLE") {  // fx, fy, cx, cy
		focal_centre(p[0], p[1], p[2], p[3]);
		j["camera_model"] = "PINHOLE";
	} else if (cam.model == "SIMPLE_RADIAL" || cam.model == "RADIAL") {  // f, cx, cy, k1[, k2]
		focal_centre(p[0], p[0], p[1], p[2]);
		j["camera_model"] = "OPENCV";
		j["k1"] = p[3];
		j["k2"] = cam.model == "RADIAL" ? p[4] : 0.0;
		j["p1"] = 0.0;
		j["p2"] = 0.0;
	} else if (cam.model == "OPENCV") {  // fx, fy, cx, cy, k1, k2, p1, p2
		full_model({"k1", "k2", "p1", "p2"});
	} else if (cam.model == "OPENCV_FISHEYE") {  // fx, fy, cx, cy, k1, k2, k3, k4
		full_model({"k1", "k2", "k3", "k4"});
	} else {
		NERF_FAIL("COLMAP camera " << cam.id << " has model " << cam.model
		                           << ", which transforms.json cannot hold (SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, "
		                              "OPENCV or OPENCV_FISHEYE)");
	}
	return j;
}

} // namespace

std::string colmap_to_transforms(const ColmapModel& model, const std::string& image_dir) {
	if (model.cameras.empty()) NERF_FAIL("COLMAP model has no cameras");
	if (model.images.empty()) NERF_FAIL("COLMAP model has no registered images");
	std::unordered_map<uint32_t, const ColmapCamera*> camera_of_id;
	for (const auto& cam : model.cameras) camera_of_id[cam.id] = &cam;
	std::vector<size_t> by_name(model.images.size());
	std::iota(by_name.begin(), by_name.end(), 0);
	std::stable_sort(by_name.begin(), by_name.end(),
	                 [&](size_t a, size_t b) { return model.images[a].name < model.images[b].name; });
	bool one_camera = true;
	for (const auto& img : model.images) {
		if (!camera_of_id.count(img.camera_id))
			NERF_FAIL("COLMAP image " << img.name << " names camera " << img.camera_id << ", which the model does not have");
		one_camera &= img.camera_id == model.images.front().camera_id;
	}

	nlohmann::json out = nlohmann::json::object();
	if (one_camera) out = transforms_intrinsics(*camera_of_id[model.images.front().camera_id]);
	nlohmann::json frames = nlohmann::json::array();
	for (size_t i : by_name) {
		const ColmapImage& img = model.images[i];
		Eigen::Matrix4d c2w = colmap_camera_to_world(img);
		// COLMAP's (OpenCV) camera looks down +z with y down; OpenGL's looks down -z with y up.
		c2w.block<3, 2>(0, 1) *= -1.0;
		// nerfstudio's world axes: swap y and z, then negate the new z (a rotation: det +1).
		Eigen::Matrix4d world = Eigen::Matrix4d::Zero();
		world(0, 0) = 1.0;
		world(1, 2) = 1.0;
		world(2, 1) = -1.0;
		world(3, 3) = 1.0;
		c2w = world * c2w;
		nlohmann::json matrix = nlohmann::json::array();
		for (int r = 0; r < 4; ++r) matrix.push_back({c2w(r, 0), c2w(r, 1), c2w(r, 2), c2w(r, 3)});
		nlohmann::json frame = {{"file_path", image_dir + "/" + img.name}, {"transform_matrix", matrix}, {"colmap_im_id", img.id}};
		if (!one_camera) frame.update(transforms_intrinsics(*camera_of_id[img.camera_id]));
		frames.push_back(frame);
	}
	out["frames"] = frames;
	return out.dump(2) + "\n";
}

} // namespace nerf
