/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * rma: put/get (blocking and non-blocking), flush, barrier and the remote atomics,
 * including each promise of the consistency model in mpidsm.h and every bad input.
 * Memory is addressed by offset from the first user byte: these tests run before the
 * heap owns it, and each case uses its own slice (SLICE) so cases never interfere.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"

#define USER0 65536u // first user offset (the runtime header is 64 KiB)
#define SLICE (1u << 20)
#define SLICES 11

static int me, n;
static uint64_t base; // offset of this suite's symmetric block: SLICES slices per rank

/* A pointer into rank r's user memory: slice s, byte off. */
static dsm_gptr_t at(int r, unsigned s, uint64_t off)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_gptr_make(r, base + (uint64_t)s * SLICE + off, &g));
    return g;
}

static unsigned char pattern(int writer, int target, size_t i)
{
    return (unsigned char)(writer * 31 + target * 7 + i * 13 + 1);
}

/* Memory for the cases: one symmetric block, so slice s of rank r is known everywhere. */
static void test_rma_setup(void)
{
    me = dsm_rank();
    n = dsm_nranks();
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_alloc_all((size_t)SLICES * SLICE, &g));
    base = dsm_gptr_offset(g);
}

static void test_rma_teardown(void)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_gptr_make(me, base, &g));
    H_OK(dsm_free_all(g));
}

/* Every rank puts a pattern into its right neighbour, then reads its left one. */
static void test_rma_put_get_ring(void)
{
    const size_t sizes[] = {1, 8, 100, 4096, 65536, 300000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t len = sizes[k];
        unsigned char *buf = malloc(len), *back = malloc(len);
        int right = (me + 1) % n, left = (me + n - 1) % n;
        for (size_t i = 0; i < len; i++) {
            buf[i] = pattern(me, right, i + k);
        }
        H_OK(dsm_put(at(right, 0, 0), buf, len));
        H_OK(dsm_barrier());
        H_OK(dsm_get(back, at(me, 0, 0), len)); // what the left neighbour wrote here
        size_t bad = 0;
        for (size_t i = 0; i < len; i++) {
            bad += back[i] != pattern(left, me, i + k);
        }
        CU_ASSERT_EQUAL(bad, 0);
        H_OK(dsm_barrier());
        free(buf);
        free(back);
    }
}

/* Blocking put is complete at the target on return: the target reads it after a
 * barrier through its local pointer, with no flush of its own. */
static void test_rma_put_complete_on_return(void)
{
    int right = (me + 1) % n;
    uint64_t v = 0xabc0000u + (uint64_t)me;
    H_OK(dsm_put(at(right, 1, 8), &v, sizeof v));
    H_OK(dsm_barrier());
    void *p = NULL;
    H_OK(dsm_gptr_local(at(me, 1, 8), &p));
    uint64_t got = 0;
    if (p) {
        memcpy(&got, p, sizeof got);
    }
    CU_ASSERT_EQUAL(got, 0xabc0000u + (uint64_t)((me + n - 1) % n));
    H_OK(dsm_barrier());
}

/* Non-blocking: many puts in flight, then flush; gets complete at wait. */
static void test_rma_nonblocking(void)
{
    enum { K = 64 };
    int right = (me + 1) % n;
    uint64_t src[K], dst[K];
    dsm_request_t req[K];
    for (int i = 0; i < K; i++) {
        src[i] = (uint64_t)me << 32 | (uint64_t)i;
        H_OK(dsm_put_nb(at(right, 2, (uint64_t)i * 8), &src[i], 8, &req[i]));
    }
    for (int i = 0; i < K; i++) {
        H_OK(dsm_wait(&req[i]));
    }
    H_EXPECT(dsm_wait(&req[0]), DSM_ERR_ARG); // consumed requests are refused, not waited on
    H_OK(dsm_flush(right));
    H_OK(dsm_barrier());
    for (int i = 0; i < K; i++) {
        H_OK(dsm_get_nb(&dst[i], at(me, 2, (uint64_t)i * 8), 8, &req[i]));
    }
    int done = 0;
    for (int i = 0; i < K; i++) {
        bool flag = false;
        H_OK(dsm_test(&req[i], &flag));
        if (!flag) {
            H_OK(dsm_wait(&req[i]));
        }
        done++;
    }
    CU_ASSERT_EQUAL(done, K);
    int left = (me + n - 1) % n, bad = 0;
    for (int i = 0; i < K; i++) {
        bad += dst[i] != ((uint64_t)left << 32 | (uint64_t)i);
    }
    CU_ASSERT_EQUAL(bad, 0);
    H_OK(dsm_barrier());
}

