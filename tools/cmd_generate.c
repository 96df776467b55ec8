/* cmd_generate.c - `retcl generate`: RetNet text generation, in token ids
 * or, for a byte-level model, in text.
 * One prompt is prefilled in one call (parallel, chunkwise or recurrent
 * form) into a decode state; then each new token is sampled from the last
 * logits and fed back with one recurrent step. The state has the same size
 * however long the sequence grows, which is the point of RetNet: the
 * summary prints it next to the speeds of both phases.
 * Several prompts (--prompt repeated, or --prompts FILE) are prefilled as
 * one packed batch into the slots of a state pool and decoded together,
 * each sequence stopping on its own (--max-new, --end-token); a stopped
 * sequence's row is skipped (slot -1) by the later steps. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct gen_opts {
  const char *model_dir, *prompt, *text;
  const char *prompts_file;
  cli_strings prompt_list; /* every --prompt, in order */
  int max_new_set;
  cli_generate_options gen; /* sampling, mode, weights, device */
} gen_opts;

static void generate_usage(FILE *out) {
  fprintf(out,
          "usage: retcl generate --model DIR (--prompt ID,ID,... | --text S)\n"
          "                      --max-new N [--end-token ID]\n"
          "       retcl generate --model DIR (--prompt LIST --prompt LIST ...\n"
          "                      | --prompts FILE) --max-new N [--end-token ID]\n"
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
          "With several prompts, they are prefilled as one packed batch (no\n"
          "padding) into the slots of a state pool and decoded together, one\n"
          "step for every running sequence at a time; a sequence stops after\n"
          "N tokens or when it emits the end token, and the others go on.\n"
          "Each sequence's tokens are printed on one line, in prompt order\n"
          "(`seq I:`), then the aggregate speeds. Each sequence samples with\n"
          "its own generator seeded by --seed, so it gets the tokens a run\n"
          "with its prompt alone would.\n"
          "\n"
          "  --model DIR       checkpoint folder (required)\n"
          "  --prompt LIST     comma-separated token ids; repeat for a batch\n"
          "  --prompts FILE    a batch: one prompt per line, ids separated by\n"
          "                    commas and/or spaces (blank lines are skipped)\n"
          "  --text S          the prompt as text, one token per byte (a model\n"
          "                    with a vocabulary of 256, such as `retcl train`\n"
          "                    makes from text); the output is text too\n"
          "  --max-new N       tokens to generate (required); per sequence\n"
          "  --end-token ID    a sequence stops once it emits ID (printed)\n"
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
  int32_t *made; /* the generated tokens, for --text; batch: [nseq, max_new] */
  size_t T, V;
  retcl_context *ctx;
  retcl_model *model;
  retcl_model_config cfg;
  retcl_decode_state *state;
  float *logits; /* [V]: the last position's logits (prefill, then steps);
                   batch: [nseq, V] */
  double load_s, warmup_s, prefill_s, decode_s;
  size_t steps;
  /* A batch: prompt is every prompt packed, T tokens in all. */
  size_t nseq;
  size_t *offsets;         /* [nseq + 1] */
  retcl_state_pool *pool;  /* slot r: sequence r */
  int32_t *slots;          /* [nseq]: r while running, -1 once stopped */
  int32_t *last;           /* [nseq]: each sequence's latest token */
  uint64_t *rngs;          /* [nseq]: each sequence's sampler */
  size_t *made_n;          /* [nseq]: tokens made per sequence */
  size_t running, ended, step_tokens;
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
                                g->o.gen.chunk, g->logits);
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
  retcl_sampler sm = {(float)g->o.gen.temperature, g->o.gen.top_k};
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
                                g->algo, g->o.gen.chunk, g->logits);
  g->prefill_s = cli_now() - t0;
  if (st) return cli_fail(g->ctx, st, "prefill");

  uint64_t rng = g->o.gen.seed;
  const float *row = g->logits;
  printf("%-9s", g->made ? "text:" : "tokens:");
  if (g->made) {
    putchar(' ');
    cli_print_text(stdout, g->prompt, g->T);
    printf("[");
  }
  for (size_t i = 0; i < g->o.gen.max_new; ++i) {
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
    if (i + 1 == g->o.gen.max_new) break;
    if (g->o.gen.end_token != SIZE_MAX && (size_t)tok == g->o.gen.end_token)
      break;
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
  printf("%s\n", g->o.gen.max_new || g->made ? "" : " (none)");
  return CLI_EXIT_OK;
}

