/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * sync: mutexes (MCS), reader-writer locks, semaphores and whole-rank locks: mutual
 * exclusion with non-atomic read-modify-write under the lock (ranks and threads),
 * fairness, trylock, the ordering promise, every misuse error and timeouts.
 * Lock objects sit in one symmetric heap block (one slice per case), as a program would
 * place them inside its own data. Every wait loop in here is bounded.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "sync.h"

#define SLICE (1u << 16)
#define SLICES 17
#define SPIN_LIMIT 20000000L // bound on every poll loop of a test

static int me, n;
static uint64_t base; // offset of the suite's symmetric block (dsm_alloc_all)
static bool mt;       // MPI_THREAD_MULTIPLE: the thread cases run

static dsm_gptr_t at(int r, unsigned s, uint64_t off)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_gptr_make(r, base + (uint64_t)s * SLICE + off, &g));
    return g;
}

/* Increment the 64-bit counter at c with a get, an add and a put: not atomic, so only
 * mutual exclusion keeps the count exact. */
static int bump(dsm_gptr_t c)
{
    int64_t v = 0;
    int rc = dsm_get(&v, c, sizeof v);
    if (rc == DSM_OK) {
        v++;
        rc = dsm_put(c, &v, sizeof v);
    }
    return rc;
}

static int64_t load(dsm_gptr_t c)
{
    int64_t v = -1;
    H_OK(dsm_atomic_load_i64(c, &v));
    return v;
}

/* The timeout cases' start: rank 0 initialises mutex m and a clear flag, takes m, and
 * every rank meets it there. */
static void hold_on_rank0(dsm_gptr_t m, dsm_gptr_t flag)
{
    if (me == 0) {
        H_OK(dsm_mutex_init(m));
        H_OK(dsm_atomic_store_i64(flag, 0));
        H_OK(dsm_mutex_lock(m));
    }
    H_OK(dsm_barrier());
}

/* Poll flag (bounded by SPIN_LIMIT) until another rank sets it. */
static void await_flag(dsm_gptr_t flag)
{
    for (long s = 0; s < SPIN_LIMIT && load(flag) == 0; s++) {
        sched_yield();
    }
}

static void test_sync_mutex_basic(void)
{
    me = dsm_rank();
    n = dsm_nranks();
    int provided = 0;
    MPI_Query_thread(&provided);
    mt = provided == MPI_THREAD_MULTIPLE;
    dsm_gptr_t m = at(n - 1, 0, 0);
    if (me == 0) {
        H_OK(dsm_mutex_init(m));
    }
    H_OK(dsm_barrier());
    for (int turn = 0; turn < n; turn++) { // one rank at a time: every call must succeed
        if (turn == me) {
            H_OK(dsm_mutex_lock(m));
            H_OK(dsm_mutex_unlock(m));
            H_OK(dsm_mutex_trylock(m));
            H_OK(dsm_mutex_unlock(m));
        }
        H_OK(dsm_barrier());
    }
    if (me == 0) {
        H_OK(dsm_mutex_destroy(m));
    }
    H_OK(dsm_barrier());
}

/* Counter on rank 0, mutex on the last rank. Rank 0 touches the counter through its
 * local pointer, the others with get/put: the lock's fences order both. */
static void test_sync_mutex_exclusion(void)
{
    enum { ITERS = 60 };
    dsm_gptr_t m = at(n - 1, 1, 0), c = at(0, 1, 64);
    if (me == 0) {
        H_OK(dsm_mutex_init(m));
        H_OK(dsm_atomic_store_i64(c, 0));
    }
    H_OK(dsm_barrier());
    volatile int64_t *local = NULL;
    if (me == 0) {
        H_OK(dsm_gptr_local(c, (void **)&local));
    }
    for (int i = 0; i < ITERS; i++) {
        H_OK(dsm_mutex_lock(m));
        if (local) {
            *local = *local + 1;
        } else {
            H_OK(bump(c));
        }
        H_OK(dsm_mutex_unlock(m));
    }
    H_OK(dsm_barrier());
    CU_ASSERT_EQUAL(load(c), (int64_t)ITERS * n);
    H_OK(dsm_barrier());
}

struct thr {
    dsm_gptr_t m, c;
    int iters, errors;
};

