/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Signals and waiting: put-with-signal, signal fetch, and waiting until words of the
 * caller's own memory satisfy a comparison (one word, all, any or some of an array).
 *
 * Ordering of put-with-signal: the data goes first and is completed at its target (a
 * blocking put: MPI_Put + MPI_Win_flush, or memcpy + a sequentially consistent fence in
 * direct mode); only then is the signal word updated by an MPI_UINT64_T atomic
 * (MPI_REPLACE for SET, MPI_SUM for ADD; a CPU atomic in direct mode). So anyone who
 * sees the signal's new value sees the data. Both steps reuse rma.c's internal calls:
 * this file issues no operation on the window that rma.c does not already issue, apart
 * from the waiter's batched reads of its own words below.
 *
 * Waiting: a waiter polls its own words, never anyone else's, so the writer has nothing
 * to call and no wake-up can be lost: a value written at any time is seen by the next
 * poll. A poll is an acquire load in direct mode and, on the MPI path, an MPI_NO_OP
 * fetch of the word's own type on the caller's own window followed by one flush (MPI
 * makes atomics atomic only against atomics of the same type, so a plain load could
 * see a torn update). Those MPI calls also drive the caller's progress engine, which
 * MPI paths that emulate RMA with messages (Open MPI osc pt2pt, MPICH across nodes)
 * need to apply the writer's operations here. The writer's own flush still needs this
 * rank to make progress when it is not waiting (see the README's note on progress).
 * To leave the core to others the poll backs off: a few tight polls, then yields, then
 * sleeps doubling up to DSM_WAIT_SLEEP microseconds. DSM_WAIT_TIMEOUT bounds the wait.
 */
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "rma.h"
#include "win.h"

/* The word types a wait can use: size, signedness and the MPI type of their atomics. */
struct wtype {
    MPI_Datatype dt;
    int size; // 4 or 8
    bool is_signed;
};

#define BATCH 64 // words read per MPI flush on the MPI path

static bool holds(const struct wtype *t, int cmp, uint64_t raw, uint64_t value)
{
    int c;
    if (t->is_signed) {
        int64_t a = t->size == 4 ? (int32_t)(uint32_t)raw : (int64_t)raw;
        int64_t b = t->size == 4 ? (int32_t)(uint32_t)value : (int64_t)value;
        c = (a > b) - (a < b);
    } else {
        if (t->size == 4) {
            raw = (uint32_t)raw;
            value = (uint32_t)value;
        }
        c = (raw > value) - (raw < value);
    }
    switch (cmp) {
    case DSM_CMP_EQ:
        return c == 0;
    case DSM_CMP_NE:
        return c != 0;
    case DSM_CMP_GT:
        return c > 0;
    case DSM_CMP_GE:
        return c >= 0;
    case DSM_CMP_LT:
        return c < 0;
    default: // DSM_CMP_LE: checked by the caller
        return c <= 0;
    }
}

/* ---- back-off ---- */

struct backoff {
    uint64_t start_ns, limit_ns;
    unsigned polls;
    long sleep_ns;
};

static void backoff_begin(struct backoff *b)
{
    long t = dsmi_rt.cfg.WAIT_TIMEOUT;
    b->limit_ns = t > 0 ? (uint64_t)t * UINT64_C(1000000000) : 0;
    b->start_ns = dsmi_now_ns();
    b->polls = 0;
    b->sleep_ns = 1000;
}

/* After a poll that found nothing. Returns true once DSM_WAIT_TIMEOUT has passed. */
static bool backoff_step(struct backoff *b)
{
    b->polls++;
    if (b->polls > 16 && b->polls <= 64) { // with more ranks than cores the writer may
        sched_yield();                     // need this very core
    } else if (b->polls > 64) {
        long cap = dsmi_rt.cfg.WAIT_SLEEP * 1000L;
        struct timespec ts = {0, b->sleep_ns < cap ? b->sleep_ns : cap};
        if (ts.tv_nsec > 0) {
            nanosleep(&ts, NULL);
        } else {
            sched_yield();
        }
        b->sleep_ns = b->sleep_ns < cap ? b->sleep_ns * 2 : cap;
    }
    return b->limit_ns && (b->polls & 15) == 0 && dsmi_now_ns() - b->start_ns > b->limit_ns;
}

/* ---- reading the caller's own words ---- */

/* Read k words starting at word index i of the array at displacement disp into out. */
static int read_words(const struct wtype *t, MPI_Aint disp, size_t i, size_t k, uint64_t *out,
                      const char *func)
{
    char *seg = dsmi_peer_atomic(dsmi_rt.rank);
    if (seg != NULL) {
        for (size_t j = 0; j < k; j++) {
            char *p = seg + disp + (MPI_Aint)((i + j) * (size_t)t->size);
            out[j] = t->size == 4 ? __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE)
                                  : __atomic_load_n((uint64_t *)p, __ATOMIC_ACQUIRE);
        }
        return DSM_OK;
    }
    uint64_t dummy = 0;
    uint32_t got32[BATCH];
    for (size_t j = 0; j < k; j++) {
        MPI_Aint d = disp + (MPI_Aint)((i + j) * (size_t)t->size);
        void *dst = t->size == 4 ? (void *)&got32[j] : (void *)&out[j];
        DSMI_MPI(func,
                 MPI_Fetch_and_op(&dummy, dst, t->dt, dsmi_rt.rank, d, MPI_NO_OP, dsmi_w.win));
    }
    DSMI_MPI(func, MPI_Win_flush(dsmi_rt.rank, dsmi_w.win));
    for (size_t j = 0; t->size == 4 && j < k; j++) {
        out[j] = got32[j];
    }
    return DSM_OK;
}

