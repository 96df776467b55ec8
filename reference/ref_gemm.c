/* ref_gemm.c - see ref_gemm.h. */
#include "ref_gemm.h"

#include <math.h>

double ref_gemm_gamma(size_t K) {
  const double u = ldexp(1.0, -24), n = (double)(K + 2);
  return n * u / (1.0 - n * u);
}

void ref_gemm(retcl_gemm_case op, size_t M, size_t N, size_t K,
              const float *a, size_t lda, const float *b, size_t ldb,
              double *ref, double *bound) {
  const double gamma = ref_gemm_gamma(K);
  for (size_t m = 0; m < M; ++m)
    for (size_t n = 0; n < N; ++n) {
      double dot = 0, mag = 0;
      for (size_t k = 0; k < K; ++k) {
        const double x = op == RETCL_GEMM_TN ? a[k * lda + m] : a[m * lda + k];
        const double y = op == RETCL_GEMM_NT ? b[n * ldb + k] : b[k * ldb + n];
        dot += x * y;
        mag += fabs(x * y);
      }
      ref[m * N + n] = dot;
      if (bound) bound[m * N + n] = gamma * mag;
    }
}
