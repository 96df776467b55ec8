/* ref_checkpoint.c - see ref_checkpoint.h: a checkpoint folder written
 * straight from the format's description (safetensors: u64 little-endian
 * header length, JSON header, raw little-endian data), by hand and apart
 * from the library's writer, so loader tests do not trust the code under
 * test. Damage modes break one thing each. */
#define _POSIX_C_SOURCE 200809L /* mkdir, truncate under strict C11 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "ref_checkpoint.h"

/* One tensor as it will be declared and stored. */
typedef struct ck_entry {
  char name[160];
  const float *data;     /* elems values (NULL: zeros) */
  size_t elems;          /* values stored */
  size_t shape[2];       /* declared shape */
  size_t rank;
  const char *dtype;     /* declared dtype */
  size_t elem_bytes;     /* stored bytes per value */
  int offsets_outside;   /* declare offsets past the data's end */
} ck_entry;

typedef struct ck_list {
  ck_entry e[4096];
  size_t n;
} ck_list;

/* ---- number encodings (via double arithmetic, unlike the library) ----- */

/* fp16 bits, rounding to nearest even with lrint in the default mode;
 * x · 2^k is exact in double so lrint sees the exact value. */
static unsigned f16_bits(float f) {
  double x = f;
  unsigned sign = signbit(x) ? 0x8000u : 0u;
  if (isnan(x)) return sign | 0x7e00u;
  x = fabs(x);
  if (x >= 65520.0) return sign | 0x7c00u;
  if (x < ldexp(1.0, -14)) return sign | (unsigned)lrint(ldexp(x, 24));
  int e;
  frexp(x, &e); /* x in [2^(e-1), 2^e) */
  int E = e - 1;
  long q = lrint(ldexp(x, 10 - E)); /* 1024 .. 2048 */
  if (q == 2048) {
    ++E;
    q = 1024;
  }
  return sign | (unsigned)((E + 15) << 10) | (unsigned)(q - 1024);
}

static unsigned bf16_bits(float f) {
  double x = f;
  unsigned sign = signbit(x) ? 0x8000u : 0u;
  if (isnan(x)) return sign | 0x7fc0u;
  x = fabs(x);
  if (isinf(x)) return sign | 0x7f80u;
  if (x < ldexp(1.0, -126)) return sign | (unsigned)lrint(ldexp(x, 133));
  int e;
  frexp(x, &e);
  int E = e - 1;
  long q = lrint(ldexp(x, 7 - E)); /* 128 .. 256 */
  if (q == 256) {
    ++E;
    q = 128;
  }
  if (E + 127 >= 255) return sign | 0x7f80u;
  return sign | (unsigned)((E + 127) << 7) | (unsigned)(q - 128);
}

static void put_le(unsigned char *p, uint64_t v, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) p[i] = (unsigned char)(v >> (8 * i));
}

/* Value x in the entry's stored type. */
static void encode_value(const ck_entry *en, float x, unsigned char *p) {
  if (strcmp(en->dtype, "F16") == 0) {
    put_le(p, f16_bits(x), 2);
  } else if (strcmp(en->dtype, "BF16") == 0) {
    put_le(p, bf16_bits(x), 2);
  } else if (en->elem_bytes == 8) { /* the "F64" damage: real doubles */
    double d = x;
    uint64_t u;
    memcpy(&u, &d, 8);
    put_le(p, u, 8);
  } else {
    uint32_t u;
    memcpy(&u, &x, 4);
    put_le(p, u, 4);
  }
}

/* ---- the tensor list ---------------------------------------------------- */

static void add(ck_list *l, const char *prefix, const char *name,
                const float *data, size_t rows, size_t cols,
                const char *dtype) {
  ck_entry *en = &l->e[l->n++];
  memset(en, 0, sizeof *en);
  snprintf(en->name, sizeof en->name, "%s%s", prefix, name);
  en->data = data;
  en->shape[0] = rows;
  en->shape[1] = cols;
  en->rank = cols ? 2 : 1;
  en->elems = cols ? rows * cols : rows;
  en->dtype = dtype;
  en->elem_bytes = strcmp(dtype, "F32") == 0 ? 4 : 2;
}

static ck_entry *find(ck_list *l, const char *name) {
  for (size_t i = 0; i < l->n; ++i)
    if (strstr(l->e[i].name, name)) return &l->e[i];
  return NULL;
}

