/* test_threads.c - concurrency as the header states it: different contexts
 * may be used from different threads at once. Two threads, each with its
 * own context, load the same random checkpoint and run the model (forward
 * in every mode, prefill + decode steps) at the same time; every logit
 * must equal, bit for bit, what the same calls gave on one thread before.
 * Shared state inside the library or its dependencies (program caches,
 * CLBlast's kernel cache, error buffers) that is not safe would show up as
 * a crash, an error status, or different numbers. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

#define B 2
#define T 19      /* forward length: chunk 8 leaves a partial last chunk */
#define PREFILL 11
#define STEPS 8   /* decode steps after the prefill */
#define V 61
#define THREADS 2
#define ROUNDS 2  /* concurrent rounds: more chances for a race to show */

/* Everything one run computes, and how it ended. */
typedef struct run_result {
  float forward[3][B * T * V]; /* parallel, chunkwise, recurrent */
  float prefill_last[B * V];   /* forward_last of the prefill */
  float steps[STEPS][B * V];   /* one recurrent step each */
  retcl_status status;
  char where[64];              /* the call that failed */
  char message[512];           /* its retcl_last_error */
} run_result;

typedef struct run_args {
  const char *dir;
  const int32_t *tokens; /* [B, T + STEPS] */
  pthread_barrier_t *start; /* NULL when run alone */
  run_result *result;
} run_args;

static const retcl_algorithm ALGOS[3] = {
    RETCL_ALGO_PARALLEL, RETCL_ALGO_CHUNKWISE, RETCL_ALGO_RECURRENT};

/* Record the first failure (no Check assertions off the main thread: a
 * failing ck_assert there would unwind the wrong thread). */
static int failed(run_result *r, const retcl_context *ctx, retcl_status st,
                  const char *where) {
  if (st == RETCL_SUCCESS) return 0;
  r->status = st;
  snprintf(r->where, sizeof r->where, "%s", where);
  snprintf(r->message, sizeof r->message, "%s", retcl_last_error(ctx));
  return 1;
}

/* The whole workload on a fresh context: create, load, three forwards,
 * prefill, decode steps, destroy. */
static void *run(void *arg) {
  run_args *a = arg;
  run_result *r = a->result;
  r->status = RETCL_SUCCESS;
  /* Both threads start creating contexts and building kernels together. */
  if (a->start) pthread_barrier_wait(a->start);
  retcl_context *ctx = NULL;
  retcl_model *model = NULL;
  retcl_decode_state *state = NULL;
  int32_t prompt[B * PREFILL], step[B], seq[B * T];
  for (size_t b = 0; b < B; ++b) {
    memcpy(seq + b * T, a->tokens + b * (T + STEPS), T * sizeof *seq);
    memcpy(prompt + b * PREFILL, a->tokens + b * (T + STEPS),
           PREFILL * sizeof *prompt);
  }
  if (failed(r, NULL, retcl_context_create(NULL, NULL, &ctx), "context"))
    return NULL;
  if (failed(r, ctx, retcl_model_load(ctx, a->dir, &model), "load")) goto out;
  for (int m = 0; m < 3; ++m)
    if (failed(r, ctx,
               retcl_model_forward(model, NULL, seq, B, T, ALGOS[m], 0,
                                   r->forward[m]),
               "forward"))
      goto out;
  if (failed(r, ctx, retcl_decode_state_create(model, B, &state), "state") ||
      failed(r, ctx,
             retcl_model_forward_last(model, state, prompt, B, PREFILL,
                                      RETCL_ALGO_CHUNKWISE, 0,
                                      r->prefill_last),
             "prefill"))
    goto out;
  for (size_t s = 0; s < STEPS; ++s) {
    for (size_t b = 0; b < B; ++b)
      step[b] = a->tokens[b * (T + STEPS) + PREFILL + s];
    if (failed(r, ctx,
               retcl_model_forward(model, state, step, B, 1,
                                   RETCL_ALGO_RECURRENT, 0, r->steps[s]),
               "decode step"))
      goto out;
  }
out:
  retcl_decode_state_destroy(state);
  retcl_model_destroy(model);
  retcl_context_destroy(ctx);
  return NULL;
}

static void assert_ran(const run_result *r, const char *who) {
  ck_assert_msg(r->status == RETCL_SUCCESS, "%s: %s failed: %s: %s", who,
                r->where, retcl_status_string(r->status), r->message);
}

