/* test_params.c - kernel parameter records (docs/design.md §3): the levels
 * a value comes from, the RETCL_PARAMS file and its errors, results that
 * stay right under other records, a bad record that fails the build before
 * anything is enqueued, configs rejected at load, and calls that fail
 * leaving decode states as they were. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "runtime/params.h" /* retcl__vendor_of, compiled into this test */
#include "ref_checkpoint.h"
#include "testutil.h"

/* The value and source of family.key in ctx's record. */
static retcl_param_info param(const retcl_context *ctx, const char *family,
                              const char *key) {
  for (size_t i = 0; i < retcl_param_count(); ++i) {
    retcl_param_info p;
    ck_assert_int_eq(retcl_param_get(ctx, i, &p), RETCL_SUCCESS);
    if (!strcmp(p.family, family) && !strcmp(p.key, key)) return p;
  }
  ck_abort_msg("no parameter %s.%s", family, key);
  retcl_param_info none = {0};
  return none;
}

START_TEST(record_lists_every_parameter_with_its_level) {
  retcl_context *ctx = tu_context();
  const size_t n = retcl_param_count();
  ck_assert_uint_ge(n, 15);
  for (size_t i = 0; i < n; ++i) {
    retcl_param_info p;
    ck_assert_int_eq(retcl_param_get(ctx, i, &p), RETCL_SUCCESS);
    ck_assert_ptr_nonnull(p.family);
    ck_assert_ptr_nonnull(p.key);
    ck_assert_ptr_nonnull(p.source);
    ck_assert_ptr_nonnull(p.help);
  }
  retcl_param_info p;
  ck_assert_int_eq(retcl_param_get(ctx, n, &p), RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_int_eq(retcl_param_get(NULL, 0, &p), RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_int_eq(retcl_param_get(ctx, 0, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  /* Built-in values the kernels' own comments describe. */
  ck_assert_int_eq(param(ctx, "retention", "chunk").value, 64);
  ck_assert_str_eq(param(ctx, "retention", "chunk").source, "built-in");
  /* The test device is PoCL's CPU device (CI), unless RETCL_KERNEL_PATHS
   * overrides the access patterns (scripts/test.sh's second pass). */
  cl_device_type type = 0;
  clGetDeviceInfo(retcl_context_device(ctx), CL_DEVICE_TYPE, sizeof type,
                  &type, NULL);
  const char *paths = getenv("RETCL_KERNEL_PATHS");
  const retcl_param_info access = param(ctx, "retention", "access");
  if (paths && *paths) {
    ck_assert_str_eq(access.source, "RETCL_KERNEL_PATHS");
    ck_assert_str_eq(access.value_name, paths);
  } else if (type & CL_DEVICE_TYPE_CPU) {
    ck_assert_str_eq(access.source, "device type");
    ck_assert_str_eq(access.value_name, "cpu");
  }
  if (!strcmp(retcl_context_vendor(ctx), "PoCL"))
    ck_assert_str_eq(param(ctx, "elementwise", "per_item").source, "vendor");
  retcl_context_destroy(ctx);
}
END_TEST

/* The strings drivers really report (clinfo of each), platform name,
 * CL_DEVICE_VENDOR, CL_DEVICE_NAME, CL_DEVICE_VENDOR_ID. */
START_TEST(vendor_recognised_from_driver_strings) {
  static const struct {
    const char *platform, *vendor, *name;
    cl_uint id;
    retcl_vendor want;
  } cases[] = {
      {"Portable Computing Language", "GenuineIntel",
       "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", 0x8086,
       RETCL_VENDOR_POCL},
      {"Portable Computing Language", "AuthenticAMD", "cpu-znver3-AMD EPYC",
       0x1022, RETCL_VENDOR_POCL},
      {"NVIDIA CUDA", "NVIDIA Corporation", "NVIDIA H200", 0x10de,
       RETCL_VENDOR_NVIDIA},
      {"AMD Accelerated Parallel Processing", "Advanced Micro Devices, Inc.",
       "gfx90a:sramecc+:xnack-", 0x1002, RETCL_VENDOR_AMD},
      {"AMD Accelerated Parallel Processing", "AuthenticAMD",
       "AMD Ryzen 9 7950X", 0x1022, RETCL_VENDOR_AMD},
      {"Intel(R) OpenCL Graphics", "Intel(R) Corporation",
       "Intel(R) Data Center GPU Max 1550", 0x8086, RETCL_VENDOR_INTEL},
      {"Intel(R) OpenCL", "Intel(R) Corporation",
       "Intel(R) Xeon(R) Platinum 8480+", 0x8086, RETCL_VENDOR_INTEL},
      {"Apple", "Apple", "Apple M2", 0x1027f00, RETCL_VENDOR_OTHER},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
    ck_assert_msg(retcl__vendor_of(cases[i].platform, cases[i].vendor,
                                   cases[i].name, cases[i].id) ==
                      cases[i].want,
                  "%s / %s: vendor %s, expected %s", cases[i].platform,
                  cases[i].name,
                  retcl__vendor_name(retcl__vendor_of(
                      cases[i].platform, cases[i].vendor, cases[i].name,
                      cases[i].id)),
                  retcl__vendor_name(cases[i].want));
}
END_TEST

START_TEST(params_file_overrides_and_device_filter) {
  retcl_context *ctx = NULL;
  tu_ok(NULL, tu_context_with_params(
                  "{\"retention\": {\"rb\": 6, \"access\": \"gpu\"},"
                  " \"linear\": {\"row_limit\": 0}}",
                  &ctx));
  retcl_param_info rb = param(ctx, "retention", "rb");
  ck_assert_int_eq(rb.value, 6);
  ck_assert_str_eq(rb.source, "RETCL_PARAMS");
  ck_assert_str_eq(param(ctx, "retention", "access").value_name, "gpu");
  ck_assert_int_eq(param(ctx, "linear", "row_limit").value, 0);
  ck_assert_str_ne(param(ctx, "retention", "kb").source, "RETCL_PARAMS");
  retcl_context_destroy(ctx);
  /* A record for another device leaves this one's values alone. */
  tu_ok(NULL, tu_context_with_params(
                  "{\"device\": \"no device is called this\","
                  " \"retention\": {\"rb\": 6}}",
                  &ctx));
  ck_assert_int_ne(param(ctx, "retention", "rb").value, 6);
  ck_assert_str_ne(param(ctx, "retention", "rb").source, "RETCL_PARAMS");
  retcl_context_destroy(ctx);
}
END_TEST

/* Each bad file fails context creation with its status and a message that
 * names what is wrong. */
START_TEST(params_file_errors_name_the_key) {
  static const struct {
    const char *json, *needle;
    retcl_status status;
  } cases[] = {
      {"[1, 2]", "not a JSON object", RETCL_ERROR_FORMAT},
      {"{\"retention\": {\"rb\": 4}", "not a JSON object", RETCL_ERROR_FORMAT},
      {"{\"retentoin\": {\"rb\": 4}}", "\"retentoin\" is not a kernel family",
       RETCL_ERROR_FORMAT},
      {"{\"retention\": {\"rbb\": 4}}", "retention.rbb is not a parameter",
       RETCL_ERROR_FORMAT},
      {"{\"retention\": {\"rb\": 0}}", "retention.rb = 0 is outside [1, 64]",
       RETCL_ERROR_FORMAT},
      {"{\"retention\": {\"rb\": 2.5}}", "retention.rb must be a whole number",
       RETCL_ERROR_FORMAT},
      {"{\"linear\": {\"access\": \"fpga\"}}",
       "linear.access = \"fpga\" is not one of", RETCL_ERROR_FORMAT},
      {"{\"group_norm\": 3}", "\"group_norm\" is not an object",
       RETCL_ERROR_FORMAT},
      {"{\"device\": 7}", "\"device\" must be a string", RETCL_ERROR_FORMAT},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    retcl_context *ctx = NULL;
    const retcl_status st = tu_context_with_params(cases[i].json, &ctx);
    ck_assert_msg(st == cases[i].status && !ctx,
                  "%s: status %d, context %p", cases[i].json, (int)st,
                  (void *)ctx);
    ck_assert_msg(strstr(retcl_last_error(NULL), cases[i].needle),
                  "%s: message \"%s\" lacks \"%s\"", cases[i].json,
                  retcl_last_error(NULL), cases[i].needle);
  }
  setenv("RETCL_PARAMS", "/nonexistent/retcl-params.json", 1);
  retcl_context *ctx = NULL;
  const retcl_status st = retcl_context_create(NULL, NULL, &ctx);
  unsetenv("RETCL_PARAMS");
  ck_assert_int_eq(st, RETCL_ERROR_IO);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(NULL), "/nonexistent"));
}
END_TEST

/* Raw chunkwise retention with a state in and out, against the double
 * reference, on a context made with `json`. Returns the relative error of
 * the output (state error asserted inside). */
static double retention_error(const char *json) {
  retcl_context *ctx = NULL;
  tu_ok(NULL, tu_context_with_params(json, &ctx));
  enum { B = 2, T = 45, H = 3, Dk = 12, Dv = 20 };
  const size_t nq = B * T * H * Dk, nv = B * T * H * Dv, ns = B * H * Dk * Dv;
  float *q = tu_alloc(nq), *k = tu_alloc(nq), *v = tu_alloc(nv),
        *s0 = tu_alloc(ns), lg[H];
  tu_fill_uniform(q, nq, -1, 1);
  tu_fill_uniform(k, nq, -1, 1);
  tu_fill_uniform(v, nv, -1, 1);
  tu_fill_uniform(s0, ns, -1, 1);
  retcl_default_log_decay(H, lg);
  double *ref = tu_alloc_d(nv), *ref_s = tu_alloc_d(ns);
  ref_retention_raw(q, k, v, lg, s0, ref, ref_s, B, T, H, Dk, Dv,
                    RETCL_LAYOUT_TOKEN_MAJOR, 0.5);
  cl_mem qb = tu_upload(ctx, q, nq), kb = tu_upload(ctx, k, nq),
         vb = tu_upload(ctx, v, nv), sb = tu_upload(ctx, s0, ns),
         lb = tu_upload(ctx, lg, H), ob = tu_poisoned(ctx, nv),
         so = tu_poisoned(ctx, ns);
  const retcl_retention_desc d = {B, T, H, Dk, Dv, RETCL_LAYOUT_TOKEN_MAJOR,
                                  RETCL_ALGO_CHUNKWISE, RETCL_FORM_RAW, 0,
                                  0.5f, 0};
  tu_ok(ctx, retcl_retention(ctx, &d, retcl_buf(qb, 0), retcl_buf(kb, 0),
                             retcl_buf(vb, 0), retcl_buf(lb, 0),
                             retcl_buf(sb, 0), retcl_buf(so, 0),
                             retcl_buf(ob, 0), 0, NULL, NULL));
  float *out = tu_alloc(nv), *s_out = tu_alloc(ns);
  tu_download(ctx, ob, 0, out, nv);
  tu_download(ctx, so, 0, s_out, ns);
  /* ‖out − ref‖/‖ref‖ ≤ 1e-5 for fp32 (docs/design.md §5), the state too. */
  tu_assert_close("final state", s_out, ref_s, ns, 1e-5);
  const double err = tu_rel_error(out, ref, nv);
  cl_mem all[] = {qb, kb, vb, sb, lb, ob, so};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
    clReleaseMemObject(all[i]);
  free(q), free(k), free(v), free(s0), free(ref), free(ref_s), free(out);
  free(s_out);
  retcl_context_destroy(ctx);
  return err;
}

/* Tile sizes, vector widths, access patterns and the default chunk are
 * tunables, not part of the result: every record computes the same
 * function (to fp32 rounding). */
START_TEST(other_records_compute_the_same) {
  static const char *const records[] = {
      "{}",
      "{\"retention\": {\"access\": \"cpu\", \"vw\": 8, \"rb\": 3, \"kb\": 5,"
      " \"kt\": 7, \"chunk\": 16}}",
      "{\"retention\": {\"access\": \"gpu\", \"vw\": 16, \"rb\": 16, \"kb\": 1,"
      " \"kt\": 64, \"chunk\": 45}}",
      "{\"retention\": {\"access\": \"cpu\", \"chunk\": 1}}",
  };
  for (size_t i = 0; i < sizeof records / sizeof records[0]; ++i) {
    const double err = retention_error(records[i]);
    ck_assert_msg(err <= 1e-5, "record %s: relative error %.3g > 1e-5",
                  records[i], err);
  }
}
END_TEST

/* A value in range that the kernel cannot use (a vector width of 12)
 * fails the build, with the kernel's message, before anything is
 * enqueued: the caller's output keeps its poison. */
START_TEST(bad_record_fails_the_build_before_enqueue) {
  retcl_context *ctx = NULL;
  tu_ok(NULL, tu_context_with_params("{\"retention\": {\"vw\": 12}}", &ctx));
  enum { T = 5, Dk = 4 };
  float h[T * Dk], lg[1];
  tu_fill_uniform(h, T * Dk, -1, 1);
  retcl_default_log_decay(1, lg);
  cl_mem xb = tu_upload(ctx, h, T * Dk), lb = tu_upload(ctx, lg, 1),
         ob = tu_poisoned(ctx, T * Dk);
  const retcl_retention_desc d = {1, T, 1, Dk, Dk, RETCL_LAYOUT_TOKEN_MAJOR,
                                  RETCL_ALGO_PARALLEL, RETCL_FORM_RAW, 0, 0,
                                  0};
  tu_assert_status(ctx,
                   retcl_retention(ctx, &d, retcl_buf(xb, 0), retcl_buf(xb, 0),
                                   retcl_buf(xb, 0), retcl_buf(lb, 0),
                                   retcl_no_buf(), retcl_no_buf(),
                                   retcl_buf(ob, 0), 0, NULL, NULL),
                   RETCL_ERROR_BUILD_FAILED);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "retention.cl"));
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "must be 8 or 16"));
  float out[T * Dk];
  tu_download(ctx, ob, 0, out, T * Dk);
  for (size_t i = 0; i < T * Dk; ++i) ck_assert(isnan(out[i]));
  tu_assert_status(ctx, retcl_context_prepare(ctx), RETCL_ERROR_BUILD_FAILED);
  clReleaseMemObject(xb), clReleaseMemObject(lb), clReleaseMemObject(ob);
  retcl_context_destroy(ctx);
}
END_TEST

