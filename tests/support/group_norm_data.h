/* group_norm_data.h - the random host inputs of the group norm suites
 * (test_group_norm, test_group_norm_grad), drawn one way for both, and
 * their guarded device copies. */
#ifndef RETCL_GROUP_NORM_DATA_H
#define RETCL_GROUP_NORM_DATA_H

#include <stddef.h>

#include "retcl.h"

typedef struct tu_group_norm_data {
  float *x, *g, *w, *b; /* input and gate [B·T·H·D], weight and bias [H·D] */
  float *o;             /* d_out [B·T·H·D], or NULL when not drawn */
  size_t n, channels;   /* B·T·H·D and H·D */
} tu_group_norm_data;

/* Allocates the inputs of B·T rows of H heads of D values and draws them
 * in this order: x ~ U(x_lo, x_hi) (with constant_rows one draw per row
 * of D values, repeated along it), the gate ~ U(-6, 6) (wide enough to
 * reach both tails of swish and gelu), d_out ~ U(-1, 1) when with_dout,
 * weight ~ U(0.5, 1.5), bias ~ U(-0.5, 0.5). */
void tu_group_norm_data_make(tu_group_norm_data *h, size_t B, size_t T,
                             size_t H, size_t D, double x_lo, double x_hi,
                             int constant_rows, int with_dout);
void tu_group_norm_data_free(tu_group_norm_data *h);

/* The inputs on a device, each a guarded tensor (tu_upload_guarded with
 * guard NaN floats around it): x always, the gate when use_gate, weight
 * and bias when weight, bias (retcl_no_buf() otherwise); with offsets
 * each at its own nonzero float offset (x 3, gate 5, weight 2, bias 9),
 * else at 0. */
typedef struct tu_group_norm_dev {
  retcl_buffer x, g, w, b;
} tu_group_norm_dev;

tu_group_norm_dev tu_group_norm_upload(retcl_context *ctx,
                                       const tu_group_norm_data *h,
                                       int use_gate, int weight, int bias,
                                       int offsets, size_t guard);
void tu_group_norm_release(tu_group_norm_dev *d);

#endif
