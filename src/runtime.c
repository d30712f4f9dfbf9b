/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * dsm_init and dsm_finalize: the order in which subsystems start and stop.
 *
 * Start: parse settings (locally) -> MPI (if the program has not) -> private
 * communicator -> agree that every rank parsed its settings and that the AGREE ones
 * match -> topology -> segment size -> window -> the subsystems in the table below.
 * Every step is collective and every rank takes the same branch, because a failure
 * found on one rank is shared by an allreduce before the next collective step.
 * Stop runs the started steps in reverse.
 */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "heap.h"
#include "progress.h"
#include "repl.h"
#include "sync.h"
#include "topo.h"
#include "win.h"

struct dsmi_state dsmi_rt = {.rank = -1, .comm = MPI_COMM_NULL};

/* Subsystems on top of the window, started in order and stopped in reverse. */
struct subsystem {
    const char *name;
    int (*start)(void);
    int (*stop)(void);
};
static const struct subsystem subsystems[] = {
    {"progress", dsmi_progress_start, dsmi_progress_stop}, // stops last: others may need it
    {"heap", dsmi_heap_start, dsmi_heap_stop},
    {"sync", dsmi_sync_start, dsmi_sync_stop},
    {"ckpt", dsmi_ckpt_start, dsmi_ckpt_stop}, // after the heap: restores its bytes
    {"repl", dsmi_repl_start, dsmi_repl_stop}, // after ckpt: uses the job's name
};
#define NSUB (sizeof subsystems / sizeof subsystems[0])
static bool started[NSUB];

static const int thread_levels[] = {MPI_THREAD_SINGLE, MPI_THREAD_FUNNELED, MPI_THREAD_SERIALIZED,
                                    MPI_THREAD_MULTIPLE};

/* Combine a local result across ranks: every rank gets the largest code (0 = OK). */
static int agree(int rc)
{
    int all = rc;
    if (MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, dsmi_rt.comm) != MPI_SUCCESS) {
        return DSM_ERR_MPI;
    }
    return all;
}

/* Segment size: DSM_HEAP_SIZE, or node memory / ranks per node / 8 in [16 MiB, 1 GiB]. */
static int segment_size(size_t *out)
{
    const size_t min = DSMI_HDR_SIZE + ((size_t)1 << 20), max = DSM_GPTR_MAX_OFFSET + 1;
    size_t size = dsmi_rt.cfg.HEAP_SIZE;
    if (size == 0) {
        const dsm_topo_t *t = dsmi_topo();
        size = (size_t)(t->node_memory / (uint64_t)t->local_ranks / 8);
        size = size < ((size_t)16 << 20) ? (size_t)16 << 20 : size;
        size = size > ((size_t)1 << 30) ? (size_t)1 << 30 : size;
        size &= ~(((size_t)1 << 20) - 1);
        // Nodes may differ; all segments must have one size, so take the smallest.
        unsigned long long mine = size, least = size;
        DSMI_MPI("dsm_init",
                 MPI_Allreduce(&mine, &least, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, dsmi_rt.comm));
        size = (size_t)least;
    }
    if (size < min || size > max || size % 8 != 0) {
        return dsmi_fail(DSM_ERR_ENV, "dsm_init",
                         "DSM_HEAP_SIZE=%zu is outside %zu..%zu bytes or not a multiple of 8", size,
                         min, max);
    }
    // Segments are touched lazily, but a node cannot back more than its memory.
    const dsm_topo_t *t = dsmi_topo();
    if (t->node_memory && (uint64_t)size > t->node_memory / (uint64_t)t->local_ranks) {
        return dsmi_fail(DSM_ERR_NOMEM, "dsm_init",
                         "DSM_HEAP_SIZE=%zu for each of the %d ranks on this node exceeds its "
                         "%llu bytes of memory",
                         size, t->local_ranks, (unsigned long long)t->node_memory);
    }
    *out = size;
    return DSM_OK;
}

/* Initialise MPI when the program has not; check the thread level either way. */
static int start_mpi(int *argc, char ***argv, bool parsed)
{
    int up = 0, down = 0, provided = MPI_THREAD_SINGLE;
    MPI_Finalized(&down);
    if (down) {
        return dsmi_fail(DSM_ERR_STATE, "dsm_init", "MPI has already been finalised");
    }
    int want = parsed ? thread_levels[dsmi_rt.cfg.THREADS] : MPI_THREAD_SINGLE;
    MPI_Initialized(&up);
    if (!up) {
        dsmi_win_prepare_mpi();
        // Passive progress may need more than DSM_THREADS asks for (progress.c).
        int ask = parsed ? dsmi_progress_thread_level(want) : want;
        if (MPI_Init_thread(argc, argv, ask, &provided) != MPI_SUCCESS) {
            return dsmi_fail(DSM_ERR_MPI, "dsm_init", "MPI_Init_thread failed");
        }
        dsmi_rt.own_mpi = true;
    } else {
        MPI_Query_thread(&provided);
    }
    dsmi_rt.mt = provided == MPI_THREAD_MULTIPLE;
    return provided >= want ? DSM_OK : DSM_ERR_STATE;
}

