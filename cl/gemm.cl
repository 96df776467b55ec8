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

/* BT: the element type of B: RETCL_WT (a weight, stored 16-bit in the
 * 16-bit variants) for nt, float for nn and tn. */
#define GEMM_ARGS_B(BT)                                                     \
  uint M, uint N, uint K, float alpha, __global const float *A, uint a_off, \
      uint lda, __global const BT *B, uint b_off, uint ldb, float beta,     \
      __global float *C, uint c_off, uint ldc
#define GEMM_ARGS GEMM_ARGS_B(float)

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

__kernel void retcl_gemm_nt(GEMM_ARGS_B(RETCL_WT)) {
  GEMM_BLOCK;
  A += a_off;
  B += b_off;
  for (uint mt = m0; mt < m1; mt += MR)
    for (uint nt = n0; nt < n1; nt += NR) {
      /* Rows past the block's end repeat its last row: computed, never
       * stored, and always inside the buffers. */
      __global const float *a[MR];
      __global const RETCL_WT *b[NR];
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
            RETCL_VLOAD_W(b[j] + k);
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
                fma(a[i][k], RETCL_LOAD_W(b[j], k), tail[i][j]);
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
#define RETCL_GEMM_TILED(NAME, BT, LOAD_B, A_AT, B_AT, A_M_FAST, B_N_FAST)    \
  __kernel void NAME(GEMM_ARGS_B(BT)) {                                      \
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
        bs[kb][c] = n < N && kn < K ? LOAD_B(B, B_AT(kn, n)) : 0.0f; \
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

/* B's loads by its element type (a weight's for nt). */
#define GEMM_LOAD_F32(p, i) ((p)[i])
RETCL_GEMM_TILED(retcl_gemm_nt, RETCL_WT, RETCL_LOAD_W, GEMM_A_NT, GEMM_B_NT, 0, 0)
RETCL_GEMM_TILED(retcl_gemm_nn, float, GEMM_LOAD_F32, GEMM_A_NN, GEMM_B_NN, 0, 1)
RETCL_GEMM_TILED(retcl_gemm_tn, float, GEMM_LOAD_F32, GEMM_A_TN, GEMM_B_TN, 1, 1)

#undef T
#undef TK
#undef WG
#undef WPT

#endif

/* ---- Packed panels (the cpu host path for products of gemm.pack_rows
 * rows and more; compiled in both patterns, where they are correct too).
 *
 * The unpacked kernels above read op(A) and op(B) where the caller keeps
 * them: rows ld floats apart, so a micro-tile walks a few hundred pages
 * and, for nt, sums along k in wide vectors it must add up at the end.
 * Here the host first copies a group of op(A) (gemm.mg rows x gemm.kg of
 * k) and op(B) (gemm.kg x gemm.ng columns) into panels that the
 * micro-kernel reads strictly in order:
 *   A panel p: RETCL_GEMM_MB rows,   element (i, k) at (p K + k) MB + i;
 *   B panel q: NW = NV VW columns,   element (k, j) at (q K + k) NW + j;
 * rows and columns past the operand are zeros, so the micro-kernel has no
 * remainders but at its stores. Each k broadcasts MB values of the A
 * panel against NV vectors of the B panel (the same MB x NV tile as nn
 * and tn), for every case. */

#define PANEL_MB RETCL_GEMM_MB
#define PANEL_NW (RETCL_GEMM_NV * RETCL_VW)

/* Transposing copies go through a VW x VW tile in private memory: VW
 * rows are read a vector at a time and the tile's columns written out, so
 * every global read and write is a whole vector (a scalar copy measured
 * 1-1.4 G floats/s on PoCL, 2-5x slower than this). rows[i] points at row
 * i of the source (VW weights from there are read, widened to fp32: the
 * panels are fp32 whatever the weights' storage); out + i VW receives
 * column i of the tile, for i < VW. */
inline void transpose_tile(__global const RETCL_WT *const rows[RETCL_VW],
                           __global float *out, uint out_stride) {
  float t[RETCL_VW][RETCL_VW];
  _Pragma("unroll") for (uint i = 0; i < RETCL_VW; ++i)
      VSTORE(RETCL_VLOAD_W(rows[i]), 0, t[i]);
  _Pragma("unroll") for (uint k = 0; k < RETCL_VW; ++k) {
    float col[RETCL_VW];
    _Pragma("unroll") for (uint i = 0; i < RETCL_VW; ++i) col[i] = t[i][k];
    VSTORE(VLOAD(0, col), 0, out + (size_t)k * out_stride);
  }
}

/* op(A)'s rows [0, rows) x k [0, depth) -> panels of MB rows. A
 * work-item packs RETCL_GEMM_A_PANELS panels (at least VW rows), so that a
 * stored-transposed A (tn), read along m, gives each item whole cache
 * lines (one panel per item measured 1 G floats/s, lines shared between
 * items). A points at op(A)(0, 0) of the group; a_trans: A is stored
 * [k][m] (tn) rather than [m][k]. */
#define RETCL_GEMM_A_PANELS ((RETCL_VW + PANEL_MB - 1) / PANEL_MB)
__kernel void retcl_gemm_pack_a(uint rows, uint depth, uint a_trans,
                                __global const float *A, uint a_off,
                                uint lda, __global float *Ap, uint ap_off) {
  const uint p0 = get_global_id(0) * RETCL_GEMM_A_PANELS;
  if (p0 * PANEL_MB >= rows) return;
  const uint panels = min((uint)RETCL_GEMM_A_PANELS,
                          (rows + PANEL_MB - 1) / PANEL_MB - p0);
  A += a_off;
  __global float *out = Ap + ap_off + (size_t)p0 * depth * PANEL_MB;
  const uint m0 = p0 * PANEL_MB;
  if (a_trans && panels * PANEL_MB == RETCL_VW && m0 + RETCL_VW <= rows) {
    /* A whole vector of m per k, dealt out to the panels. */
    for (uint k = 0; k < depth; ++k) {
      float t[RETCL_VW];
      VSTORE(VLOAD(0, A + (size_t)k * lda + m0), 0, t);
      _Pragma("unroll") for (uint g = 0; g < RETCL_GEMM_A_PANELS; ++g)
          _Pragma("unroll") for (uint i = 0; i < PANEL_MB; ++i)
              out[((size_t)g * depth + k) * PANEL_MB + i] = t[g * PANEL_MB + i];
    }
  } else if (a_trans) {
    for (uint k = 0; k < depth; ++k) {
      __global const float *src = A + (size_t)k * lda + m0;
      for (uint g = 0; g < panels; ++g)
        _Pragma("unroll") for (uint i = 0; i < PANEL_MB; ++i)
            out[((size_t)g * depth + k) * PANEL_MB + i] =
                m0 + g * PANEL_MB + i < rows ? src[g * PANEL_MB + i] : 0.0f;
    }
  } else {
    uint k_done = 0;
    if (!a_trans && panels * PANEL_MB == RETCL_VW && m0 + RETCL_VW <= rows) {
      /* VW rows x VW k through a private tile, written out panel-major. */
      k_done = depth / RETCL_VW * RETCL_VW;
      for (uint k0 = 0; k0 < k_done; k0 += RETCL_VW) {
        float t[RETCL_VW][RETCL_VW];
        _Pragma("unroll") for (uint r = 0; r < RETCL_VW; ++r)
            VSTORE(VLOAD(0, A + (size_t)(m0 + r) * lda + k0), 0, t[r]);
        _Pragma("unroll") for (uint g = 0; g < RETCL_GEMM_A_PANELS; ++g) {
          __global float *o = out + ((size_t)g * depth + k0) * PANEL_MB;
          _Pragma("unroll") for (uint kk = 0; kk < RETCL_VW; ++kk)
              _Pragma("unroll") for (uint i = 0; i < PANEL_MB; ++i)
                  o[kk * PANEL_MB + i] = t[g * PANEL_MB + i][kk];
        }
      }
    }
    for (uint g = 0; g < panels; ++g)
      _Pragma("unroll") for (uint i = 0; i < PANEL_MB; ++i) {
        const uint m = m0 + g * PANEL_MB + i;
        __global const float *src = A + (size_t)min(m, rows - 1) * lda;
        __global float *o = out + (size_t)g * depth * PANEL_MB + i;
        for (uint k = k_done; k < depth; ++k)
          o[(size_t)k * PANEL_MB] = m < rows ? src[k] : 0.0f;
      }
  }
}

/* op(B)'s k [0, depth) x columns [0, cols) -> panels of NW columns; one
 * work-item per panel. B points at op(B)(0, 0) of the group; b_trans: B is
 * stored [n][k] (nt, a weight matrix) rather than [k][n]. */
__kernel void retcl_gemm_pack_b(uint cols, uint depth, uint b_trans,
                                __global const RETCL_WT *B, uint b_off,
                                uint ldb, __global float *Bp, uint bp_off) {
  const uint q = get_global_id(0);
  if (q * PANEL_NW >= cols) return;
  B += b_off;
  __global float *out = Bp + bp_off + (size_t)q * depth * PANEL_NW;
  const uint n0 = q * PANEL_NW, live = min((uint)PANEL_NW, cols - n0);
  if (b_trans) {
    /* Column j of the panel is row n0 + j of B, read along k, VW x VW
     * tiles at a time; the last rows and k past the end are zeros. */
    const uint k_full = depth / RETCL_VW * RETCL_VW;
    for (uint v = 0; v < RETCL_GEMM_NV; ++v) {
      __global const RETCL_WT *rows[RETCL_VW];
      _Pragma("unroll") for (uint i = 0; i < RETCL_VW; ++i) rows[i] =
          B + (size_t)min(n0 + v * RETCL_VW + i, cols - 1) * ldb;
      const int full = n0 + (v + 1) * RETCL_VW <= cols;
      for (uint k0 = 0; k0 < depth; k0 += RETCL_VW) {
        __global float *o = out + (size_t)k0 * PANEL_NW + v * RETCL_VW;
        if (full && k0 < k_full) {
          __global const RETCL_WT *at[RETCL_VW];
          _Pragma("unroll") for (uint i = 0; i < RETCL_VW; ++i) at[i] =
              rows[i] + k0;
          transpose_tile(at, o, PANEL_NW);
        } else {
          for (uint k = k0; k < min(depth, k0 + RETCL_VW); ++k)
            for (uint i = 0; i < RETCL_VW; ++i)
              o[(size_t)(k - k0) * PANEL_NW + i] =
                  n0 + v * RETCL_VW + i < cols ? RETCL_LOAD_W(rows[i], k)
                                               : 0.0f;
        }
      }
    }
  } else if (live == PANEL_NW) {
    for (uint k = 0; k < depth; ++k)
      _Pragma("unroll") for (uint v = 0; v < RETCL_GEMM_NV; ++v)
          VSTORE(RETCL_VLOAD_W(B + (size_t)k * ldb + n0 + v * RETCL_VW), 0,
                 out + (size_t)k * PANEL_NW + v * RETCL_VW);
  } else {
    for (uint k = 0; k < depth; ++k)
      for (uint j = 0; j < PANEL_NW; ++j)
        out[(size_t)k * PANEL_NW + j] =
            j < live ? RETCL_LOAD_W(B, (size_t)k * ldb + n0 + j) : 0.0f;
  }
}

/* C[M, N] = alpha Ap Bp + beta C over one group (the host offsets C to its
 * corner). A work-item owns RETCL_GEMM_BM x RETCL_GEMM_BN outputs, rounded
 * up to whole panels; its k runs in blocks of RETCL_GEMM_KC, outermost,
 * and within a block each B panel (KC x NW floats) stays in the core's
 * nearest cache while the block's A panels pass it. */
__kernel void retcl_gemm_panels(uint M, uint N, uint K, float alpha,
                                __global const float *Ap, uint ap_off,
                                __global const float *Bp, uint bp_off,
                                float beta, __global float *C, uint c_off,
                                uint ldc) {
  const uint pm = (RETCL_GEMM_BM + PANEL_MB - 1) / PANEL_MB,
             pn = (RETCL_GEMM_BN + PANEL_NW - 1) / PANEL_NW;
  const uint p0 = get_global_id(1) * pm, q0 = get_global_id(0) * pn;
  const uint p_end = min(p0 + pm, (M + PANEL_MB - 1) / PANEL_MB),
             q_end = min(q0 + pn, (N + PANEL_NW - 1) / PANEL_NW);
  Ap += ap_off;
  Bp += bp_off;
  C += c_off;
  for (uint k0 = 0; k0 < K; k0 += RETCL_GEMM_KC) {
    const uint kn = min((uint)RETCL_GEMM_KC, K - k0);
    for (uint q = q0; q < q_end; ++q) {
      __global const float *bp = Bp + ((size_t)q * K + k0) * PANEL_NW;
      for (uint p = p0; p < p_end; ++p) {
        __global const float *ap = Ap + ((size_t)p * K + k0) * PANEL_MB;
        vecf acc[PANEL_MB][RETCL_GEMM_NV];
        _Pragma("unroll") for (uint i = 0; i < PANEL_MB; ++i)
            _Pragma("unroll") for (uint v = 0; v < RETCL_GEMM_NV; ++v)
                acc[i][v] = (vecf)(0.0f);
        for (uint k = 0; k < kn; ++k) {
          vecf bv[RETCL_GEMM_NV];
          _Pragma("unroll") for (uint v = 0; v < RETCL_GEMM_NV; ++v) bv[v] =
              VLOAD(v, bp + (size_t)k * PANEL_NW);
          _Pragma("unroll") for (uint i = 0; i < PANEL_MB; ++i) {
            const vecf ai = (vecf)(ap[(size_t)k * PANEL_MB + i]);
            _Pragma("unroll") for (uint v = 0; v < RETCL_GEMM_NV; ++v)
                acc[i][v] = fma(ai, bv[v], acc[i][v]);
          }
        }
        const uint m0 = p * PANEL_MB, n0 = q * PANEL_NW;
        _Pragma("unroll") for (uint i = 0; i < PANEL_MB; ++i) {
          if (m0 + i >= M) break;
          _Pragma("unroll") for (uint v = 0; v < RETCL_GEMM_NV; ++v) {
            const uint c0 = n0 + v * RETCL_VW;
            if (c0 >= N) break;
            __global float *c = C + (size_t)(m0 + i) * ldc + c0;
            if (c0 + RETCL_VW <= N) {
              /* As GEMM_STORE_PART, a vector at a time. */
              const vecf part = (vecf)(alpha) * acc[i][v];
              VSTORE(k0 > 0         ? VLOAD(0, c) + part
                     : beta == 0.0f ? part
                                    : fma((vecf)(beta), VLOAD(0, c), part),
                     0, c);
            } else {
              float out[RETCL_VW];
              VSTORE(acc[i][v], 0, out);
              const uint w = min((uint)RETCL_VW, N - c0);
              for (uint l = 0; l < w; ++l)
                GEMM_STORE_PART(k0 == 0, c + l, out[l]);
            }
          }
        }
      }
    }
  }
}

#undef PANEL_MB
#undef PANEL_NW
#undef RETCL_GEMM_A_PANELS
