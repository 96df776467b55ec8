/* gemm.c - the gemm suite: the dense products of the models' layers, at
 * rows 1 .. 2048, by every backend the library can run them on, read
 * against yardsticks of the same shape measured in the same rounds.
 *
 * Forward (sweep "forward"), y[M, N] = x[M, K] W[N, K]ᵀ for the (N, K) of
 * the d 512 and d 1024 models' projections (q/k/v/g stacked, out, FFN fc1
 * + gate stacked, fc2, a 32000-word output projection):
 *   linear    retcl_linear with the context's record: what the model runs
 *             (the streaming kernels up to linear.row_limit rows, then
 *             gemm.backend); `path` says which ran
 *   gemm      retcl_gemm NT: RetCL's GEMM whatever the record says
 *   clblast   CLBlastSgemm, row-major, B transposed
 *   openblas  cblas_sgemm on the host, as many threads as the device has
 *             compute units (CPU devices only; a yardstick, linked only
 *             into this program)
 * Backward (sweep "backward", d 512 shapes, 512 and 2048 rows): dX = dY W
 * (retcl_gemm NN: M rows, N = K_in, K = N_out) and dW = dYᵀ X (retcl_gemm
 * TN: N_out x K_in over K = rows), each with CLBlast and OpenBLAS of the
 * same case.
 *
 * The backends of one configuration are timed in interleaved rounds (one
 * run of each per round), so a burst of someone else's work on a shared
 * machine lands on all of them alike and the ratios stay fair. A run is
 * `calls` products back to back (calibrated per backend after the warm-up
 * so that a run lasts about MIN_RUN_MS; one call for the larger products),
 * and its time divided by `calls`: a lone product of a millisecond or two
 * is timed mostly on how fast the device's idle threads wake up (on the
 * 2-core VM, one call in four or five at 512 x 512 x 512 ran on one thread
 * at half the rate), while a model's forward and backward enqueue their
 * products back to back. Each timed run follows an untimed one of the
 * same backend (gjob_run_warm), so that it finds the cores busy and its
 * threads awake (after a quiet spell the first milliseconds ran at about
 * half the rate, which made the order of the backends in a round matter;
 * OpenBLAS's settling pause below is such a spell). OpenCL runs are timed
 * by profiling events (bench_time, one sample per run); OpenBLAS by the
 * host clock around its blocking calls. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, setenv */
#include <math.h>
#include <strings.h>
#include <unistd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "suite.h"

#if RETCL_BENCH_HAVE_CLBLAST
#include <clblast_c.h>
#endif
#if RETCL_BENCH_HAVE_OPENBLAS
#include <cblas.h>
#endif

typedef struct gshape {
  const char *model, *proj;
  size_t N, K; /* y[M, N] = x[M, K] W[N, K]ᵀ */
} gshape;

/* q/k/v/g (4 d x d stacked) and FFN fc1 + gate (2 ffn x d stacked, ffn =
 * 2 d) have the same (N, K): one shape, measured once. */
static const gshape full_shapes[] = {
    {"d512", "qkvg/fc1gate", 2048, 512},  {"d512", "out", 512, 512},
    {"d512", "fc2", 512, 1024},           {"d512", "output", 32000, 512},
    {"d1024", "qkvg/fc1gate", 4096, 1024}, {"d1024", "out", 1024, 1024},
    {"d1024", "fc2", 1024, 2048},         {"d1024", "output", 32000, 1024}};
static const size_t full_rows[] = {1, 8, 64, 512, 2048};
/* --quick: the d 512 model with a 1000-word vocabulary */
static const gshape quick_shapes[] = {{"d512", "qkvg/fc1gate", 2048, 512},
                                      {"d512", "fc2", 512, 1024},
                                      {"d512", "output", 1000, 512}};
static const size_t quick_rows[] = {1, 8, 64, 512};

