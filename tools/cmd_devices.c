/* cmd_devices.c - `retcl devices`: every OpenCL platform and device, with
 * the facts that decide whether and how fast RetCL runs there, numbered the
 * way RETCL_DEVICE counts them, and the device the default selection picks
 * marked. The list is the library's (retcl_device_list); the facts are
 * queried from OpenCL here. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void devices_usage(FILE *out) {
  fprintf(out,
          "usage: retcl devices [--platform P] [--device D]\n"
          "\n"
          "List every OpenCL platform and device. The number in front of a\n"
          "device is its index for RETCL_DEVICE / --device (counted over the\n"
          "devices of all platforms, in platform order). '*' marks the device\n"
          "that RetCL picks: by default the one RETCL_DEVICE/RETCL_PLATFORM\n"
          "select, else the first GPU, else the first device.\n"
          "\n"
          "  --platform P   mark what this platform selection would pick\n"
          "  --device D     mark what this device selection would pick\n");
}

/* A string property into a fresh malloc'd buffer ("" on failure), since
 * extension lists and version strings have no fixed bound. */
static char *device_string(cl_device_id dev, cl_device_info what) {
  size_t size = 0;
  char *s = NULL;
  if (clGetDeviceInfo(dev, what, 0, NULL, &size) == CL_SUCCESS && size > 0) {
    s = malloc(size + 1);
    if (s && clGetDeviceInfo(dev, what, size, s, NULL) != CL_SUCCESS) s[0] = 0;
    if (s) s[size] = '\0';
  }
  if (!s) {
    s = malloc(1);
    if (s) s[0] = '\0';
  }
  return s;
}

static char *platform_string(cl_platform_id p, cl_platform_info what) {
  size_t size = 0;
  char *s = NULL;
  if (clGetPlatformInfo(p, what, 0, NULL, &size) == CL_SUCCESS && size > 0) {
    s = malloc(size + 1);
    if (s && clGetPlatformInfo(p, what, size, s, NULL) != CL_SUCCESS) s[0] = 0;
    if (s) s[size] = '\0';
  }
  if (!s) {
    s = malloc(1);
    if (s) s[0] = '\0';
  }
  return s;
}

/* Whole-word match in a space-separated extension list ("cl_khr_fp16" must
 * not match "cl_khr_fp16_foo"). */
static int has_extension(const char *list, const char *ext) {
  size_t n = strlen(ext);
  for (const char *p = list; p && (p = strstr(p, ext)); p += n) {
    int starts = p == list || p[-1] == ' ';
    int ends = p[n] == '\0' || p[n] == ' ';
    if (starts && ends) return 1;
  }
  return 0;
}

static const char *type_name(cl_device_type t, char *buf, size_t cap) {
  buf[0] = '\0';
  if (t & CL_DEVICE_TYPE_GPU) strncat(buf, "GPU ", cap - strlen(buf) - 1);
  if (t & CL_DEVICE_TYPE_CPU) strncat(buf, "CPU ", cap - strlen(buf) - 1);
  if (t & CL_DEVICE_TYPE_ACCELERATOR)
    strncat(buf, "ACCELERATOR ", cap - strlen(buf) - 1);
#ifdef CL_DEVICE_TYPE_CUSTOM
  if (t & CL_DEVICE_TYPE_CUSTOM) strncat(buf, "CUSTOM ", cap - strlen(buf) - 1);
#endif
  size_t len = strlen(buf);
  if (len)
    buf[len - 1] = '\0';
  else
    snprintf(buf, cap, "unknown (0x%llx)", (unsigned long long)t);
  return buf;
}

static void print_device(size_t index, cl_device_id dev, int is_pick) {
  char *name = device_string(dev, CL_DEVICE_NAME);
  char *vendor = device_string(dev, CL_DEVICE_VENDOR);
  char *version = device_string(dev, CL_DEVICE_VERSION);
  char *driver = device_string(dev, CL_DRIVER_VERSION);
  char *ext = device_string(dev, CL_DEVICE_EXTENSIONS);
  cl_device_type type = 0;
  cl_uint units = 0, clock = 0;
  cl_ulong global = 0, local = 0, max_alloc = 0;
  cl_device_local_mem_type local_type = CL_LOCAL;
  cl_device_fp_config fp64_config = 0;
  size_t wg = 0;
  cl_bool available = CL_TRUE;
  clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof clock, &clock,
                  NULL);
  clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof global, &global, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc,
                  &max_alloc, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local, &local, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_TYPE, sizeof local_type, &local_type,
                  NULL);
  clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_AVAILABLE, sizeof available, &available, NULL);
  /* Pre-1.2 devices may lack the query; a failure leaves 0 = no fp64. */
  clGetDeviceInfo(dev, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64_config,
                  &fp64_config, NULL);
  int fp16 = ext && has_extension(ext, "cl_khr_fp16");
  int fp64 = fp64_config != 0 || (ext && has_extension(ext, "cl_khr_fp64"));

  char tbuf[64], gbuf[32], abuf[32], lbuf[32];
  printf("  %c %zu  %s%s\n", is_pick ? '*' : ' ', index, name ? name : "",
         available ? "" : "  (not available)");
  printf("        vendor          %s\n", vendor ? vendor : "");
  printf("        type            %s\n", type_name(type, tbuf, sizeof tbuf));
  printf("        compute units   %u, max clock %u MHz\n", units, clock);
  printf("        global memory   %s (largest buffer %s)\n",
         cli_format_bytes(global, gbuf, sizeof gbuf),
         cli_format_bytes(max_alloc, abuf, sizeof abuf));
  printf("        local memory    %s%s\n",
         cli_format_bytes(local, lbuf, sizeof lbuf),
         local_type == CL_GLOBAL ? " (emulated in global memory)" : "");
  printf("        max work-group  %zu\n", wg);
  printf("        fp16 / fp64     %s / %s\n", fp16 ? "yes" : "no",
         fp64 ? "yes" : "no");
  printf("        OpenCL          %s\n", version ? version : "");
  printf("        driver          %s\n", driver ? driver : "");
  free(name);
  free(vendor);
  free(version);
  free(driver);
  free(ext);
}

