# `cmake --install` of libnerfcore: the public headers, the library, and a CMake package so that
# another project's find_package(nerfcore) gives the imported target nerfcore::nerfcore with its
# dependencies found (see nerfcoreConfig.cmake.in).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(NERF_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/nerfcore CACHE STRING
    "Where the nerfcore CMake package is installed, relative to the prefix")

install(TARGETS nerfcore EXPORT nerfcoreTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/nerf DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

# The tools are part of the product too (OPTIONAL: a build of only the library still installs).
foreach(nerf_installed_tool nerf_train nerf_render nerf_export nerf_scene nerf_inspect)
  if(TARGET ${nerf_installed_tool})
    install(TARGETS ${nerf_installed_tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} OPTIONAL)
  endif()
endforeach()

install(EXPORT nerfcoreTargets NAMESPACE nerfcore:: DESTINATION ${NERF_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/nerfcoreConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/nerfcoreConfig.cmake
  INSTALL_DESTINATION ${NERF_INSTALL_CMAKEDIR})
# 0.x: a minor version may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/nerfcoreConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/nerfcoreConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/nerfcoreConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/Findstb.cmake ${CMAKE_CURRENT_LIST_DIR}/FindNerfOpenVDB.cmake
  DESTINATION ${NERF_INSTALL_CMAKEDIR})
