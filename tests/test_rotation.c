/* test_rotation.c - rotation Θ (docs/design.md §1.1) against the long-double
 * reference, including positions far past fp32's exact argument range. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

/* fp32 sin/cos of a reduced angle: error ~1e-7 relative; 1e-6 leaves room
 * for the rounding of x*cos - y*sin and is still far below the ~1e-2 that a
 * naive fp32 angle gives at n = 1e6. */
#define ROT_TOL 1e-6

typedef struct rot_case {
  size_t B, T, H, D;
  retcl_layout layout;
  size_t pos0;
  int custom_theta;
  float xpos_base;
  int is_key;
  int in_place;
} rot_case;

static void run_case(const rot_case *c) {
  retcl_context *ctx = tu_context();
  const size_t n = c->B * c->T * c->H * c->D;
  float *x = tu_alloc(n), *got = tu_alloc(n), theta[512];
  double *ref = tu_alloc_d(n);
  tu_fill_uniform(x, n, -1, 1);
  for (size_t i = 0; i < c->D / 2; ++i) theta[i] = (float)tu_uniform(0.001, 2.0);
  const float *th = c->custom_theta ? theta : NULL;

  retcl_rotation *rot = NULL;
  tu_ok(ctx, retcl_rotation_create(ctx, c->D, th, c->xpos_base, &rot));
  cl_mem in = tu_upload(ctx, x, n);
  cl_mem out = c->in_place ? in : tu_poisoned(ctx, n + 7);
  size_t out_off = c->in_place ? 0 : 7;
  retcl_rotation_desc d = {c->B, c->T, c->H, c->layout, c->pos0, c->is_key};
  tu_ok(ctx, retcl_rotate(ctx, rot, &d, retcl_buf(in, 0),
                          retcl_buf(out, out_off), 0, NULL, NULL));
  tu_download(ctx, out, out_off, got, n);
  ref_rotate(x, ref, c->B, c->T, c->H, c->D, c->layout, c->pos0, th,
             c->xpos_base, c->is_key);
  tu_assert_close("rotate", got, ref, n, ROT_TOL);

  if (!c->in_place) clReleaseMemObject(out);
  clReleaseMemObject(in);
  retcl_rotation_destroy(rot);
  retcl_context_destroy(ctx);
  free(x);
  free(got);
  free(ref);
}

START_TEST(rotate_token_major_batch) {
  rot_case c = {2, 5, 3, 16, RETCL_LAYOUT_TOKEN_MAJOR, 0, 0, 0, 0, 0};
  run_case(&c);
}
END_TEST

START_TEST(rotate_head_major_far_positions) {
  rot_case c = {1, 9, 2, 64, RETCL_LAYOUT_HEAD_MAJOR, 3000000, 0, 0, 0, 0};
  run_case(&c);
}
END_TEST

START_TEST(rotate_positions_near_2_pow_24) {
  rot_case c = {1, 4, 1, 128, RETCL_LAYOUT_TOKEN_MAJOR, (1u << 24) - 2, 0, 0,
                0, 0};
  run_case(&c);
}
END_TEST

START_TEST(rotate_single_token_custom_theta_in_place) {
  rot_case c = {3, 1, 4, 32, RETCL_LAYOUT_TOKEN_MAJOR, 1234567, 1, 0, 0, 1};
  run_case(&c);
}
END_TEST

START_TEST(rotate_two_dims) {
  rot_case c = {1, 7, 1, 2, RETCL_LAYOUT_HEAD_MAJOR, 11, 0, 0, 0, 0};
  run_case(&c);
}
END_TEST

START_TEST(rotate_xpos_query_and_key) {
  rot_case q = {1, 6, 2, 8, RETCL_LAYOUT_TOKEN_MAJOR, 100, 0, 512.0f, 0, 0};
  run_case(&q);
  rot_case k = q;
  k.is_key = 1;
  run_case(&k);
}
END_TEST

