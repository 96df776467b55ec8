/* launch.c - the one launcher: binds a kernel's arguments from its
 * description, checks the description against the compiled signature once
 * per context, and enqueues with a grid sized within the device's limits. */
#include "runtime/launch.h"

#include "runtime/context.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <stdio.h>
#include <string.h>

retcl_grid retcl__grid(int cpu_access, cl_uint dims, size_t g0, size_t g1,
                       size_t g2) {
  retcl_grid g = {dims, {g0, g1, g2}, {0, 0, 0}};
  if (cpu_access) g.local[0] = g.local[1] = g.local[2] = 1;
  return g;
}

size_t retcl__group_limit(const retcl_context *ctx, retcl_kernel_id id) {
  size_t limit = ctx->limits.max_work_group;
  if (ctx->kernel_group_limit[id] && ctx->kernel_group_limit[id] < limit)
    limit = ctx->kernel_group_limit[id];
  if (ctx->limits.max_item_size0 && ctx->limits.max_item_size0 < limit)
    limit = ctx->limits.max_item_size0;
  return limit ? limit : 1;
}

size_t retcl__local_mem_limit(const retcl_context *ctx) {
  return ctx->limits.local_mem_bytes;
}

/* The description against the compiled signature: the same number of
 * arguments, and (where the driver keeps argument info, which RetCL asks
 * for with -cl-kernel-arg-info) the same names in the same order. */
static retcl_status check_signature(retcl_context *ctx, retcl_kernel_id id,
                                    cl_kernel k, const retcl_karg *args,
                                    size_t nargs) {
  const char *kname = retcl__kernel_name(id);
  cl_uint count = 0;
  cl_int err = clGetKernelInfo(k, CL_KERNEL_NUM_ARGS, sizeof count, &count,
                               NULL);
  if (err != CL_SUCCESS) return retcl__cl_fail(ctx, "clGetKernelInfo", err);
  if (count != nargs)
    return retcl__fail(ctx, RETCL_ERROR_BUILD_FAILED,
                       "internal: %s takes %u arguments but the host binds "
                       "%zu",
                       kname, count, nargs);
  for (cl_uint i = 0; i < count; ++i) {
    char name[128] = "";
    err = clGetKernelArgInfo(k, i, CL_KERNEL_ARG_NAME, sizeof name, name,
                             NULL);
    if (err == CL_KERNEL_ARG_INFO_NOT_AVAILABLE) return RETCL_SUCCESS;
    if (err != CL_SUCCESS) return retcl__cl_fail(ctx, "clGetKernelArgInfo", err);
    if (strcmp(name, args[i].name))
      return retcl__fail(ctx, RETCL_ERROR_BUILD_FAILED,
                         "internal: argument %u of %s is \"%s\" in cl/ but "
                         "the host binds \"%s\"",
                         i, kname, name, args[i].name);
  }
  return RETCL_SUCCESS;
}

/* The grid against the device: group size within retcl__group_limit, local
 * memory within retcl__local_mem_limit. */
static retcl_status check_grid(retcl_context *ctx, retcl_kernel_id id,
                               const retcl_karg *args, size_t nargs,
                               const retcl_grid *g, size_t *global) {
  size_t items = 1, local_bytes = 0;
  for (cl_uint d = 0; d < g->dims; ++d) {
    global[d] = g->local[0] ? retcl__round_up(g->global[d], g->local[d])
                            : g->global[d];
    if (g->local[0]) items *= g->local[d];
  }
  for (size_t i = 0; i < nargs; ++i)
    if (!args[i].value) local_bytes += args[i].size;
  const size_t limit = retcl__group_limit(ctx, id);
  if (items > limit)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: a work-group of %zu items exceeds the limit of "
                       "%zu on this device",
                       retcl__kernel_name(id), items, limit);
  if (local_bytes > ctx->limits.local_mem_bytes)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: %zu bytes of local memory exceed the %zu this "
                       "device allows",
                       retcl__kernel_name(id), local_bytes,
                       ctx->limits.local_mem_bytes);
  return RETCL_SUCCESS;
}

retcl_status retcl__launch(retcl_context *ctx, retcl_kernel_id id,
                           const retcl_karg *args, size_t nargs,
                           const retcl_grid *grid, cl_uint num_wait,
                           const cl_event *wait, cl_event *event) {
  return retcl__launch_typed(ctx, id, RETCL_DTYPE_F32, args, nargs, grid,
                             num_wait, wait, event);
}

retcl_status retcl__launch_typed(retcl_context *ctx, retcl_kernel_id id,
                                 retcl_dtype wtype, const retcl_karg *args,
                                 size_t nargs, const retcl_grid *grid,
                                 cl_uint num_wait, const cl_event *wait,
                                 cl_event *event) {
  const int wt = (unsigned)wtype < RETCL_WTYPE_COUNT ? (int)wtype : 0;
  cl_kernel k = ctx->kernels[wt][id];
  if (!k || wt != (int)wtype)
    return retcl__fail(ctx, RETCL_ERROR_BUILD_FAILED,
                       "internal: %s (weight type %d) launched before its "
                       "program was built",
                       retcl__kernel_name(id), (int)wtype);
  retcl_status st;
  if (!ctx->kernel_args_checked[wt][id]) {
    if ((st = check_signature(ctx, id, k, args, nargs))) return st;
    ctx->kernel_args_checked[wt][id] = 1;
  }
  size_t global[3];
  if ((st = check_grid(ctx, id, args, nargs, grid, global))) return st;
  for (size_t i = 0; i < nargs; ++i) {
    cl_int err = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].value);
    if (err != CL_SUCCESS) {
      char call[160];
      snprintf(call, sizeof call, "clSetKernelArg(%s, %s)",
               retcl__kernel_name(id), args[i].name);
      return retcl__cl_fail(ctx, call, err);
    }
  }
  cl_int err = clEnqueueNDRangeKernel(
      ctx->queue, k, grid->dims, NULL, global,
      grid->local[0] ? grid->local : NULL, num_wait, wait, event);
  if (err != CL_SUCCESS) {
    char call[160];
    snprintf(call, sizeof call, "clEnqueueNDRangeKernel(%s)",
             retcl__kernel_name(id));
    return retcl__cl_fail(ctx, call, err);
  }
  return RETCL_SUCCESS;
}
