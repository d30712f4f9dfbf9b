/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Window creation and teardown.
 *
 * One MPI window holds every rank's segment for the life of the runtime, and one
 * passive-target epoch (MPI_Win_lock_all with MPI_MODE_NOCHECK) is open on it from
 * dsm_init to dsm_finalize; operations complete with MPI_Win_flush*. Each window is
 * DSMI_SEG_ALIGN bytes longer than the segment, which starts at the first such boundary
 * in it; the ranks' pads are gathered into dsmi_translate's table (win.h). The ident header
 * is written locally before the barrier that ends creation, so every rank may read any
 * other rank's header after dsm_init returns.
 *
 * Open MPI before 4.1.5 (Debian 12 ships 4.1.4): MPI_Compare_and_swap on a window of
 * osc rdma over the shared-memory BTL crashes with SIGSEGV (Open MPI issues 7027 and
 * 11349, fixed by PR 10513). osc sm and pt2pt are correct. So:
 *  1. when mpidsm initialises MPI itself, it sets OMPI_MCA_osc=sm,pt2pt first (unless
 *     the user set OMPI_MCA_osc): sm serves one node, pt2pt spans nodes;
 *  2. when MPI was already initialised, it reads the "osc" control variable through
 *     MPI_T; if osc rdma may be selected and all ranks share one node, the window is
 *     made with MPI_Win_allocate_shared, which osc rdma declines, so osc sm serves it;
 *  3. otherwise compare-and-swap is refused with DSM_ERR_UNSUPPORTED and a message that
 *     says how to relaunch (dsmrun does step 1 for the whole job).
 *
 * Direct mode (DSM_DIRECT=1, the default, and every rank on one node): the window is made
 * with MPI_Win_allocate_shared and every rank maps every segment (MPI_Win_shared_query),
 * so rma.c, the heap and the locks move data with memcpy and use CPU atomics, as OSHMPI
 * does for on-node targets: an 8-byte put is a store and a fence instead of an MPI call
 * and a flush. It needs the unified memory model and every segment mapped (checked on all
 * ranks); otherwise mpidsm keeps MPI calls and says why at info level. osc sm backs an
 * MPI_Win_allocate window on one node with the same shared memory, so this costs no
 * more memory than the ordinary window.
 *
 * Hybrid mode (DSM_DIRECT=1, ranks on several nodes; design decision 6): each rank's
 * segment is a POSIX shared-memory object (shm_open in the node's /dev/shm, named after
 * the launch id and the rank), which every rank of the same node maps; the job-wide
 * window is MPI_Win_create over that memory. Same-node peers then move data with loads
 * and stores, other nodes with MPI RMA, and atomics follow the rule in win.h (MPI for
 * every target). mpidsm maps the objects itself rather than through
 * MPI_Win_allocate_shared because Open MPI's osc ucx and pt2pt refuse shared windows
 * (only osc sm makes them, and a job across nodes is launched without it), and because
 * its own mappings can start at a DSMI_SEG_ALIGN boundary in every process, so the pads
 * are zero and DSM_MAX_ALIGN holds for a same-node pointer too (dsm_ptr). The objects are
 * unlinked as soon as every rank of the node has mapped them, so nothing is left in
 * /dev/shm after the job, however it ends. Any failure on any rank (no /dev/shm, a
 * window without the unified memory model) falls back to MPI mode on every rank.
 */
#include "win.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "topo.h"

struct dsmi_win dsmi_w = {.win = MPI_WIN_NULL};

/* Open MPI's version from the run-time library string, or 0 when it is not Open MPI. */
static int ompi_version(void)
{
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0, major = 0, minor = 0, patch = 0;
    if (MPI_Get_library_version(lib, &len) != MPI_SUCCESS) {
        return 0;
    }
    const char *p = strstr(lib, "Open MPI v");
    if (p == NULL || sscanf(p, "Open MPI v%d.%d.%d", &major, &minor, &patch) < 2) {
        return 0;
    }
    return major * 10000 + minor * 100 + patch;
}

static bool ompi_cas_affected(void)
{
    int v = ompi_version();
    return v != 0 && v < 40105;
}

