/* mpi_generate.c - `retcl-mpi generate`: `retcl generate` for one prompt
 * with the work split across the ranks. The prompt is prefilled sequence-
 * parallel (a sequence-split model: rank r runs a contiguous slice, the
 * layers' states cross the ranks by a scan, and every rank ends with the
 * decode state of the whole prompt); that state is handed to a heads-split
 * model of the same checkpoint (retcl_decode_state_copy keeps the rank's
 * heads), which decodes one token per step, each rank computing its heads
 * and FFN units. Rank 0 samples every token and broadcasts it, so all
 * ranks feed the same token; the first comes from the prefill logits of
 * the prompt's last token, which the last rank holds. */
#include <stdlib.h>
#include <string.h>

#include "mpi_cli.h"

typedef struct mgen_opts {
  const char *model_dir, *prompt, *tokens, *text;
  cli_generate_options gen; /* sampling, mode, weights, device */
} mgen_opts;

static void mgen_usage(FILE *out) {
  fprintf(
      out,
      "usage: mpirun -np N retcl-mpi generate --model DIR\n"
      "                 (--prompt ID,ID,... | --text S) --max-new K\n"
      "                 [--end-token ID] [--temperature X] [--top-k K]\n"
      "                 [--seed S] [--mode chunkwise|recurrent]\n"
      "                 [--chunk C] [--weights f32|f16|bf16|keep]\n"
      "                 [--device D] [--platform P]\n"
      "\n"
      "Generate K tokens after the prompt, as `retcl generate` does for\n"
      "one prompt, with the work split across the N ranks: the prompt is\n"
      "prefilled sequence-parallel (rank r runs a contiguous slice; the\n"
      "layers' states pass between ranks, and every rank ends with the\n"
      "whole prompt's decode state), then the tokens are decoded\n"
      "head-parallel (each rank keeps its heads of that state and runs\n"
      "its heads and FFN units; two MPI_Allreduce per layer per token).\n"
      "Rank 0 samples each token and broadcasts it; it prints the tokens\n"
      "as they come, then the prefill and decode speeds.\n"
      "\n"
      "Memory per rank: the checkpoint is loaded twice, whole for the\n"
      "prefill and split by heads for decoding: about 1 + 1/N of the\n"
      "model's weights (plus the embedding and output projection once\n"
      "more), and a decode state of each kind.\n"
      "\n"
      "  --model DIR       checkpoint folder (required)\n"
      "  --prompt LIST     comma-separated token ids (--tokens: the same)\n"
      "  --text S          the prompt as text, one token per byte (a model\n"
      "                    with a vocabulary of 256); the output is text\n"
      "  --max-new K       tokens to generate (required)\n"
      "  --end-token ID    stop once ID is generated (printed)\n"
      "  --temperature X   0 (default) is greedy; above 0, sample\n"
      "                    softmax(logits / X)\n"
      "  --top-k K         sample among the K most likely; 0 (default) =\n"
      "                    all\n"
      "  --seed S          sampling seed, default 1; the same seed gives\n"
      "                    the tokens of `retcl generate --seed S`\n"
      "  --mode M          prefill form: chunkwise (default; slices are\n"
      "                    whole chunks, so the prompt must be longer\n"
      "                    than (N-1)*C tokens) or recurrent (any slices,\n"
      "                    at least one token per rank)\n"
      "  --chunk C         chunkwise chunk size; default the checkpoint's\n"
      "  --weights W       device storage of the weights: f32 (default),\n"
      "                    f16, bf16 or keep (the file's)\n"
      "  --device D        device index or name substring for every rank;\n"
      "                    default RETCL_DEVICE, else by node-local rank\n"
      "  --platform P      platform index or name substring\n");
}

/* Everything generation holds, released in one place. */
typedef struct mgen {
  mgen_opts o;
  retcl_algorithm algo;
  retcl_storage storage;
  int32_t *prompt, *made;
  size_t T, V, begin, len, chunk, shortest, longest;
  retcl_mpi *h;
  retcl_model *seq, *heads; /* sequence-split and heads-split models */
  retcl_model_config cfg;
  retcl_decode_state *seq_state, *heads_state;
  float *logits; /* [V] */
  double load_s, warmup_s, prefill_s, handoff_s, decode_s;
  size_t steps, made_n;
} mgen;

