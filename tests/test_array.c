/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * array: distributed arrays in every layout (1-D and 2-D; block, cyclic, block-cyclic;
 * chosen and explicit grids; int64 and double). For each, the owners fill their local
 * parts in place, and every rank checks the whole array through patch gets, element
 * locations and dsm_get, then through patch puts of disjoint rows and accumulates from
 * every rank (exact sums). Then the read-and-increment counter, many rounds of gets in
 * flight at once (each must be complete when the call returns) and every bad input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int me, n;

static double f(int64_t i, int64_t j)
{
    return (double)(i * 1000 + j);
}

/* Element e of an array of the given type, as a double. */
static double elem(int type, const void *buf, int64_t e)
{
    return type == DSM_ARRAY_INT64 ? (double)((const int64_t *)buf)[e] : ((const double *)buf)[e];
}

static void set(int type, void *buf, int64_t e, double v)
{
    if (type == DSM_ARRAY_INT64) {
        ((int64_t *)buf)[e] = (int64_t)v;
    } else {
        ((double *)buf)[e] = v;
    }
}

static double f3(int64_t i, int64_t j, int tag)
{
    (void)tag;
    return f(i, j);
}

/* The owners write f(i, j) into their local parts in place; the local counts add up. */
static void fill_local(dsm_array_t a, const dsm_array_desc_t *d)
{
    long long mine = harness_array_fill(a, d, f3, 0);
    long long cols = d->ndim == 2 ? d->dims[1] : 1;
    CU_ASSERT_EQUAL(harness_sum(mine), d->dims[0] * cols);
}

