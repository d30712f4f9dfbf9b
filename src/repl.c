/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Replicated objects: fixed-size objects kept as R copies on R ranks of different nodes,
 * in stores that outlive the processes.
 *
 * Stores. Each rank maps one file, <DSM_REPL_DIR>/<job>.<tag>/repl/rank-<r>.store, of
 * DSM_REPL_SIZE bytes (MAP_SHARED) and exposes it as a second MPI window
 * (MPI_Win_create) with its own lock_all epoch, so the data window and checkpoints never
 * see it. Writes through MPI land in the file's pages: a process that dies leaves them
 * in its node's page cache, and the relaunched rank on the same node maps them again.
 * Losing the node's storage (simcluster kill --wipe) loses the copies on it.
 *
 * Layout of a store: a header, the object table (identical on every rank: alloc and
 * free are collective and write it everywhere; a rank whose store was lost adopts the
 * newest table at start), then the objects' areas. An object's area on each holder is
 *   [version word, 64 bytes][slot 0][slot 1]
 * where a slot is a header {version, ident, crc, size} and the data. Version v lives in
 * slot v & 1, so writing v + 1 never touches v: a write torn by a crash destroys at
 * most the older slot, and a reader may read slot v while v + 1 is being written.
 *
 * Ordering. The version word of the first holder's copy is the object's lock and
 * authority: (v << 1) | locked. A writer CASes (v << 1) to (v << 1) | 1, puts slot v + 1
 * into every copy, flushes them all (so the write is on every copy, a majority among
 * them, before it returns), then CASes the word to (v + 1) << 1. On the direct path (one
 * node) the copies are plain stores and that last seq_cst CAS is what orders them before
 * the new version and completes them: no fence of their own. A reader loads the word
 * and reads slot v of the nearest copy whose slot is intact (crc, ident, version v);
 * with v in its cache it reads nothing more. Both are linearizable at the word.
 *
 * Restart. With DSM_RESTART=auto|required each rank reads its copies, every object
 * takes the highest intact version among its copies when a majority of them are
 * intact, and the stale or lost copies (a wiped node's) are rewritten from it. With
 * fewer than a majority the object is lost: every call on it fails with
 * DSM_ERR_QUORUM naming it; never an older value.
 */
#include "repl.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "topo.h"
#include "win.h"

#define STORE_MAGIC UINT64_C(0x64736d7265706c31) // "dsmrepl1"
#define STORE_FORMAT 1
#define TABLE_OFF 4096
#define ENT_SIZE 256
#define AREAS_OFF (TABLE_OFF + DSM_REPL_MAX_OBJECTS * ENT_SIZE)
#define WORD_SIZE 64 // the version word's line
#define SLOT_HDR 32

struct store_hdr {
    uint64_t magic, format, size, gen;
    int32_t rank, nranks;
    uint32_t used, table_crc; // used: entries ever taken (high-water mark)
};

/* One object in the table; the same bytes in every rank's store. */
struct ent {
    char name[DSM_CKPT_NAME_MAX + 1];
    uint64_t size, ident; // ident: unique per allocation, stored in every slot
    uint32_t copies, live;
    int32_t holder[DSM_REPL_MAX_COPIES + 1];
    uint64_t off[DSM_REPL_MAX_COPIES + 1]; // area offset in each holder's store
};
_Static_assert(sizeof(struct ent) <= ENT_SIZE, "table entry too large");

struct slot_hdr {
    uint64_t version, ident;
    uint32_t crc, size;
    uint64_t pad;
};
_Static_assert(sizeof(struct slot_hdr) == SLOT_HDR, "slot header layout");

/* The process-local handle of table entry idx. */
struct dsm_repl {
    int idx;
    bool lost;                      // fewer than a majority of intact copies at the last start
    uint64_t cver;                  // version held in cache (0: none)
    unsigned char *cache;           // the object's bytes at cver
    unsigned char *slot;            // a slot's image (header + data): staging for gets and puts
    int order[DSM_REPL_MAX_COPIES]; // copy indices, nearest holder first
};

static struct {
    bool on;
    int fd;
    unsigned char *base;
    size_t size;
    MPI_Win win;                 // the MPI path: every store as one window
    unsigned char **peer;        // the direct path: every rank's store mapped here (one node)
    int *node;                   // node of each rank
    char dir[DSMI_CKPT_DIR_MAX]; // the stores' directory on this node
    struct dsm_repl obj[DSM_REPL_MAX_OBJECTS];
} rp = {.fd = -1, .win = MPI_WIN_NULL};

static struct store_hdr *hdr(void)
{
    return (struct store_hdr *)rp.base;
}

static struct ent *ent(int idx)
{
    return (struct ent *)(rp.base + TABLE_OFF + (size_t)idx * ENT_SIZE);
}

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static size_t slot_len(const struct ent *e)
{
    return SLOT_HDR + pad8(e->size);
}

static size_t area_len(const struct ent *e)
{
    return WORD_SIZE + 2 * slot_len(e);
}

/* Displacement of copy c's slot for version v in its holder's store. */
static MPI_Aint slot_disp(const struct ent *e, int c, uint64_t v)
{
    return (MPI_Aint)(e->off[c] + WORD_SIZE + (v & 1) * slot_len(e));
}

static uint32_t table_crc(void)
{
    return dsmi_crc32c(0, rp.base + TABLE_OFF, (size_t)hdr()->used * ENT_SIZE);
}

static uint32_t slot_crc(const unsigned char *slot, size_t len)
{
    struct slot_hdr h;
    memcpy(&h, slot, sizeof h);
    h.crc = 0;
    uint32_t c = dsmi_crc32c(0, &h, sizeof h);
    return dsmi_crc32c(c, slot + SLOT_HDR, len - SLOT_HDR);
}

/* Whether slot image s is an intact copy of e at version v (v == 0: any version). */
static bool slot_ok(const struct ent *e, const unsigned char *s, uint64_t v)
{
    struct slot_hdr h;
    memcpy(&h, s, sizeof h);
    return h.version != 0 && (v == 0 || h.version == v) && h.ident == e->ident &&
           h.size == e->size && h.crc == slot_crc(s, slot_len(e));
}

/* Build slot image of version v from data into s. The CRC is slot_crc()'s (header with
 * crc 0, then data and zero padding) in one pass over the image; only the padding is
 * cleared, since every other byte is written. This runs on every write, and the image
 * is read back at once (CRC, copies): each header word is one 8-byte store, because a
 * load spanning several recent narrower stores (or a struct copied through the stack)
 * waits until they reach the cache. */
static void slot_make(const struct ent *e, unsigned char *s, uint64_t v, const void *data)
{
    const size_t len = slot_len(e);
    struct {
        uint32_t crc, size;
    } tail = {0, (uint32_t)e->size};
    _Static_assert(sizeof tail == 8 &&
                       offsetof(struct slot_hdr, size) == offsetof(struct slot_hdr, crc) + 4,
                   "crc and size share a word");
    const uint64_t zero = 0;
    memcpy(s + offsetof(struct slot_hdr, version), &v, 8);
    memcpy(s + offsetof(struct slot_hdr, ident), &e->ident, 8);
    memcpy(s + offsetof(struct slot_hdr, crc), &tail, 8);
    memcpy(s + offsetof(struct slot_hdr, pad), &zero, 8);
    memcpy(s + SLOT_HDR, data, e->size);
    if (len - SLOT_HDR > e->size) {
        memset(s + SLOT_HDR + e->size, 0, len - SLOT_HDR - e->size);
    }
    tail.crc = dsmi_crc32c(0, s, len);
    memcpy(s + offsetof(struct slot_hdr, crc), &tail, 8);
}

/* ---- the store file ---- */

/* The node-local root: DSM_REPL_DIR, "auto" as DSM_CKPT_LOCAL_DIR's auto. */
static const char *store_root(void)
{
    const char *v = dsmi_rt.cfg.REPL_DIR;
    if (v != NULL && v[0] != '\0' && strcmp(v, "auto") != 0) {
        return v;
    }
    return dsmi_env_node_local_dir();
}

/* mkdir -p of the user's root (links followed there, as for DSM_CKPT_DIR). */
static void mkdirs(const char *root)
{
    char p[DSMI_CKPT_DIR_MAX];
    snprintf(p, sizeof p, "%s", root);
    for (char *c = p + 1; *c != '\0'; c++) {
        if (*c == '/') {
            *c = '\0';
            mkdir(p, 0755);
            *c = '/';
        }
    }
    mkdir(p, 0755);
}

/* Open (making them) root/<job>.<tag>/repl without following a link below root; -1 on
 * error. */
static int open_store_dir(const char *root, const char *jobdir)
{
    mkdirs(root);
    const char *sub[2] = {jobdir + strlen(root) + 1, "repl"};
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (int i = 0; fd >= 0 && i < 2; i++) {
        if (mkdirat(fd, sub[i], 0700) != 0 && errno != EEXIST) {
            close(fd);
            return -1;
        }
        int next = openat(fd, sub[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        fd = next;
    }
    return fd;
}

const char *dsmi_repl_dir(void)
{
    return rp.dir;
}

/* Open and map this rank's store; *found says whether an existing one was kept. */
static int store_open(bool keep, bool *found)
{
    char dir[DSMI_CKPT_DIR_MAX], why[DSMI_WHY] = "path too long";
    const char *root = store_root();
    if (dsmi_ckpt_node_dir(root, dir, sizeof dir, why) != DSM_OK ||
        strlen(dir) + 32 >= sizeof dir) {
        return dsmi_fail(DSM_ERR_ENV, "dsm_init", "replicated objects' store: %s", why);
    }
    int d = open_store_dir(root, dir);
    strcat(dir, "/repl");
    snprintf(rp.dir, sizeof rp.dir, "%s", dir);
    if (d < 0) {
        return dsmi_fail(DSM_ERR_IO, "dsm_init", "replicated objects' store %s: %s", dir,
                         strerror(errno));
    }
    char file[32];
    snprintf(file, sizeof file, "rank-%d.store", dsmi_rt.rank);
    rp.fd = openat(d, file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    close(d);
    struct stat st;
    if (rp.fd < 0 || fstat(rp.fd, &st) != 0) {
        return dsmi_fail(DSM_ERR_IO, "dsm_init", "cannot open %s/%s: %s", dir, file,
                         strerror(errno));
    }
    *found = keep && (size_t)st.st_size == rp.size;
    if ((!*found && ftruncate(rp.fd, 0) != 0) || ftruncate(rp.fd, (off_t)rp.size) != 0) {
        return dsmi_fail(DSM_ERR_IO, "dsm_init", "cannot size %s/%s to %zu bytes: %s", dir, file,
                         rp.size, strerror(errno));
    }
    rp.base = mmap(NULL, rp.size, PROT_READ | PROT_WRITE, MAP_SHARED, rp.fd, 0);
    if (rp.base == MAP_FAILED) {
        rp.base = NULL;
        return dsmi_fail(DSM_ERR_NOMEM, "dsm_init", "cannot map %s/%s: %s", dir, file,
                         strerror(errno));
    }
    return DSM_OK;
}

/* Whether the mapped store is one this job wrote (else it is started empty). */
static int old_size(const unsigned char *b, int r);

static bool store_valid(void)
{
    return old_size(rp.base, dsmi_rt.rank) == dsmi_rt.nranks;
}

static void store_reset(void)
{
    memset(rp.base, 0, AREAS_OFF);
    *hdr() = (struct store_hdr){STORE_MAGIC,  STORE_FORMAT,   rp.size, 0,
                                dsmi_rt.rank, dsmi_rt.nranks, 0,       0};
    hdr()->table_crc = table_crc();
}

/* Collective: every rank takes the table of the newest generation (a wiped rank's
 * store is empty: generation 0). */
static int table_agree(void)
{
    struct {
        long gen;
        int rank;
    } mine = {(long)hdr()->gen, dsmi_rt.rank}, best; // MAXLOC ties: the lowest rank
    DSMI_MPI("dsm_init", MPI_Allreduce(&mine, &best, 1, MPI_LONG_INT, MPI_MAXLOC, dsmi_rt.comm));
    int root = best.rank;
    uint32_t used = hdr()->used;
    DSMI_MPI("dsm_init", MPI_Bcast(&used, 1, MPI_UINT32_T, root, dsmi_rt.comm));
    DSMI_MPI("dsm_init",
             MPI_Bcast(rp.base + TABLE_OFF, (int)(used * ENT_SIZE), MPI_BYTE, root, dsmi_rt.comm));
    hdr()->gen = (uint64_t)best.gen;
    hdr()->used = used;
    hdr()->table_crc = table_crc();
    return DSM_OK;
}

/* ---- transport: loads, stores and CPU atomics on mapped stores, or MPI RMA ---- */
/* On one node (DSM_DIRECT=1) every rank maps every rank's store file, as the data
 * window's direct path maps segments: a put is a memcpy, a flush a fence, the version
 * word a CPU compare-and-swap. Otherwise the stores form one MPI window. Every function
 * returns DSM_OK or DSM_ERR_MPI (logged as func). */

static int t_cas(const char *func, int r, MPI_Aint d, uint64_t expect, uint64_t want, uint64_t *old)
{
    dsmi_count(&dsmi_stat.atomics, 1);
    if (rp.peer != NULL) {
        uint64_t *w = (uint64_t *)(rp.peer[r] + d);
        __atomic_compare_exchange_n(w, &expect, want, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *old = expect; // on failure it holds the value found
        return DSM_OK;
    }
    DSMI_MPI(func, MPI_Compare_and_swap(&want, &expect, old, MPI_UINT64_T, r, d, rp.win));
    DSMI_MPI(func, MPI_Win_flush(r, rp.win));
    return DSM_OK;
}

static int t_load(const char *func, int r, MPI_Aint d, uint64_t *val)
{
    dsmi_count(&dsmi_stat.atomics, 1);
    if (rp.peer != NULL) {
        *val = __atomic_load_n((uint64_t *)(rp.peer[r] + d), __ATOMIC_SEQ_CST);
        return DSM_OK;
    }
    uint64_t none = 0;
    DSMI_MPI(func, MPI_Fetch_and_op(&none, val, MPI_UINT64_T, r, d, MPI_NO_OP, rp.win));
    DSMI_MPI(func, MPI_Win_flush(r, rp.win));
    return DSM_OK;
}

/* Copy n bytes (a slot image: a multiple of 8) just built in src. Small images go word
 * by word: memcpy's 32-byte loads would each span several of slot_make's recent 8-byte
 * stores, and such a load waits until they reach the cache (a store-forwarding stall:
 * perf showed it as the hottest spot of a small direct write). */
static void copy_words(unsigned char *dst, const unsigned char *src, size_t n)
{
    if (n > 256 || n % 8 != 0) {
        memcpy(dst, src, n);
        return;
    }
    for (size_t k = 0; k < n; k += 8) {
        uint64_t w;
        memcpy(&w, src + k, 8);
        memcpy(dst + k, &w, 8);
    }
}

/* Start a put; complete with t_complete. */
static int t_put(const char *func, const void *buf, size_t n, int r, MPI_Aint d)
{
    dsmi_count(&dsmi_stat.puts, 1);
    dsmi_count(&dsmi_stat.bytes_put, n);
    if (rp.peer != NULL) {
        copy_words(rp.peer[r] + d, buf, n);
        return DSM_OK;
    }
    DSMI_MPI(func, MPI_Put(buf, (int)n, MPI_BYTE, r, d, (int)n, MPI_BYTE, rp.win));
    return DSM_OK;
}

/* Complete the puts to the holders of e's copies in mask. Every caller holds e's lock
 * and next gives it back with a sequentially consistent read-modify-write of the version
 * word (lock_give): on the direct path that RMW is what orders the copies' stores before
 * the new version and makes them visible (a release, and a full barrier on x86), so a
 * fence here would only repeat it; the compiler barrier keeps the stores in place. */
static int t_complete(const char *func, const struct ent *e, unsigned mask)
{
    dsmi_count(&dsmi_stat.flushes, 1);
    if (rp.peer != NULL) {
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        return DSM_OK;
    }
#ifdef MPICH_VERSION // one MPI_Win_flush per target (win.c: dsmi_win_flush_all), holders only
    for (int c = 0; c < (int)e->copies; c++) {
        if (mask & (1u << c)) {
            DSMI_MPI(func, MPI_Win_flush(e->holder[c], rp.win));
        }
    }
    return DSM_OK;
#else
    (void)e, (void)mask;
    return dsmi_win_flush_all(rp.win, dsmi_rt.nranks, func);
#endif
}

/* A blocking get. */
static int t_get(const char *func, void *buf, size_t n, int r, MPI_Aint d)
{
    dsmi_count(&dsmi_stat.gets, 1);
    dsmi_count(&dsmi_stat.bytes_got, n);
    if (rp.peer != NULL) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST); // after the version word was read
        memcpy(buf, rp.peer[r] + d, n);
        return DSM_OK;
    }
    DSMI_MPI(func, MPI_Get(buf, (int)n, MPI_BYTE, r, d, (int)n, MPI_BYTE, rp.win));
    DSMI_MPI(func, MPI_Win_flush(r, rp.win));
    return DSM_OK;
}

/* ---- placement ---- */

/* Order o's copies nearest first: this rank, its node, the rest. */
static void order_copies(struct dsm_repl *o)
{
    const struct ent *e = ent(o->idx);
    int n = 0;
    for (int pass = 0; pass < 3; pass++) {
        for (int c = 0; c < (int)e->copies; c++) {
            int h = e->holder[c];
            int k = h == dsmi_rt.rank ? 0 : rp.node[h] == rp.node[dsmi_rt.rank] ? 1 : 2;
            if (k == pass) {
                o->order[n++] = c;
            }
        }
    }
}

/* Holders of a new object idx: consecutive ranks of the list that takes one rank of
 * each node in turn, starting at idx, so R <= nodes copies land on R nodes. */
static void choose_holders(struct ent *e, int idx)
{
    int n = dsmi_rt.nranks, *list = malloc(sizeof(int) * (size_t)n), k = 0;
    DSM_ASSERT(list != NULL);
    for (int level = 0; k < n; level++) { // level: the level-th rank of each node
        for (int nd = 0; nd < n && k < n; nd++) {
            int seen = 0;
            for (int r = 0; r < n; r++) {
                if (rp.node[r] == nd && seen++ == level) {
                    list[k++] = r;
                }
            }
        }
    }
    for (int c = 0; c < (int)e->copies; c++) {
        e->holder[c] = list[(idx + c) % n];
    }
    free(list);
}

/* First free byte of rank r's store after every area any entry gave it. */
static uint64_t store_end(int r)
{
    uint64_t end = AREAS_OFF;
    for (uint32_t i = 0; i < hdr()->used; i++) {
        const struct ent *e = ent((int)i);
        for (int c = 0; c < (int)e->copies; c++) {
            if (e->holder[c] == r && e->off[c] + area_len(e) > end) {
                end = e->off[c] + area_len(e);
            }
        }
    }
    return end;
}

/* ---- handles ---- */

static int handle_init(int idx)
{
    struct dsm_repl *o = &rp.obj[idx];
    const struct ent *e = ent(idx);
    free(o->cache);
    free(o->slot);
    *o = (struct dsm_repl){.idx = idx};
    o->cache = calloc(1, pad8(e->size) + 8);
    o->slot = calloc(1, slot_len(e));
    if (o->cache == NULL || o->slot == NULL) {
        return DSM_ERR_NOMEM;
    }
    order_copies(o);
    return DSM_OK;
}

static int majority(const struct ent *e)
{
    return (int)e->copies / 2 + 1;
}

/* Rank r's copy index in e, or -1. */
static int copy_of(const struct ent *e, int r)
{
    for (int c = 0; c < (int)e->copies; c++) {
        if (e->holder[c] == r) {
            return c;
        }
    }
    return -1;
}

static int my_copy(const struct ent *e)
{
    return copy_of(e, dsmi_rt.rank);
}

/* The newest intact version of copy c of e in the store image at base (0: none). */
static uint64_t best_in(const unsigned char *base, const struct ent *e, int c)
{
    uint64_t best = 0;
    for (uint64_t s = 0; s < 2; s++) {
        const unsigned char *p = base + e->off[c] + WORD_SIZE + s * slot_len(e);
        uint64_t v;
        memcpy(&v, p, sizeof v);
        if ((v & 1) == s && v > best && slot_ok(e, p, v)) {
            best = v;
        }
    }
    return best;
}

/* The newest intact version in this rank's copy c of e (0: none). */
static uint64_t local_best(const struct ent *e, int c)
{
    return best_in(rp.base, e, c);
}

/* ---- restart: rebuild every object from a majority of its copies ---- */

/* Rewrite this rank's copy c of e with version v from holder src's copy. */
static int repair_from(const struct ent *e, int c, uint64_t v, int src, int src_copy)
{
    unsigned char *dst = rp.base + slot_disp(e, c, v);
    int rc = t_get("dsm_init", dst, slot_len(e), src, slot_disp(e, src_copy, v));
    if (rc != DSM_OK) {
        return rc;
    }
    if (!slot_ok(e, dst, v)) {
        return dsmi_fail(DSM_ERR_CORRUPT, "dsm_init",
                         "replicated object '%s': the copy of version %llu on rank %d changed "
                         "while it was repaired from",
                         e->name, (unsigned long long)v, src);
    }
    return DSM_OK;
}

/* Collective: per object, the best (version, rank) and how many copies are intact. */
static int rebuild(void)
{
    int n = (int)hdr()->used;
    struct {
        long v;
        int r;
    } *best = calloc((size_t)n + 1, sizeof *best);
    int *intact = calloc((size_t)n + 1, sizeof(int));
    int rc = best != NULL && intact != NULL ? DSM_OK : DSM_ERR_NOMEM;
    for (int i = 0; rc == DSM_OK && i < n; i++) {
        const struct ent *e = ent(i);
        int c = e->live ? my_copy(e) : -1;
        best[i].v = c >= 0 ? (long)local_best(e, c) : 0;
        best[i].r = dsmi_rt.rank;
        intact[i] = best[i].v > 0;
    }
    if (rc == DSM_OK && n > 0 &&
        (MPI_Allreduce(MPI_IN_PLACE, best, n, MPI_LONG_INT, MPI_MAXLOC, dsmi_rt.comm) !=
             MPI_SUCCESS ||
         MPI_Allreduce(MPI_IN_PLACE, intact, n, MPI_INT, MPI_SUM, dsmi_rt.comm) != MPI_SUCCESS)) {
        rc = dsmi_fail(DSM_ERR_MPI, "dsm_init", "replicated objects: agreeing on versions failed");
    }
    for (int i = 0; rc == DSM_OK && i < n; i++) {
        const struct ent *e = ent(i);
        if (!e->live || (rc = handle_init(i)) != DSM_OK) {
            continue;
        }
        if (intact[i] < majority(e)) {
            rp.obj[i].lost = true;
            if (dsmi_rt.rank == 0) {
                dsmi_log(DSMI_LOG_ERROR,
                         "replicated object '%s' is lost: %d of its %u copies are intact, a "
                         "majority (%d) is needed (DSM_ERR_QUORUM on every use)",
                         e->name, intact[i], e->copies, majority(e));
            }
            continue;
        }
        uint64_t v = (uint64_t)best[i].v;
        int c = my_copy(e), src = best[i].r;
        if (c >= 0 && local_best(e, c) < v &&
            (rc = repair_from(e, c, v, src, copy_of(e, src))) == DSM_OK) {
            dsmi_count(&dsmi_stat.repl_repairs, 1);
        }
        if (c == 0) { // the lock word, free at the rebuilt version (no writer survived)
            uint64_t w = v << 1;
            memcpy(rp.base + e->off[0], &w, sizeof w);
        }
    }
    free(best);
    free(intact);
    return rc;
}

/* ---- restart on another rank count: the old ranks' stores become the new ones ---- */
/* The stores of a job of N ranks lie in its nodes' store directories as rank-<r>.store.
 * A job of M != N ranks (dsmrun --shrink, --grow) reads every one it finds: a file is
 * read by its rank when that rank is on the same node (it has it mapped already), else by
 * the lowest rank of the node. Per object the copies found agree as at a restart of the
 * same count (the highest intact version, kept when a majority of the object's copies
 * are intact), its bytes go to every rank, and the stores are laid out anew for M ranks:
 * every object keeps its name, index and version, with min(R, M) copies placed as
 * dsm_repl_alloc places them. An object without a majority keeps no copy and is lost
 * (DSM_ERR_QUORUM, as at any restart). The old files no rank of this job opens are
 * removed. */

static int agree(int rc);

struct old_store {
    int rank, nranks;
    const unsigned char *base;
    bool mapped; // mapped here (else: this rank's own store, rp.base)
};

/* The job size the image at b was written for when it is rank r's store of this job
 * (the checks of store_valid() but the rank count), else 0. */
static int old_size(const unsigned char *b, int r)
{
    const struct store_hdr *h = (const void *)b;
    if (h->magic != STORE_MAGIC || h->format != STORE_FORMAT || h->size != rp.size ||
        h->rank != r || h->nranks < 1 || h->used > DSM_REPL_MAX_OBJECTS ||
        h->table_crc != dsmi_crc32c(0, b + TABLE_OFF, (size_t)h->used * ENT_SIZE)) {
        return 0;
    }
    return h->nranks;
}

/* The old stores this rank reads, into *out (*n of them). */
static int find_old(struct old_store **out, int *n)
{
    int me = dsmi_rt.rank, first = me;
    for (int r = 0; r < dsmi_rt.nranks; r++) {
        if (rp.node[r] == rp.node[me]) {
            first = r < first ? r : first;
        }
    }
    *n = 0;
    *out = NULL;
    DIR *d = opendir(rp.dir);
    if (d == NULL) {
        return DSM_OK;
    }
    int cap = 0, rc = DSM_OK;
    for (struct dirent *de; rc == DSM_OK && (de = readdir(d)) != NULL;) {
        int k = -1;
        char canon[32];
        if (sscanf(de->d_name, "rank-%d.store", &k) != 1 || k < 0 ||
            (snprintf(canon, sizeof canon, "rank-%d.store", k), strcmp(canon, de->d_name)) != 0) {
            continue;
        }
        bool here = k < dsmi_rt.nranks && rp.node[k] == rp.node[me];
        if ((here && k != me) || (!here && me != first)) {
            continue; // another rank of this node reads it
        }
        struct old_store o = {k, 0, rp.base, false};
        if (k != me) {
            char path[DSMI_CKPT_DIR_MAX + 32];
            snprintf(path, sizeof path, "%s/rank-%d.store", rp.dir, k);
            int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            struct stat st;
            void *m = MAP_FAILED;
            if (fd >= 0 && fstat(fd, &st) == 0 && (size_t)st.st_size == rp.size) {
                m = mmap(NULL, rp.size, PROT_READ, MAP_SHARED, fd, 0);
            }
            if (fd >= 0) {
                close(fd);
            }
            if (m == MAP_FAILED) {
                continue;
            }
            o.base = m;
            o.mapped = true;
        }
        o.nranks = old_size(o.base, k);
        if (o.nranks == 0) {
            if (o.mapped) {
                munmap((void *)o.base, rp.size);
            }
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            struct old_store *more = realloc(*out, sizeof **out * (size_t)cap);
            if (more == NULL) {
                rc = DSM_ERR_NOMEM;
                continue;
            }
            *out = more;
        }
        (*out)[(*n)++] = o;
    }
    closedir(d);
    return rc;
}

/* The old store of rank h of a job of n ranks among olds, or NULL. */
static const unsigned char *old_of(const struct old_store *olds, int nold, int h, int n)
{
    for (int i = 0; i < nold; i++) {
        if (olds[i].rank == h && olds[i].nranks == n) {
            return olds[i].base;
        }
    }
    return NULL;
}

/* Agree, per object of the old table tab (used entries), on the newest version a
 * majority holds and give its bytes to every rank: data[i] (NULL: lost or freed), in
 * *arena (one block, the caller frees it). */
static int gather_objects(const unsigned char *tab, uint32_t used, int oldn,
                          const struct old_store *olds, int nold, uint64_t *ver,
                          unsigned char **data, unsigned char **arena)
{
    size_t total = 8, next = 0;
    for (uint32_t i = 0; i < used; i++) {
        const struct ent *e = (const void *)(tab + (size_t)i * ENT_SIZE);
        total += e->live ? pad8(e->size) : 0;
    }
    *arena = malloc(total); // one allocation, agreed on before any broadcast
    int rc = agree(*arena != NULL ? DSM_OK : DSM_ERR_NOMEM);
    if (rc != DSM_OK) {
        return dsmi_fail(rc, "dsm_init", "no memory for the replicated objects (%zu bytes)", total);
    }
    struct {
        long v;
        int r;
    } best;
    for (uint32_t i = 0; i < used; i++) {
        const struct ent *e = (const void *)(tab + (size_t)i * ENT_SIZE);
        int intact = 0, all = 0;
        best.v = 0;
        best.r = dsmi_rt.rank;
        for (int c = 0; e->live && c < (int)e->copies; c++) {
            const unsigned char *b = old_of(olds, nold, e->holder[c], oldn);
            uint64_t v = b != NULL ? best_in(b, e, c) : 0;
            intact += v > 0;
            if ((long)v > best.v) {
                best.v = (long)v;
            }
        }
        DSMI_MPI("dsm_init", MPI_Allreduce(&intact, &all, 1, MPI_INT, MPI_SUM, dsmi_rt.comm));
        DSMI_MPI("dsm_init",
                 MPI_Allreduce(MPI_IN_PLACE, &best, 1, MPI_LONG_INT, MPI_MAXLOC, dsmi_rt.comm));
        ver[i] = 0;
        data[i] = NULL;
        if (!e->live) {
            continue;
        }
        if (all < majority(e)) {
            if (dsmi_rt.rank == 0) {
                dsmi_log(DSMI_LOG_ERROR,
                         "replicated object '%s': %d of its %u copies of the %d-rank job are "
                         "intact, a majority (%d) is needed: lost",
                         e->name, all, e->copies, oldn, majority(e));
            }
            continue;
        }
        ver[i] = (uint64_t)best.v;
        data[i] = *arena + next;
        next += pad8(e->size);
        if (best.r == dsmi_rt.rank) { // the copy with that version is in one of my olds
            for (int c = 0; c < (int)e->copies; c++) {
                const unsigned char *b = old_of(olds, nold, e->holder[c], oldn);
                if (b != NULL && best_in(b, e, c) == ver[i]) {
                    memcpy(data[i],
                           b + e->off[c] + WORD_SIZE + (ver[i] & 1) * slot_len(e) + SLOT_HDR,
                           e->size);
                    break;
                }
            }
        }
        DSMI_MPI("dsm_init", MPI_Bcast(data[i], (int)e->size, MPI_BYTE, best.r, dsmi_rt.comm));
    }
    return DSM_OK;
}

/* Lay this rank's store out anew for this job from the old table tab: every live object
 * at version ver[i] with bytes data[i] (none: lost, no copy intact). */
static int relayout(const unsigned char *tab, uint32_t used, uint64_t gen, const uint64_t *ver,
                    unsigned char *const *data)
{
    store_reset();
    for (uint32_t i = 0; i < used; i++) {
        const struct ent *old = (const void *)(tab + (size_t)i * ENT_SIZE);
        struct ent *e = ent((int)i);
        memset(e, 0, ENT_SIZE);
        if (old->live) {
            memcpy(e->name, old->name, sizeof e->name);
            e->size = old->size;
            e->ident = old->ident;
            e->live = 1;
            e->copies =
                old->copies < (uint32_t)dsmi_rt.nranks ? old->copies : (uint32_t)dsmi_rt.nranks;
            choose_holders(e, (int)i);
            for (int c = 0; c < (int)e->copies; c++) {
                e->off[c] = store_end(e->holder[c]);
                if (e->off[c] + area_len(e) > rp.size) {
                    return dsmi_fail(DSM_ERR_NOMEM, "dsm_init",
                                     "replicated object '%s' does not fit rank %d's store on "
                                     "%d ranks: DSM_REPL_SIZE=%zu",
                                     e->name, e->holder[c], dsmi_rt.nranks, rp.size);
                }
            }
        }
        hdr()->used = i + 1;
    }
    hdr()->used = used;
    hdr()->gen = gen + 1;
    for (uint32_t i = 0; i < used; i++) {
        const struct ent *e = ent((int)i);
        int c = e->live ? my_copy(e) : -1;
        if (c < 0 || data[i] == NULL) {
            continue;
        }
        unsigned char *a = rp.base + e->off[c];
        memset(a, 0, area_len(e));
        slot_make(e, a + WORD_SIZE + (ver[i] & 1) * slot_len(e), ver[i], data[i]);
        if (c == 0) {
            uint64_t w = ver[i] << 1;
            memcpy(a, &w, sizeof w);
        }
    }
    hdr()->table_crc = table_crc();
    return DSM_OK;
}

/* Collective: when the stores found are a job's of another rank count, move their
 * objects into this job's stores (*moved); else leave everything as it is. */
static int regroup(bool *moved)
{
    struct old_store *olds = NULL;
    int nold = 0, rc = find_old(&olds, &nold);
    struct {
        long gen;
        int rank;
    } mine = {-1, dsmi_rt.rank}, best;
    int oldn = 0;
    for (int i = 0; i < nold; i++) {
        const struct store_hdr *h = (const void *)olds[i].base;
        if ((long)h->gen > mine.gen) {
            mine.gen = (long)h->gen;
            oldn = olds[i].nranks;
        }
    }
    // the newest table decides which job's stores these are
    if (agree(rc) != DSM_OK ||
        MPI_Allreduce(&mine, &best, 1, MPI_LONG_INT, MPI_MAXLOC, dsmi_rt.comm) != MPI_SUCCESS ||
        MPI_Bcast(&oldn, 1, MPI_INT, best.rank, dsmi_rt.comm) != MPI_SUCCESS) {
        rc = dsmi_fail(DSM_ERR_MPI, "dsm_init", "replicated objects: finding the old stores");
        oldn = 0;
    }
    *moved = false;
    uint32_t used = 0;
    unsigned char *tab = NULL, **data = NULL, *arena = NULL;
    uint64_t *ver = NULL;
    if (rc == DSM_OK && best.gen >= 0 && oldn != dsmi_rt.nranks) {
        if (best.rank == dsmi_rt.rank) {
            for (int i = 0; i < nold; i++) {
                const struct store_hdr *h = (const void *)olds[i].base;
                if ((long)h->gen == best.gen && olds[i].nranks == oldn) {
                    used = h->used;
                    tab = malloc((size_t)used * ENT_SIZE + 1);
                    if (tab != NULL) {
                        memcpy(tab, olds[i].base + TABLE_OFF, (size_t)used * ENT_SIZE);
                    }
                    break;
                }
            }
        }
        DSMI_MPI("dsm_init", MPI_Bcast(&used, 1, MPI_UINT32_T, best.rank, dsmi_rt.comm));
        if (tab == NULL) {
            tab = malloc((size_t)used * ENT_SIZE + 1);
        }
        ver = calloc((size_t)used + 1, sizeof *ver);
        data = calloc((size_t)used + 1, sizeof *data);
        rc = agree(tab && ver && data ? DSM_OK : DSM_ERR_NOMEM);
        if (rc == DSM_OK) {
            DSMI_MPI("dsm_init",
                     MPI_Bcast(tab, (int)(used * ENT_SIZE), MPI_BYTE, best.rank, dsmi_rt.comm));
            rc = agree(gather_objects(tab, used, oldn, olds, nold, ver, data, &arena));
        }
    }
    for (int i = 0; i < nold; i++) { // done reading: unmap, and drop what no rank reopens
        if (olds[i].mapped) {
            munmap((void *)olds[i].base, rp.size);
        }
        bool reopened = olds[i].rank < dsmi_rt.nranks && olds[i].rank == dsmi_rt.rank;
        if (rc == DSM_OK && data != NULL && !reopened) {
            char path[DSMI_CKPT_DIR_MAX + 32];
            snprintf(path, sizeof path, "%s/rank-%d.store", rp.dir, olds[i].rank);
            unlink(path);
        }
    }
    if (rc == DSM_OK && data != NULL) {
        DSMI_MPI("dsm_init", MPI_Barrier(dsmi_rt.comm)); // every old copy was read
        rc = agree(relayout(tab, used, (uint64_t)best.gen, ver, data));
        *moved = rc == DSM_OK;
        int live = 0, kept = 0;
        for (uint32_t i = 0; i < used; i++) {
            live += ((const struct ent *)(tab + (size_t)i * ENT_SIZE))->live != 0;
            kept += data[i] != NULL;
        }
        if (rc == DSM_OK && dsmi_rt.rank == 0) {
            dsmi_log(DSMI_LOG_INFO,
                     "replicated objects: %d of the %d objects of a %d-rank job moved onto %d "
                     "ranks",
                     kept, live, oldn, dsmi_rt.nranks);
        }
    }
    free(arena);
    free(data);
    free(ver);
    free(tab);
    free(olds);
    return rc;
}

/* ---- in checkpoints: an image of every object in rank 0's heap ---- */
/* The image: a header, the object table (used entries), then for every entry its
 * version (0: none) and pad8(size) bytes. A restart that restores the epoch and finds
 * no store of the job at all (fresh nodes, or every node's storage lost) lays the
 * stores out from it; when any store is found the stores decide, as without it. */

#define IMAGE_ROOT "dsm:repl-image"
#define IMAGE_MAGIC UINT64_C(0x64736d72696d6731) // "dsmrimg1"
#define IMAGE_TABLE 64                           // the table's offset in the image

struct image_hdr {
    uint64_t magic, len, gen, used;
};

/* Offset in the image of entry i's version and bytes (i == used: the image's length). */
static size_t image_off(const unsigned char *tab, uint32_t used, uint32_t i)
{
    size_t off = IMAGE_TABLE + (size_t)used * ENT_SIZE;
    for (uint32_t j = 0; j < i; j++) {
        off += 8 + pad8(((const struct ent *)(tab + (size_t)j * ENT_SIZE))->size);
    }
    return off;
}

static dsm_gptr_t at(dsm_gptr_t g, size_t off)
{
    return (dsm_gptr_t){g.bits + off};
}

int dsmi_repl_image(const char *fn)
{
    if (!rp.on) {
        return DSM_OK;
    }
    uint32_t used = hdr()->used;
    const unsigned char *tab = rp.base + TABLE_OFF;
    int live = 0;
    for (uint32_t i = 0; i < used; i++) {
        live += ent((int)i)->live != 0;
    }
    size_t len = image_off(tab, used, used);
    dsm_gptr_t g = DSM_GPTR_NULL, old = DSM_GPTR_NULL;
    int rc = DSM_OK;
    if (dsmi_rt.rank == 0) { // the block: kept when its size fits, else made anew
        struct image_hdr h = {0};
        int found = dsmi_root_find(IMAGE_ROOT, &old, fn);
        rc = found == DSM_ERR_NOTFOUND ? DSM_OK : found;
        if (rc == DSM_OK && found == DSM_OK) {
            rc = dsm_get(&h, old, sizeof h);
        }
        bool keep = rc == DSM_OK && found == DSM_OK && h.magic == IMAGE_MAGIC && h.len == len;
        if (rc == DSM_OK && found == DSM_OK && (!keep || live == 0)) {
            rc = dsm_root_set(IMAGE_ROOT, DSM_GPTR_NULL);
            rc = rc == DSM_OK ? dsm_free(old) : rc;
        }
        if (rc == DSM_OK && live > 0) {
            g = old;
            if (!keep && (rc = dsm_alloc(len, &g)) == DSM_OK) {
                rc = dsm_root_set(IMAGE_ROOT, g);
            }
            h = (struct image_hdr){IMAGE_MAGIC, len, hdr()->gen, used};
            rc = rc == DSM_OK ? dsm_put(g, &h, sizeof h) : rc;
            rc = rc == DSM_OK ? dsm_put(at(g, IMAGE_TABLE), tab, (size_t)used * ENT_SIZE) : rc;
        }
    }
    if ((rc = agree(rc)) != DSM_OK) {
        return dsmi_fail(rc, fn,
                         "replicated objects: rank 0 could not keep their image (%zu bytes) "
                         "in its heap",
                         len);
    }
    DSMI_MPI(fn, MPI_Bcast(&g.bits, 1, MPI_UINT64_T, 0, dsmi_rt.comm));
    // Each object's first holder puts its version and bytes: no write runs during a
    // checkpoint, so its copy holds the version its word names.
    for (uint32_t i = 0; rc == DSM_OK && live > 0 && i < used; i++) {
        const struct ent *e = ent((int)i);
        if (!e->live || my_copy(e) != 0) {
            continue;
        }
        uint64_t w;
        memcpy(&w, rp.base + e->off[0], sizeof w);
        uint64_t v = (w & 1) == 0 && local_best(e, 0) == (w >> 1) ? w >> 1 : 0;
        size_t off = image_off(tab, used, i);
        rc = dsm_put(at(g, off), &v, sizeof v);
        if (rc == DSM_OK && v > 0) {
            rc = dsm_put(at(g, off + 8), rp.base + slot_disp(e, 0, v) + SLOT_HDR, e->size);
        }
    }
    return agree(rc);
}

/* Collective, at a start that found no store of this job: when the epoch restored holds
 * an image, lay the stores out from it (*moved). */
static int from_image(bool *moved)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    struct image_hdr h = {0};
    int rc = DSM_OK;
    uint64_t epoch = 0;
    if (dsmi_rt.rank == 0 && dsm_restarted(&epoch) &&
        dsmi_root_find(IMAGE_ROOT, &g, "dsm_init") == DSM_OK) {
        rc = dsm_get(&h, g, sizeof h);
    }
    if ((rc = agree(rc)) != DSM_OK) {
        return rc;
    }
    DSMI_MPI("dsm_init", MPI_Bcast(&h, (int)sizeof h, MPI_BYTE, 0, dsmi_rt.comm));
    DSMI_MPI("dsm_init", MPI_Bcast(&epoch, 1, MPI_UINT64_T, 0, dsmi_rt.comm));
    if (h.magic != IMAGE_MAGIC || h.used == 0 || h.used > DSM_REPL_MAX_OBJECTS ||
        h.len < IMAGE_TABLE + h.used * ENT_SIZE) {
        return DSM_OK;
    }
    uint32_t used = (uint32_t)h.used;
    unsigned char *img = malloc(h.len), **data = calloc(used, sizeof *data);
    uint64_t *ver = calloc(used, sizeof *ver);
    rc = agree(img && ver && data ? DSM_OK : DSM_ERR_NOMEM);
    if (rc == DSM_OK && dsmi_rt.rank == 0) {
        rc = dsm_get(img, g, h.len);
    }
    int live = 0, kept = 0;
    if ((rc = agree(rc)) == DSM_OK) {
        DSMI_MPI("dsm_init", MPI_Bcast(img, (int)h.len, MPI_BYTE, 0, dsmi_rt.comm));
        const unsigned char *tab = img + IMAGE_TABLE;
        if (image_off(tab, used, used) != h.len) {
            rc = dsmi_fail(DSM_ERR_CORRUPT, "dsm_init",
                           "the replicated objects' image of epoch %llu is damaged",
                           (unsigned long long)epoch);
        }
        for (uint32_t i = 0; rc == DSM_OK && i < used; i++) {
            const struct ent *e = (const void *)(tab + (size_t)i * ENT_SIZE);
            size_t off = image_off(tab, used, i);
            live += e->live != 0;
            memcpy(&ver[i], img + off, sizeof ver[i]);
            if (e->live && ver[i] > 0) {
                data[i] = img + off + 8; // points into img: not freed on its own
                kept++;
            }
        }
        rc = rc == DSM_OK ? agree(relayout(tab, used, h.gen, ver, data)) : rc;
        *moved = rc == DSM_OK;
    }
    if (rc == DSM_OK && dsmi_rt.rank == 0) {
        dsmi_log(DSMI_LOG_WARN,
                 "replicated objects: no store of this job was found; %d of %d objects "
                 "restored from checkpoint epoch %llu (writes after it are not in it)",
                 kept, live, (unsigned long long)epoch);
    }
    free(img);
    free(ver);
    free(data);
    return rc;
}

/* ---- start and stop ---- */

static int start_window(void)
{
    MPI_Info info;
    DSMI_MPI("dsm_init", MPI_Info_create(&info));
    MPI_Info_set(info, "same_disp_unit", "true");
    int mrc = MPI_Win_create(rp.base, (MPI_Aint)rp.size, 1, info, dsmi_rt.comm, &rp.win);
    MPI_Info_free(&info);
    if (mrc != MPI_SUCCESS) {
        rp.win = MPI_WIN_NULL;
        return dsmi_fail_mpi(
            mrc, "dsm_init",
            "MPI_Win_create of the replicated objects' stores (Open MPI: osc pt2pt refuses "
            "it under MPI_THREAD_MULTIPLE; use osc ucx, e.g. dsmrun --net=ucx)",
            __FILE__, __LINE__);
    }
    MPI_Win_set_errhandler(rp.win, MPI_ERRORS_RETURN);
    DSMI_MPI("dsm_init", MPI_Win_lock_all(MPI_MODE_NOCHECK, rp.win));
    return DSM_OK;
}

static void unmap_peers(void)
{
    for (int r = 0; rp.peer != NULL && r < dsmi_rt.nranks; r++) {
        if (rp.peer[r] != NULL && rp.peer[r] != rp.base) {
            munmap(rp.peer[r], rp.size);
        }
    }
    free(rp.peer);
    rp.peer = NULL;
}

/* Map every rank's store (all on this node, in this directory); false if any fails. */
static bool map_peers(void)
{
    rp.peer = calloc((size_t)dsmi_rt.nranks, sizeof *rp.peer);
    bool ok = rp.peer != NULL;
    for (int r = 0; ok && r < dsmi_rt.nranks; r++) {
        char path[DSMI_CKPT_DIR_MAX + 32];
        snprintf(path, sizeof path, "%s/rank-%d.store", rp.dir, r);
        int fd = r == dsmi_rt.rank ? -1 : open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (r == dsmi_rt.rank) {
            rp.peer[r] = rp.base;
        } else if (fd >= 0 && fstat(fd, &st) == 0 && (size_t)st.st_size == rp.size) {
            void *m = mmap(NULL, rp.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            rp.peer[r] = m == MAP_FAILED ? NULL : m;
        }
        ok = rp.peer[r] != NULL;
        if (!ok) {
            dsmi_log(DSMI_LOG_INFO, "replicated objects: cannot map %s (%s): MPI calls instead",
                     path, strerror(errno));
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    return ok;
}

/* Collective: the direct path when every rank is on this node and maps every store,
 * else the MPI window. */
static int start_path(void)
{
    int one_node = 1;
    for (int r = 0; r < dsmi_rt.nranks; r++) {
        one_node &= rp.node[r] == rp.node[0];
    }
    int direct = one_node && dsmi_rt.cfg.DIRECT;
    DSMI_MPI("dsm_init", MPI_Barrier(dsmi_rt.comm)); // every store file exists and is sized
    direct = direct && map_peers();
    DSMI_MPI("dsm_init", MPI_Allreduce(MPI_IN_PLACE, &direct, 1, MPI_INT, MPI_LAND, dsmi_rt.comm));
    if (direct) {
        return DSM_OK;
    }
    unmap_peers();
    return start_window();
}

/* Make this rank's local writes to its store visible to the other ranks' accesses. */
static void publish(void)
{
    if (rp.win != MPI_WIN_NULL) {
        MPI_Win_sync(rp.win);
    } else {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    }
}

/* Agree on rc over all ranks (the largest code). */
static int agree(int rc)
{
    int all = rc;
    if (MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, dsmi_rt.comm) != MPI_SUCCESS) {
        return DSM_ERR_MPI;
    }
    return all;
}

static int start(void);

int dsmi_repl_start(void)
{
    int rc = start();
    if (rc != DSM_OK) {
        dsmi_repl_stop();
    }
    return rc;
}

static int start(void)
{
    rp.size = dsmi_rt.cfg.REPL_SIZE;
    if (rp.size == 0) {
        return DSM_OK;
    }
    if (rp.size < AREAS_OFF + 4096) {
        return agree(dsmi_fail(DSM_ERR_ENV, "dsm_init",
                               "DSM_REPL_SIZE=%zu is below the minimum of %d bytes", rp.size,
                               AREAS_OFF + 4096));
    }
    rp.node = malloc(sizeof(int) * (size_t)dsmi_rt.nranks);
    if (rp.node == NULL) {
        return agree(DSM_ERR_NOMEM);
    }
    int me = dsmi_topo()->node;
    DSMI_MPI("dsm_init", MPI_Allgather(&me, 1, MPI_INT, rp.node, 1, MPI_INT, dsmi_rt.comm));
    bool keep = dsmi_rt.cfg.RESTART != DSMI_RESTART_NEVER, found = false, moved = false;
    int rc = agree(store_open(keep, &found));
    if (rc == DSM_OK && keep) {
        rc = agree(regroup(&moved));
    }
    int none = !moved && (!found || !store_valid()); // no store of this job on this rank
    if (rc == DSM_OK && keep &&
        MPI_Allreduce(MPI_IN_PLACE, &none, 1, MPI_INT, MPI_LAND, dsmi_rt.comm) == MPI_SUCCESS &&
        none) {
        rc = agree(from_image(&moved)); // none on any rank: the checkpoint's image, if any
    }
    if (rc != DSM_OK) {
        return rc;
    }
    if (!moved && (!found || !store_valid())) {
        if (found) {
            dsmi_log(DSMI_LOG_WARN, "replicated objects' store of this rank is not this job's "
                                    "or is damaged: its copies count as lost");
        }
        store_reset();
    }
    if ((rc = agree(table_agree())) != DSM_OK || (rc = agree(start_path())) != DSM_OK) {
        return rc;
    }
    rp.on = true;
    rc = agree(rebuild());
    publish(); // repaired copies and lock words are public before any use
    DSMI_MPI("dsm_init", MPI_Barrier(dsmi_rt.comm));
    return rc;
}

int dsmi_repl_stop(void)
{
    int rc = DSM_OK;
    if (rp.win != MPI_WIN_NULL) {
        if (MPI_Win_unlock_all(rp.win) != MPI_SUCCESS || MPI_Win_free(&rp.win) != MPI_SUCCESS) {
            rc = dsmi_fail(DSM_ERR_MPI, "dsm_finalize", "freeing the replicated objects' window");
        }
        rp.win = MPI_WIN_NULL;
    }
    unmap_peers();
    for (int i = 0; i < DSM_REPL_MAX_OBJECTS; i++) {
        free(rp.obj[i].cache);
        free(rp.obj[i].slot);
    }
    if (rp.base != NULL) {
        munmap(rp.base, rp.size);
    }
    if (rp.fd >= 0) {
        close(rp.fd);
    }
    free(rp.node);
    memset(&rp, 0, sizeof rp);
    rp.fd = -1;
    rp.win = MPI_WIN_NULL;
    return rc;
}

/* ---- the data path ---- */

/* Check o and that [off, off + n) lies in it. */
static int check_obj(const char *func, dsm_repl_t o, size_t off, size_t n)
{
    DSMI_CHECK_UP(func);
    if (!rp.on) {
        return dsmi_fail(DSM_ERR_STATE, func,
                         "replicated objects are off (set DSM_REPL_SIZE, see mpidsm.h)");
    }
    if (o == NULL || o < rp.obj || o >= rp.obj + DSM_REPL_MAX_OBJECTS ||
        (uint32_t)o->idx >= hdr()->used || !ent(o->idx)->live || o->cache == NULL) {
        return dsmi_fail(DSM_ERR_INVALID, func, "not a live replicated object");
    }
    const struct ent *e = ent(o->idx);
    if (o->lost) {
        return dsmi_fail(DSM_ERR_QUORUM, func,
                         "replicated object '%s' is lost: fewer than %d of its %u copies "
                         "survived the last restart",
                         e->name, majority(e), e->copies);
    }
    if (off > e->size || n > e->size - off) {
        return dsmi_fail(DSM_ERR_RANGE, func,
                         "bytes [%zu, %zu + %zu) outside replicated object '%s' of %llu bytes", off,
                         off, n, e->name, (unsigned long long)e->size);
    }
    return DSM_OK;
}

/* The version word's displacement (at the first holder). */
static MPI_Aint word_disp(const struct ent *e)
{
    return (MPI_Aint)e->off[0];
}

static int word_cas(const char *func, const struct ent *e, uint64_t expect, uint64_t want,
                    uint64_t *old)
{
    return t_cas(func, e->holder[0], word_disp(e), expect, want, old);
}

static int word_load(const char *func, const struct ent *e, uint64_t *w)
{
    return t_load(func, e->holder[0], word_disp(e), w);
}

/* Pause between lock attempts: yield first, then sleep up to 100 us. */
static void backoff(unsigned *spins)
{
    if (++*spins < 16) {
        sched_yield();
        return;
    }
    unsigned us = *spins < 23 ? 1u << (*spins - 16) : 100;
    nanosleep(&(struct timespec){0, (long)us * 1000}, NULL);
}

/* Take o's lock; *v = the version it guards. Tries the cached version first. */
static int lock_take(const char *func, struct dsm_repl *o, uint64_t *v)
{
    const struct ent *e = ent(o->idx);
    uint64_t guess = o->cver, old;
    unsigned spins = 0;
    double t0 = 0, limit = (double)dsmi_rt.cfg.LOCK_TIMEOUT; // the clock: only when contended
    for (;;) {
        int rc = word_cas(func, e, guess << 1, (guess << 1) | 1, &old);
        if (rc != DSM_OK) {
            return rc;
        }
        if (old == guess << 1) {
            *v = guess;
            return DSM_OK;
        }
        if (!(old & 1)) { // free at another version: try that one at once
            guess = old >> 1;
            continue;
        }
        t0 = t0 == 0 ? MPI_Wtime() : t0;
        if (limit > 0 && MPI_Wtime() - t0 > limit) {
            return dsmi_fail(DSM_ERR_TIMEOUT, func,
                             "timed out after %ld s (DSM_LOCK_TIMEOUT) waiting for replicated "
                             "object '%s', written by another rank at version %llu",
                             dsmi_rt.cfg.LOCK_TIMEOUT, e->name, (unsigned long long)(old >> 1));
        }
        guess = old >> 1;
        backoff(&spins);
    }
}

/* Release o's lock held at version v, leaving version now (v or v + 1). */
static int lock_give(const char *func, const struct dsm_repl *o, uint64_t v, uint64_t now)
{
    uint64_t old;
    int rc = word_cas(func, ent(o->idx), (v << 1) | 1, now << 1, &old);
    if (rc == DSM_OK && old != ((v << 1) | 1)) {
        return dsmi_fail(DSM_ERR_INTERNAL, func,
                         "replicated object '%s': lock word 0x%llx, not ours", ent(o->idx)->name,
                         (unsigned long long)old);
    }
    return rc;
}

/* Put o->slot (a slot image of version v) into the copies in mask, then flush them. */
static int put_copies(const char *func, const struct dsm_repl *o, uint64_t v, unsigned mask)
{
    const struct ent *e = ent(o->idx);
    // Read once: e lies in a store the copies' stores might alias for the compiler.
    const int copies = (int)e->copies;
    const size_t len = slot_len(e);
    const unsigned char *img = o->slot;
    for (int c = 0; c < copies; c++) {
        if (mask & (1u << c)) {
            int rc = t_put(func, img, len, e->holder[c], slot_disp(e, c, v));
            if (rc != DSM_OK) {
                return rc;
            }
        }
    }
    // All copies in parallel: the puts are all started before any is completed.
    return t_complete(func, e, mask);
}

enum { FETCH_OK, FETCH_MOVED };

/* Read version v of o into its cache from the nearest intact copy. *bad gets the copies
 * found torn or stale. FETCH_MOVED when a copy already holds a newer version in v's slot
 * (a writer got two versions ahead: read the word again). */
static int fetch(const char *func, struct dsm_repl *o, uint64_t v, unsigned *bad, int *state)
{
    const struct ent *e = ent(o->idx);
    *bad = 0;
    for (int k = 0; k < (int)e->copies; k++) {
        int c = o->order[k];
        int rc = t_get(func, o->slot, slot_len(e), e->holder[c], slot_disp(e, c, v));
        if (rc != DSM_OK) {
            return rc;
        }
        uint64_t got;
        memcpy(&got, o->slot, sizeof got);
        if (got > v && slot_ok(e, o->slot, got)) {
            *state = FETCH_MOVED;
            return DSM_OK;
        }
        if (slot_ok(e, o->slot, v)) {
            memcpy(o->cache, o->slot + SLOT_HDR, e->size);
            o->cver = v;
            *state = FETCH_OK;
            return DSM_OK;
        }
        *bad |= 1u << c;
        dsmi_log(DSMI_LOG_WARN,
                 "replicated object '%s': copy on rank %d is torn or stale at "
                 "version %llu: repaired from another copy",
                 e->name, e->holder[c], (unsigned long long)v);
    }
    return dsmi_fail(DSM_ERR_CORRUPT, func,
                     "replicated object '%s': no copy of version %llu is intact (%u copies)",
                     e->name, (unsigned long long)v, e->copies);
}

/* With o's lock held at version v: make the cache hold v, repairing bad copies. */
static int fetch_locked(const char *func, struct dsm_repl *o, uint64_t v)
{
    if (o->cver == v) {
        return DSM_OK;
    }
    unsigned bad = 0;
    int state = FETCH_OK, rc = fetch(func, o, v, &bad, &state);
    if (rc == DSM_OK && state == FETCH_MOVED) { // nobody writes while we hold the lock
        return dsmi_fail(DSM_ERR_INTERNAL, func, "replicated object '%s' moved under its lock",
                         ent(o->idx)->name);
    }
    if (rc == DSM_OK && bad != 0 && (rc = put_copies(func, o, v, bad)) == DSM_OK) {
        // o->slot holds the intact image of v
        dsmi_count(&dsmi_stat.repl_repairs, (uint64_t)__builtin_popcount(bad));
    }
    return rc;
}

/* After a read of version v found the copies in bad torn or stale (o->slot holds the
 * intact image of v): rewrite them under the lock, unless a writer moved on meanwhile
 * (then its writes have replaced the copies' older slot and the next one replaces v's). */
static int repair(const char *func, struct dsm_repl *o, uint64_t v, unsigned bad)
{
    uint64_t old;
    int rc = word_cas(func, ent(o->idx), v << 1, (v << 1) | 1, &old);
    if (rc != DSM_OK || old != v << 1) {
        return rc;
    }
    rc = put_copies(func, o, v, bad);
    if (rc == DSM_OK) {
        dsmi_count(&dsmi_stat.repl_repairs, (uint64_t)__builtin_popcount(bad));
    }
    int grc = lock_give(func, o, v, v);
    return rc != DSM_OK ? rc : grc;
}

/* Under o's lock: apply n bytes of buf at off to the cache and write version v + 1. */
static int write_locked(const char *func, struct dsm_repl *o, uint64_t v, size_t off,
                        const void *buf, size_t n)
{
    const struct ent *e = ent(o->idx);
    memcpy(o->cache + off, buf, n);
    slot_make(e, o->slot, v + 1, o->cache);
    o->cver = 0; // until every copy holds it
    int rc = put_copies(func, o, v + 1, (1u << e->copies) - 1);
    if (rc == DSM_OK) {
        o->cver = v + 1;
    }
    return rc;
}

/* The direct path's write when the lock is free at the cached version (the common case:
 * this rank wrote or read last): lock_take, write_locked and lock_give's steps, without
 * the transport's per-call indirections, which on one node are most of the cost. The
 * protocol is the same: CAS the word to locked, the new slot into every copy, CAS the
 * word to the new version (that seq_cst RMW orders the copies before it, see
 * t_complete). False, having changed nothing, when the word is not free at o->cver. */
static bool direct_write(struct dsm_repl *o, size_t off, const void *buf, size_t n)
{
    const struct ent *e = ent(o->idx);
    const uint64_t v = o->cver;
    uint64_t *w = (uint64_t *)(rp.peer[e->holder[0]] + word_disp(e)), expect = v << 1;
    if (v == 0 || !__atomic_compare_exchange_n(w, &expect, (v << 1) | 1, false, __ATOMIC_SEQ_CST,
                                               __ATOMIC_SEQ_CST)) {
        dsmi_count(&dsmi_stat.atomics, 1);
        return false;
    }
    memcpy(o->cache + off, buf, n);
    slot_make(e, o->slot, v + 1, o->cache);
    const int copies = (int)e->copies; // read once: the copies' stores may alias e
    const size_t len = slot_len(e);
    for (int c = 0; c < copies; c++) {
        copy_words(rp.peer[e->holder[c]] + slot_disp(e, c, v + 1), o->slot, len);
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    o->cver = v + 1;
    expect = (v << 1) | 1;
    bool ours = __atomic_compare_exchange_n(w, &expect, (v + 1) << 1, false, __ATOMIC_SEQ_CST,
                                            __ATOMIC_SEQ_CST);
    DSM_ASSERT(ours); // only the holder changes a locked word
    dsmi_count(&dsmi_stat.atomics, 2);
    dsmi_count(&dsmi_stat.puts, (uint64_t)copies);
    dsmi_count(&dsmi_stat.bytes_put, (uint64_t)copies * len);
    dsmi_count(&dsmi_stat.flushes, 1);
    dsmi_count(&dsmi_stat.repl_writes, 1);
    return true;
}

/* ---- the API ---- */

int dsm_repl_write(dsm_repl_t o, size_t off, const void *buf, size_t n)
{
    static const char *const func = "dsm_repl_write";
    int rc = check_obj(func, o, off, n);
    if (rc != DSM_OK || n == 0) {
        return rc;
    }
    if (buf == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "buf is NULL with n = %zu", n);
    }
    if (rp.peer != NULL && direct_write(o, off, buf, n)) {
        return DSM_OK;
    }
    uint64_t v;
    if ((rc = lock_take(func, o, &v)) != DSM_OK) {
        return rc;
    }
    rc = fetch_locked(func, o, v);
    if (rc == DSM_OK) {
        rc = write_locked(func, o, v, off, buf, n);
    }
    int grc = lock_give(func, o, v, rc == DSM_OK ? v + 1 : v);
    if (rc == DSM_OK && grc == DSM_OK) {
        dsmi_count(&dsmi_stat.repl_writes, 1);
    }
    return rc != DSM_OK ? rc : grc;
}

int dsm_repl_cas_u64(dsm_repl_t o, size_t off, uint64_t expected, uint64_t desired, uint64_t *old)
{
    static const char *const func = "dsm_repl_cas_u64";
    int rc = check_obj(func, o, off, sizeof(uint64_t));
    if (rc != DSM_OK) {
        return rc;
    }
    if (old == NULL || off % 8 != 0) {
        return dsmi_fail(DSM_ERR_ARG, func,
                         old == NULL ? "old is NULL" : "offset %zu is not 8-byte aligned", off);
    }
    uint64_t v = 0, cur = 0; // set on every path that reads them (GCC -O1 cannot tell)
    if ((rc = lock_take(func, o, &v)) != DSM_OK) {
        return rc;
    }
    rc = fetch_locked(func, o, v);
    bool wrote = false;
    if (rc == DSM_OK) {
        memcpy(&cur, o->cache + off, sizeof cur);
        if (cur == expected &&
            (rc = write_locked(func, o, v, off, &desired, sizeof desired)) == DSM_OK) {
            wrote = true;
        }
    }
    int grc = lock_give(func, o, v, wrote ? v + 1 : v);
    if (rc == DSM_OK && grc == DSM_OK) {
        *old = cur;
        dsmi_count(&dsmi_stat.repl_cas, 1);
    }
    return rc != DSM_OK ? rc : grc;
}

int dsm_repl_read(dsm_repl_t o, size_t off, void *buf, size_t n)
{
    static const char *const func = "dsm_repl_read";
    int rc = check_obj(func, o, off, n);
    if (rc != DSM_OK || n == 0) {
        return rc;
    }
    if (buf == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "buf is NULL with n = %zu", n);
    }
    const struct ent *e = ent(o->idx);
    for (;;) {
        uint64_t w, v;
        if ((rc = word_load(func, e, &w)) != DSM_OK) {
            return rc;
        }
        v = w >> 1; // the newest complete version, even while v + 1 is being written
        unsigned bad = 0;
        int state = FETCH_OK;
        if (o->cver != v && (rc = fetch(func, o, v, &bad, &state)) != DSM_OK) {
            return rc;
        }
        if (state == FETCH_OK) {
            memcpy(buf, o->cache + off, n);
            dsmi_count(&dsmi_stat.repl_reads, 1);
            return bad != 0 ? repair(func, o, v, bad) : DSM_OK;
        }
    }
}

/* Collective check that name, size and copies are the same on every rank. */
static int same_everywhere(const char *func, const char *name, uint64_t size, int copies)
{
    struct {
        char name[DSM_CKPT_NAME_MAX + 1];
        uint64_t size;
        int64_t copies;
    } mine = {.size = size, .copies = copies}, root;
    snprintf(mine.name, sizeof mine.name, "%s", name);
    root = mine;
    DSMI_MPI(func, MPI_Bcast(&root, (int)sizeof root, MPI_BYTE, 0, dsmi_rt.comm));
    int differ = memcmp(&mine, &root, sizeof mine) != 0, any = 0;
    DSMI_MPI(func, MPI_Allreduce(&differ, &any, 1, MPI_INT, MPI_LOR, dsmi_rt.comm));
    if (any) {
        return dsmi_fail(DSM_ERR_ARG, func,
                         "name, size and copies differ between ranks (rank 0: '%s', %llu, %lld)",
                         root.name, (unsigned long long)root.size, (long long)root.copies);
    }
    return DSM_OK;
}

static int check_alloc_args(const char *func, const char *name, size_t size, int copies,
                            const dsm_repl_t *out)
{
    DSMI_CHECK_UP(func);
    if (!rp.on) {
        return dsmi_fail(DSM_ERR_STATE, func,
                         "replicated objects are off (set DSM_REPL_SIZE, see mpidsm.h)");
    }
    if (out == NULL || name == NULL || name[0] == '\0' || strlen(name) > DSM_CKPT_NAME_MAX) {
        return dsmi_fail(DSM_ERR_ARG, func, "%s",
                         out == NULL    ? "out is NULL"
                         : name == NULL ? "name is NULL"
                                        : "name empty or longer than "
                                          "DSM_CKPT_NAME_MAX (31)");
    }
    if (size == 0 || size > UINT32_MAX) {
        return dsmi_fail(DSM_ERR_ARG, func, "size %zu: must be 1 .. 2^32 - 1 bytes", size);
    }
    if (copies < 1 || copies > DSM_REPL_MAX_COPIES || copies > dsmi_rt.nranks) {
        return dsmi_fail(DSM_ERR_ARG, func, "copies %d: must be 1 .. %d and at most the %d ranks",
                         copies, DSM_REPL_MAX_COPIES, dsmi_rt.nranks);
    }
    return DSM_OK;
}

static int find_name(const char *name)
{
    for (uint32_t i = 0; i < hdr()->used; i++) {
        if (ent((int)i)->live && strcmp(ent((int)i)->name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Choose the entry for a new object: a freed one of the same shape, else a new one whose
 * areas fit every holder's store. The same choice on every rank (the tables agree). */
static int place(const char *func, const char *name, size_t size, int copies, int *idx)
{
    for (uint32_t i = 0; i < hdr()->used; i++) {
        struct ent *e = ent((int)i);
        if (!e->live && e->size == size && e->copies == (uint32_t)copies) {
            *idx = (int)i;
            return DSM_OK;
        }
    }
    if (hdr()->used >= DSM_REPL_MAX_OBJECTS) {
        return dsmi_fail(DSM_ERR_NOMEM, func, "'%s': all %d objects are in use", name,
                         DSM_REPL_MAX_OBJECTS);
    }
    struct ent *e = ent((int)hdr()->used);
    memset(e, 0, ENT_SIZE);
    e->size = size;
    e->copies = (uint32_t)copies;
    choose_holders(e, (int)hdr()->used);
    for (int c = 0; c < copies; c++) {
        e->off[c] = store_end(e->holder[c]);
        if (e->off[c] + area_len(e) > rp.size) {
            return dsmi_fail(DSM_ERR_NOMEM, func,
                             "'%s' (%zu bytes) does not fit rank %d's store: DSM_REPL_SIZE=%zu",
                             name, size, e->holder[c], rp.size);
        }
    }
    *idx = (int)hdr()->used++;
    return DSM_OK;
}

/* Make entry idx the live object name at version 1 (zeros) in this rank's store. */
static void make_live(int idx, const char *name)
{
    struct ent *e = ent(idx);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->ident = (++hdr()->gen << 16) ^ (uint64_t)idx;
    e->live = 1;
    int c = my_copy(e);
    if (c >= 0) {
        unsigned char *a = rp.base + e->off[c];
        memset(a, 0, area_len(e));
        unsigned char *zero = calloc(1, pad8(e->size));
        DSM_ASSERT(zero != NULL);
        slot_make(e, a + WORD_SIZE + slot_len(e), 1, zero); // version 1 lives in slot 1
        free(zero);
        if (c == 0) {
            uint64_t w = UINT64_C(1) << 1;
            memcpy(a, &w, sizeof w);
        }
    }
    hdr()->table_crc = table_crc();
}

int dsm_repl_alloc(const char *name, size_t size, int copies, dsm_repl_t *out)
{
    static const char *const func = "dsm_repl_alloc";
    int rc = check_alloc_args(func, name, size, copies, out);
    if (!dsmi_rt.up || !rp.on) {
        return rc; // nothing collective can run
    }
    if ((rc = agree(rc)) != DSM_OK) {
        return rc == DSM_ERR_MPI ? rc : dsmi_fail(rc, func, "a rank's arguments are invalid");
    }
    if ((rc = same_everywhere(func, name, size, copies)) != DSM_OK) {
        return rc;
    }
    if (find_name(name) >= 0) {
        return dsmi_fail(DSM_ERR_BUSY, func,
                         "'%s' already names a replicated object (dsm_repl_attach finds it)", name);
    }
    int idx = -1;
    if ((rc = place(func, name, size, copies, &idx)) != DSM_OK) {
        return rc;
    }
    make_live(idx, name);
    if ((rc = handle_init(idx)) != DSM_OK) {
        return dsmi_fail(rc, func, "no memory for the handle of '%s'", name);
    }
    publish(); // the new copies are public before any rank uses them
    DSMI_MPI(func, MPI_Barrier(dsmi_rt.comm));
    *out = &rp.obj[idx];
    return DSM_OK;
}

bool dsm_repl_exists(const char *name)
{
    return dsmi_rt.up && rp.on && name != NULL && find_name(name) >= 0;
}

int dsm_repl_attach(const char *name, dsm_repl_t *out)
{
    static const char *const func = "dsm_repl_attach";
    DSMI_CHECK_UP(func);
    if (!rp.on) {
        return dsmi_fail(DSM_ERR_STATE, func,
                         "replicated objects are off (set DSM_REPL_SIZE, see mpidsm.h)");
    }
    if (name == NULL || out == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "%s is NULL", name == NULL ? "name" : "out");
    }
    int idx = find_name(name);
    if (idx < 0) {
        return dsmi_fail(DSM_ERR_NOTFOUND, func, "no replicated object '%s'", name);
    }
    int rc = check_obj(func, &rp.obj[idx], 0, 0);
    if (rc == DSM_OK) {
        *out = &rp.obj[idx];
    }
    return rc;
}

int dsm_repl_free(dsm_repl_t o)
{
    static const char *const func = "dsm_repl_free";
    DSMI_CHECK_UP(func);
    if (!rp.on) { // DSM_REPL_SIZE agrees: the same on every rank
        return dsmi_fail(DSM_ERR_STATE, func, "replicated objects are off");
    }
    int rc = DSM_OK;
    if (o == NULL || o < rp.obj || o >= rp.obj + DSM_REPL_MAX_OBJECTS ||
        (uint32_t)o->idx >= hdr()->used || !ent(o->idx)->live || o->cache == NULL) {
        rc = dsmi_fail(DSM_ERR_INVALID, func, "not a live replicated object");
    }
    int all = agree(rc);
    if (all != DSM_OK) {
        return rc != DSM_OK ? rc : dsmi_fail(all, func, "another rank's object is invalid");
    }
    int idx = o->idx, root = idx, differ;
    DSMI_MPI(func, MPI_Bcast(&root, 1, MPI_INT, 0, dsmi_rt.comm));
    differ = root != idx;
    DSMI_MPI(func, MPI_Allreduce(MPI_IN_PLACE, &differ, 1, MPI_INT, MPI_LOR, dsmi_rt.comm));
    if (differ) {
        return dsmi_fail(DSM_ERR_ARG, func, "the ranks free different objects");
    }
    DSMI_MPI(func, MPI_Barrier(dsmi_rt.comm)); // nobody still uses it
    ent(idx)->live = 0;
    hdr()->gen++;
    hdr()->table_crc = table_crc();
    free(o->cache);
    free(o->slot);
    *o = (struct dsm_repl){.idx = idx};
    return DSM_OK;
}

int dsmi_repl_copy_slot(dsm_repl_t o, int c, int *rank, void **addr)
{
    if (!rp.on || o == NULL || o->cache == NULL || c < 0 || c >= (int)ent(o->idx)->copies) {
        return DSM_ERR_ARG;
    }
    const struct ent *e = ent(o->idx);
    uint64_t w;
    memcpy(&w, rp.base + e->off[0], sizeof w); // meaningful on the first holder only
    int rc = word_load("dsmi_repl_copy_slot", e, &w);
    *rank = e->holder[c];
    *addr = *rank == dsmi_rt.rank ? rp.base + slot_disp(e, c, w >> 1) : NULL;
    return rc;
}
