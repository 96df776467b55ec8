/* train.c - the train suite: what a training step costs.
 *
 * 1. The retention backward alone (retcl_retention_backward, torchscale
 *    form, random inputs, B 1, H 8, Dk = Dv = 128, T 4096; --quick: H 4,
 *    Dk = Dv = 64, T 256), chunkwise and parallel, each beside the forward
 *    of the same call, timed by profiling events like the kernels suite.
 *    FLOPs of the backward are counted as 2 x the forward's of that
 *    algorithm (bench_retention_flops): every product of the forward has
 *    two in the backward (dO Vᵀ and Pᵀ dO for P V; dS K and dSᵀ Q for
 *    Q Kᵀ; likewise for the chunk states), while what an implementation
 *    recomputes (the scores, the chunk states) is not counted as work.
 *
 * 2. One training step of the model (retcl_model_forward_train +
 *    retcl_model_backward + retcl_finish, batch 1) versus T = 512 ...
 *    --max-train-T for the parallel and chunkwise forms, each with and
 *    without recomputation: time, tokens/s, peak device memory and the
 *    model arithmetic read against the FMA peak.
 *
 * Peak memory: every configuration runs on a fresh context with a freshly
 * loaded model, because the training tape and the workspaces grow to the
 * largest call and are kept; what is held after the first timed step
 * (weights + gradient buffer + retcl_model_train_bytes +
 * retcl_context_workspace_bytes) is that configuration's peak.
 *
 * Model arithmetic of a step: 3 x the forward's projection FLOPs, the
 * forward being 2 flop per weight of the projections (q, k, v, g, out,
 * fc1, gate, fc2 of each layer) and of the output projection per token
 * (every token's logits enter the loss); the backward of each product is
 * two products of the same size (input and weight gradients). Retention,
 * the norms, the activations and the loss are not counted.
 *
 * Time: host clock around the three calls, median of up to --repeats steps
 * after one untimed step of the same length (kernel builds, and PoCL's
 * specialisation of kernels to new launch sizes, cost seconds on the first
 * step at a new T). A further step is made only while the configuration's timed
 * steps stay within half of --max-train-seconds; a T whose step is
 * predicted (from the two previous T of the same series, growth exponent
 * clamped to [1, 2]) to exceed --max-train-seconds is skipped, and so is
 * every larger T of that series. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "growth.h"
#include "models.h"

/* ---- the retention backward alone ---------------------------------------- */

typedef struct ret_shape {
  size_t B, T, H, D;
} ret_shape;

static const ret_shape full_ret = {1, 4096, 8, 128}; /* the point */
static const ret_shape quick_ret = {1, 256, 4, 64};

static void retention_records(retcl_context *ctx, const suite_options *o,
                              int *done, int total) {
  const ret_shape *s = o->quick ? &quick_ret : &full_ret;
  /* a backward run takes seconds at the full shape: a larger budget than
   * the kernels suite's, so that the median has a few samples */
  const bench_plan plan = {1, o->repeats, 4 * o->max_seconds, o->timer};
  static const retcl_algorithm algos[] = {RETCL_ALGO_CHUNKWISE,
                                          RETCL_ALGO_PARALLEL};
  char title[200];
  snprintf(title, sizeof title,
           "train: retention backward alone (torchscale form, token-major, "
           "chunk %zu; backward flop = 2 x forward's)",
           o->chunk);
  table_header(title, "compute");
  for (int a = 0; a < 2; ++a)
    for (int back = 0; back < 2; ++back) {
      rec *r = rec_new("train");
      const bench_op op = back ? BENCH_OP_RETENTION_BACKWARD : BENCH_OP_RETENTION;
      snprintf(r->op, sizeof r->op, "%s",
               back ? "retention_backward" : "retention");
      snprintf(r->algorithm, sizeof r->algorithm, "%s",
               bench_algorithm_name(algos[a]));
      snprintf(r->form, sizeof r->form, "torchscale");
      r->B = s->B, r->T = s->T, r->H = s->H, r->Dk = r->Dv = s->D;
      r->chunk = algos[a] == RETCL_ALGO_CHUNKWISE ? o->chunk : 0;
      snprintf(r->name, sizeof r->name, "%s %-9s H%zu D%zu T%zu",
               back ? "backward" : "forward ", r->algorithm, s->H, s->D, s->T);
      const double fwd = bench_retention_flops(s->B, s->T, s->H, s->D, s->D,
                                               algos[a], o->chunk, 0);
      r->flop = back ? 2 * fwd : fwd;
      progress("train", ++*done, total, "%s", r->name);
      bench_op_job j;
      if (bench_op_job_init_form(&j, ctx, op, s->B, s->T, s->H, s->D, s->D,
                                 algos[a], o->chunk, 0, 1, r->reason,
                                 sizeof r->reason)) {
        r->status = REC_ERROR;
      } else {
        r->bytes = bench_op_bytes(&j);
        r->status = bench_time(ctx, &plan, bench_op_enqueue, &j, &r->st,
                               r->reason, sizeof r->reason)
                        ? REC_ERROR
                        : REC_OK;
        bench_op_job_release(&j);
      }
      table_row(r, "compute");
    }
}

