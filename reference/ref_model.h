/* ref_model.h - the torchscale RetNet decoder of docs/design.md §1.6 in double
 * precision (intermediates included), and random weights for it. */
#ifndef RETCL_REF_MODEL_H
#define RETCL_REF_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ref_layer.h"
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

/* The rotation's per-pair angles [Dk/2] (NULL: the formula of §1.1) and
 * the heads' log decays [H] the model's forward uses; free() them. */
float *ref_model_theta(const ref_model *m);
float *ref_model_log_decay(const ref_model *m);

/* What the model's backward (ref_model_grad.h) needs from its forward,
 * every array [B·T, ·] token-major. */
typedef struct ref_model_tape_layer {
  double *x_in;      /* [.., d] the block's input */
  double *n0;        /* its RMSNorm: the projections' input */
  ref_msr_saved msr; /* the retention layer's intermediates */
  double *x1;        /* after the retention residual */
  double *n1;        /* its RMSNorm: the FFN's input */
  double *a, *gate;  /* [.., F] fc1 and gate projections */
  double *h;         /* act(a) ⊙ gate: fc2's input */
} ref_model_tape_layer;

typedef struct ref_model_tape {
  size_t rows;       /* B·T */
  size_t chunk;      /* the chunk size the forward ran (its default applied) */
  double *x_emb;     /* [.., d] scaled embedding rows (before any norm) */
  double *x_last;    /* the last block's output */
  double *n_last;    /* its final norm: the output projection's input */
  ref_model_tape_layer *layers;
} ref_model_tape;

/* ref_model_forward, also filling *tape (allocated here; free it with
 * ref_model_tape_free). */
void ref_model_forward_tape(const ref_model *m, const int32_t *tokens,
                            size_t B, size_t T, retcl_algorithm algo,
                            size_t chunk, double *logits, ref_model_tape *tape);
void ref_model_tape_free(ref_model_tape *tape, size_t layers);

#endif
