/* tune_families.c - what `retcl tune` knows about the kernel families it
 * can time op by op (tune.h): gemm, linear, retention, group_norm and
 * rotation. Each is timed at the shapes a d 512, H 4 model (Dk = Dv = 128,
 * FFN 1024) gives it in prefill and in decoding, through the public call
 * that runs it, and checked against the reference library (reference/)
 * with the bound the op's test suite uses: a candidate record that passes
 * computes what the tests accept. elementwise runs only inside the model
 * and is described in tune_model.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ref_gemm.h"
#include "ref_group_norm.h"
#include "ref_retention.h"
#include "ref_rotation.h"
#include "tune.h"

/* ---- helpers ---------------------------------------------------------- */

double tune_rel_error(const float *out, const double *ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(out[i])) return INFINITY;
    const double d = (double)out[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

void tune_fill(float *x, size_t n, double lo, double hi, uint64_t *rng) {
  for (size_t i = 0; i < n; ++i)
    x[i] = (float)(lo + (hi - lo) * retcl_random_uniform(rng));
}

cl_mem tune_buffer(retcl_context *ctx, const float *host, size_t n, char *why,
                   size_t cap) {
  cl_int err = CL_SUCCESS;
  cl_mem m = clCreateBuffer(
      retcl_context_cl_context(ctx),
      CL_MEM_READ_WRITE | (host ? CL_MEM_COPY_HOST_PTR : 0), n * sizeof(float),
      (void *)host, &err);
  if (m && !host) {
    const cl_float nan = NAN;
    err = clEnqueueFillBuffer(retcl_context_queue(ctx), m, &nan, sizeof nan, 0,
                              n * sizeof(float), 0, NULL, NULL);
  }
  if (err != CL_SUCCESS || !m) {
    snprintf(why, cap, "%s: %s", m ? "clEnqueueFillBuffer" : "clCreateBuffer",
             retcl_cl_error_name(err));
    if (m) clReleaseMemObject(m);
    return NULL;
  }
  return m;
}

int tune_read(retcl_context *ctx, cl_mem mem, float *host, size_t n, char *why,
              size_t cap) {
  const cl_int err = clEnqueueReadBuffer(retcl_context_queue(ctx), mem,
                                         CL_TRUE, 0, n * sizeof(float), host,
                                         0, NULL, NULL);
  if (err == CL_SUCCESS) return 1;
  snprintf(why, cap, "clEnqueueReadBuffer: %s", retcl_cl_error_name(err));
  return 0;
}

void tune_release(cl_mem *mems, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (mems[i]) {
      clReleaseMemObject(mems[i]);
      mems[i] = NULL;
    }
}

/* Up to 8 buffers per shape and a host array to read an output into: what
 * every family here keeps on a candidate's context. */
enum { MAX_SHAPES = 4, MAX_BUFS = 8 };
typedef struct op_inst {
  retcl_context *ctx;
  cl_mem buf[MAX_SHAPES][MAX_BUFS];
  float *got; /* the largest output of any shape */
  retcl_rotation *rot; /* rotation only */
} op_inst;

static op_inst *inst_new(retcl_context *ctx, size_t got_floats, char *why,
                         size_t cap) {
  op_inst *in = calloc(1, sizeof *in);
  if (in) in->got = malloc(got_floats * sizeof *in->got);
  if (!in || !in->got) {
    if (in) free(in);
    snprintf(why, cap, "out of host memory");
    return NULL;
  }
  in->ctx = ctx;
  return in;
}

static void inst_free(void *p) {
  op_inst *in = p;
  if (!in) return;
  for (size_t s = 0; s < MAX_SHAPES; ++s) tune_release(in->buf[s], MAX_BUFS);
  retcl_rotation_destroy(in->rot);
  free(in->got);
  free(in);
}

/* in->buf[s][b] = a device copy of host (NaN if NULL); 0 on failure. */
static int inst_upload(op_inst *in, size_t s, size_t b, const float *host,
                       size_t n, char *why, size_t cap) {
  in->buf[s][b] = tune_buffer(in->ctx, host, n, why, cap);
  return in->buf[s][b] != NULL;
}

/* ---- gemm and linear: products with a per-element bound ---------------- */

/* Host operands of a product (stored as its case stores them), the double
 * result and each element's fp32 bound (ref_gemm: a dot product of length
 * K in any summation order). */
typedef struct product {
  retcl_gemm_case op;
  size_t M, N, K;
  float *a, *b;
  double *ref, *bound;
} product;

static size_t lda_of(const product *p) {
  return p->op == RETCL_GEMM_TN ? p->M : p->K;
}
static size_t ldb_of(const product *p) {
  return p->op == RETCL_GEMM_NT ? p->K : p->N;
}

static int product_setup(product *ps, size_t n, uint64_t *rng, char *why,
                         size_t cap) {
  for (size_t i = 0; i < n; ++i) {
    product *p = &ps[i];
    p->a = malloc(p->M * p->K * sizeof *p->a);
    p->b = malloc(p->N * p->K * sizeof *p->b);
    p->ref = malloc(p->M * p->N * sizeof *p->ref);
    p->bound = malloc(p->M * p->N * sizeof *p->bound);
    if (!p->a || !p->b || !p->ref || !p->bound) {
      snprintf(why, cap, "out of host memory");
      return 0;
    }
    tune_fill(p->a, p->M * p->K, -1, 1, rng);
    tune_fill(p->b, p->N * p->K, -1, 1, rng);
    ref_gemm(p->op, p->M, p->N, p->K, p->a, lda_of(p), p->b, ldb_of(p), p->ref,
             p->bound);
  }
  return 1;
}

static void product_teardown(product *ps, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    free(ps[i].a), free(ps[i].b), free(ps[i].ref), free(ps[i].bound);
    ps[i].a = ps[i].b = NULL;
    ps[i].ref = ps[i].bound = NULL;
  }
}

