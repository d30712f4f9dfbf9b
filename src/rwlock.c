/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * dsm_rwlock: a phase-fair reader-writer lock (Brandenburg and Anderson's PF-T lock)
 * whose writers queue on an MCS mutex, as in the RMA-RW lock of Schmid, Besta and
 * Hoefler (HPDC'16), which also puts writers in an MCS queue and readers on counters.
 *
 * Four 64-bit words (DSM_RWLOCK_SIZE), all MPI_UINT64_T atomics:
 *   +0  WQ     the writers' MCS tail (mutex.c)
 *   +8  RIN    magic << 48 | readers that entered << 8 | writer bits (PRES 2, PHASE 1)
 *   +16 ROUT   readers that left << 8
 *   +24 WSEQ   writers so far; its low bit is the next writer's phase
 *
 * Reader: fetch-add RIN; if the writer bits it got back are nonzero, a writer is present
 * and the reader waits until those bits change (that writer has left; a next writer
 * shows the other phase bit, so the reader cannot miss the gap). Writer: take WQ, set
 * PRES|phase in RIN with a fetch-add, whose result counts the readers that came first;
 * wait until ROUT reaches that count. Leaving: readers add to ROUT, the writer clears
 * its bits and releases WQ.
 *
 * Policy, and why: phase-fair. A reader waits for at most one writer; a writer waits
 * for at most the readers already in plus the writers queued before it (FIFO), so
 * neither side starves, and readers that arrive during a write phase all enter together
 * after it. Writer preference (a writer blocks newer readers) alone would starve
 * readers under a stream of writers; reader preference would starve writers. RMA-RW
 * tunes the same trade-off with thresholds; phase-fairness needs no tuning and keeps
 * the reader path to one atomic on the uncontended path.
 *
 * A reader that gives up (timeout, or tryrdlock finding a writer) removes its count
 * with a CAS that succeeds only while the same writer phase is still on: then no later
 * writer has counted it. If the phase has moved on, the reader has been admitted and
 * simply takes the lock. Visibility: as for mutexes (sync.c's fences).
 */
#include <stdio.h>

#include "sync.h"

#define RW_MAGIC UINT64_C(0x7277) // "rw"
#define RINC UINT64_C(0x100)
#define WBITS UINT64_C(3)
#define PRES UINT64_C(2)
#define COUNT(w) (((w) >> 8) & ((UINT64_C(1) << 40) - 1))

enum { WQ = 0, RIN = 8, ROUT = 16, WSEQ = 24 };

static dsm_gptr_t word(dsm_gptr_t g, unsigned off)
{
    return (dsm_gptr_t){g.bits + off}; // stays in the segment: translate checks each access
}

static int rw_fail(int code, dsm_gptr_t g, const char *func, const char *why)
{
    char name[48];
    return dsmi_fail(code, func, "rwlock %s %s", dsm_gptr_str(g, name, sizeof name), why);
}

/* A reader that got old back from its fetch-add and is not admitted yet: take our count
 * back while the writer phase wb is still on. *admitted when the phase moved on. */
static int reader_withdraw(dsm_gptr_t g, uint64_t wb, bool *admitted, const char *func)
{
    uint64_t cur = 0, seen = 0;
    int rc = dsmi_sync_load(word(g, RIN), true, &cur, func);
    while (rc == DSM_OK) {
        if ((cur & WBITS) != wb) {
            *admitted = true;
            return DSM_OK;
        }
        if ((rc = dsmi_sync_cas(word(g, RIN), true, cur, cur - RINC, &seen, func)) != DSM_OK ||
            seen == cur) {
            break;
        }
        cur = seen;
    }
    *admitted = false;
    return rc;
}

/* Enter as a reader; with try_only never wait (DSM_ERR_BUSY). */
static int read_acquire(dsm_gptr_t g, bool try_only, const char *func)
{
    uint64_t old = 0, cur = 0;
    int rc = dsmi_sync_fop(word(g, RIN), true, MPI_SUM, RINC, &old, func);
    if (rc != DSM_OK) {
        return rc;
    }
    if ((old >> 48) != RW_MAGIC) { // not a lock: undo our add, change nothing
        dsmi_sync_fop(word(g, RIN), true, MPI_SUM, (uint64_t)0 - RINC, NULL, func);
        return rw_fail(DSM_ERR_STATE, g, func, "is not initialised (call dsm_rwlock_init)");
    }
    uint64_t wb = old & WBITS;
    struct dsmi_wait w;
    dsmi_wait_begin(&w);
    while (wb != 0) {
        if ((rc = dsmi_sync_load(word(g, RIN), true, &cur, func)) != DSM_OK) {
            return rc;
        }
        if ((cur & WBITS) != wb) {
            break; // that writer has left
        }
        if (try_only || dsmi_wait_step(&w)) {
            bool admitted = false;
            if ((rc = reader_withdraw(g, wb, &admitted, func)) != DSM_OK || admitted) {
                return rc;
            }
            return try_only ? DSM_ERR_BUSY
                            : rw_fail(DSM_ERR_TIMEOUT, g, func,
                                      "timed out (DSM_LOCK_TIMEOUT) waiting as a reader: a "
                                      "writer holds it");
        }
    }
    return DSM_OK;
}

/* Wait until the readers that entered before us (count in) have left. */
static int wait_readers(dsm_gptr_t g, uint64_t in, const char *func)
{
    uint64_t out = 0;
    struct dsmi_wait w;
    dsmi_wait_begin(&w);
    for (;;) {
        int rc = dsmi_sync_load(word(g, ROUT), true, &out, func);
        if (rc != DSM_OK || COUNT(out) == COUNT(in)) {
            return rc;
        }
        if (dsmi_wait_step(&w)) {
            char why[160];
            snprintf(why, sizeof why,
                     "timed out (DSM_LOCK_TIMEOUT) waiting as a writer for "
                     "%llu reader(s) to leave",
                     (unsigned long long)(COUNT(in) - COUNT(out)));
            return rw_fail(DSM_ERR_TIMEOUT, g, func, why);
        }
    }
}

/* Enter as a writer: the writers' queue, then our phase bits, then the readers drain. */
static int write_acquire(dsm_gptr_t g, bool try_only, struct dsmi_held *h, const char *func)
{
    unsigned slot = 0;
    bool granted = false;
    int rc = dsmi_mutex_acquire(word(g, WQ), try_only, &slot, &granted, "rwlock", func);
    if (rc != DSM_OK) {
        return rc;
    }
    /* The phase bit must alternate between consecutive writers that set their bits (a
     * reader waits for the bits to change), so WSEQ counts exactly those writers. Only
     * the holder of WQ touches it. */
    uint64_t seq = 0, in = 0, cur = 0, out = 0;
    rc = try_only ? dsmi_sync_load(word(g, WSEQ), true, &seq, func)
                  : dsmi_sync_fop(word(g, WSEQ), true, MPI_SUM, 1, &seq, func);
    uint64_t wb = PRES | (seq & 1);
    if (rc == DSM_OK && try_only) { // set our bits only if no reader is in
        rc = dsmi_sync_load(word(g, RIN), true, &cur, func);
        if (rc == DSM_OK) {
            rc = dsmi_sync_load(word(g, ROUT), true, &out, func);
        }
        if (rc == DSM_OK && COUNT(cur) == COUNT(out) && (cur & WBITS) == 0) {
            rc = dsmi_sync_cas(word(g, RIN), true, cur, cur | wb, &in, func);
            rc = rc == DSM_OK && in != cur ? DSM_ERR_BUSY : rc;
        } else {
            rc = rc == DSM_OK ? DSM_ERR_BUSY : rc;
        }
        if (rc == DSM_OK) {
            rc = dsmi_sync_fop(word(g, WSEQ), true, MPI_SUM, 1, NULL, func);
        }
    } else if (rc == DSM_OK) {
        rc = dsmi_sync_fop(word(g, RIN), true, MPI_SUM, wb, &in, func);
        rc = rc == DSM_OK ? wait_readers(g, in, func) : rc;
        if (rc != DSM_OK) { // let the readers that queued behind our bits in
            dsmi_sync_fop(word(g, RIN), true, MPI_BAND, ~WBITS, NULL, func);
        }
    }
    if (rc != DSM_OK) {
        dsmi_mutex_release(word(g, WQ), slot, granted, func);
        return rc;
    }
    *h = (struct dsmi_held){g.bits, slot, DSMI_HELD_WRITE, granted, (uint8_t)wb};
    return DSM_OK;
}

/* Leave a read hold (count out) or a write hold (clear our bits, pass the writers'
 * queue on), after the release fence. */
static int rw_release(dsm_gptr_t l, const struct dsmi_held *mine, const char *func)
{
    int rc = dsmi_sync_fence(true, func);
    if (rc != DSM_OK) {
        return rc;
    }
    if (mine->kind == DSMI_HELD_READ) {
        return dsmi_sync_fop(word(l, ROUT), true, MPI_SUM, RINC, NULL, func);
    }
    rc = dsmi_sync_fop(word(l, RIN), true, MPI_BAND, ~WBITS, NULL, func);
    int rrc = dsmi_mutex_release(word(l, WQ), mine->slot, mine->granted, func);
    return rc != DSM_OK ? rc : rrc;
}

static int lock_common(dsm_gptr_t g, bool write, bool try_only, const char *func)
{
    DSMI_CHECK_UP(func);
    char name[48];
    if (dsmi_held_find(g.bits) != NULL) {
        return dsmi_fail(DSM_ERR_STATE, func,
                         "rwlock %s is already held by this thread (rank "
                         "%d thread %d): relocking it could deadlock",
                         dsm_gptr_str(g, name, sizeof name), dsmi_rt.rank, dsmi_thread_id());
    }
    struct dsmi_held h = {g.bits, 0, DSMI_HELD_READ, 0, 0};
    int rc = write ? write_acquire(g, try_only, &h, func) : read_acquire(g, try_only, func);
    if (rc != DSM_OK) {
        return rc;
    }
    if ((rc = dsmi_held_add(&h, func)) != DSM_OK) {
        rw_release(g, &h, func); // this thread holds too many locks: give this one back
        return rc;
    }
    return dsmi_sync_fence(false, func);
}

int dsm_rwlock_rdlock(dsm_gptr_t l)
{
    return lock_common(l, false, false, "dsm_rwlock_rdlock");
}

int dsm_rwlock_tryrdlock(dsm_gptr_t l)
{
    return lock_common(l, false, true, "dsm_rwlock_tryrdlock");
}

int dsm_rwlock_wrlock(dsm_gptr_t l)
{
    return lock_common(l, true, false, "dsm_rwlock_wrlock");
}

int dsm_rwlock_trywrlock(dsm_gptr_t l)
{
    return lock_common(l, true, true, "dsm_rwlock_trywrlock");
}

/* "free" / "held by N reader(s)" / "held by a writer (...)", best effort. */
static void describe(dsm_gptr_t g, char *buf, size_t len, const char *func)
{
    uint64_t in = 0, out = 0;
    char wq[160];
    // ROUT before RIN: readers that come and go in between cannot make a held lock
    // look free (ROUT then never exceeds the RIN read after it).
    if (dsmi_sync_load(word(g, ROUT), true, &out, func) != DSM_OK ||
        dsmi_sync_load(word(g, RIN), true, &in, func) != DSM_OK) {
        snprintf(buf, len, "in an unknown state");
    } else if ((in >> 48) != RW_MAGIC) {
        snprintf(buf, len, "not initialised");
    } else if (in & WBITS) {
        dsmi_mutex_describe(word(g, WQ), wq, sizeof wq, func);
        snprintf(buf, len, "write-locked (writers' queue %s)", wq);
    } else if (COUNT(in) != COUNT(out)) {
        snprintf(buf, len, "read-locked by %llu reader(s)",
                 (unsigned long long)(COUNT(in) - COUNT(out)));
    } else {
        snprintf(buf, len, "free");
    }
}

int dsm_rwlock_unlock(dsm_gptr_t l)
{
    const char *func = "dsm_rwlock_unlock";
    DSMI_CHECK_UP(func);
    struct dsmi_held *h = dsmi_held_find(l.bits);
    if (h == NULL || h->kind == DSMI_HELD_MUTEX) {
        char state[200], name[48];
        describe(l, state, sizeof state, func);
        return dsmi_fail(DSM_ERR_STATE, func,
                         "rwlock %s is not held by this thread (rank %d "
                         "thread %d); it is %s",
                         dsm_gptr_str(l, name, sizeof name), dsmi_rt.rank, dsmi_thread_id(), state);
    }
    struct dsmi_held mine = *h;
    dsmi_held_remove(h);
    return rw_release(l, &mine, func);
}

int dsm_rwlock_init(dsm_gptr_t l)
{
    const char *func = "dsm_rwlock_init";
    DSMI_CHECK_UP(func);
    uint64_t in = 0, out = 0;
    int rc = dsmi_sync_load(word(l, ROUT), true, &out, func); // ROUT first (describe)
    rc = rc == DSM_OK ? dsmi_sync_load(word(l, RIN), true, &in, func) : rc;
    if (rc != DSM_OK) {
        return rc;
    }
    if ((in >> 48) == RW_MAGIC && ((in & WBITS) || COUNT(in) != COUNT(out))) {
        return rw_fail(DSM_ERR_STATE, l, func, "is in use: unlock and destroy it first");
    }
    if ((rc = DSMI_CALL_AS(func, dsm_mutex_init(word(l, WQ)))) != DSM_OK) {
        return rc;
    }
    if ((rc = dsmi_sync_store(word(l, ROUT), true, 0, func)) == DSM_OK &&
        (rc = dsmi_sync_store(word(l, WSEQ), true, 0, func)) == DSM_OK) {
        rc = dsmi_sync_store(word(l, RIN), true, RW_MAGIC << 48, func);
    }
    return rc;
}

int dsm_rwlock_destroy(dsm_gptr_t l)
{
    const char *func = "dsm_rwlock_destroy";
    DSMI_CHECK_UP(func);
    char state[200];
    if (dsmi_held_find(l.bits) != NULL) {
        return rw_fail(DSM_ERR_STATE, l, func, "is held by this thread: unlock it first");
    }
    uint64_t in = 0, out = 0, seen = 0;
    int rc = dsmi_sync_load(word(l, ROUT), true, &out, func); // ROUT first (describe)
    rc = rc == DSM_OK ? dsmi_sync_load(word(l, RIN), true, &in, func) : rc;
    if (rc != DSM_OK) {
        return rc;
    }
    if ((in >> 48) != RW_MAGIC || (in & WBITS) || COUNT(in) != COUNT(out)) {
        describe(l, state, sizeof state, func);
        char why[240];
        snprintf(why, sizeof why, "cannot be destroyed: it is %s", state);
        return rw_fail(DSM_ERR_STATE, l, func, why);
    }
    // Retire RIN first, so a reader arriving now fails instead of entering.
    if ((rc = dsmi_sync_cas(word(l, RIN), true, in, 0, &seen, func)) != DSM_OK) {
        return rc;
    }
    if (seen != in) {
        return rw_fail(DSM_ERR_STATE, l, func, "changed while being destroyed: still in use");
    }
    return DSMI_CALL_AS(func, dsm_mutex_destroy(word(l, WQ)));
}
