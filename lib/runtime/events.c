/* events.c - wait lists and completion events for ops made of several
 * enqueues, some of them CLBlast's (which takes no wait list): markers on
 * the context's in-order queue stand in for them. */
#include "runtime/events.h"

#include "runtime/context.h"
#include "runtime/status.h"

retcl_status retcl__wait_for(retcl_context *ctx, cl_uint n,
                             const cl_event *list) {
  if (!n) return RETCL_SUCCESS;
  cl_int err = clEnqueueMarkerWithWaitList(ctx->queue, n, list, NULL);
  return err == CL_SUCCESS
             ? RETCL_SUCCESS
             : retcl__cl_fail(ctx, "clEnqueueMarkerWithWaitList", err);
}

retcl_status retcl__signal_done(retcl_context *ctx, cl_event *event) {
  if (!event) return RETCL_SUCCESS;
  cl_int err = clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, event);
  return err == CL_SUCCESS
             ? RETCL_SUCCESS
             : retcl__cl_fail(ctx, "clEnqueueMarkerWithWaitList", err);
}
