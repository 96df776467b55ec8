/* params.h - kernel parameter records (params.c, docs/design.md §3).
 *
 * Each kernel family (one cl/ file) has one record of tunables: tile sizes,
 * vector widths, work-group shapes and the access pattern. The record is
 * the only place a tunable is written: the family's program is compiled
 * with one -D definition per entry, and the host reads the same values to
 * size its launches. Values resolve in levels, each overriding the one
 * before: built-in default, device type, vendor, device name, the
 * RETCL_KERNEL_PATHS shortcut, device queries (vector width), then the
 * user's RETCL_PARAMS JSON file. */
#ifndef RETCL_RUNTIME_PARAMS_H
#define RETCL_RUNTIME_PARAMS_H

#include "retcl.h"

/* Kernel families: one OpenCL program (cl/<name>.cl) each. */
typedef enum retcl_family {
  RETCL_FAMILY_ROTATION = 0,
  RETCL_FAMILY_RETENTION,
  RETCL_FAMILY_RETENTION_GRAD,
  RETCL_FAMILY_GROUP_NORM,
  RETCL_FAMILY_ELEMENTWISE,
  RETCL_FAMILY_LINEAR,
  RETCL_FAMILY_GEMM,
  RETCL_FAMILY_LOSS,
  RETCL_FAMILY_OPTIMIZER,
  /* No program of RetCL's: the parameters RetCL hands to CLBlast for its
   * SGEMM (clblast.c). */
  RETCL_FAMILY_CLBLAST,
  RETCL_FAMILY_COUNT
} retcl_family;

/* Every tunable, grouped by family (the table in params.c gives each its
 * key, -D name, default and range). */
typedef enum retcl_param_id {
  RETCL_P_ROTATION_GROUP_TOKENS = 0,
  RETCL_P_RETENTION_ACCESS,
  RETCL_P_RETENTION_VW,
  RETCL_P_RETENTION_RB,
  RETCL_P_RETENTION_KB,
  RETCL_P_RETENTION_KT,
  RETCL_P_RETENTION_NV,
  RETCL_P_RETENTION_MR,
  RETCL_P_RETENTION_NR,
  RETCL_P_RETENTION_CHUNK,
  RETCL_P_RETENTION_GRAD_ACCESS,
  RETCL_P_RETENTION_GRAD_VW,
  RETCL_P_RETENTION_GRAD_RB,
  RETCL_P_RETENTION_GRAD_NJ,
  RETCL_P_RETENTION_GRAD_KB,
  RETCL_P_RETENTION_GRAD_RKB,
  RETCL_P_RETENTION_GRAD_GX,
  RETCL_P_RETENTION_GRAD_GY,
  RETCL_P_GROUP_NORM_ACCESS,
  RETCL_P_GROUP_NORM_GROUP_ITEMS,
  RETCL_P_GROUP_NORM_ROW_ITEMS,
  RETCL_P_GROUP_NORM_GRAD_ROWS,
  RETCL_P_ELEMENTWISE_ACCESS,
  RETCL_P_ELEMENTWISE_VW,
  RETCL_P_ELEMENTWISE_PER_ITEM,
  RETCL_P_LINEAR_ACCESS,
  RETCL_P_LINEAR_VW,
  RETCL_P_LINEAR_WG,
  RETCL_P_LINEAR_ITEMS_PER_UNIT,
  RETCL_P_LINEAR_ROW_LIMIT,
  RETCL_P_GEMM_BACKEND,
  RETCL_P_GEMM_ACCESS,
  RETCL_P_GEMM_VW,
  RETCL_P_GEMM_BM,
  RETCL_P_GEMM_BN,
  RETCL_P_GEMM_MR,
  RETCL_P_GEMM_NR,
  RETCL_P_GEMM_NV,
  RETCL_P_GEMM_MB,
  RETCL_P_GEMM_KC,
  RETCL_P_GEMM_PACK_ROWS,
  RETCL_P_GEMM_MG,
  RETCL_P_GEMM_NG,
  RETCL_P_GEMM_KG,
  RETCL_P_GEMM_WG,
  RETCL_P_GEMM_WPT,
  RETCL_P_GEMM_TK,
  RETCL_P_LOSS_ACCESS,
  RETCL_P_LOSS_VW,
  RETCL_P_LOSS_GROUP_ITEMS,
  RETCL_P_OPTIMIZER_ACCESS,
  RETCL_P_OPTIMIZER_VW,
  RETCL_P_OPTIMIZER_PER_ITEM,
  RETCL_P_OPTIMIZER_GROUP_ITEMS,
  RETCL_P_OPTIMIZER_NORM_GROUPS,
  /* CLBlast's Xgemm kernel (its indirect GEMM), in CLBlast's order. */
  RETCL_P_CLBLAST_GEMMK,
  RETCL_P_CLBLAST_KREG,
  RETCL_P_CLBLAST_KWG,
  RETCL_P_CLBLAST_KWI,
  RETCL_P_CLBLAST_MDIMA,
  RETCL_P_CLBLAST_MDIMC,
  RETCL_P_CLBLAST_MWG,
  RETCL_P_CLBLAST_NDIMB,
  RETCL_P_CLBLAST_NDIMC,
  RETCL_P_CLBLAST_NWG,
  RETCL_P_CLBLAST_SA,
  RETCL_P_CLBLAST_SB,
  RETCL_P_CLBLAST_STRM,
  RETCL_P_CLBLAST_STRN,
  RETCL_P_CLBLAST_VWM,
  RETCL_P_CLBLAST_VWN,
  /* CLBlast's XgemmDirect kernel (its single-kernel GEMM of small products). */
  RETCL_P_CLBLAST_DIRECT_KWID,
  RETCL_P_CLBLAST_DIRECT_MDIMAD,
  RETCL_P_CLBLAST_DIRECT_MDIMCD,
  RETCL_P_CLBLAST_DIRECT_NDIMBD,
  RETCL_P_CLBLAST_DIRECT_NDIMCD,
  RETCL_P_CLBLAST_DIRECT_PADA,
  RETCL_P_CLBLAST_DIRECT_PADB,
  RETCL_P_CLBLAST_DIRECT_VWMD,
  RETCL_P_CLBLAST_DIRECT_VWND,
  RETCL_P_CLBLAST_DIRECT_WGD,
  /* CLBlast's choice between the two (its GemmRoutine entry). */
  RETCL_P_CLBLAST_MIN_INDIRECT_SIZE,
  RETCL_PARAM_COUNT
} retcl_param_id;

