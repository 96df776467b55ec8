/* limits.h - sizes the kernels accept, written once: the ops check calls
 * against them, retcl_model_load checks config.json against them, and the
 * parameter record's ranges use them (docs/design.md §4). */
#ifndef RETCL_OPS_LIMITS_H
#define RETCL_OPS_LIMITS_H

/* Key and value dims per head (the kernels keep a row of a state tile in
 * private memory). */
#define RETCL_MAX_HEAD_DIM 1024
/* Heads of a layer, and its model and value widths. */
#define RETCL_MAX_HEADS 4096
#define RETCL_MAX_EMBED_DIM ((size_t)1 << 20)
/* Tokens per chunk of the chunkwise algorithm. */
#define RETCL_MAX_CHUNK 1024
/* Rotation positions: pos0 + tokens <= 2^32 (the angle is exact there). */
#define RETCL_MAX_POSITION ((size_t)1 << 32)

#endif
