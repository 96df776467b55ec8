/* tf_reference.h - double-precision reference of the Transformer baseline,
 * written from the math in bench/transformer/transformer.h and nothing
 * else (no code shared with the kernels), plus random host weights.
 * Header-only: tests/CMakeLists.txt builds each baseline/test_*.c alone. */
#ifndef RETCL_TESTS_TF_REFERENCE_H
#define RETCL_TESTS_TF_REFERENCE_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "transformer.h"

/* ---- random host weights ------------------------------------------------ */

/* n floats uniform in ±1/sqrt(fan_in). */
static float *ref_uniform(size_t n, size_t fan_in) {
  float *a = tu_alloc(n);
  const double r = 1.0 / sqrt((double)fan_in);
  tu_fill_uniform(a, n, -r, r);
  return a;
}

/* Norm weights in [0.5, 1.5], not 1: a norm that ignored its weight, or
 * used another layer's, would show. */
static float *ref_norm_weight(size_t d) {
  float *a = tu_alloc(d);
  tu_fill_uniform(a, d, 0.5, 1.5);
  return a;
}

static void ref_weights_random(const tf_config *c, tf_host_weights *w) {
  const size_t d = c->d, f = c->ffn, V = c->vocab;
  w->embed = ref_uniform(V * d, 1); /* ±1: embeddings are O(1) */
  w->final_norm = ref_norm_weight(d);
  w->out_proj = ref_uniform(V * d, d);
  w->layers = calloc(c->layers, sizeof *w->layers);
  for (size_t l = 0; l < c->layers; ++l) {
    tf_layer_host *h = &w->layers[l];
    h->attn_norm = ref_norm_weight(d);
    h->wq = ref_uniform(d * d, d);
    h->wk = ref_uniform(d * d, d);
    h->wv = ref_uniform(d * d, d);
    h->wo = ref_uniform(d * d, d);
    h->ffn_norm = ref_norm_weight(d);
    h->fc1 = ref_uniform(f * d, d);
    h->gate = ref_uniform(f * d, d);
    h->fc2 = ref_uniform(d * f, f);
  }
}

static void ref_weights_free(const tf_config *c, tf_host_weights *w) {
  for (size_t l = 0; l < c->layers; ++l) {
    tf_layer_host *h = &w->layers[l];
    float *all[] = {h->attn_norm, h->wq, h->wk, h->wv, h->wo,
                    h->ffn_norm, h->fc1, h->gate, h->fc2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) free(all[i]);
  }
  free(w->layers);
  free(w->embed);
  free(w->final_norm);
  free(w->out_proj);
}

/* Floats in the weights: what tf_model_weight_bytes must be 4 times. */
static size_t ref_weight_count(const tf_config *c) {
  const size_t d = c->d, f = c->ffn, V = c->vocab;
  return 2 * V * d + d + c->layers * (4 * d * d + 2 * d + 3 * f * d);
}

/* ---- the model's math in double ------------------------------------------ */

/* y[n, :] = RMSNorm(x[n, :]; w) over rows of d. */
static void ref_rms(const double *x, const float *w, size_t rows, size_t d,
                    double eps, double *y) {
  for (size_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (size_t i = 0; i < d; ++i) ss += x[r * d + i] * x[r * d + i];
    const double inv = 1.0 / sqrt(ss / (double)d + eps);
    for (size_t i = 0; i < d; ++i) y[r * d + i] = x[r * d + i] * inv * w[i];
  }
}

/* y[rows, N] = x[rows, K] W[N, K]ᵀ */
static void ref_linear(const double *x, const float *W, size_t rows, size_t N,
                       size_t K, double *y) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t n = 0; n < N; ++n) {
      double s = 0;
      for (size_t k = 0; k < K; ++k) s += x[r * K + k] * (double)W[n * K + k];
      y[r * N + n] = s;
    }
}

