/* main.c - retcl-bench: runs the named benchmark suites on the chosen
 * device and writes one JSON file (docs/bench-json.md) plus readable tables
 * on stdout and a progress line on stderr.
 *
 *   retcl-bench --suite kernels|decode|prefill|gemm|train|serve|all
 *               [--json FILE]
 *               [--quick]
 *
 * The yardsticks (fp32 FMA peak, CLBlast SGEMM, copy bandwidth) are
 * measured first, in the same run and on the same device, so every rate
 * can be read as a ratio to them. Exit status: 0 when every configuration
 * ran or was skipped for its time budget, 1 when one failed, 2 for bad
 * options. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"

static void usage(FILE *f) {
  fprintf(f,
    "usage: retcl-bench --suite kernels|decode|prefill|gemm|train|serve|weights|all "
    "[options]\n"
    "  --suite LIST            comma list of kernels, decode, prefill, gemm,\n"
    "                          train, serve (packed prefill and pool decoding\n"
    "                          against rectangular batches), weights (decode\n"
    "                          at batch 1 with f32, f16 and bf16 weights,\n"
    "                          interleaved), mpi (sequence-parallel retention\n"
    "                          and the sequence- and heads-split model, H 8,\n"
    "                          against one rank; alone, under mpirun -np N;\n"
    "                          --max-prefill-T sets the long T, 8192), or all\n"
    "                          (all but weights and mpi)\n"
    "  --weights W             decode, prefill: the model's weight storage,\n"
    "                          f32 (default), f16, bf16 or keep\n"
    "  --json FILE             write every result, the device and the\n"
    "                          yardsticks to FILE (docs/bench-json.md)\n"
    "  --quick                 small shapes and model: a smoke test (seconds)\n"
    "  --repeats N             kernels: timed runs per configuration (5);\n"
    "                          gemm: interleaved rounds at most (5);\n"
    "                          weights: interleaved rounds (9, at most 16);\n"
    "                          prefill, train: at most N runs (3)\n"
    "  --warmup N              kernels: untimed runs first (2)\n"
    "  --steps N               decode: timed steps per configuration (24)\n"
    "  --timer events|host     kernels: profiling events (default) or host\n"
    "                          clock\n"
    "  --ops LIST              kernels: comma list of rotate, group_norm,\n"
    "                          retention, retention_backward (default all)\n"
    "  --tf-fill synthetic|prefill  decode: how the baseline's KV cache gets\n"
    "                          its context: constant keys and values\n"
    "                          (default; a step's cost does not depend on\n"
    "                          them) or a real prefill (minutes on a CPU).\n"
    "                          RetNet always prefills.\n"
    "time caps (a configuration predicted to exceed one is skipped, and the\n"
    "output says so):\n"
    "  --max-seconds S         kernels: timed-run budget per configuration;\n"
    "                          skip when one run is predicted > 4 S (2)\n"
    "  --max-fill-seconds S    decode: filling one context (600)\n"
    "  --max-prefill-seconds S prefill: one run; repeats stop at S/4 (150)\n"
    "  --max-gemm-seconds S    gemm: a backend's 4 products at the least\n"
    "                          (predicted from fewer rows of the shape);\n"
    "                          rounds stop once a configuration has taken S\n"
    "                          (15; --quick 2)\n"
    "  --max-train-seconds S   train: one training step (predicted from the\n"
    "                          two previous T); further steps only while a\n"
    "                          configuration's steps stay within S/2 (120;\n"
    "                          --quick 10)\n"
    "sizes:\n"
    "  --min-context N         decode: first context of the sweep (512)\n"
    "  --max-context N         decode: context sweep --min-context .. N\n"
    "                          (16384)\n"
    "  --batch-context N       decode: context of the batch sweep 1..16 (512)\n"
    "  --target-context N      decode: the headline point's context (8192)\n"
    "  --target-batch N        decode: the headline point's batch (8)\n"
    "  --max-prefill-T N       prefill: T = 512 .. N (16384)\n"
    "  --kernel-max-T N        kernels: T = 128 .. N (16384)\n"
    "  --kernel-min-T N        kernels: the T series from N (128); the batch\n"
    "                          and state points (T 1024) only if N <= 1024\n"
    "  --algorithms LIST       kernels: retention algorithms, comma list of\n"
    "                          parallel, recurrent, chunkwise (default all)\n"
    "  --retention-form F      kernels: raw (default) or torchscale (what the\n"
    "                          model runs; k scaled by Dk^-1/2 as the layer\n"
    "                          makes it)\n"
    "  --max-train-T N         train: T = 512 .. N (8192; --quick 64 .. 128)\n"
    "model (decode, prefill, train): --embed-dim 512 --heads 4 --ffn-dim 1024\n"
    "  --layers 4 --vocab 1000 --chunk 64 (value dim = embed dim, fp32)\n"
    "yardsticks: --sgemm-n 1024 --copy-mib 64, --no-sgemm to skip SGEMM\n"
    "Device: RETCL_DEVICE / RETCL_PLATFORM (index or name substring).\n");
}

/* A comma list of names into the OR of their bits; 1 if a name is unknown
 * or the list is empty. */
