/* cmd_tune.c - `retcl tune`: searches a kernel family's parameters on the
 * chosen device within a time budget. This file is the driver; what it
 * searches, at which shapes and against which reference, is each family's
 * description (tune.h; tune_families.c, tune_model.c). Each candidate
 * record is applied as a RETCL_PARAMS file to a context of its own; a
 * candidate whose output leaves the fp32 error bound of the double
 * reference is rejected and reported before it is ever timed, one that
 * does not build or does not fit the device is passed over. The fastest
 * record is written as a RETCL_PARAMS file, with its speed-up over the
 * device's defaults per shape. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, setenv, fileno */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "tune.h"

/* In the order of `retcl params`; --family all tunes them in this order. */
static const tune_family *const families[] = {
    &tune_family_rotation,    &tune_family_retention, &tune_family_group_norm,
    &tune_family_elementwise, &tune_family_linear,    &tune_family_gemm,
};
#define N_FAMILIES (sizeof families / sizeof families[0])

static void tune_usage(FILE *out) {
  fprintf(out,
          "usage: retcl tune [--family NAME] [--budget 10m] [--out FILE]\n"
          "                  [--platform P] [--device D] [--seed N]\n"
          "\n"
          "Search the parameters of a kernel family on the device within the\n"
          "time budget (\"90s\", \"2m\"; default 10m). Every candidate is checked\n"
          "against a double-precision reference before it is timed (a wrong\n"
          "result is rejected and reported). Writes the fastest record as a\n"
          "RETCL_PARAMS file (default retcl-params.json) and prints its\n"
          "speed-up over the device's defaults per shape. The search starts\n"
          "from the device's built-in record: RETCL_PARAMS is not read.\n"
          "Every family is timed at the shapes of a d 512, H 4 model (Dk =\n"
          "Dv = 128, FFN 1024) in prefill and decoding.\n"
          "\n"
          "  --family NAME   the family to tune (default gemm):\n");
  for (size_t i = 0; i < N_FAMILIES; ++i)
    fprintf(out, "    %-12s  %s\n", families[i]->name, families[i]->about);
  fprintf(out,
          "    %-12s  every family above, one after the other, sharing the\n"
          "                  budget; one file holds all their records\n",
          "all");
}

/* ---- candidates ----------------------------------------------------------- */

enum { PATTERN_GPU = 0, PATTERN_CPU = 1 };
static const char *const pattern_names[2] = {"gpu", "cpu"};

/* One record of a family's search: a member of the grid of `pattern`, or
 * (index -1) the pattern alone with its defaults. */
typedef struct candidate {
  int pattern;
  long index;
} candidate;

static size_t grid_size(const tune_grid *g) {
  size_t n = 1;
  for (size_t a = 0; a < g->n_axes; ++a) n *= g->axes[a].n;
  return n;
}

/* The values of member `index`, first axis outermost (the order of nested
 * loops over the axes). */
static void grid_member(const tune_grid *g, size_t index, long *values) {
  for (size_t a = g->n_axes; a-- > 0;) {
    values[a] = g->axes[a].values[index % g->axes[a].n];
    index /= g->axes[a].n;
  }
}

/* What the tuner knows of the device: where to run, whether stderr shows a
 * live progress bar, and the device's own record (the defaults). */
typedef struct tune_env {
  const char *platform, *device;
  int tty;
  retcl_context *probe;
} tune_env;

/* The device's default for family.key into *value; 0 if the family has
 * no such key. */
static int default_value(const tune_env *env, const char *family,
                         const char *key, long *value) {
  for (size_t i = 0; i < retcl_param_count(); ++i) {
    retcl_param_info p;
    retcl_param_get(env->probe, i, &p);
    if (!strcmp(p.family, family) && !strcmp(p.key, key)) {
      *value = p.value;
      return 1;
    }
  }
  return 0;
}

/* The device's access pattern for the family, or -1 for a family without
 * one (its two grids are the same). */