/* After a wait succeeded: make what the writer put before its signal visible to this
 * rank's local loads (the acquire side of the signal). */
static int acquire(const char *func)
{
    if (!dsmi_direct_fence()) {
        DSMI_MPI(func, MPI_Win_sync(dsmi_w.win));
    }
    return DSM_OK;
}

/* ---- the waits ---- */

enum wmode { W_ONE, W_ALL, W_ANY, W_SOME };

struct wreq {
    const struct wtype *t;
    dsm_gptr_t ivars;
    size_t n;
    const int *status; // nonzero: the element takes no part (may be NULL)
    int cmp;
    uint64_t value;
    enum wmode mode;
};

/* Check the arguments and find the array's displacement in the caller's own window. */
static int wait_check(const struct wreq *w, MPI_Aint *disp, const char *func)
{
    DSMI_CHECK_UP(func);
    if (w->cmp < DSM_CMP_EQ || w->cmp > DSM_CMP_LE) {
        return dsmi_fail(DSM_ERR_ARG, func, "comparison %d is not a DSM_CMP_* value", w->cmp);
    }
    if (w->n > SIZE_MAX / (size_t)w->t->size) {
        return dsmi_fail(DSM_ERR_ARG, func, "%zu words of %d bytes overflow a size", w->n,
                         w->t->size);
    }
    int rank = 0;
    size_t len = (w->n ? w->n : 1) * (size_t)w->t->size;
    int rc = dsmi_translate(w->ivars, len, true, func, &rank, disp);
    if (rc != DSM_OK) {
        return rc;
    }
    if (rank != dsmi_rt.rank) {
        return dsmi_fail(DSM_ERR_RANGE, func,
                         "a wait watches the caller's own memory, but the word is on rank %d",
                         rank);
    }
    uint64_t off = w->ivars.bits & DSMI_OFFSET_MASK;
    if (off & (uint64_t)(w->t->size - 1)) {
        return dsmi_fail(DSM_ERR_ARG, func, "word %d:0x%llx is not %d-byte aligned", rank,
                         (unsigned long long)off, w->t->size);
    }
    return DSM_OK;
}

/* One pass over the eligible words: count the satisfied ones (their indices into idx
 * when given, up to one for W_ANY; the first one's value into *first); *all tells
 * whether every eligible word holds. */
static int scan(const struct wreq *w, MPI_Aint disp, size_t *idx, size_t *found, bool *all,
                uint64_t *first, const char *func)
{
    uint64_t v[BATCH];
    *found = 0;
    *all = true;
    for (size_t i = 0; i < w->n; i += BATCH) {
        size_t k = w->n - i < BATCH ? w->n - i : BATCH;
        int rc = read_words(w->t, disp, i, k, v, func);
        if (rc != DSM_OK) {
            return rc;
        }
        for (size_t j = 0; j < k; j++) {
            if (w->status && w->status[i + j]) {
                continue;
            }
            if (!holds(w->t, w->cmp, v[j], w->value)) {
                *all = false;
                if (w->mode == W_ALL) {
                    return DSM_OK; // no need to read further this round
                }
            } else if (w->mode == W_SOME || *found == 0) {
                if (*found == 0) {
                    *first = v[j];
                }
                if (idx) {
                    idx[*found] = i + j;
                }
                (*found)++;
            }
        }
        if (w->mode == W_ANY && *found) {
            return DSM_OK;
        }
    }
    return DSM_OK;
}

