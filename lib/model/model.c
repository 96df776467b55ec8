/* model.c - a RetNet decoder on the device (docs/design.md §1.6): loading
 * from a checkpoint, forward over token sequences, and decode states.
 * Loading builds every program the model runs; a forward checks its
 * arguments and reserves every workspace before it enqueues anything, then
 * runs the layers' enqueue steps (the model's own buffers are checked once,
 * when they are made). */
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/ffn.h"
#include "model/model.h"
#include "model/msr.h"
#include "ops/elementwise.h"
#include "ops/group_norm.h"
#include "ops/limits.h"
#include "ops/linear.h"
#include "runtime/context.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *OP_LOAD = "retcl_model_load";
static const char *OP_FWD = "retcl_model_forward";

void retcl_model_destroy(retcl_model *m) {
  if (!m) return;
  if (m->params) clReleaseMemObject(m->params);
  if (m->log_decay) clReleaseMemObject(m->log_decay);
  free(m->layers);
  free(m->theta);
  free(m->log_decay_host);
  retcl__train_tape_free(m);
  retcl__weight_layout_free(&m->layout);
  retcl_rotation_destroy(m->rot);
  free(m);
}

/* Elements of the parameter vector per upload when the host values are
 * narrowed to 16 bits first (a staging buffer of this many). */
#define NARROW_CHUNK 65536

/* n host floats into the parameter vector at `offset` elements, in the
 * model's storage type: fp32 as they are, 16-bit rounded to nearest even
 * (the conversion retcl_model_save uses; widening a 16-bit file and
 * narrowing it back to its own type gives its bits back). Blocking: the
 * host copies are freed right after loading. */
static retcl_status put(retcl_model *m, const char *what, const float *host,
                        size_t offset, size_t n) {
  cl_int err = CL_SUCCESS;
  if (m->wtype == RETCL_DTYPE_F32) {
    err = clEnqueueWriteBuffer(m->ctx->queue, m->params, CL_TRUE,
                               offset * sizeof(float), n * sizeof(float), host,
                               0, NULL, NULL);
  } else {
    uint16_t *stage = malloc((n < NARROW_CHUNK ? n : NARROW_CHUNK) *
                             sizeof *stage);
    if (!stage)
      return retcl__fail(m->ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host",
                         OP_LOAD);
    uint16_t (*narrow)(float) = m->wtype == RETCL_DTYPE_F16
                                    ? retcl__f32_to_f16
                                    : retcl__f32_to_bf16;
    for (size_t done = 0; done < n && err == CL_SUCCESS;) {
      const size_t k = n - done < NARROW_CHUNK ? n - done : NARROW_CHUNK;
      for (size_t i = 0; i < k; ++i) stage[i] = narrow(host[done + i]);
      err = clEnqueueWriteBuffer(m->ctx->queue, m->params, CL_TRUE,
                                 (offset + done) * sizeof *stage,
                                 k * sizeof *stage, stage, 0, NULL, NULL);
      done += k;
    }
    free(stage);
  }
  if (err == CL_SUCCESS) return RETCL_SUCCESS;
  char call[160];
  snprintf(call, sizeof call, "%s: uploading %s", OP_LOAD, what);
  return retcl__cl_fail(m->ctx, call, err);
}

/* One layer's tensors: all of them, or (a heads-split model) the part the
 * checkpoint reader read: its heads' rows of q, k, v, g and columns of
 * out_proj, its FFN units' rows of fc1 and gate and columns of fc2. */
