/* tune_model.c - the elementwise family for `retcl tune` (tune.h). Its
 * kernels (token embedding, residual update, the FFN's GLU) have no public
 * call of their own: they run inside a model's forward, so that is what
 * the tuner times and checks. A random 2-layer model of d 512, H 4, FFN
 * 1024 is written once as a checkpoint, loaded on every candidate's
 * context, and its logits are compared with the double-precision reference
 * model (reference/ref_model.c). Every other family keeps the device's
 * defaults, so the differences between candidates are the elementwise
 * kernels' alone, measured where they matter: in a prefill and in a decode
 * step. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>

#include "ref_checkpoint.h"
#include "ref_model.h"
#include "tune.h"

/* test_model's bound on logits against the reference model: each op
 * within ~1e-6, added up over the layers' products, norms and retention;
 * a wrong kernel gives 1e-2 and more. */
#define MODEL_TOL 2e-5
enum { M_VOCAB = 1000, M_MAX_TOKENS = 64 };

typedef struct model_shape {
  retcl_algorithm algo;
  size_t B, T;
  int32_t tokens[M_MAX_TOKENS];
  double *ref; /* logits [B, T, vocab] */
} model_shape;

static const tune_shape model_shapes[] = {
    {"prefill B1 T64, chunkwise (2 layers)", 0},
    {"decode step B8 T1, recurrent (2 layers)", 0},
};
static model_shape m_shapes[] = {{RETCL_ALGO_CHUNKWISE, 1, 64, {0}, NULL},
                                 {RETCL_ALGO_RECURRENT, 8, 1, {0}, NULL}};
#define N_MODEL (sizeof m_shapes / sizeof m_shapes[0])

static char m_dir[4096]; /* the checkpoint folder, "" when there is none */

static void model_teardown(void) {
  for (size_t i = 0; i < N_MODEL; ++i) {
    free(m_shapes[i].ref);
    m_shapes[i].ref = NULL;
  }
  if (m_dir[0]) ref_checkpoint_remove(m_dir);
  m_dir[0] = '\0';
}

static int model_setup(uint64_t *rng, char *why, size_t cap) {
  retcl_model_config cfg;
  retcl_model_config_default(&cfg);
  cfg.embed_dim = 512;
  cfg.value_embed_dim = 512;
  cfg.heads = 4;
  cfg.ffn_dim = 1024;
  cfg.layers = 2;
  cfg.vocab_size = M_VOCAB;
  cfg.chunk_size = 64;
  ref_model ref;
  ref_model_random(&ref, &cfg, 1, rng);
  const char *tmp = getenv("TMPDIR");
  snprintf(m_dir, sizeof m_dir, "%s/retcl-tune-model-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(m_dir)) {
    snprintf(why, cap, "cannot create a folder %s for the model (set TMPDIR)",
             m_dir);
    m_dir[0] = '\0';
    ref_model_free(&ref);
    return 0;
  }
  int ok = ref_checkpoint_write(&ref, m_dir, "F32", CKPT_OK) == 0;
  if (!ok) snprintf(why, cap, "cannot write a checkpoint into %s", m_dir);
  for (size_t i = 0; ok && i < N_MODEL; ++i) {
    model_shape *s = &m_shapes[i];
    for (size_t t = 0; t < s->B * s->T; ++t)
      s->tokens[t] = (int32_t)(retcl_random_uniform(rng) * M_VOCAB) % M_VOCAB;
    s->ref = malloc(s->B * s->T * M_VOCAB * sizeof *s->ref);
    if (!s->ref) {
      snprintf(why, cap, "out of host memory");
      ok = 0;
      break;
    }
    ref_model_forward(&ref, s->tokens, s->B, s->T, s->algo, 0, s->ref);
  }
  ref_model_free(&ref);
  return ok;
}

typedef struct model_inst {
  retcl_model *model;
  float *logits; /* the largest shape's */
} model_inst;

static void model_close(void *p) {
  model_inst *in = p;
  if (!in) return;
  retcl_model_destroy(in->model);
  free(in->logits);
  free(in);
}

static retcl_status model_open(retcl_context *ctx, void **inst, char *why,
                               size_t cap) {
  size_t most = 0;
  for (size_t i = 0; i < N_MODEL; ++i)
    if (m_shapes[i].B * m_shapes[i].T > most)
      most = m_shapes[i].B * m_shapes[i].T;
  model_inst *in = calloc(1, sizeof *in);
  if (in) in->logits = malloc(most * M_VOCAB * sizeof *in->logits);
  if (!in || !in->logits) {
    model_close(in);
    snprintf(why, cap, "out of host memory");
    return RETCL_ERROR_OUT_OF_MEMORY;
  }
  /* Loading builds every program the model runs: a candidate whose
   * kernels do not compile fails here. */
  const retcl_status st = retcl_model_load(ctx, m_dir, &in->model);
  if (st) {
    snprintf(why, cap, "retcl_model_load: %s", retcl_last_error(ctx));
    model_close(in);
    return st;
  }
  *inst = in;
  return RETCL_SUCCESS;
}

/* Blocking: the logits are on the host when it returns. */
static retcl_status model_run(void *p, size_t i) {
  model_inst *in = p;
  const model_shape *s = &m_shapes[i];
  return retcl_model_forward(in->model, NULL, s->tokens, s->B, s->T, s->algo,
                             0, in->logits);
}

static tune_verdict model_check(void *p, size_t i, char *why, size_t cap) {
  model_inst *in = p;
  const model_shape *s = &m_shapes[i];
  const double err =
      tune_rel_error(in->logits, s->ref, s->B * s->T * M_VOCAB);
  if (err <= MODEL_TOL) return TUNE_RIGHT;
  snprintf(why, cap, "%s: logits rel.err %.2g > %.0e", model_shapes[i].what,
           err, MODEL_TOL);
  return TUNE_WRONG;
}

/* cpu: elements per work-item and the GLU's vector width; gpu: one
 * element per item, nothing to choose but the pattern. */
const tune_family tune_family_elementwise = {
    "elementwise",
    "embedding, residual, GLU: timed in a 2-layer model",
    NULL,
    NULL,
    1,
    1,
    {{0, {{NULL, 0, {0}}}},
     {2, {{"per_item", 4, {16, 64, 256, 1024}}, {"vw", 2, {8, 16}}}}},
    N_MODEL,
    model_shapes,
    model_setup,
    model_teardown,
    model_open,
    model_run,
    model_check,
    model_close,
};
