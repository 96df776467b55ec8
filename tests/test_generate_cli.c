/* test_generate_cli.c - `retcl generate` with several prompts, run as a
 * user runs it: a batch (--prompt repeated, or --prompts FILE) prefilled
 * packed into a state pool and decoded together gives, for every sequence,
 * the tokens a single-prompt `retcl generate` of that prompt gives (greedy,
 * and seeded sampling); --end-token stops a sequence there and the others
 * go on; the summary reports the steps and the aggregate speed; bad prompt
 * lists and files are usage errors naming the line and item. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_runner.h"
#include "testutil.h"

#define V 50 /* the fixture model's vocabulary */
#define MAX_IDS 64

/* The program, this test case's scratch folder and its model. */
static tu_cli_fixture g_cli;

typedef tu_cli_result result;

static result run_argv(const char *const *argv) {
  return tu_cli_run(g_cli.tool, g_cli.dir, NULL, argv);
}

#define run_tool(...) tu_cli_run_list(g_cli.tool, g_cli.dir, __VA_ARGS__)
#define line_after tu_line_after

static void setup(void) {
  /* chunk 4: the prompts below are shorter and longer than a chunk. */
  static const char *const init_args[] = {
      "--embed-dim", "32", "--heads", "2", "--ffn-dim", "48",
      "--layers", "2", "--vocab", "50", "--chunk", "4", "--seed", "11", NULL};
  tu_cli_fixture_setup(&g_cli, "retcl-gen", init_args);
}

static void teardown(void) { tu_cli_fixture_teardown(&g_cli); }

#define REQUIRE_MODEL() TU_CLI_REQUIRE_MODEL(&g_cli)

/* The ids on the line labelled `label` (to the end of that line). */
static size_t ids_after(const char *out, const char *label, int32_t *ids) {
  const char *p = line_after(out, label);
  ck_assert_msg(p != NULL, "no '%s' line:\n%s", label, out);
  const char *eol = strchr(p, '\n');
  size_t n = 0;
  char *end;
  while (n < MAX_IDS && (!eol || p < eol)) {
    long v = strtol(p, &end, 10);
    if (end == p || (eol && end > eol)) break;
    ids[n++] = (int32_t)v;
    p = end;
  }
  return n;
}

/* Tokens of a single-prompt run of prompt with extra options. */
static size_t single(const char *prompt, const char *const *extra,
                     int32_t *ids) {
  const char *argv[40] = {"generate", "--model", g_cli.model, "--prompt",
                          prompt};
  int argc = 5;
  for (size_t i = 0; extra[i]; ++i) argv[argc++] = extra[i];
  argv[argc] = NULL;
  result r = run_argv(argv);
  ck_assert_msg(r.status == 0, "single %s: status %d: %s", prompt, r.status,
                r.err);
  size_t n = ids_after(r.out, "tokens:", ids);
  tu_cli_result_free(&r);
  return n;
}

/* Runs the batch (argv), then each prompt alone with the same extra
 * options, and checks sequence i's line equals prompt i's run. Returns
 * the batch's output (caller frees). */
static result batch_matches_singles(const char *const *argv,
                                    const char *const *prompts, size_t n,
                                    const char *const *extra) {
  result b = run_argv(argv);
  ck_assert_msg(b.status == 0, "batch: status %d: %s", b.status, b.err);
  ck_assert_str_eq(b.err, "");
  for (size_t i = 0; i < n; ++i) {
    char label[32];
    snprintf(label, sizeof label, "seq %zu:", i);
    int32_t got[MAX_IDS], want[MAX_IDS];
    const size_t ng = ids_after(b.out, label, got);
    const size_t nw = single(prompts[i], extra, want);
    ck_assert_msg(ng == nw, "prompt %zu (%s): %zu tokens in the batch, %zu "
                  "alone\n%s",
                  i, prompts[i], ng, nw, b.out);
    for (size_t j = 0; j < ng; ++j)
      ck_assert_msg(got[j] == want[j],
                    "prompt %zu (%s) token %zu: %d in the batch, %d alone\n%s",
                    i, prompts[i], j, got[j], want[j], b.out);
  }
  return b;
}

/* Lengths 1 (shorter than a chunk), 4 (one chunk), 9 and 3. */
static const char *const PROMPTS[] = {"7", "5,17,3,49", "1,2,3,4,5,6,7,8,9",
                                      "33,0,12"};

