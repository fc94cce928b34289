// An independent reader of binary little-endian PLY files, written from the PLY format's description
// (not the writer's code): the header line by line, the counts, the values byte by byte. Shared by the
// mesh-I/O and the export tests.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ply_test {

inline std::string read_bytes(const std::string& path) {
	std::ifstream in(path, std::ios::binary);
	REQUIRE(in.good());
	return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct PlyProperty {
	std::string name, type, count_type;  // count_type set for a list
};
struct PlyElement {
	std::string name;
	size_t count = 0;
	std::vector<PlyProperty> properties;
};
struct PlyFile {
	std::string format;
	std::vector<PlyElement> elements;
	std::vector<std::string> header_lines;
	// Values per element, each record's values in property order (lists expanded: count, then items).
	std::map<std::string, std::vector<std::vector<double>>> records;
};

inline size_t type_size(const std::string& t) {
	if (t == "char" || t == "uchar" || t == "int8" || t == "uint8") return 1;
	if (t == "short" || t == "ushort" || t == "int16" || t == "uint16") return 2;
	if (t == "int" || t == "uint" || t == "float" || t == "int32" || t == "uint32" || t == "float32") return 4;
	if (t == "double" || t == "float64") return 8;
	FAIL("unknown PLY type " << t);
	return 0;
}

// Little-endian, byte by byte: the value does not depend on this machine's byte order.
inline double read_le(const std::string& bytes, size_t& pos, const std::string& type) {
	const size_t n = type_size(type);
	REQUIRE(pos + n <= bytes.size());
	uint64_t u = 0;
	for (size_t i = 0; i < n; ++i) u |= (uint64_t)(unsigned char)bytes[pos + i] << (8 * i);
	pos += n;
	if (type == "float" || type == "float32") {
		const uint32_t bits = (uint32_t)u;
		float f;
		std::memcpy(&f, &bits, 4);
		return f;
	}
	if (type == "uchar" || type == "uint8") return (double)(uint8_t)u;
	if (type == "int" || type == "int32") return (double)(int32_t)(uint32_t)u;
	if (type == "uint" || type == "uint32") return (double)(uint32_t)u;
	FAIL("the reader does not need type " << type);
	return 0;
}

inline PlyFile read_ply(const std::string& path) {
	const std::string bytes = read_bytes(path);
	PlyFile ply;
	size_t pos = 0;
	for (;;) {
		const size_t eol = bytes.find('\n', pos);
		REQUIRE(eol != std::string::npos);
		const std::string line = bytes.substr(pos, eol - pos);
		pos = eol + 1;
		ply.header_lines.push_back(line);
		std::istringstream words(line);
		std::string keyword;
		words >> keyword;
		if (ply.header_lines.size() == 1) {
			REQUIRE(line == "ply");
			continue;
		}
		if (keyword == "format") {
			std::string version;
			words >> ply.format >> version;
			REQUIRE(version == "1.0");
		} else if (keyword == "comment") {
		} else if (keyword == "element") {
			PlyElement e;
			words >> e.name >> e.count;
			REQUIRE(!words.fail());
			ply.elements.push_back(e);
		} else if (keyword == "property") {
			REQUIRE(!ply.elements.empty());
			PlyProperty p;
			std::string type;
			words >> type;
			if (type == "list") words >> p.count_type >> p.type >> p.name;
			else {
				p.type = type;
				words >> p.name;
			}
			REQUIRE(!words.fail());
			ply.elements.back().properties.push_back(p);
		} else if (keyword == "end_header") {
			REQUIRE(line == "end_header");  // and exactly one '\n' after it: the data starts at pos
			break;
		} else {
			FAIL("unexpected PLY header line: " << line);
		}
	}
	REQUIRE(ply.format == "binary_little_endian");
	for (const PlyElement& e : ply.elements) {
		auto& recs = ply.records[e.name];
		for (size_t r = 0; r < e.count; ++r) {
			std::vector<double> values;
			for (const PlyProperty& p : e.properties) {
				if (p.count_type.empty()) {
					values.push_back(read_le(bytes, pos, p.type));
				} else {
					const double n = read_le(bytes, pos, p.count_type);
					values.push_back(n);
					for (int i = 0; i < (int)n; ++i) values.push_back(read_le(bytes, pos, p.type));
				}
			}
			recs.push_back(std::move(values));
		}
	}
	CHECK(pos == bytes.size());  // nothing after the last record
	return ply;
}

} // namespace ply_test
