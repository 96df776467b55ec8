/* retention.c - retcl_retention: validation and dispatch of the parallel,
 * recurrent and chunkwise algorithms (kernels in cl/retention.cl). */
#include "internal.h"

#include <math.h>

#define MAX_HEAD_DIM 1024
#define MAX_CHUNK 1024
#define DEFAULT_CHUNK 64
/* Must match the defaults of cl/retention.cl; the column-block width is
 * ctx->traits.vector_width (RETCL_VW there). */
#define RB 8 /* query rows per work-item */
#define KB 8 /* state rows per work-item */

static const char *OP = "retcl_retention";

/* Sizes of everything one call touches, in floats. */
typedef struct extents {
  size_t qk, vo, state, chunks, chunk;
} extents;

/* One tensor argument as the kernels take it: buffer, offset, strides. */
typedef struct tensor_arg {
  cl_mem mem;
  cl_uint off;
  retcl_strides s;
} tensor_arg;

static retcl_status set_tensor(retcl_context *ctx, cl_kernel k, cl_uint i,
                               const tensor_arg *t) {
  RETCL_ARG(ctx, k, i, t->mem);
  RETCL_ARG(ctx, k, i + 1, t->off);
  RETCL_ARG(ctx, k, i + 2, t->s.batch);
  RETCL_ARG(ctx, k, i + 3, t->s.token);
  RETCL_ARG(ctx, k, i + 4, t->s.head);
  return RETCL_SUCCESS;
}

static retcl_status check_desc(retcl_context *ctx,
                               const retcl_retention_desc *d) {
  retcl_status st;
  if (d->layout != RETCL_LAYOUT_TOKEN_MAJOR &&
      d->layout != RETCL_LAYOUT_HEAD_MAJOR)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->layout = %d is not a retcl_layout", OP,
                       (int)d->layout);
  if (d->algorithm != RETCL_ALGO_PARALLEL &&
      d->algorithm != RETCL_ALGO_RECURRENT &&
      d->algorithm != RETCL_ALGO_CHUNKWISE)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->algorithm = %d is not a retcl_algorithm", OP,
                       (int)d->algorithm);
  if (d->form != RETCL_FORM_RAW && d->form != RETCL_FORM_TORCHSCALE)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->form = %d is not a retcl_retention_form", OP,
                       (int)d->form);
  if ((st = retcl__check_dim(ctx, OP, "desc->batch", d->batch, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP, "desc->tokens", d->tokens, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP, "desc->heads", d->heads, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP, "desc->key_dim", d->key_dim, 1,
                             MAX_HEAD_DIM)) ||
      (st = retcl__check_dim(ctx, OP, "desc->value_dim", d->value_dim, 1,
                             MAX_HEAD_DIM)))
    return st;
  if (d->algorithm == RETCL_ALGO_CHUNKWISE && d->chunk_size != 0 &&
      (st = retcl__check_dim(ctx, OP, "desc->chunk_size", d->chunk_size, 1,
                             MAX_CHUNK)))
    return st;
  if (!isfinite(d->scale))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->scale is not finite", OP);
  return RETCL_SUCCESS;
}

/* Torchscale forms carry a token count with their state (DESIGN 1.4). */
static retcl_status check_torchscale_state(retcl_context *ctx,
                                           const retcl_retention_desc *d,
                                           int has_state_in) {
  if (d->form != RETCL_FORM_TORCHSCALE) return RETCL_SUCCESS;
  if (has_state_in && d->algorithm != RETCL_ALGO_RECURRENT)
    return retcl__fail(ctx, RETCL_ERROR_UNSUPPORTED,
                       "%s: the torchscale %s form starts from an empty state "
                       "(as torchscale does); pass no state_in, or use "
                       "RETCL_ALGO_RECURRENT to continue a sequence",
                       OP, d->algorithm == RETCL_ALGO_PARALLEL ? "parallel"
                                                               : "chunkwise");
  if (has_state_in && d->position == 0)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: state_in is given but desc->position is 0; pass "
                       "the number of tokens the state has absorbed",
                       OP);
  if (!has_state_in && d->position != 0)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->position = %zu but no state_in is given", OP,
                       d->position);
  return RETCL_SUCCESS;
}