/* Standard RoPE on rows [N, H, Dh] at positions 0..N-1. */
static void ref_rope(double *x, size_t N, size_t H, size_t Dh) {
  for (size_t n = 0; n < N; ++n)
    for (size_t h = 0; h < H; ++h)
      for (size_t i = 0; i < Dh / 2; ++i) {
        const double theta = pow(10000.0, -2.0 * (double)i / (double)Dh);
        const double c = cos((double)n * theta), s = sin((double)n * theta);
        double *p = x + (n * H + h) * Dh + 2 * i;
        const double a = p[0], b = p[1];
        p[0] = a * c - b * s;
        p[1] = b * c + a * s;
      }
}

/* Causal softmax attention of one sequence: o[N, H, Dh]. */
static void ref_attention(const double *q, const double *k, const double *v,
                          size_t N, size_t H, size_t Dh, double *o) {
  double *p = tu_alloc_d(N);
  const double scale = 1.0 / sqrt((double)Dh);
  for (size_t h = 0; h < H; ++h)
    for (size_t t = 0; t < N; ++t) {
      double mx = -INFINITY, sum = 0;
      for (size_t j = 0; j <= t; ++j) {
        double s = 0;
        for (size_t i = 0; i < Dh; ++i)
          s += q[(t * H + h) * Dh + i] * k[(j * H + h) * Dh + i];
        p[j] = s * scale;
        if (p[j] > mx) mx = p[j];
      }
      for (size_t j = 0; j <= t; ++j) sum += (p[j] = exp(p[j] - mx));
      for (size_t i = 0; i < Dh; ++i) {
        double a = 0;
        for (size_t j = 0; j <= t; ++j) a += p[j] * v[(j * H + h) * Dh + i];
        o[(t * H + h) * Dh + i] = a / sum;
      }
    }
  free(p);
}

static double ref_act(retcl_activation act, double x) {
  return act == RETCL_ACT_SWISH ? x / (1.0 + exp(-x))
                                : 0.5 * x * erfc(-x / sqrt(2.0));
}

/* Logits [B, N, vocab] of tokens [B, N], every sequence from position 0. */
static void ref_forward(const tf_config *c, const tf_host_weights *w,
                        const int32_t *tokens, size_t B, size_t N,
                        double *logits) {
  const size_t d = c->d, f = c->ffn, V = c->vocab, H = c->heads, Dh = d / H;
  double *x = tu_alloc_d(N * d), *h = tu_alloc_d(N * d), *q = tu_alloc_d(N * d),
         *k = tu_alloc_d(N * d), *v = tu_alloc_d(N * d), *o = tu_alloc_d(N * d),
         *y = tu_alloc_d(N * d), *a = tu_alloc_d(N * f), *g = tu_alloc_d(N * f);
  for (size_t b = 0; b < B; ++b) {
    for (size_t n = 0; n < N; ++n)
      for (size_t i = 0; i < d; ++i)
        x[n * d + i] = w->embed[(size_t)tokens[b * N + n] * d + i];
    for (size_t l = 0; l < c->layers; ++l) {
      const tf_layer_host *L = &w->layers[l];
      ref_rms(x, L->attn_norm, N, d, c->eps, h);
      ref_linear(h, L->wq, N, d, d, q);
      ref_linear(h, L->wk, N, d, d, k);
      ref_linear(h, L->wv, N, d, d, v);
      ref_rope(q, N, H, Dh);
      ref_rope(k, N, H, Dh);
      ref_attention(q, k, v, N, H, Dh, o);
      ref_linear(o, L->wo, N, d, d, y);
      for (size_t i = 0; i < N * d; ++i) x[i] += y[i];
      ref_rms(x, L->ffn_norm, N, d, c->eps, h);
      ref_linear(h, L->fc1, N, f, d, a);
      ref_linear(h, L->gate, N, f, d, g);
      for (size_t i = 0; i < N * f; ++i) a[i] = ref_act(c->activation, a[i]) * g[i];
      ref_linear(a, L->fc2, N, d, f, y);
      for (size_t i = 0; i < N * d; ++i) x[i] += y[i];
    }
    ref_rms(x, w->final_norm, N, d, c->eps, h);
    ref_linear(h, w->out_proj, N, V, d, logits + b * N * V);
  }
  double *all[] = {x, h, q, k, v, o, y, a, g};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) free(all[i]);
}

#endif
