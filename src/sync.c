/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The synchronization subsystem's common parts: start/stop, this rank's pool of MCS
 * queue nodes, per-thread records of held locks (for the misuse errors), the waiting
 * loop with back-off and DSM_LOCK_TIMEOUT, and the whole-rank lock.
 *
 * Queue nodes live in the DSMI_HDR_SYNC region of the owner's segment (remote ranks
 * write their NEXT and FLAG words); which slots are free is process-local state, kept
 * in atomic bitmaps so that threads take and return slots without a lock. Invariant:
 * a free slot has NEXT == 0 and FLAG == QF_WAITING, so taking one costs no RMA.
 *
 * Visibility: every lock word goes through MPI_UINT64_T atomics that are flushed on
 * return. dsmi_sync_fence makes a release complete all of this process's RMA
 * (MPI_Win_flush_all) and publish its local stores (MPI_Win_sync) before the lock word
 * that hands the lock on is written; an acquire ends with MPI_Win_sync so local loads
 * see what the previous holder wrote.
 *
 * The whole-rank lock is MPI_Win_lock(MPI_LOCK_EXCLUSIVE) on a second, 8-byte-per-rank
 * window (win.c creates it), so it never mixes with the data window's lock_all epoch.
 */
#include "sync.h"

#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rma.h"
#include "topo.h"

#define BITMAP_WORDS ((DSMI_QN_SLOTS + 63) / 64)
static _Atomic uint64_t slot_used[BITMAP_WORDS];   // 1 = taken (in use or abandoned)
static _Atomic uint64_t slot_zombie[BITMAP_WORDS]; // 1 = abandoned, not yet reclaimed
static _Atomic unsigned zombies;                   // number of bits set in slot_zombie
static _Atomic int next_thread_id;
static _Atomic uint64_t generation; // bumped by every start: stale thread records die
static bool threaded;               // DSM_THREADS=multiple: threads call in concurrently

/* Whole-rank lock state. */
static MPI_Win rank_win = MPI_WIN_NULL;
static _Atomic int *rank_owner; // per target rank: thread id of the local holder, 0 none

/* ---- lock words ---- */

int dsmi_sync_load(dsm_gptr_t g, bool user, uint64_t *out, const char *func)
{
    uint64_t dummy = 0;
    return dsmi_rma_fop(g, &dummy, out, MPI_UINT64_T, MPI_NO_OP, user, func);
}

int dsmi_sync_store(dsm_gptr_t g, bool user, uint64_t v, const char *func)
{
    return dsmi_rma_fop(g, &v, NULL, MPI_UINT64_T, MPI_REPLACE, user, func);
}

int dsmi_sync_cas(dsm_gptr_t g, bool user, uint64_t expected, uint64_t desired, uint64_t *old,
                  const char *func)
{
    return dsmi_rma_cas(g, &desired, &expected, old, MPI_UINT64_T, user, func);
}

int dsmi_sync_fop(dsm_gptr_t g, bool user, MPI_Op op, uint64_t v, uint64_t *old, const char *func)
{
    return dsmi_rma_fop(g, &v, old, MPI_UINT64_T, op, user, func);
}

int dsmi_sync_fence(bool release, const char *func)
{
    if (dsmi_direct_fence()) { // nothing pending: one fence completes and publishes
        return DSM_OK;
    }
    if (release) { // puts and non-blocking operations of the critical section
        int rc = dsmi_rma_flush(-1, func);
        if (rc != DSM_OK) {
            return rc;
        }
    }
    DSMI_MPI(func, MPI_Win_sync(dsmi_w.win));
    return DSM_OK;
}

/* ---- queue-node pool ---- */

