/* bench_util.h - what the parts of retcl-bench and its yardsticks share: a
 * context on the chosen device, device description strings, and timing of
 * enqueued work.
 *
 * Timing method (bench_time):
 *  - "events" (default): clFinish, enqueue a marker, enqueue the op, wait,
 *    then time = END of the op's returned event - START of the marker (both
 *    OpenCL profiling timestamps; the queue is in order and created with
 *    CL_QUEUE_PROFILING_ENABLE). This spans every command of a multi-kernel
 *    op, including gaps between its kernels, and excludes the host's
 *    clFinish wake-up. A sample whose profiling query fails or gives a
 *    non-positive span falls back to the host clock (counted in
 *    host_fallbacks).
 *  - "host": clFinish, host monotonic clock, enqueue, clFinish, clock.
 * Warm-up runs (the first also builds kernels) are never counted.
 */
#ifndef RETCL_BENCH_UTIL_H
#define RETCL_BENCH_UTIL_H

#include <stddef.h>
#include <stdio.h>

#include "retcl.h"

/* What a benchmark runs: enqueue one instance of the op on `queue`, return
 * the event of its last command in *event (caller releases it). Returns 0 on
 * success; on failure writes a message into err (errlen bytes) and returns
 * non-zero. */
typedef int (*bench_enqueue_fn)(void *arg, cl_event *event, char *err,
                                size_t errlen);

typedef enum bench_timer {
  BENCH_TIMER_EVENTS = 0,
  BENCH_TIMER_HOST = 1
} bench_timer;

typedef struct bench_plan {
  int warmup;         /* untimed runs first; >= 1 is wise (kernel builds) */
  int repeats;        /* timed runs wanted */
  double max_seconds; /* stop timing early once this much time is spent
                         (at least one timed run is always made); 0 = none */
  bench_timer timer;
} bench_plan;

typedef struct bench_stats {
  int n;              /* timed runs made */
  double median_ms, min_ms, max_ms;
  double spread;      /* (max - min) / median */
  int host_fallbacks; /* samples timed by the host clock instead of events */
} bench_stats;

typedef struct bench_device_info {
  char platform[256];
  char name[256];
  char vendor[256];
  char driver[128];
  char version[128];  /* CL_DEVICE_VERSION, "OpenCL 3.0 PoCL ..." */
  cl_device_type type;
  cl_uint compute_units;
  cl_uint clock_mhz;
  cl_ulong global_mem;
  int has_fma;        /* CL_FP_FMA in CL_DEVICE_SINGLE_FP_CONFIG */
} bench_device_info;

/* Context on the device chosen by RETCL_PLATFORM / RETCL_DEVICE (the
 * library's own default otherwise). Prints the reason to stderr and returns
 * NULL on failure. */
retcl_context *bench_context_create(void);

void bench_device_info_query(retcl_context *ctx, bench_device_info *info);
void bench_device_info_print(const bench_device_info *info);

/* Run plan->warmup untimed and then up to plan->repeats timed instances of
 * fn. Returns 0 and fills *stats, or non-zero with err filled on the first
 * failure (a warm-up failure included). */
int bench_time(retcl_context *ctx, const bench_plan *plan, bench_enqueue_fn fn,
               void *arg, bench_stats *stats, char *err, size_t errlen);

/* Order statistics of n > 0 samples in milliseconds (sorted in place);
 * host_fallbacks is left 0. */
void bench_stats_from(double *ms, int n, bench_stats *stats);
/* The median of x[n] (n >= 1), x left as it is. */
double bench_median(const double *x, int n);

/* Host monotonic clock in seconds. */
double bench_now(void);

/* A device buffer of n floats filled with uniform values in [lo, hi) from
 * the library's generator (retcl_random_uniform) seeded with seed:
 * deterministic inputs make runs comparable. NULL on failure, with err
 * filled. */
cl_mem bench_random_buffer(retcl_context *ctx, size_t n, float lo, float hi,
                           unsigned seed, char *err, size_t errlen);
/* An uninitialised device buffer of n floats (NULL on failure). */
cl_mem bench_buffer(retcl_context *ctx, size_t n, char *err, size_t errlen);

/* Write s as a JSON string literal (quotes and escapes included). */
void bench_json_string(FILE *f, const char *s);

/* ---- RetCL op jobs -------------------------------------------------------
 * One op of the library with its inputs on the device, ready for
 * bench_time(bench_op_enqueue, job): what the kernels suite of retcl-bench
 * times. Inputs are deterministic random values; activations are
 * token-major. */

