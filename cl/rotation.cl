/* rotation.cl - xPos-style rotation Θ (docs/design.md §1.1).
 *
 * The angle n*θ_i is computed without rounding trouble for huge positions:
 * the host stores θ_i/(2π) as a 64-bit fixed-point fraction of a turn, so
 * n * rate (a wrapping 64-bit multiply) is the angle modulo one turn, exact
 * to 2^-64 per position. Its top 32 bits, read as a signed fraction of a
 * turn in [-1/2, 1/2), give an angle in [-π, π) where fp32 sin/cos are
 * accurate to an ulp. */

#define RETCL_TWO_PI_F 6.28318530717958647692f

/* One work-item per (pair i, token t): the angle, its sine and cosine are
 * computed once and applied to that pair in every batch and head.
 *
 * inverse = 0 is the forward map, out = f·R(φ)·in; inverse = 1 its
 * transpose, out = f·R(-φ)·in, the gradient of the forward. The xPos
 * factor f = ζ_i^(±n/β) scales both values of a pair alike (a diagonal
 * map, its own transpose), so the transpose keeps the forward's f: the
 * caller passes the forward's xpos_sign. sin(-φ) = -sin(φ) exactly, so
 * the transpose negates the sine rather than the angle, and the unscaled
 * backward of a forward returns the input up to the rounding of the two
 * products. */
__kernel void retcl_rotate(__global const float *in, uint in_off,
                           __global float *out, uint out_off,
                           uint stride_b, uint stride_t, uint stride_h,
                           uint batch, uint heads, uint tokens, ulong pos0,
                           __global const uint *token_pos, int has_token_pos,
                           __global const ulong *turn_rate,
                           __global const float *log_zeta,
                           int use_xpos, float inv_scale_base, float xpos_sign,
                           int inverse) {
  const uint i = get_global_id(0);
  const uint t = get_global_id(1);
  if (t >= tokens) return; /* the grid is rounded up to whole groups */
  /* Packed sequences carry each token's position (lib/ops/packing.c). */
  const ulong n = has_token_pos ? (ulong)token_pos[t] : pos0 + t;
  const ulong turns = n * turn_rate[i];
  const float frac = (float)(int)(uint)(turns >> 32) * 0x1.0p-32f;
  float c;
  float s = sincos(frac * RETCL_TWO_PI_F, &c);
  if (inverse) s = -s;
  float scale = 1.0f;
  if (use_xpos) scale = exp(xpos_sign * (float)n * inv_scale_base * log_zeta[i]);
  const float cs = c * scale, sn = s * scale;
  for (uint b = 0; b < batch; ++b)
    for (uint h = 0; h < heads; ++h) {
      const uint row_in = RETCL_AT(in_off, stride_b, stride_t, stride_h, b, t, h);
      const uint row_out = RETCL_AT(out_off, stride_b, stride_t, stride_h, b, t, h);
      const float x0 = in[row_in + 2 * i], x1 = in[row_in + 2 * i + 1];
      out[row_out + 2 * i] = x0 * cs - x1 * sn;
      out[row_out + 2 * i + 1] = x1 * cs + x0 * sn;
    }
}