/* A parked slot whose releaser has finished with it: clear it for reuse. */
static bool reclaim_one(unsigned *slot)
{
    for (unsigned w = 0; w < BITMAP_WORDS; w++) {
        uint64_t bits = atomic_load(&slot_zombie[w]);
        while (bits) {
            unsigned b = (unsigned)__builtin_ctzll(bits), s = w * 64 + b;
            bits &= bits - 1;
            uint64_t flag = 0;
            if (dsmi_sync_load(dsmi_qn_word(dsmi_qid(dsmi_rt.rank, s), QN_FLAG), false, &flag,
                               "dsm_mutex_lock") != DSM_OK ||
                flag != QF_RECLAIMABLE) {
                continue;
            }
            // Claim the zombie (another thread may be reclaiming it too).
            if (!(atomic_fetch_and(&slot_zombie[w], ~(UINT64_C(1) << b)) & (UINT64_C(1) << b))) {
                continue;
            }
            atomic_fetch_sub(&zombies, 1);
            dsmi_sync_store(dsmi_qn_word(dsmi_qid(dsmi_rt.rank, s), QN_NEXT), false, 0,
                            "dsm_mutex_lock");
            dsmi_sync_store(dsmi_qn_word(dsmi_qid(dsmi_rt.rank, s), QN_FLAG), false, QF_WAITING,
                            "dsm_mutex_lock");
            *slot = s;
            return true;
        }
    }
    return false;
}

/* Set bit in slot_used[w], returning the word before. Without DSM_THREADS=multiple no
 * two threads of this process are ever inside the library at once, so a plain
 * read-modify-write does (two locked instructions less per lock+unlock). */
static uint64_t used_set(unsigned w, uint64_t bit)
{
    if (threaded) {
        return atomic_fetch_or(&slot_used[w], bit);
    }
    uint64_t old = atomic_load_explicit(&slot_used[w], memory_order_relaxed);
    atomic_store_explicit(&slot_used[w], old | bit, memory_order_relaxed);
    return old;
}

int dsmi_qn_take(unsigned *slot, const char *func)
{
    for (unsigned w = 0; w < BITMAP_WORDS; w++) {
        uint64_t used = atomic_load_explicit(&slot_used[w], memory_order_relaxed);
        while (~used) {
            unsigned b = (unsigned)__builtin_ctzll(~used);
            uint64_t bit = UINT64_C(1) << b;
            used = used_set(w, bit);
            if (!(used & bit)) {
                *slot = w * 64 + b;
                *dsmi_qn_local(*slot, QN_DIAG_STATE) = QD_WAITING;
                return DSM_OK;
            }
        }
    }
    if (atomic_load(&zombies) && reclaim_one(slot)) {
        *dsmi_qn_local(*slot, QN_DIAG_STATE) = QD_WAITING;
        return DSM_OK;
    }
    return dsmi_fail(DSM_ERR_NOMEM, func,
                     "all %u queue nodes of this rank are in use: its threads hold or await "
                     "that many locks at once (or abandoned them after timeouts)",
                     (unsigned)DSMI_QN_SLOTS);
}

void dsmi_qn_put(unsigned slot)
{
    *dsmi_qn_local(slot, QN_DIAG_STATE) = QD_FREE;
    _Atomic uint64_t *w = &slot_used[slot / 64];
    uint64_t bit = UINT64_C(1) << (slot % 64);
    if (threaded) {
        atomic_fetch_and(w, ~bit);
    } else { // see used_set
        atomic_store_explicit(w, atomic_load_explicit(w, memory_order_relaxed) & ~bit,
                              memory_order_relaxed);
    }
}

void dsmi_qn_abandon(unsigned slot)
{
    *dsmi_qn_local(slot, QN_DIAG_STATE) = QD_ABANDONED;
    atomic_fetch_or(&slot_zombie[slot / 64], UINT64_C(1) << (slot % 64));
    atomic_fetch_add(&zombies, 1);
}

/* ---- per-thread records ---- */

/* One thread-local block, found through a thread-local pointer of the initial-exec
 * model: a global-dynamic variable costs a __tls_get_addr call per access in a shared
 * library, ~10% of an uncontended lock+unlock. Eight bytes fit the static TLS surplus
 * glibc keeps for libraries loaded later with dlopen. */
static _Thread_local struct dsmi_held_set held;
static _Thread_local struct dsmi_held_set *held_ptr __attribute__((tls_model("initial-exec")));

struct dsmi_held_set *dsmi_held_mine(void)
{
    struct dsmi_held_set *s = held_ptr;
    if (__builtin_expect(s == NULL, 0)) {
        s = held_ptr = &held;
    }
    uint64_t gen = atomic_load_explicit(&generation, memory_order_relaxed);
    if (s->gen != gen) { // records of an earlier dsm_init are void
        s->gen = gen;
        s->n = 0;
    }
    if (s->thread_id == 0) {
        s->thread_id = atomic_fetch_add(&next_thread_id, 1) + 1;
    }
    return s;
}

