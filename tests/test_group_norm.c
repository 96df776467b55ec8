/* test_group_norm.c - fused group norm + gate (docs/design.md §1.5) against the
 * double-precision reference, on both work organisations of the kernel
 * (one work-item per row, as on CPUs, and a work-group reduction per row, as
 * on GPUs), plus argument validation. */
#define _POSIX_C_SOURCE 200112L /* setenv */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group_norm_data.h"
#include "ref_group_norm.h"
#include "testutil.h"

/* fp32 statistics over at most ~1000 values with partial sums, then rsqrt
 * (2 ulp), exp (3 ulp) or erfc (16 ulp of a value it is multiplied by):
 * a few 1e-7 at most. 2e-6 leaves margin and still catches any wrong
 * formula, eps or channel index, which give errors of 1e-3 and more. */
#define GN_TOL 2e-6

/* Floats of NaN written before and after every device tensor: they must
 * still be NaN afterwards, so an out-of-range write would be seen. */
#define GUARD 13

typedef struct gn_case {
  size_t B, T, H, D;
  retcl_layout layout;
  retcl_norm_kind kind;
  retcl_gate gate;
  int weight, bias;    /* pass the optional affine parameters */
  int in_place;        /* out is x (same buffer and offset) */
  int offsets;         /* every tensor at a distinct nonzero offset */
  float eps;           /* 0: the default */
  double x_lo, x_hi;   /* range of the random x values */
  int constant_rows;   /* every row of x holds one repeated value */
} gn_case;

/* Both kernel organisations run on every device, chosen by the
 * group_norm.access parameter: "cpu" is the row path (an item per row),
 * "gpu" the group path (lanes of a group share a row). Each gets its own
 * context (the record is fixed at creation). */
static const char *const paths[] = {"cpu", "gpu"};

/* One call of the op on fresh device buffers; returns the relative error. */
static double run_once(retcl_context *ctx, const gn_case *c,
                       const tu_group_norm_data *h, const double *ref,
                       const char *path) {
  tu_group_norm_dev in =
      tu_group_norm_upload(ctx, h, c->gate != RETCL_GATE_NONE, c->weight,
                           c->bias, c->offsets, GUARD);
  const size_t oo = c->offsets ? 11 : 0;
  cl_mem out = c->in_place ? in.x.mem
                           : tu_upload_guarded(ctx, NULL, h->n, oo, GUARD);
  const size_t out_off = c->in_place ? in.x.offset : oo;

  retcl_group_norm_desc d = {c->B, c->T, c->H, c->D, c->layout,
                             c->kind, c->gate, c->eps};
  tu_ok(ctx, retcl_group_norm_gate(ctx, &d, in.x, in.g, in.w, in.b,
                                   retcl_buf(out, out_off), 0, NULL, NULL));
  float *got = tu_alloc(h->n);
  tu_download(ctx, out, out_off, got, h->n);
  tu_download_guarded(ctx, out, out_off, h->n, GUARD, NULL, "out");
  const double err = tu_rel_error(got, ref, h->n);
  if (getenv("RETCL_TEST_VERBOSE"))
    fprintf(stderr, "group_norm B%zu T%zu H%zu D%zu %s kind%d gate%d: %s "
            "path rel err %.3g, max abs %.3g\n",
            c->B, c->T, c->H, c->D,
            c->layout == RETCL_LAYOUT_HEAD_MAJOR ? "head-major" : "token-major",
            (int)c->kind, (int)c->gate, path, err,
            tu_max_abs_error(got, ref, h->n));

  free(got);
  if (!c->in_place) clReleaseMemObject(out);
  tu_group_norm_release(&in);
  return err;
}

