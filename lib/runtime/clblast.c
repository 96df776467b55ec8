/* clblast.c - the clblast family of the parameter record and the SGEMM
 * RetCL runs through CLBlast (clblast.h, docs/design.md §3).
 *
 * CLBlast keeps one set of parameters per device, database entry and
 * precision for the whole process (its database cache) and reads it when a
 * routine call starts; CLBlastOverrideParameters replaces that set, and
 * CLBlast compiles (and caches) one program per distinct set. Hence:
 *
 * - A context whose record sets CLBlast parameters hands them to CLBlast
 *   when it is prepared, and again before an SGEMM if another context of
 *   this process has handed a different set over for the same device in
 *   between (`applied` remembers, per device, what RetCL handed over last:
 *   a hand-over costs CLBlast about a millisecond on PoCL, too much to
 *   repeat on every call). Hand-over and SGEMM run under one lock, so two
 *   such contexts on one device each run their own set, from any threads.
 * - A context whose record sets none runs what CLBlast holds for the
 *   device: its database, or the set a context of this process handed over
 *   last (CLBlast's C API has no way back to its database values). Every
 *   set RetCL hands over has passed the checks below, so the results are
 *   the same (to fp32 rounding); only the speed differs.
 * - RetCL does not see an application's own CLBlastOverrideParameters
 *   calls: after one for the same device and entry, RetCL would not hand
 *   its set over again. Per device, set CLBlast's parameters one way.
 */
#include "runtime/clblast.h"

#include "runtime/context.h"
#include "runtime/status.h"

#include <clblast_c.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CLB_FIRST RETCL_P_CLBLAST_GEMMK
#define CLB_COUNT (RETCL_PARAM_COUNT - RETCL_P_CLBLAST_GEMMK)

/* CLBlast's name of each clblast.* parameter, from RETCL_P_CLBLAST_GEMMK
 * on, and whether 0 is one of its values (the flags, and the threshold). */
static const struct {
  const char *name;
  int zero_ok;
} clb_params[] = {
    {"GEMMK", 1}, {"KREG", 0},  {"KWG", 0},    {"KWI", 0},    {"MDIMA", 0},
    {"MDIMC", 0}, {"MWG", 0},   {"NDIMB", 0},  {"NDIMC", 0},  {"NWG", 0},
    {"SA", 1},    {"SB", 1},    {"STRM", 1},   {"STRN", 1},   {"VWM", 0},
    {"VWN", 0},   {"KWID", 0},  {"MDIMAD", 0}, {"MDIMCD", 0}, {"NDIMBD", 0},
    {"NDIMCD", 0}, {"PADA", 1}, {"PADB", 1},   {"VWMD", 0},   {"VWND", 0},
    {"WGD", 0},   {"XGEMM_MIN_INDIRECT_SIZE", 1},
};
_Static_assert(sizeof clb_params / sizeof clb_params[0] == CLB_COUNT,
               "one CLBlast name per clblast.* parameter");

/* CLBlast's database entries the family sets: each a run of consecutive
 * ids that CLBlast takes only as a whole. */
typedef struct clb_entry {
  const char *name; /* CLBlast's entry ("kernel") name */
  const char *what;
  retcl_param_id first, last;
} clb_entry;
static const clb_entry entries[] = {
    {"GemmRoutine", "choice between its two GEMMs",
     RETCL_P_CLBLAST_MIN_INDIRECT_SIZE, RETCL_P_CLBLAST_MIN_INDIRECT_SIZE},
    {"Xgemm", "indirect GEMM kernel", RETCL_P_CLBLAST_GEMMK,
     RETCL_P_CLBLAST_VWN},
    {"XgemmDirect", "direct GEMM kernel", RETCL_P_CLBLAST_DIRECT_KWID,
     RETCL_P_CLBLAST_DIRECT_WGD},
};
#define ENTRY_COUNT (sizeof entries / sizeof entries[0])
_Static_assert(RETCL_P_CLBLAST_MIN_INDIRECT_SIZE == RETCL_PARAM_COUNT - 1 &&
                   RETCL_P_CLBLAST_DIRECT_KWID == RETCL_P_CLBLAST_VWN + 1,
               "the entries cover the family's ids in order");

static int entry_set(const retcl_params *p, const clb_entry *e) {
  return p->value[e->first] != RETCL_CLBLAST_DATABASE;
}

