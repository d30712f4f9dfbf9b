/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * heap: local, one-sided remote and collective allocation in the window; published
 * usage; every bad input refused without damage; concurrent remote and local
 * allocators on one heap (ranks and threads) with owner patterns checked for overlap;
 * seeded churn with the invariant checker; fragmentation after an 80% fill; reload of
 * a restored segment. Every case frees what it allocated and checks that usage is back
 * to exactly zero on every rank.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "heap.h"
#include "win.h"

static int me, n;

/* Usage of rank r in use, as published. */
static uint64_t in_use(int r)
{
    dsm_usage_t u = {0};
    H_OK(dsm_usage(r, &u));
    return u.in_use;
}

/* The heap of this rank passes the invariant checker and every rank is back to zero.
 * The check returns the rank's cache of small blocks to its heap first (they count as
 * in use until then), so every rank's usage is exact after the second barrier. */
static void expect_empty(void)
{
    H_OK(dsm_barrier());
    struct dsmi_heap_report r;
    H_OK(dsmi_heap_check(&r));
    CU_ASSERT_EQUAL(r.blocks, 0);
    H_OK(dsm_barrier());
    for (int k = 0; k < n; k++) {
        CU_ASSERT_EQUAL(in_use(k), 0);
    }
    H_OK(dsm_barrier());
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static unsigned char pat(int owner, int idx, size_t i)
{
    return (unsigned char)(owner * 37 + idx * 11 + i * 7 + 1);
}

/* Fill len bytes at g with the pattern of (owner, idx), by put (works on any rank). */
static void fill(dsm_gptr_t g, size_t len, int owner, int idx)
{
    unsigned char *b = malloc(len);
    for (size_t i = 0; i < len; i++) {
        b[i] = pat(owner, idx, i);
    }
    H_OK(dsm_put(g, b, len));
    free(b);
}

/* Whether the pattern is intact (returns the number of wrong bytes). */
static size_t verify(dsm_gptr_t g, size_t len, int owner, int idx)
{
    unsigned char *b = malloc(len);
    size_t bad = 0;
    H_OK(dsm_get(b, g, len));
    for (size_t i = 0; i < len; i++) {
        bad += b[i] != pat(owner, idx, i);
    }
    free(b);
    return bad;
}

static void test_heap_local_basic(void)
{
    me = dsm_rank();
    n = dsm_nranks();
    dsm_usage_t u0, u1;
    H_OK(dsm_usage(me, &u0));
    CU_ASSERT_EQUAL(u0.in_use, 0);
    CU_ASSERT_EQUAL(u0.in_use + u0.free, u0.capacity);
    CU_ASSERT_EQUAL(u0.largest_free, u0.capacity);
    const size_t sizes[] = {1, 8, 16, 17, 100, 255, 256, 4096, 65537, 1 << 20};
    dsm_gptr_t g[10];
    for (int i = 0; i < 10; i++) {
        H_OK(dsm_alloc(sizes[i], &g[i]));
        CU_ASSERT_EQUAL(dsm_gptr_rank(g[i]), me);
        CU_ASSERT_EQUAL(dsm_gptr_offset(g[i]) % 16, 0);
        fill(g[i], sizes[i], me, i);
    }
    H_OK(dsm_usage(me, &u1));
    CU_ASSERT_EQUAL(u1.blocks, 10);
    CU_ASSERT(u1.in_use >= (1 << 20) + 65537 + 4096);
    CU_ASSERT_EQUAL(u1.in_use + u1.free, u1.capacity);
    for (int i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(verify(g[i], sizes[i], me, i), 0);
        H_OK(dsm_free(g[i]));
    }
    dsm_gptr_t z, a;
    H_OK(dsm_calloc(1000, 8, &z)); // zeroed even over a block just freed and dirty
    unsigned char *p = NULL;
    H_OK(dsm_gptr_local(z, (void **)&p));
    size_t nonzero = 0;
    for (int i = 0; p && i < 8000; i++) {
        nonzero += p[i] != 0;
    }
    CU_ASSERT_EQUAL(nonzero, 0);
    for (size_t al = 32; al <= 65536; al *= 4) {
        H_OK(dsm_alloc_aligned(100, al, &a));
        CU_ASSERT_EQUAL(dsm_gptr_offset(a) % al, 0);
        H_OK(dsm_free(a));
    }
    H_OK(dsm_free(z));
    expect_empty();
}

static void test_heap_bad_input(void)
{
    dsm_gptr_t g = DSM_GPTR_NULL, b;
    dsm_usage_t u;
    H_OK(dsm_usage(me, &u));
    H_EXPECT(dsm_alloc(0, &g), DSM_ERR_ARG);
    H_EXPECT(dsm_alloc(u.capacity + 1, &g), DSM_ERR_ARG);
    H_EXPECT(dsm_alloc(SIZE_MAX, &g), DSM_ERR_ARG);
    H_EXPECT(dsm_alloc(8, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_alloc_aligned(8, 24, &g), DSM_ERR_ARG);
    H_EXPECT(dsm_calloc(SIZE_MAX / 2, 4, &g), DSM_ERR_ARG);
    H_EXPECT(dsm_alloc_on(n, 8, &g), DSM_ERR_RANGE);
    H_EXPECT(dsm_alloc_on(-1, 8, &g), DSM_ERR_RANGE);
    H_EXPECT(dsm_usage(n, &u), DSM_ERR_RANGE);
    H_EXPECT(dsm_usage(0, NULL), DSM_ERR_ARG);
    // Almost the whole heap fits; twice that does not: NOMEM names the numbers.
    H_OK(dsm_alloc(u.capacity - 4096, &b));
    H_EXPECT(dsm_alloc(u.capacity / 2, &g), DSM_ERR_NOMEM);
    const char *msg = dsm_last_error();
    CU_ASSERT(strstr(msg, "bytes free") != NULL && strstr(msg, "largest free block") != NULL);
    H_OK(dsm_free(b));
    CU_ASSERT(dsm_gptr_is_null(g)); // untouched on failure
    // Frees of things that are not live blocks, here and on the next rank.
    int right = (me + 1) % n;
    dsm_gptr_t mine, theirs, hdr, wild = {UINT64_C(0x123456789abcdef1)};
    H_OK(dsm_alloc(256, &mine));
    H_OK(dsm_alloc_on(right, 256, &theirs));
    H_OK(dsm_gptr_make(right, 1024, &hdr));
    H_EXPECT(dsm_free(DSM_GPTR_NULL), DSM_ERR_INVALID);
    H_EXPECT(dsm_free(hdr), DSM_ERR_INVALID);
    H_EXPECT(dsm_free(wild), DSM_ERR_INVALID);
    for (int k = 0; k < 200; k++) { // random values inside the address space
        uint64_t s = (uint64_t)(k + 1) * 0x9E3779B97F4A7C15u, off = s % (64u << 20);
        off = k % 8 == 0 ? off & ~(uint64_t)15 : off; // some aligned: the tag refuses them
        dsm_gptr_t r = DSM_GPTR_NULL;
        if (dsm_gptr_make((int)(s >> 40) % n, off, &r) == DSM_OK &&
            (off % 16 != 0 || off > (1u << 20))) { // live blocks here are all below 1 MiB
            H_EXPECT(dsm_free(r), DSM_ERR_INVALID);
        }
    }
    dsm_gptr_t in1, in2;
    H_OK(dsm_gptr_add(mine, 16, &in1));
    H_OK(dsm_gptr_add(theirs, 32, &in2));
    H_EXPECT(dsm_free(in1), DSM_ERR_INVALID);
    H_EXPECT(dsm_free(in2), DSM_ERR_INVALID);
    H_OK(dsm_free(mine));
    H_OK(dsm_free(theirs));
    H_EXPECT(dsm_free(mine), DSM_ERR_INVALID);   // double free, local
    H_EXPECT(dsm_free(theirs), DSM_ERR_INVALID); // double free, remote (still pending)
    H_OK(dsm_barrier());
    H_EXPECT(dsm_free(theirs), DSM_ERR_INVALID); // and after its owner merged it
    expect_empty();
}

/* A remote allocation and free on an idle heap take the documented 6 operations. */
static void test_heap_remote_op_count(void)
{
    unsigned ops = 0, fl = 0;
    if (n > 1 && me == 1) {
        dsm_gptr_t g;
        H_OK(dsm_alloc_on(0, 64, &g));
        dsmi_heap_last_cost(&ops, &fl);
        printf("\n  remote alloc: %u RMA ops, %u flushes", ops, fl);
        CU_ASSERT(ops <= 6);
        H_OK(dsm_free(g));
        dsmi_heap_last_cost(&ops, &fl);
        printf("; remote free: %u RMA ops, %u flushes\n", ops, fl);
        CU_ASSERT(ops <= 6);
    }
    expect_empty();
}

/* Rank 1 fills rank 0's heap remotely until NOMEM (whose message names rank 0), frees
 * a block remotely (pending: rank 0 sits in a barrier and merges nothing), and
 * allocates the same size again: the remote allocator merges the pending frees itself. */
static void test_heap_remote_full_merges_pending(void)
{
    enum { MAXB = 16 };
    dsm_gptr_t g[MAXB];
    int nb = 0;
    if (n > 1 && me == 1) {
        dsm_usage_t u;
        H_OK(dsm_usage(0, &u));
        size_t chunk = (size_t)(u.capacity / 6);
        while (nb < MAXB && dsm_alloc_on(0, chunk, &g[nb]) == DSM_OK) {
            nb++;
        }
        CU_ASSERT(nb >= 5 && nb < MAXB);
        CU_ASSERT(strstr(dsm_last_error(), "rank 0") != NULL);
        H_OK(dsm_free(g[1])); // two neighbours (the wilderness hands out blocks in
        H_OK(dsm_free(g[2])); // order), deferred: rank 0 does not merge them now
        H_OK(dsm_usage(0, &u));
        CU_ASSERT(u.largest_free < chunk); // not merged yet
        unsigned ops = 0, fl = 0;
        dsm_gptr_t h = DSM_GPTR_NULL;
        H_OK(dsm_alloc_on(0, 3 * chunk / 2, &h)); // fits only once the two are merged
        dsmi_heap_last_cost(&ops, &fl);
        printf("\n  remote alloc that merged pending frees: %u RMA ops\n", ops);
        g[1] = h;
        g[2] = DSM_GPTR_NULL;
        for (int k = 0; k < nb; k++) {
            if (!dsm_gptr_is_null(g[k])) {
                H_OK(dsm_free(g[k]));
            }
        }
    }
    expect_empty();
}

/* ---- concurrent remote + local allocation on one target ---- */

#define PER_RANK 120

struct churn_arg {
    int target, owner, idx0, count;
    uint64_t seed;
    int errors;
};

/* Remote side: allocate count blocks on target, fill each, keep them (returned). */
static void remote_batch(struct churn_arg *a, dsm_gptr_t *g, size_t *len)
{
    for (int i = 0; i < a->count; i++) {
        len[i] = 1 + rnd(&a->seed) % 3000;
        if (dsm_alloc_on(a->target, len[i], &g[i]) != DSM_OK) {
            a->errors++;
            g[i] = DSM_GPTR_NULL;
            continue;
        }
        fill(g[i], len[i], a->owner, a->idx0 + i);
    }
}

/* Owner side: local alloc/free churn with its own pattern, checked before each free. */
static void local_churn(struct churn_arg *a)
{
    enum { SLOTS = 32 };
    dsm_gptr_t g[SLOTS] = {{0}};
    size_t len[SLOTS] = {0};
    for (int it = 0; it < a->count; it++) {
        int s = (int)(rnd(&a->seed) % SLOTS);
        if (!dsm_gptr_is_null(g[s])) {
            a->errors += verify(g[s], len[s], a->owner, a->idx0 + s) != 0;
            a->errors += dsm_free(g[s]) != DSM_OK;
            g[s] = DSM_GPTR_NULL;
        } else {
            len[s] = 1 + rnd(&a->seed) % 5000;
            a->errors += dsm_alloc(len[s], &g[s]) != DSM_OK;
            fill(g[s], len[s], a->owner, a->idx0 + s);
        }
    }
    for (int s = 0; s < SLOTS; s++) {
        if (!dsm_gptr_is_null(g[s])) {
            a->errors += verify(g[s], len[s], a->owner, a->idx0 + s) != 0;
            a->errors += dsm_free(g[s]) != DSM_OK;
        }
    }
}

/* Check and free a batch of blocks (remote frees when they live on another rank). */
static int check_and_free(struct churn_arg *a, dsm_gptr_t *g, size_t *len)
{
    int bad = 0;
    for (int i = 0; i < a->count; i++) {
        if (!dsm_gptr_is_null(g[i])) {
            bad += verify(g[i], len[i], a->owner, a->idx0 + i) != 0;
            bad += dsm_free(g[i]) != DSM_OK;
        }
    }
    return bad;
}

static void test_heap_remote_concurrent(void)
{
    const int target = n - 1;
    struct churn_arg a = {target, me, 1000 * me, PER_RANK, harness_seed() + (uint64_t)me, 0};
    dsm_gptr_t g[PER_RANK];
    size_t len[PER_RANK];
    H_OK(dsm_barrier());
    if (me == target) {
        a.count = 4 * PER_RANK;
        local_churn(&a);
    } else {
        remote_batch(&a, g, len);
    }
    CU_ASSERT_EQUAL(a.errors, 0);
    H_OK(dsm_barrier()); // all blocks written: check that none overlapped
    if (me != target) {
        CU_ASSERT_EQUAL(check_and_free(&a, g, len), 0);
    }
    expect_empty();
}

static void *thread_main(void *p)
{
    struct churn_arg *a = p;
    if (a->target == dsm_rank()) {
        local_churn(a);
        return NULL;
    }
    dsm_gptr_t *g = calloc((size_t)a->count, sizeof *g);
    size_t *len = calloc((size_t)a->count, sizeof *len);
    remote_batch(a, g, len);
    a->errors += check_and_free(a, g, len); // frees race the other threads' allocations
    free(g);
    free(len);
    return NULL;
}

/* The same with 3 threads per rank: the target's threads allocate locally while every
 * other rank's threads allocate on it and free remotely. */
static void test_heap_remote_threads(void)
{
    int provided = 0;
    MPI_Query_thread(&provided);
    if (provided != MPI_THREAD_MULTIPLE) {
        return;
    }
    enum { T = 3 };
    struct churn_arg a[T];
    H_OK(dsm_barrier());
    for (int t = 0; t < T; t++) {
        a[t] = (struct churn_arg){
            0, me, 100000 * me + 1000 * t, 24, harness_seed() * 31 + (uint64_t)(me * T + t), 0};
    }
    harness_threads(T, thread_main, a, sizeof a[0]);
    int errors = 0;
    for (int t = 0; t < T; t++) {
        errors += a[t].errors;
    }
    CU_ASSERT_EQUAL(errors, 0);
    expect_empty();
}

/* ---- seeded churn with the invariant checker ---- */

#define CHURN_SLOTS 256

static void churn_step(uint64_t *s, dsm_gptr_t *g, size_t *len, int *errors)
{
    int k = (int)(rnd(s) % CHURN_SLOTS);
    if (!dsm_gptr_is_null(g[k])) {
        *errors += dsm_free(g[k]) != DSM_OK; // local or remote, whoever owns it
        g[k] = DSM_GPTR_NULL;
        return;
    }
    uint64_t r = rnd(s) % 100;
    len[k] = r < 70 ? 1 + rnd(s) % 512 : r < 95 ? 1 + rnd(s) % 32768 : 1 + rnd(s) % 1048576;
    int where = rnd(s) % 4 == 0 ? (int)(rnd(s) % (uint64_t)n) : me;
    *errors += dsm_alloc_on(where, len[k], &g[k]) != DSM_OK;
}

static void test_heap_churn_invariants(void)
{
    uint64_t s = harness_seed() * 7919u + (uint64_t)me + 1;
    dsm_gptr_t g[CHURN_SLOTS] = {{0}};
    size_t len[CHURN_SLOTS] = {0};
    int errors = 0, bad_checks = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 200; i++) {
            churn_step(&s, g, len, &errors);
        }
        bad_checks += dsmi_heap_check(NULL) != DSM_OK; // while others still churn on us
    }
    for (int k = 0; k < CHURN_SLOTS; k++) {
        if (!dsm_gptr_is_null(g[k])) {
            errors += dsm_free(g[k]) != DSM_OK;
        }
    }
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_EQUAL(bad_checks, 0);
    expect_empty();
}

