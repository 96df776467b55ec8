/* ref_rotation.h - rotation Θ of docs/design.md §1.1 in double precision. */
#ifndef RETCL_REF_ROTATION_H
#define RETCL_REF_ROTATION_H

#include <stddef.h>

#include "retcl.h"

/* out = Θ(in) for each (b, t, h) row of D values at position pos0 + t:
 * pairs (2i, 2i+1) turned by n·θ_i, θ_i = theta[i] or, theta NULL,
 * 10000^(-i/(D/2-1)) (θ_0 = 1 when D = 2); the angle n·θ_i is formed in
 * long double, exact enough for positions up to 2^32. xpos_scale_base > 0
 * also scales by ζ_i^(±n/base), ζ_i = (2i + 0.4 D)/(1.4 D), negative for
 * keys (is_key). out may equal in. */
void ref_rotate_d(const double *in, double *out, size_t B, size_t T, size_t H,
                  size_t D, retcl_layout layout, size_t pos0,
                  const float *theta, double xpos_scale_base, int is_key);

/* The same on float inputs (the values a device buffer holds). */
void ref_rotate(const float *in, double *out, size_t B, size_t T, size_t H,
                size_t D, retcl_layout layout, size_t pos0, const float *theta,
                double xpos_scale_base, int is_key);

/* The gradient of ref_rotate_d with respect to its input, written
 * analytically: the map is linear, so d_in = Θᵀ d_out, each pair turned by
 * −n·θ_i and multiplied by the same xPos factor as the forward (for
 * is_key). d_in may equal d_out. */
void ref_rotate_backward_d(const double *d_out, double *d_in, size_t B,
                           size_t T, size_t H, size_t D, retcl_layout layout,
                           size_t pos0, const float *theta,
                           double xpos_scale_base, int is_key);
/* The same on float cotangents. */
void ref_rotate_backward(const float *d_out, double *d_in, size_t B, size_t T,
                         size_t H, size_t D, retcl_layout layout, size_t pos0,
                         const float *theta, double xpos_scale_base,
                         int is_key);

#endif
