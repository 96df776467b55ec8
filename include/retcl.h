/*
 * retcl.h - RetCL: Retentive Network (RetNet) kernels for every OpenCL device.
 *
 * The one public header. Conventions (see docs/api.md for the long form):
 *  - Every function returns a retcl_status (RETCL_SUCCESS == 0) unless it
 *    cannot fail. retcl_status_string() gives fixed text per code and
 *    retcl_last_error() the detailed message of the last failure on a context
 *    (which argument, which limit, the kernel build log).
 *  - The library never aborts, exits or prints. Diagnostics go to the log
 *    callback installed with retcl_set_log_callback(), if any.
 *  - Ops take cl_mem buffers plus element offsets (in floats, not bytes),
 *    enqueue on the context's command queue after the given wait list and can
 *    return a cl_event for the last command they enqueue. Ops never block
 *    unless their comment says so. Before enqueueing anything, every argument
 *    is validated; a failed call enqueues nothing and leaves every caller
 *    buffer untouched.
 *  - All data is fp32. Activations are token-major [B,T,H,D] (what a
 *    projection GEMM produces) or head-major [B,H,T,D], both dense.
 *
 * Thread-safety: a retcl_context is not thread-safe: use one context per
 * thread, or serialise calls on a context. Different contexts may be used
 * concurrently from different threads. retcl_status_string(),
 * retcl_version*() and retcl_default_log_decay() are thread-safe and need
 * no context. Every function's comment says which of these it is:
 *  - "Thread-safe": may run in any number of threads at once.
 *  - "Per context": calls on the same context must not overlap (one
 *    thread at a time, or your own lock). A call on a rotation plan, model
 *    or decode state is a call on the context it was made on. Calls on
 *    different contexts may run at the same time in different threads,
 *    and give the same results as when run one after the other.
 * The messages of failed context-free calls (retcl_last_error(NULL)) are
 * kept per thread; a log callback runs on the thread that made the call.
 */
#ifndef RETCL_H
#define RETCL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#ifdef __APPLE__
#include <OpenCL/opencl.h>
#else
#include <CL/cl.h>
#endif
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RETCL_STATIC_DEFINE)
#define RETCL_API
#elif defined(_WIN32)
#ifdef RETCL_BUILDING_LIBRARY
#define RETCL_API __declspec(dllexport)
#else
#define RETCL_API __declspec(dllimport)
#endif
#else
#define RETCL_API __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                  */
/* ------------------------------------------------------------------------ */

#define RETCL_VERSION_MAJOR 0
#define RETCL_VERSION_MINOR 1
#define RETCL_VERSION_PATCH 0
/** Single number for comparisons: MAJOR*10000 + MINOR*100 + PATCH. */
#define RETCL_VERSION_NUMBER \
  (RETCL_VERSION_MAJOR * 10000 + RETCL_VERSION_MINOR * 100 + RETCL_VERSION_PATCH)

/** Version of the library actually loaded, as RETCL_VERSION_NUMBER encodes
 *  it. Compare with RETCL_VERSION_NUMBER to detect a stale shared object.
 *  Thread-safe. */
RETCL_API int retcl_version_number(void);
/** Version of the loaded library as "MAJOR.MINOR.PATCH". Thread-safe. */
RETCL_API const char *retcl_version_string(void);

/* ------------------------------------------------------------------------ */
/* Status codes (append-only)                                               */
/* ------------------------------------------------------------------------ */

typedef enum retcl_status {
  RETCL_SUCCESS = 0,
  /** A required pointer or handle is NULL, or an enum value is unknown. */
  RETCL_ERROR_INVALID_ARGUMENT = 1,
  /** A size is zero, too large, or not supported (e.g. odd rotation dim). */
  RETCL_ERROR_INVALID_SIZE = 2,
  /** A cl_mem is smaller than its offset plus the extent the shape needs. */
  RETCL_ERROR_BUFFER_TOO_SMALL = 3,
  /** A cl_mem, queue or device belongs to a different cl_context. */
  RETCL_ERROR_CONTEXT_MISMATCH = 4,
  /** No OpenCL platform or device matches the request. */
  RETCL_ERROR_DEVICE_NOT_FOUND = 5,
  /** A valid but unsupported combination (e.g. an out-of-order queue). */
  RETCL_ERROR_UNSUPPORTED = 6,
  /** An OpenCL program failed to build; the log is in retcl_last_error(). */
  RETCL_ERROR_BUILD_FAILED = 7,
  /** Host or device memory could not be allocated. */
  RETCL_ERROR_OUT_OF_MEMORY = 8,
  /** An OpenCL call failed; its name and error code are in the message. */
  RETCL_ERROR_OPENCL = 9,
  /** A file could not be opened, read or written. */
  RETCL_ERROR_IO = 10,
  /** A file's contents are malformed (checkpoints, configs). */
  RETCL_ERROR_FORMAT = 11
} retcl_status;

/** Fixed English text for a status code ("buffer too small", ...); never
 *  NULL, "unknown status" for values outside the enum. Thread-safe. */
RETCL_API const char *retcl_status_string(retcl_status status);

/** Name of an OpenCL error code ("CL_OUT_OF_RESOURCES"); "unknown OpenCL
 *  error" for codes outside OpenCL 1.2's list. Never NULL. Thread-safe. */
RETCL_API const char *retcl_cl_error_name(cl_int err);

/** The library's one pseudo-random generator (splitmix64): advances *state
 *  and returns the next 64 random bits. The stream depends on the seed
 *  alone, on every platform, so seeded runs (random checkpoints, sampling,
 *  test data) repeat exactly. Thread-safe (the caller owns the state). */
RETCL_API uint64_t retcl_random_next(uint64_t *state);
/** A uniform double in [0, 1) from the next 53 bits of retcl_random_next. */
RETCL_API double retcl_random_uniform(uint64_t *state);

/* ------------------------------------------------------------------------ */
/* Context                                                                  */
/* ------------------------------------------------------------------------ */

/** One OpenCL device as RETCL_DEVICE counts them. */
typedef struct retcl_device_entry {
  size_t index;            /**< the number RETCL_DEVICE / --device takes */
  cl_uint platform_index;  /**< the number RETCL_PLATFORM takes */
  cl_platform_id platform;
  cl_device_id device;
  cl_device_type type;
} retcl_device_entry;

/**
 * The devices a context may be created on, in the order RETCL_DEVICE
 * counts them: every device of every platform that `platform` selects
 * (NULL: RETCL_PLATFORM, unset: all; an index or a name substring as for
 * retcl_context_create). Writes up to cap entries to out (out may be NULL
 * with cap 0 to count) and the number of devices to *count.
 * RETCL_ERROR_DEVICE_NOT_FOUND when no platform matches or none has a
 * device (message in retcl_last_error(NULL)). Thread-safe: enumeration is
 * serialised with context creation.
 */
RETCL_API retcl_status retcl_device_list(const char *platform,
                                         retcl_device_entry *out, size_t cap,
                                         size_t *count);

/** Opaque: an OpenCL context, device and in-order queue, plus the device's
 *  kernel parameter record, the programs compiled for that device (each
 *  built once, before the first call that needs it enqueues anything, or
 *  all at once by retcl_context_prepare / retcl_model_load) and scratch
 *  buffers. */
typedef struct retcl_context retcl_context;

/**
 * Create a context on a chosen device.
 *
 * platform: NULL, or a platform index ("0") or a case-insensitive substring
 *           of the platform name ("portable"). NULL reads RETCL_PLATFORM from
 *           the environment; unset means all platforms.
 * device:   NULL, or an index ("1", counted over the selected platforms) or
 *           a case-insensitive substring of the device name ("h200"). NULL
 *           reads RETCL_DEVICE; unset means the first GPU, else the first
 *           device of any type.
 * out:      receives the new context (NULL on failure).
 *
 * Returns RETCL_ERROR_DEVICE_NOT_FOUND when nothing matches,
 * RETCL_ERROR_INVALID_ARGUMENT for a NULL out, RETCL_ERROR_OPENCL when
 * context or queue creation fails, RETCL_ERROR_FORMAT / RETCL_ERROR_IO when
 * the file named by RETCL_PARAMS is malformed (the message names the key)
 * or unreadable. On failure the message is available from
 * retcl_last_error(NULL) in the calling thread. Blocks (device query).
 * Thread-safe: each thread may create its own contexts. The platform and
 * device enumeration inside is serialised by the library, because some
 * drivers initialise themselves lazily and not safely (PoCL 3.1 crashes
 * when two threads enumerate at the same moment). A program that makes its
 * own first OpenCL calls from several threads at once still meets that
 * driver bug outside RetCL.
 */
RETCL_API retcl_status retcl_context_create(const char *platform,
                                            const char *device,
                                            retcl_context **out);

/**
 * Wrap a caller's OpenCL objects. The context retains all three and releases
 * them on destroy; the caller keeps its own references. The queue must be
 * in-order (RETCL_ERROR_UNSUPPORTED otherwise) and belong to cl_ctx and
 * device (RETCL_ERROR_CONTEXT_MISMATCH otherwise); a bad RETCL_PARAMS file
 * fails as for retcl_context_create. The message of a failure is in
 * retcl_last_error(NULL) of the calling thread. Thread-safe.
 */
RETCL_API retcl_status retcl_context_wrap(cl_context cl_ctx,
                                          cl_device_id device,
                                          cl_command_queue queue,
                                          retcl_context **out);

/** Release everything the context holds. Does not wait for enqueued work
 *  (OpenCL keeps objects alive until their commands finish). NULL is a
 *  no-op. Per context: no other call on ctx may be running, or follow. */
RETCL_API void retcl_context_destroy(retcl_context *ctx);

/** The OpenCL objects behind a context (not retained for the caller).
 *  Thread-safe: they are fixed when the context is made. */
RETCL_API cl_context retcl_context_cl_context(const retcl_context *ctx);
RETCL_API cl_device_id retcl_context_device(const retcl_context *ctx);
RETCL_API cl_command_queue retcl_context_queue(const retcl_context *ctx);

/** Bytes of device memory the context holds for temporaries (its
 *  workspaces: chunk states, layer and model activations). They grow to the
 *  largest call made so far and are reused; with the model's weights and
 *  the decode states this is all the device memory RetCL holds.
 *  Per context (the ops grow the workspaces). */
