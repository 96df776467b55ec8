/* test_gemm.c - retcl_gemm (C = alpha op(A) op(B) + beta C) in its three
 * cases against a double-precision product: sizes that are not multiples
 * of any tile, leading dimensions longer than the rows, offsets, beta 0
 * (C's poison must not reach the result) and not; retcl_linear through
 * each gemm.backend; and every rejected call, with C left as it was. The
 * access pattern is the device's, or RETCL_KERNEL_PATHS' (scripts/test.sh
 * runs both, and once more under an odd parameter record). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref_gemm.h"
#include "testutil.h"

typedef struct gemm_case {
  retcl_gemm_case op;
  size_t M, N, K;
  size_t pad_a, pad_b, pad_c; /* extra floats per row beyond its length */
  size_t off;                 /* offset of each operand in its buffer */
  float alpha, beta;
} gemm_case;

static const char *case_name(retcl_gemm_case op) {
  return op == RETCL_GEMM_NT ? "nt" : op == RETCL_GEMM_NN ? "nn" : "tn";
}

/* Every element within the bound of an fp32 dot product of length K in
 * any summation order (ref_gemm.h), plus γ(K+2) |β c0| for the beta term:
 * it cannot fail for a correct kernel, and a wrong or missing term is far
 * outside it. */
static void assert_gemm(const gemm_case *c, const float *a, size_t lda,
                        const float *b, size_t ldb, const float *c0,
                        const float *got, size_t ldc, const char *what) {
  double *ref = tu_alloc_d(c->M * c->N), *bound = tu_alloc_d(c->M * c->N);
  ref_gemm(c->op, c->M, c->N, c->K, a, lda, b, ldb, ref, bound);
  const double gamma = ref_gemm_gamma(c->K);
  for (size_t m = 0; m < c->M; ++m)
    for (size_t j = 0; j < c->N; ++j) {
      const double prev = c->beta != 0.0f ? c0[m * ldc + j] : 0.0;
      const double want = c->alpha * ref[m * c->N + j] + c->beta * prev;
      const double tol = fabs(c->alpha) * bound[m * c->N + j] +
                         gamma * fabs(c->beta * prev);
      const double err = fabs((double)got[m * ldc + j] - want);
      ck_assert_msg(err <= tol,
                    "%s %s M %zu N %zu K %zu: c[%zu,%zu] = %.9g, reference "
                    "%.9g, error %.3g > bound %.3g (seed %llu)",
                    what, case_name(c->op), c->M, c->N, c->K, m, j,
                    got[m * ldc + j], want, err, tol,
                    (unsigned long long)tu_seed());
    }
  free(ref);
  free(bound);
}

/* A buffer of off NaNs, then the n floats of host (or NaNs), in one
 * transfer (oclgrind reports values written at an offset by a second
 * transfer as uninitialised). */
static cl_mem upload_at(retcl_context *ctx, const float *host, size_t n,
                        size_t off) {
  float *tmp = tu_alloc(off + n);
  for (size_t i = 0; i < off + n; ++i) tmp[i] = NAN;
  if (host) memcpy(tmp + off, host, n * sizeof *tmp);
  cl_mem m = tu_upload(ctx, tmp, off + n);
  free(tmp);
  return m;
}

static void run_case(retcl_context *ctx, const gemm_case *c) {
  const size_t a_rows = c->op == RETCL_GEMM_TN ? c->K : c->M,
               a_cols = c->op == RETCL_GEMM_TN ? c->M : c->K,
               b_rows = c->op == RETCL_GEMM_NT ? c->N : c->K,
               b_cols = c->op == RETCL_GEMM_NT ? c->K : c->N;
  const size_t lda = a_cols + c->pad_a, ldb = b_cols + c->pad_b,
               ldc = c->N + c->pad_c;
  const size_t na = a_rows * lda, nb = b_rows * ldb, nc = c->M * ldc;
  float *a = tu_alloc(na), *b = tu_alloc(nb), *c0 = tu_alloc(nc),
        *got = tu_alloc(nc);
  tu_fill_uniform(a, na, -1, 1);
  tu_fill_uniform(b, nb, -1, 1);
  tu_fill_uniform(c0, nc, -1, 1);
  cl_mem ab = upload_at(ctx, a, na, c->off), bb = upload_at(ctx, b, nb, c->off),
         cb = upload_at(ctx, c->beta != 0.0f ? c0 : NULL, nc, c->off);
  cl_event done = NULL;
  tu_ok(ctx, retcl_gemm(ctx, c->op, c->M, c->N, c->K, c->alpha,
                        retcl_buf(ab, c->off), lda, retcl_buf(bb, c->off), ldb,
                        c->beta, retcl_buf(cb, c->off), ldc, 0, NULL, &done));
  ck_assert_int_eq(clWaitForEvents(1, &done), CL_SUCCESS);
  clReleaseEvent(done);
  tu_download(ctx, cb, c->off, got, nc);
  assert_gemm(c, a, lda, b, ldb, c0, got, ldc, "retcl_gemm");
  /* The padding between C's rows is not written. */
  for (size_t m = 0; m < c->M; ++m)
    for (size_t j = c->N; j < ldc; ++j)
      ck_assert_msg(c->beta != 0.0f ? got[m * ldc + j] == c0[m * ldc + j]
                                    : isnan(got[m * ldc + j]),
                    "%s: padding c[%zu,%zu] was written", case_name(c->op), m,
                    j);
  clReleaseMemObject(ab), clReleaseMemObject(bb), clReleaseMemObject(cb);
  free(a), free(b), free(c0), free(got);
}