/* Contended fetch-add from every rank on one counter per type: the sum is exact and
 * every fetched value is distinct (no lost or duplicated update). */
static void test_rma_atomic_fetch_add_contended(void)
{
    enum { ITERS = 500 };
    dsm_gptr_t c64 = at(0, 3, 0), c32 = at(0, 3, 64), cu = at(0, 3, 128);
    if (me == 0) {
        H_OK(dsm_atomic_store_i64(c64, 0));
        H_OK(dsm_atomic_store_i32(c32, 0));
        H_OK(dsm_atomic_store_u64(cu, 0));
    }
    H_OK(dsm_barrier());
    long long local_sum = 0;
    for (int i = 0; i < ITERS; i++) {
        int64_t old = -1;
        int32_t old32 = -1;
        uint64_t oldu = 0;
        H_OK(dsm_atomic_fetch_add_i64(c64, 1, &old));
        H_OK(dsm_atomic_add_i32(c32, 2));
        H_OK(dsm_atomic_fetch_add_u64(cu, 3, &oldu));
        local_sum += old;
        (void)old32;
    }
    H_OK(dsm_barrier());
    int64_t v64 = 0;
    int32_t v32 = 0;
    uint64_t vu = 0;
    H_OK(dsm_atomic_load_i64(c64, &v64));
    H_OK(dsm_atomic_load_i32(c32, &v32));
    H_OK(dsm_atomic_load_u64(cu, &vu));
    CU_ASSERT_EQUAL(v64, (int64_t)ITERS * n);
    CU_ASSERT_EQUAL(v32, 2 * ITERS * n);
    CU_ASSERT_EQUAL(vu, (uint64_t)3 * ITERS * n);
    // Distinct fetched values 0..N-1 sum to N(N-1)/2.
    long long total = (long long)ITERS * n;
    CU_ASSERT_EQUAL(harness_sum(local_sum), total * (total - 1) / 2);
    H_OK(dsm_barrier());
}

/* CAS as a ticket: every rank increments with a CAS loop; the final value is exact. */
static void test_rma_atomic_cas_loop(void)
{
    enum { ITERS = 200 };
    dsm_gptr_t c = at(n - 1, 4, 0);
    if (me == 0) {
        H_OK(dsm_atomic_store_i64(c, 0));
    }
    H_OK(dsm_barrier());
    int retries = 0;
    for (int i = 0; i < ITERS; i++) {
        int64_t seen = 0, old = 0;
        H_OK(dsm_atomic_load_i64(c, &seen));
        for (;;) {
            H_OK(dsm_atomic_cas_i64(c, seen, seen + 1, &old));
            if (old == seen) {
                break;
            }
            seen = old;
            retries++;
        }
    }
    H_OK(dsm_barrier());
    int64_t v = 0;
    H_OK(dsm_atomic_load_i64(c, &v));
    CU_ASSERT_EQUAL(v, (int64_t)ITERS * n);
    H_OK(dsm_barrier());
}