/* ---- training steps ------------------------------------------------------- */

typedef struct series {
  retcl_algorithm algo;
  int recompute;
  growth points; /* the T measured so far */
} series;

static void fail(char *err, size_t errlen, retcl_context *ctx, const char *what,
                 retcl_status st) {
  snprintf(err, errlen, "%s: %s: %s", what, retcl_status_string(st),
           retcl_last_error(ctx));
}

/* One training step of tokens[0 .. T) (blocks until the gradient is
 * written). 0, or non-zero with err filled. */
static int train_step(bench_model *m, cl_mem grads, const int32_t *tok,
                      size_t T, const retcl_train_options *opt, char *err,
                      size_t errlen) {
  float loss = NAN;
  retcl_status st =
      retcl_model_forward_train(m->retnet, tok, 1, T, opt, &loss);
  if (st) {
    fail(err, errlen, m->ctx, "retcl_model_forward_train", st);
    return 1;
  }
  if ((st = retcl_model_backward(m->retnet, retcl_buf(grads, 0)))) {
    fail(err, errlen, m->ctx, "retcl_model_backward", st);
    return 1;
  }
  if ((st = retcl_finish(m->ctx))) {
    fail(err, errlen, m->ctx, "retcl_finish", st);
    return 1;
  }
  if (!isfinite(loss)) {
    snprintf(err, errlen, "the loss is not finite (%g)", (double)loss);
    return 1;
  }
  return 0;
}

/* Model arithmetic of one training step of T tokens (see the top). */
static double train_flop(const bench_model *m, size_t T) {
  return 3.0 * 2.0 * (double)T * model_linear_params(m);
}

/* What a timed training step needs (train_run). */
typedef struct train_job {
  bench_model *m;
  retcl_context *ctx;
  cl_mem grads;
  size_t np; /* parameters (and gradient floats) */
  const int32_t *tok;
  size_t T;
  const retcl_train_options *opt;
  rec *r;
} train_job;

/* One training step (growth_run_fn); the first records the memory held
 * after it. */
static int train_run(void *user, int i, double *ms) {
  train_job *j = user;
  progress_detail("step %d", i + 1);
  const double t0 = bench_now();
  const int rc = train_step(j->m, j->grads, j->tok, j->T, j->opt,
                            j->r->reason, sizeof j->r->reason);
  *ms = (bench_now() - t0) * 1e3;
  if (rc) return rc;
  if (i == 0) {
    rec_memory *mem = &j->r->mem;
    mem->weights = (long long)retcl_model_weight_bytes(j->m->retnet);
    mem->grads = (long long)(j->np * sizeof(float));
    mem->train = (long long)retcl_model_train_bytes(j->m->retnet);
    mem->workspace = (long long)retcl_context_workspace_bytes(j->ctx);
  }
  return 0;
}

