/* context.c - device selection, context creation/wrapping and teardown. */
#include "runtime/context.h"

#include "runtime/params.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PLATFORMS 16
#define MAX_DEVICES 64

/* "12" -> 12, anything else -> -1. */
static long parse_index(const char *s) {
  if (!s || !*s) return -1;
  char *end = NULL;
  long v = strtol(s, &end, 10);
  return (*end == '\0' && v >= 0) ? v : -1;
}

/* Collect the devices of every platform that matches `platform`, numbered
 * as RETCL_DEVICE counts them. */
static retcl_status list_candidates(const char *platform,
                                    retcl_device_entry *cands,
                                    cl_uint *count) {
  cl_platform_id plats[MAX_PLATFORMS];
  cl_uint nplat = 0;
  cl_int err = clGetPlatformIDs(MAX_PLATFORMS, plats, &nplat);
  if (err != CL_SUCCESS || nplat == 0)
    return retcl__fail(NULL, RETCL_ERROR_DEVICE_NOT_FOUND,
                       "no OpenCL platform found (clGetPlatformIDs: %s); is an "
                       "ICD such as pocl-opencl-icd installed?",
                       retcl_cl_error_name(err));
  if (nplat > MAX_PLATFORMS) nplat = MAX_PLATFORMS;
  long pidx = parse_index(platform);
  *count = 0;
  int matched_platform = 0;
  for (cl_uint p = 0; p < nplat; ++p) {
    char name[256] = "";
    clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof name, name, NULL);
    if (platform && *platform &&
        (pidx >= 0 ? (long)p != pidx : !retcl__contains_ci(name, platform)))
      continue;
    matched_platform = 1;
    cl_device_id devs[MAX_DEVICES];
    cl_uint ndev = 0;
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devs,
                       &ndev) != CL_SUCCESS)
      continue;
    if (ndev > MAX_DEVICES) ndev = MAX_DEVICES;
    for (cl_uint d = 0; d < ndev && *count < MAX_DEVICES; ++d) {
      retcl_device_entry *c = &cands[*count];
      c->index = (*count)++;
      c->platform_index = p;
      c->platform = plats[p];
      c->device = devs[d];
      c->type = 0;
      clGetDeviceInfo(devs[d], CL_DEVICE_TYPE, sizeof c->type, &c->type, NULL);
    }
  }
  if (!matched_platform)
    return retcl__fail(NULL, RETCL_ERROR_DEVICE_NOT_FOUND,
                       "no OpenCL platform matches \"%s\" (%u platforms found)",
                       platform, nplat);
  if (*count == 0)
    return retcl__fail(NULL, RETCL_ERROR_DEVICE_NOT_FOUND,
                       "the selected OpenCL platforms have no devices");
  return RETCL_SUCCESS;
}

/* PoCL 3.1 crashes when two threads enumerate platforms and devices at
 * once (its first-use initialisation is not thread-safe); every
 * enumeration goes through this lock, so that contexts can be created and
 * devices listed from several threads. */
static pthread_mutex_t enumeration_lock = PTHREAD_MUTEX_INITIALIZER;

static retcl_status locked_list(const char *platform,
                                retcl_device_entry *cands, cl_uint *count) {
  pthread_mutex_lock(&enumeration_lock);
  retcl_status st = list_candidates(platform, cands, count);
  pthread_mutex_unlock(&enumeration_lock);
  return st;
}

static const char *env_or(const char *value, const char *env_name) {
  if (value) return value;
  const char *env = getenv(env_name);
  return (env && *env) ? env : NULL;
}

retcl_status retcl_device_list(const char *platform, retcl_device_entry *out,
                               size_t cap, size_t *count) {
  if (!count || (!out && cap))
    return retcl__fail(NULL, RETCL_ERROR_INVALID_ARGUMENT,
                       "retcl_device_list: %s",
                       !count ? "count is NULL" : "out is NULL but cap > 0");
  *count = 0;
  retcl_device_entry cands[MAX_DEVICES];
  cl_uint n = 0;
  retcl_status st = locked_list(env_or(platform, "RETCL_PLATFORM"), cands, &n);
  if (st != RETCL_SUCCESS) return st;
  for (cl_uint i = 0; i < n && i < cap; ++i) out[i] = cands[i];
  *count = n;
  return RETCL_SUCCESS;
}

