/* mpi_common.c - helpers shared by the `retcl-mpi` subcommands (see
 * mpi_cli.h). */
#define _POSIX_C_SOURCE 200809L /* dup, dup2 */

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "mpi_cli.h"

int mcli_rank(void) {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int mcli_size(void) {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

int mcli_agree(int rc) {
  int all = rc;
  MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return all;
}

double mcli_max_double(double x) {
  double all = x;
  MPI_Allreduce(&x, &all, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return all;
}

double mcli_sum_double(double x) {
  double all = x;
  MPI_Allreduce(&x, &all, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return all;
}

/* The real stdout and stderr while ranks > 0 are quiet; -1 otherwise. */
static int g_saved_out = -1, g_saved_err = -1;

void mcli_quiet_begin(void) {
  if (mcli_rank() == 0 || g_saved_out >= 0) return;
  fflush(stdout);
  fflush(stderr);
  int null = open("/dev/null", O_WRONLY);
  if (null < 0) return; /* then every rank speaks: noisy, not wrong */
  g_saved_out = dup(STDOUT_FILENO);
  g_saved_err = dup(STDERR_FILENO);
  if (g_saved_out >= 0 && g_saved_err >= 0) {
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
  }
  close(null);
}

void mcli_quiet_end(void) {
  if (g_saved_out < 0 && g_saved_err < 0) return;
  fflush(stdout);
  fflush(stderr);
  if (g_saved_out >= 0) {
    dup2(g_saved_out, STDOUT_FILENO);
    close(g_saved_out);
  }
  if (g_saved_err >= 0) {
    dup2(g_saved_err, STDERR_FILENO);
    close(g_saved_err);
  }
  g_saved_out = g_saved_err = -1;
}

int mcli_fail_agreed(retcl_status status, const char *what,
                     const char *detail) {
  if (mcli_rank() != 0) return CLI_EXIT_ERROR;
  fflush(stdout);
  if (detail && *detail)
    fprintf(stderr, "%s: error: %s: %s: %s\n", cli_program, what,
            retcl_status_string(status), detail);
  else
    fprintf(stderr, "%s: error: %s: %s\n", cli_program, what,
            retcl_status_string(status));
  return CLI_EXIT_ERROR;
}

int mcli_fail_local(retcl_context *ctx, retcl_status status, const char *what) {
  if (mcli_size() == 1) return cli_fail(ctx, status, what);
  char named[512];
  snprintf(named, sizeof named, "rank %d: %s", mcli_rank(), what);
  return cli_fail(ctx, status, named);
}

int mcli_slice(size_t T, size_t chunk, int r, int n, size_t *begin,
               size_t *len) {
  const size_t R = (size_t)r, N = (size_t)n;
  size_t b, e;
  if (chunk) {
    /* K chunks, the last possibly partial, dealt out in whole chunks. */
    const size_t K = T / chunk + (T % chunk != 0);
    if (K < N) return 0;
    b = R * K / N * chunk;
    e = R + 1 == N ? T : (R + 1) * K / N * chunk;
  } else {
    if (T < N) return 0;
    b = R * T / N;
    e = (R + 1) * T / N;
  }
  *begin = b;
  *len = e - b;
  return 1;
}

const char *mcli_slices_text(size_t shortest, size_t longest, char *buf,
                             size_t cap) {
  if (shortest == longest)
    snprintf(buf, cap, "slices of %zu tokens", shortest);
  else
    snprintf(buf, cap, "slices of %zu to %zu tokens", shortest, longest);
  return buf;
}

int mcli_parse_split(const char *name, retcl_mpi_split *split) {
  if (strcmp(name, "sequence") == 0) {
    *split = RETCL_MPI_SPLIT_SEQUENCE;
    return 1;
  }
  if (strcmp(name, "heads") == 0) {
    *split = RETCL_MPI_SPLIT_HEADS;
    return 1;
  }
  return 0;
}

const char *mcli_split_name(retcl_mpi_split split) {
  return split == RETCL_MPI_SPLIT_HEADS ? "heads" : "sequence";
}

int mcli_check_ids(const char *cmd, const char *opt, const int32_t *tok,
                   size_t T, size_t V, const char *model_dir) {
  for (size_t i = 0; i < T; ++i)
    if ((size_t)tok[i] >= V) {
      mcli_quiet_begin();
      int rc = cli_usage_error(cmd,
                               "--%s: item %zu is %d, not below the "
                               "vocabulary size %zu of %s",
                               opt, i + 1, (int)tok[i], V, model_dir);
      mcli_quiet_end();
      return rc;
    }
  return CLI_EXIT_OK;
}

int mcli_open(const char *platform, const char *device, retcl_mpi **h) {
  retcl_status st = retcl_mpi_create(MPI_COMM_WORLD, platform, device, h);
  if (st)
    return mcli_fail_agreed(st, "cannot create the ranks' RetCL contexts",
                            retcl_mpi_last_error(NULL));
  return CLI_EXIT_OK;
}

int mcli_load(retcl_mpi *h, const char *dir, retcl_mpi_split split,
              retcl_storage storage, retcl_model **model, double *load_s) {
  *model = NULL;
  double t0 = cli_now();
  retcl_status st = retcl_mpi_model_load(h, dir, split, storage, model);
  *load_s = cli_now() - t0;
  if (st) {
    char what[64];
    snprintf(what, sizeof what, "cannot load the model (%s split)",
             mcli_split_name(split));
    /* The handle's message when it has one (the agreement's), else the
     * context's (the load itself). */
    const char *detail = retcl_mpi_last_error(h);
    if (!detail || !*detail) detail = retcl_last_error(retcl_mpi_context(h));
    return mcli_fail_agreed(st, what, detail);
  }
  return CLI_EXIT_OK;
}
