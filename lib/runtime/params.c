/* params.c - the kernel parameter records: the table of every tunable, the
 * built-in levels (device type, vendor, device name), and the user's
 * RETCL_PARAMS file (docs/design.md §3). */
#include "runtime/params.h"

#include "runtime/clblast.h"
#include "runtime/context.h"
#include "ops/limits.h"
#include "runtime/status.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const family_names[RETCL_FAMILY_COUNT] = {
    [RETCL_FAMILY_ROTATION] = "rotation",
    [RETCL_FAMILY_RETENTION] = "retention",
    [RETCL_FAMILY_RETENTION_GRAD] = "retention_grad",
    [RETCL_FAMILY_GROUP_NORM] = "group_norm",
    [RETCL_FAMILY_ELEMENTWISE] = "elementwise",
    [RETCL_FAMILY_LINEAR] = "linear",
    [RETCL_FAMILY_GEMM] = "gemm",
    [RETCL_FAMILY_LOSS] = "loss",
    [RETCL_FAMILY_OPTIMIZER] = "optimizer",
    [RETCL_FAMILY_CLBLAST] = "clblast",
};

const char *retcl__family_name(retcl_family family) {
  return family_names[family];
}

/* Value names of the access-pattern entries, indexed by value. */
static const char *const access_names[] = {"gpu", "cpu", NULL};
/* Value names of gemm.backend. */
static const char *const backend_names[] = {"clblast", "retcl", NULL};

typedef struct param_spec {
  retcl_family family;
  const char *key;              /* JSON key within the family */
  const char *define;           /* -D name in the family's program, or NULL
                                   for a value only the host reads */
  long builtin, lo, hi;         /* default and accepted range */
  const char *const *names;     /* value names (access), or NULL */
  const char *help;
} param_spec;

/* The one place each tunable is written. Ranges are what the host accepts;
 * a value in range that a kernel cannot use (a vector width other than 8
 * or 16, say) fails its program's build with the kernel's #error message. */
