/* test_train_ops.c - the training ops (docs/design.md §1.7): the GLU and
 * embedding gradients, the cross-entropy and AdamW with clipping and the
 * schedule, against the double references of reference/ref_train_ops.c
 * (themselves checked against central differences of the double
 * forwards), with per-element fp32 error bounds derived below, outputs
 * poisoned with NaN first, bitwise determinism, and every refused call
 * (status, message, nothing written). The access pattern is the
 * environment's: scripts/test.sh runs this suite with the cpu and the gpu
 * patterns and under tests/params/odd-tiles.json. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref_train_ops.h"
#include "testutil.h"

/* The unit roundoff of fp32. */
#define U (1.0 / 16777216.0)
/* γ_k = k·u / (1 − k·u): the relative error bound of a k-term fp32 sum. */
static double gamma_k(double k) { return k * U / (1.0 - k * U); }

/* Floats of NaN written after every device tensor (and before it, at a
 * nonzero offset): still NaN afterwards, or something wrote out of range. */
#define GUARD 7

/* n floats from off into a new host array (testutil.h's guarded tensors:
 * everything outside [off, off + n) must still be NaN). */
static float *download_checked(retcl_context *ctx, cl_mem buf, size_t off,
                               size_t n, const char *what) {
  float *out = tu_alloc(n ? n : 1);
  tu_download_guarded(ctx, buf, off, n, GUARD, out, what);
  return out;
}

static double *widen(const float *x, size_t n) {
  double *y = tu_alloc_d(n ? n : 1);
  for (size_t i = 0; i < n; ++i) y[i] = x[i];
  return y;
}

/* Worst ratio error / bound seen by a test, reported with
 * RETCL_TEST_VERBOSE. */
static void report(const char *what, double worst) {
  if (getenv("RETCL_TEST_VERBOSE"))
    fprintf(stderr, "train_ops %s: worst error / bound = %.3g\n", what, worst);
}

/* Every element within its bound; returns the worst ratio. */
static double assert_within(const char *what, const float *got,
                            const double *ref, const double *bound,
                            size_t n) {
  double worst = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double err = fabs((double)got[i] - ref[i]);
    ck_assert_msg(err <= bound[i],
                  "%s[%zu]: got %.9g, reference %.9g, error %.3g > bound %.3g "
                  "(seed %llu)",
                  what, i, (double)got[i], ref[i], err, bound[i],
                  (unsigned long long)tu_seed());
    if (bound[i] > 0 && err / bound[i] > worst) worst = err / bound[i];
  }
  return worst;
}

/* ======================================================================== */
/* GLU backward                                                             */
/* ======================================================================== */

/* Per-element bounds of the device's d_a and d_g, first order in u = 2^-24
 * (the unit roundoff: a correctly rounded +, −, × has a relative error of
 * at most u; a builtin of k ulp, at most 2k·u), from OpenCL 1.2's accuracy
 * of the builtins: exp 3 ulp (6u), erfc 16 ulp (32u), division 2.5 ulp
 * (5u).
 *
 * act(x). gelu = 0.5·x·erfc(−x·c), c = 1/√2 rounded to fp32 (0.29u off):
 *   the argument y = −x/√2 carries a relative error δ ≤ 1.29u, which erfc
 *   amplifies by κ(y) = |y·erfc'(y)/erfc(y)|: κ ≤ 0.5 for x ≥ 0 and, from
 *   erfc(y) > 2e^(−y²)/(√π (y + sqrt(y² + 2))), κ < 2y² + √2·y = x² + |x|
 *   for x < 0. With erfc's 32u and the product: e_act = 1.3·(x² + |x| + 1)
 *   + 33. (At x = −11.3 that is 215u; PoCL's gelu is 167u off there, almost
 *   all of it κ·δ: erfc itself is within 1.2 ulp.) swish = x/(1 + e^(−x)):
 *   exp, add and division give e_act = 12 (−x is exact).
 * act'(x). gelu' = 0.5·erfc(−x·c) + x·(c'·exp(−x·x/2)): the first term as
 *   above; the second's exponent carries an absolute error (x²/2)·u, which
 *   exp turns into a relative one, plus 6u and three roundings (c', two
 *   products). The terms can cancel (gelu' = 0 near x = −0.75), so the
 *   bound is relative to M = Φ(x) + |x|·φ(x), not to gelu':
 *   |Δ| ≤ e_d·u·M, e_d = 1.3·(x² + |x| + 1) + 34. swish' = s·(1 + x·(1 − s)),
 *   s = σ(x) within 12u: 1 − s is within 12u·s + u·|1 − s|, and carrying
 *   that through the two products and the sum gives |Δ| ≤ 28u·M,
 *   M = s·(1 + |x|).
 * d_g = d_h·act(x): one more product, (e_act + 1)·u·|d_h·act(x)|.
 * d_a = d_h·g·act'(x): two more products, (e_d + 2)·u·|d_h·g|·M.
 * Results below FLT_MIN may be flushed to zero (the gelu tail erfc(21)
 * underflows): 1e-35 absolute covers that, for |x| ≤ 30 and |d_h|, |g| ≤ 1.
 * A wrong derivative, activation or index gives errors of 1e-3 and more,
 * far beyond these bounds. */
static void glu_bounds(retcl_activation act, const double *a, const double *g,
                       const double *dh, double *b_da, double *b_dg,
                       size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double x = a[i];
    double e_act, e_d, M;
    if (act == RETCL_ACT_GELU) {
      const double Phi = 0.5 * erfc(-x / sqrt(2.0));
      const double phi = exp(-0.5 * x * x) / sqrt(2.0 * 3.14159265358979323846);
      e_act = 1.3 * (x * x + fabs(x) + 1.0) + 33.0;
      e_d = 1.3 * (x * x + fabs(x) + 1.0) + 34.0;
      M = Phi + fabs(x) * phi;
    } else {
      const double s = 1.0 / (1.0 + exp(-x));
      e_act = 12.0;
      e_d = 28.0;
      M = s * (1.0 + fabs(x));
    }
    b_dg[i] = (e_act + 1.0) * U * fabs(dh[i] * ref_activation(act, x)) + 1e-35;
    b_da[i] = (e_d + 2.0) * U * fabs(dh[i] * g[i]) * M + 1e-35;
  }
}

/* The analytic double gradient against central differences of the double
 * forward, h = 1e-6·max(1, |a|): truncation O(h²) and cancellation
 * O(1e-16/h) are both far under the 1e-7 normwise tolerance. */
static void glu_check_reference(retcl_activation act, const double *a,
                                const double *g, const double *dh,
                                const double *da, const double *dg, size_t n) {
  double num_a = 0, den_a = 0, num_g = 0, den_g = 0;
  for (size_t i = 0; i < n; ++i) {
    const double ha = 1e-6 * fmax(1.0, fabs(a[i]));
    const double hg = 1e-6 * fmax(1.0, fabs(g[i]));
    const double fd_a = dh[i] *
                        (ref_activation(act, a[i] + ha) * g[i] -
                         ref_activation(act, a[i] - ha) * g[i]) /
                        (2 * ha);
    const double fd_g = dh[i] *
                        (ref_activation(act, a[i]) * (g[i] + hg) -
                         ref_activation(act, a[i]) * (g[i] - hg)) /
                        (2 * hg);
    num_a += (fd_a - da[i]) * (fd_a - da[i]);
    den_a += da[i] * da[i];
    num_g += (fd_g - dg[i]) * (fd_g - dg[i]);
    den_g += dg[i] * dg[i];
  }
  /* ‖fd − analytic‖ ≤ 1e-7 ‖analytic‖ for both gradients. */
  ck_assert_msg(sqrt(num_a) <= 1e-7 * sqrt(den_a) + 1e-300,
                "reference d_a vs central differences: %.3g relative",
                sqrt(num_a / den_a));
  ck_assert_msg(sqrt(num_g) <= 1e-7 * sqrt(den_g) + 1e-300,
                "reference d_g vs central differences: %.3g relative",
                sqrt(num_g / den_g));
}

typedef struct glu_case {
  size_t n;
  retcl_activation act;
  double range;  /* a in [-range, range] */
  int in_place;  /* d_a is a, d_g is g */
  int offsets;   /* every tensor at its own nonzero offset */
} glu_case;

static const glu_case glu_cases[] = {
    {1, RETCL_ACT_GELU, 3, 0, 0},
    {7, RETCL_ACT_SWISH, 3, 0, 1},
    {1031, RETCL_ACT_GELU, 6, 0, 0},
    {4099, RETCL_ACT_SWISH, 6, 1, 0},
    {3001, RETCL_ACT_GELU, 6, 1, 1},
    /* The tails: swish's exp(−x) overflows, gelu's erfc underflows. */
    {517, RETCL_ACT_SWISH, 30, 0, 1},
    {263, RETCL_ACT_GELU, 12, 0, 0},
};

