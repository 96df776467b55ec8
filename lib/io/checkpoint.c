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
  char name[NAME_CAP];  /* canonical (torchscale's), for lookups */
  char shown[NAME_CAP]; /* as the file's layout spells it, for messages */
  size_t rows, cols;
  float **dst;
  int optional;
  /* The part read: rows [row0, +nrows), columns [col0, +ncols) (a vector:
   * ncols 0); the whole tensor unless a heads-split process reads it. */
  size_t row0, nrows, col0, ncols;
} tensor_spec;

typedef retcl_status (*spec_fn)(retcl_context *ctx,
                                const retcl__safetensors *st,
                                const tensor_spec *spec);

typedef struct layer_tensor {
  const char *suffix;
  size_t field;      /* offsetof in retcl__layer_host */
  char rows, cols;   /* 'd' embed, 'v' value embed, 'f' ffn, 0 none */
  char split;        /* which of them a heads split divides: 'r' rows, 'c'
                        columns, 0 neither */
} layer_tensor;

static const layer_tensor LAYER_TENSORS[] = {
    {"retention.q_proj.weight", offsetof(retcl__layer_host, wq), 'd', 'd', 'r'},
    {"retention.k_proj.weight", offsetof(retcl__layer_host, wk), 'd', 'd', 'r'},
    {"retention.v_proj.weight", offsetof(retcl__layer_host, wv), 'v', 'd', 'r'},
    {"retention.g_proj.weight", offsetof(retcl__layer_host, wg), 'v', 'd', 'r'},
    {"retention.out_proj.weight", offsetof(retcl__layer_host, wo), 'd', 'v',
     'c'},
    {"retention_layer_norm.weight", offsetof(retcl__layer_host, ret_norm), 'd',
     0, 0},
    {"ffn.fc1.weight", offsetof(retcl__layer_host, fc1), 'f', 'd', 'r'},
    {"ffn.gate.weight", offsetof(retcl__layer_host, gate), 'f', 'd', 'r'},
    {"ffn.fc2.weight", offsetof(retcl__layer_host, fc2), 'd', 'f', 'c'},
    {"final_layer_norm.weight", offsetof(retcl__layer_host, ffn_norm), 'd', 0,
     0},
};

/* The part of dimension `which` a heads-split process holds: *first and
 * *count in elements (per head Dk of 'd', Dv of 'v'; FFN units of 'f'). */
static void part_of(const retcl_model_config *cfg, const retcl__ckpt_part *p,
                    char which, size_t *first, size_t *count) {
  const size_t per = which == 'd'   ? cfg->embed_dim / cfg->heads
                     : which == 'v' ? cfg->value_embed_dim / cfg->heads
                                    : 1;
  *first = which == 'f' ? p->ffn0 : p->head0 * per;
  *count = which == 'f' ? p->ffn : p->heads * per;
}

static size_t dim_of(const retcl_model_config *cfg, char which) {
  switch (which) {
    case 'd': return cfg->embed_dim;
    case 'v': return cfg->value_embed_dim;
    case 'f': return cfg->ffn_dim;
    default: return 0;
  }
}

/* ---- layouts: which file tensor is which weight ------------------------- */

/* The loader works in torchscale's names (the "canonical" names above and
 * in visit_all). Another layout is a renaming of them, applied to the
 * file's tensors once they are opened (place_tensors), so the passes below
 * never see it; only messages name tensors as the file does.
 *
 * The Hugging Face-style layout of the community ports (syncdoth/RetNet's
 * RetNetForCausalLM and the ports derived from it) wraps the decoder in a
 * "model." module and calls the output projection "lm_head"; some renamed
 * the norms "rms_norm" and the positions module "rel_pos". Every spelling
 * is accepted; the first is the one messages use. */
#define HF_MODEL_PREFIX "model."
#define MAX_ALIASES 2

typedef struct top_name {
  const char *canonical;
  const char *hf[MAX_ALIASES]; /* full names in the HF layout */
} top_name;

static const top_name TOP_NAMES[] = {
    {"embed_tokens.weight", {"model.embed_tokens.weight", NULL}},
    {"layernorm_embedding.weight",
     {"model.layernorm_embedding.weight", "model.rms_norm_embedding.weight"}},
    {"layer_norm.weight", {"model.layer_norm.weight", "model.rms_norm.weight"}},
    {"output_projection.weight", {"lm_head.weight", NULL}},
    {"retnet_rel_pos.angle",
     {"model.retnet_rel_pos.angle", "model.rel_pos.angle"}},
    {"retnet_rel_pos.decay",
     {"model.retnet_rel_pos.decay", "model.rel_pos.decay"}},
};