static const param_spec specs[RETCL_PARAM_COUNT] = {
    [RETCL_P_ROTATION_GROUP_TOKENS] = {RETCL_FAMILY_ROTATION, "group_tokens",
        NULL, 0, 0, 1024, NULL,
        "tokens per work-group (0: the driver chooses)"},
    [RETCL_P_RETENTION_ACCESS] = {RETCL_FAMILY_RETENTION, "access",
        "RETCL_CPU", RETCL_ACCESS_GPU, 0, 1, access_names,
        "cpu: an item walks every column block; gpu: blocks spread over items"},
    [RETCL_P_RETENTION_VW] = {RETCL_FAMILY_RETENTION, "vw", "RETCL_VW", 8, 1,
        16, NULL, "floats per column block (OpenCL vector: 8 or 16)"},
    [RETCL_P_RETENTION_RB] = {RETCL_FAMILY_RETENTION, "rb", "RETCL_RB", 8, 1,
        64, NULL, "query rows per work-item in chunk_output"},
    [RETCL_P_RETENTION_KB] = {RETCL_FAMILY_RETENTION, "kb", "RETCL_KB", 8, 1,
        64, NULL, "state rows per work-item in chunk_state (gpu); cpu: per "
        "register tile of state_scan, at most vw"},
    [RETCL_P_RETENTION_KT] = {RETCL_FAMILY_RETENTION, "kt", "RETCL_KT", 32, 1,
        256, NULL, "keys per score tile in chunk_output (and per weight tile "
        "in the state pass)"},
    [RETCL_P_RETENTION_NV] = {RETCL_FAMILY_RETENTION, "nv", "RETCL_NV", 2, 1, 8,
        NULL, "cpu: vectors of columns per register tile (kb x nv in "
        "state_scan, rb x nv in chunk_output)"},
    [RETCL_P_RETENTION_MR] = {RETCL_FAMILY_RETENTION, "mr", "RETCL_MR", 2, 1,
        16, NULL, "cpu: query rows per register tile of the scores (divides "
        "rb)"},
    [RETCL_P_RETENTION_NR] = {RETCL_FAMILY_RETENTION, "nr", "RETCL_NR", 4, 1,
        16, NULL, "cpu: keys per register tile of the scores"},
    [RETCL_P_RETENTION_CHUNK] = {RETCL_FAMILY_RETENTION, "chunk", NULL, 64, 1,
        RETCL_MAX_CHUNK, NULL, "chunk size that chunk_size = 0 means"},
    [RETCL_P_RETENTION_GRAD_ACCESS] = {RETCL_FAMILY_RETENTION_GRAD, "access",
        "RETCL_CPU", RETCL_ACCESS_GPU, 0, 1, access_names,
        "cpu: register tiles per item; gpu: score tiles in local memory"},
    [RETCL_P_RETENTION_GRAD_VW] = {RETCL_FAMILY_RETENTION_GRAD, "vw",
        "RETCL_VW", 8, 1, 16, NULL,
        "floats per column block (OpenCL vector: 8 or 16)"},
    [RETCL_P_RETENTION_GRAD_RB] = {RETCL_FAMILY_RETENTION_GRAD, "rb",
        "RETCL_RG_RB", 8, 1, 32, NULL,
        "rows per register tile of the dq/dkdv scores and sweeps (cpu)"},
    [RETCL_P_RETENTION_GRAD_NJ] = {RETCL_FAMILY_RETENTION_GRAD, "nj",
        "RETCL_RG_NJ", 2, 1, 8, NULL,
        "vectors per score tile (tile = nj x vw tokens)"},
    [RETCL_P_RETENTION_GRAD_KB] = {RETCL_FAMILY_RETENTION_GRAD, "kb",
        "RETCL_RG_KB", 8, 1, 64, NULL, "state rows per work-item of the chunk states"},
    [RETCL_P_RETENTION_GRAD_RKB] = {RETCL_FAMILY_RETENTION_GRAD, "rkb", NULL,
        16, 1, RETCL_MAX_HEAD_DIM, NULL,
        "state rows per work-item of the recurrent sweeps"},
    [RETCL_P_RETENTION_GRAD_GX] = {RETCL_FAMILY_RETENTION_GRAD, "gx", NULL, 16,
        1, 1024, NULL, "work-items per row of a dq/dkdv group (gpu)"},
    [RETCL_P_RETENTION_GRAD_GY] = {RETCL_FAMILY_RETENTION_GRAD, "gy", NULL, 4,
        1, 1024, NULL, "rows per dq/dkdv work-group (gpu)"},
    [RETCL_P_GROUP_NORM_ACCESS] = {RETCL_FAMILY_GROUP_NORM, "access",
        "RETCL_CPU", RETCL_ACCESS_GPU, 0, 1, access_names,
        "cpu: an item per row; gpu: lanes of a group share a row"},
    [RETCL_P_GROUP_NORM_GROUP_ITEMS] = {RETCL_FAMILY_GROUP_NORM, "group_items",
        NULL, 256, 1, 4096, NULL, "most work-items per group (gpu access)"},
    [RETCL_P_GROUP_NORM_ROW_ITEMS] = {RETCL_FAMILY_GROUP_NORM, "row_items",
        NULL, 64, 1, 4096, NULL, "most rows per work-group (cpu access)"},
    [RETCL_P_GROUP_NORM_GRAD_ROWS] = {RETCL_FAMILY_GROUP_NORM, "grad_rows",
        NULL, 32, 1, 1 << 20, NULL,
        "backward: tokens per partial sum of d_weight and d_bias"},
    [RETCL_P_ELEMENTWISE_ACCESS] = {RETCL_FAMILY_ELEMENTWISE, "access",
        "RETCL_CPU", RETCL_ACCESS_GPU, 0, 1, access_names,
        "cpu: a contiguous range per item; gpu: one element per item"},
    [RETCL_P_ELEMENTWISE_VW] = {RETCL_FAMILY_ELEMENTWISE, "vw", "RETCL_VW", 8,
        1, 16, NULL, "floats per vector in the GLU (8 or 16)"},
    [RETCL_P_ELEMENTWISE_PER_ITEM] = {RETCL_FAMILY_ELEMENTWISE, "per_item",
        NULL, 64, 1, 1 << 20, NULL, "elements per work-item (cpu access)"},
    [RETCL_P_LINEAR_ACCESS] = {RETCL_FAMILY_LINEAR, "access", "RETCL_CPU",
        RETCL_ACCESS_GPU, 0, 1, access_names,
        "cpu: an item streams W rows; gpu: a group per W row"},
    [RETCL_P_LINEAR_VW] = {RETCL_FAMILY_LINEAR, "vw", "RETCL_VW", 8, 1, 16,
        NULL, "floats per vector in the streaming kernels (8 or 16)"},
    [RETCL_P_LINEAR_WG] = {RETCL_FAMILY_LINEAR, "wg", "RETCL_LINEAR_WG", 64, 1,
        1024, NULL, "work-group size of the gpu kernels (a power of two)"},
    [RETCL_P_LINEAR_ITEMS_PER_UNIT] = {RETCL_FAMILY_LINEAR, "items_per_unit",
        NULL, 4, 1, 1024, NULL, "work-items per compute unit (cpu access)"},
    [RETCL_P_LINEAR_ROW_LIMIT] = {RETCL_FAMILY_LINEAR, "row_limit", NULL, 32,
        0, 1 << 20, NULL,
        "most rows the streaming kernels take (more: gemm.backend)"},
    [RETCL_P_GEMM_BACKEND] = {RETCL_FAMILY_GEMM, "backend", NULL,
        RETCL_BACKEND_CLBLAST, 0, 1, backend_names,
        "who runs products of more rows: clblast or retcl (cl/gemm.cl)"},
    [RETCL_P_GEMM_ACCESS] = {RETCL_FAMILY_GEMM, "access", "RETCL_CPU",
        RETCL_ACCESS_GPU, 0, 1, access_names,
        "cpu: register tiles per item; gpu: local-memory tiles per group"},
    [RETCL_P_GEMM_VW] = {RETCL_FAMILY_GEMM, "vw", "RETCL_VW", 8, 1, 16, NULL,
        "floats per vector in the cpu kernels (8 or 16)"},
    [RETCL_P_GEMM_BM] = {RETCL_FAMILY_GEMM, "bm", "RETCL_GEMM_BM", 32, 1,
        4096, NULL, "rows of C per work-item (cpu)"},
    [RETCL_P_GEMM_BN] = {RETCL_FAMILY_GEMM, "bn", "RETCL_GEMM_BN", 64, 1,
        4096, NULL, "columns of C per work-item (cpu)"},
    [RETCL_P_GEMM_MR] = {RETCL_FAMILY_GEMM, "mr", "RETCL_GEMM_MR", 4, 1, 16,
        NULL, "rows of a register tile (cpu)"},
    [RETCL_P_GEMM_NR] = {RETCL_FAMILY_GEMM, "nr", "RETCL_GEMM_NR", 4, 1, 16,
        NULL, "columns of an nt register tile (cpu)"},
    [RETCL_P_GEMM_NV] = {RETCL_FAMILY_GEMM, "nv", "RETCL_GEMM_NV", 2, 1, 8,
        NULL, "vectors of columns of an nn/tn register tile (cpu)"},
    [RETCL_P_GEMM_MB] = {RETCL_FAMILY_GEMM, "mb", "RETCL_GEMM_MB", 4, 1, 16,
        NULL, "rows of an nn/tn register tile (cpu)"},
    [RETCL_P_GEMM_KC] = {RETCL_FAMILY_GEMM, "kc", "RETCL_GEMM_KC", 256, 1,
        1 << 20, NULL, "k per block of the nn/tn and packed sums (cpu)"},
    [RETCL_P_GEMM_PACK_ROWS] = {RETCL_FAMILY_GEMM, "pack_rows", NULL, 256, 1,
        1 << 30, NULL,
        "products of this many rows and more run on packed panels (cpu)"},
    [RETCL_P_GEMM_MG] = {RETCL_FAMILY_GEMM, "mg", NULL, 512, 1, 1 << 20,
        NULL, "rows of op(A) per packed group (cpu)"},
    [RETCL_P_GEMM_NG] = {RETCL_FAMILY_GEMM, "ng", NULL, 2048, 1, 1 << 20,
        NULL, "columns of op(B) per packed group (cpu)"},
    [RETCL_P_GEMM_KG] = {RETCL_FAMILY_GEMM, "kg", NULL, 1024, 1, 1 << 20,
        NULL, "k per packed group (cpu)"},
    [RETCL_P_GEMM_WG] = {RETCL_FAMILY_GEMM, "wg", "RETCL_GEMM_WG", 16, 1, 64,
        NULL, "work-group side (gpu: wg x wg items)"},
    [RETCL_P_GEMM_WPT] = {RETCL_FAMILY_GEMM, "wpt", "RETCL_GEMM_WPT", 4, 1, 16,
        NULL, "outputs per item along each side (gpu; tile = wg x wpt)"},
    [RETCL_P_GEMM_TK] = {RETCL_FAMILY_GEMM, "tk", "RETCL_GEMM_TK", 16, 1, 256,
        NULL, "k per local-memory tile (gpu)"},
    [RETCL_P_LOSS_ACCESS] = {RETCL_FAMILY_LOSS, "access", "RETCL_CPU",
        RETCL_ACCESS_GPU, 0, 1, access_names,
        "cpu: a work-item per row; gpu: a work-group per row"},
    [RETCL_P_LOSS_VW] = {RETCL_FAMILY_LOSS, "vw", "RETCL_VW", 8, 1, 16, NULL,
        "floats per vector along a row (cpu; 8 or 16)"},
    [RETCL_P_LOSS_GROUP_ITEMS] = {RETCL_FAMILY_LOSS, "group_items", NULL, 256,
        1, 4096, NULL, "most work-items per group sharing a row (gpu)"},
    [RETCL_P_OPTIMIZER_ACCESS] = {RETCL_FAMILY_OPTIMIZER, "access",
        "RETCL_CPU", RETCL_ACCESS_GPU, 0, 1, access_names,
        "cpu: a contiguous range per item; gpu: one element per item"},
    [RETCL_P_OPTIMIZER_VW] = {RETCL_FAMILY_OPTIMIZER, "vw", "RETCL_VW", 8, 1,
        16, NULL, "floats per vector (cpu; 8 or 16)"},
    [RETCL_P_OPTIMIZER_PER_ITEM] = {RETCL_FAMILY_OPTIMIZER, "per_item", NULL,
        1024, 1, 1 << 24, NULL,
        "elements per work-item in the update and norm (cpu)"},
    [RETCL_P_OPTIMIZER_GROUP_ITEMS] = {RETCL_FAMILY_OPTIMIZER, "group_items",
        NULL, 256, 1, 4096, NULL,
        "most work-items per group of the gradient norm (gpu)"},
    [RETCL_P_OPTIMIZER_NORM_GROUPS] = {RETCL_FAMILY_OPTIMIZER, "norm_groups",
        NULL, 512, 1, 1 << 20, NULL,
        "most work-groups (partial sums) per tensor in the norm (gpu)"},
    /* CLBlast's kernel parameters (runtime/clblast.c hands them to
     * CLBlastOverrideParameters), keys named after CLBlast's, lower case.
     * -1 (RETCL_CLBLAST_DATABASE) everywhere: CLBlast's own database, which
     * holds vendor-tuned values for many GPUs. CLBlast takes each kernel's
     * parameters only all together, so a record sets all of one kernel's or
     * none (clblast.c checks at context creation); ranges are what the
     * host accepts, and clblast.c checks the constraints of CLBlast's
     * kernels and the device's limits before CLBlast runs. */
#define CLBLAST_SPEC(id, key, hi, help)                                     \
  [id] = {RETCL_FAMILY_CLBLAST, key, NULL, RETCL_CLBLAST_DATABASE,          \
          RETCL_CLBLAST_DATABASE, hi, NULL, help " (-1: CLBlast's database)"}
    CLBLAST_SPEC(RETCL_P_CLBLAST_GEMMK, "gemmk", 1,
                 "Xgemm GEMMK: 0, the local-memory kernel (1 is refused)"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_KREG, "kreg", 64,
                 "Xgemm KREG: k per register tile (GEMMK 1 only)"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_KWG, "kwg", 1024,
                 "Xgemm KWG: k per tile of a work-group"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_KWI, "kwi", 1024,
                 "Xgemm KWI: unroll of the KWG loop"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_MDIMA, "mdima", 1024,
                 "Xgemm MDIMA: items along m loading A"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_MDIMC, "mdimc", 1024,
                 "Xgemm MDIMC: work-group items along m"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_MWG, "mwg", 4096,
                 "Xgemm MWG: rows of C per work-group"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_NDIMB, "ndimb", 1024,
                 "Xgemm NDIMB: items along n loading B"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_NDIMC, "ndimc", 1024,
                 "Xgemm NDIMC: work-group items along n"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_NWG, "nwg", 4096,
                 "Xgemm NWG: columns of C per work-group"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_SA, "sa", 1,
                 "Xgemm SA: 1 caches A in local memory"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_SB, "sb", 1,
                 "Xgemm SB: 1 caches B in local memory"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_STRM, "strm", 1,
                 "Xgemm STRM: 1 strided access along m"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_STRN, "strn", 1,
                 "Xgemm STRN: 1 strided access along n"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_VWM, "vwm", 16,
                 "Xgemm VWM: vector width along m (1, 2, 4, 8, 16)"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_VWN, "vwn", 16,
                 "Xgemm VWN: vector width along n (1, 2, 4, 8, 16)"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_DIRECT_KWID, "direct_kwid", 1024,
                 "XgemmDirect KWID: unroll of the k loop"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_DIRECT_MDIMAD, "direct_mdimad", 1024,
                 "XgemmDirect MDIMAD: items along m loading A"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_DIRECT_MDIMCD, "direct_mdimcd", 1024,
                 "XgemmDirect MDIMCD: work-group items along m"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_DIRECT_NDIMBD, "direct_ndimbd", 1024,
                 "XgemmDirect NDIMBD: items along n loading B"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_DIRECT_NDIMCD, "direct_ndimcd", 1024,
                 "XgemmDirect NDIMCD: work-group items along n"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_DIRECT_PADA, "direct_pada", 1,
                 "XgemmDirect PADA: 1 pads A's local tile"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_DIRECT_PADB, "direct_padb", 1,
                 "XgemmDirect PADB: 1 pads B's local tile"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_DIRECT_VWMD, "direct_vwmd", 16,
                 "XgemmDirect VWMD: vector width along m (1, 2, 4, 8, 16)"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_DIRECT_VWND, "direct_vwnd", 16,
                 "XgemmDirect VWND: vector width along n (1, 2, 4, 8, 16)"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_DIRECT_WGD, "direct_wgd", 1024,
                 "XgemmDirect WGD: rows, columns and k per work-group tile"),
    CLBLAST_SPEC(RETCL_P_CLBLAST_MIN_INDIRECT_SIZE, "xgemm_min_indirect_size",
                 1 << 20,
                 "products with m n k below its cube run XgemmDirect, the "
                 "others Xgemm (0: always Xgemm)"),
#undef CLBLAST_SPEC
};