/* Buffers 0, 1, 2: A, B and C (NaN) of every product. */
static retcl_status product_open(const product *ps, size_t n,
                                 retcl_context *ctx, void **out, char *why,
                                 size_t cap) {
  size_t most = 0;
  for (size_t i = 0; i < n; ++i)
    if (ps[i].M * ps[i].N > most) most = ps[i].M * ps[i].N;
  op_inst *in = inst_new(ctx, most, why, cap);
  if (!in) return RETCL_ERROR_OUT_OF_MEMORY;
  for (size_t i = 0; i < n; ++i) {
    const product *p = &ps[i];
    if (!inst_upload(in, i, 0, p->a, p->M * p->K, why, cap) ||
        !inst_upload(in, i, 1, p->b, p->N * p->K, why, cap) ||
        !inst_upload(in, i, 2, NULL, p->M * p->N, why, cap)) {
      inst_free(in);
      return RETCL_ERROR_OPENCL;
    }
  }
  *out = in;
  return RETCL_SUCCESS;
}

/* Every element of C within its bound: one outside it is a wrong result,
 * not rounding (the bound holds for any summation order). */
static tune_verdict product_check(const product *p, const char *what,
                                  op_inst *in, size_t i, char *why,
                                  size_t cap) {
  const size_t n = p->M * p->N;
  if (!tune_read(in->ctx, in->buf[i][2], in->got, n, why, cap))
    return TUNE_NO_CHECK;
  for (size_t e = 0; e < n; ++e)
    if (!(fabs((double)in->got[e] - p->ref[e]) <= p->bound[e])) {
      snprintf(why, cap, "%s: c[%zu] = %.9g, reference %.9g", what, e,
               in->got[e], p->ref[e]);
      return TUNE_WRONG;
    }
  return TUNE_RIGHT;
}

/* gemm: a d 512 model's FFN projections and their gradients, the products
 * RetCL's GEMM runs when there are more rows than linear.row_limit. */
static const tune_shape gemm_shapes[] = {
    {"nt 512x1024x512 (x W^T, FFN in)", 2.0 * 512 * 1024 * 512},
    {"nn 512x512x1024 (dy W, FFN out)", 2.0 * 512 * 512 * 1024},
    {"tn 512x512x512 (dy^T x, dW)", 2.0 * 512 * 512 * 512},
};
static product gemm_products[] = {
    {RETCL_GEMM_NT, 512, 1024, 512, NULL, NULL, NULL, NULL},
    {RETCL_GEMM_NN, 512, 512, 1024, NULL, NULL, NULL, NULL},
    {RETCL_GEMM_TN, 512, 512, 512, NULL, NULL, NULL, NULL},
};
#define N_GEMM (sizeof gemm_products / sizeof gemm_products[0])

