/* test_linear.c - retcl_linear (y = alpha x wᵀ + beta y) against a
 * double-precision product, through both of its paths: the weight-streaming
 * kernels (up to 32 rows, beta = 0; CPU or GPU access pattern, the latter
 * when run with RETCL_KERNEL_PATHS=gpu) and CLBlast (more rows, or
 * beta != 0); then every rejected call, with y left as it was. */
#include <math.h>
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

  const double u = ldexp(1.0, -24), n = (double)(K + 2);
  const double gamma = n * u / (1.0 - n * u);
  for (size_t m = 0; m < M; ++m)
    for (size_t j = 0; j < N; ++j) {
      double dot = 0, mag = 0;
      for (size_t k = 0; k < K; ++k) {
        dot += (double)x[m * K + k] * w[j * K + k];
        mag += fabs((double)x[m * K + k] * w[j * K + k]);
      }
      const double y_prev = c->beta != 0.0f ? y0[m * N + j] : 0.0;
      const double ref = c->alpha * dot + c->beta * y_prev;
      const double bound =
          gamma * (fabs(c->alpha) * mag + fabs(c->beta * y_prev));
      const double err = fabs((double)got[m * N + j] - ref);
      ck_assert_msg(err <= bound,
                    "M %zu N %zu K %zu alpha %g beta %g: y[%zu,%zu] = %.9g, "
                    "reference %.9g, error %.3g > bound %.3g (seed %llu)",
                    M, N, K, c->alpha, c->beta, m, j, got[m * N + j], ref, err,
                    bound, (unsigned long long)tu_seed());
    }
  clReleaseMemObject(yb);
  clReleaseMemObject(wb);
  clReleaseMemObject(xb);
  retcl_context_destroy(ctx);
  free(x);
  free(w);
  free(y0);
  free(got);
}

/* Each row count the streaming kernels group by (1, 2, 4, 8; 3 and 5 pad
 * a group), K a multiple of every vector width and K not. */
START_TEST(few_rows_stream_w) {
  const lin_case cases[] = {{1, 64, 128, 1.0f, 0},  {2, 33, 37, 0.5f, 0},
                            {3, 17, 64, -2.0f, 0},  {5, 40, 100, 1.0f, 0},
                            {8, 96, 512, 0.125f, 0}, {1, 1, 1, 3.0f, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) run_case(&cases[i]);
}
END_TEST

/* More rows than one launch takes (groups of 8 rows, then a remainder),
 * up to the 32-row limit of the streaming path. */
START_TEST(rows_in_several_groups) {
  const lin_case cases[] = {{13, 50, 70, 1.0f, 0}, {32, 64, 256, 0.25f, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) run_case(&cases[i]);
}
END_TEST

/* CLBlast: beyond 32 rows, and whenever beta != 0 (also for one row). */
START_TEST(clblast_rows_and_beta) {
  const lin_case cases[] = {{33, 48, 64, 1.0f, 0},
                            {70, 31, 45, -0.5f, 0},
                            {1, 40, 64, 1.0f, 1.0f},
                            {9, 24, 30, 2.0f, -0.75f}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) run_case(&cases[i]);
}
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

int main(void) {
  Suite *s = suite_create("linear");
  /* Cases by path, so a checker can run one (CK_RUN_CASE=streaming). */
  TCase *streaming = tcase_create("streaming");
  tcase_add_test(streaming, few_rows_stream_w);
  tcase_add_test(streaming, rows_in_several_groups);
  suite_add_tcase(s, streaming);
  TCase *clblast = tcase_create("clblast");
  tcase_add_test(clblast, clblast_rows_and_beta);
  suite_add_tcase(s, clblast);
  TCase *invalid = tcase_create("invalid");
  tcase_add_test(invalid, rejects_bad_arguments);
  suite_add_tcase(s, invalid);
  return tu_run_suite(s);
}