static retcl_status check_buffers(retcl_context *ctx, const extents *e,
                                  retcl_buffer q, retcl_buffer k,
                                  retcl_buffer v, retcl_buffer log_decay,
                                  size_t heads, retcl_buffer state_in,
                                  retcl_buffer state_out, retcl_buffer out) {
  retcl_status st;
  if ((st = retcl__check_buffer(ctx, OP, "q", q, e->qk)) ||
      (st = retcl__check_buffer(ctx, OP, "k", k, e->qk)) ||
      (st = retcl__check_buffer(ctx, OP, "v", v, e->vo)) ||
      (st = retcl__check_buffer(ctx, OP, "log_decay", log_decay, heads)) ||
      (st = retcl__check_optional_buffer(ctx, OP, "state_in", state_in,
                                         e->state)) ||
      (st = retcl__check_optional_buffer(ctx, OP, "state_out", state_out,
                                         e->state)) ||
      (st = retcl__check_buffer(ctx, OP, "out", out, e->vo)))
    return st;
  const struct {
    const char *name;
    retcl_buffer buf;
    size_t n;
  } inputs[] = {{"q", q, e->qk},
                {"k", k, e->qk},
                {"v", v, e->vo},
                {"log_decay", log_decay, heads},
                {"state_in", state_in, e->state}};
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; ++i) {
    if (retcl__overlaps(out, e->vo, inputs[i].buf, inputs[i].n))
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: out overlaps %s", OP, inputs[i].name);
    int same_state = i == 4 && state_in.offset == state_out.offset;
    if (!same_state &&
        retcl__overlaps(state_out, e->state, inputs[i].buf, inputs[i].n))
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: state_out overlaps %s", OP, inputs[i].name);
  }
  if (retcl__overlaps(state_out, e->state, out, e->vo))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: state_out overlaps out", OP);
  return RETCL_SUCCESS;
}

/* What every launch shares. */
typedef struct launch {
  retcl_context *ctx;
  const retcl_retention_desc *d;
  tensor_arg q, k, v, o;
  retcl_buffer log_decay;
  cl_uint wait_n;        /* consumed by the first enqueue */
  const cl_event *wait;
  cl_event *event;       /* set by the last enqueue */
} launch;

static retcl_status enqueue(launch *l, cl_kernel k, const size_t global[3],
                            int is_last) {
  /* CPUs: one work-item per work-group. Each work-item of these kernels
   * keeps tiles in private arrays; left to choose, PoCL packs thousands of
   * work-items into a group and its worker stack overflows (T = 2^15 at
   * Dk = Dv = 8 crashed). Every item walks contiguous memory on its own, so
   * nothing is lost. GPUs choose their own group shape. */
  static const size_t one[3] = {1, 1, 1};
  const size_t *local = l->ctx->traits.is_cpu ? one : NULL;
  cl_int err = clEnqueueNDRangeKernel(l->ctx->queue, k, 3, NULL, global, local,
                                      l->wait_n, l->wait,
                                      is_last ? l->event : NULL);
  l->wait_n = 0;
  l->wait = NULL;
  if (err != CL_SUCCESS)
    return retcl__cl_fail(l->ctx, "clEnqueueNDRangeKernel(retention)", err);
  return RETCL_SUCCESS;
}

/* Arguments 0..21 of chunk_output and recurrent: q, k, v, out as tensors
 * (buffer, offset, 3 strides), then log_decay and its offset. */
static retcl_status set_qkvo_decay(launch *l, cl_kernel k) {
  retcl_context *ctx = l->ctx;
  retcl_status st;
  cl_uint ld_off = (cl_uint)l->log_decay.offset;
  if ((st = set_tensor(ctx, k, 0, &l->q)) || (st = set_tensor(ctx, k, 5, &l->k)) ||
      (st = set_tensor(ctx, k, 10, &l->v)) || (st = set_tensor(ctx, k, 15, &l->o)))
    return st;
  RETCL_ARG(ctx, k, 20, l->log_decay.mem);
  RETCL_ARG(ctx, k, 21, ld_off);
  return RETCL_SUCCESS;
}

static size_t column_blocks(const launch *l) {
  const size_t vw = l->ctx->traits.vector_width;
  return (l->d->value_dim + vw - 1) / vw;
}

