/* yardsticks.h - what this device can do at best, measured in the same run
 * as the kernels so that kernel numbers can be read as fractions of it:
 * fp32 FMA peak, CLBlast SGEMM and device copy bandwidth. */
#ifndef RETCL_BENCH_YARDSTICKS_H
#define RETCL_BENCH_YARDSTICKS_H

#include "bench_util.h"

/* Vector widths the FMA yardstick tries; the best one is the peak. */
#define BENCH_FMA_WIDTHS 5

typedef struct bench_fma_result {
  int ok;
  double gflops;                 /* fastest sample, best width */
  int width;                     /* the width that gave it */
  int widths[BENCH_FMA_WIDTHS];  /* 1, 2, 4, 8, 16 */
  double gflops_by_width[BENCH_FMA_WIDTHS]; /* 0 where that width failed */
  size_t work_items;
  int iters;                     /* loop trips of the best width */
  bench_stats stats;             /* of the best width */
  char error[512];
} bench_fma_result;

typedef struct bench_sgemm_result {
  int ok;
  size_t n;                      /* square: C[n,n] = A[n,n] B[n,n] */
  double gflops;                 /* 2 n^3 / median time */
  bench_stats stats;
  char error[512];
} bench_sgemm_result;

typedef struct bench_copy_result {
  int ok;
  size_t bytes;                  /* size of one buffer */
  double gbs;                    /* (read + write) bytes / median time */
  bench_stats stats;
  char error[512];
} bench_copy_result;

/* target_ms: how long one timed FMA launch should take (the loop count is
 * calibrated to it); 20-100 ms gives stable numbers. */
void bench_fma_peak(retcl_context *ctx, const bench_plan *plan,
                    double target_ms, bench_fma_result *out);
/* n: matrix size. The plan's first warm-up also compiles CLBlast's kernels
 * (~10 s on a cold PoCL cache). error says so when built without CLBlast. */
void bench_sgemm(retcl_context *ctx, const bench_plan *plan, size_t n,
                 bench_sgemm_result *out);
void bench_copy(retcl_context *ctx, const bench_plan *plan, size_t bytes,
                bench_copy_result *out);

#endif /* RETCL_BENCH_YARDSTICKS_H */
