/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The heap subsystem's private interface, shared by heap.c (lock, API, collective),
 * heap_core.c (the TLSF allocator and its checker) and heap_view.c (a remote heap seen
 * through RMA). Not for other subsystems: they use heap.h.
 *
 * Layout (offsets in the segment):
 *   L_NEXT      the heap lock's ticket dispenser, L_HOLDER (diagnostics) and the
 *               marks of abandoned tickets, L_GONE (heap.c explains the lock)
 *   USAGE_OFF   published usage: in_use, free, largest, blocks (int64, MPI atomics only)
 *   R_LOCK      the heap lock's "now serving" word, right after them, so one
 *               MPI_Accumulate(SUM) passes the lock on and publishes the usage deltas
 *   roots       magic, salt, [lo, hi), pending-free list, top, bitmaps, list heads
 *   [lo, top)   blocks: header {size, tag}; free blocks add {next, prev} links and a
 *               footer (their size) in their last 8 bytes
 *   [top, hi)   the wilderness: never allocated since it was last merged back
 * A tag is hash(offset, salt) with the state in its low 3 bits: a word is a block's
 * header only if its tag names exactly that offset.
 */
#ifndef DSMI_HEAP_CORE_H
#define DSMI_HEAP_CORE_H

#include <string.h>

#include "heap.h"
#include "win.h"

#define ALIGN 16u
#define HDR 16u    // block header: size, tag
#define MINBLK 48u // header + links + footer of a free block, rounded to ALIGN
#define SL_LOG2 4
#define SL_COUNT 16
#define FL_SHIFT 8  // sizes below 256 form row 0 with 16-byte steps
#define FL_COUNT 37 // row 36 holds sizes of 2^43 and up (segments are < 2^44)

/* ST_CACHED: freed by the owner into its cache of small blocks (heap_cache.c); allocated
 * as far as the lists, remote ranks and the usage are concerned. */
enum { ST_FREE = 1, ST_ALLOC = 2, ST_RFREE = 3, ST_CACHED = 4 };

/* Heap lock words other than R_LOCK, in the usage region below the usage words (a cache
 * line of their own: takers add to L_NEXT while waiters poll R_LOCK). L_NEXT and the
 * L_GONE marks are lock words (int64, atomics only); L_HOLDER is rank + 1 of the last
 * taker, written by it with a plain store or put and read only to name it in a timeout. */
#define L_NEXT (DSMI_HDR_USAGE_OFF + 0)
#define L_HOLDER (DSMI_HDR_USAGE_OFF + 8)
#define L_GONE_SLOTS 64u
#define L_GONE(t) (DSMI_HDR_USAGE_OFF + 64 + 8 * ((uint64_t)(t) % L_GONE_SLOTS))
#define L_END (DSMI_HDR_USAGE_OFF + 64 + 8 * L_GONE_SLOTS)
#define USAGE_OFF (DSMI_HDR_HEAP_OFF - 32u)
#define U_IN_USE (USAGE_OFF + 0)
#define U_FREE (USAGE_OFF + 8)
#define U_LARGEST (USAGE_OFF + 16)
#define U_BLOCKS (USAGE_OFF + 24)
#define R_LOCK (DSMI_HDR_HEAP_OFF + 0)
#define R_MAGIC (DSMI_HDR_HEAP_OFF + 8)
#define R_SALT (DSMI_HDR_HEAP_OFF + 16)
#define R_LO (DSMI_HDR_HEAP_OFF + 24)
#define R_HI (DSMI_HDR_HEAP_OFF + 32)
#define R_PENDING (DSMI_HDR_HEAP_OFF + 40)
#define R_TOP (DSMI_HDR_HEAP_OFF + 48)
#define R_FLMAP (DSMI_HDR_HEAP_OFF + 56)
#define R_SLMAP(fl) (DSMI_HDR_HEAP_OFF + 64 + 8 * (uint64_t)(fl))
#define R_HEAD(fl, sl) (R_SLMAP(FL_COUNT) + 8 * ((uint64_t)(fl)*SL_COUNT + (uint64_t)(sl)))
#define ROOTS_END R_HEAD(FL_COUNT, 0)
#define ROOTS_WORDS ((ROOTS_END - USAGE_OFF) / 8)
#define HEAP_MAGIC UINT64_C(0x4d4453484541504c) // "MDSHEAPL"

