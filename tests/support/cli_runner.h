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
/* tu_cli_run with the NULL-terminated arguments listed inline (no
 * RETCL_KERNEL_PATHS): run_tool(...) of the suites. */
tu_cli_result tu_cli_run_list(const char *tool, const char *scratch,
                              const char *first, ...);
void tu_cli_result_free(tu_cli_result *r);

/* What a suite of model commands sets up for each test case: the program,
 * a fresh scratch folder $TMPDIR/<prefix>-XXXXXX (dir is "" when it cannot
 * be made) and a model <dir>/model written by `retcl init-model --out
 * <model>` and then init_args (NULL-terminated). Setup asserts nothing (a
 * failing fixture would not name the test): model_rc and init_out (its
 * stdout and stderr) keep how init-model went for TU_CLI_REQUIRE_MODEL. */
typedef struct tu_cli_fixture {
  char tool[4200]; /* <build>/tools/retcl */
  char dir[4096];
  char model[4200];
  int model_rc; /* exit status of init-model, -1 if it did not run */
  char init_out[4096];
} tu_cli_fixture;

void tu_cli_fixture_setup(tu_cli_fixture *fx, const char *prefix,
                          const char *const *init_args);
/* Removes the scratch folder and everything in it. */
void tu_cli_fixture_teardown(tu_cli_fixture *fx);

#define TU_CLI_REQUIRE_MODEL(fx)                                            \
  ck_assert_msg((fx)->dir[0] && (fx)->model_rc == 0,                        \
                "init-model failed (%d): %s", (fx)->model_rc, (fx)->init_out)

/* The rest of the line after "label" at the start of a line of s, or
 * NULL. */
const char *tu_line_after(const char *s, const char *label);

#endif
