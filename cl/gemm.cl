/* gemm.cl - C = alpha op(A) op(B) + beta C for the three products a
 * forward and a backward need (docs/design.md §1.9):
 *
 *   retcl_gemm_nt  C[M,N] = A[M,K] B[N,K]ᵀ   y = x Wᵀ     (forward)
 *   retcl_gemm_nn  C[M,N] = A[M,K] B[K,N]    dx = dy W    (input gradient)
 *   retcl_gemm_tn  C[M,N] = A[K,M]ᵀ B[K,N]   dW = dyᵀ x   (weight gradient)
 *
 * Row-major with leading dimensions (floats between rows) and element
 * offsets; any M, N, K. beta == 0 never reads C (so C may hold anything).
 *
 * CPU access pattern (RETCL_CPU): a work-item owns a block of
 * RETCL_GEMM_BM x RETCL_GEMM_BN outputs, walked in register micro-tiles:
 * - nt: both operands run along k, so a tile of RETCL_GEMM_MR x RETCL_GEMM_NR
 *   outputs keeps one RETCL_VW-wide accumulator per output and multiplies
 *   MR rows of A with NR rows of B a vector of k at a time (MR + NR loads
 *   for MR x NR fmas), adding the lanes up at the end;
 * - nn, tn: B runs along n, so a tile is RETCL_GEMM_MB rows by RETCL_GEMM_NV
 *   vectors of n: each k broadcasts MB values of A against NV vectors of
 *   B's row k (NV loads for MB x NV fmas).
 * nt reads both operands along k, rows that stay in the core's caches for
 * the block's other tiles; nn and tn walk a panel of B down k, so their k
 * runs in blocks of RETCL_GEMM_KC, outermost (measured on PoCL: tn at K =
 * 2048 went from 35-43 to 80-87 GFLOP/s with blocks of 256, while blocking
 * nt only slowed it). No packed copies are needed at the model's shapes.
 *
 * GPU access pattern: a work-group of RETCL_GEMM_WG x RETCL_GEMM_WG items
 * computes a tile of T x T outputs, T = RETCL_GEMM_WG * RETCL_GEMM_WPT,
 * each item WPT x WPT of them, strided by WG so that neighbouring items
 * store neighbouring addresses. Tiles of A and B of RETCL_GEMM_TK values
 * along k are staged in local memory, loaded along whichever dimension is
 * contiguous in global memory (coalesced). */

#if !defined(RETCL_CPU) || !defined(RETCL_VW) || !defined(RETCL_GEMM_BM) || \
    !defined(RETCL_GEMM_BN) || !defined(RETCL_GEMM_MR) ||                   \
    !defined(RETCL_GEMM_NR) || !defined(RETCL_GEMM_NV) ||                   \
    !defined(RETCL_GEMM_MB) || !defined(RETCL_GEMM_KC) ||                   \
    !defined(RETCL_GEMM_WG) || !defined(RETCL_GEMM_WPT) ||                  \
    !defined(RETCL_GEMM_TK)
#error "gemm.cl needs the gemm record's definitions (retcl params --defines gemm)"
#endif

/* The three cases: where element (m, k) of op(A) and (k, n) of op(B) are. */
#define GEMM_A_NT(m, k) ((m) * lda + (k))
#define GEMM_B_NT(k, n) ((n) * ldb + (k))
#define GEMM_A_NN(m, k) ((m) * lda + (k))
#define GEMM_B_NN(k, n) ((k) * ldb + (n))
#define GEMM_A_TN(m, k) ((k) * lda + (m))
#define GEMM_B_TN(k, n) ((k) * ldb + (n))

/* alpha * sum (+ beta * C): C is not read when beta == 0. */
#define GEMM_STORE(c, value)                                    \
  do {                                                          \
    __global float *c_ = (c);                                   \
    *c_ = beta == 0.0f ? alpha * (value) : fma(beta, *c_, alpha * (value)); \
  } while (0)
/* The nn and tn kernels sum k in blocks of RETCL_GEMM_KC (the panel of B a
 * tile walks then stays in the core's caches): the first block stores as
 * above, the later ones add their part. */
#define GEMM_STORE_PART(first, c, value)       \
  do {                                         \
    if (first)                                 \
      GEMM_STORE(c, value);                    \
    else                                       \
      *(c) += alpha * (value);                 \
  } while (0)

#define GEMM_ARGS                                                           \
  uint M, uint N, uint K, float alpha, __global const float *A, uint a_off, \
      uint lda, __global const float *B, uint b_off, uint ldb, float beta,  \
      __global float *C, uint c_off, uint ldc

#if RETCL_CPU

#define MR RETCL_GEMM_MR
#define NR RETCL_GEMM_NR
#define NV RETCL_GEMM_NV
#define MB RETCL_GEMM_MB

