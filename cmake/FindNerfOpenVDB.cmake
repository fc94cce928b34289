# OpenVDB as Debian ships it (libopenvdb-dev), for write_vdb: defines the imported target nerf::OpenVDB.
#
# Not OpenVDB's own FindOpenVDB.cmake: that one requires Boost's iostreams development package, and through
# Boost.Regex ICU's (libboost-iostreams1.74-dev, libboost-regex1.74-dev, libicu-dev: 31 MiB more in the GPU
# bundle), although a program that writes .vdb files needs only libopenvdb, TBB, and the Boost and Imath
# headers that OpenVDB's headers include. libopenvdb-dev does not depend on a Boost headers package although
# its headers include Boost (boost/any.hpp, boost/uuid/uuid.hpp, ...): they are looked for here, so that a
# machine without libboost-dev finds no OpenVDB instead of failing to compile.
find_path(NerfOpenVDB_INCLUDE_DIR openvdb/openvdb.h)
find_library(NerfOpenVDB_LIBRARY openvdb)
find_path(NerfOpenVDB_BOOST_INCLUDE_DIR boost/any.hpp)
find_package(TBB CONFIG QUIET COMPONENTS tbb)  # libtbb-dev: TBB::tbb (OpenVDB's inline code calls it)
find_package(Imath CONFIG QUIET)                # libimath-dev: Imath::Imath (OpenVDB's half floats)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(NerfOpenVDB
  REQUIRED_VARS NerfOpenVDB_LIBRARY NerfOpenVDB_INCLUDE_DIR NerfOpenVDB_BOOST_INCLUDE_DIR TBB_FOUND Imath_FOUND)
mark_as_advanced(NerfOpenVDB_INCLUDE_DIR NerfOpenVDB_LIBRARY NerfOpenVDB_BOOST_INCLUDE_DIR)

if(NerfOpenVDB_FOUND AND NOT TARGET nerf::OpenVDB)
  add_library(nerf::OpenVDB UNKNOWN IMPORTED)
  set_target_properties(nerf::OpenVDB PROPERTIES
    IMPORTED_LOCATION "${NerfOpenVDB_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${NerfOpenVDB_INCLUDE_DIR};${NerfOpenVDB_BOOST_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "TBB::tbb;Imath::Imath")
endif()
