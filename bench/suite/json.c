/* json.c - the JSON file of a run (schema: docs/bench-json.md). Written by
 * hand: flat objects of strings and numbers need no library, and the
 * benchmark then depends on nothing the library does not. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "suite.h"

typedef struct jw {
  FILE *f;
  int first; /* no comma before the next member */
} jw;

static void key(jw *w, const char *k) {
  fprintf(w->f, "%s\"%s\": ", w->first ? "" : ", ", k);
  w->first = 0;
}
static void jstr(jw *w, const char *k, const char *v) {
  key(w, k);
  if (v && *v) bench_json_string(w->f, v);
  else fputs("null", w->f);
}
/* NaN, infinities and "not measured" (ok == 0) become null. */
static void jnum(jw *w, const char *k, double v, int ok) {
  key(w, k);
  if (ok && isfinite(v)) fprintf(w->f, "%.6g", v);
  else fputs("null", w->f);
}
static void jint(jw *w, const char *k, long long v) {
  key(w, k);
  if (v >= 0) fprintf(w->f, "%lld", v);
  else fputs("null", w->f);
}
static void jbool(jw *w, const char *k, int v) {
  key(w, k);
  fputs(v < 0 ? "null" : v ? "true" : "false", w->f);
}
/* An array of the names[i] whose bit 1 << i is set in bits. */
static void jnames(jw *w, const char *k, int bits, const char *const *names,
                   int n) {
  key(w, k);
  fputc('[', w->f);
  for (int i = 0, m = 0; i < n; ++i)
    if (bits & (1 << i)) fprintf(w->f, "%s\"%s\"", m++ ? ", " : "", names[i]);
  fputc(']', w->f);
}
static void open_obj(jw *w, const char *k) {
  if (k) key(w, k);
  fputc('{', w->f);
  w->first = 1;
}
static void close_obj(jw *w) {
  fputc('}', w->f);
  w->first = 0;
}

static void stats(jw *w, const bench_stats *s, int ok) {
  jint(w, "n", ok ? s->n : -1);
  jnum(w, "median_ms", s->median_ms, ok);
  jnum(w, "min_ms", s->min_ms, ok);
  jnum(w, "max_ms", s->max_ms, ok);
  jnum(w, "spread", s->spread, ok);
}

/* Size options written as they are: JSON key and place in suite_options. */
typedef struct size_field {
  const char *key;
  size_t off;
} size_field;
#define SF(k, f) {k, offsetof(suite_options, f)}
static void jsizes(jw *w, const suite_options *o, const size_field *f,
                   size_t n) {
  for (size_t i = 0; i < n; ++i)
    jint(w, f[i].key, (long long)*(const size_t *)((const char *)o + f[i].off));
}

static void env(jw *w, const char *name) { jstr(w, name, getenv(name)); }

/* The value of yardstick `which` (0 FMA peak, 1 SGEMM, 2 copy) in y, and
 * whether it was measured. */
static double yard_value(const suite_yardsticks *y, int which, int *ok) {
  *ok = which == 0 ? y->fma.ok : which == 1 ? y->sgemm.ok : y->copy.ok;
  return which == 0   ? y->fma.gflops
         : which == 1 ? y->sgemm.gflops
                      : y->copy.gbs;
}

/* The members every yardstick has: its rate (`rate_key`, the better of the
 * start and end values), "start_end": [value at the start, value at the
 * end], then, after `extra` (the yardstick's own members, may be NULL),
 * its samples' statistics and error. */
static void yardstick(jw *w, const char *name, const char *rate_key, int which,
                      const bench_stats *st, const char *error,
                      void (*extra)(jw *w)) {
  int ok;
  const double v = yard_value(&g_yard, which, &ok);
  open_obj(w, name);
  jnum(w, rate_key, v, ok);
  key(w, "start_end");
  fputc('[', w->f);
  for (int i = 0; i < 2; ++i) {
    int ok_i;
    const double v_i = yard_value(&g_yard_runs[i], which, &ok_i);
    if (i) fputs(", ", w->f);
    if (i < g_yard_nruns && ok_i && isfinite(v_i)) fprintf(w->f, "%.6g", v_i);
    else fputs("null", w->f);
  }
  fputc(']', w->f);
  if (extra) extra(w);
  stats(w, st, ok);
  jstr(w, "error", error);
  close_obj(w);
}

