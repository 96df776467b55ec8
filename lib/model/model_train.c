/* model_train.c - the training pass of a model (docs/design.md §1.7): a
 * forward that keeps what the backward needs (the tape), and the backward
 * that writes the gradient of the mean next-token cross-entropy into a
 * vector laid out like the parameter vector.
 *
 * The tape holds each layer's input x_l (l = 0 .. L), the final norm's
 * output, the logits (turned into their gradient by the loss) and, unless
 * the options ask for recomputation, every layer's intermediates. With
 * recomputation a layer's intermediates are rebuilt from x_l just before
 * its backward, in one layer's worth of space: memory then grows with
 * (L + 1) x_l instead of L times the intermediates, for one more forward. */
#include "model/model.h"

#include "model/msr.h"
#include "ops/elementwise.h"
#include "ops/embedding_grad.h"
#include "ops/gemm.h"
#include "ops/group_norm.h"
#include "ops/limits.h"
#include "ops/linear.h"
#include "ops/loss.h"
#include "ops/retention.h"
#include "ops/retention_grad.h"
#include "ops/rotation.h"
#include "runtime/context.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *OP_TRAIN = "retcl_model_forward_train";
static const char *OP_BACK = "retcl_model_backward";

/* Offsets (floats) of one layer's intermediates, in the order the forward
 * makes them; Q K and V G and a g are adjacent so that their projections
 * stack (retcl__linear_many_enqueue). */
typedef struct layer_slots {
  size_t n0, q, k, v, g, o, z, x1, n1, a, gate, h, total;
} layer_slots;

/* The gradient temporaries of one layer's backward. */
typedef struct grad_slots {
  size_t dx, dpart, dn, dq, dk, dv, dg, d_o, dz, dh, da, dgate, total;
} grad_slots;

typedef struct retcl__train_tape {
  size_t B, T, bt;
  retcl_train_options opt;
  cl_mem mem;
  size_t bytes;
  size_t xs, e, hL, logits, loss, y, layers, grads; /* offsets */
  layer_slots ls;
  grad_slots gs;
  int32_t *tokens; /* host copy, for the embedding's gradient */
  retcl_msr_plan plan;
  /* The backward's plans: the model's RMSNorms (with their weight's
   * gradient), the layer's gated group norm, retention. */
  retcl_group_norm_grad_plan rms_grad, gate_grad;
  retcl_retention_grad_plan ret_grad;
  int ready;       /* a forward_train has run since the last change */
} retcl__train_tape;

static layer_slots layer_slots_for(const retcl_model_config *c, size_t bt) {
  const size_t d = c->embed_dim, dv = c->value_embed_dim, f = c->ffn_dim;
  layer_slots s;
  size_t at = 0;
  s.n0 = at, at += bt * d;
  s.q = at, at += bt * d;
  s.k = at, at += bt * d;
  s.v = at, at += bt * dv;
  s.g = at, at += bt * dv;
  s.o = at, at += bt * dv;
  s.z = at, at += bt * dv;
  s.x1 = at, at += bt * d;
  s.n1 = at, at += bt * d;
  s.a = at, at += bt * f;
  s.gate = at, at += bt * f;
  s.h = at, at += bt * f;
  s.total = at;
  return s;
}

static grad_slots grad_slots_for(const retcl_model_config *c, size_t bt) {
  const size_t d = c->embed_dim, dv = c->value_embed_dim, f = c->ffn_dim;
  grad_slots s;
  size_t at = 0;
  s.dx = at, at += bt * d;
  s.dpart = at, at += bt * d;
  s.dn = at, at += bt * d;
  s.dq = at, at += bt * d;
  s.dk = at, at += bt * d;
  s.dv = at, at += bt * dv;
  s.dg = at, at += bt * dv;
  s.d_o = at, at += bt * dv;
  s.dz = at, at += bt * dv;
  s.dh = at, at += bt * f;
  s.da = at, at += bt * f;
  s.dgate = at, at += bt * f;
  s.total = at;
  return s;
}

void retcl__train_tape_free(retcl_model *m) {
  if (!m->tape) return;
  if (m->tape->mem) clReleaseMemObject(m->tape->mem);
  free(m->tape->tokens);
  free(m->tape);
  m->tape = NULL;
}