void dsmi_win_prepare_mpi(void)
{
    if (dsmi_rt.cfg.OMPI_OSC_FIX && ompi_cas_affected()) {
        setenv("OMPI_MCA_osc", "sm,pt2pt", 0); // 0: a user's own choice wins
    }
}

/* Open MPI's "osc" MCA variable (read through MPI_T) into value, "" when it is unset or
 * cannot be read (Open MPI's default list), always "" for other MPIs. Also for dsm-info. */
void dsmi_win_osc_setting(char *value, size_t cap)
{
    value[0] = '\0';
#ifdef OPEN_MPI
    int provided, idx, count, level = MPI_THREAD_SINGLE;
    /* Open MPI 4.1's MPI_T_init_thread overwrites the level MPI_Query_thread reports (and
     * its thread-multiple flag) with the one asked for here: ask for the current one. */
    MPI_Query_thread(&level);
    if (MPI_T_init_thread(level, &provided) != MPI_SUCCESS) {
        return;
    }
    MPI_T_cvar_handle h;
    if (MPI_T_cvar_get_index("osc", &idx) == MPI_SUCCESS &&
        MPI_T_cvar_handle_alloc(idx, NULL, &h, &count) == MPI_SUCCESS) {
        if (count < (int)cap && MPI_T_cvar_read(h, value) != MPI_SUCCESS) {
            value[0] = '\0';
        }
        MPI_T_cvar_handle_free(&h);
    }
    MPI_T_finalize();
#else
    (void)cap;
#endif
}

/* Whether an include ("a,b") or exclude ("^a,b") list lets component name be selected;
 * an empty list allows everything. */
static bool osc_allows(const char *list, const char *name)
{
    if (list[0] == '\0') {
        return true;
    }
    bool listed = strstr(list, name) != NULL;
    return list[0] == '^' ? !listed : listed;
}

/* Bytes of this rank's window part: its nslots slots, stride apart, plus DSMI_SEG_ALIGN
 * so slot 0 can start at the first DSMI_SEG_ALIGN boundary inside it (win.h). */
static MPI_Aint window_len(void)
{
    return (MPI_Aint)((size_t)(dsmi_w.nslots - 1) * dsmi_w.stride + dsmi_w.size + DSMI_SEG_ALIGN);
}

/* The window (window_len bytes here). Sets dsmi_w.base and *pad. */
static int allocate(bool shared, MPI_Info info, MPI_Aint *pad)
{
    void *raw = NULL;
    MPI_Aint len = window_len();
    int mrc = shared ? MPI_Win_allocate_shared(len, 1, info, dsmi_rt.comm, &raw, &dsmi_w.win)
                     : MPI_Win_allocate(len, 1, info, dsmi_rt.comm, &raw, &dsmi_w.win);
    if (mrc != MPI_SUCCESS && dsmi_w.nslots > 1) {
        return dsmi_fail(DSM_ERR_NOMEM, "dsm_init",
                         "cannot allocate %lld bytes for the %d segments this rank hosts after a "
                         "restart on %d ranks (%d segments of %zu bytes)",
                         (long long)len, dsmi_w.nslots, dsmi_rt.nranks, dsmi_w.nseg, dsmi_w.size);
    }
    if (mrc != MPI_SUCCESS) {
        const char *what = shared ? "MPI_Win_allocate_shared" : "MPI_Win_allocate";
        return dsmi_fail_mpi(mrc, "dsm_init", what, __FILE__, __LINE__);
    }
    *pad = (MPI_Aint)(-(uintptr_t)raw & (DSMI_SEG_ALIGN - 1));
    dsmi_w.base = (char *)raw + *pad;
    return DSM_OK;
}

/* dsmi_translate's table from every rank's pad (MPI path; direct mode leaves pads out):
 * segment s lives on rank s % nranks, slot s / nranks (win.h). */
static void fill_table(const MPI_Aint *pads)
{
    for (int s = 0; s < dsmi_w.nseg; s++) {
        int h = s % dsmi_rt.nranks, slot = s / dsmi_rt.nranks;
        dsmi_w.host[s] = h;
        dsmi_w.disp0[s] = (pads ? pads[h] : 0) + (MPI_Aint)slot * (MPI_Aint)dsmi_w.stride;
    }
}