static retcl_status pick_device(const char *platform, const char *device,
                                retcl_device_entry *chosen) {
  retcl_device_entry cands[MAX_DEVICES];
  cl_uint n = 0;
  retcl_status st = locked_list(platform, cands, &n);
  if (st != RETCL_SUCCESS) return st;
  if (device && *device) {
    long didx = parse_index(device);
    if (didx >= 0) {
      if ((cl_uint)didx >= n)
        return retcl__fail(NULL, RETCL_ERROR_DEVICE_NOT_FOUND,
                           "device index %ld out of range (%u devices)", didx,
                           n);
      *chosen = cands[didx];
      return RETCL_SUCCESS;
    }
    for (cl_uint i = 0; i < n; ++i) {
      char name[256] = "";
      clGetDeviceInfo(cands[i].device, CL_DEVICE_NAME, sizeof name, name,
                      NULL);
      if (retcl__contains_ci(name, device)) {
        *chosen = cands[i];
        return RETCL_SUCCESS;
      }
    }
    return retcl__fail(NULL, RETCL_ERROR_DEVICE_NOT_FOUND,
                       "no OpenCL device name contains \"%s\" (%u devices)",
                       device, n);
  }
  for (cl_uint i = 0; i < n; ++i)
    if (cands[i].type & CL_DEVICE_TYPE_GPU) {
      *chosen = cands[i];
      return RETCL_SUCCESS;
    }
  *chosen = cands[0];
  return RETCL_SUCCESS;
}

/* A cap from the environment (RETCL_MAX_WORK_GROUP_SIZE /
 * RETCL_MAX_LOCAL_MEM_BYTES) lowers, never raises, a limit the launches are
 * sized by, so the tests can play a small GPU on a device that has more
 * (PoCL 3.1 has POCL_MAX_WORK_GROUP_SIZE but no local-memory knob;
 * scripts/ci_limits.sh). A value that is not a positive number is ignored. */
static void apply_cap(const char *env_name, size_t *limit) {
  const char *cap = getenv(env_name);
  if (!cap || !*cap) return;
  char *end = NULL;
  unsigned long long v = strtoull(cap, &end, 10);
  if (*end == '\0' && v > 0 && v < *limit) *limit = (size_t)v;
}

/* What the parameter levels match (type, vendor, name) and the limits the
 * launches are sized by. */
static void query_device(cl_device_id device, retcl_device_identity *id,
                         retcl_device_limits *lim) {
  memset(id, 0, sizeof *id);
  memset(lim, 0, sizeof *lim);
  cl_platform_id platform = NULL;
  char platform_name[256] = "", vendor[256] = "";
  cl_uint vendor_id = 0;
  cl_ulong local = 0;
  size_t item_sizes[16] = {0};
  clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof id->type, &id->type, NULL);
  clGetDeviceInfo(device, CL_DEVICE_NAME, sizeof id->name - 1, id->name, NULL);
  clGetDeviceInfo(device, CL_DEVICE_VENDOR, sizeof vendor - 1, vendor, NULL);
  clGetDeviceInfo(device, CL_DEVICE_VENDOR_ID, sizeof vendor_id, &vendor_id,
                  NULL);
  clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
  if (platform)
    clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof platform_name - 1,
                      platform_name, NULL);
  clGetDeviceInfo(device, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT,
                  sizeof id->preferred_float, &id->preferred_float, NULL);
  id->vendor = retcl__vendor_of(platform_name, vendor, id->name, vendor_id);

  clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE,
                  sizeof lim->max_work_group, &lim->max_work_group, NULL);
  if (clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof item_sizes,
                      item_sizes, NULL) == CL_SUCCESS)
    lim->max_item_size0 = item_sizes[0];
  clGetDeviceInfo(device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local, &local, NULL);
  lim->local_mem_bytes = (size_t)local;
  clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS,
                  sizeof lim->compute_units, &lim->compute_units, NULL);
  apply_cap("RETCL_MAX_WORK_GROUP_SIZE", &lim->max_work_group);
  apply_cap("RETCL_MAX_LOCAL_MEM_BYTES", &lim->local_mem_bytes);
  if (lim->max_work_group == 0) lim->max_work_group = 1;
  if (lim->compute_units == 0) lim->compute_units = 1;
  id->max_work_group = lim->max_work_group;
  id->local_mem_bytes = lim->local_mem_bytes;
}

