/* testutil.h - what every test suite shares: a context per test, random
 * inputs, poisoned outputs, device<->host copies and error measures. */
#ifndef RETCL_TESTUTIL_H
#define RETCL_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "retcl.h"

/* A context on RETCL_DEVICE / RETCL_PLATFORM (or the default device); fails
 * the test with the library's message if none can be made.
 * retcl_context_destroy does not wait for enqueued work: a test whose last
 * call only enqueues must wait for it (a download, or retcl_finish) before
 * it returns, or the forked test process may exit under kernels PoCL is
 * still compiling (on a cold kernel cache: signal 6 or 11). */
retcl_context *tu_context(void);
/* Write json to a temporary file and name it in RETCL_PARAMS while
 * creating a context (the parameter record is fixed at creation); returns
 * the status, the context in *out. RETCL_PARAMS is restored after. */
retcl_status tu_context_with_params(const char *json, retcl_context **out);

/* Deterministic-per-test but fresh-per-run random numbers: the seed comes
 * from RETCL_TEST_SEED if set, else from the clock, and is printed on
 * failure through tu_seed(). */
uint64_t tu_seed(void);
void tu_rng_init(uint64_t seed);
/* The state of that stream, for the library's retcl_random_next /
 * retcl_random_uniform (the one generator all test data comes from) and
 * for references that take a generator (ref_model_random). */
uint64_t *tu_rng(void);
double tu_uniform(double lo, double hi);
void tu_fill_uniform(float *x, size_t n, double lo, double hi);

/* A model configuration: retcl_model_config_default with the given shape
 * and chunk size 8 (small models, chunks shorter than their sequences). */
retcl_model_config tu_model_config(size_t d, size_t dv, size_t heads,
                                   size_t ffn, size_t layers, size_t vocab);

/* Device buffer of n floats initialised from host (or NaN-poisoned when
 * host is NULL). */
cl_mem tu_upload(retcl_context *ctx, const float *host, size_t n);
cl_mem tu_poisoned(retcl_context *ctx, size_t n);
void tu_download(retcl_context *ctx, cl_mem buf, size_t offset, float *host,
                 size_t n);
/* Guarded device tensors: n floats at float offset off of a buffer of
 * off + n + guard floats, NaN everywhere else (and all NaN, a poisoned
 * output, when host is NULL), so a kernel writing before or after its
 * tensor leaves a non-NaN guard. Written in one piece: oclgrind 21.10
 * marks memory written at a nonzero offset uninitialised.
 * tu_download_guarded copies the tensor into got (unless got is NULL) and
 * fails the test, naming what, if any float outside it was written. */
cl_mem tu_upload_guarded(retcl_context *ctx, const float *host, size_t n,
                         size_t off, size_t guard);
void tu_download_guarded(retcl_context *ctx, cl_mem buf, size_t off,
                         size_t n, size_t guard, float *got,
                         const char *what);
/* Host copy of n floats. */
float *tu_alloc(size_t n);
double *tu_alloc_d(size_t n);

/* Central differences of a loss in one element of an array, the element
 * restored afterwards: (L(v_j + h) − L(v_j − h)) / (step taken). The
 * float form steps to the nearest floats and divides by the step they
 * actually are, so that the quotient is the loss's true slope over it. */
typedef double (*tu_loss_fn)(const void *env);
double tu_central_d(tu_loss_fn loss, const void *env, double *v, size_t j,
                    double h);
double tu_central_f(tu_loss_fn loss, const void *env, float *v, size_t j,
                    double h);

/* ‖out − ref‖₂ / ‖ref‖₂ (ref in double); any NaN in out gives +inf. */
double tu_rel_error(const float *out, const double *ref, size_t n);
/* max |out − ref| */
double tu_max_abs_error(const float *out, const double *ref, size_t n);

/* Assert the relative error is at most tol, with a message naming what. */
#define tu_assert_close(what, out, ref, n, tol)                              \
  do {                                                                       \
    double e_ = tu_rel_error((out), (ref), (n));                             \
    ck_assert_msg(e_ <= (tol), "%s: relative error %.3g > %.3g (seed %llu)", \
                  (what), e_, (double)(tol),                                 \
                  (unsigned long long)tu_seed());                            \
  } while (0)

/* Assert a status, printing the library's message when it differs. */
#define tu_assert_status(ctx, call, expected)                                \
  do {                                                                       \
    retcl_status s_ = (call);                                                \
    ck_assert_msg(s_ == (expected), "%s returned %d (%s: %s), expected %d",  \
                  #call, (int)s_, retcl_status_string(s_),                   \
                  retcl_last_error(ctx), (int)(expected));                   \
  } while (0)
#define tu_ok(ctx, call) tu_assert_status(ctx, call, RETCL_SUCCESS)

/* Files: a fresh folder $TMPDIR/<prefix>-XXXXXX (malloc'd), removed with
 * everything in it by tu_rm_tree; dir/name (malloc'd); a whole file in
 * memory (malloc'd, one spare byte; *len its size). */
char *tu_temp_dir(const char *prefix);
void tu_rm_tree(const char *path);
char *tu_path(const char *dir, const char *name);
unsigned char *tu_slurp(const char *path, size_t *len);
/* Write len bytes to path / text to dir/name, replacing the file; fails
 * the test if that cannot be done. */
void tu_write_file(const char *path, const void *bytes, size_t len);
void tu_write_text(const char *dir, const char *name, const char *text);

/* Checkpoints: every field of two configs equal; loading dir gives status
 * and a message holding each of the NULL-terminated needles (needles may
 * be NULL), and leaves no model. */
void tu_assert_same_config(const retcl_model_config *got,
                           const retcl_model_config *want);
void tu_assert_load_fails(retcl_context *ctx, const char *dir,
                          retcl_status status, const char *const *needles);

/* Run a suite and return the process exit status. */
int tu_run_suite(Suite *s);

#endif
