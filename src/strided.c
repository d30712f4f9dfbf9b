/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Strided and indexed transfers: 2-D patches (element size, counts, and element strides
 * on both sides) and I/O vectors (pieces of one rank's memory), blocking and
 * non-blocking.
 *
 * On the MPI path each side becomes one MPI derived datatype (hvectors of a contiguous
 * element for a patch, hindexed bytes for a vector; the local side of a vector uses
 * absolute addresses from MPI_BOTTOM), and the transfer is one MPI_Put/MPI_Get (or
 * MPI_Rput/MPI_Rget) of one element of each type, so MPI may pack or pipeline it as it
 * likes. A patch's types are cached per thread (see cached_type); a vector's are
 * freed right after the call, as MPI allows for operations in flight. On the direct path the same
 * elements move with copy loops (one memcpy per row when rows are contiguous), followed by the
 * fences rma.c uses for a put or a get, and the request of a non-blocking call is born complete.
 *
 * Completion is that of dsm_put/dsm_get and their _nb forms. The written side's
 * elements may not overlap one another (MPI leaves such a transfer undefined); the
 * read side's may not either, because a zero stride is refused and the same rule is
 * applied to both sides so a patch means the same whichever way it goes.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "rma.h"
#include "win.h"

/* ---- patches ---- */

static size_t gcd(size_t a, size_t b)
{
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Whether the elements of one side coincide: element (i, j) sits at i*s0 + j*s1 (in
 * elements); two meet iff di*s0 == dj*s1 with 0 < |di| < c0, 0 < |dj| < c1, and the
 * smallest such pair is (s1/g, s0/g) for g = gcd(s0, s1). */
static bool overlaps(const size_t c[2], const size_t s[2])
{
    if (c[0] < 2 || c[1] < 2) {
        return false;
    }
    size_t g = gcd(s[0], s[1]);
    return s[1] / g < c[0] && s[0] / g < c[1];
}

/* Bytes from a side's first element to the end of its last: es * ((c0-1)s0 + (c1-1)s1 + 1),
 * or false when that overflows. */
static bool extent(size_t es, const size_t c[2], const size_t s[2], size_t *out)
{
    size_t a, b, e;
    if (__builtin_mul_overflow(c[0] - 1, s[0], &a) || __builtin_mul_overflow(c[1] - 1, s[1], &b) ||
        __builtin_add_overflow(a, b, &e) || __builtin_add_overflow(e, (size_t)1, &e) ||
        __builtin_mul_overflow(e, es, out)) {
        return false;
    }
    return true;
}

static int check_side(const dsm_stride_t *p, const size_t s[2], const char *side, const char *func)
{
    if (s[0] == 0 || s[1] == 0) {
        return dsmi_fail(DSM_ERR_ARG, func, "%s stride {%zu, %zu} has a zero stride", side, s[0],
                         s[1]);
    }
    if (overlaps(p->count, s)) {
        return dsmi_fail(DSM_ERR_ARG, func,
                         "%s elements overlap: %zu x %zu elements with strides {%zu, %zu} "
                         "land on the same element more than once",
                         side, p->count[0], p->count[1], s[0], s[1]);
    }
    size_t ext;
    if (!extent(p->elem_size, p->count, s, &ext) || ext > (size_t)PTRDIFF_MAX) {
        return dsmi_fail(DSM_ERR_RANGE, func, "%s patch's extent overflows", side);
    }
    return DSM_OK;
}

/* Validate a patch; *empty when it moves nothing (a zero count). */
static int check_patch(const dsm_stride_t *p, const void *buf, bool *empty, const char *func)
{
    DSMI_CHECK_UP(func);
    if (p == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "stride descriptor is NULL");
    }
    if (p->elem_size == 0) {
        return dsmi_fail(DSM_ERR_ARG, func, "elem_size is 0");
    }
    *empty = p->count[0] == 0 || p->count[1] == 0;
    if (*empty) {
        return DSM_OK;
    }
    size_t total;
    if (p->elem_size > INT_MAX || __builtin_mul_overflow(p->count[0], p->count[1], &total) ||
        __builtin_mul_overflow(total, p->elem_size, &total) || total > INT_MAX) {
        return dsmi_fail(DSM_ERR_ARG, func,
                         "a patch of %zu x %zu elements of %zu bytes exceeds %d bytes: split it",
                         p->count[0], p->count[1], p->elem_size, INT_MAX);
    }
    if (buf == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "local buffer is NULL");
    }
    int rc = check_side(p, p->remote_stride, "remote", func);
    return rc != DSM_OK ? rc : check_side(p, p->local_stride, "local", func);
}

