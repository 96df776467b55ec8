/* cli.c - helpers shared by the `retcl` subcommands (see cli.h). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under strict C11 */

#include "cli.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *cli_program = "retcl";

int cli_fail(const retcl_context *ctx, retcl_status status, const char *what) {
  const char *detail = retcl_last_error(ctx);
  fflush(stdout); /* keep the order of a combined stdout+stderr log */
  if (detail && *detail)
    fprintf(stderr, "%s: error: %s: %s: %s\n", cli_program, what,
            retcl_status_string(status), detail);
  else
    fprintf(stderr, "%s: error: %s: %s\n", cli_program, what,
            retcl_status_string(status));
  return CLI_EXIT_ERROR;
}

int cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fflush(stdout);
  fprintf(stderr, "%s: error: ", cli_program);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return CLI_EXIT_ERROR;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fflush(stdout);
  fprintf(stderr, "%s %s: ", cli_program, cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nTry '%s help %s'.\n", cli_program, cmd);
  va_end(ap);
  return CLI_EXIT_USAGE;
}

int cli_cl_error(const char *call, int err) {
  return cli_error("%s failed: %s (%d)", call, retcl_cl_error_name(err), err);
}

static const cli_option *find_option(const char *name, size_t len,
                                     const cli_option *opts, size_t nopts) {
  for (size_t i = 0; i < nopts; ++i)
    if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
      return &opts[i];
  return NULL;
}

/* Strict decimal: no sign, no trailing junk, no overflow. */
static int parse_u64(const char *s, uint64_t *out) {
  if (!s || *s < '0' || *s > '9') return 0;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return 0;
  *out = (uint64_t)v;
  return 1;
}

int cli_parse_options(const char *cmd, int argc, char **argv,
                      const cli_option *opts, size_t nopts) {
  for (int i = 1; i < argc; ++i) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
      return CLI_PARSE_HELP;
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
      cli_usage_error(cmd, "unexpected argument '%s'", arg);
      return CLI_PARSE_ERROR;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const cli_option *opt = find_option(name, len, opts, nopts);
    if (!opt) {
      cli_usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
      return CLI_PARSE_ERROR;
    }
    if (opt->kind == CLI_OPT_FLAG) {
      if (eq) {
        cli_usage_error(cmd, "option '--%s' takes no value", opt->name);
        return CLI_PARSE_ERROR;
      }
      *(int *)opt->target = 1;
      continue;
    }
    const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!value) {
      cli_usage_error(cmd, "option '--%s' needs a value", opt->name);
      return CLI_PARSE_ERROR;
    }
    uint64_t v = 0;
    switch (opt->kind) {
      case CLI_OPT_STRING: *(const char **)opt->target = value; break;
      case CLI_OPT_SIZE:
        if (!parse_u64(value, &v) || v > (uint64_t)SIZE_MAX) {
          cli_usage_error(cmd,
                          "option '--%s' wants a non-negative integer, "
                          "not '%s'",
                          opt->name, value);
          return CLI_PARSE_ERROR;
        }
        *(size_t *)opt->target = (size_t)v;
        break;
      case CLI_OPT_U64:
        if (!parse_u64(value, &v)) {
          cli_usage_error(cmd,
                          "option '--%s' wants a non-negative integer, "
                          "not '%s'",
                          opt->name, value);
          return CLI_PARSE_ERROR;
        }
        *(uint64_t *)opt->target = v;
        break;
      case CLI_OPT_DOUBLE: {
        /* strtod would also take "nan", "inf" and hex floats; a finite
         * decimal is all any option wants. */
        errno = 0;
        char *end = NULL;
        double d = strtod(value, &end);
        if (!*value || errno || *end || !isfinite(d)) {
          cli_usage_error(cmd, "option '--%s' wants a number, not '%s'",
                          opt->name, value);
          return CLI_PARSE_ERROR;
        }
        *(double *)opt->target = d;
        break;
      }
      case CLI_OPT_LIST: {
        cli_strings *list = opt->target;
        const char **more =
            realloc(list->items, (list->count + 1) * sizeof *more);
        if (!more) {
          cli_error("out of host memory for option '--%s'", opt->name);
          return CLI_PARSE_ERROR;
        }
        more[list->count++] = value;
        list->items = more;
        break;
      }
      case CLI_OPT_FLAG: break;
    }
  }
  return CLI_PARSE_OK;
}

