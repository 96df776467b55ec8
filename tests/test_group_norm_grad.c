/* test_group_norm_grad.c - retcl_group_norm_gate_backward (docs/design.md
 * §1.7): the device's dx, d_gate, d_weight and d_bias against the analytic
 * double backward (ref_group_norm_grad.h) within a bound derived element
 * by element from fp32 rounding, the analytic backward against central
 * differences of the double forward, bitwise reproducible weight
 * gradients, the model's RMSNorm (one head of width d, no gate, a weight),
 * and every rejected call. Both kernel organisations (a work-item per
 * segment of rows, as on CPUs, and lanes of a work-group sharing a row, as
 * on GPUs) run every case, each with the built-in group_norm.grad_rows and
 * with an odd one; RETCL_KERNEL_PATHS=cpu or gpu (scripts/test.sh, the
 * oclgrind runs) keeps only the records of that pattern. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group_norm_data.h"
#include "ref_group_norm.h"
#include "ref_group_norm_grad.h"
#include "testutil.h"

#define U 0x1.0p-24 /* fp32 unit roundoff */
#define GUARD 13    /* NaN floats after every device tensor */

/* The parameter records every case runs under: both access patterns, the
 * built-in tiles, then odd ones (partial sums over 3 or 5 tokens, so
 * slices end mid-batch and the last one is short). */
static const char *const records[] = {
    "{\"group_norm\": {\"access\": \"cpu\"}}",
    "{\"group_norm\": {\"access\": \"gpu\"}}",
    "{\"group_norm\": {\"access\": \"cpu\", \"grad_rows\": 3, \"row_items\": 8}}",
    "{\"group_norm\": {\"access\": \"gpu\", \"grad_rows\": 5, \"group_items\": 32}}",
};
#define NRECORDS (sizeof records / sizeof *records)

/* Record k runs unless RETCL_KERNEL_PATHS names the other pattern. */
static int record_wanted(size_t k) {
  const char *paths = getenv("RETCL_KERNEL_PATHS");
  if (!paths || (strcmp(paths, "cpu") != 0 && strcmp(paths, "gpu") != 0))
    return 1;
  char want[32];
  snprintf(want, sizeof want, "\"access\": \"%s\"", paths);
  return strstr(records[k], want) != NULL;
}

typedef struct gg_case {
  size_t B, T, H, D;
  retcl_layout layout;
  retcl_norm_kind kind;
  retcl_gate gate;
  int weight, bias; /* the forward had a weight / a bias */
  int dw, db;       /* ask for d_weight / d_bias */
  int in_place;     /* dx is d_out and d_gate is gate (same offsets) */
  int offsets;      /* every tensor at its own nonzero offset */
  float eps;        /* 0: the default */
  double x_lo, x_hi;
  int constant_rows;
} gg_case;

/* The forward inputs and d_out (tu_group_norm_data_make), x in [-1, 1)
 * unless the case gives a range. */
static tu_group_norm_data make_inputs(const gg_case *c) {
  const double lo = c->x_lo == c->x_hi ? -1.0 : c->x_lo;
  const double hi = c->x_lo == c->x_hi ? 1.0 : c->x_hi;
  tu_group_norm_data h;
  tu_group_norm_data_make(&h, c->B, c->T, c->H, c->D, lo, hi,
                          c->constant_rows, 1);
  return h;
}

/* Double values per element of each gradient, dx and d_gate [B·T·H·D],
 * d_weight and d_bias [H·D]: the reference gradients and the bounds on
 * the device's errors alike. */
typedef struct grads_d {
  double *dx, *dg, *dw, *db;
} grads_d, bounds, refs;

static grads_d alloc_grads_d(const tu_group_norm_data *h) {
  grads_d r = {tu_alloc_d(h->n), tu_alloc_d(h->n), tu_alloc_d(h->channels),
               tu_alloc_d(h->channels)};
  return r;
}

static void free_grads_d(grads_d *r) {
  free(r->dx);
  free(r->dg);
  free(r->dw);
  free(r->db);
}

/* ---- the error bound ------------------------------------------------------
 *
 * A first-order bound on the fp32 error of each output element, following
 * the kernel's evaluation step by step (γ(k) = k·u/(1 − k·u) bounds a sum
 * of k terms in any order relative to the sum of their magnitudes; the
 * OpenCL C limits are rsqrt 2 ulp, exp 3 ulp, erfc 16 ulp, one ulp being
 * at most 2u relative):
 *   act:  swish σ = 1/(1 + e^−g) to 5u, act = g·σ to 6u, act' = σ +
 *         g·σ·(1 − σ) to 8u·(1 + |g|)·(σ + |g|σ(1 − σ)) (1 − σ loses its
 *         relative accuracy as σ → 1); gelu Φ = erfc(−g/√2)/2 to 32u plus
 *         2g²u from the rounded argument, the density term to (8 + g²)u:
 *         both within (40 + 2g²)u of their magnitudes;
 *   statistics: layer form, shift x₀: μ' = mean(x − x₀) to γ(n+2)·mean|x −
 *         x₀|; c = (x − x₀) − μ' to u|x − x₀| + δμ' + u|c|; RMS: c = x
 *         exactly. v = mean(c²) to mean(2|c|δc) + γ(n+2)·v; r =
 *         rsqrt(v + eps) to ½(δv + 2u(v + eps))/(v + eps) + 4u relative;
 *         ŷ = c·r to r·δc + |ŷ|(δr/r + u);
 *   gradient sweep: y = ŷw + b, d_gate = o·y·act', dy = o·act, e = dy·w,
 *         each product or sum adding u of its magnitude;
 *   dx = ((e − m1) − ŷ·m2)·r with m1 = mean(e) (γ(n+1)), m2 = mean(e·ŷ)
 *         (γ(n+2)), plus 4u·r·(|e| + |m1| + |ŷ·m2|) for its own roundings;
 *   d_weight = Σ dy·ŷ, d_bias = Σ dy over all B·T rows: the errors of the
 *         terms plus γ(B·T + 1) of the sum of magnitudes.
 * Second-order terms (products of these, ~1e-9 relative) are covered by
 * asserting error ≤ 1.1·bound. A wrong formula, channel, eps or sign gives
 * errors of the size of the values themselves, far above the bound. */

static double gam(double k) { return k * U / (1.0 - k * U); }

