/* test_clblast_params.c - the clblast family of the parameter record
 * (docs/design.md §3): full sets of CLBlast's Xgemm and XgemmDirect
 * parameters run retcl_linear through CLBlast and match the double
 * reference; two contexts on one device with different sets; a partial
 * set fails context creation naming the missing keys; a full set CLBlast's
 * kernels cannot run fails the call before anything is enqueued, leaving
 * the output as it was.
 *
 * The sets use work-groups of 16 items and a few KiB of local memory, so
 * they are valid on every OpenCL device and under scripts/ci_limits.sh's
 * caps. Each distinct set costs one CLBlast compile (15-20 s on PoCL with
 * a cold kernel cache). */
#define _POSIX_C_SOURCE 200809L /* unsetenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref_gemm.h"
#include "testutil.h"

/* CLBlast's Xgemm: 16 x 16 tiles of C per group of 4 x 4 items, k tiles of
 * 8 in local memory, vectors of 2. */
#define XGEMM_SET                                                           \
  "\"gemmk\": 0, \"kreg\": 1, \"kwg\": 8, \"kwi\": 2, \"mdima\": 4, "       \
  "\"mdimc\": 4, \"mwg\": 16, \"ndimb\": 4, \"ndimc\": 4, \"nwg\": 16, "    \
  "\"sa\": 1, \"sb\": 1, \"strm\": 0, \"strn\": 0, \"vwm\": 2, \"vwn\": 2"
/* The same with other tiles: 32 x 16 per group, no local memory. */
#define XGEMM_SET_2                                                         \
  "\"gemmk\": 0, \"kreg\": 1, \"kwg\": 16, \"kwi\": 2, \"mdima\": 4, "      \
  "\"mdimc\": 4, \"mwg\": 32, \"ndimb\": 4, \"ndimc\": 4, \"nwg\": 16, "    \
  "\"sa\": 0, \"sb\": 0, \"strm\": 1, \"strn\": 0, \"vwm\": 4, \"vwn\": 1"
/* CLBlast's XgemmDirect: 8 x 8 x 8 tiles per group of 4 x 4 items. */
#define DIRECT_SET                                                          \
  "\"direct_kwid\": 2, \"direct_mdimad\": 4, \"direct_mdimcd\": 4, "        \
  "\"direct_ndimbd\": 4, \"direct_ndimcd\": 4, \"direct_pada\": 1, "        \
  "\"direct_padb\": 1, \"direct_vwmd\": 2, \"direct_vwnd\": 2, "            \
  "\"direct_wgd\": 8"
/* CLBlast's GEMM for more than 4 rows; products with m n k below 40^3 run
 * XgemmDirect, the others Xgemm. */
#define ROUTE                                                               \
  "\"gemm\": {\"backend\": \"clblast\"}, \"linear\": {\"row_limit\": 4}"

static retcl_param_info param(const retcl_context *ctx, const char *family,
                              const char *key) {
  for (size_t i = 0; i < retcl_param_count(); ++i) {
    retcl_param_info p;
    ck_assert_int_eq(retcl_param_get(ctx, i, &p), RETCL_SUCCESS);
    if (!strcmp(p.family, family) && !strcmp(p.key, key)) return p;
  }
  ck_abort_msg("no parameter %s.%s", family, key);
  retcl_param_info none = {0};
  return none;
}

/* y = alpha x wᵀ (+ beta y0) through retcl_linear on ctx, every element
 * within the fp32 dot-product bound of ref_gemm.h (the bound test_linear
 * and test_gemm assert). */
