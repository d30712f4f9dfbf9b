/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The data paths of a job (win.h): direct, hybrid (same node by loads and stores, other
 * nodes by MPI) or MPI, and the atomics rule that keeps a word correct when ranks of both
 * kinds hit it at once. Meant for 2 simulated nodes x 2 ranks (test_cluster.sh), where
 * every rank has a same-node peer and an other-node peer; it also runs on one node.
 *
 *  - data_path: direct_ranks is what the layout and DSM_DIRECT say, and DSM_STATS counts
 *    each operation on the path it took (ops_direct / ops_mpi);
 *  - ptr: dsm_ptr gives an address exactly for the ranks of this node (and this rank),
 *    sees the owner's bytes, keeps the alignment, and refuses bad pointers;
 *  - storm_fetch_add: every rank fetch-adds on a word of every rank at once; each word ends
 *    at the exact total and the values fetched from it are 0..total-1, each once;
 *  - storm_cas_lock: a spin lock built from compare-and-swap on a word of rank 0 and one
 *    of the last rank (other node), guarding a counter updated by plain get and put:
 *    a lost update or two holders at once show as a wrong count or a busy mark;
 *  - storm_mutex: the same through the MCS mutex;
 *  - storm_heap: every rank allocates on every rank at once, fills its blocks, and finds
 *    them intact after all others did the same, then frees them.
 * Expected values come from (rank, index); nothing is timed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"

enum { ADDS = 300, LOCKS = 100, BLOCKS = 6 };

static int me, n;

static void test_hybrid_setup(void)
{
    me = dsm_rank();
    n = dsm_nranks();
}

static bool direct_off(void)
{
    const char *d = getenv("DSM_DIRECT");
    return d && (!strcmp(d, "0") || !strcasecmp(d, "no") || !strcasecmp(d, "false") ||
                 !strcasecmp(d, "off"));
}

/* Whether rank r's segment is mapped here, as the layout and the settings say. */
static bool reachable(const dsm_topo_t *t, int r, int node_of_r)
{
    return r == me || (t->direct_ranks > 0 && node_of_r == t->node);
}

/* Every rank's node index (collective). */
static int *nodes_of_ranks(const dsm_topo_t *t)
{
    int *nodes = calloc((size_t)n, sizeof *nodes);
    MPI_Allgather(&t->node, 1, MPI_INT, nodes, 1, MPI_INT, MPI_COMM_WORLD);
    return nodes;
}

static void test_hybrid_data_path(void)
{
    dsm_topo_t t;
    H_OK(dsm_topology(&t));
    const char *e = getenv("DSM_TEST_EXPECT_DIRECT");
    bool want = e ? atoi(e) != 0 : !direct_off();
    CU_ASSERT_EQUAL(t.direct_ranks, want ? t.local_ranks : 0);
    int *nodes = nodes_of_ranks(&t);
    dsm_gptr_t g;
    H_OK(dsm_alloc_all(64, &g)); // collective: the same offset on every rank
    uint64_t v = (uint64_t)me;
    for (int r = 0; r < n; r++) {
        dsm_gptr_t at;
        H_OK(dsm_gptr_make(r, dsm_gptr_offset(g), &at));
        dsm_stats_t a, b;
        H_OK(dsm_stats(&a));
        H_OK(dsm_put(at, &v, sizeof v));
        H_OK(dsm_atomic_add_u64(at, 0));
        H_OK(dsm_stats(&b));
        bool mapped = t.direct_ranks > 0 && nodes[r] == t.node;
        // put: direct exactly where mapped; the atomic: direct only when every rank is
        // mapped (win.h's atomics rule), else MPI.
        uint64_t want_direct = (mapped ? 1 : 0) + (t.direct_ranks == n ? 1 : 0);
        CU_ASSERT_EQUAL(b.ops_direct - a.ops_direct, want_direct);
        CU_ASSERT_EQUAL(b.ops_mpi - a.ops_mpi, 2 - want_direct);
    }
    H_OK(dsm_barrier());
    H_OK(dsm_free_all(g));
    if (me == 0) {
        printf("  %d node(s); rank 0 reaches %d rank(s) with loads and stores\n", t.nnodes,
               t.direct_ranks);
    }
    free(nodes);
}

