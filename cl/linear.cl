/* linear.cl - Y[M,N] = alpha X[M,K] W[N,K]ᵀ for few rows M (decoding one
 * token per sequence): the product is bound by reading W once, which a
 * general GEMM tiled for large M does poorly (CLBlast on PoCL: 2.3 ms for
 * M=1, N=1024, K=512, where streaming W takes ~0.1 ms).
 *
 * A work-item owns `cols_per_item` consecutive outputs n (rows of W; many
 * on CPUs so each walks contiguous memory, one on GPUs), streams each W
 * row once as RETCL_VW-wide vectors and multiplies it with the M rows of
 * X. M is a compile-time constant per kernel (1, 2, 4 or 8) so the
 * accumulators unroll into registers; a call with fewer real rows repeats
 * the last one and stores only the real ones. */

#define RETCL_LINEAR_SKINNY(MR)                                              \
  __kernel void retcl_linear_skinny_##MR(                                    \
      __global const float *X, uint x_off, __global const float *W,          \
      uint w_off, __global float *Y, uint y_off, uint M, uint N, uint K,     \
      float alpha, uint cols_per_item) {                                     \
    const uint n0 = get_global_id(0) * cols_per_item;                        \
    const uint n1 = min(N, n0 + cols_per_item);                              \
    const uint last = M - 1;                                                 \
    for (uint n = n0; n < n1; ++n) {                                         \
      __global const float *w = W + w_off + (size_t)n * K;                   \
      vecf acc[MR];                                                          \
      float tail[MR];                                                        \
      _Pragma("unroll") for (uint m = 0; m < MR; ++m) {                      \
        acc[m] = (vecf)(0.0f);                                               \
        tail[m] = 0.0f;                                                      \
      }                                                                      \
      uint k = 0;                                                            \
      for (; k + RETCL_VW <= K; k += RETCL_VW) {                             \
        const vecf wv = VLOAD(0, w + k);                                     \
        _Pragma("unroll") for (uint m = 0; m < MR; ++m) acc[m] = fma(        \
            wv, VLOAD(0, X + x_off + min(m, last) * K + k), acc[m]);         \
      }                                                                      \
      for (; k < K; ++k)                                                     \
        _Pragma("unroll") for (uint m = 0; m < MR; ++m) tail[m] =            \
            fma(w[k], X[x_off + min(m, last) * K + k], tail[m]);             \
      _Pragma("unroll") for (uint m = 0; m < MR; ++m) if (m < M)             \
          Y[y_off + m * N + n] = alpha * (lane_sum(acc[m]) + tail[m]);       \
    }                                                                        \
  }

RETCL_LINEAR_SKINNY(1)
RETCL_LINEAR_SKINNY(2)
RETCL_LINEAR_SKINNY(4)
RETCL_LINEAR_SKINNY(8)

/* GPUs: the per-row kernel above gives each work-item its own W row, so
 * neighbouring items read addresses K floats apart. Here a work-group owns
 * one output n instead: its items stride over K together (neighbouring
 * items, neighbouring addresses of W's row and of X's rows), each keeping
 * MR partial sums, which are then added up in local memory. The group
 * size is a power of two up to RETCL_LINEAR_WG, chosen by the host within
 * the device's limits. */
#define RETCL_LINEAR_WG 64

#define RETCL_LINEAR_GROUPED(MR)                                             \
  __kernel void retcl_linear_grouped_##MR(                                   \
      __global const float *X, uint x_off, __global const float *W,          \
      uint w_off, __global float *Y, uint y_off, uint M, uint N, uint K,     \
      float alpha) {                                                         \
    __local float part[MR][RETCL_LINEAR_WG];                                 \
    const uint n = get_group_id(0), lid = get_local_id(0);                   \
    const uint wg = get_local_size(0), last = M - 1;                         \
    __global const float *w = W + w_off + (size_t)n * K;                     \
    float acc[MR];                                                           \
    _Pragma("unroll") for (uint m = 0; m < MR; ++m) acc[m] = 0.0f;           \
    for (uint k = lid; k < K; k += wg) {                                     \
      const float wk = w[k];                                                 \
      _Pragma("unroll") for (uint m = 0; m < MR; ++m) acc[m] =               \
          fma(wk, X[x_off + min(m, last) * K + k], acc[m]);                  \
    }                                                                        \
    _Pragma("unroll") for (uint m = 0; m < MR; ++m) part[m][lid] = acc[m];   \
    barrier(CLK_LOCAL_MEM_FENCE);                                            \
    for (uint s = wg / 2; s > 0; s /= 2) {                                   \
      if (lid < s)                                                           \
        _Pragma("unroll") for (uint m = 0; m < MR; ++m) part[m][lid] +=      \
            part[m][lid + s];                                                \
      barrier(CLK_LOCAL_MEM_FENCE);                                          \
    }                                                                        \
    if (lid < M) Y[y_off + lid * N + n] = alpha * part[lid][0];              \
  }

RETCL_LINEAR_GROUPED(1)
RETCL_LINEAR_GROUPED(2)
RETCL_LINEAR_GROUPED(4)
RETCL_LINEAR_GROUPED(8)