static retcl_status finish_context(cl_context cl_ctx, cl_device_id device,
                                   cl_command_queue queue,
                                   retcl_context **out) {
  retcl_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx)
    return retcl__fail(NULL, RETCL_ERROR_OUT_OF_MEMORY,
                       "cannot allocate a retcl_context");
  ctx->cl_ctx = cl_ctx;
  ctx->device = device;
  ctx->queue = queue;
  query_device(device, &ctx->identity, &ctx->limits);
  /* A bad RETCL_PARAMS file fails creation: its message names the key. */
  retcl_status st = retcl__params_resolve(NULL, &ctx->identity, &ctx->params);
  if (st != RETCL_SUCCESS) {
    free(ctx);
    return st;
  }
  *out = ctx;
  return RETCL_SUCCESS;
}

retcl_status retcl_context_create(const char *platform, const char *device,
                                  retcl_context **out) {
  if (!out)
    return retcl__fail(NULL, RETCL_ERROR_INVALID_ARGUMENT,
                       "retcl_context_create: out is NULL");
  *out = NULL;
  retcl_device_entry chosen;
  retcl_status st = pick_device(env_or(platform, "RETCL_PLATFORM"),
                                env_or(device, "RETCL_DEVICE"), &chosen);
  if (st != RETCL_SUCCESS) return st;

  cl_int err = CL_SUCCESS;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                   (cl_context_properties)chosen.platform, 0};
  cl_context cl_ctx =
      clCreateContext(props, 1, &chosen.device, NULL, NULL, &err);
  if (!cl_ctx) return retcl__cl_fail(NULL, "clCreateContext", err);
  /* Profiling is cheap and lets benchmarks time kernels through events. */
  cl_command_queue queue = clCreateCommandQueue(
      cl_ctx, chosen.device, CL_QUEUE_PROFILING_ENABLE, &err);
  if (!queue) {
    clReleaseContext(cl_ctx);
    return retcl__cl_fail(NULL, "clCreateCommandQueue", err);
  }
  st = finish_context(cl_ctx, chosen.device, queue, out);
  if (st != RETCL_SUCCESS) {
    clReleaseCommandQueue(queue);
    clReleaseContext(cl_ctx);
  }
  return st;
}

retcl_status retcl_context_wrap(cl_context cl_ctx, cl_device_id device,
                                cl_command_queue queue, retcl_context **out) {
  if (!out)
    return retcl__fail(NULL, RETCL_ERROR_INVALID_ARGUMENT,
                       "retcl_context_wrap: out is NULL");
  *out = NULL;
  if (!cl_ctx || !device || !queue)
    return retcl__fail(NULL, RETCL_ERROR_INVALID_ARGUMENT,
                       "retcl_context_wrap: %s is NULL",
                       !cl_ctx ? "cl_ctx" : !device ? "device" : "queue");
  cl_context queue_ctx = NULL;
  cl_device_id queue_dev = NULL;
  cl_command_queue_properties qprops = 0;
  cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT,
                                     sizeof queue_ctx, &queue_ctx, NULL);
  if (err == CL_SUCCESS)
    err = clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof queue_dev,
                                &queue_dev, NULL);
  if (err == CL_SUCCESS)
    err = clGetCommandQueueInfo(queue, CL_QUEUE_PROPERTIES, sizeof qprops,
                                &qprops, NULL);
  if (err != CL_SUCCESS)
    return retcl__cl_fail(NULL, "clGetCommandQueueInfo(queue)", err);
  if (queue_ctx != cl_ctx)
    return retcl__fail(NULL, RETCL_ERROR_CONTEXT_MISMATCH,
                       "retcl_context_wrap: queue belongs to another "
                       "cl_context than cl_ctx");
  if (queue_dev != device)
    return retcl__fail(NULL, RETCL_ERROR_CONTEXT_MISMATCH,
                       "retcl_context_wrap: queue is for another device");
  if (qprops & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)
    return retcl__fail(NULL, RETCL_ERROR_UNSUPPORTED,
                       "retcl_context_wrap: queue is out-of-order; RetCL "
                       "needs an in-order queue");
  retcl_status st = finish_context(cl_ctx, device, queue, out);
  if (st != RETCL_SUCCESS) return st;
  clRetainContext(cl_ctx);
  clRetainCommandQueue(queue);
  clRetainDevice(device);
  return RETCL_SUCCESS;
}

