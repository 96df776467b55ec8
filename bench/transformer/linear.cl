/* linear.cl - Y[M,N] = X[M,K] W[N,K]ᵀ for a handful of rows M (decode: one
 * row per sequence). Such a product is bound by reading W once; a GEMM
 * tiled for large M reads it far below bandwidth (CLBlast on PoCL: ~2.3 ms
 * for M=1, N=1024, K=512, against ~0.1 ms streaming W), so the baseline
 * streams W here exactly as RetCL's own decode projections do.
 *
 * A work-item owns `cols` consecutive outputs n (many on CPUs, so it walks
 * one contiguous stretch of W; one on GPUs) and reads each W row once, in
 * lvec blocks, against all MR rows of X. MR is fixed per kernel (1, 2, 4,
 * 8) so the accumulators stay in registers; a call with fewer rows reads
 * its last row again for the missing ones and stores only the real rows. */

#define TF_SKINNY(MR)                                                       \
  __kernel void tf_linear_skinny_##MR(                                      \
      __global const float *X, uint x_off, __global const float *W,         \
      __global float *Y, uint y_off, uint M, uint N, uint K, uint cols) {   \
    const uint first = get_global_id(0) * cols;                             \
    const uint end = min(N, first + cols);                                  \
    __global const float *xr[MR];                                           \
    _Pragma("unroll") for (uint m = 0; m < MR; ++m)                         \
        xr[m] = X + x_off + min(m, M - 1) * K;                              \
    for (uint n = first; n < end; ++n) {                                    \
      __global const float *w = W + n * K;                                  \
      lvec acc[MR];                                                         \
      float rest[MR];                                                       \
      _Pragma("unroll") for (uint m = 0; m < MR; ++m) {                     \
        acc[m] = (lvec)(0.0f);                                              \
        rest[m] = 0.0f;                                                     \
      }                                                                     \
      uint k = 0;                                                           \
      for (; k + TF_LVW <= K; k += TF_LVW) {                                \
        const lvec wk = LLOAD(0, w + k);                                    \
        _Pragma("unroll") for (uint m = 0; m < MR; ++m)                     \
            acc[m] = fma(wk, LLOAD(0, xr[m] + k), acc[m]);                  \
      }                                                                     \
      for (; k < K; ++k) /* K not a multiple of the vector width */         \
        _Pragma("unroll") for (uint m = 0; m < MR; ++m)                     \
            rest[m] = fma(w[k], xr[m][k], rest[m]);                         \
      _Pragma("unroll") for (uint m = 0; m < MR; ++m) if (m < M)            \
          Y[y_off + m * N + n] = LSUM(acc[m]) + rest[m];                    \
    }                                                                       \
  }

TF_SKINNY(1)
TF_SKINNY(2)
TF_SKINNY(4)
TF_SKINNY(8)
