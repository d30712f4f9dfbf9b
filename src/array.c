/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Distributed arrays: 1-D and 2-D arrays of int64_t or double spread over a process
 * grid with a block, cyclic or block-cyclic distribution per dimension, accessed by
 * patches (Global Arrays' lo/hi/ld), by element location, and in place on the owner.
 *
 * Every distribution is block-cyclic with some block B along each dimension (block:
 * B = ceil(N / P), cyclic: B = 1): index i belongs to grid coordinate (i / B) mod P at
 * local index (i / B / P) * B + i mod B, as ScaLAPACK lays it out. A 1-D array is a 2-D
 * one of N x 1 on a P x 1 grid. Each rank stores its local elements row-major
 * (local rows x local columns) in one symmetric block (dsm_alloc_all, sized for the
 * largest local part), so an element's global pointer is the owner's block plus its
 * local offset and no rank keeps a table of the others.
 *
 * A patch is cut into runs that stay inside one block along each dimension; each pair
 * of runs is one owner's 2-D sub-patch. On the MPI path it is one MPI_Put, MPI_Get or
 * MPI_Accumulate(MPI_SUM) with a vector type of the element type on each side, all
 * completed by one flush at the end; on the direct path copy loops or CPU atomic adds.
 * Accumulates are atomic per element with other accumulates and with
 * dsm_array_read_inc (all MPI_INT64_T or MPI_DOUBLE accumulate operations).
 *
 * Surviving a restart: the handle is process memory, the elements are in the
 * checkpointed heap. dsm_array_root writes the resolved description (type, shape,
 * blocks, grid, the symmetric block's offset; magic and checksum) into a small block in
 * rank 0's segment and binds a named root to it; dsm_array_attach reads it back on
 * every rank and rebuilds the handle around the same block, which the restore brought
 * back at the same offset with the elements of the checkpoint.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rma.h"
#include "win.h"

#define ARRAY_MAGIC UINT64_C(0x6473616172726179) // "dsaarray"

struct dsm_array {
    uint64_t magic;
    int type;                         // DSM_ARRAY_INT64 or DSM_ARRAY_DOUBLE
    int ndim;                         // as created (1 or 2); stored as 2-D
    int64_t dims[2], block[2];        // global extent and block per dimension
    int grid[2], pc[2];               // process grid and this rank's coordinates in it
    int64_t lcount[2];                // this rank's local rows and columns
    dsm_gptr_t base;                  // this rank's part of the symmetric block
    dsm_gptr_t rec;                   // its description in rank 0's memory (rooted), or null
    char name[DSM_CKPT_NAME_MAX + 1]; // the root naming rec
};

enum op { OP_PUT, OP_GET, OP_ACC };

/* ---- distribution arithmetic ---- */

/* Elements of a dimension of n with block b that grid coordinate p of np holds. */
static int64_t numroc(int64_t n, int64_t b, int p, int np)
{
    int64_t nblocks = n / b, count = nblocks / np * b, extra = nblocks % np;
    if (p < extra) {
        count += b;
    } else if (p == extra) {
        count += n % b;
    }
    return count;
}

static int owner_of(const struct dsm_array *a, int d, int64_t i)
{
    return (int)((i / a->block[d]) % a->grid[d]);
}

static int64_t local_of(const struct dsm_array *a, int d, int64_t i)
{
    return i / a->block[d] / a->grid[d] * a->block[d] + i % a->block[d];
}

static int rank_of(const struct dsm_array *a, int p0, int p1)
{
    return p0 * a->grid[1] + p1;
}

/* ---- creation ---- */

/* The grid: the given one, or P0 x P1 = nranks with P0 the largest divisor <= sqrt. */
static int choose_grid(const dsm_array_desc_t *d, int ndim, int grid[2], const char *func)
{
    int np = dsmi_rt.nranks;
    if (ndim == 1) {
        grid[0] = np;
        grid[1] = 1;
        return DSM_OK;
    }
    if (d->grid[0] > 0 || d->grid[1] > 0) {
        if ((long)d->grid[0] * d->grid[1] != np) {
            return dsmi_fail(DSM_ERR_ARG, func, "grid %d x %d does not cover the %d ranks",
                             d->grid[0], d->grid[1], np);
        }
        grid[0] = d->grid[0];
        grid[1] = d->grid[1];
        return DSM_OK;
    }
    grid[0] = 1;
    for (int p = 1; (long)p * p <= np; p++) {
        grid[0] = np % p == 0 ? p : grid[0];
    }
    grid[1] = np / grid[0];
    return DSM_OK;
}

static int check_desc(const dsm_array_desc_t *d, struct dsm_array *a, const char *func)
{
    if (d->type != DSM_ARRAY_INT64 && d->type != DSM_ARRAY_DOUBLE) {
        return dsmi_fail(DSM_ERR_ARG, func,
                         "element type %d is not DSM_ARRAY_INT64 or "
                         "DSM_ARRAY_DOUBLE",
                         d->type);
    }
    if (d->ndim != 1 && d->ndim != 2) {
        return dsmi_fail(DSM_ERR_ARG, func, "%d dimensions: only 1 and 2 are supported", d->ndim);
    }
    a->type = d->type;
    a->ndim = d->ndim;
    int rc = choose_grid(d, d->ndim, a->grid, func);
    for (int k = 0; rc == DSM_OK && k < 2; k++) {
        int64_t n = k < d->ndim ? d->dims[k] : 1;
        int dist = k < d->ndim ? d->dist[k] : DSM_DIST_BLOCK;
        if (n < 1 || n > (INT64_C(1) << 40)) {
            return dsmi_fail(DSM_ERR_ARG, func, "dimension %d has %lld elements (1..2^40)", k,
                             (long long)n);
        }
        a->dims[k] = n;
        if (dist == DSM_DIST_BLOCK) {
            a->block[k] = (n + a->grid[k] - 1) / a->grid[k];
        } else if (dist == DSM_DIST_CYCLIC) {
            a->block[k] = 1;
        } else if (dist == DSM_DIST_BLOCK_CYCLIC && d->block[k] >= 1) {
            a->block[k] = d->block[k];
        } else {
            return dsmi_fail(DSM_ERR_ARG, func,
                             "dimension %d: distribution %d with block %lld (block-cyclic "
                             "needs a block >= 1)",
                             k, dist, (long long)d->block[k]);
        }
    }
    return rc;
}

/* Every rank must describe the same array: compare the resolved fields collectively. */
static int agree(const struct dsm_array *a, bool ok, const char *func)
{
    int64_t v[9] = {ok,          a->type,     a->ndim,    a->dims[0], a->dims[1],
                    a->block[0], a->block[1], a->grid[0], a->grid[1]};
    int64_t lo[9], hi[9];
    DSMI_MPI(func, MPI_Allreduce(v, lo, 9, MPI_INT64_T, MPI_MIN, dsmi_rt.comm));
    DSMI_MPI(func, MPI_Allreduce(v, hi, 9, MPI_INT64_T, MPI_MAX, dsmi_rt.comm));
    if (lo[0] == 0) {
        return ok ? dsmi_fail(DSM_ERR_ARG, func, "another rank's description is invalid")
                  : DSM_ERR_ARG;
    }
    if (memcmp(lo, hi, sizeof lo) != 0) {
        return dsmi_fail(DSM_ERR_ARG, func, "the ranks describe different arrays");
    }
    return DSM_OK;
}

int dsm_array_create(const dsm_array_desc_t *d, dsm_array_t *out)
{
    const char *func = "dsm_array_create";
    DSMI_CHECK_UP(func);
    struct dsm_array *a = calloc(1, sizeof *a);
    int rc = a ? DSM_OK : dsmi_fail(DSM_ERR_NOMEM, func, "no memory for the handle");
    if (rc == DSM_OK && (d == NULL || out == NULL)) {
        rc = dsmi_fail(DSM_ERR_ARG, func, "%s is NULL", d ? "out" : "desc");
    }
    if (rc == DSM_OK) {
        rc = check_desc(d, a, func);
    }
    struct dsm_array none = {0};
    int arc = agree(rc == DSM_OK ? a : &none, rc == DSM_OK, func); // collective: always
    rc = rc != DSM_OK ? rc : arc;
    int64_t most = 1, mine = 0;
    if (rc == DSM_OK) {
        a->pc[0] = dsmi_rt.rank / a->grid[1];
        a->pc[1] = dsmi_rt.rank % a->grid[1];
        for (int k = 0; k < 2; k++) {
            a->lcount[k] = numroc(a->dims[k], a->block[k], a->pc[k], a->grid[k]);
        }
        mine = a->lcount[0] * a->lcount[1];
        int mrc = MPI_Allreduce(&mine, &most, 1, MPI_INT64_T, MPI_MAX, dsmi_rt.comm);
        rc = mrc == MPI_SUCCESS ? DSM_OK
                                : dsmi_fail_mpi(mrc, func, "MPI_Allreduce", __FILE__, __LINE__);
    }
    if (rc == DSM_OK) {
        rc = DSMI_CALL_AS(func, dsm_alloc_all((size_t)(most ? most : 1) * 8, &a->base));
    }
    if (rc != DSM_OK) {
        free(a);
        return rc;
    }
    void *p = NULL;
    dsm_gptr_local(a->base, &p);
    memset(p, 0, (size_t)mine * 8); // arrays start at zero
    a->magic = ARRAY_MAGIC;
    *out = a;
    return DSMI_CALL_AS(func, dsm_barrier());
}

static int check_handle(dsm_array_t a, const char *func)
{
    DSMI_CHECK_UP(func);
    if (a == NULL || a->magic != ARRAY_MAGIC) {
        return dsmi_fail(DSM_ERR_ARG, func, "not a live array handle");
    }
    return DSM_OK;
}

static int unroot(struct dsm_array *a, const char *func);

int dsm_array_destroy(dsm_array_t a)
{
    const char *func = "dsm_array_destroy";
    int rc = check_handle(a, func);
    if (rc != DSM_OK) {
        return rc;
    }
    rc = DSMI_CALL_AS(func, dsm_free_all(a->base)); // collective, and a barrier first
    int urc = unroot(a, func); // after that barrier: no rank still looks the name up
    rc = rc != DSM_OK ? rc : urc;
    a->magic = 0;
    free(a);
    return rc;
}

/* ---- patches ---- */

struct patch {
    enum op op;
    void *buf;
    int64_t lo[2], hi[2], ld; // ld: elements between rows of buf
};

static int check_patch(const struct dsm_array *a, const int64_t *lo, const int64_t *hi,
                       const void *buf, int64_t ld, struct patch *p, const char *func)
{
    if (lo == NULL || hi == NULL || buf == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "%s is NULL", !lo ? "lo" : !hi ? "hi" : "buf");
    }
    for (int k = 0; k < 2; k++) {
        p->lo[k] = k < a->ndim ? lo[k] : 0;
        p->hi[k] = k < a->ndim ? hi[k] : 0;
        if (p->lo[k] < 0 || p->hi[k] >= a->dims[k] || p->lo[k] > p->hi[k]) {
            return dsmi_fail(DSM_ERR_RANGE, func,
                             "patch [%lld, %lld] of dimension %d is empty or outside 0..%lld",
                             (long long)p->lo[k], (long long)p->hi[k], k,
                             (long long)a->dims[k] - 1);
        }
    }
    int64_t width = p->hi[1] - p->lo[1] + 1;
    p->ld = a->ndim == 1 ? 1 : ld;
    if (a->ndim == 2 && ld < width) {
        return dsmi_fail(DSM_ERR_ARG, func,
                         "ld %lld is shorter than the patch's %lld columns: rows of buf "
                         "would overlap",
                         (long long)ld, (long long)width);
    }
    p->buf = (void *)buf;
    return DSM_OK;
}

/* Direct path: one owner's sub-patch of nr x nc at remote (ld rld) and local (ld lld). */
static void direct_run(const struct dsm_array *a, enum op op, char *r, char *l, int64_t nr,
                       int64_t nc, int64_t rld, int64_t lld)
{
    for (int64_t i = 0; i < nr; i++) {
        int64_t *rp = (int64_t *)(r + i * rld * 8), *lp = (int64_t *)(l + i * lld * 8);
        if (op == OP_PUT) {
            memmove(rp, lp, (size_t)nc * 8);
        } else if (op == OP_GET) {
            memmove(lp, rp, (size_t)nc * 8);
        } else if (a->type == DSM_ARRAY_INT64) {
            for (int64_t j = 0; j < nc; j++) {
                __atomic_fetch_add(&rp[j], lp[j], __ATOMIC_RELAXED);
            }
        } else {
            for (int64_t j = 0; j < nc; j++) { // a double sum: compare-and-swap on the bits
                uint64_t seen = __atomic_load_n((uint64_t *)&rp[j], __ATOMIC_RELAXED), want;
                do {
                    double cur, add;
                    memcpy(&cur, &seen, 8);
                    memcpy(&add, &lp[j], 8);
                    cur += add;
                    memcpy(&want, &cur, 8);
                } while (!__atomic_compare_exchange_n((uint64_t *)&rp[j], &seen, want, true,
                                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
            }
        }
    }
}

/* MPI path: one contiguous MPI call per row (not flushed), no derived datatype: with a
 * vector type on each side MPICH 4.0's ch4:ucx returned patch gets across simulated
 * nodes that read zeros (test_array at 2 x 2 ranks, 3 of 12 runs; cf. pmodels/mpich#7896
 * for its early-completed non-contiguous gets). The patches are rows of blocks, so the
 * calls are few. */
static int mpi_run(const struct dsm_array *a, enum op op, int rank, MPI_Aint disp, char *l,
                   int64_t nr, int64_t nc, int64_t rld, int64_t lld, const char *func)
{
    MPI_Datatype et = a->type == DSM_ARRAY_INT64 ? MPI_INT64_T : MPI_DOUBLE;
    if (nr == 1 || (nc == rld && nc == lld)) { // whole rows on both sides: one run
        nc *= nr;
        nr = 1;
    }
    if (nc > INT32_MAX) {
        return dsmi_fail(DSM_ERR_ARG, func, "a sub-patch row of %lld elements is too large for MPI",
                         (long long)nc);
    }
    for (int64_t r = 0; r < nr; r++) {
        char *lr = l + r * lld * 8;
        MPI_Aint d = disp + (MPI_Aint)(r * rld * 8);
        int n = (int)nc;
        int mrc = op == OP_PUT   ? MPI_Put(lr, n, et, rank, d, n, et, dsmi_w.win)
                  : op == OP_GET ? MPI_Get(lr, n, et, rank, d, n, et, dsmi_w.win)
                                 : MPI_Accumulate(lr, n, et, rank, d, n, et, MPI_SUM, dsmi_w.win);
        if (mrc != MPI_SUCCESS) {
            return dsmi_fail_mpi(mrc, func, "MPI_Put/MPI_Get/MPI_Accumulate", __FILE__, __LINE__);
        }
    }
    return DSM_OK;
}

/* One owner's part: rows [i, i + nr) and columns [j, j + nc) of the global array. */
static int run(const struct dsm_array *a, const struct patch *p, int64_t i, int64_t nr, int64_t j,
               int64_t nc, const char *func)
{
    int p0 = owner_of(a, 0, i), p1 = owner_of(a, 1, j), rank = rank_of(a, p0, p1);
    int64_t rld = numroc(a->dims[1], a->block[1], p1, a->grid[1]); // the owner's local columns
    int64_t li = local_of(a, 0, i), lj = local_of(a, 1, j);
    uint64_t off = (a->base.bits & DSMI_OFFSET_MASK) + (uint64_t)(li * rld + lj) * 8;
    size_t len = (size_t)((nr - 1) * rld + nc) * 8;
    MPI_Aint disp = 0;
    int rc = dsmi_translate(dsmi_gptr(rank, off), len, true, func, &rank, &disp);
    if (rc != DSM_OK) {
        return rc;
    }
    char *l = (char *)p->buf + ((i - p->lo[0]) * p->ld + (j - p->lo[1])) * 8;
    // Accumulates are atomics: CPU atomics only where every atomic is one (win.h's rule).
    char *seg = p->op == OP_ACC ? dsmi_peer_atomic(rank) : dsmi_peer(rank);
    if (seg != NULL) {
        direct_run(a, p->op, seg + disp, l, nr, nc, rld, p->ld);
        return DSM_OK;
    }
    return mpi_run(a, p->op, rank, disp, l, nr, nc, rld, p->ld, func);
}

/* Walk the patch block by block along both dimensions, then complete everything. */
static int patch_op(dsm_array_t a, enum op op, const int64_t *lo, const int64_t *hi,
                    const void *buf, int64_t ld, const char *func)
{
    struct patch p = {op, NULL, {0, 0}, {0, 0}, 0};
    int rc = check_handle(a, func);
    if (rc != DSM_OK || (rc = check_patch(a, lo, hi, buf, ld, &p, func)) != DSM_OK) {
        return rc;
    }
    for (int64_t i = p.lo[0]; rc == DSM_OK && i <= p.hi[0];) {
        int64_t nr = a->block[0] - i % a->block[0];
        nr = nr < p.hi[0] - i + 1 ? nr : p.hi[0] - i + 1;
        for (int64_t j = p.lo[1]; rc == DSM_OK && j <= p.hi[1];) {
            int64_t nc = a->block[1] - j % a->block[1];
            nc = nc < p.hi[1] - j + 1 ? nc : p.hi[1] - j + 1;
            rc = run(a, &p, i, nr, j, nc, func);
            j += nc;
        }
        i += nr;
    }
    if (dsmi_direct()) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST); // complete, as after a flush
        return rc;
    }
    int frc = dsmi_rma_flush(-1, func); // also after a failure: nothing stays pending
    return rc != DSM_OK ? rc : frc;
}

int dsm_array_put(dsm_array_t a, const int64_t *lo, const int64_t *hi, const void *buf, int64_t ld)
{
    return patch_op(a, OP_PUT, lo, hi, buf, ld, "dsm_array_put");
}

int dsm_array_get(dsm_array_t a, const int64_t *lo, const int64_t *hi, void *buf, int64_t ld)
{
    return patch_op(a, OP_GET, lo, hi, buf, ld, "dsm_array_get");
}

int dsm_array_acc(dsm_array_t a, const int64_t *lo, const int64_t *hi, const void *buf, int64_t ld)
{
    return patch_op(a, OP_ACC, lo, hi, buf, ld, "dsm_array_acc");
}

/* ---- elements and the local part ---- */

int dsm_array_locate(dsm_array_t a, const int64_t *idx, int *rank, dsm_gptr_t *g)
{
    const char *func = "dsm_array_locate";
    int rc = check_handle(a, func);
    if (rc != DSM_OK) {
        return rc;
    }
    if (idx == NULL || rank == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "%s is NULL", idx ? "rank" : "idx");
    }
    int64_t ix[2] = {idx[0], a->ndim == 2 ? idx[1] : 0};
    for (int k = 0; k < 2; k++) {
        if (ix[k] < 0 || ix[k] >= a->dims[k]) {
            return dsmi_fail(DSM_ERR_RANGE, func, "index %lld of dimension %d is outside 0..%lld",
                             (long long)ix[k], k, (long long)a->dims[k] - 1);
        }
    }
    int p0 = owner_of(a, 0, ix[0]), p1 = owner_of(a, 1, ix[1]);
    int64_t rld = numroc(a->dims[1], a->block[1], p1, a->grid[1]);
    int64_t lin = local_of(a, 0, ix[0]) * rld + local_of(a, 1, ix[1]);
    *rank = rank_of(a, p0, p1);
    if (g != NULL) {
        *g = dsmi_gptr(*rank, (a->base.bits & DSMI_OFFSET_MASK) + (uint64_t)lin * 8);
    }
    return DSM_OK;
}

