/* elementwise.cl - the baseline's small kernels: embedding gather,
 * residual add, GLU activation product, and appending new keys and values
 * to the KV cache.
 *
 * Each work-item handles `per` consecutive elements: a contiguous range on
 * CPUs (what PoCL vectorises well), one on GPUs (neighbouring work-items,
 * neighbouring addresses). */

/* out[r, :] = table[tokens[r], :] over rows x width floats */
__kernel void tf_embed(__global const int *tokens, __global const float *table,
                       __global float *out, uint rows, uint width, uint per) {
  const uint n = rows * width;
  const uint first = get_global_id(0) * per;
  const uint end = min(n, first + per);
  for (uint e = first; e < end; ++e) {
    const uint r = e / width, i = e - r * width;
    out[e] = table[(uint)tokens[r] * width + i];
  }
}

/* x += y */
__kernel void tf_residual(__global float *x, uint x_off,
                          __global const float *y, uint y_off, uint n,
                          uint per) {
  const uint first = get_global_id(0) * per;
  const uint end = min(n, first + per);
  for (uint e = first; e < end; ++e) x[x_off + e] += y[y_off + e];
}

/* a = act(a) ⊙ g; act 0 = gelu (erf form), 1 = swish. gelu as
 * 0.5 x erfc(-x/√2): erfc keeps its digits in the negative tail, where
 * 1 + erf(x/√2) would cancel. On CPUs a work-item evaluates TF_LVW lanes at
 * a time (as RetCL's GLU does; scalar erfc is several times slower). */
#define TF_GLU_ACT(x, act)                                       \
  ((act) == 0 ? 0.5f * (x) * erfc(-(x) * 0.70710678118654752f) \
              : (x) / (1.0f + exp(-(x))))

__kernel void tf_glu(__global float *a, uint a_off, __global const float *g,
                     uint g_off, uint n, int act, uint per) {
  const uint first = get_global_id(0) * per;
  const uint end = min(n, first + per);
  uint e = first;
#if TF_CPU
  for (; e + TF_LVW <= end; e += TF_LVW) {
    const lvec x = LLOAD(0, a + a_off + e);
    LSTORE(TF_GLU_ACT(x, act) * LLOAD(0, g + g_off + e), 0, a + a_off + e);
  }
#endif
  for (; e < end; ++e) {
    const float x = a[a_off + e];
    a[a_off + e] = TF_GLU_ACT(x, act) * g[g_off + e];
  }
}

/* Append T tokens of rotated keys k and values v (token-major [B, T, H, Dh])
 * to the cache (head-major [B, H, cap, Dh]) at positions pos0 .. pos0+T-1.
 * Element e of the source is (b, t, h, i); d = H * Dh. */
__kernel void tf_kv_append(__global const float *k, uint k_off,
                           __global const float *v, uint v_off,
                           __global float *kc, __global float *vc, uint T,
                           uint H, uint cap, uint pos0, uint B, uint per) {
  const uint d = H * TF_DH;
  const uint n = B * T * d;
  const uint first = get_global_id(0) * per;
  const uint end = min(n, first + per);
  for (uint e = first; e < end; ++e) {
    const uint row = e / d, c = e - row * d; /* row = b*T + t, c = h*Dh + i */
    const uint b = row / T, t = row - b * T;
    const uint h = c / TF_DH, i = c - h * TF_DH;
    const uint dst = ((b * H + h) * cap + pos0 + t) * TF_DH + i;
    kc[dst] = k[k_off + e];
    vc[dst] = v[v_off + e];
  }
}