/* Dimension 0 of the grid: CPUs walk all column blocks in one work-item. */
static size_t column_items(const launch *l) {
  return l->ctx->traits.is_cpu ? 1 : column_blocks(l);
}

/* U_c for every chunk of C tokens into U. */
static retcl_status run_chunk_state(launch *l, cl_mem U, size_t C,
                                    size_t n_chunks) {
  const retcl_retention_desc *d = l->d;
  cl_kernel k;
  retcl_status st = retcl__kernel(l->ctx, RETCL_KERNEL_RETENTION_CHUNK_STATE, &k);
  if (st) return st;
  retcl_context *ctx = l->ctx;
  cl_uint ld_off = (cl_uint)l->log_decay.offset, T = (cl_uint)d->tokens,
          H = (cl_uint)d->heads, Dk = (cl_uint)d->key_dim,
          Dv = (cl_uint)d->value_dim, Cu = (cl_uint)C, Nc = (cl_uint)n_chunks;
  if ((st = set_tensor(ctx, k, 0, &l->k)) || (st = set_tensor(ctx, k, 5, &l->v)))
    return st;
  RETCL_ARG(ctx, k, 10, l->log_decay.mem);
  RETCL_ARG(ctx, k, 11, ld_off);
  RETCL_ARG(ctx, k, 12, U);
  RETCL_ARG(ctx, k, 13, T);
  RETCL_ARG(ctx, k, 14, H);
  RETCL_ARG(ctx, k, 15, Dk);
  RETCL_ARG(ctx, k, 16, Dv);
  RETCL_ARG(ctx, k, 17, Cu);
  RETCL_ARG(ctx, k, 18, Nc);
  size_t global[3] = {column_items(l), (d->key_dim + KB - 1) / KB,
                      d->batch * d->heads * n_chunks};
  return enqueue(l, k, global, 0);
}

/* U_c -> state before chunk c, in place; final state to state_out. */
static retcl_status run_chunk_scan(launch *l, cl_mem U, size_t C,
                                   size_t n_chunks, retcl_buffer state_in,
                                   retcl_buffer state_out, int is_last) {
  const retcl_retention_desc *d = l->d;
  retcl_context *ctx = l->ctx;
  cl_kernel k;
  retcl_status st = retcl__kernel(ctx, RETCL_KERNEL_RETENTION_CHUNK_SCAN, &k);
  if (st) return st;
  cl_mem s_in = state_in.mem ? state_in.mem : U;
  cl_mem s_out = state_out.mem ? state_out.mem : U;
  cl_uint s_in_off = (cl_uint)state_in.offset,
          s_out_off = (cl_uint)state_out.offset;
  cl_int has_in = state_in.mem != NULL, has_out = state_out.mem != NULL;
  cl_uint ld_off = (cl_uint)l->log_decay.offset, T = (cl_uint)d->tokens,
          H = (cl_uint)d->heads, Dk = (cl_uint)d->key_dim,
          Dv = (cl_uint)d->value_dim, Cu = (cl_uint)C, Nc = (cl_uint)n_chunks;
  RETCL_ARG(ctx, k, 0, U);
  RETCL_ARG(ctx, k, 1, s_in);
  RETCL_ARG(ctx, k, 2, s_in_off);
  RETCL_ARG(ctx, k, 3, has_in);
  RETCL_ARG(ctx, k, 4, s_out);
  RETCL_ARG(ctx, k, 5, s_out_off);
  RETCL_ARG(ctx, k, 6, has_out);
  RETCL_ARG(ctx, k, 7, l->log_decay.mem);
  RETCL_ARG(ctx, k, 8, ld_off);
  RETCL_ARG(ctx, k, 9, T);
  RETCL_ARG(ctx, k, 10, H);
  RETCL_ARG(ctx, k, 11, Dk);
  RETCL_ARG(ctx, k, 12, Dv);
  RETCL_ARG(ctx, k, 13, Cu);
  RETCL_ARG(ctx, k, 14, Nc);
  cl_int ts_out = d->form == RETCL_FORM_TORCHSCALE;
  cl_float n_total = (cl_float)(d->position + d->tokens);
  RETCL_ARG(ctx, k, 15, ts_out);
  RETCL_ARG(ctx, k, 16, n_total);
  size_t global[3] = {column_blocks(l), d->key_dim,
                      d->batch * d->heads};
  return enqueue(l, k, global, is_last);
}

