/* mpi_model.c - the mpi suite's model part: the split models of
 * retcl_mpi_model_load (docs/hpc.md) against the same model on one rank,
 * on a random checkpoint of the suite's model (d 512, H 8, FFN 1024, L 4,
 * vocab 1000, chunk 64; --quick: d 64, H 2, L 2) in a temporary folder:
 *
 *   sequence split, prefill (retcl_model_forward_last, chunkwise, batch 1,
 *     a fresh decode state per call), T 2048 and 8192 (--max-prefill-T
 *     sets the second), each rank its slice (multiples of the chunk, the
 *     last rank takes the rest);
 *   heads split, prefill as above at T 2048 (every rank the whole tokens);
 *   heads split, decode steps (retcl_model_decode_step through a pool) at
 *     batch 1 and 8, 8 steps per sample.
 *
 * The one-rank run is measured in the same invocation, interleaved: rank 0
 * alone runs the plain model (retcl_model_load_as on its own context, no
 * MPI) while the other ranks wait asleep (MPI_Ibcast, polled every
 * 0.2 ms: MPI's own wait would keep their cores busy); then every rank runs the
 * split model after an MPI_Barrier. Under -np 1 the ratio is the split
 * machinery's overhead on one rank; under -np 2 it is the speed-up (< 1 is
 * faster). Each case: one untimed sample of each (kernel builds; the
 * last-token logits of the split model are compared with the plain
 * model's there), then N timed samples of each (--repeats, 5; T 8192: at
 * most 3). Per sample, each rank reads and resets retcl_mpi_model_stats:
 * the bytes it handed to / got from MPI, seconds in MPI and in staging,
 * divided by the layer passes (forwards x layers) to give per-layer values.
 * Records: sweep "one_rank" (the plain model on rank 0), "whole" (each
 * sample's slowest rank; ratio_to_one_rank = its median / one_rank's) and
 * "rank" (each rank's own medians). */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include "suite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if RETCL_BENCH_HAVE_MPI
#include <mpi.h>

#include "models.h"
#include "retcl_mpi.h"

/* MPI_Bcast of one int from rank 0, waited for asleep: the other ranks
 * stay off their cores (MPI's own wait polls, yield_when_idle or not)
 * while rank 0 runs the one-rank model alone. */
static void idle_bcast(int *v) {
  MPI_Request rq;
  MPI_Ibcast(v, 1, MPI_INT, 0, MPI_COMM_WORLD, &rq);
  int done = 0;
  MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
  while (!done) {
    const struct timespec ts = {0, 200000}; /* 0.2 ms */
    nanosleep(&ts, NULL);
    MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
  }
}

typedef enum mcase_kind { MC_PREFILL = 0, MC_DECODE = 1 } mcase_kind;

typedef struct mcase {
  const char *op;        /* seq_prefill, heads_prefill, heads_decode */
  retcl_mpi_split split;
  mcase_kind kind;
  size_t T;              /* prefill: tokens in all */
  size_t B;              /* decode: batch (rows per step); prefill 1 */
  int reps;
} mcase;

typedef struct mrun {
  retcl_mpi *h;
  retcl_context *ctx;
  int rank, size;
  retcl_model *plain;    /* rank 0 */
  retcl_model *split[2]; /* by retcl_mpi_split */
  size_t d, H, ffn, L, vocab, chunk, steps;
  retcl_storage storage;
  char err[600];
} mrun;

/* This rank's slice of a sequence split of T tokens. */
static void slice_of(const mrun *m, size_t T, size_t *t0, size_t *n) {
  size_t base = T / (size_t)m->size / m->chunk * m->chunk;
  if (base == 0) base = m->chunk;
  *t0 = base * (size_t)m->rank;
  *n = m->rank == m->size - 1 ? T - *t0 : base;
}

/* The unit of a case on `model`: one prefill (fresh decode state), or
 * `steps` decode steps through `pool`. *dt: seconds (MPI_Wtime). */
