/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Coordinated checkpoints and restart.
 *
 * dsm_checkpoint: dsm_barrier (every rank's RMA complete, local stores published), then
 * each rank writes its image (segment [0, dsmi_heap_extent()) plus protected regions)
 * as DSM_CKPT_DIR/<job>/<epoch>/rank-<r>.ckpt, replicas go to partners, an allreduce
 * agrees that every write succeeded, and only then rank 0 writes <epoch>/COMMIT. The
 * allreduce also makes the image a consistent cut: no rank returns (and writes into
 * another segment) before every rank has finished reading its own.
 *
 * Invariants: all ranks hold the same next_epoch and last_epoch; an epoch without COMMIT
 * never counts and its number is never reused (next_epoch starts above every epoch
 * directory found); older committed epochs are deleted only after a newer one is
 * committed, keeping DSM_CKPT_KEEP of them.
 *
 * Restart (subsystem start, after the heap's): rank 0 lists the committed epochs, newest
 * first (all epoch directories, however many; an unreadable job directory stops the
 * restart instead of counting as empty), and broadcasts them; for each, every rank
 * reads and verifies its own file (or the partner's replica file) straight into the
 * window, and an allreduce decides. The
 * first epoch every rank accepts wins; if none does, the fresh segment saved beforehand
 * is put back. Each candidate is tried once, so a bad checkpoint is never retried in a
 * loop. The window's bytes were written by local stores: MPI_Win_sync plus a barrier
 * publishes them before any rank's RMA.
 *
 * Identity: the job directory is the job's name encoded one to one (ckpt_io.c), and
 * each image and COMMIT names the program that wrote it; an epoch is a candidate only
 * when its COMMIT says this program, rank count, segment size, format and layout. An
 * image that then says otherwise is a wrong file: the epoch is condemned (COMMIT
 * renamed to COMMIT.rejected) once, like a damaged one, and never read again.
 *
 * The DSM_CKPT_DIR path must be the same file system on all ranks (rank 0 creates the
 * directories, writes COMMIT and lists epochs).
 */
#include "ckpt.h"
#include "repl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "heap.h"
#include "sync.h"
#include "topo.h"
#include "win.h"

#define MAX_REGIONS 64
#define MAX_CANDIDATES 64
#define ULL(x) ((unsigned long long)(x))

struct dsmi_ckpt_state dsmi_ck = {.comm = MPI_COMM_NULL};

static struct {
    struct region {
        char name[DSMI_CKPT_NAME];
        void *ptr;
        size_t size;
    } prot[MAX_REGIONS];
    int nprot;
    void *pend_blob; // region records of the restored image, until claimed
    uint32_t npend;
    uint64_t pend_len;
    struct dsmi_ident ident; // this run's ident header, put back after every restore
    bool restarted;
    uint64_t restart_epoch;
    double last_time;                     // rank 0: when the interval last started
    dsm_ckpt_cost_t cost_pend, cost_last; // the epoch being written, the last committed
    bool committed;                       // this run committed an epoch (cost_last is set)
} cs;

static const char *const FN = "dsm_checkpoint";

int dsmi_ckpt_agree(int rc)
{
    int all = rc;
    if (MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, dsmi_ck.comm) != MPI_SUCCESS) {
        return DSM_ERR_MPI;
    }
    return all;
}

void dsmi_ckpt_epoch_dir(uint64_t e, char *out, size_t len)
{
    snprintf(out, len, "%s/%08llu", dsmi_ck.jobdir, (unsigned long long)e);
}

double dsmi_ckpt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void dsmi_ckpt_cost_add(int level, double seconds, uint64_t bytes)
{
    cs.cost_pend.seconds[level] += seconds;
    cs.cost_pend.bytes[level] += bytes;
}

int dsm_ckpt_cost(dsm_ckpt_cost_t *cost)
{
    DSMI_CHECK_UP("dsm_ckpt_cost");
    if (cost == NULL) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_ckpt_cost", "cost is NULL");
    }
    if (!cs.committed) {
        return dsmi_fail(DSM_ERR_NOTFOUND, "dsm_ckpt_cost", "no checkpoint committed in this run");
    }
    *cost = cs.cost_last;
    return DSM_OK;
}

int dsm_ckpt_dir(int level, uint64_t epoch, char *buf, size_t len)
{
    DSMI_CHECK_UP("dsm_ckpt_dir");
    if (buf == NULL || len == 0 || level < DSM_CKPT_LEVEL_LOCAL || level > DSM_CKPT_LEVEL_SHARED) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_ckpt_dir", "%s",
                         buf == NULL || len == 0 ? "buf is NULL or len is 0"
                                                 : "level is not a dsm_ckpt_level");
    }
    bool shared = level == DSM_CKPT_LEVEL_SHARED || !dsmi_ck.local;
    if (level == DSM_CKPT_LEVEL_LOCAL && !dsmi_ck.local) { // an answer, not an error
        buf[0] = '\0';
        return DSM_OK;
    }
    const char *dir = shared ? dsmi_ck.jobdir : dsmi_ck.localdir;
    int n = epoch == 0 ? snprintf(buf, len, "%s", dir)
                       : snprintf(buf, len, "%s/%08llu", dir, (unsigned long long)epoch);
    if (n < 0 || (size_t)n >= len) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_ckpt_dir", "len %zu is too small: the path has %d bytes",
                         len, n);
    }
    return DSM_OK;
}

void dsmi_ckpt_local_epoch_dir(uint64_t e, char *out, size_t len)
{
    snprintf(out, len, "%s/%08llu", dsmi_ck.localdir, (unsigned long long)e);
}

unsigned dsmi_ckpt_levels(uint64_t e)
{
    if (!dsmi_ck.local) {
        return DSMI_LEVEL_SHARED;
    }
    long k = dsmi_rt.cfg.CKPT_FLUSH_EVERY;
    unsigned lev = DSMI_LEVEL_LOCAL | (dsmi_rt.nranks > 1 ? DSMI_LEVEL_PARTNER : 0);
    // Hosting segments (a restart on another rank count): a restart reads every image
    // of such an epoch from the shared level, so every epoch has it.
    bool hosting = dsmi_w.nseg != dsmi_rt.nranks;
    return lev | ((k > 0 && e % (uint64_t)k == 0) || hosting ? DSMI_LEVEL_SHARED : 0);
}

void dsmi_ckpt_replica_dir(uint64_t e, const char *dir, char *out, size_t len)
{
    if (dsmi_ck.local) {
        dsmi_ckpt_local_epoch_dir(e, out, len);
    } else {
        snprintf(out, len, "%s", dir);
    }
}

int dsmi_ckpt_write_levels(uint64_t e, const char *dir, struct dsmi_ckpt_hdr *h, const void *seg,
                           const void *reg, bool crc, char *why)
{
    char name[32], ldir[PATH_MAX];
    snprintf(name, sizeof name, "rank-%d.ckpt", (int)h->rank);
    int rc = DSM_OK;
    uint64_t bytes = sizeof *h + h->seg_len + h->reg_len;
    double t = dsmi_ckpt_now();
    if (dsmi_ck.local) {
        dsmi_ckpt_local_epoch_dir(e, ldir, sizeof ldir);
        rc = dsmi_ckpt_write(ldir, name, h, seg, reg, crc, why);
        crc = false; // summed: the header now holds the sums
        dsmi_ckpt_cost_add(DSM_CKPT_LEVEL_LOCAL, dsmi_ckpt_now() - t, rc == DSM_OK ? bytes : 0);
        t = dsmi_ckpt_now();
    }
    if (rc == DSM_OK && (dsmi_ckpt_levels(e) & DSMI_LEVEL_SHARED)) {
        rc = dsmi_ckpt_write(dir, name, h, seg, reg, crc, why);
        dsmi_ckpt_cost_add(DSM_CKPT_LEVEL_SHARED, dsmi_ckpt_now() - t, rc == DSM_OK ? bytes : 0);
    }
    return rc;
}

struct dsmi_ckpt_expect dsmi_ckpt_expect_for(uint64_t e, int r)
{
    return (struct dsmi_ckpt_expect){.job = dsmi_ck.job_fp,
                                     .epoch = e,
                                     .seg_size = dsmi_w.size,
                                     .program = dsmi_ck.program_fp,
                                     .nranks = dsmi_w.nseg, // images are per segment
                                     .rank = r};
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037u;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    }
    return h;
}

/* ---- the epoch list (rank 0) ---- */

/* What an epoch's COMMIT record says about it. */
enum commit_state {
    C_NONE,    // no record: the epoch does not count
    C_BAD,     // not a record of this epoch: condemned
    C_OTHER,   // intact, of another shape (rank count, heap size, format): kept, skipped
    C_FOREIGN, // intact, written by another program under this job name
    C_OURS,    // fits this job: a candidate
    C_IOERR,   // could not be read (permissions, a link): nothing can be decided
};

