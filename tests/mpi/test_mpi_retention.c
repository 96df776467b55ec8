/* test_mpi_retention.c - sequence-parallel retention (libretcl_mpi) under
 * mpirun with any number of ranks (CI: 1, 2, 3). Plain C with its own
 * checks (Check forks, which does not mix with MPI): every rank checks its
 * slice, failures are counted and reduced, the exit status is nonzero on
 * any failure. An alarm ends a hung run.
 *
 * Every case builds the whole sequence from one seed on every rank, gives
 * rank r its slice, and compares the rank's outputs (and the last rank's
 * state_out) with (1) retcl_retention of the whole sequence on one device
 * and (2) the double-precision reference, both within 1e-5 relative
 * (norm-wise, the bound test_retention uses for single-device calls: the
 * split only adds one fp32 state hand-off per rank). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_harness.h"
#include "ref_retention.h"
#include "retcl_mpi.h"

#define TOL 1e-5

/* The seed without RETCL_TEST_SEED: fixed, so that a run repeats. */
#define DEFAULT_SEED 0x5eed1234abcdULL

static double uni(uint64_t *s, double lo, double hi) {
  return lo + (hi - lo) * retcl_random_uniform(s);
}

static size_t at(retcl_layout l, size_t T, size_t H, size_t D, size_t b,
                 size_t t, size_t hh, size_t d) {
  return l == RETCL_LAYOUT_TOKEN_MAJOR ? ((b * T + t) * H + hh) * D + d
                                       : ((b * H + hh) * T + t) * D + d;
}

/* Tokens [t0, t0+L) of x [B,T,H,D] into y [B,L,H,D] (same layout). */
static void slice(const float *x, float *y, retcl_layout l, size_t B,
                  size_t T, size_t H, size_t D, size_t t0, size_t L) {
  for (size_t b = 0; b < B; ++b)
    for (size_t t = 0; t < L; ++t)
      for (size_t hh = 0; hh < H; ++hh)
        for (size_t d = 0; d < D; ++d)
          y[at(l, L, H, D, b, t, hh, d)] = x[at(l, T, H, D, b, t0 + t, hh, d)];
}
static void slice_d(const double *x, double *y, retcl_layout l, size_t B,
                    size_t T, size_t H, size_t D, size_t t0, size_t L) {
  for (size_t b = 0; b < B; ++b)
    for (size_t t = 0; t < L; ++t)
      for (size_t hh = 0; hh < H; ++hh)
        for (size_t d = 0; d < D; ++d)
          y[at(l, L, H, D, b, t, hh, d)] = x[at(l, T, H, D, b, t0 + t, hh, d)];
}

static double rel_err(const float *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(a[i])) return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}
static double rel_err_f(const float *a, const float *b, size_t n) {
  double *bd = malloc(n * sizeof *bd);
  for (size_t i = 0; i < n; ++i) bd[i] = b[i];
  double e = rel_err(a, bd, n);
  free(bd);
  return e;
}

