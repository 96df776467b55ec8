#!/usr/bin/env bash
# Simulated-device check (docs/reliability.md): the kernel test suites run
# on oclgrind's simulated OpenCL device, which checks every memory access
# of every work-item. Oclgrind exits 0 whatever it finds, so this script
# reads its reports from the logs and fails on any of them.
#
# Two passes, each in both access patterns (RETCL_KERNEL_PATHS=cpu, gpu):
#
#  A. --check-api --data-races (out-of-bounds checking is always on):
#     test_rotation, test_rotation_grad, test_retention,
#     test_retention_grad, test_group_norm, test_group_norm_grad,
#     test_linear, test_gemm, test_layer, test_model, test_train_ops in full,
#     with the default kernel optimisation (in the GPU patterns
#     test_retention_grad's "torchscale" case and test_model's "forms"
#     case only), and test_model_weights16's "ops" case (16-bit weight
#     kernels). Afterwards every
#     RetCL kernel must have run at least once in each pattern.
#  B. --check-api --uninitialized: test_rotation, test_rotation_grad,
#     test_group_norm, test_group_norm_grad and test_train_ops (its CPU
#     patterns unoptimised) in full and test_retention's "torchscale" and
#     "invalid" cases in both
#     patterns; test_retention's "raw" case and test_layer in the CPU
#     patterns (the projection kernels the layer adds do not depend on the
#     pattern).
#     Oclgrind 21.10's uninitialised-value plugin has two bugs that stop a
#     kernel mid-way ("OCLGRIND FATAL ERROR"), worked around for this pass
#     only, by build options oclgrind adds to every program it compiles:
#     - "Unsupported instruction: freeze": LLVM's optimiser turns
#       x / n, x % n pairs into freeze instructions the plugin cannot
#       interpret; retention and layer therefore run with
#       -cl-opt-disable (which is also why they run only in part: the
#       unoptimised retention "raw" case takes 2 minutes of CPU time in
#       the CPU patterns, 3.5 in the GPU patterns);
#     - sincos() with a private pointer (rotation.cl) aborts the plugin
#       ("Work item needed to access private memory"): a header included
#       in front of every program defines sincos(x, c) as
#       (*(c) = cos(x), sin(x)), the same values by two builtins.
#     A third bug gives false reports: a buffer created where a smaller
#     one was released keeps the smaller one's shadow memory, so reads of
#     values just written past the old size are reported ("Controlflow
#     depends on uninitialized value"; RetCL grows its workspace exactly
#     so). Buffer releases are held back until their context is released,
#     so no address is reused within a context.
#
# The Transformer baseline's suite (tests/baseline) takes ~6 minutes per
# access pattern on oclgrind, so it runs (pass A) only with
# RETCL_OCLGRIND_BASELINE=1.
#
# About 3.5 minutes on 2 cores (oclgrind interprets every work-item, on
# as many threads as there are cores); RETCL_BUILD_DIR selects another
# build folder than build/; RETCL_OCLGRIND_ONLY (a regex on "pass label")
# runs only the matching runs.
#
# Harness details: CK_FORK=no (oclgrind follows one process); a small
# LD_PRELOAD library (built here) records each kernel launch, holds back
# buffer releases in pass B, and, when a context is released, first
# empties CLBlast's program cache: oclgrind frees a context's programs with
# the context, so CLBlast's cache, which outlives it and is destroyed at
# exit, would otherwise release freed programs ("corrupted double-linked
# list" after every test passed). A self-test first runs three
# deliberately broken kernels (out-of-bounds write, data race,
# uninitialised read) and requires a report for each, and one correct
# kernel on a reused buffer address that must give none, so a quiet log
# means a clean run, not a blind one.
#
# No CLBlast kernel has produced a report; should one, its name can be
# listed in RETCL_OCLGRIND_IGNORE_KERNELS (an extended regex) with the
# reason in docs/reliability.md. RetCL's own kernels (retcl_*) are never
# ignored.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD="${RETCL_BUILD_DIR:-build}"
IGNORE_KERNELS="${RETCL_OCLGRIND_IGNORE_KERNELS:-}"
RUN_TIMEOUT="${RETCL_OCLGRIND_TIMEOUT:-1200}"
export POCL_DEVICES="${POCL_DEVICES:-pthread}"
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-${TMPDIR:-/tmp}/retcl-pocl-cache}"
unset RETCL_DEVICE RETCL_PLATFORM RETCL_KERNEL_PATHS \
      RETCL_MAX_WORK_GROUP_SIZE RETCL_MAX_LOCAL_MEM_BYTES CK_RUN_SUITE \
      CK_RUN_CASE

