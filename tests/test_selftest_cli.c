/* test_selftest_cli.c - `retcl selftest` run as a user runs it: on this
 * device every check passes (exit 0, "N passed, 0 failed", one PASS line
 * per check and no FAIL line), also with the GPU access patterns
 * (RETCL_KERNEL_PATHS=gpu), and its command-line errors exit as the other
 * commands' do. */
#define _DEFAULT_SOURCE /* mkdtemp, readlink, setenv */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char g_tool[4200]; /* <build>/tools/retcl */
static char g_dir[4096];  /* scratch folder for the captured output */

/* ctest runs <build>/tests/test_selftest_cli; the program is
 * <build>/tools/retcl. */
static void find_tool(void) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ck_assert_msg(n > 0, "readlink(/proc/self/exe) failed");
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  ck_assert_ptr_nonnull(slash);
  *slash = '\0';
  snprintf(g_tool, sizeof g_tool, "%s/../tools/retcl", self);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  buf[got] = '\0';
  return buf;
}

typedef struct result {
  int status;      /* exit status, -1 if it did not exit normally */
  char *out, *err; /* its stdout and stderr */
} result;

static void result_free(result *r) {
  free(r->out);
  free(r->err);
}

/* Run `retcl <argv...>` (NULL-terminated) with kernel_paths, if not NULL,
 * as RETCL_KERNEL_PATHS; stdout and stderr go through files. */
static result run_tool(const char *kernel_paths, const char *const *args) {
  const char *argv[16];
  int argc = 0;
  argv[argc++] = g_tool;
  for (; *args && argc < 15; ++args) argv[argc++] = *args;
  argv[argc] = NULL;
  char out_path[4200], err_path[4200];
  snprintf(out_path, sizeof out_path, "%s/stdout.txt", g_dir);
  snprintf(err_path, sizeof err_path, "%s/stderr.txt", g_dir);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
    if (kernel_paths) setenv("RETCL_KERNEL_PATHS", kernel_paths, 1);
    execv(g_tool, (char *const *)argv);
    _exit(127);
  }
  int ws = 0;
  ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
  result r;
  r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  ck_assert_msg(r.status != 127, "cannot execute %s", g_tool);
  ck_assert_ptr_nonnull(r.out);
  ck_assert_ptr_nonnull(r.err);
  unlink(out_path);
  unlink(err_path);
  return r;
}

static void setup(void) {
  find_tool();
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
                            "pos 2147483646"};
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
