/* test_checkpoint_hf.c - the Hugging Face-style checkpoint layout of the
 * community RetNet ports (docs/design.md §1.6): a checkpoint the test
 * writes in that layout (its config.json field names, "model." tensor
 * names, lm_head.weight, the "rms_norm"/"rel_pos" spellings of the renamed
 * ports) loads to a model whose logits are bitwise those of the same
 * weights in torchscale's layout, tied and untied, F32 and BF16, and
 * within the model tolerance of the double reference; files whose names
 * fit no layout, a tensor the layout cannot place, two tensors that are
 * one weight and contradictory or unsupported config fields are FORMAT
 * errors naming the tensor or field, and leave no model. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, opendir, strdup */

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

/* As tests/test_model.c: fp32 logits through two blocks against the double
 * reference; a misplaced weight gives errors of 1e-2 or more. */
#define MODEL_TOL 2e-5

/* ---- helpers ------------------------------------------------------------ */

/* d 16, dv 24, H 2, ffn 20, L 2, V 11: no two sizes equal, so a weight put
 * in another's place cannot pass a shape check. */
static retcl_model_config small_config(int tied) {
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
  c.layernorm_embedding = 1;
  c.share_embed = tied;
  c.chunk_size = 3;
  return c;
}

/* ---- renaming a torchscale checkpoint's tensors ------------------------- */

/* A renaming of torchscale's tensor names (out[cap]). */
typedef void (*rename_fn)(const char *name, char *out, size_t cap,
                          const void *arg);

/* Replace every `from` in s by `to` (in place, s has room for cap). */
static void replace_all(char *s, size_t cap, const char *from,
                        const char *to) {
  char buf[512];
  size_t used = 0;
  const size_t fl = strlen(from), tl = strlen(to);
  for (const char *p = s; *p && used + tl + 1 < sizeof buf;) {
    if (strncmp(p, from, fl) == 0) {
      memcpy(buf + used, to, tl);
      used += tl;
      p += fl;
    } else {
      buf[used++] = *p++;
    }
  }
  buf[used] = '\0';
  snprintf(s, cap, "%s", buf);
}

/* The ports' layout: RetNetForCausalLM holds the decoder as "model" and
 * the output projection as "lm_head". arg non-NULL: the renamed ports'
 * spellings too ("layernorm"/"layer_norm" -> "rms_norm", "retnet_rel_pos"
 * -> "rel_pos"). */
static void hf_name(const char *name, char *out, size_t cap,
                    const void *arg) {
  if (strcmp(name, "output_projection.weight") == 0) {
    snprintf(out, cap, "lm_head.weight");
    return;
  }
  snprintf(out, cap, "model.%s", name);
  if (arg) {
    replace_all(out, cap, "layernorm", "rms_norm");
    replace_all(out, cap, "layer_norm", "rms_norm");
    replace_all(out, cap, "retnet_rel_pos.", "rel_pos.");
  }
}

/* Another model family's names: everything under "transformer.". */
static void foreign_name(const char *name, char *out, size_t cap,
                         const void *arg) {
  (void)arg;
  snprintf(out, cap, "transformer.%s", name);
}

/* The HF layout with one tensor renamed: arg = {from, to} (HF names). */
static void hf_one_renamed(const char *name, char *out, size_t cap,
                           const void *arg) {
  const char *const *pair = arg;
  hf_name(name, out, cap, NULL);
  if (strcmp(out, pair[0]) == 0) snprintf(out, cap, "%s", pair[1]);
}

/* Copy src/model.safetensors to dst/model.safetensors with every tensor
 * renamed (data bytes untouched: the header's offsets are relative to the
 * data). The header is the one ref_checkpoint_write writes: each entry a
 * key "name" followed by :{"dtype". */
