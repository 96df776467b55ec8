/* transformer.h - the Transformer baseline RetCL is measured against: a
 * pre-norm decoder with multi-head softmax attention, rotary positions and
 * a KV cache that grows with the context, the same RMSNorm and GLU blocks
 * as the RetNet model, RetCL's projections (CLBlast GEMMs, streaming
 * kernels when decoding), on a RetCL context's queue.
 * It exists only to be compared with; tests/baseline/ checks it against a
 * double-precision reference like everything else. */
#ifndef RETCL_BENCH_TRANSFORMER_H
#define RETCL_BENCH_TRANSFORMER_H

#include <stddef.h>
#include <stdint.h>

#include "retcl.h"

typedef struct tf_config {
  size_t d;      /* model width = heads * head_dim (head_dim even) */
  size_t heads;
  size_t ffn;    /* GLU hidden width */
  size_t layers;
  size_t vocab;
  retcl_activation activation; /* of the GLU, as RetNet's FFN */
  float eps;     /* RMSNorm eps (1e-6) */
} tf_config;

/* Host weights, torch Linear layout [out, in], row-major. */
typedef struct tf_layer_host {
  float *attn_norm;      /* [d] */
  float *wq, *wk, *wv, *wo; /* [d, d] */
  float *ffn_norm;       /* [d] */
  float *fc1, *gate;     /* [ffn, d] */
  float *fc2;            /* [d, ffn] */
} tf_layer_host;

typedef struct tf_host_weights {
  float *embed;          /* [vocab, d] (not scaled) */
  tf_layer_host *layers; /* [layers] */
  float *final_norm;     /* [d] */
  float *out_proj;       /* [vocab, d] */
} tf_host_weights;

/* The model's math (what tests/baseline checks), per token position n of a
 * sequence (0-based, continuing across calls through the cache):
 *   x = embed[token]
 *   per layer: h = RMSNorm(x; attn_norm)
 *              q = h Wqᵀ, k = h Wkᵀ, v = h Wvᵀ   (heads of head_dim = d/H)
 *              rotate q and k at position n: pairs (2i, 2i+1) by angle
 *              n·θ_i, θ_i = 10000^(-2i/head_dim) (standard RoPE)
 *              o = softmax(q·Kᵀ / sqrt(head_dim)) V over positions 0..n
 *                  (causal; K, V of this and all earlier tokens)
 *              x = x + o Woᵀ
 *              h = RMSNorm(x; ffn_norm); x = x + fc2(act(fc1 h) ⊙ gate h)
 *   logits = RMSNorm(x; final_norm) out_projᵀ
 * RMSNorm(x; w) = x / sqrt(mean(x²) + eps) ⊙ w. */

/* How it runs (the .c and .cl files beside this header), so that a
 * comparison with RetCL can be judged:
 *  - Projections: retcl_linear / retcl_linear_many, the very code RetCL's
 *    layers use (CLBlast for more than 32 rows; for up to 32, decoding,
 *    RetCL's weight-streaming kernels). Wq, Wk, Wv are stacked in one
 *    buffer and fc1, gate in another, and run as one call each, as RetCL's
 *    model stacks Q, K, V, G and fc1, gate.
 *  - RMSNorm is retcl_group_norm_gate (one group, no gate, weight) and the
 *    rotation retcl_rotate with θ_i above, both on the context's queue.
 *  - KV cache: per layer K and V, head-major [batch, H, capacity, head_dim]
 *    (one sequence's head is one contiguous stretch); capacity starts at 16
 *    and doubles (new buffers, a rectangular copy of the used part, the old
 *    ones released).
 *  - Attention never stores the T×T scores: prefill runs an online softmax
 *    over key blocks per tile of queries; a decode step splits the context
 *    into chunks (flash-decoding) merged by a second kernel, reading each
 *    cached key and value once.
 *  - Kernels are specialised at tf_model_create to head_dim and to the
 *    device type (CPUs: contiguous ranges per work-item; GPUs: work-groups
 *    sharing local-memory tiles). RETCL_KERNEL_PATHS=cpu|gpu forces one,
 *    as it does for RetCL's kernels.
 * Not thread-safe: one model and its caches per thread. */

typedef struct tf_model tf_model;
typedef struct tf_cache tf_cache;

/* 0 on success; otherwise non-zero with a message in err. */
int tf_model_create(retcl_context *ctx, const tf_config *cfg,
                    const tf_host_weights *w, tf_model **out, char *err,
                    size_t errlen);
/* Random weights (uniform ±1/sqrt(fan_in), norms 1), deterministic in seed;
 * the host copies are freed after upload. */
int tf_model_create_random(retcl_context *ctx, const tf_config *cfg,
                           uint64_t seed, tf_model **out, char *err,
                           size_t errlen);
void tf_model_destroy(tf_model *m);
/* Device bytes of the weights, as allocated. */
size_t tf_model_weight_bytes(const tf_model *m);
/* Device bytes of the model's temporaries (activations, attention scores)
 * as allocated so far (they grow to the largest call). */
size_t tf_model_workspace_bytes(const tf_model *m);

/* KV cache of `batch` sequences, empty; its buffers grow (by doubling) as
 * tokens are appended, so its memory follows the context. */
int tf_cache_create(tf_model *m, size_t batch, tf_cache **out, char *err,
                    size_t errlen);
void tf_cache_destroy(tf_cache *c);
size_t tf_cache_position(const tf_cache *c);
/* Device bytes allocated for K and V of all layers right now. */
size_t tf_cache_bytes(const tf_cache *c);

/* For decode-latency benchmarks: grow the cache to `position` entries per
 * sequence filled with a constant (no prefill), so a step at context N can
 * be timed without a prefill that costs minutes on a CPU. A decode step's
 * work and memory traffic do not depend on the cached values, so its time
 * is that of a step after a real prefill; its logits are meaningless.
 * Only on an empty cache. 0 on success. */
int tf_cache_fill_synthetic(tf_cache *c, size_t position, char *err,
                            size_t errlen);

/* Run tokens [batch, T] (host, row-major) through the model, appending
 * them to cache (which must hold `batch` sequences; NULL = a temporary,
 * empty one). Writes logits of every position [batch, T, vocab] into
 * logits if not NULL, and only the last position's [batch, vocab] into
 * last_logits if not NULL. Blocks until done. T > 1 is a prefill (causal
 * attention over the whole block), T == 1 a decode step (attention reads
 * each cached key and value once). */
int tf_forward(tf_model *m, tf_cache *cache, const int32_t *tokens,
               size_t batch, size_t T, float *logits, float *last_logits,
               char *err, size_t errlen);

#endif