START_TEST(glu_backward_matches_reference) {
  const glu_case *c = &glu_cases[_i];
  const size_t n = c->n;
  float *a = tu_alloc(n), *g = tu_alloc(n), *dh = tu_alloc(n);
  tu_fill_uniform(a, n, -c->range, c->range);
  tu_fill_uniform(g, n, -1, 1);
  tu_fill_uniform(dh, n, -1, 1);
  double *ad = widen(a, n), *gd = widen(g, n), *dhd = widen(dh, n);
  double *da = tu_alloc_d(n), *dg = tu_alloc_d(n);
  double *b_da = tu_alloc_d(n), *b_dg = tu_alloc_d(n);
  ref_glu_backward_d(ad, gd, dhd, da, dg, n, c->act);
  glu_check_reference(c->act, ad, gd, dhd, da, dg, n);
  glu_bounds(c->act, ad, gd, dhd, b_da, b_dg, n);

  retcl_context *ctx = tu_context();
  const size_t oa = c->offsets ? 3 : 0, og = c->offsets ? 5 : 0,
               oh = c->offsets ? 2 : 0, oda = c->offsets ? 9 : 0,
               odg = c->offsets ? 4 : 0;
  cl_mem ab = tu_upload_guarded(ctx, a, n, oa, GUARD),
         gb = tu_upload_guarded(ctx, g, n, og, GUARD);
  cl_mem hb = tu_upload_guarded(ctx, dh, n, oh, GUARD);
  cl_mem dab = c->in_place ? ab : tu_upload_guarded(ctx, NULL, n, oda, GUARD);
  cl_mem dgb = c->in_place ? gb : tu_upload_guarded(ctx, NULL, n, odg, GUARD);
  const size_t da_off = c->in_place ? oa : oda, dg_off = c->in_place ? og : odg;
  tu_ok(ctx, retcl_glu_backward(ctx, n, c->act, retcl_buf(ab, oa),
                                retcl_buf(gb, og), retcl_buf(hb, oh),
                                retcl_buf(dab, da_off), retcl_buf(dgb, dg_off),
                                0, NULL, NULL));
  float *got_a = download_checked(ctx, dab, da_off, n, "d_a");
  float *got_g = download_checked(ctx, dgb, dg_off, n, "d_g");
  /* Each element within its bound (glu_bounds). */
  const double w = fmax(assert_within("d_a", got_a, da, b_da, n),
                        assert_within("d_g", got_g, dg, b_dg, n));
  report("glu_backward", w);

  if (!c->in_place) {
    clReleaseMemObject(dab);
    clReleaseMemObject(dgb);
  }
  clReleaseMemObject(hb);
  clReleaseMemObject(gb);
  clReleaseMemObject(ab);
  retcl_context_destroy(ctx);
  free(got_a);
  free(got_g);
  free(a);
  free(g);
  free(dh);
  free(ad);
  free(gd);
  free(dhd);
  free(da);
  free(dg);
  free(b_da);
  free(b_dg);
}
END_TEST

/* ======================================================================== */
/* Embedding backward                                                       */
/* ======================================================================== */

typedef struct emb_case {
  size_t count, vocab, dim;
  float scale;
  int accumulate;
  int skewed;   /* most positions name one token */
  int offsets;
} emb_case;

static const emb_case emb_cases[] = {
    {1, 1, 1, 1.0f, 0, 0, 0},
    {37, 11, 13, 1.0f, 1, 0, 1},
    {200, 50, 33, 22.627417f, 0, 1, 0}, /* scale sqrt(512) */
    {9, 5, 1031, 0.5f, 1, 0, 0},        /* several column ranges per row */
    {64, 1000, 17, 1.0f, 0, 0, 1},      /* most rows named by nobody */
    {311, 7, 64, -1.5f, 1, 1, 0},
};

/* One call into a table that starts as `init`; returns the result. */
static float *emb_run(retcl_context *ctx, const emb_case *c,
                      const int32_t *tokens, const float *dx,
                      const float *init) {
  const size_t ox = c->offsets ? 3 : 0, ot = c->offsets ? 6 : 0;
  cl_mem xb = tu_upload_guarded(ctx, dx, c->count * c->dim, ox, GUARD);
  cl_mem tb = tu_upload_guarded(ctx, init, c->vocab * c->dim, ot, GUARD);
  tu_ok(ctx, retcl_embedding_backward(ctx, c->count, tokens, c->vocab, c->dim,
                                      c->scale, retcl_buf(xb, ox),
                                      c->accumulate, retcl_buf(tb, ot), 0,
                                      NULL, NULL));
  float *got = download_checked(ctx, tb, ot, c->vocab * c->dim, "d_table");
  clReleaseMemObject(tb);
  clReleaseMemObject(xb);
  return got;
}

START_TEST(embedding_backward_matches_reference) {
  const emb_case *c = &emb_cases[_i];
  const size_t nx = c->count * c->dim, nt = c->vocab * c->dim;
  int32_t *tokens = malloc(c->count * sizeof *tokens);
  for (size_t i = 0; i < c->count; ++i) {
    const int hot = c->skewed && tu_uniform(0, 1) < 0.75;
    tokens[i] = hot ? (int32_t)(c->vocab / 2)
                    : (int32_t)(tu_uniform(0, 1) * (double)c->vocab);
    if (tokens[i] >= (int32_t)c->vocab) tokens[i] = (int32_t)c->vocab - 1;
  }
  float *dx = tu_alloc(nx), *init = tu_alloc(nt);
  tu_fill_uniform(dx, nx, -1, 1);
  tu_fill_uniform(init, nt, -1, 1);

  /* Reference: the initial table (accumulate) or 0, plus the sums. */
  double *ref = tu_alloc_d(nt), *bound = tu_alloc_d(nt);
  double *dxd = widen(dx, nx);
  for (size_t i = 0; i < nt; ++i) ref[i] = c->accumulate ? init[i] : 0.0;
  ref_embedding_backward_d(tokens, c->count, c->dim, c->scale, dxd, ref);
  /* Bound: a row's k positions are summed in fp32 from 0 (γ_k of Σ|d_x|),
   * then scale·sum + old by one fma (u of the result). */
  size_t *uses = calloc(c->vocab, sizeof *uses);
  for (size_t i = 0; i < c->count; ++i) ++uses[tokens[i]];
  double *abs_sum = tu_alloc_d(nt);
  for (size_t i = 0; i < c->count; ++i)
    for (size_t d = 0; d < c->dim; ++d)
      abs_sum[tokens[i] * c->dim + d] += fabs(dx[i * c->dim + d]);
  for (size_t v = 0; v < c->vocab; ++v)
    for (size_t d = 0; d < c->dim; ++d) {
      const size_t e = v * c->dim + d;
      bound[e] = fabs(c->scale) * gamma_k((double)uses[v]) * abs_sum[e] +
                 U * fabs(ref[e]);
    }

  retcl_context *ctx = tu_context();
  float *got = emb_run(ctx, c, tokens, dx, init);
  report("embedding_backward", assert_within("d_table", got, ref, bound, nt));
  /* Rows nobody names: unchanged bits (accumulate) or exactly 0. */
  for (size_t v = 0; v < c->vocab; ++v)
    if (!uses[v])
      for (size_t d = 0; d < c->dim; ++d) {
        const size_t e = v * c->dim + d;
        if (c->accumulate)
          ck_assert_msg(memcmp(&got[e], &init[e], sizeof(float)) == 0,
                        "unnamed row %zu changed", v);
        else
          ck_assert_msg(got[e] == 0.0f, "unnamed row %zu is %g, not 0", v,
                        (double)got[e]);
      }
  /* Deterministic: a second run gives the same bits. */
  float *again = emb_run(ctx, c, tokens, dx, init);
  ck_assert_msg(memcmp(got, again, nt * sizeof *got) == 0,
                "two runs differ (seed %llu)", (unsigned long long)tu_seed());

  retcl_context_destroy(ctx);
  free(again);
  free(got);
  free(abs_sum);
  free(uses);
  free(dxd);
  free(bound);
  free(ref);
  free(init);
  free(dx);
  free(tokens);
}
END_TEST

/* Events chain the ops: the embedding gradient waits on the GLU gradient's
 * event (d_x is the GLU's d_a), and its own event completes the work. */
