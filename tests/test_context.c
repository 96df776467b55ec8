/* test_context.c - device selection, wrapping a caller's OpenCL objects,
 * status text, versions, the log callback, program caching and events. */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

START_TEST(version_macros_match_library) {
  ck_assert_int_eq(retcl_version_number(), RETCL_VERSION_NUMBER);
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", RETCL_VERSION_MAJOR,
           RETCL_VERSION_MINOR, RETCL_VERSION_PATCH);
  ck_assert_str_eq(retcl_version_string(), want);
}
END_TEST

START_TEST(status_strings_are_distinct) {
  for (int a = RETCL_SUCCESS; a <= RETCL_ERROR_FORMAT; ++a) {
    const char *sa = retcl_status_string((retcl_status)a);
    ck_assert_ptr_nonnull(sa);
    ck_assert_str_ne(sa, "unknown status");
    for (int b = a + 1; b <= RETCL_ERROR_FORMAT; ++b)
      ck_assert_str_ne(sa, retcl_status_string((retcl_status)b));
  }
  ck_assert_str_eq(retcl_status_string((retcl_status)999), "unknown status");
}
END_TEST

START_TEST(select_device_by_index_name_and_env) {
  retcl_context *ctx = NULL;
  tu_ok(NULL, retcl_context_create(NULL, "0", &ctx));
  char name[256];
  clGetDeviceInfo(retcl_context_device(ctx), CL_DEVICE_NAME, sizeof name, name,
                  NULL);
  retcl_context_destroy(ctx);

  /* A case-flipped substring of the real name selects the same device. */
  char sub[5] = {0};
  for (int i = 0; i < 4 && name[i]; ++i)
    sub[i] = (name[i] >= 'a' && name[i] <= 'z') ? name[i] - 32 : name[i] + 0;
  tu_ok(NULL, retcl_context_create(NULL, sub, &ctx));
  retcl_context_destroy(ctx);

  ctx = (retcl_context *)1;
  tu_assert_status(NULL, retcl_context_create(NULL, "no-such-device-xyz", &ctx),
                   RETCL_ERROR_DEVICE_NOT_FOUND);
  ck_assert_ptr_null(ctx);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(NULL), "no-such-device-xyz"));
  tu_assert_status(NULL, retcl_context_create(NULL, "99", &ctx),
                   RETCL_ERROR_DEVICE_NOT_FOUND);
  tu_assert_status(NULL, retcl_context_create("no-such-platform", NULL, &ctx),
                   RETCL_ERROR_DEVICE_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(NULL), "no-such-platform"));
  tu_assert_status(NULL, retcl_context_create(NULL, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);

  /* The environment chooses when the arguments are NULL. */
  setenv("RETCL_DEVICE", "no-such-device-xyz", 1);
  tu_assert_status(NULL, retcl_context_create(NULL, NULL, &ctx),
                   RETCL_ERROR_DEVICE_NOT_FOUND);
  setenv("RETCL_DEVICE", "0", 1);
  setenv("RETCL_PLATFORM", "no-such-platform", 1);
  tu_assert_status(NULL, retcl_context_create(NULL, NULL, &ctx),
                   RETCL_ERROR_DEVICE_NOT_FOUND);
  setenv("RETCL_PLATFORM", "0", 1);
  tu_ok(NULL, retcl_context_create(NULL, NULL, &ctx));
  retcl_context_destroy(ctx);
  unsetenv("RETCL_DEVICE");
  unsetenv("RETCL_PLATFORM");
  retcl_context_destroy(NULL); /* no-op */
}
END_TEST

static cl_uint refcount_ctx(cl_context c) {
  cl_uint n = 0;
  clGetContextInfo(c, CL_CONTEXT_REFERENCE_COUNT, sizeof n, &n, NULL);
  return n;
}
static cl_uint refcount_queue(cl_command_queue q) {
  cl_uint n = 0;
  clGetCommandQueueInfo(q, CL_QUEUE_REFERENCE_COUNT, sizeof n, &n, NULL);
  return n;
}

