/* ref_model.h - the torchscale RetNet decoder of docs/design.md §1.6 in double
 * precision (intermediates included), and random weights for it. */
#ifndef RETCL_REF_MODEL_H
#define RETCL_REF_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "retcl.h"

typedef struct ref_layer {
  float *wq, *wk, *wv, *wg, *wo; /* Linear weights [out, in] */
  float *ret_norm;               /* [d] */
  float *fc1, *fc2, *gate;       /* [ffn,d], [d,ffn], [ffn,d] */
  float *ffn_norm;               /* [d] */
} ref_layer;

typedef struct ref_model {
  retcl_model_config cfg;
  float *embed;      /* [V, d] */
  float *emb_norm;   /* [d] or NULL (cfg.layernorm_embedding == 0) */
  float *final_norm; /* [d] */
  float *out_proj;   /* [V, d] or NULL when cfg.share_embed */
  float *angle;      /* [Dk] (θ_i twice per pair) or NULL: formula of 1.1 */
  float *decay;      /* [H] log γ or NULL: formula of 1.2 */
  ref_layer *layers;
} ref_model;

/* Random weights from the generator state *rng (retcl_random_uniform):
 * uniform ±1/sqrt(fan_in), norm weights 1 ± 0.1; with_rel_pos also fills
 * angle/decay with torchscale's default values. */
void ref_model_random(ref_model *m, const retcl_model_config *cfg,
                      int with_rel_pos, uint64_t *rng);
/* Frees every array m holds (NULL ones included) and zeroes m. */
void ref_model_free(ref_model *m);

/* Logits [B, T, V] of tokens [B, T] from an empty state, with torchscale's
 * retention form of the given algorithm (chunk: chunk size for
 * RETCL_ALGO_CHUNKWISE; 0 takes the config's, as retcl_model_forward). */
void ref_model_forward(const ref_model *m, const int32_t *tokens, size_t B,
                       size_t T, retcl_algorithm algo, size_t chunk,
                       double *logits);

#endif
