/* test_train_cli.c - `retcl train`, `retcl grad` and byte-level text, run
 * as a user runs them: a byte-level model learns a small text (the
 * held-out loss falls), a run of N steps equals N/2 steps resumed for N/2
 * more byte for byte, the gradients file holds the loss and every tensor,
 * and the trained model generates text. */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_runner.h"
#include "reference.h"
#include "testutil.h"

static char g_tool[4200], g_dir[4096];

/* Run the tool with the NULL-terminated arguments after argv[0]. */
#define run_tool(...) tu_cli_run_list(g_tool, g_dir, __VA_ARGS__)

static void path(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", g_dir, name);
}

/* A scratch folder, a byte-level model and a text to learn. */
static void setup(char *model, char *data) {
  tu_cli_find_tool(g_tool, sizeof g_tool);
  snprintf(g_dir, sizeof g_dir, "%s/retcl-train-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(g_dir));
  path(model, 4200, "model");
  path(data, 4200, "data.txt");
  tu_cli_result r = run_tool("init-model", "--out", model, "--embed-dim", "32",
                             "--heads", "2", "--ffn-dim", "64", "--layers",
                             "1", "--vocab", "256", "--chunk", "16", NULL);
  ck_assert_msg(r.status == 0, "init-model: %s", r.err);
  tu_cli_result_free(&r);
  /* A text with structure to find: numbered lines of a few words. */
  FILE *f = fopen(data, "w");
  ck_assert_ptr_nonnull(f);
  static const char *const words[] = {"retention ", "decays ", "states ",
                                      "chunks ", "tokens "};
  for (int i = 0; i < 400; ++i)
    fprintf(f, "%d: %s%s\n", i % 10, words[i % 5], words[(i / 5) % 5]);
  fclose(f);
}

/* The held-out losses of a train run's "eval" lines, in order; *bar: the
 * unigram yardstick it prints first. */
static size_t held_out(const char *out, double *loss, size_t cap,
                       double *bar) {
  const char *b = strstr(out, "unigram frequencies: ");
  *bar = b ? strtod(b + strlen("unigram frequencies: "), NULL) : NAN;
  size_t n = 0;
  for (const char *p = out; (p = strstr(p, "\neval ")) && n < cap; ++p) {
    const char *l = strstr(p, "held-out loss ");
    if (l) loss[n++] = strtod(l + strlen("held-out loss "), NULL);
  }
  return n;
}

static void train(const char *from_flag, const char *from, const char *data,
                  const char *steps, const char *out, tu_cli_result *r) {
  *r = run_tool("train", from_flag, from, "--data", data, "--steps", steps,
                "--batch", "4", "--seq", "32", "--lr", "1e-2", "--warmup",
                "4", "--log-every", "5", "--eval-every", "10", "--out", out,
                NULL);
}

START_TEST(train_learns_and_resumes_exactly) {
  char model[4200], data[4200], a[4200], b[4200], c[4200];
  setup(model, data);
  path(a, sizeof a, "a"), path(b, sizeof b, "b"), path(c, sizeof c, "c");
  tu_cli_result r;
  train("--model", model, data, "40", a, &r);
  ck_assert_msg(r.status == 0, "train: %s%s", r.out, r.err);
  double loss[8], bar;
  const size_t n = held_out(r.out, loss, 8, &bar);
  ck_assert_uint_eq(n, 4); /* steps 10, 20, 30, 40 */
  ck_assert_msg(loss[3] < 0.8 * loss[0],
                "held-out loss did not fall: %.4f then %.4f", loss[0],
                loss[3]);
  /* And it has learnt more than the byte frequencies of the text. */
  ck_assert_msg(loss[3] < bar, "held-out loss %.4f is not below the "
                               "unigram bar %.4f", loss[3], bar);
  ck_assert_ptr_nonnull(strstr(r.out, "tokens/s"));
  ck_assert_ptr_nonnull(strstr(r.out, "device memory"));
  tu_cli_result_free(&r);
  /* Stopped after 20 steps, then resumed from the folder: the same bytes
   * as the 40 steps in one go. */
  r = run_tool("train", "--model", model, "--data", data, "--steps", "40",
               "--stop-at", "20", "--batch", "4", "--seq", "32", "--lr",
               "1e-2", "--warmup", "4", "--log-every", "5", "--eval-every",
               "10", "--out", b, NULL);
  ck_assert_msg(r.status == 0, "train: %s", r.err);
  tu_cli_result_free(&r);
  r = run_tool("train", "--resume", b, "--data", data, "--steps", "40",
               "--batch", "4", "--seq", "32", "--lr", "1e-2", "--warmup", "4",
               "--log-every", "5", "--eval-every", "10", "--out", c, NULL);
  ck_assert_msg(r.status == 0, "resume: %s", r.err);
  ck_assert_ptr_nonnull(strstr(r.out, "resuming at step 20"));
  tu_cli_result_free(&r);
  const char *files[] = {"model.safetensors", "optimizer-m.safetensors",
                         "optimizer-v.safetensors", "train_state.txt"};
  for (size_t i = 0; i < 4; ++i) {
    char pa[4300], pc[4300];
    snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
    snprintf(pc, sizeof pc, "%s/%s", c, files[i]);
    size_t la = 0, lc = 0;
    char *da = tu_read_file(pa, &la), *dc = tu_read_file(pc, &lc);
    ck_assert_msg(da && dc && la == lc && !memcmp(da, dc, la),
                  "%s differs between 40 steps and 20 + 20 resumed", files[i]);
    free(da), free(dc);
  }
  /* The trained model reads and writes text. */
  r = run_tool("generate", "--model", a, "--text", "3: ", "--max-new", "12",
               NULL);
  ck_assert_msg(r.status == 0, "generate: %s", r.err);
  ck_assert_ptr_nonnull(strstr(r.out, "text:     3: ["));
  tu_cli_result_free(&r);
  r = run_tool("run", "--model", a, "--text", "1: tokens", NULL);
  ck_assert_msg(r.status == 0, "run: %s", r.err);
  ck_assert_ptr_nonnull(strstr(r.out, "next:"));
  tu_cli_result_free(&r);
  /* A model of token ids refuses --text, naming the reason. */
  char ids[4200];
  path(ids, sizeof ids, "ids");
  r = run_tool("init-model", "--out", ids, "--embed-dim", "16", "--heads",
               "2", "--ffn-dim", "16", "--layers", "1", "--vocab", "300",
               NULL);
  tu_cli_result_free(&r);
  r = run_tool("generate", "--model", ids, "--text", "hi", "--max-new", "1",
               NULL);
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "vocabulary 256"));
  tu_cli_result_free(&r);
  ref_checkpoint_remove(ids);
  const char *dirs[] = {a, b, c, model};
  for (size_t i = 0; i < 4; ++i) {
    char st[4300], pm[4300], pv[4300];
    snprintf(st, sizeof st, "%s/train_state.txt", dirs[i]);
    snprintf(pm, sizeof pm, "%s/optimizer-m.safetensors", dirs[i]);
    snprintf(pv, sizeof pv, "%s/optimizer-v.safetensors", dirs[i]);
    unlink(st), unlink(pm), unlink(pv);
    ref_checkpoint_remove(dirs[i]);
  }
  unlink(data);
  rmdir(g_dir);
}
END_TEST

