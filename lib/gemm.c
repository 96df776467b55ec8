/* gemm.c - the dense projections through CLBlast (DESIGN 4). */
#include "internal.h"

#include <clblast_c.h>

retcl_status retcl__gemm_xwt(retcl_context *ctx, size_t M, size_t N, size_t K,
                             float alpha, retcl_buffer X, retcl_buffer W,
                             float beta, retcl_buffer Y) {
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
