/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * reduce: dsm_reduce, dsm_allreduce and dsm_broadcast into global memory. For every
 * type and every op MPI defines on it, each rank contributes values that depend on its
 * rank and the element, the result goes to another rank's memory (so it crosses the
 * data path), and every rank checks it against a serial computation. Then in-place use
 * (src inside the destination), every root, and every bad input: each must fail on
 * every rank with the right code and never hang.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

enum { COUNT = 37 };

static int me, n;

static size_t tsize(int type)
{
    return type == DSM_TYPE_INT32 || type == DSM_TYPE_FLOAT ? 4 : 8;
}

/* Rank r's element e, small enough that every sum and product is exact in a float. */
static int64_t val(int r, int e)
{
    return (r * 7 + e * 3) % 5 + 1 + (e % 3 == 0 ? -3 : 0);
}

static void store(int type, void *buf, int e, int64_t v)
{
    switch (type) {
    case DSM_TYPE_INT32:
        ((int32_t *)buf)[e] = (int32_t)v;
        break;
    case DSM_TYPE_INT64:
        ((int64_t *)buf)[e] = v;
        break;
    case DSM_TYPE_UINT64:
        ((uint64_t *)buf)[e] = (uint64_t)(v + 8);
        break;
    case DSM_TYPE_FLOAT:
        ((float *)buf)[e] = (float)v;
        break;
    default:
        ((double *)buf)[e] = (double)v;
        break;
    }
}

/* a op b for the arithmetic ops, and for integers also the bitwise ones. */
#define ARITH(T, a, b)                                                                             \
    (op == DSM_OP_SUM    ? (T)(a + b)                                                              \
     : op == DSM_OP_PROD ? (T)(a * b)                                                              \
     : op == DSM_OP_MIN  ? (a < b ? a : b)                                                         \
                         : (a > b ? a : b))
#define INTOP(T, a, b)                                                                             \
    (op == DSM_OP_BAND   ? (T)(a & b)                                                              \
     : op == DSM_OP_BOR  ? (T)(a | b)                                                              \
     : op == DSM_OP_BXOR ? (T)(a ^ b)                                                              \
                         : ARITH(T, a, b))
#define FOLD(T, OPF)                                                                               \
    do {                                                                                           \
        T acc = 0, one = 0;                                                                        \
        store(type, &acc, 0, val(0, e));                                                           \
        for (int r = 1; r < n; r++) {                                                              \
            store(type, &one, 0, val(r, e));                                                       \
            acc = OPF(T, acc, one);                                                                \
        }                                                                                          \
        ((T *)out)[e] = acc;                                                                       \
    } while (0)

/* The expected element e: the op folded over ranks 0..n-1 in the element's own type. */
static void expect(int type, int op, void *out, int e)
{
    if (type == DSM_TYPE_INT32) {
        FOLD(int32_t, INTOP);
    } else if (type == DSM_TYPE_INT64) {
        FOLD(int64_t, INTOP);
    } else if (type == DSM_TYPE_UINT64) {
        FOLD(uint64_t, INTOP);
    } else if (type == DSM_TYPE_FLOAT) {
        FOLD(float, ARITH);
    } else {
        FOLD(double, ARITH);
    }
}

/* The symmetric block's copy on rank r. */
static dsm_gptr_t on(dsm_gptr_t blk, int r)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_gptr_make(r, dsm_gptr_offset(blk), &g));
    return g;
}

static int compare(dsm_gptr_t g, int type, int op)
{
    char got[COUNT * 8], want[COUNT * 8];
    H_OK(dsm_get(got, g, COUNT * tsize(type)));
    for (int e = 0; e < COUNT; e++) {
        expect(type, op, want, e);
    }
    return memcmp(got, want, COUNT * tsize(type)) != 0;
}

/* One type and op: reduce to every root (into the next rank's memory), then allreduce
 * with each rank's result on the next rank. */
