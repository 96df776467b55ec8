/* test_model_weights16.c - 16-bit weight storage (F16, BF16) with fp32
 * arithmetic: the widening every kernel does (exhaustively, all 65536
 * values), the load-time narrowing (round to nearest even, overflow,
 * subnormals, NaN), each op that reads weights against the double
 * reference on the rounded weights, the model in every mode against an
 * fp32 model holding the same rounded values, and the rejections. The
 * test's own conversions below are written from the formats' definitions,
 * independently of the library's. RETCL_TEST_VERBOSE=1 prints the measured
 * errors. */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

static const retcl_dtype TYPES[2] = {RETCL_DTYPE_F16, RETCL_DTYPE_BF16};
static const char *type_name(retcl_dtype t) {
  return t == RETCL_DTYPE_F16 ? "f16" : t == RETCL_DTYPE_BF16 ? "bf16" : "f32";
}

/* ---- the formats, from their definitions --------------------------------- */

/* Value of an f16 bit pattern: (-1)^s 2^(e-15) (1 + m/1024), subnormals
 * m 2^-24, e = 31 inf (m = 0) or NaN. */
static double ref_f16_value(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 0) v = ldexp((double)m, -24);
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = ldexp(1024.0 + m, e - 25);
  return s ? -v : v;
}
static double ref_bf16_value(uint16_t b) {
  const int s = b >> 15, e = (b >> 7) & 255, m = b & 127;
  double v;
  if (e == 0) v = ldexp((double)m, -133);
  else if (e == 255) v = m ? NAN : INFINITY;
  else v = ldexp(128.0 + m, e - 134);
  return s ? -v : v;
}
static double ref_value(retcl_dtype t, uint16_t bits) {
  return t == RETCL_DTYPE_F16 ? ref_f16_value(bits) : ref_bf16_value(bits);
}

/* Round-to-nearest-even narrowing from the value: `mbits` stored mantissa
 * bits, exponent bias `bias`, largest exponent field `emax` (all ones is
 * inf/NaN). nearbyint rounds ties to even in the default rounding mode. */
static uint16_t ref_narrow(float f, int mbits, int bias, int emax) {
  const uint16_t sign = signbit(f) ? 0x8000 : 0;
  const uint16_t inf = (uint16_t)(emax << mbits);
  if (isnan(f)) return sign | inf | (uint16_t)(1 << (mbits - 1));
  const double a = fabs((double)f);
  const double maxv = ldexp(2.0 - ldexp(1.0, -mbits), emax - 1 - bias);
  const double half_ulp_max = ldexp(1.0, emax - 1 - bias - mbits - 1);
  if (a >= maxv + half_ulp_max) return sign | inf; /* ties at the top go
                                                      to the even inf */
  const double min_normal = ldexp(1.0, 1 - bias);
  if (a < min_normal) /* subnormal (or rounds up to the smallest normal) */
    return sign | (uint16_t)nearbyint(ldexp(a, bias - 1 + mbits));
  int e;
  frexp(a, &e); /* a in [2^(e-1), 2^e) */
  int E = e - 1;
  double q = nearbyint(ldexp(a, mbits - E)); /* in [2^mbits, 2^(mbits+1)] */
  if (q == ldexp(1.0, mbits + 1)) {
    q /= 2;
    ++E;
  }
  return sign | (uint16_t)(((E + bias) << mbits) + ((int)q - (1 << mbits)));
}
static uint16_t ref_narrow_t(retcl_dtype t, float f) {
  return t == RETCL_DTYPE_F16 ? ref_narrow(f, 10, 15, 31)
                              : ref_narrow(f, 7, 127, 255);
}
/* f rounded to t and widened back. */
static float ref_round(retcl_dtype t, float f) {
  return (float)ref_value(t, ref_narrow_t(t, f));
}

/* A device buffer of n 16-bit values (of the host floats rounded to t),
 * after off leading zeros. */
static cl_mem upload16(retcl_context *ctx, retcl_dtype t, const float *host,
                       size_t n, size_t off) {
  uint16_t *bits = calloc(off + n, sizeof *bits);
  for (size_t i = 0; i < n; ++i) bits[off + i] = ref_narrow_t(t, host[i]);
  cl_int err = CL_SUCCESS;
  cl_mem m = clCreateBuffer(retcl_context_cl_context(ctx),
                            CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                            (off + n) * sizeof *bits, bits, &err);
  ck_assert_int_eq(err, CL_SUCCESS);
  free(bits);
  return m;
}
static cl_mem upload_bits(retcl_context *ctx, const uint16_t *bits, size_t n) {
  cl_int err = CL_SUCCESS;
  cl_mem m = clCreateBuffer(retcl_context_cl_context(ctx),
                            CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                            n * sizeof *bits, (void *)bits, &err);
  ck_assert_int_eq(err, CL_SUCCESS);
  return m;
}

/* ---- conversion ----------------------------------------------------------- */

