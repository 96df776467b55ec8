/* test_fuzz_regressions.c - every input the fuzzers (fuzz/) ever flagged,
 * replayed through the public retcl_model_load: each file under
 * fuzz/regressions/safetensors/ is loaded as model.safetensors next to a
 * valid config.json, each under fuzz/regressions/config/ as config.json
 * next to a valid model.safetensors, and must fail cleanly: FORMAT or IO
 * (INVALID_SIZE too for a config), a message naming the file, no model.
 * The seed corpus (fuzz/corpus/) goes through the same path: its valid_*
 * checkpoints load, everything else fails cleanly. Under RETCL_SANITIZE
 * (scripts/ci_sanitize.sh) that also means no overflow, UB or leak.
 *
 * The files are found from this source file's path (CMake compiles it by
 * absolute path); RETCL_SOURCE_DIR overrides. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <dirent.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* ---- files -------------------------------------------------------------- */

static char g_root[4096]; /* the source tree */

static void find_root(void) {
  const char *env = getenv("RETCL_SOURCE_DIR");
  if (env && *env) {
    snprintf(g_root, sizeof g_root, "%s", env);
    return;
  }
  snprintf(g_root, sizeof g_root, "%s", __FILE__);
  char *tests = strstr(g_root, "tests/test_fuzz_regressions.c");
  ck_assert_msg(tests != NULL,
                "cannot find the source tree from %s; set RETCL_SOURCE_DIR",
                __FILE__);
  if (tests == g_root)
    snprintf(g_root, sizeof g_root, ".");
  else
    tests[-1] = '\0'; /* drop "/tests/..." */
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  ck_assert_ptr_nonnull(buf);
  for (;;) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    cap *= 2;
    buf = realloc(buf, cap);
    ck_assert_ptr_nonnull(buf);
  }
  fclose(f);
  *len = n;
  return buf;
}

static void spill(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot create %s", path);
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
}

static void copy_file(const char *from, const char *to) {
  size_t len;
  char *data = slurp(from, &len);
  spill(to, data, len);
  free(data);
}

/* Sorted regular-file names of dir (NULL-terminated; an absent dir gives
 * an empty list). */
static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **list_files(const char *dir, size_t *count) {
  size_t n = 0, cap = 16;
  char **names = malloc(cap * sizeof *names);
  ck_assert_ptr_nonnull(names);
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0)
        continue;
      if (n + 1 >= cap) {
        cap *= 2;
        names = realloc(names, cap * sizeof *names);
        ck_assert_ptr_nonnull(names);
      }
      names[n] = strdup(e->d_name);
      ck_assert_ptr_nonnull(names[n]);
      ++n;
    }
    closedir(d);
  }
  qsort(names, n, sizeof *names, compare_names);
  names[n] = NULL;
  *count = n;
  return names;
}

static void free_list(char **names) {
  for (size_t i = 0; names[i]; ++i) free(names[i]);
  free(names);
}

/* A scratch checkpoint folder. */
typedef struct scratch {
  char dir[256];
  char config[300];
  char tensors[300];
} scratch;

