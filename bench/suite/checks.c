/* checks.c - the targets, computed from the records of the run:
 * printed at the end and written into the JSON ("checks"). A check whose
 * inputs were not measured (a suite not run, a configuration skipped) has
 * value null and met null. Checks marked informational have no pass/fail
 * (met null) but are reported all the same. */
#include <math.h>
#include <string.h>

#include "suite.h"

/* The OK decode record of model at (context, batch); prefers sweep if given. */
static const rec *find_decode(const char *model, size_t context, size_t B,
                              const char *sweep) {
  const rec *any = NULL;
  for (int i = 0; i < rec_count(); ++i) {
    const rec *r = rec_at(i);
    if (strcmp(r->suite, "decode") || strcmp(r->model, model) ||
        r->context != context || r->B != B || r->status != REC_OK)
      continue;
    if (sweep && !strcmp(r->sweep, sweep)) return r;
    if (!any) any = r;
  }
  return any;
}

static const rec *find_prefill(const char *model, const char *algo, size_t T) {
  for (int i = 0; i < rec_count(); ++i) {
    const rec *r = rec_at(i);
    if (!strcmp(r->suite, "prefill") && !strcmp(r->model, model) &&
        !strcmp(r->algorithm, algo) && r->T == T && r->status == REC_OK)
      return r;
  }
  return NULL;
}

/* Least-squares slope of log(peak - weights) against log T: 1 for memory
 * linear in T, 2 for quadratic. The weights are constant and would flatten
 * the curve, so only what the prefill adds is fitted. */
static double growth_exponent(const char *model, const char *algo, int *npts,
                              size_t *tmin, size_t *tmax) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int n = 0;
  *tmin = 0, *tmax = 0;
  for (int i = 0; i < rec_count(); ++i) {
    const rec *r = rec_at(i);
    if (strcmp(r->suite, "prefill") || strcmp(r->model, model) ||
        strcmp(r->algorithm, algo) || r->status != REC_OK)
      continue;
    const double extra = (double)(rec_mem_total(r) - r->mem.weights);
    if (!(extra > 0)) continue;
    const double x = log((double)r->T), y = log(extra);
    sx += x, sy += y, sxx += x * x, sxy += x * y;
    if (!*tmin || r->T < *tmin) *tmin = r->T;
    if (r->T > *tmax) *tmax = r->T;
    ++n;
  }
  *npts = n;
  if (n < 2) return NAN;
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

static check *add(check *c, int *n, int max, const char *name, const char *what,
                  double value, const char *target, int met) {
  if (*n >= max) return NULL;
  check *k = &c[(*n)++];
  memset(k, 0, sizeof *k);
  snprintf(k->name, sizeof k->name, "%s", name);
  snprintf(k->what, sizeof k->what, "%s", what);
  k->value = value;
  snprintf(k->target, sizeof k->target, "%s", target);
  k->met = isfinite(value) ? met : -1;
  return k;
}

/* ---- train suite ---------------------------------------------------------- */

/* The OK train_step record of (algo, recompute) at T. */
static const rec *find_train(const char *algo, int recompute, size_t T) {
  for (int i = 0; i < rec_count(); ++i) {
    const rec *r = rec_at(i);
    if (!strcmp(r->suite, "train") && !strcmp(r->op, "train_step") &&
        !strcmp(r->algorithm, algo) && r->recompute == recompute &&
        r->T == T && r->status == REC_OK)
      return r;
  }
  return NULL;
}

/* What a training step holds that grows with T: everything but the
 * weights and their gradient (the tape and the workspaces). */
static double train_extra(const rec *r) {
  return (double)(rec_mem_total(r) - r->mem.weights - r->mem.grads);
}

/* Least-squares slope of log(train_extra) against log T for one series,
 * and the records at its smallest and largest T. */
