/* test_checkpoint.c - checkpoint folders (docs/design.md §1.6) through the public
 * API: every way ref_checkpoint_write can damage one gives its exact status and a
 * message naming the tensor or field; F32, F16, BF16 and "decoder."-prefixed
 * checkpoints load with their config; retcl_checkpoint_write_random output
 * loads and is deterministic; mangled headers never crash the loader. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, opendir */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------ */

/* d 16, dv 24, H 2 (Dk 8, Dv 12), ffn 20, L 2, V 11: small, Dk != Dv, and
 * no size equals another so a swapped dimension cannot pass. */
static retcl_model_config small_config(void) {
  retcl_model_config c;
  retcl_model_config_default(&c);
  c.embed_dim = 16;
  c.value_embed_dim = 24;
  c.heads = 2;
  c.ffn_dim = 20;
  c.layers = 2;
  c.vocab_size = 11;
  c.activation = RETCL_ACT_SWISH;
  c.layernorm_eps = 1e-5f;
  c.no_scale_embedding = 0;
  c.chunk_size = 7;
  return c;
}

static float *rand_vec(size_t n, double lo, double hi) {
  float *x = tu_alloc(n);
  tu_fill_uniform(x, n, lo, hi);
  return x;
}

/* A ref_model built here (ref_model_random belongs to the model tests):
 * out_proj is written whenever with_out_proj, even for a tied config. */
static void make_model(ref_model *m, const retcl_model_config *c,
                       int with_rel_pos, int with_out_proj) {
  const size_t d = c->embed_dim, dv = c->value_embed_dim, f = c->ffn_dim;
  const size_t V = c->vocab_size;
  memset(m, 0, sizeof *m);
  m->cfg = *c;
  m->embed = rand_vec(V * d, -1, 1);
  m->emb_norm = c->layernorm_embedding ? rand_vec(d, 0.9, 1.1) : NULL;
  m->final_norm = rand_vec(d, 0.9, 1.1);
  m->out_proj = with_out_proj ? rand_vec(V * d, -1, 1) : NULL;
  m->angle = with_rel_pos ? rand_vec(d / c->heads, 0, 1) : NULL;
  m->decay = with_rel_pos ? rand_vec(c->heads, -0.1, -0.001) : NULL;
  m->layers = calloc(c->layers, sizeof *m->layers);
  ck_assert_ptr_nonnull(m->layers);
  for (size_t l = 0; l < c->layers; ++l) {
    ref_layer *y = &m->layers[l];
    y->wq = rand_vec(d * d, -1, 1);
    y->wk = rand_vec(d * d, -1, 1);
    y->wv = rand_vec(dv * d, -1, 1);
    y->wg = rand_vec(dv * d, -1, 1);
    y->wo = rand_vec(d * dv, -1, 1);
    y->ret_norm = rand_vec(d, 0.9, 1.1);
    y->fc1 = rand_vec(f * d, -1, 1);
    y->gate = rand_vec(f * d, -1, 1);
    y->fc2 = rand_vec(d * f, -1, 1);
    y->ffn_norm = rand_vec(d, 0.9, 1.1);
  }
}

/* Load dir and compare its config with want. */
static void assert_loads(retcl_context *ctx, const char *dir,
                         const retcl_model_config *want) {
  retcl_model *model = NULL;
  tu_ok(ctx, retcl_model_load(ctx, dir, &model));
  ck_assert_ptr_nonnull(model);
  retcl_model_config got;
  tu_ok(ctx, retcl_model_get_config(model, &got));
  tu_assert_same_config(&got, want);
  retcl_model_destroy(model);
}

/* ---- damaged checkpoints ------------------------------------------------ */

typedef struct damage_case {
  ref_ckpt_damage damage;
  retcl_status status;
  const char *needles[4];
} damage_case;

