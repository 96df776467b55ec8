/* program.h - the programs and kernels of a context (program.c). Each
 * family's program is built with its parameter record's definitions; ops
 * build what they need before they enqueue anything (the prepare step), so
 * a call never fails half-way from a build. */
#ifndef RETCL_RUNTIME_PROGRAM_H
#define RETCL_RUNTIME_PROGRAM_H

#include "runtime/params.h"

/* Every kernel the library launches; program.c names each and its family. */
typedef enum retcl_kernel_id {
  RETCL_KERNEL_ROTATE = 0,
  RETCL_KERNEL_RETENTION_CHUNK_STATE,
  RETCL_KERNEL_RETENTION_CHUNK_SCAN,
  RETCL_KERNEL_RETENTION_STATE_SCAN,
  RETCL_KERNEL_RETENTION_CHUNK_OUTPUT,
  RETCL_KERNEL_RETENTION_RECURRENT,
  RETCL_KERNEL_RETENTION_ADD_STATE,
  RETCL_KERNEL_RETENTION_GRAD_PANELS,
  RETCL_KERNEL_RETENTION_GRAD_ROW_FACTOR,
  RETCL_KERNEL_RETENTION_GRAD_STATES,
  RETCL_KERNEL_RETENTION_GRAD_DQ,
  RETCL_KERNEL_RETENTION_GRAD_DKDV,
  RETCL_KERNEL_RETENTION_GRAD_REC_DQ,
  RETCL_KERNEL_RETENTION_GRAD_REC_DKDV,
  RETCL_KERNEL_RETENTION_GRAD_REDUCE,
  RETCL_KERNEL_GROUP_NORM_GATE,
  RETCL_KERNEL_GROUP_NORM_GATE_BACKWARD,
  RETCL_KERNEL_GROUP_NORM_GRAD_REDUCE,
  RETCL_KERNEL_EMBED,
  RETCL_KERNEL_RESIDUAL,
  RETCL_KERNEL_GLU,
  RETCL_KERNEL_GLU_BACKWARD,
  RETCL_KERNEL_EMBEDDING_BACKWARD,
  RETCL_KERNEL_LINEAR_SKINNY_1,
  RETCL_KERNEL_LINEAR_SKINNY_2,
  RETCL_KERNEL_LINEAR_SKINNY_4,
  RETCL_KERNEL_LINEAR_GROUPED_1,
  RETCL_KERNEL_LINEAR_GROUPED_2,
  RETCL_KERNEL_LINEAR_GROUPED_4,
  RETCL_KERNEL_LINEAR_GROUPED_8,
  RETCL_KERNEL_GEMM_NT,
  RETCL_KERNEL_GEMM_NN,
  RETCL_KERNEL_GEMM_TN,
  RETCL_KERNEL_GEMM_PACK_A,
  RETCL_KERNEL_GEMM_PACK_B,
  RETCL_KERNEL_GEMM_PANELS,
  RETCL_KERNEL_CROSS_ENTROPY_ROWS,
  RETCL_KERNEL_CROSS_ENTROPY_MEAN,
  RETCL_KERNEL_GRAD_NORM_PARTIAL,
  RETCL_KERNEL_GRAD_NORM_FINISH,
  RETCL_KERNEL_ADAMW,
  RETCL_KERNEL_COUNT
} retcl_kernel_id;

/* A set of families, as bits (1u << family). */
#define RETCL_FAMILY_BIT(f) (1u << (f))
#define RETCL_ALL_FAMILIES ((1u << RETCL_FAMILY_COUNT) - 1u)

/* Weight storage types a program variant is built for: the values of
 * retcl_dtype (F32 0, F16 1, BF16 2), passed to the OpenCL C compiler as
 * -DRETCL_WTYPE (cl/common.cl: RETCL_WT, RETCL_LOAD_W). */
#define RETCL_WTYPE_COUNT 3
/* The families whose kernels read weights, and so have 16-bit variants. */
#define RETCL_WEIGHT_FAMILIES                                  \
  (RETCL_FAMILY_BIT(RETCL_FAMILY_LINEAR) |                     \
   RETCL_FAMILY_BIT(RETCL_FAMILY_GEMM) |                       \
   RETCL_FAMILY_BIT(RETCL_FAMILY_ELEMENTWISE) |                \
   RETCL_FAMILY_BIT(RETCL_FAMILY_GROUP_NORM))

/* Build the programs of the families in `mask` that are not built yet and
 * create their kernels; on failure the message carries the build log. The
 * clblast family has no program: its step checks the record's CLBlast
 * parameters and hands them to CLBlast (runtime/clblast.c). */
retcl_status retcl__prepare(retcl_context *ctx, unsigned mask);

/* retcl__prepare, then the wtype variants of the weight families in mask
 * (nothing more for wtype F32): a 16-bit variant is built on first need. */
retcl_status retcl__prepare_typed(retcl_context *ctx, unsigned mask,
                                  retcl_dtype wtype);

/* Name of a kernel, as in its cl/ file. */
const char *retcl__kernel_name(retcl_kernel_id id);
retcl_family retcl__kernel_family(retcl_kernel_id id);

#endif
