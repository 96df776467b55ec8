/* ref_checkpoint.h - a reference model written as a checkpoint folder
 * (config.json + model.safetensors), by hand from the formats'
 * descriptions and apart from the library's writer, so that what the
 * library loads is checked against weights it did not produce. Damage
 * modes (for loader tests) break one thing each. */
#ifndef RETCL_REF_CHECKPOINT_H
#define RETCL_REF_CHECKPOINT_H

#include "ref_model.h"

/* Ways to damage a checkpoint on purpose (tests of the loader). */
typedef enum ref_ckpt_damage {
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
} ref_ckpt_damage;

/* Write m as dir/config.json + dir/model.safetensors (dir is created if
 * missing) in dtype ("F32", "F16" or "BF16"), damaged as asked. Returns 0
 * on success, -1 on an I/O error. */
int ref_checkpoint_write(const ref_model *m, const char *dir,
                         const char *dtype, ref_ckpt_damage damage);

/* Remove what ref_checkpoint_write (or retcl_checkpoint_write_random)
 * puts in dir: config.json, model.safetensors, then dir itself if that
 * leaves it empty. */
void ref_checkpoint_remove(const char *dir);

#endif