/* The fields of a COMMIT record (see commit()). */
struct record {
    unsigned long long epoch, segment;
    int ranks;
    unsigned layout, format;
    char program[DSMI_CKPT_JOB_MAX]; // encoded
    unsigned seen;                   // bit per field found
    unsigned levels;                 // DSMI_LEVEL_* ("levels" line; shared when absent)
};

/* The bits of a "levels" line's value, e.g. "local,partner,shared". */
static unsigned parse_levels(const char *v)
{
    unsigned l = 0;
    l |= strstr(v, "local") ? DSMI_LEVEL_LOCAL : 0;
    l |= strstr(v, "partner") ? DSMI_LEVEL_PARTNER : 0;
    l |= strstr(v, "shared") ? DSMI_LEVEL_SHARED : 0;
    return l;
}

static void parse_record(char *text, struct record *r)
{
    char *save = NULL;
    r->levels = DSMI_LEVEL_SHARED; // written without levels: every image is shared
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        r->seen |= (sscanf(l, "epoch %llu", &r->epoch) == 1) << 0;
        r->seen |= (sscanf(l, "ranks %d", &r->ranks) == 1) << 1;
        r->seen |= (sscanf(l, "layout %u", &r->layout) == 1) << 2;
        r->seen |= (sscanf(l, "segment %llu", &r->segment) == 1) << 3;
        r->seen |= (sscanf(l, "format %u", &r->format) == 1) << 4;
        r->seen |= (sscanf(l, "program %255s", r->program) == 1) << 5;
        if (strncmp(l, "levels ", 7) == 0) {
            r->levels = parse_levels(l + 7);
        }
    }
}

/* Read epoch e's COMMIT record (at most 1 KiB) into text; C_NONE, C_IOERR or C_OURS. */
static int read_record(uint64_t e, char *text, size_t len, char *why)
{
    char dir[PATH_MAX];
    dsmi_ckpt_epoch_dir(e, dir, sizeof dir);
    int fd = dsmi_ckpt_open_file(dir, "COMMIT", why);
    if (fd < 0) {
        return errno == ENOENT ? C_NONE : C_IOERR;
    }
    ssize_t n = read(fd, text, len - 1);
    if (n < 0) {
        dsmi_why(why, "read %s/COMMIT: %s", dir, strerror(errno));
    }
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    return n < 0 ? C_IOERR : C_OURS;
}

/* Whether an epoch of segs segments with levels lev can be restored on this job's
 * window (dsmi_w.nseg segments on dsmi_rt.nranks ranks); why says why not. */
static bool shape_fits(uint64_t e, int segs, unsigned lev, char *why)
{
    // first the cause that a window sized for the newest usable epoch (dsmi_ckpt_probe)
    // would hide: such an epoch was never a candidate
    bool regroup = segs != dsmi_rt.nranks || dsmi_w.nseg != dsmi_rt.nranks;
    if (segs >= 1 && regroup && !(lev & DSMI_LEVEL_SHARED)) {
        dsmi_why(why,
                 "epoch %llu of %d segments lives only in node-local storage; a restart on "
                 "%d ranks reads the shared level",
                 ULL(e), segs, dsmi_rt.nranks);
        return false;
    }
    if (segs < 1 || segs > dsmi_w.nseg) {
        dsmi_why(why,
                 "epoch %llu was written by %d segments, this job has %d ranks and room for %d "
                 "segments (at most %d per rank; the newest epoch decides)",
                 ULL(e), segs, dsmi_rt.nranks, dsmi_w.nseg, DSMI_MAX_SLOTS);
        return false;
    }
    return true;
}

/* Classify epoch e by its COMMIT record; why says why it is not C_OURS; *lev (may be
 * NULL) gets the levels it names, *segs (may be NULL) its segment count. */
static int commit_state(uint64_t e, char *why, unsigned *lev, int *segs)
{
    char text[1024];
    int st = read_record(e, text, sizeof text, why);
    if (st != C_OURS) {
        return st;
    }
    struct record r = {0};
    parse_record(text, &r);
    if (lev != NULL) {
        *lev = r.levels;
    }
    if (segs != NULL) {
        *segs = r.ranks;
    }
    char prog[DSMI_CKPT_JOB_MAX];
    dsmi_ckpt_encode(dsmi_ck.program, prog, sizeof prog);
    if ((r.seen & 0x1f) != 0x1f || r.epoch != e) {
        dsmi_why(why, "epoch %llu: its COMMIT is not a valid commit record", ULL(e));
        return C_BAD;
    }
    if (r.format != DSMI_CKPT_FORMAT || r.layout != DSMI_LAYOUT_VERSION) {
        dsmi_why(why, "epoch %llu was written in format %u / layout %u, this library uses %u / %u",
                 ULL(e), r.format, r.layout, DSMI_CKPT_FORMAT, DSMI_LAYOUT_VERSION);
        return C_OTHER;
    }
    if (!(r.seen & 0x20)) {
        dsmi_why(why, "epoch %llu: its COMMIT names no program", ULL(e));
        return C_BAD;
    }
    if (strcmp(r.program, prog) != 0) {
        dsmi_why(why, "epoch %llu was written by the program '%s', this is '%s'", ULL(e), r.program,
                 prog);
        return C_FOREIGN;
    }
    if (!shape_fits(e, r.ranks, r.levels, why)) {
        return C_OTHER;
    }
    if (r.segment != dsmi_w.size) {
        dsmi_why(why, "epoch %llu has segments of %llu bytes, this job %zu (DSM_HEAP_SIZE differs)",
                 ULL(e), r.segment, dsmi_w.size);
        return C_OTHER;
    }
    return C_OURS;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x < y) - (x > y);
}

/* Entry ent of the job directory jobdir at dfd: 0 when its name is not an epoch number,
 * 1 for a numbered link or file (never an epoch; say: log it), 2 for an epoch
 * directory. *num gets the number. */
static int epoch_entry(const char *jobdir, int dfd, const struct dirent *ent, uint64_t *num,
                       bool say)
{
    const char *s = ent->d_name;
    size_t len = strlen(s);
    if (len < 8 || len > 19 || strspn(s, "0123456789") != len) {
        return 0;
    }
    *num = strtoull(s, NULL, 10);
    struct stat st;
    if (ent->d_type == DT_DIR ||
        (ent->d_type == DT_UNKNOWN && fstatat(dfd, s, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISDIR(st.st_mode))) {
        return 2;
    }
    if (say) {
        dsmi_log(DSMI_LOG_ERROR,
                 "checkpoints: %s/%s is not a directory (a symbolic link?): ignored, "
                 "never followed or deleted",
                 jobdir, s);
    }
    return 1; // its number is still taken: a new epoch must not collide with it
}

/* Every epoch directory of the job directory jobdir (shared or node-local), newest
 * first, into *out (malloc'd; caller frees), their count into *n and the largest number
 * of any epoch-named entry into *max. DSM_OK (also when the job directory does not
 * exist) or DSM_ERR_IO (why says). */
static int list_epochs_in(const char *jobdir, uint64_t **out, int *n, uint64_t *max, bool say,
                          char *why)
{
    *out = NULL;
    *n = 0;
    *max = 0;
    int fd = dsmi_ckpt_open_dir(jobdir, false, why);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        int err = errno;
        if (fd >= 0) {
            close(fd);
        }
        return err == ENOENT ? DSM_OK : DSM_ERR_IO;
    }
    size_t cap = 0;
    int rc = DSM_OK;
    struct dirent *ent;
    uint64_t e;
    while (rc == DSM_OK && (ent = readdir(d)) != NULL) {
        int kind = epoch_entry(jobdir, dirfd(d), ent, &e, say);
        *max = kind != 0 && e > *max ? e : *max;
        if (kind != 2) {
            continue;
        }
        if ((size_t)*n == cap) {
            cap = cap ? 2 * cap : 64;
            uint64_t *grown = realloc(*out, cap * sizeof *grown);
            rc = grown ? DSM_OK : DSM_ERR_NOMEM;
            *out = grown ? grown : *out;
        }
        if (rc == DSM_OK) {
            (*out)[(*n)++] = e;
        }
    }
    closedir(d);
    if (rc != DSM_OK) {
        dsmi_why(why, "no memory to list %s", jobdir);
        return rc;
    }
    if (*n > 1) { // qsort of NULL (no epoch yet) is undefined, even with a count of 0
        qsort(*out, (size_t)*n, sizeof **out, cmp_desc);
    }
    return DSM_OK;
}