static int one_case(dsm_gptr_t blk, int type, int op)
{
    char src[COUNT * 8];
    for (int e = 0; e < COUNT; e++) {
        store(type, src, e, val(me, e));
    }
    int bad = 0;
    for (int root = 0; root < n; root++) {
        dsm_gptr_t dst = me == root ? on(blk, (root + 1) % n) : DSM_GPTR_NULL;
        H_OK(dsm_reduce(dst, src, COUNT, type, op, root));
        bad += compare(on(blk, (root + 1) % n), type, op); // visible to all on return
        H_OK(dsm_barrier());
    }
    H_OK(dsm_allreduce(on(blk, (me + 1) % n), src, COUNT, type, op));
    bad += compare(blk, type, op); // this rank's block: written by rank me - 1
    H_OK(dsm_barrier());
    return bad;
}

static void test_reduce_types_ops(void)
{
    me = dsm_rank();
    n = dsm_nranks();
    dsm_gptr_t blk;
    H_OK(dsm_alloc_all(COUNT * 8, &blk));
    int bad = 0, cases = 0;
    for (int type = DSM_TYPE_INT32; type <= DSM_TYPE_DOUBLE; type++) {
        bool fp = type == DSM_TYPE_FLOAT || type == DSM_TYPE_DOUBLE;
        for (int op = DSM_OP_SUM; op <= (fp ? DSM_OP_MAX : DSM_OP_BXOR); op++) {
            bad += one_case(blk, type, op);
            cases++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(cases, 3 * 7 + 2 * 4);
    H_OK(dsm_free_all(blk));
}

/* src inside the destination: an in-place allreduce of the local block, and a
 * broadcast from every root into every rank's own block. */
static void test_reduce_in_place_and_bcast(void)
{
    dsm_gptr_t blk;
    H_OK(dsm_alloc_all(COUNT * 8, &blk));
    double *mine = NULL;
    H_OK(dsm_gptr_local(blk, (void **)&mine));
    for (int e = 0; e < COUNT; e++) {
        store(DSM_TYPE_DOUBLE, mine, e, val(me, e));
    }
    H_OK(dsm_barrier());
    H_OK(dsm_allreduce(blk, mine, COUNT, DSM_TYPE_DOUBLE, DSM_OP_SUM));
    CU_ASSERT_EQUAL(compare(blk, DSM_TYPE_DOUBLE, DSM_OP_SUM), 0);
    int bad = 0;
    for (int root = 0; root < n; root++) {
        char msg[COUNT * 8];
        for (int b = 0; b < (int)sizeof msg; b++) {
            msg[b] = (char)(root * 31 + b);
        }
        H_OK(dsm_broadcast(on(blk, (me + 2) % n), me == root ? msg : NULL, sizeof msg, root));
        char got[COUNT * 8];
        H_OK(dsm_get(got, blk, sizeof got));
        bad += memcmp(got, msg, sizeof msg) != 0;
        H_OK(dsm_barrier());
    }
    CU_ASSERT_EQUAL(bad, 0);
    H_OK(dsm_free_all(blk));
}

/* An error on every rank, the faulty rank's own code, and the message names the call. */
static void expect_all(int rc, bool faulty, int code, const char *call)
{
    CU_ASSERT_EQUAL(rc, faulty ? code : DSM_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), call));
}

