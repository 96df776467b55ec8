/* attention.cl - causal softmax attention against the KV cache.
 *
 * Layouts: queries and outputs token-major [B, T, H, Dh] (what the
 * projections produce); the cache head-major [B, H, cap, Dh], so that one
 * (b, h) reads its keys and values as one contiguous stretch. Query t of a
 * call sits at position pos0 + t and sees cache positions 0 .. pos0 + t.
 * Scores are q·k · scale with scale = 1/sqrt(Dh), applied to q once.
 *
 * Softmax is computed online (flash attention): a running max m and sum l
 * per query row; each block of scores rescales what came before by
 * exp(m_old - m_new), so no exponent is ever positive and nothing
 * overflows, and the full score matrix is never stored.
 *
 * Decode (T = 1) is "flash-decoding": the context is split into chunks
 * scored by different work-items (CPU) or work-groups (GPU), each leaving
 * (m, l, Σ exp(s - m) v) for its chunk; tf_attn_decode_combine merges the
 * chunks. Every cached key and value is read exactly once per step.
 *
 * TF_CPU picks the access pattern: on CPUs a work-item owns contiguous
 * positions and a head's row as TF_NV vectors (PoCL vectorises that); on
 * GPUs a work-group shares tiles through local memory. */

/* q·k for a query held as TF_NV vectors and a key row in global memory. */
inline float tf_dot_row(const hvec *q, __global const float *k) {
  hvec s = q[0] * HLOAD(0, k);
  for (uint v = 1; v < TF_NV; ++v) s = fma(q[v], HLOAD(v, k), s);
  return HSUM(s);
}

#if TF_CPU

/* One work-item per (b*H + h, chunk): chunk = [j0, j1) of the n cached
 * positions, scored TF_DSUB at a time (scores kept in a private array, so
 * each key and each value row is loaded once, with one exp per position).
 * Writes part_acc [BH, splits, Dh] at acc_off and part_ml [BH, splits, 2]
 * = (m, l) at ml_off of part. */
__kernel void tf_attn_decode_partial(
    __global const float *q, uint q_off, __global const float *K,
    __global const float *V, uint cap, uint n, uint chunk, uint splits,
    float scale, __global float *part, uint acc_off, uint ml_off,
    uint count) {
  __global float *part_acc = part + acc_off, *part_ml = part + ml_off;
  const uint gid = get_global_id(0);
  if (gid >= count) return; /* the range is padded to whole work-groups */
  const uint bh = gid / splits, s = gid - bh * splits;
  const uint j0 = s * chunk, j1 = min(n, j0 + chunk);
  __global const float *qr = q + q_off + bh * TF_DH;
  __global const float *kb = K + bh * cap * TF_DH;
  __global const float *vb = V + bh * cap * TF_DH;
  hvec qv[TF_NV], acc[TF_NV];
  for (uint v = 0; v < TF_NV; ++v) {
    qv[v] = HLOAD(v, qr) * scale;
    acc[v] = (hvec)(0.0f);
  }
  float m = -INFINITY, l = 0.0f;
  for (uint jb = j0; jb < j1; jb += TF_DSUB) {
    const uint cnt = min((uint)TF_DSUB, j1 - jb);
    float sc[TF_DSUB];
    float bm = -INFINITY;
    for (uint jj = 0; jj < cnt; ++jj) {
      sc[jj] = tf_dot_row(qv, kb + (jb + jj) * TF_DH);
      bm = fmax(bm, sc[jj]);
    }
    const float mn = fmax(m, bm);
    const float corr = exp(m - mn); /* 0 on the first block (m = -inf) */
    l *= corr;
    for (uint v = 0; v < TF_NV; ++v) acc[v] *= corr;
    for (uint jj = 0; jj < cnt; ++jj) {
      const float p = exp(sc[jj] - mn);
      __global const float *vr = vb + (jb + jj) * TF_DH;
      l += p;
      for (uint v = 0; v < TF_NV; ++v) acc[v] = fma((hvec)(p), HLOAD(v, vr), acc[v]);
    }
    m = mn;
  }
  for (uint v = 0; v < TF_NV; ++v) HSTORE(acc[v], v, part_acc + gid * TF_DH);
  part_ml[2 * gid] = m;
  part_ml[2 * gid + 1] = l;
}

/* One work-item per (b*H + h, tile of TF_PQ query rows): the tile's rows
 * walk the keys 0 .. (last row's position) in blocks of TF_PKB, each key
 * and value row loaded once per tile and used by all TF_PQ rows. A tile
 * shorter than TF_PQ repeats its last row and stores only the real ones. */
