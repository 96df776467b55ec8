/* checkpoint_write.c - retcl_checkpoint_write_random: a random-weight
 * checkpoint folder in torchscale's layout, the same bytes for the same
 * seed. Weights are generated and written a chunk at a time, so writing a
 * large model needs little memory. */
#define _POSIX_C_SOURCE 200809L /* mkdir, stat, strdup under strict C11 */

#include "io/config.h"
#include "io/safetensors.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define NAME_CAP 96
/* Elements generated, converted and written per fwrite. */
#define CHUNK_ELEMS 16384

/* How a tensor's values are made. */
typedef enum fill_kind {
  FILL_UNIFORM, /* ±1/sqrt(fan_in), fan_in = the last dim */
  FILL_NORM,    /* 1 + U(-0.1, 0.1) */
  FILL_ANGLE,   /* θ_i of docs/design.md §1.1, each twice */
  FILL_DECAY    /* log γ_h of docs/design.md §1.2 */
} fill_kind;

typedef struct out_tensor {
  char name[NAME_CAP];
  size_t rows, cols; /* cols == 0: a vector of rows */
  fill_kind fill;
} out_tensor;

typedef struct tensor_list {
  out_tensor *items;
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
  out_tensor *t = &list->items[list->count++];
  snprintf(t->name, sizeof t->name, "%s", name);
  t->rows = rows;
  t->cols = cols;
  t->fill = fill;
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
    char name[NAME_CAP];
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

static size_t elems_of(const out_tensor *t) {
  return t->cols ? t->rows * t->cols : t->rows;
}

static size_t dtype_bytes(retcl_dtype dtype) {
  return dtype == RETCL_DTYPE_F32 ? 4 : 2;
}

/* ---- header ------------------------------------------------------------- */

static cJSON *tensor_entry(const out_tensor *t, const char *dtype,
                           uint64_t begin, uint64_t end) {
  cJSON *entry = cJSON_CreateObject();
  cJSON *shape = cJSON_AddArrayToObject(entry, "shape");
  cJSON *offsets = cJSON_AddArrayToObject(entry, "data_offsets");
  int ok = entry && shape && offsets &&
           cJSON_AddStringToObject(entry, "dtype", dtype);
  const double dims[2] = {(double)t->rows, (double)t->cols};
  for (size_t i = 0; ok && i < (t->cols ? 2u : 1u); ++i)
    ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber(dims[i]));
  if (ok) ok = cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)begin));
  if (ok) ok = cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)end));
  if (!ok) {
    cJSON_Delete(entry);
    return NULL;
  }
  return entry;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes as the
 * reference writer does (keeps the data aligned). */
static retcl_status build_header(const tensor_list *list, retcl_dtype dtype,
                                 char **text, size_t *len) {
  static const char *const names[] = {"F32", "F16", "BF16"};
  cJSON *root = cJSON_CreateObject();
  cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
  int ok = meta && cJSON_AddStringToObject(meta, "format", "pt");
  uint64_t offset = 0;
  for (size_t i = 0; ok && i < list->count; ++i) {
    const out_tensor *t = &list->items[i];
    const uint64_t end = offset + (uint64_t)elems_of(t) * dtype_bytes(dtype);
    cJSON *entry = tensor_entry(t, names[dtype], offset, end);
    ok = entry && cJSON_AddItemToObject(root, t->name, entry);
    if (entry && !ok) cJSON_Delete(entry);
    offset = end;
  }
  char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  const size_t n = json ? strlen(json) : 0;
  const size_t padded = (n + 7) / 8 * 8;
  char *out = json ? malloc(padded) : NULL;
  if (out) {
    memcpy(out, json, n);
    memset(out + n, ' ', padded - n);
  }
  cJSON_free(json);
  if (!out)
    return retcl__fail(NULL, RETCL_ERROR_OUT_OF_MEMORY,
                       "retcl_checkpoint_write_random: host allocation for "
                       "the safetensors header");
  *text = out;
  *len = padded;
  return RETCL_SUCCESS;
}

/* ---- data --------------------------------------------------------------- */

