/* ref_util.c - see ref_util.h. */
#include "ref_util.h"

#include <stdio.h>
#include <stdlib.h>

size_t ref_index(retcl_layout layout, size_t T, size_t H, size_t D, size_t b,
                 size_t t, size_t h, size_t d) {
  if (layout == RETCL_LAYOUT_HEAD_MAJOR) return ((b * H + h) * T + t) * D + d;
  return ((b * T + t) * H + h) * D + d;
}

static void *checked(void *p, size_t bytes) {
  if (!p) {
    fprintf(stderr, "retcl_reference: out of memory (%zu bytes)\n", bytes);
    abort();
  }
  return p;
}

float *ref_alloc(size_t n) {
  const size_t bytes = (n ? n : 1) * sizeof(float);
  return checked(malloc(bytes), bytes);
}

double *ref_alloc_d(size_t n) {
  return checked(calloc(n ? n : 1, sizeof(double)), (n ? n : 1) * sizeof(double));
}

double *ref_widen(const float *x, size_t n) {
  if (!x) return NULL;
  double *y = ref_alloc_d(n);
  for (size_t i = 0; i < n; ++i) y[i] = x[i];
  return y;
}

void ref_round_fp32(double *x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = (double)(float)x[i];
}
