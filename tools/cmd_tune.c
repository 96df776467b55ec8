/* cmd_tune.c - `retcl tune`: searches a kernel family's parameters on the
 * chosen device within a time budget. Each candidate record is applied as
 * a RETCL_PARAMS file to a context of its own; a candidate that does not
 * build, or whose output leaves the fp32 error bound of the double
 * reference, is rejected and reported before it is ever timed. The fastest
 * record is written as a RETCL_PARAMS file, with its speed-up over the
 * device's defaults per shape. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, setenv */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ref_gemm.h"

static void tune_usage(FILE *out) {
  fprintf(out,
          "usage: retcl tune [--family gemm] [--budget 10m] [--out FILE]\n"
          "                  [--platform P] [--device D] [--seed N]\n"
          "\n"
          "Search the parameters of a kernel family on the device within the\n"
          "time budget (\"90s\", \"2m\"; default 10m). Every candidate is checked\n"
          "against a double-precision reference before it is timed (a wrong\n"
          "result is rejected and reported). Writes the fastest record as a\n"
          "RETCL_PARAMS file (default retcl-params.json) and prints its\n"
          "speed-up over the device's defaults per shape.\n"
          "\n"
          "  --family gemm   the family to tune (gemm: RetCL's GEMM kernels,\n"
          "                  at the shapes of a d 512 model's projections and\n"
          "                  their gradients)\n");
}

/* ---- shapes and their references ----------------------------------------- */

typedef struct tune_shape {
  retcl_gemm_case op;
  size_t M, N, K;
  const char *what;
  float *a, *b;   /* host operands, stored as the case stores them */
  double *ref;    /* alpha op(A) op(B), alpha = 1 */
  double *bound;  /* the fp32 dot-product bound per element */
} tune_shape;

static tune_shape shapes[] = {
    {RETCL_GEMM_NT, 512, 1024, 512, "nt 512x1024x512 (x W^T, FFN in)", NULL, NULL, NULL, NULL},
    {RETCL_GEMM_NN, 512, 512, 1024, "nn 512x512x1024 (dy W, FFN out)", NULL, NULL, NULL, NULL},
    {RETCL_GEMM_TN, 512, 512, 512, "tn 512x512x512 (dy^T x, dW)", NULL, NULL, NULL, NULL},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

static size_t a_elems(const tune_shape *s) { return s->M * s->K; }
static size_t b_elems(const tune_shape *s) { return s->N * s->K; }

static int make_reference(tune_shape *s, uint64_t *rng) {
  s->a = malloc(a_elems(s) * sizeof *s->a);
  s->b = malloc(b_elems(s) * sizeof *s->b);
  s->ref = malloc(s->M * s->N * sizeof *s->ref);
  s->bound = malloc(s->M * s->N * sizeof *s->bound);
  if (!s->a || !s->b || !s->ref || !s->bound) return 0;
  for (size_t i = 0; i < a_elems(s); ++i)
    s->a[i] = (float)(2 * retcl_random_uniform(rng) - 1);
  for (size_t i = 0; i < b_elems(s); ++i)
    s->b[i] = (float)(2 * retcl_random_uniform(rng) - 1);
  ref_gemm(s->op, s->M, s->N, s->K, s->a,
           s->op == RETCL_GEMM_TN ? s->M : s->K, s->b,
           s->op == RETCL_GEMM_NT ? s->K : s->N, s->ref, s->bound);
  return 1;
}

static void free_shapes(void) {
  for (size_t i = 0; i < N_SHAPES; ++i) {
    free(shapes[i].a), free(shapes[i].b), free(shapes[i].ref);
    free(shapes[i].bound);
    shapes[i].a = shapes[i].b = NULL;
    shapes[i].ref = shapes[i].bound = NULL;
  }
}

/* ---- candidates ----------------------------------------------------------- */

/* A record of the gemm family; 0 = the device's default for that key. */
typedef struct candidate {
  long bm, bn, mr, nr, nv, mb; /* cpu pattern */
  long wg, wpt, tk;        /* gpu pattern */
} candidate;

/* The candidate as a RETCL_PARAMS file's text (only the keys it sets). */
static void candidate_json(const candidate *c, int cpu, char *buf, size_t cap) {
  if (cpu)
    snprintf(buf, cap,
             "{\"gemm\": {\"backend\": \"retcl\", \"bm\": %ld, \"bn\": %ld, "
             "\"mr\": %ld, \"nr\": %ld, \"nv\": %ld, \"mb\": %ld}}",
             c->bm, c->bn, c->mr, c->nr, c->nv, c->mb);
  else
    snprintf(buf, cap,
             "{\"gemm\": {\"backend\": \"retcl\", \"wg\": %ld, \"wpt\": %ld, "
             "\"tk\": %ld}}",
             c->wg, c->wpt, c->tk);
}

/* The bounded space, defaults first, then in a seeded random order. */
static size_t make_space(int cpu, candidate **out, uint64_t *rng) {
  static const long bms[] = {16, 32, 64}, bns[] = {32, 64, 128},
                    mrs[] = {2, 4, 6}, nrs[] = {2, 4}, nvs[] = {1, 2, 3},
                    mbs[] = {4, 6, 8};
  static const long wgs[] = {8, 16}, wpts[] = {2, 4, 8}, tks[] = {8, 16, 32};
  size_t n = 0, cap = cpu ? 3 * 3 * 3 * 2 * 3 * 3 : 2 * 3 * 3;
  candidate *c = calloc(cap, sizeof *c);
  if (!c) return 0;
  if (cpu) {
    for (size_t i = 0; i < 3; ++i)
      for (size_t j = 0; j < 3; ++j)
        for (size_t k = 0; k < 3; ++k)
          for (size_t l = 0; l < 2; ++l)
            for (size_t v = 0; v < 3; ++v)
              for (size_t b = 0; b < 3; ++b)
                c[n++] = (candidate){bms[i], bns[j], mrs[k], nrs[l], nvs[v],
                                     mbs[b], 0, 0, 0};
  } else {
    for (size_t i = 0; i < 2; ++i)
      for (size_t j = 0; j < 3; ++j)
        for (size_t k = 0; k < 3; ++k)
          c[n++] = (candidate){0, 0, 0, 0, 0, 0, wgs[i], wpts[j], tks[k]};
  }
  for (size_t i = n - 1; i > 0; --i) { /* Fisher-Yates */
    const size_t j = (size_t)(retcl_random_uniform(rng) * (double)(i + 1));
    const candidate t = c[i];
    c[i] = c[j];
    c[j] = t;
  }
  *out = c;
  return n;
}

/* ---- running one candidate ------------------------------------------------ */

typedef enum outcome { RAN, NO_BUILD, WRONG, FAILED } outcome;

/* A context whose record is `json` (as a RETCL_PARAMS file). */
static retcl_status context_with(const char *platform, const char *device,
                                 const char *json, retcl_context **ctx) {
  char path[] = "/tmp/retcl-tune-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return RETCL_ERROR_IO;
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    remove(path);
    return RETCL_ERROR_IO;
  }
  fputs(json, f);
  fclose(f);
  setenv("RETCL_PARAMS", path, 1);
  const retcl_status st = retcl_context_create(platform, device, ctx);
  unsetenv("RETCL_PARAMS");
  remove(path);
  return st;
}

