/* serve.c - the serve suite: the two serving targets of issue 12 on the
 * RetNet bench model (d, H, L, ffn, vocab of the options: d 512, L 4 by
 * default).
 *
 *   packed prefill  8 sequences of lengths spread evenly from 1 to
 *                   --max-prefill-T's 2048 (1, 293, 586, ..., 2048; --quick
 *                   1 .. 256) as one packed call
 *                   (retcl_model_forward_packed, chunkwise, states into
 *                   pool slots 0..7, last logits), against the same
 *                   sequences as one rectangular batch 8 x 2048
 *                   (retcl_model_forward_last, chunkwise, a decode state of
 *                   batch 8) scaled by the padding ratio: the target is
 *                   packed <= 1.15 x rectangular x tokens / (8 x 2048),
 *                   i.e. padding costs nothing.
 *   pool decode     a decode step of 8 sequences at 8 different
 *                   positions through the pool (retcl_model_decode_step,
 *                   rows in an order unlike the slots') against the
 *                   rectangular batch-8 step (retcl_model_forward,
 *                   recurrent, T 1, a decode state of batch 8), 4 x
 *                   --steps pairs (96): target
 *                   <= 1.05.
 *
 * Method. One context and one model for all four configurations. A and B
 * of each pair are run interleaved (A B, B A, A B, ...: drift and the
 * order of the pair hit both alike), each timed by the host clock around
 * the blocking call, logits read back included; the state setup between
 * prefill runs (pool slots reset, a fresh decode state) is outside the
 * timing. Untimed runs first build the kernels and grow the workspaces to
 * their largest. Each record holds the median and spread of its times; the
 * first of a pair also carries the median of the per-pair ratios
 * (ratio_to_reference in the JSON) next to the ratio of the medians, which
 * is the check's value. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models.h"

#define NSEQ 8

static void retcl_fail_rec(rec *r, const char *what, retcl_context *ctx,
                           retcl_status st) {
  r->status = REC_ERROR;
  snprintf(r->reason, sizeof r->reason, "%s: %s: %.400s", what,
           retcl_status_string(st), retcl_last_error(ctx));
}

static rec *serve_rec(const suite_options *o, const char *op,
                      const char *algo, const char *name, size_t T,
                      size_t context, double tokens) {
  rec *r = rec_new("serve");
  snprintf(r->op, sizeof r->op, "%s", op);
  snprintf(r->model, sizeof r->model, "retnet");
  snprintf(r->algorithm, sizeof r->algorithm, "%s", algo);
  snprintf(r->name, sizeof r->name, "%s", name);
  r->B = NSEQ, r->T = T, r->context = context;
  r->H = o->heads, r->Dk = r->Dv = o->d / o->heads;
  r->chunk = !strcmp(algo, "chunkwise") ? o->chunk : 0;
  r->tokens = tokens;
  return r;
}

static double median_of(double *x, int n) {
  double *y = malloc((size_t)n * sizeof *y);
  memcpy(y, x, (size_t)n * sizeof *y);
  for (int a = 1; a < n; ++a)
    for (int b = a; b > 0 && y[b] < y[b - 1]; --b) {
      const double t = y[b];
      y[b] = y[b - 1], y[b - 1] = t;
    }
  const double m = n % 2 ? y[n / 2] : 0.5 * (y[n / 2 - 1] + y[n / 2]);
  free(y);
  return m;
}

/* ---- packed prefill against the rectangular batch ---------------------------- */

typedef struct prefill_job {
  bench_model *m;
  retcl_state_pool *pool;
  int32_t slots[NSEQ];
  size_t off[NSEQ + 1], Lmax;
  int32_t *packed, *rect; /* tokens */
  float *logits;
} prefill_job;

static retcl_status run_packed(prefill_job *j, rec *r) {
  for (int s = 0; s < NSEQ; ++s) retcl_state_pool_reset(j->pool, (size_t)s);
  const retcl_status st = retcl_model_forward_packed(
      j->m->retnet, j->pool, j->slots, j->packed, j->off, NSEQ,
      RETCL_ALGO_CHUNKWISE, j->m->chunk, 1, j->logits);
  if (st) retcl_fail_rec(r, "retcl_model_forward_packed", j->m->ctx, st);
  return st;
}

