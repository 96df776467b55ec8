/* test_retention_grad.c - retcl_retention_backward (docs/design.md §1.7) by
 * every algorithm and form against the analytic double-precision backward
 * of reference/ref_retention_grad.c, that backward against central finite
 * differences of the double forwards, the algorithms against each other,
 * a sequence run backward in pieces against one pass, determinism, and
 * every rejected call. Fresh random inputs (seed printed on failure),
 * NaN-poisoned outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "retention_data.h"
#include "testutil.h"

typedef struct rg_case {
  size_t B, T, H, Dk, Dv;
  retcl_layout layout;
  retcl_algorithm algo;
  retcl_retention_form form;
  size_t C;
  float scale;
  int state_in, d_state_out, d_state_in;
  size_t position;  /* torchscale: tokens already in state_in */
  double amplitude; /* of q and k; 0 means 1 */
  int random_decay; /* else RetNet's defaults */
} rg_case;

typedef struct rg_data {
  tu_retention_data in; /* the forward's inputs */
  float *dout, *dso;    /* the gradients of its output and final state */
} rg_data;

/* Gradients as the device returns them, or as the reference does. */
typedef struct rg_grads {
  float *dq, *dk, *dv, *ds;
} rg_grads;
typedef struct rg_grads_d {
  double *dq, *dk, *dv, *ds;
} rg_grads_d;

static const retcl_algorithm ALGOS[3] = {
    RETCL_ALGO_PARALLEL, RETCL_ALGO_RECURRENT, RETCL_ALGO_CHUNKWISE};
static const char *const ALGO_NAMES[3] = {"parallel", "recurrent",
                                          "chunkwise"};

static void make_data(const rg_case *c, rg_data *x) {
  tu_retention_data_make(&x->in, c->B, c->T, c->H, c->Dk, c->Dv,
                         c->amplitude);
  x->dout = tu_alloc(x->in.nvo);
  x->dso = tu_alloc(x->in.ns);
  tu_fill_uniform(x->dout, x->in.nvo, -1, 1);
  tu_fill_uniform(x->dso, x->in.ns, -1, 1);
  tu_retention_fill_decay(&x->in, c->H, c->random_decay);
}

static void free_data(rg_data *x) {
  tu_retention_data_free(&x->in);
  free(x->dout), free(x->dso);
}

static void alloc_grads(const rg_data *x, rg_grads *g) {
  g->dq = tu_alloc(x->in.nqk);
  g->dk = tu_alloc(x->in.nqk);
  g->dv = tu_alloc(x->in.nvo);
  g->ds = tu_alloc(x->in.ns);
}
static void free_grads(rg_grads *g) {
  free(g->dq), free(g->dk), free(g->dv), free(g->ds);
}
static void alloc_grads_d(const rg_data *x, rg_grads_d *g) {
  g->dq = tu_alloc_d(x->in.nqk);
  g->dk = tu_alloc_d(x->in.nqk);
  g->dv = tu_alloc_d(x->in.nvo);
  g->ds = tu_alloc_d(x->in.ns);
}
static void free_grads_d(rg_grads_d *g) {
  free(g->dq), free(g->dk), free(g->dv), free(g->ds);
}

static retcl_retention_desc desc_of(const rg_case *c) {
  retcl_retention_desc d = {c->B,      c->T,    c->H,    c->Dk,
                            c->Dv,     c->layout, c->algo, c->form,
                            c->C,      c->scale, c->state_in ? c->position : 0};
  return d;
}

/* Runs the backward of case c on the device; every buffer at an offset
 * (the offset arithmetic), outputs poisoned with NaN first. */
static void run_device(retcl_context *ctx, const rg_case *c, const rg_data *x,
                       rg_grads *g) {
  const size_t off = 3;
  float *pad = tu_alloc((x->in.nqk > x->in.nvo ? x->in.nqk : x->in.nvo) +
                        x->in.ns + off);
#define UP(src, n)                                               \
  (memcpy(pad + off, (src), (n) * sizeof(float)),                \
   tu_upload(ctx, pad, (n) + off))
  cl_mem q = UP(x->in.q, x->in.nqk), k = UP(x->in.k, x->in.nqk),
         v = UP(x->in.v, x->in.nvo);
  cl_mem o = UP(x->dout, x->in.nvo);
  cl_mem si = c->state_in ? UP(x->in.s0, x->in.ns) : NULL;
  cl_mem so = c->d_state_out ? UP(x->dso, x->in.ns) : NULL;
#undef UP
  cl_mem lg = tu_upload(ctx, x->in.lg, c->H);
  cl_mem dq = tu_poisoned(ctx, x->in.nqk + off), dk = tu_poisoned(ctx, x->in.nqk + off);
  cl_mem dv = tu_poisoned(ctx, x->in.nvo + off);
  cl_mem ds = c->d_state_in ? tu_poisoned(ctx, x->in.ns + off) : NULL;
  const retcl_retention_desc d = desc_of(c);
  cl_event ev = NULL;
  tu_ok(ctx, retcl_retention_backward(
                 ctx, &d, retcl_buf(q, off), retcl_buf(k, off),
                 retcl_buf(v, off), retcl_buf(lg, 0), retcl_buf(si, off),
                 retcl_buf(o, off), retcl_buf(so, off), retcl_buf(dq, off),
                 retcl_buf(dk, off), retcl_buf(dv, off), retcl_buf(ds, off), 0,
                 NULL, &ev));
  ck_assert_ptr_nonnull(ev);
  ck_assert_int_eq(clWaitForEvents(1, &ev), CL_SUCCESS);
  clReleaseEvent(ev);
  tu_download(ctx, dq, off, g->dq, x->in.nqk);
  tu_download(ctx, dk, off, g->dk, x->in.nqk);
  tu_download(ctx, dv, off, g->dv, x->in.nvo);
  if (ds) tu_download(ctx, ds, off, g->ds, x->in.ns);
  cl_mem all[] = {q, k, v, o, si, so, lg, dq, dk, dv, ds};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
    if (all[i]) clReleaseMemObject(all[i]);
  free(pad);
}

static double *widen_abs(const float *x, size_t n, int absolute) {
  double *d = tu_alloc_d(n);
  for (size_t i = 0; i < n; ++i) d[i] = absolute ? fabs((double)x[i]) : x[i];
  return d;
}