/* The test's own narrowing against hand-made cases: ties to even, the
 * overflow threshold, subnormals, NaN (it is what the other checks trust). */
START_TEST(reference_conversion_cases) {
  /* f16: 1 + 2^-11 is a tie between 1 and 1 + 2^-10: to even (1). */
  ck_assert_uint_eq(ref_narrow_t(RETCL_DTYPE_F16, 1.0f + 0x1p-11f), 0x3c00);
  ck_assert_uint_eq(ref_narrow_t(RETCL_DTYPE_F16, 1.0f + 3 * 0x1p-11f), 0x3c02);
  ck_assert_uint_eq(ref_narrow_t(RETCL_DTYPE_F16, 65504.0f), 0x7bff);
  ck_assert_uint_eq(ref_narrow_t(RETCL_DTYPE_F16, 65519.0f), 0x7bff);
  ck_assert_uint_eq(ref_narrow_t(RETCL_DTYPE_F16, 65520.0f), 0x7c00);
  ck_assert_uint_eq(ref_narrow_t(RETCL_DTYPE_F16, -1e30f), 0xfc00);
  ck_assert_uint_eq(ref_narrow_t(RETCL_DTYPE_F16, 0x1p-24f), 0x0001);
  ck_assert_uint_eq(ref_narrow_t(RETCL_DTYPE_F16, 0x1p-25f), 0x0000);
  ck_assert_uint_eq(ref_narrow_t(RETCL_DTYPE_F16, 3 * 0x1p-25f), 0x0002);
  ck_assert_uint_eq(ref_narrow_t(RETCL_DTYPE_BF16, 1.0f + 0x1p-8f), 0x3f80);
  ck_assert_uint_eq(ref_narrow_t(RETCL_DTYPE_BF16, 1.0f + 3 * 0x1p-8f), 0x3f82);
  ck_assert_uint_eq(ref_narrow_t(RETCL_DTYPE_BF16, 0x1.ffp127f), 0x7f80);
  ck_assert_uint_eq(ref_narrow_t(RETCL_DTYPE_BF16, 0x1.fep127f), 0x7f7f);
  for (int i = 0; i < 2; ++i) {
    const uint16_t n = ref_narrow_t(TYPES[i], NAN);
    ck_assert(isnan(ref_value(TYPES[i], n)));
  }
}
END_TEST

/* Every one of the 65536 patterns through a weight-reading kernel: y = 1 ·
 * w (K = 1: the scalar load), exact, NaN staying NaN, ±inf kept;
 * then every finite pattern through the vector loads (K = 16, x one-hot:
 * the other lanes' products are exact zeros). */
static void widen_exhaustive(retcl_dtype t, int vector) {
  retcl_context *ctx = tu_context();
  const size_t total = 65536, K = vector ? 16 : 1;
  uint16_t *bits = calloc(total * K, sizeof *bits);
  size_t N = 0;
  uint16_t *pattern = malloc(total * sizeof *pattern);
  for (uint32_t v = 0; v < total; ++v) {
    if (vector && !isfinite(ref_value(t, (uint16_t)v))) continue;
    pattern[N++] = (uint16_t)v;
  }
  const size_t lane = vector ? 11 : 0; /* a lane inside the vector */
  for (size_t n = 0; n < N; ++n) bits[n * K + lane] = pattern[n];
  cl_mem wb = upload_bits(ctx, bits, N * K);
  float *x = calloc(K, sizeof *x);
  x[lane] = 1.0f;
  cl_mem xb = tu_upload(ctx, x, K), yb = tu_poisoned(ctx, N);
  tu_ok(ctx, retcl_linear(ctx, 1, N, K, 1.0f, retcl_buf(xb, 0),
                          retcl_buf_typed(wb, 0, t), 0.0f, retcl_buf(yb, 0), 0,
                          NULL, NULL));
  float *got = tu_alloc(N);
  tu_download(ctx, yb, 0, got, N);
  size_t bad = 0;
  for (size_t n = 0; n < N; ++n) {
    const double want = ref_value(t, pattern[n]);
    /* -0 reads back as +0: the kernel adds the product to a +0
     * accumulator (fp32 arithmetic, not the conversion). */
    const int ok = isnan(want) ? isnan(got[n]) : (double)got[n] == want;
    if (!ok && bad++ < 5)
      fprintf(stderr, "%s %s: 0x%04x -> %.9g, want %.9g\n", type_name(t),
              vector ? "vector" : "scalar", pattern[n], got[n], want);
  }
  ck_assert_msg(bad == 0, "%s: %zu of %zu patterns widen wrongly",
                type_name(t), bad, N);
  free(got);
  free(x);
  free(bits);
  free(pattern);
  clReleaseMemObject(wb);
  clReleaseMemObject(xb);
  clReleaseMemObject(yb);
  retcl_context_destroy(ctx);
}
START_TEST(f16_widening_all_patterns) {
  widen_exhaustive(RETCL_DTYPE_F16, 0);
  widen_exhaustive(RETCL_DTYPE_F16, 1);
}
END_TEST
START_TEST(bf16_widening_all_patterns) {
  widen_exhaustive(RETCL_DTYPE_BF16, 0);
  widen_exhaustive(RETCL_DTYPE_BF16, 1);
}
END_TEST

