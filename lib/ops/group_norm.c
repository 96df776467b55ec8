/* group_norm.c - retcl_group_norm_gate: per-head group norm fused with the
 * output gate (docs/design.md §1.5). The kernel is cl/group_norm.cl; this
 * file checks the call and plans the work organisation from the record:
 * group_norm.access (cpu: the row path, gpu: the group path),
 * group_norm.group_items (work-items per group on the group path: a row of
 * up to this many values is read in one sweep; more only adds reduction
 * steps for a memory-bound op) and group_norm.row_items (rows per group on
 * the row path: enough to amortise the group overhead, few enough that
 * small calls still spread over every core). */
#include "ops/group_norm.h"

#include "runtime/context.h"
#include "runtime/launch.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <math.h>

#define DEFAULT_EPS 1e-6f

/* How the kernel is launched: `lanes` work-items share a row (0: one
 * work-item per row), `local` work-items per group, `global` in all. */
typedef struct gn_launch {
  size_t global, local;
  cl_uint lanes;
} gn_launch;

static size_t pow2_floor(size_t x) {
  size_t p = 1;
  while (p <= x / 2) p *= 2;
  return p;
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* One work-item per row; enough groups for about four per compute unit. */
static gn_launch plan_row_path(const retcl_context *ctx, size_t limit,
                               size_t rows) {
  const size_t units = ctx->limits.compute_units;
  size_t local = rows / (4 * units);
  local = min_size(local, min_size(limit, (size_t)retcl__param(
                                              ctx, RETCL_P_GROUP_NORM_ROW_ITEMS)));
  local = pow2_floor(local ? local : 1);
  gn_launch l = {retcl__round_up(rows, local), local, 0};
  return l;
}

/* `lanes` work-items per row (a power of two no longer than the row, so no
 * lane is idle in the first sweep), as many rows per group as fit. */
static gn_launch plan_group_path(const retcl_context *ctx, size_t limit,
                                 size_t rows, size_t row_len) {
  size_t cap = min_size(
      limit, (size_t)retcl__param(ctx, RETCL_P_GROUP_NORM_GROUP_ITEMS));
  /* Half the local memory at most: the partial sums are one float each. */
  const size_t local_floats = retcl__local_mem_limit(ctx) / 2 / sizeof(float);
  if (local_floats) cap = min_size(cap, local_floats);
  cap = pow2_floor(cap ? cap : 1);
  const size_t lanes = min_size(cap, pow2_floor(row_len));
  size_t local = cap;
  /* Don't launch a wide group for a handful of short rows. */
  while (local / 2 >= lanes && local / 2 / lanes >= rows) local /= 2;
  const size_t rows_per_group = local / lanes;
  const size_t groups = (rows + rows_per_group - 1) / rows_per_group;
  gn_launch l = {groups * local, local, (cl_uint)lanes};
  return l;
}

/* The arguments the forward and the backward kernel take alike, from the
 * descriptor and the launch: one place, so that the backward recomputes
 * the statistics with exactly the forward's eps. */
typedef struct gn_common {
  retcl_strides s;
  cl_uint tokens, heads, row_len, lanes;
  cl_int head_major, kind, gate;
  cl_float eps;      /* desc->eps, or the default for 0 */
  size_t red_bytes;  /* the __local partial sums */
} gn_common;

static gn_common common_args(const retcl_group_norm_desc *desc,
                             const gn_launch *l) {
  gn_common c;
  c.s = retcl__strides(desc->layout, desc->tokens, desc->heads,
                       desc->head_dim);
  c.tokens = (cl_uint)desc->tokens;
  c.heads = (cl_uint)desc->heads;
  c.row_len = (cl_uint)desc->head_dim;
  c.lanes = l->lanes;
  c.head_major = desc->layout == RETCL_LAYOUT_HEAD_MAJOR;
  c.kind = (cl_int)desc->kind;
  c.gate = (cl_int)desc->gate;
  c.eps = desc->eps > 0.0f ? desc->eps : DEFAULT_EPS;
  /* One float per work-item on the group path; the row path needs none,
   * but a __local argument may not have size 0. */
  c.red_bytes = sizeof(cl_float) * (l->lanes ? l->local : 1);
  return c;
}

/* An absent weight or bias (no mem) is bound to x, valid memory the
 * kernels never read through it; returns has_w / has_b, the flag that
 * tells them so. */
static cl_int bind_absent(retcl_buffer x, retcl_buffer *buf) {
  if (buf->mem) return 1;
  *buf = retcl_buf(x.mem, 0);
  return 0;
}

retcl_status retcl__group_norm_check(retcl_context *ctx, const char *op,
                                     const retcl_group_norm_desc *desc) {
  if (desc->layout != RETCL_LAYOUT_TOKEN_MAJOR &&
      desc->layout != RETCL_LAYOUT_HEAD_MAJOR)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->layout = %d is not a retcl_layout", op,
                       (int)desc->layout);
  if (desc->kind != RETCL_NORM_RMS && desc->kind != RETCL_NORM_LAYER)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->kind = %d is not a retcl_norm_kind", op,
                       (int)desc->kind);
  if (desc->gate != RETCL_GATE_SWISH && desc->gate != RETCL_GATE_GELU &&
      desc->gate != RETCL_GATE_NONE)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->gate = %d is not a retcl_gate", op,
                       (int)desc->gate);
  retcl_status st;
  if ((st = retcl__check_dim(ctx, op, "desc->batch", desc->batch, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, op, "desc->tokens", desc->tokens, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, op, "desc->heads", desc->heads, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, op, "desc->head_dim", desc->head_dim, 1,
                             RETCL_MAX_INDEX)))
    return st;
  if (!(desc->eps >= 0.0f) || isinf(desc->eps))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: desc->eps = %g must be 0 (default 1e-6) or a "
                       "finite positive number",
                       op, (double)desc->eps);
  return RETCL_SUCCESS;
}