static int parse_list(const char *v, const char *const *names, const int *bits,
                      int n, int *out) {
  *out = 0;
  char buf[128];
  snprintf(buf, sizeof buf, "%s", v);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    int i = 0;
    while (i < n && strcmp(tok, names[i])) ++i;
    if (i == n) return 1;
    *out |= bits[i];
  }
  return *out == 0;
}

static int parse_suites(const char *v, int *out) {
  static const char *const names[] = {"kernels", "decode", "prefill", "gemm",
                                      "train",   "serve",  "weights", "mpi",
                                      "all"};
  static const int bits[] = {SUITE_KERNELS, SUITE_DECODE, SUITE_PREFILL,
                             SUITE_GEMM, SUITE_TRAIN, SUITE_SERVE, SUITE_WEIGHTS,
                             SUITE_MPI,
                             SUITE_KERNELS | SUITE_DECODE | SUITE_PREFILL |
                                 SUITE_GEMM | SUITE_TRAIN | SUITE_SERVE};
  return parse_list(v, names, bits, 9, out);
}

static int parse_ops(const char *v, int *out) {
  static const char *const names[] = {"rotate", "group_norm", "retention",
                                      "retention_backward"};
  static const int bits[] = {OP_ROTATE, OP_GROUP_NORM, OP_RETENTION,
                             OP_RETENTION_BACKWARD};
  return parse_list(v, names, bits, 4, out);
}

static int parse_num(const char *v, double *out) {
  char *end = NULL;
  errno = 0;
  *out = strtod(v, &end);
  return !v[0] || *end || errno || !(*out >= 0);
}

/* --name value options that take a size, and where they go */
typedef struct size_opt {
  const char *name;
  size_t off;
} size_opt;
#define SO(n, f) {n, offsetof(suite_options, f)}
static const size_opt size_opts[] = {
    SO("--steps", steps), SO("--min-context", min_context),
    SO("--max-context", max_context),
    SO("--batch-context", batch_context), SO("--target-context", target_context),
    SO("--target-batch", target_batch), SO("--max-prefill-T", max_T),
    SO("--kernel-max-T", kernel_max_T), SO("--kernel-min-T", kernel_min_T),
    SO("--max-train-T", max_train_T),
    SO("--embed-dim", d),
    SO("--heads", heads), SO("--ffn-dim", ffn), SO("--layers", layers),
    SO("--vocab", vocab), SO("--chunk", chunk), SO("--sgemm-n", sgemm_n),
    SO("--copy-mib", copy_mib)};