/* The HPC use: the caller owns the context and queue; RetCL retains them
 * while it uses them and gives its references back on destroy. */
START_TEST(wrap_caller_objects_and_release_them) {
  retcl_context *probe = tu_context();
  cl_device_id dev = retcl_context_device(probe);
  cl_int err;
  cl_context cc = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  ck_assert_int_eq(err, CL_SUCCESS);
  cl_command_queue q = clCreateCommandQueue(cc, dev, 0, &err);
  ck_assert_int_eq(err, CL_SUCCESS);
  const cl_uint c0 = refcount_ctx(cc), q0 = refcount_queue(q);

  retcl_context *ctx = NULL;
  tu_ok(NULL, retcl_context_wrap(cc, dev, q, &ctx));
  ck_assert_ptr_eq(retcl_context_queue(ctx), q);
  ck_assert_ptr_eq(retcl_context_cl_context(ctx), cc);
  ck_assert_uint_gt(refcount_ctx(cc), c0);

  /* An op on the caller's queue, with caller-made buffers at offsets. */
  const size_t n = 3 * 2 * 8;
  float x[48], got[48];
  double ref[48];
  tu_fill_uniform(x, n, -1, 1);
  cl_mem in = clCreateBuffer(cc, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                             sizeof x, x, &err);
  cl_mem out = clCreateBuffer(cc, CL_MEM_READ_WRITE, sizeof x, NULL, &err);
  retcl_rotation *rot = NULL;
  tu_ok(ctx, retcl_rotation_create(ctx, 8, NULL, 0, &rot));
  retcl_rotation_desc d = {1, 3, 2, RETCL_LAYOUT_TOKEN_MAJOR, 5, 0};
  tu_ok(ctx, retcl_rotate(ctx, rot, &d, retcl_buf(in, 0), retcl_buf(out, 0), 0,
                          NULL, NULL));
  clEnqueueReadBuffer(q, out, CL_TRUE, 0, sizeof got, got, 0, NULL, NULL);
  ref_rotate(x, ref, 1, 3, 2, 8, RETCL_LAYOUT_TOKEN_MAJOR, 5, NULL, 0, 0);
  tu_assert_close("rotate on wrapped queue", got, ref, n, 1e-6);

  retcl_rotation_destroy(rot);
  retcl_context_destroy(ctx);
  clReleaseMemObject(in); /* buffers hold the context too */
  clReleaseMemObject(out);
  /* The driver may drop the references its finished commands held a little
   * later (PoCL does so from a worker thread): wait up to 2 s for the counts
   * to come back. A reference RetCL kept would never come back. */
  clFinish(q);
  for (int i = 0; i < 200 && (refcount_ctx(cc) != c0 || refcount_queue(q) != q0); ++i)
    usleep(10000);
  ck_assert_uint_eq(refcount_ctx(cc), c0);
  ck_assert_uint_eq(refcount_queue(q), q0);

  /* Mismatches and NULLs. */
  cl_context other = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  tu_assert_status(NULL, retcl_context_wrap(other, dev, q, &ctx),
                   RETCL_ERROR_CONTEXT_MISMATCH);
  ck_assert_ptr_null(ctx);
  tu_assert_status(NULL, retcl_context_wrap(cc, dev, NULL, &ctx),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(NULL), "queue"));
  cl_command_queue ooo = clCreateCommandQueue(
      cc, dev, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
  if (ooo) { /* only where the driver offers out-of-order queues */
    tu_assert_status(NULL, retcl_context_wrap(cc, dev, ooo, &ctx),
                     RETCL_ERROR_UNSUPPORTED);
    clReleaseCommandQueue(ooo);
  }
  clReleaseContext(other);
  clReleaseCommandQueue(q);
  clReleaseContext(cc);
  retcl_context_destroy(probe);
}
END_TEST

typedef struct log_record {
  int builds, errors;
  char last_error[1024];
} log_record;

