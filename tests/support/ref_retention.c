/* ref_retention.c - retention in double precision, written from DESIGN 1.3
 * and 1.4 independently of the kernels: the raw form by its recurrence, and
 * each torchscale algorithm literally as the design states it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"

typedef struct head_view {
  const float *q, *k, *v;
  size_t T, H, Dk, Dv, b, h;
  retcl_layout layout;
} head_view;

static double qv(const head_view *x, size_t t, size_t d) {
  return x->q[ref_index(x->layout, x->T, x->H, x->Dk, x->b, t, x->h, d)];
}
static double kv(const head_view *x, size_t t, size_t d) {
  return x->k[ref_index(x->layout, x->T, x->H, x->Dk, x->b, t, x->h, d)];
}
static double vv(const head_view *x, size_t t, size_t d) {
  return x->v[ref_index(x->layout, x->T, x->H, x->Dv, x->b, t, x->h, d)];
}
static size_t oi(const head_view *x, size_t t, size_t d) {
  return ref_index(x->layout, x->T, x->H, x->Dv, x->b, t, x->h, d);
}
static size_t si(const head_view *x, size_t i, size_t j) {
  return ((x->b * x->H + x->h) * x->Dk + i) * x->Dv + j;
}

/* c_n = Σ_{j<n} g^j */
static double decay_sum(double g, size_t n) {
  double c = 0, p = 1;
  for (size_t j = 0; j < n; ++j, p *= g) c += p;
  return c;
}

void ref_retention_raw(const float *q, const float *k, const float *v,
                       const float *log_decay, const float *s0, double *out,
                       double *s_final, size_t B, size_t T, size_t H,
                       size_t Dk, size_t Dv, retcl_layout layout,
                       double scale) {
  double *S = malloc(Dk * Dv * sizeof *S);
  for (size_t b = 0; b < B; ++b)
    for (size_t h = 0; h < H; ++h) {
      head_view x = {q, k, v, T, H, Dk, Dv, b, h, layout};
      const double g = exp((double)log_decay[h]);
      for (size_t i = 0; i < Dk * Dv; ++i) S[i] = s0 ? s0[si(&x, 0, 0) + i] : 0;
      for (size_t t = 0; t < T; ++t) {
        for (size_t i = 0; i < Dk; ++i)
          for (size_t j = 0; j < Dv; ++j)
            S[i * Dv + j] = g * S[i * Dv + j] + kv(&x, t, i) * vv(&x, t, j);
        for (size_t j = 0; j < Dv; ++j) {
          double o = 0;
          for (size_t i = 0; i < Dk; ++i) o += qv(&x, t, i) * S[i * Dv + j];
          out[oi(&x, t, j)] = scale * o;
        }
      }
      if (s_final)
        for (size_t i = 0; i < Dk * Dv; ++i) s_final[si(&x, 0, 0) + i] = S[i];
    }
  free(S);
}

/* torchscale parallel: M_ts = g^(t-s)/sqrt(Σ_{s'≤t} g^(t-s')), row
 * normalisation by clamp(Σ|A|, 1, 5e4). */
static void ts_parallel(const head_view *x, double g, double *out) {
  double *A = malloc(x->T * sizeof *A);
  for (size_t t = 0; t < x->T; ++t) {
    const double norm = sqrt(decay_sum(g, t + 1));
    double a = 0;
    for (size_t s = 0; s <= t; ++s) {
      double dot = 0;
      for (size_t d = 0; d < x->Dk; ++d) dot += qv(x, t, d) * kv(x, s, d);
      A[s] = dot * pow(g, (double)(t - s)) / norm;
      a += fabs(A[s]);
    }
    a = a < 1 ? 1 : a > 5e4 ? 5e4 : a;
    for (size_t j = 0; j < x->Dv; ++j) {
      double o = 0;
      for (size_t s = 0; s <= t; ++s) o += A[s] * vv(x, s, j);
      out[oi(x, t, j)] = o / a;
    }
  }
  free(A);
}

/* torchscale recurrent: c_t = c_{t-1} g + 1, S_t = S_{t-1} g sqrt(c_{t-1}/c_t)
 * + k_tᵀ v_t / sqrt(c_t), o_t = q_t S_t. */
