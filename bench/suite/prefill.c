/* prefill.c - the prefill suite: time and peak device memory of a
 * prefill of T tokens (batch 1) versus T, for RetNet's parallel and
 * chunkwise forms and the Transformer baseline.
 *
 * Peak memory: every measurement runs on a fresh context with a freshly
 * loaded model, because the workspaces grow to the largest call made and
 * are kept; what is held after the call (weights + decode state or KV
 * cache + workspaces) is then that T's peak. The prefill writes the decode
 * state / KV cache a generation would go on from, as in real use, and
 * reads back only the last token's logits.
 *
 * Time: host clock around the blocking call, median of up to --repeats
 * runs (each from an empty state) after an untimed short warm-up that
 * builds the kernels. A configuration whose run is predicted (from the two
 * previous T of the same model, growth exponent clamped to [1, 2]) to take
 * longer than --max-prefill-seconds is skipped, and so is every larger T
 * of it; a further repeat is made only while the time spent on the
 * configuration stays within a quarter of that. */
#include <stdlib.h>
#include <string.h>

#include "growth.h"
#include "models.h"

typedef struct series {
  model_kind kind;
  int algo;            /* RetNet: retcl_algorithm; -1 for the baseline */
  growth points;       /* the T measured so far */
} series;

/* What a timed prefill run needs (prefill_run). */
typedef struct prefill_job {
  bench_model *m;
  const int32_t *tok;
  size_t T;
  int algo;
  rec *r;
} prefill_job;

/* A prefill of T tokens from an empty state (growth_run_fn); the first
 * run records the memory held after the call. */
static int prefill_run(void *user, int i, double *ms) {
  prefill_job *j = user;
  char *err = j->r->reason;
  const size_t errlen = sizeof j->r->reason;
  bench_seq s;
  int rc = seq_open(&s, j->m, 1, err, errlen);
  if (rc) return rc;
  progress_detail("run %d", i + 1);
  const double t0 = bench_now();
  rc = seq_forward(&s, j->tok, j->T, j->algo, err, errlen);
  *ms = (bench_now() - t0) * 1e3;
  if (!rc && i == 0) j->r->mem = seq_memory(&s);
  seq_close(&s);
  return rc;
}

static void measure(const suite_options *o, const char *dir, series *x,
                    size_t T, rec *r) {
  char *err = r->reason;
  const size_t errlen = sizeof r->reason;
  bench_model m;
  retcl_context *ctx = growth_open_model(&m, x->kind, o, dir, r);
  if (!ctx) return;
  r->flop = prefill_flop(&m, T, x->algo);
  int32_t *tok = tokens_block(1, 0, T, o->vocab);
  int rc = 0;
  bench_seq s;
  /* warm-up: kernel builds, with prompts short enough to leave the
   * workspaces smaller than the measured call's; two lengths because
   * CLBlast picks (and compiles on first use) a direct GEMM kernel for
   * small products and an indirect one for large ones */
  static const size_t warm_T[2] = {64, 256};
  for (int w = 0; w < 2 && !rc && warm_T[w] <= T; ++w)
    if (!(rc = seq_open(&s, &m, 1, err, errlen))) {
      rc = seq_forward(&s, tok, warm_T[w], x->algo, err, errlen);
      seq_close(&s);
    }
  if (rc) {
    r->status = REC_ERROR;
  } else {
    prefill_job job = {&m, tok, T, x->algo, r};
    /* a quarter of the per-run cap for the configuration's runs */
    growth_time_runs(prefill_run, &job, o->prefill_repeats,
                     o->max_prefill / 4, r);
  }
  free(tok);
  model_close(&m);
  retcl_context_destroy(ctx);
}

int suite_prefill(const suite_options *o) {
  size_t Ts[GROWTH_MAX_T];
  const int nT = growth_lengths(o->quick, o->max_T, Ts);
  series xs[3] = {{.kind = MODEL_RETNET, .algo = RETCL_ALGO_CHUNKWISE},
                  {.kind = MODEL_RETNET, .algo = RETCL_ALGO_PARALLEL},
                  {.kind = MODEL_TRANSFORMER, .algo = -1}};
  const int total = 3 * nT;
  int done = 0;
  char dir[512];
  if (checkpoint_prepare(o, dir, sizeof dir)) return 1;
  char title[256];
  snprintf(title, sizeof title,
           "prefill: batch 1, d %zu, H %zu, L %zu, ffn %zu, chunk %zu; fresh "
           "context each; memory after the call (MiB)",
           o->d, o->heads, o->layers, o->ffn, o->chunk);
  table_header(title, "prefill");
  /* T-major, models interleaved: drift over the run hits all three alike */
  for (int ti = 0; ti < nT; ++ti)
    for (int k = 0; k < 3; ++k) {
      series *x = &xs[k];
      const size_t T = Ts[ti];
      rec *r = rec_new("prefill");
      snprintf(r->op, sizeof r->op, "prefill");
      snprintf(r->model, sizeof r->model, "%s", model_name(x->kind));
      if (x->algo >= 0)
        snprintf(r->algorithm, sizeof r->algorithm, "%s",
                 bench_algorithm_name((retcl_algorithm)x->algo));
      snprintf(r->name, sizeof r->name, "%s%s%s T %zu", r->model,
               x->algo >= 0 ? " " : "", r->algorithm, T);
      r->B = 1, r->T = T, r->H = o->heads, r->Dk = r->Dv = o->d / o->heads;
      r->chunk = x->algo == RETCL_ALGO_CHUNKWISE ? o->chunk : 0;
      r->tokens = (double)T;
      progress("prefill", ++done, total, "%s", r->name);
      /* until two T are measured: chunkwise grows as T, the rest as T^2 */
      const double default_exp = x->algo == RETCL_ALGO_CHUNKWISE ? 1.0 : 2.0;
      if (!growth_skip(&x->points, T, default_exp, o->max_prefill, "run",
                       "--max-prefill-seconds", r))
        measure(o, dir, x, T, r);
      growth_record(&x->points, T, r);
      table_row(r, "prefill");
    }
  progress_clear();
  checkpoint_remove(dir);
  return 0;
}
