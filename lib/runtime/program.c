/* program.c - builds each family's program once per context, with the
 * definitions of its parameter record, and creates its kernels. Ops call
 * retcl__prepare before they enqueue anything; retcl_model_load and
 * retcl_context_prepare build everything up front. */
#include "runtime/program.h"

#include "runtime/clblast.h"
#include "runtime/context.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Embedded OpenCL C sources (generated from cl/ at build time). */
extern const char retcl_cl_common[];
extern const char retcl_cl_rotation[];
extern const char retcl_cl_retention[];
extern const char retcl_cl_retention_grad[];
extern const char retcl_cl_group_norm[];
extern const char retcl_cl_elementwise[];
extern const char retcl_cl_linear[];
extern const char retcl_cl_gemm[];
extern const char retcl_cl_loss[];
extern const char retcl_cl_optimizer[];

static const char *const sources[RETCL_FAMILY_COUNT] = {
    [RETCL_FAMILY_ROTATION] = retcl_cl_rotation,
    [RETCL_FAMILY_RETENTION] = retcl_cl_retention,
    [RETCL_FAMILY_RETENTION_GRAD] = retcl_cl_retention_grad,
    [RETCL_FAMILY_GROUP_NORM] = retcl_cl_group_norm,
    [RETCL_FAMILY_ELEMENTWISE] = retcl_cl_elementwise,
    [RETCL_FAMILY_LINEAR] = retcl_cl_linear,
    [RETCL_FAMILY_GEMM] = retcl_cl_gemm,
    [RETCL_FAMILY_LOSS] = retcl_cl_loss,
    [RETCL_FAMILY_OPTIMIZER] = retcl_cl_optimizer,
    /* RETCL_FAMILY_CLBLAST: no program of RetCL's; its prepare step is
     * retcl__clblast_prepare. */
};

typedef struct kernel_info {
  retcl_family family;
  const char *name;
  /* A kernel of one access pattern only: its cl/ source compiles it under
   * #if RETCL_CPU (or #if !RETCL_CPU) because the other pattern runs other
   * kernels in its place, so the program has it only when `access` selects
   * that pattern. */
  enum { BOTH_PATTERNS = 0, CPU_PATTERN_ONLY, GPU_PATTERN_ONLY } only;
  retcl_param_id access;
} kernel_info;

