/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * atomic: the atomic types beyond test_rma's: uint32_t (contended sums, wrap-around,
 * unsigned compare-and-swap), float and double on their bits (contended fetch-add,
 * swap, compare-and-swap by bit pattern, sharing a word with the u32/u64 class), the
 * non-blocking fetching atomics (many in flight, distinct fetched values), and every
 * bad input. Each case uses its own slice of one symmetric block.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define SLICE 4096u
#define SLICES 8

static int me, n;
static uint64_t base;

static dsm_gptr_t at(int r, unsigned s, uint64_t off)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_gptr_make(r, base + (uint64_t)s * SLICE + off, &g));
    return g;
}

static void test_atomic_setup(void)
{
    me = dsm_rank();
    n = dsm_nranks();
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_alloc_all((size_t)SLICES * SLICE, &g));
    base = dsm_gptr_offset(g);
    void *p = NULL;
    H_OK(dsm_gptr_local(g, &p));
    if (p) {
        memset(p, 0, (size_t)SLICES * SLICE);
    }
    H_OK(dsm_barrier());
}

static void test_atomic_teardown(void)
{
    H_OK(dsm_free_all(at(me, 0, 0)));
}

/* uint32_t: contended fetch-add is exact with distinct fetched values; values above
 * INT32_MAX compare and wrap as unsigned. Slice 0. */
static void test_atomic_u32(void)
{
    enum { ITERS = 200 };
    dsm_gptr_t c = at(0, 0, 0), w = at(n - 1, 0, 64);
    long long sum = 0;
    for (int i = 0; i < ITERS; i++) {
        uint32_t old = 0;
        H_OK(dsm_atomic_fetch_add_u32(c, 1, &old));
        sum += old;
    }
    H_OK(dsm_barrier());
    uint32_t v = 0;
    H_OK(dsm_atomic_load_u32(c, &v));
    long long total = (long long)ITERS * n;
    CU_ASSERT_EQUAL(v, (uint32_t)total);
    CU_ASSERT_EQUAL(harness_sum(sum), total * (total - 1) / 2);
    if (me == 0) {
        uint32_t old = 0;
        H_OK(dsm_atomic_store_u32(w, 0xfffffffeu));
        H_OK(dsm_atomic_fetch_add_u32(w, 3, &old)); // wraps to 1
        CU_ASSERT_EQUAL(old, 0xfffffffeu);
        H_OK(dsm_atomic_cas_u32(w, 1, 0x80000001u, &old));
        CU_ASSERT_EQUAL(old, 1);
        H_OK(dsm_atomic_fetch_xor_u32(w, 0x80000000u, &old));
        H_OK(dsm_atomic_load_u32(w, &v));
        CU_ASSERT_EQUAL(v, 1);
        H_OK(dsm_wait_until_u32(at(0, 0, 128), DSM_CMP_EQ, 0)); // the waits share the class
    }
    H_OK(dsm_barrier());
}

/* float and double: every rank adds 0.5 (exact in binary) ITERS times to one counter of
 * each; the sums are exact only if no update is lost. Slice 1. */
static void test_atomic_fp_contended(void)
{
    enum { ITERS = 40 }; // a contended loop costs several round trips each over TCP
    dsm_gptr_t f = at(0, 1, 0), d = at(n - 1, 1, 8);
    for (int i = 0; i < ITERS; i++) {
        float of = -1;
        H_OK(dsm_atomic_fetch_add_float(f, 0.5f, &of));
        CU_ASSERT(of >= 0 && of < 0.5f * ITERS * n);
        H_OK(dsm_atomic_add_double(d, 0.5));
    }
    H_OK(dsm_barrier());
    float vf = 0;
    double vd = 0;
    H_OK(dsm_atomic_load_float(f, &vf));
    H_OK(dsm_atomic_load_double(d, &vd));
    CU_ASSERT_EQUAL(vf, 0.5f * ITERS * n);
    CU_ASSERT_EQUAL(vd, 0.5 * ITERS * n);
    H_OK(dsm_barrier());
}

/* Compare-and-swap compares bits; swap and store/load round-trip every bit pattern
 * (NaN payloads included); a double shares its class with u64. Slice 2. */
static void test_atomic_fp_bits(void)
{
    dsm_gptr_t d = at((me + 1) % n, 2, 16 * (uint64_t)me), f = at((me + 1) % n, 2, 512 + 8 * me);
    double old = 1;
    H_OK(dsm_atomic_store_double(d, -0.0));
    H_OK(dsm_atomic_cas_double(d, 0.0, 5.0, &old)); // +0.0 has other bits: no swap
    CU_ASSERT(old == 0.0 && signbit(old));
    H_OK(dsm_atomic_cas_double(d, -0.0, 5.0, &old));
    H_OK(dsm_atomic_load_double(d, &old));
    CU_ASSERT_EQUAL(old, 5.0);
    double nan1 = nan("0x123"), got = 0;
    H_OK(dsm_atomic_swap_double(d, nan1, &old));
    CU_ASSERT_EQUAL(old, 5.0);
    H_OK(dsm_atomic_cas_double(d, nan1, 7.25, &got)); // the same NaN matches itself
    CU_ASSERT(memcmp(&got, &nan1, 8) == 0);
    uint64_t bits = 0, want;
    H_OK(dsm_atomic_load_u64(d, &bits)); // the u64 class sees the double's bits
    double s = 7.25;
    memcpy(&want, &s, 8);
    CU_ASSERT_EQUAL(bits, want);
    float fo = 0, nf = nanf("7");
    H_OK(dsm_atomic_store_float(f, nf));
    H_OK(dsm_atomic_swap_float(f, 2.5f, &fo));
    CU_ASSERT(memcmp(&fo, &nf, 4) == 0);
    uint32_t fb = 0;
    H_OK(dsm_atomic_load_u32(f, &fb));
    CU_ASSERT_EQUAL(fb, 0x40200000u); // 2.5f
    H_OK(dsm_barrier());
}

