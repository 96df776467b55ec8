/* ref_util.h - what every reference shares: tensor indexing in the
 * library's layouts and float/double conversions. */
#ifndef RETCL_REF_UTIL_H
#define RETCL_REF_UTIL_H

#include <stddef.h>

#include "retcl.h"

/* Index of (b, t, h, d) in a [B,T,H,D] (token-major) or [B,H,T,D]
 * (head-major) tensor. */
size_t ref_index(retcl_layout layout, size_t T, size_t H, size_t D, size_t b,
                 size_t t, size_t h, size_t d);

/* malloc that aborts on failure (a reference has no error path); n 0 gives
 * a valid one-element block. ref_alloc_d zero-fills. */
float *ref_alloc(size_t n);
double *ref_alloc_d(size_t n);

/* A new double copy of x[0..n) (NULL stays NULL); free() it. */
double *ref_widen(const float *x, size_t n);

/* x[i] = (double)(float)x[i]: a value as an fp32 device would hold it. */
void ref_round_fp32(double *x, size_t n);

#endif
