/* retention_grad.h - the retention backward's steps (retention_grad.c): a
 * pure check that makes a plan, and the enqueue of a checked plan, for
 * composite calls (a layer's or a model's backward) that check once at
 * entry. */
#ifndef RETCL_OPS_RETENTION_GRAD_H
#define RETCL_OPS_RETENTION_GRAD_H

#include "ops/retention.h"

/* A checked backward call and how the enqueue cuts it; sizes and offsets
 * in floats. */
typedef struct retcl_retention_grad_plan {
  retcl_retention_plan f; /* the forward's plan: desc, chunk, sizes */
  int has_state_in, has_d_state_out, has_d_state_in;
  int ts;                 /* torchscale form */
  int cpu;                /* retention_grad.access */
  size_t vw, rb, kt, kb, rkb, gx, gy;
  /* Parallel and chunkwise: n_seg segments of seg tokens (the chunks, or
   * the whole sequence), each cut into ntile tiles of kt tokens. */
  size_t n_seg, seg, ntile;
  int need_U, has_R, need_W, run_states_bwd, has_dR;
  size_t n_parts; /* recurrent: row blocks whose dv partials are summed */
  /* Workspace regions (offsets; unused ones 0). */
  size_t off_F, off_Qt, off_Kt, off_Vt, off_Ot, off_R, off_dR, off_dRt, off_S,
      off_G, off_P;
  size_t scratch; /* floats of workspace the enqueue needs */
} retcl_retention_grad_plan;

/* Pure checks (no buffers, no OpenCL calls) with messages naming `op`. */
retcl_status retcl__retention_grad_plan(retcl_context *ctx, const char *op,
                                        const retcl_retention_desc *d,
                                        int has_state_in, int has_d_state_out,
                                        int has_d_state_in,
                                        retcl_retention_grad_plan *plan);
/* Enqueue a checked plan (program prepared); work holds plan->scratch
 * floats. */
retcl_status retcl__retention_grad_enqueue(
    retcl_context *ctx, const retcl_retention_grad_plan *plan, retcl_buffer q,
    retcl_buffer k, retcl_buffer v, retcl_buffer log_decay,
    retcl_buffer state_in, retcl_buffer d_out, retcl_buffer d_state_out,
    retcl_buffer dq, retcl_buffer dk, retcl_buffer dv, retcl_buffer d_state_in,
    cl_mem work, cl_uint num_wait, const cl_event *wait, cl_event *event);

#endif
