/* cmd_init_model.c - `retcl init-model`: write a random-weight RetNet
 * checkpoint folder (config.json + model.safetensors, torchscale's names)
 * with retcl_checkpoint_write_random, so `retcl run` and `retcl generate`
 * (and benchmarks) have a model to load without any training or Python.
 * Needs no OpenCL device. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"

static void init_model_usage(FILE *out) {
  fprintf(out,
          "usage: retcl init-model --out DIR [--embed-dim D]\n"
          "                        [--value-embed-dim DV] [--heads H]\n"
          "                        [--ffn-dim F] [--layers L] [--vocab V]\n"
          "                        [--activation gelu|swish] [--deepnorm]\n"
          "                        [--share-embed] [--layernorm-embedding]\n"
          "                        [--scale-embedding] [--chunk C]\n"
          "                        [--dtype f32|f16|bf16] [--seed S]\n"
          "\n"
          "Write a RetNet checkpoint with random weights into DIR (created if\n"
          "missing): config.json with torchscale's RetNetConfig field names\n"
          "and model.safetensors with torchscale's tensor names. The same\n"
          "options and seed give the same files. For trying out `retcl run`\n"
          "and `retcl generate`, tests and benchmarks; needs no device.\n"
          "\n"
          "  --out DIR              checkpoint folder (required)\n"
          "  --embed-dim D          decoder_embed_dim, default 512\n"
          "  --value-embed-dim DV   decoder_value_embed_dim, default D\n"
          "  --heads H              decoder_retention_heads, default 4\n"
          "                         (D/H must be even)\n"
          "  --ffn-dim F            decoder_ffn_embed_dim, default 1024\n"
          "  --layers L             decoder_layers, default 4\n"
          "  --vocab V              vocab_size, default 1000\n"
          "  --activation A         FFN activation_fn, gelu (default) or "
          "swish\n"
          "  --deepnorm             residuals scaled by (2L)^(1/4)\n"
          "  --share-embed          tie the output projection to the "
          "embedding\n"
          "  --layernorm-embedding  RMSNorm after the embedding\n"
          "  --scale-embedding      multiply the embedding by sqrt(D)\n"
          "  --chunk C              recurrent_chunk_size, default 64\n"
          "  --dtype T              tensor type in the file: f32 (default),\n"
          "                         f16 or bf16\n"
          "  --seed S               weight seed, default 1\n");
}

/* Trainable values the config implies (the rel-pos buffers of Dk + H
 * values are not parameters and are left out), in parts for the summary.
 * Doubles: exact far past any model size, and immune to size_t overflow
 * for silly command lines (the library rejects those with a message). */
typedef struct param_count {
  double embed, output, per_layer, norms, total;
} param_count;

static param_count count_params(const retcl_model_config *c) {
  const double d = (double)c->embed_dim, dv = (double)c->value_embed_dim,
               f = (double)c->ffn_dim, V = (double)c->vocab_size;
  param_count p;
  p.embed = V * d;
  p.output = c->share_embed ? 0.0 : V * d;
  /* q, k [d,d]; v, g [dv,d]; out [d,dv]; fc1, gate [f,d]; fc2 [d,f]; and
   * the two RMSNorm weights [d] of the block. */
  p.per_layer = 2 * d * d + 3 * dv * d + 3 * f * d + 2 * d;
  p.norms = d * (1.0 + (c->layernorm_embedding ? 1.0 : 0.0));
  p.total = p.embed + p.output + (double)c->layers * p.per_layer + p.norms;
  return p;
}