/* Non-blocking fetch-adds: K in flight from every rank to one counter on rank 0, each
 * into its own *old; after the waits every fetched value is distinct (their sum is
 * 0 + 1 + ... + N-1) and after a flush the counter is exact. Then swap and load. */
static void test_atomic_nonblocking(void)
{
    enum { K = 32 };
    dsm_gptr_t c64 = at(0, 3, 0), c32 = at(0, 3, 64);
    int64_t old[K], one = 1;
    uint32_t old32[K], two = 2;
    dsm_request_t req[K], req32[K];
    for (int k = 0; k < K; k++) {
        H_OK(dsm_atomic_fetch_add_i64_nb(c64, &one, &old[k], &req[k]));
        H_OK(dsm_atomic_fetch_add_u32_nb(c32, &two, &old32[k], &req32[k]));
    }
    long long sum = 0, sum32 = 0;
    for (int k = 0; k < K; k++) {
        H_OK(dsm_wait(&req[k]));
        H_OK(dsm_wait(&req32[k]));
        sum += old[k];
        sum32 += old32[k];
    }
    H_OK(dsm_flush(0));
    H_OK(dsm_barrier());
    long long total = (long long)K * n;
    CU_ASSERT_EQUAL(harness_sum(sum), total * (total - 1) / 2);
    CU_ASSERT_EQUAL(harness_sum(sum32), total * (total - 1)); // steps of 2
    int64_t v = 0;
    dsm_request_t r;
    H_OK(dsm_atomic_load_i64_nb(c64, &v, &r));
    H_OK(dsm_wait(&r));
    CU_ASSERT_EQUAL(v, total);
    H_OK(dsm_barrier());
    uint64_t mine = 1000 + (uint64_t)me, prev = 0;
    H_OK(dsm_atomic_swap_u64_nb(at(me, 3, 128), &mine, &prev, &r)); // own word, slice zero
    H_OK(dsm_wait(&r));
    CU_ASSERT_EQUAL(prev, 0);
    int32_t neg = -7, was = 1;
    H_OK(dsm_atomic_swap_i32_nb(at(me, 3, 192), &neg, &was, &r));
    H_OK(dsm_wait(&r));
    CU_ASSERT_EQUAL(was, 0);
    H_OK(dsm_flush(me));
    uint64_t back = 0;
    H_OK(dsm_atomic_load_u64(at(me, 3, 128), &back));
    CU_ASSERT_EQUAL(back, 1000 + (uint64_t)me);
    H_OK(dsm_barrier());
}

static void test_atomic_bad_input(void)
{
    dsm_gptr_t g = at(me, 4, 0), odd2, odd4;
    H_OK(dsm_gptr_add(g, 2, &odd2));
    H_OK(dsm_gptr_add(g, 4, &odd4));
    float f = 3;
    double d = 4;
    uint32_t u = 5;
    int64_t i = 6;
    dsm_request_t r;
    H_EXPECT(dsm_atomic_store_float(odd2, 1.0f), DSM_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "dsm_atomic_store_float"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "aligned"));
    H_EXPECT(dsm_atomic_fetch_add_double(odd4, 1.0, &d), DSM_ERR_ARG);
    CU_ASSERT_EQUAL(d, 4);
    H_EXPECT(dsm_atomic_cas_u32(odd2, 0, 1, &u), DSM_ERR_ARG);
    CU_ASSERT_EQUAL(u, 5);
    H_EXPECT(dsm_atomic_load_float(g, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_atomic_swap_double(g, 1.0, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_atomic_cas_float(g, 1.0f, 2.0f, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_atomic_fetch_add_float(g, 1.0f, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_atomic_add_double(DSM_GPTR_NULL, 1.0), DSM_ERR_ARG);
    H_EXPECT(dsm_atomic_fetch_add_i64_nb(odd4, &i, &i, &r), DSM_ERR_ARG);
    H_EXPECT(dsm_atomic_fetch_add_i64_nb(g, NULL, &i, &r), DSM_ERR_ARG);
    H_EXPECT(dsm_atomic_swap_u32_nb(g, &u, NULL, &r), DSM_ERR_ARG);
    H_EXPECT(dsm_atomic_load_u64_nb(g, (uint64_t *)&i, NULL), DSM_ERR_ARG);
    dsm_topo_t t;
    H_OK(dsm_topology(&t));
    dsm_gptr_t end;
    H_OK(dsm_gptr_make(me, t.segment_size - 4, &end));
    H_EXPECT(dsm_atomic_load_double(end, &d), DSM_ERR_RANGE);
    H_OK(dsm_atomic_load_float(end, &f)); // the last 4 bytes hold a float
    CU_ASSERT_EQUAL(i, 6);
    H_OK(dsm_barrier());
}

static CU_TestInfo cases[] = {
    {"setup", test_atomic_setup},
    {"u32", test_atomic_u32},
    {"fp_contended", test_atomic_fp_contended},
    {"fp_bits", test_atomic_fp_bits},
    {"nonblocking", test_atomic_nonblocking},
    {"bad_input", test_atomic_bad_input},
    {"teardown", test_atomic_teardown},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_LOG_LEVEL", "none", 0); // the error cases would flood stderr
    struct harness_suite s = {"atomic", 1, true, cases};
    return harness_main(argc, argv, &s);
}