/* Element j of t; uniform and norm values draw from the generator. */
static float value_at(const out_tensor *t, size_t j, uint64_t *rng) {
  switch (t->fill) {
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

/* Little-endian bytes of one value in dtype. */
static void encode(float x, retcl_dtype dtype, unsigned char *out) {
  uint32_t bits;
  if (dtype == RETCL_DTYPE_F32) {
    memcpy(&bits, &x, sizeof bits);
  } else {
    bits = dtype == RETCL_DTYPE_F16 ? retcl__f32_to_f16(x)
                                    : retcl__f32_to_bf16(x);
  }
  for (size_t b = 0; b < dtype_bytes(dtype); ++b)
    out[b] = (unsigned char)(bits >> (8 * b));
}

static retcl_status write_data(FILE *f, const char *path,
                               const tensor_list *list, retcl_dtype dtype,
                               uint64_t seed) {
  const size_t esize = dtype_bytes(dtype);
  unsigned char *buf = malloc(CHUNK_ELEMS * 4);
  if (!buf)
    return retcl__fail(NULL, RETCL_ERROR_OUT_OF_MEMORY,
                       "retcl_checkpoint_write_random: host allocation");
  uint64_t rng = seed;
  retcl_status s = RETCL_SUCCESS;
  for (size_t i = 0; i < list->count && !s; ++i) {
    const out_tensor *t = &list->items[i];
    const size_t n = elems_of(t);
    for (size_t done = 0; done < n && !s;) {
      const size_t m = n - done < CHUNK_ELEMS ? n - done : CHUNK_ELEMS;
      for (size_t k = 0; k < m; ++k)
        encode(value_at(t, done + k, &rng), dtype, buf + k * esize);
      if (fwrite(buf, esize, m, f) != m)
        s = retcl__fail(NULL, RETCL_ERROR_IO, "%s: write failed: %s", path,
                        strerror(errno));
      done += m;
    }
  }
  free(buf);
  return s;
}

/* ---- files -------------------------------------------------------------- */

/* mkdir -p: every missing component of dir. */
static retcl_status make_dirs(const char *dir) {
  char *p = strdup(dir);
  if (!p)
    return retcl__fail(NULL, RETCL_ERROR_OUT_OF_MEMORY,
                       "retcl_checkpoint_write_random: host allocation");
  for (char *s = p + 1; *s; ++s) {
    if (*s != '/') continue;
    *s = '\0';
    mkdir(p, 0777); /* failures show up at the last component */
    *s = '/';
  }
  int err = mkdir(p, 0777) == 0 ? 0 : errno;
  free(p);
  struct stat info;
  if (err && err != EEXIST)
    return retcl__fail(NULL, RETCL_ERROR_IO, "cannot create folder %s: %s",
                       dir, strerror(err));
  if (stat(dir, &info) != 0 || !S_ISDIR(info.st_mode))
    return retcl__fail(NULL, RETCL_ERROR_IO, "%s exists and is not a folder",
                       dir);
  return RETCL_SUCCESS;
}

static char *join_path(const char *dir, const char *file) {
  const size_t n = strlen(dir) + 1 + strlen(file) + 1;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, file);
  return p;
}

/* Write bytes to path, removing a partial file on failure. */
static retcl_status write_file(const char *path, const void *bytes,
                               size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return retcl__fail(NULL, RETCL_ERROR_IO, "cannot create %s: %s", path,
                       strerror(errno));
  int ok = fwrite(bytes, 1, len, f) == len;
  ok = (fclose(f) == 0) && ok;
  if (ok) return RETCL_SUCCESS;
  remove(path);
  return retcl__fail(NULL, RETCL_ERROR_IO, "%s: write failed", path);
}

static retcl_status write_config(const retcl_model_config *cfg,
                                 const char *dir) {
  char *path = join_path(dir, "config.json");
  char *text = retcl__config_to_json(cfg);
  retcl_status s = (path && text)
                       ? write_file(path, text, strlen(text))
                       : retcl__fail(NULL, RETCL_ERROR_OUT_OF_MEMORY,
                                     "retcl_checkpoint_write_random: host "
                                     "allocation for config.json");
  free(text);
  free(path);
  return s;
}

static retcl_status write_safetensors(const retcl_model_config *cfg,
                                      uint64_t seed, retcl_dtype dtype,
                                      const char *path) {
  tensor_list list = {NULL, 0};
  char *header = NULL;
  size_t header_len = 0;
  retcl_status s = list_tensors(cfg, &list);
  if (!s) s = build_header(&list, dtype, &header, &header_len);
  FILE *f = NULL;
  if (!s && !(f = fopen(path, "wb")))
    s = retcl__fail(NULL, RETCL_ERROR_IO, "cannot create %s: %s", path,
                    strerror(errno));
  if (!s) {
    unsigned char len_bytes[8];
    for (int b = 0; b < 8; ++b)
      len_bytes[b] = (unsigned char)((uint64_t)header_len >> (8 * b));
    if (fwrite(len_bytes, 1, 8, f) != 8 ||
        fwrite(header, 1, header_len, f) != header_len)
      s = retcl__fail(NULL, RETCL_ERROR_IO, "%s: write failed: %s", path,
                      strerror(errno));
  }
  if (!s) s = write_data(f, path, &list, dtype, seed);
  if (f && fclose(f) != 0 && !s)
    s = retcl__fail(NULL, RETCL_ERROR_IO, "%s: write failed: %s", path,
                    strerror(errno));
  if (s && f) remove(path); /* never leave half a checkpoint behind */
  free(header);
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
  if (!s) s = make_dirs(dir);
  if (!s) s = write_config(cfg, dir);
  char *path = s ? NULL : join_path(dir, "model.safetensors");
  if (!s && !path)
    s = retcl__fail(NULL, RETCL_ERROR_OUT_OF_MEMORY, "%s: host allocation",
                    op);
  if (!s) s = write_safetensors(cfg, seed, dtype, path);
  free(path);
  return s;
}
