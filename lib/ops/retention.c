/* retention.c - retcl_retention: checks and dispatch of the parallel,
 * recurrent and chunkwise algorithms (kernels in cl/retention.cl,
 * docs/design.md §1.3, §1.4). */
#include "ops/retention.h"

#include "ops/limits.h"
#include "ops/packing.h"
#include "runtime/context.h"
#include "runtime/events.h"
#include "runtime/launch.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *OP = "retcl_retention";

static retcl_status check_desc(retcl_context *ctx, const char *op,
                               const retcl_retention_desc *d) {
  retcl_status st;
  if (d->layout != RETCL_LAYOUT_TOKEN_MAJOR &&
      d->layout != RETCL_LAYOUT_HEAD_MAJOR)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->layout = %d is not a retcl_layout", op,
                       (int)d->layout);
  if (d->algorithm != RETCL_ALGO_PARALLEL &&
      d->algorithm != RETCL_ALGO_RECURRENT &&
      d->algorithm != RETCL_ALGO_CHUNKWISE)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->algorithm = %d is not a retcl_algorithm", op,
                       (int)d->algorithm);
  if (d->form != RETCL_FORM_RAW && d->form != RETCL_FORM_TORCHSCALE)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->form = %d is not a retcl_retention_form", op,
                       (int)d->form);
  if ((st = retcl__check_dim(ctx, op, "desc->batch", d->batch, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, op, "desc->tokens", d->tokens, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, op, "desc->heads", d->heads, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, op, "desc->key_dim", d->key_dim, 1,
                             RETCL_MAX_HEAD_DIM)) ||
      (st = retcl__check_dim(ctx, op, "desc->value_dim", d->value_dim, 1,
                             RETCL_MAX_HEAD_DIM)))
    return st;
  if (d->algorithm == RETCL_ALGO_CHUNKWISE && d->chunk_size != 0 &&
      (st = retcl__check_dim(ctx, op, "desc->chunk_size", d->chunk_size, 1,
                             RETCL_MAX_CHUNK)))
    return st;
  if (!isfinite(d->scale))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->scale is not finite", op);
  return RETCL_SUCCESS;
}

/* Torchscale forms carry a token count with their state (§1.4).
 * chunk_state: the chunk size when the torchscale chunkwise form may
 * continue a state (retcl_retention: at a chunk boundary, docs/design.md
 * §1.8), or 0 where it may not (the layer and the backward). */
static retcl_status check_torchscale_state(retcl_context *ctx, const char *op,
                                           const retcl_retention_desc *d,
                                           int has_state_in,
                                           size_t chunk_state) {
  if (d->form != RETCL_FORM_TORCHSCALE) return RETCL_SUCCESS;
  if (has_state_in && d->algorithm == RETCL_ALGO_CHUNKWISE && chunk_state &&
      d->position % chunk_state != 0)
    return retcl__fail(ctx, RETCL_ERROR_UNSUPPORTED,
                       "%s: the torchscale chunkwise form continues a state "
                       "only at a chunk boundary: desc->position = %zu is not "
                       "a multiple of the chunk size %zu (torchscale's "
                       "chunks start at multiples of it)",
                       op, d->position, chunk_state);
  if (has_state_in && d->algorithm != RETCL_ALGO_RECURRENT &&
      !(d->algorithm == RETCL_ALGO_CHUNKWISE && chunk_state))
    return retcl__fail(ctx, RETCL_ERROR_UNSUPPORTED,
                       "%s: the torchscale %s form starts from an empty state "
                       "(as torchscale does); pass no state_in, or use "
                       "RETCL_ALGO_RECURRENT to continue a sequence",
                       op, d->algorithm == RETCL_ALGO_PARALLEL ? "parallel"
                                                               : "chunkwise");
  if (has_state_in && d->position == 0)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: state_in is given but desc->position is 0; pass "
                       "the number of tokens the state has absorbed",
                       op);
  if (!has_state_in && d->position != 0)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->position = %zu but no state_in is given", op,
                       d->position);
  return RETCL_SUCCESS;
}

/* Torchscale's rules per packed sequence: one that starts from its state
 * (position > 0) needs the recurrent algorithm; one without a state starts
 * at position 0. */
static retcl_status check_packed_torchscale(retcl_context *ctx, const char *op,
                                            const retcl_retention_desc *d,
                                            int has_state_in) {
  const retcl_packing *pk = &d->packing;
  if (d->form != RETCL_FORM_TORCHSCALE) return RETCL_SUCCESS;
  for (size_t i = 0; i < pk->count; ++i) {
    const size_t pos = retcl__packing_position(pk, d->position, i);
    if (retcl__packing_reads_state(pk, d->position, i, has_state_in, 1)) {
      if (d->algorithm != RETCL_ALGO_RECURRENT)
        return retcl__fail(ctx, RETCL_ERROR_UNSUPPORTED,
                           "%s: sequence %zu continues a state at position "
                           "%zu; the torchscale %s form starts from an empty "
                           "state: use RETCL_ALGO_RECURRENT",
                           op, i, pos,
                           d->algorithm == RETCL_ALGO_PARALLEL ? "parallel"
                                                               : "chunkwise");
    } else if (pos != 0) {
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: sequence %zu is at position %zu but has no "
                         "state_in slot to continue",
                         op, i, pos);
    }
  }
  return RETCL_SUCCESS;
}

