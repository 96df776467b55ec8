/* growth.h - a series of configurations measured at growing T (the
 * prefill and train suites): the time of the next T is predicted from the
 * last two measured, so that a T expected to exceed its cap is skipped,
 * and the first T skipped or failed stops the series (a larger T would
 * only take longer). */
#ifndef RETCL_BENCH_SUITE_GROWTH_H
#define RETCL_BENCH_SUITE_GROWTH_H

#include <stddef.h>

#include "suite.h"

typedef struct growth {
  double T[2], s[2]; /* the last two measured points (tokens, seconds) */
  int n, stopped;
  char stop_reason[256];
} growth;

/* Marks r skipped, with its reason, when g has stopped or the run at T is
 * predicted to take more than cap_s seconds (the last point scaled by T's
 * ratio to the growth exponent of the last two points, default_exp while
 * there are fewer, clamped to [1, 2]); returns 1 then, 0 when r is to be
 * measured. unit names one timed run in the reason ("run", "step"),
 * cap_option the option that sets cap_s ("--max-prefill-seconds"). */
int growth_skip(const growth *g, size_t T, double default_exp, double cap_s,
                const char *unit, const char *cap_option, rec *r);

/* After r at T: its median becomes the last point when it was measured;
 * otherwise the series stops, and says why in the later T's records. */
void growth_record(growth *g, size_t T, const rec *r);

#endif /* RETCL_BENCH_SUITE_GROWTH_H */
