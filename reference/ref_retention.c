/* ref_retention.c - retention in double precision (see ref_retention.h),
 * written from docs/design.md §1.3 and 1.4, not from the kernels. Powers of γ are
 * formed as exp(j · log γ) (docs/design.md §1.2). */
#include "ref_retention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref_util.h"

/* One (b, h) of the tensors. */
typedef struct head {
  const double *q, *k, *v;
  double *out; /* may be NULL */
  size_t T, H, Dk, Dv, b, h;
  retcl_layout layout;
} head;

static double qv(const head *x, size_t t, size_t d) {
  return x->q[ref_index(x->layout, x->T, x->H, x->Dk, x->b, t, x->h, d)];
}
static double kv(const head *x, size_t t, size_t d) {
  return x->k[ref_index(x->layout, x->T, x->H, x->Dk, x->b, t, x->h, d)];
}
static double vv(const head *x, size_t t, size_t d) {
  return x->v[ref_index(x->layout, x->T, x->H, x->Dv, x->b, t, x->h, d)];
}
static void put(const head *x, size_t t, size_t d, double o) {
  if (x->out) x->out[ref_index(x->layout, x->T, x->H, x->Dv, x->b, t, x->h, d)] = o;
}
static size_t state_base(const head *x) {
  return (x->b * x->H + x->h) * x->Dk * x->Dv;
}
static double qk(const head *x, size_t t, size_t s) {
  double dot = 0;
  for (size_t d = 0; d < x->Dk; ++d) dot += qv(x, t, d) * kv(x, s, d);
  return dot;
}

/* Σ_{j<n} γ^j */
static double decay_sum(double lg, size_t n) {
  double c = 0;
  for (size_t j = 0; j < n; ++j) c += exp((double)j * lg);
  return c;
}

/* The recurrence of one head: S_t = keep_t S_{t-1} + add_t k_tᵀ v_t,
 * o_t = scale · q_t S_t. Raw (docs/design.md §1.3): keep γ, add 1. torchscale
 * (docs/design.md §1.4): c_t = c_{t-1} γ + 1 from c = Σ_{j<position} γ^j,
 * keep γ sqrt(c_{t-1}/c_t), add 1/sqrt(c_t). S starts from s0 (or 0) and
 * ends as the final state. */
static void recurrence(const head *x, double lg, int torchscale,
                       const float *s0, size_t position, double scale,
                       double *S) {
  const size_t Dk = x->Dk, Dv = x->Dv;
  const double g = exp(lg);
  for (size_t i = 0; i < Dk * Dv; ++i) S[i] = s0 ? s0[state_base(x) + i] : 0.0;
  double c = decay_sum(lg, position);
  for (size_t t = 0; t < x->T; ++t) {
    double keep = g, add = 1;
    if (torchscale) {
      const double c_new = c * g + 1;
      keep = g * sqrt(c / c_new);
      add = 1 / sqrt(c_new);
      c = c_new;
    }
    for (size_t i = 0; i < Dk; ++i)
      for (size_t j = 0; j < Dv; ++j)
        S[i * Dv + j] = keep * S[i * Dv + j] + add * kv(x, t, i) * vv(x, t, j);
    for (size_t j = 0; j < Dv; ++j) {
      double o = 0;
      for (size_t i = 0; i < Dk; ++i) o += qv(x, t, i) * S[i * Dv + j];
      put(x, t, j, scale * o);
    }
  }
}

/* torchscale parallel: M_ts = γ^(t-s) / sqrt(Σ_{s'≤t} γ^(t-s')), rows of
 * A = (q kᵀ) ⊙ M divided by clamp(Σ_s |A_ts|, 1, 5e4). */
static void ts_parallel(const head *x, double lg, double *A) {
  for (size_t t = 0; t < x->T; ++t) {
    const double norm = sqrt(decay_sum(lg, t + 1));
    double a = 0;
    for (size_t s = 0; s <= t; ++s) {
      A[s] = qk(x, t, s) * exp((double)(t - s) * lg) / norm;
      a += fabs(A[s]);
    }
    a = a < 1 ? 1 : a > 5e4 ? 5e4 : a;
    for (size_t j = 0; j < x->Dv; ++j) {
      double o = 0;
      for (size_t s = 0; s <= t; ++s) o += A[s] * vv(x, s, j);
      put(x, t, j, o / a);
    }
  }
}

/* torchscale chunkwise as docs/design.md §1.4 spells it: per chunk of C,
 * A_ij = (q_i·k_j) γ^(i-j) / s_i, a_i = max(1, Σ|A_ij|), m_i = max(a_i, r),
 * o_i = (Σ A_ij v_j + ξ_i q_i R) / m_i; then R ← γ^C R + Σ_j k_jᵀ ζ_j v_j
 * (R starts at 0) and r ← max(1, largest column abs-sum of R). */