static void test_reduce_bad_input(void)
{
    dsm_gptr_t blk, far;
    H_OK(dsm_alloc_all(COUNT * 8, &blk));
    int32_t src[COUNT] = {0};
    const char *R = "dsm_reduce", *A = "dsm_allreduce", *B = "dsm_broadcast";
    int last = n - 1;
    expect_all(dsm_allreduce(blk, src, COUNT, 0, DSM_OP_SUM), true, DSM_ERR_ARG, A);
    expect_all(dsm_allreduce(blk, src, COUNT, DSM_TYPE_INT32, 99), true, DSM_ERR_ARG, A);
    expect_all(dsm_allreduce(blk, src, 2, DSM_TYPE_DOUBLE, DSM_OP_BXOR), true, DSM_ERR_ARG, A);
    expect_all(dsm_reduce(blk, src, COUNT, DSM_TYPE_INT32, DSM_OP_MAX, n), true, DSM_ERR_ARG, R);
    expect_all(dsm_broadcast(blk, src, 8, -1), true, DSM_ERR_ARG, B);
    expect_all(dsm_allreduce(blk, NULL, 4, DSM_TYPE_INT32, DSM_OP_SUM), true, DSM_ERR_ARG, A);
    expect_all(dsm_allreduce(blk, src, (size_t)INT32_MAX + 1, DSM_TYPE_INT32, DSM_OP_SUM), true,
               DSM_ERR_ARG, A);
    // only the last rank is wrong: a null, then an out-of-range destination
    dsm_gptr_t dst = me == last ? DSM_GPTR_NULL : blk;
    expect_all(dsm_allreduce(dst, src, COUNT, DSM_TYPE_INT32, DSM_OP_SUM), me == last, DSM_ERR_ARG,
               A);
    far.bits = ((uint64_t)n << DSM_GPTR_OFFSET_BITS) | dsm_gptr_offset(blk); // no such rank
    dst = me == last ? far : blk;
    expect_all(dsm_allreduce(dst, src, COUNT, DSM_TYPE_INT32, DSM_OP_SUM), me == last,
               DSM_ERR_RANGE, A);
    dst = me == 0 ? far : DSM_GPTR_NULL; // the root's destination is the one checked
    expect_all(dsm_reduce(dst, src, COUNT, DSM_TYPE_INT32, DSM_OP_SUM, 0), me == 0, DSM_ERR_RANGE,
               R);
    dst = me == last ? far : DSM_GPTR_NULL; // the others' are ignored: no error
    H_OK(dsm_reduce(me == 0 ? blk : dst, src, COUNT, DSM_TYPE_INT32, DSM_OP_SUM, 0));
    if (n > 1) { // the ranks disagree: every rank fails, none hangs
        expect_all(dsm_allreduce(blk, src, me == 0 ? 3 : 4, DSM_TYPE_INT32, DSM_OP_SUM), false, 0,
                   A);
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "different count"));
        expect_all(dsm_allreduce(blk, src, 4, DSM_TYPE_INT32, me == last ? DSM_OP_MIN : DSM_OP_MAX),
                   false, 0, A);
        expect_all(dsm_reduce(blk, src, 4, me ? DSM_TYPE_INT64 : DSM_TYPE_INT32, DSM_OP_SUM, 0),
                   false, 0, R);
        expect_all(dsm_broadcast(blk, src, 8, me == 0 ? 1 : 0), false, 0, B);
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "different root"));
    }
    H_OK(dsm_allreduce(blk, NULL, 0, DSM_TYPE_INT32, DSM_OP_SUM)); // nothing to move
    for (int e = 0; e < COUNT; e++) { // and after all that, a good call still works
        src[e] = (int32_t)val(me, e);
    }
    H_OK(dsm_allreduce(on(blk, (me + 1) % n), src, COUNT, DSM_TYPE_INT32, DSM_OP_SUM));
    CU_ASSERT_EQUAL(compare(blk, DSM_TYPE_INT32, DSM_OP_SUM), 0);
    H_OK(dsm_free_all(blk));
}

static CU_TestInfo cases[] = {
    {"types_ops", test_reduce_types_ops},
    {"in_place_and_bcast", test_reduce_in_place_and_bcast},
    {"bad_input", test_reduce_bad_input},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_LOG_LEVEL", "none", 0); // the error cases would flood stderr
    struct harness_suite s = {"reduce", 1, true, cases};
    return harness_main(argc, argv, &s);
}
