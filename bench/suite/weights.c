/* weights.c - the weights suite: decode at batch 1 of the bench model
 * (d, H, L, ffn, vocab from the options) with its weights stored f32, f16
 * and bf16 (retcl_model_load_as), from one checkpoint. Each storage has
 * its own context and decode state, filled with the same 64-token prompt;
 * then rounds of `steps` decode steps per storage, interleaved (the order
 * reversed every other round, so drifts of the machine hit all alike).
 * --repeats sets the rounds (9; at most 16). One sample is a round's mean step time; a record gets the median and
 * spread of its rounds. The summary gives the ratios to f32: weight
 * memory and tokens/s (ratio of medians, and the range over rounds of
 * the per-round ratio). */
#include "models.h"
#include "suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSTORE 3
#define PROMPT 64

const char *storage_name(retcl_storage s) {
  return s == RETCL_STORAGE_F16    ? "f16"
         : s == RETCL_STORAGE_BF16 ? "bf16"
         : s == RETCL_STORAGE_KEEP ? "keep"
                                   : "f32";
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int suite_weights(const suite_options *o) {
  static const retcl_storage storages[NSTORE] = {
      RETCL_STORAGE_F32, RETCL_STORAGE_F16, RETCL_STORAGE_BF16};
  const int rounds = o->repeats > 0 ? (o->repeats < 16 ? o->repeats : 16)
                     : o->quick       ? 3
                                      : 9;
  const size_t S = o->steps ? o->steps : 24;
  char dir[512];
  if (checkpoint_prepare(o, dir, sizeof dir)) return 1;
  retcl_context *ctx[NSTORE] = {NULL};
  bench_model m[NSTORE];
  bench_seq s[NSTORE];
  int open[NSTORE] = {0}, seq[NSTORE] = {0};
  rec *r[NSTORE];
  double *ms[NSTORE];
  char err[512];
  for (int k = 0; k < NSTORE; ++k) {
    ms[k] = calloc((size_t)rounds, sizeof *ms[k]);
    r[k] = rec_new("decode");
    snprintf(r[k]->op, sizeof r[k]->op, "decode");
    snprintf(r[k]->model, sizeof r[k]->model, "retnet");
    snprintf(r[k]->algorithm, sizeof r[k]->algorithm, "recurrent");
    snprintf(r[k]->sweep, sizeof r[k]->sweep, "weights");
    snprintf(r[k]->wtype, sizeof r[k]->wtype, "%s", storage_name(storages[k]));
    snprintf(r[k]->name, sizeof r[k]->name, "retnet batch 1, %s weights",
             storage_name(storages[k]));
    r[k]->B = 1;
    r[k]->H = o->heads;
    r[k]->Dk = r[k]->Dv = o->d / o->heads;
    r[k]->context = PROMPT;
    r[k]->tokens = 1.0;
    progress("weights", k, NSTORE, "loading with %s weights",
             storage_name(storages[k]));
    suite_options ok = *o;
    ok.weights = storages[k];
    err[0] = '\0';
    if (!(ctx[k] = bench_context_create()))
      snprintf(err, sizeof err, "no context");
    else if (!(open[k] = !model_open(&m[k], MODEL_RETNET, ctx[k], &ok, dir,
                                     err, sizeof err)))
      ;
    else if ((seq[k] = !seq_open(&s[k], &m[k], 1, err, sizeof err))) {
      double sec;
      /* the prompt, then two untimed steps (kernel builds, caches) */
      if (seq_fill(&s[k], PROMPT, 2048, 0, &sec, err, sizeof err))
        seq[k] = 0;
      for (int i = 0; seq[k] && i < 2; ++i) {
        int32_t t = token_at(0, seq_position(&s[k]), o->vocab);
        if (seq_forward(&s[k], &t, 1, -1, err, sizeof err)) seq[k] = 0;
      }
    }
    if (!seq[k]) {
      r[k]->status = REC_ERROR;
      snprintf(r[k]->reason, sizeof r[k]->reason, "%s", err);
    }
  }
  for (int round = 0; round < rounds; ++round) {
    progress("weights", round, rounds, "round %d of %d", round + 1, rounds);
    for (int j = 0; j < NSTORE; ++j) {
      const int k = round % 2 ? NSTORE - 1 - j : j;
      if (!seq[k]) continue;
      const double t0 = bench_now();
      for (size_t i = 0; i < S && seq[k]; ++i) {
        int32_t t = token_at(0, seq_position(&s[k]), o->vocab);
        if (seq_forward(&s[k], &t, 1, -1, err, sizeof err)) {
          seq[k] = 0;
          r[k]->status = REC_ERROR;
          snprintf(r[k]->reason, sizeof r[k]->reason, "%s", err);
        }
      }
      ms[k][round] = 1e3 * (bench_now() - t0) / (double)S;
    }
  }
  progress_clear();
  /* Per-round speed ratios to f32, before the samples are sorted. */
  double ratio[NSTORE][16];
  for (int k = 0; k < NSTORE; ++k)
    for (int i = 0; i < rounds && i < 16; ++i)
      ratio[k][i] = seq[0] && seq[k] ? ms[0][i] / ms[k][i] : 0.0;
  char title[256];
  snprintf(title, sizeof title,
           "weights: decode at batch 1, d %zu, H %zu, L %zu, ffn %zu, vocab "
           "%zu; %d interleaved rounds of %zu steps per weight storage",
           o->d, o->heads, o->layers, o->ffn, o->vocab, rounds, S);
  table_header(title, "decode");
  for (int k = 0; k < NSTORE; ++k) {
    if (seq[k]) {
      bench_stats_from(ms[k], rounds, &r[k]->st);
      r[k]->flop = decode_flop(&m[k], 1, PROMPT);
      r[k]->bytes = decode_bytes(&m[k], 1, PROMPT);
      r[k]->mem = seq_memory(&s[k]);
    }
    table_row(r[k], "decode");
  }
  if (seq[0])
    for (int k = 1; k < NSTORE; ++k) {
      if (!seq[k]) continue;
      const int n = rounds < 16 ? rounds : 16;
      qsort(ratio[k], (size_t)n, sizeof ratio[k][0], cmp_double);
      printf("  %-4s / f32: weight memory %.3f (%lld / %lld bytes); "
             "tokens/s %.2fx (ratio of medians; per-round ratios %.2f .. "
             "%.2f)\n",
             storage_name(storages[k]),
             (double)r[k]->mem.weights / (double)r[0]->mem.weights,
             r[k]->mem.weights, r[0]->mem.weights,
             r[0]->st.median_ms / r[k]->st.median_ms, ratio[k][0],
             ratio[k][n - 1]);
    }
  fflush(stdout);
  for (int k = 0; k < NSTORE; ++k) {
    if (seq[k]) seq_close(&s[k]);
    if (open[k]) model_close(&m[k]);
    retcl_context_destroy(ctx[k]);
    free(ms[k]);
  }
  checkpoint_remove(dir);
  return 0;
}