static int any_set(const retcl_params *p) {
  for (size_t i = 0; i < ENTRY_COUNT; ++i)
    if (entry_set(p, &entries[i])) return 1;
  return 0;
}

/* "RETCL_PARAMS file.json" when a value of the entry came from the file,
 * else "built-in parameter record" (a levels[] entry). */
static const char *origin(const retcl_params *p, const clb_entry *e,
                          char *buf, size_t cap) {
  for (int id = e->first; id <= (int)e->last; ++id)
    if (p->value[id] != RETCL_CLBLAST_DATABASE &&
        p->source[id] == RETCL_SOURCE_FILE) {
      snprintf(buf, cap, "RETCL_PARAMS %s", p->file);
      return buf;
    }
  return "built-in parameter record";
}

retcl_status retcl__clblast_check_record(retcl_context *ctx,
                                         const retcl_params *p) {
  for (size_t i = 0; i < ENTRY_COUNT; ++i) {
    const clb_entry *e = &entries[i];
    const size_t total = (size_t)(e->last - e->first) + 1;
    size_t set = 0;
    for (int id = e->first; id <= (int)e->last; ++id)
      set += p->value[id] != RETCL_CLBLAST_DATABASE;
    if (!set) continue;
    char where[600];
    if (set < total) {
      char missing[512] = "";
      size_t used = 0;
      for (int id = e->first; id <= (int)e->last; ++id)
        if (p->value[id] == RETCL_CLBLAST_DATABASE && used < sizeof missing) {
          int n = snprintf(missing + used, sizeof missing - used, "%sclblast.%s",
                           used ? ", " : "", retcl__param_key((retcl_param_id)id));
          if (n > 0) used += (size_t)n;
        }
      return retcl__fail(
          ctx, RETCL_ERROR_FORMAT,
          "%s: sets %zu of the %zu parameters of CLBlast's %s (%s); missing "
          "%s. CLBlast takes them only all together: set every one, or none "
          "(-1) for CLBlast's own database",
          origin(p, e, where, sizeof where), set, total, e->name, e->what,
          missing);
    }
    for (int id = e->first; id <= (int)e->last; ++id)
      if (p->value[id] == 0 && !clb_params[id - CLB_FIRST].zero_ok)
        return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                           "%s: clblast.%s = 0: CLBlast's %s is a size, at "
                           "least 1 (or -1 for CLBlast's database)",
                           origin(p, e, where, sizeof where),
                           retcl__param_key((retcl_param_id)id),
                           clb_params[id - CLB_FIRST].name);
  }
  return RETCL_SUCCESS;
}

/* ---- the constraints of CLBlast's kernels --------------------------------
 * CLBlast compiles any values it is given; with tiles that do not divide
 * as its kernels assume it computes wrong results and reports success
 * (seen with CLBlast 1.5.3 on PoCL: MWG 48 with MDIMC 16 and VWM 4 gave
 * CLBlastSuccess, wrong values and part of C unwritten; a VWM of 3 had its
 * compiler errors printed to stdout). The constraints are those CLBlast's own tuners
 * impose on the values they try; the local memory and work-group size are
 * checked against the device's limits as the context sees them
 * (RETCL_MAX_WORK_GROUP_SIZE, RETCL_MAX_LOCAL_MEM_BYTES). */

typedef struct checker {
  retcl_context *ctx;
  const retcl_params *p;
  const clb_entry *entry;
  retcl_status st;
} checker;

enum { NO_PARAM = -1 };

static long val(const checker *c, int id) { return c->p->value[id]; }
static const char *key(int id) { return retcl__param_key((retcl_param_id)id); }

