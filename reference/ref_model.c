/* ref_model.c - the torchscale RetNet decoder of docs/design.md §1.6 in double
 * precision, the oracle of the model checks. Written from the design (and
 * torchscale's retnet.py / multiscale_retention.py), not from lib/.
 *
 * Precision: everything is double, intermediates included (the layer runs
 * with round_fp32 off). Rounding Q and K to float before q·k would lose
 * digits wherever the dot product cancels (measured: 4e-6 relative on
 * logits of a 3-layer deepnorm model at T = 1, where retention's output is
 * A·v with A = q·k near 0 and the group norm divides that out); the oracle
 * should not spend the tolerance the library's fp32 needs. */
#include "ref_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref_layer.h"
#include "ref_train_ops.h"
#include "ref_util.h"

static float *fill_weight(size_t out, size_t in, uint64_t *rng) {
  float *w = ref_alloc(out * in);
  const double bound = 1.0 / sqrt((double)in);
  for (size_t i = 0; i < out * in; ++i)
    w[i] = (float)(bound * (2.0 * retcl_random_uniform(rng) - 1.0));
  return w;
}

static float *fill_norm(size_t n, uint64_t *rng) {
  float *w = ref_alloc(n);
  for (size_t i = 0; i < n; ++i)
    w[i] = (float)(1.0 + 0.1 * (2.0 * retcl_random_uniform(rng) - 1.0));
  return w;
}

void ref_model_random(ref_model *m, const retcl_model_config *cfg,
                      int with_rel_pos, uint64_t *rng) {
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  const size_t d = cfg->embed_dim, dv = cfg->value_embed_dim,
               H = cfg->heads, F = cfg->ffn_dim, V = cfg->vocab_size;
  const size_t Dk = d / H;
  /* Embedding rows are read as d-vectors, like out_proj's: same bound. */
  m->embed = fill_weight(V, d, rng);
  m->emb_norm = cfg->layernorm_embedding ? fill_norm(d, rng) : NULL;
  m->layers = calloc(cfg->layers ? cfg->layers : 1, sizeof *m->layers);
  if (!m->layers) abort();
  for (size_t l = 0; l < cfg->layers; ++l) {
    ref_layer *ly = &m->layers[l];
    ly->wq = fill_weight(d, d, rng);
    ly->wk = fill_weight(d, d, rng);
    ly->wv = fill_weight(dv, d, rng);
    ly->wg = fill_weight(dv, d, rng);
    ly->wo = fill_weight(d, dv, rng);
    ly->ret_norm = fill_norm(d, rng);
    ly->fc1 = fill_weight(F, d, rng);
    ly->fc2 = fill_weight(d, F, rng);
    ly->gate = fill_weight(F, d, rng);
    ly->ffn_norm = fill_norm(d, rng);
  }
  m->final_norm = fill_norm(d, rng);
  m->out_proj = cfg->share_embed ? NULL : fill_weight(V, d, rng);
  if (with_rel_pos) {
    /* torchscale's buffers: angle = 1/10000^linspace(0,1,Dk/2) with each
     * value repeated for both members of its pair; decay = log(1-2^(-5-h)),
     * both stored as float. */
    const size_t pairs = Dk / 2;
    m->angle = ref_alloc(Dk);
    for (size_t i = 0; i < pairs; ++i) {
      const double th =
          pairs == 1 ? 1.0 : pow(10000.0, -(double)i / (double)(pairs - 1));
      m->angle[2 * i] = m->angle[2 * i + 1] = (float)th;
    }
    m->decay = ref_alloc(H);
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
      float *all[] = {ly->wq,  ly->wk,  ly->wv,   ly->wg,   ly->wo,
                      ly->ret_norm, ly->fc1, ly->fc2, ly->gate, ly->ffn_norm};
      for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) free(all[i]);
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

float *ref_model_theta(const ref_model *m) {
  /* torchscale stores each pair's angle twice */
  const size_t Dk = m->cfg.embed_dim / m->cfg.heads;
  if (!m->angle) return NULL;
  float *theta = ref_alloc(Dk / 2);
  for (size_t i = 0; i < Dk / 2; ++i) theta[i] = m->angle[2 * i];
  return theta;
}

float *ref_model_log_decay(const ref_model *m) {
  /* float, as the checkpoint buffer and the library hold them */
  float *log_decay = ref_alloc(m->cfg.heads);
  for (size_t h = 0; h < m->cfg.heads; ++h)
    log_decay[h] = m->decay ? m->decay[h]
                            : (float)log(1.0 - pow(2.0, -5.0 - (double)h));
  return log_decay;
}

static double *copy_d(const double *x, size_t n) {
  double *y = ref_alloc_d(n);
  memcpy(y, x, n * sizeof *y);
  return y;
}

void ref_model_forward(const ref_model *m, const int32_t *tokens, size_t B,
                       size_t T, retcl_algorithm algo, size_t chunk,
                       double *logits) {
  ref_model_forward_tape(m, tokens, B, T, algo, chunk, logits, NULL);
}

void ref_model_tape_free(ref_model_tape *t, size_t layers) {
  if (!t) return;
  free(t->x_emb), free(t->x_last), free(t->n_last);
  for (size_t l = 0; t->layers && l < layers; ++l) {
    ref_model_tape_layer *y = &t->layers[l];
    double *all[] = {y->x_in, y->n0, y->msr.q, y->msr.k, y->msr.v, y->msr.g,
                     y->msr.o, y->msr.z, y->x1, y->n1, y->a, y->gate, y->h};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) free(all[i]);
  }
  free(t->layers);
  memset(t, 0, sizeof *t);
}