/* ---- ops ------------------------------------------------------------------ */

/* got [M,N] against x · wrᵀ (wr: the rounded weights) within the fp32
 * dot-product bound γ(K+2) Σ|x w| (test_linear's, derived there). */
static void assert_product(const float *x, const float *wr, const float *got,
                           size_t M, size_t N, size_t K, const char *what) {
  const double u = ldexp(1.0, -24), n = (double)(K + 2);
  const double gamma = n * u / (1.0 - n * u);
  double worst = 0; /* largest error / bound */
  for (size_t m = 0; m < M; ++m)
    for (size_t j = 0; j < N; ++j) {
      double dot = 0, mag = 0;
      for (size_t k = 0; k < K; ++k) {
        dot += (double)x[m * K + k] * wr[j * K + k];
        mag += fabs((double)x[m * K + k] * wr[j * K + k]);
      }
      const double err = fabs((double)got[m * N + j] - dot);
      if (mag > 0 && err / (gamma * mag) > worst) worst = err / (gamma * mag);
      ck_assert_msg(err <= gamma * mag,
                    "%s M %zu N %zu K %zu: y[%zu,%zu] = %.9g, reference "
                    "%.9g, error %.3g > bound %.3g (seed %llu)",
                    what, M, N, K, m, j, got[m * N + j], dot, err,
                    gamma * mag, (unsigned long long)tu_seed());
    }
  if (getenv("RETCL_TEST_VERBOSE"))
    fprintf(stderr, "%s M %zu N %zu K %zu: worst error %.3g of the bound\n",
            what, M, N, K, worst);
}

/* retcl_linear (streaming kernels for few rows, RetCL's GEMM for more:
 * the packed path's pack_b from 40 rows on CPUs), and retcl_gemm nt. */
static void linear_case(retcl_dtype t, size_t M, size_t N, size_t K,
                        int via_gemm) {
  retcl_context *ctx = tu_context();
  const size_t W_OFF = 3;
  float *x = tu_alloc(M * K), *w = tu_alloc(N * K), *wr = tu_alloc(N * K),
        *got = tu_alloc(M * N);
  tu_fill_uniform(x, M * K, -1, 1);
  tu_fill_uniform(w, N * K, -1, 1);
  for (size_t i = 0; i < N * K; ++i) wr[i] = ref_round(t, w[i]);
  cl_mem xb = tu_upload(ctx, x, M * K), wb = upload16(ctx, t, w, N * K, W_OFF),
         yb = tu_poisoned(ctx, M * N);
  const retcl_buffer W = retcl_buf_typed(wb, W_OFF, t);
  if (via_gemm)
    tu_ok(ctx, retcl_gemm(ctx, RETCL_GEMM_NT, M, N, K, 1.0f, retcl_buf(xb, 0),
                          K, W, K, 0.0f, retcl_buf(yb, 0), N, 0, NULL, NULL));
  else
    tu_ok(ctx, retcl_linear(ctx, M, N, K, 1.0f, retcl_buf(xb, 0), W, 0.0f,
                            retcl_buf(yb, 0), 0, NULL, NULL));
  tu_download(ctx, yb, 0, got, M * N);
  char what[64];
  snprintf(what, sizeof what, "%s %s", via_gemm ? "retcl_gemm nt" : "retcl_linear",
           type_name(t));
  assert_product(x, wr, got, M, N, K, what);
  free(x);
  free(w);
  free(wr);
  free(got);
  clReleaseMemObject(xb);
  clReleaseMemObject(wb);
  clReleaseMemObject(yb);
  retcl_context_destroy(ctx);
}

START_TEST(linear_and_gemm_16bit_weights) {
  for (int i = 0; i < 2; ++i) {
    const retcl_dtype t = TYPES[i];
    linear_case(t, 1, 37, 53, 0);  /* 1 row, K not a vector multiple */
    linear_case(t, 3, 64, 48, 0);  /* 4-row kernel, padded */
    linear_case(t, 8, 19, 32, 0);  /* CPUs: two groups of 4; GPUs: 8 */
    linear_case(t, 13, 21, 40, 0); /* CPUs: 4 groups in one launch; GPUs:
                                      8 + 5 */
    linear_case(t, 30, 21, 40, 0); /* CPUs: 8 groups, the last of 2 rows,
                                      just under linear.row_limit 32 */
    linear_case(t, 45, 29, 41, 0); /* GEMM (packed on CPUs), whatever
                                      gemm.backend says */
    linear_case(t, 5, 23, 31, 1);  /* retcl_gemm nt, unpacked */
    linear_case(t, 70, 33, 40, 1); /* retcl_gemm nt, packed on CPUs */
  }
}
END_TEST