/* Collective: every rank's pad into dsmi_translate's table. A pad that
 * is not a multiple of 8 (a window base MPI did not align to 8 bytes, never seen) is
 * refused on every rank: an aligned offset would then be a misaligned displacement,
 * and rma.c checks an atomic's alignment on its displacement. */
static int gather_pads(MPI_Aint pad)
{
    size_t n = (size_t)dsmi_w.nseg;
    MPI_Aint *pads = malloc((size_t)dsmi_rt.nranks * sizeof *pads);
    dsmi_w.disp0 = malloc(n * sizeof *dsmi_w.disp0);
    dsmi_w.host = malloc(n * sizeof *dsmi_w.host);
    bool mem = pads && dsmi_w.disp0 && dsmi_w.host;
    int ok = mem && pad % 8 == 0;
    DSMI_MPI("dsm_init", MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, dsmi_rt.comm));
    if (!ok) {
        free(pads);
        return dsmi_fail(!mem ? DSM_ERR_NOMEM : DSM_ERR_UNSUPPORTED, "dsm_init",
                         "no memory for the displacement table, or MPI returned a window "
                         "base that is not 8-byte aligned (here: %ld mod 8)",
                         (long)(pad % 8));
    }
    int mrc = MPI_Allgather(&pad, 1, MPI_AINT, pads, 1, MPI_AINT, dsmi_rt.comm);
    if (mrc == MPI_SUCCESS) {
        fill_table(pads);
    }
    free(pads);
    if (mrc != MPI_SUCCESS) {
        return dsmi_fail_mpi(mrc, "dsm_init", "MPI_Allgather", __FILE__, __LINE__);
    }
    return DSM_OK;
}

static uint64_t launch_id(void)
{
    uint64_t id = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid() ^ dsmi_now_ns();
    MPI_Bcast(&id, 1, MPI_UINT64_T, 0, dsmi_rt.comm);
    return id;
}

/* Direct mode: map every rank's segment, or leave dsmi_w.peer NULL. Collective: every
 * check feeds one allreduce, so all ranks decide the same even if one sees otherwise. */
static int map_peers(void)
{
    int *model = NULL, flag = 0;
    bool unified = MPI_Win_get_attr(dsmi_w.win, MPI_WIN_MODEL, &model, &flag) == MPI_SUCCESS &&
                   flag && *model == MPI_WIN_UNIFIED;
    if (!unified) {
        dsmi_log(DSMI_LOG_INFO, "direct mode off: the shared window's memory model is not unified");
    }
    char **peer = unified ? calloc((size_t)dsmi_rt.nranks, sizeof *peer) : NULL;
    int ok = peer != NULL;
    for (int r = 0; ok && r < dsmi_rt.nranks; r++) {
        MPI_Aint sz = 0;
        int du = 0;
        void *p = NULL;
        // Slot 0 of rank r is segment r: the table holds r's pad there.
        ok = MPI_Win_shared_query(dsmi_w.win, r, &sz, &du, &p) == MPI_SUCCESS && p != NULL &&
             (size_t)sz >= dsmi_w.size + DSMI_SEG_ALIGN;
        // The owner's pad: where its segment starts is fixed by its own mapping.
        peer[r] = ok ? (char *)p + dsmi_w.disp0[r] : NULL;
    }
    // All or nothing, on every rank (see dsmi_peer in win.h).
    int mrc = MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, dsmi_rt.comm);
    if (mrc != MPI_SUCCESS) {
        free(peer);
        return dsmi_fail_mpi(mrc, "dsm_init", "MPI_Allreduce", __FILE__, __LINE__);
    }
    if (!ok) {
        free(peer);
        dsmi_log(DSMI_LOG_INFO, "direct mode off: a segment could not be mapped");
        return DSM_OK;
    }
    dsmi_w.peer = peer;
    dsmi_w.direct = true;
    dsmi_w.npeers = dsmi_rt.nranks;
    // Direct mode addresses a segment from its host's peer pointer: slot * stride.
    fill_table(NULL);
    return DSM_OK;
}

/* ---- hybrid mode: node-shared segments under one job-wide window ---- */