/* The analytic double backward of case c. */
static void reference(const rg_case *c, const rg_data *x, rg_grads_d *r) {
  double *q = widen_abs(x->in.q, x->in.nqk, 0),
         *k = widen_abs(x->in.k, x->in.nqk, 0);
  double *v = widen_abs(x->in.v, x->in.nvo, 0),
         *o = widen_abs(x->dout, x->in.nvo, 0);
  double *so = widen_abs(x->dso, x->in.ns, 0);
  ref_retention_grad_d(c->form, c->algo, q, k, v, x->in.lg,
                       c->state_in ? x->in.s0 : NULL, c->state_in ? c->position : 0,
                       o, c->d_state_out ? so : NULL, r->dq, r->dk, r->dv,
                       c->d_state_in ? r->ds : NULL, c->B, c->T, c->H, c->Dk,
                       c->Dv, c->layout, c->scale, c->C ? c->C : 64);
  free(q), free(k), free(v), free(o), free(so);
}

static double decay_sum(double lg, double n) {
  return lg == 0 ? n : expm1(n * lg) / expm1(lg);
}

/* The fp32 error bound of every gradient element (docs/design.md §5).
 * Each element is a sum of products of inputs, decay powers and row
 * weights, which the kernels form with fp32 multiplies, fmas and exps,
 * along paths of at most n roundings: a dot product over Dk or Dv, a sum
 * over at most T tokens (within a chunk, or the chunk scan: one fma and
 * one exp of ≤ 3 ulp per chunk, at most 5 roundings per chunk), the
 * torchscale factor (its own sum of ≤ T + Dk roundings) and a few
 * products, so n ≤ 6T + 2(Dk + Dv) + 64. First-order error analysis then
 * bounds each element's error by n·u·M with u = 2^-24 and M the sum of
 * the absolute values of its terms. M is the same backward evaluated on
 * |inputs|: every term is a product of inputs with positive coefficients
 * once each row's weight is taken as a positive factor of dO (the raw
 * form's |scale|; torchscale's 1/(σ_t m_t) or 1/sqrt(c_n), and the final
 * state's 1/sqrt(c_n), the initial state's sqrt(c_p)), so the raw-form
 * backward of |q|, |k|, |v|, weighted |dO|, |dS_T| and |S_0| is exactly M. */
static double nu_of(const rg_case *c) {
  return (6.0 * (double)c->T + 2.0 * (double)(c->Dk + c->Dv) + 64.0) *
         ldexp(1.0, -24);
}

static void bound(const rg_case *c, const rg_data *x, rg_grads_d *M) {
  const int ts = c->form == RETCL_FORM_TORCHSCALE;
  const size_t C = c->C ? c->C : 64;
  const size_t pos = c->state_in ? c->position : 0;
  double *q = widen_abs(x->in.q, x->in.nqk, 1),
         *k = widen_abs(x->in.k, x->in.nqk, 1);
  double *v = widen_abs(x->in.v, x->in.nvo, 1),
         *o = widen_abs(x->dout, x->in.nvo, 1);
  double *so = widen_abs(x->dso, x->in.ns, 1);
  float *s0 = tu_alloc(x->in.ns);
  double *norm = tu_alloc_d(c->B * c->H * c->T);
  if (ts && c->algo != RETCL_ALGO_RECURRENT) {
    double *qs = widen_abs(x->in.q, x->in.nqk, 0),
           *ks = widen_abs(x->in.k, x->in.nqk, 0),
           *vs = widen_abs(x->in.v, x->in.nvo, 0);
    ref_retention_torchscale_norms_d(c->algo, qs, ks, vs, x->in.lg, norm, c->B,
                                     c->T, c->H, c->Dk, c->Dv, c->layout, C);
    free(qs), free(ks), free(vs);
  }
  const size_t Dk = c->Dk, Dv = c->Dv, ss = Dk * Dv;
  for (size_t b = 0; b < c->B; ++b)
    for (size_t h = 0; h < c->H; ++h) {
      const double lg = x->in.lg[h];
      const double alpha = ts && c->state_in ? sqrt(decay_sum(lg, (double)pos)) : 1;
      const double beta = ts ? 1 / sqrt(decay_sum(lg, (double)(pos + c->T))) : 1;
      for (size_t t = 0; t < c->T; ++t) {
        double w = c->scale != 0 ? fabs(c->scale) : 1;
        if (ts && c->algo == RETCL_ALGO_RECURRENT)
          w = 1 / sqrt(decay_sum(lg, (double)(pos + t + 1)));
        else if (ts) {
          const size_t i = c->algo == RETCL_ALGO_PARALLEL ? t : t % C;
          w = 1 / (sqrt(decay_sum(lg, (double)(i + 1))) *
                   norm[(b * c->H + h) * c->T + t]);
        }
        for (size_t e = 0; e < Dv; ++e)
          o[ref_index(c->layout, c->T, c->H, Dv, b, t, h, e)] *= w;
      }
      for (size_t i = 0; i < ss; ++i) {
        const size_t at = (b * c->H + h) * ss + i;
        so[at] *= beta;
        s0[at] = (float)(alpha * fabs((double)x->in.s0[at]) * (1 + 1e-6));
      }
    }
  ref_retention_grad_d(RETCL_FORM_RAW, RETCL_ALGO_RECURRENT, q, k, v, x->in.lg,
                       c->state_in ? s0 : NULL, 0, o,
                       c->d_state_out ? so : NULL, M->dq, M->dk, M->dv,
                       c->state_in ? M->ds : NULL, c->B, c->T, c->H, Dk, Dv,
                       c->layout, 1.0, C);
  if (c->state_in)
    for (size_t b = 0; b < c->B; ++b)
      for (size_t h = 0; h < c->H; ++h) {
        const double alpha =
            ts ? sqrt(decay_sum(x->in.lg[h], (double)pos)) * (1 + 1e-6) : 1;
        for (size_t i = 0; i < ss; ++i) M->ds[(b * c->H + h) * ss + i] *= alpha;
      }
  free(q), free(k), free(v), free(o), free(so), free(s0), free(norm);
}


