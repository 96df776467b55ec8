/* test_checks.c - how often a call validates buffers: composite calls
 * check each caller buffer once at entry and run the ops' enqueue steps
 * unchecked. This executable defines clGetMemObjectInfo itself, so the
 * library's calls land here (the executable's definition comes first in
 * the dynamic symbol lookup), are counted, and are passed on to the ICD
 * loader's. A buffer check is two queries (CL_MEM_CONTEXT, CL_MEM_SIZE). */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ref_checkpoint.h"
#include "testutil.h"

static unsigned long mem_info_calls;

CL_API_ENTRY cl_int CL_API_CALL clGetMemObjectInfo(cl_mem mem,
                                                   cl_mem_info name,
                                                   size_t size, void *value,
                                                   size_t *size_ret) {
  typedef cl_int (*fn)(cl_mem, cl_mem_info, size_t, void *, size_t *);
  static fn next;
  if (!next) next = (fn)dlsym(RTLD_NEXT, "clGetMemObjectInfo");
  ++mem_info_calls;
  return next(mem, name, size, value, size_ret);
}

/* The queries one successful call makes, into out. */
#define COUNT_CALLS(out, call)                   \
  do {                                           \
    const unsigned long before_ = mem_info_calls; \
    tu_ok(ctx, call);                            \
    (out) = mem_info_calls - before_;            \
  } while (0)

START_TEST(layer_checks_each_caller_buffer_once) {
  retcl_context *ctx = tu_context();
  enum { B = 1, T = 3, d = 16, H = 2, Dk = 8 };
  const size_t ns = B * H * Dk * Dk;
  float *x = tu_alloc(B * T * d), *w = tu_alloc(d * d), lg[H];
  tu_fill_uniform(x, B * T * d, -1, 1);
  tu_fill_uniform(w, d * d, -0.25, 0.25);
  retcl_default_log_decay(H, lg);
  cl_mem xb = tu_upload(ctx, x, B * T * d), yb = tu_poisoned(ctx, B * T * d),
         lb = tu_upload(ctx, lg, H), s_out = tu_poisoned(ctx, ns), wb[5];
  float *zero = calloc(ns, sizeof(float));
  cl_mem s_in = tu_upload(ctx, zero, ns);
  for (int i = 0; i < 5; ++i) wb[i] = tu_upload(ctx, w, d * d);
  retcl_rotation *rot = NULL;
  tu_ok(ctx, retcl_rotation_create(ctx, Dk, NULL, 0, &rot));
  const retcl_msr_weights weights = {retcl_buf(wb[0], 0), retcl_buf(wb[1], 0),
                                     retcl_buf(wb[2], 0), retcl_buf(wb[3], 0),
                                     retcl_buf(wb[4], 0)};
  const retcl_msr_desc desc = {B, T, d, d, H, RETCL_ALGO_CHUNKWISE,
                               RETCL_FORM_RAW, 2, 0, 1e-6f};
  /* x, y, five weights, log_decay, state_in, state_out: ten buffers, two
   * queries each, however many ops the layer runs inside. */
  unsigned long layer = 0, retention = 0;
  COUNT_CALLS(layer, retcl_msr_forward(ctx, &desc, &weights, rot,
                                       retcl_buf(lb, 0), retcl_buf(xb, 0),
                                       retcl_buf(s_in, 0), retcl_buf(s_out, 0),
                                       retcl_buf(yb, 0), 0, NULL, NULL));
  ck_assert_uint_eq(layer, 20);
  /* The op alone: retention checks its seven buffers. */
  const retcl_retention_desc rd = {B, T, H, Dk, Dk, RETCL_LAYOUT_TOKEN_MAJOR,
                                   RETCL_ALGO_CHUNKWISE, RETCL_FORM_RAW, 2,
                                   0, 0};
  COUNT_CALLS(retention, retcl_retention(
      ctx, &rd, retcl_buf(xb, 0), retcl_buf(xb, 0), retcl_buf(xb, 0),
      retcl_buf(lb, 0), retcl_buf(s_in, 0), retcl_buf(s_out, 0),
      retcl_buf(yb, 0), 0, NULL, NULL));
  ck_assert_uint_eq(retention, 14);
  tu_ok(ctx, retcl_finish(ctx));
  retcl_rotation_destroy(rot);
  cl_mem all[] = {xb, yb, lb, s_in, s_out, wb[0], wb[1], wb[2], wb[3], wb[4]};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
    clReleaseMemObject(all[i]);
  free(x), free(w), free(zero);
  retcl_context_destroy(ctx);
}
END_TEST

/* A decode step touches only the model's own buffers, checked when they
 * were made: no query at all. */
START_TEST(decode_step_checks_nothing_again) {
  char dir[] = "/tmp/retcl-checks-model-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  const retcl_model_config cfg = tu_model_config(16, 16, 2, 24, 2, 29);
  tu_ok(NULL, retcl_checkpoint_write_random(&cfg, tu_seed(), RETCL_DTYPE_F32,
                                            dir));
  retcl_context *ctx = tu_context();
  retcl_model *m = NULL;
  tu_ok(ctx, retcl_model_load(ctx, dir, &m));
  retcl_decode_state *s = NULL;
  tu_ok(ctx, retcl_decode_state_create(m, 2, &s));
  const int32_t prompt[4] = {1, 2, 3, 4}, step[2] = {5, 6};
  float logits[2 * 29];
  tu_ok(ctx, retcl_model_forward_last(m, s, prompt, 2, 2, RETCL_ALGO_CHUNKWISE,
                                      0, logits));
  unsigned long decode = 1;
  COUNT_CALLS(decode, retcl_model_forward(m, s, step, 2, 1,
                                          RETCL_ALGO_RECURRENT, 0, logits));
  ck_assert_uint_eq(decode, 0);
  retcl_decode_state_destroy(s);
  retcl_model_destroy(m);
  retcl_context_destroy(ctx);
  ref_checkpoint_remove(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("checks");
  TCase *tc = tcase_create("counts");
  tcase_add_test(tc, layer_checks_each_caller_buffer_once);
  tcase_add_test(tc, decode_step_checks_nothing_again);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