static void record(retcl_log_level level, const char *msg, void *user) {
  log_record *r = user;
  if (level == RETCL_LOG_INFO && strstr(msg, "built ")) r->builds++;
  if (level == RETCL_LOG_ERROR) {
    r->errors++;
    snprintf(r->last_error, sizeof r->last_error, "%s", msg);
  }
}

/* Programs build once per context (the log sees one build however many
 * calls), errors reach the callback with the same text as
 * retcl_last_error, and the op honours the wait list. */
START_TEST(log_callback_program_cache_and_wait_list) {
  retcl_context *ctx = tu_context();
  log_record rec = {0, 0, ""};
  retcl_set_log_callback(ctx, record, &rec);
  retcl_rotation *rot = NULL;
  tu_ok(ctx, retcl_rotation_create(ctx, 4, NULL, 0, &rot));
  const size_t n = 2 * 4;
  float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, got[8];
  double ref[8];
  cl_mem in = tu_upload(ctx, x, n), out = tu_poisoned(ctx, n);
  retcl_rotation_desc d = {1, 2, 1, RETCL_LAYOUT_TOKEN_MAJOR, 0, 0};
  for (int i = 0; i < 3; ++i)
    tu_ok(ctx, retcl_rotate(ctx, rot, &d, retcl_buf(in, 0), retcl_buf(out, 0),
                            0, NULL, NULL));
  tu_ok(ctx, retcl_finish(ctx));
  ck_assert_int_eq(rec.builds, 1);
  ck_assert_uint_eq(retcl_context_workspace_bytes(ctx), 0); /* rotation needs none */
  ck_assert_uint_eq(retcl_context_workspace_bytes(NULL), 0);
  ck_assert_int_eq(rec.errors, 0);

  retcl_rotation_desc bad = d;
  bad.tokens = 0;
  tu_assert_status(ctx, retcl_rotate(ctx, rot, &bad, retcl_buf(in, 0),
                                     retcl_buf(out, 0), 0, NULL, NULL),
                   RETCL_ERROR_INVALID_SIZE);
  ck_assert_int_eq(rec.errors, 1);
  ck_assert_str_eq(rec.last_error, retcl_last_error(ctx));

  /* A user event gates the op: nothing runs until it completes. */
  cl_mem out2 = tu_poisoned(ctx, n);
  cl_int err;
  cl_event gate = clCreateUserEvent(retcl_context_cl_context(ctx), &err);
  cl_event done = NULL;
  tu_ok(ctx, retcl_rotate(ctx, rot, &d, retcl_buf(in, 0), retcl_buf(out2, 0),
                          1, &gate, &done));
  cl_int state = 0;
  clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof state, &state,
                 NULL);
  ck_assert_int_ne(state, CL_COMPLETE);
  clSetUserEventStatus(gate, CL_COMPLETE);
  ck_assert_int_eq(clWaitForEvents(1, &done), CL_SUCCESS);
  tu_download(ctx, out2, 0, got, n);
  ref_rotate(x, ref, 1, 2, 1, 4, RETCL_LAYOUT_TOKEN_MAJOR, 0, NULL, 0, 0);
  tu_assert_close("gated rotate", got, ref, n, 1e-6);

  retcl_set_log_callback(ctx, NULL, NULL);
  clReleaseEvent(gate);
  clReleaseEvent(done);
  clReleaseMemObject(in);
  clReleaseMemObject(out);
  clReleaseMemObject(out2);
  retcl_rotation_destroy(rot);
  retcl_context_destroy(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("context");
  TCase *tc = tcase_create("context");
  tcase_add_test(tc, version_macros_match_library);
  tcase_add_test(tc, status_strings_are_distinct);
  tcase_add_test(tc, select_device_by_index_name_and_env);
  tcase_add_test(tc, wrap_caller_objects_and_release_them);
  tcase_add_test(tc, log_callback_program_cache_and_wait_list);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
