/* layer.c - the multi-scale retention layer (DESIGN 1.6): projections by
 * CLBlast, rotation, retention, group norm + gate, output projection. */
#include "internal.h"

#include <math.h>

static const char *OP = "retcl_msr_forward";

static retcl_status check_layer(retcl_context *ctx, const retcl_msr_desc *d,
                                const retcl_msr_weights *w,
                                const retcl_rotation *rot, retcl_buffer x,
                                retcl_buffer y) {
  retcl_status st;
  if (!d || !w || !rot)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", OP,
                       !d ? "desc" : !w ? "weights" : "rot");
  if ((st = retcl__check_dim(ctx, OP, "desc->heads", d->heads, 1, 4096)) ||
      (st = retcl__check_dim(ctx, OP, "desc->embed_dim", d->embed_dim, 2,
                             1 << 20)) ||
      (st = retcl__check_dim(ctx, OP, "desc->value_embed_dim",
                             d->value_embed_dim, 1, 1 << 20)))
    return st;
  if (d->embed_dim % d->heads || d->value_embed_dim % d->heads ||
      (d->embed_dim / d->heads) % 2)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: embed_dim %zu and value_embed_dim %zu must be "
                       "multiples of heads %zu, with an even key dim",
                       OP, d->embed_dim, d->value_embed_dim, d->heads);
  const size_t bt = retcl__mul(d->batch, d->tokens);
  const size_t dm = d->embed_dim, dv = d->value_embed_dim;
  if ((st = retcl__check_dim(ctx, OP, "desc->batch", d->batch, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, OP, "desc->tokens", d->tokens, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_buffer(ctx, OP, "x", x, retcl__mul(bt, dm))) ||
      (st = retcl__check_buffer(ctx, OP, "y", y, retcl__mul(bt, dm))) ||
      (st = retcl__check_buffer(ctx, OP, "weights->q_proj", w->q_proj, dm * dm)) ||
      (st = retcl__check_buffer(ctx, OP, "weights->k_proj", w->k_proj, dm * dm)) ||
      (st = retcl__check_buffer(ctx, OP, "weights->v_proj", w->v_proj, dv * dm)) ||
      (st = retcl__check_buffer(ctx, OP, "weights->g_proj", w->g_proj, dv * dm)) ||
      (st = retcl__check_buffer(ctx, OP, "weights->out_proj", w->out_proj, dm * dv)))
    return st;
  if (retcl__overlaps(x, bt * dm, y, bt * dm) && x.offset != y.offset)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: x and y overlap without being the same range", OP);
  if (!isfinite(d->norm_eps) || d->norm_eps < 0)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: desc->norm_eps must be finite and >= 0", OP);
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
  if ((st = check_layer(ctx, desc, w, rot, x, y)) ||
      (st = retcl__check_wait_list(ctx, OP, num_events_in_wait_list,
                                   event_wait_list)))
    return st;
  const retcl_msr_desc *d = desc;
  const size_t H = d->heads, dm = d->embed_dim, dv = d->value_embed_dim;
  const size_t Dk = dm / H, Dv = dv / H, bt = d->batch * d->tokens;

  /* Check what the later ops would reject before enqueueing anything, so
   * a failed call leaves state_out and y untouched. */
  if (retcl__rotation_dim(rot) != Dk)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: rot is for head dim %zu but the key dim is %zu", OP,
                       retcl__rotation_dim(rot), Dk);
  retcl_retention_desc rd = {d->batch, d->tokens, H, Dk, Dv,
                             RETCL_LAYOUT_TOKEN_MAJOR, d->algorithm, d->form,
                             d->chunk_size, 0.0f,
                             d->form == RETCL_FORM_TORCHSCALE && state_in.mem
                                 ? d->pos0 : 0};
  const size_t state_elems = d->batch * H * Dk * Dv;
  if ((st = retcl__retention_check(ctx, &rd, state_in.mem != NULL)) ||
      (st = retcl__check_buffer(ctx, OP, "log_decay", log_decay, H)) ||
      (st = retcl__check_optional_buffer(ctx, OP, "state_in", state_in,
                                         state_elems)) ||
      (st = retcl__check_optional_buffer(ctx, OP, "state_out", state_out,
                                         state_elems)))
    return st;

  /* Workspace: Q, K [bt, d]; V, G, O [bt, dv]. */
  cl_mem ws;
  if ((st = retcl__workspace(ctx, RETCL_WORKSPACE_LAYER,
                             (2 * bt * dm + 3 * bt * dv) * sizeof(float), &ws)))
    return st;
  const retcl_buffer Q = retcl_buf(ws, 0), K = retcl_buf(ws, bt * dm),
                     V = retcl_buf(ws, 2 * bt * dm),
                     G = retcl_buf(ws, 2 * bt * dm + bt * dv),
                     O = retcl_buf(ws, 2 * bt * dm + 2 * bt * dv);

  if ((st = retcl__wait_for(ctx, num_events_in_wait_list, event_wait_list)))
    return st;
  /* Q, K, V, G are back to back in the workspace; where the weights are
   * too (retcl_model_load stacks them), they run as one launch. */
  const retcl_projection qkvg[4] = {
      {w->q_proj, Q, dm, 1.0f},
      {w->k_proj, K, dm, (float)(1.0 / sqrt((double)Dk))},
      {w->v_proj, V, dv, 1.0f},
      {w->g_proj, G, dv, 1.0f}};
  if ((st = retcl__gemm_many(ctx, bt, dm, x, 4, qkvg))) return st;
  retcl_rotation_desc qd = {d->batch, d->tokens, H, RETCL_LAYOUT_TOKEN_MAJOR,
                            d->pos0, 0};
  retcl_rotation_desc kd = qd;
  kd.is_key = 1;
  if ((st = retcl_rotate(ctx, rot, &qd, Q, Q, 0, NULL, NULL)) ||
      (st = retcl_rotate(ctx, rot, &kd, K, K, 0, NULL, NULL)) ||
      (st = retcl_retention(ctx, &rd, Q, K, V, log_decay, state_in, state_out,
                            O, 0, NULL, NULL)))
    return st;
  retcl_group_norm_desc gd = {d->batch, d->tokens, H, Dv,
                              RETCL_LAYOUT_TOKEN_MAJOR, RETCL_NORM_RMS,
                              RETCL_GATE_SWISH, d->norm_eps};
  if ((st = retcl_group_norm_gate(ctx, &gd, O, G, retcl_no_buf(),
                                  retcl_no_buf(), O, 0, NULL, NULL)) ||
      (st = retcl__gemm_xwt(ctx, bt, dm, dv, 1.0f, O, w->out_proj, 0.0f, y)))
    return st;
  return retcl__signal_done(ctx, event);
}
