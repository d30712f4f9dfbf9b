/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Passive progress (design decisions 4 and 7): operations on a rank's memory complete
 * while that rank computes without calling MPI or mpidsm.
 *
 * Rank 0 (the target) spins on a word of its own segment with plain loads, making no
 * MPI or mpidsm call, until every other rank has done ROUNDS remote fetch-adds on a
 * counter in rank 0's memory, ALLOCS allocations and frees on rank 0's heap, and then
 * added 1 to that word. Nothing is timed: without passive progress the others' first
 * fetch-add waits for rank 0, rank 0 waits for them, and the launcher's timeout ends the
 * job (rank 0 also gives up after half of TEST_TIMEOUT, saying how far they got). Then
 * every count is checked exactly.
 * Needs 2 ranks or more (skips with 77 otherwise).
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mpidsm.h"

enum { ROUNDS = 500, ALLOCS = 20 };

static int check(int rc, const char *what)
{
    if (rc != DSM_OK) {
        fprintf(stderr, "rank %d: FAIL %s: %s (%s)\n", dsm_rank(), what, dsm_strerror(rc),
                dsm_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return rc;
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The target: plain loads of its own memory only, until the others are done. */
static void target(volatile uint64_t *word, const volatile uint64_t *counter, int others)
{
    const char *t = getenv("TEST_TIMEOUT");
    double give_up = (t ? atof(t) : 300) / 2, start = seconds();
    uint64_t spins = 0;
    while (__atomic_load_n(word, __ATOMIC_ACQUIRE) < (uint64_t)others) {
        // only a hang detector: the clock is read once per 2^20 spins
        if ((++spins & 0xfffff) == 0 && seconds() - start > give_up) {
            fprintf(stderr,
                    "FAIL: rank 0 computed %.0f s while the others did %llu of %d fetch-adds "
                    "on its memory: no passive progress\n",
                    give_up, (unsigned long long)*counter, ROUNDS * others);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
}

/* Every other rank: fetch-adds, then allocations on rank 0, then the done mark. */
static void origin(dsm_gptr_t counter, dsm_gptr_t done)
{
    uint64_t old = 0, last = 0;
    for (int i = 0; i < ROUNDS; i++) {
        check(dsm_atomic_fetch_add_u64(counter, 1, &old), "dsm_atomic_fetch_add_u64");
        if (i > 0 && old <= last) { // the counter only grows
            fprintf(stderr, "rank %d: FAIL fetch-add returned %llu after %llu\n", dsm_rank(),
                    (unsigned long long)old, (unsigned long long)last);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        last = old;
    }
    for (int i = 0; i < ALLOCS; i++) {
        dsm_gptr_t g;
        check(dsm_alloc_on(0, 64, &g), "dsm_alloc_on(0)");
        check(dsm_free(g), "dsm_free");
    }
    check(dsm_atomic_add_u64(done, 1), "dsm_atomic_add_u64(done)");
}

int main(int argc, char **argv)
{
    check(dsm_init(&argc, &argv), "dsm_init");
    int rank = dsm_rank(), n = dsm_nranks();
    if (n < 2) {
        printf("SKIP: needs 2 ranks or more\n");
        dsm_finalize();
        return 77;
    }
    dsm_gptr_t words = DSM_GPTR_NULL; // [0] counter, [1] done
    if (rank == 0) {
        check(dsm_calloc(2, sizeof(uint64_t), &words), "dsm_calloc");
    }
    MPI_Bcast(&words, sizeof words, MPI_BYTE, 0, dsm_comm());
    dsm_gptr_t counter = words, done = DSM_GPTR_NULL;
    check(dsm_gptr_add(words, 8, &done), "dsm_gptr_add");
    check(dsm_barrier(), "dsm_barrier");
    if (rank == 0) {
        uint64_t *w = NULL;
        check(dsm_gptr_local(words, (void **)&w), "dsm_gptr_local");
        target(&w[1], &w[0], n - 1);
    } else {
        origin(counter, done);
    }
    check(dsm_barrier(), "dsm_barrier");
    uint64_t total = 0;
    check(dsm_atomic_load_u64(counter, &total), "dsm_atomic_load_u64");
    if (total != (uint64_t)ROUNDS * (uint64_t)(n - 1)) {
        fprintf(stderr, "rank %d: FAIL counter %llu, want %llu\n", rank, (unsigned long long)total,
                (unsigned long long)ROUNDS * (unsigned long long)(n - 1));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    check(dsm_barrier(), "dsm_barrier");
    if (rank == 0) {
        check(dsm_free(words), "dsm_free");
        printf("ok: %d ranks did %d fetch-adds and %d allocations each on a computing rank 0\n",
               n - 1, ROUNDS, ALLOCS);
    }
    check(dsm_finalize(), "dsm_finalize");
    return 0;
}
