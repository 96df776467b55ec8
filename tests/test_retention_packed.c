/* test_retention_packed.c - packed (variable-length) batches through the
 * rotation, retention and the layer (retcl_packing, include/retcl.h):
 * each sequence of a packed call must equal the same sequence run alone
 * (batch 1) and the double reference of that sequence, whatever the
 * algorithm, form, lengths (T = 1, empty, shorter than a chunk, not a
 * multiple of it, many), slot map and positions; slots the call does not
 * name stay untouched; every malformed packing is rejected with nothing
 * written. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

/* Packed against alone on the same device: the same sums over the same
 * tokens, but a packed launch may cut its work differently (the tiles of
 * the parallel form, the split of the state sweep, the work-group shapes
 * chosen from the stream's length), so the fp32 summation order may
 * differ; bitwise equality is not part of the contract. 1e-6 relative is a
 * few ulps of accumulated rounding over these sizes and far below the
 * 1e-2 .. 1 that a chunk crossing a sequence boundary, a wrong slot or a
 * wrong position gives. (How many sequences came out bitwise equal is
 * printed.) */
#define PACK_TOL 1e-6
/* Against the double reference: the bound of tests/test_retention.c. */
#define RET_TOL 1e-5
/* The layer runs GEMMs over the whole stream: a GEMM of M = tokens rows may
 * pick another kernel (CLBlast's direct or indirect one, RetCL's
 * weight-streaming one for few rows) than the sequence alone, which sums in
 * another order; the layer's bound against its reference is 1e-5
 * (tests/test_layer.c), and so is this one. */
#define LAYER_TOL 1e-5
#define ROT_TOL 1e-6

#define MAXSEQ 48

static const retcl_algorithm ALGOS[3] = {
    RETCL_ALGO_PARALLEL, RETCL_ALGO_RECURRENT, RETCL_ALGO_CHUNKWISE};
static const char *const ALGO_NAMES[3] = {"parallel", "recurrent",
                                          "chunkwise"};

static int g_bitwise, g_compared;

typedef struct pk_case {
  const char *name;
  size_t H, Dk, Dv;
  size_t n;                /* sequences */
  size_t len[MAXSEQ];
  retcl_retention_form form;
  size_t C;
  float scale;
  int with_in, with_out;   /* state buffers given */
  int in_place;            /* state_out is state_in */
  size_t nslots;           /* slots each state buffer holds */
  int use_slots;
  int32_t slots[MAXSEQ];
  int use_positions;
  size_t pos[MAXSEQ];
  size_t position;         /* desc.position (positions NULL) */
} pk_case;

static size_t offsets_of(const pk_case *c, size_t *off) {
  off[0] = 0;
  for (size_t i = 0; i < c->n; ++i) off[i + 1] = off[i] + c->len[i];
  return off[c->n];
}

static int32_t slot_of(const pk_case *c, size_t i) {
  return c->use_slots ? c->slots[i] : (int32_t)i;
}

static size_t pos_of(const pk_case *c, size_t i) {
  return c->use_positions ? c->pos[i] : c->position;
}

/* Does sequence i start from its state_in slot? */
static int reads_state(const pk_case *c, size_t i) {
  if (!c->with_in || slot_of(c, i) < 0) return 0;
  return c->form == RETCL_FORM_RAW || pos_of(c, i) > 0;
}

/* Relative error of a against b (both float; b widened). */
static double rel_f(const float *a, const float *b, size_t n) {
  double *bd = ref_widen(b, n);
  const double e = tu_rel_error(a, bd, n);
  free(bd);
  return e;
}

static void count_bitwise(const float *a, const float *b, size_t n) {
  ++g_compared;
  if (!memcmp(a, b, n * sizeof(float))) ++g_bitwise;
}

static void assert_nan(const char *what, const float *x, size_t n,
                       const pk_case *c, const char *algo) {
  for (size_t i = 0; i < n; ++i)
    ck_assert_msg(isnan(x[i]),
                  "%s [%s, %s]: element %zu was written (%g), seed %llu", what,
                  c->name, algo, i, (double)x[i],
                  (unsigned long long)tu_seed());
}

/* One alone run of sequence i (len >= 1) on the device: out [len, H, Dv],
 * and its final state when state_host is given. */
static void run_alone(retcl_context *ctx, const pk_case *c, retcl_algorithm a,
                      const float *q, const float *k, const float *v,
                      cl_mem lg, const float *s0, size_t position, size_t len,
                      float *out, float *state_host) {
  const size_t H = c->H, Dk = c->Dk, Dv = c->Dv, ns = H * Dk * Dv;
  cl_mem qb = tu_upload(ctx, q, len * H * Dk);
  cl_mem kb = tu_upload(ctx, k, len * H * Dk);
  cl_mem vb = tu_upload(ctx, v, len * H * Dv);
  cl_mem ob = tu_poisoned(ctx, len * H * Dv);
  cl_mem si = s0 ? tu_upload(ctx, s0, ns) : NULL;
  cl_mem so = state_host ? tu_poisoned(ctx, ns) : NULL;
  retcl_retention_desc d;
  memset(&d, 0, sizeof d);
  d.batch = 1, d.tokens = len, d.heads = H, d.key_dim = Dk, d.value_dim = Dv;
  d.layout = RETCL_LAYOUT_TOKEN_MAJOR, d.algorithm = a, d.form = c->form;
  d.chunk_size = c->C, d.scale = c->scale, d.position = position;
  tu_ok(ctx, retcl_retention(ctx, &d, retcl_buf(qb, 0), retcl_buf(kb, 0),
                             retcl_buf(vb, 0), retcl_buf(lg, 0),
                             retcl_buf(si, 0), retcl_buf(so, 0),
                             retcl_buf(ob, 0), 0, NULL, NULL));
  tu_download(ctx, ob, 0, out, len * H * Dv);
  if (so) tu_download(ctx, so, 0, state_host, ns);
  cl_mem all[] = {qb, kb, vb, ob, si, so};
  for (size_t j = 0; j < 6; ++j)
    if (all[j]) clReleaseMemObject(all[j]);
}

