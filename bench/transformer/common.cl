/* common.cl - prelude compiled in front of the Transformer baseline's
 * kernels. Every macro the host sets has a default here, so each file also
 * compiles on its own (clang -cl-std=CL1.2 -include common.cl x.cl). */
#ifndef TF_CPU
#define TF_CPU 0 /* 1: each work-item walks a contiguous range (PoCL, CPUs) */
#endif
#ifndef TF_LVW
#define TF_LVW 8 /* floats per vector in the CPU elementwise loops (8 or 16) */
#endif
#ifndef TF_DH
#define TF_DH 64 /* head_dim, a compile-time constant so loops over it unroll */
#endif
#ifndef TF_HVW
#define TF_HVW 8 /* floats per vector along head_dim: 2, 4, 8 or 16, divides TF_DH */
#endif
#ifndef TF_WG
#define TF_WG 64 /* work-group size of the GPU attention kernels (power of 2) */
#endif
#ifndef TF_DCHUNK
#define TF_DCHUNK 256 /* GPU decode: cached positions per work-group */
#endif
#ifndef TF_DSUB
#define TF_DSUB 64 /* CPU decode: positions scored before each softmax update */
#endif
#ifndef TF_PQ
#define TF_PQ 4 /* CPU prefill: query rows per work-item */
#endif
#ifndef TF_PKB
#define TF_PKB 32 /* CPU prefill: keys per softmax update */
#endif
#ifndef TF_GQ
#define TF_GQ 16 /* GPU prefill: query rows per work-group */
#endif
#ifndef TF_GKB
#define TF_GKB 16 /* GPU prefill: keys per tile held in local memory */
#endif

#define TF_CAT2(a, b) a##b
#define TF_CAT(a, b) TF_CAT2(a, b)

/* Sums of the lanes of a vector, for any width the macros may pick. */
inline float tf_sum2(float2 x) { return x.x + x.y; }
inline float tf_sum4(float4 x) { return tf_sum2(x.lo + x.hi); }
inline float tf_sum8(float8 x) { return tf_sum4(x.lo + x.hi); }
inline float tf_sum16(float16 x) { return tf_sum8(x.lo + x.hi); }

/* lvec: a run of consecutive elements in the CPU elementwise loops. */
typedef TF_CAT(float, TF_LVW) lvec;
#define LLOAD TF_CAT(vload, TF_LVW)
#define LSTORE TF_CAT(vstore, TF_LVW)

/* hvec: a block of one head's head_dim values; TF_NV of them make a row. */
typedef TF_CAT(float, TF_HVW) hvec;
#define HLOAD TF_CAT(vload, TF_HVW)
#define HSTORE TF_CAT(vstore, TF_HVW)
#define HSUM TF_CAT(tf_sum, TF_HVW)
#define TF_NV (TF_DH / TF_HVW)
