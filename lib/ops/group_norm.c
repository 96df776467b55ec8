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

  /* Absent inputs are bound to x, which is valid memory that the kernel
   * never reads through them (flags below say so). */
  if (desc->gate == RETCL_GATE_NONE) gate = x;
  const cl_int has_w = weight.mem != NULL, has_b = bias.mem != NULL;
  if (!has_w) weight = retcl_buf(x.mem, 0);
  if (!has_b) bias = retcl_buf(x.mem, 0);
  const retcl_strides s = retcl__strides(desc->layout, desc->tokens,
                                         desc->heads, desc->head_dim);
  const cl_uint x_off = (cl_uint)x.offset, g_off = (cl_uint)gate.offset;
  const cl_uint w_off = (cl_uint)weight.offset, b_off = (cl_uint)bias.offset;
  const cl_uint out_off = (cl_uint)out.offset;
  const cl_uint tokens = (cl_uint)desc->tokens, heads = (cl_uint)desc->heads;
  const cl_int head_major = desc->layout == RETCL_LAYOUT_HEAD_MAJOR;
  const cl_uint nrows = (cl_uint)rows, row_len = (cl_uint)desc->head_dim;
  const cl_int kind = (cl_int)desc->kind, gate_kind = (cl_int)desc->gate;
  const cl_float eps = desc->eps > 0.0f ? desc->eps : DEFAULT_EPS;
  const cl_uint lanes = plan.lanes;
  /* Local partial sums: one float per work-item on the group path; the row
   * path needs none, but a __local argument may not have size 0. */
  const size_t part_bytes = sizeof(cl_float) * (plan.lanes ? plan.local : 1);
  const retcl_karg args[] = {
      RETCL_KARG("x", x.mem),        RETCL_KARG("x_off", x_off),
      RETCL_KARG("g", gate.mem),     RETCL_KARG("g_off", g_off),
      RETCL_KARG("w", weight.mem),   RETCL_KARG("w_off", w_off),
      RETCL_KARG("bias", bias.mem),  RETCL_KARG("b_off", b_off),
      RETCL_KARG("out", out.mem),    RETCL_KARG("out_off", out_off),
      RETCL_KARG("stride_b", s.batch), RETCL_KARG("stride_t", s.token),
      RETCL_KARG("stride_h", s.head), RETCL_KARG("tokens", tokens),
      RETCL_KARG("heads", heads),    RETCL_KARG("head_major", head_major),
      RETCL_KARG("rows", nrows),     RETCL_KARG("row_len", row_len),
      RETCL_KARG("kind", kind),      RETCL_KARG("gate", gate_kind),
      RETCL_KARG("has_w", has_w),    RETCL_KARG("has_b", has_b),
      RETCL_KARG("eps", eps),        RETCL_KARG("lanes", lanes),
      RETCL_KLOCAL("part", part_bytes)};
  const retcl_grid grid = {1, {plan.global, 1, 1}, {plan.local, 1, 1}};
  return retcl__launch(ctx, RETCL_KERNEL_GROUP_NORM_GATE, args,
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
      (st = retcl__check_optional_buffer(ctx, op, "weight", weight,
                                         channels)) ||
      (st = retcl__check_optional_buffer(ctx, op, "bias", bias, channels)) ||
      (st = retcl__check_buffer(ctx, op, "out", out, elems)) ||
      (st = retcl__check_wait_list(ctx, op, num_events_in_wait_list,
                                   event_wait_list)) ||
      (st = check_overlaps(ctx, op, x, gate, use_gate, weight, bias, out,
                           elems, channels)) ||
      (st = retcl__prepare(ctx, RETCL_FAMILY_BIT(RETCL_FAMILY_GROUP_NORM))))
    return st;
  return retcl__group_norm_enqueue(ctx, desc, x, gate, weight, bias, out,
                                   num_events_in_wait_list, event_wait_list,
                                   event);
}