/* Bytes mapped for rank r: its slots (win.h), stride apart, the last in whole pages. */
static size_t map_len(int r)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    int nslots = (dsmi_w.nseg - r + dsmi_rt.nranks - 1) / dsmi_rt.nranks;
    return (size_t)(nslots - 1) * dsmi_w.stride + (dsmi_w.size + page - 1) / page * page;
}

static void shm_name(char *name, size_t cap, uint64_t id, int rank)
{
    snprintf(name, cap, "/mpidsm-%016llx-%d", (unsigned long long)id, rank);
}

/* Map len bytes of fd at the first DSMI_SEG_ALIGN boundary of a reserved range (the
 * slack around it is given back), or NULL. */
static char *map_aligned(int fd, size_t len)
{
    size_t span = len + DSMI_SEG_ALIGN;
    char *r = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) {
        return NULL;
    }
    char *a = r + (-(uintptr_t)r & (DSMI_SEG_ALIGN - 1));
    char *m = mmap(a, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
    if (a > r) {
        munmap(r, (size_t)(a - r));
    }
    if (r + span > a + len) {
        munmap(a + len, (size_t)(r + span - (a + len)));
    }
    if (m == MAP_FAILED) {
        munmap(a, len);
        return NULL;
    }
    return a;
}

/* Whether the file system under fd has room for the segments of the node (need bytes):
 * tmpfs objects are sparse, and a page touched beyond the file system's size would
 * kill the process with SIGBUS instead of failing an allocation. */
static bool room_for(int fd, size_t need)
{
    struct statvfs st;
    if (fstatvfs(fd, &st) != 0) {
        return false;
    }
    bool ok = (uint64_t)st.f_bavail * st.f_frsize >= need;
    if (!ok) {
        dsmi_log(DSMI_LOG_INFO,
                 "hybrid mode: /dev/shm has %llu bytes free, the node's segments "
                 "need %zu",
                 (unsigned long long)st.f_bavail * st.f_frsize, need);
    }
    return ok;
}

/* Open (create: this rank's own, checking room for the node's nlocal segments) the
 * shared-memory segment of rank and map it. */
static char *map_segment(uint64_t id, int rank, size_t len, bool create, int nlocal)
{
    char name[64];
    shm_name(name, sizeof name, id, rank);
    int fd = shm_open(name, create ? O_RDWR | O_CREAT | O_EXCL : O_RDWR, 0600);
    if (fd < 0) {
        dsmi_log(DSMI_LOG_INFO, "hybrid mode: shm_open(%s): %s", name, strerror(errno));
        return NULL;
    }
    char *p = NULL;
    if (!create || (room_for(fd, len * (size_t)nlocal) && ftruncate(fd, (off_t)len) == 0)) {
        p = map_aligned(fd, len);
    }
    if (p == NULL) {
        dsmi_log(DSMI_LOG_INFO, "hybrid mode: mapping %s (%zu bytes) failed", name, len);
        if (create) {
            shm_unlink(name); // never left behind
        }
    }
    close(fd);
    return p;
}

/* Unmap every segment mapped here (hybrid mode) and forget the table. */
static void unmap_segments(char **peer)
{
    for (int r = 0; peer != NULL && r < dsmi_rt.nranks; r++) {
        if (peer[r] != NULL) {
            munmap(peer[r], map_len(r));
        }
    }
    free(peer);
}

/* Collective: map this node's segments into peer[] (calloc'd, nranks entries). Every rank
 * learns whether all succeeded; the objects are unlinked once all have tried. */
