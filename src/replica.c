/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Partner replicas, simulated failure and live recovery.
 *
 * Partners: ranks are ordered by (local rank, node, rank) and each rank's image is kept
 * by the next rank in that cycle (its keeper); it keeps the previous one's (its ward's).
 * With equal-sized nodes the keeper is the same local rank on the next node, so one
 * node's loss never takes both copies; on one node this is rank + 1 mod n.
 *
 * During dsm_checkpoint each rank sends its whole image (header, segment bytes, region
 * records) to its keeper with point-to-point messages on the checkpoint communicator,
 * and the keeper writes it as <epoch>/rank-<keeper>.replica-of-<owner> and holds it in
 * process memory. The held copy replaces the previous one only once the epoch is
 * committed, so memory always holds the last committed epoch.
 *
 * dsm_simulate_failure(r) is collective: rank r zeroes its whole segment and drops the
 * replica it holds, as a node loss would. dsm_recover() is collective: each wiped rank
 * gets its image from its keeper's memory, else from the last committed epoch's files
 * (own, then replica), verifies it (header and CRC32C), copies it into its segment and
 * puts back its protected regions. Other ranks' segments are not touched, so recovery
 * loses exactly the failed rank's writes after the last checkpoint. MPI_Win_sync plus a
 * barrier publishes the restored bytes before any RMA reads them.
 */
#include "ckpt.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rma.h"
#include "topo.h"
#include "win.h"

#define PIECE ((size_t)1 << 29) // bytes per message: MPI counts are int
#define TAG_HDR 51
#define TAG_DATA 52
#define TAG_HAVE 53

static struct {
    bool on;     // DSM_CKPT_REPLICAS and more than one rank
    int *keeper; // keeper[r]: who keeps r's image
    int ward;    // whose image this rank keeps
    char *held;  // the ward's image of held_epoch (header first), or NULL
    size_t held_len;
    uint64_t held_epoch;
    char *pend; // received during the current checkpoint, not yet committed
    size_t pend_len;
    uint64_t pend_epoch;
} rp;

int dsmi_replica_keeper(int r)
{
    return rp.on ? rp.keeper[r] : r;
}

int dsmi_replica_start(void)
{
    int n = dsmi_rt.nranks;
    const dsm_topo_t *t = dsmi_topo();
    memset(&rp, 0, sizeof rp);
    rp.on = (dsmi_rt.cfg.CKPT_REPLICAS || dsmi_ck.local) && n > 1; // levels need partners
    int32_t mine[2] = {t->local_rank, t->node}, *all = malloc(sizeof(int32_t) * 2 * (size_t)n);
    int *order = malloc(sizeof(int) * (size_t)n);
    rp.keeper = malloc(sizeof(int) * (size_t)n);
    // Every rank learns of a failure here, so none is left waiting in the allgather.
    int ok = all != NULL && order != NULL && rp.keeper != NULL;
    const char *what = "MPI_Allreduce";
    int rc = MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, dsmi_ck.comm);
    if (rc == MPI_SUCCESS && !ok) {
        free(all);
        free(order);
        free(rp.keeper);
        rp.keeper = NULL;
        return dsmi_fail(DSM_ERR_NOMEM, "dsm_init",
                         "no memory for the partner table (%d ranks) on this or another rank", n);
    }
    if (rc == MPI_SUCCESS) {
        what = "MPI_Allgather";
        rc = MPI_Allgather(mine, 2, MPI_INT32_T, all, 2, MPI_INT32_T, dsmi_ck.comm);
    }
    // Order by (local rank, node): a stable counting walk keeps it O(n * local ranks).
    int k = 0;
    for (int32_t lr = 0; k < n && rc == MPI_SUCCESS; lr++) {
        for (int r = 0; r < n; r++) { // ranks are in node order within one local rank
            if (all[2 * r] == lr) {
                order[k++] = r;
            }
        }
    }
    for (int i = 0; i < n && rc == MPI_SUCCESS; i++) {
        rp.keeper[order[i]] = order[(i + 1) % n];
        if (order[(i + 1) % n] == dsmi_rt.rank) {
            rp.ward = order[i];
        }
    }
    free(all);
    free(order);
    return rc == MPI_SUCCESS ? DSM_OK : dsmi_fail_mpi(rc, "dsm_init", what, __FILE__, __LINE__);
}