size_t retcl_model_train_bytes(const retcl_model *model) {
  return model && model->tape ? model->tape->bytes : 0;
}

void retcl_train_options_default(retcl_train_options *o) {
  if (!o) return;
  o->algorithm = RETCL_ALGO_CHUNKWISE;
  o->chunk_size = 0;
  o->recompute = 0;
  o->ignore_index = -1;
}

/* ---- pieces of the forward and backward ---------------------------------- */

static retcl_buffer at(cl_mem mem, size_t offset) {
  return retcl_buf(mem, offset);
}

static retcl_status copy(retcl_context *ctx, retcl_buffer from,
                         retcl_buffer to, size_t n) {
  const cl_int err = clEnqueueCopyBuffer(
      ctx->queue, from.mem, to.mem, from.offset * sizeof(float),
      to.offset * sizeof(float), n * sizeof(float), 0, NULL, NULL);
  return err == CL_SUCCESS ? RETCL_SUCCESS
                           : retcl__cl_fail(ctx, "clEnqueueCopyBuffer", err);
}

/* C = alpha op(A) op(B) + beta C with packed leading dimensions. */
static retcl_status product(retcl_context *ctx, retcl_gemm_case op, size_t M,
                            size_t N, size_t K, float alpha, retcl_buffer A,
                            retcl_buffer B, float beta, retcl_buffer C) {
  const size_t lda = op == RETCL_GEMM_TN ? M : K,
               ldb = op == RETCL_GEMM_NT ? K : N;
  return retcl__gemm_enqueue(ctx, op, M, N, K, alpha, A, lda, B, ldb, beta, C,
                             N, 0, NULL, NULL);
}

/* One block's forward from x_in, keeping its intermediates at S (floats
 * in tape memory) and writing the block's output to x_out. */
static retcl_status layer_forward(retcl_model *m, size_t l, retcl_buffer x_in,
                                  size_t S, retcl_buffer x_out,
                                  cl_mem scratch) {
  retcl_context *ctx = m->ctx;
  retcl__train_tape *t = m->tape;
  const retcl_model_config *c = &m->cfg;
  const layer_weights *w = &m->layers[l];
  const layer_slots *s = &t->ls;
  const size_t bt = t->bt, d = c->embed_dim, dv = c->value_embed_dim,
               f = c->ffn_dim;
  const float alpha = retcl__model_residual_alpha(c);
  cl_mem mem = t->mem;
  const retcl_group_norm_desc rms = retcl__model_rms_desc(m, bt);
  const retcl_projection qkvg[4] = {
      {w->msr.q_proj, at(mem, S + s->q), d, 1.0f},
      {w->msr.k_proj, at(mem, S + s->k), d,
       (float)(1.0 / sqrt((double)t->plan.Dk))},
      {w->msr.v_proj, at(mem, S + s->v), dv, 1.0f},
      {w->msr.g_proj, at(mem, S + s->g), dv, 1.0f}};
  const retcl_projection fc1_gate[2] = {
      {w->ffn.fc1_gate, at(mem, S + s->a), f, 1.0f},
      {retcl_buf(w->ffn.fc1_gate.mem, w->ffn.fc1_gate.offset + f * d),
       at(mem, S + s->gate), f, 1.0f}};
  const retcl_buffer y = at(mem, t->y);
  retcl_status st;
  if ((st = retcl__group_norm_enqueue(ctx, &rms, x_in, retcl_no_buf(),
                                      w->ret_norm, retcl_no_buf(),
                                      at(mem, S + s->n0), 0, NULL, NULL)) ||
      (st = retcl__linear_many_enqueue(ctx, bt, d, at(mem, S + s->n0), 4,
                                       qkvg)) ||
      (st = retcl__rotate_enqueue(ctx, m->rot, &t->plan.rot_q,
                                  at(mem, S + s->q), at(mem, S + s->q), NULL,
                                  0, NULL, NULL)) ||
      (st = retcl__rotate_enqueue(ctx, m->rot, &t->plan.rot_k,
                                  at(mem, S + s->k), at(mem, S + s->k), NULL,
                                  0, NULL, NULL)) ||
      (st = retcl__retention_enqueue(
           ctx, &t->plan.retention, at(mem, S + s->q), at(mem, S + s->k),
           at(mem, S + s->v), retcl_buf(m->log_decay, 0), retcl_no_buf(),
           retcl_no_buf(), at(mem, S + s->o), scratch, NULL, 0, NULL, NULL)) ||
      (st = retcl__group_norm_enqueue(ctx, &t->plan.norm, at(mem, S + s->o),
                                      at(mem, S + s->g), retcl_no_buf(),
                                      retcl_no_buf(), at(mem, S + s->z), 0,
                                      NULL, NULL)) ||
      (st = retcl__linear_enqueue(ctx, bt, d, dv, 1.0f, at(mem, S + s->z),
                                  w->msr.out_proj, 0.0f, y)) ||
      (st = copy(ctx, x_in, at(mem, S + s->x1), bt * d)) ||
      (st = retcl__residual(ctx, bt * d, alpha, at(mem, S + s->x1), y)) ||
      (st = retcl__group_norm_enqueue(ctx, &rms, at(mem, S + s->x1),
                                      retcl_no_buf(), w->ffn_norm,
                                      retcl_no_buf(), at(mem, S + s->n1), 0,
                                      NULL, NULL)) ||
      (st = retcl__linear_many_enqueue(ctx, bt, d, at(mem, S + s->n1), 2,
                                       fc1_gate)) ||
      (st = copy(ctx, at(mem, S + s->a), at(mem, S + s->h), bt * f)) ||
      (st = retcl__glu(ctx, bt * f, c->activation, at(mem, S + s->h),
                       at(mem, S + s->gate))) ||
      (st = retcl__linear_enqueue(ctx, bt, d, f, 1.0f, at(mem, S + s->h),
                                  w->ffn.fc2, 0.0f, y)) ||
      (st = copy(ctx, at(mem, S + s->x1), x_out, bt * d)))
    return st;
  return retcl__residual(ctx, bt * d, alpha, x_out, y);
}

