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

/* ---- packed path (cpu access, gemm.pack_rows rows and more) ---------------- */

static int packs(const retcl_context *ctx, size_t M) {
  return retcl__cpu_access(ctx, RETCL_P_GEMM_ACCESS) &&
         M >= (size_t)retcl__param(ctx, RETCL_P_GEMM_PACK_ROWS);
}

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }
static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* A group's panels: rows of op(A) rounded to gemm.mb, columns of op(B) to
 * gemm.nv x gemm.vw (the kernels pad them with zeros). */
typedef struct panel_sizes {
  size_t mb, nw, mg, ng, kg; /* panel rows, panel columns, group sizes */
} panel_sizes;

static panel_sizes panel_sizes_of(const retcl_context *ctx, size_t M, size_t N,
                                   size_t K) {
  panel_sizes p;
  p.mb = (size_t)retcl__param(ctx, RETCL_P_GEMM_MB);
  p.nw = (size_t)(retcl__param(ctx, RETCL_P_GEMM_NV) *
                  retcl__param(ctx, RETCL_P_GEMM_VW));
  p.mg = min_size(M, (size_t)retcl__param(ctx, RETCL_P_GEMM_MG));
  p.ng = min_size(N, (size_t)retcl__param(ctx, RETCL_P_GEMM_NG));
  p.kg = min_size(K, (size_t)retcl__param(ctx, RETCL_P_GEMM_KG));
  return p;
}

size_t retcl__gemm_workspace_floats(const retcl_context *ctx, size_t M,
                                    size_t N, size_t K) {
  if (!packs(ctx, M)) return 0;
  const panel_sizes p = panel_sizes_of(ctx, M, N, K);
  return (round_up(p.mg, p.mb) + round_up(p.ng, p.nw)) * p.kg;
}

retcl_status retcl__gemm_reserve(retcl_context *ctx, size_t M, size_t N,
                                 size_t K) {
  const size_t floats = retcl__gemm_workspace_floats(ctx, M, N, K);
  cl_mem unused;
  return floats ? retcl__workspace(ctx, RETCL_WORKSPACE_GEMM,
                                   floats * sizeof(float), &unused)
                : RETCL_SUCCESS;
}

/* Where op(A)(m, k) and op(B)(k, n) are stored, as an offset in floats. */
static size_t a_at(retcl_gemm_case op, size_t lda, size_t m, size_t k) {
  return op == RETCL_GEMM_TN ? k * lda + m : m * lda + k;
}
static size_t b_at(retcl_gemm_case op, size_t ldb, size_t k, size_t n) {
  return op == RETCL_GEMM_NT ? n * ldb + k : k * ldb + n;
}

/* One launch of the packed path; only the first launch of a product waits
 * for the caller's list (the queue is in order), only the last signals. */
typedef struct launch_chain {
  cl_uint num_wait;
  const cl_event *wait;
} launch_chain;

static retcl_status chain_launch(retcl_context *ctx, launch_chain *chain,
                                 retcl_kernel_id id, retcl_dtype wtype,
                                 const retcl_karg *args, size_t n,
                                 const retcl_grid *grid, cl_event *event) {
  retcl_status st = retcl__launch_typed(ctx, id, wtype, args, n, grid,
                                        chain->num_wait, chain->wait, event);
  chain->num_wait = 0;
  chain->wait = NULL;
  return st;
}

static retcl_status pack(retcl_context *ctx, launch_chain *chain,
                         retcl_kernel_id id, size_t extent, size_t depth,
                         int trans, retcl_buffer src, size_t src_at, size_t ld,
                         cl_mem ws, size_t ws_at, size_t panel) {
  const cl_uint extent_u = (cl_uint)extent, depth_u = (cl_uint)depth,
                trans_u = (cl_uint)trans, off = (cl_uint)(src.offset + src_at),
                ld_u = (cl_uint)ld, ws_off = (cl_uint)ws_at;
  const int is_a = id == RETCL_KERNEL_GEMM_PACK_A;
  const retcl_karg args[] = {
      RETCL_KARG(is_a ? "rows" : "cols", extent_u),
      RETCL_KARG("depth", depth_u),
      RETCL_KARG(is_a ? "a_trans" : "b_trans", trans_u),
      RETCL_KARG(is_a ? "A" : "B", src.mem),
      RETCL_KARG(is_a ? "a_off" : "b_off", off),
      RETCL_KARG(is_a ? "lda" : "ldb", ld_u),
      RETCL_KARG(is_a ? "Ap" : "Bp", ws),
      RETCL_KARG(is_a ? "ap_off" : "bp_off", ws_off)};
  const retcl_grid grid = retcl__grid(1, 1, (extent + panel - 1) / panel, 1, 1);
  /* pack_b widens a 16-bit B (a weight) into fp32 panels; pack_a's A is
   * always fp32. */
  return chain_launch(ctx, chain, id, is_a ? RETCL_DTYPE_F32 : src.type, args,
                      RETCL_NARGS(args), &grid, NULL);
}

/* C = alpha op(A) op(B) + beta C in groups of mg x ng x kg: for each group
 * of k and columns, op(B)'s group is packed once and each group of rows of
 * op(A) is packed and multiplied; groups after the first k add to C. */