/* ---- fragmentation after churn at 80% fill ---- */

static void test_heap_fragmentation(void)
{
    enum { MAXB = 20000 };
    dsm_gptr_t *g = calloc(MAXB, sizeof *g);
    uint64_t s = harness_seed() * 104729u + (uint64_t)me, live = 0;
    dsm_usage_t u;
    H_OK(dsm_usage(me, &u));
    const uint64_t goal = u.capacity / 10 * 8;
    int nb = 0;
    for (int it = 0; it < 60000 && g; it++) { // fill to 80%, then churn around it
        if (u.in_use < goal && nb < MAXB) {
            if (dsm_alloc(16 + rnd(&s) % 16384, &g[nb]) == DSM_OK) {
                nb++;
            }
        } else if (nb > 0) {
            int k = (int)(rnd(&s) % (uint64_t)nb);
            H_OK(dsm_free(g[k]));
            g[k] = g[--nb];
        }
        if (it % 64 == 0) {
            H_OK(dsm_usage(me, &u));
        }
    }
    H_OK(dsm_usage(me, &u));
    live = u.in_use;
    // The published largest block can really be allocated.
    dsm_gptr_t big = DSM_GPTR_NULL;
    H_OK(dsm_alloc(u.largest_free - 16, &big));
    double frag = 1.0 - (double)u.largest_free / (double)u.free;
    printf("%s  rank %d: %d blocks, %.1f%% in use, %llu bytes free, largest allocation "
           "that succeeds %llu bytes (fragmentation 1 - largest/free = %.3f)\n",
           me == 0 ? "\n" : "", me, nb, 100.0 * (double)live / (double)u.capacity,
           (unsigned long long)u.free, (unsigned long long)(u.largest_free - 16), frag);
    H_OK(dsmi_heap_check(NULL));
    if (!dsm_gptr_is_null(big)) {
        H_OK(dsm_free(big));
    }
    for (int k = 0; k < nb; k++) {
        H_OK(dsm_free(g[k]));
    }
    free(g);
    expect_empty();
}

