/* ref_layer.h - torch Linear and the multi-scale retention layer of
 * docs/design.md §1.6 in double precision, composed from the op references. */
#ifndef RETCL_REF_LAYER_H
#define RETCL_REF_LAYER_H

#include <stddef.h>

#include "retcl.h"

/* y[r, o] = alpha · Σ_i x[r, i] W[o, i] for `rows` rows (torch Linear, W
 * [out, in] row-major, no bias). */
void ref_linear(const double *x, const float *W, size_t rows, size_t out,
                size_t in, double alpha, double *y);

/* The five projection weights of a layer, [out, in] as retcl_msr_weights. */
typedef struct ref_msr_weights {
  const float *wq, *wk; /* [d, d] */
  const float *wv, *wg; /* [dv, d] */
  const float *wo;      /* [d, dv] */
} ref_msr_weights;

typedef struct ref_msr_desc {
  size_t B, T, d, dv, H;      /* d = H·Dk, dv = H·Dv, token-major [B,T,·] */
  retcl_algorithm algo;
  retcl_retention_form form;
  size_t chunk;               /* chunkwise; 0 selects 64 */
  size_t pos0;                /* position of token 0 (rotation, and the
                                 tokens s0 has absorbed) */
  double eps;                 /* group norm eps; 0 selects 1e-6 */
  const float *theta;         /* [Dk/2] angles, NULL: docs/design.md §1.1's formula */
  /* Round each intermediate (projections, rotated Q and K, retention
   * output, gated values) to fp32, as a device holds them: then the
   * layer's bound against a device stays the ops' own. 0 keeps double
   * throughout (the model reference). */
  int round_fp32;
} ref_msr_desc;

/* y [B, T, d] = MSR(x): Q = x Wqᵀ, K = x Wkᵀ · Dk^-1/2, V = x Wvᵀ,
 * G = x Wgᵀ; Q, K rotated from pos0; retention (raw with scale 1, or
 * torchscale by desc->algo) per head with log_decay [H] from state s0
 * ([B, H, Dk, Dv], NULL = zero); RMS group norm per head (no affine) with
 * the swish gate of G; y = · Woᵀ. s_final (optional) is the state after
 * the tokens (ref_retention.h). */
void ref_msr_forward(const ref_msr_desc *desc, const ref_msr_weights *w,
                     const float *log_decay, const double *x, const float *s0,
                     double *y, double *s_final);

/* The layer's intermediates its backward needs (ref_model_grad.h), each
 * [B·T, ·] token-major and allocated by the caller: q, k as retention saw
 * them (projected, K scaled, both rotated) [.., d]; v, g, the retention
 * output o before the group norm, and the gated values z [.., dv]. */
typedef struct ref_msr_saved {
  double *q, *k, *v, *g, *o, *z;
} ref_msr_saved;

/* ref_msr_forward, also copying the intermediates into *keep (NULL: none). */
void ref_msr_forward_saved(const ref_msr_desc *desc, const ref_msr_weights *w,
                           const float *log_decay, const double *x,
                           const float *s0, double *y, double *s_final,
                           const ref_msr_saved *keep);

#endif
