/* linear.c - the dense projections y = alpha x Wᵀ + beta y: retcl_linear
 * and retcl_linear_many with the checks and event handling every public op
 * has, and their enqueue steps: CLBlast's SGEMM, or for the few-row
 * products of decoding RetCL's weight-streaming kernels (cl/linear.cl),
 * since a GEMM tiled for large M reads the weights far below bandwidth.
 * Which one runs is the record's linear.row_limit, and for more rows its
 * gemm.backend: CLBlast (runtime/clblast.c, with the record's clblast
 * parameters) or RetCL's GEMM (gemm.c). */
#include "ops/linear.h"

#include "ops/gemm.h"

#include "runtime/clblast.h"
#include "runtime/context.h"
#include "runtime/events.h"
#include "runtime/launch.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <math.h>
#include <stdio.h>

/* Rows per launch of the GPU kernels at most (they exist for 1, 2, 4 and
 * 8 rows); more rows run in groups of this many. The CPU kernels exist for
 * 1, 2 and 4 rows, and the 4-row one takes any number of rows in one
 * launch (groups of 4 over each W row while it is in cache). */
#define GROUPED_MAX_ROWS 8

/* The kernel for M rows: on CPUs the 1-, 2- or 4-row kernel (M > 4: the
 * 4-row one), on GPUs the smallest of 1, 2, 4 and 8 rows with at least M
 * (M <= GROUPED_MAX_ROWS). */
_Static_assert(RETCL_KERNEL_LINEAR_SKINNY_4 == RETCL_KERNEL_LINEAR_SKINNY_1 + 2 &&
                   RETCL_KERNEL_LINEAR_GROUPED_8 ==
                       RETCL_KERNEL_LINEAR_GROUPED_1 + 3,
               "the linear kernels of 1, 2, 4 (, 8) rows are consecutive ids");
static retcl_kernel_id rows_kernel(int cpu, size_t M) {
  const size_t i = M == 1 ? 0 : M == 2 ? 1 : M <= 4 || cpu ? 2 : 3;
  return (retcl_kernel_id)((cpu ? RETCL_KERNEL_LINEAR_SKINNY_1
                                : RETCL_KERNEL_LINEAR_GROUPED_1) + i);
}

/* The GPU kernels' work-group size: the largest power of two within
 * linear.wg (their local arrays' size, RETCL_LINEAR_WG in cl/linear.cl)
 * and what the device and kernel allow. */
static size_t grouped_size(const retcl_context *ctx, retcl_kernel_id id) {
  const size_t limit = retcl__group_limit(ctx, id),
               wg_max = (size_t)retcl__param(ctx, RETCL_P_LINEAR_WG);
  size_t wg = 1;
  while (wg * 2 <= wg_max && wg * 2 <= limit) wg *= 2;
  return wg;
}

/* One launch for rows [0, M) of X (GPUs: M <= GROUPED_MAX_ROWS), and `blocks`
 * stacked projections (cl/linear.cl): W holds blocks x nb rows, block b's
 * outputs are the rows of nb floats at Y + b * bstride, scaled by alpha[b].
 * CPUs: each work-item walks a few dozen contiguous W rows (enough items to
 * share the work between cores), one item per work-group so that PoCL
 * spreads them over its threads (left to itself it packs them into one
 * group: half the speed on 2 cores). GPUs: a work-group per W row, its
 * items reading the row side by side. */