if ! command -v oclgrind >/dev/null 2>&1; then
  echo "ci_oclgrind: oclgrind not found (apt-get install oclgrind)" >&2
  exit 1
fi
for t in rotation rotation_grad retention retention_grad group_norm \
         group_norm_grad layer model; do
  if [ ! -x "$BUILD/tests/test_$t" ]; then
    echo "ci_oclgrind: $BUILD/tests/test_$t missing; run scripts/test.sh" >&2
    exit 1
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/retcl-oclgrind.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# What the oclgrind launcher would set: its runtime preloaded in place of
# the ICD loader. Taken from the launcher itself, so paths match the
# installed version; our recorder goes in front of it.
og_preload="$(oclgrind sh -c 'printf %s "$LD_PRELOAD"')"
og_libpath="$(oclgrind sh -c 'printf %s "${LD_LIBRARY_PATH:-}"')"

# ---- launch recorder and CLBlast cache guard -------------------------------
cat >"$work/og_shim.c" <<'EOF'
#define _GNU_SOURCE
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef cl_int (*release_fn)(cl_context);
typedef int (*clear_fn)(void);
typedef cl_int (*enqueue_fn)(cl_command_queue, cl_kernel, cl_uint,
                             const size_t *, const size_t *, const size_t *,
                             cl_uint, const cl_event *, cl_event *);
typedef cl_int (*kinfo_fn)(cl_kernel, cl_kernel_info, size_t, void *,
                           size_t *);

typedef cl_int (*mem_release_fn)(cl_mem);
typedef cl_int (*mem_info_fn)(cl_mem, cl_mem_info, size_t, void *, size_t *);

static __thread int clearing;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept { cl_mem mem; cl_context ctx; } *kept;
static size_t kept_n, kept_cap;

/* With RETCL_OG_KEEP_BUFFERS=1, buffer releases wait for the release of
 * their context, so no new buffer reuses the address of a released one:
 * oclgrind 21.10's uninitialised-value plugin keeps the old, smaller
 * shadow for a larger buffer created at a reused address and then reports
 * reads of values the kernel has just written (RetCL grows its workspace
 * by exactly that: release, create larger). */
CL_API_ENTRY cl_int CL_API_CALL clReleaseMemObject(cl_mem mem) {
  static mem_release_fn next;
  static mem_info_fn info;
  if (!next) {
    next = (mem_release_fn)dlsym(RTLD_NEXT, "clReleaseMemObject");
    info = (mem_info_fn)dlsym(RTLD_NEXT, "clGetMemObjectInfo");
  }
  const char *keep = getenv("RETCL_OG_KEEP_BUFFERS");
  cl_context ctx = NULL;
  if (!mem || !keep || strcmp(keep, "1") != 0 || !info ||
      info(mem, CL_MEM_CONTEXT, sizeof ctx, &ctx, NULL) != CL_SUCCESS)
    return next(mem);
  pthread_mutex_lock(&kept_lock);
  if (kept_n == kept_cap) {
    size_t cap = kept_cap ? 2 * kept_cap : 256;
    struct kept *k = realloc(kept, cap * sizeof *k);
    if (!k) {
      pthread_mutex_unlock(&kept_lock);
      return next(mem);
    }
    kept = k;
    kept_cap = cap;
  }
  kept[kept_n].mem = mem;
  kept[kept_n].ctx = ctx;
  ++kept_n;
  pthread_mutex_unlock(&kept_lock);
  return CL_SUCCESS;
}

/* CLBlast's programs, and the buffers kept above, go before the context
 * they belong to. */
