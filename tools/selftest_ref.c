/* selftest_ref.c - double-precision references for `retcl selftest` (see
 * selftest_ref.h): each formula of the design evaluated literally, slowly
 * and in double, on the small shapes the self-test uses. */
#include "selftest_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t st_index(retcl_layout layout, size_t T, size_t H, size_t D, size_t b,
                size_t t, size_t h, size_t d) {
  if (layout == RETCL_LAYOUT_HEAD_MAJOR) return ((b * H + h) * T + t) * D + d;
  return ((b * T + t) * H + h) * D + d;
}

void st_ref_rotate(const float *in, double *out, size_t B, size_t T, size_t H,
                   size_t D, retcl_layout layout, size_t pos0,
                   double xpos_base, int is_key) {
  const size_t pairs = D / 2;
  for (size_t i = 0; i < pairs; ++i) {
    const long double theta =
        pairs == 1 ? 1.0L
                   : powl(10000.0L, -(long double)i / (long double)(pairs - 1));
    const double zeta = (2.0 * (double)i + 0.4 * (double)D) / (1.4 * (double)D);
    for (size_t t = 0; t < T; ++t) {
      /* long double keeps n·θ to ~2^-64 relative: exact enough to 2^32. */
      const long double n = (long double)(pos0 + t);
      const double c = (double)cosl(n * theta), s = (double)sinl(n * theta);
      const double scale =
          xpos_base > 0
              ? pow(zeta, (is_key ? -1.0 : 1.0) * (double)n / xpos_base)
              : 1.0;
      for (size_t b = 0; b < B; ++b)
        for (size_t h = 0; h < H; ++h) {
          const size_t at = st_index(layout, T, H, D, b, t, h, 2 * i);
          const double x0 = in[at], x1 = in[at + 1];
          out[at] = (x0 * c - x1 * s) * scale;
          out[at + 1] = (x1 * c + x0 * s) * scale;
        }
    }
  }
}

/* Element readers for one (b, h) of a shape. */
static double at(const st_shape *s, const float *x, size_t D, size_t b,
                 size_t t, size_t h, size_t d) {
  return x[st_index(s->layout, s->T, s->H, D, b, t, h, d)];
}

static double dot_qk(const st_shape *s, const float *q, const float *k,
                     size_t b, size_t h, size_t t, size_t u) {
  double dot = 0;
  for (size_t d = 0; d < s->Dk; ++d)
    dot += at(s, q, s->Dk, b, t, h, d) * at(s, k, s->Dk, b, u, h, d);
  return dot;
}

/* Σ_{j<n} g^j */
static double geo_sum(double g, size_t n) {
  double c = 0, p = 1;
  for (size_t j = 0; j < n; ++j, p *= g) c += p;
  return c;
}

/* S_t = keep_t S_{t-1} + add_t k_tᵀ v_t, o_t = scale q_t S_t for one
 * (b, h): raw (keep γ, add 1) or torchscale recurrent (DESIGN 1.4). */
static void recurrence(const st_shape *s, size_t b, size_t h, double g,
                       int torchscale, const float *q, const float *k,
                       const float *v, const float *s0, double scale,
                       double *out, double *S) {
  const size_t Dk = s->Dk, Dv = s->Dv;
  const size_t base = (b * s->H + h) * Dk * Dv;
  for (size_t i = 0; i < Dk * Dv; ++i) S[i] = s0 ? s0[base + i] : 0.0;
  double c = 0;
  for (size_t t = 0; t < s->T; ++t) {
    double keep = g, add = 1;
    if (torchscale) {
      const double c_new = c * g + 1;
      keep = g * sqrt(c / c_new);
      add = 1 / sqrt(c_new);
      c = c_new;
    }
    for (size_t i = 0; i < Dk; ++i)
      for (size_t j = 0; j < Dv; ++j)
        S[i * Dv + j] = keep * S[i * Dv + j] +
                        add * at(s, k, Dk, b, t, h, i) * at(s, v, Dv, b, t, h, j);
    for (size_t j = 0; j < Dv; ++j) {
      double o = 0;
      for (size_t i = 0; i < Dk; ++i) o += at(s, q, Dk, b, t, h, i) * S[i * Dv + j];
      if (out) out[st_index(s->layout, s->T, s->H, Dv, b, t, h, j)] = scale * o;
    }
  }
}

