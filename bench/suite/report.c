/* report.c - result records, derived rates, progress line and tables. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suite.h"

suite_yardsticks g_yard;
suite_yardsticks g_yard_runs[2];
int g_yard_nruns;
suite_openblas g_openblas;

/* ---- records ------------------------------------------------------------ */

/* Grown by doubling: a full run makes a few hundred records. */
static rec *g_recs;
static int g_nrecs, g_cap;

rec *rec_new(const char *suite) {
  if (g_nrecs == g_cap) {
    int cap = g_cap ? 2 * g_cap : 128;
    rec *p = realloc(g_recs, (size_t)cap * sizeof *p);
    if (!p) {
      fprintf(stderr, "retcl-bench: out of host memory\n");
      exit(1);
    }
    g_recs = p;
    g_cap = cap;
  }
  rec *r = &g_recs[g_nrecs++];
  memset(r, 0, sizeof *r);
  r->suite = suite;
  r->mem.weights = r->mem.cache = r->mem.workspace = -1;
  r->mem.grads = r->mem.train = -1;
  r->recompute = -1;
  return r;
}

int rec_count(void) { return g_nrecs; }
rec *rec_at(int i) { return &g_recs[i]; }

double rec_gflops(const rec *r) {
  return r->status == REC_OK && r->flop > 0 && r->st.median_ms > 0
             ? r->flop / (r->st.median_ms * 1e6)
             : 0;
}
double rec_gbs(const rec *r) {
  return r->status == REC_OK && r->bytes > 0 && r->st.median_ms > 0
             ? r->bytes / (r->st.median_ms * 1e6)
             : 0;
}
double rec_tokens_per_s(const rec *r) {
  return r->status == REC_OK && r->tokens > 0 && r->st.median_ms > 0
             ? r->tokens / (r->st.median_ms * 1e-3)
             : 0;
}
/* Decode: what the model holds to go on (weights + state or KV cache).
 * Prefill: everything held after the call, temporaries included.
 * Train: everything a training step holds: weights, their gradient, the
 * training forward's tape and the context's workspaces. */
long long rec_mem_total(const rec *r) {
  if (!strcmp(r->suite, "train")) {
    const rec_memory *m = &r->mem;
    if (m->weights < 0 || m->grads < 0 || m->train < 0 || m->workspace < 0)
      return -1;
    return m->weights + m->grads + m->train + m->workspace;
  }
  if (r->mem.weights < 0 || r->mem.cache < 0) return -1;
  long long t = r->mem.weights + r->mem.cache;
  if (!strcmp(r->suite, "prefill")) t += r->mem.workspace > 0 ? r->mem.workspace : 0;
  return t;
}

/* ---- helpers ------------------------------------------------------------ */

static double g_t0 = -1;
double suite_elapsed(void) {
  if (g_t0 < 0) g_t0 = bench_now();
  return bench_now() - g_t0;
}

/* ---- progress ----------------------------------------------------------- */

static char g_label[256];
static int g_progress_shown;

static int is_tty(void) {
  static int t = -1;
  if (t < 0) t = isatty(STDERR_FILENO);
  return t;
}

static void progress_write(const char *detail) {
  const int s = (int)suite_elapsed();
  char line[512];
  snprintf(line, sizeof line, "[%s %02d:%02d] %s%s%s", g_label, s / 60, s % 60,
           g_label + strlen(g_label) + 1, detail && *detail ? ": " : "",
           detail ? detail : "");
  if (is_tty()) {
    /* keep it on one terminal line; \033[K clears what a longer one left */
    line[150] = '\0';
    fprintf(stderr, "\r%s\033[K", line);
    g_progress_shown = 1;
  } else {
    fprintf(stderr, "%s\n", line);
  }
  fflush(stderr);
}

/* g_label holds "suite i/n\0what" so a detail can be appended later. */
void progress(const char *suite, int i, int n, const char *fmt, ...) {
  int k = snprintf(g_label, sizeof g_label, "%s %d/%d", suite, i, n);
  if (k < 0 || k >= (int)sizeof g_label - 2) k = (int)sizeof g_label - 2;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_label + k + 1, sizeof g_label - (size_t)k - 1, fmt, ap);
  va_end(ap);
  progress_write(NULL);
}

