/* ref_gemm.h - the dense products of docs/design.md §1.9 in double, with
 * each element's fp32 error bound. */
#ifndef RETCL_REF_GEMM_H
#define RETCL_REF_GEMM_H

#include <stddef.h>

#include "retcl.h"

/* ref[m*N + n] = Σ_k op(A)[m,k] op(B)[k,n] (alpha 1, beta 0) for A and B
 * stored as the case stores them (A [M,K] or, tn, [K,M]; B [N,K] or, nn
 * and tn, [K,N]) with leading dimensions lda, ldb; and, if bound is not
 * NULL, bound[m*N + n] = γ(K+2) Σ_k |op(A)[m,k] op(B)[k,n]|, γ(n) = n u /
 * (1 − n u), u = 2^-24: the error of an fp32 dot product of length K in any
 * summation order (Higham, Accuracy and Stability, §3.1; the + 2 covers
 * the products by alpha and beta). */
void ref_gemm(retcl_gemm_case op, size_t M, size_t N, size_t K,
              const float *a, size_t lda, const float *b, size_t ldb,
              double *ref, double *bound);
/* γ(K+2) of the bound above, for scaling other terms (beta · C). */
double ref_gemm_gamma(size_t K);

#endif
