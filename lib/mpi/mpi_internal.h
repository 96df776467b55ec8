/* mpi_internal.h - what the files of libretcl_mpi share: the handle and
 * the error agreement (retcl_mpi.c), used by the split models
 * (mpi_model.c). Internal. */
#ifndef RETCL_MPI_INTERNAL_H
#define RETCL_MPI_INTERNAL_H

#include "retcl_mpi.h"

#include <stdint.h>

#define MSG_LEN 1024

struct retcl_mpi {
  MPI_Comm comm;
  int rank, size;
  retcl_context *ctx;
  int owns_ctx;
  cl_mem tmp_state; /* the slice's local state, then the incoming one */
  size_t tmp_state_n;
  float *stage;     /* host staging of the split models' exchanges */
  size_t stage_n;
  retcl_mpi_model_stats model_stats;
  int sum_parity;   /* a heads-split layer sums twice */
  char msg[MSG_LEN];
};

/* Every rank's status (the first word of each rank's nrec-word record rec,
 * gathered into all[size * nrec]): the first failing rank's status on
 * every rank, its message in msg there and "rank N failed (...): ..."
 * elsewhere. *ctl (may be NULL) counts the bytes. Collective. */
retcl_status retcl_mpi__agree_records(MPI_Comm comm, int rank, int size,
                                      char *msg, const uint64_t *rec,
                                      int nrec, uint64_t *all, size_t *ctl);

#endif
