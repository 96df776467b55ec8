/* cmd_run.c - `retcl run`: load a RetNet checkpoint, run it on one token
 * sequence in the chosen form (parallel, chunkwise, or recurrent one token
 * at a time through a decode state) and show, per position, the token the
 * model predicts next. --logits saves all logits as a .npy file, so any
 * form can be compared with another, or with torchscale, in NumPy. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "npy.h"

typedef struct run_opts {
  const char *model_dir, *tokens, *text, *mode, *logits_path, *device,
      *platform, *weights;
  size_t chunk;
} run_opts;

static void run_usage(FILE *out) {
  fprintf(out,
          "usage: retcl run --model DIR (--tokens ID,ID,... | --text S)\n"
          "                 [--mode parallel|chunkwise|recurrent] [--chunk C]\n"
          "                 [--logits FILE.npy] [--weights f32|f16|bf16|keep]\n"
          "                 [--device D] [--platform P]\n"
          "\n"
          "Run the RetNet checkpoint in DIR (config.json + model.safetensors,\n"
          "see `retcl init-model`) on one token sequence and list, for each\n"
          "position, the most likely next token and its logit. A warm-up\n"
          "(the same forward; one step in recurrent mode) builds the\n"
          "kernels before the timed run.\n"
          "\n"
          "  --model DIR     checkpoint folder (required)\n"
          "  --tokens LIST   comma-separated token ids, e.g. 5,17,3\n"
          "  --text S        the input as text, one token per byte (a model\n"
          "                  with a vocabulary of 256); also prints the text\n"
          "                  of the predicted next bytes\n"
          "  --mode M        parallel, chunkwise (default) or recurrent; the\n"
          "                  recurrent mode feeds the tokens one at a time\n"
          "                  through a decode state, as generation does\n"
          "  --chunk C       chunkwise chunk size; default the checkpoint's\n"
          "                  recurrent_chunk_size\n"
          "  --logits FILE   write the logits [T, vocab] as float32 NumPy .npy\n"
          "  --weights W     device storage of the weights: f32 (default),\n"
          "                  f16, bf16 (16-bit, rounded to nearest even;\n"
          "                  arithmetic stays fp32) or keep (the file's)\n"
          "  --device D      device index (see `retcl devices`) or name\n"
          "                  substring; default RETCL_DEVICE, else the first\n"
          "                  GPU, else the first device\n"
          "  --platform P    platform index or name substring; default\n"
          "                  RETCL_PLATFORM, else all platforms\n");
}

/* logits[T, V] of tokens by algo. The recurrent mode steps through a
 * decode state one token at a time (what `generate` does after its
 * prefill) rather than handing all T tokens to one call. */
static int forward(retcl_context *ctx, retcl_model *model,
                   const int32_t *tok, size_t T, size_t V,
                   retcl_algorithm algo, size_t chunk, float *logits) {
  retcl_status st;
  if (algo != RETCL_ALGO_RECURRENT) {
    st = retcl_model_forward(model, NULL, tok, 1, T, algo, chunk, logits);
    return st ? cli_fail(ctx, st, "running the model") : CLI_EXIT_OK;
  }
  retcl_decode_state *state = NULL;
  st = retcl_decode_state_create(model, 1, &state);
  if (st) return cli_fail(ctx, st, "creating a decode state");
  int rc = CLI_EXIT_OK;
  for (size_t t = 0; t < T && rc == CLI_EXIT_OK; ++t) {
    st = retcl_model_forward(model, state, &tok[t], 1, 1, RETCL_ALGO_RECURRENT,
                             0, logits + t * V);
    if (st) {
      /* The library counts from 0 within the call; name the position. */
      char what[64];
      snprintf(what, sizeof what, "recurrent step at position %zu", t);
      rc = cli_fail(ctx, st, what);
    }
  }
  retcl_decode_state_destroy(state);
  return rc;
}