static int map_node(uint64_t id, char **peer, int *ok)
{
    MPI_Comm node = dsmi_topo_node_comm();
    int lsize = 0;
    MPI_Comm_size(node, &lsize);
    int *ranks = malloc((size_t)lsize * sizeof *ranks);
    char name[64];
    shm_name(name, sizeof name, id, dsmi_rt.rank);
    peer[dsmi_rt.rank] = map_segment(id, dsmi_rt.rank, map_len(dsmi_rt.rank), true, lsize);
    *ok = ranks != NULL && peer[dsmi_rt.rank] != NULL;
    int mrc = MPI_Allreduce(MPI_IN_PLACE, ok, 1, MPI_INT, MPI_LAND, dsmi_rt.comm);
    if (mrc == MPI_SUCCESS && *ok) {
        mrc = MPI_Allgather(&dsmi_rt.rank, 1, MPI_INT, ranks, 1, MPI_INT, node);
    }
    for (int i = 0; mrc == MPI_SUCCESS && *ok && i < lsize; i++) {
        if (ranks[i] != dsmi_rt.rank) {
            peer[ranks[i]] = map_segment(id, ranks[i], map_len(ranks[i]), false, lsize);
            *ok = *ok && peer[ranks[i]] != NULL;
        }
    }
    if (mrc == MPI_SUCCESS) { // every rank has tried to map every object of its node
        mrc = MPI_Allreduce(MPI_IN_PLACE, ok, 1, MPI_INT, MPI_LAND, dsmi_rt.comm);
    }
    if (peer[dsmi_rt.rank] != NULL) {
        shm_unlink(name);
    }
    free(ranks);
    dsmi_w.npeers = lsize;
    return mrc == MPI_SUCCESS ? DSM_OK
                              : dsmi_fail_mpi(mrc, "dsm_init", "MPI_Allreduce", __FILE__, __LINE__);
}

/* Whether the window's memory model is unified on every rank (collective). */
static int agree_unified(int *ok)
{
    int *model = NULL, flag = 0;
    *ok = MPI_Win_get_attr(dsmi_w.win, MPI_WIN_MODEL, &model, &flag) == MPI_SUCCESS && flag &&
          *model == MPI_WIN_UNIFIED;
    DSMI_MPI("dsm_init", MPI_Allreduce(MPI_IN_PLACE, ok, 1, MPI_INT, MPI_LAND, dsmi_rt.comm));
    return DSM_OK;
}

/* Collective: hybrid mode's segments and window. *done false (and nothing kept): fall
 * back to MPI mode on every rank. */
static int create_hybrid(uint64_t id, bool *done)
{
    *done = false;
    char **peer = calloc((size_t)dsmi_rt.nranks, sizeof *peer);
    int ok = 0, rc;
    if (peer == NULL) {
        return dsmi_fail(DSM_ERR_NOMEM, "dsm_init", "no memory for the peer table");
    }
    if ((rc = map_node(id, peer, &ok)) != DSM_OK || !ok) {
        unmap_segments(peer);
        if (rc == DSM_OK) {
            dsmi_log(DSMI_LOG_INFO, "hybrid mode off: a node's segments could not be shared");
        }
        return rc;
    }
    dsmi_w.base = peer[dsmi_rt.rank];
    int mrc = MPI_Win_create(dsmi_w.base, (MPI_Aint)map_len(dsmi_rt.rank), 1, MPI_INFO_NULL,
                             dsmi_rt.comm, &dsmi_w.win);
    if (mrc != MPI_SUCCESS) {
        unmap_segments(peer);
        return dsmi_fail_mpi(mrc, "dsm_init", "MPI_Win_create", __FILE__, __LINE__);
    }
    MPI_Win_set_errhandler(dsmi_w.win, MPI_ERRORS_RETURN);
    if ((rc = agree_unified(&ok)) != DSM_OK || !ok) {
        MPI_Win_free(&dsmi_w.win);
        unmap_segments(peer);
        if (rc == DSM_OK) {
            dsmi_log(DSMI_LOG_INFO, "hybrid mode off: the window's memory model is not unified");
        }
        return rc;
    }
    dsmi_w.peer = peer;
    *done = true;
    return DSM_OK;
}

/* Undo a window whose creation failed after MPI made it (no epoch is open yet). */
static void create_failed(void)
{
    MPI_Win_free(&dsmi_w.win);
    if (dsmi_hybrid()) {
        unmap_segments(dsmi_w.peer); // after the window that exposes them
    }
    free(dsmi_w.disp0);
    free(dsmi_w.host);
    dsmi_w = (struct dsmi_win){.win = MPI_WIN_NULL};
}

/* The ident header of every slot: each names its segment, the job's segment count and
 * this run's launch id (collective: the id comes from rank 0). */
