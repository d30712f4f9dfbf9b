/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * runtime: start and stop, misuse before init and after finalize, malformed and
 * mismatched DSM_* settings (every rank must fail alike, never hang), the thread level,
 * initialising on a sub-communicator, topology and error strings. The harness owns MPI,
 * so each case may start and stop mpidsm itself.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void test_runtime_misuse_before_init(void)
{
    char buf[8];
    dsm_gptr_t g = {(uint64_t)1 << 20};
    CU_ASSERT_FALSE(dsm_initialized());
    CU_ASSERT_EQUAL(dsm_rank(), -1);
    CU_ASSERT_EQUAL(dsm_nranks(), 0);
    CU_ASSERT(dsm_comm() == MPI_COMM_NULL);
    H_EXPECT(dsm_put(g, buf, 8), DSM_ERR_STATE);
    H_EXPECT(dsm_get(buf, g, 8), DSM_ERR_STATE);
    H_EXPECT(dsm_atomic_add_i64(g, 1), DSM_ERR_STATE);
    H_EXPECT(dsm_barrier(), DSM_ERR_STATE);
    H_EXPECT(dsm_flush_all(), DSM_ERR_STATE);
    H_EXPECT(dsm_finalize(), DSM_ERR_STATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "dsm_finalize"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "not initialised"));
    dsm_topo_t t;
    H_EXPECT(dsm_topology(&t), DSM_ERR_STATE);
}

static void test_runtime_init_finalize_cycle(void)
{
    for (int i = 0; i < 2; i++) {
        H_OK(dsm_init(NULL, NULL));
        CU_ASSERT_TRUE(dsm_initialized());
        CU_ASSERT_EQUAL(dsm_rank(), harness_rank());
        CU_ASSERT_EQUAL(dsm_nranks(), harness_nranks());
        CU_ASSERT(dsm_comm() != MPI_COMM_NULL);
        H_EXPECT(dsm_init(NULL, NULL), DSM_ERR_STATE); // twice is an error, not a leak
        H_OK(dsm_finalize());
        CU_ASSERT_FALSE(dsm_initialized());
    }
    char buf[8];
    H_EXPECT(dsm_get(buf, (dsm_gptr_t){(uint64_t)1 << 20}, 8), DSM_ERR_STATE);
}

/* A malformed value fails dsm_init with DSM_ERR_ENV naming the variable and value. */
static void expect_env_error(const char *name, const char *value, const char *needle)
{
    setenv(name, value, 1);
    int rc = dsm_init(NULL, NULL);
    H_EXPECT(rc, DSM_ERR_ENV);
    if (rc == DSM_OK) {
        dsm_finalize();
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), needle));
    unsetenv(name);
}

static void test_runtime_bad_env(void)
{
    expect_env_error("DSM_HEAP_SIZE", "12X", "DSM_HEAP_SIZE='12X'");
    expect_env_error("DSM_HEAP_SIZE", "-5M", "DSM_HEAP_SIZE");
    expect_env_error("DSM_HEAP_SIZE", "1K", "DSM_HEAP_SIZE"); // parses, but too small
    expect_env_error("DSM_HEAP_SIZE", "99999999999T", "DSM_HEAP_SIZE");
    expect_env_error("DSM_VERBOSE", "maybe", "DSM_VERBOSE='maybe'");
    expect_env_error("DSM_THREADS", "many", "one of single|funneled|serialized|multiple");
    expect_env_error("DSM_ERRORS", "", "DSM_ERRORS");
    // well-formed, but more than the node has: NOMEM on every rank, before any allocation
    setenv("DSM_HEAP_SIZE", "4T", 1);
    H_EXPECT(dsm_init(NULL, NULL), DSM_ERR_NOMEM);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "exceeds"));
    setenv("DSM_HEAP_SIZE", "64M", 1);
    // and afterwards a good start still works
    H_OK(dsm_init(NULL, NULL));
    H_OK(dsm_finalize());
}