RETCL_API size_t retcl_context_workspace_bytes(const retcl_context *ctx);

/**
 * Build every OpenCL program the context's ops use, now, instead of on
 * each op's first call. Ops build what they need before they enqueue
 * anything (so a failed build never leaves a call half done); this moves
 * all builds, and their failures, to one known point. retcl_model_load
 * calls it. RETCL_ERROR_BUILD_FAILED carries the build log in
 * retcl_last_error(ctx), or names the record's clblast parameters that
 * CLBlast's kernels cannot run. Blocks (compilation). Per context.
 */
RETCL_API retcl_status retcl_context_prepare(retcl_context *ctx);

/** The vendor RetCL recognised for the context's device and whose
 *  parameter levels apply: "AMD", "Intel", "NVIDIA", "PoCL" or "other".
 *  Thread-safe. */
RETCL_API const char *retcl_context_vendor(const retcl_context *ctx);

/* ---- kernel parameter records ------------------------------------------
 * Every tunable of every kernel family (tile sizes, vector widths,
 * work-group shapes, access pattern) lives in one record per context, fixed
 * when the context is made. Values resolve in levels: built-in default,
 * device type, vendor, device name, the RETCL_KERNEL_PATHS=cpu|gpu
 * shortcut (all access patterns), device queries (vector width), and last
 * the JSON file named by RETCL_PARAMS:
 *   {"device": "optional part of the device name",
 *    "retention": {"rb": 8, "access": "cpu"}, "linear": {"wg": 64}}
 * A bad file makes retcl_context_create/_wrap fail with
 * RETCL_ERROR_FORMAT (or RETCL_ERROR_IO) and a message naming the key.
 * The "clblast" family holds the kernel parameters RetCL hands to
 * CLBlast (CLBlastOverrideParameters; -1: CLBlast's database): a set given
 * in part fails creation, one CLBlast's kernels cannot run fails the
 * prepare step with RETCL_ERROR_BUILD_FAILED (docs/design.md §3).
 * docs/api.md lists every parameter; `retcl params` prints a device's. */

/** One parameter of a context's record. */
typedef struct retcl_param_info {
  const char *family;     /**< "rotation", "retention", "retention_grad",
                               "group_norm", "elementwise", "linear",
                               "gemm", "loss",
                               "optimizer" or "clblast" (CLBlast's kernel
                               parameters) */
  const char *key;        /**< "rb", "access", ... */
  long value;
  const char *value_name; /**< "cpu"/"gpu" for access patterns, else NULL */
  const char *source;     /**< the level it came from: "built-in", "device
                               type", "vendor", "device name",
                               "RETCL_KERNEL_PATHS", "device query",
                               "RETCL_PARAMS" */
  const char *define;     /**< the -D name the kernels see, or NULL when
                               only the host reads it */
  const char *help;       /**< one line on what it does */
} retcl_param_info;

/** How many parameters a record has. Thread-safe. */
RETCL_API size_t retcl_param_count(void);
/** Parameter `index` (< retcl_param_count()) of ctx's record; the strings
 *  are static. RETCL_ERROR_INVALID_ARGUMENT for a NULL ctx or info or an
 *  index out of range. Thread-safe. */
RETCL_API retcl_status retcl_param_get(const retcl_context *ctx, size_t index,
                                       retcl_param_info *info);

/** Block until everything enqueued on the context's queue has finished.
 *  Per context. */
RETCL_API retcl_status retcl_finish(retcl_context *ctx);

/**
 * Detailed message of the last failed call on ctx ("" if none). With
 * ctx == NULL: the last failure of retcl_context_create/wrap in this thread.
 * The pointer stays valid until the next call on the same context (or, for
 * NULL, the next create/wrap in this thread). Per context with a ctx;
 * Thread-safe with NULL (each thread reads its own message).
 */
RETCL_API const char *retcl_last_error(const retcl_context *ctx);

typedef enum retcl_log_level {
  RETCL_LOG_DEBUG = 0,
  RETCL_LOG_INFO = 1,
  RETCL_LOG_WARNING = 2,
  RETCL_LOG_ERROR = 3
} retcl_log_level;

/** Receives a NUL-terminated message; called synchronously on the thread
 *  that made the library call. */
typedef void (*retcl_log_fn)(retcl_log_level level, const char *message,
                             void *user_data);

/** Install (or with fn == NULL remove) the log callback of a context. The
 *  library reports program builds (with build logs), scratch allocations and
 *  every error through it. Per context. */
RETCL_API void retcl_set_log_callback(retcl_context *ctx, retcl_log_fn fn,
                                      void *user_data);

/* ------------------------------------------------------------------------ */
/* Buffers and layouts                                                      */
/* ------------------------------------------------------------------------ */

/** Element types: of a checkpoint's tensors, and of a buffer's storage. */
typedef enum retcl_dtype {
  RETCL_DTYPE_F32 = 0,
  RETCL_DTYPE_F16 = 1, /**< IEEE binary16 */
  RETCL_DTYPE_BF16 = 2 /**< bfloat16: the high 16 bits of an fp32 */
} retcl_dtype;

/** A cl_mem plus an offset counted in elements of `type`. A buffer with
 *  mem == NULL means "absent" where an argument is optional.
 *
 *  Storage types: every buffer is fp32 (type RETCL_DTYPE_F32 = 0, what
 *  `{mem, offset}` initialisers and retcl_buf give) except WEIGHT
 *  arguments, which may also be F16 or BF16 (retcl_buf_typed): the kernels
 *  read them in that form, widen each value exactly to fp32 and compute in
 *  fp32. The weight arguments are retcl_linear's w, retcl_linear_many's
 *  proj[i].w, retcl_gemm's b in the RETCL_GEMM_NT case, retcl_msr_forward's
 *  projections and retcl_group_norm_gate's weight and bias; any other
 *  argument given a 16-bit buffer is rejected (INVALID_ARGUMENT, nothing
 *  written). States and activations are always fp32. */
typedef struct retcl_buffer {
  cl_mem mem;
  size_t offset;
  retcl_dtype type;
} retcl_buffer;

/** Convenience constructor (fp32). */
static inline retcl_buffer retcl_buf(cl_mem mem, size_t offset) {
  retcl_buffer b;
  b.mem = mem;
  b.offset = offset;
  b.type = RETCL_DTYPE_F32;
  return b;
}
/** A buffer of `type` elements, offset counted in elements (2 bytes each
 *  for F16 and BF16). */
static inline retcl_buffer retcl_buf_typed(cl_mem mem, size_t offset,
                                           retcl_dtype type) {
  retcl_buffer b;
  b.mem = mem;
  b.offset = offset;
  b.type = type;
  return b;
}
/** The absent optional buffer. */
static inline retcl_buffer retcl_no_buf(void) { return retcl_buf(NULL, 0); }

typedef enum retcl_layout {
  /** [B, T, H, D]: element (b,t,h,d) at ((b*T + t)*H + h)*D + d. */
  RETCL_LAYOUT_TOKEN_MAJOR = 0,
  /** [B, H, T, D]: element (b,t,h,d) at ((b*H + h)*T + t)*D + d. */
  RETCL_LAYOUT_HEAD_MAJOR = 1
} retcl_layout;

/** A variable-length batch: `count` sequences packed back to back in one
 *  token stream (the cu_seqlens convention of fla), for the ops and the
 *  layer to run them in one call as if each ran alone (docs/api.md,
 *  "Packed batches"). A desc with count 0 (the zero-initialised default)
 *  describes a rectangular batch, as before.
 *
 *  When count > 0: desc->batch must be 1, desc->tokens is the stream's
 *  length, the layout is RETCL_LAYOUT_TOKEN_MAJOR, and
 *  offsets:     host array of count + 1 values, 0 = offsets[0] <= offsets[1]
 *               <= ... <= offsets[count] = tokens; sequence i is tokens
 *               offsets[i] .. offsets[i+1] - 1 (a sequence may be empty).
 *  positions:   host array of count values, or NULL: the absolute position
 *               of each sequence's first token (rotation angles start
 *               there; in torchscale form it is the number of tokens the
 *               sequence's state_in has absorbed). NULL means every
 *               sequence starts at the desc's pos0 / position.
 *  state_slots: host array of count values, or NULL: sequence i reads its
 *               initial state from, and writes its final state to, slot
 *               state_slots[i] of state_in / state_out (a slot is one
 *               sequence's [H, Dk, Dv] state), or -1 for no state (starts
 *               empty, final state not kept). No slot may appear twice.
 *               NULL means slot i for sequence i.
 *  The arrays are read during the call only. */
typedef struct retcl_packing {
  size_t count;
  const size_t *offsets;
  const size_t *positions;
  const int32_t *state_slots;
} retcl_packing;

/* ------------------------------------------------------------------------ */
/* Decay (docs/design.md §1.2)                                                       */
/* ------------------------------------------------------------------------ */

/** Fill log_decay[0..heads) with RetNet's default per-head decays,
 *  log(1 - 2^(-5-h)), computed in double precision. Host memory; upload it
 *  to a device buffer of `heads` floats for the retention ops. Returns
 *  RETCL_ERROR_INVALID_ARGUMENT for NULL, RETCL_ERROR_INVALID_SIZE for
 *  heads == 0. Thread-safe, no context needed. */
RETCL_API retcl_status retcl_default_log_decay(size_t heads, float *log_decay);

/* ------------------------------------------------------------------------ */
/* Rotation Θ (docs/design.md §1.1)                                                  */
/* ------------------------------------------------------------------------ */

/** Opaque rotation plan: per-pair angular rates for one head dimension,
 *  held on the device in 64-bit fixed point so that the angle n*θ is exact
 *  modulo 2π for any position n < 2^32. */
typedef struct retcl_rotation retcl_rotation;

/**
 * Create a rotation plan for head dimension head_dim (even, 2..1024).
 * theta: NULL for the RetNet default θ_i = 10000^(-i/(head_dim/2-1)), or a
 *        host array of head_dim/2 angles per position (e.g. torchscale's
 *        retnet_rel_pos.angle, one value per pair), copied.
 * xpos_scale_base: 0 for plain rotation; > 0 enables the xPos scaling
 *        ζ_i^(n/xpos_scale_base), ζ_i = (2i + 0.4 D)/(1.4 D), applied to
 *        queries and inverted for keys.
 * Blocks (uploads a small table). Errors: INVALID_ARGUMENT, INVALID_SIZE
 * (odd or out-of-range head_dim, negative or non-finite scale base, a
 * non-finite theta), OUT_OF_MEMORY, OPENCL. Per context.
 */
