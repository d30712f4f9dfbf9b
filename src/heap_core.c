/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The allocator: TLSF (two-level segregated fit, Masmano et al. 2004) over a view of a
 * segment (heap_core.h), the same code for the local heap, a remote heap through RMA
 * and a plain buffer (the fuzz target). Free blocks sit in 37 x 16 segregated lists
 * indexed by (log2 size, 16 linear steps inside each power of two); two bitmap levels
 * find a non-empty list in O(1); boundary tags let a free merge with both neighbours
 * at once. Why TLSF and not size-class slabs:
 *  - bounded O(1) alloc and free with good-fit, whose fragmentation in the literature
 *    and in our churn test is low (no slab ever pins memory of one size class);
 *  - the whole segment is one pool: any size from 1 byte to the segment works;
 *  - its metadata are a few KiB of list heads plus 16 bytes per block, all offsets, so
 *    another rank can run the very same code through RMA;
 *  - allocation takes the tail of the first fitting free block when the rest stays in
 *    the same list: then no list changes at all, and a remote allocation is 6 RMA
 *    operations (lock CAS, get roots, get block, put size, put footer+header, release).
 * The never-used top of the heap, [top, hi), is not a listed block but a bump region
 * (dlmalloc's "wilderness"), used only when no listed block fits: live data stay packed
 * at the bottom (a checkpoint writes [0, top) only), and allocating from it is 5 RMA
 * operations (CAS, get roots, put header, put top, release). Freed blocks next to it
 * merge back into it.
 *
 * Invariants (dsmi_hcore_walk checks them all): blocks tile [lo, top) exactly; no two
 * free blocks touch and none touches top; every free block is in exactly the list of
 * its size, with consistent links, and the bitmaps say which lists are non-empty; each
 * RFREE block is on the pending list once; a CACHED block (the owner's cache,
 * heap_cache.c) is allocated as far as the lists and usage go, and never merged; tags of blocks
 * merged away are wiped, so no stale header validates; in_use + free = hi - lo. The core takes no
 * lock and makes no MPI call itself: heap.c holds the heap lock around every use.
 */
#include "heap_core.h"

/* The first list whose every block holds size bytes (size rounded up to the next
 * list boundary), searching upwards through the bitmaps. 0 when none. */
static uint64_t find_free(struct dsmi_hview *v, uint64_t size)
{
    int fl, sl;
    if (size >= (1u << FL_SHIFT)) {
        size += (UINT64_C(1) << (dsmi_hcore_msb(size) - SL_LOG2)) - 1;
    }
    dsmi_hcore_mapping(size, &fl, &sl);
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

static void list_remove(struct dsmi_hview *v, uint64_t b, uint64_t size)
{
    int fl, sl;
    dsmi_hcore_mapping(size, &fl, &sl);
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
static void list_insert(struct dsmi_hview *v, uint64_t b, uint64_t size)
{
    int fl, sl;
    dsmi_hcore_mapping(size, &fl, &sl);
    uint64_t head = ld(v, R_HEAD(fl, sl));
    st(v, b, size);
    st(v, b + 8, dsmi_hcore_tag(v, b, ST_FREE));
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

static void mark_alloc(struct dsmi_hview *v, uint64_t b, uint64_t size)
{
    st(v, b, size);
    st(v, b + 8, dsmi_hcore_tag(v, b, ST_ALLOC));
    v->d_in_use += (int64_t)size;
    v->d_free -= (int64_t)size;
    v->d_blocks++;
}

/* Block bytes for a request of n bytes; 0 when it cannot fit any heap. */
uint64_t dsmi_hcore_block_size(uint64_t n)
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
static uint64_t find_exact(struct dsmi_hview *v, uint64_t bs)
{
    int fl, sl;
    dsmi_hcore_mapping(bs, &fl, &sl);
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
static int wild_alloc(struct dsmi_hview *v, uint64_t bs, uint64_t align, uint64_t *out)
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

int dsmi_hcore_alloc(struct dsmi_hview *v, uint64_t bs, uint64_t *out)
{
    uint64_t f = find_free(v, bs);
    f = f ? f : find_exact(v, bs);
    if (f == 0) {
        return wild_alloc(v, bs, ALIGN, out);
    }
    uint64_t fs = ld(v, f);
    int fl, sl, rfl, rsl;
    dsmi_hcore_mapping(fs, &fl, &sl);
    if (fs - bs >= MINBLK) {
        dsmi_hcore_mapping(fs - bs, &rfl, &rsl);
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
int dsmi_hcore_alloc_aligned(struct dsmi_hview *v, uint64_t bs, uint64_t align, uint64_t *out)
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
static uint64_t live_size(struct dsmi_hview *v, uint64_t b)
{
    if (b < v->lo || b > v->hi - MINBLK || b % ALIGN != 0) {
        v->why = "not the start of a block of this heap (outside it or misaligned)";
        return 0;
    }
    uint64_t tag = ld(v, b + 8), size = ld(v, b);
    if (tag == dsmi_hcore_tag(v, b, ST_FREE) || tag == dsmi_hcore_tag(v, b, ST_RFREE) ||
        tag == dsmi_hcore_tag(v, b, ST_CACHED)) {
        v->why = "block already freed (double free)";
        return 0;
    }
    if (tag != dsmi_hcore_tag(v, b, ST_ALLOC)) {
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
static void free_raw(struct dsmi_hview *v, uint64_t b, uint64_t size)
{
    uint64_t nx = b + size, top = ld(v, R_TOP);
    if (nx < top && ld(v, nx + 8) == dsmi_hcore_tag(v, nx, ST_FREE)) {
        uint64_t ns = ld(v, nx);
        list_remove(v, nx, ns);
        st(v, nx + 8, 0); // wipe: a merged header must never validate again
        size += ns;
    }
    if (b > v->lo) {
        uint64_t ps = ld(v, b - 8); // the footer, if the previous block is free
        if (ps >= MINBLK && ps % ALIGN == 0 && ps <= b - v->lo &&
            ld(v, b - ps + 8) == dsmi_hcore_tag(v, b - ps, ST_FREE) && ld(v, b - ps) == ps) {
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

/* Free block b of size bytes (a live or a cached one) and count it out of the usage. */
static void free_counted(struct dsmi_hview *v, uint64_t b, uint64_t size)
{
    v->d_in_use -= (int64_t)size;
    v->d_free += (int64_t)size;
    v->d_blocks--;
    free_raw(v, b, size);
}

int dsmi_hcore_free(struct dsmi_hview *v, uint64_t b)
{
    uint64_t size = live_size(v, b);
    if (size == 0) {
        return DSM_ERR_INVALID;
    }
    free_counted(v, b, size);
    return DSM_OK;
}

/* A free from another rank: mark RFREE and push on the pending list. */
int dsmi_hcore_defer(struct dsmi_hview *v, uint64_t b)
{
    uint64_t size = live_size(v, b);
    if (size == 0) {
        return DSM_ERR_INVALID;
    }
    st(v, b + 8, dsmi_hcore_tag(v, b, ST_RFREE));
    st(v, b + 16, ld(v, R_PENDING));
    st(v, R_PENDING, b);
    v->d_in_use -= (int64_t)size;
    v->d_free += (int64_t)size;
    v->d_blocks--;
    return DSM_OK;
}

/* ---- the owner's cache of small blocks (heap_cache.c) ---- */

int dsmi_hcore_carve(struct dsmi_hview *v, uint64_t bs, unsigned k, uint64_t *out)
{
    uint64_t b = 0;
    int rc = dsmi_hcore_alloc(v, bs * k, &b);
    if (rc != DSM_OK) {
        return rc;
    }
    uint64_t size = ld(v, b); // k * bs, or up to MINBLK - ALIGN more (a tail too small)
    for (unsigned i = 0; i + 1 < k; i++) {
        st(v, b + i * bs, bs);
        st(v, b + i * bs + 8, dsmi_hcore_tag(v, b + i * bs, ST_CACHED));
    }
    uint64_t last = b + (k - 1) * bs;
    st(v, last, size - (k - 1) * bs);
    st(v, last + 8, dsmi_hcore_tag(v, last, ST_ALLOC));
    v->d_blocks += (int64_t)k - 1; // mark_alloc counted one block and all the bytes
    *out = b;
    return DSM_OK;
}

int dsmi_hcore_uncache(struct dsmi_hview *v, uint64_t b)
{
    uint64_t size = b >= v->lo && b <= v->hi - MINBLK && b % ALIGN == 0 ? ld(v, b) : 0;
    if (size < MINBLK || size % ALIGN || size > v->hi - b ||
        ld(v, b + 8) != dsmi_hcore_tag(v, b, ST_CACHED)) {
        v->why = "not a cached block";
        return DSM_ERR_INVALID;
    }
    free_counted(v, b, size);
    return DSM_OK;
}

/* Walk the chain (already validated) and free every cached block. A free merges with its
 * free neighbours, so the walk resumes past the block after it when that one was free. */
void dsmi_hcore_uncache_all(struct dsmi_hview *v)
{
    for (uint64_t b = v->lo; b < ld(v, R_TOP);) {
        uint64_t size = ld(v, b), end = b + size;
        if (ld(v, b + 8) != dsmi_hcore_tag(v, b, ST_CACHED)) {
            b = end;
            continue;
        }
        if (end < ld(v, R_TOP) && ld(v, end + 8) == dsmi_hcore_tag(v, end, ST_FREE)) {
            end += ld(v, end);
        }
        dsmi_hcore_uncache(v, b);
        b = end;
    }
}

/* Merge every pending remote free back (their usage was counted when deferred). */
void dsmi_hcore_drain(struct dsmi_hview *v)
{
    uint64_t p = ld(v, R_PENDING);
    st(v, R_PENDING, 0);
    for (uint64_t k = 0; p != 0 && k < (v->hi - v->lo) / MINBLK; k++) {
        if (p < v->lo || p > v->hi - MINBLK || p % ALIGN != 0 ||
            ld(v, p + 8) != dsmi_hcore_tag(v, p, ST_RFREE)) {
            dsmi_log(DSMI_LOG_ERROR,
                     "heap: pending-free list broken at 0x%llx; the rest "
                     "of it is leaked",
                     (unsigned long long)p);
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
static uint64_t top_largest(struct dsmi_hview *v)
{
    uint64_t flmap = ld(v, R_FLMAP), best = v->hi - ld(v, R_TOP);
    if (flmap == 0) {
        return best;
    }
    int fl = dsmi_hcore_msb(flmap);
    uint64_t b = ld(v, R_HEAD(fl, dsmi_hcore_msb(ld(v, R_SLMAP(fl)))));
    for (int k = 0; b != 0 && k < 8; k++) {
        uint64_t s = ld(v, b);
        best = s > best ? s : best;
        b = ld(v, b + 16);
    }
    return best;
}

/* The new largest free block, re-walking only when the old one may have shrunk. */
uint64_t dsmi_hcore_largest(struct dsmi_hview *v, uint64_t old)
{
    if (v->shrunk != 0 && v->shrunk >= old) {
        return top_largest(v);
    }
    return v->grown > old ? v->grown : old;
}

/* Lay out an empty heap in seg: all of [lo, hi) is wilderness. */
void dsmi_hcore_format(struct dsmi_hview *v, uint64_t salt)
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

/* Walk the block chain: sizes, tags, footers, no two free neighbours. */
static int walk_blocks(struct dsmi_hview *v, struct dsmi_hwalk *w)
{
    uint64_t b = v->lo, prev_state = 0, top = ld(v, R_TOP);
    memset(w, 0, sizeof *w);
    while (b < top) {
        uint64_t size = ld(v, b), tag = ld(v, b + 8), state = tag & 7;
        if (size < MINBLK || size % ALIGN || size > top - b || state < ST_FREE ||
            state > ST_CACHED || tag != dsmi_hcore_tag(v, b, state)) {
            v->why = "block chain broken (bad size or tag)";
            return DSM_ERR_CORRUPT;
        }
        if (state == ST_FREE && (prev_state == ST_FREE || ld(v, b + size - 8) != size)) {
            v->why = prev_state == ST_FREE ? "two adjacent free blocks" : "bad footer";
            return DSM_ERR_CORRUPT;
        }
        bool live = state == ST_ALLOC || state == ST_CACHED; // cached blocks count as in use
        w->r.blocks += live;
        w->r.free_blocks += state == ST_FREE;
        w->r.pending += state == ST_RFREE;
        w->r.in_use += live ? size : 0;
        w->r.free += live ? 0 : size;
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
static int walk_lists(struct dsmi_hview *v, const struct dsmi_hwalk *w)
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
                    ld(v, b + 8) != dsmi_hcore_tag(v, b, ST_FREE) || ld(v, b + 24) != prev ||
                    ++listed > w->r.free_blocks) {
                    v->why = "free list broken (bad member, link or cycle)";
                    return DSM_ERR_CORRUPT;
                }
                dsmi_hcore_mapping(ld(v, b), &f, &s);
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

static int walk_pending(struct dsmi_hview *v, const struct dsmi_hwalk *w)
{
    uint64_t n = 0;
    for (uint64_t p = ld(v, R_PENDING); p != 0; p = ld(v, p + 16)) {
        if (p < v->lo || p > v->hi - MINBLK || p % ALIGN ||
            ld(v, p + 8) != dsmi_hcore_tag(v, p, ST_RFREE) || ++n > w->r.pending) {
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
int dsmi_hcore_roots_valid(struct dsmi_hview *v)
{
    v->salt = ld(v, R_SALT);
    v->lo = ld(v, R_LO);
    v->hi = ld(v, R_HI);
    uint64_t top = ld(v, R_TOP);
    if (ld(v, R_MAGIC) != HEAP_MAGIC || v->lo != DSMI_HDR_SIZE || v->hi > v->seg || v->hi % ALIGN ||
        v->hi < v->lo + MINBLK || top < v->lo || top > v->hi || top % ALIGN) {
        v->why = "heap roots invalid (magic or bounds)";
        return DSM_ERR_CORRUPT;
    }
    return DSM_OK;
}

/* Everything but the published usage. */
int dsmi_hcore_walk(struct dsmi_hview *v, struct dsmi_hwalk *w)
{
    int rc = dsmi_hcore_roots_valid(v);
    if (rc == DSM_OK && (rc = walk_blocks(v, w)) == DSM_OK && (rc = walk_lists(v, w)) == DSM_OK) {
        rc = walk_pending(v, w);
    }
    return rc;
}

int dsmi_hcore_check(struct dsmi_hview *v, struct dsmi_heap_report *r)
{
    struct dsmi_hwalk w = {{0}, 0};
    int rc = dsmi_hcore_walk(v, &w);
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

static void plain_view(struct dsmi_hview *v, void *seg)
{
    memset(v, 0, sizeof *v);
    v->base = seg;
    v->salt = ld(v, R_SALT);
    v->lo = ld(v, R_LO);
    v->hi = ld(v, R_HI);
    v->seg = v->hi;
}

static void plain_publish(struct dsmi_hview *v)
{
    uint64_t old = ld(v, U_LARGEST);
    st(v, U_IN_USE, ld(v, U_IN_USE) + (uint64_t)v->d_in_use);
    st(v, U_FREE, ld(v, U_FREE) + (uint64_t)v->d_free);
    st(v, U_BLOCKS, ld(v, U_BLOCKS) + (uint64_t)v->d_blocks);
    st(v, U_LARGEST, dsmi_hcore_largest(v, old));
}

int dsmi_heap_core_format(void *seg, uint64_t seg_size, uint64_t salt)
{
    if (seg == NULL || seg_size < DSMI_HDR_SIZE + 4096) {
        return DSM_ERR_ARG;
    }
    struct dsmi_hview v = {.base = seg, .seg = seg_size};
    dsmi_hcore_format(&v, salt);
    return DSM_OK;
}

int dsmi_heap_core_alloc(void *seg, uint64_t size, uint64_t align, uint64_t *off)
{
    struct dsmi_hview v;
    plain_view(&v, seg);
    uint64_t bs = dsmi_hcore_block_size(size), b = 0;
    if (size == 0 || bs == 0 || bs > v.hi - v.lo || align == 0 || (align & (align - 1))) {
        return DSM_ERR_ARG;
    }
    dsmi_hcore_drain(&v);
    int rc =
        align <= ALIGN ? dsmi_hcore_alloc(&v, bs, &b) : dsmi_hcore_alloc_aligned(&v, bs, align, &b);
    plain_publish(&v);
    if (rc == DSM_OK) {
        *off = b + HDR;
    }
    return rc;
}

int dsmi_heap_core_free(void *seg, uint64_t off, const char **why)
{
    struct dsmi_hview v;
    plain_view(&v, seg);
    int rc = dsmi_hcore_free(&v, off - HDR);
    plain_publish(&v);
    if (why) {
        *why = v.why;
    }
    return rc;
}

int dsmi_heap_core_defer(void *seg, uint64_t off, const char **why)
{
    struct dsmi_hview v;
    plain_view(&v, seg);
    int rc = dsmi_hcore_defer(&v, off - HDR);
    plain_publish(&v);
    if (why) {
        *why = v.why;
    }
    return rc;
}

int dsmi_heap_core_check(void *seg, struct dsmi_heap_report *r, const char **why)
{
    struct dsmi_hview v;
    plain_view(&v, seg);
    v.seg = v.hi;
    int rc = dsmi_hcore_check(&v, r);
    if (why) {
        *why = v.why;
    }
    return rc;
}

/* ---- collective symmetric allocation: finding and claiming one offset ---- */

/* Lowest y >= from such that [y, y + bs) lies in one free block, leaving before it
 * either nothing or room for a free block. UINT64_MAX when there is none. */
static uint64_t fit_in(uint64_t b, uint64_t end, uint64_t from, uint64_t bs)
{
    uint64_t y = from > b ? from : b;
    y = y != b && y - b < MINBLK ? b + MINBLK : y;
    return y <= end && bs <= end - y ? y : UINT64_MAX;
}

uint64_t dsmi_hcore_fit(struct dsmi_hview *v, uint64_t from, uint64_t bs)
{
    uint64_t top = ld(v, R_TOP);
    for (uint64_t b = v->lo, size; b < top; b += size) {
        size = ld(v, b);
        if (size < MINBLK || size > top - b) {
            return UINT64_MAX; // a broken chain: dsmi_heap_check reports it
        }
        if (b + size > from && ld(v, b + 8) == dsmi_hcore_tag(v, b, ST_FREE) &&
            fit_in(b, b + size, from, bs) != UINT64_MAX) {
            return fit_in(b, b + size, from, bs);
        }
    }
    return fit_in(top, v->hi, from, bs);
}

/* Take [y, y + bs) out of the free block that holds it, if one still does. */
int dsmi_hcore_claim(struct dsmi_hview *v, uint64_t y, uint64_t bs)
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
            ld(v, b + 8) == dsmi_hcore_tag(v, b, ST_FREE)) {
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