/* The device RetCL itself would choose: asking the library (rather than
 * re-implementing its rules here) keeps the mark honest when the rules or
 * the environment change. NULL when that selection fails; why is printed
 * after the listing. */
static cl_device_id library_pick(const char *platform, const char *device,
                                 retcl_status *status, char *why, size_t cap) {
  retcl_context *ctx = NULL;
  *status = retcl_context_create(platform, device, &ctx);
  if (*status != RETCL_SUCCESS) {
    snprintf(why, cap, "%s", retcl_last_error(NULL));
    return NULL;
  }
  cl_device_id dev = retcl_context_device(ctx);
  /* Root device ids are stable for the process, so the id stays
   * comparable after the context (which retained it) is gone. */
  retcl_context_destroy(ctx);
  return dev;
}

static int devices_run(int argc, char **argv) {
  const char *platform_opt = NULL, *device_opt = NULL;
  const cli_option opts[] = {
      {"platform", CLI_OPT_STRING, &platform_opt},
      {"device", CLI_OPT_STRING, &device_opt},
  };
  int parsed = cli_parse_options("devices", argc, argv, opts,
                                 sizeof opts / sizeof opts[0]);
  if (parsed == CLI_PARSE_HELP) {
    devices_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (parsed != CLI_PARSE_OK) return CLI_EXIT_USAGE;

  /* The library's own enumeration, so the numbers are the ones
   * RETCL_DEVICE takes. */
  size_t count = 0;
  const char *listed = platform_opt;
  retcl_status st = retcl_device_list(listed, NULL, 0, &count);
  /* A bad RETCL_PLATFORM must not hide the listing that helps to fix it:
   * list every platform then (the warning below says why). */
  if (st && !platform_opt) st = retcl_device_list(listed = "", NULL, 0, &count);
  retcl_device_entry *list = st ? NULL : malloc(count * sizeof *list);
  if (!st && !list) return cli_error("out of host memory");
  if (st || (st = retcl_device_list(listed, list, count, &count))) {
    free(list);
    return cli_error("%s: %s", retcl_status_string(st), retcl_last_error(NULL));
  }

  retcl_status pick_status = RETCL_SUCCESS;
  char why[1024] = "";
  cl_device_id pick =
      library_pick(platform_opt, device_opt, &pick_status, why, sizeof why);

  for (size_t i = 0; i < count; ++i) {
    const retcl_device_entry *e = &list[i];
    if (i == 0 || e->platform != list[i - 1].platform) {
      char *pname = platform_string(e->platform, CL_PLATFORM_NAME);
      char *pvendor = platform_string(e->platform, CL_PLATFORM_VENDOR);
      char *pversion = platform_string(e->platform, CL_PLATFORM_VERSION);
      printf("platform %u: %s (%s), %s\n", e->platform_index,
             pname ? pname : "", pvendor ? pvendor : "",
             pversion ? pversion : "");
      free(pname);
      free(pvendor);
      free(pversion);
    }
    print_device(e->index, e->device, e->device == pick);
  }
  free(list);

  const char *env_dev = getenv("RETCL_DEVICE");
  const char *env_plat = getenv("RETCL_PLATFORM");
  printf("\n");
  if (pick) {
    if (platform_opt || device_opt)
      printf("* = the device --platform/--device select.\n");
    else if ((env_dev && *env_dev) || (env_plat && *env_plat))
      printf("* = the device RETCL_DEVICE/RETCL_PLATFORM select.\n");
    else
      printf(
          "* = the default device: the first GPU, else the first device "
          "(set RETCL_DEVICE to choose another).\n");
  }
  if ((env_plat && *env_plat) || platform_opt)
    printf(
        "note: with a platform selected, device indices count only the "
        "devices of the matching platforms.\n");
  fflush(stdout);
  if (!pick && (platform_opt || device_opt))
    return cli_error("device selection: %s: %s",
                     retcl_status_string(pick_status), why);
  /* A bad RETCL_DEVICE in the environment must not hide the listing that
   * helps to fix it: warn, but succeed. */
  if (!pick)
    fprintf(stderr, "retcl: warning: device selection fails: %s: %s\n",
            retcl_status_string(pick_status), why);
  return CLI_EXIT_OK;
}

const cli_command cli_cmd_devices = {
    "devices", "list OpenCL platforms and devices, marking RetCL's pick",
    devices_run, devices_usage};
