/* gemm.h - the enqueue step of RetCL's GEMM (gemm.c, cl/gemm.cl), for the
 * projections (linear.c) and composite calls that checked their buffers
 * and prepared the gemm program. */
#ifndef RETCL_OPS_GEMM_H
#define RETCL_OPS_GEMM_H

#include "retcl.h"

/* Floats of workspace a product of M x N x K takes (0: it runs unpacked).
 * Monotone in each size and bounded by the gemm record's groups, so a
 * composite call reserves once for the largest sizes of its products. */
size_t retcl__gemm_workspace_floats(const retcl_context *ctx, size_t M,
                                    size_t N, size_t K);
/* Reserve that workspace (before anything is enqueued). */
retcl_status retcl__gemm_reserve(retcl_context *ctx, size_t M, size_t N,
                                 size_t K);

/* C = alpha op(A) op(B) + beta C; see retcl_gemm. Products that pack use
 * the reserved workspace (RETCL_WORKSPACE_GEMM). */
retcl_status retcl__gemm_enqueue(retcl_context *ctx, retcl_gemm_case op,
                                 size_t M, size_t N, size_t K, float alpha,
                                 retcl_buffer A, size_t lda, retcl_buffer B,
                                 size_t ldb, float beta, retcl_buffer C,
                                 size_t ldc, cl_uint num_wait,
                                 const cl_event *wait, cl_event *event);

#endif