static void run_case(const gn_case *c) {
  tu_group_norm_data h;
  tu_group_norm_data_make(&h, c->B, c->T, c->H, c->D, c->x_lo, c->x_hi,
                          c->constant_rows, 0);
  double *ref = tu_alloc_d(h.n);
  ref_group_norm_gate(h.x, c->gate != RETCL_GATE_NONE ? h.g : NULL,
                      c->weight ? h.w : NULL, c->bias ? h.b : NULL, ref, c->B,
                      c->T, c->H, c->D, c->layout, c->kind, c->gate, c->eps);
  for (size_t p = 0; p < sizeof paths / sizeof *paths; ++p) {
    char json[96];
    snprintf(json, sizeof json, "{\"group_norm\": {\"access\": \"%s\"}}",
             paths[p]);
    retcl_context *ctx = NULL;
    tu_ok(NULL, tu_context_with_params(json, &ctx));
    const double err = run_once(ctx, c, &h, ref, paths[p]);
    retcl_context_destroy(ctx);
    /* Relative error ‖out − ref‖/‖ref‖ ≤ GN_TOL (2e-6). */
    ck_assert_msg(err <= GN_TOL,
                  "%s path: relative error %.3g > %.3g (seed %llu)", paths[p],
                  err, GN_TOL, (unsigned long long)tu_seed());
  }
  free(ref);
  tu_group_norm_data_free(&h);
}

/* The cases of run_case, one row each (a failure's line gives the row's
 * index, the loop test's iteration, after the test name): every
 * norm kind, gate, layout and affine choice, then the awkward shapes and
 * values. Unset x_lo/x_hi mean inputs in [-1, 1); eps 0 is the default. */
typedef struct named_case {
  const char *name;
  gn_case c;
} named_case;

#define TM RETCL_LAYOUT_TOKEN_MAJOR
#define HM RETCL_LAYOUT_HEAD_MAJOR
#define RMS RETCL_NORM_RMS
#define LAYER RETCL_NORM_LAYER
#define SWISH RETCL_GATE_SWISH
#define GELU RETCL_GATE_GELU
#define NOGATE RETCL_GATE_NONE
static const named_case cases[] = {
    {"rms swish token-major", {2, 3, 4, 64, TM, RMS, SWISH}},
    {"layer gelu head-major affine",
     {2, 5, 3, 100, HM, LAYER, GELU, .weight = 1, .bias = 1}},
    {"rms gelu weight only token-major",
     {1, 4, 2, 48, TM, RMS, GELU, .weight = 1}},
    {"layer swish bias only head-major",
     {3, 2, 2, 40, HM, LAYER, SWISH, .bias = 1}},
    {"no gate, odd dim, single head", {3, 4, 1, 7, TM, RMS, NOGATE}},
    {"no gate, odd dim, single head, layer affine",
     {3, 4, 1, 7, HM, LAYER, NOGATE, .weight = 1, .bias = 1}},
    /* RMS of one value is ≈ sign(x); layer norm of one value is 0, so only
     * the bias times the gate remains. */
    {"head dim 1, rms", {2, 3, 5, 1, TM, RMS, SWISH}},
    {"head dim 1, layer affine",
     {2, 3, 5, 1, HM, LAYER, GELU, .weight = 1, .bias = 1}},
    {"head dim 1024, one token, layer",
     {3, 1, 2, 1024, TM, LAYER, SWISH, .weight = 1}},
    {"head dim 1024, one token, rms",
     {3, 1, 2, 1024, HM, RMS, SWISH, .weight = 1}},
    /* Not a power of two, not a multiple of 8, beyond 1024. */
    {"head dim 1031", {1, 2, 3, 1031, HM, RMS, GELU, .bias = 1}},
    {"head dim 257", {2, 3, 2, 257, TM, LAYER, SWISH, .weight = 1, .bias = 1}},
    /* More rows than a work-group holds, and not a multiple of it: the last
     * group is partly past the end. */
    {"many rows, ragged groups, layer",
     {2, 37, 5, 24, HM, LAYER, SWISH, .weight = 1, .bias = 1}},
    {"many rows, ragged groups, rms", {3, 101, 1, 3, TM, RMS, GELU}},
    {"in place with offsets, layer",
     {2, 3, 4, 96, TM, LAYER, SWISH, .weight = 1, .bias = 1, .in_place = 1,
      .offsets = 1}},
    {"in place with offsets, no gate",
     {1, 5, 3, 13, HM, RMS, NOGATE, .in_place = 1, .offsets = 1}},
    {"offsets everywhere, layer gelu",
     {2, 4, 3, 33, HM, LAYER, GELU, .weight = 1, .bias = 1, .offsets = 1}},
    {"offsets everywhere, rms swish",
     {2, 4, 3, 33, TM, RMS, SWISH, .weight = 1, .bias = 1, .offsets = 1}},
    /* Rows of one repeated value: variance 0, so layer norm gives y = 0
     * exactly (finite, no 0/0) and the output is act(g)·bias, or 0 without
     * a bias (then the reference is all 0 and the check is absolute,
     * ≤ 2e-6). The values are large so that any rounding left in x − mean
     * would show after division by sqrt(eps). */
    {"constant rows, layer norm",
     {2, 3, 4, 100, TM, LAYER, SWISH, .x_lo = -300, .x_hi = 300,
      .constant_rows = 1}},
    {"constant rows, layer norm affine",
     {2, 3, 4, 37, HM, LAYER, SWISH, .weight = 1, .bias = 1, .x_lo = -300,
      .x_hi = 300, .constant_rows = 1}},
    /* Mean far from zero next to the spread: E[x²] − E[x]² would lose
     * every digit here; the two-pass centred variance keeps them. */
    {"layer norm, large mean",
     {2, 3, 2, 256, TM, LAYER, GELU, .x_lo = 999, .x_hi = 1001}},
    /* Values with mean(x²) near the default eps (1e-6), then a custom eps
     * that dominates: a wrong or missing eps shows as a large error. */
    {"default eps", {2, 2, 3, 64, TM, RMS, SWISH, .x_lo = -2e-3, .x_hi = 2e-3}},
    {"custom eps",
     {2, 2, 3, 64, TM, LAYER, SWISH, .eps = 1e-2f, .x_lo = -0.2, .x_hi = 0.2}},
};
#undef TM
#undef HM
#undef RMS
#undef LAYER
#undef SWISH
#undef GELU
#undef NOGATE