static retcl_status skinny(retcl_context *ctx, size_t M, size_t blocks,
                           size_t nb, size_t K, const float *alpha,
                           retcl_buffer X, retcl_buffer W, retcl_buffer Y,
                           size_t bstride) {
  const int cpu = retcl__cpu_access(ctx, RETCL_P_LINEAR_ACCESS);
  const retcl_kernel_id id = rows_kernel(cpu, M);
  const size_t N = blocks * nb;
  const cl_uint x_off = (cl_uint)X.offset, w_off = (cl_uint)W.offset,
                y_off = (cl_uint)Y.offset, Mu = (cl_uint)M, Nu = (cl_uint)N,
                Ku = (cl_uint)K, nbu = (cl_uint)nb, bs = (cl_uint)bstride;
  cl_float4 a = {{0}};
  for (size_t b = 0; b < blocks; ++b) a.s[b] = alpha[b];
  const size_t items = (size_t)retcl__param(ctx, RETCL_P_LINEAR_ITEMS_PER_UNIT) *
                       ctx->limits.compute_units;
  const cl_uint per = (cl_uint)((N + items - 1) / items);
  const retcl_karg args[] = {
      RETCL_KARG("X", X.mem),   RETCL_KARG("x_off", x_off),
      RETCL_KARG("W", W.mem),   RETCL_KARG("w_off", w_off),
      RETCL_KARG("Y", Y.mem),   RETCL_KARG("y_off", y_off),
      RETCL_KARG("M", Mu),      RETCL_KARG("N", Nu),
      RETCL_KARG("K", Ku),      RETCL_KARG("nb", nbu),
      RETCL_KARG("bstride", bs), RETCL_KARG("alpha", a),
      RETCL_KARG("cols_per_item", per)};
  retcl_grid grid;
  if (cpu) {
    grid = retcl__grid(1, 1, (N + per - 1) / per, 1, 1);
  } else {
    const size_t local = grouped_size(ctx, id);
    grid = (retcl_grid){1, {N * local, 1, 1}, {local, 1, 1}};
  }
  /* The GPU kernels take no cols_per_item (one group per output). */
  return retcl__launch_typed(ctx, id, W.type, args,
                             RETCL_NARGS(args) - (cpu ? 0 : 1), &grid, 0, NULL,
                             NULL);
}

/* Block b of a stacked product: Y_b = alpha[b] X W_bᵀ (+ beta Y_b), with
 * W_b the nb x K rows after b * nb rows of W and Y_b the M x nb floats
 * after b * M * nb of Y. Few rows and beta = 0: the streaming kernels, all
 * blocks in one launch (GPUs: one per group of 8 rows); otherwise the
 * GEMM backend per block. */
static retcl_status gemm_stacked(retcl_context *ctx, size_t M, size_t blocks,
                                 size_t nb, size_t K, const float *alpha,
                                 retcl_buffer X, retcl_buffer W, float beta,
                                 retcl_buffer Y) {
  retcl_status st;
  if (M > (size_t)retcl__param(ctx, RETCL_P_LINEAR_ROW_LIMIT) || beta != 0.0f) {
    /* CLBlast reads fp32 only: 16-bit weights always take RetCL's GEMM. */
    const int own =
        retcl__param(ctx, RETCL_P_GEMM_BACKEND) == RETCL_BACKEND_RETCL ||
        W.type != RETCL_DTYPE_F32;
    for (size_t b = 0; b < blocks; ++b) {
      const retcl_buffer Wb = retcl__sub(W, b * nb * K),
                         Yb = retcl_buf(Y.mem, Y.offset + b * M * nb);
      st = own ? retcl__gemm_enqueue(ctx, RETCL_GEMM_NT, M, nb, K, alpha[b], X,
                                     K, Wb, K, beta, Yb, nb, 0, NULL, NULL)
               : retcl__clblast_sgemm_nt(ctx, M, nb, K, alpha[b], X, Wb,
                                         beta, Yb);
      if (st) return st;
    }
    return RETCL_SUCCESS;
  }
  if (retcl__cpu_access(ctx, RETCL_P_LINEAR_ACCESS))
    return skinny(ctx, M, blocks, nb, K, alpha, X, W, Y, M * nb);
  for (size_t m0 = 0; m0 < M; m0 += GROUPED_MAX_ROWS) {
    const size_t rows = M - m0 < GROUPED_MAX_ROWS ? M - m0 : GROUPED_MAX_ROWS;
    if ((st = skinny(ctx, rows, blocks, nb, K, alpha,
                     retcl_buf(X.mem, X.offset + m0 * K), W,
                     retcl_buf(Y.mem, Y.offset + m0 * nb), M * nb)))
      return st;
  }
  return RETCL_SUCCESS;
}

