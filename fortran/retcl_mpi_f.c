/* retcl_mpi_f.c - the C side of the Fortran module retcl_mpi
 * (fortran/retcl_mpi.f90): Fortran hands over its communicator as a
 * Fortran handle (mpi_f08's comm%MPI_VAL, or the mpi module's INTEGER),
 * converted here with MPI_Comm_f2c / MPI_Comm_c2f, since MPI_Comm is not
 * an interoperable C type. */
#include <mpi.h>

#include "retcl_mpi.h"

#if defined(RETCL_STATIC_DEFINE) || defined(_WIN32)
#define RETCL_MPI_F_API
#else
#define RETCL_MPI_F_API __attribute__((visibility("default")))
#endif

RETCL_MPI_F_API retcl_status retcl_mpi_create_f(MPI_Fint comm,
                                                const char *platform,
                                                const char *device,
                                                retcl_mpi **out) {
  return retcl_mpi_create(MPI_Comm_f2c(comm), platform, device, out);
}

RETCL_MPI_F_API retcl_status retcl_mpi_wrap_f(MPI_Fint comm,
                                              retcl_context *ctx,
                                              retcl_mpi **out) {
  return retcl_mpi_wrap(MPI_Comm_f2c(comm), ctx, out);
}

RETCL_MPI_F_API MPI_Fint retcl_mpi_comm_f(const retcl_mpi *h) {
  return MPI_Comm_c2f(retcl_mpi_comm(h));
}
