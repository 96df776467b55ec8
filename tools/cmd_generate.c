/* cmd_generate.c - `retcl generate`: RetNet text generation, in token ids
 * or, for a byte-level model, in text.
 * The prompt is prefilled in one call (parallel, chunkwise or recurrent
 * form) into a decode state; then each new token is sampled from the last
 * logits and fed back with one recurrent step. The state has the same size
 * however long the sequence grows, which is the point of RetNet: the
 * summary prints it next to the speeds of both phases. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct gen_opts {
  const char *model_dir, *prompt, *text, *mode, *device, *platform, *weights;
  size_t max_new, chunk, top_k;
  int max_new_set;
  double temperature;
  uint64_t seed;
} gen_opts;

static void generate_usage(FILE *out) {
  fprintf(out,
          "usage: retcl generate --model DIR (--prompt ID,ID,... | --text S)\n"
          "                      --max-new N\n"
          "                      [--temperature X] [--top-k K] [--seed S]\n"
          "                      [--mode parallel|chunkwise|recurrent]\n"
          "                      [--chunk C] [--weights f32|f16|bf16|keep]\n"
          "                      [--device D] [--platform P]\n"
          "\n"
          "Prefill the prompt into a decode state, then generate N tokens one\n"
          "at a time: sample from the last logits, print the id at once, feed\n"
          "it back through one recurrent step. Ends with the prefill and\n"
          "decode speeds and the memory of the decode state (constant in the\n"
          "sequence length) and of the weights. Kernels are built by a\n"
          "warm-up before anything is timed.\n"
          "\n"
          "  --model DIR       checkpoint folder (required)\n"
          "  --prompt LIST     comma-separated token ids\n"
          "  --text S          the prompt as text, one token per byte (a model\n"
          "                    with a vocabulary of 256, such as `retcl train`\n"
          "                    makes from text); the output is text too\n"
          "  --max-new N       tokens to generate (required)\n"
          "  --temperature X   0 (default) is greedy: the most likely token;\n"
          "                    above 0, sample softmax(logits / X)\n"
          "  --top-k K         sample among the K most likely only; 0 (default)\n"
          "                    = all\n"
          "  --seed S          sampling seed, default 1 (same seed, same "
          "tokens)\n"
          "  --mode M          prefill form: parallel, chunkwise (default) or\n"
          "                    recurrent; decoding is always recurrent\n"
          "  --weights W       device storage of the weights: f32 (default),\n"
          "                    f16, bf16 (16-bit, rounded to nearest even;\n"
          "                    arithmetic stays fp32) or keep (the file's)\n"
          "  --chunk C         chunkwise chunk size; default the checkpoint's\n"
          "  --device D        device index or name substring (see\n"
          "                    `retcl devices`); default RETCL_DEVICE, else\n"
          "                    the first GPU, else the first device\n"
          "  --platform P      platform index or name substring\n");
}

/* Everything generation holds, released in one place on every path. */
typedef struct gen {
  gen_opts o;
  retcl_algorithm algo;
  int32_t *prompt;
  int32_t *made; /* the generated tokens, for --text */
  size_t T, V;
  retcl_context *ctx;
  retcl_model *model;
  retcl_model_config cfg;
  retcl_decode_state *state;
  float *logits; /* [V]: the last position's logits (prefill, then steps) */
  double load_s, warmup_s, prefill_s, decode_s;
  size_t steps;
} gen;

/* Prefill plus one recurrent step on a scratch state, so that the timed
 * runs below measure the kernels and not their compilation (which takes
 * longer than the whole run on a cold PoCL cache). Same prompt length as
 * the real prefill: GEMM libraries pick kernels by shape. */
static int warm_up(gen *g) {
  retcl_decode_state *s = NULL;
  retcl_status st = retcl_decode_state_create(g->model, 1, &s);
  if (st) return cli_fail(g->ctx, st, "creating a decode state");
  double t0 = cli_now();
  st = retcl_model_forward_last(g->model, s, g->prompt, 1, g->T, g->algo,
                                g->o.chunk, g->logits);
  const char *what = "prefill";
  if (!st) {
    what = "decode step";
    st = retcl_model_forward(g->model, s, g->prompt, 1, 1,
                             RETCL_ALGO_RECURRENT, 0, g->logits);
  }
  g->warmup_s = cli_now() - t0;
  retcl_decode_state_destroy(s);
  return st ? cli_fail(g->ctx, st, what) : CLI_EXIT_OK;
}

