/* group_norm.h - the group norm op's steps (group_norm.c), forward and
 * backward, for composite calls (the layer's norm and gate, the model's
 * RMSNorms). */
#ifndef RETCL_OPS_GROUP_NORM_H
#define RETCL_OPS_GROUP_NORM_H

#include "retcl.h"

/* Pure checks of desc (no buffers), messages naming `op`. */
retcl_status retcl__group_norm_check(retcl_context *ctx, const char *op,
                                     const retcl_group_norm_desc *desc);
/* Enqueue a checked call (program prepared). */
retcl_status retcl__group_norm_enqueue(retcl_context *ctx,
                                       const retcl_group_norm_desc *desc,
                                       retcl_buffer x, retcl_buffer gate,
                                       retcl_buffer weight, retcl_buffer bias,
                                       retcl_buffer out, cl_uint num_wait,
                                       const cl_event *wait, cl_event *event);

/* How a backward call is cut (retcl__group_norm_backward_plan): the B·T
 * positions in `slices` runs of `slice_rows`, each run of each head one
 * row of partial sums; workspace_floats of RETCL_WORKSPACE_NORM_GRAD hold
 * them (0 without d_weight and d_bias). */
typedef struct retcl_group_norm_grad_plan {
  size_t slice_rows, slices, workspace_floats;
  int want_dw, want_db;
} retcl_group_norm_grad_plan;

/* Pure checks of desc (as retcl__group_norm_check) and the plan of a
 * backward call that does (want_dw, want_db) or does not write the weight
 * and bias gradients. */
retcl_status retcl__group_norm_backward_plan(retcl_context *ctx,
                                             const char *op,
                                             const retcl_group_norm_desc *desc,
                                             int want_dw, int want_db,
                                             retcl_group_norm_grad_plan *plan);
/* Enqueue a checked backward (program prepared; workspace: at least
 * plan->workspace_floats floats, when that is nonzero): one launch, or two
 * with weight gradients (the second sums the partials). Absent buffers are
 * retcl_no_buf(); gate and d_gate are ignored when desc->gate is NONE. */
retcl_status retcl__group_norm_backward_enqueue(
    retcl_context *ctx, const retcl_group_norm_desc *desc,
    const retcl_group_norm_grad_plan *plan, retcl_buffer x, retcl_buffer gate,
    retcl_buffer weight, retcl_buffer bias, retcl_buffer d_out,
    retcl_buffer dx, retcl_buffer d_gate, retcl_buffer d_weight,
    retcl_buffer d_bias, cl_mem workspace, cl_uint num_wait,
    const cl_event *wait, cl_event *event);

#endif
