/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * gptr: encoding limits, null, arithmetic, comparison, printing and the local
 * translations, with every out-of-range value refused.
 */
#include <string.h>

#include "harness.h"

static void test_gptr_encoding(void)
{
    CU_ASSERT_EQUAL(sizeof(dsm_gptr_t), 8);
    CU_ASSERT_TRUE(dsm_gptr_is_null(DSM_GPTR_NULL));
    dsm_gptr_t g;
    int last = dsm_nranks() - 1;
    H_OK(dsm_gptr_make(last, 65536 + 40, &g));
    CU_ASSERT_EQUAL(dsm_gptr_rank(g), last);
    CU_ASSERT_EQUAL(dsm_gptr_offset(g), 65536 + 40);
    CU_ASSERT_FALSE(dsm_gptr_is_null(g));
    CU_ASSERT_EQUAL(g.bits, ((uint64_t)last << DSM_GPTR_OFFSET_BITS) | (65536 + 40));
    // rank 0, offset 0 is the null pointer: never handed out as user memory
    dsm_gptr_t z;
    H_OK(dsm_gptr_make(0, 0, &z));
    CU_ASSERT_TRUE(dsm_gptr_is_null(z));
    void *p;
    H_EXPECT(dsm_gptr_local(z, &p), DSM_ERR_ARG);
}

static void test_gptr_make_range(void)
{
    dsm_gptr_t g = {12345};
    dsm_topo_t t;
    H_OK(dsm_topology(&t));
    H_EXPECT(dsm_gptr_make(-1, 65536, &g), DSM_ERR_RANGE);
    H_EXPECT(dsm_gptr_make(dsm_nranks(), 65536, &g), DSM_ERR_RANGE);
    H_EXPECT(dsm_gptr_make(0, t.segment_size, &g), DSM_ERR_RANGE);
    H_EXPECT(dsm_gptr_make(0, UINT64_MAX, &g), DSM_ERR_RANGE);
    H_EXPECT(dsm_gptr_make(0, 65536, NULL), DSM_ERR_ARG);
    CU_ASSERT_EQUAL(g.bits, 12345); // untouched on failure
}

static void test_gptr_add_cmp(void)
{
    dsm_gptr_t a, b, c;
    dsm_topo_t t;
    H_OK(dsm_topology(&t));
    H_OK(dsm_gptr_make(0, 70000, &a));
    H_OK(dsm_gptr_add(a, 100, &b));
    CU_ASSERT_EQUAL(dsm_gptr_offset(b), 70100);
    H_OK(dsm_gptr_add(b, -100, &c));
    CU_ASSERT_TRUE(dsm_gptr_equal(a, c));
    CU_ASSERT(dsm_gptr_cmp(a, b) < 0);
    CU_ASSERT(dsm_gptr_cmp(b, a) > 0);
    CU_ASSERT_EQUAL(dsm_gptr_cmp(a, c), 0);
    H_EXPECT(dsm_gptr_add(a, -70001, &c), DSM_ERR_RANGE);
    H_EXPECT(dsm_gptr_add(a, (int64_t)t.segment_size, &c), DSM_ERR_RANGE);
    H_EXPECT(dsm_gptr_add(a, INT64_MIN, &c), DSM_ERR_RANGE);
    H_EXPECT(dsm_gptr_add(DSM_GPTR_NULL, 8, &c), DSM_ERR_ARG);
    H_EXPECT(dsm_gptr_add(a, 8, NULL), DSM_ERR_ARG);
    if (dsm_nranks() > 1) {
        dsm_gptr_t r1;
        H_OK(dsm_gptr_make(1, 65536, &r1));
        CU_ASSERT(dsm_gptr_cmp(a, r1) < 0); // rank orders first
    }
}

static void test_gptr_str(void)
{
    char buf[32];
    dsm_gptr_t g;
    H_OK(dsm_gptr_make(dsm_nranks() - 1, 0x10010, &g));
    char want[32];
    snprintf(want, sizeof want, "%d:0x10010", dsm_nranks() - 1);
    CU_ASSERT_STRING_EQUAL(dsm_gptr_str(g, buf, sizeof buf), want);
    CU_ASSERT_STRING_EQUAL(dsm_gptr_str(DSM_GPTR_NULL, buf, sizeof buf), "null");
    CU_ASSERT_STRING_EQUAL(dsm_gptr_str(g, NULL, 0), "");
    char tiny[3];
    dsm_gptr_str(g, tiny, sizeof tiny);
    CU_ASSERT_EQUAL(strlen(tiny), 2);
}

static void test_gptr_local(void)
{
    int me = dsm_rank(), n = dsm_nranks();
    dsm_gptr_t g, back, block = DSM_GPTR_NULL;
    void *p = NULL;
    H_OK(dsm_alloc_all(256, &block)); // symmetric: the same offset on every rank
    uint64_t off = dsm_gptr_offset(block) + 128;
    H_OK(dsm_gptr_make(me, off, &g));
    H_OK(dsm_gptr_local(g, &p));
    CU_ASSERT_PTR_NOT_NULL(p);
    H_OK(dsm_gptr_from_local(p, &back));
    CU_ASSERT_TRUE(dsm_gptr_equal(g, back));
    // local stores are seen by remote gets after a barrier
    if (p) {
        uint64_t v = 0x5150u + (uint64_t)me;
        memcpy(p, &v, 8);
    }
    H_OK(dsm_barrier());
    dsm_gptr_t other;
    H_OK(dsm_gptr_make((me + 1) % n, off, &other));
    uint64_t got = 0;
    H_OK(dsm_get(&got, other, 8));
    CU_ASSERT_EQUAL(got, 0x5150u + (uint64_t)((me + 1) % n));
    H_OK(dsm_barrier());
    if (n > 1) {
        void *q = (void *)0x1;
        H_EXPECT(dsm_gptr_local(other, &q), DSM_ERR_RANGE);
        CU_ASSERT_EQUAL(q, (void *)0x1);
    }
    int on_stack;
    H_EXPECT(dsm_gptr_from_local(&on_stack, &back), DSM_ERR_RANGE);
    H_EXPECT(dsm_gptr_from_local(NULL, &back), DSM_ERR_ARG);
    H_EXPECT(dsm_gptr_local(g, NULL), DSM_ERR_ARG);
    dsm_gptr_t hdr = {(uint64_t)me << DSM_GPTR_OFFSET_BITS | 8};
    H_EXPECT(dsm_gptr_local(hdr, &p), me == 0 ? DSM_ERR_RANGE : DSM_ERR_RANGE);
    H_OK(dsm_free_all(block));
}

static CU_TestInfo cases[] = {
    {"encoding", test_gptr_encoding}, {"make_range", test_gptr_make_range},
    {"add_cmp", test_gptr_add_cmp},   {"str", test_gptr_str},
    {"local", test_gptr_local},       CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    struct harness_suite s = {"gptr", 1, true, cases};
    return harness_main(argc, argv, &s);
}
