/* loss.c - retcl_cross_entropy: mean cross-entropy over the vocabulary
 * with an ignore index, and its gradient (docs/design.md §1.7). Two
 * launches (cl/loss.cl): every row's loss (and gradient) into a workspace,
 * then their mean summed in a fixed order by one work-group. The targets
 * are a host array, checked and counted here and copied to the device at
 * the call; the number of counted rows is therefore known on the host. */
#include "ops/loss.h"

#include "runtime/context.h"
#include "runtime/events.h"
#include "runtime/launch.h"
#include "runtime/status.h"
#include "runtime/validate.h"

static const char *const OP = "retcl_cross_entropy";

retcl_status retcl__cross_entropy_check(retcl_context *ctx, const char *op,
                                        size_t rows, size_t vocab,
                                        const int32_t *targets,
                                        int32_t ignore_index,
                                        size_t *counted) {
  retcl_status st;
  if ((st = retcl__check_dim(ctx, op, "rows", rows, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, op, "vocab", vocab, 1, RETCL_MAX_INDEX)))
    return st;
  if (!targets)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: targets is NULL", op);
  size_t n = 0;
  for (size_t r = 0; r < rows; ++r) {
    if (targets[r] == ignore_index) continue;
    if (targets[r] < 0 || (size_t)targets[r] >= vocab)
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: targets[%zu] = %d is outside the vocabulary "
                         "[0, %zu) and is not ignore_index (%d)",
                         op, r, (int)targets[r], vocab, (int)ignore_index);
    ++n;
  }
  *counted = n;
  return RETCL_SUCCESS;
}

retcl_status retcl__cross_entropy_reserve(retcl_context *ctx, size_t rows,
                                          cl_mem *ws) {
  return retcl__workspace(ctx, RETCL_WORKSPACE_TRAIN_OPS,
                          rows * sizeof(cl_float), ws);
}

/* Work-items per group on the gpu pattern: loss.group_items within the
 * kernel's and the device's limits and half the local memory (one float
 * per item), and no more than `len` (the values one group walks). */
static size_t gpu_lanes(const retcl_context *ctx, retcl_kernel_id id,
                        size_t len) {
  size_t lanes = (size_t)retcl__param(ctx, RETCL_P_LOSS_GROUP_ITEMS);
  const size_t limit = retcl__group_limit(ctx, id);
  const size_t local_floats = retcl__local_mem_limit(ctx) / 2 / sizeof(float);
  if (lanes > limit) lanes = limit;
  if (local_floats && lanes > local_floats) lanes = local_floats;
  if (lanes > len) lanes = len;
  return lanes ? lanes : 1;
}

retcl_status retcl__cross_entropy_enqueue(retcl_context *ctx, size_t rows,
                                          size_t vocab, retcl_buffer logits,
                                          cl_mem targets, size_t targets_off,
                                          int32_t ignore_index, size_t counted,
                                          retcl_buffer loss,
                                          retcl_buffer d_logits, cl_mem ws) {
  const int cpu = retcl__cpu_access(ctx, RETCL_P_LOSS_ACCESS);
  const cl_float inv_count = counted ? (cl_float)(1.0 / (double)counted) : 0.0f;
  const cl_int has_d = d_logits.mem != NULL;
  /* Without d_logits the kernel never writes through it; logits stands in. */
  if (!has_d) d_logits = logits;
  const cl_uint logits_off = (cl_uint)logits.offset,
                t_off = (cl_uint)targets_off, rows_u = (cl_uint)rows,
                vocab_u = (cl_uint)vocab, d_off = (cl_uint)d_logits.offset,
                loss_off = (cl_uint)loss.offset;
  const cl_int ignore = ignore_index;

  const size_t row_lanes =
      cpu ? 1 : gpu_lanes(ctx, RETCL_KERNEL_CROSS_ENTROPY_ROWS, vocab);
  const retcl_karg row_args[] = {
      RETCL_KARG("logits", logits.mem),  RETCL_KARG("logits_off", logits_off),
      RETCL_KARG("targets", targets),    RETCL_KARG("targets_off", t_off),
      RETCL_KARG("ignore_index", ignore), RETCL_KARG("rows", rows_u),
      RETCL_KARG("vocab", vocab_u),      RETCL_KARG("inv_count", inv_count),
      RETCL_KARG("d_logits", d_logits.mem), RETCL_KARG("d_off", d_off),
      RETCL_KARG("has_d", has_d),        RETCL_KARG("row_loss", ws),
      RETCL_KLOCAL("part", row_lanes * sizeof(cl_float))};
  /* cpu: a work-item per row, one per group; gpu: a group per row. */
  const retcl_grid row_grid = {1, {rows * row_lanes, 1, 1}, {row_lanes, 1, 1}};
  retcl_status st =
      retcl__launch(ctx, RETCL_KERNEL_CROSS_ENTROPY_ROWS, row_args,
                    RETCL_NARGS(row_args), &row_grid, 0, NULL, NULL);
  if (st) return st;

  const size_t mean_lanes =
      cpu ? 1 : gpu_lanes(ctx, RETCL_KERNEL_CROSS_ENTROPY_MEAN, rows);
  const retcl_karg mean_args[] = {
      RETCL_KARG("row_loss", ws),     RETCL_KARG("rows", rows_u),
      RETCL_KARG("inv_count", inv_count), RETCL_KARG("loss", loss.mem),
      RETCL_KARG("loss_off", loss_off),
      RETCL_KLOCAL("part", mean_lanes * sizeof(cl_float))};
  const retcl_grid mean_grid = {1, {mean_lanes, 1, 1}, {mean_lanes, 1, 1}};
  return retcl__launch(ctx, RETCL_KERNEL_CROSS_ENTROPY_MEAN, mean_args,
                       RETCL_NARGS(mean_args), &mean_grid, 0, NULL, NULL);
}

