/* mpi.c - the mpi suite: sequence-parallel retention (retcl_mpi_retention,
 * docs/hpc.md) of one long sequence split over the ranks of an mpirun:
 *
 *   mpirun -np 1|2 retcl-bench --suite mpi [--json FILE] [--repeats N]
 *
 * B 1, H 8, Dk = Dv = 64, T 8192 in all (--max-prefill-T sets another T),
 * in equal slices (the last rank takes the rest; slices start at multiples
 * of the chunk, 64), raw chunkwise and torchscale chunkwise, MPI_Exscan.
 * Every rank makes its own context (device by node-local rank); pin each
 * rank to a core with mpirun's --bind-to core, and give PoCL one thread per
 * rank (docs/hpc.md says which settings work). Each configuration: one
 * untimed call (kernel builds), then N timed calls (9; --quick 3), each
 * after an MPI_Barrier. A sample is the call's MPI_Wtime on a rank; the
 * "whole" record takes each repetition's slowest rank. Per rank the
 * records also give the medians of the call's parts (its own pass, the
 * exchange, the finish: retcl_mpi_stats) and the state bytes it handed to
 * and got from MPI per call, i.e. per layer-equivalent retention call.
 * Rank 0 prints the table and writes the JSON; the yardsticks are not
 * measured (they would run once per rank on shared cores). Then the split
 * models, against the same model on rank 0 alone (mpi_model.c). */
#include "suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if RETCL_BENCH_HAVE_MPI
#include <mpi.h>

#include "retcl_mpi.h"

static cl_mem upload_random(retcl_context *ctx, size_t n, unsigned *seed,
                            float amp) {
  float *h = malloc(n * sizeof *h);
  for (size_t i = 0; i < n; ++i) {
    *seed = *seed * 1664525u + 1013904223u;
    h[i] = amp * ((float)(*seed >> 8) / 8388608.0f - 1.0f);
  }
  cl_int err;
  cl_mem m = clCreateBuffer(retcl_context_cl_context(ctx),
                            CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                            n * sizeof *h, h, &err);
  free(h);
  return err == CL_SUCCESS ? m : NULL;
}

typedef struct mpi_config {
  const char *name;
  retcl_retention_form form;
} mpi_config;

