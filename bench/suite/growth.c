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