static retcl_status run_unit(mrun *m, const mcase *c, retcl_model *model,
                             retcl_state_pool *pool, size_t *pool_pos,
                             const int32_t *tok, size_t n, float *logits,
                             double *dt) {
  retcl_status st;
  if (c->kind == MC_PREFILL) {
    retcl_decode_state *s = NULL;
    st = retcl_decode_state_create(model, 1, &s);
    if (st) {
      snprintf(m->err, sizeof m->err, "retcl_decode_state_create: %s: %s",
               retcl_status_string(st), retcl_last_error(m->ctx));
      *dt = 0;
      return st;
    }
    const double t = MPI_Wtime();
    st = retcl_model_forward_last(model, s, tok, 1, n, RETCL_ALGO_CHUNKWISE,
                                  m->chunk, logits);
    *dt = MPI_Wtime() - t;
    retcl_decode_state_destroy(s);
  } else {
    int32_t slots[64], row[64];
    for (size_t b = 0; b < c->B; ++b) slots[b] = (int32_t)b;
    const double t = MPI_Wtime();
    st = RETCL_SUCCESS;
    for (size_t i = 0; i < m->steps && !st; ++i) {
      for (size_t b = 0; b < c->B; ++b)
        row[b] = token_at(b, *pool_pos + i, m->vocab);
      st = retcl_model_decode_step(model, pool, slots, row, c->B, logits);
    }
    *dt = (MPI_Wtime() - t) / (double)m->steps;
    *pool_pos += m->steps;
  }
  if (st)
    snprintf(m->err, sizeof m->err, "%s: %s: %s",
             c->kind == MC_PREFILL ? "retcl_model_forward_last"
                                   : "retcl_model_decode_step",
             retcl_status_string(st), retcl_last_error(m->ctx));
  return st;
}

/* Per rank, gathered on rank 0. */
enum { F_MED, F_MIN, F_MAX, F_EX, F_DEV, F_SENT, F_RECV, F_CTL, F_T0, F_N,
       F_COUNT };

static void rec_common(rec *r, const mrun *m, const mcase *c, int sweep_rank,
                       const char *sweep) {
  snprintf(r->op, sizeof r->op, "%s", c->op);
  snprintf(r->model, sizeof r->model, "retnet");
  snprintf(r->algorithm, sizeof r->algorithm, "%s",
           c->kind == MC_PREFILL ? "chunkwise" : "recurrent");
  snprintf(r->sweep, sizeof r->sweep, "%s", sweep);
  snprintf(r->wtype, sizeof r->wtype, "%s", storage_name(m->storage));
  r->B = c->B, r->T = c->T, r->H = m->H, r->Dk = r->Dv = m->d / m->H;
  r->chunk = c->kind == MC_PREFILL ? m->chunk : 0;
  r->ranks = m->size;
  r->rank = sweep_rank;
  r->layers = m->L;
  r->tokens = c->kind == MC_PREFILL ? (double)c->T : (double)c->B;
  r->mem.weights = r->mem.cache = r->mem.workspace = r->mem.grads =
      r->mem.train = -1;
  r->recompute = -1;
}

static const char *case_label(const mcase *c, char *buf, size_t n) {
  if (c->kind == MC_PREFILL)
    snprintf(buf, n, "%s prefill chunkwise T %zu",
             c->split == RETCL_MPI_SPLIT_SEQUENCE ? "sequence split"
                                                  : "heads split",
             c->T);
  else
    snprintf(buf, n, "heads split decode step batch %zu", c->B);
  return buf;
}

/* One case: interleaved samples, gathered, printed and recorded on rank 0.
 * Returns 0, or 1 when the case failed (an error record on rank 0). */