/* The packed call of c by algorithm a against each sequence alone and the
 * double reference of each sequence. */
static void check_packed(retcl_context *ctx, const pk_case *c,
                         retcl_algorithm a) {
  const char *an = ALGO_NAMES[a == RETCL_ALGO_PARALLEL    ? 0
                              : a == RETCL_ALGO_RECURRENT ? 1
                                                          : 2];
  const size_t H = c->H, Dk = c->Dk, Dv = c->Dv, ns = H * Dk * Dv;
  size_t off[MAXSEQ + 1];
  const size_t T = offsets_of(c, off);
  ck_assert_uint_ge(T, 1);
  const size_t nqk = T * H * Dk, nvo = T * H * Dv, nst = c->nslots * ns;
  float *q = tu_alloc(nqk), *k = tu_alloc(nqk), *v = tu_alloc(nvo);
  float *s_in = tu_alloc(nst ? nst : 1), lgh[64];
  const double qs = 1.0 / sqrt((double)Dk);
  tu_fill_uniform(q, nqk, -qs, qs);
  tu_fill_uniform(k, nqk, -1, 1);
  tu_fill_uniform(v, nvo, -1, 1);
  tu_fill_uniform(s_in, nst ? nst : 1, -1, 1);
  for (size_t h = 0; h < H; ++h) lgh[h] = (float)log(tu_uniform(0.6, 0.999));

  /* the packed call; offsets on the buffers exercise the arithmetic */
  const size_t o = 3;
  float *pad = tu_alloc((nqk > nvo ? nqk : nvo) + o);
  memcpy(pad + o, q, nqk * sizeof(float));
  cl_mem qb = tu_upload(ctx, pad, nqk + o);
  memcpy(pad + o, k, nqk * sizeof(float));
  cl_mem kb = tu_upload(ctx, pad, nqk + o);
  memcpy(pad + o, v, nvo * sizeof(float));
  cl_mem vb = tu_upload(ctx, pad, nvo + o);
  free(pad);
  cl_mem lg = tu_upload(ctx, lgh, H);
  cl_mem ob = tu_poisoned(ctx, nvo + o);
  cl_mem si = NULL, so = NULL;
  if (c->with_in) {
    float *p = tu_alloc(nst + o);
    memcpy(p + o, s_in, nst * sizeof(float));
    si = tu_upload(ctx, p, nst + o);
    free(p);
  }
  if (c->in_place)
    so = si;
  else if (c->with_out)
    so = tu_poisoned(ctx, nst + o);
  retcl_retention_desc d;
  memset(&d, 0, sizeof d);
  d.batch = 1, d.tokens = T, d.heads = H, d.key_dim = Dk, d.value_dim = Dv;
  d.layout = RETCL_LAYOUT_TOKEN_MAJOR, d.algorithm = a, d.form = c->form;
  d.chunk_size = c->C, d.scale = c->scale, d.position = c->position;
  d.packing.count = c->n;
  d.packing.offsets = off;
  d.packing.positions = c->use_positions ? c->pos : NULL;
  d.packing.state_slots = c->use_slots ? c->slots : NULL;
  retcl_status st = retcl_retention(
      ctx, &d, retcl_buf(qb, o), retcl_buf(kb, o), retcl_buf(vb, o),
      retcl_buf(lg, 0), retcl_buf(si, si ? o : 0), retcl_buf(so, so ? o : 0),
      retcl_buf(ob, o), 0, NULL, NULL);
  ck_assert_msg(st == RETCL_SUCCESS, "%s [%s]: packed retention: %s: %s",
                c->name, an, retcl_status_string(st), retcl_last_error(ctx));
  float *out = tu_alloc(nvo), *sout = tu_alloc(nst ? nst : 1);
  tu_download(ctx, ob, o, out, nvo);
  if (so) tu_download(ctx, so, o, sout, nst);

  /* each sequence alone, and its reference */
  int named[1 << 10];
  memset(named, 0, sizeof named);
  ck_assert_uint_le(c->nslots, sizeof named / sizeof named[0]);
  float *alone = tu_alloc(nvo), *astate = tu_alloc(ns);
  double *ref = tu_alloc_d(nvo), *rstate = tu_alloc_d(ns);
  char what[160];
  for (size_t i = 0; i < c->n; ++i) {
    const size_t len = c->len[i], t0 = off[i];
    const int32_t s = slot_of(c, i);
    const int rd = reads_state(c, i);
    const float *s0 = rd ? s_in + (size_t)s * ns : NULL;
    const size_t p = rd && c->form == RETCL_FORM_TORCHSCALE ? pos_of(c, i) : 0;
    const int keep = so && s >= 0;
    if (s >= 0) named[s] = 1;
    if (len == 0) {
      /* nothing to run: the final state is the initial one (or empty) */
      if (keep) {
        for (size_t j = 0; j < ns; ++j) astate[j] = s0 ? s0[j] : 0.0f;
        snprintf(what, sizeof what, "%s [%s]: seq %zu (empty) state slot %d",
                 c->name, an, i, s);
        ck_assert_msg(rel_f(sout + (size_t)s * ns, astate, ns) <= PACK_TOL,
                      "%s: relative error %.3g (seed %llu)", what,
                      rel_f(sout + (size_t)s * ns, astate, ns),
                      (unsigned long long)tu_seed());
      }
      continue;
    }
    const float *qi = q + t0 * H * Dk, *ki = k + t0 * H * Dk,
                *vi = v + t0 * H * Dv;
    run_alone(ctx, c, a, qi, ki, vi, lg, s0, p, len, alone,
              keep ? astate : NULL);
    const float *got = out + t0 * H * Dv;
    snprintf(what, sizeof what, "%s [%s]: seq %zu (len %zu, slot %d, pos %zu) "
             "output vs alone", c->name, an, i, len, s, pos_of(c, i));
    double e = rel_f(got, alone, len * H * Dv);
    ck_assert_msg(e <= PACK_TOL, "%s: relative error %.3g > %.3g (seed %llu)",
                  what, e, PACK_TOL, (unsigned long long)tu_seed());
    count_bitwise(got, alone, len * H * Dv);
    if (c->form == RETCL_FORM_RAW)
      ref_retention_raw(qi, ki, vi, lgh, s0, ref, rstate, 1, len, H, Dk, Dv,
                        RETCL_LAYOUT_TOKEN_MAJOR,
                        c->scale != 0 ? c->scale : 1.0);
    else
      ref_retention_torchscale(a, qi, ki, vi, lgh, s0, p, ref, rstate, 1, len,
                               H, Dk, Dv, RETCL_LAYOUT_TOKEN_MAJOR,
                               c->C ? c->C : 64);
    snprintf(what, sizeof what, "%s [%s]: seq %zu (len %zu) output vs "
             "reference", c->name, an, i, len);
    tu_assert_close(what, got, ref, len * H * Dv, RET_TOL);
    if (keep) {
      const float *gs = sout + (size_t)s * ns;
      snprintf(what, sizeof what, "%s [%s]: seq %zu state slot %d vs alone",
               c->name, an, i, s);
      e = rel_f(gs, astate, ns);
      ck_assert_msg(e <= PACK_TOL, "%s: relative error %.3g > %.3g (seed %llu)",
                    what, e, PACK_TOL, (unsigned long long)tu_seed());
      count_bitwise(gs, astate, ns);
      snprintf(what, sizeof what, "%s [%s]: seq %zu state slot %d vs "
               "reference", c->name, an, i, s);
      tu_assert_close(what, gs, rstate, ns, RET_TOL);
    }
  }
  /* slots no sequence names: untouched (poison, or state_in's values when
   * updated in place) */
  if (so)
    for (size_t s = 0; s < c->nslots; ++s) {
      if (named[s]) continue;
      snprintf(what, sizeof what, "state_out slot %zu (not named)", s);
      if (c->in_place)
        ck_assert_msg(!memcmp(sout + s * ns, s_in + s * ns, ns * sizeof(float)),
                      "%s [%s]: %s changed (seed %llu)", c->name, an, what,
                      (unsigned long long)tu_seed());
      else
        assert_nan(what, sout + s * ns, ns, c, an);
    }
  /* the padding before the outputs: untouched */
  float head[3];
  tu_download(ctx, ob, 0, head, o);
  assert_nan("out before its offset", head, o, c, an);

  cl_mem all[] = {qb, kb, vb, lg, ob, si, c->in_place ? NULL : so};
  for (size_t j = 0; j < 7; ++j)
    if (all[j]) clReleaseMemObject(all[j]);
  free(q), free(k), free(v), free(s_in), free(out), free(sout);
  free(alone), free(astate), free(ref), free(rstate);
}