static int list_epochs(uint64_t **out, int *n, uint64_t *max, bool say, char *why)
{
    return list_epochs_in(dsmi_ck.jobdir, out, n, max, say, why);
}

/* What rank 0 found in the job directory, broadcast as bytes (one binary on all ranks). */
struct found {
    uint64_t cand[MAX_CANDIDATES]; // committed epochs that fit this job, newest first
    unsigned lev[MAX_CANDIDATES];  // the levels each has (DSMI_LEVEL_*)
    int segs[MAX_CANDIDATES];      // the segments each has (its ranks when written)
    int n;
    int rc;     // DSM_OK; DSM_ERR_IO (unreadable), DSM_ERR_MISMATCH (another program's)
    int nother; // committed epochs of another shape (skipped, kept)
    uint64_t next;
    char why[DSMI_WHY]; // the reason for rc, else why the newest other epoch was skipped
};

/* Rank 0: a damaged epoch (no intact copy of some rank's image, or no valid commit
 * record) stops counting, so no later restart reads and reports it again and retention
 * never keeps it in place of a good one. Epochs of another shape stay. */
static void condemn(uint64_t e, const char *cause)
{
    char dir[PATH_MAX], why[DSMI_WHY];
    dsmi_ckpt_epoch_dir(e, dir, sizeof dir);
    if (dsmi_ckpt_rename(dir, "COMMIT", "COMMIT.rejected", why) == DSM_OK) {
        dsmi_log(DSMI_LOG_ERROR,
                 "restart: epoch %llu is damaged (%s): %s/COMMIT renamed to "
                 "COMMIT.rejected, it will not be tried again",
                 ULL(e), cause, dir);
    } else {
        dsmi_log(DSMI_LOG_ERROR, "restart: epoch %llu is damaged (%s), not condemned: %s", ULL(e),
                 cause, why);
    }
}

/* Rank 0, restarting: sort the epochs of all[0..n) (newest first) by their records. */
static void classify(const uint64_t *all, int n, struct found *f)
{
    char why[DSMI_WHY];
    unsigned lev = 0;
    int segs = 0;
    for (int i = 0; i < n && f->n < MAX_CANDIDATES && f->rc == DSM_OK; i++) {
        int st = commit_state(all[i], why, &lev, &segs);
        if (st == C_OURS && !dsmi_ck.local && !(lev & DSMI_LEVEL_SHARED)) {
            dsmi_why(why,
                     "epoch %llu lives only in node-local storage and DSM_CKPT_LOCAL_DIR "
                     "is not set",
                     ULL(all[i]));
            st = C_OTHER;
        }
        switch (st) {
        case C_OURS:
            f->lev[f->n] = lev;
            f->segs[f->n] = segs;
            f->cand[f->n++] = all[i];
            break;
        case C_BAD:
            condemn(all[i], why);
            break;
        case C_OTHER:
            dsmi_log(DSMI_LOG_ERROR, "restart: %s: skipped", why);
            if (f->nother++ == 0 && f->n == 0) {
                memcpy(f->why, why, sizeof why);
            }
            break;
        case C_FOREIGN: // neither restored nor, by retention, deleted: refuse the job
            f->rc = DSM_ERR_MISMATCH;
            memcpy(f->why, why, sizeof why);
            break;
        case C_IOERR: // without this record the newest epoch cannot be known: stop
            f->rc = DSM_ERR_IO;
            memcpy(f->why, why, sizeof why);
            break;
        default: // C_NONE
            break;
        }
    }
}

/* Rank 0: the epochs (read and classified only when restarting) and the next number. */
static void scan(bool restarting, struct found *f)
{
    uint64_t *all = NULL, max = 0;
    int n = 0;
    f->rc = list_epochs(&all, &n, &max, restarting, f->why);
    f->next = max + 1;
    if (f->rc == DSM_OK && restarting) {
        classify(all, n, f);
    }
    free(all);
}

/* Rank 0, after committing newest: delete committed epochs beyond DSM_CKPT_KEEP and
 * uncommitted ones older than newest (failed or interrupted checkpoints). An epoch whose
 * record cannot be read is left alone: nothing is deleted on a guess. Nor is another
 * program's epoch: a run with DSM_RESTART=never under a job name that another program
 * used must not delete that program's checkpoints (its restart refuses the mix loudly
 * instead, DSM_ERR_MISMATCH). */
/* With levels each level keeps DSM_CKPT_KEEP committed epochs: node-local storage the
 * newest ones, the shared directory the newest ones that have the shared level (their
 * images) plus the records of the newest ones (so the node-local ones stay restorable).
 * Returns the oldest epoch the node-local level keeps (0: keep all). */
static uint64_t prune(uint64_t newest)
{
    uint64_t *all = NULL, max = 0, floor = 0;
    int n = 0;
    char why[DSMI_WHY];
    if (list_epochs(&all, &n, &max, false, why) != DSM_OK) {
        dsmi_log(DSMI_LOG_WARN, "checkpoint retention skipped: %s", why);
        return 0;
    }
    long kept = 0, kept_shared = 0, keep = dsmi_rt.cfg.CKPT_KEEP;
    for (int i = 0; i < n; i++) {
        unsigned lev = DSMI_LEVEL_SHARED;
        int st = commit_state(all[i], why, &lev, NULL);
        if (st == C_FOREIGN) {
            dsmi_log(DSMI_LOG_WARN, "checkpoint retention: %s: kept", why);
            continue;
        }
        bool c = st == C_OURS || st == C_OTHER, sh = c && (lev & DSMI_LEVEL_SHARED);
        kept += c && all[i] <= newest;
        kept_shared += sh && all[i] <= newest;
        if (c && all[i] <= newest && kept == keep) {
            floor = all[i];
        }
        bool wanted = c && (kept <= keep || (sh && kept_shared <= keep));
        if (st != C_IOERR && all[i] < newest && !wanted) {
            char dir[PATH_MAX];
            dsmi_ckpt_epoch_dir(all[i], dir, sizeof dir);
            dsmi_ckpt_rmtree(dir);
        }
    }
    free(all);
    return floor;
}

/* One rank per node: delete the node-local epochs older than floor (see prune). */
static void prune_local(uint64_t floor)
{
    uint64_t *all = NULL, max = 0;
    int n = 0;
    char why[DSMI_WHY], dir[PATH_MAX];
    if (floor == 0 || list_epochs_in(dsmi_ck.localdir, &all, &n, &max, false, why) != DSM_OK) {
        return;
    }
    for (int i = 0; i < n; i++) {
        if (all[i] < floor) {
            dsmi_ckpt_local_epoch_dir(all[i], dir, sizeof dir);
            dsmi_ckpt_rmtree(dir);
        }
    }
    free(all);
}

/* ---- protected regions ---- */

int dsmi_ckpt_regions(void **blob, uint64_t *len, uint32_t *n)
{
    uint64_t total = 0;
    for (int i = 0; i < cs.nprot; i++) {
        total += sizeof(struct dsmi_ckpt_rec) + ((cs.prot[i].size + 7) & ~(size_t)7);
    }
    char *b = calloc(1, total ? total : 1);
    if (b == NULL) {
        return DSM_ERR_NOMEM;
    }
    char *p = b;
    for (int i = 0; i < cs.nprot; i++) {
        struct dsmi_ckpt_rec r = {.size = cs.prot[i].size};
        memcpy(r.name, cs.prot[i].name, sizeof r.name);
        memcpy(p, &r, sizeof r);
        memcpy(p + sizeof r, cs.prot[i].ptr, cs.prot[i].size);
        p += sizeof r + ((cs.prot[i].size + 7) & ~(size_t)7);
    }
    *blob = b;
    *len = total;
    *n = (uint32_t)cs.nprot;
    return DSM_OK;
}

/* The record called name in the pending blob, or NULL. */
static struct dsmi_ckpt_rec *pending(const char *name, char **data)
{
    char *p = cs.pend_blob, *end = p + cs.pend_len;
    for (uint32_t i = 0; i < cs.npend && p + sizeof(struct dsmi_ckpt_rec) <= end; i++) {
        struct dsmi_ckpt_rec r;
        memcpy(&r, p, sizeof r);
        uint64_t step = sizeof r + ((r.size + 7) & ~(uint64_t)7);
        if (r.size > (uint64_t)(end - p) - sizeof r) {
            return NULL; // the CRC held, so this is a bug, not damage: ignore the rest
        }
        if (strncmp(r.name, name, sizeof r.name) == 0) {
            *data = p + sizeof r;
            return (struct dsmi_ckpt_rec *)p;
        }
        p += step;
    }
    return NULL;
}

