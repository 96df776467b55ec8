/* elementwise.cl - the elementwise pieces of a RetNet block: token embedding,
 * residual update and the GLU activation product, and the gradients of the
 * GLU and of the embedding lookup.
 *
 * Each work-item handles `per_item` consecutive elements: a contiguous range
 * on CPUs (what PoCL vectorises well), 1 on GPUs (neighbouring work-items,
 * neighbouring addresses). */

#if !defined(RETCL_CPU) || !defined(RETCL_VW)
#error "elementwise.cl needs the elementwise record's definitions (RETCL_CPU, RETCL_VW)"
#endif

/* out[r*width + i] = scale * table[tokens[r]*width + i] */
__kernel void retcl_embed(__global const int *tokens,
                          __global const RETCL_WT *table, uint table_off,
                          __global float *out, uint out_off, uint rows,
                          uint width, float scale, uint per_item) {
  const uint n = rows * width;
  const uint begin = get_global_id(0) * per_item;
  const uint end = min(n, begin + per_item);
  for (uint e = begin; e < end; ++e) {
    const uint r = e / width, i = e - r * width;
    out[out_off + e] =
        scale * RETCL_LOAD_W(table, table_off + (uint)tokens[r] * width + i);
  }
}

/* x = alpha * x + y */
__kernel void retcl_residual(__global float *x, uint x_off,
                             __global const float *y, uint y_off, uint n,
                             float alpha, uint per_item) {
  const uint begin = get_global_id(0) * per_item;
  const uint end = min(n, begin + per_item);
  for (uint e = begin; e < end; ++e)
    x[x_off + e] = fma(alpha, x[x_off + e], y[y_off + e]);
}

/* a = act(a) * g; act 0 = gelu (erf form), 1 = swish. gelu goes through
 * erfc, which keeps precision in the negative tail. The vector form lets a
 * CPU work-item evaluate erfc/exp VW lanes at a time (scalar erfc was a
 * sixth of a batch-8 decode step on PoCL). */
#define RETCL_GLU_ACT(x, act)                                   \
  ((act) == 0 ? 0.5f * (x) * erfc(-(x) * 0.70710678118654752f) \
              : (x) / (1.0f + exp(-(x))))

__kernel void retcl_glu(__global float *a, uint a_off,
                        __global const float *g, uint g_off, uint n, int act,
                        uint per_item) {
  const uint begin = get_global_id(0) * per_item;
  const uint end = min(n, begin + per_item);
  uint e = begin;
#if RETCL_CPU
  for (; e + RETCL_VW <= end; e += RETCL_VW) {
    const vecf x = VLOAD(0, a + a_off + e);
    VSTORE(RETCL_GLU_ACT(x, act) * VLOAD(0, g + g_off + e), 0, a + a_off + e);
  }
#endif
  for (; e < end; ++e) {
    const float x = a[a_off + e];
    a[a_off + e] = RETCL_GLU_ACT(x, act) * g[g_off + e];
  }
}

/* ---- gradients ------------------------------------------------------------ */

/* GLU backward (docs/design.md §1.7): with h = act(a) ⊙ g,
 *   d_a = d_h ⊙ g ⊙ act'(a),   d_g = d_h ⊙ act(a),
 *   gelu'(x)  = Φ(x) + x·φ(x)            (Φ through erfc, as the forward),
 *   swish'(x) = σ(x)·(1 + x·(1 − σ(x)))  (σ = 0 for very negative x, so the
 *                                          product stays finite).
 * Every element's a, g and d_h are read before its d_a and d_g are
 * written, so d_a and d_g may each be one of the inputs exactly (the host
 * allows that and nothing else). Works on floats and on vecf alike. */
#define RETCL_GLU_SIGMOID(x) (1.0f / (1.0f + exp(-(x))))
#define RETCL_GLU_DACT(x, act)                                          \
  ((act) == 0                                                           \
       ? 0.5f * erfc(-(x) * 0.70710678118654752f) +                     \
             (x) * (0.39894228040143268f * exp(-0.5f * (x) * (x)))      \
       : RETCL_GLU_SIGMOID(x) * (1.0f + (x) * (1.0f - RETCL_GLU_SIGMOID(x))))

__kernel void retcl_glu_backward(__global const float *a, uint a_off,
                                 __global const float *g, uint g_off,
                                 __global const float *d_h, uint dh_off,
                                 __global float *d_a, uint da_off,
                                 __global float *d_g, uint dg_off, uint n,
                                 int act, uint per_item) {
  const uint begin = get_global_id(0) * per_item;
  const uint end = min(n, begin + per_item);
  uint e = begin;
#if RETCL_CPU
  for (; e + RETCL_VW <= end; e += RETCL_VW) {
    const vecf x = VLOAD(0, a + a_off + e), gv = VLOAD(0, g + g_off + e);
    const vecf dh = VLOAD(0, d_h + dh_off + e);
    const vecf f = RETCL_GLU_ACT(x, act), df = RETCL_GLU_DACT(x, act);
    VSTORE(dh * gv * df, 0, d_a + da_off + e);
    VSTORE(dh * f, 0, d_g + dg_off + e);
  }
#endif
  for (; e < end; ++e) {
    const float x = a[a_off + e], gv = g[g_off + e], dh = d_h[dh_off + e];
    const float f = RETCL_GLU_ACT(x, act), df = RETCL_GLU_DACT(x, act);
    d_a[da_off + e] = dh * gv * df;
    d_g[dg_off + e] = dh * f;
  }
}

/* Embedding backward (docs/design.md §1.7), without atomics: the host
 * groups the positions by token into `index`, uint entries
 *   rows[nrows]      the table rows written, in increasing order
 *   starts[nrows+1]  row u's positions are pos[starts[u] .. starts[u+1])
 *   pos[...]         positions (rows of d_x), increasing within a row
 * and each work-item sums one (row, column range) over its positions in
 * that order, so the result does not depend on the schedule:
 *   d_table[rows[u], c] = (accumulate ? d_table[rows[u], c] : 0)
 *                         + scale · Σ_p d_x[p, c].
 * Grid: dimension 0 column ranges of per_item columns (cpu: a range, gpu:
 * one column each, neighbouring items neighbouring columns), dimension 1
 * rows. */
__kernel void retcl_embedding_backward(__global const uint *index, uint nrows,
                                       __global const float *d_x, uint dx_off,
                                       __global float *d_table, uint dt_off,
                                       uint width, float scale,
                                       int accumulate, uint per_item) {
  const uint u = get_global_id(1);
  const uint c0 = get_global_id(0) * per_item;
  if (u >= nrows || c0 >= width) return;
  const uint c1 = min(width, c0 + per_item);
  const uint row = index[u];
  const uint first = index[nrows + u], last = index[nrows + u + 1];
  __global const uint *pos = index + 2 * nrows + 1;
  __global float *out = d_table + dt_off + row * width;
  uint c = c0;
#if RETCL_CPU
  for (; c + RETCL_VW <= c1; c += RETCL_VW) {
    vecf acc = (vecf)(0.0f);
    for (uint p = first; p < last; ++p)
      acc += VLOAD(0, d_x + dx_off + pos[p] * width + c);
    const vecf old = accumulate ? VLOAD(0, out + c) : (vecf)(0.0f);
    VSTORE(fma((vecf)(scale), acc, old), 0, out + c);
  }
#endif
  for (; c < c1; ++c) {
    float acc = 0.0f;
    for (uint p = first; p < last; ++p) acc += d_x[dx_off + pos[p] * width + c];
    const float old = accumulate ? out[c] : 0.0f;
    out[c] = fma(scale, acc, old);
  }
}