RETCL_API retcl_status retcl_rotation_create(retcl_context *ctx,
                                             size_t head_dim,
                                             const float *theta,
                                             float xpos_scale_base,
                                             retcl_rotation **out);
/** NULL is a no-op. Per context (the plan's). */
RETCL_API void retcl_rotation_destroy(retcl_rotation *rot);

typedef struct retcl_rotation_desc {
  size_t batch, tokens, heads;  /**< B, T, H; all >= 1 */
  retcl_layout layout;          /**< of both in and out */
  /** Absolute position of token 0 of this call (a continued sequence keeps
   *  counting). pos0 + tokens must be <= 2^32. */
  size_t pos0;
  /** xPos only: 0 rotates queries (scale ζ^(n/base)), 1 keys (ζ^(-n/base)). */
  int is_key;
  /** Packed sequences (count 0: a rectangular batch). Token t of sequence
   *  i is at position positions[i] + (t - offsets[i]); state_slots unused. */
  retcl_packing packing;
} retcl_rotation_desc;

/**
 * out = Θ(in): rotate every (b, t, h) row of head_dim values at position
 * pos0 + t. in and out may be the same buffer at the same offset (in place);
 * other overlaps are undefined. Non-blocking. Errors: INVALID_ARGUMENT,
 * INVALID_SIZE, BUFFER_TOO_SMALL, CONTEXT_MISMATCH, OPENCL, BUILD_FAILED.
 * Per context.
 */
RETCL_API retcl_status retcl_rotate(retcl_context *ctx,
                                    const retcl_rotation *rot,
                                    const retcl_rotation_desc *desc,
                                    retcl_buffer in, retcl_buffer out,
                                    cl_uint num_events_in_wait_list,
                                    const cl_event *event_wait_list,
                                    cl_event *event);

/**
 * Gradient of retcl_rotate: d_in = Θᵀ d_out, each (b, t, h) row of
 * head_dim values of d_out rotated by the opposite angle, -n·θ_i, at
 * position n = pos0 + t (docs/design.md §1.7). With an xPos plan each pair
 * is multiplied by the same factor as in the forward for desc->is_key (the
 * factor is diagonal, so it is its own transpose). desc is the forward's.
 * Without xPos the map is orthogonal: the backward of a forward returns its
 * input up to rounding. d_out and d_in may be the same buffer at the same
 * offset (in place); other overlaps are refused. Non-blocking. Errors:
 * INVALID_ARGUMENT, INVALID_SIZE, BUFFER_TOO_SMALL, CONTEXT_MISMATCH,
 * OPENCL, BUILD_FAILED. Per context.
 */
RETCL_API retcl_status retcl_rotate_backward(retcl_context *ctx,
                                             const retcl_rotation *rot,
                                             const retcl_rotation_desc *desc,
                                             retcl_buffer d_out,
                                             retcl_buffer d_in,
                                             cl_uint num_events_in_wait_list,
                                             const cl_event *event_wait_list,
                                             cl_event *event);

/* ------------------------------------------------------------------------ */
/* Retention (docs/design.md §1.3, 1.4)                                              */
/* ------------------------------------------------------------------------ */

typedef enum retcl_algorithm {
  /** O = ((Q Kᵀ) ⊙ D) V (+ ξ ⊙ Q S_0): O(T²) work, most parallel. */
  RETCL_ALGO_PARALLEL = 0,
  /** One state update per token; any number of tokens per call. */
  RETCL_ALGO_RECURRENT = 1,
  /** Parallel inside chunks of chunk_size tokens, recurrent across them. */
  RETCL_ALGO_CHUNKWISE = 2
} retcl_algorithm;

typedef enum retcl_retention_form {
  /** S_t = γ S_{t-1} + k_tᵀ v_t, o_t = scale · q_t S_t (docs/design.md §1.3). */
  RETCL_FORM_RAW = 0,
  /** torchscale's per-algorithm rescalings (docs/design.md §1.4). */
  RETCL_FORM_TORCHSCALE = 1
} retcl_retention_form;

typedef struct retcl_retention_desc {
  size_t batch, tokens, heads;  /**< B, T, H; all >= 1 */
  size_t key_dim, value_dim;    /**< Dk, Dv; each 1..1024 */
  retcl_layout layout;          /**< of q, k, v and out */
  retcl_algorithm algorithm;
  retcl_retention_form form;
  /** Chunkwise only: tokens per chunk, 1..1024; 0 selects the context's
   *  retention.chunk parameter (64 built-in). T need not be a multiple of
   *  it. */
  size_t chunk_size;
  /** Raw form only: output scale; 0 means 1. */
  float scale;
  /** Torchscale form only: number of tokens already absorbed into state_in
   *  (n in c_n = Σ_{j<n} γ^j). Must be 0 when state_in is absent and > 0
   *  when it is present. */
  size_t position;
  /** Packed sequences (count 0: a rectangular batch); states are then
   *  addressed by slot (retcl_packing). Every algorithm and form; the
   *  torchscale parallel and chunkwise algorithms need every sequence with
   *  a state_in slot at position 0 (they start from an empty state). */
  retcl_packing packing;
} retcl_retention_desc;

/**
 * Retention of q [B,T,H,Dk], k [B,T,H,Dk], v [B,T,H,Dv] into out [B,T,H,Dv]
 * (or the head-major equivalents), with per-head log γ in log_decay [H].
 * q and k are used as given (rotate them first; in torchscale form k must
 * already carry the Dk^-1/2 factor).
 *
 * State layout (both forms): [B, H, Dk, Dv] floats, element (b,h,i,j) at
 * ((b*H + h)*Dk + i)*Dv + j. Raw form: the state S_T of docs/design.md §1.3.
 * Torchscale form: torchscale's recurrent state S_n = raw state / sqrt(c_n),
 * c_n = Σ_{j<n} γ^j, n = position + tokens (docs/state.md).
 *
 * state_in:  optional initial state (absent = zero). Torchscale form: the
 *            recurrent algorithm accepts it (with position > 0), the
 *            chunkwise one when position is a multiple of the chunk size
 *            (a sequence continued at a chunk boundary); the parallel form
 *            starts from an empty state as torchscale's does, and returns
 *            RETCL_ERROR_UNSUPPORTED, as chunkwise off a boundary. All three
 *            can produce state_out, so a torchscale prefill of any algorithm
 *            hands its state to recurrent decoding.
 * state_out: optional final state. May be the same buffer and offset as
 *            state_in (updated in place); no other overlap is allowed.
 * out must not overlap the inputs. out may be absent (retcl_no_buf()) when
 *            state_out is given: a state-only call, which computes
 *            state_out (the same state as a full call, to rounding) with the
 *            chunkwise state kernels only and skips the outputs (about a
 *            third of a chunkwise call's work at Dk = Dv = chunk size).
 *            Every algorithm and form; the chunkwise algorithm uses its
 *            chunk size, the others the context's retention.chunk. Packed
 *            batches: RETCL_ERROR_UNSUPPORTED.
 *
 * Chunkwise and parallel with state_out use a scratch buffer held by the
 * context (grown on demand, reused): do not run two retention calls on one
 * context from different queues. Non-blocking. Errors: INVALID_ARGUMENT,
 * INVALID_SIZE, BUFFER_TOO_SMALL, CONTEXT_MISMATCH, UNSUPPORTED,
 * OUT_OF_MEMORY, BUILD_FAILED, OPENCL. Per context.
 */
RETCL_API retcl_status retcl_retention(retcl_context *ctx,
                                       const retcl_retention_desc *desc,
                                       retcl_buffer q, retcl_buffer k,
                                       retcl_buffer v, retcl_buffer log_decay,
                                       retcl_buffer state_in,
                                       retcl_buffer state_out,
                                       retcl_buffer out,
                                       cl_uint num_events_in_wait_list,
                                       const cl_event *event_wait_list,
                                       cl_event *event);

/**
 * Continue outputs computed from a zero state with an incoming state
 * (docs/design.md §1.8): out holds the outputs of retcl_retention(desc with
 * position 0, no state_in) over these tokens; afterwards it holds those of
 * retcl_retention(desc, state_in). Raw form, any algorithm (desc->algorithm
 * is not used): out_t += scale · γ^(t+1) · q_t S_in, one O(B·T·H·Dk·Dv)
 * pass, t counted from the call's first token. Torchscale form, recurrent
 * algorithm only (desc->position > 0 tokens absorbed by state_in, which is
 * in the torchscale convention S_m / sqrt(c_m)): out_t ← out_t ·
 * sqrt(c_(t+1) / c_(m+t+1)) + γ^(t+1) · q_t S_m / sqrt(c_(m+t+1)). The
 * torchscale parallel and chunkwise forms' normalisers depend on the state,
 * so they are RETCL_ERROR_UNSUPPORTED (rerun retcl_retention with
 * state_in). Packed batches: UNSUPPORTED.
 *
 * q [B,T,H,Dk] and out [B,T,H,Dv] in desc->layout, log_decay [H], state_in
 * [B,H,Dk,Dv] (required). out must not overlap the inputs. Used to split a
 * sequence over devices or ranks (retcl_mpi_retention): each computes its
 * slice from zero, then adds the incoming state. Non-blocking. Errors:
 * INVALID_ARGUMENT, INVALID_SIZE, BUFFER_TOO_SMALL, CONTEXT_MISMATCH,
 * UNSUPPORTED, BUILD_FAILED, OPENCL. Per context.
 */
RETCL_API retcl_status retcl_retention_add_state(
    retcl_context *ctx, const retcl_retention_desc *desc, retcl_buffer q,
    retcl_buffer log_decay, retcl_buffer state_in, retcl_buffer out,
    cl_uint num_events_in_wait_list, const cl_event *event_wait_list,
    cl_event *event);

