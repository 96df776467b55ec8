/* retention.cl - retention by chunks, by the parallel form and by the
 * recurrence (docs/design.md §1.3, §1.4).
 *
 * The chunkwise algorithm is a state pass, then the outputs:
 *   states:       slot_c <- R_{c-1};  R_c = γ^(L_c) R_{c-1} + U_c,
 *                 U_c = Σ_j γ^(L_c-1-j) k_jᵀ v_j
 *     cpu pattern: one kernel walks the chunks (state_scan);
 *     gpu pattern: chunk_state (every U_c, in parallel), then chunk_scan
 *   chunk_output: o_i = Σ_{j≤i in chunk} (q_i·k_j) γ^(i-j) v_j
 *                       + γ^(i+1) q_i R_{c-1}
 * (R_{c-1} here is docs/design.md's R_c: the state before chunk c), and
 * the parallel algorithm is chunk_output with one chunk as long as the
 * sequence (its cross term then reads the initial state S_0).
 * Internally every state is the raw one of docs/design.md §1.3; the torchscale
 * rescalings are per-row factors applied at the end of chunk_output.
 *
 * Data layout: a tensor is addressed by (offset, batch, token, head strides),
 * see RETCL_AT. Columns of V, O and states are processed in blocks of
 * RETCL_VW floats as OpenCL vectors, so the work vectorises on CPUs without
 * relying on the auto-vectoriser; a partial last block is read with zero
 * fill and written element-wise.
 *
 * Access pattern (a per-device-type parameter, see RETCL_CPU): on CPUs one
 * work-item walks every column block of its rows (contiguous memory, scores
 * computed once); on GPUs the column blocks are spread over work-items so
 * that neighbouring work-items touch neighbouring addresses. */

/* The retention record (retcl params): RETCL_CPU (access), RETCL_VW (floats
 * per column block), RETCL_RB (query rows per work-item in chunk_output),
 * RETCL_KB (state rows per work-item in chunk_state; cpu: per register
 * tile of state_scan, at most VW of them), RETCL_KT (keys per score tile in
 * chunk_output, and per weight tile of the state pass), and the cpu
 * pattern's register tiles: RETCL_NV (vectors of columns per tile of the
 * broadcast products: KB x NV in state_scan, RB x NV in chunk_output),
 * RETCL_MR x RETCL_NR (query rows x keys per tile of the score product;
 * a last tile past RB repeats row RB - 1 and is not stored). */
#if !defined(RETCL_CPU) || !defined(RETCL_VW) || !defined(RETCL_RB) || \
    !defined(RETCL_KB) || !defined(RETCL_KT) || !defined(RETCL_NV) ||   \
    !defined(RETCL_MR) || !defined(RETCL_NR)
#error "retention.cl needs the retention record's definitions"
#endif

/* Column blocks this work-item handles: all of them on a CPU, one on a GPU
 * (dimension 0 of the grid). */
#if RETCL_CPU
#define COLUMN_BLOCKS_BEGIN(nvb) for (uint cb = 0; cb < (nvb); ++cb) {
#define COLUMN_BLOCKS_END }
#else
#define COLUMN_BLOCKS_BEGIN(nvb) { const uint cb = get_global_id(0); if (cb < (nvb)) {
#define COLUMN_BLOCKS_END } }
#endif

#if !RETCL_CPU
/* ------------------------------------------------------------------------ */
/* chunk_state: U_c[k][v] = Σ_j γ^(L_c-1-j) k_j[k] v_j[v] over chunk c.       */
/* The gpu pattern's first pass, parallel over chunks; the cpu pattern runs  */
/* state_scan instead (see there) and has neither chunk_state nor           */
/* chunk_scan (lib/runtime/program.c creates them for the gpu pattern).     */
/* Grid: (column items, ceil(Dk/KB), B*H*Nc).                                */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_chunk_state(
    __global const float *K, uint k_off, uint k_sb, uint k_st, uint k_sh,
    __global const float *V, uint v_off, uint v_sb, uint v_st, uint v_sh,
    __global const float *log_decay, uint ld_off,
    __global float *U, /* [B,H,Nc,Dk,Dv] */
    uint T, uint H, uint Dk, uint Dv, uint C, uint n_chunks) {
  const uint k0 = get_global_id(1) * RETCL_KB;
  const uint bhc = get_global_id(2);
  const uint c = bhc % n_chunks, bh = bhc / n_chunks;
  const uint b = bh / H, h = bh % H;
  const uint cb = get_global_id(0); /* this work-item's column block */
  const uint nvb = (Dv + RETCL_VW - 1) / RETCL_VW;
  if (k0 >= Dk || cb >= nvb) return;
  const uint t0 = c * C;
  const uint L = min(C, T - t0);
  const float lg = log_decay[ld_off + h];
  const uint rows = min((uint)RETCL_KB, Dk - k0);
  __global float *u = U + ((size_t)bhc * Dk + k0) * Dv;

  /* Keys in tiles of RETCL_KT: their decay weights are computed once per
   * tile (exp costs more than the FMAs it scales); partial sums live in U
   * between tiles. */
  float w[RETCL_KT];
  for (uint j0 = 0; j0 < L; j0 += RETCL_KT) {
    const uint nk = min((uint)RETCL_KT, L - j0);
    for (uint j = 0; j < nk; ++j) w[j] = exp((float)(L - 1 - j0 - j) * lg);
    const uint v0 = cb * RETCL_VW, nv = min((uint)RETCL_VW, Dv - v0);
    vecf acc[RETCL_KB];
    #pragma unroll
    for (uint r = 0; r < RETCL_KB; ++r)
      acc[r] = (j0 > 0 && r < rows) ? load_block(u + r * Dv + v0, nv) : (vecf)(0.0f);
    for (uint j = 0; j < nk; ++j) {
      __global const float *krow = K + RETCL_AT(k_off, k_sb, k_st, k_sh, b, t0 + j0 + j, h) + k0;
      const vecf vrow = w[j] * load_block(V + RETCL_AT(v_off, v_sb, v_st, v_sh, b, t0 + j0 + j, h) + v0, nv);
      /* Rows past Dk repeat the last real one and are never stored: the
       * loop stays branch-free so it unrolls into registers. */
      #pragma unroll
      for (uint r = 0; r < RETCL_KB; ++r)
        acc[r] = fma((vecf)(krow[min(r, rows - 1)]), vrow, acc[r]);
    }
    for (uint r = 0; r < rows; ++r) store_block(u + r * Dv + v0, acc[r], nv);
  }
}