/* retcl_linear_many: four projections stacked in one 16-bit buffer (one
 * launch) and one apart. */
START_TEST(linear_many_16bit_weights) {
  for (int ti = 0; ti < 2; ++ti) {
    const retcl_dtype t = TYPES[ti];
    retcl_context *ctx = tu_context();
    const size_t M = 2, K = 24, n = 16, P = 4;
    float *x = tu_alloc(M * K), *w = tu_alloc(P * n * K),
          *wr = tu_alloc(P * n * K), *got = tu_alloc(P * M * n);
    tu_fill_uniform(x, M * K, -1, 1);
    tu_fill_uniform(w, P * n * K, -1, 1);
    for (size_t i = 0; i < P * n * K; ++i) wr[i] = ref_round(t, w[i]);
    cl_mem xb = tu_upload(ctx, x, M * K), wb = upload16(ctx, t, w, P * n * K, 0),
           yb = tu_poisoned(ctx, P * M * n);
    retcl_projection proj[4];
    for (size_t p = 0; p < P; ++p)
      proj[p] = (retcl_projection){retcl_buf_typed(wb, p * n * K, t),
                                   retcl_buf(yb, p * M * n), n, 1.0f};
    tu_ok(ctx, retcl_linear_many(ctx, M, K, retcl_buf(xb, 0), P, proj, 0, NULL,
                                 NULL));
    tu_download(ctx, yb, 0, got, P * M * n);
    for (size_t p = 0; p < P; ++p)
      assert_product(x, wr + p * n * K, got + p * M * n, M, n, K,
                     "retcl_linear_many");
    free(x);
    free(w);
    free(wr);
    free(got);
    clReleaseMemObject(xb);
    clReleaseMemObject(wb);
    clReleaseMemObject(yb);
    retcl_context_destroy(ctx);
  }
}
END_TEST

/* retcl_group_norm_gate with 16-bit weight and bias, against the double
 * reference on the rounded values within test_group_norm's GN_TOL (2e-6
 * relative: the same fp32 arithmetic, only the loads differ). */
START_TEST(group_norm_16bit_weight_bias) {
  for (int ti = 0; ti < 2; ++ti) {
    const retcl_dtype t = TYPES[ti];
    retcl_context *ctx = tu_context();
    const size_t B = 2, T = 5, H = 3, D = 37, n = B * T * H * D, ch = H * D;
    float *x = tu_alloc(n), *g = tu_alloc(n), *w = tu_alloc(ch),
          *bias = tu_alloc(ch), *wr = tu_alloc(ch), *br = tu_alloc(ch),
          *got = tu_alloc(n);
    double *ref = tu_alloc_d(n);
    tu_fill_uniform(x, n, -2, 2);
    tu_fill_uniform(g, n, -2, 2);
    tu_fill_uniform(w, ch, 0.5, 1.5);
    tu_fill_uniform(bias, ch, -0.5, 0.5);
    for (size_t i = 0; i < ch; ++i) {
      wr[i] = ref_round(t, w[i]);
      br[i] = ref_round(t, bias[i]);
    }
    for (int kind = 0; kind < 2; ++kind) {
      const retcl_group_norm_desc d = {
          B, T, H, D, RETCL_LAYOUT_TOKEN_MAJOR,
          kind ? RETCL_NORM_LAYER : RETCL_NORM_RMS, RETCL_GATE_SWISH, 1e-5f};
      cl_mem xb = tu_upload(ctx, x, n), gb = tu_upload(ctx, g, n),
             wb = upload16(ctx, t, w, ch, 0), bb = upload16(ctx, t, bias, ch, 0),
             ob = tu_poisoned(ctx, n);
      tu_ok(ctx, retcl_group_norm_gate(ctx, &d, retcl_buf(xb, 0),
                                       retcl_buf(gb, 0),
                                       retcl_buf_typed(wb, 0, t),
                                       retcl_buf_typed(bb, 0, t),
                                       retcl_buf(ob, 0), 0, NULL, NULL));
      tu_download(ctx, ob, 0, got, n);
      ref_group_norm_gate(x, g, wr, br, ref, B, T, H, D, d.layout, d.kind,
                          d.gate, d.eps);
      if (getenv("RETCL_TEST_VERBOSE"))
        fprintf(stderr, "group norm %s kind %d: %.3g\n", type_name(t), kind,
                tu_rel_error(got, ref, n));
      tu_assert_close("group norm, 16-bit weight and bias", got, ref, n, 2e-6);
      clReleaseMemObject(xb);
      clReleaseMemObject(gb);
      clReleaseMemObject(wb);
      clReleaseMemObject(bb);
      clReleaseMemObject(ob);
    }
    free(x);
    free(g);
    free(w);
    free(bias);
    free(wr);
    free(br);
    free(got);
    free(ref);
    retcl_context_destroy(ctx);
  }
}
END_TEST

/* ---- model ---------------------------------------------------------------- */