static void rename_tensors(const char *src, const char *dst, rename_fn fn,
                           const void *arg) {
  char *in_path = tu_path(src, "model.safetensors");
  size_t len;
  unsigned char *in = tu_slurp(in_path, &len);
  uint64_t hlen = 0;
  for (int b = 7; b >= 0; --b) hlen = (hlen << 8) | in[b];
  ck_assert_uint_le(8 + hlen, len);
  char *header = malloc(hlen + 1);
  memcpy(header, in + 8, hlen);
  header[hlen] = '\0';
  size_t cap = hlen * 2 + 4096, used = 0;
  char *out = malloc(cap);
  const char *marker = "\":{\"dtype\"";
  const char *p = header; /* copied up to here */
  for (const char *hit; (hit = strstr(p + (p != header), marker)) != NULL;) {
    const char *open = hit - 1;
    while (open > p && *open != '"') --open;
    ck_assert_msg(*open == '"', "unexpected header text");
    char name[256], renamed[256];
    snprintf(name, sizeof name, "%.*s", (int)(hit - open - 1), open + 1);
    fn(name, renamed, sizeof renamed, arg);
    used += (size_t)snprintf(out + used, cap - used, "%.*s\"%s",
                             (int)(open - p), p, renamed);
    p = hit;
  }
  used += (size_t)snprintf(out + used, cap - used, "%s", p);
  while (used > 0 && out[used - 1] == ' ') --used; /* the old padding */
  while (used % 8) out[used++] = ' ';
  mkdir(dst, 0777);
  char *out_path = tu_path(dst, "model.safetensors");
  FILE *f = fopen(out_path, "wb");
  ck_assert_ptr_nonnull(f);
  unsigned char len8[8];
  for (int b = 0; b < 8; ++b) len8[b] = (unsigned char)((uint64_t)used >> (8 * b));
  ck_assert_int_eq(fwrite(len8, 1, 8, f), 8);
  ck_assert_int_eq(fwrite(out, 1, used, f), used);
  const size_t data = len - 8 - (size_t)hlen;
  ck_assert_int_eq(fwrite(in + 8 + hlen, 1, data, f), data);
  ck_assert_int_eq(fclose(f), 0);
  free(out_path);
  free(out);
  free(header);
  free(in);
  free(in_path);
}

/* ---- the ports' config.json --------------------------------------------- */

/* config.json as a port saves it: style 0 is syncdoth/RetNet's
 * RetNetConfig (torchscale's size names, tie_word_embeddings, training
 * fields); style 1 the renamed ports' (rms_norm_embedding, rms_norm_eps,
 * groupnorm_eps, forward_mode) with transformers' attribute names
 * (hidden_size, num_hidden_layers, ...) for the sizes that have one. */
static void write_hf_config(const char *dir, const retcl_model_config *c,
                            int style) {
  const char *tf[2] = {"false", "true"};
  char text[2048];
  if (style == 0) {
    snprintf(text, sizeof text,
             "{\n  \"model_type\": \"retnet\",\n  \"architectures\": "
             "[\"RetNetForCausalLM\"],\n  \"vocab_size\": %zu,\n"
             "  \"decoder_embed_dim\": %zu,\n  \"decoder_value_embed_dim\": "
             "%zu,\n  \"decoder_retention_heads\": %zu,\n"
             "  \"decoder_ffn_embed_dim\": %zu,\n  \"decoder_layers\": %zu,\n"
             "  \"activation_fn\": \"%s\",\n  \"layernorm_eps\": %.9g,\n"
             "  \"no_scale_embedding\": %s,\n  \"layernorm_embedding\": %s,\n"
             "  \"deepnorm\": %s,\n  \"recurrent_chunk_size\": %zu,\n"
             "  \"tie_word_embeddings\": %s,\n  \"use_glu\": true,\n"
             "  \"subln\": true,\n  \"decoder_normalize_before\": true,\n"
             "  \"forward_impl\": \"parallel\",\n  \"use_lm_decay\": false,\n"
             "  \"torch_dtype\": \"float32\",\n  \"pad_token_id\": 0,\n"
             "  \"eos_token_id\": 0,\n  \"initializer_range\": 0.02\n}\n",
             c->vocab_size, c->embed_dim, c->value_embed_dim, c->heads,
             c->ffn_dim, c->layers,
             c->activation == RETCL_ACT_SWISH ? "swish" : "gelu",
             (double)c->layernorm_eps, tf[!!c->no_scale_embedding],
             tf[!!c->layernorm_embedding], tf[!!c->deepnorm], c->chunk_size,
             tf[!!c->share_embed]);
  } else {
    snprintf(text, sizeof text,
             "{\n  \"model_type\": \"retnet\",\n  \"vocab_size\": %zu,\n"
             "  \"hidden_size\": %zu,\n  \"decoder_value_embed_dim\": %zu,\n"
             "  \"num_attention_heads\": %zu,\n  \"intermediate_size\": %zu,\n"
             "  \"num_hidden_layers\": %zu,\n  \"activation_fn\": \"%s\",\n"
             "  \"rms_norm_eps\": %.9g,\n  \"groupnorm_eps\": %.9g,\n"
             "  \"no_scale_embedding\": %s,\n  \"rms_norm_embedding\": %s,\n"
             "  \"deepnorm\": %s,\n  \"recurrent_chunk_size\": %zu,\n"
             "  \"tie_word_embeddings\": %s,\n  \"forward_mode\": "
             "\"parallel\",\n  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n"
             "  \"pad_token_id\": null\n}\n",
             c->vocab_size, c->embed_dim, c->value_embed_dim, c->heads,
             c->ffn_dim, c->layers,
             c->activation == RETCL_ACT_SWISH ? "swish" : "gelu",
             (double)c->layernorm_eps, (double)c->layernorm_eps,
             tf[!!c->no_scale_embedding], tf[!!c->layernorm_embedding],
             tf[!!c->deepnorm], c->chunk_size, tf[!!c->share_embed]);
  }
  tu_write_text(dir, "config.json", text);
}