static retcl_status run_rect(prefill_job *j, rec *r, double *ms) {
  retcl_decode_state *ds = NULL;
  retcl_status st = retcl_decode_state_create(j->m->retnet, NSEQ, &ds);
  if (st) {
    retcl_fail_rec(r, "retcl_decode_state_create", j->m->ctx, st);
    return st;
  }
  const double t0 = bench_now();
  st = retcl_model_forward_last(j->m->retnet, ds, j->rect, NSEQ, j->Lmax,
                                RETCL_ALGO_CHUNKWISE, j->m->chunk, j->logits);
  if (ms) *ms = (bench_now() - t0) * 1e3;
  if (st) retcl_fail_rec(r, "retcl_model_forward_last", j->m->ctx, st);
  retcl_decode_state_destroy(ds);
  return st;
}

static void serve_prefill(const suite_options *o, bench_model *m,
                          retcl_state_pool *pool, int *done, int total) {
  prefill_job j;
  memset(&j, 0, sizeof j);
  j.m = m, j.pool = pool;
  j.Lmax = o->quick ? 256 : (o->max_T < 2048 ? o->max_T : 2048);
  size_t len[NSEQ];
  for (int i = 0; i < NSEQ; ++i) {
    len[i] = 1 + (size_t)floor((double)i * (double)(j.Lmax - 1) / (NSEQ - 1) + 0.5);
    j.off[i + 1] = j.off[i] + len[i];
    j.slots[i] = i;
  }
  const size_t S = j.off[NSEQ], R = (size_t)NSEQ * j.Lmax;
  j.packed = malloc(S * sizeof(int32_t));
  j.rect = malloc(R * sizeof(int32_t));
  j.logits = malloc((size_t)NSEQ * m->vocab * sizeof(float));
  /* the rectangular batch: each sequence's tokens, then padding up to Lmax
   * (what a server without packing would run) */
  for (int i = 0; i < NSEQ; ++i)
    for (size_t t = 0; t < j.Lmax; ++t) {
      const int32_t tok = token_at((size_t)i, t, m->vocab);
      j.rect[(size_t)i * j.Lmax + t] = tok;
      if (t < len[i]) j.packed[j.off[i] + t] = tok;
    }
  char name[128];
  snprintf(name, sizeof name, "packed prefill 8 seqs 1..%zu (%zu tokens)",
           j.Lmax, S);
  rec *ra = serve_rec(o, "prefill_packed", "chunkwise", name, j.Lmax, 0,
                      (double)S);
  snprintf(name, sizeof name, "rectangular prefill 8 x %zu", j.Lmax);
  rec *rb = serve_rec(o, "prefill_rect", "chunkwise", name, j.Lmax, 0,
                      (double)R);
  progress("serve", ++*done, total, "prefill warm-up (8 x %zu)", j.Lmax);
  /* untimed: kernel builds, workspaces at their largest */
  if (run_packed(&j, ra) == RETCL_SUCCESS) run_rect(&j, rb, NULL);
  double a[64], b[64], q[64];
  int n = 0;
  /* rounds of ~15 s on PoCL at 2048: 7 within --max-prefill-seconds */
  const int want = o->quick ? 3 : 7;
  const double t_start = bench_now();
  while (ra->status == REC_OK && rb->status == REC_OK && n < want) {
    progress("serve", *done, total, "packed vs rectangular prefill, round %d",
             n + 1);
    double ta = 0, tb = 0;
    for (int k = 0; k < 2; ++k) {
      const int first_a = (n % 2 == 0) == (k == 0);
      if (first_a) {
        for (int s = 0; s < NSEQ; ++s) retcl_state_pool_reset(pool, (size_t)s);
        const double t0 = bench_now();
        const retcl_status st = retcl_model_forward_packed(
            m->retnet, pool, j.slots, j.packed, j.off, NSEQ,
            RETCL_ALGO_CHUNKWISE, m->chunk, 1, j.logits);
        ta = (bench_now() - t0) * 1e3;
        if (st) retcl_fail_rec(ra, "retcl_model_forward_packed", m->ctx, st);
      } else {
        run_rect(&j, rb, &tb);
      }
    }
    if (ra->status != REC_OK || rb->status != REC_OK) break;
    a[n] = ta, b[n] = tb;
    q[n] = ta / (tb * (double)S / (double)R);
    ++n;
    /* at least 3 rounds; more only within --max-prefill-seconds */
    if (n >= 3 && bench_now() - t_start > o->max_prefill) break;
  }
  ++*done;
  if (n > 0) {
    bench_stats_from(a, n, &ra->st);
    bench_stats_from(b, n, &rb->st);
    ra->ref_ratio = median_of(q, n);
    ra->mem = rb->mem = (rec_memory){model_weight_bytes(m),
                                     (long long)retcl_state_pool_bytes(pool),
                                     model_workspace_bytes(m), -1, -1};
  }
  table_row(ra, "prefill");
  table_row(rb, "prefill");
  free(j.packed), free(j.rect), free(j.logits);
}

