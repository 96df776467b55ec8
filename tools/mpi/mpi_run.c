/* mpi_run.c - `retcl-mpi run`: what `retcl run` does, with the model split
 * across the ranks (retcl_mpi_model_load). Heads split: every rank runs
 * the whole sequence on its heads and FFN units, the partial sums meet in
 * MPI_Allreduce, every rank gets all logits. Sequence split: rank r runs a
 * contiguous slice of the tokens, the layers' retention states cross the
 * ranks by a scan, and rank 0 gathers the slices' logits. Rank 0 prints
 * the summary and writes --logits, the same [T, vocab] float32 .npy as
 * `retcl run`, so the two can be compared value by value. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_cli.h"
#include "npy.h"

typedef struct mrun_opts {
  const char *model_dir, *tokens, *text, *mode, *split, *logits_path, *weights,
      *device, *platform;
  size_t chunk;
} mrun_opts;

static void mrun_usage(FILE *out) {
  fprintf(out,
          "usage: mpirun -np N retcl-mpi run --model DIR\n"
          "                 (--tokens ID,ID,... | --text S)\n"
          "                 --split sequence|heads\n"
          "                 [--mode chunkwise|recurrent|parallel] [--chunk C]\n"
          "                 [--logits FILE.npy] [--weights f32|f16|bf16|keep]\n"
          "                 [--device D] [--platform P]\n"
          "\n"
          "Run the checkpoint in DIR on one token sequence with the model\n"
          "split across the N ranks, and give what `retcl run` gives with\n"
          "the same options: rank 0 lists each position's most likely next\n"
          "token and writes the logits. A warm-up (the same forward; one step\n"
          "in recurrent heads-split mode) builds the kernels first.\n"
          "\n"
          "  --split heads     rank r holds heads and FFN units [r*n/N,\n"
          "                    (r+1)*n/N) of every layer (N <= heads, N <=\n"
          "                    FFN units), plus the embedding, norms and\n"
          "                    output projection; every rank runs all tokens\n"
          "                    and two MPI_Allreduce per layer join the\n"
          "                    partial sums. Weights per rank: about 1/N of\n"
          "                    the layers' plus the embedding and output.\n"
          "                    Every mode works.\n"
          "  --split sequence  every rank holds the whole model and runs a\n"
          "                    contiguous slice of the tokens; each layer\n"
          "                    passes one state per head between ranks (a\n"
          "                    scan). chunkwise: slices are whole chunks,\n"
          "                    as even as possible, the last rank takes the\n"
          "                    rest, so T must exceed (N-1)*C; recurrent: any\n"
          "                    slices, T >= N; parallel is not supported\n"
          "                    (its normaliser needs every earlier token).\n"
          "  --model DIR       checkpoint folder (required)\n"
          "  --tokens LIST     comma-separated token ids, e.g. 5,17,3\n"
          "  --text S          the input as text, one token per byte (a model\n"
          "                    with a vocabulary of 256)\n"
          "  --mode M          chunkwise (default), recurrent or parallel;\n"
          "                    heads-split recurrent steps one token at a\n"
          "                    time through a decode state, as `retcl run`;\n"
          "                    sequence-split recurrent runs each slice\n"
          "                    through the recurrence in one call\n"
          "  --chunk C         chunkwise chunk size; default the checkpoint's\n"
          "                    recurrent_chunk_size\n"
          "  --logits FILE     rank 0 writes the logits [T, vocab] as float32\n"
          "                    NumPy .npy (the slices gathered in sequence\n"
          "                    split)\n"
          "  --weights W       device storage of the weights: f32 (default),\n"
          "                    f16, bf16 or keep (the file's)\n"
          "  --device D        device index or name substring for every rank;\n"
          "                    default RETCL_DEVICE, else by node-local rank\n"
          "  --platform P      platform index or name substring\n");
}

/* The parsed command line; the same on every rank. */
typedef struct mrun {
  mrun_opts o;
  retcl_algorithm algo;
  retcl_mpi_split split;
  retcl_storage storage;
  int32_t *tok;
  size_t T;
} mrun;

/* Options and tokens: every rank reads the same argv, so every rank gets
 * the same answer and only rank 0 needs to say it. */
