/* test_ref_model.c - checks of the double-precision RetNet reference
 * (reference/ref_model.c) by itself, with no kernel involved: it is the
 * oracle of the model tests, so it gets tested from other directions:
 * - the double-input entry points of rotation (in place, as the layer
 *   calls it), retention and group norm that the model runs on, against
 *   the float entry points the op tests use, on float-valued inputs;
 * - a single-token model written out by hand from docs/design.md §1.6 (at T = 1 the
 *   rotation is the identity and retention is a scaled v, so every weight's
 *   wiring, the residual α and each config flag can be checked directly);
 * - the three torchscale algorithms agree after the group norm, as far as
 *   its eps allows, and almost exactly when eps is tiny;
 * - causality, batch independence, and the rel-pos buffers against the
 *   formulas they replace;
 * - every combination of the config flags gives finite logits. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

static retcl_model_config small_config(void) {
  retcl_model_config c;
  memset(&c, 0, sizeof c);
  c.embed_dim = 32;       /* H 2 → Dk 16 */
  c.value_embed_dim = 48; /* Dv 24 ≠ Dk */
  c.heads = 2;
  c.ffn_dim = 40;
  c.layers = 2;
  c.vocab_size = 97;
  c.activation = RETCL_ACT_GELU;
  c.layernorm_eps = 1e-6f;
  c.no_scale_embedding = 1;
  c.layernorm_embedding = 0;
  c.deepnorm = 0;
  c.share_embed = 0;
  c.chunk_size = 8;
  return c;
}

static int32_t *random_tokens(size_t n, size_t V) {
  int32_t *t = malloc(n * sizeof *t);
  ck_assert_ptr_nonnull(t);
  for (size_t i = 0; i < n; ++i) {
    size_t id = (size_t)tu_uniform(0, (double)V);
    t[i] = (int32_t)(id < V ? id : V - 1);
  }
  return t;
}

/* ‖a − b‖ / ‖b‖ in double. */
static double rel_diff(const double *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

static double max_abs_diff(const double *a, const double *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = fabs(a[i] - b[i]);
    if (!(d <= m)) m = d; /* NaN propagates */
  }
  return m;
}

static int all_finite(const double *x, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* ---- the double-input steps against the shared references -------------- */

static double *widen(const float *x, size_t n) {
  double *y = tu_alloc_d(n);
  for (size_t i = 0; i < n; ++i) y[i] = x[i];
  return y;
}

/* Same float-valued inputs through the two entry points of one
 * implementation: equal up to rounding (observed exactly equal); 1e-12
 * still catches a wrapper that passes a wrong argument. */
#define STEP_TOL 1e-12

START_TEST(rotation_matches_reference) {
  const size_t B = 2, T = 70, H = 3;
  const size_t dims[] = {2, 6, 16};
  for (size_t di = 0; di < 3; ++di) {
    const size_t Dk = dims[di], n = B * T * H * Dk;
    float *x = tu_alloc(n), theta[8];
    tu_fill_uniform(x, n, -2, 2);
    tu_fill_uniform(theta, Dk / 2, 0, 1.5);
    double *want = tu_alloc_d(n), *got = widen(x, n);
    for (int own = 0; own < 2; ++own) {
      const float *th = own ? theta : NULL;
      ref_rotate(x, want, B, T, H, Dk, RETCL_LAYOUT_TOKEN_MAJOR, 0, th, 0, 0);
      free(got);
      got = widen(x, n);
      ref_rotate_d(got, got, B, T, H, Dk, RETCL_LAYOUT_TOKEN_MAJOR, 0, th, 0,
                   0);
      double e = rel_diff(got, want, n);
      ck_assert_msg(e < STEP_TOL, "Dk %zu theta %d: %.3g", Dk, own, e);
    }
    free(x);
    free(want);
    free(got);
  }
}
END_TEST

/* Every algorithm, chunk sizes that do and don't divide T and one above it,
 * inputs small enough that a_t clamps to 1 and large enough that parallel's
 * 5e4 clamp and chunkwise's r act. */
START_TEST(retention_matches_reference) {
  const size_t B = 2, T = 41, H = 3, Dk = 8, Dv = 12;
  const size_t nq = B * T * H * Dk, nv = B * T * H * Dv;
  float *q = tu_alloc(nq), *k = tu_alloc(nq), *v = tu_alloc(nv);
  const float log_decay[3] = {(float)log(1 - 1.0 / 32),
                              (float)log(1 - 1.0 / 64), (float)log(0.5)};
  const double ranges[] = {0.05, 1, 300};
  double *want = tu_alloc_d(nv), *got = tu_alloc_d(nv);
  for (size_t ri = 0; ri < 3; ++ri) {
    tu_fill_uniform(q, nq, -ranges[ri], ranges[ri]);
    tu_fill_uniform(k, nq, -ranges[ri], ranges[ri]);
    tu_fill_uniform(v, nv, -1, 1);
    double *qd = widen(q, nq), *kd = widen(k, nq), *vd = widen(v, nv);
    const struct { retcl_algorithm a; size_t C; } runs[] = {
        {RETCL_ALGO_PARALLEL, 0},  {RETCL_ALGO_RECURRENT, 0},
        {RETCL_ALGO_CHUNKWISE, 1}, {RETCL_ALGO_CHUNKWISE, 8},
        {RETCL_ALGO_CHUNKWISE, 41}, {RETCL_ALGO_CHUNKWISE, 64}};
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; ++r) {
      ref_retention_torchscale(runs[r].a, q, k, v, log_decay, NULL, 0, want,
                               NULL, B, T, H, Dk, Dv,
                               RETCL_LAYOUT_TOKEN_MAJOR, runs[r].C);
      ref_retention_torchscale_d(runs[r].a, qd, kd, vd, log_decay, NULL, 0,
                                 got, NULL, B, T, H, Dk, Dv,
                                 RETCL_LAYOUT_TOKEN_MAJOR, runs[r].C);
      double e = rel_diff(got, want, nv);
      ck_assert_msg(e < STEP_TOL, "range %g algo %d C %zu: %.3g (seed %llu)",
                    ranges[ri], (int)runs[r].a, runs[r].C, e,
                    (unsigned long long)tu_seed());
    }
    free(qd), free(kd), free(vd);
  }
  free(q), free(k), free(v), free(want), free(got);
}
END_TEST

