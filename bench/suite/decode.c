/* decode.c - the decode suite: per-token latency and tokens/s of RetNet
 * against the Transformer baseline (same width, depth, FFN, vocabulary),
 * with the memory each holds to go on, read from the buffers allocated:
 *
 *   context sweep  batch 1, context --min-context (512) ...
 *                  --max-context (16384), doubling;
 *   batch sweep    batch 1 ... 16 at --batch-context;
 *   target         --target-batch at --target-context (8 at 8192), the
 *                  issue's headline comparison.
 *
 * Method. A context of n tokens is filled up to n - S, where S = warm-up +
 * timed steps; then S single-token steps run, so the steps end exactly at
 * n and the memory read afterwards is what each model holds at context n.
 * RetNet fills by prefill: chunkwise from the empty state, then recurrent
 * continuation as the API requires. The baseline, by default
 * (--tf-fill synthetic), gets a KV cache of n - S constant keys and values
 * (tf_cache_fill_synthetic): its decode step reads every cached key and
 * value once whatever they hold, so the step costs what it would after a
 * real prefill, and the minutes of quadratic CPU prefill are saved;
 * --tf-fill prefill runs tf_forward over pieces appended to the cache
 * instead. Each record says which ("fill"). Steps of the models (and of a
 * RetNet reference: in the context sweep a state kept at ~512 tokens, in
 * the batch sweep a batch-1 sequence beside each larger batch) are
 * interleaved round-robin: drift of a shared, noisy machine then hits all
 * alike and their ratios stay meaningful. A step is timed by the host
 * clock around the blocking call, logits read back included: the latency
 * a user sees.
 *
 * The context sweep grows one sequence per model instead of refilling from
 * scratch for every context (half the prefill work; a synthetic baseline
 * cache is made afresh for each context). A fill predicted (by
 * the flop count of the previous one) to take longer than
 * --max-fill-seconds is skipped, with every larger context of that model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models.h"

#define NSEQ_MAX 3

typedef struct decode_env {
  const suite_options *o;
  bench_model models[2]; /* RETNET, TRANSFORMER */
  int open[2];
  char open_err[2][512];
  int done, total;
  size_t S;              /* warm-up + timed steps */
  size_t fill_rows;
} decode_env;

static const int WARM = 2;

/* Flop of extending `batch` sequences from n0 to n1 tokens: the linear
 * layers per token and, for the baseline, attention over the cache. Only
 * ratios of this are used, to predict one fill from the last. */
static double fill_flop(const bench_model *m, size_t batch, size_t n0,
                        size_t n1) {
  const double lin = 2.0 * (model_linear_params(m) - (double)m->vocab * (double)m->d);
  double f = lin * (double)(n1 - n0);
  if (m->kind == MODEL_TRANSFORMER)
    f += (double)m->layers * 4.0 * (double)m->d *
         ((double)n1 * n1 - (double)n0 * n0) / 2.0;
  return f * (double)batch;
}

/* Seconds per flop of each model's last fill, for predictions. */
static double g_fill_rate[2];

static double predict_fill(const bench_seq *s, size_t target) {
  const size_t pos = seq_position(s);
  if (target <= pos || g_fill_rate[s->m->kind] <= 0) return 0;
  return g_fill_rate[s->m->kind] * fill_flop(s->m, s->batch, pos, target);
}

/* Fill s to target, by prefill or (baseline only) synthetically; on
 * failure or skip, fills r's status and reason. */
static int fill_as(decode_env *e, bench_seq *s, size_t target, rec *r,
                   int synthetic) {
  if (synthetic) {
    /* only an empty cache can be filled so: start a fresh one */
    if (seq_position(s) > 0) {
      bench_model *m = s->m;
      const size_t batch = s->batch;
      seq_close(s);
      if (seq_open(s, m, batch, r->reason, sizeof r->reason)) {
        r->status = REC_ERROR;
        return 1;
      }
    }
    snprintf(r->fill, sizeof r->fill, "synthetic");
    double sec = 0;
    const int rc = seq_fill_synthetic(s, target, &sec, r->reason,
                                      sizeof r->reason);
    r->fill_s += sec;
    if (rc) r->status = REC_ERROR;
    return rc;
  }
  snprintf(r->fill, sizeof r->fill, "prefill");
  const double pred = predict_fill(s, target);
  if (pred > e->o->max_fill) {
    r->status = REC_SKIPPED;
    snprintf(r->reason, sizeof r->reason,
             "filling to %zu tokens x batch %zu predicted to take %.0f s > "
             "--max-fill-seconds %.0f",
             target + e->S, s->batch, pred, e->o->max_fill);
    return 1;
  }
  const size_t pos = seq_position(s);
  double sec = 0;
  int rc = seq_fill(s, target, e->fill_rows, e->o->max_fill, &sec, r->reason,
                    sizeof r->reason);
  r->fill_s += sec;
  if (!rc && target > pos && sec > 0)
    g_fill_rate[s->m->kind] = sec / fill_flop(s->m, s->batch, pos, target);
  if (rc) r->status = rc == 2 ? REC_SKIPPED : REC_ERROR;
  return rc;
}