/* Every element within its bound; returns the worst ratio. */
static double check_bound(const char *what, const rg_case *c, const float *dev,
                          const double *ref, const double *M, size_t n,
                          double nu) {
  double worst = 0;
  for (size_t i = 0; i < n; ++i) {
    const double err = fabs((double)dev[i] - ref[i]);
    const double lim = nu * M[i] + 1e-300;
    ck_assert_msg(isfinite(dev[i]) && err <= lim,
                  "%s %s %s B%zu T%zu H%zu Dk%zu Dv%zu C%zu: element %zu: "
                  "%.9g vs %.9g (error %.3g > bound %.3g; seed %llu)",
                  ALGO_NAMES[c->algo], c->form ? "torchscale" : "raw", what,
                  c->B, c->T, c->H, c->Dk, c->Dv, c->C, i, (double)dev[i],
                  ref[i], err, lim, (unsigned long long)tu_seed());
    if (err / lim > worst) worst = err / lim;
  }
  return worst;
}

static void check_case(retcl_context *ctx, const rg_case *c) {
  rg_data x;
  make_data(c, &x);
  rg_grads g;
  rg_grads_d r, M;
  alloc_grads(&x, &g);
  alloc_grads_d(&x, &r);
  alloc_grads_d(&x, &M);
  run_device(ctx, c, &x, &g);
  reference(c, &x, &r);
  bound(c, &x, &M);
  const double nu = nu_of(c);
  double w = check_bound("dq", c, g.dq, r.dq, M.dq, x.in.nqk, nu);
  w = fmax(w, check_bound("dk", c, g.dk, r.dk, M.dk, x.in.nqk, nu));
  w = fmax(w, check_bound("dv", c, g.dv, r.dv, M.dv, x.in.nvo, nu));
  if (c->d_state_in)
    w = fmax(w, check_bound("d_state_in", c, g.ds, r.ds, M.ds, x.in.ns, nu));
  printf("%-9s %-10s B%zu T%zu H%zu Dk%zu Dv%zu C%zu: worst error / bound "
         "%.3g (bound %.3g of each element's absolute terms)\n",
         ALGO_NAMES[c->algo], c->form ? "torchscale" : "raw", c->B, c->T,
         c->H, c->Dk, c->Dv, c->C, w, nu);
  free_grads(&g);
  free_grads_d(&r);
  free_grads_d(&M);
  free_data(&x);
}

static void all_algorithms(rg_case c) {
  retcl_context *ctx = tu_context();
  for (int a = 0; a < 3; ++a) {
    c.algo = ALGOS[a];
    check_case(ctx, &c);
  }
  retcl_context_destroy(ctx);
}

#define TM RETCL_LAYOUT_TOKEN_MAJOR
#define HM RETCL_LAYOUT_HEAD_MAJOR
#define RAW RETCL_FORM_RAW
#define TS RETCL_FORM_TORCHSCALE

/* ---- device against the analytic reference ---------------------------- */

START_TEST(raw_states_odd_length) {
  /* T = 37 over chunks of 8; every state term. */
  all_algorithms((rg_case){2, 37, 3, 16, 24, TM, 0, RAW, 8, 0, 1, 1, 1, 0, 0, 1});
}
END_TEST

START_TEST(raw_head_major_scale) {
  all_algorithms((rg_case){1, 50, 2, 32, 16, HM, 0, RAW, 16, 0.125f, 1, 1, 1, 0, 0, 1});
  all_algorithms((rg_case){1, 23, 2, 16, 16, HM, 0, RAW, 5, -2.0f, 0, 1, 0, 0, 0, 1});
}
END_TEST

START_TEST(raw_odd_dims_and_one_token) {
  /* Dk, Dv primes below and above a vector; T = 1; Dv = 1. */
  all_algorithms((rg_case){2, 29, 2, 7, 5, HM, 0, RAW, 7, 0, 1, 1, 1, 0, 0, 1});
  all_algorithms((rg_case){1, 19, 1, 17, 13, TM, 0, RAW, 4, 0, 1, 0, 1, 0, 0, 1});
  all_algorithms((rg_case){3, 1, 2, 8, 8, TM, 0, RAW, 4, 0, 1, 1, 1, 0, 0, 1});
  all_algorithms((rg_case){1, 9, 3, 3, 1, TM, 0, RAW, 4, 0, 1, 1, 1, 0, 0, 1});
}
END_TEST

START_TEST(raw_no_states_long_chunks) {
  /* Longer than the score tiles (their fast paths), no state at all; a
   * chunk longer than T; chunks of the default 64 over T = 150. */
  all_algorithms((rg_case){1, 130, 2, 32, 24, TM, 0, RAW, 0, 0, 0, 0, 0, 0, 0, 0});
  all_algorithms((rg_case){1, 40, 1, 8, 40, TM, 0, RAW, 64, 0, 0, 1, 0, 0, 0, 0});
  rg_case c = {1, 150, 2, 16, 16, TM, RETCL_ALGO_CHUNKWISE, RAW, 64, 0, 1, 1, 1, 0, 0, 1};
  retcl_context *ctx = tu_context();
  check_case(ctx, &c);
  retcl_context_destroy(ctx);
}
END_TEST

START_TEST(torchscale_each_algorithm) {
  all_algorithms((rg_case){2, 45, 3, 16, 24, TM, 0, TS, 16, 0, 0, 1, 0, 0, 0, 0});
  all_algorithms((rg_case){1, 33, 1, 8, 8, HM, 0, TS, 8, 0, 0, 0, 0, 0, 0, 0});
  all_algorithms((rg_case){1, 1, 2, 8, 16, TM, 0, TS, 8, 0, 0, 1, 0, 0, 0, 0});
  all_algorithms((rg_case){1, 70, 2, 12, 20, TM, 0, TS, 0, 0, 0, 1, 0, 0, 0, 1});
}
END_TEST

START_TEST(torchscale_recurrent_continues_a_state) {
  /* A state that has absorbed 11 tokens: its gradient too. */
  rg_case c = {2, 13, 2, 8, 12, TM, RETCL_ALGO_RECURRENT, TS, 0, 0, 1, 1, 1, 11, 0, 1};
  retcl_context *ctx = tu_context();
  check_case(ctx, &c);
  c.d_state_out = 0;
  c.layout = HM;
  check_case(ctx, &c);
  retcl_context_destroy(ctx);
}
END_TEST

