/* test_layer.c - the multi-scale retention layer (docs/design.md §1.6) against a
 * double-precision composition of the op references. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

/* The reference rounds activations to fp32 between ops (as the device
 * does), so the bound is the ops' own 1e-5 (docs/design.md §5). */
#define LAYER_TOL 1e-5

typedef struct layer_case {
  size_t B, T, d, dv, H, chunk;
  retcl_algorithm algo;
  retcl_retention_form form;
  int with_state;
  size_t pos0; /* position of token 0: the rotation's start and, with a
                  state, the tokens that state has absorbed */
} layer_case;

/* The layer reference (reference/ref_layer.c), rounding to fp32 between
 * ops as the device does. */
static void reference(const layer_case *c, const float *x, float *const W[5],
                      const float *lg, const float *s0, double *y,
                      double *s_final) {
  const ref_msr_desc d = {c->B, c->T, c->d, c->dv, c->H, c->algo, c->form,
                          c->chunk, c->pos0, 1e-6, NULL, 1};
  const ref_msr_weights w = {W[0], W[1], W[2], W[3], W[4]};
  double *xd = ref_widen(x, c->B * c->T * c->d);
  ref_msr_forward(&d, &w, lg, xd, s0, y, s_final);
  free(xd);
}

static void check_layer(const layer_case *c) {
  retcl_context *ctx = tu_context();
  const size_t bt = c->B * c->T, Dk = c->d / c->H, Dv = c->dv / c->H;
  const size_t ns = c->B * c->H * Dk * Dv;
  const size_t wn[5] = {c->d * c->d, c->d * c->d, c->dv * c->d, c->dv * c->d,
                        c->d * c->dv};
  float *x = tu_alloc(bt * c->d), *W[5], lg[16], *s0 = tu_alloc(ns);
  tu_fill_uniform(x, bt * c->d, -1, 1);
  tu_fill_uniform(s0, ns, -1, 1);
  for (int i = 0; i < 5; ++i) {
    W[i] = tu_alloc(wn[i]);
    const double a = 1.0 / sqrt((double)(i == 4 ? c->dv : c->d));
    tu_fill_uniform(W[i], wn[i], -a, a);
  }
  retcl_default_log_decay(c->H, lg);
  cl_mem xb = tu_upload(ctx, x, bt * c->d), wb[5];
  for (int i = 0; i < 5; ++i) wb[i] = tu_upload(ctx, W[i], wn[i]);
  cl_mem lgb = tu_upload(ctx, lg, c->H), yb = tu_poisoned(ctx, bt * c->d);
  cl_mem sin_b = c->with_state ? tu_upload(ctx, s0, ns) : NULL;
  cl_mem sout_b = c->with_state ? tu_poisoned(ctx, ns) : NULL;
  retcl_rotation *rot = NULL;
  tu_ok(ctx, retcl_rotation_create(ctx, Dk, NULL, 0, &rot));
  retcl_msr_weights w = {retcl_buf(wb[0], 0), retcl_buf(wb[1], 0),
                         retcl_buf(wb[2], 0), retcl_buf(wb[3], 0),
                         retcl_buf(wb[4], 0)};
  retcl_msr_desc d = {c->B, c->T, c->d, c->dv, c->H, c->algo, c->form,
                      c->chunk, c->pos0, 1e-6f};
  cl_event ev = NULL;
  tu_ok(ctx, retcl_msr_forward(ctx, &d, &w, rot, retcl_buf(lgb, 0),
                               retcl_buf(xb, 0), retcl_buf(sin_b, 0),
                               retcl_buf(sout_b, 0), retcl_buf(yb, 0), 0, NULL,
                               &ev));
  ck_assert_int_eq(clWaitForEvents(1, &ev), CL_SUCCESS);
  clReleaseEvent(ev);
  float *y = tu_alloc(bt * c->d), *s = tu_alloc(ns);
  double *ry = tu_alloc_d(bt * c->d), *rs = tu_alloc_d(ns);
  tu_download(ctx, yb, 0, y, bt * c->d);
  reference(c, x, W, lg, c->with_state ? s0 : NULL, ry, rs);
  tu_assert_close("layer output", y, ry, bt * c->d, LAYER_TOL);
  if (c->with_state) {
    tu_download(ctx, sout_b, 0, s, ns);
    tu_assert_close("layer state", s, rs, ns, LAYER_TOL);
  }

  /* Invalid calls change nothing. */
  retcl_msr_desc bad = d;
  bad.heads = 3; /* 32 is not a multiple of 3 */
  cl_mem y2 = tu_poisoned(ctx, bt * c->d);
  tu_assert_status(ctx, retcl_msr_forward(ctx, &bad, &w, rot, retcl_buf(lgb, 0),
                                          retcl_buf(xb, 0), retcl_no_buf(),
                                          retcl_no_buf(), retcl_buf(y2, 0), 0,
                                          NULL, NULL),
                   RETCL_ERROR_INVALID_SIZE);
  retcl_rotation *rot2 = NULL;
  tu_ok(ctx, retcl_rotation_create(ctx, Dk + 2, NULL, 0, &rot2));
  tu_assert_status(ctx, retcl_msr_forward(ctx, &d, &w, rot2, retcl_buf(lgb, 0),
                                          retcl_buf(xb, 0), retcl_no_buf(),
                                          retcl_no_buf(), retcl_buf(y2, 0), 0,
                                          NULL, NULL),
                   RETCL_ERROR_INVALID_SIZE);
  retcl_msr_weights short_w = w;
  short_w.out_proj = retcl_buf(wb[4], 1);
  tu_assert_status(ctx, retcl_msr_forward(ctx, &d, &short_w, rot,
                                          retcl_buf(lgb, 0), retcl_buf(xb, 0),
                                          retcl_no_buf(), retcl_no_buf(),
                                          retcl_buf(y2, 0), 0, NULL, NULL),
                   RETCL_ERROR_BUFFER_TOO_SMALL);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "out_proj"));
  tu_download(ctx, y2, 0, y, bt * c->d);
  for (size_t i = 0; i < bt * c->d; ++i) ck_assert(isnan(y[i]));

  retcl_rotation_destroy(rot);
  retcl_rotation_destroy(rot2);
  cl_mem all[] = {xb, wb[0], wb[1], wb[2], wb[3], wb[4], lgb, yb, y2, sin_b, sout_b};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
    if (all[i]) clReleaseMemObject(all[i]);
  for (int i = 0; i < 5; ++i) free(W[i]);
  free(x);
  free(s0);
  free(y);
  free(s);
  free(ry);
  free(rs);
  retcl_context_destroy(ctx);
}