/* Loop test: _i indexes cases. */
START_TEST(each_case) {
  gn_case c = cases[_i].c;
  if (c.x_lo == 0 && c.x_hi == 0) c.x_lo = -1, c.x_hi = 1;
  run_case(&c);
}
END_TEST

/* With RETCL_GATE_NONE the gate buffer is ignored, even an unusable one. */
START_TEST(no_gate_ignores_gate_buffer) {
  retcl_context *ctx = tu_context();
  const size_t B = 2, T = 3, H = 2, D = 5, n = B * T * H * D;
  float *x = tu_alloc(n), *got = tu_alloc(n);
  double *ref = tu_alloc_d(n);
  tu_fill_uniform(x, n, -1, 1);
  cl_mem xb = tu_upload(ctx, x, n), out = tu_poisoned(ctx, n);
  cl_mem tiny = tu_poisoned(ctx, 1);
  retcl_group_norm_desc d = {B, T, H, D, RETCL_LAYOUT_TOKEN_MAJOR,
                             RETCL_NORM_LAYER, RETCL_GATE_NONE, 0};
  tu_ok(ctx, retcl_group_norm_gate(ctx, &d, retcl_buf(xb, 0),
                                   retcl_buf(tiny, 5), retcl_no_buf(),
                                   retcl_no_buf(), retcl_buf(out, 0), 0, NULL,
                                   NULL));
  tu_download(ctx, out, 0, got, n);
  ref_group_norm_gate(x, NULL, NULL, NULL, ref, B, T, H, D,
                      RETCL_LAYOUT_TOKEN_MAJOR, RETCL_NORM_LAYER,
                      RETCL_GATE_NONE, 0);
  /* Relative error ≤ GN_TOL (2e-6). */
  tu_assert_close("no gate", got, ref, n, GN_TOL);
  clReleaseMemObject(tiny);
  clReleaseMemObject(out);
  clReleaseMemObject(xb);
  retcl_context_destroy(ctx);
  free(x);
  free(got);
  free(ref);
}
END_TEST