START_TEST(torchscale_large_scores_hit_the_clamps) {
  /* Row sums past the parallel form's 5e4 clamp, and a chunkwise cross
   * scale r above the in-chunk one: the normalisers stay constants. */
  all_algorithms((rg_case){1, 40, 2, 8, 8, TM, 0, TS, 8, 0, 0, 1, 0, 0, 400.0, 0});
}
END_TEST

START_TEST(torchscale_many_heads_decay_one) {
  /* 24 heads: γ of the last heads is 1.0 in fp32 (c_n = n). */
  rg_case c = {1, 40, 24, 8, 8, TM, RETCL_ALGO_CHUNKWISE, TS, 8, 0, 0, 1, 0, 0, 0, 0};
  retcl_context *ctx = tu_context();
  for (int a = 0; a < 3; ++a) {
    c.algo = ALGOS[a];
    check_case(ctx, &c);
  }
  retcl_context_destroy(ctx);
}
END_TEST

START_TEST(recurrent_state_rows_in_blocks) {
  /* retention_grad.rkb below Dk: the recurrent sweeps split the state rows
   * over work-items and dv is the fixed-order sum of their partials. */
  retcl_context *ctx = NULL;
  tu_ok(NULL, tu_context_with_params("{\"retention_grad\": {\"rkb\": 5}}", &ctx));
  rg_case c = {2, 21, 2, 17, 9, TM, RETCL_ALGO_RECURRENT, RAW, 0, 0.5f, 1, 1, 1, 0, 0, 1};
  check_case(ctx, &c);
  c = (rg_case){1, 12, 3, 12, 20, HM, RETCL_ALGO_RECURRENT, TS, 0, 0, 1, 1, 1, 6, 0, 1};
  check_case(ctx, &c);
  retcl_context_destroy(ctx);
}
END_TEST

/* ---- the analytic backward against finite differences (host only) ----- */

/* L = Σ d_out ⊙ out + Σ d_state_out ⊙ state_out of the double forwards of
 * ref_retention.h; torchscale parallel and chunkwise with their
 * normalisers frozen at `norm` (those of the unperturbed input). */
typedef struct fd_env {
  const rg_case *c;
  const float *lg;
  double *q, *k, *v, *dout, *dso, *norm, *out, *sfin;
  float *s0;
} fd_env;

static double fd_loss(const void *env) {
  const fd_env *e = env;
  const rg_case *c = e->c;
  const size_t C = c->C ? c->C : 64;
  const float *s0 = c->state_in ? e->s0 : NULL;
  if (c->form == RETCL_FORM_RAW) {
    ref_retention_raw_d(e->q, e->k, e->v, e->lg, s0, e->out, e->sfin, c->B,
                        c->T, c->H, c->Dk, c->Dv, c->layout,
                        c->scale != 0 ? c->scale : 1.0);
  } else {
    /* Outputs and the returned (recurrent) final state. */
    ref_retention_torchscale_d(c->algo, e->q, e->k, e->v, e->lg, s0,
                               c->state_in ? c->position : 0, e->out, e->sfin,
                               c->B, c->T, c->H, c->Dk, c->Dv, c->layout, C);
    if (c->algo != RETCL_ALGO_RECURRENT)
      ref_retention_torchscale_frozen_d(c->algo, e->q, e->k, e->v, e->lg,
                                        e->norm, e->out, c->B, c->T, c->H,
                                        c->Dk, c->Dv, c->layout, C);
  }
  const size_t nvo = c->B * c->T * c->H * c->Dv, ns = c->B * c->H * c->Dk * c->Dv;
  double L = 0;
  for (size_t i = 0; i < nvo; ++i) L += e->dout[i] * e->out[i];
  if (c->d_state_out)
    for (size_t i = 0; i < ns; ++i) L += e->dso[i] * e->sfin[i];
  return L;
}

/* Central differences of every element of x against grad. The loss is
 * affine in each single element (retention is linear in each of q, k, v
 * and S_0 separately, and the frozen normalisers do not move), so the
 * difference quotient is exact but for rounding: h = 1e-3 keeps that
 * rounding (|L| eps / h, about 1e-13 here) far below the tolerance,
 * 1e-9 of the largest gradient element. */
static void fd_tensor(const char *what, fd_env *e, double *x, size_t n,
                      const double *grad) {
  double scale = 0;
  for (size_t i = 0; i < n; ++i)
    if (fabs(grad[i]) > scale) scale = fabs(grad[i]);
  for (size_t i = 0; i < n; ++i) {
    const double fd = tu_central_d(fd_loss, e, x, i, 1e-3);
    ck_assert_msg(fabs(fd - grad[i]) <= 1e-9 * scale + 1e-12,
                  "%s %s %s[%zu]: analytic %.12g, finite differences %.12g "
                  "(seed %llu)",
                  ALGO_NAMES[e->c->algo], e->c->form ? "torchscale" : "raw",
                  what, i, grad[i], fd, (unsigned long long)tu_seed());
  }
}

/* S_0 is a float input of the forwards: steps that land on floats, and
 * the quotient over the step actually taken (the loss is affine in it). */
static void fd_state(fd_env *e, const double *grad, size_t n) {
  double scale = 0;
  for (size_t i = 0; i < n; ++i)
    if (fabs(grad[i]) > scale) scale = fabs(grad[i]);
  for (size_t i = 0; i < n; ++i) {
    const double fd = tu_central_f(fd_loss, e, e->s0, i, 1e-3);
    ck_assert_msg(fabs(fd - grad[i]) <= 1e-9 * scale + 1e-12,
                  "%s %s d_state_in[%zu]: analytic %.12g, finite "
                  "differences %.12g (seed %llu)",
                  ALGO_NAMES[e->c->algo], e->c->form ? "torchscale" : "raw", i,
                  grad[i], fd, (unsigned long long)tu_seed());
  }
}