static const damage_case DAMAGES[] = {
    {CKPT_MISSING_TENSOR, RETCL_ERROR_FORMAT,
     {"model.safetensors: tensor 'layers.0.ffn.fc2.weight' is missing"}},
    {CKPT_WRONG_SHAPE, RETCL_ERROR_FORMAT,
     {"layers.0.retention.q_proj.weight", "[16, 17]", "[16, 16]"}},
    {CKPT_UNKNOWN_DTYPE, RETCL_ERROR_FORMAT,
     {"layers.0.retention.k_proj.weight", "F64"}},
    {CKPT_TRUNCATED, RETCL_ERROR_FORMAT, {"model.safetensors", "tensor '"}},
    {CKPT_BAD_JSON_HEADER, RETCL_ERROR_FORMAT, {"model.safetensors", "JSON"}},
    {CKPT_OFFSETS_OUT_OF_FILE, RETCL_ERROR_FORMAT,
     {"model.safetensors", "layers.0.ffn.gate.weight", "data_offsets"}},
    {CKPT_HEADER_SIZE_LIES, RETCL_ERROR_FORMAT,
     {"model.safetensors", "header length"}},
    {CKPT_BAD_CONFIG_JSON, RETCL_ERROR_FORMAT, {"config.json", "JSON"}},
    {CKPT_CONFIG_MISSING_FIELD, RETCL_ERROR_FORMAT,
     {"config.json", "decoder_layers"}},
};

START_TEST(damaged_checkpoints_fail_with_their_status) {
  const damage_case *dc = &DAMAGES[_i];
  const char *dtypes[3] = {"F32", "F16", "BF16"};
  retcl_context *ctx = tu_context();
  retcl_model_config c = small_config();
  ref_model m;
  make_model(&m, &c, 1, 1);
  char *root = tu_temp_dir("retcl-ckpt");
  for (int k = 0; k < 3; ++k) {
    char *dir = tu_path(root, dtypes[k]);
    ck_assert_int_eq(ref_checkpoint_write(&m, dir, dtypes[k], dc->damage), 0);
    tu_assert_load_fails(ctx, dir, dc->status, dc->needles);
    free(dir);
  }
  tu_rm_tree(root);
  free(root);
  ref_model_free(&m);
  retcl_context_destroy(ctx);
}
END_TEST

START_TEST(missing_folder_or_file_is_io) {
  retcl_context *ctx = tu_context();
  char *root = tu_temp_dir("retcl-ckpt");
  char *nowhere = tu_path(root, "does-not-exist");
  const char *cfg_needle[] = {"config.json", NULL};
  tu_assert_load_fails(ctx, nowhere, RETCL_ERROR_IO, cfg_needle);

  /* A config without its safetensors file. */
  retcl_model_config c = small_config();
  ref_model m;
  make_model(&m, &c, 0, 1);
  ck_assert_int_eq(ref_checkpoint_write(&m, nowhere, "F32", CKPT_OK), 0);
  char *st = tu_path(nowhere, "model.safetensors");
  ck_assert_int_eq(unlink(st), 0);
  const char *st_needle[] = {"model.safetensors", NULL};
  tu_assert_load_fails(ctx, nowhere, RETCL_ERROR_IO, st_needle);

  tu_assert_status(ctx, retcl_model_load(ctx, NULL, &(retcl_model *){NULL}),
                   RETCL_ERROR_INVALID_ARGUMENT);
  free(st);
  free(nowhere);
  tu_rm_tree(root);
  free(root);
  ref_model_free(&m);
  retcl_context_destroy(ctx);
}
END_TEST

/* ---- config.json -------------------------------------------------------- */

typedef struct config_case {
  const char *json;
  retcl_status status;
  const char *needle;
} config_case;

#define SIZES                                                        \
  "\"decoder_embed_dim\": 16, \"decoder_value_embed_dim\": 24, "     \
  "\"decoder_retention_heads\": 2, \"decoder_ffn_embed_dim\": 20, "  \
  "\"decoder_layers\": 2, \"vocab_size\": 11"

