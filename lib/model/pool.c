/* pool.c - serving: a pool of decode-state slots, packed batches of
 * sequences of different lengths through the model, and decoding steps
 * over the slots of a running batch (docs/api.md "Serving"). The work is
 * the model's forward (model.c) with the ops' packed form: no padding, and
 * no state is copied when sequences join or leave. */
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <stdlib.h>
#include <string.h>

static const char *OP_PACKED = "retcl_model_forward_packed";
static const char *OP_STEP = "retcl_model_decode_step";

struct retcl_state_pool {
  const retcl_model *model;
  size_t slots;
  size_t *position;   /* [slots]: tokens each slot has absorbed */
  cl_mem states;      /* [L, slots, H, Dk, Dv] */
  size_t layer_elems; /* slots * H * Dk * Dv */
};

retcl_status retcl_state_pool_create(retcl_model *model, size_t slots,
                                     retcl_state_pool **out) {
  if (!model) return RETCL_ERROR_INVALID_ARGUMENT;
  retcl_context *ctx = model->ctx;
  retcl__clear_error(ctx);
  const char *op = "retcl_state_pool_create";
  if (!out)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: out is NULL", op);
  *out = NULL;
  retcl_state_pool *p = calloc(1, sizeof *p);
  /* (a count the check below refuses gets a placeholder) */
  size_t *position =
      calloc(slots && slots <= (1 << 20) ? slots : 1, sizeof *position);
  if (!p || !position) {
    free(p);
    free(position);
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host", op);
  }
  const retcl_status st = retcl__model_states_alloc(
      model, op, "slots", slots, &p->layer_elems, &p->states);
  if (st) {
    free(p);
    free(position);
    return st;
  }
  p->model = model;
  p->slots = slots;
  p->position = position;
  *out = p;
  return RETCL_SUCCESS;
}

void retcl_state_pool_destroy(retcl_state_pool *p) {
  if (!p) return;
  clReleaseMemObject(p->states);
  free(p->position);
  free(p);
}

size_t retcl_state_pool_slots(const retcl_state_pool *p) {
  return p ? p->slots : 0;
}

size_t retcl_state_pool_bytes(const retcl_state_pool *p) {
  return p ? p->model->cfg.layers * p->layer_elems * sizeof(float) : 0;
}

size_t retcl_state_pool_position(const retcl_state_pool *p, size_t slot) {
  return p && slot < p->slots ? p->position[slot] : 0;
}

retcl_status retcl_state_pool_reset(retcl_state_pool *p, size_t slot) {
  if (!p) return RETCL_ERROR_INVALID_ARGUMENT;
  if (slot >= p->slots)
    return retcl__fail(p->model->ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "retcl_state_pool_reset: slot %zu but the pool has %zu",
                       slot, p->slots);
  p->position[slot] = 0; /* an empty slot's state is never read */
  return RETCL_SUCCESS;
}

/* Each slot in [-1, pool->slots), none twice. */
static retcl_status check_slots(retcl_context *ctx, const char *op,
                                const retcl_state_pool *pool,
                                const int32_t *slots, size_t n) {
  if (!slots)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: slots is NULL with a pool", op);
  for (size_t i = 0; i < n; ++i)
    if (slots[i] < -1 || (slots[i] >= 0 && (size_t)slots[i] >= pool->slots))
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: slots[%zu] = %d is not a slot of the pool "
                         "(0 .. %zu) or -1",
                         op, i, (int)slots[i], pool->slots - 1);
  unsigned char *seen = calloc(pool->slots, 1);
  if (!seen) return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host", op);
  for (size_t i = 0; i < n; ++i) {
    if (slots[i] < 0) continue;
    if (seen[slots[i]]) {
      free(seen);
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: slots[%zu] = %d appears twice", op, i,
                         (int)slots[i]);
    }
    seen[slots[i]] = 1;
  }
  free(seen);
  return RETCL_SUCCESS;
}