/* Bitwise: the same calls on the same device must give the same bits. */
static void assert_same(const run_result *got, const run_result *want,
                        const char *who) {
  static const char *names[3] = {"parallel", "chunkwise", "recurrent"};
  for (int m = 0; m < 3; ++m)
    ck_assert_msg(!memcmp(got->forward[m], want->forward[m],
                          sizeof want->forward[m]),
                  "%s: %s forward logits differ from the single-threaded "
                  "run",
                  who, names[m]);
  ck_assert_msg(!memcmp(got->prefill_last, want->prefill_last,
                        sizeof want->prefill_last),
                "%s: prefill logits differ", who);
  for (size_t s = 0; s < STEPS; ++s)
    ck_assert_msg(!memcmp(got->steps[s], want->steps[s], sizeof want->steps[s]),
                  "%s: decode step %zu differs", who, s);
}

START_TEST(two_threads_two_contexts_match_one_thread) {
  char dir[256];
  snprintf(dir, sizeof dir, "%s/retcl-threads-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  const retcl_model_config cfg = tu_model_config(32, 48, 2, 64, 2, V);
  tu_ok(NULL, retcl_checkpoint_write_random(&cfg, tu_seed(), RETCL_DTYPE_F32,
                                            dir));
  int32_t tokens[B * (T + STEPS)];
  for (size_t i = 0; i < B * (T + STEPS); ++i)
    tokens[i] = (int32_t)tu_uniform(0, V - 1e-9);

  /* The results are large (~20 KB each): on the heap, not the stacks. */
  run_result *alone = calloc(1, sizeof *alone);
  run_result *res = calloc(THREADS, sizeof *res);
  ck_assert_ptr_nonnull(alone);
  ck_assert_ptr_nonnull(res);
  run_args single = {dir, tokens, NULL, alone};
  run(&single);
  assert_ran(alone, "single thread");

  for (int round = 0; round < ROUNDS; ++round) {
    pthread_barrier_t start;
    ck_assert_int_eq(pthread_barrier_init(&start, NULL, THREADS), 0);
    pthread_t th[THREADS];
    run_args args[THREADS];
    memset(res, 0xff, THREADS * sizeof *res); /* stale results cannot pass */
    for (int i = 0; i < THREADS; ++i) {
      args[i] = (run_args){dir, tokens, &start, &res[i]};
      ck_assert_int_eq(pthread_create(&th[i], NULL, run, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; ++i)
      ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < THREADS; ++i) {
      char who[64];
      snprintf(who, sizeof who, "round %d, thread %d", round, i);
      assert_ran(&res[i], who);
      assert_same(&res[i], alone, who);
    }
  }
  free(alone);
  free(res);
  ref_checkpoint_remove(dir);
}
END_TEST

/* The context-free calls the header marks thread-safe, hammered from two
 * threads at once: creation errors are reported per thread
 * (retcl_last_error(NULL)), and sampling and the default decays give the
 * same answers as on one thread. */
typedef struct free_args {
  int id;
  int ok;
  char detail[256];
} free_args;

static void *context_free_calls(void *arg) {
  free_args *a = arg;
  a->ok = 1;
  /* A device name no machine has: each thread must read its own message
   * (the one naming its own request), not the other thread's. */
  char name[64];
  snprintf(name, sizeof name, "no-such-device-%d", a->id);
  float logits[V], lg[8], want_lg[8];
  for (int i = 0; i < V; ++i) logits[i] = (float)((i * 37 + a->id) % V);
  for (int h = 0; h < 8; ++h) want_lg[h] = 0;
  retcl_default_log_decay(8, want_lg);
  for (int it = 0; it < 200 && a->ok; ++it) {
    retcl_context *ctx = NULL;
    retcl_status st = retcl_context_create(NULL, name, &ctx);
    const char *msg = retcl_last_error(NULL);
    if (st != RETCL_ERROR_DEVICE_NOT_FOUND || ctx || !strstr(msg, name)) {
      snprintf(a->detail, sizeof a->detail,
               "iteration %d: status %d, message '%s' (wanted one naming %s)",
               it, (int)st, msg, name);
      a->ok = 0;
    }
    retcl_sampler greedy = {0.0f, 0};
    uint64_t rng = 1;
    int32_t tok = -1;
    /* argmax of (i*37 + id) mod V over i is the i with the largest value */
    if (retcl_sample(logits, V, &greedy, &rng, &tok) != RETCL_SUCCESS ||
        logits[tok] != (float)(V - 1)) {
      snprintf(a->detail, sizeof a->detail, "iteration %d: greedy sample %d",
               it, (int)tok);
      a->ok = 0;
    }
    if (retcl_default_log_decay(8, lg) != RETCL_SUCCESS ||
        memcmp(lg, want_lg, sizeof lg)) {
      snprintf(a->detail, sizeof a->detail, "iteration %d: decays differ", it);
      a->ok = 0;
    }
  }
  return NULL;
}

START_TEST(context_free_calls_are_thread_safe) {
  /* One context first, so that this test does not also depend on what
   * first_contexts_created_concurrently checks. */
  retcl_context_destroy(tu_context());
  pthread_t th[THREADS];
  free_args args[THREADS];
  for (int i = 0; i < THREADS; ++i) {
    args[i] = (free_args){i, 0, ""};
    ck_assert_int_eq(pthread_create(&th[i], NULL, context_free_calls, &args[i]),
                     0);
  }
  for (int i = 0; i < THREADS; ++i) {
    ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    ck_assert_msg(args[i].ok, "thread %d: %s", i, args[i].detail);
  }
}
END_TEST

/* The very first OpenCL calls of a process made from two threads at once
 * (Check runs each test in a fresh child process, so nothing has touched
 * OpenCL yet): an application that starts one worker thread per device
 * does exactly this. Some drivers initialise their devices lazily and not
 * thread-safely: with PoCL 3.1 (Debian 12), two threads that query a
 * device's name for the first time together crash in clGetDeviceInfo
 * (~70% of runs; cf. pocl/pocl#1612), and selecting a device by name
 * (RETCL_DEVICE=<substring>) is such a query. So retcl_context_create must
 * serialise its own device discovery for the header's promise (contexts
 * may be created from several threads) to hold. One test per selection
 * path, as only the first calls of a process can race. */
typedef struct create_args {
  pthread_barrier_t *start;
  const char *device;
  retcl_status status;
  char message[256];
} create_args;

static void *create_one(void *arg) {
  create_args *a = arg;
  pthread_barrier_wait(a->start);
  retcl_context *ctx = NULL;
  a->status = retcl_context_create(NULL, a->device, &ctx);
  snprintf(a->message, sizeof a->message, "%s", retcl_last_error(NULL));
  retcl_context_destroy(ctx);
  return NULL;
}

static void create_concurrently(const char *device, retcl_status want) {
  pthread_barrier_t start;
  ck_assert_int_eq(pthread_barrier_init(&start, NULL, THREADS), 0);
  pthread_t th[THREADS];
  create_args args[THREADS];
  for (int i = 0; i < THREADS; ++i) {
    args[i] = (create_args){&start, device, RETCL_SUCCESS, ""};
    ck_assert_int_eq(pthread_create(&th[i], NULL, create_one, &args[i]), 0);
  }
  for (int i = 0; i < THREADS; ++i) {
    ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    ck_assert_msg(args[i].status == want,
                  "thread %d: retcl_context_create(NULL, %s) returned %d (%s), "
                  "expected %d",
                  i, device ? device : "NULL", (int)args[i].status,
                  args[i].message, (int)want);
  }
  pthread_barrier_destroy(&start);
}

START_TEST(first_contexts_created_concurrently) {
  create_concurrently(NULL, RETCL_SUCCESS);
}
END_TEST

START_TEST(first_device_lookups_by_name_concurrently) {
  /* No device has this name: both threads compare every device's name and
   * must get a clean DEVICE_NOT_FOUND (not a crash). */
  create_concurrently("no-such-device", RETCL_ERROR_DEVICE_NOT_FOUND);
}
END_TEST

int main(void) {
  Suite *s = suite_create("threads");
  TCase *tc = tcase_create("threads");
  tcase_add_test(tc, two_threads_two_contexts_match_one_thread);
  tcase_add_test(tc, context_free_calls_are_thread_safe);
  tcase_add_test(tc, first_contexts_created_concurrently);
  tcase_add_test(tc, first_device_lookups_by_name_concurrently);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