__kernel void tf_attn_prefill(__global const float *q, uint q_off,
                              __global const float *K, __global const float *V,
                              uint cap, __global float *out, uint out_off,
                              uint T, uint H, uint pos0, float scale,
                              uint tiles, uint count) {
  const uint gid = get_global_id(0);
  if (gid >= count) return; /* the range is padded to whole work-groups */
  const uint bh = gid / tiles, tile = gid - bh * tiles;
  const uint b = bh / H, h = bh - b * H;
  const uint t0 = tile * TF_PQ, rows = min((uint)TF_PQ, T - t0);
  const uint qpos = pos0 + t0;   /* position of row 0 */
  const uint kend = qpos + rows; /* keys the last row sees */
  __global const float *kb = K + bh * cap * TF_DH;
  __global const float *vb = V + bh * cap * TF_DH;
  hvec qv[TF_PQ][TF_NV], acc[TF_PQ][TF_NV];
  float m[TF_PQ], l[TF_PQ];
  for (uint r = 0; r < TF_PQ; ++r) {
    __global const float *qr =
        q + q_off + ((b * T + t0 + min(r, rows - 1)) * H + h) * TF_DH;
    for (uint v = 0; v < TF_NV; ++v) {
      qv[r][v] = HLOAD(v, qr) * scale;
      acc[r][v] = (hvec)(0.0f);
    }
    m[r] = -INFINITY;
    l[r] = 0.0f;
  }
  for (uint jb = 0; jb < kend; jb += TF_PKB) {
    const uint cnt = min((uint)TF_PKB, kend - jb);
    float s[TF_PQ][TF_PKB];
    for (uint jj = 0; jj < cnt; ++jj) {
      hvec kv[TF_NV];
      for (uint v = 0; v < TF_NV; ++v) kv[v] = HLOAD(v, kb + (jb + jj) * TF_DH);
      for (uint r = 0; r < TF_PQ; ++r) {
        hvec d = qv[r][0] * kv[0];
        for (uint v = 1; v < TF_NV; ++v) d = fma(qv[r][v], kv[v], d);
        /* causal: row r (position qpos + r) sees keys up to its own */
        s[r][jj] = jb + jj <= qpos + r ? HSUM(d) : -INFINITY;
      }
    }
    for (uint r = 0; r < TF_PQ; ++r) {
      float bm = -INFINITY;
      for (uint jj = 0; jj < cnt; ++jj) bm = fmax(bm, s[r][jj]);
      /* key 0 is in the first block for every row, so mn is finite */
      const float mn = fmax(m[r], bm);
      const float corr = exp(m[r] - mn);
      l[r] *= corr;
      for (uint v = 0; v < TF_NV; ++v) acc[r][v] *= corr;
      m[r] = mn;
    }
    for (uint jj = 0; jj < cnt; ++jj) {
      hvec vv[TF_NV];
      for (uint v = 0; v < TF_NV; ++v) vv[v] = HLOAD(v, vb + (jb + jj) * TF_DH);
      for (uint r = 0; r < TF_PQ; ++r) {
        const float p = exp(s[r][jj] - m[r]); /* masked: exp(-inf) = 0 */
        l[r] += p;
        for (uint v = 0; v < TF_NV; ++v) acc[r][v] = fma((hvec)(p), vv[v], acc[r][v]);
      }
    }
  }
  for (uint r = 0; r < rows; ++r) {
    __global float *o = out + out_off + ((b * T + t0 + r) * H + h) * TF_DH;
    const float inv = 1.0f / l[r];
    for (uint v = 0; v < TF_NV; ++v) HSTORE(acc[r][v] * inv, v, o);
  }
}

#else /* GPU access patterns */