/* Per-layer suffixes the HF layout may spell differently. */
typedef struct layer_alias {
  const char *hf, *canonical;
} layer_alias;

static const layer_alias LAYER_ALIASES[] = {
    {"retention_rms_norm.weight", "retention_layer_norm.weight"},
    {"final_rms_norm.weight", "final_layer_norm.weight"},
};

/* Where each layout keeps the model's weights: a tensor there that the
 * layout cannot place is an error (another architecture's weight, a layer
 * past decoder_layers), while other stray entries (an int64 step counter,
 * fairseq's "version") are left alone, as the loader always has. */
static const char *const TORCHSCALE_SPACE[] = {"layers.", "embed_tokens.",
                                               "layer_norm.",
                                               "layernorm_embedding.",
                                               "output_projection.",
                                               "retnet_rel_pos."};
static const char *const HF_SPACE[] = {"model.layers.", "model.embed_tokens.",
                                       "lm_head."};
static const char *const IGNORED_NAMES[] = {"version", "model.version"};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *layout_label(retcl__ckpt_layout layout) {
  return layout == RETCL__LAYOUT_HF
             ? "Hugging Face (\"model.\" prefix, lm_head.weight)"
             : "torchscale";
}

static int is_layer_suffix(const char *s) {
  for (size_t i = 0; i < COUNT_OF(LAYER_TENSORS); ++i)
    if (strcmp(s, LAYER_TENSORS[i].suffix) == 0) return 1;
  return 0;
}

/* name = prefix + "<index>." + suffix with index < layers (decimal, no
 * leading zeros): *index and *suffix set, 1; otherwise 0. */
static int split_layer_name(const char *name, const char *prefix,
                            size_t layers, size_t *index,
                            const char **suffix) {
  const size_t plen = strlen(prefix);
  if (strncmp(name, prefix, plen) != 0) return 0;
  const char *p = name + plen;
  size_t n = 0, digits = 0;
  for (; *p >= '0' && *p <= '9'; ++p, ++digits) {
    if (digits == 0 && *p == '0' && p[1] != '.') return 0;
    if (n > (SIZE_MAX - 9) / 10) return 0;
    n = n * 10 + (size_t)(*p - '0');
  }
  if (digits == 0 || *p != '.' || n >= layers) return 0;
  *index = n;
  *suffix = p + 1;
  return 1;
}

/* The canonical name of file tensor `name` in `layout` for cfg, into
 * out[cap]: 1 when placed, 0 when the layout has no place for it. */
static int place_name(retcl__ckpt_layout layout, const char *name,
                      const retcl_model_config *cfg, char *out, size_t cap) {
  size_t index;
  const char *suffix;
  for (size_t i = 0; i < COUNT_OF(TOP_NAMES); ++i) {
    const top_name *t = &TOP_NAMES[i];
    int hit = 0;
    if (layout == RETCL__LAYOUT_TORCHSCALE)
      hit = strcmp(name, t->canonical) == 0;
    for (size_t a = 0; layout == RETCL__LAYOUT_HF && a < MAX_ALIASES; ++a)
      hit |= t->hf[a] && strcmp(name, t->hf[a]) == 0;
    if (hit) {
      snprintf(out, cap, "%s", t->canonical);
      return 1;
    }
  }
  const char *prefix = layout == RETCL__LAYOUT_HF ? HF_MODEL_PREFIX "layers."
                                                  : "layers.";
  if (!split_layer_name(name, prefix, cfg->layers, &index, &suffix)) return 0;
  if (layout == RETCL__LAYOUT_HF)
    for (size_t i = 0; i < COUNT_OF(LAYER_ALIASES); ++i)
      if (strcmp(suffix, LAYER_ALIASES[i].hf) == 0)
        suffix = LAYER_ALIASES[i].canonical;
  if (!is_layer_suffix(suffix)) return 0;
  snprintf(out, cap, "layers.%zu.%s", index, suffix);
  return 1;
}

