/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The distributed heap: one allocator per rank, living entirely inside that rank's
 * segment, usable by the owner and, through RMA alone, by every other rank. This file
 * is the API, the lock and the collective; the allocator is heap_core.c (why TLSF is
 * explained there) and the remote view heap_view.c; the layout is in heap_core.h.
 *
 * Concurrency: every change to the metadata, by the owner or by a remote rank, happens
 * under the heap lock, a fair ticket lock taken with MPI_Fetch_and_op and released with
 * MPI_Accumulate, on the owner too, because MPI atomics are atomic only against other
 * MPI atomics. The same lock serialises the owner's threads. Visibility: a remote
 * holder flushes its puts before the releasing accumulate; the owner calls
 * MPI_Win_sync after acquiring (to see remote puts with local loads) and before
 * releasing (to publish local stores to the next holder's gets). The usage words are
 * only changed by MPI_Accumulate and read with MPI_Get_accumulate(NO_OP), so readers
 * never need the lock. A remote dsm_free does not merge: it marks the block RFREE and
 * pushes it on the pending list (mimalloc's deferred free), which the owner's next
 * operation (or a remote allocator that ran out of room) merges back. In direct mode
 * (win.h) the same protocol runs with CPU atomics and memcpy on the mapped segments.
 * The one exception: the owner's cache of small blocks (heap_cache.c) moves blocks that
 * are allocated as far as everyone else is concerned between the owner and its cache
 * without the lock, changing only their tags' state; dsm_alloc and dsm_free try it
 * first, and every refill, return and refusal goes through the lock.
 */
#include "heap.h"

#include <sched.h>
#include <string.h>

#include "heap_core.h"
#include "progress.h"
#include "rma.h"

static _Thread_local unsigned last_ops, last_flushes;

void dsmi_heap_last_cost(unsigned *ops, unsigned *flushes)
{
    *ops = last_ops;
    *flushes = last_flushes;
}

static uint64_t heap_cap; // bytes of every rank's heap (all segments have one size)

/* Bytes of usage + roots a remote operation fetches: list heads past the segment's
 * size class are never used. */
static int roots_len(void)
{
    int fl, sl;
    dsmi_hcore_mapping(dsmi_w.size, &fl, &sl);
    return (int)(R_HEAD(fl + 1 < FL_COUNT ? fl + 1 : FL_COUNT, 0) - USAGE_OFF);
}

/* The MPI displacement of header word off of rank's segment, from the one translation
 * (win.h), which cannot fail here: rank is checked and off is a fixed header word. */
static MPI_Aint hdr_disp(int rank, uint64_t off)
{
    int r = 0;
    MPI_Aint disp = 0;
    int rc = dsmi_translate(dsmi_gptr(rank, off), 8, false, "dsm heap", &r, &disp);
    DSM_ASSERT(rc == DSM_OK);
    return disp;
}

/* ---- the heap lock ----
 *
 * A ticket lock, so it is fair (first come, first served) on every path: a taker
 * fetch-and-adds L_NEXT for its ticket and holds the lock once R_LOCK ("now serving")
 * equals it; a release adds 1 to R_LOCK in the accumulate that publishes the usage. A
 * CAS lock let an owner that allocates in a loop re-take its own lock before a remote
 * compare-and-swap (a network round trip) ever found it free: remote allocations
 * starved. Now the owner's next ticket comes after the waiting remote one. The owner's
 * fast path stays one round to its own window: the fetch-and-add and the read of R_LOCK
 * go out together under one flush (reading R_LOCK before the ticket lands is fine: it
 * cannot pass a ticket nobody released, so finding it equal means the turn is ours).
 *
 * Timeouts. A waiter gives up when R_LOCK has not moved for 30 s: then one
 * holder has kept the lock that long (the "dead holder" diagnosis; a long queue of
 * short holds restarts the clock at every hand-over). But its ticket is in the queue:
 * when its turn comes nobody would release it, and everybody behind would wait for
 * ever. So before leaving it marks the ticket abandoned in L_GONE(t) (the slot holds
 * t + 1), and whoever next finds R_LOCK stuck at a marked ticket passes it on with a
 * compare-and-swap R_LOCK: t -> t + 1. Whoever: every waiter checks the mark of the
 * ticket it waits behind, and a newcomer is a waiter too, so a marked turn is passed
 * on as soon as anybody needs the lock; releases never look, so they cost nothing
 * more. Races: the mark is set before the leaver's own compare-and-swap R_LOCK: t ->
 * t + 1, so if its turn came meanwhile it passes it itself; if not, R_LOCK reaches t
 * later and the mark is already there for the next waiter to see. Only one of several
 * compare-and-swaps expecting t wins, tickets are never reused, and a live holder's
 * ticket is never marked, so a holder is never skipped. A slot is reused by ticket
 * t + 64; the leaver refuses to overwrite a mark R_LOCK has not passed yet (64
 * abandoned tickets in a row) and then keeps waiting rather than wedge the lock.
 *
 * Progress: a waiter polls R_LOCK with an atomic and a flush (on the owner's own window
 * when it waits for its own heap) and yields its core (the holder may share it). On the
 * MPI path the owner also drives its progress engine every few local takes and polls
 * (progress() says what and why, measured), so remote tickets land while it is busy.
 */
uint64_t dsmi_heap_lock_timeout_ns = UINT64_C(30) * 1000000000u;
#define GONE_EVERY 8 // polls of a stuck R_LOCK between looks at its abandoned mark

/* The atomics of the lock: MPI calls on the MPI path, CPU atomics in direct mode. */
static int word_get(int rank, uint64_t off, int64_t *out, const char *func)
{
    const int64_t zero = 0;
    return dsmi_rma_fop(dsmi_gptr(rank, off), &zero, out, MPI_INT64_T, MPI_NO_OP, false, func);
}

static int word_cas(int rank, uint64_t off, int64_t expected, int64_t desired, int64_t *old,
                    const char *func)
{
    return dsmi_rma_cas(dsmi_gptr(rank, off), &desired, &expected, old, MPI_INT64_T, false, func);
}

/* Take a ticket (*t) and read now-serving (*s) in one round. */
static int ticket_take(int rank, int64_t *t, int64_t *s, const char *func)
{
    char *seg = dsmi_peer_seg_atomic(rank);
    if (seg != NULL) {
        *t = __atomic_fetch_add((int64_t *)(seg + L_NEXT), 1, __ATOMIC_SEQ_CST);
        *s = __atomic_load_n((int64_t *)(seg + R_LOCK), __ATOMIC_ACQUIRE);
        dsmi_count(&dsmi_stat.atomics, 2);
        return DSM_OK;
    }
    const int64_t one = 1, zero = 0;
    int host = dsmi_host(rank); // rank names a segment (win.h)
    DSMI_MPI(func, MPI_Fetch_and_op(&one, t, MPI_INT64_T, host, hdr_disp(rank, L_NEXT), MPI_SUM,
                                    dsmi_w.win));
    DSMI_MPI(func, MPI_Fetch_and_op(&zero, s, MPI_INT64_T, host, hdr_disp(rank, R_LOCK), MPI_NO_OP,
                                    dsmi_w.win));
    dsmi_count(&dsmi_stat.atomics, 2);
    return dsmi_rma_flush(host, func);
}

/* Name ourselves the holder, for a waiter's timeout message only (best effort: not
 * ordered with the lock words). On the MPI path the put completes with the holder's
 * next flush. */
static void note_holder(int rank)
{
    const int64_t id = dsmi_rt.rank + 1;
    char *seg = dsmi_peer_seg_atomic(rank);
    if (seg != NULL) {
        __atomic_store_n((int64_t *)(seg + L_HOLDER), id, __ATOMIC_RELAXED);
    } else if (rank == dsmi_rt.rank) {
        memcpy(dsmi_w.base + L_HOLDER, &id, 8); // published by local_begin's MPI_Win_sync
    } else {
        MPI_Put(&id, 1, MPI_INT64_T, dsmi_host(rank), hdr_disp(rank, L_HOLDER), 1, MPI_INT64_T,
                dsmi_w.win);
    }
}

/* R_LOCK is stuck at s: if ticket s was abandoned, pass its turn on. */
static int pass_gone(int rank, int64_t s, const char *func, unsigned *ops)
{
    int64_t mark = 0, old = 0;
    int rc = word_get(rank, L_GONE(s), &mark, func);
    (*ops)++;
    if (rc == DSM_OK && mark == s + 1) {
        rc = word_cas(rank, R_LOCK, s, s + 1, &old, func);
        (*ops)++;
    }
    return rc;
}

/* Mark ticket t abandoned (see above). Returns DSM_ERR_BUSY when its slot still holds
 * an older mark that R_LOCK has not passed. */
static int abandon(int rank, int64_t t, const char *func, unsigned *ops)
{
    int64_t mark = 0, s = 0, old = 0;
    int rc = word_get(rank, L_GONE(t), &mark, func);
    for (int i = 0; rc == DSM_OK && i < 4; i++) {
        if ((rc = word_get(rank, R_LOCK, &s, func)) != DSM_OK) {
            break;
        }
        if (mark != 0 && mark - 1 >= s) {
            return DSM_ERR_BUSY; // ticket mark - 1 still waits for its turn to be passed
        }
        rc = word_cas(rank, L_GONE(t), mark, t + 1, &old, func);
        *ops += 2;
        if (rc == DSM_OK && old == mark) { // marked; pass the turn if it has come
            return word_cas(rank, R_LOCK, t, t + 1, &old, func);
        }
        mark = old;
    }
    return rc == DSM_OK ? DSM_ERR_BUSY : rc;
}

/* Drive this process's MPI progress engine, on the MPI data path only (in direct mode
 * every lock word is a CPU atomic: nothing to progress). Where the target executes RMA
 * (Open MPI osc pt2pt over TCP, osc ucx, MPICH ch4) a remote taker's ticket lands only
 * when the owner's MPI library makes progress, and meanwhile an owner busy with its own
 * heap takes turn after turn. Measured with tests/test_heaplock (owner pairs made while
 * a remote dsm_alloc_on was in flight, per remote pair; 4 ranks, 2 cores at load 28)
 * and the cost of a local alloc+free (dsm-bench heap, pair, 64 B), for nothing /
 * MPI_Iprobe / a no-op fetch-and-op + flush to a neighbour, every 16 local takes
 * (PROGRESS_EVERY, since dropped):
 *   Open MPI --net=tcp:  bypass 1.8 / 0.6 / 0.5;   local pair 12.5 / 9.6 / >1000 us
 *   Open MPI --net=ucx:  bypass 1.5 / 1.6 / 1.3
 *   Open MPI DSM_DIRECT=0 (one node): local pair 0.49 / 0.32 / 0.52 us
 *   MPICH DSM_DIRECT=0:  bypass 63 / 58 / 1.7 to 8; local pair 8.0 / 4.0 / 71 us
 * So on Open MPI MPI_Iprobe (opal_progress) is enough and costs nothing measurable (the
 * poke's round trip to a neighbour that must itself be scheduled is dear on a loaded
 * machine); on MPICH MPI_Iprobe does not run the RMA progress the remote tickets need
 * and only the poke does. Every 16 takes left MPICH at up to 8 bypasses (a ticket waits
 * for the next poke), so it runs at every take on the MPI path: then 0.3 to 0.4 on
 * both MPIs, and a local pair costs 0.82 us (Open MPI, one node), 14 us (Open MPI,
 * TCP) and 66 us (MPICH, one node, at load 28: the neighbour must be scheduled).
 * With passive progress (progress.c) the thread lands remote tickets within its
 * interval, and the owner only yields its core at each take, for the remote takers (and
 * the thread) that share it: MPICH DSM_DIRECT=0, 4 ranks on 2 cores at load 24, bypass
 * 0.5 to 4.7 (yield), 1.0 to 8.3 (MPI_Iprobe, over the bound 2 of 3), 1.6 to 8.2
 * (MPI_Test of a pending receive); a local pair 8 to 15 us CPU (5 to 7 with the old
 * unfair lock; dsm-bench heap, docs/PERFORMANCE.md). */
static void progress(void)
{
    if (dsmi_direct() || dsmi_rt.nranks < 2) {
        return;
    }
    if (dsmi_progress_running()) {
        sched_yield(); // the progress thread lands remote tickets; let takers run
        return;
    }
#if defined(MPICH_VERSION)
    const int64_t zero = 0;
    int64_t dummy = 0;
    int peer = (dsmi_rt.rank + 1) % dsmi_rt.nranks;
    MPI_Fetch_and_op(&zero, &dummy, MPI_INT64_T, peer, hdr_disp(peer, L_NEXT), MPI_NO_OP,
                     dsmi_w.win);
    MPI_Win_flush(peer, dsmi_w.win);
#else
    int flag = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, dsmi_rt.comm, &flag, MPI_STATUS_IGNORE);
#endif
}

/* Between polls: keep progress going when we wait for our own heap, every few polls (a remote
 * waiter's polls are round trips to the target, which progress it already), and yield the core (the
 * holder may need it). */
static void wait_step(int rank, unsigned polls)
{
    if (rank == dsmi_rt.rank && polls % 4 == 0) {
        progress();
    }
    sched_yield();
}

static int timed_out(int rank, int64_t t, const char *func, unsigned *ops)
{
    int rc = abandon(rank, t, func, ops);
    if (rc != DSM_OK) {
        return rc;
    }
    int64_t holder = 0;
    dsmi_rma_get(&holder, dsmi_gptr(rank, L_HOLDER), 8, false, func);
    return dsmi_fail(DSM_ERR_TIMEOUT, func,
                     "rank %d's heap lock has been held by rank %lld for over %.0f s", rank,
                     (long long)holder - 1, (double)dsmi_heap_lock_timeout_ns * 1e-9);
}

/* Wait until now-serving reaches ticket t (s: its last value seen). */
static int lock_wait(int rank, int64_t t, int64_t s, const char *func, unsigned *ops)
{
    uint64_t since = dsmi_now_ns();
    for (unsigned polls = 1, stuck = 0;; polls++) {
        int64_t now = 0;
        wait_step(rank, polls);
        int rc = word_get(rank, R_LOCK, &now, func);
        (*ops)++;
        if (rc != DSM_OK || now == t) {
            return rc;
        }
        if (now != s) { // the lock moved on: the holder we timed is gone
            s = now, stuck = 0, since = dsmi_now_ns();
            continue;
        }
        if (++stuck % GONE_EVERY == 1 && (rc = pass_gone(rank, s, func, ops)) != DSM_OK) {
            return rc;
        }
        if (stuck % 64 == 0 && dsmi_now_ns() - since > dsmi_heap_lock_timeout_ns) {
            rc = timed_out(rank, t, func, ops);
            if (rc != DSM_ERR_BUSY) {
                return rc;
            }
            since = dsmi_now_ns(); // no slot for the mark: keep our turn (see above)
            dsmi_log(DSMI_LOG_WARN,
                     "%s: rank %d's heap lock is stuck, and 64 tickets were "
                     "abandoned: still waiting",
                     func, rank);
        }
    }
}

/* Take rank's heap lock. An MPI failure while a ticket is out leaves the lock to the
 * timeout of the waiters behind it: MPI errors on the window end the job in practice. */
static int lock_take(int rank, const char *func, unsigned *ops)
{
    if (rank == dsmi_rt.rank) {
        progress(); // let remote tickets land while we are busy with our own heap
    }
    int64_t t = 0, s = 0;
    int rc = ticket_take(rank, &t, &s, func);
    (*ops)++;
    if (rc == DSM_OK && s != t) {
        rc = lock_wait(rank, t, s, func, ops);
    }
    if (rc == DSM_OK) {
        note_holder(rank);
    }
    return rc;
}

/* Release the lock and publish this operation's usage deltas: one accumulate, so a
 * reader never sees the heap unlocked with stale usage of this operation. */
static int release(int rank, const int64_t d[4], const char *func)
{
    int64_t all[5] = {d[0], d[1], d[2], d[3], 1}; // the last: now serving the next ticket
    char *seg = dsmi_peer_seg_atomic(rank);
    if (seg != NULL) { // direct mode: the same sums, the lock word last
        int64_t *w = (int64_t *)(seg + U_IN_USE);
        /* Only the lock holder writes these words (heap_core.h: takers add to L_NEXT
         * and read R_LOCK; passing an abandoned turn needs nobody holding the lock),
         * so single-writer atomic stores do:
         * readers never see a torn word, and the lock word's store is a release that
         * orders every store of the operation before it, as a spin lock's unlock. */
        for (int i = 0; i < 4; i++) {
            __atomic_store_n(&w[i], __atomic_load_n(&w[i], __ATOMIC_RELAXED) + all[i],
                             __ATOMIC_RELAXED);
        }
        __atomic_store_n(&w[4], __atomic_load_n(&w[4], __ATOMIC_RELAXED) + all[4],
                         __ATOMIC_RELEASE);
        dsmi_count(&dsmi_stat.atomics, 1); // one accumulate on the MPI path
        return DSM_OK;
    }
    DSMI_MPI(func, MPI_Accumulate(all, 5, MPI_INT64_T, dsmi_host(rank), hdr_disp(rank, U_IN_USE), 5,
                                  MPI_INT64_T, MPI_SUM, dsmi_w.win));
    dsmi_count(&dsmi_stat.atomics, 1);
    return dsmi_rma_flush(dsmi_host(rank), func);
}

/* A fresh view, field by field: zeroing it whole (memset or a compound literal) is a
 * rep stos, 7% of a local alloc+free. salt, lo and hi come from the roots. */
static void view_init(struct dsmi_hview *v, char *base, struct dsmi_hcache *rc)
{
    v->base = base;
    v->rc = rc;
    v->salt = v->lo = v->hi = 0;
    v->seg = dsmi_w.size;
    v->d_in_use = v->d_free = v->d_blocks = 0;
    v->shrunk = v->grown = 0;
    v->why = NULL;
}

/* This rank's heap as the roots describe it. The roots are read and checked exactly as
 * a remote operation checks the ones it fetches: the segment may have been wiped
 * (dsm_simulate_failure) or overwritten since dsm_init, so bounds cached at start-up
 * would hand out blocks in whatever lies there, the runtime header included. */
static int local_view(struct dsmi_hview *v, const char *func)
{
    view_init(v, dsmi_w.base, NULL);
    if (dsmi_hcore_roots_valid(v) != DSM_OK) {
        return dsmi_fail(DSM_ERR_CORRUPT, func, "rank %d: %s", dsmi_rt.rank, v->why);
    }
    return DSM_OK;
}

/* Lock this rank's heap and merge pending remote frees. */
static int local_begin(struct dsmi_hview *v, const char *func)
{
    unsigned ops = 0;
    int rc = lock_take(dsmi_rt.rank, func, &ops);
    if (rc != DSM_OK) {
        return rc;
    }
    // Remote holders' puts completed before their release; make them visible to loads.
    // In direct mode the acquire load that found our ticket served is the acquire.
    int mrc = dsmi_direct() ? MPI_SUCCESS : MPI_Win_sync(dsmi_w.win);
    rc = mrc != MPI_SUCCESS ? dsmi_fail_mpi(mrc, func, "MPI_Win_sync", __FILE__, __LINE__)
                            : local_view(v, func);
    if (rc != DSM_OK) {
        const int64_t none[4] = {0, 0, 0, 0};
        release(dsmi_rt.rank, none, func); // never keep the lock on a failed call
        return rc;
    }
    if (ld(v, R_PENDING) != 0) {
        dsmi_hcore_drain(v);
    }
    return DSM_OK;
}

static int local_end(struct dsmi_hview *v, const char *func)
{
    uint64_t old = ld(v, U_LARGEST);
    int64_t d[4] = {v->d_in_use, v->d_free, (int64_t)(dsmi_hcore_largest(v, old) - old),
                    v->d_blocks};
    // Our stores before the next holder's gets; in direct mode release's store to the
    // lock word orders them.
    if (!dsmi_direct()) {
        DSMI_MPI(func, MPI_Win_sync(dsmi_w.win));
    }
    return release(dsmi_rt.rank, d, func);
}

static int remote_begin(struct dsmi_hview *v, struct dsmi_hcache *rc, int rank, const char *func)
{
    /* Not a compound literal: zeroing all ~7 KiB of the cache cost more than the rest of
     * a remote call's local work. The write buffer is valid up to n, and the roots are
     * fetched below; only the list heads past the fetch are never written. */
    int fetched = roots_len();
    rc->rank = rank;
    rc->err = DSM_OK;
    rc->ops = rc->flushes = 0;
    rc->func = func;
    rc->dlo = UINT64_MAX;
    rc->dhi = 0;
    rc->n = 0;
    memset((char *)rc->roots + fetched, 0, sizeof rc->roots - (size_t)fetched);
    view_init(v, NULL, rc);
    int err = lock_take(rank, func, &rc->ops);
    rc->flushes = rc->ops; // each CAS was flushed
    if (err != DSM_OK) {
        return err;
    }
    dsmi_hview_get(rc, USAGE_OFF, rc->roots, fetched);
    err = rc->err;
    if (err == DSM_OK && dsmi_hcore_roots_valid(v) != DSM_OK) {
        err = dsmi_fail(DSM_ERR_CORRUPT, func, "rank %d: %s", rank, v->why);
    }
    if (err != DSM_OK) { // nothing was changed: give the lock back
        const int64_t none[4] = {0, 0, 0, 0};
        release(rank, none, func);
    }
    return err;
}

static int remote_end(struct dsmi_hview *v, const char *func)
{
    struct dsmi_hcache *rc = v->rc;
    uint64_t old = rc->roots[(U_LARGEST - USAGE_OFF) / 8];
    int64_t d[4] = {v->d_in_use, v->d_free, (int64_t)(dsmi_hcore_largest(v, old) - old),
                    v->d_blocks};
    dsmi_hview_writeback(rc); // complete at the target before the release below
    int err = release(rc->rank, d, func);
    rc->ops++;
    rc->flushes++;
    last_ops = rc->ops;
    last_flushes = rc->flushes;
    return rc->err != DSM_OK ? rc->err : err;
}

static int nomem(struct dsmi_hview *v, int rank, size_t size, uint64_t bs, const char *func)
{
    uint64_t fr = ld(v, U_FREE) + (uint64_t)v->d_free,
             big = dsmi_hcore_largest(v, ld(v, U_LARGEST));
    return dsmi_fail(DSM_ERR_NOMEM, func,
                     "rank %d has no room for %zu bytes (a %llu-byte "
                     "block): %llu bytes free, largest free block %llu bytes (%s)",
                     rank, size, (unsigned long long)bs, (unsigned long long)fr,
                     (unsigned long long)big, v->why);
}

/* Checks shared by every allocating call; *bs gets the block size. */
static int alloc_args(size_t size, size_t align, dsm_gptr_t *out, uint64_t *bs, const char *func)
{
    DSMI_CHECK_UP(func);
    if (out == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "out is NULL");
    }
    if (size == 0) {
        return dsmi_fail(DSM_ERR_ARG, func, "size is 0");
    }
    *bs = dsmi_hcore_block_size(size);
    if (*bs == 0 || *bs > heap_cap) {
        return dsmi_fail(DSM_ERR_ARG, func,
                         "size %zu exceeds the %llu bytes of a segment's "
                         "heap",
                         size, (unsigned long long)heap_cap);
    }
    if (align == 0 || (align & (align - 1)) != 0 || align > heap_cap) {
        return dsmi_fail(DSM_ERR_ARG, func,
                         "alignment %zu is not a power of two up to the "
                         "heap size",
                         align);
    }
    if (align > DSM_MAX_ALIGN) { // segments start DSMI_SEG_ALIGN-aligned, no more (win.h)
        return dsmi_fail(DSM_ERR_ARG, func,
                         "alignment %zu is beyond DSM_MAX_ALIGN (%zu), the largest "
                         "alignment of an address mpidsm guarantees",
                         align, DSM_MAX_ALIGN);
    }
    return DSM_OK;
}