static int parse_args(int argc, char **argv, suite_options *o) {
  memset(o, 0, sizeof *o);
  o->repeats = -1, o->warmup = 2, o->tf_synthetic = 1;
  o->max_seconds = o->max_fill = o->max_prefill = o->max_gemm = -1;
  o->max_train = -1;
  o->d = 512, o->heads = 4, o->ffn = 1024, o->layers = 4, o->vocab = 1000;
  o->chunk = 64, o->steps = 24;
  o->ops = OP_ROTATE | OP_GROUP_NORM | OP_RETENTION | OP_RETENTION_BACKWARD;
  o->min_context = 512, o->max_context = 16384, o->batch_context = 512;
  o->target_context = 8192, o->target_batch = 8;
  o->max_T = 16384, o->kernel_max_T = 16384, o->max_train_T = 8192;
  o->kernel_min_T = 128;
  o->algos = 1 << RETCL_ALGO_PARALLEL | 1 << RETCL_ALGO_RECURRENT |
             1 << RETCL_ALGO_CHUNKWISE;
  o->sgemm_n = 1024, o->copy_mib = 64;
  size_t len = 0;
  for (int i = 0; i < argc && len + 2 < sizeof o->command; ++i)
    len += (size_t)snprintf(o->command + len, sizeof o->command - len, "%s%s",
                            i ? " " : "", argv[i]);
  int explicit_sizes = 0, explicit_heads = 0;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    double x = 0;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      exit(0);
    } else if (!strcmp(a, "--quick")) {
      o->quick = 1;
      continue;
    } else if (!strcmp(a, "--no-sgemm")) {
      o->no_sgemm = 1;
      continue;
    }
    if (!v) {
      fprintf(stderr, "retcl-bench: %s: unknown option or missing value\n", a);
      return 1;
    }
    ++i;
    size_t k = 0;
    while (k < sizeof size_opts / sizeof size_opts[0] && strcmp(a, size_opts[k].name))
      ++k;
    if (k < sizeof size_opts / sizeof size_opts[0]) {
      if (parse_num(v, &x) || x < 1 || x != (double)(size_t)x) {
        fprintf(stderr, "retcl-bench: bad %s '%s'\n", a, v);
        return 1;
      }
      *(size_t *)((char *)o + size_opts[k].off) = (size_t)x;
      explicit_sizes = 1;
      if (!strcmp(a, "--heads")) explicit_heads = 1;
    } else if (!strcmp(a, "--suite")) {
      if (parse_suites(v, &o->suites)) {
        fprintf(stderr, "retcl-bench: bad --suite '%s'\n", v);
        return 1;
      }
    } else if (!strcmp(a, "--ops")) {
      if (parse_ops(v, &o->ops)) {
        fprintf(stderr, "retcl-bench: bad --ops '%s'\n", v);
        return 1;
      }
    } else if (!strcmp(a, "--algorithms")) {
      static const char *const names[] = {"parallel", "recurrent",
                                          "chunkwise"};
      static const int bits[] = {1 << RETCL_ALGO_PARALLEL,
                                 1 << RETCL_ALGO_RECURRENT,
                                 1 << RETCL_ALGO_CHUNKWISE};
      if (parse_list(v, names, bits, 3, &o->algos)) {
        fprintf(stderr, "retcl-bench: bad --algorithms '%s'\n", v);
        return 1;
      }
    } else if (!strcmp(a, "--retention-form")) {
      if (strcmp(v, "raw") && strcmp(v, "torchscale")) {
        fprintf(stderr, "retcl-bench: --retention-form raw|torchscale\n");
        return 1;
      }
      o->torchscale = v[0] == 't';
    } else if (!strcmp(a, "--tf-fill")) {
      if (strcmp(v, "synthetic") && strcmp(v, "prefill")) {
        fprintf(stderr, "retcl-bench: --tf-fill synthetic|prefill\n");
        return 1;
      }
      o->tf_synthetic = v[0] == 's';
    } else if (!strcmp(a, "--json")) {
      o->json = v;
    } else if (!strcmp(a, "--weights")) {
      static const retcl_storage storages[] = {
          RETCL_STORAGE_F32, RETCL_STORAGE_F16, RETCL_STORAGE_BF16,
          RETCL_STORAGE_KEEP};
      int k = 0;
      while (k < 4 && strcmp(v, storage_name(storages[k]))) ++k;
      if (k == 4) {
        fprintf(stderr, "retcl-bench: --weights is f32, f16, bf16 or keep, "
                        "not '%s'\n", v);
        return 1;
      }
      o->weights = storages[k];
    } else if (!strcmp(a, "--repeats") || !strcmp(a, "--warmup")) {
      if (parse_num(v, &x) || x > 1000 || (a[2] == 'r' && x < 1)) {
        fprintf(stderr, "retcl-bench: bad %s '%s'\n", a, v);
        return 1;
      }
      *(a[2] == 'r' ? &o->repeats : &o->warmup) = (int)x;
    } else if (!strcmp(a, "--timer")) {
      if (strcmp(v, "events") && strcmp(v, "host")) {
        fprintf(stderr, "retcl-bench: --timer events|host\n");
        return 1;
      }
      o->timer = v[0] == 'h' ? BENCH_TIMER_HOST : BENCH_TIMER_EVENTS;
    } else if (!strcmp(a, "--max-seconds") || !strcmp(a, "--max-fill-seconds") ||
               !strcmp(a, "--max-prefill-seconds") ||
               !strcmp(a, "--max-gemm-seconds") ||
               !strcmp(a, "--max-train-seconds")) {
      if (parse_num(v, &x) || x <= 0) {
        fprintf(stderr, "retcl-bench: bad %s '%s'\n", a, v);
        return 1;
      }
      *(a[6] == 's'   ? &o->max_seconds
        : a[6] == 'f' ? &o->max_fill
        : a[6] == 'g' ? &o->max_gemm
        : a[6] == 't' ? &o->max_train
                      : &o->max_prefill) = x;
    } else {
      fprintf(stderr, "retcl-bench: unknown option '%s'\n", a);
      usage(stderr);
      return 1;
    }
  }
  if (!o->suites) {
    fprintf(stderr, "retcl-bench: --suite is required\n");
    usage(stderr);
    return 1;
  }
  if (o->quick && !explicit_sizes) {
    /* a model and sizes that exercise every code path in seconds */
    o->d = 64, o->heads = 2, o->ffn = 128, o->layers = 2, o->vocab = 100;
    o->min_context = 64, o->max_context = 256, o->batch_context = 128;
    o->target_context = 256, o->target_batch = 4;
    o->max_T = 256, o->kernel_max_T = 512, o->steps = 6;
    o->max_train_T = 128;
  }
  /* the mpi suite's model has 8 heads (head dim 64 at d 512) */
  if (o->suites == SUITE_MPI && !o->quick && !explicit_heads) o->heads = 8;
  /* a prefill run is long (seconds to minutes): fewer repeats there */
  o->prefill_repeats = o->repeats > 0 ? o->repeats : 3;
  if (o->repeats < 0) o->repeats = o->quick ? 3 : 5;
  if (o->max_seconds < 0) o->max_seconds = o->quick ? 0.5 : 2.0;
  if (o->max_fill < 0) o->max_fill = o->quick ? 30 : 600;
  if (o->max_prefill < 0) o->max_prefill = o->quick ? 10 : 150;
  if (o->max_gemm < 0) o->max_gemm = o->quick ? 2 : 15;
  if (o->max_train < 0) o->max_train = o->quick ? 10 : 120;
  if (o->d % o->heads || (o->d / o->heads) % 2) {
    fprintf(stderr, "retcl-bench: --embed-dim must be --heads x an even head "
                    "dim\n");
    return 1;
  }
  const size_t S = o->steps + 2; /* decode fills to context - steps - warm-up */
  if (o->batch_context <= S || o->target_context <= S ||
      o->min_context <= S) {
    fprintf(stderr, "retcl-bench: contexts must exceed --steps + 2\n");
    return 1;
  }
  return 0;
}

