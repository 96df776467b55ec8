/* retention_data.h - the random host inputs of the retention suites
 * (test_retention, test_retention_grad), drawn one way for both. */
#ifndef RETCL_RETENTION_DATA_H
#define RETCL_RETENTION_DATA_H

#include <stddef.h>

typedef struct tu_retention_data {
  size_t nqk, nvo, ns; /* floats of q and k, of v and the output, of a state */
  float *q, *k, *v, *lg, *s0;
} tu_retention_data;

/* Allocates the inputs of B sequences of T tokens, H heads of Dk / Dv, and
 * draws q, k, v and s0: q, k as after the layer's scaling (q ~ U(-a, a) /
 * sqrt(Dk), k ~ U(-a, a), a = amplitude or 1 when 0) so scores are O(1);
 * v and s0 ~ U(-1, 1). The log decays lg are left to
 * tu_retention_fill_decay, so that a suite drawing more inputs keeps the
 * order it draws them in. */
void tu_retention_data_make(tu_retention_data *x, size_t B, size_t T,
                            size_t H, size_t Dk, size_t Dv, double amplitude);
/* lg[0..H): log of U(0.5, 0.999) when random, else RetNet's defaults. */
void tu_retention_fill_decay(tu_retention_data *x, size_t H, int random);
void tu_retention_data_free(tu_retention_data *x);

#endif