/* ---- the pool's decode step against the rectangular one ------------------------ */

static void serve_decode(const suite_options *o, bench_model *m,
                         retcl_state_pool *pool, int *done, int total) {
  const size_t V = m->vocab;
  /* positions spread over a few hundred tokens (--quick: tens); rows in an
   * order unlike the slots' */
  static const int32_t row_slot[NSEQ] = {3, 0, 7, 1, 6, 2, 5, 4};
  size_t len[NSEQ], off[NSEQ + 1] = {0};
  int32_t slots[NSEQ];
  const size_t base = o->quick ? 4 : 16, step = o->quick ? 9 : 73;
  for (int i = 0; i < NSEQ; ++i) {
    len[i] = base + (size_t)i * step;
    off[i + 1] = off[i] + len[i];
    slots[i] = i;
  }
  const size_t ctx_rect = o->quick ? 32 : 256;
  char name[128];
  snprintf(name, sizeof name, "pool decode step, 8 slots at %zu..%zu", len[0],
           len[NSEQ - 1]);
  rec *ra = serve_rec(o, "decode_pool", "recurrent", name, 1, len[NSEQ - 1],
                      NSEQ);
  snprintf(name, sizeof name, "rectangular decode step, batch 8 at %zu",
           ctx_rect);
  rec *rb = serve_rec(o, "decode_rect", "recurrent", name, 1, ctx_rect, NSEQ);
  progress("serve", ++*done, total, "decode: filling the pool and the state");
  int32_t *tok = malloc(off[NSEQ] * sizeof(int32_t));
  for (int i = 0; i < NSEQ; ++i)
    for (size_t t = 0; t < len[i]; ++t)
      tok[off[i] + t] = token_at((size_t)i, t, V);
  for (int s = 0; s < NSEQ; ++s) retcl_state_pool_reset(pool, (size_t)s);
  retcl_status st = retcl_model_forward_packed(m->retnet, pool, slots, tok, off,
                                               NSEQ, RETCL_ALGO_CHUNKWISE,
                                               m->chunk, 1, NULL);
  free(tok);
  if (st) retcl_fail_rec(ra, "retcl_model_forward_packed", m->ctx, st);
  bench_seq rs;
  if (seq_open(&rs, m, NSEQ, rb->reason, sizeof rb->reason)) {
    rb->status = REC_ERROR;
  } else {
    double sec;
    if (seq_fill(&rs, ctx_rect, 4096, 0, &sec, rb->reason, sizeof rb->reason))
      rb->status = REC_ERROR;
  }
  float *lg = malloc((size_t)NSEQ * V * sizeof(float));
  /* a step takes milliseconds: 4 x --steps (96) pairs, for a median that
   * a shared machine's bursts do not move */
  const int warm = 2, steps = (int)o->steps * (o->quick ? 1 : 4),
            total_steps = warm + steps;
  double *a = calloc((size_t)total_steps, sizeof(double));
  double *b = calloc((size_t)total_steps, sizeof(double));
  double *q = calloc((size_t)total_steps, sizeof(double));
  int n = 0;
  progress("serve", *done, total, "decode: %d steps each, interleaved",
           total_steps);
  for (int round = 0; round < total_steps && ra->status == REC_OK &&
                      rb->status == REC_OK;
       ++round) {
    double ta = 0, tb = 0;
    for (int k = 0; k < 2; ++k) {
      const int first_a = (round % 2 == 0) == (k == 0);
      int32_t t[NSEQ];
      if (first_a) {
        for (int r = 0; r < NSEQ; ++r)
          t[r] = token_at((size_t)row_slot[r],
                          retcl_state_pool_position(pool, (size_t)row_slot[r]),
                          V);
        const double t0 = bench_now();
        st = retcl_model_decode_step(m->retnet, pool, row_slot, t, NSEQ, lg);
        ta = (bench_now() - t0) * 1e3;
        if (st) retcl_fail_rec(ra, "retcl_model_decode_step", m->ctx, st);
      } else {
        for (int r = 0; r < NSEQ; ++r)
          t[r] = token_at((size_t)r, seq_position(&rs), V);
        const double t0 = bench_now();
        st = retcl_model_forward(m->retnet, rs.state, t, NSEQ, 1,
                                 RETCL_ALGO_RECURRENT, 0, lg);
        tb = (bench_now() - t0) * 1e3;
        if (st) retcl_fail_rec(rb, "retcl_model_forward", m->ctx, st);
      }
    }
    if (round < warm) continue;
    a[n] = ta, b[n] = tb, q[n] = ta / tb;
    ++n;
  }
  ++*done;
  if (ra->status == REC_OK && rb->status == REC_OK && n > 0) {
    bench_stats_from(a, n, &ra->st);
    bench_stats_from(b, n, &rb->st);
    ra->ref_ratio = median_of(q, n);
    ra->flop = rb->flop = decode_flop(m, NSEQ, ctx_rect);
    ra->bytes = rb->bytes = decode_bytes(m, NSEQ, ctx_rect);
    ra->mem = (rec_memory){model_weight_bytes(m),
                           (long long)retcl_state_pool_bytes(pool),
                           model_workspace_bytes(m), -1, -1};
    rb->mem = seq_memory(&rs);
  }
  seq_close(&rs);
  table_row(ra, "decode");
  table_row(rb, "decode");
  free(lg), free(a), free(b), free(q);
}