/* Fill region i from the pending image if it has a record of the same name and size. */
static int claim(int i, const char *func)
{
    char *data = NULL;
    struct dsmi_ckpt_rec *r = pending(cs.prot[i].name, &data);
    if (r == NULL) {
        return DSM_OK;
    }
    uint64_t size;
    memcpy(&size, &r->size, sizeof size);
    if (size != cs.prot[i].size) {
        return dsmi_fail(DSM_ERR_ARG, func,
                         "region '%s' was checkpointed with %llu bytes, "
                         "registered now with %zu",
                         cs.prot[i].name, (unsigned long long)size, cs.prot[i].size);
    }
    memcpy(cs.prot[i].ptr, data, size);
    r->name[0] = '\0'; // claimed once: registering again later keeps the live bytes
    return DSM_OK;
}

static int check_name(const char *name, const char *func)
{
    if (name == NULL || name[0] == '\0' || strlen(name) >= DSMI_CKPT_NAME) {
        return dsmi_fail(DSM_ERR_ARG, func, "name must be 1..%d characters", DSMI_CKPT_NAME - 1);
    }
    return DSM_OK;
}

int dsm_ckpt_protect(void *ptr, size_t size, const char *name)
{
    static const char *const fn = "dsm_ckpt_protect";
    DSMI_CHECK_UP(fn);
    int rc = check_name(name, fn), i = 0;
    if (rc != DSM_OK) {
        return rc;
    }
    if (ptr == NULL || size == 0) {
        return dsmi_fail(DSM_ERR_ARG, fn, "region '%s': ptr is NULL or size is 0", name);
    }
    while (i < cs.nprot && strcmp(cs.prot[i].name, name) != 0) {
        i++;
    }
    if (i == MAX_REGIONS) {
        return dsmi_fail(DSM_ERR_NOMEM, fn, "more than %d protected regions", MAX_REGIONS);
    }
    struct region old = cs.prot[i];
    cs.prot[i] = (struct region){.ptr = ptr, .size = size};
    snprintf(cs.prot[i].name, sizeof cs.prot[i].name, "%s", name);
    if ((rc = claim(i, fn)) != DSM_OK) {
        cs.prot[i] = old; // a failed registration changes nothing
        return rc;
    }
    cs.nprot += i == cs.nprot;
    return DSM_OK;
}

int dsm_ckpt_unprotect(const char *name)
{
    static const char *const fn = "dsm_ckpt_unprotect";
    DSMI_CHECK_UP(fn);
    int rc = check_name(name, fn);
    if (rc != DSM_OK) {
        return rc;
    }
    for (int i = 0; i < cs.nprot; i++) {
        if (strcmp(cs.prot[i].name, name) == 0) {
            cs.prot[i] = cs.prot[--cs.nprot];
            return DSM_OK;
        }
    }
    return dsmi_fail(DSM_ERR_NOTFOUND, fn, "no protected region called '%s'", name);
}

/* ---- restore ---- */

int dsmi_ckpt_after_restore(void *reg, const struct dsmi_ckpt_hdr *h, bool apply)
{
    memcpy(dsmi_w.base + DSMI_HDR_IDENT_OFF, &cs.ident, sizeof cs.ident);
    if (dsmi_rt.rank == 0) { // no root-table lock holder survives a restore
        memset(dsmi_w.base + DSMI_HDR_ROOTS_OFF, 0, sizeof(int64_t));
    }
    free(cs.pend_blob);
    cs.pend_blob = reg;
    cs.npend = h->nregions;
    cs.pend_len = h->reg_len;
    int rc = DSM_OK;
    for (int i = 0; apply && i < cs.nprot; i++) {
        int r = claim(i, "dsm_recover");
        rc = rc != DSM_OK ? rc : r;
    }
    dsmi_sync_reload(); // no lock waiter survives a restore: fresh queue-node pool
    int hr = dsmi_heap_reload();
    return hr != DSM_OK ? hr : rc;
}

/* This rank's node-local image of epoch e; a missing one is logged only at info level
 * (after a node's loss that is expected; the caller says what it used instead). */
static int restore_local(uint64_t e, void **reg, struct dsmi_ckpt_hdr *h, char *why)
{
    char dir[PATH_MAX], name[32];
    dsmi_ckpt_local_epoch_dir(e, dir, sizeof dir);
    snprintf(name, sizeof name, "rank-%d.ckpt", dsmi_rt.rank);
    struct dsmi_ckpt_expect ex = dsmi_ckpt_expect_for(e, dsmi_rt.rank);
    int rc = dsmi_ckpt_read(dir, name, &ex, dsmi_w.base, dsmi_w.size, reg, h, why);
    if (rc != DSM_OK) {
        dsmi_log(rc == DSM_ERR_NOTFOUND ? DSMI_LOG_INFO : DSMI_LOG_ERROR,
                 "restore: no usable node-local copy of epoch %llu: %s", ULL(e), why);
    }
    return rc;
}

int dsmi_ckpt_restore_files(uint64_t e, void **reg, struct dsmi_ckpt_hdr *h, char *why)
{
    char dir[PATH_MAX], name[NAME_MAX + 1], why2[DSMI_WHY];
    if (dsmi_ck.local && restore_local(e, reg, h, why) == DSM_OK) {
        return DSM_OK;
    }
    dsmi_ckpt_epoch_dir(e, dir, sizeof dir);
    snprintf(name, sizeof name, "rank-%d.ckpt", dsmi_rt.rank);
    struct dsmi_ckpt_expect ex = dsmi_ckpt_expect_for(e, dsmi_rt.rank);
    int rc = dsmi_ckpt_read(dir, name, &ex, dsmi_w.base, dsmi_w.size, reg, h, why);
    if (rc == DSM_OK) {
        return DSM_OK;
    }
    dsmi_log(DSMI_LOG_ERROR, "restore: rejected %s/%s: %s", dir, name, why);
    if (!dsmi_replica_find(dir, dsmi_rt.rank, name, sizeof name)) {
        return rc;
    }
    int rc2 = dsmi_ckpt_read(dir, name, &ex, dsmi_w.base, dsmi_w.size, reg, h, why2);
    if (rc2 == DSM_OK) {
        dsmi_log(DSMI_LOG_ERROR, "restore: using the partner copy %s/%s instead", dir, name);
        return DSM_OK;
    }
    dsmi_log(DSMI_LOG_ERROR, "restore: rejected the partner copy %s/%s: %s", dir, name, why2);
    return rc;
}

/* Collective, with levels: this rank's image of epoch e (levels lev) from the newest
 * level that survived: its own node-local file, else its partner's node-local copy
 * (sent by the partner), else the shared directory. A rank with none says what it
 * tried on each level. */
static int restore_levels(uint64_t e, unsigned lev, void **reg, struct dsmi_ckpt_hdr *h, char *why)
{
    char w1[DSMI_WHY] = "", w2[DSMI_WHY] = "", w3[DSMI_WHY] = "not in this epoch";
    int rc = restore_local(e, reg, h, w1);
    int rc2 = dsmi_replica_fetch(e, rc != DSM_OK, reg, h, w2); // collective
    if (rc != DSM_OK && rc2 == DSM_OK) {
        dsmi_log(DSMI_LOG_WARN, "restore: epoch %llu from the partner copy of rank %d", ULL(e),
                 dsmi_replica_keeper(dsmi_rt.rank));
        return DSM_OK;
    }
    if (rc != DSM_OK && (lev & DSMI_LEVEL_SHARED)) {
        char dir[PATH_MAX], name[32];
        dsmi_ckpt_epoch_dir(e, dir, sizeof dir);
        snprintf(name, sizeof name, "rank-%d.ckpt", dsmi_rt.rank);
        struct dsmi_ckpt_expect ex = dsmi_ckpt_expect_for(e, dsmi_rt.rank);
        rc = dsmi_ckpt_read(dir, name, &ex, dsmi_w.base, dsmi_w.size, reg, h, w3);
        if (rc == DSM_OK) {
            dsmi_log(DSMI_LOG_WARN, "restore: epoch %llu from the shared level %s/%s", ULL(e), dir,
                     name);
        }
    }
    if (rc != DSM_OK) {
        rc = rc == DSM_ERR_NOTFOUND ? rc2 : rc;
        dsmi_why(why, "own node-local: %.150s; partner's node-local: %.150s; shared: %.150s", w1,
                 w2, w3);
        dsmi_log(DSMI_LOG_ERROR,
                 "restart: epoch %llu: this rank's image is on no surviving level (%s)", ULL(e),
                 why);
    }
    return rc;
}