/* The weight gradient dW[n_out, n_in] = alpha dYᵀ X (rows of the batch as
 * the inner dimension), written over whatever the vector held. */
static retcl_status weight_grad(retcl_context *ctx, size_t n_out, size_t n_in,
                                size_t bt, float alpha, retcl_buffer dY,
                                retcl_buffer X, retcl_buffer dW) {
  return product(ctx, RETCL_GEMM_TN, n_out, n_in, bt, alpha, dY, X, 0.0f, dW);
}

/* dX (+)= alpha dY W for W [n_out, n_in]. */
static retcl_status input_grad(retcl_context *ctx, size_t bt, size_t n_out,
                               size_t n_in, float alpha, retcl_buffer dY,
                               retcl_buffer W, float beta, retcl_buffer dX) {
  return product(ctx, RETCL_GEMM_NN, bt, n_in, n_out, alpha, dY, W, beta, dX);
}

static retcl_buffer grad_at(retcl_buffer grads, retcl_buffer weight,
                            const retcl_model *m) {
  /* weight.offset counts from the parameter vector's start, and so do the
   * gradient's tensors from grads.offset. */
  (void)m;
  return retcl_buf(grads.mem, grads.offset + weight.offset);
}

/* The RMSNorm's backward: dx_part from d_out, its weight's gradient into
 * d_weight. */
static retcl_status rms_backward(retcl_model *m, retcl_buffer x,
                                 retcl_buffer weight, retcl_buffer d_out,
                                 retcl_buffer dx, retcl_buffer d_weight) {
  const retcl_group_norm_desc rms = retcl__model_rms_desc(m, m->tape->bt);
  return retcl__group_norm_backward_enqueue(
      m->ctx, &rms, &m->tape->rms_grad, x, retcl_no_buf(), weight,
      retcl_no_buf(), d_out, dx, retcl_no_buf(), d_weight, retcl_no_buf(),
      m->ctx->workspace[RETCL_WORKSPACE_NORM_GRAD], 0, NULL, NULL);
}

/* One block's backward: on entry G.dx holds dL/d(block output), on exit
 * dL/d(block input); the block's weight gradients are written into grads.
 * S: the block's intermediates in tape memory. */