static void fd_case(const rg_case *c) {
  rg_data x;
  make_data(c, &x);
  const size_t C = c->C ? c->C : 64;
  fd_env e = {c, x.in.lg, widen_abs(x.in.q, x.in.nqk, 0),
              widen_abs(x.in.k, x.in.nqk, 0), widen_abs(x.in.v, x.in.nvo, 0),
              widen_abs(x.dout, x.in.nvo, 0), widen_abs(x.dso, x.in.ns, 0),
              tu_alloc_d(c->B * c->H * c->T), tu_alloc_d(x.in.nvo),
              tu_alloc_d(x.in.ns), x.in.s0};
  if (c->form == RETCL_FORM_TORCHSCALE && c->algo != RETCL_ALGO_RECURRENT) {
    ref_retention_torchscale_norms_d(c->algo, e.q, e.k, e.v, x.in.lg, e.norm,
                                     c->B, c->T, c->H, c->Dk, c->Dv,
                                     c->layout, C);
    /* The frozen forward at its own normalisers is torchscale's. */
    double *ts = tu_alloc_d(x.in.nvo);
    ref_retention_torchscale_d(c->algo, e.q, e.k, e.v, x.in.lg, NULL, 0, ts,
                               NULL, c->B, c->T, c->H, c->Dk, c->Dv, c->layout,
                               C);
    ref_retention_torchscale_frozen_d(c->algo, e.q, e.k, e.v, x.in.lg, e.norm,
                                      e.out, c->B, c->T, c->H, c->Dk, c->Dv,
                                      c->layout, C);
    for (size_t i = 0; i < x.in.nvo; ++i)
      ck_assert_msg(fabs(e.out[i] - ts[i]) <= 1e-12 * (1 + fabs(ts[i])),
                    "frozen forward differs from torchscale's at %zu", i);
    free(ts);
  }
  rg_grads_d r;
  alloc_grads_d(&x, &r);
  ref_retention_grad_d(
      c->form, c->algo, e.q, e.k, e.v, x.in.lg, c->state_in ? x.in.s0 : NULL,
      c->state_in ? c->position : 0, e.dout, c->d_state_out ? e.dso : NULL,
      r.dq, r.dk, r.dv, c->d_state_in ? r.ds : NULL, c->B, c->T, c->H, c->Dk,
      c->Dv, c->layout, c->scale, C);
  fd_tensor("dq", &e, e.q, x.in.nqk, r.dq);
  fd_tensor("dk", &e, e.k, x.in.nqk, r.dk);
  fd_tensor("dv", &e, e.v, x.in.nvo, r.dv);
  if (c->d_state_in) fd_state(&e, r.ds, x.in.ns);
  free(e.q), free(e.k), free(e.v), free(e.dout), free(e.dso), free(e.norm);
  free(e.out), free(e.sfin);
  free_grads_d(&r);
  free_data(&x);
}

START_TEST(analytic_matches_finite_differences) {
  /* Raw: the same function for every algorithm (the reference's raw
   * backward goes through the recurrence). */
  fd_case(&(rg_case){1, 7, 2, 3, 5, TM, RETCL_ALGO_RECURRENT, RAW, 3, 0.5f, 1, 1, 1, 0, 0, 1});
  fd_case(&(rg_case){2, 5, 1, 4, 2, HM, RETCL_ALGO_PARALLEL, RAW, 0, 0, 0, 1, 0, 0, 0, 1});
  /* torchscale: each algorithm's own forward. */
  for (int a = 0; a < 3; ++a) {
    fd_case(&(rg_case){1, 8, 2, 3, 4, TM, ALGOS[a], TS, 3, 0, 0, 1, 0, 0, 0, 1});
    /* Large scores: both clamps of the normalisers act. */
    fd_case(&(rg_case){1, 9, 1, 3, 3, HM, ALGOS[a], TS, 4, 0, 0, 1, 0, 0, 60.0, 1});
  }
  fd_case(&(rg_case){1, 6, 2, 3, 4, TM, RETCL_ALGO_RECURRENT, TS, 0, 0, 1, 1, 1, 5, 0, 1});
}
END_TEST

/* ---- the algorithms agree; pieces equal one pass; determinism ---------- */

/* max |a - b| over the elements, against the bound of either. */
static void agree(const char *what, const rg_case *c, const float *a,
                  const float *b, const double *M, size_t n) {
  const double nu = nu_of(c);
  for (size_t i = 0; i < n; ++i)
    ck_assert_msg(fabs((double)a[i] - b[i]) <= 2 * nu * M[i] + 1e-300,
                  "%s: element %zu: %.9g vs %.9g (seed %llu)", what, i,
                  (double)a[i], (double)b[i], (unsigned long long)tu_seed());
}

START_TEST(raw_algorithms_agree) {
  retcl_context *ctx = tu_context();
  rg_case c = {2, 100, 2, 24, 16, TM, 0, RAW, 16, 0, 1, 1, 1, 0, 0, 1};
  rg_data x;
  make_data(&c, &x);
  rg_grads g[3];
  rg_grads_d M;
  alloc_grads_d(&x, &M);
  bound(&c, &x, &M);
  for (int a = 0; a < 3; ++a) {
    c.algo = ALGOS[a];
    alloc_grads(&x, &g[a]);
    run_device(ctx, &c, &x, &g[a]);
  }
  for (int a = 1; a < 3; ++a) {
    agree("dq", &c, g[a].dq, g[0].dq, M.dq, x.in.nqk);
    agree("dk", &c, g[a].dk, g[0].dk, M.dk, x.in.nqk);
    agree("dv", &c, g[a].dv, g[0].dv, M.dv, x.in.nvo);
    agree("d_state_in", &c, g[a].ds, g[0].ds, M.ds, x.in.ns);
  }
  for (int a = 0; a < 3; ++a) free_grads(&g[a]);
  free_grads_d(&M);
  free_data(&x);
  retcl_context_destroy(ctx);
}
END_TEST

START_TEST(backward_is_deterministic) {
  retcl_context *ctx = tu_context();
  rg_case c = {2, 77, 3, 16, 24, TM, 0, RAW, 16, 0, 1, 1, 1, 0, 0, 1};
  rg_data x;
  make_data(&c, &x);
  for (int f = 0; f < 2; ++f)
    for (int a = 0; a < 3; ++a) {
      c.algo = ALGOS[a];
      c.form = f ? TS : RAW;
      c.state_in = c.d_state_in = !f || c.algo == RETCL_ALGO_RECURRENT;
      c.position = f ? 4 : 0;
      rg_grads g1, g2;
      alloc_grads(&x, &g1);
      alloc_grads(&x, &g2);
      run_device(ctx, &c, &x, &g1);
      run_device(ctx, &c, &x, &g2);
      ck_assert(memcmp(g1.dq, g2.dq, x.in.nqk * sizeof(float)) == 0);
      ck_assert(memcmp(g1.dk, g2.dk, x.in.nqk * sizeof(float)) == 0);
      ck_assert(memcmp(g1.dv, g2.dv, x.in.nvo * sizeof(float)) == 0);
      if (c.d_state_in)
        ck_assert(memcmp(g1.ds, g2.ds, x.in.ns * sizeof(float)) == 0);
      free_grads(&g1);
      free_grads(&g2);
    }
  free_data(&x);
  retcl_context_destroy(ctx);
}
END_TEST