/* Rank 0: which ranks lost their image of epoch e (mine: this rank's result). */
static void say_lost(uint64_t e, int mine)
{
    int n = dsmi_rt.nranks, *all = dsmi_rt.rank == 0 ? malloc(sizeof(int) * (size_t)n) : NULL;
    MPI_Gather(&mine, 1, MPI_INT, all, 1, MPI_INT, 0, dsmi_ck.comm);
    if (all == NULL) {
        return;
    }
    char list[256] = "";
    size_t k = 0;
    for (int r = 0; r < n && k < sizeof list - 16; r++) {
        if (all[r] != DSM_OK) {
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%d", k ? "," : "", r);
        }
    }
    if (k > 0) {
        dsmi_log(DSMI_LOG_ERROR,
                 "restart: epoch %llu is lost: no surviving level (node-local, partner's "
                 "node-local, shared) holds an intact image of rank(s) %s",
                 ULL(e), list);
    }
    free(all);
}

/* Whether epoch e of segs segments is restored by ckpt_regroup.c: its segment count or
 * this job's differs from the rank count (decided alike on every rank). */
static bool regrouping(int segs)
{
    return segs != dsmi_rt.nranks || dsmi_w.nseg != dsmi_rt.nranks;
}

/* After every rank read epoch e: put back what a restore rebuilds, on every slot. */
static int reload_all(uint64_t e, void *reg, struct dsmi_ckpt_hdr *h, bool have)
{
    // A damaged heap is a reason to fall back, not to die under DSM_ERRORS=abort.
    int outer = dsmi_probe_begin(DSM_ERR_CORRUPT);
    int mine = have ? dsmi_ckpt_after_restore(reg, h, false) : DSM_OK;
    if (!have) {
        free(reg);
    }
    if (mine == DSM_OK) {
        mine = dsmi_ckpt_regroup_reload();
    }
    dsmi_probe_end(outer);
    int rc = dsmi_ckpt_agree(mine);
    if (mine == DSM_ERR_CORRUPT) {
        dsmi_log(DSMI_LOG_ERROR, "restart: epoch %llu: the heap rejected the restored segment: %s",
                 (unsigned long long)e, dsm_last_error());
    }
    return rc;
}

/* Try one epoch on every rank; DSM_OK only when all ranks restored and reloaded it. */
static int try_epoch(uint64_t e, unsigned lev, int segs)
{
    char why[DSMI_WHY] = "";
    void *reg = NULL;
    struct dsmi_ckpt_hdr h;
    int got = DSM_OK;
    bool have = true;
    if (regrouping(segs)) {
        got = dsmi_ckpt_regroup_read(e, segs, &reg, &h, &have, why);
    } else if (dsmi_ck.local) {
        got = restore_levels(e, lev, &reg, &h, why);
        say_lost(e, got);
    } else {
        got = dsmi_ckpt_restore_files(e, &reg, &h, why);
    }
    int rc = dsmi_ckpt_agree(got);
    if (rc == DSM_OK) {
        rc = reload_all(e, reg, &h, have);
    } else {
        free(reg);
    }
    if (rc != DSM_OK && dsmi_rt.rank == 0) {
        dsmi_log(DSMI_LOG_ERROR,
                 "restart: epoch %llu rejected (%s on some rank); falling "
                 "back to an older epoch",
                 (unsigned long long)e, dsm_strerror(rc));
        if (rc == DSM_ERR_CORRUPT || rc == DSM_ERR_NOTFOUND) {
            condemn(e, dsm_strerror(rc));
        }
    }
    return rc;
}

/* Restore the newest epoch of cand[0..n) (levels lev) every rank accepts; else the
 * fresh segment. */
static int restart(const uint64_t *cand, const unsigned *lev, const int *segs, int n)
{
    size_t fresh_len = (size_t)dsmi_heap_extent();
    void *fresh = malloc(fresh_len);
    int rc = dsmi_ckpt_agree(fresh ? DSM_OK : DSM_ERR_NOMEM);
    if (rc != DSM_OK) {
        free(fresh);
        return dsmi_fail(rc, "dsm_init", "no memory to keep the fresh segment during restart");
    }
    memcpy(fresh, dsmi_w.base, fresh_len);
    double t0 = MPI_Wtime();
    for (int i = 0; i < n; i++) {
        if (try_epoch(cand[i], lev[i], segs[i]) == DSM_OK) {
            if (i > 0) { // a rejected newer image may have left bytes past this extent
                size_t len = (size_t)dsmi_heap_extent();
                memset(dsmi_w.base + len, 0, dsmi_w.size - len);
                dsmi_ckpt_regroup_fresh(true);
            }
            if (regrouping(segs[i]) && dsmi_rt.rank == 0) {
                dsmi_log(DSMI_LOG_WARN,
                         "restart: epoch %llu of %d segments restored on %d ranks (%d segments, "
                         "at most %d per rank)",
                         ULL(cand[i]), segs[i], dsmi_rt.nranks, dsmi_w.nseg,
                         (dsmi_w.nseg + dsmi_rt.nranks - 1) / dsmi_rt.nranks);
            }
            if (dsmi_rt.rank == 0) { // try_epoch agrees on every rank: the job's time
                dsmi_log(DSMI_LOG_INFO,
                         "restart: epoch %llu (%d segments) restored on %d ranks in %.3f s",
                         ULL(cand[i]), segs[i], dsmi_rt.nranks, MPI_Wtime() - t0);
            }
            cs.restarted = true;
            cs.restart_epoch = dsmi_ck.last_epoch = cand[i];
            dsmi_replica_reload(cand[i]); // hold the ward's copy again, for dsm_recover
            free(fresh);
            return DSM_OK;
        }
    }
    memcpy(dsmi_w.base, fresh, fresh_len);
    free(fresh);
    dsmi_ckpt_regroup_fresh(false);
    free(cs.pend_blob); // regions of a rejected image must not reach the program
    cs.pend_blob = NULL;
    cs.npend = 0;
    cs.pend_len = 0;
    rc = dsmi_ckpt_agree(dsmi_heap_reload());
    if (rc == DSM_OK && dsmi_rt.cfg.RESTART == DSMI_RESTART_REQUIRED) {
        return dsmi_fail(DSM_ERR_CORRUPT, "dsm_init",
                         "DSM_RESTART=required, but none of the "
                         "%d committed checkpoint(s) of job '%s' could be restored",
                         n, dsmi_ck.job);
    }
    if (rc == DSM_OK && dsmi_rt.rank == 0) {
        dsmi_log(DSMI_LOG_ERROR, "restart: no usable checkpoint of job '%s': starting fresh",
                 dsmi_ck.job);
    }
    return rc;
}

/* Rank 0: the program's name, the job's name and directory. */
static int name_job(char *why)
{
    const char *prog = program_invocation_short_name;
    snprintf(dsmi_ck.program, sizeof dsmi_ck.program, "%s", prog && prog[0] ? prog : "mpidsm");
    dsmi_ck.root_len = strlen(dsmi_rt.cfg.CKPT_DIR);
    return dsmi_ckpt_job_dir(dsmi_rt.cfg.CKPT_DIR, dsmi_rt.cfg.CKPT_JOB, dsmi_ck.program,
                             dsmi_ck.job, dsmi_ck.jobdir, why);
}

/* Whether the record r of epoch e was written by this program in this format and
 * layout with segments of seg_size bytes (the shape apart from the segment count). */
static bool record_fits(const struct record *r, uint64_t e, size_t seg_size, const char *prog)
{
    return (r->seen & 0x3f) == 0x3f && r->epoch == e && r->format == DSMI_CKPT_FORMAT &&
           r->layout == DSMI_LAYOUT_VERSION && strcmp(r->program, prog) == 0 &&
           r->segment == seg_size;
}

/* Rank 0, before the window exists: the segment count of the newest committed epoch a
 * restart would try first, 0 when there is none (or the listing fails: start() then
 * reports it). An epoch on node-local storage only cannot regroup (shape_fits). With
 * an automatic heap size (DSM_HEAP_SIZE unset) *seg_size becomes the epoch's: the
 * default depends on the ranks per node, which a restart on another count changes. */
static int newest_segments(size_t *seg_size)
{
    char why[DSMI_WHY], text[1024], prog[DSMI_CKPT_JOB_MAX];
    uint64_t *all = NULL, max = 0;
    int n = 0, segs = 0;
    if (name_job(why) != DSM_OK || list_epochs(&all, &n, &max, false, why) != DSM_OK) {
        return 0;
    }
    dsmi_ckpt_encode(dsmi_ck.program, prog, sizeof prog);
    for (int i = 0; i < n && segs == 0; i++) {
        struct record r = {0};
        int st = read_record(all[i], text, sizeof text, why);
        if (st == C_IOERR) {
            break;
        }
        if (st != C_OURS) {
            continue;
        }
        parse_record(text, &r);
        bool regroup = r.ranks != dsmi_rt.nranks, any = dsmi_rt.cfg.HEAP_SIZE == 0;
        size_t size = any && (r.seen & 0x8) ? (size_t)r.segment : *seg_size;
        if (record_fits(&r, all[i], size, prog) && (!regroup || (r.levels & DSMI_LEVEL_SHARED))) {
            segs = r.ranks;
            *seg_size = size;
        }
    }
    free(all);
    return segs;
}

