/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * thread_cap: an LD_PRELOAD shim (PMPI) that asks MPI for at most
 * MPI_THREAD_SERIALIZED, whatever the program asks for.
 *
 * Open MPI 4.1's osc pt2pt, the one-sided component of the TCP network path, refuses to
 * create windows once MPI_THREAD_MULTIPLE is granted. The test harness asks for
 * MULTIPLE (for the threads cases, which run as no-ops without it), so
 * tests/test_netpath.sh runs the suites with this shim to test the pt2pt path as a
 * program without threads would use it.
 */
#include <mpi.h>

int MPI_Init_thread(int *argc, char ***argv, int required, int *provided)
{
    if (required > MPI_THREAD_SERIALIZED) {
        required = MPI_THREAD_SERIALIZED;
    }
    return PMPI_Init_thread(argc, argv, required, provided);
}
