/* ref_group_norm_grad.c - analytic gradient of the group norm and gate in
 * double (docs/design.md §1.5, §1.7).
 *
 * One row of D values, c = x − μ (μ = mean(x) for the layer form, 0 for
 * RMS), v = mean(c²), r = (v + eps)^(−1/2), ŷ = c·r, y = ŷ·w + b,
 * out = act(g)·y. With the cotangent o = ∂L/∂out:
 *   ∂L/∂g = o·y·act'(g),   ∂L/∂y = dy = o·act(g),   ∂L/∂w += dy·ŷ,
 *   ∂L/∂b += dy,           ∂L/∂ŷ = e = dy·w.
 * ŷ_i depends on every c_j: ∂ŷ_i/∂c_j = r·δ_ij + c_i·∂r/∂c_j with
 * ∂r/∂c_j = −½ (v + eps)^(−3/2)·2c_j/D = −r³ c_j / D, so
 *   ∂L/∂c_j = r·e_j − (r³ c_j / D) Σ_i e_i c_i = r·(e_j − ŷ_j·mean(e·ŷ)).
 * RMS: x = c, done. Layer: c_j = x_j − mean(x), so ∂L/∂x = ∂L/∂c minus its
 * own mean; mean(ŷ) = 0 makes that mean r·mean(e):
 *   dx_j = r·(e_j − mean(e) − ŷ_j·mean(e·ŷ)).
 * Activations: swish act = g·σ(g), act' = σ(g)·(1 + g·(1 − σ(g)));
 * gelu act = g·Φ(g), act' = Φ(g) + g·φ(g), φ the standard normal
 * density. */
#include "ref_group_norm_grad.h"

#include <math.h>
#include <stdlib.h>

#include "ref_util.h"

/* act(g), and act'(g) in *da. */
static double act_and_grad(retcl_gate act, double g, double *da) {
  if (act == RETCL_GATE_SWISH) {
    const double s = 1.0 / (1.0 + exp(-g));
    *da = s * (1.0 + g * (1.0 - s));
    return g * s;
  }
  if (act == RETCL_GATE_GELU) {
    const double cdf = 0.5 * (1.0 + erf(g / sqrt(2.0)));
    /* φ(g) = e^(−g²/2) / √(2π) */
    const double pdf = exp(-0.5 * g * g) * 0.398942280401432677939946;
    *da = cdf + g * pdf;
    return g * cdf;
  }
  *da = 0.0;
  return 1.0;
}

void ref_group_norm_gate_backward_d(const double *x, const double *gate,
                                    const double *weight, const double *bias,
                                    const double *d_out, double *dx,
                                    double *d_gate, double *d_weight,
                                    double *d_bias, size_t B, size_t T,
                                    size_t H, size_t D, retcl_layout layout,
                                    retcl_norm_kind kind, retcl_gate act,
                                    double eps) {
  if (eps == 0.0) eps = 1e-6;
  if (d_weight)
    for (size_t i = 0; i < H * D; ++i) d_weight[i] = 0.0;
  if (d_bias)
    for (size_t i = 0; i < H * D; ++i) d_bias[i] = 0.0;
  double *yhat = ref_alloc_d(D), *e = ref_alloc_d(D);
  for (size_t b = 0; b < B; ++b)
    for (size_t t = 0; t < T; ++t)
      for (size_t h = 0; h < H; ++h) {
        const size_t row = ref_index(layout, T, H, D, b, t, h, 0);
        const size_t ch = h * D;
        double mean = 0.0;
        if (kind == RETCL_NORM_LAYER) {
          for (size_t d = 0; d < D; ++d) mean += x[row + d];
          mean /= (double)D;
        }
        double v = 0.0;
        for (size_t d = 0; d < D; ++d)
          v += (x[row + d] - mean) * (x[row + d] - mean);
        v /= (double)D;
        const double r = 1.0 / sqrt(v + eps);
        double mean_e = 0.0, mean_ey = 0.0;
        for (size_t d = 0; d < D; ++d) {
          yhat[d] = (x[row + d] - mean) * r;
          const double w = weight ? weight[ch + d] : 1.0;
          const double y = yhat[d] * w + (bias ? bias[ch + d] : 0.0);
          double dy = d_out[row + d];
          if (act != RETCL_GATE_NONE) {
            double da;
            const double a = act_and_grad(act, gate[row + d], &da);
            d_gate[row + d] = dy * y * da;
            dy *= a;
          }
          if (d_weight) d_weight[ch + d] += dy * yhat[d];
          if (d_bias) d_bias[ch + d] += dy;
          e[d] = dy * w;
          mean_e += e[d];
          mean_ey += e[d] * yhat[d];
        }
        mean_e /= (double)D;
        mean_ey /= (double)D;
        if (kind != RETCL_NORM_LAYER) mean_e = 0.0;
        for (size_t d = 0; d < D; ++d)
          dx[row + d] = r * (e[d] - mean_e - yhat[d] * mean_ey);
      }
  free(yhat);
  free(e);
}

void ref_group_norm_gate_backward(const float *x, const float *gate,
                                  const float *weight, const float *bias,
                                  const float *d_out, double *dx,
                                  double *d_gate, double *d_weight,
                                  double *d_bias, size_t B, size_t T, size_t H,
                                  size_t D, retcl_layout layout,
                                  retcl_norm_kind kind, retcl_gate act,
                                  double eps) {
  const size_t n = B * T * H * D;
  double *xd = ref_widen(x, n), *od = ref_widen(d_out, n);
  double *gd = act != RETCL_GATE_NONE ? ref_widen(gate, n) : NULL;
  double *wd = ref_widen(weight, H * D), *bd = ref_widen(bias, H * D);
  ref_group_norm_gate_backward_d(xd, gd, wd, bd, od, dx, d_gate, d_weight,
                                 d_bias, B, T, H, D, layout, kind, act, eps);
  free(xd);
  free(od);
  free(gd);
  free(wd);
  free(bd);
}