/* The returned event completes the work, and a second call waits on it. */
START_TEST(events_and_wait_list) {
  retcl_context *ctx = tu_context();
  const size_t B = 1, T = 6, H = 2, D = 32, n = B * T * H * D;
  float *x = tu_alloc(n), *g = tu_alloc(n), *got = tu_alloc(n);
  double *ref = tu_alloc_d(n);
  tu_fill_uniform(x, n, -1, 1);
  tu_fill_uniform(g, n, -4, 4);
  cl_mem xb = tu_upload(ctx, x, n), gb = tu_upload(ctx, g, n);
  cl_mem o1 = tu_poisoned(ctx, n), o2 = tu_poisoned(ctx, n);
  retcl_group_norm_desc d = {B, T, H, D, RETCL_LAYOUT_TOKEN_MAJOR,
                             RETCL_NORM_RMS, RETCL_GATE_SWISH, 0};
  cl_event first = NULL, second = NULL;
  tu_ok(ctx, retcl_group_norm_gate(ctx, &d, retcl_buf(xb, 0),
                                   retcl_buf(gb, 0), retcl_no_buf(),
                                   retcl_no_buf(), retcl_buf(o1, 0), 0, NULL,
                                   &first));
  ck_assert_ptr_nonnull(first);
  tu_ok(ctx, retcl_group_norm_gate(ctx, &d, retcl_buf(xb, 0),
                                   retcl_buf(gb, 0), retcl_no_buf(),
                                   retcl_no_buf(), retcl_buf(o2, 0), 1, &first,
                                   &second));
  ck_assert_int_eq(clWaitForEvents(1, &second), CL_SUCCESS);
  cl_int state = -1;
  ck_assert_int_eq(clGetEventInfo(first, CL_EVENT_COMMAND_EXECUTION_STATUS,
                                  sizeof state, &state, NULL),
                   CL_SUCCESS);
  ck_assert_int_eq(state, CL_COMPLETE);
  ref_group_norm_gate(x, g, NULL, NULL, ref, B, T, H, D,
                      RETCL_LAYOUT_TOKEN_MAJOR, RETCL_NORM_RMS,
                      RETCL_GATE_SWISH, 0);
  /* Relative error ≤ GN_TOL (2e-6) for both outputs. */
  tu_download(ctx, o1, 0, got, n);
  tu_assert_close("first call", got, ref, n, GN_TOL);
  tu_download(ctx, o2, 0, got, n);
  tu_assert_close("second call", got, ref, n, GN_TOL);
  clReleaseEvent(first);
  clReleaseEvent(second);
  clReleaseMemObject(o2);
  clReleaseMemObject(o1);
  clReleaseMemObject(gb);
  clReleaseMemObject(xb);
  retcl_context_destroy(ctx);
  free(x);
  free(g);
  free(got);
  free(ref);
}
END_TEST

/* ---- invalid calls: exact status, message, and nothing written --------- */

typedef struct bad_env {
  retcl_context *ctx;
  retcl_group_norm_desc d;
  retcl_buffer x, g, w, b, out;
  size_t n, channels;
} bad_env;

static retcl_status call(bad_env *e, const retcl_group_norm_desc *d,
                         retcl_buffer x, retcl_buffer g, retcl_buffer w,
                         retcl_buffer b, retcl_buffer out) {
  return retcl_group_norm_gate(e->ctx, d, x, g, w, b, out, 0, NULL, NULL);
}

/* The call fails with `want` and its message mentions `word`. */
#define EXPECT_FAIL(e, want, word, ...)                                      \
  do {                                                                       \
    tu_assert_status((e)->ctx, call((e), __VA_ARGS__), (want));              \
    ck_assert_msg(strstr(retcl_last_error((e)->ctx), (word)) != NULL,        \
                  "message \"%s\" does not mention \"%s\"",                  \
                  retcl_last_error((e)->ctx), (word));                       \
  } while (0)