enum { B_LINEAR, B_GEMM, B_CLBLAST, B_OPENBLAS, NB };
static const char *const bk_op[NB] = {"linear", "gemm", "clblast_sgemm",
                                      "openblas_sgemm"};
static const char *const case_name[3] = {"nt", "nn", "tn"};

#define MAX_ROUNDS 64

/* ---- buffers of one shape ------------------------------------------------ */

typedef struct gbufs {
  size_t Mmax, N, K;
  cl_mem x, w, y, dy, dx, dw;      /* device */
  float *hx, *hw, *hy, *hdy, *hdx, *hdw; /* host (OpenBLAS) */
} gbufs;

static void gbufs_release(gbufs *b) {
  cl_mem *m[] = {&b->x, &b->w, &b->y, &b->dy, &b->dx, &b->dw};
  for (int i = 0; i < 6; ++i)
    if (*m[i]) clReleaseMemObject(*m[i]), *m[i] = NULL;
  float **h[] = {&b->hx, &b->hw, &b->hy, &b->hdy, &b->hdx, &b->hdw};
  for (int i = 0; i < 6; ++i) free(*h[i]), *h[i] = NULL;
}

static float *host_random(size_t n, unsigned seed) {
  float *p = malloc(n * sizeof *p);
  uint64_t s = seed;
  if (p)
    for (size_t i = 0; i < n; ++i)
      p[i] = -1 + 2 * (float)retcl_random_uniform(&s);
  return p;
}

/* Inputs random in [-1, 1), outputs uninitialised (beta = 0 never reads
 * them); the host copies only when OpenBLAS will run. */
static int gbufs_init(gbufs *b, retcl_context *ctx, size_t Mmax, size_t N,
                      size_t K, int backward, int host, char *err,
                      size_t errlen) {
  memset(b, 0, sizeof *b);
  b->Mmax = Mmax, b->N = N, b->K = K;
  int ok = (b->x = bench_random_buffer(ctx, Mmax * K, -1, 1, 21, err, errlen)) &&
           (b->w = bench_random_buffer(ctx, N * K, -1, 1, 22, err, errlen)) &&
           (b->y = bench_buffer(ctx, Mmax * N, err, errlen));
  if (ok && backward)
    ok = (b->dy = bench_random_buffer(ctx, Mmax * N, -1, 1, 23, err, errlen)) &&
         (b->dx = bench_buffer(ctx, Mmax * K, err, errlen)) &&
         (b->dw = bench_buffer(ctx, N * K, err, errlen));
  if (ok && host) {
    ok = (b->hx = host_random(Mmax * K, 21)) && (b->hw = host_random(N * K, 22)) &&
         (b->hy = calloc(Mmax * N, sizeof(float)));
    if (ok && backward)
      ok = (b->hdy = host_random(Mmax * N, 23)) &&
           (b->hdx = calloc(Mmax * K, sizeof(float))) &&
           (b->hdw = calloc(N * K, sizeof(float)));
    if (!ok) snprintf(err, errlen, "out of host memory");
  }
  if (!ok) gbufs_release(b);
  return !ok;
}

/* ---- one product by one backend ------------------------------------------ */

typedef struct gjob {
  retcl_context *ctx;
  int backend, gcase; /* B_*, RETCL_GEMM_* */
  int calls;          /* products per timed run, back to back */
  size_t M, N, K;     /* of the product as retcl_gemm sees it */
  cl_mem a, b, c;
  size_t lda, ldb, ldc;
  const float *ha, *hb;
  float *hc;
} gjob;

/* The operands of configuration (rows, case) of shape b:
 *  nt  y[rows, N] = x[rows, K] W[N, K]ᵀ        M = rows, N, K
 *  nn  dx[rows, K] = dy[rows, N] W[N, K]       M = rows, N = K, K = N
 *  tn  dW[N, K] = dy[rows, N]ᵀ x[rows, K]      M = N, N = K, K = rows */