/* ------------------------------------------------------------------------ */
/* chunk_scan: turns the chunk contributions U_c (in place) into the state   */
/* before each chunk, R_{c-1}, and writes the final state (gpu pattern).     */
/* Grid: (ceil(Dv/VW), Dk, B*H); every (row, column block) is independent.   */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_chunk_scan(
    __global float *U, /* [B,H,Nc,Dk,Dv]: U_c in, R_{c-1} out */
    __global const float *S_in, uint s_in_off, int has_state_in,
    __global float *S_out, uint s_out_off, int has_state_out,
    __global const float *log_decay, uint ld_off,
    uint T, uint H, uint Dk, uint Dv, uint C, uint n_chunks,
    int torchscale_out, /* write S_T / sqrt(c_n) instead of S_T */
    float n_total,      /* n: tokens absorbed by the final state */
    float n_in)         /* > 0: S_in is torchscale's S_m / sqrt(c_m), m = n_in */
{
  const uint cb = get_global_id(0), k = get_global_id(1), bh = get_global_id(2);
  const uint nvb = (Dv + RETCL_VW - 1) / RETCL_VW;
  if (cb >= nvb) return;
  const uint h = bh % H;
  const uint v0 = cb * RETCL_VW, nv = min((uint)RETCL_VW, Dv - v0);
  const float lg = log_decay[ld_off + h];
  const size_t row = (size_t)bh * Dk * Dv + (size_t)k * Dv + v0;
  vecf x = has_state_in ? load_block(S_in + s_in_off + row, nv) : (vecf)(0.0f);
  if (n_in > 0.0f) x *= sqrt(decay_sum(lg, n_in));
  const float full_decay = exp((float)C * lg);
  for (uint c = 0; c < n_chunks; ++c) {
    __global float *slot = U + ((size_t)bh * n_chunks + c) * Dk * Dv + (size_t)k * Dv + v0;
    const vecf u = load_block(slot, nv);
    store_block(slot, x, nv);
    const uint L = min(C, T - c * C);
    const float d = (L == C) ? full_decay : exp((float)L * lg);
    x = fma((vecf)(d), x, u);
  }
  if (has_state_out) {
    const float f = torchscale_out ? rsqrt(decay_sum(lg, n_total)) : 1.0f;
    store_block(S_out + s_out_off + row, f * x, nv);
  }
}
#endif /* !RETCL_CPU */

#if RETCL_CPU
/* The cpu pattern's register tiles read NV blocks of VW columns of a row
 * at once; the last tile of a Dv that is not a multiple of NV·VW reads its
 * blocks past Dv as zeros (the tiles never store them). */
inline void load_tile_tail(__global const float *row, uint v0, uint Dv, vecf *tile) {
  #pragma unroll
  for (uint n = 0; n < RETCL_NV; ++n) {
    const uint c0 = v0 + n * RETCL_VW;
    tile[n] = c0 < Dv ? load_block(row + c0, min((uint)RETCL_VW, Dv - c0)) : (vecf)(0.0f);
  }
}

/* The tile's blocks that exist (c0 < Dv) back to the row, times factor. */
inline void store_tile_tail(__global float *row, uint v0, uint Dv, const vecf *tile,
                            float factor) {
  for (uint n = 0; n < RETCL_NV; ++n) {
    const uint c0 = v0 + n * RETCL_VW;
    if (c0 < Dv) store_block(row + c0, factor * tile[n], min((uint)RETCL_VW, Dv - c0));
  }
}

/* Rows per register tile of state_scan: RETCL_KB, but at most one panel of
 * RETCL_VW rows (the weighted keys are formed per panel; rows past it
 * would only repeat the last one). */
#define STATE_TILE_ROWS (RETCL_KB < RETCL_VW ? RETCL_KB : RETCL_VW)

/* state_scan's register tiles: rows [0, rows) (rows <= STATE_TILE_ROWS) of
 *   to = to_factor · (from_scale · from + Σ_{j<nk} wk[j·VW + r] v_j)
 * over every column, STATE_TILE_ROWS rows x NV vectors of columns at a
 * time (per key: NV vector loads of v and one broadcast load of a
 * weighted key per row feed rows·NV fmas, nothing else in the loop). to
 * may be from. */