static double train_growth(const char *algo, int recompute, int *npts,
                           const rec **lo, const rec **hi) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int n = 0;
  *lo = *hi = NULL;
  for (int i = 0; i < rec_count(); ++i) {
    const rec *r = rec_at(i);
    if (strcmp(r->suite, "train") || strcmp(r->op, "train_step") ||
        strcmp(r->algorithm, algo) || r->recompute != recompute ||
        r->status != REC_OK)
      continue;
    const double extra = train_extra(r);
    if (!(extra > 0)) continue;
    const double x = log((double)r->T), y = log(extra);
    sx += x, sy += y, sxx += x * x, sxy += x * y;
    if (!*lo || r->T < (*lo)->T) *lo = r;
    if (!*hi || r->T > (*hi)->T) *hi = r;
    ++n;
  }
  *npts = n;
  if (n < 2) return NAN;
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

static int train_checks(const suite_options *o, check *c, int n, int max) {
  char what[256], name[64];
  check *k;
  double v;
  /* training memory against T, each series */
  static const struct {
    const char *algo;
    int recompute;
  } ser[4] = {{"chunkwise", 0}, {"chunkwise", 1}, {"parallel", 0},
              {"parallel", 1}};
  for (int i = 0; i < 4; ++i) {
    const int chunked = !strcmp(ser[i].algo, "chunkwise");
    int np;
    const rec *lo, *hi;
    v = train_growth(ser[i].algo, ser[i].recompute, &np, &lo, &hi);
    snprintf(name, sizeof name, "train_memory_exponent_%s%s", ser[i].algo,
             ser[i].recompute ? "_recompute" : "");
    snprintf(what, sizeof what,
             "exponent e of training-step memory (peak - weights - "
             "gradient) ~ T^e, %s%s, batch 1",
             ser[i].algo,
             ser[i].recompute ? " with recomputation" : ", no recomputation");
    k = add(c, &n, max, name, what, v,
            chunked ? "<= 1.25 (linear)" : "informational", chunked ? v <= 1.25 : -1);
    if (k && np >= 2)
      snprintf(k->note, sizeof k->note,
               "fit over %d points, T %zu..%zu; that memory at T %zu / at T "
               "%zu: %.2f (linear: %.0f); peak %.1f / %.1f MiB",
               np, lo->T, hi->T, hi->T, lo->T, train_extra(hi) / train_extra(lo),
               (double)hi->T / (double)lo->T,
               (double)rec_mem_total(hi) / 1048576.0,
               (double)rec_mem_total(lo) / 1048576.0);
  }
  /* the retention backward against the FMA peak */
  static const char *const ralgos[2] = {"chunkwise", "parallel"};
  for (int a = 0; a < 2; ++a) {
    const rec *bw = NULL, *fw = NULL;
    for (int i = 0; i < rec_count(); ++i) {
      const rec *r = rec_at(i);
      if (strcmp(r->suite, "train") || strcmp(r->algorithm, ralgos[a]) ||
          r->status != REC_OK)
        continue;
      if (!strcmp(r->op, "retention_backward")) bw = r;
      if (!strcmp(r->op, "retention")) fw = r;
    }
    v = bw && g_yard.fma.ok ? rec_gflops(bw) / g_yard.fma.gflops : NAN;
    snprintf(name, sizeof name, "retention_backward_fma_fraction_%s",
             ralgos[a]);
    if (bw)
      snprintf(what, sizeof what,
               "retention backward (torchscale, %s) GFLOP/s / FMA peak at B "
               "%zu, H %zu, D %zu, T %zu; flop = 2 x the forward's",
               ralgos[a], bw->B, bw->H, bw->Dk, bw->T);
    else
      snprintf(what, sizeof what,
               "retention backward (torchscale, %s) GFLOP/s / FMA peak", ralgos[a]);
    k = add(c, &n, max, name, what, v, ">= 0.30", v >= 0.30);
    if (k && bw && fw)
      snprintf(k->note, sizeof k->note,
               "%.1f GFLOP/s; backward %.1f ms, forward %.1f ms (%.2f x; "
               "forward %.1f%% of the peak)",
               rec_gflops(bw), bw->st.median_ms, fw->st.median_ms,
               bw->st.median_ms / fw->st.median_ms,
               g_yard.fma.ok ? 100 * rec_gflops(fw) / g_yard.fma.gflops : NAN);
  }
  /* a training step at T 2048 in model arithmetic: the best of the four
   * configurations, each in the note */
  const size_t Tt = o->quick ? 128 : 2048;
  const rec *best = NULL;
  char note[256] = "";
  size_t len = 0;
  for (int i = 0; i < 4; ++i) {
    const rec *r = find_train(ser[i].algo, ser[i].recompute, Tt);
    if (!r || !g_yard.fma.ok) continue;
    if (!best || rec_gflops(r) > rec_gflops(best)) best = r;
    if (len < sizeof note)
      len += (size_t)snprintf(note + len, sizeof note - len, "%s%s%s %.3f",
                              len ? "; " : "", ser[i].algo,
                              ser[i].recompute ? "+recompute" : "",
                              rec_gflops(r) / g_yard.fma.gflops);
  }
  v = best ? rec_gflops(best) / g_yard.fma.gflops : NAN;
  snprintf(what, sizeof what,
           "training step GFLOP/s (model arithmetic: 3 x the forward's "
           "projections) / FMA peak, d %zu, L %zu, T %zu, batch 1: best form",
           o->d, o->layers, Tt);
  k = add(c, &n, max, "train_step_fma_fraction", what, v, ">= 0.25",
          v >= 0.25);
  if (k && best)
    snprintf(k->note, sizeof k->note, "best: %s%s (%.2f s per step); %s",
             best->algorithm, best->recompute > 0 ? "+recompute" : "",
             best->st.median_ms * 1e-3, note);
  return n;
}

