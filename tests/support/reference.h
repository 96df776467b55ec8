/* reference.h - double-precision CPU references, written independently of
 * the kernels from the formulas in DESIGN.md. Tensors use the same layouts
 * as the library (see retcl_layout); states are [B,H,Dk,Dv]. */
#ifndef RETCL_REFERENCE_H
#define RETCL_REFERENCE_H

#include <stddef.h>

#include "retcl.h"

/* Index of (b,t,h,d) in a [B,T,H,D] / [B,H,T,D] tensor. */
size_t ref_index(retcl_layout layout, size_t T, size_t H, size_t D, size_t b,
                 size_t t, size_t h, size_t d);

/* DESIGN 1.1: θ_i = 10000^(-i/(D/2-1)) (theta == NULL) or theta[i]; angle
 * n θ_i evaluated in long double. xpos_scale_base > 0 applies ζ^(±n/base). */
void ref_rotate(const float *in, double *out, size_t B, size_t T, size_t H,
                size_t D, retcl_layout layout, size_t pos0, const float *theta,
                double xpos_scale_base, int is_key);

/* DESIGN 1.3 by the recurrence in double. s0 may be NULL (zero); s_final may
 * be NULL. */
void ref_retention_raw(const float *q, const float *k, const float *v,
                       const float *log_decay, const float *s0, double *out,
                       double *s_final, size_t B, size_t T, size_t H,
                       size_t Dk, size_t Dv, retcl_layout layout,
                       double scale);

/* DESIGN 1.4, each algorithm as torchscale computes it, in double.
 * parallel: no state in; recurrent: s0 at `position` tokens (NULL, 0 =
 * fresh); chunkwise: chunk size C, fresh start. s_final (optional) is the
 * torchscale recurrent state S_n. */
void ref_retention_torchscale(retcl_algorithm algo, const float *q,
                              const float *k, const float *v,
                              const float *log_decay, const float *s0,
                              size_t position, double *out, double *s_final,
                              size_t B, size_t T, size_t H, size_t Dk,
                              size_t Dv, retcl_layout layout, size_t C);

#endif