static int parse(int argc, char **argv, mrun *m) {
  mrun_opts *o = &m->o;
  o->mode = "chunkwise";
  const cli_option opts[] = {
      {"model", CLI_OPT_STRING, &o->model_dir},
      {"tokens", CLI_OPT_STRING, &o->tokens},
      {"text", CLI_OPT_STRING, &o->text},
      {"split", CLI_OPT_STRING, &o->split},
      {"mode", CLI_OPT_STRING, &o->mode},
      {"chunk", CLI_OPT_SIZE, &o->chunk},
      {"logits", CLI_OPT_STRING, &o->logits_path},
      {"weights", CLI_OPT_STRING, &o->weights},
      {"device", CLI_OPT_STRING, &o->device},
      {"platform", CLI_OPT_STRING, &o->platform},
  };
  int parsed =
      cli_parse_options("run", argc, argv, opts, sizeof opts / sizeof opts[0]);
  if (parsed == CLI_PARSE_HELP) {
    if (mcli_rank() == 0) mrun_usage(stdout);
    return -1;
  }
  if (parsed != CLI_PARSE_OK) return CLI_EXIT_USAGE;
  if (!o->model_dir) return cli_usage_error("run", "--model DIR is required");
  if (!o->tokens == !o->text)
    return cli_usage_error("run", "give one of --tokens LIST and --text S");
  if (!o->split)
    return cli_usage_error("run", "--split sequence|heads is required");
  if (!mcli_parse_split(o->split, &m->split))
    return cli_usage_error("run", "--split is sequence or heads, not '%s'",
                           o->split);
  if (!cli_parse_storage(o->weights, &m->storage))
    return cli_usage_error(
        "run", "--weights is f32, f16, bf16 or keep, not '%s'", o->weights);
  if (!cli_parse_algorithm(o->mode, &m->algo))
    return cli_usage_error(
        "run", "--mode is parallel, chunkwise or recurrent, not '%s'", o->mode);
  return o->text ? cli_text_tokens("run", "text", o->text, &m->tok, &m->T)
                 : cli_parse_tokens("run", "tokens", o->tokens, &m->tok, &m->T);
}

/* logits [n, V] of this rank's part (heads: all tokens; sequence: its
 * slice). Collective. Heads-split recurrent steps one token at a time
 * through a decode state, as `retcl run` does. *what names the failed
 * step ("" when the failing rank has reported it already). */
static retcl_status forward(retcl_context *ctx, retcl_model *model,
                            const mrun *m, const int32_t *tok, size_t n,
                            size_t V, float *logits, char *what, size_t cap) {
  snprintf(what, cap, "running the model");
  if (m->split == RETCL_MPI_SPLIT_SEQUENCE || m->algo != RETCL_ALGO_RECURRENT)
    return retcl_model_forward(model, NULL, tok, 1, n, m->algo, m->o.chunk,
                               logits);
  retcl_decode_state *state = NULL;
  retcl_status st = retcl_decode_state_create(model, 1, &state);
  /* Created on each rank alone: agree before the first collective step. */
  retcl_status all = (retcl_status)mcli_agree((int)st);
  if (all) {
    if (st) mcli_fail_local(ctx, st, "creating a decode state");
    what[0] = '\0'; /* reported above by the rank that failed */
    retcl_decode_state_destroy(state);
    return all;
  }
  for (size_t t = 0; t < n && !st; ++t) {
    st = retcl_model_forward(model, state, &tok[t], 1, 1, RETCL_ALGO_RECURRENT,
                             0, logits + t * V);
    if (st) snprintf(what, cap, "recurrent step at position %zu", t);
  }
  retcl_decode_state_destroy(state);
  return st;
}