void st_ref_retention_raw(const st_shape *s, const float *q, const float *k,
                          const float *v, const float *log_decay,
                          const float *s0, double scale, double *out,
                          double *s_final) {
  double *S = malloc(s->Dk * s->Dv * sizeof *S);
  if (!S) return;
  for (size_t b = 0; b < s->B; ++b)
    for (size_t h = 0; h < s->H; ++h) {
      recurrence(s, b, h, exp((double)log_decay[h]), 0, q, k, v, s0, scale,
                 out, S);
      if (s_final)
        memcpy(s_final + (b * s->H + h) * s->Dk * s->Dv, S,
               s->Dk * s->Dv * sizeof *S);
    }
  free(S);
}

/* torchscale parallel for one (b, h): M_ts = g^(t-s) / sqrt(Σ_{s'≤t}
 * g^(t-s')), rows divided by clamp(Σ_s |A_ts|, 1, 5e4). */
static void ts_parallel(const st_shape *s, size_t b, size_t h, double g,
                        const float *q, const float *k, const float *v,
                        double *A, double *out) {
  for (size_t t = 0; t < s->T; ++t) {
    const double norm = sqrt(geo_sum(g, t + 1));
    double a = 0;
    for (size_t u = 0; u <= t; ++u) {
      A[u] = dot_qk(s, q, k, b, h, t, u) * pow(g, (double)(t - u)) / norm;
      a += fabs(A[u]);
    }
    a = a < 1 ? 1 : a > 5e4 ? 5e4 : a;
    for (size_t j = 0; j < s->Dv; ++j) {
      double o = 0;
      for (size_t u = 0; u <= t; ++u) o += A[u] * at(s, v, s->Dv, b, u, h, j);
      out[st_index(s->layout, s->T, s->H, s->Dv, b, t, h, j)] = o / a;
    }
  }
}

/* torchscale chunkwise for one (b, h), as DESIGN 1.4 spells it: raw
 * accumulator R with its scale r, per-chunk M, s_i, σ, ζ, ξ, δ. */
static void ts_chunkwise(const st_shape *s, size_t b, size_t h, double g,
                         size_t C, const float *q, const float *k,
                         const float *v, double *A, double *R, double *out) {
  const size_t Dk = s->Dk, Dv = s->Dv;
  memset(R, 0, Dk * Dv * sizeof *R);
  const double sigma = geo_sum(g, C), delta = pow(g, (double)C);
  double r = 1;
  for (size_t c0 = 0; c0 < s->T; c0 += C) {
    const size_t L = s->T - c0 < C ? s->T - c0 : C;
    for (size_t i = 0; i < L; ++i) {
      const double s_i = sqrt(geo_sum(g, i + 1));
      double a = 0;
      for (size_t j = 0; j <= i; ++j) {
        A[j] = dot_qk(s, q, k, b, h, c0 + i, c0 + j) * pow(g, (double)(i - j)) / s_i;
        a += fabs(A[j]);
      }
      const double m = fmax(fmax(a, 1.0), r);
      const double xi = pow(g, (double)(i + 1)) * sigma / s_i;
      for (size_t j = 0; j < Dv; ++j) {
        double inner = 0, cross = 0;
        for (size_t u = 0; u <= i; ++u) inner += A[u] * at(s, v, Dv, b, c0 + u, h, j);
        for (size_t d = 0; d < Dk; ++d)
          cross += at(s, q, Dk, b, c0 + i, h, d) * R[d * Dv + j];
        out[st_index(s->layout, s->T, s->H, Dv, b, c0 + i, h, j)] =
            (inner + xi * cross) / m;
      }
    }
    for (size_t d = 0; d < Dk; ++d)
      for (size_t j = 0; j < Dv; ++j) {
        double add = 0;
        for (size_t u = 0; u < L; ++u)
          add += at(s, k, Dk, b, c0 + u, h, d) * at(s, v, Dv, b, c0 + u, h, j) *
                 pow(g, (double)(C - 1 - u)) / sigma;
        R[d * Dv + j] = delta * R[d * Dv + j] + add;
      }
    r = 1; /* largest column abs-sum of R, at least 1 */
    for (size_t j = 0; j < Dv; ++j) {
      double col = 0;
      for (size_t d = 0; d < Dk; ++d) col += fabs(R[d * Dv + j]);
      r = fmax(r, col);
    }
  }
}

