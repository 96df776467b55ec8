/* yardsticks.c - FMA peak, CLBlast SGEMM and copy bandwidth (yardsticks.h).
 */
#include "yardsticks.h"

#include <string.h>

#if RETCL_BENCH_HAVE_CLBLAST
#include <clblast_c.h>
#endif

/* fma_peak.cl, embedded at build time (bench/CMakeLists.txt). */
extern const char bench_cl_fma_peak[];

/* ---- FMA peak ----------------------------------------------------------- */

/* 16 accumulators x 64 FMAs per loop trip; must match fma_peak.cl. */
#define FMA_PER_TRIP 64

typedef struct fma_job {
  cl_command_queue queue;
  cl_kernel kernel;
  size_t global;
} fma_job;

static int fma_enqueue(void *arg, cl_event *ev, char *err, size_t errlen) {
  fma_job *j = arg;
  cl_int e = clEnqueueNDRangeKernel(j->queue, j->kernel, 1, NULL, &j->global,
                                    NULL, 0, NULL, ev);
  if (e != CL_SUCCESS) {
    snprintf(err, errlen, "clEnqueueNDRangeKernel(fma_peak): %s",
             retcl_cl_error_name(e));
    return 1;
  }
  return 0;
}

static cl_kernel build_fma_kernel(retcl_context *ctx, int width, int has_fma,
                                  char *err, size_t errlen) {
  cl_context clctx = retcl_context_cl_context(ctx);
  cl_device_id dev = retcl_context_device(ctx);
  const char *src = bench_cl_fma_peak;
  cl_int e = CL_SUCCESS;
  cl_program prog = clCreateProgramWithSource(clctx, 1, &src, NULL, &e);
  if (!prog) {
    snprintf(err, errlen, "clCreateProgramWithSource: %s", retcl_cl_error_name(e));
    return NULL;
  }
  char opts[64];
  snprintf(opts, sizeof opts, "-DW=%d -DFMA=%s", width,
           has_fma ? "fma" : "mad");
  e = clBuildProgram(prog, 1, &dev, opts, NULL, NULL);
  if (e != CL_SUCCESS) {
    char log[256] = "";
    clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, sizeof log, log,
                          NULL);
    log[sizeof log - 1] = '\0';
    snprintf(err, errlen, "building fma_peak (%s): %s: %s", opts,
             retcl_cl_error_name(e), log);
    clReleaseProgram(prog);
    return NULL;
  }
  cl_kernel k = clCreateKernel(prog, "fma_peak", &e);
  clReleaseProgram(prog); /* the kernel keeps it alive */
  if (!k) snprintf(err, errlen, "clCreateKernel: %s", retcl_cl_error_name(e));
  return k;
}

/* Time one width: calibrate the loop count to target_ms, then measure with
 * the plan. Returns GFLOP/s, or 0 with err filled. */
static double fma_width(retcl_context *ctx, const bench_plan *plan,
                        double target_ms, int width, int has_fma, fma_job *job,
                        cl_mem out, int *iters_out, bench_stats *st, char *err,
                        size_t errlen) {
  job->kernel = build_fma_kernel(ctx, width, has_fma, err, errlen);
  if (!job->kernel) return 0;
  const float a = 0.999f, b = 0.001f;
  int iters = 8;
  clSetKernelArg(job->kernel, 0, sizeof out, &out);
  clSetKernelArg(job->kernel, 1, sizeof a, &a);
  clSetKernelArg(job->kernel, 2, sizeof b, &b);
  /* Calibration: one warm-up (compiles for this work size) plus one sample,
   * growing the loop until a launch lasts at least a quarter of the target
   * (launch overhead then no longer matters), then scaled to the target. */
  bench_plan cal = {1, 1, 0, plan->timer};
  double gflops = 0;
  for (;;) {
    clSetKernelArg(job->kernel, 3, sizeof iters, &iters);
    if (bench_time(ctx, &cal, fma_enqueue, job, st, err, errlen)) goto done;
    cal.warmup = 0;
    if (st->median_ms >= target_ms / 4 || iters >= (1 << 22)) break;
    double grow = st->median_ms > 0 ? target_ms / st->median_ms : 64;
    iters = (int)(iters * (grow > 64 ? 64 : grow < 2 ? 2 : grow));
  }
  if (st->median_ms < target_ms / 2) {
    double scaled = iters * (target_ms / st->median_ms);
    iters = scaled > (1 << 24) ? (1 << 24) : (int)scaled;
    clSetKernelArg(job->kernel, 3, sizeof iters, &iters);
  }
  bench_plan meas = *plan;
  meas.warmup = 1;
  if (bench_time(ctx, &meas, fma_enqueue, job, st, err, errlen)) goto done;
  /* A peak is a ceiling: the fastest sample is the one least disturbed by
   * whatever else shares the device (on a shared CPU, other processes). */
  gflops = 2.0 * FMA_PER_TRIP * width * (double)iters * (double)job->global /
           (st->min_ms * 1e6);
  *iters_out = iters;
done:
  clReleaseKernel(job->kernel);
  job->kernel = NULL;
  return gflops;
}