/* Fill as --tf-fill says. */
static int fill(decode_env *e, bench_seq *s, size_t target, rec *r) {
  return fill_as(e, s, target, r,
                 s->m->kind == MODEL_TRANSFORMER && e->o->tf_synthetic);
}

/* S rounds of one step of every live sequence; the first WARM rounds are
 * untimed. ms[i] gets the timed steps of seqs[i]. */
static int step_all(decode_env *e, bench_seq **seqs, rec **recs, int n,
                    double **ms) {
  int rc = 0;
  /* the step-time arrays are the callers' callocs: a sequence without one
   * is not stepped */
  for (int i = 0; i < n; ++i)
    if (seqs[i] && recs[i]->status == REC_OK && !ms[i]) {
      recs[i]->status = REC_ERROR;
      snprintf(recs[i]->reason, sizeof recs[i]->reason,
               "out of host memory (step times)");
      rc = 1;
    }
  for (size_t round = 0; round < e->S; ++round)
    for (int i = 0; i < n; ++i) {
      if (!seqs[i] || recs[i]->status != REC_OK) continue;
      const size_t B = seqs[i]->batch, pos = seq_position(seqs[i]);
      int32_t *tok = tokens_block(B, pos, 1, seqs[i]->m->vocab);
      if (!tok)
        snprintf(recs[i]->reason, sizeof recs[i]->reason,
                 "out of host memory (tokens)");
      const double t0 = bench_now();
      int err = !tok || seq_forward(seqs[i], tok, 1, -1, recs[i]->reason,
                                    sizeof recs[i]->reason);
      const double dt = (bench_now() - t0) * 1e3;
      free(tok);
      if (err) {
        recs[i]->status = REC_ERROR;
        rc = 1;
        continue;
      }
      if (round >= (size_t)WARM) ms[i][round - WARM] = dt;
    }
  return rc;
}

static rec *new_decode_rec(decode_env *e, model_kind k, const char *sweep,
                           size_t context, size_t batch) {
  rec *r = rec_new("decode");
  snprintf(r->op, sizeof r->op, "decode");
  snprintf(r->model, sizeof r->model, "%s", model_name(k));
  if (k == MODEL_RETNET && e->open[k])
    snprintf(r->wtype, sizeof r->wtype, "%s",
             retcl_model_weight_type(e->models[k].retnet) == RETCL_DTYPE_F16
                 ? "f16"
             : retcl_model_weight_type(e->models[k].retnet) == RETCL_DTYPE_BF16
                 ? "bf16"
                 : "f32");
  snprintf(r->algorithm, sizeof r->algorithm, "%s",
           k == MODEL_RETNET ? "recurrent" : "");
  snprintf(r->sweep, sizeof r->sweep, "%s", sweep);
  snprintf(r->name, sizeof r->name, "%s ctx %zu batch %zu (%s)", model_name(k),
           context, batch, sweep);
  r->context = context;
  r->B = batch;
  r->H = e->o->heads;
  r->Dk = r->Dv = e->o->d / e->o->heads;
  r->tokens = (double)batch;
  if (!e->open[k]) {
    r->status = REC_ERROR;
    snprintf(r->reason, sizeof r->reason, "%s", e->open_err[k]);
  }
  return r;
}

/* Statistics, work and memory of a measured sequence. */
static void finish_rec(decode_env *e, rec *r, const bench_seq *s, double *ms) {
  if (r->status != REC_OK) return;
  bench_stats_from(ms, (int)(e->S - WARM), &r->st);
  r->flop = decode_flop(s->m, s->batch, r->context);
  r->bytes = decode_bytes(s->m, s->batch, r->context);
  r->mem = seq_memory(s);
}

/* One (context, batch) point for both models, from fresh sequences. A
 * batch point of more than one sequence also steps a batch-1 RetNet
 * sequence of the same context interleaved with them (slot 2, not
 * reported itself): the RetNet record's ref_ratio is then its step time
 * over a batch-1 step's, measured under the same load. Not the point that
 * stands for the target (`is_target`): the headline comparison keeps the
 * two models alone. */