/* The window this rank would need for nseg segments of size bytes must fit its share
 * of its node's memory (runtime.c checks one segment the same way). */
static int check_memory(int nseg, size_t size)
{
    const dsm_topo_t *t = dsmi_topo();
    int slots = (nseg - dsmi_rt.rank + dsmi_rt.nranks - 1) / dsmi_rt.nranks;
    uint64_t need = (uint64_t)slots * size, share = t->node_memory / (uint64_t)t->local_ranks;
    if (t->node_memory && need > share) {
        return dsmi_fail(DSM_ERR_NOMEM, "dsm_init",
                         "restart: hosting %d segments of %zu bytes (of %d, on %d ranks) needs "
                         "%llu bytes, more than this rank's share of its node's memory (%llu)",
                         slots, size, nseg, dsmi_rt.nranks, ULL(need), ULL(share));
    }
    return DSM_OK;
}

int dsmi_ckpt_probe(size_t *seg_size, int *nseg)
{
    int segs = 0;
    unsigned long long size = *seg_size;
    *nseg = dsmi_rt.nranks;
    const char *dir = dsmi_rt.cfg.CKPT_DIR;
    if (dsmi_rt.rank == 0 && dsmi_rt.cfg.RESTART != DSMI_RESTART_NEVER && dir && dir[0]) {
        size_t sz = *seg_size;
        segs = newest_segments(&sz);
        size = sz;
    }
    DSMI_MPI("dsm_init", MPI_Bcast(&segs, 1, MPI_INT, 0, dsmi_rt.comm));
    DSMI_MPI("dsm_init", MPI_Bcast(&size, 1, MPI_UNSIGNED_LONG_LONG, 0, dsmi_rt.comm));
    *seg_size = (size_t)size;
    long most = (long)dsmi_rt.nranks * DSMI_MAX_SLOTS;
    if (segs > most || segs > DSM_GPTR_MAX_RANKS) {
        if (dsmi_rt.rank == 0) {
            dsmi_log(DSMI_LOG_ERROR,
                     "restart: the newest checkpoint holds %d segments; %d ranks host at most "
                     "%ld (%d per rank): it cannot be restored on this job",
                     segs, dsmi_rt.nranks, most, DSMI_MAX_SLOTS);
        }
    } else if (segs > dsmi_rt.nranks) {
        *nseg = segs;
    }
    return check_memory(*nseg, *seg_size);
}

/* DSM_CKPT_LOCAL_DIR as this rank's node sees it ("auto": see env_defs.h), or NULL. */
static const char *local_root(void)
{
    const char *v = dsmi_rt.cfg.CKPT_LOCAL_DIR;
    if (v == NULL || v[0] == '\0' || strcmp(v, "auto") != 0) {
        return v != NULL && v[0] != '\0' ? v : NULL;
    }
    if (dsmi_topo()->nnodes == 1) { // on one node a local level adds no protection
        return NULL;
    }
    return dsmi_env_node_local_dir();
}

/* Whether a and b are one directory (both exist and have the same inode). */
static bool same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    return strcmp(a, b) == 0 || (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
                                 sa.st_ino == sb.st_ino);
}

/* Rank 0: which shared job directory this job's checkpoints belong to, as a tag for its
 * node-local directories (checkpoint level and replicated objects' stores). Two jobs of one name
 * with different DSM_CKPT_DIRs may share a node (a parameter sweep); without it they would share
 * node-local files and one could restore the other's images. The tag hashes the absolute path,
 * resolved as far as it exists so that the first run (before DSM_CKPT_DIR exists) and relaunches
 * agree. */
static uint64_t lineage_tag(void)
{
    char p[PATH_MAX], abs[PATH_MAX], tail[PATH_MAX] = "";
    snprintf(p, sizeof p, "%s", dsmi_ck.jobdir);
    while (realpath(p, abs) == NULL) {
        char *slash = strrchr(p, '/');
        if (slash == NULL || slash == p) { // nothing exists: the path as given
            snprintf(abs, sizeof abs, "%s", dsmi_ck.jobdir);
            tail[0] = '\0';
            break;
        }
        char t[PATH_MAX];
        snprintf(t, sizeof t, "%s%s", slash, tail);
        snprintf(tail, sizeof tail, "%s", t);
        *slash = '\0';
    }
    char cwd[PATH_MAX], full[3 * PATH_MAX];
    bool rel = abs[0] != '/' && getcwd(cwd, sizeof cwd) != NULL; // relative, none resolved
    snprintf(full, sizeof full, "%s%s%s%s", rel ? cwd : "", rel ? "/" : "", abs, tail);
    return fnv1a(full);
}

int dsmi_ckpt_node_dir(const char *root, char *out, size_t cap, char *why)
{
    char name[DSMI_CKPT_JOB_MAX], tagged[DSMI_CKPT_DIR_MAX];
    if (dsmi_ckpt_job_dir(root, dsmi_ck.job, NULL, name, tagged, why) != DSM_OK) {
        return DSM_ERR_ENV;
    }
    const char *base = strrchr(tagged, '/') + 1;
    int n = snprintf(out, cap, "%s.%012llx", tagged, (unsigned long long)(dsmi_ck.lineage >> 16));
    if (n < 0 || (size_t)n >= cap || strlen(base) + 13 > NAME_MAX) {
        snprintf(why, DSMI_WHY,
                 "the node-local job directory (%.200s...).<tag> is too long; set a shorter "
                 "DSM_CKPT_JOB or node-local root",
                 tagged);
        return DSM_ERR_ENV;
    }
    return DSM_OK;
}

/* Every rank: its node-local job directory, when DSM_CKPT_LOCAL_DIR is set (on every
 * rank or none: checked here, since "auto" resolves per node). */
static int setup_local(void)
{
    const char *root = local_root();
    int on = root != NULL, lo = on, hi = on;
    DSMI_MPI("dsm_init", MPI_Allreduce(&on, &lo, 1, MPI_INT, MPI_MIN, dsmi_ck.comm));
    DSMI_MPI("dsm_init", MPI_Allreduce(&on, &hi, 1, MPI_INT, MPI_MAX, dsmi_ck.comm));
    if (lo != hi) {
        return dsmi_fail(DSM_ERR_ENV, "dsm_init",
                         "DSM_CKPT_LOCAL_DIR is set on some ranks and empty on others (here: "
                         "'%s')",
                         root ? root : "");
    }
    if (!on) {
        return DSM_OK;
    }
    char why[DSMI_WHY];
    if (root[0] != '/' || same_dir(root, dsmi_rt.cfg.CKPT_DIR)) {
        return dsmi_fail(DSM_ERR_ENV, "dsm_init",
                         "DSM_CKPT_LOCAL_DIR '%s' must be an absolute path and not DSM_CKPT_DIR "
                         "('%s'): the levels would overwrite each other's files",
                         root, dsmi_rt.cfg.CKPT_DIR);
    }
    if (dsmi_ckpt_node_dir(root, dsmi_ck.localdir, sizeof dsmi_ck.localdir, why) != DSM_OK) {
        return dsmi_fail(DSM_ERR_ENV, "dsm_init", "DSM_CKPT_LOCAL_DIR: %s", why);
    }
    dsmi_ck.local_root_len = strlen(root);
    dsmi_ck.local = true;
    return DSM_OK;
}

