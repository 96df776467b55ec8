/* cli_runner.c - see cli_runner.h. */
#define _DEFAULT_SOURCE /* readlink, setenv */
#include "cli_runner.h"

#include <check.h>
#include <fcntl.h>
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