/* ---- serve suite ---------------------------------------------------------- */

static const rec *find_serve(const char *op) {
  for (int i = 0; i < rec_count(); ++i) {
    const rec *r = rec_at(i);
    if (!strcmp(r->suite, "serve") && !strcmp(r->op, op) &&
        r->status == REC_OK)
      return r;
  }
  return NULL;
}

static int serve_checks(const suite_options *o, check *c, int n, int max) {
  char what[256];
  check *k;
  /* packed prefill: time / (rectangular time / padding ratio) */
  const rec *pa = find_serve("prefill_packed"), *pb = find_serve("prefill_rect");
  double v = NAN;
  if (pa && pb && pb->tokens > 0)
    v = pa->st.median_ms / (pb->st.median_ms * pa->tokens / pb->tokens);
  snprintf(what, sizeof what,
           "packed prefill of 8 sequences 1..%zu (chunkwise) / (rectangular "
           "8 x %zu / padding ratio)",
           pa ? pa->T : (size_t)2048, pa ? pa->T : (size_t)2048);
  k = add(c, &n, max, "serve_packed_prefill_ratio", what, v, "<= 1.15",
          v <= 1.15);
  if (k && pa && pb)
    snprintf(k->note, sizeof k->note,
             "packed %.0f ms (spread %.0f%%), rectangular %.0f ms (spread "
             "%.0f%%), %d rounds; padding ratio %.3f; median of per-round "
             "ratios %.3f",
             pa->st.median_ms, 100 * pa->st.spread, pb->st.median_ms,
             100 * pb->st.spread, pa->st.n, pb->tokens / pa->tokens,
             pa->ref_ratio);
  /* the pool's decode step against the rectangular one */
  const rec *da = find_serve("decode_pool"), *db = find_serve("decode_rect");
  v = da && db ? da->st.median_ms / db->st.median_ms : NAN;
  k = add(c, &n, max, "serve_pool_decode_ratio",
          "decode step of 8 sequences at different positions through the "
          "pool / rectangular batch-8 step (recurrent)",
          v, "<= 1.05", v <= 1.05);
  if (k && da && db)
    snprintf(k->note, sizeof k->note,
             "pool %.2f ms (spread %.0f%%), rectangular %.2f ms (spread "
             "%.0f%%), %d steps each; median of per-step ratios %.3f",
             da->st.median_ms, 100 * da->st.spread, db->st.median_ms,
             100 * db->st.spread, da->st.n, da->ref_ratio);
  (void)o;
  return n;
}

