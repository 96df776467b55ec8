/* split.c - a model divided among cooperating processes
 * (retcl_model_load_split, docs/design.md §1.8 "The model split across
 * ranks"): which part a process holds, the agreement every forward makes
 * through the split's hooks (with a digest of the call), the heads split's
 * sums and what a sequence split refuses. model.c loads and runs the part;
 * libretcl_mpi supplies the hooks over MPI. */
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <stdint.h>

/* The parts of a split that the model can hold: checked against the
 * config once it is read. */
retcl_status retcl__model_split_resolve(retcl_context *ctx,
                                        const retcl_model_config *c,
                                        retcl_model_split *s) {
  if (s->sequence) {
    if (s->head_count || s->ffn_count || s->parts)
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "retcl_model_load_split: a sequence split holds "
                         "every head and FFN unit: head_count, ffn_count "
                         "and parts must be 0");
    return RETCL_SUCCESS;
  }
  if (s->parts) {
    if (s->part >= s->parts || s->parts > c->heads || s->parts > c->ffn_dim)
      return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                         "retcl_model_load_split: part %zu of %zu: the model's "
                         "%zu heads and ffn_dim %zu split into at most %zu "
                         "parts",
                         s->part, s->parts, c->heads, c->ffn_dim,
                         c->heads < c->ffn_dim ? c->heads : c->ffn_dim);
    s->head_begin = c->heads * s->part / s->parts;
    s->head_count = c->heads * (s->part + 1) / s->parts - s->head_begin;
    s->ffn_begin = c->ffn_dim * s->part / s->parts;
    s->ffn_count = c->ffn_dim * (s->part + 1) / s->parts - s->ffn_begin;
  }
  if (s->head_count == 0 || s->head_begin >= c->heads ||
      s->head_count > c->heads - s->head_begin)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "retcl_model_load_split: heads [%zu, %zu + %zu) are "
                       "not a non-empty range of the model's %zu heads",
                       s->head_begin, s->head_begin, s->head_count, c->heads);
  if (s->ffn_count == 0 || s->ffn_begin >= c->ffn_dim ||
      s->ffn_count > c->ffn_dim - s->ffn_begin)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "retcl_model_load_split: FFN units [%zu, %zu + %zu) "
                       "are not a non-empty range of the model's ffn_dim "
                       "%zu",
                       s->ffn_begin, s->ffn_begin, s->ffn_count, c->ffn_dim);
  return RETCL_SUCCESS;
}

retcl_status retcl_model_load_split(retcl_context *ctx, const char *dir,
                                    retcl_storage storage,
                                    const retcl_model_split *split,
                                    retcl_model **out) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if (!split || !out)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "retcl_model_load_split: %s is NULL",
                       !split ? "split" : "out");
  *out = NULL;
  if (!split->agree || (split->sequence ? !split->retention : !split->sum))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "retcl_model_load_split: split->%s is NULL (a %s "
                       "split needs it)",
                       !split->agree ? "agree"
                       : split->sequence ? "retention"
                                         : "sum",
                       split->sequence ? "sequence" : "heads");
  return retcl__model_load(ctx, dir, storage, split, out);
}

/* FNV-1a, 64 bits, over n bytes, continuing h. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

uint64_t retcl__forward_digest(const retcl_model *m,
                               const retcl__forward_call *a) {
  /* (Whether a process asks for logits is its own affair: the logits are
   * computed after the last exchange.) */
  const uint64_t head[] = {a->B, (uint64_t)a->algo, a->chunk,
                           a->states != NULL, a->packing.count};
  uint64_t h = fnv1a(0xcbf29ce484222325ull, head, sizeof head);
  if (m->split.sequence) return h; /* each process its own tokens */
  h = fnv1a(h, &a->T, sizeof a->T);
  h = fnv1a(h, a->tokens, a->B * a->T * sizeof *a->tokens);
  const size_t n = a->packing.count;
  if (n) {
    h = fnv1a(h, a->packing.offsets, (n + 1) * sizeof *a->packing.offsets);
    if (a->packing.state_slots)
      h = fnv1a(h, a->packing.state_slots,
                n * sizeof *a->packing.state_slots);
  }
  return h;
}

retcl_status retcl__model_agree(retcl_model *m, const char *op,
                                retcl_status st, size_t tokens,
                                uint64_t shape, size_t *offset_out,
                                size_t *total_out) {
  size_t unused_offset, unused_total;
  size_t *offset = offset_out ? offset_out : &unused_offset,
         *total = total_out ? total_out : &unused_total;
  *offset = 0;
  *total = tokens;
  if (!retcl__model_is_split(m)) return st;
  m->agreed = 1;
  const retcl_split_result r = m->split.agree(m->split.user, m->ctx, st,
                                              tokens, shape, offset, total);
  if (!m->split.sequence) { /* every process runs the same tokens */
    *offset = 0;
    *total = tokens;
  }
  if (st) return st; /* this process's own failure, with its message */
  if (r.status) return retcl__fail(m->ctx, r.status, "%s", r.message);
  return RETCL_SUCCESS;
}

retcl_status retcl__model_agree_failure(retcl_model *m, const char *op,
                                        retcl_status st) {
  if (!st || m->agreed) return st;
  return retcl__model_agree(m, op, st, 0, 0, NULL, NULL);
}

/* A heads-split layer's partial output y (n floats) summed over the
 * processes; st != SUCCESS: this process failed and only takes part. */
retcl_status retcl__model_split_sum(retcl_model *m, retcl_buffer y, size_t n,
                                    retcl_status st) {
  const retcl_split_result r = m->split.sum(m->split.user, m->ctx, y, n, st);
  if (st) return st;
  if (r.status) return retcl__fail(m->ctx, r.status, "%s", r.message);
  return RETCL_SUCCESS;
}

/* What a sequence-split forward cannot do (the model's other processes
 * refuse the same call in the same way, or see this one's failure). */
retcl_status retcl__model_check_sequence_split(retcl_model *m,
                                              const retcl_decode_state *s,
                                              retcl_algorithm algo) {
  if (s && s->position > 0)
    return retcl__fail(m->ctx, RETCL_ERROR_UNSUPPORTED,
                       "%s: a sequence-split model runs from an empty state "
                       "(this one is at position %zu); decode with a "
                       "heads-split or whole model (retcl_decode_state_copy)",
                       "retcl_model_forward", s->position);
  if (algo == RETCL_ALGO_PARALLEL)
    return retcl__fail(m->ctx, RETCL_ERROR_UNSUPPORTED,
                       "%s: a sequence-split model runs the recurrent or "
                       "chunkwise form; torchscale's parallel form normalises "
                       "each row by a sum over all earlier tokens, which no "
                       "state carries across a split",
                       "retcl_model_forward");
  return RETCL_SUCCESS;
}

