/* checkpoint.c - a torchscale RetNet checkpoint folder (config.json +
 * model.safetensors, docs/design.md §1.6) into fp32 host arrays. Every name and shape
 * is checked before anything large is allocated, so a bad file fails fast
 * and a config cannot make us allocate more than the file holds. */
#define _POSIX_C_SOURCE 200809L /* strdup under strict C11 */

#include "io/checkpoint.h"

#include "io/config.h"
#include "io/safetensors.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A config.json is a few hundred bytes; refuse to slurp anything huge. */
#define MAX_CONFIG_BYTES (16u * 1024u * 1024u)
/* Room for "layers.<20 digits>.retention.out_proj.weight". */
#define NAME_CAP 96

/* ---- files -------------------------------------------------------------- */

static char *join_path(const char *dir, const char *file) {
  const size_t n = strlen(dir) + 1 + strlen(file) + 1;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, file);
  return p;
}

/* The whole of a small text file, NUL-terminated. */
static retcl_status read_text_file(retcl_context *ctx, const char *path,
                                   char **out) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return retcl__fail(ctx, RETCL_ERROR_IO, "cannot open %s: %s", path,
                       strerror(errno));
  retcl_status st = RETCL_SUCCESS;
  size_t len = 0, cap = 4096;
  char *buf = malloc(cap);
  while (buf) {
    len += fread(buf + len, 1, cap - 1 - len, f);
    if (len < cap - 1) break; /* end of file or an error, told apart below */
    if (cap >= MAX_CONFIG_BYTES) {
      st = retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: larger than %u bytes; not a config file", path,
                       MAX_CONFIG_BYTES);
      break;
    }
    char *bigger = realloc(buf, cap * 2);
    if (!bigger) free(buf);
    buf = bigger;
    cap *= 2;
  }
  if (!buf)
    st = retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                     "%s: host allocation for the file", path);
  else if (!st && ferror(f))
    st = retcl__fail(ctx, RETCL_ERROR_IO, "%s: read error", path);
  fclose(f);
  if (st) {
    free(buf);
    return st;
  }
  buf[len] = '\0';
  *out = buf;
  return RETCL_SUCCESS;
}

/* ---- the tensors a config needs ----------------------------------------- */

/* One expected tensor: its name, shape [rows] (cols == 0) or [rows, cols],
 * where its fp32 copy goes (NULL during the checking pass), and whether it
 * may be absent. */
typedef struct tensor_spec {
  char name[NAME_CAP];
  size_t rows, cols;
  float **dst;
  int optional;
} tensor_spec;

typedef retcl_status (*spec_fn)(retcl_context *ctx,
                                const retcl__safetensors *st,
                                const tensor_spec *spec);

typedef struct layer_tensor {
  const char *suffix;
  size_t field;      /* offsetof in retcl__layer_host */
  char rows, cols;   /* 'd' embed, 'v' value embed, 'f' ffn, 0 none */
} layer_tensor;

static const layer_tensor LAYER_TENSORS[] = {
    {"retention.q_proj.weight", offsetof(retcl__layer_host, wq), 'd', 'd'},
    {"retention.k_proj.weight", offsetof(retcl__layer_host, wk), 'd', 'd'},
    {"retention.v_proj.weight", offsetof(retcl__layer_host, wv), 'v', 'd'},
    {"retention.g_proj.weight", offsetof(retcl__layer_host, wg), 'v', 'd'},
    {"retention.out_proj.weight", offsetof(retcl__layer_host, wo), 'd', 'v'},
    {"retention_layer_norm.weight", offsetof(retcl__layer_host, ret_norm), 'd',
     0},
    {"ffn.fc1.weight", offsetof(retcl__layer_host, fc1), 'f', 'd'},
    {"ffn.gate.weight", offsetof(retcl__layer_host, gate), 'f', 'd'},
    {"ffn.fc2.weight", offsetof(retcl__layer_host, fc2), 'd', 'f'},
    {"final_layer_norm.weight", offsetof(retcl__layer_host, ffn_norm), 'd', 0},
};

static size_t dim_of(const retcl_model_config *cfg, char which) {
  switch (which) {
    case 'd': return cfg->embed_dim;
    case 'v': return cfg->value_embed_dim;
    case 'f': return cfg->ffn_dim;
    default: return 0;
  }
}