static int gemm_setup(uint64_t *rng, char *why, size_t cap) {
  return product_setup(gemm_products, N_GEMM, rng, why, cap);
}
static void gemm_teardown(void) { product_teardown(gemm_products, N_GEMM); }
static retcl_status gemm_open(retcl_context *ctx, void **inst, char *why,
                              size_t cap) {
  return product_open(gemm_products, N_GEMM, ctx, inst, why, cap);
}
static retcl_status gemm_run(void *p, size_t i) {
  op_inst *in = p;
  const product *g = &gemm_products[i];
  return retcl_gemm(in->ctx, g->op, g->M, g->N, g->K, 1.0f,
                    retcl_buf(in->buf[i][0], 0), lda_of(g),
                    retcl_buf(in->buf[i][1], 0), ldb_of(g), 0.0f,
                    retcl_buf(in->buf[i][2], 0), g->N, 0, NULL, NULL);
}
static tune_verdict gemm_check(void *p, size_t i, char *why, size_t cap) {
  return product_check(&gemm_products[i], gemm_shapes[i].what, p, i, why, cap);
}

/* On CPUs the shapes (512 rows, above gemm.pack_rows) run the packed
 * panels: the work-item block, the broadcast tile (mb rows by nv vectors)
 * and the k block; on GPUs the local-memory tile. The backend is pinned
 * to RetCL's (CLBlast has its own tuner). */
const tune_family tune_family_gemm = {
    "gemm",
    "RetCL's GEMM: FFN projections and their gradients",
    "GF/s",
    "\"backend\": \"retcl\"",
    0,
    0,
    {{3,
      {{"wg", 2, {8, 16}}, {"wpt", 3, {2, 4, 8}}, {"tk", 3, {8, 16, 32}}}},
     {5,
      {{"bm", 3, {32, 64, 128}},
       {"bn", 3, {64, 128, 256}},
       {"mb", 3, {4, 6, 8}},
       {"nv", 3, {1, 2, 4}},
       {"kc", 3, {128, 256, 512}}}}},
    N_GEMM,
    gemm_shapes,
    gemm_setup,
    gemm_teardown,
    gemm_open,
    gemm_run,
    gemm_check,
    inst_free,
};

/* linear: the projections of decoding (one row per sequence), where the
 * weight-streaming kernels run, and 32 rows, where linear.row_limit decides
 * between them and gemm.backend. */
static const tune_shape linear_shapes[] = {
    {"M 1, 512 -> 512 (decode, batch 1)", 4.0 * (512 * 512 + 512 + 512)},
    {"M 8, 512 -> 1024 (FFN in, batch 8)", 4.0 * (1024 * 512 + 8 * 512 + 8 * 1024)},
    {"M 8, 1024 -> 512 (FFN out, batch 8)", 4.0 * (512 * 1024 + 8 * 1024 + 8 * 512)},
    {"M 32, 512 -> 512 (batch 32)", 4.0 * (512 * 512 + 32 * 512 + 32 * 512)},
};
static product linear_products[] = {
    {RETCL_GEMM_NT, 1, 512, 512, NULL, NULL, NULL, NULL},
    {RETCL_GEMM_NT, 8, 1024, 512, NULL, NULL, NULL, NULL},
    {RETCL_GEMM_NT, 8, 512, 1024, NULL, NULL, NULL, NULL},
    {RETCL_GEMM_NT, 32, 512, 512, NULL, NULL, NULL, NULL},
};
#define N_LINEAR (sizeof linear_products / sizeof linear_products[0])

static int linear_setup(uint64_t *rng, char *why, size_t cap) {
  return product_setup(linear_products, N_LINEAR, rng, why, cap);
}
static void linear_teardown(void) {
  product_teardown(linear_products, N_LINEAR);
}
static retcl_status linear_open(retcl_context *ctx, void **inst, char *why,
                                size_t cap) {
  return product_open(linear_products, N_LINEAR, ctx, inst, why, cap);
}
static retcl_status linear_run(void *p, size_t i) {
  op_inst *in = p;
  const product *l = &linear_products[i];
  return retcl_linear(in->ctx, l->M, l->N, l->K, 1.0f,
                      retcl_buf(in->buf[i][0], 0), retcl_buf(in->buf[i][1], 0),
                      0.0f, retcl_buf(in->buf[i][2], 0), 0, NULL, NULL);
}
/* y = x wᵀ with alpha 1, beta 0: test_linear's bound is ref_gemm's. */
static tune_verdict linear_check(void *p, size_t i, char *why, size_t cap) {
  return product_check(&linear_products[i], linear_shapes[i].what, p, i, why,
                       cap);
}