int dsmi_thread_id(void)
{
    return dsmi_held_mine()->thread_id;
}

struct dsmi_held *dsmi_held_lookup(struct dsmi_held_set *s, uint64_t lock)
{
    for (int i = 0; i < s->n; i++) {
        if (s->h[i].lock == lock) {
            return &s->h[i];
        }
    }
    return NULL;
}

int dsmi_held_push(struct dsmi_held_set *s, const struct dsmi_held *h, const char *func)
{
    if (s->n == DSMI_HELD_MAX) {
        return dsmi_fail(DSM_ERR_NOMEM, func, "this thread already holds %d locks", DSMI_HELD_MAX);
    }
    s->h[s->n++] = *h;
    return DSM_OK;
}

void dsmi_held_drop(struct dsmi_held_set *s, struct dsmi_held *h)
{
    *h = s->h[--s->n]; // order does not matter
}

struct dsmi_held *dsmi_held_find(uint64_t lock)
{
    return dsmi_held_lookup(dsmi_held_mine(), lock);
}

int dsmi_held_add(const struct dsmi_held *h, const char *func)
{
    return dsmi_held_push(dsmi_held_mine(), h, func);
}

void dsmi_held_remove(struct dsmi_held *h)
{
    dsmi_held_drop(dsmi_held_mine(), h);
}

/* ---- waiting ---- */

void dsmi_sync_progress(void)
{
#ifdef MPICH_VERSION
    /* Measured on MPICH 4.0.2 ch4:ucx, 4 ranks on 2 cores: with waiters that only poll
     * their own FLAG (and MPI_Iprobe, MPI_Test of a pending receive, an empty flush or
     * any atomic on one's own window), the lock's host re-took its own lock ~50 times in
     * a row while the others' swaps and hand-overs waited for progress (fairness test
     * max/min 49); a remote atomic + flush, which spins MPICH's progress engine until
     * the peer answers, brought it to 1.1-2.3. So a waiter pokes a neighbour with a
     * read-only no-op atomic on the first word of its sync region (no lock uses it).
     * It costs a round trip (~1 us, or ms when the peer sleeps in a blocking call), so
     * only waiters do it, and only every fourth poll; releases never do. */
    if (dsmi_rt.nranks > 1 && !dsmi_direct()) {
        int peer = (dsmi_rt.rank + 1) % dsmi_rt.nranks;
        uint64_t dummy = 0, old = 0;
        MPI_Aint disp = 0; // where the peer's word is in its window: the one translation
        dsmi_translate(dsmi_gptr(peer, DSMI_HDR_SYNC_OFF), 8, false, "dsm sync", &peer, &disp);
        MPI_Fetch_and_op(&dummy, &old, MPI_UINT64_T, peer, disp, MPI_NO_OP, dsmi_w.win);
        MPI_Win_flush(peer, dsmi_w.win);
    } else if (dsmi_rt.nranks > 1) {
        /* Direct mode: the locks need no progress, but dsm_rank_lock (MPI_Win_lock on a
         * second window) is served by the target's progress engine. A waiter must keep
         * serving it: the rank-lock requester may be the very holder it waits for. */
        int flag = 0;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, dsmi_rt.comm, &flag, MPI_STATUS_IGNORE);
    }
#endif
}

/* How long a direct-mode waiter spins before it starts yielding (dsmi_sync_start). */
static uint64_t spin_ns;

/* Spin budgets. A hand-over between two running ranks takes a cache-line transfer
 * (~0.1 us), so a waiter whose holder runs on another core spins: a yield or an MPI call
 * there costs more than the whole hand-over. The budget is a few context switches long,
 * after which the holder is probably not running and the core is better given away.
 * With more ranks on the node than processors, a waiter's holder or successor may well
 * need this very core: then the spin is short. */
#define SPIN_NS_RUNNING UINT64_C(50000)
#define SPIN_NS_OVERSUB UINT64_C(2000)

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