static int parse(int argc, char **argv, mgen *g) {
  mgen_opts *o = &g->o;
  cli_generate_options_init(&o->gen);
  cli_option opts[4 + CLI_GENERATE_OPTION_COUNT] = {
      {"model", CLI_OPT_STRING, &o->model_dir},
      {"prompt", CLI_OPT_STRING, &o->prompt},
      {"tokens", CLI_OPT_STRING, &o->tokens},
      {"text", CLI_OPT_STRING, &o->text},
  };
  cli_generate_option_rows(&o->gen, opts + 4);
  int parsed = cli_parse_options("generate", argc, argv, opts,
                                 sizeof opts / sizeof opts[0]);
  if (parsed == CLI_PARSE_HELP) {
    if (mcli_rank() == 0) mgen_usage(stdout);
    return -1;
  }
  if (parsed != CLI_PARSE_OK) return CLI_EXIT_USAGE;
  if (!o->model_dir)
    return cli_usage_error("generate", "--model DIR is required");
  if (!!o->prompt + !!o->tokens + !!o->text != 1)
    return cli_usage_error("generate",
                           "give one of --prompt LIST (or --tokens LIST) and "
                           "--text S");
  int rc = cli_generate_options_check(
      "generate", &o->gen, "chunkwise or recurrent", &g->storage, &g->algo);
  if (rc) return rc;
  if (g->algo == RETCL_ALGO_PARALLEL)
    return cli_usage_error("generate",
                           "--mode parallel cannot be split by sequence (its "
                           "normaliser needs every earlier token): use "
                           "chunkwise or recurrent");
  if ((rc = cli_generate_check_end_token("generate", &o->gen))) return rc;
  if (o->text)
    return cli_text_tokens("generate", "text", o->text, &g->prompt, &g->T);
  return cli_parse_tokens("generate", o->prompt ? "prompt" : "tokens",
                          o->prompt ? o->prompt : o->tokens, &g->prompt, &g->T);
}

/* After the models are loaded: the command line against the model, and
 * this rank's slice of the prompt. The same answer on every rank (the
 * same input), printed by rank 0. */
static int check_and_slice(mgen *g) {
  const mgen_opts *o = &g->o;
  const int N = mcli_size(), rank = mcli_rank();
  int rc = CLI_EXIT_OK;
  mcli_quiet_begin();
  if (o->text && g->V != 256)
    rc = cli_error(
        "--text needs a byte-level model (vocabulary 256); %s has "
        "%zu: give token ids with --prompt",
        o->model_dir, g->V);
  if (!rc)
    rc = mcli_check_ids("generate", o->text ? "text" : "prompt", g->prompt,
                        g->T, g->V, o->model_dir);
  if (!rc && o->gen.end_token != SIZE_MAX && o->gen.end_token >= g->V)
    rc = cli_usage_error("generate",
                         "--end-token %zu is not below the vocabulary size "
                         "%zu of %s",
                         o->gen.end_token, g->V, o->model_dir);
  g->chunk = g->algo == RETCL_ALGO_CHUNKWISE
                 ? (o->gen.chunk ? o->gen.chunk : g->cfg.chunk_size)
                 : 0;
  g->shortest = SIZE_MAX;
  for (int r = 0; r < N && !rc; ++r) {
    size_t b, n;
    if (!mcli_slice(g->T, g->chunk, r, N, &b, &n)) {
      if (g->chunk)
        rc = cli_error(
            "a chunkwise prefill split over %d ranks needs more "
            "than %zu prompt tokens (every rank a slice, every "
            "slice but the last whole chunks of %zu); the prompt "
            "has %zu: use fewer ranks, a smaller --chunk or "
            "--mode recurrent",
            N, (size_t)(N - 1) * g->chunk, g->chunk, g->T);
      else
        rc = cli_error(
            "a prefill split over %d ranks needs at least one "
            "prompt token per rank; the prompt has %zu",
            N, g->T);
      break;
    }
    if (n < g->shortest) g->shortest = n;
    if (n > g->longest) g->longest = n;
    if (r == rank) g->begin = b, g->len = n;
  }
  mcli_quiet_end();
  return rc;
}

/* Steps a rank runs alone (creating states, the hand-off copy) end with
 * this: a failure anywhere fails every rank before the next collective. */
static int agree_local(mgen *g, retcl_status st, const char *what) {
  int rc = st ? mcli_fail_local(retcl_mpi_context(g->h), st, what) : 0;
  return mcli_agree(rc);
}

/* The collective forward calls: errors agreed by the library, printed by
 * rank 0. */
static int fail_agreed(mgen *g, retcl_status st, const char *what) {
  return mcli_fail_agreed(st, what, retcl_last_error(retcl_mpi_context(g->h)));
}

/* Sequence-parallel prefill into a sequence-split state, the hand-off to a
 * heads-split state and one decode step: into fresh states seq, heads.
 * The last rank's prefill logits (its slice's last token) go to every
 * rank. Used for the warm-up and the real run. */