/* Outputs of every chunk; R holds the state before each chunk (or NULL). */
static retcl_status run_chunk_output(launch *l, cl_mem R, size_t r_off,
                                     size_t C, size_t n_chunks, cl_int form,
                                     float out_scale, int is_last) {
  const retcl_retention_desc *d = l->d;
  retcl_context *ctx = l->ctx;
  cl_kernel k;
  retcl_status st = retcl__kernel(ctx, RETCL_KERNEL_RETENTION_CHUNK_OUTPUT, &k);
  if (st) return st;
  cl_int has_R = R != NULL;
  cl_mem r_mem = R ? R : l->q.mem; /* never read when has_R == 0 */
  cl_uint r_offu = (cl_uint)r_off,
          T = (cl_uint)d->tokens, H = (cl_uint)d->heads,
          Dk = (cl_uint)d->key_dim, Dv = (cl_uint)d->value_dim,
          Cu = (cl_uint)C, Nc = (cl_uint)n_chunks;
  if ((st = set_qkvo_decay(l, k))) return st;
  RETCL_ARG(ctx, k, 22, r_mem);
  RETCL_ARG(ctx, k, 23, r_offu);
  RETCL_ARG(ctx, k, 24, has_R);
  RETCL_ARG(ctx, k, 25, T);
  RETCL_ARG(ctx, k, 26, H);
  RETCL_ARG(ctx, k, 27, Dk);
  RETCL_ARG(ctx, k, 28, Dv);
  RETCL_ARG(ctx, k, 29, Cu);
  RETCL_ARG(ctx, k, 30, Nc);
  RETCL_ARG(ctx, k, 31, form);
  RETCL_ARG(ctx, k, 32, out_scale);
  size_t global[3] = {column_items(l), (C + RB - 1) / RB,
                      d->batch * d->heads * n_chunks};
  return enqueue(l, k, global, is_last);
}

static retcl_status run_recurrent(launch *l, retcl_buffer state_in,
                                  retcl_buffer state_out, float out_scale) {
  const retcl_retention_desc *d = l->d;
  retcl_context *ctx = l->ctx;
  const size_t state_elems = d->batch * d->heads * d->key_dim * d->value_dim;
  retcl_buffer work = state_out;
  retcl_status st;
  if (!work.mem) {
    work.offset = 0;
    if ((st = retcl__scratch(ctx, state_elems * sizeof(float), &work.mem)))
      return st;
  }
  cl_kernel k;
  if ((st = retcl__kernel(ctx, RETCL_KERNEL_RETENTION_RECURRENT, &k))) return st;
  cl_mem s_in = state_in.mem ? state_in.mem : work.mem;
  cl_uint s_in_off = (cl_uint)state_in.offset, s_off = (cl_uint)work.offset;
  cl_int has_in = state_in.mem != NULL;
  cl_int form = d->form == RETCL_FORM_TORCHSCALE;
  cl_float position = (cl_float)d->position;
  cl_uint T = (cl_uint)d->tokens,
          H = (cl_uint)d->heads, Dk = (cl_uint)d->key_dim,
          Dv = (cl_uint)d->value_dim;
  if ((st = set_qkvo_decay(l, k))) return st;
  RETCL_ARG(ctx, k, 22, s_in);
  RETCL_ARG(ctx, k, 23, s_in_off);
  RETCL_ARG(ctx, k, 24, has_in);
  RETCL_ARG(ctx, k, 25, work.mem);
  RETCL_ARG(ctx, k, 26, s_off);
  RETCL_ARG(ctx, k, 27, T);
  RETCL_ARG(ctx, k, 28, H);
  RETCL_ARG(ctx, k, 29, Dk);
  RETCL_ARG(ctx, k, 30, Dv);
  RETCL_ARG(ctx, k, 31, form);
  RETCL_ARG(ctx, k, 32, out_scale);
  RETCL_ARG(ctx, k, 33, position);
  size_t global[3] = {column_blocks(l), 1, d->batch * d->heads};
  return enqueue(l, k, global, 1);
}

retcl_status retcl__retention_check(retcl_context *ctx,
                                   const retcl_retention_desc *d,
                                   int has_state_in) {
  retcl_status st = check_desc(ctx, d);
  return st ? st : check_torchscale_state(ctx, d, has_state_in);
}