static void print_banner(void)
{
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, "\n")] = '\0';
    dsmi_log(DSMI_LOG_ALWAYS, "mpidsm %d.%d.%d on %s%s", DSM_VERSION_MAJOR, DSM_VERSION_MINOR,
             DSM_VERSION_PATCH, lib, dsmi_debug_asserts() ? " (debug assertions on)" : "");
    dsmi_topo_dump();
    dsmi_log(DSMI_LOG_ALWAYS, "segment: %zu bytes per rank (%zu for the header)%s", dsmi_w.size,
             (size_t)DSMI_HDR_SIZE,
             dsmi_direct()   ? ", shared-memory window, direct load/store to every rank"
             : dsmi_hybrid() ? ", node-shared segments: load/store on this node, MPI beyond"
             : dsmi_w.shared ? ", shared-memory window"
                             : "");
    if (dsmi_win_needs_progress()) {
        dsmi_log(DSMI_LOG_ALWAYS, "passive progress: %s",
                 dsmi_progress_running() ? "a thread polls MPI (DSM_PROGRESS_INTERVAL)" : "none");
    }
    dsmi_env_dump(&dsmi_rt.cfg);
}

static int start_subsystems(void)
{
    for (size_t i = 0; i < NSUB; i++) {
        int rc = agree(subsystems[i].start());
        if (rc != DSM_OK) {
            return rc;
        }
        started[i] = true;
    }
    return DSM_OK;
}

static void stop_subsystems(void)
{
    for (size_t i = NSUB; i-- > 0;) {
        if (started[i]) {
            subsystems[i].stop();
            started[i] = false;
        }
    }
}

/* Undo whatever init_on reached; used by a failed dsm_init and by dsm_finalize. */
static void teardown(void)
{
    stop_subsystems();
    dsmi_win_destroy();
    dsmi_topo_fini();
    if (dsmi_rt.comm != MPI_COMM_NULL) {
        MPI_Comm_free(&dsmi_rt.comm);
    }
    if (dsmi_rt.own_mpi) {
        MPI_Finalize();
    }
    bool keep_cfg = dsmi_rt.cfg_valid;
    struct dsmi_settings cfg = dsmi_rt.cfg;
    dsmi_rt = (struct dsmi_state){.rank = -1, .comm = MPI_COMM_NULL};
    dsmi_rt.cfg = cfg; // logging after finalize still honours DSM_LOG_LEVEL
    dsmi_rt.cfg_valid = keep_cfg;
}