static retcl_status visit(retcl_context *ctx, const retcl__safetensors *st,
                          spec_fn fn, const char *name, size_t rows,
                          size_t cols, float **dst, int optional) {
  tensor_spec spec;
  snprintf(spec.name, sizeof spec.name, "%s", name);
  spec.rows = rows;
  spec.cols = cols;
  spec.dst = dst;
  spec.optional = optional;
  return fn(ctx, st, &spec);
}

static retcl_status visit_layer(retcl_context *ctx,
                                const retcl__safetensors *st, spec_fn fn,
                                const retcl_model_config *cfg, size_t index,
                                retcl__layer_host *layer) {
  for (size_t i = 0; i < sizeof LAYER_TENSORS / sizeof LAYER_TENSORS[0];
       ++i) {
    const layer_tensor *lt = &LAYER_TENSORS[i];
    char name[NAME_CAP];
    snprintf(name, sizeof name, "layers.%zu.%s", index, lt->suffix);
    float **dst = layer ? (float **)((char *)layer + lt->field) : NULL;
    retcl_status s = visit(ctx, st, fn, name, dim_of(cfg, lt->rows),
                           dim_of(cfg, lt->cols), dst, 0);
    if (s) return s;
  }
  return RETCL_SUCCESS;
}

/* Call fn on every tensor cfg needs, in file-independent order. With
 * ck->layers NULL the specs carry no destinations (the checking pass). */
static retcl_status visit_all(retcl_context *ctx, const retcl__safetensors *st,
                              spec_fn fn, retcl__checkpoint *ck) {
  const retcl_model_config *cfg = &ck->cfg;
  const size_t d = cfg->embed_dim, V = cfg->vocab_size;
  const int fill = ck->layers != NULL;
  retcl_status s = visit(ctx, st, fn, "embed_tokens.weight", V, d,
                         fill ? &ck->embed : NULL, 0);
  if (!s && cfg->layernorm_embedding)
    s = visit(ctx, st, fn, "layernorm_embedding.weight", d, 0,
              fill ? &ck->emb_norm : NULL, 0);
  for (size_t l = 0; l < cfg->layers && !s; ++l)
    s = visit_layer(ctx, st, fn, cfg, l, fill ? &ck->layers[l] : NULL);
  if (!s)
    s = visit(ctx, st, fn, "layer_norm.weight", d, 0,
              fill ? &ck->final_norm : NULL, 0);
  /* A tied projection is the embedding; a stored copy is ignored. */
  if (!s && !cfg->share_embed)
    s = visit(ctx, st, fn, "output_projection.weight", V, d,
              fill ? &ck->out_proj : NULL, 0);
  if (!s)
    s = visit(ctx, st, fn, "retnet_rel_pos.angle", d / cfg->heads, 0,
              fill ? &ck->angle : NULL, 1);
  if (!s)
    s = visit(ctx, st, fn, "retnet_rel_pos.decay", cfg->heads, 0,
              fill ? &ck->decay : NULL, 1);
  return s;
}

/* ---- the two passes ----------------------------------------------------- */

static void format_shape(char *buf, size_t cap, const size_t *shape,
                         size_t rank) {
  size_t used = (size_t)snprintf(buf, cap, "[");
  for (size_t i = 0; i < rank && used < cap; ++i)
    used += (size_t)snprintf(buf + used, cap - used, "%s%zu", i ? ", " : "",
                             shape[i]);
  if (used < cap) snprintf(buf + used, cap - used, "]");
}

/* First pass: present (unless optional) with exactly the expected shape. */
static retcl_status check_spec(retcl_context *ctx, const retcl__safetensors *st,
                               const tensor_spec *spec) {
  const retcl__st_tensor *t = retcl__st_find(st, spec->name);
  if (!t) {
    if (spec->optional) return RETCL_SUCCESS;
    return retcl__fail(ctx, RETCL_ERROR_FORMAT, "%s: tensor '%s' is missing",
                       st->path, spec->name);
  }
  const size_t want[2] = {spec->rows, spec->cols};
  const size_t rank = spec->cols ? 2 : 1;
  int same = t->rank == rank;
  for (size_t i = 0; i < rank && same; ++i) same = t->shape[i] == want[i];
  if (same) return RETCL_SUCCESS;
  char found[256], expected[64];
  format_shape(found, sizeof found, t->shape, t->rank);
  format_shape(expected, sizeof expected, want, rank);
  return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                     "%s: tensor '%s' has shape %s, expected %s", st->path,
                     spec->name, found, expected);
}