/* out may coincide with x exactly (in place) but overlap nothing else it
 * reads: the kernel would read values it has already overwritten. */
static retcl_status check_overlaps(retcl_context *ctx, const char *op,
                                   retcl_buffer x, retcl_buffer gate,
                                   int use_gate, retcl_buffer weight,
                                   retcl_buffer bias, retcl_buffer out,
                                   size_t elems, size_t channels) {
  const char *clash = NULL;
  if (retcl__overlaps(out, elems, x, elems) && out.offset != x.offset)
    clash = "x (only the exact same range is allowed)";
  else if (use_gate && retcl__overlaps(out, elems, gate, elems))
    clash = "gate";
  else if (retcl__overlaps(out, elems, weight, channels))
    clash = "weight";
  else if (retcl__overlaps(out, elems, bias, channels))
    clash = "bias";
  if (clash)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: out overlaps %s", op, clash);
  return RETCL_SUCCESS;
}

retcl_status retcl__group_norm_enqueue(retcl_context *ctx,
                                       const retcl_group_norm_desc *desc,
                                       retcl_buffer x, retcl_buffer gate,
                                       retcl_buffer weight, retcl_buffer bias,
                                       retcl_buffer out, cl_uint num_wait,
                                       const cl_event *wait, cl_event *event) {
  const size_t rows = desc->batch * desc->tokens * desc->heads;
  const size_t limit = retcl__group_limit(ctx, RETCL_KERNEL_GROUP_NORM_GATE);
  const gn_launch plan =
      retcl__cpu_access(ctx, RETCL_P_GROUP_NORM_ACCESS)
          ? plan_row_path(ctx, limit, rows)
          : plan_group_path(ctx, limit, rows, desc->head_dim);

  /* An absent gate is bound to x, like weight and bias (bind_absent). */
  if (desc->gate == RETCL_GATE_NONE) gate = x;
  /* weight and bias share one storage type (the public entry checks it):
   * the kernel variant of that type reads them. */
  const retcl_dtype wtype = weight.mem ? weight.type
                            : bias.mem ? bias.type
                                       : RETCL_DTYPE_F32;
  const cl_int has_w = bind_absent(x, &weight), has_b = bind_absent(x, &bias);
  const gn_common c = common_args(desc, &plan);
  const cl_uint x_off = (cl_uint)x.offset, g_off = (cl_uint)gate.offset;
  const cl_uint w_off = (cl_uint)weight.offset, b_off = (cl_uint)bias.offset;
  const cl_uint out_off = (cl_uint)out.offset;
  const cl_uint nrows = (cl_uint)rows;
  const retcl_karg args[] = {
      RETCL_KARG("x", x.mem),            RETCL_KARG("x_off", x_off),
      RETCL_KARG("g", gate.mem),         RETCL_KARG("g_off", g_off),
      RETCL_KARG("w", weight.mem),       RETCL_KARG("w_off", w_off),
      RETCL_KARG("bias", bias.mem),      RETCL_KARG("b_off", b_off),
      RETCL_KARG("out", out.mem),        RETCL_KARG("out_off", out_off),
      RETCL_KARG("stride_b", c.s.batch), RETCL_KARG("stride_t", c.s.token),
      RETCL_KARG("stride_h", c.s.head),  RETCL_KARG("tokens", c.tokens),
      RETCL_KARG("heads", c.heads),      RETCL_KARG("head_major", c.head_major),
      RETCL_KARG("rows", nrows),         RETCL_KARG("row_len", c.row_len),
      RETCL_KARG("kind", c.kind),        RETCL_KARG("gate", c.gate),
      RETCL_KARG("has_w", has_w),        RETCL_KARG("has_b", has_b),
      RETCL_KARG("eps", c.eps),          RETCL_KARG("lanes", c.lanes),
      RETCL_KLOCAL("part", c.red_bytes)};
  const retcl_grid grid = {1, {plan.global, 1, 1}, {plan.local, 1, 1}};
  return retcl__launch_typed(ctx, RETCL_KERNEL_GROUP_NORM_GATE, wtype, args,
                             RETCL_NARGS(args), &grid, num_wait, wait, event);
}