CL_API_ENTRY cl_int CL_API_CALL clReleaseContext(cl_context context) {
  static release_fn next;
  static mem_release_fn mem_next;
  if (!next) {
    next = (release_fn)dlsym(RTLD_NEXT, "clReleaseContext");
    mem_next = (mem_release_fn)dlsym(RTLD_NEXT, "clReleaseMemObject");
  }
  if (!clearing) {
    clear_fn clear = (clear_fn)dlsym(RTLD_DEFAULT, "CLBlastClearCache");
    clearing = 1;
    if (clear) clear();
    clearing = 0;
  }
  /* Take this context's buffers out of the list, then release them with
   * the lock dropped: a buffer's last release releases its context
   * reference, which calls this function again. */
  cl_mem *mine = NULL;
  size_t n = 0;
  pthread_mutex_lock(&kept_lock);
  for (size_t i = 0; i < kept_n; ++i)
    if (kept[i].ctx == context) ++n;
  if (n) mine = malloc(n * sizeof *mine);
  size_t j = 0, m = 0;
  for (size_t i = 0; i < kept_n; ++i) {
    if (kept[i].ctx == context && mine) mine[m++] = kept[i].mem;
    else kept[j++] = kept[i];
  }
  kept_n = j;
  pthread_mutex_unlock(&kept_lock);
  for (size_t i = 0; i < m; ++i) mem_next(mine[i]);
  free(mine);
  return next(context);
}

/* One line per launch, the kernel's name, to $RETCL_OG_TRACE. */
CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(
    cl_command_queue queue, cl_kernel kernel, cl_uint dims,
    const size_t *offset, const size_t *global, const size_t *local,
    cl_uint nwait, const cl_event *wait, cl_event *event) {
  static enqueue_fn next;
  static kinfo_fn kinfo;
  if (!next) {
    next = (enqueue_fn)dlsym(RTLD_NEXT, "clEnqueueNDRangeKernel");
    kinfo = (kinfo_fn)dlsym(RTLD_NEXT, "clGetKernelInfo");
  }
  const char *path = getenv("RETCL_OG_TRACE");
  if (path && *path && kinfo) {
    char name[128] = "?";
    kinfo(kernel, CL_KERNEL_FUNCTION_NAME, sizeof name - 2, name, NULL);
    name[sizeof name - 2] = '\0';
    size_t n = strlen(name);
    name[n++] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      if (write(fd, name, n) < 0) { /* best effort */ }
      close(fd);
    }
  }
  return next(queue, kernel, dims, offset, global, local, nwait, wait, event);
}
EOF
"${CC:-cc}" -O2 -shared -fPIC -o "$work/og_shim.so" "$work/og_shim.c" -ldl \
  -lpthread

# sincos for pass B (see the header comment). The include guard of
# oclgrind's builtin header keeps the macro away from its declarations
# whether or not oclgrind uses its precompiled header.
og_header="$(ls /usr/lib/*/oclgrind/*/opencl-c.h 2>/dev/null | head -n1 || true)"
{
  [ -n "$og_header" ] && echo "#include \"$og_header\""
  echo '#define sincos(x, c) (*(c) = cos(x), sin(x))'
} >"$work/og_sincos.h"

# ---- report scanner ----------------------------------------------------------
# Prints oclgrind's reports found in a log, minus those of ignored (never
# RetCL) kernels. Reports are blocks separated by blank lines.
scan() {
  awk -v ignore="$IGNORE_KERNELS" '
    function flush() {
      if (block != "" && report) {
        skip = 0
        if (ignore != "" && kernel != "" && kernel !~ /^retcl_/ &&
            kernel ~ ("^(" ignore ")$")) skip = 1
        if (!skip) printf "%s\n", block
      }
      block = ""; report = 0; kernel = ""
    }
    /^[ \t]*$/ { flush(); next }
    {
      block = block $0 "\n"
      if ($0 ~ /OCLGRIND FATAL ERROR|Oclgrind - OpenCL runtime error|^Oclgrind|Invalid (read|write)|[Dd]ata race|Uninitiali[sz]ed|Unaligned address|divergence|executed barrier|Unsupported instruction|Kernel: /)
        report = 1
      if ($0 ~ /^[ \t]*Kernel: /) { kernel = $0; sub(/^[ \t]*Kernel:[ \t]*/, "", kernel) }
    }
    END { flush() }' "$1"
}

