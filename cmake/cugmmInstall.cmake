# Installs the libraries, public headers and a CMake package so another project can
#   find_package(cugmm REQUIRED)  and  target_link_libraries(app PRIVATE cugmm::cugmm)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(CUGMM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/cugmm)

install(TARGETS cugmm cugmm_api cugmm_engine cugmm_io cugmm_nn cugmm_base EXPORT cugmmTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS cugmm_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(dir core kernels engine nn io)
  install(DIRECTORY ${dir}/ DESTINATION include/cugmm/${dir} FILES_MATCHING PATTERN "*.h")
endforeach()
# The public API: <cugmm/cugmm.h> and what it includes (API.md).
install(DIRECTORY include/cugmm/ DESTINATION include/cugmm FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/include/cugmm/version.h DESTINATION include/cugmm)
install(EXPORT cugmmTargets NAMESPACE cugmm:: DESTINATION ${CUGMM_CMAKE_DIR})
configure_package_config_file(cmake/cugmmConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/cugmmConfig.cmake
                              INSTALL_DESTINATION ${CUGMM_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/cugmmConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/cugmmConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/cugmmConfigVersion.cmake
              cmake/cugmmDependencies.cmake DESTINATION ${CUGMM_CMAKE_DIR})