static void *thread_body(void *arg)
{
    struct thr *t = arg;
    for (int i = 0; i < t->iters; i++) {
        t->errors += dsm_mutex_lock(t->m) != DSM_OK;
        t->errors += bump(t->c) != DSM_OK;
        t->errors += dsm_mutex_unlock(t->m) != DSM_OK;
    }
    return NULL;
}

/* Threads of every rank queue on one mutex (several nodes of one rank in one queue). */
static void test_sync_mutex_threads(void)
{
    enum { T = 2, ITERS = 12 };
    if (!mt) {
        return;
    }
    dsm_gptr_t m = at(0, 2, 0), c = at(n - 1, 2, 64);
    if (me == 0) {
        H_OK(dsm_mutex_init(m));
        H_OK(dsm_atomic_store_i64(c, 0));
    }
    H_OK(dsm_barrier());
    struct thr ts[T];
    for (int i = 0; i < T; i++) {
        ts[i] = (struct thr){m, c, ITERS, 0};
    }
    harness_threads(T, thread_body, ts, sizeof ts[0]);
    int errors = 0;
    for (int i = 0; i < T; i++) {
        errors += ts[i].errors;
    }
    CU_ASSERT_EQUAL(errors, 0);
    H_OK(dsm_barrier());
    CU_ASSERT_EQUAL(load(c), (int64_t)T * ITERS * n);
    H_OK(dsm_barrier());
}

/* All ranks contend for a fixed number of counted acquisitions; print max/min per
 * rank. Counting starts once every rank has held the lock once, so a rank that the OS
 * schedules late does not miss the contest; from then on FIFO hand-over means nobody
 * starves. The exact spread depends on scheduling, so only "nobody got none" is checked. */