retcl_status retcl__linear_enqueue(retcl_context *ctx, size_t M, size_t N, size_t K,
                             float alpha, retcl_buffer X, retcl_buffer W,
                             float beta, retcl_buffer Y) {
  return gemm_stacked(ctx, M, 1, N, K, &alpha, X, W, beta, Y);
}

/* p continues the stack that ends with q: same width, and its weights and
 * outputs start where q's end, in the same buffers. */
static int stacks_on(const retcl_projection *q, const retcl_projection *p,
                     size_t M, size_t K) {
  return p->n == q->n && p->w.mem == q->w.mem && p->y.mem == q->y.mem &&
         p->w.type == q->w.type &&
         p->w.offset == q->w.offset + q->n * K &&
         p->y.offset == q->y.offset + M * q->n;
}

retcl_status retcl__linear_many_enqueue(retcl_context *ctx, size_t M, size_t K,
                              retcl_buffer X, size_t count,
                              const retcl_projection *proj) {
  for (size_t i = 0; i < count;) {
    float alpha[4] = {proj[i].alpha};
    size_t blocks = 1;
    while (blocks < 4 && i + blocks < count &&
           stacks_on(&proj[i + blocks - 1], &proj[i + blocks], M, K)) {
      alpha[blocks] = proj[i + blocks].alpha;
      ++blocks;
    }
    retcl_status st = gemm_stacked(ctx, M, blocks, proj[i].n, K, alpha, X,
                                   proj[i].w, 0.0f, proj[i].y);
    if (st) return st;
    i += blocks;
  }
  return RETCL_SUCCESS;
}

retcl_status retcl__linear_reserve(retcl_context *ctx, size_t M, size_t N,
                                   size_t K) {
  /* RetCL's GEMM also runs 16-bit weights under the clblast backend: once
   * a 16-bit variant exists (a 16-bit model or call), reserve for it. */
  const int sixteen = ctx->programs[RETCL_DTYPE_F16][RETCL_FAMILY_GEMM] ||
                      ctx->programs[RETCL_DTYPE_BF16][RETCL_FAMILY_GEMM];
  return retcl__param(ctx, RETCL_P_GEMM_BACKEND) == RETCL_BACKEND_RETCL ||
                 sixteen
             ? retcl__gemm_reserve(ctx, M, N, K)
             : RETCL_SUCCESS;
}

unsigned retcl__linear_families(void) {
  return RETCL_FAMILY_BIT(RETCL_FAMILY_LINEAR) |
         RETCL_FAMILY_BIT(RETCL_FAMILY_GEMM) |
         RETCL_FAMILY_BIT(RETCL_FAMILY_CLBLAST);
}

static const char *OP = "retcl_linear";
static const char *OP_MANY = "retcl_linear_many";

static retcl_status check_scalar(retcl_context *ctx, const char *op,
                                 const char *name, float value) {
  if (!isfinite(value))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: %s = %g is not finite", op, name, (double)value);
  return RETCL_SUCCESS;
}

static retcl_status check_linear(retcl_context *ctx, size_t M, size_t N,
                                 size_t K, float alpha, retcl_buffer x,
                                 retcl_buffer w, float beta, retcl_buffer y) {
  retcl_status st;
  if ((st = retcl__check_dim(ctx, OP, "M", M, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP, "N", N, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP, "K", K, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_buffer(ctx, OP, "x", x, retcl__mul(M, K))) ||
      (st = retcl__check_weight(ctx, OP, "w", w, retcl__mul(N, K))) ||
      (st = retcl__check_buffer(ctx, OP, "y", y, retcl__mul(M, N))) ||
      (st = check_scalar(ctx, OP, "alpha", alpha)) ||
      (st = check_scalar(ctx, OP, "beta", beta)))
    return st;
  const char *hit = retcl__overlaps(y, M * N, x, M * K)   ? "x"
                    : retcl__overlaps(y, M * N, w, N * K) ? "w"
                                                          : NULL;
  if (hit)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: y overlaps %s",
                       OP, hit);
  return RETCL_SUCCESS;
}