static int prefill(mgen *g, retcl_decode_state **seq,
                   retcl_decode_state **heads, double *prefill_s,
                   double *handoff_s) {
  retcl_status st = retcl_decode_state_create(g->seq, 1, seq);
  if (!st) st = retcl_decode_state_create(g->heads, 1, heads);
  int rc = agree_local(g, st, "creating the decode states");
  if (rc) return rc;
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = cli_now();
  st = retcl_model_forward_last(g->seq, *seq, g->prompt + g->begin, 1, g->len,
                                g->algo, g->o.gen.chunk, g->logits);
  if (st) return fail_agreed(g, st, "sequence-parallel prefill");
  MPI_Bcast(g->logits, (int)g->V, MPI_FLOAT, mcli_size() - 1, MPI_COMM_WORLD);
  *prefill_s = mcli_max_double(cli_now() - t0);
  t0 = cli_now();
  st = retcl_decode_state_copy(*seq, *heads);
  if (!st) st = retcl_finish(retcl_mpi_context(g->h));
  rc = agree_local(g, st, "handing the prefill state to the heads split");
  if (!rc) *handoff_s = mcli_max_double(cli_now() - t0);
  return rc;
}

/* One head-parallel decode step: tok in, g->logits out. Collective. */
static int step(mgen *g, retcl_decode_state *state, int32_t tok) {
  retcl_status st = retcl_model_forward(g->heads, state, &tok, 1, 1,
                                        RETCL_ALGO_RECURRENT, 0, g->logits);
  return st ? fail_agreed(g, st, "head-parallel decode step") : CLI_EXIT_OK;
}

/* Rank 0 samples from g->logits and every rank gets the token; a sampler
 * failure on rank 0 reaches every rank as token -1. */