/* Invalid calls: exact status, and the output keeps its poison. */
START_TEST(rotate_rejects_bad_arguments) {
  retcl_context *ctx = tu_context();
  retcl_rotation *rot = NULL;
  tu_assert_status(ctx, retcl_rotation_create(ctx, 7, NULL, 0, &rot),
                   RETCL_ERROR_INVALID_SIZE);
  ck_assert_ptr_null(rot);
  tu_assert_status(ctx, retcl_rotation_create(ctx, 0, NULL, 0, &rot),
                   RETCL_ERROR_INVALID_SIZE);
  tu_assert_status(ctx, retcl_rotation_create(ctx, 8, NULL, -1.0f, &rot),
                   RETCL_ERROR_INVALID_SIZE);
  tu_assert_status(ctx, retcl_rotation_create(ctx, 8, NULL, 0, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_int_eq(retcl_rotation_create(NULL, 8, NULL, 0, &rot),
                   RETCL_ERROR_INVALID_ARGUMENT);
  tu_ok(ctx, retcl_rotation_create(ctx, 8, NULL, 0, &rot));

  const size_t n = 2 * 3 * 4 * 8;
  float *x = tu_alloc(n), *got = tu_alloc(n);
  tu_fill_uniform(x, n, -1, 1);
  cl_mem in = tu_upload(ctx, x, n);
  cl_mem out = tu_poisoned(ctx, n);
  cl_mem small = tu_poisoned(ctx, n - 1);
  retcl_rotation_desc d = {2, 3, 4, RETCL_LAYOUT_TOKEN_MAJOR, 0, 0};
  retcl_buffer bin = retcl_buf(in, 0), bout = retcl_buf(out, 0);

  tu_assert_status(ctx, retcl_rotate(ctx, NULL, &d, bin, bout, 0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "rot"));
  tu_assert_status(ctx, retcl_rotate(ctx, rot, NULL, bin, bout, 0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  tu_assert_status(ctx, retcl_rotate(ctx, rot, &d, bin, retcl_no_buf(), 0,
                                     NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  tu_assert_status(ctx, retcl_rotate(ctx, rot, &d, bin, retcl_buf(small, 0),
                                     0, NULL, NULL),
                   RETCL_ERROR_BUFFER_TOO_SMALL);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "out"));
  tu_assert_status(ctx, retcl_rotate(ctx, rot, &d, bin, retcl_buf(out, 1), 0,
                                     NULL, NULL),
                   RETCL_ERROR_BUFFER_TOO_SMALL);
  retcl_rotation_desc zero_t = d;
  zero_t.tokens = 0;
  tu_assert_status(ctx, retcl_rotate(ctx, rot, &zero_t, bin, bout, 0, NULL,
                                     NULL),
                   RETCL_ERROR_INVALID_SIZE);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "tokens"));
  retcl_rotation_desc bad_layout = d;
  bad_layout.layout = (retcl_layout)9;
  tu_assert_status(ctx, retcl_rotate(ctx, rot, &bad_layout, bin, bout, 0,
                                     NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  retcl_rotation_desc far = d;
  far.pos0 = (size_t)1 << 32;
  tu_assert_status(ctx, retcl_rotate(ctx, rot, &far, bin, bout, 0, NULL, NULL),
                   RETCL_ERROR_INVALID_SIZE);
  tu_assert_status(ctx, retcl_rotate(ctx, rot, &d, bin, bout, 1, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);

  /* A buffer from another OpenCL context. */
  retcl_context *other = tu_context();
  cl_mem foreign = tu_poisoned(other, n);
  tu_assert_status(ctx, retcl_rotate(ctx, rot, &d, bin, retcl_buf(foreign, 0),
                                     0, NULL, NULL),
                   RETCL_ERROR_CONTEXT_MISMATCH);

  /* Nothing above may have written to out. */
  tu_download(ctx, out, 0, got, n);
  for (size_t i = 0; i < n; ++i) ck_assert(isnan(got[i]));

  clReleaseMemObject(foreign);
  retcl_context_destroy(other);
  clReleaseMemObject(in);
  clReleaseMemObject(out);
  clReleaseMemObject(small);
  retcl_rotation_destroy(rot);
  retcl_context_destroy(ctx);
  free(x);
  free(got);
}
END_TEST

START_TEST(default_log_decay_matches_formula) {
  float lg[32];
  tu_ok(NULL, retcl_default_log_decay(32, lg));
  for (int h = 0; h < 32; ++h) {
    double want = log(1.0 - pow(2.0, -5.0 - h));
    ck_assert_msg(fabs(lg[h] - want) <= 1e-7 * fabs(want), "head %d", h);
    ck_assert(lg[h] < 0.0f); /* γ < 1 even where it rounds to 1 in fp32 */
  }
  ck_assert_int_eq(retcl_default_log_decay(0, lg), RETCL_ERROR_INVALID_SIZE);
  ck_assert_int_eq(retcl_default_log_decay(4, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
}
END_TEST

int main(void) {
  Suite *s = suite_create("rotation");
  TCase *tc = tcase_create("rotation");
  tcase_add_test(tc, rotate_token_major_batch);
  tcase_add_test(tc, rotate_head_major_far_positions);
  tcase_add_test(tc, rotate_positions_near_2_pow_24);
  tcase_add_test(tc, rotate_single_token_custom_theta_in_place);
  tcase_add_test(tc, rotate_two_dims);
  tcase_add_test(tc, rotate_xpos_query_and_key);
  tcase_add_test(tc, rotate_rejects_bad_arguments);
  tcase_add_test(tc, default_log_decay_matches_formula);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