_Static_assert(USAGE_OFF >= DSMI_HDR_USAGE_OFF, "usage words outside their region");
_Static_assert(L_END <= USAGE_OFF, "heap lock words overlap the usage words");
_Static_assert(U_BLOCKS + 8 == R_LOCK, "one accumulate must cover usage and lock");
/* Only the heap lock's holder writes U_IN_USE..R_LOCK (takers add to L_NEXT and only
 * read R_LOCK; the one other writer of R_LOCK moves it past an abandoned ticket, when
 * nobody holds the lock): heap.c's direct-mode release relies on it and updates them
 * with plain single-writer atomic stores. A new writer of these words must take the
 * lock, or that release loses its update. */
_Static_assert(ROOTS_END <= DSMI_HDR_HEAP_OFF + DSMI_HDR_HEAP_SIZE, "roots overflow");
_Static_assert(DSMI_HDR_SIZE % ALIGN == 0, "heap start must be aligned");

#define RC_MAX 64 // cached words of a remote view besides the roots

/* A remote segment seen through RMA: the roots (fetched in one get) and a few words. */
struct dsmi_hcache {
    int rank;
    int err; // first failure (a DSM_ERR_* code), sticky
    unsigned ops, flushes;
    const char *func;
    uint64_t dlo, dhi; // dirty byte range of roots[] (dlo >= dhi: clean)
    uint64_t roots[ROOTS_WORDS];
    int n;
    uint64_t woff[RC_MAX], wval[RC_MAX], stage[RC_MAX];
    bool wdirty[RC_MAX];
};

/* heap.c's view_init sets every field: a new one must be set there too. */
struct dsmi_hview {
    char *base; // local segment, or NULL when rc is used
    struct dsmi_hcache *rc;
    uint64_t salt, lo, hi, seg;         // from the roots; seg = segment bytes
    int64_t d_in_use, d_free, d_blocks; // usage deltas of this operation
    uint64_t shrunk, grown;             // largest free block removed / inserted (for largest)
    const char *why;                    // reason of the last refusal
};

struct dsmi_hwalk {
    struct dsmi_heap_report r;
    uint64_t last; // offset of the last block
};

/* ---- heap_view.c: the remote view's cache (loads may get, stores are buffered) ---- */
DSMI_HIDDEN uint64_t dsmi_hview_load(struct dsmi_hcache *rc, uint64_t off, uint64_t seg);
DSMI_HIDDEN void dsmi_hview_store(struct dsmi_hcache *rc, uint64_t off, uint64_t val);
/* Blocking get of len bytes at off of the remote segment into buf. */
DSMI_HIDDEN void dsmi_hview_get(struct dsmi_hcache *rc, uint64_t off, void *buf, int len);
/* Put every dirty word back (contiguous runs as one put each), then one flush. */
DSMI_HIDDEN void dsmi_hview_writeback(struct dsmi_hcache *rc);

/* Loads and stores of the core: plain memory for a local view, the cache otherwise.
 * Short names on purpose: they are most of the core's code. */
static inline uint64_t ld(struct dsmi_hview *v, uint64_t off)
{
    if (__builtin_expect(v->base != NULL, 1)) {
        uint64_t x;
        memcpy(&x, v->base + off, 8);
        return x;
    }
    return dsmi_hview_load(v->rc, off, v->seg);
}

static inline void st(struct dsmi_hview *v, uint64_t off, uint64_t val)
{
    if (__builtin_expect(v->base != NULL, 1)) {
        memcpy(v->base + off, &val, 8);
    } else {
        dsmi_hview_store(v->rc, off, val);
    }
}

static inline uint64_t dsmi_hcore_tag(const struct dsmi_hview *v, uint64_t b, uint64_t state)
{
    uint64_t x = (b ^ v->salt) * UINT64_C(0x9E3779B97F4A7C15); // splitmix64 finaliser
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return ((x ^ (x >> 31)) & ~(uint64_t)7) | state;
}

static inline int dsmi_hcore_msb(uint64_t x)
{
    return 63 - __builtin_clzll(x);
}

static inline void dsmi_hcore_mapping(uint64_t size, int *fl, int *sl)
{
    if (size < (1u << FL_SHIFT)) {
        *fl = 0;
        *sl = (int)(size / ALIGN);
    } else {
        int m = dsmi_hcore_msb(size);
        *sl = (int)((size >> (m - SL_LOG2)) ^ SL_COUNT);
        *fl = m - FL_SHIFT + 1;
    }
}

/* ---- heap_core.c: the allocator on a view ---- */
/* Block bytes for a request of n bytes (header, rounding, minimum); 0 when too big. */
DSMI_HIDDEN uint64_t dsmi_hcore_block_size(uint64_t n);
/* Allocate a block of bs bytes (from dsmi_hcore_block_size): *out = its offset.
 * DSM_ERR_NOMEM (v->why says why) when nothing fits. */
