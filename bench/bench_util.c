/* bench_util.c - context, device strings and op timing for the benchmarks.
 * See bench_util.h for the timing method. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include "bench_util.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *bench_cl_error(cl_int err) {
  switch (err) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_BUILD_PROGRAM_FAILURE)
    E(CL_INVALID_VALUE) E(CL_INVALID_CONTEXT) E(CL_INVALID_COMMAND_QUEUE)
    E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_BUILD_OPTIONS)
    E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME)
    E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_WORK_GROUP_SIZE)
    E(CL_INVALID_EVENT) E(CL_INVALID_BUFFER_SIZE)
    E(CL_INVALID_GLOBAL_WORK_SIZE)
#undef E
    default: return "CL_error";
  }
}

retcl_context *bench_context_create(void) {
  retcl_context *ctx = NULL;
  /* NULL, NULL: the library reads RETCL_PLATFORM / RETCL_DEVICE itself. */
  retcl_status st = retcl_context_create(NULL, NULL, &ctx);
  if (st != RETCL_SUCCESS) {
    fprintf(stderr, "retcl_context_create: %s: %s\n", retcl_status_string(st),
            retcl_last_error(NULL));
    return NULL;
  }
  return ctx;
}

static void query_string(cl_device_id dev, cl_device_info what, char *out,
                         size_t len) {
  out[0] = '\0';
  if (clGetDeviceInfo(dev, what, len, out, NULL) != CL_SUCCESS)
    snprintf(out, len, "?");
  out[len - 1] = '\0';
}

