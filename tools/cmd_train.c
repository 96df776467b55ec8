/* cmd_train.c - `retcl train`: train a RetNet checkpoint on a file of text
 * (bytes, for a vocabulary of 256) or token ids, with AdamW, gradient
 * clipping and a warm-up + cosine learning rate, all on the device. Prints
 * a progress line per --log-every steps, evaluates on a held-out tail of
 * the data, and writes checkpoints in torchscale's layout (what `run` and
 * `generate` load) with the optimizer state beside them, so --resume
 * continues bit for bit. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct train_opts {
  const char *model_dir, *resume, *data, *out, *mode, *device, *platform;
  size_t steps, stop_at, batch, seq, warmup, chunk, log_every, eval_every,
      save_every;
  double lr, clip, weight_decay, min_lr_ratio, beta1, beta2, eps;
  uint64_t seed;
  int recompute;
} train_opts;

static void train_usage(FILE *out) {
  fprintf(out,
          "usage: retcl train (--model DIR | --resume DIR) --data FILE\n"
          "                   --steps N --out DIR2 [--batch B] [--seq T]\n"
          "                   [--lr X] [--warmup W] [--clip C]\n"
          "                   [--weight-decay D] [--min-lr-ratio R]\n"
          "                   [--mode parallel|chunkwise|recurrent] [--chunk C]\n"
          "                   [--recompute] [--log-every K] [--eval-every E]\n"
          "                   [--save-every S] [--stop-at K] [--seed N]\n"
          "                   [--device D]\n"
          "                   [--platform P]\n"
          "\n"
          "Train the checkpoint in DIR on FILE: its bytes when the model's\n"
          "vocabulary is 256, else token ids separated by spaces, commas or\n"
          "newlines. The last tenth of the data is held out and evaluated\n"
          "every E steps. Each step draws B windows of T tokens from the rest\n"
          "(a seeded generator), takes the mean next-token cross-entropy, its\n"
          "gradient, and an AdamW step (decoupled weight decay, bias\n"
          "correction, the gradient's global norm clipped to C) at a learning\n"
          "rate warming up linearly over W steps to X, then falling along a\n"
          "cosine to R x X at step N. DIR2 receives the checkpoint\n"
          "(config.json, model.safetensors), the optimizer's moments\n"
          "(optimizer-m.safetensors, optimizer-v.safetensors) and\n"
          "train_state.txt; `--resume DIR2 --steps M` continues from there\n"
          "exactly as one run of M steps would have.\n"
          "\n"
          "  --batch B        windows per step (8)\n"
          "  --seq T          tokens per window (128)\n"
          "  --lr X           peak learning rate (3e-3)\n"
          "  --warmup W       warm-up steps (steps / 20)\n"
          "  --clip C         gradient norm limit, 0 for none (1.0)\n"
          "  --weight-decay D decoupled weight decay (0.01)\n"
          "  --min-lr-ratio R floor of the cosine, a fraction of X (0.1)\n"
          "  --mode M         retention form of the training forward\n"
          "                   (chunkwise)\n"
          "  --recompute      keep only each layer's input for the backward\n"
          "  --log-every K    progress line every K steps (10)\n"
          "  --eval-every E   held-out loss every E steps and at the end (200)\n"
          "  --save-every S   also write DIR2 every S steps (0: at the end)\n"
          "  --stop-at K      stop after step K (written to DIR2) as if\n"
          "                   interrupted: the schedule still runs to N, and\n"
          "                   --resume DIR2 --steps N finishes the run\n"
          "  --seed N         batch sampling generator seed (1)\n");
}

/* ---- data ------------------------------------------------------------------ */

typedef struct corpus {
  int32_t *ids;
  size_t count, train; /* ids [0, train) train, [train, count) held out */
} corpus;