static void print_yardsticks(const suite_yardsticks *y, const suite_options *o) {
  if (y->fma.ok)
    printf("fp32 FMA peak   %9.2f GFLOP/s  (float%d, fastest of %d)\n",
           y->fma.gflops, y->fma.width, y->fma.stats.n);
  else
    printf("fp32 FMA peak   unavailable: %s\n", y->fma.error);
  if (y->sgemm.ok)
    printf("CLBlast SGEMM   %9.2f GFLOP/s  (n %zu, median of %d, spread %.0f%%)\n",
           y->sgemm.gflops, y->sgemm.n, y->sgemm.stats.n,
           100 * y->sgemm.stats.spread);
  else
    printf("CLBlast SGEMM   unavailable: %s\n", y->sgemm.error);
  if (y->copy.ok)
    printf("copy bandwidth  %9.2f GB/s     (%zu MiB, read + write, median of %d, "
           "spread %.0f%%)\n",
           y->copy.gbs, o->copy_mib, y->copy.stats.n, 100 * y->copy.stats.spread);
  else
    printf("copy bandwidth  unavailable: %s\n", y->copy.error);
  fflush(stdout);
}

/* One measurement of the three yardsticks on ctx into g_yard_runs[i]. */
static void measure_yardsticks(retcl_context *ctx, const suite_options *o,
                               int i) {
  const bench_plan plan = {1, 5, 10.0, BENCH_TIMER_EVENTS};
  /* a copy takes milliseconds: more samples make its median steadier */
  const bench_plan copy_plan = {2, 15, 10.0, BENCH_TIMER_EVENTS};
  suite_yardsticks *y = &g_yard_runs[i];
  const char *when = i ? "yardsticks again" : "yardsticks";
  progress(when, 1, 3, "fp32 FMA peak");
  bench_fma_peak(ctx, &plan, o->quick ? 20.0 : 60.0, &y->fma);
  progress(when, 2, 3, "CLBlast SGEMM n %zu (first call compiles)", o->sgemm_n);
  if (o->no_sgemm)
    snprintf(y->sgemm.error, sizeof y->sgemm.error, "skipped (--no-sgemm)");
  else
    bench_sgemm(ctx, &plan, o->sgemm_n, &y->sgemm);
  progress(when, 3, 3, "copy bandwidth %zu MiB", o->copy_mib);
  bench_copy(ctx, &copy_plan, o->copy_mib << 20, &y->copy);
  progress_clear();
  g_yard_nruns = i + 1;
}