START_TEST(group_norm_matches_reference) {
  const size_t B = 2, T = 5, H = 3, Dv = 7, n = B * T * H * Dv;
  float *x = tu_alloc(n), *g = tu_alloc(n);
  tu_fill_uniform(x, n, -1e-3, 1e-3); /* comparable with eps: eps matters */
  tu_fill_uniform(g, n, -4, 4);
  double *want = tu_alloc_d(n), *got = tu_alloc_d(n);
  double *xd = widen(x, n), *gd = widen(g, n);
  ref_group_norm_gate(x, g, NULL, NULL, want, B, T, H, Dv,
                      RETCL_LAYOUT_TOKEN_MAJOR, RETCL_NORM_RMS,
                      RETCL_GATE_SWISH, 1e-6);
  ref_group_norm_gate_d(xd, gd, NULL, NULL, got, B, T, H, Dv,
                        RETCL_LAYOUT_TOKEN_MAJOR, RETCL_NORM_RMS,
                        RETCL_GATE_SWISH, 1e-6);
  double e = rel_diff(got, want, n);
  ck_assert_msg(e < STEP_TOL, "group norm: %.3g", e);
  free(x), free(g), free(want), free(got), free(xd), free(gd);
}
END_TEST

/* ---- hand-written single-token model ------------------------------------ */

static void hand_rms(const double *x, const float *w, double *y, size_t d,
                     double eps) {
  double ss = 0;
  for (size_t i = 0; i < d; ++i) ss += x[i] * x[i];
  double inv = 1 / sqrt(ss / d + eps);
  for (size_t i = 0; i < d; ++i) y[i] = x[i] * inv * (w ? w[i] : 1.0f);
}

static double hand_dot_row(const float *W, size_t row, size_t in,
                           const double *x) {
  double s = 0;
  for (size_t i = 0; i < in; ++i) s += W[row * in + i] * x[i];
  return s;
}

/* Logits [V] of one token at position 0, from docs/design.md §1.4-1.6 with T = 1:
 * rotation at n = 0 is the identity; with A = q·k (decay normalisers are
 * sqrt(1) = 1, chunkwise's r is 1 and R is 0) the parallel and chunkwise
 * forms give o = A v / max(1, |A|) and the recurrent form (c_1 = 1) gives
 * o = A v; then RMS group norm per head, swish gate, out proj. */
