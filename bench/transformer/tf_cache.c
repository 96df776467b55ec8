/* tf_cache.c - the KV cache: per layer K and V, head-major
 * [batch, H, cap, head_dim], grown by doubling so its memory follows the
 * context (what a Transformer pays per generated token, against RetNet's
 * constant state). */
#include <stdint.h>
#include <stdlib.h>

#include "tf_internal.h"

/* The smallest capacity a cache allocates. */
#define TF_CACHE_MIN_CAP 16

int tf_cache_create(tf_model *m, size_t batch, tf_cache **out, char *err,
                    size_t errlen) {
  tf_err e = {err, errlen};
  if (!out) return tf_fail(&e, "tf_cache_create: out is NULL");
  *out = NULL;
  if (!m) return tf_fail(&e, "tf_cache_create: model is NULL");
  if (batch == 0 || batch > (1u << 20))
    return tf_fail(&e, "tf_cache_create: batch = %zu is outside 1..%u", batch,
                   1u << 20);
  tf_cache *c = calloc(1, sizeof *c);
  if (c) {
    c->k = calloc(m->cfg.layers, sizeof *c->k);
    c->v = calloc(m->cfg.layers, sizeof *c->v);
  }
  if (!c || !c->k || !c->v) {
    tf_cache_destroy(c);
    return tf_fail(&e, "tf_cache_create: out of host memory");
  }
  c->model = m;
  c->batch = batch;
  *out = c;
  return 0;
}

void tf_cache_destroy(tf_cache *c) {
  if (!c) return;
  for (size_t l = 0; c->model && l < c->model->cfg.layers; ++l) {
    if (c->k && c->k[l]) clReleaseMemObject(c->k[l]);
    if (c->v && c->v[l]) clReleaseMemObject(c->v[l]);
  }
  free(c->k);
  free(c->v);
  free(c);
}

size_t tf_cache_position(const tf_cache *c) { return c ? c->position : 0; }

size_t tf_cache_bytes(const tf_cache *c) {
  if (!c) return 0;
  const tf_model *m = c->model;
  return 2 * m->cfg.layers * c->batch * m->cfg.d * c->cap * sizeof(float);
}

/* Grow every layer's K and V to at least `positions` (doubling). All new
 * buffers are made and filled before any old one is let go, so a failure
 * leaves the cache as it was. The used part moves with one rectangular
 * copy per buffer: a row per (sequence, head), position * head_dim floats. */
int tf_cache_reserve(tf_cache *c, size_t positions, tf_err *e) {
  if (positions <= c->cap) return 0;
  tf_model *m = c->model;
  size_t cap = c->cap ? c->cap : TF_CACHE_MIN_CAP;
  while (cap < positions) cap *= 2;
  /* The kernels index a layer's cache with 32-bit integers. */
  if ((double)c->batch * (double)m->cfg.d * (double)cap > (double)UINT32_MAX)
    return tf_fail(e, "tf_forward: a KV cache of %zu sequences x %zu "
                   "positions x d = %zu exceeds 2^32 floats per layer",
                   c->batch, cap, m->cfg.d);
  const size_t L = m->cfg.layers, rows = c->batch * m->cfg.heads,
               row = m->head_dim * sizeof(float);
  cl_mem *fresh = calloc(2 * L, sizeof *fresh);
  if (!fresh) return tf_fail(e, "tf_forward: out of host memory");
  int rc = 0;
  for (size_t i = 0; i < 2 * L && !rc; ++i) {
    rc = tf_buffer(m, rows * cap * row, NULL, &fresh[i], e);
    cl_mem old = i < L ? c->k[i] : c->v[i - L];
    if (!rc && old && c->position > 0) {
      const size_t origin[3] = {0, 0, 0};
      const size_t region[3] = {c->position * row, rows, 1};
      cl_int err = clEnqueueCopyBufferRect(m->queue, old, fresh[i], origin,
                                           origin, region, c->cap * row, 0,
                                           cap * row, 0, 0, NULL, NULL);
      if (err != CL_SUCCESS)
        rc = tf_cl_fail(e, "clEnqueueCopyBufferRect(KV cache growth)", err);
    }
  }
  for (size_t i = 0; i < 2 * L; ++i) {
    cl_mem *slot = i < L ? &c->k[i] : &c->v[i - L];
    cl_mem drop = rc ? fresh[i] : *slot; /* released once the copies ran */
    if (!rc) *slot = fresh[i];
    if (drop) clReleaseMemObject(drop);
  }
  free(fresh);
  if (!rc) c->cap = cap;
  return rc;
}

int tf_cache_fill_synthetic(tf_cache *c, size_t position, char *err,
                            size_t errlen) {
  tf_err e = {err, errlen};
  if (!c) return tf_fail(&e, "tf_cache_fill_synthetic: cache is NULL");
  if (c->position != 0)
    return tf_fail(&e, "tf_cache_fill_synthetic: the cache is not empty");
  int rc = tf_cache_reserve(c, position, &e);
  if (rc) return rc;
  const tf_model *m = c->model;
  /* Small keys keep the softmax well away from overflow. */
  const float value = 0.01f;
  const size_t bytes = c->batch * m->cfg.d * c->cap * sizeof(float);
  for (size_t l = 0; l < m->cfg.layers; ++l) {
    cl_mem both[2] = {c->k[l], c->v[l]};
    for (int i = 0; i < 2; ++i) {
      cl_int code = clEnqueueFillBuffer(m->queue, both[i], &value, sizeof value,
                                        0, bytes, 0, NULL, NULL);
      if (code != CL_SUCCESS) return tf_cl_fail(&e, "clEnqueueFillBuffer", code);
    }
  }
  cl_int code = clFinish(m->queue);
  if (code != CL_SUCCESS) return tf_cl_fail(&e, "clFinish", code);
  c->position = position;
  return 0;
}