/* A value only rank 0 has is reported on every rank (nobody hangs, nobody starts). */
static void test_runtime_env_one_rank_bad(void)
{
    if (harness_rank() == 0) {
        setenv("DSM_STATS", "sometimes", 1);
    }
    int rc = dsm_init(NULL, NULL);
    H_EXPECT(rc, DSM_ERR_ENV);
    if (rc == DSM_OK) {
        dsm_finalize();
    }
    unsetenv("DSM_STATS");
    CU_ASSERT_TRUE(harness_all(true)); // everyone got here
}

static void test_runtime_env_mismatch(void)
{
    if (harness_nranks() < 2) {
        return;
    }
    setenv("DSM_HEAP_SIZE", harness_rank() == 1 ? "32M" : "64M", 1);
    int rc = dsm_init(NULL, NULL);
    H_EXPECT(rc, DSM_ERR_ENV);
    if (rc == DSM_OK) {
        dsm_finalize();
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "DSM_HEAP_SIZE must be the same"));
    setenv("DSM_HEAP_SIZE", "64M", 1);
    // A setting that need not agree may differ.
    setenv("DSM_LOG_LEVEL", harness_rank() == 1 ? "warn" : "error", 1);
    H_OK(dsm_init(NULL, NULL));
    H_OK(dsm_finalize());
    unsetenv("DSM_LOG_LEVEL");
}

static void test_runtime_sizes_and_verbose(void)
{
    setenv("DSM_HEAP_SIZE", "3m", 1); // suffixes are case-insensitive
    setenv("DSM_VERBOSE", "On", 1);
    setenv("DSM_STATS", "yes", 1);
    H_OK(dsm_init(NULL, NULL));
    dsm_topo_t t;
    H_OK(dsm_topology(&t));
    CU_ASSERT_EQUAL(t.segment_size, 3u << 20);
    H_OK(dsm_finalize());
    unsetenv("DSM_VERBOSE");
    unsetenv("DSM_STATS");
    setenv("DSM_HEAP_SIZE", "0", 1); // auto
    H_OK(dsm_init(NULL, NULL));
    H_OK(dsm_topology(&t));
    CU_ASSERT(t.segment_size >= 16u << 20 && t.segment_size <= 1u << 30);
    H_OK(dsm_finalize());
    setenv("DSM_HEAP_SIZE", "64M", 1);
}

/* The layout a launcher was given, as ranks per node in node order ("2,1,1" from
 * DSM_TEST_NODE_RANKS, set by tests/test_cluster.sh from the hostfile it runs on).
 * Both MPIs fill the hostfile's nodes in order, and mpidsm numbers nodes by their lowest
 * rank, so rank r sits on the node whose block holds r. */
static void check_layout(const dsm_topo_t *t, const char *layout)
{
    int node = 0, first = 0, count = 0, mine = -1, my_first = 0, my_count = 0;
    for (const char *p = layout; *p; node++) {
        char *end;
        count = (int)strtol(p, &end, 10);
        if (end == p || count <= 0) {
            CU_FAIL("DSM_TEST_NODE_RANKS is not a list of counts like 2,1,1");
            return;
        }
        if (t->rank >= first && t->rank < first + count) {
            mine = node, my_first = first, my_count = count;
        }
        first += count;
        p = *end == ',' ? end + 1 : end;
    }
    CU_ASSERT_EQUAL(first, t->nranks); // the layout names every rank
    CU_ASSERT_EQUAL(t->nnodes, node);
    CU_ASSERT_EQUAL(t->node, mine);
    CU_ASSERT_EQUAL(t->local_rank, t->rank - my_first);
    CU_ASSERT_EQUAL(t->local_ranks, my_count);
}

