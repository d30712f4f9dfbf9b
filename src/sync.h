/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Synchronization internals shared by sync.c (subsystem, queue-node pool, per-thread
 * ownership records, waiting, whole-rank locks), mutex.c (the MCS queue lock),
 * rwlock.c and sem.c.
 *
 * Every lock word (a mutex's tail, a queue node's next and flag, the reader-writer and
 * semaphore counters) is a uint64_t that is read and written ONLY with MPI atomics of
 * type MPI_UINT64_T (dsmi_rma_fop / dsmi_rma_cas), also on the caller's own window:
 * MPI makes accumulate operations atomic only against each other with the same basic
 * type, so a plain load or store of such a word could tear or be lost.
 */
#ifndef DSMI_SYNC_H
#define DSMI_SYNC_H

#include "runtime.h"
#include "win.h"

/* ---- queue nodes: DSMI_HDR_SYNC region of every segment ---- */
#define DSMI_QN_STRIDE 64u // one cache line per node: spinning never shares a line
#define DSMI_QN_FIRST (DSMI_HDR_SYNC_OFF + DSMI_QN_STRIDE) // first line: region header
#define DSMI_QN_SLOTS ((DSMI_HDR_SYNC_SIZE - DSMI_QN_STRIDE) / DSMI_QN_STRIDE) // 255
/* Word offsets inside a node. NEXT and FLAG are lock words (MPI atomics only); the DIAG
 * words are written with plain local stores and read remotely with MPI_Get, only to
 * name holders in error messages (best effort by design: a racing read may be stale). */
enum {
    QN_NEXT = 0,
    QN_FLAG = 8,
    QN_DIAG_STATE = 16,
    QN_DIAG_PRED = 24,
    QN_DIAG_LOCK = 32,
    QN_DIAG_THREAD = 40
};
/* FLAG values: the predecessor moves WAITING -> GRANTED, a timed-out waiter WAITING ->
 * ABANDONED (one CAS decides who wins), and whoever releases an abandoned node marks
 * it RECLAIMABLE once nobody will touch it again. */
enum { QF_WAITING = 0, QF_GRANTED = 1, QF_ABANDONED = 2, QF_RECLAIMABLE = 3 };
/* DIAG_STATE values. */
enum { QD_FREE = 0, QD_WAITING = 1, QD_HOLDING = 2, QD_ABANDONED = 3 };

/* A node's identity in one 64-bit word, so a tail swap is one MPI atomic:
 * bits 63..40 a magic (an uninitialised or destroyed word is recognisably not a lock),
 * bits 39..16 rank + 1 (0: no node, the lock is free), bits 15..0 the slot. */
#define DSMI_QID_MAGIC UINT64_C(0x6d7574) // "mut"
#define DSMI_QID_FREE (DSMI_QID_MAGIC << 40)
static inline uint64_t dsmi_qid(int rank, unsigned slot)
{
    return DSMI_QID_FREE | ((uint64_t)(rank + 1) << 16) | slot;
}
static inline int dsmi_qid_rank(uint64_t q)
{
    return (int)((q >> 16) & 0xffffffu) - 1;
}
static inline unsigned dsmi_qid_slot(uint64_t q)
{
    return (unsigned)(q & 0xffffu);
}
/* Whether w is a valid tail word: FREE or a node of an existing rank and slot. */
static inline bool dsmi_qid_valid(uint64_t w)
{
    if ((w >> 40) != DSMI_QID_MAGIC) {
        return false;
    }
    return w == DSMI_QID_FREE || (dsmi_qid_rank(w) >= 0 && dsmi_qid_rank(w) < dsmi_rt.nranks &&
                                  dsmi_qid_slot(w) < DSMI_QN_SLOTS);
}
/* Global pointer of a word of node q. */
static inline dsm_gptr_t dsmi_qn_word(uint64_t q, unsigned word)
{
    return dsmi_gptr(dsmi_qid_rank(q), DSMI_QN_FIRST + dsmi_qid_slot(q) * DSMI_QN_STRIDE + word);
}
/* This rank's own node memory (for the plain DIAG stores). */
static inline uint64_t *dsmi_qn_local(unsigned slot, unsigned word)
{
    return (uint64_t *)(dsmi_w.base + DSMI_QN_FIRST + slot * DSMI_QN_STRIDE + word);
}

/* ---- lock words: MPI_UINT64_T atomics, completed (flushed) on return ---- */
DSMI_HIDDEN int dsmi_sync_load(dsm_gptr_t g, bool user, uint64_t *out, const char *func);
DSMI_HIDDEN int dsmi_sync_store(dsm_gptr_t g, bool user, uint64_t v, const char *func);
DSMI_HIDDEN int dsmi_sync_cas(dsm_gptr_t g, bool user, uint64_t expected, uint64_t desired,
                              uint64_t *old, const char *func);
/* MPI_Fetch_and_op with op (MPI_SUM, MPI_BAND, MPI_REPLACE); old may be NULL. */
DSMI_HIDDEN int dsmi_sync_fop(dsm_gptr_t g, bool user, MPI_Op op, uint64_t v, uint64_t *old,
                              const char *func);
/* The fence of an acquire or a release: complete every RMA operation this process
 * issued (flush_all) and synchronise local loads and stores with the window. */
DSMI_HIDDEN int dsmi_sync_fence(bool release, const char *func);

/* Read a lock word of this rank's own queue node, for a poll: in direct mode a CPU load
 * of local memory (every access to the word is a CPU atomic there), so spinning makes
 * no call and touches no other cache line; else an MPI atomic like any lock word. */
