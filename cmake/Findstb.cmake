# Finds Debian's libstb (libstb-dev): the stb headers in <prefix>/include/stb and libstb.so, without
# pkg-config, so that a bundle of the unpacked package (tools/gpu_check.sh --bundle) is found through
# CMAKE_PREFIX_PATH on a machine that has neither the package nor pkg-config.
# Result: the imported target stb::stb and stb_FOUND.
find_path(stb_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb)
find_library(stb_LIBRARY NAMES stb)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(stb REQUIRED_VARS stb_LIBRARY stb_INCLUDE_DIR)
if(stb_FOUND AND NOT TARGET stb::stb)
  add_library(stb::stb UNKNOWN IMPORTED)
  set_target_properties(stb::stb PROPERTIES
    IMPORTED_LOCATION "${stb_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${stb_INCLUDE_DIR}")
endif()
mark_as_advanced(stb_INCLUDE_DIR stb_LIBRARY)
