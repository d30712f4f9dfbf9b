/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * heaplock: the heap lock is fair. A remote dsm_alloc_on gets through while the owner
 * allocates and frees on its own heap in a tight loop (issue 12 item 10: a remote
 * allocation starved there on the MPI path); a waiter that gives up does not wedge the
 * lock for the waiters behind it (needs 3 ranks). tests/test_heaplock_paths.sh runs this suite
 * again on the MPI data path (DSM_DIRECT=0) and, on Open MPI, over TCP (dsmrun --net=tcp).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <stdbool.h>
#include <unistd.h>

#include "harness.h"
#include "heap.h"

static int me, n;

/* Fairness is measured in operations, not time, so a loaded machine changes how long
 * the case takes, not its verdict. The owner allocates and frees on its own heap in a
 * tight loop until every other rank has completed K remote dsm_alloc_on + dsm_free
 * pairs. It counts BYPASSES: its own pairs made while some remote pair was in flight
 * (between a remote rank's announcing it and its completion, read from a counter the
 * remote ranks update with atomics). A fair lock serves a waiting remote ticket after
 * at most one owner operation per waiter ahead of it, plus the owner operations it
 * takes for the remote's announcement and ticket to land (on the MPI path over TCP or
 * UCX they land when the owner's progress engine runs): measured 0.0 to 0.4 per remote
 * pair on both MPIs, 1.4 over UCX. The old compare-and-swap lock, on a machine
 * at load 28: 3200 (direct mode, both MPIs), 95 (Open MPI, DSM_DIRECT=0), 320 (MPICH,
 * DSM_DIRECT=0), 8.4 over TCP (issue 12, unloaded: 450). A remote rank
 * that is descheduled between its pairs does not count against the lock: the owner's
 * pairs are counted only while a remote pair is in flight. Nor does one descheduled
 * inside a pair (4 ranks on 2 cores: after announcing it, before its ticket; one CI run
 * counted 1201 owner pairs in 3 such windows): the verdict is each remote rank's median
 * over its pairs of the owner pairs made during that pair (the owner publishes its
 * count), which a FIFO lock keeps near 1 and the old lock put in the thousands. */
#define K 50          // remote pairs per remote rank
#define MAX_BYPASS 8  // owner pairs allowed per remote pair
#define LIMIT_S 120.0 // safety bound, scaled by TEST_TIMEOUT / 300 (tests/Makefile.mk)
enum { INFLIGHT, DONE, STOP, PAIRS, NWORDS }; // words on the owner's heap

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t limit_ns(void)
{
    const char *to = getenv("TEST_TIMEOUT");
    double scale = to != NULL && atof(to) > 0 ? atof(to) / 300.0 : 1.0;
    return (uint64_t)(LIMIT_S * scale * 1e9);
}

/* The owner's side: alloc + free pairs until the remote ranks are done, or the bypass
 * bound is certainly broken, or the time bound passed (then tell them to stop). The
 * words are read with plain loads of its own memory: no MPI call that might let a
 * remote operation in, which the loop under test must do by itself. */
static void owner_loop(volatile uint64_t *w, long *pairs, long *bypass, int *errors)
{
    const long most = 100L * MAX_BYPASS * K * (n - 1); // certainly broken: stop early
    uint64_t t0 = now_ns(), lim = limit_ns();
    while (__atomic_load_n(&w[DONE], __ATOMIC_ACQUIRE) < (uint64_t)(n - 1)) {
        bool inflight = __atomic_load_n(&w[INFLIGHT], __ATOMIC_ACQUIRE) != 0;
        dsm_gptr_t g;
        int rc = dsm_alloc(512, &g); // above the owner's cache of small blocks: locked
        *errors += rc != DSM_OK;
        *errors += rc == DSM_OK && dsm_free(g) != DSM_OK;
        ++*pairs;
        __atomic_store_n(&w[PAIRS], (uint64_t)*pairs, __ATOMIC_RELEASE);
        *bypass += inflight;
        if (*errors > 0 || *bypass > most || (*pairs % 256 == 0 && now_ns() - t0 > lim)) {
            if (*bypass <= most && *errors == 0) {
                printf("  owner: remote ranks not done after %.0f s\n", (double)lim * 1e-9);
            }
            __atomic_store_n(&w[STOP], 1, __ATOMIC_RELEASE);
            break;
        }
    }
}

/* A remote side: K pairs of dsm_alloc_on(owner) + dsm_free, each announced in the
 * owner's INFLIGHT counter, unless the owner says stop. Returns the pairs done. */
static dsm_gptr_t word(dsm_gptr_t words, int i)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_gptr_add(words, 8 * i, &g));
    return g;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* *median: the median over this rank's pairs of the owner pairs made during each. */