/* act(g), act'(g) and bounds on their fp32 errors. */
static void act_bounds(retcl_gate gate, double g, double *a, double *da,
                       double *ea, double *eda) {
  if (gate == RETCL_GATE_SWISH) {
    const double s = 1.0 / (1.0 + exp(-g));
    *a = g * s;
    *da = s * (1.0 + g * (1.0 - s));
    *ea = 8.0 * U * fabs(*a);
    *eda = 8.0 * U * (1.0 + fabs(g)) * (s + fabs(g) * s * (1.0 - s));
  } else if (gate == RETCL_GATE_GELU) {
    const double cdf = 0.5 * erfc(-g / sqrt(2.0));
    const double pdf = exp(-0.5 * g * g) * 0.398942280401432678;
    const double k = (40.0 + 2.0 * g * g) * U;
    *a = g * cdf;
    *da = cdf + g * pdf;
    *ea = k * fabs(*a);
    *eda = k * (cdf + fabs(g) * pdf);
  } else {
    *a = 1.0;
    *da = *ea = *eda = 0.0;
  }
}

static bounds make_bounds(const gg_case *c, const tu_group_norm_data *h) {
  const size_t n = c->D;
  const double eps = c->eps > 0 ? c->eps : 1e-6;
  bounds bd = alloc_grads_d(h);
  double *sum_dw = tu_alloc_d(h->channels), *sum_db = tu_alloc_d(h->channels);
  double *cc = tu_alloc_d(n), *dc = tu_alloc_d(n), *yh = tu_alloc_d(n);
  double *dyh = tu_alloc_d(n), *e = tu_alloc_d(n), *de = tu_alloc_d(n);
  double *dy = tu_alloc_d(n), *ddy = tu_alloc_d(n);
  for (size_t i = 0; i < h->channels; ++i)
    bd.dw[i] = bd.db[i] = sum_dw[i] = sum_db[i] = 0.0;
  for (size_t b = 0; b < c->B; ++b)
    for (size_t t = 0; t < c->T; ++t)
      for (size_t hh = 0; hh < c->H; ++hh) {
        size_t row;
        if (c->layout == RETCL_LAYOUT_HEAD_MAJOR)
          row = ((b * c->H + hh) * c->T + t) * n;
        else
          row = ((b * c->T + t) * c->H + hh) * n;
        const float *x = h->x + row;
        const size_t ch = hh * n;
        /* Statistics. */
        double mean = 0.0, dmu = 0.0;
        if (c->kind == RETCL_NORM_LAYER) {
          double au = 0.0;
          for (size_t d = 0; d < n; ++d) {
            mean += x[d];
            au += fabs((double)x[d] - x[0]);
          }
          mean /= (double)n;
          dmu = gam((double)n + 2) * au / (double)n;
        }
        double v = 0.0, dv = 0.0;
        for (size_t d = 0; d < n; ++d) {
          cc[d] = x[d] - mean;
          dc[d] = c->kind == RETCL_NORM_LAYER
                      ? U * fabs((double)x[d] - x[0]) + dmu + U * fabs(cc[d])
                      : 0.0;
          v += cc[d] * cc[d];
          dv += 2.0 * fabs(cc[d]) * dc[d];
        }
        v /= (double)n;
        dv = dv / (double)n + gam((double)n + 2) * v;
        const double r = 1.0 / sqrt(v + eps);
        const double er = 0.5 * (dv + 2.0 * U * (v + eps)) / (v + eps) + 4.0 * U;
        /* Gradient sweep. */
        double m1 = 0.0, m2 = 0.0, a1 = 0.0, a2 = 0.0;
        double dm1 = 0.0, dm2 = 0.0;
        for (size_t d = 0; d < n; ++d) {
          yh[d] = cc[d] * r;
          dyh[d] = r * dc[d] + fabs(yh[d]) * (er + U);
          const double w = c->weight ? h->w[ch + d] : 1.0;
          const double y = yh[d] * w + (c->bias ? h->b[ch + d] : 0.0);
          double dyv = c->bias ? U * fabs(y) : 0.0;
          dyv += fabs(w) * dyh[d] + (c->weight ? U * fabs(yh[d] * w) : 0.0);
          const double o = h->o[row + d];
          double a, da, ea, eda;
          act_bounds(c->gate, c->gate != RETCL_GATE_NONE ? h->g[row + d] : 0.0,
                     &a, &da, &ea, &eda);
          if (c->gate != RETCL_GATE_NONE) {
            bd.dg[row + d] = fabs(o) * (dyv * fabs(da) + fabs(y) * eda) +
                             2.0 * U * fabs(o * y * da);
            dy[d] = o * a;
            ddy[d] = fabs(o) * ea + U * fabs(dy[d]);
          } else {
            dy[d] = o;
            ddy[d] = 0.0;
          }
          e[d] = dy[d] * w;
          de[d] = fabs(w) * ddy[d] + (c->weight ? U * fabs(e[d]) : 0.0);
          m1 += e[d];
          a1 += fabs(e[d]);
          dm1 += de[d];
          m2 += e[d] * yh[d];
          a2 += fabs(e[d] * yh[d]);
          dm2 += fabs(yh[d]) * de[d] + fabs(e[d]) * dyh[d];
          bd.dw[ch + d] += fabs(yh[d]) * ddy[d] + fabs(dy[d]) * dyh[d];
          sum_dw[ch + d] += fabs(dy[d] * yh[d]);
          bd.db[ch + d] += ddy[d];
          sum_db[ch + d] += fabs(dy[d]);
        }
        m1 /= (double)n;
        m2 /= (double)n;
        dm1 = dm1 / (double)n + gam((double)n + 1) * a1 / (double)n;
        dm2 = dm2 / (double)n + gam((double)n + 2) * a2 / (double)n;
        if (c->kind != RETCL_NORM_LAYER) m1 = dm1 = 0.0;
        for (size_t d = 0; d < n; ++d) {
          const double dx = r * (e[d] - m1 - yh[d] * m2);
          bd.dx[row + d] =
              r * (de[d] + dm1 + dyh[d] * fabs(m2) + fabs(yh[d]) * dm2) +
              fabs(dx) * er +
              4.0 * U * r * (fabs(e[d]) + fabs(m1) + fabs(yh[d] * m2));
        }
      }
  const double rows = (double)(c->B * c->T);
  for (size_t i = 0; i < h->channels; ++i) {
    bd.dw[i] += gam(rows + 1) * sum_dw[i];
    bd.db[i] += gam(rows) * sum_db[i];
  }
  free(sum_dw);
  free(sum_db);
  free(cc);
  free(dc);
  free(yh);
  free(dyh);
  free(e);
  free(de);
  free(dy);
  free(ddy);
  return bd;
}