static int sample(gen *g, const float *row, uint64_t *rng, int32_t *tok) {
  retcl_sampler sm = {(float)g->o.temperature, g->o.top_k};
  retcl_status st = retcl_sample(row, g->V, &sm, rng, tok);
  /* retcl_sample has no context to leave a message in. */
  return st ? cli_error("sampling: %s", retcl_status_string(st))
            : CLI_EXIT_OK;
}

/* Prefill, then sample / print / step until max_new tokens are out. The
 * first new token comes from the prefill's last row, so N tokens take
 * N - 1 recurrent steps. */
static int generate(gen *g) {
  retcl_status st = retcl_decode_state_create(g->model, 1, &g->state);
  if (st) return cli_fail(g->ctx, st, "creating a decode state");
  double t0 = cli_now();
  /* Only the last position's logits: a long prompt needs no [T, V] array. */
  st = retcl_model_forward_last(g->model, g->state, g->prompt, 1, g->T,
                                g->algo, g->o.chunk, g->logits);
  g->prefill_s = cli_now() - t0;
  if (st) return cli_fail(g->ctx, st, "prefill");

  uint64_t rng = g->o.seed;
  const float *row = g->logits;
  printf("%-9s", g->made ? "text:" : "tokens:");
  if (g->made) {
    putchar(' ');
    cli_print_text(stdout, g->prompt, g->T);
    printf("[");
  }
  for (size_t i = 0; i < g->o.max_new; ++i) {
    int32_t tok = 0;
    int rc = sample(g, row, &rng, &tok);
    if (rc) return rc;
    if (g->made) {
      g->made[i] = tok;
      cli_print_text(stdout, &tok, 1);
    } else {
      printf(" %d", (int)tok);
    }
    fflush(stdout); /* the point of streaming: see each token as it comes */
    if (i + 1 == g->o.max_new) break;
    t0 = cli_now();
    st = retcl_model_forward(g->model, g->state, &tok, 1, 1,
                             RETCL_ALGO_RECURRENT, 0, g->logits);
    g->decode_s += cli_now() - t0;
    if (st) {
      putchar('\n');
      return cli_fail(g->ctx, st, "decode step");
    }
    ++g->steps;
  }
  if (g->made) putchar(']');
  printf("%s\n", g->o.max_new || g->made ? "" : " (none)");
  return CLI_EXIT_OK;
}

static void print_header(const gen *g) {
  char dev[768], desc[512], w[32];
  printf("retcl %s generate\n", retcl_version_string());
  printf("%-9s %s\n", "device:", cli_device_description(g->ctx, dev, sizeof dev));
  printf("%-9s %s: %s\n", "model:", g->o.model_dir,
         cli_model_description(&g->cfg, desc, sizeof desc));
  printf("%-9s weights %s (%s), loaded in %.1f ms\n", "",
         cli_format_bytes(retcl_model_weight_bytes(g->model), w, sizeof w),
         cli_dtype_name(retcl_model_weight_type(g->model)), 1e3 * g->load_s);
  printf("%-9s %zu tokens, prefill %s", "prompt:", g->T,
         cli_algorithm_name(g->algo));
  if (g->algo == RETCL_ALGO_CHUNKWISE)
    printf(" (chunk %zu)", g->o.chunk ? g->o.chunk : g->cfg.chunk_size);
  if (g->o.temperature == 0.0)
    printf(", greedy\n");
  else
    printf(", temperature %g, top-k %zu%s, seed %llu\n", g->o.temperature,
           g->o.top_k, g->o.top_k ? "" : " (all)",
           (unsigned long long)g->o.seed);
  printf("%-9s %.1f ms (builds the kernels; not counted below)\n",
         "warm-up:", 1e3 * g->warmup_s);
  fflush(stdout);
}

static void print_summary(const gen *g) {
  char sb[32], wb[32];
  printf("%-9s %zu tokens in %.3f ms: %.0f tokens/s\n", "prefill:", g->T,
         1e3 * g->prefill_s, (double)g->T / g->prefill_s);
  if (g->steps)
    printf("%-9s %zu steps in %.3f ms: %.3f ms/token, %.0f tokens/s\n",
           "decode:", g->steps, 1e3 * g->decode_s,
           1e3 * g->decode_s / (double)g->steps,
           (double)g->steps / g->decode_s);
  else
    printf("%-9s no steps (the first new token comes from the prefill)\n",
           "decode:");
  printf("%-9s decode state %s at position %zu (the same at any length); "
         "weights %s\n",
         "memory:",
         cli_format_bytes(retcl_decode_state_bytes(g->state), sb, sizeof sb),
         retcl_decode_state_position(g->state),
         cli_format_bytes(retcl_model_weight_bytes(g->model), wb, sizeof wb));
}