static void gjob_set(gjob *j, retcl_context *ctx, int backend, int gcase,
                     size_t rows, const gbufs *b) {
  memset(j, 0, sizeof *j);
  j->ctx = ctx, j->backend = backend, j->gcase = gcase;
  j->calls = 1;
  if (gcase == RETCL_GEMM_NT) {
    j->M = rows, j->N = b->N, j->K = b->K;
    j->a = b->x, j->b = b->w, j->c = b->y, j->lda = b->K, j->ldb = b->K,
    j->ldc = b->N;
    j->ha = b->hx, j->hb = b->hw, j->hc = b->hy;
  } else if (gcase == RETCL_GEMM_NN) {
    j->M = rows, j->N = b->K, j->K = b->N;
    j->a = b->dy, j->b = b->w, j->c = b->dx, j->lda = b->N, j->ldb = b->K,
    j->ldc = b->K;
    j->ha = b->hdy, j->hb = b->hw, j->hc = b->hdx;
  } else {
    j->M = b->N, j->N = b->K, j->K = rows;
    j->a = b->dy, j->b = b->x, j->c = b->dw, j->lda = b->N, j->ldb = b->K,
    j->ldc = b->K;
    j->ha = b->hdy, j->hb = b->hx, j->hc = b->hdw;
  }
}

/* One product of j on the device; ev, if given, signals its end. */
static int gjob_enqueue_one(gjob *j, cl_event *ev, char *err, size_t errlen) {
  const retcl_buffer A = retcl_buf(j->a, 0), B = retcl_buf(j->b, 0),
                     C = retcl_buf(j->c, 0);
  retcl_status s = RETCL_SUCCESS;
  if (j->backend == B_LINEAR) {
    s = retcl_linear(j->ctx, j->M, j->N, j->K, 1.0f, A, B, 0.0f, C, 0, NULL,
                     ev);
  } else if (j->backend == B_GEMM) {
    s = retcl_gemm(j->ctx, (retcl_gemm_case)j->gcase, j->M, j->N, j->K, 1.0f,
                   A, j->lda, B, j->ldb, 0.0f, C, j->ldc, 0, NULL, ev);
  } else {
#if RETCL_BENCH_HAVE_CLBLAST
    cl_command_queue q = retcl_context_queue(j->ctx);
    const CLBlastTranspose ta = j->gcase == RETCL_GEMM_TN ? CLBlastTransposeYes
                                                          : CLBlastTransposeNo;
    const CLBlastTranspose tb = j->gcase == RETCL_GEMM_NT ? CLBlastTransposeYes
                                                          : CLBlastTransposeNo;
    CLBlastStatusCode c = CLBlastSgemm(
        CLBlastLayoutRowMajor, ta, tb, j->M, j->N, j->K, 1.0f, j->a, 0, j->lda,
        j->b, 0, j->ldb, 0.0f, j->c, 0, j->ldc, &q, ev);
    if (c != CLBlastSuccess) {
      snprintf(err, errlen, "CLBlastSgemm: status %d", (int)c);
      return 1;
    }
    return 0;
#else
    snprintf(err, errlen, "built without CLBlast");
    return 1;
#endif
  }
  if (s != RETCL_SUCCESS) {
    snprintf(err, errlen, "%s: %s",
             j->backend == B_LINEAR ? "retcl_linear" : "retcl_gemm",
             retcl_last_error(j->ctx));
    return 1;
  }
  return 0;
}

/* A run: j->calls products back to back, ev signalling the last. */
static int gjob_enqueue(void *arg, cl_event *ev, char *err, size_t errlen) {
  gjob *j = arg;
  for (int i = 0; i < j->calls; ++i)
    if (gjob_enqueue_one(j, i + 1 == j->calls ? ev : NULL, err, errlen))
      return 1;
  return 0;
}

/* OpenBLAS's idle threads spin for a while (~2^28 cycles by default) after
 * a call before they sleep; an OpenCL run started in that window would
 * share the cores with them. An OpenCL run waits that long when OpenBLAS
 * ran last. */
