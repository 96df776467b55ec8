/* linear.c - retcl_linear: the public face of the dense projections
 * (gemm.c), with the checks and event handling every public op has. */
#include "internal.h"

#include <math.h>

static const char *OP = "retcl_linear";

static retcl_status check_linear(retcl_context *ctx, size_t M, size_t N,
                                 size_t K, float alpha, retcl_buffer x,
                                 retcl_buffer w, float beta, retcl_buffer y) {
  retcl_status st;
  if ((st = retcl__check_dim(ctx, OP, "M", M, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP, "N", N, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP, "K", K, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_buffer(ctx, OP, "x", x, retcl__mul(M, K))) ||
      (st = retcl__check_buffer(ctx, OP, "w", w, retcl__mul(N, K))) ||
      (st = retcl__check_buffer(ctx, OP, "y", y, retcl__mul(M, N))))
    return st;
  if (retcl__overlaps(y, M * N, x, M * K) || retcl__overlaps(y, M * N, w, N * K))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: y overlaps %s", OP,
                       retcl__overlaps(y, M * N, x, M * K) ? "x" : "w");
  if (!isfinite(alpha) || !isfinite(beta))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: %s = %g is not finite", OP,
                       isfinite(alpha) ? "beta" : "alpha",
                       (double)(isfinite(alpha) ? beta : alpha));
  return RETCL_SUCCESS;
}

retcl_status retcl_linear(retcl_context *ctx, size_t M, size_t N, size_t K,
                          float alpha, retcl_buffer x, retcl_buffer w,
                          float beta, retcl_buffer y,
                          cl_uint num_events_in_wait_list,
                          const cl_event *event_wait_list, cl_event *event) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if ((st = check_linear(ctx, M, N, K, alpha, x, w, beta, y)) ||
      (st = retcl__check_wait_list(ctx, OP, num_events_in_wait_list,
                                   event_wait_list)))
    return st;
  /* CLBlast takes no wait list: a marker makes the queue honour ours. */
  if (num_events_in_wait_list) {
    cl_int err = clEnqueueMarkerWithWaitList(
        ctx->queue, num_events_in_wait_list, event_wait_list, NULL);
    if (err != CL_SUCCESS)
      return retcl__cl_fail(ctx, "clEnqueueMarkerWithWaitList", err);
  }
  if ((st = retcl__gemm_xwt(ctx, M, N, K, alpha, x, w, beta, y))) return st;
  if (event) {
    cl_int err = clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, event);
    if (err != CL_SUCCESS)
      return retcl__cl_fail(ctx, "clEnqueueMarkerWithWaitList", err);
  }
  return RETCL_SUCCESS;
}