static const config_case CONFIGS[] = {
    /* d % H != 0 (the tensors still match d = 15 nowhere, but the config
     * is judged first). */
    {"{\"decoder_embed_dim\": 15, \"decoder_value_embed_dim\": 24, "
     "\"decoder_retention_heads\": 2, \"decoder_ffn_embed_dim\": 20, "
     "\"decoder_layers\": 2, \"vocab_size\": 11}",
     RETCL_ERROR_INVALID_SIZE, "decoder_embed_dim"},
    {"{\"decoder_embed_dim\": 16, \"decoder_value_embed_dim\": 25, "
     "\"decoder_retention_heads\": 2, \"decoder_ffn_embed_dim\": 20, "
     "\"decoder_layers\": 2, \"vocab_size\": 11}",
     RETCL_ERROR_INVALID_SIZE, "decoder_value_embed_dim"},
    /* Dk = 18 / 2 = 9 is odd. */
    {"{\"decoder_embed_dim\": 18, \"decoder_value_embed_dim\": 24, "
     "\"decoder_retention_heads\": 2, \"decoder_ffn_embed_dim\": 20, "
     "\"decoder_layers\": 2, \"vocab_size\": 11}",
     RETCL_ERROR_INVALID_SIZE, "decoder_embed_dim"},
    {"{" SIZES ", \"layernorm_eps\": 0}", RETCL_ERROR_INVALID_SIZE,
     "layernorm_eps"},
    {"{" SIZES ", \"recurrent_chunk_size\": 0}", RETCL_ERROR_INVALID_SIZE,
     "recurrent_chunk_size"},
    {"{\"decoder_embed_dim\": 16, \"decoder_retention_heads\": 2, "
     "\"decoder_layers\": 2}",
     RETCL_ERROR_FORMAT, "vocab_size"},
    {"{\"decoder_embed_dim\": 16, \"decoder_layers\": 2, \"vocab_size\": 11}",
     RETCL_ERROR_FORMAT, "decoder_retention_heads"},
    {"{\"decoder_embed_dim\": 16, \"decoder_value_embed_dim\": 24, "
     "\"decoder_retention_heads\": 2, \"decoder_ffn_embed_dim\": 20, "
     "\"decoder_layers\": \"2\", \"vocab_size\": 11}",
     RETCL_ERROR_FORMAT, "decoder_layers"},
    {"{\"decoder_embed_dim\": 16, \"decoder_value_embed_dim\": 24, "
     "\"decoder_retention_heads\": 2, \"decoder_ffn_embed_dim\": 20.5, "
     "\"decoder_layers\": 2, \"vocab_size\": 11}",
     RETCL_ERROR_FORMAT, "decoder_ffn_embed_dim"},
    {"{\"decoder_embed_dim\": 16, \"decoder_value_embed_dim\": 24, "
     "\"decoder_retention_heads\": 2, \"decoder_ffn_embed_dim\": 20, "
     "\"decoder_layers\": 2, \"vocab_size\": -1}",
     RETCL_ERROR_INVALID_SIZE, "vocab_size"},
    {"{" SIZES ", \"activation_fn\": \"relu\"}", RETCL_ERROR_FORMAT,
     "activation_fn"},
    {"{" SIZES ", \"activation_fn\": 3}", RETCL_ERROR_FORMAT, "activation_fn"},
    {"{" SIZES ", \"deepnorm\": \"yes\"}", RETCL_ERROR_FORMAT, "deepnorm"},
    {"{" SIZES ", \"layernorm_eps\": \"1e-6\"}", RETCL_ERROR_FORMAT,
     "layernorm_eps"},
    {"[16, 24, 2]", RETCL_ERROR_FORMAT, "config.json"},
    {"", RETCL_ERROR_FORMAT, "config.json"},
};

START_TEST(bad_configs_name_the_field) {
  const config_case *cc = &CONFIGS[_i];
  retcl_context *ctx = tu_context();
  retcl_model_config c = small_config();
  ref_model m;
  make_model(&m, &c, 0, 1);
  char *dir = tu_temp_dir("retcl-ckpt");
  ck_assert_int_eq(ref_checkpoint_write(&m, dir, "F32", CKPT_OK), 0);
  tu_write_text(dir, "config.json", cc->json);
  const char *needles[] = {cc->needle, NULL};
  tu_assert_load_fails(ctx, dir, cc->status, needles);
  tu_rm_tree(dir);
  free(dir);
  ref_model_free(&m);
  retcl_context_destroy(ctx);
}
END_TEST

/* Fields left out take torchscale's defaults; "silu" is swish; unknown
 * fields are ignored. */
START_TEST(config_defaults_are_torchscales) {
  retcl_context *ctx = tu_context();
  retcl_model_config c = small_config();
  ref_model m;
  make_model(&m, &c, 0, 1);
  char *dir = tu_temp_dir("retcl-ckpt");
  ck_assert_int_eq(ref_checkpoint_write(&m, dir, "F32", CKPT_OK), 0);
  tu_write_text(dir, "config.json",
                "{" SIZES ", \"dropout\": 0.1, \"xpos_rel_pos\": false}");
  retcl_model_config want = c;
  want.activation = RETCL_ACT_GELU;
  want.layernorm_eps = 1e-6f;
  want.no_scale_embedding = 1;
  want.layernorm_embedding = 0;
  want.deepnorm = 0;
  want.share_embed = 0;
  want.chunk_size = 512;
  assert_loads(ctx, dir, &want);

  tu_write_text(dir, "config.json",
                "{" SIZES ", \"activation_fn\": \"silu\", \"deepnorm\": 1, "
                "\"no_scale_embedding\": false, \"layernorm_eps\": 1e-5}");
  want.activation = RETCL_ACT_SWISH;
  want.deepnorm = 1;
  want.no_scale_embedding = 0;
  want.layernorm_eps = 1e-5f;
  assert_loads(ctx, dir, &want);
  tu_rm_tree(dir);
  free(dir);
  ref_model_free(&m);
  retcl_context_destroy(ctx);
}
END_TEST