static int device_pattern(const tune_env *env, const tune_family *f) {
  for (size_t i = 0; i < retcl_param_count(); ++i) {
    retcl_param_info p;
    retcl_param_get(env->probe, i, &p);
    if (!strcmp(p.family, f->name) && !strcmp(p.key, "access"))
      return !strcmp(p.value_name, "cpu") ? PATTERN_CPU : PATTERN_GPU;
  }
  return -1;
}

/* The candidate's object within the family, "{...}" (only the keys it
 * sets; the fixed members first). */
static void record_object(const tune_family *f, const candidate *c, int pin,
                          char *buf, size_t cap) {
  size_t used = (size_t)snprintf(buf, cap, "{%s", f->fixed ? f->fixed : "");
  int members = f->fixed != NULL;
  if (c && pin && used < cap) {
    used += (size_t)snprintf(buf + used, cap - used, "%s\"access\": \"%s\"",
                             members ? ", " : "", pattern_names[c->pattern]);
    members = 1;
  }
  if (c && c->index >= 0) {
    const tune_grid *g = &f->grid[c->pattern];
    long values[TUNE_MAX_AXES];
    grid_member(g, (size_t)c->index, values);
    for (size_t a = 0; a < g->n_axes && used < cap; ++a) {
      used += (size_t)snprintf(buf + used, cap - used, "%s\"%s\": %ld",
                               members ? ", " : "", g->axes[a].key, values[a]);
      members = 1;
    }
  }
  if (used < cap) snprintf(buf + used, cap - used, "}");
}

/* {"family": object}: a RETCL_PARAMS file's text. */
static void record_json(const tune_family *f, const char *object, char *buf,
                        size_t cap) {
  snprintf(buf, cap, "{\"%s\": %s}", f->name, object);
}

static void shuffle(candidate *c, size_t n, uint64_t *rng) {
  for (size_t i = n; i-- > 1;) { /* Fisher-Yates */
    const size_t j = (size_t)(retcl_random_uniform(rng) * (double)(i + 1));
    const candidate t = c[i];
    c[i] = c[j];
    c[j] = t;
  }
}

/* The bounded space, in the order it is tried: the other access pattern
 * with its defaults (one run says whether the device's pattern is the
 * right one), the device's own grid in a seeded random order (so a
 * budget that ends early has sampled all of it), then the other
 * pattern's grid. Members equal to the device's defaults are left out:
 * the defaults are measured anyway. */
static size_t make_space(const tune_env *env, const tune_family *f, int own,
                         uint64_t *rng, candidate **out) {
  const int other = 1 - own;
  const tune_grid *g_own = &f->grid[own], *g_other = &f->grid[other];
  const size_t cap = 1 + grid_size(g_own) + grid_size(g_other);
  candidate *c = calloc(cap, sizeof *c);
  if (!c) return 0;
  size_t n = 0;
  if (f->other_pattern) c[n++] = (candidate){other, -1};
  const size_t first_own = n;
  for (size_t i = 0; g_own->n_axes && i < grid_size(g_own); ++i) {
    long values[TUNE_MAX_AXES];
    grid_member(g_own, i, values);
    int same = 1;
    for (size_t a = 0; a < g_own->n_axes; ++a) {
      long v = 0;
      same &= default_value(env, f->name, g_own->axes[a].key, &v) &&
              values[a] == v;
    }
    if (!same) c[n++] = (candidate){own, (long)i};
  }
  shuffle(c + first_own, n - first_own, rng);
  if (f->other_pattern && g_other->n_axes) {
    const size_t first_other = n;
    for (size_t i = 0; i < grid_size(g_other); ++i)
      c[n++] = (candidate){other, (long)i};
    shuffle(c + first_other, n - first_other, rng);
  }
  *out = c;
  return n;
}

/* ---- running one record --------------------------------------------------- */

typedef enum outcome { RAN, UNUSABLE, WRONG, FAILED } outcome;

/* A call that failed: a program that does not build, or a launch beyond
 * the device's limits (a work-group too large for a kernel, too much local
 * memory), makes the candidate unusable on this device, not wrong. */
static outcome failed_call(retcl_status st) {
  return st == RETCL_ERROR_BUILD_FAILED || st == RETCL_ERROR_INVALID_SIZE
             ? UNUSABLE
             : FAILED;
}