/* Allocate under the heap lock; when the heap is full, return the owner's cache of
 * small blocks to it (heap_cache.c) and try once more. */
static int alloc_locked(struct dsmi_hview *v, uint64_t bs, size_t align, uint64_t *b)
{
    for (int pass = 0;; pass++) {
        int rc = align <= ALIGN ? dsmi_hcache_refill(v, bs, b)
                                : dsmi_hcore_alloc_aligned(v, bs, align, b);
        if (rc == DSM_OK || pass == 1 || dsmi_hcache_bytes() == 0) {
            return rc;
        }
        dsmi_hcache_return(v);
    }
}

static int alloc_local(size_t size, uint64_t bs, size_t align, dsm_gptr_t *out, const char *func)
{
    struct dsmi_hview v;
    uint64_t b = 0;
    if (align <= ALIGN && dsmi_hcache_get(bs, &b)) { // the fast path: no heap lock
        *out = dsmi_gptr(dsmi_rt.rank, b + HDR);
        return DSM_OK;
    }
    int rc = local_begin(&v, func);
    if (rc != DSM_OK) {
        return rc;
    }
    rc = alloc_locked(&v, bs, align, &b);
    if (rc != DSM_OK) {
        nomem(&v, dsmi_rt.rank, size, bs, func);
    }
    int rc2 = local_end(&v, func);
    if (rc == DSM_OK && rc2 == DSM_OK) {
        *out = dsmi_gptr(dsmi_rt.rank, b + HDR);
    }
    return rc != DSM_OK ? rc : rc2;
}

