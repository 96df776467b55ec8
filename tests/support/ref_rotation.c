/* ref_rotation.c - rotation Θ in long double (DESIGN 1.1). */
#include <math.h>

#include "reference.h"

size_t ref_index(retcl_layout layout, size_t T, size_t H, size_t D, size_t b,
                 size_t t, size_t h, size_t d) {
  if (layout == RETCL_LAYOUT_HEAD_MAJOR) return ((b * H + h) * T + t) * D + d;
  return ((b * T + t) * H + h) * D + d;
}

void ref_rotate(const float *in, double *out, size_t B, size_t T, size_t H,
                size_t D, retcl_layout layout, size_t pos0, const float *theta,
                double xpos_scale_base, int is_key) {
  const size_t pairs = D / 2;
  for (size_t b = 0; b < B; ++b)
    for (size_t t = 0; t < T; ++t)
      for (size_t h = 0; h < H; ++h)
        for (size_t i = 0; i < pairs; ++i) {
          long double th =
              theta ? (long double)theta[i]
              : pairs == 1
                  ? 1.0L
                  : powl(10000.0L, -(long double)i / (long double)(pairs - 1));
          long double n = (long double)(pos0 + t);
          long double angle = n * th;
          double c = (double)cosl(angle), s = (double)sinl(angle);
          double scale = 1.0;
          if (xpos_scale_base > 0) {
            double zeta = (2.0 * i + 0.4 * D) / (1.4 * D);
            scale = pow(zeta, (is_key ? -1.0 : 1.0) * (double)n /
                                  xpos_scale_base);
          }
          size_t at = ref_index(layout, T, H, D, b, t, h, 2 * i);
          double x0 = in[at], x1 = in[at + 1];
          out[at] = (x0 * c - x1 * s) * scale;
          out[at + 1] = (x1 * c + x0 * s) * scale;
        }
}
