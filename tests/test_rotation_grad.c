/* test_rotation_grad.c - retcl_rotate_backward, the transpose of the
 * rotation (docs/design.md §1.7): the device against the analytic double
 * backward (ref_rotate_backward) within a derived fp32 bound, the analytic
 * backward against central differences of the double forward, the
 * backward of a forward giving the input back, positions up to 2^32, and
 * every rejected call. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

#define U 0x1.0p-24 /* fp32 unit roundoff */

typedef struct rot_case {
  size_t B, T, H, D;
  retcl_layout layout;
  size_t pos0;
  int custom_theta;
  float xpos_base;
  int is_key;
  int in_place; /* d_in is d_out (same buffer and offset) */
} rot_case;

/* The per-pair xPos factor f = ζ_i^(±n/β) and its exponent z = ±n·log ζ_i/β
 * for pair i at position n (f = 1, z = 0 without xPos). */
static double xpos_factor(const rot_case *c, size_t i, size_t n, double *z) {
  *z = 0.0;
  if (!(c->xpos_base > 0)) return 1.0;
  const double zeta = (2.0 * (double)i + 0.4 * (double)c->D) / (1.4 * (double)c->D);
  *z = (c->is_key ? -1.0 : 1.0) * (double)n * log(zeta) / c->xpos_base;
  return exp(*z);
}

/* Largest |got − ref| / bound over all elements, where bound is the
 * worst-case fp32 error of one element of the pair (a, b) = d_out's pair,
 * r its exact result:
 *   angle: the turn fraction is exact to 2^-32 turns (fixed point), then
 *     converted to float (u of half a turn), times 2π in fp32 (a rounded
 *     constant and a rounded product): |δφ| ≤ 3π·u + 2^-29 rad;
 *   sin, cos: ≤ 4 ulp (OpenCL C) of values ≤ 1, so ≤ 8u absolute each;
 *   a·c + b·s in fp32: ≤ 3u (|a| + |b|) (two products, one sum);
 *   xPos factor exp(z): z from four rounded operands and three products
 *     (6u relative), exp ≤ 3 ulp: relative ≤ 6u·|z| + 8u.
 * So |got − r| ≤ f·(|a| + |b|)·(3πu + 2^-29 + 8u + 3u) + |r|·(6u|z| + 8u). */
static double worst_ratio(const rot_case *c, const float *d_out,
                          const float *got, const double *ref) {
  const double eps_angle = 3.0 * 3.14159265358979 * U + 0x1.0p-29 + 11.0 * U;
  double worst = 0.0;
  for (size_t b = 0; b < c->B; ++b)
    for (size_t t = 0; t < c->T; ++t)
      for (size_t h = 0; h < c->H; ++h)
        for (size_t i = 0; i < c->D / 2; ++i) {
          const size_t at = ref_index(c->layout, c->T, c->H, c->D, b, t, h, 2 * i);
          double z;
          const double f = xpos_factor(c, i, c->pos0 + t, &z);
          const double mag = f * (fabs(d_out[at]) + fabs(d_out[at + 1]));
          for (int e = 0; e < 2; ++e) {
            const double bound = mag * eps_angle +
                                 fabs(ref[at + e]) * (6.0 * U * fabs(z) + 8.0 * U) +
                                 1e-37; /* all-zero pairs */
            if (!isfinite(got[at + e])) return INFINITY;
            const double r = fabs(got[at + e] - ref[at + e]) / bound;
            if (r > worst) worst = r;
          }
        }
  return worst;
}

