/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * put/get, non-blocking requests, flush, barrier and the remote atomics.
 *
 * All operations run inside the lock_all epoch opened by win.c. A blocking call issues
 * its MPI operation and then MPI_Win_flush on the target, which makes it complete at
 * the target (MPI-3.1 11.5.4); non-blocking calls use request-based RMA (MPI_Rput,
 * MPI_Rget), whose requests complete locally only, so remote completion of a put still
 * needs a flush. Atomics are MPI_Fetch_and_op / MPI_Compare_and_swap, which MPI makes
 * atomic against other accumulate operations of the same basic datatype on the same
 * location. The window uses MPI_ERRORS_RETURN, so every MPI failure becomes
 * DSM_ERR_MPI with MPI's own message.
 *
 * In direct mode (win.h, dsmi_peer) the same calls are memcpy and GCC's __atomic
 * builtins on the target's mapped segment; in hybrid mode put/get to a rank of this node
 * are memcpy, and atomics to every target are MPI calls (win.h's atomics rule). The
 * promises are the same: a put is followed by a sequentially consistent fence, so it is
 * visible to everything this rank does next (the completion a flush gives), a get ends
 * with an acquire fence, and every atomic is sequentially consistent. No MPI operation is
 * ever pending on the data window in direct mode, so a flush is a CPU fence
 * (dsmi_direct_fence) and a barrier is MPI_Barrier between two fences; in hybrid mode a
 * flush is a CPU fence and then the MPI flush.
 */
#include "rma.h"

#include <limits.h>
#include <string.h>

#include "heap.h"
#include "win.h"

#define REQ_LIVE UINT64_C(0x6473726571) // marks a dsm_request_t holding an MPI request
_Static_assert(sizeof(MPI_Request) <= sizeof(uint64_t), "MPI_Request must fit the handle");

static inline int flush_raw(int rank, const char *func)
{
    if (!dsmi_direct_fence()) { // direct mode has nothing to complete
        if (dsmi_hybrid()) {    // stores to this node's segments, then the MPI operations
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
        }
        if (rank >= 0) {
            DSMI_MPI(func, MPI_Win_flush(rank, dsmi_w.win));
        } else {
            int rc = dsmi_win_flush_all(dsmi_w.win, dsmi_rt.nranks, func);
            if (rc != DSM_OK) {
                return rc;
            }
        }
    }
    dsmi_count(&dsmi_stat.flushes, 1);
    return DSM_OK;
}

/* A datatype covering len bytes with a count that fits an int (len may exceed INT_MAX).
 * *own tells the caller to free the type after use. */
static int bytes_type(size_t len, const char *func, MPI_Datatype *type, int *count, bool *own)
{
    *own = false;
    if (len <= INT_MAX) {
        *type = MPI_BYTE;
        *count = (int)len;
        return DSM_OK;
    }
    const size_t chunk = (size_t)1 << 30;
    MPI_Datatype big, head, parts[2];
    MPI_Aint disps[2] = {0, (MPI_Aint)(len / chunk * chunk)};
    int lens[2] = {1, (int)(len % chunk)};
    DSMI_MPI(func, MPI_Type_contiguous((int)chunk, MPI_BYTE, &big));
    DSMI_MPI(func, MPI_Type_contiguous((int)(len / chunk), big, &head));
    parts[0] = head;
    parts[1] = MPI_BYTE;
    DSMI_MPI(func, MPI_Type_create_struct(lens[1] ? 2 : 1, lens, disps, parts, type));
    DSMI_MPI(func, MPI_Type_commit(type));
    MPI_Type_free(&big);
    MPI_Type_free(&head);
    *count = 1;
    *own = true;
    return DSM_OK;
}

/* Direct mode's copy: a single word (a double, a counter) inline, else memmove. */
static inline void copy_bytes(void *dst, const void *src, size_t len)
{
    if (len == sizeof(uint64_t)) {
        uint64_t v;
        memcpy(&v, src, sizeof v); // constant sizes: one load, one store
        memcpy(dst, &v, sizeof v);
    } else { // a dsm_gptr_local buffer may overlap the target on this rank
        memmove(dst, src, len);
    }
}

/* Direct mode: copy len bytes to or from the target's mapped segment. */
static inline void direct_copy(bool is_put, void *buf, char *seg, MPI_Aint disp, size_t len)
{
    if (is_put) {
        copy_bytes(seg + disp, buf, len);
        __atomic_thread_fence(__ATOMIC_SEQ_CST); // complete: ordered before our next access
        dsmi_count(&dsmi_stat.puts, 1);
        dsmi_count(&dsmi_stat.ops_direct, 1);
        dsmi_count(&dsmi_stat.bytes_put, len);
    } else {
        copy_bytes(buf, seg + disp, len);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        dsmi_count(&dsmi_stat.gets, 1);
        dsmi_count(&dsmi_stat.ops_direct, 1);
        dsmi_count(&dsmi_stat.bytes_got, len);
    }
}

int dsmi_rma_flush(int rank, const char *func)
{
    if (__builtin_expect(dsmi_rt.cfg.STATS, 0)) { // timing costs two clock reads
        uint64_t t0 = dsmi_now_ns();
        int rc = flush_raw(rank, func);
        dsmi_count(&dsmi_stat.flush_ns, dsmi_now_ns() - t0);
        return rc;
    }
    return flush_raw(rank, func);
}

/* Start a put (is_put) or get of len bytes; with req, request-based and not flushed. */
static int transfer(bool is_put, void *buf, dsm_gptr_t g, size_t len, bool user, const char *func,
                    MPI_Request *req)
{
    int rank = 0, count = 0, rc;
    MPI_Aint disp = 0;
    MPI_Datatype type;
    bool own;
    if ((rc = dsmi_translate(g, len, user, func, &rank, &disp)) != DSM_OK) {
        return rc;
    }
    if (buf == NULL && len > 0) {
        return dsmi_fail(DSM_ERR_ARG, func, "%s buffer is NULL", is_put ? "source" : "destination");
    }
    char *seg = dsmi_peer(rank);
    if (seg != NULL) { // done now: a request is born complete
        direct_copy(is_put, buf, seg, disp, len);
        if (req) {
            *req = MPI_REQUEST_NULL;
        }
        return DSM_OK;
    }
    if ((rc = bytes_type(len, func, &type, &count, &own)) != DSM_OK) {
        return rc;
    }
    int mrc;
    if (is_put) {
        mrc = req ? MPI_Rput(buf, count, type, rank, disp, count, type, dsmi_w.win, req)
                  : MPI_Put(buf, count, type, rank, disp, count, type, dsmi_w.win);
        dsmi_count(&dsmi_stat.puts, 1);
        dsmi_count(&dsmi_stat.bytes_put, len);
    } else {
        mrc = req ? MPI_Rget(buf, count, type, rank, disp, count, type, dsmi_w.win, req)
                  : MPI_Get(buf, count, type, rank, disp, count, type, dsmi_w.win);
        dsmi_count(&dsmi_stat.gets, 1);
        dsmi_count(&dsmi_stat.bytes_got, len);
    }
    dsmi_count(&dsmi_stat.ops_mpi, 1);
    if (own) {
        MPI_Type_free(&type);
    }
    if (mrc != MPI_SUCCESS) {
        return dsmi_fail_mpi(mrc, func, is_put ? "MPI_Put" : "MPI_Get", __FILE__, __LINE__);
    }
    return req ? DSM_OK : dsmi_rma_flush(rank, func);
}

int dsmi_rma_put(dsm_gptr_t g, const void *src, size_t len, bool user, const char *func)
{
    return transfer(true, (void *)src, g, len, user, func, NULL);
}

int dsmi_rma_get(void *dst, dsm_gptr_t g, size_t len, bool user, const char *func)
{
    return transfer(false, dst, g, len, user, func, NULL);
}

/* The blocking fast path's rare cases, kept out of line so the common path stays
 * short: not initialised, more than INT_MAX bytes, a NULL buffer. */
static __attribute__((noinline, cold)) int slow(bool is_put, void *buf, dsm_gptr_t g, size_t len,
                                                const char *func)
{
    DSMI_CHECK_UP(func);
    return len ? transfer(is_put, buf, g, len, true, func, NULL) : DSM_OK;
}

/* The fast path's MPI-path completion with DSM_STATS=1: count, then a timed flush. */
static __attribute__((noinline)) int counted(bool is_put, int rank, size_t len, const char *func)
{
    dsmi_count(is_put ? &dsmi_stat.puts : &dsmi_stat.gets, 1);
    dsmi_count(is_put ? &dsmi_stat.bytes_put : &dsmi_stat.bytes_got, len);
    dsmi_count(&dsmi_stat.ops_mpi, 1);
    return dsmi_rma_flush(rank, func);
}

/*
 * The blocking fast path, inlined into dsm_put and dsm_get: on osc sm a raw put + flush
 * costs 17-40 ns, so every instruction here shows in the benchmark. Small transfers skip
 * the datatype helper and the generic transfer(); anything unusual takes slow().
 */
static inline __attribute__((always_inline)) int fast(bool is_put, void *buf, dsm_gptr_t g,
                                                      size_t len, const char *func)
{
    int rank = 0, mrc;
    MPI_Aint disp = 0;
    if (__builtin_expect(!dsmi_rt.up || len > INT_MAX || buf == NULL, 0)) {
        return slow(is_put, buf, g, len, func);
    }
    int rc = dsmi_translate(g, len, true, func, &rank, &disp);
    if (rc != DSM_OK) {
        return rc;
    }
    char *seg = dsmi_peer(rank);
    if (seg != NULL) { // disp: a segment is addressed from its host's peer pointer (win.h)
        direct_copy(is_put, buf, seg, disp, len);
        return DSM_OK;
    }
    if (is_put) {
        mrc = MPI_Put(buf, (int)len, MPI_BYTE, rank, disp, (int)len, MPI_BYTE, dsmi_w.win);
    } else {
        mrc = MPI_Get(buf, (int)len, MPI_BYTE, rank, disp, (int)len, MPI_BYTE, dsmi_w.win);
    }
    if (__builtin_expect(mrc != MPI_SUCCESS, 0)) {
        return dsmi_fail_mpi(mrc, func, is_put ? "MPI_Put" : "MPI_Get", __FILE__, __LINE__);
    }
    if (__builtin_expect(dsmi_rt.cfg.STATS, 0)) {
        return counted(is_put, rank, len, func);
    }
    DSMI_MPI(func, MPI_Win_flush(rank, dsmi_w.win));
    return DSM_OK;
}

int dsm_put(dsm_gptr_t g, const void *src, size_t len)
{
    return fast(true, (void *)src, g, len, "dsm_put");
}

int dsm_get(void *dst, dsm_gptr_t g, size_t len)
{
    return fast(false, dst, g, len, "dsm_get");
}

void dsmi_rma_req_store(dsm_request_t *req, MPI_Request r)
{
    memset(req, 0, sizeof *req);
    memcpy(&req->opaque[0], &r, sizeof r);
    req->opaque[1] = REQ_LIVE;
}

/* Start a request-based transfer and store the MPI request in *req. */
static int start_nb(bool is_put, void *buf, dsm_gptr_t g, size_t len, dsm_request_t *req,
                    const char *func)
{
    DSMI_CHECK_UP(func);
    if (req == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "req is NULL");
    }
    MPI_Request r = MPI_REQUEST_NULL;
    if (len > 0) {
        int rc = transfer(is_put, buf, g, len, true, func, &r);
        if (rc != DSM_OK) {
            return rc;
        }
    }
    dsmi_rma_req_store(req, r);
    return DSM_OK;
}

