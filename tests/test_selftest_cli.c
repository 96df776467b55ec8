/* test_selftest_cli.c - `retcl selftest` run as a user runs it: on this
 * device every check passes (exit 0, "N passed, 0 failed", one PASS line
 * per check and no FAIL line), also with the GPU access patterns
 * (RETCL_KERNEL_PATHS=gpu), and its command-line errors exit as the other
 * commands' do. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_runner.h"
#include "testutil.h"

static char g_tool[4200]; /* <build>/tools/retcl */
static char g_dir[4096];  /* scratch folder for the captured output */

typedef tu_cli_result result;
#define result_free tu_cli_result_free

/* Run `retcl <args...>` (NULL-terminated) with kernel_paths, if not NULL,
 * as RETCL_KERNEL_PATHS. */
static result run_tool(const char *kernel_paths, const char *const *args) {
  return tu_cli_run(g_tool, g_dir, kernel_paths, args);
}

static void setup(void) {
  tu_cli_find_tool(g_tool, sizeof g_tool);
  snprintf(g_dir, sizeof g_dir, "%s/retcl-selftest-cli-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(g_dir)) g_dir[0] = '\0';
}

static void teardown(void) {
  if (g_dir[0]) rmdir(g_dir);
}

/* A passing run: exit 0, nothing on stderr, every check line a PASS with
 * its error and tolerance, and the summary counting them with 0 failed. */
static void assert_all_pass(const result *r) {
  ck_assert_msg(r->status == 0, "exit status %d; stdout:\n%s\nstderr:\n%s",
                r->status, r->out, r->err);
  ck_assert_msg(r->err[0] == '\0', "stderr is not empty: %s", r->err);
  size_t pass = 0;
  for (const char *line = r->out; line && *line;) {
    ck_assert_msg(strncmp(line, "FAIL", 4) != 0, "a check failed: %.200s",
                  line);
    if (strncmp(line, "PASS  ", 6) == 0) {
      const char *eol = strchr(line, '\n');
      const char *err = strstr(line, " rel.err ");
      ck_assert_msg(err && (!eol || err < eol) && strstr(err, "(tol "),
                    "PASS line without its error and tolerance: %.200s", line);
      ++pass;
    }
    line = strchr(line, '\n');
    if (line) ++line;
  }
  char summary[64];
  snprintf(summary, sizeof summary, "\n%zu passed, 0 failed", pass);
  ck_assert_msg(pass >= 10 && strstr(r->out, summary),
                "no summary '%s' matching the %zu PASS lines:\n%s",
                summary + 1, pass, r->out);
  ck_assert_ptr_nonnull(strstr(r->out, "device:"));
}

START_TEST(selftest_passes_on_this_device) {
  ck_assert_msg(g_dir[0], "no scratch folder");
  const char *args[] = {"selftest", NULL};
  result r = run_tool(NULL, args);
  assert_all_pass(&r);
  /* Every family of checks is there. */
  const char *families[] = {"PASS  rotation", "PASS  retention parallel raw",
                            "PASS  retention recurrent raw",
                            "PASS  retention chunkwise raw",
                            "PASS  retention parallel torchscale",
                            "PASS  retention recurrent torchscale",
                            "PASS  retention chunkwise torchscale",
                            "PASS  group norm rms", "PASS  group norm layer",
                            "PASS  msr layer", "PASS  model chunkwise prefill",
                            "pos 2147483646",
                            /* the model against the double reference
                             * model, deepnorm on and off, both FFN
                             * activations, every mode */
                            "PASS  model parallel vs reference, gelu FFN",
                            "PASS  model chunkwise vs reference, swish FFN",
                            "PASS  model recurrent vs reference, deepnorm, "
                            "swish FFN",
                            "PASS  model recurrent vs reference, deepnorm, "
                            "gelu FFN"};
  for (size_t i = 0; i < sizeof families / sizeof families[0]; ++i)
    ck_assert_msg(strstr(r.out, families[i]), "no '%s' check in:\n%s",
                  families[i], r.out);
  result_free(&r);
}
END_TEST

START_TEST(selftest_quick_passes_with_gpu_access_patterns) {
  ck_assert_msg(g_dir[0], "no scratch folder");
  const char *args[] = {"selftest", "--quick", NULL};
  result r = run_tool("gpu", args);
  assert_all_pass(&r);
  ck_assert_ptr_nonnull(strstr(r.out, "RETCL_KERNEL_PATHS=gpu"));
  result_free(&r);
}
END_TEST

START_TEST(selftest_command_line_errors) {
  ck_assert_msg(g_dir[0], "no scratch folder");
  const char *bad_opt[] = {"selftest", "--fast", NULL};
  result r = run_tool(NULL, bad_opt);
  ck_assert_int_eq(r.status, 2);
  ck_assert_ptr_nonnull(strstr(r.err, "retcl selftest: unknown option"));
  result_free(&r);
  const char *no_dev[] = {"selftest", "--device", "no-such-device-xyz", NULL};
  r = run_tool(NULL, no_dev);
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strncmp(r.err, "retcl: error: ", 14) == 0 &&
                    strstr(r.err, "no-such-device-xyz"),
                "stderr: %s", r.err);
  ck_assert_msg(!strstr(r.out, "PASS"), "ran checks without a device");
  result_free(&r);
  const char *help[] = {"help", "selftest", NULL};
  r = run_tool(NULL, help);
  ck_assert_int_eq(r.status, 0);
  ck_assert_ptr_nonnull(strstr(r.out, "usage: retcl selftest"));
  result_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("selftest_cli");
  TCase *tc = tcase_create("selftest");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, selftest_passes_on_this_device);
  tcase_add_test(tc, selftest_quick_passes_with_gpu_access_patterns);
  tcase_add_test(tc, selftest_command_line_errors);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