void cli_strings_free(cli_strings *list) {
  if (!list) return;
  free(list->items);
  list->items = NULL;
  list->count = 0;
}

int cli_parse_tokens(const char *cmd, const char *opt, const char *list,
                     int32_t **tokens, size_t *count) {
  *tokens = NULL;
  *count = 0;
  if (!*list) return cli_usage_error(cmd, "--%s is empty", opt);
  size_t n = 1;
  for (const char *p = list; *p; ++p) n += *p == ',';
  int32_t *t = malloc(n * sizeof *t);
  if (!t) return cli_error("out of host memory for %zu tokens", n);
  const char *item = list;
  for (size_t i = 0; i < n; ++i) {
    size_t len = strcspn(item, ",");
    /* Digits only: no sign, no spaces, no empty items ("5,,3"). */
    int ok = len > 0 && len <= 10;
    uint64_t v = 0;
    for (size_t j = 0; ok && j < len; ++j) {
      if (item[j] < '0' || item[j] > '9')
        ok = 0;
      else
        v = v * 10 + (uint64_t)(item[j] - '0');
    }
    if (!ok || v > INT32_MAX) {
      free(t);
      return cli_usage_error(cmd,
                             "--%s: item %zu is '%.*s', not a token id (a "
                             "non-negative integer below 2^31)",
                             opt, i + 1, (int)len, item);
    }
    t[i] = (int32_t)v;
    item += len + 1;
  }
  *tokens = t;
  *count = n;
  return CLI_EXIT_OK;
}

static const struct {
  const char *name;
  retcl_algorithm algo;
} algorithm_names[] = {{"parallel", RETCL_ALGO_PARALLEL},
                       {"chunkwise", RETCL_ALGO_CHUNKWISE},
                       {"recurrent", RETCL_ALGO_RECURRENT}};

int cli_parse_algorithm(const char *name, retcl_algorithm *algo) {
  for (size_t i = 0; i < 3; ++i)
    if (strcmp(name, algorithm_names[i].name) == 0) {
      *algo = algorithm_names[i].algo;
      return 1;
    }
  return 0;
}

const char *cli_algorithm_name(retcl_algorithm algo) {
  for (size_t i = 0; i < 3; ++i)
    if (algorithm_names[i].algo == algo) return algorithm_names[i].name;
  return "?";
}

void cli_generate_options_init(cli_generate_options *o) {
  memset(o, 0, sizeof *o);
  o->mode = "chunkwise";
  o->seed = 1;
  o->max_new = SIZE_MAX;   /* "not given" */
  o->end_token = SIZE_MAX; /* none */
}

void cli_generate_option_rows(cli_generate_options *o,
                              cli_option rows[CLI_GENERATE_OPTION_COUNT]) {
  const cli_option shared[CLI_GENERATE_OPTION_COUNT] = {
      {"max-new", CLI_OPT_SIZE, &o->max_new},
      {"end-token", CLI_OPT_SIZE, &o->end_token},
      {"temperature", CLI_OPT_DOUBLE, &o->temperature},
      {"top-k", CLI_OPT_SIZE, &o->top_k},
      {"seed", CLI_OPT_U64, &o->seed},
      {"mode", CLI_OPT_STRING, &o->mode},
      {"chunk", CLI_OPT_SIZE, &o->chunk},
      {"weights", CLI_OPT_STRING, &o->weights},
      {"device", CLI_OPT_STRING, &o->device},
      {"platform", CLI_OPT_STRING, &o->platform},
  };
  memcpy(rows, shared, sizeof shared);
}

