/* ref_rotation.c - rotation Θ in long double angles (docs/design.md §1.1)
 * and its transpose, the rotation's gradient (§1.7). */
#include "ref_rotation.h"

#include <math.h>
#include <stdlib.h>

#include "ref_util.h"

/* Θ (transpose 0) or Θᵀ (transpose 1). Per pair the forward is the 2×2
 * map f·[[c, −s], [s, c]], f the xPos factor; its transpose is
 * f·[[c, s], [−s, c]]. */
static void rotate_map(const double *in, double *out, size_t B, size_t T,
                       size_t H, size_t D, retcl_layout layout, size_t pos0,
                       const float *theta, double xpos_scale_base, int is_key,
                       int transpose) {
  const size_t pairs = D / 2;
  for (size_t i = 0; i < pairs; ++i) {
    const long double th =
        theta ? (long double)theta[i]
        : pairs == 1
            ? 1.0L
            : powl(10000.0L, -(long double)i / (long double)(pairs - 1));
    const double zeta = (2.0 * (double)i + 0.4 * (double)D) / (1.4 * (double)D);
    for (size_t t = 0; t < T; ++t) {
      const long double n = (long double)(pos0 + t);
      const double c = (double)cosl(n * th);
      const double s = (transpose ? -1.0 : 1.0) * (double)sinl(n * th);
      const double scale =
          xpos_scale_base > 0
              ? pow(zeta, (is_key ? -1.0 : 1.0) * (double)n / xpos_scale_base)
              : 1.0;
      for (size_t b = 0; b < B; ++b)
        for (size_t h = 0; h < H; ++h) {
          const size_t at = ref_index(layout, T, H, D, b, t, h, 2 * i);
          /* Both read before either is written: out may be in. */
          const double x0 = in[at], x1 = in[at + 1];
          out[at] = (x0 * c - x1 * s) * scale;
          out[at + 1] = (x1 * c + x0 * s) * scale;
        }
    }
  }
}

void ref_rotate_d(const double *in, double *out, size_t B, size_t T, size_t H,
                  size_t D, retcl_layout layout, size_t pos0,
                  const float *theta, double xpos_scale_base, int is_key) {
  rotate_map(in, out, B, T, H, D, layout, pos0, theta, xpos_scale_base, is_key,
             0);
}

void ref_rotate_backward_d(const double *d_out, double *d_in, size_t B,
                           size_t T, size_t H, size_t D, retcl_layout layout,
                           size_t pos0, const float *theta,
                           double xpos_scale_base, int is_key) {
  rotate_map(d_out, d_in, B, T, H, D, layout, pos0, theta, xpos_scale_base,
             is_key, 1);
}

void ref_rotate_backward(const float *d_out, double *d_in, size_t B, size_t T,
                         size_t H, size_t D, retcl_layout layout, size_t pos0,
                         const float *theta, double xpos_scale_base,
                         int is_key) {
  double *g = ref_widen(d_out, B * T * H * D);
  ref_rotate_backward_d(g, d_in, B, T, H, D, layout, pos0, theta,
                        xpos_scale_base, is_key);
  free(g);
}

void ref_rotate(const float *in, double *out, size_t B, size_t T, size_t H,
                size_t D, retcl_layout layout, size_t pos0, const float *theta,
                double xpos_scale_base, int is_key) {
  double *x = ref_widen(in, B * T * H * D);
  ref_rotate_d(x, out, B, T, H, D, layout, pos0, theta, xpos_scale_base,
               is_key);
  free(x);
}