static retcl_status layer_backward(retcl_model *m, size_t l, retcl_buffer x_in,
                                   size_t S, retcl_buffer grads) {
  retcl_context *ctx = m->ctx;
  retcl__train_tape *t = m->tape;
  const retcl_model_config *c = &m->cfg;
  const layer_weights *w = &m->layers[l];
  const layer_slots *s = &t->ls;
  const grad_slots *g = &t->gs;
  const size_t bt = t->bt, d = c->embed_dim, dv = c->value_embed_dim,
               f = c->ffn_dim, G = t->grads;
  const float alpha = retcl__model_residual_alpha(c);
  const float k_scale = (float)(1.0 / sqrt((double)t->plan.Dk));
  cl_mem mem = t->mem;
#define SAVED(slot) at(mem, S + s->slot)
#define TEMP(slot) at(mem, G + g->slot)
  const retcl_buffer fc1 = w->ffn.fc1_gate,
                     gate = retcl_buf(fc1.mem, fc1.offset + f * d);
  retcl_status st;
  /* FFN: y2 = fc2(act(a) ⊙ gate), a = fc1 n1, gate = W_gate n1. */
  if ((st = input_grad(ctx, bt, d, f, 1.0f, TEMP(dx), w->ffn.fc2, 0.0f,
                       TEMP(dh))) ||
      (st = weight_grad(ctx, d, f, bt, 1.0f, TEMP(dx), SAVED(h),
                        grad_at(grads, w->ffn.fc2, m))) ||
      (st = retcl__glu_backward_enqueue(ctx, bt * f, c->activation, SAVED(a),
                                        SAVED(gate), TEMP(dh), TEMP(da),
                                        TEMP(dgate), 0, NULL, NULL)) ||
      (st = input_grad(ctx, bt, f, d, 1.0f, TEMP(da), fc1, 0.0f, TEMP(dn))) ||
      (st = input_grad(ctx, bt, f, d, 1.0f, TEMP(dgate), gate, 1.0f,
                       TEMP(dn))) ||
      (st = weight_grad(ctx, f, d, bt, 1.0f, TEMP(da), SAVED(n1),
                        grad_at(grads, fc1, m))) ||
      (st = weight_grad(ctx, f, d, bt, 1.0f, TEMP(dgate), SAVED(n1),
                        grad_at(grads, gate, m))) ||
      (st = rms_backward(m, SAVED(x1), w->ffn_norm, TEMP(dn), TEMP(dpart),
                         grad_at(grads, w->ffn_norm, m))) ||
      (st = retcl__residual(ctx, bt * d, alpha, TEMP(dx), TEMP(dpart))))
    return st;
  /* Retention: y1 = out_proj(gate_norm(retention(rot Q, rot K, V), G)). */
  if ((st = input_grad(ctx, bt, d, dv, 1.0f, TEMP(dx), w->msr.out_proj, 0.0f,
                       TEMP(dz))) ||
      (st = weight_grad(ctx, d, dv, bt, 1.0f, TEMP(dx), SAVED(z),
                        grad_at(grads, w->msr.out_proj, m))) ||
      (st = retcl__group_norm_backward_enqueue(
           ctx, &t->plan.norm, &t->gate_grad, SAVED(o), SAVED(g),
           retcl_no_buf(), retcl_no_buf(), TEMP(dz), TEMP(d_o), TEMP(dg),
           retcl_no_buf(), retcl_no_buf(),
           ctx->workspace[RETCL_WORKSPACE_NORM_GRAD], 0, NULL, NULL)) ||
      (st = retcl__retention_grad_enqueue(
           ctx, &t->ret_grad, SAVED(q), SAVED(k), SAVED(v),
           retcl_buf(m->log_decay, 0), retcl_no_buf(), TEMP(d_o),
           retcl_no_buf(), TEMP(dq), TEMP(dk), TEMP(dv), retcl_no_buf(),
           ctx->workspace[RETCL_WORKSPACE_RETENTION_GRAD], 0, NULL, NULL)) ||
      (st = retcl__rotate_backward_enqueue(ctx, m->rot, &t->plan.rot_q,
                                           TEMP(dq), TEMP(dq), NULL, 0,
                                           NULL, NULL)) ||
      (st = retcl__rotate_backward_enqueue(ctx, m->rot, &t->plan.rot_k,
                                           TEMP(dk), TEMP(dk), NULL, 0,
                                           NULL, NULL)) ||
      (st = input_grad(ctx, bt, d, d, 1.0f, TEMP(dq), w->msr.q_proj, 0.0f,
                       TEMP(dn))) ||
      (st = input_grad(ctx, bt, d, d, k_scale, TEMP(dk), w->msr.k_proj, 1.0f,
                       TEMP(dn))) ||
      (st = input_grad(ctx, bt, dv, d, 1.0f, TEMP(dv), w->msr.v_proj, 1.0f,
                       TEMP(dn))) ||
      (st = input_grad(ctx, bt, dv, d, 1.0f, TEMP(dg), w->msr.g_proj, 1.0f,
                       TEMP(dn))) ||
      (st = weight_grad(ctx, d, d, bt, 1.0f, TEMP(dq), SAVED(n0),
                        grad_at(grads, w->msr.q_proj, m))) ||
      (st = weight_grad(ctx, d, d, bt, k_scale, TEMP(dk), SAVED(n0),
                        grad_at(grads, w->msr.k_proj, m))) ||
      (st = weight_grad(ctx, dv, d, bt, 1.0f, TEMP(dv), SAVED(n0),
                        grad_at(grads, w->msr.v_proj, m))) ||
      (st = weight_grad(ctx, dv, d, bt, 1.0f, TEMP(dg), SAVED(n0),
                        grad_at(grads, w->msr.g_proj, m))) ||
      (st = rms_backward(m, x_in, w->ret_norm, TEMP(dn), TEMP(dpart),
                         grad_at(grads, w->ret_norm, m))))
    return st;
#undef SAVED
#undef TEMP
  return retcl__residual(ctx, bt * d, alpha, at(mem, G + g->dx),
                         at(mem, G + g->dpart));
}