static cl_mem upload(const float *x, size_t n) {
  cl_int err;
  cl_mem m = clCreateBuffer(retcl_context_cl_context(mh_ctx),
                            CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                            n * sizeof(float), (void *)x, &err);
  if (err != CL_SUCCESS) {
    fprintf(stderr, "[rank %d] clCreateBuffer failed %d\n", mh_rank, err);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  return m;
}
static cl_mem poisoned(size_t n) {
  float *x = malloc(n * sizeof *x);
  for (size_t i = 0; i < n; ++i) x[i] = NAN;
  cl_mem m = upload(x, n);
  free(x);
  return m;
}
static void download(cl_mem m, float *x, size_t n) {
  clEnqueueReadBuffer(retcl_context_queue(mh_ctx), m, CL_TRUE, 0,
                      n * sizeof(float), x, 0, NULL, NULL);
}

typedef struct tcase {
  const char *name;
  size_t B, H, Dk, Dv, C;
  retcl_layout layout;
  retcl_algorithm algo;
  retcl_retention_form form;
  float scale;
  size_t lens[3]; /* slice lengths for 3 ranks; fewer ranks merge the tail */
  int state_in;   /* rank 0 starts from a random state */
  size_t position; /* torchscale: tokens absorbed by that state */
} tcase;

/* Rank r's slice: lens[r] for r < mh_size-1, the rest for the last rank. */
static void my_slice(const tcase *c, size_t *t0, size_t *L, size_t *T) {
  size_t total = c->lens[0] + c->lens[1] + c->lens[2];
  size_t start = 0;
  for (int r = 0; r < mh_rank; ++r) start += c->lens[r];
  *t0 = start;
  *L = mh_rank == mh_size - 1 ? total - start : c->lens[mh_rank];
  *T = total;
}

typedef struct data {
  size_t T;
  float *q, *k, *v, *lg, *s0;
} data;

static void make(const tcase *c, size_t T, data *x) {
  uint64_t s = mh_seed ^ (uint64_t)(T * 1315423911u + c->H * 7 + c->Dk);
  const size_t nqk = c->B * T * c->H * c->Dk, nvo = c->B * T * c->H * c->Dv;
  const size_t ns = c->B * c->H * c->Dk * c->Dv;
  x->T = T;
  x->q = malloc(nqk * sizeof(float));
  x->k = malloc(nqk * sizeof(float));
  x->v = malloc(nvo * sizeof(float));
  x->lg = malloc(c->H * sizeof(float));
  x->s0 = malloc(ns * sizeof(float));
  const double qs = 1.0 / sqrt((double)c->Dk);
  for (size_t i = 0; i < nqk; ++i) x->q[i] = (float)uni(&s, -qs, qs);
  for (size_t i = 0; i < nqk; ++i) x->k[i] = (float)uni(&s, -1, 1);
  for (size_t i = 0; i < nvo; ++i) x->v[i] = (float)uni(&s, -1, 1);
  for (size_t i = 0; i < ns; ++i) x->s0[i] = (float)uni(&s, -1, 1);
  for (size_t hh = 0; hh < c->H; ++hh) x->lg[hh] = (float)log(uni(&s, 0.6, 0.99));
}
static void unmake(data *x) {
  free(x->q);
  free(x->k);
  free(x->v);
  free(x->lg);
  free(x->s0);
}

static retcl_retention_desc desc_of(const tcase *c, size_t T) {
  retcl_retention_desc d;
  memset(&d, 0, sizeof d);
  d.batch = c->B;
  d.tokens = T;
  d.heads = c->H;
  d.key_dim = c->Dk;
  d.value_dim = c->Dv;
  d.layout = c->layout;
  d.algorithm = c->algo;
  d.form = c->form;
  d.chunk_size = c->C;
  d.scale = c->scale;
  d.position = c->state_in ? c->position : 0;
  return d;
}

/* One case with one scan method: compare with one device and the
 * reference. Returns the stats. */
static retcl_mpi_stats run(const tcase *c, retcl_mpi_scan scan) {
  size_t t0, L, T;
  my_slice(c, &t0, &L, &T);
  data x;
  make(c, T, &x);
  const size_t B = c->B, H = c->H, Dk = c->Dk, Dv = c->Dv;
  const size_t ns = B * H * Dk * Dv, nvo = B * T * H * Dv, nvo_l = B * L * H * Dv;
  float *qs = malloc(B * L * H * Dk * sizeof(float)),
        *ks = malloc(B * L * H * Dk * sizeof(float)),
        *vs = malloc(nvo_l * sizeof(float));
  slice(x.q, qs, c->layout, B, T, H, Dk, t0, L);
  slice(x.k, ks, c->layout, B, T, H, Dk, t0, L);
  slice(x.v, vs, c->layout, B, T, H, Dv, t0, L);
  cl_mem q = upload(qs, B * L * H * Dk), k = upload(ks, B * L * H * Dk),
         v = upload(vs, nvo_l), lg = upload(x.lg, H);
  cl_mem s_in = mh_rank == 0 && c->state_in ? upload(x.s0, ns) : NULL;
  cl_mem s_out = poisoned(ns), out = poisoned(nvo_l);
  retcl_retention_desc d = desc_of(c, L);
  retcl_mpi_stats stats;
  retcl_status st = retcl_mpi_retention(
      mh_handle, &d, scan, retcl_buf(q, 0), retcl_buf(k, 0), retcl_buf(v, 0),
      retcl_buf(lg, 0), retcl_buf(s_in, 0), retcl_buf(s_out, 0),
      retcl_buf(out, 0), &stats);
  const char *sn = scan == RETCL_MPI_SCAN_RING ? "ring" : "exscan";
  if (st) {
    failf("%s/%s: status %d: %s", c->name, sn, st,
          retcl_mpi_last_error(mh_handle));
  } else {
    float *got = malloc(nvo_l * sizeof(float)), *state = malloc(ns * sizeof(float));
    download(out, got, nvo_l);
    download(s_out, state, ns);
    /* (1) One device, the whole sequence. */
    cl_mem qa = upload(x.q, B * T * H * Dk), ka = upload(x.k, B * T * H * Dk),
           va = upload(x.v, nvo), oa = poisoned(nvo), sa = poisoned(ns);
    cl_mem s0a = c->state_in ? upload(x.s0, ns) : NULL;
    retcl_retention_desc whole = desc_of(c, T);
    st = retcl_retention(mh_ctx, &whole, retcl_buf(qa, 0), retcl_buf(ka, 0),
                         retcl_buf(va, 0), retcl_buf(lg, 0), retcl_buf(s0a, 0),
                         retcl_buf(sa, 0), retcl_buf(oa, 0), 0, NULL, NULL);
    if (st) failf("%s: one-device call: %s", c->name, retcl_last_error(mh_ctx));
    float *one = malloc(nvo * sizeof(float)), *one_s = malloc(ns * sizeof(float));
    float *one_l = malloc(nvo_l * sizeof(float));
    download(oa, one, nvo);
    download(sa, one_s, ns);
    slice(one, one_l, c->layout, B, T, H, Dv, t0, L);
    /* (2) The reference. */
    double *ref = malloc(nvo * sizeof(double)), *ref_s = malloc(ns * sizeof(double));
    double *ref_l = malloc(nvo_l * sizeof(double));
    if (c->form == RETCL_FORM_RAW)
      ref_retention_raw(x.q, x.k, x.v, x.lg, c->state_in ? x.s0 : NULL, ref,
                        ref_s, B, T, H, Dk, Dv, c->layout,
                        c->scale != 0 ? c->scale : 1.0);
    else
      ref_retention_torchscale(c->algo, x.q, x.k, x.v, x.lg,
                               c->state_in ? x.s0 : NULL,
                               c->state_in ? c->position : 0, ref, ref_s, B, T,
                               H, Dk, Dv, c->layout, c->C);
    slice_d(ref, ref_l, c->layout, B, T, H, Dv, t0, L);
    const double e1 = rel_err_f(got, one_l, nvo_l), e2 = rel_err(got, ref_l, nvo_l);
    if (!(e1 <= TOL)) failf("%s/%s: out vs one device: %.3g", c->name, sn, e1);
    if (!(e2 <= TOL)) failf("%s/%s: out vs reference: %.3g", c->name, sn, e2);
    double e3 = 0, e4 = 0;
    if (mh_rank == mh_size - 1) {
      e3 = rel_err_f(state, one_s, ns);
      e4 = rel_err(state, ref_s, ns);
      if (!(e3 <= TOL)) failf("%s/%s: final state vs one device: %.3g", c->name, sn, e3);
      if (!(e4 <= TOL)) failf("%s/%s: final state vs reference: %.3g", c->name, sn, e4);
    } else {
      for (size_t i = 0; i < ns; ++i)
        if (!isfinite(state[i])) {
          failf("%s/%s: rank's state_out not written", c->name, sn);
          break;
        }
    }
    if (getenv("RETCL_TEST_VERBOSE"))
      printf("[rank %d/%d] %-28s %-6s tokens %zu..%zu  out %.2e/%.2e  state %.2e/%.2e\n",
             mh_rank, mh_size, c->name, sn, t0, t0 + L, e1, e2, e3, e4);
    cl_mem rel[] = {qa, ka, va, oa, sa, s0a};
    for (int i = 0; i < 6; ++i)
      if (rel[i]) clReleaseMemObject(rel[i]);
    free(got); free(state); free(one); free(one_s); free(one_l);
    free(ref); free(ref_s); free(ref_l);
  }
  cl_mem rel[] = {q, k, v, lg, s_in, s_out, out};
  for (int i = 0; i < 7; ++i)
    if (rel[i]) clReleaseMemObject(rel[i]);
  free(qs); free(ks); free(vs);
  unmake(&x);
  return stats;
}

/* A call that must fail on every rank with `want`, the message naming
 * `word` on the failing rank and "rank N failed" elsewhere; out stays NaN
 * on every rank. On rank bad_rank, spoil(&args) spoils the arguments
 * (NULL: an output one float short). */
typedef struct bad_args {
  retcl_retention_desc d;
  retcl_buffer q, k, v, lg, s_in, s_out, out;
  retcl_mpi_scan scan;
} bad_args;

static void expect_fail(const char *name, int bad_rank,
                        void (*spoil)(bad_args *), retcl_status want,
                        const char *word, int blamed) {
  tcase c = {name, 1, 2, 8, 8, 4, RETCL_LAYOUT_TOKEN_MAJOR,
             RETCL_ALGO_CHUNKWISE, RETCL_FORM_RAW, 0, {5, 4, 3}, 0, 0};
  size_t t0, L, T;
  my_slice(&c, &t0, &L, &T);
  data x;
  make(&c, T, &x);
  const size_t nqk = L * 2 * 8, ns = 2 * 8 * 8;
  cl_mem q = upload(x.q, nqk), k = upload(x.k, nqk), v = upload(x.v, nqk),
         lg = upload(x.lg, 2), out = poisoned(nqk), s_out = poisoned(ns),
         small = poisoned(nqk - 1), s0 = upload(x.s0, ns);
  bad_args a = {desc_of(&c, L), retcl_buf(q, 0), retcl_buf(k, 0),
                retcl_buf(v, 0), retcl_buf(lg, 0), retcl_no_buf(),
                retcl_buf(s_out, 0), retcl_buf(out, 0), RETCL_MPI_SCAN_EXSCAN};
  if (mh_rank == bad_rank) {
    if (spoil == NULL) a.out = retcl_buf(small, 0);
    else spoil(&a);
    if (a.s_in.mem == (cl_mem)1) a.s_in = retcl_buf(s0, 0);
  }
  retcl_status st = retcl_mpi_retention(mh_handle, &a.d, a.scan, a.q, a.k,
                                        a.v, a.lg, a.s_in, a.s_out, a.out,
                                        NULL);
  const char *msg = retcl_mpi_last_error(mh_handle);
  if (st != want)
    failf("%s: status %d, expected %d (%s)", name, st, want, msg);
  if (blamed && mh_rank != bad_rank) {
    char expect[64];
    snprintf(expect, sizeof expect, "rank %d failed", bad_rank);
    if (!strstr(msg, expect)) failf("%s: message \"%s\" lacks \"%s\"", name, msg, expect);
  }
  if (!strstr(msg, word)) failf("%s: message \"%s\" lacks \"%s\"", name, msg, word);
  float *got = malloc(nqk * sizeof(float));
  download(out, got, nqk);
  for (size_t i = 0; i < nqk; ++i)
    if (!isnan(got[i])) {
      failf("%s: out was written", name);
      break;
    }
  download(s_out, got, ns < nqk ? ns : nqk);
  for (size_t i = 0; i < (ns < nqk ? ns : nqk); ++i)
    if (!isnan(got[i])) {
      failf("%s: state_out was written", name);
      break;
    }
  free(got);
  cl_mem rel[] = {q, k, v, lg, out, s_out, small, s0};
  for (int i = 0; i < 8; ++i) clReleaseMemObject(rel[i]);
  unmake(&x);
}

static void spoil_tokens(bad_args *a) { a->d.tokens = 0; }
static void spoil_heads(bad_args *a) { a->d.heads = 1; }
static void spoil_state_in(bad_args *a) { a->s_in.mem = (cl_mem)1; }
static void spoil_q(bad_args *a) { a->q.mem = NULL; }
static void spoil_scan(bad_args *a) { a->scan = (retcl_mpi_scan)9; }

int main(int argc, char **argv) {
  mpi_test_start(&argc, &argv, "test_mpi_retention", 150);
  mh_seed = DEFAULT_SEED;
  if (getenv("RETCL_TEST_SEED")) mh_seed = strtoull(getenv("RETCL_TEST_SEED"), NULL, 0);
  if (mpi_test_open()) return 1;
  if (retcl_mpi_rank(mh_handle) != mh_rank ||
      retcl_mpi_size(mh_handle) != mh_size)
    failf("rank/size accessors: %d/%d", retcl_mpi_rank(mh_handle),
          retcl_mpi_size(mh_handle));
  int cmp = MPI_UNEQUAL;
  MPI_Comm_compare(retcl_mpi_comm(mh_handle), MPI_COMM_WORLD, &cmp);
  if (cmp != MPI_CONGRUENT) failf("the handle's communicator is not a duplicate");

  /* Raw: slices not multiples of the chunk (8), a rank with one token. */
  const tcase cases[] = {
      {"raw chunkwise", 2, 3, 16, 8, 8, RETCL_LAYOUT_TOKEN_MAJOR,
       RETCL_ALGO_CHUNKWISE, RETCL_FORM_RAW, 0.5f, {13, 1, 23}, 1, 0},
      {"raw parallel head-major", 1, 2, 8, 12, 0, RETCL_LAYOUT_HEAD_MAJOR,
       RETCL_ALGO_PARALLEL, RETCL_FORM_RAW, 0, {7, 11, 1}, 0, 0},
      {"raw recurrent", 2, 2, 8, 8, 0, RETCL_LAYOUT_TOKEN_MAJOR,
       RETCL_ALGO_RECURRENT, RETCL_FORM_RAW, 0, {1, 9, 10}, 1, 0},
      {"torchscale recurrent", 2, 3, 8, 8, 0, RETCL_LAYOUT_TOKEN_MAJOR,
       RETCL_ALGO_RECURRENT, RETCL_FORM_TORCHSCALE, 0, {6, 1, 14}, 1, 5},
      {"torchscale chunkwise", 2, 3, 16, 8, 8, RETCL_LAYOUT_TOKEN_MAJOR,
       RETCL_ALGO_CHUNKWISE, RETCL_FORM_TORCHSCALE, 0, {16, 8, 21}, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    run(&cases[i], RETCL_MPI_SCAN_EXSCAN);
    run(&cases[i], RETCL_MPI_SCAN_RING);
  }

  /* Bytes: one pair per rank, 16 + 4H + 4BHDkDv, whatever the length. */
  {
    tcase a = cases[0], b = cases[0];
    b.lens[0] = 40; b.lens[1] = 17; b.lens[2] = 30;
    for (int m = 0; m < 2; ++m) {
      const retcl_mpi_scan scan = m ? RETCL_MPI_SCAN_RING : RETCL_MPI_SCAN_EXSCAN;
      retcl_mpi_stats sa = run(&a, scan), sb = run(&b, scan);
      const size_t want = mh_size == 1 ? 0 : 16 + 4 * a.H + 4 * a.B * a.H * a.Dk * a.Dv;
      if (sa.pair_bytes != want || sb.pair_bytes != want)
        failf("pair_bytes %zu / %zu, expected %zu", sa.pair_bytes, sb.pair_bytes, want);
      if (sa.bytes_sent != sb.bytes_sent || sa.bytes_received != sb.bytes_received)
        failf("bytes depend on the slice length: %zu/%zu vs %zu/%zu", sa.bytes_sent,
              sa.bytes_received, sb.bytes_sent, sb.bytes_received);
      const size_t sent =
          mh_size > 1 && (scan == RETCL_MPI_SCAN_EXSCAN || mh_rank < mh_size - 1) ? want : 0;
      const size_t recv =
          mh_size > 1 && (scan == RETCL_MPI_SCAN_EXSCAN || mh_rank > 0) ? want : 0;
      if (sa.bytes_sent != sent || sa.bytes_received != recv)
        failf("%s: sent %zu received %zu, expected %zu %zu", m ? "ring" : "exscan",
              sa.bytes_sent, sa.bytes_received, sent, recv);
      if (mh_rank == 0 && getenv("RETCL_TEST_VERBOSE"))
        printf("bytes per rank (%s): pair %zu, sent %zu, received %zu, control %zu\n",
               m ? "ring" : "exscan", sa.pair_bytes, sa.bytes_sent, sa.bytes_received,
               sa.control_bytes);
    }
  }

  /* Rejected on every rank. */
  {
    tcase p = cases[4];
    p.name = "torchscale parallel";
    p.algo = RETCL_ALGO_PARALLEL;
    size_t t0, L, T;
    my_slice(&p, &t0, &L, &T);
    retcl_retention_desc d = desc_of(&p, L);
    cl_mem m = poisoned(p.B * T * p.H * 16);
    retcl_buffer b = retcl_buf(m, 0);
    retcl_status st = retcl_mpi_retention(mh_handle, &d, RETCL_MPI_SCAN_EXSCAN, b, b, b, b,
                                          retcl_no_buf(), retcl_no_buf(), retcl_buf(m, 0), NULL);
    if (st != RETCL_ERROR_UNSUPPORTED ||
        !strstr(retcl_mpi_last_error(mh_handle), "does not split"))
      failf("torchscale parallel: status %d: %s", st,
            retcl_mpi_last_error(mh_handle));
    clReleaseMemObject(m);
  }
  if (mh_size > 1) {
    /* torchscale chunkwise with a slice off the chunk grid. */
    tcase p = cases[4];
    p.lens[0] = 12;
    size_t t0, L, T;
    my_slice(&p, &t0, &L, &T);
    retcl_retention_desc d = desc_of(&p, L);
    const size_t n = p.B * L * p.H * 16;
    cl_mem m = poisoned(n), o = poisoned(n), lgm = poisoned(p.H);
    retcl_buffer b = retcl_buf(m, 0);
    retcl_status st = retcl_mpi_retention(mh_handle, &d, RETCL_MPI_SCAN_RING,
                                          b, b, b, retcl_buf(lgm, 0),
                                          retcl_no_buf(), retcl_no_buf(),
                                          retcl_buf(o, 0), NULL);
    if (st != RETCL_ERROR_UNSUPPORTED ||
        !strstr(retcl_mpi_last_error(mh_handle), "multiple of the chunk"))
      failf("torchscale chunkwise off the grid: status %d: %s", st,
            retcl_mpi_last_error(mh_handle));
    clReleaseMemObject(m);
    clReleaseMemObject(o);
    clReleaseMemObject(lgm);
  }
  const int last = mh_size - 1;
  expect_fail("out too small on the last rank", last, NULL,
              RETCL_ERROR_BUFFER_TOO_SMALL, "out", 1);
  expect_fail("tokens 0 on rank 0", 0, spoil_tokens, RETCL_ERROR_INVALID_SIZE,
              "tokens", 1);
  expect_fail("q NULL on the last rank", last, spoil_q,
              RETCL_ERROR_INVALID_ARGUMENT, "q is NULL", 1);
  expect_fail("bad scan on rank 0", 0, spoil_scan, RETCL_ERROR_INVALID_ARGUMENT,
              "scan", 1);
  if (mh_size > 1) {
    expect_fail("state_in on rank 1", 1, spoil_state_in,
                RETCL_ERROR_INVALID_ARGUMENT, "state_in", 1);
    expect_fail("heads differ on the last rank", last, spoil_heads,
                RETCL_ERROR_INVALID_ARGUMENT, "desc->heads differs", 0);
  }

  const int total = mpi_test_close();
  if (mh_rank == 0)
    printf("test_mpi_retention: %d ranks, %s (%d failures)\n", mh_size,
           total ? "FAILED" : "passed", total);
  MPI_Finalize();
  return total ? 1 : 0;
}
