/* test_linear.c - retcl_linear (y = alpha x wᵀ + beta y) against a
 * double-precision product, through both of its paths: the weight-streaming
 * kernels (up to 32 rows, beta = 0; CPU or GPU access pattern, the latter
 * when run with RETCL_KERNEL_PATHS=gpu) and the GEMM of gemm.backend (more
 * rows, or beta != 0: RetCL's on CPUs, CLBlast elsewhere; test_gemm runs
 * both); then every rejected call, with y left as it was. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Offsets (in floats) at which x, w and y start inside their buffers, so
 * the kernels' offset arithmetic is exercised too. */
#define X_OFF 3
#define W_OFF 5
#define Y_OFF 7

typedef struct lin_case {
  size_t M, N, K;
  float alpha, beta;
} lin_case;

/* A device buffer of off NaN floats followed by the n of host, written in
 * one transfer (oclgrind 21.10 reports reads of values that a second
 * clEnqueueWriteBuffer wrote at an offset as uninitialised). */
static cl_mem upload_at(retcl_context *ctx, const float *host, size_t n,
                        size_t off) {
  float *tmp = tu_alloc(off + n);
  for (size_t i = 0; i < off; ++i) tmp[i] = NAN;
  memcpy(tmp + off, host, n * sizeof *tmp);
  cl_mem m = tu_upload(ctx, tmp, off + n);
  free(tmp);
  return m;
}

/* Each y element is checked against the bound of a float dot product of
 * length K summed in any order, |ŷ − y| ≤ γ(K+2) · (|α| Σ|x w| + |β y0|)
 * with γ(n) = n u / (1 − n u), u = 2^-24 (Higham, Accuracy and Stability,
 * §3.1; the + 2 covers the products by alpha and beta). It holds for every
 * correct summation order, so it cannot fail spuriously, and a wrong or
 * missing term is far outside it. */
/* got [M,N] against alpha x wᵀ + beta y0 (y0 NULL: beta ignored), each
 * element within the dot-product bound described above. */
static void assert_product(const float *x, const float *w, const float *y0,
                           const float *got, size_t M, size_t N, size_t K,
                           float alpha, float beta, const char *what) {
  const double u = ldexp(1.0, -24), n = (double)(K + 2);
  const double gamma = n * u / (1.0 - n * u);
  for (size_t m = 0; m < M; ++m)
    for (size_t j = 0; j < N; ++j) {
      double dot = 0, mag = 0;
      for (size_t k = 0; k < K; ++k) {
        dot += (double)x[m * K + k] * w[j * K + k];
        mag += fabs((double)x[m * K + k] * w[j * K + k]);
      }
      const double y_prev = y0 ? y0[m * N + j] : 0.0;
      const double ref = alpha * dot + beta * y_prev;
      const double bound = gamma * (fabs(alpha) * mag + fabs(beta * y_prev));
      const double err = fabs((double)got[m * N + j] - ref);
      ck_assert_msg(err <= bound,
                    "%s, M %zu N %zu K %zu alpha %g beta %g: y[%zu,%zu] = "
                    "%.9g, reference %.9g, error %.3g > bound %.3g (seed %llu)",
                    what, M, N, K, alpha, beta, m, j, got[m * N + j], ref, err,
                    bound, (unsigned long long)tu_seed());
    }
}

static void run_case(const lin_case *c) {
  retcl_context *ctx = tu_context();
  const size_t M = c->M, N = c->N, K = c->K;
  float *x = tu_alloc(M * K), *w = tu_alloc(N * K), *y0 = tu_alloc(M * N),
        *got = tu_alloc(M * N);
  tu_fill_uniform(x, M * K, -1, 1);
  tu_fill_uniform(w, N * K, -1, 1);
  tu_fill_uniform(y0, M * N, -1, 1);
  /* y keeps its NaN poison when beta = 0, which must not reach the
   * result. */
  cl_mem xb = upload_at(ctx, x, M * K, X_OFF), wb = upload_at(ctx, w, N * K, W_OFF),
         yb = c->beta != 0.0f ? upload_at(ctx, y0, M * N, Y_OFF)
                              : tu_poisoned(ctx, Y_OFF + M * N);
  cl_event done = NULL;
  tu_ok(ctx, retcl_linear(ctx, M, N, K, c->alpha, retcl_buf(xb, X_OFF),
                          retcl_buf(wb, W_OFF), c->beta, retcl_buf(yb, Y_OFF),
                          0, NULL, &done));
  ck_assert_int_eq(clWaitForEvents(1, &done), CL_SUCCESS);
  clReleaseEvent(done);
  tu_download(ctx, yb, Y_OFF, got, M * N);

  assert_product(x, w, c->beta != 0.0f ? y0 : NULL, got, M, N, K, c->alpha,
                 c->beta, "retcl_linear");
  clReleaseMemObject(yb);
  clReleaseMemObject(wb);
  clReleaseMemObject(xb);
  retcl_context_destroy(ctx);
  free(x);
  free(w);
  free(y0);
  free(got);
}