inline void state_tile(__global const float *from, float from_scale,
                       __global float *to, float to_factor,
                       const float *wk, uint rows,
                       __global const float *vbase, uint v_st, uint nk, uint Dv) {
  const uint nvb = (Dv + RETCL_VW - 1) / RETCL_VW;
  const uint n_tiles = (nvb + RETCL_NV - 1) / RETCL_NV;
  for (uint ct = 0; ct < n_tiles; ++ct) {
    const uint v0 = ct * RETCL_NV * RETCL_VW;
    vecf acc[STATE_TILE_ROWS][RETCL_NV];
    #pragma unroll
    for (uint r = 0; r < STATE_TILE_ROWS; ++r)
      #pragma unroll
      for (uint n = 0; n < RETCL_NV; ++n) acc[r][n] = (vecf)(0.0f);
    for (uint r = 0; r < rows; ++r) {
      load_tile_tail(from + r * Dv, v0, Dv, acc[r]);
      for (uint n = 0; n < RETCL_NV; ++n) acc[r][n] *= from_scale;
    }
    /* Rows past `rows` repeat the last real one and are never stored: the
     * fma loops stay branch-free. */
    if (v0 + RETCL_NV * RETCL_VW <= Dv) {
      for (uint j = 0; j < nk; ++j) {
        __global const float *vrow = vbase + (size_t)j * v_st + v0;
        vecf vv[RETCL_NV];
        #pragma unroll
        for (uint n = 0; n < RETCL_NV; ++n) vv[n] = VLOAD(n, vrow);
        #pragma unroll
        for (uint r = 0; r < STATE_TILE_ROWS; ++r) {
          const vecf kr = (vecf)(wk[j * RETCL_VW + min(r, rows - 1)]);
          #pragma unroll
          for (uint n = 0; n < RETCL_NV; ++n) acc[r][n] = fma(kr, vv[n], acc[r][n]);
        }
      }
    } else {
      for (uint j = 0; j < nk; ++j) {
        vecf vv[RETCL_NV];
        load_tile_tail(vbase + (size_t)j * v_st, v0, Dv, vv);
        #pragma unroll
        for (uint r = 0; r < STATE_TILE_ROWS; ++r) {
          const vecf kr = (vecf)(wk[j * RETCL_VW + min(r, rows - 1)]);
          #pragma unroll
          for (uint n = 0; n < RETCL_NV; ++n) acc[r][n] = fma(kr, vv[n], acc[r][n]);
        }
      }
    }
    for (uint r = 0; r < rows; ++r) store_tile_tail(to + r * Dv, v0, Dv, acc[r], to_factor);
  }
}


/* ------------------------------------------------------------------------ */
/* state_scan: chunk_state and chunk_scan in one pass, for the cpu pattern.  */
/* One work-item per group of state rows of one (b, h) walks the chunks in   */
/* order and keeps the running state in the slots:                           */
/*   slot_0 <- S_0;  slot_{c+1} <- γ^(L_c) slot_c + U_c;  the last to S_out  */
/* so no chunk contribution is written and read back (the two-pass version   */
/* moved each state through memory three times), and the last chunk's sum   */
/* is skipped when nobody keeps the final state. Each slot is read back by   */
/* the work-item that wrote it, while it is still in cache.                  */
/* Grid: (1, row groups, B*H). The gpu pattern runs chunk_state and         */
/* chunk_scan instead, parallel over chunks, and has no such kernel          */
/* (lib/runtime/program.c creates it for the cpu pattern only).              */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_state_scan(
    __global const float *K, uint k_off, uint k_sb, uint k_st, uint k_sh,
    __global const float *V, uint v_off, uint v_sb, uint v_st, uint v_sh,
    __global const float *log_decay, uint ld_off,
    __global float *U, /* [B,H,Nc,Dk,Dv]: slot c gets R_{c-1} */
    __global const float *S_in, uint s_in_off, int has_state_in,
    __global float *S_out, uint s_out_off, int has_state_out,
    uint T, uint H, uint Dk, uint Dv, uint C, uint n_chunks,
    uint blocks_per_item, /* blocks of RETCL_KB state rows per work-item */
    int torchscale_out, /* write S_T / sqrt(c_n) instead of S_T */
    float n_total,      /* n: tokens absorbed by the final state */
    float n_in)         /* > 0: S_in is torchscale's S_m / sqrt(c_m), m = n_in */
{
  const uint first_row = get_global_id(1) * blocks_per_item * RETCL_KB;
  const uint bh = get_global_id(2);
  const uint b = bh / H, h = bh % H;
  if (first_row >= Dk) return;
  const uint end_row = min(Dk, first_row + blocks_per_item * RETCL_KB);
  const float lg = log_decay[ld_off + h];
  const uint nvb = (Dv + RETCL_VW - 1) / RETCL_VW;
  const size_t slot_size = (size_t)Dk * Dv;
  __global float *slots = U + (size_t)bh * n_chunks * slot_size;
  __global float *s_out = S_out + s_out_off + (size_t)bh * slot_size;

  /* slot 0: the state before the first chunk (torchscale's S_m / sqrt(c_m)
   * restored to S_m). In place (S_out = S_in) is safe: S_out is written
   * only in the last chunk, after this, and only in the rows this
   * work-item has read here. */
  const float in_scale = n_in > 0.0f ? sqrt(decay_sum(lg, n_in)) : 1.0f;
  for (uint k = first_row; k < end_row; ++k)
    for (uint cb = 0; cb < nvb; ++cb) {
      const uint c0 = cb * RETCL_VW, nv = min((uint)RETCL_VW, Dv - c0);
      store_block(slots + (size_t)k * Dv + c0,
                  has_state_in ? in_scale * load_block(S_in + s_in_off + (size_t)bh * slot_size +
                                                           (size_t)k * Dv + c0, nv)
                               : (vecf)(0.0f),
                  nv);
    }

  /* Every chunk c: for each block of rows, γ^L R_{c-1} + Σ_j (w_j k_j)ᵀ
   * v_j with w_j = γ^(L-1-j) (state_tile). Keys in tiles of RETCL_KT; the
   * weights depend only on the chunk's length and the tile, so with one
   * tile per chunk (C <= KT) they are computed once for all full chunks.
   * The weighted keys of a tile are formed per panel of RETCL_VW rows (one
   * vector load per key, where a row block's own keys would be scalar
   * loads 4 KiB apart in the token-major layout) and read by every row
   * block of the panel and every column tile. A chunk longer than one key
   * tile keeps its partial sums in its destination between tiles. */
  float w[RETCL_KT];
  float wk[RETCL_KT * RETCL_VW]; /* [key][row of the panel] */
  uint w_len = 0, w_first = 0;   /* the chunk length and first key w holds */
  const uint sums_needed = has_state_out || n_chunks == 0 ? n_chunks : n_chunks - 1;
  for (uint c = 0; c < sums_needed; ++c) {
    const uint t0 = c * C, L = min(C, T - t0);
    const int to_out = c + 1 == n_chunks;
    const float chunk_decay = exp((float)L * lg);
    const float out_factor = to_out && torchscale_out ? rsqrt(decay_sum(lg, n_total)) : 1.0f;
    __global const float *prev = slots + (size_t)c * slot_size;
    __global float *next = to_out ? s_out : slots + (size_t)(c + 1) * slot_size;
    for (uint j0 = 0; j0 < L; j0 += RETCL_KT) {
      const uint nk = min((uint)RETCL_KT, L - j0);
      if (w_len != L || w_first != j0) {
        for (uint j = 0; j < nk; ++j) w[j] = exp((float)(L - 1 - j0 - j) * lg);
        w_len = L;
        w_first = j0;
      }
      /* The first key tile starts from γ^L R_{c-1}, a later one from the
       * partial sums; the last applies the final state's factor. */
      __global const float *from = j0 == 0 ? prev : next;
      const float from_scale = j0 == 0 ? chunk_decay : 1.0f;
      const float to_factor = j0 + RETCL_KT >= L ? out_factor : 1.0f;
      __global const float *kbase = K + RETCL_AT(k_off, k_sb, k_st, k_sh, b, t0 + j0, h);
      __global const float *vbase = V + RETCL_AT(v_off, v_sb, v_st, v_sh, b, t0 + j0, h);
      for (uint p0 = first_row; p0 < end_row; p0 += RETCL_VW) {
        const uint p_rows = min((uint)RETCL_VW, end_row - p0);
        for (uint j = 0; j < nk; ++j)
          VSTORE(w[j] * load_block(kbase + (size_t)j * k_st + p0, p_rows), 0, wk + j * RETCL_VW);
        for (uint k0 = p0; k0 < p0 + p_rows; k0 += STATE_TILE_ROWS) {
          const size_t at = (size_t)k0 * Dv;
          state_tile(from + at, from_scale, next + at, to_factor, wk + (k0 - p0),
                     min((uint)STATE_TILE_ROWS, p0 + p_rows - k0), vbase, v_st, nk, Dv);
        }
      }
    }
  }
}
#endif /* RETCL_CPU */

