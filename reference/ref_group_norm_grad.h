/* ref_group_norm_grad.h - the gradient of the fused group norm and gate of
 * docs/design.md §1.5 (the backward of §1.7), written analytically in
 * double precision: no finite differences, no shared code with the
 * kernels. The tests check it against central differences of
 * ref_group_norm_gate_d and the device against it. */
#ifndef RETCL_REF_GROUP_NORM_GRAD_H
#define RETCL_REF_GROUP_NORM_GRAD_H

#include <stddef.h>

#include "retcl.h"

/* For out = act(gate) ⊙ (norm(x)·weight + bias) (ref_group_norm_gate_d)
 * and its cotangent d_out, all [B,T,H,D] or [B,H,T,D] per layout:
 *   dx       = ∂L/∂x                          (required)
 *   d_gate   = ∂L/∂gate                       (unless act is NONE; may be
 *                                             NULL then)
 *   d_weight = ∂L/∂weight, d_bias = ∂L/∂bias  (H*D each, summed over all
 *                                             b, t; NULL: not computed)
 * weight, bias (H*D) may be NULL (weight 1, bias 0); gate is unread for
 * RETCL_GATE_NONE. eps 0 means 1e-6, as in the library. */
void ref_group_norm_gate_backward_d(const double *x, const double *gate,
                                    const double *weight, const double *bias,
                                    const double *d_out, double *dx,
                                    double *d_gate, double *d_weight,
                                    double *d_bias, size_t B, size_t T,
                                    size_t H, size_t D, retcl_layout layout,
                                    retcl_norm_kind kind, retcl_gate act,
                                    double eps);
/* The same on float inputs (the values device buffers hold). */
void ref_group_norm_gate_backward(const float *x, const float *gate,
                                  const float *weight, const float *bias,
                                  const float *d_out, double *dx,
                                  double *d_gate, double *d_weight,
                                  double *d_bias, size_t B, size_t T, size_t H,
                                  size_t D, retcl_layout layout,
                                  retcl_norm_kind kind, retcl_gate act,
                                  double eps);

#endif
