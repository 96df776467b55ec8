/* cli.h - what the subcommands of the `retcl` program share: the command
 * table entry, exit codes, error reporting, option parsing, timing and a
 * seeded random generator. Every subcommand lives in its own cmd_*.c file
 * and is listed once in retcl.c. */
#ifndef RETCL_CLI_H
#define RETCL_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "retcl.h"

/* "MAJOR.MINOR.PATCH" of the header this program was compiled with. */
#define CLI_STR2(x) #x
#define CLI_STR(x) CLI_STR2(x)
#define CLI_HEADER_VERSION     \
  CLI_STR(RETCL_VERSION_MAJOR) \
  "." CLI_STR(RETCL_VERSION_MINOR) "." CLI_STR(RETCL_VERSION_PATCH)

/* Exit codes, the same for every subcommand so scripts can tell a broken
 * installation (1) from a typo (2) from a numerical disagreement (3). */
enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_ERROR = 1, /* a library, OpenCL or host failure */
  CLI_EXIT_USAGE = 2, /* bad command line */
  CLI_EXIT_CHECK = 3  /* ran fine, but a result check failed */
};

typedef struct cli_command {
  const char *name;
  const char *summary; /* one line for `retcl help` */
  /* argv[0] is the subcommand name; returns an exit code. */
  int (*run)(int argc, char **argv);
  /* Full usage text of the subcommand. */
  void (*usage)(FILE *out);
} cli_command;

/* The command called `name` among commands[count], or NULL. */
const cli_command *cli_find_command(const cli_command *const *commands,
                                    size_t count, const char *name);

/* The subcommands (one per cmd_*.c file). */
extern const cli_command cli_cmd_devices;
extern const cli_command cli_cmd_demo;
extern const cli_command cli_cmd_init_model;
extern const cli_command cli_cmd_run;
extern const cli_command cli_cmd_generate;
extern const cli_command cli_cmd_selftest;
extern const cli_command cli_cmd_params;
extern const cli_command cli_cmd_tune;
extern const cli_command cli_cmd_grad;
extern const cli_command cli_cmd_train;

/* ---- errors -------------------------------------------------------------
 * Runtime errors are one line on stderr, "retcl: error: ...". */

/* The program name that starts every message: "retcl", or what another
 * program sharing these helpers sets first (tools/mpi: "retcl-mpi"). */
extern const char *cli_program;

/* "retcl: error: <what>: <status text>: <retcl_last_error(ctx)>";
 * ctx may be NULL for context creation. Returns CLI_EXIT_ERROR. */
int cli_fail(const retcl_context *ctx, retcl_status status, const char *what);
/* "retcl: error: <formatted>". Returns CLI_EXIT_ERROR. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "retcl: error: <call> failed: <CL error name> (<code>)".
 * Returns CLI_EXIT_ERROR. */
int cli_cl_error(const char *call, int cl_err);
/* "retcl <cmd>: <formatted>" plus a hint to `retcl help <cmd>`.
 * Returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- options ------------------------------------------------------------
 * Long options only, "--name value" or "--name=value", so that new
 * subcommands declare a table and get the same syntax and messages. */

typedef enum cli_opt_kind {
  CLI_OPT_STRING, /* const char **target */
  CLI_OPT_SIZE,   /* size_t *target: a non-negative decimal integer */
  CLI_OPT_U64,    /* uint64_t *target */
  CLI_OPT_FLAG,   /* int *target, set to 1; takes no value */
  CLI_OPT_DOUBLE, /* double *target: a finite decimal number */
  CLI_OPT_LIST    /* cli_strings *target: every value of a repeated option */
} cli_opt_kind;

/* The values of a repeatable option, in command-line order (pointers into
 * argv; free items with cli_strings_free). */
typedef struct cli_strings {
  const char **items;
  size_t count;
} cli_strings;
void cli_strings_free(cli_strings *list);

typedef struct cli_option {
  const char *name; /* without the leading "--" */
  cli_opt_kind kind;
  void *target;
} cli_option;

enum { CLI_PARSE_OK = 0, CLI_PARSE_HELP = 1, CLI_PARSE_ERROR = 2 };

/* Parse argv[1..argc) against opts. Prints the message of a usage error
 * itself. Returns CLI_PARSE_HELP for --help / -h. Positional arguments are
 * refused (no subcommand takes one yet). */
int cli_parse_options(const char *cmd, int argc, char **argv,
                      const cli_option *opts, size_t nopts);

/* Token ids "5,17,3" (comma-separated non-negative decimal integers that
 * fit an int32) into a new malloc'd array. A bad or empty item is a usage
 * error naming it, reported for option --<opt> of cmd. Returns
 * CLI_EXIT_OK or CLI_EXIT_USAGE (or CLI_EXIT_ERROR when out of memory). */