/* A random reference model for c, torchscale's default rel-pos buffers
 * written; out_proj only when untied. */
static void make_model(ref_model *m, const retcl_model_config *c) {
  ref_model_random(m, c, 1, tu_rng());
  if (c->share_embed) {
    free(m->out_proj);
    m->out_proj = NULL;
  }
}

/* ---- checks ------------------------------------------------------------- */

static float *logits_of(retcl_context *ctx, const char *dir,
                        const int32_t *tok, size_t B, size_t T, size_t V,
                        retcl_algorithm algo, retcl_model_config *cfg) {
  retcl_model *model = NULL;
  tu_ok(ctx, retcl_model_load(ctx, dir, &model));
  ck_assert_ptr_nonnull(model);
  if (cfg) tu_ok(ctx, retcl_model_get_config(model, cfg));
  float *got = tu_alloc(B * T * V);
  for (size_t i = 0; i < B * T * V; ++i) got[i] = NAN;
  tu_ok(ctx, retcl_model_forward(model, NULL, tok, B, T, algo, 0, got));
  retcl_model_destroy(model);
  return got;
}

/* What every case starts from: a context, small_config(tied), its random
 * reference model written in torchscale's layout (dtype, damage) to
 * <root>/ts, and <root>/hf free for the Hugging Face copy. */
typedef struct hf_fixture {
  retcl_context *ctx;
  retcl_model_config c;
  ref_model m;
  char *root, *ts, *hf;
} hf_fixture;

static void fixture_begin(hf_fixture *fx, int tied, const char *dtype,
                          ref_ckpt_damage damage) {
  fx->ctx = tu_context();
  fx->c = small_config(tied);
  make_model(&fx->m, &fx->c);
  fx->root = tu_temp_dir("retcl-hf");
  fx->ts = tu_path(fx->root, "ts");
  fx->hf = tu_path(fx->root, "hf");
  ck_assert_int_eq(ref_checkpoint_write(&fx->m, fx->ts, dtype, damage), 0);
}

static void fixture_end(hf_fixture *fx) {
  free(fx->ts);
  free(fx->hf);
  tu_rm_tree(fx->root);
  free(fx->root);
  ref_model_free(&fx->m);
  retcl_context_destroy(fx->ctx);
}

/* ---- the layout loads --------------------------------------------------- */

