/* program.c - builds each OpenCL program once per context, on first use,
 * and hands out cached kernel objects. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct program_info {
  const char *name;   /* for messages */
  const char *source; /* embedded cl/ file */
} program_info;

static const program_info programs[RETCL_PROGRAM_COUNT] = {
    [RETCL_PROGRAM_ROTATION] = {"rotation.cl", retcl_cl_rotation},
    [RETCL_PROGRAM_RETENTION] = {"retention.cl", retcl_cl_retention},
    [RETCL_PROGRAM_GROUP_NORM] = {"group_norm.cl", retcl_cl_group_norm},
    [RETCL_PROGRAM_MODEL] = {"model.cl", retcl_cl_model},
    [RETCL_PROGRAM_LINEAR] = {"linear.cl", retcl_cl_linear},
};

typedef struct kernel_info {
  retcl_program_id program;
  const char *name;
} kernel_info;

static const kernel_info kernels[RETCL_KERNEL_COUNT] = {
    [RETCL_KERNEL_ROTATE] = {RETCL_PROGRAM_ROTATION, "retcl_rotate"},
    [RETCL_KERNEL_RETENTION_CHUNK_STATE] = {RETCL_PROGRAM_RETENTION,
                                            "retcl_retention_chunk_state"},
    [RETCL_KERNEL_RETENTION_CHUNK_SCAN] = {RETCL_PROGRAM_RETENTION,
                                           "retcl_retention_chunk_scan"},
    [RETCL_KERNEL_RETENTION_CHUNK_OUTPUT] = {RETCL_PROGRAM_RETENTION,
                                             "retcl_retention_chunk_output"},
    [RETCL_KERNEL_RETENTION_RECURRENT] = {RETCL_PROGRAM_RETENTION,
                                          "retcl_retention_recurrent"},
    [RETCL_KERNEL_GROUP_NORM_GATE] = {RETCL_PROGRAM_GROUP_NORM,
                                      "retcl_group_norm_gate"},
    [RETCL_KERNEL_EMBED] = {RETCL_PROGRAM_MODEL, "retcl_embed"},
    [RETCL_KERNEL_RESIDUAL] = {RETCL_PROGRAM_MODEL, "retcl_residual"},
    [RETCL_KERNEL_GLU] = {RETCL_PROGRAM_MODEL, "retcl_glu"},
    [RETCL_KERNEL_LINEAR_SKINNY_1] = {RETCL_PROGRAM_LINEAR, "retcl_linear_skinny_1"},
    [RETCL_KERNEL_LINEAR_SKINNY_2] = {RETCL_PROGRAM_LINEAR, "retcl_linear_skinny_2"},
    [RETCL_KERNEL_LINEAR_SKINNY_4] = {RETCL_PROGRAM_LINEAR, "retcl_linear_skinny_4"},
    [RETCL_KERNEL_LINEAR_SKINNY_8] = {RETCL_PROGRAM_LINEAR, "retcl_linear_skinny_8"},
    [RETCL_KERNEL_LINEAR_GROUPED_1] = {RETCL_PROGRAM_LINEAR, "retcl_linear_grouped_1"},
    [RETCL_KERNEL_LINEAR_GROUPED_2] = {RETCL_PROGRAM_LINEAR, "retcl_linear_grouped_2"},
    [RETCL_KERNEL_LINEAR_GROUPED_4] = {RETCL_PROGRAM_LINEAR, "retcl_linear_grouped_4"},
    [RETCL_KERNEL_LINEAR_GROUPED_8] = {RETCL_PROGRAM_LINEAR, "retcl_linear_grouped_8"},
};

/* Options every program gets: strict OpenCL C 1.2 (no fast-math: results
 * must be reproducible to fp32 rounding) and the device-type access pattern
 * (RETCL_CPU: each work-item walks a contiguous range; GPU: work-items of a
 * group walk interleaved, coalesced addresses) and the column-block width
 * of the retention kernels. */
static void build_options(const retcl_context *ctx, char *buf, size_t cap) {
  snprintf(buf, cap, "-cl-std=CL1.2 -DRETCL_CPU=%d -DRETCL_VW=%u",
           ctx->traits.is_cpu, ctx->traits.vector_width);
}

static retcl_status build_program(retcl_context *ctx, retcl_program_id id) {
  const program_info *info = &programs[id];
  const char *sources[2] = {retcl_cl_common, info->source};
  cl_int err = CL_SUCCESS;
  cl_program prog =
      clCreateProgramWithSource(ctx->cl_ctx, 2, sources, NULL, &err);
  if (!prog) return retcl__cl_fail(ctx, "clCreateProgramWithSource", err);
  char options[256];
  build_options(ctx, options, sizeof options);
  err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
  size_t log_size = 0;
  clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL,
                        &log_size);
  char *log = malloc(log_size + 1);
  if (log) {
    log[0] = '\0';
    clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, log_size,
                          log, NULL);
    log[log_size] = '\0';
  }
  if (err != CL_SUCCESS) {
    retcl_status st = retcl__fail(
        ctx, RETCL_ERROR_BUILD_FAILED, "building %s (%s) failed: %s (%d)\n%s",
        info->name, options, retcl_cl_error_name(err), (int)err,
        log ? log : "(no build log)");
    free(log);
    clReleaseProgram(prog);
    return st;
  }
  retcl__log(ctx, RETCL_LOG_INFO, "built %s with \"%s\"%s%s", info->name,
             options, (log && log[0] && log[0] != '\n') ? "; build log:\n" : "",
             (log && log[0] && log[0] != '\n') ? log : "");
  free(log);
  ctx->programs[id] = prog;
  return RETCL_SUCCESS;
}

retcl_status retcl__kernel(retcl_context *ctx, retcl_kernel_id id,
                           cl_kernel *out) {
  if (!ctx->kernels[id]) {
    retcl_program_id pid = kernels[id].program;
    if (!ctx->programs[pid]) {
      retcl_status st = build_program(ctx, pid);
      if (st != RETCL_SUCCESS) return st;
    }
    cl_int err = CL_SUCCESS;
    cl_kernel k = clCreateKernel(ctx->programs[pid], kernels[id].name, &err);
    if (!k) {
      char call[128];
      snprintf(call, sizeof call, "clCreateKernel(%s)", kernels[id].name);
      return retcl__cl_fail(ctx, call, err);
    }
    ctx->kernels[id] = k;
  }
  *out = ctx->kernels[id];
  return RETCL_SUCCESS;
}
