/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Data movement for the other subsystems: the same operations as the public API, but
 * allowed to touch the runtime header (user = false) and reporting errors as the
 * public call that uses them (func). All of them complete at the target on return.
 */
#ifndef DSMI_RMA_H
#define DSMI_RMA_H

#include "runtime.h"

DSMI_HIDDEN int dsmi_rma_put(dsm_gptr_t g, const void *src, size_t len, bool user,
                             const char *func);
DSMI_HIDDEN int dsmi_rma_get(void *dst, dsm_gptr_t g, size_t len, bool user, const char *func);
/* MPI_Fetch_and_op of one element of dt (old may be NULL when not wanted), then flush. */
DSMI_HIDDEN int dsmi_rma_fop(dsm_gptr_t g, const void *val, void *old, MPI_Datatype dt, MPI_Op op,
                             bool user, const char *func);
/* MPI_Compare_and_swap of one element of dt, then flush. */
DSMI_HIDDEN int dsmi_rma_cas(dsm_gptr_t g, const void *desired, const void *expected, void *old,
                             MPI_Datatype dt, bool user, const char *func);
/* Make *req a request in flight that dsm_wait/dsm_test complete through r (which may be
 * MPI_REQUEST_NULL: an operation that is already complete). */
DSMI_HIDDEN void dsmi_rma_req_store(dsm_request_t *req, MPI_Request r);
/* Flush one target (rank) or, with rank < 0, all targets. */
DSMI_HIDDEN int dsmi_rma_flush(int rank, const char *func);

#endif /* DSMI_RMA_H */
