/* decode_state.c - decode states (retcl_decode_state_*): per-layer
 * retention states of a batch of sequences and their position, and the
 * copy that hands a state between a whole or sequence-split model and a
 * heads-split one. The pool's slots (pool.c) are made the same way. */
#include "model/model.h"
#include "ops/limits.h"
#include "runtime/context.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <stdio.h>
#include <stdlib.h>

retcl_status retcl__model_states_alloc(retcl_model *model, const char *op,
                                       const char *what, size_t count,
                                       size_t *layer_elems, cl_mem *states) {
  retcl_context *ctx = model->ctx;
  retcl_status st = retcl__check_dim(ctx, op, what, count, 1, 1 << 20);
  if (st) return st;
  const retcl_model_config *c = &model->cfg;
  /* A heads-split model's states hold its own heads. */
  const size_t per_sequence = model->heads * (c->embed_dim / c->heads) *
                              (c->value_embed_dim / c->heads);
  const size_t per_layer = retcl__mul(count, per_sequence);
  const size_t total = retcl__mul(per_layer, c->layers);
  if (total > RETCL_MAX_INDEX)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: %zu %s need %zu floats of states; the kernels "
                       "address at most %zu in one buffer",
                       op, count, what, total, (size_t)RETCL_MAX_INDEX);
  cl_int err = CL_SUCCESS;
  *states = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE,
                           total * sizeof(float), NULL, &err);
  if (!*states) {
    char call[96];
    snprintf(call, sizeof call, "%s: clCreateBuffer(states)", op);
    return retcl__cl_fail(ctx, call, err);
  }
  *layer_elems = per_layer;
  return RETCL_SUCCESS;
}

retcl_status retcl_decode_state_create(retcl_model *model, size_t batch,
                                       retcl_decode_state **out) {
  if (!model) return RETCL_ERROR_INVALID_ARGUMENT;
  retcl_context *ctx = model->ctx;
  retcl__clear_error(ctx);
  const char *op = "retcl_decode_state_create";
  if (!out)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: out is NULL", op);
  *out = NULL;
  retcl_decode_state *s = calloc(1, sizeof *s);
  if (!s) return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host", op);
  const retcl_status st = retcl__model_states_alloc(
      model, op, "batch", batch, &s->layer_elems, &s->states);
  if (st) {
    free(s);
    return st;
  }
  s->model = model;
  s->batch = batch;
  *out = s;
  return RETCL_SUCCESS;
}

void retcl_decode_state_destroy(retcl_decode_state *s) {
  if (!s) return;
  clReleaseMemObject(s->states);
  free(s);
}

size_t retcl_decode_state_position(const retcl_decode_state *s) {
  return s ? s->position : 0;
}

size_t retcl_decode_state_bytes(const retcl_decode_state *s) {
  return s ? s->model->cfg.layers * s->layer_elems * sizeof(float) : 0;
}

retcl_status retcl_decode_state_copy(const retcl_decode_state *from,
                                     retcl_decode_state *to) {
  if (!from || !to) {
    const retcl_decode_state *known = from ? from : to;
    if (!known) return RETCL_ERROR_INVALID_ARGUMENT;
    return retcl__fail(known->model->ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "retcl_decode_state_copy: %s is NULL",
                       from ? "to" : "from");
  }
  const retcl_model *fm = from->model, *tm = to->model;
  retcl_context *ctx = tm->ctx;
  retcl__clear_error(ctx);
  const char *op = "retcl_decode_state_copy";
  const retcl_model_config *a = &fm->cfg, *b = &tm->cfg;
  if (fm->ctx != tm->ctx)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: the states belong to different contexts", op);
  if (a->layers != b->layers || a->heads != b->heads ||
      a->embed_dim != b->embed_dim || a->value_embed_dim != b->value_embed_dim)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: the models differ (layers %zu/%zu, heads %zu/%zu, "
                       "embed_dim %zu/%zu, value_embed_dim %zu/%zu)",
                       op, a->layers, b->layers, a->heads, b->heads,
                       a->embed_dim, b->embed_dim, a->value_embed_dim,
                       b->value_embed_dim);
  if (from->batch != to->batch)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: from holds %zu sequences, to %zu", op, from->batch,
                       to->batch);
  if (tm->head0 < fm->head0 || tm->head0 + tm->heads > fm->head0 + fm->heads)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: to holds heads [%zu, %zu) but from only [%zu, %zu)",
                       op, tm->head0, tm->head0 + tm->heads, fm->head0,
                       fm->head0 + fm->heads);
  /* [L, B, H, Dk, Dv]: each (layer, sequence) is one run of to's heads. */
  const size_t head = (a->embed_dim / a->heads) *
                      (a->value_embed_dim / a->heads) * sizeof(float);
  for (size_t l = 0; l < a->layers; ++l)
    for (size_t i = 0; i < from->batch; ++i) {
      const size_t src = l * from->layer_elems * sizeof(float) +
                         (i * fm->heads + tm->head0 - fm->head0) * head,
                   dst = l * to->layer_elems * sizeof(float) +
                         i * tm->heads * head;
      const cl_int err =
          clEnqueueCopyBuffer(ctx->queue, from->states, to->states, src, dst,
                              tm->heads * head, 0, NULL, NULL);
      if (err != CL_SUCCESS)
        return retcl__cl_fail(ctx, "retcl_decode_state_copy: "
                                   "clEnqueueCopyBuffer", err);
    }
  to->position = from->position;
  return RETCL_SUCCESS;
}

