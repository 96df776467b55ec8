/* ref_train_ops.c - the training ops in double (docs/design.md §1.7). */
#include "ref_train_ops.h"

#include <math.h>

static const double PI = 3.14159265358979323846;

double ref_activation(retcl_activation act, double x) {
  if (act == RETCL_ACT_SWISH) return x / (1.0 + exp(-x));
  return x * 0.5 * erfc(-x / sqrt(2.0));
}

/* gelu'(x) = Φ(x) + x φ(x); swish'(x) = σ(x) + x σ(x) (1 − σ(x)). */
double ref_activation_grad(retcl_activation act, double x) {
  if (act == RETCL_ACT_SWISH) {
    const double s = 1.0 / (1.0 + exp(-x));
    return s + x * s * (1.0 - s);
  }
  return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2.0 * PI);
}

void ref_glu_d(const double *a, const double *g, double *h, size_t n,
               retcl_activation act) {
  for (size_t i = 0; i < n; ++i) h[i] = ref_activation(act, a[i]) * g[i];
}

void ref_glu_backward_d(const double *a, const double *g, const double *d_h,
                        double *d_a, double *d_g, size_t n,
                        retcl_activation act) {
  for (size_t i = 0; i < n; ++i) {
    d_a[i] = d_h[i] * g[i] * ref_activation_grad(act, a[i]);
    d_g[i] = d_h[i] * ref_activation(act, a[i]);
  }
}

void ref_embedding_backward_d(const int32_t *tokens, size_t count,
                              size_t dim, double scale, const double *d_x,
                              double *d_table) {
  for (size_t i = 0; i < count; ++i)
    for (size_t c = 0; c < dim; ++c)
      d_table[(size_t)tokens[i] * dim + c] += scale * d_x[i * dim + c];
}

double ref_cross_entropy_d(const double *logits, const int32_t *targets,
                           size_t rows, size_t vocab, int32_t ignore_index,
                           double *d_logits) {
  size_t counted = 0;
  for (size_t r = 0; r < rows; ++r) counted += targets[r] != ignore_index;
  double total = 0.0;
  for (size_t r = 0; r < rows; ++r) {
    const double *x = logits + r * vocab;
    double *d = d_logits ? d_logits + r * vocab : NULL;
    if (targets[r] == ignore_index) {
      if (d)
        for (size_t j = 0; j < vocab; ++j) d[j] = 0.0;
      continue;
    }
    double m = x[0];
    for (size_t j = 1; j < vocab; ++j) m = x[j] > m ? x[j] : m;
    double s = 0.0;
    for (size_t j = 0; j < vocab; ++j) s += exp(x[j] - m);
    const double lse = m + log(s);
    total += lse - x[targets[r]];
    if (d) {
      for (size_t j = 0; j < vocab; ++j)
        d[j] = exp(x[j] - m) / s / (double)counted;
      d[targets[r]] -= 1.0 / (double)counted;
    }
  }
  return counted ? total / (double)counted : 0.0;
}

double ref_grad_norm_d(const double *g, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; ++i) s += g[i] * g[i];
  return sqrt(s);
}

double ref_clip_factor(double norm, double clip_norm) {
  if (!(clip_norm > 0.0)) return 1.0;
  const double f = clip_norm / (norm + 1e-6);
  return f < 1.0 ? f : 1.0;
}

void ref_adamw_step_d(const retcl_adamw *opt, size_t step, size_t n,
                      double *param, const double *grad, double *m, double *v,
                      double clip_factor) {
  const double b1 = opt->beta1, b2 = opt->beta2, lr = opt->lr;
  const double bc1 = 1.0 - pow(b1, (double)step);
  const double bc2 = 1.0 - pow(b2, (double)step);
  for (size_t i = 0; i < n; ++i) {
    const double g = grad[i] * clip_factor;
    m[i] = b1 * m[i] + (1.0 - b1) * g;
    v[i] = b2 * v[i] + (1.0 - b2) * g * g;
    param[i] = param[i] * (1.0 - lr * opt->weight_decay) -
               lr / bc1 * m[i] / (sqrt(v[i] / bc2) + opt->eps);
  }
}

double ref_lr_schedule(double peak, size_t step, size_t warmup, size_t total,
                       double floor_ratio) {
  const double floor_lr = peak * floor_ratio;
  if (warmup > 0 && step <= warmup) return peak * (double)step / (double)warmup;
  if (step >= total) return floor_lr;
  const double t = (double)(step - warmup) / (double)(total - warmup);
  return floor_lr + 0.5 * (peak - floor_lr) * (1.0 + cos(PI * t));
}