static retcl_status put_layer(retcl_model *m, size_t l,
                              const retcl__layer_host *h) {
  const retcl_model_config *c = &m->cfg;
  const size_t d = c->embed_dim;
  const size_t nq = m->heads * (d / c->heads),
               nv = m->heads * (c->value_embed_dim / c->heads), nf = m->ffn;
  const retcl__layer_offsets *o = &m->layout.layers[l];
  retcl_status st;
  if ((st = put(m, "q_proj", h->wq, o->q, nq * d)) ||
      (st = put(m, "k_proj", h->wk, o->k, nq * d)) ||
      (st = put(m, "v_proj", h->wv, o->v, nv * d)) ||
      (st = put(m, "g_proj", h->wg, o->g, nv * d)) ||
      (st = put(m, "out_proj", h->wo, o->o, d * nv)) ||
      (st = put(m, "retention_layer_norm", h->ret_norm, o->ret_norm, d)) ||
      (st = put(m, "fc1", h->fc1, o->fc1, nf * d)) ||
      (st = put(m, "ffn.gate", h->gate, o->gate, nf * d)) ||
      (st = put(m, "fc2", h->fc2, o->fc2, d * nf)) ||
      (st = put(m, "final_layer_norm", h->ffn_norm, o->ffn_norm, d)))
    return st;
  layer_weights *w = &m->layers[l];
  const retcl_dtype t = m->wtype;
  w->msr.q_proj = retcl_buf_typed(m->params, o->q, t);
  w->msr.k_proj = retcl_buf_typed(m->params, o->k, t);
  w->msr.v_proj = retcl_buf_typed(m->params, o->v, t);
  w->msr.g_proj = retcl_buf_typed(m->params, o->g, t);
  w->msr.out_proj = retcl_buf_typed(m->params, o->o, t);
  w->ret_norm = retcl_buf_typed(m->params, o->ret_norm, t);
  w->ffn_norm = retcl_buf_typed(m->params, o->ffn_norm, t);
  w->ffn.fc1_gate = retcl_buf_typed(m->params, o->fc1, t);
  w->ffn.fc2 = retcl_buf_typed(m->params, o->fc2, t);
  return RETCL_SUCCESS;
}

/* Device model from host weights; rotation angles and decays from the
 * checkpoint's buffers when it has them (docs/design.md §1.6), else the formulas. */
