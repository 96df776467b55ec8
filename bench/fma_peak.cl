/* fma_peak.cl - the fp32 FMA yardstick: how fast this device can multiply-
 * add when nothing else (memory, dependencies) limits it.
 *
 * Built by bench/yardsticks.c with -DW=<1|2|4|8|16> (vector width) and
 * -DFMA=fma or -DFMA=mad (mad where the device lacks hardware fma, so the
 * yardstick never measures a software fma).
 *
 * Each work-item runs 16 independent accumulator chains so that FMA latency
 * (4-6 cycles) is hidden by throughput: a CPU core with two FMA pipes needs
 * at least ~10 chains in flight. x = x*a + b with a < 1 converges to
 * b/(1-a), so values stay finite and normal; a and b are kernel arguments,
 * so the compiler cannot fold the chain. The loop body holds 4 x 16 = 64
 * FMAs to keep the loop overhead small. The sum is stored so that nothing
 * is dead code. */

#if W == 1
#define VT float
#define HSUM(v) (v)
#elif W == 2
#define VT float2
#define HSUM(v) ((v).s0 + (v).s1)
#elif W == 4
#define VT float4
#define HSUM(v) ((v).s0 + (v).s1 + (v).s2 + (v).s3)
#elif W == 8
#define VT float8
#define HSUM(v) (HSUM4((v).lo + (v).hi))
#elif W == 16
#define VT float16
#define HSUM(v) (HSUM4((v).lo.lo + (v).lo.hi + (v).hi.lo + (v).hi.hi))
#else
#error "W must be 1, 2, 4, 8 or 16"
#endif
#define HSUM4(v) ((v).s0 + (v).s1 + (v).s2 + (v).s3)

#define STEP16                                                         \
  x0 = FMA(x0, av, bv); x1 = FMA(x1, av, bv); x2 = FMA(x2, av, bv);    \
  x3 = FMA(x3, av, bv); x4 = FMA(x4, av, bv); x5 = FMA(x5, av, bv);    \
  x6 = FMA(x6, av, bv); x7 = FMA(x7, av, bv); x8 = FMA(x8, av, bv);    \
  x9 = FMA(x9, av, bv); x10 = FMA(x10, av, bv); x11 = FMA(x11, av, bv); \
  x12 = FMA(x12, av, bv); x13 = FMA(x13, av, bv);                      \
  x14 = FMA(x14, av, bv); x15 = FMA(x15, av, bv);

__kernel void fma_peak(__global float *out, float a, float b, int iters) {
  const VT av = (VT)(a), bv = (VT)(b);
  const float s = (float)get_global_id(0) * 1e-7f;
  VT x0 = (VT)(s), x1 = (VT)(s + 0.01f), x2 = (VT)(s + 0.02f);
  VT x3 = (VT)(s + 0.03f), x4 = (VT)(s + 0.04f), x5 = (VT)(s + 0.05f);
  VT x6 = (VT)(s + 0.06f), x7 = (VT)(s + 0.07f), x8 = (VT)(s + 0.08f);
  VT x9 = (VT)(s + 0.09f), x10 = (VT)(s + 0.10f), x11 = (VT)(s + 0.11f);
  VT x12 = (VT)(s + 0.12f), x13 = (VT)(s + 0.13f), x14 = (VT)(s + 0.14f);
  VT x15 = (VT)(s + 0.15f);
  for (int i = 0; i < iters; ++i) {
    STEP16 STEP16 STEP16 STEP16
  }
  VT sum = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)) +
           ((x8 + x9) + (x10 + x11)) + ((x12 + x13) + (x14 + x15));
  out[get_global_id(0)] = HSUM(sum);
}
