/* tf_forward.c - one call of the model over a block of tokens: embedding,
 * the pre-norm blocks (attention against the KV cache, GLU FFN), final norm
 * and output projection, all enqueued on the context's queue; the only
 * wait is for the logits at the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tf_internal.h"

static int check_call(const tf_model *m, const tf_cache *c,
                      const int32_t *tokens, size_t B, size_t T, tf_err *e) {
  if (!tokens) return tf_fail(e, "tf_forward: tokens is NULL");
  if (B == 0 || B > (1u << 20) || T == 0)
    return tf_fail(e, "tf_forward: batch = %zu (1..%u) and T = %zu (>= 1)",
                   B, 1u << 20, T);
  for (size_t i = 0; i < B * T; ++i)
    if (tokens[i] < 0 || (size_t)tokens[i] >= m->cfg.vocab)
      return tf_fail(e, "tf_forward: tokens[%zu] = %d is outside [0, %zu)", i,
                     (int)tokens[i], m->cfg.vocab);
  if (c && c->model != m)
    return tf_fail(e, "tf_forward: the cache belongs to another model");
  if (c && c->batch != B)
    return tf_fail(e, "tf_forward: the cache holds %zu sequences, batch is %zu",
                   c->batch, B);
  if ((c ? c->position : 0) + T > UINT32_MAX)
    return tf_fail(e, "tf_forward: positions past 2^32");
  return 0;
}

/* Offsets (floats) of the temporaries in the model's work buffer. */
typedef struct layout {
  size_t x, h, q, k, v, a, g, logits, last, part, total;
} layout;

static layout plan(const tf_model *m, size_t B, size_t T, size_t pos0,
                   int last_only) {
  const size_t bt = B * T, d = m->cfg.d, f = m->cfg.ffn;
  layout o;
  size_t at = 0;
  o.x = at, at += bt * d;
  o.h = at, at += bt * d;
  o.q = at, at += bt * d;
  o.k = at, at += bt * d;
  o.v = at, at += bt * d;
  o.a = at, at += bt * f;
  o.g = at, at += bt * f;
  o.logits = at, at += (last_only ? B : bt) * m->cfg.vocab;
  o.last = at, at += last_only && T > 1 ? B * d : 0;
  o.part = at;
  if (T == 1) {
    size_t splits, chunk;
    tf_decode_plan(m, B, pos0 + 1, &splits, &chunk);
    at += B * m->cfg.heads * splits * (m->head_dim + 2);
  }
  o.total = at;
  return o;
}

/* One pre-norm block on x [B*T, d]. The attention output goes to h (free
 * once q, k, v are projected) and every projection back to width d goes to
 * q (free once attention has read it). */
static int block(tf_model *m, tf_cache *c, size_t l, size_t B, size_t T,
                 const layout *o, tf_err *e) {
  const tf_layer_dev *w = &m->layers[l];
  cl_mem ws = m->work;
  const size_t bt = B * T, d = m->cfg.d, f = m->cfg.ffn, pos0 = c->position;
  /* q, k, v and a, g lie back to back in the work buffer, as the stacked
   * weights do: one launch each when decoding. */
  const retcl_projection qkv[3] = {
      {retcl_buf(w->wqkv, 0), retcl_buf(ws, o->q), d, 1.0f},
      {retcl_buf(w->wqkv, d * d), retcl_buf(ws, o->k), d, 1.0f},
      {retcl_buf(w->wqkv, 2 * d * d), retcl_buf(ws, o->v), d, 1.0f}};
  const retcl_projection ffn_in[2] = {
      {retcl_buf(w->fc1_gate, 0), retcl_buf(ws, o->a), f, 1.0f},
      {retcl_buf(w->fc1_gate, f * d), retcl_buf(ws, o->g), f, 1.0f}};
  if (tf_rms_norm(m, bt, ws, o->x, w->attn_norm, ws, o->h, e) ||
      tf_project(m, bt, d, ws, o->h, 3, qkv, e) ||
      tf_rotate(m, B, T, pos0, 0, ws, o->q, e) ||
      tf_rotate(m, B, T, pos0, 1, ws, o->k, e) ||
      tf_kv_append(m, c, l, T, ws, o->k, ws, o->v, e))
    return -1;
  if (T == 1 ? tf_attn_decode(m, c, l, ws, o->q, ws, o->h, ws, o->part, e)
             : tf_attn_prefill(m, c, l, T, ws, o->q, ws, o->h, e))
    return -1;
  return tf_gemm(m, bt, d, d, ws, o->h, w->wo, ws, o->q, e) ||
         tf_residual(m, bt * d, ws, o->x, ws, o->q, e) ||
         tf_rms_norm(m, bt, ws, o->x, w->ffn_norm, ws, o->h, e) ||
         tf_project(m, bt, d, ws, o->h, 2, ffn_in, e) ||
         tf_glu(m, bt * f, ws, o->a, ws, o->g, e) ||
         tf_gemm(m, bt, d, f, ws, o->a, w->fc2, ws, o->q, e) ||
         tf_residual(m, bt * d, ws, o->x, ws, o->q, e)
             ? -1
             : 0;
}

