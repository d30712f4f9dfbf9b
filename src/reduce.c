/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Collectives into global memory: dsm_reduce, dsm_allreduce and dsm_broadcast combine
 * or copy the callers' local buffers with MPI_Reduce, MPI_Allreduce and MPI_Bcast on
 * dsm_comm() and write the result to a global pointer with dsm_put (so the destination
 * may be any rank's memory, on either data path, and is bounds-checked like any put).
 *
 * No rank moves data before all agree: each checks its own arguments, then one
 * MPI_Allreduce (min and max of ok, type, op, count, root) tells every rank whether
 * all are valid and consistent, so a bad argument on one rank makes every rank return
 * an error instead of leaving the others blocked in a collective that never matches.
 * The result goes through a private buffer (never MPI_IN_PLACE), so src may overlap the
 * destination. A closing agreement plus dsm_barrier makes every destination complete
 * and visible when any rank returns, and makes a failed put an error on every rank.
 */
#include <stdlib.h>
#include <string.h>

#include "win.h"

/* The MPI element type and size of a dsm_type, or size 0 when it is none. */
static MPI_Datatype mpi_type(int type, size_t *size)
{
    switch (type) {
    case DSM_TYPE_INT32:
        *size = 4;
        return MPI_INT32_T;
    case DSM_TYPE_INT64:
        *size = 8;
        return MPI_INT64_T;
    case DSM_TYPE_UINT64:
        *size = 8;
        return MPI_UINT64_T;
    case DSM_TYPE_FLOAT:
        *size = 4;
        return MPI_FLOAT;
    case DSM_TYPE_DOUBLE:
        *size = 8;
        return MPI_DOUBLE;
    default:
        *size = 0;
        return MPI_DATATYPE_NULL;
    }
}

static MPI_Op mpi_op(int op)
{
    switch (op) {
    case DSM_OP_SUM:
        return MPI_SUM;
    case DSM_OP_PROD:
        return MPI_PROD;
    case DSM_OP_MIN:
        return MPI_MIN;
    case DSM_OP_MAX:
        return MPI_MAX;
    case DSM_OP_BAND:
        return MPI_BAND;
    case DSM_OP_BOR:
        return MPI_BOR;
    case DSM_OP_BXOR:
        return MPI_BXOR;
    default:
        return MPI_OP_NULL;
    }
}

/* One collective call's arguments as this rank sees them. */
enum kind { K_REDUCE, K_ALLREDUCE, K_BCAST };

struct coll {
    const char *func;
    enum kind kind;
    int type, op, root;  // op and type -1 for a broadcast (bytes)
    size_t count, bytes; // elements, and bytes the destination receives
    bool writes;         // this rank writes its destination
    dsm_gptr_t dst;
    const void *src;
    bool sends; // this rank's src is read
};

/* This rank's own checks; logs and returns the first failure. */
static int check_local(const struct coll *c)
{
    size_t size = 1;
    if (c->type != -1 && mpi_type(c->type, &size) == MPI_DATATYPE_NULL) {
        return dsmi_fail(DSM_ERR_ARG, c->func, "type %d is not a dsm_type", c->type);
    }
    if (c->op != -1 && mpi_op(c->op) == MPI_OP_NULL) {
        return dsmi_fail(DSM_ERR_ARG, c->func, "op %d is not a dsm_op", c->op);
    }
    bool bitwise = c->op == DSM_OP_BAND || c->op == DSM_OP_BOR || c->op == DSM_OP_BXOR;
    if (bitwise && (c->type == DSM_TYPE_FLOAT || c->type == DSM_TYPE_DOUBLE)) {
        return dsmi_fail(DSM_ERR_ARG, c->func,
                         "bitwise op %d on a floating-point type (MPI defines it for "
                         "integers only)",
                         c->op);
    }
    if (c->root < 0 || c->root >= dsmi_rt.nranks) {
        return dsmi_fail(DSM_ERR_ARG, c->func, "root %d is not a rank (0..%d)", c->root,
                         dsmi_rt.nranks - 1);
    }
    if (c->count > INT32_MAX) {
        return dsmi_fail(DSM_ERR_ARG, c->func, "count %zu exceeds MPI's %d", c->count, INT32_MAX);
    }
    if (c->sends && c->count > 0 && c->src == NULL) {
        return dsmi_fail(DSM_ERR_ARG, c->func, "src is NULL with count %zu", c->count);
    }
    int rank = 0;
    MPI_Aint disp = 0;
    if (c->writes && c->count > 0) {
        return dsmi_translate(c->dst, c->bytes, true, c->func, &rank, &disp);
    }
    return DSM_OK;
}

/* Collective: DSM_OK when every rank's arguments are valid and the same where they
 * must be; else an error on every rank (this rank's own code when it was the bad one). */
static int agree(const struct coll *c, int rc)
{
    int64_t v[5] = {rc == DSM_OK, c->type, c->op, (int64_t)c->count, c->root};
    int64_t lo[5], hi[5];
    DSMI_MPI(c->func, MPI_Allreduce(v, lo, 5, MPI_INT64_T, MPI_MIN, dsmi_rt.comm));
    DSMI_MPI(c->func, MPI_Allreduce(v, hi, 5, MPI_INT64_T, MPI_MAX, dsmi_rt.comm));
    if (rc != DSM_OK) {
        return rc;
    }
    if (lo[0] == 0) {
        return dsmi_fail(DSM_ERR_ARG, c->func, "another rank's arguments are invalid");
    }
    static const char *what[5] = {"", "type", "op", "count", "root"};
    for (int k = 1; k < 5; k++) {
        if (lo[k] != hi[k]) {
            return dsmi_fail(DSM_ERR_ARG, c->func,
                             "the ranks pass different %s arguments (%lld .. %lld; this "
                             "rank %lld)",
                             what[k], (long long)lo[k], (long long)hi[k], (long long)v[k]);
        }
    }
    return DSM_OK;
}

/* Collective end: every rank's put is complete (and any failure known) before any
 * rank returns. */
static int finish(const struct coll *c, int rc)
{
    int bad = rc != DSM_OK, any = 0;
    DSMI_MPI(c->func, MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, dsmi_rt.comm));
    int brc = DSMI_CALL_AS(c->func, dsm_barrier());
    if (rc != DSM_OK) {
        return rc;
    }
    if (any) {
        return dsmi_fail(DSM_ERR_ARG, c->func, "another rank failed to write its result");
    }
    return brc;
}

