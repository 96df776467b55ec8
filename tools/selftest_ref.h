/* selftest_ref.h - the double-precision references of `retcl selftest`.
 *
 * Written from the formulas of the design (rotation 1.1, decay 1.2, raw
 * retention 1.3, torchscale retention 1.4, group norm and gate 1.5), not
 * from the kernels, and kept separate from the test suite's references so
 * that the installed program needs nothing but libretcl. Tensors use the
 * library's layouts (retcl_layout); states are [B, H, Dk, Dv]. */
#ifndef RETCL_SELFTEST_REF_H
#define RETCL_SELFTEST_REF_H

#include <stddef.h>

#include "retcl.h"

/* The shape every retention reference takes. */
typedef struct st_shape {
  size_t B, T, H, Dk, Dv;
  retcl_layout layout;
} st_shape;

/* Index of (b, t, h, d) in a [B,T,H,D] / [B,H,T,D] tensor. */
size_t st_index(retcl_layout layout, size_t T, size_t H, size_t D, size_t b,
                size_t t, size_t h, size_t d);

/* Rotation with the default θ_i = 10000^(-i/(D/2-1)), angle n·θ_i in long
 * double; xpos_base > 0 applies ζ_i^(±n/xpos_base) (key: negative). */
void st_ref_rotate(const float *in, double *out, size_t B, size_t T, size_t H,
                   size_t D, retcl_layout layout, size_t pos0,
                   double xpos_base, int is_key);

/* Raw retention by the recurrence; s0 may be NULL (zero), s_final NULL. */
void st_ref_retention_raw(const st_shape *s, const float *q, const float *k,
                          const float *v, const float *log_decay,
                          const float *s0, double scale, double *out,
                          double *s_final);

/* torchscale's form of algorithm algo from an empty state (chunk size C for
 * the chunkwise one); s_final (optional) is the recurrent state S_T. */
void st_ref_retention_torchscale(const st_shape *s, retcl_algorithm algo,
                                 size_t C, const float *q, const float *k,
                                 const float *v, const float *log_decay,
                                 double *out, double *s_final);

/* out = act(gate) * (norm(x) * weight + bias) per (b, t, h) row of D
 * values; weight, bias (H*D) optional; eps 0 means 1e-6. */
void st_ref_group_norm_gate(const float *x, const float *gate,
                            const float *weight, const float *bias,
                            double *out, size_t B, size_t T, size_t H,
                            size_t D, retcl_layout layout,
                            retcl_norm_kind kind, retcl_gate act, double eps);

/* y[r, o] = alpha · Σ_i x[r, i] W[o, i] (torch Linear, W [out, in]). */
void st_ref_linear(const float *x, const float *W, size_t rows, size_t out,
                   size_t in, double alpha, double *y);

#endif /* RETCL_SELFTEST_REF_H */