/* Allocate on another rank through RMA; when it is full, merge its pending remote
 * frees (the owner merges them on its next call, but it may never call) and retry. */
static int alloc_remote(int rank, size_t size, uint64_t bs, size_t align, dsm_gptr_t *out,
                        const char *func)
{
    struct dsmi_hview v;
    struct dsmi_hcache rc;
    uint64_t b = 0;
    int err = remote_begin(&v, &rc, rank, func);
    if (err != DSM_OK) {
        return err;
    }
    for (int pass = 0; pass < 2; pass++) {
        err = align <= ALIGN ? dsmi_hcore_alloc(&v, bs, &b)
                             : dsmi_hcore_alloc_aligned(&v, bs, align, &b);
        if (err == DSM_OK || pass == 1 || ld(&v, R_PENDING) == 0) {
            break;
        }
        dsmi_hcore_drain(&v);
    }
    if (err != DSM_OK) {
        nomem(&v, rank, size, bs, func);
    }
    int err2 = remote_end(&v, func);
    if (err == DSM_OK && err2 == DSM_OK) {
        *out = dsmi_gptr(rank, b + HDR);
    }
    return err != DSM_OK ? err : err2;
}

static int heap_alloc(int rank, size_t size, size_t align, dsm_gptr_t *out, const char *func)
{
    uint64_t bs = 0;
    int rc = alloc_args(size, align, out, &bs, func);
    if (rc != DSM_OK) {
        return rc;
    }
    if (rank < 0 || rank >= dsmi_w.nseg) {
        return dsmi_fail(DSM_ERR_RANGE, func, "rank (segment) %d is not in 0..%d", rank,
                         dsmi_w.nseg - 1);
    }
    if (rank == dsmi_rt.rank) {
        return alloc_local(size, bs, align, out, func);
    }
    return alloc_remote(rank, size, bs, align, out, func);
}