/* d_logits is logits exactly or disjoint from it; loss shares nothing. */
static retcl_status check_overlaps(retcl_context *ctx, size_t elems,
                                   retcl_buffer logits, retcl_buffer loss,
                                   retcl_buffer d_logits) {
  const char *clash = NULL;
  if (retcl__overlaps(d_logits, elems, logits, elems) &&
      d_logits.offset != logits.offset)
    clash = "d_logits overlaps logits (only the exact same range is allowed)";
  else if (retcl__overlaps(loss, 1, logits, elems))
    clash = "loss overlaps logits";
  else if (retcl__overlaps(loss, 1, d_logits, elems))
    clash = "loss overlaps d_logits";
  if (clash)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: %s", OP, clash);
  return RETCL_SUCCESS;
}

retcl_status retcl_cross_entropy(retcl_context *ctx, size_t rows, size_t vocab,
                                 retcl_buffer logits, const int32_t *targets,
                                 int32_t ignore_index, retcl_buffer loss,
                                 retcl_buffer d_logits,
                                 cl_uint num_events_in_wait_list,
                                 const cl_event *event_wait_list,
                                 cl_event *event) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  size_t counted = 0;
  const size_t elems = retcl__mul(rows, vocab);
  cl_mem ws = NULL;
  if ((st = retcl__cross_entropy_check(ctx, OP, rows, vocab, targets,
                                       ignore_index, &counted)) ||
      (st = retcl__check_buffer(ctx, OP, "logits", logits, elems)) ||
      (st = retcl__check_buffer(ctx, OP, "loss", loss, 1)) ||
      (st = retcl__check_optional_buffer(ctx, OP, "d_logits", d_logits,
                                         elems)) ||
      (st = retcl__check_wait_list(ctx, OP, num_events_in_wait_list,
                                   event_wait_list)) ||
      (st = check_overlaps(ctx, elems, logits, loss, d_logits)) ||
      (st = retcl__prepare(ctx, RETCL_FAMILY_BIT(RETCL_FAMILY_LOSS))) ||
      (st = retcl__cross_entropy_reserve(ctx, rows, &ws)))
    return st;
  /* The targets, copied now (the caller may reuse its array at once). */
  cl_int err = CL_SUCCESS;
  cl_mem tgt = clCreateBuffer(ctx->cl_ctx,
                              CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                              rows * sizeof(cl_int), (void *)targets, &err);
  if (!tgt) return retcl__cl_fail(ctx, "clCreateBuffer(targets)", err);
  if (!(st = retcl__wait_for(ctx, num_events_in_wait_list, event_wait_list)) &&
      !(st = retcl__cross_entropy_enqueue(ctx, rows, vocab, logits, tgt, 0,
                                          ignore_index, counted, loss,
                                          d_logits, ws)))
    st = retcl__signal_done(ctx, event);
  clReleaseMemObject(tgt); /* kept alive by the kernel that reads it */
  return st;
}
