/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Fault tolerance internals, shared by ckpt.c (checkpoint, restart, protected regions),
 * ckpt_io.c (file format, CRC32C, durable writes), replica.c (partner copies, simulated
 * failure, recovery) and roots.c (named roots).
 *
 * A checkpoint image is one segment's state (a rank's own segment, or one it hosts after
 * a restart on another rank count; "rank" in its header and file name is the segment):
 * a fixed header, the first seg_len bytes of the segment, then its protected regions as records
 * {name[32], size} + bytes padded to 8. The same bytes are a rank's file, its partner's replica
 * file and the partner's in-memory replica, so all three are verified by one function.
 *
 * Levels (DSM_CKPT_LOCAL_DIR on): the image goes to the rank's node-local directory
 * (<local>/<job>.<tag>/<epoch>/rank-<r>.ckpt), its keeper writes the replica into the
 * keeper's node-local directory, and flush epochs (a multiple of DSM_CKPT_FLUSH_EVERY) also put
 * the image in the shared epoch directory. COMMIT stays in the shared directory and
 * names the levels ("levels local,partner,shared"); without that line an epoch is
 * shared-only, as every epoch written without DSM_CKPT_LOCAL_DIR.
 */
#ifndef DSMI_CKPT_H
#define DSMI_CKPT_H

#include <limits.h>

#include "runtime.h"

#define DSMI_CKPT_MAGIC UINT64_C(0x3154504b434d5344) // "DSMCKPT1" little-endian
#define DSMI_CKPT_FORMAT 2u // 2: the header names the program (images of 1 do not)
#define DSMI_CKPT_NAME 32   // bytes of a region or root name including the NUL

/* The header at offset 0 of every image; all fields native-endian, fixed width. */
struct dsmi_ckpt_hdr {
    uint64_t magic;    // DSMI_CKPT_MAGIC
    uint32_t format;   // DSMI_CKPT_FORMAT
    uint32_t hdr_size; // sizeof(struct dsmi_ckpt_hdr)
    uint64_t job;      // fingerprint of the job name
    uint64_t epoch;    // the checkpoint's number
    int32_t nranks;    // ranks of the job that wrote it
    int32_t rank;      // whose image this is (the owner, also in a replica)
    uint32_t layout;   // DSMI_LAYOUT_VERSION
    uint32_t nregions; // protected-region records after the segment bytes
    uint64_t seg_size; // every rank's segment size in that job
    uint64_t seg_len;  // segment bytes stored: [0, seg_len)
    uint64_t reg_len;  // bytes of the region records
    uint32_t data_crc; // CRC32C of the segment bytes followed by the region records
    uint32_t hdr_crc;  // CRC32C of this header with hdr_crc = 0
    uint64_t program;  // fingerprint of the name of the program that wrote it
    uint64_t reserved[5];
};
_Static_assert(sizeof(struct dsmi_ckpt_hdr) == 128, "checkpoint header is 128 bytes");

/* One protected-region record's head in an image. */
struct dsmi_ckpt_rec {
    char name[DSMI_CKPT_NAME];
    uint64_t size;
};

/* What a restore expects an image to say (the running job). */
struct dsmi_ckpt_expect {
    uint64_t job, epoch, seg_size, program;
    int32_t nranks, rank;
};

/* DSM_RESTART values, in the order of its choices in env_defs.h. */
enum { DSMI_RESTART_NEVER, DSMI_RESTART_AUTO, DSMI_RESTART_REQUIRED };
/* DSM_CKPT_CRASH (a test hook): whether this rank must die now at point where of epoch
 * e (logged when it must). The caller makes what it wrote durable, then raise(SIGKILL). */
enum { DSMI_CKPT_CRASH_NONE, DSMI_CKPT_CRASH_WRITE, DSMI_CKPT_CRASH_COMMIT };
DSMI_HIDDEN bool dsmi_ckpt_crash_due(int where, uint64_t e);

/* The levels an epoch has (bits, as its COMMIT record's "levels" line names them). */
enum { DSMI_LEVEL_LOCAL = 1, DSMI_LEVEL_PARTNER = 2, DSMI_LEVEL_SHARED = 4 };

/* Fixed-size reason buffer for rejected images and failed writes. */
#define DSMI_WHY 512
/* A job's directory name is its name encoded (see dsmi_ckpt_job_dir), at most NAME_MAX
 * bytes; buffers of job and program names hold that plus the NUL. */
#define DSMI_CKPT_JOB_MAX 256
/* Capacity of a job directory's path: room is left for "/<epoch>/<file>". */
#define DSMI_CKPT_DIR_MAX (PATH_MAX - 64)

