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

static void measure(const suite_options *o, const char *dir, series *x,
                    size_t T, rec *r) {
  char *err = r->reason;
  const size_t errlen = sizeof r->reason;
  retcl_context *ctx = bench_context_create();
  if (!ctx) {
    r->status = REC_ERROR;
    snprintf(err, errlen, "no context");
    return;
  }
  bench_model m;
  if (model_open(&m, x->kind, ctx, o, dir, err, errlen)) {
    r->status = REC_ERROR;
    retcl_context_destroy(ctx);
    return;
  }
  r->flop = prefill_flop(&m, T, x->algo);
  int32_t *tok = tokens_block(1, 0, T, o->vocab);
  double ms[64];
  int n = 0, rc = 0;
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
  const double t_start = bench_now();
  const int repeats = o->prefill_repeats < 64 ? o->prefill_repeats : 64;
  while (!rc && n < repeats) {
    if ((rc = seq_open(&s, &m, 1, err, errlen))) break;
    progress_detail("run %d", n + 1);
    const double t0 = bench_now();
    rc = seq_forward(&s, tok, T, x->algo, err, errlen);
    ms[n] = (bench_now() - t0) * 1e3;
    if (!rc && n == 0) r->mem = seq_memory(&s);
    seq_close(&s);
    if (!rc) ++n;
    /* another run only if it fits in a quarter of the per-run cap: long
     * runs are the least noisy and the suite must stay affordable */
    if (!rc && bench_now() - t_start + ms[n - 1] * 1e-3 > o->max_prefill / 4)
      break;
  }
  free(tok);
  if (n > 0 && !rc) {
    bench_stats_from(ms, n, &r->st);
    r->status = REC_OK;
  } else {
    r->status = REC_ERROR;
  }
  model_close(&m);
  retcl_context_destroy(ctx);
}

int suite_prefill(const suite_options *o) {
  size_t Ts[16];
  int nT = 0;
  for (size_t T = o->quick ? 64 : 512; T <= o->max_T && nT < 16; T *= 2)
    Ts[nT++] = T;
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
