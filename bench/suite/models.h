/* models.h - the two models the decode and prefill suites compare, behind
 * one small interface: a RetNet loaded from a random checkpoint and the
 * Transformer baseline of the same width, depth, FFN and vocabulary.
 *
 * A "seq" is what a model carries between calls for `batch` sequences:
 * RetNet's decode state (constant size) or the baseline's KV cache (grows
 * with the context). Both are filled the same way: prompt tokens in pieces
 * of a bounded number of rows, so neither model's activations blow up. */
#ifndef RETCL_BENCH_SUITE_MODELS_H
#define RETCL_BENCH_SUITE_MODELS_H

#include <stdint.h>

#include "suite.h"
#include "transformer.h"

typedef enum model_kind { MODEL_RETNET = 0, MODEL_TRANSFORMER = 1 } model_kind;

typedef struct bench_model {
  model_kind kind;
  retcl_context *ctx;
  retcl_model *retnet;
  tf_model *tf;
  size_t d, heads, ffn, layers, vocab, chunk;
} bench_model;

typedef struct bench_seq {
  bench_model *m;
  size_t batch;
  retcl_decode_state *state;
  tf_cache *cache;
  float *logits; /* [batch, vocab] of the last call */
} bench_seq;

const char *model_name(model_kind k);

/* Write the random RetNet checkpoint (d, dv = d, H, ffn, L, vocab, chunk
 * from o) into a fresh temporary folder; returns 0 and the folder path. */
int checkpoint_prepare(const suite_options *o, char *dir, size_t dirlen);
void checkpoint_remove(const char *dir);

/* Load/create a model on ctx. Returns 0, or non-zero with err filled. */
int model_open(bench_model *m, model_kind kind, retcl_context *ctx,
               const suite_options *o, const char *ckpt_dir, char *err,
               size_t errlen);
void model_close(bench_model *m);

int seq_open(bench_seq *s, bench_model *m, size_t batch, char *err,
             size_t errlen);
void seq_close(bench_seq *s);
size_t seq_position(const bench_seq *s);

/* Run tokens [batch, T] through the model, continuing s (blocks; only the
 * last logits are read back). RetNet: chunkwise from an empty state (or
 * `algo` if given >= 0), recurrent when continuing, as the API requires. */
int seq_forward(bench_seq *s, const int32_t *tokens, size_t T, int algo,
                char *err, size_t errlen);

/* Extend s to `target` tokens per sequence in pieces of at most
 * max_rows / batch tokens. Gives up (returns 2, err says so) once filling
 * has taken more than max_s seconds; *seconds gets the time spent. */
int seq_fill(bench_seq *s, size_t target, size_t max_rows, double max_s,
             double *seconds, char *err, size_t errlen);

/* Baseline only, on an empty cache: grow it to `target` tokens of constant
 * keys and values without a prefill (tf_cache_fill_synthetic). A decode
 * step's work and traffic do not depend on the cached values. */
int seq_fill_synthetic(bench_seq *s, size_t target, double *seconds, char *err,
                       size_t errlen);

/* Memory held right now: weights, decode state or KV cache, workspace. */
rec_memory seq_memory(const bench_seq *s);
long long model_weight_bytes(const bench_model *m);
long long model_workspace_bytes(const bench_model *m);

/* Deterministic token ids for position i of sequence b. */
int32_t token_at(size_t b, size_t i, size_t vocab);
/* tokens [batch, T] for positions pos0 .. pos0+T-1 (caller frees). */
int32_t *tokens_block(size_t batch, size_t pos0, size_t T, size_t vocab);

/* Work models (multiply + add = 2 flops), per sequence:
 *  linear weights touched per token: L (2 d^2 + 2 d dv + dv d + 3 d ffn)
 *  for RetNet (q, k, v, g, out; fc1, gate, fc2) and L (4 d^2 + 3 d ffn)
 *  for the baseline, plus vocab d for the logits of the last token. */
double model_linear_params(const bench_model *m);
/* One decode step of `batch` sequences at context n: linear layers,
 * retention (recurrent: 4 H Dk Dv per layer) or attention (4 n d per
 * layer). */
double decode_flop(const bench_model *m, size_t batch, size_t n);
/* Bytes one decode step must move at least: every linear weight once,
 * plus the state read and written (RetNet) or K and V of n tokens read
 * (baseline). */
double decode_bytes(const bench_model *m, size_t batch, size_t n);
/* Prefill of T tokens (batch 1): linear layers for every token plus
 * retention by algo (chunkwise/parallel formulas of bench/README.md) or
 * causal attention (2 T(T+1)/2 * 2 d per layer). */
double prefill_flop(const bench_model *m, size_t T, int algo);

#endif /* RETCL_BENCH_SUITE_MODELS_H */
