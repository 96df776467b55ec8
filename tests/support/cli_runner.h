/* cli_runner.h - running the `retcl` program from a test as a user runs
 * it (fork + exec, no shell), with its stdout and stderr captured. */
#ifndef RETCL_CLI_RUNNER_H
#define RETCL_CLI_RUNNER_H

#include <stddef.h>

typedef struct tu_cli_result {
  int status;      /* exit status, or -1 if it did not exit normally */
  char *out, *err; /* everything it wrote to stdout / stderr */
} tu_cli_result;

/* The program's path: ctest runs <build>/tests/<test>, the program is
 * <build>/tools/retcl. Fails the test if /proc/self/exe cannot be read. */
void tu_cli_find_tool(char *path, size_t cap);

/* The whole file as a NUL-terminated string (caller frees), its length in
 * *len if len is not NULL; NULL if it cannot be read. */
char *tu_read_file(const char *path, size_t *len);

/* Run tool with the NULL-terminated arguments args (at most 62), with
 * RETCL_KERNEL_PATHS set to kernel_paths unless that is NULL. Its output
 * goes through two files in folder scratch, removed afterwards. Fails the
 * test if the program cannot be run. */
tu_cli_result tu_cli_run(const char *tool, const char *scratch,
                         const char *kernel_paths, const char *const *args);
void tu_cli_result_free(tu_cli_result *r);

#endif
