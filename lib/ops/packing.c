/* packing.c - checks and the device table of packed sequences
 * (docs/api.md "Packed batches"). */
#include "ops/packing.h"

#include "ops/limits.h"
#include "runtime/context.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <stdlib.h>
#include <string.h>

size_t retcl__packing_length(const retcl_packing *pk, size_t i) {
  return pk->offsets[i + 1] - pk->offsets[i];
}

size_t retcl__packing_position(const retcl_packing *pk, size_t pos0,
                               size_t i) {
  return pk->positions ? pk->positions[i] : pos0;
}

long retcl__packing_slot(const retcl_packing *pk, size_t i) {
  return pk->state_slots ? (long)pk->state_slots[i] : (long)i;
}

int retcl__packing_reads_state(const retcl_packing *pk, size_t pos0,
                               size_t i, int has_state_in, int torchscale) {
  return has_state_in && retcl__packing_slot(pk, i) >= 0 &&
         !(torchscale && retcl__packing_position(pk, pos0, i) == 0);
}

retcl_status retcl__packing_check(retcl_context *ctx, const char *op,
                                  const retcl_packing *pk, size_t batch,
                                  size_t tokens, retcl_layout layout,
                                  size_t pos0, size_t *states) {
  const size_t n = pk->count;
  if (batch != 1)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: packed sequences need desc->batch = 1 (the "
                       "sequences are one stream of desc->tokens), not %zu",
                       op, batch);
  if (layout != RETCL_LAYOUT_TOKEN_MAJOR)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: packed sequences need RETCL_LAYOUT_TOKEN_MAJOR",
                       op);
  if (!pk->offsets)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: packing.offsets is NULL with packing.count = %zu",
                       op, n);
  if (n > RETCL_MAX_INDEX)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: packing.count = %zu exceeds %zu", op, n,
                       RETCL_MAX_INDEX);
  if (pk->offsets[0] != 0)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: packing.offsets[0] = %zu must be 0", op,
                       pk->offsets[0]);
  for (size_t i = 0; i < n; ++i)
    if (pk->offsets[i + 1] < pk->offsets[i])
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: packing.offsets decreases at %zu (%zu after "
                         "%zu)",
                         op, i + 1, pk->offsets[i + 1], pk->offsets[i]);
  if (pk->offsets[n] != tokens)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: packing.offsets[%zu] = %zu must equal "
                       "desc->tokens = %zu",
                       op, n, pk->offsets[n], tokens);
  size_t need = pk->state_slots ? 0 : n;
  for (size_t i = 0; i < n; ++i) {
    const size_t p = retcl__packing_position(pk, pos0, i);
    if (p > RETCL_MAX_POSITION - retcl__packing_length(pk, i))
      return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                         "%s: sequence %zu's positions %zu + %zu exceed 2^32",
                         op, i, p, retcl__packing_length(pk, i));
    if (!pk->state_slots) continue;
    const int32_t s = pk->state_slots[i];
    if (s < -1)
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: packing.state_slots[%zu] = %d (a slot is >= 0, "
                         "or -1 for none)",
                         op, i, (int)s);
    if (s >= 0 && (size_t)s + 1 > need) need = (size_t)s + 1;
  }
  if (pk->state_slots && n > 1) {
    /* Distinct slots: a mark per slot (need is at most the largest slot
     * + 1, bounded by int32). */
    unsigned char *seen = calloc(need ? need : 1, 1);
    if (!seen)
      return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host", op);
    for (size_t i = 0; i < n; ++i) {
      const int32_t s = pk->state_slots[i];
      if (s < 0) continue;
      if (seen[s]) {
        free(seen);
        return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                           "%s: packing.state_slots[%zu] = %d names a slot "
                           "another sequence has",
                           op, i, (int)s);
      }
      seen[s] = 1;
    }
    free(seen);
  }
  *states = need;
  return RETCL_SUCCESS;
}

retcl_status retcl__packing_upload(retcl_context *ctx, const char *op,
                                   const retcl_packing *pk, size_t tokens,
                                   size_t pos0, int has_state_in,
                                   int has_state_out, int torchscale,
                                   cl_mem *table) {
  const size_t n = pk->count;
  const size_t words = tokens + n * RETCL_SEQ_WORDS;
  cl_uint *w = malloc(words * sizeof *w);
  if (!w) return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host", op);
  cl_uint *e = w + tokens;
  for (size_t i = 0; i < n; ++i, e += RETCL_SEQ_WORDS) {
    const size_t start = pk->offsets[i], len = retcl__packing_length(pk, i);
    const size_t pos = retcl__packing_position(pk, pos0, i);
    const long slot = retcl__packing_slot(pk, i);
    for (size_t t = 0; t < len; ++t) w[start + t] = (cl_uint)(pos + t);
    e[RETCL_SEQ_START] = (cl_uint)start;
    e[RETCL_SEQ_COUNT] = (cl_uint)len;
    e[RETCL_SEQ_IN] = retcl__packing_reads_state(pk, pos0, i, has_state_in,
                                                 torchscale)
                          ? (cl_uint)slot
                          : RETCL_SEQ_NONE;
    /* A sequence without a kept state runs in its own scratch state. */
    const int kept = has_state_out && slot >= 0;
    e[RETCL_SEQ_OUT] = kept ? (cl_uint)slot : (cl_uint)i;
    e[RETCL_SEQ_OUT_SCRATCH] = !kept;
    e[RETCL_SEQ_POSITION] = (cl_uint)pos;
  }
  cl_int err = CL_SUCCESS;
  *table = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                          words * sizeof *w, w, &err);
  free(w);
  if (!*table) return retcl__cl_fail(ctx, "clCreateBuffer(packing table)", err);
  return RETCL_SUCCESS;
}
