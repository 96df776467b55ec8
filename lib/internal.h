/* internal.h - what the library's C files share; never installed. */
#ifndef RETCL_INTERNAL_H
#define RETCL_INTERNAL_H

#include "retcl.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Program families: one OpenCL program per cl/ file, built on first use. */
typedef enum retcl_program_id {
  RETCL_PROGRAM_ROTATION = 0,
  RETCL_PROGRAM_RETENTION,
  RETCL_PROGRAM_GROUP_NORM,
  RETCL_PROGRAM_MODEL,
  RETCL_PROGRAM_LINEAR,
  RETCL_PROGRAM_COUNT
} retcl_program_id;

/* Every kernel the library launches, with the program that holds it. */
typedef enum retcl_kernel_id {
  RETCL_KERNEL_ROTATE = 0,
  RETCL_KERNEL_RETENTION_CHUNK_STATE,
  RETCL_KERNEL_RETENTION_CHUNK_SCAN,
  RETCL_KERNEL_RETENTION_CHUNK_OUTPUT,
  RETCL_KERNEL_RETENTION_RECURRENT,
  RETCL_KERNEL_GROUP_NORM_GATE,
  RETCL_KERNEL_EMBED,
  RETCL_KERNEL_RESIDUAL,
  RETCL_KERNEL_GLU,
  RETCL_KERNEL_LINEAR_SKINNY_1,
  RETCL_KERNEL_LINEAR_SKINNY_2,
  RETCL_KERNEL_LINEAR_SKINNY_4,
  RETCL_KERNEL_LINEAR_SKINNY_8,
  RETCL_KERNEL_LINEAR_GROUPED_1,
  RETCL_KERNEL_LINEAR_GROUPED_2,
  RETCL_KERNEL_LINEAR_GROUPED_4,
  RETCL_KERNEL_LINEAR_GROUPED_8,
  RETCL_KERNEL_COUNT
} retcl_kernel_id;

/* Device scratch buffers, one per level that needs temporaries, so a call
 * at one level never clobbers the temporaries of the level that called it. */
typedef enum retcl_workspace_id {
  RETCL_WORKSPACE_RETENTION = 0, /* chunk states, recurrent state */
  RETCL_WORKSPACE_LAYER,         /* Q, K, V, G, retention output */
  RETCL_WORKSPACE_MODEL,         /* residual stream, FFN, tokens, logits */
  RETCL_WORKSPACE_COUNT
} retcl_workspace_id;

/* Device facts that choose tile shapes and access patterns. */
typedef struct retcl_device_traits {
  int is_cpu;              /* CL_DEVICE_TYPE_CPU: contiguous per-item ranges */
  size_t max_work_group;   /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
  size_t local_mem_bytes;  /* CL_DEVICE_LOCAL_MEM_SIZE */
  cl_uint compute_units;
  cl_uint vendor_id;
  /* Floats per column block in the retention kernels (RETCL_VW): 16 where
   * the device prefers 16-wide float vectors (AVX-512 CPUs), else 8. */
  unsigned vector_width;
} retcl_device_traits;

struct retcl_context {
  cl_context cl_ctx;
  cl_device_id device;
  cl_command_queue queue;
  retcl_device_traits traits;
  cl_program programs[RETCL_PROGRAM_COUNT];
  cl_kernel kernels[RETCL_KERNEL_COUNT];
  cl_mem workspace[RETCL_WORKSPACE_COUNT]; /* see retcl__workspace() */
  size_t workspace_bytes[RETCL_WORKSPACE_COUNT];
  retcl_log_fn log_fn;
  void *log_user;
  char error[8192];
};

/* Record a failure on ctx (or, for NULL, in this thread's creation slot),
 * send it to the log callback, and return status. */
retcl_status retcl__fail(retcl_context *ctx, retcl_status status,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void retcl__log(retcl_context *ctx, retcl_log_level level, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));
/* Clear the last error at the start of a public call. */
void retcl__clear_error(retcl_context *ctx);
/* Map an OpenCL error from `call` to a status with a message. */
retcl_status retcl__cl_fail(retcl_context *ctx, const char *call, cl_int err);

/* Device query helpers. */
void retcl__query_traits(cl_device_id device, retcl_device_traits *traits);

/* The kernel object for id, building its program on first use. */
retcl_status retcl__kernel(retcl_context *ctx, retcl_kernel_id id,
                           cl_kernel *out);
/* At least `bytes` of device memory in workspace `id`, reused across calls
 * (commands already enqueued keep a released buffer alive). */
