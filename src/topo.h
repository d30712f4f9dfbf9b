/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Topology: which ranks share a node (MPI_Comm_split_type SHARED) and what the node
 * has (hwloc when built with it: NUMA nodes, cores, PUs, memory; sysconf otherwise).
 */
#ifndef DSMI_TOPO_H
#define DSMI_TOPO_H

#include "runtime.h"

/* Collective over dsmi_rt.comm: fill the node facts (segment_size left 0). */
DSMI_HIDDEN int dsmi_topo_init(void);
DSMI_HIDDEN void dsmi_topo_fini(void);
/* Where the node facts came from: "hwloc", or why not ("sysconf, built without hwloc",
 * "sysconf, hwloc failed to load"). Valid after dsmi_topo_init. */
DSMI_HIDDEN const char *dsmi_topo_source(void);
/* The facts gathered by dsmi_topo_init. */
DSMI_HIDDEN const dsm_topo_t *dsmi_topo(void);
/* Communicator of the ranks on this node (valid between init and fini). */
DSMI_HIDDEN MPI_Comm dsmi_topo_node_comm(void);
/* Print the topology (DSM_VERBOSE, rank 0). */
DSMI_HIDDEN void dsmi_topo_dump(void);

#endif /* DSMI_TOPO_H */