int dsmi_heap_alloc_on(int rank, size_t size, dsm_gptr_t *out, const char *func)
{
    return heap_alloc(rank, size, ALIGN, out, func);
}

int dsm_alloc(size_t size, dsm_gptr_t *out)
{
    uint64_t b = 0;
    // The fast path: a small block from the owner's cache; sizes of 1 to 256 bytes need
    // no more of alloc_args's checks than these.
    if (dsmi_rt.up && out != NULL && size - 1 < HC_MAX - HDR &&
        dsmi_hcache_get(dsmi_hcore_small_size(size), &b)) {
        *out = dsmi_gptr(dsmi_rt.rank, b + HDR);
        return DSM_OK;
    }
    return heap_alloc(dsmi_rt.rank, size, ALIGN, out, "dsm_alloc");
}

int dsm_alloc_aligned(size_t size, size_t align, dsm_gptr_t *out)
{
    return heap_alloc(dsmi_rt.rank, size, align, out, "dsm_alloc_aligned");
}

int dsm_alloc_on(int rank, size_t size, dsm_gptr_t *out)
{
    return heap_alloc(rank, size, ALIGN, out, "dsm_alloc_on");
}

int dsm_calloc(size_t count, size_t size, dsm_gptr_t *out)
{
    if (size != 0 && count > SIZE_MAX / size) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_calloc", "%zu x %zu bytes overflows", count, size);
    }
    dsm_gptr_t g = DSM_GPTR_NULL;
    int rc = heap_alloc(dsmi_rt.rank, count * size, ALIGN, out ? &g : NULL, "dsm_calloc");
    if (rc == DSM_OK) {
        memset(dsmi_w.base + (g.bits & DSMI_OFFSET_MASK), 0, count * size);
        MPI_Win_sync(dsmi_w.win); // the zeroes reach the public copy before g is shared
        *out = g;
    }
    return rc;
}