static void print_summary(const mrun *m, retcl_mpi *h, retcl_model *model,
                          const retcl_model_config *cfg, double load_s,
                          double warm_s, double first_s,
                          const retcl_mpi_model_stats *ms, size_t shortest,
                          size_t longest) {
  char dev[768], desc[512], wbytes[32], sent[32], recv[32], sl[64];
  const int N = mcli_size();
  const size_t chunk = m->o.chunk ? m->o.chunk : cfg->chunk_size;
  printf("retcl-mpi %s run\n", retcl_version_string());
  printf("%-9s %d, %s split", "ranks:", N, mcli_split_name(m->split));
  if (m->split == RETCL_MPI_SPLIT_SEQUENCE)
    printf(", %s\n", mcli_slices_text(shortest, longest, sl, sizeof sl));
  else
    printf(" (%zu heads, %zu FFN units over %d ranks)\n", cfg->heads,
           cfg->ffn_dim, N);
  printf("%-9s rank 0: %s\n", "device:",
         cli_device_description(retcl_mpi_context(h), dev, sizeof dev));
  printf("%-9s %s: %s\n", "model:", m->o.model_dir,
         cli_model_description(cfg, desc, sizeof desc));
  printf(
      "%-9s weights on rank 0 %s (%s), loaded in %.1f ms\n", "",
      cli_format_bytes(retcl_model_weight_bytes(model), wbytes, sizeof wbytes),
      cli_dtype_name(retcl_model_weight_type(model)), 1e3 * load_s);
  if (m->algo == RETCL_ALGO_CHUNKWISE)
    printf("%-9s chunkwise (chunk %zu), %zu tokens, batch 1\n", "mode:", chunk,
           m->T);
  else if (m->algo == RETCL_ALGO_RECURRENT)
    printf("%-9s recurrent, %zu tokens %s, batch 1\n", "mode:", m->T,
           m->split == RETCL_MPI_SPLIT_HEADS ? "fed one at a time"
                                             : "through the recurrence");
  else
    printf("%-9s parallel, %zu tokens, batch 1\n", "mode:", m->T);
  printf(
      "%-9s %.3f ms (%.0f tokens/s; slowest rank); warm-up %.1f ms "
      "(builds the kernels)\n",
      "time:", 1e3 * warm_s, (double)m->T / warm_s, 1e3 * first_s);
  printf(
      "%-9s rank 0 sent %s and received %s in %zu layer passes, "
      "%.3f ms in MPI\n",
      "exchange:", cli_format_bytes(ms->bytes_sent, sent, sizeof sent),
      cli_format_bytes(ms->bytes_received, recv, sizeof recv), ms->layer_calls,
      1e3 * ms->seconds_exchange);
}