/* One side as an MPI datatype covering its elements from its first byte. */
static int side_type(const dsm_stride_t *p, const size_t s[2], MPI_Datatype *t, const char *func)
{
    MPI_Datatype elem, row;
    MPI_Aint es = (MPI_Aint)p->elem_size;
    DSMI_MPI(func, MPI_Type_contiguous((int)p->elem_size, MPI_BYTE, &elem));
    int mrc = s[0] == 1
                  ? MPI_Type_contiguous((int)p->count[0], elem, &row)
                  : MPI_Type_create_hvector((int)p->count[0], 1, (MPI_Aint)s[0] * es, elem, &row);
    if (mrc == MPI_SUCCESS) {
        mrc = MPI_Type_create_hvector((int)p->count[1], 1, (MPI_Aint)s[1] * es, row, t);
        MPI_Type_free(&row);
    }
    MPI_Type_free(&elem);
    if (mrc == MPI_SUCCESS && (mrc = MPI_Type_commit(t)) != MPI_SUCCESS) {
        MPI_Type_free(t);
    }
    return mrc == MPI_SUCCESS
               ? DSM_OK
               : dsmi_fail_mpi(mrc, func, "MPI_Type_create_hvector", __FILE__, __LINE__);
}

/* Building and committing a side's two hvectors costs microseconds on Open MPI, more
 * than a small put, and programs repeat the same patch shape, so each thread keeps the
 * types of its last few sides. A committed datatype belongs to no window and stays valid
 * until MPI_Finalize, so entries outlive dsm_finalize/dsm_init; evicting one that a
 * non-blocking transfer still uses is allowed (MPI keeps it until the transfer ends).
 * The few entries of a thread that exits are reclaimed by MPI_Finalize. */
#define TYPE_CACHE 8
struct tkey {
    size_t es, c0, c1, s0, s1;
};
static _Thread_local struct {
    struct tkey k;
    MPI_Datatype t;
    bool used;
} tcache[TYPE_CACHE];
static _Thread_local unsigned tnext; // round-robin victim

static int cached_type(const dsm_stride_t *p, const size_t s[2], MPI_Datatype *t, const char *func)
{
    struct tkey k = {p->elem_size, p->count[0], p->count[1], s[0], s[1]};
    for (unsigned i = 0; i < TYPE_CACHE; i++) {
        if (tcache[i].used && !memcmp(&tcache[i].k, &k, sizeof k)) {
            *t = tcache[i].t;
            return DSM_OK;
        }
    }
    int rc = side_type(p, s, t, func);
    if (rc != DSM_OK) {
        return rc;
    }
    unsigned v = tnext++ % TYPE_CACHE;
    if (tcache[v].used) {
        MPI_Type_free(&tcache[v].t);
    }
    tcache[v].k = k;
    tcache[v].t = *t;
    tcache[v].used = true;
    return DSM_OK;
}

/* Direct path: copy element by element (a row at once when both rows are contiguous). */
static void copy_patch(bool is_put, char *local, char *remote, const dsm_stride_t *p)
{
    const size_t es = p->elem_size, *ls = p->local_stride, *rs = p->remote_stride;
    bool rows = ls[0] == 1 && rs[0] == 1;
    for (size_t j = 0; j < p->count[1]; j++) {
        char *l = local + j * ls[1] * es, *r = remote + j * rs[1] * es;
        if (rows) {
            memmove(is_put ? r : l, is_put ? l : r, p->count[0] * es);
            continue;
        }
        for (size_t i = 0; i < p->count[0]; i++) {
            memmove(is_put ? r + i * rs[0] * es : l + i * ls[0] * es,
                    is_put ? l + i * ls[0] * es : r + i * rs[0] * es, es);
        }
    }
    __atomic_thread_fence(is_put ? __ATOMIC_SEQ_CST : __ATOMIC_ACQUIRE);
}