int dsm_array_local(dsm_array_t a, void **ptr, int64_t *count)
{
    const char *func = "dsm_array_local";
    int rc = check_handle(a, func);
    if (rc != DSM_OK) {
        return rc;
    }
    if (ptr == NULL || count == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "%s is NULL", ptr ? "count" : "ptr");
    }
    *ptr = dsmi_w.base + (a->base.bits & DSMI_OFFSET_MASK);
    count[0] = a->lcount[0];
    if (a->ndim == 2) {
        count[1] = a->lcount[1];
    }
    return DSM_OK;
}

int dsm_array_local_to_global(dsm_array_t a, const int64_t *lidx, int64_t *gidx)
{
    const char *func = "dsm_array_local_to_global";
    int rc = check_handle(a, func);
    if (rc != DSM_OK) {
        return rc;
    }
    if (lidx == NULL || gidx == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "%s is NULL", lidx ? "gidx" : "lidx");
    }
    for (int k = 0; k < a->ndim; k++) {
        if (lidx[k] < 0 || lidx[k] >= a->lcount[k]) {
            return dsmi_fail(DSM_ERR_RANGE, func,
                             "local index %lld of dimension %d is outside 0..%lld",
                             (long long)lidx[k], k, (long long)a->lcount[k] - 1);
        }
    }
    for (int k = 0; k < a->ndim; k++) {
        int64_t b = a->block[k], lb = lidx[k] / b;
        gidx[k] = (lb * a->grid[k] + a->pc[k]) * b + lidx[k] % b;
    }
    return DSM_OK;
}