/* _i: bit 0 tied, bit 1 renamed spellings + style-1 config, bit 2 BF16. */
START_TEST(hf_layout_gives_torchscale_logits) {
  const int tied = _i & 1, renamed = (_i >> 1) & 1, bf16 = (_i >> 2) & 1;
  hf_fixture fx;
  fixture_begin(&fx, tied, bf16 ? "BF16" : "F32", CKPT_OK);
  rename_tensors(fx.ts, fx.hf, hf_name, renamed ? "renamed" : NULL);
  write_hf_config(fx.hf, &fx.c, renamed);

  const size_t B = 2, T = 7, V = fx.c.vocab_size, n = B * T * V;
  int32_t tok[14];
  for (size_t i = 0; i < B * T; ++i)
    tok[i] = (int32_t)tu_uniform(0, (double)V - 1e-9);
  const retcl_algorithm algo =
      renamed ? RETCL_ALGO_CHUNKWISE : RETCL_ALGO_PARALLEL;
  retcl_model_config got_cfg;
  float *want = logits_of(fx.ctx, fx.ts, tok, B, T, V, algo, NULL);
  float *got = logits_of(fx.ctx, fx.hf, tok, B, T, V, algo, &got_cfg);
  tu_assert_same_config(&got_cfg, &fx.c);
  for (size_t i = 0; i < n; ++i)
    ck_assert_msg(memcmp(&got[i], &want[i], sizeof got[i]) == 0,
                  "case %d logit %zu: HF %.9g, torchscale %.9g (seed %llu)",
                  _i, i, (double)got[i], (double)want[i],
                  (unsigned long long)tu_seed());
  if (!bf16) { /* the reference holds the fp32 weights the file holds */
    double *ref = tu_alloc_d(n);
    ref_model_forward(&fx.m, tok, B, T, algo, fx.c.chunk_size, ref);
    tu_assert_close("HF layout vs reference", got, ref, n, MODEL_TOL);
    free(ref);
  }
  free(want);
  free(got);
  fixture_end(&fx);
}
END_TEST

/* A tied port checkpoint may still store lm_head.weight (ignored, as
 * torchscale's output_projection is); an untied one without it fails
 * naming lm_head.weight. */
START_TEST(lm_head_follows_tie_word_embeddings) {
  hf_fixture fx;
  /* untied: the file holds output_projection */
  fixture_begin(&fx, 0, "F32", CKPT_OK);
  rename_tensors(fx.ts, fx.hf, hf_name, NULL);
  retcl_model_config tied = fx.c;
  tied.share_embed = 1;
  write_hf_config(fx.hf, &tied, 0);
  retcl_model_config got_cfg;
  int32_t tok[3] = {1, 7, 10};
  float *got = logits_of(fx.ctx, fx.hf, tok, 1, 3, fx.c.vocab_size,
                         RETCL_ALGO_RECURRENT, &got_cfg);
  ck_assert_int_eq(got_cfg.share_embed, 1);
  /* The reference with the projection tied to the embedding. */
  free(fx.m.out_proj);
  fx.m.out_proj = NULL;
  fx.m.cfg.share_embed = 1;
  double *ref = tu_alloc_d(3 * fx.c.vocab_size);
  ref_model_forward(&fx.m, tok, 1, 3, RETCL_ALGO_RECURRENT, 0, ref);
  tu_assert_close("tied, lm_head stored", got, ref, 3 * fx.c.vocab_size,
                  MODEL_TOL);
  free(ref);
  free(got);

  /* Untied without lm_head.weight. */
  char *hf2 = tu_path(fx.root, "hf2");
  ck_assert_int_eq(ref_checkpoint_write(&fx.m, fx.ts, "F32", CKPT_OK), 0);
  rename_tensors(fx.ts, hf2, hf_name, NULL);
  write_hf_config(hf2, &fx.c, 0);
  const char *needles[] = {"model.safetensors", "'lm_head.weight' is missing",
                           NULL};
  tu_assert_load_fails(fx.ctx, hf2, RETCL_ERROR_FORMAT, needles);
  free(hf2);
  fixture_end(&fx);
}
END_TEST

/* ---- files that do not fit ---------------------------------------------- */