retcl_status retcl_retention(retcl_context *ctx,
                             const retcl_retention_desc *desc, retcl_buffer q,
                             retcl_buffer k, retcl_buffer v,
                             retcl_buffer log_decay, retcl_buffer state_in,
                             retcl_buffer state_out, retcl_buffer out,
                             cl_uint num_events_in_wait_list,
                             const cl_event *event_wait_list, cl_event *event) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if (!desc)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: desc is NULL",
                       OP);
  if ((st = check_desc(ctx, desc)) ||
      (st = check_torchscale_state(ctx, desc, state_in.mem != NULL)) ||
      (st = retcl__check_wait_list(ctx, OP, num_events_in_wait_list,
                                   event_wait_list)))
    return st;
  const retcl_retention_desc *d = desc;
  const size_t bth = retcl__mul(retcl__mul(d->batch, d->tokens), d->heads);
  extents e;
  e.qk = retcl__mul(bth, d->key_dim);
  e.vo = retcl__mul(bth, d->value_dim);
  e.state = retcl__mul(retcl__mul(d->batch, d->heads),
                       d->key_dim * d->value_dim);
  e.chunk = d->algorithm == RETCL_ALGO_CHUNKWISE
                ? (d->chunk_size ? d->chunk_size : DEFAULT_CHUNK)
                : d->tokens;
  if (e.chunk > d->tokens) e.chunk = d->tokens;
  e.chunks = (d->tokens + e.chunk - 1) / e.chunk;
  if ((st = check_buffers(ctx, &e, q, k, v, log_decay, d->heads, state_in,
                          state_out, out)))
    return st;
  const size_t scratch_elems = retcl__mul(e.state, e.chunks);
  if (scratch_elems > RETCL_MAX_INDEX)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: the chunk states need %zu floats (B*H*Dk*Dv*chunks)"
                       "; the limit is %zu: use a larger chunk_size",
                       OP, scratch_elems, RETCL_MAX_INDEX);

  const int ts = d->form == RETCL_FORM_TORCHSCALE;
  const float out_scale = ts ? 1.0f : (d->scale != 0.0f ? d->scale : 1.0f);

  launch l = {ctx, d, {0}, {0}, {0}, {0}, log_decay, num_events_in_wait_list,
              event_wait_list, event};
  l.q = (tensor_arg){q.mem, (cl_uint)q.offset,
                     retcl__strides(d->layout, d->tokens, d->heads, d->key_dim)};
  l.k = (tensor_arg){k.mem, (cl_uint)k.offset, l.q.s};
  l.v = (tensor_arg){v.mem, (cl_uint)v.offset,
                     retcl__strides(d->layout, d->tokens, d->heads, d->value_dim)};
  l.o = (tensor_arg){out.mem, (cl_uint)out.offset, l.v.s};

  if (d->algorithm == RETCL_ALGO_RECURRENT)
    return run_recurrent(&l, state_in, state_out, out_scale);

  const cl_int form = !ts ? 0 : d->algorithm == RETCL_ALGO_PARALLEL ? 1 : 2;
  if (d->algorithm == RETCL_ALGO_PARALLEL) {
    /* One segment of T tokens; its cross term is γ^(t+1) q_t S_0. */
    if ((st = run_chunk_output(&l, state_in.mem, state_in.offset, d->tokens, 1,
                               form, out_scale, !state_out.mem)))
      return st;
    if (!state_out.mem) return RETCL_SUCCESS;
    cl_mem U;
    if ((st = retcl__scratch(ctx, e.state * sizeof(float), &U)) ||
        (st = run_chunk_state(&l, U, d->tokens, 1)))
      return st;
    return run_chunk_scan(&l, U, d->tokens, 1, state_in, state_out, 1);
  }
  cl_mem U;
  if ((st = retcl__scratch(ctx, scratch_elems * sizeof(float), &U)) ||
      (st = run_chunk_state(&l, U, e.chunk, e.chunks)) ||
      (st = run_chunk_scan(&l, U, e.chunk, e.chunks, state_in, state_out, 0)))
    return st;
  return run_chunk_output(&l, U, 0, e.chunk, e.chunks, form, out_scale, 1);
}