static void reject_bad_desc(bad_env *e) {
  retcl_group_norm_desc d = e->d;
  EXPECT_FAIL(e, RETCL_ERROR_INVALID_ARGUMENT, "desc", NULL, e->x, e->g, e->w,
              e->b, e->out);
  d.layout = (retcl_layout)9;
  EXPECT_FAIL(e, RETCL_ERROR_INVALID_ARGUMENT, "layout", &d, e->x, e->g, e->w,
              e->b, e->out);
  d = e->d;
  d.kind = (retcl_norm_kind)5;
  EXPECT_FAIL(e, RETCL_ERROR_INVALID_ARGUMENT, "kind", &d, e->x, e->g, e->w,
              e->b, e->out);
  d = e->d;
  d.gate = (retcl_gate)-1;
  EXPECT_FAIL(e, RETCL_ERROR_INVALID_ARGUMENT, "gate", &d, e->x, e->g, e->w,
              e->b, e->out);
  static const char *const fields[] = {"batch", "tokens", "heads",
                                       "head_dim"};
  for (int f = 0; f < 4; ++f) {
    d = e->d;
    size_t *dims[] = {&d.batch, &d.tokens, &d.heads, &d.head_dim};
    *dims[f] = 0;
    EXPECT_FAIL(e, RETCL_ERROR_INVALID_SIZE, fields[f], &d, e->x, e->g, e->w,
                e->b, e->out);
  }
  /* A shape whose element count overflows the 32-bit kernel indices. */
  d = e->d;
  d.batch = (size_t)1 << 30;
  EXPECT_FAIL(e, RETCL_ERROR_INVALID_SIZE, "spans", &d, e->x, e->g, e->w, e->b,
              e->out);
  const float bad_eps[] = {-1e-6f, NAN, INFINITY, -INFINITY};
  for (int i = 0; i < 4; ++i) {
    d = e->d;
    d.eps = bad_eps[i];
    EXPECT_FAIL(e, RETCL_ERROR_INVALID_SIZE, "eps", &d, e->x, e->g, e->w,
                e->b, e->out);
  }
}