static void fail(checker *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(checker *c, const char *fmt, ...) {
  if (c->st) return;
  char what[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  c->st = retcl__fail(c->ctx, RETCL_ERROR_BUILD_FAILED,
                      "the record's parameters for CLBlast's %s (%s) cannot "
                      "run: %s",
                      c->entry->name, c->entry->what, what);
}

/* x is a multiple of f1 · f2 (f2 optional), or of f1 · f2 / d when d is a
 * parameter (and then d divides f1 · f2). */
static void multiple_of(checker *c, int x, int f1, int f2, int d) {
  char text[160];
  long prod = val(c, f1);
  int n = snprintf(text, sizeof text, "clblast.%s", key(f1));
  if (f2 != NO_PARAM) {
    prod *= val(c, f2);
    n += snprintf(text + n, sizeof text - (size_t)n, " x clblast.%s", key(f2));
  }
  if (d != NO_PARAM) {
    if (prod % val(c, d)) {
      fail(c, "%s = %ld is not a multiple of clblast.%s = %ld", text, prod,
           key(d), val(c, d));
      return;
    }
    prod /= val(c, d);
    snprintf(text + n, sizeof text - (size_t)n, " / clblast.%s", key(d));
  }
  if (val(c, x) % prod)
    fail(c, "clblast.%s = %ld is not a multiple of %s = %ld", key(x),
         val(c, x), text, prod);
}

static void vector_width(checker *c, int id) {
  const long w = val(c, id);
  if (w != 1 && w != 2 && w != 4 && w != 8 && w != 16)
    fail(c, "clblast.%s = %ld is not an OpenCL vector width (1, 2, 4, 8, 16)",
         key(id), w);
}

static void within_device(checker *c, int wx, int wy, size_t local_bytes) {
  const size_t items = (size_t)(val(c, wx) * val(c, wy));
  if (items > c->ctx->limits.max_work_group)
    fail(c, "clblast.%s x clblast.%s = %zu work-items per group, more than "
         "the %zu the device allows",
         key(wx), key(wy), items, c->ctx->limits.max_work_group);
  else if (local_bytes > c->ctx->limits.local_mem_bytes)
    fail(c, "its tiles take %zu bytes of local memory, more than the "
         "device's %zu",
         local_bytes, c->ctx->limits.local_mem_bytes);
}

static void check_xgemm(checker *c) {
  multiple_of(c, RETCL_P_CLBLAST_KWG, RETCL_P_CLBLAST_KWI, NO_PARAM, NO_PARAM);
  vector_width(c, RETCL_P_CLBLAST_VWM);
  vector_width(c, RETCL_P_CLBLAST_VWN);
  multiple_of(c, RETCL_P_CLBLAST_MWG, RETCL_P_CLBLAST_MDIMC,
              RETCL_P_CLBLAST_VWM, NO_PARAM);
  multiple_of(c, RETCL_P_CLBLAST_NWG, RETCL_P_CLBLAST_NDIMC,
              RETCL_P_CLBLAST_VWN, NO_PARAM);
  multiple_of(c, RETCL_P_CLBLAST_MWG, RETCL_P_CLBLAST_MDIMA,
              RETCL_P_CLBLAST_VWM, NO_PARAM);
  multiple_of(c, RETCL_P_CLBLAST_NWG, RETCL_P_CLBLAST_NDIMB,
              RETCL_P_CLBLAST_VWN, NO_PARAM);
  /* GEMMK 1, CLBlast's register kernel, is refused: with CLBlast 1.5.3 on
   * PoCL it computed wrong results with STRM = STRN = 1, failed to build
   * with SA = SB = 1, and crashed the process with the tiles of an entry
   * of CLBlast's own database (KREG 16, 32 x 64 outputs per work-item),
   * where the local-memory kernel (GEMMK 0) was right every time. A record
   * that leaves Xgemm to CLBlast's database still gets GEMMK 1 where the
   * database chooses it. */
  if (val(c, RETCL_P_CLBLAST_GEMMK) != 0)
    fail(c, "clblast.gemmk = %ld is not accepted: RetCL runs only CLBlast's "
         "local-memory kernel (0), the register kernel having computed "
         "wrong results and crashed with some sets (set -1 everywhere to "
         "leave the choice to CLBlast's database)",
         val(c, RETCL_P_CLBLAST_GEMMK));
  /* The group's MDIMC x NDIMC items load A's tile as MDIMA x KDIMA and B's
   * as NDIMB x KDIMB. */
  multiple_of(c, RETCL_P_CLBLAST_KWG, RETCL_P_CLBLAST_MDIMC,
              RETCL_P_CLBLAST_NDIMC, RETCL_P_CLBLAST_MDIMA);
  multiple_of(c, RETCL_P_CLBLAST_KWG, RETCL_P_CLBLAST_MDIMC,
              RETCL_P_CLBLAST_NDIMC, RETCL_P_CLBLAST_NDIMB);
  const size_t local =
      sizeof(float) * (size_t)val(c, RETCL_P_CLBLAST_KWG) *
      (size_t)(val(c, RETCL_P_CLBLAST_SA) * val(c, RETCL_P_CLBLAST_MWG) +
               val(c, RETCL_P_CLBLAST_SB) * val(c, RETCL_P_CLBLAST_NWG));
  within_device(c, RETCL_P_CLBLAST_MDIMC, RETCL_P_CLBLAST_NDIMC, local);
}

static void check_direct(checker *c) {
  const int wgd = RETCL_P_CLBLAST_DIRECT_WGD;
  multiple_of(c, wgd, RETCL_P_CLBLAST_DIRECT_KWID, NO_PARAM, NO_PARAM);
  vector_width(c, RETCL_P_CLBLAST_DIRECT_VWMD);
  vector_width(c, RETCL_P_CLBLAST_DIRECT_VWND);
  multiple_of(c, wgd, RETCL_P_CLBLAST_DIRECT_MDIMCD,
              RETCL_P_CLBLAST_DIRECT_VWMD, NO_PARAM);
  multiple_of(c, wgd, RETCL_P_CLBLAST_DIRECT_NDIMCD,
              RETCL_P_CLBLAST_DIRECT_VWND, NO_PARAM);
  multiple_of(c, wgd, RETCL_P_CLBLAST_DIRECT_MDIMAD,
              RETCL_P_CLBLAST_DIRECT_VWMD, NO_PARAM);
  multiple_of(c, wgd, RETCL_P_CLBLAST_DIRECT_NDIMBD,
              RETCL_P_CLBLAST_DIRECT_VWND, NO_PARAM);
  multiple_of(c, wgd, RETCL_P_CLBLAST_DIRECT_MDIMCD,
              RETCL_P_CLBLAST_DIRECT_NDIMCD, RETCL_P_CLBLAST_DIRECT_MDIMAD);
  multiple_of(c, wgd, RETCL_P_CLBLAST_DIRECT_MDIMCD,
              RETCL_P_CLBLAST_DIRECT_NDIMCD, RETCL_P_CLBLAST_DIRECT_NDIMBD);
  /* Two WGD x WGD tiles in local memory, each row padded by PADA / PADB. */
  const size_t w = (size_t)val(c, wgd);
  const size_t local =
      sizeof(float) * w *
      (2 * w + (size_t)(val(c, RETCL_P_CLBLAST_DIRECT_PADA) +
                        val(c, RETCL_P_CLBLAST_DIRECT_PADB)));
  within_device(c, RETCL_P_CLBLAST_DIRECT_MDIMCD,
                RETCL_P_CLBLAST_DIRECT_NDIMCD, local);
}

/* ---- handing the sets to CLBlast ----------------------------------------- */

/* What RetCL handed to CLBlast last, per device (values of the family,
 * RETCL_CLBLAST_DATABASE for an entry never handed over). Past
 * MAX_DEVICES devices every call hands its sets over again. */
enum { MAX_DEVICES = 16 };
static struct {
  cl_device_id device;
  long value[CLB_COUNT];
} applied[MAX_DEVICES];
static size_t applied_count;
static pthread_mutex_t clblast_lock = PTHREAD_MUTEX_INITIALIZER;

/* The slot of device (a new one if there is room), or NULL. Under the
 * lock. */
static long *applied_slot(cl_device_id device) {
  for (size_t i = 0; i < applied_count; ++i)
    if (applied[i].device == device) return applied[i].value;
  if (applied_count == MAX_DEVICES) return NULL;
  applied[applied_count].device = device;
  for (size_t k = 0; k < CLB_COUNT; ++k)
    applied[applied_count].value[k] = RETCL_CLBLAST_DATABASE;
  return applied[applied_count++].value;
}

/* Hand each entry the record sets to CLBlast unless it holds them already
 * from RetCL. Under the lock; reports nothing (the caller does, after
 * unlocking: a log callback may call RetCL). *failed is the entry CLBlast
 * refused. */
static CLBlastStatusCode apply_locked(const retcl_context *ctx,
                                      const clb_entry **failed) {
  long *slot = applied_slot(ctx->device);
  const retcl_params *p = &ctx->params;
  for (size_t i = 0; i < ENTRY_COUNT; ++i) {
    const clb_entry *e = &entries[i];
    if (!entry_set(p, e)) continue;
    const size_t n = (size_t)(e->last - e->first) + 1;
    if (slot && !memcmp(&slot[e->first - CLB_FIRST], &p->value[e->first],
                        n * sizeof *slot))
      continue;
    const char *names[CLB_COUNT];
    size_t values[CLB_COUNT];
    for (size_t k = 0; k < n; ++k) {
      names[k] = clb_params[e->first - CLB_FIRST + k].name;
      values[k] = (size_t)p->value[e->first + k];
    }
    const CLBlastStatusCode code = CLBlastOverrideParameters(
        ctx->device, e->name, CLBlastPrecisionSingle, n, names, values);
    if (code != CLBlastSuccess) {
      if (slot) slot[e->first - CLB_FIRST] = RETCL_CLBLAST_DATABASE;
      *failed = e;
      return code;
    }
    if (slot)
      memcpy(&slot[e->first - CLB_FIRST], &p->value[e->first],
             n * sizeof *slot);
  }
  return CLBlastSuccess;
}

static const char *clblast_status_name(CLBlastStatusCode code) {
  switch (code) {
    case CLBlastSuccess: return "CLBlastSuccess";
    case CLBlastOpenCLCompilerNotAvailable: return "CLBlastOpenCLCompilerNotAvailable";
    case CLBlastTempBufferAllocFailure: return "CLBlastTempBufferAllocFailure";
    case CLBlastOpenCLOutOfResources: return "CLBlastOpenCLOutOfResources";
    case CLBlastOpenCLOutOfHostMemory: return "CLBlastOpenCLOutOfHostMemory";
    case CLBlastOpenCLBuildProgramFailure: return "CLBlastOpenCLBuildProgramFailure";
    case CLBlastInvalidValue: return "CLBlastInvalidValue";
    case CLBlastInvalidCommandQueue: return "CLBlastInvalidCommandQueue";
    case CLBlastInvalidMemObject: return "CLBlastInvalidMemObject";
    case CLBlastInvalidBinary: return "CLBlastInvalidBinary";
    case CLBlastInvalidBuildOptions: return "CLBlastInvalidBuildOptions";
    case CLBlastInvalidProgram: return "CLBlastInvalidProgram";
    case CLBlastInvalidProgramExecutable: return "CLBlastInvalidProgramExecutable";
    case CLBlastInvalidKernelName: return "CLBlastInvalidKernelName";
    case CLBlastInvalidKernelDefinition: return "CLBlastInvalidKernelDefinition";
    case CLBlastInvalidKernel: return "CLBlastInvalidKernel";
    case CLBlastInvalidArgIndex: return "CLBlastInvalidArgIndex";
    case CLBlastInvalidArgValue: return "CLBlastInvalidArgValue";
    case CLBlastInvalidArgSize: return "CLBlastInvalidArgSize";
    case CLBlastInvalidKernelArgs: return "CLBlastInvalidKernelArgs";
    case CLBlastInvalidLocalNumDimensions: return "CLBlastInvalidLocalNumDimensions";
    case CLBlastInvalidLocalThreadsTotal: return "CLBlastInvalidLocalThreadsTotal";
    case CLBlastInvalidLocalThreadsDim: return "CLBlastInvalidLocalThreadsDim";
    case CLBlastInvalidGlobalOffset: return "CLBlastInvalidGlobalOffset";
    case CLBlastInvalidEventWaitList: return "CLBlastInvalidEventWaitList";
    case CLBlastInvalidEvent: return "CLBlastInvalidEvent";
    case CLBlastInvalidOperation: return "CLBlastInvalidOperation";
    case CLBlastInvalidBufferSize: return "CLBlastInvalidBufferSize";
    case CLBlastInvalidGlobalWorkSize: return "CLBlastInvalidGlobalWorkSize";
    case CLBlastNotImplemented: return "CLBlastNotImplemented";
    case CLBlastInvalidMatrixA: return "CLBlastInvalidMatrixA";
    case CLBlastInvalidMatrixB: return "CLBlastInvalidMatrixB";
    case CLBlastInvalidMatrixC: return "CLBlastInvalidMatrixC";
    case CLBlastInvalidDimension: return "CLBlastInvalidDimension";
    case CLBlastInvalidLeadDimA: return "CLBlastInvalidLeadDimA";
    case CLBlastInvalidLeadDimB: return "CLBlastInvalidLeadDimB";
    case CLBlastInvalidLeadDimC: return "CLBlastInvalidLeadDimC";
    case CLBlastInsufficientMemoryA: return "CLBlastInsufficientMemoryA";
    case CLBlastInsufficientMemoryB: return "CLBlastInsufficientMemoryB";
    case CLBlastInsufficientMemoryC: return "CLBlastInsufficientMemoryC";
    case CLBlastInsufficientMemoryTemp: return "CLBlastInsufficientMemoryTemp";
    case CLBlastInvalidOverrideKernel: return "CLBlastInvalidOverrideKernel";
    case CLBlastMissingOverrideParameter: return "CLBlastMissingOverrideParameter";
    case CLBlastInvalidLocalMemUsage: return "CLBlastInvalidLocalMemUsage";
    case CLBlastDatabaseError: return "CLBlastDatabaseError";
    case CLBlastUnknownError: return "CLBlastUnknownError";
    case CLBlastUnexpectedError: return "CLBlastUnexpectedError";
    default: return "a CLBlast status";
  }
}

static retcl_status status_of(CLBlastStatusCode code) {
  switch (code) {
    case CLBlastTempBufferAllocFailure:
    case CLBlastOpenCLOutOfResources:
    case CLBlastOpenCLOutOfHostMemory:
      return RETCL_ERROR_OUT_OF_MEMORY;
    case CLBlastOpenCLBuildProgramFailure:
      return RETCL_ERROR_BUILD_FAILED;
    default:
      return RETCL_ERROR_OPENCL;
  }
}

static retcl_status fail_override(retcl_context *ctx, const clb_entry *e,
                                  CLBlastStatusCode code) {
  return retcl__fail(
      ctx, status_of(code),
      "CLBlastOverrideParameters(%s) with the record's clblast parameters "
      "failed: %s (%d)%s",
      e->name, clblast_status_name(code), (int)code,
      code == CLBlastMissingOverrideParameter
          ? ": this CLBlast's entry has parameters RetCL does not know (a "
            "CLBlast other than the 1.5 RetCL was written for)"
          : "");
}

retcl_status retcl__clblast_prepare(retcl_context *ctx) {
  if (ctx->clblast_ready) return RETCL_SUCCESS;
  const retcl_params *p = &ctx->params;
  for (size_t i = 0; i < ENTRY_COUNT; ++i) {
    checker c = {ctx, p, &entries[i], RETCL_SUCCESS};
    if (!entry_set(p, &entries[i])) continue;
    if (entries[i].first == RETCL_P_CLBLAST_GEMMK) check_xgemm(&c);
    if (entries[i].first == RETCL_P_CLBLAST_DIRECT_KWID) check_direct(&c);
    if (c.st) return c.st;
  }
  /* Only a context that runs CLBlast's SGEMM changes CLBlast's state. */
  if (any_set(p) &&
      p->value[RETCL_P_GEMM_BACKEND] == RETCL_BACKEND_CLBLAST) {
    const clb_entry *failed = NULL;
    pthread_mutex_lock(&clblast_lock);
    const CLBlastStatusCode code = apply_locked(ctx, &failed);
    pthread_mutex_unlock(&clblast_lock);
    if (code != CLBlastSuccess) return fail_override(ctx, failed, code);
  }
  ctx->clblast_ready = 1;
  return RETCL_SUCCESS;
}

retcl_status retcl__clblast_sgemm_nt(retcl_context *ctx, size_t M, size_t N,
                                     size_t K, float alpha, retcl_buffer X,
                                     retcl_buffer W, float beta,
                                     retcl_buffer Y) {
  retcl_status st = retcl__clblast_prepare(ctx);
  if (st) return st;
  const int sets = any_set(&ctx->params);
  const clb_entry *failed = NULL;
  CLBlastStatusCode code = CLBlastSuccess;
  cl_command_queue queue = ctx->queue;
  if (sets) {
    pthread_mutex_lock(&clblast_lock);
    code = apply_locked(ctx, &failed);
  }
  /* Row-major X[M,K] times W[N,K] transposed: W is a torch Linear weight. */
  if (code == CLBlastSuccess)
    code = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                        CLBlastTransposeYes, M, N, K, alpha, X.mem, X.offset,
                        K, W.mem, W.offset, K, beta, Y.mem, Y.offset, N,
                        &queue, NULL);
  if (sets) pthread_mutex_unlock(&clblast_lock);
  if (failed) return fail_override(ctx, failed, code);
  if (code != CLBlastSuccess)
    return retcl__fail(ctx, status_of(code),
                       "CLBlastSgemm(M=%zu, N=%zu, K=%zu) failed: %s (%d)%s",
                       M, N, K, clblast_status_name(code), (int)code,
                       sets ? ", with the record's clblast parameters"
                            : "");
  return RETCL_SUCCESS;
}