int dsm_put_nb(dsm_gptr_t g, const void *src, size_t len, dsm_request_t *req)
{
    return start_nb(true, (void *)src, g, len, req, "dsm_put_nb");
}

int dsm_get_nb(void *dst, dsm_gptr_t g, size_t len, dsm_request_t *req)
{
    return start_nb(false, dst, g, len, req, "dsm_get_nb");
}

static int complete(dsm_request_t *req, bool block, bool *done, const char *func)
{
    if (req == NULL || req->opaque[1] != REQ_LIVE) {
        return dsmi_fail(DSM_ERR_ARG, func, "%s",
                         req ? "request is not in flight (unused, "
                               "or already completed)"
                             : "req is NULL");
    }
    MPI_Request r;
    int flag = 1;
    memcpy(&r, &req->opaque[0], sizeof r);
    if (block) {
        DSMI_MPI(func, MPI_Wait(&r, MPI_STATUS_IGNORE));
    } else {
        DSMI_MPI(func, MPI_Test(&r, &flag, MPI_STATUS_IGNORE));
    }
    if (flag) {
        req->opaque[1] = 0; // consumed: a second wait is an error, not a hang
    }
    if (done) {
        *done = flag != 0;
    }
    return DSM_OK;
}

int dsm_wait(dsm_request_t *req)
{
    return complete(req, true, NULL, "dsm_wait");
}