#define OPENBLAS_SETTLE_US 150000
static int openblas_ran_last;

static void settle_openblas(void) {
  if (!openblas_ran_last) return;
  const struct timespec settle = {0, OPENBLAS_SETTLE_US * 1000L};
  nanosleep(&settle, NULL);
  openblas_ran_last = 0;
}

/* A timed run lasts about this long (products back to back), at most
 * MAX_CALLS products. */
#define MIN_RUN_MS 20.0
#define MAX_CALLS 64

/* One timed run of j in *ms. 0, or non-zero with err filled. */
static int gjob_run(gjob *j, bench_timer timer, double *ms, char *err,
                    size_t errlen) {
  if (j->backend == B_OPENBLAS) {
#if RETCL_BENCH_HAVE_OPENBLAS
    const double t0 = bench_now();
    for (int i = 0; i < j->calls; ++i)
      cblas_sgemm(CblasRowMajor,
                  j->gcase == RETCL_GEMM_TN ? CblasTrans : CblasNoTrans,
                  j->gcase == RETCL_GEMM_NT ? CblasTrans : CblasNoTrans,
                  (blasint)j->M, (blasint)j->N, (blasint)j->K, 1.0f, j->ha,
                  (blasint)j->lda, j->hb, (blasint)j->ldb, 0.0f, j->hc,
                  (blasint)j->ldc);
    *ms = (bench_now() - t0) * 1e3 / j->calls;
    openblas_ran_last = 1;
    return 0;
#else
    snprintf(err, errlen, "built without OpenBLAS");
    return 1;
#endif
  }
  settle_openblas();
  const bench_plan one = {0, 1, 0, timer};
  bench_stats st;
  if (bench_time(j->ctx, &one, gjob_enqueue, j, &st, err, errlen)) return 1;
  *ms = st.median_ms / j->calls;
  return 0;
}

/* An untimed run of j, then a timed one in *ms: the timed run finds the
 * cores busy and the backend's threads awake, as the products of a model's
 * pass do. 0, or non-zero with err filled. */
static int gjob_run_warm(gjob *j, bench_timer timer, double *ms, char *err,
                         size_t errlen) {
  double unused_ms;
  return gjob_run(j, timer, &unused_ms, err, errlen) ||
         gjob_run(j, timer, ms, err, errlen);
}

/* OpenBLAS built with DYNAMIC_ARCH picks its kernels from the CPU's
 * family and model at load time; a CPU newer than the library (0.3.21
 * knows no Cooper Lake / Sapphire Rapids model) falls back to "Prescott",
 * SSE3 kernels at a fraction of what the CPU can do. A yardstick must be the
 * library at its best: then the program runs itself again with
 * OPENBLAS_CORETYPE naming the newest kernels the CPU's instruction set
 * supports (read at load time only, hence the exec). Never when the user set
 * OPENBLAS_CORETYPE. */
void suite_gemm_openblas_core(char **argv) {
#if RETCL_BENCH_HAVE_OPENBLAS && (defined(__x86_64__) || defined(__i386__))
  if (getenv("OPENBLAS_CORETYPE")) return;
  const char *core = openblas_get_corename();
  if (!core || (strcasecmp(core, "prescott") && strcasecmp(core, "nehalem") &&
                strcasecmp(core, "core2")))
    return;
  __builtin_cpu_init();
  const char *want = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                     : __builtin_cpu_supports("avx2") ? "Haswell"
                                                      : NULL;
  if (!want) return;
  fprintf(stderr,
          "retcl-bench: OpenBLAS chose its %s kernels for this CPU; running "
          "again with OPENBLAS_CORETYPE=%s\n",
          core, want);
  setenv("OPENBLAS_CORETYPE", want, 1);
  execv("/proc/self/exe", argv);
  fprintf(stderr, "retcl-bench: exec failed; going on with %s\n", core);
#else
  (void)argv;
#endif
}

/* ---- the suite ------------------------------------------------------------ */

