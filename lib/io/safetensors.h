/* safetensors.h - a bounds-checked reader of safetensors files, and the
 * fp16/bf16 conversions (safetensors.c). Internal. */
#ifndef RETCL_IO_SAFETENSORS_H
#define RETCL_IO_SAFETENSORS_H

#include "retcl.h"

#include <stdio.h>

/* Element types we convert to fp32; anything else is kept as UNKNOWN with
 * its name so that using it gives a message naming tensor and dtype, while
 * an unused odd tensor (an int64 counter, say) does not stop a load. */
typedef enum retcl__st_dtype {
  RETCL__ST_F32 = 0,
  RETCL__ST_F16,
  RETCL__ST_BF16,
  RETCL__ST_UNKNOWN
} retcl__st_dtype;

/* Rank limit for stored shapes; larger ranks are a FORMAT error. */
#define RETCL__ST_MAX_RANK 8

typedef struct retcl__st_tensor {
  char *name;             /* without a leading "decoder." */
  retcl__st_dtype dtype;
  char dtype_name[16];    /* as written in the file, for messages */
  size_t rank;
  size_t shape[RETCL__ST_MAX_RANK];
  size_t elems;           /* product of shape */
  uint64_t offset;        /* absolute file offset of the first byte */
  uint64_t bytes;         /* end - begin */
} retcl__st_tensor;

typedef struct retcl__safetensors {
  FILE *file;
  char *path;             /* for messages */
  uint64_t file_size;
  retcl__st_tensor *tensors; /* sorted by name */
  size_t count;
} retcl__safetensors;

/* Open path and validate its whole header (sizes, offsets, names). On
 * failure st is left closed (nothing to free). */
retcl_status retcl__st_open(retcl_context *ctx, const char *path,
                            retcl__safetensors *st);
/* The same for an already open seekable stream (an fmemopen buffer in the
 * fuzz harness), named path in messages; st owns file from here on, on
 * failure too. */
retcl_status retcl__st_open_stream(retcl_context *ctx, FILE *file,
                                   const char *path, retcl__safetensors *st);
void retcl__st_close(retcl__safetensors *st);
/* The entry called name (after prefix stripping), or NULL. */
const retcl__st_tensor *retcl__st_find(const retcl__safetensors *st,
                                       const char *name);
/* Read t (a tensor of st) into dst[t->elems] as fp32. */
retcl_status retcl__st_read_f32(retcl_context *ctx,
                                const retcl__safetensors *st,
                                const retcl__st_tensor *t, float *dst);
/* Read rows [row0, row0 + rows) and columns [col0, col0 + ncols) of t, a
 * matrix of `cols` columns, into dst[rows * ncols] as fp32 (a split
 * model's slice: only those bytes are read from the file). */
retcl_status retcl__st_read_window(retcl_context *ctx,
                                   const retcl__safetensors *st,
                                   const retcl__st_tensor *t, size_t cols,
                                   size_t row0, size_t rows, size_t col0,
                                   size_t ncols, float *dst);

/* Exact widening conversions (subnormals, inf and nan included) and
 * round-to-nearest-even narrowing ones. */
float retcl__f16_to_f32(uint16_t h);
float retcl__bf16_to_f32(uint16_t b);
uint16_t retcl__f32_to_f16(float f);
uint16_t retcl__f32_to_bf16(float f);

#endif