int dsm_array_read_inc(dsm_array_t a, const int64_t *idx, int64_t inc, int64_t *old)
{
    const char *func = "dsm_array_read_inc";
    int rank = 0, rc = check_handle(a, func);
    dsm_gptr_t g = DSM_GPTR_NULL;
    if (rc != DSM_OK) {
        return rc;
    }
    if (a->type != DSM_ARRAY_INT64) {
        return dsmi_fail(DSM_ERR_ARG, func,
                         "the array holds doubles: read-and-increment needs "
                         "DSM_ARRAY_INT64");
    }
    if (old == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "old is NULL");
    }
    if ((rc = DSMI_CALL_AS(func, dsm_array_locate(a, idx, &rank, &g))) != DSM_OK) {
        return rc;
    }
    // MPI_Fetch_and_op with MPI_INT64_T: atomic with the MPI_INT64_T accumulates
    return dsmi_rma_fop(g, &inc, old, MPI_INT64_T, MPI_SUM, true, func);
}

/* ---- finding an array again through a named root ---- */

#define REC_MAGIC UINT64_C(0x6473617272646531) // "dsarrde1"

/* An array's description as stored in global memory (all 64-bit: no padding). */
struct array_rec {
    uint64_t magic;
    int64_t type, ndim, dims[2], block[2], grid[2];
    uint64_t offset; // the symmetric block's offset (the same on every rank)
    uint64_t check;  // a hash of everything above
};

