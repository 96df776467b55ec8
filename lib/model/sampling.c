/* sampling.c - choosing the next token from logits on the host. */
#include "retcl.h"

#include "runtime/status.h"

#include <math.h>
#include <stdlib.h>

static size_t argmax(const float *x, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

typedef struct scored {
  float logit;
  int32_t id;
} scored;

/* Descending by logit, ascending id on ties: a total order, so top-k is
 * deterministic. */
static int by_logit_desc(const void *pa, const void *pb) {
  const scored *a = pa, *b = pb;
  if (a->logit != b->logit) return a->logit < b->logit ? 1 : -1;
  return (a->id > b->id) - (a->id < b->id);
}

retcl_status retcl_sample(const float *logits, size_t vocab,
                          const retcl_sampler *sampler, uint64_t *rng_state,
                          int32_t *token) {
  if (!logits || !sampler || !rng_state || !token)
    return RETCL_ERROR_INVALID_ARGUMENT;
  if (vocab == 0 || vocab > INT32_MAX) return RETCL_ERROR_INVALID_SIZE;
  if (!(sampler->temperature >= 0.0f) || isinf(sampler->temperature))
    return RETCL_ERROR_INVALID_ARGUMENT;
  for (size_t i = 0; i < vocab; ++i)
    if (isnan(logits[i])) return RETCL_ERROR_INVALID_ARGUMENT;
  if (sampler->temperature == 0.0f || sampler->top_k == 1) {
    *token = (int32_t)argmax(logits, vocab);
    return RETCL_SUCCESS;
  }
  const size_t k = (sampler->top_k == 0 || sampler->top_k > vocab)
                       ? vocab : sampler->top_k;
  scored *c = malloc(vocab * sizeof *c);
  if (!c) return RETCL_ERROR_OUT_OF_MEMORY;
  for (size_t i = 0; i < vocab; ++i) {
    c[i].logit = logits[i];
    c[i].id = (int32_t)i;
  }
  qsort(c, vocab, sizeof *c, by_logit_desc);
  /* softmax over the k best, in double, shifted by the max for range */
  double total = 0;
  const double t = sampler->temperature, top = c[0].logit;
  for (size_t i = 0; i < k; ++i) total += exp((c[i].logit - top) / t);
  const double u = retcl_random_uniform(rng_state) * total;
  double acc = 0;
  size_t pick = k - 1;
  for (size_t i = 0; i < k; ++i) {
    acc += exp((c[i].logit - top) / t);
    if (u < acc) {
      pick = i;
      break;
    }
  }
  *token = c[pick].id;
  free(c);
  return RETCL_SUCCESS;
}