/* How the file of `layout` names canonical tensor `name` (for messages). */
static void file_name(retcl__ckpt_layout layout, const char *name, char *out,
                      size_t cap) {
  if (layout == RETCL__LAYOUT_HF) {
    for (size_t i = 0; i < COUNT_OF(TOP_NAMES); ++i)
      if (strcmp(name, TOP_NAMES[i].canonical) == 0) {
        snprintf(out, cap, "%s", TOP_NAMES[i].hf[0]);
        return;
      }
    /* Names are far shorter than cap; a cut one would only shorten a
     * message. */
    snprintf(out, cap, HF_MODEL_PREFIX "%.*s",
             (int)(cap > sizeof HF_MODEL_PREFIX ? cap - sizeof HF_MODEL_PREFIX
                                                : 0),
             name);
    return;
  }
  snprintf(out, cap, "%s", name);
}

static int has_prefix_in(const char *name, const char *const *prefixes,
                         size_t count) {
  for (size_t i = 0; i < count; ++i)
    if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return 1;
  return 0;
}

/* A tensor the detected layout cannot place may be skipped when it is
 * neither in that layout's weight namespace nor a weight of another
 * layout (a file mixing layouts). */
static int may_skip(retcl__ckpt_layout layout, const char *name,
                    const retcl_model_config *cfg) {
  for (size_t i = 0; i < COUNT_OF(IGNORED_NAMES); ++i)
    if (strcmp(name, IGNORED_NAMES[i]) == 0) return 1;
  const int in_space =
      layout == RETCL__LAYOUT_HF
          ? has_prefix_in(name, HF_SPACE, COUNT_OF(HF_SPACE))
          : has_prefix_in(name, TORCHSCALE_SPACE, COUNT_OF(TORCHSCALE_SPACE));
  if (in_space) return 0;
  char canonical[NAME_CAP];
  for (int l = 0; l < RETCL__LAYOUT_COUNT; ++l)
    if (l != (int)layout &&
        place_name((retcl__ckpt_layout)l, name, cfg, canonical,
                   sizeof canonical))
      return 0;
  return 1;
}

/* One file tensor with the canonical name it takes. */
typedef struct placed {
  char canonical[NAME_CAP];
  size_t tensor; /* index in st->tensors */
} placed;

static int compare_placed(const void *a, const void *b) {
  return strcmp(((const placed *)a)->canonical,
                ((const placed *)b)->canonical);
}

static int compare_by_name(const void *a, const void *b) {
  return strcmp(((const retcl__st_tensor *)a)->name,
                ((const retcl__st_tensor *)b)->name);
}

/* The layout whose names place the most tensors (torchscale on a tie).
 * FORMAT naming the first tensor (in name order) when none places any. */
static retcl_status detect_layout(retcl_context *ctx,
                                  const retcl__safetensors *st,
                                  const retcl_model_config *cfg,
                                  retcl__ckpt_layout *out) {
  if (st->count == 0)
    return retcl__fail(ctx, RETCL_ERROR_FORMAT, "%s: holds no tensors",
                       st->path);
  size_t best = 0;
  *out = RETCL__LAYOUT_TORCHSCALE;
  for (int l = 0; l < RETCL__LAYOUT_COUNT; ++l) {
    size_t hits = 0;
    char canonical[NAME_CAP];
    for (size_t i = 0; i < st->count; ++i)
      hits += (size_t)place_name((retcl__ckpt_layout)l, st->tensors[i].name,
                                 cfg, canonical, sizeof canonical);
    if (hits > best) {
      best = hits;
      *out = (retcl__ckpt_layout)l;
    }
  }
  if (best) return RETCL_SUCCESS;
  return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                     "%s: unknown layout: tensor '%s' fits neither "
                     "torchscale's names (optionally under \"decoder.\") "
                     "nor the Hugging Face layout (\"model.\" prefix, "
                     "lm_head.weight)",
                     st->path, st->tensors[0].name);
}

/* Give every tensor of st its canonical name for the detected layout, so
 * that retcl__st_find finds the weights by torchscale's names. A tensor in
 * the layout's weight namespace that it cannot place (another model's, or
 * a layer past decoder_layers), a weight of the other layout, and two
 * tensors that are the same weight are FORMAT errors naming the file's
 * tensors (the first in name order); other stray entries are skipped. On
 * error st is unchanged. */