/* Every element equals want(i, j) + add, read by one whole-array get, by locate + get. */
static void check_all(dsm_array_t a, const dsm_array_desc_t *d, double add)
{
    int64_t rows = d->dims[0], cols = d->ndim == 2 ? d->dims[1] : 1;
    void *buf = calloc((size_t)(rows * cols), 8);
    int64_t lo[2] = {0, 0}, hi[2] = {rows - 1, cols - 1};
    H_OK(dsm_array_get(a, lo, hi, buf, cols));
    int bad = 0;
    for (int64_t i = 0; buf && i < rows; i++) {
        for (int64_t j = 0; j < cols; j++) {
            double want = f(i, j) + add, got = elem(d->type, buf, i * cols + j);
            if (got != want && bad++ == 0) { // the first wrong element, to tell how
                int64_t idx[2] = {i, j};
                int owner = -1;
                dsm_gptr_t g;
                (void)dsm_array_locate(a, idx, &owner, &g);
                fprintf(stderr,
                        "[rank %d] %d-D type %d dist %d,%d: (%lld, %lld) of rank %d is %g, "
                        "not %g\n",
                        me, d->ndim, d->type, d->dist[0], d->dist[1], (long long)i, (long long)j,
                        owner, got, want);
            }
            if ((i * cols + j) % 23 == me % 23) { // a sample through the element's pointer
                int64_t idx[2] = {i, j};
                int rank = -1;
                dsm_gptr_t g;
                H_OK(dsm_array_locate(a, idx, &rank, &g));
                int64_t raw = 0;
                H_OK(dsm_get(&raw, g, 8));
                bad += elem(d->type, &raw, 0) != want || rank != dsm_gptr_rank(g);
            }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(buf);
}

/* Rank r rewrites the rows r, r + n, ... with f + add: one patch put per row, from a
 * buffer with a longer ld than the row. */
static void put_rows(dsm_array_t a, const dsm_array_desc_t *d, double add)
{
    int64_t cols = d->ndim == 2 ? d->dims[1] : 1, ld = cols + 3;
    double *row = malloc((size_t)ld * 8);
    for (int64_t i = me; row && i < d->dims[0]; i += n) {
        for (int64_t j = 0; j < cols; j++) {
            set(d->type, row, j, f(i, j) + add);
        }
        int64_t lo[2] = {i, 0}, hi[2] = {i, cols - 1};
        H_OK(dsm_array_put(a, lo, hi, row, ld));
    }
    free(row);
    H_OK(dsm_barrier());
}

/* Every rank adds r + 1 to the interior patch (all but the first row and column). */
static void acc_interior(dsm_array_t a, const dsm_array_desc_t *d)
{
    int64_t rows = d->dims[0], cols = d->ndim == 2 ? d->dims[1] : 1;
    int64_t j0 = d->ndim == 2 ? 1 : 0, w = cols - j0;
    if (rows < 2 || w < 1) {
        return;
    }
    void *buf = malloc((size_t)((rows - 1) * w) * 8);
    for (int64_t e = 0; buf && e < (rows - 1) * w; e++) {
        set(d->type, buf, e, me + 1);
    }
    int64_t lo[2] = {1, j0}, hi[2] = {rows - 1, cols - 1};
    H_OK(dsm_array_acc(a, lo, hi, buf, w));
    free(buf);
    H_OK(dsm_barrier());
    double total = n * (n + 1) / 2.0;
    void *all = calloc((size_t)(rows * cols), 8);
    int64_t glo[2] = {0, 0}, ghi[2] = {rows - 1, cols - 1};
    H_OK(dsm_array_get(a, glo, ghi, all, cols));
    int bad = 0;
    for (int64_t i = 0; all && i < rows; i++) {
        for (int64_t j = 0; j < cols; j++) {
            bool in = i >= 1 && j >= j0;
            bad += elem(d->type, all, i * cols + j) != f(i, j) + (in ? total : 0);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(all);
    H_OK(dsm_barrier());
}

static void one_layout(dsm_array_desc_t d)
{
    dsm_array_t a = NULL;
    H_OK(dsm_array_create(&d, &a));
    if (!harness_all(a != NULL)) {
        return;
    }
    fill_local(a, &d);
    check_all(a, &d, 0);
    H_OK(dsm_barrier());
    put_rows(a, &d, 1);
    check_all(a, &d, 1);
    H_OK(dsm_barrier());
    put_rows(a, &d, 0);
    acc_interior(a, &d);
    H_OK(dsm_array_destroy(a));
}

static void test_array_layouts_1d(void)
{
    me = dsm_rank();
    n = dsm_nranks();
    const int dists[3] = {DSM_DIST_BLOCK, DSM_DIST_CYCLIC, DSM_DIST_BLOCK_CYCLIC};
    for (int t = DSM_ARRAY_INT64; t <= DSM_ARRAY_DOUBLE; t++) {
        for (int k = 0; k < 3; k++) {
            dsm_array_desc_t d = {t, 1, {37, 0}, {dists[k], 0}, {5, 0}, {0, 0}};
            one_layout(d);
        }
    }
    dsm_array_desc_t tiny = {DSM_ARRAY_INT64, 1, {2, 0}, {DSM_DIST_BLOCK, 0}, {0, 0}, {0, 0}};
    one_layout(tiny); // fewer elements than ranks: some own nothing
}

static void test_array_layouts_2d(void)
{
    const int dists[3] = {DSM_DIST_BLOCK, DSM_DIST_CYCLIC, DSM_DIST_BLOCK_CYCLIC};
    for (int t = DSM_ARRAY_INT64; t <= DSM_ARRAY_DOUBLE; t++) {
        for (int k = 0; k < 3; k++) {
            dsm_array_desc_t d = {t, 2, {13, 11}, {dists[k], dists[2 - k]}, {3, 2}, {0, 0}};
            one_layout(d);
        }
    }
    dsm_array_desc_t col = {DSM_ARRAY_DOUBLE, 2,     {9, 17}, {DSM_DIST_BLOCK_CYCLIC, 1},
                            {2, 4},           {1, n}}; // a 1 x P grid: columns dealt out
    one_layout(col);
    dsm_array_desc_t row = {DSM_ARRAY_INT64, 2, {17, 9}, {DSM_DIST_CYCLIC, 0}, {0, 0}, {n, 1}};
    one_layout(row);
}

/* A shared counter: read-and-increment from every rank hands out each value once (their
 * sum is 0 + 1 + ... + N-1), and accumulates on the same element add atomically. */
static void test_array_read_inc(void)
{
    enum { ITERS = 100 };
    dsm_array_desc_t d = {DSM_ARRAY_INT64, 1, {8, 0}, {DSM_DIST_CYCLIC, 0}, {0, 0}, {0, 0}};
    dsm_array_t a = NULL;
    H_OK(dsm_array_create(&d, &a));
    if (!harness_all(a != NULL)) {
        return;
    }
    int64_t idx[1] = {5}, sum = 0, one = 1, v = 0;
    for (int i = 0; i < ITERS; i++) {
        int64_t old = -1;
        H_OK(dsm_array_read_inc(a, idx, 1, &old));
        sum += old;
    }
    long long total = (long long)ITERS * n;
    CU_ASSERT_EQUAL(harness_sum(sum), total * (total - 1) / 2);
    for (int i = 0; i < ITERS; i++) {
        H_OK(dsm_array_acc(a, idx, idx, &one, 1));
    }
    H_OK(dsm_barrier());
    H_OK(dsm_array_get(a, idx, idx, &v, 1));
    CU_ASSERT_EQUAL(v, 2 * total);
    H_OK(dsm_array_destroy(a));
}

static double f_round(int64_t i, int64_t j, int round)
{
    return (double)(round * 100000 + i * 100 + j);
}

/* Gets in flight: a whole-array get of a cyclic x cyclic array is one small get per
 * element, completed together (on MPICH 4.0 a single MPI_Win_flush_all lost some, which
 * read zeros or landed after the buffer was freed). Many rounds, a new value each. */
static void test_array_gets_in_flight(void)
{
    enum { ROUNDS = 200, R = 12, C = 10 };
    dsm_array_desc_t d = {DSM_ARRAY_INT64, 2,     {R, C}, {DSM_DIST_CYCLIC, DSM_DIST_CYCLIC},
                          {0, 0},          {0, 0}};
    dsm_array_t a = NULL;
    H_OK(dsm_array_create(&d, &a));
    if (!harness_all(a != NULL)) {
        return;
    }
    int64_t lo[2] = {0, 0}, hi[2] = {R - 1, C - 1}, all[R * C];
    int bad = 0, first = -1;
    for (int round = 1; round <= ROUNDS; round++) {
        harness_array_fill(a, &d, f_round, round); // and a barrier
        memset(all, 0, sizeof all);
        H_OK(dsm_array_get(a, lo, hi, all, C));
        for (int e = 0; e < R * C; e++) {
            if (all[e] != round * 100000 + (e / C) * 100 + e % C && bad++ == 0) {
                first = round;
            }
        }
        H_OK(dsm_barrier());
    }
    if (bad) {
        fprintf(stderr, "[rank %d] %d elements wrong, the first in round %d of %d\n", me, bad,
                first, ROUNDS);
    }
    CU_ASSERT_EQUAL(bad, 0);
    H_OK(dsm_array_destroy(a));
}

static void test_array_bad_input(void)
{
    dsm_array_t a = NULL;
    dsm_array_desc_t ok = {DSM_ARRAY_DOUBLE, 2, {6, 5}, {0, 0}, {0, 0}, {0, 0}}, d;
    H_EXPECT(dsm_array_create(NULL, &a), DSM_ERR_ARG);
    d = ok;
    d.type = 7;
    H_EXPECT(dsm_array_create(&d, &a), DSM_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "dsm_array_create"));
    d = ok;
    d.ndim = 3;
    H_EXPECT(dsm_array_create(&d, &a), DSM_ERR_ARG);
    d = ok;
    d.dims[1] = 0;
    H_EXPECT(dsm_array_create(&d, &a), DSM_ERR_ARG);
    d = ok;
    d.dist[0] = DSM_DIST_BLOCK_CYCLIC; // block 0
    H_EXPECT(dsm_array_create(&d, &a), DSM_ERR_ARG);
    d = ok;
    d.grid[0] = n + 1;
    d.grid[1] = 1;
    H_EXPECT(dsm_array_create(&d, &a), DSM_ERR_ARG);
    d = ok;
    d.dims[0] = me == 0 ? 7 : 6; // the ranks disagree: all fail, none hangs
    H_EXPECT(dsm_array_create(&d, &a), n > 1 ? DSM_ERR_ARG : DSM_OK);
    if (n == 1) {
        H_OK(dsm_array_destroy(a));
    }
    d = ok;
    d.dims[0] = me == 0 ? 0 : 6; // only one rank's description is invalid
    H_EXPECT(dsm_array_create(&d, &a), DSM_ERR_ARG);
    CU_ASSERT(n == 1 || a == NULL);
    a = NULL;
    H_OK(dsm_array_create(&ok, &a));
    if (!harness_all(a != NULL)) {
        return;
    }
    double buf[64] = {0};
    int64_t lo[2] = {0, 0}, hi[2] = {5, 4}, out[2] = {6, 0}, inv[2] = {3, 0}, neg[2] = {-1, 0};
    int64_t old = 0;
    int rank;
    H_EXPECT(dsm_array_put(a, lo, out, buf, 5), DSM_ERR_RANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "outside"));
    H_EXPECT(dsm_array_get(a, inv, lo, buf, 5), DSM_ERR_RANGE); // lo > hi
    H_EXPECT(dsm_array_acc(a, neg, hi, buf, 5), DSM_ERR_RANGE);
    H_EXPECT(dsm_array_put(a, lo, hi, buf, 4), DSM_ERR_ARG); // rows of buf would overlap
    H_EXPECT(dsm_array_get(a, lo, hi, NULL, 5), DSM_ERR_ARG);
    H_EXPECT(dsm_array_get(a, NULL, hi, buf, 5), DSM_ERR_ARG);
    H_EXPECT(dsm_array_put(NULL, lo, hi, buf, 5), DSM_ERR_ARG);
    H_EXPECT(dsm_array_locate(a, out, &rank, NULL), DSM_ERR_RANGE);
    H_EXPECT(dsm_array_locate(a, lo, NULL, NULL), DSM_ERR_ARG);
    int64_t big[2] = {100, 0}, g[2];
    H_EXPECT(dsm_array_local_to_global(a, big, g), DSM_ERR_RANGE);
    H_EXPECT(dsm_array_read_inc(a, lo, 1, &old), DSM_ERR_ARG); // doubles
    void *p;
    H_EXPECT(dsm_array_local(a, &p, NULL), DSM_ERR_ARG);
    H_OK(dsm_array_destroy(a));
    H_EXPECT(dsm_array_destroy(NULL), DSM_ERR_ARG);
    H_OK(dsm_barrier());
}

static CU_TestInfo cases[] = {
    {"layouts_1d", test_array_layouts_1d}, {"layouts_2d", test_array_layouts_2d},
    {"read_inc", test_array_read_inc},     {"gets_in_flight", test_array_gets_in_flight},
    {"bad_input", test_array_bad_input},   CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_LOG_LEVEL", "none", 0); // the error cases would flood stderr
    struct harness_suite s = {"array", 1, true, cases};
    return harness_main(argc, argv, &s);
}