/* A built-in override: where `match` applies, param takes value. */
typedef enum match_kind { MATCH_TYPE, MATCH_VENDOR, MATCH_NAME } match_kind;
typedef struct level_entry {
  match_kind kind;
  cl_device_type type;   /* MATCH_TYPE */
  retcl_vendor vendor;   /* MATCH_VENDOR */
  const char *name;      /* MATCH_NAME: substring of CL_DEVICE_NAME */
  retcl_param_id param;
  long value;
} level_entry;

/* Device type: CPUs walk contiguous ranges per work-item, and run RetCL's
 * GEMM. Vendor: values
 * measured on PoCL 3.1 (2-core Xeon, docs/benchmarks.md): 256 elements per
 * item, 8 items per core for the streaming projections. Device names: none
 * yet; a tuned record for a device goes here (docs/api.md says how to
 * contribute one). */
static const level_entry levels[] = {
    {MATCH_TYPE, CL_DEVICE_TYPE_CPU, 0, NULL, RETCL_P_RETENTION_ACCESS,
     RETCL_ACCESS_CPU},
    /* Register tiles of the chunkwise forward (cpu pattern): 4 rows per
     * work-item and tile, key tiles of a whole default chunk (each output
     * stored once). */
    {MATCH_TYPE, CL_DEVICE_TYPE_CPU, 0, NULL, RETCL_P_RETENTION_RB, 4},
    {MATCH_TYPE, CL_DEVICE_TYPE_CPU, 0, NULL, RETCL_P_RETENTION_KB, 4},
    {MATCH_TYPE, CL_DEVICE_TYPE_CPU, 0, NULL, RETCL_P_RETENTION_KT, 64},
    {MATCH_TYPE, CL_DEVICE_TYPE_CPU, 0, NULL, RETCL_P_RETENTION_GRAD_ACCESS,
     RETCL_ACCESS_CPU},
    /* One work-item per (b, h) walks every state row in the recurrent
     * sweeps: no partial sums of dv to add up. */
    {MATCH_TYPE, CL_DEVICE_TYPE_CPU, 0, NULL, RETCL_P_RETENTION_GRAD_RKB,
     RETCL_MAX_HEAD_DIM},
    {MATCH_TYPE, CL_DEVICE_TYPE_CPU, 0, NULL, RETCL_P_GROUP_NORM_ACCESS,
     RETCL_ACCESS_CPU},
    {MATCH_TYPE, CL_DEVICE_TYPE_CPU, 0, NULL, RETCL_P_ELEMENTWISE_ACCESS,
     RETCL_ACCESS_CPU},
    {MATCH_TYPE, CL_DEVICE_TYPE_CPU, 0, NULL, RETCL_P_LINEAR_ACCESS,
     RETCL_ACCESS_CPU},
    {MATCH_TYPE, CL_DEVICE_TYPE_CPU, 0, NULL, RETCL_P_GEMM_ACCESS,
     RETCL_ACCESS_CPU},
    /* CLBlast has no tuning for CPUs: on PoCL (2-core Xeon) its SGEMM ran
     * 15-20 GFLOP/s where cl/gemm.cl's cpu kernels run 60-135. */
    {MATCH_TYPE, CL_DEVICE_TYPE_CPU, 0, NULL, RETCL_P_GEMM_BACKEND,
     RETCL_BACKEND_RETCL},
    {MATCH_TYPE, CL_DEVICE_TYPE_CPU, 0, NULL, RETCL_P_LOSS_ACCESS,
     RETCL_ACCESS_CPU},
    {MATCH_TYPE, CL_DEVICE_TYPE_CPU, 0, NULL, RETCL_P_OPTIMIZER_ACCESS,
     RETCL_ACCESS_CPU},
    {MATCH_VENDOR, 0, RETCL_VENDOR_POCL, NULL, RETCL_P_ELEMENTWISE_PER_ITEM,
     256},
    {MATCH_VENDOR, 0, RETCL_VENDOR_POCL, NULL, RETCL_P_LINEAR_ITEMS_PER_UNIT,
     8},
    /* retcl tune --family gemm --budget 150s on PoCL 3.1 (2-core Xeon,
     * AVX-512): 64 x 128 outputs per work-item, 4 x 4 register tiles. */
    {MATCH_VENDOR, 0, RETCL_VENDOR_POCL, NULL, RETCL_P_GEMM_BM, 64},
    {MATCH_VENDOR, 0, RETCL_VENDOR_POCL, NULL, RETCL_P_GEMM_BN, 128},
    /* The packed panels (products of gemm.pack_rows rows and more): 4 rows
     * by 4 vectors per broadcast tile, k blocks of 128 (retcl tune
     * --family gemm --budget 4m, then interleaved A/B over five shapes:
     * nn and tn 1.1-1.4x the 4 x 2 tile with k blocks of 256, nt even). */
    {MATCH_VENDOR, 0, RETCL_VENDOR_POCL, NULL, RETCL_P_GEMM_NV, 4},
    /* Chunkwise retention forward (B1 H8 D128 T4096, chunk 64; user cycles
     * per call by perf sampling, interleaved, docs/benchmarks.md): 4 x 4
     * vector tiles for the cross, p·V and state products and 4 x 4 score
     * tiles, against 8 x 2 and 2 x 4. */
    {MATCH_VENDOR, 0, RETCL_VENDOR_POCL, NULL, RETCL_P_RETENTION_NV, 4},
    {MATCH_VENDOR, 0, RETCL_VENDOR_POCL, NULL, RETCL_P_RETENTION_MR, 4},
    {MATCH_VENDOR, 0, RETCL_VENDOR_POCL, NULL, RETCL_P_RETENTION_NR, 4},
    {MATCH_VENDOR, 0, RETCL_VENDOR_POCL, NULL, RETCL_P_GEMM_KC, 128},
};