/* The plan of packed sequence i alone: batch 1, its tokens; its state in
 * and out as the packed call's slots give them. */
static retcl_status sequence_plan(retcl_context *ctx, const char *op,
                                  const retcl_retention_plan *p, size_t i,
                                  retcl_retention_plan *sub) {
  const retcl_retention_desc *d = &p->d;
  const retcl_packing *pk = &d->packing;
  retcl_retention_desc one = *d;
  memset(&one.packing, 0, sizeof one.packing);
  one.batch = 1;
  one.tokens = retcl__packing_length(pk, i);
  const int ts = d->form == RETCL_FORM_TORCHSCALE;
  const int reads = retcl__packing_reads_state(pk, d->position, i,
                                               p->has_state_in, ts);
  one.position = ts && reads ? retcl__packing_position(pk, d->position, i) : 0;
  const int keeps = p->has_state_out && retcl__packing_slot(pk, i) >= 0;
  return retcl__retention_plan(ctx, op, &one, reads, keeps, sub);
}

/* A packed plan: checks of the packing and of each sequence, the states
 * the state buffers must hold, and the scratch of the largest step. */
static retcl_status packed_plan(retcl_context *ctx, const char *op,
                                const retcl_retention_desc *d,
                                int has_state_in, int has_state_out,
                                retcl_retention_plan *plan) {
  retcl_status st;
  size_t states = 0;
  if ((st = check_desc(ctx, op, d)) ||
      (st = retcl__packing_check(ctx, op, &d->packing, d->batch, d->tokens,
                                 d->layout, d->position, &states)) ||
      (st = check_packed_torchscale(ctx, op, d, has_state_in)))
    return st;
  retcl_retention_plan p;
  memset(&p, 0, sizeof p);
  p.d = *d;
  p.has_state_in = has_state_in;
  p.has_state_out = has_state_out;
  const size_t th = retcl__mul(d->tokens, d->heads);
  p.qk = retcl__mul(th, d->key_dim);
  p.vo = retcl__mul(th, d->value_dim);
  p.state = retcl__mul(retcl__mul(states, d->heads),
                       d->key_dim * d->value_dim);
  p.chunk = d->tokens;
  p.chunks = 1;
  if (d->algorithm == RETCL_ALGO_RECURRENT) {
    /* One launch; sequences whose state is not kept run in scratch. */
    p.scratch = retcl__mul(retcl__mul(d->packing.count, d->heads),
                           d->key_dim * d->value_dim);
  } else {
    /* One sequence after another, each in the scratch of its own plan. */
    for (size_t i = 0; i < d->packing.count; ++i) {
      if (!retcl__packing_length(&d->packing, i)) continue;
      retcl_retention_plan sub;
      if ((st = sequence_plan(ctx, op, &p, i, &sub))) return st;
      if (sub.scratch > p.scratch) p.scratch = sub.scratch;
    }
  }
  if (p.qk > RETCL_MAX_INDEX || p.vo > RETCL_MAX_INDEX ||
      p.state > RETCL_MAX_INDEX || p.scratch > RETCL_MAX_INDEX)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: the packed call addresses more than %zu floats "
                       "in one buffer (activations, states or scratch)",
                       op, RETCL_MAX_INDEX);
  *plan = p;
  return RETCL_SUCCESS;
}

/* chunk_state: 1 lets the torchscale chunkwise form continue a state at a
 * chunk boundary (retcl_retention only). state_only: no outputs, only
 * state_out (retcl_retention with out absent): every algorithm then runs
 * the chunkwise state kernels, chunkwise with its own chunk size, the
 * others with the record's retention.chunk. */
static retcl_status plan_impl(retcl_context *ctx, const char *op,
                              const retcl_retention_desc *d, int has_state_in,
                              int has_state_out, int chunk_state,
                              int state_only, retcl_retention_plan *plan) {
  retcl_status st;
  if (d->packing.count)
    return packed_plan(ctx, op, d, has_state_in, has_state_out, plan);
  if ((st = check_desc(ctx, op, d))) return st;
  retcl_retention_plan p;
  p.d = *d;
  p.has_state_in = has_state_in;
  p.has_state_out = has_state_out;
  const size_t bth = retcl__mul(retcl__mul(d->batch, d->tokens), d->heads);
  p.qk = retcl__mul(bth, d->key_dim);
  p.vo = retcl__mul(bth, d->value_dim);
  p.state = retcl__mul(retcl__mul(d->batch, d->heads),
                       d->key_dim * d->value_dim);
  if (d->algorithm == RETCL_ALGO_CHUNKWISE) {
    p.chunk = d->chunk_size ? d->chunk_size
                            : (size_t)retcl__param(ctx, RETCL_P_RETENTION_CHUNK);
  } else if (state_only) {
    p.chunk = (size_t)retcl__param(ctx, RETCL_P_RETENTION_CHUNK);
  } else {
    p.chunk = d->tokens;
  }
  if ((st = check_torchscale_state(ctx, op, d, has_state_in,
                                   chunk_state ? p.chunk : 0)))
    return st;
  /* A chunk longer than the call acts as one of T tokens, except in the
   * torchscale chunkwise form continuing a state: its cross scale r
   * divides by c_C, the full chunk's mask row (§1.4). */
  const int ts_continues = d->form == RETCL_FORM_TORCHSCALE && has_state_in &&
                           d->algorithm == RETCL_ALGO_CHUNKWISE;
  if (p.chunk > d->tokens && !ts_continues) p.chunk = d->tokens;
  p.chunks = (d->tokens + p.chunk - 1) / p.chunk;
  /* Workspace: a state per chunk (chunkwise), the local state of the
   * sequence (parallel with state_out), or the running state (recurrent
   * without state_out). */
  p.state_only = state_only;
  switch (state_only ? RETCL_ALGO_CHUNKWISE : d->algorithm) {
    case RETCL_ALGO_CHUNKWISE: p.scratch = retcl__mul(p.state, p.chunks); break;
    case RETCL_ALGO_PARALLEL: p.scratch = has_state_out ? p.state : 0; break;
    default: p.scratch = has_state_out ? 0 : p.state; break;
  }
  if (p.qk > RETCL_MAX_INDEX || p.vo > RETCL_MAX_INDEX ||
      p.scratch > RETCL_MAX_INDEX)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: the call needs %zu floats of %s; the limit is %zu"
                       "%s",
                       op, p.scratch > RETCL_MAX_INDEX ? p.scratch
                           : p.qk > p.vo ? p.qk : p.vo,
                       p.scratch > RETCL_MAX_INDEX
                           ? "chunk states (B*H*Dk*Dv*chunks)"
                           : "activations",
                       RETCL_MAX_INDEX,
                       p.scratch > RETCL_MAX_INDEX ? ": use a larger chunk_size"
                                                   : "");
  *plan = p;
  return RETCL_SUCCESS;
}

