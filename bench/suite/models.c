/* models.c - RetNet and the Transformer baseline behind one interface for
 * the decode and prefill suites (models.h). */
#define _DEFAULT_SOURCE /* mkdtemp */
#include "models.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *model_name(model_kind k) {
  return k == MODEL_RETNET ? "retnet" : "transformer";
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static void retcl_err(char *err, size_t errlen, const char *what,
                      retcl_context *ctx, retcl_status st) {
  set_err(err, errlen, "%s: %s: %s", what, retcl_status_string(st),
          retcl_last_error(ctx));
}

/* ---- checkpoint --------------------------------------------------------- */

static void config_of(const suite_options *o, retcl_model_config *cfg) {
  retcl_model_config_default(cfg);
  cfg->embed_dim = cfg->value_embed_dim = o->d;
  cfg->heads = o->heads;
  cfg->ffn_dim = o->ffn;
  cfg->layers = o->layers;
  cfg->vocab_size = o->vocab;
  cfg->chunk_size = o->chunk;
}

int checkpoint_prepare(const suite_options *o, char *dir, size_t dirlen) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, dirlen, "%s/retcl-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    perror("retcl-bench: mkdtemp");
    return 1;
  }
  retcl_model_config cfg;
  config_of(o, &cfg);
  retcl_status st = retcl_checkpoint_write_random(&cfg, 1, RETCL_DTYPE_F32, dir);
  if (st) {
    fprintf(stderr, "retcl-bench: writing the checkpoint: %s: %s\n",
            retcl_status_string(st), retcl_last_error(NULL));
    checkpoint_remove(dir);
    return 1;
  }
  return 0;
}

void checkpoint_remove(const char *dir) {
  static const char *const files[] = {"config.json", "model.safetensors"};
  char path[1100];
  for (size_t i = 0; i < 2; ++i) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
}

/* ---- models ------------------------------------------------------------- */

int model_open(bench_model *m, model_kind kind, retcl_context *ctx,
               const suite_options *o, const char *ckpt_dir, char *err,
               size_t errlen) {
  memset(m, 0, sizeof *m);
  m->kind = kind;
  m->ctx = ctx;
  m->d = o->d, m->heads = o->heads, m->ffn = o->ffn, m->layers = o->layers;
  m->vocab = o->vocab, m->chunk = o->chunk;
  if (kind == MODEL_RETNET) {
    retcl_status st =
        retcl_model_load_as(ctx, ckpt_dir, o->weights, &m->retnet);
    if (st) retcl_err(err, errlen, "retcl_model_load_as", ctx, st);
    return st != RETCL_SUCCESS;
  }
  /* Same width, depth, FFN (GLU, gelu as RetNet's default) and vocab. */
  tf_config c = {o->d, o->heads, o->ffn, o->layers, o->vocab, RETCL_ACT_GELU,
                 1e-6f};
  return tf_model_create_random(ctx, &c, 1, &m->tf, err, errlen) != 0;
}

void model_close(bench_model *m) {
  retcl_model_destroy(m->retnet);
  if (m->tf) tf_model_destroy(m->tf);
  m->retnet = NULL;
  m->tf = NULL;
}

long long model_weight_bytes(const bench_model *m) {
  return m->kind == MODEL_RETNET ? (long long)retcl_model_weight_bytes(m->retnet)
                                 : (long long)tf_model_weight_bytes(m->tf);
}

/* Each model runs on a context of its own, so the context's workspaces are
 * that model's (the baseline's own temporaries are counted on top). */
long long model_workspace_bytes(const bench_model *m) {
  long long b = (long long)retcl_context_workspace_bytes(m->ctx);
  if (m->kind == MODEL_TRANSFORMER) b += (long long)tf_model_workspace_bytes(m->tf);
  return b;
}

/* ---- sequences ---------------------------------------------------------- */

int seq_open(bench_seq *s, bench_model *m, size_t batch, char *err,
             size_t errlen) {
  memset(s, 0, sizeof *s);
  s->m = m;
  s->batch = batch;
  s->logits = malloc(batch * m->vocab * sizeof(float));
  if (!s->logits) {
    set_err(err, errlen, "out of host memory");
    return 1;
  }
  int failed;
  if (m->kind == MODEL_RETNET) {
    retcl_status st = retcl_decode_state_create(m->retnet, batch, &s->state);
    if (st) retcl_err(err, errlen, "retcl_decode_state_create", m->ctx, st);
    failed = st != RETCL_SUCCESS;
  } else {
    failed = tf_cache_create(m->tf, batch, &s->cache, err, errlen) != 0;
  }
  /* a sequence that did not open holds nothing (callers do not close it) */
  if (failed) seq_close(s);
  return failed;
}

void seq_close(bench_seq *s) {
  retcl_decode_state_destroy(s->state);
  if (s->cache) tf_cache_destroy(s->cache);
  free(s->logits);
  memset(s, 0, sizeof *s);
}

size_t seq_position(const bench_seq *s) {
  return s->state ? retcl_decode_state_position(s->state)
                  : tf_cache_position(s->cache);
}

int seq_forward(bench_seq *s, const int32_t *tokens, size_t T, int algo,
                char *err, size_t errlen) {
  bench_model *m = s->m;
  if (m->kind == MODEL_TRANSFORMER)
    return tf_forward(m->tf, s->cache, tokens, s->batch, T, NULL, s->logits,
                      err, errlen) != 0;
  /* torchscale's parallel and chunkwise forms start from an empty state;
   * a continued sequence goes through the recurrence (its projections are
   * still one GEMM over all the call's tokens). */
  retcl_algorithm a = retcl_decode_state_position(s->state) > 0
                          ? RETCL_ALGO_RECURRENT
                      : algo >= 0 ? (retcl_algorithm)algo
                                  : RETCL_ALGO_CHUNKWISE;
  if (T == 1) a = RETCL_ALGO_RECURRENT;
  retcl_status st = retcl_model_forward_last(m->retnet, s->state, tokens,
                                             s->batch, T, a, m->chunk,
                                             s->logits);
  if (st) retcl_err(err, errlen, "retcl_model_forward_last", m->ctx, st);
  return st != RETCL_SUCCESS;
}

