/* testutil.c - see testutil.h. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen, setenv, strdup */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

retcl_status tu_context_with_params(const char *json, retcl_context **out) {
  char path[] = "/tmp/retcl-params-XXXXXX";
  const int fd = mkstemp(path);
  ck_assert_msg(fd >= 0, "mkstemp failed");
  FILE *f = fdopen(fd, "w");
  ck_assert_ptr_nonnull(f);
  fputs(json, f);
  fclose(f);
  const char *old = getenv("RETCL_PARAMS");
  char *saved = old ? strdup(old) : NULL;
  setenv("RETCL_PARAMS", path, 1);
  *out = NULL;
  const retcl_status st = retcl_context_create(NULL, NULL, out);
  if (saved)
    setenv("RETCL_PARAMS", saved, 1);
  else
    unsetenv("RETCL_PARAMS");
  free(saved);
  remove(path);
  return st;
}

retcl_context *tu_context(void) {
  retcl_context *ctx = NULL;
  retcl_status st = retcl_context_create(NULL, NULL, &ctx);
  ck_assert_msg(st == RETCL_SUCCESS, "retcl_context_create: %s: %s",
                retcl_status_string(st), retcl_last_error(NULL));
  return ctx;
}

static uint64_t rng_state, seed_used;

uint64_t tu_seed(void) {
  if (!seed_used) {
    const char *env = getenv("RETCL_TEST_SEED");
    uint64_t s = env ? strtoull(env, NULL, 10) : 0;
    if (!s) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      s = (uint64_t)ts.tv_sec * 1000000007ull + (uint64_t)ts.tv_nsec;
    }
    tu_rng_init(s);
  }
  return seed_used;
}

void tu_rng_init(uint64_t seed) {
  seed_used = seed ? seed : 1;
  rng_state = seed_used;
}

/* The library's one generator, on the suite's state. */
uint64_t *tu_rng(void) {
  if (!seed_used) tu_seed();
  return &rng_state;
}

double tu_uniform(double lo, double hi) {
  return lo + (hi - lo) * retcl_random_uniform(tu_rng());
}

void tu_fill_uniform(float *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; ++i) x[i] = (float)tu_uniform(lo, hi);
}

retcl_model_config tu_model_config(size_t d, size_t dv, size_t heads,
                                   size_t ffn, size_t layers, size_t vocab) {
  retcl_model_config c;
  retcl_model_config_default(&c);
  c.embed_dim = d;
  c.value_embed_dim = dv;
  c.heads = heads;
  c.ffn_dim = ffn;
  c.layers = layers;
  c.vocab_size = vocab;
  c.chunk_size = 8;
  return c;
}

cl_mem tu_upload(retcl_context *ctx, const float *host, size_t n) {
  cl_int err = CL_SUCCESS;
  cl_mem m = clCreateBuffer(retcl_context_cl_context(ctx), CL_MEM_READ_WRITE,
                            n * sizeof(float), NULL, &err);
  ck_assert_msg(m != NULL, "clCreateBuffer(%zu floats): %d", n, err);
  float *tmp = NULL;
  if (!host) {
    tmp = tu_alloc(n);
    for (size_t i = 0; i < n; ++i) tmp[i] = NAN;
    host = tmp;
  }
  err = clEnqueueWriteBuffer(retcl_context_queue(ctx), m, CL_TRUE, 0,
                             n * sizeof(float), host, 0, NULL, NULL);
  ck_assert_int_eq(err, CL_SUCCESS);
  free(tmp);
  return m;
}

cl_mem tu_poisoned(retcl_context *ctx, size_t n) {
  return tu_upload(ctx, NULL, n);
}

void tu_download(retcl_context *ctx, cl_mem buf, size_t offset, float *host,
                 size_t n) {
  cl_int err = clEnqueueReadBuffer(retcl_context_queue(ctx), buf, CL_TRUE,
                                   offset * sizeof(float), n * sizeof(float),
                                   host, 0, NULL, NULL);
  ck_assert_msg(err == CL_SUCCESS, "clEnqueueReadBuffer: %d", err);
}

cl_mem tu_upload_guarded(retcl_context *ctx, const float *host, size_t n,
                         size_t off, size_t guard) {
  const size_t total = off + n + guard;
  float *all = tu_alloc(total);
  for (size_t i = 0; i < total; ++i) all[i] = NAN;
  if (host) memcpy(all + off, host, n * sizeof *all);
  cl_mem m = tu_upload(ctx, all, total);
  free(all);
  return m;
}