/* The better of the runs of each yardstick. */
static void best_yardsticks(void) {
  g_yard = g_yard_runs[0];
  for (int i = 1; i < g_yard_nruns; ++i) {
    const suite_yardsticks *y = &g_yard_runs[i];
    if (y->fma.ok && (!g_yard.fma.ok || y->fma.gflops > g_yard.fma.gflops))
      g_yard.fma = y->fma;
    if (y->sgemm.ok &&
        (!g_yard.sgemm.ok || y->sgemm.gflops > g_yard.sgemm.gflops))
      g_yard.sgemm = y->sgemm;
    if (y->copy.ok && (!g_yard.copy.ok || y->copy.gbs > g_yard.copy.gbs))
      g_yard.copy = y->copy;
  }
}

int main(int argc, char **argv) {
  suite_options o;
  if (parse_args(argc, argv, &o)) return 2;
  if (o.suites & SUITE_MPI) {
    if (o.suites != SUITE_MPI) {
      fprintf(stderr, "retcl-bench: --suite mpi runs alone (under mpirun)\n");
      return 2;
    }
    return suite_mpi_main(&o);
  }
  if (o.suites & SUITE_GEMM) suite_gemm_openblas_core(argv);
  suite_elapsed(); /* starts the clock of the progress line */
  retcl_context *ctx = bench_context_create();
  if (!ctx) return 1;
  bench_device_info dev;
  bench_device_info_query(ctx, &dev);
  printf("retcl-bench, RetCL %s\n", retcl_version_string());
  bench_device_info_print(&dev);
  printf("command  : %s\n", o.command);
  measure_yardsticks(ctx, &o, 0);
  best_yardsticks();
  printf("\n== yardsticks (same run, same device; measured again at the end) "
         "==\n");
  print_yardsticks(&g_yard, &o);

  if (o.suites & SUITE_KERNELS) suite_kernels(ctx, &o);
  if (o.suites & SUITE_GEMM) suite_gemm(ctx, &o);
  /* the model suites make contexts of their own (memory accounting) */
  if (o.suites & (SUITE_DECODE | SUITE_PREFILL | SUITE_TRAIN | SUITE_SERVE |
                  SUITE_WEIGHTS)) {
    retcl_context_destroy(ctx);
    if (o.suites & SUITE_DECODE) suite_decode(&o);
    if (o.suites & SUITE_PREFILL) suite_prefill(&o);
    if (o.suites & SUITE_TRAIN) suite_train(&o);
    if (o.suites & SUITE_SERVE) suite_serve(&o);
    if (o.suites & SUITE_WEIGHTS) suite_weights(&o);
    ctx = bench_context_create();
  }
  if (ctx) {
    measure_yardsticks(ctx, &o, 1);
    retcl_context_destroy(ctx);
  }
  best_yardsticks();
  printf("\n== yardsticks at the end ==\n");
  print_yardsticks(&g_yard_runs[1], &o);
  printf("(the JSON's ratios use the better of the start and end value of "
         "each yardstick;\n the tables above used the start values)\n");

  check cs[32];
  const int nc = checks_compute(&o, cs, 32);
  checks_print(cs, nc);
  int errors = 0, skipped = 0;
  for (int i = 0; i < rec_count(); ++i) {
    errors += rec_at(i)->status == REC_ERROR;
    skipped += rec_at(i)->status == REC_SKIPPED;
  }
  const double wall = suite_elapsed();
  printf("\n%d configurations: %d measured, %d skipped (time caps), %d failed; "
         "%.0f s\n",
         rec_count(), rec_count() - errors - skipped, skipped, errors, wall);
  int rc = errors ? 1 : 0;
  if (o.json) {
    if (write_json(o.json, &o, &dev, wall)) rc = 1;
    else printf("results written to %s\n", o.json);
  }
  return rc;
}