/* cpu: vector width, streaming items per compute unit; gpu: work-group
 * size (vw only shapes the cpu kernels). row_limit 16 sends the 32-row
 * shape to gemm.backend, 32 keeps it streaming. */
const tune_family tune_family_linear = {
    "linear",
    "decoding's projections (1-32 rows), hand-over to the GEMM",
    "GB/s",
    NULL,
    1,
    1,
    {{2, {{"wg", 4, {32, 64, 128, 256}}, {"row_limit", 2, {16, 32}}}},
     {3,
      {{"vw", 2, {8, 16}},
       {"items_per_unit", 4, {2, 4, 8, 16}},
       {"row_limit", 2, {16, 32}}}}},
    N_LINEAR,
    linear_shapes,
    linear_setup,
    linear_teardown,
    linear_open,
    linear_run,
    linear_check,
    inst_free,
};

/* ---- retention ---------------------------------------------------------- */

/* test_retention's bound: fp32 sums of a few hundred terms of mixed sign
 * stay well under 1e-5 relative (docs/design.md §5). */
#define RET_TOL 1e-5
enum { RH = 4, RDK = 128, RDV = 128, R_CHUNK = 64, R_POSITION = 64 };

/* The model's retention: torchscale form, token-major. */
typedef struct ret_shape {
  retcl_algorithm algo;
  size_t B, T;
  int state_in, state_out;
  float *q, *k, *v, *s0;
  double *ref, *ref_state;
} ret_shape;

static const tune_shape retention_shapes[] = {
    {"chunkwise B1 T512 C64, state out (prefill)", 0},
    {"parallel B1 T256 (prefill)", 0},
    {"recurrent B8 T1 from a state (decode step)", 0},
};
static ret_shape ret_shapes[] = {
    {RETCL_ALGO_CHUNKWISE, 1, 512, 0, 1, NULL, NULL, NULL, NULL, NULL, NULL},
    {RETCL_ALGO_PARALLEL, 1, 256, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL},
    {RETCL_ALGO_RECURRENT, 8, 1, 1, 1, NULL, NULL, NULL, NULL, NULL, NULL},
};
#define N_RET (sizeof ret_shapes / sizeof ret_shapes[0])
static float ret_log_decay[RH];

static size_t ret_nqk(const ret_shape *r) { return r->B * r->T * RH * RDK; }
static size_t ret_nv(const ret_shape *r) { return r->B * r->T * RH * RDV; }
static size_t ret_ns(const ret_shape *r) { return r->B * RH * RDK * RDV; }

static void retention_teardown(void) {
  for (size_t i = 0; i < N_RET; ++i) {
    ret_shape *r = &ret_shapes[i];
    free(r->q), free(r->k), free(r->v), free(r->s0);
    free(r->ref), free(r->ref_state);
    r->q = r->k = r->v = r->s0 = NULL;
    r->ref = r->ref_state = NULL;
  }
}

/* Inputs as test_retention makes them: q ~ U(±1/sqrt(Dk)) (the layer's
 * scaling), k, v and the state ~ U(±1), RetNet's default decays. */
static int retention_setup(uint64_t *rng, char *why, size_t cap) {
  retcl_default_log_decay(RH, ret_log_decay);
  for (size_t i = 0; i < N_RET; ++i) {
    ret_shape *r = &ret_shapes[i];
    r->q = malloc(ret_nqk(r) * sizeof *r->q);
    r->k = malloc(ret_nqk(r) * sizeof *r->k);
    r->v = malloc(ret_nv(r) * sizeof *r->v);
    r->s0 = malloc(ret_ns(r) * sizeof *r->s0);
    r->ref = malloc(ret_nv(r) * sizeof *r->ref);
    r->ref_state = malloc(ret_ns(r) * sizeof *r->ref_state);
    if (!r->q || !r->k || !r->v || !r->s0 || !r->ref || !r->ref_state) {
      snprintf(why, cap, "out of host memory");
      return 0;
    }
    const double qs = 1.0 / sqrt((double)RDK);
    tune_fill(r->q, ret_nqk(r), -qs, qs, rng);
    tune_fill(r->k, ret_nqk(r), -1, 1, rng);
    tune_fill(r->v, ret_nv(r), -1, 1, rng);
    tune_fill(r->s0, ret_ns(r), -1, 1, rng);
    ref_retention_torchscale(r->algo, r->q, r->k, r->v, ret_log_decay,
                             r->state_in ? r->s0 : NULL,
                             r->state_in ? R_POSITION : 0, r->ref,
                             r->ref_state, r->B, r->T, RH, RDK, RDV,
                             RETCL_LAYOUT_TOKEN_MAJOR, R_CHUNK);
  }
  return 1;
}