/* ---- batches ------------------------------------------------------------- */

/* A prompts file is text; refuse anything huge before reading it. */
#define MAX_PROMPTS_FILE_BYTES (256u * 1024u * 1024u)

static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* One line of a prompts file: token ids separated by a comma, blanks, or a
 * comma with blanks around it. Appends to tokens[*count]; *items is the
 * number of ids found (0 for a blank line). */
static int parse_prompt_line(const char *file, size_t lineno,
                             const char *line, size_t len, int32_t *tokens,
                             size_t *count, size_t *items) {
  size_t i = 0, n = 0;
  *items = 0;
  while (i < len && is_blank(line[i])) ++i;
  while (i < len) {
    size_t start = i;
    uint64_t v = 0;
    while (i < len && line[i] >= '0' && line[i] <= '9' && i - start <= 10)
      v = v * 10 + (uint64_t)(line[i++] - '0');
    size_t end = i;
    while (end < len && !is_blank(line[end]) && line[end] != ',') ++end;
    if (end == start || end != i || v > INT32_MAX)
      return cli_usage_error(
          "generate",
          "--prompts %s line %zu: item %zu is '%.*s', not a token id (a "
          "non-negative integer below 2^31)",
          file, lineno, n + 1, (int)(end - start), line + start);
    tokens[(*count)++] = (int32_t)v;
    ++n;
    while (i < len && is_blank(line[i])) ++i;
    if (i < len && line[i] == ',') {
      ++i;
      while (i < len && is_blank(line[i])) ++i;
      if (i == len)
        return cli_usage_error("generate",
                               "--prompts %s line %zu: ends with a comma "
                               "(an empty item)",
                               file, lineno);
    }
  }
  *items = n;
  return CLI_EXIT_OK;
}

/* Appends a sequence boundary after a prompt of `len` tokens. */
static int push_offset(size_t **offsets, size_t *n, size_t total) {
  size_t *more = realloc(*offsets, (*n + 2) * sizeof *more);
  if (!more) return cli_error("out of host memory for the prompts");
  *offsets = more;
  more[++*n] = total;
  return CLI_EXIT_OK;
}

/* Every prompt of the file, packed: g->prompt [g->T], g->offsets
 * [g->nseq + 1]. */
static int read_prompts_file(gen *g) {
  const char *path = g->o.prompts_file;
  FILE *f = fopen(path, "rb");
  if (!f)
    return cli_error("--prompts %s: cannot open: %s", path, strerror(errno));
  size_t len = 0, cap = 4096;
  char *text = malloc(cap);
  int rc = CLI_EXIT_OK;
  while (text && !rc) {
    len += fread(text + len, 1, cap - len, f);
    if (len < cap) break;
    if (cap >= MAX_PROMPTS_FILE_BYTES) {
      rc = cli_error("--prompts %s: larger than %u bytes", path,
                     MAX_PROMPTS_FILE_BYTES);
      break;
    }
    char *bigger = realloc(text, cap * 2);
    if (!bigger) free(text);
    text = bigger;
    cap *= 2;
  }
  if (!rc && !text) rc = cli_error("out of host memory for %s", path);
  if (!rc && ferror(f)) rc = cli_error("--prompts %s: read error", path);
  fclose(f);
  /* Every id takes a byte at least: len + 1 bounds the count. */
  if (!rc && !(g->prompt = malloc((len + 1) * sizeof *g->prompt)))
    rc = cli_error("out of host memory for the prompts");
  if (!rc && !(g->offsets = calloc(1, sizeof *g->offsets)))
    rc = cli_error("out of host memory for the prompts");
  size_t lineno = 0;
  for (size_t at = 0; !rc && at < len;) {
    const char *nl = memchr(text + at, '\n', len - at);
    const size_t end = nl ? (size_t)(nl - text) : len;
    size_t items = 0;
    rc = parse_prompt_line(path, ++lineno, text + at, end - at, g->prompt,
                           &g->T, &items);
    if (!rc && items) rc = push_offset(&g->offsets, &g->nseq, g->T);
    at = end + 1;
  }
  if (!rc && g->nseq == 0)
    rc = cli_usage_error("generate", "--prompts %s holds no prompt", path);
  free(text);
  return rc;
}