# ---- running under oclgrind --------------------------------------------------
failed=0
summary="$work/summary"
: >"$summary"

# og LABEL PASS BUILD_OPTIONS COMMAND ENV...: runs COMMAND (a test binary)
# on oclgrind with the pass's checks; fails on a test failure or a report.
og() {
  local label="$1" pass="$2" options="$3" cmd="$4"
  shift 4
  # RETCL_OCLGRIND_ONLY (an extended regex on "pass label") runs a subset,
  # for reproducing one report by hand.
  if [ -n "${RETCL_OCLGRIND_ONLY:-}" ] &&
     ! [[ "$pass $label" =~ $RETCL_OCLGRIND_ONLY ]]; then
    return 0
  fi
  local checks=(OCLGRIND_CHECK_API=1)
  if [ "$pass" = A ]; then checks+=(OCLGRIND_DATA_RACES=1)
  else checks+=(OCLGRIND_UNINITIALIZED=1 RETCL_OG_KEEP_BUFFERS=1); fi
  local log="$work/log" trace="$work/trace"
  : >"$trace"
  local start=$SECONDS rc=0
  timeout "$RUN_TIMEOUT" env "${checks[@]}" \
      OCLGRIND_BUILD_OPTIONS="$options" CK_FORK=no RETCL_OG_TRACE="$trace" \
      "$@" \
      LD_LIBRARY_PATH="$og_libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
      LD_PRELOAD="$work/og_shim.so:$og_preload" \
      "$cmd" >"$log" 2>&1 || rc=$?
  local secs=$((SECONDS - start))
  local launches kernels reports
  launches="$(wc -l <"$trace")"
  kernels="$(sort -u "$trace" | grep -c . || true)"
  reports="$(scan "$log")"
  cat "$trace" >>"$work/trace.$pass.$(echo "$label" | awk '{ print $NF }')"
  local checks_line
  checks_line="$(grep -E '^[0-9]+%: Checks:' "$log" | tail -n1 || true)"
  local verdict=ok
  if [ "$rc" -ne 0 ] || [ -n "$reports" ]; then
    verdict=FAILED
    failed=1
    echo "ci_oclgrind: $label: FAILED (exit $rc)" >&2
    if [ -n "$reports" ]; then
      echo "ci_oclgrind: oclgrind reports:" >&2
      printf '%s\n' "$reports" | head -n 200 >&2
    fi
    echo "ci_oclgrind: end of the test's output:" >&2
    tail -n 40 "$log" >&2
  fi
  printf '%-4s %-46s %5d s %7d launches %3d kernels  %s  %s\n' \
    "$pass" "$label" "$secs" "$launches" "$kernels" "$verdict" \
    "${checks_line:-no Check summary}" | tee -a "$summary"
}

# ---- self-test: the scanner sees what oclgrind reports ------------------------
cat >"$work/broken.c" <<'EOF'
/* Three broken kernels, one per argument: oob, race, uninit; and a
 * correct one, realloc, that writes then reads a buffer created where a
 * smaller one was released (no report allowed with the buffer guard). */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <string.h>
static const char *src =
    "__kernel void oob(__global float *x) {\n"
    "  x[get_global_id(0) + 1] = 1.0f; }\n"
    "__kernel void race(__global float *x, __local float *l) {\n"
    "  l[0] = (float)get_local_id(0);\n"
    "  x[get_global_id(0)] = l[0]; }\n"
    "__kernel void uninit(__global float *x) {\n"
    "  float a[4]; a[0] = 1.0f;\n"
    "  x[get_global_id(0)] = a[get_global_id(0) & 3]; }\n"
    "__kernel void realloc(__global float *x, uint n) {\n"
    "  for (uint i = 0; i < n; ++i) x[i] = (float)i;\n"
    "  float s = 0.0f;\n"
    "  for (uint i = 0; i < n; ++i) s = fma(x[i], 2.0f, s);\n"
    "  x[0] = s; }\n";
