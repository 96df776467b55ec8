/* kernels.c - the kernels suite: rotation, group norm + gate, retention
 * by each algorithm and its backward, over T = 128 ... 16384 and a few
 * head shapes, each timed with profiling events (bench_time) and read
 * against the yardsticks: GB/s x copy for the memory-bound ops, GFLOP/s,
 * % of the FMA peak and x SGEMM for retention and its backward. After the
 * T series, two sweeps of one configuration each: "batch" (B > 1, every
 * op) and "state" (retention with an initial and a final state: a prefill
 * handing over to decode; the backward with the gradients of both).
 * --ops picks the ops. */
#include <string.h>

#include "suite.h"

typedef struct head_shape {
  size_t H, Dk, Dv;
  const char *why;
} head_shape;

/* B = 1 throughout the T series: a prefill of one sequence, where T is the
 * only source of parallelism besides the heads. */
static const head_shape full_shapes[] = {
    {8, 128, 128, "issue 2's headline: one layer of 8 heads of 128"},
    {16, 64, 64, "many small heads"},
    {4, 128, 256, "Dv = 2 Dk, the paper's value width"},
};
static const head_shape quick_shapes[] = {{8, 128, 128, "headline"},
                                          {4, 64, 32, "odd T, Dk != Dv"}};

/* One configuration of the batch and state sweeps. */
typedef struct point_t {
  size_t B, T;
  head_shape s;
} point_t;
static const point_t full_batch = {4, 1024, {8, 64, 64, "batch > 1"}};
static const point_t full_state = {1, 1024, {8, 128, 128, "headline, state"}};
/* quick: T not a multiple of the chunk, Dk != Dv */
static const point_t quick_extra = {2, 100, {4, 64, 32, "batch, odd T"}};

static const retcl_algorithm algos[] = {RETCL_ALGO_PARALLEL,
                                        RETCL_ALGO_RECURRENT,
                                        RETCL_ALGO_CHUNKWISE};

typedef struct plan_t {
  const head_shape *shapes;
  int nshapes;
  size_t Ts[16];
  int nT;
  const point_t *batch, *state;
} plan_t;

static void make_plan(const suite_options *o, plan_t *p) {
  memset(p, 0, sizeof *p);
  if (o->quick) {
    p->shapes = quick_shapes;
    p->nshapes = 2;
    p->Ts[p->nT++] = 128;
    p->Ts[p->nT++] = 100 * 5; /* 500: not a multiple of the chunk */
    p->batch = p->state = &quick_extra;
    return;
  }
  p->shapes = full_shapes;
  p->nshapes = (int)(sizeof full_shapes / sizeof full_shapes[0]);
  for (size_t T = 128; T <= o->kernel_max_T && p->nT < 16; T *= 2)
    if (T >= o->kernel_min_T) p->Ts[p->nT++] = T;
  /* --kernel-min-T above a sweep's T drops the sweep */
  p->batch = full_batch.T >= o->kernel_min_T ? &full_batch : NULL;
  p->state = full_state.T >= o->kernel_min_T ? &full_state : NULL;
  /* the torchscale form's parallel and chunkwise algorithms start empty */
  if (o->torchscale) p->state = NULL;
}