int seq_fill(bench_seq *s, size_t target, size_t max_rows, double max_s,
             double *seconds, char *err, size_t errlen) {
  const double t0 = bench_now();
  size_t piece = max_rows / s->batch;
  if (piece < 1) piece = 1;
  int rc = 0;
  *seconds = 0;
  for (size_t pos = seq_position(s); pos < target && !rc;
       pos = seq_position(s)) {
    const size_t n = target - pos < piece ? target - pos : piece;
    progress_detail("fill %s batch %zu: %zu/%zu tokens, %.0f s",
                    model_name(s->m->kind), s->batch, pos, target,
                    bench_now() - t0);
    int32_t *tok = tokens_block(s->batch, pos, n, s->m->vocab);
    if (!tok) {
      set_err(err, errlen, "out of host memory");
      return 1;
    }
    rc = seq_forward(s, tok, n, -1, err, errlen);
    free(tok);
    *seconds = bench_now() - t0;
    if (!rc && max_s > 0 && *seconds > max_s && seq_position(s) < target) {
      set_err(err, errlen,
              "filling stopped at %zu of %zu tokens after %.0f s "
              "(--max-fill-seconds %.0f)",
              seq_position(s), target, *seconds, max_s);
      rc = 2;
    }
  }
  return rc;
}

int seq_fill_synthetic(bench_seq *s, size_t target, double *seconds, char *err,
                       size_t errlen) {
  const double t0 = bench_now();
  if (!s->cache) {
    set_err(err, errlen, "a synthetic fill needs the baseline's KV cache");
    return 1;
  }
  const int rc = tf_cache_fill_synthetic(s->cache, target, err, errlen) != 0;
  *seconds = bench_now() - t0;
  return rc;
}

rec_memory seq_memory(const bench_seq *s) {
  rec_memory r;
  r.weights = model_weight_bytes(s->m);
  r.cache = s->state ? (long long)retcl_decode_state_bytes(s->state)
                     : (long long)tf_cache_bytes(s->cache);
  r.workspace = model_workspace_bytes(s->m);
  return r;
}

/* ---- tokens ------------------------------------------------------------- */

int32_t token_at(size_t b, size_t i, size_t vocab) {
  /* Knuth's multiplicative hash: varied ids, same for every run. */
  return (int32_t)(((uint64_t)i * 2654435761u + (uint64_t)b * 40503u) % vocab);
}

int32_t *tokens_block(size_t batch, size_t pos0, size_t T, size_t vocab) {
  int32_t *t = malloc(batch * T * sizeof *t);
  if (!t) return NULL;
  for (size_t b = 0; b < batch; ++b)
    for (size_t i = 0; i < T; ++i) t[b * T + i] = token_at(b, pos0 + i, vocab);
  return t;
}

/* ---- work models -------------------------------------------------------- */

double model_linear_params(const bench_model *m) {
  const double d = (double)m->d, f = (double)m->ffn, L = (double)m->layers;
  const double dv = d; /* the suites use dv = d */
  const double per_layer = m->kind == MODEL_RETNET
                               ? 2 * d * d + 2 * d * dv + dv * d + 3 * d * f
                               : 4 * d * d + 3 * d * f;
  return L * per_layer + (double)m->vocab * d;
}

double decode_flop(const bench_model *m, size_t batch, size_t n) {
  const double B = (double)batch, L = (double)m->layers, d = (double)m->d;
  const double hd = d / (double)m->heads;
  const double mixer = m->kind == MODEL_RETNET
                           ? 4.0 * (double)m->heads * hd * hd
                           : 4.0 * (double)n * d;
  return B * (2.0 * model_linear_params(m) + L * mixer);
}

double decode_bytes(const bench_model *m, size_t batch, size_t n) {
  const double B = (double)batch, L = (double)m->layers, d = (double)m->d;
  const double hd = d / (double)m->heads;
  const double per_seq = m->kind == MODEL_RETNET
                             ? 2.0 * L * (double)m->heads * hd * hd
                             : 2.0 * L * (double)n * d;
  /* Weights in their storage (2 bytes for 16-bit RetNet weights); the
   * state fp32. */
  const double wsize = m->kind == MODEL_RETNET &&
                               retcl_model_weight_type(m->retnet) !=
                                   RETCL_DTYPE_F32
                           ? 2.0
                           : 4.0;
  return wsize * model_linear_params(m) + 4.0 * B * per_seq;
}

double prefill_flop(const bench_model *m, size_t T_, int algo) {
  const double T = (double)T_, L = (double)m->layers, d = (double)m->d;
  const double H = (double)m->heads, hd = d / H, C = (double)m->chunk;
  /* linear layers for every token; logits for the last one only */
  double f = 2.0 * T * (model_linear_params(m) - (double)m->vocab * d) +
             2.0 * (double)m->vocab * d;
  double mixer;
  if (m->kind == MODEL_TRANSFORMER)
    mixer = 2.0 * T * (T + 1) * d; /* QK^T and PV, causal halves */
  else if (algo == RETCL_ALGO_PARALLEL)
    mixer = H * (T * (T + 1) / 2 * 2 * (2 * hd) + 2 * T * hd * hd);
  else
    mixer = H * T * (2 * C * (2 * hd) + 4 * hd * hd);
  return f + L * mixer;
}