static void test_sync_mutex_fairness(void)
{
    const int64_t total = 30 * n;
    dsm_gptr_t m = at(0, 3, 0), st = at(0, 3, 64); // st: {ranks joined, acquisitions}
    if (me == 0) {
        int64_t zero[2] = {0, 0};
        H_OK(dsm_mutex_init(m));
        H_OK(dsm_put(st, zero, sizeof zero));
    }
    H_OK(dsm_barrier());
    long long mine = 0;
    bool joined = false, more = true;
    for (long it = 0; more && it < 100000; it++) {
        int64_t v[2] = {0, 0};
        H_OK(dsm_mutex_lock(m));
        H_OK(dsm_get(v, st, sizeof v));
        v[0] += !joined;
        joined = true;
        if (v[0] == n && (more = v[1] < total)) {
            v[1]++;
            mine++;
        }
        H_OK(dsm_put(st, v, sizeof v));
        sched_yield(); // some work: lets descheduled ranks run and join the queue
        H_OK(dsm_mutex_unlock(m));
    }
    long long mx = 0, mn = 0;
    MPI_Allreduce(&mine, &mx, 1, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&mine, &mn, 1, MPI_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    if (me == 0) {
        printf("\n    fairness: %lld acquisitions, per rank max %lld min %lld (max/min %.2f) ",
               (long long)total, mx, mn, mn ? (double)mx / (double)mn : 0.0);
    }
    CU_ASSERT_EQUAL(harness_sum(mine), total);
#ifndef MPICH_VERSION
    CU_ASSERT(mn > 0);
#else
    /* MPICH 4.0 (ch4:ucx) completes another rank's atomics on a target only when that
     * target polls MPI; with 4 ranks on 2 cores a descheduled rank may not even enqueue
     * before the others finish, whatever the lock's FIFO order. Reported, not asserted. */
    if (mn == 0 && me == 0) {
        printf("(a rank got no turn: MPICH target progress) ");
    }
#endif
    H_OK(dsm_barrier());
}

/* trylock: BUSY while anyone holds it (never waits), then exactly one of the ranks that
 * try at once gets it. */
static void test_sync_mutex_trylock(void)
{
    dsm_gptr_t m = at(n - 1, 4, 0);
    if (me == 0) {
        H_OK(dsm_mutex_init(m));
        H_OK(dsm_mutex_lock(m));
    }
    H_OK(dsm_barrier());
    if (me != 0) {
        for (int i = 0; i < 100; i++) {
            H_EXPECT(dsm_mutex_trylock(m), DSM_ERR_BUSY);
        }
    } else {
        H_EXPECT(dsm_mutex_trylock(m), DSM_ERR_STATE); // this thread holds it
    }
    H_OK(dsm_barrier());
    if (me == 0) {
        H_OK(dsm_mutex_unlock(m));
    }
    H_OK(dsm_barrier());
    int rc = dsm_mutex_trylock(m);
    CU_ASSERT(rc == DSM_OK || rc == DSM_ERR_BUSY);
    CU_ASSERT_EQUAL(harness_sum(rc == DSM_OK), 1);
    if (rc == DSM_OK) {
        H_OK(dsm_mutex_unlock(m));
    }
    H_OK(dsm_barrier());
}

/* One thread holds many mutexes on every rank at once and releases them out of order. */
static void test_sync_mutex_many_held(void)
{
    enum { K = 12 };
    dsm_gptr_t m[K];
    for (int k = 0; k < K; k++) {
        m[k] = at(k % n, 5, (uint64_t)(me * K + k) * DSM_MUTEX_SIZE);
        H_OK(dsm_mutex_init(m[k]));
    }
    for (int k = 0; k < K; k++) {
        H_OK(dsm_mutex_lock(m[k]));
    }
    for (int k = 0; k < K; k += 2) {
        H_OK(dsm_mutex_unlock(m[k]));
    }
    for (int k = K - 1; k > 0; k -= 2) {
        H_OK(dsm_mutex_unlock(m[k]));
    }
    for (int k = 0; k < K; k++) {
        H_OK(dsm_mutex_destroy(m[k]));
    }
    H_OK(dsm_barrier());
}

/* A critical section's non-blocking puts (waited for locally only) are complete at the
 * target before the next holder gets the lock: it sees every byte. */
static void test_sync_mutex_ordering(void)
{
    enum { ROUNDS = 15, WORDS = 512 };
    dsm_gptr_t m = at(0, 6, 0), seq = at(n - 1, 6, 64), data = at(n > 1 ? 1 : 0, 6, 4096);
    if (me == 0) {
        H_OK(dsm_mutex_init(m));
        H_OK(dsm_atomic_store_i64(seq, 0));
        uint64_t zero[WORDS] = {0};
        H_OK(dsm_put(data, zero, sizeof zero));
    }
    H_OK(dsm_barrier());
    uint64_t buf[WORDS];
    int bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        H_OK(dsm_mutex_lock(m));
        int64_t s = 0;
        H_OK(dsm_get(&s, seq, sizeof s));
        H_OK(dsm_get(buf, data, sizeof buf));
        for (int i = 0; i < WORDS; i++) {
            bad += buf[i] != (uint64_t)s;
        }
        s++;
        for (int i = 0; i < WORDS; i++) {
            buf[i] = (uint64_t)s;
        }
        dsm_request_t q1, q2;
        H_OK(dsm_put_nb(data, buf, sizeof buf, &q1));
        H_OK(dsm_put_nb(seq, &s, sizeof s, &q2));
        H_OK(dsm_wait(&q1)); // local completion only: the unlock must do the rest
        H_OK(dsm_wait(&q2));
        H_OK(dsm_mutex_unlock(m));
    }
    CU_ASSERT_EQUAL(bad, 0);
    H_OK(dsm_barrier());
    CU_ASSERT_EQUAL(load(seq), (int64_t)ROUNDS * n);
    H_OK(dsm_barrier());
}