/* Largest |got − ref| / bound (∞ for a NaN or an infinity). */
static double worst_ratio(const float *got, const double *ref,
                          const double *bound, size_t n) {
  double worst = 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(got[i])) return INFINITY;
    const double r = fabs(got[i] - ref[i]) / (1.1 * bound[i] + 1e-30);
    if (r > worst) worst = r;
  }
  return worst;
}

/* ---- device runs -------------------------------------------------------- */

/* What one call wrote. */
typedef struct outputs {
  float *dx, *dg, *dw, *db;
} outputs;

static outputs alloc_outputs(const tu_group_norm_data *h) {
  outputs o = {tu_alloc(h->n), tu_alloc(h->n), tu_alloc(h->channels),
               tu_alloc(h->channels)};
  return o;
}

static void free_outputs(outputs *o) {
  free(o->dx);
  free(o->dg);
  free(o->dw);
  free(o->db);
}

/* One call on fresh device buffers (outputs NaN before), results in *out. */
static void run_device(retcl_context *ctx, const gg_case *c,
                       const tu_group_norm_data *h, outputs *out) {
  const int use_gate = c->gate != RETCL_GATE_NONE;
  /* x, gate, weight and bias at offsets 3, 5, 2 and 9 with c->offsets. */
  tu_group_norm_dev in = tu_group_norm_upload(ctx, h, use_gate, c->weight,
                                              c->bias, c->offsets, GUARD);
  const size_t off = c->offsets ? 1 : 0;
  const size_t oo = 4 * off, dxo = 11 * off, dgo = 6 * off, dwo = 7 * off,
               dbo = 8 * off;
  cl_mem o = tu_upload_guarded(ctx, h->o, h->n, oo, GUARD);
  cl_mem dx = c->in_place ? o : tu_upload_guarded(ctx, NULL, h->n, dxo, GUARD);
  cl_mem dg = !use_gate     ? NULL
              : c->in_place ? in.g.mem
                            : tu_upload_guarded(ctx, NULL, h->n, dgo, GUARD);
  cl_mem dw =
      c->dw ? tu_upload_guarded(ctx, NULL, h->channels, dwo, GUARD) : NULL;
  cl_mem db =
      c->db ? tu_upload_guarded(ctx, NULL, h->channels, dbo, GUARD) : NULL;
  const size_t dx_off = c->in_place ? oo : dxo;
  const size_t dg_off = c->in_place ? in.g.offset : dgo;

  const retcl_group_norm_desc d = {c->B, c->T, c->H, c->D, c->layout,
                                   c->kind, c->gate, c->eps};
  const retcl_buffer none = retcl_no_buf();
  tu_ok(ctx, retcl_group_norm_gate_backward(
                 ctx, &d, in.x, in.g, in.w, in.b, retcl_buf(o, oo),
                 retcl_buf(dx, dx_off), dg ? retcl_buf(dg, dg_off) : none,
                 dw ? retcl_buf(dw, dwo) : none, db ? retcl_buf(db, dbo) : none,
                 0, NULL, NULL));
  tu_download_guarded(ctx, dx, dx_off, h->n, GUARD, out->dx, "dx");
  if (dg) tu_download_guarded(ctx, dg, dg_off, h->n, GUARD, out->dg, "d_gate");
  if (dw)
    tu_download_guarded(ctx, dw, dwo, h->channels, GUARD, out->dw, "d_weight");
  if (db)
    tu_download_guarded(ctx, db, dbo, h->channels, GUARD, out->db, "d_bias");
  /* The inputs that are not outputs are unchanged. */
  float *back = tu_alloc(h->n);
  tu_download(ctx, in.x.mem, in.x.offset, back, h->n);
  ck_assert(memcmp(back, h->x, h->n * sizeof *back) == 0);
  free(back);

  if (db) clReleaseMemObject(db);
  if (dw) clReleaseMemObject(dw);
  if (dg && !c->in_place) clReleaseMemObject(dg);
  if (!c->in_place) clReleaseMemObject(dx);
  clReleaseMemObject(o);
  tu_group_norm_release(&in);
}

static refs make_refs(const gg_case *c, const tu_group_norm_data *h) {
  refs r = alloc_grads_d(h);
  const int use_gate = c->gate != RETCL_GATE_NONE;
  ref_group_norm_gate_backward(h->x, use_gate ? h->g : NULL,
                               c->weight ? h->w : NULL, c->bias ? h->b : NULL,
                               h->o, r.dx, use_gate ? r.dg : NULL,
                               c->weight ? r.dw : NULL, c->bias ? r.db : NULL,
                               c->B, c->T, c->H, c->D, c->layout, c->kind,
                               c->gate, c->eps);
  return r;
}

static void run_case(const gg_case *c) {
  tu_group_norm_data h = make_inputs(c);
  refs ref = make_refs(c, &h);
  bounds bd = make_bounds(c, &h);
  outputs got = alloc_outputs(&h);
  for (size_t k = 0; k < NRECORDS; ++k) {
    if (!record_wanted(k)) continue;
    retcl_context *ctx = NULL;
    tu_ok(NULL, tu_context_with_params(records[k], &ctx));
    run_device(ctx, c, &h, &got);
    retcl_context_destroy(ctx);
    const double rx = worst_ratio(got.dx, ref.dx, bd.dx, h.n);
    const double rg = c->gate != RETCL_GATE_NONE
                          ? worst_ratio(got.dg, ref.dg, bd.dg, h.n) : 0.0;
    const double rw = c->dw ? worst_ratio(got.dw, ref.dw, bd.dw, h.channels) : 0.0;
    const double rb = c->db ? worst_ratio(got.db, ref.db, bd.db, h.channels) : 0.0;
    if (getenv("RETCL_TEST_VERBOSE"))
      fprintf(stderr,
              "B%zu T%zu H%zu D%zu %s kind%d gate%d, %s: error/bound dx %.3g "
              "d_gate %.3g d_weight %.3g d_bias %.3g; rel err dx %.3g\n",
              c->B, c->T, c->H, c->D,
              c->layout == RETCL_LAYOUT_HEAD_MAJOR ? "HM" : "TM", (int)c->kind,
              (int)c->gate, records[k], rx, rg, rw, rb,
              tu_rel_error(got.dx, ref.dx, h.n));
    /* Every element within its derived bound (make_bounds). */
    ck_assert_msg(rx <= 1.0 && rg <= 1.0 && rw <= 1.0 && rb <= 1.0,
                  "record %s: error / bound: dx %.3g, d_gate %.3g, d_weight "
                  "%.3g, d_bias %.3g (seed %llu)",
                  records[k], rx, rg, rw, rb, (unsigned long long)tu_seed());
  }
  free_outputs(&got);
  free_grads_d(&bd);
  free_grads_d(&ref);
  tu_group_norm_data_free(&h);
}