retcl_status retcl_group_norm_gate(retcl_context *ctx,
                                   const retcl_group_norm_desc *desc,
                                   retcl_buffer x, retcl_buffer gate,
                                   retcl_buffer weight, retcl_buffer bias,
                                   retcl_buffer out,
                                   cl_uint num_events_in_wait_list,
                                   const cl_event *event_wait_list,
                                   cl_event *event) {
  const char *op = "retcl_group_norm_gate";
  retcl_status st = retcl__check_ctx(ctx);
  if (st != RETCL_SUCCESS) return st;
  if (!desc)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: desc is NULL",
                       op);
  if ((st = retcl__group_norm_check(ctx, op, desc))) return st;
  const int use_gate = desc->gate != RETCL_GATE_NONE;
  const size_t rows =
      retcl__mul(retcl__mul(desc->batch, desc->tokens), desc->heads);
  const size_t elems = retcl__mul(rows, desc->head_dim);
  const size_t channels = retcl__mul(desc->heads, desc->head_dim);
  if ((st = retcl__check_buffer(ctx, op, "x", x, elems)) ||
      (use_gate && (st = retcl__check_buffer(ctx, op, "gate", gate, elems))) ||
      (st = retcl__check_optional_weight(ctx, op, "weight", weight,
                                         channels)) ||
      (st = retcl__check_optional_weight(ctx, op, "bias", bias, channels)) ||
      (st = retcl__check_buffer(ctx, op, "out", out, elems)) ||
      (st = retcl__check_wait_list(ctx, op, num_events_in_wait_list,
                                   event_wait_list)) ||
      (st = check_overlaps(ctx, op, x, gate, use_gate, weight, bias, out,
                           elems, channels)))
    return st;
  if (weight.mem && bias.mem && weight.type != bias.type)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: weight and bias have different storage types (%d "
                       "and %d); give both in one type",
                       op, (int)weight.type, (int)bias.type);
  if ((st = retcl__prepare_typed(
           ctx, RETCL_FAMILY_BIT(RETCL_FAMILY_GROUP_NORM),
           weight.mem ? weight.type : bias.mem ? bias.type : RETCL_DTYPE_F32)))
    return st;
  return retcl__group_norm_enqueue(ctx, desc, x, gate, weight, bias, out,
                                   num_events_in_wait_list, event_wait_list,
                                   event);
}

/* ==== backward ============================================================ */

#define OP_BWD "retcl_group_norm_gate_backward"