START_TEST(unknown_layout_names_the_first_tensor) {
  hf_fixture fx;
  fixture_begin(&fx, 0, "F32", CKPT_OK);

  /* No name fits either layout: the first in name order is named. */
  rename_tensors(fx.ts, fx.hf, foreign_name, NULL);
  write_hf_config(fx.hf, &fx.c, 0);
  const char *unknown[] = {"unknown layout",
                           "'transformer.embed_tokens.weight'", NULL};
  tu_assert_load_fails(fx.ctx, fx.hf, RETCL_ERROR_FORMAT, unknown);

  /* The HF layout with one tensor of another architecture (a Llama-style
   * MLP name in place of the GLU's gate). */
  const char *foreign[2] = {"model.layers.1.ffn.gate.weight",
                            "model.layers.1.mlp.gate_proj.weight"};
  rename_tensors(fx.ts, fx.hf, hf_one_renamed, foreign);
  const char *one[] = {"'model.layers.1.mlp.gate_proj.weight'",
                       "no place in the Hugging Face", NULL};
  tu_assert_load_fails(fx.ctx, fx.hf, RETCL_ERROR_FORMAT, one);

  /* Mixed layouts: an HF file with one tensor under torchscale's name. */
  const char *ts_foreign[2] = {"model.layers.0.ffn.fc2.weight",
                               "layers.0.ffn.fc2.weight"};
  rename_tensors(fx.ts, fx.hf, hf_one_renamed, ts_foreign);
  const char *mixed[] = {"'layers.0.ffn.fc2.weight'", "no place", NULL};
  tu_assert_load_fails(fx.ctx, fx.hf, RETCL_ERROR_FORMAT, mixed);

  /* Layers past decoder_layers have no place: the first such tensor in
   * name order is named. */
  rename_tensors(fx.ts, fx.hf, hf_name, NULL);
  retcl_model_config one_layer = fx.c;
  one_layer.layers = 1;
  write_hf_config(fx.hf, &one_layer, 0);
  const char *deep[] = {"'model.layers.1.ffn.fc1.weight'",
                        "decoder_layers = 1", NULL};
  tu_assert_load_fails(fx.ctx, fx.hf, RETCL_ERROR_FORMAT, deep);

  /* Two spellings of one weight. */
  const char *twice[2] = {"model.layers.0.final_layer_norm.weight",
                          "model.layers.0.retention_rms_norm.weight"};
  rename_tensors(fx.ts, fx.hf, hf_one_renamed, twice);
  write_hf_config(fx.hf, &fx.c, 0);
  const char *same[] = {"'model.layers.0.retention_layer_norm.weight'",
                        "'model.layers.0.retention_rms_norm.weight'",
                        "same weight", NULL};
  tu_assert_load_fails(fx.ctx, fx.hf, RETCL_ERROR_FORMAT, same);

  /* A stray entry outside the model's namespace (a step counter) is
   * skipped, as torchscale files' are; here it replaces the optional
   * angle buffer, so the model loads. */
  const char *stray[2] = {"model.retnet_rel_pos.angle", "train.step"};
  rename_tensors(fx.ts, fx.hf, hf_one_renamed, stray);
  retcl_model *model = NULL;
  tu_ok(fx.ctx, retcl_model_load(fx.ctx, fx.hf, &model));
  retcl_model_destroy(model);
  fixture_end(&fx);
}
END_TEST

/* Loader messages name the tensors as the HF file spells them. */
START_TEST(hf_messages_use_the_files_names) {
  hf_fixture fx;
  fixture_begin(&fx, 0, "F32", CKPT_WRONG_SHAPE);
  rename_tensors(fx.ts, fx.hf, hf_name, NULL);
  write_hf_config(fx.hf, &fx.c, 0);
  const char *shape[] = {"'model.layers.0.retention.q_proj.weight'",
                         "[16, 17]", "[16, 16]", NULL};
  tu_assert_load_fails(fx.ctx, fx.hf, RETCL_ERROR_FORMAT, shape);
  ck_assert_int_eq(
      ref_checkpoint_write(&fx.m, fx.ts, "F32", CKPT_MISSING_TENSOR), 0);
  tu_rm_tree(fx.hf);
  rename_tensors(fx.ts, fx.hf, hf_name, NULL);
  write_hf_config(fx.hf, &fx.c, 0);
  const char *missing[] = {"'model.layers.0.ffn.fc2.weight' is missing",
                           NULL};
  tu_assert_load_fails(fx.ctx, fx.hf, RETCL_ERROR_FORMAT, missing);
  fixture_end(&fx);
}
END_TEST

/* ---- config.json field names -------------------------------------------- */

