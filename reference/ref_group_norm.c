/* ref_group_norm.c - group norm and gate in double (docs/design.md §1.5). */
#include "ref_group_norm.h"

#include <math.h>
#include <stdlib.h>

#include "ref_util.h"

static double activation(retcl_gate act, double g) {
  switch (act) {
    case RETCL_GATE_SWISH: return g / (1.0 + exp(-g));
    case RETCL_GATE_GELU: return g * 0.5 * (1.0 + erf(g / sqrt(2.0)));
    default: return 1.0;
  }
}

void ref_group_norm_gate_d(const double *x, const double *gate,
                           const float *weight, const float *bias, double *out,
                           size_t B, size_t T, size_t H, size_t D,
                           retcl_layout layout, retcl_norm_kind kind,
                           retcl_gate act, double eps) {
  if (eps == 0.0) eps = 1e-6;
  for (size_t b = 0; b < B; ++b)
    for (size_t t = 0; t < T; ++t)
      for (size_t h = 0; h < H; ++h) {
        const size_t row = ref_index(layout, T, H, D, b, t, h, 0);
        double mean = 0.0;
        if (kind == RETCL_NORM_LAYER) {
          for (size_t d = 0; d < D; ++d) mean += x[row + d];
          mean /= (double)D;
        }
        double var = 0.0; /* mean(x²) for RMS, centred variance for layer */
        for (size_t d = 0; d < D; ++d) {
          const double c = x[row + d] - mean;
          var += c * c;
        }
        var /= (double)D;
        const double inv = 1.0 / sqrt(var + eps);
        for (size_t d = 0; d < D; ++d) {
          double y = (x[row + d] - mean) * inv;
          if (weight) y *= weight[h * D + d];
          if (bias) y += bias[h * D + d];
          if (act != RETCL_GATE_NONE) y *= activation(act, gate[row + d]);
          out[row + d] = y;
        }
      }
}

void ref_group_norm_gate(const float *x, const float *gate,
                         const float *weight, const float *bias, double *out,
                         size_t B, size_t T, size_t H, size_t D,
                         retcl_layout layout, retcl_norm_kind kind,
                         retcl_gate act, double eps) {
  const size_t n = B * T * H * D;
  double *xd = ref_widen(x, n);
  double *gd = act != RETCL_GATE_NONE ? ref_widen(gate, n) : NULL;
  ref_group_norm_gate_d(xd, gd, weight, bias, out, B, T, H, D, layout, kind,
                        act, eps);
  free(xd);
  free(gd);
}