START_TEST(layer_torchscale_each_algorithm) {
  const retcl_algorithm algos[3] = {RETCL_ALGO_PARALLEL, RETCL_ALGO_RECURRENT,
                                    RETCL_ALGO_CHUNKWISE};
  for (int a = 0; a < 3; ++a) {
    layer_case c = {2, 19, 32, 48, 2, 8, algos[a], RETCL_FORM_TORCHSCALE, 0};
    check_layer(&c);
  }
}
END_TEST

START_TEST(layer_raw_with_state_one_head) {
  layer_case c = {1, 23, 16, 24, 1, 8, RETCL_ALGO_CHUNKWISE, RETCL_FORM_RAW, 1};
  check_layer(&c);
  c.algo = RETCL_ALGO_RECURRENT;
  check_layer(&c);
}
END_TEST

/* Few token rows (decoding) take the weight-streaming projection kernel:
 * 1, 3 and 13 rows (two launches of 8 + 5). */
START_TEST(layer_few_rows_decode_projections) {
  const size_t batches[3] = {1, 3, 13};
  for (int i = 0; i < 3; ++i) {
    layer_case c = {batches[i], 1, 32, 48, 2, 8, RETCL_ALGO_RECURRENT,
                    RETCL_FORM_TORCHSCALE, 0};
    check_layer(&c);
  }
  layer_case odd = {2, 3, 20, 12, 2, 8, RETCL_ALGO_RECURRENT, RETCL_FORM_RAW, 1};
  check_layer(&odd); /* K = 20, 12: not multiples of the vector width */
}
END_TEST

/* Decoding continues a sequence: token 0 sits at pos0 > 0 and the state in
 * has absorbed pos0 tokens. The rotation must start at pos0 and torchscale's
 * recurrence must resume its normaliser c at Σ_{j<pos0} γ^j; a layer that
 * ignored either (or the state) differs from the reference by far more
 * than LAYER_TOL. One token (a decode step) and several, one batch and
 * two, both forms, a position past 2^16. */
START_TEST(layer_recurrent_at_nonzero_position_with_state) {
  const layer_case cases[] = {
      {1, 1, 32, 48, 2, 8, RETCL_ALGO_RECURRENT, RETCL_FORM_TORCHSCALE, 1, 7},
      {2, 5, 32, 48, 2, 8, RETCL_ALGO_RECURRENT, RETCL_FORM_TORCHSCALE, 1, 1000},
      {2, 3, 16, 24, 1, 8, RETCL_ALGO_RECURRENT, RETCL_FORM_TORCHSCALE, 1,
       70001},
      {2, 4, 32, 32, 4, 8, RETCL_ALGO_RECURRENT, RETCL_FORM_RAW, 1, 513},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
    check_layer(&cases[i]);
}
END_TEST

int main(void) {
  Suite *s = suite_create("layer");
  TCase *tc = tcase_create("layer");
  tcase_add_test(tc, layer_torchscale_each_algorithm);
  tcase_add_test(tc, layer_raw_with_state_one_head);
  tcase_add_test(tc, layer_few_rows_decode_projections);
  tcase_add_test(tc, layer_recurrent_at_nonzero_position_with_state);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