int main(int argc, char **argv) {
  if (argc < 2) return 2;
  cl_platform_id p;
  cl_device_id d;
  cl_int err;
  if (clGetPlatformIDs(1, &p, NULL) || clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL))
    return 3;
  cl_context c = clCreateContext(NULL, 1, &d, NULL, NULL, &err);
  cl_command_queue q = clCreateCommandQueue(c, d, 0, &err);
  cl_program pr = clCreateProgramWithSource(c, 1, &src, NULL, &err);
  if (clBuildProgram(pr, 1, &d, "", NULL, NULL)) return 4;
  cl_kernel k = clCreateKernel(pr, argv[1], &err);
  if (!k) return 5;
  if (!strcmp(argv[1], "realloc")) {
    size_t one = 1;
    cl_uint n = 1024;
    for (int i = 0; i < 2; ++i, n *= 4) {
      cl_mem m = clCreateBuffer(c, CL_MEM_READ_WRITE, n * sizeof(float), NULL, &err);
      clSetKernelArg(k, 0, sizeof m, &m);
      clSetKernelArg(k, 1, sizeof n, &n);
      clEnqueueNDRangeKernel(q, k, 1, NULL, &one, &one, 0, NULL, NULL);
      clFinish(q);
      clReleaseMemObject(m);
    }
    clReleaseKernel(k);
    clReleaseProgram(pr);
    clReleaseCommandQueue(q);
    clReleaseContext(c);
    return 0;
  }
  cl_mem b = clCreateBuffer(c, CL_MEM_READ_WRITE, 4 * sizeof(float), NULL, &err);
  clSetKernelArg(k, 0, sizeof b, &b);
  if (!strcmp(argv[1], "race")) clSetKernelArg(k, 1, sizeof(float), NULL);
  size_t g = 4, l = 4;
  clEnqueueNDRangeKernel(q, k, 1, NULL, &g, &l, 0, NULL, NULL);
  float h[4];
  clEnqueueReadBuffer(q, b, CL_TRUE, 0, sizeof h, h, 0, NULL, NULL);
  clReleaseMemObject(b);
  clReleaseKernel(k);
  clReleaseProgram(pr);
  clReleaseCommandQueue(q);
  clReleaseContext(c);
  return 0;
}
EOF
"${CC:-cc}" -O1 -o "$work/broken" "$work/broken.c" -lOpenCL
for kind in oob:A:report race:A:report uninit:B:report realloc:B:quiet; do
  IFS=: read -r k pass want <<<"$kind"
  checks=(OCLGRIND_CHECK_API=1 OCLGRIND_DATA_RACES=1)
  if [ "$pass" = B ]; then
    checks=(OCLGRIND_CHECK_API=1 OCLGRIND_UNINITIALIZED=1
            RETCL_OG_KEEP_BUFFERS=1)
  fi
  env "${checks[@]}" \
      LD_LIBRARY_PATH="$og_libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
      LD_PRELOAD="$work/og_shim.so:$og_preload" \
      "$work/broken" "$k" >"$work/selftest.log" 2>&1 || true
  found="$(scan "$work/selftest.log")"
  if { [ "$want" = report ] && [ -z "$found" ]; } ||
     { [ "$want" = quiet ] && [ -n "$found" ]; }; then
    echo "ci_oclgrind: self-test: the '$k' kernel should give $want;" \
         "the log scanner or oclgrind's setup is broken:" >&2
    cat "$work/selftest.log" >&2
    exit 1
  fi
done
echo "ci_oclgrind: self-test: out-of-bounds, data-race and uninitialised" \
     "reads are reported, a reused buffer address is not" \
     "($(oclgrind --version 2>&1 | grep -m1 -i oclgrind))"

# ---- pass A: out-of-bounds, data races, API ---------------------------------
start_all=$SECONDS
suites=(rotation rotation_grad retention retention_grad group_norm
        group_norm_grad linear gemm layer model train_ops)