static void count_transfer(bool is_put, size_t bytes)
{
    dsmi_count(is_put ? &dsmi_stat.puts : &dsmi_stat.gets, 1);
    dsmi_count(is_put ? &dsmi_stat.bytes_put : &dsmi_stat.bytes_got, bytes);
}

/* Issue one MPI transfer of one element of each type; with req, request-based. */
static int mpi_transfer(bool is_put, void *buf, MPI_Datatype lt, int rank, MPI_Aint disp,
                        MPI_Datatype rt, MPI_Request *req, const char *func)
{
    int mrc;
    if (is_put) {
        mrc = req ? MPI_Rput(buf, 1, lt, rank, disp, 1, rt, dsmi_w.win, req)
                  : MPI_Put(buf, 1, lt, rank, disp, 1, rt, dsmi_w.win);
    } else {
        mrc = req ? MPI_Rget(buf, 1, lt, rank, disp, 1, rt, dsmi_w.win, req)
                  : MPI_Get(buf, 1, lt, rank, disp, 1, rt, dsmi_w.win);
    }
    if (mrc != MPI_SUCCESS) {
        return dsmi_fail_mpi(mrc, func, is_put ? "MPI_Put" : "MPI_Get", __FILE__, __LINE__);
    }
    return req ? DSM_OK : dsmi_rma_flush(rank, func);
}

/* A patch transfer; nb: request-based, completed through *req. */
static int patch(bool is_put, void *buf, dsm_gptr_t g, const dsm_stride_t *p, bool nb,
                 dsm_request_t *req, const char *func)
{
    bool empty = true;
    int rc = check_patch(p, buf, &empty, func), rank = 0;
    if (rc == DSM_OK && nb && req == NULL) {
        rc = dsmi_fail(DSM_ERR_ARG, func, "req is NULL");
    }
    if (rc != DSM_OK) {
        return rc;
    }
    size_t ext = 0, bytes = p->elem_size * p->count[0] * p->count[1];
    MPI_Aint disp = 0;
    MPI_Request r = MPI_REQUEST_NULL;
    if (!empty) {
        extent(p->elem_size, p->count, p->remote_stride, &ext); // checked above
        if ((rc = dsmi_translate(g, ext, true, func, &rank, &disp)) != DSM_OK) {
            return rc;
        }
    }
    char *seg = dsmi_peer(rank);
    if (!empty && seg != NULL) {
        copy_patch(is_put, buf, seg + disp, p); // disp: from the host's peer pointer (win.h)
        count_transfer(is_put, bytes);
    } else if (!empty) {
        MPI_Datatype lt, rt; // cached: not freed here
        if ((rc = cached_type(p, p->local_stride, &lt, func)) != DSM_OK ||
            (rc = cached_type(p, p->remote_stride, &rt, func)) != DSM_OK) {
            return rc;
        }
        rc = mpi_transfer(is_put, buf, lt, rank, disp, rt, nb ? &r : NULL, func);
        count_transfer(is_put, bytes);
    }
    if (rc == DSM_OK && nb) {
        dsmi_rma_req_store(req, r);
    }
    return rc;
}

int dsm_put_strided(dsm_gptr_t dst, const void *src, const dsm_stride_t *p)
{
    return patch(true, (void *)src, dst, p, false, NULL, "dsm_put_strided");
}

int dsm_get_strided(void *dst, dsm_gptr_t src, const dsm_stride_t *p)
{
    return patch(false, dst, src, p, false, NULL, "dsm_get_strided");
}

int dsm_put_strided_nb(dsm_gptr_t dst, const void *src, const dsm_stride_t *p, dsm_request_t *req)
{
    return patch(true, (void *)src, dst, p, true, req, "dsm_put_strided_nb");
}

