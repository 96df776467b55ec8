/* growth.h - what the prefill and train suites share, both measuring
 * series of configurations at growing T: the T of a series; the time of
 * the next T predicted from the last two measured, so that a T expected
 * to exceed its cap is skipped, and the first T skipped or failed stops
 * the series (a larger T would only take longer); a configuration's model
 * on a fresh context, and its timed runs. */
#ifndef RETCL_BENCH_SUITE_GROWTH_H
#define RETCL_BENCH_SUITE_GROWTH_H

#include <stddef.h>

#include "models.h"
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

/* The T of a series into Ts: 64 (quick) or 512, doubling while at most
 * max_T, GROWTH_MAX_T of them at most. Returns how many. */
#define GROWTH_MAX_T 16
int growth_lengths(int quick, size_t max_T, size_t Ts[GROWTH_MAX_T]);

/* The model of `kind` on a fresh context (a measurement's workspaces then
 * hold that T's peak, not a larger T's): the context, or NULL with r
 * marked an error and its reason filled. */
retcl_context *growth_open_model(bench_model *m, model_kind kind,
                                 const suite_options *o, const char *dir,
                                 rec *r);

/* One timed run, number i from 0, of a configuration: 0 with *ms its
 * milliseconds, or non-zero with the record's reason filled. */
typedef int (*growth_run_fn)(void *user, int i, double *ms);

/* Up to max_runs runs (64 at most), another only while the time since
 * the first plus the last run's stays within budget_s (long runs are the
 * least noisy, and the suite must stay affordable). r gets their
 * statistics and REC_OK, or REC_ERROR when a run failed. */
void growth_time_runs(growth_run_fn run, void *user, int max_runs,
                      double budget_s, rec *r);

#endif /* RETCL_BENCH_SUITE_GROWTH_H */