static void list_model(ck_list *l, const ref_model *m, const char *dtype,
                       const char *prefix) {
  const retcl_model_config *c = &m->cfg;
  const size_t d = c->embed_dim, dv = c->value_embed_dim, f = c->ffn_dim;
  const size_t V = c->vocab_size, H = c->heads;
  add(l, prefix, "embed_tokens.weight", m->embed, V, d, dtype);
  if (m->emb_norm)
    add(l, prefix, "layernorm_embedding.weight", m->emb_norm, d, 0, dtype);
  for (size_t i = 0; i < c->layers; ++i) {
    const ref_layer *y = &m->layers[i];
    char n[128];
#define LAYER(suffix, ptr, r, cc)                                        \
  snprintf(n, sizeof n, "layers.%zu." suffix, i);                        \
  add(l, prefix, n, y->ptr, r, cc, dtype)
    LAYER("retention.q_proj.weight", wq, d, d);
    LAYER("retention.k_proj.weight", wk, d, d);
    LAYER("retention.v_proj.weight", wv, dv, d);
    LAYER("retention.g_proj.weight", wg, dv, d);
    LAYER("retention.out_proj.weight", wo, d, dv);
    LAYER("retention_layer_norm.weight", ret_norm, d, 0);
    LAYER("ffn.fc1.weight", fc1, f, d);
    LAYER("ffn.gate.weight", gate, f, d);
    LAYER("ffn.fc2.weight", fc2, d, f);
    LAYER("final_layer_norm.weight", ffn_norm, d, 0);
#undef LAYER
  }
  add(l, prefix, "layer_norm.weight", m->final_norm, d, 0, dtype);
  if (m->out_proj)
    add(l, prefix, "output_projection.weight", m->out_proj, V, d, dtype);
  if (m->angle) add(l, prefix, "retnet_rel_pos.angle", m->angle, d / H, 0, dtype);
  if (m->decay) add(l, prefix, "retnet_rel_pos.decay", m->decay, H, 0, dtype);
}

/* Apply the safetensors-level damage to the list. */
static void damage_list(ck_list *l, const ref_model *m,
                        ref_ckpt_damage damage) {
  ck_entry *en;
  switch (damage) {
    case CKPT_MISSING_TENSOR:
      en = find(l, "layers.0.ffn.fc2.weight");
      *en = l->e[--l->n]; /* order does not matter to the format */
      break;
    case CKPT_WRONG_SHAPE: /* consistent sizes, just not what d asks for */
      en = find(l, "layers.0.retention.q_proj.weight");
      en->shape[1] += 1;
      en->elems = en->shape[0] * en->shape[1];
      en->data = NULL;
      break;
    case CKPT_UNKNOWN_DTYPE:
      en = find(l, "layers.0.retention.k_proj.weight");
      en->dtype = "F64";
      en->elem_bytes = 8;
      break;
    case CKPT_OFFSETS_OUT_OF_FILE:
      find(l, "layers.0.ffn.gate.weight")->offsets_outside = 1;
      break;
    default: break;
  }
  (void)m;
}

/* ---- files -------------------------------------------------------------- */

static size_t data_bytes(const ck_list *l) {
  size_t total = 0;
  for (size_t i = 0; i < l->n; ++i) total += l->e[i].elems * l->e[i].elem_bytes;
  return total;
}

/* The JSON header, padded with spaces to a multiple of 8. */
static char *header_json(const ck_list *l, size_t *len) {
  size_t cap = 256 + l->n * 256, used = 0, offset = 0;
  const size_t total = data_bytes(l);
  char *h = malloc(cap);
  if (!h) return NULL;
  used += (size_t)snprintf(h + used, cap - used,
                           "{\"__metadata__\":{\"format\":\"pt\"}");
  for (size_t i = 0; i < l->n; ++i) {
    const ck_entry *en = &l->e[i];
    const size_t bytes = en->elems * en->elem_bytes;
    size_t begin = en->offsets_outside ? total + 64 : offset;
    used += (size_t)snprintf(h + used, cap - used,
                             ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%zu",
                             en->name, en->dtype, en->shape[0]);
    if (en->rank == 2)
      used += (size_t)snprintf(h + used, cap - used, ",%zu", en->shape[1]);
    used += (size_t)snprintf(h + used, cap - used,
                             "],\"data_offsets\":[%zu,%zu]}", begin,
                             begin + bytes);
    offset += bytes;
  }
  used += (size_t)snprintf(h + used, cap - used, "}");
  while (used % 8) h[used++] = ' ';
  *len = used;
  return h;
}