static bool any_eligible(const struct wreq *w)
{
    for (size_t i = 0; i < w->n; i++) {
        if (!w->status || !w->status[i]) {
            return true;
        }
    }
    return false;
}

/* Wait per mode; idx receives satisfied indices (W_ANY: one, W_SOME: up to n), *first
 * the value of the first one. */
static int wait_core(const struct wreq *w, size_t *idx, size_t *count, uint64_t *first,
                     const char *func)
{
    MPI_Aint disp = 0;
    int rc = wait_check(w, &disp, func);
    if (rc != DSM_OK) {
        return rc;
    }
    if (!any_eligible(w)) { // nothing to wait for (also n == 0)
        *count = 0;
        return DSM_OK;
    }
    struct backoff b;
    backoff_begin(&b);
    for (;;) {
        size_t found = 0;
        bool all = false;
        if ((rc = scan(w, disp, idx, &found, &all, first, func)) != DSM_OK) {
            return rc;
        }
        if (w->mode == W_ONE || w->mode == W_ALL ? all : found > 0) {
            *count = found;
            return acquire(func);
        }
        if (backoff_step(&b)) {
            return dsmi_fail(DSM_ERR_TIMEOUT, func,
                             "timed out after %ld s (DSM_WAIT_TIMEOUT) waiting on %zu word(s) "
                             "at 0x%llx of this rank",
                             dsmi_rt.cfg.WAIT_TIMEOUT, w->n,
                             (unsigned long long)(w->ivars.bits & DSMI_OFFSET_MASK));
        }
    }
}

static int wait_one(const struct wtype *t, dsm_gptr_t g, int cmp, uint64_t v, uint64_t *seen,
                    const char *func)
{
    struct wreq w = {t, g, 1, NULL, cmp, v, W_ONE};
    size_t count = 0;
    return wait_core(&w, NULL, &count, seen, func);
}

static int wait_all(const struct wtype *t, dsm_gptr_t g, size_t n, const int *status, int cmp,
                    uint64_t v, const char *func)
{
    struct wreq w = {t, g, n, status, cmp, v, W_ALL};
    size_t count = 0;
    uint64_t first = 0;
    return wait_core(&w, NULL, &count, &first, func);
}

static int wait_any(const struct wtype *t, dsm_gptr_t g, size_t n, const int *status, int cmp,
                    uint64_t v, size_t *index, const char *func)
{
    if (index == NULL) {
        DSMI_CHECK_UP(func);
        return dsmi_fail(DSM_ERR_ARG, func, "index is NULL");
    }
    struct wreq w = {t, g, n, status, cmp, v, W_ANY};
    size_t count = 0, i = SIZE_MAX;
    uint64_t first = 0;
    int rc = wait_core(&w, &i, &count, &first, func);
    if (rc == DSM_OK) {
        *index = count ? i : SIZE_MAX;
    }
    return rc;
}

static int wait_some(const struct wtype *t, dsm_gptr_t g, size_t n, const int *status, int cmp,
                     uint64_t v, size_t *indices, size_t *count, const char *func)
{
    if ((indices == NULL && n > 0) || count == NULL) {
        DSMI_CHECK_UP(func);
        return dsmi_fail(DSM_ERR_ARG, func, "%s is NULL", count ? "indices" : "count");
    }
    struct wreq w = {t, g, n, status, cmp, v, W_SOME};
    size_t c = 0;
    uint64_t first = 0;
    int rc = wait_core(&w, indices, &c, &first, func);
    if (rc == DSM_OK) {
        *count = c;
    }
    return rc;
}

