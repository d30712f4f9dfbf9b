/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * signal: put-with-signal (SET and ADD), signal fetch, and the waits (one word, all,
 * any, some) on every word type, including the data-before-signal promise, signed and
 * unsigned comparisons, excluded words, the timeout, that a waiter leaves the core to
 * others, and every bad input. Each case uses its own slice of one symmetric block.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "harness.h"

#define SLICE (1u << 16)
#define SLICES 8

static int me, n;
static uint64_t base; // offset of the suite's symmetric block

static dsm_gptr_t at(int r, unsigned s, uint64_t off)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_gptr_make(r, base + (uint64_t)s * SLICE + off, &g));
    return g;
}

static void test_signal_setup(void)
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

static void test_signal_teardown(void)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_gptr_make(me, base, &g));
    H_OK(dsm_free_all(g));
}

static uint64_t word(int producer, int round, int i)
{
    return (uint64_t)producer << 48 | (uint64_t)round << 16 | (uint64_t)i;
}

/* A ring of producer-consumer pairs: each round the producer fills the consumer's
 * buffer with put-with-signal (SET), the consumer waits for the signal, checks every
 * word (the data must be there before the signal) and returns a credit with a
 * data-less ADD. Slice 0: buffer at 0, signal at 4096, credit at 4104. */
static void test_signal_pipeline(void)
{
    enum { ROUNDS = 100, W = 256 };
    int right = (me + 1) % n, left = (me + n - 1) % n;
    uint64_t buf[W];
    long bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        // the consumer has taken round r-1: its buffer may be overwritten
        H_OK(dsm_wait_until_u64(at(me, 0, 4104), DSM_CMP_GE, (uint64_t)r));
        for (int i = 0; i < W; i++) {
            buf[i] = word(me, r, i);
        }
        H_OK(dsm_put_signal(at(right, 0, 0), buf, sizeof buf, at(right, 0, 4096), (uint64_t)r + 1,
                            DSM_SIGNAL_SET));
        uint64_t seen = 0;
        H_OK(dsm_signal_wait_until(at(me, 0, 4096), DSM_CMP_EQ, (uint64_t)r + 1, &seen));
        CU_ASSERT_EQUAL(seen, (uint64_t)r + 1);
        uint64_t *mine = NULL;
        H_OK(dsm_gptr_local(at(me, 0, 0), (void **)&mine));
        for (int i = 0; mine && i < W; i++) {
            bad += mine[i] != word(left, r, i); // local loads see the data after the wait
        }
        H_OK(dsm_put_signal(at(left, 0, 0), NULL, 0, at(left, 0, 4104), 1, DSM_SIGNAL_ADD));
    }
    CU_ASSERT_EQUAL(bad, 0);
    H_OK(dsm_barrier());
}

/* ADD from every rank to every other: each rank's counter reaches K * (n - 1) exactly,
 * and dsm_signal_fetch reads it from anywhere. Slice 1: counter at 0. */
static void test_signal_add_fan_in(void)
{
    enum { K = 50 };
    uint64_t payload = 7;
    for (int k = 0; k < K; k++) {
        for (int d = 1; d < n; d++) {
            int t = (me + d) % n;
            H_OK(dsm_put_signal(at(t, 1, 64 + 8 * (uint64_t)me), &payload, 8, at(t, 1, 0), 1,
                                DSM_SIGNAL_ADD));
        }
    }
    uint64_t want = (uint64_t)K * (uint64_t)(n - 1), v = 0;
    H_OK(dsm_wait_until_u64(at(me, 1, 0), DSM_CMP_GE, want));
    H_OK(dsm_signal_fetch(at(me, 1, 0), &v));
    CU_ASSERT_EQUAL(v, want);
    H_OK(dsm_barrier());
    H_OK(dsm_signal_fetch(at((me + 1) % n, 1, 0), &v)); // a remote read
    CU_ASSERT_EQUAL(v, want);
    H_OK(dsm_barrier());
}

/* Writes value into word i of an array of type ty (0 i32, 1 u32, 2 i64, 3 u64) with
 * the atomic of the type's class. */
