/* tf_model.c - the baseline model's weights on the device: checks of the
 * configuration, uploads, random weights, and what it holds. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tf_internal.h"

static int check_config(const tf_config *c, tf_err *e) {
  if (c->heads == 0 || c->d == 0 || c->d % c->heads)
    return tf_fail(e, "tf_model_create: d = %zu must be a positive multiple "
                   "of heads = %zu", c->d, c->heads);
  const size_t dh = c->d / c->heads;
  if (dh % 2 || dh > 1024)
    return tf_fail(e, "tf_model_create: head_dim = d / heads = %zu must be "
                   "even and at most 1024 (rotary pairs)", dh);
  if (c->ffn == 0 || c->layers == 0 || c->vocab == 0)
    return tf_fail(e, "tf_model_create: ffn = %zu, layers = %zu and vocab = "
                   "%zu must be positive", c->ffn, c->layers, c->vocab);
  if (!(c->eps > 0.0f) || !isfinite(c->eps))
    return tf_fail(e, "tf_model_create: eps = %g must be positive and finite",
                   (double)c->eps);
  if (c->activation != RETCL_ACT_GELU && c->activation != RETCL_ACT_SWISH)
    return tf_fail(e, "tf_model_create: activation = %d is not a "
                   "retcl_activation", (int)c->activation);
  /* The kernels index weights with 32-bit integers. */
  const double biggest = (double)c->d * (double)(c->ffn > c->vocab ? c->ffn : c->vocab);
  if (biggest > (double)UINT32_MAX)
    return tf_fail(e, "tf_model_create: a weight of %.0f floats exceeds 2^32",
                   biggest);
  return 0;
}

static int check_weights(const tf_config *c, const tf_host_weights *w,
                         tf_err *e) {
  if (!w->embed || !w->final_norm || !w->out_proj || !w->layers)
    return tf_fail(e, "tf_model_create: a top-level weight pointer is NULL");
  for (size_t l = 0; l < c->layers; ++l) {
    const tf_layer_host *h = &w->layers[l];
    if (!h->attn_norm || !h->wq || !h->wk || !h->wv || !h->wo ||
        !h->ffn_norm || !h->fc1 || !h->gate || !h->fc2)
      return tf_fail(e, "tf_model_create: a weight of layer %zu is NULL", l);
  }
  return 0;
}

static int upload(tf_model *m, const float *host, size_t n, cl_mem *out,
                  tf_err *e) {
  if (tf_buffer(m, n * sizeof(float), host, out, e)) return -1;
  m->weight_bytes += n * sizeof(float);
  return 0;
}

/* One buffer holding the count host arrays back to back. */
static int upload_stack(tf_model *m, const float *const *host,
                        const size_t *n, size_t count, cl_mem *out,
                        tf_err *e) {
  size_t total = 0;
  for (size_t i = 0; i < count; ++i) total += n[i];
  float *stack = malloc(total * sizeof *stack);
  if (!stack) return tf_fail(e, "tf_model_create: out of host memory");
  for (size_t i = 0, at = 0; i < count; at += n[i++])
    memcpy(stack + at, host[i], n[i] * sizeof *stack);
  const int rc = upload(m, stack, total, out, e);
  free(stack);
  return rc;
}

static int upload_all(tf_model *m, const tf_host_weights *w, tf_err *e) {
  const tf_config *c = &m->cfg;
  const size_t d = c->d, f = c->ffn, V = c->vocab;
  if (upload(m, w->embed, V * d, &m->embed, e) ||
      upload(m, w->final_norm, d, &m->final_norm, e) ||
      upload(m, w->out_proj, V * d, &m->out_proj, e))
    return -1;
  for (size_t l = 0; l < c->layers; ++l) {
    const tf_layer_host *h = &w->layers[l];
    tf_layer_dev *g = &m->layers[l];
    const float *const qkv[] = {h->wq, h->wk, h->wv};
    const size_t qkv_n[] = {d * d, d * d, d * d};
    const float *const fc1_gate[] = {h->fc1, h->gate};
    const size_t fc1_gate_n[] = {f * d, f * d};
    if (upload(m, h->attn_norm, d, &g->attn_norm, e) ||
        upload_stack(m, qkv, qkv_n, 3, &g->wqkv, e) ||
        upload(m, h->wo, d * d, &g->wo, e) ||
        upload(m, h->ffn_norm, d, &g->ffn_norm, e) ||
        upload_stack(m, fc1_gate, fc1_gate_n, 2, &g->fc1_gate, e) ||
        upload(m, h->fc2, d * f, &g->fc2, e))
      return -1;
  }
  return 0;
}

/* Standard RoPE rates θ_i = 10000^(-2i/head_dim), computed in double. */
static int make_rotation(tf_model *m, tf_err *e) {
  const size_t dh = m->head_dim;
  float *theta = malloc(dh / 2 * sizeof *theta);
  if (!theta) return tf_fail(e, "tf_model_create: out of host memory");
  for (size_t i = 0; i < dh / 2; ++i)
    theta[i] = (float)pow(10000.0, -2.0 * (double)i / (double)dh);
  retcl_status st = retcl_rotation_create(m->ctx, dh, theta, 0.0f, &m->rot);
  free(theta);
  return st ? tf_retcl_fail(e, m->ctx, "retcl_rotation_create", st) : 0;
}