static void point(decode_env *e, const char *sweep, size_t context,
                  size_t batch, int is_target) {
  enum { NS = 3 };
  progress("decode", ++e->done, e->total, "%s: ctx %zu batch %zu", sweep,
           context, batch);
  bench_seq seqs[NS];
  bench_seq *live[NS] = {NULL, NULL, NULL};
  rec *recs[NS];
  rec refrec; /* the batch-1 reference's times only */
  memset(&refrec, 0, sizeof refrec);
  double *ms[NS] = {NULL, NULL, NULL};
  const int with_ref = !strcmp(sweep, "batch") && batch > 1 && !is_target;
  for (int k = 0; k < NS; ++k) {
    const model_kind kind = k == 2 ? MODEL_RETNET : (model_kind)k;
    if (k == 2 && (!with_ref || !e->open[kind])) break;
    recs[k] = k < 2 ? new_decode_rec(e, kind, sweep, context, batch) : &refrec;
    ms[k] = calloc(e->S, sizeof(double));
    if (recs[k]->status != REC_OK) continue;
    if (seq_open(&seqs[k], &e->models[kind], k < 2 ? batch : 1,
                 recs[k]->reason, sizeof recs[k]->reason)) {
      recs[k]->status = REC_ERROR;
      continue;
    }
    live[k] = &seqs[k];
    fill(e, live[k], context - e->S, recs[k]);
  }
  progress_detail("%zu steps", e->S);
  step_all(e, live, recs, live[2] ? NS : 2, ms);
  for (int k = 0; k < 2; ++k)
    if (live[k]) finish_rec(e, recs[k], live[k], ms[k]);
  /* RetNet's step time against the batch-1 reference's */
  if (live[0] && live[2] && recs[0]->status == REC_OK &&
      refrec.status == REC_OK) {
    bench_stats rs;
    bench_stats_from(ms[2], (int)(e->S - WARM), &rs);
    recs[0]->ref_ratio = recs[0]->st.median_ms / rs.median_ms;
  }
  for (int k = 0; k < NS; ++k) {
    if (live[k]) seq_close(live[k]);
    if (k < 2) table_row(recs[k], "decode");
    free(ms[k]);
  }
}

/* Batch 1 at growing contexts: one sequence per model, extended from one
 * context to the next, stepped interleaved with references: a RetNet state
 * that stays near the first context (drift-free flatness) and, when the
 * baseline is prefilled (--tf-fill prefill), a synthetic baseline cache of
 * the same context (an A/B of the two ways to fill it). Slots: 0 RetNet,
 * 1 baseline, 2 RetNet reference, 3 synthetic baseline reference. */
static void context_sweep(decode_env *e, const size_t *ctxs, int n) {
  enum { NS = 4 };
  static const model_kind kinds[NS] = {MODEL_RETNET, MODEL_TRANSFORMER,
                                       MODEL_RETNET, MODEL_TRANSFORMER};
  bench_seq seq[NS];
  bench_seq *live[NS] = {NULL, NULL, NULL, NULL};
  char err[512] = "";
  for (int k = 0; k < NS; ++k) {
    if (k == 3 && e->o->tf_synthetic) continue; /* no A/B to make */
    if (e->open[kinds[k]] &&
        !seq_open(&seq[k], &e->models[kinds[k]], 1, err, sizeof err))
      live[k] = &seq[k];
  }
  int stopped[2] = {0, 0};
  char stop_reason[2][512];
  for (int c = 0; c < n; ++c) {
    progress("decode", ++e->done, e->total, "context sweep: ctx %zu batch 1",
             ctxs[c]);
    rec *recs[NS];
    double *ms[NS];
    bench_seq *now[NS] = {NULL, NULL, NULL, NULL};
    rec refrec[2]; /* the references' times only; not reported themselves */
    memset(refrec, 0, sizeof refrec);
    for (int k = 0; k < NS; ++k) {
      ms[k] = calloc(e->S, sizeof(double));
      recs[k] = k < 2 ? new_decode_rec(e, kinds[k], "context", ctxs[c], 1)
                      : &refrec[k - 2];
      if (!live[k]) {
        if (k < 2 && recs[k]->status == REC_OK) {
          recs[k]->status = REC_ERROR;
          snprintf(recs[k]->reason, sizeof recs[k]->reason, "%s", err);
        }
        continue;
      }
      if (k < 2 && stopped[k]) {
        recs[k]->status = REC_SKIPPED;
        snprintf(recs[k]->reason, sizeof recs[k]->reason, "%.500s", stop_reason[k]);
        continue;
      }
      /* the RetNet reference is filled once, to the first context */
      if (k == 2 && c > 0) {
        now[2] = live[2];
        continue;
      }
      if (fill_as(e, live[k], ctxs[c] - e->S, recs[k],
                  k == 3 || (k == 1 && e->o->tf_synthetic))) {
        if (k < 2) {
          stopped[k] = 1;
          snprintf(stop_reason[k], sizeof stop_reason[k],
                   "a smaller context was skipped: %.440s", recs[k]->reason);
        }
        continue;
      }
      now[k] = live[k];
    }
    progress_detail("%zu steps", e->S);
    step_all(e, now, recs, NS, ms);
    for (int k = 0; k < 2; ++k)
      if (now[k]) finish_rec(e, recs[k], now[k], ms[k]);
    /* each model's latency relative to its reference stepped alongside */
    for (int k = 0; k < 2; ++k)
      if (now[k] && now[k + 2] && recs[k]->status == REC_OK &&
          recs[k + 2]->status == REC_OK) {
        bench_stats rs;
        bench_stats_from(ms[k + 2], (int)(e->S - WARM), &rs);
        recs[k]->ref_ratio = recs[k]->st.median_ms / rs.median_ms;
      }
    for (int k = 0; k < 2; ++k) table_row(recs[k], "decode");
    for (int k = 0; k < NS; ++k) free(ms[k]);
  }
  for (int k = 0; k < NS; ++k)
    if (live[k]) seq_close(live[k]);
}

