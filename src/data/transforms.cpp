// transforms.json scenes, as instant-ngp's colmap2nerf.py and nerfstudio's ns-process-data write them
// (also Polycam and Record3D exports): global or per-frame intrinsics, OpenCV and fisheye lenses, and
// camera-to-world poses in OpenGL axes. The poses are normalised as nerfstudio does by default, then
// near/far are chosen from the normalised scene (README, "transforms.json scenes").
#include "loader_util.h"

#include "nerf/common.h"
#include "nerf/data/loaders.h"
#include "nerf/io/image.h"

#include <Eigen/Dense>
#include <Eigen/Geometry>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <optional>

namespace nerf {

namespace {

namespace fs = std::filesystem;
using Vec3 = Eigen::Vector3d;
using Mat3 = Eigen::Matrix3d;
using Mat34 = Eigen::Matrix<double, 3, 4>;

// Extensions tried, in this order, for a file_path written without one (nerfstudio drops them sometimes;
// the Blender scenes always do).
const char* const kImageExtensions[] = {".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG"};

// nerfstudio's MAX_AUTO_RESOLUTION: factor 0 downsamples until the longer side is at most this.
constexpr double kAutoFactorMaxSide = 1600.0;

// A frame's field, or else the top level's, and where it came from for error messages.
struct Field {
	const nlohmann::json* value = nullptr;
	std::string where;
};

class FrameReader {
public:
	FrameReader(const std::string& file, const nlohmann::json& top, const nlohmann::json& frame, int index)
	    : m_file(file), m_top(top), m_frame(frame), m_index(index) {}

	std::string frame_name() const { return "frame " + std::to_string(m_index); }

