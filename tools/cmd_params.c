/* cmd_params.c - `retcl params`: the kernel parameter record the chosen
 * device gets, with the level each value came from; as a RETCL_PARAMS file
 * (--json) to edit and feed back, or as one family's -D definitions
 * (--defines, for compiling a cl/ file outside the library). */
#include <string.h>

#include "cli.h"

static void params_usage(FILE *out) {
  fprintf(out,
          "usage: retcl params [--platform P] [--device D] [--json | "
          "--defines FAMILY]\n"
          "\n"
          "Print every kernel parameter the device gets: family, key, value,\n"
          "and the level it came from (built-in, device type, vendor, device\n"
          "name, RETCL_KERNEL_PATHS, device query, RETCL_PARAMS).\n"
          "\n"
          "  --json             the record as a RETCL_PARAMS file\n"
          "  --defines FAMILY   the -D definitions cl/FAMILY.cl is built with\n");
}

static void print_value(const retcl_param_info *p) {
  if (p->value_name)
    printf("\"%s\"", p->value_name);
  else
    printf("%ld", p->value);
}

static void print_json(const retcl_context *ctx) {
  const size_t n = retcl_param_count();
  const char *family = NULL;
  printf("{");
  for (size_t i = 0; i < n; ++i) {
    retcl_param_info p;
    retcl_param_get(ctx, i, &p);
    if (!family || strcmp(family, p.family)) {
      printf("%s\n  \"%s\": {", family ? "\n  }," : "", p.family);
      family = p.family;
    } else {
      printf(",");
    }
    printf("\n    \"%s\": ", p.key);
    print_value(&p);
  }
  printf("\n  }\n}\n");
}

static int print_defines(const retcl_context *ctx, const char *family) {
  int found = 0;
  for (size_t i = 0; i < retcl_param_count(); ++i) {
    retcl_param_info p;
    retcl_param_get(ctx, i, &p);
    if (strcmp(p.family, family)) continue;
    found = 1;
    if (p.define) printf("-D%s=%ld ", p.define, p.value);
  }
  printf("\n");
  return found;
}

static void print_table(const retcl_context *ctx) {
  char desc[512];
  printf("device:  %s\nvendor:  %s\n\n", cli_device_description(ctx, desc,
                                                             sizeof desc),
         retcl_context_vendor(ctx));
  /* The name column as wide as the longest family.key. */
  int width = 24;
  for (size_t i = 0; i < retcl_param_count(); ++i) {
    retcl_param_info p;
    retcl_param_get(ctx, i, &p);
    const int n = (int)(strlen(p.family) + 1 + strlen(p.key));
    if (n > width) width = n;
  }
  printf("%-*s %-8s %-20s %s\n", width, "parameter", "value", "from", "what");
  for (size_t i = 0; i < retcl_param_count(); ++i) {
    retcl_param_info p;
    retcl_param_get(ctx, i, &p);
    char name[64], value[32];
    snprintf(name, sizeof name, "%s.%s", p.family, p.key);
    if (p.value_name)
      snprintf(value, sizeof value, "%s", p.value_name);
    else
      snprintf(value, sizeof value, "%ld", p.value);
    printf("%-*s %-8s %-20s %s\n", width, name, value, p.source, p.help);
  }
}

static int params_run(int argc, char **argv) {
  const char *platform = NULL, *device = NULL, *defines = NULL;
  int json = 0;
  const cli_option opts[] = {
      {"platform", CLI_OPT_STRING, &platform},
      {"device", CLI_OPT_STRING, &device},
      {"json", CLI_OPT_FLAG, &json},
      {"defines", CLI_OPT_STRING, &defines},
  };
  int parsed = cli_parse_options("params", argc, argv, opts,
                                 sizeof opts / sizeof opts[0]);
  if (parsed == CLI_PARSE_HELP) {
    params_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (parsed != CLI_PARSE_OK) return CLI_EXIT_USAGE;
  if (json && defines)
    return cli_usage_error("params", "--json and --defines exclude each other");
  retcl_context *ctx = NULL;
  retcl_status st = retcl_context_create(platform, device, &ctx);
  if (st)
    return cli_error("%s: %s", retcl_status_string(st), retcl_last_error(NULL));
  int rc = CLI_EXIT_OK;
  if (json)
    print_json(ctx);
  else if (defines && !print_defines(ctx, defines))
    rc = cli_usage_error("params", "--defines %s: no such kernel family "
                         "(rotation, retention, retention_grad, group_norm, "
                         "elementwise, linear, gemm, loss, optimizer, "
                         "clblast)", defines);
  else if (!defines)
    print_table(ctx);
  retcl_context_destroy(ctx);
  return rc;
}

const cli_command cli_cmd_params = {
    "params", "print the kernel parameter record of a device, and where each "
    "value comes from",
    params_run, params_usage};
