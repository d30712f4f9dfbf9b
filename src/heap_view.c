/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * A remote heap seen through RMA, so that heap_core.c's allocator runs unchanged on
 * another rank's segment. The caller holds that heap's lock (heap.c) for the whole
 * operation, so the view may cache freely: the roots come in one get at the start, a
 * load that misses fetches 32 bytes (a block header with its links, or a footer with
 * the next header) in one get, and stores only mark words dirty. dsmi_hview_writeback
 * puts each contiguous run of dirty words with one MPI_Put and flushes once, so the
 * writes are complete at the target before the lock's release is issued.
 *
 * The MPI calls are made here directly rather than through rma.h because rma.h's puts
 * each flush, and batching several puts per flush is the point. Every operation and
 * flush is counted (ops/flushes) for dsmi_heap_last_cost and the benchmark. In direct
 * mode (win.h) gets and puts are copies from and to the mapped segment and a flush is a
 * fence; they are counted the same way, so DSM_STATS reads alike on both paths.
 */
#include "heap_core.h"

static void rc_fail(struct dsmi_hcache *rc, int mpirc, const char *what)
{
    if (rc->err == DSM_OK) {
        rc->err = dsmi_fail_mpi(mpirc, rc->func, what, __FILE__, __LINE__);
    }
}

static void rc_flush(struct dsmi_hcache *rc)
{
    rc->flushes++;
    dsmi_count(&dsmi_stat.flushes, 1);     // counted on both paths, as rma.c does
    if (dsmi_peer_seg(rc->rank) != NULL) { // direct mode: the copies are done; order them
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return;
    }
    int mrc = MPI_Win_flush(dsmi_host(rc->rank), dsmi_w.win);
    if (mrc != MPI_SUCCESS) {
        rc_fail(rc, mrc, "MPI_Win_flush");
    }
}

/* The MPI displacement of [off, off + len) of the remote segment, from the one
 * translation (win.h: segments start at a per-rank pad inside their windows); false
 * (the failure recorded) when the range is outside the segment. */
static bool rc_disp(struct dsmi_hcache *rc, uint64_t off, int len, MPI_Aint *disp)
{
    int r = 0;
    int err = dsmi_translate(dsmi_gptr(rc->rank, off), (size_t)len, false, rc->func, &r, disp);
    if (err != DSM_OK && rc->err == DSM_OK) {
        rc->err = err;
    }
    return err == DSM_OK;
}

/* Blocking get of len bytes at off of the remote segment. */
void dsmi_hview_get(struct dsmi_hcache *rc, uint64_t off, void *buf, int len)
{
    char *seg = dsmi_peer_seg(rc->rank);
    if (seg != NULL) { // direct mode (win.h)
        memcpy(buf, seg + off, (size_t)len);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        rc->ops++;
        dsmi_count(&dsmi_stat.gets, 1);
        return;
    }
    MPI_Aint disp = 0;
    if (!rc_disp(rc, off, len, &disp)) {
        memset(buf, 0, (size_t)len);
        return;
    }
    int mrc = MPI_Get(buf, len, MPI_BYTE, dsmi_host(rc->rank), disp, len, MPI_BYTE, dsmi_w.win);
    rc->ops++;
    dsmi_count(&dsmi_stat.gets, 1);
    if (mrc != MPI_SUCCESS) {
        rc_fail(rc, mrc, "MPI_Get");
        memset(buf, 0, (size_t)len);
        return;
    }
    rc_flush(rc);
}

static void rc_put(struct dsmi_hcache *rc, uint64_t off, const void *buf, int len)
{
    char *seg = dsmi_peer_seg(rc->rank);
    if (seg != NULL) {
        memcpy(seg + off, buf, (size_t)len);
        rc->ops++;
        dsmi_count(&dsmi_stat.puts, 1);
        return;
    }
    MPI_Aint disp = 0;
    if (!rc_disp(rc, off, len, &disp)) {
        return;
    }
    int mrc = MPI_Put(buf, len, MPI_BYTE, dsmi_host(rc->rank), disp, len, MPI_BYTE, dsmi_w.win);
    rc->ops++;
    dsmi_count(&dsmi_stat.puts, 1);
    if (mrc != MPI_SUCCESS) {
        rc_fail(rc, mrc, "MPI_Put");
    }
}

/* Write every dirty word back, contiguous runs as one put each, then one flush. */
void dsmi_hview_writeback(struct dsmi_hcache *rc)
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

static int rc_find(const struct dsmi_hcache *rc, uint64_t off)
{
    for (int i = 0; i < rc->n; i++) {
        if (rc->woff[i] == off) {
            return i;
        }
    }
    return -1;
}

static int rc_add(struct dsmi_hcache *rc, uint64_t off, uint64_t val, bool dirty)
{
    if (rc->n == RC_MAX) { // full: we hold the lock, so writing back early is safe
        dsmi_hview_writeback(rc);
        rc->n = 0;
    }
    rc->woff[rc->n] = off, rc->wval[rc->n] = val, rc->wdirty[rc->n] = dirty;
    return rc->n++;
}

/* A miss fetches 32 bytes: a block header with its links, or a footer with the next
 * block's header, in one get. */
uint64_t dsmi_hview_load(struct dsmi_hcache *rc, uint64_t off, uint64_t seg)
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
        dsmi_hview_writeback(rc);
        rc->n = 0;
    }
    dsmi_hview_get(rc, a, w, 32);
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

void dsmi_hview_store(struct dsmi_hcache *rc, uint64_t off, uint64_t val)
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
