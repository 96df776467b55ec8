/* weights.c - the flat layout of a model's trainable tensors (weights.h).
 * The order is torchscale's state dict (embedding, its optional norm, each
 * layer's retention and FFN, the final norm, the untied output
 * projection); the rotation angles and decays are not trained and live
 * apart. */
#include "model/weights.h"

#include "runtime/status.h"

#include <stdio.h>
#include <stdlib.h>

static size_t add(retcl__weight_layout *w, const char *name, size_t rows,
                  size_t cols) {
  retcl__tensor *t = &w->tensors[w->count++];
  snprintf(t->name, sizeof t->name, "%s", name);
  t->rows = rows;
  t->cols = cols;
  t->offset = w->total;
  w->total += cols ? rows * cols : rows;
  return t->offset;
}

/* A layer's tensors for `heads` of the heads and `f` FFN units (all of
 * them, or one process's part of a heads-split model). */
static void add_layer(retcl__weight_layout *w, const retcl_model_config *c,
                      size_t heads, size_t f, size_t l) {
  const size_t d = c->embed_dim, dq = heads * (c->embed_dim / c->heads),
               dv = heads * (c->value_embed_dim / c->heads);
  retcl__layer_offsets *o = &w->layers[l];
  char name[RETCL_TENSOR_NAME_CAP];
#define LAYER_TENSOR(field, suffix, rows, cols)                        \
  (snprintf(name, sizeof name, "layers.%zu.%s", l, suffix),            \
   o->field = add(w, name, rows, cols))
  LAYER_TENSOR(q, "retention.q_proj.weight", dq, d);
  LAYER_TENSOR(k, "retention.k_proj.weight", dq, d);
  LAYER_TENSOR(v, "retention.v_proj.weight", dv, d);
  LAYER_TENSOR(g, "retention.g_proj.weight", dv, d);
  LAYER_TENSOR(o, "retention.out_proj.weight", d, dv);
  LAYER_TENSOR(ret_norm, "retention_layer_norm.weight", d, 0);
  LAYER_TENSOR(fc1, "ffn.fc1.weight", f, d);
  LAYER_TENSOR(gate, "ffn.gate.weight", f, d);
  LAYER_TENSOR(fc2, "ffn.fc2.weight", d, f);
  LAYER_TENSOR(ffn_norm, "final_layer_norm.weight", d, 0);
#undef LAYER_TENSOR
}

retcl_status retcl__weight_layout_make(retcl_context *ctx,
                                       const retcl_model_config *c,
                                       retcl__weight_layout *w) {
  return retcl__weight_layout_make_part(ctx, c, c->heads, c->ffn_dim, w);
}

retcl_status retcl__weight_layout_make_part(retcl_context *ctx,
                                            const retcl_model_config *c,
                                            size_t heads, size_t ffn,
                                            retcl__weight_layout *w) {
  const size_t d = c->embed_dim, V = c->vocab_size;
  *w = (retcl__weight_layout){0};
  w->tensors = calloc(10 * c->layers + 4, sizeof *w->tensors);
  w->layers = calloc(c->layers ? c->layers : 1, sizeof *w->layers);
  if (!w->tensors || !w->layers) {
    retcl__weight_layout_free(w);
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "retcl_model_load: host allocation for %zu tensors",
                       10 * c->layers + 4);
  }
  w->embed = add(w, "embed_tokens.weight", V, d);
  w->emb_norm = c->layernorm_embedding
                    ? add(w, "layernorm_embedding.weight", d, 0)
                    : RETCL_NO_TENSOR;
  for (size_t l = 0; l < c->layers; ++l) add_layer(w, c, heads, ffn, l);
  w->final_norm = add(w, "layer_norm.weight", d, 0);
  w->out_proj = c->share_embed ? RETCL_NO_TENSOR
                               : add(w, "output_projection.weight", V, d);
  return RETCL_SUCCESS;
}

void retcl__weight_layout_free(retcl__weight_layout *w) {
  free(w->tensors);
  free(w->layers);
  w->tensors = NULL;
  w->layers = NULL;
  w->count = w->total = 0;
}
