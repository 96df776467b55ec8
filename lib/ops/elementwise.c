/* elementwise.c - launches of the model's elementwise kernels
 * (cl/elementwise.cl). With the cpu access pattern each work-item takes
 * elementwise.per_item consecutive elements; with gpu one element each
 * (neighbouring items, neighbouring addresses). */
#include "ops/elementwise.h"

#include "runtime/context.h"
#include "runtime/launch.h"

/* Elements per work-item, and the grid for n elements. */
static cl_uint per_item(const retcl_context *ctx) {
  return retcl__cpu_access(ctx, RETCL_P_ELEMENTWISE_ACCESS)
             ? (cl_uint)retcl__param(ctx, RETCL_P_ELEMENTWISE_PER_ITEM)
             : 1u;
}

static retcl_status launch(retcl_context *ctx, retcl_kernel_id id,
                           const retcl_karg *args, size_t nargs, size_t n,
                           cl_uint per) {
  const size_t items = (n + per - 1) / per;
  if (items == 0) return RETCL_SUCCESS;
  const retcl_grid grid = retcl__grid(
      retcl__cpu_access(ctx, RETCL_P_ELEMENTWISE_ACCESS), 1, items, 1, 1);
  return retcl__launch(ctx, id, args, nargs, &grid, 0, NULL, NULL);
}

retcl_status retcl__embed(retcl_context *ctx, cl_mem tokens, size_t rows,
                          retcl_buffer table, size_t width, float scale,
                          retcl_buffer out) {
  const cl_uint table_off = (cl_uint)table.offset,
                out_off = (cl_uint)out.offset, rows_u = (cl_uint)rows,
                width_u = (cl_uint)width, per = per_item(ctx);
  const retcl_karg args[] = {
      RETCL_KARG("tokens", tokens),       RETCL_KARG("table", table.mem),
      RETCL_KARG("table_off", table_off), RETCL_KARG("out", out.mem),
      RETCL_KARG("out_off", out_off),     RETCL_KARG("rows", rows_u),
      RETCL_KARG("width", width_u),       RETCL_KARG("scale", scale),
      RETCL_KARG("per_item", per)};
  return launch(ctx, RETCL_KERNEL_EMBED, args, RETCL_NARGS(args), rows * width,
                per);
}

retcl_status retcl__residual(retcl_context *ctx, size_t n, float alpha,
                             retcl_buffer x, retcl_buffer y) {
  const cl_uint x_off = (cl_uint)x.offset, y_off = (cl_uint)y.offset,
                n_u = (cl_uint)n, per = per_item(ctx);
  const retcl_karg args[] = {
      RETCL_KARG("x", x.mem),   RETCL_KARG("x_off", x_off),
      RETCL_KARG("y", y.mem),   RETCL_KARG("y_off", y_off),
      RETCL_KARG("n", n_u),     RETCL_KARG("alpha", alpha),
      RETCL_KARG("per_item", per)};
  return launch(ctx, RETCL_KERNEL_RESIDUAL, args, RETCL_NARGS(args), n, per);
}

retcl_status retcl__glu(retcl_context *ctx, size_t n, retcl_activation act,
                        retcl_buffer a, retcl_buffer g) {
  const cl_uint a_off = (cl_uint)a.offset, g_off = (cl_uint)g.offset,
                n_u = (cl_uint)n, per = per_item(ctx);
  const cl_int act_i = act == RETCL_ACT_SWISH;
  const retcl_karg args[] = {
      RETCL_KARG("a", a.mem),   RETCL_KARG("a_off", a_off),
      RETCL_KARG("g", g.mem),   RETCL_KARG("g_off", g_off),
      RETCL_KARG("n", n_u),     RETCL_KARG("act", act_i),
      RETCL_KARG("per_item", per)};
  return launch(ctx, RETCL_KERNEL_GLU, args, RETCL_NARGS(args), n, per);
}
