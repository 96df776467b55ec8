/* ref_model.h - a RetNet decoder in double precision for the model tests,
 * written from DESIGN 1.6 independently of the library, plus helpers that
 * make random weights and write them as a checkpoint folder. */
#ifndef RETCL_REF_MODEL_H
#define RETCL_REF_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "retcl.h"

typedef struct ref_layer {
  float *wq, *wk, *wv, *wg, *wo; /* Linear weights [out, in] */
  float *ret_norm;               /* [d] */
  float *fc1, *fc2, *gate;       /* [ffn,d], [d,ffn], [ffn,d] */
  float *ffn_norm;               /* [d] */
} ref_layer;

typedef struct ref_model {
  retcl_model_config cfg;
  float *embed;      /* [V, d] */
  float *emb_norm;   /* [d] or NULL (cfg.layernorm_embedding == 0) */
  float *final_norm; /* [d] */
  float *out_proj;   /* [V, d] or NULL when cfg.share_embed */
  float *angle;      /* [Dk] (θ_i twice per pair) or NULL: formula of 1.1 */
  float *decay;      /* [H] log γ or NULL: formula of 1.2 */
  ref_layer *layers;
} ref_model;

/* Random weights (uniform ±1/sqrt(fan_in), norm weights 1 ± 0.1) from the
 * test RNG; with_rel_pos also fills angle/decay with the default values. */
void ref_model_random(ref_model *m, const retcl_model_config *cfg,
                      int with_rel_pos);
void ref_model_free(ref_model *m);

/* Logits [B, T, V] of tokens [B, T] in double, with torchscale's
 * retention form of the given algorithm (DESIGN 1.4; chunk = chunk size
 * for RETCL_ALGO_CHUNKWISE). */
void ref_model_forward(const ref_model *m, const int32_t *tokens, size_t B,
                       size_t T, retcl_algorithm algo, size_t chunk,
                       double *logits);

/* Ways to damage a checkpoint on purpose (tests of the loader). */
typedef enum ckpt_damage {
  CKPT_OK = 0,
  CKPT_MISSING_TENSOR,      /* drop layers.0.ffn.fc2.weight */
  CKPT_WRONG_SHAPE,         /* layers.0.retention.q_proj.weight [d, d+1] */
  CKPT_UNKNOWN_DTYPE,       /* one tensor declared "F64" */
  CKPT_TRUNCATED,           /* file cut in the middle of the data */
  CKPT_BAD_JSON_HEADER,     /* header is not JSON */
  CKPT_OFFSETS_OUT_OF_FILE, /* data_offsets past the end of the data */
  CKPT_HEADER_SIZE_LIES,    /* header length larger than the file */
  CKPT_BAD_CONFIG_JSON,     /* config.json is not JSON */
  CKPT_CONFIG_MISSING_FIELD,/* config.json without decoder_layers... */
  CKPT_DECODER_PREFIX       /* valid, names prefixed with "decoder." */
} ckpt_damage;

/* Write m as dir/config.json + dir/model.safetensors in dtype ("F32",
 * "F16" or "BF16"), damaged as asked. Returns 0 on success. */
int ckpt_write(const ref_model *m, const char *dir, const char *dtype,
               ckpt_damage damage);

#endif