static void write_idents(size_t size)
{
    uint64_t id = launch_id();
    for (int k = 0; k < dsmi_w.nslots; k++) {
        memset(dsmi_slot_base(k), 0, DSMI_HDR_SIZE); // the heap initialises the rest itself
        struct dsmi_ident *p = (struct dsmi_ident *)(dsmi_slot_base(k) + DSMI_HDR_IDENT_OFF);
        *p = (struct dsmi_ident){DSMI_MAGIC, DSMI_LAYOUT_VERSION, DSMI_HDR_SIZE,
                                 size,       dsmi_slot_seg(k),    dsmi_w.nseg,
                                 id};
    }
}

int dsmi_win_create(size_t size, int nseg, bool single_node)
{
    char osc[4096]; // Open MPI 4.1 gives count 2048 for string variables
    dsmi_win_osc_setting(osc, sizeof osc);
    // A shared window needs osc sm on Open MPI (dsmrun --net forces pt2pt or ucx).
    bool direct = single_node && dsmi_rt.cfg.DIRECT && osc_allows(osc, "sm");
    // Open MPI's compare-and-swap on osc rdma (README): worked around with a shared window.
    bool affected = ompi_cas_affected() && osc_allows(osc, "rdma");
    /* Every rank must make the same kind of window (a collective) and take the same data
     * path, but the osc setting is read per process: agree. LAND of {direct, !affected,
     * fixable} = direct everywhere, affected nowhere, the work-around possible everywhere. */
    /* osc sm serves every window of a one-node Open MPI job it may serve: then the target
     * does nothing for an operation on its memory (progress.c). */
    bool osc_sm = single_node && ompi_version() != 0 && osc_allows(osc, "sm");
    int agree[4] = {direct, !affected, single_node && dsmi_rt.cfg.OMPI_OSC_FIX, osc_sm};
    DSMI_MPI("dsm_init", MPI_Allreduce(MPI_IN_PLACE, agree, 4, MPI_INT, MPI_LAND, dsmi_rt.comm));
    direct = agree[0];
    bool fix = !direct && !agree[1]; // some rank may reach osc rdma
    bool shared = direct || (fix && agree[2]);
    dsmi_rt.cas_broken = fix && !agree[2];
    if (dsmi_rt.cas_broken && dsmi_rt.rank == 0) {
        dsmi_log(DSMI_LOG_WARN, "Open MPI < 4.1.5 with osc rdma: compare-and-swap would crash and "
                                "is disabled; launch with dsmrun or --mca osc sm,pt2pt");
    }
    MPI_Info info;
    DSMI_MPI("dsm_init", MPI_Info_create(&info));
    if (shared) { // meaningful for shared windows only
        MPI_Info_set(info, "alloc_shared_noncontig", "true");
    }
    dsmi_w.size = size;
    dsmi_w.nseg = nseg;
    dsmi_w.nslots = (nseg - dsmi_rt.rank + dsmi_rt.nranks - 1) / dsmi_rt.nranks;
    dsmi_w.stride = (size + DSMI_SEG_ALIGN - 1) & ~(DSMI_SEG_ALIGN - 1);
    MPI_Aint pad = 0;
    uint64_t launch = launch_id();
    bool hybrid = false;
    // Several nodes: same-node peers by loads and stores where the node can share memory.
    int rc = !single_node && dsmi_rt.cfg.DIRECT ? create_hybrid(launch, &hybrid) : DSM_OK;
    if (rc == DSM_OK && !hybrid) {
        rc = allocate(shared, info, &pad);
    }
    MPI_Info_free(&info);
    if (rc != DSM_OK) {
        return rc;
    }
    dsmi_w.shared = shared;
    dsmi_w.passive = !shared && !agree[3];
    dsmi_w.direct = false;
    dsmi_w.disp0 = NULL;
    dsmi_w.host = NULL;
    if (!hybrid) {
        dsmi_w.peer = NULL;
        dsmi_w.npeers = 0;
    }
    MPI_Win_set_errhandler(dsmi_w.win, MPI_ERRORS_RETURN); // map_peers' queries may fail
    if ((rc = gather_pads(pad)) != DSM_OK || (direct && (rc = map_peers()) != DSM_OK)) {
        create_failed();
        return rc;
    }
    write_idents(size);
    DSMI_MPI("dsm_init", MPI_Win_lock_all(MPI_MODE_NOCHECK, dsmi_w.win));
    // Make the local header writes visible before any rank reads them.
    DSMI_MPI("dsm_init", MPI_Win_sync(dsmi_w.win));
    DSMI_MPI("dsm_init", MPI_Barrier(dsmi_rt.comm));
    return DSM_OK;
}