/* ---- collective symmetric allocation ---- */

static void test_heap_symmetric(void)
{
    // Different local layouts on each rank first, so offsets must be searched for.
    dsm_gptr_t pre[8], sym[4];
    for (int i = 0; i < 8; i++) {
        H_OK(dsm_alloc((size_t)(me + 1) * 1000 * (size_t)(i + 1), &pre[i]));
    }
    for (int i = 0; i < 8; i += 2 + me % 2) {
        H_OK(dsm_free(pre[i]));
        pre[i] = DSM_GPTR_NULL;
    }
    const size_t sizes[4] = {24, 5000, 1 << 16, 3 << 20};
    for (int i = 0; i < 4; i++) {
        H_OK(dsm_alloc_all(sizes[i], &sym[i]));
        uint64_t off = dsm_gptr_offset(sym[i]);
        CU_ASSERT(harness_all(harness_sum((long long)off) == (long long)off * n));
        dsm_gptr_t right;
        H_OK(dsm_gptr_make((me + 1) % n, off, &right));
        fill(right, sizes[i], me, i);
    }
    H_OK(dsm_barrier());
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(verify(sym[i], sizes[i], (me + n - 1) % n, i), 0);
    }
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_EXPECT(dsm_alloc_all(me == 0 ? 100 : 200, &g), n > 1 ? DSM_ERR_ARG : DSM_OK);
    if (n == 1) {
        H_OK(dsm_free_all(g));
    }
    H_EXPECT(dsm_alloc_all(0, &g), DSM_ERR_ARG);
    dsm_usage_t u;
    H_OK(dsm_usage(me, &u)); // more than 3 MiB are in use on every rank: this cannot fit
    H_EXPECT(dsm_alloc_all(u.capacity - (1u << 20), &g), DSM_ERR_NOMEM);
    H_EXPECT(dsm_free_all(DSM_GPTR_NULL), DSM_ERR_INVALID);
    for (int i = 0; i < 4; i++) {
        H_OK(dsm_free_all(sym[i]));
    }
    H_EXPECT(dsm_free_all(sym[0]), DSM_ERR_INVALID);
    for (int i = 0; i < 8; i++) {
        if (!dsm_gptr_is_null(pre[i])) {
            H_OK(dsm_free(pre[i]));
        }
    }
    expect_empty();
}