/* A small random checkpoint in a fresh folder (removed by the caller). */
static void write_model(char *dir, size_t chunk) {
  ck_assert_ptr_nonnull(mkdtemp(dir));
  retcl_model_config cfg = tu_model_config(16, 16, 2, 24, 2, 37);
  cfg.chunk_size = chunk;
  tu_ok(NULL, retcl_checkpoint_write_random(&cfg, tu_seed(), RETCL_DTYPE_F32,
                                            dir));
}

START_TEST(model_load_builds_everything_up_front) {
  char dir[] = "/tmp/retcl-params-model-XXXXXX";
  write_model(dir, 8);
  retcl_context *ctx = NULL;
  tu_ok(NULL, tu_context_with_params("{\"linear\": {\"wg\": 48}}", &ctx));
  retcl_model *m = NULL;
  tu_assert_status(ctx, retcl_model_load(ctx, dir, &m),
                   RETCL_ERROR_BUILD_FAILED);
  ck_assert_ptr_null(m);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "linear.cl"));
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "power of two"));
  retcl_context_destroy(ctx);
  ref_checkpoint_remove(dir);
}
END_TEST

/* recurrent_chunk_size over the kernels' limit is refused at load, naming
 * the config.json field (not a function the user never called). */
START_TEST(config_over_kernel_limits_rejected_at_load) {
  char dir[] = "/tmp/retcl-params-model-XXXXXX";
  write_model(dir, 8);
  char path[512];
  snprintf(path, sizeof path, "%s/config.json", dir);
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  char text[4096];
  const size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  char *at = strstr(text, "\"recurrent_chunk_size\"");
  ck_assert_ptr_nonnull(at);
  char *colon = strchr(at, ':'), *end = colon + 1;
  while (*end == ' ' || *end == '\t' || (*end >= '0' && *end <= '9')) ++end;
  char patched[4200];
  snprintf(patched, sizeof patched, "%.*s: 2048%s", (int)(colon - text), text,
           end);
  f = fopen(path, "wb");
  fputs(patched, f);
  fclose(f);
  retcl_context *ctx = tu_context();
  retcl_model *m = NULL;
  tu_assert_status(ctx, retcl_model_load(ctx, dir, &m),
                   RETCL_ERROR_INVALID_SIZE);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "recurrent_chunk_size"));
  ck_assert_ptr_null(m);
  retcl_context_destroy(ctx);
  ref_checkpoint_remove(dir);
}
END_TEST