static int read_corpus(const char *path, size_t vocab, corpus *c) {
  FILE *f = fopen(path, "rb");
  if (!f) return cli_error("cannot open %s: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  unsigned char *bytes = malloc(cap);
  size_t got;
  while (bytes && (got = fread(bytes + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      unsigned char *more = realloc(bytes, cap *= 2);
      if (!more) free(bytes);
      bytes = more;
    }
  }
  fclose(f);
  if (!bytes) return cli_error("out of memory reading %s", path);
  c->ids = malloc((n ? n : 1) * sizeof *c->ids);
  if (!c->ids) {
    free(bytes);
    return cli_error("out of memory reading %s", path);
  }
  c->count = 0;
  if (vocab == 256) {
    for (size_t i = 0; i < n; ++i) c->ids[c->count++] = bytes[i];
  } else {
    /* Decimal ids between separators. */
    for (size_t i = 0; i < n;) {
      if (bytes[i] < '0' || bytes[i] > '9') {
        if (!strchr(" ,\t\r\n", bytes[i])) {
          const unsigned char bad = bytes[i];
          free(bytes);
          return cli_error("%s: byte %zu ('%c') is not a digit or separator "
                           "(a model with vocabulary %zu reads token ids)",
                           path, i, bad, vocab);
        }
        ++i;
        continue;
      }
      unsigned long v = 0;
      while (i < n && bytes[i] >= '0' && bytes[i] <= '9' && v < vocab)
        v = v * 10 + (bytes[i++] - '0');
      if (v >= vocab) {
        free(bytes);
        return cli_error("%s: token %zu is %lu or more, outside the "
                         "vocabulary of %zu",
                         path, c->count, v, vocab);
      }
      c->ids[c->count++] = (int32_t)v;
    }
  }
  free(bytes);
  c->train = c->count - c->count / 10;
  return CLI_EXIT_OK;
}

/* The yardstick a model must beat to have learnt more than token
 * frequencies: the cross-entropy of the held-out part, in nats per token,
 * under the training part's unigram frequencies (add-one smoothed, so an
 * unseen token costs a finite amount). */
static double unigram_cross_entropy(const corpus *c, size_t vocab) {
  double *count = calloc(vocab, sizeof *count);
  if (!count) return NAN;
  for (size_t i = 0; i < c->train; ++i) count[c->ids[i]] += 1;
  const double total = (double)c->train + (double)vocab;
  double sum = 0;
  for (size_t i = c->train; i < c->count; ++i)
    sum -= log((count[c->ids[i]] + 1) / total);
  free(count);
  return sum / (double)(c->count - c->train);
}

/* ---- train state ------------------------------------------------------------ */

static char *path_in(const char *dir, const char *file) {
  const size_t n = strlen(dir) + strlen(file) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, file);
  return p;
}

static int write_state(const char *dir, size_t step, uint64_t rng) {
  char *path = path_in(dir, "train_state.txt");
  FILE *f = path ? fopen(path, "w") : NULL;
  if (!f) {
    int rc = cli_error("cannot write %s/train_state.txt", dir);
    free(path);
    return rc;
  }
  fprintf(f, "step %zu\nrng %llu\n", step, (unsigned long long)rng);
  const int ok = fclose(f) == 0;
  free(path);
  return ok ? CLI_EXIT_OK : cli_error("writing %s/train_state.txt failed", dir);
}

static int read_state(const char *dir, size_t *step, uint64_t *rng) {
  char *path = path_in(dir, "train_state.txt");
  FILE *f = path ? fopen(path, "r") : NULL;
  unsigned long long r = 0;
  const int ok = f && fscanf(f, "step %zu\nrng %llu", step, &r) == 2;
  if (f) fclose(f);
  free(path);
  *rng = r;
  return ok ? CLI_EXIT_OK
            : cli_error("%s/train_state.txt is missing or unreadable: "
                        "--resume needs a folder written by retcl train",
                        dir);
}

/* The folder a run leaves: checkpoint, moments, state. */
static int save_all(retcl_context *ctx, retcl_model *model, const char *dir,
                    cl_mem m, cl_mem v, size_t step, uint64_t rng) {
  retcl_status st = retcl_model_save(model, dir, RETCL_DTYPE_F32);
  if (st) return cli_fail(ctx, st, "writing the checkpoint");
  char *pm = path_in(dir, "optimizer-m.safetensors"),
       *pv = path_in(dir, "optimizer-v.safetensors");
  int rc = CLI_EXIT_OK;
  if (!pm || !pv)
    rc = cli_error("out of memory");
  else if ((st = retcl_model_save_tensors(model, retcl_buf(m, 0), pm, NULL,
                                          NULL, 0)) ||
           (st = retcl_model_save_tensors(model, retcl_buf(v, 0), pv, NULL,
                                          NULL, 0)))
    rc = cli_fail(ctx, st, "writing the optimizer state");
  free(pm), free(pv);
  return rc ? rc : write_state(dir, step, rng);
}

/* ---- the loop ---------------------------------------------------------------- */

/* B windows of T tokens starting at offsets drawn from the training part. */
static void draw_batch(const corpus *c, size_t B, size_t T, cli_rng *rng,
                       int32_t *out) {
  for (size_t b = 0; b < B; ++b) {
    const size_t span = c->train - T + 1;
    size_t at = (size_t)(retcl_random_next(&rng->state) % span);
    memcpy(out + b * T, c->ids + at, T * sizeof *out);
  }
}

/* Mean loss over up to 4 batches of windows spread evenly over the
 * held-out part (the same windows every time). */
static retcl_status held_out_loss(retcl_model *model, const corpus *c,
                                  size_t B, size_t T,
                                  const retcl_train_options *topt,
                                  int32_t *buf, double *mean) {
  const size_t held = c->count - c->train;
  const size_t windows = held / T < 4 * B ? held / T : 4 * B;
  double sum = 0;
  size_t batches = 0;
  for (size_t w0 = 0; w0 + B <= windows || (w0 == 0 && windows); w0 += B) {
    const size_t nb = windows - w0 < B ? windows - w0 : B;
    for (size_t b = 0; b < nb; ++b)
      memcpy(buf + b * T, c->ids + c->train + (w0 + b) * (held / windows),
             T * sizeof *buf);
    float loss;
    retcl_status st =
        retcl_model_forward_train(model, buf, nb, T, topt, &loss);
    if (st) return st;
    sum += loss, ++batches;
    if (nb < B) break;
  }
  *mean = batches ? sum / (double)batches : NAN;
  return RETCL_SUCCESS;
}

static cl_mem zeros(retcl_context *ctx, size_t n, int *rc) {
  cl_int err = CL_SUCCESS;
  cl_mem mem = clCreateBuffer(retcl_context_cl_context(ctx), CL_MEM_READ_WRITE,
                              n * sizeof(float), NULL, &err);
  const float zero = 0.0f;
  if (mem)
    err = clEnqueueFillBuffer(retcl_context_queue(ctx), mem, &zero,
                              sizeof zero, 0, n * sizeof(float), 0, NULL,
                              NULL);
  if (!mem || err != CL_SUCCESS) {
    *rc = cli_cl_error(mem ? "clEnqueueFillBuffer" : "clCreateBuffer", err);
    if (mem) clReleaseMemObject(mem);
    return NULL;
  }
  return mem;
}

static int train_loop(const train_opts *o, retcl_context *ctx,
                      retcl_model *model, const corpus *c, size_t V) {
  const size_t n = retcl_model_param_count(model), B = o->batch, T = o->seq;
  int rc = CLI_EXIT_OK;
  cl_mem grads = zeros(ctx, n, &rc), m = rc ? NULL : zeros(ctx, n, &rc),
         v = rc ? NULL : zeros(ctx, n, &rc), norm = rc ? NULL : zeros(ctx, 1, &rc);
  int32_t *batch = malloc(B * T * sizeof *batch);
  if (!rc && !batch) rc = cli_error("out of memory");
  cli_rng rng;
  cli_rng_seed(&rng, o->seed);
  size_t step = 0;
  retcl_status st;
  if (!rc && o->resume) {
    char *pm = path_in(o->resume, "optimizer-m.safetensors"),
         *pv = path_in(o->resume, "optimizer-v.safetensors");
    if ((rc = read_state(o->resume, &step, &rng.state)) == CLI_EXIT_OK &&
        ((st = retcl_model_load_tensors(model, pm, retcl_buf(m, 0))) ||
         (st = retcl_model_load_tensors(model, pv, retcl_buf(v, 0)))))
      rc = cli_fail(ctx, st, "reading the optimizer state");
    free(pm), free(pv);
    if (!rc) printf("resuming at step %zu of %zu\n", step, o->steps);
  }
  retcl_train_options topt;
  retcl_train_options_default(&topt);
  cli_parse_algorithm(o->mode, &topt.algorithm);
  topt.chunk_size = o->chunk;
  topt.recompute = o->recompute;
  const size_t warmup = o->warmup != (size_t)-1 ? o->warmup : o->steps / 20;
  retcl_adamw hp = {0};
  hp.beta1 = (float)o->beta1, hp.beta2 = (float)o->beta2, hp.eps = (float)o->eps;
  hp.weight_decay = (float)o->weight_decay, hp.clip_norm = (float)o->clip;
  double window_t0 = cli_now();
  size_t window_tokens = 0;
  double loss_sum = 0;
  size_t loss_n = 0;
  const size_t last = o->stop_at && o->stop_at < o->steps ? o->stop_at
                                                         : o->steps;
  while (!rc && step < last) {
    ++step;
    draw_batch(c, B, T, &rng, batch);
    float loss;
    hp.lr = (float)retcl_lr_schedule(o->lr, step, warmup, o->steps,
                                     o->min_lr_ratio);
    if ((st = retcl_model_forward_train(model, batch, B, T, &topt, &loss)) ||
        (st = retcl_model_backward(model, retcl_buf(grads, 0))) ||
        (st = retcl_adamw_step(ctx, &hp, step, n, retcl_model_params(model),
                               retcl_buf(grads, 0), retcl_buf(m, 0),
                               retcl_buf(v, 0), retcl_buf(norm, 0), 0, NULL,
                               NULL))) {
      char what[64];
      snprintf(what, sizeof what, "training step %zu", step);
      rc = cli_fail(ctx, st, what);
      break;
    }
    loss_sum += loss, ++loss_n;
    window_tokens += B * T;
    if (step % o->log_every == 0 || step == last) {
      float g = NAN;
      cl_int err = clEnqueueReadBuffer(retcl_context_queue(ctx), norm, CL_TRUE,
                                       0, sizeof g, &g, 0, NULL, NULL);
      if (err != CL_SUCCESS) {
        rc = cli_cl_error("clEnqueueReadBuffer(gradient norm)", err);
        break;
      }
      const double now = cli_now();
      char mem[32];
      printf("step %6zu/%zu  loss %.4f  lr %.2e  |grad| %.3g  %.0f tokens/s  "
             "device memory %s\n",
             step, o->steps, loss_sum / (double)loss_n, hp.lr, (double)g,
             (double)window_tokens / (now - window_t0),
             cli_format_bytes(retcl_model_weight_bytes(model) * 4 +
                                  retcl_model_train_bytes(model) +
                                  retcl_context_workspace_bytes(ctx),
                              mem, sizeof mem));
      fflush(stdout);
      window_t0 = now, window_tokens = 0, loss_sum = 0, loss_n = 0;
    }
    if (step % o->eval_every == 0 || step == last) {
      double held;
      if ((st = held_out_loss(model, c, B, T, &topt, batch, &held))) {
        rc = cli_fail(ctx, st, "the held-out evaluation");
        break;
      }
      printf("eval %6zu  held-out loss %.4f (%.3f bits per token)\n", step,
             held, held / log(2.0));
      fflush(stdout);
      window_t0 = cli_now();
    }
    if ((o->save_every && step % o->save_every == 0) || step == last)
      rc = save_all(ctx, model, o->out, m, v, step, rng.state);
  }
  (void)V;
  if (!rc) printf("checkpoint written to %s\n", o->out);
  free(batch);
  cl_mem all[] = {grads, m, v, norm};
  for (size_t i = 0; i < 4; ++i)
    if (all[i]) clReleaseMemObject(all[i]);
  return rc;
}

static int train_run(int argc, char **argv) {
  train_opts o = {0};
  o.mode = "chunkwise";
  o.batch = 8, o.seq = 128, o.lr = 3e-3, o.warmup = (size_t)-1, o.clip = 1.0;
  o.weight_decay = 0.01, o.min_lr_ratio = 0.1, o.log_every = 10;
  o.eval_every = 200, o.seed = 1, o.beta1 = 0.9, o.beta2 = 0.95, o.eps = 1e-8;
  const cli_option opts[] = {
      {"model", CLI_OPT_STRING, &o.model_dir},
      {"resume", CLI_OPT_STRING, &o.resume},
      {"data", CLI_OPT_STRING, &o.data},
      {"out", CLI_OPT_STRING, &o.out},
      {"steps", CLI_OPT_SIZE, &o.steps},
      {"batch", CLI_OPT_SIZE, &o.batch},
      {"seq", CLI_OPT_SIZE, &o.seq},
      {"lr", CLI_OPT_DOUBLE, &o.lr},
      {"warmup", CLI_OPT_SIZE, &o.warmup},
      {"clip", CLI_OPT_DOUBLE, &o.clip},
      {"weight-decay", CLI_OPT_DOUBLE, &o.weight_decay},
      {"min-lr-ratio", CLI_OPT_DOUBLE, &o.min_lr_ratio},
      {"mode", CLI_OPT_STRING, &o.mode},
      {"chunk", CLI_OPT_SIZE, &o.chunk},
      {"recompute", CLI_OPT_FLAG, &o.recompute},
      {"log-every", CLI_OPT_SIZE, &o.log_every},
      {"eval-every", CLI_OPT_SIZE, &o.eval_every},
      {"save-every", CLI_OPT_SIZE, &o.save_every},
      {"stop-at", CLI_OPT_SIZE, &o.stop_at},
      {"seed", CLI_OPT_U64, &o.seed},
      {"device", CLI_OPT_STRING, &o.device},
      {"platform", CLI_OPT_STRING, &o.platform},
  };
  const int parsed = cli_parse_options("train", argc, argv, opts,
                                       sizeof opts / sizeof opts[0]);
  if (parsed == CLI_PARSE_HELP) {
    train_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (parsed != CLI_PARSE_OK) return CLI_EXIT_USAGE;
  if (!o.model_dir == !o.resume)
    return cli_usage_error("train", "give one of --model DIR and --resume DIR");
  if (!o.data) return cli_usage_error("train", "--data FILE is required");
  if (!o.out) return cli_usage_error("train", "--out DIR2 is required");
  if (!o.steps) return cli_usage_error("train", "--steps N (>= 1) is required");
  retcl_algorithm algo;
  if (!cli_parse_algorithm(o.mode, &algo))
    return cli_usage_error(
        "train", "--mode is parallel, chunkwise or recurrent, not '%s'", o.mode);
  if (o.batch < 1 || o.seq < 2)
    return cli_usage_error("train", "--batch must be >= 1 and --seq >= 2");
  if (!o.log_every || !o.eval_every)
    return cli_usage_error("train", "--log-every and --eval-every must be >= 1");
  if (!(o.lr > 0) || o.clip < 0 || o.weight_decay < 0 ||
      o.min_lr_ratio < 0 || o.min_lr_ratio > 1)
    return cli_usage_error("train", "--lr must be > 0, --clip and "
                                    "--weight-decay >= 0, --min-lr-ratio in "
                                    "[0, 1]");
  retcl_context *ctx = NULL;
  retcl_model *model = NULL;
  double load_s = 0;
  int rc = cli_open_model(o.platform, o.device,
                          o.resume ? o.resume : o.model_dir, &ctx, &model,
                          &load_s);
  if (rc) return rc;
  retcl_model_config cfg;
  retcl_model_get_config(model, &cfg);
  corpus c = {0};
  rc = read_corpus(o.data, cfg.vocab_size, &c);
  if (!rc && (c.train < o.seq + 1 || c.count - c.train < o.seq))
    rc = cli_error("%s holds %zu tokens: too few for windows of %zu with a "
                   "tenth held out (at least %zu)",
                   o.data, c.count, o.seq, 10 * o.seq + 10);
  if (!rc) {
    char dev[256], desc[256];
    printf("device:  %s\n", cli_device_description(ctx, dev, sizeof dev));
    printf("model:   %s\n", cli_model_description(&cfg, desc, sizeof desc));
    const double uni = unigram_cross_entropy(&c, cfg.vocab_size);
    printf("data:    %s, %zu tokens (%zu for training, %zu held out)\n",
           o.data, c.count, c.train, c.count - c.train);
    printf("         held-out loss of the training part's unigram "
           "frequencies: %.4f (%.3f bits per token), the bar to beat\n",
           uni, uni / log(2.0));
    printf("steps:   %zu of %zu windows x %zu tokens, mode %s\n", o.steps,
           o.batch, o.seq, o.mode);
    rc = train_loop(&o, ctx, model, &c, cfg.vocab_size);
  }
  free(c.ids);
  cli_close_model(ctx, model);
  return rc;
}

const cli_command cli_cmd_train = {
    "train", "train a model on a text or token file (AdamW, on the device)",
    train_run, train_usage};