/* ---- usage as another rank sees it ---- */

static void test_heap_usage_remote(void)
{
    dsm_gptr_t g[5];
    for (int i = 0; i <= me && i < 5; i++) {
        H_OK(dsm_alloc(10000, &g[i]));
    }
    H_OK(dsm_barrier());
    for (int r = 0; r < n; r++) {
        dsm_usage_t u;
        H_OK(dsm_usage(r, &u));
        CU_ASSERT_EQUAL(u.blocks, (uint64_t)(r + 1 <= 5 ? r + 1 : 5));
        CU_ASSERT_EQUAL(u.in_use, u.blocks * (10000 + 16));
        CU_ASSERT_EQUAL(u.in_use + u.free, u.capacity);
    }
    H_OK(dsm_barrier());
    for (int i = 0; i <= me && i < 5; i++) {
        H_OK(dsm_free(g[i]));
    }
    expect_empty();
}

/* ---- reload after a restore ---- */

/* Copy [0, extent) of the segment aside, scribble over the whole segment, put the copy
 * back (what a restart does): the heap reloads and its blocks are intact. Then a damaged
 * copy is refused. Done by every rank on its own segment between barriers. */
static void test_heap_reload(void)
{
    dsm_gptr_t g[3];
    for (int i = 0; i < 3; i++) {
        H_OK(dsm_alloc(777 * (size_t)(i + 1), &g[i]));
        fill(g[i], 777 * (size_t)(i + 1), me, i);
    }
    H_OK(dsm_free(g[1]));
    H_OK(dsm_barrier());
    uint64_t ext = dsmi_heap_extent();
    CU_ASSERT(ext < dsmi_w.size / 2);
    char *copy = malloc(ext);
    if (copy) {
        memcpy(copy, dsmi_w.base, ext);
        memset(dsmi_w.base, 0xa5, dsmi_w.size);
        memcpy(dsmi_w.base, copy, ext);
        H_OK(dsmi_heap_reload());
        CU_ASSERT_EQUAL(verify(g[0], 777, me, 0) + verify(g[2], 3 * 777, me, 2), 0);
        uint64_t magic_off = DSMI_HDR_HEAP_OFF + 8, saved;
        memcpy(&saved, dsmi_w.base + magic_off, 8);
        memset(dsmi_w.base + magic_off, 0, 8);
        H_EXPECT(dsmi_heap_reload(), DSM_ERR_CORRUPT);
        memcpy(dsmi_w.base + magic_off, &saved, 8);
        uint64_t *hdr = (uint64_t *)(dsmi_w.base + dsm_gptr_offset(g[2]) - 16);
        hdr[0] += 16; // a block size that breaks the chain
        H_EXPECT(dsmi_heap_reload(), DSM_ERR_CORRUPT);
        hdr[0] -= 16;
        H_OK(dsmi_heap_reload());
        free(copy);
    }
    H_OK(dsm_barrier());
    H_OK(dsm_free(g[0]));
    H_OK(dsm_free(g[2]));
    expect_empty();
}