/* A call that fails leaves the decode state exactly as it was: its
 * position, and its contents, seen through the next step's logits, which
 * must equal bit for bit those of a twin state that saw no failed call. */
START_TEST(failed_calls_leave_decode_state_untouched) {
  char dir[] = "/tmp/retcl-params-model-XXXXXX";
  write_model(dir, 8);
  retcl_context *ctx = tu_context();
  retcl_model *m = NULL;
  tu_ok(ctx, retcl_model_load(ctx, dir, &m));
  retcl_decode_state *s = NULL, *twin = NULL;
  tu_ok(ctx, retcl_decode_state_create(m, 2, &s));
  tu_ok(ctx, retcl_decode_state_create(m, 2, &twin));
  const int32_t prompt[6] = {1, 5, 9, 2, 36, 0};
  float logits[2 * 2 * 37], want[2 * 37], got[2 * 37];
  tu_ok(ctx, retcl_model_forward_last(m, s, prompt, 2, 3,
                                      RETCL_ALGO_CHUNKWISE, 0, logits));
  tu_ok(ctx, retcl_model_forward_last(m, twin, prompt, 2, 3,
                                      RETCL_ALGO_CHUNKWISE, 0, logits));
  const int32_t good[4] = {3, 4, 5, 6}, bad_token[2] = {3, 37};
  /* Out of the vocabulary, batch mismatch, not recurrent after a prefill,
   * a chunk over the limit. */
  tu_assert_status(ctx, retcl_model_forward(m, s, bad_token, 2, 1,
                                            RETCL_ALGO_RECURRENT, 0, logits),
                   RETCL_ERROR_INVALID_ARGUMENT);
  tu_assert_status(ctx, retcl_model_forward(m, s, good, 1, 2,
                                            RETCL_ALGO_RECURRENT, 0, logits),
                   RETCL_ERROR_INVALID_ARGUMENT);
  tu_assert_status(ctx, retcl_model_forward(m, s, good, 2, 2,
                                            RETCL_ALGO_CHUNKWISE, 0, logits),
                   RETCL_ERROR_UNSUPPORTED);
  tu_assert_status(ctx, retcl_model_forward(m, NULL, good, 2, 2,
                                            RETCL_ALGO_CHUNKWISE, 4096, logits),
                   RETCL_ERROR_INVALID_SIZE);
  ck_assert_uint_eq(retcl_decode_state_position(s), 3);
  tu_ok(ctx, retcl_model_forward(m, twin, good, 2, 1, RETCL_ALGO_RECURRENT, 0,
                                 want));
  tu_ok(ctx, retcl_model_forward(m, s, good, 2, 1, RETCL_ALGO_RECURRENT, 0,
                                 got));
  ck_assert_int_eq(memcmp(want, got, sizeof want), 0);
  ck_assert_uint_eq(retcl_decode_state_position(s), 4);
  retcl_decode_state_destroy(s);
  retcl_decode_state_destroy(twin);
  retcl_model_destroy(m);
  retcl_context_destroy(ctx);
  ref_checkpoint_remove(dir);
}
END_TEST

int main(void) {
  /* These tests set the record themselves (tu_context_with_params) and
   * check the built-in levels: a record from the environment would change
   * what they see. */
  unsetenv("RETCL_PARAMS");
  Suite *s = suite_create("params");
  TCase *record = tcase_create("record");
  tcase_add_test(record, record_lists_every_parameter_with_its_level);
  tcase_add_test(record, vendor_recognised_from_driver_strings);
  tcase_add_test(record, params_file_overrides_and_device_filter);
  tcase_add_test(record, params_file_errors_name_the_key);
  tcase_add_test(record, other_records_compute_the_same);
  suite_add_tcase(s, record);
  TCase *build = tcase_create("build");
  tcase_add_test(build, bad_record_fails_the_build_before_enqueue);
  tcase_add_test(build, model_load_builds_everything_up_front);
  tcase_add_test(build, config_over_kernel_limits_rejected_at_load);
  tcase_add_test(build, failed_calls_leave_decode_state_untouched);
  suite_add_tcase(s, build);
  return tu_run_suite(s);
}