static const kernel_info kernels[RETCL_KERNEL_COUNT] = {
    [RETCL_KERNEL_ROTATE] = {RETCL_FAMILY_ROTATION, "retcl_rotate"},
    /* The chunkwise state pass: two kernels on GPUs, one on CPUs. */
    [RETCL_KERNEL_RETENTION_CHUNK_STATE] = {RETCL_FAMILY_RETENTION,
                                            "retcl_retention_chunk_state",
                                            GPU_PATTERN_ONLY,
                                            RETCL_P_RETENTION_ACCESS},
    [RETCL_KERNEL_RETENTION_CHUNK_SCAN] = {RETCL_FAMILY_RETENTION,
                                           "retcl_retention_chunk_scan",
                                           GPU_PATTERN_ONLY,
                                           RETCL_P_RETENTION_ACCESS},
    [RETCL_KERNEL_RETENTION_STATE_SCAN] = {RETCL_FAMILY_RETENTION,
                                           "retcl_retention_state_scan",
                                           CPU_PATTERN_ONLY,
                                           RETCL_P_RETENTION_ACCESS},
    [RETCL_KERNEL_RETENTION_CHUNK_OUTPUT] = {RETCL_FAMILY_RETENTION,
                                             "retcl_retention_chunk_output"},
    [RETCL_KERNEL_RETENTION_RECURRENT] = {RETCL_FAMILY_RETENTION,
                                          "retcl_retention_recurrent"},
    [RETCL_KERNEL_RETENTION_ADD_STATE] = {RETCL_FAMILY_RETENTION,
                                          "retcl_retention_add_state"},
#define RG_KERNEL(ID, NAME) \
    [RETCL_KERNEL_RETENTION_GRAD_##ID] = {RETCL_FAMILY_RETENTION_GRAD, NAME}
    RG_KERNEL(PANELS, "retcl_retention_grad_panels"),
    RG_KERNEL(ROW_FACTOR, "retcl_retention_grad_row_factor"),
    RG_KERNEL(STATES, "retcl_retention_grad_states"),
    RG_KERNEL(DQ, "retcl_retention_grad_dq"),
    RG_KERNEL(DKDV, "retcl_retention_grad_dkdv"),
    RG_KERNEL(REC_DQ, "retcl_retention_grad_rec_dq"),
    RG_KERNEL(REC_DKDV, "retcl_retention_grad_rec_dkdv"),
    RG_KERNEL(REDUCE, "retcl_retention_grad_reduce"),
#undef RG_KERNEL
    [RETCL_KERNEL_GROUP_NORM_GATE] = {RETCL_FAMILY_GROUP_NORM,
                                      "retcl_group_norm_gate"},
    [RETCL_KERNEL_GROUP_NORM_GATE_BACKWARD] = {
        RETCL_FAMILY_GROUP_NORM, "retcl_group_norm_gate_backward"},
    [RETCL_KERNEL_GROUP_NORM_GRAD_REDUCE] = {RETCL_FAMILY_GROUP_NORM,
                                             "retcl_group_norm_grad_reduce"},
    [RETCL_KERNEL_EMBED] = {RETCL_FAMILY_ELEMENTWISE, "retcl_embed"},
    [RETCL_KERNEL_RESIDUAL] = {RETCL_FAMILY_ELEMENTWISE, "retcl_residual"},
    [RETCL_KERNEL_GLU] = {RETCL_FAMILY_ELEMENTWISE, "retcl_glu"},
    [RETCL_KERNEL_GLU_BACKWARD] = {RETCL_FAMILY_ELEMENTWISE,
                                   "retcl_glu_backward"},
    [RETCL_KERNEL_EMBEDDING_BACKWARD] = {RETCL_FAMILY_ELEMENTWISE,
                                         "retcl_embedding_backward"},
    [RETCL_KERNEL_LINEAR_SKINNY_1] = {RETCL_FAMILY_LINEAR, "retcl_linear_skinny_1"},
    [RETCL_KERNEL_LINEAR_SKINNY_2] = {RETCL_FAMILY_LINEAR, "retcl_linear_skinny_2"},
    [RETCL_KERNEL_LINEAR_SKINNY_4] = {RETCL_FAMILY_LINEAR, "retcl_linear_skinny_4"},
    [RETCL_KERNEL_LINEAR_GROUPED_1] = {RETCL_FAMILY_LINEAR, "retcl_linear_grouped_1"},
    [RETCL_KERNEL_LINEAR_GROUPED_2] = {RETCL_FAMILY_LINEAR, "retcl_linear_grouped_2"},
    [RETCL_KERNEL_LINEAR_GROUPED_4] = {RETCL_FAMILY_LINEAR, "retcl_linear_grouped_4"},
    [RETCL_KERNEL_LINEAR_GROUPED_8] = {RETCL_FAMILY_LINEAR, "retcl_linear_grouped_8"},
    [RETCL_KERNEL_GEMM_NT] = {RETCL_FAMILY_GEMM, "retcl_gemm_nt"},
    [RETCL_KERNEL_GEMM_NN] = {RETCL_FAMILY_GEMM, "retcl_gemm_nn"},
    [RETCL_KERNEL_GEMM_TN] = {RETCL_FAMILY_GEMM, "retcl_gemm_tn"},
    [RETCL_KERNEL_GEMM_PACK_A] = {RETCL_FAMILY_GEMM, "retcl_gemm_pack_a"},
    [RETCL_KERNEL_GEMM_PACK_B] = {RETCL_FAMILY_GEMM, "retcl_gemm_pack_b"},
    [RETCL_KERNEL_GEMM_PANELS] = {RETCL_FAMILY_GEMM, "retcl_gemm_panels"},
    [RETCL_KERNEL_CROSS_ENTROPY_ROWS] = {RETCL_FAMILY_LOSS,
                                         "retcl_cross_entropy_rows"},
    [RETCL_KERNEL_CROSS_ENTROPY_MEAN] = {RETCL_FAMILY_LOSS,
                                         "retcl_cross_entropy_mean"},
    [RETCL_KERNEL_GRAD_NORM_PARTIAL] = {RETCL_FAMILY_OPTIMIZER,
                                        "retcl_grad_norm_partial"},
    [RETCL_KERNEL_GRAD_NORM_FINISH] = {RETCL_FAMILY_OPTIMIZER,
                                       "retcl_grad_norm_finish"},
    [RETCL_KERNEL_ADAMW] = {RETCL_FAMILY_OPTIMIZER, "retcl_adamw"},
};

const char *retcl__kernel_name(retcl_kernel_id id) { return kernels[id].name; }
retcl_family retcl__kernel_family(retcl_kernel_id id) {
  return kernels[id].family;
}

/* Options of a family's program: strict OpenCL C 1.2 (no fast-math:
 * results must be reproducible to fp32 rounding), argument names kept for
 * the launcher's signature check, and the family's parameter record. */
static void build_options(const retcl_context *ctx, retcl_family f, int wt,
                          char *buf, size_t cap) {
  char defines[512];
  retcl__params_defines(&ctx->params, f, defines, sizeof defines);
  /* The fp32 programs are built exactly as before 16-bit weights existed
   * (cl/common.cl defaults RETCL_WTYPE to 0). */
  if (wt)
    snprintf(buf, cap, "-cl-std=CL1.2 -cl-kernel-arg-info %s -DRETCL_WTYPE=%d",
             defines, wt);
  else
    snprintf(buf, cap, "-cl-std=CL1.2 -cl-kernel-arg-info %s", defines);
}

static const char *const wtype_names[RETCL_WTYPE_COUNT] = {"", " (f16 weights)",
                                                           " (bf16 weights)"};

static char *build_log(cl_program prog, cl_device_id device) {
  size_t size = 0;
  clGetProgramBuildInfo(prog, device, CL_PROGRAM_BUILD_LOG, 0, NULL, &size);
  char *log = malloc(size + 1);
  if (!log) return NULL;
  log[0] = '\0';
  clGetProgramBuildInfo(prog, device, CL_PROGRAM_BUILD_LOG, size, log, NULL);
  log[size] = '\0';
  return log;
}

static retcl_status build_program(retcl_context *ctx, retcl_family f, int wt) {
  const char *srcs[2] = {retcl_cl_common, sources[f]};
  cl_int err = CL_SUCCESS;
  cl_program prog = clCreateProgramWithSource(ctx->cl_ctx, 2, srcs, NULL, &err);
  if (!prog) return retcl__cl_fail(ctx, "clCreateProgramWithSource", err);
  char options[640];
  build_options(ctx, f, wt, options, sizeof options);
  err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
  char *log = build_log(prog, ctx->device);
  const int has_log = log && log[0] && log[0] != '\n';
  if (err != CL_SUCCESS) {
    retcl_status st = retcl__fail(
        ctx, RETCL_ERROR_BUILD_FAILED, "building cl/%s.cl%s (%s) failed: %s (%d)\n%s",
        retcl__family_name(f), wtype_names[wt], options, retcl_cl_error_name(err), (int)err,
        has_log ? log : "(no build log)");
    free(log);
    clReleaseProgram(prog);
    return st;
  }
  retcl__log(ctx, RETCL_LOG_INFO, "built cl/%s.cl%s with \"%s\"%s%s",
             retcl__family_name(f), wtype_names[wt], options, has_log ? "; build log:\n" : "",
             has_log ? log : "");
  free(log);
  ctx->programs[wt][f] = prog;
  return RETCL_SUCCESS;
}

/* The family's kernels, with the group size each allows on this device. */
static retcl_status create_kernels(retcl_context *ctx, retcl_family f, int wt) {
  for (int id = 0; id < RETCL_KERNEL_COUNT; ++id) {
    if (kernels[id].family != f || ctx->kernels[wt][id]) continue;
    if (kernels[id].only != BOTH_PATTERNS &&
        retcl__cpu_access(ctx, kernels[id].access) !=
            (kernels[id].only == CPU_PATTERN_ONLY))
      continue;
    cl_int err = CL_SUCCESS;
    cl_kernel k = clCreateKernel(ctx->programs[wt][f], kernels[id].name, &err);
    if (!k) {
      char call[128];
      snprintf(call, sizeof call, "clCreateKernel(%s)", kernels[id].name);
      return retcl__cl_fail(ctx, call, err);
    }
    size_t limit = 0;
    if (clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                 sizeof limit, &limit, NULL) != CL_SUCCESS)
      limit = 0;
    ctx->kernels[wt][id] = k;
    /* One limit per kernel id: the lowest of its variants (the host sizes
     * groups before it knows which variant runs). */
    if (limit && (!ctx->kernel_group_limit[id] ||
                  limit < ctx->kernel_group_limit[id]))
      ctx->kernel_group_limit[id] = limit;
  }
  return RETCL_SUCCESS;
}