START_TEST(grad_writes_loss_and_every_tensor) {
  char model[4200], data[4200], out[4200];
  setup(model, data);
  path(out, sizeof out, "grads.safetensors");
  tu_cli_result r = run_tool("grad", "--model", model, "--tokens",
                             "72,101,108,108,111,32,119", "--mode", "parallel",
                             "--out", out, NULL);
  ck_assert_msg(r.status == 0, "grad: %s", r.err);
  ck_assert_ptr_nonnull(strstr(r.out, "loss:"));
  size_t len = 0;
  char *file = tu_read_file(out, &len);
  ck_assert_ptr_nonnull(file);
  /* The header names the loss and each of the model's tensors. */
  ck_assert_ptr_nonnull(strstr(file + 8, "\"loss\""));
  ck_assert_ptr_nonnull(strstr(file + 8, "\"embed_tokens.weight\""));
  ck_assert_ptr_nonnull(strstr(file + 8, "\"layers.0.ffn.fc2.weight\""));
  ck_assert_ptr_nonnull(strstr(file + 8, "\"output_projection.weight\""));
  free(file);
  tu_cli_result_free(&r);
  r = run_tool("grad", "--model", model, "--tokens", "5", "--out", out, NULL);
  ck_assert_int_eq(r.status, 2);
  ck_assert_ptr_nonnull(strstr(r.err, "at least 2"));
  tu_cli_result_free(&r);
  r = run_tool("train", "--model", model, "--data", data, "--out", out, NULL);
  ck_assert_int_eq(r.status, 2);
  ck_assert_ptr_nonnull(strstr(r.err, "--steps"));
  tu_cli_result_free(&r);
  unlink(out), unlink(data);
  ref_checkpoint_remove(model);
  rmdir(g_dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("train_cli");
  TCase *t = tcase_create("train");
  tcase_add_test(t, train_learns_and_resumes_exactly);
  tcase_add_test(t, grad_writes_loss_and_every_tensor);
  suite_add_tcase(s, t);
  return tu_run_suite(s);
}