/* ---- the two calls -------------------------------------------------------- */

/* The tape's layout for B x T tokens (offsets in floats). */
static size_t plan_tape(const retcl_model *m, retcl__train_tape *t) {
  const retcl_model_config *c = &m->cfg;
  const size_t bt = t->bt, d = c->embed_dim, L = c->layers;
  size_t off = 0;
  t->ls = layer_slots_for(c, bt);
  t->gs = grad_slots_for(c, bt);
  t->xs = off, off += (L + 1) * bt * d;
  t->e = off, off += m->emb_norm.mem ? bt * d : 0;
  t->hL = off, off += bt * d;
  t->y = off, off += bt * d;
  t->loss = off, off += 1;
  t->logits = off, off += bt * c->vocab_size;
  t->layers = off, off += (t->opt.recompute ? 1 : L) * t->ls.total;
  t->grads = off, off += t->gs.total;
  return off;
}

static retcl_status check_options(retcl_context *ctx,
                                  const retcl_train_options *o) {
  if (!o) return RETCL_SUCCESS;
  if (o->algorithm != RETCL_ALGO_PARALLEL &&
      o->algorithm != RETCL_ALGO_RECURRENT &&
      o->algorithm != RETCL_ALGO_CHUNKWISE)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: options->algorithm = %d is not a retcl_algorithm",
                       OP_TRAIN, (int)o->algorithm);
  return RETCL_SUCCESS;
}

/* Training needs fp32 weights (gradients and updates of 16-bit storage
 * are not supported). */
static retcl_status check_fp32_weights(retcl_model *m, const char *op) {
  if (retcl__model_is_split(m))
    return retcl__fail(m->ctx, RETCL_ERROR_UNSUPPORTED,
                       "%s: the model is split across processes "
                       "(retcl_model_load_split); training runs on a whole "
                       "model",
                       op);
  if (m->wtype == RETCL_DTYPE_F32) return RETCL_SUCCESS;
  return retcl__fail(m->ctx, RETCL_ERROR_UNSUPPORTED,
                     "%s: the model's weights are stored %s; training needs "
                     "fp32 weights: load it with RETCL_STORAGE_F32 "
                     "(retcl_model_load)",
                     op, m->wtype == RETCL_DTYPE_F16 ? "f16" : "bf16");
}

