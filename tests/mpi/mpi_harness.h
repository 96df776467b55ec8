/* mpi_harness.h - what the MPI tests (test_mpi_retention.c,
 * test_mpi_model.c) share. They are plain C with their own checks (Check
 * forks, which does not mix with MPI): every rank counts its failures,
 * the counts are summed over the ranks at the end, and an alarm ends a
 * hung run. */
#ifndef RETCL_TEST_MPI_HARNESS_H
#define RETCL_TEST_MPI_HARNESS_H

#include <stdint.h>

#include "retcl_mpi.h"

/* The globals carry an mh_ prefix, so that no test's local shadows them.
 * This process's rank, the number of ranks, its failures so far. */
extern int mh_rank, mh_size, mh_failures;
/* The handle on MPI_COMM_WORLD and its context (mpi_test_open). */
extern retcl_mpi *mh_handle;
extern retcl_context *mh_ctx;
/* The run's seed, printed with every failure. */
extern uint64_t mh_seed;

/* One failure of this rank, printed with the rank and the seed. */
#if defined(__GNUC__)
void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#else
void failf(const char *fmt, ...);
#endif

/* MPI_Init, mh_rank and mh_size, and an alarm after alarm_s seconds that
 * ends the run with "<name>: timed out (a hang?)" and exit status 3. */
void mpi_test_start(int *argc, char ***argv, const char *name,
                    unsigned alarm_s);

/* mh_handle on MPI_COMM_WORLD, and mh_ctx. 0, or 1 after printing why
 * and MPI_Finalize (the test then returns 1). */
int mpi_test_open(void);

/* Destroys the handle; the failures of every rank, summed (collective). */
int mpi_test_close(void);

#endif /* RETCL_TEST_MPI_HARNESS_H */