/* Buffers: q, k, v, log decay, state in, state out, out. */
enum { RQ, RK, RV, RLG, RSI, RSO, ROUT };

static retcl_status retention_open(retcl_context *ctx, void **inst, char *why,
                                   size_t cap) {
  size_t most = 0;
  for (size_t i = 0; i < N_RET; ++i) {
    if (ret_nv(&ret_shapes[i]) > most) most = ret_nv(&ret_shapes[i]);
    if (ret_ns(&ret_shapes[i]) > most) most = ret_ns(&ret_shapes[i]);
  }
  op_inst *in = inst_new(ctx, most, why, cap);
  if (!in) return RETCL_ERROR_OUT_OF_MEMORY;
  for (size_t i = 0; i < N_RET; ++i) {
    const ret_shape *r = &ret_shapes[i];
    if (!inst_upload(in, i, RQ, r->q, ret_nqk(r), why, cap) ||
        !inst_upload(in, i, RK, r->k, ret_nqk(r), why, cap) ||
        !inst_upload(in, i, RV, r->v, ret_nv(r), why, cap) ||
        !inst_upload(in, i, RLG, ret_log_decay, RH, why, cap) ||
        (r->state_in && !inst_upload(in, i, RSI, r->s0, ret_ns(r), why, cap)) ||
        (r->state_out && !inst_upload(in, i, RSO, NULL, ret_ns(r), why, cap)) ||
        !inst_upload(in, i, ROUT, NULL, ret_nv(r), why, cap)) {
      inst_free(in);
      return RETCL_ERROR_OPENCL;
    }
  }
  *inst = in;
  return RETCL_SUCCESS;
}

static retcl_status retention_run(void *p, size_t i) {
  op_inst *in = p;
  const ret_shape *r = &ret_shapes[i];
  retcl_retention_desc d = {0};
  d.batch = r->B, d.tokens = r->T, d.heads = RH;
  d.key_dim = RDK, d.value_dim = RDV;
  d.layout = RETCL_LAYOUT_TOKEN_MAJOR;
  d.algorithm = r->algo;
  d.form = RETCL_FORM_TORCHSCALE;
  d.chunk_size = R_CHUNK;
  d.position = r->state_in ? R_POSITION : 0;
  cl_mem *b = in->buf[i];
  /* The state goes from one buffer to another, so every run computes the
   * same thing. */
  return retcl_retention(in->ctx, &d, retcl_buf(b[RQ], 0), retcl_buf(b[RK], 0),
                         retcl_buf(b[RV], 0), retcl_buf(b[RLG], 0),
                         retcl_buf(b[RSI], 0), retcl_buf(b[RSO], 0),
                         retcl_buf(b[ROUT], 0), 0, NULL, NULL);
}

static tune_verdict retention_check(void *p, size_t i, char *why, size_t cap) {
  op_inst *in = p;
  const ret_shape *r = &ret_shapes[i];
  if (!tune_read(in->ctx, in->buf[i][ROUT], in->got, ret_nv(r), why, cap))
    return TUNE_NO_CHECK;
  double err = tune_rel_error(in->got, r->ref, ret_nv(r));
  if (!(err <= RET_TOL)) {
    snprintf(why, cap, "%s: output rel.err %.2g > %.0e",
             retention_shapes[i].what, err, RET_TOL);
    return TUNE_WRONG;
  }
  if (!r->state_out) return TUNE_RIGHT;
  if (!tune_read(in->ctx, in->buf[i][RSO], in->got, ret_ns(r), why, cap))
    return TUNE_NO_CHECK;
  err = tune_rel_error(in->got, r->ref_state, ret_ns(r));
  if (!(err <= RET_TOL)) {
    snprintf(why, cap, "%s: final state rel.err %.2g > %.0e",
             retention_shapes[i].what, err, RET_TOL);
    return TUNE_WRONG;
  }
  return TUNE_RIGHT;
}