int cli_parse_tokens(const char *cmd, const char *opt, const char *list,
                     int32_t **tokens, size_t *count);

/* The bytes of text as token ids 0..255 (a byte-level model's input) into
 * a new malloc'd array; an empty text is a usage error for --<opt>. */
int cli_text_tokens(const char *cmd, const char *opt, const char *text,
                    int32_t **tokens, size_t *count);
/* Token ids 0..255 as text on out: printable bytes and newlines as they
 * are, any other byte as \xHH. */
void cli_print_text(FILE *out, const int32_t *tokens, size_t count);

/* "parallel" | "chunkwise" | "recurrent" -> *algo; 0 if none of them. */
int cli_parse_algorithm(const char *name, retcl_algorithm *algo);
const char *cli_algorithm_name(retcl_algorithm algo);

/* What `retcl run` lists after a forward: per position the token, the
 * argmax of its logits [T, V] and that logit (the middle of long inputs
 * left out); with text, the input and the predicted next bytes as text. */
void cli_print_run_result(const int32_t *tok, size_t T, const float *logits,
                          size_t V, int text);

/* ---- generation ----------------------------------------------------------
 * What `retcl generate` and `retcl-mpi generate` share besides the prompt:
 * the sampling, the prefill form, the weights and the device. */

typedef struct cli_generate_options {
  const char *mode, *weights, *device, *platform;
  size_t max_new, chunk, top_k;
  size_t end_token; /* SIZE_MAX: none */
  double temperature;
  uint64_t seed;
} cli_generate_options;

/* Defaults: chunkwise, seed 1, no end token, --max-new not given. */
void cli_generate_options_init(cli_generate_options *o);

/* The option rows (--max-new, --end-token, --temperature, --top-k, --seed,
 * --mode, --chunk, --weights, --device, --platform) into rows. */
#define CLI_GENERATE_OPTION_COUNT 10
void cli_generate_option_rows(cli_generate_options *o,
                              cli_option rows[CLI_GENERATE_OPTION_COUNT]);

/* --max-new given, --temperature, --weights and --mode valid (modes lists
 * the ones the command takes, for the message), in that order; a usage
 * error for cmd otherwise. Fills *storage and *algo. */
int cli_generate_options_check(const char *cmd, const cli_generate_options *o,
                               const char *modes, retcl_storage *storage,
                               retcl_algorithm *algo);

/* --end-token ID fits a token id (below 2^31); a usage error otherwise. */
int cli_generate_check_end_token(const char *cmd,
                                 const cli_generate_options *o);

/* ", greedy" or ", temperature X, top-k K, seed S", continuing a line. */
void cli_print_sampling(const cli_generate_options *o);

/* ---- descriptions -------------------------------------------------------- */

/* "NAME (PLATFORM), OpenCL X, driver Y" of the context's device into buf. */
const char *cli_device_description(const retcl_context *ctx, char *buf,
                                   size_t cap);
/* One line describing a model's shape: dims, heads, layers, vocab,
 * activation, chunk and whichever optional features are on. */
const char *cli_model_description(const retcl_model_config *cfg, char *buf,
                                  size_t cap);

/* ---- models -------------------------------------------------------------- */

/* Create a context (platform/device NULL: environment, then default) and
 * load the checkpoint folder dir on it, timing the load. On failure prints
 * the one-line error, releases what it made and returns CLI_EXIT_ERROR. */
int cli_open_model(const char *platform, const char *device, const char *dir,
                   retcl_context **ctx, retcl_model **model, double *load_s);
/* The same with the weights stored as `storage` (retcl_model_load_as). */
int cli_open_model_as(const char *platform, const char *device,
                      const char *dir, retcl_storage storage,
                      retcl_context **ctx, retcl_model **model,
                      double *load_s);
/* --weights f32|f16|bf16|keep (NULL: f32) into *out; 0 if s is none of
 * them. */
int cli_parse_storage(const char *s, retcl_storage *out);
/* "f32", "f16" or "bf16". */
const char *cli_dtype_name(retcl_dtype t);
/* Destroy both (NULL-safe), the model first. */
void cli_close_model(retcl_context *ctx, retcl_model *model);

/* ---- misc --------------------------------------------------------------- */

/* Monotonic wall clock in seconds. */
double cli_now(void);

/* The library's generator (retcl_random_next): seedable, and the same
 * stream on every platform, so `--seed` reproduces a run anywhere. */
typedef struct cli_rng {
  uint64_t state;
} cli_rng;
void cli_rng_seed(cli_rng *rng, uint64_t seed);
/* Uniform in [lo, hi). */
float cli_rng_uniform(cli_rng *rng, float lo, float hi);

/* "12.0 GiB", "512 KiB" into buf. */
const char *cli_format_bytes(uint64_t bytes, char *buf, size_t cap);

#endif /* RETCL_CLI_H */