static uint64_t rec_hash(const struct array_rec *r)
{
    const unsigned char *b = (const unsigned char *)r;
    uint64_t h = UINT64_C(1469598103934665603); // FNV-1a
    for (size_t i = 0; i < offsetof(struct array_rec, check); i++) {
        h = (h ^ b[i]) * UINT64_C(1099511628211);
    }
    return h;
}

/* Every rank passes the same valid name (compared by hash), or all fail. */
static int agree_name(const char *name, const char *func)
{
    bool ok = name != NULL && name[0] != '\0' && strlen(name) <= DSM_CKPT_NAME_MAX;
    int64_t v[2] = {ok, 0}, lo[2], hi[2];
    for (const char *c = ok ? name : ""; *c; c++) {
        v[1] = v[1] * 131 + (unsigned char)*c;
    }
    DSMI_MPI(func, MPI_Allreduce(v, lo, 2, MPI_INT64_T, MPI_MIN, dsmi_rt.comm));
    DSMI_MPI(func, MPI_Allreduce(v, hi, 2, MPI_INT64_T, MPI_MAX, dsmi_rt.comm));
    if (!ok) {
        return dsmi_fail(DSM_ERR_ARG, func, "name is %s",
                         name ? "empty or longer than 31 characters" : "NULL");
    }
    if (lo[0] == 0) {
        return dsmi_fail(DSM_ERR_ARG, func, "another rank's arguments are invalid");
    }
    if (lo[1] != hi[1]) {
        return dsmi_fail(DSM_ERR_ARG, func, "the ranks pass different names");
    }
    return DSM_OK;
}