static int level_matches(const level_entry *e, const retcl_device_identity *d,
                         match_kind kind) {
  if (e->kind != kind) return 0;
  switch (kind) {
    case MATCH_TYPE: return (d->type & e->type) != 0;
    case MATCH_VENDOR: return d->vendor == e->vendor;
    case MATCH_NAME: return strstr(d->name, e->name) != NULL;
  }
  return 0;
}

static void apply_levels(const retcl_device_identity *dev, retcl_params *p) {
  static const struct {
    match_kind kind;
    retcl_param_source source;
  } order[] = {{MATCH_TYPE, RETCL_SOURCE_DEVICE_TYPE},
               {MATCH_VENDOR, RETCL_SOURCE_VENDOR},
               {MATCH_NAME, RETCL_SOURCE_DEVICE_NAME}};
  for (size_t o = 0; o < sizeof order / sizeof order[0]; ++o)
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; ++i)
      if (level_matches(&levels[i], dev, order[o].kind)) {
        p->value[levels[i].param] = levels[i].value;
        p->source[levels[i].param] = order[o].source;
      }
}

/* RETCL_KERNEL_PATHS=cpu|gpu: every access pattern at once, so the tests
 * and oclgrind run the GPU code on a CPU device. */
static void apply_kernel_paths(retcl_params *p) {
  const char *paths = getenv("RETCL_KERNEL_PATHS");
  if (!paths || (strcmp(paths, "cpu") && strcmp(paths, "gpu"))) return;
  const long v = !strcmp(paths, "cpu") ? RETCL_ACCESS_CPU : RETCL_ACCESS_GPU;
  for (int i = 0; i < RETCL_PARAM_COUNT; ++i)
    if (specs[i].names == access_names) {
      p->value[i] = v;
      p->source[i] = RETCL_SOURCE_KERNEL_PATHS;
    }
}

