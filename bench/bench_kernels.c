/* bench_kernels.c - retcl-bench-kernels: times every RetCL op and reads each
 * time against yardsticks measured in the same run on the same device.
 *
 *   compute-bound (retention):  GFLOP/s, % of the FMA peak, x CLBlast SGEMM
 *   memory-bound (rotation, group norm + gate): GB/s, x device copy
 *
 * Every rate is computed from the median time, except the FMA peak, which
 * is a ceiling and so uses its fastest sample.
 *
 * FLOP counts (per call, fp32 multiply and add counted as 2):
 *   chunkwise  B*H*T*(2C(Dk+Dv) + 4*Dk*Dv)
 *   parallel   B*H*(T(T+1)/2)*2*(Dk+Dv)   (causal half of QK^T and of .V)
 *              + B*H*2*T*Dk*Dv for an initial state (xi * (Q S0))
 *              + B*H*2*T*Dk*Dv for a final state (decayed K^T V)
 *   recurrent  B*H*T*4*Dk*Dv              (state update + q_t S_t)
 * Bytes: rotation reads and writes B*T*H*D floats; group norm + gate reads
 * x and the gate and writes out (3 * B*T*H*Dv floats).
 *
 * Run with --help for the options. An op that fails prints its status and
 * message and the run goes on with the next configuration. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "yardsticks.h"

/* ---- options ------------------------------------------------------------ */

typedef struct options {
  int repeats, warmup, quick, no_sgemm;
  size_t chunk, sgemm_n, copy_mib;
  double max_seconds;
  bench_timer timer;
  const char *json;
  const char *ops; /* comma list of op names to run; NULL = all */
} options;

static void usage(FILE *f) {
  fprintf(f,
    "usage: retcl-bench-kernels [options]\n"
    "  --repeats N      timed runs per configuration (default 5)\n"
    "  --warmup N       untimed runs first (default 2; the first builds\n"
    "                   kernels)\n"
    "  --quick          small shapes only; runs in seconds\n"
    "  --chunk C        chunkwise retention chunk size (default 64)\n"
    "  --max-seconds S  time budget per configuration: fewer repeats when one\n"
    "                   run is slow, and series whose next size would take\n"
    "                   more than 4*S per run are skipped (default 5;\n"
    "                   --quick: 1)\n"
    "  --timer events|host  profiling events (default) or host clock\n"
    "  --ops LIST       comma list of rotate,group_norm,retention\n"
    "                   (default all)\n"
    "  --no-sgemm       skip the CLBlast SGEMM yardstick\n"
    "  --sgemm-n N      SGEMM yardstick size (default 1024)\n"
    "  --copy-mib M     copy yardstick buffer size in MiB (default 64)\n"
    "  --json FILE      also write every result as JSON to FILE\n"
    "Device: RETCL_DEVICE / RETCL_PLATFORM (index or name substring).\n");
}

static int parse_size(const char *s, size_t *out) {
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if (!s[0] || *end || s[0] == '-') return 1;
  *out = (size_t)v;
  return 0;
}