static inline int dsmi_qn_poll(unsigned slot, unsigned word, uint64_t *out, const char *func)
{
    if (dsmi_direct()) {
        *out = __atomic_load_n(dsmi_qn_local(slot, word), __ATOMIC_ACQUIRE);
        return DSM_OK;
    }
    return dsmi_sync_load(dsmi_qn_word(dsmi_qid(dsmi_rt.rank, slot), word), false, out, func);
}

/* ---- this rank's pool of queue nodes ---- */
/* Take a free slot; DSM_ERR_NOMEM (logged as func) when all are in use. */
DSMI_HIDDEN int dsmi_qn_take(unsigned *slot, const char *func);
/* Return a slot whose NEXT and FLAG are both zero again. */
DSMI_HIDDEN void dsmi_qn_put(unsigned slot);
/* Park a slot abandoned by a timed-out waiter until its FLAG reads RECLAIMABLE. */
DSMI_HIDDEN void dsmi_qn_abandon(unsigned slot);

/* ---- who holds what: per-thread records of held locks ---- */
enum { DSMI_HELD_MUTEX = 1, DSMI_HELD_READ = 2, DSMI_HELD_WRITE = 3 };
struct dsmi_held {
    uint64_t lock;   // the lock's global pointer bits
    uint32_t slot;   // queue node of a mutex or a writer's inner mutex
    uint8_t kind;    // DSMI_HELD_*
    uint8_t granted; // acquired through the FLAG (which must be cleared at release)
    uint8_t wbits;   // a writer's presence and phase bits (rwlock.c)
};
/* The calling thread's records (one thread-local lookup; void after a restart). */
#define DSMI_HELD_MAX 64
struct dsmi_held_set {
    uint64_t gen;  // the dsm_init generation these records belong to
    int n;         // records in use
    int thread_id; // dsmi_thread_id()
    struct dsmi_held h[DSMI_HELD_MAX];
};
DSMI_HIDDEN struct dsmi_held_set *dsmi_held_mine(void);
DSMI_HIDDEN struct dsmi_held *dsmi_held_lookup(struct dsmi_held_set *s, uint64_t lock);
DSMI_HIDDEN int dsmi_held_push(struct dsmi_held_set *s, const struct dsmi_held *h,
                               const char *func);
DSMI_HIDDEN void dsmi_held_drop(struct dsmi_held_set *s, struct dsmi_held *h);
/* The same for callers that need one call: the calling thread's record for lock (any
 * kind), or NULL. */
DSMI_HIDDEN struct dsmi_held *dsmi_held_find(uint64_t lock);
/* Add a record; DSM_ERR_NOMEM when the thread holds too many locks. */
DSMI_HIDDEN int dsmi_held_add(const struct dsmi_held *h, const char *func);
DSMI_HIDDEN void dsmi_held_remove(struct dsmi_held *h);
/* A small number naming the calling thread in messages (1, 2, ... per process). */
DSMI_HIDDEN int dsmi_thread_id(void);

/* ---- waiting ---- */
/* Make other ranks' atomics on this rank's window land (MPICH: see sync.c; a no-op on
 * Open MPI, whose osc sm atomics need nothing from the target). Waiters call it: a
 * waiter polls its own FLAG, and on MPICH the hand-over CAS from another rank may
 * otherwise wait for this rank's progress for many milliseconds. */
DSMI_HIDDEN void dsmi_sync_progress(void);
struct dsmi_wait {
    uint64_t start_ns; // when the wait began
    uint64_t limit_ns; // DSM_LOCK_TIMEOUT in ns, 0 for none
    unsigned polls;
    unsigned spin_polls; // polls until yielding: 4 on the MPI path, else by time
};
DSMI_HIDDEN void dsmi_wait_begin(struct dsmi_wait *w);
/* After a poll that found nothing: on the direct path spin (a CPU pause, no MPI call, no
 * sleep) for a few microseconds (a short spin when the node has more ranks than
 * processors), then yield the core, since the holder may need it; on MPICH poke MPI's
 * progress only while yielding. Returns true when the timeout has expired. */
DSMI_HIDDEN bool dsmi_wait_step(struct dsmi_wait *w);

/* ---- the MCS mutex, also used as the writers' queue of a rwlock (mutex.c) ---- */
/* Enqueue on the mutex whose tail word is g and wait for the lock. On DSM_OK *slot is
 * the node in use and *granted tells whether it came through the FLAG. A timeout is
 * DSM_ERR_TIMEOUT with the lock left consistent (the node is abandoned, see mutex.c). */
DSMI_HIDDEN int dsmi_mutex_acquire(dsm_gptr_t g, bool try_only, unsigned *slot, bool *granted,
                                   const char *what, const char *func);
/* Hand the lock on (or free it) and recycle the node. */
DSMI_HIDDEN int dsmi_mutex_release(dsm_gptr_t g, unsigned slot, bool granted, const char *func);
/* "held by rank R thread T" / "free" / "not initialised": best effort, for messages. */
DSMI_HIDDEN void dsmi_mutex_describe(dsm_gptr_t g, char *buf, size_t len, const char *func);

/* ---- subsystem (runtime.c's table) ---- */
DSMI_HIDDEN int dsmi_sync_start(void);
DSMI_HIDDEN int dsmi_sync_stop(void);
/* This rank's segment bytes were replaced (restart or dsm_recover, ckpt.c): no waiter or
 * holder of a queue node survives that, so clear the node region and the pool, and end
 * the held-lock records of this process (lock words in user memory are the program's). */
DSMI_HIDDEN void dsmi_sync_reload(void);

#endif /* DSMI_SYNC_H */