typedef enum bench_op {
  BENCH_OP_ROTATE = 0,     /* retcl_rotate, out of place, queries */
  BENCH_OP_GROUP_NORM = 1, /* retcl_group_norm_gate: RMS, swish, no affine
                              (torchscale's configuration) */
  BENCH_OP_RETENTION = 2,  /* retcl_retention, raw form, scale Dk^-1/2 */
  BENCH_OP_RETENTION_BACKWARD = 3 /* retcl_retention_backward of that call */
} bench_op;

typedef struct bench_op_job {
  retcl_context *ctx;
  bench_op op;
  size_t B, T, H, Dk, Dv;     /* rotation uses Dk, group norm Dv */
  retcl_algorithm algorithm;  /* retention */
  size_t chunk;               /* retention, chunkwise */
  int state;                  /* retention: initial and final state given */
  int torchscale;             /* retention: torchscale form (k carries
                                 Dk^-1/2) instead of raw */
  retcl_rotation *rot;
  cl_mem in[4], out, state_in, state_out; /* q, k, v, log decay / x, gate */
  /* backward: d_out, dq, dk, dv; with state, d_state_out and d_state_in
   * (state_in above is the forward's initial state) */
  cl_mem grad[4], d_state_out, d_state_in;
} bench_op_job;

/* Create the op's inputs and outputs. 0, or non-zero with err filled (the
 * job is then released already). */
int bench_op_job_init(bench_op_job *j, retcl_context *ctx, bench_op op,
                      size_t B, size_t T, size_t H, size_t Dk, size_t Dv,
                      retcl_algorithm algorithm, size_t chunk, int state,
                      char *err, size_t errlen);
/* The same for retention and its backward in either form (torchscale != 0:
 * torchscale's, whose parallel and chunkwise forms take no state, so state
 * must be 0 then). */
int bench_op_job_init_form(bench_op_job *j, retcl_context *ctx, bench_op op,
                           size_t B, size_t T, size_t H, size_t Dk, size_t Dv,
                           retcl_algorithm algorithm, size_t chunk, int state,
                           int torchscale, char *err, size_t errlen);
void bench_op_job_release(bench_op_job *j);
/* bench_enqueue_fn for a bench_op_job. */
int bench_op_enqueue(void *job, cl_event *event, char *err, size_t errlen);

/* FLOP count of one retention call (multiply + add = 2; bench/README.md):
 * chunkwise B*H*T*(2C(Dk+Dv) + 4 Dk Dv); parallel B*H*(T(T+1)/2)*2(Dk+Dv)
 * plus B*H*2*T*Dk*Dv for each of an initial and a final state; recurrent
 * B*H*T*4*Dk*Dv. */
double bench_retention_flops(size_t B, size_t T, size_t H, size_t Dk,
                             size_t Dv, retcl_algorithm a, size_t chunk,
                             int state);
/* FLOP count of one retention backward (docs/bench-json.md): the
 * products a backward cannot avoid, counted as the forward counts its
 * own. chunkwise B*H*T*(2C(3Dk+2Dv) + 10 Dk Dv) (scores Q Kᵀ and dO Vᵀ,
 * dq, dk, dv per chunk pair; five state products: the chunk states, their
 * gradients, and the cross terms of dq, dk and dv); parallel
 * B*H*(T(T+1)/2)*2(3Dk+2Dv), plus B*H*8*T*Dk*Dv with states (dq's and
 * dk's, dv's initial- and final-state terms, d_state_in); recurrent
 * B*H*T*10*Dk*Dv (state and dq going forward, gradient, dk and dv going
 * back). */
double bench_retention_backward_flops(size_t B, size_t T, size_t H, size_t Dk,
                                      size_t Dv, retcl_algorithm a,
                                      size_t chunk, int state);
/* Bytes the op must move at least: rotation reads and writes B*T*H*Dk
 * floats; group norm + gate reads x and the gate and writes out
 * (3 B*T*H*Dv); retention reads q, k, v and writes out (plus the states);
 * its backward reads q, k, v, d_out and writes dq, dk, dv (plus the
 * states and their gradients). */
double bench_op_bytes(const bench_op_job *j);
/* "parallel", "recurrent", "chunkwise". */
const char *bench_algorithm_name(retcl_algorithm a);

#endif /* RETCL_BENCH_UTIL_H */
