/* validate.c - argument checks shared by every op. Each check names the op
 * and the argument in its message, so a caller can fix the call. */
#include "runtime/validate.h"

#include "runtime/context.h"
#include "runtime/status.h"

#include <stdint.h>

retcl_status retcl__check_ctx(retcl_context *ctx) {
  if (!ctx) return RETCL_ERROR_INVALID_ARGUMENT; /* nowhere to put a message */
  retcl__clear_error(ctx);
  return RETCL_SUCCESS;
}

size_t retcl__mul(size_t a, size_t b) {
  if (a != 0 && b > SIZE_MAX / a) return SIZE_MAX;
  return a * b;
}

static const char *type_name(retcl_dtype t) {
  return t == RETCL_DTYPE_F16 ? "f16" : t == RETCL_DTYPE_BF16 ? "bf16" : "f32";
}

size_t retcl__dtype_size(retcl_dtype t) {
  return t == RETCL_DTYPE_F32 ? sizeof(float) : 2;
}

/* mem, owner and size of a buffer of elements of esize bytes. */
static retcl_status check_storage(retcl_context *ctx, const char *op,
                                  const char *name, retcl_buffer buf,
                                  size_t elems, size_t esize) {
  if (!buf.mem)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", op,
                       name);
  cl_context owner = NULL;
  size_t bytes = 0;
  cl_int err =
      clGetMemObjectInfo(buf.mem, CL_MEM_CONTEXT, sizeof owner, &owner, NULL);
  if (err == CL_SUCCESS)
    err = clGetMemObjectInfo(buf.mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
  if (err != CL_SUCCESS)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: %s is not a valid cl_mem (%s)", op, name,
                       retcl_cl_error_name(err));
  if (owner != ctx->cl_ctx)
    return retcl__fail(ctx, RETCL_ERROR_CONTEXT_MISMATCH,
                       "%s: %s belongs to another cl_context", op, name);
  const char *unit = esize == sizeof(float) ? "floats" : "16-bit values";
  size_t need = elems > SIZE_MAX - buf.offset ? SIZE_MAX : buf.offset + elems;
  if (need > RETCL_MAX_INDEX)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: %s spans %zu %s (offset %zu + %zu); the limit "
                       "is %zu",
                       op, name, need, unit, buf.offset, elems,
                       RETCL_MAX_INDEX);
  if (need > bytes / esize)
    return retcl__fail(ctx, RETCL_ERROR_BUFFER_TOO_SMALL,
                       "%s: %s holds %zu %s but offset %zu + %zu needed = "
                       "%zu",
                       op, name, bytes / esize, unit, buf.offset, elems, need);
  return RETCL_SUCCESS;
}

retcl_status retcl__check_buffer(retcl_context *ctx, const char *op,
                                 const char *name, retcl_buffer buf,
                                 size_t elems) {
  if (buf.mem && buf.type != RETCL_DTYPE_F32) {
    if (buf.type == RETCL_DTYPE_F16 || buf.type == RETCL_DTYPE_BF16)
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: %s is %s; only weights may be 16-bit", op, name,
                         type_name(buf.type));
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: %s has type %d, not a retcl_dtype", op, name,
                       (int)buf.type);
  }
  return check_storage(ctx, op, name, buf, elems, sizeof(float));
}

retcl_status retcl__check_weight(retcl_context *ctx, const char *op,
                                 const char *name, retcl_buffer buf,
                                 size_t elems) {
  if (buf.type != RETCL_DTYPE_F32 && buf.type != RETCL_DTYPE_F16 &&
      buf.type != RETCL_DTYPE_BF16)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: %s has type %d, not a retcl_dtype", op, name,
                       (int)buf.type);
  return check_storage(ctx, op, name, buf, elems, retcl__dtype_size(buf.type));
}

retcl_status retcl__check_optional_weight(retcl_context *ctx, const char *op,
                                          const char *name, retcl_buffer buf,
                                          size_t elems) {
  if (!buf.mem) return RETCL_SUCCESS;
  return retcl__check_weight(ctx, op, name, buf, elems);
}

retcl_status retcl__check_optional_buffer(retcl_context *ctx, const char *op,
                                          const char *name, retcl_buffer buf,
                                          size_t elems) {
  if (!buf.mem) return RETCL_SUCCESS;
  return retcl__check_buffer(ctx, op, name, buf, elems);
}

retcl_status retcl__check_dim(retcl_context *ctx, const char *op,
                              const char *name, size_t value, size_t lo,
                              size_t hi) {
  if (value < lo || value > hi)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: %s = %zu is outside the supported range [%zu, %zu]",
                       op, name, value, lo, hi);
  return RETCL_SUCCESS;
}

retcl_status retcl__check_wait_list(retcl_context *ctx, const char *op,
                                    cl_uint n, const cl_event *list) {
  if ((n == 0) != (list == NULL))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: num_events_in_wait_list is %u but event_wait_list "
                       "is %s",
                       op, n, list ? "not NULL" : "NULL");
  return RETCL_SUCCESS;
}

int retcl__overlaps(retcl_buffer a, size_t a_elems, retcl_buffer b,
                    size_t b_elems) {
  if (!a.mem || a.mem != b.mem) return 0;
  /* In bytes: a weight may be 16-bit, the other buffer fp32. */
  const size_t ea = retcl__dtype_size(a.type), eb = retcl__dtype_size(b.type);
  const size_t a0 = a.offset * ea, a1 = (a.offset + a_elems) * ea,
               b0 = b.offset * eb, b1 = (b.offset + b_elems) * eb;
  return a0 < b1 && b0 < a1;
}

retcl_strides retcl__strides(retcl_layout layout, size_t tokens, size_t heads,
                             size_t dim) {
  retcl_strides s;
  if (layout == RETCL_LAYOUT_HEAD_MAJOR) {
    s.token = (cl_uint)dim;
    s.head = (cl_uint)(tokens * dim);
  } else {
    s.token = (cl_uint)(heads * dim);
    s.head = (cl_uint)dim;
  }
  s.batch = (cl_uint)(tokens * heads * dim);
  return s;
}