static retcl_status place_tensors(retcl_context *ctx, retcl__safetensors *st,
                                  const retcl_model_config *cfg,
                                  retcl__ckpt_layout *layout) {
  retcl_status s = detect_layout(ctx, st, cfg, layout);
  if (s) return s;
  placed *map = calloc(st->count, sizeof *map);
  if (!map)
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: host allocation for %zu tensor names", st->path,
                       st->count);
  size_t n = 0;
  for (size_t i = 0; i < st->count && !s; ++i) {
    const char *name = st->tensors[i].name;
    if (place_name(*layout, name, cfg, map[n].canonical,
                   sizeof map[n].canonical)) {
      map[n++].tensor = i;
    } else if (!may_skip(*layout, name, cfg)) {
      s = retcl__fail(ctx, RETCL_ERROR_FORMAT,
                      "%s: tensor '%s' has no place in the %s layout of "
                      "this config (decoder_layers = %zu); it is the first "
                      "tensor that could not be placed",
                      st->path, name, layout_label(*layout), cfg->layers);
    }
  }
  if (!s) qsort(map, n, sizeof *map, compare_placed);
  for (size_t i = 1; i < n && !s; ++i)
    if (strcmp(map[i - 1].canonical, map[i].canonical) == 0)
      s = retcl__fail(ctx, RETCL_ERROR_FORMAT,
                      "%s: tensors '%s' and '%s' are the same weight (%s)",
                      st->path, st->tensors[map[i - 1].tensor].name,
                      st->tensors[map[i].tensor].name, map[i].canonical);
  /* Rename: allocate every new name first so a failure changes nothing. */
  char **names = s ? NULL : calloc(n ? n : 1, sizeof *names);
  if (!s && !names)
    s = retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                    "%s: host allocation for tensor names", st->path);
  for (size_t i = 0; i < n && !s; ++i)
    if (!(names[i] = strdup(map[i].canonical)))
      s = retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                      "%s: host allocation for a tensor name", st->path);
  if (!s) {
    for (size_t i = 0; i < n; ++i) {
      retcl__st_tensor *t = &st->tensors[map[i].tensor];
      free(t->name);
      t->name = names[i];
      names[i] = NULL;
    }
    qsort(st->tensors, st->count, sizeof *st->tensors, compare_by_name);
    /* A skipped entry cannot share a weight's name (it would have been
     * placed). */
  }
  for (size_t i = 0; names && i < n; ++i) free(names[i]);
  free(names);
  free(map);
  return s;
}

/* A spec of the whole tensor `name` (canonical) as the file's layout
 * spells it. */
static void spec_init(tensor_spec *spec, retcl__ckpt_layout layout,
                      const char *name, size_t rows, size_t cols, float **dst,
                      int optional) {
  snprintf(spec->name, sizeof spec->name, "%s", name);
  file_name(layout, name, spec->shown, sizeof spec->shown);
  spec->rows = spec->nrows = rows;
  spec->cols = spec->ncols = cols;
  spec->row0 = spec->col0 = 0;
  spec->dst = dst;
  spec->optional = optional;
}

static retcl_status visit(retcl_context *ctx, const retcl__safetensors *st,
                          spec_fn fn, retcl__ckpt_layout layout,
                          const char *name, size_t rows, size_t cols,
                          float **dst, int optional) {
  tensor_spec spec;
  spec_init(&spec, layout, name, rows, cols, dst, optional);
  return fn(ctx, st, &spec);
}

static retcl_status visit_layer(retcl_context *ctx,
                                const retcl__safetensors *st, spec_fn fn,
                                const retcl__checkpoint *ck, size_t index,
                                retcl__layer_host *layer) {
  const retcl_model_config *cfg = &ck->cfg;
  for (size_t i = 0; i < sizeof LAYER_TENSORS / sizeof LAYER_TENSORS[0];
       ++i) {
    const layer_tensor *lt = &LAYER_TENSORS[i];
    char name[NAME_CAP];
    snprintf(name, sizeof name, "layers.%zu.%s", index, lt->suffix);
    float **dst = layer ? (float **)((char *)layer + lt->field) : NULL;
    tensor_spec spec;
    spec_init(&spec, ck->layout, name, dim_of(cfg, lt->rows),
              dim_of(cfg, lt->cols), dst, 0);
    if (ck->part.heads && lt->split == 'r')
      part_of(cfg, &ck->part, lt->rows, &spec.row0, &spec.nrows);
    if (ck->part.heads && lt->split == 'c')
      part_of(cfg, &ck->part, lt->cols, &spec.col0, &spec.ncols);
    retcl_status s = fn(ctx, st, &spec);
    if (s) return s;
  }
  return RETCL_SUCCESS;
}

/* Call fn on every tensor cfg needs, in file-independent order. With
 * ck->layers NULL the specs carry no destinations (the checking pass). */