void dsmi_wait_begin(struct dsmi_wait *w)
{
    long t = dsmi_rt.cfg.LOCK_TIMEOUT;
    w->limit_ns = t > 0 ? (uint64_t)t * UINT64_C(1000000000) : 0;
    w->polls = 0;
    /* The MPI path's poll is itself an MPI call (~1 us): four of them are its spin. */
    w->spin_polls = dsmi_direct() ? UINT_MAX : 4;
    w->start_ns = w->limit_ns || dsmi_direct() ? dsmi_now_ns() : 0;
}

/* Direct mode: still within the spin budget? The clock is read every 64 polls only. */
static bool spinning(struct dsmi_wait *w)
{
    if (w->polls <= w->spin_polls && (w->polls & 63) == 0 &&
        dsmi_now_ns() - w->start_ns > spin_ns) {
        w->spin_polls = w->polls; // from now on: yield
    }
    return w->polls <= w->spin_polls;
}

bool dsmi_wait_step(struct dsmi_wait *w)
{
    ++w->polls;
    if (spinning(w)) {
        /* No MPI call and no sleep while spinning on the direct path; the MPI path
         * (spin_polls 4) pokes as below from its fourth poll on. */
        if (dsmi_direct()) {
            cpu_relax();
            return w->limit_ns && (w->polls & 1023) == 0 &&
                   dsmi_now_ns() - w->start_ns > w->limit_ns;
        }
    } else {
        sched_yield(); // the holder may be waiting for this core
    }
    if ((w->polls & 3) == 3) { // a poke costs a remote round trip: one poll in four
        dsmi_sync_progress();
    }
    return w->limit_ns && (w->polls & 15) == 0 && dsmi_now_ns() - w->start_ns > w->limit_ns;
}

/* ---- subsystem ---- */

/* More ranks on this node than processors this process may run on. */
static bool oversubscribed(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < cpus) {
        cpus = CPU_COUNT(&set); // a cpuset or a binding narrows what the node has
    }
    return cpus > 0 && dsmi_topo()->local_ranks > cpus;
}

int dsmi_sync_start(void)
{
    for (unsigned w = 0; w < BITMAP_WORDS; w++) {
        atomic_store(&slot_zombie[w], 0);
        atomic_store(&slot_used[w], 0);
    }
    if (DSMI_QN_SLOTS % 64) { // slots past the region are never free
        atomic_store(&slot_used[BITMAP_WORDS - 1], ~UINT64_C(0) << (DSMI_QN_SLOTS % 64));
    }
    atomic_store(&zombies, 0);
    atomic_fetch_add(&generation, 1);
    spin_ns = oversubscribed() ? SPIN_NS_OVERSUB : SPIN_NS_RUNNING;
    threaded = dsmi_rt.cfg.THREADS == DSMI_THREADS_MULTIPLE;
    // The header region was zeroed at window creation: every node is free and clean.
    rank_owner = calloc((size_t)dsmi_rt.nranks, sizeof *rank_owner);
    if (rank_owner == NULL) {
        return dsmi_fail(DSM_ERR_NOMEM, "dsm_init", "no memory for the rank-lock table");
    }
    return dsmi_win_create_lockwin(&rank_win);
}

/* The restored image holds the nodes as they were at checkpoint time (a node in use
 * then names a waiter that no longer exists): back to the state dsmi_sync_start leaves,
 * without touching the rank-lock window. Plain stores: during a restore no other rank
 * touches this region, and ckpt/replica publish the bytes with MPI_Win_sync. */
void dsmi_sync_reload(void)
{
    memset(dsmi_w.base + DSMI_HDR_SYNC_OFF, 0, DSMI_HDR_SYNC_SIZE);
    for (unsigned w = 0; w < BITMAP_WORDS; w++) {
        atomic_store(&slot_zombie[w], 0);
        atomic_store(&slot_used[w], 0);
    }
    if (DSMI_QN_SLOTS % 64) {
        atomic_store(&slot_used[BITMAP_WORDS - 1], ~UINT64_C(0) << (DSMI_QN_SLOTS % 64));
    }
    atomic_store(&zombies, 0);
    atomic_fetch_add(&generation, 1); // held records name slots that were just cleared
}

int dsmi_sync_stop(void)
{
    int rc = dsmi_win_free_lockwin(&rank_win);
    free(rank_owner);
    rank_owner = NULL;
    return rc;
}

/* ---- whole-rank lock ---- */