/* The packed forward behind both public calls, with `slots` checked. */
static retcl_status run_packed(retcl_model *m, const char *op,
                               retcl_state_pool *pool, const int32_t *slots,
                               const int32_t *tokens, const size_t *offsets,
                               size_t n, retcl_algorithm algo, size_t chunk,
                               int last_only, float *logits) {
  retcl_context *ctx = m->ctx;
  const size_t total = offsets[n];
  retcl_status st =
      retcl__model_check_forward(m, op, NULL, tokens, 1, total, algo, chunk);
  if (st) return st;
  size_t *positions = calloc(n, sizeof *positions);
  if (!positions)
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host", op);
  for (size_t i = 0; pool && i < n; ++i) {
    positions[i] = slots[i] >= 0 ? pool->position[slots[i]] : 0;
    if (positions[i] > 0 && algo != RETCL_ALGO_RECURRENT) {
      const size_t at = positions[i];
      free(positions);
      return retcl__fail(ctx, RETCL_ERROR_UNSUPPORTED,
                         "%s: sequence %zu continues slot %d at position %zu; "
                         "continuing a state needs RETCL_ALGO_RECURRENT "
                         "(torchscale's parallel and chunkwise forms start "
                         "from an empty state)",
                         op, i, (int)slots[i], at);
    }
  }
  retcl__forward_call a;
  memset(&a, 0, sizeof a);
  a.tokens = tokens;
  a.B = 1;
  a.T = total;
  a.packing.count = n;
  a.packing.offsets = offsets;
  a.packing.positions = positions;
  a.packing.state_slots = pool ? slots : NULL;
  if (pool) {
    a.states = pool->states;
    a.layer_floats = pool->layer_elems;
    a.state_in = 1; /* each slot at position 0 starts empty */
  }
  a.algo = algo;
  a.chunk = chunk;
  a.logits = logits;
  a.last_only = last_only;
  st = retcl__model_run(m, &a);
  free(positions);
  if (st) return st;
  for (size_t i = 0; pool && i < n; ++i)
    if (slots[i] >= 0) pool->position[slots[i]] += offsets[i + 1] - offsets[i];
  return RETCL_SUCCESS;
}