retcl_status retcl_linear(retcl_context *ctx, size_t M, size_t N, size_t K,
                          float alpha, retcl_buffer x, retcl_buffer w,
                          float beta, retcl_buffer y,
                          cl_uint num_events_in_wait_list,
                          const cl_event *event_wait_list, cl_event *event) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if ((st = check_linear(ctx, M, N, K, alpha, x, w, beta, y)) ||
      (st = retcl__check_wait_list(ctx, OP, num_events_in_wait_list,
                                   event_wait_list)) ||
      (st = retcl__prepare_typed(ctx, retcl__linear_families(), w.type)) ||
      (st = retcl__linear_reserve(ctx, M, N, K)) ||
      (st = retcl__wait_for(ctx, num_events_in_wait_list, event_wait_list)) ||
      (st = retcl__linear_enqueue(ctx, M, N, K, alpha, x, w, beta, y)))
    return st;
  return retcl__signal_done(ctx, event);
}

/* Projection i against x and the others: sizes, buffers, no overlaps. */
static retcl_status check_projection(retcl_context *ctx, size_t M, size_t K,
                                     retcl_buffer x, size_t count,
                                     const retcl_projection *proj, size_t i) {
  const retcl_projection *p = &proj[i];
  char n_name[48], w_name[48], y_name[48], a_name[48];
  snprintf(n_name, sizeof n_name, "proj[%zu].n", i);
  snprintf(w_name, sizeof w_name, "proj[%zu].w", i);
  snprintf(y_name, sizeof y_name, "proj[%zu].y", i);
  snprintf(a_name, sizeof a_name, "proj[%zu].alpha", i);
  retcl_status st;
  if ((st = retcl__check_dim(ctx, OP_MANY, n_name, p->n, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_weight(ctx, OP_MANY, w_name, p->w,
                                retcl__mul(p->n, K))) ||
      (st = retcl__check_buffer(ctx, OP_MANY, y_name, p->y,
                                retcl__mul(M, p->n))) ||
      (st = check_scalar(ctx, OP_MANY, a_name, p->alpha)))
    return st;
  const size_t y_elems = M * p->n;
  if (retcl__overlaps(p->y, y_elems, x, M * K))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: %s overlaps x", OP_MANY, y_name);
  for (size_t j = 0; j < count; ++j) {
    const retcl_projection *q = &proj[j];
    const int hits_w = retcl__overlaps(p->y, y_elems, q->w, q->n * K);
    if (hits_w || (j != i && retcl__overlaps(p->y, y_elems, q->y, M * q->n)))
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: %s overlaps proj[%zu].%c", OP_MANY, y_name, j,
                         hits_w ? 'w' : 'y');
  }
  return RETCL_SUCCESS;
}

retcl_status retcl_linear_many(retcl_context *ctx, size_t M, size_t K,
                               retcl_buffer x, size_t count,
                               const retcl_projection *proj,
                               cl_uint num_events_in_wait_list,
                               const cl_event *event_wait_list,
                               cl_event *event) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if (!proj || !count)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: %s", OP_MANY,
                       !proj ? "proj is NULL" : "count is 0");
  if ((st = retcl__check_dim(ctx, OP_MANY, "M", M, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP_MANY, "K", K, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_buffer(ctx, OP_MANY, "x", x, retcl__mul(M, K))))
    return st;
  size_t widest = 0;
  for (size_t i = 0; i < count; ++i) {
    if ((st = check_projection(ctx, M, K, x, count, proj, i))) return st;
    if (proj[i].n > widest) widest = proj[i].n;
  }
  if ((st = retcl__check_wait_list(ctx, OP_MANY, num_events_in_wait_list,
                                   event_wait_list)))
    return st;
  for (size_t i = 0; i < count; ++i)
    if ((st = retcl__prepare_typed(ctx, retcl__linear_families(),
                                   proj[i].w.type)))
      return st;
  if ((st = retcl__linear_reserve(ctx, M, widest, K)) ||
      (st = retcl__wait_for(ctx, num_events_in_wait_list, event_wait_list)) ||
      (st = retcl__linear_many_enqueue(ctx, M, K, x, count, proj)))
    return st;
  return retcl__signal_done(ctx, event);
}