int cli_generate_options_check(const char *cmd, const cli_generate_options *o,
                               const char *modes, retcl_storage *storage,
                               retcl_algorithm *algo) {
  if (o->max_new == SIZE_MAX)
    return cli_usage_error(cmd, "--max-new N is required");
  /* The sampler takes a float: 1e300 would become inf there. */
  if (o->temperature < 0.0 || o->temperature > FLT_MAX)
    return cli_usage_error(cmd,
                           "--temperature must be 0 (greedy) or positive, "
                           "not %g",
                           o->temperature);
  if (!cli_parse_storage(o->weights, storage))
    return cli_usage_error(cmd, "--weights is f32, f16, bf16 or keep, not '%s'",
                           o->weights);
  if (!cli_parse_algorithm(o->mode, algo))
    return cli_usage_error(cmd, "--mode is %s, not '%s'", modes, o->mode);
  return CLI_EXIT_OK;
}

int cli_generate_check_end_token(const char *cmd,
                                 const cli_generate_options *o) {
  if (o->end_token != SIZE_MAX && o->end_token > INT32_MAX)
    return cli_usage_error(
        cmd, "--end-token %zu is not a token id (below 2^31)", o->end_token);
  return CLI_EXIT_OK;
}

void cli_print_sampling(const cli_generate_options *o) {
  if (o->temperature == 0.0)
    printf(", greedy");
  else
    printf(", temperature %g, top-k %zu%s, seed %llu", o->temperature,
           o->top_k, o->top_k ? "" : " (all)", (unsigned long long)o->seed);
}

const char *cli_device_description(const retcl_context *ctx, char *buf,
                                   size_t cap) {
  cl_device_id dev = retcl_context_device(ctx);
  cl_platform_id plat = NULL;
  char name[256] = "", pname[256] = "", version[256] = "", driver[256] = "";
  clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_VERSION, sizeof version, version, NULL);
  clGetDeviceInfo(dev, CL_DRIVER_VERSION, sizeof driver, driver, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_PLATFORM, sizeof plat, &plat, NULL);
  if (plat)
    clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof pname, pname, NULL);
  snprintf(buf, cap, "%s (%s), %s, driver %s", name, pname, version, driver);
  return buf;
}

const char *cli_model_description(const retcl_model_config *c, char *buf,
                                  size_t cap) {
  const size_t H = c->heads ? c->heads : 1;
  int n = snprintf(buf, cap,
                   "d %zu, dv %zu, %zu heads (Dk %zu, Dv %zu), ffn %zu, "
                   "%zu layers, vocab %zu, %s, chunk %zu",
                   c->embed_dim, c->value_embed_dim, c->heads,
                   c->embed_dim / H, c->value_embed_dim / H, c->ffn_dim,
                   c->layers, c->vocab_size,
                   c->activation == RETCL_ACT_SWISH ? "swish" : "gelu",
                   c->chunk_size);
  /* Only the features that are on: the defaults need no words. */
  const struct {
    int on;
    const char *what;
  } extra[] = {{c->deepnorm, "deepnorm"},
               {c->share_embed, "tied embeddings"},
               {c->layernorm_embedding, "embedding norm"},
               {!c->no_scale_embedding, "scaled embedding"}};
  for (size_t i = 0; i < sizeof extra / sizeof extra[0]; ++i)
    if (extra[i].on && n >= 0 && (size_t)n < cap)
      n += snprintf(buf + n, cap - (size_t)n, ", %s", extra[i].what);
  return buf;
}

int cli_parse_storage(const char *s, retcl_storage *out) {
  static const struct {
    const char *name;
    retcl_storage storage;
  } names[] = {{"f32", RETCL_STORAGE_F32},
               {"f16", RETCL_STORAGE_F16},
               {"bf16", RETCL_STORAGE_BF16},
               {"keep", RETCL_STORAGE_KEEP}};
  if (!s) {
    *out = RETCL_STORAGE_F32;
    return 1;
  }
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
    if (strcmp(s, names[i].name) == 0) {
      *out = names[i].storage;
      return 1;
    }
  return 0;
}

const char *cli_dtype_name(retcl_dtype t) {
  return t == RETCL_DTYPE_F16 ? "f16" : t == RETCL_DTYPE_BF16 ? "bf16" : "f32";
}

int cli_open_model(const char *platform, const char *device, const char *dir,
                   retcl_context **ctx, retcl_model **model, double *load_s) {
  return cli_open_model_as(platform, device, dir, RETCL_STORAGE_F32, ctx,
                           model, load_s);
}

