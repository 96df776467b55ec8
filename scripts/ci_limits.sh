#!/usr/bin/env bash
# Device-limits check (docs/reliability.md): the test suite again with the
# limits of a small GPU imposed on PoCL, in both access patterns:
#
#   POCL_MAX_WORK_GROUP_SIZE=64       PoCL reports (and enforces) at most 64
#                                     work-items per group;
#   RETCL_MAX_LOCAL_MEM_BYTES=32768   RetCL sizes local memory for 32 KiB
#                                     (PoCL 3.1 has no knob for its 1 MiB of
#                                     local memory, so the cap is applied
#                                     where RetCL queries the device,
#                                     lib/runtime/context.c query_device).
#
# Runs 1. every ctest test (CPU access patterns, PoCL's default), 2. the
# kernel suites with RETCL_KERNEL_PATHS=gpu (work-group reductions in local
# memory), 3. the group-norm suite with the GPU patterns and local memory
# capped at 256 bytes, which must shrink its work-groups below 64: proof
# that the cap reaches the launch code rather than happening to fit, and
# 4. the same with RETCL_MAX_WORK_GROUP_SIZE=16 (RetCL's work-group cap for
# devices without a knob of their own), whose groups must have 16 items
# (group norm, projections, GEMM, cross-entropy, gradient norm).
#
# Every kernel launch is recorded by a small LD_PRELOAD library (built
# here): kernel name, local work size and the kernel's local memory
# (CL_KERNEL_LOCAL_MEM_SIZE, which includes __local arguments). The script
# fails if a test fails, if a RetCL kernel (retcl_*) or one of the
# Transformer baseline's (tf_*) ran with more than the capped work-group
# size or local memory, or if the caps did not take effect. CLBlast's
# kernels are listed but not judged: CLBlast sizes itself from the device,
# which here still reports PoCL's 1 MiB of local memory. A launch that
# leaves the work-group size to the runtime shows 0 local items (PoCL then
# picks one within its reported limit).
#
#   scripts/ci_limits.sh [ctest arguments for runs 1 and 2, e.g. -E cli]
#
# RETCL_BUILD_DIR selects another build folder than build/. Takes about
# as long as scripts/test.sh with a warm kernel cache (PoCL recompiles
# what the new work-group limit changes on the first run).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD="${RETCL_BUILD_DIR:-build}"
export POCL_DEVICES="${POCL_DEVICES:-pthread}"
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-${TMPDIR:-/tmp}/retcl-pocl-cache}"
mkdir -p "$POCL_CACHE_DIR"
unset RETCL_KERNEL_PATHS RETCL_MAX_WORK_GROUP_SIZE \
      RETCL_MAX_LOCAL_MEM_BYTES

WG_CAP=64
LOCAL_CAP=32768
TIGHT_LOCAL_CAP=256

if [ ! -f "$BUILD/CTestTestfile.cmake" ]; then
  echo "ci_limits: $BUILD/ is not a configured build; run scripts/test.sh" >&2
  exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/retcl-limits.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# ---- launch recorder ------------------------------------------------------
cat >"$work/launches.c" <<'EOF'
/* LD_PRELOAD: one line per clEnqueueNDRangeKernel to $RETCL_LAUNCH_LOG:
 * "kernel local_items local_bytes" (local_items 0: left to the runtime). */
#define _GNU_SOURCE
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Resolved at the first launch, so processes that never use OpenCL
 * (ctest, cmake, the compiler of the consumer test) load this library
 * without needing libOpenCL. */
typedef cl_int (*enqueue_fn)(cl_command_queue, cl_kernel, cl_uint,
                             const size_t *, const size_t *, const size_t *,
                             cl_uint, const cl_event *, cl_event *);
typedef cl_int (*kinfo_fn)(cl_kernel, cl_kernel_info, size_t, void *,
                           size_t *);
typedef cl_int (*qinfo_fn)(cl_command_queue, cl_command_queue_info, size_t,
                           void *, size_t *);
typedef cl_int (*wginfo_fn)(cl_kernel, cl_device_id,
                            cl_kernel_work_group_info, size_t, void *,
                            size_t *);

CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(
    cl_command_queue queue, cl_kernel kernel, cl_uint dims,
    const size_t *offset, const size_t *global, const size_t *local,
    cl_uint nwait, const cl_event *wait, cl_event *event) {
  static enqueue_fn next;
  static kinfo_fn kinfo;
  static qinfo_fn qinfo;
  static wginfo_fn wginfo;
  if (!next) {
    next = (enqueue_fn)dlsym(RTLD_NEXT, "clEnqueueNDRangeKernel");
    kinfo = (kinfo_fn)dlsym(RTLD_NEXT, "clGetKernelInfo");
    qinfo = (qinfo_fn)dlsym(RTLD_NEXT, "clGetCommandQueueInfo");
    wginfo = (wginfo_fn)dlsym(RTLD_NEXT, "clGetKernelWorkGroupInfo");
  }
  const char *path = getenv("RETCL_LAUNCH_LOG");
  if (path && *path && kinfo && qinfo && wginfo) {
    char name[128] = "?";
    kinfo(kernel, CL_KERNEL_FUNCTION_NAME, sizeof name - 1, name, NULL);
    name[sizeof name - 1] = '\0';
    cl_device_id dev = NULL;
    qinfo(queue, CL_QUEUE_DEVICE, sizeof dev, &dev, NULL);
    cl_ulong lmem = 0;
    wginfo(kernel, dev, CL_KERNEL_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    size_t items = 0;
    if (local) {
      items = 1;
      for (cl_uint d = 0; d < dims; ++d) items *= local[d];
    }
    char line[256];
    int n = snprintf(line, sizeof line, "%s %zu %llu\n", name, items,
                     (unsigned long long)lmem);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      if (write(fd, line, (size_t)n) < 0) { /* best effort */ }
      close(fd);
    }
  }
  return next(queue, kernel, dims, offset, global, local, nwait, wait, event);
}
EOF
"${CC:-cc}" -O2 -shared -fPIC -o "$work/liblaunches.so" "$work/launches.c" -ldl

# The device as PoCL now reports it.
cat >"$work/limits.c" <<'EOF'
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
int main(void) {
  cl_platform_id p[8];
  cl_uint np = 0;
  if (clGetPlatformIDs(8, p, &np) != CL_SUCCESS || np == 0) return 1;
  for (cl_uint i = 0; i < np && i < 8; ++i) {
    cl_device_id d;
    cl_uint nd = 0;
    if (clGetDeviceIDs(p[i], CL_DEVICE_TYPE_ALL, 1, &d, &nd) != CL_SUCCESS)
      continue;
    size_t wg = 0;
    cl_ulong lm = 0;
    char name[256] = "";
    clGetDeviceInfo(d, CL_DEVICE_NAME, sizeof name, name, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lm, &lm, NULL);
    printf("%zu %llu %s\n", wg, (unsigned long long)lm, name);
    return 0;
  }
  return 1;
}
EOF
"${CC:-cc}" -O2 -o "$work/limits" "$work/limits.c" -lOpenCL

export POCL_MAX_WORK_GROUP_SIZE=$WG_CAP
if ! read -r dev_wg dev_local dev_name < <("$work/limits"); then
  echo "ci_limits: no OpenCL device found (POCL_DEVICES=$POCL_DEVICES)" >&2
  exit 1
fi
echo "ci_limits: device '$dev_name' reports max work-group $dev_wg" \
     "(POCL_MAX_WORK_GROUP_SIZE=$WG_CAP), local memory $dev_local bytes" \
     "(RetCL capped to $LOCAL_CAP)"
if [ "$dev_wg" -gt "$WG_CAP" ]; then
  echo "ci_limits: POCL_MAX_WORK_GROUP_SIZE had no effect" >&2
  exit 1
fi

failed=0
# run LABEL LOG ENV... -- COMMAND...: a test command with the recorder.
run() {
  local label="$1" log="$2"
  shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  local start=$SECONDS
  if env "${envs[@]}" RETCL_LAUNCH_LOG="$log" \
       LD_PRELOAD="$work/liblaunches.so${LD_PRELOAD:+:$LD_PRELOAD}" \
       "$@" >"$work/out" 2>&1; then
    echo "ci_limits: $label: passed in $((SECONDS - start)) s" \
         "($(grep -E 'tests passed|Checks:' "$work/out" | tail -n1))"
  else
    failed=1
    echo "ci_limits: $label: FAILED" >&2
    cat "$work/out" >&2
  fi
  touch "$log"
}

# judge LABEL LOG LOCAL_CAP: every RetCL launch within the caps.
judge() {
  local label="$1" log="$2" cap="$3"
  local bad
  bad="$(awk -v wg="$WG_CAP" -v lm="$cap" \
    '$1 ~ /^(retcl|tf)_/ && ($2 > wg || $3 > lm)' "$log" | sort | uniq -c)"
  if [ -n "$bad" ]; then
    failed=1
    echo "ci_limits: $label: RetCL or baseline launches over the limits" \
         "(count, kernel, local items, local bytes):" >&2
    echo "$bad" >&2
  fi
  awk '{ k = ($1 ~ /^retcl_/) ? $1 : ($1 ~ /^tf_/) ? "(baseline) " $1 : "(CLBlast) " $1; n[k]++;
         if ($2 > w[k]) w[k] = $2; if ($3 > m[k]) m[k] = $3 }
       END { for (k in n) printf "    %-40s %6d launches, max local items %4d, max local bytes %6d\n", k, n[k], w[k], m[k] }' \
    "$log" | sort
}