/**
 * The gradient of retcl_retention with the same desc (algorithm, form,
 * chunk_size, scale, position, layout) and inputs (docs/design.md §1.7):
 * given d_out = dL/d out [B,T,H,Dv] (same layout as out) and optionally
 * d_state_out = dL/d state_out [B,H,Dk,Dv], writes dq, dk [B,T,H,Dk],
 * dv [B,T,H,Dv] and optionally d_state_in = dL/d state_in. Outputs are
 * written, not accumulated.
 *
 * q, k, v, log_decay and state_in are exactly what the forward was given
 * (state_in absent if it had none); nothing else of the forward is needed:
 * the chunk states are recomputed (in fp32), and in torchscale form the
 * per-row normalisers (the mask's row sums, a_t, a_i, r; c_n of the
 * recurrent form) are recomputed from q and k as the forward computes them
 * and held constant, as torchscale detaches them, so the result is
 * torchscale's autograd gradient. No gradient flows to log_decay.
 *
 * d_state_out: optional; absent means the final state does not enter the
 *              loss. In torchscale form it is the gradient of the state the
 *              forward returns (S_n / sqrt(c_n)).
 * d_state_in:  optional, only when state_in is given (INVALID_ARGUMENT
 *              otherwise). May be the same buffer and offset as d_state_out
 *              (updated in place, so a sequence fed in pieces runs its
 *              backward piece by piece); no other overlap is allowed.
 * dq, dk, dv must not overlap each other or any input.
 *
 * Every algorithm and form the forward accepts is accepted (torchscale
 * parallel and chunkwise without state_in, as in the forward: UNSUPPORTED
 * otherwise). Uses a scratch buffer held by the context (grown on demand,
 * reused; separate from retcl_retention's): do not run two retention
 * backward calls on one context from different queues. Two calls with the
 * same inputs give bitwise equal results. Non-blocking. Errors:
 * INVALID_ARGUMENT, INVALID_SIZE, BUFFER_TOO_SMALL, CONTEXT_MISMATCH,
 * UNSUPPORTED, OUT_OF_MEMORY, BUILD_FAILED, OPENCL. Per context.
 */
RETCL_API retcl_status retcl_retention_backward(
    retcl_context *ctx, const retcl_retention_desc *desc, retcl_buffer q,
    retcl_buffer k, retcl_buffer v, retcl_buffer log_decay,
    retcl_buffer state_in, retcl_buffer d_out, retcl_buffer d_state_out,
    retcl_buffer dq, retcl_buffer dk, retcl_buffer dv,
    retcl_buffer d_state_in, cl_uint num_events_in_wait_list,
    const cl_event *event_wait_list, cl_event *event);

/* ------------------------------------------------------------------------ */
/* Group norm fused with the gate (docs/design.md §1.5)                              */
/* ------------------------------------------------------------------------ */

typedef enum retcl_norm_kind {
  RETCL_NORM_RMS = 0,   /**< y = x / sqrt(mean(x²) + eps) (torchscale) */
  RETCL_NORM_LAYER = 1  /**< y = (x - mean) / sqrt(var + eps) (paper) */
} retcl_norm_kind;

typedef enum retcl_gate {
  RETCL_GATE_SWISH = 0, /**< g · sigmoid(g) */
  RETCL_GATE_GELU = 1,  /**< g · Φ(g), erf form */
  RETCL_GATE_NONE = 2   /**< no gate: out = y (gate buffer ignored) */
} retcl_gate;

typedef struct retcl_group_norm_desc {
  size_t batch, tokens, heads, head_dim; /**< B, T, H, Dv; all >= 1 */
  retcl_layout layout;   /**< of x, gate and out */
  retcl_norm_kind kind;
  retcl_gate gate;
  float eps;             /**< > 0; 0 selects 1e-6 */
} retcl_group_norm_desc;

/**
 * out = act(gate) ⊙ (norm(x) · weight + bias), normalising each (b,t,h) row
 * of head_dim values. weight and bias are optional, per channel, H*Dv floats
 * (channel h*Dv + d). x and out may be the same buffer at the same offset.
 * Non-blocking. Errors: INVALID_ARGUMENT, INVALID_SIZE, BUFFER_TOO_SMALL,
 * CONTEXT_MISMATCH, BUILD_FAILED, OPENCL. Per context.
 */
RETCL_API retcl_status retcl_group_norm_gate(retcl_context *ctx,
                                             const retcl_group_norm_desc *desc,
                                             retcl_buffer x, retcl_buffer gate,
                                             retcl_buffer weight,
                                             retcl_buffer bias,
                                             retcl_buffer out,
                                             cl_uint num_events_in_wait_list,
                                             const cl_event *event_wait_list,
                                             cl_event *event);

/**
 * Gradient of retcl_group_norm_gate (docs/design.md §1.7). desc, x, gate,
 * weight and bias are the forward's (weight, bias optional as there; gate
 * unread with RETCL_GATE_NONE); d_out is the gradient of its out. Writes
 *   dx       (required) the gradient of x;
 *   d_gate   the gradient of gate: required unless the gate is NONE, then
 *            ignored;
 *   d_weight, d_bias (optional, H*Dv floats each) the gradients of weight
 *            and bias, summed over every (b, t) row. Each may be given
 *            only when the forward had that parameter. They are overwritten
 *            (not accumulated) and reduced in a fixed order through partial
 *            sums of group_norm.grad_rows tokens (no atomics): two calls
 *            with the same inputs and parameter record give bitwise equal
 *            results.
 * The model's RMSNorm with weight is this op with heads 1, head_dim d,
 * RETCL_NORM_RMS, RETCL_GATE_NONE. dx may be the same buffer and offset as
 * d_out, and d_gate the same as gate (in place); every other overlap of an
 * output with any argument is refused. With d_weight or d_bias the partial
 * sums live in a scratch buffer of the context (grown on demand). Non-blocking
 * (one kernel, two with d_weight or d_bias). Errors: INVALID_ARGUMENT,
 * INVALID_SIZE, BUFFER_TOO_SMALL, CONTEXT_MISMATCH, OUT_OF_MEMORY,
 * BUILD_FAILED, OPENCL. Per context.
 */
RETCL_API retcl_status retcl_group_norm_gate_backward(
    retcl_context *ctx, const retcl_group_norm_desc *desc, retcl_buffer x,
    retcl_buffer gate, retcl_buffer weight, retcl_buffer bias,
    retcl_buffer d_out, retcl_buffer dx, retcl_buffer d_gate,
    retcl_buffer d_weight, retcl_buffer d_bias,
    cl_uint num_events_in_wait_list, const cl_event *event_wait_list,
    cl_event *event);

/* ------------------------------------------------------------------------ */
/* Dense projections                                                        */
/* ------------------------------------------------------------------------ */

/**
 * y = alpha · x · wᵀ + beta · y for row-major x [M, K], w [N, K] (a torch
 * Linear weight, [out, in]) and y [M, N]: the projection every RetNet
 * layer runs, for the blocks around it (an FFN, an output head). Up to 32
 * rows with beta = 0 (decoding: one row per sequence) it runs RetCL's
 * weight-streaming kernels, which read w once per group of rows (CPUs: a
 * contiguous stretch of rows per work-item; GPUs: a work-group per row of
 * w); otherwise CLBlast's SGEMM. With beta = 0, y's previous contents are
 * not read (NaN there stays out of the result). y must not overlap x or w.
 * Non-blocking; the event, if asked for, completes when y is written.
 * Errors: INVALID_ARGUMENT (NULL buffer, overlap, alpha or beta not
 * finite), INVALID_SIZE (a size 0 or beyond 32-bit indexing),
 * BUFFER_TOO_SMALL, CONTEXT_MISMATCH, BUILD_FAILED, OUT_OF_MEMORY, OPENCL.
 * Per context.
 */
RETCL_API retcl_status retcl_linear(retcl_context *ctx, size_t M, size_t N,
                                    size_t K, float alpha, retcl_buffer x,
                                    retcl_buffer w, float beta, retcl_buffer y,
                                    cl_uint num_events_in_wait_list,
                                    const cl_event *event_wait_list,
                                    cl_event *event);

/** One projection of a retcl_linear_many call: y = alpha · x · wᵀ, w
 *  [n, K] and y [M, n] row-major. */
/** The three products a forward and a backward pass need
 *  (docs/design.md §1.9), row-major with leading dimensions. */
typedef enum retcl_gemm_case {
  RETCL_GEMM_NT = 0, /**< C[M,N] = A[M,K] B[N,K]ᵀ   (y = x Wᵀ)    */
  RETCL_GEMM_NN = 1, /**< C[M,N] = A[M,K] B[K,N]    (dx = dy W)   */
  RETCL_GEMM_TN = 2  /**< C[M,N] = A[K,M]ᵀ B[K,N]   (dW = dyᵀ x)  */
} retcl_gemm_case;

/**
 * C = alpha op(A) op(B) + beta C by RetCL's own GEMM kernels (cl/gemm.cl),
 * whatever gemm.backend says (that parameter chooses what retcl_linear and
 * the model use). Any M, N, K >= 1; lda, ldb, ldc are the floats between
 * rows of A, B and C as stored (at least their row lengths: K or M for A,
 * K or N for B, N for C); offsets in the buffers. beta == 0 never reads C.
 * C may not overlap A or B. Enqueues on the context's queue after the wait
 * list. Errors: INVALID_ARGUMENT (bad case, NULL buffer, overlap,
 * non-finite alpha/beta, wait list), INVALID_SIZE (a size 0, a leading
 * dimension shorter than its row, more than 2^32 - 1 floats),
 * BUFFER_TOO_SMALL, CONTEXT_MISMATCH, BUILD_FAILED; on any of them nothing
 * is enqueued and C is untouched. Per context.
 */
RETCL_API retcl_status retcl_gemm(retcl_context *ctx, retcl_gemm_case op,
                                  size_t M, size_t N, size_t K, float alpha,
                                  retcl_buffer a, size_t lda, retcl_buffer b,
                                  size_t ldb, float beta, retcl_buffer c,
                                  size_t ldc, cl_uint num_events_in_wait_list,
                                  const cl_event *event_wait_list,
                                  cl_event *event);

typedef struct retcl_projection {
  retcl_buffer w, y;
  size_t n;
  float alpha;
} retcl_projection;

