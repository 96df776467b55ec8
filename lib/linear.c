/* linear.c - retcl_linear and retcl_linear_many: the public face of the
 * dense projections (gemm.c), with the checks and event handling every
 * public op has. */
#include "internal.h"

#include <math.h>
#include <stdio.h>

static const char *OP = "retcl_linear";
static const char *OP_MANY = "retcl_linear_many";

static retcl_status check_scalar(retcl_context *ctx, const char *op,
                                 const char *name, float value) {
  if (!isfinite(value))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: %s = %g is not finite", op, name, (double)value);
  return RETCL_SUCCESS;
}

static retcl_status check_linear(retcl_context *ctx, size_t M, size_t N,
                                 size_t K, float alpha, retcl_buffer x,
                                 retcl_buffer w, float beta, retcl_buffer y) {
  retcl_status st;
  if ((st = retcl__check_dim(ctx, OP, "M", M, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP, "N", N, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP, "K", K, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_buffer(ctx, OP, "x", x, retcl__mul(M, K))) ||
      (st = retcl__check_buffer(ctx, OP, "w", w, retcl__mul(N, K))) ||
      (st = retcl__check_buffer(ctx, OP, "y", y, retcl__mul(M, N))) ||
      (st = check_scalar(ctx, OP, "alpha", alpha)) ||
      (st = check_scalar(ctx, OP, "beta", beta)))
    return st;
  const char *hit = retcl__overlaps(y, M * N, x, M * K)   ? "x"
                    : retcl__overlaps(y, M * N, w, N * K) ? "w"
                                                          : NULL;
  if (hit)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: y overlaps %s",
                       OP, hit);
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
                                   event_wait_list)) ||
      (st = retcl__wait_for(ctx, num_events_in_wait_list, event_wait_list)) ||
      (st = retcl__gemm_xwt(ctx, M, N, K, alpha, x, w, beta, y)))
    return st;
  return retcl__signal_done(ctx, event);
}

/* Projection i against x and the others: sizes, buffers, no overlaps. */
static retcl_status check_projection(retcl_context *ctx, size_t M, size_t K,
                                     retcl_buffer x, size_t count,
                                     const retcl_projection *proj, size_t i) {
  const retcl_projection *p = &proj[i];
  char n_name[48], w_name[48], y_name[48], a_name[48];
  snprintf(n_name, sizeof n_name, "proj[%zu].n", i);
  snprintf(w_name, sizeof w_name, "proj[%zu].w", i);
  snprintf(y_name, sizeof y_name, "proj[%zu].y", i);
  snprintf(a_name, sizeof a_name, "proj[%zu].alpha", i);
  retcl_status st;
  if ((st = retcl__check_dim(ctx, OP_MANY, n_name, p->n, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_buffer(ctx, OP_MANY, w_name, p->w,
                                retcl__mul(p->n, K))) ||
      (st = retcl__check_buffer(ctx, OP_MANY, y_name, p->y,
                                retcl__mul(M, p->n))) ||
      (st = check_scalar(ctx, OP_MANY, a_name, p->alpha)))
    return st;
  const size_t y_elems = M * p->n;
  if (retcl__overlaps(p->y, y_elems, x, M * K))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: %s overlaps x", OP_MANY, y_name);
  for (size_t j = 0; j < count; ++j) {
    const retcl_projection *q = &proj[j];
    const int hits_w = retcl__overlaps(p->y, y_elems, q->w, q->n * K);
    if (hits_w || (j != i && retcl__overlaps(p->y, y_elems, q->y, M * q->n)))
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: %s overlaps proj[%zu].%c", OP_MANY, y_name, j,
                         hits_w ? 'w' : 'y');
  }
  return RETCL_SUCCESS;
}

retcl_status retcl_linear_many(retcl_context *ctx, size_t M, size_t K,
                               retcl_buffer x, size_t count,
                               const retcl_projection *proj,
                               cl_uint num_events_in_wait_list,
                               const cl_event *event_wait_list,
                               cl_event *event) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if (!proj || !count)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: %s", OP_MANY,
                       !proj ? "proj is NULL" : "count is 0");
  if ((st = retcl__check_dim(ctx, OP_MANY, "M", M, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP_MANY, "K", K, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_buffer(ctx, OP_MANY, "x", x, retcl__mul(M, K))))
    return st;
  for (size_t i = 0; i < count; ++i)
    if ((st = check_projection(ctx, M, K, x, count, proj, i))) return st;
  if ((st = retcl__check_wait_list(ctx, OP_MANY, num_events_in_wait_list,
                                   event_wait_list)) ||
      (st = retcl__wait_for(ctx, num_events_in_wait_list, event_wait_list)) ||
      (st = retcl__gemm_many(ctx, M, K, x, count, proj)))
    return st;
  return retcl__signal_done(ctx, event);
}
