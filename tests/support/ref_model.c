/* ref_model.c - the torchscale RetNet decoder of DESIGN 1.6 in double
 * precision, the oracle of the model tests. Written from the design (and
 * torchscale's retnet.py / multiscale_retention.py), not from lib/.
 *
 * Precision: everything is double, intermediates included. The existing
 * references of rotation, retention and group norm (reference.h,
 * ref_group_norm.h) read float inputs, and rounding Q and K to float before
 * q·k loses digits wherever the dot product cancels (measured: 4e-6
 * relative on logits of a 3-layer deepnorm model at T = 1, where
 * retention's output is A·v with A = q·k near 0 and the group norm divides
 * that out). The oracle should not spend the tolerance the library's fp32
 * needs, so this file restates those three steps for double inputs, each
 * as DESIGN 1.1, 1.4 and 1.5 say; test_ref_model checks each one against
 * the shared reference on float-valued inputs, so there is still one
 * statement of each formula that everything is tied to. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref_model.h"
#include "testutil.h"

/* The double-input steps, exported (not in ref_model.h, which is shared)
 * only so that test_ref_model can compare them with reference.h and
 * ref_group_norm.h. All tensors token-major [B,T,H,D]. */
void ref_model_rotate_d(double *x, size_t B, size_t T, size_t H, size_t Dk,
                        const float *theta);
void ref_model_retention_d(retcl_algorithm algo, const double *q,
                           const double *k, const double *v,
                           const float *log_decay, double *out, size_t B,
                           size_t T, size_t H, size_t Dk, size_t Dv, size_t C);
void ref_model_group_norm_swish_d(const double *x, const double *g,
                                  double *out, size_t rows, size_t Dv,
                                  double eps);

/* DESIGN 1.1 at positions 0..T-1, in place; θ_i = theta[i] or the formula,
 * the angle n·θ_i in long double as ref_rotate does. */
void ref_model_rotate_d(double *x, size_t B, size_t T, size_t H, size_t Dk,
                        const float *theta) {
  const size_t pairs = Dk / 2;
  for (size_t b = 0; b < B; ++b)
    for (size_t t = 0; t < T; ++t)
      for (size_t h = 0; h < H; ++h)
        for (size_t i = 0; i < pairs; ++i) {
          const long double th =
              theta ? (long double)theta[i]
              : pairs == 1
                  ? 1.0L
                  : powl(10000.0L, -(long double)i / (long double)(pairs - 1));
          const long double angle = (long double)t * th;
          const double c = (double)cosl(angle), s = (double)sinl(angle);
          double *p = x + ((b * T + t) * H + h) * Dk + 2 * i;
          const double x0 = p[0], x1 = p[1];
          p[0] = x0 * c - x1 * s;
          p[1] = x1 * c + x0 * s;
        }
}

/* Σ_{j<n} g^j, with the powers formed as exp(j·log g) (DESIGN 1.2). */
static double decay_sum(double lg, size_t n) {
  double s = 0;
  for (size_t j = 0; j < n; ++j) s += exp((double)j * lg);
  return s;
}

/* One (b, h) of DESIGN 1.4, each algorithm literally as stated there. */
typedef struct head {
  const double *q, *k, *v;
  double *out;
  size_t T, H, Dk, Dv, b, h;
} head;