retcl_status retcl__workspace(retcl_context *ctx, retcl_workspace_id id,
                              size_t bytes, cl_mem *out);
#define retcl__scratch(ctx, bytes, out) \
  retcl__workspace((ctx), RETCL_WORKSPACE_RETENTION, (bytes), (out))

/* Y[M,N] = alpha X[M,K] W[N,K]ᵀ + beta Y (row-major; W is a torch Linear
 * weight [out, in]) on the context's queue: CLBlast's SGEMM, or for few
 * rows with beta = 0 (decoding) RetCL's weight-streaming kernel. */
retcl_status retcl__gemm_xwt(retcl_context *ctx, size_t M, size_t N, size_t K,
                             float alpha, retcl_buffer X, retcl_buffer W,
                             float beta, retcl_buffer Y);
/* Ops made of several enqueues (events.c): a marker that makes the queue
 * wait for the caller's n events (none: nothing enqueued), and the
 * caller's event as a marker after everything enqueued so far (event
 * NULL: nothing enqueued). */
retcl_status retcl__wait_for(retcl_context *ctx, cl_uint n,
                             const cl_event *list);
retcl_status retcl__signal_done(retcl_context *ctx, cl_event *event);
/* y_i = alpha_i X w_iᵀ for projections of one X [M,K] (retcl_linear_many,
 * unchecked): consecutive ones of the same n whose weights and outputs lie
 * back to back run as one launch (up to 4). */
retcl_status retcl__gemm_many(retcl_context *ctx, size_t M, size_t K,
                              retcl_buffer X, size_t count,
                              const retcl_projection *proj);

/* The desc checks of retcl_retention, for callers that must fail before
 * enqueueing their own work. */
retcl_status retcl__retention_check(retcl_context *ctx,
                                    const retcl_retention_desc *d,
                                    int has_state_in);

/* Head dimension a rotation plan was made for. */
size_t retcl__rotation_dim(const retcl_rotation *rot);

/* Elementwise model kernels (lib/elementwise.c). */
/* out[r, :] = scale * table[tokens[r], :] for r < rows, width floats each */
retcl_status retcl__embed(retcl_context *ctx, cl_mem tokens, size_t rows,
                          retcl_buffer table, size_t width, float scale,
                          retcl_buffer out);
/* x = alpha * x + y over n floats */
retcl_status retcl__residual(retcl_context *ctx, size_t n, float alpha,
                             retcl_buffer x, retcl_buffer y);
/* a = act(a) * g over n floats (act: retcl_activation) */
retcl_status retcl__glu(retcl_context *ctx, size_t n, retcl_activation act,
                        retcl_buffer a, retcl_buffer g);

/* ---- argument validation (validate.c) ---------------------------------- */

/* ctx non-NULL and a desc pointer non-NULL. */
retcl_status retcl__check_ctx(retcl_context *ctx);
/* A required buffer must hold offset + elems floats in ctx's cl_context. */
retcl_status retcl__check_buffer(retcl_context *ctx, const char *op,
                                 const char *name, retcl_buffer buf,
                                 size_t elems);
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
/* Two ranges of floats in the same cl_mem overlap. */
int retcl__overlaps(retcl_buffer a, size_t a_elems, retcl_buffer b,
                    size_t b_elems);

/* Strides (in floats) of a [B,T,H,D] tensor in the given layout. */
typedef struct retcl_strides {
  cl_uint batch, token, head;
} retcl_strides;
retcl_strides retcl__strides(retcl_layout layout, size_t tokens, size_t heads,
                             size_t dim);

/* Largest element index the kernels may address; they use 32-bit indices. */
#define RETCL_MAX_INDEX ((size_t)UINT32_MAX)

/* Round up to a multiple of m. */
static inline size_t retcl__round_up(size_t x, size_t m) {
  return (x + m - 1) / m * m;
}

/* Set a kernel argument, recording which one failed. */
#define RETCL_ARG(ctx, kernel, index, value)                                 \
  do {                                                                       \
    cl_int arg_err_ = clSetKernelArg((kernel), (index), sizeof(value),       \
                                     &(value));                              \
    if (arg_err_ != CL_SUCCESS)                                              \
      return retcl__cl_fail((ctx), "clSetKernelArg(" #value ")", arg_err_);  \
  } while (0)

/* Embedded OpenCL C sources (generated from cl/ at build time). */
extern const char retcl_cl_common[];
extern const char retcl_cl_rotation[];
extern const char retcl_cl_retention[];
extern const char retcl_cl_group_norm[];
extern const char retcl_cl_model[];
extern const char retcl_cl_linear[];

#endif /* RETCL_INTERNAL_H */
