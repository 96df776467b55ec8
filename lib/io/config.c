/* config.c - retcl_model_config <-> config.json with torchscale's
 * RetNetConfig field names (also read under the names the Hugging
 * Face-style community ports use), and the checks that a config can run. */
#include "io/config.h"

#include "io/safetensors.h"
#include "ops/limits.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Head dims the kernels accept (their per-item state rows). */
/* Integers from 2^53 on do not survive cJSON's doubles exactly (2^53 + 1
 * reads as 2^53). */
#define MAX_EXACT_INTEGER 9007199254740992.0

void retcl_model_config_default(retcl_model_config *cfg) {
  if (!cfg) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->embed_dim = 768;
  cfg->value_embed_dim = 1280;
  cfg->heads = 3;
  cfg->ffn_dim = 1280;
  cfg->layers = 12;
  cfg->vocab_size = 0; /* torchscale's -1: the caller must set it */
  cfg->activation = RETCL_ACT_GELU;
  cfg->layernorm_eps = 1e-6f;
  cfg->no_scale_embedding = 1;
  cfg->layernorm_embedding = 0;
  cfg->deepnorm = 0;
  cfg->share_embed = 0;
  cfg->chunk_size = 512;
}

/* ---- fields ------------------------------------------------------------- */

/* Each field has torchscale's name and, where a Hugging Face-style port
 * (syncdoth/RetNet's RetNetConfig and its descendants) writes it under
 * another, that name too (`alias`): the attribute_map names of
 * transformers' PretrainedConfig (hidden_size, ...), tie_word_embeddings,
 * and the "rms_norm" spellings of the renamed ports. Either name may be
 * given; both must then agree. */
typedef struct size_field {
  const char *name;
  size_t offset;
  int required; /* torchscale's defaults would be a silent guess here */
  const char *alias;
} size_field;

static const size_field SIZE_FIELDS[] = {
    {"decoder_embed_dim", offsetof(retcl_model_config, embed_dim), 1,
     "hidden_size"},
    {"decoder_value_embed_dim", offsetof(retcl_model_config, value_embed_dim),
     0, NULL},
    {"decoder_retention_heads", offsetof(retcl_model_config, heads), 1,
     "num_attention_heads"},
    {"decoder_ffn_embed_dim", offsetof(retcl_model_config, ffn_dim), 0,
     "intermediate_size"},
    {"decoder_layers", offsetof(retcl_model_config, layers), 1,
     "num_hidden_layers"},
    {"vocab_size", offsetof(retcl_model_config, vocab_size), 1, NULL},
    {"recurrent_chunk_size", offsetof(retcl_model_config, chunk_size), 0,
     NULL},
};

typedef struct flag_field {
  const char *name;
  size_t offset;
  const char *alias;
} flag_field;

static const flag_field FLAG_FIELDS[] = {
    {"no_scale_embedding", offsetof(retcl_model_config, no_scale_embedding),
     NULL},
    {"layernorm_embedding", offsetof(retcl_model_config, layernorm_embedding),
     "rms_norm_embedding"},
    {"deepnorm", offsetof(retcl_model_config, deepnorm), NULL},
    {"share_decoder_input_output_embed",
     offsetof(retcl_model_config, share_embed), "tie_word_embeddings"},
};

#define EPS_FIELD "layernorm_eps"
#define EPS_ALIAS "rms_norm_eps"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static size_t *size_slot(retcl_model_config *cfg, const size_field *f) {
  return (size_t *)((char *)cfg + f->offset);
}

static int *flag_slot(retcl_model_config *cfg, const flag_field *f) {
  return (int *)((char *)cfg + f->offset);
}

/* ---- parsing ------------------------------------------------------------ */

/* A size: a JSON integer; negative or huge values are sizes we cannot run
 * rather than malformed JSON. */
static retcl_status parse_size(retcl_context *ctx, const char *path,
                               const cJSON *v, const char *name, size_t *out) {
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: field '%s' must be an integer", path, name);
  const double d = v->valuedouble;
  if (d < 1.0 || d >= MAX_EXACT_INTEGER || d > (double)SIZE_MAX)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: field '%s' = %.17g must be a positive integer "
                       "below 2^53",
                       path, name, d);
  *out = (size_t)d;
  return RETCL_SUCCESS;
}