static void test_rma_atomic_bitwise_swap(void)
{
    dsm_gptr_t w = at(0, 5, 0), w32 = at(0, 5, 8), s = at(0, 5, 16);
    if (me == 0) {
        H_OK(dsm_atomic_store_u64(w, 0));
        H_OK(dsm_atomic_store_i32(w32, -1));
        H_OK(dsm_atomic_store_i64(s, -1));
    }
    H_OK(dsm_barrier());
    uint64_t old = 0;
    H_OK(dsm_atomic_fetch_or_u64(w, UINT64_C(1) << me, &old));
    H_OK(dsm_atomic_and_i32(w32, ~(int32_t)(1 << me)));
    H_OK(dsm_atomic_xor_u64(w, UINT64_C(1) << (me + 32)));
    int64_t prev = 0;
    H_OK(dsm_atomic_swap_i64(s, me, &prev));
    H_OK(dsm_barrier());
    uint64_t v = 0;
    int32_t v32 = 0;
    H_OK(dsm_atomic_load_u64(w, &v));
    H_OK(dsm_atomic_load_i32(w32, &v32));
    uint64_t low = (n >= 32) ? 0xffffffffu : ((UINT64_C(1) << n) - 1);
    CU_ASSERT_EQUAL(v & 0xffffffffu, low);
    CU_ASSERT_EQUAL(v >> 32, low);
    CU_ASSERT_EQUAL((uint32_t)v32, (uint32_t) ~(uint32_t)low);
    // Swaps form a chain: exactly one rank saw the initial -1.
    CU_ASSERT_EQUAL(harness_sum(prev == -1), 1);
    int64_t fin = -2;
    H_OK(dsm_atomic_load_i64(s, &fin));
    CU_ASSERT(fin >= 0 && fin < n);
    uint64_t f = 0;
    H_OK(dsm_atomic_fetch_and_u64(w, 0, &f));
    H_OK(dsm_atomic_fetch_xor_u64(w, 0, &f));
    H_OK(dsm_barrier());
}

/* A global pointer stored in the heap is swapped and CAS'd as one value (a lock-free
 * push onto a shared stack: every rank's node ends up on it once). */
static void test_rma_atomic_gptr(void)
{
    dsm_gptr_t head = at(0, 6, 0);
    if (me == 0) {
        H_OK(dsm_atomic_store_gptr(head, DSM_GPTR_NULL));
    }
    H_OK(dsm_barrier());
    dsm_gptr_t node = at(me, 6, 64); // [next]
    dsm_gptr_t seen = DSM_GPTR_NULL, old;
    for (;;) {
        H_OK(dsm_put(node, &seen, sizeof seen));
        H_OK(dsm_atomic_cas_gptr(head, seen, node, &old));
        if (dsm_gptr_equal(old, seen)) {
            break;
        }
        seen = old;
    }
    H_OK(dsm_barrier());
    int count = 0, mask = 0;
    dsm_gptr_t cur;
    H_OK(dsm_atomic_load_gptr(head, &cur));
    while (!dsm_gptr_is_null(cur) && count <= n) {
        mask |= 1 << dsm_gptr_rank(cur);
        count++;
        H_OK(dsm_get(&cur, cur, sizeof cur));
    }
    CU_ASSERT_EQUAL(count, n);
    CU_ASSERT_EQUAL(mask, (1 << n) - 1);
    dsm_gptr_t prev;
    H_OK(dsm_barrier());
    if (me == 0) {
        H_OK(dsm_atomic_swap_gptr(head, DSM_GPTR_NULL, &prev));
        CU_ASSERT_FALSE(dsm_gptr_is_null(prev));
    }
    H_OK(dsm_barrier());
}

/* Ordering promise: data put, then a flag set with an atomic after the put returned;
 * whoever sees the flag sees the data. */
static void test_rma_flag_orders_data(void)
{
    int right = (me + 1) % n;
    dsm_gptr_t data = at(right, 7, 0), flag = at(right, 7, 4096);
    H_OK(dsm_atomic_store_i64(at(me, 7, 4096), 0));
    H_OK(dsm_barrier());
    uint64_t payload[64];
    for (int i = 0; i < 64; i++) {
        payload[i] = (uint64_t)me * 1000 + (uint64_t)i;
    }
    H_OK(dsm_put(data, payload, sizeof payload));
    H_OK(dsm_atomic_store_i64(flag, 1));
    int64_t f = 0;
    for (long spins = 0; f == 0 && spins < 100000000L; spins++) {
        H_OK(dsm_atomic_load_i64(at(me, 7, 4096), &f));
    }
    CU_ASSERT_EQUAL(f, 1);
    uint64_t got[64];
    H_OK(dsm_get(got, at(me, 7, 0), sizeof got));
    int left = (me + n - 1) % n, bad = 0;
    for (int i = 0; i < 64; i++) {
        bad += got[i] != (uint64_t)left * 1000 + (uint64_t)i;
    }
    CU_ASSERT_EQUAL(bad, 0);
    H_OK(dsm_barrier());
}