/* Each misuse is DSM_ERR_STATE (or ARG/RANGE for bad pointers) with a useful message. */
static void test_sync_mutex_errors(void)
{
    dsm_gptr_t m = at(0, 7, 0), raw = at(me, 7, 64), odd;
    char name[48];
    uint64_t zero = 0;
    H_OK(dsm_put(raw, &zero, sizeof zero)); // plain memory, not a mutex
    if (me == 0) {
        H_OK(dsm_mutex_init(m));
        H_OK(dsm_mutex_lock(m));
        H_EXPECT(dsm_mutex_lock(m), DSM_ERR_STATE); // relock by the same thread
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "already held by this thread"));
        H_EXPECT(dsm_mutex_destroy(m), DSM_ERR_STATE); // destroy while held (by me)
        H_EXPECT(dsm_mutex_init(m), DSM_ERR_STATE);    // re-init while held
    }
    H_OK(dsm_barrier());
    if (me != 0) { // unlocking someone else's, destroying a held one: name the holder
        H_EXPECT(dsm_mutex_unlock(m), DSM_ERR_STATE);
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), dsm_gptr_str(m, name, sizeof name)));
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "held by rank 0"));
        H_EXPECT(dsm_mutex_destroy(m), DSM_ERR_STATE);
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "held by rank 0"));
    }
    H_OK(dsm_barrier());
    if (me == 0) {
        H_OK(dsm_mutex_unlock(m));
        H_EXPECT(dsm_mutex_unlock(m), DSM_ERR_STATE); // twice
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "it is free"));
        H_OK(dsm_mutex_destroy(m));
    }
    H_OK(dsm_barrier());
    // uninitialised and destroyed mutexes are refused without being changed
    H_EXPECT(dsm_mutex_lock(raw), DSM_ERR_STATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "not initialised"));
    H_EXPECT(dsm_mutex_trylock(raw), DSM_ERR_STATE);
    H_EXPECT(dsm_mutex_unlock(raw), DSM_ERR_STATE);
    H_EXPECT(dsm_mutex_destroy(raw), DSM_ERR_STATE);
    H_EXPECT(dsm_mutex_lock(m), DSM_ERR_STATE);
    uint64_t after = 1;
    H_OK(dsm_get(&after, raw, sizeof after));
    CU_ASSERT_EQUAL(after, 0);
    // bad pointers
    H_EXPECT(dsm_mutex_lock(DSM_GPTR_NULL), DSM_ERR_ARG);
    H_OK(dsm_gptr_add(raw, 4, &odd));
    H_EXPECT(dsm_mutex_init(odd), DSM_ERR_ARG);
    dsm_gptr_t hdr = {(uint64_t)me << DSM_GPTR_OFFSET_BITS | 8};
    H_EXPECT(dsm_mutex_lock(hdr), DSM_ERR_RANGE);
    H_EXPECT(dsm_rank_lock(n), DSM_ERR_RANGE);
    H_OK(dsm_barrier());
}

/* Readers share, writers are alone: every holder checks the others' counts. */
static void test_sync_rwlock_exclusion(void)
{
    enum { ITERS = 32 };
    dsm_gptr_t l = at(0, 8, 0), readers = at(n - 1, 8, 64), writers = at(n - 1, 8, 128);
    dsm_gptr_t c = at(n - 1, 8, 192);
    if (me == 0) {
        H_OK(dsm_rwlock_init(l));
        H_OK(dsm_atomic_store_i64(readers, 0));
        H_OK(dsm_atomic_store_i64(writers, 0));
        H_OK(dsm_atomic_store_i64(c, 0));
    }
    H_OK(dsm_barrier());
    int violations = 0, nwrites = 0;
    for (int i = 0; i < ITERS; i++) {
        bool write = (i + me) % 4 == 0;
        int64_t r = 0, w = 0;
        H_OK(write ? dsm_rwlock_wrlock(l) : dsm_rwlock_rdlock(l));
        H_OK(dsm_atomic_fetch_add_i64(write ? writers : readers, 1, write ? &w : &r));
        violations += write ? (w != 0 || load(readers) != 0) : load(writers) != 0;
        if (write) {
            H_OK(bump(c));
            nwrites++;
        }
        H_OK(dsm_atomic_add_i64(write ? writers : readers, -1));
        H_OK(dsm_rwlock_unlock(l));
    }
    CU_ASSERT_EQUAL(violations, 0);
    H_OK(dsm_barrier());
    CU_ASSERT_EQUAL(load(c), harness_sum(nwrites));
    H_OK(dsm_barrier());
}

