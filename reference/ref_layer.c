/* ref_layer.c - the multi-scale retention layer in double (docs/design.md §1.6),
 * composed from ref_rotation, ref_retention and ref_group_norm. */
#include "ref_layer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref_group_norm.h"
#include "ref_retention.h"
#include "ref_rotation.h"
#include "ref_util.h"

void ref_linear(const double *x, const float *W, size_t rows, size_t out,
                size_t in, double alpha, double *y) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t o = 0; o < out; ++o) {
      const float *wr = W + o * in;
      double s = 0;
      for (size_t i = 0; i < in; ++i) s += x[r * in + i] * wr[i];
      y[r * out + o] = alpha * s;
    }
}

void ref_msr_forward(const ref_msr_desc *c, const ref_msr_weights *w,
                     const float *log_decay, const double *x, const float *s0,
                     double *y, double *s_final) {
  ref_msr_forward_saved(c, w, log_decay, x, s0, y, s_final, NULL);
}

void ref_msr_forward_saved(const ref_msr_desc *c, const ref_msr_weights *w,
                           const float *log_decay, const double *x,
                           const float *s0, double *y, double *s_final,
                           const ref_msr_saved *keep) {
  const retcl_layout TM = RETCL_LAYOUT_TOKEN_MAJOR;
  const size_t N = c->B * c->T, Dk = c->d / c->H, Dv = c->dv / c->H;
  const int rnd = c->round_fp32;
  double *q = ref_alloc_d(N * c->d), *k = ref_alloc_d(N * c->d);
  double *v = ref_alloc_d(N * c->dv), *g = ref_alloc_d(N * c->dv);
  double *o = ref_alloc_d(N * c->dv);
  ref_linear(x, w->wq, N, c->d, c->d, 1.0, q);
  ref_linear(x, w->wk, N, c->d, c->d, 1.0 / sqrt((double)Dk), k);
  ref_linear(x, w->wv, N, c->dv, c->d, 1.0, v);
  ref_linear(x, w->wg, N, c->dv, c->d, 1.0, g);
  if (rnd) {
    ref_round_fp32(q, N * c->d);
    ref_round_fp32(k, N * c->d);
    ref_round_fp32(v, N * c->dv);
    ref_round_fp32(g, N * c->dv);
  }
  /* In place: the rotation reads each pair before writing it. */
  ref_rotate_d(q, q, c->B, c->T, c->H, Dk, TM, c->pos0, c->theta, 0, 0);
  ref_rotate_d(k, k, c->B, c->T, c->H, Dk, TM, c->pos0, c->theta, 0, 1);
  if (rnd) {
    ref_round_fp32(q, N * c->d);
    ref_round_fp32(k, N * c->d);
  }
  if (c->form == RETCL_FORM_RAW)
    ref_retention_raw_d(q, k, v, log_decay, s0, o, s_final, c->B, c->T, c->H,
                        Dk, Dv, TM, 1.0);
  else
    ref_retention_torchscale_d(c->algo, q, k, v, log_decay, s0, c->pos0, o,
                               s_final, c->B, c->T, c->H, Dk, Dv, TM,
                               c->chunk);
  if (rnd) ref_round_fp32(o, N * c->dv);
  if (keep) memcpy(keep->v, v, N * c->dv * sizeof *v);
  /* The gated values overwrite v, no longer needed. */
  ref_group_norm_gate_d(o, g, NULL, NULL, v, c->B, c->T, c->H, Dv, TM,
                        RETCL_NORM_RMS, RETCL_GATE_SWISH, c->eps);
  if (rnd) ref_round_fp32(v, N * c->dv);
  ref_linear(v, w->wo, N, c->d, c->dv, 1.0, y);
  if (keep) {
    const size_t nk = N * c->d * sizeof(double), nv = N * c->dv * sizeof(double);
    memcpy(keep->q, q, nk);
    memcpy(keep->k, k, nk);
    memcpy(keep->g, g, nv);
    memcpy(keep->o, o, nv);
    memcpy(keep->z, v, nv);
  }
  free(q);
  free(k);
  free(v);
  free(g);
  free(o);
}
