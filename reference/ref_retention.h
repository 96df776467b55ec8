/* ref_retention.h - retention in double precision: the raw form of
 * docs/design.md §1.3 by its recurrence, and torchscale's form of docs/design.md §1.4 with
 * each of its three algorithms as the design states it. One implementation
 * of each; the float entry points widen their inputs and call the double
 * ones (a caller whose Q and K are exact in double, like the model
 * reference, keeps them so: rounding them to float first loses digits
 * wherever q·k cancels). Layout per `layout`; states [B, H, Dk, Dv]. */
#ifndef RETCL_REF_RETENTION_H
#define RETCL_REF_RETENTION_H

#include <stddef.h>

#include "retcl.h"

/* Raw retention: S_t = γ S_{t-1} + k_tᵀ v_t, o_t = scale · q_t S_t, with
 * γ = exp(log_decay[h]). s0 may be NULL (zero state); s_final may be NULL.
 * The result does not depend on the algorithm (they are exact rewrites). */
void ref_retention_raw_d(const double *q, const double *k, const double *v,
                         const float *log_decay, const float *s0, double *out,
                         double *s_final, size_t B, size_t T, size_t H,
                         size_t Dk, size_t Dv, retcl_layout layout,
                         double scale);
void ref_retention_raw(const float *q, const float *k, const float *v,
                       const float *log_decay, const float *s0, double *out,
                       double *s_final, size_t B, size_t T, size_t H,
                       size_t Dk, size_t Dv, retcl_layout layout,
                       double scale);

/* torchscale's retention by algorithm algo:
 * - parallel: fresh start (s0 and position unused by the outputs);
 * - recurrent: from state s0 (NULL = zero) that has absorbed `position`
 *   tokens (NULL, 0 = fresh);
 * - chunkwise: chunks of C tokens (0 selects 64, as retcl_retention), fresh
 *   start; a short last chunk keeps the constants of C.
 * s_final (optional) is the recurrent state S after the T tokens, whatever
 * the algorithm (a prefill hands that state to decoding); out may be NULL
 * when only s_final is wanted. */
void ref_retention_torchscale_d(retcl_algorithm algo, const double *q,
                                const double *k, const double *v,
                                const float *log_decay, const float *s0,
                                size_t position, double *out,
                                double *s_final, size_t B, size_t T, size_t H,
                                size_t Dk, size_t Dv, retcl_layout layout,
                                size_t C);
void ref_retention_torchscale(retcl_algorithm algo, const float *q,
                              const float *k, const float *v,
                              const float *log_decay, const float *s0,
                              size_t position, double *out, double *s_final,
                              size_t B, size_t T, size_t H, size_t Dk,
                              size_t Dv, retcl_layout layout, size_t C);

#endif