START_TEST(events_and_wait_lists) {
  retcl_context *ctx = tu_context();
  const size_t count = 6, dim = 10, vocab = 4, n = count * dim;
  const int32_t tokens[6] = {3, 1, 3, 0, 3, 1};
  float *a = tu_alloc(n), *g = tu_alloc(n), *dh = tu_alloc(n);
  tu_fill_uniform(a, n, -3, 3);
  tu_fill_uniform(g, n, -1, 1);
  tu_fill_uniform(dh, n, -1, 1);
  cl_mem ab = tu_upload(ctx, a, n), gb = tu_upload(ctx, g, n),
         hb = tu_upload(ctx, dh, n), tb = tu_poisoned(ctx, vocab * dim);
  cl_event first = NULL, second = NULL;
  tu_ok(ctx, retcl_glu_backward(ctx, n, RETCL_ACT_SWISH, retcl_buf(ab, 0),
                                retcl_buf(gb, 0), retcl_buf(hb, 0),
                                retcl_buf(ab, 0), retcl_buf(gb, 0), 0, NULL,
                                &first));
  ck_assert_ptr_nonnull(first);
  tu_ok(ctx, retcl_embedding_backward(ctx, count, tokens, vocab, dim, 2.0f,
                                      retcl_buf(ab, 0), 0, retcl_buf(tb, 0), 1,
                                      &first, &second));
  ck_assert_int_eq(clWaitForEvents(1, &second), CL_SUCCESS);
  cl_int state = -1;
  ck_assert_int_eq(clGetEventInfo(first, CL_EVENT_COMMAND_EXECUTION_STATUS,
                                  sizeof state, &state, NULL),
                   CL_SUCCESS);
  ck_assert_int_eq(state, CL_COMPLETE);
  /* Against the references chained on the host: the bounds of the two
   * tests above, composed (d_a's bound through the sums). */
  double *ad = widen(a, n), *gd = widen(g, n), *dhd = widen(dh, n);
  double *da = tu_alloc_d(n), *dg = tu_alloc_d(n), *ba = tu_alloc_d(n),
         *bg = tu_alloc_d(n), *ref = tu_alloc_d(vocab * dim),
         *bound = tu_alloc_d(vocab * dim);
  ref_glu_backward_d(ad, gd, dhd, da, dg, n, RETCL_ACT_SWISH);
  glu_bounds(RETCL_ACT_SWISH, ad, gd, dhd, ba, bg, n);
  ref_embedding_backward_d(tokens, count, dim, 2.0, da, ref);
  for (size_t i = 0; i < count; ++i)
    for (size_t d = 0; d < dim; ++d)
      bound[tokens[i] * dim + d] +=
          2.0 * (ba[i * dim + d] + gamma_k(3) * (fabs(da[i * dim + d]) +
                                                 ba[i * dim + d]));
  for (size_t e = 0; e < vocab * dim; ++e) bound[e] += U * fabs(ref[e]);
  float *got = tu_alloc(vocab * dim);
  tu_download(ctx, tb, 0, got, vocab * dim);
  assert_within("d_table after d_a", got, ref, bound, vocab * dim);
  clReleaseEvent(first);
  clReleaseEvent(second);
  clReleaseMemObject(tb);
  clReleaseMemObject(hb);
  clReleaseMemObject(gb);
  clReleaseMemObject(ab);
  retcl_context_destroy(ctx);
  free(got);
  free(bound);
  free(ref);
  free(bg);
  free(ba);
  free(dg);
  free(da);
  free(dhd);
  free(gd);
  free(ad);
  free(dh);
  free(g);
  free(a);
}
END_TEST

/* ======================================================================== */
/* Cross-entropy                                                            */
/* ======================================================================== */

/* Bounds of the device's loss and gradient, first order in u (a rounding
 * costs u, exp and log 3 ulp = 6u, division 2.5 ulp = 5u). For a row with
 * max m, target t and s = Σ_j exp(x_j − m) (V terms):
 *  - each exp(x_j − m) is within 6u + u·|x_j − m| relative (the rounded
 *    difference, then exp), so the computed s is within
 *    rel_s = γ_V + 6u + u·Σ_j p_j |x_j − m| (p the softmax);
 *  - row loss (m − x_t) + log s: u·|m − x_t| + rel_s + 6u·|log s| + u·|ℓ_r|;
 *  - mean: the row losses summed (γ_rows of Σ|ℓ_r|), times the rounded 1/N
 *    (2u): bound (1/N)·Σ_r E_r + (γ_rows + 2u)·(1/N)·Σ_r |ℓ_r|;
 *  - gradient exp(x_j − m)·((1/N)/s) − [j = t]/N: the exp as above, the
 *    rounded 1/N, the division and the product: (1/N)·p_j·(13u +
 *    u·|x_j − m| + rel_s), plus u·|d_j| and u/N for the target's term;
 *    exp(x_j − m) below FLT_MIN may underflow or flush to 0 (logits 1e4
 *    apart), and so may the product: 2·FLT_MIN absolute more.
 * A wrong target, max, normaliser or count gives errors of 1e-2 and more. */
typedef struct ce_bounds {
  double loss;
  double *grad; /* per element */
} ce_bounds;

static void ce_bounds_of(const double *x, const int32_t *t, size_t rows,
                         size_t V, int32_t ignore, const double *dref,
                         ce_bounds *b) {
  size_t N = 0;
  for (size_t r = 0; r < rows; ++r) N += t[r] != ignore;
  const double inv = N ? 1.0 / (double)N : 0.0;
  double sum_e = 0, sum_l = 0;
  for (size_t r = 0; r < rows; ++r) {
    const double *xr = x + r * V;
    if (t[r] == ignore) {
      for (size_t j = 0; j < V; ++j) b->grad[r * V + j] = 0.0;
      continue;
    }
    double m = xr[0];
    for (size_t j = 1; j < V; ++j) m = fmax(m, xr[j]);
    double s = 0, spread = 0;
    for (size_t j = 0; j < V; ++j) s += exp(xr[j] - m);
    for (size_t j = 0; j < V; ++j) spread += exp(xr[j] - m) / s * fabs(xr[j] - m);
    const double rel_s = gamma_k((double)V) + 6 * U + U * spread;
    const double loss_r = (m - xr[t[r]]) + log(s);
    sum_e += U * fabs(m - xr[t[r]]) + rel_s + 6 * U * fabs(log(s)) +
             U * fabs(loss_r);
    sum_l += fabs(loss_r);
    for (size_t j = 0; j < V; ++j) {
      const double p = exp(xr[j] - m) / s;
      b->grad[r * V + j] =
          inv * p * (13 * U + U * fabs(xr[j] - m) + rel_s) +
          U * fabs(dref[r * V + j]) + ((int32_t)j == t[r] ? U * inv : 0.0) +
          2 * FLT_MIN;
    }
  }
  b->loss = inv * sum_e + (gamma_k((double)rows) + 2 * U) * inv * sum_l;
}

/* The analytic double gradient against central differences of the double
 * loss, h = 1e-5 (logits within ±3 here): truncation h²·|ℓ'''| ~ 1e-10 and
 * cancellation 1e-16·|ℓ|/h ~ 1e-11 against gradients of 1e-3 and more;
 * tolerance 1e-6 of the largest gradient. */
static void ce_check_reference(const double *x, const int32_t *t, size_t rows,
                               size_t V, int32_t ignore, const double *dref) {
  double *xp = tu_alloc_d(rows * V), biggest = 0;
  memcpy(xp, x, rows * V * sizeof *xp);
  for (size_t e = 0; e < rows * V; ++e) biggest = fmax(biggest, fabs(dref[e]));
  for (size_t e = 0; e < rows * V; ++e) {
    const double h = 1e-5;
    xp[e] = x[e] + h;
    const double up = ref_cross_entropy_d(xp, t, rows, V, ignore, NULL);
    xp[e] = x[e] - h;
    const double down = ref_cross_entropy_d(xp, t, rows, V, ignore, NULL);
    xp[e] = x[e];
    const double fd = (up - down) / (2 * h);
    ck_assert_msg(fabs(fd - dref[e]) <= 1e-6 * biggest + 1e-300,
                  "reference gradient [%zu] = %.12g, central difference %.12g",
                  e, dref[e], fd);
  }
  free(xp);
}

typedef struct ce_case {
  size_t rows, vocab;
  double center, spread; /* logits in center ± spread */
  int ignore_every;      /* every k-th row ignored (0: none; 1: all) */
  int32_t ignore_index;
  int d_mode;            /* 0: no gradient, 1: its own buffer, 2: in place */
  int offsets;
  int fd;                /* check the reference by central differences */
} ce_case;