static retcl_status build_model(retcl_model *m, const retcl__checkpoint *ck) {
  const retcl_model_config *c = &m->cfg;
  const size_t d = c->embed_dim, V = c->vocab_size, H = c->heads;
  retcl_status st;
  if ((st = retcl__weight_layout_make_part(m->ctx, c, m->heads, m->ffn,
                                            &m->layout)))
    return st;
  const retcl__weight_layout *o = &m->layout;
  if (o->total > RETCL_MAX_INDEX)
    return retcl__fail(m->ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: the model has %zu weights; the kernels index at "
                       "most %zu elements in one buffer",
                       OP_LOAD, o->total, (size_t)RETCL_MAX_INDEX);
  cl_int err = CL_SUCCESS;
  /* Read-write: training updates the weights in place. */
  const size_t esize = retcl__dtype_size(m->wtype);
  m->params = clCreateBuffer(m->ctx->cl_ctx, CL_MEM_READ_WRITE,
                             o->total * esize, NULL, &err);
  if (!m->params)
    return retcl__cl_fail(m->ctx, "retcl_model_load: clCreateBuffer(weights)",
                          err);
  m->weight_bytes = o->total * esize;
  if ((st = put(m, "embed_tokens", ck->embed, o->embed, V * d)) ||
      (st = put(m, "layer_norm", ck->final_norm, o->final_norm, d)))
    return st;
  if (o->emb_norm != RETCL_NO_TENSOR &&
      (st = put(m, "layernorm_embedding", ck->emb_norm, o->emb_norm, d)))
    return st;
  if (o->out_proj != RETCL_NO_TENSOR &&
      (st = put(m, "output_projection", ck->out_proj, o->out_proj, V * d)))
    return st;
  const retcl_dtype t = m->wtype;
  m->embed = retcl_buf_typed(m->params, o->embed, t);
  m->final_norm = retcl_buf_typed(m->params, o->final_norm, t);
  m->emb_norm = o->emb_norm != RETCL_NO_TENSOR
                    ? retcl_buf_typed(m->params, o->emb_norm, t)
                    : retcl_no_buf();
  m->out_proj = o->out_proj != RETCL_NO_TENSOR
                    ? retcl_buf_typed(m->params, o->out_proj, t)
                    : m->embed;
  /* Host copies of the decays and angles stay with the model, so that
   * retcl_model_save writes what this model runs. */
  const size_t Dk = d / H;
  float *lg = m->log_decay_host = malloc(H * sizeof *lg);
  float *theta = m->theta = malloc(Dk / 2 * sizeof *theta);
  if (!lg || !theta)
    return retcl__fail(m->ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host", OP_LOAD);
  if (ck->decay)
    memcpy(lg, ck->decay, H * sizeof *lg);
  else
    retcl_default_log_decay(H, lg);
  /* The device holds the decays of the model's heads (of a split model's
   * part); the host copy all of them. */
  m->log_decay = clCreateBuffer(m->ctx->cl_ctx,
                                CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                m->heads * sizeof(float), lg + m->head0, &err);
  if (!m->log_decay)
    return retcl__cl_fail(m->ctx, "retcl_model_load: clCreateBuffer(decay)",
                          err);
  for (size_t i = 0; i < Dk / 2; ++i)
    theta[i] = ck->angle ? ck->angle[2 * i]
               : Dk / 2 < 2
                   ? 1.0f
                   : (float)pow(10000.0, -(double)i / (double)(Dk / 2 - 1));
  /* Without angles in the file the plan makes its own (the same formula,
   * in its fixed point). */
  st = retcl_rotation_create(m->ctx, Dk, ck->angle ? theta : NULL, 0.0f,
                             &m->rot);
  if (st) return st;
  m->layers = calloc(c->layers, sizeof *m->layers);
  if (!m->layers) return retcl__fail(m->ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host", OP_LOAD);
  for (size_t l = 0; l < c->layers; ++l)
    if ((st = put_layer(m, l, &ck->layers[l]))) return st;
  return RETCL_SUCCESS;
}

retcl_status retcl_model_load(retcl_context *ctx, const char *dir,
                              retcl_model **out) {
  return retcl_model_load_as(ctx, dir, RETCL_STORAGE_F32, out);
}

retcl_status retcl_model_load_as(retcl_context *ctx, const char *dir,
                                 retcl_storage storage, retcl_model **out) {
  return retcl__model_load(ctx, dir, storage, NULL, out);
}

retcl_status retcl__model_load(retcl_context *ctx, const char *dir,
                              retcl_storage storage,
                              const retcl_model_split *split,
                              retcl_model **out) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if (!dir || !out)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: %s is NULL",
                       OP_LOAD, !dir ? "dir" : "out");
  *out = NULL;
  if (storage != RETCL_STORAGE_F32 && storage != RETCL_STORAGE_F16 &&
      storage != RETCL_STORAGE_BF16 && storage != RETCL_STORAGE_KEEP)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: storage = %d is not a retcl_storage", OP_LOAD,
                       (int)storage);
  /* A heads-split process reads its part of each layer only: the config
   * first, to resolve the part. */
  retcl_model_split part;
  retcl__ckpt_part window = {0, 0, 0, 0};
  if (split) {
    retcl_model_config cfg;
    part = *split;
    if ((st = retcl__checkpoint_read_config(ctx, dir, &cfg)) ||
        (st = retcl__model_split_resolve(ctx, &cfg, &part)))
      return st;
    split = &part;
    if (!part.sequence)
      window = (retcl__ckpt_part){part.head_begin, part.head_count,
                                  part.ffn_begin, part.ffn_count};
  }
  retcl__checkpoint ck;
  memset(&ck, 0, sizeof ck);
  if ((st = retcl__checkpoint_read_part(ctx, dir, &window, &ck))) return st;
  /* KEEP: the file's type (its embedding's; a file mixing types has every
   * tensor converted to that one). */
  const retcl_dtype wtype = storage == RETCL_STORAGE_KEEP ? ck.file_dtype
                            : storage == RETCL_STORAGE_F16 ? RETCL_DTYPE_F16
                            : storage == RETCL_STORAGE_BF16 ? RETCL_DTYPE_BF16
                                                            : RETCL_DTYPE_F32;
  /* Every program the model runs, now, with the variants for 16-bit
   * weights: a forward can then not fail half-way from a build (a bad
   * RETCL_PARAMS value fails here, with the kernel's build log). */
  if ((st = retcl__prepare_typed(ctx, RETCL_ALL_FAMILIES, wtype))) {
    retcl__checkpoint_free(&ck);
    return st;
  }
  retcl_model *m = calloc(1, sizeof *m);
  if (!m) {
    retcl__checkpoint_free(&ck);
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host", OP_LOAD);
  }
  m->ctx = ctx;
  m->cfg = ck.cfg;
  m->wtype = wtype;
  m->heads = ck.cfg.heads;
  m->ffn = ck.cfg.ffn_dim;
  if (split) {
    m->split = *split;
    if (!split->sequence) {
      m->head0 = split->head_begin;
      m->heads = split->head_count;
      m->ffn0 = split->ffn_begin;
      m->ffn = split->ffn_count;
    }
  }
  st = build_model(m, &ck);
  retcl__checkpoint_free(&ck); /* host copies go as soon as uploaded */
  if (st) {
    retcl_model_destroy(m);
    return st;
  }
  *out = m;
  return RETCL_SUCCESS;
}

