/* ref_retention_grad.c - the backward of retention in double precision (see
 * ref_retention_grad.h), derived by hand from the forwards as
 * ref_retention.c writes them (docs/design.md §1.3, §1.4, §1.7). Powers of
 * γ are exp(j · log γ). */
#include "ref_retention_grad.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref_util.h"

/* One (b, h) of the tensors; dq, dk, dv receive (accumulate) gradients. */
typedef struct head {
  const double *q, *k, *v, *d_out;
  double *dq, *dk, *dv;
  size_t T, H, Dk, Dv, b, h;
  retcl_layout layout;
} head;

static size_t at_k(const head *x, size_t t, size_t d) {
  return ref_index(x->layout, x->T, x->H, x->Dk, x->b, t, x->h, d);
}
static size_t at_v(const head *x, size_t t, size_t d) {
  return ref_index(x->layout, x->T, x->H, x->Dv, x->b, t, x->h, d);
}
static double Q(const head *x, size_t t, size_t d) { return x->q[at_k(x, t, d)]; }
static double K(const head *x, size_t t, size_t d) { return x->k[at_k(x, t, d)]; }
static double V(const head *x, size_t t, size_t d) { return x->v[at_v(x, t, d)]; }
static double DO(const head *x, size_t t, size_t d) {
  return x->d_out ? x->d_out[at_v(x, t, d)] : 0.0;
}
static size_t state_base(const head *x) {
  return (x->b * x->H + x->h) * x->Dk * x->Dv;
}
static double qk(const head *x, size_t t, size_t s) {
  double dot = 0;
  for (size_t d = 0; d < x->Dk; ++d) dot += Q(x, t, d) * K(x, s, d);
  return dot;
}
static double dov(const head *x, size_t t, size_t s) {
  double dot = 0;
  for (size_t d = 0; d < x->Dv; ++d) dot += DO(x, t, d) * V(x, s, d);
  return dot;
}

/* Σ_{j<n} γ^j, as ref_retention.c sums it. */
static double decay_sum(double lg, size_t n) {
  double c = 0;
  for (size_t j = 0; j < n; ++j) c += exp((double)j * lg);
  return c;
}

/* The recurrence S_{t+1} = keep_t S_t + add_t k_tᵀ v_t, o_t = sc_t q_t
 * S_{t+1} (t = 0 … T-1) from S_0 (s0, or 0), and its backward: with G the
 * gradient of S_{t+1}, accumulated from dS_T (or 0) backwards,
 *   G += sc_t q_tᵀ do_t;  dq_t += sc_t do_t S_{t+1}ᵀ;
 *   dk_t += add_t v_t Gᵀ;  dv_t += add_t k_t G;  G <- keep_t G,
 * ending with G = dL/dS_0. */
static void recurrence_grad(const head *x, const double *keep,
                            const double *add, const double *sc,
                            const float *s0, const double *dST, double *dS0) {
  const size_t Dk = x->Dk, Dv = x->Dv, T = x->T, n = Dk * Dv;
  double *S = ref_alloc_d((T + 1) * n), *G = ref_alloc_d(n);
  for (size_t i = 0; i < n; ++i) S[i] = s0 ? s0[state_base(x) + i] : 0.0;
  for (size_t t = 0; t < T; ++t)
    for (size_t i = 0; i < Dk; ++i)
      for (size_t j = 0; j < Dv; ++j)
        S[(t + 1) * n + i * Dv + j] = keep[t] * S[t * n + i * Dv + j] +
                                      add[t] * K(x, t, i) * V(x, t, j);
  for (size_t i = 0; i < n; ++i) G[i] = dST ? dST[state_base(x) + i] : 0.0;
  for (size_t t = T; t-- > 0;) {
    const double *St = S + (t + 1) * n;
    for (size_t i = 0; i < Dk; ++i)
      for (size_t j = 0; j < Dv; ++j)
        G[i * Dv + j] += sc[t] * Q(x, t, i) * DO(x, t, j);
    for (size_t i = 0; i < Dk; ++i) {
      double gq = 0, gk = 0;
      for (size_t j = 0; j < Dv; ++j) {
        gq += DO(x, t, j) * St[i * Dv + j];
        gk += G[i * Dv + j] * V(x, t, j);
      }
      x->dq[at_k(x, t, i)] += sc[t] * gq;
      x->dk[at_k(x, t, i)] += add[t] * gk;
    }
    for (size_t j = 0; j < Dv; ++j) {
      double gv = 0;
      for (size_t i = 0; i < Dk; ++i) gv += K(x, t, i) * G[i * Dv + j];
      x->dv[at_v(x, t, j)] += add[t] * gv;
    }
    for (size_t i = 0; i < n; ++i) G[i] *= keep[t];
  }
  if (dS0) memcpy(dS0 + state_base(x), G, n * sizeof *G);
  free(S);
  free(G);
}