/* Shapes: tiny, odd (primes: no tile, vector or block divides them), a
 * model-like one, K below and above a vector; leading dimensions with
 * padding and offsets. */
static const gemm_case shapes[] = {
    {RETCL_GEMM_NT, 1, 1, 1, 0, 0, 0, 0, 1.0f, 0.0f},
    {RETCL_GEMM_NT, 37, 53, 71, 0, 0, 0, 3, 1.0f, 0.0f},
    {RETCL_GEMM_NT, 67, 129, 200, 5, 3, 7, 0, 0.5f, -1.0f},
    {RETCL_GEMM_NT, 128, 96, 64, 0, 0, 0, 11, -2.0f, 0.0f},
    {RETCL_GEMM_NT, 5, 300, 3, 1, 0, 2, 1, 1.0f, 0.25f},
    /* gemm.pack_rows (256) rows and more: the packed panels on cpu. */
    {RETCL_GEMM_NT, 263, 45, 83, 2, 1, 3, 5, 1.0f, 0.5f},
};

static void run_op(retcl_gemm_case op) {
  retcl_context *ctx = tu_context();
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; ++i) {
    gemm_case c = shapes[i];
    c.op = op;
    run_case(ctx, &c);
  }
  retcl_context_destroy(ctx);
}

START_TEST(nt_x_wt) { run_op(RETCL_GEMM_NT); }
END_TEST

START_TEST(nn_dy_w) { run_op(RETCL_GEMM_NN); }
END_TEST

START_TEST(tn_dyt_x) { run_op(RETCL_GEMM_TN); }
END_TEST

/* The packed path with groups smaller than the product in every
 * dimension (so B is packed per group of k and columns, A per group of
 * rows, and later k groups add to C), panels that do not divide them, and
 * both vector widths. */
START_TEST(packed_groups) {
  static const char *const records[] = {
      "{\"gemm\": {\"access\": \"cpu\", \"pack_rows\": 1, \"mg\": 13, "
      "\"ng\": 21, \"kg\": 17, \"kc\": 5, \"mb\": 3, \"nv\": 1, "
      "\"vw\": 8, \"bm\": 7, \"bn\": 9}}",
      "{\"gemm\": {\"access\": \"cpu\", \"pack_rows\": 1, \"mg\": 40, "
      "\"ng\": 64, \"kg\": 48, \"mb\": 8, \"nv\": 2, \"vw\": 16, "
      "\"bm\": 16, \"bn\": 64}}"};
  for (size_t r = 0; r < sizeof records / sizeof records[0]; ++r) {
    retcl_context *ctx = NULL;
    tu_ok(NULL, tu_context_with_params(records[r], &ctx));
    for (int op = RETCL_GEMM_NT; op <= RETCL_GEMM_TN; ++op)
      for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; ++i) {
        gemm_case c = shapes[i];
        c.op = (retcl_gemm_case)op;
        run_case(ctx, &c);
      }
    retcl_context_destroy(ctx);
  }
}
END_TEST

/* retcl_linear beyond the streaming kernels' rows runs gemm.backend: the
 * same products through RetCL's GEMM and through CLBlast. */
START_TEST(linear_through_each_backend) {
  static const char *const records[] = {"{\"gemm\": {\"backend\": \"retcl\"}}",
                                        "{\"gemm\": {\"backend\": \"clblast\"}}"};
  enum { M = 45, N = 38, K = 70 };
  for (size_t r = 0; r < 2; ++r) {
    retcl_context *ctx = NULL;
    tu_ok(NULL, tu_context_with_params(records[r], &ctx));
    float *x = tu_alloc(M * K), *w = tu_alloc(N * K), *got = tu_alloc(M * N);
    tu_fill_uniform(x, M * K, -1, 1);
    tu_fill_uniform(w, N * K, -1, 1);
    cl_mem xb = tu_upload(ctx, x, M * K), wb = tu_upload(ctx, w, N * K),
           yb = tu_poisoned(ctx, M * N);
    tu_ok(ctx, retcl_linear(ctx, M, N, K, 0.75f, retcl_buf(xb, 0),
                            retcl_buf(wb, 0), 0.0f, retcl_buf(yb, 0), 0, NULL,
                            NULL));
    tu_download(ctx, yb, 0, got, M * N);
    const gemm_case c = {RETCL_GEMM_NT, M, N, K, 0, 0, 0, 0, 0.75f, 0.0f};
    assert_gemm(&c, x, K, w, K, NULL, got, N, records[r]);
    clReleaseMemObject(xb), clReleaseMemObject(wb), clReleaseMemObject(yb);
    free(x), free(w), free(got);
    retcl_context_destroy(ctx);
  }
}
END_TEST