/* A flag: JSON true/false (what torchscale writes) or the numbers 0/1. */
static retcl_status parse_flag(retcl_context *ctx, const char *path,
                               const cJSON *v, const char *name, int *out) {
  if (cJSON_IsBool(v)) {
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return RETCL_SUCCESS;
  }
  if (cJSON_IsNumber(v) && (v->valuedouble == 0.0 || v->valuedouble == 1.0)) {
    *out = v->valuedouble != 0.0;
    return RETCL_SUCCESS;
  }
  return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                     "%s: field '%s' must be true or false", path, name);
}

static retcl_status parse_activation(retcl_context *ctx, const char *path,
                                     const cJSON *v,
                                     retcl_activation *out) {
  const char *name = "activation_fn";
  if (!cJSON_IsString(v))
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: field '%s' must be a string", path, name);
  if (strcmp(v->valuestring, "gelu") == 0) {
    *out = RETCL_ACT_GELU;
  } else if (strcmp(v->valuestring, "swish") == 0 ||
             strcmp(v->valuestring, "silu") == 0) {
    *out = RETCL_ACT_SWISH;
  } else {
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: field '%s' = \"%.64s\" is not supported (gelu, "
                       "swish or silu)",
                       path, name, v->valuestring);
  }
  return RETCL_SUCCESS;
}

static retcl_status parse_eps(retcl_context *ctx, const char *path,
                              const cJSON *v, const char *name, float *out) {
  if (!cJSON_IsNumber(v))
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: field '%s' must be a number", path, name);
  *out = (float)v->valuedouble; /* range is retcl__config_validate's job */
  return RETCL_SUCCESS;
}

/* The value of field `name` or of its alias (NULL when neither is given).
 * *given is the name found (for messages); both given and different is a
 * FORMAT error naming both. */
static retcl_status lookup(retcl_context *ctx, const char *path,
                           const cJSON *root, const char *name,
                           const char *alias, const cJSON **value,
                           const char **given) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
  const cJSON *w = alias ? cJSON_GetObjectItemCaseSensitive(root, alias) : NULL;
  *value = v ? v : w;
  *given = v ? name : alias;
  if (v && w && !cJSON_Compare(v, w, 1))
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: fields '%s' and '%s' (the same setting) "
                       "disagree",
                       path, name, alias);
  return RETCL_SUCCESS;
}

/* Settings of the Hugging Face-style ports that RetCL's model does not
 * have: refused by name rather than run as something else. */
static retcl_status check_port_fields(retcl_context *ctx, const char *path,
                                      const cJSON *root, float eps) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "use_glu");
  if (v && cJSON_IsFalse(v))
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: field 'use_glu' = false (a plain FFN) is not "
                       "supported; the model's FFN is the GLU",
                       path);
  /* The ports' group norm may have its own eps; RetCL's uses the
   * layernorm_eps of every other norm, so they must be equal. */
  v = cJSON_GetObjectItemCaseSensitive(root, "groupnorm_eps");
  if (v && (!cJSON_IsNumber(v) || (float)v->valuedouble != eps))
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: field 'groupnorm_eps' must be a number equal "
                       "to layernorm_eps (%g): the retention's group norm "
                       "uses the same eps as the other norms",
                       path, (double)eps);
  return RETCL_SUCCESS;
}

/* Every known field of root into cfg; unknown fields (torchscale and the
 * ports have many training-only ones) are ignored. */
static retcl_status parse_fields(retcl_context *ctx, const char *path,
                                 const cJSON *root, retcl_model_config *cfg) {
  retcl_status st = RETCL_SUCCESS;
  const cJSON *v;
  const char *given;
  for (size_t i = 0; i < COUNT(SIZE_FIELDS) && !st; ++i) {
    const size_field *f = &SIZE_FIELDS[i];
    st = lookup(ctx, path, root, f->name, f->alias, &v, &given);
    if (st) break;
    if (v)
      st = parse_size(ctx, path, v, given, size_slot(cfg, f));
    else if (f->required && f->alias)
      st = retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: required field '%s' (or '%s') is missing", path,
                       f->name, f->alias);
    else if (f->required)
      st = retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: required field '%s' is missing", path, f->name);
  }
  for (size_t i = 0; i < COUNT(FLAG_FIELDS) && !st; ++i) {
    const flag_field *f = &FLAG_FIELDS[i];
    st = lookup(ctx, path, root, f->name, f->alias, &v, &given);
    if (v && !st) st = parse_flag(ctx, path, v, given, flag_slot(cfg, f));
  }
  v = cJSON_GetObjectItemCaseSensitive(root, "activation_fn");
  if (v && !st) st = parse_activation(ctx, path, v, &cfg->activation);
  if (!st) st = lookup(ctx, path, root, EPS_FIELD, EPS_ALIAS, &v, &given);
  if (v && !st) st = parse_eps(ctx, path, v, given, &cfg->layernorm_eps);
  if (!st) st = check_port_fields(ctx, path, root, cfg->layernorm_eps);
  return st;
}