START_TEST(default_config_is_torchscales) {
  retcl_model_config c;
  retcl_model_config_default(&c);
  ck_assert_uint_eq(c.embed_dim, 768);
  ck_assert_uint_eq(c.value_embed_dim, 1280);
  ck_assert_uint_eq(c.heads, 3);
  ck_assert_uint_eq(c.ffn_dim, 1280);
  ck_assert_uint_eq(c.layers, 12);
  ck_assert_uint_eq(c.vocab_size, 0);
  ck_assert_int_eq(c.activation, RETCL_ACT_GELU);
  ck_assert_float_eq(c.layernorm_eps, 1e-6f);
  ck_assert_int_eq(c.no_scale_embedding, 1);
  ck_assert_int_eq(c.layernorm_embedding, 0);
  ck_assert_int_eq(c.deepnorm, 0);
  ck_assert_int_eq(c.share_embed, 0);
  ck_assert_uint_eq(c.chunk_size, 512);
  retcl_model_config_default(NULL); /* a no-op, not a crash */
}
END_TEST

/* ---- good checkpoints --------------------------------------------------- */

START_TEST(every_dtype_and_variant_loads) {
  const char *dtypes[3] = {"F32", "F16", "BF16"};
  retcl_context *ctx = tu_context();
  char *root = tu_temp_dir("retcl-ckpt");
  for (int variant = 0; variant < 4; ++variant) {
    retcl_model_config c = small_config();
    /* 1: tied embedding with an embedding norm; 2: tied but the file still
     * holds output_projection (ignored); 3: one head, no rel-pos buffers. */
    c.share_embed = variant == 1 || variant == 2;
    c.layernorm_embedding = variant == 1;
    if (variant == 3) {
      c.heads = 1;
      c.layers = 1;
    }
    ref_model m;
    make_model(&m, &c, variant != 3, variant != 1);
    for (int k = 0; k < 3; ++k) {
      char name[32];
      snprintf(name, sizeof name, "v%d-%s", variant, dtypes[k]);
      char *dir = tu_path(root, name);
      ck_assert_int_eq(ref_checkpoint_write(&m, dir, dtypes[k], CKPT_OK), 0);
      assert_loads(ctx, dir, &c);
      free(dir);
    }
    ref_model_free(&m);
  }
  tu_rm_tree(root);
  free(root);
  retcl_context_destroy(ctx);
}
END_TEST

START_TEST(decoder_prefix_loads) {
  retcl_context *ctx = tu_context();
  retcl_model_config c = small_config();
  c.layernorm_embedding = 1;
  ref_model m;
  make_model(&m, &c, 1, 1);
  char *dir = tu_temp_dir("retcl-ckpt");
  ck_assert_int_eq(ref_checkpoint_write(&m, dir, "BF16", CKPT_DECODER_PREFIX), 0);
  assert_loads(ctx, dir, &c);
  tu_rm_tree(dir);
  free(dir);
  ref_model_free(&m);
  retcl_context_destroy(ctx);
}
END_TEST

/* ---- retcl_checkpoint_write_random -------------------------------------- */

static int same_file(const char *a, const char *b) {
  size_t na, nb;
  unsigned char *x = tu_slurp(a, &na), *y = tu_slurp(b, &nb);
  int same = na == nb && memcmp(x, y, na) == 0;
  free(x);
  free(y);
  return same;
}

static void write_random(const retcl_model_config *c, uint64_t seed,
                         retcl_dtype dtype, const char *dir) {
  retcl_status st = retcl_checkpoint_write_random(c, seed, dtype, dir);
  ck_assert_msg(st == RETCL_SUCCESS, "retcl_checkpoint_write_random: %s",
                retcl_last_error(NULL));
}

