/* status.c - status text, version, error messages and logging. */
#include "runtime/status.h"

#include "runtime/context.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int retcl_version_number(void) { return RETCL_VERSION_NUMBER; }

#define RETCL_STR2(x) #x
#define RETCL_STR(x) RETCL_STR2(x)
const char *retcl_version_string(void) {
  return RETCL_STR(RETCL_VERSION_MAJOR) "." RETCL_STR(
      RETCL_VERSION_MINOR) "." RETCL_STR(RETCL_VERSION_PATCH);
}

const char *retcl_status_string(retcl_status status) {
  switch (status) {
    case RETCL_SUCCESS: return "success";
    case RETCL_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case RETCL_ERROR_INVALID_SIZE: return "invalid or unsupported size";
    case RETCL_ERROR_BUFFER_TOO_SMALL: return "buffer too small";
    case RETCL_ERROR_CONTEXT_MISMATCH: return "object from another OpenCL context";
    case RETCL_ERROR_DEVICE_NOT_FOUND: return "no matching OpenCL device";
    case RETCL_ERROR_UNSUPPORTED: return "unsupported combination";
    case RETCL_ERROR_BUILD_FAILED: return "OpenCL program build failed";
    case RETCL_ERROR_OUT_OF_MEMORY: return "out of memory";
    case RETCL_ERROR_OPENCL: return "OpenCL call failed";
    case RETCL_ERROR_IO: return "input/output error";
    case RETCL_ERROR_FORMAT: return "malformed file";
  }
  return "unknown status";
}

/* Failures before a context exists (create/wrap) land here, per thread. */
static _Thread_local char creation_error[8192];

const char *retcl_last_error(const retcl_context *ctx) {
  return ctx ? ctx->error : creation_error;
}

void retcl__clear_error(retcl_context *ctx) {
  if (ctx) ctx->error[0] = '\0';
}

static void vlog(retcl_context *ctx, retcl_log_level level, const char *fmt,
                 va_list ap) {
  if (!ctx || !ctx->log_fn) return;
  char msg[8192];
  vsnprintf(msg, sizeof msg, fmt, ap);
  ctx->log_fn(level, msg, ctx->log_user);
}

void retcl__log(retcl_context *ctx, retcl_log_level level, const char *fmt,
                ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(ctx, level, fmt, ap);
  va_end(ap);
}

retcl_status retcl__fail(retcl_context *ctx, retcl_status status,
                         const char *fmt, ...) {
  char *dst = ctx ? ctx->error : creation_error;
  size_t cap = ctx ? sizeof ctx->error : sizeof creation_error;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst, cap, fmt, ap);
  va_end(ap);
  retcl__log(ctx, RETCL_LOG_ERROR, "%s", dst);
  return status;
}

void retcl_set_log_callback(retcl_context *ctx, retcl_log_fn fn,
                            void *user_data) {
  if (!ctx) return;
  ctx->log_fn = fn;
  ctx->log_user = user_data;
}

const char *retcl_cl_error_name(cl_int err) {
  switch (err) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE)
    E(CL_COMPILER_NOT_AVAILABLE) E(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP)
    E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM)
    E(CL_INVALID_DEVICE) E(CL_INVALID_CONTEXT) E(CL_INVALID_QUEUE_PROPERTIES)
    E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_HOST_PTR) E(CL_INVALID_MEM_OBJECT)
    E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM)
    E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME)
    E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE)
    E(CL_INVALID_ARG_SIZE) E(CL_INVALID_KERNEL_ARGS)
    E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE)
    E(CL_INVALID_WORK_ITEM_SIZE) E(CL_INVALID_GLOBAL_OFFSET)
    E(CL_INVALID_EVENT_WAIT_LIST) E(CL_INVALID_EVENT) E(CL_INVALID_OPERATION)
    E(CL_INVALID_BUFFER_SIZE) E(CL_INVALID_GLOBAL_WORK_SIZE)
#undef E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL driver installed)";
  }
  return "unknown OpenCL error";
}

retcl_status retcl__cl_fail(retcl_context *ctx, const char *call, cl_int err) {
  retcl_status st = (err == CL_OUT_OF_HOST_MEMORY ||
                     err == CL_MEM_OBJECT_ALLOCATION_FAILURE)
                        ? RETCL_ERROR_OUT_OF_MEMORY
                        : RETCL_ERROR_OPENCL;
  return retcl__fail(ctx, st, "%s failed: %s (%d)", call,
                     retcl_cl_error_name(err), (int)err);
}