/* Every key but chunk: chunk is what chunk_size = 0 means, and
 * torchscale's chunkwise form computes a slightly different function for
 * each chunk size (docs/design.md §1.4), so it is the caller's choice, not
 * a speed knob. gpu: 54 candidates. cpu: the register tiles (rb x nv and
 * kb x nv vector tiles, mr x 4 score tiles) with key tiles of a whole
 * default chunk, 48 candidates. */
static const tune_grid retention_grid = {
    4,
    {{"vw", 2, {8, 16}},
     {"rb", 3, {4, 8, 16}},
     {"kb", 3, {4, 8, 16}},
     {"kt", 3, {16, 32, 64}}}};
static const tune_grid retention_cpu_grid = {
    5,
    {{"vw", 2, {8, 16}},
     {"rb", 3, {2, 4, 8}},
     {"kb", 2, {4, 8}},
     {"nv", 2, {2, 4}},
     {"mr", 2, {2, 4}}}};

const tune_family tune_family_retention = {
    "retention",
    "torchscale retention: chunkwise, parallel, a decode step",
    NULL,
    NULL,
    1,
    1,
    {retention_grid, retention_cpu_grid},
    N_RET,
    retention_shapes,
    retention_setup,
    retention_teardown,
    retention_open,
    retention_run,
    retention_check,
    inst_free,
};

/* ---- group_norm ---------------------------------------------------------- */

/* test_group_norm's bound: fp32 statistics over at most ~1000 values and
 * the gate's exp stay within a few 1e-7. */
#define GN_TOL 2e-6

typedef struct gn_shape {
  retcl_group_norm_desc d;
  int weighted;
  float *x, *gate, *weight;
  double *ref;
} gn_shape;

/* The retention layer's per-head norm with its swish gate (prefill and a
 * decode step), and the model's RMS norms of whole 512-wide rows. */
static const tune_shape group_norm_shapes[] = {
    {"B1 T512 H4 D128 rms, swish gate (prefill)", 4.0 * 3 * 512 * 4 * 128},
    {"B8 T1 H4 D128 rms, swish gate (decode)", 4.0 * 3 * 8 * 4 * 128},
    {"T512 rows of 512 rms, weight (model norm)", 4.0 * (2 * 512 * 512 + 512)},
};
static gn_shape gn_shapes[] = {
    {{1, 512, 4, 128, RETCL_LAYOUT_TOKEN_MAJOR, RETCL_NORM_RMS,
      RETCL_GATE_SWISH, 1e-6f},
     0, NULL, NULL, NULL, NULL},
    {{8, 1, 4, 128, RETCL_LAYOUT_TOKEN_MAJOR, RETCL_NORM_RMS,
      RETCL_GATE_SWISH, 1e-6f},
     0, NULL, NULL, NULL, NULL},
    {{1, 512, 1, 512, RETCL_LAYOUT_TOKEN_MAJOR, RETCL_NORM_RMS,
      RETCL_GATE_NONE, 1e-6f},
     1, NULL, NULL, NULL, NULL},
};
#define N_GN (sizeof gn_shapes / sizeof gn_shapes[0])

static size_t gn_n(const gn_shape *g) {
  return g->d.batch * g->d.tokens * g->d.heads * g->d.head_dim;
}

static void group_norm_teardown(void) {
  for (size_t i = 0; i < N_GN; ++i) {
    free(gn_shapes[i].x), free(gn_shapes[i].gate), free(gn_shapes[i].weight);
    free(gn_shapes[i].ref);
    gn_shapes[i].x = gn_shapes[i].gate = gn_shapes[i].weight = NULL;
    gn_shapes[i].ref = NULL;
  }
}

/* x ~ U(±1), the gate wide enough to reach swish's tails, weights near 1
 * (as test_group_norm draws them). */