/* Job name, directory and epoch list (rank 0's, broadcast). */
static int setup_names(struct found *f)
{
    char why[DSMI_WHY] = "";
    int rc = dsmi_rt.rank == 0 ? name_job(why) : DSM_OK;
    unsigned long long root_len = dsmi_ck.root_len;
    DSMI_MPI("dsm_init", MPI_Bcast(&rc, 1, MPI_INT, 0, dsmi_ck.comm));
    if (rc != DSM_OK) {
        DSMI_MPI("dsm_init", MPI_Bcast(why, sizeof why, MPI_CHAR, 0, dsmi_ck.comm));
        return dsmi_fail(rc, "dsm_init", "%s", why);
    }
    DSMI_MPI("dsm_init", MPI_Bcast(&root_len, 1, MPI_UNSIGNED_LONG_LONG, 0, dsmi_ck.comm));
    DSMI_MPI("dsm_init", MPI_Bcast(dsmi_ck.job, sizeof dsmi_ck.job, MPI_CHAR, 0, dsmi_ck.comm));
    DSMI_MPI("dsm_init",
             MPI_Bcast(dsmi_ck.program, sizeof dsmi_ck.program, MPI_CHAR, 0, dsmi_ck.comm));
    DSMI_MPI("dsm_init",
             MPI_Bcast(dsmi_ck.jobdir, sizeof dsmi_ck.jobdir, MPI_CHAR, 0, dsmi_ck.comm));
    dsmi_ck.root_len = (size_t)root_len;
    dsmi_ck.job_fp = fnv1a(dsmi_ck.job);
    dsmi_ck.program_fp = fnv1a(dsmi_ck.program);
    uint64_t tag = dsmi_rt.rank == 0 ? lineage_tag() : 0;
    DSMI_MPI("dsm_init", MPI_Bcast(&tag, 1, MPI_UINT64_T, 0, dsmi_ck.comm));
    dsmi_ck.lineage = tag;
    rc = dsmi_ckpt_agree(setup_local());
    if (rc != DSM_OK) {
        return rc;
    }
    if (dsmi_rt.rank == 0) {
        scan(dsmi_rt.cfg.RESTART != DSMI_RESTART_NEVER, f);
    }
    DSMI_MPI("dsm_init", MPI_Bcast(f, sizeof *f, MPI_BYTE, 0, dsmi_ck.comm));
    dsmi_ck.next_epoch = f->next;
    return DSM_OK;
}

static int check_settings(void)
{
    const struct dsmi_settings *c = &dsmi_rt.cfg;
    if (c->CKPT_KEEP < 1 || c->CKPT_INTERVAL < 0) {
        return dsmi_fail(DSM_ERR_ENV, "dsm_init",
                         "DSM_CKPT_KEEP=%ld must be >= 1 and "
                         "DSM_CKPT_INTERVAL=%ld >= 0",
                         c->CKPT_KEEP, c->CKPT_INTERVAL);
    }
    if (c->CKPT_DIR == NULL || c->CKPT_DIR[0] == '\0') {
        return dsmi_fail(DSM_ERR_ENV, "dsm_init", "DSM_CKPT_DIR is empty");
    }
    return DSM_OK;
}

static int start(void);

int dsmi_ckpt_start(void)
{
    int rc = start();
    if (rc != DSM_OK) { // not started means not stopped by the runtime: undo here
        dsmi_ckpt_stop();
    }
    return rc;
}

/* What a restart makes of rank 0's findings when no epoch fits (f->n == 0) or the job
 * directory cannot be used (f->rc). */
static int no_candidate(const struct found *f)
{
    static const char *const fn = "dsm_init";
    if (f->rc == DSM_ERR_MISMATCH) {
        return dsmi_fail(f->rc, fn,
                         "restart: job '%s' (%s) holds checkpoints of another program: %s; "
                         "refusing to restore or overwrite them (choose another DSM_CKPT_JOB)",
                         dsmi_ck.job, dsmi_ck.jobdir, f->why);
    }
    if (f->rc != DSM_OK) {
        return dsmi_fail(f->rc, fn, "restart: cannot read the checkpoints of job '%s': %s",
                         dsmi_ck.job, f->why);
    }
    if (dsmi_rt.cfg.RESTART != DSMI_RESTART_REQUIRED) {
        return DSM_OK;
    }
    if (f->nother > 0) {
        return dsmi_fail(DSM_ERR_MISMATCH, fn,
                         "DSM_RESTART=required, but none of the %d committed checkpoint(s) "
                         "of job '%s' in %s fits this job: %s",
                         f->nother, dsmi_ck.job, dsmi_ck.jobdir, f->why);
    }
    return dsmi_fail(DSM_ERR_NOTFOUND, fn,
                     "DSM_RESTART=required, but job '%s' has no committed checkpoint in %s",
                     dsmi_ck.job, dsmi_ck.jobdir);
}

static int start(void)
{
    static struct found f; // rank 0's findings (a few KiB: not on the stack)
    memset(&cs, 0, sizeof cs);
    memset(&f, 0, sizeof f);
    dsmi_ck = (struct dsmi_ckpt_state){.comm = MPI_COMM_NULL};
    memcpy(&cs.ident, dsmi_w.base + DSMI_HDR_IDENT_OFF, sizeof cs.ident);
    cs.last_time = MPI_Wtime();
    DSMI_MPI("dsm_init", MPI_Comm_dup(dsmi_rt.comm, &dsmi_ck.comm));
    MPI_Comm_set_errhandler(dsmi_ck.comm, MPI_ERRORS_RETURN);
    int rc = dsmi_ckpt_agree(check_settings());
    if (rc == DSM_OK) {
        rc = dsmi_ckpt_agree(setup_names(&f));
    }
    if (rc == DSM_OK) {
        rc = dsmi_ckpt_agree(dsmi_replica_start());
    }
    if (rc != DSM_OK || dsmi_rt.cfg.RESTART == DSMI_RESTART_NEVER) {
        return rc;
    }
    if (f.rc != DSM_OK || f.n == 0) {
        return no_candidate(&f);
    }
    rc = restart(f.cand, f.lev, f.segs, f.n);
    // Publish the restored bytes (local stores) before any rank's RMA reads them.
    DSMI_MPI("dsm_init", MPI_Win_sync(dsmi_w.win));
    DSMI_MPI("dsm_init", MPI_Barrier(dsmi_ck.comm));
    return rc;
}

int dsmi_ckpt_stop(void)
{
    if (dsmi_ck.comm != MPI_COMM_NULL) {
        dsmi_ckpt_async_wait(); // collective: dsm_finalize runs on every rank
    }
    dsmi_replica_stop();
    free(cs.pend_blob);
    memset(&cs, 0, sizeof cs);
    if (dsmi_ck.comm != MPI_COMM_NULL) {
        MPI_Comm_free(&dsmi_ck.comm);
    }
    return DSM_OK;
}

/* ---- checkpoint ---- */

struct dsmi_ckpt_hdr dsmi_ckpt_header(uint64_t e)
{
    struct dsmi_ckpt_hdr h = {.magic = DSMI_CKPT_MAGIC,
                              .format = DSMI_CKPT_FORMAT,
                              .hdr_size = sizeof h,
                              .job = dsmi_ck.job_fp,
                              .epoch = e,
                              .nranks = dsmi_w.nseg, // images are per segment (win.h)
                              .rank = dsmi_rt.rank,
                              .layout = DSMI_LAYOUT_VERSION,
                              .seg_size = dsmi_w.size,
                              .seg_len = dsmi_heap_extent(),
                              .program = dsmi_ck.program_fp};
    return h;
}

/* Write this rank's image and its ward's replica into dir. */
static int write_images(uint64_t e, const char *dir, char *why)
{
    void *reg = NULL;
    struct dsmi_ckpt_hdr h = dsmi_ckpt_header(e);
    int rc = dsmi_ckpt_regions(&reg, &h.reg_len, &h.nregions);
    if (rc != DSM_OK) {
        dsmi_why(why, "no memory to copy the protected regions");
    }
    if (rc == DSM_OK) {
        rc = dsmi_ckpt_write_levels(e, dir, &h, dsmi_w.base, reg, true, why);
    }
    if (rc == DSM_OK) {
        rc = dsmi_ckpt_write_hosted(e, dir, why);
    }
    // Always exchange, even after a local failure: the exchange is collective.
    char why2[DSMI_WHY] = "", rdir[PATH_MAX];
    dsmi_ckpt_replica_dir(e, dir, rdir, sizeof rdir);
    int rc2 = dsmi_replica_exchange(rdir, &h, dsmi_w.base, reg, true, why2);
    if (rc == DSM_OK && rc2 != DSM_OK) {
        rc = rc2;
        memcpy(why, why2, DSMI_WHY);
    }
    free(reg);
    return rc;
}

/* Open (with create, make) directory dir: DSM_OK or DSM_ERR_IO (why says). */
static int make_one(const char *dir, char *why)
{
    int fd = dsmi_ckpt_open_dir(dir, true, why); // 0700 below the root; links refused
    if (fd >= 0) {
        close(fd);
    }
    return fd < 0 ? DSM_ERR_IO : DSM_OK;
}

/* Rank 0: the epoch's directory (0700) must exist before any rank writes into it; with
 * levels every rank makes its node-local one too (ranks of a node may race: harmless). */
