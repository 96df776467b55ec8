/* launch.h - the one launcher (launch.c): binds a kernel's arguments from
 * one description, in the order of its cl/ signature, and enqueues it with
 * a grid sized within the device's limits.
 *
 *   const retcl_karg args[] = {RETCL_KARG("x", x.mem), RETCL_KARG("x_off",
 *                              x_off), RETCL_KLOCAL("part", bytes)};
 *   retcl__launch(ctx, RETCL_KERNEL_X, args, RETCL_NARGS(args), &grid, ...)
 *
 * Names are the parameter names of the kernel's signature: the first launch
 * of a kernel in a context compares count and names with what the compiler
 * reports (clGetKernelArgInfo), so the host and the .cl file cannot drift
 * apart silently. */
#ifndef RETCL_RUNTIME_LAUNCH_H
#define RETCL_RUNTIME_LAUNCH_H

#include "runtime/program.h"

typedef struct retcl_karg {
  const char *name;  /* the .cl parameter name */
  size_t size;       /* bytes of the value, or of __local memory */
  const void *value; /* NULL: a __local buffer of `size` bytes */
} retcl_karg;

#define RETCL_KARG(name, v) ((retcl_karg){(name), sizeof(v), &(v)})
#define RETCL_KLOCAL(name, bytes) ((retcl_karg){(name), (bytes), NULL})
#define RETCL_NARGS(a) (sizeof(a) / sizeof((a)[0]))

/* The work of one launch: `global` work-items in each of `dims`
 * dimensions; `local` the work-group shape, or local[0] == 0 to let the
 * driver choose. The launcher rounds global up to a multiple of local and
 * fails (naming the kernel and the limit) on a shape the device cannot
 * run: the families size their groups with retcl__group_limit. */
typedef struct retcl_grid {
  cl_uint dims;
  size_t global[3];
  size_t local[3];
} retcl_grid;

/* One work-item per work-group for a kernel whose items each walk a
 * contiguous range (the CPU access pattern: PoCL, left to choose, packs
 * thousands of items into one group, which then runs on one core and can
 * overflow its worker stack); the driver's choice otherwise. */
retcl_grid retcl__grid(int cpu_access, cl_uint dims, size_t g0, size_t g1,
                       size_t g2);

/* The most work-items one group of kernel `id` may have: the device's
 * limit (lowered by RETCL_MAX_WORK_GROUP_SIZE), the kernel's own
 * (registers) and the device's first dimension, whichever is lowest. */
size_t retcl__group_limit(const retcl_context *ctx, retcl_kernel_id id);
/* Local memory a launch may use (lowered by RETCL_MAX_LOCAL_MEM_BYTES). */
size_t retcl__local_mem_limit(const retcl_context *ctx);

/* Bind args to kernel `id` (which the op's prepare step has built) and
 * enqueue it on the context's queue after the wait list. */
retcl_status retcl__launch(retcl_context *ctx, retcl_kernel_id id,
                           const retcl_karg *args, size_t nargs,
                           const retcl_grid *grid, cl_uint num_wait,
                           const cl_event *wait, cl_event *event);
/* The same with the kernel's variant for weights of type wtype (built by
 * retcl__prepare_typed); retcl__launch is wtype F32. */
retcl_status retcl__launch_typed(retcl_context *ctx, retcl_kernel_id id,
                                 retcl_dtype wtype, const retcl_karg *args,
                                 size_t nargs, const retcl_grid *grid,
                                 cl_uint num_wait, const cl_event *wait,
                                 cl_event *event);

#endif