/* Every --prompt, packed. */
static int read_prompt_list(gen *g) {
  const cli_strings *list = &g->o.prompt_list;
  if (!(g->offsets = calloc(1, sizeof *g->offsets)))
    return cli_error("out of host memory for the prompts");
  for (size_t i = 0; i < list->count; ++i) {
    char opt[32];
    snprintf(opt, sizeof opt, "prompt (#%zu)", i + 1);
    int32_t *t = NULL;
    size_t n = 0;
    int rc = cli_parse_tokens("generate", opt, list->items[i], &t, &n);
    int32_t *more = rc ? NULL : realloc(g->prompt, (g->T + n) * sizeof *more);
    if (!rc && !more) rc = cli_error("out of host memory for the prompts");
    if (!rc) {
      g->prompt = more;
      memcpy(g->prompt + g->T, t, n * sizeof *t);
      g->T += n;
      rc = push_offset(&g->offsets, &g->nseq, g->T);
    }
    free(t);
    if (rc) return rc;
  }
  return CLI_EXIT_OK;
}

/* Ids the model does not have, named by prompt and position (the library
 * would refuse the whole batch without saying which). */
static int check_prompt_ids(const gen *g) {
  for (size_t s = 0; s < g->nseq; ++s)
    for (size_t j = g->offsets[s]; j < g->offsets[s + 1]; ++j)
      if ((size_t)g->prompt[j] >= g->V)
        return cli_usage_error("generate",
                               "prompt %zu: token %d (item %zu) is not below "
                               "the vocabulary size %zu of %s",
                               s + 1, (int)g->prompt[j],
                               j - g->offsets[s] + 1, g->V, g->o.model_dir);
  return CLI_EXIT_OK;
}

/* A packed prefill and decode steps on a scratch pool, so that the timed
 * runs measure the kernels, not their compilation. */
static int batch_warm_up(gen *g) {
  retcl_state_pool *pool = NULL;
  retcl_status st = retcl_state_pool_create(g->model, g->nseq, &pool);
  if (st) return cli_fail(g->ctx, st, "creating a state pool");
  double t0 = cli_now();
  st = retcl_model_forward_packed(g->model, pool, g->slots, g->prompt,
                                  g->offsets, g->nseq, g->algo, g->o.gen.chunk,
                                  1, g->logits);
  const char *what = "packed prefill";
  /* Steps of n, n - 1, ..., 1 running rows: as sequences stop, the steps
   * run fewer rows, and kernels may be picked (and built) by size. */
  for (size_t k = g->nseq; k > 0 && !st; --k) {
    what = "decode step";
    st = retcl_model_decode_step(g->model, pool, g->slots, g->last, g->nseq,
                                 g->logits);
    g->slots[k - 1] = -1;
  }
  for (size_t r = 0; r < g->nseq; ++r) g->slots[r] = (int32_t)r;
  g->warmup_s = cli_now() - t0;
  retcl_state_pool_destroy(pool);
  return st ? cli_fail(g->ctx, st, what) : CLI_EXIT_OK;
}

/* Sample row r's next token into the sequence; mark it done at max_new or
 * on the end token. */
