/* retention_grad.cl - the backward of retention (docs/design.md §1.7,
 * "Retention backward").
 *
 * Every form is the raw one of §1.3 with a per-row weight w_t on dO
 * (dO'_t = w_t dO_t: the raw form's scale, or the torchscale factor of
 * §1.4, held constant), the initial state scaled by α and the gradient of
 * the final state by β (1 in the raw form). Per (b, h), segment by segment
 * (a chunk, or the whole sequence for the parallel algorithm), with R the
 * raw state before the segment and dR the gradient of the one after it:
 *
 *   dq_i = Σ_{j≤i} γ^(i-j) (dO'_i·v_j) k_j  +  γ^(i+1) dO'_i Rᵀ
 *   dk_j = Σ_{i≥j} γ^(i-j) (dO'_i·v_j) q_i  +  γ^(L-1-j) v_j dRᵀ
 *   dv_j = Σ_{i≥j} γ^(i-j) (q_i·k_j) dO'_i  +  γ^(L-1-j) k_j dR
 *
 * Kernels, in the order the host runs them:
 *   panels       Q, V and dO' of each segment transposed into tiles of KT
 *                tokens ([D][KT]), so a score tile is a broadcast product
 *                (a value of one row times a vector of KT tokens);
 *   chunk_state  per chunk Uᵀ = Σ_j γ^(L-1-j) v_jᵀ k_j (the forward's
 *                chunk state, transposed) or W = Σ_i γ^(i+1) q_iᵀ dO'_i;
 *   scan_fwd     Uᵀ_c -> Rᵀ_c, the state before chunk c (from α S_0);
 *   row_factor   torchscale: the per-row factors w_t, recomputed from Q
 *                and K exactly as the forward computes them;
 *   scan_bwd     W_c -> dR_{c+1} (and its transpose), walking the chunks
 *                backwards from β dS_T; dS_0 = α dR_0;
 *   dq           dq rows, query blocks against key tiles (RETCL_RG_RB rows
 *                per register tile on CPUs, a work-group of rows on GPUs);
 *   dkdv         dk and dv rows, key blocks against query tiles;
 *   rec_dq       recurrent algorithm: dq_t = dO'_t S_{t+1}ᵀ by a forward
 *                sweep of the state (rows of it per work-item);
 *   rec_dkdv     G_{t+1} = γ G_{t+2} + q_tᵀ dO'_t by a reverse sweep, with
 *                dk_t = v_t G_{t+1}ᵀ and dv_t = k_t G_{t+1} (a partial sum
 *                per block of state rows when there are several);
 *   reduce       those partials summed in a fixed order.
 * Nothing is accumulated with atomics: every output element is written by
 * one work-item, in one fixed order, so two runs are bitwise equal.
 *
 * Scratch (the host's workspace) is one buffer `work`; each region is
 * named by its offset in floats. */

#if !defined(RETCL_CPU) || !defined(RETCL_VW) || !defined(RETCL_RG_RB) || \
    !defined(RETCL_RG_NJ) || !defined(RETCL_RG_KB)
#error "retention_grad.cl needs the retention_grad record's definitions"
#endif

#define RG_RB RETCL_RG_RB
#define RG_NJ RETCL_RG_NJ
#define RG_KB RETCL_RG_KB
/* Tokens per score tile: RETCL_RG_NJ vectors. */
#define RG_KT (RETCL_RG_NJ * RETCL_VW)

#if RETCL_VW == 16
#define RG_IOTA                                                             \
  ((vecf)(0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f, 8.0f, 9.0f,     \
          10.0f, 11.0f, 12.0f, 13.0f, 14.0f, 15.0f))
#else
#define RG_IOTA ((vecf)(0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f))
#endif

/* A tensor argument: buffer, element offset, batch/token/head strides. */
#define RG_IN(P, p) \
  __global const float *P, uint p##_off, uint p##_sb, uint p##_st, uint p##_sh
#define RG_OUT(P, p) \
  __global float *P, uint p##_off, uint p##_sb, uint p##_st, uint p##_sh