/* The raw form's coefficients: keep γ, add 1, sc = scale. torchscale's
 * recurrent form: c_{t+1} = γ c_t + 1 from c_position, keep γ
 * sqrt(c_t/c_{t+1}), add 1/sqrt(c_{t+1}), sc 1 (docs/design.md §1.4). */
static void coefficients(int torchscale, double lg, size_t position,
                         double scale, size_t T, double *keep, double *add,
                         double *sc) {
  const double g = exp(lg);
  double c = decay_sum(lg, position);
  for (size_t t = 0; t < T; ++t) {
    keep[t] = g;
    add[t] = 1;
    sc[t] = scale;
    if (torchscale) {
      const double c_new = c * g + 1;
      keep[t] = g * sqrt(c / c_new);
      add[t] = 1 / sqrt(c_new);
      sc[t] = 1;
      c = c_new;
    }
  }
}

/* torchscale parallel (fresh start): A_ts = (q_t·k_s) γ^(t-s) / σ_t,
 * σ_t = sqrt(c_{t+1}), o_t = Σ_s A_ts v_s / a_t with
 * a_t = clamp(Σ_s |A_ts|, 1, 5e4). norm_out (if given) receives a_t; with
 * norm_in given, it replaces a_t. out (if given) receives o. */
static void ts_parallel(const head *x, double lg, const double *norm_in,
                        double *norm_out, double *out) {
  double *A = ref_alloc_d(x->T);
  for (size_t t = 0; t < x->T; ++t) {
    const double sigma = sqrt(decay_sum(lg, t + 1));
    double a = 0;
    for (size_t s = 0; s <= t; ++s) {
      A[s] = qk(x, t, s) * exp((double)(t - s) * lg) / sigma;
      a += fabs(A[s]);
    }
    a = a < 1 ? 1 : a > 5e4 ? 5e4 : a;
    if (norm_in) a = norm_in[t];
    if (norm_out) norm_out[t] = a;
    if (out)
      for (size_t j = 0; j < x->Dv; ++j) {
        double o = 0;
        for (size_t s = 0; s <= t; ++s) o += A[s] * V(x, s, j);
        out[at_v(x, t, j)] = o / a;
      }
  }
  free(A);
}

/* Its backward with a_t constant: do'_t = do_t / a_t,
 *   dv_s += Σ_{t≥s} A_ts do'_t,
 *   dA_ts = do'_t·v_s,  dq_t += Σ_s dA_ts γ^(t-s)/σ_t k_s,
 *   dk_s += Σ_{t≥s} dA_ts γ^(t-s)/σ_t q_t. */
static void ts_parallel_grad(const head *x, double lg) {
  double *a = ref_alloc_d(x->T);
  ts_parallel(x, lg, NULL, a, NULL);
  for (size_t t = 0; t < x->T; ++t) {
    const double sigma = sqrt(decay_sum(lg, t + 1));
    for (size_t s = 0; s <= t; ++s) {
      const double m = exp((double)(t - s) * lg) / sigma;
      const double A = qk(x, t, s) * m, dA = dov(x, t, s) / a[t];
      for (size_t j = 0; j < x->Dv; ++j)
        x->dv[at_v(x, s, j)] += A * DO(x, t, j) / a[t];
      for (size_t d = 0; d < x->Dk; ++d) {
        x->dq[at_k(x, t, d)] += dA * m * K(x, s, d);
        x->dk[at_k(x, s, d)] += dA * m * Q(x, t, d);
      }
    }
  }
  free(a);
}

/* torchscale chunkwise (fresh start) in its own variables: per chunk of
 * C (the last may be shorter and keeps C's constants), with R̂ its state
 * (the raw state divided by ς = c_C):
 *   A_ij = (q_i·k_j) γ^(i-j) / s_i,  s_i = sqrt(c_{i+1}),
 *   a_i = max(1, Σ_j |A_ij|),  m_i = max(a_i, r),
 *   o_i = (Σ_j A_ij v_j + ξ_i q_i R̂) / m_i,  ξ_i = γ^(i+1) ς / s_i,
 *   R̂ <- δ R̂ + Σ_j ζ_j k_jᵀ v_j,  δ = γ^C,  ζ_j = γ^(C-1-j) / ς,
 *   r <- max(1, largest column abs-sum of R̂).
 * norm_in replaces m_i when given; norm_out receives m_i; Rs (if given)
 * receives R̂ before each chunk, [chunks][Dk][Dv]; out (if given) o. */