/* Rank 0's result rc (and pointer *g) on every rank; a failure is logged where seen. */
static int from_rank0(int rc, dsm_gptr_t *g, const char *func)
{
    int64_t v[2] = {rc, (int64_t)g->bits};
    DSMI_MPI(func, MPI_Bcast(v, 2, MPI_INT64_T, 0, dsmi_rt.comm));
    g->bits = (uint64_t)v[1];
    if (dsmi_rt.rank != 0 && v[0] != DSM_OK) {
        return dsmi_fail((int)v[0], func, "rank 0 failed (%s)", dsm_strerror((int)v[0]));
    }
    return (int)v[0];
}

/* Rank 0: drop a's root and free its description (when it has one). Collective. */
static int unroot(struct dsm_array *a, const char *func)
{
    int rc = DSM_OK;
    if (dsm_gptr_is_null(a->rec)) {
        return DSM_OK;
    }
    if (dsmi_rt.rank == 0) {
        dsm_gptr_t bound = DSM_GPTR_NULL;
        rc = DSMI_CALL_AS(func, dsm_root_get(a->name, &bound));
        if (rc == DSM_OK && dsm_gptr_equal(bound, a->rec)) { // still ours: unbind it
            rc = DSMI_CALL_AS(func, dsm_root_set(a->name, DSM_GPTR_NULL));
        }
        rc = rc == DSM_ERR_NOTFOUND ? DSM_OK : rc; // already unbound
        int frc = DSMI_CALL_AS(func, dsm_free(a->rec));
        rc = rc != DSM_OK ? rc : frc;
    }
    dsm_gptr_t none = DSM_GPTR_NULL;
    rc = from_rank0(rc, &none, func);
    a->rec = DSM_GPTR_NULL;
    return rc;
}