static const ce_case ce_cases[] = {
    {1, 1, 0, 1, 0, -100, 1, 0, 1},
    {5, 13, 0, 3, 0, -100, 1, 1, 1},
    {7, 11, 0, 3, 3, -100, 2, 0, 1},
    {7, 1000, 0, 8, 3, -100, 1, 0, 0},
    {3, 32, 0, 2, 0, -100, 0, 1, 0},
    {17, 257, 0, 4, 4, 3, 2, 1, 0}, /* ignore_index is a real id */
    /* Large logits: no overflow, and only differences from the max count. */
    {4, 100, 1e4, 20, 0, -100, 1, 0, 0},
    {6, 64, 0, 1e4, 2, -100, 2, 0, 0},
    /* Every row ignored: loss 0 and a zero gradient. */
    {5, 9, 0, 3, 1, -1, 1, 0, 0},
    {4, 23, 0, 3, 1, 0, 2, 1, 0},
};

START_TEST(cross_entropy_matches_reference) {
  const ce_case *c = &ce_cases[_i];
  const size_t rows = c->rows, V = c->vocab, n = rows * V;
  float *x = tu_alloc(n);
  tu_fill_uniform(x, n, c->center - c->spread, c->center + c->spread);
  int32_t *t = malloc(rows * sizeof *t);
  for (size_t r = 0; r < rows; ++r) {
    t[r] = (int32_t)(tu_uniform(0, 1) * (double)V);
    if (t[r] >= (int32_t)V) t[r] = (int32_t)V - 1;
    if (t[r] == c->ignore_index) t[r] = (t[r] + 1) % (int32_t)V;
    if (c->ignore_every && r % (size_t)c->ignore_every == 0)
      t[r] = c->ignore_index;
  }
  if (c->ignore_every == 1) /* all ignored even if the id is a real one */
    for (size_t r = 0; r < rows; ++r) t[r] = c->ignore_index;
  double *xd = widen(x, n), *dref = tu_alloc_d(n);
  const double loss_ref = ref_cross_entropy_d(xd, t, rows, V, c->ignore_index,
                                              dref);
  if (c->fd) ce_check_reference(xd, t, rows, V, c->ignore_index, dref);
  ce_bounds b;
  b.grad = tu_alloc_d(n);
  ce_bounds_of(xd, t, rows, V, c->ignore_index, dref, &b);

  retcl_context *ctx = tu_context();
  const size_t ox = c->offsets ? 5 : 0, ol = c->offsets ? 2 : 0,
               od = c->offsets ? 3 : 0;
  cl_mem xb = tu_upload_guarded(ctx, x, n, ox, GUARD),
         lb = tu_upload_guarded(ctx, NULL, 1, ol, GUARD);
  cl_mem db = c->d_mode == 1 ? tu_upload_guarded(ctx, NULL, n, od, GUARD)
              : c->d_mode == 2 ? xb
                               : NULL;
  const size_t d_off = c->d_mode == 2 ? ox : od;
  tu_ok(ctx, retcl_cross_entropy(ctx, rows, V, retcl_buf(xb, ox), t,
                                 c->ignore_index, retcl_buf(lb, ol),
                                 db ? retcl_buf(db, d_off) : retcl_no_buf(), 0,
                                 NULL, NULL));
  float *loss = download_checked(ctx, lb, ol, 1, "loss");
  /* The loss within its bound (ce_bounds_of); exactly 0 with no row
   * counted. */
  const double err = fabs((double)loss[0] - loss_ref);
  ck_assert_msg(err <= b.loss, "loss %.9g, reference %.9g, error %.3g > %.3g",
                (double)loss[0], loss_ref, err, b.loss);
  double worst = b.loss > 0 ? err / b.loss : 0;
  if (c->ignore_every == 1) ck_assert(loss[0] == 0.0f);
  if (db) {
    float *got = download_checked(ctx, db, d_off, n, "d_logits");
    worst = fmax(worst, assert_within("d_logits", got, dref, b.grad, n));
    /* Ignored rows get exact zeros. */
    for (size_t r = 0; r < rows; ++r)
      if (t[r] == c->ignore_index)
        for (size_t j = 0; j < V; ++j) ck_assert(got[r * V + j] == 0.0f);
    free(got);
    if (c->d_mode == 1) clReleaseMemObject(db);
  } else {
    float *after = download_checked(ctx, xb, ox, n, "logits");
    ck_assert_msg(memcmp(after, x, n * sizeof *x) == 0,
                  "logits changed without d_logits");
    free(after);
  }
  report("cross_entropy", worst);

  clReleaseMemObject(lb);
  clReleaseMemObject(xb);
  retcl_context_destroy(ctx);
  free(loss);
  free(b.grad);
  free(dref);
  free(xd);
  free(t);
  free(x);
}
END_TEST

/* Two runs, the same bits (loss and gradient), and the event of the call
 * completes both passes. */
START_TEST(cross_entropy_is_deterministic) {
  const size_t rows = 300, V = 97, n = rows * V;
  float *x = tu_alloc(n);
  tu_fill_uniform(x, n, -5, 5);
  int32_t *t = malloc(rows * sizeof *t);
  for (size_t r = 0; r < rows; ++r)
    t[r] = r % 7 == 0 ? -100 : (int32_t)(r * 31 % V);
  retcl_context *ctx = tu_context();
  float loss[2], *grad[2];
  for (int k = 0; k < 2; ++k) {
    cl_mem xb = tu_upload(ctx, x, n), lb = tu_poisoned(ctx, 1);
    cl_event done = NULL;
    tu_ok(ctx, retcl_cross_entropy(ctx, rows, V, retcl_buf(xb, 0), t, -100,
                                   retcl_buf(lb, 0), retcl_buf(xb, 0), 0, NULL,
                                   &done));
    ck_assert_int_eq(clWaitForEvents(1, &done), CL_SUCCESS);
    clReleaseEvent(done);
    grad[k] = tu_alloc(n);
    tu_download(ctx, lb, 0, &loss[k], 1);
    tu_download(ctx, xb, 0, grad[k], n);
    clReleaseMemObject(lb);
    clReleaseMemObject(xb);
  }
  ck_assert(memcmp(&loss[0], &loss[1], sizeof(float)) == 0);
  ck_assert(memcmp(grad[0], grad[1], n * sizeof(float)) == 0);
  retcl_context_destroy(ctx);
  free(grad[0]);
  free(grad[1]);
  free(t);
  free(x);
}
END_TEST

/* ======================================================================== */
/* AdamW, the gradient norm, the schedule                                   */
/* ======================================================================== */

/* Running first-order error bounds of the device's p, m, v against the
 * double reference over several steps (a rounding costs u = 2^-24, sqrt
 * 3 ulp = 6u, division 2.5 ulp = 5u). The clip factor c is within ε_c of
 * the reference's: the norm's sum of n squares (γ_n) halved by the square
 * root, sqrt's 6u, then the add and the division: γ_n/2 + 12u; 0 when no
 * clipping acts (both use exactly 1). With g = grad·c and each of the
 * step's constants (1 − β1, 1 − β2, step = lr/(1 − β1^t), isb2 =
 * 1/sqrt(1 − β2^t), decay = 1 − lr·wd) rounded to fp32 (u each):
 *   Δg ≤ |g|(ε_c + u)
 *   Δm ≤ β1 Δm + (1−β1) Δg + 3u (β1|m| + (1−β1)|g|)
 *   Δv ≤ β2 Δv + (1−β2) 2|g|Δg + 4u (β2 v + (1−β2) g²)
 *   den = sqrt(v)·isb2 + eps:  Δden ≤ isb2 (Δv / (2 sqrt v) + 8u sqrt v) + u·den
 *   q = m / den:               Δq ≤ (Δm + |m| Δden / den) / den + 5u |q|
 *   upd = step·q:              Δupd ≤ step Δq + 2u |upd|
 *   p ← p·decay − upd:         Δp ≤ decay Δp + 3u |p decay| + Δupd + u |upd|
 * (m, v, p the reference's values; the updated m, v in den and q). The
 * comparison allows twice the bound, for the second-order terms left out.
 * A wrong bias correction, decay, clip factor or moment gives errors of
 * 1e-4 and more. */
typedef struct adam_bound {
  double *p, *m, *v;
} adam_bound;

