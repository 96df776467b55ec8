/* clblast.h - what RetCL hands to CLBlast (clblast.c): the clblast family
 * of the parameter record, given to CLBlast with CLBlastOverrideParameters,
 * and the one CLBlast routine RetCL calls, SGEMM (docs/design.md §3).
 *
 * The family has no program of RetCL's. Its entries are CLBlast's kernel
 * parameters for three of CLBlast's database entries: "Xgemm" (the
 * indirect GEMM of large products), "XgemmDirect" (the single-kernel GEMM
 * of small ones) and "GemmRoutine" (XGEMM_MIN_INDIRECT_SIZE, which of the
 * two runs). Each entry is -1 (RETCL_CLBLAST_DATABASE: CLBlast's own
 * database) or a value; CLBlast takes an entry's parameters only all
 * together, so a record sets all of one entry's or none. */
#ifndef RETCL_RUNTIME_CLBLAST_H
#define RETCL_RUNTIME_CLBLAST_H

#include "runtime/params.h"

/* At context creation, on the resolved record: each CLBlast entry is set
 * completely or not at all (RETCL_ERROR_FORMAT naming the missing keys
 * otherwise), and sizes are not 0. */
retcl_status retcl__clblast_check_record(retcl_context *ctx,
                                         const retcl_params *p);

/* The prepare step of the clblast family (retcl__prepare), once per
 * context: the record's sets against the constraints of CLBlast's kernels
 * (CLBlast compiles inconsistent tiles and computes wrong results without
 * an error, so RetCL checks them) and the device's limits, failing with
 * RETCL_ERROR_BUILD_FAILED and a message naming the keys; then, when
 * gemm.backend is clblast, hands the sets to CLBlast. */
retcl_status retcl__clblast_prepare(retcl_context *ctx);

/* Y[M,N] = alpha X[M,K] W[N,K]ᵀ + beta Y, row-major and dense, through
 * CLBlastSgemm on the context's queue, with the context's CLBlast sets in
 * force (clblast.c says how two contexts on one device share them). Call
 * after retcl__prepare of the clblast family. */
retcl_status retcl__clblast_sgemm_nt(retcl_context *ctx, size_t M, size_t N,
                                     size_t K, float alpha, retcl_buffer X,
                                     retcl_buffer W, float beta,
                                     retcl_buffer Y);

#endif
