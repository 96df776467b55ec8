/* model.h - what a retcl_model and a decode state hold (model.c loads
 * and runs them; model_save.c and model_train.c use them). Internal. */
#ifndef RETCL_MODEL_MODEL_H
#define RETCL_MODEL_MODEL_H

#include "model/ffn.h"
#include "model/weights.h"
#include "retcl.h"

/* One layer's weights, as places in the model's parameter vector
 * (model/weights.h). */
typedef struct layer_weights {
  retcl_msr_weights msr;
  retcl_buffer ret_norm, ffn_norm;
  retcl_ffn_weights ffn;
} layer_weights;

struct retcl_model {
  retcl_context *ctx;
  retcl_model_config cfg;
  retcl__weight_layout layout;
  cl_mem params;    /* every trainable tensor, layout.total floats */
  cl_mem log_decay; /* [H], not trained */
  retcl_buffer embed, emb_norm, final_norm, out_proj; /* in params; emb_norm
                       absent (mem NULL) unless enabled; out_proj is embed
                       when tied */
  layer_weights *layers;
  retcl_rotation *rot;
  float *theta;     /* [Dk/2] the rotation's angles, for saving */
  float *log_decay_host; /* [H], for saving */
  size_t weight_bytes;
  retcl_dtype wtype; /* storage of params (retcl_model_load_as); the
                        retcl_buffers above carry it */
  struct retcl__train_tape *tape; /* model_train.c: what a backward needs */
  /* A part of a split model (retcl_model_load_split); split.agree NULL for
   * a whole model. head0/heads and ffn0/ffn: the heads and FFN units this
   * model holds (all of them for a whole or sequence-split model). */
  retcl_model_split split;
  size_t head0, heads, ffn0, ffn;
  int agreed; /* the current call has agreed (retcl__model_agree) */
};

/* retcl_model_load_as, or (split non-NULL) retcl_model_load_split with
 * its hooks checked (model.c). */
retcl_status retcl__model_load(retcl_context *ctx, const char *dir,
                              retcl_storage storage,
                              const retcl_model_split *split,
                              retcl_model **out);
/* The ranges a split holds, checked against the config and resolved from
 * part/parts (split.c). */
retcl_status retcl__model_split_resolve(retcl_context *ctx,
                                        const retcl_model_config *cfg,
                                        retcl_model_split *split);
/* A heads-split layer's partial output y (n floats) summed over the
 * processes; st != SUCCESS: this process failed and only takes part
 * (split.c). */
retcl_status retcl__model_split_sum(retcl_model *m, retcl_buffer y, size_t n,
                                    retcl_status st);
/* What a sequence-split forward refuses (from a non-empty state, the
 * parallel form), with the message (split.c). */
retcl_status retcl__model_check_sequence_split(retcl_model *m,
                                              const retcl_decode_state *s,
                                              retcl_algorithm algo);

/* Whether m is one process's part of a split model. */
static inline int retcl__model_is_split(const retcl_model *m) {
  return m->split.agree != NULL;
}
/* Whether m holds some of the heads only (its states too). */
static inline int retcl__model_heads_split(const retcl_model *m) {
  return retcl__model_is_split(m) && !m->split.sequence;
}

/* Agree with the other processes of a split model on st, once per forward
 * (model.c): returns the agreed status (the ctx's message set from the
 * hook's when another process failed); *offset = the tokens (per
 * sequence) before this process, *total = everyone's (sequence split;
 * either may be NULL). A whole model: st, 0, tokens. */
retcl_status retcl__model_agree(retcl_model *m, const char *op,
                                retcl_status st, size_t tokens,
                                uint64_t shape, size_t *offset,
                                size_t *total);
/* A call that failed (st) before its forward agreed meets the other
 * processes with its failure (split.c); st otherwise. Every public entry
 * point of a split model ends through it, so none leaves a peer waiting. */
retcl_status retcl__model_agree_failure(retcl_model *m, const char *op,
                                        retcl_status st);

struct retcl_decode_state {
  const retcl_model *model;
  size_t batch, position;
  cl_mem states; /* [L, B, H, Dk, Dv] */
  size_t layer_elems;
};

/* Checks of a forward's arguments shared by the inference and training
 * forwards (messages name op). */
retcl_status retcl__model_check_forward(retcl_model *m, const char *op,
                                        retcl_decode_state *s,
                                        const int32_t *tokens, size_t B,
                                        size_t T, retcl_algorithm algo,
                                        size_t chunk);
/* The residual branch scale α of DeepNorm ((2L)^(1/4)), 1 without it
 * (docs/design.md §1.6). */
float retcl__model_residual_alpha(const retcl_model_config *c);
/* The embedding's scale: sqrt(d), or 1 with no_scale_embedding. */
float retcl__model_embed_scale(const retcl_model_config *c);

/* The RMSNorm (with weight) of `rows` rows of the model width. */
retcl_group_norm_desc retcl__model_rms_desc(const retcl_model *m,
                                            size_t rows);

/* One inference forward (model.c): a rectangular batch [B, T], or packed
 * sequences (packing.count > 0, B = 1, T their total), with the states it
 * continues and advances. Its arguments are checked by the caller. */
typedef struct retcl__forward_call {
  const int32_t *tokens;
  size_t B, T;
  retcl_packing packing;  /* positions and state_slots as the op takes them */
  size_t pos0;            /* rectangular: the state's position */
  size_t *total;          /* NULL, or set to the tokens per sequence of
                             every process (sequence split) or T */
  cl_mem states;          /* [L][layer_floats] or NULL */
  size_t layer_floats;
  int state_in;           /* states hold absorbed tokens to continue */
  retcl_algorithm algo;
  size_t chunk;
  float *logits;          /* NULL: none */
  int last_only;          /* logits of each sequence's last token only */
} retcl__forward_call;

retcl_status retcl__model_run(retcl_model *m, const retcl__forward_call *call);

/* The digest of a forward call that every process of a split model must
 * make alike (retcl_model_split.agree's `shape`). */
uint64_t retcl__forward_digest(const retcl_model *m,
                               const retcl__forward_call *call);

/* The device buffer of `count` sequences' states, [L, count, heads, Dk,
 * Dv] with the model's heads (a decode state's batch, a pool's slots;
 * `what` names the count in messages): *layer_elems floats per layer. */
retcl_status retcl__model_states_alloc(retcl_model *model, const char *op,
                                       const char *what, size_t count,
                                       size_t *layer_elems, cl_mem *states);

/* Release what a training forward kept (model_train.c). */
void retcl__train_tape_free(retcl_model *m);

#endif