static void hand_single_token(const ref_model *m, int32_t tok,
                              retcl_algorithm algo, double *out) {
  const retcl_model_config *c = &m->cfg;
  const size_t d = c->embed_dim, dv = c->value_embed_dim, H = c->heads,
               F = c->ffn_dim, Dk = d / H, Dv = dv / H;
  const double eps = c->layernorm_eps;
  const double alpha = c->deepnorm ? pow(2.0 * c->layers, 0.25) : 1.0;
  double *x = tu_alloc_d(d), *h = tu_alloc_d(d), *q = tu_alloc_d(d),
         *k = tu_alloc_d(d), *v = tu_alloc_d(dv), *g = tu_alloc_d(dv),
         *o = tu_alloc_d(dv), *f = tu_alloc_d(F);
  for (size_t i = 0; i < d; ++i)
    x[i] = m->embed[(size_t)tok * d + i] *
           (c->no_scale_embedding ? 1.0 : sqrt((double)d));
  if (c->layernorm_embedding) {
    hand_rms(x, m->emb_norm, h, d, eps);
    memcpy(x, h, d * sizeof *x);
  }
  for (size_t l = 0; l < c->layers; ++l) {
    const ref_layer *L = &m->layers[l];
    hand_rms(x, L->ret_norm, h, d, eps);
    for (size_t r = 0; r < d; ++r) {
      q[r] = hand_dot_row(L->wq, r, d, h);
      k[r] = hand_dot_row(L->wk, r, d, h) / sqrt((double)Dk);
    }
    for (size_t r = 0; r < dv; ++r) {
      v[r] = hand_dot_row(L->wv, r, d, h);
      g[r] = hand_dot_row(L->wg, r, d, h);
    }
    for (size_t hh = 0; hh < H; ++hh) {
      double A = 0;
      for (size_t i = 0; i < Dk; ++i) A += q[hh * Dk + i] * k[hh * Dk + i];
      double a = algo == RETCL_ALGO_RECURRENT || fabs(A) < 1 ? 1 : fabs(A);
      double row[1024];
      ck_assert(Dv <= 1024);
      for (size_t j = 0; j < Dv; ++j) row[j] = A * v[hh * Dv + j] / a;
      hand_rms(row, NULL, row, Dv, eps);
      for (size_t j = 0; j < Dv; ++j) {
        double gg = g[hh * Dv + j];
        o[hh * Dv + j] = gg / (1 + exp(-gg)) * row[j];
      }
    }
    for (size_t r = 0; r < d; ++r)
      x[r] = alpha * x[r] + hand_dot_row(L->wo, r, dv, o);
    hand_rms(x, L->ffn_norm, h, d, eps);
    for (size_t r = 0; r < F; ++r) {
      double z = hand_dot_row(L->fc1, r, d, h);
      double act = c->activation == RETCL_ACT_SWISH
                       ? z / (1 + exp(-z))
                       : 0.5 * z * (1 + erf(z / sqrt(2.0)));
      f[r] = act * hand_dot_row(L->gate, r, d, h);
    }
    for (size_t r = 0; r < d; ++r)
      x[r] = alpha * x[r] + hand_dot_row(L->fc2, r, F, f);
  }
  hand_rms(x, m->final_norm, h, d, eps);
  const float *W = c->share_embed ? m->embed : m->out_proj;
  for (size_t r = 0; r < c->vocab_size; ++r) out[r] = hand_dot_row(W, r, d, h);
  free(x), free(h), free(q), free(k), free(v), free(g), free(o), free(f);
}

/* Every flag combination, each token of a small vocabulary, each algorithm:
 * ref_model_forward equals the hand-written model. Both are double
 * throughout and differ in summation order only: 1e-10 (observed ~1e-14;
 * a misplaced weight, scale, α or activation gives 1e-2 and more). */
START_TEST(single_token_matches_hand_model) {
  for (int flags = 0; flags < 32; ++flags) {
    retcl_model_config c = small_config();
    c.deepnorm = flags & 1;
    c.share_embed = (flags >> 1) & 1;
    c.layernorm_embedding = (flags >> 2) & 1;
    c.no_scale_embedding = !((flags >> 3) & 1);
    c.activation = (flags >> 4) & 1 ? RETCL_ACT_SWISH : RETCL_ACT_GELU;
    c.layers = 1 + (size_t)(flags % 3);
    c.vocab_size = 11;
    ref_model m;
    ref_model_random(&m, &c, flags & 1, tu_rng());
    double *want = tu_alloc_d(c.vocab_size), *got = tu_alloc_d(c.vocab_size);
    for (int32_t tok = 0; tok < (int32_t)c.vocab_size; ++tok) {
      for (int algo = 0; algo < 3; ++algo) {
        hand_single_token(&m, tok, (retcl_algorithm)algo, want);
        ref_model_forward(&m, &tok, 1, 1, (retcl_algorithm)algo, 4, got);
        double e = rel_diff(got, want, c.vocab_size);
        ck_assert_msg(e < 1e-10,
                      "flags %d token %d algo %d: rel diff %.3g (seed %llu)",
                      flags, tok, algo, e, (unsigned long long)tu_seed());
      }
    }
    free(want);
    free(got);
    ref_model_free(&m);
  }
}
END_TEST

