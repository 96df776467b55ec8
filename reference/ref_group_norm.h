/* ref_group_norm.h - the fused group norm and gate of docs/design.md §1.5 in double
 * precision: textbook two-pass mean and variance, the activations exactly
 * as defined (gelu with erf). */
#ifndef RETCL_REF_GROUP_NORM_H
#define RETCL_REF_GROUP_NORM_H

#include <stddef.h>

#include "retcl.h"

/* out = act(gate) * (norm(x) * weight + bias) for every (b,t,h) row of D
 * values of x, gate and out ([B,T,H,D] or [B,H,T,D] per layout). norm is
 * RMS (x / sqrt(mean(x²) + eps)) or layer (centred). weight and bias (H*D,
 * channel h*D + d) may be NULL; gate is unread (may be NULL) for
 * RETCL_GATE_NONE. eps 0 means 1e-6, as in the library. */
void ref_group_norm_gate_d(const double *x, const double *gate,
                           const float *weight, const float *bias, double *out,
                           size_t B, size_t T, size_t H, size_t D,
                           retcl_layout layout, retcl_norm_kind kind,
                           retcl_gate act, double eps);
/* The same on float inputs. */
void ref_group_norm_gate(const float *x, const float *gate,
                         const float *weight, const float *bias, double *out,
                         size_t B, size_t T, size_t H, size_t D,
                         retcl_layout layout, retcl_norm_kind kind,
                         retcl_gate act, double eps);

#endif
