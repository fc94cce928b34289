// .npy reading and writing: round trip, float32 input, and every rejected header named in the error.
#include "nerf/io/npy.h"

#include "test_data_helpers.h"

#include <cstdint>
#include <cstring>

using data_test::require_error;
using data_test::TempDir;
using data_test::write_text;

namespace {

// A .npy file written by hand, byte for byte as numpy lays it out (format 1.0).
std::string npy_bytes(const std::string& dict, const std::string& payload, int major = 1) {
	std::string header = dict;
	const size_t preamble = major == 1 ? 10 : 12;
	while ((preamble + header.size() + 1) % 16 != 0) header.push_back(' ');
	header.push_back('\n');
	std::string out = "\x93NUMPY";
	out.push_back((char)major);
	out.push_back('\0');
	const uint32_t len = (uint32_t)header.size();
	out.push_back((char)(len & 0xff));
	out.push_back((char)((len >> 8) & 0xff));
	if (major != 1) {
		out.push_back((char)((len >> 16) & 0xff));
		out.push_back((char)((len >> 24) & 0xff));
	}
	return out + header + payload;
}

template <typename T>
std::string raw(const std::vector<T>& values) {
	return std::string((const char*)values.data(), values.size() * sizeof(T));
}

} // namespace

TEST_CASE("npy: save then load returns the same float64 values and shape", "[data][npy]") {
	TempDir dir("npy");
	std::vector<double> values(3 * 17);
	for (size_t i = 0; i < values.size(); ++i) values[i] = 0.25 * (double)i - 3.0 + 1e-9 * (double)i;
	nerf::save_npy(dir / "a.npy", values.data(), {3, 17});
	const nerf::NpyArray arr = nerf::load_npy_matrix(dir / "a.npy", 17);
	REQUIRE(arr.shape == std::vector<size_t>{3, 17});
	CHECK(arr.dtype == "<f8");
	REQUIRE(arr.data.size() == values.size());
	for (size_t i = 0; i < values.size(); ++i) CHECK(arr.data[i] == values[i]);  // bit-exact: no conversion

	// The header is what numpy writes: padded to 64 bytes in all, ending in a newline.
	std::ifstream in(dir / "a.npy", std::ios::binary);
	std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	const size_t header_len = (unsigned char)bytes[8] | ((unsigned char)bytes[9] << 8);
	CHECK((10 + header_len) % 64 == 0);
	CHECK(bytes[10 + header_len - 1] == '\n');
	CHECK(bytes.find("'shape': (3, 17), }") != std::string::npos);
	CHECK(bytes.size() == 10 + header_len + values.size() * 8);

	nerf::save_npy(dir / "v.npy", values.data(), {5});
	const nerf::NpyArray vec = nerf::load_npy(dir / "v.npy");
	CHECK(vec.shape == std::vector<size_t>{5});
	CHECK(vec.data[4] == values[4]);
}

TEST_CASE("npy: float32 save then load, three dimensions, values exact", "[data][npy]") {
	TempDir dir("npy");
	std::vector<float> values(2 * 3 * 6);
	for (size_t i = 0; i < values.size(); ++i) values[i] = 0.1f * (float)i - 1.7f;
	nerf::save_npy(dir / "f.npy", values.data(), {2, 3, 6});
	const nerf::NpyArray arr = nerf::load_npy(dir / "f.npy");
	REQUIRE(arr.shape == std::vector<size_t>{2, 3, 6});
	CHECK(arr.dtype == "<f4");
	REQUIRE(arr.data.size() == values.size());
	for (size_t i = 0; i < values.size(); ++i) CHECK(arr.data[i] == (double)values[i]);
	std::ifstream in(dir / "f.npy", std::ios::binary);
	std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	const size_t header_len = (unsigned char)bytes[8] | ((unsigned char)bytes[9] << 8);
	CHECK(bytes.size() == 10 + header_len + values.size() * 4);
}

TEST_CASE("npy: float32 and format 2.0 files are read", "[data][npy]") {
	TempDir dir("npy");
	const std::vector<float> values = {1.5f, -2.25f, 3.0e-3f, 7.0f, 0.1f, -0.0f};
	write_text(dir / "f4.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", raw(values)));
	const nerf::NpyArray arr = nerf::load_npy(dir / "f4.npy");
	REQUIRE(arr.shape == std::vector<size_t>{2, 3});
	CHECK(arr.dtype == "<f4");
	for (size_t i = 0; i < values.size(); ++i) CHECK(arr.data[i] == (double)values[i]);

	const std::vector<double> d = {4.0, 5.0};
	write_text(dir / "v2.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", raw(d), 2));
	const nerf::NpyArray v2 = nerf::load_npy(dir / "v2.npy");
	CHECK(v2.shape == std::vector<size_t>{2});
	CHECK(v2.data[1] == 5.0);
}

TEST_CASE("npy: bad files fail naming the file and what was found", "[data][npy]") {
	TempDir dir("npy");
	const std::vector<double> twelve(12, 1.0);
	const std::string f8_3x4 = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }";

	write_text(dir / "int.npy", npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (3, 4), }", raw(twelve)));
	require_error([&] { nerf::load_npy(dir / "int.npy"); }, {dir / "int.npy", "'<i8'"});

	write_text(dir / "big.npy", npy_bytes("{'descr': '>f8', 'fortran_order': False, 'shape': (3, 4), }", raw(twelve)));
	require_error([&] { nerf::load_npy(dir / "big.npy"); }, {dir / "big.npy", "'>f8'"});

	write_text(dir / "fortran.npy", npy_bytes("{'descr': '<f8', 'fortran_order': True, 'shape': (3, 4), }", raw(twelve)));
	require_error([&] { nerf::load_npy(dir / "fortran.npy"); }, {dir / "fortran.npy", "Fortran"});

	write_text(dir / "short.npy", npy_bytes(f8_3x4, raw(std::vector<double>(11, 1.0))));
	require_error([&] { nerf::load_npy(dir / "short.npy"); }, {dir / "short.npy", "truncated"});

	write_text(dir / "magic.npy", "PK\x03\x04 this is a zip, not an npy");
	require_error([&] { nerf::load_npy(dir / "magic.npy"); }, {dir / "magic.npy", "magic"});

	write_text(dir / "noshape.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, }", raw(twelve)));
	require_error([&] { nerf::load_npy(dir / "noshape.npy"); }, {dir / "noshape.npy", "shape"});

	write_text(dir / "ok.npy", npy_bytes(f8_3x4, raw(twelve)));
	CHECK(nerf::load_npy(dir / "ok.npy").size() == 12);
	require_error([&] { nerf::load_npy_matrix(dir / "ok.npy", 17); }, {dir / "ok.npy", "(3, 4)", "(N, 17)"});

	require_error([&] { nerf::load_npy(dir / "missing.npy"); }, {dir / "missing.npy", "cannot open"});
}