int dsm_test(dsm_request_t *req, bool *done)
{
    if (done == NULL) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_test", "done is NULL");
    }
    return complete(req, false, done, "dsm_test");
}

int dsm_flush(int rank)
{
    DSMI_CHECK_UP("dsm_flush");
    if (rank < 0 || rank >= dsmi_rt.nranks) {
        return dsmi_fail(DSM_ERR_RANGE, "dsm_flush", "rank %d is not in 0..%d", rank,
                         dsmi_rt.nranks - 1);
    }
    return dsmi_rma_flush(rank, "dsm_flush");
}

int dsm_flush_all(void)
{
    DSMI_CHECK_UP("dsm_flush_all");
    return dsmi_rma_flush(-1, "dsm_flush_all");
}

int dsm_barrier(void)
{
    DSMI_CHECK_UP("dsm_barrier");
    // The owner's cache of small blocks goes back to its heap first, so that after a
    // barrier every rank's published usage counts live blocks only (mpidsm.h).
    int rc = dsmi_heap_cache_flush("dsm_barrier");
    if (rc != DSM_OK) {
        return rc;
    }
    // Complete our operations, publish local stores, meet, then see everyone else's.
    // In direct mode the flush is the fence that publishes.
    rc = dsmi_rma_flush(-1, "dsm_barrier");
    if (rc != DSM_OK) {
        return rc;
    }
    if (!dsmi_direct()) {
        DSMI_MPI("dsm_barrier", MPI_Win_sync(dsmi_w.win));
    }
    DSMI_MPI("dsm_barrier", MPI_Barrier(dsmi_rt.comm));
    if (!dsmi_direct_fence()) {
        DSMI_MPI("dsm_barrier", MPI_Win_sync(dsmi_w.win));
    }
    return DSM_OK;
}

