/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * array_ckpt: distributed arrays survive a checkpoint and a restart through named roots.
 * A run makes a 2-D block-cyclic double array and a 1-D cyclic int64 array, fills them,
 * roots them (dsm_array_root), checkpoints, then overwrites them and makes a third array
 * rooted after the checkpoint. It stops without destroying anything; a restart
 * (DSM_RESTART=required, the same process, as test_ckpt does) re-finds the two arrays
 * with dsm_array_attach and must see exactly the checkpoint's elements and layout, not
 * the later ones, and not the third array. Then the handles work (put, acc), destroy
 * removes the root, and every bad name fails on every rank without hanging.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static char top[128];
static int me, n;

static const dsm_array_desc_t mat = {
    DSM_ARRAY_DOUBLE, 2, {13, 11}, {DSM_DIST_BLOCK_CYCLIC, DSM_DIST_CYCLIC}, {3, 0}, {0, 0}};
static const dsm_array_desc_t vec = {DSM_ARRAY_INT64,      1,      {37, 0},
                                     {DSM_DIST_CYCLIC, 0}, {0, 0}, {0, 0}};

static double f(int64_t i, int64_t j, int tag)
{
    return (double)(tag * 100000 + i * 1000 + j);
}

static int start(const char *restart)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/arrays", top);
    setenv("DSM_CKPT_DIR", dir, 1);
    setenv("DSM_CKPT_JOB", "arrays", 1);
    setenv("DSM_RESTART", restart, 1);
    int rc = dsm_init(NULL, NULL);
    me = dsm_rank();
    n = dsm_nranks();
    return rc;
}

/* The owners write f(., ., tag) into their local parts in place. */
static void fill(dsm_array_t a, const dsm_array_desc_t *d, int tag)
{
    harness_array_fill(a, d, f, tag);
}

/* Wrong elements of the whole array (read by one patch get) against f(., ., tag) + add. */
static int wrong(dsm_array_t a, const dsm_array_desc_t *d, int tag, double add)
{
    int64_t rows = d->dims[0], cols = d->ndim == 2 ? d->dims[1] : 1, bad = 0;
    void *buf = calloc((size_t)(rows * cols), 8);
    int64_t lo[2] = {0, 0}, hi[2] = {rows - 1, cols - 1};
    H_OK(dsm_array_get(a, lo, hi, buf, cols));
    for (int64_t e = 0; buf && e < rows * cols; e++) {
        double got = d->type == DSM_ARRAY_INT64 ? (double)((int64_t *)buf)[e] : ((double *)buf)[e];
        bad += got != f(e / cols, e % cols, tag) + add;
    }
    free(buf);
    return buf ? (int)bad : -1;
}

/* The first run: two rooted arrays in the checkpoint, then changed; a third after it. */
static void first_run(void)
{
    H_OK(start("never"));
    dsm_array_t m = NULL, v = NULL, late = NULL;
    H_OK(dsm_array_create(&mat, &m));
    H_OK(dsm_array_create(&vec, &v));
    if (!harness_all(m && v)) {
        return;
    }
    fill(m, &mat, 1);
    fill(v, &vec, 1);
    H_OK(dsm_array_root(m, "mat"));
    H_OK(dsm_array_root(v, "vec"));
    dsm_array_t again = NULL; // in the same run: a second handle to the same elements
    H_OK(dsm_array_attach("mat", &again));
    CU_ASSERT_EQUAL(again ? wrong(again, &mat, 1, 0) : -1, 0);
    (void)again; // not destroyed: m is the handle that frees the array
    H_OK(dsm_checkpoint());
    fill(m, &mat, 2); // after the checkpoint: must not come back
    fill(v, &vec, 2);
    H_OK(dsm_array_create(&vec, &late));
    H_OK(dsm_array_root(late, "late"));
    H_OK(dsm_finalize()); // no destroy: the program "dies" here
}

/* An error on every rank: the faulty rank's own code, the others' code other. */
static void expect_all(int rc, bool faulty, int code, int other)
{
    CU_ASSERT_EQUAL(rc, faulty ? code : other);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "dsm_array_"));
}