/* Tokens [t0, t0 + n) of a [B, T, H, D] token-major tensor. */
static float *slice(const float *x, size_t B, size_t T, size_t H, size_t D,
                    size_t t0, size_t n) {
  float *y = tu_alloc(B * n * H * D);
  for (size_t b = 0; b < B; ++b)
    memcpy(y + b * n * H * D, x + (b * T + t0) * H * D,
           n * H * D * sizeof(float));
  return y;
}
static void unslice(float *x, const float *y, size_t B, size_t T, size_t H,
                    size_t D, size_t t0, size_t n) {
  for (size_t b = 0; b < B; ++b)
    memcpy(x + (b * T + t0) * H * D, y + b * n * H * D,
           n * H * D * sizeof(float));
}

/* A sequence fed forward in pieces (each piece's final state the next
 * one's state_in) and run backward piece by piece from the last, the
 * state gradient carried in place in one buffer, equals one pass. */
static void pieces_equal_one_pass(retcl_retention_form form) {
  retcl_context *ctx = tu_context();
  const size_t B = 2, H = 2, Dk = 8, Dv = 12, T = 41;
  const size_t ends[] = {17, 30, 31, T}; /* piece boundaries */
  const retcl_algorithm algos[] = {
      form == RAW ? RETCL_ALGO_CHUNKWISE : RETCL_ALGO_RECURRENT,
      form == RAW ? RETCL_ALGO_PARALLEL : RETCL_ALGO_RECURRENT,
      RETCL_ALGO_RECURRENT, form == RAW ? RETCL_ALGO_CHUNKWISE : RETCL_ALGO_RECURRENT};
  /* torchscale: only the recurrent form continues a state. Position 3:
   * the first piece also starts from a state. */
  const size_t pos0 = form == RAW ? 0 : 3;
  rg_case whole = {B, T, H, Dk, Dv, TM, RETCL_ALGO_RECURRENT, form, 5, 0, 1, 1, 1, pos0, 0, 1};
  rg_data x;
  make_data(&whole, &x);
  rg_grads one, got;
  alloc_grads(&x, &one);
  alloc_grads(&x, &got);
  run_device(ctx, &whole, &x, &one);

  /* Forward over the pieces, keeping the state before each. */
  const size_t np = sizeof ends / sizeof ends[0], ns = x.in.ns;
  cl_mem lg = tu_upload(ctx, x.in.lg, H);
  cl_mem states[5];
  states[0] = tu_upload(ctx, x.in.s0, ns);
  size_t t0 = 0;
  for (size_t p = 0; p < np; ++p) {
    const size_t n = ends[p] - t0;
    float *q = slice(x.in.q, B, T, H, Dk, t0, n), *k = slice(x.in.k, B, T, H, Dk, t0, n);
    float *v = slice(x.in.v, B, T, H, Dv, t0, n);
    cl_mem qb = tu_upload(ctx, q, B * n * H * Dk), kb = tu_upload(ctx, k, B * n * H * Dk);
    cl_mem vb = tu_upload(ctx, v, B * n * H * Dv), ob = tu_poisoned(ctx, B * n * H * Dv);
    states[p + 1] = tu_poisoned(ctx, ns);
    const retcl_retention_desc d = {B, n, H, Dk, Dv, TM, algos[p], form, 5, 0, pos0 + t0};
    tu_ok(ctx, retcl_retention(ctx, &d, retcl_buf(qb, 0), retcl_buf(kb, 0),
                               retcl_buf(vb, 0), retcl_buf(lg, 0),
                               retcl_buf(states[p], 0), retcl_buf(states[p + 1], 0),
                               retcl_buf(ob, 0), 0, NULL, NULL));
    cl_mem all[] = {qb, kb, vb, ob};
    for (int i = 0; i < 4; ++i) clReleaseMemObject(all[i]);
    free(q), free(k), free(v);
    t0 = ends[p];
  }
  /* Backward from the last piece; ds carries dL/d(state) in place. */
  cl_mem ds = tu_upload(ctx, x.dso, ns);
  for (size_t p = np; p-- > 0;) {
    t0 = p ? ends[p - 1] : 0;
    const size_t n = ends[p] - t0;
    float *q = slice(x.in.q, B, T, H, Dk, t0, n), *k = slice(x.in.k, B, T, H, Dk, t0, n);
    float *v = slice(x.in.v, B, T, H, Dv, t0, n), *o = slice(x.dout, B, T, H, Dv, t0, n);
    cl_mem qb = tu_upload(ctx, q, B * n * H * Dk), kb = tu_upload(ctx, k, B * n * H * Dk);
    cl_mem vb = tu_upload(ctx, v, B * n * H * Dv), ob = tu_upload(ctx, o, B * n * H * Dv);
    cl_mem dqb = tu_poisoned(ctx, B * n * H * Dk), dkb = tu_poisoned(ctx, B * n * H * Dk);
    cl_mem dvb = tu_poisoned(ctx, B * n * H * Dv);
    const retcl_retention_desc d = {B, n, H, Dk, Dv, TM, algos[p], form, 5, 0, pos0 + t0};
    tu_ok(ctx, retcl_retention_backward(
                   ctx, &d, retcl_buf(qb, 0), retcl_buf(kb, 0), retcl_buf(vb, 0),
                   retcl_buf(lg, 0), retcl_buf(states[p], 0), retcl_buf(ob, 0),
                   retcl_buf(ds, 0), retcl_buf(dqb, 0), retcl_buf(dkb, 0),
                   retcl_buf(dvb, 0), retcl_buf(ds, 0), 0, NULL, NULL));
    tu_download(ctx, dqb, 0, q, B * n * H * Dk);
    tu_download(ctx, dkb, 0, k, B * n * H * Dk);
    tu_download(ctx, dvb, 0, v, B * n * H * Dv);
    unslice(got.dq, q, B, T, H, Dk, t0, n);
    unslice(got.dk, k, B, T, H, Dk, t0, n);
    unslice(got.dv, v, B, T, H, Dv, t0, n);
    cl_mem all[] = {qb, kb, vb, ob, dqb, dkb, dvb};
    for (int i = 0; i < 7; ++i) clReleaseMemObject(all[i]);
    free(q), free(k), free(v), free(o);
  }
  tu_download(ctx, ds, 0, got.ds, ns);
  rg_grads_d M;
  alloc_grads_d(&x, &M);
  bound(&whole, &x, &M);
  agree("pieced dq", &whole, got.dq, one.dq, M.dq, x.in.nqk);
  agree("pieced dk", &whole, got.dk, one.dk, M.dk, x.in.nqk);
  agree("pieced dv", &whole, got.dv, one.dv, M.dv, x.in.nvo);
  agree("pieced d_state_in", &whole, got.ds, one.ds, M.ds, ns);
  for (size_t p = 0; p <= np; ++p) clReleaseMemObject(states[p]);
  clReleaseMemObject(ds);
  clReleaseMemObject(lg);
  free_grads_d(&M);
  free_grads(&one);
  free_grads(&got);
  free_data(&x);
  retcl_context_destroy(ctx);
}