int dsm_array_root(dsm_array_t a, const char *name)
{
    const char *func = "dsm_array_root";
    int rc = check_handle(a, func);
    int arc = agree_name(rc == DSM_OK ? name : NULL, func); // collective: always
    if (rc != DSM_OK || arc != DSM_OK) {
        return rc != DSM_OK ? rc : arc;
    }
    if ((rc = unroot(a, func)) != DSM_OK) { // one root per array: the newest
        return rc;
    }
    dsm_gptr_t g = DSM_GPTR_NULL;
    if (dsmi_rt.rank == 0) {
        struct array_rec r = {REC_MAGIC,
                              a->type,
                              a->ndim,
                              {a->dims[0], a->dims[1]},
                              {a->block[0], a->block[1]},
                              {a->grid[0], a->grid[1]},
                              a->base.bits & DSMI_OFFSET_MASK,
                              0};
        r.check = rec_hash(&r);
        rc = DSMI_CALL_AS(func, dsm_alloc(sizeof r, &g));
        if (rc == DSM_OK) {
            rc = DSMI_CALL_AS(func, dsm_put(g, &r, sizeof r));
        }
        if (rc == DSM_OK) {
            rc = DSMI_CALL_AS(func, dsm_root_set(name, g));
        }
        if (rc != DSM_OK && !dsm_gptr_is_null(g)) {
            dsm_free(g);
        }
    }
    if ((rc = from_rank0(rc, &g, func)) == DSM_OK) {
        a->rec = g;
        snprintf(a->name, sizeof a->name, "%s", name);
    }
    return rc;
}