typedef struct gstate {
  retcl_context *ctx;
  const suite_options *o;
  int done, total;
  int have[NB];             /* backend available on this device/build */
  char why_not[NB][160];    /* why not */
  char path_big[16];        /* what retcl_linear runs beyond row_limit */
  long row_limit;
  /* per backend: time of one run at the previous rows of this shape and
   * case (0 = none yet, < 0 = skipped or failed there) */
  double last_ms[NB];
  size_t last_rows[NB];
} gstate;

static void read_record(gstate *g) {
  g->row_limit = 32;
  snprintf(g->path_big, sizeof g->path_big, "?");
  retcl_param_info p;
  for (size_t i = 0; i < retcl_param_count(); ++i) {
    if (retcl_param_get(g->ctx, i, &p) != RETCL_SUCCESS) continue;
    if (!strcmp(p.family, "linear") && !strcmp(p.key, "row_limit"))
      g->row_limit = p.value;
    if (!strcmp(p.family, "gemm") && !strcmp(p.key, "backend"))
      snprintf(g->path_big, sizeof g->path_big, "%s",
               p.value_name ? p.value_name : "?");
  }
}

static void gtable_header(const char *title) {
  progress_clear();
  printf("\n== %s ==\n", title);
  printf("%-30s %6s | %8s %8s %8s %8s | %5s %6s %6s | %s\n", "shape", "M",
         "linear", "RetCL", "CLBlast", "OpenBLAS", "%FMA", "xCLB", "xOBLAS",
         "spread (RetCL, OpenBLAS); linear path");
  printf("%-30s %6s | %35s | %5s %6s %6s |\n", "", "",
         "GFLOP/s (median of interleaved runs)", "RetCL", "RetCL", "RetCL");
  fflush(stdout);
}

static void fmt_g(char *s, size_t n, const rec *r) {
  if (!r) snprintf(s, n, "-");
  else if (r->status == REC_OK) snprintf(s, n, "%.1f", rec_gflops(r));
  else snprintf(s, n, "%s", r->status == REC_SKIPPED ? "skip" : "ERR");
}

static void gtable_row(const char *label, size_t rows, rec *const r[NB]) {
  progress_clear();
  char g[NB][16];
  for (int b = 0; b < NB; ++b) fmt_g(g[b], sizeof g[b], r[b]);
  const double fma = g_yard.fma.ok ? g_yard.fma.gflops : NAN;
  const rec *m = r[B_GEMM];
  const double gm = m ? rec_gflops(m) : 0;
  char sp[64] = "";
  int k = 0;
  if (m && m->status == REC_OK)
    k += snprintf(sp + k, sizeof sp - (size_t)k, "%.0f%%", 100 * m->st.spread);
  if (r[B_OPENBLAS] && r[B_OPENBLAS]->status == REC_OK)
    k += snprintf(sp + k, sizeof sp - (size_t)k, " %.0f%%",
                  100 * r[B_OPENBLAS]->st.spread);
  if (r[B_LINEAR])
    snprintf(sp + k, sizeof sp - (size_t)k, "; %s", r[B_LINEAR]->algorithm);
  printf("%-30s %6zu | %8s %8s %8s %8s | %5.1f %6.2f %6.2f | %s\n", label, rows,
         g[B_LINEAR], g[B_GEMM], g[B_CLBLAST], g[B_OPENBLAS],
         gm > 0 ? 100 * gm / fma : NAN,
         m && m->ratio_clblast > 0 ? m->ratio_clblast : NAN,
         m && m->ratio_openblas > 0 ? m->ratio_openblas : NAN, sp);
  for (int b = 0; b < NB; ++b)
    if (r[b] && r[b]->status != REC_OK)
      printf("%37s %s %s: %s\n", "", bk_op[b],
             r[b]->status == REC_SKIPPED ? "skipped" : "ERROR", r[b]->reason);
  fflush(stdout);
}

/* Measure one configuration: every backend in `which` (B_* bits), warm-up
 * then interleaved rounds. */
