/* checkpoint.h - reading a torchscale RetNet checkpoint folder into host
 * memory (config.json + model.safetensors). Internal. */
#ifndef RETCL_IO_CHECKPOINT_H
#define RETCL_IO_CHECKPOINT_H

#include "retcl.h"

/* Which names a checkpoint's tensors carry (docs/design.md §1.6):
 * torchscale's state dict (optionally under "decoder."), or the Hugging
 * Face-style layout of the community ports ("model." prefix,
 * lm_head.weight; checkpoint.c lists the aliases). */
typedef enum retcl__ckpt_layout {
  RETCL__LAYOUT_TORCHSCALE = 0,
  RETCL__LAYOUT_HF,
  RETCL__LAYOUT_COUNT
} retcl__ckpt_layout;

/* fp32 host copies of one decoder layer's weights, Linear weights [out,in]. */
typedef struct retcl__layer_host {
  float *wq, *wk;     /* [d, d] */
  float *wv, *wg;     /* [dv, d] */
  float *wo;          /* [d, dv] */
  float *ret_norm;    /* [d]  retention_layer_norm.weight */
  float *fc1, *gate;  /* [ffn, d] */
  float *fc2;         /* [d, ffn] */
  float *ffn_norm;    /* [d]  final_layer_norm.weight */
} retcl__layer_host;

/* The part of every layer one process of a heads-split model reads
 * (docs/design.md §1.8): heads [head0, head0 + heads) (rows of q, k, v, g,
 * columns of out_proj) and FFN units [ffn0, ffn0 + ffn) (rows of fc1 and
 * gate, columns of fc2). heads == 0: the whole layer. */
typedef struct retcl__ckpt_part {
  size_t head0, heads, ffn0, ffn;
} retcl__ckpt_part;

typedef struct retcl__checkpoint {
  retcl_model_config cfg;
  retcl__ckpt_part part; /* what `layers` hold (their shapes shrink to it) */
  float *embed;      /* [V, d] embed_tokens.weight */
  float *emb_norm;   /* [d] layernorm_embedding.weight, NULL unless enabled */
  float *final_norm; /* [d] layer_norm.weight */
  float *out_proj;   /* [V, d] output_projection.weight, NULL when shared */
  float *angle;      /* [Dk] retnet_rel_pos.angle (θ_i twice), or NULL */
  float *decay;      /* [H] retnet_rel_pos.decay (log γ), or NULL */
  retcl__layer_host *layers; /* [L] */
  retcl__ckpt_layout layout; /* detected from the tensor names */
  retcl_dtype file_dtype;    /* the file's type: embed_tokens.weight's (the
                                data above is widened to fp32 exactly) */
} retcl__checkpoint;

/* Parse dir/config.json and dir/model.safetensors, in either layout (the
 * tensor names decide; a file whose names fit neither, or that holds a
 * tensor in the detected layout's weight namespace with no place in it, is
 * FORMAT naming the first such tensor in name order). Every failure
 * returns
 * IO or FORMAT (or INVALID_SIZE for a config the kernels cannot run) with
 * a message naming the file and the field or tensor; nothing leaks. ctx
 * may be NULL (messages then go to retcl_last_error(NULL)). */
retcl_status retcl__checkpoint_read(retcl_context *ctx, const char *dir,
                                    retcl__checkpoint *out);
/* The same reading only `part` of each layer from the file (part NULL or
 * heads 0: all of it); the file's shapes are still checked in full. */
retcl_status retcl__checkpoint_read_part(retcl_context *ctx, const char *dir,
                                         const retcl__ckpt_part *part,
                                         retcl__checkpoint *out);
/* dir/config.json alone, parsed and validated. */
retcl_status retcl__checkpoint_read_config(retcl_context *ctx, const char *dir,
                                           retcl_model_config *cfg);
void retcl__checkpoint_free(retcl__checkpoint *ck);

#endif
