/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * dsm_mutex: an MCS queue lock (Mellor-Crummey and Scott) over MPI atomics.
 *
 * A mutex is one 64-bit word anywhere in user memory: the queue's tail, holding
 * DSMI_QID_FREE when free or the identity (rank, slot) of the last queued node. Each
 * acquiring thread takes a queue node in its OWN segment (sync.c's pool), so waiting is
 * a poll of local memory and the only remote traffic is one swap on the tail, one write
 * into the predecessor's node and one write into the successor's node.
 *
 *   lock:   CAS tail FREE -> me (the uncontended path: one atomic); when that fails,
 *           swap tail <- me gives the predecessor; write me into pred.NEXT, then poll
 *           my FLAG until it reads GRANTED (direct mode: a spin on local memory, see
 *           dsmi_wait_step). FIFO: the swap order is the service order.
 *   unlock: complete all RMA (the release fence); if my NEXT is 0, CAS tail me -> FREE;
 *           if that fails a successor is between its swap and its link: wait for NEXT.
 *           Then CAS succ.FLAG WAITING -> GRANTED.
 *
 * Timeouts (DSM_LOCK_TIMEOUT): a waiter that gives up CASes its own FLAG WAITING ->
 * ABANDONED. Exactly one of that CAS and the predecessor's hand-over CAS succeeds. If
 * the waiter wins, its node stays in the queue as a stand-in: whoever is granted the
 * lock through it (the releasing predecessor, finding ABANDONED) releases it on the
 * waiter's behalf right away, exactly as above, then marks it RECLAIMABLE; the owner's
 * pool reuses the slot only after that. If the hand-over won, the waiter holds the lock
 * and returns DSM_OK. So a timed-out waiter never leaves a hole in the queue and the
 * lock stays FIFO and consistent.
 *
 * Visibility: the release fence (MPI_Win_flush_all + MPI_Win_sync) completes every put
 * of the critical section at its target before the tail or FLAG write that passes the
 * lock on; the acquirer reads that word with an MPI atomic and then calls MPI_Win_sync,
 * so its gets and its local loads see the previous holder's writes. In direct mode
 * both fences are one CPU fence (dsmi_direct_fence) and the atomics CPU atomics.
 */
#include <stdio.h>

#include "rma.h"
#include "sync.h"

/* Plain stores to our own node's diagnostic words (see sync.h). */
static void diag_set(unsigned slot, uint64_t state, uint64_t pred, uint64_t lock)
{
    *dsmi_qn_local(slot, QN_DIAG_STATE) = state;
    *dsmi_qn_local(slot, QN_DIAG_PRED) = pred;
    *dsmi_qn_local(slot, QN_DIAG_LOCK) = lock;
    *dsmi_qn_local(slot, QN_DIAG_THREAD) = (uint64_t)dsmi_thread_id();
}

/* Read node q's diagnostic words (state, pred, lock, thread); best effort. */
static bool diag_get(uint64_t q, uint64_t d[4], const char *func)
{
    return dsmi_rma_get(d, dsmi_qn_word(q, QN_DIAG_STATE), 4 * sizeof(uint64_t), false, func) ==
           DSM_OK;
}

void dsmi_mutex_describe(dsm_gptr_t g, char *buf, size_t len, const char *func)
{
    uint64_t tail = 0, d[4];
    if (dsmi_sync_load(g, true, &tail, func) != DSM_OK) {
        snprintf(buf, len, "in an unknown state");
        return;
    }
    if (!dsmi_qid_valid(tail)) {
        snprintf(buf, len, "not initialised (word 0x%llx)", (unsigned long long)tail);
        return;
    }
    if (tail == DSMI_QID_FREE) {
        snprintf(buf, len, "free");
        return;
    }
    // Walk from the tail towards the head through each waiter's predecessor.
    uint64_t q = tail;
    for (int i = 0; i < 64 && diag_get(q, d, func) && d[2] == g.bits; i++) {
        if (d[0] == QD_HOLDING) {
            snprintf(buf, len, "held by rank %d thread %llu", dsmi_qid_rank(q),
                     (unsigned long long)d[3]);
            return;
        }
        if (!dsmi_qid_valid(d[1]) || d[1] == DSMI_QID_FREE) {
            break;
        }
        q = d[1];
    }
    snprintf(buf, len, "held (the last in its queue is rank %d slot %u)", dsmi_qid_rank(tail),
             dsmi_qid_slot(tail));
}

static int timeout_error(dsm_gptr_t g, uint64_t pred, const char *what, const char *func)
{
    char name[48], holder[160];
    uint64_t d[4] = {0};
    dsm_gptr_str(g, name, sizeof name);
    diag_get(pred, d, func);
    dsmi_mutex_describe(g, holder, sizeof holder, func);
    return dsmi_fail(DSM_ERR_TIMEOUT, func,
                     "timed out after %ld s (DSM_LOCK_TIMEOUT) waiting for %s %s: thread %d of "
                     "this rank is queued behind rank %d thread %llu; the %s is %s",
                     dsmi_rt.cfg.LOCK_TIMEOUT, what, name, dsmi_thread_id(), dsmi_qid_rank(pred),
                     (unsigned long long)d[3], what, holder);
}

/* Link node me behind pred and poll our FLAG until the lock is handed to us. */
static int wait_in_queue(dsm_gptr_t g, uint64_t me, uint64_t pred, const char *what,
                         const char *func)
{
    *dsmi_qn_local(dsmi_qid_slot(me), QN_DIAG_PRED) = pred;
    int rc = dsmi_sync_store(dsmi_qn_word(pred, QN_NEXT), false, me, func);
    dsm_gptr_t flag = dsmi_qn_word(me, QN_FLAG);
    struct dsmi_wait w;
    dsmi_wait_begin(&w);
    while (rc == DSM_OK) {
        uint64_t f = QF_WAITING;
        if ((rc = dsmi_qn_poll(dsmi_qid_slot(me), QN_FLAG, &f, func)) != DSM_OK ||
            f == QF_GRANTED) {
            return rc;
        }
        if (dsmi_wait_step(&w)) { // give up, unless the hand-over beats us to the FLAG
            if ((rc = dsmi_sync_cas(flag, false, QF_WAITING, QF_ABANDONED, &f, func)) != DSM_OK) {
                return rc;
            }
            return f == QF_GRANTED ? DSM_OK : timeout_error(g, pred, what, func);
        }
    }
    return rc;
}

static int not_initialised(dsm_gptr_t g, uint64_t word, const char *what, const char *func)
{
    char name[48];
    return dsmi_fail(DSM_ERR_STATE, func,
                     "%s %s is not initialised (its word is 0x%llx; call "
                     "dsm_%s_init first)",
                     what, dsm_gptr_str(g, name, sizeof name), (unsigned long long)word, what);
}

/* Join the queue after the fast CAS found a valid tail: swap ourselves in. Finding it
 * FREE (released meanwhile), we hold the lock at once; else we wait behind the old
 * tail and *granted tells so. */
static int enqueue(dsm_gptr_t g, uint64_t me, bool *granted, const char *what, const char *func)
{
    uint64_t pred = 0, back = 0;
    int rc = dsmi_sync_fop(g, true, MPI_REPLACE, me, &pred, func);
    if (rc != DSM_OK) {
        return rc;
    }
    if (pred == DSMI_QID_FREE) { // released between our CAS and our swap
        *granted = false;
        return DSM_OK;
    }
    if (!dsmi_qid_valid(pred)) { // destroyed under us: put back what we overwrote
        dsmi_sync_cas(g, true, me, pred, &back, func);
        return not_initialised(g, pred, what, func);
    }
    *granted = true;
    rc = wait_in_queue(g, me, pred, what, func);
    if (rc == DSM_ERR_TIMEOUT) {
        dsmi_qn_abandon(dsmi_qid_slot(me)); // the queue owns the node now
        return rc;
    }
    return rc;
}

int dsmi_mutex_acquire(dsm_gptr_t g, bool try_only, unsigned *slot, bool *granted, const char *what,
                       const char *func)
{
    unsigned s = 0;
    int rc = dsmi_qn_take(&s, func);
    if (rc != DSM_OK) {
        return rc;
    }
    uint64_t me = dsmi_qid(dsmi_rt.rank, s), old = 0;
    diag_set(s, QD_WAITING, 0, g.bits);
    /* CAS first, swap only behind a valid tail: swapping straight into a destroyed or
     * uninitialised word let a second locker find the first one's node there and
     * wait behind it for ever (test_sync's errors case across nodes). */
    rc = dsmi_sync_cas(g, true, DSMI_QID_FREE, me, &old, func);
    *granted = false;
    if (rc == DSM_OK && old != DSMI_QID_FREE) {
        if (!dsmi_qid_valid(old)) {
            rc = not_initialised(g, old, what, func);
        } else if (try_only) {
            rc = DSM_ERR_BUSY; // a result, not a failure: not logged
        } else {
            rc = enqueue(g, me, granted, what, func);
            if (rc == DSM_ERR_TIMEOUT) {
                return rc; // the slot was abandoned, not freed
            }
        }
    }
    if (rc != DSM_OK) {
        dsmi_qn_put(s);
        return rc;
    }
    *dsmi_qn_local(s, QN_DIAG_STATE) = QD_HOLDING;
    *slot = s;
    return DSM_OK;
}

/* Node x is done with: recycle our own, or mark an abandoned one reclaimable. */
static int retire(uint64_t x, bool own, bool granted, bool linked, const char *func)
{
    int rc = DSM_OK;
    if (!own) {
        return dsmi_sync_store(dsmi_qn_word(x, QN_FLAG), false, QF_RECLAIMABLE, func);
    }
    if (dsmi_direct()) { // our own node's words, CPU atomics in direct mode: local stores
        unsigned s = dsmi_qid_slot(x);
        __atomic_store_n(dsmi_qn_local(s, QN_FLAG), QF_WAITING, __ATOMIC_RELAXED);
        __atomic_store_n(dsmi_qn_local(s, QN_NEXT), 0, __ATOMIC_RELAXED);
        dsmi_qn_put(s); // no rank sees the node before the swap that next queues it
        return DSM_OK;
    }
    if (granted) {
        rc = dsmi_sync_store(dsmi_qn_word(x, QN_FLAG), false, QF_WAITING, func);
    }
    if (linked && rc == DSM_OK) {
        rc = dsmi_sync_store(dsmi_qn_word(x, QN_NEXT), false, 0, func);
    }
    dsmi_qn_put(dsmi_qid_slot(x));
    return rc;
}

/* The successor of x, once it has linked itself (0 when the CAS freed the lock). */
static int successor(dsm_gptr_t g, uint64_t x, uint64_t *next, const char *func)
{
    dsm_gptr_t nw = dsmi_qn_word(x, QN_NEXT);
    uint64_t old = 0;
    int rc = dsmi_qid_rank(x) == dsmi_rt.rank ? dsmi_qn_poll(dsmi_qid_slot(x), QN_NEXT, next, func)
                                              : dsmi_sync_load(nw, false, next, func);
    if (rc != DSM_OK || *next != 0) {
        return rc;
    }
    if ((rc = dsmi_sync_cas(g, true, x, DSMI_QID_FREE, &old, func)) != DSM_OK || old == x) {
        return rc; // *next == 0: the lock is free
    }
    /* A successor swapped the tail but has not written our NEXT yet. It is between two
     * of its own atomics inside this library, so this wait is short and unbounded by
     * design: giving up here would strand it. */
    struct dsmi_wait w;
    dsmi_wait_begin(&w);
    w.limit_ns = 0;
    while ((rc = dsmi_sync_load(nw, false, next, func)) == DSM_OK && *next == 0) {
        dsmi_wait_step(&w);
    }
    return rc;
}

/* The fence of an acquire (release false) or a release. In direct mode the lock words
 * are sequentially consistent CPU atomics (and the FLAG poll an acquire load), which
 * order the critical section's loads and stores by themselves, and a direct put ends
 * with its own fence: nothing is left for a fence to do. */
static int lock_fence(bool release, const char *func)
{
    return dsmi_direct() ? DSM_OK : dsmi_sync_fence(release, func);
}

int dsmi_mutex_release(dsm_gptr_t g, unsigned slot, bool granted, const char *func)
{
    int rc = lock_fence(true, func);
    uint64_t x = dsmi_qid(dsmi_rt.rank, slot), next = 0, f = 0;
    bool own = true;
    while (rc == DSM_OK) {
        if ((rc = successor(g, x, &next, func)) != DSM_OK) {
            break;
        }
        if (next == 0) {
            return retire(x, own, granted, false, func);
        }
        rc = dsmi_sync_cas(dsmi_qn_word(next, QN_FLAG), false, QF_WAITING, QF_GRANTED, &f, func);
        int rrc = retire(x, own, granted, true, func);
        if (rc == DSM_OK && f != QF_ABANDONED) {
            return rrc;
        }
        x = next; // its waiter gave up: release on its behalf, then go on down the queue
        own = false;
        dsmi_log(DSMI_LOG_DEBUG, "%s: releasing the abandoned queue node of rank %d slot %u", func,
                 dsmi_qid_rank(x), dsmi_qid_slot(x));
    }
    return rc;
}

/* ---- the public API ---- */

static int already_held(dsm_gptr_t g, const char *what, const char *func)
{
    char name[48];
    return dsmi_fail(DSM_ERR_STATE, func,
                     "%s %s is already held by this thread (rank %d "
                     "thread %d): relocking it would deadlock",
                     what, dsm_gptr_str(g, name, sizeof name), dsmi_rt.rank, dsmi_thread_id());
}

static int lock_common(dsm_gptr_t g, bool try_only, const char *func)
{
    DSMI_CHECK_UP(func);
    struct dsmi_held_set *hs = dsmi_held_mine();
    if (dsmi_held_lookup(hs, g.bits) != NULL) {
        return already_held(g, "mutex", func);
    }
    struct dsmi_held h = {.lock = g.bits, .kind = DSMI_HELD_MUTEX};
    unsigned slot = 0;
    bool granted = false;
    int rc = dsmi_mutex_acquire(g, try_only, &slot, &granted, "mutex", func);
    if (rc != DSM_OK) {
        return rc;
    }
    h.slot = slot;
    h.granted = granted;
    if ((rc = dsmi_held_push(hs, &h, func)) != DSM_OK) {
        dsmi_mutex_release(g, slot, granted, func);
        return rc;
    }
    return lock_fence(false, func);
}

int dsm_mutex_lock(dsm_gptr_t m)
{
    return lock_common(m, false, "dsm_mutex_lock");
}

int dsm_mutex_trylock(dsm_gptr_t m)
{
    return lock_common(m, true, "dsm_mutex_trylock");
}

int dsm_mutex_unlock(dsm_gptr_t m)
{
    const char *func = "dsm_mutex_unlock";
    DSMI_CHECK_UP(func);
    struct dsmi_held_set *hs = dsmi_held_mine();
    struct dsmi_held *h = dsmi_held_lookup(hs, m.bits);
    if (h == NULL || h->kind != DSMI_HELD_MUTEX) {
        char name[48], holder[160];
        dsmi_mutex_describe(m, holder, sizeof holder, func);
        return dsmi_fail(DSM_ERR_STATE, func,
                         "mutex %s is not held by this thread (rank %d "
                         "thread %d); it is %s",
                         dsm_gptr_str(m, name, sizeof name), dsmi_rt.rank, dsmi_thread_id(),
                         holder);
    }
    unsigned slot = h->slot;
    bool granted = h->granted;
    dsmi_held_drop(hs, h);
    return dsmi_mutex_release(m, slot, granted, func);
}

int dsm_mutex_init(dsm_gptr_t m)
{
    const char *func = "dsm_mutex_init";
    DSMI_CHECK_UP(func);
    uint64_t old = 0, seen = 0;
    int rc = dsmi_sync_load(m, true, &old, func);
    if (rc != DSM_OK) {
        return rc;
    }
    if (dsmi_qid_valid(old) && old != DSMI_QID_FREE) {
        char name[48], holder[160];
        dsmi_mutex_describe(m, holder, sizeof holder, func);
        return dsmi_fail(DSM_ERR_STATE, func,
                         "mutex %s is in use (%s): unlock and destroy it "
                         "first",
                         dsm_gptr_str(m, name, sizeof name), holder);
    }
    if ((rc = dsmi_sync_cas(m, true, old, DSMI_QID_FREE, &seen, func)) != DSM_OK) {
        return rc;
    }
    return seen == old ? DSM_OK
                       : dsmi_fail(DSM_ERR_STATE, func,
                                   "mutex word changed during init: "
                                   "another rank is using it");
}

int dsm_mutex_destroy(dsm_gptr_t m)
{
    const char *func = "dsm_mutex_destroy";
    DSMI_CHECK_UP(func);
    char name[48], holder[160];
    dsm_gptr_str(m, name, sizeof name);
    if (dsmi_held_find(m.bits) != NULL) {
        return dsmi_fail(DSM_ERR_STATE, func,
                         "mutex %s is held by this thread (rank %d "
                         "thread %d): unlock it first",
                         name, dsmi_rt.rank, dsmi_thread_id());
    }
    uint64_t old = 0;
    int rc = dsmi_sync_cas(m, true, DSMI_QID_FREE, 0, &old, func); // 0: not a lock any more
    if (rc != DSM_OK || old == DSMI_QID_FREE) {
        return rc;
    }
    if (!dsmi_qid_valid(old)) {
        return not_initialised(m, old, "mutex", func);
    }
    dsmi_mutex_describe(m, holder, sizeof holder, func);
    return dsmi_fail(DSM_ERR_STATE, func, "cannot destroy mutex %s: it is %s", name, holder);
}

int dsm_mutex_create(int rank, dsm_gptr_t *out)
{
    dsm_gptr_t m = DSM_GPTR_NULL;
    if (out == NULL) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_mutex_create", "out is NULL");
    }
    // 16-byte aligned, so 8 is met
    int rc = DSMI_CALL_AS("dsm_mutex_create", dsm_alloc_on(rank, DSM_MUTEX_SIZE, &m));
    if (rc != DSM_OK) {
        return rc;
    }
    if ((rc = DSMI_CALL_AS("dsm_mutex_create", dsm_mutex_init(m))) != DSM_OK) {
        dsm_free(m);
        return rc;
    }
    *out = m;
    return DSM_OK;
}

int dsm_mutex_free(dsm_gptr_t m)
{
    // dsm_mutex_destroy refuses a held or awaited mutex: then nothing is freed.
    int rc = DSMI_CALL_AS("dsm_mutex_free", dsm_mutex_destroy(m));
    return rc != DSM_OK ? rc : DSMI_CALL_AS("dsm_mutex_free", dsm_free(m));
}