static void adam_bound_step(const retcl_adamw *o, size_t step, size_t n,
                            const double *p, const double *m,
                            const double *v, const double *grad, double c,
                            double eps_c, adam_bound *e) {
  const double b1 = o->beta1, b2 = o->beta2, lr = o->lr;
  const double bc1 = 1.0 - pow(b1, (double)step),
               bc2 = 1.0 - pow(b2, (double)step);
  const double step_size = lr / bc1, isb2 = 1.0 / sqrt(bc2),
               decay = 1.0 - lr * o->weight_decay;
  for (size_t i = 0; i < n; ++i) {
    const double g = grad[i] * c;
    const double dg = fabs(g) * (eps_c + U);
    const double m1 = b1 * m[i] + (1 - b1) * g;
    const double v1 = b2 * v[i] + (1 - b2) * g * g;
    e->m[i] = b1 * e->m[i] + (1 - b1) * dg +
              3 * U * (b1 * fabs(m[i]) + (1 - b1) * fabs(g));
    e->v[i] = b2 * e->v[i] + (1 - b2) * 2 * fabs(g) * dg +
              4 * U * (b2 * v[i] + (1 - b2) * g * g);
    const double sv = sqrt(v1), den = sv * isb2 + o->eps;
    const double dden =
        isb2 * ((sv > 0 ? e->v[i] / (2 * sv) : sqrt(e->v[i])) + 8 * U * sv) +
        U * den;
    const double q = m1 / den;
    const double dq = (e->m[i] + fabs(m1) * dden / den) / den + 5 * U * fabs(q);
    const double upd = step_size * q;
    const double dupd = step_size * dq + 2 * U * fabs(upd);
    e->p[i] = decay * e->p[i] + 3 * U * fabs(p[i] * decay) + dupd +
              U * fabs(upd);
  }
}

typedef struct adam_case {
  size_t n[3];      /* tensor sizes (1 tensor: the flat call) */
  size_t tensors;
  float weight_decay;
  int clip;         /* 0: none, 1: inactive (clip far above), 2: active */
  int norm_out;     /* ask for the norm */
  int offsets;
} adam_case;

static const adam_case adam_cases[] = {
    {{1}, 1, 0.0f, 0, 0, 0},
    {{37}, 1, 0.1f, 1, 1, 1},
    {{1000}, 1, 0.0f, 2, 1, 0},
    {{4099}, 1, 0.05f, 2, 0, 1},
    {{4099}, 1, 0.05f, 0, 1, 0},
    {{5, 1031, 64}, 3, 0.1f, 2, 1, 1},
    {{7, 1, 300}, 3, 0.0f, 1, 0, 0},
};

#define ADAM_STEPS 4

START_TEST(adamw_matches_reference) {
  const adam_case *c = &adam_cases[_i];
  size_t total = 0, start[3];
  for (size_t t = 0; t < c->tensors; ++t) start[t] = total, total += c->n[t];
  float *p0 = tu_alloc(total), *g = tu_alloc(total);
  tu_fill_uniform(p0, total, -1, 1);
  double *p = widen(p0, total), *m = tu_alloc_d(total), *v = tu_alloc_d(total);
  adam_bound e = {tu_alloc_d(total), tu_alloc_d(total), tu_alloc_d(total)};

  retcl_adamw opt;
  retcl_adamw_default(&opt);
  opt.weight_decay = c->weight_decay;
  opt.beta2 = 0.98f; /* RetNet's */

  retcl_context *ctx = tu_context();
  const size_t off = c->offsets ? 3 : 0;
  cl_mem pb[3], gb[3], mb[3], vb[3];
  float *zeros = tu_alloc(total);
  memset(zeros, 0, total * sizeof *zeros);
  for (size_t t = 0; t < c->tensors; ++t) {
    pb[t] = tu_upload_guarded(ctx, p0 + start[t], c->n[t], off, GUARD);
    gb[t] = tu_upload_guarded(ctx, NULL, c->n[t], off + 1, GUARD);
    mb[t] = tu_upload_guarded(ctx, zeros, c->n[t], off + 2, GUARD);
    vb[t] = tu_upload_guarded(ctx, zeros, c->n[t], off, GUARD);
  }
  cl_mem nb = tu_upload_guarded(ctx, NULL, 1, off, GUARD);
  double worst = 0;
  for (size_t step = 1; step <= ADAM_STEPS; ++step) {
    opt.lr = (float)retcl_lr_schedule(0.05, step, 2, ADAM_STEPS + 2, 0.1);
    tu_fill_uniform(g, total, -1, 1);
    double *gd = widen(g, total);
    const double norm = ref_grad_norm_d(gd, total);
    opt.clip_norm = c->clip == 0 ? 0.0f
                    : c->clip == 1 ? (float)(100 * norm)
                                   : (float)(0.3 * norm);
    const double cf = ref_clip_factor(norm, opt.clip_norm);
    const double eps_c = c->clip == 2 ? gamma_k((double)total) / 2 + 12 * U : 0;
    adam_bound_step(&opt, step, total, p, m, v, gd, cf, eps_c, &e);
    ref_adamw_step_d(&opt, step, total, p, gd, m, v, cf);
    for (size_t t = 0; t < c->tensors; ++t) {
      float *all = tu_alloc(off + 1 + c->n[t] + GUARD);
      for (size_t i = 0; i < off + 1 + c->n[t] + GUARD; ++i) all[i] = NAN;
      memcpy(all + off + 1, g + start[t], c->n[t] * sizeof *g);
      ck_assert_int_eq(clEnqueueWriteBuffer(retcl_context_queue(ctx), gb[t],
                                            CL_TRUE, 0,
                                            (off + 1 + c->n[t] + GUARD) *
                                                sizeof(float),
                                            all, 0, NULL, NULL),
                       CL_SUCCESS);
      free(all);
    }
    const retcl_buffer nbuf = c->norm_out ? retcl_buf(nb, off) : retcl_no_buf();
    if (c->tensors == 1) {
      tu_ok(ctx, retcl_adamw_step(ctx, &opt, step, c->n[0], retcl_buf(pb[0], off),
                                  retcl_buf(gb[0], off + 1),
                                  retcl_buf(mb[0], off + 2),
                                  retcl_buf(vb[0], off), nbuf, 0, NULL, NULL));
    } else {
      retcl_adamw_tensor ts[3];
      for (size_t t = 0; t < c->tensors; ++t) {
        ts[t].param = retcl_buf(pb[t], off);
        ts[t].grad = retcl_buf(gb[t], off + 1);
        ts[t].m = retcl_buf(mb[t], off + 2);
        ts[t].v = retcl_buf(vb[t], off);
        ts[t].n = c->n[t];
      }
      tu_ok(ctx, retcl_adamw_step_many(ctx, &opt, step, c->tensors, ts, nbuf,
                                       0, NULL, NULL));
    }
    if (c->norm_out) {
      float *got = download_checked(ctx, nb, off, 1, "grad_norm_out");
      /* The norm: γ_n/2 of the sum of squares through the square root, plus
       * sqrt's 3 ulp (6u). */
      const double bound = (gamma_k((double)total) / 2 + 6 * U) * norm;
      ck_assert_msg(fabs(got[0] - norm) <= bound,
                    "norm %.9g, reference %.9g (bound %.3g)", (double)got[0],
                    norm, bound);
      worst = fmax(worst, fabs(got[0] - norm) / bound);
      free(got);
    }
    free(gd);
  }
  /* Every element of p, m, v within twice its running bound. */
  for (size_t t = 0; t < c->tensors; ++t) {
    float *gp = download_checked(ctx, pb[t], off, c->n[t], "param");
    float *gm = download_checked(ctx, mb[t], off + 2, c->n[t], "m");
    float *gv = download_checked(ctx, vb[t], off, c->n[t], "v");
    double *b2 = tu_alloc_d(c->n[t]);
    const double *const refs[] = {p + start[t], m + start[t], v + start[t]};
    const double *const bounds[] = {e.p + start[t], e.m + start[t],
                                    e.v + start[t]};
    const float *const gots[] = {gp, gm, gv};
    static const char *const names[] = {"param", "m", "v"};
    for (int k = 0; k < 3; ++k) {
      for (size_t i = 0; i < c->n[t]; ++i) b2[i] = 2 * bounds[k][i];
      worst = fmax(worst, 2 * assert_within(names[k], gots[k], refs[k], b2,
                                            c->n[t]));
    }
    free(b2);
    free(gp);
    free(gm);
    free(gv);
    /* The gradient is read, not changed. */
    float *gg = download_checked(ctx, gb[t], off + 1, c->n[t], "grad");
    ck_assert(memcmp(gg, g + start[t], c->n[t] * sizeof *gg) == 0);
    free(gg);
  }
  report("adamw (error / first-order bound)", worst);

  for (size_t t = 0; t < c->tensors; ++t) {
    clReleaseMemObject(pb[t]);
    clReleaseMemObject(gb[t]);
    clReleaseMemObject(mb[t]);
    clReleaseMemObject(vb[t]);
  }
  clReleaseMemObject(nb);
  retcl_context_destroy(ctx);
  free(zeros);
  free(e.p);
  free(e.m);
  free(e.v);
  free(p);
  free(m);
  free(v);
  free(p0);
  free(g);
}
END_TEST

