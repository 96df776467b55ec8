/* cmd_demo.c - `retcl demo`: an end-to-end check that RetCL works on a
 * device. Random q, k, v are rotated, then retention runs by all three
 * algorithms (parallel, recurrent, chunkwise) on the same inputs; as they
 * compute the same function (docs/design.md §1.3), their outputs and final states
 * must agree to fp32 rounding. Prints the time of each and exits non-zero
 * if they disagree, so the demo doubles as a smoke test of an install. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Agreement limit for max|a - ref| / max|ref|. The algorithms sum the same
 * terms in different orders; fp32 rounding over a few hundred tokens stays
 * around 1e-6, so 1e-4 only trips on a real bug. Overridable at compile
 * time (-DDEMO_TOLERANCE=1e-9) to exercise the failure path. */
#ifndef DEMO_TOLERANCE
#define DEMO_TOLERANCE 1e-4
#endif

typedef struct demo_opts {
  const char *device, *platform;
  size_t batch, tokens, heads, key_dim, value_dim, chunk, repeat;
  uint64_t seed;
  int verbose;
} demo_opts;

/* One algorithm's buffers, results and timings. */
typedef struct demo_algo {
  const char *name;
  retcl_algorithm algorithm;
  cl_mem out, state;      /* device results, NaN-poisoned before each run */
  float *h_out, *h_state; /* read back after the timed runs */
  double first_s, best_s; /* first run (builds kernels), best later run */
} demo_algo;

/* Everything the demo allocates, so one function can release it on every
 * path (all fields NULL-safe). */
typedef struct demo {
  demo_opts o;
  size_t n_qk, n_v, n_state;
  retcl_context *ctx;
  retcl_rotation *rot;
  float *h_q, *h_k, *h_v, *h_poison;
  float *h_log_decay;
  cl_mem q, k, v, log_decay;
  demo_algo algos[3];
} demo;

static void demo_usage(FILE *out) {
  fprintf(out,
          "usage: retcl demo [--device D] [--platform P] [--batch B]\n"
          "                  [--tokens T] [--heads H] [--key-dim Dk]\n"
          "                  [--value-dim Dv] [--chunk C] [--seed S]\n"
          "                  [--repeat N] [--verbose]\n"
          "\n"
          "Run raw-form retention on random, rotated q, k, v by the parallel,\n"
          "recurrent and chunkwise algorithms, print the time of each, and\n"
          "check that their outputs and final states agree with the parallel\n"
          "one (max |a - ref| / max |ref| <= %.0e). Exit status 0 when they\n"
          "agree, 3 when they do not, 1 on an error, 2 on a bad option.\n"
          "\n"
          "  --device D      device index (see `retcl devices`) or name\n"
          "                  substring; default RETCL_DEVICE, else the first\n"
          "                  GPU, else the first device\n"
          "  --platform P    platform index or name substring; default\n"
          "                  RETCL_PLATFORM, else all platforms\n"
          "  --batch B       default 1\n"
          "  --tokens T      default 512\n"
          "  --heads H       default 4 (decays 1 - 2^(-5-h))\n"
          "  --key-dim Dk    default 64 (even: q and k are rotated)\n"
          "  --value-dim Dv  default 64\n"
          "  --chunk C       chunkwise chunk size, default 64\n"
          "  --seed S        random seed for q, k, v, default 1\n"
          "  --repeat N      timed runs after the warm-up, best reported;\n"
          "                  default 3\n"
          "  --verbose       print the library's log (kernel builds) to "
          "stderr\n",
          DEMO_TOLERANCE);
}

static void log_to_stderr(retcl_log_level level, const char *message,
                          void *user_data) {
  static const char *names[] = {"debug", "info", "warning", "error"};
  (void)user_data;
  fprintf(stderr, "retcl: [%s] %s\n",
          (unsigned)level < 4 ? names[level] : "log", message);
}

/* a*b*c*d, or 0 on overflow (every factor is >= 1 by then). */
static size_t product4(size_t a, size_t b, size_t c, size_t d) {
  size_t r = a;
  size_t f[3] = {b, c, d};
  for (int i = 0; i < 3; ++i) {
    if (f[i] != 0 && r > SIZE_MAX / sizeof(float) / f[i]) return 0;
    r *= f[i];
  }
  return r;
}