/* torchscale chunkwise: r = max(1, largest column abs-sum of R_{c-1}/σ),
 * σ = Σ_{j<C} γ^j; R here is the raw state, R_torchscale = R_raw/σ. */
inline float torchscale_cross_scale(__global const float *state, int has_R,
                                    uint Dk, uint Dv, float lg, uint C) {
  if (!has_R) return 1.0f;
  float col_max = 0.0f;
  for (uint v = 0; v < Dv; ++v) {
    float col = 0.0f;
    for (uint k = 0; k < Dk; ++k) col += fabs(state[(size_t)k * Dv + v]);
    col_max = fmax(col_max, col);
  }
  return fmax(1.0f, col_max / decay_sum(lg, (float)C));
}

/* Factor applied to a finished raw output row i (segment-relative):
 * form 0 (raw): the caller's scale. torchscale (docs/design.md §1.4):
 * 1/(s_i m_i) with s_i = sqrt(c_{i+1}), a_i = Σ|score|/s_i, and m_i =
 * clamp(a_i, 1, 5e4) for the parallel form (1), max(1, a_i, r) for
 * chunkwise (2). The lower bound is the one fmax with cross_scale (1 for
 * the parallel form, r >= 1 for chunkwise): no second clamp. */
inline float row_factor(int form, float out_scale, float lg, uint i,
                        float abs_sum, float cross_scale) {
  if (form == 0) return out_scale;
  const float s_i = sqrt(decay_sum(lg, (float)(i + 1)));
  float a = abs_sum / s_i;
  if (form == 1) a = fmin(a, 5e4f);
  return 1.0f / (s_i * fmax(a, cross_scale));
}

