/* npy.h - a minimal writer of NumPy .npy files (format version 1.0), so
 * that `retcl run --logits` output loads with numpy.load() and needs no
 * converter. Only what the CLI writes: a C-order 2-D float32 array. */
#ifndef RETCL_NPY_H
#define RETCL_NPY_H

#include <stddef.h>

/* Write data[rows * cols] (row-major) to path as a '<f4' array of shape
 * (rows, cols). Returns 0, or an errno value (EINVAL for a header that
 * would not fit format 1.0) with nothing half-written left behind. */
int npy_write_f32_2d(const char *path, const float *data, size_t rows,
                     size_t cols);

#endif /* RETCL_NPY_H */
