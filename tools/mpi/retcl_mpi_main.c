/* retcl_mpi_main.c - the `retcl-mpi` program: a RetNet checkpoint split
 * across the ranks of an MPI job (libretcl_mpi), started by mpirun:
 *
 *   mpirun -np N retcl-mpi run --model DIR --tokens ... --split heads
 *   mpirun -np N retcl-mpi generate --model DIR --prompt ... --max-new K
 *
 * Initialises MPI, finds the subcommand (mpi_run.c, mpi_generate.c) and
 * ends every rank with the same exit code: the largest any rank had, so a
 * failure on one rank is a failure of the whole job, on every rank. Output
 * comes from rank 0. */
#include <stdio.h>
#include <string.h>

#include "mpi_cli.h"

static const cli_command *const commands[] = {&mcli_cmd_run,
                                              &mcli_cmd_generate};
#define NUM_COMMANDS (sizeof commands / sizeof commands[0])

static const cli_command *find_command(const char *name) {
  return cli_find_command(commands, NUM_COMMANDS, name);
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: mpirun -np N retcl-mpi <command> [options]\n"
          "       retcl-mpi help [<command>]\n"
          "       retcl-mpi --version\n"
          "\n"
          "Runs a RetNet checkpoint split across the ranks of an MPI job,\n"
          "one RetCL context per rank (docs/hpc.md). Rank 0 prints and\n"
          "writes files; every rank exits with the same status.\n"
          "\n"
          "commands:\n");
  for (size_t i = 0; i < NUM_COMMANDS; ++i)
    fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(out,
          "  %-10s %s\n"
          "\n"
          "devices: each rank picks a GPU of its node by node-local rank\n"
          "(every device when the node has none), unless --device, or\n"
          "RETCL_DEVICE, names one (retcl_mpi_create).\n"
          "\n"
          "exit status: 0 success, 1 error, 2 bad command line.\n",
          "help", "show this text, or the options of one command");
}

/* Everything here runs on every rank with the same argv; only rank 0
 * speaks. */
static int dispatch(int argc, char **argv) {
  const int rank0 = mcli_rank() == 0;
  if (argc < 2) {
    if (rank0) usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0 ||
      strcmp(name, "version") == 0) {
    if (rank0)
      printf("retcl-mpi %s (libretcl %s)\n", CLI_HEADER_VERSION,
             retcl_version_string());
    return CLI_EXIT_OK;
  }
  if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 ||
      strcmp(name, "-h") == 0) {
    if (argc < 3) {
      if (rank0) usage(stdout);
      return CLI_EXIT_OK;
    }
    const cli_command *cmd = find_command(argv[2]);
    if (rank0) {
      if (cmd)
        cmd->usage(stdout);
      else {
        fprintf(stderr, "retcl-mpi help: unknown command '%s'\n\n", argv[2]);
        usage(stderr);
      }
    }
    return cmd ? CLI_EXIT_OK : CLI_EXIT_USAGE;
  }
  const cli_command *cmd = find_command(name);
  if (!cmd) {
    if (rank0) {
      fprintf(stderr, "retcl-mpi: unknown command '%s'\n\n", name);
      usage(stderr);
    }
    return CLI_EXIT_USAGE;
  }
  return cmd->run(argc - 1, argv + 1);
}

int main(int argc, char **argv) {
  if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
    fprintf(stderr, "retcl-mpi: error: MPI_Init failed\n");
    return CLI_EXIT_ERROR;
  }
  cli_program = "retcl-mpi";
  int rc = dispatch(argc, argv);
  fflush(stdout);
  /* Every rank reaches this point whatever happened (the subcommands agree
   * after each step only some ranks could fail), so this cannot hang. */
  rc = mcli_agree(rc);
  MPI_Finalize();
  return rc;
}