void ref_model_forward_tape(const ref_model *m, const int32_t *tokens,
                            size_t B, size_t T, retcl_algorithm algo,
                            size_t chunk, double *logits,
                            ref_model_tape *tape) {
  const retcl_model_config *cfg = &m->cfg;
  const size_t d = cfg->embed_dim, dv = cfg->value_embed_dim,
               H = cfg->heads, F = cfg->ffn_dim, V = cfg->vocab_size,
               L = cfg->layers;
  const size_t N = B * T;
  const double eps = (double)cfg->layernorm_eps;
  const double alpha = cfg->deepnorm ? pow(2.0 * (double)L, 0.25) : 1.0;

  if (chunk == 0) chunk = cfg->chunk_size ? cfg->chunk_size : T;

  float *theta = ref_model_theta(m), *log_decay = ref_model_log_decay(m);

  double *x = ref_alloc_d(N * d), *hn = ref_alloc_d(N * d);
  double *y = ref_alloc_d(N * d);
  double *f1 = ref_alloc_d(N * F), *fg = ref_alloc_d(N * F);

  /* Embedding. */
  const double emb_scale = cfg->no_scale_embedding ? 1.0 : sqrt((double)d);
  for (size_t r = 0; r < N; ++r)
    for (size_t i = 0; i < d; ++i)
      x[r * d + i] = emb_scale * m->embed[(size_t)tokens[r] * d + i];
  if (tape) {
    memset(tape, 0, sizeof *tape);
    tape->rows = N;
    tape->chunk = chunk;
    tape->x_emb = copy_d(x, N * d);
    tape->layers = calloc(L ? L : 1, sizeof *tape->layers);
    if (!tape->layers) abort();
  }
  if (m->emb_norm && cfg->layernorm_embedding) {
    rms_norm(x, m->emb_norm, hn, N, d, eps);
    memcpy(x, hn, N * d * sizeof *x);
  }

  /* torchscale: the group norm is RMSNorm(head_dim, eps=layernorm_eps, no
   * affine), the layer's retention form torchscale's, from position 0. */
  const ref_msr_desc md = {B, T, d, dv, H, algo, RETCL_FORM_TORCHSCALE,
                           chunk, 0, eps, theta, 0};
  for (size_t l = 0; l < L; ++l) {
    const ref_layer *ly = &m->layers[l];
    const ref_msr_weights w = {ly->wq, ly->wk, ly->wv, ly->wg, ly->wo};
    ref_model_tape_layer *kept = tape ? &tape->layers[l] : NULL;
    rms_norm(x, ly->ret_norm, hn, N, d, eps);
    if (kept) {
      kept->x_in = copy_d(x, N * d);
      kept->n0 = copy_d(hn, N * d);
      kept->msr = (ref_msr_saved){ref_alloc_d(N * d),  ref_alloc_d(N * d),
                                  ref_alloc_d(N * dv), ref_alloc_d(N * dv),
                                  ref_alloc_d(N * dv), ref_alloc_d(N * dv)};
    }
    ref_msr_forward_saved(&md, &w, log_decay, hn, NULL, y, NULL,
                          kept ? &kept->msr : NULL);
    for (size_t i = 0; i < N * d; ++i) x[i] = alpha * x[i] + y[i];

    /* GLU feed-forward. */
    rms_norm(x, ly->ffn_norm, hn, N, d, eps);
    ref_linear(hn, ly->fc1, N, F, d, 1.0, f1);
    ref_linear(hn, ly->gate, N, F, d, 1.0, fg);
    if (kept) {
      kept->x1 = copy_d(x, N * d);
      kept->n1 = copy_d(hn, N * d);
      kept->a = copy_d(f1, N * F);
      kept->gate = copy_d(fg, N * F);
    }
    for (size_t i = 0; i < N * F; ++i)
      f1[i] = ref_activation(cfg->activation, f1[i]) * fg[i];
    if (kept) kept->h = copy_d(f1, N * F);
    ref_linear(f1, ly->fc2, N, d, F, 1.0, y);
    for (size_t i = 0; i < N * d; ++i) x[i] = alpha * x[i] + y[i];
  }

  rms_norm(x, m->final_norm, hn, N, d, eps);
  if (tape) {
    tape->x_last = copy_d(x, N * d);
    tape->n_last = copy_d(hn, N * d);
  }
  ref_linear(hn, cfg->share_embed ? m->embed : m->out_proj, N, V, d, 1.0,
             logits);

  free(theta);
  free(log_decay);
  free(x);
  free(hn);
  free(y);
  free(f1);
  free(fg);
}
