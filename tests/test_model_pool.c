/* test_model_pool.c - serving: retcl_model_forward_packed (packed
 * sequences of different lengths, every algorithm, all logits or the last
 * ones) equals running each sequence alone, and decoding through a state
 * pool (retcl_model_decode_step) while sequences join and leave equals
 * decoding each sequence alone with its own retcl_decode_state, step by
 * step; skipped rows keep their logits; failed calls change no slot;
 * every bad offset array, slot, token and pool is rejected. */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

/* Packed against alone on the same device, both fp32: the same ops on the
 * same rows, but the projections of a packed call run over more rows (a
 * GEMM of M = all tokens may take another kernel and summation order than
 * M = one sequence, and the decode step's weight-streaming kernel groups
 * rows differently), so results agree to rounding, not bitwise. A
 * forward's logits are within 2e-5 of the double reference
 * (tests/test_model.c); two fp32 runs of the same sums in different orders
 * differ far less: 1e-5 relative, while a wrong slot, position or a chunk
 * crossing a boundary gives 1e-2 and more. */
#define POOL_TOL 1e-5
/* Packed forward against alone, per sequence: the projections of a packed
 * call run over all the stream's rows, so with the GPU access pattern a
 * short sequence alone (<= 32 rows: the weight-streaming kernel) and packed
 * (a GEMM) sum in different orders. Well-conditioned sequences then differ
 * by up to 1.4e-5 (measured over 25 seeds, RETCL_KERNEL_PATHS=gpu). A
 * sequence's first token in torchscale's parallel form is ill-conditioned:
 * its row sum |q_0 k_0| is below 1, so o_0 = (q_0 . k_0) v_0 is not
 * normalised and the RMS group norm scales it (and the rounding of a dot
 * product that cancels) up to O(1): measured 2.4e-4 relative on one
 * 2-token sequence's first token packed, 9e-6 alone (seed
 * 1796308729630849560; with the CPU pattern both are 2.3e-5 from the double
 * reference, bitwise equal). So per sequence the bound is 5e-4, which still
 * catches what packing can get wrong (a chunk or a score row crossing a
 * sequence boundary, a wrong position or slot: 1e-2 and more), and the
 * worst values are printed. */
#define PACKED_SEQ_TOL 5e-4

static double g_worst_pa, g_worst_ref;

typedef struct fixture {
  retcl_context *ctx;
  char dir[256];
  retcl_model *model;
  retcl_model_config cfg;
  ref_model m; /* the weights, for the double reference */
} fixture;