START_TEST(write_random_loads_and_is_deterministic) {
  retcl_context *ctx = tu_context();
  retcl_model_config c = small_config();
  c.layernorm_embedding = 1;
  char *root = tu_temp_dir("retcl-ckpt");
  char *a = tu_path(root, "a"), *b = tu_path(root, "b/nested/deeper");
  char *other = tu_path(root, "other");
  for (int dt = 0; dt < 3; ++dt) {
    write_random(&c, 1234, (retcl_dtype)dt, a);
    write_random(&c, 1234, (retcl_dtype)dt, b); /* creates the parents */
    write_random(&c, 1235, (retcl_dtype)dt, other);
    assert_loads(ctx, a, &c);
    assert_loads(ctx, other, &c);
    char *fa = tu_path(a, "model.safetensors");
    char *fb = tu_path(b, "model.safetensors");
    char *fo = tu_path(other, "model.safetensors");
    char *ca = tu_path(a, "config.json"), *cb = tu_path(b, "config.json");
    ck_assert_msg(same_file(fa, fb), "same seed, different weights");
    ck_assert_msg(same_file(ca, cb), "same config, different config.json");
    ck_assert_msg(!same_file(fa, fo), "different seeds, same weights");
    free(fa);
    free(fb);
    free(fo);
    free(ca);
    free(cb);
  }
  /* A tied embedding has no output_projection; swish and gelu survive. */
  c.share_embed = 1;
  c.activation = RETCL_ACT_GELU;
  c.deepnorm = 1;
  write_random(&c, 7, RETCL_DTYPE_F16, a);
  assert_loads(ctx, a, &c);
  free(a);
  free(b);
  free(other);
  tu_rm_tree(root);
  free(root);
  retcl_context_destroy(ctx);
}
END_TEST

START_TEST(write_random_rejects_bad_arguments) {
  retcl_model_config c = small_config();
  char *root = tu_temp_dir("retcl-ckpt");
  char *dir = tu_path(root, "x");
  ck_assert_int_eq(retcl_checkpoint_write_random(NULL, 1, 0, dir),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_int_eq(retcl_checkpoint_write_random(&c, 1, 0, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_int_eq(retcl_checkpoint_write_random(&c, 1, (retcl_dtype)7, dir),
                   RETCL_ERROR_INVALID_ARGUMENT);
  c.heads = 3; /* 16 % 3 != 0 */
  ck_assert_int_eq(retcl_checkpoint_write_random(&c, 1, 0, dir),
                   RETCL_ERROR_INVALID_SIZE);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(NULL), "decoder_embed_dim"));
  c = small_config();
  c.vocab_size = 0;
  ck_assert_int_eq(retcl_checkpoint_write_random(&c, 1, 0, dir),
                   RETCL_ERROR_INVALID_SIZE);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(NULL), "vocab_size"));
  /* Nothing was written for the rejected calls. */
  ck_assert_int_ne(access(dir, F_OK), 0);
  /* A file where the folder should be. */
  c = small_config();
  tu_write_text(root, "x", "not a folder");
  ck_assert_int_eq(retcl_checkpoint_write_random(&c, 1, 0, dir),
                   RETCL_ERROR_IO);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(NULL), dir));
  free(dir);
  tu_rm_tree(root);
  free(root);
}
END_TEST

/* ---- robustness --------------------------------------------------------- */

/* A one-layer random checkpoint (seed, dtype) in a fresh folder and its
 * file `name` in memory (orig, len), with buf of len bytes for each
 * mangled variant. */
typedef struct mangle_fixture {
  retcl_context *ctx;
  char *dir, *path;
  unsigned char *orig, *buf;
  size_t len;
} mangle_fixture;

static void mangle_begin(mangle_fixture *mf, uint64_t seed, retcl_dtype dtype,
                         const char *name) {
  mf->ctx = tu_context();
  retcl_model_config c = small_config();
  c.layers = 1;
  mf->dir = tu_temp_dir("retcl-ckpt");
  write_random(&c, seed, dtype, mf->dir);
  mf->path = tu_path(mf->dir, name);
  mf->orig = tu_slurp(mf->path, &mf->len);
  mf->buf = malloc(mf->len);
}

static void mangle_end(mangle_fixture *mf) {
  free(mf->orig);
  free(mf->buf);
  free(mf->path);
  tu_rm_tree(mf->dir);
  free(mf->dir);
  retcl_context_destroy(mf->ctx);
}

/* Variant v: the first n bytes of buf as the file, then the folder loaded.
 * It may load or be refused (FORMAT, IO, and INVALID_SIZE when
 * size_error_allowed), never crash; returns the status, the model (NULL
 * when refused) in *model. */