static void fma_extra(jw *w) {
  const bench_fma_result *f = &g_yard.fma;
  jstr(w, "statistic", "fastest sample of the best vector width");
  jint(w, "best_width", f->ok ? f->width : -1);
  open_obj(w, "gflops_by_width");
  for (int i = 0; i < BENCH_FMA_WIDTHS; ++i) {
    char k[8];
    snprintf(k, sizeof k, "%d", f->widths[i] ? f->widths[i] : 1 << i);
    jnum(w, k, f->gflops_by_width[i], f->gflops_by_width[i] > 0);
  }
  close_obj(w);
}
static void sgemm_extra(jw *w) {
  /* C[size, size] = A B; null when skipped */
  jint(w, "size", g_yard.sgemm.n ? (long long)g_yard.sgemm.n : -1);
}
static void copy_extra(jw *w) {
  jint(w, "bytes", g_yard.copy.bytes ? (long long)g_yard.copy.bytes : -1);
}

static int o_suites; /* the run's suites, for yardsticks() */

static void yardsticks(jw *w) {
  const suite_yardsticks *y = &g_yard;
  open_obj(w, "yardsticks");
  yardstick(w, "fma_peak", "gflops", 0, &y->fma.stats, y->fma.error, fma_extra);
  yardstick(w, "sgemm", "gflops", 1, &y->sgemm.stats, y->sgemm.error,
            sgemm_extra);
  yardstick(w, "copy", "gbs", 2, &y->copy.stats, y->copy.error, copy_extra);
  /* OpenBLAS: measured per shape in the gemm suite (its records); here
   * only whether it ran and how */
  if (o_suites & SUITE_GEMM) {
    open_obj(w, "openblas");
    jbool(w, "available", g_openblas.available);
    jint(w, "threads", g_openblas.available ? g_openblas.threads : -1);
    jstr(w, "config", g_openblas.config);
    jstr(w, "error", g_openblas.available ? NULL : g_openblas.error);
    close_obj(w);
  }
  close_obj(w);
}

static const char *status_name(rec_status s) {
  return s == REC_OK ? "ok" : s == REC_SKIPPED ? "skipped" : "error";
}

