/* linear.cl - Y[M,N] = alpha X[M,K] W[N,K]ᵀ for few rows M (decoding one
 * token per sequence): the product is bound by reading W once, which a
 * general GEMM tiled for large M does poorly (CLBlast on PoCL: 2.3 ms for
 * M=1, N=1024, K=512, where streaming W takes ~0.1 ms).
 *
 * CPUs (retcl_linear_skinny_*): a work-item owns `cols_per_item`
 * consecutive outputs n (rows of W), cuts them into S equal parts and
 * walks the parts side by side, one W row of each at a time, as
 * RETCL_VW-wide vectors multiplied with the M rows of X. S streams keep
 * more memory reads in flight than one: with W out of cache, the former
 * 8-row kernel ran 1.25x faster with S = 2 than with S = 1 on PoCL (2
 * cores), 4 rows with S = 4 1.1x faster than with S = 2; one row
 * (memory-bound) gained nothing from it and keeps S = 1. MR, the rows of
 * X per pass, is a compile-time constant per kernel (1, 2 or 4) so the
 * S x MR accumulators unroll into registers (16 at most); a pass with
 * fewer real rows repeats the last one and stores only the real ones.
 * More rows than MR (the 4-row kernel takes any M up to linear.row_limit)
 * run in groups of MR over the same S rows of W, which the first group
 * reads from memory and the others from cache: W is streamed once per
 * call whatever M is. Measured on PoCL (2 cores, W 2-8 MiB out of L2): at
 * 16 rows 115-136 GFLOP/s, where the former 8-row kernel (S = 2) run twice
 * over W reached 71-93; at 8 rows the 4-row kernel's two groups ran
 * 88-123 against that 8-row kernel's 69-76. */

#if !defined(RETCL_VW) || !defined(RETCL_LINEAR_WG)
#error "linear.cl needs the linear record's definitions (RETCL_VW, RETCL_LINEAR_WG)"
#endif
#if RETCL_LINEAR_WG & (RETCL_LINEAR_WG - 1)
#error "RETCL_LINEAR_WG (linear.wg) must be a power of two"
#endif

/* Both kernels also run several projections of the same X at once (Q, K,
 * V, G of a layer): W then stacks up to 4 blocks of `nb` rows (N = blocks
 * x nb); block b's outputs are rows of nb floats starting at b * bstride
 * in Y (bstride >= M * nb: the blocks of Y need not be adjacent to each
 * other's rows, so a launch may cover some of the rows of each), scaled
 * by lane b of `alpha`. One projection is one block (nb = N). */
inline uint block_out(uint r, uint m, uint bstride, uint nb) {
  const uint b = r / nb;
  return b * bstride + m * nb + (r - b * nb);
}
inline float block_alpha(float4 alpha, uint r, uint nb) {
  const uint b = r / nb;
  return b == 0 ? alpha.s0 : b == 1 ? alpha.s1 : b == 2 ? alpha.s2 : alpha.s3;
}