/**
 * Several projections of the same x [M, K] (the Q, K, V of a layer; an
 * FFN's two input projections): y_i = alpha_i · x · w_iᵀ for i < count, as
 * count retcl_linear calls with beta = 0 would compute them. Where
 * consecutive projections have the same n and lie back to back, w_{i+1}
 * starting right after w_i (n·K floats later in the same buffer) and
 * y_{i+1} right after y_i (M·n floats later), up to 4 of them run as one
 * launch: decoding reads the stacked weights in one pass (on PoCL, Q, K, V
 * and G of a 512-wide layer at 8 rows took 1.25x less time as one launch
 * than as four). No y_i may overlap x, a w_j or another y_j. Non-blocking;
 * the event, if asked for, completes when every y_i is written. Errors:
 * as retcl_linear, the message naming the projection (proj[i].w ...);
 * INVALID_ARGUMENT also for count 0 or proj NULL. Per context.
 */
RETCL_API retcl_status retcl_linear_many(retcl_context *ctx, size_t M,
                                         size_t K, retcl_buffer x,
                                         size_t count,
                                         const retcl_projection *proj,
                                         cl_uint num_events_in_wait_list,
                                         const cl_event *event_wait_list,
                                         cl_event *event);

/* ------------------------------------------------------------------------ */
/* Multi-scale retention layer (docs/design.md §1.6)                                 */
/* ------------------------------------------------------------------------ */

/** The five projection weights of a layer, torch Linear layout [out, in]
 *  row-major, no biases. */
typedef struct retcl_msr_weights {
  retcl_buffer q_proj, k_proj; /**< [d, d] */
  retcl_buffer v_proj, g_proj; /**< [dv, d] */
  retcl_buffer out_proj;       /**< [d, dv] */
} retcl_msr_weights;

typedef struct retcl_msr_desc {
  size_t batch, tokens;        /**< B, T >= 1 */
  size_t embed_dim;            /**< d = H * Dk, Dk even */
  size_t value_embed_dim;      /**< dv = H * Dv */
  size_t heads;                /**< H */
  retcl_algorithm algorithm;
  retcl_retention_form form;   /**< RETCL_FORM_TORCHSCALE for torchscale
                                    checkpoints */
  size_t chunk_size;           /**< chunkwise only; 0 selects retention.chunk (64) */
  /** Absolute position of token 0: the rotation starts there, and it is the
   *  number of tokens state_in has absorbed (torchscale form). */
  size_t pos0;
  float norm_eps;              /**< group norm eps; 0 selects 1e-6 */
  /** Packed sequences (count 0: a rectangular batch): as retcl_retention,
   *  x and y are then [tokens, d] (batch 1). */
  retcl_packing packing;
} retcl_msr_desc;

/**
 * y = MSR(x) on token-major activations x, y [B, T, d]:
 * Q = x Wqᵀ, K = x Wkᵀ · Dk^-1/2, V = x Wvᵀ, G = x Wgᵀ (CLBlast GEMMs on the
 * context's queue); Q and K rotated by rot (head dimension Dk) from pos0;
 * retention by desc->algorithm/form with per-head log_decay [H] and
 * optional state_in/state_out [B, H, Dk, Dv] (as retcl_retention); RMS
 * group norm per head fused with the swish gate of G; y = · Woᵀ.
 * y may be x itself (same buffer and offset). Temporaries live in a
 * workspace held by the context. Non-blocking; the event, if asked for,
 * completes when y is written. Errors: as retcl_retention and
 * retcl_rotate, plus INVALID_SIZE when d or dv is not a multiple of H.
 * Per context.
 */
RETCL_API retcl_status retcl_msr_forward(retcl_context *ctx,
                                         const retcl_msr_desc *desc,
                                         const retcl_msr_weights *weights,
                                         const retcl_rotation *rot,
                                         retcl_buffer log_decay,
                                         retcl_buffer x, retcl_buffer state_in,
                                         retcl_buffer state_out, retcl_buffer y,
                                         cl_uint num_events_in_wait_list,
                                         const cl_event *event_wait_list,
                                         cl_event *event);

/* ------------------------------------------------------------------------ */
/* Training: loss, elementwise backward, optimizer (docs/design.md §1.7)     */
/* ------------------------------------------------------------------------ */

/** The activation of a GLU feed-forward (the model's activation_fn). */
typedef enum retcl_activation {
  RETCL_ACT_GELU = 0,  /**< erf form (torchscale's default) */
  RETCL_ACT_SWISH = 1  /**< x · sigmoid(x) ("swish" / "silu") */
} retcl_activation;

/**
 * Gradient of the GLU product h = act(a) ⊙ g over n floats:
 * d_a = d_h ⊙ g ⊙ act'(a) and d_g = d_h ⊙ act(a), with gelu'(x) =
 * Φ(x) + x φ(x) and swish'(x) = σ(x) (1 + x (1 − σ(x))). act(a) is
 * recomputed from a, so only the forward's inputs need to be kept.
 * d_a and d_g may each be one of a, g, d_h exactly (same buffer and offset:
 * the kernel reads an element's inputs before it writes its outputs), so
 * d_a == a and d_g == g computes the gradient in place; any other overlap,
 * and d_a overlapping d_g, is refused. Non-blocking. Errors:
 * INVALID_ARGUMENT (NULL buffer, unknown act, overlap, wait list),
 * INVALID_SIZE (n 0 or beyond 32-bit indexing), BUFFER_TOO_SMALL,
 * CONTEXT_MISMATCH, BUILD_FAILED, OPENCL; on any of them nothing is
 * enqueued and no buffer is touched. Per context.
 */
RETCL_API retcl_status retcl_glu_backward(retcl_context *ctx, size_t n,
                                          retcl_activation act, retcl_buffer a,
                                          retcl_buffer g, retcl_buffer d_h,
                                          retcl_buffer d_a, retcl_buffer d_g,
                                          cl_uint num_events_in_wait_list,
                                          const cl_event *event_wait_list,
                                          cl_event *event);

/**
 * Gradient of the embedding lookup x[i, :] = scale · table[tokens[i], :]
 * (i < count, dim floats per row): for every vocabulary row v,
 *   d_table[v, :] = (accumulate ? d_table[v, :] : 0)
 *                   + scale · Σ_{i : tokens[i] = v} d_x[i, :].
 * accumulate != 0 adds to d_table and leaves rows no token names as they
 * are (a tied embedding sums its two uses: the output projection's
 * gradient first, then this call); accumulate == 0 overwrites every row,
 * rows no token names becoming 0. tokens is a host array, copied at the
 * call. Deterministic: the positions of each token are summed in
 * increasing order (the host sorts them; no atomics), so two calls give
 * bitwise equal results. d_x [count, dim] and d_table [vocab, dim] must
 * not overlap. Non-blocking. Errors: INVALID_ARGUMENT (NULL tokens or
 * buffer, a token id outside [0, vocab): the message names the position;
 * a non-finite scale, overlap, wait list), INVALID_SIZE (a size 0 or
 * beyond 32-bit indexing), BUFFER_TOO_SMALL, CONTEXT_MISMATCH,
 * OUT_OF_MEMORY, BUILD_FAILED, OPENCL; on any of them nothing is
 * enqueued and d_table is untouched. Per context.
 */
RETCL_API retcl_status retcl_embedding_backward(
    retcl_context *ctx, size_t count, const int32_t *tokens, size_t vocab,
    size_t dim, float scale, retcl_buffer d_x, int accumulate,
    retcl_buffer d_table, cl_uint num_events_in_wait_list,
    const cl_event *event_wait_list, cl_event *event);

/**
 * Mean cross-entropy of logits [rows, vocab] against targets (a host array
 * of rows ids, copied at the call), leaving out every row whose target is
 * ignore_index (padding; torch uses -100):
 *   loss = (1/N) Σ_{counted r} −log softmax(logits_r)[targets[r]],
 * N the number of counted rows, computed stably as
 * (max_j x_j − x_t) + log Σ_j exp(x_j − max_j x_j) (no overflow for
 * logits of any size). loss is one float in a device buffer, summed over
 * the rows in a fixed order (two runs give the same bits). d_logits is
 * optional (mem NULL: not computed); when given it receives
 * (softmax(logits_r) − onehot(targets[r])) / N for counted rows and 0 for
 * ignored ones, and it may be logits itself (same buffer and offset: the
 * gradient replaces the logits in place); no other overlap is allowed, and
 * loss may overlap neither. When every row is ignored, loss is 0 and
 * d_logits all 0. Uses a workspace of rows floats held by the context.
 * Non-blocking. Errors: INVALID_ARGUMENT (NULL targets or buffer, a target
 * outside [0, vocab) that is not ignore_index: the message names the row;
 * overlap, wait list), INVALID_SIZE, BUFFER_TOO_SMALL, CONTEXT_MISMATCH,
 * OUT_OF_MEMORY, BUILD_FAILED, OPENCL; on any of them nothing is enqueued
 * and loss and d_logits are untouched. Per context.
 */
RETCL_API retcl_status retcl_cross_entropy(retcl_context *ctx, size_t rows,
                                           size_t vocab, retcl_buffer logits,
                                           const int32_t *targets,
                                           int32_t ignore_index,
                                           retcl_buffer loss,
                                           retcl_buffer d_logits,
                                           cl_uint num_events_in_wait_list,
                                           const cl_event *event_wait_list,
                                           cl_event *event);

/** AdamW hyper-parameters (decoupled weight decay, as torch.optim.AdamW).
 *  Every field means what it says; zero is a value, not a default. */
typedef struct retcl_adamw {
  float lr;           /**< learning rate of this step (>= 0) */
  float beta1, beta2; /**< moment decays, each in [0, 1) */
  float eps;          /**< > 0, added to sqrt(v̂) */
  float weight_decay; /**< decoupled: p ← p·(1 − lr·weight_decay) (>= 0) */
  float clip_norm;    /**< > 0: scale the gradient by
                           min(1, clip_norm / (‖g‖ + 1e-6)) first, ‖g‖ the
                           L2 norm over every tensor of the step; 0: none */
} retcl_adamw;

/** torch.optim.AdamW's defaults: lr 1e-3, beta1 0.9, beta2 0.999,
 *  eps 1e-8, weight_decay 0.01; clip_norm 0 (no clipping). NULL is a
 *  no-op. Thread-safe. */
RETCL_API void retcl_adamw_default(retcl_adamw *opt);