static int init_on(MPI_Comm comm, bool parsed, const char *why)
{
    int rc = DSM_OK;
    if (MPI_Comm_dup(comm, &dsmi_rt.comm) != MPI_SUCCESS) {
        rc = dsmi_fail(DSM_ERR_MPI, "dsm_init", "MPI_Comm_dup failed");
        goto out; // collective: every rank fails here alike
    }
    MPI_Comm_set_errhandler(dsmi_rt.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(dsmi_rt.comm, &dsmi_rt.rank);
    MPI_Comm_size(dsmi_rt.comm, &dsmi_rt.nranks);
    if ((rc = agree(parsed ? DSM_OK : DSM_ERR_ENV)) != DSM_OK) {
        rc = dsmi_fail(rc, "dsm_init", "%s", parsed ? "another rank has a bad DSM_* setting" : why);
        goto out;
    }
    if ((rc = agree(dsmi_env_check_agree(&dsmi_rt.cfg, dsmi_rt.comm))) != DSM_OK) {
        goto out;
    }
    if (dsmi_rt.nranks > DSM_GPTR_MAX_RANKS) {
        rc = dsmi_fail(DSM_ERR_UNSUPPORTED, "dsm_init",
                       "%d ranks exceed the %ld a global "
                       "pointer can address",
                       dsmi_rt.nranks, (long)DSM_GPTR_MAX_RANKS);
        goto out;
    }
    size_t size = 0;
    int nseg = dsmi_rt.nranks; // more after a restart on fewer ranks (win.h, ckpt_regroup.c)
    if ((rc = agree(dsmi_topo_init())) != DSM_OK || (rc = agree(segment_size(&size))) != DSM_OK ||
        (rc = agree(dsmi_ckpt_probe(&size, &nseg))) != DSM_OK ||
        (rc = agree(dsmi_win_create(size, nseg, dsmi_topo()->nnodes == 1))) != DSM_OK) {
        goto out;
    }
    dsmi_rt.up = true; // subsystems use the data path while starting
    if ((rc = start_subsystems()) != DSM_OK) {
        goto out;
    }
    if (dsmi_rt.cfg.VERBOSE && dsmi_rt.rank == 0) {
        print_banner();
    }
    return DSM_OK;
out:
    teardown();
    return rc;
}

/* Parse the settings; on failure remember why (reported once MPI is up). */
static bool parse_settings(char *why, size_t len)
{
    if (dsmi_env_parse(&dsmi_rt.cfg, why, len) != DSM_OK) {
        dsmi_rt.cfg_valid = false;
        return false;
    }
    dsmi_rt.cfg_valid = true;
    return true;
}

int dsm_init(int *argc, char ***argv)
{
    char why[300] = "";
    if (dsmi_rt.up) {
        return dsmi_fail(DSM_ERR_STATE, "dsm_init", "mpidsm is already initialised");
    }
    memset(&dsmi_stat, 0, sizeof dsmi_stat);
    bool parsed = parse_settings(why, sizeof why);
    int rc = start_mpi(argc, argv, parsed);
    if (rc == DSM_ERR_STATE) {
        if (dsmi_rt.own_mpi) {
            MPI_Finalize();
            dsmi_rt.own_mpi = false;
        }
        return dsmi_fail(rc, "dsm_init",
                         "MPI does not provide the thread level DSM_THREADS "
                         "asks for");
    }
    if (rc != DSM_OK) {
        return rc;
    }
    return init_on(MPI_COMM_WORLD, parsed, why);
}

int dsm_init_comm(MPI_Comm comm)
{
    char why[300] = "";
    int up = 0, down = 0;
    if (dsmi_rt.up) {
        return dsmi_fail(DSM_ERR_STATE, "dsm_init_comm", "mpidsm is already initialised");
    }
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (!up || down || comm == MPI_COMM_NULL) {
        return dsmi_fail(up && !down ? DSM_ERR_ARG : DSM_ERR_STATE, "dsm_init_comm", "%s",
                         up && !down ? "comm is MPI_COMM_NULL"
                                     : "MPI must be initialised (and not finalised) first");
    }
    memset(&dsmi_stat, 0, sizeof dsmi_stat);
    bool parsed = parse_settings(why, sizeof why);
    int rc = start_mpi(NULL, NULL, parsed);
    if (rc != DSM_OK) {
        return dsmi_fail(rc, "dsm_init_comm",
                         "MPI does not provide the thread level "
                         "DSM_THREADS asks for");
    }
    return init_on(comm, parsed, why);
}

static void print_stats(void)
{
    dsm_stats_t s;
    dsm_stats(&s);
    dsmi_log(DSMI_LOG_ALWAYS,
             "stats: %llu puts (%llu B), %llu gets (%llu B), %llu atomics, %llu flushes "
             "(%.3f ms), %llu errors; by path: %llu direct (load/store), %llu MPI; replicated "
             "objects: %llu writes, %llu reads, %llu cas, %llu copies repaired",
             (unsigned long long)s.puts, (unsigned long long)s.bytes_put,
             (unsigned long long)s.gets, (unsigned long long)s.bytes_got,
             (unsigned long long)s.atomics, (unsigned long long)s.flushes, s.flush_ns / 1e6,
             (unsigned long long)s.errors, (unsigned long long)s.ops_direct,
             (unsigned long long)s.ops_mpi, (unsigned long long)s.repl_writes,
             (unsigned long long)s.repl_reads, (unsigned long long)s.repl_cas,
             (unsigned long long)s.repl_repairs);
}

int dsm_finalize(void)
{
    DSMI_CHECK_UP("dsm_finalize");
    int rc = DSMI_CALL_AS("dsm_finalize", dsm_barrier());
    if (dsmi_rt.cfg.STATS) {
        print_stats();
    }
    teardown();
    return rc;
}

bool dsm_initialized(void)
{
    return dsmi_rt.up;
}

int dsm_rank(void)
{
    return dsmi_rt.up ? dsmi_rt.rank : -1;
}

int dsm_nranks(void)
{
    return dsmi_rt.up ? dsmi_rt.nranks : 0;
}

int dsm_nsegments(void)
{
    return dsmi_rt.up ? dsmi_w.nseg : 0;
}

MPI_Comm dsm_comm(void)
{
    return dsmi_rt.up ? dsmi_rt.comm : MPI_COMM_NULL;
}

int dsm_stats(dsm_stats_t *out)
{
    DSMI_CHECK_UP("dsm_stats");
    if (out == NULL) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_stats", "out is NULL");
    }
    *out = (dsm_stats_t){dsmi_stat.puts,      dsmi_stat.gets,        dsmi_stat.bytes_put,
                         dsmi_stat.bytes_got, dsmi_stat.atomics,     dsmi_stat.flushes,
                         dsmi_stat.flush_ns,  dsmi_stat.errors,      dsmi_stat.ops_direct,
                         dsmi_stat.ops_mpi,   dsmi_stat.repl_writes, dsmi_stat.repl_reads,
                         dsmi_stat.repl_cas,  dsmi_stat.repl_repairs};
    return DSM_OK;
}