retcl_status retcl__group_norm_backward_plan(retcl_context *ctx,
                                             const char *op,
                                             const retcl_group_norm_desc *desc,
                                             int want_dw, int want_db,
                                             retcl_group_norm_grad_plan *plan) {
  retcl_status st = retcl__group_norm_check(ctx, op, desc);
  if (st) return st;
  const size_t positions = retcl__mul(desc->batch, desc->tokens);
  const size_t channels = retcl__mul(desc->heads, desc->head_dim);
  plan->want_dw = want_dw;
  plan->want_db = want_db;
  /* Without weight gradients every row is a segment of its own; with them
   * group_norm.grad_rows positions share one row of partial sums. */
  size_t rows = 1;
  if (want_dw || want_db) {
    rows = (size_t)retcl__param(ctx, RETCL_P_GROUP_NORM_GRAD_ROWS);
    if (rows > positions) rows = positions;
  }
  plan->slice_rows = rows;
  plan->slices = positions / rows + (positions % rows != 0);
  const size_t per = retcl__mul(plan->slices, channels);
  plan->workspace_floats =
      retcl__mul(per, (size_t)(want_dw != 0) + (size_t)(want_db != 0));
  /* The kernels index the partial sums with 32-bit integers. */
  if (plan->workspace_floats > RETCL_MAX_INDEX)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: the partial sums of d_weight and d_bias need %zu "
                       "floats, more than 32-bit indices reach; raise "
                       "group_norm.grad_rows (%zu)",
                       op, plan->workspace_floats, rows);
  return RETCL_SUCCESS;
}

/* Each output may coincide exactly with one input (dx with d_out, d_gate
 * with gate) and overlap nothing else. */
static retcl_status check_backward_overlaps(retcl_context *ctx,
                                            const retcl_buffer *buf,
                                            const size_t *elems) {
  /* The order of the public call's arguments. */
  static const char *const names[] = {"x",    "gate",  "weight",
                                      "bias", "d_out", "dx",
                                      "d_gate", "d_weight", "d_bias"};
  enum { X, GATE, W, B, DOUT, DX, DGATE, DW, DB, N };
  for (int o = DX; o < N; ++o)
    for (int i = 0; i < N; ++i) {
      if (i == o || (i > DX - 1 && i < o)) continue; /* each pair once */
      if (!retcl__overlaps(buf[o], elems[o], buf[i], elems[i])) continue;
      const int same = buf[o].offset == buf[i].offset;
      if (same && ((o == DX && i == DOUT) || (o == DGATE && i == GATE)))
        continue;
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: %s overlaps %s%s", OP_BWD, names[o], names[i],
                         (o == DX && i == DOUT) || (o == DGATE && i == GATE)
                             ? " (only the exact same range is allowed)"
                             : "");
    }
  return RETCL_SUCCESS;
}