/* ------------------------------------------------------------------------ */
/* chunk_output: RETCL_RB query rows of one chunk (or of the whole sequence  */
/* for the parallel algorithm) per work-item.                                */
/* Grid: (column items, ceil(C/RB), B*H*Nc).                                 */
/* form: 0 raw (times out_scale), 1 torchscale parallel, 2 torchscale        */
/* chunkwise. R: the state before each chunk, [B,H,Nc,Dk,Dv]; has_R = 0     */
/* means zero.                                                               */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_chunk_output(
    __global const float *Q, uint q_off, uint q_sb, uint q_st, uint q_sh,
    __global const float *K, uint k_off, uint k_sb, uint k_st, uint k_sh,
    __global const float *V, uint v_off, uint v_sb, uint v_st, uint v_sh,
    __global float *O, uint o_off, uint o_sb, uint o_st, uint o_sh,
    __global const float *log_decay, uint ld_off,
    __global const float *R, uint r_off, int has_R,
    uint T, uint H, uint Dk, uint Dv, uint C, uint n_chunks,
    int form, float out_scale) {
  const uint i0 = get_global_id(1) * RETCL_RB; /* first row, chunk-relative */
  const uint bhc = get_global_id(2);
  const uint c = bhc % n_chunks, bh = bhc / n_chunks;
  const uint b = bh / H, h = bh % H;
  const uint t0 = c * C;
  const uint L = min(C, T - t0);
  if (i0 >= L) return;
  const uint rows = min((uint)RETCL_RB, L - i0);
  const float lg = log_decay[ld_off + h];
  const uint nvb = (Dv + RETCL_VW - 1) / RETCL_VW;

  __global const float *qrow[RETCL_RB];
  #pragma unroll
  for (uint r = 0; r < RETCL_RB; ++r)
    qrow[r] = Q + RETCL_AT(q_off, q_sb, q_st, q_sh, b, t0 + i0 + min(r, rows - 1), h);
  __global const float *state = R + r_off + (size_t)bhc * Dk * Dv;

  /* Σ_j |score| per row, for the torchscale normalisations. */
  float abs_sum[RETCL_RB];
  #pragma unroll
  for (uint r = 0; r < RETCL_RB; ++r) abs_sum[r] = 0.0f;
  const uint last = i0 + rows; /* keys [0, last) can matter */
#if RETCL_CPU
  /* Each key tile: its scores p (an "nt" product along Dk, in register
   * tiles of MR rows x NR keys, one vector accumulator per score, lanes
   * added at the end), then per tile of NV column blocks one register tile
   * of RB rows x NV vectors takes the cross term (first key tile; a
   * broadcast product along Dk: per state row NV vector loads and RB
   * broadcasts of q feed RB·NV fmas) and p V (the same along the keys),
   * stored once per key tile. With RETCL_KT >= C there is one key tile, so
   * every output is written once. */
  float p[RETCL_RB][RETCL_KT]; /* scores of one key tile */
  float key_decay[RETCL_KT];   /* γ^(i0-j) for keys j <= i0, else -1 */
  /* γ^(i-j) = γ^r · γ^(i0-j) for keys j <= i0 (both exponents >= 0, so
   * nothing overflows): one exp per key and per row instead of one per
   * score. Keys past i0 (the diagonal block) take their own exp. */
  float row_decay[RETCL_RB], cross_w[RETCL_RB];
  #pragma unroll
  for (uint r = 0; r < RETCL_RB; ++r) {
    row_decay[r] = exp((float)r * lg);
    cross_w[r] = has_R ? exp((float)(i0 + r + 1) * lg) : 0.0f;
  }
  /* torchscale chunkwise: the largest column abs-sum of R, summed while
   * the cross term reads R. */
  float col_max = 0.0f;
  const uint n_ctiles = (nvb + RETCL_NV - 1) / RETCL_NV;
  const uint dk_full = Dk - Dk % RETCL_VW;
  for (uint j0 = 0; j0 < last; j0 += RETCL_KT) {
    const uint nk = min((uint)RETCL_KT, last - j0);
    const int final_tile = j0 + RETCL_KT >= last;
    __global const float *kbase = K + RETCL_AT(k_off, k_sb, k_st, k_sh, b, t0 + j0, h);
    __global const float *vbase = V + RETCL_AT(v_off, v_sb, v_st, v_sh, b, t0 + j0, h);
    for (uint j = 0; j < nk; ++j) {
      const int base = (int)i0 - (int)(j0 + j);
      key_decay[j] = base >= 0 ? exp((float)base * lg) : -1.0f;
    }
    /* Scores. */
    for (uint r0 = 0; r0 < RETCL_RB; r0 += RETCL_MR) {
      for (uint jj = 0; jj < nk; jj += RETCL_NR) {
        if (j0 + jj > i0 + r0 + RETCL_MR - 1 || r0 >= rows) {
          /* wholly above the diagonal (or past the rows): zeros */
          for (uint m = 0; m < RETCL_MR && r0 + m < RETCL_RB; ++m)
            for (uint n = 0; n < RETCL_NR && jj + n < nk; ++n) p[r0 + m][jj + n] = 0.0f;
          continue;
        }
        __global const float *kr[RETCL_NR];
        #pragma unroll
        for (uint n = 0; n < RETCL_NR; ++n) kr[n] = kbase + (size_t)min(jj + n, nk - 1) * k_st;
        vecf acc[RETCL_MR][RETCL_NR];
        #pragma unroll
        for (uint m = 0; m < RETCL_MR; ++m)
          #pragma unroll
          for (uint n = 0; n < RETCL_NR; ++n) acc[m][n] = (vecf)(0.0f);
        for (uint d = 0; d < dk_full; d += RETCL_VW) {
          vecf kv[RETCL_NR];
          #pragma unroll
          for (uint n = 0; n < RETCL_NR; ++n) kv[n] = VLOAD(0, kr[n] + d);
          #pragma unroll
          for (uint m = 0; m < RETCL_MR; ++m) {
            const vecf qv = VLOAD(0, qrow[min(r0 + m, (uint)RETCL_RB - 1)] + d);
            #pragma unroll
            for (uint n = 0; n < RETCL_NR; ++n) acc[m][n] = fma(qv, kv[n], acc[m][n]);
          }
        }
        #pragma unroll
        for (uint m = 0; m < RETCL_MR; ++m) {
          const uint r = min(r0 + m, (uint)RETCL_RB - 1);
          const int real_row = r0 + m < RETCL_RB; /* else a repeat of RB - 1 */
          #pragma unroll
          for (uint n = 0; n < RETCL_NR; ++n) {
            float dot = lane_sum(acc[m][n]);
            for (uint d = dk_full; d < Dk; ++d) dot = fma(qrow[r][d], kr[n][d], dot);
            const uint j = jj + n;
            const int gap = (int)(i0 + r) - (int)(j0 + j);
            float s = 0.0f;
            if (gap >= 0 && r < rows && j < nk && real_row) {
              const float kd = key_decay[j];
              s = dot * (kd >= 0.0f ? row_decay[r] * kd : exp((float)gap * lg));
            }
            if (j < nk && real_row) p[r][j] = s;
            abs_sum[r] += fabs(s);
          }
        }
      }
    }
    /* Outputs, one tile of NV column blocks at a time. */
    for (uint ct = 0; ct < n_ctiles; ++ct) {
      const uint v0 = ct * RETCL_NV * RETCL_VW;
      const int full = v0 + RETCL_NV * RETCL_VW <= Dv;
      vecf acc[RETCL_RB][RETCL_NV];
      #pragma unroll
      for (uint r = 0; r < RETCL_RB; ++r)
        #pragma unroll
        for (uint n = 0; n < RETCL_NV; ++n) acc[r][n] = (vecf)(0.0f);
      if (j0 > 0) {
        for (uint r = 0; r < rows; ++r)
          load_tile_tail(O + RETCL_AT(o_off, o_sb, o_st, o_sh, b, t0 + i0 + r, h), v0, Dv, acc[r]);
      } else if (has_R) {
        /* Cross term γ^(i+1) q_i R. */
        vecf col[RETCL_NV];
        #pragma unroll
        for (uint n = 0; n < RETCL_NV; ++n) col[n] = (vecf)(0.0f);
        /* Three copies of one loop, so that the common one (a full tile,
         * no column sums) has no branch inside: the compiler does not
         * unswitch it on its own, and the branch cost a measured share. */
#define CROSS_TERM_LOOP(LOAD_TILE, SUM_COLUMNS)                               \
        for (uint kk = 0; kk < Dk; ++kk) {                                    \
          __global const float *srow = state + (size_t)kk * Dv;               \
          vecf sv[RETCL_NV];                                                  \
          LOAD_TILE                                                           \
          if (SUM_COLUMNS) {                                                  \
            _Pragma("unroll")                                                 \
            for (uint n = 0; n < RETCL_NV; ++n) col[n] += fabs(sv[n]);        \
          }                                                                   \
          _Pragma("unroll")                                                   \
          for (uint r = 0; r < RETCL_RB; ++r) {                               \
            const vecf qb = (vecf)(qrow[r][kk]);                              \
            _Pragma("unroll")                                                 \
            for (uint n = 0; n < RETCL_NV; ++n) acc[r][n] = fma(qb, sv[n], acc[r][n]); \
          }                                                                   \
        }
#define CROSS_FULL_TILE                                                       \
          _Pragma("unroll")                                                   \
          for (uint n = 0; n < RETCL_NV; ++n) sv[n] = VLOAD(n, srow + v0);
#define CROSS_PARTIAL_TILE load_tile_tail(srow, v0, Dv, sv);
        if (!full) {
          CROSS_TERM_LOOP(CROSS_PARTIAL_TILE, form == 2)
        } else if (form == 2) {
          CROSS_TERM_LOOP(CROSS_FULL_TILE, 1)
        } else {
          CROSS_TERM_LOOP(CROSS_FULL_TILE, 0)
        }
#undef CROSS_TERM_LOOP
#undef CROSS_FULL_TILE
#undef CROSS_PARTIAL_TILE
        #pragma unroll
        for (uint r = 0; r < RETCL_RB; ++r)
          #pragma unroll
          for (uint n = 0; n < RETCL_NV; ++n) acc[r][n] *= cross_w[r];
        if (form == 2) {
          #pragma unroll
          for (uint n = 0; n < RETCL_NV; ++n) {
            const vecf c = col[n];
#if RETCL_VW == 16
            const float8 m8 = fmax(c.lo, c.hi);
#else
            const float8 m8 = c;
#endif
            const float4 m4 = fmax(m8.lo, m8.hi);
            const float2 m2 = fmax(m4.lo, m4.hi);
            col_max = fmax(col_max, fmax(m2.x, m2.y));
          }
        }
      }
      /* p V over the tile's keys. */
      if (full) {
        for (uint j = 0; j < nk; ++j) {
          __global const float *vrow = vbase + (size_t)j * v_st + v0;
          vecf vv[RETCL_NV];
          #pragma unroll
          for (uint n = 0; n < RETCL_NV; ++n) vv[n] = VLOAD(n, vrow);
          #pragma unroll
          for (uint r = 0; r < RETCL_RB; ++r) {
            const vecf pb = (vecf)(p[r][j]);
            #pragma unroll
            for (uint n = 0; n < RETCL_NV; ++n) acc[r][n] = fma(pb, vv[n], acc[r][n]);
          }
        }
      } else {
        for (uint j = 0; j < nk; ++j) {
          vecf vv[RETCL_NV];
          load_tile_tail(vbase + (size_t)j * v_st, v0, Dv, vv);
          #pragma unroll
          for (uint r = 0; r < RETCL_RB; ++r) {
            const vecf pb = (vecf)(p[r][j]);
            #pragma unroll
            for (uint n = 0; n < RETCL_NV; ++n) acc[r][n] = fma(pb, vv[n], acc[r][n]);
          }
        }
      }
      /* The last key tile applies the row factor (torchscale chunkwise:
       * after all tiles, since r needs every column of R). */
      for (uint r = 0; r < rows; ++r) {
        const float f = final_tile && form != 2
                            ? row_factor(form, out_scale, lg, i0 + r, abs_sum[r], 1.0f)
                            : 1.0f;
        store_tile_tail(O + RETCL_AT(o_off, o_sb, o_st, o_sh, b, t0 + i0 + r, h), v0, Dv,
                        acc[r], f);
      }
    }
  }
  if (form == 2) {
    const float cross_scale = has_R ? fmax(1.0f, col_max / decay_sum(lg, (float)C)) : 1.0f;
    for (uint r = 0; r < rows; ++r) {
      const float f = row_factor(form, out_scale, lg, i0 + r, abs_sum[r], cross_scale);
      if (f == 1.0f) continue;
      __global float *orow = O + RETCL_AT(o_off, o_sb, o_st, o_sh, b, t0 + i0 + r, h);
      for (uint cb = 0; cb < nvb; ++cb) {
        const uint c0 = cb * RETCL_VW, nv = min((uint)RETCL_VW, Dv - c0);
        store_block(orow + c0, f * load_block(orow + c0, nv), nv);
      }
    }
  }
#else
  const float cross_scale = form == 2 ? torchscale_cross_scale(state, has_R, Dk, Dv, lg, C) : 1.0f;
  /* GPU: this work-item owns one column block and keeps its accumulators in
   * registers; scores are recomputed per column block (flops are cheap
   * there, and neighbouring work-items read neighbouring V columns). */
  const uint cb = get_global_id(0);
  if (cb >= nvb) return;
  const uint v0 = cb * RETCL_VW, nv = min((uint)RETCL_VW, Dv - v0);
  vecf acc[RETCL_RB];
  #pragma unroll
  for (uint r = 0; r < RETCL_RB; ++r) acc[r] = (vecf)(0.0f);
  if (has_R) {
    for (uint kk = 0; kk < Dk; ++kk) {
      const vecf srow = load_block(state + (size_t)kk * Dv + v0, nv);
      #pragma unroll
      for (uint r = 0; r < RETCL_RB; ++r) acc[r] = fma((vecf)(qrow[r][kk]), srow, acc[r]);
    }
    #pragma unroll
    for (uint r = 0; r < RETCL_RB; ++r) acc[r] *= exp((float)(i0 + r + 1) * lg);
  }
  for (uint j0 = 0; j0 < last; j0 += RETCL_KT) {
    const uint nk = min((uint)RETCL_KT, last - j0);
    for (uint j = 0; j < nk; ++j) {
      __global const float *krow = K + RETCL_AT(k_off, k_sb, k_st, k_sh, b, t0 + j0 + j, h);
      const vecf vrow = load_block(V + RETCL_AT(v_off, v_sb, v_st, v_sh, b, t0 + j0 + j, h) + v0, nv);
      #pragma unroll
      for (uint r = 0; r < RETCL_RB; ++r) {
        const int gap = (int)(i0 + r) - (int)(j0 + j);
        if (gap >= 0 && r < rows) {
          const float s = dot_rows(qrow[r], krow, Dk) * exp((float)gap * lg);
          abs_sum[r] += fabs(s);
          acc[r] = fma((vecf)(s), vrow, acc[r]);
        }
      }
    }
  }
  for (uint r = 0; r < rows; ++r)
    store_block(O + RETCL_AT(o_off, o_sb, o_st, o_sh, b, t0 + i0 + r, h) + v0,
                row_factor(form, out_scale, lg, i0 + r, abs_sum[r], cross_scale) * acc[r], nv);
#endif
}