/**
 * One AdamW step on the device over n floats, step counting from 1:
 *   g = grad · c           (c the clip factor above, 1 without clipping)
 *   m ← β1 m + (1 − β1) g,   v ← β2 v + (1 − β2) g²
 *   param ← param · (1 − lr·wd) − (lr / (1 − β1^step)) · m /
 *           (sqrt(v) / sqrt(1 − β2^step) + eps)
 * (torch.optim.AdamW's arithmetic; the step's constants are computed in
 * double on the host). grad is read, not changed. The optimizer's state is
 * m, v (n floats each, zero before step 1) and the step number: plain
 * buffers the caller owns and may save beside a checkpoint, so training
 * resumes exactly. The gradient norm is a deterministic two-pass
 * reduction (fixed ranges, then their sums in a fixed order); clipping
 * then costs no extra pass over memory. grad_norm_out, optional (one
 * float), receives ‖grad‖ before clipping. No two of param, grad, m, v
 * and grad_norm_out may overlap. Uses a workspace held by the context when
 * clipping or reporting the norm. Non-blocking. Errors: INVALID_ARGUMENT
 * (opt NULL, a hyper-parameter out of its range, step 0, NULL buffer,
 * overlap, wait list), INVALID_SIZE, BUFFER_TOO_SMALL, CONTEXT_MISMATCH,
 * OUT_OF_MEMORY, BUILD_FAILED, OPENCL; on any of them nothing is
 * enqueued and every buffer is untouched. Per context.
 */
RETCL_API retcl_status retcl_adamw_step(retcl_context *ctx,
                                        const retcl_adamw *opt, size_t step,
                                        size_t n, retcl_buffer param,
                                        retcl_buffer grad, retcl_buffer m,
                                        retcl_buffer v,
                                        retcl_buffer grad_norm_out,
                                        cl_uint num_events_in_wait_list,
                                        const cl_event *event_wait_list,
                                        cl_event *event);

/** One tensor of a retcl_adamw_step_many call: n floats of each. */
typedef struct retcl_adamw_tensor {
  retcl_buffer param, grad, m, v;
  size_t n;
} retcl_adamw_tensor;

/**
 * retcl_adamw_step over count tensors at once (a model's weights, each in
 * its own buffer): the clip norm is the global L2 norm over all of their
 * gradients, and grad_norm_out receives it. The result is the same as one
 * retcl_adamw_step over the tensors laid end to end, up to the order of
 * the norm's partial sums. No buffer of any tensor may overlap another.
 * Errors: as retcl_adamw_step, the message naming the tensor
 * (tensors[i].grad ...); INVALID_ARGUMENT also for count 0 or tensors
 * NULL. Per context.
 */
RETCL_API retcl_status retcl_adamw_step_many(
    retcl_context *ctx, const retcl_adamw *opt, size_t step, size_t count,
    const retcl_adamw_tensor *tensors, retcl_buffer grad_norm_out,
    cl_uint num_events_in_wait_list, const cl_event *event_wait_list,
    cl_event *event);

/**
 * norm_out (one float) = sqrt(Σ grad[i]²) over n floats, by the same
 * deterministic reduction as the clipping of retcl_adamw_step (for
 * logging, or a caller's own clipping). norm_out may not overlap grad.
 * Non-blocking. Errors: INVALID_ARGUMENT, INVALID_SIZE, BUFFER_TOO_SMALL,
 * CONTEXT_MISMATCH, OUT_OF_MEMORY, BUILD_FAILED, OPENCL. Per context.
 */
RETCL_API retcl_status retcl_grad_norm(retcl_context *ctx, size_t n,
                                       retcl_buffer grad, retcl_buffer norm_out,
                                       cl_uint num_events_in_wait_list,
                                       const cl_event *event_wait_list,
                                       cl_event *event);

/**
 * Learning rate of step `step` (counting from 1, as retcl_adamw_step):
 * linear warm-up peak_lr · step / warmup while step < warmup, then a
 * cosine from peak_lr at step = warmup down to floor = peak_lr · floor_ratio
 * at step = total,
 *   floor + (peak_lr − floor) · (1 + cos(π (step − warmup) / (total − warmup))) / 2,
 * and floor from step = total on (also when total <= warmup). warmup 0
 * starts at the peak. NaN for a negative or non-finite peak_lr or a
 * floor_ratio outside [0, 1]. Thread-safe, no context needed.
 */
RETCL_API double retcl_lr_schedule(double peak_lr, size_t step, size_t warmup,
                                   size_t total, double floor_ratio);

/* ------------------------------------------------------------------------ */
/* RetNet models (docs/design.md §1.6): configuration and checkpoints                */
/* ------------------------------------------------------------------------ */

/** A RetNet decoder's shape, with torchscale's RetNetConfig field names in
 *  the comments (config.json uses those names). */
typedef struct retcl_model_config {
  size_t embed_dim;       /**< decoder_embed_dim: d = H * Dk */
  size_t value_embed_dim; /**< decoder_value_embed_dim: dv = H * Dv */
  size_t heads;           /**< decoder_retention_heads: H */
  size_t ffn_dim;         /**< decoder_ffn_embed_dim */
  size_t layers;          /**< decoder_layers: L */
  size_t vocab_size;      /**< vocab_size */
  retcl_activation activation; /**< activation_fn of the FFN */
  float layernorm_eps;    /**< layernorm_eps (1e-6) */
  int no_scale_embedding; /**< no_scale_embedding (1): else × sqrt(d) */
  int layernorm_embedding; /**< layernorm_embedding (0) */
  int deepnorm;           /**< deepnorm (0): residual α = (2L)^(1/4) */
  int share_embed;        /**< share_decoder_input_output_embed (0) */
  size_t chunk_size;      /**< recurrent_chunk_size (512) */
} retcl_model_config;

/** torchscale's RetNetConfig defaults (d 768, dv 1280, H 3, ffn 1280,
 *  L 12, gelu, eps 1e-6, no_scale_embedding, chunk 512); vocab_size 0 must
 *  be set. Thread-safe. */
RETCL_API void retcl_model_config_default(retcl_model_config *cfg);

/**
 * Write a random-weight checkpoint into folder dir (created if missing):
 * config.json with torchscale's field names and model.safetensors with
 * torchscale's tensor names, in dtype, including retnet_rel_pos.angle and
 * retnet_rel_pos.decay. Weights are uniform in ±1/sqrt(fan_in) from a
 * generator seeded by seed (same seed, same files); norm weights near 1.
 * For demos, tests and benchmarks. Blocks (file I/O); needs no context.
 * On failure the message is in retcl_last_error(NULL). Errors:
 * INVALID_ARGUMENT, INVALID_SIZE (inconsistent config), IO, OUT_OF_MEMORY.
 * Thread-safe (threads writing at once must use different folders).
 */
RETCL_API retcl_status retcl_checkpoint_write_random(
    const retcl_model_config *cfg, uint64_t seed, retcl_dtype dtype,
    const char *dir);

/* ------------------------------------------------------------------------ */
/* RetNet models: loading, forward, constant-memory decoding                */
/* ------------------------------------------------------------------------ */

/** Opaque: a loaded model, all weights in device buffers of its context. */
typedef struct retcl_model retcl_model;

/**
 * Load the checkpoint in folder dir (config.json + model.safetensors, see
 * docs/design.md §1.6; a "decoder." prefix on tensor names is accepted, and
 * so is the Hugging Face-style layout of the community ports, "model."
 * prefix and lm_head.weight, detected from the names, with their
 * config.json field names; docs/api.md lists both);
 * F32, F16 and BF16 tensors are converted to fp32; retcl_model_load_as
 * can keep them 16-bit). Host copies are freed
 * once uploaded. Every program the model runs is built here, so a forward
 * cannot fail from a build. Blocks. Errors: INVALID_ARGUMENT, IO (missing
 * or unreadable file), FORMAT (malformed JSON or safetensors, a missing
 * tensor, a wrong shape, an unknown dtype, offsets outside the file, a
 * file whose tensor names fit no layout or a tensor the layout cannot
 * place: the message names the tensor or field), INVALID_SIZE (a config the kernels
 * cannot run, e.g. recurrent_chunk_size over 1024: the message names the
 * config.json field), BUILD_FAILED (with the build log), OUT_OF_MEMORY,
 * OPENCL. Per context (ctx); several threads may load the same folder on
 * their own contexts.
 */
RETCL_API retcl_status retcl_model_load(retcl_context *ctx, const char *dir,
                                        retcl_model **out);
/** NULL is a no-op. Per context (the model's). */
RETCL_API void retcl_model_destroy(retcl_model *model);
/** How a model keeps its weights on the device (retcl_model_load_as).
 *  Activations, states and arithmetic stay fp32 in every case. */
typedef enum retcl_storage {
  RETCL_STORAGE_F32 = 0,  /**< fp32 (what retcl_model_load does; training
                               needs it) */
  RETCL_STORAGE_F16 = 1,  /**< IEEE binary16, rounded to nearest even */
  RETCL_STORAGE_BF16 = 2, /**< bfloat16, rounded to nearest even */
  RETCL_STORAGE_KEEP = 3  /**< the checkpoint's own type: that of its
                               embed_tokens.weight (a file mixing types has
                               every tensor converted to it) */
} retcl_storage;

/**
 * retcl_model_load with the weights stored as `storage` says: 16-bit
 * storage halves the device memory of the weights and the bytes a decode
 * step streams; every kernel reading them widens each value exactly and
 * accumulates in fp32. Converting an fp32 value to 16 bits rounds to
 * nearest even (overflow to ±inf, NaN stays NaN). The parameter vector
 * then holds 16-bit values (retcl_model_params is typed,
 * retcl_model_weight_bytes counts real bytes); a 16-bit model runs every
 * forward and decode entry point and retcl_model_save (values widened),
 * but training entry points fail with UNSUPPORTED (load with
 * RETCL_STORAGE_F32 to train). Errors: those of retcl_model_load, and
 * INVALID_ARGUMENT for a storage that is not a retcl_storage. Per context.
 */
RETCL_API retcl_status retcl_model_load_as(retcl_context *ctx,
                                           const char *dir,
                                           retcl_storage storage,
                                           retcl_model **out);
/** The element type of the model's weights on the device (F32 for NULL).
 *  Thread-safe: fixed at load. */