/* A context whose record is `json` (as a RETCL_PARAMS file). */
static retcl_status context_with(const tune_env *env, const char *json,
                                 retcl_context **ctx) {
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
  const retcl_status st = retcl_context_create(env->platform, env->device, ctx);
  unsetenv("RETCL_PARAMS");
  remove(path);
  return st;
}

enum { SAMPLES = 5, MAX_REPS = 1000 };
/* A timed sample repeats a short op until it lasts this long, so that
 * the clock's resolution and the launch of the timing itself do not
 * decide between candidates (GEMMs take longer than this once). */
#define MIN_SAMPLE_S 5e-3

static void sort(double *t, size_t n) {
  for (size_t i = 1; i < n; ++i)
    for (size_t j = i; j > 0 && t[j] < t[j - 1]; --j) {
      const double x = t[j];
      t[j] = t[j - 1];
      t[j - 1] = x;
    }
}

/* Shape i on a record's context: one checked run, then the median of
 * SAMPLES timed samples of reps[i] runs each. `calibrate` (the defaults'
 * first measurement) sets reps[i] from the time of one run. */
static outcome run_shape(const tune_family *f, retcl_context *ctx, void *inst,
                         size_t i, size_t *reps, int calibrate,
                         double *seconds, char *why, size_t cap) {
  retcl_status st = f->run(inst, i);
  if (!st) st = retcl_finish(ctx);
  if (st) {
    snprintf(why, cap, "%s: %s", f->shapes[i].what, retcl_last_error(ctx));
    return failed_call(st);
  }
  /* The result, before any timing. */
  const tune_verdict v = f->check(inst, i, why, cap);
  if (v != TUNE_RIGHT) return v == TUNE_WRONG ? WRONG : FAILED;
  if (calibrate) {
    const double t0 = cli_now();
    st = f->run(inst, i);
    if (!st) st = retcl_finish(ctx);
    const double t = cli_now() - t0;
    reps[i] = t >= MIN_SAMPLE_S ? 1
              : t * MAX_REPS <= MIN_SAMPLE_S
                  ? MAX_REPS
                  : (size_t)ceil(MIN_SAMPLE_S / t);
  }
  double times[SAMPLES];
  for (int s = 0; s < SAMPLES && !st; ++s) {
    const double t0 = cli_now();
    for (size_t r = 0; r < reps[i] && !st; ++r) st = f->run(inst, i);
    if (!st) st = retcl_finish(ctx);
    times[s] = (cli_now() - t0) / (double)reps[i];
  }
  if (st) {
    snprintf(why, cap, "%s: %s", f->shapes[i].what, retcl_last_error(ctx));
    return failed_call(st);
  }
  sort(times, SAMPLES);
  *seconds = times[SAMPLES / 2];
  return RAN;
}

/* Every shape of the family on a context made with `json`; times[] per
 * shape. */
static outcome run_record(const tune_env *env, const tune_family *f,
                          const char *json, size_t *reps, int calibrate,
                          double *times, char *why, size_t cap) {
  retcl_context *ctx = NULL;
  retcl_status st = context_with(env, json, &ctx);
  if (st) {
    snprintf(why, cap, "%s", retcl_last_error(NULL));
    return FAILED;
  }
  void *inst = NULL;
  outcome o = RAN;
  if ((st = f->open(ctx, &inst, why, cap))) o = failed_call(st);
  for (size_t i = 0; o == RAN && i < f->n_shapes; ++i)
    o = run_shape(f, ctx, inst, i, reps, calibrate, &times[i], why, cap);
  if (inst) f->close(inst);
  retcl_context_destroy(ctx);
  return o;
}

/* How much faster than `base` the times are over the family's shapes: the
 * geometric mean of the per-shape ratios, so each shape counts the same,
 * a 50 µs decode step as much as a 5 ms prefill. */
static double speedup(const tune_family *f, const double *base,
                      const double *times) {
  double log_sum = 0;
  for (size_t i = 0; i < f->n_shapes; ++i) log_sum += log(base[i] / times[i]);
  return exp(log_sum / (double)f->n_shapes);
}

