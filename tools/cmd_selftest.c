/* cmd_selftest.c - `retcl selftest`: the kernel checks of the test suite in
 * compact form, run on the chosen device against double-precision
 * references on the host (the reference library, reference/, the test
 * suite's own). Every op is checked, every retention algorithm in both
 * forms, on a few shapes chosen to reach the awkward paths (odd dims, T not
 * a multiple of the chunk, head-major layout, states in and out, a position
 * past 2^31), then tiny random models (deepnorm on and off, gelu and swish
 * FFN) are run in every mode against the double-precision reference model
 * and against each other. One line per check with its error, a
 * summary, and a non-zero exit status on any failure: this is what to run
 * first on a new vendor's device. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "reference.h"

/* Tolerances, relative L2 error ‖out − ref‖ / ‖ref‖ (the test suite's):
 * - TOL_ROTATION: the angle is reduced exactly, then fp32 sin/cos and one
 *   multiply-add: ~1e-7.
 * - TOL_OP: every other op sums at most a few hundred fp32 terms here;
 *   rounding stays near 1e-6 (docs/design.md §5's bound of 1e-5).
 * - TOL_MODEL: a model's logits against the double reference model: each
 *   op within ~1e-6, added up over the layers' GEMMs, norms and retention
 *   (test_model's bound); a wrong weight, norm, α or activation gives 1e-2
 *   and more.
 * - TOL_FORMS: torchscale's three forms agree only after the group norm,
 *   up to its eps (docs/design.md §1.4), through every layer of the model: ~1e-4
 *   measured on this model; a wrong state or position gives errors near 1.
 * - TOL_PREFILL: decoding after a chunkwise prefill continues from layer
 *   inputs that differ between the forms by that same eps effect (~1e-5).
 * - TOL_SAME: prefill and decode by the recurrent form repeat the full
 *   recurrent forward's arithmetic; only the GEMM blocking can differ. */
/* SELFTEST_TOL_SCALE multiplies them all (-DSELFTEST_TOL_SCALE=1e-9 at
 * compile time makes every check fail, to exercise the failure path). */
#ifndef SELFTEST_TOL_SCALE
#define SELFTEST_TOL_SCALE 1.0
#endif
#define TOL_ROTATION (1e-6 * SELFTEST_TOL_SCALE)
#define TOL_OP (1e-5 * SELFTEST_TOL_SCALE)
#define TOL_MODEL (2e-5 * SELFTEST_TOL_SCALE)
#define TOL_FORMS (1e-3 * SELFTEST_TOL_SCALE)
#define TOL_PREFILL (1e-4 * SELFTEST_TOL_SCALE)
#define TOL_SAME (1e-5 * SELFTEST_TOL_SCALE)

/* Width of the check names in the report. */
#define NAME_WIDTH 64

typedef struct st_run {
  retcl_context *ctx;
  cli_rng rng;
  int quick;
  size_t passed, failed;
} st_run;

/* One check: what it allocated (released in st_finish) and the first thing
 * that went wrong, if anything. After a problem every helper does nothing,
 * so a check's code reads straight through. */
#define ST_MAX_ALLOCS 40
typedef struct st_check {
  st_run *run;
  void *host[ST_MAX_ALLOCS];
  size_t nhost;
  cl_mem dev[ST_MAX_ALLOCS];
  size_t ndev;
  char problem[512];
} st_check;

static void st_begin(st_check *c, st_run *r) {
  memset(c, 0, sizeof *c);
  c->run = r;
}

static int st_bad(const st_check *c) { return c->problem[0] != '\0'; }

static void st_problem(st_check *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void st_problem(st_check *c, const char *fmt, ...) {
  if (st_bad(c)) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->problem, sizeof c->problem, fmt, ap);
  va_end(ap);
}

/* A library call's status; on failure, its words become the problem. */
static int st_call(st_check *c, retcl_status st, const char *what) {
  if (st != RETCL_SUCCESS)
    st_problem(c, "%s: %s: %s", what, retcl_status_string(st),
               retcl_last_error(c->run->ctx));
  return st == RETCL_SUCCESS && !st_bad(c);
}

static void *st_keep(st_check *c, void *p) {
  if (!p || c->nhost == ST_MAX_ALLOCS) {
    free(p);
    st_problem(c, "out of host memory");
    return NULL;
  }
  return c->host[c->nhost++] = p;
}

static float *st_floats(st_check *c, size_t n) {
  return st_bad(c) ? NULL : st_keep(c, malloc((n ? n : 1) * sizeof(float)));
}

