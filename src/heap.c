/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The distributed heap: one allocator per rank, living entirely inside that rank's
 * segment, usable by the owner and, through RMA alone, by every other rank. This file
 * is the API, the lock and the collective; the allocator is heap_core.c (why TLSF is
 * explained there) and the remote view heap_view.c; the layout is in heap_core.h.
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
 * operation (or a remote allocator that ran out of room) merges back. In direct mode
 * (win.h) the same protocol runs with CPU atomics and memcpy on the mapped segments.
 */
#include "heap.h"

#include <sched.h>
#include <string.h>

#include "heap_core.h"
#include "rma.h"

static _Thread_local unsigned last_ops, last_flushes;

void dsmi_heap_last_cost(unsigned *ops, unsigned *flushes)
{
    *ops = last_ops;
    *flushes = last_flushes;
}

#define LOCK_TIMEOUT_NS (UINT64_C(30) * 1000000000u)

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

/* Spin on MPI_Compare_and_swap until rank's heap lock is ours. Holders never wait for
 * anything while holding it, so the wait is short; yield because the holder may share
 * our core (oversubscribed ranks or threads), and give up after LOCK_TIMEOUT_NS. */
static int lock_take(int rank, const char *func, unsigned *ops)
{
    const int64_t id = dsmi_rt.rank + 1, zero = 0;
    int64_t old = 0;
    uint64_t t0 = 0;
    for (unsigned long spin = 0;; spin++) {
        int rc = dsmi_rma_cas(dsmi_gptr(rank, R_LOCK), &id, &zero, &old, MPI_INT64_T, false, func);
        (*ops)++;
        if (rc != DSM_OK || old == 0) {
            return rc;
        }
        if (spin == 0) {
            t0 = dsmi_now_ns();
        } else if (spin % 64 == 0 && dsmi_now_ns() - t0 > LOCK_TIMEOUT_NS) {
            return dsmi_fail(DSM_ERR_TIMEOUT, func,
                             "rank %d's heap lock has been held by rank "
                             "%lld for over 30 s",
                             rank, (long long)old - 1);
        }
        sched_yield();
    }
}

/* Release the lock and publish this operation's usage deltas: one accumulate, so a
 * reader never sees the heap unlocked with stale usage of this operation. */
static int release(int rank, const int64_t d[4], const char *func)
{
    int64_t all[5] = {d[0], d[1], d[2], d[3], -(int64_t)(dsmi_rt.rank + 1)};
    char *seg = dsmi_peer(rank);
    if (seg != NULL) { // direct mode: the same sums, the lock word last
        int64_t *w = (int64_t *)(seg + U_IN_USE);
        /* Only the lock holder writes these words (takers only compare-and-swap the
         * lock word, and fail while it is held), so single-writer atomic stores do:
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
    DSMI_MPI(func, MPI_Accumulate(all, 5, MPI_INT64_T, rank, hdr_disp(rank, U_IN_USE), 5,
                                  MPI_INT64_T, MPI_SUM, dsmi_w.win));
    dsmi_count(&dsmi_stat.atomics, 1);
    return dsmi_rma_flush(rank, func);
}

/* This rank's heap as the roots describe it. The roots are read and checked exactly as
 * a remote operation checks the ones it fetches: the segment may have been wiped
 * (dsm_simulate_failure) or overwritten since dsm_init, so bounds cached at start-up
 * would hand out blocks in whatever lies there, the runtime header included. */
static int local_view(struct dsmi_hview *v, const char *func)
{
    memset(v, 0, sizeof *v);
    v->base = dsmi_w.base;
    v->seg = dsmi_w.size;
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
    // In direct mode the seq_cst compare-and-swap that took the lock is the acquire.
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
    *rc = (struct dsmi_hcache){.rank = rank, .func = func, .dlo = UINT64_MAX};
    memset(v, 0, sizeof *v);
    v->rc = rc;
    v->seg = dsmi_w.size;
    int err = lock_take(rank, func, &rc->ops);
    rc->flushes = rc->ops; // each CAS was flushed
    if (err != DSM_OK) {
        return err;
    }
    dsmi_hview_get(rc, USAGE_OFF, rc->roots, roots_len());
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

static int alloc_local(size_t size, uint64_t bs, size_t align, dsm_gptr_t *out, const char *func)
{
    struct dsmi_hview v;
    uint64_t b = 0;
    int rc = local_begin(&v, func);
    if (rc != DSM_OK) {
        return rc;
    }
    rc =
        align <= ALIGN ? dsmi_hcore_alloc(&v, bs, &b) : dsmi_hcore_alloc_aligned(&v, bs, align, &b);
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
    if (rank < 0 || rank >= dsmi_rt.nranks) {
        return dsmi_fail(DSM_ERR_RANGE, func, "rank %d is not in 0..%d", rank, dsmi_rt.nranks - 1);
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
    if (r >= (uint64_t)dsmi_rt.nranks || off > dsmi_w.size) {
        return dsmi_fail(DSM_ERR_INVALID, "dsm_free",
                         "%s is not in the address space (%d "
                         "ranks, %zu-byte segments)",
                         dsm_gptr_str(g, s, sizeof s), dsmi_rt.nranks, dsmi_w.size);
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

int dsm_free(dsm_gptr_t g)
{
    struct dsmi_hview v;
    struct dsmi_hcache rc;
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
    int rc = DSM_OK;
    char *seg = dsmi_peer(rank);
    if (seg != NULL) { // direct mode: atomic loads against the holders' atomic adds
        for (int i = 0; i < 4; i++) {
            u[i] = __atomic_load_n((int64_t *)(seg + U_IN_USE) + i, __ATOMIC_SEQ_CST);
        }
    } else {
        // Element-wise atomic against the holders' MPI_Accumulate: no torn counter.
        DSMI_MPI("dsm_usage", MPI_Get_accumulate(NULL, 0, MPI_INT64_T, u, 4, MPI_INT64_T, rank,
                                                 hdr_disp(rank, U_IN_USE), 4, MPI_INT64_T,
                                                 MPI_NO_OP, dsmi_w.win));
        dsmi_count(&dsmi_stat.atomics, 1);
        rc = dsmi_rma_flush(rank, "dsm_usage");
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

int dsmi_heap_start(void)
{
    const struct dsmi_ident *id = (const struct dsmi_ident *)(dsmi_w.base + DSMI_HDR_IDENT_OFF);
    struct dsmi_hview v = {.base = dsmi_w.base, .seg = dsmi_w.size};
    // A salt per run and rank: tags of an earlier run's blocks never validate.
    dsmi_hcore_format(&v, id->launch_id ^ ((uint64_t)dsmi_rt.rank * UINT64_C(0x9E3779B97F4A7C15)));
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
    struct dsmi_hview v = {.base = dsmi_w.base, .seg = dsmi_w.size};
    struct dsmi_hwalk w = {{0}, 0};
    int rc = dsmi_hcore_roots_valid(&v);
    if (rc == DSM_OK) {
        rc = dsmi_hcore_walk(&v, &w);
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
    struct dsmi_hview v;
    DSMI_CHECK_UP("dsmi_heap_check");
    int rc = local_begin(&v, "dsmi_heap_check");
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
