/* group_norm.h - the group norm op's steps (group_norm.c), for composite
 * calls (the layer's norm and gate, the model's RMSNorms). */
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

#endif