retcl_status retcl_model_get_config(const retcl_model *model,
                                    retcl_model_config *cfg) {
  if (!model || !cfg) return RETCL_ERROR_INVALID_ARGUMENT;
  *cfg = model->cfg;
  return RETCL_SUCCESS;
}

size_t retcl_model_weight_bytes(const retcl_model *model) {
  return model ? model->weight_bytes : 0;
}

retcl_dtype retcl_model_weight_type(const retcl_model *model) {
  return model ? model->wtype : RETCL_DTYPE_F32;
}

/* ---- forward ------------------------------------------------------------ */

retcl_status retcl__model_check_forward(retcl_model *m, const char *op,
                                        retcl_decode_state *s,
                                        const int32_t *tokens, size_t B,
                                        size_t T, retcl_algorithm algo,
                                        size_t chunk) {
  retcl_context *ctx = m->ctx;
  retcl_status st;
  if (!tokens)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: tokens is NULL",
                       op);
  if ((st = retcl__check_dim(ctx, op, "batch", B, 1, 1 << 20)) ||
      (st = retcl__check_dim(ctx, op, "tokens_len", T, 1, 1 << 24)))
    return st;
  if (algo != RETCL_ALGO_PARALLEL && algo != RETCL_ALGO_RECURRENT &&
      algo != RETCL_ALGO_CHUNKWISE)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: algorithm = %d is not a retcl_algorithm", op,
                       (int)algo);
  if (algo == RETCL_ALGO_CHUNKWISE &&
      (st = retcl__check_dim(ctx, op, "chunk_size", chunk, 0,
                             RETCL_MAX_CHUNK)))
    return st;
  for (size_t i = 0; i < B * T; ++i)
    if (tokens[i] < 0 || (size_t)tokens[i] >= m->cfg.vocab_size)
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: tokens[%zu] = %d is outside the vocabulary [0, "
                         "%zu)",
                         op, i, (int)tokens[i], m->cfg.vocab_size);
  if (s) {
    if (s->model != m)
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: state belongs to another model", op);
    if (s->batch != B)
      return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: state holds %zu sequences but batch is %zu",
                         op, s->batch, B);
    if (s->position > 0 && algo != RETCL_ALGO_RECURRENT)
      return retcl__fail(ctx, RETCL_ERROR_UNSUPPORTED,
                         "%s: continuing a state at position %zu needs "
                         "RETCL_ALGO_RECURRENT (torchscale's parallel and "
                         "chunkwise forms start from an empty state)",
                         op, s->position);
  }
  return RETCL_SUCCESS;
}

float retcl__model_residual_alpha(const retcl_model_config *c) {
  return c->deepnorm ? (float)pow(2.0 * c->layers, 0.25) : 1.0f;
}

float retcl__model_embed_scale(const retcl_model_config *c) {
  return c->no_scale_embedding ? 1.0f : (float)sqrt((double)c->embed_dim);
}