/* Fill r's op, shape, sweep, name and work for one configuration. */
static void describe(rec *r, bench_op op, size_t B, size_t T,
                     const head_shape *s, retcl_algorithm a, size_t chunk,
                     int state, int torchscale, const char *sweep) {
  r->B = B, r->T = T, r->H = s->H, r->Dk = s->Dk, r->Dv = s->Dv;
  snprintf(r->sweep, sizeof r->sweep, "%s", sweep);
  char bs[24] = "";
  if (B != 1) snprintf(bs, sizeof bs, "B%zu ", B);
  if (op == BENCH_OP_ROTATE) {
    snprintf(r->op, sizeof r->op, "rotate");
    r->Dv = 0;
    snprintf(r->name, sizeof r->name, "rotate %sH%zu D%zu T%zu", bs, s->H,
             s->Dk, T);
  } else if (op == BENCH_OP_GROUP_NORM) {
    snprintf(r->op, sizeof r->op, "group_norm_gate");
    r->Dk = 0;
    snprintf(r->name, sizeof r->name, "rms+swish %sH%zu Dv%zu T%zu", bs, s->H,
             s->Dv, T);
  } else {
    const int bwd = op == BENCH_OP_RETENTION_BACKWARD;
    snprintf(r->op, sizeof r->op, bwd ? "retention_backward" : "retention");
    if (torchscale) snprintf(r->form, sizeof r->form, "torchscale");
    snprintf(r->algorithm, sizeof r->algorithm, "%s", bench_algorithm_name(a));
    r->chunk = a == RETCL_ALGO_CHUNKWISE ? chunk : 0;
    snprintf(r->name, sizeof r->name, "%-9s %sH%zu Dk%zu Dv%zu T%zu%s%s",
             r->algorithm, bs, s->H, s->Dk, s->Dv, T, state ? " +state" : "",
             torchscale ? " ts" : "");
    r->flop = bwd ? bench_retention_backward_flops(B, T, s->H, s->Dk, s->Dv, a,
                                                   chunk, state)
                  : bench_retention_flops(B, T, s->H, s->Dk, s->Dv, a, chunk,
                                          state);
  }
}