/* Median seconds of a few runs of one shape, after a checked first run. */
static outcome run_shape(retcl_context *ctx, const tune_shape *s,
                         double *seconds, char *why, size_t cap) {
  cl_context cl = retcl_context_cl_context(ctx);
  cl_command_queue q = retcl_context_queue(ctx);
  cl_int err = CL_SUCCESS;
  const size_t nc = s->M * s->N;
  cl_mem a = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                            a_elems(s) * sizeof(float), s->a, &err);
  cl_mem b = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                            b_elems(s) * sizeof(float), s->b, &err);
  cl_mem c = clCreateBuffer(cl, CL_MEM_READ_WRITE, nc * sizeof(float), NULL,
                            &err);
  float *got = malloc(nc * sizeof *got);
  outcome result = FAILED;
  const size_t lda = s->op == RETCL_GEMM_TN ? s->M : s->K,
               ldb = s->op == RETCL_GEMM_NT ? s->K : s->N;
  if (!a || !b || !c || !got) {
    snprintf(why, cap, "out of memory");
    goto done;
  }
  double times[5];
  for (int r = -1; r < 5; ++r) {
    const double t0 = cli_now();
    retcl_status st = retcl_gemm(ctx, s->op, s->M, s->N, s->K, 1.0f,
                                 retcl_buf(a, 0), lda, retcl_buf(b, 0), ldb,
                                 0.0f, retcl_buf(c, 0), s->N, 0, NULL, NULL);
    if (!st) st = retcl_finish(ctx);
    if (st) {
      snprintf(why, cap, "%s", retcl_last_error(ctx));
      result = st == RETCL_ERROR_BUILD_FAILED ? NO_BUILD : FAILED;
      goto done;
    }
    if (r >= 0) times[r] = cli_now() - t0;
    if (r == -1) { /* the result, before any timing */
      err = clEnqueueReadBuffer(q, c, CL_TRUE, 0, nc * sizeof(float), got, 0,
                                NULL, NULL);
      if (err != CL_SUCCESS) {
        snprintf(why, cap, "clEnqueueReadBuffer: %s", retcl_cl_error_name(err));
        goto done;
      }
      for (size_t i = 0; i < nc; ++i)
        if (!(fabs((double)got[i] - s->ref[i]) <= s->bound[i])) {
          snprintf(why, cap, "%s: c[%zu] = %.9g, reference %.9g", s->what, i,
                   got[i], s->ref[i]);
          result = WRONG;
          goto done;
        }
    }
  }
  for (int i = 1; i < 5; ++i) /* insertion sort of 5 */
    for (int j = i; j > 0 && times[j] < times[j - 1]; --j) {
      const double t = times[j];
      times[j] = times[j - 1];
      times[j - 1] = t;
    }
  *seconds = times[2];
  result = RAN;