retcl_status retcl__group_norm_backward_enqueue(
    retcl_context *ctx, const retcl_group_norm_desc *desc,
    const retcl_group_norm_grad_plan *plan, retcl_buffer x, retcl_buffer gate,
    retcl_buffer weight, retcl_buffer bias, retcl_buffer d_out,
    retcl_buffer dx, retcl_buffer d_gate, retcl_buffer d_weight,
    retcl_buffer d_bias, cl_mem workspace, cl_uint num_wait,
    const cl_event *wait, cl_event *event) {
  const size_t segments = plan->slices * desc->heads;
  const size_t channels = desc->heads * desc->head_dim;
  const int cpu = retcl__cpu_access(ctx, RETCL_P_GROUP_NORM_ACCESS);
  const size_t limit =
      retcl__group_limit(ctx, RETCL_KERNEL_GROUP_NORM_GATE_BACKWARD);
  const gn_launch l = cpu ? plan_row_path(ctx, limit, segments)
                          : plan_group_path(ctx, limit, segments,
                                            desc->head_dim);
  const int reduce = plan->want_dw || plan->want_db;

  /* An absent gate and d_gate are bound to x and dx, like weight and bias
   * (bind_absent): memory the kernel never touches through them. */
  if (desc->gate == RETCL_GATE_NONE) {
    gate = x;
    d_gate = dx;
  }
  const cl_int has_w = bind_absent(x, &weight), has_b = bind_absent(x, &bias);
  const gn_common c = common_args(desc, &l);
  const cl_mem part = reduce ? workspace : dx.mem;
  const cl_uint pw_off = 0;
  const cl_uint pb_off =
      plan->want_dw ? (cl_uint)(plan->slices * channels) : 0u;
  const cl_uint x_off = (cl_uint)x.offset, g_off = (cl_uint)gate.offset;
  const cl_uint w_off = (cl_uint)weight.offset, b_off = (cl_uint)bias.offset;
  const cl_uint dout_off = (cl_uint)d_out.offset, dx_off = (cl_uint)dx.offset;
  const cl_uint dg_off = (cl_uint)d_gate.offset;
  const cl_uint positions = (cl_uint)(desc->batch * desc->tokens);
  const cl_uint slice_rows = (cl_uint)plan->slice_rows;
  const cl_uint slices = (cl_uint)plan->slices;
  const cl_int want_dw = plan->want_dw != 0, want_db = plan->want_db != 0;
  const retcl_karg args[] = {
      RETCL_KARG("x", x.mem),              RETCL_KARG("x_off", x_off),
      RETCL_KARG("g", gate.mem),           RETCL_KARG("g_off", g_off),
      RETCL_KARG("w", weight.mem),         RETCL_KARG("w_off", w_off),
      RETCL_KARG("bias", bias.mem),        RETCL_KARG("b_off", b_off),
      RETCL_KARG("dout", d_out.mem),       RETCL_KARG("dout_off", dout_off),
      RETCL_KARG("dx", dx.mem),            RETCL_KARG("dx_off", dx_off),
      RETCL_KARG("dg", d_gate.mem),        RETCL_KARG("dg_off", dg_off),
      RETCL_KARG("part", part),            RETCL_KARG("pw_off", pw_off),
      RETCL_KARG("pb_off", pb_off),        RETCL_KARG("stride_b", c.s.batch),
      RETCL_KARG("stride_t", c.s.token),   RETCL_KARG("stride_h", c.s.head),
      RETCL_KARG("tokens", c.tokens),      RETCL_KARG("heads", c.heads),
      RETCL_KARG("head_major", c.head_major),
      RETCL_KARG("positions", positions),
      RETCL_KARG("slice_rows", slice_rows),
      RETCL_KARG("slices", slices),        RETCL_KARG("row_len", c.row_len),
      RETCL_KARG("kind", c.kind),          RETCL_KARG("gate", c.gate),
      RETCL_KARG("has_w", has_w),          RETCL_KARG("has_b", has_b),
      RETCL_KARG("want_dw", want_dw),      RETCL_KARG("want_db", want_db),
      RETCL_KARG("eps", c.eps),            RETCL_KARG("lanes", c.lanes),
      RETCL_KLOCAL("red", c.red_bytes)};
  const retcl_grid grid = {1, {l.global, 1, 1}, {l.local, 1, 1}};
  retcl_status st = retcl__launch(
      ctx, RETCL_KERNEL_GROUP_NORM_GATE_BACKWARD, args, RETCL_NARGS(args),
      &grid, num_wait, wait, reduce ? NULL : event);
  if (st || !reduce) return st;

  /* Second pass: the slices of each channel summed in order. cpu: about
   * four contiguous ranges of channels per compute unit; gpu: a channel
   * per work-item. */
  cl_uint per_item = 1;
  if (cpu) {
    const size_t items = 4 * (size_t)ctx->limits.compute_units;
    per_item = (cl_uint)((channels + items - 1) / items);
  }
  if (!want_dw) d_weight = retcl_buf(workspace, 0);
  if (!want_db) d_bias = retcl_buf(workspace, 0);
  const cl_uint dw_off = (cl_uint)d_weight.offset;
  const cl_uint db_off = (cl_uint)d_bias.offset;
  const cl_uint nchan = (cl_uint)channels;
  const retcl_karg rargs[] = {
      RETCL_KARG("part", workspace),     RETCL_KARG("pw_off", pw_off),
      RETCL_KARG("pb_off", pb_off),      RETCL_KARG("slices", slices),
      RETCL_KARG("channels", nchan),     RETCL_KARG("dw", d_weight.mem),
      RETCL_KARG("dw_off", dw_off),      RETCL_KARG("db", d_bias.mem),
      RETCL_KARG("db_off", db_off),      RETCL_KARG("want_dw", want_dw),
      RETCL_KARG("want_db", want_db),    RETCL_KARG("per_item", per_item)};
  const retcl_grid rgrid =
      retcl__grid(cpu, 1, (channels + per_item - 1) / per_item, 1, 1);
  return retcl__launch(ctx, RETCL_KERNEL_GROUP_NORM_GRAD_REDUCE, rargs,
                       RETCL_NARGS(rargs), &rgrid, 0, NULL, event);
}

