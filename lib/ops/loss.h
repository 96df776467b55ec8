/* loss.h - the cross-entropy's steps (loss.c), for composite calls (the
 * model's backward, which has its targets on the device already). */
#ifndef RETCL_OPS_LOSS_H
#define RETCL_OPS_LOSS_H

#include "retcl.h"

/* Pure checks of the sizes and the host targets (each in [0, vocab) or
 * ignore_index; the message names the position), messages naming `op`;
 * *counted: the rows whose target is not ignore_index. */
retcl_status retcl__cross_entropy_check(retcl_context *ctx, const char *op,
                                        size_t rows, size_t vocab,
                                        const int32_t *targets,
                                        int32_t ignore_index, size_t *counted);
/* The workspace the launches use (rows floats of per-row losses, in
 * RETCL_WORKSPACE_TRAIN_OPS). */
retcl_status retcl__cross_entropy_reserve(retcl_context *ctx, size_t rows,
                                          cl_mem *ws);
/* The two launches of a checked call (loss program prepared, ws
 * reserved): targets is an int32 device buffer of `rows` ids from element
 * targets_off, checked on the host (counted of them not ignore_index);
 * d_logits optional (mem NULL), logits itself or disjoint from it. */
retcl_status retcl__cross_entropy_enqueue(retcl_context *ctx, size_t rows,
                                          size_t vocab, retcl_buffer logits,
                                          cl_mem targets, size_t targets_off,
                                          int32_t ignore_index, size_t counted,
                                          retcl_buffer loss,
                                          retcl_buffer d_logits, cl_mem ws);

#endif