static void demo_release(demo *d) {
  for (int i = 0; i < 3; ++i) {
    if (d->algos[i].out) clReleaseMemObject(d->algos[i].out);
    if (d->algos[i].state) clReleaseMemObject(d->algos[i].state);
    free(d->algos[i].h_out);
    free(d->algos[i].h_state);
  }
  if (d->q) clReleaseMemObject(d->q);
  if (d->k) clReleaseMemObject(d->k);
  if (d->v) clReleaseMemObject(d->v);
  if (d->log_decay) clReleaseMemObject(d->log_decay);
  retcl_rotation_destroy(d->rot); /* before its context */
  retcl_context_destroy(d->ctx);
  free(d->h_q);
  free(d->h_k);
  free(d->h_v);
  free(d->h_poison);
  free(d->h_log_decay);
}

/* A device buffer of n floats, copied from host. */
static int make_buffer(demo *d, const float *host, size_t n, const char *name,
                       cl_mem *out) {
  cl_int err = CL_SUCCESS;
  *out = clCreateBuffer(retcl_context_cl_context(d->ctx),
                        CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                        n * sizeof(float), (void *)host, &err);
  if (!*out) {
    char call[96];
    snprintf(call, sizeof call, "clCreateBuffer(%s, %zu floats)", name, n);
    return cli_cl_error(call, err);
  }
  return CLI_EXIT_OK;
}

/* Overwrite a result buffer with NaN, so that an element a kernel forgets
 * to write shows up as a mismatch instead of as stale data. */
static int poison(demo *d, cl_mem buf, size_t n) {
  cl_int err =
      clEnqueueWriteBuffer(retcl_context_queue(d->ctx), buf, CL_TRUE, 0,
                           n * sizeof(float), d->h_poison, 0, NULL, NULL);
  return err == CL_SUCCESS ? CLI_EXIT_OK
                           : cli_cl_error("clEnqueueWriteBuffer(poison)", err);
}

static void print_device(const demo *d) {
  cl_device_id dev = retcl_context_device(d->ctx);
  cl_platform_id plat = NULL;
  char name[256] = "", pname[256] = "", version[256] = "", driver[256] = "";
  clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_VERSION, sizeof version, version, NULL);
  clGetDeviceInfo(dev, CL_DRIVER_VERSION, sizeof driver, driver, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_PLATFORM, sizeof plat, &plat, NULL);
  if (plat)
    clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof pname, pname, NULL);
  printf("retcl %s demo\n", retcl_version_string());
  printf("device:    %s (%s), %s, driver %s\n", name, pname, version, driver);
  printf(
      "shape:     batch %zu, tokens %zu, heads %zu, key dim %zu, value dim "
      "%zu, chunk %zu, token-major, seed %llu\n",
      d->o.batch, d->o.tokens, d->o.heads, d->o.key_dim, d->o.value_dim,
      d->o.chunk, (unsigned long long)d->o.seed);
}

