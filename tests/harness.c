/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
#include "harness.h"

#include <CUnit/Basic.h>
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int h_rank = -1, h_nranks = 0;
static unsigned h_seed;

int harness_rank(void)
{
    return h_rank;
}

int harness_nranks(void)
{
    return h_nranks;
}

unsigned harness_seed(void)
{
    return h_seed;
}

bool harness_all(bool cond)
{
    int in = cond, out = 0;
    MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    return out != 0;
}

long long harness_sum(long long v)
{
    long long out = 0;
    MPI_Allreduce(&v, &out, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    return out;
}

long long harness_array_fill(dsm_array_t a, const dsm_array_desc_t *d,
                             double (*f)(int64_t i, int64_t j, int tag), int tag)
{
    void *p = NULL;
    int64_t c[2] = {1, 1};
    H_OK(dsm_array_local(a, &p, c));
    for (int64_t li = 0; p && li < c[0]; li++) {
        for (int64_t lj = 0; lj < c[1]; lj++) {
            int64_t l[2] = {li, lj}, g[2] = {0, 0};
            H_OK(dsm_array_local_to_global(a, l, g));
            double v = f(g[0], d->ndim == 2 ? g[1] : 0, tag);
            if (d->type == DSM_ARRAY_INT64) {
                ((int64_t *)p)[li * c[1] + lj] = (int64_t)v;
            } else {
                ((double *)p)[li * c[1] + lj] = v;
            }
        }
    }
    H_OK(dsm_barrier());
    return p ? c[0] * c[1] : 0;
}

void harness_report(const char *file, int line, const char *what, int got, int want)
{
    fprintf(stderr, "[test %d] %s:%d: %s returned %d (%s), expected %d (%s); last error: %s\n",
            h_rank, file, line, what, got, dsm_strerror(got), want, dsm_strerror(want),
            dsm_last_error());
}

static void pick_seed(void)
{
    const char *s = getenv("DSM_TEST_SEED");
    h_seed = s && *s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
    MPI_Bcast(&h_seed, 1, MPI_UNSIGNED, 0, MPI_COMM_WORLD);
    if (h_rank == 0) {
        printf("seed: DSM_TEST_SEED=%u\n", h_seed);
    }
}

/* Each rank prints its own failures, so a failure on rank 3 is not lost. */
static void print_failures(const char *suite)
{
    for (CU_pFailureRecord f = CU_get_failure_list(); f; f = f->pNext) {
        fprintf(stderr, "[test %d] FAIL %s/%s %s:%u: %s\n", h_rank, suite,
                f->pTest ? f->pTest->pName : "?", f->strFileName ? f->strFileName : "?",
                f->uiLineNumber, f->strCondition ? f->strCondition : "?");
    }
}

static int run_suite(const struct harness_suite *suite)
{
    CU_SuiteInfo suites[] = {{suite->name, NULL, NULL, NULL, NULL, suite->cases},
                             CU_SUITE_INFO_NULL};
    if (CU_initialize_registry() != CUE_SUCCESS || CU_register_suites(suites) != CUE_SUCCESS) {
        return -1;
    }
    if (h_rank == 0) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
    } else {
        CU_run_all_tests(); // no output: failures are printed below
    }
    long long failed = CU_get_number_of_failures();
    long long ran = CU_get_number_of_tests_run();
    if (failed) {
        print_failures(suite->name);
    }
    CU_cleanup_registry();
    long long total = harness_sum(failed);
    if (h_rank == 0) {
        printf("suite %s: %lld cases on %d ranks, %lld failed assertions over all ranks\n",
               suite->name, ran, h_nranks, total);
    }
    return total ? 1 : 0;
}

int harness_main(int argc, char **argv, const struct harness_suite *suite)
{
    int provided;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "harness: MPI_Init_thread failed\n");
        return 99;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &h_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &h_nranks);
    if (h_nranks < suite->min_ranks) {
        if (h_rank == 0) {
            printf("SKIP %s: needs %d ranks, has %d\n", suite->name, suite->min_ranks, h_nranks);
        }
        MPI_Finalize();
        return 77;
    }
    pick_seed();
    int rc = 0;
    if (suite->start_dsm && dsm_init(&argc, &argv) != DSM_OK) {
        fprintf(stderr, "[test %d] dsm_init failed: %s\n", h_rank, dsm_last_error());
        rc = 99;
    }
    if (rc == 0) {
        rc = run_suite(suite);
        if (rc < 0) {
            fprintf(stderr, "harness: CUnit registry error: %s\n", CU_get_error_msg());
            rc = 99;
        }
    }
    if (rc != 99 && suite->start_dsm && dsm_finalize() != DSM_OK) {
        rc = 99;
    }
    MPI_Finalize();
    return rc;
}

void harness_threads(int n, void *(*fn)(void *), void *args, size_t stride)
{
    pthread_t th[64];
    int started = 0;
    CU_ASSERT_FATAL(n >= 1 && n <= 64);
    for (int i = 0; i < n; i++) {
        started += pthread_create(&th[started], NULL, fn, (char *)args + (size_t)i * stride) == 0;
    }
    CU_ASSERT_EQUAL(started, n);
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
}
