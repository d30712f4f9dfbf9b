/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Passive progress (design decision 7). On the network paths the target's MPI library
 * carries out one-sided operations in software: Open MPI's osc pt2pt and osc ucx over
 * UCX's TCP, MPICH ch4:ucx over TCP. A target that computes without calling MPI stalls
 * every remote operation on its memory for as long as it computes (measured 1 s for a
 * 1 s computation on all three). So while the data path uses MPI calls on a window that
 * is not shared memory, a thread polls MPI every DSM_PROGRESS_INTERVAL microseconds:
 * MPI_Test of a receive that never matches, on a private communicator. MPI_Test of an
 * incomplete request runs the whole progress engine (Open MPI's opal_progress, which
 * also serves osc ucx's worker; MPI_Iprobe did not, measured), and sleeping between
 * polls leaves the core to the computation.
 *
 * Measured against the alternatives (docs/PERFORMANCE.md): MPICH's own asynchronous
 * progress (MPIR_CVAR_ASYNC_PROGRESS) spins a thread on a core for the whole job; Open
 * MPI's TCP progress thread (btl_tcp_progress_thread) does not reach osc pt2pt's
 * handlers; and osc pt2pt refuses windows under MPI_THREAD_MULTIPLE, which any thread
 * beside the program's own needs. So the thread needs MPI_THREAD_MULTIPLE, and Open MPI
 * gets it across nodes only with osc ucx, the path dsmrun now gives cluster jobs.
 *
 * The direct path (one node, loads and stores) and shared-memory windows need nothing
 * from the target, and never start the thread.
 */
#include "progress.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "win.h"

enum { PROGRESS_AUTO, PROGRESS_ON, PROGRESS_OFF }; // DSM_PROGRESS, in table order

static struct {
    bool running;
    atomic_bool stop;
    pthread_t thread;
    MPI_Comm comm;    // private: the never-matching receive lives here
    MPI_Request req;  // that receive
    long interval_us; // DSM_PROGRESS_INTERVAL
} pg = {.comm = MPI_COMM_NULL, .req = MPI_REQUEST_NULL};

/* A launcher's word that every rank of the job is on this node: Open MPI's and Hydra's
 * local and world sizes. Unknown (another launcher) counts as "may span nodes". */
static bool launched_on_one_node(void)
{
    static const char *pairs[][2] = {{"OMPI_COMM_WORLD_LOCAL_SIZE", "OMPI_COMM_WORLD_SIZE"},
                                     {"MPI_LOCALNRANKS", "PMI_SIZE"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const char *local = getenv(pairs[i][0]), *world = getenv(pairs[i][1]);
        if (local != NULL && world != NULL) {
            return strcmp(local, world) == 0;
        }
    }
    return false;
}

static bool is_open_mpi(void)
{
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    return MPI_Get_library_version(lib, &len) == MPI_SUCCESS && strstr(lib, "Open MPI") != NULL;
}

/* Whether Open MPI's OMPI_MCA_osc (as the launcher or dsmrun set it) lets component name
 * be chosen; unset lets every component be. */
static bool osc_env_allows(const char *name)
{
    const char *osc = getenv("OMPI_MCA_osc");
    if (osc == NULL || osc[0] == '\0') {
        return true;
    }
    bool listed = strstr(osc, name) != NULL;
    return osc[0] == '^' ? !listed : listed;
}

/* Open MPI serves a window across nodes with osc pt2pt, which refuses windows under
 * MPI_THREAD_MULTIPLE, unless osc ucx is chosen alone (OMPI_MCA_osc, as dsmrun sets it). */
static bool mpi_allows_thread(void)
{
    const char *osc = getenv("OMPI_MCA_osc");
    return !is_open_mpi() ||
           (osc != NULL && osc[0] != '^' && osc_env_allows("ucx") && !osc_env_allows("pt2pt"));
}

int dsmi_progress_thread_level(int want)
{
    if (dsmi_rt.cfg.PROGRESS == PROGRESS_OFF || want == MPI_THREAD_MULTIPLE) {
        return want;
    }
    // One node and loads and stores (Open MPI: only if osc sm may serve the window).
    bool direct_only =
        dsmi_rt.cfg.DIRECT && launched_on_one_node() && (!is_open_mpi() || osc_env_allows("sm"));
    return !direct_only && mpi_allows_thread() ? MPI_THREAD_MULTIPLE : want;
}

static void *poll_loop(void *arg)
{
    (void)arg;
    // Signals are the program's: never run its handlers on this thread.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); // wake after the interval, not 50 us later
    struct timespec nap = {pg.interval_us / 1000000, pg.interval_us % 1000000 * 1000};
    while (!atomic_load_explicit(&pg.stop, memory_order_acquire)) {
        int done = 0;
        if (MPI_Test(&pg.req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || done) {
            dsmi_log(DSMI_LOG_ERROR, "progress thread: MPI_Test failed; passive progress ends");
            break;
        }
        nanosleep(&nap, NULL);
    }
    return NULL;
}

/* Why this job cannot have the thread, or NULL when it can. */
static const char *obstacle(void)
{
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    if (level != MPI_THREAD_MULTIPLE) {
        return mpi_allows_thread()
                   ? "MPI was initialised without MPI_THREAD_MULTIPLE (initialise it with "
                     "MPI_THREAD_MULTIPLE, or let dsm_init do it)"
                   : "Open MPI's osc pt2pt refuses MPI_THREAD_MULTIPLE (use osc ucx: "
                     "dsmrun's cluster path, or --mca pml ucx --mca osc ucx)";
    }
    return NULL;
}

int dsmi_progress_start(void)
{
    pg.interval_us = dsmi_rt.cfg.PROGRESS_INTERVAL;
    if (dsmi_rt.cfg.PROGRESS == PROGRESS_OFF || !dsmi_win_needs_progress()) {
        return DSM_OK;
    }
    const char *why = obstacle();
    int can = why == NULL; // the thread level is per process: decide together
    DSMI_MPI("dsm_init", MPI_Allreduce(MPI_IN_PLACE, &can, 1, MPI_INT, MPI_LAND, dsmi_rt.comm));
    if (!can) {
        why = why ? why : "another rank has no MPI_THREAD_MULTIPLE";
        if (dsmi_rt.cfg.PROGRESS == PROGRESS_ON) {
            return dsmi_fail(DSM_ERR_UNSUPPORTED, "dsm_init",
                             "DSM_PROGRESS=on, but no progress thread is possible: %s", why);
        }
        if (dsmi_rt.rank == 0) {
            dsmi_log(DSMI_LOG_WARN,
                     "no passive progress: remote operations on a rank wait while it computes "
                     "without calling mpidsm or MPI, because %s",
                     why);
        }
        return DSM_OK;
    }
    DSMI_MPI("dsm_init", MPI_Comm_dup(dsmi_rt.comm, &pg.comm));
    DSMI_MPI("dsm_init",
             MPI_Irecv(NULL, 0, MPI_BYTE, MPI_ANY_SOURCE, 0, pg.comm, &pg.req)); // never sent
    atomic_store(&pg.stop, false);
    int err = pthread_create(&pg.thread, NULL, poll_loop, NULL);
    if (err != 0) {
        MPI_Cancel(&pg.req);
        MPI_Wait(&pg.req, MPI_STATUS_IGNORE);
        MPI_Comm_free(&pg.comm);
        return dsmi_fail(DSM_ERR_NOMEM, "dsm_init", "cannot start the progress thread: %s",
                         strerror(err));
    }
    pg.running = true;
    return DSM_OK;
}

int dsmi_progress_stop(void)
{
    if (!pg.running) {
        return DSM_OK;
    }
    atomic_store_explicit(&pg.stop, true, memory_order_release);
    pthread_join(pg.thread, NULL); // it sleeps at most one interval
    pg.running = false;
    DSMI_MPI("dsm_finalize", MPI_Cancel(&pg.req));
    DSMI_MPI("dsm_finalize", MPI_Wait(&pg.req, MPI_STATUS_IGNORE));
    DSMI_MPI("dsm_finalize", MPI_Comm_free(&pg.comm));
    return DSM_OK;
}

bool dsmi_progress_running(void)
{
    return pg.running;
}