/* Clipped steps twice from the same state: the same bits in param, m, v
 * and the norm; the event completes every pass. */
START_TEST(adamw_is_deterministic) {
  const size_t n = 20011;
  float *p0 = tu_alloc(n), *g = tu_alloc(n), *zeros = tu_alloc(n);
  tu_fill_uniform(p0, n, -1, 1);
  tu_fill_uniform(g, n, -1, 1);
  memset(zeros, 0, n * sizeof *zeros);
  retcl_adamw opt;
  retcl_adamw_default(&opt);
  opt.clip_norm = 1.0f;
  retcl_context *ctx = tu_context();
  float *out[2][4];
  for (int k = 0; k < 2; ++k) {
    cl_mem pb = tu_upload(ctx, p0, n), gb = tu_upload(ctx, g, n);
    cl_mem mb = tu_upload(ctx, zeros, n), vb = tu_upload(ctx, zeros, n);
    cl_mem nb = tu_poisoned(ctx, 1);
    cl_event done = NULL;
    for (size_t step = 1; step <= 3; ++step)
      tu_ok(ctx, retcl_adamw_step(ctx, &opt, step, n, retcl_buf(pb, 0),
                                  retcl_buf(gb, 0), retcl_buf(mb, 0),
                                  retcl_buf(vb, 0), retcl_buf(nb, 0), 0, NULL,
                                  step == 3 ? &done : NULL));
    ck_assert_int_eq(clWaitForEvents(1, &done), CL_SUCCESS);
    clReleaseEvent(done);
    const cl_mem bufs[] = {pb, mb, vb, nb};
    for (int b = 0; b < 4; ++b) {
      const size_t len = b == 3 ? 1 : n;
      out[k][b] = tu_alloc(len);
      tu_download(ctx, bufs[b], 0, out[k][b], len);
      clReleaseMemObject(bufs[b]);
    }
    clReleaseMemObject(gb);
  }
  for (int b = 0; b < 4; ++b) {
    ck_assert_msg(memcmp(out[0][b], out[1][b], (b == 3 ? 1 : n) * sizeof(float)) == 0,
                  "buffer %d differs between two runs", b);
    free(out[0][b]);
    free(out[1][b]);
  }
  retcl_context_destroy(ctx);
  free(p0);
  free(g);
  free(zeros);
}
END_TEST

START_TEST(grad_norm_matches_reference) {
  static const size_t sizes[] = {1, 8, 1023, 65537};
  retcl_context *ctx = tu_context();
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; ++k) {
    const size_t n = sizes[k];
    float *g = tu_alloc(n);
    tu_fill_uniform(g, n, -2, 2);
    double *gd = widen(g, n);
    const double norm = ref_grad_norm_d(gd, n);
    cl_mem gb = tu_upload_guarded(ctx, g, n, 1, GUARD),
           nb = tu_upload_guarded(ctx, NULL, 1, 2, GUARD);
    tu_ok(ctx, retcl_grad_norm(ctx, n, retcl_buf(gb, 1), retcl_buf(nb, 2), 0,
                               NULL, NULL));
    float *got = download_checked(ctx, nb, 2, 1, "norm_out");
    /* γ_n/2 + 6u relative (as in adamw_matches_reference). */
    const double bound = (gamma_k((double)n) / 2 + 6 * U) * norm;
    ck_assert_msg(fabs(got[0] - norm) <= bound,
                  "n %zu: norm %.9g, reference %.9g (bound %.3g)", n,
                  (double)got[0], norm, bound);
    report("grad_norm", fabs(got[0] - norm) / bound);
    free(got);
    clReleaseMemObject(nb);
    clReleaseMemObject(gb);
    free(gd);
    free(g);
  }
  retcl_context_destroy(ctx);
}
END_TEST

START_TEST(lr_schedule_values) {
  const double peak = 1e-3;
  /* Warm-up from 0 to the peak at step = warmup, the cosine's midpoint
   * halfway between the peak and the floor, the floor at and after total. */
  ck_assert(retcl_lr_schedule(peak, 0, 100, 1000, 0.1) == 0.0);
  ck_assert(fabs(retcl_lr_schedule(peak, 1, 100, 1000, 0.1) - 1e-5) < 1e-18);
  ck_assert(fabs(retcl_lr_schedule(peak, 50, 100, 1000, 0.1) - 5e-4) < 1e-18);
  ck_assert(fabs(retcl_lr_schedule(peak, 100, 100, 1000, 0.1) - peak) < 1e-18);
  ck_assert(fabs(retcl_lr_schedule(peak, 550, 100, 1000, 0.1) - 5.5e-4) < 1e-15);
  ck_assert(fabs(retcl_lr_schedule(peak, 1000, 100, 1000, 0.1) - 1e-4) < 1e-18);
  ck_assert(fabs(retcl_lr_schedule(peak, 5000, 100, 1000, 0.1) - 1e-4) < 1e-18);
  ck_assert(retcl_lr_schedule(peak, 0, 0, 1000, 0.0) == peak);
  ck_assert(retcl_lr_schedule(peak, 1000, 0, 1000, 0.0) == 0.0);
  ck_assert(fabs(retcl_lr_schedule(peak, 7, 10, 5, 0.2) - 7e-4) < 1e-18);
  ck_assert(fabs(retcl_lr_schedule(peak, 10, 10, 5, 0.2) - 2e-4) < 1e-18);
  /* Monotone after the peak, and the reference's values everywhere. */
  double last = INFINITY;
  for (size_t s = 0; s <= 1200; ++s) {
    const double lr = retcl_lr_schedule(peak, s, 100, 1000, 0.1);
    ck_assert_msg(fabs(lr - ref_lr_schedule(peak, s, 100, 1000, 0.1)) <= 1e-15,
                  "step %zu", s);
    if (s >= 100) {
      ck_assert(lr <= last);
      last = lr;
    }
  }
  ck_assert(isnan(retcl_lr_schedule(-1.0, 5, 10, 100, 0.1)));
  ck_assert(isnan(retcl_lr_schedule(peak, 5, 10, 100, 1.5)));
  ck_assert(isnan(retcl_lr_schedule(NAN, 5, 10, 100, 0.1)));
  ck_assert(isnan(retcl_lr_schedule(peak, 5, 10, 100, NAN)));
}
END_TEST

/* ======================================================================== */
/* Refused calls: status, message, nothing written                          */
/* ======================================================================== */

/* The call fails with `want` and its message mentions `word`. */
#define EXPECT_FAIL(ctx, want, word, call)                                  \
  do {                                                                      \
    tu_assert_status((ctx), (call), (want));                                \
    ck_assert_msg(strstr(retcl_last_error(ctx), (word)) != NULL,            \
                  "message \"%s\" does not mention \"%s\"",                 \
                  retcl_last_error(ctx), (word));                           \
  } while (0)

/* All n floats of buf equal expect (bitwise; NaN poison included). */
static void assert_unchanged(retcl_context *ctx, cl_mem buf, const float *expect,
                             size_t n, const char *what) {
  ck_assert_int_eq(clFinish(retcl_context_queue(ctx)), CL_SUCCESS);
  float *got = tu_alloc(n);
  tu_download(ctx, buf, 0, got, n);
  for (size_t i = 0; i < n; ++i)
    ck_assert_msg(memcmp(&got[i], &expect[i], sizeof(float)) == 0,
                  "%s[%zu] was written by a refused call", what, i);
  free(got);
}

static void assert_all_nan(retcl_context *ctx, cl_mem buf, size_t n,
                           const char *what) {
  ck_assert_int_eq(clFinish(retcl_context_queue(ctx)), CL_SUCCESS);
  float *got = tu_alloc(n);
  tu_download(ctx, buf, 0, got, n);
  for (size_t i = 0; i < n; ++i)
    ck_assert_msg(isnan(got[i]), "%s[%zu] was written by a refused call",
                  what, i);
  free(got);
}