/* Every bad input returns its code and leaves the out-parameters untouched. */
static void test_rma_bad_input(void)
{
    char buf[16] = {0};
    dsm_gptr_t g = at(me, 8, 0), bad;
    H_EXPECT(dsm_put(DSM_GPTR_NULL, buf, 8), DSM_ERR_ARG);
    H_EXPECT(dsm_get(buf, DSM_GPTR_NULL, 8), DSM_ERR_ARG);
    H_EXPECT(dsm_put(g, NULL, 8), DSM_ERR_ARG);
    H_EXPECT(dsm_get(NULL, g, 8), DSM_ERR_ARG);
    H_OK(dsm_put(g, NULL, 0)); // len 0 is a no-op
    // the runtime header is not user memory
    bad.bits = (uint64_t)me << DSM_GPTR_OFFSET_BITS | 64;
    H_EXPECT(dsm_put(bad, buf, 8), DSM_ERR_RANGE);
    // rank beyond the job
    bad.bits = (uint64_t)n << DSM_GPTR_OFFSET_BITS | USER0;
    H_EXPECT(dsm_get(buf, bad, 8), DSM_ERR_RANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "dsm_get"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "outside"));
    // running off the end of the segment
    dsm_topo_t t;
    H_OK(dsm_topology(&t));
    dsm_gptr_t last;
    H_OK(dsm_gptr_make(me, t.segment_size - 4, &last));
    H_EXPECT(dsm_put(last, buf, 8), DSM_ERR_RANGE);
    H_OK(dsm_get(buf, last, 4)); // the last bytes are reachable (read: the heap owns them)
    bad.bits = (uint64_t)me << DSM_GPTR_OFFSET_BITS | DSM_GPTR_MAX_OFFSET;
    H_EXPECT(dsm_get(buf, bad, 1), DSM_ERR_RANGE);
    bad.bits = UINT64_MAX;
    H_EXPECT(dsm_get(buf, bad, 1), DSM_ERR_RANGE);
    // a length that would wrap around
    H_EXPECT(dsm_get(buf, g, SIZE_MAX), DSM_ERR_RANGE);
    // atomics: misaligned, null out-parameters
    int64_t old = 77;
    dsm_gptr_t odd;
    H_OK(dsm_gptr_add(g, 4, &odd));
    H_EXPECT(dsm_atomic_fetch_add_i64(odd, 1, &old), DSM_ERR_ARG);
    CU_ASSERT_EQUAL(old, 77);
    H_OK(dsm_atomic_fetch_add_i32(odd, 1, (int32_t *)buf)); // 4-aligned is fine for i32
    H_EXPECT(dsm_atomic_fetch_add_i64(g, 1, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_atomic_cas_i64(g, 0, 1, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_atomic_load_u64(DSM_GPTR_NULL, (uint64_t *)buf), DSM_ERR_ARG);
    // flush and requests
    H_EXPECT(dsm_flush(-1), DSM_ERR_RANGE);
    H_EXPECT(dsm_flush(n), DSM_ERR_RANGE);
    dsm_request_t req;
    memset(&req, 0, sizeof req);
    H_EXPECT(dsm_wait(&req), DSM_ERR_ARG);
    H_EXPECT(dsm_wait(NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_put_nb(g, buf, 8, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_get_nb(buf, bad, 8, &req), DSM_ERR_RANGE);
    bool done;
    H_EXPECT(dsm_test(&req, &done), DSM_ERR_ARG);
    H_OK(dsm_barrier());
}

/* Threads of one rank put, get and add at once. The harness asks MPI for
 * MPI_THREAD_MULTIPLE; an MPI without it runs this case as a no-op. */
struct thr {
    int id;
    int errors;
};
static void *thread_body(void *arg)
{
    struct thr *t = arg;
    int right = (me + 1) % n;
    for (int i = 0; i < 200; i++) {
        uint64_t v = (uint64_t)t->id << 32 | (uint64_t)i, back = 0;
        dsm_gptr_t slot = at(right, 9, (uint64_t)(t->id * 8));
        t->errors += dsm_put(slot, &v, 8) != DSM_OK;
        t->errors += dsm_get(&back, slot, 8) != DSM_OK;
        t->errors += back != v;
        t->errors += dsm_atomic_add_i64(at(0, 9, 4096), 1) != DSM_OK;
    }
    return NULL;
}

static void test_rma_threads(void)
{
    int provided = 0;
    MPI_Query_thread(&provided);
    if (provided != MPI_THREAD_MULTIPLE) {
        return;
    }
    enum { T = 4 };
    if (me == 0) {
        H_OK(dsm_atomic_store_i64(at(0, 9, 4096), 0));
    }
    H_OK(dsm_barrier());
    struct thr ts[T];
    for (int i = 0; i < T; i++) {
        ts[i] = (struct thr){i, 0};
    }
    harness_threads(T, thread_body, ts, sizeof ts[0]);
    int errors = 0;
    for (int i = 0; i < T; i++) {
        errors += ts[i].errors;
    }
    CU_ASSERT_EQUAL(errors, 0);
    H_OK(dsm_barrier());
    int64_t v = 0;
    H_OK(dsm_atomic_load_i64(at(0, 9, 4096), &v));
    CU_ASSERT_EQUAL(v, 200 * T * n);
    H_OK(dsm_barrier());
}

static void test_rma_stats_count(void)
{
    dsm_stats_t a, b;
    H_OK(dsm_stats(&a));
    uint64_t v = 1;
    H_OK(dsm_put(at(me, 10, 0), &v, 8));
    H_OK(dsm_get(&v, at(me, 10, 0), 8));
    H_OK(dsm_atomic_add_u64(at(me, 10, 8), 1));
    H_OK(dsm_stats(&b));
    CU_ASSERT_EQUAL(b.puts - a.puts, 1);
    CU_ASSERT_EQUAL(b.gets - a.gets, 1);
    CU_ASSERT_EQUAL(b.bytes_put - a.bytes_put, 8);
    CU_ASSERT_EQUAL(b.atomics - a.atomics, 1);
    dsm_topo_t t;
    H_OK(dsm_topology(&t));
    if (t.direct_ranks == 0) { // direct mode has nothing to flush
        CU_ASSERT(b.flushes - a.flushes >= 3);
    }
    H_EXPECT(dsm_stats(NULL), DSM_ERR_ARG);
    H_OK(dsm_barrier());
}

/* Which data path runs: loads and stores to every rank of the caller's node (all ranks
 * on one node, the node's ranks across nodes: hybrid mode) when DSM_DIRECT is not 0,
 * unless the launcher forced a network path (test_netpath.sh sets
 * DSM_TEST_EXPECT_DIRECT=0). So the suites really cover the path they claim to. */
static void test_rma_data_path(void)
{
    dsm_topo_t t;
    H_OK(dsm_topology(&t));
    const char *d = getenv("DSM_DIRECT"), *e = getenv("DSM_TEST_EXPECT_DIRECT");
    bool off = d && (!strcmp(d, "0") || !strcasecmp(d, "no") || !strcasecmp(d, "false") ||
                     !strcasecmp(d, "off"));
    bool want = e ? atoi(e) != 0 : !off;
    CU_ASSERT_EQUAL(t.direct_ranks, want ? t.local_ranks : 0);
    if (me == 0) {
        printf("  data path: %s\n", t.direct_ranks == n ? "direct load/store"
                                    : t.direct_ranks    ? "hybrid: load/store on this node"
                                                        : "MPI one-sided calls");
    }
}

static CU_TestInfo cases[] = {
    {"setup", test_rma_setup},
    {"data_path", test_rma_data_path},
    {"put_get_ring", test_rma_put_get_ring},
    {"put_complete_on_return", test_rma_put_complete_on_return},
    {"nonblocking", test_rma_nonblocking},
    {"atomic_fetch_add_contended", test_rma_atomic_fetch_add_contended},
    {"atomic_cas_loop", test_rma_atomic_cas_loop},
    {"atomic_bitwise_swap", test_rma_atomic_bitwise_swap},
    {"atomic_gptr", test_rma_atomic_gptr},
    {"flag_orders_data", test_rma_flag_orders_data},
    {"bad_input", test_rma_bad_input},
    {"threads", test_rma_threads},
    {"stats_count", test_rma_stats_count},
    {"teardown", test_rma_teardown},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_STATS", "1", 0); // exercise the counting path (stats_count checks it)
    struct harness_suite s = {"rma", 1, true, cases};
    return harness_main(argc, argv, &s);
}