void dsmi_replica_stop(void)
{
    free(rp.keeper);
    free(rp.held);
    free(rp.pend);
    memset(&rp, 0, sizeof rp);
}

void dsmi_replica_commit(bool ok)
{
    if (ok && rp.pend != NULL) {
        free(rp.held);
        rp.held = rp.pend;
        rp.held_len = rp.pend_len;
        rp.held_epoch = rp.pend_epoch;
    } else {
        free(rp.pend);
    }
    rp.pend = NULL;
}

/* Post sends (or receives) of len bytes at p in PIECE-sized messages. */
static int post(char *p, size_t len, int peer, bool send, MPI_Request *req, int *nreq)
{
    for (size_t off = 0; off < len; off += PIECE) {
        int n = (int)(len - off < PIECE ? len - off : PIECE);
        int rc = send ? MPI_Isend(p + off, n, MPI_BYTE, peer, TAG_DATA, dsmi_ck.comm, &req[*nreq])
                      : MPI_Irecv(p + off, n, MPI_BYTE, peer, TAG_DATA, dsmi_ck.comm, &req[*nreq]);
        if (rc != MPI_SUCCESS) {
            return dsmi_fail_mpi(rc, "dsm_checkpoint", "MPI_Isend/MPI_Irecv", __FILE__, __LINE__);
        }
        (*nreq)++;
    }
    return DSM_OK;
}

static int npieces(size_t len)
{
    return (int)((len + PIECE - 1) / PIECE);
}

/* Send (seg, reg) of h to the keeper while receiving the ward's into buf. */
static int transfer(const struct dsmi_ckpt_hdr *h, const void *seg, const void *reg,
                    const struct dsmi_ckpt_hdr *wh, char *buf)
{
    int cap =
        npieces(h->seg_len) + npieces(h->reg_len) + npieces(wh->seg_len) + npieces(wh->reg_len);
    // Real statuses, not MPI_STATUSES_IGNORE: MPICH's access attributes make GCC flag
    // the ignore constant as a zero-sized buffer.
    MPI_Request *req = malloc(sizeof *req * (size_t)(cap + 1));
    MPI_Status *st = malloc(sizeof *st * (size_t)(cap + 1));
    int nreq = 0, keeper = rp.keeper[dsmi_rt.rank];
    DSM_ASSERT(req != NULL && st != NULL); // a few dozen bytes
    // Messages match one to one: the ward's segment pieces, then its region pieces.
    int rc = post(buf + sizeof *wh, wh->seg_len, rp.ward, false, req, &nreq);
    if (rc == DSM_OK) {
        rc = post(buf + sizeof *wh + wh->seg_len, wh->reg_len, rp.ward, false, req, &nreq);
    }
    if (rc == DSM_OK) {
        rc = post((char *)seg, h->seg_len, keeper, true, req, &nreq);
    }
    if (rc == DSM_OK) {
        rc = post((char *)reg, h->reg_len, keeper, true, req, &nreq);
    }
    int mrc = MPI_Waitall(nreq, req, st);
    free(req);
    free(st);
    if (rc == DSM_OK && mrc != MPI_SUCCESS) {
        rc = dsmi_fail_mpi(mrc, "dsm_checkpoint", "MPI_Waitall", __FILE__, __LINE__);
    }
    return rc;
}

/* Write the pending replica as rank-<me>.replica-of-<ward>; with crc, sum it first (the
 * sums land in its header, so the in-memory copy carries them too). */
static int write_replica(const char *epoch_dir, bool crc, char *why)
{
    char name[64];
    struct dsmi_ckpt_hdr *h = (struct dsmi_ckpt_hdr *)rp.pend;
    snprintf(name, sizeof name, "rank-%d.replica-of-%d", dsmi_rt.rank, rp.ward);
    double t = dsmi_ckpt_now();
    int rc = dsmi_ckpt_write(epoch_dir, name, h, rp.pend + sizeof *h,
                             rp.pend + sizeof *h + h->seg_len, crc, why);
    dsmi_ckpt_cost_add(DSM_CKPT_LEVEL_PARTNER, dsmi_ckpt_now() - t, rc == DSM_OK ? rp.pend_len : 0);
    return rc;
}