/* The block of g, or a refusal naming why g cannot be one. */
static int free_target(dsm_gptr_t g, int *rank, uint64_t *blk)
{
    uint64_t r = g.bits >> DSM_GPTR_OFFSET_BITS, off = g.bits & DSMI_OFFSET_MASK;
    char s[48];
    if (g.bits == 0) {
        return dsmi_fail(DSM_ERR_INVALID, "dsm_free", "null global pointer");
    }
    if (r >= (uint64_t)dsmi_w.nseg || off > dsmi_w.size) {
        return dsmi_fail(DSM_ERR_INVALID, "dsm_free",
                         "%s is not in the address space (%d "
                         "segments of %zu bytes)",
                         dsm_gptr_str(g, s, sizeof s), dsmi_w.nseg, dsmi_w.size);
    }
    if (off < DSMI_HDR_SIZE + HDR) {
        return dsmi_fail(DSM_ERR_INVALID, "dsm_free",
                         "%s points into rank %d's runtime "
                         "header, not at a block",
                         dsm_gptr_str(g, s, sizeof s), (int)r);
    }
    if (off % ALIGN != 0) { // refused without a round trip: blocks are aligned
        return dsmi_fail(DSM_ERR_INVALID, "dsm_free",
                         "%s is not %u-byte aligned, so not a "
                         "block",
                         dsm_gptr_str(g, s, sizeof s), ALIGN);
    }
    *rank = (int)r;
    *blk = off - HDR;
    return DSM_OK;
}