static void all_algorithms(const pk_case *c) {
  retcl_context *ctx = tu_context();
  for (int a = 0; a < 3; ++a) check_packed(ctx, c, ALGOS[a]);
  retcl_context_destroy(ctx);
}

static void report_bitwise(const char *test) {
  printf("%s: %d of %d packed sequences/states bitwise equal to alone\n", test,
         g_bitwise, g_compared);
  g_bitwise = g_compared = 0;
}

/* ---- retention: raw form --------------------------------------------------- */

START_TEST(raw_mixed_lengths_slot_per_sequence) {
  /* T = 1, empty, shorter than a chunk (8), exactly one, not a multiple */
  pk_case c = {"raw mixed", 2, 16, 8, 8, {1, 0, 5, 8, 13, 17, 1, 3},
               RETCL_FORM_RAW, 8, 0, 1, 1, 0, 8};
  all_algorithms(&c);
  /* no state at all */
  c.with_in = c.with_out = 0;
  c.name = "raw mixed, no state";
  all_algorithms(&c);
  /* only a final state: every sequence starts empty */
  c.with_out = 1;
  c.name = "raw mixed, state_out only";
  all_algorithms(&c);
  report_bitwise("raw_mixed_lengths_slot_per_sequence");
}
END_TEST

START_TEST(raw_slot_permutation_minus_one_and_spare_slots) {
  /* odd head sizes, scale, chunk 7; slots 1, 4, 6 of 7 not named */
  pk_case c = {"raw permuted slots", 2, 12, 20, 5, {9, 1, 0, 20, 4},
               RETCL_FORM_RAW, 7, 0.25f, 1, 1, 0, 7, 1, {3, -1, 5, 0, 2}};
  all_algorithms(&c);
  c.name = "raw permuted slots, in place";
  c.in_place = 1;
  all_algorithms(&c);
  /* positions are the rotation's business: raw retention ignores them */
  c.name = "raw permuted slots, positions given";
  c.in_place = 0;
  c.use_positions = 1;
  size_t p[5] = {4, 0, 9, 100, 1};
  memcpy(c.pos, p, sizeof p);
  all_algorithms(&c);
  report_bitwise("raw_slot_permutation_minus_one_and_spare_slots");
}
END_TEST

