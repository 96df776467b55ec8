/* loss.cl - cross-entropy over the vocabulary with an ignore index
 * (docs/design.md §1.7), in two deterministic passes:
 *
 *   retcl_cross_entropy_rows  every row r of logits x (vocab V):
 *       m = max_j x_j,  s = Σ_j exp(x_j − m),
 *       row_loss[r] = (m − x_t) + log(s)           (t = targets[r])
 *       d_logits[r, j] = exp(x_j − m) · (inv_count / s) − [j = t]·inv_count
 *     and, for a row whose target is ignore_index, row_loss 0 and a zero
 *     gradient row (its logits are not read);
 *   retcl_cross_entropy_mean  loss = inv_count · Σ_r row_loss[r], summed in
 *     a fixed order by one work-group.
 *
 * inv_count = 1 / (number of counted rows), or 0 when every row is ignored
 * (then the loss and every gradient are 0). d_logits may be logits itself:
 * each row's x_t is read first, and the gradient is written only after the
 * row's max and sum are complete; on the gpu pattern each lane reads and
 * writes only its own columns (j ≡ lane mod lanes), so no global value is
 * shared between lanes.
 *
 * Access patterns (loss.access): cpu gives a work-item a row, walked in
 * vectors of RETCL_VW floats; gpu gives a work-group a row, its lanes
 * striding over it and combining their maxima and sums in local memory.
 * Group sizes need not be powers of two. */

#if !defined(RETCL_CPU) || !defined(RETCL_VW)
#error "loss.cl needs the loss record's definitions (RETCL_CPU, RETCL_VW)"
#endif

/* Largest lane of x. */
inline float lane_max(vecf x) {
#if RETCL_VW == 16
  float8 h8 = fmax(x.lo, x.hi);
#else
  float8 h8 = x;
#endif
  float4 h4 = fmax(h8.lo, h8.hi);
  float2 h2 = fmax(h4.lo, h4.hi);
  return fmax(h2.x, h2.y);
}

/* Sum (is_max 0) or maximum (is_max 1) of x over the work-group, in a fixed
 * pairing (upper half folded onto the lower), for any group size. part
 * holds one float per work-item; every item gets the result. */
inline float group_combine(__local float *part, float x, int is_max) {
  const uint lid = get_local_id(0);
  uint w = get_local_size(0);
  part[lid] = x;
  barrier(CLK_LOCAL_MEM_FENCE);
  while (w > 1) {
    const uint h = (w + 1) / 2;
    if (lid < w - h)
      part[lid] = is_max ? fmax(part[lid], part[lid + h])
                         : part[lid] + part[lid + h];
    barrier(CLK_LOCAL_MEM_FENCE);
    w = h;
  }
  const float r = part[0];
  barrier(CLK_LOCAL_MEM_FENCE); /* part is written again by the next call */
  return r;
}

__kernel void retcl_cross_entropy_rows(__global const float *logits,
                                       uint logits_off,
                                       __global const int *targets,
                                       uint targets_off, int ignore_index,
                                       uint rows, uint vocab, float inv_count,
                                       __global float *d_logits, uint d_off,
                                       int has_d, __global float *row_loss,
                                       __local float *part) {
#if RETCL_CPU
  const uint row = get_global_id(0);
  (void)part; /* the gpu pattern's */
#else
  const uint row = get_group_id(0);
  const uint lid = get_local_id(0), lanes = get_local_size(0);
#endif
  if (row >= rows) return;
  const int t = targets[targets_off + row];
  __global const float *x = logits + logits_off + row * vocab;
  __global float *d = d_logits + d_off + row * vocab;
  if (t == ignore_index) {
#if RETCL_CPU
    row_loss[row] = 0.0f;
    if (has_d) {
      uint j = 0;
      for (; j + RETCL_VW <= vocab; j += RETCL_VW) VSTORE((vecf)(0.0f), 0, d + j);
      for (; j < vocab; ++j) d[j] = 0.0f;
    }
#else
    if (lid == 0) row_loss[row] = 0.0f;
    if (has_d)
      for (uint j = lid; j < vocab; j += lanes) d[j] = 0.0f;
#endif
    return;
  }
#if RETCL_CPU
  /* The target's logit, before anything is written (d may be x). */
  const float xt = x[t];
  uint j = 0;
  vecf vm = (vecf)(-INFINITY);
  for (; j + RETCL_VW <= vocab; j += RETCL_VW) vm = fmax(vm, VLOAD(0, x + j));
  float m = lane_max(vm);
  for (; j < vocab; ++j) m = fmax(m, x[j]);
  vecf vs = (vecf)(0.0f);
  for (j = 0; j + RETCL_VW <= vocab; j += RETCL_VW)
    vs += exp(VLOAD(0, x + j) - m);
  float s = lane_sum(vs);
  for (; j < vocab; ++j) s += exp(x[j] - m);
  row_loss[row] = (m - xt) + log(s);
  if (!has_d) return;
  const float r = inv_count / s;
  for (j = 0; j + RETCL_VW <= vocab; j += RETCL_VW)
    VSTORE(exp(VLOAD(0, x + j) - m) * r, 0, d + j);
  for (; j < vocab; ++j) d[j] = exp(x[j] - m) * r;
  d[t] = exp(xt - m) * r - inv_count;
#else
  /* The lane that owns column t (and writes d[t]) reads the target's logit
   * first and writes the row's loss: no lane touches another's columns. */
  const uint owner = (uint)t % lanes;
  const float xt = lid == owner ? x[t] : 0.0f;
  float m = -INFINITY;
  for (uint j = lid; j < vocab; j += lanes) m = fmax(m, x[j]);
  m = group_combine(part, m, 1);
  float s = 0.0f;
  for (uint j = lid; j < vocab; j += lanes) s += exp(x[j] - m);
  s = group_combine(part, s, 0);
  if (lid == owner) row_loss[row] = (m - xt) + log(s);
  if (!has_d) return;
  const float r = inv_count / s;
  for (uint j = lid; j < vocab; j += lanes)
    d[j] = exp(x[j] - m) * r - (j == (uint)t ? inv_count : 0.0f);
#endif
}

/* loss[loss_off] = inv_count · Σ_r row_loss[r]. One work-group: on the gpu
 * pattern its lanes take every lanes-th row and combine in local memory; on
 * the cpu pattern one work-item sums blocks of 256 rows and then the block
 * sums (an error of about 256 + rows/256 roundings instead of rows). */
__kernel void retcl_cross_entropy_mean(__global const float *row_loss,
                                       uint rows, float inv_count,
                                       __global float *loss, uint loss_off,
                                       __local float *part) {
#if RETCL_CPU
  (void)part; /* the gpu pattern's */
  float total = 0.0f;
  for (uint b = 0; b < rows; b += 256) {
    const uint e = min(rows, b + 256);
    float block = 0.0f;
    for (uint r = b; r < e; ++r) block += row_loss[r];
    total += block;
  }
  loss[loss_off] = total * inv_count;
#else
  const uint lid = get_local_id(0), lanes = get_local_size(0);
  float s = 0.0f;
  for (uint r = lid; r < rows; r += lanes) s += row_loss[r];
  s = group_combine(part, s, 0);
  if (lid == 0) loss[loss_off] = s * inv_count;
#endif
}
