/* linear.h - the enqueue steps of the dense projections (linear.c), for
 * composite calls that have checked their buffers and prepared the linear
 * program. */
#ifndef RETCL_OPS_LINEAR_H
#define RETCL_OPS_LINEAR_H

#include "retcl.h"

/* The kernel families the projections launch (streaming and GEMM). */
unsigned retcl__linear_families(void);
/* Reserve the workspace the enqueue steps need for products of up to M
 * rows, N columns and K inner length (gemm.c's packed panels), before a
 * call enqueues anything. */
retcl_status retcl__linear_reserve(retcl_context *ctx, size_t M, size_t N,
                                   size_t K);

/* Y[M,N] = alpha X[M,K] W[N,K]ᵀ + beta Y (row-major; W is a torch Linear
 * weight [out, in]) on the context's queue. */
retcl_status retcl__linear_enqueue(retcl_context *ctx, size_t M, size_t N,
                                   size_t K, float alpha, retcl_buffer X,
                                   retcl_buffer W, float beta, retcl_buffer Y);
/* y_i = alpha_i X w_iᵀ for projections of one X [M,K]: consecutive ones of
 * the same n whose weights and outputs lie back to back run as one launch
 * (up to 4). */
retcl_status retcl__linear_many_enqueue(retcl_context *ctx, size_t M,
                                        size_t K, retcl_buffer X, size_t count,
                                        const retcl_projection *proj);

#endif
