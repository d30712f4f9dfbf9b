/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * placement: the key hash's balance over 4, 16, 64 and 1000 ranks and the keys it moves
 * when a rank is added (computed offline with the pure dsmi_place_hash: 1M keys), that
 * dsm_place agrees on every rank, keyed allocation lands there, and balanced allocation
 * spreads blocks and avoids a full rank, probing full ranks without failing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "placement.h"

#define KEYS 1000000

static int me, n;

/* max/mean keys per rank for KEYS integer keys over nr ranks. */
static double balance(int nr)
{
    int *count = calloc((size_t)nr, sizeof *count), max = 0;
    for (uint64_t k = 0; k < KEYS && count; k++) {
        int r = dsmi_place_hash(&k, sizeof k, nr);
        if (r >= 0 && r < nr && ++count[r] > max) {
            max = count[r];
        }
    }
    free(count);
    return (double)max / ((double)KEYS / nr);
}

static void test_placement_balance(void)
{
    me = dsm_rank();
    n = dsm_nranks();
    const int ranks[4] = {4, 16, 64, 1000};
    const double limit[4] = {1.01, 1.02, 1.04, 1.15}; // about 4 standard deviations
    if (me == 0) {                                    // pure computation: one rank is enough
        printf("\n");
        for (int i = 0; i < 4; i++) {
            double b = balance(ranks[i]);
            printf("  %d keys over %4d ranks: max/mean %.4f\n", KEYS, ranks[i], b);
            CU_ASSERT(b >= 1.0 && b < limit[i]);
        }
    }
}

/* Growing from nr to nr + 1 ranks: about KEYS/(nr + 1) keys move, all to the new rank. */
static void test_placement_moves(void)
{
    const int ranks[4] = {4, 16, 64, 1000};
    if (me != 0) {
        return;
    }
    for (int i = 0; i < 4; i++) {
        int nr = ranks[i];
        long moved = 0, elsewhere = 0;
        for (uint64_t k = 0; k < KEYS; k++) {
            int a = dsmi_place_hash(&k, sizeof k, nr), b = dsmi_place_hash(&k, sizeof k, nr + 1);
            moved += a != b;
            elsewhere += a != b && b != nr;
        }
        double ideal = (double)KEYS / (nr + 1);
        printf("  %d -> %d ranks: %ld keys moved (%.2f%%; ideal %.0f), %ld to an old rank\n", nr,
               nr + 1, moved, 100.0 * (double)moved / KEYS, ideal, elsewhere);
        CU_ASSERT(moved > 0.9 * ideal && moved < 1.1 * ideal);
        CU_ASSERT_EQUAL(elsewhere, 0);
    }
}

/* Shrinking from n to m ranks (a restart on fewer ranks, mpidsm.h dsm_place): a key of
 * a rank below m stays; only the keys of ranks m..n-1, about (n - m) / n, move. */
static void test_placement_shrink(void)
{
    const int from[3] = {4, 4, 8}, to[3] = {2, 3, 5};
    if (me != 0) {
        return;
    }
    for (int i = 0; i < 3; i++) {
        int nr = from[i], m = to[i];
        long moved = 0, kept_wrong = 0;
        for (uint64_t k = 0; k < KEYS; k++) {
            int a = dsmi_place_hash(&k, sizeof k, nr), b = dsmi_place_hash(&k, sizeof k, m);
            moved += a != b;
            kept_wrong += a < m && a != b;
        }
        double ideal = (double)KEYS * (nr - m) / nr;
        printf("  %d -> %d ranks: %ld keys moved (%.2f%%; ideal %.0f)\n", nr, m, moved,
               100.0 * (double)moved / KEYS, ideal);
        CU_ASSERT(moved > 0.9 * ideal && moved < 1.1 * ideal);
        CU_ASSERT_EQUAL(kept_wrong, 0);
    }
}

static void test_placement_place(void)
{
    int r = -1, sum_bad = 0;
    unsigned long long digest = 0; // unsigned: the digest wraps by design
    for (int k = 0; k < 1000; k++) {
        char key[32];
        int len = snprintf(key, sizeof key, "key-%d", k);
        H_OK(dsm_place(key, (size_t)len, &r));
        sum_bad += r < 0 || r >= n || r != dsmi_place_hash(key, (size_t)len, n);
        digest = digest * 31 + (unsigned long long)r + 1;
    }
    CU_ASSERT_EQUAL(sum_bad, 0);
    // The same answers on every rank: one digest of them all, compared through a sum.
    long long low = (long long)(digest & 0xffffffffffffULL); // room for the sum of n copies
    CU_ASSERT(harness_all(harness_sum(low) == low * n));
    H_OK(dsm_place(NULL, 0, &r)); // the empty key is a key
    H_EXPECT(dsm_place(NULL, 4, &r), DSM_ERR_ARG);
    H_EXPECT(dsm_place("k", 1, NULL), DSM_ERR_ARG);
    dsm_gptr_t g;
    H_EXPECT(dsm_alloc_keyed(NULL, 3, 8, &g), DSM_ERR_ARG);
    H_EXPECT(dsm_alloc_keyed("k", 1, 0, &g), DSM_ERR_ARG);
    H_OK(dsm_barrier());
}