/* Each row count the streaming kernels have a kernel for (CPU: 1, 2, 4;
 * GPU: 1, 2, 4, 8) and some that pad a group of rows (3, 5, 7), K a
 * multiple of every vector width and K not. */
START_TEST(few_rows_stream_w) {
  const lin_case cases[] = {{1, 64, 128, 1.0f, 0},  {2, 33, 37, 0.5f, 0},
                            {3, 17, 64, -2.0f, 0},  {5, 40, 100, 1.0f, 0},
                            {8, 96, 512, 0.125f, 0}, {1, 1, 1, 3.0f, 0},
                            {7, 29, 33, 0.5f, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) run_case(&cases[i]);
}
END_TEST

/* More rows than one group (CPU: one launch, groups of 4 rows over each
 * row of w, the last of 1 and 2 rows; GPU: launches of 8 rows, the last
 * of 5 and 6), up to the 32-row limit of the streaming path. */
START_TEST(rows_in_several_groups) {
  const lin_case cases[] = {{13, 50, 70, 1.0f, 0}, {22, 35, 48, -1.5f, 0},
                            {32, 64, 256, 0.25f, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) run_case(&cases[i]);
}
END_TEST

/* The GEMM backend: beyond 32 rows, and whenever beta != 0 (also for one
 * row). */
START_TEST(clblast_rows_and_beta) {
  const lin_case cases[] = {{33, 48, 64, 1.0f, 0},
                            {70, 31, 45, -0.5f, 0},
                            {1, 40, 64, 1.0f, 1.0f},
                            {9, 24, 30, 2.0f, -0.75f}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) run_case(&cases[i]);
}
END_TEST

/* retcl_linear_many: each y_i = alpha_i x w_iᵀ whether or not it stacks.
 * Projections 0-4 (width 24) lie back to back in one weight buffer and one
 * output buffer: one launch takes 0-3 (4 blocks at most), another 4;
 * 5 (width 40) has buffers of its own; 6 (width 24) shares 0-4's buffers
 * but after a gap, so it does not stack on them. Rows 13 run the streaming
 * kernels in groups (CPU: 4 + 4 + 4 + 1 in one launch; GPU: launches of 8
 * and 5), each writing its rows of every block; 40 rows go to the GEMM
 * backend. */
static void run_many(size_t M, size_t K) {
  enum { P = 7, OWN = 5, GAP = 9 };
  const size_t n[P] = {24, 24, 24, 24, 24, 40, 24};
  const float alpha[P] = {1.0f, 0.5f, -2.0f, 0.25f, 1.5f, 0.75f, 3.0f};
  retcl_context *ctx = tu_context();
  float *x = tu_alloc(M * K), *w[P], *got[P];
  tu_fill_uniform(x, M * K, -1, 1);
  /* Where each projection's weights and outputs start in the shared
   * buffers (projection OWN uses its own, at offset 0). */
  size_t w_at[P], y_at[P], w_total = W_OFF, y_total = Y_OFF;
  for (size_t i = 0; i < P; ++i) {
    w[i] = tu_alloc(n[i] * K);
    got[i] = tu_alloc(M * n[i]);
    tu_fill_uniform(w[i], n[i] * K, -1, 1);
    if (i == OWN) {
      w_at[i] = y_at[i] = 0;
      continue;
    }
    if (i == P - 1) w_total += GAP, y_total += GAP;
    w_at[i] = w_total, w_total += n[i] * K;
    y_at[i] = y_total, y_total += M * n[i];
  }
  float *w_host = tu_alloc(w_total);
  for (size_t i = 0; i < w_total; ++i) w_host[i] = NAN;
  for (size_t i = 0; i < P; ++i)
    if (i != OWN) memcpy(w_host + w_at[i], w[i], n[i] * K * sizeof(float));
  cl_mem xb = upload_at(ctx, x, M * K, X_OFF), wb = tu_upload(ctx, w_host, w_total),
         yb = tu_poisoned(ctx, y_total), w_own = tu_upload(ctx, w[OWN], n[OWN] * K),
         y_own = tu_poisoned(ctx, M * n[OWN]);
  retcl_projection proj[P];
  for (size_t i = 0; i < P; ++i) {
    proj[i].w = i == OWN ? retcl_buf(w_own, 0) : retcl_buf(wb, w_at[i]);
    proj[i].y = i == OWN ? retcl_buf(y_own, 0) : retcl_buf(yb, y_at[i]);
    proj[i].n = n[i];
    proj[i].alpha = alpha[i];
  }
  cl_event done = NULL;
  tu_ok(ctx, retcl_linear_many(ctx, M, K, retcl_buf(xb, X_OFF), P, proj, 0,
                               NULL, &done));
  ck_assert_int_eq(clWaitForEvents(1, &done), CL_SUCCESS);
  clReleaseEvent(done);
  for (size_t i = 0; i < P; ++i) {
    tu_download(ctx, i == OWN ? y_own : yb, y_at[i], got[i], M * n[i]);
    char what[64];
    snprintf(what, sizeof what, "retcl_linear_many proj[%zu]", i);
    assert_product(x, w[i], NULL, got[i], M, n[i], K, alpha[i], 0.0f, what);
  }
  /* Nothing outside the outputs was written: the gap keeps its poison. */
  float gap[GAP];
  tu_download(ctx, yb, y_at[P - 1] - GAP, gap, GAP);
  for (size_t i = 0; i < GAP; ++i)
    ck_assert_msg(isnan(gap[i]), "the gap before the last y was written");
  cl_mem all[] = {y_own, w_own, yb, wb, xb};
  for (size_t i = 0; i < 5; ++i) clReleaseMemObject(all[i]);
  retcl_context_destroy(ctx);
  for (size_t i = 0; i < P; ++i) free(w[i]), free(got[i]);
  free(w_host);
  free(x);
}

START_TEST(many_projections_stacked_or_not) {
  run_many(1, 64);
  run_many(13, 37);
}
END_TEST

START_TEST(many_projections_clblast) { run_many(40, 48); }
END_TEST

/* Rejected calls name what is wrong and leave y as it was. */
START_TEST(rejects_bad_arguments) {
  retcl_context *ctx = tu_context();
  const size_t M = 4, N = 6, K = 8;
  cl_mem xb = tu_poisoned(ctx, M * K), wb = tu_poisoned(ctx, N * K),
         yb = tu_poisoned(ctx, M * N), small = tu_poisoned(ctx, N * K - 1);
  float before[M * N], after[M * N];
  for (size_t i = 0; i < M * N; ++i) before[i] = (float)i - 3.5f;
  ck_assert_int_eq(clEnqueueWriteBuffer(retcl_context_queue(ctx), yb,
                                        CL_TRUE, 0, sizeof before, before, 0,
                                        NULL, NULL), CL_SUCCESS);
  const retcl_buffer x = retcl_buf(xb, 0), w = retcl_buf(wb, 0),
                     y = retcl_buf(yb, 0);
  cl_event ev = NULL;
  tu_assert_status(NULL, retcl_linear(NULL, M, N, K, 1, x, w, 0, y, 0, NULL,
                                      NULL), RETCL_ERROR_INVALID_ARGUMENT);
  tu_assert_status(ctx, retcl_linear(ctx, 0, N, K, 1, x, w, 0, y, 0, NULL, NULL),
                   RETCL_ERROR_INVALID_SIZE);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "M = 0"));
  tu_assert_status(ctx, retcl_linear(ctx, M, N, 0, 1, x, w, 0, y, 0, NULL, NULL),
                   RETCL_ERROR_INVALID_SIZE);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "K = 0"));
  tu_assert_status(ctx, retcl_linear(ctx, M, N, K, 1, x, retcl_buf(small, 0), 0,
                                     y, 0, NULL, NULL),
                   RETCL_ERROR_BUFFER_TOO_SMALL);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "w"));
  tu_assert_status(ctx, retcl_linear(ctx, M, N, K, 1, retcl_no_buf(), w, 0, y,
                                     0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "x is NULL"));
  tu_assert_status(ctx, retcl_linear(ctx, M, N, K, 1, x, w, 0, x, 0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "y overlaps x"));
  tu_assert_status(ctx, retcl_linear(ctx, M, N, K, NAN, x, w, 0, y, 0, NULL,
                                     NULL), RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "alpha"));
  tu_assert_status(ctx, retcl_linear(ctx, M, N, K, 1, x, w, INFINITY, y, 0,
                                     NULL, NULL), RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "beta"));
  tu_assert_status(ctx, retcl_linear(ctx, M, N, K, 1, x, w, 0, y, 1, NULL, &ev),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_null(ev);
  tu_download(ctx, yb, 0, after, M * N);
  ck_assert_int_eq(memcmp(before, after, sizeof before), 0);
  clReleaseMemObject(small);
  clReleaseMemObject(yb);
  clReleaseMemObject(wb);
  clReleaseMemObject(xb);
  retcl_context_destroy(ctx);
}
END_TEST