/* The public waits: one family per type, generated. */
#define DSM_WAIT_DEFINE(T, S, DT, SIGNED)                                                          \
    static const struct wtype wt_##S = {DT, (int)sizeof(T), SIGNED};                               \
    int dsm_wait_until_##S(dsm_gptr_t ivar, int cmp, T value)                                      \
    {                                                                                              \
        uint64_t seen = 0;                                                                         \
        return wait_one(&wt_##S, ivar, cmp, (uint64_t)value, &seen, "dsm_wait_until_" #S);         \
    }                                                                                              \
    int dsm_wait_until_all_##S(dsm_gptr_t ivars, size_t n, const int *status, int cmp, T value)    \
    {                                                                                              \
        return wait_all(&wt_##S, ivars, n, status, cmp, (uint64_t)value,                           \
                        "dsm_wait_until_all_" #S);                                                 \
    }                                                                                              \
    int dsm_wait_until_any_##S(dsm_gptr_t ivars, size_t n, const int *status, int cmp, T value,    \
                               size_t *index)                                                      \
    {                                                                                              \
        return wait_any(&wt_##S, ivars, n, status, cmp, (uint64_t)value, index,                    \
                        "dsm_wait_until_any_" #S);                                                 \
    }                                                                                              \
    int dsm_wait_until_some_##S(dsm_gptr_t ivars, size_t n, const int *status, int cmp, T value,   \
                                size_t *indices, size_t *count)                                    \
    {                                                                                              \
        return wait_some(&wt_##S, ivars, n, status, cmp, (uint64_t)value, indices, count,          \
                         "dsm_wait_until_some_" #S);                                               \
    }

DSM_WAIT_DEFINE(int32_t, i32, MPI_INT32_T, true)
DSM_WAIT_DEFINE(uint32_t, u32, MPI_UINT32_T, false)
DSM_WAIT_DEFINE(int64_t, i64, MPI_INT64_T, true)
DSM_WAIT_DEFINE(uint64_t, u64, MPI_UINT64_T, false)

/* ---- signals ---- */

/* Check the signal word before any data moves, so a bad signal never leaves data
 * written with no signal to announce it. */
static int signal_check(dsm_gptr_t g, size_t len, dsm_gptr_t sig, int op, const char *func)
{
    int rank = 0, srank = 0, rc;
    MPI_Aint disp = 0, sdisp = 0;
    if (op != DSM_SIGNAL_SET && op != DSM_SIGNAL_ADD) {
        return dsmi_fail(DSM_ERR_ARG, func,
                         "signal operation %d is neither DSM_SIGNAL_SET nor "
                         "DSM_SIGNAL_ADD",
                         op);
    }
    if ((rc = dsmi_translate(sig, 8, true, func, &srank, &sdisp)) != DSM_OK) {
        return rc;
    }
    uint64_t soff = sig.bits & DSMI_OFFSET_MASK, off = g.bits & DSMI_OFFSET_MASK;
    if (soff & 7) {
        return dsmi_fail(DSM_ERR_ARG, func, "signal word %d:0x%llx is not 8-byte aligned", srank,
                         (unsigned long long)soff);
    }
    if (len == 0) {
        return DSM_OK;
    }
    if ((rc = dsmi_translate(g, len, true, func, &rank, &disp)) != DSM_OK) {
        return rc;
    }
    if (rank == srank && soff < off + len && off < soff + 8) {
        return dsmi_fail(DSM_ERR_ARG, func,
                         "signal word %d:0x%llx lies inside the data it signals "
                         "(0x%llx, %zu bytes)",
                         rank, (unsigned long long)soff, (unsigned long long)off, len);
    }
    return DSM_OK;
}

int dsm_put_signal(dsm_gptr_t g, const void *src, size_t len, dsm_gptr_t sig, uint64_t value,
                   int op)
{
    const char *func = "dsm_put_signal";
    DSMI_CHECK_UP(func);
    int rc = signal_check(g, len, sig, op, func);
    if (rc != DSM_OK) {
        return rc;
    }
    if (src == NULL && len > 0) {
        return dsmi_fail(DSM_ERR_ARG, func, "source buffer is NULL");
    }
    // Complete at the target first: the signal must never overtake its data.
    if (len > 0 && (rc = dsmi_rma_put(g, src, len, true, func)) != DSM_OK) {
        return rc;
    }
    return dsmi_rma_fop(sig, &value, NULL, MPI_UINT64_T,
                        op == DSM_SIGNAL_SET ? MPI_REPLACE : MPI_SUM, true, func);
}

int dsm_signal_fetch(dsm_gptr_t sig, uint64_t *out)
{
    const char *func = "dsm_signal_fetch";
    DSMI_CHECK_UP(func);
    if (out == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "out is NULL");
    }
    uint64_t zero = 0, v = 0;
    int rc = dsmi_rma_fop(sig, &zero, &v, MPI_UINT64_T, MPI_NO_OP, true, func);
    if (rc == DSM_OK) {
        *out = v;
    }
    return rc;
}

int dsm_signal_wait_until(dsm_gptr_t sig, int cmp, uint64_t value, uint64_t *out)
{
    uint64_t seen = 0;
    int rc = wait_one(&wt_u64, sig, cmp, value, &seen, "dsm_signal_wait_until");
    if (rc == DSM_OK && out != NULL) {
        *out = seen; // the value that satisfied the comparison
    }
    return rc;
}