static int takes_value(const char *a) {
  static const char *const names[] = {
      "--repeats", "--warmup", "--chunk", "--sgemm-n", "--copy-mib",
      "--max-seconds", "--timer", "--json", "--ops"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
    if (!strcmp(a, names[i])) return 1;
  return 0;
}

static int parse_args(int argc, char **argv, options *o) {
  memset(o, 0, sizeof *o);
  o->repeats = 5;
  o->warmup = 2;
  o->chunk = 64;
  o->sgemm_n = 1024;
  o->copy_mib = 64;
  o->max_seconds = -1; /* set from --quick below unless given */
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    size_t n = 0;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      exit(0);
    } else if (!strcmp(a, "--quick")) {
      o->quick = 1;
    } else if (!strcmp(a, "--no-sgemm")) {
      o->no_sgemm = 1;
    } else if (!takes_value(a)) {
      fprintf(stderr, "retcl-bench-kernels: unknown option '%s'\n", a);
      usage(stderr);
      return 1;
    } else if (!v) {
      fprintf(stderr, "retcl-bench-kernels: %s needs a value\n", a);
      return 1;
    } else if (!strcmp(a, "--repeats") || !strcmp(a, "--warmup")) {
      if (parse_size(v, &n) || n > 100000 ||
          (!strcmp(a, "--repeats") && n == 0)) {
        fprintf(stderr, "retcl-bench-kernels: bad %s '%s'\n", a, v);
        return 1;
      }
      *(a[2] == 'r' ? &o->repeats : &o->warmup) = (int)n;
      ++i;
    } else if (!strcmp(a, "--chunk") || !strcmp(a, "--sgemm-n") ||
               !strcmp(a, "--copy-mib")) {
      if (parse_size(v, &n) || n == 0) {
        fprintf(stderr, "retcl-bench-kernels: bad %s '%s'\n", a, v);
        return 1;
      }
      *(a[2] == 'c' && a[3] == 'h' ? &o->chunk
        : a[2] == 's'              ? &o->sgemm_n
                                   : &o->copy_mib) = n;
      ++i;
    } else if (!strcmp(a, "--max-seconds")) {
      char *end = NULL;
      o->max_seconds = strtod(v, &end);
      if (*end || !(o->max_seconds > 0)) {
        fprintf(stderr, "retcl-bench-kernels: bad --max-seconds '%s'\n", v);
        return 1;
      }
      ++i;
    } else if (!strcmp(a, "--timer")) {
      if (!strcmp(v, "events")) o->timer = BENCH_TIMER_EVENTS;
      else if (!strcmp(v, "host")) o->timer = BENCH_TIMER_HOST;
      else {
        fprintf(stderr, "retcl-bench-kernels: --timer events|host\n");
        return 1;
      }
      ++i;
    } else if (!strcmp(a, "--json")) {
      o->json = v;
      ++i;
    } else if (!strcmp(a, "--ops")) {
      o->ops = v;
      ++i;
    }
  }
  if (o->max_seconds < 0) o->max_seconds = o->quick ? 1.0 : 5.0;
  return 0;
}

/* Whether --ops selects op `name` (exact item of the comma list). */
static int op_selected(const options *o, const char *name) {
  if (!o->ops) return 1;
  const size_t len = strlen(name);
  for (const char *p = o->ops; *p;) {
    const char *comma = strchr(p, ',');
    const size_t n = comma ? (size_t)(comma - p) : strlen(p);
    if (n == len && !strncmp(p, name, n)) return 1;
    p += n + (comma ? 1 : 0);
  }
  return 0;
}

/* ---- results ------------------------------------------------------------ */

typedef struct result {
  const char *op;        /* "rotate", "group_norm_gate", "retention" */
  const char *algorithm; /* retention only, else NULL */
  char config[96];
  size_t B, T, H, Dk, Dv, chunk;
  int state;             /* retention: initial and final state given */
  int ok, skipped;
  char error[1024];
  bench_stats st;
  double flops;          /* compute-bound ops, else 0 */
  double bytes;          /* memory-bound ops, else 0 */
} result;

#define MAX_RESULTS 128
static result g_results[MAX_RESULTS];
static int g_nresults;

typedef struct yardsticks {
  bench_fma_result fma;
  bench_sgemm_result sgemm;
  bench_copy_result copy;
} yardsticks;

static double gflops_of(const result *r) {
  return r->ok && r->flops > 0 ? r->flops / (r->st.median_ms * 1e6) : 0;
}
static double gbs_of(const result *r) {
  return r->ok && r->bytes > 0 ? r->bytes / (r->st.median_ms * 1e6) : 0;
}

