#!/usr/bin/env bash
# Build the libFuzzer harnesses into OUT (default build-fuzz/): clang with
# libFuzzer, AddressSanitizer and UBSan (any UB report aborts), compiled
# straight from the library sources the parsers need; no OpenCL device or
# CMake build is involved.
#   fuzz/build.sh [OUT]
#   build-fuzz/fuzz_safetensors fuzz/corpus/safetensors   # ad-hoc run
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-build-fuzz}"
mkdir -p "$out"
CC="${FUZZ_CC:-clang}"
flags=(-g -O1 -std=c11 -fno-omit-frame-pointer
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -Wall -Wextra -Wno-unused-parameter -Werror
       -I include -I lib
       -DCL_TARGET_OPENCL_VERSION=120 -DRETCL_STATIC_DEFINE)
# status.c (retcl__fail), validate.c (retcl__mul) and the parsers; validate.c
# also has the buffer checks, hence the OpenCL ICD loader at link time.
lib=(lib/io/safetensors.c lib/io/config.c lib/runtime/status.c
     lib/runtime/validate.c)
for harness in safetensors config; do
  "$CC" "${flags[@]}" "fuzz/fuzz_${harness}.c" "${lib[@]}" \
    -lcjson -lOpenCL -lm -o "$out/fuzz_${harness}"
done
echo "fuzz harnesses in $out/"