static void measure(gstate *g, const gshape *s, const gbufs *bufs, size_t rows,
                    int gcase, const char *sweep, int which) {
  const suite_options *o = g->o;
  rec *r[NB] = {NULL, NULL, NULL, NULL};
  gjob jobs[NB];
  char label[64];
  snprintf(label, sizeof label, "%s %s %s N%zu K%zu", s->model, s->proj,
           case_name[gcase], s->N, s->K);
  progress("gemm", ++g->done, g->total, "%s M %zu", label, rows);
  for (int b = 0; b < NB; ++b) {
    if (!(which & (1 << b))) continue;
    rec *x = r[b] = rec_new("gemm");
    snprintf(x->op, sizeof x->op, "%s", bk_op[b]);
    snprintf(x->model, sizeof x->model, "%s", s->model);
    snprintf(x->sweep, sizeof x->sweep, "%s", sweep);
    snprintf(x->proj, sizeof x->proj, "%s", s->proj);
    snprintf(x->gcase, sizeof x->gcase, "%s", case_name[gcase]);
    gjob_set(&jobs[b], g->ctx, b, gcase, rows, bufs);
    x->B = 1;
    x->T = rows;
    x->M = jobs[b].M, x->N = jobs[b].N, x->K = jobs[b].K;
    x->flop = 2.0 * (double)x->M * (double)x->N * (double)x->K;
    if (b == B_LINEAR)
      snprintf(x->algorithm, sizeof x->algorithm, "%s",
               (long)rows <= g->row_limit ? "streaming" : g->path_big);
    snprintf(x->name, sizeof x->name, "%s %s M%zu (%s)", label,
             b == B_LINEAR ? x->algorithm : "", rows, bk_op[b]);
    if (!g->have[b]) {
      x->status = REC_SKIPPED;
      snprintf(x->reason, sizeof x->reason, "%s", g->why_not[b]);
      continue;
    }
    if (g->last_ms[b] < 0) {
      x->status = REC_SKIPPED;
      snprintf(x->reason, sizeof x->reason,
               "fewer rows of this shape were skipped or failed");
      continue;
    }
    const double pred =
        g->last_ms[b] > 0 ? g->last_ms[b] * 1e-3 * (double)rows /
                                (double)g->last_rows[b]
                          : 0;
    /* a configuration takes 4 products at the least: warm-up, calibration,
     * then one untimed and one timed run */
    if (4 * pred > o->max_gemm) {
      x->status = REC_SKIPPED;
      snprintf(x->reason, sizeof x->reason,
               "predicted 4 x %.3g s (the fewest products a configuration "
               "takes) > --max-gemm-seconds %g",
               pred, o->max_gemm);
    }
  }
  /* warm-up: one untimed single product each (kernel builds, first touch of
   * buffers), then one timed, which sets how many make a run of about
   * MIN_RUN_MS */
  const double t_start = bench_now();
  double round_s = 0;
  for (int b = 0; b < NB; ++b) {
    if (!r[b] || r[b]->status != REC_OK) continue;
    double ms = 0;
    const double t0 = bench_now();
    if (gjob_run_warm(&jobs[b], o->timer, &ms, r[b]->reason,
                      sizeof r[b]->reason))
      r[b]->status = REC_ERROR;
    else if (ms > 0 && ms < MIN_RUN_MS)
      jobs[b].calls = (int)fmin(MAX_CALLS, ceil(MIN_RUN_MS / ms));
    round_s += bench_now() - t0;
  }
  /* rounds: up to --repeats, while the configuration's time stays within
   * --max-gemm-seconds (at least one) */
  double samples[NB][MAX_ROUNDS];
  int n = 0;
  const int want = o->repeats < MAX_ROUNDS ? o->repeats : MAX_ROUNDS;
  while (n < want) {
    if (n > 0 && bench_now() - t_start + round_s > o->max_gemm) break;
    const double t0 = bench_now();
    int any = 0;
    for (int b = 0; b < NB; ++b) {
      if (!r[b] || r[b]->status != REC_OK) continue;
      if (gjob_run_warm(&jobs[b], o->timer, &samples[b][n], r[b]->reason,
                        sizeof r[b]->reason))
        r[b]->status = REC_ERROR;
      else
        any = 1;
    }
    round_s = bench_now() - t0;
    ++n;
    if (!any) break;
  }
  for (int b = 0; b < NB; ++b) {
    if (!r[b]) continue;
    if (r[b]->status == REC_OK) {
      bench_stats_from(samples[b], n, &r[b]->st);
      r[b]->calls_per_run = jobs[b].calls;
      g->last_ms[b] = r[b]->st.median_ms;
      g->last_rows[b] = rows;
    } else if (g->have[b]) {
      g->last_ms[b] = -1;
    }
  }
  /* ratios to the yardsticks of the same shape */
  const double gc = r[B_CLBLAST] ? rec_gflops(r[B_CLBLAST]) : 0;
  const double go = r[B_OPENBLAS] ? rec_gflops(r[B_OPENBLAS]) : 0;
  for (int b = B_LINEAR; b <= B_GEMM; ++b) {
    if (!r[b] || r[b]->status != REC_OK) continue;
    if (gc > 0) r[b]->ratio_clblast = rec_gflops(r[b]) / gc;
    if (go > 0) r[b]->ratio_openblas = rec_gflops(r[b]) / go;
  }
  if (r[B_CLBLAST] && go > 0 && gc > 0) r[B_CLBLAST]->ratio_openblas = gc / go;
  gtable_row(label, rows, r);
}