void tu_download_guarded(retcl_context *ctx, cl_mem buf, size_t off,
                         size_t n, size_t guard, float *got,
                         const char *what) {
  const size_t total = off + n + guard;
  float *all = tu_alloc(total);
  tu_download(ctx, buf, 0, all, total);
  for (size_t i = 0; i < total; ++i)
    if (i < off || i >= off + n)
      ck_assert_msg(isnan(all[i]),
                    "%s: float %zu outside the tensor was written", what, i);
  if (got) memcpy(got, all + off, n * sizeof *got);
  free(all);
}

float *tu_alloc(size_t n) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  ck_assert_ptr_nonnull(p);
  return p;
}

double *tu_alloc_d(size_t n) {
  double *p = calloc(n ? n : 1, sizeof *p);
  ck_assert_ptr_nonnull(p);
  return p;
}

double tu_central_d(tu_loss_fn loss, const void *env, double *v, size_t j,
                    double h) {
  const double keep = v[j];
  v[j] = keep + h;
  const double up = loss(env);
  v[j] = keep - h;
  const double down = loss(env);
  v[j] = keep;
  return (up - down) / (2 * h);
}

double tu_central_f(tu_loss_fn loss, const void *env, float *v, size_t j,
                    double h) {
  const float keep = v[j];
  const float hi = (float)(keep + h), lo = (float)(keep - h);
  v[j] = hi;
  const double up = loss(env);
  v[j] = lo;
  const double down = loss(env);
  v[j] = keep;
  return (up - down) / ((double)hi - (double)lo);
}

double tu_rel_error(const float *out, const double *ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(out[i])) return INFINITY;
    double d = (double)out[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  if (den == 0) return sqrt(num);
  return sqrt(num / den);
}

double tu_max_abs_error(const float *out, const double *ref, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(out[i])) return INFINITY;
    double d = fabs((double)out[i] - ref[i]);
    if (d > m) m = d;
  }
  return m;
}

int tu_run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

char *tu_temp_dir(const char *prefix) {
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  const size_t n = strlen(tmp) + strlen(prefix) + 16;
  char *dir = malloc(n);
  ck_assert_ptr_nonnull(dir);
  snprintf(dir, n, "%s/%s-XXXXXX", tmp, prefix);
  ck_assert_ptr_nonnull(mkdtemp(dir));
  return dir;
}

void tu_rm_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (!S_ISDIR(st.st_mode)) {
    unlink(path);
    return;
  }
  DIR *d = opendir(path);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *child = tu_path(path, e->d_name);
    tu_rm_tree(child);
    free(child);
  }
  if (d) closedir(d);
  rmdir(path);
}

char *tu_path(const char *dir, const char *name) {
  const size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  ck_assert_ptr_nonnull(p);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

unsigned char *tu_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  const long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)n + 1);
  ck_assert_ptr_nonnull(buf);
  ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return buf;
}

void tu_write_file(const char *path, const void *bytes, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot create %s", path);
  ck_assert_int_eq(fwrite(bytes, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
}

void tu_write_text(const char *dir, const char *name, const char *text) {
  char *p = tu_path(dir, name);
  tu_write_file(p, text, strlen(text));
  free(p);
}

void tu_assert_same_config(const retcl_model_config *got,
                           const retcl_model_config *want) {
  ck_assert_uint_eq(got->embed_dim, want->embed_dim);
  ck_assert_uint_eq(got->value_embed_dim, want->value_embed_dim);
  ck_assert_uint_eq(got->heads, want->heads);
  ck_assert_uint_eq(got->ffn_dim, want->ffn_dim);
  ck_assert_uint_eq(got->layers, want->layers);
  ck_assert_uint_eq(got->vocab_size, want->vocab_size);
  ck_assert_int_eq(got->activation, want->activation);
  ck_assert_float_eq(got->layernorm_eps, want->layernorm_eps);
  ck_assert_int_eq(!!got->no_scale_embedding, !!want->no_scale_embedding);
  ck_assert_int_eq(!!got->layernorm_embedding, !!want->layernorm_embedding);
  ck_assert_int_eq(!!got->deepnorm, !!want->deepnorm);
  ck_assert_int_eq(!!got->share_embed, !!want->share_embed);
  ck_assert_uint_eq(got->chunk_size, want->chunk_size);
}

void tu_assert_load_fails(retcl_context *ctx, const char *dir,
                          retcl_status status, const char *const *needles) {
  retcl_model *model = (retcl_model *)&model; /* must come back NULL */
  retcl_status st = retcl_model_load(ctx, dir, &model);
  const char *msg = retcl_last_error(ctx);
  ck_assert_msg(st == status, "%s: status %d (%s), expected %d (seed %llu)",
                dir, (int)st, msg, (int)status,
                (unsigned long long)tu_seed());
  ck_assert_ptr_null(model);
  for (size_t i = 0; needles && needles[i]; ++i)
    ck_assert_msg(strstr(msg, needles[i]) != NULL,
                  "message \"%s\" lacks \"%s\"", msg, needles[i]);
}
