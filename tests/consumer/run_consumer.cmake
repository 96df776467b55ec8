# run_consumer.cmake - run by the `install_consumer` test (cmake -P). Proves
# that an installed RetCL is usable downstream:
#   1. cmake --install the build tree into PREFIX;
#   2. configure, build and run tests/consumer with
#      find_package(RetCL) via -DCMAKE_PREFIX_PATH=PREFIX;
#   3. compile the same main.c with `pkg-config --cflags --libs retcl` and
#      run it;
#   4. run the installed `retcl --version` with no LD_LIBRARY_PATH (its
#      RPATH must find the installed library).
# Any failing step stops the script with FATAL_ERROR, which fails the test.
cmake_minimum_required(VERSION 3.16)

foreach(var RETCL_BUILD_DIR PREFIX WORK_DIR SOURCE_DIR C_COMPILER)
  if(NOT ${var})
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

# Run a command, streaming its output into the test log; stop on failure.
function(step what)
  message(STATUS "==> ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: ${what} failed (${rc}):\n  ${ARGN}")
  endif()
endfunction()

# A fresh prefix each time: stale files from an older install must not make
# the test pass.
file(REMOVE_RECURSE "${PREFIX}" "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(config_args)
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
step("cmake --install" "${CMAKE_COMMAND}" --install "${RETCL_BUILD_DIR}"
     --prefix "${PREFIX}" ${config_args})

# CMAKE_INSTALL_LIBDIR may be lib, lib64 or lib/<multiarch>: find the files
# instead of assuming.
file(GLOB_RECURSE pc_files "${PREFIX}/*/pkgconfig/retcl.pc")
file(GLOB_RECURSE config_files "${PREFIX}/*/RetCLConfig.cmake")
if(NOT pc_files)
  message(FATAL_ERROR "install_consumer: no retcl.pc under ${PREFIX}")
endif()
if(NOT config_files)
  message(FATAL_ERROR "install_consumer: no RetCLConfig.cmake under ${PREFIX}")
endif()
list(GET pc_files 0 pc_file)
get_filename_component(pc_dir "${pc_file}" DIRECTORY)
get_filename_component(lib_dir "${pc_dir}" DIRECTORY)
if(NOT EXISTS "${PREFIX}/include/retcl.h")
  message(FATAL_ERROR "install_consumer: ${PREFIX}/include/retcl.h missing")
endif()
message(STATUS "installed: ${pc_file}, libraries in ${lib_dir}")

# The consumers must load the installed library, not one found elsewhere.
set(run_env "LD_LIBRARY_PATH=${lib_dir}:$ENV{LD_LIBRARY_PATH}")

# ---- find_package(RetCL) --------------------------------------------------
set(generator_args)
if(GENERATOR)
  list(APPEND generator_args -G "${GENERATOR}")
endif()
if(MAKE_PROGRAM)
  list(APPEND generator_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
step("configure the find_package consumer"
     "${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${WORK_DIR}/cmake"
     ${generator_args}
     "-DCMAKE_C_COMPILER=${C_COMPILER}"
     "-DCMAKE_BUILD_TYPE=Release"
     "-DCMAKE_PREFIX_PATH=${PREFIX}"
     "-DRETCL_EXPECT_PREFIX=${PREFIX}"
     "-DRETCL_EXPECT_MPI=${WITH_MPI}"
     # Only the prefix may supply RetCL, not the user's package registry.
     "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF")
step("build the find_package consumer"
     "${CMAKE_COMMAND}" --build "${WORK_DIR}/cmake" ${config_args})
find_program(cmake_consumer retcl_consumer
  PATHS "${WORK_DIR}/cmake" "${WORK_DIR}/cmake/${CONFIG}" NO_DEFAULT_PATH)
if(NOT cmake_consumer)
  message(FATAL_ERROR "install_consumer: retcl_consumer was not built")
endif()
step("run the find_package consumer"
     "${CMAKE_COMMAND}" -E env "${run_env}" "${cmake_consumer}")

# ---- pkg-config -----------------------------------------------------------
if(NOT PKG_CONFIG)
  find_program(PKG_CONFIG NAMES pkg-config pkgconf)
endif()
if(NOT PKG_CONFIG)
  message(FATAL_ERROR "install_consumer: pkg-config not found")
endif()
# retcl.pc may record the prefix chosen at configure time, while this
# install went elsewhere (--prefix). Relocate a copy of it, as a packager
# would; a .pc whose prefix is relative to ${pcfiledir} needs no change.
file(READ "${pc_file}" pc_text)
if(pc_text MATCHES "(^|\n)prefix=(/[^\n]*)" AND
   NOT CMAKE_MATCH_2 STREQUAL PREFIX)
  message(STATUS "retcl.pc says prefix=${CMAKE_MATCH_2}; using a copy with "
                 "prefix=${PREFIX}")
  string(REGEX REPLACE "(^|\n)prefix=[^\n]*" "\\1prefix=${PREFIX}"
         pc_text "${pc_text}")
  set(pc_dir "${WORK_DIR}/pkgconfig")
  file(WRITE "${pc_dir}/retcl.pc" "${pc_text}")
endif()
set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
execute_process(
  COMMAND "${PKG_CONFIG}" --cflags --libs retcl
  RESULT_VARIABLE rc OUTPUT_VARIABLE pc_flags ERROR_VARIABLE pc_err
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "install_consumer: pkg-config --cflags --libs retcl "
                      "failed (${rc}): ${pc_err}")
endif()
message(STATUS "pkg-config --cflags --libs retcl: ${pc_flags}")
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
# main.c calls OpenCL itself, as every RetCL user does (buffers, queues):
# retcl.h exposes OpenCL types, so `pkg-config --libs retcl` must bring
# -lOpenCL, like the CMake target's PUBLIC OpenCL::OpenCL does.
message(STATUS "==> compile the pkg-config consumer")
execute_process(
  COMMAND "${C_COMPILER}" "${SOURCE_DIR}/main.c" ${pc_flags}
          -o "${WORK_DIR}/retcl_consumer_pc"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR
    "install_consumer: compiling main.c with `pkg-config --cflags --libs "
    "retcl` failed (${rc}). If the linker says \"DSO missing from command "
    "line\" for an OpenCL symbol, retcl.pc lists OpenCL under "
    "Requires.private instead of Requires.")
endif()
step("run the pkg-config consumer"
     "${CMAKE_COMMAND}" -E env "${run_env}" "${WORK_DIR}/retcl_consumer_pc")

# ---- the MPI component (when built): find_package and pkg-config ----------
if(WITH_MPI)
  set(mpi_env ${run_env} OMPI_ALLOW_RUN_AS_ROOT=1
      OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
  find_program(mpi_consumer retcl_consumer_mpi
    PATHS "${WORK_DIR}/cmake" "${WORK_DIR}/cmake/${CONFIG}" NO_DEFAULT_PATH)
  if(NOT mpi_consumer)
    message(FATAL_ERROR "install_consumer: retcl_consumer_mpi was not built")
  endif()
  step("run the find_package MPI consumer on 2 ranks"
       "${CMAKE_COMMAND}" -E env ${mpi_env} "${MPIEXEC}" -n 2 ${MPIEXEC_EXTRA}
       "${mpi_consumer}")
  file(GLOB_RECURSE mpi_pc "${PREFIX}/*/pkgconfig/retcl-mpi.pc")
  if(NOT mpi_pc)
    message(FATAL_ERROR "install_consumer: no retcl-mpi.pc under ${PREFIX}")
  endif()
  if(NOT pc_dir STREQUAL "${WORK_DIR}/pkgconfig")
    get_filename_component(pc_dir "${mpi_pc}" DIRECTORY)
  else()
    file(READ "${mpi_pc}" mpi_text)
    string(REGEX REPLACE "(^|\n)prefix=[^\n]*" "\\1prefix=${PREFIX}"
           mpi_text "${mpi_text}")
    file(WRITE "${pc_dir}/retcl-mpi.pc" "${mpi_text}")
  endif()
  set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
  execute_process(
    COMMAND "${PKG_CONFIG}" --cflags --libs retcl-mpi
    RESULT_VARIABLE rc OUTPUT_VARIABLE mpi_flags ERROR_VARIABLE pc_err
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: pkg-config retcl-mpi failed: ${pc_err}")
  endif()
  message(STATUS "pkg-config --cflags --libs retcl-mpi: ${mpi_flags}")
  separate_arguments(mpi_flags UNIX_COMMAND "${mpi_flags}")
  step("compile the pkg-config MPI consumer"
       "${C_COMPILER}" "${SOURCE_DIR}/main_mpi.c" ${mpi_flags}
       -o "${WORK_DIR}/retcl_consumer_mpi_pc")
  step("run the pkg-config MPI consumer on 2 ranks"
       "${CMAKE_COMMAND}" -E env ${mpi_env} "${MPIEXEC}" -n 2 ${MPIEXEC_EXTRA}
       "${WORK_DIR}/retcl_consumer_mpi_pc")
endif()

# ---- the installed program -----------------------------------------------
if(EXISTS "${PREFIX}/bin/retcl")
  step("run the installed retcl --version (RPATH only)"
       "${CMAKE_COMMAND}" -E env --unset=LD_LIBRARY_PATH
       "${PREFIX}/bin/retcl" --version)
endif()
message(STATUS "install_consumer: all steps passed")