int suite_gemm(retcl_context *ctx, const suite_options *o) {
  gstate g;
  memset(&g, 0, sizeof g);
  g.ctx = ctx, g.o = o;
  read_record(&g);
  bench_device_info dev;
  bench_device_info_query(ctx, &dev);
  const int cu = dev.compute_units ? (int)dev.compute_units : 1;
  for (int b = 0; b < NB; ++b) g.have[b] = 1;
#if !RETCL_BENCH_HAVE_CLBLAST
  g.have[B_CLBLAST] = 0;
  snprintf(g.why_not[B_CLBLAST], sizeof g.why_not[0], "built without CLBlast");
#endif
  if (o->no_sgemm) {
    g.have[B_CLBLAST] = 0;
    snprintf(g.why_not[B_CLBLAST], sizeof g.why_not[0], "skipped (--no-sgemm)");
  }
#if RETCL_BENCH_HAVE_OPENBLAS
  if (!(dev.type & CL_DEVICE_TYPE_CPU)) {
    g.have[B_OPENBLAS] = 0;
    snprintf(g.why_not[B_OPENBLAS], sizeof g.why_not[0],
             "not a CPU device: OpenBLAS on the host is no yardstick for it");
  } else {
    openblas_set_num_threads(cu);
  }
#else
  g.have[B_OPENBLAS] = 0;
  snprintf(g.why_not[B_OPENBLAS], sizeof g.why_not[0],
           "built without OpenBLAS (install libopenblas-dev)");
#endif
  g_openblas.available = g.have[B_OPENBLAS];
  g_openblas.threads = g.have[B_OPENBLAS] ? cu : 0;
  snprintf(g_openblas.error, sizeof g_openblas.error, "%s",
           g.have[B_OPENBLAS] ? "" : g.why_not[B_OPENBLAS]);
#if RETCL_BENCH_HAVE_OPENBLAS
  snprintf(g_openblas.config, sizeof g_openblas.config, "%s, core %s%s",
           openblas_get_config(), openblas_get_corename(),
           getenv("OPENBLAS_CORETYPE") ? " (OPENBLAS_CORETYPE)" : "");
#endif

  const gshape *shapes = o->quick ? quick_shapes : full_shapes;
  const int nshapes = o->quick ? 3 : (int)(sizeof full_shapes / sizeof full_shapes[0]);
  const size_t *rowsv = o->quick ? quick_rows : full_rows;
  const int nrows = o->quick ? 4 : 5;
  /* backward: the d 512 shapes at the last two row counts */
  int nback = 0;
  for (int si = 0; si < nshapes; ++si) nback += !strcmp(shapes[si].model, "d512");
  g.total = nshapes * nrows + nback * 2 * (o->quick ? 1 : 2);

  progress_clear();
  printf("\n== gemm: backends ==\n");
  printf("linear   retcl_linear with this device's record: streaming kernels "
         "up to %ld rows, then gemm.backend = %s\n",
         g.row_limit, g.path_big);
  printf("RetCL    retcl_gemm (cl/gemm.cl) nt / nn / tn\n");
  printf("CLBlast  CLBlastSgemm row-major, same case%s%s\n",
         g.have[B_CLBLAST] ? "" : ": unavailable, ",
         g.have[B_CLBLAST] ? "" : g.why_not[B_CLBLAST]);
  if (g.have[B_OPENBLAS])
    printf("OpenBLAS cblas_sgemm on the host, %d threads (= the device's compute "
           "units, openblas_set_num_threads)\n         %s\n",
           cu, g_openblas.config);
  else
    printf("OpenBLAS unavailable: %s\n", g.why_not[B_OPENBLAS]);
  printf("rounds: one run of each backend per round, up to %d rounds within "
         "--max-gemm-seconds %g per configuration;\n        a run is as many "
         "products back to back as last ~%.0f ms (at most %d), timed "
         "together\n",
         o->repeats, o->max_gemm, MIN_RUN_MS, MAX_CALLS);

  const int all = (1 << NB) - 1, no_linear = all & ~(1 << B_LINEAR);
  const size_t Mmax = rowsv[nrows - 1];
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 0)
      gtable_header("gemm: forward, y[M,N] = x[M,K] W[N,K]^T (flop 2MNK)");
    else
      gtable_header("gemm: backward, d512 shapes: nn dx[M,K] = dy[M,N] W[N,K], "
                    "tn dW[N,K] = dy[M,N]^T x[M,K]");
    for (int si = 0; si < nshapes; ++si) {
      const gshape *s = &shapes[si];
      if (pass == 1 && strcmp(s->model, "d512")) continue;
      gbufs bufs;
      char err[512];
      if (gbufs_init(&bufs, ctx, Mmax, s->N, s->K, pass == 1,
                     g.have[B_OPENBLAS], err, sizeof err)) {
        progress_clear();
        printf("%s %s: ERROR %s\n", s->model, s->proj, err);
        rec *x = rec_new("gemm");
        snprintf(x->op, sizeof x->op, "gemm");
        snprintf(x->model, sizeof x->model, "%s", s->model);
        snprintf(x->name, sizeof x->name, "%s %s buffers", s->model, s->proj);
        x->status = REC_ERROR;
        snprintf(x->reason, sizeof x->reason, "%s", err);
        g.done += pass ? 2 * (o->quick ? 1 : 2) : nrows;
        continue;
      }
      if (pass == 0) {
        for (int b = 0; b < NB; ++b) g.last_ms[b] = 0, g.last_rows[b] = 0;
        for (int ri = 0; ri < nrows; ++ri)
          measure(&g, s, &bufs, rowsv[ri], RETCL_GEMM_NT, "forward", all);
      } else {
        const int first = o->quick ? nrows - 1 : nrows - 2;
        for (int c = RETCL_GEMM_NN; c <= RETCL_GEMM_TN; ++c) {
          for (int b = 0; b < NB; ++b) g.last_ms[b] = 0, g.last_rows[b] = 0;
          for (int ri = first; ri < nrows; ++ri)
            measure(&g, s, &bufs, rowsv[ri], c, "backward", no_linear);
        }
      }
      gbufs_release(&bufs);
    }
  }
  progress_clear();
  return 0;
}