static void print_table_header(const char *title, int compute) {
  printf("\n== %s ==\n", title);
  printf("%-44s %3s %10s %10s %10s %7s %10s %7s %7s\n", "config", "n",
         "median ms", "min ms", "max ms", "spread",
         compute ? "GFLOP/s" : "GB/s", compute ? "%FMA" : "xcopy",
         compute ? "xSGEMM" : "");
}

static void print_row(const result *r, const yardsticks *y) {
  printf("%-44s ", r->config);
  if (r->skipped) {
    printf("skipped: %s\n", r->error);
    return;
  }
  if (!r->ok) {
    printf("ERROR: %s\n", r->error);
    return;
  }
  printf("%3d %10.3f %10.3f %10.3f %6.1f%%", r->st.n, r->st.median_ms,
         r->st.min_ms, r->st.max_ms, 100.0 * r->st.spread);
  if (r->flops > 0) {
    const double g = gflops_of(r);
    printf(" %10.2f", g);
    if (y->fma.ok) printf(" %6.1f%%", 100.0 * g / y->fma.gflops);
    else printf(" %7s", "n/a");
    if (y->sgemm.ok) printf(" %7.3f", g / y->sgemm.gflops);
    else printf(" %7s", "n/a");
  } else {
    const double g = gbs_of(r);
    printf(" %10.2f", g);
    if (y->copy.ok) printf(" %7.3f", g / y->copy.gbs);
    else printf(" %7s", "n/a");
  }
  if (r->st.host_fallbacks)
    printf("  (%d sample(s) host-timed)", r->st.host_fallbacks);
  printf("\n");
  fflush(stdout);
}

static result *new_result(const char *op) {
  if (g_nresults == MAX_RESULTS) return NULL;
  result *r = &g_results[g_nresults++];
  memset(r, 0, sizeof *r);
  r->op = op;
  return r;
}

/* ---- ops ---------------------------------------------------------------- */

typedef struct shape {
  size_t B, T, H, Dk, Dv;
} shape;

/* Time one op (bench_op_job, shared with retcl-bench) into r. */
static void time_op(retcl_context *ctx, const bench_plan *plan, result *r,
                    bench_op op, const shape *s, retcl_algorithm a, size_t C,
                    int state) {
  bench_op_job j;
  if (bench_op_job_init(&j, ctx, op, s->B, s->T, s->H, s->Dk, s->Dv, a, C,
                        state, r->error, sizeof r->error))
    return;
  if (op != BENCH_OP_RETENTION) r->bytes = bench_op_bytes(&j);
  r->ok = !bench_time(ctx, plan, bench_op_enqueue, &j, &r->st, r->error,
                      sizeof r->error);
  bench_op_job_release(&j);
}

static void bench_rotate(retcl_context *ctx, const bench_plan *plan,
                         const shape *s, const yardsticks *y) {
  result *r = new_result("rotate");
  if (!r) return;
  r->B = s->B, r->T = s->T, r->H = s->H, r->Dk = r->Dv = s->Dk;
  snprintf(r->config, sizeof r->config, "rotate B%zu H%zu D%zu T%zu", s->B,
           s->H, s->Dk, s->T);
  time_op(ctx, plan, r, BENCH_OP_ROTATE, s, RETCL_ALGO_CHUNKWISE, 0, 0);
  print_row(r, y);
}

static void bench_group_norm(retcl_context *ctx, const bench_plan *plan,
                             const shape *s, const yardsticks *y) {
  result *r = new_result("group_norm_gate");
  if (!r) return;
  r->B = s->B, r->T = s->T, r->H = s->H, r->Dv = s->Dv;
  snprintf(r->config, sizeof r->config, "rms+swish B%zu H%zu Dv%zu T%zu", s->B,
           s->H, s->Dv, s->T);
  time_op(ctx, plan, r, BENCH_OP_GROUP_NORM, s, RETCL_ALGO_CHUNKWISE, 0, 0);
  print_row(r, y);
}