retcl_status retcl__config_parse(retcl_context *ctx, const char *path,
                                 const char *json_text,
                                 retcl_model_config *cfg) {
  if (!path) path = "config.json";
  if (!json_text || !cfg)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: no text or no config to parse into", path);
  cJSON *root = cJSON_Parse(json_text);
  if (!root)
    return retcl__fail(ctx, RETCL_ERROR_FORMAT, "%s: not valid JSON", path);
  retcl_status st = RETCL_SUCCESS;
  retcl_model_config parsed;
  retcl_model_config_default(&parsed);
  if (!cJSON_IsObject(root))
    st = retcl__fail(ctx, RETCL_ERROR_FORMAT, "%s: not a JSON object", path);
  else
    st = parse_fields(ctx, path, root, &parsed);
  cJSON_Delete(root);
  if (st == RETCL_SUCCESS) *cfg = parsed; /* all or nothing */
  return st;
}

/* ---- validation --------------------------------------------------------- */

static retcl_status check_divides(retcl_context *ctx, const char *where,
                                  const char *name, size_t value,
                                  size_t heads) {
  if (value % heads == 0) return RETCL_SUCCESS;
  return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                     "%s: %s = %zu is not a multiple of "
                     "decoder_retention_heads = %zu",
                     where, name, value, heads);
}

/* Weights of rows x cols floats must be addressable in bytes. */
static retcl_status check_matrix(retcl_context *ctx, const char *where,
                                 const char *what, size_t rows, size_t cols) {
  if (retcl__mul(retcl__mul(rows, cols), sizeof(float)) != SIZE_MAX)
    return RETCL_SUCCESS;
  return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                     "%s: %s weights of %zu x %zu floats are too large",
                     where, what, rows, cols);
}

retcl_status retcl__config_validate(retcl_context *ctx, const char *path,
                                    const retcl_model_config *cfg) {
  const char *where = path ? path : "model config";
  if (!cfg)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: cfg is NULL",
                       where);
  retcl_model_config copy = *cfg; /* size_slot wants a mutable struct */
  for (size_t i = 0; i < COUNT(SIZE_FIELDS); ++i)
    if (*size_slot(&copy, &SIZE_FIELDS[i]) == 0)
      return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                         "%s: %s = 0 must be at least 1", where,
                         SIZE_FIELDS[i].name);
  const size_t H = cfg->heads;
  retcl_status st = check_divides(ctx, where, "decoder_embed_dim",
                                  cfg->embed_dim, H);
  if (!st)
    st = check_divides(ctx, where, "decoder_value_embed_dim",
                       cfg->value_embed_dim, H);
  if (st) return st;
  const size_t dk = cfg->embed_dim / H, dv = cfg->value_embed_dim / H;
  if (dk % 2 || dk > RETCL_MAX_HEAD_DIM)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: decoder_embed_dim / decoder_retention_heads = %zu "
                       "(the key head dim) must be even and at most %d",
                       where, dk, RETCL_MAX_HEAD_DIM);
  if (dv > RETCL_MAX_HEAD_DIM)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: decoder_value_embed_dim / decoder_retention_heads "
                       "= %zu (the value head dim) must be at most %d",
                       where, dv, RETCL_MAX_HEAD_DIM);
  /* Every size a kernel limits is checked here, at load, naming the
   * config.json field: a model that loads runs. */
  const struct {
    const char *name;
    size_t value, max;
  } limits[] = {{"decoder_retention_heads", cfg->heads, RETCL_MAX_HEADS},
                {"decoder_embed_dim", cfg->embed_dim, RETCL_MAX_EMBED_DIM},
                {"decoder_value_embed_dim", cfg->value_embed_dim,
                 RETCL_MAX_EMBED_DIM}};
  for (size_t i = 0; i < COUNT(limits); ++i)
    if (limits[i].value > limits[i].max)
      return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                         "%s: %s = %zu exceeds %zu, the most the layer's "
                         "kernels take",
                         where, limits[i].name, limits[i].value,
                         limits[i].max);
  if (cfg->chunk_size > RETCL_MAX_CHUNK)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: recurrent_chunk_size = %zu exceeds %d, the "
                       "largest chunk the chunkwise kernels take",
                       where, cfg->chunk_size, RETCL_MAX_CHUNK);
  if (!(cfg->layernorm_eps > 0.0f) || isinf(cfg->layernorm_eps))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: layernorm_eps = %g must be a finite number > 0",
                       where, (double)cfg->layernorm_eps);
  if (cfg->activation != RETCL_ACT_GELU && cfg->activation != RETCL_ACT_SWISH)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: activation_fn = %d is not a retcl_activation",
                       where, (int)cfg->activation);
  st = check_matrix(ctx, where, "embed_tokens", cfg->vocab_size,
                    cfg->embed_dim);
  if (!st)
    st = check_matrix(ctx, where, "ffn", cfg->ffn_dim, cfg->embed_dim);
  if (!st)
    st = check_matrix(ctx, where, "retention", cfg->value_embed_dim,
                      cfg->embed_dim);
  return st;
}

