/* group_norm.cl - per-head group norm fused with the output gate (docs/design.md §1.5).
 *
 * Each (b, t, h) row of D values is normalised on its own:
 *   RMS:   y = x / sqrt(mean(x^2) + eps)
 *   layer: y = (x - mean) / sqrt(mean((x - mean)^2) + eps)
 * then y = y * weight + bias (each optional, per channel h*D + d) and
 * out = act(g) * y with act = swish, gelu or nothing.
 *
 * Numerics. The layer form works on x shifted by the row's first value,
 * u = x - x[0], and centres as (x - x[0]) - mean(u), never as x - mean(x):
 * x - x[0] is exact for values of similar size and mean(u) is small, so a
 * mean far from zero next to the spread (x ~ 1000 +- 1) keeps every digit
 * of the centred values, where rounding mean(x) to fp32 would cost ~1e-4.
 * The variance is the mean of the squared centred values (a second pass),
 * never E[x^2] - E[x]^2, which cancels catastrophically. A row of equal
 * values has u == 0 exactly, so y is exactly 0 instead of rounding noise
 * divided by sqrt(eps). RMS uses shift = mean(u) = 0. Sums use several
 * partial accumulators (8 vector lanes on CPUs, a tree across work-items on
 * GPUs), which keeps the rounding error well below fp32 epsilon * D.
 *
 * Two work organisations, chosen by the host with the `lanes` argument:
 *  - lanes == 0, "row" (CPUs): one work-item per row walks it contiguously
 *    in float8 steps; PoCL turns that into SIMD code, while a GPU-style
 *    strided walk is several times slower there.
 *  - lanes > 0 (a power of two), "group" (GPUs): `lanes` neighbouring
 *    work-items share one row, reading it with unit stride (coalesced) and
 *    reducing their partial sums in local memory; a work-group holds
 *    local_size / lanes rows, so short rows still fill a group.
 * The choice is uniform over the launch, so the barriers of the group path
 * are reached by every work-item of a group or by none. */

#define GN_NORM_RMS 0
#define GN_NORM_LAYER 1
#define GN_GATE_SWISH 0
#define GN_GATE_GELU 1
#define GN_GATE_NONE 2

/* Where a row lives: returns the element index of (b, t, h, 0) relative to
 * the tensor's base offset and stores its head h. Rows are numbered in
 * memory order of the layout so that neighbouring work-items touch
 * neighbouring rows. */
static uint gn_locate(uint r, uint stride_b, uint stride_t, uint stride_h,
                      uint tokens, uint heads, int head_major, uint *head) {
  uint b, t, h;
  if (head_major) {
    t = r % tokens;
    const uint bh = r / tokens;
    h = bh % heads;
    b = bh / heads;
  } else {
    h = r % heads;
    const uint bt = r / heads;
    t = bt % tokens;
    b = bt / tokens;
  }
  *head = h;
  return RETCL_AT(0u, stride_b, stride_t, stride_h, b, t, h);
}

/* act(g) for the gate. Swish as g / (1 + e^-g): for very negative g, e^-g
 * overflows to inf and the quotient is -0, the right limit. Gelu through
 * erfc, Φ(g) = erfc(-g/√2)/2: 1 + erf(z) loses every digit for z << 0,
 * where erfc keeps full relative accuracy. */
static float gn_act(float g, int gate) {
  if (gate == GN_GATE_SWISH) return g / (1.0f + exp(-g));
  if (gate == GN_GATE_GELU) return g * 0.5f * erfc(-g * M_SQRT1_2_F);
  return 1.0f;
}

static float8 gn_act8(float8 g, int gate) {
  if (gate == GN_GATE_SWISH) return g / (1.0f + exp(-g));
  if (gate == GN_GATE_GELU) return g * 0.5f * erfc(-g * M_SQRT1_2_F);
  return (float8)(1.0f);
}

/* Pairwise sum of the 8 lanes. Through a private array rather than
 * swizzles: the same code after optimisation, and oclgrind 21.10's
 * uninitialised-value checker crashes on vector component reads. */