int dsmi_win_destroy(void)
{
    if (dsmi_w.win == MPI_WIN_NULL) {
        return DSM_OK;
    }
    // Best effort: whatever fails, the mapping is forgotten, so a later dsm_init never
    // copies through a stale one. Hybrid mode's own mappings go after the window.
    char **own = dsmi_hybrid() ? dsmi_w.peer : NULL;
    if (own == NULL) {
        free(dsmi_w.peer);
    }
    dsmi_w.peer = NULL;
    dsmi_w.direct = false;
    free(dsmi_w.disp0);
    dsmi_w.disp0 = NULL;
    free(dsmi_w.host);
    dsmi_w.host = NULL;
    int mrc = MPI_Win_flush_all(dsmi_w.win);
    const char *what = "MPI_Win_flush_all";
    if (mrc == MPI_SUCCESS && (mrc = MPI_Win_unlock_all(dsmi_w.win)) != MPI_SUCCESS) {
        what = "MPI_Win_unlock_all";
    }
    int frc = MPI_Win_free(&dsmi_w.win); // even after a failure above: never keep it
    unmap_segments(own);                 // size still known: dsmi_w is reset below
    if (mrc == MPI_SUCCESS && frc != MPI_SUCCESS) {
        mrc = frc;
        what = "MPI_Win_free";
    }
    dsmi_w = (struct dsmi_win){.win = MPI_WIN_NULL};
    if (mrc != MPI_SUCCESS) {
        return dsmi_fail_mpi(mrc, "dsm_finalize", what, __FILE__, __LINE__);
    }
    return DSM_OK;
}

int dsmi_win_create_lockwin(MPI_Win *win)
{
    uint64_t *base = NULL;
    // The same flavour as the data window, so Open MPI picks the same osc component.
    if (dsmi_w.shared) {
        DSMI_MPI("dsm_init",
                 MPI_Win_allocate_shared(8, 8, MPI_INFO_NULL, dsmi_rt.comm, &base, win));
    } else {
        DSMI_MPI("dsm_init", MPI_Win_allocate(8, 8, MPI_INFO_NULL, dsmi_rt.comm, &base, win));
    }
    MPI_Win_set_errhandler(*win, MPI_ERRORS_RETURN);
    // A local store is made public by an exclusive epoch on oneself (MPI-3.1 11.5.5).
    DSMI_MPI("dsm_init", MPI_Win_lock(MPI_LOCK_EXCLUSIVE, dsmi_rt.rank, 0, *win));
    *base = 0;
    DSMI_MPI("dsm_init", MPI_Win_unlock(dsmi_rt.rank, *win));
    DSMI_MPI("dsm_init", MPI_Barrier(dsmi_rt.comm)); // zeroed everywhere before first use
    return DSM_OK;
}

/* MPICH 4.0.2 (Debian 12's, ch4:ucx) can return from MPI_Win_flush_all before the data
 * of MPI_Get has arrived: element-wise gets from 4 ranks, one flush_all, read zeros in
 * 1 to 11 of 300 rounds of every run, on one node and across simulated nodes, and the
 * late data then landed in freed memory; MPI_Win_flush per target (and Open MPI's
 * flush_all) never did. So on MPICH a flush of every target is one MPI_Win_flush each. */
int dsmi_win_flush_all(MPI_Win win, int nranks, const char *func)
{
#ifdef MPICH_VERSION
    for (int r = 0; r < nranks; r++) {
        DSMI_MPI(func, MPI_Win_flush(r, win));
    }
#else
    (void)nranks;
    DSMI_MPI(func, MPI_Win_flush_all(win));
#endif
    return DSM_OK;
}

int dsmi_win_free_lockwin(MPI_Win *win)
{
    if (*win == MPI_WIN_NULL) {
        return DSM_OK;
    }
    DSMI_MPI("dsm_finalize", MPI_Win_free(win));
    return DSM_OK;
}
