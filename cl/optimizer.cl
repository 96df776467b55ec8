/* optimizer.cl - AdamW with gradient-norm clipping (docs/design.md §1.7):
 *
 *   retcl_grad_norm_partial  partial[k] = Σ grad[i]² over the k-th range of
 *                            the tensor (cpu: a work-item's range of
 *                            per_item elements in RETCL_VW-wide vectors;
 *                            gpu: a work-group's range, its lanes striding
 *                            over it and combining in local memory);
 *   retcl_grad_norm_finish   one work-group sums every partial in a fixed
 *                            order: norm = sqrt(Σ), and the clip factor
 *                            min(1, clip / (norm + 1e-6)) (1 without
 *                            clipping) for the update to read;
 *   retcl_adamw              the update of each element, its gradient
 *                            multiplied by that factor on the way in.
 *
 * Nothing depends on the schedule, so two runs give bitwise equal norms and
 * parameters. The host passes the step's constants, computed in double:
 * step_size = lr / (1 − β1^t), inv_sqrt_bc2 = 1 / sqrt(1 − β2^t) and
 * decay = 1 − lr·weight_decay. */

#if !defined(RETCL_CPU) || !defined(RETCL_VW)
#error "optimizer.cl needs the optimizer record's definitions (RETCL_CPU, RETCL_VW)"
#endif

/* Sum of x over the work-group (upper half folded onto the lower, any group
 * size); every item gets it. part holds one float per work-item. */
inline float group_sum(__local float *part, float x) {
  const uint lid = get_local_id(0);
  uint w = get_local_size(0);
  part[lid] = x;
  barrier(CLK_LOCAL_MEM_FENCE);
  while (w > 1) {
    const uint h = (w + 1) / 2;
    if (lid < w - h) part[lid] += part[lid + h];
    barrier(CLK_LOCAL_MEM_FENCE);
    w = h;
  }
  const float r = part[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

/* partial[part_off + k] = Σ grad[g_off + i]², i in [k·chunk, (k+1)·chunk) ∩
 * [0, n), for the k-th work-item (cpu) or work-group (gpu). */
__kernel void retcl_grad_norm_partial(__global const float *grad, uint g_off,
                                      uint n, uint chunk,
                                      __global float *partial, uint part_off,
                                      __local float *part) {
#if RETCL_CPU
  (void)part; /* the gpu pattern's */
  const uint k = get_global_id(0);
  const uint begin = k * chunk;
  if (begin >= n) return;
  const uint end = min(n, begin + chunk);
  __global const float *x = grad + g_off;
  uint i = begin;
  vecf acc = (vecf)(0.0f);
  for (; i + RETCL_VW <= end; i += RETCL_VW) {
    const vecf v = VLOAD(0, x + i);
    acc = fma(v, v, acc);
  }
  float s = lane_sum(acc);
  for (; i < end; ++i) s = fma(x[i], x[i], s);
  partial[part_off + k] = s;
#else
  const uint k = get_group_id(0), lid = get_local_id(0);
  const uint lanes = get_local_size(0);
  const uint begin = k * chunk, end = min(n, begin + chunk);
  float s = 0.0f;
  for (uint i = begin + lid; i < end; i += lanes) {
    const float v = grad[g_off + i];
    s = fma(v, v, s);
  }
  s = group_sum(part, s);
  if (lid == 0) partial[part_off + k] = s;
#endif
}

/* scratch[0] = sqrt(Σ_k partial[k]) (the norm), scratch[1] = the clip
 * factor; norm_out[norm_off] = the norm when has_norm_out. One work-group
 * (cpu: one work-item, which sums blocks of 256 partials and then the block
 * sums). */
__kernel void retcl_grad_norm_finish(__global const float *partial,
                                     uint count, float clip_norm,
                                     __global float *scratch, uint scratch_off,
                                     __global float *norm_out, uint norm_off,
                                     int has_norm_out, __local float *part) {
#if RETCL_CPU
  (void)part; /* the gpu pattern's */
  float total = 0.0f;
  for (uint b = 0; b < count; b += 256) {
    const uint e = min(count, b + 256);
    float block = 0.0f;
    for (uint k = b; k < e; ++k) block += partial[k];
    total += block;
  }
#else
  const uint lid = get_local_id(0), lanes = get_local_size(0);
  float s = 0.0f;
  for (uint k = lid; k < count; k += lanes) s += partial[k];
  const float total = group_sum(part, s);
  if (lid != 0) return;
#endif
  const float norm = sqrt(total);
  scratch[scratch_off] = norm;
  scratch[scratch_off + 1] =
      clip_norm > 0.0f ? fmin(1.0f, clip_norm / (norm + 1e-6f)) : 1.0f;
  if (has_norm_out) norm_out[norm_off] = norm;
}

/* One AdamW step over n elements (docs/design.md §1.7), torch's order:
 *   g = grad · factor         (factor = scratch[factor_off] if use_clip)
 *   m = β1·m + (1 − β1)·g
 *   v = β2·v + (1 − β2)·g²
 *   p = p·decay − step_size · m / (sqrt(v)·inv_sqrt_bc2 + eps)
 * cpu: per_item consecutive elements per work-item, in vectors; gpu: one
 * element per work-item. */
#define RETCL_ADAMW(p, g, mm, vv)                                        \
  do {                                                                   \
    mm = beta1 * mm + one_minus_beta1 * (g);                             \
    vv = beta2 * vv + one_minus_beta2 * ((g) * (g));                     \
    p = p * decay - step_size * (mm / (sqrt(vv) * inv_sqrt_bc2 + eps));  \
  } while (0)

__kernel void retcl_adamw(__global float *param, uint p_off,
                          __global const float *grad, uint g_off,
                          __global float *m, uint m_off, __global float *v,
                          uint v_off, uint n, __global const float *scratch,
                          uint factor_off, int use_clip, float beta1,
                          float one_minus_beta1, float beta2,
                          float one_minus_beta2, float step_size,
                          float inv_sqrt_bc2, float eps, float decay,
                          uint per_item) {
  const uint begin = get_global_id(0) * per_item;
  const uint end = min(n, begin + per_item);
  if (begin >= end) return;
  const float factor = use_clip ? scratch[factor_off] : 1.0f;
  uint i = begin;
#if RETCL_CPU
  for (; i + RETCL_VW <= end; i += RETCL_VW) {
    vecf p = VLOAD(0, param + p_off + i), mm = VLOAD(0, m + m_off + i);
    vecf vv = VLOAD(0, v + v_off + i);
    const vecf g = VLOAD(0, grad + g_off + i) * factor;
    RETCL_ADAMW(p, g, mm, vv);
    VSTORE(p, 0, param + p_off + i);
    VSTORE(mm, 0, m + m_off + i);
    VSTORE(vv, 0, v + v_off + i);
  }
#endif
  for (; i < end; ++i) {
    float p = param[p_off + i], mm = m[m_off + i], vv = v[v_off + i];
    const float g = grad[g_off + i] * factor;
    RETCL_ADAMW(p, g, mm, vv);
    param[p_off + i] = p;
    m[m_off + i] = mm;
    v[v_off + i] = vv;
  }
}
