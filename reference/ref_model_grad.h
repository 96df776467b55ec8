/* ref_model_grad.h - the analytic gradient of the RetNet decoder's training
 * loss (docs/design.md §1.7) in double precision: the chain rule through
 * ref_model.h's forward, composed from the op gradients of this library
 * (retention, group norm, rotation, GLU, embedding, cross-entropy), with
 * torchscale's retention normalisers held constant as its autograd does.
 * No finite differences and nothing shared with lib/ or cl/; the model
 * test checks it against central differences of ref_model_forward and the
 * device's gradient against it. */
#ifndef RETCL_REF_MODEL_GRAD_H
#define RETCL_REF_MODEL_GRAD_H

#include <stddef.h>
#include <stdint.h>

#include "ref_model.h"

/* One array per weight tensor, shaped as ref_model's (NULL where the model
 * has none: emb_norm without layernorm_embedding, out_proj when shared). */
typedef struct ref_layer_grad {
  double *wq, *wk, *wv, *wg, *wo, *ret_norm, *fc1, *fc2, *gate, *ffn_norm;
} ref_layer_grad;

typedef struct ref_model_grad {
  double *embed, *emb_norm, *final_norm, *out_proj;
  ref_layer_grad *layers;
  size_t n_layers;
} ref_model_grad;

/* The mean next-token cross-entropy of tokens [B, T] (row t of a sequence
 * predicts token t + 1; the last row predicts nothing), returned, and its
 * gradient with respect to every weight into *g (allocated here; free with
 * ref_model_grad_free). algo and chunk as ref_model_forward. T >= 2. */
double ref_model_loss_grad_d(const ref_model *m, const int32_t *tokens,
                             size_t B, size_t T, retcl_algorithm algo,
                             size_t chunk, ref_model_grad *g);
void ref_model_grad_free(ref_model_grad *g);

#endif