/* The gpu GEMM tile within the device: wg x wg items per group at most
 * the device allows, and its two local tiles (2 x tk x (wg wpt + 1)
 * floats) within half its local memory. */
static void fit_gemm_tile(const retcl_device_identity *dev, retcl_params *p) {
  long *wg = &p->value[RETCL_P_GEMM_WG], *wpt = &p->value[RETCL_P_GEMM_WPT];
  const long tk = p->value[RETCL_P_GEMM_TK];
  while (*wg > 1 && (size_t)(*wg * *wg) > dev->max_work_group) {
    *wg /= 2;
    p->source[RETCL_P_GEMM_WG] = RETCL_SOURCE_DEVICE_QUERY;
  }
  while (*wpt > 1 && dev->local_mem_bytes &&
         (size_t)(2 * tk * (*wg * *wpt + 1)) * sizeof(float) >
             dev->local_mem_bytes / 2) {
    *wpt /= 2;
    p->source[RETCL_P_GEMM_WPT] = RETCL_SOURCE_DEVICE_QUERY;
  }
}

/* Vector widths: 16 where a CPU-pattern family runs on a device that
 * prefers 16-wide floats (AVX-512), unless a level above set them. */
static void apply_device_queries(const retcl_device_identity *dev,
                                 retcl_params *p) {
  static const retcl_param_id vw[][2] = {
      {RETCL_P_RETENTION_VW, RETCL_P_RETENTION_ACCESS},
      {RETCL_P_RETENTION_GRAD_VW, RETCL_P_RETENTION_GRAD_ACCESS},
      {RETCL_P_ELEMENTWISE_VW, RETCL_P_ELEMENTWISE_ACCESS},
      {RETCL_P_LINEAR_VW, RETCL_P_LINEAR_ACCESS},
      {RETCL_P_GEMM_VW, RETCL_P_GEMM_ACCESS},
      {RETCL_P_LOSS_VW, RETCL_P_LOSS_ACCESS},
      {RETCL_P_OPTIMIZER_VW, RETCL_P_OPTIMIZER_ACCESS}};
  fit_gemm_tile(dev, p);
  if (dev->preferred_float < 16) return;
  for (size_t i = 0; i < sizeof vw / sizeof vw[0]; ++i)
    if (p->value[vw[i][1]] == RETCL_ACCESS_CPU &&
        p->source[vw[i][0]] == RETCL_SOURCE_BUILTIN) {
      p->value[vw[i][0]] = 16;
      p->source[vw[i][0]] = RETCL_SOURCE_DEVICE_QUERY;
    }
}

