/* decay.c - RetNet's default per-head decays (docs/design.md §1.2). */
#include "retcl.h"

#include "runtime/status.h"

#include <math.h>

retcl_status retcl_default_log_decay(size_t heads, float *log_decay) {
  if (!log_decay) return RETCL_ERROR_INVALID_ARGUMENT;
  if (heads == 0) return RETCL_ERROR_INVALID_SIZE;
  /* log(1 - 2^(-5-h)) in double: for h >= 20, γ itself rounds to 1 in fp32,
   * but its logarithm stays representable. */
  for (size_t h = 0; h < heads; ++h)
    log_decay[h] = (float)log1p(-ldexp(1.0, -5 - (int)h));
  return RETCL_SUCCESS;
}