static void check_linear(retcl_context *ctx, size_t M, size_t N, size_t K,
                         float alpha, float beta, const char *what) {
  float *x = tu_alloc(M * K), *w = tu_alloc(N * K), *y0 = tu_alloc(M * N),
        *got = tu_alloc(M * N);
  tu_fill_uniform(x, M * K, -1, 1);
  tu_fill_uniform(w, N * K, -1, 1);
  tu_fill_uniform(y0, M * N, -1, 1);
  cl_mem xb = tu_upload(ctx, x, M * K), wb = tu_upload(ctx, w, N * K),
         yb = beta != 0.0f ? tu_upload(ctx, y0, M * N) : tu_poisoned(ctx, M * N);
  tu_ok(ctx, retcl_linear(ctx, M, N, K, alpha, retcl_buf(xb, 0),
                          retcl_buf(wb, 0), beta, retcl_buf(yb, 0), 0, NULL,
                          NULL));
  tu_download(ctx, yb, 0, got, M * N);
  double *ref = tu_alloc_d(M * N), *bound = tu_alloc_d(M * N);
  ref_gemm(RETCL_GEMM_NT, M, N, K, x, K, w, K, ref, bound);
  const double gamma = ref_gemm_gamma(K);
  for (size_t i = 0; i < M * N; ++i) {
    const double prev = beta != 0.0f ? y0[i] : 0.0;
    const double want = alpha * ref[i] + beta * prev;
    const double tol = fabs(alpha) * bound[i] + gamma * fabs(beta * prev);
    ck_assert_msg(fabs((double)got[i] - want) <= tol,
                  "%s M %zu N %zu K %zu: y[%zu] = %.9g, reference %.9g, "
                  "bound %.3g (seed %llu)",
                  what, M, N, K, i, got[i], want, tol,
                  (unsigned long long)tu_seed());
  }
  clReleaseMemObject(xb), clReleaseMemObject(wb), clReleaseMemObject(yb);
  free(x), free(w), free(y0), free(got), free(ref), free(bound);
}

/* Both CLBlast kernels with the record's sets, one context: a product above
 * the threshold (45 x 38 x 70 > 40^3: Xgemm, through CLBlast's padding and
 * transposing kernels), one below (21 x 30 x 50 < 40^3: XgemmDirect), with
 * beta 0 and not. */
START_TEST(full_sets_run_through_clblast) {
  retcl_context *ctx = NULL;
  tu_ok(NULL, tu_context_with_params(
                  "{" ROUTE ", \"clblast\": {" XGEMM_SET ", " DIRECT_SET
                  ", \"xgemm_min_indirect_size\": 40}}",
                  &ctx));
  const retcl_param_info mwg = param(ctx, "clblast", "mwg");
  ck_assert_int_eq(mwg.value, 16);
  ck_assert_str_eq(mwg.source, "RETCL_PARAMS");
  ck_assert_int_eq(param(ctx, "clblast", "direct_wgd").value, 8);
  ck_assert_int_eq(param(ctx, "clblast", "xgemm_min_indirect_size").value, 40);
  check_linear(ctx, 45, 38, 70, 0.75f, 0.0f, "Xgemm set");
  check_linear(ctx, 45, 38, 70, -1.5f, 0.5f, "Xgemm set, beta 0.5");
  check_linear(ctx, 21, 30, 50, 1.25f, 0.0f, "XgemmDirect set");
  check_linear(ctx, 21, 30, 50, 1.0f, -2.0f, "XgemmDirect set, beta -2");
  tu_ok(ctx, retcl_context_prepare(ctx));
  retcl_context_destroy(ctx);
}
END_TEST

/* Two contexts on one device with different Xgemm sets, used in turn: each
 * hands its set to CLBlast again when the other has replaced it (CLBlast
 * keeps one per device), and every product is right. The built-in record's
 * default (-1 everywhere: CLBlast's database) sets nothing. */
START_TEST(two_contexts_with_different_sets) {
  retcl_context *a = NULL, *b = NULL;
  tu_ok(NULL, tu_context_with_params(
                  "{" ROUTE ", \"clblast\": {" XGEMM_SET
                  ", \"xgemm_min_indirect_size\": 0}}",
                  &a));
  tu_ok(NULL, tu_context_with_params(
                  "{" ROUTE ", \"clblast\": {" XGEMM_SET_2
                  ", \"xgemm_min_indirect_size\": 0}}",
                  &b));
  retcl_context *plain = tu_context();
  const retcl_param_info d = param(plain, "clblast", "mwg");
  ck_assert_int_eq(d.value, -1);
  ck_assert_str_eq(d.source, "built-in");
  check_linear(a, 37, 29, 41, 1.0f, 0.0f, "context a");
  check_linear(b, 37, 29, 41, 1.0f, 0.0f, "context b");
  check_linear(a, 40, 17, 33, -0.5f, 1.0f, "context a again");
  check_linear(b, 40, 17, 33, 2.0f, 0.0f, "context b again");
  retcl_context_destroy(plain);
  retcl_context_destroy(b);
  retcl_context_destroy(a);
}
END_TEST