static void store_word(int ty, dsm_gptr_t arr, int i, int64_t value)
{
    dsm_gptr_t g;
    H_OK(dsm_gptr_add(arr, (int64_t)i * (ty < 2 ? 4 : 8), &g));
    switch (ty) {
    case 0:
        H_OK(dsm_atomic_store_i32(g, (int32_t)value));
        break;
    case 1:
        H_OK(dsm_atomic_store_u32(g, (uint32_t)value));
        break;
    case 2:
        H_OK(dsm_atomic_store_i64(g, value));
        break;
    default:
        H_OK(dsm_atomic_store_u64(g, (uint64_t)value));
        break;
    }
}

/* wait_until_all: every other rank sets its word of rank t's array (i32, u32, i64, u64
 * in turn); t waits for all of them with its own word excluded by status. */
static void test_signal_wait_all_types(void)
{
    int status[64] = {0};
    status[me] = 1; // nobody writes this rank's own word
    for (int ty = 0; ty < 4; ty++) {
        int bits = ty < 2 ? 32 : 64;
        dsm_gptr_t arr = at(me, 2, (uint64_t)ty * 1024);
        if (me != 0) {
            store_word(ty, at(0, 2, (uint64_t)ty * 1024), me, 1000 + me);
        }
        if (me == 0) {
            switch (ty) {
            case 0:
                H_OK(dsm_wait_until_all_i32(arr, (size_t)n, status, DSM_CMP_GE, 1000));
                break;
            case 1:
                H_OK(dsm_wait_until_all_u32(arr, (size_t)n, status, DSM_CMP_GT, 1000));
                break;
            case 2:
                H_OK(dsm_wait_until_all_i64(arr, (size_t)n, status, DSM_CMP_NE, 0));
                break;
            default:
                H_OK(dsm_wait_until_all_u64(arr, (size_t)n, status, DSM_CMP_GE, 1001));
                break;
            }
            int64_t *w64 = NULL;
            H_OK(dsm_gptr_local(arr, (void **)&w64));
            for (int r = 1; w64 && r < n; r++) {
                CU_ASSERT_EQUAL(bits == 32 ? ((int32_t *)w64)[r] : w64[r], 1000 + r);
            }
        }
        H_OK(dsm_barrier());
    }
}

/* any and some: the last rank sets word 3 (i64) or word 2 (u32) of rank 0's array;
 * rank 0 finds exactly it. Slice 3. */
static void test_signal_wait_any_some(void)
{
    dsm_gptr_t a64 = at(0, 3, 0), a32 = at(0, 3, 512);
    if (me == n - 1) {
        store_word(2, a64, 3, 42);
        store_word(1, a32, 2, 9);
    }
    if (me == 0) {
        size_t idx = 77, cnt = 0, ids[8] = {0};
        H_OK(dsm_wait_until_any_i64(a64, 8, NULL, DSM_CMP_EQ, 42, &idx));
        CU_ASSERT_EQUAL(idx, 3);
        H_OK(dsm_wait_until_some_u32(a32, 8, NULL, DSM_CMP_NE, 0, ids, &cnt));
        CU_ASSERT_EQUAL(cnt, 1);
        CU_ASSERT_EQUAL(ids[0], 2);
        // everything excluded: no wait, a defined answer
        int none[8] = {1, 1, 1, 1, 1, 1, 1, 1};
        H_OK(dsm_wait_until_any_i64(a64, 8, none, DSM_CMP_EQ, 12345, &idx));
        CU_ASSERT_EQUAL(idx, SIZE_MAX);
        H_OK(dsm_wait_until_some_i64(a64, 8, none, DSM_CMP_EQ, 12345, ids, &cnt));
        CU_ASSERT_EQUAL(cnt, 0);
        H_OK(dsm_wait_until_all_i64(a64, 8, none, DSM_CMP_EQ, 12345));
        H_OK(dsm_wait_until_all_i64(a64, 0, NULL, DSM_CMP_EQ, 12345));
    }
    H_OK(dsm_barrier());
}

/* The comparison follows the word's type: -5 is below 0 as i32/i64 and far above it as
 * u32/u64. Words of the caller's own memory, already set: every wait returns at once. */