/* The RMSNorm (with weight) of `rows` rows of the model width. */
retcl_group_norm_desc retcl__model_rms_desc(const retcl_model *m,
                                            size_t rows) {
  return (retcl_group_norm_desc){1, rows, 1, m->cfg.embed_dim,
                                 RETCL_LAYOUT_TOKEN_MAJOR, RETCL_NORM_RMS,
                                 RETCL_GATE_NONE, m->cfg.layernorm_eps};
}

/* y = RMSNorm(x) * weight over rows of the model width (§1.6). */
static retcl_status rms_norm(retcl_model *m, const retcl_group_norm_desc *d,
                             retcl_buffer x, retcl_buffer weight,
                             retcl_buffer y) {
  return retcl__group_norm_enqueue(m->ctx, d, x, retcl_no_buf(), weight,
                                   retcl_no_buf(), y, 0, NULL, NULL);
}

/* Offsets (in floats) of a forward's activations in the model workspace. */
typedef struct model_layout {
  size_t x, h, y, ffn, last, logits, total;
} model_layout;

static model_layout layout_for(const retcl_model_config *c, size_t rows,
                               size_t last_rows, int last_only) {
  const size_t d = c->embed_dim;
  model_layout o;
  size_t off = 0;
  o.x = off; off += rows * d;
  o.h = off; off += rows * d;
  o.y = off; off += rows * d;
  o.ffn = off; off += retcl__ffn_workspace(rows, c->ffn_dim);
  o.last = off; off += last_only ? last_rows * d : 0;
  o.logits = off; off += (last_only ? last_rows : rows) * c->vocab_size;
  o.total = off;
  return o;
}

/* The row of sequence i's last token. */
static size_t last_row(const retcl__forward_call *a, size_t i) {
  return a->packing.count ? a->packing.offsets[i + 1] - 1
                          : i * a->T + a->T - 1;
}

/* The sequences of a call: B rows of T tokens, or the packed ones. */
static size_t sequences(const retcl__forward_call *a) {
  return a->packing.count ? a->packing.count : a->B;
}

/* Every forward of the model (rectangular batches with a decode state,
 * packed batches with a state pool): its arguments already checked. */