/* All ranks read-lock at once; inside, each waits (bounded) to see another reader. */
static void test_sync_rwlock_readers_together(void)
{
    dsm_gptr_t l = at(n - 1, 9, 0), inside = at(0, 9, 64);
    if (me == 0) {
        H_OK(dsm_rwlock_init(l));
        H_OK(dsm_atomic_store_i64(inside, 0));
    }
    H_OK(dsm_barrier());
    H_OK(dsm_rwlock_rdlock(l));
    H_OK(dsm_atomic_add_i64(inside, 1));
    int64_t seen = 0;
    for (long s = 0; s < 20000 && (seen = load(inside)) < n; s++) {
        sched_yield();
    }
    long long most = 0, mine = seen;
    MPI_Allreduce(&mine, &most, 1, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    H_OK(dsm_rwlock_unlock(l));
    if (n > 1) {
        CU_ASSERT(most > 1);
    }
    if (me == 0) {
        printf("\n    concurrent readers observed: %lld of %d ", most, n);
    }
    H_OK(dsm_barrier());
}

static void test_sync_rwlock_errors(void)
{
    dsm_gptr_t l = at(0, 10, 0), raw = at(me, 10, 64);
    uint64_t zero[4] = {0};
    H_OK(dsm_put(raw, zero, sizeof zero));
    if (me == 0) {
        H_OK(dsm_rwlock_init(l));
        H_OK(dsm_rwlock_rdlock(l));
        H_EXPECT(dsm_rwlock_rdlock(l), DSM_ERR_STATE);
        H_EXPECT(dsm_rwlock_wrlock(l), DSM_ERR_STATE);
        H_EXPECT(dsm_mutex_unlock(l), DSM_ERR_STATE); // a rwlock is not a mutex
    }
    H_OK(dsm_barrier());
    if (me != 0) {
        H_EXPECT(dsm_rwlock_trywrlock(l), DSM_ERR_BUSY);
        H_OK(dsm_rwlock_tryrdlock(l)); // readers share
        H_OK(dsm_rwlock_unlock(l));
        H_EXPECT(dsm_rwlock_unlock(l), DSM_ERR_STATE);
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "read-locked by"));
        H_EXPECT(dsm_rwlock_destroy(l), DSM_ERR_STATE);
    }
    H_OK(dsm_barrier());
    if (me == 0) {
        H_OK(dsm_rwlock_unlock(l));
        H_OK(dsm_rwlock_wrlock(l));
    }
    H_OK(dsm_barrier());
    if (me != 0) {
        H_EXPECT(dsm_rwlock_tryrdlock(l), DSM_ERR_BUSY);
        H_EXPECT(dsm_rwlock_trywrlock(l), DSM_ERR_BUSY);
        H_EXPECT(dsm_rwlock_unlock(l), DSM_ERR_STATE);
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "write-locked"));
    }
    H_OK(dsm_barrier());
    if (me == 0) {
        H_OK(dsm_rwlock_unlock(l));
        H_OK(dsm_rwlock_destroy(l));
    }
    H_OK(dsm_barrier());
    H_EXPECT(dsm_rwlock_rdlock(raw), DSM_ERR_STATE);
    H_EXPECT(dsm_rwlock_wrlock(raw), DSM_ERR_STATE);
    H_EXPECT(dsm_rwlock_rdlock(l), DSM_ERR_STATE); // destroyed
    uint64_t after[4] = {1, 1, 1, 1};
    H_OK(dsm_get(after, raw, sizeof after));
    CU_ASSERT_EQUAL(after[0] | after[1] | after[2] | after[3], 0);
    H_OK(dsm_barrier());
}

/* A semaphore of K units lets at most K ranks in at once; posts and waits balance. */
static void test_sync_sem_counts(void)
{
    enum { K = 2, ITERS = 15 };
    dsm_gptr_t s = at(0, 11, 0), inside = at(n - 1, 11, 64), z = at(n - 1, 11, 128);
    if (me == 0) {
        H_OK(dsm_sem_init(s, K));
        H_OK(dsm_sem_init(z, 0));
        H_OK(dsm_atomic_store_i64(inside, 0));
    }
    H_OK(dsm_barrier());
    int over = 0;
    for (int i = 0; i < ITERS; i++) {
        int64_t before = 0;
        H_OK(dsm_sem_wait(s));
        H_OK(dsm_atomic_fetch_add_i64(inside, 1, &before));
        over += before >= K;
        H_OK(dsm_atomic_add_i64(inside, -1));
        H_OK(dsm_sem_post(s));
    }
    CU_ASSERT_EQUAL(over, 0);
    for (int i = 0; i < 3; i++) {
        H_OK(dsm_sem_post(z));
    }
    H_OK(dsm_barrier());
    uint64_t v = 0;
    H_OK(dsm_sem_getvalue(s, &v));
    CU_ASSERT_EQUAL(v, K);
    H_OK(dsm_sem_getvalue(z, &v));
    CU_ASSERT_EQUAL(v, (uint64_t)3 * n);
    H_OK(dsm_barrier());
    for (int i = 0; i < 3; i++) {
        H_OK(dsm_sem_trywait(z));
    }
    H_OK(dsm_barrier());
    H_EXPECT(dsm_sem_trywait(z), DSM_ERR_BUSY);
    H_OK(dsm_sem_getvalue(z, &v));
    CU_ASSERT_EQUAL(v, 0);
    H_OK(dsm_barrier());
    // a wait on 0 returns once another rank posts
    if (me == 0) {
        for (int i = 1; i < n; i++) {
            H_OK(dsm_sem_wait(z));
        }
    } else {
        H_OK(dsm_sem_post(z));
    }
    H_OK(dsm_barrier());
    H_OK(dsm_sem_getvalue(z, &v));
    CU_ASSERT_EQUAL(v, 0);
    H_OK(dsm_barrier());
}

