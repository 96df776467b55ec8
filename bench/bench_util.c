/* bench_util.c - context, device strings and op timing for the benchmarks.
 * See bench_util.h for the timing method. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include "bench_util.h"

#include <math.h>
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
    set_err(err, errlen, "clFinish: %s", retcl_cl_error_name(e));
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
    set_err(err, errlen, "clFinish after the op: %s", retcl_cl_error_name(e));
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

void bench_stats_from(double *ms, int n, bench_stats *stats) {
  memset(stats, 0, sizeof *stats);
  if (n <= 0) return;
  qsort(ms, (size_t)n, sizeof(double), cmp_double);
  stats->n = n;
  stats->min_ms = ms[0];
  stats->max_ms = ms[n - 1];
  stats->median_ms = (n % 2) ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  stats->spread = stats->median_ms > 0
                      ? (stats->max_ms - stats->min_ms) / stats->median_ms
                      : 0;
}

double bench_median(const double *x, int n) {
  double *c = malloc((size_t)n * sizeof *c);
  if (!c) return NAN;
  memcpy(c, x, (size_t)n * sizeof *c);
  bench_stats st;
  bench_stats_from(c, n, &st);
  free(c);
  return st.median_ms;
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
  const int fallbacks = stats->host_fallbacks;
  bench_stats_from(samples, n, stats);
  stats->host_fallbacks = fallbacks;
  free(samples);
  return 0;
}

cl_mem bench_buffer(retcl_context *ctx, size_t n, char *err, size_t errlen) {
  cl_int e = CL_SUCCESS;
  cl_mem m = clCreateBuffer(retcl_context_cl_context(ctx), CL_MEM_READ_WRITE,
                            n * sizeof(float), NULL, &e);
  if (!m || e != CL_SUCCESS) {
    set_err(err, errlen, "clCreateBuffer(%zu floats): %s", n,
            retcl_cl_error_name(e));
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
  /* The library's generator (splitmix64), seeded: deterministic inputs. */
  uint64_t s = seed;
  for (size_t i = 0; i < n; ++i)
    host[i] = lo + (hi - lo) * (float)retcl_random_uniform(&s);
  cl_mem m = bench_buffer(ctx, n, err, errlen);
  if (m) {
    cl_int e = clEnqueueWriteBuffer(retcl_context_queue(ctx), m, CL_TRUE, 0,
                                    n * sizeof(float), host, 0, NULL, NULL);
    if (e != CL_SUCCESS) {
      set_err(err, errlen, "clEnqueueWriteBuffer: %s", retcl_cl_error_name(e));
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

/* ---- RetCL op jobs ------------------------------------------------------ */

const char *bench_algorithm_name(retcl_algorithm a) {
  return a == RETCL_ALGO_PARALLEL    ? "parallel"
         : a == RETCL_ALGO_RECURRENT ? "recurrent"
                                     : "chunkwise";
}

double bench_retention_flops(size_t B, size_t T_, size_t H, size_t Dk,
                             size_t Dv, retcl_algorithm a, size_t chunk,
                             int state) {
  const double bh = (double)B * (double)H, T = (double)T_;
  const double dk = (double)Dk, dv = (double)Dv;
  switch (a) {
    case RETCL_ALGO_PARALLEL:
      return bh * (T * (T + 1) / 2 * 2 * (dk + dv) +
                   (state ? 2 * 2 * T * dk * dv : 0));
    case RETCL_ALGO_RECURRENT:
      return bh * T * 4 * dk * dv;
    default:
      return bh * T * (2 * (double)chunk * (dk + dv) + 4 * dk * dv);
  }
}

double bench_retention_backward_flops(size_t B, size_t T_, size_t H,
                                      size_t Dk, size_t Dv, retcl_algorithm a,
                                      size_t chunk, int state) {
  const double bh = (double)B * (double)H, T = (double)T_;
  const double dk = (double)Dk, dv = (double)Dv;
  switch (a) {
    case RETCL_ALGO_PARALLEL:
      return bh * (T * (T + 1) / 2 * 2 * (3 * dk + 2 * dv) +
                   (state ? 8 * T * dk * dv : 0));
    case RETCL_ALGO_RECURRENT:
      return bh * T * 10 * dk * dv;
    default:
      return bh * T * (2 * (double)chunk * (3 * dk + 2 * dv) + 10 * dk * dv);
  }
}

double bench_op_bytes(const bench_op_job *j) {
  const double btH = (double)j->B * (double)j->T * (double)j->H;
  const double f = sizeof(float);
  switch (j->op) {
    case BENCH_OP_ROTATE:
      return 2.0 * btH * (double)j->Dk * f;
    case BENCH_OP_GROUP_NORM:
      return 3.0 * btH * (double)j->Dv * f;
    case BENCH_OP_RETENTION_BACKWARD:
      return (btH * (4.0 * (double)j->Dk + 3.0 * (double)j->Dv) +
              (j->state ? 4.0 * (double)j->B * (double)j->H * (double)j->Dk *
                              (double)j->Dv
                        : 0)) *
             f;
    default:
      return (btH * (2.0 * (double)j->Dk + 2.0 * (double)j->Dv) +
              (j->state ? 2.0 * (double)j->B * (double)j->H * (double)j->Dk *
                              (double)j->Dv
                        : 0)) *
             f;
  }
}

/* Upload RetNet's per-head default decays. */
static cl_mem decay_buffer(retcl_context *ctx, size_t H, char *err,
                           size_t errlen) {
  float *lg = malloc(H * sizeof(float));
  if (!lg || retcl_default_log_decay(H, lg) != RETCL_SUCCESS) {
    set_err(err, errlen, "retcl_default_log_decay failed");
    free(lg);
    return NULL;
  }
  cl_mem m = bench_buffer(ctx, H, err, errlen);
  if (m && clEnqueueWriteBuffer(retcl_context_queue(ctx), m, CL_TRUE, 0,
                                H * sizeof(float), lg, 0, NULL,
                                NULL) != CL_SUCCESS) {
    set_err(err, errlen, "uploading log decays failed");
    clReleaseMemObject(m);
    m = NULL;
  }
  free(lg);
  return m;
}

void bench_op_job_release(bench_op_job *j) {
  for (int i = 0; i < 4; ++i)
    if (j->in[i]) clReleaseMemObject(j->in[i]);
  cl_mem rest[] = {j->out,     j->state_in, j->state_out, j->grad[0],
                   j->grad[1], j->grad[2],  j->grad[3],    j->d_state_out,
                   j->d_state_in};
  for (int i = 0; i < 9; ++i)
    if (rest[i]) clReleaseMemObject(rest[i]);
  retcl_rotation_destroy(j->rot);
  memset(j->in, 0, sizeof j->in);
  memset(j->grad, 0, sizeof j->grad);
  j->out = j->state_in = j->state_out = NULL;
  j->d_state_out = j->d_state_in = NULL;
  j->rot = NULL;
}

int bench_op_job_init(bench_op_job *j, retcl_context *ctx, bench_op op,
                      size_t B, size_t T, size_t H, size_t Dk, size_t Dv,
                      retcl_algorithm algorithm, size_t chunk, int state,
                      char *err, size_t errlen) {
  return bench_op_job_init_form(j, ctx, op, B, T, H, Dk, Dv, algorithm, chunk,
                                state, 0, err, errlen);
}

int bench_op_job_init_form(bench_op_job *j, retcl_context *ctx, bench_op op,
                           size_t B, size_t T, size_t H, size_t Dk, size_t Dv,
                           retcl_algorithm algorithm, size_t chunk, int state,
                           int torchscale, char *err, size_t errlen) {
  memset(j, 0, sizeof *j);
  j->ctx = ctx, j->op = op, j->B = B, j->T = T, j->H = H, j->Dk = Dk;
  j->Dv = Dv, j->algorithm = algorithm, j->chunk = chunk, j->state = state;
  j->torchscale = torchscale;
  const size_t nk = B * T * H * Dk, nv = B * T * H * Dv;
  int ok = 1;
  if (op == BENCH_OP_ROTATE) {
    retcl_status st = retcl_rotation_create(ctx, Dk, NULL, 0, &j->rot);
    if (st) {
      set_err(err, errlen, "retcl_rotation_create: %s: %s",
              retcl_status_string(st), retcl_last_error(ctx));
      ok = 0;
    }
    ok = ok && (j->in[0] = bench_random_buffer(ctx, nk, -1, 1, 1, err, errlen)) &&
         (j->out = bench_buffer(ctx, nk, err, errlen));
  } else if (op == BENCH_OP_GROUP_NORM) {
    ok = (j->in[0] = bench_random_buffer(ctx, nv, -1, 1, 2, err, errlen)) &&
         (j->in[1] = bench_random_buffer(ctx, nv, -3, 3, 3, err, errlen)) &&
         (j->out = bench_buffer(ctx, nv, err, errlen));
  } else {
    const size_t ns = B * H * Dk * Dv;
    /* torchscale form: k arrives scaled by Dk^-1/2, as the layer makes it */
    const float ks = torchscale ? (float)(1.0 / sqrt((double)Dk)) : 1.0f;
    ok = (j->in[0] = bench_random_buffer(ctx, nk, -1, 1, 4, err, errlen)) &&
         (j->in[1] = bench_random_buffer(ctx, nk, -ks, ks, 5, err, errlen)) &&
         (j->in[2] = bench_random_buffer(ctx, nv, -1, 1, 6, err, errlen)) &&
         (j->in[3] = decay_buffer(ctx, H, err, errlen)) &&
         (j->out = bench_buffer(ctx, nv, err, errlen));
    if (ok && state)
      ok = (j->state_in = bench_random_buffer(ctx, ns, -1, 1, 7, err, errlen)) &&
           (j->state_out = bench_buffer(ctx, ns, err, errlen));
    if (ok && op == BENCH_OP_RETENTION_BACKWARD)
      ok = (j->grad[0] = bench_random_buffer(ctx, nv, -1, 1, 8, err, errlen)) &&
           (j->grad[1] = bench_buffer(ctx, nk, err, errlen)) &&
           (j->grad[2] = bench_buffer(ctx, nk, err, errlen)) &&
           (j->grad[3] = bench_buffer(ctx, nv, err, errlen));
    if (ok && op == BENCH_OP_RETENTION_BACKWARD && state)
      ok = (j->d_state_out = bench_random_buffer(ctx, ns, -1, 1, 9, err, errlen)) &&
           (j->d_state_in = bench_buffer(ctx, ns, err, errlen));
  }
  if (!ok) bench_op_job_release(j);
  return !ok;
}

int bench_op_enqueue(void *arg, cl_event *ev, char *err, size_t errlen) {
  bench_op_job *j = arg;
  retcl_status st;
  if (j->op == BENCH_OP_ROTATE) {
    retcl_rotation_desc d = {j->B, j->T, j->H, RETCL_LAYOUT_TOKEN_MAJOR, 0, 0,
                             {0, NULL, NULL, NULL}};
    st = retcl_rotate(j->ctx, j->rot, &d, retcl_buf(j->in[0], 0),
                      retcl_buf(j->out, 0), 0, NULL, ev);
  } else if (j->op == BENCH_OP_GROUP_NORM) {
    retcl_group_norm_desc d = {j->B, j->T, j->H, j->Dv,
                               RETCL_LAYOUT_TOKEN_MAJOR, RETCL_NORM_RMS,
                               RETCL_GATE_SWISH, 0};
    st = retcl_group_norm_gate(j->ctx, &d, retcl_buf(j->in[0], 0),
                               retcl_buf(j->in[1], 0), retcl_no_buf(),
                               retcl_no_buf(), retcl_buf(j->out, 0), 0, NULL,
                               ev);
  } else {
    retcl_retention_desc d;
    memset(&d, 0, sizeof d);
    d.batch = j->B, d.tokens = j->T, d.heads = j->H;
    d.key_dim = j->Dk, d.value_dim = j->Dv;
    d.layout = RETCL_LAYOUT_TOKEN_MAJOR;
    d.algorithm = j->algorithm;
    d.form = j->torchscale ? RETCL_FORM_TORCHSCALE : RETCL_FORM_RAW;
    d.chunk_size = j->chunk;
    /* Dk^-1/2 keeps q.k of unit-range inputs O(1), as in a real layer
     * (torchscale form: k carries it already) */
    if (!j->torchscale) d.scale = (float)(1.0 / sqrt((double)j->Dk));
    if (j->op == BENCH_OP_RETENTION_BACKWARD)
      st = retcl_retention_backward(
          j->ctx, &d, retcl_buf(j->in[0], 0), retcl_buf(j->in[1], 0),
          retcl_buf(j->in[2], 0), retcl_buf(j->in[3], 0),
          j->state_in ? retcl_buf(j->state_in, 0) : retcl_no_buf(),
          retcl_buf(j->grad[0], 0),
          j->d_state_out ? retcl_buf(j->d_state_out, 0) : retcl_no_buf(),
          retcl_buf(j->grad[1], 0), retcl_buf(j->grad[2], 0),
          retcl_buf(j->grad[3], 0),
          j->d_state_in ? retcl_buf(j->d_state_in, 0) : retcl_no_buf(), 0,
          NULL, ev);
    else
      st = retcl_retention(
          j->ctx, &d, retcl_buf(j->in[0], 0), retcl_buf(j->in[1], 0),
          retcl_buf(j->in[2], 0), retcl_buf(j->in[3], 0),
          j->state_in ? retcl_buf(j->state_in, 0) : retcl_no_buf(),
          j->state_out ? retcl_buf(j->state_out, 0) : retcl_no_buf(),
          retcl_buf(j->out, 0), 0, NULL, ev);
  }
  if (st != RETCL_SUCCESS) {
    set_err(err, errlen, "%s: %s", retcl_status_string(st),
            retcl_last_error(j->ctx));
    return 1;
  }
  return 0;
}