RETCL_API retcl_dtype retcl_model_weight_type(const retcl_model *model);
/** The configuration the model was loaded with. Thread-safe: fixed at
 *  load. */
RETCL_API retcl_status retcl_model_get_config(const retcl_model *model,
                                              retcl_model_config *cfg);
/** Bytes of device memory held by the model's weights. Thread-safe: fixed
 *  at load. */
RETCL_API size_t retcl_model_weight_bytes(const retcl_model *model);

/* The parameter vector. Every trainable tensor lives in one device buffer
 * of fp32, back to back in torchscale's state-dict order (embedding, its
 * optional norm, each layer's q, k, v, g, out projections, retention norm,
 * fc1, gate, fc2, FFN norm, then the final norm and the untied output
 * projection). A gradient, an optimizer moment or a saved copy is a buffer
 * of the same length laid out the same way. The rotation angles and decays
 * are not trained and are not in it. */

/** One tensor of the parameter vector. name is torchscale's (valid while
 *  the model lives); cols 0 marks a vector of rows elements; offset counts
 *  elements (of retcl_model_weight_type) from the start of the vector. */
typedef struct retcl_tensor_info {
  const char *name;
  size_t rows, cols;
  size_t offset;
} retcl_tensor_info;

/** Number of tensors in the parameter vector (0 for NULL). Thread-safe. */
RETCL_API size_t retcl_model_tensor_count(const retcl_model *model);
/** Tensor `index` (0 .. count-1). Errors: INVALID_ARGUMENT. Thread-safe. */
RETCL_API retcl_status retcl_model_tensor_info(const retcl_model *model,
                                               size_t index,
                                               retcl_tensor_info *info);
/** Elements in the parameter vector. Thread-safe. */
RETCL_API size_t retcl_model_param_count(const retcl_model *model);
/** The device buffer holding the parameter vector (read-write: training
 *  updates it in place; the model owns it), typed with the model's weight
 *  type (16-bit for a model loaded with 16-bit storage). Thread-safe. */
RETCL_API retcl_buffer retcl_model_params(const retcl_model *model);

/**
 * Write a checkpoint folder dir (created if missing) that retcl_model_load
 * reads back to this model: config.json and model.safetensors in dtype
 * (16-bit types round to nearest even), with the current weights, the
 * rotation angles and the decays. Blocks. Errors: INVALID_ARGUMENT, IO,
 * OUT_OF_MEMORY, OPENCL. Per context (the model's).
 */
RETCL_API retcl_status retcl_model_save(retcl_model *model, const char *dir,
                                        retcl_dtype dtype);

/**
 * Write `values`, a vector laid out like the parameter vector (a gradient,
 * say; param_count floats from its offset), as a safetensors file at path,
 * fp32, each tensor under the model's tensor name, after scalar_count
 * one-element tensors named scalar_names[i] holding scalars[i] (a loss,
 * say). Blocks. Errors: INVALID_ARGUMENT, BUFFER_TOO_SMALL, IO,
 * OUT_OF_MEMORY, OPENCL. Per context (the model's).
 */
RETCL_API retcl_status retcl_model_save_tensors(
    retcl_model *model, retcl_buffer values, const char *path,
    const char *const *scalar_names, const float *scalars,
    size_t scalar_count);

/**
 * The reverse of retcl_model_save_tensors: read every tensor of the
 * parameter vector, by name, from the safetensors file at path (F32, F16
 * or BF16; other tensors in the file are ignored) into `values`
 * (param_count floats from its offset). A file lacking a tensor, or with
 * one of another size, fails naming it and leaves values untouched. For
 * resuming an optimizer's moments, say. Blocks. Errors: INVALID_ARGUMENT,
 * BUFFER_TOO_SMALL, IO, FORMAT, OUT_OF_MEMORY, OPENCL. Per context (the
 * model's).
 */
RETCL_API retcl_status retcl_model_load_tensors(retcl_model *model,
                                                const char *path,
                                                retcl_buffer values);

/* ---- models split across cooperating processes -------------------------
 * The hooks a distributed runtime gives a model so that every forward
 * entry point (retcl_model_forward/_last, retcl_model_forward_packed,
 * retcl_model_decode_step) runs as one collective step over the processes
 * holding its parts. libretcl_mpi (retcl_mpi.h, retcl_mpi_model_load)
 * implements them over MPI; another runtime can implement them over its own
 * transport. docs/hpc.md describes both splits. */

/** A hook's answer: a status and, on failure, the message the call returns
 *  (the failing process's own, or "rank N failed: ..."). */
typedef struct retcl_split_result {
  retcl_status status;
  char message[512];
} retcl_split_result;

/**
 * How a model is divided among processes, and the hooks that join their
 * parts. Two splits:
 *  - Heads (sequence == 0): this process holds heads [head_begin,
 *    head_begin + head_count) of the retention layers (their rows of q, k,
 *    v, g, their columns of out_proj, their decays) and FFN hidden units
 *    [ffn_begin, ffn_begin + ffn_count) (rows of fc1 and gate, columns of
 *    fc2); the embedding, the norms and the output projection whole. Every
 *    process passes the same tokens and gets the same logits; decode
 *    states and pools hold this process's heads only. `sum` adds the
 *    processes' partial out_proj and fc2 outputs (twice per layer).
 *  - Sequence (sequence != 0): every process holds the whole model and
 *    passes its own contiguous slice of the tokens (slices in process
 *    order); `retention` runs each layer's retention over the slices and
 *    hands every process the state of the whole sequence.
 * `agree` is called once per forward by every process, also when that
 * process's own checks failed (status != SUCCESS), before anything that
 * waits for the others: it returns the status every process then returns,
 * and (sequence split) this process's first token's position, the tokens
 * of the processes before it.
 */
typedef struct retcl_model_split {
  size_t head_begin, head_count; /**< heads split: this process's heads */
  size_t ffn_begin, ffn_count;   /**< heads split: its FFN units */
  /** parts > 0 (heads split): this process holds part `part` of `parts`
   *  near-equal contiguous parts of the heads and of the FFN units
   *  ([n·part/parts, n·(part+1)/parts)), computed from the checkpoint's
   *  config; the four fields above are then ignored. */
  size_t part, parts;
  int sequence;                  /**< 1: sequence split (counts above 0) */
  void *user;                    /**< passed to every hook */
  /** Agree on `status` (and exchange `tokens`, this process's tokens per
   *  sequence); *token_offset = the tokens of the processes before this
   *  one, *token_total = everyone's (sequence split; heads: 0 and tokens).
   *  `shape` digests what must be the same on every process (heads split:
   *  the batch, the tokens, the packing, the slots, the algorithm and
   *  chunk; sequence split: all but the tokens): processes whose digests
   *  differ must all fail (INVALID_ARGUMENT). */
  retcl_split_result (*agree)(void *user, retcl_context *ctx,
                              retcl_status status, size_t tokens,
                              uint64_t shape, size_t *token_offset,
                              size_t *token_total);
  /** Heads split: y (n floats on ctx's device) = the sum of every
   *  process's y, on every process. status != SUCCESS: this process
   *  failed after `agree` and computes nothing; the hook still takes part
   *  and every process returns a failure. */
  retcl_split_result (*sum)(void *user, retcl_context *ctx, retcl_buffer y,
                            size_t n, retcl_status status);
  /** Sequence split: retention (torchscale form) of this process's slice
   *  (desc->tokens of them) continuing the slices before it, state_out
   *  (optional) = the state after the WHOLE sequence on every process.
   *  status as for `sum`. */
  retcl_split_result (*retention)(void *user, retcl_context *ctx,
                                  const retcl_retention_desc *desc,
                                  retcl_buffer q, retcl_buffer k,
                                  retcl_buffer v, retcl_buffer log_decay,
                                  retcl_buffer state_out, retcl_buffer out,
                                  retcl_status status);
} retcl_model_split;

/**
 * retcl_model_load_as for one process's part of a split model: a heads
 * split reads only this process's rows and columns of each layer from the
 * file (about 1/P of the layers' weights per process; the embedding, norms
 * and output projection whole). The split is copied
 * (user must outlive the model). A split model's config is the whole
 * model's. Entry points that need the whole model (training,
 * retcl_model_save, retcl_model_params' layout) return UNSUPPORTED; a
 * sequence-split model runs retcl_model_forward/_last only, from an empty
 * state, in the recurrent or chunkwise form (chunkwise: every slice but the
 * last a multiple of the chunk size). Errors: those of retcl_model_load_as,
 * INVALID_ARGUMENT (a NULL hook the split needs), INVALID_SIZE (ranges
 * outside the model, naming them). Per context; the hooks decide what
 * else.
 */
RETCL_API retcl_status retcl_model_load_split(retcl_context *ctx,
                                              const char *dir,
                                              retcl_storage storage,
                                              const retcl_model_split *split,
                                              retcl_model **out);

/** Opaque: per-layer retention states of `batch` sequences and the number
 *  of tokens they have absorbed. Its size does not depend on that number. */
typedef struct retcl_decode_state retcl_decode_state;

/** A fresh (empty) decode state for `batch` sequences of model.
 *  Per context (the model's). */
RETCL_API retcl_status retcl_decode_state_create(retcl_model *model,
                                                 size_t batch,
                                                 retcl_decode_state **out);
/** NULL is a no-op. Per context (the model's). */
RETCL_API void retcl_decode_state_destroy(retcl_decode_state *state);
/** Tokens absorbed so far (the position of the next token). Per context:
 *  a forward on the state changes it. */
RETCL_API size_t retcl_decode_state_position(const retcl_decode_state *state);
/** Bytes of device memory the state holds: L * B * H * Dk * Dv * 4.
 *  Thread-safe: fixed at creation. */
RETCL_API size_t retcl_decode_state_bytes(const retcl_decode_state *state);

/**
 * Copy into `to` what it holds of the state `from`, with its position:
 * the states' models have the same config, and `from`'s model holds every
 * head `to`'s holds (e.g. `from` of a sequence-split or whole model after a
 * prefill, `to` of a heads-split model that decodes on). Same batch, same
 * context. Errors: INVALID_ARGUMENT (naming the mismatch), OPENCL.
 * Enqueues on the context's queue and returns; the copies are ordered
 * before later work on it. Per context.
 */
RETCL_API retcl_status retcl_decode_state_copy(const retcl_decode_state *from,
                                               retcl_decode_state *to);

