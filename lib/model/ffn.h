/* ffn.h - the GLU feed-forward block of a RetNet layer (ffn.c,
 * docs/design.md §1.6): y = fc2(act(fc1 h) ⊙ gate h). */
#ifndef RETCL_MODEL_FFN_H
#define RETCL_MODEL_FFN_H

#include "retcl.h"

/* fc1 and gate stacked (fc1 first), so the two projections of h run as
 * one launch when decoding; fc2 [d, f]. */
typedef struct retcl_ffn_weights {
  retcl_buffer fc1_gate; /* [2f, d] */
  retcl_buffer fc2;      /* [d, f] */
} retcl_ffn_weights;

/* Floats of workspace a call over `rows` rows needs (a and g, [rows, f]). */
size_t retcl__ffn_workspace(size_t rows, size_t ffn_dim);

/* y[rows, d] = FFN(h[rows, d]) using `work` (retcl__ffn_workspace floats);
 * everything checked and prepared (linear and elementwise programs). */
retcl_status retcl__ffn_enqueue(retcl_context *ctx,
                                const retcl_ffn_weights *w, size_t rows,
                                size_t d, size_t ffn_dim, retcl_activation act,
                                retcl_buffer h, retcl_buffer work,
                                retcl_buffer y);

#endif