static float gn_hsum8(float8 v) {
  float a[8];
  vstore8(v, 0, a);
  return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* ---- row path: one work-item per row ----------------------------------- */

/* Σ (p[d] - c) over the row, in 8 interleaved partial sums. */
static float gn_sum_shifted(__global const float *p, uint n, float c) {
  float8 acc = (float8)(0.0f);
  const uint n8 = n / 8;
  for (uint i = 0; i < n8; ++i) acc += vload8(i, p) - c;
  float tail = 0.0f;
  for (uint d = n8 * 8; d < n; ++d) tail += p[d] - c;
  return gn_hsum8(acc) + tail;
}

/* Σ ((p[d] - shift) - mu)^2 over the row, in 8 interleaved partial sums. */
static float gn_sum_sq_centred(__global const float *p, uint n, float shift,
                               float mu) {
  float8 acc = (float8)(0.0f);
  const uint n8 = n / 8;
  for (uint i = 0; i < n8; ++i) {
    const float8 v = (vload8(i, p) - shift) - mu;
    acc += v * v;
  }
  float tail = 0.0f;
  for (uint d = n8 * 8; d < n; ++d) {
    const float v = (p[d] - shift) - mu;
    tail += v * v;
  }
  return gn_hsum8(acc) + tail;
}

/* A row's statistics: the shift (x[0] in the layer form, else 0), mu =
 * mean(x - shift) (0 for RMS) and rstd = 1/sqrt(mean(((x - shift) - mu)^2)
 * + eps). The backward recomputes them with the same helpers, so it sees
 * exactly the forward's values. */
typedef struct gn_stats {
  float shift, mu, rstd;
} gn_stats;

/* ŷ = ((x - shift) - mu)·rstd, the normalised value, centred as the header
 * explains. */
static inline float gn_norm(float x, gn_stats st) {
  return ((x - st.shift) - st.mu) * st.rstd;
}

static inline float8 gn_norm8(float8 x, gn_stats st) {
  return ((x - st.shift) - st.mu) * st.rstd;
}

/* The statistics of a row of n values on the row path (two sweeps in the
 * layer form, one for RMS). */
static inline gn_stats gn_row_stats(__global const float *x, uint n, int kind,
                                    float eps) {
  gn_stats st;
  st.shift = 0.0f;
  st.mu = 0.0f;
  if (kind == GN_NORM_LAYER) {
    st.shift = x[0];
    st.mu = gn_sum_shifted(x, n, st.shift) / (float)n;
  }
  st.rstd = rsqrt(gn_sum_sq_centred(x, n, st.shift, st.mu) / (float)n + eps);
  return st;
}

/* out[d] = act(g[d])·(ŷ[d]·w[d] + bias[d]) (each factor and term when
 * present) for d = first, first + step, ... below n: the row path's tail
 * after its float8 steps (step 1), or one lane's share of a row on the
 * group path (step lanes). */
static inline void gn_forward_sweep(__global const float *x,
                                    __global const float *g,
                                    __global const RETCL_WT *w,
                                    __global const RETCL_WT *bias,
                                    __global float *out, uint first, uint n,
                                    uint step, gn_stats st, int gate,
                                    int has_w, int has_b) {
  for (uint d = first; d < n; d += step) {
    float y = gn_norm(x[d], st);
    if (has_w) y *= RETCL_LOAD_W(w, d);
    if (has_b) y += RETCL_LOAD_W(bias, d);
    if (gate != GN_GATE_NONE) y *= gn_act(g[d], gate);
    out[d] = y;
  }
}

static void gn_row_path(__global const float *x, __global const float *g,
                        __global const RETCL_WT *w,
                        __global const RETCL_WT *bias,
                        __global float *out, uint n, int kind, int gate,
                        int has_w, int has_b, float eps) {
  const gn_stats st = gn_row_stats(x, n, kind, eps);
  const uint n8 = n / 8;
  for (uint i = 0; i < n8; ++i) {
    float8 y = gn_norm8(vload8(i, x), st);
    if (has_w) y *= RETCL_VLOAD8_W(i, w);
    if (has_b) y += RETCL_VLOAD8_W(i, bias);
    if (gate != GN_GATE_NONE) y *= gn_act8(vload8(i, g), gate);
    vstore8(y, i, out);
  }
  gn_forward_sweep(x, g, w, bias, out, n8 * 8, n, 1u, st, gate, has_w, has_b);
}

/* ---- group path: `lanes` work-items per row ---------------------------- */

/* Sum of v over the `lanes` work-items of one row, returned to all of them.
 * Every work-item of the group must call it (it holds barriers). The final
 * barrier lets the caller reuse `part` for the next reduction; it also
 * fences global memory, because in place (x == out) every lane has read
 * x[0] for the shift before lane 0 overwrites it, and a local fence alone
 * does not order global accesses between work-items. */
static float gn_segment_sum(__local float *part, uint base, uint lane,
                            uint lanes, float v) {
  part[base + lane] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint s = lanes >> 1; s > 0; s >>= 1) {
    if (lane < s) part[base + lane] += part[base + lane + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float total = part[base];
  barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
  return total;
}

/* The statistics of a row on the group path, this lane reading d = lane,
 * lane + lanes, ... below n, the means dividing by row_len. n is 0 for a
 * lane past the last row: it takes part in the barriers (every work-item
 * of the group must call this) but reads nothing. */
static inline gn_stats gn_group_stats(__global const float *x, uint n,
                                      uint row_len, int kind, float eps,
                                      __local float *part, uint base,
                                      uint lane, uint lanes) {
  gn_stats st;
  st.shift = 0.0f;
  st.mu = 0.0f;
  if (kind == GN_NORM_LAYER) {
    st.shift = n ? x[0] : 0.0f;
    float s = 0.0f;
    for (uint d = lane; d < n; d += lanes) s += x[d] - st.shift;
    st.mu = gn_segment_sum(part, base, lane, lanes, s) / (float)row_len;
  }
  float ss = 0.0f;
  for (uint d = lane; d < n; d += lanes) {
    const float v = (x[d] - st.shift) - st.mu;
    ss += v * v;
  }
  st.rstd =
      rsqrt(gn_segment_sum(part, base, lane, lanes, ss) / (float)row_len + eps);
  return st;
}

/* n is the row length, or 0 for a work-item past the last row (it still
 * takes part in the barriers but touches no memory). */
static void gn_group_path(__global const float *x, __global const float *g,
                          __global const RETCL_WT *w,
                          __global const RETCL_WT *bias,
                          __global float *out, uint n, uint row_len, int kind,
                          int gate, int has_w, int has_b, float eps,
                          __local float *part, uint base, uint lane,
                          uint lanes) {
  const gn_stats st = gn_group_stats(x, n, row_len, kind, eps, part, base,
                                     lane, lanes);
  gn_forward_sweep(x, g, w, bias, out, lane, n, lanes, st, gate, has_w,
                   has_b);
}

/* x, g, out: [B,T,H,D] or [B,H,T,D] with the given strides and offsets (g is
 * unread when gate == NONE); w, bias: H*D floats, read only when has_w /
 * has_b. x and out may be the same memory: each element is written only by
 * the work-item that reads it, except x[0], which every lane of a row reads
 * for the shift before the fenced barrier that precedes any write. */
__kernel void retcl_group_norm_gate(
    __global const float *x, uint x_off, __global const float *g, uint g_off,
    __global const RETCL_WT *w, uint w_off, __global const RETCL_WT *bias,
    uint b_off, __global float *out, uint out_off, uint stride_b,
    uint stride_t, uint stride_h, uint tokens, uint heads, int head_major,
    uint rows, uint row_len, int kind, int gate, int has_w, int has_b,
    float eps, uint lanes, __local float *part) {
  uint head;
  if (lanes == 0) {
    const size_t r = get_global_id(0);
    if (r >= rows) return;
    const uint at = gn_locate((uint)r, stride_b, stride_t, stride_h, tokens,
                              heads, head_major, &head);
    const uint ch = head * row_len;
    gn_row_path(x + x_off + at, g + g_off + at, w + w_off + ch,
                bias + b_off + ch, out + out_off + at, row_len, kind, gate,
                has_w, has_b, eps);
    return;
  }
  const uint lid = (uint)get_local_id(0);
  const uint lane = lid & (lanes - 1);
  const size_t r =
      get_group_id(0) * (get_local_size(0) / lanes) + lid / lanes;
  const int valid = r < rows;
  const uint at = gn_locate(valid ? (uint)r : 0u, stride_b, stride_t,
                            stride_h, tokens, heads, head_major, &head);
  const uint ch = head * row_len;
  gn_group_path(x + x_off + at, g + g_off + at, w + w_off + ch,
                bias + b_off + ch, out + out_off + at, valid ? row_len : 0u,
                row_len, kind, gate, has_w, has_b, eps, part, lid - lane,
                lane, lanes);
}

/* ==== backward (docs/design.md §1.7) ======================================
 *
 * Per row, with ŷ = (x − μ)·r the normalised values (μ = 0 for RMS),
 * r = 1/sqrt(mean((x − μ)²) + eps), y = ŷ·w + b and out = act(g)·y:
 *   d_gate = d_out · y · act'(g)
 *   dy     = d_out · act(g)                  (d_out without a gate)
 *   dŷ     = dy · w                          (dy without a weight)
 *   dx     = r · (dŷ − mean(dŷ) − ŷ · mean(dŷ·ŷ))   (RMS: no mean(dŷ) term)
 *   d_weight += dy · ŷ,  d_bias += dy        (summed over all B·T rows)
 * The statistics are recomputed exactly as the forward computes them.
 *
 * Three sweeps over a row: the forward's statistics (one or two), then one
 * that forms dŷ, writes d_gate and the weight partial sums and sums dŷ and
 * dŷ·ŷ, keeping dŷ in dx; a last one turns dx into the gradient. Every
 * element is read and written by one work-item only (the same lane in all
 * sweeps), so dx may be d_out and d_gate may be gate (in place): each is
 * read before it is written, and neither is read afterwards.
 *
 * Weight gradients are reduced without atomics, in a fixed order: the B·T
 * positions are cut into `slices` runs of `slice_rows` consecutive
 * positions; one work-item (row path) or one lane group (group path) takes
 * a (slice, head) segment, walks its rows in order and accumulates
 * dy·ŷ and dy per channel into its own row of partial sums, `part`
 * ([slices, H·D] for each). retcl_group_norm_grad_reduce then sums the
 * slices of each channel in slice order. Nothing depends on scheduling, so
 * two runs give bitwise equal results. */

#define GN_INV_SQRT_2PI 0.398942280401432678f

/* act(g), and act'(g) in *da. Swish: σ = 1/(1 + e^-g), act = g·σ,
 * act' = σ + g·σ·(1 − σ); for very negative g, e^-g overflows, σ = 0 and
 * both are 0, the limits. Gelu: Φ = erfc(−g/√2)/2, act = g·Φ,
 * act' = Φ + g·φ(g) with φ(g) = e^(−g²/2)/√(2π). */
static float gn_act_d(float g, int gate, float *da) {
  if (gate == GN_GATE_SWISH) {
    const float s = 1.0f / (1.0f + exp(-g));
    *da = s + g * s * (1.0f - s);
    return g * s;
  }
  const float phi = 0.5f * erfc(-g * M_SQRT1_2_F);
  *da = phi + g * exp(-0.5f * g * g) * GN_INV_SQRT_2PI;
  return g * phi;
}

static float8 gn_act_d8(float8 g, int gate, float8 *da) {
  if (gate == GN_GATE_SWISH) {
    const float8 s = 1.0f / (1.0f + exp(-g));
    *da = s + g * s * (1.0f - s);
    return g * s;
  }
  const float8 phi = 0.5f * erfc(-g * M_SQRT1_2_F);
  *da = phi + g * exp(-0.5f * g * g) * GN_INV_SQRT_2PI;
  return g * phi;
}

/* What one row of the backward needs besides its pointers. */
typedef struct gn_bwd {
  int kind, gate, has_w, has_b, want_dw, want_db;
  int first; /* the segment's first row: partial sums start here */
  float eps;
} gn_bwd;

/* Segment s: slice p and head h, neighbouring segments on neighbouring
 * rows of the layout (heads fastest in token-major, slices in head-major). */
static void gn_segment_of(uint s, uint slices, uint heads, int head_major,
                          uint *p, uint *h) {
  /* Remainders as s − q·d: a `%` beside its `/` becomes an LLVM `freeze`
   * that oclgrind 21.10's uninitialised-value checker cannot run. */
  if (head_major) {
    *h = s / slices;
    *p = s - *h * slices;
  } else {
    *p = s / heads;
    *h = s - *p * heads;
  }
}

/* Batch entry and token of position pos = b·tokens + t (as above). */
static uint gn_row_at(uint pos, uint tokens, uint stride_b, uint stride_t,
                      uint stride_h, uint h) {
  const uint b = pos / tokens;
  return RETCL_AT(0u, stride_b, stride_t, stride_h, b, pos - b * tokens, h);
}

/* The gradient sweep over d = first, first + step, ... below n: writes
 * d_gate[d], adds to the weight partial sums (or starts them on the
 * segment's first row), keeps dŷ in dx[d] and adds dŷ to *s1 and dŷ·ŷ to
 * *s2. The row path's tail after its float8 steps (step 1), or one lane's
 * share of a row on the group path (step lanes). */
static inline void gn_backward_sweep(__global const float *x,
                                     __global const float *g,
                                     __global const float *w,
                                     __global const float *bias,
                                     __global const float *dout,
                                     __global float *dx, __global float *dg,
                                     __global float *pw, __global float *pb,
                                     uint first, uint n, uint step,
                                     gn_stats st, gn_bwd a, float *s1,
                                     float *s2) {
  for (uint d = first; d < n; d += step) {
    const float yh = gn_norm(x[d], st);
    float dy = dout[d];
    if (a.gate != GN_GATE_NONE) {
      float da;
      const float act = gn_act_d(g[d], a.gate, &da);
      float y = yh;
      if (a.has_w) y *= w[d];
      if (a.has_b) y += bias[d];
      dg[d] = dy * y * da;
      dy *= act;
    }
    if (a.want_dw) pw[d] = a.first ? dy * yh : pw[d] + dy * yh;
    if (a.want_db) pb[d] = a.first ? dy : pb[d] + dy;
    const float dyh = a.has_w ? dy * w[d] : dy;
    *s1 += dyh;
    *s2 += dyh * yh;
    dx[d] = dyh;
  }
}

/* The last sweep, over d = first, first + step, ... below n (as above):
 * dx[d] = ((dŷ − m1) − ŷ·m2)·rstd from the dŷ the gradient sweep left in
 * dx[d]. */
static inline void gn_dx_sweep(__global const float *x, __global float *dx,
                               uint first, uint n, uint step, gn_stats st,
                               float m1, float m2) {
  for (uint d = first; d < n; d += step) {
    const float yh = gn_norm(x[d], st);
    dx[d] = ((dx[d] - m1) - yh * m2) * st.rstd;
  }
}

/* ---- row path: one work-item per segment, rows in order ---------------- */

static void gn_row_backward(__global const float *x, __global const float *g,
                            __global const float *w,
                            __global const float *bias,
                            __global const float *dout, __global float *dx,
                            __global float *dg, __global float *pw,
                            __global float *pb, uint n, gn_bwd a) {
  const gn_stats st = gn_row_stats(x, n, a.kind, a.eps);
  const uint n8 = n / 8;
  float8 s1 = (float8)(0.0f), s2 = (float8)(0.0f);
  for (uint i = 0; i < n8; ++i) {
    const float8 yh = gn_norm8(vload8(i, x), st);
    float8 dy = vload8(i, dout);
    if (a.gate != GN_GATE_NONE) {
      float8 da;
      const float8 act = gn_act_d8(vload8(i, g), a.gate, &da);
      float8 y = yh;
      if (a.has_w) y *= vload8(i, w);
      if (a.has_b) y += vload8(i, bias);
      vstore8(dy * y * da, i, dg);
      dy *= act;
    }
    if (a.want_dw)
      vstore8(a.first ? dy * yh : vload8(i, pw) + dy * yh, i, pw);
    if (a.want_db) vstore8(a.first ? dy : vload8(i, pb) + dy, i, pb);
    const float8 dyh = a.has_w ? dy * vload8(i, w) : dy;
    s1 += dyh;
    s2 += dyh * yh;
    vstore8(dyh, i, dx);
  }
  float t1 = 0.0f, t2 = 0.0f;
  gn_backward_sweep(x, g, w, bias, dout, dx, dg, pw, pb, n8 * 8, n, 1u, st, a,
                    &t1, &t2);
  const float m1 =
      a.kind == GN_NORM_LAYER ? (gn_hsum8(s1) + t1) / (float)n : 0.0f;
  const float m2 = (gn_hsum8(s2) + t2) / (float)n;
  for (uint i = 0; i < n8; ++i) {
    const float8 yh = gn_norm8(vload8(i, x), st);
    vstore8(((vload8(i, dx) - m1) - yh * m2) * st.rstd, i, dx);
  }
  gn_dx_sweep(x, dx, n8 * 8, n, 1u, st, m1, m2);
}

/* ---- group path: `lanes` work-items per segment ------------------------ */

/* n is the row length, or 0 for a row past the end (the lane still takes
 * part in the barriers but touches no memory). */
static void gn_group_backward(__global const float *x, __global const float *g,
                              __global const float *w,
                              __global const float *bias,
                              __global const float *dout, __global float *dx,
                              __global float *dg, __global float *pw,
                              __global float *pb, uint n, uint row_len,
                              gn_bwd a, __local float *part, uint base,
                              uint lane, uint lanes) {
  const gn_stats st = gn_group_stats(x, n, row_len, a.kind, a.eps, part,
                                     base, lane, lanes);
  float s1 = 0.0f, s2 = 0.0f;
  gn_backward_sweep(x, g, w, bias, dout, dx, dg, pw, pb, lane, n, lanes, st,
                    a, &s1, &s2);
  const float m2 =
      gn_segment_sum(part, base, lane, lanes, s2) / (float)row_len;
  const float m1 =
      a.kind == GN_NORM_LAYER
          ? gn_segment_sum(part, base, lane, lanes, s1) / (float)row_len
          : 0.0f;
  gn_dx_sweep(x, dx, lane, n, lanes, st, m1, m2);
}

/* The forward's tensors and d_out, dx, d_gate in the same layout (g, dg
 * unused with gate == NONE); w, bias: H*D floats, read when has_w / has_b;
 * part: the partial sums of d_weight (at pw_off) and d_bias (at pb_off),
 * [slices, heads*row_len] each, written when want_dw / want_db.
 * Segment s covers head h and the positions [p·slice_rows,
 * min((p+1)·slice_rows, positions)) of slice p, positions numbered
 * b·tokens + t. lanes == 0: one work-item per segment (row path); lanes > 0
 * (a power of two): that many neighbouring work-items per segment, a
 * work-group holding local_size / lanes segments (group path). */
__kernel void retcl_group_norm_gate_backward(
    __global const float *x, uint x_off, __global const float *g, uint g_off,
    __global const float *w, uint w_off, __global const float *bias,
    uint b_off, __global const float *dout, uint dout_off, __global float *dx,
    uint dx_off, __global float *dg, uint dg_off, __global float *part,
    uint pw_off, uint pb_off, uint stride_b, uint stride_t, uint stride_h,
    uint tokens, uint heads, int head_major, uint positions, uint slice_rows,
    uint slices, uint row_len, int kind, int gate, int has_w, int has_b,
    int want_dw, int want_db, float eps, uint lanes, __local float *red) {
  gn_bwd a;
  a.kind = kind;
  a.gate = gate;
  a.has_w = has_w;
  a.has_b = has_b;
  a.want_dw = want_dw;
  a.want_db = want_db;
  a.eps = eps;
  const uint segments = slices * heads;
  uint p, h;
  if (lanes == 0) {
    const size_t s = get_global_id(0);
    if (s >= segments) return;
    gn_segment_of((uint)s, slices, heads, head_major, &p, &h);
    const uint ch = h * row_len;
    const uint prow = p * (heads * row_len) + ch;
    const uint end = min(positions - p * slice_rows, slice_rows);
    for (uint j = 0; j < end; ++j) {
      const uint pos = p * slice_rows + j;
      const uint at =
          gn_row_at(pos, tokens, stride_b, stride_t, stride_h, h);
      a.first = j == 0;
      gn_row_backward(x + x_off + at, g + g_off + at, w + w_off + ch,
                      bias + b_off + ch, dout + dout_off + at,
                      dx + dx_off + at, dg + dg_off + at,
                      part + pw_off + prow, part + pb_off + prow, row_len, a);
    }
    return;
  }
  const uint lid = (uint)get_local_id(0);
  const uint lane = lid & (lanes - 1);
  const size_t s = get_group_id(0) * (get_local_size(0) / lanes) + lid / lanes;
  const int valid = s < segments;
  gn_segment_of(valid ? (uint)s : 0u, slices, heads, head_major, &p, &h);
  const uint ch = h * row_len;
  const uint prow = p * (heads * row_len) + ch;
  /* Every lane of a group runs slice_rows iterations (the barriers),
   * whether or not its row exists. */
  for (uint j = 0; j < slice_rows; ++j) {
    const uint pos = p * slice_rows + j;
    const int row_valid = valid && pos < positions;
    const uint at =
        row_valid ? gn_row_at(pos, tokens, stride_b, stride_t, stride_h, h)
                  : 0u;
    a.first = j == 0;
    gn_group_backward(x + x_off + at, g + g_off + at, w + w_off + ch,
                      bias + b_off + ch, dout + dout_off + at,
                      dx + dx_off + at, dg + dg_off + at,
                      part + pw_off + prow, part + pb_off + prow,
                      row_valid ? row_len : 0u, row_len, a, red, lid - lane,
                      lane, lanes);
  }
}

/* d_weight[c] = Σ_p part[pw_off + p·channels + c] and the same for d_bias,
 * slices summed in order p = 0, 1, ... (the fixed order that makes the
 * result reproducible). Work-item i takes channels [i·per_item,
 * (i+1)·per_item): a contiguous range on CPUs, one channel (neighbouring
 * items on neighbouring addresses) on GPUs. */
__kernel void retcl_group_norm_grad_reduce(
    __global const float *part, uint pw_off, uint pb_off, uint slices,
    uint channels, __global float *dw, uint dw_off, __global float *db,
    uint db_off, int want_dw, int want_db, uint per_item) {
  const size_t first = get_global_id(0) * (size_t)per_item;
  if (first >= channels) return;
  const uint c0 = (uint)first;
  const uint c1 = channels - c0 < per_item ? channels : c0 + per_item;
  for (uint c = c0; c < c1; ++c) {
    if (want_dw) {
      float acc = part[pw_off + c];
      for (uint p = 1; p < slices; ++p) acc += part[pw_off + p * channels + c];
      dw[dw_off + c] = acc;
    }
    if (want_db) {
      float acc = part[pb_off + c];
      for (uint p = 1; p < slices; ++p) acc += part[pb_off + p * channels + c];
      db[db_off + c] = acc;
    }
  }
}
