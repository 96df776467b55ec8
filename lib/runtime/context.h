/* context.h - what a retcl_context holds (context.c): the device, its
 * parameter record, the built programs and kernels, and the workspaces. */
#ifndef RETCL_RUNTIME_CONTEXT_H
#define RETCL_RUNTIME_CONTEXT_H

#include "runtime/params.h"
#include "runtime/program.h"

/* Device scratch buffers, one per level that needs temporaries, so a call
 * at one level never clobbers the temporaries of the level that called it. */
typedef enum retcl_workspace_id {
  RETCL_WORKSPACE_RETENTION = 0, /* chunk states, recurrent state */
  RETCL_WORKSPACE_LAYER,         /* Q, K, V, G, retention output */
  RETCL_WORKSPACE_MODEL,         /* residual stream, FFN, tokens, logits */
  RETCL_WORKSPACE_GEMM,          /* packed panels of op(A) and op(B) */
  RETCL_WORKSPACE_NORM_GRAD,     /* group norm backward: partial d_weight,
                                    d_bias sums */
  RETCL_WORKSPACE_TRAIN_OPS,     /* per-row losses, gradient-norm partials */
  RETCL_WORKSPACE_RETENTION_GRAD, /* retention backward: panels, states */
  RETCL_WORKSPACE_COUNT
} retcl_workspace_id;

/* Device limits the launches are sized by. */
typedef struct retcl_device_limits {
  size_t max_work_group;   /* CL_DEVICE_MAX_WORK_GROUP_SIZE, or lower */
  size_t max_item_size0;   /* CL_DEVICE_MAX_WORK_ITEM_SIZES[0] */
  size_t local_mem_bytes;  /* CL_DEVICE_LOCAL_MEM_SIZE, or lower */
  cl_uint compute_units;
} retcl_device_limits;

struct retcl_context {
  cl_context cl_ctx;
  cl_device_id device;
  cl_command_queue queue;
  retcl_device_identity identity;
  retcl_device_limits limits;
  retcl_params params;
  /* [weight type][...]: families reading weights have a variant per
   * weight storage type (runtime/program.h); the others only [0]. */
  cl_program programs[RETCL_WTYPE_COUNT][RETCL_FAMILY_COUNT];
  cl_kernel kernels[RETCL_WTYPE_COUNT][RETCL_KERNEL_COUNT];
  size_t kernel_group_limit[RETCL_KERNEL_COUNT]; /* see retcl__group_limit:
                                                    the lowest of the built
                                                    variants */
  int kernel_args_checked[RETCL_WTYPE_COUNT][RETCL_KERNEL_COUNT]; /* see
                                                    retcl__launch */
  cl_mem workspace[RETCL_WORKSPACE_COUNT];       /* see retcl__workspace() */
  size_t workspace_bytes[RETCL_WORKSPACE_COUNT];
  int clblast_ready; /* the clblast family is prepared (runtime/clblast.c) */
  retcl_log_fn log_fn;
  void *log_user;
  char error[8192];
};

/* A parameter of the context's record. */
static inline long retcl__param(const retcl_context *ctx, retcl_param_id id) {
  return ctx->params.value[id];
}
static inline int retcl__cpu_access(const retcl_context *ctx,
                                    retcl_param_id access) {
  return ctx->params.value[access] == RETCL_ACCESS_CPU;
}

/* CPU kernels that give each work-item a share of `pieces` (rows, column
 * blocks) of each of `outer` independent jobs: how many work-items to cut
 * every job into so that each compute unit still gets about four (few,
 * large shares keep a job's inputs in one item's cache). 1..pieces. */
static inline size_t retcl__cpu_split(const retcl_context *ctx, size_t outer,
                                      size_t pieces) {
  const size_t want = 4 * (size_t)ctx->limits.compute_units; /* units >= 1 */
  size_t split = outer >= want ? 1 : (want + outer - 1) / outer;
  if (split > pieces) split = pieces;
  return split ? split : 1;
}

/* At least `bytes` of device memory in workspace `id`, reused across calls
 * (commands already enqueued keep a released buffer alive). Composite calls
 * reserve every workspace they need before they enqueue anything. */
retcl_status retcl__workspace(retcl_context *ctx, retcl_workspace_id id,
                              size_t bytes, cl_mem *out);

#endif