/* Random inputs, default decays, upload, rotate q and k in place. */
static int prepare_inputs(demo *d) {
  const demo_opts *o = &d->o;
  d->h_q = malloc(d->n_qk * sizeof(float));
  d->h_k = malloc(d->n_qk * sizeof(float));
  d->h_v = malloc(d->n_v * sizeof(float));
  d->h_log_decay = malloc(o->heads * sizeof(float));
  size_t n_poison = d->n_v > d->n_state ? d->n_v : d->n_state;
  d->h_poison = malloc(n_poison * sizeof(float));
  if (!d->h_q || !d->h_k || !d->h_v || !d->h_log_decay || !d->h_poison)
    return cli_error("out of host memory for the inputs");
  for (size_t i = 0; i < n_poison; ++i) d->h_poison[i] = NAN;

  /* k carries the Dk^-1/2 of a retention layer, which keeps o = q S at the
   * magnitude of v however large Dk is. */
  cli_rng rng;
  cli_rng_seed(&rng, o->seed);
  const float k_scale = 1.0f / sqrtf((float)o->key_dim);
  for (size_t i = 0; i < d->n_qk; ++i) d->h_q[i] = cli_rng_uniform(&rng, -1, 1);
  for (size_t i = 0; i < d->n_qk; ++i)
    d->h_k[i] = k_scale * cli_rng_uniform(&rng, -1, 1);
  for (size_t i = 0; i < d->n_v; ++i) d->h_v[i] = cli_rng_uniform(&rng, -1, 1);

  retcl_status st = retcl_default_log_decay(o->heads, d->h_log_decay);
  if (st != RETCL_SUCCESS) return cli_fail(NULL, st, "default decays");

  int rc;
  if ((rc = make_buffer(d, d->h_q, d->n_qk, "q", &d->q)) ||
      (rc = make_buffer(d, d->h_k, d->n_qk, "k", &d->k)) ||
      (rc = make_buffer(d, d->h_v, d->n_v, "v", &d->v)) ||
      (rc = make_buffer(d, d->h_log_decay, o->heads, "log_decay",
                        &d->log_decay)))
    return rc;

  st = retcl_rotation_create(d->ctx, o->key_dim, NULL, 0.0f, &d->rot);
  if (st != RETCL_SUCCESS)
    return cli_fail(d->ctx, st, "creating the rotation plan");
  retcl_rotation_desc rd;
  memset(&rd, 0, sizeof rd);
  rd.batch = o->batch;
  rd.tokens = o->tokens;
  rd.heads = o->heads;
  rd.layout = RETCL_LAYOUT_TOKEN_MAJOR;
  rd.pos0 = 0;
  rd.is_key = 0;
  st = retcl_rotate(d->ctx, d->rot, &rd, retcl_buf(d->q, 0), retcl_buf(d->q, 0),
                    0, NULL, NULL);
  if (st != RETCL_SUCCESS) return cli_fail(d->ctx, st, "rotating q");
  rd.is_key = 1;
  st = retcl_rotate(d->ctx, d->rot, &rd, retcl_buf(d->k, 0), retcl_buf(d->k, 0),
                    0, NULL, NULL);
  if (st != RETCL_SUCCESS) return cli_fail(d->ctx, st, "rotating k");
  st = retcl_finish(d->ctx);
  if (st != RETCL_SUCCESS)
    return cli_fail(d->ctx, st, "waiting for the rotation");
  return CLI_EXIT_OK;
}

/* One retention call plus retcl_finish, timed on the wall clock. */
static int run_once(demo *d, demo_algo *a, double *seconds) {
  retcl_retention_desc rd;
  memset(&rd, 0, sizeof rd);
  rd.batch = d->o.batch;
  rd.tokens = d->o.tokens;
  rd.heads = d->o.heads;
  rd.key_dim = d->o.key_dim;
  rd.value_dim = d->o.value_dim;
  rd.layout = RETCL_LAYOUT_TOKEN_MAJOR;
  rd.algorithm = a->algorithm;
  rd.form = RETCL_FORM_RAW;
  rd.chunk_size = a->algorithm == RETCL_ALGO_CHUNKWISE ? d->o.chunk : 0;
  rd.scale = 1.0f;
  rd.position = 0;
  char what[64];
  snprintf(what, sizeof what, "%s retention", a->name);
  double t0 = cli_now();
  retcl_status st = retcl_retention(
      d->ctx, &rd, retcl_buf(d->q, 0), retcl_buf(d->k, 0), retcl_buf(d->v, 0),
      retcl_buf(d->log_decay, 0), retcl_no_buf(), retcl_buf(a->state, 0),
      retcl_buf(a->out, 0), 0, NULL, NULL);
  if (st != RETCL_SUCCESS) return cli_fail(d->ctx, st, what);
  st = retcl_finish(d->ctx);
  if (st != RETCL_SUCCESS) return cli_fail(d->ctx, st, what);
  *seconds = cli_now() - t0;
  return CLI_EXIT_OK;
}

/* Poison, warm up (the first call builds the kernels), poison again, time
 * `repeat` runs, read the results back. */
