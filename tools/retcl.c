/* retcl.c - the `retcl` command-line program: finds the subcommand and
 * hands it the rest of the command line. Subcommands live in cmd_*.c; to add
 * one, write cmd_<name>.c defining cli_cmd_<name>, declare it in cli.h and
 * list it in `commands` below. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_command *const commands[] = {
    &cli_cmd_devices,
    &cli_cmd_demo,
    &cli_cmd_init_model,
    &cli_cmd_run,
    &cli_cmd_generate,
    &cli_cmd_selftest,
    &cli_cmd_params,
    &cli_cmd_tune,
    &cli_cmd_grad,
    &cli_cmd_train,
};
#define NUM_COMMANDS (sizeof commands / sizeof commands[0])

static const cli_command *find_command(const char *name) {
  return cli_find_command(commands, NUM_COMMANDS, name);
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: retcl <command> [options]\n"
          "       retcl help [<command>]\n"
          "       retcl --version\n"
          "\n"
          "RetCL runs RetNet retention kernels on any OpenCL device.\n"
          "\n"
          "commands:\n");
  for (size_t i = 0; i < NUM_COMMANDS; ++i)
    fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(
      out,
      "  %-10s %s\n"
      "\n"
      "environment:\n"
      "  RETCL_DEVICE    device index (as `retcl devices` numbers them) or\n"
      "                  a case-insensitive substring of the device name\n"
      "  RETCL_PLATFORM  platform index or name substring\n"
      "  Without them the first GPU is used, else the first device.\n"
      "\n"
      "exit status: 0 success, 1 error, 2 bad command line, 3 a result\n"
      "check failed.\n",
      "help", "show this text, or the options of one command");
}

/* The header this program was compiled with and the library it loaded can
 * differ when an old libretcl.so is found first; say so. */
static int print_version(void) {
  printf("retcl %s (libretcl %s)\n", CLI_HEADER_VERSION,
         retcl_version_string());
  if (retcl_version_number() != RETCL_VERSION_NUMBER)
    fprintf(stderr,
            "retcl: warning: built against RetCL %s but loaded libretcl %s\n",
            CLI_HEADER_VERSION, retcl_version_string());
  return CLI_EXIT_OK;
}

static int help(int argc, char **argv) {
  if (argc < 2) {
    usage(stdout);
    return CLI_EXIT_OK;
  }
  const cli_command *cmd = find_command(argv[1]);
  if (!cmd) {
    fprintf(stderr, "retcl help: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  cmd->usage(stdout);
  return CLI_EXIT_OK;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0 ||
      strcmp(name, "version") == 0)
    return print_version();
  if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 ||
      strcmp(name, "-h") == 0)
    return help(argc - 1, argv + 1);
  const cli_command *cmd = find_command(name);
  if (!cmd) {
    fprintf(stderr, "retcl: unknown command '%s'\n\n", name);
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  return cmd->run(argc - 1, argv + 1);
}