void st_ref_retention_torchscale(const st_shape *s, retcl_algorithm algo,
                                 size_t C, const float *q, const float *k,
                                 const float *v, const float *log_decay,
                                 double *out, double *s_final) {
  const size_t n = s->Dk * s->Dv;
  const size_t nA = s->T > C ? s->T : C;
  double *S = malloc(n * sizeof *S), *R = malloc(n * sizeof *R);
  double *A = malloc(nA * sizeof *A);
  if (S && R && A)
    for (size_t b = 0; b < s->B; ++b)
      for (size_t h = 0; h < s->H; ++h) {
        const double g = exp((double)log_decay[h]);
        if (algo == RETCL_ALGO_PARALLEL) ts_parallel(s, b, h, g, q, k, v, A, out);
        if (algo == RETCL_ALGO_CHUNKWISE)
          ts_chunkwise(s, b, h, g, C, q, k, v, A, R, out);
        /* The recurrent pass gives the final state of every algorithm (a
         * prefill hands that state to decoding), and its outputs. */
        recurrence(s, b, h, g, 1, q, k, v, NULL, 1.0,
                   algo == RETCL_ALGO_RECURRENT ? out : NULL, S);
        if (s_final) memcpy(s_final + (b * s->H + h) * n, S, n * sizeof *S);
      }
  free(S);
  free(R);
  free(A);
}

static double activation(retcl_gate act, double g) {
  if (act == RETCL_GATE_SWISH) return g / (1.0 + exp(-g));
  if (act == RETCL_GATE_GELU) return 0.5 * g * (1.0 + erf(g / sqrt(2.0)));
  return 1.0;
}

void st_ref_group_norm_gate(const float *x, const float *gate,
                            const float *weight, const float *bias,
                            double *out, size_t B, size_t T, size_t H,
                            size_t D, retcl_layout layout,
                            retcl_norm_kind kind, retcl_gate act, double eps) {
  if (eps == 0) eps = 1e-6;
  for (size_t b = 0; b < B; ++b)
    for (size_t t = 0; t < T; ++t)
      for (size_t h = 0; h < H; ++h) {
        const size_t row = st_index(layout, T, H, D, b, t, h, 0);
        double mean = 0, var = 0;
        if (kind == RETCL_NORM_LAYER) {
          for (size_t d = 0; d < D; ++d) mean += x[row + d];
          mean /= (double)D;
        }
        for (size_t d = 0; d < D; ++d) var += (x[row + d] - mean) * (x[row + d] - mean);
        const double inv = 1 / sqrt(var / (double)D + eps);
        for (size_t d = 0; d < D; ++d) {
          double y = (x[row + d] - mean) * inv;
          if (weight) y *= weight[h * D + d];
          if (bias) y += bias[h * D + d];
          out[row + d] = act == RETCL_GATE_NONE ? y : y * activation(act, gate[row + d]);
        }
      }
}

void st_ref_linear(const float *x, const float *W, size_t rows, size_t out,
                   size_t in, double alpha, double *y) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t o = 0; o < out; ++o) {
      double acc = 0;
      for (size_t i = 0; i < in; ++i) acc += (double)x[r * in + i] * W[o * in + i];
      y[r * out + o] = alpha * acc;
    }
}