/* ---- atomics ---- */

/* Bounds and natural alignment of an atomic target of size bytes (4 or 8). */
static inline int atomic_target(dsm_gptr_t g, int size, bool user, const char *func, int *rank,
                                MPI_Aint *disp)
{
    int rc = dsmi_translate(g, (size_t)size, user, func, rank, disp);
    // The offset, not the displacement: segments start 2 MiB-aligned, so the offset's
    // alignment is the address's; the displacement adds the window's pad.
    uint64_t off = g.bits & DSMI_OFFSET_MASK;
    if (rc == DSM_OK && (off & (uint64_t)(size - 1)) != 0) { // a mask: a division costs ~10 ns
        return dsmi_fail(DSM_ERR_ARG, func, "target %d:0x%llx is not %d-byte aligned", *rank,
                         (unsigned long long)off, size);
    }
    return rc;
}

static inline int dt_size(MPI_Datatype dt)
{
    // the only types used are 32- and 64-bit integers (MPI_Type_size costs a call)
    return dt == MPI_INT32_T || dt == MPI_UINT32_T ? 4 : 8;
}

/* The operations this library issues, as constants the compiler can see: each public
 * atomic inlines fop_core with its own, so the direct path is one CPU instruction. */
enum dop { D_SUM, D_REPLACE, D_NOOP, D_BAND, D_BOR, D_BXOR, D_UNKNOWN };

static inline MPI_Op mpi_op(enum dop op)
{
    switch (op) {
    case D_SUM:
        return MPI_SUM;
    case D_REPLACE:
        return MPI_REPLACE;
    case D_NOOP:
        return MPI_NO_OP;
    case D_BAND:
        return MPI_BAND;
    case D_BOR:
        return MPI_BOR;
    case D_BXOR:
        return MPI_BXOR;
    default:
        return MPI_OP_NULL;
    }
}

/* The internal callers (locks, roots) name MPI ops; these six are the ones supported. */
static enum dop dop_of(MPI_Op op)
{
    return op == MPI_SUM       ? D_SUM
           : op == MPI_REPLACE ? D_REPLACE
           : op == MPI_NO_OP   ? D_NOOP
           : op == MPI_BAND    ? D_BAND
           : op == MPI_BOR     ? D_BOR
           : op == MPI_BXOR    ? D_BXOR
                               : D_UNKNOWN;
}

