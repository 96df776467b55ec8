/* elementwise.cl - the elementwise pieces of a RetNet block: token embedding,
 * residual update and the GLU activation product.
 *
 * Each work-item handles `per_item` consecutive elements: a contiguous range
 * on CPUs (what PoCL vectorises well), 1 on GPUs (neighbouring work-items,
 * neighbouring addresses). */

#if !defined(RETCL_CPU) || !defined(RETCL_VW)
#error "elementwise.cl needs the elementwise record's definitions (RETCL_CPU, RETCL_VW)"
#endif

/* out[r*width + i] = scale * table[tokens[r]*width + i] */
__kernel void retcl_embed(__global const int *tokens,
                          __global const float *table, uint table_off,
                          __global float *out, uint out_off, uint rows,
                          uint width, float scale, uint per_item) {
  const uint n = rows * width;
  const uint begin = get_global_id(0) * per_item;
  const uint end = min(n, begin + per_item);
  for (uint e = begin; e < end; ++e) {
    const uint r = e / width, i = e - r * width;
    out[out_off + e] = scale * table[table_off + (uint)tokens[r] * width + i];
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
