/* tf_internal.h - what the baseline's C files share: the model and cache
 * structs, the compiled kernels and their launch helpers. Not installed;
 * users see transformer.h only. */
#ifndef RETCL_BENCH_TF_INTERNAL_H
#define RETCL_BENCH_TF_INTERNAL_H

#include <stdarg.h>

#include "transformer.h"

/* Work-group size of the GPU attention kernels (TF_WG in the .cl files). */
#define TF_GPU_WG 64
/* GPU decode: positions per work-group (TF_DCHUNK). */
#define TF_GPU_DECODE_CHUNK 256
/* GPU prefill: query rows per work-group (TF_GQ). */
#define TF_GPU_PREFILL_ROWS 16
/* CPU attention kernels: work-items per work-group. */
#define TF_CPU_GROUP 8
/* CPU decode: shortest chunk worth a work-item of its own. */
#define TF_CPU_MIN_CHUNK 128

typedef enum tf_kernel_id {
  TF_K_EMBED,
  TF_K_RESIDUAL,
  TF_K_GLU,
  TF_K_KV_APPEND,
  TF_K_DECODE_PARTIAL,
  TF_K_DECODE_COMBINE,
  TF_K_PREFILL,
  TF_K_COUNT
} tf_kernel_id;

/* Where a failure message goes: the caller's err buffer. */
typedef struct tf_err {
  char *msg;
  size_t len;
} tf_err;

/* Writes the message (if there is a buffer) and returns -1. */
int tf_fail(tf_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "what: CL_NAME (code)" for a failed OpenCL call; returns -1. */
int tf_cl_fail(tf_err *e, const char *what, cl_int code);
/* A failed RetCL call: its status and the context's message; returns -1. */
int tf_retcl_fail(tf_err *e, retcl_context *ctx, const char *what,
                  retcl_status st);

/* What the kernels are specialised for, read from the device at creation. */
typedef struct tf_device {
  int is_cpu;          /* contiguous per-item ranges instead of GPU tiles */
  cl_uint units;       /* compute units */
  cl_uint lvw, hvw;    /* vector widths of elementwise loops and along head_dim */
  cl_uint gpu_keys;    /* GPU prefill: keys per local-memory tile */
  cl_uint cpu_rows;    /* CPU prefill: query rows per work-item */
} tf_device;

typedef struct tf_layer_dev {
  /* wqkv stacks Wq, Wk, Wv and fc1_gate stacks fc1, gate, as RetCL's model
   * stacks its Q, K, V, G and FFN weights: retcl_linear_many then runs
   * each stack as one launch when decoding. */
  cl_mem attn_norm, wqkv, wo, ffn_norm, fc1_gate, fc2;
} tf_layer_dev;

struct tf_model {
  retcl_context *ctx;
  cl_context clctx;
  cl_command_queue queue;
  tf_config cfg;
  size_t head_dim;
  tf_device dev;
  cl_program program;
  cl_kernel kernels[TF_K_COUNT];
  retcl_rotation *rot; /* RoPE θ_i = 10000^(-2i/head_dim) */
  cl_mem embed, final_norm, out_proj;
  tf_layer_dev *layers;
  size_t weight_bytes;
  /* Temporaries, grown to the largest call: floats and token ids. */
  cl_mem work, tokens;
  size_t work_bytes, token_bytes;
};

/* Per layer K and V, head-major [batch, H, cap, head_dim]: a (sequence,
 * head) reads its keys as one contiguous stretch during attention. */
struct tf_cache {
  tf_model *model;
  size_t batch, position, cap;
  cl_mem *k, *v; /* [layers] */
};

/* tf_runtime.c: device traits, kernel program, buffers. */
int tf_runtime_init(tf_model *m, tf_err *e);
void tf_runtime_release(tf_model *m);
/* A device buffer of bytes (copied from host if not NULL). */
int tf_buffer(tf_model *m, size_t bytes, const void *host, cl_mem *out,
              tf_err *e);
/* Make *buf at least bytes large (old contents are not kept). */
int tf_grow(tf_model *m, cl_mem *buf, size_t *have, size_t bytes, tf_err *e);

/* tf_ops.c: the launches. Offsets and sizes are in floats. */
int tf_gemm(tf_model *m, size_t M, size_t N, size_t K, cl_mem X, size_t x_off,
            cl_mem W, cl_mem Y, size_t y_off, tf_err *e);
/* Projections of one input (X at x_off, M x K) through retcl_linear_many. */
int tf_project(tf_model *m, size_t M, size_t K, cl_mem X, size_t x_off,
               size_t count, const retcl_projection *proj, tf_err *e);
int tf_embed(tf_model *m, size_t rows, cl_mem out, tf_err *e);
int tf_residual(tf_model *m, size_t n, cl_mem x, size_t x_off, cl_mem y,
                size_t y_off, tf_err *e);
int tf_glu(tf_model *m, size_t n, cl_mem a, size_t a_off, cl_mem g,
           size_t g_off, tf_err *e);
int tf_rms_norm(tf_model *m, size_t rows, cl_mem x, size_t x_off,
                cl_mem weight, cl_mem y, size_t y_off, tf_err *e);
int tf_rotate(tf_model *m, size_t B, size_t T, size_t pos0, int is_key,
              cl_mem x, size_t off, tf_err *e);
int tf_kv_append(tf_model *m, tf_cache *c, size_t layer, size_t T,
                 cl_mem k, size_t k_off, cl_mem v, size_t v_off, tf_err *e);
/* Decode: how many chunks (splits) a step over n positions uses and how
 * long each is; the partials need splits * B * H * (head_dim + 2) floats. */
void tf_decode_plan(const tf_model *m, size_t B, size_t n, size_t *splits,
                    size_t *chunk);
int tf_attn_decode(tf_model *m, tf_cache *c, size_t layer, cl_mem q,
                   size_t q_off, cl_mem out, size_t out_off, cl_mem part,
                   size_t part_off, tf_err *e);
int tf_attn_prefill(tf_model *m, tf_cache *c, size_t layer, size_t T,
                    cl_mem q, size_t q_off, cl_mem out, size_t out_off,
                    tf_err *e);

/* tf_cache.c */
int tf_cache_reserve(tf_cache *c, size_t positions, tf_err *e);

#endif