static void test_sync_sem_errors(void)
{
    dsm_gptr_t s = at(me, 12, 0), raw = at(me, 12, 64);
    uint64_t zero = 0, v = 0;
    H_OK(dsm_put(raw, &zero, sizeof zero));
    H_EXPECT(dsm_sem_wait(raw), DSM_ERR_STATE);
    H_EXPECT(dsm_sem_trywait(raw), DSM_ERR_STATE);
    H_EXPECT(dsm_sem_post(raw), DSM_ERR_STATE);
    H_OK(dsm_get(&v, raw, sizeof v));
    CU_ASSERT_EQUAL(v, 0); // the failed post was undone
    H_EXPECT(dsm_sem_getvalue(s, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_sem_init(s, DSM_SEM_VALUE_MAX + 1), DSM_ERR_ARG);
    H_OK(dsm_sem_init(s, DSM_SEM_VALUE_MAX));
    H_EXPECT(dsm_sem_post(s), DSM_ERR_RANGE);
    H_OK(dsm_sem_getvalue(s, &v));
    CU_ASSERT_EQUAL(v, DSM_SEM_VALUE_MAX);
    H_OK(dsm_sem_destroy(s));
    H_EXPECT(dsm_sem_wait(s), DSM_ERR_STATE);
    H_EXPECT(dsm_sem_destroy(s), DSM_ERR_STATE);
    H_OK(dsm_barrier());
}

/* Whole-rank lock: exact counter on rank 0 under dsm_rank_lock, plus its errors. */
static void test_sync_rank_lock(void)
{
    enum { ITERS = 20 };
    dsm_gptr_t c = at(0, 13, 0);
    if (me == 0) {
        H_OK(dsm_atomic_store_i64(c, 0));
    }
    H_OK(dsm_barrier());
    H_EXPECT(dsm_rank_unlock(0), DSM_ERR_STATE);
    for (int i = 0; i < ITERS; i++) {
        H_OK(dsm_rank_lock(0));
        H_OK(bump(c));
        H_OK(dsm_rank_unlock(0));
    }
    H_OK(dsm_rank_lock(me));
    H_EXPECT(dsm_rank_lock(me), DSM_ERR_STATE);
    H_OK(dsm_rank_unlock(me));
    H_EXPECT(dsm_rank_lock(-1), DSM_ERR_RANGE);
    H_OK(dsm_barrier());
    CU_ASSERT_EQUAL(load(c), (int64_t)ITERS * n);
    H_OK(dsm_barrier());
}

static void test_sync_setup(void);

/* Restart mpidsm with DSM_LOCK_TIMEOUT set (or unset); the new heaps get the suite's
 * block again. */
static void restart(const char *timeout)
{
    H_OK(dsm_finalize());
    if (timeout) {
        setenv("DSM_LOCK_TIMEOUT", timeout, 1);
    } else {
        unsetenv("DSM_LOCK_TIMEOUT");
    }
    H_OK(dsm_init(NULL, NULL));
    test_sync_setup();
}

/* Rank 1 times out in the queue while rank 2 still waits (behind it, or ahead): when
 * rank 0 releases, the lock reaches rank 2 through rank 1's abandoned node. Rank 2's
 * own limit is long (DSM_LOCK_TIMEOUT is per rank): the hand-over after rank 1 gives up
 * may take seconds on a busy machine or across simulated nodes over TCP, and rank 2
 * must outlast it rather than time out 0.4 s after rank 1. */
static void timeout_live_waiter_behind(void)
{
    restart(me == 2 ? "300" : "2");
    dsm_gptr_t m = at(0, 15, 0), flag = at(0, 15, 64);
    hold_on_rank0(m, flag);
    if (me == 1) {
        H_EXPECT(dsm_mutex_lock(m), DSM_ERR_TIMEOUT);
        H_OK(dsm_atomic_store_i64(flag, 1));
    } else if (me == 2) {
        usleep(400000); // queue after rank 1, well inside rank 1's 2 s
        H_OK(dsm_mutex_lock(m));
        H_OK(dsm_mutex_unlock(m));
    } else if (me == 0) {
        await_flag(flag);
        H_OK(dsm_mutex_unlock(m));
    }
    H_OK(dsm_barrier());
    H_OK(dsm_mutex_lock(m)); // and it still works for everyone
    H_OK(dsm_mutex_unlock(m));
    H_OK(dsm_barrier());
}

/* A waiter keeps serving MPI while it waits: the holder it waits for may need it, here
 * for dsm_rank_lock on the waiter's rank (MPI_Win_lock, which MPICH serves through the
 * target's progress engine). With DSM_LOCK_TIMEOUT=2 a waiter that serves nothing times
 * out, so a missing progress call fails this case instead of hanging it. */
static void rank_lock_while_waiting(void)
{
    dsm_gptr_t m = at(0, 16, 0), flag = at(0, 16, 64);
    if (n < 2) {
        return;
    }
    hold_on_rank0(m, flag);
    if (me == 1) {
        H_OK(dsm_atomic_store_i64(flag, 1));
        H_OK(dsm_mutex_lock(m)); // waits until rank 0 has had rank 1's rank lock
        H_OK(dsm_mutex_unlock(m));
    } else if (me == 0) {
        await_flag(flag);
        usleep(200000); // rank 1 is in its wait loop now
        H_OK(dsm_rank_lock(1));
        H_OK(dsm_rank_unlock(1));
        H_OK(dsm_mutex_unlock(m));
    }
    H_OK(dsm_barrier());
}

/* Waiters time out behind a holder and leave the queue; the lock then still works, and
 * their abandoned queue nodes come back to the pool. */
static void test_sync_timeout(void)
{
    restart("2");
    dsm_gptr_t m = at(0, 14, 0), c = at(0, 14, 64), l = at(0, 14, 128);
    if (me == 0) {
        H_OK(dsm_mutex_init(m));
        H_OK(dsm_rwlock_init(l));
        H_OK(dsm_atomic_store_i64(c, 0));
        H_OK(dsm_mutex_lock(m));
        H_OK(dsm_rwlock_rdlock(l));
    }
    H_OK(dsm_barrier());
    if (me != 0) {
        H_EXPECT(dsm_mutex_lock(m), DSM_ERR_TIMEOUT);
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "queued behind rank"));
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "held by rank 0"));
        H_EXPECT(dsm_mutex_unlock(m), DSM_ERR_STATE); // a timed-out waiter holds nothing
    }
    if (me == 1) {
        H_EXPECT(dsm_rwlock_wrlock(l), DSM_ERR_TIMEOUT);
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "reader(s) to leave"));
    }
    H_OK(dsm_barrier());
    if (me == 2) { // the writer that gave up no longer blocks readers
        H_OK(dsm_rwlock_tryrdlock(l));
        H_OK(dsm_rwlock_unlock(l));
    }
    if (me == 0) {
        H_OK(dsm_rwlock_unlock(l));
        H_OK(dsm_mutex_unlock(m)); // passes through the abandoned nodes
    }
    H_OK(dsm_barrier());
    for (int i = 0; i < 10; i++) {
        H_OK(dsm_mutex_lock(m));
        H_OK(bump(c));
        H_OK(dsm_mutex_unlock(m));
    }
    H_OK(dsm_barrier());
    CU_ASSERT_EQUAL(load(c), 10 * n);
    // Every slot can be taken again: the abandoned ones were reclaimed.
    unsigned slots[DSMI_QN_SLOTS + 1], got = 0;
    while (got <= DSMI_QN_SLOTS && dsmi_qn_take(&slots[got], "test") == DSM_OK) {
        got++;
    }
    CU_ASSERT_EQUAL(got, DSMI_QN_SLOTS);
    for (unsigned i = 0; i < got; i++) {
        dsmi_qn_put(slots[i]);
    }
    H_OK(dsm_barrier());
    timeout_live_waiter_behind();
    restart("2");
    rank_lock_while_waiting();
    restart(NULL);
}