static int check_rank(int rank, const char *func)
{
    DSMI_CHECK_UP(func);
    if (rank < 0 || rank >= dsmi_w.nseg) {
        return dsmi_fail(DSM_ERR_RANGE, func, "rank (segment) %d is not in 0..%d", rank,
                         dsmi_w.nseg - 1);
    }
    return DSM_OK;
}

/* Threads of this process take turns locally first: MPI forbids one process to hold
 * two locks on the same target of a window. */
static int claim_local(int rank, const char *func)
{
    int me = dsmi_thread_id(), free_ = 0;
    struct dsmi_wait w;
    dsmi_wait_begin(&w);
    while (!atomic_compare_exchange_weak(&rank_owner[rank], &free_, me)) {
        if (free_ == me) {
            return dsmi_fail(DSM_ERR_STATE, func, "rank %d is already locked by this thread", rank);
        }
        if (free_ == 0) {
            continue; // spurious failure of the weak exchange
        }
        if (dsmi_wait_step(&w)) {
            return dsmi_fail(DSM_ERR_TIMEOUT, func,
                             "timed out after %ld s: thread %d of this "
                             "rank waits for rank %d's lock, held by thread %d of this rank",
                             dsmi_rt.cfg.LOCK_TIMEOUT, me, rank, free_);
        }
        free_ = 0;
    }
    return DSM_OK;
}

int dsm_rank_lock(int rank)
{
    const char *func = "dsm_rank_lock";
    int rc = check_rank(rank, func);
    if (rc != DSM_OK) {
        return rc;
    }
    rank = dsmi_host(rank); // a segment's lock is its host's (win.h: segments outlive ranks)
    if ((rc = claim_local(rank, func)) != DSM_OK) {
        return rc;
    }
    /* MPI_Win_lock may return before the lock is granted (MPICH acquires it lazily);
     * an atomic under the lock, flushed, returns only once it is held. The word records
     * the holder for diagnostics. */
    uint64_t me = (uint64_t)dsmi_rt.rank + 1, old = 0;
    int mrc = MPI_Win_lock(MPI_LOCK_EXCLUSIVE, rank, 0, rank_win);
    if (mrc == MPI_SUCCESS) {
        mrc = MPI_Fetch_and_op(&me, &old, MPI_UINT64_T, rank, 0, MPI_REPLACE, rank_win);
        if (mrc == MPI_SUCCESS) {
            mrc = MPI_Win_flush(rank, rank_win);
        }
        if (mrc != MPI_SUCCESS) {
            MPI_Win_unlock(rank, rank_win); // a later lock of this rank must not nest
        }
    }
    if (mrc != MPI_SUCCESS) {
        atomic_store(&rank_owner[rank], 0);
        return dsmi_fail_mpi(mrc, func, "MPI_Win_lock(MPI_LOCK_EXCLUSIVE)", __FILE__, __LINE__);
    }
    return dsmi_sync_fence(false, func);
}

int dsm_rank_unlock(int rank)
{
    const char *func = "dsm_rank_unlock";
    int rc = check_rank(rank, func);
    if (rc != DSM_OK) {
        return rc;
    }
    rank = dsmi_host(rank);
    int owner = atomic_load(&rank_owner[rank]);
    if (owner != dsmi_thread_id()) {
        return dsmi_fail(DSM_ERR_STATE, func, "rank %d is not locked by this thread (%s)", rank,
                         owner ? "another thread of this rank holds it"
                               : "no thread of this "
                                 "rank holds it");
    }
    if ((rc = dsmi_sync_fence(true, func)) != DSM_OK) {
        return rc;
    }
    uint64_t zero = 0, old = 0;
    int mrc = MPI_Fetch_and_op(&zero, &old, MPI_UINT64_T, rank, 0, MPI_REPLACE, rank_win);
    int urc = MPI_Win_unlock(rank, rank_win); // always, so the lock is never stranded
    atomic_store(&rank_owner[rank], 0);
    if (mrc != MPI_SUCCESS || urc != MPI_SUCCESS) {
        return dsmi_fail_mpi(mrc != MPI_SUCCESS ? mrc : urc, func, "MPI_Win_unlock", __FILE__,
                             __LINE__);
    }
    return DSM_OK;
}