START_TEST(raw_pieces_equal_one_pass) { pieces_equal_one_pass(RAW); }
END_TEST

START_TEST(torchscale_recurrent_pieces_equal_one_pass) {
  pieces_equal_one_pass(TS);
}
END_TEST

/* ---- rejected calls ---------------------------------------------------- */

typedef struct bad_env {
  retcl_context *ctx;
  retcl_retention_desc d;
  cl_mem q, k, v, lg, o, s, dso, dq, dk, dv, ds, small, small_state;
  size_t n, ns;
} bad_env;

typedef struct bad_call {
  const retcl_retention_desc *d;
  cl_mem q, s_in, dout, dso, dq, dk, dv, ds;
  size_t ds_off;
} bad_call;

static bad_call normal(bad_env *e) {
  bad_call c = {&e->d, e->q, NULL, e->o, NULL, e->dq, e->dk, e->dv, NULL, 0};
  return c;
}

static retcl_status call(bad_env *e, const bad_call *c) {
  return retcl_retention_backward(
      e->ctx, c->d, retcl_buf(c->q, 0), retcl_buf(e->k, 0), retcl_buf(e->v, 0),
      retcl_buf(e->lg, 0), retcl_buf(c->s_in, 0), retcl_buf(c->dout, 0),
      retcl_buf(c->dso, 0), retcl_buf(c->dq, 0), retcl_buf(c->dk, 0),
      retcl_buf(c->dv, 0), retcl_buf(c->ds, c->ds_off), 0, NULL, NULL);
}

static void expect(bad_env *e, const bad_call *c, retcl_status want,
                   const char *word) {
  const retcl_status got = call(e, c);
  ck_assert_msg(got == want, "expected status %d, got %d (%s)", want, got,
                retcl_last_error(e->ctx));
  ck_assert_msg(strstr(retcl_last_error(e->ctx), word) != NULL,
                "message \"%s\" does not name \"%s\"",
                retcl_last_error(e->ctx), word);
  ck_assert_msg(strstr(retcl_last_error(e->ctx), "retcl_retention_backward"),
                "message \"%s\" does not name the op",
                retcl_last_error(e->ctx));
}

