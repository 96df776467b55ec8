/* msr.c - the multi-scale retention layer (docs/design.md §1.6):
 * projections, rotation, retention, group norm + gate, output projection.
 * retcl_msr_forward checks every caller buffer once, then enqueues the
 * ops' enqueue steps; the model calls the same steps per layer. */
#include "model/msr.h"

#include "ops/group_norm.h"
#include "ops/limits.h"
#include "ops/linear.h"
#include "ops/packing.h"
#include "ops/rotation.h"
#include "runtime/context.h"
#include "runtime/events.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <math.h>

static const char *OP = "retcl_msr_forward";

unsigned retcl__msr_families(void) {
  return retcl__linear_families() |
         RETCL_FAMILY_BIT(RETCL_FAMILY_ROTATION) |
         RETCL_FAMILY_BIT(RETCL_FAMILY_RETENTION) |
         RETCL_FAMILY_BIT(RETCL_FAMILY_GROUP_NORM);
}

retcl_status retcl__msr_plan(retcl_context *ctx, const char *op,
                             const retcl_msr_desc *d,
                             const retcl_rotation *rot, int has_state_in,
                             int has_state_out, retcl_msr_plan *plan) {
  retcl_status st;
  if ((st = retcl__check_dim(ctx, op, "desc->heads", d->heads, 1,
                             RETCL_MAX_HEADS)) ||
      (st = retcl__check_dim(ctx, op, "desc->embed_dim", d->embed_dim, 2,
                             RETCL_MAX_EMBED_DIM)) ||
      (st = retcl__check_dim(ctx, op, "desc->value_embed_dim",
                             d->value_embed_dim, 1, RETCL_MAX_EMBED_DIM)) ||
      (st = retcl__check_dim(ctx, op, "desc->batch", d->batch, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, op, "desc->tokens", d->tokens, 1,
                             RETCL_MAX_INDEX)))
    return st;
  if (d->embed_dim % d->heads || d->value_embed_dim % d->heads ||
      (d->embed_dim / d->heads) % 2)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: embed_dim %zu and value_embed_dim %zu must be "
                       "multiples of heads %zu, with an even key dim",
                       op, d->embed_dim, d->value_embed_dim, d->heads);
  if (!isfinite(d->norm_eps) || d->norm_eps < 0)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: desc->norm_eps must be finite and >= 0", op);
  retcl_msr_plan p;
  p.d = *d;
  p.Dk = d->embed_dim / d->heads;
  p.Dv = d->value_embed_dim / d->heads;
  p.rows = retcl__mul(d->batch, d->tokens);
  if (retcl__rotation_dim(rot) != p.Dk)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: rot is for head dim %zu but the key dim is %zu", op,
                       retcl__rotation_dim(rot), p.Dk);
  p.rot_q = (retcl_rotation_desc){d->batch, d->tokens, d->heads,
                                  RETCL_LAYOUT_TOKEN_MAJOR, d->pos0, 0,
                                  d->packing};
  p.rot_k = p.rot_q;
  p.rot_k.is_key = 1;
  if ((st = retcl__rotate_check(ctx, op, rot, &p.rot_q))) return st;
  const retcl_retention_desc rd = {
      d->batch, d->tokens, d->heads, p.Dk, p.Dv, RETCL_LAYOUT_TOKEN_MAJOR,
      d->algorithm, d->form, d->chunk_size, 0.0f,
      /* packed: the position of sequences without their own (each one's
       * state decides whether it continues) */
      d->packing.count ||
              (d->form == RETCL_FORM_TORCHSCALE && has_state_in)
          ? d->pos0
          : 0,
      d->packing};
  if ((st = retcl__retention_plan(ctx, op, &rd, has_state_in, has_state_out,
                                  &p.retention)))
    return st;
  p.norm = (retcl_group_norm_desc){d->batch, d->tokens, d->heads, p.Dv,
                                   RETCL_LAYOUT_TOKEN_MAJOR, RETCL_NORM_RMS,
                                   RETCL_GATE_SWISH, d->norm_eps};
  if ((st = retcl__group_norm_check(ctx, op, &p.norm))) return st;
  /* Q, K [rows, d]; V, G, O [rows, dv]. */
  p.width = d->embed_dim;
  p.split = NULL;
  p.layer_floats = retcl__mul(p.rows, 2 * d->embed_dim + 3 * d->value_embed_dim);
  if (p.layer_floats > RETCL_MAX_INDEX)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: %zu tokens need %zu floats of activations; the "
                       "limit is %zu: run fewer tokens per call",
                       op, p.rows, p.layer_floats, RETCL_MAX_INDEX);
  *plan = p;
  return RETCL_SUCCESS;
}