/* Direct mode: the operation as one CPU atomic on the mapped word. On x86 a locked
 * instruction is a full barrier, so the atomic is complete for every later access, as
 * after a flush; elsewhere (AArch64, POWER) a later plain load could pass a seq_cst
 * read-modify-write, so a full fence follows it. */
#if defined(__x86_64__) || defined(__i386__)
#define DSMI_AFTER_ATOMIC() ((void)0)
#else
#define DSMI_AFTER_ATOMIC() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif
#define DIRECT_FOP(T, p, val, old, op)                                                             \
    do {                                                                                           \
        T *p_ = (T *)(p), v_ = *(const T *)(val);                                                  \
        T *o_ = (T *)(old);                                                                        \
        switch (op) {                                                                              \
        case D_SUM:                                                                                \
            *o_ = __atomic_fetch_add(p_, v_, __ATOMIC_SEQ_CST);                                    \
            break;                                                                                 \
        case D_REPLACE:                                                                            \
            *o_ = __atomic_exchange_n(p_, v_, __ATOMIC_SEQ_CST);                                   \
            break;                                                                                 \
        case D_NOOP:                                                                               \
            *o_ = __atomic_load_n(p_, __ATOMIC_SEQ_CST);                                           \
            break;                                                                                 \
        case D_BAND:                                                                               \
            *o_ = __atomic_fetch_and(p_, v_, __ATOMIC_SEQ_CST);                                    \
            break;                                                                                 \
        case D_BOR:                                                                                \
            *o_ = __atomic_fetch_or(p_, v_, __ATOMIC_SEQ_CST);                                     \
            break;                                                                                 \
        case D_BXOR:                                                                               \
            *o_ = __atomic_fetch_xor(p_, v_, __ATOMIC_SEQ_CST);                                    \
            break;                                                                                 \
        default: /* D_UNKNOWN: refused by dsmi_rma_fop */                                          \
            break;                                                                                 \
        }                                                                                          \
        DSMI_AFTER_ATOMIC();                                                                       \
    } while (0)

static inline void direct_fop(char *p, const void *val, void *old, int size, enum dop op)
{
    if (size == 4) {
        DIRECT_FOP(uint32_t, p, val, old, op);
    } else {
        DIRECT_FOP(uint64_t, p, val, old, op);
    }
    dsmi_count(&dsmi_stat.atomics, 1);
    dsmi_count(&dsmi_stat.ops_direct, 1);
}

