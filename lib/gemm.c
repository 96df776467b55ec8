/* gemm.c - the dense projections: CLBlast's SGEMM (DESIGN 4), and for the
 * few-row products of decoding a weight-streaming kernel (cl/linear.cl),
 * since a GEMM tiled for large M reads the weights far below bandwidth. */
#include "internal.h"

#include <clblast_c.h>

/* Rows per skinny launch at most; more rows run in groups of this many. */
#define SKINNY_MAX_ROWS 8
/* Up to this many rows the skinny kernel beats CLBlast (it reads W once
 * per group of 8 rows, CLBlast's tiles waste most of their work). */
#define SKINNY_ROW_LIMIT 32

static retcl_status clblast_gemm(retcl_context *ctx, size_t M, size_t N,
                                 size_t K, float alpha, retcl_buffer X,
                                 retcl_buffer W, float beta, retcl_buffer Y) {
  cl_command_queue queue = ctx->queue;
  /* Row-major X[M,K] times W[N,K] transposed: W is a torch Linear weight. */
  CLBlastStatusCode code = CLBlastSgemm(
      CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, M, N, K,
      alpha, X.mem, X.offset, K, W.mem, W.offset, K, beta, Y.mem, Y.offset, N,
      &queue, NULL);
  if (code != CLBlastSuccess)
    return retcl__fail(ctx,
                       code == CLBlastOpenCLOutOfResources ||
                               code == CLBlastOpenCLOutOfHostMemory
                           ? RETCL_ERROR_OUT_OF_MEMORY
                           : RETCL_ERROR_OPENCL,
                       "CLBlastSgemm(M=%zu, N=%zu, K=%zu) failed with CLBlast "
                       "status %d",
                       M, N, K, (int)code);
  return RETCL_SUCCESS;
}

/* Kernel of the family starting at first (the 1-row kernel; the 2-, 4- and
 * 8-row ones follow it) for M rows: the smallest with at least M. */
_Static_assert(RETCL_KERNEL_LINEAR_SKINNY_8 == RETCL_KERNEL_LINEAR_SKINNY_1 + 3 &&
                   RETCL_KERNEL_LINEAR_GROUPED_8 ==
                       RETCL_KERNEL_LINEAR_GROUPED_1 + 3,
               "the linear kernels of 1, 2, 4, 8 rows are consecutive ids");
static retcl_kernel_id rows_kernel(retcl_kernel_id first, size_t M) {
  return (retcl_kernel_id)(first + (M == 1 ? 0 : M == 2 ? 1 : M <= 4 ? 2 : 3));
}

/* Largest power of two <= min(64, what the device and kernel allow): the
 * GPU kernel's work-group size (RETCL_LINEAR_WG in cl/linear.cl). */
static size_t grouped_size(retcl_context *ctx, cl_kernel k) {
  size_t limit = ctx->traits.max_work_group, kernel_limit = 0;
  if (clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                               sizeof kernel_limit, &kernel_limit,
                               NULL) == CL_SUCCESS &&
      kernel_limit && kernel_limit < limit)
    limit = kernel_limit;
  size_t wg = 64;
  while (wg > limit) wg /= 2;
  return wg;
}