#define RETCL_LINEAR_SKINNY(MR, S)                                           \
  __kernel void retcl_linear_skinny_##MR(                                    \
      __global const float *X, uint x_off, __global const RETCL_WT *W,       \
      uint w_off, __global float *Y, uint y_off, uint M, uint N, uint K,     \
      uint nb, uint bstride, float4 alpha, uint cols_per_item) {             \
    const uint n0 = get_global_id(0) * cols_per_item;                        \
    const uint n1 = min(N, n0 + cols_per_item);                              \
    if (n0 >= n1) return;                                                    \
    const uint part = (n1 - n0 + S - 1) / S, last = M - 1;                   \
    for (uint i = 0; i < part; ++i) {                                        \
      /* Row i of each part; past the range's end, the last row again        \
       * (computed, not stored). */                                          \
      uint row[S];                                                           \
      __global const RETCL_WT *w[S];                                         \
      _Pragma("unroll") for (uint s = 0; s < S; ++s) {                       \
        row[s] = min(n0 + s * part + i, n1 - 1);                             \
        w[s] = W + w_off + (size_t)row[s] * K;                               \
      }                                                                      \
      /* Rows of X in groups of MR: the first group reads the S rows of W    \
       * from memory, the others from cache. */                              \
      for (uint g = 0; g < M; g += MR) {                                     \
        vecf acc[S][MR];                                                     \
        float tail[S][MR];                                                   \
        _Pragma("unroll") for (uint s = 0; s < S; ++s)                       \
          _Pragma("unroll") for (uint m = 0; m < MR; ++m) {                  \
            acc[s][m] = (vecf)(0.0f);                                        \
            tail[s][m] = 0.0f;                                               \
          }                                                                  \
        uint k = 0;                                                          \
        for (; k + RETCL_VW <= K; k += RETCL_VW) {                           \
          vecf wv[S];                                                        \
          _Pragma("unroll") for (uint s = 0; s < S; ++s) wv[s] =             \
              RETCL_VLOAD_W(w[s] + k);                                       \
          _Pragma("unroll") for (uint m = 0; m < MR; ++m) {                  \
            const vecf xv = VLOAD(0, X + x_off + min(g + m, last) * K + k);  \
            _Pragma("unroll") for (uint s = 0; s < S; ++s) acc[s][m] =       \
                fma(wv[s], xv, acc[s][m]);                                   \
          }                                                                  \
        }                                                                    \
        for (; k < K; ++k)                                                   \
          _Pragma("unroll") for (uint m = 0; m < MR; ++m) {                  \
            const float xk = X[x_off + min(g + m, last) * K + k];            \
            _Pragma("unroll") for (uint s = 0; s < S; ++s) tail[s][m] =      \
                fma(RETCL_LOAD_W(w[s], k), xk, tail[s][m]);                  \
          }                                                                  \
        _Pragma("unroll") for (uint s = 0; s < S; ++s)                       \
            if (n0 + s * part + i < n1) {                                    \
          const float a = block_alpha(alpha, row[s], nb);                    \
          _Pragma("unroll") for (uint m = 0; m < MR; ++m) if (g + m < M)     \
              Y[y_off + block_out(row[s], g + m, bstride, nb)] =             \
                  a * (lane_sum(acc[s][m]) + tail[s][m]);                    \
        }                                                                    \
      }                                                                      \
    }                                                                        \
  }

/* One row: fp32 weights stream at the memory's pace with one part; 16-bit
 * weights move half the bytes, and one dependent chain of fma's per item
 * then limits them, so they walk 4 parts (4 independent chains). */
#if RETCL_WTYPE == 0
RETCL_LINEAR_SKINNY(1, 1)
#else
RETCL_LINEAR_SKINNY(1, 4)
#endif
RETCL_LINEAR_SKINNY(2, 4)
RETCL_LINEAR_SKINNY(4, 4)

/* GPUs: the CPU kernel above gives each work-item its own W rows, so
 * neighbouring items would read addresses K floats apart. Here a
 * work-group owns one output n instead (the grid has exactly N groups):
 * its items stride over K together (neighbouring items, neighbouring
 * addresses of W's row and of X's rows), each keeping MR partial sums,
 * which are then added up in local memory. The group size is a power of
 * two up to RETCL_LINEAR_WG, chosen by the host within the device's
 * limits. */

#define RETCL_LINEAR_GROUPED(MR)                                             \
  __kernel void retcl_linear_grouped_##MR(                                   \
      __global const float *X, uint x_off, __global const RETCL_WT *W,       \
      uint w_off, __global float *Y, uint y_off, uint M, uint N, uint K,     \
      uint nb, uint bstride, float4 alpha) {                                 \
    __local float part[MR][RETCL_LINEAR_WG];                                 \
    (void)N; /* same arguments as the CPU kernel; N groups */                \
    const uint n = get_group_id(0), lid = get_local_id(0);                   \
    const uint wg = get_local_size(0), last = M - 1;                         \
    __global const RETCL_WT *w = W + w_off + (size_t)n * K;                  \
    float acc[MR];                                                           \
    _Pragma("unroll") for (uint m = 0; m < MR; ++m) acc[m] = 0.0f;           \
    for (uint k = lid; k < K; k += wg) {                                     \
      const float wk = RETCL_LOAD_W(w, k);                                   \
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
    /* a group may have fewer items than rows (linear.wg or the device's  \
     * limit below 8): each item stores every wg-th row */                 \
    for (uint m = lid; m < M; m += wg)                                       \
      Y[y_off + block_out(n, m, bstride, nb)] =                              \
          block_alpha(alpha, n, nb) * part[m][0];                            \
  }

RETCL_LINEAR_GROUPED(1)
RETCL_LINEAR_GROUPED(2)
RETCL_LINEAR_GROUPED(4)
RETCL_LINEAR_GROUPED(8)