/* Check, agree, run the MPI collective into a private buffer, put it, finish. */
static int collective(struct coll *c)
{
    DSMI_CHECK_UP(c->func);
    int rc = check_local(c);
    void *tmp = NULL;
    if (rc == DSM_OK && c->bytes > 0 && c->writes) {
        tmp = malloc(c->bytes);
        rc = tmp ? DSM_OK : dsmi_fail(DSM_ERR_NOMEM, c->func, "no memory for %zu bytes", c->bytes);
    }
    rc = agree(c, rc); // collective: always
    if (rc != DSM_OK || c->count == 0) {
        free(tmp);
        return rc;
    }
    size_t size = 1;
    MPI_Datatype t = c->type == -1 ? MPI_BYTE : mpi_type(c->type, &size);
    int n = (int)c->count, mrc;
    if (c->kind == K_BCAST) {
        if (dsmi_rt.rank == c->root) {
            memcpy(tmp, c->src, c->bytes);
        }
        mrc = MPI_Bcast(tmp, n, MPI_BYTE, c->root, dsmi_rt.comm);
    } else if (c->kind == K_ALLREDUCE) {
        mrc = MPI_Allreduce(c->src, tmp, n, t, mpi_op(c->op), dsmi_rt.comm);
    } else {
        mrc = MPI_Reduce(c->src, tmp, n, t, mpi_op(c->op), c->root, dsmi_rt.comm);
    }
    if (mrc != MPI_SUCCESS) {
        free(tmp);
        return dsmi_fail_mpi(mrc, c->func, "MPI collective", __FILE__, __LINE__);
    }
    if (c->writes) {
        rc = DSMI_CALL_AS(c->func, dsm_put(c->dst, tmp, c->bytes));
    }
    free(tmp);
    return finish(c, rc);
}

int dsm_reduce(dsm_gptr_t dst, const void *src, size_t count, int type, int op, int root)
{
    size_t size = 0;
    mpi_type(type, &size);
    struct coll c = {"dsm_reduce",         K_REDUCE, type, op,  root, count, count * size,
                     dsmi_rt.rank == root, dst,      src,  true};
    return collective(&c);
}

int dsm_allreduce(dsm_gptr_t dst, const void *src, size_t count, int type, int op)
{
    size_t size = 0;
    mpi_type(type, &size);
    struct coll c = {"dsm_allreduce", K_ALLREDUCE, type, op,  0,   count,
                     count * size,    true,        dst,  src, true};
    return collective(&c);
}

int dsm_broadcast(dsm_gptr_t dst, const void *src, size_t len, int root)
{
    struct coll c = {"dsm_broadcast",     K_BCAST, -1, -1, root, len, len, true, dst, src,
                     dsmi_rt.rank == root};
    return collective(&c);
}