static double *st_doubles(st_check *c, size_t n) {
  return st_bad(c) ? NULL : st_keep(c, calloc(n ? n : 1, sizeof(double)));
}

static float *st_random(st_check *c, size_t n, double lo, double hi) {
  float *x = st_floats(c, n);
  for (size_t i = 0; x && i < n; ++i)
    x[i] = cli_rng_uniform(&c->run->rng, (float)lo, (float)hi);
  return x;
}

/* A device copy of host[0..n), or n NaNs when host is NULL: an output
 * element a kernel forgets to write then fails the check. */
static cl_mem st_device(st_check *c, const float *host, size_t n) {
  if (st_bad(c)) return NULL;
  if (c->ndev == ST_MAX_ALLOCS) {
    st_problem(c, "too many buffers");
    return NULL;
  }
  float *nan_fill = NULL;
  if (!host) {
    if (!(nan_fill = st_floats(c, n))) return NULL;
    for (size_t i = 0; i < n; ++i) nan_fill[i] = NAN;
    host = nan_fill;
  }
  cl_int err = CL_SUCCESS;
  cl_mem m = clCreateBuffer(retcl_context_cl_context(c->run->ctx),
                            CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                            n * sizeof(float), (void *)host, &err);
  if (!m) {
    st_problem(c, "clCreateBuffer(%zu floats): %s (%d)", n,
               retcl_cl_error_name(err), err);
    return NULL;
  }
  return c->dev[c->ndev++] = m;
}

/* Blocking read: also waits for the kernels enqueued before it. */
static void st_read(st_check *c, cl_mem m, float *host, size_t n) {
  if (st_bad(c)) return;
  cl_int err = clEnqueueReadBuffer(retcl_context_queue(c->run->ctx), m,
                                   CL_TRUE, 0, n * sizeof(float), host, 0,
                                   NULL, NULL);
  if (err != CL_SUCCESS)
    st_problem(c, "clEnqueueReadBuffer: %s (%d)", retcl_cl_error_name(err), err);
}