int dsmi_replica_exchange(const char *epoch_dir, const struct dsmi_ckpt_hdr *h, const void *seg,
                          const void *reg, bool write, char *why)
{
    if (!rp.on) {
        return DSM_OK;
    }
    struct dsmi_ckpt_hdr wh;
    DSMI_MPI("dsm_checkpoint",
             MPI_Sendrecv(h, sizeof *h, MPI_BYTE, rp.keeper[dsmi_rt.rank], TAG_HDR, &wh, sizeof wh,
                          MPI_BYTE, rp.ward, TAG_HDR, dsmi_ck.comm, MPI_STATUS_IGNORE));
    double t = dsmi_ckpt_now(); // after the headers: not the wait for the partners' writes
    size_t len = sizeof wh + wh.seg_len + wh.reg_len;
    char *buf = malloc(len);
    // Every rank must know that every rank can receive before any data moves.
    int rc = dsmi_ckpt_agree(buf != NULL ? DSM_OK : DSM_ERR_NOMEM);
    if (rc == DSM_OK) {
        rc = transfer(h, seg, reg, &wh, buf);
    }
    if (rc != DSM_OK) {
        dsmi_why(why, "replica exchange failed (%s)", dsm_strerror(rc));
        free(buf);
        return rc;
    }
    memcpy(buf, &wh, sizeof wh);
    dsmi_ckpt_cost_add(DSM_CKPT_LEVEL_PARTNER, dsmi_ckpt_now() - t, 0);
    free(rp.pend);
    rp.pend = buf;
    rp.pend_len = len;
    rp.pend_epoch = h->epoch;
    return write ? write_replica(epoch_dir, false, why) : DSM_OK;
}

int dsmi_replica_write_pending(const char *epoch_dir, char *why)
{
    return rp.on && rp.pend != NULL ? write_replica(epoch_dir, true, why) : DSM_OK;
}

bool dsmi_replica_find(const char *epoch_dir, int owner, char *out, size_t len)
{
    char why[DSMI_WHY];
    int fd = dsmi_ckpt_open_dir(epoch_dir, false, why); // never through a link
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    bool found = false;
    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    struct dirent *ent;
    while (!found && (ent = readdir(d)) != NULL) {
        int keeper = -1, of = -1, end = 0;
        if (sscanf(ent->d_name, "rank-%d.replica-of-%d%n", &keeper, &of, &end) == 2 &&
            ent->d_name[end] == '\0' && of == owner) {
            snprintf(out, len, "%s", ent->d_name);
            found = true;
        }
    }
    closedir(d);
    return found;
}

/* ---- simulated failure and recovery ---- */

int dsm_simulate_failure(int rank)
{
    static const char *const fn = "dsm_simulate_failure";
    DSMI_CHECK_UP(fn);
    int lo = rank, hi = rank;
    DSMI_MPI(fn, MPI_Allreduce(&rank, &lo, 1, MPI_INT, MPI_MIN, dsmi_ck.comm));
    DSMI_MPI(fn, MPI_Allreduce(&rank, &hi, 1, MPI_INT, MPI_MAX, dsmi_ck.comm));
    if (lo != hi || rank < 0 || rank >= dsmi_rt.nranks) {
        return dsmi_fail(DSM_ERR_ARG, fn, "rank %d: must be 0..%d and the same on every rank", rank,
                         dsmi_rt.nranks - 1);
    }
    int rc = dsm_barrier(); // no operation is in flight into the segment being wiped
    if (rc != DSM_OK) {
        return rc;
    }
    if (dsmi_rt.rank == rank) {
        memset(dsmi_w.base, 0, dsmi_w.size);
        free(rp.held); // the node's memory is gone, the replica it kept with it
        rp.held = NULL;
        dsmi_ck.wiped = true;
        dsmi_log(DSMI_LOG_INFO, "simulated failure: segment wiped");
    }
    DSMI_MPI(fn, MPI_Win_sync(dsmi_w.win));
    DSMI_MPI(fn, MPI_Barrier(dsmi_ck.comm));
    return DSM_OK;
}