static void test_placement_keyed(void)
{
    enum { K = 40 };
    dsm_gptr_t g[K];
    int bad = 0;
    for (int k = 0; k < K; k++) {
        uint64_t key = (uint64_t)me * 1000 + (uint64_t)k;
        int r = -1;
        H_OK(dsm_place(&key, sizeof key, &r));
        H_OK(dsm_alloc_keyed(&key, sizeof key, 100 + (size_t)k, &g[k]));
        bad += dsm_gptr_rank(g[k]) != r;
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (int k = 0; k < K; k++) {
        H_OK(dsm_free(g[k]));
    }
    H_OK(dsm_barrier());
}

static uint64_t used(int r)
{
    dsm_usage_t u = {0};
    H_OK(dsm_usage(r, &u));
    return u.in_use;
}

/* Every rank allocates 32 blocks balanced: the load spreads (max/mean printed); then
 * rank 0 fills itself and the others' balanced allocations all avoid it. */
static void test_placement_balanced(void)
{
    enum { K = 32, BIG = 64 };
    dsm_gptr_t g[K], big[BIG];
    for (int k = 0; k < K; k++) {
        H_OK(dsm_alloc_balanced(20000, &g[k]));
    }
    H_OK(dsm_barrier());
    uint64_t max = 0, sum = 0;
    for (int r = 0; r < n; r++) {
        uint64_t u = used(r);
        max = u > max ? u : max;
        sum += u;
    }
    if (me == 0) {
        printf("\n  balanced: %d x %d blocks, max/mean bytes per rank %.3f\n", n, K,
               (double)max / ((double)sum / n));
    }
    CU_ASSERT((double)max <= 1.5 * ((double)sum / n));
    H_OK(dsm_barrier());
    for (int k = 0; k < K; k++) {
        H_OK(dsm_free(g[k]));
    }
    H_OK(dsm_barrier());
    int nbig = 0;
    if (me == 0) { // fill rank 0 until not even 100 KB fits
        dsm_usage_t u;
        H_OK(dsm_usage(0, &u));
        size_t chunk = (size_t)(u.capacity / (BIG - 1));
        while (nbig < BIG && dsm_alloc(chunk, &big[nbig]) == DSM_OK) {
            nbig++;
        }
        while (nbig < BIG && dsm_alloc(50000, &big[nbig]) == DSM_OK) {
            nbig++;
        }
    }
    H_OK(dsm_barrier());
    int on0 = 0;
    for (int k = 0; k < K && me != 0; k++) {
        H_OK(dsm_alloc_balanced(100000, &g[k]));
        on0 += dsm_gptr_rank(g[k]) == 0;
    }
    CU_ASSERT_EQUAL(on0, 0);
    H_OK(dsm_barrier());
    for (int k = 0; k < K && me != 0; k++) {
        H_OK(dsm_free(g[k]));
    }
    for (int k = 0; k < nbig; k++) {
        H_OK(dsm_free(big[k]));
    }
    H_OK(dsm_barrier());
    CU_ASSERT_EQUAL(used(me), 0);
    H_OK(dsm_barrier());
}

/* Balanced allocation probes ranks whose published usage may be stale: a full rank is
 * an answer, not a failure. A probe's expected code is recorded (dsm_last_error) but not
 * counted, logged or fatal, even under DSM_ERRORS=abort (set here on this rank: a slip
 * aborts the suite); any other code inside a probe, or the same code outside, counts. */
static void test_placement_probe(void)
{
    dsm_gptr_t g = DSM_GPTR_NULL, keep = DSM_GPTR_NULL;
    dsm_usage_t u;
    H_OK(dsm_usage(me, &u));
    size_t half = (size_t)u.capacity / 2, huge = half + 4096; // a valid size that cannot fit
    H_OK(dsm_alloc_on(me, half, &keep));
    uint64_t e0 = atomic_load(&dsmi_stat.errors);
    int saved = dsmi_rt.cfg.ERRORS;
    dsmi_rt.cfg.ERRORS = DSMI_ERRORS_ABORT;
    int outer = dsmi_probe_begin(DSM_ERR_NOMEM);
    int rc = dsm_alloc_on(me, huge, &g);
    dsmi_probe_end(outer);
    dsmi_rt.cfg.ERRORS = saved;
    CU_ASSERT_EQUAL(rc, DSM_ERR_NOMEM);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "dsm_alloc_on"));
    CU_ASSERT_EQUAL(atomic_load(&dsmi_stat.errors), e0);
    outer = dsmi_probe_begin(DSM_ERR_NOMEM);
    H_EXPECT(dsm_alloc_on(me, 0, &g), DSM_ERR_ARG);
    dsmi_probe_end(outer);
    CU_ASSERT_EQUAL(atomic_load(&dsmi_stat.errors), e0 + 1);
    H_EXPECT(dsm_alloc_on(me, huge, &g), DSM_ERR_NOMEM);
    CU_ASSERT_EQUAL(atomic_load(&dsmi_stat.errors), e0 + 2);
    H_OK(dsm_free(keep));
    H_OK(dsm_barrier());
}

static CU_TestInfo cases[] = {
    {"balance", test_placement_balance}, {"moves", test_placement_moves},
    {"shrink", test_placement_shrink},   {"place", test_placement_place},
    {"keyed", test_placement_keyed},     {"balanced", test_placement_balanced},
    {"probe", test_placement_probe},     CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_LOG_LEVEL", "none", 0);
    struct harness_suite s = {"placement", 1, true, cases};
    return harness_main(argc, argv, &s);
}
