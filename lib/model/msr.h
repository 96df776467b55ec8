/* msr.h - the multi-scale retention layer's steps (msr.c): a pure check
 * that makes a plan, and the enqueue of a plan, which the model runs per
 * layer with buffers it has checked once. */
#ifndef RETCL_MODEL_MSR_H
#define RETCL_MODEL_MSR_H

#include "ops/retention.h"

typedef struct retcl_msr_plan {
  retcl_msr_desc d;
  size_t Dk, Dv, rows;          /* rows = batch * tokens */
  retcl_retention_plan retention;
  retcl_rotation_desc rot_q, rot_k;
  retcl_group_norm_desc norm;
  size_t layer_floats;          /* RETCL_WORKSPACE_LAYER: Q, K, V, G, O */
  /* The residual stream's width: x and y's columns. d.embed_dim (the q, k
   * width) unless the layer holds only some heads of a heads-split model
   * (then the model sets it after planning). */
  size_t width;
  /* A sequence-split model's hooks (retention over the processes' slices);
   * NULL otherwise. */
  const retcl_model_split *split;
} retcl_msr_plan;

/* The kernel families a layer launches. */
unsigned retcl__msr_families(void);

/* Pure checks of desc and rot (no buffers), messages naming `op`. */
retcl_status retcl__msr_plan(retcl_context *ctx, const char *op,
                             const retcl_msr_desc *desc,
                             const retcl_rotation *rot, int has_state_in,
                             int has_state_out, retcl_msr_plan *plan);
/* Reserve the projections' workspace (retcl__linear_reserve) for a plan. */
retcl_status retcl__msr_reserve(retcl_context *ctx, const retcl_msr_plan *p);
/* The packing table of a packed plan (ops/packing.h), NULL otherwise:
 * made before anything is enqueued; the caller releases it after the last
 * retcl__msr_enqueue that uses it. */
retcl_status retcl__msr_table(retcl_context *ctx, const char *op,
                              const retcl_msr_plan *p, cl_mem *table);
/* Enqueue a checked layer: `layer` holds plan->layer_floats, `scratch`
 * plan->retention.scratch floats, table is retcl__msr_table's. */
retcl_status retcl__msr_enqueue(retcl_context *ctx, const retcl_msr_plan *plan,
                                const retcl_msr_weights *w,
                                const retcl_rotation *rot,
                                retcl_buffer log_decay, retcl_buffer x,
                                retcl_buffer state_in, retcl_buffer state_out,
                                retcl_buffer y, cl_mem layer, cl_mem scratch,
                                cl_mem table);

/* A sequence-split layer's retention through its hook (plan->split):
 * also called, with st != SUCCESS, when this process failed earlier in the
 * layer, so that the hook's exchange still takes place; returns st, or
 * the hook's agreed failure. Without a split: returns st. */
retcl_status retcl__msr_split_retention(retcl_context *ctx,
                                        const retcl_msr_plan *p,
                                        retcl_status st, retcl_buffer q,
                                        retcl_buffer k, retcl_buffer v,
                                        retcl_buffer log_decay,
                                        retcl_buffer state_out,
                                        retcl_buffer out);

#endif