/* Keeper side: send the held image to the wiped ward. */
static int send_held(void)
{
    int nreq = 0;
    const struct dsmi_ckpt_hdr *h = (const struct dsmi_ckpt_hdr *)rp.held;
    // rp.held passed held_consistent(), so these lengths lie inside the buffer.
    size_t pieces = (size_t)(npieces(h->seg_len) + npieces(h->reg_len)) + 1; // never 0
    MPI_Request *req = malloc(sizeof *req * pieces);
    // Real statuses: gcc 12 flags MPICH's MPI_STATUSES_IGNORE as a zero-sized array.
    MPI_Status *st = malloc(sizeof *st * pieces);
    // A few dozen bytes; returning here would leave the ward waiting for our header.
    DSM_ASSERT(req != NULL && st != NULL);
    int rc = DSM_OK, mrc = MPI_Send(rp.held, sizeof *h, MPI_BYTE, rp.ward, TAG_HDR, dsmi_ck.comm);
    char *data = rp.held + sizeof *h;
    if (mrc == MPI_SUCCESS) {
        rc = post(data, h->seg_len, rp.ward, true, req, &nreq);
    }
    if (mrc == MPI_SUCCESS && rc == DSM_OK) {
        rc = post(data + h->seg_len, h->reg_len, rp.ward, true, req, &nreq);
    }
    if (mrc == MPI_SUCCESS) {
        mrc = MPI_Waitall(nreq, req, st);
    }
    free(req);
    free(st);
    if (mrc != MPI_SUCCESS) {
        return dsmi_fail_mpi(mrc, "dsm_recover", "sending the replica", __FILE__, __LINE__);
    }
    return rc;
}

/* A replica image read back from a file is used only when its header's lengths describe
 * exactly the bytes read and fit a segment: a damaged file must not steer the sends. */
static bool held_consistent(const char *buf, size_t len)
{
    const struct dsmi_ckpt_hdr *h = (const struct dsmi_ckpt_hdr *)buf;
    return len >= sizeof *h && h->seg_len <= dsmi_w.size && h->reg_len <= len &&
           sizeof *h + h->seg_len + h->reg_len == len;
}