/* ---- alignment of addresses, not only of offsets ---- */

/* The local address of g on its owner (this rank), as an integer. */
static uintptr_t addr_of(dsm_gptr_t g)
{
    void *p = NULL;
    H_OK(dsm_gptr_local(g, &p));
    return (uintptr_t)p;
}

enum { NALIGN = 6 };
static const size_t aligns[NALIGN] = {16, 32, 4096, 8192, 65536, DSM_MAX_ALIGN};

/* Every block's address on its owner honours its alignment: 16 bytes for dsm_alloc,
 * dsm_calloc and dsm_alloc_on, any power of two up to DSM_MAX_ALIGN for
 * dsm_alloc_aligned; beyond that is DSM_ERR_ARG. The owner's local stores through those
 * addresses and other ranks' puts, gets and atomics through the pointers meet in the
 * same bytes (the segment start differs inside each rank's window). */
static void test_heap_aligned_addresses(void)
{
    dsm_gptr_t g[NALIGN], all[NALIGN * 64], z, h, big = DSM_GPTR_NULL;
    H_OK(dsm_gptr_make(me, DSMI_HDR_SIZE, &h));
    CU_ASSERT_EQUAL(addr_of(h) % DSM_MAX_ALIGN, DSMI_HDR_SIZE % DSM_MAX_ALIGN);
    H_OK(dsm_calloc(3, 40, &z));
    CU_ASSERT_EQUAL(addr_of(z) % 16, 0);
    for (int i = 0; i < NALIGN; i++) {
        H_OK(dsm_alloc_aligned(100 + 8 * (size_t)i, aligns[i], &g[i]));
        uintptr_t a = addr_of(g[i]);
        CU_ASSERT_EQUAL(dsm_gptr_offset(g[i]) % aligns[i], 0);
        CU_ASSERT_EQUAL(a % aligns[i], 0);
        if (a % aligns[i] != 0) {
            printf("\n  align %zu: address %#lx is %lu mod %zu\n", aligns[i], (unsigned long)a,
                   (unsigned long)(a % aligns[i]), aligns[i]);
        }
        uint64_t *p = (uint64_t *)a;
        if (p != NULL) {
            p[0] = (uint64_t)me * 1000 + (uint64_t)i; // a local store the others read
            p[1] = 0;                                 // the others' fetch-add target
        }
    }
    H_EXPECT(dsm_alloc_aligned(64, 2 * (size_t)DSM_MAX_ALIGN, &big), DSM_ERR_ARG);
    CU_ASSERT(strstr(dsm_last_error(), "DSM_MAX_ALIGN") != NULL);
    CU_ASSERT(dsm_gptr_is_null(big));
    MPI_Allgather(g, NALIGN, MPI_UINT64_T, all, NALIGN, MPI_UINT64_T, MPI_COMM_WORLD);
    H_OK(dsm_barrier());
    int right = (me + 1) % n, bad = 0;
    for (int i = 0; i < NALIGN && n <= 64; i++) {
        dsm_gptr_t t = all[right * NALIGN + i], t8;
        uint64_t v = 0, one = 1, put = UINT64_C(0xabcdef00) + (uint64_t)i;
        H_OK(dsm_get(&v, t, 8));
        bad += v != (uint64_t)right * 1000 + (uint64_t)i;
        H_OK(dsm_gptr_add(t, 8, &t8));
        H_OK(dsm_atomic_add_u64(t8, one));
        H_OK(dsm_gptr_add(t, 16, &t8));
        H_OK(dsm_put(t8, &put, 8));
    }
    CU_ASSERT_EQUAL(bad, 0);
    H_OK(dsm_barrier());
    for (int i = 0; i < NALIGN; i++) {
        const uint64_t *p = (const uint64_t *)addr_of(g[i]);
        if (p != NULL && n > 1) {
            CU_ASSERT_EQUAL(p[1], 1);
            CU_ASSERT_EQUAL(p[2], UINT64_C(0xabcdef00) + (uint64_t)i);
        }
        H_OK(dsm_free(g[i]));
    }
    H_OK(dsm_free(z));
    expect_empty();
}