	Field field(const char* key) const {
		if (m_frame.contains(key)) return {&m_frame[key], frame_name() + " field '" + key + "'"};
		if (m_top.contains(key)) return {&m_top[key], std::string("field '") + key + "'"};
		return {};
	}
	bool in_frame(const char* key) const { return m_frame.contains(key); }
	std::optional<double> number(const char* key) const {
		const Field f = field(key);
		if (!f.value || f.value->is_null()) return std::nullopt;
		if (!f.value->is_number()) NERF_FAIL(m_file << ": " << f.where << " is not a number (" << f.value->dump() << ")");
		const double v = f.value->get<double>();
		if (!std::isfinite(v)) NERF_FAIL(m_file << ": " << f.where << " is not finite");
		return v;
	}
	double positive(const char* key) const {
		const double v = *number(key);
		if (!(v > 0.0)) NERF_FAIL(m_file << ": " << field(key).where << " must be positive, got " << v);
		return v;
	}
	std::optional<std::string> text(const char* key) const {
		const Field f = field(key);
		if (!f.value || f.value->is_null()) return std::nullopt;
		if (!f.value->is_string()) NERF_FAIL(m_file << ": " << f.where << " is not a string (" << f.value->dump() << ")");
		return f.value->get<std::string>();
	}
	[[noreturn]] void fail(const std::string& what) const { NERF_FAIL(m_file << ": " << frame_name() << ": " << what); }

private:
	const std::string& m_file;
	const nlohmann::json& m_top;
	const nlohmann::json& m_frame;
	int m_index;
};

// One frame as read, before the images are loaded and the poses normalised.
struct Frame {
	int index = 0;                 // in the file's frames array
	std::string file_path;
	std::string image_path;        // the file to load (images_N/ when used)
	bool from_downsampled_folder = false;
	Mat34 c2w;
	// Intrinsics at the resolution of the json (w x h).
	int w = 0, h = 0;              // 0: not in the json, taken from the image
	std::optional<double> fl_x, fl_y, angle_x, angle_y, cx, cy;  // of one level: the frame's if it has either
	Lens lens;
};

std::string image_file_for(const std::string& basedir, const std::string& file_path, const std::string& json_path,
                           int frame_index) {
	const std::string direct = data::join(basedir, file_path);
	std::error_code ec;
	if (fs::is_regular_file(direct, ec)) return direct;
	std::string tried = direct;
	if (!fs::path(file_path).has_extension()) {
		for (const char* ext : kImageExtensions) {
			if (fs::is_regular_file(direct + ext, ec)) return direct + ext;
		}
		tried += " (also with .png, .jpg, .jpeg)";
	}
	NERF_FAIL(json_path << ": frame " << frame_index << " field 'file_path': image " << tried << " does not exist");
}

LensModel lens_model_named(const FrameReader& reader, const std::string& json_path, bool has_coefficients) {
	const std::optional<std::string> name = reader.text("camera_model");
	if (!name) return has_coefficients ? LensModel::OpenCV : LensModel::Pinhole;
	for (LensModel model : {LensModel::Pinhole, LensModel::OpenCV, LensModel::OpenCVFisheye})
		if (*name == lens_model_name(model)) return model;
	NERF_FAIL(json_path << ": " << reader.field("camera_model").where << " is '" << *name
	                    << "', which is not a supported camera model (PINHOLE, OPENCV or OPENCV_FISHEYE)");
}

Lens read_lens(const FrameReader& reader, const std::string& json_path) {
	const char* keys[6] = {"k1", "k2", "k3", "k4", "p1", "p2"};
	double values[6];
	bool any_nonzero = false;
	for (int k = 0; k < 6; ++k) {
		values[k] = reader.number(keys[k]).value_or(0.0);
		any_nonzero |= values[k] != 0.0;
	}
	Lens lens;
	lens.model = lens_model_named(reader, json_path, any_nonzero);
	if (lens.model == LensModel::Pinhole && any_nonzero)
		reader.fail("camera_model PINHOLE has distortion coefficients (k1..k4, p1, p2); use OPENCV or drop them");
	if (lens.model == LensModel::OpenCVFisheye && (values[4] != 0.0 || values[5] != 0.0))
		reader.fail("OPENCV_FISHEYE has no tangential terms, but p1/p2 are not zero");
	lens.k1 = (float)values[0];
	lens.k2 = (float)values[1];
	lens.k3 = (float)values[2];
	lens.k4 = (float)values[3];
	lens.p1 = (float)values[4];
	lens.p2 = (float)values[5];
	return lens;
}

// transform_matrix: 4x4 finite numbers, a rotation (orthonormal, det +1) and translation, bottom row 0 0 0 1.
Mat34 read_rigid_pose(const nlohmann::json& frame, const std::string& json_path, int index) {
	if (!frame.contains("transform_matrix")) NERF_FAIL(json_path << ": frame " << index << " has no 'transform_matrix'");
	const std::string where = "frame " + std::to_string(index) + " field 'transform_matrix'";
	const Eigen::Matrix4d full =
	    Eigen::Map<const Eigen::Matrix<double, 4, 4, Eigen::RowMajor>>(data::read_matrix_json(frame["transform_matrix"], json_path, where).data());
	const Mat3 R = full.topLeftCorner<3, 3>();
	// Writers store float32 matrices, and some (Record3D) renormalise loosely: 1e-3 accepts those and
	// rejects any scale or shear a user would notice.
	const double orthonormality = (R.transpose() * R - Mat3::Identity()).cwiseAbs().maxCoeff();
	if (orthonormality > 1e-3 || R.determinant() < 0.0)
		NERF_FAIL(json_path << ": " << where << " is not a rigid transform (its rotation part has R^T R - I up to "
		                    << orthonormality << ", det " << R.determinant() << ")");
	const Eigen::RowVector4d bottom = full.row(3);
	if ((bottom - Eigen::RowVector4d(0, 0, 0, 1)).cwiseAbs().maxCoeff() > 1e-6)
		NERF_FAIL(json_path << ": " << where << " has bottom row " << bottom << " instead of 0 0 0 1");
	return full.topRows<3>();
}

// Reads every frame's fields (no images yet), ordered by file_path as nerfstudio does.
std::vector<Frame> read_frames(const nlohmann::json& meta, const std::string& basedir, const std::string& json_path,
                               int factor) {
	if (!meta.is_object()) NERF_FAIL(json_path << ": not a JSON object");
	if (!meta.contains("frames") || !meta["frames"].is_array() || meta["frames"].empty())
		NERF_FAIL(json_path << ": needs a non-empty 'frames' array");
	const nlohmann::json& frames_json = meta["frames"];
	const std::string downsampled_dir = data::join(basedir, "images_" + std::to_string(factor));
	const bool use_downsampled = factor > 1 && data::exists(downsampled_dir);
	std::vector<Frame> frames;
	for (size_t i = 0; i < frames_json.size(); ++i) {
		const nlohmann::json& fj = frames_json[i];
		if (!fj.is_object()) NERF_FAIL(json_path << ": frame " << i << " is not a JSON object");
		const FrameReader reader(json_path, meta, fj, (int)i);
		Frame f;
		f.index = (int)i;
		const std::optional<std::string> file_path = fj.contains("file_path") ? reader.text("file_path") : std::nullopt;
		if (!file_path || file_path->empty()) reader.fail("no 'file_path'");
		f.file_path = *file_path;
		f.c2w = read_rigid_pose(fj, json_path, (int)i);
		f.image_path = image_file_for(basedir, f.file_path, json_path, (int)i);
		if (use_downsampled) {
			// nerfstudio's layout: images_N/<the file's name>.
			f.image_path = data::join(downsampled_dir, fs::path(f.image_path).filename().string());
			if (!data::exists(f.image_path))
				reader.fail("'" + f.file_path + "' has no downsampled copy " + f.image_path + " although " +
				            downsampled_dir + " exists");
			f.from_downsampled_folder = true;
		}
		if (const auto w = reader.number("w")) f.w = (int)reader.positive("w");
		if (const auto h = reader.number("h")) f.h = (int)reader.positive("h");
		for (const char* key : {"fl_x", "fl_y", "camera_angle_x", "camera_angle_y"})
			if (reader.number(key)) reader.positive(key);
		// A frame's own focal length (as fl_ or as an angle) wins over the top level's, whichever form each uses;
		// within one level fl_ wins over the angle.
		auto level_number = [&](const char* key, bool frame_level) {
			return frame_level && !reader.in_frame(key) ? std::nullopt : reader.number(key);
		};
		const bool frame_x = reader.in_frame("fl_x") || reader.in_frame("camera_angle_x");
		const bool frame_y = reader.in_frame("fl_y") || reader.in_frame("camera_angle_y");
		f.fl_x = level_number("fl_x", frame_x);
		f.angle_x = level_number("camera_angle_x", frame_x);
		f.fl_y = level_number("fl_y", frame_y);
		f.angle_y = level_number("camera_angle_y", frame_y);
		if (!f.fl_x && !f.fl_y && !f.angle_x && !f.angle_y)
			reader.fail("missing intrinsics: no 'fl_x', 'fl_y', 'camera_angle_x' or 'camera_angle_y' in the frame or at the "
			            "top level");
		f.cx = reader.number("cx");
		f.cy = reader.number("cy");
		f.lens = read_lens(reader, json_path);
		frames.push_back(std::move(f));
	}
	// Sorting indices, not Frames: stable_sort's scratch buffer ignores the alignment Eigen's members need.
	std::vector<size_t> order(frames.size());
	std::iota(order.begin(), order.end(), 0);
	std::stable_sort(order.begin(), order.end(),
	                 [&](size_t a, size_t b) { return frames[a].file_path < frames[b].file_path; });
	std::vector<Frame> sorted;
	sorted.reserve(frames.size());
	for (size_t i : order) sorted.push_back(std::move(frames[i]));
	return sorted;
}

// The camera of a frame at the loaded size (W x H): intrinsics given for w x h scale by W/w and H/h,
// exact for pixel centres.
Camera frame_camera(const Frame& f, int W, int H, const std::string& json_path) {
	const double w = f.w, h = f.h;
	double fl_x = f.fl_x ? *f.fl_x : f.angle_x ? 0.5 * w / std::tan(0.5 * *f.angle_x) : 0.0;
	double fl_y = f.fl_y ? *f.fl_y : f.angle_y ? 0.5 * h / std::tan(0.5 * *f.angle_y) : 0.0;
	// One of the two is enough (square pixels), as instant-ngp reads it.
	if (fl_x == 0.0) fl_x = fl_y;
	if (fl_y == 0.0) fl_y = fl_x;
	const double sx = W / w, sy = H / h;
	Camera cam;
	cam.W = W;
	cam.H = H;
	cam.fx = (float)(fl_x * sx);
	cam.fy = (float)(fl_y * sy);
	cam.cx = (float)((f.cx ? *f.cx : 0.5 * w) * sx);
	cam.cy = (float)((f.cy ? *f.cy : 0.5 * h) * sy);
	cam.pixel_centers = true;
	cam.lens = f.lens;
	// A lens whose model cannot be inverted over the image (wrong model, coefficients of another
	// convention) would give garbage rays there: check the border, where distortion is largest.
	if (cam.lens.model != LensModel::Pinhole) {
		const int samples = 16;
		for (int s = 0; s <= samples; ++s) {
			const double t = (double)s / samples;
			const double border[4][2] = {{t * W, 0.0}, {t * W, (double)H}, {0.0, t * H}, {(double)W, t * H}};
			for (const auto& uv : border) {
				const double xd = (uv[0] - cam.cx) / cam.fx, yd = (uv[1] - cam.cy) / cam.fy;
				double x, y, xr, yr;
				const bool converged = lens_undistort(cam.lens, xd, yd, x, y);
				if (converged) lens_distort(cam.lens, x, y, xr, yr);
				if (!converged || std::abs(xr - xd) * cam.fx > 1e-3 || std::abs(yr - yd) * cam.fy > 1e-3)
					NERF_FAIL(json_path << ": frame " << f.index << " (" << f.file_path
					                    << "): the lens distortion cannot be inverted at pixel (" << uv[0] << ", " << uv[1]
					                    << "); are camera_model and k1..k4, p1, p2 right?");
			}
		}
	}
	return cam;
}

// A frame's size as loaded: the file's, divided by the factor unless the file is a downsampled copy.
struct FrameSize {
	int file_W = 0, file_H = 0;  // as stored
	int W = 0, H = 0;
};

FrameSize frame_size(const Frame& f, int factor, uint64_t max_image_pixels) {
	const ImageSize file = image_size(f.image_path, max_image_pixels);
	const int downsample = f.from_downsampled_folder ? 1 : factor;
	FrameSize out{file.width, file.height, file.width / downsample, file.height / downsample};
	if (out.W <= 0 || out.H <= 0)
		NERF_FAIL(f.image_path << ": image of " << file.width << "x" << file.height << " is too small to downsample by " << factor);
	return out;
}

// Decodes a frame's image into rgb ([size.H, size.W, 3]).
void load_frame_image(const Frame& f, const FrameSize& size, bool white_bkgd, uint64_t max_image_pixels, float* rgb) {
	const Image img = load_image(f.image_path, max_image_pixels);
	if (img.width != size.file_W || img.height != size.file_H)
		NERF_FAIL(f.image_path << ": decodes to " << img.width << "x" << img.height << " but its header said " << size.file_W
		                       << "x" << size.file_H << " (did the file change while loading?)");
	const bool downsample = size.W != img.width || size.H != img.height;
	std::vector<float> full(downsample ? (size_t)img.width * img.height * 3 : 0);
	data::to_rgb(img.pixels.data(), img.channels, (size_t)img.width * img.height, white_bkgd, downsample ? full.data() : rgb);
	if (downsample) {
		const std::vector<float> small = resize_area(full.data(), img.height, img.width, 3, size.H, size.W);
		std::copy(small.begin(), small.end(), rgb);
	}
}

// The json's w x h against the file: they must agree (the downsampled copy within rounding of w / factor).
void check_size(Frame& f, int file_w, int file_h, int factor, const std::string& json_path) {
	const int scale = f.from_downsampled_folder ? factor : 1;
	if (f.w == 0) f.w = file_w * scale;
	if (f.h == 0) f.h = file_h * scale;
	const bool ok_w = scale == 1 ? file_w == f.w : std::abs((double)f.w / scale - file_w) < 1.0;
	const bool ok_h = scale == 1 ? file_h == f.h : std::abs((double)f.h / scale - file_h) < 1.0;
	if (!ok_w || !ok_h)
		NERF_FAIL(json_path << ": frame " << f.index << " fields 'w'/'h' say " << f.w << "x" << f.h << " but " << f.image_path
		                    << " is " << file_w << "x" << file_h << (scale > 1 ? " (a copy downsampled by the factor)" : ""));
}

// Rotation taking unit vector a onto unit vector b (Rodrigues); a half turn about x when they are opposite.
Mat3 rotation_between(const Vec3& a, const Vec3& b) {
	const Vec3 v = a.cross(b);
	const double c = a.dot(b);
	if (c < -1.0 + 1e-12) return Eigen::AngleAxisd(M_PI, Vec3::UnitX()).toRotationMatrix();
	Mat3 vx;
	vx << 0, -v.z(), v.y(), v.z(), 0, -v.x(), -v.y(), v.x(), 0;
	return Mat3::Identity() + vx + vx * vx / (1.0 + c);
}

// The training cameras in file order, resampled to n_views: positions interpolated linearly and
// rotations by slerp, so the video follows the capture.
std::vector<Pose> camera_path(const std::vector<Mat34>& poses, int n_views) {
	std::vector<Pose> path;
	const size_t n = poses.size();
	for (int v = 0; v < n_views; ++v) {
		const double s = n > 1 ? (double)v * (double)(n - 1) / (double)(n_views - 1) : 0.0;
		const size_t i = std::min((size_t)s, n - 1), j = std::min(i + 1, n - 1);
		const double t = s - (double)i;
		const Eigen::Quaterniond qa(Mat3(poses[i].leftCols<3>())), qb(Mat3(poses[j].leftCols<3>()));
		const Mat3 R = qa.slerp(t, qb).toRotationMatrix();
		Mat34 pose;
		pose << R, (1.0 - t) * poses[i].col(3) + t * poses[j].col(3);
		path.push_back(data::to_pose(pose));
	}
	return path;
}

} // namespace

Dataset load_transforms(const std::string& basedir, int factor, int llffhold, bool white_bkgd, uint64_t max_image_pixels) {
	data::require_directory(basedir, "transforms.json scene");
	const std::string json_path = data::join(basedir, "transforms.json");
	if (!data::exists(json_path)) NERF_FAIL(json_path << ": no transforms.json in the scene folder");
	const nlohmann::json meta = data::read_json(json_path);
	const bool automatic = factor < 1;
	int longest_side = 0;
	if (automatic) {
		// nerfstudio's default: the smallest power of two that brings the longer side to at most 1600
		// pixels, one factor for every frame (judged on the largest). A header that does not read leaves
		// its frame to the loading below, which names it.
		factor = 1;
		for (const Frame& f : read_frames(meta, basedir, json_path, 1)) {
			try {
				const ImageSize size = image_size(f.image_path, max_image_pixels);
				longest_side = std::max({longest_side, size.width, size.height});
			} catch (const Error&) {
			}
		}
		while ((double)longest_side / factor > kAutoFactorMaxSide) factor *= 2;
	}
	std::vector<Frame> frames = read_frames(meta, basedir, json_path, factor);
	const size_t n = frames.size();

	std::optional<double> aabb_scale;
	if (meta.contains("aabb_scale")) {
		const FrameReader top(json_path, meta, nlohmann::json::object(), -1);
		aabb_scale = top.positive("aabb_scale");
	}

	// The sizes come from the headers first, so that ds.images is allocated once and every image is
	// decoded straight into its slice: a scene is never held twice. Errors are reported in frame order.
	std::vector<std::string> errors(n);
	auto report_errors = [&] {
		for (size_t i = 0; i < n; ++i)
			if (!errors[i].empty())
				NERF_FAIL(json_path << ": frame " << frames[i].index << " field 'file_path' (" << frames[i].file_path
				                    << "): " << errors[i]);
	};
	std::vector<FrameSize> sizes(n);
	for (size_t i = 0; i < n; ++i) {
		try {
			sizes[i] = frame_size(frames[i], factor, max_image_pixels);
		} catch (const std::exception& e) {
			errors[i] = e.what();
		}
	}
	report_errors();

	Dataset ds;
	size_t total_pixels = 0;
	for (size_t i = 0; i < n; ++i) {
		Frame& f = frames[i];
		check_size(f, sizes[i].file_W, sizes[i].file_H, factor, json_path);
		Camera cam = frame_camera(f, sizes[i].W, sizes[i].H, json_path);
		cam.first_pixel = (uint32_t)total_pixels;
		total_pixels += (size_t)cam.W * cam.H;
		if (total_pixels >= 4294967296ull) NERF_FAIL(json_path << ": more than 2^32 pixels; flat pixel ids are 32-bit (raise factor)");
		ds.cameras.push_back(cam);
		ds.image_paths.push_back(f.image_path);
	}
	ds.images.resize(3 * total_pixels);
#pragma omp parallel for schedule(dynamic)
	for (long i = 0; i < (long)n; ++i) {
		try {
			load_frame_image(frames[i], sizes[i], white_bkgd, max_image_pixels,
			                 ds.images.data() + 3 * (size_t)ds.cameras[i].first_pixel);
		} catch (const std::exception& e) {
			errors[i] = e.what();
		}
	}
	report_errors();

	// Normalisation (nerfstudio's defaults, orientation "up", centring "poses", auto scale): centre on the
	// mean camera position, rotate the mean camera up vector onto +z, scale so that every camera lies in
	// [-1, 1]^3.
	std::vector<Mat34> poses(n);
	Vec3 centre = Vec3::Zero(), up = Vec3::Zero();
	for (size_t i = 0; i < n; ++i) {
		centre += frames[i].c2w.col(3) / (double)n;
		up += frames[i].c2w.col(1);
	}
	const Mat3 R = up.norm() > 0.0 ? rotation_between(up.normalized(), Vec3::UnitZ()) : Mat3::Identity();
	double extent = 0.0;
	for (size_t i = 0; i < n; ++i) {
		poses[i].leftCols<3>() = R * frames[i].c2w.leftCols<3>();
		poses[i].col(3) = R * (frames[i].c2w.col(3) - centre);
		extent = std::max(extent, poses[i].col(3).cwiseAbs().maxCoeff());
	}
	const double scale = extent > 0.0 ? 1.0 / extent : 1.0;
	for (auto& p : poses) p.col(3) *= scale;

	// near/far: the scene is taken to lie in [-aabb_scale, aabb_scale]^3 (default 1, the cameras' own
	// cube); far reaches the box's farthest corner from any camera, near is 5% of the cameras' extent.
	const double box = aabb_scale.value_or(1.0);
	double far = 0.0;
	for (const auto& p : poses) {
		const Vec3 farthest = p.col(3).cwiseAbs() + Vec3::Constant(box);
		far = std::max(far, farthest.norm());
	}
	ds.near = 0.05f;
	ds.far = (float)far;

	for (const auto& p : poses) ds.poses.push_back(data::to_pose(p));
	ds.render_poses = camera_path(poses, 120);
	for (size_t i = 0; i < n; ++i) {
		const bool held_out = llffhold > 0 && i % (size_t)llffhold == 0;
		(held_out ? ds.i_test : ds.i_train).push_back((int)i);
	}
	if (ds.i_train.empty()) NERF_FAIL(json_path << ": llffhold = " << llffhold << " holds out every one of the " << n << " frames");
	ds.i_val = ds.i_test;

	const Camera& first = ds.cameras.front();
	ds.H = first.H;
	ds.W = first.W;
	ds.focal = first.fx;
	ds.K = {first.fx, 0.0f, first.cx, 0.0f, first.fy, first.cy, 0.0f, 0.0f, 1.0f};
	ds.ndc = false;
	if (factor > 1) {
		const std::string source = frames.front().from_downsampled_folder
		                               ? "the images of images_" + std::to_string(factor) + "/"
		                               : "downsampled here from " + std::to_string(sizes.front().file_W) + "x" +
		                                     std::to_string(sizes.front().file_H);
		ds.resize_note = "factor " + std::to_string(factor) + ", " + source +
		                 (automatic ? "; chosen as nerfstudio does: the longer side at most " +
		                                  std::to_string((int)kAutoFactorMaxSide) + " pixels; --factor N sets it"
		                            : "; --factor N sets it, --factor 0 chooses as nerfstudio");
	}
	return ds;
}

} // namespace nerf
