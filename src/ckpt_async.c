/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Asynchronous checkpoints (DSM_CKPT_ASYNC=1): copy, then write in the background.
 *
 * dsm_checkpoint copies this rank's segment [0, extent) and protected regions into
 * process memory (an allreduce after the copy makes it a consistent cut: no rank
 * returns and writes into another segment before all have copied), sends the copy to the
 * partner, and starts one writer thread that sums and writes the image file (to each
 * of its levels: node-local, shared on flush epochs) and the received replica (temp
 * name, fsync, rename). It returns while the disk works. The
 * next dsm_checkpoint, dsm_checkpoint_maybe that checkpoints, dsm_ckpt_wait or
 * dsm_finalize joins the writer and runs the usual commit: an allreduce of every
 * rank's result, then rank 0's COMMIT. The writer touches only files and memory it
 * owns (no MPI, no logging), so any MPI thread level will do.
 *
 * At most one epoch is in flight; its copy costs one segment's extent of memory.
 */
#include "ckpt.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "win.h"

static struct {
    bool busy; // a writer was started and not yet joined
    pthread_t thread;
    uint64_t epoch;
    char dir[PATH_MAX];
    struct dsmi_ckpt_hdr h; // sums filled in by the writer
    char *seg;              // copy of the segment's [0, h.seg_len)
    void *reg;              // copy of the protected regions
    int rc;                 // the writer's result
    char why[DSMI_WHY];
} as;

static void *writer(void *arg)
{
    (void)arg;
    char rdir[PATH_MAX];
    as.rc = dsmi_ckpt_write_levels(as.epoch, as.dir, &as.h, as.seg, as.reg, true, as.why);
    if (as.rc == DSM_OK) {
        dsmi_ckpt_replica_dir(as.epoch, as.dir, rdir, sizeof rdir);
        as.rc = dsmi_replica_write_pending(rdir, as.why);
    }
    return NULL;
}

/* Copy this rank's image; DSM_ERR_NOMEM when the copy does not fit. */
static int copy_image(uint64_t e)
{
    as.h = dsmi_ckpt_header(e);
    as.seg = malloc(as.h.seg_len ? as.h.seg_len : 1);
    if (as.seg == NULL || dsmi_ckpt_regions(&as.reg, &as.h.reg_len, &as.h.nregions) != 0) {
        dsmi_why(as.why, "no memory for a %llu-byte copy of the segment",
                 (unsigned long long)as.h.seg_len);
        return DSM_ERR_NOMEM;
    }
    memcpy(as.seg, dsmi_w.base, as.h.seg_len);
    return DSM_OK;
}

static void release(void)
{
    free(as.seg);
    free(as.reg);
    as.seg = NULL;
    as.reg = NULL;
    as.busy = false;
}

int dsmi_ckpt_async_start(uint64_t e, const char *dir)
{
    as.epoch = e;
    snprintf(as.dir, sizeof as.dir, "%s", dir);
    int mine = copy_image(e);
    if (mine == DSM_OK) { // hosted segments (ckpt_regroup.c): written now, before the cut
        mine = dsmi_ckpt_write_hosted(e, dir, as.why);
    }
    // This allreduce is the consistent cut: every rank has its copy before any returns
    // (and writes into another segment); it also shares a failed copy.
    int rc = dsmi_ckpt_agree(mine);
    if (rc != DSM_OK) {
        release();
        return dsmi_ckpt_finish(e, dir, mine, as.why); // abandons the epoch everywhere
    }
    rc = dsmi_replica_exchange(dir, &as.h, as.seg, as.reg, false, as.why);
    if (rc == DSM_OK && pthread_create(&as.thread, NULL, writer, NULL) != 0) {
        dsmi_why(as.why, "could not start the writer thread");
        rc = DSM_ERR_NOMEM;
    }
    if (dsmi_ckpt_agree(rc) != DSM_OK) {
        if (rc == DSM_OK) {
            pthread_join(as.thread, NULL); // another rank failed: this writer is wasted
        }
        release();
        return dsmi_ckpt_finish(e, dir, rc, as.why); // abandons the epoch everywhere
    }
    as.busy = true;
    return DSM_OK;
}

int dsmi_ckpt_async_wait(void)
{
    int busy = as.busy, any = 0;
    if (MPI_Allreduce(&busy, &any, 1, MPI_INT, MPI_MAX, dsmi_ck.comm) != MPI_SUCCESS) {
        return DSM_ERR_MPI;
    }
    if (!any) {
        return DSM_OK;
    }
    int rc = DSM_ERR_INTERNAL; // a rank without a writer here breaks the invariant
    if (busy) {
        pthread_join(as.thread, NULL);
        rc = as.rc;
    }
    release();
    return dsmi_ckpt_finish(as.epoch, as.dir, rc, as.why);
}

int dsm_ckpt_wait(void)
{
    DSMI_CHECK_UP("dsm_ckpt_wait");
    return dsmi_ckpt_async_wait();
}
