/* ref_retention_grad.h - the backward of retention in double precision,
 * derived by hand from the forwards of ref_retention.h (docs/design.md
 * §1.3, §1.4, §1.7), not from the kernels:
 *   raw form: through the recurrence (any algorithm computes the same
 *   function), with the gradient of the final state and of the initial one;
 *   torchscale form: the backward of each algorithm's own forward with its
 *   data-dependent normalisers (a_t of the parallel form; a_i, r and so
 *   m_i of the chunkwise form) held constant, as torchscale detaches them.
 * Plus what the finite-difference checks need: torchscale's normalisers of
 * an input, and the torchscale forward with given normalisers.
 * Layout per `layout`; states [B, H, Dk, Dv]. */
#ifndef RETCL_REF_RETENTION_GRAD_H
#define RETCL_REF_RETENTION_GRAD_H

#include <stddef.h>

#include "retcl.h"

/* dq, dk, dv (and d_state_in) of
 *   L = Σ d_out ⊙ out + Σ d_state_out ⊙ state_out
 * for the forward ref_retention_raw_d (form RETCL_FORM_RAW, any algo) or
 * ref_retention_torchscale_d(algo, ...) with the same arguments: s0 may be
 * NULL (zero / fresh), d_state_out may be NULL (no gradient on the final
 * state), d_state_in may be NULL (not wanted). scale is the raw form's
 * (0 means 1); position and C the torchscale form's (C = 0 selects 64). */
void ref_retention_grad_d(retcl_retention_form form, retcl_algorithm algo,
                          const double *q, const double *k, const double *v,
                          const float *log_decay, const float *s0,
                          size_t position, const double *d_out,
                          const double *d_state_out, double *dq, double *dk,
                          double *dv, double *d_state_in, size_t B, size_t T,
                          size_t H, size_t Dk, size_t Dv, retcl_layout layout,
                          double scale, size_t C);

/* torchscale's data-dependent normaliser of every output row, norm
 * [B, H, T]: the parallel form's a_t = clamp(Σ_s |A_ts|, 1, 5e4), the
 * chunkwise form's m_i = max(a_i, r); 1 for the recurrent form (which has
 * none). C as above. */
void ref_retention_torchscale_norms_d(retcl_algorithm algo, const double *q,
                                      const double *k, const double *v,
                                      const float *log_decay, double *norm,
                                      size_t B, size_t T, size_t H, size_t Dk,
                                      size_t Dv, retcl_layout layout,
                                      size_t C);

/* torchscale's parallel or chunkwise forward (fresh start) with the
 * normalisers given (norm as above) instead of computed from the input:
 * with norm from ref_retention_torchscale_norms_d of the same input it is
 * ref_retention_torchscale_d's output; perturbing the input with norm held
 * fixed is what torchscale's autograd differentiates. */
void ref_retention_torchscale_frozen_d(retcl_algorithm algo, const double *q,
                                       const double *k, const double *v,
                                       const float *log_decay,
                                       const double *norm, double *out,
                                       size_t B, size_t T, size_t H, size_t Dk,
                                       size_t Dv, retcl_layout layout,
                                       size_t C);

#endif