done:
  if (a) clReleaseMemObject(a);
  if (b) clReleaseMemObject(b);
  if (c) clReleaseMemObject(c);
  free(got);
  return result;
}

/* Every shape on a context made with `json`; times[] per shape. */
static outcome run_record(const char *platform, const char *device,
                          const char *json, double *times, char *why,
                          size_t cap) {
  retcl_context *ctx = NULL;
  retcl_status st = context_with(platform, device, json, &ctx);
  if (st) {
    snprintf(why, cap, "%s", retcl_last_error(NULL));
    return FAILED;
  }
  outcome o = RAN;
  if ((st = retcl_context_prepare(ctx))) {
    snprintf(why, cap, "%s", retcl_last_error(ctx));
    o = NO_BUILD;
  }
  for (size_t i = 0; o == RAN && i < N_SHAPES; ++i)
    o = run_shape(ctx, &shapes[i], &times[i], why, cap);
  retcl_context_destroy(ctx);
  return o;
}

static double gflops(const tune_shape *s, double seconds) {
  return 2.0 * (double)s->M * (double)s->N * (double)s->K / seconds * 1e-9;
}

/* "90", "90s", "2m", "1h" -> seconds; < 0 if malformed. */
static double parse_budget(const char *text) {
  char *end = NULL;
  const double v = strtod(text, &end);
  if (end == text || !(v > 0)) return -1;
  if (!strcmp(end, "") || !strcmp(end, "s")) return v;
  if (!strcmp(end, "m")) return 60 * v;
  if (!strcmp(end, "h")) return 3600 * v;
  return -1;
}

