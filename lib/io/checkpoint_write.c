/* checkpoint_write.c - retcl_checkpoint_write_random: a random-weight
 * checkpoint folder in torchscale's layout, the same bytes for the same
 * seed. Weights are generated and written a chunk at a time, so writing a
 * large model needs little memory. */
#define _POSIX_C_SOURCE 200809L /* mkdir, stat, strdup under strict C11 */

#include "io/config.h"
#include "io/safetensors_write.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* How a tensor's values are made. */
typedef enum fill_kind {
  FILL_UNIFORM, /* ±1/sqrt(fan_in), fan_in = the last dim */
  FILL_NORM,    /* 1 + U(-0.1, 0.1) */
  FILL_ANGLE,   /* θ_i of docs/design.md §1.1, each twice */
  FILL_DECAY    /* log γ_h of docs/design.md §1.2 */
} fill_kind;

typedef struct tensor_list {
  retcl__out_tensor *items; /* kind: a fill_kind */
  size_t count;
} tensor_list;

/* ---- random numbers ----------------------------------------------------- */

/* Uniform in [-1, 1): 2u - 1 of the library's generator, the same stream
 * bit for bit as before (52 bits scaled by 2^-52). */
static double symmetric_uniform(uint64_t *state) {
  return 2.0 * retcl_random_uniform(state) - 1.0;
}

/* ---- which tensors ------------------------------------------------------ */

static void add_tensor(tensor_list *list, const char *name, size_t rows,
                       size_t cols, fill_kind fill) {
  retcl__out_tensor *t = &list->items[list->count++];
  snprintf(t->name, sizeof t->name, "%s", name);
  t->rows = rows;
  t->cols = cols;
  t->data = NULL;
  t->kind = (int)fill;
}

static void add_layer(tensor_list *list, const retcl_model_config *cfg,
                      size_t l) {
  const size_t d = cfg->embed_dim, dv = cfg->value_embed_dim,
               f = cfg->ffn_dim;
  static const char *const suffix[] = {
      "retention.q_proj.weight",  "retention.k_proj.weight",
      "retention.v_proj.weight",  "retention.g_proj.weight",
      "retention.out_proj.weight", "retention_layer_norm.weight",
      "ffn.fc1.weight",           "ffn.gate.weight",
      "ffn.fc2.weight",           "final_layer_norm.weight"};
  const size_t rows[] = {d, d, dv, dv, d, d, f, f, d, d};
  const size_t cols[] = {d, d, d, d, dv, 0, d, d, f, 0};
  for (size_t i = 0; i < 10; ++i) {
    char name[RETCL__OUT_NAME_CAP];
    snprintf(name, sizeof name, "layers.%zu.%s", l, suffix[i]);
    add_tensor(list, name, rows[i], cols[i], cols[i] ? FILL_UNIFORM : FILL_NORM);
  }
}

/* torchscale's state-dict order. */
static retcl_status list_tensors(const retcl_model_config *cfg,
                                 tensor_list *list) {
  const size_t n = retcl__mul(cfg->layers, 10);
  list->count = 0;
  list->items = n == SIZE_MAX ? NULL : calloc(n + 6, sizeof *list->items);
  if (!list->items)
    return retcl__fail(NULL, RETCL_ERROR_OUT_OF_MEMORY,
                       "retcl_checkpoint_write_random: host allocation for "
                       "%zu tensor names",
                       n);
  const size_t d = cfg->embed_dim;
  add_tensor(list, "retnet_rel_pos.angle", d / cfg->heads, 0, FILL_ANGLE);
  add_tensor(list, "retnet_rel_pos.decay", cfg->heads, 0, FILL_DECAY);
  add_tensor(list, "embed_tokens.weight", cfg->vocab_size, d, FILL_UNIFORM);
  if (cfg->layernorm_embedding)
    add_tensor(list, "layernorm_embedding.weight", d, 0, FILL_NORM);
  for (size_t l = 0; l < cfg->layers; ++l) add_layer(list, cfg, l);
  add_tensor(list, "layer_norm.weight", d, 0, FILL_NORM);
  if (!cfg->share_embed)
    add_tensor(list, "output_projection.weight", cfg->vocab_size, d,
               FILL_UNIFORM);
  return RETCL_SUCCESS;
}

/* ---- data --------------------------------------------------------------- */

/* Element j of t; uniform and norm values draw from the generator (the
 * writer asks for every element in order, so the stream is the same for
 * the same seed). */
static float value_at(const retcl__out_tensor *t, size_t j, void *user) {
  uint64_t *rng = user;
  switch ((fill_kind)t->kind) {
    case FILL_UNIFORM:
      return (float)(symmetric_uniform(rng) / sqrt((double)t->cols));
    case FILL_NORM: return (float)(1.0 + 0.1 * symmetric_uniform(rng));
    case FILL_ANGLE: {
      const size_t pairs = t->rows / 2, i = j / 2;
      if (pairs < 2) return 1.0f; /* θ_0 = 1 */
      return (float)pow(10000.0, -(double)i / (double)(pairs - 1));
    }
    case FILL_DECAY: return (float)log1p(-ldexp(1.0, -5 - (int)j));
  }
  return 0.0f;
}

static retcl_status write_safetensors(const retcl_model_config *cfg,
                                      uint64_t seed, retcl_dtype dtype,
                                      const char *path) {
  tensor_list list = {NULL, 0};
  retcl_status s = list_tensors(cfg, &list);
  uint64_t rng = seed;
  if (!s)
    s = retcl__safetensors_write("retcl_checkpoint_write_random", path,
                                 list.items, list.count, dtype, value_at,
                                 &rng);
  free(list.items);
  return s;
}

retcl_status retcl_checkpoint_write_random(const retcl_model_config *cfg,
                                           uint64_t seed, retcl_dtype dtype,
                                           const char *dir) {
  const char *op = "retcl_checkpoint_write_random";
  if (!cfg || !dir)
    return retcl__fail(NULL, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: %s is NULL", op, cfg ? "dir" : "cfg");
  if (dtype != RETCL_DTYPE_F32 && dtype != RETCL_DTYPE_F16 &&
      dtype != RETCL_DTYPE_BF16)
    return retcl__fail(NULL, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: dtype %d is not a retcl_dtype", op, (int)dtype);
  retcl_status s = retcl__config_validate(NULL, op, cfg);
  if (!s) s = retcl__make_dirs(dir);
  if (!s) s = retcl__write_config(op, cfg, dir);
  char *path = s ? NULL : retcl__join_path(dir, "model.safetensors");
  if (!s && !path)
    s = retcl__fail(NULL, RETCL_ERROR_OUT_OF_MEMORY, "%s: host allocation",
                    op);
  if (!s) s = write_safetensors(cfg, seed, dtype, path);
  free(path);
  return s;
}