/* This rank's handle from the description at g (checked against this run). */
static int from_rec(struct dsm_array *a, dsm_gptr_t g, const char *name, const char *func)
{
    struct array_rec r;
    int rc = DSMI_CALL_AS(func, dsm_get(&r, g, sizeof r));
    if (rc != DSM_OK) {
        return rc;
    }
    if (r.magic != REC_MAGIC || r.check != rec_hash(&r)) {
        return dsmi_fail(DSM_ERR_CORRUPT, func, "root \"%s\" does not name an array's description",
                         name);
    }
    if (r.grid[0] < 1 || r.grid[1] < 1 || r.grid[0] * r.grid[1] != dsmi_rt.nranks) {
        return dsmi_fail(DSM_ERR_MISMATCH, func,
                         "array \"%s\" is spread over %lld x %lld ranks, not %d", name,
                         (long long)r.grid[0], (long long)r.grid[1], dsmi_rt.nranks);
    }
    *a = (struct dsm_array){0,
                            (int)r.type,
                            (int)r.ndim,
                            {r.dims[0], r.dims[1]},
                            {r.block[0], r.block[1]},
                            {(int)r.grid[0], (int)r.grid[1]},
                            {0, 0},
                            {0, 0},
                            dsmi_gptr(dsmi_rt.rank, r.offset),
                            g,
                            ""};
    snprintf(a->name, sizeof a->name, "%s", name);
    a->pc[0] = dsmi_rt.rank / a->grid[1];
    a->pc[1] = dsmi_rt.rank % a->grid[1];
    for (int k = 0; k < 2; k++) {
        a->lcount[k] = numroc(a->dims[k], a->block[k], a->pc[k], a->grid[k]);
    }
    int64_t mine = a->lcount[0] * a->lcount[1];
    int trank = 0;
    MPI_Aint disp = 0; // the local part must lie in user memory of this segment
    return dsmi_translate(a->base, (size_t)(mine ? mine : 1) * 8, true, func, &trank, &disp);
}

