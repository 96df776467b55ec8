/* test_transformer.c - the benchmark's Transformer baseline
 * (bench/transformer/) against the double-precision reference of its math
 * (tf_reference.h): prefill, decode through the KV cache, cache growth,
 * tile and chunk boundaries, both kernel access patterns, invalid calls. */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tf_reference.h"
#include "transformer.h"

/* Logits pass two layers of fp32 GEMMs (K up to 128), norms, exp and the
 * attention sums; each is within a few fp32 ulps (~1e-7 relative) of the
 * double reference, and their errors add to ~1e-6 at the logits. 1e-5
 * leaves room for that, while a wrong position, mask, scale or weight
 * gives 1e-2 or more. */
#define TF_TOL 1e-5

static tf_config config(size_t d, size_t heads, size_t ffn, size_t layers,
                        size_t vocab, retcl_activation act) {
  tf_config c = {d, heads, ffn, layers, vocab, act, 1e-6f};
  return c;
}

static int32_t *random_tokens(size_t n, size_t V) {
  int32_t *t = malloc(n * sizeof *t);
  for (size_t i = 0; i < n; ++i) t[i] = (int32_t)tu_uniform(0, (double)V - 1e-9);
  return t;
}

static float *poisoned(size_t n) {
  float *a = tu_alloc(n);
  for (size_t i = 0; i < n; ++i) a[i] = NAN;
  return a;
}

/* Feed B sequences of sum(calls) random tokens through one cache, calls[i]
 * tokens at a time (T > 1 a prefill, T == 1 a decode step), and check every
 * call's logits (all positions and last) against the reference over the
 * whole sequence (causal: a position's logits do not depend on later
 * tokens). Also checks the cache's position and that its memory grows with
 * the context and always holds it. */