/* ---- the algorithms against each other ---------------------------------- */

/* Largest relative difference of recurrent and chunkwise (two chunk sizes,
 * neither dividing T) logits from the parallel ones. */
static double forms_disagreement(const retcl_model_config *c, size_t B,
                                 size_t T, int with_rel_pos, int print) {
  ref_model m;
  ref_model_random(&m, c, with_rel_pos, tu_rng());
  int32_t *tok = random_tokens(B * T, c->vocab_size);
  const size_t n = B * T * c->vocab_size;
  double *par = tu_alloc_d(n), *other = tu_alloc_d(n);
  ref_model_forward(&m, tok, B, T, RETCL_ALGO_PARALLEL, 0, par);
  ck_assert(all_finite(par, n));
  double worst = 0;
  const struct { retcl_algorithm algo; size_t chunk; } runs[] = {
      {RETCL_ALGO_RECURRENT, 0},
      {RETCL_ALGO_CHUNKWISE, 8},
      {RETCL_ALGO_CHUNKWISE, 5},
      {RETCL_ALGO_CHUNKWISE, T + 3}};
  for (size_t r = 0; r < sizeof runs / sizeof runs[0]; ++r) {
    ref_model_forward(&m, tok, B, T, runs[r].algo, runs[r].chunk, other);
    double e = rel_diff(other, par, n);
    if (print)
      printf("ref_model eps %.0e: %s (chunk %zu) vs parallel: rel diff %.3g\n",
             (double)c->layernorm_eps,
             runs[r].algo == RETCL_ALGO_RECURRENT ? "recurrent" : "chunkwise",
             runs[r].chunk, e);
    if (!(e <= worst)) worst = e;
  }
  free(tok);
  free(par);
  free(other);
  ref_model_free(&m);
  return worst;
}

/* With torchscale's eps 1e-6 the forms differ only through the group norm's
 * eps: a relative eps/(2·mean(x²)) per row, ~1e-5 on these activations
 * (worst seen over 300 seeds: 5.5e-5, chunkwise; rows with a small mean(x²)
 * make a tail, hence 3e-4). That they are the same function is shown to
 * 1e-15 by the next test. */
START_TEST(forms_agree_after_group_norm) {
  retcl_model_config c = small_config();
  double e = forms_disagreement(&c, 2, 37, 1, 1);
  ck_assert_msg(e < 3e-4, "forms differ by %.3g (seed %llu)", e,
                (unsigned long long)tu_seed());
}
END_TEST

/* With eps at 1e-20 the per-row rescalings cancel exactly, so the forms must
 * agree to double rounding (observed ~1e-14; 1e-9 leaves room for the
 * conditioning of q·k near 0): this shows each form is the same function,
 * not merely close. */
START_TEST(forms_agree_exactly_without_eps) {
  retcl_model_config c = small_config();
  c.layernorm_eps = 1e-20f;
  double e = forms_disagreement(&c, 2, 37, 0, 1);
  ck_assert_msg(e < 1e-9, "forms differ by %.3g (seed %llu)", e,
                (unsigned long long)tu_seed());
  /* More heads (γ close to 1), deepnorm, swish, a single layer. */
  c.embed_dim = 24, c.value_embed_dim = 40, c.heads = 8, c.layers = 1;
  c.deepnorm = 1, c.activation = RETCL_ACT_SWISH, c.share_embed = 1;
  e = forms_disagreement(&c, 3, 64, 1, 1);
  ck_assert_msg(e < 1e-9, "forms differ by %.3g (seed %llu)", e,
                (unsigned long long)tu_seed());
}
END_TEST

/* ---- causality and batch independence ----------------------------------- */