#define TM RETCL_LAYOUT_TOKEN_MAJOR
#define HM RETCL_LAYOUT_HEAD_MAJOR
#define RMS RETCL_NORM_RMS
#define LAYER RETCL_NORM_LAYER
#define SWISH RETCL_GATE_SWISH
#define GELU RETCL_GATE_GELU
#define NOGATE RETCL_GATE_NONE
static const gg_case cases[] = {
    /* Every kind, gate and layout, with and without the affine terms. */
    {2, 3, 4, 64, TM, RMS, SWISH},
    {2, 5, 3, 40, HM, RMS, GELU, .weight = 1, .dw = 1},
    {1, 4, 2, 48, TM, RMS, NOGATE, .bias = 1, .db = 1},
    {3, 2, 2, 24, HM, LAYER, SWISH, .weight = 1, .bias = 1, .dw = 1, .db = 1},
    {2, 3, 3, 100, TM, LAYER, GELU, .weight = 1, .bias = 1, .dw = 1, .db = 1},
    {2, 7, 2, 9, HM, LAYER, NOGATE, .weight = 1, .bias = 1, .dw = 1, .db = 1},
    /* Parameters given to the forward but their gradients not asked for,
     * and only one of the two asked for. */
    {2, 3, 2, 16, TM, LAYER, SWISH, .weight = 1, .bias = 1},
    {2, 3, 2, 16, HM, RMS, GELU, .weight = 1, .bias = 1, .db = 1},
    /* The model's RMSNorm: one head of width d, no gate, a weight, its
     * gradient; d = 512, and an odd d (509, prime), and one token. */
    {2, 9, 1, 512, TM, RMS, NOGATE, .weight = 1, .dw = 1},
    {1, 13, 1, 509, TM, RMS, NOGATE, .weight = 1, .dw = 1},
    {3, 1, 1, 509, TM, RMS, NOGATE, .weight = 1, .dw = 1},
    /* Odd sizes: T = 1, head dim 1, prime dims, many short rows (more rows
     * than a group holds, slices ending mid-batch). */
    {1, 1, 3, 33, HM, LAYER, GELU, .weight = 1, .bias = 1, .dw = 1, .db = 1},
    {2, 3, 5, 1, TM, RMS, SWISH, .weight = 1, .dw = 1},
    {2, 3, 5, 1, HM, LAYER, GELU, .weight = 1, .bias = 1, .dw = 1, .db = 1},
    {3, 37, 5, 3, HM, LAYER, SWISH, .weight = 1, .bias = 1, .dw = 1, .db = 1},
    {2, 41, 1, 7, TM, RMS, GELU, .weight = 1, .dw = 1},
    {1, 2, 3, 1031, HM, RMS, SWISH, .bias = 1, .db = 1},
    {2, 3, 2, 257, TM, LAYER, GELU, .weight = 1, .bias = 1, .dw = 1, .db = 1},
    /* In place (dx = d_out, d_gate = gate) with offsets everywhere. */
    {2, 3, 4, 96, TM, LAYER, SWISH, .weight = 1, .bias = 1, .dw = 1, .db = 1,
     .in_place = 1, .offsets = 1},
    {1, 5, 3, 13, HM, RMS, NOGATE, .weight = 1, .dw = 1, .in_place = 1,
     .offsets = 1},
    {2, 4, 3, 33, HM, RMS, GELU, .weight = 1, .bias = 1, .dw = 1, .db = 1,
     .offsets = 1},
    /* Constant rows (variance 0: ŷ = 0 exactly), a large mean, values
     * near the default eps, a custom eps. */
    {2, 3, 4, 37, HM, LAYER, SWISH, .weight = 1, .bias = 1, .dw = 1, .db = 1,
     .x_lo = -300, .x_hi = 300, .constant_rows = 1},
    {2, 3, 2, 256, TM, LAYER, GELU, .weight = 1, .dw = 1, .x_lo = 999,
     .x_hi = 1001},
    {2, 2, 3, 64, TM, RMS, SWISH, .weight = 1, .dw = 1, .x_lo = -2e-3,
     .x_hi = 2e-3},
    {2, 2, 3, 64, HM, LAYER, SWISH, .bias = 1, .db = 1, .eps = 1e-2f,
     .x_lo = -0.2, .x_hi = 0.2},
};

/* Loop test: _i indexes cases. */
START_TEST(device_matches_analytic) { run_case(&cases[_i]); }
END_TEST

/* ---- analytic backward against finite differences ------------------------ */

/* Where L is taken: the case's inputs (w, b NULL when the case has none),
 * d_out, and room for the forward's output. The central differences below
 * move one element of x, g, w or b in place. */
typedef struct fd_point {
  const gg_case *c;
  const double *x, *g, *o;
  const float *w, *b;
  double *tmp;
} fd_point;

/* L = Σ o ⊙ out(x, g, w, b) by the double forward (env: an fd_point). */
static double loss(const void *env) {
  const fd_point *p = env;
  const gg_case *c = p->c;
  const size_t n = c->B * c->T * c->H * c->D;
  ref_group_norm_gate_d(p->x, p->g, p->w, p->b, p->tmp, c->B, c->T, c->H,
                        c->D, c->layout, c->kind, c->gate, c->eps);
  double s = 0.0;
  for (size_t i = 0; i < n; ++i) s += p->o[i] * p->tmp[i];
  return s;
}

/* ‖fd − an‖ / ‖an‖ accumulated over one gradient. */
typedef struct fd_err {
  double num, den;
} fd_err;

static void fd_add(fd_err *e, double fd, double an) {
  e->num += (fd - an) * (fd - an);
  e->den += an * an;
}

static double fd_rel(const fd_err *e) {
  return e->den > 0 ? sqrt(e->num / e->den) : sqrt(e->num);
}