/* The rest of dsm_free: a block the cache did not take, here or on another rank. A
 * function of its own so that the fast path does not set up the remote view's frame. */
static __attribute__((noinline)) int free_locked(dsm_gptr_t g, int rank, uint64_t b)
{
    struct dsmi_hview v;
    struct dsmi_hcache rc;
    int err, err2;
    char s[48];
    if (rank == dsmi_rt.rank) {
        if ((err = local_begin(&v, "dsm_free")) != DSM_OK) {
            return err;
        }
        err = dsmi_hcore_free(&v, b);
        err2 = local_end(&v, "dsm_free");
    } else {
        if ((err = remote_begin(&v, &rc, rank, "dsm_free")) != DSM_OK) {
            return err;
        }
        err = dsmi_hcore_defer(&v, b);
        err2 = remote_end(&v, "dsm_free");
    }
    if (err != DSM_OK) {
        return dsmi_fail(err, "dsm_free", "%s: %s", dsm_gptr_str(g, s, sizeof s), v.why);
    }
    return err2;
}

int dsm_free(dsm_gptr_t g)
{
    int rank = 0;
    uint64_t b = 0;
    DSMI_CHECK_UP("dsm_free");
    int err = free_target(g, &rank, &b);
    if (err != DSM_OK) {
        return err;
    }
    if (rank == dsmi_rt.rank && dsmi_hcache_put(b)) { // a live small block, kept for reuse
        return DSM_OK;
    }
    return free_locked(g, rank, b);
}

int dsm_usage(int rank, dsm_usage_t *out)
{
    DSMI_CHECK_UP("dsm_usage");
    if (out == NULL) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_usage", "out is NULL");
    }
    if (rank < 0 || rank >= dsmi_w.nseg) {
        return dsmi_fail(DSM_ERR_RANGE, "dsm_usage", "rank (segment) %d is not in 0..%d", rank,
                         dsmi_w.nseg - 1);
    }
    int64_t u[4];
    int rc = rank == dsmi_rt.rank ? dsmi_heap_cache_flush("dsm_usage") : DSM_OK;
    if (rc != DSM_OK) {
        return rc;
    }
    char *seg = dsmi_peer_seg_atomic(rank);
    if (seg != NULL) { // direct mode: atomic loads against the holders' atomic adds
        for (int i = 0; i < 4; i++) {
            u[i] = __atomic_load_n((int64_t *)(seg + U_IN_USE) + i, __ATOMIC_SEQ_CST);
        }
    } else {
        // Element-wise atomic against the holders' MPI_Accumulate: no torn counter.
        DSMI_MPI("dsm_usage", MPI_Get_accumulate(NULL, 0, MPI_INT64_T, u, 4, MPI_INT64_T,
                                                 dsmi_host(rank), hdr_disp(rank, U_IN_USE), 4,
                                                 MPI_INT64_T, MPI_NO_OP, dsmi_w.win));
        dsmi_count(&dsmi_stat.atomics, 1);
        rc = dsmi_rma_flush(dsmi_host(rank), "dsm_usage");
    }
    if (rc == DSM_OK) {
        *out =
            (dsm_usage_t){(uint64_t)u[0], (uint64_t)u[1], (uint64_t)u[2], (uint64_t)u[3], heap_cap};
    }
    return rc;
}

/* ---- collective symmetric allocation ---- */

