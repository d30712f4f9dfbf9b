/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The CUnit-under-MPI harness every suite uses. It initialises MPI itself (thread level
 * multiple when available), so suites may start and stop mpidsm several times; runs
 * one CUnit suite on every rank in the same order; prints rank 0's report and every
 * other rank's failures; sums failures across ranks; exits 0 pass, 1 fail, 77 skip
 * (too few ranks), 99 harness error.
 *
 * Rule for cases: never leave a case early on some ranks before a collective. Use the
 * non-fatal CU_ASSERT* macros, and H_ALL for checks whose outcome must be shared.
 */
#ifndef DSM_TEST_HARNESS_H
#define DSM_TEST_HARNESS_H

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stddef.h>

#include "mpidsm.h"

struct harness_suite {
    const char *name;   // the subsystem
    int min_ranks;      // fewer ranks: skip (77)
    bool start_dsm;     // call dsm_init before the cases, dsm_finalize after
    CU_TestInfo *cases; // CU_TEST_INFO_NULL-terminated
};

int harness_main(int argc, char **argv, const struct harness_suite *suite);
int harness_rank(void);
int harness_nranks(void);
/* The run's seed: DSM_TEST_SEED or the time, agreed across ranks and printed. */
unsigned harness_seed(void);
/* Whether cond holds on every rank (collective over MPI_COMM_WORLD). */
bool harness_all(bool cond);
/* Sum of v over all ranks (collective). */
long long harness_sum(long long v);
/* Run fn on n threads (at most 64), thread i with args + i * stride, and join them all;
 * a thread that cannot be started is a failed assertion. */
void harness_threads(int n, void *(*fn)(void *), void *args, size_t stride);
/* The owners of array a (made from d) write f(i, j, tag) (j = 0 for 1-D) into their local parts in
 * place, as int64 or double by the array's type; returns this rank's local element
 * count. Collective (ends with a barrier). */
long long harness_array_fill(dsm_array_t a, const dsm_array_desc_t *d,
                             double (*f)(int64_t i, int64_t j, int tag), int tag);

/* Assert that a call returns the expected code, with the code's name on failure. */
#define H_EXPECT(call, code)                                                                       \
    do {                                                                                           \
        int h_rc_ = (call);                                                                        \
        CU_ASSERT_EQUAL(h_rc_, (code));                                                            \
        if (h_rc_ != (code)) {                                                                     \
            harness_report(__FILE__, __LINE__, #call, h_rc_, (code));                              \
        }                                                                                          \
    } while (0)
#define H_OK(call) H_EXPECT(call, DSM_OK)
void harness_report(const char *file, int line, const char *what, int got, int want);

#endif