static void test_runtime_topology(void)
{
    H_OK(dsm_init(NULL, NULL));
    dsm_topo_t t;
    H_OK(dsm_topology(&t));
    CU_ASSERT_EQUAL(t.rank, harness_rank());
    CU_ASSERT_EQUAL(t.nranks, harness_nranks());
    CU_ASSERT(t.nnodes >= 1 && t.node >= 0 && t.node < t.nnodes);
    CU_ASSERT(t.local_rank >= 0 && t.local_rank < t.local_ranks);
    CU_ASSERT(t.cores >= 1 && t.pus >= t.cores && t.numa_nodes >= 1);
    CU_ASSERT(t.node_memory > (1u << 20));
    CU_ASSERT_EQUAL(harness_sum(t.local_ranks == harness_nranks()),
                    harness_nranks() * (t.nnodes == 1));
    const char *layout = getenv("DSM_TEST_NODE_RANKS");
    if (layout) {
        check_layout(&t, layout);
    }
    H_EXPECT(dsm_topology(NULL), DSM_ERR_ARG);
    H_OK(dsm_finalize());
}

/* mpidsm on half the ranks: pointers name ranks of the sub-communicator. */
static void test_runtime_subcomm(void)
{
    MPI_Comm half;
    int color = harness_rank() % 2;
    MPI_Comm_split(MPI_COMM_WORLD, color, harness_rank(), &half);
    H_OK(dsm_init_comm(half));
    int hr, hn;
    MPI_Comm_rank(half, &hr);
    MPI_Comm_size(half, &hn);
    CU_ASSERT_EQUAL(dsm_rank(), hr);
    CU_ASSERT_EQUAL(dsm_nranks(), hn);
    dsm_gptr_t g, block = DSM_GPTR_NULL;
    H_OK(dsm_alloc_all(64 * sizeof(int64_t), &block));
    uint64_t off = dsm_gptr_offset(block);
    H_OK(dsm_gptr_make((hr + 1) % hn, off + 8 * (uint64_t)hr, &g));
    int64_t v = color * 100 + hr;
    H_OK(dsm_put(g, &v, 8));
    H_OK(dsm_barrier());
    int64_t got = -1;
    H_OK(dsm_gptr_make(hr, off + 8 * (uint64_t)((hr + hn - 1) % hn), &g));
    H_OK(dsm_get(&got, g, 8));
    CU_ASSERT_EQUAL(got, color * 100 + (hr + hn - 1) % hn);
    H_EXPECT(dsm_gptr_make(hn, 65536, &g), DSM_ERR_RANGE);
    H_OK(dsm_free_all(block));
    H_OK(dsm_finalize());
    H_EXPECT(dsm_init_comm(MPI_COMM_NULL), DSM_ERR_ARG);
    MPI_Comm_free(&half);
}

static void test_runtime_strerror(void)
{
    for (int i = 0; i < DSM_ERR_COUNT; i++) {
        CU_ASSERT_PTR_NOT_NULL(dsm_strerror(i));
        CU_ASSERT(strlen(dsm_strerror(i)) > 0);
        CU_ASSERT_STRING_NOT_EQUAL(dsm_strerror(i), "unknown error");
    }
    CU_ASSERT_STRING_EQUAL(dsm_strerror(-1), "unknown error");
    CU_ASSERT_STRING_EQUAL(dsm_strerror(DSM_ERR_COUNT), "unknown error");
    CU_ASSERT_EQUAL(dsm_version(), DSM_VERSION);
}

static CU_TestInfo cases[] = {
    {"misuse_before_init", test_runtime_misuse_before_init},
    {"init_finalize_cycle", test_runtime_init_finalize_cycle},
    {"bad_env", test_runtime_bad_env},
    {"env_one_rank_bad", test_runtime_env_one_rank_bad},
    {"env_mismatch", test_runtime_env_mismatch},
    {"sizes_and_verbose", test_runtime_sizes_and_verbose},
    {"topology", test_runtime_topology},
    {"subcomm", test_runtime_subcomm},
    {"strerror", test_runtime_strerror},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_HEAP_SIZE", "64M", 1);
    struct harness_suite s = {"runtime", 1, false, cases};
    return harness_main(argc, argv, &s);
}