START_TEST(raw_many_sequences) {
  pk_case c = {"raw many", 3, 8, 8, 40, {0}, RETCL_FORM_RAW, 4, 0, 1, 1, 0, 45,
               1, {0}};
  /* lengths 0 .. 11, a random permutation of 40 of the 45 slots, a few -1 */
  int32_t perm[45];
  for (int i = 0; i < 45; ++i) perm[i] = i;
  for (int i = 44; i > 0; --i) {
    const int j = (int)tu_uniform(0, i + 1 - 1e-9);
    const int32_t t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
  for (size_t i = 0; i < c.n; ++i) {
    c.len[i] = (size_t)tu_uniform(0, 12 - 1e-9);
    c.slots[i] = i % 9 == 4 ? -1 : perm[i];
  }
  c.len[7] = 1; /* at least one of each kind */
  c.len[8] = 0;
  all_algorithms(&c);
  report_bitwise("raw_many_sequences");
}
END_TEST

START_TEST(raw_single_sequence_and_long_one) {
  /* one sequence: packing of count 1 equals the rectangular call */
  pk_case c = {"raw one sequence", 2, 16, 16, 1, {37}, RETCL_FORM_RAW, 8, 0,
               1, 1, 0, 1};
  all_algorithms(&c);
  /* a long sequence between short ones, default chunk (64) */
  pk_case l = {"raw long among short", 2, 16, 16, 3, {2, 300, 1},
               RETCL_FORM_RAW, 0, 0, 1, 1, 0, 3};
  all_algorithms(&l);
  report_bitwise("raw_single_sequence_and_long_one");
}
END_TEST

/* ---- retention: torchscale form -------------------------------------------- */

START_TEST(torchscale_every_algorithm_fresh_start) {
  pk_case c = {"torchscale fresh", 2, 16, 24, 6, {1, 6, 0, 17, 8, 3},
               RETCL_FORM_TORCHSCALE, 8, 0, 0, 1, 0, 6};
  all_algorithms(&c);
  c.name = "torchscale fresh, no state";
  c.with_out = 0;
  all_algorithms(&c);
  /* a state_in buffer whose named slots are all at position 0: they are
   * empty, so parallel and chunkwise accept it and start fresh */
  c.name = "torchscale, state_in slots at position 0";
  c.with_in = c.with_out = 1;
  c.nslots = 9;
  c.use_slots = 1;
  int32_t s[6] = {8, 2, -1, 0, 5, 1};
  memcpy(c.slots, s, sizeof s);
  all_algorithms(&c);
  report_bitwise("torchscale_every_algorithm_fresh_start");
}
END_TEST

START_TEST(torchscale_recurrent_per_sequence_positions) {
  /* positions 0 mark empty slots (their state_in values are not used) */
  pk_case c = {"torchscale recurrent positions", 2, 16, 8, 6,
               {3, 1, 0, 6, 2, 1}, RETCL_FORM_TORCHSCALE, 8, 0, 1, 1, 0, 7,
               1, {1, 4, 0, -1, 2, 6}, 1, {5, 0, 7, 0, 100, 70001}};
  retcl_context *ctx = tu_context();
  check_packed(ctx, &c, RETCL_ALGO_RECURRENT);
  c.name = "torchscale recurrent positions, in place";
  c.in_place = 1;
  check_packed(ctx, &c, RETCL_ALGO_RECURRENT);
  /* positions NULL: every sequence continues from desc.position */
  c.name = "torchscale recurrent, one desc position";
  c.in_place = 0;
  c.use_positions = 0;
  c.position = 12;
  c.slots[3] = 3; /* no stateless sequence at a position > 0 */
  check_packed(ctx, &c, RETCL_ALGO_RECURRENT);
  retcl_context_destroy(ctx);
  report_bitwise("torchscale_recurrent_per_sequence_positions");
}
END_TEST

/* ---- rotation -------------------------------------------------------------- */

START_TEST(rotation_packed_equals_per_sequence) {
  retcl_context *ctx = tu_context();
  const size_t H = 3, D = 16, n = 6;
  const size_t len[6] = {4, 0, 1, 9, 2, 5};
  /* a position near 2^32 without xPos; xPos's factor ζ^(±n/512) over- or
   * underflows fp32 there, so with xPos the last one is 5000 */
  size_t pos[6] = {0, 3, 17, 1000, 5, 4000000000u};
  size_t off[7] = {0};
  for (size_t i = 0; i < n; ++i) off[i + 1] = off[i] + len[i];
  const size_t T = off[n], N = T * H * D;
  float *x = tu_alloc(N), *got = tu_alloc(N), *one = tu_alloc(N);
  double *ref = tu_alloc_d(N);
  tu_fill_uniform(x, N, -1, 1);
  const float bases[2] = {0, 512};
  for (int xp = 0; xp < 2; ++xp)
    for (int key = 0; key < 2; ++key)
      for (int use_pos = 0; use_pos < 2; ++use_pos) {
        pos[5] = xp ? 5000 : 4000000000u;
        retcl_rotation *rot = NULL;
        tu_ok(ctx, retcl_rotation_create(ctx, D, NULL, bases[xp], &rot));
        cl_mem in = tu_upload(ctx, x, N), out = tu_poisoned(ctx, N);
        retcl_rotation_desc d;
        memset(&d, 0, sizeof d);
        d.batch = 1, d.tokens = T, d.heads = H;
        d.layout = RETCL_LAYOUT_TOKEN_MAJOR, d.is_key = key, d.pos0 = 11;
        d.packing.count = n;
        d.packing.offsets = off;
        d.packing.positions = use_pos ? pos : NULL;
        tu_ok(ctx, retcl_rotate(ctx, rot, &d, retcl_buf(in, 0),
                                retcl_buf(out, 0), 0, NULL, NULL));
        tu_download(ctx, out, 0, got, N);
        for (size_t i = 0; i < n; ++i) {
          if (!len[i]) continue;
          const size_t p = use_pos ? pos[i] : 11, m = len[i] * H * D;
          retcl_rotation_desc e;
          memset(&e, 0, sizeof e);
          e.batch = 1, e.tokens = len[i], e.heads = H, e.pos0 = p;
          e.layout = RETCL_LAYOUT_TOKEN_MAJOR, e.is_key = key;
          cl_mem ib = tu_upload(ctx, x + off[i] * H * D, m);
          cl_mem obuf = tu_poisoned(ctx, m);
          tu_ok(ctx, retcl_rotate(ctx, rot, &e, retcl_buf(ib, 0),
                                  retcl_buf(obuf, 0), 0, NULL, NULL));
          tu_download(ctx, obuf, 0, one, m);
          char what[128];
          snprintf(what, sizeof what,
                   "rotate seq %zu (pos %zu, xpos %g, key %d, positions %s)", i,
                   p, (double)bases[xp], key, use_pos ? "given" : "NULL");
          const double err = rel_f(got + off[i] * H * D, one, m);
          ck_assert_msg(err <= ROT_TOL, "%s vs alone: %.3g (seed %llu)", what,
                        err, (unsigned long long)tu_seed());
          count_bitwise(got + off[i] * H * D, one, m);
          ref_rotate(x + off[i] * H * D, ref, 1, len[i], H, D,
                     RETCL_LAYOUT_TOKEN_MAJOR, p, NULL, bases[xp], key);
          tu_assert_close(what, got + off[i] * H * D, ref, m, ROT_TOL);
          clReleaseMemObject(ib);
          clReleaseMemObject(obuf);
        }
        /* in place */
        tu_ok(ctx, retcl_rotate(ctx, rot, &d, retcl_buf(in, 0),
                                retcl_buf(in, 0), 0, NULL, NULL));
        tu_download(ctx, in, 0, one, N);
        ck_assert_msg(rel_f(one, got, N) <= ROT_TOL, "in-place packed rotate");
        clReleaseMemObject(in);
        clReleaseMemObject(out);
        retcl_rotation_destroy(rot);
      }
  report_bitwise("rotation_packed_equals_per_sequence");
  free(x), free(got), free(one), free(ref);
  retcl_context_destroy(ctx);
}
END_TEST

/* ---- the layer -------------------------------------------------------------- */

typedef struct layer_pk {
  const char *name;
  size_t d, dv, H, chunk;
  retcl_algorithm algo;
  retcl_retention_form form;
  size_t n, len[8];
  int with_state;
  size_t nslots;
  int32_t slots[8];
  size_t pos[8];
} layer_pk;

static void check_layer_packed(retcl_context *ctx, const layer_pk *c) {
  const size_t d = c->d, dv = c->dv, H = c->H, Dk = d / H, Dv = dv / H;
  const size_t ns = H * Dk * Dv, nst = c->nslots * ns;
  size_t off[9] = {0};
  for (size_t i = 0; i < c->n; ++i) off[i + 1] = off[i] + c->len[i];
  const size_t T = off[c->n];
  const size_t wn[5] = {d * d, d * d, dv * d, dv * d, d * dv};
  float *x = tu_alloc(T * d), *W[5], lgh[16], *s_in = tu_alloc(nst);
  tu_fill_uniform(x, T * d, -1, 1);
  tu_fill_uniform(s_in, nst, -1, 1);
  for (int i = 0; i < 5; ++i) {
    W[i] = tu_alloc(wn[i]);
    const double a = 1.0 / sqrt((double)(i == 4 ? dv : d));
    tu_fill_uniform(W[i], wn[i], -a, a);
  }
  retcl_default_log_decay(H, lgh);
  cl_mem wb[5];
  for (int i = 0; i < 5; ++i) wb[i] = tu_upload(ctx, W[i], wn[i]);
  retcl_msr_weights w = {retcl_buf(wb[0], 0), retcl_buf(wb[1], 0),
                         retcl_buf(wb[2], 0), retcl_buf(wb[3], 0),
                         retcl_buf(wb[4], 0)};
  cl_mem lg = tu_upload(ctx, lgh, H);
  retcl_rotation *rot = NULL;
  tu_ok(ctx, retcl_rotation_create(ctx, Dk, NULL, 0, &rot));
  cl_mem xb = tu_upload(ctx, x, T * d), yb = tu_poisoned(ctx, T * d);
  cl_mem si = c->with_state ? tu_upload(ctx, s_in, nst) : NULL;
  cl_mem so = c->with_state ? tu_poisoned(ctx, nst) : NULL;
  retcl_msr_desc desc;
  memset(&desc, 0, sizeof desc);
  desc.batch = 1, desc.tokens = T, desc.embed_dim = d, desc.value_embed_dim = dv;
  desc.heads = H, desc.algorithm = c->algo, desc.form = c->form;
  desc.chunk_size = c->chunk, desc.norm_eps = 1e-6f;
  desc.packing.count = c->n;
  desc.packing.offsets = off;
  desc.packing.positions = c->pos;
  desc.packing.state_slots = c->slots;
  tu_ok(ctx, retcl_msr_forward(ctx, &desc, &w, rot, retcl_buf(lg, 0),
                               retcl_buf(xb, 0), retcl_buf(si, 0),
                               retcl_buf(so, 0), retcl_buf(yb, 0), 0, NULL,
                               NULL));
  float *y = tu_alloc(T * d), *sout = tu_alloc(nst), *ya = tu_alloc(T * d),
        *sa = tu_alloc(ns);
  double *ry = tu_alloc_d(T * d), *rs = tu_alloc_d(ns);
  tu_download(ctx, yb, 0, y, T * d);
  if (so) tu_download(ctx, so, 0, sout, nst);
  int named[16] = {0};
  char what[160];
  for (size_t i = 0; i < c->n; ++i) {
    const int32_t s = c->slots[i];
    const size_t len = c->len[i];
    if (s >= 0) named[s] = 1;
    const int rd = c->with_state && s >= 0 &&
                   (c->form == RETCL_FORM_RAW || c->pos[i] > 0);
    const float *s0 = rd ? s_in + (size_t)s * ns : NULL;
    const int keep = c->with_state && s >= 0;
    if (!len) {
      if (keep) {
        for (size_t j = 0; j < ns; ++j) sa[j] = s0 ? s0[j] : 0.0f;
        snprintf(what, sizeof what, "%s: empty seq %zu state", c->name, i);
        ck_assert_msg(rel_f(sout + (size_t)s * ns, sa, ns) <= PACK_TOL, "%s",
                      what);
      }
      continue;
    }
    cl_mem xi = tu_upload(ctx, x + off[i] * d, len * d);
    cl_mem yi = tu_poisoned(ctx, len * d);
    cl_mem sib = s0 ? tu_upload(ctx, s0, ns) : NULL;
    cl_mem sob = keep ? tu_poisoned(ctx, ns) : NULL;
    retcl_msr_desc e = desc;
    memset(&e.packing, 0, sizeof e.packing);
    e.tokens = len;
    e.pos0 = c->pos[i];
    /* alone, the torchscale position of a stateless start must be 0 only
     * for the retention; the rotation still starts at pos[i] */
    tu_ok(ctx, retcl_msr_forward(ctx, &e, &w, rot, retcl_buf(lg, 0),
                                 retcl_buf(xi, 0), retcl_buf(sib, 0),
                                 retcl_buf(sob, 0), retcl_buf(yi, 0), 0, NULL,
                                 NULL));
    tu_download(ctx, yi, 0, ya, len * d);
    snprintf(what, sizeof what, "%s: seq %zu (len %zu, slot %d, pos %zu) y vs "
             "alone", c->name, i, len, s, c->pos[i]);
    double err = rel_f(y + off[i] * d, ya, len * d);
    ck_assert_msg(err <= LAYER_TOL, "%s: %.3g (seed %llu)", what, err,
                  (unsigned long long)tu_seed());
    count_bitwise(y + off[i] * d, ya, len * d);
    const ref_msr_desc rd_ = {1, len, d, dv, H, c->algo, c->form, c->chunk,
                              c->pos[i], 1e-6, NULL, 1};
    const ref_msr_weights rw = {W[0], W[1], W[2], W[3], W[4]};
    double *xd = ref_widen(x + off[i] * d, len * d);
    ref_msr_forward(&rd_, &rw, lgh, xd, s0, ry, rs);
    free(xd);
    snprintf(what, sizeof what, "%s: seq %zu y vs reference", c->name, i);
    tu_assert_close(what, y + off[i] * d, ry, len * d, LAYER_TOL);
    if (keep) {
      tu_download(ctx, sob, 0, sa, ns);
      snprintf(what, sizeof what, "%s: seq %zu state slot %d vs alone",
               c->name, i, s);
      err = rel_f(sout + (size_t)s * ns, sa, ns);
      ck_assert_msg(err <= LAYER_TOL, "%s: %.3g (seed %llu)", what, err,
                    (unsigned long long)tu_seed());
      snprintf(what, sizeof what, "%s: seq %zu state vs reference", c->name, i);
      tu_assert_close(what, sout + (size_t)s * ns, rs, ns, LAYER_TOL);
    }
    cl_mem rel[] = {xi, yi, sib, sob};
    for (int j = 0; j < 4; ++j)
      if (rel[j]) clReleaseMemObject(rel[j]);
  }
  if (so)
    for (size_t s = 0; s < c->nslots; ++s)
      if (!named[s])
        for (size_t j = 0; j < ns; ++j)
          ck_assert_msg(isnan(sout[s * ns + j]),
                        "%s: slot %zu not named but written", c->name, s);
  retcl_rotation_destroy(rot);
  cl_mem all[] = {wb[0], wb[1], wb[2], wb[3], wb[4], lg, xb, yb, si, so};
  for (int j = 0; j < 10; ++j)
    if (all[j]) clReleaseMemObject(all[j]);
  for (int i = 0; i < 5; ++i) free(W[i]);
  free(x), free(s_in), free(y), free(sout), free(ya), free(sa), free(ry),
      free(rs);
}

START_TEST(layer_packed_equals_per_sequence) {
  retcl_context *ctx = tu_context();
  for (int a = 0; a < 3; ++a) {
    /* raw: states in any algorithm, rotation from per-sequence positions */
    layer_pk r = {"layer raw", 32, 48, 2, 8, ALGOS[a], RETCL_FORM_RAW, 5,
                  {7, 1, 0, 12, 3}, 1, 6, {4, 0, 2, -1, 5},
                  {0, 9, 3, 250, 17}};
    check_layer_packed(ctx, &r);
    /* torchscale fresh starts (positions 0), every algorithm */
    layer_pk t = {"layer torchscale", 32, 32, 4, 8, ALGOS[a],
                  RETCL_FORM_TORCHSCALE, 4, {5, 1, 11, 0}, 1, 4,
                  {1, 3, 0, 2}, {0, 0, 0, 0}};
    check_layer_packed(ctx, &t);
  }
  /* torchscale recurrent continuing sequences at their own positions */
  layer_pk c = {"layer torchscale continue", 32, 48, 2, 8, RETCL_ALGO_RECURRENT,
                RETCL_FORM_TORCHSCALE, 4, {1, 3, 1, 2}, 1, 5,
                {2, 0, 4, -1}, {7, 0, 1000, 0}};
  check_layer_packed(ctx, &c);
  report_bitwise("layer_packed_equals_per_sequence");
  retcl_context_destroy(ctx);
}
END_TEST

/* ---- rejections --------------------------------------------------------------- */

typedef struct bad_env {
  retcl_context *ctx;
  retcl_retention_desc d;
  size_t off[4];
  int32_t slots[3];
  size_t pos[3];
  cl_mem q, k, v, lg, o, si, so;
  size_t nvo, nst;
} bad_env;

enum { BAD_T = 10, BAD_H = 2, BAD_D = 8, BAD_SLOTS = 4 };

static void bad_setup(bad_env *e) {
  memset(e, 0, sizeof *e);
  e->ctx = tu_context();
  const size_t n = BAD_T * BAD_H * BAD_D;
  e->nvo = n;
  e->nst = BAD_SLOTS * BAD_H * BAD_D * BAD_D;
  float *x = tu_alloc(e->nst > n ? e->nst : n);
  tu_fill_uniform(x, e->nst > n ? e->nst : n, -1, 1);
  e->q = tu_upload(e->ctx, x, n);
  e->k = tu_upload(e->ctx, x, n);
  e->v = tu_upload(e->ctx, x, n);
  e->si = tu_upload(e->ctx, x, e->nst);
  float lgh[BAD_H];
  retcl_default_log_decay(BAD_H, lgh);
  e->lg = tu_upload(e->ctx, lgh, BAD_H);
  e->o = tu_poisoned(e->ctx, n);
  e->so = tu_poisoned(e->ctx, e->nst);
  free(x);
}

static void bad_reset(bad_env *e) {
  const size_t off[4] = {0, 3, 3, BAD_T};
  const int32_t slots[3] = {2, 0, 3};
  const size_t pos[3] = {0, 0, 0};
  memcpy(e->off, off, sizeof off);
  memcpy(e->slots, slots, sizeof slots);
  memcpy(e->pos, pos, sizeof pos);
  memset(&e->d, 0, sizeof e->d);
  e->d.batch = 1, e->d.tokens = BAD_T, e->d.heads = BAD_H;
  e->d.key_dim = e->d.value_dim = BAD_D;
  e->d.layout = RETCL_LAYOUT_TOKEN_MAJOR;
  e->d.algorithm = RETCL_ALGO_CHUNKWISE, e->d.form = RETCL_FORM_RAW;
  e->d.chunk_size = 4;
  e->d.packing.count = 3;
  e->d.packing.offsets = e->off;
  e->d.packing.positions = NULL;
  e->d.packing.state_slots = e->slots;
}

/* Each accepted status has a bit: 1 << status. */
#define ST(s) (1u << (unsigned)(s))

static void expect_bad(bad_env *e, const char *what, unsigned statuses,
                       const char *word) {
  const retcl_status got = retcl_retention(
      e->ctx, &e->d, retcl_buf(e->q, 0), retcl_buf(e->k, 0),
      retcl_buf(e->v, 0), retcl_buf(e->lg, 0), retcl_buf(e->si, 0),
      retcl_buf(e->so, 0), retcl_buf(e->o, 0), 0, NULL, NULL);
  ck_assert_msg(got != RETCL_SUCCESS && (ST(got) & statuses),
                "%s: got status %d (%s: %s)", what, (int)got,
                retcl_status_string(got), retcl_last_error(e->ctx));
  /* word: alternatives separated by '|' */
  int named = 0;
  char buf[96];
  snprintf(buf, sizeof buf, "%s", word);
  for (char *w = strtok(buf, "|"); w && !named; w = strtok(NULL, "|"))
    named = strstr(retcl_last_error(e->ctx), w) != NULL;
  ck_assert_msg(named, "%s: message \"%s\" does not name \"%s\"", what,
                retcl_last_error(e->ctx), word);
  printf("rejected (%s): %s: %s\n", what, retcl_status_string(got),
         retcl_last_error(e->ctx));
  bad_reset(e);
}

START_TEST(rejects_bad_packing_and_writes_nothing) {
  bad_env e;
  bad_setup(&e);
  bad_reset(&e);
  const unsigned IA = ST(RETCL_ERROR_INVALID_ARGUMENT);
  const unsigned IS = ST(RETCL_ERROR_INVALID_SIZE);

  e.off[0] = 1;
  expect_bad(&e, "offsets[0] != 0", IA, "offsets");
  e.off[1] = 5, e.off[2] = 4;
  expect_bad(&e, "decreasing offsets", IA, "offsets");
  e.off[3] = BAD_T - 1;
  expect_bad(&e, "offsets[count] < tokens", IA, "offsets");
  e.off[3] = BAD_T + 1;
  expect_bad(&e, "offsets[count] > tokens", IA, "offsets");
  e.d.packing.offsets = NULL;
  expect_bad(&e, "offsets NULL with count > 0", IA, "offsets");
  e.d.batch = 2;
  expect_bad(&e, "batch 2", IA | IS, "batch");
  e.d.layout = RETCL_LAYOUT_HEAD_MAJOR;
  expect_bad(&e, "head-major", IA | ST(RETCL_ERROR_UNSUPPORTED),
             "layout|LAYOUT");
  e.slots[2] = 2;
  expect_bad(&e, "duplicate slot", IA, "slot");
  e.slots[1] = BAD_SLOTS;
  expect_bad(&e, "slot >= the slots the buffers hold",
             IA | ST(RETCL_ERROR_BUFFER_TOO_SMALL), "state");
  e.slots[1] = -2;
  expect_bad(&e, "slot -2", IA, "slot");
  e.d.packing.state_slots = NULL; /* slot i: 0 .. 2, fine; more sequences: */
  {
    /* NULL slots with more sequences than the buffers hold slots */
    size_t many[7] = {0, 1, 2, 3, 4, 5, BAD_T};
    e.d.packing.state_slots = NULL;
    e.d.packing.count = 6;
    e.d.packing.offsets = many;
    expect_bad(&e, "NULL slots, 6 sequences, 4 slots",
               IA | ST(RETCL_ERROR_BUFFER_TOO_SMALL), "state");
  }
  /* torchscale parallel and chunkwise start empty: a state_in slot at a
   * position > 0 is unsupported */
  for (int a = 0; a < 2; ++a) {
    e.d.form = RETCL_FORM_TORCHSCALE;
    e.d.algorithm = a ? RETCL_ALGO_CHUNKWISE : RETCL_ALGO_PARALLEL;
    e.pos[1] = 5;
    e.d.packing.positions = e.pos;
    expect_bad(&e, a ? "torchscale chunkwise, slot at position 5"
                     : "torchscale parallel, slot at position 5",
               ST(RETCL_ERROR_UNSUPPORTED), a ? "chunkwise" : "parallel");
    e.d.form = RETCL_FORM_TORCHSCALE;
    e.d.algorithm = a ? RETCL_ALGO_CHUNKWISE : RETCL_ALGO_PARALLEL;
    e.d.position = 5; /* positions NULL: every sequence at 5 */
    expect_bad(&e, "torchscale, desc position 5, positions NULL",
               ST(RETCL_ERROR_UNSUPPORTED), a ? "chunkwise" : "parallel");
  }
  /* a chunk size out of range still fails first or otherwise, nothing
   * written */
  e.d.chunk_size = 5000;
  expect_bad(&e, "chunk_size 5000", IS, "chunk_size");

  /* rotation: bad offsets and batch */
  {
    retcl_rotation *rot = NULL;
    tu_ok(e.ctx, retcl_rotation_create(e.ctx, BAD_D, NULL, 0, &rot));
    retcl_rotation_desc rd;
    memset(&rd, 0, sizeof rd);
    rd.batch = 1, rd.tokens = BAD_T, rd.heads = BAD_H;
    rd.packing.count = 3;
    size_t bad_off[4] = {0, 6, 2, BAD_T};
    rd.packing.offsets = bad_off;
    retcl_status s = retcl_rotate(e.ctx, rot, &rd, retcl_buf(e.q, 0),
                                  retcl_buf(e.o, 0), 0, NULL, NULL);
    ck_assert_msg(s == RETCL_ERROR_INVALID_ARGUMENT &&
                      strstr(retcl_last_error(e.ctx), "offsets"),
                  "rotate, decreasing offsets: %d %s", (int)s,
                  retcl_last_error(e.ctx));
    bad_off[1] = 2, bad_off[3] = BAD_T - 2;
    s = retcl_rotate(e.ctx, rot, &rd, retcl_buf(e.q, 0), retcl_buf(e.o, 0), 0,
                     NULL, NULL);
    ck_assert_msg(s == RETCL_ERROR_INVALID_ARGUMENT &&
                      strstr(retcl_last_error(e.ctx), "offsets"),
                  "rotate, last offset != tokens: %d %s", (int)s,
                  retcl_last_error(e.ctx));
    bad_off[3] = BAD_T;
    rd.batch = 2;
    s = retcl_rotate(e.ctx, rot, &rd, retcl_buf(e.q, 0), retcl_buf(e.o, 0), 0,
                     NULL, NULL);
    ck_assert_msg(s != RETCL_SUCCESS && strstr(retcl_last_error(e.ctx), "batch"),
                  "rotate, batch 2: %d %s", (int)s, retcl_last_error(e.ctx));
    rd.batch = 1;
    rd.packing.offsets = NULL;
    s = retcl_rotate(e.ctx, rot, &rd, retcl_buf(e.q, 0), retcl_buf(e.o, 0), 0,
                     NULL, NULL);
    ck_assert_msg(s == RETCL_ERROR_INVALID_ARGUMENT &&
                      strstr(retcl_last_error(e.ctx), "offsets"),
                  "rotate, NULL offsets: %d %s", (int)s, retcl_last_error(e.ctx));
    retcl_rotation_destroy(rot);
  }

  /* nothing was written by any rejected call */
  float *got = tu_alloc(e.nst > e.nvo ? e.nst : e.nvo);
  tu_download(e.ctx, e.o, 0, got, e.nvo);
  for (size_t i = 0; i < e.nvo; ++i)
    ck_assert_msg(isnan(got[i]), "out[%zu] written by a rejected call", i);
  tu_download(e.ctx, e.so, 0, got, e.nst);
  for (size_t i = 0; i < e.nst; ++i)
    ck_assert_msg(isnan(got[i]), "state_out[%zu] written by a rejected call", i);
  free(got);

  /* and the valid call itself succeeds (the setup is sound) */
  tu_ok(e.ctx, retcl_retention(e.ctx, &e.d, retcl_buf(e.q, 0),
                               retcl_buf(e.k, 0), retcl_buf(e.v, 0),
                               retcl_buf(e.lg, 0), retcl_buf(e.si, 0),
                               retcl_buf(e.so, 0), retcl_buf(e.o, 0), 0, NULL,
                               NULL));
  /* ... and writes every output. Waiting here also keeps the process from
   * exiting with the call in flight: on a cold PoCL cache its kernels are
   * still being compiled, and an exit under them crashed (signal 6/11). */
  got = tu_alloc(e.nvo);
  tu_download(e.ctx, e.o, 0, got, e.nvo);
  for (size_t i = 0; i < e.nvo; ++i)
    ck_assert_msg(isfinite(got[i]), "out[%zu] = %g after the valid call", i,
                  (double)got[i]);
  free(got);
  cl_mem all[] = {e.q, e.k, e.v, e.lg, e.o, e.si, e.so};
  for (int i = 0; i < 7; ++i) clReleaseMemObject(all[i]);
  retcl_context_destroy(e.ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("retention_packed");
  TCase *raw = tcase_create("raw");
  tcase_add_test(raw, raw_mixed_lengths_slot_per_sequence);
  tcase_add_test(raw, raw_slot_permutation_minus_one_and_spare_slots);
  tcase_add_test(raw, raw_many_sequences);
  tcase_add_test(raw, raw_single_sequence_and_long_one);
  suite_add_tcase(s, raw);
  TCase *ts = tcase_create("torchscale");
  tcase_add_test(ts, torchscale_every_algorithm_fresh_start);
  tcase_add_test(ts, torchscale_recurrent_per_sequence_positions);
  suite_add_tcase(s, ts);
  TCase *other = tcase_create("rotation_layer");
  tcase_add_test(other, rotation_packed_equals_per_sequence);
  tcase_add_test(other, layer_packed_equals_per_sequence);
  suite_add_tcase(s, other);
  TCase *bad = tcase_create("invalid");
  tcase_add_test(bad, rejects_bad_packing_and_writes_nothing);
  suite_add_tcase(s, bad);
  return tu_run_suite(s);
}
