/* retention_data.c - see retention_data.h. */
#include "retention_data.h"

#include <math.h>
#include <stdlib.h>

#include "testutil.h"

void tu_retention_data_make(tu_retention_data *x, size_t B, size_t T,
                            size_t H, size_t Dk, size_t Dv, double amplitude) {
  x->nqk = B * T * H * Dk;
  x->nvo = B * T * H * Dv;
  x->ns = B * H * Dk * Dv;
  x->q = tu_alloc(x->nqk);
  x->k = tu_alloc(x->nqk);
  x->v = tu_alloc(x->nvo);
  x->lg = tu_alloc(H);
  x->s0 = tu_alloc(x->ns);
  const double amp = amplitude > 0 ? amplitude : 1.0;
  const double qs = amp / sqrt((double)Dk);
  tu_fill_uniform(x->q, x->nqk, -qs, qs);
  tu_fill_uniform(x->k, x->nqk, -amp, amp);
  tu_fill_uniform(x->v, x->nvo, -1, 1);
  tu_fill_uniform(x->s0, x->ns, -1, 1);
}

void tu_retention_fill_decay(tu_retention_data *x, size_t H, int random) {
  if (random)
    for (size_t h = 0; h < H; ++h)
      x->lg[h] = (float)log(tu_uniform(0.5, 0.999));
  else
    retcl_default_log_decay(H, x->lg);
}

void tu_retention_data_free(tu_retention_data *x) {
  free(x->q);
  free(x->k);
  free(x->v);
  free(x->lg);
  free(x->s0);
}