static int32_t *random_tokens(size_t n, size_t V) {
  int32_t *t = malloc(n * sizeof *t);
  for (size_t i = 0; i < n; ++i) t[i] = (int32_t)(tu_uniform(0, 1) * V) % (int32_t)V;
  return t;
}

/* Relative error of a against b, both device results. */
static double rel_diff(const float *a, const float *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = (double)a[i] - b[i];
    if (isnan(a[i]) || isnan(b[i])) return INFINITY;
    num += d * d;
    den += (double)b[i] * b[i];
  }
  return sqrt(num / den);
}

/* The logits of both models in every mode, of decoding from a state, of a
 * packed prefill into a state pool and of a pool decode step agree within
 * 1e-5 relative: the same rounded weights, the same fp32
 * arithmetic; only the loads differ (and the GEMM CLBlast or RetCL's can
 * sum in another order: ~1e-7 per op). */
static void compare_models(retcl_model *a, retcl_model *b, size_t V) {
  const size_t B = 2, T = 13, n = 9;
  int32_t *tok = random_tokens(B * T, V);
  float *la = tu_alloc(B * T * V), *lb = tu_alloc(B * T * V);
  const retcl_algorithm algos[3] = {RETCL_ALGO_PARALLEL, RETCL_ALGO_CHUNKWISE,
                                    RETCL_ALGO_RECURRENT};
  for (int i = 0; i < 3; ++i) {
    for (size_t k = 0; k < B * T * V; ++k) la[k] = lb[k] = NAN;
    ck_assert_int_eq(retcl_model_forward(a, NULL, tok, B, T, algos[i], 4, la), 0);
    ck_assert_int_eq(retcl_model_forward(b, NULL, tok, B, T, algos[i], 4, lb), 0);
    const double e = rel_diff(la, lb, B * T * V);
    if (getenv("RETCL_TEST_VERBOSE"))
      fprintf(stderr, "model mode %d: 16-bit vs f32 storage %.3g\n", i, e);
    ck_assert_msg(e <= 1e-5, "mode %d: 16-bit vs f32 storage %.3g > 1e-5 "
                  "(seed %llu)", i, e, (unsigned long long)tu_seed());
  }
  /* Prefill n tokens, then decode the rest one at a time. */
  retcl_decode_state *sa = NULL, *sb = NULL;
  ck_assert_int_eq(retcl_decode_state_create(a, B, &sa), 0);
  ck_assert_int_eq(retcl_decode_state_create(b, B, &sb), 0);
  int32_t *prompt = malloc(B * n * sizeof *prompt);
  for (size_t s = 0; s < B; ++s) memcpy(prompt + s * n, tok + s * T, n * sizeof *prompt);
  ck_assert_int_eq(retcl_model_forward(a, sa, prompt, B, n, RETCL_ALGO_CHUNKWISE, 4, NULL), 0);
  ck_assert_int_eq(retcl_model_forward(b, sb, prompt, B, n, RETCL_ALGO_CHUNKWISE, 4, NULL), 0);
  for (size_t j = n; j < T; ++j) {
    int32_t next[2] = {tok[j], tok[T + j]};
    ck_assert_int_eq(retcl_model_forward(a, sa, next, B, 1, RETCL_ALGO_RECURRENT, 0, la), 0);
    ck_assert_int_eq(retcl_model_forward(b, sb, next, B, 1, RETCL_ALGO_RECURRENT, 0, lb), 0);
    const double e = rel_diff(la, lb, B * V);
    if (getenv("RETCL_TEST_VERBOSE"))
      fprintf(stderr, "decode step %zu: %.3g\n", j, e);
    ck_assert_msg(e <= 1e-5, "decode step %zu: %.3g > 1e-5 (seed %llu)", j, e,
                  (unsigned long long)tu_seed());
  }
  retcl_decode_state_destroy(sa);
  retcl_decode_state_destroy(sb);
  /* Packed batches and the state pool: two sequences of different lengths
   * packed into slots 1 and 0, then one decode step of both. */
  retcl_state_pool *pa = NULL, *pb = NULL;
  ck_assert_int_eq(retcl_state_pool_create(a, 2, &pa), 0);
  ck_assert_int_eq(retcl_state_pool_create(b, 2, &pb), 0);
  const int32_t slots[2] = {1, 0};
  const size_t offsets[3] = {0, 5, 5 + n};
  for (size_t k = 0; k < B * V; ++k) la[k] = lb[k] = NAN;
  ck_assert_int_eq(retcl_model_forward_packed(a, pa, slots, tok, offsets, 2,
                                              RETCL_ALGO_CHUNKWISE, 4, 1, la), 0);
  ck_assert_int_eq(retcl_model_forward_packed(b, pb, slots, tok, offsets, 2,
                                              RETCL_ALGO_CHUNKWISE, 4, 1, lb), 0);
  double e = rel_diff(la, lb, B * V);
  if (getenv("RETCL_TEST_VERBOSE")) fprintf(stderr, "packed prefill: %.3g\n", e);
  ck_assert_msg(e <= 1e-5, "packed prefill: %.3g > 1e-5 (seed %llu)", e,
                (unsigned long long)tu_seed());
  const int32_t next[2] = {tok[T - 1], tok[T - 2]};
  ck_assert_int_eq(retcl_model_decode_step(a, pa, slots, next, 2, la), 0);
  ck_assert_int_eq(retcl_model_decode_step(b, pb, slots, next, 2, lb), 0);
  e = rel_diff(la, lb, B * V);
  if (getenv("RETCL_TEST_VERBOSE")) fprintf(stderr, "pool step: %.3g\n", e);
  ck_assert_msg(e <= 1e-5, "pool decode step: %.3g > 1e-5 (seed %llu)", e,
                (unsigned long long)tu_seed());
  retcl_state_pool_destroy(pa);
  retcl_state_pool_destroy(pb);
  free(prompt);
  free(tok);
  free(la);
  free(lb);
}

