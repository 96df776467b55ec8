/* bench_model.c - retcl-bench-model: RetNet inference on the chosen device.
 *
 *  - decode: per-token latency of one recurrent step after prefilling a
 *    context of 128 ... 8192 tokens; RetNet's claim is that it stays flat;
 *  - memory: the decode state's bytes (constant in the context) next to
 *    the weights';
 *  - prefill: tokens/s of parallel vs chunkwise prefill.
 * Yardstick from the same run: device copy bandwidth, against which the
 * decode step's weight traffic (every weight read once per token) is read.
 * The model is a random-weight checkpoint written for the run
 * (d 512, H 4, L 4, ffn 1024 by default, the reference shape). */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "yardsticks.h"

typedef struct options {
  size_t d, heads, ffn, layers, vocab, chunk, steps, max_context;
  int quick;
} options;

static int32_t *tokens_for(size_t n, size_t vocab) {
  int32_t *t = malloc(n * sizeof *t);
  for (size_t i = 0; i < n; ++i) t[i] = (int32_t)((i * 2654435761u) % vocab);
  return t;
}

static int fail(retcl_context *ctx, retcl_status st, const char *what) {
  fprintf(stderr, "retcl-bench-model: %s: %s: %s\n", what,
          retcl_status_string(st), retcl_last_error(ctx));
  return 1;
}

#define MAX_CONTEXTS 8

/* Decode latency after prefilling each context (chunkwise). The steps of
 * all contexts are interleaved round-robin, so drift of a shared, noisy
 * machine (clock, other jobs) hits every context alike and the ratio
 * between contexts stays meaningful. */
static int bench_decode(retcl_context *ctx, retcl_model *model,
                        const options *o, const size_t *contexts, int n,
                        double copy_gbs) {
  retcl_decode_state *state[MAX_CONTEXTS] = {0};
  double prefill_s[MAX_CONTEXTS], *ms[MAX_CONTEXTS] = {0};
  float *logits = malloc(o->vocab * sizeof *logits);
  int rc = 0;
  retcl_status st = RETCL_SUCCESS;
  for (int c = 0; c < n && !st; ++c) {
    ms[c] = malloc(o->steps * sizeof *ms[c]);
    if ((st = retcl_decode_state_create(model, 1, &state[c]))) break;
    int32_t *prompt = tokens_for(contexts[c], o->vocab);
    const double t0 = bench_now();
    st = retcl_model_forward(model, state[c], prompt, 1, contexts[c],
                             RETCL_ALGO_CHUNKWISE, o->chunk, NULL);
    prefill_s[c] = bench_now() - t0;
    free(prompt);
  }
  /* two untimed rounds: nothing left to build or fault in */
  for (size_t i = 0; !st && i < o->steps + 2; ++i)
    for (int c = 0; c < n && !st; ++c) {
      const int32_t tok = (int32_t)((i * 7 + 3) % o->vocab);
      const double s = bench_now();
      st = retcl_model_forward(model, state[c], &tok, 1, 1,
                               RETCL_ALGO_RECURRENT, 0, logits);
      if (i >= 2) ms[c][i - 2] = (bench_now() - s) * 1e3;
    }
  if (st) rc = fail(ctx, st, "decode");
  const double weight_gb = retcl_model_weight_bytes(model) * 1e-9;
  for (int c = 0; c < n && !rc; ++c) {
    bench_stats s;
    bench_stats_from(ms[c], (int)o->steps, &s);
    const double gbs = weight_gb / (s.median_ms * 1e-3);
    printf("decode  context %6zu  %8.3f ms/token (min %.3f max %.3f spread "
           "%5.1f%%)  %7.1f tok/s  state %7.1f KiB  weights %5.2f GB/s = "
           "%.2f x copy  [prefill %.1f tok/s]\n",
           contexts[c], s.median_ms, s.min_ms, s.max_ms, 100 * s.spread,
           1e3 / s.median_ms, retcl_decode_state_bytes(state[c]) / 1024.0, gbs,
           copy_gbs > 0 ? gbs / copy_gbs : 0.0, contexts[c] / prefill_s[c]);
  }
  for (int c = 0; c < n; ++c) {
    retcl_decode_state_destroy(state[c]);
    free(ms[c]);
  }
  free(logits);
  return rc;
}