static inline void direct_cas(char *p, const void *desired, const void *expected, void *old,
                              int size)
{
    if (size == 4) {
        uint32_t e = *(const uint32_t *)expected;
        __atomic_compare_exchange_n((uint32_t *)p, &e, *(const uint32_t *)desired, false,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *(uint32_t *)old = e; // the value found: expected itself when the swap happened
    } else {
        uint64_t e = *(const uint64_t *)expected;
        __atomic_compare_exchange_n((uint64_t *)p, &e, *(const uint64_t *)desired, false,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *(uint64_t *)old = e;
    }
    DSMI_AFTER_ATOMIC();
    dsmi_count(&dsmi_stat.atomics, 1);
    dsmi_count(&dsmi_stat.ops_direct, 1);
}

/* Fetch-and-op then flush, inlined into every public atomic: on osc sm the whole
 * operation costs ~25 ns and a direct one ~3 ns, so each call layer shows. old must not
 * be NULL. */
static inline __attribute__((always_inline)) int fop_core(dsm_gptr_t g, const void *val, void *old,
                                                          MPI_Datatype dt, int size, enum dop op,
                                                          bool user, const char *func)
{
    int rank = 0, rc;
    MPI_Aint disp = 0;
    if ((rc = atomic_target(g, size, user, func, &rank, &disp)) != DSM_OK) {
        return rc;
    }
    char *seg = dsmi_peer_atomic(rank); // the atomics rule (win.h)
    if (seg != NULL) {
        direct_fop(seg + disp, val, old, size, op);
        return DSM_OK;
    }
    DSMI_MPI(func, MPI_Fetch_and_op(val, old, dt, rank, disp, mpi_op(op), dsmi_w.win));
    if (__builtin_expect(dsmi_rt.cfg.STATS, 0)) {
        dsmi_count(&dsmi_stat.atomics, 1);
        dsmi_count(&dsmi_stat.ops_mpi, 1);
        return dsmi_rma_flush(rank, func);
    }
    return flush_raw(rank, func);
}

int dsmi_rma_fop(dsm_gptr_t g, const void *val, void *old, MPI_Datatype dt, MPI_Op op, bool user,
                 const char *func)
{
    uint64_t scratch;
    enum dop d = dop_of(op);
    if (d == D_UNKNOWN) { // never silently another operation
        return dsmi_fail(DSM_ERR_INTERNAL, func, "remote atomic with an unsupported MPI_Op");
    }
    return fop_core(g, val, old ? old : &scratch, dt, dt_size(dt), d, user, func);
}

static inline __attribute__((always_inline)) int cas_core(dsm_gptr_t g, const void *desired,
                                                          const void *expected, void *old,
                                                          MPI_Datatype dt, bool user,
                                                          const char *func)
{
    int rank = 0, rc;
    MPI_Aint disp = 0;
    if ((rc = atomic_target(g, dt_size(dt), user, func, &rank, &disp)) != DSM_OK) {
        return rc;
    }
    char *seg = dsmi_peer_atomic(rank); // the atomics rule (win.h)
    if (seg != NULL) {
        direct_cas(seg + disp, desired, expected, old, dt_size(dt));
        return DSM_OK;
    }
    if (dsmi_rt.cas_broken) {
        return dsmi_fail(DSM_ERR_UNSUPPORTED, func,
                         "compare-and-swap is disabled: this Open MPI (< 4.1.5) crashes in it "
                         "under osc rdma; relaunch with mpi-launch/dsmrun or "
                         "'mpiexec --mca osc sm,pt2pt'");
    }
    DSMI_MPI(func, MPI_Compare_and_swap(desired, expected, old, dt, rank, disp, dsmi_w.win));
    dsmi_count(&dsmi_stat.atomics, 1);
    dsmi_count(&dsmi_stat.ops_mpi, 1);
    return dsmi_rma_flush(rank, func);
}

int dsmi_rma_cas(dsm_gptr_t g, const void *desired, const void *expected, void *old,
                 MPI_Datatype dt, bool user, const char *func)
{
    return cas_core(g, desired, expected, old, dt, user, func);
}

/* The public atomics: one family per type, generated. */
#define DSM_ATOMIC_DEFINE(T, S, DT)                                                                \
    static inline __attribute__((always_inline)) int fop_##S(                                      \
        const char *func, dsm_gptr_t g, T val, T *old, bool need_old, enum dop op)                 \
    {                                                                                              \
        DSMI_CHECK_UP(func);                                                                       \
        if (need_old && old == NULL) {                                                             \
            return dsmi_fail(DSM_ERR_ARG, func, "old is NULL");                                    \
        }                                                                                          \
        T res;                                                                                     \
        int rc = fop_core(g, &val, &res, DT, (int)sizeof(T), op, true, func);                      \
        if (rc == DSM_OK && old != NULL) {                                                         \
            *old = res;                                                                            \
        }                                                                                          \
        return rc;                                                                                 \
    }                                                                                              \
    int dsm_atomic_fetch_add_##S(dsm_gptr_t g, T val, T *old)                                      \
    {                                                                                              \
        return fop_##S("dsm_atomic_fetch_add_" #S, g, val, old, true, D_SUM);                      \
    }                                                                                              \
    int dsm_atomic_add_##S(dsm_gptr_t g, T val)                                                    \
    {                                                                                              \
        return fop_##S("dsm_atomic_add_" #S, g, val, NULL, false, D_SUM);                          \
    }                                                                                              \
    int dsm_atomic_swap_##S(dsm_gptr_t g, T val, T *old)                                           \
    {                                                                                              \
        return fop_##S("dsm_atomic_swap_" #S, g, val, old, true, D_REPLACE);                       \
    }                                                                                              \
    int dsm_atomic_load_##S(dsm_gptr_t g, T *out)                                                  \
    {                                                                                              \
        return fop_##S("dsm_atomic_load_" #S, g, 0, out, true, D_NOOP);                            \
    }                                                                                              \
    int dsm_atomic_store_##S(dsm_gptr_t g, T val)                                                  \
    {                                                                                              \
        return fop_##S("dsm_atomic_store_" #S, g, val, NULL, false, D_REPLACE);                    \
    }                                                                                              \
    int dsm_atomic_fetch_and_##S(dsm_gptr_t g, T val, T *old)                                      \
    {                                                                                              \
        return fop_##S("dsm_atomic_fetch_and_" #S, g, val, old, true, D_BAND);                     \
    }                                                                                              \
    int dsm_atomic_fetch_or_##S(dsm_gptr_t g, T val, T *old)                                       \
    {                                                                                              \
        return fop_##S("dsm_atomic_fetch_or_" #S, g, val, old, true, D_BOR);                       \
    }                                                                                              \
    int dsm_atomic_fetch_xor_##S(dsm_gptr_t g, T val, T *old)                                      \
    {                                                                                              \
        return fop_##S("dsm_atomic_fetch_xor_" #S, g, val, old, true, D_BXOR);                     \
    }                                                                                              \
    int dsm_atomic_and_##S(dsm_gptr_t g, T val)                                                    \
    {                                                                                              \
        return fop_##S("dsm_atomic_and_" #S, g, val, NULL, false, D_BAND);                         \
    }                                                                                              \
    int dsm_atomic_or_##S(dsm_gptr_t g, T val)                                                     \
    {                                                                                              \
        return fop_##S("dsm_atomic_or_" #S, g, val, NULL, false, D_BOR);                           \
    }                                                                                              \
    int dsm_atomic_xor_##S(dsm_gptr_t g, T val)                                                    \
    {                                                                                              \
        return fop_##S("dsm_atomic_xor_" #S, g, val, NULL, false, D_BXOR);                         \
    }                                                                                              \
    static inline __attribute__((always_inline)) int cas_##S(const char *func, dsm_gptr_t g,       \
                                                             T expected, T desired, T *old)        \
    {                                                                                              \
        DSMI_CHECK_UP(func);                                                                       \
        if (old == NULL) {                                                                         \
            return dsmi_fail(DSM_ERR_ARG, func, "old is NULL");                                    \
        }                                                                                          \
        T res;                                                                                     \
        int rc = cas_core(g, &desired, &expected, &res, DT, true, func);                           \
        if (rc == DSM_OK) {                                                                        \
            *old = res;                                                                            \
        }                                                                                          \
        return rc;                                                                                 \
    }                                                                                              \
    int dsm_atomic_cas_##S(dsm_gptr_t g, T expected, T desired, T *old)                            \
    {                                                                                              \
        return cas_##S("dsm_atomic_cas_" #S, g, expected, desired, old);                           \
    }