typedef struct config_case {
  const char *json;
  const char *needles[3];
} config_case;

#define HF_SIZES                                                      \
  "\"vocab_size\": 11, \"decoder_value_embed_dim\": 24, "             \
  "\"num_attention_heads\": 2, \"intermediate_size\": 20, "           \
  "\"num_hidden_layers\": 2, \"rms_norm_embedding\": true, "          \
  "\"activation_fn\": \"swish\", \"no_scale_embedding\": false, "     \
  "\"recurrent_chunk_size\": 3"

static const config_case BAD_CONFIGS[] = {
    /* Both names of one setting, disagreeing. */
    {"{" HF_SIZES ", \"hidden_size\": 16, \"decoder_embed_dim\": 32}",
     {"'decoder_embed_dim'", "'hidden_size'", "disagree"}},
    {"{" HF_SIZES ", \"hidden_size\": 16, \"tie_word_embeddings\": true, "
     "\"share_decoder_input_output_embed\": false}",
     {"'share_decoder_input_output_embed'", "'tie_word_embeddings'", NULL}},
    {"{" HF_SIZES ", \"hidden_size\": 16, \"rms_norm_eps\": 1e-5, "
     "\"layernorm_eps\": 1e-6}",
     {"'layernorm_eps'", "'rms_norm_eps'", NULL}},
    /* Settings the model does not have. */
    {"{" HF_SIZES ", \"hidden_size\": 16, \"use_glu\": false}",
     {"'use_glu'", NULL, NULL}},
    {"{" HF_SIZES ", \"hidden_size\": 16, \"rms_norm_eps\": 1e-5, "
     "\"groupnorm_eps\": 1e-6}",
     {"'groupnorm_eps'", NULL, NULL}},
    /* Malformed under the alias: the message names the field given. */
    {"{" HF_SIZES ", \"hidden_size\": \"16\"}", {"'hidden_size'", NULL, NULL}},
    {"{" HF_SIZES ", \"hidden_size\": 16, \"tie_word_embeddings\": 2}",
     {"'tie_word_embeddings'", NULL, NULL}},
    /* Missing under both names. */
    {"{" HF_SIZES "}", {"'decoder_embed_dim'", "'hidden_size'", NULL}},
};

START_TEST(bad_port_configs_name_the_field) {
  const config_case *cc = &BAD_CONFIGS[_i];
  hf_fixture fx;
  fixture_begin(&fx, 0, "F32", CKPT_OK);
  rename_tensors(fx.ts, fx.hf, hf_name, NULL);
  tu_write_text(fx.hf, "config.json", cc->json);
  const char *needles[4] = {cc->needles[0], cc->needles[1], cc->needles[2],
                            NULL};
  tu_assert_load_fails(fx.ctx, fx.hf, RETCL_ERROR_FORMAT, needles);
  /* The same config with the offending part fixed loads (case 0). */
  if (_i == 0) {
    tu_write_text(fx.hf, "config.json",
                  "{" HF_SIZES ", \"hidden_size\": 16, \"decoder_embed_dim\": "
                  "16, \"rms_norm_eps\": 1e-5, \"groupnorm_eps\": 1e-5, "
                  "\"layernorm_eps\": 1e-5, \"use_glu\": true}");
    retcl_model *model = NULL;
    tu_ok(fx.ctx, retcl_model_load(fx.ctx, fx.hf, &model));
    retcl_model_config got;
    tu_ok(fx.ctx, retcl_model_get_config(model, &got));
    tu_assert_same_config(&got, &fx.c);
    retcl_model_destroy(model);
  }
  fixture_end(&fx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("checkpoint_hf");
  TCase *tc = tcase_create("checkpoint_hf");
  tcase_add_loop_test(tc, hf_layout_gives_torchscale_logits, 0, 8);
  tcase_add_test(tc, lm_head_follows_tie_word_embeddings);
  tcase_add_test(tc, unknown_layout_names_the_first_tensor);
  tcase_add_test(tc, hf_messages_use_the_files_names);
  tcase_add_loop_test(tc, bad_port_configs_name_the_field, 0,
                      (int)(sizeof BAD_CONFIGS / sizeof BAD_CONFIGS[0]));
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