/* Name, shape and FLOP count of a retention result. */
static void retention_config(result *r, const shape *s, retcl_algorithm a,
                             size_t C, int state) {
  r->algorithm = bench_algorithm_name(a);
  r->B = s->B, r->T = s->T, r->H = s->H, r->Dk = s->Dk, r->Dv = s->Dv;
  r->chunk = a == RETCL_ALGO_CHUNKWISE ? C : 0;
  char cbuf[32] = "";
  if (a == RETCL_ALGO_CHUNKWISE) snprintf(cbuf, sizeof cbuf, " C%zu", C);
  snprintf(r->config, sizeof r->config, "%-9s B%zu H%zu Dk%zu Dv%zu T%zu%s%s",
           r->algorithm, s->B, s->H, s->Dk, s->Dv, s->T, cbuf,
           state ? " +state" : "");
  r->flops = bench_retention_flops(s->B, s->T, s->H, s->Dk, s->Dv, a, C, state);
}

/* Time one retention configuration; returns its result (or NULL when the
 * results table is full). */
static result *bench_retention(retcl_context *ctx, const bench_plan *plan,
                               const shape *s, retcl_algorithm a, size_t C,
                               int state, const yardsticks *y) {
  result *r = new_result("retention");
  if (!r) return NULL;
  r->state = state;
  retention_config(r, s, a, C, state);
  time_op(ctx, plan, r, BENCH_OP_RETENTION, s, a, C, state);
  print_row(r, y);
  return r;
}

/* Record a configuration skipped because its predicted time is too long. */
static void skip_retention(const shape *s, retcl_algorithm a, size_t C,
                           double predicted_s, const yardsticks *y) {
  result *r = new_result("retention");
  if (!r) return;
  r->skipped = 1;
  retention_config(r, s, a, C, 0);
  snprintf(r->error, sizeof r->error,
           "predicted %.3g s per run (raise --max-seconds to run it)",
           predicted_s);
  print_row(r, y);
}

/* ---- JSON --------------------------------------------------------------- */

static void json_num(FILE *f, const char *key, double v, int ok) {
  fprintf(f, "\"%s\": ", key);
  if (ok && isfinite(v)) fprintf(f, "%.6g", v);
  else fputs("null", f);
}

static void json_stats(FILE *f, const bench_stats *s) {
  fprintf(f, "\"n\": %d, ", s->n);
  json_num(f, "median_ms", s->median_ms, 1);
  fputs(", ", f);
  json_num(f, "min_ms", s->min_ms, 1);
  fputs(", ", f);
  json_num(f, "max_ms", s->max_ms, 1);
  fputs(", ", f);
  json_num(f, "spread", s->spread, 1);
  fprintf(f, ", \"host_timed_samples\": %d", s->host_fallbacks);
}

