/* growth.c - see growth.h. */
#include "growth.h"

#include <math.h>

static double predict(const growth *g, size_t T, double default_exp) {
  if (g->n == 0) return 0;
  double e = default_exp;
  if (g->n >= 2 && g->s[0] > 0 && g->T[1] > g->T[0])
    e = log(g->s[1] / g->s[0]) / log(g->T[1] / g->T[0]);
  e = e < 1 ? 1 : e > 2 ? 2 : e;
  return g->s[1] * pow((double)T / g->T[1], e);
}

int growth_skip(const growth *g, size_t T, double default_exp, double cap_s,
                const char *unit, const char *cap_option, rec *r) {
  const double pred = predict(g, T, default_exp);
  if (g->stopped) {
    r->status = REC_SKIPPED;
    snprintf(r->reason, sizeof r->reason, "%s", g->stop_reason);
    return 1;
  }
  if (pred > cap_s) {
    r->status = REC_SKIPPED;
    snprintf(r->reason, sizeof r->reason, "predicted %.0f s per %s > %s %.0f",
             pred, unit, cap_option, cap_s);
    return 1;
  }
  return 0;
}

void growth_record(growth *g, size_t T, const rec *r) {
  if (r->status == REC_OK) {
    if (g->n >= 1) g->T[0] = g->T[1], g->s[0] = g->s[1];
    g->T[1] = (double)T;
    g->s[1] = r->st.median_ms * 1e-3;
    ++g->n;
  } else if (!g->stopped) {
    g->stopped = 1;
    snprintf(g->stop_reason, sizeof g->stop_reason,
             "T %zu was %s: larger T not tried", T,
             r->status == REC_SKIPPED ? "skipped" : "an error");
  }
}

int growth_lengths(int quick, size_t max_T, size_t Ts[GROWTH_MAX_T]) {
  int n = 0;
  for (size_t T = quick ? 64 : 512; T <= max_T && n < GROWTH_MAX_T; T *= 2)
    Ts[n++] = T;
  return n;
}

retcl_context *growth_open_model(bench_model *m, model_kind kind,
                                 const suite_options *o, const char *dir,
                                 rec *r) {
  retcl_context *ctx = bench_context_create();
  if (!ctx) {
    r->status = REC_ERROR;
    snprintf(r->reason, sizeof r->reason, "no context");
    return NULL;
  }
  if (model_open(m, kind, ctx, o, dir, r->reason, sizeof r->reason)) {
    r->status = REC_ERROR;
    retcl_context_destroy(ctx);
    return NULL;
  }
  return ctx;
}

void growth_time_runs(growth_run_fn run, void *user, int max_runs,
                      double budget_s, rec *r) {
  double ms[64];
  int n = 0, rc = 0;
  const int most = max_runs < 64 ? max_runs : 64;
  const double t_start = bench_now();
  while (!rc && n < most) {
    if ((rc = run(user, n, &ms[n]))) break;
    ++n;
    if (bench_now() - t_start + ms[n - 1] * 1e-3 > budget_s) break;
  }
  if (n > 0 && !rc) {
    bench_stats_from(ms, n, &r->st);
    r->status = REC_OK;
  } else {
    r->status = REC_ERROR;
  }
}