/* The block of outputs this work-item owns: rows [m0, m1), cols [n0, n1). */
#define GEMM_BLOCK                                                   \
  const uint m0 = get_global_id(1) * RETCL_GEMM_BM,                 \
             n0 = get_global_id(0) * RETCL_GEMM_BN;                 \
  if (m0 >= M || n0 >= N) return;                                   \
  const uint m1 = min(M, m0 + RETCL_GEMM_BM), n1 = min(N, n0 + RETCL_GEMM_BN)

__kernel void retcl_gemm_nt(GEMM_ARGS) {
  GEMM_BLOCK;
  A += a_off;
  B += b_off;
  for (uint mt = m0; mt < m1; mt += MR)
    for (uint nt = n0; nt < n1; nt += NR) {
      /* Rows past the block's end repeat its last row: computed, never
       * stored, and always inside the buffers. */
      __global const float *a[MR], *b[NR];
      _Pragma("unroll") for (uint i = 0; i < MR; ++i)
          a[i] = A + (size_t)min(mt + i, m1 - 1) * lda;
      _Pragma("unroll") for (uint j = 0; j < NR; ++j)
          b[j] = B + (size_t)min(nt + j, n1 - 1) * ldb;
      vecf acc[MR][NR];
      _Pragma("unroll") for (uint i = 0; i < MR; ++i)
          _Pragma("unroll") for (uint j = 0; j < NR; ++j) acc[i][j] =
              (vecf)(0.0f);
      uint k = 0;
      for (; k + RETCL_VW <= K; k += RETCL_VW) {
        vecf av[MR], bv[NR];
        _Pragma("unroll") for (uint i = 0; i < MR; ++i) av[i] =
            VLOAD(0, a[i] + k);
        _Pragma("unroll") for (uint j = 0; j < NR; ++j) bv[j] =
            VLOAD(0, b[j] + k);
        _Pragma("unroll") for (uint i = 0; i < MR; ++i)
            _Pragma("unroll") for (uint j = 0; j < NR; ++j) acc[i][j] =
                fma(av[i], bv[j], acc[i][j]);
      }
      float tail[MR][NR];
      _Pragma("unroll") for (uint i = 0; i < MR; ++i)
          _Pragma("unroll") for (uint j = 0; j < NR; ++j) tail[i][j] = 0.0f;
      for (; k < K; ++k)
        _Pragma("unroll") for (uint i = 0; i < MR; ++i)
            _Pragma("unroll") for (uint j = 0; j < NR; ++j) tail[i][j] =
                fma(a[i][k], b[j][k], tail[i][j]);
      _Pragma("unroll") for (uint i = 0; i < MR; ++i)
          _Pragma("unroll") for (uint j = 0; j < NR; ++j)
              if (mt + i < m1 && nt + j < n1)
                  GEMM_STORE(C + c_off + (size_t)(mt + i) * ldc + nt + j,
                             lane_sum(acc[i][j]) + tail[i][j]);
    }
}

/* nn and tn: MB rows x NV vectors of n per micro-tile; A_AT(m, k) is the
 * case's index of op(A)'s element. */
#define RETCL_GEMM_BROADCAST(NAME, A_AT)                                     \
  __kernel void NAME(GEMM_ARGS) {                                           \
    GEMM_BLOCK;                                                             \
    A += a_off;                                                             \
    B += b_off;                                                             \
    for (uint k0 = 0; k0 < K; k0 += RETCL_GEMM_KC)                          \
    for (uint mt = m0; mt < m1; mt += MB)                                   \
      for (uint nt = n0; nt < n1; nt += NV * RETCL_VW) {                    \
        uint rows[MB], width[NV];                                           \
        _Pragma("unroll") for (uint i = 0; i < MB; ++i) rows[i] =           \
            min(mt + i, m1 - 1);                                            \
        _Pragma("unroll") for (uint v = 0; v < NV; ++v) {                   \
          const uint c = nt + v * RETCL_VW;                                 \
          width[v] = c < n1 ? min((uint)RETCL_VW, n1 - c) : 0u;             \
        }                                                                   \
        vecf acc[MB][NV];                                                   \
        _Pragma("unroll") for (uint i = 0; i < MB; ++i)                     \
            _Pragma("unroll") for (uint v = 0; v < NV; ++v) acc[i][v] =     \
                (vecf)(0.0f);                                               \
        const uint k1 = min(K, k0 + RETCL_GEMM_KC);                         \
        for (uint k = k0; k < k1; ++k) {                                    \
          vecf bv[NV];                                                      \
          _Pragma("unroll") for (uint v = 0; v < NV; ++v) bv[v] =           \
              width[v] == RETCL_VW                                          \
                  ? VLOAD(0, B + GEMM_B_NN(k, nt + v * RETCL_VW))           \
                  : (width[v] ? load_block(B + GEMM_B_NN(k, nt + v * RETCL_VW), \
                                           width[v])                        \
                              : (vecf)(0.0f));                              \
          _Pragma("unroll") for (uint i = 0; i < MB; ++i) {                 \
            const vecf ai = (vecf)(A[A_AT(rows[i], k)]);                    \
            _Pragma("unroll") for (uint v = 0; v < NV; ++v) acc[i][v] =     \
                fma(ai, bv[v], acc[i][v]);                                  \
          }                                                                 \
        }                                                                   \
        _Pragma("unroll") for (uint i = 0; i < MB; ++i) {                   \
          if (mt + i >= m1) break;                                          \
          _Pragma("unroll") for (uint v = 0; v < NV; ++v) {                 \
            if (!width[v]) continue;                                        \
            __global float *c =                                             \
                C + c_off + (size_t)(mt + i) * ldc + nt + v * RETCL_VW;     \
            float out[RETCL_VW];                                            \
            VSTORE(acc[i][v], 0, out);                                      \
            for (uint l = 0; l < width[v]; ++l)                             \
              GEMM_STORE_PART(k0 == 0, c + l, out[l]);                      \
          }                                                                 \
        }                                                                   \
      }                                                                     \
  }

