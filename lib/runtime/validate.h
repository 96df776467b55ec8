/* validate.h - argument checks shared by every op (validate.c). Each check
 * names the op and the argument in its message, so a caller can fix the
 * call. Checks are pure: they enqueue and allocate nothing. */
#ifndef RETCL_RUNTIME_VALIDATE_H
#define RETCL_RUNTIME_VALIDATE_H

#include "retcl.h"

/* Largest element index the kernels may address; they use 32-bit indices. */
#define RETCL_MAX_INDEX ((size_t)UINT32_MAX)

/* ctx non-NULL; clears its last error (the start of every public call). */
retcl_status retcl__check_ctx(retcl_context *ctx);
/* A required buffer must hold offset + elems floats in ctx's cl_context.
 * Two clGetMemObjectInfo queries; composite calls check each caller buffer
 * once, at entry. */
retcl_status retcl__check_buffer(retcl_context *ctx, const char *op,
                                 const char *name, retcl_buffer buf,
                                 size_t elems);
/* A weight argument: F32, F16 or BF16 storage (retcl__check_buffer
 * rejects 16-bit buffers, naming them); offset + elems elements of its
 * type. */
retcl_status retcl__check_weight(retcl_context *ctx, const char *op,
                                 const char *name, retcl_buffer buf,
                                 size_t elems);
retcl_status retcl__check_optional_weight(retcl_context *ctx, const char *op,
                                          const char *name, retcl_buffer buf,
                                          size_t elems);
/* Bytes of one element of type t. */
size_t retcl__dtype_size(retcl_dtype t);
/* buf moved on by delta elements, its type kept. */
static inline retcl_buffer retcl__sub(retcl_buffer buf, size_t delta) {
  buf.offset += delta;
  return buf;
}
/* Same for an optional one: absent (mem == NULL) is fine. */
retcl_status retcl__check_optional_buffer(retcl_context *ctx, const char *op,
                                          const char *name, retcl_buffer buf,
                                          size_t elems);
/* A dimension within [lo, hi]. */
retcl_status retcl__check_dim(retcl_context *ctx, const char *op,
                              const char *name, size_t value, size_t lo,
                              size_t hi);
/* Wait list: count and pointer must agree. */
retcl_status retcl__check_wait_list(retcl_context *ctx, const char *op,
                                    cl_uint n, const cl_event *list);
/* Product of sizes, or SIZE_MAX on overflow. */
size_t retcl__mul(size_t a, size_t b);
/* Two ranges of elements (each of its buffer's type) in the same cl_mem
 * overlap. */
int retcl__overlaps(retcl_buffer a, size_t a_elems, retcl_buffer b,
                    size_t b_elems);

/* Strides (in floats) of a [B,T,H,D] tensor in the given layout
 * (docs/design.md §2). */
typedef struct retcl_strides {
  cl_uint batch, token, head;
} retcl_strides;
retcl_strides retcl__strides(retcl_layout layout, size_t tokens, size_t heads,
                             size_t dim);

/* Round up to a multiple of m. */
static inline size_t retcl__round_up(size_t x, size_t m) {
  return (x + m - 1) / m * m;
}

#endif