/* The device backward of random d_out against ref_rotate_backward. */
static void run_case(const rot_case *c) {
  retcl_context *ctx = tu_context();
  const size_t n = c->B * c->T * c->H * c->D;
  float *g = tu_alloc(n), *got = tu_alloc(n), theta[512];
  double *ref = tu_alloc_d(n);
  tu_fill_uniform(g, n, -1, 1);
  for (size_t i = 0; i < c->D / 2; ++i) theta[i] = (float)tu_uniform(0.001, 2.0);
  const float *th = c->custom_theta ? theta : NULL;

  retcl_rotation *rot = NULL;
  tu_ok(ctx, retcl_rotation_create(ctx, c->D, th, c->xpos_base, &rot));
  /* d_out at offset 5, d_in at offset 7 of a poisoned buffer (NaN around
   * it shows any write outside). */
  cl_mem src, dst;
  size_t src_off = 5, dst_off = 7;
  {
    float *all = tu_alloc(n + 5);
    for (size_t i = 0; i < n + 5; ++i) all[i] = NAN;
    memcpy(all + 5, g, n * sizeof *all);
    src = tu_upload(ctx, all, n + 5);
    free(all);
  }
  if (c->in_place) {
    dst = src;
    dst_off = src_off;
  } else {
    dst = tu_poisoned(ctx, n + 7 + 3);
  }
  retcl_rotation_desc d = {c->B, c->T, c->H, c->layout, c->pos0, c->is_key};
  tu_ok(ctx, retcl_rotate_backward(ctx, rot, &d, retcl_buf(src, src_off),
                                   retcl_buf(dst, dst_off), 0, NULL, NULL));
  tu_download(ctx, dst, dst_off, got, n);
  if (!c->in_place) {
    float guard[10];
    tu_download(ctx, dst, 0, guard, 7);
    tu_download(ctx, dst, n + 7, guard + 7, 3);
    for (int i = 0; i < 10; ++i) ck_assert_msg(isnan(guard[i]), "guard %d written", i);
  }
  ref_rotate_backward(g, ref, c->B, c->T, c->H, c->D, c->layout, c->pos0, th,
                      c->xpos_base, c->is_key);
  const double r = worst_ratio(c, g, got, ref);
  if (getenv("RETCL_TEST_VERBOSE"))
    fprintf(stderr,
            "rotate_backward B%zu T%zu H%zu D%zu pos0 %zu xpos %g key %d: "
            "worst error / bound %.3g, rel err %.3g\n",
            c->B, c->T, c->H, c->D, c->pos0, (double)c->xpos_base, c->is_key,
            r, tu_rel_error(got, ref, n));
  /* Every element within its derived worst-case bound (worst_ratio). */
  ck_assert_msg(r <= 1.0, "error %.3g times the bound (seed %llu)", r,
                (unsigned long long)tu_seed());

  if (!c->in_place) clReleaseMemObject(dst);
  clReleaseMemObject(src);
  retcl_rotation_destroy(rot);
  retcl_context_destroy(ctx);
  free(g);
  free(got);
  free(ref);
}

#define TM RETCL_LAYOUT_TOKEN_MAJOR
#define HM RETCL_LAYOUT_HEAD_MAJOR
static const rot_case cases[] = {
    {2, 5, 3, 16, TM, 0, 0, 0, 0, 0},
    {1, 9, 2, 64, HM, 3000000, 0, 0, 0, 0},
    /* One token, custom angles, in place. */
    {3, 1, 4, 32, TM, 1234567, 1, 0, 0, 1},
    /* One pair, odd batch and heads. */
    {3, 7, 5, 2, HM, 11, 0, 0, 0, 0},
    /* Straddling 2^31 (the sign bit of a 32-bit position) and ending at
     * 2^32, the last position allowed. */
    {2, 7, 3, 30, TM, ((size_t)1 << 31) - 3, 0, 0, 0, 0},
    {1, 5, 2, 128, HM, ((size_t)1 << 32) - 5, 1, 0, 0, 1},
    /* xPos: queries and keys keep their forward factors. */
    {1, 6, 2, 8, TM, 100, 0, 512.0f, 0, 0},
    {2, 3, 3, 10, HM, 4000, 0, 512.0f, 1, 0},
    {1, 4, 1, 6, TM, 77, 1, 64.0f, 1, 1},
};
#undef TM
#undef HM

START_TEST(device_matches_analytic) { run_case(&cases[_i]); }
END_TEST