/* Central differences of the double forward, h = 1e-6 for x and the gate
 * (values O(1)): truncation h²·|L'''|/6 ≈ 1e-12 and rounding
 * 1e-16·|L|/h ≈ 1e-9 against gradients of O(0.1 … 1), so 1e-6 relative
 * (normwise) holds with margin. Weight and bias enter linearly and are
 * floats in the reference: perturbed by h = 2^-20, exact in fp32 for
 * |w| < 8, their differences are exact but for the rounding of L. */
START_TEST(analytic_matches_finite_differences) {
  static const gg_case fd_cases[] = {
      {2, 2, 2, 5, TM, RMS, SWISH, .weight = 1, .bias = 1},
      {2, 2, 2, 5, HM, RMS, GELU, .weight = 1},
      {1, 3, 2, 6, TM, RMS, NOGATE, .bias = 1},
      {2, 2, 2, 5, HM, LAYER, SWISH, .weight = 1, .bias = 1},
      {1, 3, 2, 4, TM, LAYER, GELU, .weight = 1, .bias = 1},
      {2, 2, 1, 7, HM, LAYER, NOGATE},
      /* The model's RMSNorm. */
      {1, 3, 1, 9, TM, RMS, NOGATE, .weight = 1},
      {1, 2, 2, 6, TM, LAYER, SWISH, .weight = 1, .eps = 1e-2f},
  };
  for (size_t k = 0; k < sizeof fd_cases / sizeof *fd_cases; ++k) {
    const gg_case *c = &fd_cases[k];
    const size_t n = c->B * c->T * c->H * c->D, ch = c->H * c->D;
    const int use_gate = c->gate != RETCL_GATE_NONE;
    double *x = tu_alloc_d(n), *g = tu_alloc_d(n), *o = tu_alloc_d(n);
    double *tmp = tu_alloc_d(n), *dx = tu_alloc_d(n), *dg = tu_alloc_d(n);
    double *dw = tu_alloc_d(ch), *db = tu_alloc_d(ch), *wd = tu_alloc_d(ch),
           *bd = tu_alloc_d(ch);
    float *w = tu_alloc(ch), *b = tu_alloc(ch);
    for (size_t i = 0; i < n; ++i) {
      x[i] = tu_uniform(-1, 1);
      g[i] = tu_uniform(-4, 4);
      o[i] = tu_uniform(-1, 1);
    }
    tu_fill_uniform(w, ch, 0.5, 1.5);
    tu_fill_uniform(b, ch, -0.5, 0.5);
    for (size_t i = 0; i < ch; ++i) {
      wd[i] = w[i];
      bd[i] = b[i];
    }
    const fd_point pt = {c, x, g, o, c->weight ? w : NULL,
                         c->bias ? b : NULL, tmp};
    ref_group_norm_gate_backward_d(
        x, use_gate ? g : NULL, c->weight ? wd : NULL, c->bias ? bd : NULL, o,
        dx, use_gate ? dg : NULL, c->weight ? dw : NULL, c->bias ? db : NULL,
        c->B, c->T, c->H, c->D, c->layout, c->kind, c->gate, c->eps);
    const double h = 1e-6;
    fd_err ex = {0, 0}, eg = {0, 0}, ew = {0, 0}, eb = {0, 0};
    for (size_t j = 0; j < n; ++j) {
      fd_add(&ex, tu_central_d(loss, &pt, x, j, h), dx[j]);
      if (use_gate) fd_add(&eg, tu_central_d(loss, &pt, g, j, h), dg[j]);
    }
    const double hw = 0x1.0p-20; /* w ± hw is a float: the step is exact */
    for (size_t j = 0; j < ch; ++j) {
      if (c->weight) fd_add(&ew, tu_central_f(loss, &pt, w, j, hw), dw[j]);
      if (c->bias) fd_add(&eb, tu_central_f(loss, &pt, b, j, hw), db[j]);
    }
    if (getenv("RETCL_TEST_VERBOSE"))
      fprintf(stderr, "fd case %zu: dx %.3g d_gate %.3g d_weight %.3g "
              "d_bias %.3g\n", k, fd_rel(&ex), fd_rel(&eg), fd_rel(&ew),
              fd_rel(&eb));
    ck_assert_msg(fd_rel(&ex) <= 1e-6 && fd_rel(&eg) <= 1e-6 &&
                      fd_rel(&ew) <= 1e-6 && fd_rel(&eb) <= 1e-6,
                  "case %zu: finite differences differ: dx %.3g, d_gate "
                  "%.3g, d_weight %.3g, d_bias %.3g (seed %llu)",
                  k, fd_rel(&ex), fd_rel(&eg), fd_rel(&ew), fd_rel(&eb),
                  (unsigned long long)tu_seed());
    free(x);
    free(g);
    free(o);
    free(tmp);
    free(dx);
    free(dg);
    free(dw);
    free(db);
    free(wd);
    free(bd);
    free(w);
    free(b);
  }
}
END_TEST

/* ---- determinism ---------------------------------------------------------- */

static int same_bits(const float *a, const float *b, size_t n) {
  return memcmp(a, b, n * sizeof *a) == 0;
}

/* Two calls on one context, and one on a fresh context with the same
 * record, give bitwise equal gradients (weights reduced in a fixed order),
 * in every record. */
START_TEST(bitwise_reproducible) {
  static const gg_case det_cases[] = {
      /* More positions than one partial sum takes in every record. */
      {2, 37, 2, 45, TM, LAYER, GELU, .weight = 1, .bias = 1, .dw = 1, .db = 1},
      {1, 40, 1, 512, TM, RMS, NOGATE, .weight = 1, .dw = 1},
  };
  for (size_t k = 0; k < sizeof det_cases / sizeof *det_cases; ++k) {
    const gg_case *c = &det_cases[k];
    tu_group_norm_data h = make_inputs(c);
    outputs o1 = alloc_outputs(&h), o2 = alloc_outputs(&h),
            o3 = alloc_outputs(&h);
    for (size_t r = 0; r < NRECORDS; ++r) {
      if (!record_wanted(r)) continue;
      retcl_context *ctx = NULL, *fresh = NULL;
      tu_ok(NULL, tu_context_with_params(records[r], &ctx));
      run_device(ctx, c, &h, &o1);
      run_device(ctx, c, &h, &o2);
      tu_ok(NULL, tu_context_with_params(records[r], &fresh));
      run_device(fresh, c, &h, &o3);
      retcl_context_destroy(fresh);
      retcl_context_destroy(ctx);
      const outputs *again[] = {&o2, &o3};
      for (int a = 0; a < 2; ++a) {
        ck_assert_msg(same_bits(o1.dx, again[a]->dx, h.n),
                      "case %zu, %s: dx differs between runs", k, records[r]);
        if (c->gate != RETCL_GATE_NONE)
          ck_assert_msg(same_bits(o1.dg, again[a]->dg, h.n),
                        "case %zu, %s: d_gate differs", k, records[r]);
        if (c->dw)
          ck_assert_msg(same_bits(o1.dw, again[a]->dw, h.channels),
                        "case %zu, %s: d_weight differs", k, records[r]);
        if (c->db)
          ck_assert_msg(same_bits(o1.db, again[a]->db, h.channels),
                        "case %zu, %s: d_bias differs", k, records[r]);
      }
    }
    free_outputs(&o1);
    free_outputs(&o2);
    free_outputs(&o3);
    tu_group_norm_data_free(&h);
  }
}
END_TEST