/* A set CLBlast would take only as a whole, given in part, fails context
 * creation with a message naming what is missing; so do sizes of 0 and
 * values outside a key's range. */
START_TEST(partial_set_fails_creation_naming_missing_keys) {
  static const struct {
    const char *json, *needle[3];
  } cases[] = {
      {"{\"clblast\": {\"mwg\": 64, \"nwg\": 64}}",
       {"sets 2 of the 16 parameters of CLBlast's Xgemm",
        "missing clblast.gemmk, clblast.kreg, clblast.kwg",
        "clblast.vwm, clblast.vwn"}},
      {"{\"clblast\": {" XGEMM_SET ", \"direct_wgd\": 8}}",
       {"CLBlast's XgemmDirect", "missing clblast.direct_kwid",
        "clblast.direct_vwnd."}},
      {"{\"clblast\": {\"gemmk\": 0, \"kreg\": 1, \"kwg\": 8, \"kwi\": 2,"
       " \"mdima\": 4, \"mdimc\": 4, \"mwg\": 16, \"ndimb\": 4,"
       " \"ndimc\": 4, \"nwg\": 16, \"sa\": 1, \"sb\": 1, \"strm\": 0,"
       " \"vwm\": 2, \"vwn\": 2}}",
       {"sets 15 of the 16", "missing clblast.strn.", NULL}},
      {"{\"clblast\": {" XGEMM_SET ", \"kwi\": 0}}",
       {"clblast.kwi = 0", "at least 1", NULL}},
      {"{\"clblast\": {\"vwm\": 32}}",
       {"clblast.vwm = 32 is outside [-1, 16]", NULL, NULL}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    retcl_context *ctx = NULL;
    const retcl_status st = tu_context_with_params(cases[i].json, &ctx);
    ck_assert_msg(st == RETCL_ERROR_FORMAT && !ctx,
                  "case %zu: status %d (%s), context %p", i, (int)st,
                  retcl_last_error(NULL), (void *)ctx);
    for (size_t n = 0; n < 3 && cases[i].needle[n]; ++n)
      ck_assert_msg(strstr(retcl_last_error(NULL), cases[i].needle[n]),
                    "case %zu: \"%s\" lacks \"%s\"", i, retcl_last_error(NULL),
                    cases[i].needle[n]);
  }
}
END_TEST

/* Full sets that CLBlast's kernels cannot run (CLBlast itself compiles
 * them and, for tiles that do not divide, computes wrong results without
 * an error): the context is made, the call fails with
 * RETCL_ERROR_BUILD_FAILED and a message naming the keys before anything
 * is enqueued, and the output keeps its poison. */
START_TEST(invalid_set_fails_before_enqueue) {
#define XGEMM_WITH(mwg, mdimc, vwm, kwg, sa, gemmk)                          \
  "{" ROUTE ", \"clblast\": {\"gemmk\": " #gemmk ", \"kreg\": 1, "          \
  "\"kwg\": " #kwg ", \"kwi\": 2, \"mdima\": " #mdimc ", \"mdimc\": "       \
  #mdimc ", \"mwg\": " #mwg ", \"ndimb\": 4, \"ndimc\": 4, \"nwg\": 16, "   \
  "\"sa\": " #sa ", \"sb\": " #sa ", \"strm\": 0, \"strn\": 0, \"vwm\": "   \
  #vwm ", \"vwn\": 2}}"
  static const struct {
    const char *json, *needle;
  } cases[] = {
      /* MWG = 24 is not a multiple of MDIMC · VWM = 16. */
      {XGEMM_WITH(24, 4, 4, 8, 1, 0),
       "clblast.mwg = 24 is not a multiple of clblast.mdimc x clblast.vwm = "
       "16"},
      /* KWG = 6 is not a multiple of KDIMA = MDIMC · NDIMC / MDIMA = 4. */
      {XGEMM_WITH(16, 4, 2, 6, 1, 0),
       "clblast.kwg = 6 is not a multiple of clblast.mdimc x clblast.ndimc / "
       "clblast.mdima = 4"},
      {XGEMM_WITH(24, 4, 3, 8, 1, 0), "clblast.vwm = 3 is not an OpenCL vector"},
      /* 1024 x 1024 work-items per group: more than any device allows. */
      {"{" ROUTE ", \"clblast\": {\"gemmk\": 0, \"kreg\": 1, \"kwg\": 1024,"
       " \"kwi\": 2, \"mdima\": 1024, \"mdimc\": 1024, \"mwg\": 2048,"
       " \"ndimb\": 1024, \"ndimc\": 1024, \"nwg\": 2048, \"sa\": 0,"
       " \"sb\": 0, \"strm\": 0, \"strn\": 0, \"vwm\": 2, \"vwn\": 2}}",
       "clblast.mdimc x clblast.ndimc = 1048576 work-items per group, more "
       "than"},
      /* 16 MiB of local memory per group (a k tile of 1024 by 4096 rows). */
      {XGEMM_WITH(4096, 4, 2, 1024, 1, 0), "bytes of local memory, more than"},
      /* CLBlast's register kernel, refused (lib/runtime/clblast.c). */
      {XGEMM_WITH(16, 4, 2, 8, 0, 1), "clblast.gemmk = 1 is not accepted"},
      {"{" ROUTE ", \"clblast\": {" XGEMM_SET ", \"direct_kwid\": 2, "
       "\"direct_mdimad\": 4, \"direct_mdimcd\": 4, \"direct_ndimbd\": 4, "
       "\"direct_ndimcd\": 4, \"direct_pada\": 1, \"direct_padb\": 1, "
       "\"direct_vwmd\": 2, \"direct_vwnd\": 2, \"direct_wgd\": 12}}",
       "clblast.direct_wgd = 12 is not a multiple of clblast.direct_mdimcd x "
       "clblast.direct_vwmd = 8"},
  };
#undef XGEMM_WITH
  enum { M = 9, N = 12, K = 16 };
  float x[M * K], w[N * K], got[M * N];
  tu_fill_uniform(x, M * K, -1, 1);
  tu_fill_uniform(w, N * K, -1, 1);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    retcl_context *ctx = NULL;
    tu_ok(NULL, tu_context_with_params(cases[i].json, &ctx));
    cl_mem xb = tu_upload(ctx, x, M * K), wb = tu_upload(ctx, w, N * K),
           yb = tu_poisoned(ctx, M * N);
    const retcl_status st =
        retcl_linear(ctx, M, N, K, 1.0f, retcl_buf(xb, 0), retcl_buf(wb, 0),
                     0.0f, retcl_buf(yb, 0), 0, NULL, NULL);
    ck_assert_msg(st == RETCL_ERROR_BUILD_FAILED,
                  "case %zu: status %d, expected RETCL_ERROR_BUILD_FAILED (%s)",
                  i, (int)st, retcl_last_error(ctx));
    ck_assert_msg(strstr(retcl_last_error(ctx), cases[i].needle),
                  "case %zu: \"%s\" lacks \"%s\"", i, retcl_last_error(ctx),
                  cases[i].needle);
    tu_download(ctx, yb, 0, got, M * N);
    for (size_t j = 0; j < M * N; ++j)
      ck_assert_msg(isnan(got[j]), "case %zu: a failed call wrote y[%zu]", i,
                    j);
    /* retcl_context_prepare finds it too, and it stays an error. */
    tu_assert_status(ctx, retcl_context_prepare(ctx), RETCL_ERROR_BUILD_FAILED);
    clReleaseMemObject(xb), clReleaseMemObject(wb), clReleaseMemObject(yb);
    retcl_context_destroy(ctx);
  }
}
END_TEST

int main(void) {
  /* These tests set the record themselves (tu_context_with_params): a
   * record from the environment would change what they see. */
  unsetenv("RETCL_PARAMS");
  Suite *s = suite_create("clblast_params");
  TCase *record = tcase_create("record");
  tcase_add_test(record, partial_set_fails_creation_naming_missing_keys);
  tcase_add_test(record, invalid_set_fails_before_enqueue);
  suite_add_tcase(s, record);
  TCase *runs = tcase_create("runs");
  tcase_add_test(runs, full_sets_run_through_clblast);
  tcase_add_test(runs, two_contexts_with_different_sets);
  suite_add_tcase(s, runs);
  return tu_run_suite(s);
}