static int write_json(const char *path, const options *o,
                      const bench_device_info *dev, const yardsticks *y) {
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    return 1;
  }
  fputs("{\n  \"program\": \"retcl-bench-kernels\",\n  \"retcl_version\": ", f);
  bench_json_string(f, retcl_version_string());
  fputs(",\n  \"device\": {\"platform\": ", f);
  bench_json_string(f, dev->platform);
  fputs(", \"name\": ", f);
  bench_json_string(f, dev->name);
  fputs(", \"vendor\": ", f);
  bench_json_string(f, dev->vendor);
  fputs(", \"driver\": ", f);
  bench_json_string(f, dev->driver);
  fputs(", \"opencl_version\": ", f);
  bench_json_string(f, dev->version);
  fprintf(f,
          ", \"compute_units\": %u, \"clock_mhz\": %u, \"global_mem_bytes\": "
          "%llu},\n",
          dev->compute_units, dev->clock_mhz,
          (unsigned long long)dev->global_mem);
  fprintf(f,
          "  \"options\": {\"repeats\": %d, \"warmup\": %d, \"quick\": %s, "
          "\"chunk\": %zu, \"max_seconds\": %g, \"timer\": \"%s\"},\n",
          o->repeats, o->warmup, o->quick ? "true" : "false", o->chunk,
          o->max_seconds, o->timer == BENCH_TIMER_HOST ? "host" : "events");

  fputs("  \"yardsticks\": {\n    \"fma_peak\": {", f);
  json_num(f, "gflops", y->fma.gflops, y->fma.ok);
  fprintf(f,
          ", \"statistic\": \"fastest sample\", \"best_width\": %d, "
          "\"work_items\": %zu, \"gflops_by_width\": {",
          y->fma.width, y->fma.work_items);
  for (int i = 0; i < BENCH_FMA_WIDTHS; ++i) {
    char key[8];
    snprintf(key, sizeof key, "%d", y->fma.widths[i]);
    if (i) fputs(", ", f);
    json_num(f, key, y->fma.gflops_by_width[i], y->fma.gflops_by_width[i] > 0);
  }
  fputs("}, ", f);
  json_stats(f, &y->fma.stats);
  fputs(", \"error\": ", f);
  bench_json_string(f, y->fma.error);
  fputs("},\n    \"sgemm\": {", f);
  json_num(f, "gflops", y->sgemm.gflops, y->sgemm.ok);
  fprintf(f, ", \"n\": %zu, ", y->sgemm.n);
  json_stats(f, &y->sgemm.stats);
  fputs(", \"error\": ", f);
  bench_json_string(f, y->sgemm.error);
  fputs("},\n    \"copy\": {", f);
  json_num(f, "gbs", y->copy.gbs, y->copy.ok);
  fprintf(f, ", \"bytes\": %zu, ", y->copy.bytes);
  json_stats(f, &y->copy.stats);
  fputs(", \"error\": ", f);
  bench_json_string(f, y->copy.error);
  fputs("}\n  },\n  \"results\": [", f);

  for (int i = 0; i < g_nresults; ++i) {
    const result *r = &g_results[i];
    fprintf(f, "%s\n    {\"op\": \"%s\", ", i ? "," : "", r->op);
    if (r->algorithm)
      fprintf(f, "\"algorithm\": \"%s\", \"form\": \"raw\", ", r->algorithm);
    fputs("\"config\": ", f);
    bench_json_string(f, r->config);
    fprintf(f,
            ", \"B\": %zu, \"T\": %zu, \"H\": %zu, \"Dk\": %zu, \"Dv\": %zu, "
            "\"chunk\": %zu, \"state\": %s, \"layout\": \"token_major\", "
            "\"ok\": %s, \"skipped\": %s, ",
            r->B, r->T, r->H, r->Dk, r->Dv, r->chunk,
            r->state ? "true" : "false", r->ok ? "true" : "false",
            r->skipped ? "true" : "false");
    if (r->ok) {
      json_stats(f, &r->st);
      fputs(", ", f);
    } else {
      fputs("\"error\": ", f);
      bench_json_string(f, r->error);
      fputs(", ", f);
    }
    if (r->flops > 0) {
      const double g = gflops_of(r);
      json_num(f, "gflop", r->flops * 1e-9, 1);
      fputs(", ", f);
      json_num(f, "gflops", g, r->ok);
      fputs(", ", f);
      json_num(f, "fraction_of_fma_peak", g / y->fma.gflops,
               r->ok && y->fma.ok);
      fputs(", ", f);
      json_num(f, "ratio_to_sgemm", g / y->sgemm.gflops, r->ok && y->sgemm.ok);
    } else {
      const double g = gbs_of(r);
      json_num(f, "bytes", r->bytes, 1);
      fputs(", ", f);
      json_num(f, "gbs", g, r->ok);
      fputs(", ", f);
      json_num(f, "ratio_to_copy", g / y->copy.gbs, r->ok && y->copy.ok);
    }
    fputs("}", f);
  }
  fputs("\n  ]\n}\n", f);
  if (fclose(f) != 0) {
    perror(path);
    return 1;
  }
  return 0;
}

/* ---- main --------------------------------------------------------------- */