void retcl_context_destroy(retcl_context *ctx) {
  if (!ctx) return;
  for (int t = 0; t < RETCL_WTYPE_COUNT; ++t) {
    for (int i = 0; i < RETCL_KERNEL_COUNT; ++i)
      if (ctx->kernels[t][i]) clReleaseKernel(ctx->kernels[t][i]);
    for (int i = 0; i < RETCL_FAMILY_COUNT; ++i)
      if (ctx->programs[t][i]) clReleaseProgram(ctx->programs[t][i]);
  }
  for (int i = 0; i < RETCL_WORKSPACE_COUNT; ++i)
    if (ctx->workspace[i]) clReleaseMemObject(ctx->workspace[i]);
  clReleaseCommandQueue(ctx->queue);
  clReleaseDevice(ctx->device);
  clReleaseContext(ctx->cl_ctx);
  free(ctx);
}

cl_context retcl_context_cl_context(const retcl_context *ctx) {
  return ctx ? ctx->cl_ctx : NULL;
}
cl_device_id retcl_context_device(const retcl_context *ctx) {
  return ctx ? ctx->device : NULL;
}
cl_command_queue retcl_context_queue(const retcl_context *ctx) {
  return ctx ? ctx->queue : NULL;
}

const char *retcl_context_vendor(const retcl_context *ctx) {
  return ctx ? retcl__vendor_name(ctx->identity.vendor) : "";
}

size_t retcl_context_workspace_bytes(const retcl_context *ctx) {
  if (!ctx) return 0;
  size_t total = 0;
  for (int i = 0; i < RETCL_WORKSPACE_COUNT; ++i) total += ctx->workspace_bytes[i];
  return total;
}

retcl_status retcl_finish(retcl_context *ctx) {
  if (!ctx) return RETCL_ERROR_INVALID_ARGUMENT;
  retcl__clear_error(ctx);
  cl_int err = clFinish(ctx->queue);
  return err == CL_SUCCESS ? RETCL_SUCCESS
                           : retcl__cl_fail(ctx, "clFinish", err);
}

retcl_status retcl__workspace(retcl_context *ctx, retcl_workspace_id id,
                              size_t bytes, cl_mem *out) {
  if (bytes == 0) bytes = 4;
  if (ctx->workspace_bytes[id] < bytes) {
    /* Released buffers stay alive until the commands using them finish. */
    if (ctx->workspace[id]) clReleaseMemObject(ctx->workspace[id]);
    ctx->workspace[id] = NULL;
    ctx->workspace_bytes[id] = 0;
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (!m) return retcl__cl_fail(ctx, "clCreateBuffer(workspace)", err);
    ctx->workspace[id] = m;
    ctx->workspace_bytes[id] = bytes;
    retcl__log(ctx, RETCL_LOG_DEBUG, "workspace %d grown to %zu bytes", (int)id,
               bytes);
  }
  *out = ctx->workspace[id];
  return RETCL_SUCCESS;
}