/* A 16-bit model against an fp32 model of the same rounded values (the
 * 16-bit one saved as F32 and loaded back): same logits in every mode;
 * weight bytes half; the parameter vector typed; the saved values are the
 * test's own rounding of the checkpoint's. */
static void model_case(retcl_storage storage, retcl_dtype t, int untied) {
  retcl_context *ctx = tu_context();
  retcl_model_config cfg = tu_model_config(32, 48, 2, 40, 2, 53);
  cfg.share_embed = !untied;
  cfg.layernorm_embedding = untied;
  ref_model m;
  ref_model_random(&m, &cfg, 1, tu_rng());
  char *dir = tu_temp_dir("retcl-w16"), *dir32 = tu_temp_dir("retcl-w16");
  ck_assert_int_eq(ref_checkpoint_write(&m, dir, "F32", CKPT_OK), 0);
  retcl_model *m16 = NULL, *m32 = NULL, *full = NULL;
  tu_ok(ctx, retcl_model_load_as(ctx, dir, storage, &m16));
  tu_ok(ctx, retcl_model_load(ctx, dir, &full));
  ck_assert_int_eq(retcl_model_weight_type(m16), t);
  ck_assert_int_eq(retcl_model_params(m16).type, t);
  ck_assert_uint_eq(retcl_model_weight_bytes(m16) * 2,
                    retcl_model_weight_bytes(full));
  /* The device values are the test's rounding of the file's. */
  const size_t P = retcl_model_param_count(m16);
  uint16_t *dev = malloc(P * sizeof *dev);
  float *f32 = tu_alloc(P);
  ck_assert_int_eq(clEnqueueReadBuffer(retcl_context_queue(ctx),
                                       retcl_model_params(m16).mem, CL_TRUE, 0,
                                       P * 2, dev, 0, NULL, NULL),
                   CL_SUCCESS);
  tu_download(ctx, retcl_model_params(full).mem, 0, f32, P);
  size_t bad = 0;
  for (size_t i = 0; i < P; ++i) bad += dev[i] != ref_narrow_t(t, f32[i]);
  ck_assert_msg(bad == 0, "%zu of %zu weights rounded differently", bad, P);
  tu_ok(ctx, retcl_model_save(m16, dir32, RETCL_DTYPE_F32));
  tu_ok(ctx, retcl_model_load(ctx, dir32, &m32));
  compare_models(m16, m32, cfg.vocab_size);
  free(dev);
  free(f32);
  retcl_model_destroy(m16);
  retcl_model_destroy(m32);
  retcl_model_destroy(full);
  ref_checkpoint_remove(dir);
  ref_checkpoint_remove(dir32);
  free(dir);
  free(dir32);
  ref_model_free(&m);
  retcl_context_destroy(ctx);
}

START_TEST(f16_model_equals_f32_model_of_rounded_weights) {
  model_case(RETCL_STORAGE_F16, RETCL_DTYPE_F16, 0);
}
END_TEST
START_TEST(bf16_model_equals_f32_model_of_rounded_weights) {
  model_case(RETCL_STORAGE_BF16, RETCL_DTYPE_BF16, 1);
}
END_TEST

/* Load-time narrowing of edge values (ties, overflow, subnormals, NaN),
 * and KEEP giving the file's own type and bits. */