/* ‖out − ref‖ / ‖ref‖, +inf if out holds a NaN or an infinity. */
static double st_rel_error(const float *out, const double *ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(out[i])) return INFINITY;
    num += ((double)out[i] - ref[i]) * ((double)out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Release what the check allocated. */
static void st_release(st_check *c) {
  for (size_t i = 0; i < c->ndev; ++i) clReleaseMemObject(c->dev[i]);
  for (size_t i = 0; i < c->nhost; ++i) free(c->host[i]);
  c->ndev = c->nhost = 0;
}

/* Report the check (one line), count it, release what it allocated. */
static void st_finish(st_check *c, const char *name, double err, double tol) {
  const int pass = !st_bad(c) && err <= tol; /* NaN fails too */
  if (st_bad(c))
    printf("FAIL  %-*s error: %s\n", NAME_WIDTH, name, c->problem);
  else
    printf("%s  %-*s rel.err %.1e (tol %.0e)\n", pass ? "PASS" : "FAIL",
           NAME_WIDTH, name, err, tol);
  fflush(stdout); /* progress shows line by line on a slow device */
  ++*(pass ? &c->run->passed : &c->run->failed);
  st_release(c);
}

static const char *layout_name(retcl_layout l) {
  return l == RETCL_LAYOUT_HEAD_MAJOR ? "head-major" : "token-major";
}

/* ---- decay and rotation -------------------------------------------------- */

static void check_decays(st_run *r) {
  st_check c;
  st_begin(&c, r);
  enum { H = 32 };
  float got[H];
  double want[H];
  st_call(&c, retcl_default_log_decay(H, got), "retcl_default_log_decay");
  for (int h = 0; h < H; ++h) want[h] = log1p(-ldexp(1.0, -5 - h));
  st_finish(&c, "default decays log(1 - 2^(-5-h)), H32", st_rel_error(got, want, H),
            TOL_ROTATION);
}

static void check_rotation(st_run *r, size_t D, size_t B, size_t T, size_t H,
                           retcl_layout layout, size_t pos0, float xpos_base,
                           int is_key) {
  st_check c;
  st_begin(&c, r);
  char name[128];
  int len = snprintf(name, sizeof name, "rotation D%zu B%zu T%zu H%zu %s pos %zu",
                     D, B, T, H, layout_name(layout), pos0);
  if (xpos_base > 0 && len > 0 && (size_t)len < sizeof name)
    snprintf(name + len, sizeof name - (size_t)len, " xPos %s",
             is_key ? "key" : "query");
  const size_t n = B * T * H * D;
  float *x = st_random(&c, n, -1, 1), *got = st_floats(&c, n);
  double *ref = st_doubles(&c, n);
  retcl_rotation *rot = NULL;
  if (!st_bad(&c) &&
      st_call(&c, retcl_rotation_create(r->ctx, D, NULL, xpos_base, &rot),
              "retcl_rotation_create")) {
    cl_mem in = st_device(&c, x, n), out = st_device(&c, NULL, n);
    retcl_rotation_desc d = {B, T, H, layout, pos0, is_key, {0, NULL, NULL, NULL}};
    if (!st_bad(&c) &&
        st_call(&c, retcl_rotate(r->ctx, rot, &d, retcl_buf(in, 0),
                                 retcl_buf(out, 0), 0, NULL, NULL),
                "retcl_rotate"))
      st_read(&c, out, got, n);
  }
  retcl_rotation_destroy(rot);
  double err = INFINITY;
  if (!st_bad(&c)) {
    ref_rotate(x, ref, B, T, H, D, layout, pos0, NULL, xpos_base, is_key);
    err = st_rel_error(got, ref, n);
  }
  st_finish(&c, name, err, TOL_ROTATION);
}

/* ---- retention ----------------------------------------------------------- */

/* The shape of a retention check. */
typedef struct st_shape {
  size_t B, T, H, Dk, Dv;
  retcl_layout layout;
} st_shape;

typedef struct ret_case {
  st_shape s;
  retcl_algorithm algo;
  retcl_retention_form form;
  size_t C;      /* chunkwise only */
  float scale;   /* raw only; 0 = 1 */
  int state_in;  /* raw only */
  int random_decay;
} ret_case;

/* Output and final state against the reference; the larger error counts. */
static void check_retention(st_run *r, const ret_case *k) {
  st_check c;
  st_begin(&c, r);
  const st_shape *s = &k->s;
  char chunk[32] = "", name[160];
  if (k->algo == RETCL_ALGO_CHUNKWISE) snprintf(chunk, sizeof chunk, " C%zu", k->C);
  snprintf(name, sizeof name, "retention %s %s B%zu T%zu H%zu Dk%zu Dv%zu%s%s%s%s",
           cli_algorithm_name(k->algo),
           k->form == RETCL_FORM_RAW ? "raw" : "torchscale", s->B, s->T, s->H,
           s->Dk, s->Dv, chunk,
           s->layout == RETCL_LAYOUT_HEAD_MAJOR ? " head-major" : "",
           k->state_in ? " +state" : "", k->scale != 0 ? " scale" : "");
  const size_t nqk = s->B * s->T * s->H * s->Dk;
  const size_t nvo = s->B * s->T * s->H * s->Dv;
  const size_t ns = s->B * s->H * s->Dk * s->Dv;
  /* q scaled by Dk^-1/2 as after a layer's projection: scores stay O(1). */
  const double qs = 1.0 / sqrt((double)s->Dk);
  float *q = st_random(&c, nqk, -qs, qs), *kk = st_random(&c, nqk, -1, 1);
  float *v = st_random(&c, nvo, -1, 1), *s0 = st_random(&c, ns, -1, 1);
  float *lg = st_floats(&c, s->H), *out = st_floats(&c, nvo);
  float *state = st_floats(&c, ns);
  double *ref = st_doubles(&c, nvo), *ref_state = st_doubles(&c, ns);
  if (!st_bad(&c)) {
    if (k->random_decay)
      for (size_t h = 0; h < s->H; ++h)
        lg[h] = (float)log(cli_rng_uniform(&r->rng, 0.5f, 0.999f));
    else
      st_call(&c, retcl_default_log_decay(s->H, lg), "retcl_default_log_decay");
  }
  cl_mem dq = st_device(&c, q, nqk), dk = st_device(&c, kk, nqk);
  cl_mem dv = st_device(&c, v, nvo), dlg = st_device(&c, lg, s->H);
  cl_mem ds0 = k->state_in ? st_device(&c, s0, ns) : NULL;
  cl_mem dout = st_device(&c, NULL, nvo), dstate = st_device(&c, NULL, ns);
  retcl_retention_desc d = {s->B, s->T, s->H, s->Dk, s->Dv, s->layout,
                            k->algo, k->form, k->C, k->scale, 0,
                            {0, NULL, NULL, NULL}};
  if (!st_bad(&c) &&
      st_call(&c, retcl_retention(r->ctx, &d, retcl_buf(dq, 0),
                                  retcl_buf(dk, 0), retcl_buf(dv, 0),
                                  retcl_buf(dlg, 0), retcl_buf(ds0, 0),
                                  retcl_buf(dstate, 0), retcl_buf(dout, 0), 0,
                                  NULL, NULL),
              "retcl_retention")) {
    st_read(&c, dout, out, nvo);
    st_read(&c, dstate, state, ns);
  }
  double err = INFINITY;
  if (!st_bad(&c)) {
    if (k->form == RETCL_FORM_RAW)
      ref_retention_raw(q, kk, v, lg, k->state_in ? s0 : NULL, ref, ref_state,
                        s->B, s->T, s->H, s->Dk, s->Dv, s->layout,
                        k->scale != 0 ? k->scale : 1.0);
    else
      ref_retention_torchscale(k->algo, q, kk, v, lg, NULL, 0, ref, ref_state,
                               s->B, s->T, s->H, s->Dk, s->Dv, s->layout,
                               k->C);
    err = fmax(st_rel_error(out, ref, nvo), st_rel_error(state, ref_state, ns));
  }
  st_finish(&c, name, err, TOL_OP);
}

static void check_all_retention(st_run *r) {
  static const retcl_algorithm algos[3] = {
      RETCL_ALGO_PARALLEL, RETCL_ALGO_RECURRENT, RETCL_ALGO_CHUNKWISE};
  const retcl_layout TM = RETCL_LAYOUT_TOKEN_MAJOR, HM = RETCL_LAYOUT_HEAD_MAJOR;
  /* Raw: T not a multiple of C, Dk != Dv, B > 1 with an initial state
   * ("+state"); then head-major with a scale; dims that are not multiples
   * of the vector width; a single token with one head. Every line also
   * checks the final state. */
  const ret_case raw[] = {
      {{2, 37, 3, 16, 24, TM}, 0, RETCL_FORM_RAW, 8, 0, 1, 0},
      {{1, 50, 2, 32, 16, HM}, 0, RETCL_FORM_RAW, 16, 0.125f, 0, 1},
      {{2, 29, 2, 12, 20, HM}, 0, RETCL_FORM_RAW, 7, 0, 0, 1},
      {{3, 1, 1, 8, 8, TM}, 0, RETCL_FORM_RAW, 4, 0, 1, 1},
  };
  const ret_case ts[] = {
      {{2, 45, 3, 16, 24, TM}, 0, RETCL_FORM_TORCHSCALE, 16, 0, 0, 0},
      {{1, 33, 1, 8, 8, HM}, 0, RETCL_FORM_TORCHSCALE, 8, 0, 0, 0},
  };
  const size_t n_raw = r->quick ? 1 : sizeof raw / sizeof raw[0];
  const size_t n_ts = r->quick ? 1 : sizeof ts / sizeof ts[0];
  for (size_t i = 0; i < n_raw; ++i)
    for (int a = 0; a < 3; ++a) {
      ret_case k = raw[i];
      k.algo = algos[a];
      check_retention(r, &k);
    }
  for (size_t i = 0; i < n_ts; ++i)
    for (int a = 0; a < 3; ++a) {
      ret_case k = ts[i];
      k.algo = algos[a];
      check_retention(r, &k);
    }
}

/* ---- group norm and gate ------------------------------------------------- */

static void check_group_norm(st_run *r, size_t B, size_t T, size_t H, size_t D,
                             retcl_layout layout, retcl_norm_kind kind,
                             retcl_gate gate, int affine) {
  static const char *gates[3] = {"swish", "gelu", "no gate"};
  st_check c;
  st_begin(&c, r);
  char name[128];
  snprintf(name, sizeof name, "group norm %s + %s B%zu T%zu H%zu D%zu %s%s",
           kind == RETCL_NORM_RMS ? "rms" : "layer", gates[gate], B, T, H, D,
           layout_name(layout), affine ? " affine" : "");
  const size_t n = B * T * H * D;
  /* An offset mean exercises the layer norm's centring. */
  float *x = st_random(&c, n, -1, 2), *g = st_random(&c, n, -3, 3);
  float *w = st_random(&c, H * D, 0.5, 1.5), *bias = st_random(&c, H * D, -1, 1);
  float *got = st_floats(&c, n);
  double *ref = st_doubles(&c, n);
  cl_mem dx = st_device(&c, x, n), dg = st_device(&c, g, n);
  cl_mem dw = affine ? st_device(&c, w, H * D) : NULL;
  cl_mem db = affine ? st_device(&c, bias, H * D) : NULL;
  cl_mem dout = st_device(&c, NULL, n);
  retcl_group_norm_desc d = {B, T, H, D, layout, kind, gate, 1e-6f};
  if (!st_bad(&c) &&
      st_call(&c, retcl_group_norm_gate(r->ctx, &d, retcl_buf(dx, 0),
                                        retcl_buf(dg, 0), retcl_buf(dw, 0),
                                        retcl_buf(db, 0), retcl_buf(dout, 0),
                                        0, NULL, NULL),
              "retcl_group_norm_gate"))
    st_read(&c, dout, got, n);
  double err = INFINITY;
  if (!st_bad(&c)) {
    ref_group_norm_gate(x, g, affine ? w : NULL, affine ? bias : NULL, ref,
                        B, T, H, D, layout, kind, gate, 1e-6);
    err = st_rel_error(got, ref, n);
  }
  st_finish(&c, name, err, TOL_OP);
}

/* ---- multi-scale retention layer ----------------------------------------- */

static void check_msr(st_run *r, size_t B, size_t T, size_t d, size_t dv,
                      size_t H, retcl_algorithm algo, retcl_retention_form form,
                      size_t C, int with_state) {
  st_check c;
  st_begin(&c, r);
  char name[128];
  snprintf(name, sizeof name, "msr layer %s %s B%zu T%zu d%zu dv%zu H%zu%s%s",
           cli_algorithm_name(algo),
           form == RETCL_FORM_RAW ? "raw" : "torchscale", B, T, d, dv, H,
           algo == RETCL_ALGO_CHUNKWISE ? " C8" : "",
           with_state ? " +state" : "");
  const size_t bt = B * T, Dk = d / H, Dv = dv / H, ns = B * H * Dk * Dv;
  const size_t wn[5] = {d * d, d * d, dv * d, dv * d, d * dv};
  float *x = st_random(&c, bt * d, -1, 1), *s0 = st_random(&c, ns, -1, 1);
  float *W[5];
  for (int i = 0; i < 5; ++i) {
    const double a = 1.0 / sqrt((double)(i == 4 ? dv : d)); /* 1/sqrt(fan_in) */
    W[i] = st_random(&c, wn[i], -a, a);
  }
  float *lg = st_floats(&c, H), *y = st_floats(&c, bt * d);
  float *state = st_floats(&c, ns);
  if (!st_bad(&c))
    st_call(&c, retcl_default_log_decay(H, lg), "retcl_default_log_decay");
  cl_mem dx = st_device(&c, x, bt * d), dlg = st_device(&c, lg, H);
  cl_mem dw[5];
  for (int i = 0; i < 5; ++i) dw[i] = st_device(&c, W[i], wn[i]);
  cl_mem dsin = with_state ? st_device(&c, s0, ns) : NULL;
  cl_mem dsout = with_state ? st_device(&c, NULL, ns) : NULL;
  cl_mem dy = st_device(&c, NULL, bt * d);
  retcl_rotation *rot = NULL;
  if (!st_bad(&c) &&
      st_call(&c, retcl_rotation_create(r->ctx, Dk, NULL, 0, &rot),
              "retcl_rotation_create")) {
    retcl_msr_weights w = {retcl_buf(dw[0], 0), retcl_buf(dw[1], 0),
                           retcl_buf(dw[2], 0), retcl_buf(dw[3], 0),
                           retcl_buf(dw[4], 0)};
    retcl_msr_desc md = {B, T, d, dv, H, algo, form, C, 0, 1e-6f,
                         {0, NULL, NULL, NULL}};
    if (st_call(&c, retcl_msr_forward(r->ctx, &md, &w, rot, retcl_buf(dlg, 0),
                                      retcl_buf(dx, 0), retcl_buf(dsin, 0),
                                      retcl_buf(dsout, 0), retcl_buf(dy, 0), 0,
                                      NULL, NULL),
                "retcl_msr_forward")) {
      st_read(&c, dy, y, bt * d);
      if (with_state) st_read(&c, dsout, state, ns);
    }
  }
  retcl_rotation_destroy(rot);

  /* Reference: projections, rotation, retention, norm + gate, output,
   * rounded to fp32 between ops as the device holds them. */
  double *xd = st_doubles(&c, bt * d), *ref = st_doubles(&c, bt * d);
  double *ref_state = st_doubles(&c, ns);
  double err = INFINITY;
  if (!st_bad(&c)) {
    const ref_msr_desc rd = {B, T, d, dv, H, algo, form, C, 0, 1e-6, NULL, 1};
    const ref_msr_weights rw = {W[0], W[1], W[2], W[3], W[4]};
    for (size_t i = 0; i < bt * d; ++i) xd[i] = x[i];
    ref_msr_forward(&rd, &rw, lg, xd, with_state ? s0 : NULL, ref, ref_state);
    err = st_rel_error(y, ref, bt * d);
    if (with_state) err = fmax(err, st_rel_error(state, ref_state, ns));
  }
  st_finish(&c, name, err, TOL_OP);
}

/* ---- a tiny model in every mode ------------------------------------------ */

enum { M_B = 2, M_T = 19, M_PREFILL = 11, M_V = 61 };

typedef struct model_run {
  retcl_model *model;
  int32_t tokens[M_B * M_T];
  float logits[3][M_B * M_T * M_V]; /* parallel, chunkwise, recurrent */
} model_run;

/* rel. error of a against b, both device results (b taken as exact). */
static double agreement(const float *a, const float *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    den += (double)b[i] * b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Prefill M_PREFILL tokens by algo, then one recurrent step per remaining
 * token; their logits against the full recurrent forward's. */
static void check_prefill_decode(st_run *r, model_run *m,
                                 retcl_algorithm prefill, double tol) {
  st_check c;
  st_begin(&c, r);
  char name[128];
  snprintf(name, sizeof name,
           "model %s prefill %d + %d decode steps vs recurrent",
           cli_algorithm_name(prefill), M_PREFILL, M_T - M_PREFILL);
  const size_t steps = M_T - M_PREFILL;
  float *got = st_floats(&c, M_B * steps * M_V);
  retcl_decode_state *state = NULL;
  int32_t prompt[M_B * M_PREFILL], next[M_B];
  for (size_t b = 0; b < M_B; ++b)
    memcpy(prompt + b * M_PREFILL, m->tokens + b * M_T,
           M_PREFILL * sizeof *prompt);
  if (!st_bad(&c) &&
      st_call(&c, retcl_decode_state_create(m->model, M_B, &state),
              "retcl_decode_state_create") &&
      st_call(&c, retcl_model_forward(m->model, state, prompt, M_B, M_PREFILL,
                                      prefill, 0, NULL),
              "prefill"))
    for (size_t j = 0; j < steps && !st_bad(&c); ++j) {
      float step[M_B * M_V];
      for (size_t b = 0; b < M_B; ++b) next[b] = m->tokens[b * M_T + M_PREFILL + j];
      if (st_call(&c, retcl_model_forward(m->model, state, next, M_B, 1,
                                          RETCL_ALGO_RECURRENT, 0, step),
                  "decode step"))
        for (size_t b = 0; b < M_B; ++b)
          memcpy(got + (b * steps + j) * M_V, step + b * M_V, M_V * sizeof *got);
    }
  retcl_decode_state_destroy(state);
  double err = INFINITY;
  float *want = st_floats(&c, M_B * steps * M_V);
  if (!st_bad(&c)) {
    for (size_t b = 0; b < M_B; ++b)
      memcpy(want + b * steps * M_V,
             m->logits[2] + (b * M_T + M_PREFILL) * M_V,
             steps * M_V * sizeof *want);
    err = agreement(got, want, M_B * steps * M_V);
  }
  st_finish(&c, name, err, tol);
}

/* One tiny random model: reference weights (ref_model_random, from the
 * run's generator) written as an F32 checkpoint by the reference's own
 * writer, loaded, and run in every mode; each mode's logits against the
 * double-precision reference model. With mode_checks, also the modes
 * against each other and prefill + decode. */
static void check_model(st_run *r, int deepnorm, retcl_activation act,
                        int mode_checks) {
  static const retcl_algorithm algos[3] = {
      RETCL_ALGO_PARALLEL, RETCL_ALGO_CHUNKWISE, RETCL_ALGO_RECURRENT};
  const char *act_name = act == RETCL_ACT_SWISH ? "swish" : "gelu";
  st_check c;
  st_begin(&c, r);
  model_run *m = st_keep(&c, calloc(1, sizeof *m));
  retcl_model_config cfg;
  retcl_model_config_default(&cfg);
  cfg.embed_dim = 32;
  cfg.value_embed_dim = 48;
  cfg.heads = 2;
  cfg.ffn_dim = 64;
  cfg.layers = 2;
  cfg.vocab_size = M_V;
  cfg.chunk_size = 8;
  cfg.deepnorm = deepnorm;
  cfg.activation = act;
  ref_model ref;
  ref_model_random(&ref, &cfg, 1, &r->rng.state);
  /* FFN norm weights near 3 instead of 1 spread the pre-activations (rms
   * ~0.6 → ~1.7) over the range where the activation is curved: there a
   * gelu by its tanh approximation, or the wrong activation, differs most
   * from the erf gelu the reference computes. */
  for (size_t l = 0; l < cfg.layers; ++l)
    for (size_t i = 0; i < cfg.embed_dim; ++i) ref.layers[l].ffn_norm[i] *= 3.0f;
  const char *tmp = getenv("TMPDIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/retcl-selftest-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  const int have_dir = !st_bad(&c) && mkdtemp(dir) != NULL;
  if (!st_bad(&c) && !have_dir)
    st_problem(&c, "cannot create a scratch folder %s (set TMPDIR)", dir);
  if (!st_bad(&c) && ref_checkpoint_write(&ref, dir, "F32", CKPT_OK) != 0)
    st_problem(&c, "cannot write a checkpoint into %s", dir);
  if (!st_bad(&c))
    st_call(&c, retcl_model_load(r->ctx, dir, &m->model), "retcl_model_load");
  for (size_t i = 0; m && i < M_B * M_T; ++i)
    m->tokens[i] = (int32_t)cli_rng_uniform(&r->rng, 0, M_V - 0.5f) % M_V;
  for (int a = 0; a < 3 && !st_bad(&c); ++a)
    st_call(&c, retcl_model_forward(m->model, NULL, m->tokens, M_B, M_T,
                                    algos[a], 0, m->logits[a]),
            "retcl_model_forward");
  if (have_dir) ref_checkpoint_remove(dir);
  if (st_bad(&c)) {
    if (m) retcl_model_destroy(m->model);
    ref_model_free(&ref);
    st_finish(&c, "model: reference checkpoint, load, forward", INFINITY, 0);
    return;
  }
  const size_t n = M_B * M_T * M_V;
  /* Each mode against the reference model in its own form. */
  double *want = st_doubles(&c, n);
  for (int a = 0; a < 3 && want; ++a) {
    st_check f;
    st_begin(&f, r);
    char name[128];
    snprintf(name, sizeof name, "model %s vs reference,%s %s FFN, L2 B%d T%d",
             cli_algorithm_name(algos[a]), deepnorm ? " deepnorm," : "",
             act_name, M_B, M_T);
    ref_model_forward(&ref, m->tokens, M_B, M_T, algos[a], cfg.chunk_size, want);
    st_finish(&f, name, st_rel_error(m->logits[a], want, n), TOL_MODEL);
  }
  ref_model_free(&ref);
  if (mode_checks) {
    /* The forms against each other (torchscale's: equal up to the norm
     * eps). */
    for (int a = 1; a < 3; ++a) {
      st_check f;
      st_begin(&f, r);
      char name[128];
      snprintf(name, sizeof name,
               "model %s vs parallel, d32 dv48 H2 L2 V%d B%d T%d C8",
               cli_algorithm_name(algos[a]), M_V, M_B, M_T);
      st_finish(&f, name, agreement(m->logits[a], m->logits[0], n), TOL_FORMS);
    }
    check_prefill_decode(r, m, RETCL_ALGO_CHUNKWISE, TOL_PREFILL);
    if (!r->quick) {
      check_prefill_decode(r, m, RETCL_ALGO_PARALLEL, TOL_PREFILL);
      check_prefill_decode(r, m, RETCL_ALGO_RECURRENT, TOL_SAME);
    }
  }
  retcl_model_destroy(m->model);
  st_release(&c); /* setup only: its checks are the lines above */
}

/* ---- the command ---------------------------------------------------------- */

static void selftest_usage(FILE *out) {
  fprintf(out,
          "usage: retcl selftest [--device D] [--platform P] [--quick]\n"
          "                      [--seed S]\n"
          "\n"
          "Check every RetCL kernel on one device against double-precision\n"
          "references computed on the host: rotation (including a position\n"
          "past 2^31), raw retention by all three algorithms (states in and\n"
          "out, odd dims, both layouts), torchscale retention by each\n"
          "algorithm, the group norm with its gate (rms/layer, swish/gelu),\n"
          "the multi-scale retention layer, and tiny random models (deepnorm\n"
          "on and off, gelu and swish FFN) in every mode against a double-\n"
          "precision reference model, the modes against each other, prefill +\n"
          "decode against the full forward). Outputs start as NaN, so an element a kernel misses\n"
          "fails. One line per check:\n"
          "\n"
          "  PASS  <check>   rel.err <|out - ref| / |ref|> (tol <bound>)\n"
          "\n"
          "then 'N passed, M failed'. Exit status 0 when every check passes,\n"
          "3 when one fails, 1 when no context can be made, 2 on a bad\n"
          "option. Run this first on a new device or driver.\n"
          "\n"
          "  --device D     device index (see `retcl devices`) or name\n"
          "                 substring; default RETCL_DEVICE, else the first\n"
          "                 GPU, else the first device\n"
          "  --platform P   platform index or name substring; default\n"
          "                 RETCL_PLATFORM, else all platforms\n"
          "  --quick        one shape per check instead of several\n"
          "  --seed S       seed of the random inputs, default 1 (the same\n"
          "                 inputs every run, so a failure reproduces)\n");
}

static int selftest_run(int argc, char **argv) {
  const char *device = NULL, *platform = NULL;
  int quick = 0;
  uint64_t seed = 1;
  const cli_option opts[] = {
      {"device", CLI_OPT_STRING, &device},
      {"platform", CLI_OPT_STRING, &platform},
      {"quick", CLI_OPT_FLAG, &quick},
      {"seed", CLI_OPT_U64, &seed},
  };
  int parsed = cli_parse_options("selftest", argc, argv, opts,
                                 sizeof opts / sizeof opts[0]);
  if (parsed == CLI_PARSE_HELP) {
    selftest_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (parsed != CLI_PARSE_OK) return CLI_EXIT_USAGE;

  st_run r;
  memset(&r, 0, sizeof r);
  r.quick = quick;
  cli_rng_seed(&r.rng, seed);
  retcl_status st = retcl_context_create(platform, device, &r.ctx);
  if (st != RETCL_SUCCESS)
    return cli_fail(NULL, st, "cannot create a RetCL context");
  char desc[1024];
  const char *paths = getenv("RETCL_KERNEL_PATHS");
  printf("retcl %s selftest%s\n", retcl_version_string(), quick ? " (quick)" : "");
  printf("device:    %s\n", cli_device_description(r.ctx, desc, sizeof desc));
  if (paths && *paths) printf("kernels:   RETCL_KERNEL_PATHS=%s\n", paths);
  printf(
      "reference: double precision on the host, seed %llu; rel.err = "
      "|out - ref| / |ref| (L2)\n\n",
      (unsigned long long)seed);
  fflush(stdout);

  const double t0 = cli_now();
  const retcl_layout TM = RETCL_LAYOUT_TOKEN_MAJOR, HM = RETCL_LAYOUT_HEAD_MAJOR;
  check_decays(&r);
  check_rotation(&r, 64, 2, 9, 3, TM, 0, 0, 0);
  check_rotation(&r, 128, 1, 5, 2, HM, ((size_t)1 << 31) - 2, 0, 0);
  if (!quick) {
    check_rotation(&r, 32, 1, 4, 2, TM, ((size_t)1 << 32) - 4, 0, 0);
    check_rotation(&r, 16, 2, 6, 2, TM, 100, 512.0f, 1);
  }
  check_all_retention(&r);
  check_group_norm(&r, 2, 7, 3, 24, TM, RETCL_NORM_RMS, RETCL_GATE_SWISH, 0);
  check_group_norm(&r, 1, 5, 2, 20, HM, RETCL_NORM_LAYER, RETCL_GATE_GELU, 1);
  if (!quick)
    check_group_norm(&r, 3, 4, 1, 13, TM, RETCL_NORM_RMS, RETCL_GATE_NONE, 1);
  check_msr(&r, 2, 21, 32, 48, 2, RETCL_ALGO_CHUNKWISE, RETCL_FORM_RAW, 8, 1);
  check_msr(&r, 1, 17, 32, 32, 4, RETCL_ALGO_PARALLEL, RETCL_FORM_TORCHSCALE, 0, 0);
  if (!quick)
    check_msr(&r, 2, 9, 16, 32, 2, RETCL_ALGO_RECURRENT, RETCL_FORM_TORCHSCALE,
              0, 0);
  /* The model's wiring: deepnorm's α and the FFN's activation, each way. */
  check_model(&r, 0, RETCL_ACT_GELU, 1);
  check_model(&r, 1, RETCL_ACT_SWISH, 0);
  if (!quick) {
    check_model(&r, 1, RETCL_ACT_GELU, 0);
    check_model(&r, 0, RETCL_ACT_SWISH, 0);
  }

  printf("\n%zu passed, %zu failed (%.1f s)\n", r.passed, r.failed,
         cli_now() - t0);
  retcl_context_destroy(r.ctx);
  return r.failed ? CLI_EXIT_CHECK : CLI_EXIT_OK;
}

const cli_command cli_cmd_selftest = {
    "selftest", "check every kernel against a double-precision reference",
    selftest_run, selftest_usage};