retcl_status retcl__model_run(retcl_model *m, const retcl__forward_call *a) {
  retcl_context *ctx = m->ctx;
  retcl_status st;
  const retcl_model_config *c = &m->cfg;
  const size_t d = c->embed_dim, V = c->vocab_size;
  const size_t bt = a->B * a->T, n_seq = sequences(a);
  const float alpha = retcl__model_residual_alpha(c);

  /* Everything that can fail is checked, planned and reserved here,
   * before the first enqueue: a failed call leaves the states (buffers and
   * positions) as they were. chunk_size 0 is the checkpoint's
   * recurrent_chunk_size. */
  /* A heads-split model's layers hold m->heads heads and m->ffn FFN units
   * (all of them otherwise); x and y stay d wide. A sequence-split
   * process's positions continue those of the processes before it (agreed
   * below; the plan's rotation is shifted then). */
  const size_t Dk = d / c->heads, Dv = c->value_embed_dim / c->heads;
  const retcl_msr_desc md = {a->B, a->T, m->heads * Dk, m->heads * Dv,
                             m->heads, a->algo, RETCL_FORM_TORCHSCALE,
                             a->chunk ? a->chunk : c->chunk_size, a->pos0,
                             c->layernorm_eps, a->packing};
  retcl_msr_plan plan;
  const retcl_group_norm_desc norm = retcl__model_rms_desc(m, bt);
  const model_layout o = layout_for(c, bt, n_seq, a->last_only);
  /* Every projection of the call is at most bt rows of the widest output
   * and inner length (the packed GEMM's workspace grows with each). */
  const size_t f = m->ffn, dv = md.value_embed_dim;
  const size_t inner = d > f ? (d > dv ? d : dv) : (f > dv ? f : dv),
               widest = inner > V ? inner : V;
  cl_mem ws = NULL, layer = NULL, scratch = NULL, table = NULL;
  st = retcl__msr_plan(ctx, OP_FWD, &md, m->rot, a->state_in,
                       a->states != NULL, &plan);
  if (!st) st = retcl__group_norm_check(ctx, OP_FWD, &norm);
  if (!st && o.total > RETCL_MAX_INDEX)
    st = retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                     "%s: %zu tokens need %zu floats of activations; the "
                     "limit is %zu: run fewer tokens per call",
                     OP_FWD, bt, o.total, RETCL_MAX_INDEX);
  if (!st) {
    plan.width = d;
    if (m->split.sequence) plan.split = &m->split;
    st = retcl__linear_reserve(ctx, bt, widest, inner);
  }
  if (!st)
    st = retcl__workspace(ctx, RETCL_WORKSPACE_MODEL, o.total * sizeof(float),
                          &ws);
  if (!st)
    st = retcl__workspace(ctx, RETCL_WORKSPACE_LAYER,
                          plan.layer_floats * sizeof(float), &layer);
  if (!st && plan.retention.scratch)
    st = retcl__workspace(ctx, RETCL_WORKSPACE_RETENTION,
                          plan.retention.scratch * sizeof(float), &scratch);
  /* The last point where a process can fail alone: from here on, a split
   * model's processes exchange data every layer. */
  size_t offset = 0, total = 0;
  if ((st = retcl__model_agree(m, OP_FWD, st, a->T,
                               retcl__forward_digest(m, a), &offset, &total)))
    return st;
  plan.rot_q.pos0 += offset;
  plan.rot_k.pos0 += offset;
  if (a->total) *a->total = total;
  const retcl_buffer x = retcl_buf(ws, o.x), h = retcl_buf(ws, o.h),
                     y = retcl_buf(ws, o.y), ffn = retcl_buf(ws, o.ffn),
                     lo = retcl_buf(ws, o.logits);
  /* The token ids: copied at creation, so the caller's array is free to
   * change once this returns. */
  cl_int err = CL_SUCCESS;
  cl_mem tok = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                              bt * sizeof(int32_t), (void *)a->tokens, &err);
  if (!tok) st = retcl__cl_fail(ctx, "clCreateBuffer(tokens)", err);
  if (!st) st = retcl__msr_table(ctx, OP_FWD, &plan, &table);

  const float emb_scale = retcl__model_embed_scale(c);
  if (!st) st = retcl__embed(ctx, tok, bt, m->embed, d, emb_scale, x);
  if (tok) clReleaseMemObject(tok); /* stays alive until the kernel has run */
  if (!st && m->emb_norm.mem) st = rms_norm(m, &norm, x, m->emb_norm, x);

  /* A split model's processes meet in every layer (a sequence split's
   * retention, a heads split's two sums): one that has failed still takes
   * part, computing nothing, so that every process returns the failure. */
  const int split_seq = m->split.sequence && retcl__model_is_split(m),
            split_heads = retcl__model_heads_split(m);
  for (size_t l = 0; l < c->layers && (!st || split_seq || split_heads);
       ++l) {
    const layer_weights *w = &m->layers[l];
    retcl_buffer s_in = retcl_no_buf(), s_out = retcl_no_buf();
    if (a->states) {
      s_out = retcl_buf(a->states, l * a->layer_floats);
      if (a->state_in) s_in = s_out; /* updated in place */
    }
    if (!st) st = rms_norm(m, &norm, x, w->ret_norm, h);
    if (!st)
      st = retcl__msr_enqueue(ctx, &plan, &w->msr, m->rot,
                              retcl_buf(m->log_decay, 0), h, s_in, s_out, y,
                              layer, scratch, table);
    else if (split_seq)
      st = retcl__msr_split_retention(ctx, &plan, st, retcl_no_buf(),
                                      retcl_no_buf(), retcl_no_buf(),
                                      retcl_no_buf(), retcl_no_buf(),
                                      retcl_no_buf());
    if (split_heads) st = retcl__model_split_sum(m, y, bt * d, st);
    if (!st) st = retcl__residual(ctx, bt * d, alpha, x, y);
    if (!st) st = rms_norm(m, &norm, x, w->ffn_norm, h);
    if (!st)
      st = retcl__ffn_enqueue(ctx, &w->ffn, bt, d, f, c->activation, h, ffn,
                              y);
    if (split_heads) st = retcl__model_split_sum(m, y, bt * d, st);
    if (!st) st = retcl__residual(ctx, bt * d, alpha, x, y);
  }
  if (table) clReleaseMemObject(table); /* kept alive by the launches */
  if (st || (st = rms_norm(m, &norm, x, m->final_norm, h))) return st;
  if (a->logits) {
    const size_t logit_rows = a->last_only ? n_seq : bt;
    retcl_buffer rows = h;
    if (a->last_only && logit_rows != bt) {
      /* Gather each sequence's last row of h. */
      rows = retcl_buf(ws, o.last);
      for (size_t i = 0; i < n_seq; ++i) {
        err = clEnqueueCopyBuffer(ctx->queue, ws, ws,
                                  (o.h + last_row(a, i) * d) * sizeof(float),
                                  (o.last + i * d) * sizeof(float),
                                  d * sizeof(float), 0, NULL, NULL);
        if (err != CL_SUCCESS) return retcl__cl_fail(ctx, "clEnqueueCopyBuffer", err);
      }
    }
    if ((st = retcl__linear_enqueue(ctx, logit_rows, V, d, 1.0f, rows,
                                    m->out_proj, 0.0f, lo)))
      return st;
    err = clEnqueueReadBuffer(ctx->queue, ws, CL_TRUE, o.logits * sizeof(float),
                              logit_rows * V * sizeof(float), a->logits, 0,
                              NULL, NULL);
    if (err != CL_SUCCESS) return retcl__cl_fail(ctx, "clEnqueueReadBuffer(logits)", err);
  } else if ((err = clFinish(ctx->queue)) != CL_SUCCESS) {
    return retcl__cl_fail(ctx, "clFinish", err);
  }
  return RETCL_SUCCESS;
}