/* L(x) = Σ y ⊙ Θ(x) in double; its gradient is Θᵀ y. */
static double loss(const double *x, const double *y, double *tmp,
                   const rot_case *c, const float *theta) {
  const size_t n = c->B * c->T * c->H * c->D;
  ref_rotate_d(x, tmp, c->B, c->T, c->H, c->D, c->layout, c->pos0, theta,
               c->xpos_base, c->is_key);
  double s = 0.0;
  for (size_t i = 0; i < n; ++i) s += y[i] * tmp[i];
  return s;
}

/* The analytic backward against central differences of the forward, in
 * double. The forward is linear, so a central difference is exact but for
 * the rounding of L, ~1e-16·|L|/h ≈ 1e-9 with h = 1e-6 and |L| ≈ 10;
 * the gradient's elements are O(1), so 1e-7 relative (normwise) holds
 * with margin, and any sign or angle error gives O(1). */
START_TEST(analytic_matches_finite_differences) {
  static const rot_case fd_cases[] = {
      {2, 3, 2, 8, RETCL_LAYOUT_TOKEN_MAJOR, 5, 0, 0, 0, 0},
      {1, 4, 3, 6, RETCL_LAYOUT_HEAD_MAJOR, 1000, 1, 0, 0, 0},
      {1, 3, 2, 10, RETCL_LAYOUT_TOKEN_MAJOR, 50, 0, 256.0f, 0, 0},
      {2, 2, 1, 4, RETCL_LAYOUT_HEAD_MAJOR, 300, 0, 128.0f, 1, 0},
      {1, 3, 1, 4, RETCL_LAYOUT_TOKEN_MAJOR, ((size_t)1 << 32) - 3, 0, 0, 0, 0},
  };
  for (size_t k = 0; k < sizeof fd_cases / sizeof *fd_cases; ++k) {
    const rot_case *c = &fd_cases[k];
    const size_t n = c->B * c->T * c->H * c->D;
    double *x = tu_alloc_d(n), *y = tu_alloc_d(n), *tmp = tu_alloc_d(n);
    double *grad = tu_alloc_d(n);
    float theta[8];
    for (size_t i = 0; i < c->D / 2; ++i) theta[i] = (float)tu_uniform(0.01, 2.0);
    const float *th = c->custom_theta ? theta : NULL;
    for (size_t i = 0; i < n; ++i) {
      x[i] = tu_uniform(-1, 1);
      y[i] = tu_uniform(-1, 1);
    }
    ref_rotate_backward_d(y, grad, c->B, c->T, c->H, c->D, c->layout, c->pos0,
                          th, c->xpos_base, c->is_key);
    const double h = 1e-6;
    double num = 0.0, den = 0.0;
    for (size_t j = 0; j < n; ++j) {
      const double keep = x[j];
      x[j] = keep + h;
      const double lp = loss(x, y, tmp, c, th);
      x[j] = keep - h;
      const double lm = loss(x, y, tmp, c, th);
      x[j] = keep;
      const double fd = (lp - lm) / (2.0 * h);
      num += (fd - grad[j]) * (fd - grad[j]);
      den += grad[j] * grad[j];
    }
    const double rel = sqrt(num / den);
    ck_assert_msg(rel <= 1e-7, "case %zu: finite differences differ by %.3g "
                  "(seed %llu)", k, rel, (unsigned long long)tu_seed());
    free(x);
    free(y);
    free(tmp);
    free(grad);
  }
}
END_TEST

/* Without xPos the rotation is orthogonal: backward(forward(x)) = x. Both
 * steps run in place on one buffer. The device uses the same c, s in both
 * (one kernel, one angle, the sine negated), so the result is
 * (c² + s²)·x + Rᵀe₁ + e₂ with e₁, e₂ the rounding of the two passes:
 *   c, s within 8u of a true cosine and sine (4 ulp): |c² + s² − 1| ≤ 23u;
 *   each pass rounds a·c ∓ b·s to ≤ 3u (|a| + |b|) per element, and Rᵀ
 *   adds the two elements of e₁: ≤ 6u + 5u (|x_a| + |x_b|) together.
 * Per element |got − x| ≤ 34u (|x_a| + |x_b|) over its pair; 40u asserted. */
