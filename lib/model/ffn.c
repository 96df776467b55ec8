/* ffn.c - the GLU feed-forward block: fc1 and gate of h as one stacked
 * projection, a = act(a) ⊙ g, then fc2 (docs/design.md §1.6). */
#include "model/ffn.h"

#include "ops/elementwise.h"
#include "ops/linear.h"
#include "runtime/validate.h"

size_t retcl__ffn_workspace(size_t rows, size_t ffn_dim) {
  return 2 * rows * ffn_dim;
}

retcl_status retcl__ffn_enqueue(retcl_context *ctx,
                                const retcl_ffn_weights *w, size_t rows,
                                size_t d, size_t f, retcl_activation act,
                                retcl_buffer h, retcl_buffer work,
                                retcl_buffer y) {
  const retcl_buffer a = work, g = retcl_buf(work.mem, work.offset + rows * f);
  /* a and g lie back to back, as fc1 and gate do in w->fc1_gate. */
  const retcl_projection in[2] = {
      {w->fc1_gate, a, f, 1.0f},
      {retcl__sub(w->fc1_gate, f * d), g, f, 1.0f}};
  retcl_status st;
  if ((st = retcl__linear_many_enqueue(ctx, rows, d, h, 2, in)) ||
      (st = retcl__glu(ctx, rows * f, act, a, g)))
    return st;
  return retcl__linear_enqueue(ctx, rows, d, f, 1.0f, a, w->fc2,
                               0.0f, y);
}
