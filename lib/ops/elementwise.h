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

#endif