/* Max and sum over a work-group of TF_WG items (TF_WG a power of two). */
inline float tf_group_max(float x, __local float *red) {
  const uint lid = get_local_id(0);
  red[lid] = x;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint s = TF_WG / 2; s > 0; s >>= 1) {
    if (lid < s) red[lid] = fmax(red[lid], red[lid + s]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float r = red[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

inline float tf_group_sum(float x, __local float *red) {
  const uint lid = get_local_id(0);
  red[lid] = x;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint s = TF_WG / 2; s > 0; s >>= 1) {
    if (lid < s) red[lid] += red[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float r = red[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

/* q·k with q in local memory (every item reads the same address: a
 * broadcast) and the key row in global memory. */
inline float tf_dot_local(__local const float *q, __global const float *k) {
  hvec s = HLOAD(0, q) * HLOAD(0, k);
  for (uint v = 1; v < TF_NV; ++v) s = fma(HLOAD(v, q), HLOAD(v, k), s);
  return HSUM(s);
}

/* One work-group per (b*H + h, chunk of TF_DCHUNK positions; `chunk` must
 * equal it): items score positions lid, lid + TF_WG, ...; the group
 * reduces max and sum; then item lid accumulates dimensions lid, lid +
 * TF_WG, ... over the chunk (neighbouring items, neighbouring addresses). */
__kernel __attribute__((reqd_work_group_size(TF_WG, 1, 1)))
void tf_attn_decode_partial(
    __global const float *q, uint q_off, __global const float *K,
    __global const float *V, uint cap, uint n, uint chunk, uint splits,
    float scale, __global float *part, uint acc_off, uint ml_off,
    uint count) {
  __global float *part_acc = part + acc_off, *part_ml = part + ml_off;
  __local float qs[TF_DH];
  __local float sc[TF_DCHUNK];
  __local float red[TF_WG];
  (void)count; /* the host launches exactly one group per chunk */
  const uint lid = get_local_id(0), gid = get_group_id(0);
  const uint bh = gid / splits, s = gid - bh * splits;
  const uint j0 = s * chunk, cnt = min(n, j0 + chunk) - j0;
  __global const float *kb = K + (bh * cap + j0) * TF_DH;
  __global const float *vb = V + (bh * cap + j0) * TF_DH;
  for (uint i = lid; i < TF_DH; i += TF_WG) qs[i] = q[q_off + bh * TF_DH + i] * scale;
  barrier(CLK_LOCAL_MEM_FENCE);
  float mx = -INFINITY;
  for (uint jj = lid; jj < cnt; jj += TF_WG) {
    sc[jj] = tf_dot_local(qs, kb + jj * TF_DH);
    mx = fmax(mx, sc[jj]);
  }
  const float m = tf_group_max(mx, red);
  float sum = 0.0f;
  for (uint jj = lid; jj < cnt; jj += TF_WG) {
    sc[jj] = exp(sc[jj] - m);
    sum += sc[jj];
  }
  const float l = tf_group_sum(sum, red); /* its barriers publish sc */
  for (uint i = lid; i < TF_DH; i += TF_WG) {
    float a = 0.0f;
    for (uint jj = 0; jj < cnt; ++jj) a = fma(sc[jj], vb[jj * TF_DH + i], a);
    part_acc[gid * TF_DH + i] = a;
  }
  if (lid == 0) {
    part_ml[2 * gid] = m;
    part_ml[2 * gid + 1] = l;
  }
}

/* Accumulator elements each item owns in the GPU prefill kernel. */
#define TF_GACC ((TF_GQ * TF_DH + TF_WG - 1) / TF_WG)

/* One work-group per (b*H + h, tile of TF_GQ query rows). Per block of
 * TF_GKB keys: the group loads keys and values into local memory, scores
 * every (row, key) pair, one item per row updates its running max and sum,
 * and every item updates the accumulator elements it owns (element
 * e = lid + i*TF_WG of the tile's [TF_GQ, Dh] output). */
__kernel __attribute__((reqd_work_group_size(TF_WG, 1, 1)))
void tf_attn_prefill(__global const float *q, uint q_off,
                     __global const float *K, __global const float *V,
                     uint cap, __global float *out, uint out_off, uint T,
                     uint H, uint pos0, float scale, uint tiles,
                     uint count) {
  __local float qs[TF_GQ * TF_DH];
  __local float ks[TF_GKB * TF_DH], vs[TF_GKB * TF_DH];
  __local float ps[TF_GQ * TF_GKB];
  __local float ms[TF_GQ], ls[TF_GQ], cs[TF_GQ];
  (void)count; /* the host launches exactly one group per tile */
  const uint lid = get_local_id(0), grp = get_group_id(0);
  const uint bh = grp / tiles, tile = grp - bh * tiles;
  const uint b = bh / H, h = bh - b * H;
  const uint t0 = tile * TF_GQ, rows = min((uint)TF_GQ, T - t0);
  const uint qpos = pos0 + t0, kend = qpos + rows;
  __global const float *kb = K + bh * cap * TF_DH;
  __global const float *vb = V + bh * cap * TF_DH;
  for (uint e = lid; e < TF_GQ * TF_DH; e += TF_WG) {
    const uint r = e / TF_DH, i = e - r * TF_DH;
    qs[e] = q[q_off + ((b * T + t0 + min(r, rows - 1)) * H + h) * TF_DH + i] * scale;
  }
  if (lid < TF_GQ) {
    ms[lid] = -INFINITY;
    ls[lid] = 0.0f;
  }
  float acc[TF_GACC];
  for (uint i = 0; i < TF_GACC; ++i) acc[i] = 0.0f;
  for (uint jb = 0; jb < kend; jb += TF_GKB) {
    const uint cnt = min((uint)TF_GKB, kend - jb);
    barrier(CLK_LOCAL_MEM_FENCE); /* the last block's tiles are consumed */
    for (uint e = lid; e < cnt * TF_DH; e += TF_WG) {
      ks[e] = kb[jb * TF_DH + e];
      vs[e] = vb[jb * TF_DH + e];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint e = lid; e < TF_GQ * TF_GKB; e += TF_WG) {
      const uint r = e / TF_GKB, jj = e - r * TF_GKB;
      float x = -INFINITY;
      if (jj < cnt && jb + jj <= qpos + r) {
        hvec d = HLOAD(0, qs + r * TF_DH) * HLOAD(0, ks + jj * TF_DH);
        for (uint v = 1; v < TF_NV; ++v)
          d = fma(HLOAD(v, qs + r * TF_DH), HLOAD(v, ks + jj * TF_DH), d);
        x = HSUM(d);
      }
      ps[e] = x;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < TF_GQ) {
      float bm = -INFINITY;
      for (uint jj = 0; jj < cnt; ++jj) bm = fmax(bm, ps[lid * TF_GKB + jj]);
      const float mn = fmax(ms[lid], bm); /* finite: key 0 is in block 0 */
      float sum = 0.0f;
      for (uint jj = 0; jj < cnt; ++jj) {
        const float p = exp(ps[lid * TF_GKB + jj] - mn);
        ps[lid * TF_GKB + jj] = p;
        sum += p;
      }
      cs[lid] = exp(ms[lid] - mn);
      ls[lid] = ls[lid] * cs[lid] + sum;
      ms[lid] = mn;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint i = 0; i < TF_GACC; ++i) {
      const uint e = lid + i * TF_WG;
      if (e < TF_GQ * TF_DH) {
        const uint r = e / TF_DH, c = e - r * TF_DH;
        float a = acc[i] * cs[r];
        for (uint jj = 0; jj < cnt; ++jj)
          a = fma(ps[r * TF_GKB + jj], vs[jj * TF_DH + c], a);
        acc[i] = a;
      }
    }
  }
  for (uint i = 0; i < TF_GACC; ++i) {
    const uint e = lid + i * TF_WG;
    const uint r = e / TF_DH, c = e - r * TF_DH;
    if (e < TF_GQ * TF_DH && r < rows)
      out[out_off + ((b * T + t0 + r) * H + h) * TF_DH + c] = acc[i] / ls[r];
  }
}

#endif /* TF_CPU */

/* Merge the chunks of a decode step: one work-item per (b*H + h, vector v
 * of head_dim): o = Σ_s e^(m_s - M) acc_s / Σ_s e^(m_s - M) l_s with M the
 * largest chunk max. Writes token-major [B, 1, H, Dh] at out_off. */
__kernel void tf_attn_decode_combine(__global const float *part,
                                     uint acc_off, uint ml_off, uint splits,
                                     __global float *out, uint out_off) {
  __global const float *part_acc = part + acc_off, *part_ml = part + ml_off;
  const uint gid = get_global_id(0);
  const uint bh = gid / TF_NV, v = gid - bh * TF_NV;
  const uint p0 = bh * splits;
  float M = -INFINITY;
  for (uint s = 0; s < splits; ++s) M = fmax(M, part_ml[2 * (p0 + s)]);
  hvec num = (hvec)(0.0f);
  float den = 0.0f;
  for (uint s = 0; s < splits; ++s) {
    const float w = exp(part_ml[2 * (p0 + s)] - M);
    den = fma(w, part_ml[2 * (p0 + s) + 1], den);
    num = fma((hvec)(w), HLOAD(v, part_acc + (p0 + s) * TF_DH), num);
  }
  HSTORE(num / den, v, out + out_off + bh * TF_DH);
}