static retcl_status gemm_packed(retcl_context *ctx, retcl_gemm_case op,
                                size_t M, size_t N, size_t K, float alpha,
                                retcl_buffer A, size_t lda, retcl_buffer B,
                                size_t ldb, float beta, retcl_buffer C,
                                size_t ldc, cl_uint num_wait,
                                const cl_event *wait, cl_event *event) {
  const panel_sizes p = panel_sizes_of(ctx, M, N, K);
  cl_mem ws;
  retcl_status st = retcl__workspace(
      ctx, RETCL_WORKSPACE_GEMM,
      retcl__gemm_workspace_floats(ctx, M, N, K) * sizeof(float), &ws);
  if (st) return st;
  const size_t bp_at = 0, ap_at = round_up(p.ng, p.nw) * p.kg;
  const size_t bm = (size_t)retcl__param(ctx, RETCL_P_GEMM_BM),
               bn = (size_t)retcl__param(ctx, RETCL_P_GEMM_BN);
  /* Whole panels per work-item, as the kernel rounds them. */
  const size_t item_rows = (bm + p.mb - 1) / p.mb * p.mb,
               item_cols = (bn + p.nw - 1) / p.nw * p.nw;
  launch_chain chain = {num_wait, wait};
  for (size_t k0 = 0; k0 < K; k0 += p.kg) {
    const size_t kn = min_size(p.kg, K - k0);
    const float group_beta = k0 == 0 ? beta : 1.0f;
    for (size_t n0 = 0; n0 < N; n0 += p.ng) {
      const size_t nn = min_size(p.ng, N - n0);
      if ((st = pack(ctx, &chain, RETCL_KERNEL_GEMM_PACK_B, nn, kn,
                     op == RETCL_GEMM_NT, B, b_at(op, ldb, k0, n0), ldb, ws,
                     bp_at, p.nw)))
        return st;
      for (size_t m0 = 0; m0 < M; m0 += p.mg) {
        const size_t mn = min_size(p.mg, M - m0);
        if ((st = pack(ctx, &chain, RETCL_KERNEL_GEMM_PACK_A, mn, kn,
                       op == RETCL_GEMM_TN, A, a_at(op, lda, m0, k0), lda, ws,
                       ap_at, p.mb)))
          return st;
        const int last = k0 + kn == K && n0 + nn == N && m0 + mn == M;
        const cl_uint mn_u = (cl_uint)mn, nn_u = (cl_uint)nn, kn_u = (cl_uint)kn,
                      ap_u = (cl_uint)ap_at, bp_u = (cl_uint)bp_at,
                      c_u = (cl_uint)(C.offset + m0 * ldc + n0),
                      ldc_u = (cl_uint)ldc;
        const retcl_karg args[] = {
            RETCL_KARG("M", mn_u),     RETCL_KARG("N", nn_u),
            RETCL_KARG("K", kn_u),     RETCL_KARG("alpha", alpha),
            RETCL_KARG("Ap", ws),      RETCL_KARG("ap_off", ap_u),
            RETCL_KARG("Bp", ws),      RETCL_KARG("bp_off", bp_u),
            RETCL_KARG("beta", group_beta), RETCL_KARG("C", C.mem),
            RETCL_KARG("c_off", c_u),  RETCL_KARG("ldc", ldc_u)};
        const retcl_grid grid =
            retcl__grid(1, 2, (nn + item_cols - 1) / item_cols,
                        (mn + item_rows - 1) / item_rows, 1);
        if ((st = chain_launch(ctx, &chain, RETCL_KERNEL_GEMM_PANELS,
                               RETCL_DTYPE_F32, args, RETCL_NARGS(args), &grid,
                               last ? event : NULL)))
          return st;
      }
    }
  }
  return RETCL_SUCCESS;
}

/* ---- unpacked kernels -------------------------------------------------------- */

retcl_status retcl__gemm_enqueue(retcl_context *ctx, retcl_gemm_case op,
                                 size_t M, size_t N, size_t K, float alpha,
                                 retcl_buffer A, size_t lda, retcl_buffer B,
                                 size_t ldb, float beta, retcl_buffer C,
                                 size_t ldc, cl_uint num_wait,
                                 const cl_event *wait, cl_event *event) {
  if (packs(ctx, M))
    return gemm_packed(ctx, op, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                       num_wait, wait, event);
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
  /* A 16-bit B (a weight, nt only) runs the variant of its type. */
  return retcl__launch_typed(ctx, kernel_of[op], B.type, args,
                             RETCL_NARGS(args), &grid, num_wait, wait, event);
}

/* One operand: `rows` rows of `cols` floats, `ld` apart. */
static retcl_status check_matrix(retcl_context *ctx, const char *name,
                                 retcl_buffer buf, size_t rows, size_t cols,
                                 size_t ld, const char *ld_name, int weight) {
  if (ld < cols)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: %s = %zu is shorter than a row of %s (%zu floats)",
                       OP, ld_name, ld, name, cols);
  const size_t elems = retcl__mul(rows - 1, ld) + cols;
  return weight ? retcl__check_weight(ctx, OP, name, buf, elems)
                : retcl__check_buffer(ctx, OP, name, buf, elems);
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
  /* b may be a 16-bit weight in the nt case (x Wᵀ) only. */
  if ((st = check_matrix(ctx, "a", a, a_rows, a_cols, lda, "lda", 0)) ||
      (st = check_matrix(ctx, "b", b, b_rows, b_cols, ldb, "ldb",
                         op == RETCL_GEMM_NT)) ||
      (st = check_matrix(ctx, "c", c, M, N, ldc, "ldc", 0)) ||
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
  if ((st = retcl__prepare_typed(ctx, RETCL_FAMILY_BIT(RETCL_FAMILY_GEMM),
                                 b.type)) ||
      (st = retcl__gemm_reserve(ctx, M, N, K)))
    return st;
  return retcl__gemm_enqueue(ctx, op, M, N, K, alpha, a, lda, b, ldb, beta, c,
                             ldc, num_events_in_wait_list, event_wait_list,
                             event);
}