/* One locked local step of dsm_alloc_all: find a fit (do_claim false) or claim *y. */
static int sym_step(bool do_claim, uint64_t from, uint64_t bs, uint64_t *y)
{
    struct dsmi_hview v;
    int rc = local_begin(&v, "dsm_alloc_all");
    if (rc != DSM_OK) {
        return rc;
    }
    int got = DSM_OK;
    if (do_claim) {
        got = dsmi_hcore_claim(&v, *y, bs);
    } else {
        *y = dsmi_hcore_fit(&v, from, bs);
    }
    rc = local_end(&v, "dsm_alloc_all");
    return rc != DSM_OK ? rc : got;
}

/* Max over ranks of each of k <= 2 values and of their negations (so also each min),
 * with one allreduce. */
static int minmax(const int64_t *a, int k, int64_t *mx, int64_t *mn)
{
    int64_t in[4] = {0}, outv[4] = {0}; // zeroed: gcc -O1 -fsanitize sees a false use
    for (int i = 0; i < k; i++) {
        in[2 * i] = a[i], in[2 * i + 1] = -a[i];
    }
    DSMI_MPI("dsm_alloc_all", MPI_Allreduce(in, outv, 2 * k, MPI_INT64_T, MPI_MAX, dsmi_rt.comm));
    for (int i = 0; i < k; i++) {
        mx[i] = outv[2 * i], mn[i] = -outv[2 * i + 1];
    }
    return DSM_OK;
}

/* This rank's lowest fit at or above from, as the allreduce carries it (INT64_MAX: none,
 * also when the step failed here: then every rank ends with DSM_ERR_NOMEM, not a hang). */
static int64_t propose(uint64_t from, uint64_t bs)
{
    uint64_t y = UINT64_MAX;
    if (sym_step(false, from, bs, &y) != DSM_OK || y == UINT64_MAX) {
        return INT64_MAX;
    }
    return (int64_t)y;
}

/*
 * Ranks agree on the lowest offset that is free on all of them: each proposes its
 * lowest fit at or above the current candidate, the maximum becomes the next candidate,
 * until all propose the same one; then all claim it. A remote allocation may take the
 * range between the search and the claim: then the claim is undone everywhere and the
 * search goes on above it. Every rank takes the same branch (allreduce results).
 * mx, mn: the first round's proposals (made with the size check, one allreduce less).
 */
static int sym_search(uint64_t bs, int64_t mx, int64_t mn, uint64_t *at)
{
    for (int round = 0; round < 256 && mx != INT64_MAX; round++) {
        uint64_t from = (uint64_t)mx, y = from;
        if (mn == mx) {
            int64_t rc = sym_step(true, 0, bs, &y), all, least;
            if (minmax(&rc, 1, &all, &least) != DSM_OK) {
                return DSM_ERR_MPI;
            }
            if (all == DSM_OK) {
                *at = y;
                return DSM_OK;
            }
            if (rc == DSM_OK && dsm_free(dsmi_gptr(dsmi_rt.rank, y + HDR)) != DSM_OK) {
                return DSM_ERR_INTERNAL;
            }
            from = y + ALIGN;
        }
        int64_t p = propose(from, bs);
        if (minmax(&p, 1, &mx, &mn) != DSM_OK) {
            return DSM_ERR_MPI;
        }
    }
    return DSM_ERR_NOMEM;
}

int dsm_alloc_all(size_t size, dsm_gptr_t *out)
{
    uint64_t bs = 0, y = 0;
    DSMI_CHECK_UP("dsm_alloc_all");
    int rc = alloc_args(size, ALIGN, out, &bs, "dsm_alloc_all");
    if (rc == DSM_OK) { // cached blocks would hide offsets that are free in truth
        rc = dsmi_heap_cache_flush("dsm_alloc_all");
    }
    int64_t v[2] = {rc == DSM_OK ? (int64_t)size : -1, INT64_MAX}, mx[2], mn[2];
    v[1] = rc == DSM_OK ? propose(DSMI_HDR_SIZE, bs) : INT64_MAX;
    if (minmax(v, 2, mx, mn) != DSM_OK) {
        return DSM_ERR_MPI;
    }
    if (rc != DSM_OK || mn[0] != mx[0]) {
        return rc != DSM_OK ? rc
                            : dsmi_fail(DSM_ERR_ARG, "dsm_alloc_all",
                                        "ranks asked for different sizes (%lld to %lld "
                                        "bytes) or one failed its checks",
                                        (long long)mn[0], (long long)mx[0]);
    }
    rc = sym_search(bs, mx[1], mn[1], &y);
    if (rc == DSM_ERR_NOMEM) {
        dsm_usage_t u = {0};
        dsm_usage(dsmi_rt.rank, &u);
        return dsmi_fail(rc, "dsm_alloc_all",
                         "no offset has %zu free bytes on every rank "
                         "(this rank: %llu bytes free, largest free block %llu)",
                         size, (unsigned long long)u.free, (unsigned long long)u.largest_free);
    }
    if (rc == DSM_OK) {
        *out = dsmi_gptr(dsmi_rt.rank, y + HDR);
    }
    return rc;
}

int dsm_free_all(dsm_gptr_t g)
{
    DSMI_CHECK_UP("dsm_free_all");
    uint64_t off = g.bits & DSMI_OFFSET_MASK;
    int64_t a = g.bits == 0 ? -1 : (int64_t)off, mx = 0, mn = 0;
    int rc = minmax(&a, 1, &mx, &mn);
    if (rc != DSM_OK) {
        return rc;
    }
    if (mx != mn || mn < 0) {
        return dsmi_fail(DSM_ERR_INVALID, "dsm_free_all",
                         "%s (offsets 0x%llx to 0x%llx "
                         "across ranks)",
                         mn < 0 ? "a rank passed a null pointer" : "ranks passed different offsets",
                         (unsigned long long)mn, (unsigned long long)mx);
    }
    int64_t r = DSMI_CALL_AS("dsm_free_all", dsm_free(dsmi_gptr(dsmi_rt.rank, off)));
    int rc2 = minmax(&r, 1, &mx, &mn);
    if (r == DSM_OK && rc2 == DSM_OK && mx != DSM_OK) {
        return dsmi_fail((int)mx, "dsm_free_all", "another rank could not free offset 0x%llx",
                         (unsigned long long)off);
    }
    return r != DSM_OK ? (int)r : rc2;
}