int dsm_get_strided_nb(void *dst, dsm_gptr_t src, const dsm_stride_t *p, dsm_request_t *req)
{
    return patch(false, dst, src, p, true, req, "dsm_get_strided_nb");
}

/* ---- I/O vectors ---- */

struct piece {
    uintptr_t key; // where the piece is written: remote offset (put) or local address (get)
    size_t len, i;
};

static int by_key(const void *a, const void *b)
{
    const struct piece *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

/* The written side's pieces must not overlap one another. */
static int check_disjoint(bool is_put, const dsm_iov_t *iov, size_t n, const char *func)
{
    struct piece *ps = malloc(n * sizeof *ps);
    if (ps == NULL) {
        return dsmi_fail(DSM_ERR_NOMEM, func, "no memory to check %zu pieces", n);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (iov[i].len) {
            ps[k++] = (struct piece){is_put ? (uintptr_t)iov[i].offset : (uintptr_t)iov[i].local,
                                     iov[i].len, i};
        }
    }
    qsort(ps, k, sizeof *ps, by_key);
    int rc = DSM_OK;
    for (size_t j = 1; j < k && rc == DSM_OK; j++) {
        if (ps[j - 1].key + ps[j - 1].len > ps[j].key) {
            rc = dsmi_fail(DSM_ERR_ARG, func, "pieces %zu and %zu overlap on the %s side",
                           ps[j - 1].i, ps[j].i, is_put ? "remote" : "local");
        }
    }
    free(ps);
    return rc;
}

/* Validate a vector: every piece inside the target's user memory, local buffers given,
 * sizes that MPI can express, the written side's pieces disjoint. *bytes: the total. */
static int check_iov(bool is_put, dsm_gptr_t base, const dsm_iov_t *iov, size_t n, size_t *bytes,
                     const char *func)
{
    DSMI_CHECK_UP(func);
    if (iov == NULL && n > 0) {
        return dsmi_fail(DSM_ERR_ARG, func, "iov is NULL");
    }
    if (n > INT_MAX) {
        return dsmi_fail(DSM_ERR_ARG, func, "%zu pieces exceed %d", n, INT_MAX);
    }
    *bytes = 0;
    for (size_t i = 0; i < n; i++) {
        int rank = 0;
        MPI_Aint disp = 0;
        if (iov[i].len == 0) {
            continue;
        }
        if (iov[i].local == NULL) {
            return dsmi_fail(DSM_ERR_ARG, func, "piece %zu: local buffer is NULL", i);
        }
        if (iov[i].offset > DSMI_OFFSET_MASK || __builtin_add_overflow(*bytes, iov[i].len, bytes) ||
            *bytes > INT_MAX) {
            return dsmi_fail(DSM_ERR_ARG, func, "piece %zu: offset or total size too large", i);
        }
        dsm_gptr_t g = {base.bits + iov[i].offset};
        if ((g.bits ^ base.bits) >> DSM_GPTR_OFFSET_BITS) { // carried into the rank bits
            return dsmi_fail(DSM_ERR_RANGE, func, "piece %zu leaves the segment", i);
        }
        int rc = dsmi_translate(g, iov[i].len, true, func, &rank, &disp);
        if (rc != DSM_OK) {
            return rc;
        }
    }
    return n > 1 ? check_disjoint(is_put, iov, n, func) : DSM_OK;
}

/* The two sides of a vector as hindexed byte types: remote relative to base, local at
 * absolute addresses (used from MPI_BOTTOM). */
static int iov_types(const dsm_iov_t *iov, size_t n, MPI_Datatype *lt, MPI_Datatype *rt,
                     const char *func)
{
    int *lens = malloc(n * sizeof *lens);
    MPI_Aint *ld = malloc(n * sizeof *ld), *rd = malloc(n * sizeof *rd);
    int k = 0, mrc = MPI_SUCCESS;
    for (size_t i = 0; lens && ld && rd && i < n; i++) {
        if (iov[i].len) {
            lens[k] = (int)iov[i].len;
            rd[k] = (MPI_Aint)iov[i].offset;
            MPI_Get_address(iov[i].local, &ld[k++]);
        }
    }
    if (lens && ld && rd) {
        mrc = MPI_Type_create_hindexed(k, lens, ld, MPI_BYTE, lt);
        if (mrc == MPI_SUCCESS && (mrc = MPI_Type_commit(lt)) == MPI_SUCCESS) {
            mrc = MPI_Type_create_hindexed(k, lens, rd, MPI_BYTE, rt);
            if (mrc == MPI_SUCCESS && (mrc = MPI_Type_commit(rt)) != MPI_SUCCESS) {
                MPI_Type_free(rt);
            }
            if (mrc != MPI_SUCCESS) {
                MPI_Type_free(lt);
            }
        }
    }
    int ok = lens && ld && rd;
    free(lens);
    free(ld);
    free(rd);
    if (!ok) {
        return dsmi_fail(DSM_ERR_NOMEM, func, "no memory for %zu pieces", n);
    }
    return mrc == MPI_SUCCESS
               ? DSM_OK
               : dsmi_fail_mpi(mrc, func, "MPI_Type_create_hindexed", __FILE__, __LINE__);
}

static void copy_iov(bool is_put, char *remote, const dsm_iov_t *iov, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (iov[i].len == 0) {
            continue; // its local pointer may be NULL
        }
        char *r = remote + iov[i].offset;
        memmove(is_put ? r : (char *)iov[i].local, is_put ? (char *)iov[i].local : r, iov[i].len);
    }
    __atomic_thread_fence(is_put ? __ATOMIC_SEQ_CST : __ATOMIC_ACQUIRE);
}