/* "  12.3 GF/s" or "   1.234 ms": a table cell, 12 characters. */
static const char *rate(const tune_family *f, size_t i, double seconds,
                        char *buf, size_t cap) {
  if (f->unit)
    snprintf(buf, cap, "%7.1f %s", f->shapes[i].work / seconds * 1e-9,
             f->unit);
  else
    snprintf(buf, cap, "%9.3f ms", seconds * 1e3);
  return buf;
}

/* ---- the search of one family --------------------------------------------- */

typedef struct search {
  size_t tried, n_space, rejected, unusable;
  double start, budget, best;
} search;

/* The progress bar: elapsed budget or candidates tried, whichever is
 * further along. Redrawn in place on a terminal; in a log, drawn once when
 * the search ends. */
static void progress(const tune_env *env, const tune_family *f,
                     const search *s, int done) {
  if (!env->tty && !done) return;
  enum { WIDTH = 24 };
  double frac = s->budget > 0 ? (cli_now() - s->start) / s->budget : 1;
  if (s->n_space && (double)s->tried / (double)s->n_space > frac)
    frac = (double)s->tried / (double)s->n_space;
  if (done || frac > 1) frac = 1;
  char bar[WIDTH + 1];
  for (int i = 0; i < WIDTH; ++i) bar[i] = i < frac * WIDTH ? '#' : '.';
  bar[WIDTH] = '\0';
  fprintf(stderr,
          "%s[%s] tune %s: %zu/%zu tried, %.0f/%.0f s, best %.2fx the "
          "defaults, %zu rejected, %zu unusable   %s",
          env->tty ? "\r" : "", bar, f->name, s->tried, s->n_space,
          cli_now() - s->start, s->budget, s->best, s->rejected, s->unusable,
          done ? "\n" : "");
  fflush(stderr);
}

enum { MAX_SHAPES = 8 };

/* The default record and the search's best, interleaved three times (the
 * medians per shape into base and tuned): a shared machine's burst during
 * the search must not decide the speed-up. When the search found nothing
 * better, only the defaults are run and tuned is base. */
static int remeasure(const tune_env *env, const tune_family *f,
                     const char *defaults_json, const char *best_json,
                     size_t *reps, double *base, double *tuned,
                     char *why, size_t cap) {
  const int both = strcmp(best_json, defaults_json) != 0;
  const char *const records[2] = {defaults_json, best_json};
  double again[2][3][MAX_SHAPES];
  for (int r = 0; r < 3; ++r)
    for (int which = 0; which < 1 + both; ++which) {
      const int w = r % 2 && both ? 1 - which : which;
      if (run_record(env, f, records[w], reps, 0, again[w][r], why,
                     cap) != RAN)
        return 0;
    }
  for (size_t i = 0; i < f->n_shapes; ++i)
    for (int w = 0; w < 2; ++w) {
      const int from = both ? w : 0;
      double t[3] = {again[from][0][i], again[from][1][i], again[from][2][i]};
      sort(t, 3);
      (w ? tuned : base)[i] = t[1];
    }
  return 1;
}

static void print_table(const tune_family *f, const double *base,
                        const double *tuned) {
  int width = 36;
  for (size_t i = 0; i < f->n_shapes; ++i)
    if ((int)strlen(f->shapes[i].what) > width)
      width = (int)strlen(f->shapes[i].what);
  printf("\n%-*s %12s %12s %8s   (medians of 3 interleaved runs)\n", width,
         "shape", "default", "tuned", "speed-up");
  for (size_t i = 0; i < f->n_shapes; ++i) {
    char a[32], b[32];
    printf("%-*s %s %s %7.2fx\n", width, f->shapes[i].what,
           rate(f, i, base[i], a, sizeof a), rate(f, i, tuned[i], b, sizeof b),
           base[i] / tuned[i]);
  }
}

/* Search family f within budget seconds, print its table, and put its
 * record's object into best (for the file), setting *found. Returns an
 * exit code: 3 also when a candidate was rejected (the record found is
 * still good: a rejected one never wins). */