/* dsm_mutex_create puts a ready mutex in a chosen rank's heap; dsm_mutex_free refuses a
 * held one and otherwise gives the memory back. */
static void test_sync_mutex_create(void)
{
    enum { ITERS = 50 };
    dsm_gptr_t mc[2] = {DSM_GPTR_NULL, DSM_GPTR_NULL}; // {mutex, counter}, both on rank n-1
    dsm_usage_t before, after;
    H_OK(dsm_usage(n - 1, &before));
    H_OK(dsm_barrier());
    if (me == 0) {
        int64_t zero = 0;
        H_OK(dsm_mutex_create(n - 1, &mc[0]));
        H_OK(dsm_alloc_on(n - 1, sizeof zero, &mc[1]));
        H_OK(dsm_put(mc[1], &zero, sizeof zero));
    }
    MPI_Bcast(mc, 2, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    for (int i = 0; i < ITERS; i++) {
        H_OK(dsm_mutex_lock(mc[0]));
        H_OK(bump(mc[1]));
        H_OK(dsm_mutex_unlock(mc[0]));
    }
    H_OK(dsm_barrier());
    CU_ASSERT_EQUAL(load(mc[1]), (int64_t)ITERS * n);
    H_OK(dsm_barrier()); // everyone has read the counter before it is freed
    if (me == 0) {
        H_OK(dsm_mutex_lock(mc[0]));
        H_EXPECT(dsm_mutex_free(mc[0]), DSM_ERR_STATE); // held: nothing is freed
        H_OK(dsm_mutex_unlock(mc[0]));
        H_OK(dsm_mutex_free(mc[0]));
        H_OK(dsm_free(mc[1]));
        H_EXPECT(dsm_mutex_create(n, &mc[0]), DSM_ERR_RANGE);
        H_EXPECT(dsm_mutex_create(0, NULL), DSM_ERR_ARG);
    }
    H_OK(dsm_barrier());
    H_OK(dsm_usage(n - 1, &after));
    CU_ASSERT_EQUAL(after.blocks, before.blocks);
    CU_ASSERT_EQUAL(after.in_use, before.in_use);
}

static void test_sync_setup(void)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_alloc_all((size_t)SLICES * SLICE, &g));
    base = dsm_gptr_offset(g);
}