static void test_hybrid_ptr(void)
{
    dsm_topo_t t;
    H_OK(dsm_topology(&t));
    int *nodes = nodes_of_ranks(&t);
    dsm_gptr_t g;
    H_OK(dsm_alloc_all(4096, &g));
    dsm_gptr_t own;
    H_OK(dsm_gptr_make(me, dsm_gptr_offset(g), &own));
    uint64_t *mine = dsm_ptr(own); // always: the caller's own memory
    CU_ASSERT_PTR_NOT_NULL(mine);
    if (mine != NULL) {
        mine[0] = 1000 + (uint64_t)me;
    }
    H_OK(dsm_barrier());
    for (int r = 0; r < n; r++) {
        dsm_gptr_t at;
        H_OK(dsm_gptr_make(r, dsm_gptr_offset(g) + 8, &at));
        uint64_t *p = dsm_ptr(at);
        CU_ASSERT_EQUAL(p != NULL, reachable(&t, r, nodes[r]));
        if (p != NULL) {
            CU_ASSERT_EQUAL(p[-1], 1000 + (uint64_t)r); // the owner's store, seen here
            CU_ASSERT_EQUAL((uintptr_t)p % 4096, dsm_gptr_offset(at) % 4096);
            if (r == me || t.nnodes > 1) {
                CU_ASSERT_EQUAL((uintptr_t)p % DSM_MAX_ALIGN, dsm_gptr_offset(at) % DSM_MAX_ALIGN);
            }
        }
    }
    // Bad input: NULL and an error saying why; a valid pointer out of reach is no error.
    dsm_stats_t a, b;
    H_OK(dsm_stats(&a));
    CU_ASSERT_PTR_NULL(dsm_ptr(DSM_GPTR_NULL));
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "null global pointer"));
    dsm_gptr_t hdr, past;
    H_OK(dsm_gptr_make(me, 8, &hdr)); // the runtime header: not user memory
    CU_ASSERT_PTR_NULL(dsm_ptr(hdr));
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "outside the address space"));
    past.bits = dsm_gptr_offset(g) | ((uint64_t)n << DSM_GPTR_OFFSET_BITS); // rank n
    CU_ASSERT_PTR_NULL(dsm_ptr(past));
    H_OK(dsm_stats(&b));
    CU_ASSERT_EQUAL(b.errors - a.errors, 3);
    H_OK(dsm_barrier());
    H_OK(dsm_free_all(g));
    free(nodes);
}

/* A symmetric block of size bytes, zeroed on every rank before anyone uses it. */
static dsm_gptr_t sym_zeroed(size_t size)
{
    dsm_gptr_t g = DSM_GPTR_NULL, own;
    H_OK(dsm_alloc_all(size, &g));
    H_OK(dsm_gptr_make(me, dsm_gptr_offset(g), &own));
    void *p = NULL;
    H_OK(dsm_gptr_local(own, &p));
    if (p != NULL) {
        memset(p, 0, size);
    }
    H_OK(dsm_barrier());
    return own;
}

/* Whether v[0..k) holds 0..k-1 each once. */
static bool is_permutation(const uint64_t *v, size_t k)
{
    unsigned char *seen = calloc(k, 1);
    bool ok = seen != NULL;
    for (size_t i = 0; ok && i < k; i++) {
        ok = v[i] < k && !seen[v[i]];
        if (ok) {
            seen[v[i]] = 1;
        }
    }
    free(seen);
    return ok;
}