int tf_model_create(retcl_context *ctx, const tf_config *cfg,
                    const tf_host_weights *w, tf_model **out, char *err,
                    size_t errlen) {
  tf_err e = {err, errlen};
  if (!out) return tf_fail(&e, "tf_model_create: out is NULL");
  *out = NULL;
  if (!ctx || !cfg || !w)
    return tf_fail(&e, "tf_model_create: %s is NULL",
                   !ctx ? "ctx" : !cfg ? "cfg" : "w");
  if (check_config(cfg, &e) || check_weights(cfg, w, &e)) return -1;
  tf_model *m = calloc(1, sizeof *m);
  if (!m) return tf_fail(&e, "tf_model_create: out of host memory");
  m->ctx = ctx;
  m->clctx = retcl_context_cl_context(ctx);
  m->queue = retcl_context_queue(ctx);
  m->cfg = *cfg;
  m->head_dim = cfg->d / cfg->heads;
  m->layers = calloc(cfg->layers, sizeof *m->layers);
  if (!m->layers) {
    tf_model_destroy(m);
    return tf_fail(&e, "tf_model_create: out of host memory");
  }
  if (tf_runtime_init(m, &e) || make_rotation(m, &e) || upload_all(m, w, &e)) {
    tf_model_destroy(m);
    return -1;
  }
  *out = m;
  return 0;
}

void tf_model_destroy(tf_model *m) {
  if (!m) return;
  cl_mem top[] = {m->embed, m->final_norm, m->out_proj, m->work, m->tokens};
  for (size_t i = 0; i < sizeof top / sizeof top[0]; ++i)
    if (top[i]) clReleaseMemObject(top[i]);
  for (size_t l = 0; m->layers && l < m->cfg.layers; ++l) {
    tf_layer_dev *g = &m->layers[l];
    cl_mem all[] = {g->attn_norm, g->wqkv,     g->wo,
                    g->ffn_norm,  g->fc1_gate, g->fc2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
      if (all[i]) clReleaseMemObject(all[i]);
  }
  free(m->layers);
  retcl_rotation_destroy(m->rot);
  tf_runtime_release(m);
  free(m);
}

size_t tf_model_weight_bytes(const tf_model *m) { return m ? m->weight_bytes : 0; }

size_t tf_model_workspace_bytes(const tf_model *m) {
  return m ? m->work_bytes + m->token_bytes : 0;
}

/* ---- random weights ------------------------------------------------------ */

/* n floats uniform in ±1/sqrt(fan_in), or all 1 when fan_in is 0 (norms),
 * from the library's generator (splitmix64: deterministic in the seed, on
 * every platform). */
static float *random_array(size_t n, size_t fan_in, uint64_t *s) {
  float *a = malloc(n * sizeof *a);
  if (!a) return NULL;
  const double r = fan_in ? 1.0 / sqrt((double)fan_in) : 0.0;
  for (size_t i = 0; i < n; ++i)
    a[i] = fan_in ? (float)((2.0 * retcl_random_uniform(s) - 1.0) * r) : 1.0f;
  return a;
}

static void free_host(tf_host_weights *w, size_t layers) {
  free(w->embed);
  free(w->final_norm);
  free(w->out_proj);
  for (size_t l = 0; w->layers && l < layers; ++l) {
    tf_layer_host *h = &w->layers[l];
    float *all[] = {h->attn_norm, h->wq, h->wk, h->wv, h->wo,
                    h->ffn_norm, h->fc1, h->gate, h->fc2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) free(all[i]);
  }
  free(w->layers);
}

int tf_model_create_random(retcl_context *ctx, const tf_config *cfg,
                           uint64_t seed, tf_model **out, char *err,
                           size_t errlen) {
  tf_err e = {err, errlen};
  if (!out) return tf_fail(&e, "tf_model_create_random: out is NULL");
  *out = NULL;
  if (!ctx || !cfg)
    return tf_fail(&e, "tf_model_create_random: %s is NULL", !ctx ? "ctx" : "cfg");
  if (check_config(cfg, &e)) return -1;
  const size_t d = cfg->d, f = cfg->ffn, V = cfg->vocab;
  uint64_t s = seed;
  tf_host_weights w = {0};
  w.layers = calloc(cfg->layers, sizeof *w.layers);
  /* Every matrix ±1/sqrt(its last dim), the embedding included, as
   * retcl_checkpoint_write_random fills RetCL's (the first RMSNorm makes
   * the embedding's scale irrelevant). */
  w.embed = random_array(V * d, d, &s);
  w.final_norm = random_array(d, 0, &s);
  w.out_proj = random_array(V * d, d, &s);
  int ok = w.layers && w.embed && w.final_norm && w.out_proj;
  for (size_t l = 0; ok && l < cfg->layers; ++l) {
    tf_layer_host *h = &w.layers[l];
    h->attn_norm = random_array(d, 0, &s);
    h->wq = random_array(d * d, d, &s);
    h->wk = random_array(d * d, d, &s);
    h->wv = random_array(d * d, d, &s);
    h->wo = random_array(d * d, d, &s);
    h->ffn_norm = random_array(d, 0, &s);
    h->fc1 = random_array(f * d, d, &s);
    h->gate = random_array(f * d, d, &s);
    h->fc2 = random_array(d * f, f, &s);
    ok = h->attn_norm && h->wq && h->wk && h->wv && h->wo && h->ffn_norm &&
         h->fc1 && h->gate && h->fc2;
  }
  int rc = ok ? tf_model_create(ctx, cfg, &w, out, err, errlen)
              : tf_fail(&e, "tf_model_create_random: out of host memory");
  free_host(&w, cfg->layers);
  return rc;
}
