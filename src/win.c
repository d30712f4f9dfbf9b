/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Window creation and teardown.
 *
 * One MPI window holds every rank's segment for the life of the runtime, and one
 * passive-target epoch (MPI_Win_lock_all with MPI_MODE_NOCHECK) is open on it from
 * dsm_init to dsm_finalize; operations complete with MPI_Win_flush*. The ident header
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
 */
#include "win.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* Whether Open MPI's osc selection may pick rdma, from the "osc" MCA variable. */
static bool osc_rdma_possible(void)
{
#ifdef OPEN_MPI
    int provided, idx, count, level = MPI_THREAD_SINGLE;
    char value[4096] = ""; // Open MPI 4.1 gives count 2048 for string variables
    bool possible = true;  // when the variable cannot be read, assume the default
    /* Open MPI 4.1's MPI_T_init_thread overwrites the level MPI_Query_thread reports (and
     * its thread-multiple flag) with the one asked for here: ask for the current one. */
    MPI_Query_thread(&level);
    if (MPI_T_init_thread(level, &provided) != MPI_SUCCESS) {
        return true;
    }
    MPI_T_cvar_handle h;
    if (MPI_T_cvar_get_index("osc", &idx) == MPI_SUCCESS &&
        MPI_T_cvar_handle_alloc(idx, NULL, &h, &count) == MPI_SUCCESS) {
        if (count < (int)sizeof value && MPI_T_cvar_read(h, value) == MPI_SUCCESS &&
            value[0] != '\0') {
            bool listed = strstr(value, "rdma") != NULL;
            possible = value[0] == '^' ? !listed : listed;
        }
        MPI_T_cvar_handle_free(&h);
    }
    MPI_T_finalize();
    return possible;
#else
    return false;
#endif
}

static int allocate(size_t size, bool shared, MPI_Info info)
{
    void *base = NULL;
    if (shared) {
        DSMI_MPI("dsm_init", MPI_Win_allocate_shared((MPI_Aint)size, 1, info, dsmi_rt.comm, &base,
                                                     &dsmi_w.win));
    } else {
        DSMI_MPI("dsm_init",
                 MPI_Win_allocate((MPI_Aint)size, 1, info, dsmi_rt.comm, &base, &dsmi_w.win));
    }
    dsmi_w.base = base;
    return DSM_OK;
}

static uint64_t launch_id(void)
{
    uint64_t id = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid() ^ dsmi_now_ns();
    MPI_Bcast(&id, 1, MPI_UINT64_T, 0, dsmi_rt.comm);
    return id;
}

int dsmi_win_create(size_t size, bool single_node)
{
    bool shared = false;
    dsmi_rt.cas_broken = false;
    if (ompi_cas_affected() && osc_rdma_possible()) {
        if (single_node && dsmi_rt.cfg.OMPI_OSC_FIX) {
            shared = true;
        } else {
            dsmi_rt.cas_broken = true;
            if (dsmi_rt.rank == 0) {
                dsmi_log(DSMI_LOG_WARN,
                         "Open MPI < 4.1.5 with osc rdma: compare-and-swap would crash and "
                         "is disabled; launch with dsmrun or --mca osc sm,pt2pt");
            }
        }
    }
    MPI_Info info;
    DSMI_MPI("dsm_init", MPI_Info_create(&info));
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    int rc = allocate(size, shared, info);
    MPI_Info_free(&info);
    if (rc != DSM_OK) {
        return rc;
    }
    dsmi_w.size = size;
    dsmi_w.shared = shared;
    MPI_Win_set_errhandler(dsmi_w.win, MPI_ERRORS_RETURN);
    memset(dsmi_w.base, 0, DSMI_HDR_SIZE); // the heap initialises the rest itself
    struct dsmi_ident *id = (struct dsmi_ident *)(dsmi_w.base + DSMI_HDR_IDENT_OFF);
    *id = (struct dsmi_ident){DSMI_MAGIC,   DSMI_LAYOUT_VERSION, DSMI_HDR_SIZE, size,
                              dsmi_rt.rank, dsmi_rt.nranks,      launch_id()};
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
    DSMI_MPI("dsm_finalize", MPI_Win_flush_all(dsmi_w.win));
    DSMI_MPI("dsm_finalize", MPI_Win_unlock_all(dsmi_w.win));
    DSMI_MPI("dsm_finalize", MPI_Win_free(&dsmi_w.win));
    dsmi_w = (struct dsmi_win){.win = MPI_WIN_NULL};
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

int dsmi_win_free_lockwin(MPI_Win *win)
{
    if (*win == MPI_WIN_NULL) {
        return DSM_OK;
    }
    DSMI_MPI("dsm_finalize", MPI_Win_free(win));
    return DSM_OK;
}