START_TEST(causal_and_batch_independent) {
  retcl_model_config c = small_config();
  ref_model m;
  ref_model_random(&m, &c, 1, tu_rng());
  const size_t B = 3, T = 23, t0 = 11, V = c.vocab_size;
  int32_t *tok = random_tokens(B * T, V), *alt = malloc(B * T * sizeof *alt);
  int32_t *prefix = malloc(B * t0 * sizeof *prefix);
  /* Same first t0 tokens, different later ones. */
  memcpy(alt, tok, B * T * sizeof *alt);
  for (size_t b = 0; b < B; ++b)
    for (size_t t = t0; t < T; ++t)
      alt[b * T + t] = (int32_t)((tok[b * T + t] + 1 + t) % V);
  for (size_t b = 0; b < B; ++b)
    memcpy(prefix + b * t0, tok + b * T, t0 * sizeof *prefix);
  double *full = tu_alloc_d(B * T * V), *other = tu_alloc_d(B * T * V),
         *pre = tu_alloc_d(B * t0 * V), *one = tu_alloc_d(T * V);
  for (int algo = 0; algo < 3; ++algo) {
    retcl_algorithm a = (retcl_algorithm)algo;
    ref_model_forward(&m, tok, B, T, a, 4, full);
    ref_model_forward(&m, alt, B, T, a, 4, other);
    ref_model_forward(&m, prefix, B, t0, a, 4, pre);
    for (size_t b = 0; b < B; ++b) {
      /* Rows before t0 identical; a later row has changed. */
      const double *fb = full + b * T * V, *ob = other + b * T * V;
      ck_assert_msg(max_abs_diff(ob, fb, t0 * V) <= 1e-12,
                    "algo %d: later tokens change earlier logits", algo);
      ck_assert_msg(max_abs_diff(ob + t0 * V, fb + t0 * V, (T - t0) * V) > 1e-3,
                    "algo %d: changed tokens changed nothing", algo);
      /* A shorter call gives the same first rows. */
      ck_assert_msg(max_abs_diff(pre + b * t0 * V, fb, t0 * V) <= 1e-12,
                    "algo %d: prefix logits differ", algo);
      /* Each sequence alone gives its rows of the batched call. */
      ref_model_forward(&m, tok + b * T, 1, T, a, 4, one);
      ck_assert_msg(max_abs_diff(one, fb, T * V) <= 1e-12,
                    "algo %d: batch row %zu differs when run alone", algo, b);
    }
  }
  free(tok), free(alt), free(prefix);
  free(full), free(other), free(pre), free(one);
  ref_model_free(&m);
}
END_TEST

/* ---- rel-pos buffers ----------------------------------------------------- */

/* The stored angle/decay buffers hold the formulas' values as float; a model
 * with them and one without must agree to that rounding (angle n·θ with
 * n < 64 and θ off by 6e-8 relative: ~1e-6). Changing the stored decay
 * must change the logits, so the buffers are really read. */
START_TEST(rel_pos_buffers_match_formulas) {
  retcl_model_config c = small_config();
  ref_model m;
  ref_model_random(&m, &c, 1, tu_rng());
  ck_assert_ptr_nonnull(m.angle);
  ck_assert_ptr_nonnull(m.decay);
  const size_t Dk = c.embed_dim / c.heads;
  ck_assert_float_eq(m.angle[0], 1.0f);
  ck_assert_float_eq(m.angle[1], 1.0f);
  ck_assert(fabs(m.angle[Dk - 1] - 1e-4) < 1e-9);
  ck_assert(fabs(m.decay[0] - log(1 - 1.0 / 32)) < 1e-8);
  const size_t B = 2, T = 50, n = B * T * c.vocab_size;
  int32_t *tok = random_tokens(B * T, c.vocab_size);
  double *with = tu_alloc_d(n), *without = tu_alloc_d(n);
  ref_model_forward(&m, tok, B, T, RETCL_ALGO_PARALLEL, 0, with);
  float *angle = m.angle, *decay = m.decay;
  m.angle = NULL, m.decay = NULL;
  ref_model_forward(&m, tok, B, T, RETCL_ALGO_PARALLEL, 0, without);
  double e = rel_diff(with, without, n);
  printf("ref_model: rel-pos buffers vs formulas: rel diff %.3g\n", e);
  ck_assert_msg(e < 1e-5, "buffers vs formulas: %.3g", e);
  m.angle = angle, m.decay = decay;
  m.decay[1] = (float)log(0.5);
  ref_model_forward(&m, tok, B, T, RETCL_ALGO_PARALLEL, 0, without);
  ck_assert_msg(rel_diff(with, without, n) > 1e-3, "decay buffer ignored");
  m.angle[2] = m.angle[3] = 0.3f;
  ref_model_forward(&m, tok, B, T, RETCL_ALGO_PARALLEL, 0, with);
  ck_assert_msg(rel_diff(with, without, n) > 1e-3, "angle buffer ignored");
  free(tok), free(with), free(without);
  ref_model_free(&m);

  /* Dk = 2: a single pair, θ_0 = 1. */
  c.embed_dim = 4, c.heads = 2, c.value_embed_dim = 6;
  ref_model_random(&m, &c, 1, tu_rng());
  ck_assert_float_eq(m.angle[0], 1.0f);
  ck_assert_float_eq(m.angle[1], 1.0f);
  ref_model_free(&m);
}
END_TEST

