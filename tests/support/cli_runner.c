/* cli_runner.c - see cli_runner.h. */
#define _DEFAULT_SOURCE /* readlink, setenv, mkdtemp */
#include "cli_runner.h"
#include "testutil.h"

#include <check.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void tu_cli_find_tool(char *path, size_t cap) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ck_assert_msg(n > 0, "readlink(/proc/self/exe) failed");
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  ck_assert_ptr_nonnull(slash);
  *slash = '\0';
  snprintf(path, cap, "%s/../tools/retcl", self);
}

char *tu_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
  size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
  fclose(f);
  if (!buf) return NULL;
  buf[got] = '\0';
  if (len) *len = got;
  return buf;
}

tu_cli_result tu_cli_run(const char *tool, const char *scratch,
                         const char *kernel_paths, const char *const *args) {
  const char *argv[64];
  int argc = 0;
  argv[argc++] = tool;
  for (; *args && argc < 63; ++args) argv[argc++] = *args;
  argv[argc] = NULL;
  char out_path[4200], err_path[4200];
  snprintf(out_path, sizeof out_path, "%s/stdout.txt", scratch);
  snprintf(err_path, sizeof err_path, "%s/stderr.txt", scratch);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
    if (kernel_paths) setenv("RETCL_KERNEL_PATHS", kernel_paths, 1);
    execv(tool, (char *const *)argv);
    _exit(127);
  }
  int ws = 0;
  ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
  tu_cli_result r;
  r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  r.out = tu_read_file(out_path, NULL);
  r.err = tu_read_file(err_path, NULL);
  ck_assert_msg(r.status != 127, "cannot execute %s", tool);
  ck_assert_ptr_nonnull(r.out);
  ck_assert_ptr_nonnull(r.err);
  unlink(out_path);
  unlink(err_path);
  return r;
}

void tu_cli_result_free(tu_cli_result *r) {
  free(r->out);
  free(r->err);
}

void tu_cli_fixture_setup(tu_cli_fixture *fx, const char *prefix,
                          const char *const *init_args) {
  tu_cli_find_tool(fx->tool, sizeof fx->tool);
  fx->model_rc = -1;
  fx->init_out[0] = '\0';
  snprintf(fx->dir, sizeof fx->dir, "%s/%s-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", prefix);
  if (!mkdtemp(fx->dir)) {
    fx->dir[0] = '\0';
    return;
  }
  snprintf(fx->model, sizeof fx->model, "%s/model", fx->dir);
  const char *argv[63] = {"init-model", "--out", fx->model};
  int argc = 3;
  for (; *init_args && argc < 62; ++init_args) argv[argc++] = *init_args;
  argv[argc] = NULL;
  tu_cli_result r = tu_cli_run(fx->tool, fx->dir, NULL, argv);
  fx->model_rc = r.status;
  snprintf(fx->init_out, sizeof fx->init_out, "%s%s", r.out, r.err);
  tu_cli_result_free(&r);
}

void tu_cli_fixture_teardown(tu_cli_fixture *fx) {
  if (fx->dir[0]) tu_rm_tree(fx->dir);
}

tu_cli_result tu_cli_run_list(const char *tool, const char *scratch,
                              const char *first, ...) {
  const char *argv[63];
  int argc = 0;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a && argc < 62; a = va_arg(ap, const char *))
    argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;
  return tu_cli_run(tool, scratch, NULL, argv);
}

const char *tu_line_after(const char *s, const char *label) {
  size_t n = strlen(label);
  for (const char *p = s; p && *p;) {
    if (strncmp(p, label, n) == 0) return p + n;
    p = strchr(p, '\n');
    if (p) ++p;
  }
  return NULL;
}