static int find_family(const char *name) {
  for (int f = 0; f < RETCL_FAMILY_COUNT; ++f)
    if (!strcmp(family_names[f], name)) return f;
  return -1;
}

static int find_param(int family, const char *key) {
  for (int i = 0; i < RETCL_PARAM_COUNT; ++i)
    if ((int)specs[i].family == family && !strcmp(specs[i].key, key))
      return i;
  return -1;
}

/* One "family": {"key": value} entry of the file into p. */
static retcl_status apply_file_value(retcl_context *ctx, const char *path,
                                     const char *family, const cJSON *item,
                                     int id, retcl_params *p) {
  const param_spec *s = &specs[id];
  long v = 0;
  if (s->names && cJSON_IsString(item)) {
    int found = -1;
    for (int n = 0; s->names[n]; ++n)
      if (!strcmp(s->names[n], item->valuestring)) found = n;
    if (found < 0)
      return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                         "RETCL_PARAMS %s: %s.%s = \"%s\" is not one of "
                         "\"%s\", \"%s\"",
                         path, family, item->string, item->valuestring,
                         s->names[0], s->names[1]);
    v = found;
  } else if (cJSON_IsNumber(item) && item->valuedouble == floor(item->valuedouble) &&
             fabs(item->valuedouble) < 1e15) {
    v = (long)item->valuedouble;
  } else {
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "RETCL_PARAMS %s: %s.%s must be %s", path, family,
                       item->string,
                       s->names ? "one of its names (retcl params lists them)"
                                : "a whole number");
  }
  if (v < s->lo || v > s->hi)
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "RETCL_PARAMS %s: %s.%s = %ld is outside [%ld, %ld] "
                       "(%s)",
                       path, family, item->string, v, s->lo, s->hi, s->help);
  p->value[id] = v;
  p->source[id] = RETCL_SOURCE_FILE;
  return RETCL_SUCCESS;
}