int dsmi_ckpt_make_dir(const char *dir, char *why)
{
    int rc = dsmi_rt.rank == 0 ? make_one(dir, why) : DSM_OK;
    DSMI_MPI(FN, MPI_Bcast(&rc, 1, MPI_INT, 0, dsmi_ck.comm));
    if (rc != DSM_OK && dsmi_rt.rank != 0) {
        dsmi_why(why, "rank 0 could not create the directory");
    }
    if (rc != DSM_OK || !dsmi_ck.local) {
        return rc;
    }
    char ldir[PATH_MAX], lwhy[DSMI_WHY];
    dsmi_ckpt_local_epoch_dir(strtoull(strrchr(dir, '/') + 1, NULL, 10), ldir, sizeof ldir);
    rc = make_one(ldir, lwhy);
    if (rc != DSM_OK) {
        dsmi_why(why, "node-local level (DSM_CKPT_LOCAL_DIR): %s", lwhy);
    }
    return dsmi_ckpt_agree(rc);
}

static int commit(uint64_t e, const char *dir, char *why)
{
    int rc = DSM_OK;
    if (dsmi_rt.rank == 0) {
        char text[1024], job[DSMI_CKPT_JOB_MAX], prog[DSMI_CKPT_JOB_MAX];
        dsmi_ckpt_encode(dsmi_ck.job, job, sizeof job); // names encoded: one line each
        dsmi_ckpt_encode(dsmi_ck.program, prog, sizeof prog);
        int k = snprintf(text, sizeof text,
                         "epoch %llu\nranks %d\njob %s\nlayout %u\nsegment %zu\n"
                         "replicas %d\nformat %u\nprogram %s\n",
                         (unsigned long long)e, dsmi_w.nseg, job, DSMI_LAYOUT_VERSION, dsmi_w.size,
                         dsmi_rt.cfg.CKPT_REPLICAS, DSMI_CKPT_FORMAT, prog);
        unsigned lev = dsmi_ckpt_levels(e);
        if (dsmi_ck.local && k > 0 && (size_t)k < sizeof text) { // without it: shared only
            snprintf(text + k, sizeof text - (size_t)k, "levels local%s%s\n",
                     lev & DSMI_LEVEL_PARTNER ? ",partner" : "",
                     lev & DSMI_LEVEL_SHARED ? ",shared" : "");
        }
        rc = dsmi_ckpt_write_text(dir, "COMMIT", text, why);
    }
    DSMI_MPI(FN, MPI_Bcast(&rc, 1, MPI_INT, 0, dsmi_ck.comm));
    return rc;
}

/* A failed epoch: remove what was written so it cannot be mistaken for a good one. */
static void abandon(const char *dir)
{
    MPI_Barrier(dsmi_ck.comm); // no rank is still writing into dir
    if (dsmi_rt.rank == 0) {
        dsmi_ckpt_rmtree(dir);
    }
    if (dsmi_ck.local && dsmi_topo()->local_rank == 0) { // one rank per node
        char ldir[PATH_MAX];
        uint64_t e = strtoull(strrchr(dir, '/') + 1, NULL, 10);
        dsmi_ckpt_local_epoch_dir(e, ldir, sizeof ldir);
        dsmi_ckpt_rmtree(ldir);
    }
    dsmi_replica_commit(false);
}

bool dsmi_ckpt_crash_due(int where, uint64_t e)
{
    int victim = where == DSMI_CKPT_CRASH_WRITE ? dsmi_rt.nranks - 1 : 0;
    if (dsmi_rt.cfg.CKPT_CRASH != where || dsmi_rt.rank != victim ||
        e != (uint64_t)dsmi_rt.cfg.CKPT_CRASH_EPOCH || cs.restarted) {
        return false;
    }
    dsmi_log(DSMI_LOG_ERROR, "DSM_CKPT_CRASH=%s (test hook): raising SIGKILL in epoch %llu",
             where == DSMI_CKPT_CRASH_WRITE ? "write" : "commit", (unsigned long long)e);
    return true;
}

int dsmi_ckpt_finish(uint64_t e, const char *dir, int mine, const char *why)
{
    int rc = dsmi_ckpt_agree(mine);
    char cwhy[DSMI_WHY] = "";
    if (rc == DSM_OK && dsmi_ckpt_crash_due(DSMI_CKPT_CRASH_COMMIT, e)) {
        raise(SIGKILL); // every image is on disk, COMMIT is not
    }
    if (rc == DSM_OK) {
        rc = commit(e, dir, cwhy);
        mine = rc;
        why = cwhy;
    }
    if (rc != DSM_OK) {
        abandon(dir);
        return dsmi_fail(rc, FN, "epoch %llu not committed, older epochs are intact: %s",
                         (unsigned long long)e, mine != DSM_OK ? why : "another rank failed");
    }
    dsmi_replica_commit(true);
    dsmi_ck.last_epoch = e;
    cs.cost_last = cs.cost_pend;
    cs.committed = true;
    unsigned long long floor = dsmi_rt.rank == 0 ? prune(e) : 0;
    if (dsmi_ck.local) { // every node's local level keeps what rank 0's count says
        DSMI_MPI(FN, MPI_Bcast(&floor, 1, MPI_UNSIGNED_LONG_LONG, 0, dsmi_ck.comm));
        if (dsmi_topo()->local_rank == 0) {
            prune_local(floor);
        }
    }
    return DSM_OK;
}

static int checkpoint_epoch(uint64_t e)
{
    char dir[PATH_MAX], why[DSMI_WHY] = "another rank failed";
    dsmi_ckpt_epoch_dir(e, dir, sizeof dir);
    int rc = dsmi_ckpt_make_dir(dir, why);
    if (rc != DSM_OK) {
        if (dsmi_ck.local) { // the shared and some node-local directories were made
            abandon(dir);
        }
        return dsmi_fail(rc, FN, "epoch %llu: %s", (unsigned long long)e, why);
    }
    if (dsmi_rt.cfg.CKPT_ASYNC) {
        return dsmi_ckpt_async_start(e, dir);
    }
    return dsmi_ckpt_finish(e, dir, write_images(e, dir, why), why);
}

int dsm_checkpoint(void)
{
    DSMI_CHECK_UP(FN);
    int rc = dsmi_ckpt_agree(dsmi_ck.wiped ? DSM_ERR_STATE : DSM_OK);
    if (rc != DSM_OK) {
        return dsmi_fail(rc, FN,
                         "a rank's segment is wiped (dsm_simulate_failure): call "
                         "dsm_recover first");
    }
    int prev = dsmi_ckpt_async_wait(); // an asynchronous epoch still open commits first
    // The image holds no cached block: the owner's small-block cache dies with its process.
    if ((rc = dsmi_ckpt_agree(dsmi_heap_cache_flush(FN))) != DSM_OK) {
        return rc;
    }
    if ((rc = dsmi_repl_image(FN)) != DSM_OK) { // replicated objects: into rank 0's heap
        return rc;
    }
    if ((rc = dsm_barrier()) != DSM_OK) { // all RMA complete, local stores published
        return rc;
    }
    uint64_t e = dsmi_ck.next_epoch++; // never reused, even when this one fails
    memset(&cs.cost_pend, 0, sizeof cs.cost_pend);
    rc = checkpoint_epoch(e);
    rc = prev != DSM_OK ? prev : rc;
    cs.last_time = MPI_Wtime();
    return rc;
}

int dsm_checkpoint_maybe(bool *taken)
{
    DSMI_CHECK_UP("dsm_checkpoint_maybe");
    int go = 0;
    long every = dsmi_rt.cfg.CKPT_INTERVAL;
    if (dsmi_rt.rank == 0) { // one clock decides for all ranks
        go = every > 0 && MPI_Wtime() - cs.last_time >= (double)every;
    }
    DSMI_MPI("dsm_checkpoint_maybe", MPI_Bcast(&go, 1, MPI_INT, 0, dsmi_ck.comm));
    int rc = go ? DSMI_CALL_AS("dsm_checkpoint_maybe", dsm_checkpoint()) : DSM_OK;
    if (taken != NULL) {
        *taken = go && rc == DSM_OK;
    }
    return rc;
}

bool dsm_restarted(uint64_t *epoch)
{
    if (!dsmi_rt.up || !cs.restarted) {
        return false;
    }
    if (epoch != NULL) {
        *epoch = cs.restart_epoch;
    }
    return true;
}

int dsm_ckpt_epoch(uint64_t *epoch)
{
    DSMI_CHECK_UP("dsm_ckpt_epoch");
    if (epoch == NULL) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_ckpt_epoch", "epoch is NULL");
    }
    if (dsmi_ck.last_epoch == 0) {
        return dsmi_fail(DSM_ERR_NOTFOUND, "dsm_ckpt_epoch",
                         "no checkpoint committed or "
                         "restored in this run");
    }
    *epoch = dsmi_ck.last_epoch;
    return DSM_OK;
}