static void run_sequence(const tf_config *cfg, size_t B, const size_t *calls,
                         size_t ncalls) {
  retcl_context *ctx = tu_context();
  tf_host_weights w;
  ref_weights_random(cfg, &w);
  char err[512] = "";
  tf_model *m = NULL;
  ck_assert_msg(tf_model_create(ctx, cfg, &w, &m, err, sizeof err) == 0, "%s", err);
  size_t N = 0;
  for (size_t i = 0; i < ncalls; ++i) N += calls[i];
  const size_t V = cfg->vocab;
  int32_t *tok = random_tokens(B * N, V);
  double *ref = tu_alloc_d(B * N * V);
  ref_forward(cfg, &w, tok, B, N, ref);

  tf_cache *c = NULL;
  ck_assert_msg(tf_cache_create(m, B, &c, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(tf_cache_position(c), 0);
  size_t pos = 0, bytes = tf_cache_bytes(c), grew = 0;
  for (size_t i = 0; i < ncalls; ++i) {
    const size_t T = calls[i];
    int32_t *in = malloc(B * T * sizeof *in);
    double *want = tu_alloc_d(B * T * V), *want_last = tu_alloc_d(B * V);
    for (size_t b = 0; b < B; ++b) {
      memcpy(in + b * T, tok + b * N + pos, T * sizeof *in);
      memcpy(want + b * T * V, ref + (b * N + pos) * V, T * V * sizeof *want);
      memcpy(want_last + b * V, ref + (b * N + pos + T - 1) * V, V * sizeof *want);
    }
    float *got = poisoned(B * T * V), *last = poisoned(B * V);
    /* Alternate between asking for every position and the last only, so
     * both ways through the output head are checked on every shape. */
    const int all = i % 2 == 0;
    ck_assert_msg(tf_forward(m, c, in, B, T, all ? got : NULL, last, err,
                             sizeof err) == 0,
                  "call %zu (T = %zu at %zu): %s", i, T, pos, err);
    char what[96];
    if (all) {
      snprintf(what, sizeof what, "logits of call %zu (T = %zu at %zu)", i, T, pos);
      tu_assert_close(what, got, want, B * T * V, TF_TOL);
    }
    snprintf(what, sizeof what, "last logits of call %zu (T = %zu at %zu)", i, T, pos);
    tu_assert_close(what, last, want_last, B * V, TF_TOL);
    pos += T;
    ck_assert_uint_eq(tf_cache_position(c), pos);
    /* K and V of every layer for every position so far, at least. */
    const size_t now = tf_cache_bytes(c);
    ck_assert_uint_ge(now, 2 * cfg->layers * B * cfg->d * pos * sizeof(float));
    ck_assert_uint_ge(now, bytes);
    grew += now > bytes;
    bytes = now;
    free(in);
    free(want);
    free(want_last);
    free(got);
    free(last);
  }
  /* Doubling: after the first allocation it grows about log2(N) times,
   * never once per token. */
  ck_assert_uint_le(grew, 2 + (size_t)log2((double)N));
  ck_assert_uint_gt(tf_model_workspace_bytes(m), 0);
  ck_assert_uint_eq(tf_model_weight_bytes(m), ref_weight_count(cfg) * sizeof(float));
  tf_cache_destroy(c);
  tf_model_destroy(m);
  ref_weights_free(cfg, &w);
  free(tok);
  free(ref);
  retcl_context_destroy(ctx);
}

/* (a) one prefill of T = 13, B = 2, d = 32, 2 heads, gelu. */
START_TEST(prefill_two_layers_gelu) {
  tf_config c = config(32, 2, 48, 2, 37, RETCL_ACT_GELU);
  const size_t calls[] = {13};
  run_sequence(&c, 2, calls, 1);
}
END_TEST

/* The same without a cache (a temporary one), logits and last together. */
START_TEST(prefill_without_cache) {
  tf_config cfg = config(32, 2, 48, 2, 37, RETCL_ACT_GELU);
  retcl_context *ctx = tu_context();
  tf_host_weights w;
  ref_weights_random(&cfg, &w);
  char err[512] = "";
  tf_model *m = NULL;
  ck_assert_msg(tf_model_create(ctx, &cfg, &w, &m, err, sizeof err) == 0, "%s", err);
  const size_t B = 2, T = 13, V = cfg.vocab;
  int32_t *tok = random_tokens(B * T, V);
  double *ref = tu_alloc_d(B * T * V), *ref_last = tu_alloc_d(B * V);
  ref_forward(&cfg, &w, tok, B, T, ref);
  for (size_t b = 0; b < B; ++b)
    memcpy(ref_last + b * V, ref + (b * T + T - 1) * V, V * sizeof *ref);
  float *got = poisoned(B * T * V), *last = poisoned(B * V);
  ck_assert_msg(tf_forward(m, NULL, tok, B, T, got, last, err, sizeof err) == 0,
                "%s", err);
  tu_assert_close("logits", got, ref, B * T * V, TF_TOL);
  tu_assert_close("last logits", last, ref_last, B * V, TF_TOL);
  /* No outputs asked for: runs (and blocks) all the same. */
  ck_assert_msg(tf_forward(m, NULL, tok, B, T, NULL, NULL, err, sizeof err) == 0,
                "%s", err);
  free(tok);
  free(ref);
  free(ref_last);
  free(got);
  free(last);
  tf_model_destroy(m);
  ref_weights_free(&cfg, &w);
  retcl_context_destroy(ctx);
}
END_TEST

/* (b) prefill 9 tokens of 3 sequences, then 6 decode steps, swish. */
static void prefill_then_decode(void) {
  tf_config c = config(32, 2, 48, 2, 37, RETCL_ACT_SWISH);
  const size_t calls[] = {9, 1, 1, 1, 1, 1, 1};
  run_sequence(&c, 3, calls, sizeof calls / sizeof calls[0]);
}

START_TEST(prefill_then_decode_batch3_swish) { prefill_then_decode(); }
END_TEST

/* (c) a short prefill, a second prefill continuing the cache across its
 * first growth (16 positions), then decode steps across the next two
 * (32, 64): each growth copies the cached keys and values. */
static void decode_across_growth(void) {
  tf_config c = config(32, 2, 48, 2, 37, RETCL_ACT_GELU);
  size_t calls[2 + 60] = {3, 20};
  for (size_t i = 2; i < sizeof calls / sizeof calls[0]; ++i) calls[i] = 1;
  run_sequence(&c, 2, calls, sizeof calls / sizeof calls[0]);
}

START_TEST(decode_across_cache_growth) { decode_across_growth(); }
END_TEST

/* (d) head_dim 64 (d = 128, 2 heads), T = 70: query tiles and key blocks
 * of the prefill kernel end mid-sequence; then a few decode steps. */
static void head_dim_64(void) {
  tf_config c = config(128, 2, 96, 2, 37, RETCL_ACT_GELU);
  const size_t calls[] = {70, 1, 1, 1};
  run_sequence(&c, 2, calls, sizeof calls / sizeof calls[0]);
}

START_TEST(head_dim_64_prefill_70) { head_dim_64(); }
END_TEST

/* A context long enough that a decode step is split into several chunks
 * (CPU: at least 128 positions each; GPU: 256) merged by the combine
 * kernel; one sequence, so the split is the only parallelism. */
static void long_context(void) {
  tf_config c = config(32, 2, 48, 1, 37, RETCL_ACT_SWISH);
  const size_t calls[] = {300, 1, 1, 250, 1, 1};
  run_sequence(&c, 1, calls, sizeof calls / sizeof calls[0]);
}

START_TEST(decode_long_context_split) { long_context(); }
END_TEST

/* head_dim 6: not a multiple of 4, so vectors of 2 floats; 3 heads. */
static void odd_head_dim(void) {
  tf_config c = config(18, 3, 20, 2, 29, RETCL_ACT_GELU);
  const size_t calls[] = {5, 1, 1, 7, 1};
  run_sequence(&c, 2, calls, sizeof calls / sizeof calls[0]);
}

START_TEST(head_dim_6) { odd_head_dim(); }
END_TEST

/* One head of 128 and a single-token first call (decode from empty). */
START_TEST(one_head_128_decode_from_empty) {
  tf_config c = config(128, 1, 64, 1, 23, RETCL_ACT_SWISH);
  const size_t calls[] = {1, 1, 2, 1};
  run_sequence(&c, 1, calls, sizeof calls / sizeof calls[0]);
}
END_TEST

/* The GPU access patterns (local-memory tiles, work-groups per chunk),
 * selected on any device as RetCL's kernels are. Check runs each test in
 * its own process, so the variable does not leak into other tests. */
START_TEST(gpu_kernel_paths) {
  setenv("RETCL_KERNEL_PATHS", "gpu", 1);
  prefill_then_decode();
  decode_across_growth();
  head_dim_64();
  long_context();
  odd_head_dim();
  unsetenv("RETCL_KERNEL_PATHS");
}
END_TEST

START_TEST(cpu_kernel_paths) {
  setenv("RETCL_KERNEL_PATHS", "cpu", 1);
  head_dim_64();
  long_context();
  unsetenv("RETCL_KERNEL_PATHS");
}
END_TEST

/* Random weights are deterministic in the seed and counted as allocated. */
START_TEST(random_model_deterministic) {
  tf_config cfg = config(32, 4, 40, 3, 50, RETCL_ACT_GELU);
  retcl_context *ctx = tu_context();
  char err[512] = "";
  tf_model *a = NULL, *b = NULL, *o = NULL;
  ck_assert_msg(tf_model_create_random(ctx, &cfg, 7, &a, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(tf_model_create_random(ctx, &cfg, 7, &b, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(tf_model_create_random(ctx, &cfg, 8, &o, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(tf_model_weight_bytes(a), ref_weight_count(&cfg) * sizeof(float));
  const size_t B = 1, T = 5, V = cfg.vocab;
  int32_t *tok = random_tokens(B * T, V);
  float *la = poisoned(V), *lb = poisoned(V), *lo = poisoned(V);
  ck_assert(tf_forward(a, NULL, tok, B, T, NULL, la, err, sizeof err) == 0);
  ck_assert(tf_forward(b, NULL, tok, B, T, NULL, lb, err, sizeof err) == 0);
  ck_assert(tf_forward(o, NULL, tok, B, T, NULL, lo, err, sizeof err) == 0);
  ck_assert_int_eq(memcmp(la, lb, V * sizeof *la), 0);
  ck_assert_int_ne(memcmp(la, lo, V * sizeof *la), 0);
  for (size_t i = 0; i < V; ++i) ck_assert(isfinite(la[i]));
  free(tok);
  free(la);
  free(lb);
  free(lo);
  tf_model_destroy(a);
  tf_model_destroy(b);
  tf_model_destroy(o);
  retcl_context_destroy(ctx);
}
END_TEST

/* The benchmark's synthetic fill: the cache reaches the position with the
 * memory a real prefill would take, a decode step then runs there, and a
 * non-empty cache is refused. */
START_TEST(synthetic_fill_then_decode) {
  tf_config cfg = config(32, 2, 48, 2, 40, RETCL_ACT_SWISH);
  retcl_context *ctx = tu_context();
  char err[512] = "";
  tf_model *m = NULL;
  tf_cache *c = NULL;
  ck_assert_msg(tf_model_create_random(ctx, &cfg, 3, &m, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(tf_cache_create(m, 2, &c, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(tf_cache_fill_synthetic(c, 300, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(tf_cache_position(c), 300);
  ck_assert_uint_ge(tf_cache_bytes(c), 2 * cfg.layers * 2 * cfg.d * 300 * sizeof(float));
  int32_t tok[2] = {1, 2};
  float *lo = poisoned(2 * cfg.vocab);
  ck_assert_msg(tf_forward(m, c, tok, 2, 1, NULL, lo, err, sizeof err) == 0, "%s", err);
  for (size_t i = 0; i < 2 * cfg.vocab; ++i) ck_assert(isfinite(lo[i]));
  ck_assert_uint_eq(tf_cache_position(c), 301);
  ck_assert_int_ne(tf_cache_fill_synthetic(c, 500, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "not empty"));
  free(lo);
  tf_cache_destroy(c);
  tf_model_destroy(m);
  retcl_context_destroy(ctx);
}
END_TEST

/* Invalid calls fail with a message, write no output and leave the cache
 * where it was. */
START_TEST(invalid_calls) {
  tf_config cfg = config(32, 2, 48, 1, 37, RETCL_ACT_GELU);
  retcl_context *ctx = tu_context();
  char err[512];
  tf_model *m = NULL;
  tf_cache *c = NULL, *other = NULL;
  tf_config bad = cfg;
  bad.heads = 3; /* 32 is not a multiple of 3 */
  err[0] = 0;
  ck_assert_int_ne(tf_model_create_random(ctx, &bad, 1, &m, err, sizeof err), 0);
  ck_assert_ptr_null(m);
  ck_assert_ptr_nonnull(strstr(err, "heads"));
  bad = cfg;
  bad.heads = 32; /* head_dim 1: odd */
  ck_assert_int_ne(tf_model_create_random(ctx, &bad, 1, &m, err, sizeof err), 0);
  bad = cfg;
  bad.eps = 0.0f;
  ck_assert_int_ne(tf_model_create_random(ctx, &bad, 1, &m, err, sizeof err), 0);
  ck_assert_int_ne(tf_model_create(ctx, &cfg, NULL, &m, err, sizeof err), 0);
  ck_assert_int_ne(tf_model_create_random(NULL, &cfg, 1, &m, err, sizeof err), 0);

  ck_assert(tf_model_create_random(ctx, &cfg, 1, &m, err, sizeof err) == 0);
  ck_assert(tf_cache_create(m, 2, &c, err, sizeof err) == 0);
  ck_assert(tf_cache_create(m, 3, &other, err, sizeof err) == 0);
  tf_cache *none = c;
  ck_assert_int_ne(tf_cache_create(m, 0, &none, err, sizeof err), 0);
  ck_assert_ptr_null(none);
  int32_t tok[4] = {1, 2, 3, 4};
  float *out = poisoned(4 * cfg.vocab);
  err[0] = 0;
  ck_assert_int_ne(tf_forward(m, c, NULL, 2, 2, out, NULL, err, sizeof err), 0);
  ck_assert(err[0] != 0);
  tok[3] = (int32_t)cfg.vocab; /* out of range */
  ck_assert_int_ne(tf_forward(m, c, tok, 2, 2, out, NULL, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "tokens[3]"));
  tok[3] = -1;
  ck_assert_int_ne(tf_forward(m, c, tok, 2, 2, out, NULL, err, sizeof err), 0);
  tok[3] = 4;
  ck_assert_int_ne(tf_forward(m, c, tok, 2, 0, out, NULL, err, sizeof err), 0);
  ck_assert_int_ne(tf_forward(m, other, tok, 2, 2, out, NULL, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "batch"));
  ck_assert_int_ne(tf_forward(NULL, c, tok, 2, 2, out, NULL, err, sizeof err), 0);
  /* A NULL or empty err buffer is fine. */
  ck_assert_int_ne(tf_forward(m, c, NULL, 2, 2, out, NULL, NULL, 0), 0);
  for (size_t i = 0; i < 4 * cfg.vocab; ++i) ck_assert(isnan(out[i]));
  ck_assert_uint_eq(tf_cache_position(c), 0);
  ck_assert_uint_eq(tf_cache_bytes(c), 0);
  /* Still usable after all that. */
  ck_assert_msg(tf_forward(m, c, tok, 2, 2, out, NULL, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(tf_cache_position(c), 2);
  /* NULL handles are no-ops or zero. */
  tf_cache_destroy(NULL);
  tf_model_destroy(NULL);
  ck_assert_uint_eq(tf_cache_bytes(NULL), 0);
  ck_assert_uint_eq(tf_cache_position(NULL), 0);
  ck_assert_uint_eq(tf_model_weight_bytes(NULL), 0);
  free(out);
  tf_cache_destroy(c);
  tf_cache_destroy(other);
  tf_model_destroy(m);
  retcl_context_destroy(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("transformer");
  TCase *tc = tcase_create("forward");
  tcase_add_test(tc, prefill_two_layers_gelu);
  tcase_add_test(tc, prefill_without_cache);
  tcase_add_test(tc, prefill_then_decode_batch3_swish);
  tcase_add_test(tc, decode_across_cache_growth);
  tcase_add_test(tc, head_dim_64_prefill_70);
  tcase_add_test(tc, decode_long_context_split);
  tcase_add_test(tc, head_dim_6);
  tcase_add_test(tc, one_head_128_decode_from_empty);
  tcase_add_test(tc, gpu_kernel_paths);
  tcase_add_test(tc, cpu_kernel_paths);
  tcase_add_test(tc, random_model_deterministic);
  tcase_add_test(tc, synthetic_fill_then_decode);
  tcase_add_test(tc, invalid_calls);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