static int run_case(mrun *m, const mcase *c) {
  char label[96];
  case_label(c, label, sizeof label);
  retcl_model *model = m->split[c->split];
  const int reps = c->reps;
  size_t t0 = 0, n = c->T;
  if (c->split == RETCL_MPI_SPLIT_SEQUENCE) slice_of(m, c->T, &t0, &n);
  int32_t *tok_all = NULL, *tok_mine = NULL;
  if (c->kind == MC_PREFILL) {
    tok_all = tokens_block(1, 0, c->T, m->vocab);
    tok_mine = tok_all + t0;
  }
  const size_t rows = c->kind == MC_PREFILL ? 1 : c->B;
  float *lg_plain = calloc(rows * m->vocab, sizeof(float)),
        *lg_split = calloc(rows * m->vocab, sizeof(float));
  retcl_state_pool *pool_plain = NULL, *pool_split = NULL;
  size_t pos_plain = 0, pos_split = 0;
  retcl_status st = RETCL_SUCCESS, st0 = RETCL_SUCCESS;
  m->err[0] = 0;
  if (c->kind == MC_DECODE) {
    if (m->rank == 0) st0 = retcl_state_pool_create(m->plain, c->B, &pool_plain);
    st = retcl_state_pool_create(model, c->B, &pool_split);
    if (st || st0)
      snprintf(m->err, sizeof m->err, "retcl_state_pool_create: %s",
               retcl_last_error(m->ctx));
  }
  double *t_plain = calloc((size_t)reps, sizeof(double)),
         *t_mine = calloc((size_t)reps, sizeof(double)),
         *t_max = calloc((size_t)reps, sizeof(double)),
         *t_ex = calloc((size_t)reps, sizeof(double)),
         *t_dev = calloc((size_t)reps, sizeof(double));
  retcl_mpi_model_stats s;
  memset(&s, 0, sizeof s);
  double rel_diff = NAN;
  /* every rank agrees on the pool creation before running */
  int bad = st || st0, any_bad = 0;
  MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (any_bad && !st) st = RETCL_ERROR_INVALID_ARGUMENT;
  for (int i = -1; i < reps && !any_bad && !st; ++i) {
    double dt = 0;
    /* the one-rank run: rank 0 alone, the plain model */
    if (m->rank == 0)
      st0 = run_unit(m, c, m->plain, pool_plain, &pos_plain, tok_all, c->T,
                     lg_plain, &dt);
    int s0 = (int)st0;
    idle_bcast(&s0);
    if (s0) {
      st = (retcl_status)s0;
      break;
    }
    if (i >= 0 && m->rank == 0) t_plain[i] = 1e3 * dt;
    /* the split run: every rank */
    retcl_mpi_model_stats_get(m->h, &s, 1);
    MPI_Barrier(MPI_COMM_WORLD);
    st = run_unit(m, c, model, pool_split, &pos_split, tok_mine, n, lg_split,
                  &dt);
    retcl_mpi_model_stats_get(m->h, &s, 1);
    if (st) break; /* agreed across ranks by the collective call */
    if (i < 0) {
      /* compare the last-token logits with the plain model's */
      if (c->split == RETCL_MPI_SPLIT_SEQUENCE && m->size > 1) {
        if (m->rank == m->size - 1)
          MPI_Send(lg_split, (int)(rows * m->vocab), MPI_FLOAT, 0, 713,
                   MPI_COMM_WORLD);
        else if (m->rank == 0)
          MPI_Recv(lg_split, (int)(rows * m->vocab), MPI_FLOAT, m->size - 1,
                   713, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      }
      if (m->rank == 0) {
        double dmax = 0, rmax = 0;
        for (size_t j = 0; j < rows * m->vocab; ++j) {
          const double e = fabs((double)lg_split[j] - (double)lg_plain[j]);
          if (!(e <= dmax)) dmax = e; /* NaN propagates */
          if (fabs((double)lg_plain[j]) > rmax) rmax = fabs((double)lg_plain[j]);
        }
        rel_diff = dmax / (rmax > 0 ? rmax : 1);
      }
      continue;
    }
    t_mine[i] = 1e3 * dt;
    const double lc = s.layer_calls ? (double)s.layer_calls : 1;
    t_ex[i] = 1e3 * s.seconds_exchange / lc;
    t_dev[i] = 1e3 * s.seconds_device / lc;
    MPI_Allreduce(&t_mine[i], &t_max[i], 1, MPI_DOUBLE, MPI_MAX,
                  MPI_COMM_WORLD);
  }
  retcl_state_pool_destroy(pool_plain);
  retcl_state_pool_destroy(pool_split);
  free(tok_all);
  free(lg_plain);
  free(lg_split);

  double mine[F_COUNT], *all = malloc((size_t)m->size * F_COUNT * sizeof(double));
  memset(mine, 0, sizeof mine);
  if (!st) {
    mine[F_MED] = bench_median(t_mine, reps);
    mine[F_MIN] = mine[F_MAX] = t_mine[0];
    for (int i = 1; i < reps; ++i) {
      if (t_mine[i] < mine[F_MIN]) mine[F_MIN] = t_mine[i];
      if (t_mine[i] > mine[F_MAX]) mine[F_MAX] = t_mine[i];
    }
    mine[F_EX] = bench_median(t_ex, reps);
    mine[F_DEV] = bench_median(t_dev, reps);
    const double lc = s.layer_calls ? (double)s.layer_calls : 1;
    mine[F_SENT] = (double)s.bytes_sent / lc;
    mine[F_RECV] = (double)s.bytes_received / lc;
    mine[F_CTL] = (double)s.control_bytes / lc;
  }
  mine[F_T0] = (double)t0;
  mine[F_N] = (double)n;
  MPI_Gather(mine, F_COUNT, MPI_DOUBLE, all, F_COUNT, MPI_DOUBLE, 0,
             MPI_COMM_WORLD);
  int rc = 0;
  if (m->rank == 0 && st) {
    rec *r = rec_new("mpi");
    rec_common(r, m, c, -1, "whole");
    snprintf(r->name, sizeof r->name, "%s over %d ranks", label, m->size);
    r->status = REC_ERROR;
    snprintf(r->reason, sizeof r->reason, "%s",
             m->err[0] ? m->err : "failed on another rank");
    fprintf(stderr, "retcl-bench: %s: %s\n", r->name, r->reason);
    rc = 1;
  } else if (m->rank == 0) {
    printf("\n== %s, d %zu, H %zu, L %zu, %d rank%s; last logits vs one "
           "rank: max rel diff %.2g ==\n",
           label, m->d, m->H, m->L, m->size, m->size > 1 ? "s" : "",
           rel_diff);
    printf("%-8s %-11s %10s %7s %9s %8s %9s %9s %10s %10s\n", "rank",
           c->kind == MC_PREFILL ? "tokens" : "rows",
           c->kind == MC_PREFILL ? "call ms" : "step ms", "spread",
           "layer ms", "ratio", "exch ms/L", "stage ms/L", "sent B/L",
           "recv B/L");
    bench_stats one;
    bench_stats_from(t_plain, reps, &one);
    for (int rr = -2; rr < m->size; ++rr) {
      rec *r = rec_new("mpi");
      rec_common(r, m, c, rr < 0 ? (rr == -2 ? 0 : -1) : rr,
                 rr == -2 ? "one_rank" : rr == -1 ? "whole" : "rank");
      char who[16], tk[32];
      if (rr == -2) {
        snprintf(r->name, sizeof r->name, "%s: one rank (plain model, rank 0)",
                 label);
        r->st = one;
        r->ranks = 1;
        snprintf(who, sizeof who, "1 rank");
      } else if (rr == -1) {
        snprintf(r->name, sizeof r->name, "%s over %d ranks: whole call",
                 label, m->size);
        bench_stats_from(t_max, reps, &r->st);
        for (int x = 0; x < m->size; ++x) {
          const double *a = all + (size_t)x * F_COUNT;
          if (a[F_EX] > r->exchange_ms) r->exchange_ms = a[F_EX];
          if (a[F_DEV] > r->staging_ms) r->staging_ms = a[F_DEV];
          if (a[F_SENT] > r->comm_sent) r->comm_sent = a[F_SENT];
          if (a[F_RECV] > r->comm_received) r->comm_received = a[F_RECV];
          if (a[F_CTL] > r->control_bytes) r->control_bytes = a[F_CTL];
        }
        r->one_rank_ratio =
            one.median_ms > 0 ? r->st.median_ms / one.median_ms : 0;
        snprintf(who, sizeof who, "all");
      } else {
        const double *a = all + (size_t)rr * F_COUNT;
        snprintf(r->name, sizeof r->name, "%s over %d ranks: rank %d", label,
                 m->size, rr);
        r->st.n = reps;
        r->st.median_ms = a[F_MED];
        r->st.min_ms = a[F_MIN];
        r->st.max_ms = a[F_MAX];
        r->st.spread = a[F_MED] > 0 ? (a[F_MAX] - a[F_MIN]) / a[F_MED] : 0;
        r->t0 = (size_t)a[F_T0];
        if (c->kind == MC_PREFILL) r->tokens = a[F_N];
        r->exchange_ms = a[F_EX];
        r->staging_ms = a[F_DEV];
        r->comm_sent = a[F_SENT];
        r->comm_received = a[F_RECV];
        r->control_bytes = a[F_CTL];
        snprintf(who, sizeof who, "%d", rr);
      }
      if (c->kind == MC_DECODE)
        snprintf(tk, sizeof tk, "%zu", c->B);
      else if (rr < 0)
        snprintf(tk, sizeof tk, "0..%zu", c->T);
      else
        snprintf(tk, sizeof tk, "%zu..%zu", r->t0,
                 r->t0 + (size_t)r->tokens);
      char ratio[16] = "", ex[16] = "", dv[16] = "", se[16] = "", re[16] = "";
      if (rr == -1) snprintf(ratio, sizeof ratio, "%.3f", r->one_rank_ratio);
      if (rr >= -1) {
        snprintf(ex, sizeof ex, "%.3f", r->exchange_ms);
        snprintf(dv, sizeof dv, "%.3f", r->staging_ms);
        snprintf(se, sizeof se, "%.0f", r->comm_sent);
        snprintf(re, sizeof re, "%.0f", r->comm_received);
      }
      printf("%-8s %-11s %10.2f %6.0f%% %9.2f %8s %9s %9s %10s %10s\n", who,
             tk, r->st.median_ms, 100 * r->st.spread,
             r->st.median_ms / (double)m->L, ratio, ex, dv, se, re);
    }
    fflush(stdout);
  }
  free(all);
  free(t_plain); free(t_mine); free(t_max); free(t_ex); free(t_dev);
  return rc;
}

int suite_mpi_models(retcl_mpi *h, const suite_options *o) {
  mrun m;
  memset(&m, 0, sizeof m);
  m.h = h;
  m.ctx = retcl_mpi_context(h);
  m.rank = retcl_mpi_rank(h);
  m.size = retcl_mpi_size(h);
  m.d = o->d, m.H = o->heads, m.ffn = o->ffn, m.L = o->layers;
  m.vocab = o->vocab, m.chunk = o->chunk;
  m.steps = o->quick ? 4 : 8;
  m.storage = o->weights;
  /* rank 0 writes the checkpoint; every rank reads it (one node) */
  char dir[512] = "";
  int bad = 0;
  if (m.rank == 0) bad = checkpoint_prepare(o, dir, sizeof dir);
  MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Bcast(dir, (int)sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  if (bad) return 1;
  retcl_status st = RETCL_SUCCESS;
  if (m.rank == 0) {
    st = retcl_model_load_as(m.ctx, dir, o->weights, &m.plain);
    if (st)
      fprintf(stderr, "retcl-bench: retcl_model_load_as: %s: %s\n",
              retcl_status_string(st), retcl_last_error(m.ctx));
  }
  int s0 = (int)st;
  MPI_Bcast(&s0, 1, MPI_INT, 0, MPI_COMM_WORLD);
  for (int sp = 0; sp < 2 && !s0; ++sp) {
    st = retcl_mpi_model_load(h, dir, (retcl_mpi_split)sp, o->weights,
                              &m.split[sp]);
    if (st) {
      if (m.rank == 0)
        fprintf(stderr, "retcl-bench: retcl_mpi_model_load (%s split): %s: "
                        "%s\n", sp ? "heads" : "sequence",
                retcl_status_string(st), retcl_mpi_last_error(h));
      s0 = (int)st; /* agreed: every rank failed */
    }
  }
  int rc = 0;
  if (!s0) {
    const int reps = o->repeats > 0 ? o->repeats : o->quick ? 3 : 5;
    const int reps_big = reps < 3 ? reps : 3;
    const size_t T1 = o->quick ? 256 : 2048;
    const size_t T2 = o->quick ? 0 : o->max_T == 16384 ? 8192 : o->max_T;
    mcase cases[5];
    int nc = 0;
    cases[nc++] = (mcase){"seq_prefill", RETCL_MPI_SPLIT_SEQUENCE, MC_PREFILL,
                          T1, 1, reps};
    if (T2 > T1)
      cases[nc++] = (mcase){"seq_prefill", RETCL_MPI_SPLIT_SEQUENCE,
                            MC_PREFILL, T2, 1, T2 > 4096 ? reps_big : reps};
    cases[nc++] = (mcase){"heads_prefill", RETCL_MPI_SPLIT_HEADS, MC_PREFILL,
                          T1, 1, reps};
    cases[nc++] = (mcase){"heads_decode", RETCL_MPI_SPLIT_HEADS, MC_DECODE, 0,
                          1, reps};
    cases[nc++] = (mcase){"heads_decode", RETCL_MPI_SPLIT_HEADS, MC_DECODE, 0,
                          8, reps};
    if (m.rank == 0)
      printf("\n-- split models: d %zu, H %zu, FFN %zu, L %zu, vocab %zu, "
             "chunk %zu; one rank = the plain model on rank 0, interleaved "
             "--\n", m.d, m.H, m.ffn, m.L, m.vocab, m.chunk);
    for (int i = 0; i < nc; ++i) {
      if (m.rank == 0) {
        char label[96];
        progress("mpi", i + 1, nc, "%s", case_label(&cases[i], label,
                                                    sizeof label));
        progress_clear();
      }
      rc |= run_case(&m, &cases[i]);
    }
  } else {
    rc = 1;
  }
  retcl_model_destroy(m.split[0]);
  retcl_model_destroy(m.split[1]);
  retcl_model_destroy(m.plain);
  MPI_Barrier(MPI_COMM_WORLD);
  if (m.rank == 0) checkpoint_remove(dir);
  return rc;
}

#endif