DSM_ATOMIC_DEFINE(int32_t, i32, MPI_INT32_T)
DSM_ATOMIC_DEFINE(uint32_t, u32, MPI_UINT32_T)
DSM_ATOMIC_DEFINE(int64_t, i64, MPI_INT64_T)
DSM_ATOMIC_DEFINE(uint64_t, u64, MPI_UINT64_T)

/* Global pointers travel as uint64_t, so they are atomic with the _u64 family; each
 * passes its own name, which failures report. */
int dsm_atomic_cas_gptr(dsm_gptr_t g, dsm_gptr_t expected, dsm_gptr_t desired, dsm_gptr_t *old)
{
    return cas_u64("dsm_atomic_cas_gptr", g, expected.bits, desired.bits, old ? &old->bits : NULL);
}

int dsm_atomic_swap_gptr(dsm_gptr_t g, dsm_gptr_t val, dsm_gptr_t *old)
{
    return fop_u64("dsm_atomic_swap_gptr", g, val.bits, old ? &old->bits : NULL, true, D_REPLACE);
}

int dsm_atomic_load_gptr(dsm_gptr_t g, dsm_gptr_t *out)
{
    return fop_u64("dsm_atomic_load_gptr", g, 0, out ? &out->bits : NULL, true, D_NOOP);
}

int dsm_atomic_store_gptr(dsm_gptr_t g, dsm_gptr_t val)
{
    return fop_u64("dsm_atomic_store_gptr", g, val.bits, NULL, false, D_REPLACE);
}
