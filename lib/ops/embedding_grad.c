/* embedding_grad.c - retcl_embedding_backward: the gradient of the token
 * embedding lookup (docs/design.md §1.7), summed without atomics. The host
 * sorts the positions by token (stable: positions stay increasing) into a
 * row list with CSR offsets, copies it to the device at the call, and
 * retcl_embedding_backward (cl/elementwise.cl) sums each named row's
 * positions in that order: the result is the same on every run. */
#include "ops/embedding_grad.h"

#include "runtime/context.h"
#include "runtime/launch.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <math.h>
#include <stdlib.h>

static const char *const OP = "retcl_embedding_backward";

retcl_status retcl__embedding_backward_check(retcl_context *ctx,
                                             const char *op, size_t count,
                                             const int32_t *tokens,
                                             size_t vocab, size_t dim,
                                             float scale) {
  retcl_status st;
  if ((st = retcl__check_dim(ctx, op, "count", count, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, op, "vocab", vocab, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, op, "dim", dim, 1, RETCL_MAX_INDEX)))
    return st;
  if (!tokens)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: tokens is NULL",
                       op);
  if (!isfinite(scale))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: scale = %g is not finite", op, (double)scale);
  for (size_t i = 0; i < count; ++i)
    if (tokens[i] < 0 || (size_t)tokens[i] >= vocab)
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: tokens[%zu] = %d is outside the vocabulary [0, "
                         "%zu)",
                         op, i, (int)tokens[i], vocab);
  /* The index the device reads: up to vocab rows, vocab + 1 offsets and
   * count positions, in 32-bit indices. */
  if (2 * vocab + 1 > RETCL_MAX_INDEX - count)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: count %zu and vocab %zu need an index of more "
                       "than %zu entries",
                       op, count, vocab, RETCL_MAX_INDEX);
  return RETCL_SUCCESS;
}

static int compare_keys(const void *pa, const void *pb) {
  const uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
  return (a > b) - (a < b);
}

retcl_status retcl__embedding_index(retcl_context *ctx, const char *op,
                                    size_t count, const int32_t *tokens,
                                    size_t vocab, int accumulate,
                                    cl_mem *index, cl_uint *nrows) {
  *index = NULL;
  *nrows = 0;
  /* (token, position) as one key: sorting orders by token, then position. */
  uint64_t *keys = malloc(count * sizeof *keys);
  if (!keys)
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: %zu positions to sort on the host", op, count);
  for (size_t i = 0; i < count; ++i)
    keys[i] = (uint64_t)(uint32_t)tokens[i] << 32 | (uint64_t)i;
  qsort(keys, count, sizeof *keys, compare_keys);
  size_t used = 0;
  for (size_t i = 0; i < count; ++i)
    if (i == 0 || keys[i] >> 32 != keys[i - 1] >> 32) ++used;
  /* Accumulate: the named rows only. Overwrite: every row, so that rows
   * nobody names are written with 0. */
  const size_t rows = accumulate ? used : vocab;
  const size_t entries = 2 * rows + 1 + count;
  cl_uint *host = malloc(entries * sizeof *host);
  if (!host) {
    free(keys);
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: an index of %zu entries on the host", op, entries);
  }
  cl_uint *row = host, *start = host + rows, *pos = host + 2 * rows + 1;
  size_t u = 0, i = 0;
  while (u < rows) {
    const size_t r = accumulate ? (size_t)(keys[i] >> 32) : u;
    row[u] = (cl_uint)r;
    start[u] = (cl_uint)i;
    for (; i < count && (size_t)(keys[i] >> 32) == r; ++i)
      pos[i] = (cl_uint)(keys[i] & 0xffffffffu);
    ++u;
  }
  start[rows] = (cl_uint)count;
  free(keys);
  cl_int err = CL_SUCCESS;
  *index = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                          entries * sizeof *host, host, &err);
  free(host);
  if (!*index) return retcl__cl_fail(ctx, "clCreateBuffer(embedding index)", err);
  *nrows = (cl_uint)rows;
  return RETCL_SUCCESS;
}

retcl_status retcl__embedding_backward_enqueue(
    retcl_context *ctx, cl_mem index, cl_uint nrows, size_t dim, float scale,
    retcl_buffer d_x, int accumulate, retcl_buffer d_table, cl_uint num_wait,
    const cl_event *wait, cl_event *event) {
  const int cpu = retcl__cpu_access(ctx, RETCL_P_ELEMENTWISE_ACCESS);
  const cl_uint per =
      cpu ? (cl_uint)retcl__param(ctx, RETCL_P_ELEMENTWISE_PER_ITEM) : 1u;
  const cl_uint dx_off = (cl_uint)d_x.offset, dt_off = (cl_uint)d_table.offset,
                width = (cl_uint)dim;
  const cl_int acc = accumulate != 0;
  const retcl_karg args[] = {
      RETCL_KARG("index", index),       RETCL_KARG("nrows", nrows),
      RETCL_KARG("d_x", d_x.mem),       RETCL_KARG("dx_off", dx_off),
      RETCL_KARG("d_table", d_table.mem), RETCL_KARG("dt_off", dt_off),
      RETCL_KARG("width", width),       RETCL_KARG("scale", scale),
      RETCL_KARG("accumulate", acc),    RETCL_KARG("per_item", per)};
  const retcl_grid grid =
      retcl__grid(cpu, 2, (dim + per - 1) / per, nrows, 1);
  return retcl__launch(ctx, RETCL_KERNEL_EMBEDDING_BACKWARD, args,
                       RETCL_NARGS(args), &grid, num_wait, wait, event);
}

retcl_status retcl_embedding_backward(retcl_context *ctx, size_t count,
                                      const int32_t *tokens, size_t vocab,
                                      size_t dim, float scale,
                                      retcl_buffer d_x, int accumulate,
                                      retcl_buffer d_table,
                                      cl_uint num_events_in_wait_list,
                                      const cl_event *event_wait_list,
                                      cl_event *event) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if ((st = retcl__embedding_backward_check(ctx, OP, count, tokens, vocab, dim,
                                            scale)) ||
      (st = retcl__check_buffer(ctx, OP, "d_x", d_x, retcl__mul(count, dim))) ||
      (st = retcl__check_buffer(ctx, OP, "d_table", d_table,
                                retcl__mul(vocab, dim))) ||
      (st = retcl__check_wait_list(ctx, OP, num_events_in_wait_list,
                                   event_wait_list)))
    return st;
  if (retcl__overlaps(d_table, vocab * dim, d_x, count * dim))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: d_table overlaps d_x", OP);
  if ((st = retcl__prepare(ctx, RETCL_FAMILY_BIT(RETCL_FAMILY_ELEMENTWISE))))
    return st;
  cl_mem index = NULL;
  cl_uint nrows = 0;
  if ((st = retcl__embedding_index(ctx, OP, count, tokens, vocab, accumulate,
                                   &index, &nrows)))
    return st;
  /* The index buffer is released here; OpenCL keeps it until the kernel
   * that reads it has run. */
  st = retcl__embedding_backward_enqueue(ctx, index, nrows, dim, scale, d_x,
                                         accumulate, d_table,
                                         num_events_in_wait_list,
                                         event_wait_list, event);
  clReleaseMemObject(index);
  return st;
}