retcl_status retcl__retention_plan(retcl_context *ctx, const char *op,
                                   const retcl_retention_desc *d,
                                   int has_state_in, int has_state_out,
                                   retcl_retention_plan *plan) {
  return plan_impl(ctx, op, d, has_state_in, has_state_out, 0, 0, plan);
}

static retcl_status check_buffers(retcl_context *ctx,
                                  const retcl_retention_plan *e,
                                  retcl_buffer q, retcl_buffer k,
                                  retcl_buffer v, retcl_buffer log_decay,
                                  retcl_buffer state_in,
                                  retcl_buffer state_out, retcl_buffer out) {
  const size_t heads = e->d.heads;
  /* Packed: the states a buffer must hold follow from the slots named. */
  char in_name[96] = "state_in", out_name[96] = "state_out";
  if (e->d.packing.count && e->state) {
    const size_t slots = e->state / (heads * e->d.key_dim * e->d.value_dim);
    snprintf(in_name, sizeof in_name,
             "state_in (slots 0..%zu named, one state each)", slots - 1);
    snprintf(out_name, sizeof out_name,
             "state_out (slots 0..%zu named, one state each)", slots - 1);
  }
  retcl_status st;
  if ((st = retcl__check_buffer(ctx, OP, "q", q, e->qk)) ||
      (st = retcl__check_buffer(ctx, OP, "k", k, e->qk)) ||
      (st = retcl__check_buffer(ctx, OP, "v", v, e->vo)) ||
      (st = retcl__check_buffer(ctx, OP, "log_decay", log_decay, heads)) ||
      (st = retcl__check_optional_buffer(ctx, OP, in_name, state_in,
                                         e->state)) ||
      (st = retcl__check_optional_buffer(ctx, OP, out_name, state_out,
                                         e->state)) ||
      (st = e->state_only ? RETCL_SUCCESS
                          : retcl__check_buffer(ctx, OP, "out", out, e->vo)))
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

/* One tensor argument as the kernels take it: buffer, offset, strides. */
typedef struct tensor_arg {
  cl_mem mem;
  cl_uint off;
  retcl_strides s;
} tensor_arg;

/* What every launch of one call shares. */
typedef struct launch {
  retcl_context *ctx;
  const retcl_retention_plan *p;
  tensor_arg q, k, v, o;
  cl_mem log_decay;
  cl_uint ld_off;
  cl_uint T, H, Dk, Dv;
  int cpu;               /* retention.access */
  size_t vw, rb, kb;     /* retention.vw, .rb, .kb */
  cl_uint wait_n;        /* consumed by the first enqueue */
  const cl_event *wait;
  cl_event *event;       /* set by the last enqueue */
} launch;

static retcl_status enqueue(launch *l, retcl_kernel_id id,
                            const retcl_karg *args, size_t nargs, size_t g0,
                            size_t g1, size_t g2, int is_last) {
  /* CPU access: one work-item per work-group (each keeps tiles in private
   * arrays; PoCL's own choice of 4096-item groups overflowed its worker
   * stack at T = 2^15). GPUs choose their own group shape. */
  const retcl_grid grid = retcl__grid(l->cpu, 3, g0, g1, g2);
  retcl_status st = retcl__launch(l->ctx, id, args, nargs, &grid, l->wait_n,
                                  l->wait, is_last ? l->event : NULL);
  l->wait_n = 0;
  l->wait = NULL;
  return st;
}

static size_t column_blocks(const launch *l) {
  return (l->Dv + l->vw - 1) / l->vw;
}

/* Dimension 0 of the grid: CPUs walk all column blocks in one work-item. */
static size_t column_items(const launch *l) {
  return l->cpu ? 1 : column_blocks(l);
}

/* A tensor's five arguments: Q, q_off, q_sb, q_st, q_sh (say). */
#define TENSOR_ARGS(t, up, lo)                                              \
  RETCL_KARG(#up, (t).mem), RETCL_KARG(#lo "_off", (t).off),                \
      RETCL_KARG(#lo "_sb", (t).s.batch), RETCL_KARG(#lo "_st", (t).s.token), \
      RETCL_KARG(#lo "_sh", (t).s.head)

/* The 20 arguments chunk_output and recurrent start with. */
#define QKVO_ARGS(l)                                                    \
  TENSOR_ARGS((l)->q, Q, q), TENSOR_ARGS((l)->k, K, k),                 \
      TENSOR_ARGS((l)->v, V, v), TENSOR_ARGS((l)->o, O, o)

/* The arguments of state_scan and chunk_scan that say where the states come
 * from and go, and how torchscale scales them. */
typedef struct state_ends {
  cl_mem s_in, s_out;
  cl_uint s_in_off, s_out_off;
  cl_int has_in, has_out, torchscale_out;
  cl_float n_total, n_in;
} state_ends;

static state_ends state_ends_of(const launch *l, cl_mem U,
                                retcl_buffer state_in,
                                retcl_buffer state_out) {
  const retcl_retention_desc *d = &l->p->d;
  state_ends e;
  e.s_in = state_in.mem ? state_in.mem : U; /* never read without has_in */
  e.s_out = state_out.mem ? state_out.mem : U;
  e.s_in_off = (cl_uint)state_in.offset;
  e.s_out_off = (cl_uint)state_out.offset;
  e.has_in = state_in.mem != NULL;
  e.has_out = state_out.mem != NULL;
  e.torchscale_out = d->form == RETCL_FORM_TORCHSCALE;
  e.n_total = (cl_float)(d->position + d->tokens);
  /* A torchscale state_in is S_n / sqrt(c_n): the kernels restore S_n. */
  e.n_in = e.torchscale_out && e.has_in ? (cl_float)d->position : 0.0f;
  return e;
}

#define STATE_END_ARGS(e)                                                   \
  RETCL_KARG("S_in", (e).s_in), RETCL_KARG("s_in_off", (e).s_in_off),      \
      RETCL_KARG("has_state_in", (e).has_in), RETCL_KARG("S_out", (e).s_out), \
      RETCL_KARG("s_out_off", (e).s_out_off),                               \
      RETCL_KARG("has_state_out", (e).has_out)
#define STATE_SCALE_ARGS(e)                                                 \
  RETCL_KARG("torchscale_out", (e).torchscale_out),                         \
      RETCL_KARG("n_total", (e).n_total), RETCL_KARG("n_in", (e).n_in)

/* cpu pattern: one pass walks the chunks of each (b, h) in order. */
static retcl_status run_state_scan(launch *l, cl_mem U, size_t C,
                                   size_t n_chunks, retcl_buffer state_in,
                                   retcl_buffer state_out, int is_last) {
  const retcl_retention_desc *d = &l->p->d;
  const state_ends e = state_ends_of(l, U, state_in, state_out);
  const cl_uint Cu = (cl_uint)C, Nc = (cl_uint)n_chunks;
  /* A work-item's blocks of rows all read the same chunk of keys and
   * values, so it takes as many as it can while every compute unit still
   * gets about four work-items: split per block of rows, the work-items
   * streamed each head's keys and values from memory independently (1.2x
   * the two-pass time, measured at B 1, H 8, D 128, T 4096). */
  const size_t blocks = (l->Dk + l->kb - 1) / l->kb;
  const size_t bh = d->batch * d->heads;
  const size_t groups = retcl__cpu_split(l->ctx, bh, blocks);
  const cl_uint per_item = (cl_uint)((blocks + groups - 1) / groups);
  const retcl_karg args[] = {
      TENSOR_ARGS(l->k, K, k),
      TENSOR_ARGS(l->v, V, v),
      RETCL_KARG("log_decay", l->log_decay), RETCL_KARG("ld_off", l->ld_off),
      RETCL_KARG("U", U), STATE_END_ARGS(e), RETCL_KARG("T", l->T),
      RETCL_KARG("H", l->H), RETCL_KARG("Dk", l->Dk), RETCL_KARG("Dv", l->Dv),
      RETCL_KARG("C", Cu), RETCL_KARG("n_chunks", Nc),
      RETCL_KARG("blocks_per_item", per_item), STATE_SCALE_ARGS(e)};
  return enqueue(l, RETCL_KERNEL_RETENTION_STATE_SCAN, args,
                 RETCL_NARGS(args), 1, (blocks + per_item - 1) / per_item, bh,
                 is_last);
}

/* gpu pattern, first pass: U_c for every chunk of C tokens into U, all
 * chunks in parallel. */
static retcl_status run_chunk_state(launch *l, cl_mem U, size_t C,
                                    size_t n_chunks) {
  const cl_uint Cu = (cl_uint)C, Nc = (cl_uint)n_chunks;
  const retcl_karg args[] = {
      TENSOR_ARGS(l->k, K, k),
      TENSOR_ARGS(l->v, V, v),
      RETCL_KARG("log_decay", l->log_decay), RETCL_KARG("ld_off", l->ld_off),
      RETCL_KARG("U", U), RETCL_KARG("T", l->T), RETCL_KARG("H", l->H),
      RETCL_KARG("Dk", l->Dk), RETCL_KARG("Dv", l->Dv), RETCL_KARG("C", Cu),
      RETCL_KARG("n_chunks", Nc)};
  return enqueue(l, RETCL_KERNEL_RETENTION_CHUNK_STATE, args,
                 RETCL_NARGS(args), column_items(l),
                 (l->Dk + l->kb - 1) / l->kb,
                 l->p->d.batch * l->p->d.heads * n_chunks, 0);
}

/* gpu pattern, second pass: U_c -> state before chunk c, in place; final
 * state to state_out. */
static retcl_status run_chunk_scan(launch *l, cl_mem U, size_t C,
                                   size_t n_chunks, retcl_buffer state_in,
                                   retcl_buffer state_out, int is_last) {
  const retcl_retention_desc *d = &l->p->d;
  const state_ends e = state_ends_of(l, U, state_in, state_out);
  const cl_uint Cu = (cl_uint)C, Nc = (cl_uint)n_chunks;
  const retcl_karg args[] = {
      RETCL_KARG("U", U), STATE_END_ARGS(e),
      RETCL_KARG("log_decay", l->log_decay), RETCL_KARG("ld_off", l->ld_off),
      RETCL_KARG("T", l->T), RETCL_KARG("H", l->H), RETCL_KARG("Dk", l->Dk),
      RETCL_KARG("Dv", l->Dv), RETCL_KARG("C", Cu),
      RETCL_KARG("n_chunks", Nc), STATE_SCALE_ARGS(e)};
  return enqueue(l, RETCL_KERNEL_RETENTION_CHUNK_SCAN, args,
                 RETCL_NARGS(args), column_blocks(l), d->key_dim,
                 d->batch * d->heads, is_last);
}

/* The state before each chunk of C tokens into U's slots, and the final
 * state to state_out (if any). */
static retcl_status run_chunk_states(launch *l, cl_mem U, size_t C,
                                     size_t n_chunks, retcl_buffer state_in,
                                     retcl_buffer state_out, int is_last) {
  if (l->cpu)
    return run_state_scan(l, U, C, n_chunks, state_in, state_out, is_last);
  retcl_status st = run_chunk_state(l, U, C, n_chunks);
  if (st) return st;
  return run_chunk_scan(l, U, C, n_chunks, state_in, state_out, is_last);
}

/* Outputs of every chunk; R holds the state before each chunk (or NULL). */
static retcl_status run_chunk_output(launch *l, cl_mem R, size_t r_off,
                                     size_t C, size_t n_chunks, cl_int form,
                                     float out_scale, int is_last) {
  const retcl_retention_desc *d = &l->p->d;
  const cl_int has_R = R != NULL;
  const cl_mem r_mem = R ? R : l->q.mem; /* never read when has_R == 0 */
  const cl_uint r_offu = (cl_uint)r_off, Cu = (cl_uint)C,
                Nc = (cl_uint)n_chunks;
  const retcl_karg args[] = {
      QKVO_ARGS(l),
      RETCL_KARG("log_decay", l->log_decay), RETCL_KARG("ld_off", l->ld_off),
      RETCL_KARG("R", r_mem), RETCL_KARG("r_off", r_offu),
      RETCL_KARG("has_R", has_R), RETCL_KARG("T", l->T),
      RETCL_KARG("H", l->H), RETCL_KARG("Dk", l->Dk), RETCL_KARG("Dv", l->Dv),
      RETCL_KARG("C", Cu), RETCL_KARG("n_chunks", Nc),
      RETCL_KARG("form", form), RETCL_KARG("out_scale", out_scale)};
  return enqueue(l, RETCL_KERNEL_RETENTION_CHUNK_OUTPUT, args,
                 RETCL_NARGS(args), column_items(l), (C + l->rb - 1) / l->rb,
                 d->batch * d->heads * n_chunks, is_last);
}

static retcl_status run_recurrent(launch *l, retcl_buffer state_in,
                                  retcl_buffer state_out, cl_mem scratch,
                                  cl_mem table, float out_scale) {
  const retcl_retention_desc *d = &l->p->d;
  const retcl_buffer work = state_out.mem ? state_out : retcl_buf(scratch, 0);
  /* Packed: sequences' entries, the per-token positions before them. */
  const cl_int packed = table != NULL;
  const size_t seqs = packed ? d->packing.count : d->batch;
  cl_mem table_mem = packed ? table : l->log_decay; /* never read unpacked */
  const cl_uint seqs_off = packed ? (cl_uint)d->tokens : 0;
  const cl_mem w_mem = scratch ? scratch : work.mem;
  const cl_mem s_in = state_in.mem ? state_in.mem : work.mem;
  const cl_uint s_in_off = (cl_uint)state_in.offset,
                s_off = (cl_uint)work.offset;
  const cl_int has_in = state_in.mem != NULL;
  const cl_int form = d->form == RETCL_FORM_TORCHSCALE;
  const cl_float position = (cl_float)d->position;
  const retcl_karg args[] = {
      QKVO_ARGS(l),
      RETCL_KARG("log_decay", l->log_decay), RETCL_KARG("ld_off", l->ld_off),
      RETCL_KARG("S_in", s_in), RETCL_KARG("s_in_off", s_in_off),
      RETCL_KARG("has_state_in", has_in), RETCL_KARG("S", work.mem),
      RETCL_KARG("s_off", s_off), RETCL_KARG("T", l->T),
      RETCL_KARG("H", l->H), RETCL_KARG("Dk", l->Dk), RETCL_KARG("Dv", l->Dv),
      RETCL_KARG("form", form), RETCL_KARG("out_scale", out_scale),
      RETCL_KARG("position", position), RETCL_KARG("seqs", table_mem),
      RETCL_KARG("seqs_off", seqs_off), RETCL_KARG("packed", packed),
      RETCL_KARG("W", w_mem)};
  return enqueue(l, RETCL_KERNEL_RETENTION_RECURRENT, args, RETCL_NARGS(args),
                 column_blocks(l), 1, seqs * d->heads, 1);
}

static retcl_status enqueue_plan(retcl_context *ctx,
                                 const retcl_retention_plan *p,
                                 retcl_buffer q, retcl_buffer k,
                                 retcl_buffer v, retcl_buffer log_decay,
                                 retcl_buffer state_in, retcl_buffer state_out,
                                 retcl_buffer out, cl_mem scratch, cl_mem table,
                                 cl_uint num_wait, const cl_event *wait,
                                 cl_event *event);

/* A state slot's range in a state buffer. */
static retcl_buffer slot_of(retcl_buffer states, const retcl_retention_desc *d,
                            long slot) {
  return retcl_buf(states.mem, states.offset + (size_t)slot * d->heads *
                                                   d->key_dim * d->value_dim);
}

/* Packed parallel and chunkwise: each sequence as a call of its own (its
 * chunks start at its first token, as when it runs alone). An empty
 * sequence's kept state is the state it was given, or an empty one. */
static retcl_status enqueue_sequences(retcl_context *ctx,
                                      const retcl_retention_plan *p,
                                      retcl_buffer q, retcl_buffer k,
                                      retcl_buffer v, retcl_buffer log_decay,
                                      retcl_buffer state_in,
                                      retcl_buffer state_out, retcl_buffer out,
                                      cl_mem scratch, cl_uint num_wait,
                                      const cl_event *wait, cl_event *event) {
  const retcl_retention_desc *d = &p->d;
  const retcl_packing *pk = &d->packing;
  const int ts = d->form == RETCL_FORM_TORCHSCALE;
  const size_t H = d->heads, Dk = d->key_dim, Dv = d->value_dim;
  const size_t state_bytes = H * Dk * Dv * sizeof(float);
  retcl_status st;
  if ((st = retcl__wait_for(ctx, num_wait, wait))) return st;
  for (size_t i = 0; i < pk->count; ++i) {
    const long slot = retcl__packing_slot(pk, i);
    const int reads = retcl__packing_reads_state(pk, d->position, i,
                                                 p->has_state_in, ts);
    const int keeps = p->has_state_out && slot >= 0;
    const retcl_buffer s_in = reads ? slot_of(state_in, d, slot)
                                    : retcl_no_buf();
    const retcl_buffer s_out = keeps ? slot_of(state_out, d, slot)
                                     : retcl_no_buf();
    const size_t start = pk->offsets[i];
    if (retcl__packing_length(pk, i) == 0) {
      if (!keeps) continue;
      cl_int err;
      if (!reads) {
        const cl_float zero = 0.0f;
        err = clEnqueueFillBuffer(ctx->queue, s_out.mem, &zero, sizeof zero,
                                  s_out.offset * sizeof(float), state_bytes,
                                  0, NULL, NULL);
      } else if (s_in.mem != s_out.mem || s_in.offset != s_out.offset) {
        err = clEnqueueCopyBuffer(ctx->queue, s_in.mem, s_out.mem,
                                  s_in.offset * sizeof(float),
                                  s_out.offset * sizeof(float), state_bytes,
                                  0, NULL, NULL);
      } else {
        continue;
      }
      if (err != CL_SUCCESS)
        return retcl__cl_fail(ctx, "retention: empty sequence's state", err);
      continue;
    }
    retcl_retention_plan sub;
    if ((st = sequence_plan(ctx, "retcl_retention", p, i, &sub)) ||
        (st = enqueue_plan(ctx, &sub,
                           retcl_buf(q.mem, q.offset + start * H * Dk),
                           retcl_buf(k.mem, k.offset + start * H * Dk),
                           retcl_buf(v.mem, v.offset + start * H * Dv),
                           log_decay, s_in, s_out,
                           retcl_buf(out.mem, out.offset + start * H * Dv),
                           scratch, NULL, 0, NULL, NULL)))
      return st;
  }
  return retcl__signal_done(ctx, event);
}

retcl_status retcl__retention_enqueue(retcl_context *ctx,
                                      const retcl_retention_plan *p,
                                      retcl_buffer q, retcl_buffer k,
                                      retcl_buffer v, retcl_buffer log_decay,
                                      retcl_buffer state_in,
                                      retcl_buffer state_out,
                                      retcl_buffer out, cl_mem scratch,
                                      cl_mem table, cl_uint num_wait,
                                      const cl_event *wait, cl_event *event) {
  if (p->d.packing.count && p->d.algorithm != RETCL_ALGO_RECURRENT)
    return enqueue_sequences(ctx, p, q, k, v, log_decay, state_in, state_out,
                             out, scratch, num_wait, wait, event);
  return enqueue_plan(ctx, p, q, k, v, log_decay, state_in, state_out, out,
                      scratch, table, num_wait, wait, event);
}

static retcl_status enqueue_plan(retcl_context *ctx,
                                 const retcl_retention_plan *p,
                                 retcl_buffer q, retcl_buffer k,
                                 retcl_buffer v, retcl_buffer log_decay,
                                 retcl_buffer state_in, retcl_buffer state_out,
                                 retcl_buffer out, cl_mem scratch, cl_mem table,
                                 cl_uint num_wait, const cl_event *wait,
                                 cl_event *event) {
  const retcl_retention_desc *d = &p->d;
  const int ts = d->form == RETCL_FORM_TORCHSCALE;
  const float out_scale = ts ? 1.0f : (d->scale != 0.0f ? d->scale : 1.0f);
  launch l;
  l.ctx = ctx;
  l.p = p;
  l.q = (tensor_arg){q.mem, (cl_uint)q.offset,
                     retcl__strides(d->layout, d->tokens, d->heads, d->key_dim)};
  l.k = (tensor_arg){k.mem, (cl_uint)k.offset, l.q.s};
  l.v = (tensor_arg){v.mem, (cl_uint)v.offset,
                     retcl__strides(d->layout, d->tokens, d->heads, d->value_dim)};
  l.o = (tensor_arg){out.mem, (cl_uint)out.offset, l.v.s};
  l.log_decay = log_decay.mem;
  l.ld_off = (cl_uint)log_decay.offset;
  l.T = (cl_uint)d->tokens;
  l.H = (cl_uint)d->heads;
  l.Dk = (cl_uint)d->key_dim;
  l.Dv = (cl_uint)d->value_dim;
  l.cpu = retcl__cpu_access(ctx, RETCL_P_RETENTION_ACCESS);
  l.vw = (size_t)retcl__param(ctx, RETCL_P_RETENTION_VW);
  l.rb = (size_t)retcl__param(ctx, RETCL_P_RETENTION_RB);
  l.kb = (size_t)retcl__param(ctx, RETCL_P_RETENTION_KB);
  l.wait_n = num_wait;
  l.wait = wait;
  l.event = event;

  retcl_status st;
  if (p->state_only) {
    /* The final state only: the state pass. */
    return run_chunk_states(&l, scratch, p->chunk, p->chunks, state_in,
                            state_out, 1);
  }
  if (d->algorithm == RETCL_ALGO_RECURRENT)
    return run_recurrent(&l, state_in, state_out, scratch, table, out_scale);

  const cl_int form = !ts ? 0 : d->algorithm == RETCL_ALGO_PARALLEL ? 1 : 2;
  if (d->algorithm == RETCL_ALGO_PARALLEL) {
    /* One segment of T tokens; its cross term is γ^(t+1) q_t S_0. */
    if ((st = run_chunk_output(&l, state_in.mem, state_in.offset, d->tokens, 1,
                               form, out_scale, !state_out.mem)))
      return st;
    if (!state_out.mem) return RETCL_SUCCESS;
    return run_chunk_states(&l, scratch, d->tokens, 1, state_in, state_out,
                            1);
  }
  if ((st = run_chunk_states(&l, scratch, p->chunk, p->chunks, state_in,
                              state_out, 0)))
    return st;
  return run_chunk_output(&l, scratch, 0, p->chunk, p->chunks, form, out_scale,
                          1);
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
  retcl_retention_plan plan;
  cl_mem scratch = NULL;
  const int state_only = out.mem == NULL;
  if (state_only && !state_out.mem)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: out is NULL and so is state_out: a call without "
                       "outputs must ask for the final state",
                       OP);
  if (state_only && desc->packing.count)
    return retcl__fail(ctx, RETCL_ERROR_UNSUPPORTED,
                       "%s: out is NULL (a state-only call) with packed "
                       "sequences; a state-only call takes one rectangular "
                       "batch",
                       OP);
  if ((st = plan_impl(ctx, OP, desc, state_in.mem != NULL,
                       state_out.mem != NULL, 1, state_only, &plan)) ||
      (st = retcl__check_wait_list(ctx, OP, num_events_in_wait_list,
                                   event_wait_list)) ||
      (st = check_buffers(ctx, &plan, q, k, v, log_decay, state_in, state_out,
                          out)) ||
      (st = retcl__prepare(ctx, RETCL_FAMILY_BIT(RETCL_FAMILY_RETENTION))) ||
      (plan.scratch &&
       (st = retcl__workspace(ctx, RETCL_WORKSPACE_RETENTION,
                              plan.scratch * sizeof(float), &scratch))))
    return st;
  cl_mem table = NULL;
  if (desc->packing.count && desc->algorithm == RETCL_ALGO_RECURRENT &&
      (st = retcl__packing_upload(ctx, OP, &desc->packing, desc->tokens,
                                  desc->position, state_in.mem != NULL,
                                  state_out.mem != NULL,
                                  desc->form == RETCL_FORM_TORCHSCALE,
                                  &table)))
    return st;
  st = retcl__retention_enqueue(ctx, &plan, q, k, v, log_decay, state_in,
                                state_out, out, scratch, table,
                                num_events_in_wait_list, event_wait_list,
                                event);
  if (table) clReleaseMemObject(table); /* kept alive by the launch */
  return st;
}

retcl_status retcl_retention_add_state(retcl_context *ctx,
                                       const retcl_retention_desc *desc,
                                       retcl_buffer q, retcl_buffer log_decay,
                                       retcl_buffer state_in, retcl_buffer out,
                                       cl_uint num_events_in_wait_list,
                                       const cl_event *event_wait_list,
                                       cl_event *event) {
  static const char *ADD = "retcl_retention_add_state";
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if (!desc)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: desc is NULL",
                       ADD);
  const retcl_retention_desc *d = desc;
  if ((st = check_desc(ctx, ADD, d))) return st;
  if (d->packing.count)
    return retcl__fail(ctx, RETCL_ERROR_UNSUPPORTED,
                       "%s: packed sequences (desc->packing); pass one "
                       "rectangular batch",
                       ADD);
  const int ts = d->form == RETCL_FORM_TORCHSCALE;
  if (ts && d->algorithm != RETCL_ALGO_RECURRENT)
    return retcl__fail(ctx, RETCL_ERROR_UNSUPPORTED,
                       "%s: the torchscale %s form's normalisers depend on the "
                       "incoming state, so its outputs are not those from zero "
                       "plus a term; rerun retcl_retention with state_in",
                       ADD, d->algorithm == RETCL_ALGO_PARALLEL ? "parallel"
                                                                : "chunkwise");
  if (ts && d->position == 0)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->position is 0; the torchscale form needs the "
                       "number of tokens state_in has absorbed",
                       ADD);
  const size_t bth = retcl__mul(retcl__mul(d->batch, d->tokens), d->heads);
  const size_t qk = retcl__mul(bth, d->key_dim), vo = retcl__mul(bth, d->value_dim);
  const size_t state = retcl__mul(retcl__mul(d->batch, d->heads),
                                  d->key_dim * d->value_dim);
  if (qk > RETCL_MAX_INDEX || vo > RETCL_MAX_INDEX || state > RETCL_MAX_INDEX)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: the call addresses more than %zu floats in one "
                       "buffer",
                       ADD, RETCL_MAX_INDEX);
  if ((st = retcl__check_wait_list(ctx, ADD, num_events_in_wait_list,
                                   event_wait_list)) ||
      (st = retcl__check_buffer(ctx, ADD, "q", q, qk)) ||
      (st = retcl__check_buffer(ctx, ADD, "log_decay", log_decay, d->heads)) ||
      (st = retcl__check_buffer(ctx, ADD, "state_in", state_in, state)) ||
      (st = retcl__check_buffer(ctx, ADD, "out", out, vo)))
    return st;
  if (retcl__overlaps(out, vo, q, qk) ||
      retcl__overlaps(out, vo, log_decay, d->heads) ||
      retcl__overlaps(out, vo, state_in, state))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: out overlaps %s", ADD,
                       retcl__overlaps(out, vo, q, qk) ? "q"
                       : retcl__overlaps(out, vo, log_decay, d->heads)
                           ? "log_decay"
                           : "state_in");
  if ((st = retcl__prepare(ctx, RETCL_FAMILY_BIT(RETCL_FAMILY_RETENTION))))
    return st;
  retcl_retention_plan p;
  memset(&p, 0, sizeof p);
  p.d = *d;
  launch l;
  memset(&l, 0, sizeof l);
  l.ctx = ctx;
  l.p = &p;
  l.Dv = (cl_uint)d->value_dim;
  l.cpu = retcl__cpu_access(ctx, RETCL_P_RETENTION_ACCESS);
  l.vw = (size_t)retcl__param(ctx, RETCL_P_RETENTION_VW);
  l.rb = (size_t)retcl__param(ctx, RETCL_P_RETENTION_RB);
  l.wait_n = num_events_in_wait_list;
  l.wait = event_wait_list;
  l.event = event;
  const tensor_arg qa = {q.mem, (cl_uint)q.offset,
                         retcl__strides(d->layout, d->tokens, d->heads,
                                        d->key_dim)};
  const tensor_arg oa = {out.mem, (cl_uint)out.offset,
                         retcl__strides(d->layout, d->tokens, d->heads,
                                        d->value_dim)};
  const cl_int form = ts;
  const cl_float out_scale = ts ? 1.0f : (d->scale != 0.0f ? d->scale : 1.0f);
  const cl_float position = ts ? (cl_float)d->position : 0.0f;
  const cl_uint T = (cl_uint)d->tokens, H = (cl_uint)d->heads,
                Dk = (cl_uint)d->key_dim, Dv = (cl_uint)d->value_dim,
                ld_off = (cl_uint)log_decay.offset,
                s_off = (cl_uint)state_in.offset;
  const retcl_karg args[] = {
      TENSOR_ARGS(qa, Q, q), TENSOR_ARGS(oa, O, o),
      RETCL_KARG("log_decay", log_decay.mem), RETCL_KARG("ld_off", ld_off),
      RETCL_KARG("S", state_in.mem), RETCL_KARG("s_off", s_off),
      RETCL_KARG("T", T), RETCL_KARG("H", H), RETCL_KARG("Dk", Dk),
      RETCL_KARG("Dv", Dv), RETCL_KARG("form", form),
      RETCL_KARG("out_scale", out_scale), RETCL_KARG("position", position)};
  return enqueue(&l, RETCL_KERNEL_RETENTION_ADD_STATE, args, RETCL_NARGS(args),
                 column_items(&l), (d->tokens + l.rb - 1) / l.rb,
                 d->batch * d->heads, 1);
}