void bench_fma_peak(retcl_context *ctx, const bench_plan *plan,
                    double target_ms, bench_fma_result *out) {
  memset(out, 0, sizeof *out);
  bench_device_info info;
  bench_device_info_query(ctx, &info);
  /* Enough work-items to fill any device: 2048 per compute unit keeps every
   * GPU SM/CU at full occupancy and gives a CPU thousands of work-groups to
   * balance over its cores. */
  fma_job job = {retcl_context_queue(ctx), NULL,
                 (size_t)(info.compute_units ? info.compute_units : 1) * 2048};
  out->work_items = job.global;
  char err[400]; /* leaves room for the "width N: " prefix in out->error */
  cl_mem buf = bench_buffer(ctx, job.global, err, sizeof err);
  if (!buf) {
    snprintf(out->error, sizeof out->error, "%s", err);
    return;
  }
  static const int widths[BENCH_FMA_WIDTHS] = {1, 2, 4, 8, 16};
  for (int i = 0; i < BENCH_FMA_WIDTHS; ++i) {
    bench_stats st;
    int iters = 0;
    out->widths[i] = widths[i];
    double g = fma_width(ctx, plan, target_ms, widths[i], info.has_fma, &job,
                         buf, &iters, &st, err, sizeof err);
    out->gflops_by_width[i] = g;
    if (g <= 0) {
      snprintf(out->error, sizeof out->error, "width %d: %s", widths[i], err);
      continue;
    }
    if (g > out->gflops) {
      out->ok = 1;
      out->gflops = g;
      out->width = widths[i];
      out->iters = iters;
      out->stats = st;
    }
  }
  if (out->ok) out->error[0] = '\0'; /* one width failing is no failure */
  clReleaseMemObject(buf);
}

/* ---- CLBlast SGEMM ------------------------------------------------------ */

#if RETCL_BENCH_HAVE_CLBLAST
typedef struct sgemm_job {
  cl_command_queue queue;
  cl_mem a, b, c;
  size_t n;
} sgemm_job;

static int sgemm_enqueue(void *arg, cl_event *ev, char *err, size_t errlen) {
  sgemm_job *j = arg;
  CLBlastStatusCode s = CLBlastSgemm(
      CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, j->n, j->n,
      j->n, 1.0f, j->a, 0, j->n, j->b, 0, j->n, 0.0f, j->c, 0, j->n, &j->queue,
      ev);
  if (s != CLBlastSuccess) {
    snprintf(err, errlen, "CLBlastSgemm: status %d", (int)s);
    return 1;
  }
  return 0;
}
#endif

void bench_sgemm(retcl_context *ctx, const bench_plan *plan, size_t n,
                 bench_sgemm_result *out) {
  memset(out, 0, sizeof *out);
  out->n = n;
#if RETCL_BENCH_HAVE_CLBLAST
  char err[512] = "";
  sgemm_job job = {retcl_context_queue(ctx), NULL, NULL, NULL, n};
  job.a = bench_random_buffer(ctx, n * n, -1, 1, 11, err, sizeof err);
  if (job.a)
    job.b = bench_random_buffer(ctx, n * n, -1, 1, 12, err, sizeof err);
  if (job.b) job.c = bench_buffer(ctx, n * n, err, sizeof err);
  if (job.c) {
    /* At least one warm-up: CLBlast compiles its kernels on the first call. */
    bench_plan p = *plan;
    if (p.warmup < 1) p.warmup = 1;
    if (bench_time(ctx, &p, sgemm_enqueue, &job, &out->stats, err,
                   sizeof err) == 0) {
      out->ok = 1;
      out->gflops = 2.0 * (double)n * (double)n * (double)n /
                    (out->stats.median_ms * 1e6);
    }
  }
  if (!out->ok) snprintf(out->error, sizeof out->error, "%s", err);
  if (job.a) clReleaseMemObject(job.a);
  if (job.b) clReleaseMemObject(job.b);
  if (job.c) clReleaseMemObject(job.c);
#else
  (void)ctx;
  (void)plan;
  snprintf(out->error, sizeof out->error, "built without CLBlast");
#endif
}

/* ---- copy bandwidth ----------------------------------------------------- */

typedef struct copy_job {
  cl_command_queue queue;
  cl_mem src, dst;
  size_t bytes;
} copy_job;

static int copy_enqueue(void *arg, cl_event *ev, char *err, size_t errlen) {
  copy_job *j = arg;
  cl_int e = clEnqueueCopyBuffer(j->queue, j->src, j->dst, 0, 0, j->bytes, 0,
                                 NULL, ev);
  if (e != CL_SUCCESS) {
    snprintf(err, errlen, "clEnqueueCopyBuffer: %s", retcl_cl_error_name(e));
    return 1;
  }
  return 0;
}

void bench_copy(retcl_context *ctx, const bench_plan *plan, size_t bytes,
                bench_copy_result *out) {
  memset(out, 0, sizeof *out);
  out->bytes = bytes;
  char err[512] = "";
  copy_job job = {retcl_context_queue(ctx), NULL, NULL, bytes};
  const size_t n = bytes / sizeof(float);
  job.src = bench_buffer(ctx, n, err, sizeof err);
  if (job.src) job.dst = bench_buffer(ctx, n, err, sizeof err);
  if (job.dst) {
    /* Touch both buffers first so that page faults or lazy allocation are
     * not what gets measured. */
    const float zero = 0, one = 1;
    cl_int e = clEnqueueFillBuffer(job.queue, job.src, &one, sizeof one, 0,
                                   bytes, 0, NULL, NULL);
    if (e == CL_SUCCESS)
      e = clEnqueueFillBuffer(job.queue, job.dst, &zero, sizeof zero, 0, bytes,
                              0, NULL, NULL);
    if (e == CL_SUCCESS) e = clFinish(job.queue);
    if (e != CL_SUCCESS) {
      snprintf(err, sizeof err, "clEnqueueFillBuffer: %s", retcl_cl_error_name(e));
    } else if (bench_time(ctx, plan, copy_enqueue, &job, &out->stats, err,
                          sizeof err) == 0) {
      out->ok = 1;
      out->gbs = 2.0 * (double)bytes / (out->stats.median_ms * 1e6);
    }
  }
  if (!out->ok) snprintf(out->error, sizeof out->error, "%s", err);
  if (job.src) clReleaseMemObject(job.src);
  if (job.dst) clReleaseMemObject(job.dst);
}