int cli_open_model_as(const char *platform, const char *device,
                      const char *dir, retcl_storage storage,
                      retcl_context **ctx, retcl_model **model,
                      double *load_s) {
  *ctx = NULL;
  *model = NULL;
  retcl_status st = retcl_context_create(platform, device, ctx);
  if (st != RETCL_SUCCESS)
    return cli_fail(NULL, st, "cannot create a RetCL context");
  double t0 = cli_now();
  st = retcl_model_load_as(*ctx, dir, storage, model);
  if (st != RETCL_SUCCESS) {
    int rc = cli_fail(*ctx, st, "cannot load the model");
    retcl_context_destroy(*ctx);
    *ctx = NULL;
    return rc;
  }
  *load_s = cli_now() - t0;
  return CLI_EXIT_OK;
}

void cli_close_model(retcl_context *ctx, retcl_model *model) {
  retcl_model_destroy(model); /* its buffers belong to ctx */
  retcl_context_destroy(ctx);
}

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_rng_seed(cli_rng *rng, uint64_t seed) { rng->state = seed; }

float cli_rng_uniform(cli_rng *rng, float lo, float hi) {
  /* Top 24 bits: exactly representable in a float, so u < 1 always. */
  float u = (float)(retcl_random_next(&rng->state) >> 40) * (1.0f / 16777216.0f);
  return lo + (hi - lo) * u;
}

const char *cli_format_bytes(uint64_t bytes, char *buf, size_t cap) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)bytes;
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  if (u == 0 || v == (double)(uint64_t)v)
    snprintf(buf, cap, "%.0f %s", v, units[u]);
  else
    snprintf(buf, cap, "%.1f %s", v, units[u]);
  return buf;
}

int cli_text_tokens(const char *cmd, const char *opt, const char *text,
                    int32_t **tokens, size_t *count) {
  const size_t n = strlen(text);
  if (!n) return cli_usage_error(cmd, "--%s is empty", opt);
  int32_t *t = malloc(n * sizeof *t);
  if (!t) return cli_error("out of memory");
  for (size_t i = 0; i < n; ++i) t[i] = (unsigned char)text[i];
  *tokens = t;
  *count = n;
  return CLI_EXIT_OK;
}

void cli_print_text(FILE *out, const int32_t *tokens, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const int c = tokens[i];
    if (c == '\n' || c == '\t' || (c >= 32 && c < 127))
      fputc(c, out);
    else
      fprintf(out, "\\x%02X", (unsigned)c & 0xFFu);
  }
}

/* Positions listed by cli_print_run_result; longer inputs show both ends. */
#define RUN_LIST_MAX 20

static size_t argmax(const float *x, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

void cli_print_run_result(const int32_t *tok, size_t T, const float *logits,
                          size_t V, int text) {
  printf("\n%5s %8s %13s %12s\n", "pos", "token", "next (argmax)", "logit");
  for (size_t t = 0; t < T; ++t) {
    if (T > RUN_LIST_MAX && t == RUN_LIST_MAX / 2) {
      printf("%5s (%zu positions not shown; --logits FILE saves all)\n", "...",
             T - RUN_LIST_MAX);
      t = T - RUN_LIST_MAX / 2;
    }
    const float *row = logits + t * V;
    size_t best = argmax(row, V);
    printf("%5zu %8d %13zu %12.5f\n", t, (int)tok[t], best, (double)row[best]);
  }
  if (text) {
    /* What the model expects after each prefix, as text. */
    printf("\n%-9s ", "text:");
    cli_print_text(stdout, tok, T);
    printf("\n%-9s ", "next:");
    for (size_t t = 0; t < T; ++t) {
      const int32_t best = (int32_t)argmax(logits + t * V, V);
      cli_print_text(stdout, &best, 1);
    }
    putchar('\n');
  }
}

const cli_command *cli_find_command(const cli_command *const *commands,
                                    size_t count, const char *name) {
  for (size_t i = 0; i < count; ++i)
    if (strcmp(commands[i]->name, name) == 0) return commands[i];
  return NULL;
}
