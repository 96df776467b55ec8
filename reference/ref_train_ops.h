/* ref_train_ops.h - the training ops of docs/design.md §1.7 in double
 * precision: the GLU and its gradient, the embedding gradient, the
 * cross-entropy with an ignore index and its gradient, the gradient norm,
 * AdamW and the learning-rate schedule. The gradients are the analytic
 * derivatives, written out by hand (the tests compare them with central
 * differences of the forwards here). */
#ifndef RETCL_REF_TRAIN_OPS_H
#define RETCL_REF_TRAIN_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "retcl.h"

/* act(x): gelu x·Φ(x) (Φ through erfc, exact in the negative tail) or
 * swish x·σ(x); and its derivative act'(x). */
double ref_activation(retcl_activation act, double x);
double ref_activation_grad(retcl_activation act, double x);

/* h = act(a) ⊙ g over n values. */
void ref_glu_d(const double *a, const double *g, double *h, size_t n,
               retcl_activation act);
/* d_a = d_h ⊙ g ⊙ act'(a), d_g = d_h ⊙ act(a). */
void ref_glu_backward_d(const double *a, const double *g, const double *d_h,
                        double *d_a, double *d_g, size_t n,
                        retcl_activation act);

/* d_table[tokens[i], :] += scale · d_x[i, :] for i < count (dim values per
 * row): accumulates into d_table, whose other rows stay as they are. */
void ref_embedding_backward_d(const int32_t *tokens, size_t count,
                              size_t dim, double scale, const double *d_x,
                              double *d_table);

/* The mean over rows r with targets[r] != ignore_index of
 * −log softmax(logits_r)[targets[r]] (0 when no row counts), returned;
 * d_logits (optional) = (softmax − onehot) / N on counted rows, 0 on
 * ignored ones. logits [rows, vocab]. */
double ref_cross_entropy_d(const double *logits, const int32_t *targets,
                           size_t rows, size_t vocab, int32_t ignore_index,
                           double *d_logits);

/* sqrt(Σ g_i²), and the clip factor min(1, clip / (norm + 1e-6)) (1 for
 * clip 0). */
double ref_grad_norm_d(const double *g, size_t n);
double ref_clip_factor(double norm, double clip_norm);

/* One AdamW step (torch.optim.AdamW's arithmetic, docs/design.md §1.7) with
 * the gradient multiplied by clip_factor first:
 *   m ← β1 m + (1 − β1) g,  v ← β2 v + (1 − β2) g²,
 *   p ← p (1 − lr·wd) − lr/(1 − β1^step) · m / (sqrt(v/(1 − β2^step)) + eps).
 * opt's fields are read as doubles. */
void ref_adamw_step_d(const retcl_adamw *opt, size_t step, size_t n,
                      double *param, const double *grad, double *m, double *v,
                      double clip_factor);

/* Linear warm-up to peak at step = warmup, cosine to peak·floor_ratio at
 * step = total, the floor afterwards (retcl_lr_schedule's contract). */
double ref_lr_schedule(double peak, size_t step, size_t warmup, size_t total,
                       double floor_ratio);

#endif
