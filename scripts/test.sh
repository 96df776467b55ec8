#!/usr/bin/env bash
# Configure, build and run every test suite (ctest) on the OpenCL device
# chosen by RETCL_DEVICE/RETCL_PLATFORM (default: first GPU, else first CPU).
# Suites run nproc at a time: each is its own process with its own context,
# and much of a suite's time is host-side (double references, kernel
# builds), so a second suite keeps the other core busy.
set -euo pipefail
cd "$(dirname "$0")/.."
export POCL_DEVICES="${POCL_DEVICES:-pthread}"
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-${TMPDIR:-/tmp}/retcl-pocl-cache}"
mkdir -p "$POCL_CACHE_DIR"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
# The same kernel suites again with the GPU access patterns (work-items
# interleaved over columns, work-group reductions), so code that only a GPU
# would run is checked here too.
RETCL_KERNEL_PATHS=gpu ctest --test-dir build --output-on-failure -j"$(nproc)" \
  -R 'rotation|retention|group_norm|linear|gemm|layer|model|train_ops' "$@"
# And under a parameter record of odd tile sizes, work-group shapes and
# elements per item (tests/params/odd-tiles.json), in both patterns:
# tunables change how the work is cut, never the result.
for paths in cpu gpu; do
  RETCL_PARAMS="$PWD/tests/params/odd-tiles.json" RETCL_KERNEL_PATHS=$paths \
    ctest --test-dir build --output-on-failure -j"$(nproc)" \
    -R 'rotation|retention|group_norm|linear|gemm|layer|model|train_ops' "$@"
done
