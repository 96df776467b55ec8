/* test_tune_cli.c - `retcl tune` run as a user runs it, on families other
 * than the GEMM (whose search takes minutes): with a budget of a second
 * or two it still checks and times the defaults and a few candidates,
 * prints one row per shape with the speed-up, and writes a record that
 * RETCL_PARAMS accepts (`retcl params` shows each key it sets as coming
 * from the file). group_norm is searched in both access patterns, rotation
 * has no access pattern at all; both run in seconds on PoCL. Then the
 * command-line errors. */
#define _DEFAULT_SOURCE /* mkdtemp, setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_runner.h"
#include "testutil.h"

static char g_tool[4200]; /* <build>/tools/retcl */
static char g_dir[4096];  /* scratch folder of this test case */

typedef tu_cli_result result;
#define result_free tu_cli_result_free

static result run_tool(const char *const *args) {
  return tu_cli_run(g_tool, g_dir, NULL, args);
}

static void setup(void) {
  tu_cli_find_tool(g_tool, sizeof g_tool);
  snprintf(g_dir, sizeof g_dir, "%s/retcl-tune-cli-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(g_dir)) g_dir[0] = '\0';
}

static void teardown(void) {
  if (g_dir[0]) rmdir(g_dir);
}

/* The line of `text` that starts with `start`, copied into line. */
static int find_line(const char *text, const char *start, char *line,
                     size_t cap) {
  for (const char *p = text; p && *p;) {
    const char *eol = strchr(p, '\n');
    const size_t len = eol ? (size_t)(eol - p) : strlen(p);
    if (!strncmp(p, start, strlen(start))) {
      snprintf(line, cap, "%.*s", (int)len, p);
      return 1;
    }
    p = eol ? eol + 1 : NULL;
  }
  return 0;
}

/* Tune `family` for `budget` into a file, then hand the file to `retcl
 * params` as RETCL_PARAMS. shapes: the start of each table row. keys: the
 * family's parameters; each one the file names must show the file as its
 * level. */
static void tune_and_load(const char *family, const char *budget,
                          const char *const *shapes, size_t n_shapes,
                          const char *const *keys, size_t n_keys) {
  ck_assert_msg(g_dir[0], "no scratch folder");
  char out[4200];
  snprintf(out, sizeof out, "%s/%s.json", g_dir, family);
  const char *args[] = {"tune", "--family", family, "--budget", budget,
                        "--out", out, NULL};
  result r = run_tool(args);
  ck_assert_msg(r.status == 0, "exit status %d; stdout:\n%s\nstderr:\n%s",
                r.status, r.out, r.err);
  char want[128], line[512];
  snprintf(want, sizeof want, "family:  %s", family);
  ck_assert_msg(strstr(r.out, "device:  ") && strstr(r.out, want),
                "no device or family line:\n%s", r.out);
  ck_assert_msg(strstr(r.out, "speed-up"), "no table:\n%s", r.out);
  for (size_t i = 0; i < n_shapes; ++i) {
    ck_assert_msg(find_line(r.out, shapes[i], line, sizeof line),
                  "no row for '%s':\n%s", shapes[i], r.out);
    /* default, tuned, speed-up: the row ends in "1.23x". */
    const size_t len = strlen(line);
    ck_assert_msg(len > 2 && line[len - 1] == 'x' && strchr(line, '.'),
                  "row without its speed-up: %s", line);
  }
  ck_assert_msg(strstr(r.out, "candidates tried of") &&
                    strstr(r.out, "0 rejected"),
                "no summary, or a rejected candidate:\n%s\n%s", r.out, r.err);
  ck_assert_msg(strstr(r.out, "written to "), "no file written:\n%s", r.out);
  /* The progress bar, drawn once (stderr is not a terminal here). */
  ck_assert_msg(strstr(r.err, "] tune ") && strstr(r.err, "tried"),
                "no progress bar on stderr:\n%s", r.err);
  result_free(&r);

  char *json = tu_read_file(out, NULL);
  ck_assert_msg(json, "cannot read %s", out);
  snprintf(want, sizeof want, "{\"%s\": {", family);
  ck_assert_msg(!strncmp(json, want, strlen(want)), "unexpected record: %s",
                json);

  setenv("RETCL_PARAMS", out, 1);
  const char *params[] = {"params", NULL};
  r = run_tool(params);
  unsetenv("RETCL_PARAMS");
  ck_assert_msg(r.status == 0 && r.err[0] == '\0',
                "RETCL_PARAMS=%s (%s) refused: status %d, %s", out, json,
                r.status, r.err);
  for (size_t i = 0; i < n_keys; ++i) {
    char quoted[64], name[64];
    snprintf(quoted, sizeof quoted, "\"%s\":", keys[i]);
    if (!strstr(json, quoted)) continue;
    snprintf(name, sizeof name, "%s.%s ", family, keys[i]);
    ck_assert_msg(find_line(r.out, name, line, sizeof line) &&
                      strstr(line, "RETCL_PARAMS"),
                  "%s is in the file (%s) but not taken from it:\n%s",
                  keys[i], json, r.out);
  }
  result_free(&r);
  free(json);
  unlink(out);
}

START_TEST(tune_group_norm_writes_a_record_params_accepts) {
  const char *shapes[] = {"B1 T512 H4 D128 rms, swish gate (prefill)",
                          "B8 T1 H4 D128 rms, swish gate (decode)",
                          "T512 rows of 512 rms, weight (model norm)"};
  const char *keys[] = {"access", "group_items", "row_items"};
  tune_and_load("group_norm", "2s", shapes, 3, keys, 3);
}
END_TEST

START_TEST(tune_rotation_writes_a_record_params_accepts) {
  const char *shapes[] = {"B1 T512 H4 D128 from position 0 (prefill)",
                          "B8 T1 H4 D128 at position 1000 (decode)"};
  const char *keys[] = {"group_tokens"};
  tune_and_load("rotation", "1s", shapes, 2, keys, 1);
}
END_TEST

START_TEST(tune_command_line_errors) {
  ck_assert_msg(g_dir[0], "no scratch folder");
  const char *bad_family[] = {"tune", "--family", "softmax", NULL};
  result r = run_tool(bad_family);
  ck_assert_int_eq(r.status, 2);
  ck_assert_msg(strstr(r.err, "--family softmax") &&
                    strstr(r.err, "retention") && strstr(r.err, "all"),
                "stderr: %s", r.err);
  result_free(&r);
  const char *bad_budget[] = {"tune", "--family", "rotation", "--budget",
                              "5x", NULL};
  r = run_tool(bad_budget);
  ck_assert_int_eq(r.status, 2);
  ck_assert_ptr_nonnull(strstr(r.err, "--budget 5x"));
  result_free(&r);
  /* The help lists every family the search knows. */
  const char *help[] = {"help", "tune", NULL};
  r = run_tool(help);
  ck_assert_int_eq(r.status, 0);
  const char *names[] = {"rotation", "retention", "group_norm", "elementwise",
                         "linear",   "gemm",      "all"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
    char want[64];
    snprintf(want, sizeof want, "\n    %s ", names[i]);
    ck_assert_msg(strstr(r.out, want), "help does not list %s:\n%s", names[i],
                  r.out);
  }
  result_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("tune_cli");
  TCase *tc = tcase_create("tune");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, tune_group_norm_writes_a_record_params_accepts);
  tcase_add_test(tc, tune_rotation_writes_a_record_params_accepts);
  tcase_add_test(tc, tune_command_line_errors);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
