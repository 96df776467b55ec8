# Included by tests/CMakeLists.txt: the `install_consumer` test installs this
# build tree into a private prefix and builds tests/consumer against it, by
# find_package(RetCL) and by pkg-config (see run_consumer.cmake).
if(NOT PKG_CONFIG_EXECUTABLE)
  find_program(PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf)
endif()
add_test(NAME install_consumer
  COMMAND "${CMAKE_COMMAND}"
          "-DRETCL_BUILD_DIR=${CMAKE_BINARY_DIR}"
          "-DPREFIX=${CMAKE_BINARY_DIR}/consumer-prefix"
          "-DWORK_DIR=${CMAKE_BINARY_DIR}/consumer-build"
          "-DSOURCE_DIR=${CMAKE_CURRENT_LIST_DIR}"
          "-DCONFIG=$<CONFIG>"
          "-DGENERATOR=${CMAKE_GENERATOR}"
          "-DMAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}"
          "-DC_COMPILER=${CMAKE_C_COMPILER}"
          "-DPKG_CONFIG=${PKG_CONFIG_EXECUTABLE}"
          "-DWITH_MPI=$<TARGET_EXISTS:retcl_mpi>"
          "-DMPIEXEC=${MPIEXEC_EXECUTABLE}"
          "-DMPIEXEC_EXTRA=${RETCL_MPIEXEC_EXTRA}"
          -P "${CMAKE_CURRENT_LIST_DIR}/run_consumer.cmake")
# Installing and configuring a project takes seconds, not the default 1500
# s; a generous limit still catches a hang.
set_tests_properties(install_consumer PROPERTIES TIMEOUT 600)
