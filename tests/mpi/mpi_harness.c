/* mpi_harness.c - see mpi_harness.h. */
#include "mpi_harness.h"

#include <mpi.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int mh_rank, mh_size, mh_failures;
retcl_mpi *mh_handle;
retcl_context *mh_ctx;
uint64_t mh_seed;

void failf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "[rank %d/%d] FAIL (seed %llu): ", mh_rank, mh_size,
          (unsigned long long)mh_seed);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  ++mh_failures;
}

/* Written before the alarm is set: the handler may only write(2) it. */
static char alarm_message[128];

static void on_alarm(int sig) {
  (void)sig;
  (void)!write(2, alarm_message, strlen(alarm_message));
  _exit(3);
}

void mpi_test_start(int *argc, char ***argv, const char *name,
                    unsigned alarm_s) {
  MPI_Init(argc, argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &mh_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &mh_size);
  snprintf(alarm_message, sizeof alarm_message, "%s: timed out (a hang?)\n",
           name);
  signal(SIGALRM, on_alarm);
  alarm(alarm_s);
}

int mpi_test_open(void) {
  if (retcl_mpi_create(MPI_COMM_WORLD, NULL, NULL, &mh_handle)) {
    fprintf(stderr, "[rank %d] retcl_mpi_create: %s\n", mh_rank,
            retcl_mpi_last_error(NULL));
    MPI_Finalize();
    return 1;
  }
  mh_ctx = retcl_mpi_context(mh_handle);
  return 0;
}

int mpi_test_close(void) {
  retcl_mpi_destroy(mh_handle);
  int total = 0;
  MPI_Allreduce(&mh_failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  return total;
}
