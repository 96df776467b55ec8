/* optimizer.h - the optimizer's steps (optimizer.c), for composite calls
 * (a training step over the model's gradient set). A clipped step over
 * tensors 0 … c−1:
 *   check (retcl__adamw_check, buffers), prepare the optimizer program,
 *   P = Σ_t retcl__grad_norm_partials(ctx, n_t), retcl__optimizer_reserve(P),
 *   retcl__grad_norm_partial_enqueue for each tensor at partial offsets
 *   0, P_0, P_0 + P_1, …, then retcl__grad_norm_finish_enqueue(P), then
 *   retcl__adamw_enqueue for each tensor with the workspace (ws NULL: no
 *   clipping). */
#ifndef RETCL_OPS_OPTIMIZER_H
#define RETCL_OPS_OPTIMIZER_H

#include "retcl.h"

/* Pure checks of the hyper-parameters and the step, messages naming op. */
retcl_status retcl__adamw_check(retcl_context *ctx, const char *op,
                                const retcl_adamw *opt, size_t step);
/* Partial sums the norm of a tensor of n floats takes (program prepared). */
size_t retcl__grad_norm_partials(const retcl_context *ctx, size_t n);
/* partials + 2 floats of RETCL_WORKSPACE_TRAIN_OPS: the partial sums, then
 * the norm and the clip factor. */
retcl_status retcl__optimizer_reserve(retcl_context *ctx, size_t partials,
                                      cl_mem *ws);
/* The partial sums of squares of grad [n] into ws from float part_off. */
retcl_status retcl__grad_norm_partial_enqueue(retcl_context *ctx,
                                              retcl_buffer grad, size_t n,
                                              cl_mem ws, size_t part_off);
/* The norm of everything summed into ws[0 .. partials) into ws[partials],
 * the clip factor (1 for clip_norm 0) into ws[partials + 1], and the norm
 * into norm_out when its mem is not NULL. */
retcl_status retcl__grad_norm_finish_enqueue(retcl_context *ctx, cl_mem ws,
                                             size_t partials, float clip_norm,
                                             retcl_buffer norm_out);
/* One AdamW update of a checked tensor; ws: the workspace the finish step
 * wrote (factor at partials + 1), or NULL for no clipping. */
retcl_status retcl__adamw_enqueue(retcl_context *ctx, const retcl_adamw *opt,
                                  size_t step, size_t n, retcl_buffer param,
                                  retcl_buffer grad, retcl_buffer m,
                                  retcl_buffer v, cl_mem ws, size_t partials);

#endif
