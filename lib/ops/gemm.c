/* gemm.c - retcl_gemm: checks and launch of RetCL's GEMM kernels
 * (cl/gemm.cl): C = alpha op(A) op(B) + beta C for the nt, nn and tn cases,
 * with the work cut as the gemm record says (docs/design.md §3). */
#include "ops/gemm.h"

#include "runtime/context.h"
#include "runtime/launch.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <math.h>
#include <stdio.h>

static const char *OP = "retcl_gemm";

static const retcl_kernel_id kernel_of[3] = {
    [RETCL_GEMM_NT] = RETCL_KERNEL_GEMM_NT,
    [RETCL_GEMM_NN] = RETCL_KERNEL_GEMM_NN,
    [RETCL_GEMM_TN] = RETCL_KERNEL_GEMM_TN};

retcl_status retcl__gemm_enqueue(retcl_context *ctx, retcl_gemm_case op,
                                 size_t M, size_t N, size_t K, float alpha,
                                 retcl_buffer A, size_t lda, retcl_buffer B,
                                 size_t ldb, float beta, retcl_buffer C,
                                 size_t ldc, cl_uint num_wait,
                                 const cl_event *wait, cl_event *event) {
  const cl_uint Mu = (cl_uint)M, Nu = (cl_uint)N, Ku = (cl_uint)K,
                a_off = (cl_uint)A.offset, b_off = (cl_uint)B.offset,
                c_off = (cl_uint)C.offset, ldau = (cl_uint)lda,
                ldbu = (cl_uint)ldb, ldcu = (cl_uint)ldc;
  const retcl_karg args[] = {
      RETCL_KARG("M", Mu),         RETCL_KARG("N", Nu),
      RETCL_KARG("K", Ku),         RETCL_KARG("alpha", alpha),
      RETCL_KARG("A", A.mem),      RETCL_KARG("a_off", a_off),
      RETCL_KARG("lda", ldau),     RETCL_KARG("B", B.mem),
      RETCL_KARG("b_off", b_off),  RETCL_KARG("ldb", ldbu),
      RETCL_KARG("beta", beta),    RETCL_KARG("C", C.mem),
      RETCL_KARG("c_off", c_off),  RETCL_KARG("ldc", ldcu)};
  retcl_grid grid;
  if (retcl__cpu_access(ctx, RETCL_P_GEMM_ACCESS)) {
    /* A block of bm x bn outputs per work-item, one item per group. */
    const size_t bm = (size_t)retcl__param(ctx, RETCL_P_GEMM_BM),
                 bn = (size_t)retcl__param(ctx, RETCL_P_GEMM_BN);
    grid = retcl__grid(1, 2, (N + bn - 1) / bn, (M + bm - 1) / bm, 1);
  } else {
    /* A tile of (wg wpt)^2 outputs per group of wg x wg items. */
    const size_t wg = (size_t)retcl__param(ctx, RETCL_P_GEMM_WG),
                 tile = wg * (size_t)retcl__param(ctx, RETCL_P_GEMM_WPT);
    grid = (retcl_grid){2,
                        {(N + tile - 1) / tile * wg, (M + tile - 1) / tile * wg, 1},
                        {wg, wg, 1}};
  }
  return retcl__launch(ctx, kernel_of[op], args, RETCL_NARGS(args), &grid,
                       num_wait, wait, event);
}

/* One operand: `rows` rows of `cols` floats, `ld` apart. */
static retcl_status check_matrix(retcl_context *ctx, const char *name,
                                 retcl_buffer buf, size_t rows, size_t cols,
                                 size_t ld, const char *ld_name) {
  if (ld < cols)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: %s = %zu is shorter than a row of %s (%zu floats)",
                       OP, ld_name, ld, name, cols);
  return retcl__check_buffer(ctx, OP, name, buf,
                             retcl__mul(rows - 1, ld) + cols);
}

retcl_status retcl_gemm(retcl_context *ctx, retcl_gemm_case op, size_t M,
                        size_t N, size_t K, float alpha, retcl_buffer a,
                        size_t lda, retcl_buffer b, size_t ldb, float beta,
                        retcl_buffer c, size_t ldc,
                        cl_uint num_events_in_wait_list,
                        const cl_event *event_wait_list, cl_event *event) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if (op != RETCL_GEMM_NT && op != RETCL_GEMM_NN && op != RETCL_GEMM_TN)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: op = %d is not a retcl_gemm_case", OP, (int)op);
  if ((st = retcl__check_dim(ctx, OP, "M", M, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP, "N", N, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP, "K", K, 1, RETCL_MAX_INDEX)))
    return st;
  if (!isfinite(alpha) || !isfinite(beta))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: %s = %g is not finite", OP,
                       !isfinite(alpha) ? "alpha" : "beta",
                       (double)(!isfinite(alpha) ? alpha : beta));
  /* As stored: A is [M,K] (nt, nn) or [K,M] (tn); B is [N,K] (nt) or
   * [K,N]; C is [M,N]. */
  const size_t a_rows = op == RETCL_GEMM_TN ? K : M,
               a_cols = op == RETCL_GEMM_TN ? M : K,
               b_rows = op == RETCL_GEMM_NT ? N : K,
               b_cols = op == RETCL_GEMM_NT ? K : N;
  if ((st = check_matrix(ctx, "a", a, a_rows, a_cols, lda, "lda")) ||
      (st = check_matrix(ctx, "b", b, b_rows, b_cols, ldb, "ldb")) ||
      (st = check_matrix(ctx, "c", c, M, N, ldc, "ldc")) ||
      (st = retcl__check_wait_list(ctx, OP, num_events_in_wait_list,
                                   event_wait_list)))
    return st;
  const size_t a_span = (a_rows - 1) * lda + a_cols,
               b_span = (b_rows - 1) * ldb + b_cols,
               c_span = (M - 1) * ldc + N;
  if (retcl__overlaps(c, c_span, a, a_span) ||
      retcl__overlaps(c, c_span, b, b_span))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: c overlaps %s",
                       OP, retcl__overlaps(c, c_span, a, a_span) ? "a" : "b");
  if ((st = retcl__prepare(ctx, RETCL_FAMILY_BIT(RETCL_FAMILY_GEMM))))
    return st;
  return retcl__gemm_enqueue(ctx, op, M, N, K, alpha, a, lda, b, ldb, beta, c,
                             ldc, num_events_in_wait_list, event_wait_list,
                             event);
}
