/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The atomics beyond rma.c's integer families: float and double, and the non-blocking
 * fetching atomics of the integer types.
 *
 * float and double travel as their bit patterns in MPI_UINT32_T / MPI_UINT64_T atomics
 * (rma.c's dsmi_rma_fop / dsmi_rma_cas), never as MPI_FLOAT / MPI_DOUBLE: MPI allows
 * MPI_Compare_and_swap only on integer types and makes atomics atomic only against
 * atomics of the same type, so with MPI_DOUBLE for the sums a compare-and-swap could
 * interleave with them. On the bits, load, store, swap and compare-and-swap are one
 * atomic each, and fetch-add is a compare-and-swap loop: every float (double) operation
 * is atomic with every other and with the _u32 (_u64) family on the same word. The
 * compare of a compare-and-swap is on bits: -0.0 differs from 0.0, and a NaN matches
 * the same NaN.
 *
 * Non-blocking fetching atomics are MPI_Rget_accumulate with the same type and
 * operation as the blocking ones (so they are atomic with them); the request completes
 * when the fetched value is in *old, and the update is complete at the target after a
 * flush. Their operand is passed by pointer because MPI owns it until the request
 * completes (a dsm_request_t is copied by value, so it cannot hold the operand). On the direct path
 * they are the blocking CPU atomic and the request is born complete.
 */
#include <string.h>

#include "rma.h"
#include "win.h"

/* ---- float and double on their bits ---- */

/* The fetch-add loop: read, add in floating point, compare-and-swap the bits; retry
 * with what the failed swap found. Returns from the enclosing function; old may be NULL. */
#define FP_FETCH_ADD(T, U, DT, g, val, old, func)                                                  \
    do {                                                                                           \
        U seen = 0, zero = 0, found = 0;                                                           \
        int rc_ = dsmi_rma_fop(g, &zero, &seen, DT, MPI_NO_OP, true, func);                        \
        while (rc_ == DSM_OK) {                                                                    \
            T cur, next;                                                                           \
            memcpy(&cur, &seen, sizeof cur);                                                       \
            next = cur + (val);                                                                    \
            U want;                                                                                \
            memcpy(&want, &next, sizeof want);                                                     \
            rc_ = dsmi_rma_cas(g, &want, &seen, &found, DT, true, func);                           \
            if (rc_ == DSM_OK && found == seen) {                                                  \
                if (old) {                                                                         \
                    *(old) = cur;                                                                  \
                }                                                                                  \
                break;                                                                             \
            }                                                                                      \
            seen = found;                                                                          \
        }                                                                                          \
        return rc_;                                                                                \
    } while (0)

#define DSM_ATOMIC_FP_DEFINE(T, S, U, DT)                                                          \
    _Static_assert(sizeof(T) == sizeof(U), #T " must be as wide as its bits");                     \
    int dsm_atomic_load_##S(dsm_gptr_t g, T *out)                                                  \
    {                                                                                              \
        const char *func = "dsm_atomic_load_" #S;                                                  \
        DSMI_CHECK_UP(func);                                                                       \
        if (out == NULL) {                                                                         \
            return dsmi_fail(DSM_ERR_ARG, func, "out is NULL");                                    \
        }                                                                                          \
        U zero = 0, v = 0;                                                                         \
        int rc = dsmi_rma_fop(g, &zero, &v, DT, MPI_NO_OP, true, func);                            \
        if (rc == DSM_OK) {                                                                        \
            memcpy(out, &v, sizeof *out);                                                          \
        }                                                                                          \
        return rc;                                                                                 \
    }                                                                                              \
    int dsm_atomic_store_##S(dsm_gptr_t g, T val)                                                  \
    {                                                                                              \
        const char *func = "dsm_atomic_store_" #S;                                                 \
        DSMI_CHECK_UP(func);                                                                       \
        U v;                                                                                       \
        memcpy(&v, &val, sizeof v);                                                                \
        return dsmi_rma_fop(g, &v, NULL, DT, MPI_REPLACE, true, func);                             \
    }                                                                                              \
    int dsm_atomic_swap_##S(dsm_gptr_t g, T val, T *old)                                           \
    {                                                                                              \
        const char *func = "dsm_atomic_swap_" #S;                                                  \
        DSMI_CHECK_UP(func);                                                                       \
        if (old == NULL) {                                                                         \
            return dsmi_fail(DSM_ERR_ARG, func, "old is NULL");                                    \
        }                                                                                          \
        U v, o = 0;                                                                                \
        memcpy(&v, &val, sizeof v);                                                                \
        int rc = dsmi_rma_fop(g, &v, &o, DT, MPI_REPLACE, true, func);                             \
        if (rc == DSM_OK) {                                                                        \
            memcpy(old, &o, sizeof *old);                                                          \
        }                                                                                          \
        return rc;                                                                                 \
    }                                                                                              \
    int dsm_atomic_cas_##S(dsm_gptr_t g, T expected, T desired, T *old)                            \
    {                                                                                              \
        const char *func = "dsm_atomic_cas_" #S;                                                   \
        DSMI_CHECK_UP(func);                                                                       \
        if (old == NULL) {                                                                         \
            return dsmi_fail(DSM_ERR_ARG, func, "old is NULL");                                    \
        }                                                                                          \
        U e, d, o = 0;                                                                             \
        memcpy(&e, &expected, sizeof e);                                                           \
        memcpy(&d, &desired, sizeof d);                                                            \
        int rc = dsmi_rma_cas(g, &d, &e, &o, DT, true, func);                                      \
        if (rc == DSM_OK) {                                                                        \
            memcpy(old, &o, sizeof *old);                                                          \
        }                                                                                          \
        return rc;                                                                                 \
    }                                                                                              \
    int dsm_atomic_fetch_add_##S(dsm_gptr_t g, T val, T *old)                                      \
    {                                                                                              \
        const char *func = "dsm_atomic_fetch_add_" #S;                                             \
        DSMI_CHECK_UP(func);                                                                       \
        if (old == NULL) {                                                                         \
            return dsmi_fail(DSM_ERR_ARG, func, "old is NULL");                                    \
        }                                                                                          \
        FP_FETCH_ADD(T, U, DT, g, val, old, func);                                                 \
    }                                                                                              \
    int dsm_atomic_add_##S(dsm_gptr_t g, T val)                                                    \
    {                                                                                              \
        const char *func = "dsm_atomic_add_" #S;                                                   \
        DSMI_CHECK_UP(func);                                                                       \
        T *none = NULL;                                                                            \
        FP_FETCH_ADD(T, U, DT, g, val, none, func);                                                \
    }

DSM_ATOMIC_FP_DEFINE(float, float, uint32_t, MPI_UINT32_T)
DSM_ATOMIC_FP_DEFINE(double, double, uint64_t, MPI_UINT64_T)

/* ---- non-blocking fetching atomics ---- */

/* Start op on the word at g (size bytes, type dt) with *val; *old receives the value
 * found, now (direct path) or when *req completes (MPI path). */
static int fop_nb(dsm_gptr_t g, const void *val, void *old, MPI_Datatype dt, int size, MPI_Op op,
                  dsm_request_t *req, const char *func)
{
    DSMI_CHECK_UP(func);
    if (old == NULL || req == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "%s is NULL", old ? "req" : "old");
    }
    int rank = 0, rc;
    MPI_Aint disp = 0;
    if ((rc = dsmi_translate(g, (size_t)size, true, func, &rank, &disp)) != DSM_OK) {
        return rc;
    }
    uint64_t off = g.bits & DSMI_OFFSET_MASK;
    if (off & (uint64_t)(size - 1)) {
        return dsmi_fail(DSM_ERR_ARG, func, "target %d:0x%llx is not %d-byte aligned", rank,
                         (unsigned long long)off, size);
    }
    MPI_Request r = MPI_REQUEST_NULL;
    if (dsmi_peer_atomic(rank) != NULL) { // a CPU atomic: done now (win.h's rule)
        rc = dsmi_rma_fop(g, val, old, dt, op, true, func);
    } else {
        int mrc =
            MPI_Rget_accumulate(val, 1, dt, old, 1, dt, rank, disp, 1, dt, op, dsmi_w.win, &r);
        if (mrc != MPI_SUCCESS) {
            return dsmi_fail_mpi(mrc, func, "MPI_Rget_accumulate", __FILE__, __LINE__);
        }
        dsmi_count(&dsmi_stat.atomics, 1);
        dsmi_count(&dsmi_stat.ops_mpi, 1);
    }
    if (rc == DSM_OK) {
        dsmi_rma_req_store(req, r);
    }
    return rc;
}

static const uint64_t nb_zero = 0; // the operand of a load (MPI_NO_OP reads none)

/* The public non-blocking atomics of each integer type. The operand is passed by
 * pointer: like *old, it belongs to MPI until the request completes. */
#define DSM_ATOMIC_NB_DEFINE(T, S, DT)                                                             \
    int dsm_atomic_fetch_add_##S##_nb(dsm_gptr_t g, const T *val, T *old, dsm_request_t *req)      \
    {                                                                                              \
        const char *func = "dsm_atomic_fetch_add_" #S "_nb";                                       \
        if (val == NULL) {                                                                         \
            DSMI_CHECK_UP(func);                                                                   \
            return dsmi_fail(DSM_ERR_ARG, func, "val is NULL");                                    \
        }                                                                                          \
        return fop_nb(g, val, old, DT, (int)sizeof(T), MPI_SUM, req, func);                        \
    }                                                                                              \
    int dsm_atomic_swap_##S##_nb(dsm_gptr_t g, const T *val, T *old, dsm_request_t *req)           \
    {                                                                                              \
        const char *func = "dsm_atomic_swap_" #S "_nb";                                            \
        if (val == NULL) {                                                                         \
            DSMI_CHECK_UP(func);                                                                   \
            return dsmi_fail(DSM_ERR_ARG, func, "val is NULL");                                    \
        }                                                                                          \
        return fop_nb(g, val, old, DT, (int)sizeof(T), MPI_REPLACE, req, func);                    \
    }                                                                                              \
    int dsm_atomic_load_##S##_nb(dsm_gptr_t g, T *out, dsm_request_t *req)                         \
    {                                                                                              \
        return fop_nb(g, &nb_zero, out, DT, (int)sizeof(T), MPI_NO_OP, req,                        \
                      "dsm_atomic_load_" #S "_nb");                                                \
    }

DSM_ATOMIC_NB_DEFINE(int32_t, i32, MPI_INT32_T)
DSM_ATOMIC_NB_DEFINE(uint32_t, u32, MPI_UINT32_T)
DSM_ATOMIC_NB_DEFINE(int64_t, i64, MPI_INT64_T)
DSM_ATOMIC_NB_DEFINE(uint64_t, u64, MPI_UINT64_T)