static int next_token(mgen *g, uint64_t *rng, int32_t *tok) {
  int32_t t = -1;
  if (mcli_rank() == 0) {
    retcl_sampler sm = {(float)g->o.gen.temperature, g->o.gen.top_k};
    retcl_status st = retcl_sample(g->logits, g->V, &sm, rng, &t);
    if (st) {
      cli_error("sampling: %s", retcl_status_string(st));
      t = -1;
    }
  }
  MPI_Bcast(&t, 1, MPI_INT32_T, 0, MPI_COMM_WORLD);
  *tok = t;
  return t < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static int warm_up(mgen *g) {
  retcl_decode_state *seq = NULL, *heads = NULL;
  double a = 0, b = 0, t0 = cli_now();
  int rc = prefill(g, &seq, &heads, &a, &b);
  if (!rc) rc = step(g, heads, g->prompt[g->T - 1]);
  g->warmup_s = mcli_max_double(cli_now() - t0);
  retcl_decode_state_destroy(heads);
  retcl_decode_state_destroy(seq);
  return rc;
}

static int generate(mgen *g) {
  const int rank0 = mcli_rank() == 0;
  int rc =
      prefill(g, &g->seq_state, &g->heads_state, &g->prefill_s, &g->handoff_s);
  if (rc) return rc;
  uint64_t rng = g->o.gen.seed;
  if (rank0) {
    printf("%-9s", g->o.text ? "text:" : "tokens:");
    if (g->o.text) {
      putchar(' ');
      cli_print_text(stdout, g->prompt, g->T);
      putchar('[');
    }
  }
  for (size_t i = 0; i < g->o.gen.max_new; ++i) {
    int32_t tok = 0;
    rc = next_token(g, &rng, &tok);
    if (rc) break;
    g->made[g->made_n++] = tok;
    if (rank0) {
      if (g->o.text)
        cli_print_text(stdout, &tok, 1);
      else
        printf(" %d", (int)tok);
      fflush(stdout);
    }
    if (i + 1 == g->o.gen.max_new) break;
    if (g->o.gen.end_token != SIZE_MAX && (size_t)tok == g->o.gen.end_token)
      break;
    double t0 = cli_now();
    rc = step(g, g->heads_state, tok);
    g->decode_s += cli_now() - t0;
    if (rc) break;
    ++g->steps;
  }
  if (rank0) {
    if (g->o.text) putchar(']');
    printf("%s\n", g->made_n || g->o.text ? "" : " (none)");
  }
  if (!rc) g->decode_s = mcli_max_double(g->decode_s);
  return rc;
}

static void print_header(const mgen *g) {
  char dev[768], desc[512], ws[32], wh[32], sl[64];
  const int N = mcli_size();
  printf("retcl-mpi %s generate\n", retcl_version_string());
  printf(
      "%-9s %d: prefill split by sequence (%s), decode split by heads "
      "(%zu heads, %zu FFN units)\n",
      "ranks:", N, mcli_slices_text(g->shortest, g->longest, sl, sizeof sl),
      g->cfg.heads, g->cfg.ffn_dim);
  printf("%-9s rank 0: %s\n", "device:",
         cli_device_description(retcl_mpi_context(g->h), dev, sizeof dev));
  printf("%-9s %s: %s\n", "model:", g->o.model_dir,
         cli_model_description(&g->cfg, desc, sizeof desc));
  printf(
      "%-9s weights on rank 0: %s whole (prefill) + %s heads split "
      "(decode), %s, loaded in %.1f ms\n",
      "", cli_format_bytes(retcl_model_weight_bytes(g->seq), ws, sizeof ws),
      cli_format_bytes(retcl_model_weight_bytes(g->heads), wh, sizeof wh),
      cli_dtype_name(retcl_model_weight_type(g->seq)), 1e3 * g->load_s);
  printf("%-9s %zu tokens, prefill %s", "prompt:", g->T,
         cli_algorithm_name(g->algo));
  if (g->algo == RETCL_ALGO_CHUNKWISE) printf(" (chunk %zu)", g->chunk);
  cli_print_sampling(&g->o.gen);
  printf("\n");
  printf("%-9s %.1f ms (builds the kernels; not counted below)\n",
         "warm-up:", 1e3 * g->warmup_s);
  fflush(stdout);
}

static void print_summary(const mgen *g) {
  char ss[32], hs[32];
  printf(
      "%-9s %zu tokens in %.3f ms: %.0f tokens/s (slowest rank); "
      "hand-off to the heads split %.3f ms\n",
      "prefill:", g->T, 1e3 * g->prefill_s, (double)g->T / g->prefill_s,
      1e3 * g->handoff_s);
  if (g->steps)
    printf("%-9s %zu steps in %.3f ms: %.3f ms/token, %.0f tokens/s\n",
           "decode:", g->steps, 1e3 * g->decode_s,
           1e3 * g->decode_s / (double)g->steps,
           (double)g->steps / g->decode_s);
  else
    printf("%-9s no steps (the first new token comes from the prefill)\n",
           "decode:");
  printf(
      "%-9s per rank: decode states %s (whole, prefill) + %s (its heads) "
      "at position %zu\n",
      "memory:",
      cli_format_bytes(retcl_decode_state_bytes(g->seq_state), ss, sizeof ss),
      cli_format_bytes(retcl_decode_state_bytes(g->heads_state), hs, sizeof hs),
      retcl_decode_state_position(g->heads_state));
}

static int generate_mpi(int argc, char **argv) {
  mgen g;
  memset(&g, 0, sizeof g);
  mcli_quiet_begin();
  int rc = parse(argc, argv, &g);
  mcli_quiet_end();
  rc = mcli_agree(rc); /* the same argv: the same answer everywhere */
  double seq_s = 0, heads_s = 0;
  if (!rc) rc = mcli_open(g.o.gen.platform, g.o.gen.device, &g.h);
  if (!rc)
    rc = mcli_load(g.h, g.o.model_dir, RETCL_MPI_SPLIT_SEQUENCE, g.storage,
                   &g.seq, &seq_s);
  if (!rc)
    rc = mcli_load(g.h, g.o.model_dir, RETCL_MPI_SPLIT_HEADS, g.storage,
                   &g.heads, &heads_s);
  g.load_s = seq_s + heads_s;
  if (!rc) {
    retcl_model_get_config(g.seq, &g.cfg);
    g.V = g.cfg.vocab_size;
    rc = mcli_agree(check_and_slice(&g));
  }
  if (!rc) {
    g.logits = malloc(g.V * sizeof *g.logits);
    g.made = malloc((g.o.gen.max_new ? g.o.gen.max_new : 1) * sizeof *g.made);
    if (!g.logits || !g.made)
      rc = cli_error("rank %d: out of host memory", mcli_rank());
    rc = mcli_agree(rc);
  }
  if (!rc) rc = warm_up(&g);
  if (!rc && mcli_rank() == 0) print_header(&g);
  if (!rc) rc = generate(&g);
  if (!rc && mcli_rank() == 0) print_summary(&g);
  retcl_decode_state_destroy(g.heads_state);
  retcl_decode_state_destroy(g.seq_state);
  retcl_model_destroy(g.heads);
  retcl_model_destroy(g.seq);
  retcl_mpi_destroy(g.h);
  free(g.logits);
  free(g.made);
  free(g.prompt);
  return rc < 0 ? CLI_EXIT_OK : rc; /* -1: --help */
}

const cli_command mcli_cmd_generate = {
    "generate", "prefill sequence-parallel, decode head-parallel (one prompt)",
    generate_mpi, mgen_usage};