START_TEST(backward_inverts_forward) {
  static const rot_case inv_cases[] = {
      {2, 9, 3, 64, RETCL_LAYOUT_TOKEN_MAJOR, 0, 0, 0, 0, 0},
      {1, 6, 2, 32, RETCL_LAYOUT_HEAD_MAJOR, ((size_t)1 << 31) - 2, 1, 0, 0, 0},
      {3, 1, 2, 2, RETCL_LAYOUT_TOKEN_MAJOR, ((size_t)1 << 32) - 1, 0, 0, 0, 0},
  };
  retcl_context *ctx = tu_context();
  for (size_t k = 0; k < sizeof inv_cases / sizeof *inv_cases; ++k) {
    const rot_case *c = &inv_cases[k];
    const size_t n = c->B * c->T * c->H * c->D;
    float *x = tu_alloc(n), *got = tu_alloc(n), theta[32];
    for (size_t i = 0; i < c->D / 2; ++i) theta[i] = (float)tu_uniform(0.01, 3.0);
    tu_fill_uniform(x, n, -1, 1);
    retcl_rotation *rot = NULL;
    tu_ok(ctx, retcl_rotation_create(ctx, c->D, c->custom_theta ? theta : NULL,
                                     0, &rot));
    cl_mem buf = tu_upload(ctx, x, n);
    retcl_rotation_desc d = {c->B, c->T, c->H, c->layout, c->pos0, 0};
    cl_event fwd = NULL;
    tu_ok(ctx, retcl_rotate(ctx, rot, &d, retcl_buf(buf, 0), retcl_buf(buf, 0),
                            0, NULL, &fwd));
    tu_ok(ctx, retcl_rotate_backward(ctx, rot, &d, retcl_buf(buf, 0),
                                     retcl_buf(buf, 0), 1, &fwd, NULL));
    tu_download(ctx, buf, 0, got, n);
    for (size_t i = 0; i < n; i += 2) {
      const double bound = 40.0 * U * (fabs(x[i]) + fabs(x[i + 1]));
      for (int e = 0; e < 2; ++e)
        ck_assert_msg(fabs((double)got[i + e] - x[i + e]) <= bound,
                      "case %zu element %zu: %.9g, want %.9g (bound %.3g)", k,
                      i + e, (double)got[i + e], (double)x[i + e], bound);
    }
    clReleaseEvent(fwd);
    clReleaseMemObject(buf);
    retcl_rotation_destroy(rot);
    free(x);
    free(got);
  }
  retcl_context_destroy(ctx);
}
END_TEST

/* The event completes the work, and the adjoint identity holds on the
 * device: <Θx, y> = <x, Θᵀy> to fp32 rounding (2e-6 relative to
 * Σ|Θx||y|, a dot product of ~1000 terms). */