/* ---- ckpt_io.c ---- */
/* Format a reason into why (DSMI_WHY bytes), truncating long paths. */
DSMI_HIDDEN void dsmi_why(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
DSMI_HIDDEN uint32_t dsmi_crc32c(uint32_t crc, const void *buf, size_t len);
DSMI_HIDDEN uint32_t dsmi_ckpt_hdr_crc(const struct dsmi_ckpt_hdr *h);
/* The checkpoint tree is DSM_CKPT_DIR (the root, the user's path: links in it are
 * followed), its job directory and the epoch directories in that. Below the root no
 * symbolic link is ever followed: every directory is opened with O_NOFOLLOW relative to
 * its parent's descriptor and every file relative to its directory's, so a link planted
 * in the tree makes the operation fail instead of reaching (deleting, chmod'ing) what it
 * points to. The functions below take paths "<root>/<job>[/<epoch>][/<file>]" as built
 * from dsmi_ck.jobdir. */

/* Job name and directory, one function for the library and the dsm-ckpt-dir command
 * (which dsmrun runs): the name is job when set and not empty, else the basename of
 * program; its directory is root/<name encoded>, where bytes outside [A-Za-z0-9._-]
 * (and a leading '.') become %XX, so distinct names never share a directory. name and
 * dir get DSMI_CKPT_JOB_MAX and DSMI_CKPT_DIR_MAX bytes. DSM_ERR_ENV (why says) when
 * the encoded name exceeds NAME_MAX bytes or the path DSMI_CKPT_DIR_MAX. */
DSMI_HIDDEN int dsmi_ckpt_job_dir(const char *root, const char *job, const char *program,
                                  char *name, char *dir, char *why);
/* This job's directory under a node-local root: <root>/<job encoded>.<12 hex digits of
 * dsmi_ck.lineage>, so that two jobs of one name whose DSM_CKPT_DIRs differ (a parameter
 * sweep) never share node-local files. DSM_ERR_ENV with why (DSMI_WHY bytes) when the
 * name is too long. */
DSMI_HIDDEN int dsmi_ckpt_node_dir(const char *root, char *out, size_t cap, char *why);
/* s encoded as above into out (len bytes); false when it does not fit. */
DSMI_HIDDEN bool dsmi_ckpt_encode(const char *s, char *out, size_t len);
/* Open a directory of the tree (O_RDONLY | O_DIRECTORY); with create, make the missing
 * ones (the root as mkdir -p, the rest 0700) and tighten those below the root to 0700.
 * -1 with why set and errno kept (ENOENT: it does not exist; ELOOP: a link). */
DSMI_HIDDEN int dsmi_ckpt_open_dir(const char *dir, bool create, char *why);
/* Open dir/name read-only without following a link; -1 with why set and errno kept. */
DSMI_HIDDEN int dsmi_ckpt_open_file(const char *dir, const char *name, char *why);
/* Write an image durably as dir/name: temp file (0600), fsync, rename, fsync dir.
 * With crc, compute data_crc/hdr_crc into *h while writing; else write *h as is. */
DSMI_HIDDEN int dsmi_ckpt_write(const char *dir, const char *name, struct dsmi_ckpt_hdr *h,
                                const void *seg, const void *reg, bool crc, char *why);
/* Read and verify the image dir/name: segment bytes into seg (capacity seg_cap), region
 * records into *reg (malloc'd, caller frees), header into *h. DSM_ERR_NOTFOUND,
 * DSM_ERR_IO, DSM_ERR_CORRUPT (why says which check failed). */
DSMI_HIDDEN int dsmi_ckpt_read(const char *dir, const char *name, const struct dsmi_ckpt_expect *e,
                               void *seg, size_t seg_cap, void **reg, struct dsmi_ckpt_hdr *h,
                               char *why);
/* Check a header against the running job. Every mismatch is DSM_ERR_CORRUPT: an image
 * is read only from an epoch whose COMMIT record says it was written by a job of this
 * shape, so an image that says otherwise (another rank's, epoch's or job's file) is a
 * wrong file in that epoch, not a checkpoint of another job. */
DSMI_HIDDEN int dsmi_ckpt_check_hdr(const struct dsmi_ckpt_hdr *h, const struct dsmi_ckpt_expect *e,
                                    size_t seg_cap, char *why);
/* Write a small text file durably (COMMIT). */
DSMI_HIDDEN int dsmi_ckpt_write_text(const char *dir, const char *name, const char *text,
                                     char *why);
/* Rename dir/from to dir/to and make it durable; DSM_OK or DSM_ERR_IO. */
DSMI_HIDDEN int dsmi_ckpt_rename(const char *dir, const char *from, const char *to, char *why);
/* Remove an epoch directory and the entries in it (one level; links are removed, never
 * followed). Nothing happens when dir is itself a link. */
DSMI_HIDDEN void dsmi_ckpt_rmtree(const char *dir);

/* ---- ckpt.c ---- */
struct dsmi_ckpt_state {
    char jobdir[DSMI_CKPT_DIR_MAX]; // DSM_CKPT_DIR/<job encoded>
    size_t root_len;                // jobdir[0, root_len) is DSM_CKPT_DIR, the root of the tree
    char job[DSMI_CKPT_JOB_MAX];
    char program[DSMI_CKPT_JOB_MAX]; // rank 0's program name (basename of argv[0])
    uint64_t job_fp, program_fp;
    uint64_t lineage;                 // hash of jobdir's absolute path (rank 0's, broadcast)
    uint64_t next_epoch;              // number of the next checkpoint (all ranks agree)
    uint64_t last_epoch;              // newest committed (or restored) epoch, 0 = none
    MPI_Comm comm;                    // private duplicate for checkpoint traffic
    bool wiped;                       // dsm_simulate_failure wiped this rank's segment
    bool local;                       // DSM_CKPT_LOCAL_DIR is set (the same on every rank)
    char localdir[DSMI_CKPT_DIR_MAX]; // dsmi_ckpt_node_dir of the DSM_CKPT_LOCAL_DIR root
    size_t local_root_len;            // localdir[0, local_root_len) is the local root
};
DSMI_HIDDEN extern struct dsmi_ckpt_state dsmi_ck;

DSMI_HIDDEN int dsmi_ckpt_start(void);
DSMI_HIDDEN int dsmi_ckpt_stop(void);
/* Every rank gets the largest code of all (0 = OK) over dsmi_ck.comm. */
DSMI_HIDDEN int dsmi_ckpt_agree(int rc);
/* The directory of epoch e. */
DSMI_HIDDEN void dsmi_ckpt_epoch_dir(uint64_t e, char *out, size_t len);
/* The node-local directory of epoch e (DSM_CKPT_LOCAL_DIR; only when dsmi_ck.local). */
DSMI_HIDDEN void dsmi_ckpt_local_epoch_dir(uint64_t e, char *out, size_t len);
/* The levels this run gives epoch e (DSMI_LEVEL_* bits). */
DSMI_HIDDEN unsigned dsmi_ckpt_levels(uint64_t e);
/* Write this rank's image h of epoch e to each of its own levels: node-local (with
 * local), and the shared epoch directory dir when the epoch has the shared level. With
 * crc the first write sums it (into *h); later writes reuse the sums. */
DSMI_HIDDEN int dsmi_ckpt_write_levels(uint64_t e, const char *dir, struct dsmi_ckpt_hdr *h,
                                       const void *seg, const void *reg, bool crc, char *why);
/* Where the replica files of epoch e go: node-local with levels, else the shared dir. */
DSMI_HIDDEN void dsmi_ckpt_replica_dir(uint64_t e, const char *dir, char *out, size_t len);
/* Expectation for rank r's image of epoch e in this job. */
DSMI_HIDDEN struct dsmi_ckpt_expect dsmi_ckpt_expect_for(uint64_t e, int r);
/* Restore this rank's segment from epoch e's files this rank can read: its node-local
 * file (levels), its shared file, then the shared replica file. Keeps the
 * current ident header. Region records become pending (see dsm_ckpt_protect). */
DSMI_HIDDEN int dsmi_ckpt_restore_files(uint64_t e, void **reg, struct dsmi_ckpt_hdr *h, char *why);
/* After the segment's bytes were replaced from an image: put back the ident, take the
 * region records (apply = copy into registered regions now), reload the heap. */
DSMI_HIDDEN int dsmi_ckpt_after_restore(void *reg, const struct dsmi_ckpt_hdr *h, bool apply);
/* A header for this rank's image of epoch e (no regions, no sums yet). */
DSMI_HIDDEN struct dsmi_ckpt_hdr dsmi_ckpt_header(uint64_t e);
/* Collective: rank 0 creates an epoch directory; everyone gets its result. */
DSMI_HIDDEN int dsmi_ckpt_make_dir(const char *dir, char *why);
/* Collective: agree on every rank's result mine (why: its reason), then commit epoch e
 * (rank 0 writes COMMIT), swap in the replica and prune; or abandon the epoch. */
DSMI_HIDDEN int dsmi_ckpt_finish(uint64_t e, const char *dir, int mine, const char *why);
/* Serialise the protected regions into a malloc'd record blob. */
DSMI_HIDDEN int dsmi_ckpt_regions(void **blob, uint64_t *len, uint32_t *n);

/* Per-level cost of the epoch being written (see dsm_ckpt_cost): written by the writer
 * (the calling thread, or DSM_CKPT_ASYNC's writer thread, joined before the commit). */
DSMI_HIDDEN void dsmi_ckpt_cost_add(int level, double seconds, uint64_t bytes);
/* Monotonic seconds (no MPI: callable from the writer thread). */
DSMI_HIDDEN double dsmi_ckpt_now(void);

/* Before the window exists (collective, runtime.c): how many segments this job must
 * hold, max(ranks, segments of the newest committed epoch a restart may restore), or
 * the rank count when that would exceed DSMI_MAX_SLOTS per rank or no restart is asked
 * for (then the epoch is skipped as one of another shape, which says why). With an
 * automatic DSM_HEAP_SIZE, *seg_size becomes that epoch's segment size. DSM_ERR_NOMEM
 * when the segments a rank would host exceed its share of its node's memory. */
DSMI_HIDDEN int dsmi_ckpt_probe(size_t *seg_size, int *nseg);

/* ---- ckpt_regroup.c (restart on another rank count) ---- */
/* Every segment this rank holds from epoch e of segs segments (shared level). Slot 0's
 * image header and region records come back in *h, *reg when *have (this rank's own
 * segment had an image; not when the epoch has fewer segments than this rank's number). */
DSMI_HIDDEN int dsmi_ckpt_regroup_read(uint64_t e, int segs, void **reg, struct dsmi_ckpt_hdr *h,
                                       bool *have, char *why);
/* After a successful regroup_read on every rank: rebuild the hosted slots' derived
 * state (heap lock and usage, lock words). DSM_ERR_CORRUPT for an invalid heap. */
DSMI_HIDDEN int dsmi_ckpt_regroup_reload(void);
/* Hosted slots back to a fresh heap (no epoch restored), or with tail only clear the
 * bytes past each restored heap's extent. */
DSMI_HIDDEN void dsmi_ckpt_regroup_fresh(bool tail);
/* Write the images of the hosted slots (1 and up) of epoch e into the shared dir. */
DSMI_HIDDEN int dsmi_ckpt_write_hosted(uint64_t e, const char *dir, char *why);

/* ---- ckpt_async.c (DSM_CKPT_ASYNC) ---- */
/* Collective: copy the images, exchange replicas, start the background writer. */
DSMI_HIDDEN int dsmi_ckpt_async_start(uint64_t e, const char *dir);
/* Collective: finish the epoch the writer works on (DSM_OK when there is none). */
DSMI_HIDDEN int dsmi_ckpt_async_wait(void);

/* ---- replica.c ---- */
/* Collective: choose partners (a rank on another node when there is one). */
DSMI_HIDDEN int dsmi_replica_start(void);
DSMI_HIDDEN void dsmi_replica_stop(void);
/* Collective, inside dsm_checkpoint: send this rank's image (header h, seg, reg) to its
 * keeper, receive its ward's and, with write, write it as a replica file in epoch_dir.
 * The received copy becomes the in-memory replica at dsmi_replica_commit. */
DSMI_HIDDEN int dsmi_replica_exchange(const char *epoch_dir, const struct dsmi_ckpt_hdr *h,
                                      const void *seg, const void *reg, bool write, char *why);
/* Write the received (not yet committed) replica to epoch_dir, computing its sums
 * (asynchronous mode, where the owner sent it before summing). No MPI: any thread. */
DSMI_HIDDEN int dsmi_replica_write_pending(const char *epoch_dir, char *why);
DSMI_HIDDEN void dsmi_replica_commit(bool ok);
/* Name (in epoch_dir) of the replica file of rank owner's image, if any. */
DSMI_HIDDEN bool dsmi_replica_find(const char *epoch_dir, int owner, char *out, size_t len);
/* Collective, restart with levels: each rank that needs its image of epoch e (need)
 * gets it from its keeper, which reads its node-local replica file and sends it; the
 * image lands in the segment, verified, regions in *reg. DSM_OK when not needed. */
DSMI_HIDDEN int dsmi_replica_fetch(uint64_t e, bool need, void **reg, struct dsmi_ckpt_hdr *h,
                                   char *why);
/* Load the ward's replica of epoch e from this rank's replica file into memory (after a
 * restart or this rank's recovery; best effort, verified by the ward when used). */
DSMI_HIDDEN void dsmi_replica_reload(uint64_t e);
/* The rank that keeps rank r's replica (r itself when replicas are off). */
DSMI_HIDDEN int dsmi_replica_keeper(int r);

/* The pointer bound to name in the named-root table: DSM_ERR_NOTFOUND (quietly, unlike
 * dsm_root_get) when there is none; other errors as dsm_root_get's. */
DSMI_HIDDEN int dsmi_root_find(const char *name, dsm_gptr_t *out, const char *fn);

#endif /* DSMI_CKPT_H */