retcl_status retcl_group_norm_gate_backward(
    retcl_context *ctx, const retcl_group_norm_desc *desc, retcl_buffer x,
    retcl_buffer gate, retcl_buffer weight, retcl_buffer bias,
    retcl_buffer d_out, retcl_buffer dx, retcl_buffer d_gate,
    retcl_buffer d_weight, retcl_buffer d_bias,
    cl_uint num_events_in_wait_list, const cl_event *event_wait_list,
    cl_event *event) {
  const char *op = OP_BWD;
  retcl_status st = retcl__check_ctx(ctx);
  if (st != RETCL_SUCCESS) return st;
  if (!desc)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: desc is NULL",
                       op);
  retcl_group_norm_grad_plan plan;
  if ((st = retcl__group_norm_backward_plan(ctx, op, desc,
                                            d_weight.mem != NULL,
                                            d_bias.mem != NULL, &plan)))
    return st;
  const int use_gate = desc->gate != RETCL_GATE_NONE;
  const size_t elems = retcl__mul(
      retcl__mul(retcl__mul(desc->batch, desc->tokens), desc->heads),
      desc->head_dim);
  const size_t channels = retcl__mul(desc->heads, desc->head_dim);
  if (d_weight.mem && !weight.mem)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: d_weight is given but weight is not (the forward "
                       "had no weight)",
                       op);
  if (d_bias.mem && !bias.mem)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: d_bias is given but bias is not (the forward had "
                       "no bias)",
                       op);
  if ((st = retcl__check_buffer(ctx, op, "x", x, elems)) ||
      (use_gate && (st = retcl__check_buffer(ctx, op, "gate", gate, elems))) ||
      (st = retcl__check_optional_buffer(ctx, op, "weight", weight,
                                         channels)) ||
      (st = retcl__check_optional_buffer(ctx, op, "bias", bias, channels)) ||
      (st = retcl__check_buffer(ctx, op, "d_out", d_out, elems)) ||
      (st = retcl__check_buffer(ctx, op, "dx", dx, elems)) ||
      (use_gate &&
       (st = retcl__check_buffer(ctx, op, "d_gate", d_gate, elems))) ||
      (st = retcl__check_optional_buffer(ctx, op, "d_weight", d_weight,
                                         channels)) ||
      (st = retcl__check_optional_buffer(ctx, op, "d_bias", d_bias,
                                         channels)) ||
      (st = retcl__check_wait_list(ctx, op, num_events_in_wait_list,
                                   event_wait_list)))
    return st;
  if (!use_gate) gate = d_gate = retcl_no_buf();
  const retcl_buffer bufs[] = {x, gate, weight, bias, d_out,
                               dx, d_gate, d_weight, d_bias};
  const size_t sizes[] = {elems, elems, channels, channels, elems,
                          elems, elems, channels, channels};
  cl_mem ws = NULL;
  if ((st = check_backward_overlaps(ctx, bufs, sizes)) ||
      (st = retcl__prepare(ctx, RETCL_FAMILY_BIT(RETCL_FAMILY_GROUP_NORM))) ||
      (plan.workspace_floats &&
       (st = retcl__workspace(ctx, RETCL_WORKSPACE_NORM_GRAD,
                              plan.workspace_floats * sizeof(float), &ws))))
    return st;
  return retcl__group_norm_backward_enqueue(
      ctx, desc, &plan, x, gate, weight, bias, d_out, dx, d_gate, d_weight,
      d_bias, ws, num_events_in_wait_list, event_wait_list, event);
}