/* read() until len bytes arrived (one call returns at most about 2 GiB). */
static bool read_all(int fd, char *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n <= 0) {
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

/* Wiped side: receive the image from the keeper straight into the segment, verify it. */
static int recv_image(uint64_t e, void **reg, struct dsmi_ckpt_hdr *h, char *why)
{
    int keeper = rp.keeper[dsmi_rt.rank];
    DSMI_MPI("dsm_recover",
             MPI_Recv(h, sizeof *h, MPI_BYTE, keeper, TAG_HDR, dsmi_ck.comm, MPI_STATUS_IGNORE));
    struct dsmi_ckpt_expect ex = dsmi_ckpt_expect_for(e, dsmi_rt.rank);
    // The keeper sends what its header says; receive it all even when it is rejected.
    size_t seg_len = h->seg_len <= dsmi_w.size ? h->seg_len : 0;
    char *blob = malloc(h->reg_len + (h->seg_len - seg_len) + 1);
    DSM_ASSERT(blob != NULL);
    for (size_t off = 0; off < h->seg_len; off += PIECE) {
        int n = (int)(h->seg_len - off < PIECE ? h->seg_len - off : PIECE);
        char *dst = seg_len ? dsmi_w.base + off : blob + off;
        DSMI_MPI("dsm_recover",
                 MPI_Recv(dst, n, MPI_BYTE, keeper, TAG_DATA, dsmi_ck.comm, MPI_STATUS_IGNORE));
    }
    for (size_t off = 0; off < h->reg_len; off += PIECE) {
        int n = (int)(h->reg_len - off < PIECE ? h->reg_len - off : PIECE);
        DSMI_MPI("dsm_recover", MPI_Recv(blob + off, n, MPI_BYTE, keeper, TAG_DATA, dsmi_ck.comm,
                                         MPI_STATUS_IGNORE));
    }
    int rc = dsmi_ckpt_check_hdr(h, &ex, dsmi_w.size, why);
    if (rc == DSM_OK &&
        dsmi_crc32c(dsmi_crc32c(0, dsmi_w.base, h->seg_len), blob, h->reg_len) != h->data_crc) {
        dsmi_why(why, "data checksum mismatch in the in-memory replica");
        rc = DSM_ERR_CORRUPT;
    }
    if (rc != DSM_OK) {
        free(blob);
        return rc;
    }
    *reg = blob;
    return DSM_OK;
}

/* Hold the ward's replica of epoch e read from this rank's replica file (node-local
 * with levels); false when there is none whose lengths are consistent. */
static bool load_held(uint64_t e)
{
    char shared[PATH_MAX], dir[PATH_MAX], name[64], why[DSMI_WHY];
    dsmi_ckpt_epoch_dir(e, shared, sizeof shared);
    dsmi_ckpt_replica_dir(e, shared, dir, sizeof dir);
    snprintf(name, sizeof name, "rank-%d.replica-of-%d", dsmi_rt.rank, rp.ward);
    int fd = dsmi_ckpt_open_file(dir, name, why);
    struct stat st;
    bool ok = false;
    if (fd >= 0 && fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(struct dsmi_ckpt_hdr)) {
        char *buf = malloc((size_t)st.st_size);
        ok = buf != NULL && read_all(fd, buf, (size_t)st.st_size) &&
             held_consistent(buf, (size_t)st.st_size);
        if (ok) {
            free(rp.held);
            rp.held = buf;
            rp.held_len = (size_t)st.st_size;
            rp.held_epoch = e; // verified by the ward when it is used
            buf = NULL;
        }
        free(buf);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (!ok) {
        dsmi_log(DSMI_LOG_WARN, "could not load the replica of rank %d from %s/%s", rp.ward, dir,
                 name);
    }
    return ok;
}

/* Rebuild the replica this rank kept for its ward from its replica file of epoch e. */
void dsmi_replica_reload(uint64_t e)
{
    if (rp.on && !(rp.held != NULL && rp.held_epoch == e)) {
        load_held(e);
    }
}

/* Post the held image's header and pieces to the ward (nonblocking: the caller may be
 * receiving its own image from its keeper meanwhile); requests into req. */
static int post_held(MPI_Request *req, int *nreq)
{
    const struct dsmi_ckpt_hdr *h = (const struct dsmi_ckpt_hdr *)rp.held;
    int mrc = MPI_Isend(rp.held, sizeof *h, MPI_BYTE, rp.ward, TAG_HDR, dsmi_ck.comm, &req[0]);
    if (mrc != MPI_SUCCESS) {
        return dsmi_fail_mpi(mrc, "dsm_init", "MPI_Isend", __FILE__, __LINE__);
    }
    *nreq = 1;
    char *data = rp.held + sizeof *h;
    int rc = post(data, h->seg_len, rp.ward, true, req, nreq);
    return rc == DSM_OK ? post(data + h->seg_len, h->reg_len, rp.ward, true, req, nreq) : rc;
}

int dsmi_replica_fetch(uint64_t e, bool need, void **reg, struct dsmi_ckpt_hdr *h, char *why)
{
    if (!rp.on) {
        dsmi_why(why, "no partner copies (a job of one rank)");
        return need ? DSM_ERR_NOTFOUND : DSM_OK;
    }
    int n = dsmi_rt.nranks, mine = need, keeper = rp.keeper[dsmi_rt.rank];
    int *all = malloc(sizeof(int) * (size_t)n), have = 0, keeper_has = 0;
    DSM_ASSERT(all != NULL); // a few bytes per rank; failing alone would hang the others
    DSMI_MPI("dsm_init", MPI_Allgather(&mine, 1, MPI_INT, all, 1, MPI_INT, dsmi_ck.comm));
    if (all[rp.ward]) {
        have = load_held(e);
    }
    free(all);
    DSMI_MPI("dsm_init", MPI_Sendrecv(&have, 1, MPI_INT, rp.ward, TAG_HAVE, &keeper_has, 1, MPI_INT,
                                      keeper, TAG_HAVE, dsmi_ck.comm, MPI_STATUS_IGNORE));
    MPI_Request *req = NULL;
    MPI_Status *st = NULL;
    int nreq = 0, rc = DSM_OK;
    if (have) {
        const struct dsmi_ckpt_hdr *hh = (const struct dsmi_ckpt_hdr *)rp.held;
        size_t pieces = (size_t)(npieces(hh->seg_len) + npieces(hh->reg_len)) + 1;
        req = malloc(sizeof *req * pieces);
        st = malloc(sizeof *st * pieces);
        DSM_ASSERT(req != NULL && st != NULL);
        rc = post_held(req, &nreq);
    }
    int got = DSM_ERR_NOTFOUND;
    if (need && keeper_has) {
        got = recv_image(e, reg, h, why);
    } else if (need) {
        dsmi_why(why, "rank %d (its partner) has no copy of epoch %llu in its node-local storage",
                 keeper, (unsigned long long)e);
    }
    int mrc = nreq > 0 ? MPI_Waitall(nreq, req, st) : MPI_SUCCESS;
    free(req);
    free(st);
    if (mrc != MPI_SUCCESS) {
        rc = dsmi_fail_mpi(mrc, "dsm_init", "MPI_Waitall", __FILE__, __LINE__);
    }
    return need ? got : rc;
}

/* This wiped rank's image of epoch e: keeper's memory when offered, else files. */
static int restore_wiped(uint64_t e, bool from_keeper)
{
    char why[DSMI_WHY] = "";
    void *reg = NULL;
    struct dsmi_ckpt_hdr h;
    int rc = DSM_ERR_NOTFOUND;
    if (from_keeper) {
        rc = recv_image(e, &reg, &h, why);
        if (rc != DSM_OK) {
            dsmi_log(DSMI_LOG_ERROR,
                     "recover: rejected the in-memory replica from rank %d: "
                     "%s; trying the files",
                     rp.keeper[dsmi_rt.rank], why);
        }
    }
    if (rc != DSM_OK) {
        rc = dsmi_ckpt_restore_files(e, &reg, &h, why);
    }
    if (rc != DSM_OK) {
        return dsmi_fail(rc, "dsm_recover", "no verified copy of epoch %llu: %s",
                         (unsigned long long)e, why);
    }
    memset(dsmi_w.base + h.seg_len, 0, dsmi_w.size - h.seg_len);
    rc = dsmi_ckpt_after_restore(reg, &h, true);
    dsmi_replica_reload(e);
    return rc;
}

int dsm_recover(void)
{
    static const char *const fn = "dsm_recover";
    DSMI_CHECK_UP(fn);
    int n = dsmi_rt.nranks, me = dsmi_rt.rank, rc = dsm_barrier();
    if (rc != DSM_OK) {
        return rc;
    }
    // Per rank: wiped?, and does it hold its ward's replica of the last epoch?
    int mine[2] = {dsmi_ck.wiped, rp.held != NULL && rp.held_epoch == dsmi_ck.last_epoch};
    int *all = malloc(sizeof(int) * 2 * (size_t)n), any = 0;
    DSM_ASSERT(all != NULL);
    DSMI_MPI(fn, MPI_Allgather(mine, 2, MPI_INT, all, 2, MPI_INT, dsmi_ck.comm));
    for (int r = 0; r < n; r++) {
        any |= all[2 * r];
    }
    int keeper = dsmi_replica_keeper(me);
    bool send = rp.on && !mine[0] && mine[1] && all[2 * rp.ward];
    bool recv = rp.on && mine[0] && !all[2 * keeper] && all[2 * keeper + 1];
    free(all);
    if (!any) {
        return DSM_OK;
    }
    if (dsmi_ck.last_epoch == 0) {
        return dsmi_fail(DSM_ERR_NOTFOUND, fn, "no committed checkpoint to recover from");
    }
    if (send) {
        rc = send_held();
    }
    if (dsmi_ck.wiped) {
        rc = restore_wiped(dsmi_ck.last_epoch, recv);
        dsmi_ck.wiped = rc != DSM_OK;
    }
    rc = dsmi_ckpt_agree(rc);
    DSMI_MPI(fn, MPI_Win_sync(dsmi_w.win)); // publish the restored bytes
    DSMI_MPI(fn, MPI_Barrier(dsmi_ck.comm));
    return rc == DSM_OK ? DSM_OK : dsmi_fail(rc, fn, "a wiped rank could not be restored");
}