static void ts_chunkwise(const head *x, double lg, size_t C,
                         const double *norm_in, double *norm_out, double *Rs,
                         double *out) {
  const size_t Dk = x->Dk, Dv = x->Dv, n = Dk * Dv;
  const double sigma = decay_sum(lg, C), delta = exp((double)C * lg);
  double *R = ref_alloc_d(n), *A = ref_alloc_d(C);
  double r = 1;
  for (size_t c0 = 0, c = 0; c0 < x->T; c0 += C, ++c) {
    const size_t L = x->T - c0 < C ? x->T - c0 : C;
    if (Rs) memcpy(Rs + c * n, R, n * sizeof *R);
    for (size_t i = 0; i < L; ++i) {
      const double s_i = sqrt(decay_sum(lg, i + 1));
      const double xi = exp((double)(i + 1) * lg) * sigma / s_i;
      double a = 0;
      for (size_t j = 0; j <= i; ++j) {
        A[j] = qk(x, c0 + i, c0 + j) * exp((double)(i - j) * lg) / s_i;
        a += fabs(A[j]);
      }
      a = a < 1 ? 1 : a;
      double m = a > r ? a : r;
      if (norm_in) m = norm_in[c0 + i];
      if (norm_out) norm_out[c0 + i] = m;
      if (out)
        for (size_t j = 0; j < Dv; ++j) {
          double inner = 0, cross = 0;
          for (size_t s = 0; s <= i; ++s) inner += A[s] * V(x, c0 + s, j);
          for (size_t d = 0; d < Dk; ++d)
            cross += Q(x, c0 + i, d) * R[d * Dv + j];
          out[at_v(x, c0 + i, j)] = (inner + xi * cross) / m;
        }
    }
    for (size_t d = 0; d < Dk; ++d)
      for (size_t j = 0; j < Dv; ++j) {
        double add = 0;
        for (size_t s = 0; s < L; ++s)
          add += K(x, c0 + s, d) * V(x, c0 + s, j) *
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
  free(R);
  free(A);
}

/* Its backward with m_i constant, chunk by chunk from the last, with G
 * the gradient of R̂ after the chunk (0 after the last: no output reads
 * it; the returned final state is the recurrent one's, handled apart):
 *   do'_i = do_i / m_i;  dA_ij = do'_i·v_j;
 *   dv_j += Σ_i A_ij do'_i + ζ_j k_j G;
 *   dq_i += Σ_j dA_ij γ^(i-j)/s_i k_j + ξ_i do'_i R̂ᵀ;
 *   dk_j += Σ_i dA_ij γ^(i-j)/s_i q_i + ζ_j v_j Gᵀ;
 *   G <- δ G + Σ_i ξ_i q_iᵀ do'_i. */
static void ts_chunkwise_grad(const head *x, double lg, size_t C) {
  const size_t Dk = x->Dk, Dv = x->Dv, n = Dk * Dv, T = x->T;
  const size_t chunks = (T + C - 1) / C;
  double *m = ref_alloc_d(T), *Rs = ref_alloc_d(chunks * n);
  double *G = ref_alloc_d(n), *Gprev = ref_alloc_d(n);
  ts_chunkwise(x, lg, C, NULL, m, Rs, NULL);
  const double sigma = decay_sum(lg, C), delta = exp((double)C * lg);
  for (size_t c = chunks; c-- > 0;) {
    const size_t c0 = c * C, L = T - c0 < C ? T - c0 : C;
    const double *R = Rs + c * n;
    for (size_t i = 0; i < n; ++i) Gprev[i] = delta * G[i];
    for (size_t i = 0; i < L; ++i) {
      const double s_i = sqrt(decay_sum(lg, i + 1));
      const double xi = exp((double)(i + 1) * lg) * sigma / s_i;
      const double inv_m = 1 / m[c0 + i];
      for (size_t j = 0; j <= i; ++j) {
        const double w = exp((double)(i - j) * lg) / s_i;
        const double A = qk(x, c0 + i, c0 + j) * w;
        const double dA = dov(x, c0 + i, c0 + j) * inv_m;
        for (size_t e = 0; e < Dv; ++e)
          x->dv[at_v(x, c0 + j, e)] += A * DO(x, c0 + i, e) * inv_m;
        for (size_t d = 0; d < Dk; ++d) {
          x->dq[at_k(x, c0 + i, d)] += dA * w * K(x, c0 + j, d);
          x->dk[at_k(x, c0 + j, d)] += dA * w * Q(x, c0 + i, d);
        }
      }
      for (size_t d = 0; d < Dk; ++d) {
        double acc = 0;
        for (size_t e = 0; e < Dv; ++e) {
          acc += DO(x, c0 + i, e) * R[d * Dv + e];
          Gprev[d * Dv + e] += xi * Q(x, c0 + i, d) * DO(x, c0 + i, e) * inv_m;
        }
        x->dq[at_k(x, c0 + i, d)] += xi * acc * inv_m;
      }
    }
    for (size_t j = 0; j < L; ++j) {
      const double zeta = exp((double)(C - 1 - j) * lg) / sigma;
      for (size_t d = 0; d < Dk; ++d) {
        double acc = 0;
        for (size_t e = 0; e < Dv; ++e) acc += G[d * Dv + e] * V(x, c0 + j, e);
        x->dk[at_k(x, c0 + j, d)] += zeta * acc;
      }
      for (size_t e = 0; e < Dv; ++e) {
        double acc = 0;
        for (size_t d = 0; d < Dk; ++d) acc += K(x, c0 + j, d) * G[d * Dv + e];
        x->dv[at_v(x, c0 + j, e)] += zeta * acc;
      }
    }
    memcpy(G, Gprev, n * sizeof *G);
  }
  free(m);
  free(Rs);
  free(G);
  free(Gprev);
}

void ref_retention_grad_d(retcl_retention_form form, retcl_algorithm algo,
                          const double *q, const double *k, const double *v,
                          const float *log_decay, const float *s0,
                          size_t position, const double *d_out,
                          const double *d_state_out, double *dq, double *dk,
                          double *dv, double *d_state_in, size_t B, size_t T,
                          size_t H, size_t Dk, size_t Dv, retcl_layout layout,
                          double scale, size_t C) {
  if (C == 0) C = 64;
  if (scale == 0) scale = 1;
  memset(dq, 0, B * T * H * Dk * sizeof *dq);
  memset(dk, 0, B * T * H * Dk * sizeof *dk);
  memset(dv, 0, B * T * H * Dv * sizeof *dv);
  double *keep = ref_alloc_d(T), *add = ref_alloc_d(T), *sc = ref_alloc_d(T);
  for (size_t b = 0; b < B; ++b)
    for (size_t h = 0; h < H; ++h) {
      const head x = {q, k, v, d_out, dq, dk, dv, T, H, Dk, Dv, b, h, layout};
      const double lg = (double)log_decay[h];
      const int ts = form == RETCL_FORM_TORCHSCALE;
      coefficients(ts, lg, position, scale, T, keep, add, sc);
      if (!ts || algo == RETCL_ALGO_RECURRENT) {
        recurrence_grad(&x, keep, add, sc, s0, d_state_out, d_state_in);
        continue;
      }
      /* The outputs by the algorithm's own normalisation; the final state
       * (the recurrent one) through the recurrence with no output term. */
      if (algo == RETCL_ALGO_PARALLEL) ts_parallel_grad(&x, lg);
      else ts_chunkwise_grad(&x, lg, C);
      if (d_state_out) {
        for (size_t t = 0; t < T; ++t) sc[t] = 0;
        recurrence_grad(&x, keep, add, sc, s0, d_state_out, d_state_in);
      } else if (d_state_in) {
        memset(d_state_in + (b * H + h) * Dk * Dv, 0,
               Dk * Dv * sizeof *d_state_in);
      }
    }
  free(keep);
  free(add);
  free(sc);
}

void ref_retention_torchscale_norms_d(retcl_algorithm algo, const double *q,
                                      const double *k, const double *v,
                                      const float *log_decay, double *norm,
                                      size_t B, size_t T, size_t H, size_t Dk,
                                      size_t Dv, retcl_layout layout,
                                      size_t C) {
  if (C == 0) C = 64;
  for (size_t b = 0; b < B; ++b)
    for (size_t h = 0; h < H; ++h) {
      const head x = {q, k, v, NULL, NULL, NULL, NULL, T, H, Dk, Dv, b, h,
                      layout};
      double *nrm = norm + (b * H + h) * T;
      const double lg = (double)log_decay[h];
      if (algo == RETCL_ALGO_PARALLEL) ts_parallel(&x, lg, NULL, nrm, NULL);
      else if (algo == RETCL_ALGO_CHUNKWISE)
        ts_chunkwise(&x, lg, C, NULL, nrm, NULL, NULL);
      else
        for (size_t t = 0; t < T; ++t) nrm[t] = 1;
    }
}

void ref_retention_torchscale_frozen_d(retcl_algorithm algo, const double *q,
                                       const double *k, const double *v,
                                       const float *log_decay,
                                       const double *norm, double *out,
                                       size_t B, size_t T, size_t H, size_t Dk,
                                       size_t Dv, retcl_layout layout,
                                       size_t C) {
  if (C == 0) C = 64;
  for (size_t b = 0; b < B; ++b)
    for (size_t h = 0; h < H; ++h) {
      const head x = {q, k, v, NULL, NULL, NULL, NULL, T, H, Dk, Dv, b, h,
                      layout};
      const double *nrm = norm + (b * H + h) * T;
      const double lg = (double)log_decay[h];
      if (algo == RETCL_ALGO_CHUNKWISE)
        ts_chunkwise(&x, lg, C, nrm, NULL, NULL, out);
      else
        ts_parallel(&x, lg, nrm, NULL, out);
    }
}