static void test_sync_teardown(void)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_gptr_make(dsm_rank(), base, &g));
    H_OK(dsm_free_all(g));
}

static CU_TestInfo cases[] = {
    {"setup", test_sync_setup},
    {"mutex_basic", test_sync_mutex_basic},
    {"mutex_exclusion", test_sync_mutex_exclusion},
    {"mutex_threads", test_sync_mutex_threads},
    {"mutex_fairness", test_sync_mutex_fairness},
    {"mutex_trylock", test_sync_mutex_trylock},
    {"mutex_create", test_sync_mutex_create},
    {"mutex_many_held", test_sync_mutex_many_held},
    {"mutex_ordering", test_sync_mutex_ordering},
    {"mutex_errors", test_sync_mutex_errors},
    {"rwlock_exclusion", test_sync_rwlock_exclusion},
    {"rwlock_readers_together", test_sync_rwlock_readers_together},
    {"rwlock_errors", test_sync_rwlock_errors},
    {"sem_counts", test_sync_sem_counts},
    {"sem_errors", test_sync_sem_errors},
    {"rank_lock", test_sync_rank_lock},
    {"timeout", test_sync_timeout},
    {"teardown", test_sync_teardown},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_THREADS", "multiple", 0); // the thread case queues threads on one mutex
    setenv("DSM_LOG_LEVEL", "none", 0);   // the error cases would flood stderr
    struct harness_suite s = {"sync", 1, true, cases};
    return harness_main(argc, argv, &s);
}