/* Blocks allocated by another rank are 16-byte aligned on their owner too. */
static void test_heap_aligned_remote(void)
{
    dsm_gptr_t mine[4], all[4 * 64];
    int left = (me + n - 1) % n;
    for (int i = 0; i < 4; i++) {
        H_OK(dsm_alloc_on((me + 1) % n, 1 + 24 * (size_t)i, &mine[i]));
    }
    MPI_Allgather(mine, 4, MPI_UINT64_T, all, 4, MPI_UINT64_T, MPI_COMM_WORLD);
    for (int i = 0; i < 4 && n <= 64; i++) {
        CU_ASSERT_EQUAL(addr_of(all[left * 4 + i]) % 16, 0); // made by left, owned here
    }
    H_OK(dsm_barrier());
    for (int i = 0; i < 4; i++) {
        H_OK(dsm_free(mine[i]));
    }
    expect_empty();
}

/* ---- what dsm_free refuses, and its stated limit ---- */

/* Refused with DSM_ERR_INVALID and nothing changed: a second free while the block is
 * still free (local, and remote while pending), a free after the block was merged into
 * a neighbour, header, interior and made-up pointers (also in bad_input). */
static void test_heap_free_refusals(void)
{
    dsm_gptr_t x, y, guard, r, in;
    H_OK(dsm_alloc(300, &x));
    H_OK(dsm_alloc(300, &y));
    H_OK(dsm_alloc(64, &guard)); // keeps x and y away from the wilderness
    H_OK(dsm_free(y));
    H_EXPECT(dsm_free(y), DSM_ERR_INVALID); // still a free block
    CU_ASSERT(strstr(dsm_last_error(), "double free") != NULL);
    H_OK(dsm_free(x));                      // merges y into x: y's header is wiped
    H_EXPECT(dsm_free(y), DSM_ERR_INVALID); // after the merge
    H_EXPECT(dsm_free(x), DSM_ERR_INVALID); // the merged block is free
    /* Every rank's local checks are done before anyone allocates on a neighbour: with a
     * fair heap lock a remote dsm_alloc_on gets in between our two frees of y and
     * reuses its block, and the second free is then a stale free, not a double one. */
    H_OK(dsm_barrier());
    H_OK(dsm_alloc_on((me + 1) % n, 300, &r));
    H_OK(dsm_gptr_add(r, 64, &in));
    H_EXPECT(dsm_free(in), DSM_ERR_INVALID); // interior
    H_OK(dsm_free(r));
    H_EXPECT(dsm_free(r), DSM_ERR_INVALID); // remote, pending
    H_OK(dsm_free(guard));
    expect_empty();
}

/* The stated limit: a pointer carries no generation (64 bits: rank and offset), so once
 * the owner hands the freed address out again, a stale free of the old pointer frees
 * the new block, as with malloc. Pinned here so a change of it is seen: each rank frees
 * a block on its right neighbour remotely, the neighbour's next dsm_alloc of that size
 * reuses the address, and the stale free then succeeds and frees the new block. */