DSMI_HIDDEN int dsmi_hcore_alloc(struct dsmi_hview *v, uint64_t bs, uint64_t *out);
/* The same with the user bytes (block + HDR) aligned to align (a power of two). */
DSMI_HIDDEN int dsmi_hcore_alloc_aligned(struct dsmi_hview *v, uint64_t bs, uint64_t align,
                                         uint64_t *out);
/* Free the live block at b (merging with free neighbours), or DSM_ERR_INVALID. */
DSMI_HIDDEN int dsmi_hcore_free(struct dsmi_hview *v, uint64_t b);
/* A remote free: mark b RFREE and push it on the pending list, or DSM_ERR_INVALID. */
DSMI_HIDDEN int dsmi_hcore_defer(struct dsmi_hview *v, uint64_t b);
/* Merge every pending remote free back into the lists. */
DSMI_HIDDEN void dsmi_hcore_drain(struct dsmi_hview *v);
/* The largest free block after this operation, given the one before. */
DSMI_HIDDEN uint64_t dsmi_hcore_largest(struct dsmi_hview *v, uint64_t old);
/* Lay out an empty heap over v->base (v->seg bytes): all wilderness. */
DSMI_HIDDEN void dsmi_hcore_format(struct dsmi_hview *v, uint64_t salt);
/* Read salt and bounds from the roots into v; DSM_ERR_CORRUPT when they are invalid. */
DSMI_HIDDEN int dsmi_hcore_roots_valid(struct dsmi_hview *v);
/* Walk blocks, lists and pending list checking every invariant (not the usage). */
DSMI_HIDDEN int dsmi_hcore_walk(struct dsmi_hview *v, struct dsmi_hwalk *w);
/* dsmi_hcore_walk plus the published usage against the walk. */
DSMI_HIDDEN int dsmi_hcore_check(struct dsmi_hview *v, struct dsmi_heap_report *r);
/* dsm_alloc_all's helpers: the lowest offset >= from where bs bytes fit, and claiming it. */
DSMI_HIDDEN uint64_t dsmi_hcore_fit(struct dsmi_hview *v, uint64_t from, uint64_t bs);
DSMI_HIDDEN int dsmi_hcore_claim(struct dsmi_hview *v, uint64_t y, uint64_t bs);
/* The owner's cache (heap_cache.c): carve k blocks of bs bytes out of one allocation, the
 * first k - 1 ST_CACHED at *out + i * bs, the last ST_ALLOC (with any slack); return a
 * cached block at b to the lists (DSM_ERR_INVALID if b is no cached block); and, for a
 * restored image, return every ST_CACHED block (their cache died with its process). */
DSMI_HIDDEN int dsmi_hcore_carve(struct dsmi_hview *v, uint64_t bs, unsigned k, uint64_t *out);
DSMI_HIDDEN int dsmi_hcore_uncache(struct dsmi_hview *v, uint64_t b);
DSMI_HIDDEN void dsmi_hcore_uncache_all(struct dsmi_hview *v);

/* ---- heap_cache.c: the owner's cache of small blocks (no heap lock) ---- */
#define HC_MAX 272u // largest cached block: 256 user bytes

/* dsmi_hcore_block_size for 1 <= n < HC_MAX - HDR, inline for the fast path. */
static inline uint64_t dsmi_hcore_small_size(uint64_t n)
{
    uint64_t b = (n + HDR + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
    return b < MINBLK ? MINBLK : b;
}
/* Limit the cache to limit bytes (0: off); threaded: DSM_THREADS=multiple. */
DSMI_HIDDEN void dsmi_hcache_start(uint64_t limit, bool threaded);
/* Without the heap lock: take a cached block of bs bytes (true, *b = its offset, now
 * ST_ALLOC), or false: the caller takes the locked path. */
DSMI_HIDDEN bool dsmi_hcache_get(uint64_t bs, uint64_t *b);
/* Without the heap lock: cache the live block at b (true), or false when b is not a
 * live small block or the cache is full: the caller frees it the locked way, which also
 * names what is wrong with b. */
DSMI_HIDDEN bool dsmi_hcache_put(uint64_t b);
/* Under the heap lock (v: the local view): allocate a block of bs bytes, carving a batch
 * for the cache when bs is small; DSM_ERR_NOMEM as dsmi_hcore_alloc. */
DSMI_HIDDEN int dsmi_hcache_refill(struct dsmi_hview *v, uint64_t bs, uint64_t *b);
/* Under the heap lock: return every cached block to the lists. */
DSMI_HIDDEN void dsmi_hcache_return(struct dsmi_hview *v);
/* Forget the cache: the segment's bytes were replaced (restart, recovery, format). */
DSMI_HIDDEN void dsmi_hcache_forget(void);

#endif /* DSMI_HEAP_CORE_H */
