/* status.h - failures and messages (status.c): every failure of a call is
 * recorded on its context (or, before one exists, per thread) and sent to
 * the log callback; the library never prints. */
#ifndef RETCL_RUNTIME_STATUS_H
#define RETCL_RUNTIME_STATUS_H

#include "retcl.h"

/* Record a failure on ctx (or, for NULL, in this thread's creation slot),
 * send it to the log callback, and return status. */
retcl_status retcl__fail(retcl_context *ctx, retcl_status status,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void retcl__log(retcl_context *ctx, retcl_log_level level, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));
/* Clear the last error at the start of a public call. */
void retcl__clear_error(retcl_context *ctx);
/* Map an OpenCL error from `call` to a status with a message. */
retcl_status retcl__cl_fail(retcl_context *ctx, const char *call, cl_int err);

#endif