static retcl_status visit_all(retcl_context *ctx, const retcl__safetensors *st,
                              spec_fn fn, retcl__checkpoint *ck) {
  const retcl_model_config *cfg = &ck->cfg;
  const retcl__ckpt_layout lay = ck->layout;
  const size_t d = cfg->embed_dim, V = cfg->vocab_size;
  const int fill = ck->layers != NULL;
  retcl_status s = visit(ctx, st, fn, lay, "embed_tokens.weight", V, d,
                         fill ? &ck->embed : NULL, 0);
  if (!s && cfg->layernorm_embedding)
    s = visit(ctx, st, fn, lay, "layernorm_embedding.weight", d, 0,
              fill ? &ck->emb_norm : NULL, 0);
  for (size_t l = 0; l < cfg->layers && !s; ++l)
    s = visit_layer(ctx, st, fn, ck, l, fill ? &ck->layers[l] : NULL);
  if (!s)
    s = visit(ctx, st, fn, lay, "layer_norm.weight", d, 0,
              fill ? &ck->final_norm : NULL, 0);
  /* A tied projection is the embedding; a stored copy is ignored. */
  if (!s && !cfg->share_embed)
    s = visit(ctx, st, fn, lay, "output_projection.weight", V, d,
              fill ? &ck->out_proj : NULL, 0);
  if (!s)
    s = visit(ctx, st, fn, lay, "retnet_rel_pos.angle", d / cfg->heads, 0,
              fill ? &ck->angle : NULL, 1);
  if (!s)
    s = visit(ctx, st, fn, lay, "retnet_rel_pos.decay", cfg->heads, 0,
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
                       st->path, spec->shown);
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
                     spec->shown, found, expected);
}

/* Second pass: allocate and read (shapes already match the file, so the
 * allocation is bounded by the file's size). */
static retcl_status read_spec(retcl_context *ctx, const retcl__safetensors *st,
                              const tensor_spec *spec) {
  const retcl__st_tensor *t = retcl__st_find(st, spec->name);
  if (!t) return RETCL_SUCCESS; /* optional and absent */
  const int whole = spec->nrows == spec->rows && spec->ncols == spec->cols;
  const size_t n = whole ? t->elems : spec->nrows * spec->ncols;
  float *data = malloc(n ? n * sizeof(float) : 1);
  if (!data)
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: host allocation for tensor '%s' (%zu floats)",
                       st->path, spec->name, n);
  retcl_status s =
      whole ? retcl__st_read_f32(ctx, st, t, data)
            : retcl__st_read_window(ctx, st, t, spec->cols, spec->row0,
                                    spec->nrows, spec->col0, spec->ncols,
                                    data);
  if (s) {
    free(data);
    return s;
  }
  *spec->dst = data;
  return RETCL_SUCCESS;
}

static retcl_status read_config(retcl_context *ctx, const char *dir,
                                retcl_model_config *cfg);

retcl_status retcl__checkpoint_read_config(retcl_context *ctx, const char *dir,
                                           retcl_model_config *cfg) {
  if (!dir)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "checkpoint folder is NULL");
  return read_config(ctx, dir, cfg);
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
  s = place_tensors(ctx, &st, &ck->cfg, &ck->layout);
  if (!s) s = visit_all(ctx, &st, check_spec, ck);
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
  return retcl__checkpoint_read_part(ctx, dir, NULL, out);
}

retcl_status retcl__checkpoint_read_part(retcl_context *ctx, const char *dir,
                                         const retcl__ckpt_part *part,
                                         retcl__checkpoint *out) {
  if (!out)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "retcl__checkpoint_read: out is NULL");
  memset(out, 0, sizeof *out);
  if (!dir)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "checkpoint folder is NULL");
  if (part) out->part = *part;
  retcl_status s = read_config(ctx, dir, &out->cfg);
  if (!s && out->part.heads &&
      (out->part.head0 + out->part.heads > out->cfg.heads ||
       out->part.ffn0 + out->part.ffn > out->cfg.ffn_dim))
    s = retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                    "%s: heads [%zu, %zu) or FFN units [%zu, %zu) outside "
                    "the model's %zu heads and %zu units",
                    dir, out->part.head0, out->part.head0 + out->part.heads,
                    out->part.ffn0, out->part.ffn0 + out->part.ffn,
                    out->cfg.heads, out->cfg.ffn_dim);
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