/* A pool, when given, is the model's. */
static retcl_status check_pool(retcl_model *m, const char *op,
                               const retcl_state_pool *pool,
                               const int32_t *slots, size_t n) {
  if (!pool) {
    if (slots)
      return retcl__fail(m->ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: slots given without a pool", op);
    return RETCL_SUCCESS;
  }
  if (pool->model != m)
    return retcl__fail(m->ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: pool belongs to another model", op);
  return check_slots(m->ctx, op, pool, slots, n);
}

static retcl_status forward_packed(retcl_model *m, retcl_state_pool *pool,
                                   const int32_t *slots, const int32_t *tokens,
                                   const size_t *offsets, size_t n,
                                   retcl_algorithm algo, size_t chunk,
                                   int last_only, float *logits);
static retcl_status decode_step(retcl_model *m, retcl_state_pool *pool,
                                const int32_t *slots, const int32_t *tokens,
                                size_t rows, float *logits);

/* A sequence-split model's processes hold slices of one sequence: packed
 * batches and decoding steps are not theirs to run. */
static retcl_status check_not_sequence_split(retcl_model *m, const char *op) {
  if (retcl__model_is_split(m) && m->split.sequence)
    return retcl__fail(m->ctx, RETCL_ERROR_UNSUPPORTED,
                       "%s: a sequence-split model runs retcl_model_forward "
                       "and _last only; serve with a heads-split or whole "
                       "model",
                       op);
  return RETCL_SUCCESS;
}

retcl_status retcl_model_forward_packed(retcl_model *m, retcl_state_pool *pool,
                                        const int32_t *slots,
                                        const int32_t *tokens,
                                        const size_t *offsets, size_t n,
                                        retcl_algorithm algo, size_t chunk,
                                        int last_only, float *logits) {
  if (!m) return RETCL_ERROR_INVALID_ARGUMENT;
  retcl__clear_error(m->ctx);
  m->agreed = 0;
  retcl_status st = check_not_sequence_split(m, OP_PACKED);
  if (!st)
    st = forward_packed(m, pool, slots, tokens, offsets, n, algo, chunk,
                        last_only, logits);
  return retcl__model_agree_failure(m, OP_PACKED, st);
}

retcl_status retcl_model_decode_step(retcl_model *m, retcl_state_pool *pool,
                                     const int32_t *slots,
                                     const int32_t *tokens, size_t rows,
                                     float *logits) {
  if (!m) return RETCL_ERROR_INVALID_ARGUMENT;
  retcl__clear_error(m->ctx);
  m->agreed = 0;
  retcl_status st = check_not_sequence_split(m, OP_STEP);
  if (!st) st = decode_step(m, pool, slots, tokens, rows, logits);
  return retcl__model_agree_failure(m, OP_STEP, st);
}

static retcl_status forward_packed(retcl_model *m, retcl_state_pool *pool,
                                   const int32_t *slots, const int32_t *tokens,
                                   const size_t *offsets, size_t n,
                                   retcl_algorithm algo, size_t chunk,
                                   int last_only, float *logits) {
  retcl_context *ctx = m->ctx;
  retcl_status st;
  if ((st = retcl__check_dim(ctx, OP_PACKED, "sequences", n, 1, 1 << 20)))
    return st;
  if (!offsets)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: offsets is NULL", OP_PACKED);
  if (offsets[0] != 0)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: offsets[0] = %zu must be 0", OP_PACKED, offsets[0]);
  for (size_t i = 0; i < n; ++i)
    if (offsets[i + 1] <= offsets[i])
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: sequence %zu is empty or offsets decrease "
                         "(offsets[%zu] = %zu, offsets[%zu] = %zu): every "
                         "sequence needs at least one token",
                         OP_PACKED, i, i, offsets[i], i + 1, offsets[i + 1]);
  if ((st = check_pool(m, OP_PACKED, pool, slots, n))) return st;
  return run_packed(m, OP_PACKED, pool, slots, tokens, offsets, n, algo, chunk,
                    last_only, logits);
}

static retcl_status decode_step(retcl_model *m, retcl_state_pool *pool,
                                const int32_t *slots, const int32_t *tokens,
                                size_t rows, float *logits) {
  retcl_context *ctx = m->ctx;
  retcl_status st;
  if ((st = retcl__check_dim(ctx, OP_STEP, "rows", rows, 1, 1 << 20)))
    return st;
  if (!pool || !tokens || !logits)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: %s is NULL",
                       OP_STEP, !pool ? "pool" : !tokens ? "tokens" : "logits");
  if ((st = check_pool(m, OP_STEP, pool, slots, rows))) return st;
  /* The rows that run, as packed sequences of one token each. */
  size_t n = 0;
  for (size_t r = 0; r < rows; ++r) {
    if (slots[r] < 0) continue;
    if (tokens[r] < 0 || (size_t)tokens[r] >= m->cfg.vocab_size)
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: tokens[%zu] = %d is outside the vocabulary "
                         "[0, %zu)",
                         OP_STEP, r, (int)tokens[r], m->cfg.vocab_size);
    ++n;
  }
  if (n == 0) {
    /* Nothing runs; a split model's processes still meet, so that one
     * whose rows all skip while another's run fails with the others. */
    return retcl__model_agree(m, OP_STEP, RETCL_SUCCESS, 0, 1, NULL, NULL);
  }
  const size_t V = m->cfg.vocab_size;
  size_t *offsets = malloc((n + 1) * sizeof *offsets);
  int32_t *run_slots = malloc(n * sizeof *run_slots);
  int32_t *run_tokens = malloc(n * sizeof *run_tokens);
  float *run_logits = n == rows ? logits : malloc(n * V * sizeof *run_logits);
  if (!offsets || !run_slots || !run_tokens || !run_logits) {
    st = retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host", OP_STEP);
    goto done;
  }
  for (size_t r = 0, i = 0; r < rows; ++r) {
    if (slots[r] < 0) continue;
    run_slots[i] = slots[r];
    run_tokens[i] = tokens[r];
    offsets[i] = i;
    ++i;
  }
  offsets[n] = n;
  st = run_packed(m, OP_STEP, pool, run_slots, run_tokens, offsets, n,
                  RETCL_ALGO_RECURRENT, 0, 1, run_logits);
  if (!st && run_logits != logits)
    for (size_t r = 0, i = 0; r < rows; ++r)
      if (slots[r] >= 0)
        memcpy(logits + r * V, run_logits + (i++) * V, V * sizeof *logits);
done:
  free(offsets);
  free(run_slots);
  free(run_tokens);
  if (run_logits != logits) free(run_logits);
  return st;
}
