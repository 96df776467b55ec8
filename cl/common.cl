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
 * f16 goes through vload_half / vload_halfN (core OpenCL 1.2, no
 * cl_khr_fp16 needed: half is only a storage type here). On PoCL with
 * F16C it streams weights about 2x faster than widening with integer
 * arithmetic (rebias, subnormal and inf/NaN selects), which measured
 * compute-bound at about f32's speed (docs/benchmarks.md, "16-bit
 * weights"). bf16 is read as ushort and shifted into the high half of an
 * fp32's bits. */
#ifndef RETCL_WTYPE
#define RETCL_WTYPE 0
#endif
#if RETCL_WTYPE == 0
#define RETCL_WT float
#define RETCL_LOAD_W(p, i) ((p)[i])
#define RETCL_VLOAD8_W(i, p) vload8((i), (p))
#elif RETCL_WTYPE == 1
#define RETCL_WT half
#define RETCL_LOAD_W(p, i) vload_half((i), (p))
#define RETCL_VLOAD8_W(i, p) vload_half8((i), (p))
#elif RETCL_WTYPE == 2
#define RETCL_WT ushort
#define RETCL_LOAD_W(p, i) as_float((uint)(p)[i] << 16)
#define RETCL_VLOAD8_W(i, p) as_float8(convert_uint8(vload8((i), (p))) << 16)
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
#elif RETCL_WTYPE == 1
#define RETCL_VLOAD_W(p) RETCL_CAT(vload_half, RETCL_VW)(0, (p))
#else
#define RETCL_VLOAD_W(p)                                                     \
  RETCL_CAT(as_float, RETCL_VW)(                                             \
      RETCL_CAT(convert_uint, RETCL_VW)(RETCL_CAT(vload, RETCL_VW)(0, (p))) \
      << 16)
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

/* Dot product of two rows of n floats, RETCL_VW lanes at a time (the
 * retention forward and backward both compute q·k this way, so the token's
 * own score rounds alike in both). */
inline float dot_rows(__global const float *a, __global const float *b,
                      uint n) {
  vecf acc = (vecf)(0.0f);
  uint d = 0;
  for (; d + RETCL_VW <= n; d += RETCL_VW)
    acc = fma(VLOAD(0, a + d), VLOAD(0, b + d), acc);
  float s = 0.0f;
  for (; d < n; ++d) s = fma(a[d], b[d], s);
  return s + lane_sum(acc);
}
#endif

/* c_n = Σ_{j<n} γ^j = expm1(n log γ) / expm1(log γ) (docs/design.md §1.2),
 * accurate as γ -> 1; the retention forward and backward share it. */
inline float decay_sum(float log_decay, float n) {
  if (n <= 0.0f) return 0.0f;
  if (log_decay == 0.0f) return n; /* γ = 1 (a head whose fp32 γ rounds up) */
  return expm1(n * log_decay) / expm1(log_decay);
}

/* Element index of (b, t, h, d) in a [B,T,H,D] or [B,H,T,D] tensor, given
 * its strides in floats (batch, token, head) and its base offset. */
#define RETCL_AT(off, sb, st, sh, b, t, h) \
  ((off) + (b) * (sb) + (t) * (st) + (h) * (sh))
