/* suite.h - what the parts of retcl-bench share: options, the result
 * records every suite appends to (one per configuration measured or
 * skipped), the yardsticks of the run, progress reporting.
 *
 * One record per configuration keeps the JSON flat (docs/bench-json.md):
 * the plot script and the checks filter records by suite/model/sweep
 * instead of walking suite-specific trees. */
#ifndef RETCL_BENCH_SUITE_H
#define RETCL_BENCH_SUITE_H

#include <stddef.h>
#include <stdio.h>

#include "bench_util.h"
#include "yardsticks.h"

/* ---- options ------------------------------------------------------------ */

#define SUITE_KERNELS 1
#define SUITE_DECODE 2
#define SUITE_PREFILL 4
#define SUITE_GEMM 8
#define SUITE_TRAIN 16
#define SUITE_SERVE 32
#define SUITE_WEIGHTS 64 /* decode at batch 1 with f32, f16, bf16 weights */
#define SUITE_MPI 128    /* sequence-parallel retention under mpirun */

/* kernels suite: which ops (--ops) */
#define OP_ROTATE 1
#define OP_GROUP_NORM 2
#define OP_RETENTION 4
#define OP_RETENTION_BACKWARD 8

typedef struct suite_options {
  int suites;            /* SUITE_* bits */
  int ops;               /* kernels: OP_* bits */
  int no_sgemm;          /* skip the CLBlast SGEMM yardstick */
  int quick;             /* small shapes and model: a smoke test in seconds */
  int repeats;           /* kernels: timed runs per configuration */
  int prefill_repeats;   /* prefill: timed runs at most */
  int warmup;            /* kernels: untimed runs first */
  const char *json;      /* output file (NULL: no JSON) */
  bench_timer timer;     /* kernels suite timer */
  /* per-configuration time caps (seconds); see usage() */
  double max_seconds;    /* kernels: timed-run budget; skip if a run > 4x */
  double max_fill;       /* decode: filling a context (prefill) */
  double max_prefill;    /* prefill: one predicted run */
  double max_gemm;       /* gemm: one predicted run, and the time of a
                            configuration's rounds */
  double max_train;      /* train: one predicted training step; further
                            steps only while a configuration's timed steps
                            stay within half of it */
  /* model shape (decode, prefill) */
  size_t d, heads, ffn, layers, vocab, chunk;
  retcl_storage weights; /* decode, prefill: the model's weight storage
                            (--weights; f32 default) */
  size_t steps;          /* decode: timed steps per configuration */
  int tf_synthetic;      /* decode: baseline contexts by synthetic fill */
  size_t batch_context;  /* decode: context of the batch sweep */
  size_t target_context, target_batch; /* decode: the headline point */
  size_t min_context;    /* decode: first context of the sweep */
  size_t max_context;    /* decode: last context of the sweep */
  size_t max_T;          /* prefill: largest T */
  size_t max_train_T;    /* train: largest T */
  size_t kernel_max_T;   /* kernels: largest T */
  size_t kernel_min_T;   /* kernels: smallest T of the series (128); the
                            batch and state sweeps run only at T >= it */
  int algos;             /* kernels: retention algorithms (--algorithms),
                            bit 1 << retcl_algorithm */
  int torchscale;        /* kernels: retention in the torchscale form
                            (--retention-form) instead of raw */
  size_t sgemm_n, copy_mib;
  char command[1024];    /* the command line, for the JSON */
} suite_options;

/* ---- records ------------------------------------------------------------ */

typedef enum rec_status { REC_OK = 0, REC_SKIPPED = 1, REC_ERROR = 2 } rec_status;

/* Memory sizes are bytes as allocated on the device, -1 where not applicable. */
typedef struct rec_memory {
  long long weights;   /* model weights */
  long long cache;     /* RetNet decode state / Transformer KV cache */
  long long workspace; /* temporaries held (they grow to the largest call) */
  long long grads;     /* train: the gradient buffer (one per weight) */
  long long train;     /* train: what the training forward keeps for the
                          backward (retcl_model_train_bytes) */
} rec_memory;