static void record(jw *w, const rec *r) {
  const int ok = r->status == REC_OK;
  const suite_yardsticks *y = &g_yard;
  open_obj(w, NULL);
  jstr(w, "suite", r->suite);
  jstr(w, "op", r->op);
  jstr(w, "model", r->model);
  jstr(w, "algorithm", r->algorithm);
  jstr(w, "sweep", r->sweep);
  jstr(w, "name", r->name);
  jstr(w, "status", status_name(r->status));
  jstr(w, "reason", r->reason);
  jint(w, "B", (long long)r->B);
  jint(w, "T", r->T ? (long long)r->T : -1);
  jint(w, "H", r->H ? (long long)r->H : -1);
  jint(w, "Dk", r->Dk ? (long long)r->Dk : -1);
  jint(w, "Dv", r->Dv ? (long long)r->Dv : -1);
  jint(w, "chunk", r->chunk ? (long long)r->chunk : -1);
  jint(w, "context", r->context ? (long long)r->context : -1);
  stats(w, &r->st, ok);
  jnum(w, "flop", r->flop, r->flop > 0);
  const double g = rec_gflops(r), b = rec_gbs(r);
  jnum(w, "gflops", g, g > 0);
  jnum(w, "fraction_of_fma_peak", g / y->fma.gflops, g > 0 && y->fma.ok);
  jnum(w, "ratio_to_sgemm", g / y->sgemm.gflops, g > 0 && y->sgemm.ok);
  jnum(w, "bytes", r->bytes, r->bytes > 0);
  jnum(w, "gbs", b, b > 0);
  jnum(w, "ratio_to_copy", b / y->copy.gbs, b > 0 && y->copy.ok);
  jnum(w, "tokens_per_s", rec_tokens_per_s(r), rec_tokens_per_s(r) > 0);
  open_obj(w, "memory");
  jint(w, "weights_bytes", r->mem.weights);
  jint(w, "cache_bytes", r->mem.cache);
  jint(w, "workspace_bytes", r->mem.workspace);
  jint(w, "grads_bytes", r->mem.grads);
  jint(w, "train_bytes", r->mem.train);
  jint(w, "total_bytes", rec_mem_total(r));
  close_obj(w);
  jstr(w, "fill", r->fill);
  jnum(w, "fill_seconds", r->fill_s, r->fill_s > 0);
  jnum(w, "ratio_to_reference", r->ref_ratio, r->ref_ratio > 0);
  jint(w, "M", r->M ? (long long)r->M : -1);
  jint(w, "N", r->N ? (long long)r->N : -1);
  jint(w, "K", r->K ? (long long)r->K : -1);
  jstr(w, "case", r->gcase);
  jstr(w, "projection", r->proj);
  jnum(w, "ratio_to_clblast", r->ratio_clblast, r->ratio_clblast > 0);
  jnum(w, "ratio_to_openblas", r->ratio_openblas, r->ratio_openblas > 0);
  jint(w, "calls_per_run", r->calls_per_run > 0 ? r->calls_per_run : -1);
  jbool(w, "recompute", r->recompute);
  jstr(w, "form", r->form);
  jstr(w, "weights", r->wtype);
  const int m = r->ranks > 0;
  jint(w, "ranks", m ? r->ranks : -1);
  jint(w, "rank", m ? r->rank : -1);
  jint(w, "first_token", m && r->rank >= 0 ? (long long)r->t0 : -1);
  jnum(w, "local_ms", r->local_ms, m && !r->layers);
  jnum(w, "exchange_ms", r->exchange_ms, m);
  jnum(w, "finish_ms", r->finish_ms, m && !r->layers);
  jnum(w, "comm_bytes_sent", r->comm_sent, m);
  jnum(w, "comm_bytes_received", r->comm_received, m);
  jnum(w, "pair_bytes", r->pair_bytes, m && r->pair_bytes > 0);
  jnum(w, "control_bytes", r->control_bytes, m);
  jint(w, "layers", r->layers ? (long long)r->layers : -1);
  jnum(w, "staging_ms", r->staging_ms, m && r->layers);
  jnum(w, "ratio_to_one_rank", r->one_rank_ratio, r->one_rank_ratio > 0);
  close_obj(w);
}

