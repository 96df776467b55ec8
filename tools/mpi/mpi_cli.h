/* mpi_cli.h - what the subcommands of the `retcl-mpi` program share: the
 * ranks' agreement on exit codes, rank-0-only output, the split of a token
 * sequence into contiguous slices, and opening a split model. Built on
 * tools/cli.h (options, messages, tokens) and libretcl_mpi (retcl_mpi.h).
 *
 * The rule every subcommand follows: each rank runs the same steps in the
 * same order. A step that only one rank may fail (its device, a file) is
 * followed by mcli_agree before the next collective call, so that a
 * failure anywhere ends every rank with a non-zero exit code instead of
 * leaving the others waiting. Collective library calls agree on errors
 * themselves (retcl_mpi.h); their message is printed by rank 0 only (it is
 * the failing rank's own, or "rank N failed: <its message>"). */
#ifndef RETCL_MPI_CLI_H
#define RETCL_MPI_CLI_H

#include <mpi.h>

#include "cli.h"
#include "retcl_mpi.h"

/* The subcommands (one per mpi_*.c file). */
extern const cli_command mcli_cmd_run;
extern const cli_command mcli_cmd_generate;

/* This process's rank and the number of ranks in MPI_COMM_WORLD. */
int mcli_rank(void);
int mcli_size(void);

/* The largest of every rank's rc (0 when all are 0). Collective. */
int mcli_agree(int rc);

/* Output of ranks other than 0 is dropped between mcli_quiet_begin and
 * mcli_quiet_end (stdout and stderr): for steps that every rank runs on
 * the same input (the command line), so that a usage error is printed
 * once, not once per rank. No-op on rank 0. */
void mcli_quiet_begin(void);
void mcli_quiet_end(void);

/* A failure every rank returned (a collective call): rank 0 prints
 * "<what>: <status text>: <detail>" (detail: retcl_last_error of the
 * model's context, or retcl_mpi_last_error). Returns CLI_EXIT_ERROR on
 * every rank. */
int mcli_fail_agreed(retcl_status status, const char *what, const char *detail);
/* A failure of this rank alone: printed here, naming the rank when there
 * are several. Follow with mcli_agree. Returns CLI_EXIT_ERROR. */
int mcli_fail_local(retcl_context *ctx, retcl_status status, const char *what);

/* The contiguous slice [*begin, *begin + *len) of T tokens that rank r of
 * n runs, for a sequence-split model. chunk > 0 (chunkwise form): every
 * slice but the last is a whole number of chunks, the chunks spread as
 * evenly as possible, the last rank takes the rest; chunk == 0: any
 * lengths, as even as possible. Every slice needs >= 1 token: returns 0
 * when T is too short for n ranks (T <= (n - 1) * chunk, or T < n), 1
 * otherwise. */
int mcli_slice(size_t T, size_t chunk, int r, int n, size_t *begin,
               size_t *len);

/* "slices of 8 to 9 tokens" ("slices of 8 tokens" when all are equal)
 * into buf. */
const char *mcli_slices_text(size_t shortest, size_t longest, char *buf,
                             size_t cap);

/* "sequence" | "heads" -> *split; 0 if neither. */
int mcli_parse_split(const char *name, retcl_mpi_split *split);
const char *mcli_split_name(retcl_mpi_split split);

/* Every token id below V, or a usage error (printed by rank 0) naming the
 * first that is not. Same answer on every rank (same input). */
int mcli_check_ids(const char *cmd, const char *opt, const int32_t *tok,
                   size_t T, size_t V, const char *model_dir);

/* Create the handle on MPI_COMM_WORLD (device NULL: by node-local rank,
 * see retcl_mpi_create). Collective; on failure rank 0 prints the reason
 * and *h is NULL. */
int mcli_open(const char *platform, const char *device, retcl_mpi **h);
/* Load dir split as `split` on the handle; *load_s is this rank's time.
 * Collective; on failure rank 0 prints the reason. */
int mcli_load(retcl_mpi *h, const char *dir, retcl_mpi_split split,
              retcl_storage storage, retcl_model **model, double *load_s);

/* The largest of every rank's x (seconds of a collective step, bytes).
 * Collective. */
double mcli_max_double(double x);
/* The sum of every rank's x. Collective. */
double mcli_sum_double(double x);

#endif /* RETCL_MPI_CLI_H */