/* ------------------------------------------------------------------------ */
/* add_state: the contribution of an incoming state S to outputs computed    */
/* from a zero state (docs/design.md §1.8), RETCL_RB rows per work-item:     */
/*   o_t <- keep_t o_t + add_t q_t S                                         */
/* form 0 (raw): keep 1, add = out_scale γ^(t+1).                            */
/* form 1 (torchscale recurrent, S = S_m / sqrt(c_m), m = position):         */
/*   keep = sqrt(c_(t+1) / c_(m+t+1)), add = γ^(t+1) sqrt(c_m / c_(m+t+1)).  */
/* Grid: (column items, ceil(T/RB), B*H).                                    */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_add_state(
    __global const float *Q, uint q_off, uint q_sb, uint q_st, uint q_sh,
    __global float *O, uint o_off, uint o_sb, uint o_st, uint o_sh,
    __global const float *log_decay, uint ld_off,
    __global const float *S, uint s_off,
    uint T, uint H, uint Dk, uint Dv, int form, float out_scale,
    float position) {
  const uint i0 = get_global_id(1) * RETCL_RB;
  const uint bh = get_global_id(2);
  const uint b = bh / H, h = bh % H;
  if (i0 >= T) return;
  const uint rows = min((uint)RETCL_RB, T - i0);
  const float lg = log_decay[ld_off + h];
  const uint nvb = (Dv + RETCL_VW - 1) / RETCL_VW;
  __global const float *state = S + s_off + (size_t)bh * Dk * Dv;
  __global const float *qrow[RETCL_RB];
  float keep[RETCL_RB], add[RETCL_RB];
  const float c_m = form ? decay_sum(lg, position) : 0.0f;
  #pragma unroll
  for (uint r = 0; r < RETCL_RB; ++r) {
    const uint t = i0 + min(r, rows - 1);
    qrow[r] = Q + RETCL_AT(q_off, q_sb, q_st, q_sh, b, t, h);
    const float w = exp((float)(t + 1) * lg);
    if (form == 0) {
      keep[r] = 1.0f;
      add[r] = out_scale * w;
    } else {
      const float c_all = decay_sum(lg, position + (float)(t + 1));
      keep[r] = sqrt(decay_sum(lg, (float)(t + 1)) / c_all);
      add[r] = w * sqrt(c_m / c_all);
    }
  }
  COLUMN_BLOCKS_BEGIN(nvb)
    const uint v0 = cb * RETCL_VW, nv = min((uint)RETCL_VW, Dv - v0);
    vecf acc[RETCL_RB];
    #pragma unroll
    for (uint r = 0; r < RETCL_RB; ++r) acc[r] = (vecf)(0.0f);
    for (uint kk = 0; kk < Dk; ++kk) {
      const vecf srow = load_block(state + (size_t)kk * Dv + v0, nv);
      #pragma unroll
      for (uint r = 0; r < RETCL_RB; ++r) acc[r] = fma((vecf)(qrow[r][kk]), srow, acc[r]);
    }
    for (uint r = 0; r < rows; ++r) {
      __global float *o = O + RETCL_AT(o_off, o_sb, o_st, o_sh, b, i0 + r, h) + v0;
      store_block(o, fma((vecf)(keep[r]), load_block(o, nv), add[r] * acc[r]), nv);
    }
  COLUMN_BLOCKS_END
}