retcl_status retcl__msr_table(retcl_context *ctx, const char *op,
                              const retcl_msr_plan *p, cl_mem *table) {
  const retcl_retention_desc *rd = &p->retention.d;
  *table = NULL;
  if (!rd->packing.count) return RETCL_SUCCESS;
  return retcl__packing_upload(ctx, op, &rd->packing, rd->tokens, p->d.pos0,
                               p->retention.has_state_in,
                               p->retention.has_state_out,
                               rd->form == RETCL_FORM_TORCHSCALE, table);
}

retcl_status retcl__msr_reserve(retcl_context *ctx, const retcl_msr_plan *p) {
  const size_t dm = p->d.embed_dim, dv = p->d.value_embed_dim;
  size_t widest = dm > dv ? dm : dv;
  if (p->width > widest) widest = p->width;
  return retcl__linear_reserve(ctx, p->rows, widest, widest);
}

retcl_status retcl__msr_enqueue(retcl_context *ctx, const retcl_msr_plan *p,
                                const retcl_msr_weights *w,
                                const retcl_rotation *rot,
                                retcl_buffer log_decay, retcl_buffer x,
                                retcl_buffer state_in, retcl_buffer state_out,
                                retcl_buffer y, cl_mem layer, cl_mem scratch,
                                cl_mem table) {
  const size_t bt = p->rows, dm = p->d.embed_dim, dv = p->d.value_embed_dim,
               width = p->width;
  const retcl_buffer Q = retcl_buf(layer, 0), K = retcl_buf(layer, bt * dm),
                     V = retcl_buf(layer, 2 * bt * dm),
                     G = retcl_buf(layer, 2 * bt * dm + bt * dv),
                     O = retcl_buf(layer, 2 * bt * dm + 2 * bt * dv);
  /* Q, K, V, G are back to back in the workspace; where the weights are
   * too (retcl_model_load stacks them), they run as one launch. */
  const retcl_projection qkvg[4] = {
      {w->q_proj, Q, dm, 1.0f},
      {w->k_proj, K, dm, (float)(1.0 / sqrt((double)p->Dk))},
      {w->v_proj, V, dv, 1.0f},
      {w->g_proj, G, dv, 1.0f}};
  retcl_status st;
  if ((st = retcl__linear_many_enqueue(ctx, bt, width, x, 4, qkvg)) ||
      (st = retcl__rotate_enqueue(ctx, rot, &p->rot_q, Q, Q, table, 0, NULL,
                                  NULL)) ||
      (st = retcl__rotate_enqueue(ctx, rot, &p->rot_k, K, K, table, 0, NULL,
                                  NULL)))
    return retcl__msr_split_retention(ctx, p, st, Q, K, V, log_decay,
                                      state_out, O);
  if (p->split) {
    if ((st = retcl__msr_split_retention(ctx, p, RETCL_SUCCESS, Q, K, V,
                                         log_decay, state_out, O)))
      return st;
  } else if ((st = retcl__retention_enqueue(ctx, &p->retention, Q, K, V,
                                            log_decay, state_in, state_out, O,
                                            scratch, table, 0, NULL, NULL))) {
    return st;
  }
  if ((st = retcl__group_norm_enqueue(ctx, &p->norm, O, G, retcl_no_buf(),
                                      retcl_no_buf(), O, 0, NULL, NULL)))
    return st;
  return retcl__linear_enqueue(ctx, bt, width, dv, 1.0f, O, w->out_proj, 0.0f,
                               y);
}

retcl_status retcl__msr_split_retention(retcl_context *ctx,
                                        const retcl_msr_plan *p,
                                        retcl_status st, retcl_buffer q,
                                        retcl_buffer k, retcl_buffer v,
                                        retcl_buffer log_decay,
                                        retcl_buffer state_out,
                                        retcl_buffer out) {
  if (!p->split) return st;
  const retcl_split_result r = p->split->retention(
      p->split->user, ctx, &p->retention.d, q, k, v, log_decay, state_out,
      out, st);
  /* This process's own failure keeps its own message. */
  if (st) return st;
  if (r.status) return retcl__fail(ctx, r.status, "%s", r.message);
  return RETCL_SUCCESS;
}