static void test_signal_signedness(void)
{
    dsm_gptr_t w32 = at(me, 4, 0), w64 = at(me, 4, 8);
    H_OK(dsm_atomic_store_i32(w32, -5));
    H_OK(dsm_atomic_store_i64(w64, -5));
    H_OK(dsm_wait_until_i32(w32, DSM_CMP_LT, 0));
    H_OK(dsm_wait_until_i64(w64, DSM_CMP_LE, -5));
    H_OK(dsm_atomic_store_u32(w32, 0xfffffffbu)); // the same bits in the unsigned classes
    H_OK(dsm_atomic_store_u64(w64, UINT64_C(0xfffffffffffffffb)));
    H_OK(dsm_wait_until_u32(w32, DSM_CMP_GT, 0x7fffffffu));
    H_OK(dsm_wait_until_u64(w64, DSM_CMP_GE, UINT64_C(0xfffffffffffffffb)));
    H_OK(dsm_wait_until_i64(w64, DSM_CMP_EQ, -5));
    H_OK(dsm_barrier());
}

/* Seconds of CPU this process has used. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A waiter does not occupy a core: rank 1 waits up to 0.6 s for rank 0, which sleeps first,
 * and uses a small part of that time on the CPU (a spinning waiter uses all it gets,
 * at least a third of the wall time here with 4 ranks on 2 cores). The other ranks
 * sleep too, so they do not take the core from it. Slice 5. */
static void test_signal_waiter_sleeps(void)
{
    const struct timespec nap = {0, 600 * 1000 * 1000};
    dsm_gptr_t sig = at(n > 1 ? 1 : 0, 5, 0);
    if (me == 1 || n == 1) {
        double c0 = cpu_seconds(), t0 = wall_seconds();
        if (n == 1) {
            H_OK(dsm_put_signal(at(0, 5, 64), &c0, 8, sig, 1, DSM_SIGNAL_SET));
        }
        H_OK(dsm_signal_wait_until(sig, DSM_CMP_EQ, 1, NULL));
        double cpu = cpu_seconds() - c0, wall = wall_seconds() - t0;
        // A waiter that left the barrier late on a busy machine found the signal set
        // and waited too briefly for its CPU share to say anything: no verdict then.
        if (n > 1 && wall > 0.1) {
            CU_ASSERT(cpu < 0.25 * wall);
            if (cpu >= 0.25 * wall) {
                printf("waiter used %.3f s CPU in %.3f s\n", cpu, wall);
            }
        } else if (n > 1) {
            printf("waiter waited only %.3f s (it started late): CPU share not judged\n", wall);
        }
    } else {
        nanosleep(&nap, NULL);
        if (me == 0) {
            double x = 1.5;
            H_OK(dsm_put_signal(at(1, 5, 64), &x, 8, sig, 1, DSM_SIGNAL_SET));
        }
    }
    H_OK(dsm_barrier());
}

