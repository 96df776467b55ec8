/* rotation.h - the rotation op's steps (rotation.c), for composite calls
 * that check once at entry and then enqueue. */
#ifndef RETCL_OPS_ROTATION_H
#define RETCL_OPS_ROTATION_H

#include "retcl.h"

/* Head dimension a rotation plan was made for. */
size_t retcl__rotation_dim(const retcl_rotation *rot);
/* Pure checks of rot and desc (no buffers), messages naming `op`. */
retcl_status retcl__rotate_check(retcl_context *ctx, const char *op,
                                 const retcl_rotation *rot,
                                 const retcl_rotation_desc *desc);
/* Enqueue a checked rotation (its program prepared); table is the
 * packing table of a packed desc (ops/packing.h), else NULL. */
retcl_status retcl__rotate_enqueue(retcl_context *ctx,
                                   const retcl_rotation *rot,
                                   const retcl_rotation_desc *desc,
                                   retcl_buffer in, retcl_buffer out,
                                   cl_mem table, cl_uint num_wait, const cl_event *wait,
                                   cl_event *event);
/* Enqueue the transpose of a checked rotation: d_in = Θᵀ d_out (rotate by
 * -θ, the same xPos factors as the forward for desc->is_key). d_in may be
 * d_out (same offset). */
retcl_status retcl__rotate_backward_enqueue(retcl_context *ctx,
                                            const retcl_rotation *rot,
                                            const retcl_rotation_desc *desc,
                                            retcl_buffer d_out,
                                            retcl_buffer d_in, cl_mem table,
                                            cl_uint num_wait,
                                            const cl_event *wait,
                                            cl_event *event);

#endif