/* A vector transfer; nb: request-based, completed through *req. */
static int vector(bool is_put, dsm_gptr_t base, const dsm_iov_t *iov, size_t n, bool nb,
                  dsm_request_t *req, const char *func)
{
    size_t bytes = 0;
    int rc = check_iov(is_put, base, iov, n, &bytes, func), rank = 0;
    if (rc == DSM_OK && nb && req == NULL) {
        rc = dsmi_fail(DSM_ERR_ARG, func, "req is NULL");
    }
    MPI_Aint disp = 0;
    if (rc != DSM_OK || (bytes && (rc = dsmi_translate(base, 0, true, func, &rank, &disp)))) {
        return rc;
    }
    MPI_Request r = MPI_REQUEST_NULL;
    char *seg = dsmi_peer(rank);
    if (bytes && seg != NULL) {
        copy_iov(is_put, seg + disp, iov, n);
        count_transfer(is_put, bytes);
    } else if (bytes) {
        MPI_Datatype lt, rt;
        if ((rc = iov_types(iov, n, &lt, &rt, func)) != DSM_OK) {
            return rc;
        }
        rc = mpi_transfer(is_put, MPI_BOTTOM, lt, rank, disp, rt, nb ? &r : NULL, func);
        count_transfer(is_put, bytes);
        MPI_Type_free(&lt);
        MPI_Type_free(&rt);
    }
    if (rc == DSM_OK && nb) {
        dsmi_rma_req_store(req, r);
    }
    return rc;
}

int dsm_putv(dsm_gptr_t base, const dsm_iov_t *iov, size_t n)
{
    return vector(true, base, iov, n, false, NULL, "dsm_putv");
}

int dsm_getv(dsm_gptr_t base, const dsm_iov_t *iov, size_t n)
{
    return vector(false, base, iov, n, false, NULL, "dsm_getv");
}

int dsm_putv_nb(dsm_gptr_t base, const dsm_iov_t *iov, size_t n, dsm_request_t *req)
{
    return vector(true, base, iov, n, true, req, "dsm_putv_nb");
}

int dsm_getv_nb(dsm_gptr_t base, const dsm_iov_t *iov, size_t n, dsm_request_t *req)
{
    return vector(false, base, iov, n, true, req, "dsm_getv_nb");
}