RETCL_GEMM_BROADCAST(retcl_gemm_nn, GEMM_A_NN)
RETCL_GEMM_BROADCAST(retcl_gemm_tn, GEMM_A_TN)

#undef MR
#undef NR
#undef NV
#undef MB

#else /* GPU access pattern */

#define T (RETCL_GEMM_WG * RETCL_GEMM_WPT)
#define TK RETCL_GEMM_TK
#define WG RETCL_GEMM_WG
#define WPT RETCL_GEMM_WPT

/* One tile of outputs per work-group; A_AT and B_AT give the case's
 * indices, A_M_FAST / B_N_FAST whether m (n) is the contiguous dimension of
 * A (B) in global memory, so the staging loads run along it. */
#define RETCL_GEMM_TILED(NAME, A_AT, B_AT, A_M_FAST, B_N_FAST)                \
  __kernel void NAME(GEMM_ARGS) {                                            \
    __local float as[TK][T + 1], bs[TK][T + 1];                              \
    const uint lx = get_local_id(0), ly = get_local_id(1);                   \
    const uint lid = ly * WG + lx;                                           \
    const uint n_base = get_group_id(0) * T, m_base = get_group_id(1) * T;   \
    A += a_off;                                                              \
    B += b_off;                                                              \
    float acc[WPT][WPT];                                                     \
    _Pragma("unroll") for (uint i = 0; i < WPT; ++i)                         \
        _Pragma("unroll") for (uint j = 0; j < WPT; ++j) acc[i][j] = 0.0f;   \
    for (uint k0 = 0; k0 < K; k0 += TK) {                                    \
      /* T * TK values of each operand, WG * WG items: each loads a few,     \
       * consecutive items along the contiguous dimension. */                \
      for (uint e = lid; e < T * TK; e += WG * WG) {                         \
        const uint r = A_M_FAST ? e % T : e / TK,                            \
                   kk = A_M_FAST ? e / T : e % TK;                           \
        const uint m = m_base + r, k = k0 + kk;                              \
        as[kk][r] = m < M && k < K ? A[A_AT(m, k)] : 0.0f;                   \
        const uint c = B_N_FAST ? e % T : e / TK,                            \
                   kb = B_N_FAST ? e / T : e % TK;                           \
        const uint n = n_base + c, kn = k0 + kb;                             \
        bs[kb][c] = n < N && kn < K ? B[B_AT(kn, n)] : 0.0f;                 \
      }                                                                      \
      barrier(CLK_LOCAL_MEM_FENCE);                                          \
      for (uint kk = 0; kk < TK; ++kk) {                                     \
        float bv[WPT];                                                       \
        _Pragma("unroll") for (uint j = 0; j < WPT; ++j) bv[j] =             \
            bs[kk][lx + j * WG];                                             \
        _Pragma("unroll") for (uint i = 0; i < WPT; ++i) {                   \
          const float av = as[kk][ly + i * WG];                              \
          _Pragma("unroll") for (uint j = 0; j < WPT; ++j) acc[i][j] =       \
              fma(av, bv[j], acc[i][j]);                                     \
        }                                                                    \
      }                                                                      \
      barrier(CLK_LOCAL_MEM_FENCE);                                          \
    }                                                                        \
    _Pragma("unroll") for (uint i = 0; i < WPT; ++i) {                       \
      const uint m = m_base + ly + i * WG;                                   \
      _Pragma("unroll") for (uint j = 0; j < WPT; ++j) {                     \
        const uint n = n_base + lx + j * WG;                                 \
        if (m < M && n < N)                                                  \
          GEMM_STORE(C + c_off + (size_t)m * ldc + n, acc[i][j]);            \
      }                                                                      \
    }                                                                        \
  }

RETCL_GEMM_TILED(retcl_gemm_nt, GEMM_A_NT, GEMM_B_NT, 0, 0)
RETCL_GEMM_TILED(retcl_gemm_nn, GEMM_A_NN, GEMM_B_NN, 0, 1)
RETCL_GEMM_TILED(retcl_gemm_tn, GEMM_A_TN, GEMM_B_TN, 1, 1)

#undef T
#undef TK
#undef WG
#undef WPT

#endif