START_TEST(events_and_adjoint) {
  retcl_context *ctx = tu_context();
  const size_t B = 2, T = 11, H = 3, D = 14, n = B * T * H * D;
  float *x = tu_alloc(n), *y = tu_alloc(n), *rx = tu_alloc(n), *ty = tu_alloc(n);
  tu_fill_uniform(x, n, -1, 1);
  tu_fill_uniform(y, n, -1, 1);
  retcl_rotation *rot = NULL;
  tu_ok(ctx, retcl_rotation_create(ctx, D, NULL, 300.0f, &rot));
  cl_mem xb = tu_upload(ctx, x, n), yb = tu_upload(ctx, y, n);
  cl_mem rxb = tu_poisoned(ctx, n), tyb = tu_poisoned(ctx, n);
  retcl_rotation_desc d = {B, T, H, RETCL_LAYOUT_TOKEN_MAJOR, 40, 1};
  cl_event e1 = NULL, e2 = NULL;
  tu_ok(ctx, retcl_rotate(ctx, rot, &d, retcl_buf(xb, 0), retcl_buf(rxb, 0), 0,
                          NULL, &e1));
  tu_ok(ctx, retcl_rotate_backward(ctx, rot, &d, retcl_buf(yb, 0),
                                   retcl_buf(tyb, 0), 1, &e1, &e2));
  ck_assert_ptr_nonnull(e2);
  ck_assert_int_eq(clWaitForEvents(1, &e2), CL_SUCCESS);
  tu_download(ctx, rxb, 0, rx, n);
  tu_download(ctx, tyb, 0, ty, n);
  double lhs = 0, rhs = 0, mag = 0;
  for (size_t i = 0; i < n; ++i) {
    lhs += (double)rx[i] * y[i];
    rhs += (double)x[i] * ty[i];
    mag += fabs((double)rx[i] * y[i]);
  }
  ck_assert_msg(fabs(lhs - rhs) <= 2e-6 * mag, "<Θx,y> = %.9g, <x,Θᵀy> = %.9g",
                lhs, rhs);
  clReleaseEvent(e1);
  clReleaseEvent(e2);
  clReleaseMemObject(xb);
  clReleaseMemObject(yb);
  clReleaseMemObject(rxb);
  clReleaseMemObject(tyb);
  retcl_rotation_destroy(rot);
  retcl_context_destroy(ctx);
  free(x);
  free(y);
  free(rx);
  free(ty);
}
END_TEST

/* The call fails with `want` and the message names `word` and the op. */
#define EXPECT_FAIL(ctx, call, want, word)                                   \
  do {                                                                       \
    tu_assert_status((ctx), (call), (want));                                 \
    ck_assert_msg(strstr(retcl_last_error(ctx), (word)) != NULL,             \
                  "message \"%s\" does not mention \"%s\"",                  \
                  retcl_last_error(ctx), (word));                            \
    ck_assert_msg(strstr(retcl_last_error(ctx), "retcl_rotate_backward"),    \
                  "message \"%s\" does not name the op",                     \
                  retcl_last_error(ctx));                                    \
  } while (0)

