/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The owner's cache of small blocks: blocks of up to HC_MAX bytes (256 user bytes) that
 * this rank freed and keeps for its own next allocations, so that a local dsm_alloc /
 * dsm_free pair of a small block takes no heap lock (the heap lock is a ticket lock of
 * MPI or CPU atomics on the own window: 90% of a local pair's cost; measured in
 * docs/PERFORMANCE.md). One cache per rank, as mimalloc's and tcmalloc's per-thread
 * caches, with a size class per block size (16-byte steps), each a LIFO list.
 *
 * Invariants. A cached block is a block of the heap in state ST_CACHED: allocated as far
 * as the free lists, remote ranks and the published usage are concerned (it counts as
 * in use), linked to the next block of its class through its first user word. The list
 * heads are process memory and describe this rank's segment as it is: when its bytes
 * are replaced (restart, recovery) the cache is forgotten (heap.c) and the restored
 * heap's ST_CACHED blocks are freed (dsmi_hcore_uncache_all). So that an image holds
 * none, dsm_checkpoint returns the cache to the heap first; so do dsm_usage() of the own
 * heap, dsm_alloc_all(), and an allocation that finds the heap full.
 *
 * Who touches what. Only this process changes a cached block: a remote dsm_free finds
 * ST_CACHED and refuses it as a second free, and TLSF merges only ST_FREE neighbours. A
 * free into the cache checks the block exactly as the locked free does (bounds, tag,
 * size) and leaves anything else to it, so every refusal keeps its code and message.
 * The lists are changed under `busy` when threads may call at once (DSM_THREADS=multiple
 * or MPI at MPI_THREAD_MULTIPLE, heap.c's cache_start): a try-lock, so a thread
 * that finds another in the cache takes the locked path instead of waiting; the locked
 * paths (refill, return, forget) wait for it, heap lock first, and nobody waits for
 * anything while holding `busy`. Visibility: tags are written with plain stores, as the
 * locked path does; on the MPI path an MPI_Win_sync publishes them to RMA readers before
 * the pointer can be handed on (direct mode: the user's synchronisation orders them).
 */
#include <sched.h>

#include "heap_core.h"

#define HC_CLASSES ((HC_MAX - MINBLK) / ALIGN + 1)
#define HC_BATCH_BYTES 4096u // a refill carves about this much out of one block
#define HC_BATCH_MAX 32u

static struct {
    uint64_t head[HC_CLASSES]; // offset of the first cached block of each class, 0 none
    uint64_t bytes;            // bytes of all cached blocks
    uint64_t limit;            // most bytes cached (0: the cache is off)
    bool threaded;
} hc;
static int busy; // the lists' try-lock (DSM_THREADS=multiple only)

static unsigned class_of(uint64_t bs)
{
    return (unsigned)(bs / ALIGN - MINBLK / ALIGN);
}

static bool try_hold(void)
{
    return !hc.threaded || __atomic_exchange_n(&busy, 1, __ATOMIC_ACQUIRE) == 0;
}

static void hold(void)
{
    while (!try_hold()) {
        sched_yield(); // a holder does a few loads and stores, then lets go
    }
}

static void let_go(void)
{
    if (hc.threaded) {
        __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
    }
}

static uint64_t seg_word(uint64_t off)
{
    uint64_t x;
    memcpy(&x, dsmi_w.base + off, 8);
    return x;
}

static void seg_store(uint64_t off, uint64_t x)
{
    memcpy(dsmi_w.base + off, &x, 8);
}

/* New tags reach the public window copy on the MPI path (see the top). */
static void publish(void)
{
    if (!dsmi_direct()) {
        MPI_Win_sync(dsmi_w.win);
    }
}

void dsmi_hcache_start(uint64_t limit, bool threaded)
{
    memset(hc.head, 0, sizeof hc.head);
    hc.bytes = 0;
    hc.limit = limit;
    hc.threaded = threaded;
}

void dsmi_hcache_forget(void)
{
    hold();
    memset(hc.head, 0, sizeof hc.head);
    __atomic_store_n(&hc.bytes, 0, __ATOMIC_RELAXED);
    let_go();
}

uint64_t dsmi_hcache_bytes(void)
{
    return __atomic_load_n(&hc.bytes, __ATOMIC_RELAXED);
}

bool dsmi_hcache_get(uint64_t bs, uint64_t *b)
{
    if (bs > HC_MAX || !try_hold()) {
        return false;
    }
    unsigned c = class_of(bs);
    uint64_t x = hc.head[c], tag = x != 0 ? seg_word(x + 8) : 0;
    bool ok = x != 0 && (tag & 7) == ST_CACHED;
    if (ok) {
        hc.head[c] = seg_word(x + 16);
        seg_store(x + 8, (tag & ~(uint64_t)7) | ST_ALLOC);
        __atomic_store_n(&hc.bytes, hc.bytes - bs, __ATOMIC_RELAXED);
    } else if (x != 0) { // the segment was wiped under the cache: the locked path says so
        memset(hc.head, 0, sizeof hc.head);
        __atomic_store_n(&hc.bytes, 0, __ATOMIC_RELAXED);
    }
    let_go();
    if (ok) {
        publish();
        *b = x;
    }
    return ok;
}

/* Whether b is a live block of size bytes that fits the cache (read-only). */
static bool cacheable(uint64_t b, uint64_t *size)
{
    // Inside the segment is enough to read and write it: the tag (a hash of the offset
    // and the heap's salt) says whether it is a block of this heap.
    if (hc.limit == 0 || b < DSMI_HDR_SIZE || b + MINBLK > dsmi_w.size) {
        return false;
    }
    *size = seg_word(b);
    if (*size > HC_MAX || *size < MINBLK || *size % ALIGN != 0) {
        return false;
    }
    struct dsmi_hview v = {.salt = seg_word(R_SALT)};
    return seg_word(b + 8) == dsmi_hcore_tag(&v, b, ST_ALLOC);
}

bool dsmi_hcache_put(uint64_t b)
{
    uint64_t size = 0;
    if (!cacheable(b, &size) || dsmi_hcache_bytes() + size > hc.limit || !try_hold()) {
        return false;
    }
    bool ok = hc.bytes + size <= hc.limit; // again: another thread may have filled it
    if (ok) {
        unsigned c = class_of(size);
        uint64_t tag = seg_word(b + 8);
        seg_store(b + 16, hc.head[c]);
        seg_store(b + 8, (tag & ~(uint64_t)7) | ST_CACHED);
        hc.head[c] = b;
        __atomic_store_n(&hc.bytes, hc.bytes + size, __ATOMIC_RELAXED);
    }
    let_go();
    if (ok) {
        publish();
    }
    return ok;
}

int dsmi_hcache_refill(struct dsmi_hview *v, uint64_t bs, uint64_t *b)
{
    if (bs > HC_MAX) {
        return dsmi_hcore_alloc(v, bs, b);
    }
    unsigned k = HC_BATCH_BYTES / (unsigned)bs;
    k = k > HC_BATCH_MAX ? HC_BATCH_MAX : k;
    hold();
    uint64_t room = hc.limit > hc.bytes ? (hc.limit - hc.bytes) / bs : 0;
    k = room + 1 < k ? (unsigned)room + 1 : k;
    uint64_t x = 0;
    if (k < 2 || dsmi_hcore_carve(v, bs, k, &x) != DSM_OK) {
        let_go();
        return dsmi_hcore_alloc(v, bs, b); // nothing to carve for, or no room for a batch
    }
    unsigned c = class_of(bs);
    for (unsigned i = k - 1; i-- > 0;) { // the lowest address first out
        st(v, x + i * bs + 16, hc.head[c]);
        hc.head[c] = x + i * bs;
    }
    __atomic_store_n(&hc.bytes, hc.bytes + (k - 1) * bs, __ATOMIC_RELAXED);
    let_go();
    *b = x + (k - 1) * bs;
    return DSM_OK;
}

void dsmi_hcache_return(struct dsmi_hview *v)
{
    hold();
    for (unsigned c = 0; c < HC_CLASSES; c++) {
        for (uint64_t x = hc.head[c], next; x != 0; x = next) {
            next = ld(v, x + 16);
            if (dsmi_hcore_uncache(v, x) != DSM_OK) {
                dsmi_log(DSMI_LOG_ERROR,
                         "heap: cached block 0x%llx was overwritten; the rest of its "
                         "class's cache is leaked",
                         (unsigned long long)x);
                break;
            }
        }
        hc.head[c] = 0;
    }
    __atomic_store_n(&hc.bytes, 0, __ATOMIC_RELAXED);
    let_go();
}