static void measure(const suite_options *o, const char *dir, const series *x,
                    size_t T, rec *r) {
  char *err = r->reason;
  const size_t errlen = sizeof r->reason;
  bench_model m;
  /* Training needs fp32 weights, whatever --weights says. */
  suite_options o32 = *o;
  o32.weights = RETCL_STORAGE_F32;
  retcl_context *ctx = growth_open_model(&m, MODEL_RETNET, &o32, dir, r);
  if (!ctx) return;
  r->flop = train_flop(&m, T);
  const size_t np = retcl_model_param_count(m.retnet);
  cl_mem grads = bench_buffer(ctx, np, err, errlen);
  int32_t *tok = tokens_block(1, 0, T, o->vocab);
  retcl_train_options opt;
  retcl_train_options_default(&opt);
  opt.algorithm = x->algo;
  opt.chunk_size = o->chunk;
  opt.recompute = x->recompute;
  int rc = !grads || !tok;
  if (!tok) snprintf(err, errlen, "out of host memory");
  /* one untimed step of the measured length: kernel builds, and PoCL's
   * specialisation of kernels to new launch sizes, land in it */
  if (!rc) {
    progress_detail("untimed warm-up step");
    rc = train_step(&m, grads, tok, T, &opt, err, errlen);
  }
  if (rc) {
    r->status = REC_ERROR;
  } else {
    train_job job = {&m, ctx, grads, np, tok, T, &opt, r};
    /* half the per-step cap for the configuration's steps */
    growth_time_runs(train_run, &job, o->prefill_repeats, o->max_train / 2,
                     r);
  }
  free(tok);
  if (grads) clReleaseMemObject(grads);
  model_close(&m);
  retcl_context_destroy(ctx);
}

int suite_train(const suite_options *o) {
  size_t Ts[GROWTH_MAX_T];
  const int nT = growth_lengths(o->quick, o->max_train_T, Ts);
  series xs[4] = {{.algo = RETCL_ALGO_CHUNKWISE, .recompute = 0},
                  {.algo = RETCL_ALGO_CHUNKWISE, .recompute = 1},
                  {.algo = RETCL_ALGO_PARALLEL, .recompute = 0},
                  {.algo = RETCL_ALGO_PARALLEL, .recompute = 1}};
  const int total = 4 + 4 * nT;
  int done = 0;

  retcl_context *ctx = bench_context_create();
  if (!ctx) return 1;
  retention_records(ctx, o, &done, total);
  retcl_context_destroy(ctx);

  char dir[512];
  if (checkpoint_prepare(o, dir, sizeof dir)) return 1;
  char title[300];
  snprintf(title, sizeof title,
           "train: one training step (forward_train + backward + finish), "
           "batch 1, d %zu, H %zu, L %zu, ffn %zu, vocab %zu, chunk %zu; "
           "GFLOP/s of the model arithmetic (3 x forward projections); fresh "
           "context each; memory after the first step (MiB)",
           o->d, o->heads, o->layers, o->ffn, o->vocab, o->chunk);
  table_header(title, "train");
  /* T-major, series interleaved: drift over the run hits all four alike */
  for (int ti = 0; ti < nT; ++ti)
    for (int k = 0; k < 4; ++k) {
      series *x = &xs[k];
      const size_t T = Ts[ti];
      rec *r = rec_new("train");
      snprintf(r->op, sizeof r->op, "train_step");
      snprintf(r->model, sizeof r->model, "retnet");
      snprintf(r->algorithm, sizeof r->algorithm, "%s",
               bench_algorithm_name(x->algo));
      r->recompute = x->recompute;
      snprintf(r->name, sizeof r->name, "retnet train %s%s T %zu",
               r->algorithm, x->recompute ? " recompute" : "", T);
      r->B = 1, r->T = T, r->H = o->heads, r->Dk = r->Dv = o->d / o->heads;
      r->chunk = x->algo == RETCL_ALGO_CHUNKWISE ? o->chunk : 0;
      r->tokens = (double)T;
      progress("train", ++done, total, "%s", r->name);
      /* until two T are measured: chunkwise grows as T, the rest as T^2 */
      const double default_exp = x->algo == RETCL_ALGO_CHUNKWISE ? 1.0 : 2.0;
      if (!growth_skip(&x->points, T, default_exp, o->max_train, "step",
                       "--max-train-seconds", r))
        measure(o, dir, x, T, r);
      growth_record(&x->points, T, r);
      table_row(r, "train");
    }
  progress_clear();
  checkpoint_remove(dir);
  return 0;
}