static int run_algorithm(demo *d, demo_algo *a) {
  int rc;
  a->h_out = malloc(d->n_v * sizeof(float));
  a->h_state = malloc(d->n_state * sizeof(float));
  if (!a->h_out || !a->h_state) return cli_error("out of host memory");
  if ((rc = make_buffer(d, d->h_poison, d->n_v, "out", &a->out)) ||
      (rc = make_buffer(d, d->h_poison, d->n_state, "state", &a->state)) ||
      (rc = run_once(d, a, &a->first_s)) || (rc = poison(d, a->out, d->n_v)) ||
      (rc = poison(d, a->state, d->n_state)))
    return rc;
  a->best_s = INFINITY;
  for (size_t r = 0; r < d->o.repeat; ++r) {
    double s = 0;
    if ((rc = run_once(d, a, &s))) return rc;
    if (s < a->best_s) a->best_s = s;
  }
  cl_command_queue queue = retcl_context_queue(d->ctx);
  cl_int err =
      clEnqueueReadBuffer(queue, a->out, CL_TRUE, 0, d->n_v * sizeof(float),
                          a->h_out, 0, NULL, NULL);
  if (err == CL_SUCCESS)
    err = clEnqueueReadBuffer(queue, a->state, CL_TRUE, 0,
                              d->n_state * sizeof(float), a->h_state, 0, NULL,
                              NULL);
  if (err != CL_SUCCESS) return cli_cl_error("clEnqueueReadBuffer", err);
  return CLI_EXIT_OK;
}

static size_t count_nonfinite(const float *x, size_t n) {
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad += !isfinite(x[i]);
  return bad;
}

/* max |a - ref| / max |ref|: one number that is small only when every
 * element agrees, scaled by the data (inf when a holds NaN). */
static double max_rel_diff(const float *a, const float *ref, size_t n) {
  double max_diff = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < n; ++i) {
    double diff = fabs((double)a[i] - (double)ref[i]);
    if (!(diff <= max_diff)) max_diff = diff; /* also catches NaN */
    double r = fabs((double)ref[i]);
    if (r > max_ref) max_ref = r;
  }
  if (isnan(max_diff)) return INFINITY;
  if (max_ref == 0.0) return max_diff == 0.0 ? 0.0 : INFINITY;
  return max_diff / max_ref;
}

static void format_ms(double s, char *buf, size_t cap) {
  if (isinf(s))
    snprintf(buf, cap, "-");
  else
    snprintf(buf, cap, "%.3f ms", 1e3 * s);
}

/* Print the table and check agreement; returns the exit code. */
static int report(const demo *d) {
  const demo_algo *ref = &d->algos[0];
  int rc = CLI_EXIT_OK;
  char first[32], best[32];
  printf("\n%-10s %14s %14s %14s %14s\n", "algorithm", "first run", "best run",
         "output diff", "state diff");
  for (int i = 0; i < 3; ++i) {
    const demo_algo *a = &d->algos[i];
    format_ms(a->first_s, first, sizeof first);
    format_ms(a->best_s, best, sizeof best);
    if (i == 0) {
      printf("%-10s %14s %14s %14s %14s\n", a->name, first, best, "(reference)",
             "(reference)");
      continue;
    }
    printf("%-10s %14s %14s %14.3e %14.3e\n", a->name, first, best,
           max_rel_diff(a->h_out, ref->h_out, d->n_v),
           max_rel_diff(a->h_state, ref->h_state, d->n_state));
  }
  printf(
      "(a first run includes building the kernels it is the first to "
      "need; best of %zu runs after it;\n diff = max |x - parallel| / "
      "max |parallel|)\n",
      d->o.repeat);
  fflush(stdout);

  /* A reference with NaN in it would make every comparison meaningless. */
  for (int i = 0; i < 3; ++i) {
    const demo_algo *a = &d->algos[i];
    size_t bad_out = count_nonfinite(a->h_out, d->n_v);
    size_t bad_state = count_nonfinite(a->h_state, d->n_state);
    if (bad_out || bad_state) {
      cli_error(
          "%s left %zu of %zu outputs and %zu of %zu state values "
          "non-finite (NaN = never written)",
          a->name, bad_out, d->n_v, bad_state, d->n_state);
      rc = CLI_EXIT_CHECK;
    }
  }
  if (rc != CLI_EXIT_OK) return rc;
  for (int i = 1; i < 3; ++i) {
    const demo_algo *a = &d->algos[i];
    double e_out = max_rel_diff(a->h_out, ref->h_out, d->n_v);
    double e_state = max_rel_diff(a->h_state, ref->h_state, d->n_state);
    if (!(e_out <= DEMO_TOLERANCE) || !(e_state <= DEMO_TOLERANCE)) {
      cli_error(
          "%s disagrees with parallel: output %.3e, state %.3e "
          "(limit %.0e)",
          a->name, e_out, e_state, DEMO_TOLERANCE);
      rc = CLI_EXIT_CHECK;
    }
  }
  if (rc == CLI_EXIT_OK)
    printf("OK: recurrent and chunkwise agree with parallel within %.0e\n",
           DEMO_TOLERANCE);
  return rc;
}