for t in "${suites[@]}"; do
  og "test_$t cpu" A "" "$BUILD/tests/test_$t" RETCL_KERNEL_PATHS=cpu
done
# The GPU patterns interpret every work-item of every group, several times
# slower: retention without its "raw_more" case, the retention gradient's
# "torchscale" case (every algorithm,
# states in and out) with its "blocks" case (split state rows and their
# reduction: together every kernel of the family) and the model's "forms"
# case stand for their suites there; the other cases vary sizes the CPU
# run already checks.
for t in "${suites[@]}"; do
  case "$t" in
    retention_grad)
      for case in torchscale blocks; do
        og "test_$t:$case gpu" A "" "$BUILD/tests/test_$t" \
          RETCL_KERNEL_PATHS=gpu CK_RUN_CASE=$case
      done ;;
    model) og "test_$t:forms gpu" A "" "$BUILD/tests/test_$t" \
             RETCL_KERNEL_PATHS=gpu CK_RUN_CASE=forms ;;
    # Its "raw_more" case runs the same kernels longer (T 1000, every
    # algorithm against the others, prefill then decode): CPU patterns only.
    retention) og "test_$t gpu" A "" "$BUILD/tests/test_$t" \
                 RETCL_KERNEL_PATHS=gpu CK_EXCLUDE_TAGS=long ;;
    *) og "test_$t gpu" A "" "$BUILD/tests/test_$t" RETCL_KERNEL_PATHS=gpu ;;
  esac
done

# Packed sequences (the rotation's position table, the recurrent kernel's
# sequence table, slots in and out of a state buffer): the whole suite in
# both patterns, and the model's pool (sequences joining and leaving) in
# the CPU patterns.
for paths in cpu gpu; do
  og "test_retention_packed $paths" A "" \
    "$BUILD/tests/test_retention_packed" RETCL_KERNEL_PATHS=$paths
done
og "test_model_pool:pool cpu" A "" "$BUILD/tests/test_model_pool" \
  RETCL_KERNEL_PATHS=cpu CK_RUN_CASE=pool

# ---- pass B: uninitialised values ---------------------------------------------
opt_on="-include $work/og_sincos.h"
opt_off="-cl-opt-disable -include $work/og_sincos.h"
for paths in cpu gpu; do
  og "test_rotation $paths" B "$opt_on" "$BUILD/tests/test_rotation" \
    RETCL_KERNEL_PATHS=$paths
  og "test_group_norm $paths" B "$opt_on" "$BUILD/tests/test_group_norm" \
    RETCL_KERNEL_PATHS=$paths
  og "test_rotation_grad $paths" B "$opt_on" \
    "$BUILD/tests/test_rotation_grad" RETCL_KERNEL_PATHS=$paths
  og "test_group_norm_grad $paths" B "$opt_on" \
    "$BUILD/tests/test_group_norm_grad" RETCL_KERNEL_PATHS=$paths
  # Optimised, the CPU patterns of the cross-entropy kernel crash oclgrind
  # 21.10's uninitialised-value plugin (a segmentation fault, no report);
  # unoptimised they run in a few seconds.
  train_opt="$opt_on"
  [ "$paths" = cpu ] && train_opt="$opt_off"
  og "test_train_ops $paths" B "$train_opt" "$BUILD/tests/test_train_ops" \
    RETCL_KERNEL_PATHS=$paths
  for case in torchscale invalid; do
    og "test_retention:$case $paths" B "$opt_off" \
      "$BUILD/tests/test_retention" RETCL_KERNEL_PATHS=$paths CK_RUN_CASE=$case
  done
done
# The "raw" case (odd sizes: partial column blocks, Dv = 1, Dk = 256) in the
# CPU patterns only: unoptimised, the GPU patterns take over 3 minutes of
# CPU time for it; their partial blocks go through the same helpers.
og "test_retention:raw cpu" B "$opt_off" "$BUILD/tests/test_retention" \
  RETCL_KERNEL_PATHS=cpu CK_RUN_CASE=raw
