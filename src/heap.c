/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The distributed heap: one allocator per rank, living entirely inside that rank's
 * segment, usable by the owner and, through RMA alone, by every other rank.
 *
 * Algorithm: TLSF (two-level segregated fit, Masmano et al. 2004). Free blocks sit in
 * 37 x 16 segregated lists indexed by (log2 size, 16 linear steps inside each power of
 * two); two bitmap levels find a non-empty list in O(1); blocks carry boundary tags so
 * a free merges with both neighbours at once. Why TLSF and not size-class slabs:
 *  - bounded O(1) alloc and free with good-fit, whose fragmentation in the literature
 *    and in our churn test is low (no slab ever pins memory of one size class);
 *  - the whole segment is one pool: any size from 1 byte to the segment works;
 *  - its metadata are a few KiB of list heads plus 16 bytes per block, all offsets, so
 *    another rank can run the very same code through RMA (the remote view below);
 *  - allocation takes the tail of the first fitting free block when the rest stays in
 *    the same list: then no list changes at all, and a remote allocation is 6 RMA
 *    operations (lock CAS, get roots, get block, put size, put footer+header, release).
 * The never-used top of the heap, [top, hi), is not a listed block but a bump region
 * (dlmalloc's "wilderness"), used only when no listed block fits: live data stay packed
 * at the bottom (a checkpoint writes [0, top) only), and allocating from it is 5 RMA
 * operations (CAS, get roots, put header, put top, release). Freed blocks next to it
 * merge back into it.
 *
 * Layout (offsets in the segment):
 *   USAGE_OFF   published usage: in_use, free, largest, blocks (int64, read with MPI atomics)
 *   R_LOCK      the heap lock word, right after it, so one MPI_Accumulate(SUM) releases
 *               the lock and publishes the usage deltas in one operation
 *   roots       magic, salt, [lo, hi), pending-free list, top, bitmaps, list heads
 *   [lo, top)   blocks: header {size, tag}; free blocks add {next, prev} and a footer
 *               (size) in their last 8 bytes. tag = hash(offset, salt) | state, so a
 *               pointer is a live block only if the word before it names exactly that
 *               offset in the ALLOC state: interior, stale, made-up and double-freed
 *               pointers are refused without touching anything. Tags of blocks merged
 *               away are wiped, so no stale valid tag survives in user data.
 *
 * Concurrency: every change to the metadata, by the owner or by a remote rank, happens
 * under the heap lock, which is taken with MPI_Compare_and_swap and released with
 * MPI_Accumulate, on the owner too, because MPI atomics are atomic only against other
 * MPI atomics. The same lock serialises the owner's threads. Visibility: a remote
 * holder flushes its puts before the releasing accumulate; the owner calls
 * MPI_Win_sync after acquiring (to see remote puts with local loads) and before
 * releasing (to publish local stores to the next holder's gets). The usage words are
 * only changed by MPI_Accumulate and read with MPI_Get_accumulate(NO_OP), so readers
 * never need the lock. A remote dsm_free does not merge: it marks the block RFREE and
 * pushes it on the pending list (mimalloc's deferred free), which the owner's next
 * operation (or a remote allocator that ran out of room) merges back.
 *
 * The core functions work on a "view": either the local segment (plain loads and
 * stores) or a remote one through a small write-back cache of RMA gets and puts.
 */
#include "heap.h"

#include <sched.h>
#include <string.h>

#include "rma.h"
#include "win.h"

#define ALIGN 16u
#define HDR 16u      // block header: size, tag
#define MINBLK 48u   // header + links + footer of a free block, rounded to ALIGN
#define SL_LOG2 4
#define SL_COUNT 16
#define FL_SHIFT 8   // sizes below 256 form row 0 with 16-byte steps
#define FL_COUNT 37  // row 36 holds sizes of 2^43 and up (segments are < 2^44)

enum { ST_FREE = 1, ST_ALLOC = 2, ST_RFREE = 3 };

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
#define R_HEAD(fl, sl) (R_SLMAP(FL_COUNT) + 8 * ((uint64_t)(fl) * SL_COUNT + (uint64_t)(sl)))
#define ROOTS_END R_HEAD(FL_COUNT, 0)
#define ROOTS_WORDS ((ROOTS_END - USAGE_OFF) / 8)
#define HEAP_MAGIC UINT64_C(0x4d4453484541504c) // "MDSHEAPL"

_Static_assert(USAGE_OFF >= DSMI_HDR_USAGE_OFF, "usage words outside their region");
_Static_assert(U_BLOCKS + 8 == R_LOCK, "one accumulate must cover usage and lock");
_Static_assert(ROOTS_END <= DSMI_HDR_HEAP_OFF + DSMI_HDR_HEAP_SIZE, "roots overflow");
_Static_assert(DSMI_HDR_SIZE % ALIGN == 0, "heap start must be aligned");

/* ------------------------------------------------------------------------------------
 * Views: where the core's loads and stores go.
 * ---------------------------------------------------------------------------------- */

#define RC_MAX 64 // cached words of a remote view besides the roots

/* A remote segment seen through RMA: the roots (fetched in one get) and a few words. */
struct rcache {
    int rank;
    int err;              // first failure (a DSM_ERR_* code), sticky
    unsigned ops, flushes;
    const char *func;
    uint64_t dlo, dhi;    // dirty byte range of roots[] (dlo >= dhi: clean)
    uint64_t roots[ROOTS_WORDS];
    int n;
    uint64_t woff[RC_MAX], wval[RC_MAX], stage[RC_MAX];
    bool wdirty[RC_MAX];
};

struct view {
    char *base;                 // local segment, or NULL when rc is used
    struct rcache *rc;
    uint64_t salt, lo, hi, seg; // from the roots; seg = segment bytes
    int64_t d_in_use, d_free, d_blocks; // usage deltas of this operation
    uint64_t shrunk, grown;     // largest free block removed / inserted (for largest)
    const char *why;            // reason of the last refusal
};

static _Thread_local unsigned last_ops, last_flushes;

void dsmi_heap_last_cost(unsigned *ops, unsigned *flushes)
{
    *ops = last_ops;
    *flushes = last_flushes;
}

static void rc_fail(struct rcache *rc, int mpirc, const char *what)
{
    if (rc->err == DSM_OK) {
        rc->err = dsmi_fail_mpi(mpirc, rc->func, what, __FILE__, __LINE__);
    }
}

static void rc_flush(struct rcache *rc)
{
    int mrc = MPI_Win_flush(rc->rank, dsmi_w.win);
    rc->flushes++;
    dsmi_count(&dsmi_stat.flushes, 1);
    if (mrc != MPI_SUCCESS) {
        rc_fail(rc, mrc, "MPI_Win_flush");
    }
}

/* Blocking get of len bytes at off of the remote segment. */
static void rc_get(struct rcache *rc, uint64_t off, void *buf, int len)
{
    int mrc = MPI_Get(buf, len, MPI_BYTE, rc->rank, (MPI_Aint)off, len, MPI_BYTE, dsmi_w.win);
    rc->ops++;
    dsmi_count(&dsmi_stat.gets, 1);
    if (mrc != MPI_SUCCESS) {
        rc_fail(rc, mrc, "MPI_Get");
        memset(buf, 0, (size_t)len);
        return;
    }
    rc_flush(rc);
}

static void rc_put(struct rcache *rc, uint64_t off, const void *buf, int len)
{
    int mrc = MPI_Put(buf, len, MPI_BYTE, rc->rank, (MPI_Aint)off, len, MPI_BYTE, dsmi_w.win);
    rc->ops++;
    dsmi_count(&dsmi_stat.puts, 1);
    if (mrc != MPI_SUCCESS) {
        rc_fail(rc, mrc, "MPI_Put");
    }
}

/* Write every dirty word back, contiguous runs as one put each, then one flush. */
static void rc_writeback(struct rcache *rc)
{
    bool any = false;
    if (rc->dlo < rc->dhi) {
        rc_put(rc, rc->dlo, &rc->roots[(rc->dlo - USAGE_OFF) / 8], (int)(rc->dhi - rc->dlo));
        rc->dlo = UINT64_MAX, rc->dhi = 0, any = true;
    }
    for (int i = 1; i < rc->n; i++) { // insertion sort by offset: n is small
        for (int j = i; j > 0 && rc->woff[j - 1] > rc->woff[j]; j--) {
            uint64_t o = rc->woff[j], v = rc->wval[j];
            bool d = rc->wdirty[j];
            rc->woff[j] = rc->woff[j - 1], rc->wval[j] = rc->wval[j - 1];
            rc->wdirty[j] = rc->wdirty[j - 1];
            rc->woff[j - 1] = o, rc->wval[j - 1] = v, rc->wdirty[j - 1] = d;
        }
    }
    for (int i = 0; i < rc->n;) {
        if (!rc->wdirty[i]) {
            i++;
            continue;
        }
        int j = i; // the stage keeps the data alive until the flush
        while (j < rc->n && rc->wdirty[j] && rc->woff[j] == rc->woff[i] + 8 * (uint64_t)(j - i)) {
            rc->stage[j] = rc->wval[j];
            rc->wdirty[j] = false;
            j++;
        }
        rc_put(rc, rc->woff[i], &rc->stage[i], 8 * (j - i));
        any = true;
        i = j;
    }
    if (any) {
        rc_flush(rc);
    }
}

static int rc_find(const struct rcache *rc, uint64_t off)
{
    for (int i = 0; i < rc->n; i++) {
        if (rc->woff[i] == off) {
            return i;
        }
    }
    return -1;
}

static int rc_add(struct rcache *rc, uint64_t off, uint64_t val, bool dirty)
{
    if (rc->n == RC_MAX) { // full: we hold the lock, so writing back early is safe
        rc_writeback(rc);
        rc->n = 0;
    }
    rc->woff[rc->n] = off, rc->wval[rc->n] = val, rc->wdirty[rc->n] = dirty;
    return rc->n++;
}

/* A miss fetches 32 bytes: a block header with its links, or a footer with the next
 * block's header, in one get. */
static uint64_t rc_load(struct rcache *rc, uint64_t off, uint64_t seg)
{
    if (off >= USAGE_OFF && off < ROOTS_END) {
        return rc->roots[(off - USAGE_OFF) / 8];
    }
    int i = rc_find(rc, off);
    if (i >= 0) {
        return rc->wval[i];
    }
    uint64_t a = off & ~(uint64_t)15, w[4];
    a = a + 32 > seg ? seg - 32 : a;
    if (rc->n + 4 > RC_MAX) {
        rc_writeback(rc);
        rc->n = 0;
    }
    rc_get(rc, a, w, 32);
    uint64_t val = 0;
    for (int k = 0; k < 4; k++) {
        uint64_t o = a + 8 * (uint64_t)k;
        if (rc_find(rc, o) < 0) {
            rc_add(rc, o, w[k], false);
        }
        val = o == off ? w[k] : val;
    }
    return val;
}

static void rc_store(struct rcache *rc, uint64_t off, uint64_t val)
{
    if (off >= USAGE_OFF && off < ROOTS_END) {
        rc->roots[(off - USAGE_OFF) / 8] = val;
        rc->dlo = off < rc->dlo ? off : rc->dlo;
        rc->dhi = off + 8 > rc->dhi ? off + 8 : rc->dhi;
        return;
    }
    int i = rc_find(rc, off);
    if (i < 0) {
        rc_add(rc, off, val, true);
    } else {
        rc->wval[i] = val, rc->wdirty[i] = true;
    }
}

static inline uint64_t ld(struct view *v, uint64_t off)
{
    if (__builtin_expect(v->base != NULL, 1)) {
        uint64_t x;
        memcpy(&x, v->base + off, 8);
        return x;
    }
    return rc_load(v->rc, off, v->seg);
}

static inline void st(struct view *v, uint64_t off, uint64_t val)
{
    if (__builtin_expect(v->base != NULL, 1)) {
        memcpy(v->base + off, &val, 8);
    } else {
        rc_store(v->rc, off, val);
    }
}

/* ------------------------------------------------------------------------------------
 * The TLSF core: the same code for local, remote and fuzzed heaps.
 * ---------------------------------------------------------------------------------- */

static inline uint64_t tag_of(const struct view *v, uint64_t b, uint64_t state)
{
    uint64_t x = (b ^ v->salt) * UINT64_C(0x9E3779B97F4A7C15); // splitmix64 finaliser
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return ((x ^ (x >> 31)) & ~(uint64_t)7) | state;
}

static inline int msb(uint64_t x)
{
    return 63 - __builtin_clzll(x);
}

static inline void mapping(uint64_t size, int *fl, int *sl)
{
    if (size < (1u << FL_SHIFT)) {
        *fl = 0;
        *sl = (int)(size / ALIGN);
    } else {
        int m = msb(size);
        *sl = (int)((size >> (m - SL_LOG2)) ^ SL_COUNT);
        *fl = m - FL_SHIFT + 1;
    }
}

/* The first list whose every block holds size bytes (size rounded up to the next
 * list boundary), searching upwards through the bitmaps. 0 when none. */
static uint64_t find_free(struct view *v, uint64_t size)
{
    int fl, sl;
    if (size >= (1u << FL_SHIFT)) {
        size += (UINT64_C(1) << (msb(size) - SL_LOG2)) - 1;
    }
    mapping(size, &fl, &sl);
    if (fl >= FL_COUNT) {
        return 0;
    }
    uint64_t slmap = ld(v, R_SLMAP(fl)) & (~UINT64_C(0) << sl);
    if (slmap == 0) {
        uint64_t flmap = fl + 1 < FL_COUNT ? ld(v, R_FLMAP) & (~UINT64_C(0) << (fl + 1)) : 0;
        if (flmap == 0) {
            return 0;
        }
        fl = __builtin_ctzll(flmap);
        slmap = ld(v, R_SLMAP(fl));
    }
    return ld(v, R_HEAD(fl, __builtin_ctzll(slmap)));
}

static void list_remove(struct view *v, uint64_t b, uint64_t size)
{
    int fl, sl;
    mapping(size, &fl, &sl);
    uint64_t next = ld(v, b + 16), prev = ld(v, b + 24);
    if (prev) {
        st(v, prev + 16, next);
    } else {
        st(v, R_HEAD(fl, sl), next);
        if (next == 0) {
            uint64_t slmap = ld(v, R_SLMAP(fl)) & ~(UINT64_C(1) << sl);
            st(v, R_SLMAP(fl), slmap);
            if (slmap == 0) {
                st(v, R_FLMAP, ld(v, R_FLMAP) & ~(UINT64_C(1) << fl));
            }
        }
    }
    if (next) {
        st(v, next + 24, prev);
    }
    v->shrunk = size > v->shrunk ? size : v->shrunk;
}

/* Write a free block [b, b + size) and push it on its list. */
static void list_insert(struct view *v, uint64_t b, uint64_t size)
{
    int fl, sl;
    mapping(size, &fl, &sl);
    uint64_t head = ld(v, R_HEAD(fl, sl));
    st(v, b, size);
    st(v, b + 8, tag_of(v, b, ST_FREE));
    st(v, b + 16, head);
    st(v, b + 24, 0);
    st(v, b + size - 8, size); // footer: lets the next block find us when it is freed
    if (head) {
        st(v, head + 24, b);
    } else {
        st(v, R_SLMAP(fl), ld(v, R_SLMAP(fl)) | UINT64_C(1) << sl);
        st(v, R_FLMAP, ld(v, R_FLMAP) | UINT64_C(1) << fl);
    }
    st(v, R_HEAD(fl, sl), b);
    v->grown = size > v->grown ? size : v->grown;
}

static void mark_alloc(struct view *v, uint64_t b, uint64_t size)
{
    st(v, b, size);
    st(v, b + 8, tag_of(v, b, ST_ALLOC));
    v->d_in_use += (int64_t)size;
    v->d_free -= (int64_t)size;
    v->d_blocks++;
}

/* Block bytes for a request of n bytes; 0 when it cannot fit any heap. */
static uint64_t block_size(uint64_t n)
{
    if (n > DSM_GPTR_MAX_OFFSET) {
        return 0;
    }
    uint64_t b = (n + HDR + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
    return b < MINBLK ? MINBLK : b;
}

/* Allocate with the default alignment. Takes the tail of the found block when what
 * stays keeps its list (no list update: the cheapest path, locally and remotely). */
/* TLSF's search rounds the size up to a list boundary, so a block that fits may sit
 * in the request's own list; look at a few of its blocks before giving up, so that a
 * published largest block of at least the size really can be allocated. */
static uint64_t find_exact(struct view *v, uint64_t bs)
{
    int fl, sl;
    mapping(bs, &fl, &sl);
    if (fl >= FL_COUNT) {
        return 0;
    }
    uint64_t b = ld(v, R_HEAD(fl, sl));
    for (int k = 0; b != 0 && k < 16; k++, b = ld(v, b + 16)) {
        if (ld(v, b) >= bs) {
            return b;
        }
    }
    return 0;
}

/* Allocate from the wilderness at the lowest y >= top whose user bytes are aligned;
 * a leading gap becomes a listed free block, a tail too small for a block is taken. */
static int wild_alloc(struct view *v, uint64_t bs, uint64_t align, uint64_t *out)
{
    uint64_t t = ld(v, R_TOP), y = t;
    if (align > ALIGN) {
        uint64_t user = (t + HDR + align - 1) & ~(align - 1);
        if (user - HDR != t && user - HDR - t < MINBLK) {
            user = (t + HDR + MINBLK + align - 1) & ~(align - 1);
        }
        y = user - HDR;
    }
    if (y > v->hi || bs > v->hi - y) {
        v->why = "no free block is large enough";
        return DSM_ERR_NOMEM;
    }
    if (y != t) {
        list_insert(v, t, y - t);
    }
    bs = v->hi - (y + bs) < MINBLK ? v->hi - y : bs;
    st(v, R_TOP, y + bs);
    v->shrunk = v->hi - t > v->shrunk ? v->hi - t : v->shrunk;
    mark_alloc(v, y, bs);
    *out = y;
    return DSM_OK;
}

static int core_alloc(struct view *v, uint64_t bs, uint64_t *out)
{
    uint64_t f = find_free(v, bs);
    f = f ? f : find_exact(v, bs);
    if (f == 0) {
        return wild_alloc(v, bs, ALIGN, out);
    }
    uint64_t fs = ld(v, f);
    int fl, sl, rfl, rsl;
    mapping(fs, &fl, &sl);
    if (fs - bs >= MINBLK) {
        mapping(fs - bs, &rfl, &rsl);
        if (rfl == fl && rsl == sl) {
            st(v, f, fs - bs);
            st(v, f + fs - bs - 8, fs - bs);
            v->shrunk = fs > v->shrunk ? fs : v->shrunk;
            mark_alloc(v, f + fs - bs, bs);
            *out = f + fs - bs;
            return DSM_OK;
        }
    }
    list_remove(v, f, fs);
    if (fs - bs >= MINBLK) {
        list_insert(v, f + bs, fs - bs);
    } else {
        bs = fs;
    }
    mark_alloc(v, f, bs);
    *out = f;
    return DSM_OK;
}

/* Allocate so that the user bytes (block + HDR) are aligned to align (> ALIGN). The
 * search asks for room for the worst leading gap, which goes back as a free block. */
static int core_alloc_aligned(struct view *v, uint64_t bs, uint64_t align, uint64_t *out)
{
    uint64_t f = find_free(v, bs + align + MINBLK);
    if (f == 0) {
        return wild_alloc(v, bs, align, out);
    }
    uint64_t fs = ld(v, f);
    list_remove(v, f, fs);
    uint64_t user = (f + HDR + align - 1) & ~(align - 1);
    if (user - HDR != f && user - HDR - f < MINBLK) {
        user = (f + HDR + MINBLK + align - 1) & ~(align - 1);
    }
    uint64_t y = user - HDR, rest = fs - (y - f);
    if (y != f) {
        list_insert(v, f, y - f);
    }
    if (rest - bs >= MINBLK) {
        list_insert(v, y + bs, rest - bs);
    } else {
        bs = rest;
    }
    mark_alloc(v, y, bs);
    *out = y;
    return DSM_OK;
}

/* Size of the live (ALLOC) block at b, or 0 with v->why set. Reads, never writes. */
static uint64_t live_size(struct view *v, uint64_t b)
{
    if (b < v->lo || b > v->hi - MINBLK || b % ALIGN != 0) {
        v->why = "not the start of a block of this heap (outside it or misaligned)";
        return 0;
    }
    uint64_t tag = ld(v, b + 8), size = ld(v, b);
    if (tag == tag_of(v, b, ST_FREE) || tag == tag_of(v, b, ST_RFREE)) {
        v->why = "block already freed (double free)";
        return 0;
    }
    if (tag != tag_of(v, b, ST_ALLOC)) {
        v->why = "not the start of a live block (interior, stale or made-up pointer)";
        return 0;
    }
    if (size < MINBLK || size % ALIGN != 0 || size > v->hi - b) {
        v->why = "block header damaged (size out of range)";
        return 0;
    }
    return size;
}

/* Return [b, b + size) to the lists, merging with free neighbours; no accounting. */
static void free_raw(struct view *v, uint64_t b, uint64_t size)
{
    uint64_t nx = b + size, top = ld(v, R_TOP);
    if (nx < top && ld(v, nx + 8) == tag_of(v, nx, ST_FREE)) {
        uint64_t ns = ld(v, nx);
        list_remove(v, nx, ns);
        st(v, nx + 8, 0); // wipe: a merged header must never validate again
        size += ns;
    }
    if (b > v->lo) {
        uint64_t ps = ld(v, b - 8); // the footer, if the previous block is free
        if (ps >= MINBLK && ps % ALIGN == 0 && ps <= b - v->lo &&
            ld(v, b - ps + 8) == tag_of(v, b - ps, ST_FREE) && ld(v, b - ps) == ps) {
            list_remove(v, b - ps, ps);
            st(v, b + 8, 0);
            b -= ps;
            size += ps;
        }
    }
    if (b + size == top) { // back into the wilderness
        st(v, b + 8, 0);
        st(v, R_TOP, b);
        v->grown = v->hi - b > v->grown ? v->hi - b : v->grown;
        return;
    }
    list_insert(v, b, size);
}

static int core_free(struct view *v, uint64_t b)
{
    uint64_t size = live_size(v, b);
    if (size == 0) {
        return DSM_ERR_INVALID;
    }
    v->d_in_use -= (int64_t)size;
    v->d_free += (int64_t)size;
    v->d_blocks--;
    free_raw(v, b, size);
    return DSM_OK;
}

/* A free from another rank: mark RFREE and push on the pending list. */
static int core_defer(struct view *v, uint64_t b)
{
    uint64_t size = live_size(v, b);
    if (size == 0) {
        return DSM_ERR_INVALID;
    }
    st(v, b + 8, tag_of(v, b, ST_RFREE));
    st(v, b + 16, ld(v, R_PENDING));
    st(v, R_PENDING, b);
    v->d_in_use -= (int64_t)size;
    v->d_free += (int64_t)size;
    v->d_blocks--;
    return DSM_OK;
}

/* Merge every pending remote free back (their usage was counted when deferred). */
static void core_drain(struct view *v)
{
    uint64_t p = ld(v, R_PENDING);
    st(v, R_PENDING, 0);
    for (uint64_t k = 0; p != 0 && k < (v->hi - v->lo) / MINBLK; k++) {
        if (p < v->lo || p > v->hi - MINBLK || p % ALIGN != 0 ||
            ld(v, p + 8) != tag_of(v, p, ST_RFREE)) {
            dsmi_log(DSMI_LOG_ERROR, "heap: pending-free list broken at 0x%llx; the rest "
                                     "of it is leaked", (unsigned long long)p);
            return;
        }
        uint64_t next = ld(v, p + 16), size = ld(v, p);
        if (size < MINBLK || size % ALIGN || size > v->hi - p) {
            dsmi_log(DSMI_LOG_ERROR, "heap: pending block 0x%llx has a bad size",
                     (unsigned long long)p);
            return;
        }
        free_raw(v, p, size);
        p = next;
    }
}

/* Size of the largest block in the highest non-empty list (its first 8 blocks: exact
 * unless that list is longer, then a lower bound), or the wilderness if larger. */
static uint64_t top_largest(struct view *v)
{
    uint64_t flmap = ld(v, R_FLMAP), best = v->hi - ld(v, R_TOP);
    if (flmap == 0) {
        return best;
    }
    int fl = msb(flmap);
    uint64_t b = ld(v, R_HEAD(fl, msb(ld(v, R_SLMAP(fl)))));
    for (int k = 0; b != 0 && k < 8; k++) {
        uint64_t s = ld(v, b);
        best = s > best ? s : best;
        b = ld(v, b + 16);
    }
    return best;
}

/* The new largest free block, re-walking only when the old one may have shrunk. */
static uint64_t new_largest(struct view *v, uint64_t old)
{
    if (v->shrunk != 0 && v->shrunk >= old) {
        return top_largest(v);
    }
    return v->grown > old ? v->grown : old;
}

/* Lay out an empty heap in seg: all of [lo, hi) is wilderness. */
static void core_format(struct view *v, uint64_t salt)
{
    memset(v->base + USAGE_OFF, 0, ROOTS_END - USAGE_OFF);
    v->salt = salt;
    v->lo = DSMI_HDR_SIZE;
    v->hi = v->seg & ~(uint64_t)(ALIGN - 1);
    st(v, R_MAGIC, HEAP_MAGIC);
    st(v, R_SALT, salt);
    st(v, R_LO, v->lo);
    st(v, R_HI, v->hi);
    st(v, R_TOP, v->lo);
    st(v, U_FREE, v->hi - v->lo);
    st(v, U_LARGEST, v->hi - v->lo);
}

/* ---- the invariant checker (also the reload validator) ---- */

struct walk {
    struct dsmi_heap_report r;
    uint64_t last; // offset of the last block
};

/* Walk the block chain: sizes, tags, footers, no two free neighbours. */
static int walk_blocks(struct view *v, struct walk *w)
{
    uint64_t b = v->lo, prev_state = 0, top = ld(v, R_TOP);
    memset(w, 0, sizeof *w);
    while (b < top) {
        uint64_t size = ld(v, b), tag = ld(v, b + 8), state = tag & 7;
        if (size < MINBLK || size % ALIGN || size > top - b || state < ST_FREE ||
            tag != tag_of(v, b, state)) {
            v->why = "block chain broken (bad size or tag)";
            return DSM_ERR_CORRUPT;
        }
        if (state == ST_FREE && (prev_state == ST_FREE || ld(v, b + size - 8) != size)) {
            v->why = prev_state == ST_FREE ? "two adjacent free blocks" : "bad footer";
            return DSM_ERR_CORRUPT;
        }
        w->r.blocks += state == ST_ALLOC;
        w->r.free_blocks += state == ST_FREE;
        w->r.pending += state == ST_RFREE;
        w->r.in_use += state == ST_ALLOC ? size : 0;
        w->r.free += state == ST_ALLOC ? 0 : size;
        w->r.largest = state == ST_FREE && size > w->r.largest ? size : w->r.largest;
        prev_state = state;
        w->last = b;
        b += size;
    }
    if (prev_state == ST_FREE) {
        v->why = "a free block next to the wilderness";
        return DSM_ERR_CORRUPT;
    }
    w->r.free += v->hi - top; // the wilderness: free, in no list
    w->r.largest = v->hi - top > w->r.largest ? v->hi - top : w->r.largest;
    return DSM_OK;
}

/* Every list: bitmap bits match, members are free blocks of that class, links agree. */
static int walk_lists(struct view *v, const struct walk *w)
{
    uint64_t listed = 0, flmap = ld(v, R_FLMAP);
    for (int fl = 0; fl < FL_COUNT; fl++) {
        uint64_t slmap = ld(v, R_SLMAP(fl));
        if ((slmap != 0) != ((flmap >> fl) & 1) || slmap >> SL_COUNT) {
            v->why = "bitmap levels disagree";
            return DSM_ERR_CORRUPT;
        }
        for (int sl = 0; sl < SL_COUNT; sl++) {
            uint64_t b = ld(v, R_HEAD(fl, sl)), prev = 0;
            if ((b != 0) != ((slmap >> sl) & 1)) {
                v->why = "list head and bitmap disagree";
                return DSM_ERR_CORRUPT;
            }
            for (; b != 0; prev = b, b = ld(v, b + 16)) {
                int f, s;
                if (b < v->lo || b > v->hi - MINBLK || b % ALIGN ||
                    ld(v, b + 8) != tag_of(v, b, ST_FREE) || ld(v, b + 24) != prev ||
                    ++listed > w->r.free_blocks) {
                    v->why = "free list broken (bad member, link or cycle)";
                    return DSM_ERR_CORRUPT;
                }
                mapping(ld(v, b), &f, &s);
                if (f != fl || s != sl) {
                    v->why = "free block in the wrong list";
                    return DSM_ERR_CORRUPT;
                }
            }
        }
    }
    if (listed != w->r.free_blocks) {
        v->why = "a free block is in no list";
        return DSM_ERR_CORRUPT;
    }
    return DSM_OK;
}

static int walk_pending(struct view *v, const struct walk *w)
{
    uint64_t n = 0;
    for (uint64_t p = ld(v, R_PENDING); p != 0; p = ld(v, p + 16)) {
        if (p < v->lo || p > v->hi - MINBLK || p % ALIGN ||
            ld(v, p + 8) != tag_of(v, p, ST_RFREE) || ++n > w->r.pending) {
            v->why = "pending-free list broken";
            return DSM_ERR_CORRUPT;
        }
    }
    if (n != w->r.pending) {
        v->why = "a remotely freed block is not on the pending list";
        return DSM_ERR_CORRUPT;
    }
    return DSM_OK;
}

/* Read the roots into v (salt, bounds), checking they describe a heap of seg bytes. */
static int roots_valid(struct view *v)
{
    v->salt = ld(v, R_SALT);
    v->lo = ld(v, R_LO);
    v->hi = ld(v, R_HI);
    uint64_t top = ld(v, R_TOP);
    if (ld(v, R_MAGIC) != HEAP_MAGIC || v->lo != DSMI_HDR_SIZE || v->hi > v->seg ||
        v->hi % ALIGN || v->hi < v->lo + MINBLK || top < v->lo || top > v->hi || top % ALIGN) {
        v->why = "heap roots invalid (magic or bounds)";
        return DSM_ERR_CORRUPT;
    }
    return DSM_OK;
}

/* Everything but the published usage. */
static int core_walk(struct view *v, struct walk *w)
{
    int rc = roots_valid(v);
    if (rc == DSM_OK && (rc = walk_blocks(v, w)) == DSM_OK && (rc = walk_lists(v, w)) == DSM_OK) {
        rc = walk_pending(v, w);
    }
    return rc;
}

static int core_check(struct view *v, struct dsmi_heap_report *r)
{
    struct walk w = {{0}, 0};
    int rc = core_walk(v, &w);
    if (rc == DSM_OK) {
        if (ld(v, U_IN_USE) != w.r.in_use || ld(v, U_FREE) != w.r.free ||
            ld(v, U_BLOCKS) != w.r.blocks || ld(v, U_LARGEST) > w.r.largest) {
            v->why = "published usage differs from the heap";
            rc = DSM_ERR_CORRUPT;
        }
    }
    if (r != NULL) {
        *r = w.r;
    }
    return rc;
}

/* ---- the core on a plain buffer (fuzz target): usage applied with plain stores ---- */

static void plain_view(struct view *v, void *seg)
{
    memset(v, 0, sizeof *v);
    v->base = seg;
    v->salt = ld(v, R_SALT);
    v->lo = ld(v, R_LO);
    v->hi = ld(v, R_HI);
    v->seg = v->hi;
}

static void plain_publish(struct view *v)
{
    uint64_t old = ld(v, U_LARGEST);
    st(v, U_IN_USE, ld(v, U_IN_USE) + (uint64_t)v->d_in_use);
    st(v, U_FREE, ld(v, U_FREE) + (uint64_t)v->d_free);
    st(v, U_BLOCKS, ld(v, U_BLOCKS) + (uint64_t)v->d_blocks);
    st(v, U_LARGEST, new_largest(v, old));
}

int dsmi_heap_core_format(void *seg, uint64_t seg_size, uint64_t salt)
{
    if (seg == NULL || seg_size < DSMI_HDR_SIZE + 4096) {
        return DSM_ERR_ARG;
    }
    struct view v = {.base = seg, .seg = seg_size};
    core_format(&v, salt);
    return DSM_OK;
}

int dsmi_heap_core_alloc(void *seg, uint64_t size, uint64_t align, uint64_t *off)
{
    struct view v;
    plain_view(&v, seg);
    uint64_t bs = block_size(size), b = 0;
    if (size == 0 || bs == 0 || bs > v.hi - v.lo || align == 0 || (align & (align - 1))) {
        return DSM_ERR_ARG;
    }
    core_drain(&v);
    int rc = align <= ALIGN ? core_alloc(&v, bs, &b) : core_alloc_aligned(&v, bs, align, &b);
    plain_publish(&v);
    if (rc == DSM_OK) {
        *off = b + HDR;
    }
    return rc;
}

int dsmi_heap_core_free(void *seg, uint64_t off, const char **why)
{
    struct view v;
    plain_view(&v, seg);
    int rc = core_free(&v, off - HDR);
    plain_publish(&v);
    if (why) {
        *why = v.why;
    }
    return rc;
}

int dsmi_heap_core_defer(void *seg, uint64_t off, const char **why)
{
    struct view v;
    plain_view(&v, seg);
    int rc = core_defer(&v, off - HDR);
    plain_publish(&v);
    if (why) {
        *why = v.why;
    }
    return rc;
}

int dsmi_heap_core_check(void *seg, struct dsmi_heap_report *r, const char **why)
{
    struct view v;
    plain_view(&v, seg);
    v.seg = v.hi;
    int rc = core_check(&v, r);
    if (why) {
        *why = v.why;
    }
    return rc;
}

/* ------------------------------------------------------------------------------------
 * The MPI layer: the lock, views of this or another rank's heap, publication, the API.
 * ---------------------------------------------------------------------------------- */

#define LOCK_TIMEOUT_NS (UINT64_C(30) * 1000000000u)

static uint64_t heap_cap; // bytes of every rank's heap (all segments have one size)

/* Bytes of usage + roots a remote operation fetches: list heads past the segment's
 * size class are never used. */
static int roots_len(void)
{
    int fl, sl;
    mapping(dsmi_w.size, &fl, &sl);
    return (int)(R_HEAD(fl + 1 < FL_COUNT ? fl + 1 : FL_COUNT, 0) - USAGE_OFF);
}

/* Spin on MPI_Compare_and_swap until rank's heap lock is ours. Holders never wait for
 * anything while holding it, so the wait is short; yield because the holder may share
 * our core (oversubscribed ranks or threads), and give up after LOCK_TIMEOUT_NS. */
static int lock_take(int rank, const char *func, unsigned *ops)
{
    const int64_t id = dsmi_rt.rank + 1, zero = 0;
    int64_t old = 0;
    uint64_t t0 = 0;
    for (unsigned long spin = 0;; spin++) {
        int rc = dsmi_rma_cas(dsmi_gptr(rank, R_LOCK), &id, &zero, &old, MPI_INT64_T, false,
                              func);
        (*ops)++;
        if (rc != DSM_OK || old == 0) {
            return rc;
        }
        if (spin == 0) {
            t0 = dsmi_now_ns();
        } else if (spin % 64 == 0 && dsmi_now_ns() - t0 > LOCK_TIMEOUT_NS) {
            return dsmi_fail(DSM_ERR_TIMEOUT, func, "rank %d's heap lock has been held by rank "
                             "%lld for over 30 s", rank, (long long)old - 1);
        }
        sched_yield();
    }
}

/* Release the lock and publish this operation's usage deltas: one accumulate, so a
 * reader never sees the heap unlocked with stale usage of this operation. */
static int release(int rank, const int64_t d[4], const char *func)
{
    int64_t all[5] = {d[0], d[1], d[2], d[3], -(int64_t)(dsmi_rt.rank + 1)};
    DSMI_MPI(func, MPI_Accumulate(all, 5, MPI_INT64_T, rank, U_IN_USE, 5, MPI_INT64_T, MPI_SUM,
                                  dsmi_w.win));
    dsmi_count(&dsmi_stat.atomics, 1);
    return dsmi_rma_flush(rank, func);
}

static void local_view(struct view *v)
{
    memset(v, 0, sizeof *v);
    v->base = dsmi_w.base;
    v->seg = dsmi_w.size;
    v->salt = ld(v, R_SALT);
    v->lo = DSMI_HDR_SIZE;
    v->hi = v->lo + heap_cap;
}

/* Lock this rank's heap and merge pending remote frees. */
static int local_begin(struct view *v, const char *func)
{
    unsigned ops = 0;
    int rc = lock_take(dsmi_rt.rank, func, &ops);
    if (rc != DSM_OK) {
        return rc;
    }
    // Remote holders' puts completed before their release; make them visible to loads.
    DSMI_MPI(func, MPI_Win_sync(dsmi_w.win));
    local_view(v);
    if (ld(v, R_PENDING) != 0) {
        core_drain(v);
    }
    return DSM_OK;
}

static int local_end(struct view *v, const char *func)
{
    uint64_t old = ld(v, U_LARGEST);
    int64_t d[4] = {v->d_in_use, v->d_free, (int64_t)(new_largest(v, old) - old), v->d_blocks};
    DSMI_MPI(func, MPI_Win_sync(dsmi_w.win)); // our stores before the next holder's gets
    return release(dsmi_rt.rank, d, func);
}

static int remote_begin(struct view *v, struct rcache *rc, int rank, const char *func)
{
    *rc = (struct rcache){.rank = rank, .func = func, .dlo = UINT64_MAX};
    memset(v, 0, sizeof *v);
    v->rc = rc;
    v->seg = dsmi_w.size;
    int err = lock_take(rank, func, &rc->ops);
    rc->flushes = rc->ops; // each CAS was flushed
    if (err != DSM_OK) {
        return err;
    }
    rc_get(rc, USAGE_OFF, rc->roots, roots_len());
    if (rc->err == DSM_OK && roots_valid(v) != DSM_OK) {
        int64_t none[4] = {0, 0, 0, 0};
        release(rank, none, func);
        return dsmi_fail(DSM_ERR_CORRUPT, func, "rank %d: %s", rank, v->why);
    }
    return rc->err;
}

static int remote_end(struct view *v, const char *func)
{
    struct rcache *rc = v->rc;
    uint64_t old = rc->roots[(U_LARGEST - USAGE_OFF) / 8];
    int64_t d[4] = {v->d_in_use, v->d_free, (int64_t)(new_largest(v, old) - old), v->d_blocks};
    rc_writeback(rc); // complete at the target before the release below
    int err = release(rc->rank, d, func);
    rc->ops++;
    rc->flushes++;
    last_ops = rc->ops;
    last_flushes = rc->flushes;
    return rc->err != DSM_OK ? rc->err : err;
}

static int nomem(struct view *v, int rank, size_t size, uint64_t bs, const char *func)
{
    uint64_t fr = ld(v, U_FREE) + (uint64_t)v->d_free, big = new_largest(v, ld(v, U_LARGEST));
    return dsmi_fail(DSM_ERR_NOMEM, func, "rank %d has no room for %zu bytes (a %llu-byte "
                     "block): %llu bytes free, largest free block %llu bytes (%s)", rank, size,
                     (unsigned long long)bs, (unsigned long long)fr, (unsigned long long)big,
                     v->why);
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
    *bs = block_size(size);
    if (*bs == 0 || *bs > heap_cap) {
        return dsmi_fail(DSM_ERR_ARG, func, "size %zu exceeds the %llu bytes of a segment's "
                         "heap", size, (unsigned long long)heap_cap);
    }
    if (align == 0 || (align & (align - 1)) != 0 || align > heap_cap) {
        return dsmi_fail(DSM_ERR_ARG, func, "alignment %zu is not a power of two up to the "
                         "heap size", align);
    }
    return DSM_OK;
}

static int alloc_local(size_t size, uint64_t bs, size_t align, dsm_gptr_t *out,
                       const char *func)
{
    struct view v;
    uint64_t b = 0;
    int rc = local_begin(&v, func);
    if (rc != DSM_OK) {
        return rc;
    }
    rc = align <= ALIGN ? core_alloc(&v, bs, &b) : core_alloc_aligned(&v, bs, align, &b);
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
    struct view v;
    struct rcache rc;
    uint64_t b = 0;
    int err = remote_begin(&v, &rc, rank, func);
    if (err != DSM_OK) {
        return err;
    }
    for (int pass = 0; pass < 2; pass++) {
        err = align <= ALIGN ? core_alloc(&v, bs, &b) : core_alloc_aligned(&v, bs, align, &b);
        if (err == DSM_OK || pass == 1 || ld(&v, R_PENDING) == 0) {
            break;
        }
        core_drain(&v);
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
    if (rank < 0 || rank >= dsmi_rt.nranks) {
        return dsmi_fail(DSM_ERR_RANGE, func, "rank %d is not in 0..%d", rank,
                         dsmi_rt.nranks - 1);
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
    if (r >= (uint64_t)dsmi_rt.nranks || off > dsmi_w.size) {
        return dsmi_fail(DSM_ERR_INVALID, "dsm_free", "%s is not in the address space (%d "
                         "ranks, %zu-byte segments)", dsm_gptr_str(g, s, sizeof s),
                         dsmi_rt.nranks, dsmi_w.size);
    }
    if (off < DSMI_HDR_SIZE + HDR) {
        return dsmi_fail(DSM_ERR_INVALID, "dsm_free", "%s points into rank %d's runtime "
                         "header, not at a block", dsm_gptr_str(g, s, sizeof s), (int)r);
    }
    if (off % ALIGN != 0) { // refused without a round trip: blocks are aligned
        return dsmi_fail(DSM_ERR_INVALID, "dsm_free", "%s is not %u-byte aligned, so not a "
                         "block", dsm_gptr_str(g, s, sizeof s), ALIGN);
    }
    *rank = (int)r;
    *blk = off - HDR;
    return DSM_OK;
}

int dsm_free(dsm_gptr_t g)
{
    struct view v;
    struct rcache rc;
    int rank = 0, err, err2;
    uint64_t b = 0;
    char s[48];
    DSMI_CHECK_UP("dsm_free");
    if ((err = free_target(g, &rank, &b)) != DSM_OK) {
        return err;
    }
    if (rank == dsmi_rt.rank) {
        if ((err = local_begin(&v, "dsm_free")) != DSM_OK) {
            return err;
        }
        err = core_free(&v, b);
        err2 = local_end(&v, "dsm_free");
    } else {
        if ((err = remote_begin(&v, &rc, rank, "dsm_free")) != DSM_OK) {
            return err;
        }
        err = core_defer(&v, b);
        err2 = remote_end(&v, "dsm_free");
    }
    if (err != DSM_OK) {
        return dsmi_fail(err, "dsm_free", "%s: %s", dsm_gptr_str(g, s, sizeof s), v.why);
    }
    return err2;
}

int dsm_usage(int rank, dsm_usage_t *out)
{
    DSMI_CHECK_UP("dsm_usage");
    if (out == NULL) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_usage", "out is NULL");
    }
    if (rank < 0 || rank >= dsmi_rt.nranks) {
        return dsmi_fail(DSM_ERR_RANGE, "dsm_usage", "rank %d is not in 0..%d", rank,
                         dsmi_rt.nranks - 1);
    }
    int64_t u[4];
    // Element-wise atomic against the holders' MPI_Accumulate: no torn counter.
    DSMI_MPI("dsm_usage", MPI_Get_accumulate(NULL, 0, MPI_INT64_T, u, 4, MPI_INT64_T, rank,
                                             U_IN_USE, 4, MPI_INT64_T, MPI_NO_OP, dsmi_w.win));
    dsmi_count(&dsmi_stat.atomics, 1);
    int rc = dsmi_rma_flush(rank, "dsm_usage");
    if (rc == DSM_OK) {
        *out = (dsm_usage_t){(uint64_t)u[0], (uint64_t)u[1], (uint64_t)u[2], (uint64_t)u[3],
                             heap_cap};
    }
    return rc;
}

/* ---- collective symmetric allocation ---- */

/* Lowest y >= from such that [y, y + bs) lies in one free block, leaving before it
 * either nothing or room for a free block. UINT64_MAX when there is none. */
static uint64_t fit_in(uint64_t b, uint64_t end, uint64_t from, uint64_t bs)
{
    uint64_t y = from > b ? from : b;
    y = y != b && y - b < MINBLK ? b + MINBLK : y;
    return y <= end && bs <= end - y ? y : UINT64_MAX;
}

static uint64_t local_fit(struct view *v, uint64_t from, uint64_t bs)
{
    uint64_t top = ld(v, R_TOP);
    for (uint64_t b = v->lo, size; b < top; b += size) {
        size = ld(v, b);
        if (size < MINBLK || size > top - b) {
            return UINT64_MAX; // a broken chain: dsmi_heap_check reports it
        }
        if (b + size > from && ld(v, b + 8) == tag_of(v, b, ST_FREE) &&
            fit_in(b, b + size, from, bs) != UINT64_MAX) {
            return fit_in(b, b + size, from, bs);
        }
    }
    return fit_in(top, v->hi, from, bs);
}

/* Take [y, y + bs) out of the free block that holds it, if one still does. */
static int claim(struct view *v, uint64_t y, uint64_t bs)
{
    uint64_t top = ld(v, R_TOP);
    if (y >= top && fit_in(top, v->hi, y, bs) == y) {
        if (y != top) {
            list_insert(v, top, y - top);
        }
        bs = v->hi - (y + bs) < MINBLK ? v->hi - y : bs;
        st(v, R_TOP, y + bs);
        v->shrunk = v->hi - top;
        mark_alloc(v, y, bs);
        return DSM_OK;
    }
    for (uint64_t b = v->lo, size; b <= y && b < top; b += size) {
        size = ld(v, b);
        if (size < MINBLK || size > top - b) {
            break;
        }
        if (y + bs <= b + size && (y == b || y - b >= MINBLK) &&
            ld(v, b + 8) == tag_of(v, b, ST_FREE)) {
            uint64_t rest = b + size - y;
            list_remove(v, b, size);
            if (y != b) {
                list_insert(v, b, y - b);
            }
            if (rest - bs >= MINBLK) {
                list_insert(v, y + bs, rest - bs);
            } else {
                bs = rest;
            }
            mark_alloc(v, y, bs);
            return DSM_OK;
        }
    }
    return DSM_ERR_NOMEM;
}

/* One locked local step of dsm_alloc_all: find (claim = false) or claim y. */
static int sym_step(bool do_claim, uint64_t from, uint64_t bs, uint64_t *y)
{
    struct view v;
    int rc = local_begin(&v, "dsm_alloc_all");
    if (rc != DSM_OK) {
        return rc;
    }
    int got = DSM_OK;
    if (do_claim) {
        got = claim(&v, *y, bs);
    } else {
        *y = local_fit(&v, from, bs);
    }
    rc = local_end(&v, "dsm_alloc_all");
    return rc != DSM_OK ? rc : got;
}

/* Max over ranks of a and of -a (so also the min), with one allreduce. */
static int minmax(int64_t a, int64_t *mx, int64_t *mn)
{
    int64_t in[2] = {a, -a}, outv[2];
    DSMI_MPI("dsm_alloc_all",
             MPI_Allreduce(in, outv, 2, MPI_INT64_T, MPI_MAX, dsmi_rt.comm));
    *mx = outv[0];
    *mn = -outv[1];
    return DSM_OK;
}

/*
 * Ranks agree on the lowest offset that is free on all of them: each proposes its
 * lowest fit at or above the current candidate, the maximum becomes the next candidate,
 * until all propose the same one; then all claim it. A remote allocation may take the
 * range between the search and the claim: then the claim is undone everywhere and the
 * search goes on above it. Every rank takes the same branch (allreduce results).
 */
static int sym_search(uint64_t bs, uint64_t *at)
{
    uint64_t from = DSMI_HDR_SIZE, y = 0;
    for (int round = 0; round < 256; round++) {
        int64_t mx, mn;
        int rc = sym_step(false, from, bs, &y);
        if (rc != DSM_OK || (rc = minmax(y == UINT64_MAX ? INT64_MAX : (int64_t)y, &mx, &mn))) {
            return rc;
        }
        if (mx == INT64_MAX) {
            return DSM_ERR_NOMEM;
        }
        if (mn != mx) {
            from = (uint64_t)mx;
            continue;
        }
        rc = sym_step(true, 0, bs, &y);
        if ((rc != DSM_OK && rc != DSM_ERR_NOMEM) || minmax(rc, &mx, &mn) != DSM_OK) {
            return rc != DSM_OK ? rc : DSM_ERR_MPI;
        }
        if (mx == DSM_OK) {
            *at = y;
            return DSM_OK;
        }
        if (rc == DSM_OK && dsm_free(dsmi_gptr(dsmi_rt.rank, y + HDR)) != DSM_OK) {
            return DSM_ERR_INTERNAL;
        }
        from = y + ALIGN;
    }
    return DSM_ERR_NOMEM;
}

int dsm_alloc_all(size_t size, dsm_gptr_t *out)
{
    uint64_t bs = 0, y = 0;
    DSMI_CHECK_UP("dsm_alloc_all");
    int rc = alloc_args(size, ALIGN, out, &bs, "dsm_alloc_all"), rc2;
    int64_t mx = 0, mn = 0;
    if ((rc2 = minmax(rc == DSM_OK ? (int64_t)size : -1, &mx, &mn)) != DSM_OK) {
        return rc2;
    }
    if (rc != DSM_OK || mn != mx) {
        return rc != DSM_OK ? rc : dsmi_fail(DSM_ERR_ARG, "dsm_alloc_all",
                                             "ranks asked for different sizes (%lld to %lld "
                                             "bytes) or one failed its checks", (long long)mn,
                                             (long long)mx);
    }
    rc = sym_search(bs, &y);
    if (rc == DSM_ERR_NOMEM) {
        dsm_usage_t u = {0};
        dsm_usage(dsmi_rt.rank, &u);
        return dsmi_fail(rc, "dsm_alloc_all", "no offset has %zu free bytes on every rank "
                         "(this rank: %llu bytes free, largest free block %llu)", size,
                         (unsigned long long)u.free, (unsigned long long)u.largest_free);
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
    int64_t mx = 0, mn = 0;
    int rc = minmax(g.bits == 0 ? -1 : (int64_t)off, &mx, &mn);
    if (rc != DSM_OK) {
        return rc;
    }
    if (mx != mn || mx < 0) {
        return dsmi_fail(DSM_ERR_INVALID, "dsm_free_all", "%s (offsets 0x%llx to 0x%llx "
                         "across ranks)", mx < 0 || mn < 0 ? "a rank passed a null pointer"
                         : "ranks passed different offsets", (unsigned long long)mn,
                         (unsigned long long)mx);
    }
    rc = dsm_free(dsmi_gptr(dsmi_rt.rank, off));
    int rc2 = minmax(rc, &mx, &mn);
    if (rc == DSM_OK && rc2 == DSM_OK && mx != DSM_OK) {
        return dsmi_fail((int)mx, "dsm_free_all", "another rank could not free offset 0x%llx",
                         (unsigned long long)off);
    }
    return rc != DSM_OK ? rc : rc2;
}

/* ---- the runtime contract ---- */

int dsmi_heap_start(void)
{
    const struct dsmi_ident *id = (const struct dsmi_ident *)(dsmi_w.base + DSMI_HDR_IDENT_OFF);
    struct view v = {.base = dsmi_w.base, .seg = dsmi_w.size};
    // A salt per run and rank: tags of an earlier run's blocks never validate.
    core_format(&v, id->launch_id ^ ((uint64_t)dsmi_rt.rank * UINT64_C(0x9E3779B97F4A7C15)));
    heap_cap = v.hi - v.lo;
    // Our stores before any other rank's first get (after dsm_init's allreduce).
    DSMI_MPI("dsm_init", MPI_Win_sync(dsmi_w.win));
    return DSM_OK;
}

int dsmi_heap_stop(void)
{
    heap_cap = 0;
    return DSM_OK;
}

/* Everything above top is wilderness, whose bytes mean nothing. Read when the heap
 * is quiet (checkpoints are collective). */
uint64_t dsmi_heap_extent(void)
{
    uint64_t top;
    memcpy(&top, dsmi_w.base + R_TOP, 8);
    return top;
}

int dsmi_heap_reload(void)
{
    struct view v = {.base = dsmi_w.base, .seg = dsmi_w.size};
    struct walk w = {{0}, 0};
    int rc = roots_valid(&v);
    if (rc == DSM_OK) {
        rc = core_walk(&v, &w);
    }
    if (rc != DSM_OK) {
        return dsmi_fail(DSM_ERR_CORRUPT, "dsm_init", "restored heap is invalid: %s", v.why);
    }
    // Derived state: the lock (no holder survives a restore) and the usage counters.
    st(&v, R_LOCK, 0);
    st(&v, U_IN_USE, w.r.in_use);
    st(&v, U_FREE, w.r.free);
    st(&v, U_LARGEST, w.r.largest);
    st(&v, U_BLOCKS, w.r.blocks);
    heap_cap = v.hi - v.lo;
    DSMI_MPI("dsm_init", MPI_Win_sync(dsmi_w.win));
    return DSM_OK;
}

int dsmi_heap_check(struct dsmi_heap_report *r)
{
    struct view v;
    DSMI_CHECK_UP("dsmi_heap_check");
    int rc = local_begin(&v, "dsmi_heap_check");
    if (rc != DSM_OK) {
        return rc;
    }
    int bad = core_check(&v, r);
    if ((rc = local_end(&v, "dsmi_heap_check")) != DSM_OK) {
        return rc;
    }
    if (bad != DSM_OK) {
        return dsmi_fail(bad, "dsmi_heap_check", "%s", v.why);
    }
    return DSM_OK;
}