START_TEST(load_rounding_edges_and_keep) {
  retcl_context *ctx = tu_context();
  retcl_model_config cfg = tu_model_config(16, 16, 1, 16, 1, 11);
  ref_model m;
  ref_model_random(&m, &cfg, 1, tu_rng());
  const float edges[] = {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 65519.0f,
                         65520.0f, -1e30f, 0x1p-24f, 0x1p-25f, 3 * 0x1p-25f,
                         0x1.8p-20f, -0.0f, NAN, 1.0f + 0x1p-8f,
                         1.0f + 3 * 0x1p-8f, 0x1.ffp127f, 1e-40f, -INFINITY};
  const size_t ne = sizeof edges / sizeof edges[0];
  memcpy(m.embed, edges, sizeof edges); /* the first row(s) of the table */
  char *dir = tu_temp_dir("retcl-w16");
  ck_assert_int_eq(ref_checkpoint_write(&m, dir, "F32", CKPT_OK), 0);
  for (int ti = 0; ti < 2; ++ti) {
    const retcl_dtype t = TYPES[ti];
    retcl_model *mm = NULL;
    tu_ok(ctx, retcl_model_load_as(ctx, dir, (retcl_storage)t, &mm));
    uint16_t got[16];
    ck_assert_int_eq(clEnqueueReadBuffer(retcl_context_queue(ctx),
                                         retcl_model_params(mm).mem, CL_TRUE,
                                         0, sizeof got, got, 0, NULL, NULL),
                     CL_SUCCESS);
    for (size_t i = 0; i < ne; ++i) {
      const uint16_t want = ref_narrow_t(t, edges[i]);
      if (isnan(edges[i]))
        ck_assert_msg(isnan(ref_value(t, got[i])), "%s: NaN -> 0x%04x",
                      type_name(t), got[i]);
      else
        ck_assert_msg(got[i] == want, "%s: %a -> 0x%04x, want 0x%04x",
                      type_name(t), (double)edges[i], got[i], want);
    }
    /* Save as this type, load with KEEP: the same type and bits. */
    char *dir16 = tu_temp_dir("retcl-w16");
    tu_ok(ctx, retcl_model_save(mm, dir16, t));
    retcl_model *kept = NULL;
    tu_ok(ctx, retcl_model_load_as(ctx, dir16, RETCL_STORAGE_KEEP, &kept));
    ck_assert_int_eq(retcl_model_weight_type(kept), t);
    const size_t P = retcl_model_param_count(mm);
    uint16_t *a = malloc(P * 2), *b = malloc(P * 2);
    clEnqueueReadBuffer(retcl_context_queue(ctx), retcl_model_params(mm).mem,
                        CL_TRUE, 0, P * 2, a, 0, NULL, NULL);
    clEnqueueReadBuffer(retcl_context_queue(ctx), retcl_model_params(kept).mem,
                        CL_TRUE, 0, P * 2, b, 0, NULL, NULL);
    for (size_t i = 0; i < P; ++i)
      if (!(isnan(ref_value(t, a[i])) && isnan(ref_value(t, b[i]))))
        ck_assert_msg(a[i] == b[i], "%s keep: weight %zu 0x%04x != 0x%04x",
                      type_name(t), i, b[i], a[i]);
    free(a);
    free(b);
    retcl_model_destroy(kept);
    retcl_model_destroy(mm);
    ref_checkpoint_remove(dir16);
    free(dir16);
  }
  /* KEEP of an fp32 file is fp32. */
  retcl_model *k32 = NULL;
  tu_ok(ctx, retcl_model_load_as(ctx, dir, RETCL_STORAGE_KEEP, &k32));
  ck_assert_int_eq(retcl_model_weight_type(k32), RETCL_DTYPE_F32);
  retcl_model_destroy(k32);
  ref_checkpoint_remove(dir);
  free(dir);
  ref_model_free(&m);
  retcl_context_destroy(ctx);
}
END_TEST

/* ---- rejections ----------------------------------------------------------- */

