/* common.cl - prelude compiled in front of every RetCL program.
 * Every tunable macro has a default here so each file also compiles on its
 * own (e.g. with clang -cl-std=CL1.2 for the strict-C check). */
#ifndef RETCL_CPU
#define RETCL_CPU 0 /* 1: walk contiguous ranges per work-item (PoCL, CPUs) */
#endif

/* Element index of (b, t, h, d) in a [B,T,H,D] or [B,H,T,D] tensor, given
 * its strides in floats (batch, token, head) and its base offset. */
#define RETCL_AT(off, sb, st, sh, b, t, h) \
  ((off) + (b) * (sb) + (t) * (st) + (h) * (sh))