static int group_norm_setup(uint64_t *rng, char *why, size_t cap) {
  for (size_t i = 0; i < N_GN; ++i) {
    gn_shape *g = &gn_shapes[i];
    const size_t n = gn_n(g), channels = g->d.heads * g->d.head_dim;
    g->x = malloc(n * sizeof *g->x);
    g->gate = malloc(n * sizeof *g->gate);
    g->weight = malloc(channels * sizeof *g->weight);
    g->ref = malloc(n * sizeof *g->ref);
    if (!g->x || !g->gate || !g->weight || !g->ref) {
      snprintf(why, cap, "out of host memory");
      return 0;
    }
    tune_fill(g->x, n, -1, 1, rng);
    tune_fill(g->gate, n, -6, 6, rng);
    tune_fill(g->weight, channels, 0.5, 1.5, rng);
    ref_group_norm_gate(g->x, g->gate, g->weighted ? g->weight : NULL, NULL,
                        g->ref, g->d.batch, g->d.tokens, g->d.heads,
                        g->d.head_dim, g->d.layout, g->d.kind, g->d.gate,
                        g->d.eps);
  }
  return 1;
}

enum { GX, GGATE, GW, GOUT };

static retcl_status group_norm_open(retcl_context *ctx, void **inst, char *why,
                                    size_t cap) {
  size_t most = 0;
  for (size_t i = 0; i < N_GN; ++i)
    if (gn_n(&gn_shapes[i]) > most) most = gn_n(&gn_shapes[i]);
  op_inst *in = inst_new(ctx, most, why, cap);
  if (!in) return RETCL_ERROR_OUT_OF_MEMORY;
  for (size_t i = 0; i < N_GN; ++i) {
    const gn_shape *g = &gn_shapes[i];
    const size_t n = gn_n(g);
    if (!inst_upload(in, i, GX, g->x, n, why, cap) ||
        (g->d.gate != RETCL_GATE_NONE &&
         !inst_upload(in, i, GGATE, g->gate, n, why, cap)) ||
        (g->weighted && !inst_upload(in, i, GW, g->weight,
                                     g->d.heads * g->d.head_dim, why, cap)) ||
        !inst_upload(in, i, GOUT, NULL, n, why, cap)) {
      inst_free(in);
      return RETCL_ERROR_OPENCL;
    }
  }
  *inst = in;
  return RETCL_SUCCESS;
}

static retcl_status group_norm_run(void *p, size_t i) {
  op_inst *in = p;
  cl_mem *b = in->buf[i];
  return retcl_group_norm_gate(in->ctx, &gn_shapes[i].d, retcl_buf(b[GX], 0),
                               retcl_buf(b[GGATE], 0), retcl_buf(b[GW], 0),
                               retcl_no_buf(), retcl_buf(b[GOUT], 0), 0, NULL,
                               NULL);
}

static tune_verdict group_norm_check(void *p, size_t i, char *why,
                                     size_t cap) {
  op_inst *in = p;
  const size_t n = gn_n(&gn_shapes[i]);
  if (!tune_read(in->ctx, in->buf[i][GOUT], in->got, n, why, cap))
    return TUNE_NO_CHECK;
  const double err = tune_rel_error(in->got, gn_shapes[i].ref, n);
  if (err <= GN_TOL) return TUNE_RIGHT;
  snprintf(why, cap, "%s: rel.err %.2g > %.0e", group_norm_shapes[i].what,
           err, GN_TOL);
  return TUNE_WRONG;
}

/* cpu: rows per work-group; gpu: items per work-group (the host fits both
 * to the device's limit, so a large value is never an illegal group). */
const tune_family tune_family_group_norm = {
    "group_norm",
    "the layer's norm + gate and the model's RMS norms",
    "GB/s",
    NULL,
    1,
    1,
    {{1, {{"group_items", 6, {32, 64, 128, 256, 512, 1024}}}},
     {1, {{"row_items", 5, {1, 4, 16, 64, 256}}}}},
    N_GN,
    group_norm_shapes,
    group_norm_setup,
    group_norm_teardown,
    group_norm_open,
    group_norm_run,
    group_norm_check,
    inst_free,
};

/* ---- rotation ------------------------------------------------------------ */

/* test_rotation's bound: the angle is reduced exactly, then fp32 sin/cos and
 * one multiply-add (~1e-7). */
#define ROT_TOL 1e-6
enum { RO_H = 4, RO_D = 128 };

typedef struct rot_shape {
  size_t B, T, pos0;
  float *x;
  double *ref;
} rot_shape;

static const tune_shape rotation_shapes[] = {
    {"B1 T512 H4 D128 from position 0 (prefill)", 4.0 * 2 * 512 * 4 * 128},
    {"B8 T1 H4 D128 at position 1000 (decode)", 4.0 * 2 * 8 * 4 * 128},
};
static rot_shape rot_shapes[] = {{1, 512, 0, NULL, NULL},
                                 {8, 1, 1000, NULL, NULL}};