/* ---- flags --------------------------------------------------------------- */

/* Every flag combination, odd shapes (H = 1, Dk = 2, T = 1, vocab 300,
 * three layers), every algorithm: finite logits of the right size, and
 * weights allocated exactly as the config says. */
START_TEST(flag_combinations_finite) {
  const struct { size_t d, dv, H, F, L, V, B, T; } shapes[] = {
      {64, 64, 4, 128, 3, 300, 3, 64},
      {16, 24, 1, 20, 1, 50, 1, 1},
      {8, 12, 4, 8, 2, 13, 2, 9},
  };
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s)
    for (int flags = 0; flags < 16; ++flags) {
      retcl_model_config c = small_config();
      c.embed_dim = shapes[s].d, c.value_embed_dim = shapes[s].dv;
      c.heads = shapes[s].H, c.ffn_dim = shapes[s].F, c.layers = shapes[s].L;
      c.vocab_size = shapes[s].V;
      c.deepnorm = flags & 1;
      c.share_embed = (flags >> 1) & 1;
      c.layernorm_embedding = (flags >> 2) & 1;
      c.activation = (flags >> 3) & 1 ? RETCL_ACT_SWISH : RETCL_ACT_GELU;
      c.no_scale_embedding = flags % 3 != 0;
      ref_model m;
      ref_model_random(&m, &c, flags & 1, tu_rng());
      ck_assert(m.cfg.embed_dim == c.embed_dim);
      ck_assert((m.emb_norm != NULL) == (c.layernorm_embedding != 0));
      ck_assert((m.out_proj == NULL) == (c.share_embed != 0));
      ck_assert((m.angle != NULL) == (m.decay != NULL));
      ck_assert((m.angle != NULL) == (flags & 1));
      /* Only the largest shape with every algorithm: it is the slow one. */
      const size_t B = shapes[s].B, T = shapes[s].T,
                   n = B * T * c.vocab_size;
      int32_t *tok = random_tokens(B * T, c.vocab_size);
      double *out = tu_alloc_d(n + 1);
      out[n] = 12345.0; /* sentinel: nothing written past the logits */
      for (int algo = 0; algo < 3; ++algo) {
        if (s == 0 && flags % 4 != 0 && algo != RETCL_ALGO_PARALLEL) continue;
        ref_model_forward(&m, tok, B, T, (retcl_algorithm)algo, 7, out);
        ck_assert_msg(all_finite(out, n), "shape %zu flags %d algo %d", s,
                      flags, algo);
        ck_assert(out[n] == 12345.0);
        /* Logits are O(1): final RMSNorm then ±1/sqrt(d) projections. */
        double ss = 0;
        for (size_t i = 0; i < n; ++i) ss += out[i] * out[i];
        ck_assert_msg(sqrt(ss / n) > 1e-2 && sqrt(ss / n) < 1e2,
                      "shape %zu flags %d algo %d: rms logit %.3g", s, flags,
                      algo, sqrt(ss / n));
      }
      free(tok);
      free(out);
      ref_model_free(&m);
    }
}
END_TEST

int main(void) {
  Suite *s = suite_create("ref_model");
  TCase *tc = tcase_create("ref_model");
  tcase_add_test(tc, rotation_matches_reference);
  tcase_add_test(tc, retention_matches_reference);
  tcase_add_test(tc, group_norm_matches_reference);
  tcase_add_test(tc, single_token_matches_hand_model);
  tcase_add_test(tc, forms_agree_after_group_norm);
  tcase_add_test(tc, forms_agree_exactly_without_eps);
  tcase_add_test(tc, causal_and_batch_independent);
  tcase_add_test(tc, rel_pos_buffers_match_formulas);
  tcase_add_test(tc, flag_combinations_finite);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
