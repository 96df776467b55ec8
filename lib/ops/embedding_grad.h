/* embedding_grad.h - the embedding backward's steps (embedding_grad.c),
 * for composite calls (the model's backward, a tied embedding). */
#ifndef RETCL_OPS_EMBEDDING_GRAD_H
#define RETCL_OPS_EMBEDDING_GRAD_H

#include "retcl.h"

/* Pure checks (no buffers): sizes, scale, every token id in [0, vocab)
 * (the message names the position), messages naming `op`. */
retcl_status retcl__embedding_backward_check(retcl_context *ctx,
                                             const char *op, size_t count,
                                             const int32_t *tokens,
                                             size_t vocab, size_t dim,
                                             float scale);
/* The device index of checked tokens (rows, CSR offsets, positions; see
 * cl/elementwise.cl), copied from the host now: a new read-only buffer the
 * caller releases once the launch that reads it is enqueued. *nrows: the
 * rows the launch writes (the named ones when accumulating, all vocab
 * rows otherwise). */
retcl_status retcl__embedding_index(retcl_context *ctx, const char *op,
                                    size_t count, const int32_t *tokens,
                                    size_t vocab, int accumulate,
                                    cl_mem *index, cl_uint *nrows);
/* The launch (elementwise program prepared). */
retcl_status retcl__embedding_backward_enqueue(
    retcl_context *ctx, cl_mem index, cl_uint nrows, size_t dim, float scale,
    retcl_buffer d_x, int accumulate, retcl_buffer d_table, cl_uint num_wait,
    const cl_event *wait, cl_event *event);

#endif