/* ---- the runtime contract ---- */

void dsmi_heap_format_slot(int k)
{
    char *base = dsmi_slot_base(k);
    const struct dsmi_ident *id = (const struct dsmi_ident *)(base + DSMI_HDR_IDENT_OFF);
    struct dsmi_hview v = {.base = base, .seg = dsmi_w.size};
    // A salt per run and segment: tags of an earlier run's blocks never validate.
    uint64_t seg = (uint64_t)dsmi_slot_seg(k);
    dsmi_hcore_format(&v, id->launch_id ^ (seg * UINT64_C(0x9E3779B97F4A7C15)));
    heap_cap = v.hi - v.lo;
    if (base == dsmi_w.base) {
        dsmi_hcache_forget();
    }
}

/* The owner's cache gets at most 1/16 of the heap, so that remote allocations and large
 * ones find what it holds free elsewhere. Its lists take a try-lock whenever threads
 * may call at once: DSM_THREADS=multiple, or an MPI that a program initialised itself
 * at MPI_THREAD_MULTIPLE (the heap lock made the heap safe for those before the cache). */
static void cache_start(void)
{
    uint64_t limit = dsmi_rt.cfg.HEAP_CACHE;
    int provided = MPI_THREAD_SINGLE;
    MPI_Query_thread(&provided);
    limit = limit > heap_cap / 16 ? heap_cap / 16 : limit;
    dsmi_hcache_start(limit, dsmi_rt.cfg.THREADS == DSMI_THREADS_MULTIPLE ||
                                 provided == MPI_THREAD_MULTIPLE);
}

int dsmi_heap_cache_flush(const char *func)
{
    struct dsmi_hview v;
    if (dsmi_hcache_bytes() == 0) {
        return DSM_OK;
    }
    int rc = local_begin(&v, func);
    if (rc != DSM_OK) {
        return rc;
    }
    dsmi_hcache_return(&v);
    return local_end(&v, func);
}

int dsmi_heap_start(void)
{
    for (int k = 0; k < dsmi_w.nslots; k++) { // hosted segments too (win.h)
        dsmi_heap_format_slot(k);
    }
    cache_start();
    // Our stores before any other rank's first get (after dsm_init's allreduce).
    DSMI_MPI("dsm_init", MPI_Win_sync(dsmi_w.win));
    return DSM_OK;
}

int dsmi_heap_stop(void)
{
    dsmi_hcache_start(0, false); // cached blocks die with the segment
    heap_cap = 0;
    return DSM_OK;
}

/* Everything above top is wilderness, whose bytes mean nothing. Read when the heap
 * is quiet (checkpoints are collective). */
uint64_t dsmi_heap_extent_at(const char *base)
{
    uint64_t top;
    memcpy(&top, base + R_TOP, 8);
    return top;
}

uint64_t dsmi_heap_extent(void)
{
    return dsmi_heap_extent_at(dsmi_w.base);
}

int dsmi_heap_reload(void)
{
    return dsmi_heap_reload_at(dsmi_w.base);
}

int dsmi_heap_reload_at(char *base)
{
    struct dsmi_hview v = {.base = base, .seg = dsmi_w.size};
    struct dsmi_hwalk w = {{0}, 0};
    int rc = dsmi_hcore_roots_valid(&v);
    if (rc == DSM_OK) {
        rc = dsmi_hcore_walk(&v, &w);
    }
    if (base == dsmi_w.base) {
        dsmi_hcache_forget(); // its lists described the bytes that were replaced
    }
    if (rc != DSM_OK) {
        return dsmi_fail(DSM_ERR_CORRUPT, "dsm_init", "restored heap is invalid: %s", v.why);
    }
    if (w.r.blocks != 0) { // cached blocks in an image belong to no cache now: free them
        dsmi_hcore_uncache_all(&v);
        dsmi_hcore_walk(&v, &w);
    }
    // Derived state: the lock (no holder or waiter survives a restore: no ticket out, no
    // mark) and the usage counters.
    memset(base + L_NEXT, 0, L_END - L_NEXT);
    st(&v, R_LOCK, 0);
    st(&v, U_IN_USE, w.r.in_use);
    st(&v, U_FREE, w.r.free);
    st(&v, U_LARGEST, w.r.largest);
    st(&v, U_BLOCKS, w.r.blocks);
    heap_cap = v.hi - v.lo;
    DSMI_MPI("dsm_init", MPI_Win_sync(dsmi_w.win));
    return DSM_OK;
}

int dsmi_heap_lock_hold(bool take)
{
    unsigned ops = 0;
    const int64_t none[4] = {0, 0, 0, 0};
    return take ? lock_take(dsmi_rt.rank, "dsmi_heap_lock_hold", &ops)
                : release(dsmi_rt.rank, none, "dsmi_heap_lock_hold");
}

int dsmi_heap_check(struct dsmi_heap_report *r)
{
    struct dsmi_hview v;
    DSMI_CHECK_UP("dsmi_heap_check");
    int rc = dsmi_heap_cache_flush("dsmi_heap_check");
    if (rc == DSM_OK) {
        rc = local_begin(&v, "dsmi_heap_check");
    }
    if (rc != DSM_OK) {
        return rc;
    }
    int bad = dsmi_hcore_check(&v, r);
    if ((rc = local_end(&v, "dsmi_heap_check")) != DSM_OK) {
        return rc;
    }
    if (bad != DSM_OK) {
        return dsmi_fail(bad, "dsmi_heap_check", "%s", v.why);
    }
    return DSM_OK;
}