retcl_status retcl_model_forward_train(retcl_model *m, const int32_t *tokens,
                                       size_t B, size_t T,
                                       const retcl_train_options *options,
                                       float *loss) {
  if (!m) return RETCL_ERROR_INVALID_ARGUMENT;
  retcl_context *ctx = m->ctx;
  retcl__clear_error(ctx);
  retcl_train_options opt;
  retcl_train_options_default(&opt);
  if (options) opt = *options;
  retcl_status st = check_fp32_weights(m, OP_TRAIN);
  if (st) return st;
  if ((st = check_options(ctx, options))) return st;
  if (!loss)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: loss is NULL",
                       OP_TRAIN);
  if ((st = retcl__model_check_forward(m, OP_TRAIN, NULL, tokens, B, T,
                                       opt.algorithm, opt.chunk_size)))
    return st;
  if (T < 2)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: tokens_len = %zu: the loss predicts token i + 1 "
                       "from tokens 0 .. i, so it needs at least 2",
                       OP_TRAIN, T);
  const retcl_model_config *c = &m->cfg;
  const size_t d = c->embed_dim, V = c->vocab_size, f = c->ffn_dim,
               dv = c->value_embed_dim, bt = B * T;
  /* Plan everything, reserve every buffer, then enqueue. */
  retcl__train_tape next = {0};
  next.B = B, next.T = T, next.bt = bt, next.opt = opt;
  const retcl_msr_desc md = {B, T, d, dv, c->heads, opt.algorithm,
                             RETCL_FORM_TORCHSCALE,
                             opt.chunk_size ? opt.chunk_size : c->chunk_size,
                             0, c->layernorm_eps, {0, NULL, NULL, NULL}};
  const float emb_scale = retcl__model_embed_scale(c);
  const retcl_group_norm_desc rms = retcl__model_rms_desc(m, bt);
  if ((st = retcl__msr_plan(ctx, OP_TRAIN, &md, m->rot, 0, 0, &next.plan)) ||
      (st = retcl__group_norm_backward_plan(ctx, OP_TRAIN, &rms, 1, 0,
                                            &next.rms_grad)) ||
      (st = retcl__group_norm_backward_plan(ctx, OP_TRAIN, &next.plan.norm, 0,
                                            0, &next.gate_grad)) ||
      (st = retcl__retention_grad_plan(ctx, OP_TRAIN, &next.plan.retention.d,
                                       0, 0, 0, &next.ret_grad)) ||
      (st = retcl__embedding_backward_check(ctx, OP_TRAIN, bt, tokens, V, d,
                                            emb_scale)))
    return st;
  const size_t floats = plan_tape(m, &next);
  if (floats > RETCL_MAX_INDEX)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: %zu tokens need %zu floats of saved activations; "
                       "the limit is %zu: train on fewer tokens per step or "
                       "set options->recompute",
                       OP_TRAIN, bt, floats, (size_t)RETCL_MAX_INDEX);
  int32_t *host_tokens = malloc(bt * sizeof *host_tokens),
          *targets = malloc(bt * sizeof *targets);
  if (!host_tokens || !targets) {
    free(host_tokens), free(targets);
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host allocation",
                       OP_TRAIN);
  }
  memcpy(host_tokens, tokens, bt * sizeof *host_tokens);
  /* Row (b, t) predicts token t + 1 of its sequence; the last row of each
   * sequence predicts nothing. */
  const int32_t none = opt.ignore_index >= 0 ? opt.ignore_index : -1;
  for (size_t b = 0; b < B; ++b)
    for (size_t i = 0; i < T; ++i)
      targets[b * T + i] = i + 1 < T ? tokens[b * T + i + 1] : none;
  size_t counted = 0;
  if ((st = retcl__cross_entropy_check(ctx, OP_TRAIN, bt, V, targets, none,
                                       &counted))) {
    free(host_tokens), free(targets);
    return st;
  }
  const size_t widest_out = V > f ? (V > d ? V : d) : (f > d ? f : d);
  const size_t widest_in = (V > bt ? V : bt) > widest_out
                               ? (V > bt ? V : bt)
                               : widest_out;
  /* Every workspace of the forward and of the backward, now. */
  const size_t norm_ws = next.rms_grad.workspace_floats >
                                 next.gate_grad.workspace_floats
                             ? next.rms_grad.workspace_floats
                             : next.gate_grad.workspace_floats;
  cl_mem scratch = NULL, unused, loss_ws = NULL;
  if ((st = retcl__gemm_reserve(ctx, widest_in, widest_in, widest_in)) ||
      (st = retcl__linear_reserve(ctx, bt, widest_out, widest_out)) ||
      (next.plan.retention.scratch &&
       (st = retcl__workspace(ctx, RETCL_WORKSPACE_RETENTION,
                              next.plan.retention.scratch * sizeof(float),
                              &scratch))) ||
      (st = retcl__workspace(ctx, RETCL_WORKSPACE_NORM_GRAD,
                             norm_ws * sizeof(float), &unused)) ||
      (st = retcl__workspace(ctx, RETCL_WORKSPACE_RETENTION_GRAD,
                             next.ret_grad.scratch * sizeof(float), &unused)) ||
      (st = retcl__cross_entropy_reserve(ctx, bt, &loss_ws))) {
    free(host_tokens), free(targets);
    return st;
  }
  retcl__train_tape *t = m->tape;
  if (!t || t->bytes < floats * sizeof(float)) {
    cl_int err = CL_SUCCESS;
    cl_mem mem = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE,
                                floats * sizeof(float), NULL, &err);
    if (!mem) {
      free(host_tokens), free(targets);
      return retcl__cl_fail(ctx, "retcl_model_forward_train: clCreateBuffer",
                            err);
    }
    retcl__train_tape_free(m);
    if (!(t = m->tape = calloc(1, sizeof *t))) {
      clReleaseMemObject(mem);
      free(host_tokens), free(targets);
      return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host allocation",
                         OP_TRAIN);
    }
    t->mem = mem;
    t->bytes = floats * sizeof(float);
  }
  next.mem = t->mem, next.bytes = t->bytes;
  free(t->tokens);
  *t = next;
  t->tokens = host_tokens;
  cl_mem mem = t->mem;

  /* Enqueue: embedding, the blocks (keeping their inputs and
   * intermediates), the final norm, the logits and the loss, whose
   * gradient replaces the logits. */
  cl_int err = CL_SUCCESS;
  cl_mem tok = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                              bt * sizeof(int32_t), host_tokens, &err);
  cl_mem tgt = tok ? clCreateBuffer(ctx->cl_ctx,
                                    CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                    bt * sizeof(int32_t), targets, &err)
                   : NULL;
  free(targets);
  if (!tgt) {
    if (tok) clReleaseMemObject(tok);
    t->ready = 0;
    return retcl__cl_fail(ctx, "clCreateBuffer(tokens)", err);
  }
  const retcl_buffer x0 = at(mem, t->xs);
  st = retcl__embed(ctx, tok, bt, m->embed, d, emb_scale,
                    m->emb_norm.mem ? at(mem, t->e) : x0);
  clReleaseMemObject(tok);
  if (!st && m->emb_norm.mem)
    st = retcl__group_norm_enqueue(ctx, &rms, at(mem, t->e), retcl_no_buf(),
                                   m->emb_norm, retcl_no_buf(), x0, 0, NULL,
                                   NULL);
  for (size_t l = 0; !st && l < c->layers; ++l)
    st = layer_forward(m, l, at(mem, t->xs + l * bt * d),
                       t->layers + (opt.recompute ? 0 : l) * t->ls.total,
                       at(mem, t->xs + (l + 1) * bt * d), scratch);
  if (!st)
    st = retcl__group_norm_enqueue(ctx, &rms, at(mem, t->xs + c->layers * bt * d),
                                   retcl_no_buf(), m->final_norm,
                                   retcl_no_buf(), at(mem, t->hL), 0, NULL,
                                   NULL);
  if (!st)
    st = retcl__linear_enqueue(ctx, bt, V, d, 1.0f, at(mem, t->hL),
                               m->out_proj, 0.0f, at(mem, t->logits));
  if (!st)
    st = retcl__cross_entropy_enqueue(ctx, bt, V, at(mem, t->logits), tgt, 0,
                                      none, counted, at(mem, t->loss),
                                      at(mem, t->logits), loss_ws);
  clReleaseMemObject(tgt); /* alive until the launch that reads it ran */
  if (!st) {
    err = clEnqueueReadBuffer(ctx->queue, mem, CL_TRUE, t->loss * sizeof(float),
                              sizeof(float), loss, 0, NULL, NULL);
    if (err != CL_SUCCESS) st = retcl__cl_fail(ctx, "clEnqueueReadBuffer(loss)", err);
  }
  t->ready = !st;
  return st;
}