static int run_run(int argc, char **argv) {
  run_opts o = {0};
  o.mode = "chunkwise";
  const cli_option opts[] = {
      {"model", CLI_OPT_STRING, &o.model_dir},
      {"tokens", CLI_OPT_STRING, &o.tokens},
      {"text", CLI_OPT_STRING, &o.text},
      {"mode", CLI_OPT_STRING, &o.mode},
      {"chunk", CLI_OPT_SIZE, &o.chunk},
      {"logits", CLI_OPT_STRING, &o.logits_path},
      {"weights", CLI_OPT_STRING, &o.weights},
      {"device", CLI_OPT_STRING, &o.device},
      {"platform", CLI_OPT_STRING, &o.platform},
  };
  int parsed =
      cli_parse_options("run", argc, argv, opts, sizeof opts / sizeof opts[0]);
  if (parsed == CLI_PARSE_HELP) {
    run_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (parsed != CLI_PARSE_OK) return CLI_EXIT_USAGE;
  if (!o.model_dir) return cli_usage_error("run", "--model DIR is required");
  if (!o.tokens == !o.text)
    return cli_usage_error("run", "give one of --tokens LIST and --text S");
  retcl_storage storage;
  if (!cli_parse_storage(o.weights, &storage))
    return cli_usage_error("run", "--weights is f32, f16, bf16 or keep, not '%s'",
                           o.weights);
  retcl_algorithm algo;
  if (!cli_parse_algorithm(o.mode, &algo))
    return cli_usage_error(
        "run", "--mode is parallel, chunkwise or recurrent, not '%s'", o.mode);
  int32_t *tok = NULL;
  size_t T = 0;
  int rc = o.text ? cli_text_tokens("run", "text", o.text, &tok, &T)
                  : cli_parse_tokens("run", "tokens", o.tokens, &tok, &T);
  if (rc) return rc;

  retcl_context *ctx = NULL;
  retcl_model *model = NULL;
  double load_s = 0;
  float *logits = NULL;
  rc = cli_open_model_as(o.platform, o.device, o.model_dir, storage, &ctx,
                         &model, &load_s);
  retcl_model_config cfg;
  if (!rc) retcl_model_get_config(model, &cfg);
  const size_t V = rc ? 0 : cfg.vocab_size;
  if (!rc && o.text && V != 256)
    rc = cli_error("--text needs a byte-level model (vocabulary 256); %s has "
                   "%zu: give token ids with --tokens",
                   o.model_dir, V);
  if (!rc && T > SIZE_MAX / sizeof(float) / V)
    rc = cli_error("%zu tokens x vocab %zu logits do not fit in memory", T, V);
  if (!rc && !(logits = malloc(T * V * sizeof *logits)))
    rc = cli_error("out of host memory for %zu x %zu logits", T, V);

  /* A warm-up builds the kernels, so the timed run measures the model.
   * It must use the shapes of the real run (GEMM libraries pick kernels by
   * shape): the whole sequence, except in recurrent mode, where every step
   * has the shape of the first and one step suffices. */
  double first_s = 0, warm_s = 0;
  if (!rc) {
    double t0 = cli_now();
    rc = forward(ctx, model, tok, algo == RETCL_ALGO_RECURRENT ? 1 : T, V,
                 algo, o.chunk, logits);
    double t1 = cli_now();
    if (!rc) rc = forward(ctx, model, tok, T, V, algo, o.chunk, logits);
    first_s = t1 - t0;
    warm_s = cli_now() - t1;
  }
  if (!rc) {
    char dev[768], desc[512], wbytes[32];
    const size_t chunk = o.chunk ? o.chunk : cfg.chunk_size;
    printf("retcl %s run\n", retcl_version_string());
    printf("%-9s %s\n", "device:", cli_device_description(ctx, dev, sizeof dev));
    printf("%-9s %s: %s\n", "model:", o.model_dir,
           cli_model_description(&cfg, desc, sizeof desc));
    printf("%-9s weights %s (%s), loaded in %.1f ms\n", "",
           cli_format_bytes(retcl_model_weight_bytes(model), wbytes,
                            sizeof wbytes),
           cli_dtype_name(retcl_model_weight_type(model)), 1e3 * load_s);
    if (algo == RETCL_ALGO_CHUNKWISE)
      printf("%-9s chunkwise (chunk %zu), %zu tokens, batch 1\n", "mode:",
             chunk, T);
    else if (algo == RETCL_ALGO_RECURRENT)
      printf("%-9s recurrent, %zu tokens fed one at a time, batch 1\n",
             "mode:", T);
    else
      printf("%-9s parallel, %zu tokens, batch 1\n", "mode:", T);
    printf("%-9s %.3f ms (%.0f tokens/s); warm-up %.1f ms (builds the "
           "kernels)\n",
           "time:", 1e3 * warm_s, (double)T / warm_s, 1e3 * first_s);
    cli_print_run_result(tok, T, logits, V, o.text != NULL);
  }
  if (!rc && o.logits_path) {
    int err = npy_write_f32_2d(o.logits_path, logits, T, V);
    if (err)
      rc = cli_error("cannot write %s: %s", o.logits_path, strerror(err));
    else
      printf("\nlogits:   %s, float32 [%zu, %zu]\n", o.logits_path, T, V);
  }
  free(logits);
  free(tok);
  cli_close_model(ctx, model);
  return rc;
}

const cli_command cli_cmd_run = {
    "run", "run a RetNet checkpoint on a token sequence", run_run, run_usage};