static long remote_loop(dsm_gptr_t words, int owner, uint64_t *median, int *errors)
{
    dsm_gptr_t inflight = word(words, INFLIGHT), stop = word(words, STOP);
    dsm_gptr_t count = word(words, PAIRS);
    uint64_t during[K] = {0};
    long done = 0;
    for (uint64_t halt = 0; done < K && halt == 0 && *errors == 0; done++) {
        dsm_gptr_t g;
        uint64_t before = 0, after = 0;
        *errors += dsm_atomic_load_u64(count, &before) != DSM_OK;
        *errors += dsm_atomic_add_u64(inflight, 1) != DSM_OK;
        int rc = dsm_alloc_on(owner, 64, &g);
        *errors += dsm_atomic_add_u64(inflight, UINT64_MAX) != DSM_OK; // - 1
        *errors += dsm_atomic_load_u64(count, &after) != DSM_OK;
        during[done] = after - before;
        *errors += rc != DSM_OK;
        *errors += rc == DSM_OK && dsm_free(g) != DSM_OK;
        *errors += dsm_atomic_load_u64(stop, &halt) != DSM_OK;
    }
    *errors += dsm_atomic_add_u64(word(words, DONE), 1) != DSM_OK;
    qsort(during, (size_t)done, sizeof *during, cmp_u64);
    *median = done > 0 ? during[done / 2] : 0;
    return done;
}

static void test_heaplock_remote_against_busy_owner(void)
{
    const int owner = 0;
    me = dsm_rank(), n = dsm_nranks();
    dsm_gptr_t words = DSM_GPTR_NULL;
    void *local = NULL;
    int errors = 0;
    if (me == owner) {
        H_OK(dsm_calloc(NWORDS, 8, &words));
        H_OK(dsm_gptr_local(words, &local));
    }
    MPI_Bcast(&words.bits, 1, MPI_UINT64_T, owner, dsm_comm());
    H_OK(dsm_barrier());
    long pairs = 0, bypass = 0, mine = 0;
    uint64_t median = 0;
    uint64_t t0 = now_ns();
    if (me == owner) {
        owner_loop(local, &pairs, &bypass, &errors);
    } else {
        mine = remote_loop(words, owner, &median, &errors);
    }
    H_OK(dsm_barrier());
    long long remote = harness_sum(me == owner ? 0 : mine);
    if (me == owner) {
        printf("  owner: %ld local alloc+free pairs in %.1f s, %ld of them while a remote pair "
               "was in flight; %d other ranks: %lld remote alloc_on+free pairs (%d wanted): "
               "%.1f bypasses per remote pair\n",
               pairs, (double)(now_ns() - t0) * 1e-9, bypass, n - 1, remote, K * (n - 1),
               (double)bypass / (double)(remote > 0 ? remote : 1));
    }
    uint64_t worst = 0; // the largest median over the remote ranks
    MPI_Allreduce(&median, &worst, 1, MPI_UINT64_T, MPI_MAX, dsm_comm());
    if (me == owner) {
        printf("  owner pairs during a remote pair: largest median over the remote ranks %llu "
               "(at most %d allowed)\n",
               (unsigned long long)worst, MAX_BYPASS);
    }
    CU_ASSERT(harness_all(errors == 0));
    CU_ASSERT(remote == (long long)K * (n - 1));
    CU_ASSERT(worst <= MAX_BYPASS);
    H_OK(dsm_barrier());
    if (me == owner) {
        H_OK(dsm_free(words));
    }
    H_OK(dsm_barrier());
}

/* Rank 0 holds its heap lock; rank 1 waits behind it and times out; rank 2 queued
 * behind rank 1 must still get the lock once rank 0 lets go (the abandoned turn is
 * passed on), and so must rank 0's next operation. */
static void test_heaplock_timeout_passes_turn(void)
{
    me = dsm_rank(), n = dsm_nranks();
    if (n < 3) {
        return;
    }
    dsm_gptr_t g = DSM_GPTR_NULL;
    int token = 0;
    H_OK(dsm_barrier());
    if (me == 0) {
        H_OK(dsmi_heap_lock_hold(true));
    }
    H_OK(dsm_barrier());
    if (me == 1) {
        uint64_t saved = dsmi_heap_lock_timeout_ns;
        dsmi_heap_lock_timeout_ns = 500000000u;
        H_EXPECT(dsm_alloc_on(0, 64, &g), DSM_ERR_TIMEOUT);
        dsmi_heap_lock_timeout_ns = saved;
        MPI_Send(&token, 1, MPI_INT, 0, 0, dsm_comm());
    } else if (me == 2) {
        usleep(200000); // queue behind rank 1 (the case passes either way round)
        H_OK(dsm_alloc_on(0, 64, &g));
        H_OK(dsm_free(g));
    } else if (me == 0) {
        MPI_Recv(&token, 1, MPI_INT, 1, 0, dsm_comm(), MPI_STATUS_IGNORE);
        H_OK(dsmi_heap_lock_hold(false));
        H_OK(dsm_alloc(64, &g));
        H_OK(dsm_free(g));
    }
    H_OK(dsm_barrier());
    struct dsmi_heap_report r;
    H_OK(dsmi_heap_check(&r));
    CU_ASSERT_EQUAL(r.blocks, 0);
    H_OK(dsm_barrier());
}

static CU_TestInfo cases[] = {
    {"remote_against_busy_owner", test_heaplock_remote_against_busy_owner},
    {"timeout_passes_turn", test_heaplock_timeout_passes_turn},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_LOG_LEVEL", "none", 0); // the expected errors stay quiet
    struct harness_suite s = {"heaplock", 2, true, cases};
    return harness_main(argc, argv, &s);
}
