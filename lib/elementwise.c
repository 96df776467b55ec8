/* elementwise.c - launches of the model's elementwise kernels (cl/model.cl).
 * Internal: callers have validated sizes and buffers. */
#include "internal.h"

/* CPUs get contiguous ranges per work-item; GPUs one element each. */
static cl_uint per_item(const retcl_context *ctx) {
  return ctx->traits.is_cpu ? 256u : 1u;
}

static retcl_status launch(retcl_context *ctx, cl_kernel k, size_t n,
                           cl_uint per) {
  size_t global = (n + per - 1) / per;
  if (global == 0) return RETCL_SUCCESS;
  /* CPUs: one item per work-group, or PoCL may pack all items into one
   * group and leave the other cores idle. */
  size_t one = 1;
  cl_int err = clEnqueueNDRangeKernel(ctx->queue, k, 1, NULL, &global,
                                      ctx->traits.is_cpu ? &one : NULL, 0,
                                      NULL, NULL);
  return err == CL_SUCCESS ? RETCL_SUCCESS
                           : retcl__cl_fail(ctx, "clEnqueueNDRangeKernel", err);
}

retcl_status retcl__embed(retcl_context *ctx, cl_mem tokens, size_t rows,
                          retcl_buffer table, size_t width, float scale,
                          retcl_buffer out) {
  cl_kernel k;
  retcl_status st = retcl__kernel(ctx, RETCL_KERNEL_EMBED, &k);
  if (st) return st;
  cl_uint table_off = (cl_uint)table.offset, out_off = (cl_uint)out.offset,
          rows_u = (cl_uint)rows, width_u = (cl_uint)width, per = per_item(ctx);
  RETCL_ARG(ctx, k, 0, tokens);
  RETCL_ARG(ctx, k, 1, table.mem);
  RETCL_ARG(ctx, k, 2, table_off);
  RETCL_ARG(ctx, k, 3, out.mem);
  RETCL_ARG(ctx, k, 4, out_off);
  RETCL_ARG(ctx, k, 5, rows_u);
  RETCL_ARG(ctx, k, 6, width_u);
  RETCL_ARG(ctx, k, 7, scale);
  RETCL_ARG(ctx, k, 8, per);
  return launch(ctx, k, rows * width, per);
}

retcl_status retcl__residual(retcl_context *ctx, size_t n, float alpha,
                             retcl_buffer x, retcl_buffer y) {
  cl_kernel k;
  retcl_status st = retcl__kernel(ctx, RETCL_KERNEL_RESIDUAL, &k);
  if (st) return st;
  cl_uint x_off = (cl_uint)x.offset, y_off = (cl_uint)y.offset,
          n_u = (cl_uint)n, per = per_item(ctx);
  RETCL_ARG(ctx, k, 0, x.mem);
  RETCL_ARG(ctx, k, 1, x_off);
  RETCL_ARG(ctx, k, 2, y.mem);
  RETCL_ARG(ctx, k, 3, y_off);
  RETCL_ARG(ctx, k, 4, n_u);
  RETCL_ARG(ctx, k, 5, alpha);
  RETCL_ARG(ctx, k, 6, per);
  return launch(ctx, k, n, per);
}

retcl_status retcl__glu(retcl_context *ctx, size_t n, retcl_activation act,
                        retcl_buffer a, retcl_buffer g) {
  cl_kernel k;
  retcl_status st = retcl__kernel(ctx, RETCL_KERNEL_GLU, &k);
  if (st) return st;
  cl_uint a_off = (cl_uint)a.offset, g_off = (cl_uint)g.offset,
          n_u = (cl_uint)n, per = per_item(ctx);
  cl_int act_i = act == RETCL_ACT_SWISH;
  RETCL_ARG(ctx, k, 0, a.mem);
  RETCL_ARG(ctx, k, 1, a_off);
  RETCL_ARG(ctx, k, 2, g.mem);
  RETCL_ARG(ctx, k, 3, g_off);
  RETCL_ARG(ctx, k, 4, n_u);
  RETCL_ARG(ctx, k, 5, act_i);
  RETCL_ARG(ctx, k, 6, per);
  return launch(ctx, k, n, per);
}