/* The caller's buffers, each checked once. */
static retcl_status check_buffers(retcl_context *ctx, const retcl_msr_plan *p,
                                  const retcl_msr_weights *w,
                                  retcl_buffer log_decay, retcl_buffer x,
                                  retcl_buffer state_in,
                                  retcl_buffer state_out, retcl_buffer y) {
  const size_t bt = p->rows, dm = p->d.embed_dim, dv = p->d.value_embed_dim;
  const size_t state = p->retention.state;
  retcl_status st;
  if ((st = retcl__check_buffer(ctx, OP, "x", x, retcl__mul(bt, dm))) ||
      (st = retcl__check_buffer(ctx, OP, "y", y, retcl__mul(bt, dm))) ||
      (st = retcl__check_weight(ctx, OP, "weights->q_proj", w->q_proj, dm * dm)) ||
      (st = retcl__check_weight(ctx, OP, "weights->k_proj", w->k_proj, dm * dm)) ||
      (st = retcl__check_weight(ctx, OP, "weights->v_proj", w->v_proj, dv * dm)) ||
      (st = retcl__check_weight(ctx, OP, "weights->g_proj", w->g_proj, dv * dm)) ||
      (st = retcl__check_weight(ctx, OP, "weights->out_proj", w->out_proj, dm * dv)) ||
      (st = retcl__check_buffer(ctx, OP, "log_decay", log_decay, p->d.heads)) ||
      (st = retcl__check_optional_buffer(ctx, OP, "state_in", state_in, state)) ||
      (st = retcl__check_optional_buffer(ctx, OP, "state_out", state_out, state)))
    return st;
  if (retcl__overlaps(x, bt * dm, y, bt * dm) && x.offset != y.offset)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: x and y overlap without being the same range", OP);
  return RETCL_SUCCESS;
}

retcl_status retcl_msr_forward(retcl_context *ctx, const retcl_msr_desc *desc,
                               const retcl_msr_weights *w,
                               const retcl_rotation *rot,
                               retcl_buffer log_decay, retcl_buffer x,
                               retcl_buffer state_in, retcl_buffer state_out,
                               retcl_buffer y, cl_uint num_events_in_wait_list,
                               const cl_event *event_wait_list,
                               cl_event *event) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if (!desc || !w || !rot)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", OP,
                       !desc ? "desc" : !w ? "weights" : "rot");
  /* Everything that can fail does so before anything is enqueued, so a
   * failed call leaves state_out and y untouched. */
  retcl_msr_plan plan;
  cl_mem layer = NULL, scratch = NULL, table = NULL;
  if ((st = retcl__msr_plan(ctx, OP, desc, rot, state_in.mem != NULL,
                            state_out.mem != NULL, &plan)) ||
      (st = retcl__check_wait_list(ctx, OP, num_events_in_wait_list,
                                   event_wait_list)) ||
      (st = check_buffers(ctx, &plan, w, log_decay, x, state_in, state_out,
                          y)) ||
      (st = retcl__prepare_typed(ctx, retcl__msr_families(), w->q_proj.type)) ||
      (st = retcl__prepare_typed(ctx, retcl__msr_families(), w->k_proj.type)) ||
      (st = retcl__prepare_typed(ctx, retcl__msr_families(), w->v_proj.type)) ||
      (st = retcl__prepare_typed(ctx, retcl__msr_families(), w->g_proj.type)) ||
      (st = retcl__prepare_typed(ctx, retcl__msr_families(), w->out_proj.type)) ||
      (st = retcl__msr_reserve(ctx, &plan)) ||
      (st = retcl__workspace(ctx, RETCL_WORKSPACE_LAYER,
                             plan.layer_floats * sizeof(float), &layer)) ||
      (plan.retention.scratch &&
       (st = retcl__workspace(ctx, RETCL_WORKSPACE_RETENTION,
                              plan.retention.scratch * sizeof(float),
                              &scratch))) ||
      (st = retcl__msr_table(ctx, OP, &plan, &table)))
    return st;
  if (!(st = retcl__wait_for(ctx, num_events_in_wait_list, event_wait_list)) &&
      !(st = retcl__msr_enqueue(ctx, &plan, w, rot, log_decay, x, state_in,
                                state_out, y, layer, scratch, table)))
    st = retcl__signal_done(ctx, event);
  if (table) clReleaseMemObject(table); /* kept alive by the launches */
  return st;
}