/* ------------------------------------------------------------------------ */
/* recurrent: one work-item per (column block, b*h) walks the tokens in     */
/* order, keeping its Dk x VW slice of the state in the state buffer.        */
/* form 0: S = γS + kᵀv, o = scale q S. form 1 (torchscale): c = cγ + 1,     */
/* S = S γ sqrt(c_prev/c) + kᵀv / sqrt(c), o = q S.                           */
/* Grid: (ceil(Dv/VW), 1, B*H).                                              */
/*                                                                          */
/* Packed sequences (packed = 1, B = 1): item (cb, seq*H + h) walks its      */
/* sequence's tokens; the sequence's entry in seqs (lib/ops/packing.h: 6    */
/* words) gives its first token, length, the state it starts from (none:    */
/* empty), the state it keeps (in S, or in the scratch W) and its position. */
/* ------------------------------------------------------------------------ */
__kernel void retcl_retention_recurrent(
    __global const float *Q, uint q_off, uint q_sb, uint q_st, uint q_sh,
    __global const float *K, uint k_off, uint k_sb, uint k_st, uint k_sh,
    __global const float *V, uint v_off, uint v_sb, uint v_st, uint v_sh,
    __global float *O, uint o_off, uint o_sb, uint o_st, uint o_sh,
    __global const float *log_decay, uint ld_off,
    __global const float *S_in, uint s_in_off, int has_state_in,
    __global float *S, uint s_off, /* working and final state */
    uint T, uint H, uint Dk, uint Dv, int form, float out_scale,
    float position, __global const uint *seqs, uint seqs_off, int packed,
    __global float *W) {
  const uint cb = get_global_id(0), bh = get_global_id(2);
  const uint nvb = (Dv + RETCL_VW - 1) / RETCL_VW;
  if (cb >= nvb) return;
  const uint b = packed ? 0 : bh / H, h = bh % H;
  const uint v0 = cb * RETCL_VW, nv = min((uint)RETCL_VW, Dv - v0);
  const float lg = log_decay[ld_off + h];
  const float g = exp(lg);
  /* The rows this item walks, and its state in and out. */
  uint t0 = 0, count = T;
  int reads_in = has_state_in;
  size_t in_at = (size_t)bh, out_at = (size_t)bh;
  __global float *out_base = S + s_off;
  if (packed) {
    __global const uint *e = seqs + seqs_off + (bh / H) * 6;
    t0 = e[0];
    count = e[1];
    reads_in = e[2] != 0xffffffffu;
    in_at = (size_t)e[2] * H + h;
    out_at = (size_t)e[3] * H + h;
    if (e[4]) out_base = W;
    position = (float)e[5];
  }
  __global float *st = out_base + out_at * Dk * Dv + v0;
  __global const float *st_in = S_in + s_in_off + in_at * Dk * Dv + v0;
  /* An empty sequence keeps the state it was given (or an empty one). */
  if (count == 0)
    for (uint kk = 0; kk < Dk; ++kk)
      store_block(st + (size_t)kk * Dv,
                  reads_in ? load_block(st_in + (size_t)kk * Dv, nv)
                           : (vecf)(0.0f),
                  nv);
  float c = decay_sum(lg, position);
  for (uint t = t0; t < t0 + count; ++t) {
    float keep = g, add = 1.0f;
    if (form == 1) {
      const float c_new = fma(c, g, 1.0f);
      keep = g * sqrt(c / c_new);
      add = 1.0f / sqrt(c_new);
      c = c_new;
    }
    __global const float *qrow = Q + RETCL_AT(q_off, q_sb, q_st, q_sh, b, t, h);
    __global const float *krow = K + RETCL_AT(k_off, k_sb, k_st, k_sh, b, t, h);
    const vecf vrow = add * load_block(V + RETCL_AT(v_off, v_sb, v_st, v_sh, b, t, h) + v0, nv);
    /* o = q·(keep S) + (q·k) v: the token's own term score first, as the
     * parallel form computes it. Folding k v into S before q·S rounds each
     * column apart, so where q·k cancels (a near-orthogonal pair) o's
     * direction carries error ~ε|q||k|/|q·k|, which the group norm after
     * retention then scales up to the output (seen as gradient errors of
     * up to 14% in the model's training check at the first token). */
    vecf o = (vecf)(0.0f);
    float score = 0.0f;
    for (uint kk = 0; kk < Dk; ++kk) {
      vecf s = (vecf)(0.0f);
      if (t > t0)
        s = load_block(st + (size_t)kk * Dv, nv);
      else if (reads_in)
        s = load_block(st_in + (size_t)kk * Dv, nv);
      s = keep * s;
      o = fma((vecf)(qrow[kk]), s, o);
      score = fma(qrow[kk], krow[kk], score);
      store_block(st + (size_t)kk * Dv, fma((vecf)(krow[kk]), vrow, s), nv);
    }
    o = fma((vecf)(score), vrow, o);
    store_block(O + RETCL_AT(o_off, o_sb, o_st, o_sh, b, t, h) + v0, out_scale * o, nv);
  }
}