/* ---- events, ignored gate buffers ------------------------------------------ */

/* The returned event completes both launches (the weight sums' second
 * pass included), and a second call waits on it. */
START_TEST(events_and_wait_list) {
  const gg_case c = {2, 6, 2, 20, TM, LAYER, SWISH, .weight = 1, .bias = 1,
                     .dw = 1, .db = 1};
  tu_group_norm_data h = make_inputs(&c);
  refs ref = make_refs(&c, &h);
  bounds bd = make_bounds(&c, &h);
  retcl_context *ctx = tu_context();
  cl_mem x = tu_upload(ctx, h.x, h.n), g = tu_upload(ctx, h.g, h.n);
  cl_mem w = tu_upload(ctx, h.w, h.channels), b = tu_upload(ctx, h.b, h.channels);
  cl_mem o = tu_upload(ctx, h.o, h.n);
  cl_mem dx[2], dg[2], dw[2], db[2];
  cl_event ev[2] = {NULL, NULL};
  const retcl_group_norm_desc d = {c.B, c.T, c.H, c.D, c.layout, c.kind,
                                   c.gate, 0};
  for (int i = 0; i < 2; ++i) {
    dx[i] = tu_poisoned(ctx, h.n);
    dg[i] = tu_poisoned(ctx, h.n);
    dw[i] = tu_poisoned(ctx, h.channels);
    db[i] = tu_poisoned(ctx, h.channels);
    tu_ok(ctx, retcl_group_norm_gate_backward(
                   ctx, &d, retcl_buf(x, 0), retcl_buf(g, 0), retcl_buf(w, 0),
                   retcl_buf(b, 0), retcl_buf(o, 0), retcl_buf(dx[i], 0),
                   retcl_buf(dg[i], 0), retcl_buf(dw[i], 0),
                   retcl_buf(db[i], 0), i ? 1 : 0, i ? &ev[0] : NULL,
                   &ev[i]));
    ck_assert_ptr_nonnull(ev[i]);
  }
  ck_assert_int_eq(clWaitForEvents(1, &ev[1]), CL_SUCCESS);
  cl_int state = -1;
  ck_assert_int_eq(clGetEventInfo(ev[0], CL_EVENT_COMMAND_EXECUTION_STATUS,
                                  sizeof state, &state, NULL),
                   CL_SUCCESS);
  ck_assert_int_eq(state, CL_COMPLETE);
  outputs got = alloc_outputs(&h);
  for (int i = 0; i < 2; ++i) {
    tu_download(ctx, dx[i], 0, got.dx, h.n);
    tu_download(ctx, dg[i], 0, got.dg, h.n);
    tu_download(ctx, dw[i], 0, got.dw, h.channels);
    tu_download(ctx, db[i], 0, got.db, h.channels);
    /* Within the derived bound (make_bounds). */
    ck_assert(worst_ratio(got.dx, ref.dx, bd.dx, h.n) <= 1.0);
    ck_assert(worst_ratio(got.dg, ref.dg, bd.dg, h.n) <= 1.0);
    ck_assert(worst_ratio(got.dw, ref.dw, bd.dw, h.channels) <= 1.0);
    ck_assert(worst_ratio(got.db, ref.db, bd.db, h.channels) <= 1.0);
    clReleaseEvent(ev[i]);
    clReleaseMemObject(dx[i]);
    clReleaseMemObject(dg[i]);
    clReleaseMemObject(dw[i]);
    clReleaseMemObject(db[i]);
  }
  clReleaseMemObject(o);
  clReleaseMemObject(b);
  clReleaseMemObject(w);
  clReleaseMemObject(g);
  clReleaseMemObject(x);
  retcl_context_destroy(ctx);
  free_outputs(&got);
  free_grads_d(&bd);
  free_grads_d(&ref);
  tu_group_norm_data_free(&h);
}
END_TEST

/* With RETCL_GATE_NONE, gate and d_gate are ignored, even unusable ones
 * (a one-float buffer at an offset past its end): nothing is read from or
 * written to them. */
START_TEST(no_gate_ignores_gate_buffers) {
  const gg_case c = {2, 3, 1, 10, TM, RMS, NOGATE, .weight = 1, .dw = 1};
  tu_group_norm_data h = make_inputs(&c);
  refs ref = make_refs(&c, &h);
  bounds bd = make_bounds(&c, &h);
  retcl_context *ctx = tu_context();
  cl_mem x = tu_upload(ctx, h.x, h.n), w = tu_upload(ctx, h.w, h.channels);
  cl_mem o = tu_upload(ctx, h.o, h.n), dx = tu_poisoned(ctx, h.n);
  cl_mem dw = tu_poisoned(ctx, h.channels), tiny = tu_poisoned(ctx, 1);
  const retcl_group_norm_desc d = {c.B, c.T, c.H, c.D, c.layout, c.kind,
                                   c.gate, 0};
  tu_ok(ctx, retcl_group_norm_gate_backward(
                 ctx, &d, retcl_buf(x, 0), retcl_buf(tiny, 5), retcl_buf(w, 0),
                 retcl_no_buf(), retcl_buf(o, 0), retcl_buf(dx, 0),
                 retcl_buf(tiny, 5), retcl_buf(dw, 0), retcl_no_buf(), 0, NULL,
                 NULL));
  outputs got = alloc_outputs(&h);
  tu_download(ctx, dx, 0, got.dx, h.n);
  tu_download(ctx, dw, 0, got.dw, h.channels);
  ck_assert(worst_ratio(got.dx, ref.dx, bd.dx, h.n) <= 1.0);
  ck_assert(worst_ratio(got.dw, ref.dw, bd.dw, h.channels) <= 1.0);
  float t;
  tu_download(ctx, tiny, 0, &t, 1);
  ck_assert(isnan(t));
  clReleaseMemObject(tiny);
  clReleaseMemObject(dw);
  clReleaseMemObject(dx);
  clReleaseMemObject(o);
  clReleaseMemObject(w);
  clReleaseMemObject(x);
  retcl_context_destroy(ctx);
  free_outputs(&got);
  free_grads_d(&bd);
  free_grads_d(&ref);
  tu_group_norm_data_free(&h);
}
END_TEST