/* The file's text, NUL-terminated (malloc'd), or NULL with a message. */
static char *read_text(retcl_context *ctx, const char *path,
                       retcl_status *st) {
  FILE *f = fopen(path, "rb");
  char *text = NULL;
  long n = -1;
  if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
      n < (1L << 24) && fseek(f, 0, SEEK_SET) == 0 &&
      (text = malloc((size_t)n + 1)) && fread(text, 1, (size_t)n, f) == (size_t)n) {
    text[n] = '\0';
    fclose(f);
    return text;
  }
  const int err = errno;
  free(text);
  if (f) fclose(f);
  *st = retcl__fail(ctx, RETCL_ERROR_IO,
                    "RETCL_PARAMS %s: cannot read the file (%s)", path,
                    n >= (1L << 24) ? "larger than 16 MiB" : strerror(err));
  return NULL;
}

/* RETCL_PARAMS: {"device": "substring" (optional), "<family>": {"<key>":
 * value, ...}, ...}. Unknown families and keys are errors, so a typo never
 * passes silently. */
static retcl_status apply_file(retcl_context *ctx,
                               const retcl_device_identity *dev,
                               retcl_params *p) {
  const char *path = getenv("RETCL_PARAMS");
  if (!path || !*path) return RETCL_SUCCESS;
  retcl_status st = RETCL_SUCCESS;
  char *text = read_text(ctx, path, &st);
  if (!text) return st;
  cJSON *root = cJSON_Parse(text);
  free(text);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "RETCL_PARAMS %s: not a JSON object", path);
  }
  const cJSON *device = cJSON_GetObjectItemCaseSensitive(root, "device");
  if (device && !cJSON_IsString(device)) {
    cJSON_Delete(root);
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "RETCL_PARAMS %s: \"device\" must be a string (a part "
                       "of the device name the file is for)",
                       path);
  }
  if (device && !strstr(dev->name, device->valuestring)) {
    /* A record for another device: keep the built-in values. */
    cJSON_Delete(root);
    return RETCL_SUCCESS;
  }
  const cJSON *fam;
  cJSON_ArrayForEach(fam, root) {
    if (!strcmp(fam->string, "device")) continue;
    const int f = find_family(fam->string);
    if (f < 0 || !cJSON_IsObject(fam)) {
      st = retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "RETCL_PARAMS %s: \"%s\" is %s", path, fam->string,
                       f < 0 ? "not a kernel family (rotation, retention, "
                               "retention_grad, group_norm, elementwise, "
                               "linear, gemm, loss, optimizer, clblast)"
                             : "not an object of parameters");
      break;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, fam) {
      const int id = find_param(f, item->string);
      if (id < 0) {
        st = retcl__fail(ctx, RETCL_ERROR_FORMAT,
                         "RETCL_PARAMS %s: %s.%s is not a parameter of the "
                         "%s family (retcl params lists them)",
                         path, fam->string, item->string, fam->string);
        break;
      }
      if ((st = apply_file_value(ctx, path, fam->string, item, id, p))) break;
    }
    if (st) break;
  }
  cJSON_Delete(root);
  if (!st) snprintf(p->file, sizeof p->file, "%s", path);
  return st;
}