int checks_compute(const suite_options *o, check *c, int max) {
  int n = 0;
  char what[256];
  check *k;
  const size_t tc = o->target_context, tb = o->target_batch;

  /* decode at the target point */
  const rec *rn = find_decode("retnet", tc, tb, "target");
  const rec *tf = find_decode("transformer", tc, tb, "target");
  snprintf(what, sizeof what,
           "decode tokens/s, RetNet / Transformer, context %zu, batch %zu", tc,
           tb);
  double v = rn && tf ? rec_tokens_per_s(rn) / rec_tokens_per_s(tf) : NAN;
  add(c, &n, max, "decode_throughput_ratio", what, v, ">= 8.4", v >= 8.4);
  snprintf(what, sizeof what,
           "memory held to decode (weights + state / KV cache), RetNet / "
           "Transformer, context %zu, batch %zu",
           tc, tb);
  v = rn && tf ? (double)rec_mem_total(rn) / (double)rec_mem_total(tf) : NAN;
  add(c, &n, max, "decode_memory_ratio", what, v, "<= 0.30", v <= 0.30);

  /* latency at batch 1, the paper's other headline: informational */
  const rec *rn1 = find_decode("retnet", tc, 1, "context");
  const rec *tf1 = find_decode("transformer", tc, 1, "context");
  snprintf(what, sizeof what,
           "decode latency, Transformer / RetNet, context %zu, batch 1", tc);
  v = rn1 && tf1 ? tf1->st.median_ms / rn1->st.median_ms : NAN;
  add(c, &n, max, "decode_latency_ratio_batch1", what, v,
      "informational (paper: 15.6)", -1);

  /* RetNet's latency does not grow with the context */
  const size_t c0 = o->min_context;
  const rec *lo = find_decode("retnet", c0, 1, "context");
  const rec *hi = find_decode("retnet", o->max_context, 1, "context");
  snprintf(what, sizeof what,
           "RetNet decode latency, context %zu / context %zu, batch 1",
           o->max_context, c0);
  v = lo && hi ? hi->st.median_ms / lo->st.median_ms : NAN;
  k = add(c, &n, max, "retnet_latency_flatness", what, v, "<= 1.10", v <= 1.10);
  if (k && hi && hi->ref_ratio > 0)
    snprintf(k->note, sizeof k->note,
             "against a context-%zu reference stepped interleaved with it: "
             "%.3f",
             c0, hi->ref_ratio);

  /* batching */
  const rec *b1 = find_decode("retnet", o->batch_context, 1, "batch");
  const rec *b16 = find_decode("retnet", o->batch_context, 16, "batch");
  snprintf(what, sizeof what,
           "RetNet per-sequence decode latency (one step), batch 16 / batch "
           "1, context %zu",
           o->batch_context);
  /* the ratio to a batch-1 step interleaved with the batch-16 steps where
   * there is one (the same load on both), else the two sweep points' */
  const double swept = b1 && b16 ? b16->st.median_ms / b1->st.median_ms : NAN;
  v = b16 && b16->ref_ratio > 0 ? b16->ref_ratio : swept;
  k = add(c, &n, max, "retnet_batch16_latency_ratio", what, v, "<= 2", v <= 2);
  if (k && b16 && b16->ref_ratio > 0)
    snprintf(k->note, sizeof k->note,
             "against a batch-1 step interleaved with it; the two batch "
             "sweep points: %.3f",
             swept);

  /* prefill memory growth */
  static const char *const series[3][3] = {
      {"retnet", "chunkwise", "<= 1.25 (linear)"},
      {"retnet", "parallel", "informational (tiled: linear)"},
      {"transformer", "", "informational"}};
  for (int i = 0; i < 3; ++i) {
    int np;
    size_t t0, t1;
    v = growth_exponent(series[i][0], series[i][1], &np, &t0, &t1);
    char name[64];
    snprintf(name, sizeof name, "prefill_memory_exponent_%s",
             i == 2 ? "transformer" : series[i][1]);
    snprintf(what, sizeof what,
             "exponent e of prefill memory (peak - weights) ~ T^e, %s%s%s",
             series[i][0], i < 2 ? " " : "", series[i][1]);
    k = add(c, &n, max, name, what, v, series[i][2], i == 0 ? v <= 1.25 : -1);
    if (k && np >= 2)
      snprintf(k->note, sizeof k->note, "fit over %d points, T %zu..%zu", np,
               t0, t1);
  }
  const size_t Tm = o->quick ? 256 : 8192;
  const rec *pc = find_prefill("retnet", "chunkwise", Tm);
  const rec *pt = find_prefill("transformer", "", Tm);
  snprintf(what, sizeof what,
           "prefill peak memory at T %zu, RetNet chunkwise / Transformer", Tm);
  v = pc && pt ? (double)rec_mem_total(pc) / (double)rec_mem_total(pt) : NAN;
  add(c, &n, max, "prefill_memory_ratio", what, v, "< 1", v < 1);
  /* prefill speed: the model's arithmetic (prefill_flop: projections of
   * every token, retention, the last token's logits) per second */
  const size_t Tp = o->quick ? 256 : 2048;
  const rec *pf = find_prefill("retnet", "chunkwise", Tp);
  snprintf(what, sizeof what,
           "prefill GFLOP/s (model arithmetic) / FMA peak, RetNet chunkwise, "
           "d %zu, L %zu, T %zu, batch 1",
           o->d, o->layers, Tp);
  v = pf && g_yard.fma.ok ? rec_gflops(pf) / g_yard.fma.gflops : NAN;
  k = add(c, &n, max, "prefill_fma_fraction", what, v, ">= 0.35", v >= 0.35);
  if (k && pf)
    snprintf(k->note, sizeof k->note, "%.0f tokens/s, %.1f GFLOP/s",
             rec_tokens_per_s(pf), rec_gflops(pf));
  /* GEMM: RetCL's GEMM (retcl_gemm nt) at 512 rows and more, every model
   * shape; the worst is the value, the median in the note */
  static const struct {
    const char *name, *what, *target;
    double min;
    int field; /* 0 fraction of the FMA peak, 1 ratio to OpenBLAS */
  } gchecks[] = {
      {"gemm_fraction_of_fma_peak",
       "RetCL GEMM (retcl_gemm nt) GFLOP/s / FMA peak, model shapes at >= 512 "
       "rows: worst",
       ">= 0.50", 0.50, 0},
      {"gemm_ratio_to_openblas",
       "RetCL GEMM (retcl_gemm nt) GFLOP/s / OpenBLAS SGEMM of the same "
       "shape, >= 512 rows: worst",
       ">= 0.60", 0.60, 1}};
  for (int q = 0; q < 2; ++q) {
    double vals[64];
    const rec *worst = NULL;
    int nv = 0;
    for (int i = 0; i < rec_count() && nv < 64; ++i) {
      const rec *r = rec_at(i);
      if (strcmp(r->suite, "gemm") || strcmp(r->op, "gemm") ||
          strcmp(r->gcase, "nt") || r->M < 512 || r->status != REC_OK)
        continue;
      const double x = gchecks[q].field == 0
                           ? (g_yard.fma.ok ? rec_gflops(r) / g_yard.fma.gflops : 0)
                           : r->ratio_openblas;
      if (!(x > 0)) continue;
      if (!worst || x < vals[0] ) {
        /* keep the worst at vals[0] */
        if (nv) vals[nv] = vals[0];
        vals[0] = x;
        worst = r;
      } else {
        vals[nv] = x;
      }
      ++nv;
    }
    v = nv ? vals[0] : NAN;
    k = add(c, &n, max, gchecks[q].name, gchecks[q].what, v, gchecks[q].target,
            v >= gchecks[q].min);
    if (k && nv) {
      /* median of the values */
      for (int a = 1; a < nv; ++a)
        for (int b = a; b > 0 && vals[b] < vals[b - 1]; --b) {
          const double t = vals[b];
          vals[b] = vals[b - 1], vals[b - 1] = t;
        }
      const double med = nv % 2 ? vals[nv / 2]
                                : 0.5 * (vals[nv / 2 - 1] + vals[nv / 2]);
      int met = 0;
      for (int a = 0; a < nv; ++a) met += vals[a] >= gchecks[q].min;
      snprintf(k->note, sizeof k->note,
               "median %.3f over %d shapes, %d of them met; worst: %s %s "
               "M %zu N %zu K %zu",
               med, nv, met, worst->model, worst->proj, worst->M, worst->N,
               worst->K);
    }
  }
  /* The retention backward at issue 11's shape: B 1, H 8, Dk = Dv = 128,
   * T 4096 (kernels suite, T series); the better algorithm is the value,
   * each one's fraction in the note. */
  {
    double best = NAN, frac[3] = {NAN, NAN, NAN};
    for (int i = 0; i < rec_count(); ++i) {
      const rec *r = rec_at(i);
      if (strcmp(r->suite, "kernels") || strcmp(r->op, "retention_backward") ||
          r->sweep[0] || r->B != 1 || r->H != 8 || r->Dk != 128 ||
          r->Dv != 128 || r->T != 4096 || r->status != REC_OK ||
          !g_yard.fma.ok)
        continue;
      const double f = rec_gflops(r) / g_yard.fma.gflops;
      for (int a = 0; a < 3; ++a)
        if (!strcmp(r->algorithm,
                    bench_algorithm_name((retcl_algorithm)a)))
          frac[a] = f;
      if (!(best >= f)) best = f;
    }
    k = add(c, &n, max, "retention_bwd_fraction_of_fma_peak",
            "retention backward GFLOP/s / FMA peak, B 1, H 8, Dk = Dv = 128, "
            "T 4096, raw form: the better algorithm",
            best, ">= 0.30", best >= 0.30);
    if (k && isfinite(best))
      snprintf(k->note, sizeof k->note,
               "parallel %.3f, recurrent %.3f, chunkwise %.3f (chunk %zu)",
               frac[RETCL_ALGO_PARALLEL], frac[RETCL_ALGO_RECURRENT],
               frac[RETCL_ALGO_CHUNKWISE], o->chunk);
  }
  n = train_checks(o, c, n, max);
  n = serve_checks(o, c, n, max);
  /* a smoke test's sizes are not the targets' */
  if (o->quick)
    for (int i = 0; i < n; ++i) {
      c[i].met = -1;
      snprintf(c[i].note, sizeof c[i].note,
               "--quick: sizes too small for the targets");
    }
  return n;
}

void checks_print(const check *c, int n) {
  printf("\n== checks (issue targets) ==\n");
  for (int i = 0; i < n; ++i) {
    const char *verdict = c[i].met < 0    ? (isfinite(c[i].value) ? "info" : "n/a")
                          : c[i].met ? "MET"
                                      : "NOT MET";
    printf("%-8s %-41s %10.3f  target %-28s %s\n", verdict, c[i].name,
           c[i].value, c[i].target, c[i].what);
    if (c[i].note[0]) printf("%-8s %-41s %s\n", "", "", c[i].note);
  }
}