static int run_mpi(int argc, char **argv) {
  mrun m;
  memset(&m, 0, sizeof m);
  mcli_quiet_begin();
  int rc = parse(argc, argv, &m);
  mcli_quiet_end();
  rc = mcli_agree(rc); /* the same argv: the same answer everywhere */
  if (rc) {            /* a usage error, or -1 after --help */
    free(m.tok);
    return rc < 0 ? CLI_EXIT_OK : rc;
  }
  const int rank = mcli_rank(), N = mcli_size();

  retcl_mpi *h = NULL;
  retcl_model *model = NULL;
  float *mine = NULL, *all = NULL;
  int *counts = NULL, *displs = NULL;
  double load_s = 0;
  retcl_model_config cfg;
  size_t V = 0, begin = 0, len = 0, shortest = SIZE_MAX, longest = 0;
  rc = mcli_open(m.o.platform, m.o.device, &h);
  if (!rc)
    rc = mcli_load(h, m.o.model_dir, m.split, m.storage, &model, &load_s);
  if (!rc) {
    retcl_model_get_config(model, &cfg);
    V = cfg.vocab_size;
  }
  /* Checks on the command line against the model: the same on every rank,
   * printed by rank 0. */
  mcli_quiet_begin();
  if (!rc && m.o.text && V != 256)
    rc = cli_error(
        "--text needs a byte-level model (vocabulary 256); %s "
        "has %zu: give token ids with --tokens",
        m.o.model_dir, V);
  if (!rc)
    rc = mcli_check_ids("run", m.o.text ? "text" : "tokens", m.tok, m.T, V,
                        m.o.model_dir);
  if (!rc && (m.T > INT_MAX || V > INT_MAX))
    rc = cli_error(
        "%zu tokens x vocab %zu: too many for one MPI message "
        "count",
        m.T, V);
  if (!rc && m.T > SIZE_MAX / sizeof(float) / V)
    rc =
        cli_error("%zu tokens x vocab %zu logits do not fit in memory", m.T, V);
  const size_t chunk = m.algo == RETCL_ALGO_CHUNKWISE
                           ? (m.o.chunk ? m.o.chunk : (rc ? 1 : cfg.chunk_size))
                           : 0;
  if (!rc && m.split == RETCL_MPI_SPLIT_SEQUENCE) {
    for (int r = 0; r < N && !rc; ++r) {
      size_t b, n;
      if (mcli_slice(m.T, chunk, r, N, &b, &n)) {
        if (n < shortest) shortest = n;
        if (n > longest) longest = n;
        if (r == rank) begin = b, len = n;
      } else {
        if (chunk)
          rc = cli_error(
              "--split sequence --mode chunkwise: %zu tokens make "
              "%zu chunk(s) of %zu, fewer than the %d ranks (every "
              "rank needs a slice, and every slice but the last "
              "whole chunks): give more than %zu tokens, fewer "
              "ranks, a smaller --chunk or --mode recurrent",
              m.T, (m.T + chunk - 1) / chunk, chunk, N,
              (size_t)(N - 1) * chunk);
        else
          rc = cli_error(
              "--split sequence: %zu tokens for %d ranks; every "
              "rank needs a slice of at least one token",
              m.T, N);
      }
    }
  } else if (!rc) {
    begin = 0, len = m.T;
  }
  mcli_quiet_end();
  rc = mcli_agree(rc);

  /* Host logits: this rank's part, and all of them on rank 0. */
  if (!rc) {
    mine = malloc((len ? len : 1) * V * sizeof *mine);
    if (!mine)
      rc = cli_error("rank %d: out of host memory for %zu x %zu logits", rank,
                     len, V);
    if (!rc && m.split == RETCL_MPI_SPLIT_SEQUENCE && rank == 0) {
      all = malloc(m.T * V * sizeof *all);
      counts = malloc((size_t)N * sizeof *counts);
      displs = malloc((size_t)N * sizeof *displs);
      if (!all || !counts || !displs)
        rc = cli_error("out of host memory for %zu x %zu logits", m.T, V);
    }
    rc = mcli_agree(rc);
  }

  /* A warm-up builds the kernels with the shapes of the real run (one step
   * for heads-split recurrent), then the timed run. Both collective: the
   * library agrees on errors, rank 0 prints them. */
  double first_s = 0, warm_s = 0;
  retcl_mpi_model_stats ms;
  memset(&ms, 0, sizeof ms);
  if (!rc) {
    char what[96];
    const int one_step =
        m.split == RETCL_MPI_SPLIT_HEADS && m.algo == RETCL_ALGO_RECURRENT;
    double t0 = cli_now();
    retcl_status st = forward(retcl_mpi_context(h), model, &m, m.tok + begin,
                              one_step ? 1 : len, V, mine, what, sizeof what);
    double t1 = cli_now();
    retcl_mpi_model_stats_get(h, &ms, 1);
    if (!st)
      st = forward(retcl_mpi_context(h), model, &m, m.tok + begin, len, V, mine,
                   what, sizeof what);
    if (st && !what[0])
      rc = CLI_EXIT_ERROR;
    else if (st)
      rc = mcli_fail_agreed(st, what, retcl_last_error(retcl_mpi_context(h)));
    else {
      retcl_mpi_model_stats_get(h, &ms, 1);
      first_s = mcli_max_double(t1 - t0);
      warm_s = mcli_max_double(cli_now() - t1);
    }
  }

  /* Sequence split: the slices' logits to rank 0, in rank order. One
   * datatype per row keeps MPI's int counts to T. */
  const float *logits = mine;
  if (!rc && m.split == RETCL_MPI_SPLIT_SEQUENCE) {
    MPI_Datatype row;
    MPI_Type_contiguous((int)V, MPI_FLOAT, &row);
    MPI_Type_commit(&row);
    if (rank == 0)
      for (int r = 0; r < N; ++r) {
        size_t b, n;
        mcli_slice(m.T, chunk, r, N, &b, &n);
        counts[r] = (int)n;
        displs[r] = (int)b;
      }
    MPI_Gatherv(mine, (int)len, row, all, counts, displs, row, 0,
                MPI_COMM_WORLD);
    MPI_Type_free(&row);
    logits = all;
  }

  if (!rc && rank == 0) {
    print_summary(&m, h, model, &cfg, load_s, warm_s, first_s, &ms, shortest,
                  longest);
    cli_print_run_result(m.tok, m.T, logits, V, m.o.text != NULL);
    if (m.o.logits_path) {
      int err = npy_write_f32_2d(m.o.logits_path, logits, m.T, V);
      if (err)
        rc = cli_error("cannot write %s: %s", m.o.logits_path, strerror(err));
      else
        printf("\nlogits:   %s, float32 [%zu, %zu]\n", m.o.logits_path, m.T, V);
    }
  }
  free(counts);
  free(displs);
  free(all);
  free(mine);
  free(m.tok);
  retcl_model_destroy(model);
  retcl_mpi_destroy(h);
  return rc; /* main agrees on it */
}

const cli_command mcli_cmd_run = {
    "run", "run a checkpoint split across the ranks (heads or sequence)",
    run_mpi, mrun_usage};