static void test_hybrid_storm_fetch_add(void)
{
    dsm_gptr_t g = sym_zeroed(8);                            // one counter per rank
    uint64_t *mine = calloc((size_t)n * ADDS, sizeof *mine); // [target][i]
    uint64_t *all = calloc((size_t)n * n * ADDS, sizeof *all);
    H_OK(dsm_barrier());
    for (int i = 0; i < ADDS; i++) {
        for (int k = 0; k < n; k++) {
            int r = (me + k) % n; // everyone on a different target at first, then all mixed
            dsm_gptr_t at;
            H_OK(dsm_gptr_make(r, dsm_gptr_offset(g), &at));
            H_OK(dsm_atomic_fetch_add_u64(at, 1, &mine[(size_t)r * ADDS + i]));
        }
    }
    H_OK(dsm_barrier());
    uint64_t total = 0;
    dsm_gptr_t own;
    H_OK(dsm_gptr_make(me, dsm_gptr_offset(g), &own));
    H_OK(dsm_atomic_load_u64(own, &total));
    CU_ASSERT_EQUAL(total, (uint64_t)n * ADDS);
    MPI_Allgather(mine, n * ADDS, MPI_UINT64_T, all, n * ADDS, MPI_UINT64_T, MPI_COMM_WORLD);
    uint64_t *col = calloc((size_t)n * ADDS, sizeof *col);
    for (int r = 0; r < n; r++) { // what every rank fetched from r's counter
        for (int o = 0; o < n; o++) {
            memcpy(col + (size_t)o * ADDS, all + ((size_t)o * n + r) * ADDS, ADDS * 8);
        }
        CU_ASSERT_TRUE(is_permutation(col, (size_t)n * ADDS));
    }
    H_OK(dsm_barrier());
    H_OK(dsm_free_all(g));
    free(col);
    free(all);
    free(mine);
}

/* Spin lock on word lk by compare-and-swap (0 free, rank + 1 held). */
static void cas_lock(dsm_gptr_t lk)
{
    uint64_t old = 1;
    while (old != 0) {
        H_OK(dsm_atomic_cas_u64(lk, 0, (uint64_t)me + 1, &old));
    }
}

/* LOCKS critical sections on the lock and counter of rank owner: the counter is read and
 * written with plain get/put, a busy mark is swapped in and out to catch overlap. */
static void cas_storm(dsm_gptr_t g, int owner)
{
    dsm_gptr_t lk, cnt, busy;
    H_OK(dsm_gptr_make(owner, dsm_gptr_offset(g), &lk));
    H_OK(dsm_gptr_make(owner, dsm_gptr_offset(g) + 8, &cnt));
    H_OK(dsm_gptr_make(owner, dsm_gptr_offset(g) + 16, &busy));
    int overlaps = 0;
    for (int i = 0; i < LOCKS; i++) {
        cas_lock(lk);
        uint64_t was = 0, c = 0;
        H_OK(dsm_atomic_swap_u64(busy, (uint64_t)me + 1, &was));
        overlaps += was != 0;
        H_OK(dsm_get(&c, cnt, 8));
        c++;
        H_OK(dsm_put(cnt, &c, 8));
        H_OK(dsm_atomic_swap_u64(busy, 0, &was));
        overlaps += was != (uint64_t)me + 1;
        H_OK(dsm_atomic_swap_u64(lk, 0, &was));
        CU_ASSERT_EQUAL(was, (uint64_t)me + 1);
    }
    CU_ASSERT_EQUAL(overlaps, 0);
}

static void test_hybrid_storm_cas_lock(void)
{
    dsm_gptr_t g = sym_zeroed(64);
    cas_storm(g, 0);
    cas_storm(g, n - 1);
    H_OK(dsm_barrier());
    uint64_t c = 0;
    for (int owner = 0; owner<n; owner += n - 1> 0 ? n - 1 : 1) {
        dsm_gptr_t cnt;
        H_OK(dsm_gptr_make(owner, dsm_gptr_offset(g) + 8, &cnt));
        H_OK(dsm_get(&c, cnt, 8));
        CU_ASSERT_EQUAL(c, (uint64_t)n * LOCKS);
    }
    H_OK(dsm_barrier());
    H_OK(dsm_free_all(g));
}