static int tune_one(const tune_env *env, const tune_family *f, double budget,
                    uint64_t seed, char *best, size_t best_cap, int *found) {
  *found = 0;
  const int pattern = device_pattern(env, f);
  const int own = pattern < 0 ? PATTERN_CPU : pattern;
  if (pattern >= 0)
    printf("family:  %s (%s access pattern), budget %.0f s\n", f->name,
           pattern_names[own], budget);
  else
    printf("family:  %s, budget %.0f s\n", f->name, budget);
  fflush(stdout);
  if (f->n_shapes > MAX_SHAPES)
    return cli_error("%s: more than %d shapes", f->name, (int)MAX_SHAPES);

  int rc = CLI_EXIT_OK;
  char why[8192];
  candidate *space = NULL;
  search s = {0, 0, 0, 0, cli_now(), budget, 1.0};
  uint64_t rng = seed;
  if (!f->setup(&rng, why, sizeof why)) {
    rc = cli_error("%s: %s", f->name, why);
    goto done;
  }
  s.n_space = make_space(env, f, own, &rng, &space);
  if (!space) {
    rc = cli_error("out of host memory");
    goto done;
  }

  /* The defaults first: they decide each shape's repetitions, and every
   * candidate is measured against them. Measured twice, the first time to
   * set the repetitions: a process's first runs are slower (the driver's
   * threads and caches warming up), and a slow base would make every
   * candidate look like a gain. */
  size_t reps[MAX_SHAPES];
  double base[MAX_SHAPES], times[MAX_SHAPES], tuned[MAX_SHAPES];
  char defaults[256], defaults_json[512], best_json[512], json[512];
  record_object(f, NULL, 0, defaults, sizeof defaults);
  record_json(f, defaults, defaults_json, sizeof defaults_json);
  snprintf(best, best_cap, "%s", defaults);
  snprintf(best_json, sizeof best_json, "%s", defaults_json);
  outcome o = run_record(env, f, defaults_json, reps, 1, base, why, sizeof why);
  if (o == RAN)
    o = run_record(env, f, defaults_json, reps, 0, base, why, sizeof why);
  if (o == WRONG) {
    cli_error("%s: the device's default record computes a wrong result: %s",
              f->name, why);
    rc = CLI_EXIT_CHECK;
    goto done;
  }
  if (o != RAN) {
    rc = cli_error("%s: the default record does not run: %s", f->name, why);
    goto done;
  }

  for (size_t c = 0; c < s.n_space && cli_now() - s.start < budget; ++c) {
    char object[256];
    record_object(f, &space[c], f->pin_access || space[c].pattern != own,
                  object, sizeof object);
    record_json(f, object, json, sizeof json);
    o = run_record(env, f, json, reps, 0, times, why, sizeof why);
    ++s.tried;
    if (o == WRONG || o == FAILED) {
      ++s.rejected;
      fprintf(stderr, "%srejected %s: %s\n", env->tty ? "\n" : "", json, why);
    } else if (o == UNUSABLE) {
      ++s.unusable;
    } else {
      const double x = speedup(f, base, times);
      if (x > s.best) {
        s.best = x;
        snprintf(best, best_cap, "%s", object);
        snprintf(best_json, sizeof best_json, "%s", json);
      }
    }
    progress(env, f, &s, 0);
  }
  progress(env, f, &s, 1);

  if (!remeasure(env, f, defaults_json, best_json, reps, base, tuned, why,
                 sizeof why)) {
    rc = cli_error("re-measuring %s: %s", best_json, why);
    goto done;
  }
  /* The search timed each candidate once; if the re-measurement says the
   * defaults are faster after all, they are what gets written. */
  const int defaults_win = !strcmp(best_json, defaults_json) ||
                           speedup(f, base, tuned) <= 1.0;
  if (defaults_win) {
    memcpy(tuned, base, sizeof tuned);
    snprintf(best, best_cap, "%s", defaults);
    snprintf(best_json, sizeof best_json, "%s", defaults_json);
  }
  print_table(f, base, tuned);
  printf("\n%zu candidates tried of %zu (%zu rejected as wrong or failing, "
         "%zu did not build or fit the device) in %.0f s\n%s%s\n",
         s.tried, s.n_space, s.rejected, s.unusable, cli_now() - s.start,
         defaults_win ? "no candidate beat the defaults when measured again; "
                        "record: "
                      : "best record: ",
         best_json);
  fflush(stdout);
  *found = 1;
  if (s.rejected) rc = CLI_EXIT_CHECK;
done:
  free(space);
  f->teardown();
  return rc;
}

