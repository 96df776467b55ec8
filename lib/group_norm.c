/* group_norm.c - retcl_group_norm_gate: per-head group norm fused with the
 * output gate (DESIGN 1.5). The kernel is cl/group_norm.cl; this file
 * validates the call and picks the work organisation for the device. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_EPS 1e-6f
/* Work-items per group on GPUs: a row of up to this many values is read in
 * one sweep; more only adds reduction steps for a memory-bound op. */
#define GROUP_PATH_MAX_ITEMS 256
/* Rows per work-group on CPUs: enough to amortise the group overhead, few
 * enough that small calls still spread over every core. */
#define ROW_PATH_MAX_ITEMS 64

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

/* The most work-items one group of this kernel may have on this device: the
 * kernel's own limit (registers) and the device's, whichever is lower. */
static size_t group_limit(retcl_context *ctx, cl_kernel k) {
  size_t limit = ctx->traits.max_work_group;
  size_t kernel_limit = 0;
  if (clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                               sizeof kernel_limit, &kernel_limit,
                               NULL) == CL_SUCCESS &&
      kernel_limit > 0)
    limit = min_size(limit, kernel_limit);
  size_t item_sizes[16] = {0};
  if (clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_WORK_ITEM_SIZES,
                      sizeof item_sizes, item_sizes, NULL) == CL_SUCCESS &&
      item_sizes[0] > 0)
    limit = min_size(limit, item_sizes[0]);
  return limit ? limit : 1;
}

/* Which organisation to use: "group" on GPUs, "row" on CPUs (see the
 * kernel's header). RETCL_GROUP_NORM_PATH=row|group overrides it, so the
 * tests can run the GPU code on PoCL and benchmarks can compare both. */
static int use_group_path(const retcl_context *ctx) {
  const char *env = getenv("RETCL_GROUP_NORM_PATH");
  if (env && strcmp(env, "group") == 0) return 1;
  if (env && strcmp(env, "row") == 0) return 0;
  return !ctx->traits.is_cpu;
}

/* One work-item per row; enough groups for about four per compute unit. */
static gn_launch plan_row_path(const retcl_context *ctx, size_t limit,
                               size_t rows) {
  const size_t units = ctx->traits.compute_units ? ctx->traits.compute_units : 1;
  size_t local = rows / (4 * units);
  local = min_size(local, min_size(limit, ROW_PATH_MAX_ITEMS));
  local = pow2_floor(local ? local : 1);
  gn_launch l = {retcl__round_up(rows, local), local, 0};
  return l;
}

/* `lanes` work-items per row (a power of two no longer than the row, so no
 * lane is idle in the first sweep), as many rows per group as fit. */
static gn_launch plan_group_path(const retcl_context *ctx, size_t limit,
                                 size_t rows, size_t row_len) {
  size_t cap = min_size(limit, GROUP_PATH_MAX_ITEMS);
  /* Half the local memory at most: the partial sums are one float each. */
  const size_t local_floats = ctx->traits.local_mem_bytes / 2 / sizeof(float);
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

static retcl_status check_desc(retcl_context *ctx, const char *op,
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
  if ((st = check_desc(ctx, op, desc))) return st;
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
                           elems, channels)))
    return st;

  cl_kernel k;
  if ((st = retcl__kernel(ctx, RETCL_KERNEL_GROUP_NORM_GATE, &k))) return st;
  const size_t limit = group_limit(ctx, k);
  const gn_launch plan =
      use_group_path(ctx) ? plan_group_path(ctx, limit, rows, desc->head_dim)
                          : plan_row_path(ctx, limit, rows);

  /* Absent inputs are bound to x, which is valid memory that the kernel
   * never reads through them (flags below say so). */
  if (!use_gate) gate = x;
  const cl_int has_w = weight.mem != NULL, has_b = bias.mem != NULL;
  if (!has_w) weight = retcl_buf(x.mem, 0);
  if (!has_b) bias = retcl_buf(x.mem, 0);
  retcl_strides s = retcl__strides(desc->layout, desc->tokens, desc->heads,
                                   desc->head_dim);
  cl_uint x_off = (cl_uint)x.offset, g_off = (cl_uint)gate.offset;
  cl_uint w_off = (cl_uint)weight.offset, b_off = (cl_uint)bias.offset;
  cl_uint out_off = (cl_uint)out.offset;
  cl_uint tokens = (cl_uint)desc->tokens, heads = (cl_uint)desc->heads;
  cl_int head_major = desc->layout == RETCL_LAYOUT_HEAD_MAJOR;
  cl_uint nrows = (cl_uint)rows, row_len = (cl_uint)desc->head_dim;
  cl_int kind = (cl_int)desc->kind, gate_kind = (cl_int)desc->gate;
  cl_float eps = desc->eps > 0.0f ? desc->eps : DEFAULT_EPS;
  cl_uint lanes = plan.lanes;
  RETCL_ARG(ctx, k, 0, x.mem);
  RETCL_ARG(ctx, k, 1, x_off);
  RETCL_ARG(ctx, k, 2, gate.mem);
  RETCL_ARG(ctx, k, 3, g_off);
  RETCL_ARG(ctx, k, 4, weight.mem);
  RETCL_ARG(ctx, k, 5, w_off);
  RETCL_ARG(ctx, k, 6, bias.mem);
  RETCL_ARG(ctx, k, 7, b_off);
  RETCL_ARG(ctx, k, 8, out.mem);
  RETCL_ARG(ctx, k, 9, out_off);
  RETCL_ARG(ctx, k, 10, s.batch);
  RETCL_ARG(ctx, k, 11, s.token);
  RETCL_ARG(ctx, k, 12, s.head);
  RETCL_ARG(ctx, k, 13, tokens);
  RETCL_ARG(ctx, k, 14, heads);
  RETCL_ARG(ctx, k, 15, head_major);
  RETCL_ARG(ctx, k, 16, nrows);
  RETCL_ARG(ctx, k, 17, row_len);
  RETCL_ARG(ctx, k, 18, kind);
  RETCL_ARG(ctx, k, 19, gate_kind);
  RETCL_ARG(ctx, k, 20, has_w);
  RETCL_ARG(ctx, k, 21, has_b);
  RETCL_ARG(ctx, k, 22, eps);
  RETCL_ARG(ctx, k, 23, lanes);
  /* Local partial sums: one float per work-item on the group path; the row
   * path needs none, but a __local argument may not have size 0. */
  const size_t part_bytes = sizeof(cl_float) * (plan.lanes ? plan.local : 1);
  cl_int err = clSetKernelArg(k, 24, part_bytes, NULL);
  if (err != CL_SUCCESS) return retcl__cl_fail(ctx, "clSetKernelArg(part)", err);
  err = clEnqueueNDRangeKernel(ctx->queue, k, 1, NULL, &plan.global,
                               &plan.local, num_events_in_wait_list,
                               event_wait_list, event);
  if (err != CL_SUCCESS) return retcl__cl_fail(ctx, "clEnqueueNDRangeKernel", err);
  return RETCL_SUCCESS;
}