static void test_hybrid_storm_mutex(void)
{
    dsm_gptr_t m[2], data = sym_zeroed(16);
    if (me == 0) {
        H_OK(dsm_mutex_create(0, &m[0]));
        H_OK(dsm_mutex_create(n - 1, &m[1]));
    }
    MPI_Bcast(m, 2, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    H_OK(dsm_barrier());
    for (int i = 0; i < LOCKS; i++) {
        int k = i % 2, owner = k ? n - 1 : 0;
        dsm_gptr_t cnt;
        H_OK(dsm_gptr_make(owner, dsm_gptr_offset(data) + 8 * (uint64_t)k, &cnt));
        H_OK(dsm_mutex_lock(m[k]));
        uint64_t c = 0;
        H_OK(dsm_get(&c, cnt, 8));
        c++;
        H_OK(dsm_put(cnt, &c, 8));
        H_OK(dsm_mutex_unlock(m[k]));
    }
    H_OK(dsm_barrier());
    uint64_t sum = 0;
    for (int k = 0; k < 2; k++) {
        dsm_gptr_t cnt;
        uint64_t c = 0;
        H_OK(dsm_gptr_make(k ? n - 1 : 0, dsm_gptr_offset(data) + 8 * (uint64_t)k, &cnt));
        H_OK(dsm_get(&c, cnt, 8));
        sum += c;
    }
    CU_ASSERT_EQUAL(sum, (uint64_t)n * LOCKS);
    H_OK(dsm_barrier());
    if (me == 0) {
        H_OK(dsm_mutex_free(m[0]));
        H_OK(dsm_mutex_free(m[1]));
    }
    H_OK(dsm_free_all(data));
}

static uint64_t pattern(int rank, int target, int b, int w)
{
    return ((uint64_t)rank << 48) ^ ((uint64_t)target << 32) ^ ((uint64_t)b << 16) ^ (uint64_t)w;
}

static void test_hybrid_storm_heap(void)
{
    enum { WORDS = 32 };
    dsm_gptr_t *blk = calloc((size_t)n * BLOCKS, sizeof *blk);
    uint64_t buf[WORDS];
    for (int b = 0; b < BLOCKS; b++) { // every rank on every heap at once
        for (int k = 0; k < n; k++) {
            int r = (me + k) % n;
            H_OK(dsm_alloc_on(r, sizeof buf, &blk[r * BLOCKS + b]));
            CU_ASSERT_EQUAL(dsm_gptr_rank(blk[r * BLOCKS + b]), r);
            for (int w = 0; w < WORDS; w++) {
                buf[w] = pattern(me, r, b, w);
            }
            H_OK(dsm_put(blk[r * BLOCKS + b], buf, sizeof buf));
        }
    }
    H_OK(dsm_barrier());
    int bad = 0;
    for (int i = 0; i < n * BLOCKS; i++) {
        H_OK(dsm_get(buf, blk[i], sizeof buf));
        for (int w = 0; w < WORDS; w++) {
            bad += buf[w] != pattern(me, i / BLOCKS, i % BLOCKS, w);
        }
    }
    CU_ASSERT_EQUAL(bad, 0); // no block handed out twice
    H_OK(dsm_barrier());
    for (int i = 0; i < n * BLOCKS; i++) {
        H_OK(dsm_free(blk[i]));
    }
    H_OK(dsm_barrier());
    free(blk);
}

static CU_TestInfo cases[] = {
    {"setup", test_hybrid_setup},
    {"data_path", test_hybrid_data_path},
    {"ptr", test_hybrid_ptr},
    {"storm_fetch_add", test_hybrid_storm_fetch_add},
    {"storm_cas_lock", test_hybrid_storm_cas_lock},
    {"storm_mutex", test_hybrid_storm_mutex},
    {"storm_heap", test_hybrid_storm_heap},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_STATS", "1", 1); // data_path checks the counts per path
    struct harness_suite s = {"hybrid", 2, true, cases};
    return harness_main(argc, argv, &s);
}