void bench_device_info_query(retcl_context *ctx, bench_device_info *info) {
  memset(info, 0, sizeof *info);
  cl_device_id dev = retcl_context_device(ctx);
  query_string(dev, CL_DEVICE_NAME, info->name, sizeof info->name);
  query_string(dev, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
  query_string(dev, CL_DRIVER_VERSION, info->driver, sizeof info->driver);
  query_string(dev, CL_DEVICE_VERSION, info->version, sizeof info->version);
  cl_platform_id plat = NULL;
  snprintf(info->platform, sizeof info->platform, "?");
  if (clGetDeviceInfo(dev, CL_DEVICE_PLATFORM, sizeof plat, &plat, NULL) ==
      CL_SUCCESS)
    clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof info->platform,
                      info->platform, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof info->type, &info->type, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof info->compute_units,
                  &info->compute_units, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof info->clock_mhz,
                  &info->clock_mhz, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof info->global_mem,
                  &info->global_mem, NULL);
  cl_device_fp_config fp = 0;
  clGetDeviceInfo(dev, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
  info->has_fma = (fp & CL_FP_FMA) != 0;
}

void bench_device_info_print(const bench_device_info *info) {
  const char *type = (info->type & CL_DEVICE_TYPE_GPU)   ? "GPU"
                     : (info->type & CL_DEVICE_TYPE_CPU) ? "CPU"
                                                         : "other";
  printf("platform : %s\n", info->platform);
  printf("device   : %s (%s)\n", info->name, type);
  printf("vendor   : %s\n", info->vendor);
  printf("driver   : %s\n", info->driver);
  printf("version  : %s\n", info->version);
  printf("units    : %u compute units, %u MHz, %.1f GiB, fp32 fma %s\n",
         info->compute_units, info->clock_mhz,
         (double)info->global_mem / (1024.0 * 1024.0 * 1024.0),
         info->has_fma ? "yes" : "no");
}

/* One run: returns 0 and the time in *ms, or non-zero with err filled. */
static int run_once(retcl_context *ctx, bench_timer timer, bench_enqueue_fn fn,
                    void *arg, double *ms, int *fell_back, char *err,
                    size_t errlen) {
  cl_command_queue q = retcl_context_queue(ctx);
  cl_int e = clFinish(q); /* nothing of earlier runs may overlap this one */
  if (e != CL_SUCCESS) {
    set_err(err, errlen, "clFinish: %s", bench_cl_error(e));
    return 1;
  }
  cl_event mark = NULL, ev = NULL;
  const double t0 = bench_now();
  if (timer == BENCH_TIMER_EVENTS &&
      clEnqueueMarkerWithWaitList(q, 0, NULL, &mark) != CL_SUCCESS)
    mark = NULL; /* fall back to the host clock below */
  int rc = fn(arg, &ev, err, errlen);
  e = clFinish(q);
  const double t1 = bench_now();
  if (rc == 0 && e != CL_SUCCESS) {
    set_err(err, errlen, "clFinish after the op: %s", bench_cl_error(e));
    rc = 1;
  }
  *ms = (t1 - t0) * 1e3;
  *fell_back = timer == BENCH_TIMER_EVENTS;
  if (rc == 0 && mark && ev) {
    cl_ulong start = 0, end = 0;
    if (clGetEventProfilingInfo(mark, CL_PROFILING_COMMAND_START, sizeof start,
                                &start, NULL) == CL_SUCCESS &&
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof end, &end,
                                NULL) == CL_SUCCESS &&
        end > start) {
      *ms = (double)(end - start) * 1e-6;
      *fell_back = 0;
    }
  }
  if (mark) clReleaseEvent(mark);
  if (ev) clReleaseEvent(ev);
  return rc;
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int bench_time(retcl_context *ctx, const bench_plan *plan, bench_enqueue_fn fn,
               void *arg, bench_stats *stats, char *err, size_t errlen) {
  memset(stats, 0, sizeof *stats);
  const int repeats = plan->repeats > 0 ? plan->repeats : 1;
  double ms = 0;
  int fb = 0;
  for (int i = 0; i < plan->warmup; ++i) {
    const double t0 = bench_now();
    if (run_once(ctx, plan->timer, fn, arg, &ms, &fb, err, errlen)) return 1;
    /* A slow op: the first call (kernel build included) already warmed it,
     * and more warm-ups would blow the time budget. */
    if (i == 0 && plan->max_seconds > 0 &&
        (bench_now() - t0) * (plan->warmup - 1 + repeats) > plan->max_seconds)
      break;
  }
  double *samples = malloc(sizeof(double) * (size_t)repeats);
  if (!samples) {
    set_err(err, errlen, "out of host memory");
    return 1;
  }
  const double start = bench_now();
  int n = 0;
  while (n < repeats) {
    if (run_once(ctx, plan->timer, fn, arg, &samples[n], &fb, err, errlen)) {
      free(samples);
      return 1;
    }
    stats->host_fallbacks += fb;
    ++n;
    if (plan->max_seconds > 0 && bench_now() - start > plan->max_seconds)
      break;
  }
  qsort(samples, (size_t)n, sizeof(double), cmp_double);
  stats->n = n;
  stats->min_ms = samples[0];
  stats->max_ms = samples[n - 1];
  stats->median_ms = (n % 2) ? samples[n / 2]
                             : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  stats->spread = stats->median_ms > 0
                      ? (stats->max_ms - stats->min_ms) / stats->median_ms
                      : 0;
  free(samples);
  return 0;
}

cl_mem bench_buffer(retcl_context *ctx, size_t n, char *err, size_t errlen) {
  cl_int e = CL_SUCCESS;
  cl_mem m = clCreateBuffer(retcl_context_cl_context(ctx), CL_MEM_READ_WRITE,
                            n * sizeof(float), NULL, &e);
  if (!m || e != CL_SUCCESS) {
    set_err(err, errlen, "clCreateBuffer(%zu floats): %s", n,
            bench_cl_error(e));
    return NULL;
  }
  return m;
}

cl_mem bench_random_buffer(retcl_context *ctx, size_t n, float lo, float hi,
                           unsigned seed, char *err, size_t errlen) {
  float *host = malloc(n * sizeof(float));
  if (!host) {
    set_err(err, errlen, "out of host memory (%zu floats)", n);
    return NULL;
  }
  /* xorshift32: fast, deterministic, good enough for benchmark inputs. */
  uint32_t s = seed ? seed : 0x9e3779b9u;
  for (size_t i = 0; i < n; ++i) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    host[i] = lo + (hi - lo) * (float)(s >> 8) * (1.0f / 16777216.0f);
  }
  cl_mem m = bench_buffer(ctx, n, err, errlen);
  if (m) {
    cl_int e = clEnqueueWriteBuffer(retcl_context_queue(ctx), m, CL_TRUE, 0,
                                    n * sizeof(float), host, 0, NULL, NULL);
    if (e != CL_SUCCESS) {
      set_err(err, errlen, "clEnqueueWriteBuffer: %s", bench_cl_error(e));
      clReleaseMemObject(m);
      m = NULL;
    }
  }
  free(host);
  return m;
}

void bench_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; ++p) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p == '\n')
      fputs("\\n", f);
    else if (*p == '\t')
      fputs("\\t", f);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}
