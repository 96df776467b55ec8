/* ref_model_grad.c - the decoder's loss gradient by the chain rule, block
 * by block from the last (see ref_model_grad.h). Each step names the
 * forward line it differentiates; the op gradients come from the other
 * reference files, each checked against central differences of its own
 * forward in the op tests. */
#include "ref_model_grad.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref_group_norm_grad.h"
#include "ref_retention_grad.h"
#include "ref_rotation.h"
#include "ref_train_ops.h"
#include "ref_util.h"

/* For Y = alpha · X Wᵀ (W [out, in]): dX += alpha · dY W. */
static void linear_input_grad(const double *dY, const float *W, size_t rows,
                              size_t out, size_t in, double alpha,
                              double *dX) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t o = 0; o < out; ++o) {
      const double a = alpha * dY[r * out + o];
      for (size_t i = 0; i < in; ++i) dX[r * in + i] += a * W[o * in + i];
    }
}

/* ... and dW += alpha · dYᵀ X. */
static void linear_weight_grad(const double *dY, const double *X, size_t rows,
                               size_t out, size_t in, double alpha,
                               double *dW) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t o = 0; o < out; ++o) {
      const double a = alpha * dY[r * out + o];
      for (size_t i = 0; i < in; ++i) dW[o * in + i] += a * X[r * in + i];
    }
}

/* y = x / sqrt(mean(x²) + eps) · w over rows of d values (the model's
 * RMSNorm is the group norm with one group and no gate): dx written, dw
 * written. */
static void rms_backward(const double *x, const float *w, const double *dy,
                         double *dx, double *dw, size_t rows, size_t d,
                         double eps) {
  double *wd = ref_widen(w, d);
  ref_group_norm_gate_backward_d(x, NULL, wd, NULL, dy, dx, NULL, dw, NULL, 1,
                                 rows, 1, d, RETCL_LAYOUT_TOKEN_MAJOR,
                                 RETCL_NORM_RMS, RETCL_GATE_NONE, eps);
  free(wd);
}

/* x ← alpha · x + part over n values (a residual's backward: the block's
 * input reaches its output as alpha · x and through the branch). */
static void residual_backward(double *dx, double alpha, const double *part,
                              size_t n) {
  for (size_t i = 0; i < n; ++i) dx[i] = alpha * dx[i] + part[i];
}

static void zero(double *x, size_t n) { memset(x, 0, n * sizeof *x); }

static void alloc_grad(const ref_model *m, ref_model_grad *g) {
  const retcl_model_config *c = &m->cfg;
  const size_t d = c->embed_dim, dv = c->value_embed_dim, F = c->ffn_dim,
               V = c->vocab_size;
  memset(g, 0, sizeof *g);
  g->embed = ref_alloc_d(V * d);
  g->emb_norm = m->emb_norm ? ref_alloc_d(d) : NULL;
  g->final_norm = ref_alloc_d(d);
  g->out_proj = m->out_proj ? ref_alloc_d(V * d) : NULL;
  g->n_layers = c->layers;
  g->layers = calloc(c->layers ? c->layers : 1, sizeof *g->layers);
  if (!g->layers) abort();
  for (size_t l = 0; l < c->layers; ++l)
    g->layers[l] = (ref_layer_grad){
        ref_alloc_d(d * d),  ref_alloc_d(d * d), ref_alloc_d(dv * d),
        ref_alloc_d(dv * d), ref_alloc_d(d * dv), ref_alloc_d(d),
        ref_alloc_d(F * d),  ref_alloc_d(d * F), ref_alloc_d(F * d),
        ref_alloc_d(d)};
}

void ref_model_grad_free(ref_model_grad *g) {
  if (!g) return;
  free(g->embed), free(g->emb_norm), free(g->final_norm), free(g->out_proj);
  for (size_t l = 0; g->layers && l < g->n_layers; ++l) {
    ref_layer_grad *y = &g->layers[l];
    double *all[] = {y->wq,  y->wk,  y->wv,  y->wg,   y->wo,
                     y->ret_norm, y->fc1, y->fc2, y->gate, y->ffn_norm};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) free(all[i]);
  }
  free(g->layers);
  memset(g, 0, sizeof *g);
}

