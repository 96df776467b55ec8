/* elementwise.h - the model's elementwise kernels (elementwise.c,
 * cl/elementwise.cl). Internal: callers have checked sizes and buffers and
 * prepared the program. */
#ifndef RETCL_OPS_ELEMENTWISE_H
#define RETCL_OPS_ELEMENTWISE_H

#include "retcl.h"

/* out[r, :] = scale * table[tokens[r], :] for r < rows, width floats each */
retcl_status retcl__embed(retcl_context *ctx, cl_mem tokens, size_t rows,
                          retcl_buffer table, size_t width, float scale,
                          retcl_buffer out);
/* x = alpha * x + y over n floats */
retcl_status retcl__residual(retcl_context *ctx, size_t n, float alpha,
                             retcl_buffer x, retcl_buffer y);
/* a = act(a) * g over n floats (act: retcl_activation) */
retcl_status retcl__glu(retcl_context *ctx, size_t n, retcl_activation act,
                        retcl_buffer a, retcl_buffer g);


/* GLU backward (retcl_glu_backward): pure checks of n and act, messages
 * naming `op`, and the launch of a checked call (program prepared; d_a and
 * d_g each either one of a, g, d_h exactly or disjoint from them, and from
 * each other). */
retcl_status retcl__glu_backward_check(retcl_context *ctx, const char *op,
                                       size_t n, retcl_activation act);
retcl_status retcl__glu_backward_enqueue(retcl_context *ctx, size_t n,
                                         retcl_activation act, retcl_buffer a,
                                         retcl_buffer g, retcl_buffer d_h,
                                         retcl_buffer d_a, retcl_buffer d_g,
                                         cl_uint num_wait, const cl_event *wait,
                                         cl_event *event);

#endif
