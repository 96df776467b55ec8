/* kernels.c - the kernels suite: rotation, group norm + gate and retention
 * by each algorithm, over T = 128 ... 16384 and a few head shapes, each
 * timed with profiling events (bench_time) and read against the
 * yardsticks: GB/s x copy for the memory-bound ops, GFLOP/s, % of the FMA
 * peak and x SGEMM for retention. */
#include <string.h>

#include "suite.h"

typedef struct head_shape {
  size_t H, Dk, Dv;
  const char *why;
} head_shape;

/* B = 1 throughout: a prefill of one sequence, where T is the only source
 * of parallelism besides the heads. */
static const head_shape full_shapes[] = {
    {8, 128, 128, "issue 2's headline: one layer of 8 heads of 128"},
    {16, 64, 64, "many small heads"},
    {4, 128, 256, "Dv = 2 Dk, the paper's value width"},
};
static const head_shape quick_shapes[] = {{8, 128, 128, "headline"},
                                          {4, 64, 32, "odd T, Dk != Dv"}};

static const retcl_algorithm algos[] = {RETCL_ALGO_PARALLEL,
                                        RETCL_ALGO_RECURRENT,
                                        RETCL_ALGO_CHUNKWISE};

typedef struct plan_t {
  const head_shape *shapes;
  int nshapes;
  size_t Ts[16];
  int nT;
} plan_t;

static void make_plan(const suite_options *o, plan_t *p) {
  memset(p, 0, sizeof *p);
  if (o->quick) {
    p->shapes = quick_shapes;
    p->nshapes = 2;
    p->Ts[p->nT++] = 128;
    p->Ts[p->nT++] = 100 * 5; /* 500: not a multiple of the chunk */
    return;
  }
  p->shapes = full_shapes;
  p->nshapes = (int)(sizeof full_shapes / sizeof full_shapes[0]);
  for (size_t T = 128; T <= o->kernel_max_T && p->nT < 16; T *= 2)
    p->Ts[p->nT++] = T;
}

static void describe(rec *r, bench_op op, const head_shape *s, size_t T,
                     retcl_algorithm a, size_t chunk) {
  r->B = 1, r->T = T, r->H = s->H, r->Dk = s->Dk, r->Dv = s->Dv;
  if (op == BENCH_OP_ROTATE) {
    snprintf(r->op, sizeof r->op, "rotate");
    r->Dv = 0;
    snprintf(r->name, sizeof r->name, "rotate H%zu D%zu T%zu", s->H, s->Dk, T);
  } else if (op == BENCH_OP_GROUP_NORM) {
    snprintf(r->op, sizeof r->op, "group_norm_gate");
    r->Dk = 0;
    snprintf(r->name, sizeof r->name, "rms+swish H%zu Dv%zu T%zu", s->H, s->Dv,
             T);
  } else {
    snprintf(r->op, sizeof r->op, "retention");
    snprintf(r->algorithm, sizeof r->algorithm, "%s", bench_algorithm_name(a));
    r->chunk = a == RETCL_ALGO_CHUNKWISE ? chunk : 0;
    snprintf(r->name, sizeof r->name, "%-9s H%zu Dk%zu Dv%zu T%zu", r->algorithm,
             s->H, s->Dk, s->Dv, T);
    r->flop = bench_retention_flops(1, T, s->H, s->Dk, s->Dv, a, chunk, 0);
  }
}

static void run_one(retcl_context *ctx, const bench_plan *plan, rec *r,
                    bench_op op, const head_shape *s, retcl_algorithm a,
                    size_t chunk) {
  bench_op_job j;
  if (bench_op_job_init(&j, ctx, op, 1, r->T, s->H, s->Dk, s->Dv, a, chunk, 0,
                        r->reason, sizeof r->reason)) {
    r->status = REC_ERROR;
    return;
  }
  r->bytes = bench_op_bytes(&j);
  r->status = bench_time(ctx, plan, bench_op_enqueue, &j, &r->st, r->reason,
                         sizeof r->reason)
                  ? REC_ERROR
                  : REC_OK;
  bench_op_job_release(&j);
}

int suite_kernels(retcl_context *ctx, const suite_options *o) {
  plan_t p;
  make_plan(o, &p);
  const bench_plan plan = {o->warmup, o->repeats, o->max_seconds, o->timer};
  const int per_T = 2 + 3; /* rotate, norm, three retention algorithms */
  const int total = p.nshapes * p.nT * per_T;
  int done = 0;

  /* Memory-bound ops first, one table each. */
  static const bench_op mem_ops[] = {BENCH_OP_ROTATE, BENCH_OP_GROUP_NORM};
  static const char *const titles[] = {
      "kernels: rotation (B1, token-major; bytes = read + write)",
      "kernels: group norm + gate (RMS, swish; bytes = x + gate + out)"};
  for (int k = 0; k < 2; ++k) {
    table_header(titles[k], "memory");
    for (int si = 0; si < p.nshapes; ++si)
      for (int ti = 0; ti < p.nT; ++ti) {
        rec *r = rec_new("kernels");
        describe(r, mem_ops[k], &p.shapes[si], p.Ts[ti], RETCL_ALGO_CHUNKWISE, 0);
        progress("kernels", ++done, total, "%s", r->name);
        run_one(ctx, &plan, r, mem_ops[k], &p.shapes[si], RETCL_ALGO_CHUNKWISE,
                0);
        table_row(r, "memory");
      }
  }

  char title[128];
  snprintf(title, sizeof title,
           "kernels: retention (raw form, B1, token-major, chunk %zu)", o->chunk);
  table_header(title, "compute");
  for (int si = 0; si < p.nshapes; ++si) {
    /* A run predicted (from the previous T: parallel grows as T^2, the
     * others as T) to take over 4x the per-configuration budget is
     * skipped, so one slow form cannot stretch the suite to many minutes. */
    double last_ms[3] = {0, 0, 0};
    size_t last_T[3] = {0, 0, 0};
    for (int ti = 0; ti < p.nT; ++ti)
      for (int a = 0; a < 3; ++a) {
        const head_shape *s = &p.shapes[si];
        rec *r = rec_new("kernels");
        describe(r, BENCH_OP_RETENTION, s, p.Ts[ti], algos[a], o->chunk);
        progress("kernels", ++done, total, "%s", r->name);
        double pred_s = 0;
        if (last_ms[a] > 0) {
          const double ratio = (double)p.Ts[ti] / (double)last_T[a];
          pred_s = last_ms[a] * 1e-3 *
                   (algos[a] == RETCL_ALGO_PARALLEL ? ratio * ratio : ratio);
        }
        if (last_T[a] > 0 && last_ms[a] == 0) {
          r->status = REC_SKIPPED;
          snprintf(r->reason, sizeof r->reason,
                   "a smaller T of this series was skipped or failed");
        } else if (pred_s > 4 * o->max_seconds) {
          r->status = REC_SKIPPED;
          snprintf(r->reason, sizeof r->reason,
                   "predicted %.3g s per run > 4 x --max-seconds %g", pred_s,
                   o->max_seconds);
        } else {
          run_one(ctx, &plan, r, BENCH_OP_RETENTION, s, algos[a], o->chunk);
        }
        last_T[a] = p.Ts[ti];
        last_ms[a] = r->status == REC_OK ? r->st.median_ms : 0;
        table_row(r, "compute");
      }
  }
  progress_clear();
  return 0;
}
