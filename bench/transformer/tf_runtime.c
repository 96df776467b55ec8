/* tf_runtime.c - the baseline's own OpenCL plumbing: errors into the
 * caller's buffer, device traits, the kernel program (built once per model,
 * specialised to its head_dim), device buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_internal.h"

extern const char tf_cl_common[];
extern const char tf_cl_elementwise[];
extern const char tf_cl_attention[];

static const char *const kernel_names[TF_K_COUNT] = {
    [TF_K_EMBED] = "tf_embed",
    [TF_K_RESIDUAL] = "tf_residual",
    [TF_K_GLU] = "tf_glu",
    [TF_K_KV_APPEND] = "tf_kv_append",
    [TF_K_DECODE_PARTIAL] = "tf_attn_decode_partial",
    [TF_K_DECODE_COMBINE] = "tf_attn_decode_combine",
    [TF_K_PREFILL] = "tf_attn_prefill",
};

int tf_fail(tf_err *e, const char *fmt, ...) {
  if (e && e->msg && e->len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, e->len, fmt, ap);
    va_end(ap);
  }
  return -1;
}

int tf_cl_fail(tf_err *e, const char *what, cl_int code) {
  return tf_fail(e, "%s failed: %s (%d)", what, retcl_cl_error_name(code),
                 (int)code);
}

int tf_retcl_fail(tf_err *e, retcl_context *ctx, const char *what,
                  retcl_status st) {
  return tf_fail(e, "%s: %s: %s", what, retcl_status_string(st),
                 retcl_last_error(ctx));
}

/* Largest of 16, 8, 4, 2 that divides head_dim and is at most cap. */
static cl_uint head_vector_width(size_t head_dim, cl_uint cap) {
  for (cl_uint w = 16; w > 2; w /= 2)
    if (w <= cap && head_dim % w == 0) return w;
  return 2;
}

/* Device type (RETCL_KERNEL_PATHS=cpu|gpu overrides it, as it does for
 * RetCL's kernels, so the GPU patterns are testable on PoCL too), units,
 * vector widths, and tile sizes from the local memory size. */
static void query_device(tf_model *m, cl_device_id dev) {
  cl_device_type type = 0;
  cl_uint units = 1, pref = 0;
  cl_ulong local = 0;
  clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT, sizeof pref,
                  &pref, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local, &local, NULL);
  tf_device *d = &m->dev;
  d->is_cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
  const char *paths = getenv("RETCL_KERNEL_PATHS");
  if (paths && !strcmp(paths, "gpu")) d->is_cpu = 0;
  if (paths && !strcmp(paths, "cpu")) d->is_cpu = 1;
  d->units = units ? units : 1;
  /* 16-wide where the CPU has 512-bit vectors, else 8 (as RetCL picks). */
  d->lvw = d->is_cpu && pref >= 16 ? 16 : 8;
  d->hvw = head_vector_width(m->head_dim, d->lvw);
  /* CPU prefill: each row costs 2 * head_dim floats of accumulators and
   * query; 8 rows where that stays small, else 4 (spills cost more than
   * the extra key reuse gains). */
  d->cpu_rows = m->head_dim <= 64 ? 8 : 4;
  /* GPU prefill: q tile [16, Dh] plus key and value tiles [keys, Dh] plus
   * scores [16, keys] within 28 KiB (or the device's local memory less a
   * margin, if smaller), at most 64 keys. */
  size_t budget = local > 4096 ? (size_t)local - 4096 : 2048;
  if (budget > 28 * 1024) budget = 28 * 1024;
  const size_t fl = budget / sizeof(float), dh = m->head_dim,
               rows = TF_GPU_PREFILL_ROWS;
  size_t keys = fl > rows * dh + 3 * rows
                    ? (fl - rows * dh - 3 * rows) / (2 * dh + rows)
                    : 1;
  d->gpu_keys = (cl_uint)(keys < 1 ? 1 : keys > 64 ? 64 : keys);
}

int tf_runtime_init(tf_model *m, tf_err *e) {
  cl_device_id dev = retcl_context_device(m->ctx);
  query_device(m, dev);
  const tf_device *d = &m->dev;
  const char *src[] = {tf_cl_common, tf_cl_elementwise, tf_cl_attention};
  cl_int err = CL_SUCCESS;
  m->program = clCreateProgramWithSource(m->clctx, 3, src, NULL, &err);
  if (!m->program) return tf_cl_fail(e, "clCreateProgramWithSource", err);
  /* No fast-math: the baseline is checked against a double reference to
   * fp32 rounding, as RetCL's kernels are. */
  char options[512];
  snprintf(options, sizeof options,
           "-cl-std=CL1.2 -DTF_CPU=%d -DTF_LVW=%u -DTF_DH=%zu -DTF_HVW=%u "
           "-DTF_WG=%d -DTF_DCHUNK=%d -DTF_PQ=%u -DTF_GQ=%d -DTF_GKB=%u",
           d->is_cpu, d->lvw, m->head_dim, d->hvw, TF_GPU_WG,
           TF_GPU_DECODE_CHUNK, d->cpu_rows, TF_GPU_PREFILL_ROWS, d->gpu_keys);
  err = clBuildProgram(m->program, 1, &dev, options, NULL, NULL);
  if (err != CL_SUCCESS) {
    char log[2048] = "";
    clGetProgramBuildInfo(m->program, dev, CL_PROGRAM_BUILD_LOG,
                          sizeof log - 1, log, NULL);
    return tf_fail(e, "building the transformer kernels (%s) failed (%d): %s",
                   options, (int)err, log);
  }
  for (int i = 0; i < TF_K_COUNT; ++i) {
    m->kernels[i] = clCreateKernel(m->program, kernel_names[i], &err);
    if (!m->kernels[i]) return tf_cl_fail(e, kernel_names[i], err);
  }
  return 0;
}

void tf_runtime_release(tf_model *m) {
  for (int i = 0; i < TF_K_COUNT; ++i)
    if (m->kernels[i]) clReleaseKernel(m->kernels[i]);
  if (m->program) clReleaseProgram(m->program);
}

int tf_buffer(tf_model *m, size_t bytes, const void *host, cl_mem *out,
              tf_err *e) {
  cl_int err = CL_SUCCESS;
  cl_mem_flags flags = CL_MEM_READ_WRITE | (host ? CL_MEM_COPY_HOST_PTR : 0);
  *out = clCreateBuffer(m->clctx, flags, bytes, (void *)host, &err);
  if (!*out) {
    char what[96];
    snprintf(what, sizeof what, "clCreateBuffer(%zu bytes)", bytes);
    return tf_cl_fail(e, what, err);
  }
  return 0;
}

int tf_grow(tf_model *m, cl_mem *buf, size_t *have, size_t bytes, tf_err *e) {
  if (*buf && *have >= bytes) return 0;
  if (*buf) clReleaseMemObject(*buf); /* freed once queued work is done */
  *buf = NULL;
  *have = 0;
  if (tf_buffer(m, bytes, NULL, buf, e)) return -1;
  *have = bytes;
  return 0;
}