/* ---- writing ------------------------------------------------------------ */

/* The shortest decimal that reads back as the same float, so config.json
 * says 1e-06 rather than 9.9999999747524271e-07. */
static void shortest_float(float x, char *buf, size_t cap) {
  for (int digits = 6; digits <= 9; ++digits) {
    snprintf(buf, cap, "%.*g", digits, (double)x);
    if (strtof(buf, NULL) == x) return;
  }
}

/* A size as exact decimal digits: cJSON prints numbers with 15 significant
 * digits when that reads back within its tolerance, which loses sizes
 * past 10^15 (found by fuzz/fuzz_config.c's round trip). */
static cJSON *size_number(size_t n) {
  char digits[32];
  snprintf(digits, sizeof digits, "%zu", n);
  return cJSON_CreateRaw(digits);
}

/* Add a field, remembering any allocation failure in *ok. */
static void add(cJSON *root, const char *name, cJSON *item, int *ok) {
  if (!item || !cJSON_AddItemToObject(root, name, item)) {
    cJSON_Delete(item);
    *ok = 0;
  }
}

char *retcl__config_to_json(const retcl_model_config *cfg) {
  cJSON *root = cJSON_CreateObject();
  if (!root) return NULL;
  int ok = 1;
  char eps[32];
  shortest_float(cfg->layernorm_eps, eps, sizeof eps);
  add(root, "decoder_embed_dim", size_number(cfg->embed_dim), &ok);
  add(root, "decoder_value_embed_dim", size_number(cfg->value_embed_dim),
      &ok);
  add(root, "decoder_retention_heads", size_number(cfg->heads), &ok);
  add(root, "decoder_ffn_embed_dim", size_number(cfg->ffn_dim), &ok);
  add(root, "decoder_layers", size_number(cfg->layers), &ok);
  add(root, "vocab_size", size_number(cfg->vocab_size), &ok);
  add(root, "activation_fn",
      cJSON_CreateString(cfg->activation == RETCL_ACT_SWISH ? "swish"
                                                            : "gelu"),
      &ok);
  add(root, "layernorm_eps", cJSON_CreateRaw(eps), &ok);
  add(root, "no_scale_embedding", cJSON_CreateBool(cfg->no_scale_embedding),
      &ok);
  add(root, "layernorm_embedding", cJSON_CreateBool(cfg->layernorm_embedding),
      &ok);
  add(root, "deepnorm", cJSON_CreateBool(cfg->deepnorm), &ok);
  add(root, "share_decoder_input_output_embed",
      cJSON_CreateBool(cfg->share_embed), &ok);
  add(root, "recurrent_chunk_size", size_number(cfg->chunk_size), &ok);
  char *printed = ok ? cJSON_Print(root) : NULL;
  cJSON_Delete(root);
  /* Hand back plain malloc memory: cJSON's allocator hooks are global and
   * the caller should not have to know about them. */
  char *text = printed ? malloc(strlen(printed) + 2) : NULL;
  if (text) {
    strcpy(text, printed);
    strcat(text, "\n");
  }
  cJSON_free(printed);
  return text;
}