/* ---- rejected calls: exact status, message, nothing written ---------------- */

typedef struct bad_env {
  retcl_context *ctx;
  retcl_group_norm_desc d;
  /* x, gate, weight, bias, d_out, dx, d_gate, d_weight, d_bias */
  retcl_buffer a[9];
} bad_env;

enum { X, G, W, B_, O, DX, DG, DW, DB };

static retcl_status call(bad_env *e, const retcl_group_norm_desc *d,
                         const retcl_buffer *a) {
  return retcl_group_norm_gate_backward(e->ctx, d, a[X], a[G], a[W], a[B_],
                                        a[O], a[DX], a[DG], a[DW], a[DB], 0,
                                        NULL, NULL);
}

/* The call with argument `which` replaced by `buf` (which < 0: none)
 * fails with `want`, and the message names the op and `word`. */
static void expect_fail(bad_env *e, const retcl_group_norm_desc *d, int which,
                        retcl_buffer buf, retcl_status want, const char *word) {
  retcl_buffer a[9];
  memcpy(a, e->a, sizeof a);
  if (which >= 0) a[which] = buf;
  tu_assert_status(e->ctx, call(e, d, a), want);
  ck_assert_msg(strstr(retcl_last_error(e->ctx), word) != NULL,
                "message \"%s\" does not mention \"%s\"",
                retcl_last_error(e->ctx), word);
  ck_assert_msg(strstr(retcl_last_error(e->ctx),
                       "retcl_group_norm_gate_backward") != NULL,
                "message \"%s\" does not name the op", retcl_last_error(e->ctx));
}