static int generate_run(int argc, char **argv) {
  gen g;
  memset(&g, 0, sizeof g);
  gen_opts *o = &g.o;
  o->mode = "chunkwise";
  o->seed = 1;
  o->max_new = SIZE_MAX; /* "not given" */
  const cli_option opts[] = {
      {"model", CLI_OPT_STRING, &o->model_dir},
      {"prompt", CLI_OPT_STRING, &o->prompt},
      {"text", CLI_OPT_STRING, &o->text},
      {"max-new", CLI_OPT_SIZE, &o->max_new},
      {"temperature", CLI_OPT_DOUBLE, &o->temperature},
      {"top-k", CLI_OPT_SIZE, &o->top_k},
      {"seed", CLI_OPT_U64, &o->seed},
      {"mode", CLI_OPT_STRING, &o->mode},
      {"chunk", CLI_OPT_SIZE, &o->chunk},
      {"weights", CLI_OPT_STRING, &o->weights},
      {"device", CLI_OPT_STRING, &o->device},
      {"platform", CLI_OPT_STRING, &o->platform},
  };
  int parsed = cli_parse_options("generate", argc, argv, opts,
                                 sizeof opts / sizeof opts[0]);
  if (parsed == CLI_PARSE_HELP) {
    generate_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (parsed != CLI_PARSE_OK) return CLI_EXIT_USAGE;
  if (!o->model_dir)
    return cli_usage_error("generate", "--model DIR is required");
  if (!o->prompt == !o->text)
    return cli_usage_error("generate", "give one of --prompt LIST and --text S");
  if (o->max_new == SIZE_MAX)
    return cli_usage_error("generate", "--max-new N is required");
  /* The sampler takes a float: 1e300 would become inf there. */
  if (o->temperature < 0.0 || o->temperature > FLT_MAX)
    return cli_usage_error("generate",
                           "--temperature must be 0 (greedy) or positive, "
                           "not %g",
                           o->temperature);
  retcl_storage storage;
  if (!cli_parse_storage(o->weights, &storage))
    return cli_usage_error("generate",
                           "--weights is f32, f16, bf16 or keep, not '%s'",
                           o->weights);
  if (!cli_parse_algorithm(o->mode, &g.algo))
    return cli_usage_error("generate",
                           "--mode is parallel, chunkwise or recurrent, not "
                           "'%s'",
                           o->mode);
  int rc = o->text ? cli_text_tokens("generate", "text", o->text, &g.prompt,
                                     &g.T)
                   : cli_parse_tokens("generate", "prompt", o->prompt,
                                      &g.prompt, &g.T);
  if (rc) return rc;

  rc = cli_open_model_as(o->platform, o->device, o->model_dir, storage, &g.ctx,
                         &g.model, &g.load_s);
  if (!rc) {
    retcl_model_get_config(g.model, &g.cfg);
    g.V = g.cfg.vocab_size;
    if (!(g.logits = malloc(g.V * sizeof *g.logits)))
      rc = cli_error("out of host memory for %zu logits", g.V);
    else if (o->text && g.V != 256)
      rc = cli_error("--text needs a byte-level model (vocabulary 256); %s "
                     "has %zu: give token ids with --prompt",
                     o->model_dir, g.V);
    else if (o->text && !(g.made = malloc((o->max_new ? o->max_new : 1) *
                                          sizeof *g.made)))
      rc = cli_error("out of host memory");
  }
  if (!rc) rc = warm_up(&g);
  if (!rc) {
    print_header(&g);
    rc = generate(&g);
  }
  if (!rc) print_summary(&g);
  retcl_decode_state_destroy(g.state);
  free(g.logits);
  free(g.prompt);
  free(g.made);
  cli_close_model(g.ctx, g.model);
  return rc;
}

const cli_command cli_cmd_generate = {
    "generate", "generate tokens with a RetNet checkpoint (prefill + decode)",
    generate_run, generate_usage};