static void ts_recurrent(const head_view *x, double g, const float *s0,
                         size_t position, double *out, double *S) {
  const size_t n = x->Dk * x->Dv;
  for (size_t i = 0; i < n; ++i) S[i] = s0 ? s0[si(x, 0, 0) + i] : 0;
  double c = decay_sum(g, position);
  for (size_t t = 0; t < x->T; ++t) {
    const double c_new = c * g + 1;
    const double keep = g * sqrt(c / c_new), add = 1 / sqrt(c_new);
    for (size_t i = 0; i < x->Dk; ++i)
      for (size_t j = 0; j < x->Dv; ++j)
        S[i * x->Dv + j] = S[i * x->Dv + j] * keep + kv(x, t, i) * vv(x, t, j) * add;
    c = c_new;
    for (size_t j = 0; j < x->Dv; ++j) {
      double o = 0;
      for (size_t i = 0; i < x->Dk; ++i) o += qv(x, t, i) * S[i * x->Dv + j];
      out[oi(x, t, j)] = o;
    }
  }
}

/* torchscale chunkwise, as DESIGN 1.4 states it (R starts at 0, r at 1). */
static void ts_chunkwise(const head_view *x, double g, size_t C, double *out) {
  const size_t Dk = x->Dk, Dv = x->Dv;
  double *R = calloc(Dk * Dv, sizeof *R), *A = malloc(C * sizeof *A);
  double sigma = decay_sum(g, C), r = 1;
  for (size_t c0 = 0; c0 < x->T; c0 += C) {
    const size_t L = x->T - c0 < C ? x->T - c0 : C;
    for (size_t i = 0; i < L; ++i) {
      const double s_i = sqrt(decay_sum(g, i + 1));
      double a = 0;
      for (size_t j = 0; j <= i; ++j) {
        double dot = 0;
        for (size_t d = 0; d < Dk; ++d) dot += qv(x, c0 + i, d) * kv(x, c0 + j, d);
        A[j] = dot * pow(g, (double)(i - j)) / s_i;
        a += fabs(A[j]);
      }
      a = a < 1 ? 1 : a;
      const double m = a > r ? a : r;
      const double xi = pow(g, (double)(i + 1)) * sigma / s_i;
      for (size_t j = 0; j < Dv; ++j) {
        double inner = 0, cross = 0;
        for (size_t s = 0; s <= i; ++s) inner += A[s] * vv(x, c0 + s, j);
        for (size_t d = 0; d < Dk; ++d) cross += qv(x, c0 + i, d) * R[d * Dv + j];
        out[oi(x, c0 + i, j)] = (inner + xi * cross) / m;
      }
    }
    /* R <- δR + Σ_j k_jᵀ (ζ_j v_j); padded rows (j >= L) are zero. */
    const double delta = pow(g, (double)C);
    for (size_t d = 0; d < Dk; ++d)
      for (size_t j = 0; j < Dv; ++j) {
        double add = 0;
        for (size_t s = 0; s < L; ++s)
          add += kv(x, c0 + s, d) * vv(x, c0 + s, j) * pow(g, (double)(C - 1 - s)) / sigma;
        R[d * Dv + j] = delta * R[d * Dv + j] + add;
      }
    r = 1;
    for (size_t j = 0; j < Dv; ++j) {
      double col = 0;
      for (size_t d = 0; d < Dk; ++d) col += fabs(R[d * Dv + j]);
      if (col > r) r = col;
    }
  }
  free(R);
  free(A);
}

void ref_retention_torchscale(retcl_algorithm algo, const float *q,
                              const float *k, const float *v,
                              const float *log_decay, const float *s0,
                              size_t position, double *out, double *s_final,
                              size_t B, size_t T, size_t H, size_t Dk,
                              size_t Dv, retcl_layout layout, size_t C) {
  double *S = malloc(Dk * Dv * sizeof *S);
  for (size_t b = 0; b < B; ++b)
    for (size_t h = 0; h < H; ++h) {
      head_view x = {q, k, v, T, H, Dk, Dv, b, h, layout};
      const double g = exp((double)log_decay[h]);
      if (algo == RETCL_ALGO_PARALLEL)
        ts_parallel(&x, g, out);
      else if (algo == RETCL_ALGO_CHUNKWISE)
        ts_chunkwise(&x, g, C, out);
      double *scratch = malloc(T * H * Dv * B * sizeof *scratch);
      /* The final state is the recurrent form's, whatever the algorithm. */
      ts_recurrent(&x, g, s0, position, algo == RETCL_ALGO_RECURRENT ? out : scratch, S);
      free(scratch);
      if (s_final)
        for (size_t i = 0; i < Dk * Dv; ++i) s_final[si(&x, 0, 0) + i] = S[i];
    }
  free(S);
}
