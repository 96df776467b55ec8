/* elementwise.c - launches of the model's elementwise kernels
 * (cl/elementwise.cl), and the public GLU backward (retcl_glu_backward:
 * checks, then one launch). With the cpu access pattern each work-item takes
 * elementwise.per_item consecutive elements; with gpu one element each
 * (neighbouring items, neighbouring addresses). */
#include "ops/elementwise.h"

#include "runtime/context.h"
#include "runtime/launch.h"
#include "runtime/status.h"
#include "runtime/validate.h"

/* Elements per work-item, and the grid for n elements. */
static cl_uint per_item(const retcl_context *ctx) {
  return retcl__cpu_access(ctx, RETCL_P_ELEMENTWISE_ACCESS)
             ? (cl_uint)retcl__param(ctx, RETCL_P_ELEMENTWISE_PER_ITEM)
             : 1u;
}

static retcl_status launch_typed(retcl_context *ctx, retcl_kernel_id id,
                                 retcl_dtype wtype, const retcl_karg *args,
                                 size_t nargs, size_t n, cl_uint per,
                                 cl_uint num_wait, const cl_event *wait,
                                 cl_event *event) {
  const size_t items = (n + per - 1) / per;
  if (items == 0) return RETCL_SUCCESS;
  const retcl_grid grid = retcl__grid(
      retcl__cpu_access(ctx, RETCL_P_ELEMENTWISE_ACCESS), 1, items, 1, 1);
  return retcl__launch_typed(ctx, id, wtype, args, nargs, &grid, num_wait,
                             wait, event);
}

static retcl_status launch_after(retcl_context *ctx, retcl_kernel_id id,
                                 const retcl_karg *args, size_t nargs,
                                 size_t n, cl_uint per, cl_uint num_wait,
                                 const cl_event *wait, cl_event *event) {
  return launch_typed(ctx, id, RETCL_DTYPE_F32, args, nargs, n, per, num_wait,
                      wait, event);
}

static retcl_status launch(retcl_context *ctx, retcl_kernel_id id,
                           const retcl_karg *args, size_t nargs, size_t n,
                           cl_uint per) {
  return launch_after(ctx, id, args, nargs, n, per, 0, NULL, NULL);
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
  /* The table is a weight: the variant of its storage type reads it. */
  return launch_typed(ctx, RETCL_KERNEL_EMBED, table.type, args,
                      RETCL_NARGS(args), rows * width, per, 0, NULL, NULL);
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

/* ---- GLU backward (docs/design.md §1.7) ------------------------------------ */

static const char *const OP_GLU_BACKWARD = "retcl_glu_backward";

retcl_status retcl__glu_backward_check(retcl_context *ctx, const char *op,
                                       size_t n, retcl_activation act) {
  if (act != RETCL_ACT_GELU && act != RETCL_ACT_SWISH)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: act = %d is not a retcl_activation", op, (int)act);
  return retcl__check_dim(ctx, op, "n", n, 1, RETCL_MAX_INDEX);
}

retcl_status retcl__glu_backward_enqueue(retcl_context *ctx, size_t n,
                                         retcl_activation act, retcl_buffer a,
                                         retcl_buffer g, retcl_buffer d_h,
                                         retcl_buffer d_a, retcl_buffer d_g,
                                         cl_uint num_wait, const cl_event *wait,
                                         cl_event *event) {
  const cl_uint a_off = (cl_uint)a.offset, g_off = (cl_uint)g.offset,
                dh_off = (cl_uint)d_h.offset, da_off = (cl_uint)d_a.offset,
                dg_off = (cl_uint)d_g.offset, n_u = (cl_uint)n,
                per = per_item(ctx);
  const cl_int act_i = act == RETCL_ACT_SWISH;
  const retcl_karg args[] = {
      RETCL_KARG("a", a.mem),       RETCL_KARG("a_off", a_off),
      RETCL_KARG("g", g.mem),       RETCL_KARG("g_off", g_off),
      RETCL_KARG("d_h", d_h.mem),   RETCL_KARG("dh_off", dh_off),
      RETCL_KARG("d_a", d_a.mem),   RETCL_KARG("da_off", da_off),
      RETCL_KARG("d_g", d_g.mem),   RETCL_KARG("dg_off", dg_off),
      RETCL_KARG("n", n_u),         RETCL_KARG("act", act_i),
      RETCL_KARG("per_item", per)};
  return launch_after(ctx, RETCL_KERNEL_GLU_BACKWARD, args, RETCL_NARGS(args),
                      n, per, num_wait, wait, event);
}

/* Each output either is one of the inputs exactly (same buffer and offset:
 * the kernel reads an element's inputs before writing its outputs) or
 * shares no float with it; the two outputs share none. */
static retcl_status check_glu_overlaps(retcl_context *ctx, size_t n,
                                       retcl_buffer a, retcl_buffer g,
                                       retcl_buffer d_h, retcl_buffer d_a,
                                       retcl_buffer d_g) {
  const retcl_buffer in[] = {a, g, d_h};
  static const char *const in_name[] = {"a", "g", "d_h"};
  const retcl_buffer out[] = {d_a, d_g};
  static const char *const out_name[] = {"d_a", "d_g"};
  for (int o = 0; o < 2; ++o)
    for (int i = 0; i < 3; ++i)
      if (retcl__overlaps(out[o], n, in[i], n) &&
          out[o].offset != in[i].offset)
        return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                           "%s: %s overlaps %s (only the exact same range is "
                           "allowed)",
                           OP_GLU_BACKWARD, out_name[o], in_name[i]);
  if (retcl__overlaps(d_a, n, d_g, n))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: d_a overlaps d_g", OP_GLU_BACKWARD);
  return RETCL_SUCCESS;
}

retcl_status retcl_glu_backward(retcl_context *ctx, size_t n,
                                retcl_activation act, retcl_buffer a,
                                retcl_buffer g, retcl_buffer d_h,
                                retcl_buffer d_a, retcl_buffer d_g,
                                cl_uint num_events_in_wait_list,
                                const cl_event *event_wait_list,
                                cl_event *event) {
  const char *op = OP_GLU_BACKWARD;
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if ((st = retcl__glu_backward_check(ctx, op, n, act)) ||
      (st = retcl__check_buffer(ctx, op, "a", a, n)) ||
      (st = retcl__check_buffer(ctx, op, "g", g, n)) ||
      (st = retcl__check_buffer(ctx, op, "d_h", d_h, n)) ||
      (st = retcl__check_buffer(ctx, op, "d_a", d_a, n)) ||
      (st = retcl__check_buffer(ctx, op, "d_g", d_g, n)) ||
      (st = retcl__check_wait_list(ctx, op, num_events_in_wait_list,
                                   event_wait_list)) ||
      (st = check_glu_overlaps(ctx, n, a, g, d_h, d_a, d_g)) ||
      (st = retcl__prepare(ctx, RETCL_FAMILY_BIT(RETCL_FAMILY_ELEMENTWISE))))
    return st;
  return retcl__glu_backward_enqueue(ctx, n, act, a, g, d_h, d_a, d_g,
                                     num_events_in_wait_list, event_wait_list,
                                     event);
}