/* Second pass: allocate and read (shapes already match the file, so the
 * allocation is bounded by the file's size). */
static retcl_status read_spec(retcl_context *ctx, const retcl__safetensors *st,
                              const tensor_spec *spec) {
  const retcl__st_tensor *t = retcl__st_find(st, spec->name);
  if (!t) return RETCL_SUCCESS; /* optional and absent */
  float *data = malloc(t->elems ? t->elems * sizeof(float) : 1);
  if (!data)
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: host allocation for tensor '%s' (%zu floats)",
                       st->path, spec->name, t->elems);
  retcl_status s = retcl__st_read_f32(ctx, st, t, data);
  if (s) {
    free(data);
    return s;
  }
  *spec->dst = data;
  return RETCL_SUCCESS;
}

static retcl_status read_config(retcl_context *ctx, const char *dir,
                                retcl_model_config *cfg) {
  char *path = join_path(dir, "config.json");
  if (!path)
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "host allocation for a path");
  char *text = NULL;
  retcl_status s = read_text_file(ctx, path, &text);
  if (!s) s = retcl__config_parse(ctx, path, text, cfg);
  if (!s) s = retcl__config_validate(ctx, path, cfg);
  free(text);
  free(path);
  return s;
}

static retcl_status read_tensors(retcl_context *ctx, const char *dir,
                                 retcl__checkpoint *ck) {
  char *path = join_path(dir, "model.safetensors");
  if (!path)
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "host allocation for a path");
  retcl__safetensors st;
  retcl_status s = retcl__st_open(ctx, path, &st);
  free(path);
  if (s) return s;
  s = visit_all(ctx, &st, check_spec, ck);
  if (!s) {
    ck->layers = calloc(ck->cfg.layers, sizeof *ck->layers);
    if (!ck->layers)
      s = retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                      "host allocation for %zu layers", ck->cfg.layers);
  }
  if (!s) s = visit_all(ctx, &st, read_spec, ck);
  if (!s) {
    /* The file's type, for RETCL_STORAGE_KEEP: the embedding's. */
    const retcl__st_tensor *e = retcl__st_find(&st, "embed_tokens.weight");
    if (!e) e = retcl__st_find(&st, "decoder.embed_tokens.weight");
    ck->file_dtype = !e || e->dtype == RETCL__ST_F32 ? RETCL_DTYPE_F32
                     : e->dtype == RETCL__ST_F16    ? RETCL_DTYPE_F16
                                                    : RETCL_DTYPE_BF16;
  }
  retcl__st_close(&st);
  return s;
}

retcl_status retcl__checkpoint_read(retcl_context *ctx, const char *dir,
                                    retcl__checkpoint *out) {
  if (!out)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "retcl__checkpoint_read: out is NULL");
  memset(out, 0, sizeof *out);
  if (!dir)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "checkpoint folder is NULL");
  retcl_status s = read_config(ctx, dir, &out->cfg);
  if (!s) s = read_tensors(ctx, dir, out);
  if (s) retcl__checkpoint_free(out);
  return s;
}

void retcl__checkpoint_free(retcl__checkpoint *ck) {
  if (!ck) return;
  if (ck->layers) {
    for (size_t l = 0; l < ck->cfg.layers; ++l) {
      retcl__layer_host *h = &ck->layers[l];
      float *all[] = {h->wq,  h->wk,   h->wv,  h->wg,  h->wo,
                      h->ret_norm, h->fc1, h->gate, h->fc2, h->ffn_norm};
      for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) free(all[i]);
    }
    free(ck->layers);
  }
  free(ck->embed);
  free(ck->emb_norm);
  free(ck->final_norm);
  free(ck->out_proj);
  free(ck->angle);
  free(ck->decay);
  memset(ck, 0, sizeof *ck);
}