/* Prefill throughput of one algorithm at T tokens (median of 3). */
static int bench_prefill(retcl_context *ctx, retcl_model *model,
                         const options *o, size_t T, retcl_algorithm algo,
                         const char *name) {
  int32_t *tok = tokens_for(T, o->vocab);
  double ms[3];
  retcl_status st = retcl_model_forward(model, NULL, tok, 1, T, algo, o->chunk, NULL);
  for (int i = 0; !st && i < 3; ++i) {
    const double s = bench_now();
    st = retcl_model_forward(model, NULL, tok, 1, T, algo, o->chunk, NULL);
    ms[i] = (bench_now() - s) * 1e3;
  }
  free(tok);
  if (st) return fail(ctx, st, "prefill");
  bench_stats s;
  bench_stats_from(ms, 3, &s);
  printf("prefill T %5zu %-9s  %9.1f ms (min %.1f max %.1f)  %8.1f tok/s\n", T,
         name, s.median_ms, s.min_ms, s.max_ms, T / (s.median_ms * 1e-3));
  return 0;
}

static void usage(void) {
  printf("usage: retcl-bench-model [--quick] [--embed-dim 512] [--heads 4] "
         "[--ffn-dim 1024]\n"
         "                         [--layers 4] [--vocab 1000] [--chunk 64] "
         "[--steps 31] [--max-context 8192]\n");
}

int main(int argc, char **argv) {
  options o = {512, 4, 1024, 4, 1000, 64, 31, 8192, 0};
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    size_t *target = !strcmp(a, "--embed-dim")     ? &o.d
                     : !strcmp(a, "--heads")       ? &o.heads
                     : !strcmp(a, "--ffn-dim")     ? &o.ffn
                     : !strcmp(a, "--layers")      ? &o.layers
                     : !strcmp(a, "--vocab")       ? &o.vocab
                     : !strcmp(a, "--chunk")       ? &o.chunk
                     : !strcmp(a, "--steps")       ? &o.steps
                     : !strcmp(a, "--max-context") ? &o.max_context
                                                   : NULL;
    if (target && i + 1 < argc) {
      *target = strtoul(argv[++i], NULL, 10);
    } else if (!strcmp(a, "--quick")) {
      o.quick = 1;
    } else {
      usage();
      return !strcmp(a, "--help") ? 0 : 2;
    }
  }
  if (o.quick) {
    o.d = 64; o.heads = 2; o.ffn = 128; o.layers = 2; o.vocab = 100;
    o.max_context = 512; o.steps = 5;
  }
  if (o.steps == 0) o.steps = 1;
  char dir[] = "/tmp/retcl-bench-model-XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  retcl_model_config cfg;
  retcl_model_config_default(&cfg);
  cfg.embed_dim = cfg.value_embed_dim = o.d;
  cfg.heads = o.heads;
  cfg.ffn_dim = o.ffn;
  cfg.layers = o.layers;
  cfg.vocab_size = o.vocab;
  cfg.chunk_size = o.chunk;
  retcl_status st = retcl_checkpoint_write_random(&cfg, 1, RETCL_DTYPE_F32, dir);
  if (st) return fail(NULL, st, "writing the checkpoint");

  retcl_context *ctx = bench_context_create();
  if (!ctx) return 1;
  bench_device_info info;
  bench_device_info_query(ctx, &info);
  printf("retcl-bench-model, RetCL %s\n", retcl_version_string());
  bench_device_info_print(&info);
  retcl_model *model = NULL;
  if ((st = retcl_model_load(ctx, dir, &model))) return fail(ctx, st, "loading");
  printf("model    : d %zu, H %zu, L %zu, ffn %zu, vocab %zu, chunk %zu; "
         "weights %.1f MiB\n",
         o.d, o.heads, o.layers, o.ffn, o.vocab, o.chunk,
         retcl_model_weight_bytes(model) / 1048576.0);
  bench_plan plan = {1, 5, 10.0, BENCH_TIMER_EVENTS};
  bench_copy_result copy;
  bench_copy(ctx, &plan, 64u << 20, &copy);
  printf("copy bandwidth %.2f GB/s (yardstick)\n\n", copy.ok ? copy.gbs : 0.0);

  /* contexts 128, 512, 2048, 8192, ... up to --max-context */
  size_t contexts[MAX_CONTEXTS];
  int n_ctx = 0;
  for (size_t c = 128; c <= o.max_context && n_ctx < MAX_CONTEXTS; c *= 4)
    contexts[n_ctx++] = c;
  int rc = bench_decode(ctx, model, &o, contexts, n_ctx, copy.ok ? copy.gbs : 0);
  printf("\n");
  const size_t T = o.quick ? 256 : 2048;
  if (!rc) rc = bench_prefill(ctx, model, &o, T, RETCL_ALGO_PARALLEL, "parallel");
  if (!rc) rc = bench_prefill(ctx, model, &o, T, RETCL_ALGO_CHUNKWISE, "chunkwise");

  retcl_model_destroy(model);
  retcl_context_destroy(ctx);
  char path[512];
  snprintf(path, sizeof path, "%s/config.json", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  unlink(path);
  rmdir(dir);
  return rc;
}