static int tune_run(int argc, char **argv) {
  const char *platform = NULL, *device = NULL, *family = "gemm",
             *budget_text = "10m", *out_path = "retcl-params.json";
  uint64_t seed = 1;
  const cli_option opts[] = {
      {"platform", CLI_OPT_STRING, &platform},
      {"device", CLI_OPT_STRING, &device},
      {"family", CLI_OPT_STRING, &family},
      {"budget", CLI_OPT_STRING, &budget_text},
      {"out", CLI_OPT_STRING, &out_path},
      {"seed", CLI_OPT_U64, &seed},
  };
  int parsed = cli_parse_options("tune", argc, argv, opts,
                                 sizeof opts / sizeof opts[0]);
  if (parsed == CLI_PARSE_HELP) {
    tune_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (parsed != CLI_PARSE_OK) return CLI_EXIT_USAGE;
  if (strcmp(family, "gemm"))
    return cli_usage_error("tune", "--family %s: only gemm can be tuned yet",
                           family);
  const double budget = parse_budget(budget_text);
  if (budget < 0)
    return cli_usage_error("tune", "--budget %s: give seconds (90, 90s) or "
                           "minutes (2m)", budget_text);

  /* The device's defaults: its access pattern decides the search space. */
  retcl_context *probe = NULL;
  retcl_status st = retcl_context_create(platform, device, &probe);
  if (st) return cli_fail(NULL, st, "creating a context");
  int cpu = 0;
  for (size_t i = 0; i < retcl_param_count(); ++i) {
    retcl_param_info p;
    retcl_param_get(probe, i, &p);
    if (!strcmp(p.family, "gemm") && !strcmp(p.key, "access"))
      cpu = !strcmp(p.value_name, "cpu");
  }
  char desc[512];
  printf("device:  %s\nfamily:  gemm (%s access pattern), budget %.0f s\n",
         cli_device_description(probe, desc, sizeof desc),
         cpu ? "cpu" : "gpu", budget);
  retcl_context_destroy(probe);

  uint64_t rng = seed;
  for (size_t i = 0; i < N_SHAPES; ++i)
    if (!make_reference(&shapes[i], &rng)) {
      free_shapes();
      return cli_error("out of host memory");
    }
  candidate *space = NULL;
  const size_t n_space = make_space(cpu, &space, &rng);
  if (!n_space) {
    free_shapes();
    return cli_error("out of host memory");
  }

  const double start = cli_now();
  char why[8192];
  double base[N_SHAPES], best[N_SHAPES], times[N_SHAPES];
  outcome o = run_record(platform, device, "{\"gemm\": {\"backend\": \"retcl\"}}",
                         base, why, sizeof why);
  if (o != RAN) {
    free(space);
    free_shapes();
    return cli_error("the default record does not run: %s", why);
  }
  double best_total = 0;
  for (size_t i = 0; i < N_SHAPES; ++i) best_total += base[i];
  memcpy(best, base, sizeof best);
  char best_json[512] = "{\"gemm\": {\"backend\": \"retcl\"}}";
  size_t tried = 0, rejected = 0, unbuilt = 0;
  for (size_t c = 0; c < n_space && cli_now() - start < budget; ++c) {
    char json[512];
    candidate_json(&space[c], cpu, json, sizeof json);
    o = run_record(platform, device, json, times, why, sizeof why);
    ++tried;
    if (o == WRONG || o == FAILED) {
      ++rejected;
      fprintf(stderr, "\nrejected %s: %s\n", json, why);
    } else if (o == NO_BUILD) {
      ++unbuilt;
    } else {
      double total = 0;
      for (size_t i = 0; i < N_SHAPES; ++i) total += times[i];
      if (total < best_total) {
        best_total = total;
        memcpy(best, times, sizeof best);
        snprintf(best_json, sizeof best_json, "%s", json);
      }
    }
    double best_rate = 0;
    for (size_t i = 0; i < N_SHAPES; ++i) best_rate += gflops(&shapes[i], best[i]);
    fprintf(stderr, "\r[tune gemm %3zu/%zu %4.0f/%.0f s] best %.1f GFLOP/s "
            "(mean of shapes), %zu rejected, %zu did not build   ",
            tried, n_space, cli_now() - start, budget,
            best_rate / (double)N_SHAPES, rejected, unbuilt);
  }
  fprintf(stderr, "\n");

  /* The speed-up, measured again with the default and the best record
   * interleaved three times (medians): a shared machine's burst during the
   * search must not decide it. */
  double again[2][3][N_SHAPES];
  const char *const records[2] = {"{\"gemm\": {\"backend\": \"retcl\"}}",
                                  best_json};
  for (int r = 0; r < 3; ++r)
    for (int which = 0; which < 2; ++which) {
      const int w = r % 2 ? 1 - which : which;
      if (run_record(platform, device, records[w], again[w][r], why,
                     sizeof why) != RAN) {
        free(space);
        free_shapes();
        return cli_error("re-measuring %s: %s", records[w], why);
      }
    }
  for (size_t i = 0; i < N_SHAPES; ++i)
    for (int w = 0; w < 2; ++w) {
      double t[3] = {again[w][0][i], again[w][1][i], again[w][2][i]};
      for (int x = 1; x < 3; ++x)
        for (int y = x; y > 0 && t[y] < t[y - 1]; --y) {
          const double tmp = t[y];
          t[y] = t[y - 1];
          t[y - 1] = tmp;
        }
      (w ? best : base)[i] = t[1];
    }
  /* The search timed each candidate once; if the re-measurement says the
   * defaults are faster after all, they are what gets written. */
  double base_total = 0, best_again = 0;
  for (size_t i = 0; i < N_SHAPES; ++i) {
    base_total += base[i];
    best_again += best[i];
  }
  const int defaults_win = best_again >= base_total;
  if (defaults_win) {
    memcpy(best, base, sizeof best);
    snprintf(best_json, sizeof best_json, "%s", records[0]);
  }

  FILE *f = fopen(out_path, "w");
  if (!f) {
    free(space);
    free_shapes();
    return cli_error("cannot write %s", out_path);
  }
  fprintf(f, "%s\n", best_json);
  fclose(f);
  printf("\n%-36s %12s %12s %8s   (medians of 3 interleaved runs)\n",
         "shape", "default", "tuned", "speed-up");
  for (size_t i = 0; i < N_SHAPES; ++i)
    printf("%-36s %7.1f GF/s %7.1f GF/s %7.2fx\n", shapes[i].what,
           gflops(&shapes[i], base[i]), gflops(&shapes[i], best[i]),
           base[i] / best[i]);
  printf("\n%zu candidates tried of %zu (%zu rejected as wrong or failing, "
         "%zu did not build) in %.0f s\n%s%s\nwritten to %s: use it with "
         "RETCL_PARAMS=%s\n",
         tried, n_space, rejected, unbuilt, cli_now() - start,
         defaults_win ? "no candidate beat the defaults when measured again; "
                        "record: "
                      : "best record: ",
         best_json, out_path, out_path);
  free(space);
  free_shapes();
  return rejected ? CLI_EXIT_CHECK : CLI_EXIT_OK;
}

const cli_command cli_cmd_tune = {
    "tune", "search a kernel family's parameters on the device; write the "
    "fastest record as a RETCL_PARAMS file",
    tune_run, tune_usage};