static int batch_take(gen *g, size_t r) {
  int32_t tok = 0;
  int rc = sample(g, g->logits + r * g->V, &g->rngs[r], &tok);
  if (rc) return rc;
  g->made[r * g->o.gen.max_new + g->made_n[r]++] = tok;
  g->last[r] = tok;
  const int ended =
      g->o.gen.end_token != SIZE_MAX && (size_t)tok == g->o.gen.end_token;
  if (ended) ++g->ended;
  if (ended || g->made_n[r] == g->o.gen.max_new) {
    g->slots[r] = -1; /* the next steps skip the row */
    --g->running;
  }
  return CLI_EXIT_OK;
}

/* Packed prefill into slots 0 .. n-1, then steps of the running rows until
 * every sequence has stopped. */
static int batch_generate(gen *g) {
  retcl_status st = retcl_state_pool_create(g->model, g->nseq, &g->pool);
  if (st) return cli_fail(g->ctx, st, "creating a state pool");
  for (size_t r = 0; r < g->nseq; ++r) {
    g->slots[r] = (int32_t)r;
    g->rngs[r] = g->o.gen.seed;
  }
  double t0 = cli_now();
  st = retcl_model_forward_packed(g->model, g->pool, g->slots, g->prompt,
                                  g->offsets, g->nseq, g->algo, g->o.gen.chunk,
                                  1, g->logits);
  g->prefill_s = cli_now() - t0;
  if (st) return cli_fail(g->ctx, st, "packed prefill");
  g->running = g->o.gen.max_new ? g->nseq : 0;
  for (size_t r = 0; r < g->nseq && g->o.gen.max_new; ++r) {
    int rc = batch_take(g, r);
    if (rc) return rc;
  }
  while (g->running) {
    t0 = cli_now();
    st = retcl_model_decode_step(g->model, g->pool, g->slots, g->last,
                                 g->nseq, g->logits);
    g->decode_s += cli_now() - t0;
    if (st) return cli_fail(g->ctx, st, "decode step");
    ++g->steps;
    for (size_t r = 0; r < g->nseq; ++r) {
      if (g->slots[r] < 0) continue;
      ++g->step_tokens;
      int rc = batch_take(g, r);
      if (rc) return rc;
    }
  }
  for (size_t r = 0; r < g->nseq; ++r) {
    char label[32];
    snprintf(label, sizeof label, "seq %zu:", r);
    printf("%-9s", label);
    for (size_t i = 0; i < g->made_n[r]; ++i)
      printf(" %d", (int)g->made[r * g->o.gen.max_new + i]);
    printf("%s\n", g->made_n[r] ? "" : " (none)");
  }
  return CLI_EXIT_OK;
}

/* The headers' first lines, the same for one prompt and a batch: the
 * program, device, model and weights. */
static void print_model_lines(const gen *g) {
  char dev[768], desc[512], w[32];
  printf("retcl %s generate\n", retcl_version_string());
  printf("%-9s %s\n", "device:",
         cli_device_description(g->ctx, dev, sizeof dev));
  printf("%-9s %s: %s\n", "model:", g->o.model_dir,
         cli_model_description(&g->cfg, desc, sizeof desc));
  printf("%-9s weights %s (%s), loaded in %.1f ms\n", "",
         cli_format_bytes(retcl_model_weight_bytes(g->model), w, sizeof w),
         cli_dtype_name(retcl_model_weight_type(g->model)), 1e3 * g->load_s);
}

/* Continues the prompt line: the chunk size (chunkwise), the sampling. */
static void print_chunk_and_sampling(const gen *g) {
  if (g->algo == RETCL_ALGO_CHUNKWISE)
    printf(" (chunk %zu)", g->o.gen.chunk ? g->o.gen.chunk : g->cfg.chunk_size);
  cli_print_sampling(&g->o.gen);
}

/* The headers' last line, flushed before the tokens stream. */
static void print_warm_up(const gen *g) {
  printf("%-9s %.1f ms (builds the kernels; not counted below)\n",
         "warm-up:", 1e3 * g->warmup_s);
  fflush(stdout);
}