# The projection kernels (linear.cl) differ by access pattern (a range of
# W rows per work-item, or a work-group per row): both, without CLBlast's
# cases. The layer adds CLBlast's kernels, the same in both patterns.
for paths in cpu gpu; do
  og "test_linear:streaming $paths" B "$opt_off" "$BUILD/tests/test_linear" \
    RETCL_KERNEL_PATHS=$paths CK_RUN_CASE=streaming
done
og "test_layer cpu" B "$opt_off" "$BUILD/tests/test_layer" \
  RETCL_KERNEL_PATHS=cpu
# 16-bit weights: the f16 and bf16 variants of the projection, GEMM (packed
# and not) and group-norm kernels, small shapes, both patterns (pass A
# checks; the exhaustive conversion and model cases stay out: too slow).
for paths in cpu gpu; do
  og "test_model_weights16:ops $paths" A "" \
    "$BUILD/tests/test_model_weights16" RETCL_KERNEL_PATHS=$paths \
    CK_RUN_CASE=ops
done

# ---- the Transformer baseline, on request --------------------------------------
shopt -s nullglob
baseline=()
for f in tests/baseline/test_*.c; do
  name="$(basename "$f" .c)"
  [ -x "$BUILD/tests/$name" ] && baseline+=("$name")
done
if [ "${#baseline[@]}" -gt 0 ]; then
  if [ "${RETCL_OCLGRIND_BASELINE:-0}" = 1 ]; then
    for paths in cpu gpu; do
      for t in "${baseline[@]}"; do
        og "$t $paths" A "" "$BUILD/tests/$t" RETCL_KERNEL_PATHS=$paths
      done
    done
  else
    echo "ci_oclgrind: skipped ${baseline[*]} (about 6 minutes per access" \
         "pattern on oclgrind; RETCL_OCLGRIND_BASELINE=1 runs it)"
  fi
fi

# ---- coverage: every RetCL kernel of each pattern ran in pass A -----------------
# Some kernels belong to one pattern: the projections come in one family
# per pattern, skinny (CPU: W rows per work-item) and grouped (GPU: a
# work-group per W row); the chunkwise states are one pass on CPUs
# (state_scan) and two, parallel over chunks, on GPUs (chunk_state, then
# chunk_scan).
all_kernels="$(grep -oE '"retcl_[a-z0-9_]+"' lib/runtime/program.c | tr -d '"' | sort -u)"
for paths in cpu gpu; do
  [ -n "${RETCL_OCLGRIND_ONLY:-}" ] && break # a subset covers what it covers
  other_pattern='^(retcl_linear_grouped_|retcl_retention_chunk_(state|scan)$)'
  [ "$paths" = gpu ] && other_pattern='^(retcl_linear_skinny_|retcl_retention_state_scan$)'
  missing="$(comm -23 <(printf '%s\n' "$all_kernels" | grep -Ev "$other_pattern") \
                      <(sort -u "$work/trace.A.$paths" 2>/dev/null))"
  if [ -n "$missing" ]; then
    failed=1
    echo "ci_oclgrind: RetCL kernels that never ran in pass A ($paths):" \
         $missing >&2
  fi
done

echo "ci_oclgrind: summary (pass, suite and access pattern, time, kernel" \
     "launches, distinct kernels, verdict):"
cat "$summary"
for pass in A B; do
  for paths in cpu gpu; do
    f="$work/trace.$pass.$paths"
    [ -f "$f" ] || continue
    echo "ci_oclgrind: pass $pass, $paths patterns: $(wc -l <"$f") launches" \
         "of $(sort -u "$f" | grep -c '^retcl_' || true) RetCL kernels and" \
         "$(sort -u "$f" | grep -vc '^retcl_' || true) others:" \
         "$(sort "$f" | uniq -c | sort -k2 | awk '{ printf "%s%s x%d", sep, $2, $1; sep = ", " }')"
  done
done
echo "ci_oclgrind: $(wc -l <"$summary") runs in $((SECONDS - start_all)) s"
[ "$failed" -eq 0 ] && echo "ci_oclgrind: no oclgrind report, every test passed"
exit "$failed"
