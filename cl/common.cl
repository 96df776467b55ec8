/* common.cl - prelude compiled in front of every RetCL program.
 * Tunables are not defined here: each program is compiled with the
 * -D definitions of its family's parameter record (lib/runtime/params.c),
 * the one place they are written; `retcl params --defines FAMILY` prints
 * them (scripts/ci_strict_cl.sh compiles each file with them). A file that
 * uses a definition checks it is there. */

/* Weight storage (docs/design.md, "16-bit weights"): families reading
 * weights are built once per storage type with -DRETCL_WTYPE = 0 (fp32,
 * the default), 1 (IEEE f16) or 2 (bf16). A weight pointer is
 * `__global const RETCL_WT *`; RETCL_LOAD_W(p, i) reads element i widened
 * exactly to fp32, RETCL_VLOAD8_W(i, p) the eight at p + 8 i and (with
 * RETCL_VW) RETCL_VLOAD_W(p) the RETCL_VW at p. Everything else
 * (activations, states, arithmetic) stays fp32.
 *
 * Both 16-bit types are read as ushort and widened with integer
 * arithmetic: bf16 is the high half of an fp32; f16 is rebiased (normals),
 * scaled from its integer mantissa (subnormals: m 2^-24, exact, and no
 * fp32 denormal is involved, which a device may flush) or given the fp32
 * all-ones exponent (inf, NaN with its payload). vload_half would do the
 * same, but clang's OpenCL headers hide it without cl_khr_fp16 (the
 * strict-CL check) and PoCL measured no faster (docs/benchmarks.md). */
#ifndef RETCL_WTYPE
#define RETCL_WTYPE 0
#endif
#if RETCL_WTYPE == 0
#define RETCL_WT float
#define RETCL_LOAD_W(p, i) ((p)[i])
#define RETCL_VLOAD8_W(i, p) vload8((i), (p))
#elif RETCL_WTYPE == 1 || RETCL_WTYPE == 2
#define RETCL_WT ushort
#define RETCL_H2F_N(N)                                                       \
  inline float##N retcl_h2f##N(ushort##N hs) {                               \
    const uint##N h = convert_uint##N(hs), a = h & 0x7fffu;                  \
    const float##N sub = convert_float##N(a) * 0x1p-24f;                     \
    const float##N fin = as_float##N((a << 13) + 0x38000000u);               \
    const float##N big = as_float##N((a << 13) | 0x7f800000u);               \
    const float##N r = select(select(fin, big, a >= 0x7c00u), sub, a < 0x400u); \
    return as_float##N(as_uint##N(r) | ((h & 0x8000u) << 16));               \
  }
RETCL_H2F_N(8)
RETCL_H2F_N(16)
inline float retcl_h2f(ushort hs) {
  const uint h = hs, a = h & 0x7fffu;
  const float r = a < 0x400u    ? (float)a * 0x1p-24f
                  : a >= 0x7c00u ? as_float((a << 13) | 0x7f800000u)
                                 : as_float((a << 13) + 0x38000000u);
  return as_float(as_uint(r) | ((h & 0x8000u) << 16));
}
#if RETCL_WTYPE == 1
#define RETCL_W2F(h) retcl_h2f(h)
#define RETCL_W2F_N(N, h) retcl_h2f##N(h)
#else
#define RETCL_W2F(h) as_float((uint)(h) << 16)
#define RETCL_W2F_N(N, h) as_float##N(convert_uint##N(h) << 16)
#endif
#define RETCL_LOAD_W(p, i) RETCL_W2F((p)[i])
#define RETCL_VLOAD8_W(i, p) RETCL_W2F_N(8, vload8((i), (p)))
#else
#error "RETCL_WTYPE must be 0 (f32), 1 (f16) or 2 (bf16)"
#endif

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

/* RETCL_VW weights at p, widened to a vecf (RETCL_LOAD_W's vector form). */
#if RETCL_WTYPE == 0
#define RETCL_VLOAD_W(p) VLOAD(0, p)
#elif RETCL_VW == 16
#define RETCL_VLOAD_W(p) RETCL_W2F_N(16, vload16(0, (p)))
#else
#define RETCL_VLOAD_W(p) RETCL_W2F_N(8, vload8(0, (p)))
#endif

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
