/* safetensors_write.h - writing named fp32 tensors as a safetensors file
 * and the folder and config.json of a checkpoint (safetensors_write.c).
 * Internal. */
#ifndef RETCL_IO_SAFETENSORS_WRITE_H
#define RETCL_IO_SAFETENSORS_WRITE_H

#include "retcl.h"

#define RETCL__OUT_NAME_CAP 96

/* One tensor to write: its values from data, or, when data is NULL, from
 * the writer's fill callback (`kind` is the caller's, for the callback). */
typedef struct retcl__out_tensor {
  char name[RETCL__OUT_NAME_CAP];
  size_t rows, cols; /* cols == 0: a vector of rows */
  const float *data;
  int kind;
} retcl__out_tensor;

/* Element j of t, for tensors without data. */
typedef float (*retcl__fill_fn)(const retcl__out_tensor *t, size_t j,
                                void *user);

/* Write the tensors in order to path, converted to dtype (round to nearest
 * even); a failure removes the partial file. Messages name op or path. */
retcl_status retcl__safetensors_write(const char *op, const char *path,
                                      const retcl__out_tensor *tensors,
                                      size_t count, retcl_dtype dtype,
                                      retcl__fill_fn fill, void *user);

/* mkdir -p dir (IO error naming it when it cannot be made or is a file). */
retcl_status retcl__make_dirs(const char *dir);
/* dir + "/" + file, malloc'ed (NULL when out of memory). */
char *retcl__join_path(const char *dir, const char *file);
/* dir/config.json with torchscale's field names. */
retcl_status retcl__write_config(const char *op,
                                 const retcl_model_config *cfg,
                                 const char *dir);

#endif