int write_json(const char *path, const suite_options *o,
               const bench_device_info *dev, double wall_s) {
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    return 1;
  }
  jw w = {f, 1};
  char date[32] = "";
  const time_t now = time(NULL);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));

  open_obj(&w, NULL);
  jstr(&w, "schema", "retcl-bench/1");
  jstr(&w, "program", "retcl-bench");
  jstr(&w, "retcl_version", retcl_version_string());
  jstr(&w, "command", o->command);
  jstr(&w, "date", date);
  jnum(&w, "wall_seconds", wall_s, 1);
  fputs("\n ", f);
  static const char *const suites[] = {"kernels", "decode", "prefill", "gemm",
                                       "train",   "serve",  "weights", "mpi"};
  jnames(&w, "suites", o->suites, suites, 8);
  fputs("\n ", f);
  open_obj(&w, "device");
  jstr(&w, "platform", dev->platform);
  jstr(&w, "name", dev->name);
  jstr(&w, "vendor", dev->vendor);
  jstr(&w, "driver", dev->driver);
  jstr(&w, "opencl_version", dev->version);
  jstr(&w, "type", (dev->type & CL_DEVICE_TYPE_GPU)   ? "GPU"
                   : (dev->type & CL_DEVICE_TYPE_CPU) ? "CPU"
                                                      : "other");
  jint(&w, "compute_units", dev->compute_units);
  jint(&w, "clock_mhz", dev->clock_mhz);
  jint(&w, "global_mem_bytes", (long long)dev->global_mem);
  close_obj(&w);
  fputs("\n ", f);
  open_obj(&w, "environment");
  env(&w, "RETCL_DEVICE");
  env(&w, "RETCL_PLATFORM");
  env(&w, "RETCL_KERNEL_PATHS");
  env(&w, "POCL_DEVICES");
  env(&w, "POCL_MEMORY_LIMIT");
  env(&w, "OPENBLAS_CORETYPE");
  close_obj(&w);
  fputs("\n ", f);
  open_obj(&w, "options");
  jbool(&w, "quick", o->quick);
  static const char *const ops[] = {"rotate", "group_norm", "retention",
                                    "retention_backward"};
  jnames(&w, "ops", o->ops, ops, 4);
  static const char *const algorithm_names[] = {"parallel", "recurrent",
                                                "chunkwise"};
  const int algo_bits = (o->algos >> RETCL_ALGO_PARALLEL & 1) |
                        (o->algos >> RETCL_ALGO_RECURRENT & 1) << 1 |
                        (o->algos >> RETCL_ALGO_CHUNKWISE & 1) << 2;
  jnames(&w, "algorithms", algo_bits, algorithm_names, 3);
  jstr(&w, "retention_form", o->torchscale ? "torchscale" : "raw");
  jbool(&w, "no_sgemm", o->no_sgemm);
  jint(&w, "repeats", o->repeats);
  jint(&w, "prefill_repeats", o->prefill_repeats);
  jint(&w, "warmup", o->warmup);
  jint(&w, "steps", (long long)o->steps);
  jstr(&w, "tf_fill", o->tf_synthetic ? "synthetic" : "prefill");
  jstr(&w, "timer", o->timer == BENCH_TIMER_HOST ? "host" : "events");
  jnum(&w, "max_seconds", o->max_seconds, 1);
  jnum(&w, "max_fill_seconds", o->max_fill, 1);
  jnum(&w, "max_prefill_seconds", o->max_prefill, 1);
  jnum(&w, "max_gemm_seconds", o->max_gemm, 1);
  jnum(&w, "max_train_seconds", o->max_train, 1);
  static const size_field sizes[] = {
      SF("batch_context", batch_context), SF("target_context", target_context),
      SF("target_batch", target_batch),   SF("min_context", min_context),
      SF("max_context", max_context),     SF("max_prefill_T", max_T),
      SF("kernel_max_T", kernel_max_T),   SF("kernel_min_T", kernel_min_T),
      SF("max_train_T", max_train_T)};
  jsizes(&w, o, sizes, sizeof sizes / sizeof sizes[0]);
  close_obj(&w);
  fputs("\n ", f);
  open_obj(&w, "model");
  static const size_field shape[] = {
      SF("embed_dim", d),    SF("value_embed_dim", d), SF("heads", heads),
      SF("ffn_dim", ffn),    SF("layers", layers),     SF("vocab_size", vocab),
      SF("chunk_size", chunk)};
  jsizes(&w, o, shape, sizeof shape / sizeof shape[0]);
  jstr(&w, "dtype", storage_name(o->weights));
  close_obj(&w);
  fputs("\n ", f);
  o_suites = o->suites;
  yardsticks(&w);
  fputs(",\n \"results\": [", f);
  for (int i = 0; i < rec_count(); ++i) {
    fputs(i ? ",\n  " : "\n  ", f);
    w.first = 1;
    record(&w, rec_at(i));
  }
  fputs("\n ],\n \"checks\": [", f);
  check cs[32];
  const int nc = checks_compute(o, cs, 32);
  for (int i = 0; i < nc; ++i) {
    fputs(i ? ",\n  " : "\n  ", f);
    w.first = 1;
    open_obj(&w, NULL);
    jstr(&w, "name", cs[i].name);
    jstr(&w, "what", cs[i].what);
    jnum(&w, "value", cs[i].value, 1);
    jstr(&w, "target", cs[i].target);
    jbool(&w, "met", cs[i].met);
    jstr(&w, "note", cs[i].note);
    close_obj(&w);
  }
  fputs("\n ]\n}\n", f);
  if (fclose(f) != 0) {
    perror(path);
    return 1;
  }
  return 0;
}
