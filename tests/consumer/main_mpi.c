/* main_mpi.c - a downstream MPI program built against an installed RetCL's
 * MPI component (find_package(RetCL COMPONENTS MPI) and pkg-config
 * retcl-mpi): every rank makes its handle, and the ranks agree on the
 * communicator's size. */
#include <stdio.h>

#include <retcl_mpi.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  retcl_mpi *h = NULL;
  int rc = 0;
  if (retcl_mpi_create(MPI_COMM_WORLD, NULL, NULL, &h) != RETCL_SUCCESS) {
    fprintf(stderr, "consumer: retcl_mpi_create: %s\n", retcl_mpi_last_error(NULL));
    rc = 1;
  } else {
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (retcl_mpi_size(h) != size || retcl_mpi_context(h) == NULL) rc = 1;
    printf("rank %d of %d: RetCL %s\n", retcl_mpi_rank(h), retcl_mpi_size(h),
           retcl_version_string());
    retcl_mpi_destroy(h);
  }
  MPI_Finalize();
  return rc;
}