/* A tensor argument one access pattern does not read. */
#define RG_UNUSED(P, p) \
  ((void)(P), (void)p##_off, (void)p##_sb, (void)p##_st, (void)p##_sh)
#define RG_ROW(P, p, b, t, h) \
  ((P) + RETCL_AT(p##_off, p##_sb, p##_st, p##_sh, (b), (t), (h)))

/* γ^n as exp(x), x = n log γ, with powers below the smallest normal float
 * (2^-126) flushed to 0: they weigh less than 1e-38 of the terms they join,
 * and denormal operands cost the CPU a slow path per instruction (a long
 * parallel segment has many). */
inline vecf rg_pow(vecf x) {
  return select(exp(x), (vecf)(0.0f), isless(x, (vecf)(-87.3f)));
}
inline float rg_pow1(float x) { return x < -87.3f ? 0.0f : exp(x); }

/* The weight of output row t of head bh: the torchscale factor or the raw
 * form's scale. */
inline float rg_weight(__global const float *work, uint f_off, int has_F,
                       float w_scale, uint bh, uint T, uint t) {
  return has_F ? work[f_off + bh * T + t] : w_scale;
}

/* Where tile `tile` of segment bhs starts in a panel region of rows of D. */
inline size_t rg_panel(uint p_off, uint bhs, uint ntile, uint tile, uint D) {
  return p_off + ((size_t)bhs * ntile + tile) * D * RG_KT;
}

/* The broadcast micro-kernel of every product here: acc[r][h] (r < NR,
 * h < 2) += A(r, e) * W(e) * B_h(e) for e < ne, where B_h(e) is the h-th
 * block of VW floats of the row at bp + e * ldb, of live widths w0 and w1
 * (w1 may be 0: one block). Per e: 2 vector loads and NR broadcast values
 * for 2 NR fmas, all accumulators in registers. A(r, e) and W(e) are
 * macros of the caller: a row value (from a panel or a private tile, one
 * base register and constant displacements) and a weight per e. */
/* The generic form: any widths. */
#define RG_PAIR_ANY(acc, NR, ne, A, W, bp, ldb, w0, w1)                      \
  for (uint e_ = 0; e_ < (ne); ++e_) {                                       \
    __global const float *b_ = (bp) + (size_t)e_ * (ldb);                    \
    const vecf b0_ = W(e_) * load_block(b_, (w0));                           \
    const vecf b1_ = W(e_) * load_block(b_ + RETCL_VW, (w1));                \
    _Pragma("unroll") for (uint r_ = 0; r_ < (NR); ++r_) {                   \
      const vecf a_ = (vecf)(A(r_, e_));                                     \
      acc[r_][0] = fma(a_, b0_, acc[r_][0]);                                 \
      acc[r_][1] = fma(a_, b1_, acc[r_][1]);                                 \
    }                                                                        \
  }
#if RETCL_CPU
/* CPUs: whole vectors without the width tests when both blocks are full. */
#define RG_PAIR(acc, NR, ne, A, W, bp, ldb, w0, w1)                          \
  do {                                                                       \
    if ((w0) == RETCL_VW && (w1) == RETCL_VW) {                              \
      for (uint e_ = 0; e_ < (ne); ++e_) {                                   \
        __global const float *b_ = (bp) + (size_t)e_ * (ldb);                \
        const vecf b0_ = W(e_) * VLOAD(0, b_), b1_ = W(e_) * VLOAD(1, b_);   \
        _Pragma("unroll") for (uint r_ = 0; r_ < (NR); ++r_) {               \
          const vecf a_ = (vecf)(A(r_, e_));                                 \
          acc[r_][0] = fma(a_, b0_, acc[r_][0]);                             \
          acc[r_][1] = fma(a_, b1_, acc[r_][1]);                             \
        }                                                                    \
      }                                                                      \
    } else {                                                                 \
      RG_PAIR_ANY(acc, NR, ne, A, W, bp, ldb, w0, w1);                       \
    }                                                                        \
  } while (0)
#else
/* GPUs: one form (each variant costs the driver another compilation). */
#define RG_PAIR(acc, NR, ne, A, W, bp, ldb, w0, w1)                          \
  do {                                                                       \
    RG_PAIR_ANY(acc, NR, ne, A, W, bp, ldb, w0, w1);                         \
  } while (0)
#endif

/* Column pairs: c0 steps by 2 VW; w0, w1 the live widths (w1 may be 0). */
#define RG_PAIRS_BEGIN(D)                                                    \
  for (uint c0 = 0; c0 < (D); c0 += 2 * RETCL_VW) {                          \
    const uint w0 = min((uint)RETCL_VW, (D) - c0);                           \
    const uint w1 = c0 + RETCL_VW < (D) ? min((uint)RETCL_VW, (D) - c0 - RETCL_VW) : 0u;
#define RG_PAIRS_END }
#define RG_ZERO(acc, NR)                                                     \
  _Pragma("unroll") for (uint r_ = 0; r_ < (NR); ++r_) acc[r_][0] = acc[r_][1] = (vecf)(0.0f)
/* Rows r < rows of a pair of blocks from / to row p + r * st, c0. */
#define RG_LOAD_ROWS(acc, NR, p, st, rows)                                   \
  _Pragma("unroll") for (uint r_ = 0; r_ < (NR); ++r_) {                     \
    acc[r_][0] = r_ < (rows) ? load_block((p) + r_ * (st) + c0, w0) : (vecf)(0.0f); \
    acc[r_][1] = r_ < (rows) ? load_block((p) + r_ * (st) + c0 + RETCL_VW, w1) : (vecf)(0.0f); \
  }
#define RG_STORE_ROWS(acc, p, st, rows, f)                                   \
  for (uint r_ = 0; r_ < (rows); ++r_) {                                     \
    store_block((p) + r_ * (st) + c0, (f) * acc[r_][0], w0);                 \
    if (w1) store_block((p) + r_ * (st) + c0 + RETCL_VW, (f) * acc[r_][1], w1); \
  }
#define RG_ONE(e) 1.0f
/* Register-tile rows scaled in place: acc[r][h] *= f for r < NR. */
#define RG_SCALE(acc, NR, f)                                                 \
  _Pragma("unroll") for (uint r_ = 0; r_ < (NR); ++r_) {                     \
    acc[r_][0] *= (f);                                                       \
    acc[r_][1] *= (f);                                                       \
  }

/* The products of the CPU pattern's dq and dkdv over a block of RB output
 * rows (row r at p + r st, rows < RB of them live), column pair by column
 * pair of the row's D floats; A(r, e) a value of row r as in RG_PAIR (a
 * macro of the caller, hence macros here too).
 * RG_ROWS_STATE: the cross term, row r = f[r] Σ_{e<n} A(r, e) M_e with M_e
 * the row of D floats at M + e D (a state), or 0 without `has`; it
 * initialises the rows. RG_ROWS_ADD: row r += Σ_{e<n} A(r, e) Y_e with Y_e
 * the row at y + e ldy (a tile of scores times its tokens' rows). */
#define RG_ROWS_STATE(p, st, rows, f, D, has, n, A, M)                       \
  do {                                                                       \
    RG_PAIRS_BEGIN(D)                                                        \
      vecf acc[RG_RB][2];                                                    \
      RG_ZERO(acc, RG_RB);                                                   \
      if (has) RG_PAIR(acc, RG_RB, n, A, RG_ONE, (M) + c0, (D), w0, w1);     \
      RG_STORE_ROWS(acc, p, st, rows, (f)[r_]);                              \
    RG_PAIRS_END                                                             \
  } while (0)
#define RG_ROWS_ADD(p, st, rows, D, n, A, y, ldy)                            \
  do {                                                                       \
    RG_PAIRS_BEGIN(D)                                                        \
      vecf a2[RG_RB][2];                                                     \
      RG_LOAD_ROWS(a2, RG_RB, p, st, rows);                                  \
      RG_PAIR(a2, RG_RB, n, A, RG_ONE, (y) + c0, ldy, w0, w1);               \
      RG_STORE_ROWS(a2, p, st, rows, 1.0f);                                  \
    RG_PAIRS_END                                                             \
  } while (0)

/* CPUs: the unweighted scores of RB rows against the KT tokens of a panel
 * (pan: [nd][KT]), acc[r][n] = Σ_{d<nd} A(r, d) pan[d][n VW + lane], as NJ
 * vectors per row. Per d: NJ vector loads of the panel and one broadcast
 * value per row, all RB x NJ accumulators in registers (a macro, so that
 * acc stays the caller's register tile and A its accessor). */
#define RG_SCORES(acc, A, pan, nd)                                           \
  do {                                                                       \
    _Pragma("unroll") for (uint r_ = 0; r_ < RG_RB; ++r_)                    \
      _Pragma("unroll") for (uint n_ = 0; n_ < RG_NJ; ++n_)                  \
        acc[r_][n_] = (vecf)(0.0f);                                          \
    for (uint d_ = 0; d_ < (nd); ++d_) {                                     \
      vecf bv_[RG_NJ];                                                       \
      _Pragma("unroll") for (uint n_ = 0; n_ < RG_NJ; ++n_)                  \
        bv_[n_] = VLOAD(n_, (pan) + (size_t)d_ * RG_KT);                     \
      _Pragma("unroll") for (uint r_ = 0; r_ < RG_RB; ++r_) {                \
        const vecf a_ = (vecf)(A(r_, d_));                                   \
        _Pragma("unroll") for (uint n_ = 0; n_ < RG_NJ; ++n_)                \
          acc[r_][n_] = fma(a_, bv_[n_], acc[r_][n_]);                       \
      }                                                                      \
    }                                                                        \
  } while (0)

/* The decay mask of a score tile, a vector at a time: γ^(i-j) for i >= j,
 * else 0, from gap = i - j (the segment-relative query and key, as the
 * callers give them). */
inline vecf rg_mask(vecf gap, float lg) {
  return step((vecf)(0.0f), gap) * rg_pow(fmax(gap, (vecf)(0.0f)) * lg);
}

#if !RETCL_CPU
/* The GPU pattern's pieces: a work-group holds a tile of scores in local
 * memory, item lx of the gx along dimension 0 owns the column blocks
 * lx, lx + gx, ... of each output row (of D floats). */

/* One score: Σ_{d<n} x[d] pan[d KT], in order, of a row x against the
 * token of a panel at pan. */
inline float rg_panel_dot(__global const float *x, __global const float *pan,
                          uint n) {
  float s = 0.0f;
  for (uint d = 0; d < n; ++d) s = fma(x[d], pan[(size_t)d * RG_KT], s);
  return s;
}

/* The cross term that starts an output row: out = f Σ_{e<n} x[e] M_e, M_e
 * the row of D floats at M + e D (a state), or 0 without `has`. */
inline void rg_row_state(__global float *out, float f,
                         __global const float *x, __global const float *M,
                         uint n, uint D, int has, uint lx, uint gx) {
  const uint nb = (D + RETCL_VW - 1) / RETCL_VW;
  for (uint cb = lx; cb < nb; cb += gx) {
    const uint c0 = cb * RETCL_VW, nc = min((uint)RETCL_VW, D - c0);
    vecf acc = (vecf)(0.0f);
    if (has)
      for (uint e = 0; e < n; ++e)
        acc = fma((vecf)(x[e]), load_block(M + (size_t)e * D + c0, nc), acc);
    store_block(out + c0, f * acc, nc);
  }
}

/* A score tile's share of an output row: out += Σ_{e<n} sc[e] Y_e, sc the
 * row's scores (local memory), Y_e the row at y + e ldy. */
inline void rg_row_tile(__global float *out, __local const float *sc,
                        __global const float *y, uint ldy, uint n, uint D,
                        uint lx, uint gx) {
  const uint nb = (D + RETCL_VW - 1) / RETCL_VW;
  for (uint cb = lx; cb < nb; cb += gx) {
    const uint c0 = cb * RETCL_VW, nc = min((uint)RETCL_VW, D - c0);
    vecf acc = load_block(out + c0, nc);
    for (uint e = 0; e < n; ++e)
      acc = fma((vecf)(sc[e]), load_block(y + (size_t)e * ldy + c0, nc), acc);
    store_block(out + c0, acc, nc);
  }
}
#endif

/* ------------------------------------------------------------------------ */
/* panels: panel[d][j] = w_t X[t][d] for the KT tokens t = t0 + tile KT + j */
/* of a segment (zero past its end).                                        */
/* Grid cpu: (tiles, 1, B*H*n_seg); gpu: (KT, D, tiles * B*H*n_seg).        */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_grad_panels(
    RG_IN(X, x), __global float *work, uint p_off, uint f_off, int has_F,
    float w_scale, uint T, uint H, uint D, uint C, uint n_seg) {
  const uint ntile = (C + RG_KT - 1) / RG_KT;
#if RETCL_CPU
  const uint tile = get_global_id(0), bhs = get_global_id(2);
  if (tile >= ntile) return;
#else
  const uint j = get_global_id(0), d = get_global_id(1);
  const uint tile = get_global_id(2) % ntile, bhs = get_global_id(2) / ntile;
  if (j >= RG_KT || d >= D) return;
#endif
  const uint s = bhs % n_seg, bh = bhs / n_seg, b = bh / H, h = bh % H;
  const uint t0 = s * C, L = min(C, T - t0);
  __global float *pan = work + rg_panel(p_off, bhs, ntile, tile, D);
#if RETCL_CPU
  /* VW tokens x VW dims at a time through a private tile: whole vectors
   * in, whole vectors out. */
  for (uint g = 0; g < RG_NJ; ++g) {
    const uint j0 = tile * RG_KT + g * RETCL_VW;
    for (uint d0 = 0; d0 < D; d0 += RETCL_VW) {
      const uint nd = min((uint)RETCL_VW, D - d0);
      float t[RETCL_VW][RETCL_VW];
      for (uint i = 0; i < RETCL_VW; ++i) {
        vecf x = (vecf)(0.0f);
        if (j0 + i < L)
          x = rg_weight(work, f_off, has_F, w_scale, bh, T, t0 + j0 + i) *
              load_block(RG_ROW(X, x, b, t0 + j0 + i, h) + d0, nd);
        VSTORE(x, 0, t[i]);
      }
      for (uint dd = 0; dd < nd; ++dd) {
        float col[RETCL_VW];
        for (uint i = 0; i < RETCL_VW; ++i) col[i] = t[i][dd];
        VSTORE(VLOAD(0, col), 0, pan + (size_t)(d0 + dd) * RG_KT + g * RETCL_VW);
      }
    }
  }
#else
  const uint tj = tile * RG_KT + j;
  pan[(size_t)d * RG_KT + j] =
      tj < L ? rg_weight(work, f_off, has_F, w_scale, bh, T, t0 + tj) *
                   RG_ROW(X, x, b, t0 + tj, h)[d]
             : 0.0f;
#endif
}

/* torchscale's factor of a finished row i (segment-relative) from its
 * Σ_j |P_ij|: 1/(s_i m_i), s_i = sqrt(c_{i+1}), m_i = clamp(Σ/s_i, 1, 5e4)
 * (parallel, mode 1) or max(1, Σ/s_i, r) (chunkwise, mode 2), exactly as
 * cl/retention.cl's row_factor. */
inline float rg_ts_factor(int mode, float lg, uint i, float abs_sum,
                          float cross) {
  const float s_i = sqrt(decay_sum(lg, (float)(i + 1)));
  float a = abs_sum / s_i;
  if (mode == 1) a = fmin(a, 5e4f);
  return 1.0f / (s_i * fmax(a, cross));
}

/* ------------------------------------------------------------------------ */
/* row_factor: F[bh*T + t], the torchscale weight of output row t.          */
/* mode 1 (parallel), 2 (chunkwise): from the scores of the segment, Q read */
/* from its panels; mode 3 (recurrent): 1/sqrt(c_{position+t+1}).           */
/* Grid cpu: (tiles, 1, B*H*n_seg), KT rows per item; gpu: (C, 1, ...).     */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_grad_row_factor(
    RG_IN(K, k), __global const float *log_decay, uint ld_off,
    __global float *work, uint f_off, uint qt_off, uint r_off, int has_R,
    uint T, uint H, uint Dk, uint Dv, uint C, uint n_seg, int mode,
    float position) {
  const uint bhs = get_global_id(2);
  const uint s = bhs % n_seg, bh = bhs / n_seg, b = bh / H, h = bh % H;
  const uint t0 = s * C, L = min(C, T - t0);
  const uint ntile = (C + RG_KT - 1) / RG_KT;
  const float lg = log_decay[ld_off + h];
#if RETCL_CPU
  const uint i0 = get_global_id(0) * RG_KT;
  const uint ni = i0 < L ? min((uint)RG_KT, L - i0) : 0u;
#else
  const uint i0 = get_global_id(0);
  const uint ni = i0 < L ? 1u : 0u;
#endif
  if (ni == 0) return;
  __global float *F = work + f_off + (size_t)bh * T + t0 + i0;
  if (mode == 3) {
    for (uint i = 0; i < ni; ++i)
      F[i] = rsqrt(decay_sum(lg, position + (float)(t0 + i0 + i + 1)));
    return;
  }
  /* r: the largest column abs-sum of the raw state before the chunk,
   * divided by c_C (the rows of Rᵀ are R's columns). */
  float cross = 1.0f;
  if (mode == 2 && has_R) {
    __global const float *Rt = work + r_off + (size_t)bhs * Dk * Dv;
    float col_max = 0.0f;
    for (uint v = 0; v < Dv; ++v) {
      float col = 0.0f;
      for (uint kk = 0; kk < Dk; ++kk) col += fabs(Rt[(size_t)v * Dk + kk]);
      col_max = fmax(col_max, col);
    }
    cross = fmax(1.0f, col_max / decay_sum(lg, (float)C));
  }
#if RETCL_CPU
  /* Σ_j |P_ij| for the KT rows as NJ vectors: RB keys at a time, each key
   * row's values broadcast against the panel's vectors of queries. */
  __global const float *qp = work + rg_panel(qt_off, bhs, ntile, i0 / RG_KT, Dk);
  vecf absv[RG_NJ];
#pragma unroll
  for (uint n = 0; n < RG_NJ; ++n) absv[n] = (vecf)(0.0f);
  const uint last = i0 + ni;
  for (uint jb = 0; jb < last; jb += RG_RB) {
    __global const float *krow[RG_RB];
#pragma unroll
    for (uint r = 0; r < RG_RB; ++r)
      krow[r] = RG_ROW(K, k, b, t0 + min(jb + r, last - 1), h);
    vecf acc[RG_RB][RG_NJ];
#define RG_A_KR(r, e) krow[r][e]
    RG_SCORES(acc, RG_A_KR, qp, Dk);
#undef RG_A_KR
#pragma unroll
    for (uint r = 0; r < RG_RB; ++r) {
      if (jb + r >= last) break;
#pragma unroll
      for (uint n = 0; n < RG_NJ; ++n) {
        const vecf gap = (float)i0 - (float)(jb + r) + (float)(n * RETCL_VW) + RG_IOTA;
        absv[n] = fma(fabs(acc[r][n]), rg_mask(gap, lg), absv[n]);
      }
    }
  }
  float a[RG_KT];
#pragma unroll
  for (uint n = 0; n < RG_NJ; ++n) VSTORE(absv[n], 0, a + n * RETCL_VW);
  for (uint i = 0; i < ni; ++i)
    F[i] = rg_ts_factor(mode, lg, i0 + i, a[i], cross);
#else
  __global const float *qp =
      work + rg_panel(qt_off, bhs, ntile, i0 / RG_KT, Dk) + i0 % RG_KT;
  float abs_sum = 0.0f;
  for (uint j = 0; j <= i0; ++j) {
    const float p = rg_panel_dot(RG_ROW(K, k, b, t0 + j, h), qp, Dk);
    abs_sum += fabs(p) * rg_pow1((float)(i0 - j) * lg);
  }
  F[0] = rg_ts_factor(mode, lg, i0, abs_sum, cross);
#endif
}


/* α: the initial state enters as α S_0 (torchscale: S_0 is Ŝ_p = raw /
 * sqrt(c_p)); β: the final state leaves as β S_T. Both 1 in the raw form. */
inline float rg_alpha(int ts_state, float lg, float position) {
  return ts_state ? sqrt(decay_sum(lg, position)) : 1.0f;
}
inline float rg_beta(int ts_state, float lg, float n) {
  return ts_state ? rsqrt(decay_sum(lg, n)) : 1.0f;
}

/* Tokens per tile of the state sweep: the whole chunk on CPUs (its
 * weights once, every register tile walking all its tokens), a score
 * tile's worth on GPUs (private memory there is scarce). */
#if RETCL_CPU
#define RG_WT 1024 /* RETCL_MAX_CHUNK */
#else
#define RG_WT RG_KT
#endif

/* ------------------------------------------------------------------------ */
/* states: every chunk's state, computed and scanned in one sweep.          */
/* mode 0 (rows v of Dx = Dv, columns k of Dy = Dk), chunks in order:       */
/*   slot_c <- Rᵀ_c, the raw state before chunk c (transposed), where       */
/*   R_0 = α S_0 (or 0) and R_{c+1} = γ^L R_c + Σ_j γ^(L-1-j) k_jᵀ v_j.    */
/* mode 1 (rows k of Dx = Dk, columns v of Dy = Dv), chunks from the last:  */
/*   slot_c <- G_{c+1} = dR_{c+1} (and its transpose at st_off), where      */
/*   G_Nc = β dS_T (or 0) and G_c = γ^L G_{c+1} + Σ_i γ^(i+1) w_i q_iᵀ dO_i; */
/*   d_state_in = α G_0 (it may be d_state_out: each item reads its         */
/*   elements before it writes them).                                       */
/* add = 0 leaves out the chunks' own sums (the parallel algorithm needs    */
/* only the ends). An item owns `pairs` pairs of column blocks from         */
/* c0 = gid0 pairs 2 VW and rows [xa, xb) (all rows on CPUs, so each row of */
/* X and Y streams through one item per column group), in register tiles   */
/* of KB rows x 2 VW; the state it carries from chunk to chunk goes through */
/* the slot it has just written.                                            */
/* Grid: (ceil(Dy / (2VW pairs)), ceil(Dx / x_rows), B*H).                   */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_grad_states(
    RG_IN(X, x), RG_IN(Y, y), __global const float *log_decay, uint ld_off,
    __global float *work, uint s_off, uint st_off, uint f_off, int has_F,
    float w_scale, __global const float *S0, uint s0_off, int has_s0,
    __global float *dS_in, uint ds_in_off, int has_d_state_in, uint T, uint H,
    uint Dx, uint Dy, uint C, uint n_chunks, uint x_rows, uint pairs,
    int mode, int add, int ts_state, float position) {
  const uint ca = get_global_id(0) * pairs * 2 * RETCL_VW;
  const uint xa = get_global_id(1) * x_rows, bh = get_global_id(2);
  if (ca >= Dy || xa >= Dx) return;
  const uint cb_end = min(Dy, ca + pairs * 2 * RETCL_VW);
  const uint xb = min(Dx, xa + x_rows);
  const uint b = bh / H, h = bh % H;
  const float lg = log_decay[ld_off + h];
  const size_t state = (size_t)Dx * Dy;
  __global const float *s_start = S0 + s0_off + (size_t)bh * state;
  __global float *d_in = dS_in + ds_in_off + (size_t)bh * state;
  const float a0 = rg_alpha(ts_state, lg, position);
  const float b0 = rg_beta(ts_state, lg, position + (float)T);
  float w[RG_WT];
#define RG_A_X(r, e) xp[(size_t)(e) * x_st + (r)]
#define RG_A_XC(r, e) xp[(size_t)(e) * x_st + min((uint)(r), rows - 1)]
#define RG_W(e) w[e]
  for (uint step = 0; step < n_chunks; ++step) {
    const uint c = mode ? n_chunks - 1 - step : step;
    const uint t0 = c * C, L = min(C, T - t0);
    __global float *cur = work + s_off + ((size_t)bh * n_chunks + c) * state;
    __global float *cur_t = work + st_off + ((size_t)bh * n_chunks + c) * state;
    /* Where the next state goes: the next slot, d_state_in after the
     * first chunk in mode 1, nowhere after the last one in mode 0. */
    __global float *nxt = NULL;
    if (mode == 0 && c + 1 < n_chunks) nxt = cur + state;
    if (mode == 1 && c > 0) nxt = cur - state;
    if (mode == 1 && c == 0 && has_d_state_in) nxt = d_in;
    const vecf d = (vecf)(rg_pow1((float)L * lg));
    const uint n_tok = add && nxt ? L : 0u;
    /* Tokens in tiles of WT (their weights once per tile); at least one
     * pass, which also moves the state itself on. */
    for (uint j0 = 0; j0 == 0 || j0 < n_tok; j0 += RG_WT) {
      const uint nk = j0 < n_tok ? min((uint)RG_WT, n_tok - j0) : 0u;
      /* γ^(L-1-j) or γ^(j+1) w_j, a vector at a time (lanes past nk
       * are never read). */
      for (uint j = 0; j < nk; j += RETCL_VW) {
        const vecf e = mode == 0 ? (float)(L - 1 - j0 - j) - RG_IOTA
                                 : (float)(j0 + j + 1) + RG_IOTA;
        VSTORE(rg_pow(e * lg), 0, w + j);
      }
      if (mode == 1)
        for (uint j = 0; j < nk; ++j)
          w[j] *= rg_weight(work, f_off, has_F, w_scale, bh, T, t0 + j0 + j);
      __global const float *xbase = RG_ROW(X, x, b, t0 + j0, h);
      __global const float *ybase = RG_ROW(Y, y, b, t0 + j0, h);
      /* Column pairs outermost: a pair's slice of the Y rows (2 VW floats
       * of each token) stays in the nearest cache while every block of
       * rows passes it; the X values it broadcasts are 4x fewer bytes. */
      for (uint c0 = ca; c0 < cb_end; c0 += 2 * RETCL_VW) {
        const uint w0 = min((uint)RETCL_VW, Dy - c0);
        const uint w1 = c0 + RETCL_VW < Dy ? min((uint)RETCL_VW, Dy - c0 - RETCL_VW) : 0u;
        for (uint x0 = xa; x0 < xb; x0 += RG_KB) {
          const uint rows = min((uint)RG_KB, xb - x0);
          __global const float *xp = xbase + x0;
          vecf acc[RG_KB][2];
          if (j0 == 0) {
            /* This chunk's state: the start, or what the last step left. */
            if (step == 0) {
              RG_ZERO(acc, RG_KB);
              if (has_s0 && mode == 0) {
                /* α S_0ᵀ: S_0 is [Dk][Dv], [Dy][Dx] here. */
                for (uint r = 0; r < rows; ++r) {
                  float t[2 * RETCL_VW];
                  for (uint l = 0; l < 2 * RETCL_VW; ++l)
                    t[l] = l < w0 + w1 ? a0 * s_start[(size_t)(c0 + l) * Dx + x0 + r] : 0.0f;
                  acc[r][0] = VLOAD(0, t);
                  acc[r][1] = VLOAD(1, t);
                }
              } else if (has_s0) {
                RG_LOAD_ROWS(acc, RG_KB, s_start + (size_t)x0 * Dy, Dy, rows);
                RG_SCALE(acc, RG_KB, b0);
              }
              RG_STORE_ROWS(acc, cur + (size_t)x0 * Dy, Dy, rows, 1.0f);
            } else {
              RG_LOAD_ROWS(acc, RG_KB, cur + (size_t)x0 * Dy, Dy, rows);
            }
            if (mode == 1) {
              /* The transpose, [Dy][Dx]: column l of the tile is `rows`
               * contiguous floats there. */
              float t[RG_KB][2 * RETCL_VW];
#pragma unroll
              for (uint r = 0; r < RG_KB; ++r) {
                VSTORE(acc[r][0], 0, t[r]);
                VSTORE(acc[r][1], 0, t[r] + RETCL_VW);
              }
              for (uint l = 0; l < w0 + w1; ++l)
                for (uint r = 0; r < rows; ++r)
                  cur_t[(size_t)(c0 + l) * Dx + x0 + r] = t[r][l];
            }
            if (!nxt) continue;
            RG_SCALE(acc, RG_KB, d);
          } else {
            RG_LOAD_ROWS(acc, RG_KB, nxt + (size_t)x0 * Dy, Dy, rows);
          }
          /* Rows past xb repeat the last real one (never stored). */
#if RETCL_CPU
          if (rows == RG_KB)
            RG_PAIR(acc, RG_KB, nk, RG_A_X, RG_W, ybase + c0, y_st, w0, w1);
          else
#endif
            RG_PAIR(acc, RG_KB, nk, RG_A_XC, RG_W, ybase + c0, y_st, w0, w1);
          RG_STORE_ROWS(acc, nxt + (size_t)x0 * Dy, Dy, rows, 1.0f);
        }
      }
      if (!nxt) break;
    }
  }
#undef RG_A_X
#undef RG_A_XC
#undef RG_W
  /* d_state_in = α G_0, summed in place above. */
  if (mode == 1 && has_d_state_in && a0 != 1.0f)
    for (uint x0 = xa; x0 < xb; x0 += RG_KB) {
      const uint rows = min((uint)RG_KB, xb - x0);
      for (uint c0 = ca; c0 < cb_end; c0 += 2 * RETCL_VW) {
        const uint w0 = min((uint)RETCL_VW, Dy - c0);
        const uint w1 = c0 + RETCL_VW < Dy ? min((uint)RETCL_VW, Dy - c0 - RETCL_VW) : 0u;
        vecf acc[RG_KB][2];
        RG_LOAD_ROWS(acc, RG_KB, d_in + (size_t)x0 * Dy, Dy, rows);
        RG_STORE_ROWS(acc, d_in + (size_t)x0 * Dy, Dy, rows, a0);
      }
    }
}

/* ------------------------------------------------------------------------ */
/* dq: dq_i = w_i (Σ_{j≤i} γ^(i-j) (dO_i·v_j) k_j + γ^(i+1) dO_i Rᵀ).       */
/* R (transposed, [Dv][Dk] per segment) at r_off when has_R; V's panels at  */
/* vt_off. Grid cpu: (1, ceil(C/RB), B*H*n_seg), RB rows per item;          */
/* gpu: (gx, ceil(C/gy) gy, B*H*n_seg) in groups of gx x gy: gy rows, their */
/* column blocks spread over gx items, a tile of scores in local memory.    */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_grad_dq(
    RG_IN(K, k), RG_IN(dO, o), RG_OUT(dQ, q), __global const float *log_decay,
    uint ld_off, __global const float *work, uint f_off, int has_F,
    float w_scale, uint vt_off, uint ot_off, uint r_off, int has_R, uint T,
    uint H, uint Dk, uint Dv, uint C, uint n_seg, __local float *tile) {
  const uint bhs = get_global_id(2);
  const uint s = bhs % n_seg, bh = bhs / n_seg, b = bh / H, h = bh % H;
  const uint t0 = s * C, L = min(C, T - t0);
  const uint ntile = (C + RG_KT - 1) / RG_KT;
  const float lg = log_decay[ld_off + h];
  __global const float *Rt = work + r_off + (size_t)bhs * Dk * Dv;
#if RETCL_CPU
  (void)tile;
  (void)has_F;
  (void)w_scale;
  (void)f_off;
  RG_UNUSED(dO, o);
  /* A tile of KT query rows per item, in register tiles of RB rows:
   * each key tile (its V panel and K rows) is read once for all of them. */
  const uint ti = get_global_id(1), it0 = ti * RG_KT;
  if (it0 >= L) return;
  const uint tile_rows = min((uint)RG_KT, L - it0);
  /* dO' (weights applied) of the rows from its panel: row r of a block,
   * column d at op[d KT + r]. Rows past `rows` read their neighbours (or
   * the region's padding) and are never stored. */
  __global const float *op_t = work + rg_panel(ot_off, bhs, ntile, ti, Dv);
#define RG_A_OP(r, e) op[(size_t)(e) * RG_KT + (r)]
#define RG_A_P(r, e) p[r][e]
  /* Cross term first (zero without R): it initialises the rows. */
  for (uint ioff = 0; ioff < tile_rows; ioff += RG_RB) {
    const uint i0 = it0 + ioff, rows = min((uint)RG_RB, tile_rows - ioff);
    __global const float *op = op_t + ioff;
    __global float *dq0 = RG_ROW(dQ, q, b, t0 + i0, h);
    float xi[RG_RB];
#pragma unroll
    for (uint r = 0; r < RG_RB; ++r) xi[r] = rg_pow1((float)(i0 + min(r, rows - 1) + 1) * lg);
    RG_ROWS_STATE(dq0, q_st, rows, xi, Dk, has_R, Dv, RG_A_OP, Rt);
  }
  /* Key tiles up to the diagonal one: scores dP = (dO'_i·v_j) γ^(i-j)
   * for RB rows x KT keys (dO' values broadcast against V's panel), then
   * dq += dP K. */
  float rdec[RG_RB];
#pragma unroll
  for (uint r = 0; r < RG_RB; ++r) rdec[r] = rg_pow1((float)r * lg);
  float p[RG_RB][RG_KT];
  for (uint j0 = 0; j0 <= it0; j0 += RG_KT) {
    __global const float *pan = work + rg_panel(vt_off, bhs, ntile, j0 / RG_KT, Dv);
    __global const float *kp = RG_ROW(K, k, b, t0 + j0, h);
    for (uint ioff = 0; ioff < tile_rows; ioff += RG_RB) {
      const uint i0 = it0 + ioff, rows = min((uint)RG_RB, tile_rows - ioff);
      const uint last = i0 + rows; /* keys [0, last) can matter */
      __global const float *op = op_t + ioff;
      __global float *dq0 = RG_ROW(dQ, q, b, t0 + i0, h);
      vecf acc[RG_RB][RG_NJ];
      RG_SCORES(acc, RG_A_OP, pan, Dv);
      if (j0 + RG_KT <= i0 + 1) {
        /* Every key of the tile is at or before i0: γ^(i-j) = γ^r γ^(i0-j),
         * both exponents >= 0. */
#pragma unroll
        for (uint n = 0; n < RG_NJ; ++n) {
          const vecf kd = rg_pow(((float)(i0 - j0 - n * RETCL_VW) - RG_IOTA) * lg);
#pragma unroll
          for (uint r = 0; r < RG_RB; ++r)
            VSTORE(acc[r][n] * (rdec[r] * kd), 0, &p[r][n * RETCL_VW]);
        }
      } else {
        /* A tile across the diagonal: γ^(i-j) for i >= j, else 0, a
         * vector of keys at a time. */
#pragma unroll
        for (uint r = 0; r < RG_RB; ++r)
#pragma unroll
          for (uint n = 0; n < RG_NJ; ++n) {
            const vecf gap = (float)(i0 + r) - (float)(j0 + n * RETCL_VW) - RG_IOTA;
            VSTORE(acc[r][n] * rg_mask(gap, lg), 0, &p[r][n * RETCL_VW]);
          }
      }
      const uint nk = min((uint)RG_KT, last - j0);
      RG_ROWS_ADD(dq0, q_st, rows, Dk, nk, RG_A_P, kp, k_st);
    }
  }
#undef RG_A_OP
#undef RG_A_P
#else
  (void)ot_off;
  const uint gx = get_local_size(0), gy = get_local_size(1);
  const uint lx = get_local_id(0), ly = get_local_id(1);
  const uint lid = ly * gx + lx;
  const uint ig = get_group_id(1) * gy; /* the group's first row */
  if (ig >= L) return; /* the whole group: no barrier is left waiting */
  const uint i = ig + ly;
  const int live = i < L;
  const uint t = t0 + min(i, L - 1);
  __global const float *orow = RG_ROW(dO, o, b, t, h);
  __global float *qrow = RG_ROW(dQ, q, b, t, h);
  const float wi = rg_weight(work, f_off, has_F, w_scale, bh, T, t);
  if (live)
    rg_row_state(qrow, wi * rg_pow1((float)(i + 1) * lg), orow, Rt, Dv, Dk,
                 has_R, lx, gx);
  const uint last = min(L, ig + gy);
  for (uint j0 = 0; j0 < last; j0 += RG_KT) {
    __global const float *pan = work + rg_panel(vt_off, bhs, ntile, j0 / RG_KT, Dv);
    barrier(CLK_LOCAL_MEM_FENCE);
    /* The group's gy x KT scores, neighbouring items on neighbouring keys
     * (the panel's rows are contiguous along keys). */
    for (uint e = lid; e < gy * RG_KT; e += gx * gy) {
      const uint r = e / RG_KT, j = e % RG_KT;
      const uint ir = ig + r;
      float val = 0.0f;
      if (ir < L && j0 + j <= ir) {
        val = rg_panel_dot(RG_ROW(dO, o, b, t0 + ir, h), pan + j, Dv);
        val *= rg_weight(work, f_off, has_F, w_scale, bh, T, t0 + ir) *
               rg_pow1((float)(ir - j0 - j) * lg);
      }
      tile[e] = val;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (live)
      rg_row_tile(qrow, tile + ly * RG_KT, RG_ROW(K, k, b, t0 + j0, h), k_st,
                  min((uint)RG_KT, i + 1 - min(i + 1, j0)), Dk, lx, gx);
  }
#endif
}

/* ------------------------------------------------------------------------ */
/* dkdv: dk_j = Σ_{i≥j} γ^(i-j) (dO'_i·v_j) q_i + γ^(L-1-j) v_j dRᵀ,        */
/*       dv_j = Σ_{i≥j} γ^(i-j) (q_i·k_j) dO'_i + γ^(L-1-j) k_j dR.          */
/* dR at dr_off ([Dk][Dv]) and dRᵀ at drt_off when has_dR; Q's and dO''s    */
/* panels at qt_off, ot_off. Grid as dq's (rows are keys here); the gpu     */
/* groups keep two tiles of scores (P and dP) in local memory.              */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_grad_dkdv(
    RG_IN(Q, q), RG_IN(K, k), RG_IN(V, v), RG_IN(dO, o), RG_OUT(dK, dk),
    RG_OUT(dV, dv), __global const float *log_decay, uint ld_off,
    __global const float *work, uint f_off, int has_F, float w_scale,
    uint qt_off, uint kt_off, uint vt_off, uint ot_off, uint dr_off,
    uint drt_off, int has_dR, uint T, uint H, uint Dk, uint Dv, uint C,
    uint n_seg, __local float *tile) {
  const uint bhs = get_global_id(2);
  const uint s = bhs % n_seg, bh = bhs / n_seg, b = bh / H, h = bh % H;
  const uint t0 = s * C, L = min(C, T - t0);
  const uint ntile = (C + RG_KT - 1) / RG_KT;
  const float lg = log_decay[ld_off + h];
  __global const float *dR = work + dr_off + (size_t)bhs * Dk * Dv;
  __global const float *dRt = work + drt_off + (size_t)bhs * Dk * Dv;
#if RETCL_CPU
  (void)tile;
  RG_UNUSED(K, k);
  RG_UNUSED(V, v);
  /* A tile of KT keys per item, in register tiles of RB keys, as dq's
   * rows: each query tile is read once for all of them. k_j and v_j of
   * the keys come from K's and V's panels (rows past `rows` read
   * neighbours or padding, never stored). */
  const uint tj = get_global_id(1), jt0 = tj * RG_KT;
  if (jt0 >= L) return;
  const uint tile_keys = min((uint)RG_KT, L - jt0);
  __global const float *kp_t = work + rg_panel(kt_off, bhs, ntile, tj, Dk);
  __global const float *vp_t = work + rg_panel(vt_off, bhs, ntile, tj, Dv);
#define RG_A_KP(r, e) kp[(size_t)(e) * RG_KT + (r)]
#define RG_A_VP(r, e) vp[(size_t)(e) * RG_KT + (r)]
#define RG_A_PT(r, e) pt[r][e]
#define RG_A_DPT(r, e) dpt[r][e]
  /* Cross terms first (zero without dR): they initialise the rows. */
  for (uint joff = 0; joff < tile_keys; joff += RG_RB) {
    const uint j0 = jt0 + joff, rows = min((uint)RG_RB, tile_keys - joff);
    __global const float *kp = kp_t + joff, *vp = vp_t + joff;
    __global float *dk0 = RG_ROW(dK, dk, b, t0 + j0, h);
    __global float *dv0 = RG_ROW(dV, dv, b, t0 + j0, h);
    float zeta[RG_RB];
#pragma unroll
    for (uint r = 0; r < RG_RB; ++r)
      zeta[r] = rg_pow1((float)(L - 1 - j0 - min(r, rows - 1)) * lg);
    RG_ROWS_STATE(dk0, dk_st, rows, zeta, Dk, has_dR, Dv, RG_A_VP, dRt);
    RG_ROWS_STATE(dv0, dv_st, rows, zeta, Dv, has_dR, Dk, RG_A_KP, dR);
  }
  /* Query tiles from the keys' own: Pᵀ (keys x queries) from k_j
   * against Q's panel, dPᵀ from v_j against dO''s panel, then
   * dk += dPᵀ Q and dv += (w ⊙ Pᵀ) dO. */
  float pt[RG_RB][RG_KT], dpt[RG_RB][RG_KT];
  for (uint i0 = jt0; i0 < L; i0 += RG_KT) {
    const uint tile_i = i0 / RG_KT;
    __global const float *qp = work + rg_panel(qt_off, bhs, ntile, tile_i, Dk);
    __global const float *op = work + rg_panel(ot_off, bhs, ntile, tile_i, Dv);
    const uint ni = min((uint)RG_KT, L - i0);
    __global const float *q0 = RG_ROW(Q, q, b, t0 + i0, h);
    __global const float *o0 = RG_ROW(dO, o, b, t0 + i0, h);
    for (uint joff = 0; joff < tile_keys; joff += RG_RB) {
      const uint j0 = jt0 + joff, rows = min((uint)RG_RB, tile_keys - joff);
      const uint jl = j0 + rows - 1; /* the block's last key */
      __global const float *kp = kp_t + joff, *vp = vp_t + joff;
      __global float *dk0 = RG_ROW(dK, dk, b, t0 + j0, h);
      __global float *dv0 = RG_ROW(dV, dv, b, t0 + j0, h);
      vecf acc[RG_RB][RG_NJ];
      RG_SCORES(acc, RG_A_KP, qp, Dk);
#pragma unroll
      for (uint r = 0; r < RG_RB; ++r)
#pragma unroll
        for (uint n = 0; n < RG_NJ; ++n) VSTORE(acc[r][n], 0, &pt[r][n * RETCL_VW]);
      RG_SCORES(acc, RG_A_VP, op, Dv);
      if (i0 >= jl && ni == RG_KT) {
        /* Every query of the tile is at or after every key of the block:
         * γ^(i-j) = γ^(i-jl) γ^(jl-j), both exponents >= 0. */
        float rdec[RG_RB];
#pragma unroll
        for (uint r = 0; r < RG_RB; ++r)
          rdec[r] = rg_pow1((float)(rows - 1 - min(r, rows - 1)) * lg);
#pragma unroll
        for (uint n = 0; n < RG_NJ; ++n) {
          const vecf qd = rg_pow(((float)(i0 - jl + n * RETCL_VW) + RG_IOTA) * lg);
          const vecf wv = has_F ? VLOAD(0, work + f_off + (size_t)bh * T + t0 + i0 + n * RETCL_VW)
                                : (vecf)(w_scale);
#pragma unroll
          for (uint r = 0; r < RG_RB; ++r) {
            const vecf m = rdec[r] * qd;
            VSTORE(VLOAD(0, &pt[r][n * RETCL_VW]) * (m * wv), 0, &pt[r][n * RETCL_VW]);
            VSTORE(acc[r][n] * m, 0, &dpt[r][n * RETCL_VW]);
          }
        }
      } else {
        /* A tile across the diagonal or past the segment's end: γ^(i-j)
         * for i >= j, else 0; no weight past the end. A vector of
         * queries at a time. */
#pragma unroll
        for (uint n = 0; n < RG_NJ; ++n) {
          const uint i1 = n * RETCL_VW;
          const uint nl = ni > i1 ? min((uint)RETCL_VW, ni - i1) : 0u;
          const vecf wv =
              has_F ? load_block(work + f_off + (size_t)bh * T + t0 + i0 + i1, nl)
                    : w_scale * step(RG_IOTA, (vecf)((float)nl - 0.5f));
#pragma unroll
          for (uint r = 0; r < RG_RB; ++r) {
            const vecf gap = (float)(i0 + i1) - (float)(j0 + r) + RG_IOTA;
            const vecf m = rg_mask(gap, lg);
            VSTORE(VLOAD(0, &pt[r][i1]) * (m * wv), 0, &pt[r][i1]);
            VSTORE(acc[r][n] * m, 0, &dpt[r][i1]);
          }
        }
      }
      RG_ROWS_ADD(dk0, dk_st, rows, Dk, ni, RG_A_DPT, q0, q_st);
      RG_ROWS_ADD(dv0, dv_st, rows, Dv, ni, RG_A_PT, o0, o_st);
    }
  }
#undef RG_A_KP
#undef RG_A_VP
#undef RG_A_PT
#undef RG_A_DPT
#else
  (void)kt_off;
  (void)vt_off;
  const uint gx = get_local_size(0), gy = get_local_size(1);
  const uint lx = get_local_id(0), ly = get_local_id(1);
  const uint lid = ly * gx + lx;
  const uint jg = get_group_id(1) * gy; /* the group's first key */
  if (jg >= L) return; /* the whole group: no barrier is left waiting */
  const uint j = jg + ly;
  const int live = j < L;
  const uint t = t0 + min(j, L - 1);
  __global const float *krow = RG_ROW(K, k, b, t, h);
  __global const float *vrow = RG_ROW(V, v, b, t, h);
  __global float *dkrow = RG_ROW(dK, dk, b, t, h);
  __global float *dvrow = RG_ROW(dV, dv, b, t, h);
  __local float *pt = tile, *dpt = tile + gy * RG_KT;
  if (live) {
    const float zeta = rg_pow1((float)(L - 1 - j) * lg);
    rg_row_state(dkrow, zeta, vrow, dRt, Dv, Dk, has_dR, lx, gx);
    rg_row_state(dvrow, zeta, krow, dR, Dk, Dv, has_dR, lx, gx);
  }
  for (uint i0 = jg / RG_KT * RG_KT; i0 < L; i0 += RG_KT) {
    const uint tile_i = i0 / RG_KT;
    __global const float *qp = work + rg_panel(qt_off, bhs, ntile, tile_i, Dk);
    __global const float *op = work + rg_panel(ot_off, bhs, ntile, tile_i, Dv);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint e = lid; e < gy * RG_KT; e += gx * gy) {
      const uint r = e / RG_KT, i = e % RG_KT;
      const uint jr = jg + r;
      float pv = 0.0f, dpv = 0.0f;
      if (jr < L && i0 + i < L && i0 + i >= jr) {
        pv = rg_panel_dot(RG_ROW(K, k, b, t0 + jr, h), qp + i, Dk);
        dpv = rg_panel_dot(RG_ROW(V, v, b, t0 + jr, h), op + i, Dv);
        const float m = rg_pow1((float)(i0 + i - jr) * lg);
        pv *= m * rg_weight(work, f_off, has_F, w_scale, bh, T, t0 + i0 + i);
        dpv *= m;
      }
      pt[e] = pv;
      dpt[e] = dpv;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (live) {
      const uint ni = min((uint)RG_KT, L - i0);
      rg_row_tile(dkrow, dpt + ly * RG_KT, RG_ROW(Q, q, b, t0 + i0, h), q_st,
                  ni, Dk, lx, gx);
      rg_row_tile(dvrow, pt + ly * RG_KT, RG_ROW(dO, o, b, t0 + i0, h), o_st,
                  ni, Dv, lx, gx);
    }
  }
#endif
}

/* ------------------------------------------------------------------------ */
/* rec_dq: the recurrent algorithm's forward sweep. An item owns state rows */
/* [k_begin, k_begin + rkb) (in scratch at s_off): S_{t+1} = γ S_t +        */
/* k_tᵀ v_t from α S_0, and dq_t[k] = w_t dO_t · S_{t+1}[k].                 */
/* Grid: (ceil(Dk/rkb), 1, B*H).                                             */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_grad_rec_dq(
    RG_IN(K, k), RG_IN(V, v), RG_IN(dO, o), RG_OUT(dQ, q),
    __global const float *log_decay, uint ld_off, __global float *work,
    uint s_off, uint f_off, int has_F, float w_scale,
    __global const float *S_in, uint s_in_off, int has_state_in, uint T,
    uint H, uint Dk, uint Dv, uint rkb, int ts_state, float position) {
  const uint k_begin = get_global_id(0) * rkb, bh = get_global_id(2);
  if (k_begin >= Dk) return;
  const uint k_end = min(Dk, k_begin + rkb);
  const uint b = bh / H, h = bh % H;
  const uint nvb = (Dv + RETCL_VW - 1) / RETCL_VW;
  const float lg = log_decay[ld_off + h];
  const float g = exp(lg), alpha = rg_alpha(ts_state, lg, position);
  __global float *S = work + s_off + (size_t)bh * Dk * Dv;
  __global const float *S0 = S_in + s_in_off + (size_t)bh * Dk * Dv;
  for (uint t = 0; t < T; ++t) {
    const float wt = rg_weight(work, f_off, has_F, w_scale, bh, T, t);
    __global const float *krow = RG_ROW(K, k, b, t, h);
    __global const float *vrow = RG_ROW(V, v, b, t, h);
    __global const float *orow = RG_ROW(dO, o, b, t, h);
    __global float *qrow = RG_ROW(dQ, q, b, t, h);
    /* dq_t = w_t (dO_t (γS_t)ᵀ + (dO_t·v_t) k_t): the token's own term
     * score first, as the forward computes it (cl/retention.cl). */
    const float dov = dot_rows(orow, vrow, Dv);
    for (uint kb = k_begin; kb < k_end; kb += RG_RB) {
      const uint rows = min((uint)RG_RB, k_end - kb);
      vecf dacc[RG_RB];
#pragma unroll
      for (uint r = 0; r < RG_RB; ++r) dacc[r] = (vecf)(0.0f);
      for (uint cb = 0; cb < nvb; ++cb) {
        const uint v0 = cb * RETCL_VW, nv = min((uint)RETCL_VW, Dv - v0);
        const vecf vb = load_block(vrow + v0, nv), ob = load_block(orow + v0, nv);
#pragma unroll
        for (uint r = 0; r < RG_RB; ++r) {
          if (r < rows) {
            const uint kk = kb + r;
            __global float *sp = S + (size_t)kk * Dv + v0;
            vecf st = (vecf)(0.0f);
            if (t > 0)
              st = g * load_block(sp, nv);
            else if (has_state_in)
              st = (g * alpha) * load_block(S0 + (size_t)kk * Dv + v0, nv);
            dacc[r] = fma(ob, st, dacc[r]);
            store_block(sp, fma((vecf)(krow[kk]), vb, st), nv);
          }
        }
      }
      for (uint r = 0; r < rows; ++r)
        qrow[kb + r] = wt * fma(krow[kb + r], dov, lane_sum(dacc[r]));
    }
  }
}

/* ------------------------------------------------------------------------ */
/* rec_dkdv: the reverse sweep. An item owns rows [k_begin, +rkb) of        */
/* G_{t+1} = ∂L/∂S_{t+1} (scratch at g_off): G_T = β dS_T + q_{T-1}ᵀ dO'_{T-1}, */
/* G_{t+1} = γ G_{t+2} + q_tᵀ dO'_t; dk_t = v_t G_{t+1}ᵀ (its rows) and     */
/* dv_t = k_t G_{t+1} over its rows, into dV (the output, or a partial sum  */
/* per row block at dv_off + block * part_stride); dS_0 = α γ G_1.           */
/* Grid: (ceil(Dk/rkb), 1, B*H).                                             */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_grad_rec_dkdv(
    RG_IN(Q, q), RG_IN(K, k), RG_IN(V, v), RG_IN(dO, o), RG_OUT(dK, dk),
    RG_OUT(dV, dv), uint part_stride, __global const float *log_decay,
    uint ld_off, __global float *work, uint g_off, uint f_off, int has_F,
    float w_scale, __global const float *dS_out, uint ds_out_off,
    int has_d_state_out, __global float *dS_in, uint ds_in_off,
    int has_d_state_in, uint T, uint H, uint Dk, uint Dv, uint rkb,
    int ts_state, float position) {
  const uint blk = get_global_id(0), bh = get_global_id(2);
  const uint k_begin = blk * rkb;
  if (k_begin >= Dk) return;
  const uint k_end = min(Dk, k_begin + rkb);
  const uint b = bh / H, h = bh % H;
  const uint nvb = (Dv + RETCL_VW - 1) / RETCL_VW;
  const float lg = log_decay[ld_off + h];
  const float g = exp(lg);
  const float beta = rg_beta(ts_state, lg, position + (float)T);
  const uint dvo = dv_off + blk * part_stride;
  __global float *G = work + g_off + (size_t)bh * Dk * Dv;
  __global const float *dS = dS_out + ds_out_off + (size_t)bh * Dk * Dv;
  for (uint t = T; t-- > 0;) {
    const float wt = rg_weight(work, f_off, has_F, w_scale, bh, T, t);
    __global const float *qrow = RG_ROW(Q, q, b, t, h);
    __global const float *krow = RG_ROW(K, k, b, t, h);
    __global const float *vrow = RG_ROW(V, v, b, t, h);
    __global const float *orow = RG_ROW(dO, o, b, t, h);
    __global float *dkrow = RG_ROW(dK, dk, b, t, h);
    __global float *dvrow = dV + RETCL_AT(dvo, dv_sb, dv_st, dv_sh, b, t, h);
    /* With X = γG_{t+2} (or β dS_T), G_{t+1} = X + q_tᵀ dO'_t:
     * dk_t = v_t Xᵀ + (dO'_t·v_t) q_t and dv_t = k_t X + (q_t·k_t) dO'_t,
     * the token's own terms score first as in the forward; the (q·k) term
     * of dv once, by the item holding row 0. */
    const float dov = wt * dot_rows(orow, vrow, Dv);
    const float qk = k_begin == 0 ? dot_rows(qrow, krow, Dk) : 0.0f;
    for (uint kb = k_begin; kb < k_end; kb += RG_RB) {
      const uint rows = min((uint)RG_RB, k_end - kb);
      vecf dacc[RG_RB];
#pragma unroll
      for (uint r = 0; r < RG_RB; ++r) dacc[r] = (vecf)(0.0f);
      for (uint cb = 0; cb < nvb; ++cb) {
        const uint v0 = cb * RETCL_VW, nv = min((uint)RETCL_VW, Dv - v0);
        const vecf ob = wt * load_block(orow + v0, nv), vb = load_block(vrow + v0, nv);
        vecf dvacc = kb == k_begin ? qk * ob : load_block(dvrow + v0, nv);
#pragma unroll
        for (uint r = 0; r < RG_RB; ++r) {
          if (r < rows) {
            const uint kk = kb + r;
            __global float *gp = G + (size_t)kk * Dv + v0;
            vecf x = (vecf)(0.0f);
            if (t + 1 < T)
              x = g * load_block(gp, nv);
            else if (has_d_state_out)
              x = beta * load_block(dS + (size_t)kk * Dv + v0, nv);
            dacc[r] = fma(x, vb, dacc[r]);
            dvacc = fma((vecf)(krow[kk]), x, dvacc);
            store_block(gp, fma((vecf)(qrow[kk]), ob, x), nv);
          }
        }
        store_block(dvrow + v0, dvacc, nv);
      }
      for (uint r = 0; r < rows; ++r)
        dkrow[kb + r] = fma(qrow[kb + r], dov, lane_sum(dacc[r]));
    }
  }
  if (!has_d_state_in) return;
  const float f = rg_alpha(ts_state, lg, position) * g;
  __global float *out = dS_in + ds_in_off + (size_t)bh * Dk * Dv;
  for (uint kk = k_begin; kk < k_end; ++kk)
    for (uint cb = 0; cb < nvb; ++cb) {
      const uint v0 = cb * RETCL_VW, nv = min((uint)RETCL_VW, Dv - v0);
      store_block(out + (size_t)kk * Dv + v0, f * load_block(G + (size_t)kk * Dv + v0, nv), nv);
    }
}

/* ------------------------------------------------------------------------ */
/* reduce: dV rows = Σ_p part_p rows, p = 0 ... n_parts-1 in order (the     */
/* partials of rec_dkdv, token-major at p_off + p * part_stride).           */
/* Grid: (ceil(Dv/VW), T, B*H).                                              */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_grad_reduce(
    __global const float *work, uint p_off, uint part_stride, uint n_parts,
    RG_OUT(dV, dv), uint T, uint H, uint Dv) {
  const uint cb = get_global_id(0), t = get_global_id(1), bh = get_global_id(2);
  const uint nvb = (Dv + RETCL_VW - 1) / RETCL_VW;
  if (cb >= nvb || t >= T) return;
  const uint b = bh / H, h = bh % H;
  const uint v0 = cb * RETCL_VW, nv = min((uint)RETCL_VW, Dv - v0);
  /* the partials' strides: token-major [B, T, H, Dv] */
  const size_t row = (((size_t)b * T + t) * H + h) * Dv + v0;
  vecf acc = (vecf)(0.0f);
  for (uint p = 0; p < n_parts; ++p)
    acc += load_block(work + p_off + (size_t)p * part_stride + row, nv);
  store_block(RG_ROW(dV, dv, b, t, h) + v0, acc, nv);
}
