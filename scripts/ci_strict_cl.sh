#!/usr/bin/env bash
# Strict OpenCL C 1.2 check (docs/reliability.md): every kernel source
# compiles offline with clang's OpenCL front end for the generic SPIR
# targets (32- and 64-bit), -cl-std=CL1.2, every optional extension
# switched off and warnings as errors. A construct that only PoCL or one
# vendor accepts (a missing builtin, an implicit double, an extension type,
# a C liberty the OpenCL C 1.2 spec does not grant) fails here even though
# the PoCL tests pass.
#
#   cl/*.cl                 cl/common.cl + file, as lib/runtime/program.c
#                           builds them, with the -D definitions of the
#                           family's parameter record (`retcl params
#                           --defines FAMILY`, the only place they are
#                           written) for both access patterns and vector
#                           widths 8 and 16, and for the families that
#                           read weights each weight storage type
#                           (-DRETCL_WTYPE=1 f16, 2 bf16); needs the build (RETCL_BIN,
#                           default build/tools/retcl) and an OpenCL device
#   bench/fma_peak.cl       for W = 1, 2, 4, 8, 16 and FMA = fma, mad (the
#                           options bench/yardsticks.c builds it with)
#   bench/transformer/*.cl  bench/transformer/common.cl + file, as
#                           bench/transformer/tf_runtime.c builds them, for
#                           TF_CPU = 0, 1 and TF_LVW = 8, 16 (when present)
#
# Each configuration is compiled to LLVM IR (not only parsed), so
# diagnostics from code generation count too. Exits non-zero if any
# configuration fails, after printing clang's first messages for it.
# Takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG="${CLANG:-}"
if [ -z "$CLANG" ]; then
  for c in clang clang-14 clang-15 clang-16; do
    if command -v "$c" >/dev/null 2>&1; then CLANG="$c"; break; fi
  done
fi
if [ -z "$CLANG" ]; then
  echo "ci_strict_cl: clang not found (apt-get install clang)" >&2
  exit 1
fi

# -finclude-default-header: the OpenCL C builtin declarations (clang 14
#   takes it as a cc1 option);
# -cl-ext=-all: no optional extension is available (cl_khr_fp64, fp16,
#   atomics, ...), as on the most restricted conforming device;
# -Wall -Wextra -Werror: any warning fails the check.
FLAGS=(-x cl -cl-std=CL1.2
       -Xclang -finclude-default-header -Xclang -cl-ext=-all
       -Wall -Wextra -Werror -O2 -emit-llvm -c -o /dev/null)

work="$(mktemp -d "${TMPDIR:-/tmp}/retcl-strict-cl.XXXXXX")"
trap 'rm -rf "$work"' EXIT

checked=0
failed=0
# compile LABEL SOURCE [DEFINES...]: for the 32- and the 64-bit SPIR target
# (size_t and pointers of either width).
compile() {
  local label="$1" src="$2" target
  shift 2
  for target in spir spir64; do
    if "$CLANG" "${FLAGS[@]}" -target "$target" "$@" "$src" >"$work/log" 2>&1
    then
      checked=$((checked + 1))
    else
      failed=$((failed + 1))
      echo "FAIL: $label -target $target $*" >&2
      head -n 40 "$work/log" >&2
    fi
  done
}

# Library kernels: common.cl in front, as lib/runtime/program.c passes
# both sources to clCreateProgramWithSource, with each family's record.
RETCL_BIN="${RETCL_BIN:-build/tools/retcl}"
if [ ! -x "$RETCL_BIN" ]; then
  echo "ci_strict_cl: $RETCL_BIN not found (build first: scripts/test.sh)" >&2
  exit 1
fi
export POCL_DEVICES="${POCL_DEVICES:-pthread}"
for vw in 8 16; do
  printf '{"retention": {"vw": %s}, "retention_grad": {"vw": %s}, "elementwise": {"vw": %s},
          "linear": {"vw": %s}, "loss": {"vw": %s}, "optimizer": {"vw": %s}}' \
    "$vw" "$vw" "$vw" "$vw" "$vw" "$vw" >"$work/params.json"
  for paths in cpu gpu; do
    for f in cl/*.cl; do
      family="$(basename "$f" .cl)"
      [ "$family" = common ] && continue
      cat cl/common.cl "$f" >"$work/$family.cl"
      defines="$(RETCL_PARAMS="$work/params.json" RETCL_KERNEL_PATHS=$paths \
                 "$RETCL_BIN" params --defines "$family")"
      # shellcheck disable=SC2086 # one word per definition
      compile "$f" "$work/$family.cl" $defines
      # The families reading weights also build 16-bit weight variants
      # (lib/runtime/program.h RETCL_WEIGHT_FAMILIES): f16 and bf16.
      case "$family" in
        linear|gemm|elementwise|group_norm)
          # f16 reads weights with vload_half (core OpenCL 1.2), which
          # clang 14's header declares only under cl_khr_fp16: switched on
          # for that variant alone (half is a storage type there, never
          # arithmetic).
          # shellcheck disable=SC2086
          compile "$f" "$work/$family.cl" $defines -DRETCL_WTYPE=1 \
                  -Xclang -cl-ext=+cl_khr_fp16
          # shellcheck disable=SC2086
          compile "$f" "$work/$family.cl" $defines -DRETCL_WTYPE=2 ;;
      esac
    done
  done
done

# The FMA yardstick of the benchmarks.
if [ -f bench/fma_peak.cl ]; then
  for w in 1 2 4 8 16; do
    for fma in fma mad; do
      compile bench/fma_peak.cl bench/fma_peak.cl -DW=$w -DFMA=$fma
    done
  done
fi

# The Transformer baseline's kernels, when present: its prelude
# bench/transformer/common.cl in front of each other file, both access
# patterns (TF_CPU) and both projection vector widths (TF_LVW); the other
# macros keep the defaults the prelude gives them.
shopt -s nullglob
for f in bench/transformer/*.cl; do
  [ "$(basename "$f")" = common.cl ] && continue
  src="$f"
  if [ -f bench/transformer/common.cl ]; then
    cat bench/transformer/common.cl "$f" >"$work/tf_$(basename "$f")"
    src="$work/tf_$(basename "$f")"
  fi
  for cpu in 0 1; do
    for lvw in 8 16; do
      compile "$f" "$src" -DTF_CPU=$cpu -DTF_LVW=$lvw
    done
  done
done

echo "ci_strict_cl: $checked compilations passed, $failed failed" \
     "($("$CLANG" --version | head -n1); -cl-std=CL1.2 -target spir/spir64" \
     "-cl-ext=-all -Wall -Wextra -Werror)"
[ "$failed" -eq 0 ]