START_TEST(rejects_bad_arguments) {
  retcl_context *ctx = tu_context();
  retcl_rotation *rot = NULL;
  tu_ok(ctx, retcl_rotation_create(ctx, 8, NULL, 0, &rot));
  const size_t n = 2 * 3 * 4 * 8;
  float *g = tu_alloc(n), *got = tu_alloc(2 * n);
  tu_fill_uniform(g, n, -1, 1);
  cl_mem src = tu_upload(ctx, g, n);
  cl_mem out = tu_poisoned(ctx, n), small = tu_poisoned(ctx, n - 1);
  cl_mem shared = tu_poisoned(ctx, 2 * n);
  retcl_context *other = tu_context();
  cl_mem foreign = tu_poisoned(other, n);
  retcl_rotation *other_rot = NULL;
  tu_ok(other, retcl_rotation_create(other, 8, NULL, 0, &other_rot));
  const retcl_rotation_desc d = {2, 3, 4, RETCL_LAYOUT_TOKEN_MAJOR, 0, 0};
  const retcl_buffer bs = retcl_buf(src, 0), bo = retcl_buf(out, 0);

  ck_assert_int_eq(retcl_rotate_backward(NULL, rot, &d, bs, bo, 0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, NULL, &d, bs, bo, 0, NULL, NULL),
              RETCL_ERROR_INVALID_ARGUMENT, "rot");
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, rot, NULL, bs, bo, 0, NULL, NULL),
              RETCL_ERROR_INVALID_ARGUMENT, "desc");
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, other_rot, &d, bs, bo, 0, NULL,
                                         NULL),
              RETCL_ERROR_CONTEXT_MISMATCH, "rot");
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, rot, &d, retcl_no_buf(), bo, 0,
                                         NULL, NULL),
              RETCL_ERROR_INVALID_ARGUMENT, "d_out");
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, rot, &d, bs, retcl_no_buf(), 0,
                                         NULL, NULL),
              RETCL_ERROR_INVALID_ARGUMENT, "d_in");
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, rot, &d, retcl_buf(small, 0), bo,
                                         0, NULL, NULL),
              RETCL_ERROR_BUFFER_TOO_SMALL, "d_out");
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, rot, &d, bs, retcl_buf(small, 0),
                                         0, NULL, NULL),
              RETCL_ERROR_BUFFER_TOO_SMALL, "d_in");
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, rot, &d, bs, retcl_buf(out, 1), 0,
                                         NULL, NULL),
              RETCL_ERROR_BUFFER_TOO_SMALL, "d_in");
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, rot, &d, bs,
                                         retcl_buf(foreign, 0), 0, NULL, NULL),
              RETCL_ERROR_CONTEXT_MISMATCH, "d_in");
  static const char *const fields[] = {"batch", "tokens", "heads"};
  for (int f = 0; f < 3; ++f) {
    retcl_rotation_desc z = d;
    size_t *dims[] = {&z.batch, &z.tokens, &z.heads};
    *dims[f] = 0;
    EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, rot, &z, bs, bo, 0, NULL, NULL),
                RETCL_ERROR_INVALID_SIZE, fields[f]);
  }
  retcl_rotation_desc bad = d;
  bad.layout = (retcl_layout)9;
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, rot, &bad, bs, bo, 0, NULL, NULL),
              RETCL_ERROR_INVALID_ARGUMENT, "layout");
  bad = d;
  bad.pos0 = ((size_t)1 << 32) - 2; /* + 3 tokens passes 2^32 */
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, rot, &bad, bs, bo, 0, NULL, NULL),
              RETCL_ERROR_INVALID_SIZE, "2^32");
  cl_event dummy = NULL;
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, rot, &d, bs, bo, 1, NULL, NULL),
              RETCL_ERROR_INVALID_ARGUMENT, "wait");
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, rot, &d, bs, bo, 0, &dummy, NULL),
              RETCL_ERROR_INVALID_ARGUMENT, "wait");
  /* Overlapping, but not the same range. */
  EXPECT_FAIL(ctx, retcl_rotate_backward(ctx, rot, &d, retcl_buf(shared, 0),
                                         retcl_buf(shared, 2), 0, NULL, NULL),
              RETCL_ERROR_INVALID_ARGUMENT, "overlap");

  /* Nothing above may have written anything. */
  ck_assert_int_eq(clFinish(retcl_context_queue(ctx)), CL_SUCCESS);
  tu_download(ctx, out, 0, got, n);
  for (size_t i = 0; i < n; ++i) ck_assert(isnan(got[i]));
  tu_download(ctx, small, 0, got, n - 1);
  for (size_t i = 0; i < n - 1; ++i) ck_assert(isnan(got[i]));
  tu_download(ctx, shared, 0, got, 2 * n);
  for (size_t i = 0; i < 2 * n; ++i) ck_assert(isnan(got[i]));

  retcl_rotation_destroy(other_rot);
  clReleaseMemObject(foreign);
  retcl_context_destroy(other);
  clReleaseMemObject(shared);
  clReleaseMemObject(small);
  clReleaseMemObject(out);
  clReleaseMemObject(src);
  retcl_rotation_destroy(rot);
  retcl_context_destroy(ctx);
  free(g);
  free(got);
}
END_TEST

int main(void) {
  Suite *s = suite_create("rotation_grad");
  TCase *tc = tcase_create("rotation_grad");
  tcase_add_loop_test(tc, device_matches_analytic, 0,
                      sizeof cases / sizeof cases[0]);
  tcase_add_test(tc, analytic_matches_finite_differences);
  tcase_add_test(tc, backward_inverts_forward);
  tcase_add_test(tc, events_and_adjoint);
  tcase_add_test(tc, rejects_bad_arguments);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