START_TEST(rejects_bad_calls_and_writes_nothing) {
  bad_env e;
  e.ctx = tu_context();
  const retcl_retention_desc d0 = {1, 10, 2, 8, 8, TM, RETCL_ALGO_CHUNKWISE, RAW, 4, 0, 0};
  e.d = d0;
  e.n = 10 * 2 * 8;
  e.ns = 2 * 8 * 8;
  float *x = tu_alloc(e.n + e.ns);
  tu_fill_uniform(x, e.n + e.ns, -1, 1);
  e.q = tu_upload(e.ctx, x, e.n);
  e.k = tu_upload(e.ctx, x, e.n);
  e.v = tu_upload(e.ctx, x, e.n);
  e.o = tu_upload(e.ctx, x, e.n);
  e.s = tu_upload(e.ctx, x, e.ns);
  e.dso = tu_upload(e.ctx, x, e.ns);
  float lgh[2];
  retcl_default_log_decay(2, lgh);
  e.lg = tu_upload(e.ctx, lgh, 2);
  e.dq = tu_poisoned(e.ctx, e.n);
  e.dk = tu_poisoned(e.ctx, e.n);
  e.dv = tu_poisoned(e.ctx, e.n);
  e.ds = tu_poisoned(e.ctx, 2 * e.ns);
  e.small = tu_poisoned(e.ctx, e.n - 1);
  e.small_state = tu_poisoned(e.ctx, e.ns - 1);
  free(x);
  retcl_retention_desc d;
  bad_call c;

  ck_assert_int_eq(retcl_retention_backward(
                       NULL, &e.d, retcl_buf(e.q, 0), retcl_buf(e.k, 0),
                       retcl_buf(e.v, 0), retcl_buf(e.lg, 0), retcl_no_buf(),
                       retcl_buf(e.o, 0), retcl_no_buf(), retcl_buf(e.dq, 0),
                       retcl_buf(e.dk, 0), retcl_buf(e.dv, 0), retcl_no_buf(),
                       0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  c = normal(&e); c.d = NULL;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "desc");
  const struct {
    size_t *field;
    size_t value;
    retcl_status want;
    const char *word;
  } dims[] = {{&d.tokens, 0, RETCL_ERROR_INVALID_SIZE, "tokens"},
              {&d.batch, 0, RETCL_ERROR_INVALID_SIZE, "batch"},
              {&d.heads, 0, RETCL_ERROR_INVALID_SIZE, "heads"},
              {&d.key_dim, 0, RETCL_ERROR_INVALID_SIZE, "key_dim"},
              {&d.value_dim, 4096, RETCL_ERROR_INVALID_SIZE, "value_dim"},
              {&d.chunk_size, 5000, RETCL_ERROR_INVALID_SIZE, "chunk_size"}};
  for (size_t i = 0; i < sizeof dims / sizeof dims[0]; ++i) {
    d = e.d;
    *dims[i].field = dims[i].value;
    c = normal(&e); c.d = &d;
    expect(&e, &c, dims[i].want, dims[i].word);
  }
  d = e.d; d.algorithm = (retcl_algorithm)7; c = normal(&e); c.d = &d;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "algorithm");
  d = e.d; d.form = (retcl_retention_form)7;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "form");
  d = e.d; d.layout = (retcl_layout)9;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "layout");
  d = e.d; d.scale = NAN;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "scale");
  /* Buffers: missing, too small, overlapping. */
  c = normal(&e); c.q = NULL;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "q");
  c = normal(&e); c.q = e.small;
  expect(&e, &c, RETCL_ERROR_BUFFER_TOO_SMALL, "q");
  c = normal(&e); c.dout = NULL;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "d_out");
  c = normal(&e); c.dout = e.small;
  expect(&e, &c, RETCL_ERROR_BUFFER_TOO_SMALL, "d_out");
  c = normal(&e); c.dq = e.small;
  expect(&e, &c, RETCL_ERROR_BUFFER_TOO_SMALL, "dq");
  c = normal(&e); c.dk = NULL;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "dk");
  c = normal(&e); c.dv = e.small;
  expect(&e, &c, RETCL_ERROR_BUFFER_TOO_SMALL, "dv");
  c = normal(&e); c.s_in = e.small_state;
  expect(&e, &c, RETCL_ERROR_BUFFER_TOO_SMALL, "state_in");
  c = normal(&e); c.dso = e.small_state;
  expect(&e, &c, RETCL_ERROR_BUFFER_TOO_SMALL, "d_state_out");
  c = normal(&e); c.s_in = e.s; c.ds = e.small_state;
  expect(&e, &c, RETCL_ERROR_BUFFER_TOO_SMALL, "d_state_in");
  c = normal(&e); c.ds = e.ds;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "state_in");
  c = normal(&e); c.dq = e.q;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "dq overlaps q");
  c = normal(&e); c.dv = e.o;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "dv overlaps d_out");
  c = normal(&e); c.dk = e.dq;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "dk overlaps dq");
  c = normal(&e); c.s_in = e.s; c.ds = e.s;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "d_state_in overlaps state_in");
  c = normal(&e); c.s_in = e.s; c.dso = e.ds; c.ds = e.ds; c.ds_off = 1;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "exact same range");
  /* The forward's rules: torchscale parallel and chunkwise start empty;
   * a torchscale state comes with its position. */
  d = e.d; d.form = TS; d.position = 3;
  c = normal(&e); c.d = &d; c.s_in = e.s;
  expect(&e, &c, RETCL_ERROR_UNSUPPORTED, "chunkwise");
  d.algorithm = RETCL_ALGO_PARALLEL;
  expect(&e, &c, RETCL_ERROR_UNSUPPORTED, "parallel");
  d.algorithm = RETCL_ALGO_RECURRENT; d.position = 0;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "position");
  c.s_in = NULL; d.position = 4;
  expect(&e, &c, RETCL_ERROR_INVALID_ARGUMENT, "position");
  ck_assert_int_eq(retcl_retention_backward(
                       e.ctx, &e.d, retcl_buf(e.q, 0), retcl_buf(e.k, 0),
                       retcl_buf(e.v, 0), retcl_buf(e.lg, 0), retcl_no_buf(),
                       retcl_buf(e.o, 0), retcl_no_buf(), retcl_buf(e.dq, 0),
                       retcl_buf(e.dk, 0), retcl_buf(e.dv, 0), retcl_no_buf(),
                       2, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  retcl_context *other = tu_context();
  cl_mem foreign = tu_poisoned(other, e.n);
  c = normal(&e); c.dv = foreign;
  expect(&e, &c, RETCL_ERROR_CONTEXT_MISMATCH, "dv");

  /* None of the failed calls wrote anything. */
  float *got = tu_alloc(2 * e.ns);
  cl_mem outs[] = {e.dq, e.dk, e.dv};
  for (int i = 0; i < 3; ++i) {
    tu_download(e.ctx, outs[i], 0, got, e.n);
    for (size_t j = 0; j < e.n; ++j) ck_assert(isnan(got[j]));
  }
  tu_download(e.ctx, e.ds, 0, got, 2 * e.ns);
  for (size_t j = 0; j < 2 * e.ns; ++j) ck_assert(isnan(got[j]));
  free(got);
  clReleaseMemObject(foreign);
  retcl_context_destroy(other);
  cl_mem all[] = {e.q, e.k, e.v, e.lg, e.o, e.s, e.dso, e.dq, e.dk,
                  e.dv, e.ds, e.small, e.small_state};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
    clReleaseMemObject(all[i]);
  retcl_context_destroy(e.ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("retention_grad");
  TCase *raw = tcase_create("raw");
  tcase_add_test(raw, raw_states_odd_length);
  tcase_add_test(raw, raw_head_major_scale);
  tcase_add_test(raw, raw_odd_dims_and_one_token);
  tcase_add_test(raw, raw_no_states_long_chunks);
  tcase_add_test(raw, raw_algorithms_agree);
  tcase_add_test(raw, raw_pieces_equal_one_pass);
  tcase_add_test(raw, backward_is_deterministic);
  suite_add_tcase(s, raw);
  /* The recurrent backward with its state rows split over work-items (and
   * the reduction of the dv partials that splitting needs), its own case
   * so that the simulated-device run of the GPU patterns can take it. */
  TCase *blocks = tcase_create("blocks");
  tcase_add_test(blocks, recurrent_state_rows_in_blocks);
  suite_add_tcase(s, blocks);

  TCase *ts = tcase_create("torchscale");
  tcase_add_test(ts, torchscale_each_algorithm);
  tcase_add_test(ts, torchscale_recurrent_continues_a_state);
  tcase_add_test(ts, torchscale_large_scores_hit_the_clamps);
  tcase_add_test(ts, torchscale_many_heads_decay_one);
  tcase_add_test(ts, torchscale_recurrent_pieces_equal_one_pass);
  suite_add_tcase(s, ts);
  TCase *fd = tcase_create("reference");
  tcase_add_test(fd, analytic_matches_finite_differences);
  suite_add_tcase(s, fd);
  TCase *bad = tcase_create("invalid");
  tcase_add_test(bad, rejects_bad_calls_and_writes_nothing);
  suite_add_tcase(s, bad);
  return tu_run_suite(s);
}