retcl_status retcl__params_resolve(retcl_context *ctx,
                                   const retcl_device_identity *dev,
                                   retcl_params *out) {
  retcl_params p;
  memset(&p, 0, sizeof p);
  for (int i = 0; i < RETCL_PARAM_COUNT; ++i) {
    p.value[i] = specs[i].builtin;
    p.source[i] = RETCL_SOURCE_BUILTIN;
  }
  apply_levels(dev, &p);
  apply_kernel_paths(&p);
  apply_device_queries(dev, &p);
  retcl_status st = apply_file(ctx, dev, &p);
  if (!st) st = retcl__clblast_check_record(ctx, &p);
  if (st) return st;
  *out = p;
  return RETCL_SUCCESS;
}

void retcl__params_defines(const retcl_params *p, retcl_family family,
                           char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < RETCL_PARAM_COUNT; ++i) {
    if (specs[i].family != family || !specs[i].define) continue;
    int n = snprintf(buf + used, cap - used, "%s-D%s=%ld", used ? " " : "",
                     specs[i].define, p->value[i]);
    if (n < 0 || (size_t)n >= cap - used) break;
    used += (size_t)n;
  }
}

/* ---- public: what `retcl params` prints ---------------------------------- */

size_t retcl_param_count(void) { return RETCL_PARAM_COUNT; }

static const char *source_name(retcl_param_source s) {
  switch (s) {
    case RETCL_SOURCE_BUILTIN: return "built-in";
    case RETCL_SOURCE_DEVICE_TYPE: return "device type";
    case RETCL_SOURCE_VENDOR: return "vendor";
    case RETCL_SOURCE_DEVICE_NAME: return "device name";
    case RETCL_SOURCE_KERNEL_PATHS: return "RETCL_KERNEL_PATHS";
    case RETCL_SOURCE_DEVICE_QUERY: return "device query";
    case RETCL_SOURCE_FILE: return "RETCL_PARAMS";
  }
  return "?";
}

retcl_status retcl_param_get(const retcl_context *ctx, size_t index,
                             retcl_param_info *info) {
  if (!ctx || !info || index >= RETCL_PARAM_COUNT)
    return RETCL_ERROR_INVALID_ARGUMENT;
  const param_spec *s = &specs[index];
  info->family = family_names[s->family];
  info->key = s->key;
  info->value = ctx->params.value[index];
  info->value_name = s->names ? s->names[info->value] : NULL;
  info->source = source_name(ctx->params.source[index]);
  info->define = s->define;
  info->help = s->help;
  return RETCL_SUCCESS;
}

const char *retcl__param_key(retcl_param_id id) { return specs[id].key; }