static int write_safetensors(const char *path, const ck_list *l,
                             ref_ckpt_damage damage) {
  size_t hlen = 0;
  char *h = header_json(l, &hlen);
  if (!h) return -1;
  if (damage == CKPT_BAD_JSON_HEADER) {
    memset(h, ' ', hlen);
    memcpy(h, "{\"not\": json at all", 19 < hlen ? 19 : hlen);
  }
  const size_t total = data_bytes(l);
  FILE *f = fopen(path, "wb");
  if (!f) {
    free(h);
    return -1;
  }
  unsigned char len8[8];
  /* A lying length claims one byte more than the rest of the file. */
  put_le(len8, damage == CKPT_HEADER_SIZE_LIES ? hlen + total + 1 : hlen, 8);
  int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h, 1, hlen, f) == hlen;
  free(h);
  for (size_t i = 0; ok && i < l->n; ++i) {
    const ck_entry *en = &l->e[i];
    unsigned char v[8];
    for (size_t k = 0; ok && k < en->elems; ++k) {
      encode_value(en, en->data ? en->data[k] : 0.0f, v);
      ok = fwrite(v, 1, en->elem_bytes, f) == en->elem_bytes;
    }
  }
  ok = fclose(f) == 0 && ok;
  if (ok && damage == CKPT_TRUNCATED)
    ok = truncate(path, (off_t)(8 + hlen + total / 2)) == 0;
  return ok ? 0 : -1;
}

static int write_config(const char *path, const retcl_model_config *c,
                        ref_ckpt_damage damage) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  if (damage == CKPT_BAD_CONFIG_JSON) {
    fprintf(f, "{\"decoder_embed_dim\": %zu,, \"vocab_size\"\n",
            c->embed_dim);
    return fclose(f) == 0 ? 0 : -1;
  }
  const char *tf[2] = {"false", "true"};
  fprintf(f, "{\n  \"decoder_embed_dim\": %zu,\n", c->embed_dim);
  fprintf(f, "  \"decoder_value_embed_dim\": %zu,\n", c->value_embed_dim);
  fprintf(f, "  \"decoder_retention_heads\": %zu,\n", c->heads);
  fprintf(f, "  \"decoder_ffn_embed_dim\": %zu,\n", c->ffn_dim);
  if (damage != CKPT_CONFIG_MISSING_FIELD)
    fprintf(f, "  \"decoder_layers\": %zu,\n", c->layers);
  fprintf(f, "  \"vocab_size\": %zu,\n", c->vocab_size);
  fprintf(f, "  \"activation_fn\": \"%s\",\n",
          c->activation == RETCL_ACT_SWISH ? "swish" : "gelu");
  fprintf(f, "  \"layernorm_eps\": %.9g,\n", (double)c->layernorm_eps);
  fprintf(f, "  \"no_scale_embedding\": %s,\n", tf[!!c->no_scale_embedding]);
  fprintf(f, "  \"layernorm_embedding\": %s,\n", tf[!!c->layernorm_embedding]);
  fprintf(f, "  \"deepnorm\": %s,\n", tf[!!c->deepnorm]);
  fprintf(f, "  \"share_decoder_input_output_embed\": %s,\n",
          tf[!!c->share_embed]);
  fprintf(f, "  \"recurrent_chunk_size\": %zu,\n", c->chunk_size);
  /* torchscale configs carry training fields the loader must ignore. */
  fprintf(f, "  \"dropout\": 0.0,\n  \"checkpoint_activations\": false\n}\n");
  return fclose(f) == 0 ? 0 : -1;
}

void ref_checkpoint_remove(const char *dir) {
  const size_t n = strlen(dir) + 32;
  char *path = malloc(n);
  if (path) {
    snprintf(path, n, "%s/config.json", dir);
    unlink(path);
    snprintf(path, n, "%s/model.safetensors", dir);
    unlink(path);
    free(path);
  }
  rmdir(dir);
}

int ref_checkpoint_write(const ref_model *m, const char *dir,
                         const char *dtype, ref_ckpt_damage damage) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) return -1;
  ck_list *l = calloc(1, sizeof *l);
  if (!l || m->cfg.layers * 10 + 8 > sizeof l->e / sizeof l->e[0]) {
    free(l);
    return -1;
  }
  list_model(l, m, dtype,
             damage == CKPT_DECODER_PREFIX ? "decoder." : "");
  damage_list(l, m, damage);
  const size_t n = strlen(dir) + 32;
  char *cfg_path = malloc(n), *st_path = malloc(n);
  int rc = -1;
  if (cfg_path && st_path) {
    snprintf(cfg_path, n, "%s/config.json", dir);
    snprintf(st_path, n, "%s/model.safetensors", dir);
    rc = write_config(cfg_path, &m->cfg, damage);
    if (rc == 0) rc = write_safetensors(st_path, l, damage);
  }
  free(cfg_path);
  free(st_path);
  free(l);
  return rc;
}