static retcl_status load_variant(mangle_fixture *mf, size_t n, int v,
                                 int size_error_allowed, retcl_model **model) {
  tu_write_file(mf->path, mf->buf, n);
  *model = NULL;
  retcl_status st = retcl_model_load(mf->ctx, mf->dir, model);
  ck_assert_msg(st == RETCL_SUCCESS || st == RETCL_ERROR_FORMAT ||
                    st == RETCL_ERROR_IO ||
                    (size_error_allowed && st == RETCL_ERROR_INVALID_SIZE),
                "variant %d: status %d (%s), seed %llu", v, (int)st,
                retcl_last_error(mf->ctx), (unsigned long long)tu_seed());
  return st;
}

/* A mangled copy of the valid file: random bytes changed in the length
 * field or the JSON header, or the file cut short. */
static size_t mangle(const unsigned char *orig, size_t len, size_t header_end,
                     unsigned char *out) {
  memcpy(out, orig, len);
  const int mode = (int)tu_uniform(0, 4);
  if (mode == 3) /* cut anywhere */
    return (size_t)tu_uniform(0, (double)len);
  const int flips = 1 + (int)tu_uniform(0, 4);
  for (int i = 0; i < flips; ++i) {
    size_t at = mode == 0 ? (size_t)tu_uniform(0, 8)
                          : (size_t)tu_uniform(0, (double)header_end);
    out[at] = mode == 2 ? (unsigned char)tu_uniform(0, 256)
                        : (unsigned char)(out[at] ^ (1u << (int)tu_uniform(0, 8)));
  }
  return len;
}

START_TEST(mangled_headers_never_crash) {
  mangle_fixture mf;
  mangle_begin(&mf, 99, RETCL_DTYPE_F16, "model.safetensors");
  size_t header_end = 8;
  for (int b = 7; b >= 0; --b)
    header_end += (size_t)mf.orig[b] << (8 * b);
  ck_assert_uint_lt(header_end, mf.len);
  int loaded = 0, refused = 0;
  for (int v = 0; v < 200; ++v) {
    const size_t n = mangle(mf.orig, mf.len, header_end, mf.buf);
    retcl_model *model;
    if (load_variant(&mf, n, v, 0, &model) == RETCL_SUCCESS) {
      ++loaded;
    } else {
      ++refused;
      ck_assert_msg(retcl_last_error(mf.ctx)[0] != '\0',
                    "variant %d: no message", v);
    }
    retcl_model_destroy(model);
  }
  ck_assert_int_gt(refused, 0);
  (void)loaded;
  mangle_end(&mf);
}
END_TEST

/* The same for config.json, where a changed digit may also give a size the
 * kernels cannot run. */
START_TEST(mangled_configs_never_crash) {
  mangle_fixture mf;
  mangle_begin(&mf, 5, RETCL_DTYPE_F32, "config.json");
  for (int v = 0; v < 100; ++v) {
    memcpy(mf.buf, mf.orig, mf.len);
    size_t n = mf.len;
    if (v % 4 == 3)
      n = (size_t)tu_uniform(0, (double)mf.len);
    else
      mf.buf[(size_t)tu_uniform(0, (double)mf.len)] =
          (unsigned char)tu_uniform(0, 256);
    retcl_model *model;
    load_variant(&mf, n, v, 1, &model);
    retcl_model_destroy(model);
  }
  mangle_end(&mf);
}
END_TEST

int main(void) {
  Suite *s = suite_create("checkpoint");
  TCase *tc = tcase_create("checkpoint");
  tcase_add_loop_test(tc, damaged_checkpoints_fail_with_their_status, 0,
                      (int)(sizeof DAMAGES / sizeof DAMAGES[0]));
  tcase_add_test(tc, missing_folder_or_file_is_io);
  tcase_add_loop_test(tc, bad_configs_name_the_field, 0,
                      (int)(sizeof CONFIGS / sizeof CONFIGS[0]));
  tcase_add_test(tc, config_defaults_are_torchscales);
  tcase_add_test(tc, default_config_is_torchscales);
  tcase_add_test(tc, every_dtype_and_variant_loads);
  tcase_add_test(tc, decoder_prefix_loads);
  tcase_add_test(tc, write_random_loads_and_is_deterministic);
  tcase_add_test(tc, write_random_rejects_bad_arguments);
  tcase_add_test(tc, mangled_headers_never_crash);
  tcase_add_test(tc, mangled_configs_never_crash);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