START_TEST(batch_equals_single_prompt_runs) {
  REQUIRE_MODEL();
  const char *modes[3] = {"chunkwise", "parallel", "recurrent"};
  const char *mode = modes[_i];
  const char *argv[] = {"generate", "--model",  g_cli.model, "--prompt",
                        PROMPTS[0], "--prompt", PROMPTS[1],  "--prompt",
                        PROMPTS[2], "--prompt", PROMPTS[3],  "--max-new",
                        "6",        "--mode",   mode,        NULL};
  const char *extra[] = {"--max-new", "6", "--mode", mode, NULL};
  /* Every prompt alone for the default mode; for the others (to keep the
   * test short) the shortest and the longest. */
  static const char *const ends[] = {"7", "1,2,3,4,5,6,7,8,9"};
  result b = _i == 0 ? batch_matches_singles(argv, PROMPTS, 4, extra)
                     : batch_matches_singles(argv, ends, 1, extra);
  if (_i != 0) { /* sequence 2 is the longest */
    int32_t got[MAX_IDS], want[MAX_IDS];
    const size_t n = ids_after(b.out, "seq 2:", got);
    ck_assert_uint_eq(single(ends[1], extra, want), n);
    ck_assert_mem_eq(got, want, n * sizeof *got);
  }
  const char *pr = line_after(b.out, "prompts:");
  ck_assert_msg(pr && strstr(pr, "4 sequences, 17 tokens (1 to 9 each)"),
                "prompts line: %s", pr ? pr : "(none)");
  /* 6 tokens each: the first from the prefill, then 5 steps of 4 rows. */
  const char *dec = line_after(b.out, "decode:");
  ck_assert_msg(dec && strstr(dec, "5 steps, 20 tokens") &&
                    strstr(dec, "tokens/s aggregate"),
                "decode line: %s", dec ? dec : "(none)");
  const char *tot = line_after(b.out, "total:");
  ck_assert_msg(tot && strstr(tot, "24 new tokens"), "total line: %s",
                tot ? tot : "(none)");
  const char *mem = line_after(b.out, "memory:");
  ck_assert_msg(mem && strstr(mem, "state pool of 4 slots"), "memory: %s",
                mem ? mem : "(none)");
  tu_cli_result_free(&b);
}
END_TEST

/* Seeded sampling: each sequence draws from its own generator seeded by
 * --seed, so it matches its prompt alone with that seed. */
START_TEST(sampled_batch_equals_single_prompt_runs) {
  REQUIRE_MODEL();
  const char *argv[] = {"generate", "--model",       g_cli.model, "--prompt",
                        PROMPTS[1], "--prompt",      PROMPTS[2],  "--max-new",
                        "8",        "--temperature", "1.3",       "--top-k",
                        "20",       "--seed",        "5",         NULL};
  const char *extra[] = {"--max-new", "8", "--temperature", "1.3",
                         "--top-k", "20", "--seed", "5", NULL};
  result b = batch_matches_singles(argv, PROMPTS + 1, 2, extra);
  tu_cli_result_free(&b);
}
END_TEST