static void run_yardsticks(retcl_context *ctx, const options *o,
                           const bench_plan *plan, yardsticks *y) {
  printf("\n== Yardsticks ==\n");
  fflush(stdout);
  bench_fma_peak(ctx, plan, o->quick ? 20.0 : 60.0, &y->fma);
  if (y->fma.ok) {
    printf("fp32 FMA peak     %10.2f GFLOP/s  (float%d best; by width:",
           y->fma.gflops, y->fma.width);
    for (int i = 0; i < BENCH_FMA_WIDTHS; ++i)
      printf(" %d:%.1f", y->fma.widths[i], y->fma.gflops_by_width[i]);
    printf("; fastest of %d, spread %.1f%%)\n", y->fma.stats.n,
           100 * y->fma.stats.spread);
  } else {
    printf("fp32 FMA peak     unavailable: %s\n", y->fma.error);
  }
  fflush(stdout);

  if (o->no_sgemm) {
    snprintf(y->sgemm.error, sizeof y->sgemm.error, "skipped (--no-sgemm)");
    printf("CLBlast SGEMM     skipped (--no-sgemm)\n");
  } else {
    bench_sgemm(ctx, plan, o->sgemm_n, &y->sgemm);
    if (y->sgemm.ok)
      printf("CLBlast SGEMM     %10.2f GFLOP/s  (n=%zu, %.3f ms median of %d, "
             "spread %.1f%%)\n",
             y->sgemm.gflops, y->sgemm.n, y->sgemm.stats.median_ms,
             y->sgemm.stats.n, 100 * y->sgemm.stats.spread);
    else
      printf("CLBlast SGEMM     unavailable: %s\n", y->sgemm.error);
  }
  fflush(stdout);

  bench_copy(ctx, plan, o->copy_mib << 20, &y->copy);
  if (y->copy.ok)
    printf("copy bandwidth    %10.2f GB/s     (%zu MiB, read+write, %.3f ms "
           "median of %d, spread %.1f%%)\n",
           y->copy.gbs, o->copy_mib, y->copy.stats.median_ms, y->copy.stats.n,
           100 * y->copy.stats.spread);
  else
    printf("copy bandwidth    unavailable: %s\n", y->copy.error);
  fflush(stdout);
}

