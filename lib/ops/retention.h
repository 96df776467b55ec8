/* retention.h - the retention op's steps (retention.c): a pure check that
 * makes a plan, and the enqueue of a checked plan, for composite calls
 * that check once at entry. */
#ifndef RETCL_OPS_RETENTION_H
#define RETCL_OPS_RETENTION_H

#include "retcl.h"

/* A checked call: the descriptor and what it touches, in floats. */
typedef struct retcl_retention_plan {
  retcl_retention_desc d;
  size_t chunk, chunks;      /* chunkwise: C and ceil(T/C); else T and 1 */
  size_t qk, vo, state;      /* floats of q/k, v/out, one state */
  size_t scratch;            /* floats of workspace the enqueue needs */
  int has_state_in, has_state_out;
  int state_only;            /* no outputs: the state kernels only */
} retcl_retention_plan;

/* Pure checks of d (no buffers, no OpenCL calls) with messages naming
 * `op`; chunk_size 0 takes the record's retention.chunk. */
retcl_status retcl__retention_plan(retcl_context *ctx, const char *op,
                                   const retcl_retention_desc *d,
                                   int has_state_in, int has_state_out,
                                   retcl_retention_plan *plan);
/* Enqueue a checked plan (program prepared); scratch holds plan->scratch
 * floats. table: a packed recurrent plan's packing table
 * (retcl__packing_upload with the call's states and form), else NULL. */
retcl_status retcl__retention_enqueue(retcl_context *ctx,
                                      const retcl_retention_plan *plan,
                                      retcl_buffer q, retcl_buffer k,
                                      retcl_buffer v, retcl_buffer log_decay,
                                      retcl_buffer state_in,
                                      retcl_buffer state_out,
                                      retcl_buffer out, cl_mem scratch,
                                      cl_mem table, cl_uint num_wait,
                                      const cl_event *wait, cl_event *event);

#endif