static void scratch_make(scratch *s) {
  const char *tmp = getenv("TMPDIR");
  snprintf(s->dir, sizeof s->dir, "%s/retcl-fuzzreg-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  ck_assert_msg(mkdtemp(s->dir) != NULL, "mkdtemp failed");
  snprintf(s->config, sizeof s->config, "%s/config.json", s->dir);
  snprintf(s->tensors, sizeof s->tensors, "%s/model.safetensors", s->dir);
}

static void scratch_remove(scratch *s) {
  unlink(s->config);
  unlink(s->tensors);
  rmdir(s->dir);
}

/* The seed corpus's checkpoint config and a checkpoint of it in F32 (see
 * fuzz/make_corpus.py). */
static void corpus_path(char *buf, size_t cap, const char *kind,
                        const char *name) {
  snprintf(buf, cap, "%s/fuzz/corpus/%s/%s", g_root, kind, name);
}

/* ---- replay ------------------------------------------------------------- */

typedef enum expect { EXPECT_CLEAN_FAILURE, EXPECT_LOAD } expect;

/* Load s->dir and check the outcome; which_file names the replayed file
 * in the checkpoint ("config.json" or "model.safetensors"). */
static void load_and_check(retcl_context *ctx, const scratch *s,
                           const char *source, const char *which_file,
                           int config_replay, expect want) {
  retcl_model *model = (retcl_model *)&model; /* must be reset to NULL */
  const retcl_status st = retcl_model_load(ctx, s->dir, &model);
  if (want == EXPECT_LOAD) {
    ck_assert_msg(st == RETCL_SUCCESS, "%s: expected to load, got %s: %s",
                  source, retcl_status_string(st), retcl_last_error(ctx));
    ck_assert_ptr_nonnull(model);
    retcl_model_destroy(model);
    return;
  }
  const int clean = st == RETCL_ERROR_FORMAT || st == RETCL_ERROR_IO ||
                    (config_replay && st == RETCL_ERROR_INVALID_SIZE);
  ck_assert_msg(clean, "%s: expected FORMAT or IO%s, got %s: %s", source,
                config_replay ? " or INVALID_SIZE" : "",
                retcl_status_string(st), retcl_last_error(ctx));
  ck_assert_msg(model == NULL, "%s: failed load left *out set", source);
  /* A config that parses may still not fit the tensors beside it; then
   * the message names model.safetensors. */
  const char *msg = retcl_last_error(ctx);
  ck_assert_msg(strstr(msg, which_file) != NULL ||
                    (config_replay && strstr(msg, "model.safetensors")),
                "%s: message does not name %s: %s", source, which_file, msg);
}

/* Every file of fuzz/<tree>/<kind>/ as the checkpoint's <kind> file, the
 * other file being the corpus's valid one. Returns how many were replayed. */
static size_t replay_dir(retcl_context *ctx, const char *tree,
                         const char *kind, int corpus) {
  const int config_replay = strcmp(kind, "config") == 0;
  char dir[4400], valid_config[4400], valid_tensors[4400];
  snprintf(dir, sizeof dir, "%s/fuzz/%s/%s", g_root, tree, kind);
  corpus_path(valid_config, sizeof valid_config, "config", "valid_small.json");
  corpus_path(valid_tensors, sizeof valid_tensors, "safetensors",
              "valid_f32.safetensors");
  size_t count;
  char **names = list_files(dir, &count);
  for (size_t i = 0; i < count; ++i) {
    char source[4700];
    snprintf(source, sizeof source, "%s/%s", dir, names[i]);
    scratch s;
    scratch_make(&s);
    copy_file(source, config_replay ? s.config : s.tensors);
    copy_file(config_replay ? valid_tensors : valid_config,
              config_replay ? s.tensors : s.config);
    /* Only the corpus's valid_* seeds are whole checkpoints for its
     * config; valid_small.json is the config the tensors were made for. */
    expect want = EXPECT_CLEAN_FAILURE;
    if (corpus && strncmp(names[i], "valid_", 6) == 0 &&
        (!config_replay || strcmp(names[i], "valid_small.json") == 0))
      want = EXPECT_LOAD;
    load_and_check(ctx, &s, source,
                   config_replay ? "config.json" : "model.safetensors",
                   config_replay, want);
    scratch_remove(&s);
  }
  free_list(names);
  return count;
}

/* ---- tests ------------------------------------------------------------- */

/* Files in dir other than README.md, counted by glob(3) rather than by
 * list_files' readdir loop, so a slip in either shows. */
static size_t count_present(const char *dir) {
  char pattern[4500];
  snprintf(pattern, sizeof pattern, "%s/*", dir);
  glob_t g;
  size_t n = 0;
  if (glob(pattern, 0, NULL, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) {
      const char *slash = strrchr(g.gl_pathv[i], '/');
      if (strcmp(slash ? slash + 1 : g.gl_pathv[i], "README.md") != 0) ++n;
    }
    globfree(&g);
  }
  return n;
}

/* Replay fuzz/<tree>/<kind>/ and assert how many files that read: every
 * file present (counted independently) and at least `minimum`, the number
 * committed when this was written. A wrong source tree, a renamed folder
 * or a listing that skips files then fails instead of replaying nothing. */
static void replay_counted(const char *tree, const char *kind, int corpus,
                           size_t minimum) {
  find_root();
  char readme[4400], dir[4400];
  snprintf(readme, sizeof readme, "%s/fuzz/regressions/README.md", g_root);
  ck_assert_msg(access(readme, R_OK) == 0,
                "%s is missing: %s is not the source tree (RETCL_SOURCE_DIR)",
                readme, g_root);
  snprintf(dir, sizeof dir, "%s/fuzz/%s/%s", g_root, tree, kind);
  retcl_context *ctx = tu_context();
  const size_t read = replay_dir(ctx, tree, kind, corpus);
  const size_t present = count_present(dir);
  ck_assert_msg(read == present, "%s: replayed %zu files of the %zu there",
                dir, read, present);
  ck_assert_msg(read >= minimum, "%s: %zu files, fewer than the %zu committed",
                dir, read, minimum);
  retcl_context_destroy(ctx);
}

/* No safetensors regression has been committed yet (fuzz/regressions/
 * README.md lists only a config one), so the folder may be absent and the
 * minimum is 0; the count still has to match what is there. */
START_TEST(safetensors_regressions_fail_cleanly) {
  replay_counted("regressions", "safetensors", 0, 0);
}
END_TEST

START_TEST(config_regressions_fail_cleanly) {
  replay_counted("regressions", "config", 0, 1);
}
END_TEST

/* An empty corpus would make this test (and the fuzzers) vacuous. */
START_TEST(seed_corpus_loads_or_fails_cleanly) {
  replay_counted("corpus", "safetensors", 1, 32);
  replay_counted("corpus", "config", 1, 23);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fuzz_regressions");
  TCase *tc = tcase_create("replay");
  tcase_add_test(tc, safetensors_regressions_fail_cleanly);
  tcase_add_test(tc, config_regressions_fail_cleanly);
  tcase_add_test(tc, seed_corpus_loads_or_fails_cleanly);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
