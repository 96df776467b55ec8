/* weights.h - where a model's trainable tensors live (weights.c): one flat
 * vector (fp32, or 16-bit for a model loaded with 16-bit storage; offsets
 * and totals count elements) holding every tensor back to back in
 * torchscale's state-dict
 * order, so a gradient, an optimizer moment or a saved checkpoint is one
 * buffer laid out the same way, and an optimizer step is one launch. */
#ifndef RETCL_MODEL_WEIGHTS_H
#define RETCL_MODEL_WEIGHTS_H

#include "retcl.h"

#define RETCL_TENSOR_NAME_CAP 96
#define RETCL_NO_TENSOR ((size_t)-1)

typedef struct retcl__tensor {
  char name[RETCL_TENSOR_NAME_CAP]; /* torchscale's state-dict name */
  size_t rows, cols;                /* cols == 0: a vector of rows */
  size_t offset;                    /* floats from the start of the vector */
} retcl__tensor;

/* Offsets of one layer's tensors. q, k, v, g follow each other, and so do
 * fc1 and gate: projections of one input then run as one launch. */
typedef struct retcl__layer_offsets {
  size_t q, k, v, g, o, ret_norm, fc1, gate, fc2, ffn_norm;
} retcl__layer_offsets;

typedef struct retcl__weight_layout {
  retcl__tensor *tensors; /* in order of offset */
  size_t count;
  size_t total;           /* floats */
  size_t embed, emb_norm, final_norm, out_proj; /* RETCL_NO_TENSOR if absent;
                                                   out_proj absent when tied */
  retcl__layer_offsets *layers;                 /* [cfg->layers] */
} retcl__weight_layout;

/* The layout of cfg's tensors (the config already validated). */
retcl_status retcl__weight_layout_make(retcl_context *ctx,
                                       const retcl_model_config *cfg,
                                       retcl__weight_layout *out);
/* The same for one process's part of a heads-split model: `heads` heads
 * (rows of q, k, v, g; columns of out_proj) and `ffn` FFN units (rows of
 * fc1 and gate; columns of fc2) per layer. */
retcl_status retcl__weight_layout_make_part(retcl_context *ctx,
                                            const retcl_model_config *cfg,
                                            size_t heads, size_t ffn,
                                            retcl__weight_layout *out);
void retcl__weight_layout_free(retcl__weight_layout *layout);

#endif
