/* common.cl - prelude compiled in front of every RetCL program.
 * Tunables are not defined here: each program is compiled with the
 * -D definitions of its family's parameter record (lib/runtime/params.c),
 * the one place they are written; `retcl params --defines FAMILY` prints
 * them (scripts/ci_strict_cl.sh compiles each file with them). A file that
 * uses a definition checks it is there. */

#ifdef RETCL_VW
/* vecf: one column block as an OpenCL vector; RETCL_VW is 8 or 16. */
#define RETCL_CAT2(a, b) a##b
#define RETCL_CAT(a, b) RETCL_CAT2(a, b)
typedef RETCL_CAT(float, RETCL_VW) vecf;
#define VLOAD RETCL_CAT(vload, RETCL_VW)
#define VSTORE RETCL_CAT(vstore, RETCL_VW)

/* Sum of the lanes of x. */
inline float lane_sum(vecf x) {
#if RETCL_VW == 16
  float8 h8 = x.lo + x.hi;
#elif RETCL_VW == 8
  float8 h8 = x;
#else
#error "RETCL_VW (the family's vw parameter) must be 8 or 16"
#endif
  float4 h4 = h8.lo + h8.hi;
  float2 h2 = h4.lo + h4.hi;
  return h2.x + h2.y;
}

/* Load RETCL_VW floats at p, of which only n (1..VW) exist; the rest read 0. */
inline vecf load_block(__global const float *p, uint n) {
  if (n == RETCL_VW) return VLOAD(0, p);
  float t[RETCL_VW];
  for (uint i = 0; i < RETCL_VW; ++i) t[i] = i < n ? p[i] : 0.0f;
  return VLOAD(0, t);
}

/* Store the first n (1..VW) floats of x at p. */
inline void store_block(__global float *p, vecf x, uint n) {
  if (n == RETCL_VW) {
    VSTORE(x, 0, p);
    return;
  }
  float t[RETCL_VW];
  VSTORE(x, 0, t);
  for (uint i = 0; i < n; ++i) p[i] = t[i];
}
#endif

/* Element index of (b, t, h, d) in a [B,T,H,D] or [B,H,T,D] tensor, given
 * its strides in floats (batch, token, head) and its base offset. */
#define RETCL_AT(off, sb, st, sh, b, t, h) \
  ((off) + (b) * (sb) + (t) * (st) + (h) * (sh))