/* One launch for rows [0, M) of X, M <= SKINNY_MAX_ROWS, and `blocks`
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
  const int cpu = ctx->traits.is_cpu;
  cl_kernel k;
  retcl_status st = retcl__kernel(
      ctx,
      rows_kernel(cpu ? RETCL_KERNEL_LINEAR_SKINNY_1
                      : RETCL_KERNEL_LINEAR_GROUPED_1, M),
      &k);
  if (st) return st;
  const size_t N = blocks * nb;
  cl_uint x_off = (cl_uint)X.offset, w_off = (cl_uint)W.offset,
          y_off = (cl_uint)Y.offset, Mu = (cl_uint)M, Nu = (cl_uint)N,
          Ku = (cl_uint)K, nbu = (cl_uint)nb, bs = (cl_uint)bstride;
  cl_float4 a = {{0}};
  for (size_t b = 0; b < blocks; ++b) a.s[b] = alpha[b];
  RETCL_ARG(ctx, k, 0, X.mem);
  RETCL_ARG(ctx, k, 1, x_off);
  RETCL_ARG(ctx, k, 2, W.mem);
  RETCL_ARG(ctx, k, 3, w_off);
  RETCL_ARG(ctx, k, 4, Y.mem);
  RETCL_ARG(ctx, k, 5, y_off);
  RETCL_ARG(ctx, k, 6, Mu);
  RETCL_ARG(ctx, k, 7, Nu);
  RETCL_ARG(ctx, k, 8, Ku);
  RETCL_ARG(ctx, k, 9, nbu);
  RETCL_ARG(ctx, k, 10, bs);
  RETCL_ARG(ctx, k, 11, a);
  size_t global, local;
  if (cpu) {
    const size_t items =
        8 * (ctx->traits.compute_units ? ctx->traits.compute_units : 1);
    const cl_uint per = (cl_uint)((N + items - 1) / items);
    RETCL_ARG(ctx, k, 12, per);
    global = (N + per - 1) / per;
    local = 1;
  } else {
    local = grouped_size(ctx, k);
    global = N * local;
  }
  cl_int err = clEnqueueNDRangeKernel(ctx->queue, k, 1, NULL, &global, &local,
                                      0, NULL, NULL);
  return err == CL_SUCCESS
             ? RETCL_SUCCESS
             : retcl__cl_fail(ctx, "clEnqueueNDRangeKernel(linear)", err);
}

/* Block b of a stacked product: Y_b = alpha[b] X W_bᵀ (+ beta Y_b), with
 * W_b the nb x K rows after b * nb rows of W and Y_b the M x nb floats
 * after b * M * nb of Y. Few rows and beta = 0: the streaming kernels, all
 * blocks in one launch per group of rows; otherwise CLBlast per block. */
static retcl_status gemm_stacked(retcl_context *ctx, size_t M, size_t blocks,
                                 size_t nb, size_t K, const float *alpha,
                                 retcl_buffer X, retcl_buffer W, float beta,
                                 retcl_buffer Y) {
  retcl_status st;
  if (M > SKINNY_ROW_LIMIT || beta != 0.0f) {
    for (size_t b = 0; b < blocks; ++b)
      if ((st = clblast_gemm(ctx, M, nb, K, alpha[b], X,
                             retcl_buf(W.mem, W.offset + b * nb * K), beta,
                             retcl_buf(Y.mem, Y.offset + b * M * nb))))
        return st;
    return RETCL_SUCCESS;
  }
  for (size_t m0 = 0; m0 < M; m0 += SKINNY_MAX_ROWS) {
    const size_t rows = M - m0 < SKINNY_MAX_ROWS ? M - m0 : SKINNY_MAX_ROWS;
    if ((st = skinny(ctx, rows, blocks, nb, K, alpha,
                     retcl_buf(X.mem, X.offset + m0 * K), W,
                     retcl_buf(Y.mem, Y.offset + m0 * nb), M * nb)))
      return st;
  }
  return RETCL_SUCCESS;
}

retcl_status retcl__gemm_xwt(retcl_context *ctx, size_t M, size_t N, size_t K,
                             float alpha, retcl_buffer X, retcl_buffer W,
                             float beta, retcl_buffer Y) {
  return gemm_stacked(ctx, M, 1, N, K, &alpha, X, W, beta, Y);
}

/* p continues the stack that ends with q: same width, and its weights and
 * outputs start where q's end, in the same buffers. */
static int stacks_on(const retcl_projection *q, const retcl_projection *p,
                     size_t M, size_t K) {
  return p->n == q->n && p->w.mem == q->w.mem && p->y.mem == q->y.mem &&
         p->w.offset == q->w.offset + q->n * K &&
         p->y.offset == q->y.offset + M * q->n;
}

retcl_status retcl__gemm_many(retcl_context *ctx, size_t M, size_t K,
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