static void test_signal_bad_input(void)
{
    uint64_t buf[4] = {0}, v = 99;
    size_t idx = 5, cnt = 5;
    dsm_gptr_t g = at(me, 6, 0), sig = at(me, 6, 64), odd, other = at((me + 1) % n, 6, 64);
    H_OK(dsm_gptr_add(sig, 4, &odd));
    H_EXPECT(dsm_put_signal(g, buf, 8, odd, 1, DSM_SIGNAL_SET), DSM_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "dsm_put_signal"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "aligned"));
    H_EXPECT(dsm_put_signal(g, buf, 8, sig, 1, 7), DSM_ERR_ARG);
    H_EXPECT(dsm_put_signal(g, buf, sizeof buf, at(me, 6, 16), 1, DSM_SIGNAL_SET), DSM_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "inside the data"));
    H_EXPECT(dsm_put_signal(g, NULL, 8, sig, 1, DSM_SIGNAL_SET), DSM_ERR_ARG);
    H_EXPECT(dsm_put_signal(g, buf, 8, DSM_GPTR_NULL, 1, DSM_SIGNAL_SET), DSM_ERR_ARG);
    // a bad signal leaves the data alone: nothing moved
    uint64_t *p = NULL;
    H_OK(dsm_gptr_local(g, (void **)&p));
    buf[0] = 0x5a5a;
    H_EXPECT(dsm_put_signal(g, buf, 8, odd, 1, DSM_SIGNAL_SET), DSM_ERR_ARG);
    CU_ASSERT(p && p[0] != 0x5a5a);
    dsm_topo_t t;
    H_OK(dsm_topology(&t));
    dsm_gptr_t last;
    H_OK(dsm_gptr_make(me, t.segment_size - 4, &last));
    H_EXPECT(dsm_put_signal(last, buf, 8, sig, 1, DSM_SIGNAL_SET), DSM_ERR_RANGE);
    H_EXPECT(dsm_signal_fetch(sig, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_signal_fetch(odd, &v), DSM_ERR_ARG);
    CU_ASSERT_EQUAL(v, 99);
    // waits: bad comparison, misaligned, another rank's memory, null out-parameters
    H_EXPECT(dsm_wait_until_u64(sig, 6, 0), DSM_ERR_ARG);
    H_EXPECT(dsm_wait_until_u64(sig, -1, 0), DSM_ERR_ARG);
    H_EXPECT(dsm_wait_until_i64(odd, DSM_CMP_EQ, 0), DSM_ERR_ARG);
    H_EXPECT(dsm_wait_until_i32(at(me, 6, 66), DSM_CMP_EQ, 0), DSM_ERR_ARG);
    if (n > 1) {
        H_EXPECT(dsm_wait_until_u64(other, DSM_CMP_EQ, 0), DSM_ERR_RANGE);
        CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "own memory"));
    }
    H_EXPECT(dsm_wait_until_any_u64(sig, 2, NULL, DSM_CMP_EQ, 0, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_wait_until_some_u64(sig, 2, NULL, DSM_CMP_EQ, 0, NULL, &cnt), DSM_ERR_ARG);
    H_EXPECT(dsm_wait_until_some_u64(sig, 2, NULL, DSM_CMP_EQ, 0, &idx, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_wait_until_all_u64(last, 2, NULL, DSM_CMP_EQ, 0), DSM_ERR_RANGE);
    H_EXPECT(dsm_wait_until_all_u64(sig, SIZE_MAX / 4, NULL, DSM_CMP_EQ, 0), DSM_ERR_ARG);
    H_EXPECT(dsm_signal_wait_until(DSM_GPTR_NULL, DSM_CMP_EQ, 0, NULL), DSM_ERR_ARG);
    CU_ASSERT_EQUAL(idx, 5);
    CU_ASSERT_EQUAL(cnt, 5);
    H_OK(dsm_barrier());
}

static void test_signal_not_initialised(void)
{
    H_OK(dsm_barrier());
    dsm_gptr_t s = at(me, 7, 0);
    H_OK(dsm_finalize());
    H_EXPECT(dsm_put_signal(s, NULL, 0, s, 1, DSM_SIGNAL_SET), DSM_ERR_STATE);
    H_EXPECT(dsm_wait_until_u64(s, DSM_CMP_EQ, 0), DSM_ERR_STATE);
    H_EXPECT(dsm_wait_until_any_u64(s, 1, NULL, DSM_CMP_EQ, 0, NULL), DSM_ERR_STATE);
    // DSM_WAIT_TIMEOUT=1: a word that never changes fails the wait instead of hanging
    setenv("DSM_WAIT_TIMEOUT", "1", 1);
    H_OK(dsm_init(NULL, NULL));
    test_signal_setup();
    H_EXPECT(dsm_wait_until_u64(at(me, 7, 0), DSM_CMP_EQ, 1), DSM_ERR_TIMEOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "DSM_WAIT_TIMEOUT"));
    size_t i = 3;
    H_EXPECT(dsm_wait_until_any_i32(at(me, 7, 0), 4, NULL, DSM_CMP_GT, 0, &i), DSM_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(i, 3);
    H_OK(dsm_barrier());
    H_OK(dsm_finalize());
    unsetenv("DSM_WAIT_TIMEOUT");
    H_OK(dsm_init(NULL, NULL));
    test_signal_setup();
}

static CU_TestInfo cases[] = {
    {"setup", test_signal_setup},
    {"pipeline", test_signal_pipeline},
    {"add_fan_in", test_signal_add_fan_in},
    {"wait_all_types", test_signal_wait_all_types},
    {"wait_any_some", test_signal_wait_any_some},
    {"signedness", test_signal_signedness},
    {"waiter_sleeps", test_signal_waiter_sleeps},
    {"bad_input", test_signal_bad_input},
    {"timeout", test_signal_not_initialised},
    {"teardown", test_signal_teardown},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_LOG_LEVEL", "none", 0); // the error cases would flood stderr
    struct harness_suite s = {"signal", 1, true, cases};
    return harness_main(argc, argv, &s);
}