static const double *row_q(const head *x, size_t t) {
  return x->q + ((x->b * x->T + t) * x->H + x->h) * x->Dk;
}
static const double *row_k(const head *x, size_t t) {
  return x->k + ((x->b * x->T + t) * x->H + x->h) * x->Dk;
}
static const double *row_v(const head *x, size_t t) {
  return x->v + ((x->b * x->T + t) * x->H + x->h) * x->Dv;
}
static double *row_o(const head *x, size_t t) {
  return x->out + ((x->b * x->T + t) * x->H + x->h) * x->Dv;
}
static double dot(const double *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

/* M_ts = g^(t-s) / sqrt(Σ_{s'≤t} g^(t-s')); a_t = clamp(Σ|A|, 1, 5e4). */
static void ts_parallel(const head *x, double lg, double *A) {
  for (size_t t = 0; t < x->T; ++t) {
    const double norm = sqrt(decay_sum(lg, t + 1));
    double a = 0;
    for (size_t s = 0; s <= t; ++s) {
      A[s] = dot(row_q(x, t), row_k(x, s), x->Dk) *
             exp((double)(t - s) * lg) / norm;
      a += fabs(A[s]);
    }
    a = a < 1 ? 1 : a > 5e4 ? 5e4 : a;
    double *o = row_o(x, t);
    for (size_t j = 0; j < x->Dv; ++j) {
      double sum = 0;
      for (size_t s = 0; s <= t; ++s) sum += A[s] * row_v(x, s)[j];
      o[j] = sum / a;
    }
  }
}

/* c_t = c_{t-1} g + 1 (c_0 = 0, so c_1 = 1 and S_1 = k_1ᵀ v_1);
 * S_t = S_{t-1} g sqrt(c_{t-1}/c_t) + k_tᵀ v_t / sqrt(c_t); o_t = q_t S_t. */
static void ts_recurrent(const head *x, double lg, double *S) {
  const size_t Dk = x->Dk, Dv = x->Dv;
  const double g = exp(lg);
  double c = 0;
  memset(S, 0, Dk * Dv * sizeof *S);
  for (size_t t = 0; t < x->T; ++t) {
    const double c_new = c * g + 1;
    const double keep = g * sqrt(c / c_new), add = 1 / sqrt(c_new);
    const double *k = row_k(x, t), *v = row_v(x, t), *q = row_q(x, t);
    for (size_t i = 0; i < Dk; ++i)
      for (size_t j = 0; j < Dv; ++j)
        S[i * Dv + j] = S[i * Dv + j] * keep + k[i] * v[j] * add;
    c = c_new;
    double *o = row_o(x, t);
    for (size_t j = 0; j < Dv; ++j) {
      double sum = 0;
      for (size_t i = 0; i < Dk; ++i) sum += q[i] * S[i * Dv + j];
      o[j] = sum;
    }
  }
}

/* Chunks of C; A_ij = (q_i·k_j) g^(i-j) / s_i, a_i = max(1, Σ|A_ij|),
 * m_i = max(a_i, r), o_i = (Σ A_ij v_j + ξ_i q_i R) / m_i; then
 * R ← g^C R + Σ_j k_jᵀ ζ_j v_j and r ← max(1, largest column abs-sum of R).
 * A short last chunk keeps the constants of C (torchscale zero-pads). */
static void ts_chunkwise(const head *x, double lg, size_t C, double *R,
                         double *A) {
  const size_t Dk = x->Dk, Dv = x->Dv;
  const double sigma = decay_sum(lg, C), delta = exp((double)C * lg);
  double r = 1;
  memset(R, 0, Dk * Dv * sizeof *R);
  for (size_t c0 = 0; c0 < x->T; c0 += C) {
    const size_t n = x->T - c0 < C ? x->T - c0 : C;
    for (size_t i = 0; i < n; ++i) {
      const double s_i = sqrt(decay_sum(lg, i + 1));
      const double xi = exp((double)(i + 1) * lg) * sigma / s_i;
      const double *q = row_q(x, c0 + i);
      double a = 0;
      for (size_t j = 0; j <= i; ++j) {
        A[j] = dot(q, row_k(x, c0 + j), Dk) * exp((double)(i - j) * lg) / s_i;
        a += fabs(A[j]);
      }
      a = a < 1 ? 1 : a;
      const double m = a > r ? a : r;
      double *o = row_o(x, c0 + i);
      for (size_t j = 0; j < Dv; ++j) {
        double inner = 0, cross = 0;
        for (size_t s = 0; s <= i; ++s) inner += A[s] * row_v(x, c0 + s)[j];
        for (size_t d = 0; d < Dk; ++d) cross += q[d] * R[d * Dv + j];
        o[j] = (inner + xi * cross) / m;
      }
    }
    for (size_t d = 0; d < Dk; ++d)
      for (size_t j = 0; j < Dv; ++j) {
        double add = 0;
        for (size_t s = 0; s < n; ++s)
          add += row_k(x, c0 + s)[d] * row_v(x, c0 + s)[j] *
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

void ref_model_retention_d(retcl_algorithm algo, const double *q,
                           const double *k, const double *v,
                           const float *log_decay, double *out, size_t B,
                           size_t T, size_t H, size_t Dk, size_t Dv,
                           size_t C) {
  double *S = tu_alloc_d(Dk * Dv), *A = tu_alloc_d(T > C ? T : C);
  for (size_t b = 0; b < B; ++b)
    for (size_t h = 0; h < H; ++h) {
      const head x = {q, k, v, out, T, H, Dk, Dv, b, h};
      const double lg = (double)log_decay[h];
      if (algo == RETCL_ALGO_RECURRENT)
        ts_recurrent(&x, lg, S);
      else if (algo == RETCL_ALGO_CHUNKWISE)
        ts_chunkwise(&x, lg, C, S, A);
      else
        ts_parallel(&x, lg, A);
    }
  free(S);
  free(A);
}

/* DESIGN 1.5 as torchscale's retention uses it: RMS over each row of Dv,
 * no affine, then swish(g) ⊙ y. */
void ref_model_group_norm_swish_d(const double *x, const double *g,
                                  double *out, size_t rows, size_t Dv,
                                  double eps) {
  for (size_t r = 0; r < rows; ++r) {
    const double *xr = x + r * Dv, *gr = g + r * Dv;
    double ss = 0;
    for (size_t j = 0; j < Dv; ++j) ss += xr[j] * xr[j];
    const double inv = 1.0 / sqrt(ss / (double)Dv + eps);
    for (size_t j = 0; j < Dv; ++j)
      out[r * Dv + j] = gr[j] / (1.0 + exp(-gr[j])) * (xr[j] * inv);
  }
}

static float *fill_weight(size_t out, size_t in) {
  float *w = tu_alloc(out * in);
  const double bound = 1.0 / sqrt((double)in);
  tu_fill_uniform(w, out * in, -bound, bound);
  return w;
}

static float *fill_norm(size_t n) {
  float *w = tu_alloc(n);
  for (size_t i = 0; i < n; ++i) w[i] = (float)(1.0 + tu_uniform(-0.1, 0.1));
  return w;
}

void ref_model_random(ref_model *m, const retcl_model_config *cfg,
                      int with_rel_pos) {
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  const size_t d = cfg->embed_dim, dv = cfg->value_embed_dim,
               H = cfg->heads, F = cfg->ffn_dim, V = cfg->vocab_size;
  const size_t Dk = d / H;
  /* Embedding rows are read as d-vectors, like out_proj's: same bound. */
  m->embed = fill_weight(V, d);
  m->emb_norm = cfg->layernorm_embedding ? fill_norm(d) : NULL;
  m->layers = calloc(cfg->layers, sizeof *m->layers);
  for (size_t l = 0; l < cfg->layers; ++l) {
    ref_layer *ly = &m->layers[l];
    ly->wq = fill_weight(d, d);
    ly->wk = fill_weight(d, d);
    ly->wv = fill_weight(dv, d);
    ly->wg = fill_weight(dv, d);
    ly->wo = fill_weight(d, dv);
    ly->ret_norm = fill_norm(d);
    ly->fc1 = fill_weight(F, d);
    ly->fc2 = fill_weight(d, F);
    ly->gate = fill_weight(F, d);
    ly->ffn_norm = fill_norm(d);
  }
  m->final_norm = fill_norm(d);
  m->out_proj = cfg->share_embed ? NULL : fill_weight(V, d);
  if (with_rel_pos) {
    /* torchscale's buffers: angle = 1/10000^linspace(0,1,Dk/2) with each
     * value repeated for both members of its pair; decay = log(1-2^(-5-h)),
     * both stored as float. */
    const size_t pairs = Dk / 2;
    m->angle = tu_alloc(Dk);
    for (size_t i = 0; i < pairs; ++i) {
      const double th =
          pairs == 1 ? 1.0 : pow(10000.0, -(double)i / (double)(pairs - 1));
      m->angle[2 * i] = m->angle[2 * i + 1] = (float)th;
    }
    m->decay = tu_alloc(H);
    for (size_t h = 0; h < H; ++h)
      m->decay[h] = (float)log(1.0 - pow(2.0, -5.0 - (double)h));
  }
}

void ref_model_free(ref_model *m) {
  if (!m) return;
  free(m->embed);
  free(m->emb_norm);
  free(m->final_norm);
  free(m->out_proj);
  free(m->angle);
  free(m->decay);
  if (m->layers)
    for (size_t l = 0; l < m->cfg.layers; ++l) {
      ref_layer *ly = &m->layers[l];
      free(ly->wq);
      free(ly->wk);
      free(ly->wv);
      free(ly->wg);
      free(ly->wo);
      free(ly->ret_norm);
      free(ly->fc1);
      free(ly->fc2);
      free(ly->gate);
      free(ly->ffn_norm);
    }
  free(m->layers);
  memset(m, 0, sizeof *m);
}

/* y[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) * w for n rows of d. */
static void rms_norm(const double *x, const float *w, double *y, size_t n,
                     size_t d, double eps) {
  for (size_t r = 0; r < n; ++r) {
    const double *xr = x + r * d;
    double ss = 0;
    for (size_t i = 0; i < d; ++i) ss += xr[i] * xr[i];
    const double inv = 1.0 / sqrt(ss / (double)d + eps);
    for (size_t i = 0; i < d; ++i) y[r * d + i] = xr[i] * inv * w[i];
  }
}

/* y[r, o] = Σ_i W[o*in + i] x[r, i] (torch Linear, no bias), n rows. */
static void linear(const double *x, const float *W, double *y, size_t n,
                   size_t in, size_t out) {
  for (size_t r = 0; r < n; ++r)
    for (size_t o = 0; o < out; ++o) {
      const float *wr = W + o * in;
      double s = 0;
      for (size_t i = 0; i < in; ++i) s += wr[i] * x[r * in + i];
      y[r * out + o] = s;
    }
}

static double act_fn(retcl_activation a, double x) {
  if (a == RETCL_ACT_SWISH) return x / (1.0 + exp(-x));
  return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

void ref_model_forward(const ref_model *m, const int32_t *tokens, size_t B,
                       size_t T, retcl_algorithm algo, size_t chunk,
                       double *logits) {
  const retcl_model_config *cfg = &m->cfg;
  const size_t d = cfg->embed_dim, dv = cfg->value_embed_dim,
               H = cfg->heads, F = cfg->ffn_dim, V = cfg->vocab_size,
               L = cfg->layers;
  const size_t Dk = d / H, Dv = dv / H, N = B * T;
  const double eps = (double)cfg->layernorm_eps;
  const double alpha = cfg->deepnorm ? pow(2.0 * (double)L, 0.25) : 1.0;

  /* chunk 0 takes the config's, as retcl_model_forward does. */
  if (chunk == 0) chunk = cfg->chunk_size ? cfg->chunk_size : T;

  /* Per-pair angles (torchscale stores each twice) and log decays (float,
   * as the checkpoint buffer and the library hold them). */
  float *theta = NULL;
  if (m->angle) {
    theta = tu_alloc(Dk / 2);
    for (size_t i = 0; i < Dk / 2; ++i) theta[i] = m->angle[2 * i];
  }
  float *log_decay = tu_alloc(H);
  for (size_t h = 0; h < H; ++h)
    log_decay[h] = m->decay ? m->decay[h]
                            : (float)log(1.0 - pow(2.0, -5.0 - (double)h));

  double *x = tu_alloc_d(N * d), *hn = tu_alloc_d(N * d);
  double *q = tu_alloc_d(N * d), *k = tu_alloc_d(N * d);
  double *v = tu_alloc_d(N * dv), *g = tu_alloc_d(N * dv);
  double *ret = tu_alloc_d(N * dv), *gn = tu_alloc_d(N * dv);
  double *y = tu_alloc_d(N * d);
  double *f1 = tu_alloc_d(N * F), *fg = tu_alloc_d(N * F);

  /* Embedding. */
  const double emb_scale = cfg->no_scale_embedding ? 1.0 : sqrt((double)d);
  for (size_t r = 0; r < N; ++r)
    for (size_t i = 0; i < d; ++i)
      x[r * d + i] = emb_scale * m->embed[(size_t)tokens[r] * d + i];
  if (m->emb_norm && cfg->layernorm_embedding) {
    rms_norm(x, m->emb_norm, hn, N, d, eps);
    memcpy(x, hn, N * d * sizeof *x);
  }

  for (size_t l = 0; l < L; ++l) {
    const ref_layer *ly = &m->layers[l];
    /* Multi-scale retention. Rows are (b, t), columns h*D + j: the
     * token-major [B,T,H,D] layout the steps above take. */
    rms_norm(x, ly->ret_norm, hn, N, d, eps);
    linear(hn, ly->wq, q, N, d, d);
    linear(hn, ly->wk, k, N, d, d);
    linear(hn, ly->wv, v, N, d, dv);
    linear(hn, ly->wg, g, N, d, dv);
    /* K · Dk^-1/2 before rotating, as torchscale does (the rotation is
     * linear, so the order is immaterial). */
    const double kscale = 1.0 / sqrt((double)Dk);
    for (size_t i = 0; i < N * d; ++i) k[i] *= kscale;
    ref_model_rotate_d(q, B, T, H, Dk, theta);
    ref_model_rotate_d(k, B, T, H, Dk, theta);
    ref_model_retention_d(algo, q, k, v, log_decay, ret, B, T, H, Dk, Dv,
                          chunk);
    /* torchscale: RMSNorm(head_dim, eps=layernorm_eps, no affine), then
     * swish(g) * normed. */
    ref_model_group_norm_swish_d(ret, g, gn, N * H, Dv, eps);
    linear(gn, ly->wo, y, N, dv, d);
    for (size_t i = 0; i < N * d; ++i) x[i] = alpha * x[i] + y[i];

    /* GLU feed-forward. */
    rms_norm(x, ly->ffn_norm, hn, N, d, eps);
    linear(hn, ly->fc1, f1, N, d, F);
    linear(hn, ly->gate, fg, N, d, F);
    for (size_t i = 0; i < N * F; ++i)
      f1[i] = act_fn(cfg->activation, f1[i]) * fg[i];
    linear(f1, ly->fc2, y, N, F, d);
    for (size_t i = 0; i < N * d; ++i) x[i] = alpha * x[i] + y[i];
  }

  rms_norm(x, m->final_norm, hn, N, d, eps);
  linear(hn, cfg->share_embed ? m->embed : m->out_proj, logits, N, d, V);

  free(theta);
  free(log_decay);
  free(x);
  free(hn);
  free(q);
  free(k);
  free(v);
  free(g);
  free(ret);
  free(gn);
  free(y);
  free(f1);
  free(fg);
}