static void fixture_open(fixture *f, retcl_model_config cfg) {
  f->ctx = tu_context();
  f->cfg = cfg;
  snprintf(f->dir, sizeof f->dir, "%s/retcl-pool-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(f->dir));
  /* random weights the double reference also holds (as tests/test_model.c) */
  ref_model_random(&f->m, &cfg, 1, tu_rng());
  ck_assert_int_eq(ref_checkpoint_write(&f->m, f->dir, "F32", CKPT_OK), 0);
  f->model = NULL;
  tu_ok(f->ctx, retcl_model_load(f->ctx, f->dir, &f->model));
}

static void fixture_close(fixture *f) {
  retcl_model_destroy(f->model);
  ref_checkpoint_remove(f->dir);
  ref_model_free(&f->m);
  retcl_context_destroy(f->ctx);
}

static int32_t *random_tokens(size_t n, size_t V) {
  int32_t *t = malloc((n ? n : 1) * sizeof *t);
  for (size_t i = 0; i < n; ++i) t[i] = (int32_t)tu_uniform(0, (double)V - 1e-9);
  return t;
}

static void poison(float *x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = NAN;
}

static void assert_close_f(const char *what, const float *got,
                           const float *want, size_t n, double tol) {
  double *w = ref_widen(want, n);
  const double e = tu_rel_error(got, w, n);
  free(w);
  ck_assert_msg(e <= tol, "%s: relative error %.3g > %.3g (seed %llu)", what, e,
                tol, (unsigned long long)tu_seed());
}

static void assert_nan_row(const char *what, const float *x, size_t n) {
  for (size_t i = 0; i < n; ++i)
    ck_assert_msg(isnan(x[i]), "%s: element %zu written (%g)", what, i,
                  (double)x[i]);
}

static const retcl_algorithm ALGOS[3] = {
    RETCL_ALGO_PARALLEL, RETCL_ALGO_CHUNKWISE, RETCL_ALGO_RECURRENT};
static const char *const ALGO_NAMES[3] = {"parallel", "chunkwise",
                                          "recurrent"};

/* ---- packed forward against each sequence alone ------------------------------ */

static void packed_equals_alone(retcl_model_config cfg, const size_t *len,
                                size_t n, size_t chunk) {
  fixture f;
  fixture_open(&f, cfg);
  const size_t V = cfg.vocab_size;
  size_t off[32] = {0};
  for (size_t i = 0; i < n; ++i) off[i + 1] = off[i] + len[i];
  const size_t T = off[n];
  int32_t *tok = random_tokens(T, V);
  float *got = tu_alloc(T * V), *one = tu_alloc(T * V);
  double *ref = tu_alloc_d(T * V);
  char what[160];
  for (int a = 0; a < 3; ++a)
    for (int last = 0; last < 2; ++last) {
      poison(got, T * V);
      tu_ok(f.ctx, retcl_model_forward_packed(f.model, NULL, NULL, tok, off, n,
                                              ALGOS[a], chunk, last, got));
      /* last_only writes [n, V] and nothing past it */
      if (last) assert_nan_row("logits past [sequences, vocab]", got + n * V,
                               (T - n) * V);
      for (size_t i = 0; i < n; ++i) {
        poison(one, T * V);
        if (last)
          tu_ok(f.ctx, retcl_model_forward_last(f.model, NULL, tok + off[i], 1,
                                                len[i], ALGOS[a], chunk, one));
        else
          tu_ok(f.ctx, retcl_model_forward(f.model, NULL, tok + off[i], 1,
                                           len[i], ALGOS[a], chunk, one));
        snprintf(what, sizeof what, "%s%s, chunk %zu: sequence %zu (len %zu)",
                 ALGO_NAMES[a], last ? " last_only" : "", chunk, i, len[i]);
        /* both against the double reference of the sequence */
        ref_model_forward(&f.m, tok + off[i], 1, len[i], ALGOS[a],
                          chunk ? chunk : cfg.chunk_size, ref);
        const double *r = last ? ref + (len[i] - 1) * V : ref;
        const float *g = last ? got + i * V : got + off[i] * V;
        const size_t m = last ? V : len[i] * V;
        double *od = ref_widen(one, m);
        const double e_pa = tu_rel_error(g, od, m);
        const double e_p = tu_rel_error(g, r, m), e_a = tu_rel_error(one, r, m);
        free(od);
        if (e_pa > g_worst_pa) g_worst_pa = e_pa;
        if (e_p > g_worst_ref) g_worst_ref = e_p;
        if (e_a > g_worst_ref) g_worst_ref = e_a;
        ck_assert_msg(e_p <= PACKED_SEQ_TOL && e_a <= PACKED_SEQ_TOL,
                      "%s: against the double reference: packed %.3g, alone "
                      "%.3g > %.3g (seed %llu)",
                      what, e_p, e_a, PACKED_SEQ_TOL,
                      (unsigned long long)tu_seed());
        ck_assert_msg(e_pa <= PACKED_SEQ_TOL,
                      "%s: packed vs alone %.3g > %.3g (against the double "
                      "reference: packed %.3g, alone %.3g; seed %llu)",
                      what, e_pa, PACKED_SEQ_TOL, e_p, e_a,
                      (unsigned long long)tu_seed());
      }
    }
  printf("packed vs alone: worst %.3g; either vs the double reference: worst "
         "%.3g\n", g_worst_pa, g_worst_ref);
  /* logits NULL is allowed (a prefill that keeps only states) */
  tu_ok(f.ctx, retcl_model_forward_packed(f.model, NULL, NULL, tok, off, n,
                                          RETCL_ALGO_CHUNKWISE, chunk, 0, NULL));
  free(tok), free(got), free(one), free(ref);
  fixture_close(&f);
}

START_TEST(forward_packed_equals_alone_every_algorithm) {
  /* T = 1 sequences, shorter than a chunk (8), exactly one, several */
  const size_t len[7] = {1, 5, 8, 13, 1, 20, 2};
  packed_equals_alone(tu_model_config(32, 48, 2, 64, 2, 61), len, 7, 0);
}
END_TEST

START_TEST(forward_packed_explicit_chunk_one_sequence) {
  const size_t len[3] = {9, 3, 17};
  packed_equals_alone(tu_model_config(16, 16, 1, 32, 1, 23), len, 3, 4);
  const size_t one[1] = {11};
  packed_equals_alone(tu_model_config(32, 32, 4, 48, 1, 40), one, 1, 0);
}
END_TEST

/* ---- the pool: joins and leaves against alone decoding ------------------------ */

/* One sequence decoded alone, the way a batch-1 server would. */
typedef struct alone {
  retcl_decode_state *st;
  size_t pos;
} alone;

typedef struct pool_env {
  fixture f;
  retcl_state_pool *pool;
  size_t V;
  alone seq[4]; /* A, B, C, D */
} pool_env;

enum { SA = 0, SB = 1, SC = 2, SD = 3 };
static const char SEQ_NAME[4] = {'A', 'B', 'C', 'D'};

static void alone_open(pool_env *e, int s) {
  tu_ok(e->f.ctx, retcl_decode_state_create(e->f.model, 1, &e->seq[s].st));
  e->seq[s].pos = 0;
}

/* Alone: tokens [len] through sequence s's own state, all logits [len, V]. */
static void alone_forward(pool_env *e, int s, const int32_t *tok, size_t len,
                          retcl_algorithm a, float *logits) {
  tu_ok(e->f.ctx, retcl_model_forward(e->f.model, e->seq[s].st, tok, 1, len, a,
                                      0, logits));
  e->seq[s].pos += len;
  ck_assert_uint_eq(retcl_decode_state_position(e->seq[s].st), e->seq[s].pos);
}

static void expect_positions(pool_env *e, const size_t *want, size_t slots,
                             const char *when) {
  for (size_t s = 0; s < slots; ++s)
    ck_assert_msg(retcl_state_pool_position(e->pool, s) == want[s],
                  "%s: slot %zu at position %zu, expected %zu", when, s,
                  retcl_state_pool_position(e->pool, s), want[s]);
}

/* A decode step of the pool: rows[r] = sequence (SA..SD) or -1, slot_of[]
 * maps sequences to slots; each live row's logits against the same step
 * alone, skipped rows untouched. */
static void pool_step(pool_env *e, const int *rows, size_t nrows,
                      const int32_t *slot_of, const char *when) {
  const size_t V = e->V;
  int32_t slots[8], tok[8];
  float *lg = tu_alloc(nrows * V), *one = tu_alloc(V);
  poison(lg, nrows * V);
  for (size_t r = 0; r < nrows; ++r) {
    slots[r] = rows[r] < 0 ? -1 : slot_of[rows[r]];
    /* a skipped row's token is not read: give it one out of range */
    tok[r] = rows[r] < 0 ? (int32_t)(V + 7)
                         : (int32_t)tu_uniform(0, (double)V - 1e-9);
  }
  tu_ok(e->f.ctx, retcl_model_decode_step(e->f.model, e->pool, slots, tok,
                                          nrows, lg));
  char what[160];
  for (size_t r = 0; r < nrows; ++r) {
    if (rows[r] < 0) {
      snprintf(what, sizeof what, "%s: skipped row %zu", when, r);
      assert_nan_row(what, lg + r * V, V);
      continue;
    }
    alone_forward(e, rows[r], &tok[r], 1, RETCL_ALGO_RECURRENT, one);
    snprintf(what, sizeof what, "%s: row %zu (sequence %c, slot %d, position %zu)",
             when, r, SEQ_NAME[rows[r]], slots[r], e->seq[rows[r]].pos - 1);
    assert_close_f(what, lg + r * V, one, V, POOL_TOL);
    ck_assert_uint_eq(retcl_state_pool_position(e->pool, (size_t)slots[r]),
                      e->seq[rows[r]].pos);
  }
  free(lg), free(one);
}

/* A packed prefill/continuation through the pool: sequences seqs[i]
 * (SA..SD, or -1 - k for a stand-alone sequence without slot) with len[i]
 * tokens, slots slot_of[seq]; against each alone (the same algorithm). */
static void pool_packed(pool_env *e, const int *seqs, const size_t *len,
                        size_t n, const int32_t *slot_of, retcl_algorithm a,
                        int last_only, const char *when) {
  const size_t V = e->V;
  size_t off[8] = {0};
  int32_t slots[8];
  for (size_t i = 0; i < n; ++i) {
    off[i + 1] = off[i] + len[i];
    slots[i] = seqs[i] < 0 ? -1 : slot_of[seqs[i]];
  }
  const size_t T = off[n], rows = last_only ? n : T;
  int32_t *tok = random_tokens(T, V);
  float *lg = tu_alloc(rows * V), *one = tu_alloc(T * V);
  poison(lg, rows * V);
  tu_ok(e->f.ctx, retcl_model_forward_packed(e->f.model, e->pool, slots, tok,
                                             off, n, a, 0, last_only, lg));
  char what[160];
  for (size_t i = 0; i < n; ++i) {
    if (seqs[i] >= 0) {
      alone_forward(e, seqs[i], tok + off[i], len[i], a, one);
      ck_assert_uint_eq(retcl_state_pool_position(e->pool, (size_t)slots[i]),
                        e->seq[seqs[i]].pos);
    } else {
      tu_ok(e->f.ctx, retcl_model_forward(e->f.model, NULL, tok + off[i], 1,
                                          len[i], a, 0, one));
    }
    snprintf(what, sizeof what, "%s: sequence %zu (%c, slot %d, len %zu)",
             when, i, seqs[i] >= 0 ? SEQ_NAME[seqs[i]] : '-', slots[i], len[i]);
    if (last_only)
      assert_close_f(what, lg + i * V, one + (len[i] - 1) * V, V, POOL_TOL);
    else
      assert_close_f(what, lg + off[i] * V, one, len[i] * V, POOL_TOL);
  }
  free(tok), free(lg), free(one);
}

START_TEST(pool_join_and_leave_equals_alone_decoding) {
  pool_env e;
  memset(&e, 0, sizeof e);
  retcl_model_config cfg = tu_model_config(32, 48, 2, 64, 2, 53);
  fixture_open(&e.f, cfg);
  e.V = cfg.vocab_size;
  const size_t NS = 5;
  tu_ok(e.f.ctx, retcl_state_pool_create(e.f.model, NS, &e.pool));
  ck_assert_uint_eq(retcl_state_pool_slots(e.pool), NS);
  ck_assert_uint_eq(retcl_state_pool_bytes(e.pool),
                    NS * cfg.layers * cfg.heads * (cfg.embed_dim / cfg.heads) *
                        (cfg.value_embed_dim / cfg.heads) * sizeof(float));
  size_t want[5] = {0};
  expect_positions(&e, want, NS, "fresh pool");
  for (int s = 0; s < 4; ++s) alone_open(&e, s);
  /* A in slot 2, B in 0, C later in A's slot after A leaves */
  int32_t slot_of[4] = {2, 0, 2, -1};

  /* 1. prefill A (7 tokens, chunkwise) into slot 2 */
  {
    const int seqs[1] = {SA};
    const size_t len[1] = {7};
    pool_packed(&e, seqs, len, 1, slot_of, RETCL_ALGO_CHUNKWISE, 1,
                "prefill A into slot 2");
    want[2] = 7;
    expect_positions(&e, want, NS, "after A's prefill");
  }
  /* 2. decode A alone in the batch: rows skip around it */
  for (int k = 0; k < 2; ++k) {
    const int rows[3] = {-1, SA, -1};
    pool_step(&e, rows, 3, slot_of, "decode A");
  }
  /* 3. prefill B into slot 0 (parallel, all logits) while A runs, packed
   *    with a stand-alone sequence D that keeps no state */
  {
    const int seqs[2] = {SB, -1};
    const size_t len[2] = {12, 3};
    pool_packed(&e, seqs, len, 2, slot_of, RETCL_ALGO_PARALLEL, 0,
                "prefill B into slot 0 with a stand-alone sequence");
    want[0] = 12;
    want[2] = 9;
    expect_positions(&e, want, NS, "after B's prefill");
  }
  /* 4. decode A and B together, B's row first */
  for (int k = 0; k < 3; ++k) {
    const int rows[2] = {SB, SA};
    pool_step(&e, rows, 2, slot_of, "decode B, A");
  }
  want[0] = 15, want[2] = 12;
  expect_positions(&e, want, NS, "after decoding A and B");
  /* 5. several tokens each through the pool, recurrent, A before B */
  {
    const int seqs[2] = {SA, SB};
    const size_t len[2] = {2, 3};
    pool_packed(&e, seqs, len, 2, slot_of, RETCL_ALGO_RECURRENT, 0,
                "recurrent continuation of A and B");
    want[0] = 18, want[2] = 14;
  }
  /* 6. failed calls change no slot: a bad token in one row, chunkwise
   *    continuing a non-empty slot next to an empty one */
  {
    int32_t slots[2] = {2, 0}, tok[2] = {1, (int32_t)e.V};
    float *lg = tu_alloc(2 * e.V);
    poison(lg, 2 * e.V);
    tu_assert_status(e.f.ctx, retcl_model_decode_step(e.f.model, e.pool, slots,
                                                      tok, 2, lg),
                     RETCL_ERROR_INVALID_ARGUMENT);
    assert_nan_row("logits of a failed decode step", lg, 2 * e.V);
    expect_positions(&e, want, NS, "after a failed decode step");
    int32_t pslots[2] = {4, 0};
    int32_t ptok[5] = {1, 2, 3, 4, 5};
    size_t off[3] = {0, 3, 5};
    tu_assert_status(e.f.ctx,
                     retcl_model_forward_packed(e.f.model, e.pool, pslots, ptok,
                                                off, 2, RETCL_ALGO_CHUNKWISE, 0,
                                                0, lg),
                     RETCL_ERROR_UNSUPPORTED);
    expect_positions(&e, want, NS, "after an unsupported packed call");
    assert_nan_row("logits of a failed packed call", lg, 2 * e.V);
    free(lg);
  }
  /* ... and the states are intact: decoding goes on as alone */
  {
    const int rows[2] = {SA, SB};
    pool_step(&e, rows, 2, slot_of, "decode A, B after failed calls");
    want[0] = 19, want[2] = 15;
  }
  /* 7. A leaves: a step without it, then its slot is reset */
  {
    const int rows[2] = {SB, -1};
    pool_step(&e, rows, 2, slot_of, "decode B, A gone");
    want[0] = 20;
    tu_ok(e.f.ctx, retcl_state_pool_reset(e.pool, 2));
    want[2] = 0;
    expect_positions(&e, want, NS, "after resetting A's slot");
  }
  /* 8. C joins the reset slot: a recurrent prefill starts from an empty
   *    state (a stale one would show in every logit) */
  {
    const int seqs[1] = {SC};
    const size_t len[1] = {9};
    pool_packed(&e, seqs, len, 1, slot_of, RETCL_ALGO_RECURRENT, 1,
                "prefill C into A's reset slot (recurrent)");
    want[2] = 9;
    expect_positions(&e, want, NS, "after C's prefill");
  }
  /* 9. decode B and C, a skipped row between them */
  for (int k = 0; k < 3; ++k) {
    const int rows[3] = {SC, -1, SB};
    pool_step(&e, rows, 3, slot_of, "decode C, -, B");
  }
  want[0] = 23, want[2] = 12;
  expect_positions(&e, want, NS, "at the end");
  /* 10. a chunkwise prefill into a reset slot is allowed again */
  tu_ok(e.f.ctx, retcl_state_pool_reset(e.pool, 0));
  {
    int32_t slot_b[4] = {2, 0, 2, -1};
    retcl_decode_state_destroy(e.seq[SB].st);
    alone_open(&e, SB);
    const int seqs[1] = {SB};
    const size_t len[1] = {10};
    pool_packed(&e, seqs, len, 1, slot_b, RETCL_ALGO_CHUNKWISE, 0,
                "B restarted in its reset slot (chunkwise)");
  }
  for (int s = 0; s < 4; ++s) retcl_decode_state_destroy(e.seq[s].st);
  retcl_state_pool_destroy(e.pool);
  fixture_close(&e.f);
}
END_TEST

/* ---- rejections ---------------------------------------------------------------- */

/* The message must name one of the '|'-separated words. */
static void expect_words(retcl_context *ctx, const char *what,
                         const char *words) {
  const char *msg = retcl_last_error(ctx);
  char buf[128];
  snprintf(buf, sizeof buf, "%s", words);
  for (char *w = strtok(buf, "|"); w; w = strtok(NULL, "|"))
    if (strstr(msg, w)) {
      printf("rejected (%s): %s\n", what, msg);
      return;
    }
  ck_abort_msg("%s: message \"%s\" names none of \"%s\"", what, msg, words);
}

#define EXPECT(ctx, call, status, what, words)                             \
  do {                                                                     \
    tu_assert_status(ctx, call, status);                                   \
    expect_words(ctx, what, words);                                        \
  } while (0)

START_TEST(rejects_bad_calls_and_changes_nothing) {
  retcl_model_config cfg = tu_model_config(16, 16, 2, 32, 1, 20);
  pool_env e;
  memset(&e, 0, sizeof e);
  fixture_open(&e.f, cfg);
  retcl_context *ctx = e.f.ctx;
  retcl_model *m = e.f.model;
  e.V = cfg.vocab_size;
  const size_t V = e.V;

  /* pool creation and queries */
  retcl_state_pool *p = NULL;
  tu_assert_status(ctx, retcl_state_pool_create(m, 0, &p),
                   RETCL_ERROR_INVALID_SIZE);
  tu_assert_status(ctx, retcl_state_pool_create(m, ((size_t)1 << 20) + 1, &p),
                   RETCL_ERROR_INVALID_SIZE);
  ck_assert_ptr_null(p);
  tu_assert_status(ctx, retcl_state_pool_create(m, 3, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_int_eq(retcl_state_pool_create(NULL, 3, &p),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_uint_eq(retcl_state_pool_slots(NULL), 0);
  retcl_state_pool_destroy(NULL);
  tu_ok(ctx, retcl_state_pool_create(m, 3, &e.pool));
  ck_assert_uint_eq(retcl_state_pool_position(e.pool, 3), 0);
  tu_assert_status(ctx, retcl_state_pool_reset(e.pool, 3),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_int_eq(retcl_state_pool_reset(NULL, 0),
                   RETCL_ERROR_INVALID_ARGUMENT);

  /* two live sequences, P in slot 1 and Q in slot 0, and their alone twins */
  for (int s = 0; s < 2; ++s) alone_open(&e, s);
  int32_t slot_of[4] = {1, 0, -1, -1};
  {
    const int seqs[2] = {SA, SB};
    const size_t len[2] = {4, 6};
    pool_packed(&e, seqs, len, 2, slot_of, RETCL_ALGO_CHUNKWISE, 1, "prefill");
  }
  size_t want[3] = {6, 4, 0};
  expect_positions(&e, want, 3, "after the prefill");

  int32_t tok[6] = {1, 2, 3, 4, 5, 6};
  float *lg = tu_alloc(6 * V);
  poison(lg, 6 * V);
  const retcl_algorithm R = RETCL_ALGO_RECURRENT;
  /* forward_packed: offsets */
  {
    size_t off[3] = {1, 3, 6};
    int32_t sl[2] = {2, -1};
    EXPECT(ctx, retcl_model_forward_packed(m, e.pool, sl, tok, off, 2, R, 0, 0, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "offsets[0] = 1", "offsets");
    off[0] = 0, off[1] = 7;
    EXPECT(ctx, retcl_model_forward_packed(m, e.pool, sl, tok, off, 2, R, 0, 0, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "decreasing offsets", "offsets");
    off[1] = 3, off[2] = 3;
    EXPECT(ctx, retcl_model_forward_packed(m, e.pool, sl, tok, off, 2, R, 0, 0, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "empty sequence", "offsets|empty");
    off[2] = 6;
    EXPECT(ctx, retcl_model_forward_packed(m, e.pool, sl, tok, NULL, 2, R, 0, 0, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "NULL offsets", "offsets");
    {
      const retcl_status z =
          retcl_model_forward_packed(m, NULL, NULL, tok, off, 0, R, 0, 0, lg);
      ck_assert_msg(z == RETCL_ERROR_INVALID_SIZE ||
                        z == RETCL_ERROR_INVALID_ARGUMENT,
                    "0 sequences gave %d (%s)", (int)z, retcl_last_error(ctx));
    }
    expect_words(ctx, "0 sequences", "sequences|offsets");
    /* slots */
    sl[0] = 3;
    EXPECT(ctx, retcl_model_forward_packed(m, e.pool, sl, tok, off, 2, R, 0, 0, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "slot 3 of 3", "slot");
    sl[0] = -2;
    EXPECT(ctx, retcl_model_forward_packed(m, e.pool, sl, tok, off, 2, R, 0, 0, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "slot -2", "slot");
    sl[0] = 1, sl[1] = 1;
    EXPECT(ctx, retcl_model_forward_packed(m, e.pool, sl, tok, off, 2, R, 0, 0, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "duplicate slot", "slot");
    sl[0] = 2, sl[1] = -1;
    /* tokens */
    tok[4] = (int32_t)V;
    EXPECT(ctx, retcl_model_forward_packed(m, e.pool, sl, tok, off, 2, R, 0, 0, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "token = vocab", "tokens[4]|token");
    tok[4] = -1;
    EXPECT(ctx, retcl_model_forward_packed(m, e.pool, sl, tok, off, 2, R, 0, 0, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "token -1", "tokens[4]|token");
    tok[4] = 5;
    /* continuing a non-empty slot needs the recurrent algorithm */
    sl[0] = 1;
    EXPECT(ctx, retcl_model_forward_packed(m, e.pool, sl, tok, off, 2,
                                           RETCL_ALGO_CHUNKWISE, 0, 0, lg),
           RETCL_ERROR_UNSUPPORTED, "chunkwise on a non-empty slot",
           "chunkwise|recurrent|slot");
    EXPECT(ctx, retcl_model_forward_packed(m, e.pool, sl, tok, off, 2,
                                           RETCL_ALGO_PARALLEL, 0, 0, lg),
           RETCL_ERROR_UNSUPPORTED, "parallel on a non-empty slot",
           "parallel|recurrent|slot");
    /* a pool of another model (the same checkpoint, loaded again) */
    retcl_model *m2 = NULL;
    retcl_state_pool *p2 = NULL;
    tu_ok(ctx, retcl_model_load(ctx, e.f.dir, &m2));
    tu_ok(ctx, retcl_state_pool_create(m2, 3, &p2));
    sl[0] = 2;
    EXPECT(ctx, retcl_model_forward_packed(m, p2, sl, tok, off, 2, R, 0, 0, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "pool of another model", "pool");
    int32_t ds[2] = {0, 1};
    EXPECT(ctx, retcl_model_decode_step(m, p2, ds, tok, 2, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "decode: pool of another model", "pool");
    ck_assert_uint_eq(retcl_state_pool_position(p2, 0), 0);
    retcl_state_pool_destroy(p2);
    retcl_model_destroy(m2);
    EXPECT(ctx, retcl_model_forward_packed(m, e.pool, sl, NULL, off, 2, R, 0, 0, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "NULL tokens", "tokens");
  }
  /* decode_step */
  {
    int32_t ds[3] = {0, 3, -1};
    EXPECT(ctx, retcl_model_decode_step(m, e.pool, ds, tok, 3, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "decode: slot 3 of 3", "slot");
    ds[1] = -2;
    EXPECT(ctx, retcl_model_decode_step(m, e.pool, ds, tok, 3, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "decode: slot -2", "slot");
    ds[1] = 0;
    EXPECT(ctx, retcl_model_decode_step(m, e.pool, ds, tok, 3, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "decode: duplicate slot", "slot");
    ds[1] = 1;
    tok[1] = (int32_t)V + 3;
    EXPECT(ctx, retcl_model_decode_step(m, e.pool, ds, tok, 3, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "decode: token out of vocab",
           "tokens[1]|token");
    tok[1] = 2;
    EXPECT(ctx, retcl_model_decode_step(m, e.pool, NULL, tok, 3, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "decode: NULL slots", "slots");
    EXPECT(ctx, retcl_model_decode_step(m, e.pool, ds, tok, 3, NULL),
           RETCL_ERROR_INVALID_ARGUMENT, "decode: NULL logits", "logits");
    EXPECT(ctx, retcl_model_decode_step(m, NULL, ds, tok, 3, lg),
           RETCL_ERROR_INVALID_ARGUMENT, "decode: NULL pool", "pool");
    const retcl_status s0 = retcl_model_decode_step(m, e.pool, ds, tok, 0, lg);
    ck_assert_msg(s0 == RETCL_ERROR_INVALID_SIZE ||
                      s0 == RETCL_ERROR_INVALID_ARGUMENT,
                  "decode: rows 0 gave %d (%s)", (int)s0, retcl_last_error(ctx));
  }
  /* nothing written, no slot moved, states intact */
  assert_nan_row("logits of rejected calls", lg, 6 * V);
  expect_positions(&e, want, 3, "after the rejected calls");
  {
    const int rows[3] = {-1, SB, SA};
    pool_step(&e, rows, 3, slot_of, "decode after the rejected calls");
  }
  /* a row that skips needs no valid token, even with every row skipped */
  {
    int32_t ds[2] = {-1, -1}, bad[2] = {-5, (int32_t)V};
    poison(lg, 2 * V);
    tu_ok(ctx, retcl_model_decode_step(m, e.pool, ds, bad, 2, lg));
    assert_nan_row("all rows skipped", lg, 2 * V);
    want[0] = 7, want[1] = 5;
    expect_positions(&e, want, 3, "after an all-skipped step");
  }
  free(lg);
  for (int s = 0; s < 2; ++s) retcl_decode_state_destroy(e.seq[s].st);
  retcl_state_pool_destroy(e.pool);
  fixture_close(&e.f);
}
END_TEST

int main(void) {
  Suite *s = suite_create("model_pool");
  TCase *tc = tcase_create("packed");
  tcase_add_test(tc, forward_packed_equals_alone_every_algorithm);
  tcase_add_test(tc, forward_packed_explicit_chunk_one_sequence);
  suite_add_tcase(s, tc);
  TCase *pool = tcase_create("pool");
  tcase_add_test(pool, pool_join_and_leave_equals_alone_decoding);
  tcase_add_test(pool, rejects_bad_calls_and_changes_nothing);
  suite_add_tcase(s, pool);
  return tu_run_suite(s);
}