/**
 * Run the model on tokens [batch, tokens] (row-major host array of ids <
 * vocab_size) and write logits [batch, tokens, vocab_size] (host, fp32) if
 * logits is not NULL.
 *
 * algorithm: RETCL_ALGO_PARALLEL or _CHUNKWISE (chunk_size tokens per
 *            chunk; 0 takes the config's) run the whole sequence at once;
 *            RETCL_ALGO_RECURRENT feeds it through the recurrence.
 * state:     NULL for a stand-alone forward. Otherwise a decode state of the
 *            same batch: the tokens continue its sequences (positions start
 *            at its position) and it is advanced past them. Continuing a
 *            non-empty state needs RETCL_ALGO_RECURRENT (torchscale's
 *            parallel and chunkwise forms start from an empty state);
 *            prefill from an empty state may use any algorithm.
 * Blocks until the logits are on the host. Errors: INVALID_ARGUMENT (a
 * token id out of range, a state of another model or batch),
 * INVALID_SIZE, UNSUPPORTED, OUT_OF_MEMORY, OPENCL. Per context (the
 * model's): two threads running one model need a lock, or a context and a
 * model each.
 */
RETCL_API retcl_status retcl_model_forward(retcl_model *model,
                                           retcl_decode_state *state,
                                           const int32_t *tokens,
                                           size_t batch, size_t tokens_len,
                                           retcl_algorithm algorithm,
                                           size_t chunk_size, float *logits);

/**
 * As retcl_model_forward, but only the logits of each sequence's last
 * token are computed and written: last_logits [batch, vocab_size] (host).
 * This is what prefill before generation needs; it avoids the
 * [batch, tokens, vocab] logits a long prompt would otherwise produce.
 * Per context (the model's).
 */
RETCL_API retcl_status retcl_model_forward_last(retcl_model *model,
                                                retcl_decode_state *state,
                                                const int32_t *tokens,
                                                size_t batch,
                                                size_t tokens_len,
                                                retcl_algorithm algorithm,
                                                size_t chunk_size,
                                                float *last_logits);

/* ------------------------------------------------------------------------ */
/* Serving: packed batches and a pool of decode states (docs/api.md)        */
/* ------------------------------------------------------------------------ */

/** Opaque: `slots` decode states of one model, each one sequence's
 *  per-layer retention states and the number of tokens it has absorbed
 *  (its position; 0 = empty). Sequences of a running batch live in slots,
 *  so they join and leave without anyone's state being copied. */
typedef struct retcl_state_pool retcl_state_pool;

/** A pool of `slots` empty slots (1 .. 2^20). Errors: INVALID_ARGUMENT,
 *  INVALID_SIZE, OUT_OF_MEMORY, OPENCL. Per context (the model's). */
RETCL_API retcl_status retcl_state_pool_create(retcl_model *model,
                                               size_t slots,
                                               retcl_state_pool **out);
/** NULL is a no-op. Per context (the model's). */
RETCL_API void retcl_state_pool_destroy(retcl_state_pool *pool);
/** Number of slots (0 for NULL). Thread-safe: fixed at creation. */
RETCL_API size_t retcl_state_pool_slots(const retcl_state_pool *pool);
/** Bytes of device memory the pool holds: slots * L * H * Dk * Dv * 4.
 *  Thread-safe: fixed at creation. */
RETCL_API size_t retcl_state_pool_bytes(const retcl_state_pool *pool);
/** Tokens absorbed by `slot` (0 when empty, or for a slot out of range).
 *  Per context: a forward on the pool changes it. */
RETCL_API size_t retcl_state_pool_position(const retcl_state_pool *pool,
                                           size_t slot);
/** Empty `slot` (its position becomes 0; nothing is enqueued): the next
 *  sequence given it starts from an empty state. Errors: INVALID_ARGUMENT
 *  (NULL, slot out of range). Per context (the model's). */
RETCL_API retcl_status retcl_state_pool_reset(retcl_state_pool *pool,
                                              size_t slot);

/**
 * Run the model on `sequences` token sequences of different lengths packed
 * back to back: tokens [offsets[sequences]] (host), sequence i being
 * tokens offsets[i] .. offsets[i+1] - 1 (offsets: host, sequences + 1
 * values from 0, strictly increasing: every sequence has >= 1 token). Each
 * sequence's results equal running it alone (retcl_model_forward with
 * batch 1), with no cost for padding.
 *
 * pool, slots: NULL, NULL for stand-alone sequences. Otherwise slots
 *            (host, `sequences` values) gives each sequence's slot in pool,
 *            or -1 for none: sequence i continues slot slots[i] (from its
 *            position; an empty slot starts fresh) and the slot is advanced
 *            past it. No slot may appear twice. Continuing a non-empty slot
 *            needs RETCL_ALGO_RECURRENT (as retcl_model_forward).
 * logits:    NULL, or host [offsets[sequences], vocab_size] when last_only
 *            is 0, or [sequences, vocab_size] (each sequence's last token)
 *            when last_only is 1.
 * Blocks until the logits are on the host. A failed call changes no slot.
 * Errors: INVALID_ARGUMENT (a bad offset array, slot index, token id, a
 * pool of another model), INVALID_SIZE, UNSUPPORTED, OUT_OF_MEMORY,
 * OPENCL. Per context (the model's).
 */
RETCL_API retcl_status retcl_model_forward_packed(
    retcl_model *model, retcl_state_pool *pool, const int32_t *slots,
    const int32_t *tokens, const size_t *offsets, size_t sequences,
    retcl_algorithm algorithm, size_t chunk_size, int last_only,
    float *logits);

/**
 * One decoding step of a running batch: row r feeds token tokens[r] to the
 * sequence in slot slots[r] and writes its next-token logits to row r of
 * logits [rows, vocab_size] (host); slots[r] = -1 skips the row (its token
 * is not read and its logits row is left as it was). The same work as a
 * rectangular decode step of the rows that are not skipped, whatever their
 * positions. No slot may appear twice. Blocks until the logits are on the
 * host. A failed call changes no slot. Errors: INVALID_ARGUMENT,
 * INVALID_SIZE, OUT_OF_MEMORY, OPENCL. Per context (the model's).
 */
RETCL_API retcl_status retcl_model_decode_step(retcl_model *model,
                                               retcl_state_pool *pool,
                                               const int32_t *slots,
                                               const int32_t *tokens,
                                               size_t rows, float *logits);

/* ------------------------------------------------------------------------ */
/* Training a model (docs/design.md §1.7; docs/training.md)                  */
/* ------------------------------------------------------------------------ */

/** How retcl_model_forward_train runs; retcl_train_options_default fills
 *  in the defaults. */
typedef struct retcl_train_options {
  /** Retention form of the forward (and so of its gradient): parallel,
   *  chunkwise (default) or recurrent. */
  retcl_algorithm algorithm;
  /** Chunkwise: tokens per chunk; 0 takes the config's. */
  size_t chunk_size;
  /** 0 (default): keep every layer's intermediates for the backward.
   *  1: keep only each layer's input and recompute the rest during the
   *  backward: memory (L + 1)·B·T·d floats of layer inputs plus one
   *  layer's intermediates, instead of L layers' worth, for one more
   *  forward's time. */
  int recompute;
  /** Targets (next tokens) equal to it are not counted in the loss
   *  (padding); negative (default -1): every target counts. */
  int32_t ignore_index;
} retcl_train_options;

/** Chunkwise, chunk from the config, no recomputation, no ignore index.
 *  Thread-safe. */
RETCL_API void retcl_train_options_default(retcl_train_options *options);

/**
 * The training forward of tokens [batch, tokens_len] (host ids, copied):
 * *loss (host) = the mean over every sequence's positions i = 0 ..
 * tokens_len − 2 (those whose target is not the ignore index) of the
 * cross-entropy of the logits at i against token i + 1 — per sequence
 * torch's cross_entropy(logits[:-1], tokens[1:]). The model keeps what
 * retcl_model_backward needs (its training memory, see
 * retcl_model_train_bytes) until the next training forward or its
 * destruction. options NULL: the defaults. tokens_len must be >= 2.
 * Blocks until the loss is on the host. Errors: INVALID_ARGUMENT (a token
 * out of range, NULL), INVALID_SIZE, OUT_OF_MEMORY, OPENCL. Per context
 * (the model's).
 */
RETCL_API retcl_status retcl_model_forward_train(
    retcl_model *model, const int32_t *tokens, size_t batch,
    size_t tokens_len, const retcl_train_options *options, float *loss);

/**
 * The gradient of the last retcl_model_forward_train's loss with respect
 * to every weight, written (not added) into grads: a buffer laid out like
 * the parameter vector (retcl_model_param_count floats from its offset,
 * not overlapping the parameters). A tied embedding's gradient is the sum
 * of its two uses. Every gradient is reduced in a fixed order: two calls
 * give bitwise equal results. Non-blocking (retcl_finish waits). Errors:
 * INVALID_ARGUMENT (no training forward yet, overlap), BUFFER_TOO_SMALL,
 * CONTEXT_MISMATCH, OUT_OF_MEMORY, OPENCL. Per context (the model's).
 */
RETCL_API retcl_status retcl_model_backward(retcl_model *model,
                                            retcl_buffer grads);

/** Bytes of device memory the model holds for training (what the last
 *  training forward kept); 0 before the first. Per context. */
RETCL_API size_t retcl_model_train_bytes(const retcl_model *model);

/** Sampling settings: temperature 0 is greedy (argmax, lowest id on ties);
 *  otherwise softmax(logits / temperature) restricted to the top_k most
 *  likely ids (0 = all). */
typedef struct retcl_sampler {
  float temperature;
  size_t top_k;
} retcl_sampler;

/**
 * Pick a token id from logits[0..vocab) (host). rng_state is the caller's
 * 64-bit generator state, advanced by the call (seed it once; same seed,
 * same choices). Errors: INVALID_ARGUMENT (NULL, negative or non-finite
 * temperature), INVALID_SIZE (vocab 0). Thread-safe, no context needed.
 */
RETCL_API retcl_status retcl_sample(const float *logits, size_t vocab,
                                    const retcl_sampler *sampler,
                                    uint64_t *rng_state, int32_t *token);

#ifdef __cplusplus
}
#endif

#endif /* RETCL_H */