/* ---- the command ---------------------------------------------------------- */

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
  const tune_family *chosen[N_FAMILIES];
  size_t n_chosen = 0;
  for (size_t i = 0; i < N_FAMILIES; ++i)
    if (!strcmp(family, "all") || !strcmp(family, families[i]->name))
      chosen[n_chosen++] = families[i];
  if (!n_chosen)
    return cli_usage_error("tune",
                           "--family %s: not a family retcl tune searches "
                           "(rotation, retention, group_norm, elementwise, "
                           "linear, gemm, or all)",
                           family);
  const double budget = parse_budget(budget_text);
  if (budget < 0)
    return cli_usage_error("tune", "--budget %s: give seconds (90, 90s) or "
                           "minutes (2m)", budget_text);

  /* Every candidate is a change to the device's own record, so a
   * RETCL_PARAMS the user has set must not sit under them. */
  const char *user_params = getenv("RETCL_PARAMS");
  if (user_params && *user_params)
    fprintf(stderr, "retcl tune: RETCL_PARAMS=%s is not read: the search "
            "starts from the device's built-in record\n", user_params);
  unsetenv("RETCL_PARAMS");

  tune_env env = {platform, device, isatty(fileno(stderr)), NULL};
  retcl_status st = retcl_context_create(platform, device, &env.probe);
  if (st) return cli_fail(NULL, st, "creating a context");
  char desc[512];
  printf("device:  %s\n", cli_device_description(env.probe, desc, sizeof desc));
  if (n_chosen > 1)
    printf("budget:  %.0f s shared by %zu families\n", budget, n_chosen);

  /* Each family's budget is what is left, shared by the families still to
   * come: one that exhausts its space early leaves its time to the rest. */
  const double start = cli_now();
  char objects[N_FAMILIES][256];
  int found[N_FAMILIES] = {0}, rc = CLI_EXIT_OK;
  for (size_t i = 0; i < n_chosen; ++i) {
    if (n_chosen > 1) printf("\n");
    double share = (budget - (cli_now() - start)) / (double)(n_chosen - i);
    if (share < 0) share = 0;
    const int r = tune_one(&env, chosen[i], share, seed, objects[i],
                           sizeof objects[i], &found[i]);
    if (r != CLI_EXIT_OK && rc != CLI_EXIT_ERROR) rc = r;
  }
  retcl_context_destroy(env.probe);

  size_t written = 0;
  for (size_t i = 0; i < n_chosen; ++i) written += (size_t)found[i];
  if (!written) return rc;
  FILE *f = fopen(out_path, "w");
  if (!f) return cli_error("cannot write %s", out_path);
  if (n_chosen == 1) {
    char json[512];
    record_json(chosen[0], objects[0], json, sizeof json);
    fprintf(f, "%s\n", json);
  } else {
    /* One family per line, ready to paste into a contribution. */
    fprintf(f, "{");
    for (size_t i = 0, k = 0; i < n_chosen; ++i)
      if (found[i])
        fprintf(f, "%s\n  \"%s\": %s", k++ ? "," : "", chosen[i]->name,
                objects[i]);
    fprintf(f, "\n}\n");
  }
  if (fclose(f) != 0) return cli_error("cannot write %s", out_path);
  printf("written to %s: use it with RETCL_PARAMS=%s\n", out_path, out_path);
  return rc;
}

const cli_command cli_cmd_tune = {
    "tune", "search a kernel family's parameters on the device; write the "
    "fastest record as a RETCL_PARAMS file",
    tune_run, tune_usage};