static void print_batch_header(const gen *g) {
  size_t shortest = SIZE_MAX, longest = 0;
  for (size_t s = 0; s < g->nseq; ++s) {
    const size_t n = g->offsets[s + 1] - g->offsets[s];
    if (n < shortest) shortest = n;
    if (n > longest) longest = n;
  }
  print_model_lines(g);
  printf("%-9s %zu sequences, %zu tokens (%zu to %zu each), packed prefill "
         "%s",
         "prompts:", g->nseq, g->T, shortest, longest,
         cli_algorithm_name(g->algo));
  print_chunk_and_sampling(g);
  if (g->o.gen.end_token != SIZE_MAX)
    printf(", end token %zu", g->o.gen.end_token);
  printf("\n");
  print_warm_up(g);
}

static void print_batch_summary(const gen *g) {
  char pb[32], wb[32];
  size_t made = 0;
  for (size_t r = 0; r < g->nseq; ++r) made += g->made_n[r];
  printf("%-9s %zu tokens of %zu sequences in %.3f ms: %.0f tokens/s\n",
         "prefill:", g->T, g->nseq, 1e3 * g->prefill_s,
         (double)g->T / g->prefill_s);
  if (g->steps)
    printf("%-9s %zu steps, %zu tokens in %.3f ms: %.3f ms/step, %.0f "
           "tokens/s aggregate\n",
           "decode:", g->steps, g->step_tokens, 1e3 * g->decode_s,
           1e3 * g->decode_s / (double)g->steps,
           (double)g->step_tokens / g->decode_s);
  else
    printf("%-9s no steps (each first new token comes from the prefill)\n",
           "decode:");
  printf("%-9s %zu new tokens in %.3f ms (prefill + decode): %.0f tokens/s "
         "aggregate; %zu of %zu sequences ended on the end token\n",
         "total:", made, 1e3 * (g->prefill_s + g->decode_s),
         (double)made / (g->prefill_s + g->decode_s), g->ended, g->nseq);
  printf("%-9s state pool of %zu slots %s (the same at any length); "
         "weights %s\n",
         "memory:", g->nseq,
         cli_format_bytes(retcl_state_pool_bytes(g->pool), pb, sizeof pb),
         cli_format_bytes(retcl_model_weight_bytes(g->model), wb, sizeof wb));
}

/* Buffers of a batch run, once the model (V) is known. */
static int batch_alloc(gen *g) {
  const size_t n = g->nseq, per = g->o.gen.max_new ? g->o.gen.max_new : 1;
  g->logits = malloc(n * g->V * sizeof *g->logits);
  g->slots = malloc(n * sizeof *g->slots);
  g->last = calloc(n, sizeof *g->last);
  g->rngs = calloc(n, sizeof *g->rngs);
  g->made_n = calloc(n, sizeof *g->made_n);
  g->made = n > SIZE_MAX / per ? NULL : malloc(n * per * sizeof *g->made);
  if (!g->logits || !g->slots || !g->last || !g->rngs || !g->made_n ||
      !g->made)
    return cli_error("out of host memory for a batch of %zu sequences", n);
  for (size_t r = 0; r < n; ++r) {
    g->slots[r] = (int32_t)r;
    g->last[r] = g->prompt[g->offsets[r + 1] - 1]; /* warm-up input */
  }
  return CLI_EXIT_OK;
}