int dsm_array_attach(const char *name, dsm_array_t *out)
{
    const char *func = "dsm_array_attach";
    DSMI_CHECK_UP(func);
    int rc = out ? DSM_OK : dsmi_fail(DSM_ERR_ARG, func, "out is NULL");
    int arc = agree_name(rc == DSM_OK ? name : "-", func); // collective: always
    rc = rc != DSM_OK ? rc : arc;
    struct dsm_array *a = rc == DSM_OK ? calloc(1, sizeof *a) : NULL;
    if (rc == DSM_OK && a == NULL) {
        rc = dsmi_fail(DSM_ERR_NOMEM, func, "no memory for the handle");
    }
    dsm_gptr_t g = DSM_GPTR_NULL;
    if (rc == DSM_OK && (rc = DSMI_CALL_AS(func, dsm_root_get(name, &g))) == DSM_OK) {
        rc = from_rec(a, g, name, func);
    }
    struct dsm_array none = {0};
    arc = agree(rc == DSM_OK ? a : &none, rc == DSM_OK, func); // the same array everywhere
    rc = rc != DSM_OK ? rc : arc;
    if (rc != DSM_OK) {
        free(a);
        return rc;
    }
    a->magic = ARRAY_MAGIC;
    *out = a;
    return DSM_OK;
}