static void run_one(retcl_context *ctx, const bench_plan *plan, rec *r,
                    bench_op op, const head_shape *s, retcl_algorithm a,
                    size_t chunk, int state, int torchscale) {
  bench_op_job j;
  if (bench_op_job_init_form(&j, ctx, op, r->B, r->T, s->H, s->Dk, s->Dv, a,
                             chunk, state, torchscale, r->reason,
                             sizeof r->reason)) {
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

typedef struct run_t {
  retcl_context *ctx;
  const suite_options *o;
  bench_plan plan;
  int done, total;
} run_t;

/* Describe, time (or, with a skip reason, skip) and print one
 * configuration; returns its record. */
static rec *measure(run_t *x, bench_op op, size_t B, size_t T,
                    const head_shape *s, retcl_algorithm a, int state,
                    const char *sweep, const char *kind, const char *skip) {
  rec *r = rec_new("kernels");
  /* --retention-form: the retention ops only (the others have no form) */
  const int ts = x->o->torchscale && (op == BENCH_OP_RETENTION ||
                                      op == BENCH_OP_RETENTION_BACKWARD);
  describe(r, op, B, T, s, a, x->o->chunk, state, ts, sweep);
  progress("kernels", ++x->done, x->total, "%s", r->name);
  if (skip) {
    r->status = REC_SKIPPED;
    snprintf(r->reason, sizeof r->reason, "%s", skip);
  } else {
    run_one(x->ctx, &x->plan, r, op, s, a, x->o->chunk, state, ts);
  }
  table_row(r, kind);
  return r;
}

int suite_kernels(retcl_context *ctx, const suite_options *o) {
  plan_t p;
  make_plan(o, &p);
  run_t x = {ctx, o, {o->warmup, o->repeats, o->max_seconds, o->timer}, 0, 0};
  const int mem = !!(o->ops & OP_ROTATE) + !!(o->ops & OP_GROUP_NORM);
  /* three algorithms each, forward and backward */
  int na = 0; /* retention algorithms run (--algorithms) */
  for (int a = 0; a < 3; ++a) na += !!(o->algos & (1 << algos[a]));
  const int ret = (o->ops & OP_RETENTION ? na : 0) +
                  (o->ops & OP_RETENTION_BACKWARD ? na : 0);
  /* the T series; the batch sweep (every op); the state sweep (retention) */
  x.total = p.nshapes * p.nT * (mem + ret) + (p.batch ? mem + ret : 0) +
            (p.state ? ret : 0);

  /* Memory-bound ops first, one table each. */
  static const bench_op mem_ops[] = {BENCH_OP_ROTATE, BENCH_OP_GROUP_NORM};
  static const int mem_bits[] = {OP_ROTATE, OP_GROUP_NORM};
  static const char *const titles[] = {
      "kernels: rotation (token-major; bytes = read + write)",
      "kernels: group norm + gate (RMS, swish; bytes = x + gate + out)"};
  for (int k = 0; k < 2; ++k) {
    if (!(o->ops & mem_bits[k])) continue;
    table_header(titles[k], "memory");
    for (int si = 0; si < p.nshapes; ++si)
      for (int ti = 0; ti < p.nT; ++ti)
        measure(&x, mem_ops[k], 1, p.Ts[ti], &p.shapes[si],
                RETCL_ALGO_CHUNKWISE, 0, "", "memory", NULL);
    if (p.batch)
      measure(&x, mem_ops[k], p.batch->B, p.batch->T, &p.batch->s,
              RETCL_ALGO_CHUNKWISE, 0, "batch", "memory", NULL);
  }
  static const bench_op ret_ops[] = {BENCH_OP_RETENTION,
                                      BENCH_OP_RETENTION_BACKWARD};
  static const int ret_bits[] = {OP_RETENTION, OP_RETENTION_BACKWARD};
  for (int q = 0; q < 2; ++q) {
    if (!(o->ops & ret_bits[q])) continue;
    const bench_op op = ret_ops[q];
    char title[128];
    snprintf(title, sizeof title,
             "kernels: retention%s (%s form, token-major, chunk %zu)",
             q ? " backward" : "", o->torchscale ? "torchscale" : "raw",
             o->chunk);
    table_header(title, "compute");
    for (int si = 0; si < p.nshapes; ++si) {
      /* A run predicted (from the previous T: parallel grows as T^2, the
       * others as T) to take over 4x the per-configuration budget is
       * skipped, so one slow form cannot stretch the suite to many
       * minutes. */
      double last_ms[3] = {0, 0, 0};
      size_t last_T[3] = {0, 0, 0};
      for (int ti = 0; ti < p.nT; ++ti)
        for (int a = 0; a < 3; ++a) {
          if (!(o->algos & (1 << algos[a]))) continue;
          const head_shape *s = &p.shapes[si];
          double pred_s = 0;
          if (last_ms[a] > 0) {
            const double ratio = (double)p.Ts[ti] / (double)last_T[a];
            pred_s = last_ms[a] * 1e-3 *
                     (algos[a] == RETCL_ALGO_PARALLEL ? ratio * ratio : ratio);
          }
          char skip[160] = "";
          if (last_T[a] > 0 && last_ms[a] == 0)
            snprintf(skip, sizeof skip,
                     "a smaller T of this series was skipped or failed");
          else if (pred_s > 4 * o->max_seconds)
            snprintf(skip, sizeof skip,
                     "predicted %.3g s per run > 4 x --max-seconds %g", pred_s,
                     o->max_seconds);
          const rec *r = measure(&x, op, 1, p.Ts[ti], s, algos[a], 0, "",
                                 "compute", skip[0] ? skip : NULL);
          last_T[a] = p.Ts[ti];
          last_ms[a] = r->status == REC_OK ? r->st.median_ms : 0;
        }
    }
    for (int a = 0; a < 3; ++a)
      if (p.batch && (o->algos & (1 << algos[a])))
        measure(&x, op, p.batch->B, p.batch->T, &p.batch->s, algos[a], 0,
                "batch", "compute", NULL);
    for (int a = 0; a < 3; ++a)
      if (p.state && (o->algos & (1 << algos[a])))
        measure(&x, op, p.state->B, p.state->T, &p.state->s, algos[a], 1,
                "state", "compute", NULL);
  }
  progress_clear();
  return 0;
}