/* The forward shared by retcl_model_forward (logits of every position) and
 * retcl_model_forward_last (last position of each sequence only). */
static retcl_status forward(retcl_model *m, retcl_decode_state *state,
                            const int32_t *tokens, size_t B, size_t T,
                            retcl_algorithm algo, size_t chunk, float *logits,
                            int last_only) {
  if (!m) return RETCL_ERROR_INVALID_ARGUMENT;
  retcl__clear_error(m->ctx);
  m->agreed = 0;
  retcl_status st =
      retcl__model_check_forward(m, OP_FWD, state, tokens, B, T, algo, chunk);
  if (!st && m->split.sequence && retcl__model_is_split(m))
    st = retcl__model_check_sequence_split(m, state, algo);
  if (st) return retcl__model_agree_failure(m, OP_FWD, st);
  retcl__forward_call a;
  memset(&a, 0, sizeof a);
  a.tokens = tokens;
  a.B = B;
  a.T = T;
  a.pos0 = state ? state->position : 0;
  if (state) {
    a.states = state->states;
    a.layer_floats = state->layer_elems;
    a.state_in = a.pos0 > 0;
  }
  a.algo = algo;
  a.chunk = chunk;
  a.logits = logits;
  a.last_only = last_only;
  size_t total = T;
  a.total = &total;
  if ((st = retcl__model_run(m, &a))) return st;
  if (state) state->position += total;
  return RETCL_SUCCESS;
}

retcl_status retcl_model_forward(retcl_model *m, retcl_decode_state *state,
                                 const int32_t *tokens, size_t B, size_t T,
                                 retcl_algorithm algo, size_t chunk,
                                 float *logits) {
  return forward(m, state, tokens, B, T, algo, chunk, logits, 0);
}

retcl_status retcl_model_forward_last(retcl_model *m,
                                      retcl_decode_state *state,
                                      const int32_t *tokens, size_t B,
                                      size_t T, retcl_algorithm algo,
                                      size_t chunk, float *last_logits) {
  return forward(m, state, tokens, B, T, algo, chunk, last_logits, 1);
}