int suite_serve(const suite_options *o) {
  const int total = 4;
  int done = 0;
  char dir[512];
  if (checkpoint_prepare(o, dir, sizeof dir)) return 1;
  retcl_context *ctx = bench_context_create();
  bench_model m;
  char err[512] = "no context";
  retcl_state_pool *pool = NULL;
  retcl_status st = RETCL_SUCCESS;
  const int opened = ctx && !model_open(&m, MODEL_RETNET, ctx, o, dir, err,
                                        sizeof err);
  if (opened) {
    st = retcl_state_pool_create(m.retnet, NSEQ, &pool);
    if (st)
      snprintf(err, sizeof err, "retcl_state_pool_create: %s: %.400s",
               retcl_status_string(st), retcl_last_error(ctx));
  }
  char title[256];
  snprintf(title, sizeof title,
           "serve: packed prefill and pool decoding, d %zu, H %zu, L %zu, ffn "
           "%zu, vocab %zu, chunk %zu, fp32; A/B interleaved",
           o->d, o->heads, o->layers, o->ffn, o->vocab, o->chunk);
  table_header(title, "prefill");
  if (opened && pool) {
    serve_prefill(o, &m, pool, &done, total);
    table_header("serve: decode step, batch 8", "decode");
    serve_decode(o, &m, pool, &done, total);
  } else {
    static const char *const ops[4] = {"prefill_packed", "prefill_rect",
                                       "decode_pool", "decode_rect"};
    for (int i = 0; i < 4; ++i) {
      rec *r = serve_rec(o, ops[i], i < 2 ? "chunkwise" : "recurrent", ops[i],
                         0, 0, 0);
      r->status = REC_ERROR;
      snprintf(r->reason, sizeof r->reason, "%s", err);
    }
  }
  progress_clear();
  retcl_state_pool_destroy(pool);
  if (opened) model_close(&m);
  retcl_context_destroy(ctx);
  checkpoint_remove(dir);
  return 0;
}