typedef struct rec {
  const char *suite;     /* "kernels", "decode", "prefill", "gemm", "train",
                            "serve" */
  char op[24];           /* rotate, group_norm_gate, retention, decode,
                            prefill; train: train_step, retention,
                            retention_backward */
  char model[16];        /* retnet, transformer, "" (kernels) */
  char algorithm[16];    /* parallel, recurrent, chunkwise, "" */
  char sweep[16];        /* decode: context, batch, target; kernels: batch
                            (B > 1), state (retention with an initial and
                            a final state), "" for the T series; prefill:
                            "" */
  char name[128];        /* readable label of the configuration */
  size_t B, T, H, Dk, Dv, chunk;
  size_t context;        /* decode: tokens in the context while stepping */
  rec_status status;
  char reason[512];      /* why skipped, or the error */
  bench_stats st;        /* time of one timed unit (kernel call, decode step,
                            prefill call) */
  double flop;           /* per timed unit, 0 = not counted */
  double bytes;          /* per timed unit, 0 = not counted */
  double tokens;         /* tokens produced per timed unit, 0 = n/a */
  rec_memory mem;
  double fill_s;         /* decode: seconds spent filling the context */
  char fill[12];         /* decode: "prefill" or "synthetic" (baseline KV
                            cache of constants, tf_cache_fill_synthetic) */
  double ref_ratio;      /* decode, RetNet: median / median of a reference
                            stepped interleaved (context sweep: the
                            context-512 state; batch sweep: a batch-1
                            sequence of the same context); 0 = n/a */
  /* gemm suite */
  size_t M, N, K;        /* the product as retcl_gemm sees it (0 = n/a) */
  char gcase[4];         /* "nt", "nn", "tn" */
  char proj[16];         /* "qkvg/fc1gate", "out", "fc2", "output" */
  double ratio_clblast;  /* gflops / CLBlast's of the same product, 0 = n/a */
  double ratio_openblas; /* gflops / OpenBLAS's of the same product */
  int calls_per_run;     /* products back to back per timed run, 0 = n/a */
  /* train suite */
  int recompute;         /* train_step: retcl_train_options.recompute (0,
                            1); -1 = n/a */
  char form[12];         /* train suite's retention records: "torchscale";
                            "" elsewhere */
  char wtype[8];         /* RetNet records: weight storage ("f32", "f16",
                            "bf16"); "" elsewhere */
  /* mpi suite (ranks 0 elsewhere) */
  int ranks;             /* ranks of the run */
  int rank;              /* the rank measured; -1: the whole call (each
                            repetition's slowest rank) */
  size_t t0;             /* the rank's first token */
  double local_ms, exchange_ms, finish_ms; /* medians of the call's parts */
  double comm_sent, comm_received;         /* state bytes per call */
  double pair_bytes, control_bytes;        /* per call */
  /* mpi suite, split models (mpi_model.c): per layer pass where noted */
  size_t layers;         /* the model's layers; 0 = n/a */
  double staging_ms;     /* reading / writing exchanged data, per layer */
  double one_rank_ratio; /* whole: median / the one-rank run's; 0 = n/a */
} rec;

rec *rec_new(const char *suite);
int rec_count(void);
rec *rec_at(int i);

/* Derived rates of a record (0 where undefined). */
double rec_gflops(const rec *r);
double rec_gbs(const rec *r);
double rec_tokens_per_s(const rec *r);
long long rec_mem_total(const rec *r); /* weights + cache (+ workspace for
                                           prefill records); train: weights
                                           + grads + train + workspace;
                                           -1 = n/a */

/* ---- yardsticks --------------------------------------------------------- */

typedef struct suite_yardsticks {
  bench_fma_result fma;
  bench_sgemm_result sgemm;
  bench_copy_result copy;
} suite_yardsticks;

/* Measured at the start of the run and again at the end; g_yard holds the
 * better of the two for each (a yardstick is a ceiling, and on a shared
 * machine one measurement can land in someone else's burst). */
extern suite_yardsticks g_yard;

/* OpenBLAS, the gemm suite's host yardstick (measured per shape there). */
typedef struct suite_openblas {
  int available;   /* linked and the device is a CPU */
  int threads;     /* openblas_set_num_threads: the device's compute units */
  char config[200]; /* openblas_get_config(), its core (kernels) */
  char error[160]; /* why unavailable */
} suite_openblas;
extern suite_openblas g_openblas;
extern suite_yardsticks g_yard_runs[2];
extern int g_yard_nruns;

/* ---- output ------------------------------------------------------------- */

/* Progress on stderr: "[decode 5/14 01:23] retnet ctx 2048 batch 8 ...",
 * rewritten in place on a terminal, one line each otherwise. */
void progress(const char *suite, int i, int n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Rewrite the current progress line with a detail after its label
 * ("fill transformer batch 8: 4096/8192 tokens"). */
void progress_detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Erase the progress line (before writing to stdout on a terminal). */
void progress_clear(void);

/* Tables on stdout: a header per table, a row per record. */
void table_header(const char *title, const char *kind);
void table_row(const rec *r, const char *kind);

/* kind: "compute" (retention), "memory" (rotate, norm), "decode",
 * "prefill", "train". */

int write_json(const char *path, const suite_options *o,
               const bench_device_info *dev, double wall_s);

/* Target checks computed from the records (printed and in the JSON). */
typedef struct check {
  char name[64];
  char what[256];
  double value;     /* NaN when not measured */
  char target[48];  /* e.g. ">= 8.4" */
  int met;          /* 1, 0, or -1 when not measured */
  char note[256];
} check;
int checks_compute(const suite_options *o, check *out, int max);
void checks_print(const check *c, int n);

/* ---- suites ------------------------------------------------------------- */

int suite_kernels(retcl_context *ctx, const suite_options *o);
int suite_decode(const suite_options *o);
int suite_prefill(const suite_options *o);
int suite_gemm(retcl_context *ctx, const suite_options *o);
int suite_train(const suite_options *o);
int suite_serve(const suite_options *o);
int suite_weights(const suite_options *o);
/* The mpi suite: initialises and finalises MPI itself; rank 0 prints and
 * writes the JSON. Returns the exit status. */
int suite_mpi_main(suite_options *o);
#if RETCL_BENCH_HAVE_MPI
/* Its split-model part (mpi_model.c), after the retention part: every rank
 * of h's communicator (MPI_COMM_WORLD). Returns 0, or 1 after a failure. */
struct retcl_mpi;
int suite_mpi_models(struct retcl_mpi *h, const suite_options *o);
#endif
/* "f32", "f16", "bf16" or "keep". */
const char *storage_name(retcl_storage s);
/* Before anything else: when OpenBLAS fell back to generic kernels for an
 * unknown CPU, exec the program again with OPENBLAS_CORETYPE set. */
void suite_gemm_openblas_core(char **argv);

/* ---- helpers ------------------------------------------------------------ */

/* Seconds since the program started. */
double suite_elapsed(void);

#endif /* RETCL_BENCH_SUITE_H */