static retcl_status prepare_variant(retcl_context *ctx, unsigned mask, int wt) {
  for (int f = 0; f < RETCL_FAMILY_COUNT; ++f) {
    if (!(mask & RETCL_FAMILY_BIT(f)) || f == RETCL_FAMILY_CLBLAST) continue;
    retcl_status st;
    if (!ctx->programs[wt][f] && (st = build_program(ctx, (retcl_family)f, wt)))
      return st;
    if ((st = create_kernels(ctx, (retcl_family)f, wt))) return st;
  }
  return RETCL_SUCCESS;
}

retcl_status retcl__prepare(retcl_context *ctx, unsigned mask) {
  /* The clblast family first: its checks take microseconds, the builds
   * seconds. */
  if (mask & RETCL_FAMILY_BIT(RETCL_FAMILY_CLBLAST)) {
    retcl_status st = retcl__clblast_prepare(ctx);
    if (st) return st;
  }
  return prepare_variant(ctx, mask, 0);
}

retcl_status retcl__prepare_typed(retcl_context *ctx, unsigned mask,
                                  retcl_dtype wtype) {
  retcl_status st = retcl__prepare(ctx, mask);
  if (st || wtype == RETCL_DTYPE_F32) return st;
  return prepare_variant(ctx, mask & RETCL_WEIGHT_FAMILIES, (int)wtype);
}

retcl_status retcl_context_prepare(retcl_context *ctx) {
  retcl_status st = retcl__check_ctx(ctx);
  return st ? st : retcl__prepare(ctx, RETCL_ALL_FAMILIES);
}