caps=(POCL_MAX_WORK_GROUP_SIZE=$WG_CAP RETCL_MAX_LOCAL_MEM_BYTES=$LOCAL_CAP)

# 1. Every test, CPU access patterns.
run "all tests, CPU patterns" "$work/cpu.log" "${caps[@]}" -- \
  ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)" "$@"
judge "CPU patterns" "$work/cpu.log" $LOCAL_CAP

# 2. The kernel suites with the GPU access patterns (those of
# scripts/test.sh, and the Transformer baseline's when it is built).
kernel_suites='rotation|retention|group_norm|linear|gemm|layer|model|train_ops'
for f in tests/baseline/test_*.c; do
  if [ -e "$f" ]; then kernel_suites="$kernel_suites|$(basename "$f" .c)"; fi
done
run "kernel suites, GPU patterns" "$work/gpu.log" "${caps[@]}" \
  RETCL_KERNEL_PATHS=gpu -- \
  ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)" -R "$kernel_suites" "$@"
judge "GPU patterns" "$work/gpu.log" $LOCAL_CAP

# 3. Local memory capped hard: the group norm's work-groups must shrink.
run "group norm, GPU patterns, local memory $TIGHT_LOCAL_CAP bytes" \
  "$work/tight.log" POCL_MAX_WORK_GROUP_SIZE=$WG_CAP \
  RETCL_MAX_LOCAL_MEM_BYTES=$TIGHT_LOCAL_CAP RETCL_KERNEL_PATHS=gpu -- \
  ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)" -R group_norm
judge "tight local memory" "$work/tight.log" $TIGHT_LOCAL_CAP

# 4. Work-groups capped below PoCL's limit by RetCL's own knob.
run "group norm, projections, training ops, GPU patterns, RETCL_MAX_WORK_GROUP_SIZE=16" \
  "$work/wg16.log" POCL_MAX_WORK_GROUP_SIZE=$WG_CAP \
  RETCL_MAX_WORK_GROUP_SIZE=16 RETCL_KERNEL_PATHS=gpu -- \
  ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)" \
  -R 'group_norm|linear|gemm|train_ops'
judge "work-groups of 16" "$work/wg16.log" $LOCAL_CAP
# Each family's largest work-group under the cap of 16 items must be 16:
# the cap was felt and honoured (the GEMM's: 4 x 4).
expect_wg16() { # KERNEL-REGEX WHAT
  local items
  items="$(awk -v re="$1" '$1 ~ re && $2 > m { m = $2 } END { print m + 0 }' \
           "$work/wg16.log")"
  if [ "$items" -ne 16 ]; then
    echo "ci_limits: RETCL_MAX_WORK_GROUP_SIZE=16: $2's largest work-group" \
         "has $items items, not 16" >&2
    failed=1
  fi
}
expect_wg16 '^retcl_group_norm_gate$' "the group norm"
expect_wg16 '^retcl_group_norm_gate_backward$' "the group norm backward"
expect_wg16 '^retcl_linear_grouped_' "the projections"
expect_wg16 '^retcl_gemm_' "the GEMM"
expect_wg16 '^retcl_cross_entropy_rows$' "the cross-entropy"
expect_wg16 '^retcl_grad_norm_partial$' "the gradient norm"

# The caps must have been felt: in run 2 the group norm's groups reach the
# 64-item limit, in run 3 its local memory (one float per work-item) stays
# within the tight cap, so its groups are smaller.
gn_gpu_items="$(awk '$1 == "retcl_group_norm_gate" && $2 > m { m = $2 }
                     END { print m + 0 }' "$work/gpu.log")"
gn_tight_items="$(awk '$1 == "retcl_group_norm_gate" && $2 > m { m = $2 }
                       END { print m + 0 }' "$work/tight.log")"
gn_tight_bytes="$(awk '$1 == "retcl_group_norm_gate" && $3 > m { m = $3 }
                       END { print m + 0 }' "$work/tight.log")"
echo "ci_limits: group norm (GPU patterns): largest work-group $gn_gpu_items" \
     "items at $LOCAL_CAP bytes, $gn_tight_items items and" \
     "$gn_tight_bytes bytes of local memory at $TIGHT_LOCAL_CAP bytes"
if [ "$gn_gpu_items" -ne "$WG_CAP" ]; then
  echo "ci_limits: expected the group norm to use $WG_CAP-item groups" >&2
  failed=1
fi
if [ "$gn_tight_items" -ge "$WG_CAP" ] || [ "$gn_tight_items" -eq 0 ] ||
   [ "$gn_tight_bytes" -gt "$TIGHT_LOCAL_CAP" ]; then
  echo "ci_limits: RETCL_MAX_LOCAL_MEM_BYTES=$TIGHT_LOCAL_CAP did not shrink" \
       "the group norm's work-groups" >&2
  failed=1
fi

[ "$failed" -eq 0 ] && echo "ci_limits: all runs within the limits"
exit "$failed"