#define N_ROT (sizeof rot_shapes / sizeof rot_shapes[0])

static size_t rot_n(const rot_shape *r) { return r->B * r->T * RO_H * RO_D; }

static void rotation_teardown(void) {
  for (size_t i = 0; i < N_ROT; ++i) {
    free(rot_shapes[i].x), free(rot_shapes[i].ref);
    rot_shapes[i].x = NULL;
    rot_shapes[i].ref = NULL;
  }
}

static int rotation_setup(uint64_t *rng, char *why, size_t cap) {
  for (size_t i = 0; i < N_ROT; ++i) {
    rot_shape *r = &rot_shapes[i];
    r->x = malloc(rot_n(r) * sizeof *r->x);
    r->ref = malloc(rot_n(r) * sizeof *r->ref);
    if (!r->x || !r->ref) {
      snprintf(why, cap, "out of host memory");
      return 0;
    }
    tune_fill(r->x, rot_n(r), -1, 1, rng);
    ref_rotate(r->x, r->ref, r->B, r->T, RO_H, RO_D, RETCL_LAYOUT_TOKEN_MAJOR,
               r->pos0, NULL, 0.0, 0);
  }
  return 1;
}

static retcl_status rotation_open(retcl_context *ctx, void **inst, char *why,
                                  size_t cap) {
  size_t most = 0;
  for (size_t i = 0; i < N_ROT; ++i)
    if (rot_n(&rot_shapes[i]) > most) most = rot_n(&rot_shapes[i]);
  op_inst *in = inst_new(ctx, most, why, cap);
  if (!in) return RETCL_ERROR_OUT_OF_MEMORY;
  const retcl_status st = retcl_rotation_create(ctx, RO_D, NULL, 0.0f, &in->rot);
  if (st) {
    snprintf(why, cap, "retcl_rotation_create: %s", retcl_last_error(ctx));
    inst_free(in);
    return st;
  }
  for (size_t i = 0; i < N_ROT; ++i)
    if (!inst_upload(in, i, 0, rot_shapes[i].x, rot_n(&rot_shapes[i]), why,
                     cap) ||
        !inst_upload(in, i, 1, NULL, rot_n(&rot_shapes[i]), why, cap)) {
      inst_free(in);
      return RETCL_ERROR_OPENCL;
    }
  *inst = in;
  return RETCL_SUCCESS;
}

static retcl_status rotation_run(void *p, size_t i) {
  op_inst *in = p;
  const rot_shape *r = &rot_shapes[i];
  const retcl_rotation_desc d = {r->B, r->T, RO_H, RETCL_LAYOUT_TOKEN_MAJOR,
                                 r->pos0, 0, {0, NULL, NULL, NULL}};
  return retcl_rotate(in->ctx, in->rot, &d, retcl_buf(in->buf[i][0], 0),
                      retcl_buf(in->buf[i][1], 0), 0, NULL, NULL);
}

static tune_verdict rotation_check(void *p, size_t i, char *why, size_t cap) {
  op_inst *in = p;
  const size_t n = rot_n(&rot_shapes[i]);
  if (!tune_read(in->ctx, in->buf[i][1], in->got, n, why, cap))
    return TUNE_NO_CHECK;
  const double err = tune_rel_error(in->got, rot_shapes[i].ref, n);
  if (err <= ROT_TOL) return TUNE_RIGHT;
  snprintf(why, cap, "%s: rel.err %.2g > %.0e", rotation_shapes[i].what, err,
           ROT_TOL);
  return TUNE_WRONG;
}

/* Tokens per work-group of Dk / 2 items (0: the driver's choice). A group
 * beyond the device's limit does not fit and is passed over. */
static const tune_grid rotation_grid = {
    1, {{"group_tokens", 6, {0, 1, 2, 4, 8, 16}}}};

const tune_family tune_family_rotation = {
    "rotation",
    "rotation of queries and keys, prefill and decode",
    "GB/s",
    NULL,
    0,
    0,
    {rotation_grid, rotation_grid},
    N_ROT,
    rotation_shapes,
    rotation_setup,
    rotation_teardown,
    rotation_open,
    rotation_run,
    rotation_check,
    inst_free,
};