/* 11010048 -> "11,010,048": parameter counts are read by people. */
static const char *group_digits(double v, char *buf, size_t cap) {
  char digits[64];
  snprintf(digits, sizeof digits, "%.0f", v);
  size_t n = strlen(digits), o = 0;
  for (size_t i = 0; i < n && o + 2 < cap; ++i) {
    if (i > 0 && (n - i) % 3 == 0) buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
  return buf;
}

/* "DIR/NAME (size)" line of one written file. */
static void print_file(const char *label, const char *dir, const char *name) {
  char path[4096], size[32] = "?";
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct stat st;
  if (stat(path, &st) == 0)
    cli_format_bytes((uint64_t)st.st_size, size, sizeof size);
  printf("%-12s %s (%s)\n", label, path, size);
}

static int init_model_run(int argc, char **argv) {
  const char *out = NULL, *activation = "gelu", *dtype_name = "f32";
  size_t embed = 512, value_embed = SIZE_MAX, heads = 4, ffn = 1024,
         layers = 4, vocab = 1000, chunk = 64;
  int deepnorm = 0, share = 0, emb_norm = 0, scale_emb = 0;
  uint64_t seed = 1;
  const cli_option opts[] = {
      {"out", CLI_OPT_STRING, &out},
      {"embed-dim", CLI_OPT_SIZE, &embed},
      {"value-embed-dim", CLI_OPT_SIZE, &value_embed},
      {"heads", CLI_OPT_SIZE, &heads},
      {"ffn-dim", CLI_OPT_SIZE, &ffn},
      {"layers", CLI_OPT_SIZE, &layers},
      {"vocab", CLI_OPT_SIZE, &vocab},
      {"activation", CLI_OPT_STRING, &activation},
      {"deepnorm", CLI_OPT_FLAG, &deepnorm},
      {"share-embed", CLI_OPT_FLAG, &share},
      {"layernorm-embedding", CLI_OPT_FLAG, &emb_norm},
      {"scale-embedding", CLI_OPT_FLAG, &scale_emb},
      {"chunk", CLI_OPT_SIZE, &chunk},
      {"dtype", CLI_OPT_STRING, &dtype_name},
      {"seed", CLI_OPT_U64, &seed},
  };
  int parsed = cli_parse_options("init-model", argc, argv, opts,
                                 sizeof opts / sizeof opts[0]);
  if (parsed == CLI_PARSE_HELP) {
    init_model_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (parsed != CLI_PARSE_OK) return CLI_EXIT_USAGE;
  if (!out || !*out)
    return cli_usage_error("init-model", "--out DIR is required");

  retcl_model_config cfg;
  retcl_model_config_default(&cfg);
  cfg.embed_dim = embed;
  cfg.value_embed_dim = value_embed == SIZE_MAX ? embed : value_embed;
  cfg.heads = heads;
  cfg.ffn_dim = ffn;
  cfg.layers = layers;
  cfg.vocab_size = vocab;
  cfg.chunk_size = chunk;
  cfg.deepnorm = deepnorm;
  cfg.share_embed = share;
  cfg.layernorm_embedding = emb_norm;
  cfg.no_scale_embedding = !scale_emb;
  if (strcmp(activation, "gelu") == 0)
    cfg.activation = RETCL_ACT_GELU;
  else if (strcmp(activation, "swish") == 0 || strcmp(activation, "silu") == 0)
    cfg.activation = RETCL_ACT_SWISH;
  else
    return cli_usage_error("init-model",
                           "--activation is 'gelu' or 'swish', not '%s'",
                           activation);
  retcl_dtype dtype;
  if (strcasecmp(dtype_name, "f32") == 0)
    dtype = RETCL_DTYPE_F32;
  else if (strcasecmp(dtype_name, "f16") == 0)
    dtype = RETCL_DTYPE_F16;
  else if (strcasecmp(dtype_name, "bf16") == 0)
    dtype = RETCL_DTYPE_BF16;
  else
    return cli_usage_error("init-model",
                           "--dtype is 'f32', 'f16' or 'bf16', not '%s'",
                           dtype_name);

  /* Shape rules (D divisible by H, even head dim, ...) are the library's
   * to check and explain. */
  retcl_status st = retcl_checkpoint_write_random(&cfg, seed, dtype, out);
  if (st != RETCL_SUCCESS) return cli_fail(NULL, st, "writing the checkpoint");

  char desc[512], a[32], b[32], c[32], e[32];
  param_count p = count_params(&cfg);
  printf("retcl %s init-model: random weights, %s, seed %llu\n",
         retcl_version_string(), dtype_name, (unsigned long long)seed);
  printf("%-12s %s\n", "model:", cli_model_description(&cfg, desc, sizeof desc));
  printf("%-12s %s (embedding %s, output projection %s, %zu layers x %s, "
         "norms %s)\n",
         "parameters:", group_digits(p.total, a, sizeof a),
         group_digits(p.embed, b, sizeof b),
         share ? "tied" : group_digits(p.output, c, sizeof c), layers,
         group_digits(p.per_layer, e, sizeof e),
         group_digits(p.norms, desc, sizeof desc));
  print_file("wrote:", out, "config.json");
  print_file("", out, "model.safetensors");
  return CLI_EXIT_OK;
}

const cli_command cli_cmd_init_model = {
    "init-model", "write a random-weight RetNet checkpoint (no device needed)",
    init_model_run, init_model_usage};