retcl_status retcl_model_backward(retcl_model *m, retcl_buffer grads) {
  if (!m) return RETCL_ERROR_INVALID_ARGUMENT;
  retcl_context *ctx = m->ctx;
  retcl__clear_error(ctx);
  retcl_status st16 = check_fp32_weights(m, OP_BACK);
  if (st16) return st16;
  retcl__train_tape *t = m->tape;
  if (!t || !t->ready)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: no retcl_model_forward_train to differentiate "
                       "(run one first)",
                       OP_BACK);
  const size_t total = m->layout.total;
  retcl_status st = retcl__check_buffer(ctx, OP_BACK, "grads", grads, total);
  if (st) return st;
  if (retcl__overlaps(grads, total, retcl_model_params(m), total))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: grads overlaps the model's parameters", OP_BACK);
  const retcl_model_config *c = &m->cfg;
  const size_t d = c->embed_dim, V = c->vocab_size, bt = t->bt,
               L = c->layers;
  cl_mem mem = t->mem, scratch = NULL;
  if (t->opt.recompute && t->plan.retention.scratch &&
      (st = retcl__workspace(ctx, RETCL_WORKSPACE_RETENTION,
                             t->plan.retention.scratch * sizeof(float),
                             &scratch)))
    return st;
  /* The embedding gradient's index of tokens (a device buffer) is the one
   * thing the backward allocates: made before anything is enqueued. */
  cl_mem index = NULL;
  cl_uint index_rows = 0;
  if ((st = retcl__embedding_index(ctx, OP_BACK, bt, t->tokens, V,
                                   c->share_embed, &index, &index_rows)))
    return st;
  const grad_slots *g = &t->gs;
  const retcl_buffer dx = at(mem, t->grads + g->dx),
                     dn = at(mem, t->grads + g->dn),
                     dpart = at(mem, t->grads + g->dpart),
                     dlogits = at(mem, t->logits), hL = at(mem, t->hL);
  /* logits = hL out_projᵀ: the output projection's gradient (into the
   * embedding's place when tied; the embedding's own use adds to it at
   * the end) and hL's. */
  if ((st = product(ctx, RETCL_GEMM_NN, bt, d, V, 1.0f, dlogits, m->out_proj,
                    0.0f, dn)) ||
      (st = product(ctx, RETCL_GEMM_TN, V, d, bt, 1.0f, dlogits, hL, 0.0f,
                    grad_at(grads, m->out_proj, m))) ||
      (st = rms_backward(m, at(mem, t->xs + L * bt * d), m->final_norm, dn,
                         dx, grad_at(grads, m->final_norm, m))))
    goto done;
  for (size_t l = L; l-- > 0;) {
    const retcl_buffer x_in = at(mem, t->xs + l * bt * d);
    const size_t S = t->layers + (t->opt.recompute ? 0 : l) * t->ls.total;
    if (t->opt.recompute &&
        (st = layer_forward(m, l, x_in, S, dpart, scratch)))
      goto done;
    if ((st = layer_backward(m, l, x_in, S, grads))) goto done;
  }
  retcl_buffer d_embedded = dx;
  if (m->emb_norm.mem) {
    if ((st = rms_backward(m, at(mem, t->e), m->emb_norm, dx, dpart,
                           grad_at(grads, m->emb_norm, m))))
      goto done;
    d_embedded = dpart;
  }
  const float emb_scale = retcl__model_embed_scale(c);
  st = retcl__embedding_backward_enqueue(ctx, index, index_rows, d, emb_scale,
                                         d_embedded, c->share_embed,
                                         grad_at(grads, m->embed, m), 0, NULL,
                                         NULL);
done:
  clReleaseMemObject(index); /* alive until the launch that reads it ran */
  return st;
}