void progress_detail(const char *fmt, ...) {
  if (!g_label[0]) return;
  char detail[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  /* not a terminal: a log line per fill piece would drown the output */
  if (is_tty()) progress_write(detail);
}

void progress_clear(void) {
  if (g_progress_shown) fprintf(stderr, "\r\033[K");
  g_progress_shown = 0;
  fflush(stderr);
}

/* ---- tables ------------------------------------------------------------- */

static double mib(long long b) { return b < 0 ? NAN : (double)b / 1048576.0; }

void table_header(const char *title, const char *kind) {
  progress_clear();
  printf("\n== %s ==\n", title);
  if (!strcmp(kind, "compute"))
    printf("%-46s %3s %9s %9s %9s %6s %8s %6s %6s %7s\n", "config", "n",
           "median ms", "min ms", "max ms", "spread", "GFLOP/s", "%FMA",
           "xSGEMM", "GB/s");
  else if (!strcmp(kind, "memory"))
    printf("%-46s %3s %9s %9s %9s %6s %8s %6s\n", "config", "n", "median ms",
           "min ms", "max ms", "spread", "GB/s", "xcopy");
  else if (!strcmp(kind, "decode"))
    printf("%-11s %6s %5s %3s %9s %8s %8s %9s %8s %8s %8s %7s %5s %6s\n",
           "model", "ctx", "batch", "n", "ms/step", "min", "max", "tok/s",
           "weights", "cache", "total", "GB/s", "xcopy", "fill s");
  else if (!strcmp(kind, "train"))
    printf("%-21s %6s %3s %9s %9s %9s %8s %8s %6s %8s %8s %9s %9s %9s\n",
           "form", "T", "n", "median s", "min s", "max s", "tok/s",
           "GFLOP/s", "%FMA", "weights", "grads", "tape", "workspace",
           "peak MiB");
  else
    printf("%-21s %6s %3s %10s %10s %10s %8s %8s %6s %8s %8s %9s %9s\n",
           "model", "T", "n", "median ms", "min ms", "max ms", "tok/s",
           "GFLOP/s", "xSGEMM", "weights", "cache", "workspace", "peak MiB");
  fflush(stdout);
}

static void row_failed(const rec *r) {
  printf("%s: %s\n", r->status == REC_SKIPPED ? "skipped" : "ERROR", r->reason);
}

void table_row(const rec *r, const char *kind) {
  progress_clear();
  const double sg = g_yard.sgemm.ok ? g_yard.sgemm.gflops : NAN;
  const double cp = g_yard.copy.ok ? g_yard.copy.gbs : NAN;
  const double fma = g_yard.fma.ok ? g_yard.fma.gflops : NAN;
  const bench_stats *s = &r->st;
  if (!strcmp(kind, "compute") || !strcmp(kind, "memory")) {
    printf("%-46s ", r->name);
    if (r->status != REC_OK) {
      row_failed(r);
    } else if (!strcmp(kind, "compute")) {
      const double g = rec_gflops(r);
      printf("%3d %9.3f %9.3f %9.3f %5.1f%% %8.2f %5.1f%% %6.3f %7.2f\n", s->n,
             s->median_ms, s->min_ms, s->max_ms, 100 * s->spread, g,
             100 * g / fma, g / sg, rec_gbs(r));
    } else {
      const double g = rec_gbs(r);
      printf("%3d %9.3f %9.3f %9.3f %5.1f%% %8.2f %6.3f\n", s->n, s->median_ms,
             s->min_ms, s->max_ms, 100 * s->spread, g, g / cp);
    }
  } else if (!strcmp(kind, "decode")) {
    printf("%-11s %6zu %5zu ", r->model, r->context, r->B);
    if (r->status != REC_OK) {
      row_failed(r);
    } else {
      const double g = rec_gbs(r);
      printf("%3d %9.3f %8.3f %8.3f %9.1f %7.1fM %7.1fM %7.1fM %7.2f %5.2f ",
             s->n, s->median_ms, s->min_ms, s->max_ms, rec_tokens_per_s(r),
             mib(r->mem.weights), mib(r->mem.cache), mib(rec_mem_total(r)), g,
             g / cp);
      if (!strcmp(r->fill, "synthetic")) printf("%6s\n", "synth");
      else printf("%6.1f\n", r->fill_s);
    }
  } else if (!strcmp(kind, "train")) {
    char label[64];
    snprintf(label, sizeof label, "%s%s", r->algorithm,
             r->recompute > 0 ? " recompute" : "");
    printf("%-21s %6zu ", label, r->T);
    if (r->status != REC_OK) {
      row_failed(r);
    } else {
      const double g = rec_gflops(r);
      printf("%3d %9.3f %9.3f %9.3f %8.1f %8.2f %5.1f%% %7.1fM %7.1fM %8.1fM "
             "%8.1fM %9.1f\n",
             s->n, s->median_ms * 1e-3, s->min_ms * 1e-3, s->max_ms * 1e-3,
             rec_tokens_per_s(r), g, 100 * g / fma, mib(r->mem.weights),
             mib(r->mem.grads), mib(r->mem.train), mib(r->mem.workspace),
             mib(rec_mem_total(r)));
    }
  } else {
    char label[64];
    snprintf(label, sizeof label, "%s%s%s", r->model, r->algorithm[0] ? " " : "",
             r->algorithm);
    printf("%-21s %6zu ", label, r->T);
    if (r->status != REC_OK) {
      row_failed(r);
    } else {
      const double g = rec_gflops(r);
      printf("%3d %10.1f %10.1f %10.1f %8.1f %8.2f %6.3f %7.1fM %7.1fM %8.1fM "
             "%9.1f\n",
             s->n, s->median_ms, s->min_ms, s->max_ms, rec_tokens_per_s(r), g,
             g / sg, mib(r->mem.weights), mib(r->mem.cache),
             mib(r->mem.workspace), mib(rec_mem_total(r)));
    }
  }
  fflush(stdout);
}