static int demo_run(int argc, char **argv) {
  demo d;
  memset(&d, 0, sizeof d);
  demo_opts *o = &d.o;
  o->batch = 1;
  o->tokens = 512;
  o->heads = 4;
  o->key_dim = 64;
  o->value_dim = 64;
  o->chunk = 64;
  o->repeat = 3;
  o->seed = 1;
  const cli_option opts[] = {
      {"device", CLI_OPT_STRING, &o->device},
      {"platform", CLI_OPT_STRING, &o->platform},
      {"batch", CLI_OPT_SIZE, &o->batch},
      {"tokens", CLI_OPT_SIZE, &o->tokens},
      {"heads", CLI_OPT_SIZE, &o->heads},
      {"key-dim", CLI_OPT_SIZE, &o->key_dim},
      {"value-dim", CLI_OPT_SIZE, &o->value_dim},
      {"chunk", CLI_OPT_SIZE, &o->chunk},
      {"seed", CLI_OPT_U64, &o->seed},
      {"repeat", CLI_OPT_SIZE, &o->repeat},
      {"verbose", CLI_OPT_FLAG, &o->verbose},
  };
  int parsed =
      cli_parse_options("demo", argc, argv, opts, sizeof opts / sizeof opts[0]);
  if (parsed == CLI_PARSE_HELP) {
    demo_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (parsed != CLI_PARSE_OK) return CLI_EXIT_USAGE;
  /* Ranges (dims up to 1024, even Dk, ...) are the library's to enforce and
   * to explain; here only what the host side itself needs. */
  if (!o->batch || !o->tokens || !o->heads || !o->key_dim || !o->value_dim ||
      !o->chunk || !o->repeat)
    return cli_usage_error("demo", "sizes and --repeat must be at least 1");
  d.n_qk = product4(o->batch, o->tokens, o->heads, o->key_dim);
  d.n_v = product4(o->batch, o->tokens, o->heads, o->value_dim);
  d.n_state = product4(o->batch, o->heads, o->key_dim, o->value_dim);
  if (!d.n_qk || !d.n_v || !d.n_state)
    return cli_usage_error("demo", "the shape is too large for this host");

  retcl_status st = retcl_context_create(o->platform, o->device, &d.ctx);
  if (st != RETCL_SUCCESS)
    return cli_fail(NULL, st, "cannot create a RetCL context");
  if (o->verbose) retcl_set_log_callback(d.ctx, log_to_stderr, NULL);
  print_device(&d);

  d.algos[0] =
      (demo_algo){.name = "parallel", .algorithm = RETCL_ALGO_PARALLEL};
  d.algos[1] =
      (demo_algo){.name = "recurrent", .algorithm = RETCL_ALGO_RECURRENT};
  d.algos[2] =
      (demo_algo){.name = "chunkwise", .algorithm = RETCL_ALGO_CHUNKWISE};
  int rc = prepare_inputs(&d);
  for (int i = 0; i < 3 && rc == CLI_EXIT_OK; ++i)
    rc = run_algorithm(&d, &d.algos[i]);
  if (rc == CLI_EXIT_OK) rc = report(&d);
  demo_release(&d);
  return rc;
}

const cli_command cli_cmd_demo = {
    "demo", "run retention by all three algorithms and check they agree",
    demo_run, demo_usage};