/* Final norm, output projection and the blocking read of the logits. With
 * only last_logits wanted, each sequence's last row of h is gathered first
 * so just B rows are projected. */
static int head(tf_model *m, size_t B, size_t T, const layout *o,
                float *logits, float *last_logits, tf_err *e) {
  cl_mem ws = m->work;
  const size_t d = m->cfg.d, V = m->cfg.vocab;
  cl_int err;
  if (!logits && !last_logits) {
    err = clFinish(m->queue);
    return err == CL_SUCCESS ? 0 : tf_cl_fail(e, "clFinish", err);
  }
  if (tf_rms_norm(m, B * T, ws, o->x, m->final_norm, ws, o->h, e)) return -1;
  size_t rows = B * T, src = o->h;
  if (!logits && T > 1) {
    for (size_t b = 0; b < B; ++b) {
      err = clEnqueueCopyBuffer(m->queue, ws, ws,
                                (o->h + (b * T + T - 1) * d) * sizeof(float),
                                (o->last + b * d) * sizeof(float),
                                d * sizeof(float), 0, NULL, NULL);
      if (err != CL_SUCCESS) return tf_cl_fail(e, "clEnqueueCopyBuffer", err);
    }
    rows = B, src = o->last;
  }
  if (tf_gemm(m, rows, V, d, ws, src, m->out_proj, ws, o->logits, e)) return -1;
  float *dst = logits ? logits : last_logits;
  err = clEnqueueReadBuffer(m->queue, ws, CL_TRUE, o->logits * sizeof(float),
                            rows * V * sizeof(float), dst, 0, NULL, NULL);
  if (err != CL_SUCCESS) return tf_cl_fail(e, "clEnqueueReadBuffer(logits)", err);
  if (logits && last_logits)
    for (size_t b = 0; b < B; ++b)
      memcpy(last_logits + b * V, logits + (b * T + T - 1) * V, V * sizeof(float));
  return 0;
}

static int run(tf_model *m, tf_cache *c, const int32_t *tokens, size_t B,
               size_t T, float *logits, float *last_logits, tf_err *e) {
  const layout o = plan(m, B, T, c->position, !logits);
  if (o.total > UINT32_MAX)
    return tf_fail(e, "tf_forward: %zu tokens need %zu floats of temporaries, "
                   "more than the kernels' 2^32: run fewer tokens per call",
                   B * T, o.total);
  if (tf_cache_reserve(c, c->position + T, e) ||
      tf_grow(m, &m->work, &m->work_bytes, o.total * sizeof(float), e) ||
      tf_grow(m, &m->tokens, &m->token_bytes, B * T * sizeof(int32_t), e))
    return -1;
  /* Non-blocking: the caller's array stays valid until the final read. */
  cl_int err = clEnqueueWriteBuffer(m->queue, m->tokens, CL_FALSE, 0,
                                    B * T * sizeof(int32_t), tokens, 0, NULL,
                                    NULL);
  if (err != CL_SUCCESS) return tf_cl_fail(e, "clEnqueueWriteBuffer(tokens)", err);
  if (tf_embed(m, B * T, m->work, e)) return -1;
  for (size_t l = 0; l < m->cfg.layers; ++l)
    if (block(m, c, l, B, T, &o, e)) return -1;
  if (head(m, B, T, &o, logits, last_logits, e)) return -1;
  c->position += T;
  return 0;
}

int tf_forward(tf_model *m, tf_cache *cache, const int32_t *tokens,
               size_t batch, size_t T, float *logits, float *last_logits,
               char *err, size_t errlen) {
  tf_err e = {err, errlen};
  if (!m) return tf_fail(&e, "tf_forward: model is NULL");
  if (check_call(m, cache, tokens, batch, T, &e)) return -1;
  tf_cache *c = cache;
  if (!c && tf_cache_create(m, batch, &c, err, errlen)) return -1;
  int rc = run(m, c, tokens, batch, T, logits, last_logits, &e);
  if (rc) clFinish(m->queue); /* nothing of this call is left running */
  if (!cache) tf_cache_destroy(c);
  return rc;
}