START_TEST(glu_backward_rejects) {
  retcl_context *ctx = tu_context(), *other = tu_context();
  const size_t n = 40;
  float *h = tu_alloc(n);
  tu_fill_uniform(h, n, -1, 1);
  cl_mem a = tu_upload(ctx, h, n), g = tu_upload(ctx, h, n),
         dh = tu_upload(ctx, h, n);
  cl_mem da = tu_poisoned(ctx, n), dg = tu_poisoned(ctx, n),
         small = tu_poisoned(ctx, n - 1), shared = tu_poisoned(ctx, 2 * n),
         foreign = tu_poisoned(other, n);
  const retcl_buffer A = retcl_buf(a, 0), G = retcl_buf(g, 0),
                     DH = retcl_buf(dh, 0), DA = retcl_buf(da, 0),
                     DG = retcl_buf(dg, 0), none = retcl_no_buf();
  const retcl_activation gelu = RETCL_ACT_GELU;
  ck_assert_int_eq(retcl_glu_backward(NULL, n, gelu, A, G, DH, DA, DG, 0, NULL,
                                      NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "act",
              retcl_glu_backward(ctx, n, (retcl_activation)7, A, G, DH, DA, DG,
                                 0, NULL, NULL));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_SIZE, "n",
              retcl_glu_backward(ctx, 0, gelu, A, G, DH, DA, DG, 0, NULL, NULL));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "d_h",
              retcl_glu_backward(ctx, n, gelu, A, G, none, DA, DG, 0, NULL,
                                 NULL));
  EXPECT_FAIL(ctx, RETCL_ERROR_BUFFER_TOO_SMALL, "d_g",
              retcl_glu_backward(ctx, n, gelu, A, G, DH, DA,
                                 retcl_buf(small, 0), 0, NULL, NULL));
  EXPECT_FAIL(ctx, RETCL_ERROR_BUFFER_TOO_SMALL, "d_a",
              retcl_glu_backward(ctx, n, gelu, A, G, DH, retcl_buf(da, 1), DG,
                                 0, NULL, NULL));
  EXPECT_FAIL(ctx, RETCL_ERROR_CONTEXT_MISMATCH, "a",
              retcl_glu_backward(ctx, n, gelu, retcl_buf(foreign, 0), G, DH,
                                 DA, DG, 0, NULL, NULL));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "wait",
              retcl_glu_backward(ctx, n, gelu, A, G, DH, DA, DG, 1, NULL,
                                 NULL));
  /* Overlaps: an output over an input at another offset, the outputs on
   * each other. */
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "d_a overlaps a",
              retcl_glu_backward(ctx, n, gelu, retcl_buf(shared, 0), G, DH,
                                 retcl_buf(shared, 1), DG, 0, NULL, NULL));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "d_g overlaps d_h",
              retcl_glu_backward(ctx, n, gelu, A, G, retcl_buf(shared, 3), DA,
                                 retcl_buf(shared, 0), 0, NULL, NULL));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "d_a overlaps d_g",
              retcl_glu_backward(ctx, n, gelu, A, G, DH, retcl_buf(shared, 0),
                                 retcl_buf(shared, n - 1), 0, NULL, NULL));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "d_a overlaps d_g",
              retcl_glu_backward(ctx, n, gelu, A, G, DH, DA, DA, 0, NULL,
                                 NULL));
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "retcl_glu_backward"));
  assert_all_nan(ctx, da, n, "d_a");
  assert_all_nan(ctx, dg, n, "d_g");
  assert_all_nan(ctx, small, n - 1, "small");
  assert_all_nan(ctx, shared, 2 * n, "shared");
  assert_unchanged(ctx, a, h, n, "a");
  const cl_mem all[] = {a, g, dh, da, dg, small, shared};
  for (size_t i = 0; i < sizeof all / sizeof *all; ++i) clReleaseMemObject(all[i]);
  clReleaseMemObject(foreign);
  retcl_context_destroy(other);
  retcl_context_destroy(ctx);
  free(h);
}
END_TEST

START_TEST(embedding_backward_rejects) {
  retcl_context *ctx = tu_context();
  const size_t count = 6, vocab = 5, dim = 4;
  const int32_t tokens[6] = {0, 4, 2, 2, 1, 3};
  int32_t bad[6];
  float *dx_h = tu_alloc(count * dim);
  tu_fill_uniform(dx_h, count * dim, -1, 1);
  cl_mem dx = tu_upload(ctx, dx_h, count * dim);
  cl_mem table = tu_poisoned(ctx, vocab * dim),
         small = tu_poisoned(ctx, vocab * dim - 1),
         shared = tu_poisoned(ctx, (count + vocab) * dim);
  const retcl_buffer DX = retcl_buf(dx, 0), T = retcl_buf(table, 0);
#define EMB(c, tok, v, d, s, x, t) \
  retcl_embedding_backward(ctx, (c), (tok), (v), (d), (s), (x), 1, (t), 0, NULL, NULL)
  ck_assert_int_eq(retcl_embedding_backward(NULL, count, tokens, vocab, dim, 1,
                                            DX, 1, T, 0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "tokens is NULL",
              EMB(count, NULL, vocab, dim, 1.0f, DX, T));
  memcpy(bad, tokens, sizeof bad);
  bad[3] = -1;
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "tokens[3] = -1",
              EMB(count, bad, vocab, dim, 1.0f, DX, T));
  bad[3] = 2;
  bad[5] = (int32_t)vocab;
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "tokens[5] = 5",
              EMB(count, bad, vocab, dim, 1.0f, DX, T));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_SIZE, "count",
              EMB(0, tokens, vocab, dim, 1.0f, DX, T));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_SIZE, "vocab",
              EMB(count, tokens, 0, dim, 1.0f, DX, T));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_SIZE, "dim",
              EMB(count, tokens, vocab, 0, 1.0f, DX, T));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "scale",
              EMB(count, tokens, vocab, dim, NAN, DX, T));
  EXPECT_FAIL(ctx, RETCL_ERROR_BUFFER_TOO_SMALL, "d_table",
              EMB(count, tokens, vocab, dim, 1.0f, DX, retcl_buf(small, 0)));
  EXPECT_FAIL(ctx, RETCL_ERROR_BUFFER_TOO_SMALL, "d_x",
              EMB(count, tokens, vocab, dim, 1.0f, retcl_buf(dx, 1), T));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "d_x is NULL",
              EMB(count, tokens, vocab, dim, 1.0f, retcl_no_buf(), T));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "overlaps",
              EMB(count, tokens, vocab, dim, 1.0f, retcl_buf(shared, 0),
                  retcl_buf(shared, count * dim - 1)));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "wait",
              retcl_embedding_backward(ctx, count, tokens, vocab, dim, 1, DX,
                                       0, T, 1, NULL, NULL));
#undef EMB
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "retcl_embedding_backward"));
  assert_all_nan(ctx, table, vocab * dim, "d_table");
  assert_all_nan(ctx, small, vocab * dim - 1, "small");
  assert_all_nan(ctx, shared, (count + vocab) * dim, "shared");
  clReleaseMemObject(shared);
  clReleaseMemObject(small);
  clReleaseMemObject(table);
  clReleaseMemObject(dx);
  retcl_context_destroy(ctx);
  free(dx_h);
}
END_TEST

START_TEST(cross_entropy_rejects) {
  retcl_context *ctx = tu_context();
  const size_t rows = 4, V = 9, n = rows * V;
  const int32_t t[4] = {1, -100, 8, 0};
  int32_t bad[4];
  float *xh = tu_alloc(n);
  tu_fill_uniform(xh, n, -1, 1);
  cl_mem x = tu_upload(ctx, xh, n), loss = tu_poisoned(ctx, 1),
         d = tu_poisoned(ctx, n), small = tu_poisoned(ctx, n - 1),
         shared = tu_poisoned(ctx, 2 * n + 1);
  const retcl_buffer X = retcl_buf(x, 0), L = retcl_buf(loss, 0),
                     D = retcl_buf(d, 0);
#define CE(r, v, xx, tt, ign, ll, dd) \
  retcl_cross_entropy(ctx, (r), (v), (xx), (tt), (ign), (ll), (dd), 0, NULL, NULL)
  ck_assert_int_eq(retcl_cross_entropy(NULL, rows, V, X, t, -100, L, D, 0, NULL,
                                       NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "targets is NULL",
              CE(rows, V, X, NULL, -100, L, D));
  memcpy(bad, t, sizeof bad);
  bad[2] = 9;
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "targets[2] = 9",
              CE(rows, V, X, bad, -100, L, D));
  /* -100 is not ignored when the ignore index is another value. */
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "targets[1] = -100",
              CE(rows, V, X, t, -1, L, D));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_SIZE, "rows",
              CE(0, V, X, t, -100, L, D));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_SIZE, "vocab",
              CE(rows, 0, X, t, -100, L, D));
  EXPECT_FAIL(ctx, RETCL_ERROR_BUFFER_TOO_SMALL, "logits",
              CE(rows, V, retcl_buf(small, 0), t, -100, L, D));
  EXPECT_FAIL(ctx, RETCL_ERROR_BUFFER_TOO_SMALL, "d_logits",
              CE(rows, V, X, t, -100, L, retcl_buf(small, 0)));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "loss is NULL",
              CE(rows, V, X, t, -100, retcl_no_buf(), D));
  EXPECT_FAIL(ctx, RETCL_ERROR_BUFFER_TOO_SMALL, "loss",
              CE(rows, V, X, t, -100, retcl_buf(loss, 1), D));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "d_logits overlaps logits",
              CE(rows, V, retcl_buf(shared, 0), t, -100, L,
                 retcl_buf(shared, 1)));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "loss overlaps logits",
              CE(rows, V, retcl_buf(shared, 0), t, -100,
                 retcl_buf(shared, n - 1), D));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "loss overlaps d_logits",
              CE(rows, V, X, t, -100, retcl_buf(shared, 5),
                 retcl_buf(shared, 0)));
  cl_event dummy = NULL;
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "wait",
              retcl_cross_entropy(ctx, rows, V, X, t, -100, L, D, 0, &dummy,
                                  NULL));