static void reject_bad_buffers(bad_env *e, cl_mem small, cl_mem foreign) {
  const retcl_group_norm_desc *d = &e->d;
  const retcl_buffer none = retcl_no_buf();
  EXPECT_FAIL(e, RETCL_ERROR_INVALID_ARGUMENT, "x", d, none, e->g, e->w, e->b,
              e->out);
  EXPECT_FAIL(e, RETCL_ERROR_INVALID_ARGUMENT, "gate", d, e->x, none, e->w,
              e->b, e->out);
  EXPECT_FAIL(e, RETCL_ERROR_INVALID_ARGUMENT, "out", d, e->x, e->g, e->w,
              e->b, none);
  /* `small` holds n - 1 floats; weight and bias need only channels. */
  const retcl_buffer sm = retcl_buf(small, 0);
  EXPECT_FAIL(e, RETCL_ERROR_BUFFER_TOO_SMALL, "x", d, sm, e->g, e->w, e->b,
              e->out);
  EXPECT_FAIL(e, RETCL_ERROR_BUFFER_TOO_SMALL, "gate", d, e->x, sm, e->w,
              e->b, e->out);
  EXPECT_FAIL(e, RETCL_ERROR_BUFFER_TOO_SMALL, "out", d, e->x, e->g, e->w,
              e->b, sm);
  EXPECT_FAIL(e, RETCL_ERROR_BUFFER_TOO_SMALL, "out", d, e->x, e->g, e->w,
              e->b, retcl_buf(e->out.mem, 1));
  const retcl_buffer late = retcl_buf(small, e->n - e->channels);
  EXPECT_FAIL(e, RETCL_ERROR_BUFFER_TOO_SMALL, "weight", d, e->x, e->g, late,
              e->b, e->out);
  EXPECT_FAIL(e, RETCL_ERROR_BUFFER_TOO_SMALL, "bias", d, e->x, e->g, e->w,
              late, e->out);
  const retcl_buffer fo = retcl_buf(foreign, 0);
  EXPECT_FAIL(e, RETCL_ERROR_CONTEXT_MISMATCH, "x", d, fo, e->g, e->w, e->b,
              e->out);
  EXPECT_FAIL(e, RETCL_ERROR_CONTEXT_MISMATCH, "gate", d, e->x, fo, e->w,
              e->b, e->out);
  EXPECT_FAIL(e, RETCL_ERROR_CONTEXT_MISMATCH, "weight", d, e->x, e->g, fo,
              e->b, e->out);
  EXPECT_FAIL(e, RETCL_ERROR_CONTEXT_MISMATCH, "out", d, e->x, e->g, e->w,
              e->b, fo);
  /* Wait list count and pointer disagree. */
  cl_event dummy = NULL;
  tu_assert_status(e->ctx,
                   retcl_group_norm_gate(e->ctx, d, e->x, e->g, e->w, e->b,
                                         e->out, 1, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  tu_assert_status(e->ctx,
                   retcl_group_norm_gate(e->ctx, d, e->x, e->g, e->w, e->b,
                                         e->out, 0, &dummy, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(e->ctx), "wait"));
}

/* `shared` is a poisoned buffer of 2n floats used as x or out at various
 * offsets: any overlap other than x == out exactly is refused. */
static void reject_overlaps(bad_env *e, cl_mem shared) {
  const retcl_group_norm_desc *d = &e->d;
  const retcl_buffer at0 = retcl_buf(shared, 0), at1 = retcl_buf(shared, 1);
  EXPECT_FAIL(e, RETCL_ERROR_INVALID_ARGUMENT, "overlaps x", d, at0, e->g,
              e->w, e->b, at1);
  EXPECT_FAIL(e, RETCL_ERROR_INVALID_ARGUMENT, "overlaps gate", d, e->x, at0,
              e->w, e->b, at0);
  EXPECT_FAIL(e, RETCL_ERROR_INVALID_ARGUMENT, "overlaps weight", d, e->x,
              e->g, retcl_buf(shared, e->n - 1), e->b, at0);
  EXPECT_FAIL(e, RETCL_ERROR_INVALID_ARGUMENT, "overlaps bias", d, e->x, e->g,
              e->w, retcl_buf(shared, 3), at0);
}

START_TEST(rejects_bad_arguments) {
  bad_env e;
  e.ctx = tu_context();
  retcl_group_norm_desc d = {2, 3, 4, 8, RETCL_LAYOUT_TOKEN_MAJOR,
                             RETCL_NORM_LAYER, RETCL_GATE_SWISH, 0};
  e.d = d;
  e.n = 2 * 3 * 4 * 8;
  e.channels = 4 * 8;
  float *host = tu_alloc(e.n), *got = tu_alloc(2 * e.n);
  tu_fill_uniform(host, e.n, -1, 1);
  cl_mem x = tu_upload(e.ctx, host, e.n), g = tu_upload(e.ctx, host, e.n);
  cl_mem w = tu_upload(e.ctx, host, e.channels);
  cl_mem b = tu_upload(e.ctx, host, e.channels);
  cl_mem out = tu_poisoned(e.ctx, e.n), small = tu_poisoned(e.ctx, e.n - 1);
  cl_mem shared = tu_poisoned(e.ctx, 2 * e.n);
  retcl_context *other = tu_context();
  cl_mem foreign = tu_poisoned(other, e.n);
  e.x = retcl_buf(x, 0);
  e.g = retcl_buf(g, 0);
  e.w = retcl_buf(w, 0);
  e.b = retcl_buf(b, 0);
  e.out = retcl_buf(out, 0);

  ck_assert_int_eq(retcl_group_norm_gate(NULL, &d, e.x, e.g, e.w, e.b, e.out,
                                         0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  reject_bad_desc(&e);
  reject_bad_buffers(&e, small, foreign);
  reject_overlaps(&e, shared);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(e.ctx), "retcl_group_norm_gate"));

  /* None of the refused calls may have written anything. */
  ck_assert_int_eq(clFinish(retcl_context_queue(e.ctx)), CL_SUCCESS);
  tu_download(e.ctx, out, 0, got, e.n);
  for (size_t i = 0; i < e.n; ++i) ck_assert(isnan(got[i]));
  tu_download(e.ctx, shared, 0, got, 2 * e.n);
  for (size_t i = 0; i < 2 * e.n; ++i) ck_assert(isnan(got[i]));
  tu_download(e.ctx, small, 0, got, e.n - 1);
  for (size_t i = 0; i < e.n - 1; ++i) ck_assert(isnan(got[i]));

  clReleaseMemObject(foreign);
  retcl_context_destroy(other);
  clReleaseMemObject(shared);
  clReleaseMemObject(small);
  clReleaseMemObject(out);
  clReleaseMemObject(b);
  clReleaseMemObject(w);
  clReleaseMemObject(g);
  clReleaseMemObject(x);
  retcl_context_destroy(e.ctx);
  free(host);
  free(got);
}
END_TEST

int main(void) {
  Suite *s = suite_create("group_norm");
  TCase *tc = tcase_create("group_norm");
  tcase_add_loop_test(tc, each_case, 0, sizeof cases / sizeof cases[0]);
  tcase_add_test(tc, no_gate_ignores_gate_buffer);
  tcase_add_test(tc, events_and_wait_list);
  tcase_add_test(tc, rejects_bad_arguments);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