/* Every rejected call: its status, a message naming the problem, and C
 * untouched (nothing enqueued). */
START_TEST(rejects_bad_arguments) {
  retcl_context *ctx = tu_context();
  enum { M = 4, N = 5, K = 6 };
  float ones[64];
  for (size_t i = 0; i < 64; ++i) ones[i] = 1.0f;
  cl_mem ab = tu_upload(ctx, ones, M * K), bb = tu_upload(ctx, ones, N * K),
         cb = tu_poisoned(ctx, M * N);
  const retcl_buffer a = retcl_buf(ab, 0), b = retcl_buf(bb, 0),
                     c = retcl_buf(cb, 0);
  static const struct {
    int op;
    size_t M, N, K, lda, ldb, ldc;
    float alpha;
    int which; /* 0 normal, 1 NULL a, 2 c = a, 3 a offset past its end */
    retcl_status status;
    const char *needle;
  } bad[] = {
      {7, M, N, K, K, K, N, 1, 0, RETCL_ERROR_INVALID_ARGUMENT, "op = 7"},
      {RETCL_GEMM_NT, 0, N, K, K, K, N, 1, 0, RETCL_ERROR_INVALID_SIZE, "M = 0"},
      {RETCL_GEMM_NT, M, 0, K, K, K, N, 1, 0, RETCL_ERROR_INVALID_SIZE, "N = 0"},
      {RETCL_GEMM_NT, M, N, 0, K, K, N, 1, 0, RETCL_ERROR_INVALID_SIZE, "K = 0"},
      {RETCL_GEMM_NT, M, N, K, K - 1, K, N, 1, 0, RETCL_ERROR_INVALID_SIZE,
       "lda = 5"},
      {RETCL_GEMM_NN, M, N, K, K, N - 1, N, 1, 0, RETCL_ERROR_INVALID_SIZE,
       "ldb = 4"},
      {RETCL_GEMM_NT, M, N, K, K, K, N - 1, 1, 0, RETCL_ERROR_INVALID_SIZE,
       "ldc = 4"},
      {RETCL_GEMM_NT, M, N, K, K + 1, K, N, 1, 0,
       RETCL_ERROR_BUFFER_TOO_SMALL, "a holds 24 floats"},
      {RETCL_GEMM_TN, M, N, K, M, N + 1, N, 1, 0, RETCL_ERROR_BUFFER_TOO_SMALL,
       "b holds 30 floats but"},
      {RETCL_GEMM_NT, M, N, K, K, K, N, NAN, 0, RETCL_ERROR_INVALID_ARGUMENT,
       "alpha = nan"},
      {RETCL_GEMM_NT, M, N, K, K, K, N, 1, 1, RETCL_ERROR_INVALID_ARGUMENT,
       "a is NULL"},
      {RETCL_GEMM_NT, M, N, K, K, K, N, 1, 2, RETCL_ERROR_INVALID_ARGUMENT,
       "c overlaps a"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    retcl_buffer aa = bad[i].which == 1 ? retcl_no_buf() : a;
    retcl_buffer cc = bad[i].which == 2 ? retcl_buf(ab, 0) : c;
    const retcl_status st =
        retcl_gemm(ctx, (retcl_gemm_case)bad[i].op, bad[i].M, bad[i].N,
                   bad[i].K, bad[i].alpha, aa, bad[i].lda, b, bad[i].ldb, 0.0f,
                   cc, bad[i].ldc, 0, NULL, NULL);
    ck_assert_msg(st == bad[i].status, "case %zu: status %d, expected %d (%s)",
                  i, (int)st, (int)bad[i].status, retcl_last_error(ctx));
    ck_assert_msg(strstr(retcl_last_error(ctx), bad[i].needle),
                  "case %zu: \"%s\" lacks \"%s\"", i, retcl_last_error(ctx),
                  bad[i].needle);
  }
  cl_event ev = NULL;
  tu_assert_status(ctx,
                   retcl_gemm(ctx, RETCL_GEMM_NT, M, N, K, 1, a, K, b, K, 0, c,
                              N, 1, NULL, &ev),
                   RETCL_ERROR_INVALID_ARGUMENT);
  float out[M * N];
  tu_download(ctx, cb, 0, out, M * N);
  for (size_t i = 0; i < M * N; ++i)
    ck_assert_msg(isnan(out[i]), "a rejected call wrote c[%zu]", i);
  clReleaseMemObject(ab), clReleaseMemObject(bb), clReleaseMemObject(cb);
  retcl_context_destroy(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("gemm");
  TCase *cases = tcase_create("cases");
  tcase_add_test(cases, nt_x_wt);
  tcase_add_test(cases, nn_dy_w);
  tcase_add_test(cases, tn_dyt_x);
  tcase_add_test(cases, packed_groups);
  tcase_add_test(cases, linear_through_each_backend);
  suite_add_tcase(s, cases);
  TCase *invalid = tcase_create("invalid");
  tcase_add_test(invalid, rejects_bad_arguments);
  suite_add_tcase(s, invalid);
  return tu_run_suite(s);
}