#undef CE
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "retcl_cross_entropy"));
  assert_all_nan(ctx, loss, 1, "loss");
  assert_all_nan(ctx, d, n, "d_logits");
  assert_all_nan(ctx, small, n - 1, "small");
  assert_all_nan(ctx, shared, 2 * n + 1, "shared");
  assert_unchanged(ctx, x, xh, n, "logits");
  const cl_mem all[] = {x, loss, d, small, shared};
  for (size_t i = 0; i < sizeof all / sizeof *all; ++i) clReleaseMemObject(all[i]);
  retcl_context_destroy(ctx);
  free(xh);
}
END_TEST

START_TEST(adamw_rejects) {
  retcl_context *ctx = tu_context();
  const size_t n = 33;
  float *h = tu_alloc(n);
  tu_fill_uniform(h, n, -1, 1);
  cl_mem p = tu_upload(ctx, h, n), g = tu_upload(ctx, h, n),
         m = tu_upload(ctx, h, n), v = tu_upload(ctx, h, n),
         nb = tu_poisoned(ctx, 1), small = tu_poisoned(ctx, n - 1),
         shared = tu_poisoned(ctx, 2 * n);
  const retcl_buffer P = retcl_buf(p, 0), G = retcl_buf(g, 0),
                     M = retcl_buf(m, 0), Vb = retcl_buf(v, 0),
                     N = retcl_buf(nb, 0);
  retcl_adamw ok;
  retcl_adamw_default(&ok);
  ok.clip_norm = 1.0f;
#define STEP(o, s, nn, pp, gg, mm, vv, no) \
  retcl_adamw_step(ctx, (o), (s), (nn), (pp), (gg), (mm), (vv), (no), 0, NULL, NULL)
  ck_assert_int_eq(retcl_adamw_step(NULL, &ok, 1, n, P, G, M, Vb, N, 0, NULL,
                                    NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "opt is NULL",
              STEP(NULL, 1, n, P, G, M, Vb, N));
  static const char *const fields[] = {"lr", "beta1", "beta2", "eps",
                                       "weight_decay", "clip_norm"};
  const float bad_values[][3] = {{NAN, -1e-3f, INFINITY},
                                 {1.0f, -0.1f, NAN},
                                 {1.0f, 1.5f, -0.1f},
                                 {0.0f, -1e-8f, INFINITY},
                                 {-0.01f, NAN, INFINITY},
                                 {-1.0f, NAN, INFINITY}};
  for (int f = 0; f < 6; ++f)
    for (int k = 0; k < 3; ++k) {
      retcl_adamw o = ok;
      float *fp[] = {&o.lr, &o.beta1, &o.beta2, &o.eps, &o.weight_decay,
                     &o.clip_norm};
      *fp[f] = bad_values[f][k];
      char word[32];
      snprintf(word, sizeof word, "opt->%s", fields[f]);
      EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, word,
                  STEP(&o, 1, n, P, G, M, Vb, N));
    }
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "step = 0",
              STEP(&ok, 0, n, P, G, M, Vb, N));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_SIZE, "n",
              STEP(&ok, 1, 0, P, G, M, Vb, N));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "param is NULL",
              STEP(&ok, 1, n, retcl_no_buf(), G, M, Vb, N));
  EXPECT_FAIL(ctx, RETCL_ERROR_BUFFER_TOO_SMALL, "m",
              STEP(&ok, 1, n, P, G, retcl_buf(small, 0), Vb, N));
  EXPECT_FAIL(ctx, RETCL_ERROR_BUFFER_TOO_SMALL, "grad_norm_out",
              STEP(&ok, 1, n, P, G, M, Vb, retcl_buf(nb, 1)));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "param overlaps grad",
              STEP(&ok, 1, n, retcl_buf(shared, 0), retcl_buf(shared, n - 1),
                   M, Vb, N));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "m overlaps v",
              STEP(&ok, 1, n, P, G, M, M, N));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "v overlaps grad_norm_out",
              STEP(&ok, 1, n, P, G, M, Vb, retcl_buf(v, n - 1)));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "wait",
              retcl_adamw_step(ctx, &ok, 1, n, P, G, M, Vb, N, 2, NULL, NULL));
  /* The many-tensor form names the tensor. */
  retcl_adamw_tensor ts[2] = {{P, G, M, Vb, n},
                              {retcl_buf(shared, 0), retcl_buf(shared, n),
                               retcl_buf(small, 0), retcl_buf(v, 0), 1}};
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "count is 0",
              retcl_adamw_step_many(ctx, &ok, 1, 0, ts, N, 0, NULL, NULL));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "tensors is NULL",
              retcl_adamw_step_many(ctx, &ok, 1, 2, NULL, N, 0, NULL, NULL));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT,
              "tensors[0].v overlaps tensors[1].v",
              retcl_adamw_step_many(ctx, &ok, 1, 2, ts, N, 0, NULL, NULL));
  ts[1].v = retcl_buf(small, 2);
  ts[1].n = 0;
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_SIZE, "tensors[1].n",
              retcl_adamw_step_many(ctx, &ok, 1, 2, ts, N, 0, NULL, NULL));
  /* grad_norm alone. */
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "norm_out is NULL",
              retcl_grad_norm(ctx, n, G, retcl_no_buf(), 0, NULL, NULL));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_ARGUMENT, "norm_out overlaps grad",
              retcl_grad_norm(ctx, n, retcl_buf(shared, 0),
                              retcl_buf(shared, 4), 0, NULL, NULL));
  EXPECT_FAIL(ctx, RETCL_ERROR_INVALID_SIZE, "n",
              retcl_grad_norm(ctx, 0, G, N, 0, NULL, NULL));
#undef STEP
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "retcl_grad_norm"));
  assert_unchanged(ctx, p, h, n, "param");
  assert_unchanged(ctx, m, h, n, "m");
  assert_unchanged(ctx, v, h, n, "v");
  assert_unchanged(ctx, g, h, n, "grad");
  assert_all_nan(ctx, nb, 1, "grad_norm_out");
  assert_all_nan(ctx, small, n - 1, "small");
  assert_all_nan(ctx, shared, 2 * n, "shared");
  const cl_mem all[] = {p, g, m, v, nb, small, shared};
  for (size_t i = 0; i < sizeof all / sizeof *all; ++i) clReleaseMemObject(all[i]);
  retcl_context_destroy(ctx);
  free(h);
}
END_TEST

int main(void) {
  Suite *s = suite_create("train_ops");
  /* Cases by op, so a checker can run one (CK_RUN_CASE=cross_entropy). */
  TCase *glu = tcase_create("glu");
  tcase_add_loop_test(glu, glu_backward_matches_reference, 0,
                      sizeof glu_cases / sizeof *glu_cases);
  suite_add_tcase(s, glu);
  TCase *emb = tcase_create("embedding");
  tcase_add_loop_test(emb, embedding_backward_matches_reference, 0,
                      sizeof emb_cases / sizeof *emb_cases);
  tcase_add_test(emb, events_and_wait_lists);
  suite_add_tcase(s, emb);
  TCase *ce = tcase_create("cross_entropy");
  tcase_add_loop_test(ce, cross_entropy_matches_reference, 0,
                      sizeof ce_cases / sizeof *ce_cases);
  tcase_add_test(ce, cross_entropy_is_deterministic);
  suite_add_tcase(s, ce);
  TCase *opt = tcase_create("optimizer");
  tcase_add_loop_test(opt, adamw_matches_reference, 0,
                      sizeof adam_cases / sizeof *adam_cases);
  tcase_add_test(opt, adamw_is_deterministic);
  tcase_add_test(opt, grad_norm_matches_reference);
  tcase_add_test(opt, lr_schedule_values);
  suite_add_tcase(s, opt);
  TCase *bad = tcase_create("invalid");
  tcase_add_test(bad, glu_backward_rejects);
  tcase_add_test(bad, embedding_backward_rejects);
  tcase_add_test(bad, cross_entropy_rejects);
  tcase_add_test(bad, adamw_rejects);
  suite_add_tcase(s, bad);
  return tu_run_suite(s);
}