START_TEST(rejections) {
  retcl_context *ctx = tu_context();
  const size_t M = 2, N = 8, K = 16;
  float *x = tu_alloc(M * K), *w = tu_alloc(N * K), *got = tu_alloc(M * N);
  tu_fill_uniform(x, M * K, -1, 1);
  tu_fill_uniform(w, N * K, -1, 1);
  cl_mem xb = tu_upload(ctx, x, M * K), wb = upload16(ctx, RETCL_DTYPE_F16, w, N * K, 0),
         x16 = upload16(ctx, RETCL_DTYPE_F16, x, M * K, 0),
         yb = tu_poisoned(ctx, M * N);
  const retcl_buffer W = retcl_buf_typed(wb, 0, RETCL_DTYPE_F16);
  /* A 16-bit buffer where activations go. */
  tu_assert_status(ctx, retcl_linear(ctx, M, N, K, 1.0f,
                                     retcl_buf_typed(x16, 0, RETCL_DTYPE_F16),
                                     W, 0.0f, retcl_buf(yb, 0), 0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx),
                               "x is f16; only weights may be 16-bit"));
  tu_assert_status(ctx, retcl_linear(ctx, M, N, K, 1.0f, retcl_buf(xb, 0), W,
                                     0.0f, retcl_buf_typed(yb, 0, RETCL_DTYPE_BF16),
                                     0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "y is bf16"));
  /* retcl_gemm: b may be 16-bit in nt only; a never. */
  tu_assert_status(ctx, retcl_gemm(ctx, RETCL_GEMM_NN, M, K, N, 1.0f,
                                   retcl_buf(yb, 0), N, W, K, 0.0f,
                                   retcl_buf(xb, 0), K, 0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "b is f16"));
  /* A type that is not a retcl_dtype, and a 16-bit w too short for N K
   * (sized in 16-bit elements). */
  tu_assert_status(ctx, retcl_linear(ctx, M, N, K, 1.0f, retcl_buf(xb, 0),
                                     retcl_buf_typed(wb, 0, (retcl_dtype)5),
                                     0.0f, retcl_buf(yb, 0), 0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  tu_assert_status(ctx, retcl_linear(ctx, M, N, K, 1.0f, retcl_buf(xb, 0),
                                     retcl_buf_typed(wb, 1, RETCL_DTYPE_F16),
                                     0.0f, retcl_buf(yb, 0), 0, NULL, NULL),
                   RETCL_ERROR_BUFFER_TOO_SMALL);
  /* Group norm: weight and bias of different types; a 16-bit x. */
  const retcl_group_norm_desc d = {1, 2, 1, 8, RETCL_LAYOUT_TOKEN_MAJOR,
                                   RETCL_NORM_RMS, RETCL_GATE_NONE, 1e-6f};
  tu_assert_status(ctx, retcl_group_norm_gate(
                            ctx, &d, retcl_buf(xb, 0), retcl_no_buf(), W,
                            retcl_buf_typed(wb, 0, RETCL_DTYPE_BF16),
                            retcl_buf(yb, 0), 0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  tu_assert_status(ctx, retcl_group_norm_gate(
                            ctx, &d, retcl_buf_typed(x16, 0, RETCL_DTYPE_F16),
                            retcl_no_buf(), W, retcl_no_buf(),
                            retcl_buf(yb, 0), 0, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  tu_download(ctx, yb, 0, got, M * N);
  for (size_t i = 0; i < M * N; ++i)
    ck_assert_msg(isnan(got[i]), "y[%zu] written by a rejected call", i);

  /* Models: a bad storage value; training a 16-bit model. */
  retcl_model_config cfg = tu_model_config(16, 16, 1, 16, 1, 11);
  ref_model m;
  ref_model_random(&m, &cfg, 1, tu_rng());
  char *dir = tu_temp_dir("retcl-w16");
  ck_assert_int_eq(ref_checkpoint_write(&m, dir, "F32", CKPT_OK), 0);
  retcl_model *mm = (retcl_model *)1;
  tu_assert_status(ctx, retcl_model_load_as(ctx, dir, (retcl_storage)4, &mm),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_null(mm);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "storage"));
  tu_ok(ctx, retcl_model_load_as(ctx, dir, RETCL_STORAGE_BF16, &mm));
  int32_t tok[4] = {1, 2, 3, 4};
  float loss = NAN;
  tu_assert_status(ctx, retcl_model_forward_train(mm, tok, 1, 4, NULL, &loss),
                   RETCL_ERROR_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "RETCL_STORAGE_F32"));
  ck_assert(isnan(loss));
  cl_mem gb = tu_poisoned(ctx, retcl_model_param_count(mm));
  tu_assert_status(ctx, retcl_model_backward(mm, retcl_buf(gb, 0)),
                   RETCL_ERROR_UNSUPPORTED);
  clReleaseMemObject(gb);
  retcl_model_destroy(mm);
  ref_checkpoint_remove(dir);
  free(dir);
  ref_model_free(&m);
  free(x);
  free(w);
  free(got);
  clReleaseMemObject(xb);
  clReleaseMemObject(wb);
  clReleaseMemObject(x16);
  clReleaseMemObject(yb);
  retcl_context_destroy(ctx);
}
END_TEST

/* Cases by name (CK_RUN_CASE): scripts/ci_oclgrind.sh runs "ops" (small
 * products and norms through every 16-bit kernel variant). */
int main(void) {
  Suite *s = suite_create("model_weights16");
  TCase *convert = tcase_create("convert"), *ops = tcase_create("ops"),
        *model = tcase_create("model"), *reject = tcase_create("reject");
  tcase_add_test(convert, reference_conversion_cases);
  tcase_add_test(convert, f16_widening_all_patterns);
  tcase_add_test(convert, bf16_widening_all_patterns);
  tcase_add_test(ops, linear_and_gemm_16bit_weights);
  tcase_add_test(ops, linear_many_16bit_weights);
  tcase_add_test(ops, group_norm_16bit_weight_bias);
  tcase_add_test(model, f16_model_equals_f32_model_of_rounded_weights);
  tcase_add_test(model, bf16_model_equals_f32_model_of_rounded_weights);
  tcase_add_test(model, load_rounding_edges_and_keep);
  tcase_add_test(reject, rejections);
  TCase *all[4] = {convert, ops, model, reject};
  for (int i = 0; i < 4; ++i) {
    tcase_set_timeout(all[i], 600);
    suite_add_tcase(s, all[i]);
  }
  return tu_run_suite(s);
}