/* Values of the access-pattern entries (*.access): the -D value is
 * RETCL_CPU (1 for cpu). */
enum { RETCL_ACCESS_GPU = 0, RETCL_ACCESS_CPU = 1 };
/* Values of gemm.backend: who runs products of many rows. */
enum { RETCL_BACKEND_CLBLAST = 0, RETCL_BACKEND_RETCL = 1 };
/* Value of every clblast.* entry that leaves CLBlast's own database value
 * (several CLBlast parameters take 0 as a real value: GEMMK, SA, SB, STRM,
 * STRN, PADA, PADB, XGEMM_MIN_INDIRECT_SIZE). */
enum { RETCL_CLBLAST_DATABASE = -1 };

/* Where a value came from, lowest level first. */
typedef enum retcl_param_source {
  RETCL_SOURCE_BUILTIN = 0,
  RETCL_SOURCE_DEVICE_TYPE,
  RETCL_SOURCE_VENDOR,
  RETCL_SOURCE_DEVICE_NAME,
  RETCL_SOURCE_KERNEL_PATHS,
  RETCL_SOURCE_DEVICE_QUERY,
  RETCL_SOURCE_FILE
} retcl_param_source;

/* Vendors recognised from what drivers really report (vendor.c). */
typedef enum retcl_vendor {
  RETCL_VENDOR_OTHER = 0,
  RETCL_VENDOR_AMD,
  RETCL_VENDOR_INTEL,
  RETCL_VENDOR_NVIDIA,
  RETCL_VENDOR_POCL
} retcl_vendor;

/* What the levels are matched against. */
typedef struct retcl_device_identity {
  cl_device_type type;
  retcl_vendor vendor;
  char name[256];          /* CL_DEVICE_NAME */
  cl_uint preferred_float; /* CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT */
  size_t max_work_group;   /* after RETCL_MAX_WORK_GROUP_SIZE */
  size_t local_mem_bytes;  /* after RETCL_MAX_LOCAL_MEM_BYTES */
} retcl_device_identity;

/* The resolved record of one context. */
typedef struct retcl_params {
  long value[RETCL_PARAM_COUNT];
  retcl_param_source source[RETCL_PARAM_COUNT];
  char file[512]; /* RETCL_PARAMS path that was applied, "" if none */
} retcl_params;

/* Vendor of a device from its platform name, CL_DEVICE_VENDOR, device name
 * and CL_DEVICE_VENDOR_ID (vendor.c; pure, so it is unit-tested on the
 * strings real drivers report). */
retcl_vendor retcl__vendor_of(const char *platform_name,
                              const char *device_vendor,
                              const char *device_name, cl_uint vendor_id);
const char *retcl__vendor_name(retcl_vendor v);
/* Case-insensitive substring test (vendor.c): needle in hay; an empty
 * needle is in every string, nothing is in NULL. */
int retcl__contains_ci(const char *hay, const char *needle);

/* Resolve every level for the device; the RETCL_PARAMS file (if set) is
 * read and checked here: a bad file fails with a message naming the key.
 * ctx may be NULL (messages then go to retcl_last_error(NULL)). */
retcl_status retcl__params_resolve(retcl_context *ctx,
                                   const retcl_device_identity *dev,
                                   retcl_params *out);

/* "-DRETCL_RB=8 -DRETCL_KB=8 ..." for a family's program into buf. */
void retcl__params_defines(const retcl_params *p, retcl_family family,
                           char *buf, size_t cap);

/* Name of a family ("retention"), as cl/<name>.cl and the JSON key. */
const char *retcl__family_name(retcl_family family);

/* Key of a parameter within its family ("rb"), as in the JSON file. */
const char *retcl__param_key(retcl_param_id id);

#endif