int main(int argc, char **argv) {
  options o;
  if (parse_args(argc, argv, &o)) return 2;
  retcl_context *ctx = bench_context_create();
  if (!ctx) return 1;
  bench_device_info dev;
  bench_device_info_query(ctx, &dev);
  printf("retcl-bench-kernels, RetCL %s\n", retcl_version_string());
  bench_device_info_print(&dev);
  printf("timing   : %s, %d warm-up + up to %d timed runs (budget %.1f s per "
         "config), median reported\n",
         o.timer == BENCH_TIMER_HOST
             ? "host clock around clFinish"
             : "profiling events, marker START to op END",
         o.warmup, o.repeats, o.max_seconds);

  const bench_plan plan = {o.warmup, o.repeats, o.max_seconds, o.timer};
  yardsticks y;
  memset(&y, 0, sizeof y);
  run_yardsticks(ctx, &o, &plan, &y);

  /* Headline: one RetNet layer's worth of heads (H=8, Dk=Dv=128). */
  static const size_t full_T[] = {512, 1024, 2048, 4096};
  static const size_t quick_T[] = {256};
  const size_t *Ts = o.quick ? quick_T : full_T;
  const size_t nT = o.quick ? 1 : sizeof full_T / sizeof full_T[0];
  /* Extra shapes: batch > 1 with small heads; Dv = 2 Dk as in RetNet's
   * value projection; in quick mode an odd one (T not a multiple of C). */
  static const shape full_extra[] = {{4, 1024, 8, 64, 64},
                                     {1, 1024, 8, 128, 256}};
  static const shape quick_extra[] = {{2, 100, 4, 64, 32}};
  const shape *extra = o.quick ? quick_extra : full_extra;
  const size_t nextra = o.quick ? 1 : 2;
  /* Memory-bound ops: the headline shapes plus one as large as the copy
   * yardstick's buffer (B=8, T=2048: 64 MiB per tensor). */
  static const shape mem_large = {8, 2048, 8, 128, 128};

  if (op_selected(&o, "rotate")) {
    print_table_header("Rotation (token-major; bytes = read + write)", 0);
    for (size_t i = 0; i < nT; ++i) {
      shape s = {1, Ts[i], 8, 128, 128};
      bench_rotate(ctx, &plan, &s, &y);
    }
    /* Rotation sees only Dk: an extra shape that differs from the headline
     * in Dv alone would repeat a headline row. */
    for (size_t i = 0; i < nextra; ++i)
      if (extra[i].B != 1 || extra[i].H != 8 || extra[i].Dk != 128)
        bench_rotate(ctx, &plan, &extra[i], &y);
    if (!o.quick) bench_rotate(ctx, &plan, &mem_large, &y);
  }

  if (op_selected(&o, "group_norm")) {
    print_table_header(
        "Group norm + gate (RMS, swish; bytes = x + gate + out)", 0);
    for (size_t i = 0; i < nT; ++i) {
      shape s = {1, Ts[i], 8, 128, 128};
      bench_group_norm(ctx, &plan, &s, &y);
    }
    for (size_t i = 0; i < nextra; ++i)
      bench_group_norm(ctx, &plan, &extra[i], &y);
    if (!o.quick) bench_group_norm(ctx, &plan, &mem_large, &y);
  }

  if (op_selected(&o, "retention")) {
    char title[96];
    snprintf(title, sizeof title,
             "Retention (raw form, token-major, chunk %zu)", o.chunk);
    print_table_header(title, 1);
    static const retcl_algorithm algos[] = {
        RETCL_ALGO_PARALLEL, RETCL_ALGO_RECURRENT, RETCL_ALGO_CHUNKWISE};
    /* Headline series, growing T. A run predicted (from the previous T:
     * parallel scales as T^2, the others as T) to take more than 4x the
     * per-config budget is skipped, so a slow form on a small device (the
     * recurrent one on a 2-core CPU) cannot stretch the run to many
     * minutes. */
    double last_ms[3] = {0, 0, 0};
    size_t last_T[3] = {0, 0, 0};
    for (size_t i = 0; i < nT; ++i) {
      shape s = {1, Ts[i], 8, 128, 128};
      for (int a = 0; a < 3; ++a) {
        if (last_ms[a] > 0) {
          const double ratio = (double)s.T / (double)last_T[a];
          const double pred_s = last_ms[a] * 1e-3 *
                                (algos[a] == RETCL_ALGO_PARALLEL ? ratio * ratio
                                                                 : ratio);
          if (pred_s > 4 * o.max_seconds) {
            skip_retention(&s, algos[a], o.chunk, pred_s, &y);
            continue;
          }
        }
        result *r = bench_retention(ctx, &plan, &s, algos[a], o.chunk, 0, &y);
        if (r && r->ok) last_ms[a] = r->st.median_ms, last_T[a] = s.T;
      }
    }
    for (size_t i = 0; i < nextra; ++i)
      for (int a = 0; a < 3; ++a)
        bench_retention(ctx, &plan, &extra[i], algos[a], o.chunk, 0, &y);
    /* With an initial and a final state: prefill handing over to decode. */
    const shape st = o.quick ? quick_extra[0] : (shape){1, 1024, 8, 128, 128};
    for (int a = 0; a < 3; ++a)
      bench_retention(ctx, &plan, &st, algos[a], o.chunk, 1, &y);
  }

  int rc = 0;
  if (o.json) {
    rc = write_json(o.json, &o, &dev, &y);
    if (!rc) printf("\nresults written to %s\n", o.json);
  }
  retcl_context_destroy(ctx);
  return rc;
}