int suite_mpi_main(suite_options *o) {
  int provided = 0;
  MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  retcl_mpi *h = NULL;
  if (retcl_mpi_create(MPI_COMM_WORLD, NULL, NULL, &h)) {
    if (rank == 0)
      fprintf(stderr, "retcl-bench: %s\n", retcl_mpi_last_error(NULL));
    MPI_Finalize();
    return 1;
  }
  retcl_context *ctx = retcl_mpi_context(h);
  bench_device_info dev;
  bench_device_info_query(ctx, &dev);
  /* Every rank's compute units: shows whether the pinning took. */
  int cu = (int)dev.compute_units;
  int *cus = malloc((size_t)size * sizeof *cus);
  MPI_Gather(&cu, 1, MPI_INT, cus, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    printf("retcl-bench --suite mpi, RetCL %s, %d rank%s\n",
           retcl_version_string(), size, size > 1 ? "s" : "");
    bench_device_info_print(&dev);
    printf("compute units per rank:");
    for (int r = 0; r < size; ++r) printf(" %d", cus[r]);
    printf("\ncommand  : %s\n", o->command);
  }
  free(cus);

  const size_t T = o->quick ? 1024 : o->max_T == 16384 ? 8192 : o->max_T;
  const size_t B = 1, H = 8, Dk = 64, Dv = 64, C = 64;
  const int reps = o->repeats > 0 ? o->repeats : o->quick ? 3 : 9;
  /* Slices: multiples of C, the last rank takes the rest. */
  size_t base = T / (size_t)size / C * C;
  if (base == 0) base = C;
  size_t t0 = base * (size_t)rank, L = rank == size - 1 ? T - t0 : base;
  if (t0 >= T || L == 0 || L > T) {
    if (rank == 0)
      fprintf(stderr, "retcl-bench: T = %zu is too short for %d ranks\n", T,
              size);
    retcl_mpi_destroy(h);
    MPI_Finalize();
    return 2;
  }
  unsigned seed = 12345u + 977u * (unsigned)rank;
  const size_t nqk = B * L * H * Dk, nvo = B * L * H * Dv,
               ns = B * H * Dk * Dv;
  cl_mem q = upload_random(ctx, nqk, &seed, 0.125f),
         k = upload_random(ctx, nqk, &seed, 1.0f),
         v = upload_random(ctx, nvo, &seed, 1.0f),
         out = upload_random(ctx, nvo, &seed, 0.0f),
         s_out = upload_random(ctx, ns, &seed, 0.0f);
  float lgh[8];
  retcl_default_log_decay(H, lgh);
  cl_int err;
  cl_mem lg = clCreateBuffer(retcl_context_cl_context(ctx),
                             CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                             sizeof lgh, lgh, &err);

  const mpi_config configs[] = {{"raw chunkwise", RETCL_FORM_RAW},
                                {"torchscale chunkwise", RETCL_FORM_TORCHSCALE}};
  const int nconf = (int)(sizeof configs / sizeof configs[0]);
  int rc = 0;
  double *t_call = malloc((size_t)reps * sizeof(double)),
         *t_loc = malloc((size_t)reps * sizeof(double)),
         *t_ex = malloc((size_t)reps * sizeof(double)),
         *t_fin = malloc((size_t)reps * sizeof(double)),
         *t_max = malloc((size_t)reps * sizeof(double));
  /* Per rank: call, local, exchange, finish medians (ms), sent, received,
   * pair, control bytes, t0, L, call min, call max, status. */
  enum { F_CALL, F_LOC, F_EX, F_FIN, F_SENT, F_RECV, F_PAIR, F_CTL, F_T0,
         F_L, F_MIN, F_MAX, F_ST, F_N };
  double mine[F_N], *all = malloc((size_t)size * F_N * sizeof(double));
  for (int c = 0; c < nconf; ++c) {
    retcl_retention_desc d;
    memset(&d, 0, sizeof d);
    d.batch = B;
    d.tokens = L;
    d.heads = H;
    d.key_dim = Dk;
    d.value_dim = Dv;
    d.layout = RETCL_LAYOUT_TOKEN_MAJOR;
    d.algorithm = RETCL_ALGO_CHUNKWISE;
    d.form = configs[c].form;
    d.chunk_size = C;
    retcl_mpi_stats s;
    retcl_status st = RETCL_SUCCESS;
    for (int i = -1; i < reps && !st; ++i) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double t = MPI_Wtime();
      st = retcl_mpi_retention(h, &d, RETCL_MPI_SCAN_EXSCAN, retcl_buf(q, 0),
                               retcl_buf(k, 0), retcl_buf(v, 0),
                               retcl_buf(lg, 0), retcl_no_buf(),
                               retcl_buf(s_out, 0), retcl_buf(out, 0), &s);
      const double dt = MPI_Wtime() - t;
      if (i < 0) continue;
      t_call[i] = 1e3 * dt;
      t_loc[i] = 1e3 * s.seconds_local;
      t_ex[i] = 1e3 * s.seconds_exchange;
      t_fin[i] = 1e3 * s.seconds_finish;
      MPI_Allreduce(&t_call[i], &t_max[i], 1, MPI_DOUBLE, MPI_MAX,
                    MPI_COMM_WORLD);
    }
    /* The status is the same on every rank (agreed in the call). */
    memset(mine, 0, sizeof mine);
    mine[F_ST] = st;
    if (!st) {
      mine[F_CALL] = bench_median(t_call, reps);
      mine[F_LOC] = bench_median(t_loc, reps);
      mine[F_EX] = bench_median(t_ex, reps);
      mine[F_FIN] = bench_median(t_fin, reps);
      mine[F_MIN] = mine[F_MAX] = t_call[0];
      for (int i = 1; i < reps; ++i) {
        if (t_call[i] < mine[F_MIN]) mine[F_MIN] = t_call[i];
        if (t_call[i] > mine[F_MAX]) mine[F_MAX] = t_call[i];
      }
    }
    mine[F_SENT] = (double)s.bytes_sent;
    mine[F_RECV] = (double)s.bytes_received;
    mine[F_PAIR] = (double)s.pair_bytes;
    mine[F_CTL] = (double)s.control_bytes;
    mine[F_T0] = (double)t0;
    mine[F_L] = (double)L;
    MPI_Gather(mine, F_N, MPI_DOUBLE, all, F_N, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (rank != 0) continue;
    if (st) {
      rec *r = rec_new("mpi");
      snprintf(r->op, sizeof r->op, "seq_retention");
      snprintf(r->algorithm, sizeof r->algorithm, "chunkwise");
      snprintf(r->name, sizeof r->name, "%s T %zu over %d ranks",
               configs[c].name, T, size);
      r->status = REC_ERROR;
      snprintf(r->reason, sizeof r->reason, "%s", retcl_mpi_last_error(h));
      r->ranks = size;
      r->rank = -1;
      fprintf(stderr, "retcl-bench: %s: %s\n", r->name, r->reason);
      rc = 1;
      continue;
    }
    printf("\n== %s, B 1, H 8, Dk = Dv = 64, T %zu, chunk 64, %d rank%s "
           "(MPI_Exscan) ==\n",
           configs[c].name, T, size, size > 1 ? "s" : "");
    printf("%-6s %-13s %10s %10s %10s %10s %8s %10s %10s\n", "rank",
           "tokens", "call ms", "local ms", "exch ms", "finish ms", "spread",
           "sent B", "recv B");
    for (int rr = -1; rr < size; ++rr) {
      rec *r = rec_new("mpi");
      snprintf(r->op, sizeof r->op, "seq_retention");
      snprintf(r->algorithm, sizeof r->algorithm, "chunkwise");
      snprintf(r->sweep, sizeof r->sweep, "%s", rr < 0 ? "whole" : "rank");
      snprintf(r->form, sizeof r->form, "%s",
               configs[c].form == RETCL_FORM_RAW ? "raw" : "torchscale");
      r->B = B, r->T = T, r->H = H, r->Dk = Dk, r->Dv = Dv, r->chunk = C;
      r->ranks = size;
      r->rank = rr;
      r->tokens = (double)T;
      r->mem.weights = r->mem.cache = r->mem.workspace = r->mem.grads =
          r->mem.train = -1;
      r->recompute = -1;
      if (rr < 0) {
        snprintf(r->name, sizeof r->name, "%s T %zu over %d ranks: whole call",
                 configs[c].name, T, size);
        bench_stats_from(t_max, reps, &r->st);
        /* the critical path's parts: the slowest rank's medians */
        for (int x = 0; x < size; ++x) {
          const double *a = all + (size_t)x * F_N;
          if (a[F_LOC] > r->local_ms) r->local_ms = a[F_LOC];
          if (a[F_EX] > r->exchange_ms) r->exchange_ms = a[F_EX];
          if (a[F_FIN] > r->finish_ms) r->finish_ms = a[F_FIN];
          if (a[F_SENT] > r->comm_sent) r->comm_sent = a[F_SENT];
          if (a[F_RECV] > r->comm_received) r->comm_received = a[F_RECV];
          if (a[F_CTL] > r->control_bytes) r->control_bytes = a[F_CTL];
        }
        r->pair_bytes = all[F_PAIR];
      } else {
        const double *a = all + (size_t)rr * F_N;
        snprintf(r->name, sizeof r->name, "%s T %zu over %d ranks: rank %d",
                 configs[c].name, T, size, rr);
        r->st.n = reps;
        r->st.median_ms = a[F_CALL];
        r->st.min_ms = a[F_MIN];
        r->st.max_ms = a[F_MAX];
        r->st.spread = a[F_CALL] > 0 ? (a[F_MAX] - a[F_MIN]) / a[F_CALL] : 0;
        r->t0 = (size_t)a[F_T0];
        r->local_ms = a[F_LOC];
        r->exchange_ms = a[F_EX];
        r->finish_ms = a[F_FIN];
        r->comm_sent = a[F_SENT];
        r->comm_received = a[F_RECV];
        r->pair_bytes = a[F_PAIR];
        r->control_bytes = a[F_CTL];
        r->tokens = a[F_L];
      }
      char tok[32];
      if (rr < 0) snprintf(tok, sizeof tok, "0..%zu", T);
      else snprintf(tok, sizeof tok, "%zu..%zu", r->t0, r->t0 + (size_t)r->tokens);
      char who[16];
      if (rr < 0) snprintf(who, sizeof who, "all");
      else snprintf(who, sizeof who, "%d", rr);
      printf("%-6s %-13s %10.2f %10.2f %10.3f %10.2f %7.0f%% %10.0f %10.0f\n",
             who, tok, r->st.median_ms, r->local_ms, r->exchange_ms,
             r->finish_ms, 100 * r->st.spread, r->comm_sent,
             r->comm_received);
    }
  }
  free(all);
  free(t_call); free(t_loc); free(t_ex); free(t_fin); free(t_max);
  cl_mem rel[] = {q, k, v, out, s_out, lg};
  for (int i = 0; i < 6; ++i)
    if (rel[i]) clReleaseMemObject(rel[i]);
  /* the split models (mpi_model.c) */
  if (suite_mpi_models(h, o)) rc = 1;
  if (rank == 0 && o->json) {
    if (write_json(o->json, o, &dev, suite_elapsed())) rc = 1;
    else printf("results written to %s\n", o->json);
  }
  retcl_mpi_destroy(h);
  MPI_Finalize();
  return rc;
}

#else

int suite_mpi_main(suite_options *o) {
  (void)o;
  fprintf(stderr,
          "retcl-bench: the mpi suite needs libretcl_mpi (configure with MPI "
          "found, -DRETCL_WITH_MPI=ON)\n");
  return 2;
}

#endif