static void bad_names(void)
{
    dsm_array_t a = NULL;
    dsm_gptr_t blk;
    H_EXPECT(dsm_array_attach("late", &a), DSM_ERR_NOTFOUND); // rooted after the checkpoint
    expect_all(dsm_array_attach(NULL, &a), true, DSM_ERR_ARG, DSM_ERR_ARG);
    expect_all(dsm_array_attach("", &a), true, DSM_ERR_ARG, DSM_ERR_ARG);
    expect_all(dsm_array_attach("vec", me == n - 1 ? NULL : &a), me == n - 1, DSM_ERR_ARG,
               DSM_ERR_ARG);
    if (n > 1) {
        expect_all(dsm_array_attach(me == 0 ? "vec" : "mat", &a), false, 0, DSM_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "different names"));
    }
    H_OK(dsm_alloc_all(256, &blk));
    void *p = NULL;
    H_OK(dsm_gptr_local(blk, &p));
    memset(p, 0x5a, 256); // a root that names something else
    H_OK(dsm_barrier());
    if (me == 0) {
        H_OK(dsm_root_set("notarray", blk));
    }
    H_OK(dsm_barrier());
    H_EXPECT(dsm_array_attach("notarray", &a), DSM_ERR_CORRUPT);
    CU_ASSERT_PTR_NULL(a);
    H_EXPECT(dsm_array_root(NULL, "x"), DSM_ERR_ARG);
    H_OK(dsm_free_all(blk));
}

/* The restart: the checkpoint's arrays come back with their elements and layout. */
static void test_array_ckpt_restart(void)
{
    if (harness_rank() == 0) {
        snprintf(top, sizeof top, "/tmp/dsm-test-arrayckpt-XXXXXX");
        CU_ASSERT_PTR_NOT_NULL(mkdtemp(top));
    }
    MPI_Bcast(top, sizeof top, MPI_CHAR, 0, MPI_COMM_WORLD);
    first_run();
    H_OK(start("required"));
    CU_ASSERT_TRUE(dsm_restarted(NULL));
    dsm_array_t m = NULL, v = NULL;
    H_OK(dsm_array_attach("mat", &m));
    H_OK(dsm_array_attach("vec", &v));
    if (!harness_all(m && v)) {
        dsm_finalize();
        return;
    }
    CU_ASSERT_EQUAL(wrong(m, &mat, 1, 0), 0);
    CU_ASSERT_EQUAL(wrong(v, &vec, 1, 0), 0);
    void *p;
    int64_t c[2] = {0, 0}, l[2] = {0, 0}, g[2] = {-1, -1};
    H_OK(dsm_array_local(m, &p, c)); // the layout is the created one: rank's grid cell
    CU_ASSERT_EQUAL(harness_sum(c[0] * c[1]), 13 * 11);
    if (c[0] > 0 && c[1] > 0) {
        H_OK(dsm_array_local_to_global(m, l, g));
        CU_ASSERT(g[0] % 3 == 0 && g[1] < n); // block-cyclic rows of 3, cyclic columns
    }
    // the handles work: every rank adds 1 everywhere, then one rank rewrites the vector
    double ones[13 * 11];
    for (int e = 0; e < 13 * 11; e++) {
        ones[e] = 1;
    }
    int64_t lo[2] = {0, 0}, hi[2] = {12, 10};
    H_OK(dsm_array_acc(m, lo, hi, ones, 11));
    H_OK(dsm_barrier());
    CU_ASSERT_EQUAL(wrong(m, &mat, 1, n), 0);
    bad_names();
    H_OK(dsm_array_destroy(m)); // removes its root
    dsm_array_t gone = NULL;
    H_EXPECT(dsm_array_attach("mat", &gone), DSM_ERR_NOTFOUND);
    H_OK(dsm_array_root(v, "vec2")); // moves the root
    dsm_gptr_t r;
    H_EXPECT(dsm_root_get("vec", &r), DSM_ERR_NOTFOUND);
    H_OK(dsm_root_get("vec2", &r));
    // no barrier: destroy unbinds the name only after every rank has entered it
    H_OK(dsm_array_destroy(v));
    H_EXPECT(dsm_root_get("vec2", &r), DSM_ERR_NOTFOUND);
    H_OK(dsm_finalize());
    if (harness_rank() == 0) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf %s", top);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
}

static CU_TestInfo cases[] = {
    {"restart", test_array_ckpt_restart},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_HEAP_SIZE", "2M", 1);   // small segments keep the checkpoint fast
    setenv("DSM_LOG_LEVEL", "none", 0); // the error cases would flood stderr
    struct harness_suite s = {"array_ckpt", 1, false, cases};
    return harness_main(argc, argv, &s);
}
