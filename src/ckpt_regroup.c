/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Restart on a different number of ranks (DESIGN.md decision 9: segments outlive ranks).
 *
 * An image is a segment's, named rank-<s>.ckpt after its segment s, and a COMMIT's
 * "ranks" line counts segments. A job of M ranks restoring an epoch of N segments holds
 * max(N, M) of them (win.h: segment s in slot s / M of rank s % M; the window was sized
 * before it was made, ckpt.c's dsmi_ckpt_probe). Each rank reads the image of every
 * segment it holds from the shared level (its own file, else a partner's replica file
 * there); a segment numbered N or more has no image and keeps its fresh heap (M > N).
 * Only the translation table differs from the job that wrote the epoch, so every global
 * pointer stored in any segment stays valid without being rewritten.
 *
 * What a hosted segment (slot 1 and up) keeps: its bytes, heap and usage exactly; not
 * its lock waiters or queue nodes (no waiter survives a restore, as for any segment),
 * nor the protected regions of the process that owned it (that process is gone: they
 * are dropped, logged). While segments are hosted, every checkpoint writes all images,
 * hosted ones included, to the shared level (dsmi_ckpt_levels), so a later restart on
 * any count finds them.
 *
 * The bytes are written with local stores; ckpt.c's start publishes them (MPI_Win_sync
 * and a barrier) before any rank's RMA.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "heap.h"
#include "win.h"

/* This run's ident header of slot k (win.c wrote it), put back over an image's. */
static struct dsmi_ident idents[DSMI_MAX_SLOTS];

static void save_ident(int k)
{
    memcpy(&idents[k], dsmi_slot_base(k) + DSMI_HDR_IDENT_OFF, sizeof idents[k]);
}

static void put_ident(int k)
{
    memcpy(dsmi_slot_base(k) + DSMI_HDR_IDENT_OFF, &idents[k], sizeof idents[k]);
}

/* Segment s's image of epoch e (segs segments) into slot k: its shared file, else a
 * replica file of it in the shared epoch directory. */
static int read_slot(uint64_t e, int segs, int k, void **reg, struct dsmi_ckpt_hdr *h, char *why)
{
    char dir[PATH_MAX], name[NAME_MAX + 1], why2[DSMI_WHY];
    int s = dsmi_slot_seg(k);
    struct dsmi_ckpt_expect ex = dsmi_ckpt_expect_for(e, s);
    ex.nranks = segs;
    dsmi_ckpt_epoch_dir(e, dir, sizeof dir);
    snprintf(name, sizeof name, "rank-%d.ckpt", s);
    int rc = dsmi_ckpt_read(dir, name, &ex, dsmi_slot_base(k), dsmi_w.size, reg, h, why);
    if (rc == DSM_OK) {
        return DSM_OK;
    }
    dsmi_log(DSMI_LOG_ERROR, "restore: segment %d: rejected %s/%s: %s", s, dir, name, why);
    if (!dsmi_replica_find(dir, s, name, sizeof name)) {
        return rc;
    }
    if (dsmi_ckpt_read(dir, name, &ex, dsmi_slot_base(k), dsmi_w.size, reg, h, why2) == DSM_OK) {
        dsmi_log(DSMI_LOG_ERROR, "restore: segment %d from the partner copy %s/%s", s, dir, name);
        return DSM_OK;
    }
    dsmi_log(DSMI_LOG_ERROR, "restore: segment %d: rejected the partner copy %s/%s: %s", s, dir,
             name, why2);
    return rc;
}

int dsmi_ckpt_regroup_read(uint64_t e, int segs, void **reg, struct dsmi_ckpt_hdr *h, bool *have,
                           char *why)
{
    *have = dsmi_rt.rank < segs; // slot 0 (this rank's own segment) has an image
    if (*have) {
        int rc = read_slot(e, segs, 0, reg, h, why);
        if (rc != DSM_OK) {
            return rc;
        }
    }
    for (int k = 1; k < dsmi_w.nslots && dsmi_slot_seg(k) < segs; k++) {
        void *hreg = NULL;
        struct dsmi_ckpt_hdr hh;
        save_ident(k);
        int rc = read_slot(e, segs, k, &hreg, &hh, why);
        put_ident(k); // even after a partial read: the slot stays this run's
        free(hreg);
        if (rc != DSM_OK) {
            return rc;
        }
        if (hh.nregions > 0) {
            dsmi_log(DSMI_LOG_INFO,
                     "restore: segment %d is hosted here; its %u protected region(s) "
                     "belonged to its old rank's process and are dropped",
                     dsmi_slot_seg(k), hh.nregions);
        }
    }
    return DSM_OK;
}

int dsmi_ckpt_regroup_reload(void)
{
    for (int k = 1; k < dsmi_w.nslots; k++) {
        char *base = dsmi_slot_base(k);
        // No lock waiter survives a restore: its sync region (lock words, queue nodes
        // of a rank that is gone) starts clean, as dsmi_sync_reload does for slot 0.
        memset(base + DSMI_HDR_SYNC_OFF, 0, DSMI_HDR_SYNC_SIZE);
        int rc = dsmi_heap_reload_at(base);
        if (rc != DSM_OK) {
            return rc;
        }
    }
    return DSM_OK;
}

void dsmi_ckpt_regroup_fresh(bool tail)
{
    for (int k = 1; k < dsmi_w.nslots; k++) {
        char *base = dsmi_slot_base(k);
        if (tail) { // a rejected newer image may have left bytes past the restored extent
            size_t len = (size_t)dsmi_heap_extent_at(base);
            memset(base + len, 0, dsmi_w.size - len);
            continue;
        }
        save_ident(k);
        memset(base, 0, DSMI_HDR_SIZE);
        put_ident(k);
        dsmi_heap_format_slot(k);
    }
}

int dsmi_ckpt_write_hosted(uint64_t e, const char *dir, char *why)
{
    for (int k = 1; k < dsmi_w.nslots; k++) {
        char name[32];
        struct dsmi_ckpt_hdr h = dsmi_ckpt_header(e);
        h.rank = dsmi_slot_seg(k);
        h.seg_len = dsmi_heap_extent_at(dsmi_slot_base(k));
        snprintf(name, sizeof name, "rank-%d.ckpt", (int)h.rank);
        double t = dsmi_ckpt_now();
        int rc = dsmi_ckpt_write(dir, name, &h, dsmi_slot_base(k), NULL, true, why);
        uint64_t bytes = sizeof h + h.seg_len;
        dsmi_ckpt_cost_add(DSM_CKPT_LEVEL_SHARED, dsmi_ckpt_now() - t, rc == DSM_OK ? bytes : 0);
        if (rc != DSM_OK) {
            return rc;
        }
    }
    return DSM_OK;
}