double ref_model_loss_grad_d(const ref_model *m, const int32_t *tokens,
                             size_t B, size_t T, retcl_algorithm algo,
                             size_t chunk, ref_model_grad *g) {
  const retcl_model_config *c = &m->cfg;
  const size_t d = c->embed_dim, dv = c->value_embed_dim, H = c->heads,
               F = c->ffn_dim, V = c->vocab_size, L = c->layers, N = B * T;
  const size_t Dk = d / H, Dv = dv / H;
  const double eps = (double)c->layernorm_eps;
  const double alpha = c->deepnorm ? pow(2.0 * (double)L, 0.25) : 1.0;
  const double k_scale = 1.0 / sqrt((double)Dk);
  const retcl_layout TM = RETCL_LAYOUT_TOKEN_MAJOR;
  alloc_grad(m, g);

  ref_model_tape tape;
  double *logits = ref_alloc_d(N * V), *dlogits = ref_alloc_d(N * V);
  ref_model_forward_tape(m, tokens, B, T, algo, chunk, logits, &tape);
  chunk = tape.chunk; /* with the forward's default applied */
  int32_t *targets = malloc(N * sizeof *targets);
  if (!targets) abort();
  for (size_t b = 0; b < B; ++b)
    for (size_t t = 0; t < T; ++t)
      targets[b * T + t] = t + 1 < T ? tokens[b * T + t + 1] : -1;
  const double loss = ref_cross_entropy_d(logits, targets, N, V, -1, dlogits);

  float *theta = ref_model_theta(m), *log_decay = ref_model_log_decay(m);
  double *dx = ref_alloc_d(N * d), *dn = ref_alloc_d(N * d),
         *part = ref_alloc_d(N * d);
  double *dh = ref_alloc_d(N * F), *da = ref_alloc_d(N * F),
         *dgate = ref_alloc_d(N * F);
  double *dz = ref_alloc_d(N * dv), *d_o = ref_alloc_d(N * dv),
         *dg = ref_alloc_d(N * dv), *dq = ref_alloc_d(N * d),
         *dk = ref_alloc_d(N * d), *dvv = ref_alloc_d(N * dv);

  /* logits = n_last · Woutᵀ; n_last = RMSNorm(x_last) · final_norm. */
  const float *w_out = c->share_embed ? m->embed : m->out_proj;
  linear_weight_grad(dlogits, tape.n_last, N, V, d, 1.0,
                     c->share_embed ? g->embed : g->out_proj);
  linear_input_grad(dlogits, w_out, N, V, d, 1.0, dn);
  rms_backward(tape.x_last, m->final_norm, dn, dx, g->final_norm, N, d, eps);

  for (size_t l = L; l-- > 0;) {
    const ref_layer *w = &m->layers[l];
    const ref_model_tape_layer *s = &tape.layers[l];
    ref_layer_grad *gl = &g->layers[l];
    /* x_out = α x1 + fc2(h), h = act(a) ⊙ gate, a = fc1 n1,
     * gate = W_gate n1, n1 = RMSNorm(x1) · ffn_norm. */
    zero(dh, N * F);
    linear_input_grad(dx, w->fc2, N, d, F, 1.0, dh);
    linear_weight_grad(dx, s->h, N, d, F, 1.0, gl->fc2);
    ref_glu_backward_d(s->a, s->gate, dh, da, dgate, N * F, c->activation);
    zero(dn, N * d);
    linear_input_grad(da, w->fc1, N, F, d, 1.0, dn);
    linear_input_grad(dgate, w->gate, N, F, d, 1.0, dn);
    linear_weight_grad(da, s->n1, N, F, d, 1.0, gl->fc1);
    linear_weight_grad(dgate, s->n1, N, F, d, 1.0, gl->gate);
    rms_backward(s->x1, w->ffn_norm, dn, part, gl->ffn_norm, N, d, eps);
    residual_backward(dx, alpha, part, N * d);

    /* x1 = α x_in + Wo z, z = RMS_group(o) ⊙ swish(g), o = retention(q, k,
     * v), q = rot(Wq n0), k = rot(Wk n0 / sqrt(Dk)), v = Wv n0,
     * g = Wg n0, n0 = RMSNorm(x_in) · ret_norm. */
    zero(dz, N * dv);
    linear_input_grad(dx, w->wo, N, d, dv, 1.0, dz);
    linear_weight_grad(dx, s->msr.z, N, d, dv, 1.0, gl->wo);
    ref_group_norm_gate_backward_d(s->msr.o, s->msr.g, NULL, NULL, dz, d_o,
                                   dg, NULL, NULL, B, T, H, Dv, TM,
                                   RETCL_NORM_RMS, RETCL_GATE_SWISH, eps);
    ref_retention_grad_d(RETCL_FORM_TORCHSCALE, algo, s->msr.q, s->msr.k,
                         s->msr.v, log_decay, NULL, 0, d_o, NULL, dq, dk, dvv,
                         NULL, B, T, H, Dk, Dv, TM, 0.0, chunk);
    ref_rotate_backward_d(dq, dq, B, T, H, Dk, TM, 0, theta, 0.0, 0);
    ref_rotate_backward_d(dk, dk, B, T, H, Dk, TM, 0, theta, 0.0, 1);
    zero(dn, N * d);
    linear_input_grad(dq, w->wq, N, d, d, 1.0, dn);
    linear_input_grad(dk, w->wk, N, d, d, k_scale, dn);
    linear_input_grad(dvv, w->wv, N, dv, d, 1.0, dn);
    linear_input_grad(dg, w->wg, N, dv, d, 1.0, dn);
    linear_weight_grad(dq, s->n0, N, d, d, 1.0, gl->wq);
    linear_weight_grad(dk, s->n0, N, d, d, k_scale, gl->wk);
    linear_weight_grad(dvv, s->n0, N, dv, d, 1.0, gl->wv);
    linear_weight_grad(dg, s->n0, N, dv, d, 1.0, gl->wg);
    rms_backward(s->x_in, w->ret_norm, dn, part, gl->ret_norm, N, d, eps);
    residual_backward(dx, alpha, part, N * d);
  }

  /* x_0 = RMSNorm(x_emb) · emb_norm (with layernorm_embedding), x_emb =
   * scale · embed[token]. */
  if (m->emb_norm && c->layernorm_embedding) {
    rms_backward(tape.x_emb, m->emb_norm, dx, part, g->emb_norm, N, d, eps);
    memcpy(dx, part, N * d * sizeof *dx);
  }
  const double emb_scale = c->no_scale_embedding ? 1.0 : sqrt((double)d);
  ref_embedding_backward_d(tokens, N, d, emb_scale, dx, g->embed);

  double *all[] = {logits, dlogits, dx, dn, part, dh, da, dgate,
                   dz,     d_o,     dg, dq, dk,   dvv};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) free(all[i]);
  free(targets), free(theta), free(log_decay);
  ref_model_tape_free(&tape, L);
  return loss;
}