/* Build every kernel (and CLBlast's) before anything is timed. */
static void warm_up(decode_env *e) {
  for (int k = 0; k < 2; ++k) {
    if (!e->open[k]) continue;
    bench_seq s;
    char err[512];
    if (seq_open(&s, &e->models[k], 1, err, sizeof err)) continue;
    /* a short and a long piece: CLBlast picks its direct GEMM kernel for
     * small products and the indirect one for large ones, and compiles
     * each on first use */
    double sec;
    seq_fill(&s, 64, e->fill_rows, 0, &sec, err, sizeof err);
    seq_fill(&s, 64 + 256, e->fill_rows, 0, &sec, err, sizeof err);
    for (int i = 0; i < 2; ++i) {
      int32_t t = token_at(0, seq_position(&s), e->models[k].vocab);
      seq_forward(&s, &t, 1, -1, err, sizeof err);
    }
    seq_close(&s);
  }
}

int suite_decode(const suite_options *o) {
  decode_env e;
  memset(&e, 0, sizeof e);
  e.o = o;
  e.S = WARM + o->steps;
  e.fill_rows = o->quick ? 256 : 2048;
  memset(g_fill_rate, 0, sizeof g_fill_rate);

  size_t ctxs[16];
  int nctx = 0;
  for (size_t c = o->min_context; c <= o->max_context && nctx < 16; c *= 2)
    ctxs[nctx++] = c;
  size_t batches[8];
  int nb = 0;
  for (size_t b = 1; b <= 16 && nb < 8; b *= 2) batches[nb++] = b;
  /* the target point is measured on its own unless the batch sweep has it */
  int target_in_sweep = 0;
  for (int i = 0; i < nb; ++i)
    target_in_sweep |= batches[i] == o->target_batch &&
                       o->batch_context == o->target_context;
  e.total = nctx + nb + !target_in_sweep;

  char dir[512];
  if (checkpoint_prepare(o, dir, sizeof dir)) return 1;
  retcl_context *ctxm[2] = {NULL, NULL};
  for (int k = 0; k < 2; ++k) {
    /* one context per model: each context's workspaces are its model's */
    ctxm[k] = bench_context_create();
    if (!ctxm[k]) {
      snprintf(e.open_err[k], sizeof e.open_err[k], "no context");
      continue;
    }
    progress("decode", 0, e.total, "loading %s", model_name((model_kind)k));
    e.open[k] = !model_open(&e.models[k], (model_kind)k, ctxm[k], o, dir,
                            e.open_err[k], sizeof e.open_err[k]);
  }
  progress("decode", 0, e.total, "warm-up (kernel builds)");
  warm_up(&e);

  char title[256];
  snprintf(title, sizeof title,
           "decode: d %zu, H %zu, L %zu, ffn %zu, vocab %zu, RetNet weights "
           "%s; %zu timed "
           "steps after %d warm-up, interleaved; memory = weights + state / "
           "KV cache (MiB)",
           o->d, o->heads, o->layers, o->ffn, o->vocab,
           storage_name(o->weights), o->steps, WARM);
  table_header(title, "decode");
  context_sweep(&e, ctxs, nctx);
  for (int i = 0; i < nb; ++i)
    point(&e, "batch", o->batch_context, batches[i],
          batches[i] == o->target_batch &&
              o->batch_context == o->target_context);
  if (!target_in_sweep)
    point(&e, "target", o->target_context, o->target_batch, 1);
  progress_clear();

  for (int k = 0; k < 2; ++k) {
    if (e.open[k]) model_close(&e.models[k]);
    retcl_context_destroy(ctxm[k]);
  }
  checkpoint_remove(dir);
  return 0;
}
