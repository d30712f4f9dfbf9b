/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Topology facts, gathered once at dsm_init and read-only afterwards.
 *
 * Node membership comes from MPI (MPI_COMM_TYPE_SHARED), so it is right even when
 * hwloc cannot see the other processes. A node's index is the order of its first rank
 * (the lowest rank on it) among the first ranks of all nodes.
 */
#include "topo.h"
#include "win.h"

#include <string.h>
#include <unistd.h>

#ifdef DSM_HAVE_HWLOC
#include <hwloc.h>
#endif

static dsm_topo_t topo;
static MPI_Comm node_comm = MPI_COMM_NULL;
static bool from_hwloc; // the node leader's hwloc load succeeded (tests compare configure)

/* NUMA nodes, cores, PUs and memory of this machine; true when hwloc supplied them. */
static bool machine_facts(dsm_topo_t *t)
{
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    t->numa_nodes = 1;
    t->cores = t->pus = cpus > 0 ? (int32_t)cpus : 1;
    t->node_memory = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
#ifdef DSM_HAVE_HWLOC
    hwloc_topology_t h;
    bool loaded = false;
    if (hwloc_topology_init(&h) != 0) {
        return false;
    }
    if (hwloc_topology_load(h) == 0) {
        loaded = true;
        int numa = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_NUMANODE);
        int cores = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_CORE);
        int pus = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_PU);
        hwloc_obj_t root = hwloc_get_root_obj(h);
        t->numa_nodes = numa > 0 ? numa : 1;
        t->cores = cores > 0 ? cores : t->cores;
        t->pus = pus > 0 ? pus : t->pus;
        if (root->total_memory > 0) {
            t->node_memory = root->total_memory;
        }
    }
    hwloc_topology_destroy(h);
    return loaded;
#else
    return false;
#endif
}

int dsmi_topo_init(void)
{
    MPI_Comm leaders = MPI_COMM_NULL;
    memset(&topo, 0, sizeof topo);
    topo.rank = dsmi_rt.rank;
    topo.nranks = dsmi_rt.nranks;
    DSMI_MPI("dsm_init", MPI_Comm_split_type(dsmi_rt.comm, MPI_COMM_TYPE_SHARED, dsmi_rt.rank,
                                             MPI_INFO_NULL, &node_comm));
    MPI_Comm_set_errhandler(node_comm, MPI_ERRORS_RETURN);
    int lrank, lsize;
    MPI_Comm_rank(node_comm, &lrank);
    MPI_Comm_size(node_comm, &lsize);
    topo.local_rank = lrank;
    topo.local_ranks = lsize;
    // Leaders (local rank 0) number the nodes; everyone learns its node from its leader.
    DSMI_MPI("dsm_init",
             MPI_Comm_split(dsmi_rt.comm, lrank == 0 ? 0 : MPI_UNDEFINED, dsmi_rt.rank, &leaders));
    int32_t nodeinfo[2] = {0, 0};
    if (leaders != MPI_COMM_NULL) {
        MPI_Comm_rank(leaders, &nodeinfo[0]);
        MPI_Comm_size(leaders, &nodeinfo[1]);
        MPI_Comm_free(&leaders);
    }
    DSMI_MPI("dsm_init", MPI_Bcast(nodeinfo, 2, MPI_INT32_T, 0, node_comm));
    topo.node = nodeinfo[0];
    topo.nnodes = nodeinfo[1];
    int32_t hw = 0;
    if (lrank == 0) {
        hw = machine_facts(&topo);
    }
    // One hwloc load per node: the node leader shares what it found.
    int32_t facts[4] = {topo.numa_nodes, topo.cores, topo.pus, hw};
    DSMI_MPI("dsm_init", MPI_Bcast(facts, 4, MPI_INT32_T, 0, node_comm));
    DSMI_MPI("dsm_init", MPI_Bcast(&topo.node_memory, 1, MPI_UINT64_T, 0, node_comm));
    topo.numa_nodes = facts[0];
    topo.cores = facts[1];
    topo.pus = facts[2];
    from_hwloc = facts[3] != 0;
    return DSM_OK;
}

void dsmi_topo_fini(void)
{
    if (node_comm != MPI_COMM_NULL) {
        MPI_Comm_free(&node_comm);
    }
}

const char *dsmi_topo_source(void)
{
    if (from_hwloc) {
        return "hwloc";
    }
#ifdef DSM_HAVE_HWLOC
    return "sysconf, hwloc failed to load";
#else
    return "sysconf, built without hwloc";
#endif
}

const dsm_topo_t *dsmi_topo(void)
{
    return &topo;
}

MPI_Comm dsmi_topo_node_comm(void)
{
    return node_comm;
}

void dsmi_topo_dump(void)
{
    dsmi_log(DSMI_LOG_ALWAYS,
             "topology: %d ranks on %d node(s), %d per node here; node: %d NUMA, %d cores, "
             "%d PUs, %.1f GiB (%s)",
             topo.nranks, topo.nnodes, topo.local_ranks, topo.numa_nodes, topo.cores, topo.pus,
             (double)topo.node_memory / (1024.0 * 1024 * 1024), dsmi_topo_source());
}

int dsm_topology(dsm_topo_t *out)
{
    DSMI_CHECK_UP("dsm_topology");
    if (out == NULL) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_topology", "out is NULL");
    }
    *out = topo;
    out->segment_size = dsmi_w.size;
    out->direct_ranks = dsmi_w.npeers;
    return DSM_OK;
}