static void ts_chunkwise(const head *x, double lg, size_t C, double *R,
                         double *A) {
  const size_t Dk = x->Dk, Dv = x->Dv;
  const double sigma = decay_sum(lg, C), delta = exp((double)C * lg);
  double r = 1;
  memset(R, 0, Dk * Dv * sizeof *R);
  for (size_t c0 = 0; c0 < x->T; c0 += C) {
    const size_t L = x->T - c0 < C ? x->T - c0 : C;
    for (size_t i = 0; i < L; ++i) {
      const double s_i = sqrt(decay_sum(lg, i + 1));
      const double xi = exp((double)(i + 1) * lg) * sigma / s_i;
      double a = 0;
      for (size_t j = 0; j <= i; ++j) {
        A[j] = qk(x, c0 + i, c0 + j) * exp((double)(i - j) * lg) / s_i;
        a += fabs(A[j]);
      }
      a = a < 1 ? 1 : a;
      const double m = a > r ? a : r;
      for (size_t j = 0; j < Dv; ++j) {
        double inner = 0, cross = 0;
        for (size_t s = 0; s <= i; ++s) inner += A[s] * vv(x, c0 + s, j);
        for (size_t d = 0; d < Dk; ++d) cross += qv(x, c0 + i, d) * R[d * Dv + j];
        put(x, c0 + i, j, (inner + xi * cross) / m);
      }
    }
    /* Rows past a short last chunk are torchscale's zero padding. */
    for (size_t d = 0; d < Dk; ++d)
      for (size_t j = 0; j < Dv; ++j) {
        double add = 0;
        for (size_t s = 0; s < L; ++s)
          add += kv(x, c0 + s, d) * vv(x, c0 + s, j) *
                 exp((double)(C - 1 - s) * lg) / sigma;
        R[d * Dv + j] = delta * R[d * Dv + j] + add;
      }
    r = 1;
    for (size_t j = 0; j < Dv; ++j) {
      double col = 0;
      for (size_t d = 0; d < Dk; ++d) col += fabs(R[d * Dv + j]);
      if (col > r) r = col;
    }
  }
}

void ref_retention_raw_d(const double *q, const double *k, const double *v,
                         const float *log_decay, const float *s0, double *out,
                         double *s_final, size_t B, size_t T, size_t H,
                         size_t Dk, size_t Dv, retcl_layout layout,
                         double scale) {
  double *S = ref_alloc_d(Dk * Dv);
  for (size_t b = 0; b < B; ++b)
    for (size_t h = 0; h < H; ++h) {
      const head x = {q, k, v, out, T, H, Dk, Dv, b, h, layout};
      recurrence(&x, (double)log_decay[h], 0, s0, 0, scale, S);
      if (s_final) memcpy(s_final + state_base(&x), S, Dk * Dv * sizeof *S);
    }
  free(S);
}

void ref_retention_torchscale_d(retcl_algorithm algo, const double *q,
                                const double *k, const double *v,
                                const float *log_decay, const float *s0,
                                size_t position, double *out,
                                double *s_final, size_t B, size_t T, size_t H,
                                size_t Dk, size_t Dv, retcl_layout layout,
                                size_t C) {
  if (C == 0) C = 64;
  double *S = ref_alloc_d(Dk * Dv), *A = ref_alloc_d(T > C ? T : C);
  for (size_t b = 0; b < B; ++b)
    for (size_t h = 0; h < H; ++h) {
      const head x = {q, k, v, out, T, H, Dk, Dv, b, h, layout};
      const double lg = (double)log_decay[h];
      if (algo == RETCL_ALGO_PARALLEL) ts_parallel(&x, lg, A);
      if (algo == RETCL_ALGO_CHUNKWISE) ts_chunkwise(&x, lg, C, S, A);
      /* The recurrent pass gives the recurrent outputs and every
       * algorithm's final state. */
      if (algo == RETCL_ALGO_RECURRENT || s_final) {
        head rx = x;
        if (algo != RETCL_ALGO_RECURRENT) rx.out = NULL;
        recurrence(&rx, lg, 1, s0, position, 1.0, S);
        if (s_final) memcpy(s_final + state_base(&x), S, Dk * Dv * sizeof *S);
      }
    }
  free(S);
  free(A);
}

void ref_retention_raw(const float *q, const float *k, const float *v,
                       const float *log_decay, const float *s0, double *out,
                       double *s_final, size_t B, size_t T, size_t H,
                       size_t Dk, size_t Dv, retcl_layout layout,
                       double scale) {
  double *qd = ref_widen(q, B * T * H * Dk), *kd = ref_widen(k, B * T * H * Dk);
  double *vd = ref_widen(v, B * T * H * Dv);
  ref_retention_raw_d(qd, kd, vd, log_decay, s0, out, s_final, B, T, H, Dk,
                      Dv, layout, scale);
  free(qd);
  free(kd);
  free(vd);
}

void ref_retention_torchscale(retcl_algorithm algo, const float *q,
                              const float *k, const float *v,
                              const float *log_decay, const float *s0,
                              size_t position, double *out, double *s_final,
                              size_t B, size_t T, size_t H, size_t Dk,
                              size_t Dv, retcl_layout layout, size_t C) {
  double *qd = ref_widen(q, B * T * H * Dk), *kd = ref_widen(k, B * T * H * Dk);
  double *vd = ref_widen(v, B * T * H * Dv);
  ref_retention_torchscale_d(algo, qd, kd, vd, log_decay, s0, position, out,
                             s_final, B, T, H, Dk, Dv, layout, C);
  free(qd);
  free(kd);
  free(vd);
}
