/* group_norm_data.c - see group_norm_data.h. */
#include "group_norm_data.h"

#include <stdlib.h>

#include "testutil.h"

void tu_group_norm_data_make(tu_group_norm_data *h, size_t B, size_t T,
                             size_t H, size_t D, double x_lo, double x_hi,
                             int constant_rows, int with_dout) {
  h->n = B * T * H * D;
  h->channels = H * D;
  h->x = tu_alloc(h->n);
  h->g = tu_alloc(h->n);
  h->o = with_dout ? tu_alloc(h->n) : NULL;
  h->w = tu_alloc(h->channels);
  h->b = tu_alloc(h->channels);
  if (constant_rows) {
    for (size_t r = 0; r < h->n / D; ++r) {
      const float v = (float)tu_uniform(x_lo, x_hi);
      for (size_t d = 0; d < D; ++d) h->x[r * D + d] = v;
    }
  } else {
    tu_fill_uniform(h->x, h->n, x_lo, x_hi);
  }
  tu_fill_uniform(h->g, h->n, -6, 6);
  if (with_dout) tu_fill_uniform(h->o, h->n, -1, 1);
  tu_fill_uniform(h->w, h->channels, 0.5, 1.5);
  tu_fill_uniform(h->b, h->channels, -0.5, 0.5);
}

void tu_group_norm_data_free(tu_group_norm_data *h) {
  free(h->x);
  free(h->g);
  free(h->o);
  free(h->w);
  free(h->b);
}

/* A guarded copy of n floats at offset off, or retcl_no_buf() when not
 * wanted. */
static retcl_buffer upload_if(retcl_context *ctx, int want, const float *host,
                              size_t n, size_t off, size_t guard) {
  if (!want) return retcl_no_buf();
  return retcl_buf(tu_upload_guarded(ctx, host, n, off, guard), off);
}

tu_group_norm_dev tu_group_norm_upload(retcl_context *ctx,
                                       const tu_group_norm_data *h,
                                       int use_gate, int weight, int bias,
                                       int offsets, size_t guard) {
  const size_t off = offsets ? 1 : 0;
  tu_group_norm_dev d;
  d.x = upload_if(ctx, 1, h->x, h->n, 3 * off, guard);
  d.g = upload_if(ctx, use_gate, h->g, h->n, 5 * off, guard);
  d.w = upload_if(ctx, weight, h->w, h->channels, 2 * off, guard);
  d.b = upload_if(ctx, bias, h->b, h->channels, 9 * off, guard);
  return d;
}

void tu_group_norm_release(tu_group_norm_dev *d) {
  const retcl_buffer *all[] = {&d->b, &d->w, &d->g, &d->x};
  for (int i = 0; i < 4; ++i)
    if (all[i]->mem) clReleaseMemObject(all[i]->mem);
}