static void test_heap_stale_free_limit(void)
{
    dsm_gptr_t old = DSM_GPTR_NULL, fresh = DSM_GPTR_NULL, olds[64];
    const int right = (me + 1) % n, left = (me + n - 1) % n;
    // 400 bytes: above the owner's cache of small blocks, which reuses its own frees at
    // once (the same limit) but never a remote free's block before it is merged.
    H_OK(dsm_alloc_on(right, 400, &old));
    H_OK(dsm_free(old)); // deferred: on right's pending list
    H_OK(dsm_barrier());
    H_OK(dsm_alloc(400, &fresh)); // merges the pending free, takes its address again
    MPI_Allgather(&old, 1, MPI_UINT64_T, olds, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    bool reused = n <= 64 && dsm_gptr_equal(olds[left], fresh);
    CU_ASSERT_TRUE(reused); // the premise: the address was handed out again
    H_OK(dsm_barrier());
    H_OK(dsm_free(old)); // stale, not refused: it frees right's new block
    H_OK(dsm_barrier());
    H_EXPECT(dsm_free(fresh), DSM_ERR_INVALID); // already freed by the stale free
    expect_empty();
}

/* ---- a wiped rank until dsm_recover ---- */

/* Restart mpidsm with a checkpoint directory in dir (rank 0 makes it) or without. */
static void restart_dsm(const char *dir)
{
    H_OK(dsm_finalize());
    if (dir != NULL) {
        setenv("DSM_CKPT_DIR", dir, 1);
        setenv("DSM_CKPT_JOB", "wiped", 1);
    } else {
        unsetenv("DSM_CKPT_DIR");
        unsetenv("DSM_CKPT_JOB");
    }
    H_OK(dsm_init(NULL, NULL));
}

/* After dsm_simulate_failure(v) rank v's segment is zeroes, its heap roots included:
 * every allocation on v, by v itself (dsm_alloc, dsm_calloc, dsm_alloc_on(v)) as by the
 * others, is DSM_ERR_CORRUPT and hands out nothing (never a pointer into the runtime
 * header), until dsm_recover brings the heap back. */
static void test_heap_wiped_rank(void)
{
    char dir[64] = "/tmp/dsm-test-heap-XXXXXX";
    if (me == 0) {
        CU_ASSERT_PTR_NOT_NULL(mkdtemp(dir));
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    restart_dsm(dir);
    const int v = 1 % n;
    dsm_gptr_t keep = DSM_GPTR_NULL, g = DSM_GPTR_NULL;
    H_OK(dsm_alloc(100, &keep));
    fill(keep, 100, me, 7);
    H_OK(dsm_checkpoint());
    H_OK(dsm_simulate_failure(v));
    H_EXPECT(dsm_alloc_on(v, 64, &g), DSM_ERR_CORRUPT);
    if (me == v) {
        H_EXPECT(dsm_alloc(64, &g), DSM_ERR_CORRUPT);
        H_EXPECT(dsm_calloc(4, 16, &g), DSM_ERR_CORRUPT);
        H_EXPECT(dsm_alloc_aligned(64, 4096, &g), DSM_ERR_CORRUPT);
        H_EXPECT(dsm_free(keep), DSM_ERR_CORRUPT);
    }
    CU_ASSERT(dsm_gptr_is_null(g)); // no pointer handed out, into the header or elsewhere
    H_OK(dsm_recover());
    CU_ASSERT_EQUAL(verify(keep, 100, me, 7), 0);
    H_OK(dsm_alloc_on(v, 64, &g));
    H_OK(dsm_free(g));
    H_OK(dsm_free(keep));
    expect_empty();
    restart_dsm(NULL);
    if (me == 0) {
        char cmd[96];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
}

/* ---- the owner's cache of small blocks (heap_cache.c) ---- */

/* A block freed into its owner's cache is refused as a second free, by the owner and by
 * a remote rank; it counts as in use in the owner's usage as others see it, and not in
 * the owner's own dsm_usage of itself, which returns the cache first, nor after a
 * dsm_barrier, which does too. */
static void test_heap_cache_refusals(void)
{
    dsm_gptr_t g = DSM_GPTR_NULL, all[64] = {{0}};
    dsm_usage_t u;
    H_OK(dsm_alloc(100, &g));
    H_OK(dsm_free(g)); // into the cache
    CU_ASSERT(dsmi_hcache_bytes() > 0);
    H_EXPECT(dsm_free(g), DSM_ERR_INVALID);
    CU_ASSERT(strstr(dsm_last_error(), "double free") != NULL);
    // MPI's barrier, not dsm_barrier (which would return the cache)
    MPI_Allgather(&g, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    const int right = (me + 1) % n;
    H_OK(dsm_usage(right, &u)); // right's cached blocks, lazily published as in use
    CU_ASSERT(u.in_use >= 128 && u.blocks >= 1);
    CU_ASSERT_EQUAL(u.in_use + u.free, u.capacity);
    if (n <= 64) {
        H_EXPECT(dsm_free(all[right]), DSM_ERR_INVALID); // remote free of a cached block
        CU_ASSERT(strstr(dsm_last_error(), "double free") != NULL);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    H_OK(dsm_alloc(100, &g));
    H_OK(dsm_free(g)); // the cache again, for the barrier to return
    H_OK(dsm_barrier());
    CU_ASSERT_EQUAL(dsmi_hcache_bytes(), 0);
    H_OK(dsm_usage(right, &u)); // every cache returned by the barrier: exact everywhere
    CU_ASSERT_EQUAL(u.in_use, 0);
    CU_ASSERT_EQUAL(u.blocks, 0);
    H_OK(dsm_barrier());
    H_OK(dsm_usage(me, &u)); // returns this rank's cache first: exact
    CU_ASSERT_EQUAL(u.in_use, 0);
    CU_ASSERT_EQUAL(u.blocks, 0);
    CU_ASSERT_EQUAL(dsmi_hcache_bytes(), 0);
    expect_empty();
}

enum { CACHE_NB = 40 };

/* Allocate CACHE_NB small blocks, fill them, free the odd ones into the cache. */
static void cache_half(dsm_gptr_t *g)
{
    for (int i = 0; i < CACHE_NB; i++) {
        H_OK(dsm_alloc(64, &g[i]));
        fill(g[i], 64, me, i);
    }
    for (int i = 1; i < CACHE_NB; i += 2) {
        H_OK(dsm_free(g[i]));
    }
    CU_ASSERT(dsmi_hcache_bytes() >= CACHE_NB / 2 * 80);
}

/* After a restore: the even blocks are live and intact, nothing else is (the cached
 * blocks came back free, not leaked), and new allocations never land on a live block. */
static void cache_after_restore(dsm_gptr_t *g)
{
    struct dsmi_heap_report r;
    dsm_gptr_t h[CACHE_NB];
    int bad = 0;
    CU_ASSERT_EQUAL(dsmi_hcache_bytes(), 0);
    H_OK(dsmi_heap_check(&r));
    CU_ASSERT_EQUAL(r.blocks, CACHE_NB / 2);
    for (int i = 0; i < CACHE_NB; i++) {
        H_OK(dsm_alloc(64, &h[i]));
        fill(h[i], 64, me, 1000 + i);
    }
    for (int i = 0; i < CACHE_NB; i += 2) {
        bad += verify(g[i], 64, me, i) != 0;
    }
    for (int i = 0; i < CACHE_NB; i++) {
        bad += verify(h[i], 64, me, 1000 + i) != 0;
        H_OK(dsm_free(h[i]));
    }
    for (int i = 0; i < CACHE_NB; i += 2) {
        H_OK(dsm_free(g[i]));
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* A segment image taken while the cache holds blocks (no checkpoint returned them, as
 * when another thread allocated during one) reloads with those blocks free. */
static void test_heap_cache_reload(void)
{
    dsm_gptr_t g[CACHE_NB];
    cache_half(g);
    H_OK(dsm_barrier());
    uint64_t ext = dsmi_heap_extent();
    char *copy = malloc(ext);
    if (copy) {
        memcpy(copy, dsmi_w.base, ext);
        memset(dsmi_w.base, 0xa5, dsmi_w.size);
        memcpy(dsmi_w.base, copy, ext);
        free(copy);
        H_OK(dsmi_heap_reload());
        cache_after_restore(g);
    }
    expect_empty();
}

/* A checkpoint taken while the cache holds blocks, and a restart from it. */
static void test_heap_cache_restart(void)
{
    char dir[64] = "/tmp/dsm-test-heapc-XXXXXX";
    dsm_gptr_t g[CACHE_NB];
    if (me == 0) {
        CU_ASSERT_PTR_NOT_NULL(mkdtemp(dir));
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    restart_dsm(dir);
    cache_half(g);
    H_OK(dsm_checkpoint());
    const char *was = getenv("DSM_RESTART");
    char saved[32] = "";
    snprintf(saved, sizeof saved, "%s", was ? was : "");
    setenv("DSM_RESTART", "required", 1);
    restart_dsm(dir);
    if (was != NULL) {
        setenv("DSM_RESTART", saved, 1);
    } else {
        unsetenv("DSM_RESTART");
    }
    uint64_t e = 0;
    CU_ASSERT_TRUE(dsm_restarted(&e));
    cache_after_restore(g);
    expect_empty();
    restart_dsm(NULL);
    if (me == 0) {
        char cmd[96];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
}

/* Threads of one rank allocating and freeing small blocks at once, sharing the cache:
 * every block keeps its own pattern from its allocation to its free. */
static void *cache_thread(void *p)
{
    struct churn_arg *a = p;
    enum { SLOTS = 16 };
    dsm_gptr_t g[SLOTS] = {{0}};
    for (int it = 0; it < a->count; it++) {
        int s = (int)(rnd(&a->seed) % SLOTS);
        if (!dsm_gptr_is_null(g[s])) {
            a->errors += verify(g[s], 200, a->owner, a->idx0 + s) != 0;
            a->errors += dsm_free(g[s]) != DSM_OK;
            g[s] = DSM_GPTR_NULL;
        } else {
            a->errors += dsm_alloc(1 + rnd(&a->seed) % 256, &g[s]) != DSM_OK;
            a->errors += dsm_free(g[s]) != DSM_OK; // and again: reuse at once
            a->errors += dsm_alloc(200, &g[s]) != DSM_OK;
            fill(g[s], 200, a->owner, a->idx0 + s);
        }
    }
    for (int s = 0; s < SLOTS; s++) {
        if (!dsm_gptr_is_null(g[s])) {
            a->errors += verify(g[s], 200, a->owner, a->idx0 + s) != 0;
            a->errors += dsm_free(g[s]) != DSM_OK;
        }
    }
    return NULL;
}

static void test_heap_cache_threads(void)
{
    int provided = 0;
    MPI_Query_thread(&provided);
    if (provided != MPI_THREAD_MULTIPLE) {
        return;
    }
    enum { T = 4 };
    struct churn_arg a[T];
    int errors = 0;
    for (int t = 0; t < T; t++) {
        a[t] = (struct churn_arg){me, me, 100 * t, 20000, harness_seed() * 17 + (uint64_t)t, 0};
    }
    harness_threads(T, cache_thread, a, sizeof a[0]);
    for (int t = 0; t < T; t++) {
        errors += a[t].errors;
    }
    CU_ASSERT_EQUAL(errors, 0);
    expect_empty();
}

static CU_TestInfo cases[] = {
    {"local_basic", test_heap_local_basic},
    {"bad_input", test_heap_bad_input},
    {"remote_op_count", test_heap_remote_op_count},
    {"remote_full_merges_pending", test_heap_remote_full_merges_pending},
    {"remote_concurrent", test_heap_remote_concurrent},
    {"remote_threads", test_heap_remote_threads},
    {"churn_invariants", test_heap_churn_invariants},
    {"fragmentation", test_heap_fragmentation},
    {"symmetric", test_heap_symmetric},
    {"usage_remote", test_heap_usage_remote},
    {"reload", test_heap_reload},
    {"aligned_addresses", test_heap_aligned_addresses},
    {"aligned_remote", test_heap_aligned_remote},
    {"free_refusals", test_heap_free_refusals},
    {"stale_free_limit", test_heap_stale_free_limit},
    {"wiped_rank", test_heap_wiped_rank},
    {"cache_refusals", test_heap_cache_refusals},
    {"cache_reload", test_heap_cache_reload},
    {"cache_restart", test_heap_cache_restart},
    {"cache_threads", test_heap_cache_threads},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_LOG_LEVEL", "none", 0); // the expected errors stay quiet
    struct harness_suite s = {"heap", 1, true, cases};
    return harness_main(argc, argv, &s);
}