/* retcl_linear_many: rejected calls name the projection and what is wrong,
 * and write nothing. */
START_TEST(many_rejects_bad_arguments) {
  retcl_context *ctx = tu_context();
  const size_t M = 3, K = 8, N = 4;
  cl_mem xb = tu_poisoned(ctx, M * K), wb = tu_poisoned(ctx, 2 * N * K),
         yb = tu_poisoned(ctx, 2 * M * N);
  float before[2 * M * N], after[2 * M * N];
  for (size_t i = 0; i < 2 * M * N; ++i) before[i] = (float)i + 0.25f;
  ck_assert_int_eq(clEnqueueWriteBuffer(retcl_context_queue(ctx), yb, CL_TRUE,
                                        0, sizeof before, before, 0, NULL,
                                        NULL), CL_SUCCESS);
  const retcl_buffer x = retcl_buf(xb, 0);
  const retcl_projection good[2] = {{retcl_buf(wb, 0), retcl_buf(yb, 0), N, 1},
                                    {retcl_buf(wb, N * K), retcl_buf(yb, M * N),
                                     N, 1}};
  retcl_projection p[2];
  struct {
    const char *needle;
    retcl_status status;
  } cases[] = {
      {"proj[1].n = 0", RETCL_ERROR_INVALID_SIZE},
      {"proj[0].w", RETCL_ERROR_BUFFER_TOO_SMALL},
      {"proj[1].alpha", RETCL_ERROR_INVALID_ARGUMENT},
      {"proj[0].y overlaps proj[1].y", RETCL_ERROR_INVALID_ARGUMENT},
      {"proj[0].y overlaps proj[1].w", RETCL_ERROR_INVALID_ARGUMENT},
      {"proj[0].y overlaps x", RETCL_ERROR_INVALID_ARGUMENT},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; ++c) {
    memcpy(p, good, sizeof p);
    switch (c) {
      case 0: p[1].n = 0; break;
      case 1: p[0].w = retcl_buf(wb, 2 * N * K - 1); break;
      case 2: p[1].alpha = NAN; break;
      case 3: p[1].y = retcl_buf(yb, 1); break;
      case 4: p[0].y = retcl_buf(wb, N * K); break;
      case 5: p[0].y = x; break;
    }
    tu_assert_status(ctx, retcl_linear_many(ctx, M, K, x, 2, p, 0, NULL, NULL),
                     cases[c].status);
    ck_assert_msg(strstr(retcl_last_error(ctx), cases[c].needle),
                  "case %zu: message \"%s\" does not name \"%s\"", c,
                  retcl_last_error(ctx), cases[c].needle);
  }
  tu_assert_status(ctx, retcl_linear_many(ctx, M, K, x, 0, good, 0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "count is 0"));
  tu_assert_status(ctx, retcl_linear_many(ctx, M, K, x, 2, NULL, 0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "proj is NULL"));
  tu_assert_status(ctx, retcl_linear_many(ctx, 0, K, x, 2, good, 0, NULL, NULL),
                   RETCL_ERROR_INVALID_SIZE);
  tu_download(ctx, yb, 0, after, 2 * M * N);
  ck_assert_int_eq(memcmp(before, after, sizeof before), 0);
  clReleaseMemObject(yb);
  clReleaseMemObject(wb);
  clReleaseMemObject(xb);
  retcl_context_destroy(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("linear");
  /* Cases by path, so a checker can run one (CK_RUN_CASE=streaming). */
  TCase *streaming = tcase_create("streaming");
  tcase_add_test(streaming, few_rows_stream_w);
  tcase_add_test(streaming, rows_in_several_groups);
  tcase_add_test(streaming, many_projections_stacked_or_not);
  suite_add_tcase(s, streaming);
  TCase *clblast = tcase_create("clblast");
  tcase_add_test(clblast, clblast_rows_and_beta);
  tcase_add_test(clblast, many_projections_clblast);
  suite_add_tcase(s, clblast);
  TCase *invalid = tcase_create("invalid");
  tcase_add_test(invalid, rejects_bad_arguments);
  tcase_add_test(invalid, many_rejects_bad_arguments);
  suite_add_tcase(s, invalid);
  return tu_run_suite(s);
}