START_TEST(rejects_bad_arguments) {
  bad_env e;
  e.ctx = tu_context();
  const retcl_group_norm_desc d0 = {2, 3, 4, 8, TM, LAYER, SWISH, 0};
  e.d = d0;
  const size_t n = 2 * 3 * 4 * 8, ch = 4 * 8;
  float *host = tu_alloc(n), *got = tu_alloc(3 * n);
  tu_fill_uniform(host, n, -1, 1);
  cl_mem in[5];
  for (int i = 0; i < 5; ++i) in[i] = tu_upload(e.ctx, host, i == W || i == B_ ? ch : n);
  cl_mem outs[4] = {tu_poisoned(e.ctx, n), tu_poisoned(e.ctx, n),
                    tu_poisoned(e.ctx, ch), tu_poisoned(e.ctx, ch)};
  cl_mem small = tu_poisoned(e.ctx, n - 1), shared = tu_poisoned(e.ctx, 3 * n);
  retcl_context *other = tu_context();
  cl_mem foreign = tu_poisoned(other, n);
  for (int i = 0; i < 5; ++i) e.a[i] = retcl_buf(in[i], 0);
  for (int i = 0; i < 4; ++i) e.a[DX + i] = retcl_buf(outs[i], 0);
  const retcl_buffer none = retcl_no_buf();
  static const char *const names[] = {"x",     "gate", "weight",
                                      "bias",  "d_out", "dx",
                                      "d_gate", "d_weight", "d_bias"};

  ck_assert_int_eq(retcl_group_norm_gate_backward(
                       NULL, &d0, e.a[X], e.a[G], e.a[W], e.a[B_], e.a[O],
                       e.a[DX], e.a[DG], e.a[DW], e.a[DB], 0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  /* The descriptor. */
  tu_assert_status(e.ctx, call(&e, NULL, e.a), RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(e.ctx), "desc"));
  retcl_group_norm_desc d = d0;
  d.layout = (retcl_layout)9;
  expect_fail(&e, &d, -1, none, RETCL_ERROR_INVALID_ARGUMENT, "layout");
  d = d0;
  d.kind = (retcl_norm_kind)5;
  expect_fail(&e, &d, -1, none, RETCL_ERROR_INVALID_ARGUMENT, "kind");
  d = d0;
  d.gate = (retcl_gate)-1;
  expect_fail(&e, &d, -1, none, RETCL_ERROR_INVALID_ARGUMENT, "gate");
  static const char *const fields[] = {"batch", "tokens", "heads", "head_dim"};
  for (int f = 0; f < 4; ++f) {
    d = d0;
    size_t *dims[] = {&d.batch, &d.tokens, &d.heads, &d.head_dim};
    *dims[f] = 0;
    expect_fail(&e, &d, -1, none, RETCL_ERROR_INVALID_SIZE, fields[f]);
  }
  {
    /* Beyond 32-bit element indices (without weight gradients, whose
     * partial sums would be refused first, see below). */
    bad_env e2 = e;
    e2.a[DW] = e2.a[DB] = none;
    d = d0;
    d.batch = (size_t)1 << 30;
    expect_fail(&e2, &d, -1, none, RETCL_ERROR_INVALID_SIZE, "spans");
  }
  const float bad_eps[] = {-1e-6f, NAN, INFINITY};
  for (int i = 0; i < 3; ++i) {
    d = d0;
    d.eps = bad_eps[i];
    expect_fail(&e, &d, -1, none, RETCL_ERROR_INVALID_SIZE, "eps");
  }
  /* Required buffers absent, every buffer too small (n − 1 floats, or
   * a weight-sized one at an offset that runs past the end) or from
   * another context. */
  const int required[] = {X, G, O, DX, DG};
  for (int i = 0; i < 5; ++i)
    expect_fail(&e, &d0, required[i], none, RETCL_ERROR_INVALID_ARGUMENT,
                names[required[i]]);
  for (int i = 0; i < 9; ++i) {
    const int per_channel = i == W || i == B_ || i == DW || i == DB;
    const retcl_buffer sm =
        per_channel ? retcl_buf(small, n - ch) : retcl_buf(small, 0);
    expect_fail(&e, &d0, i, sm, RETCL_ERROR_BUFFER_TOO_SMALL, names[i]);
    expect_fail(&e, &d0, i, retcl_buf(foreign, 0), RETCL_ERROR_CONTEXT_MISMATCH,
                names[i]);
  }
  /* A gradient of a parameter the forward did not have. */
  {
    retcl_buffer a[9];
    memcpy(a, e.a, sizeof a);
    a[W] = none;
    tu_assert_status(e.ctx, call(&e, &d0, a), RETCL_ERROR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(retcl_last_error(e.ctx), "d_weight"));
    memcpy(a, e.a, sizeof a);
    a[B_] = none;
    tu_assert_status(e.ctx, call(&e, &d0, a), RETCL_ERROR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(retcl_last_error(e.ctx), "d_bias"));
  }
  /* Wait list count and pointer disagree. */
  cl_event dummy = NULL;
  tu_assert_status(e.ctx,
                   retcl_group_norm_gate_backward(
                       e.ctx, &d0, e.a[X], e.a[G], e.a[W], e.a[B_], e.a[O],
                       e.a[DX], e.a[DG], e.a[DW], e.a[DB], 1, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(e.ctx), "wait"));
  tu_assert_status(e.ctx,
                   retcl_group_norm_gate_backward(
                       e.ctx, &d0, e.a[X], e.a[G], e.a[W], e.a[B_], e.a[O],
                       e.a[DX], e.a[DG], e.a[DW], e.a[DB], 0, &dummy, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  /* Overlaps: an output over an input or another output. Only dx = d_out
   * and d_gate = gate at the same offset are allowed. */
  {
    const retcl_buffer s0 = retcl_buf(shared, 0), s1 = retcl_buf(shared, 1);
    const retcl_buffer s2n = retcl_buf(shared, 2 * n);
    const struct {
      int a, b;
      retcl_buffer ba, bb;
      const char *msg;
    } ov[] = {
        {DX, X, s0, s0, "dx overlaps x"},
        {DX, O, s1, s0, "dx overlaps d_out"},
        {DX, G, s0, s1, "dx overlaps gate"},
        {DG, G, s1, s0, "d_gate overlaps gate"},
        {DG, X, s0, s1, "d_gate overlaps x"},
        {DG, O, s0, s0, "d_gate overlaps d_out"},
        {DX, DG, s0, s1, "dx overlaps d_gate"},
        {DW, W, s0, s1, "d_weight overlaps weight"},
        {DW, O, s2n, s2n, "d_weight overlaps d_out"},
        {DB, B_, s0, s0, "d_bias overlaps bias"},
        {DW, DB, s0, s1, "d_weight overlaps d_bias"},
        {DX, DB, s0, retcl_buf(shared, n - 1), "dx overlaps d_bias"},
        {DB, X, s0, retcl_buf(shared, 5), "d_bias overlaps x"},
    };
    for (size_t i = 0; i < sizeof ov / sizeof *ov; ++i) {
      retcl_buffer a[9];
      memcpy(a, e.a, sizeof a);
      a[ov[i].a] = ov[i].ba;
      a[ov[i].b] = ov[i].bb;
      tu_assert_status(e.ctx, call(&e, &d0, a), RETCL_ERROR_INVALID_ARGUMENT);
      ck_assert_msg(strstr(retcl_last_error(e.ctx), ov[i].msg) != NULL,
                    "overlap %zu: message \"%s\" does not say \"%s\"", i,
                    retcl_last_error(e.ctx), ov[i].msg);
    }
  }
  /* Partial sums beyond 32-bit indices: 2^30 positions, one per slice,
   * two sums of 4 channels. Refused before any buffer is looked at. */
  {
    retcl_context *one = NULL;
    tu_ok(NULL, tu_context_with_params("{\"group_norm\": {\"grad_rows\": 1}}",
                                       &one));
    const retcl_group_norm_desc big = {(size_t)1 << 15, (size_t)1 << 15, 1, 4,
                                       TM, RMS, NOGATE, 0};
    cl_mem m = tu_poisoned(one, 8);
    const retcl_buffer mb = retcl_buf(m, 0);
    tu_assert_status(one,
                     retcl_group_norm_gate_backward(one, &big, mb, none, mb,
                                                    mb, mb, mb, none, mb, mb,
                                                    0, NULL, NULL),
                     RETCL_ERROR_INVALID_SIZE);
    ck_assert_ptr_nonnull(strstr(retcl_last_error(one), "grad_rows"));
    clReleaseMemObject(m);
    retcl_context_destroy(one);
  }

  /* None of the refused calls wrote anything. */
  ck_assert_int_eq(clFinish(retcl_context_queue(e.ctx)), CL_SUCCESS);
  for (int i = 0; i < 4; ++i) {
    const size_t m = i < 2 ? n : ch;
    tu_download(e.ctx, outs[i], 0, got, m);
    for (size_t j = 0; j < m; ++j)
      ck_assert_msg(isnan(got[j]), "%s[%zu] was written", names[DX + i], j);
  }
  tu_download(e.ctx, shared, 0, got, 3 * n);
  for (size_t j = 0; j < 3 * n; ++j) ck_assert(isnan(got[j]));
  tu_download(e.ctx, small, 0, got, n - 1);
  for (size_t j = 0; j < n - 1; ++j) ck_assert(isnan(got[j]));

  clReleaseMemObject(foreign);
  retcl_context_destroy(other);
  clReleaseMemObject(shared);
  clReleaseMemObject(small);
  for (int i = 0; i < 4; ++i) clReleaseMemObject(outs[i]);
  for (int i = 0; i < 5; ++i) clReleaseMemObject(in[i]);
  retcl_context_destroy(e.ctx);
  free(host);
  free(got);
}
END_TEST

int main(void) {
  Suite *s = suite_create("group_norm_grad");
  TCase *tc = tcase_create("group_norm_grad");
  tcase_add_loop_test(tc, device_matches_analytic, 0,
                      sizeof cases / sizeof cases[0]);
  tcase_add_test(tc, analytic_matches_finite_differences);
  tcase_add_test(tc, bitwise_reproducible);
  tcase_add_test(tc, events_and_wait_list);
  tcase_add_test(tc, no_gate_ignores_gate_buffers);
  tcase_add_test(tc, rejects_bad_arguments);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