static void write_file(const char *name, const char *text, char *path,
                       size_t cap) {
  snprintf(path, cap, "%s/%s", g_cli.dir, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  ck_assert_int_eq(fclose(f), 0);
}

/* --prompts FILE: commas, spaces or both; blank lines skipped; the same
 * tokens as the same prompts given with --prompt (which the test above
 * holds to single-prompt runs). */
START_TEST(prompts_file_equals_prompt_options) {
  REQUIRE_MODEL();
  char path[4400];
  write_file("prompts.txt",
             "7\n5 17 3 49\n\n  1, 2,3 ,4,5 6 7\t8 9  \r\n33,0,12", path,
             sizeof path);
  result f = run_tool("generate", "--model", g_cli.model, "--prompts", path,
                      "--max-new", "5", NULL);
  ck_assert_msg(f.status == 0, "status %d: %s", f.status, f.err);
  result b =
      run_tool("generate", "--model", g_cli.model, "--prompt", PROMPTS[0],
               "--prompt", PROMPTS[1], "--prompt", PROMPTS[2], "--prompt",
               PROMPTS[3], "--max-new", "5", NULL);
  ck_assert_msg(b.status == 0, "status %d: %s", b.status, b.err);
  for (int s = 0; s < 4; ++s) {
    char label[16];
    snprintf(label, sizeof label, "seq %d:", s);
    int32_t got[MAX_IDS], want[MAX_IDS];
    const size_t n = ids_after(f.out, label, got);
    ck_assert_uint_eq(n, 5);
    ck_assert_uint_eq(ids_after(b.out, label, want), n);
    ck_assert_mem_eq(got, want, n * sizeof *got);
  }
  ck_assert_ptr_null(line_after(f.out, "seq 4:"));
  tu_cli_result_free(&f);
  tu_cli_result_free(&b);
}
END_TEST

/* --end-token: the sequence that emits it stops there (the id printed
 * last); the others run to --max-new; a single prompt stops too. */
START_TEST(end_token_stops_a_sequence) {
  REQUIRE_MODEL();
  /* Pick as end token the 3rd token prompt 2 generates alone. */
  const char *plain[] = {"--max-new", "8", NULL};
  int32_t alone[MAX_IDS];
  ck_assert_uint_eq(single(PROMPTS[2], plain, alone), 8);
  char end[16];
  snprintf(end, sizeof end, "%d", alone[2]);
  size_t stop = 0; /* first occurrence in prompt 2's tokens */
  while (alone[stop] != alone[2]) ++stop;

  const char *argv[] = {"generate", "--model",   g_cli.model, "--prompt",
                        PROMPTS[1], "--prompt",  PROMPTS[2],  "--prompt",
                        PROMPTS[3], "--max-new", "8",         "--end-token",
                        end,        NULL};
  const char *extra[] = {"--max-new", "8", "--end-token", end, NULL};
  result b = batch_matches_singles(argv, PROMPTS + 1, 3, extra);
  int32_t got[MAX_IDS];
  ck_assert_uint_eq(ids_after(b.out, "seq 1:", got), stop + 1);
  ck_assert_int_eq(got[stop], alone[2]);
  for (size_t j = 0; j <= stop; ++j) ck_assert_int_eq(got[j], alone[j]);
  /* Every sequence either ran 8 tokens or ended on the end token. */
  for (int s = 0; s < 3; ++s) {
    char label[16];
    snprintf(label, sizeof label, "seq %d:", s);
    const size_t n = ids_after(b.out, label, got);
    ck_assert(n >= 1 && n <= 8);
    for (size_t j = 0; j + 1 < n; ++j)
      ck_assert_msg(got[j] != alone[2], "seq %d went on after the end", s);
    ck_assert(n == 8 || got[n - 1] == alone[2]);
  }
  const char *tot = line_after(b.out, "total:");
  ck_assert_msg(tot && strstr(tot, "sequences ended on the end token"),
                "total: %s", tot ? tot : "(none)");
  tu_cli_result_free(&b);
}
END_TEST

static void assert_usage_error(result *r, const char *needle) {
  ck_assert_msg(r->status == 2, "exit status %d, expected 2; stderr: %s",
                r->status, r->err);
  ck_assert_msg(strncmp(r->err, "retcl generate: ", 16) == 0,
                "stderr: '%s'", r->err);
  ck_assert_msg(strstr(r->err, needle), "stderr '%s' lacks '%s'", r->err,
                needle);
  ck_assert_msg(strstr(r->out, "seq ") == NULL, "output was written:\n%s",
                r->out);
  tu_cli_result_free(r);
}

START_TEST(bad_prompt_lists_are_rejected) {
  REQUIRE_MODEL();
  result r = run_tool("generate", "--model", g_cli.model, "--prompt", "1,2",
                      "--prompt", "3,,4", "--max-new", "2", NULL);
  assert_usage_error(&r, "--prompt (#2): item 2");
  r = run_tool("generate", "--model", g_cli.model, "--prompt", "1,2",
               "--prompt", "", "--max-new", "2", NULL);
  assert_usage_error(&r, "--prompt (#2) is empty");
  r = run_tool("generate", "--model", g_cli.model, "--prompt", "1,2",
               "--prompt", "3,50", "--max-new", "2", NULL);
  assert_usage_error(&r, "prompt 2: token 50 (item 2) is not below the "
                         "vocabulary size 50");
  r = run_tool("generate", "--model", g_cli.model, "--prompt", "1,2",
               "--prompt", "3", "--max-new", "2", "--end-token", "50", NULL);
  assert_usage_error(&r, "--end-token 50");

  /* Each file is refused on its own; the last also with --prompt. */
  static const struct {
    const char *name, *text, *needle;
  } bad_files[] = {
      {"bad1.txt", "1,2\n3 x 4\n", "line 2: item 2 is 'x'"},
      {"bad2.txt", "1,2,\n", "line 1: ends with a comma"},
      {"bad3.txt", "1,,2\n", "line 1: item 2 is ''"},
      {"bad4.txt", "1 -2\n", "item 2 is '-2'"},
      {"bad5.txt", "\n  \n", "holds no prompt"},
      {"bad6.txt", "2147483648\n", "2147483648"},
  };
  char path[4400];
  for (size_t i = 0; i < sizeof bad_files / sizeof *bad_files; ++i) {
    write_file(bad_files[i].name, bad_files[i].text, path, sizeof path);
    r = run_tool("generate", "--model", g_cli.model, "--prompts", path,
                 "--max-new", "2", NULL);
    assert_usage_error(&r, bad_files[i].needle);
  }
  r = run_tool("generate", "--model", g_cli.model, "--prompts", path,
               "--prompt", "1", "--max-new", "2", NULL);
  assert_usage_error(&r, "give one of");

  /* A missing file is a runtime error (exit 1) naming it. */
  char missing[4400];
  snprintf(missing, sizeof missing, "%s/no-such-file", g_cli.dir);
  r = run_tool("generate", "--model", g_cli.model, "--prompts", missing,
               "--max-new", "2", NULL);
  ck_assert_msg(r.status == 1 && strstr(r.err, "no-such-file"),
                "status %d: %s", r.status, r.err);
  tu_cli_result_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("generate_cli");
  TCase *tc = tcase_create("generate_cli");
  tcase_add_unchecked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, batch_equals_single_prompt_runs, 0, 3);
  tcase_add_test(tc, sampled_batch_equals_single_prompt_runs);
  tcase_add_test(tc, prompts_file_equals_prompt_options);
  tcase_add_test(tc, end_token_stops_a_sequence);
  tcase_add_test(tc, bad_prompt_lists_are_rejected);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