static void print_header(const gen *g) {
  print_model_lines(g);
  printf("%-9s %zu tokens, prefill %s", "prompt:", g->T,
         cli_algorithm_name(g->algo));
  print_chunk_and_sampling(g);
  printf("\n");
  print_warm_up(g);
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

/* The single-prompt run: streamed tokens from a decode state. */
static int run_single(gen *g) {
  const gen_opts *o = &g->o;
  if (!(g->logits = malloc(g->V * sizeof *g->logits)))
    return cli_error("out of host memory for %zu logits", g->V);
  if (o->text && g->V != 256)
    return cli_error("--text needs a byte-level model (vocabulary 256); %s "
                     "has %zu: give token ids with --prompt",
                     o->model_dir, g->V);
  if (o->text && !(g->made = malloc((o->gen.max_new ? o->gen.max_new : 1) *
                                    sizeof *g->made)))
    return cli_error("out of host memory");
  int rc = warm_up(g);
  if (!rc) {
    print_header(g);
    rc = generate(g);
  }
  if (!rc) print_summary(g);
  return rc;
}

/* The batch run: packed prefill into a pool, decoded together. */
static int run_batch(gen *g) {
  int rc = check_prompt_ids(g);
  if (!rc) rc = batch_alloc(g);
  if (!rc) rc = batch_warm_up(g);
  if (!rc) {
    print_batch_header(g);
    rc = batch_generate(g);
  }
  if (!rc) print_batch_summary(g);
  return rc;
}

static int generate_run(int argc, char **argv) {
  gen g;
  memset(&g, 0, sizeof g);
  gen_opts *o = &g.o;
  cli_generate_options_init(&o->gen);
  cli_option opts[4 + CLI_GENERATE_OPTION_COUNT] = {
      {"model", CLI_OPT_STRING, &o->model_dir},
      {"prompt", CLI_OPT_LIST, &o->prompt_list},
      {"prompts", CLI_OPT_STRING, &o->prompts_file},
      {"text", CLI_OPT_STRING, &o->text},
  };
  cli_generate_option_rows(&o->gen, opts + 4);
  int parsed = cli_parse_options("generate", argc, argv, opts,
                                 sizeof opts / sizeof opts[0]);
  int rc = CLI_EXIT_OK;
  retcl_storage storage = RETCL_STORAGE_F32;
  if (parsed == CLI_PARSE_HELP) generate_usage(stdout);
  if (parsed != CLI_PARSE_OK) rc = CLI_EXIT_USAGE;
  const size_t given = (o->prompt_list.count > 0) + !!o->prompts_file +
                       !!o->text;
  const int batch = o->prompt_list.count > 1 || o->prompts_file;
  if (rc) {
    /* --help, or a parse error already reported */
  } else if (!o->model_dir)
    rc = cli_usage_error("generate", "--model DIR is required");
  else if (given != 1)
    rc = cli_usage_error("generate",
                         "give one of --prompt LIST (repeatable), --prompts "
                         "FILE and --text S");
  else if (!(rc = cli_generate_options_check(
                 "generate", &o->gen, "parallel, chunkwise or recurrent",
                 &storage, &g.algo)) &&
           !(rc = cli_generate_check_end_token("generate", &o->gen))) {
    if (o->prompts_file)
      rc = read_prompts_file(&g);
    else if (batch)
      rc = read_prompt_list(&g);
    else if (o->text)
      rc = cli_text_tokens("generate", "text", o->text, &g.prompt, &g.T);
    else
      rc = cli_parse_tokens("generate", "prompt", o->prompt_list.items[0],
                            &g.prompt, &g.T);
  }

  if (!rc)
    rc = cli_open_model_as(o->gen.platform, o->gen.device, o->model_dir,
                           storage, &g.ctx, &g.model, &g.load_s);
  if (!rc) {
    retcl_model_get_config(g.model, &g.cfg);
    g.V = g.cfg.vocab_size;
    if (o->gen.end_token != SIZE_MAX && o->gen.end_token >= g.V)
      rc = cli_usage_error("generate",
                           "--end-token %zu is not below the vocabulary "
                           "size %zu of %s",
                           o->gen.end_token, g.V, o->model_dir);
  }
  if (!rc) rc = batch ? run_batch(&g) : run_single(&g);
  retcl_decode_state_destroy(g.state);
  retcl_state_pool_destroy(g.pool);
  free(g.logits);
  free(g.prompt);
  free(g.made);
  free(g.offsets);
  free(g.slots);
  free(g.last);
  free(g.rngs);
  free(g.made_n);
  cli_strings_free(&o->prompt_list);
  cli_close_model(g.ctx, g.model);
  return parsed == CLI_PARSE_HELP ? CLI_EXIT_OK : rc;
}

const cli_command cli_cmd_generate = {
    "generate", "generate tokens with a RetNet checkpoint (prefill + decode)",
    generate_run, generate_usage};
