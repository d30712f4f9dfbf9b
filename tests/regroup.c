/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Helper of test_ckpt_regroup.sh (restart on another rank count, DESIGN.md decision 9).
 *
 *   regroup build   (4 ranks) each rank builds a linked list whose nodes lie on every
 *                   segment, names it with a root, protects a region, records every
 *                   segment's usage and a counter guarded by a mutex in segment 3,
 *                   then checkpoints.
 *   regroup verify  (any count, DSM_RESTART=required) checks the restart kept every
 *                   segment: each list walks with every byte as built, usage per
 *                   segment is as recorded, the protected region of each surviving
 *                   rank is back; then allocates, writes, reads and frees on every
 *                   segment, takes the mutex, records usage again and checkpoints (so
 *                   a later run checks images of hosted segments).
 *
 * Expected values come from (list, node, byte) only. Prints "regroup: ok ..." on rank
 * 0 when every check passed; exits 1 (after the collective calls) otherwise.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpidsm.h>

#define LISTS 4 // = the ranks of the build
#define NODES 40
#define MAXPAY 120

struct node {
    dsm_gptr_t next;
    uint64_t list, index, len;
    unsigned char pay[MAXPAY];
};

/* The meta block on segment 0 (root "meta"). */
struct meta {
    uint64_t nseg;           // segments when recorded
    uint64_t writers;        // ranks of the job that checkpointed (their regions are in it)
    uint64_t counter;        // the mutex-guarded count it must hold
    dsm_gptr_t mutex, count; // in segment 3
    dsm_usage_t usage[64];   // per segment, at the last checkpoint
};

static int bad;

#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "regroup: rank %d: ", dsm_rank());                                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            bad++;                                                                                 \
        }                                                                                          \
    } while (0)

static unsigned char pattern(uint64_t l, uint64_t i, uint64_t j)
{
    return (unsigned char)(l * 131 + i * 17 + j * 7 + 1);
}

static uint64_t pay_len(uint64_t l, uint64_t i)
{
    return 8 + (l * 13 + i * 29) % (MAXPAY - 8);
}

static void fill(struct node *n, uint64_t l, uint64_t i)
{
    memset(n, 0, sizeof *n);
    n->list = l, n->index = i, n->len = pay_len(l, i);
    for (uint64_t j = 0; j < n->len; j++) {
        n->pay[j] = pattern(l, i, j);
    }
}

static void root_name(char *out, size_t len, uint64_t l)
{
    snprintf(out, len, "list-%" PRIu64, l);
}

/* List l: node i on segment (l + i) % nseg, built from the tail so each next is known. */
static void build_list(uint64_t l, int nseg)
{
    dsm_gptr_t next = DSM_GPTR_NULL;
    for (uint64_t k = NODES; k-- > 0;) {
        struct node n;
        dsm_gptr_t g;
        fill(&n, l, k);
        n.next = next;
        int rc = dsm_alloc_on((int)((l + k) % (uint64_t)nseg), sizeof n, &g);
        EXPECT(rc == DSM_OK, "alloc: %s", dsm_strerror(rc));
        if (rc == DSM_OK) {
            EXPECT(dsm_put(g, &n, sizeof n) == DSM_OK, "put");
            next = g;
        }
    }
    char name[32];
    root_name(name, sizeof name, l);
    EXPECT(dsm_root_set(name, next) == DSM_OK, "root_set %s", name);
}

static void walk_list(uint64_t l)
{
    char name[32];
    dsm_gptr_t g = DSM_GPTR_NULL;
    root_name(name, sizeof name, l);
    EXPECT(dsm_root_get(name, &g) == DSM_OK, "root_get %s", name);
    uint64_t i = 0;
    for (; !dsm_gptr_is_null(g) && i < NODES + 1; i++) {
        struct node n, want;
        int rc = dsm_get(&n, g, sizeof n);
        EXPECT(rc == DSM_OK, "list %" PRIu64 " node %" PRIu64 ": get: %s", l, i, dsm_strerror(rc));
        if (rc != DSM_OK) {
            return;
        }
        fill(&want, l, i);
        want.next = n.next;
        EXPECT(memcmp(&n, &want, sizeof n) == 0, "list %" PRIu64 " node %" PRIu64 " differs", l, i);
        EXPECT(dsm_gptr_rank(g) == (int)((l + i) % LISTS),
               "list %" PRIu64 " node %" PRIu64 " on segment %d", l, i, dsm_gptr_rank(g));
        void *here = NULL; // a node in a segment held here (s % M): its address maps back
        dsm_gptr_t back = DSM_GPTR_NULL;
        if (dsm_gptr_rank(g) % dsm_nranks() == dsm_rank()) {
            EXPECT(dsm_gptr_local(g, &here) == DSM_OK,
                   "list %" PRIu64 " node %" PRIu64 " is not local", l, i);
            EXPECT(dsm_gptr_from_local(here, &back) == DSM_OK && dsm_gptr_equal(back, g),
                   "list %" PRIu64 " node %" PRIu64 ": %s maps back to %s", l, i,
                   dsm_gptr_str(g, (char[32]){0}, 32), dsm_gptr_str(back, (char[32]){0}, 32));
        }
        g = n.next;
    }
    EXPECT(i == NODES, "list %" PRIu64 " has %" PRIu64 " nodes, not %d", l, i, NODES);
}

/* The region "prot" of this rank: a rank that wrote the checkpoint finds its bytes
 * back; a newer rank (or a build) fills it as a fresh process would. */
static void protect(bool check, int writers)
{
    static unsigned char buf[64];
    unsigned char want[64];
    for (int j = 0; j < 64; j++) {
        want[j] = pattern(99, (uint64_t)dsm_rank(), (uint64_t)j);
    }
    bool back = check && dsm_rank() < writers;
    if (!back) {
        memcpy(buf, want, sizeof buf);
    }
    EXPECT(dsm_ckpt_protect(buf, sizeof buf, "prot") == DSM_OK, "protect");
    if (back) {
        EXPECT(memcmp(buf, want, sizeof buf) == 0, "protected region not restored");
    }
}

static void record_usage(struct meta *m)
{
    m->nseg = (uint64_t)dsm_nsegments();
    for (int s = 0; s < dsm_nsegments(); s++) {
        EXPECT(dsm_usage(s, &m->usage[s]) == DSM_OK, "usage %d", s);
    }
}

/* This rank's dsm_usage of itself returns its cache of small blocks to its heap, so that
 * rank 0's reading of every segment's usage after the next barrier counts live blocks
 * only, as the restored heap will (a checkpoint returns every rank's cache). */
static void settle(void)
{
    dsm_usage_t u;
    EXPECT(dsm_usage(dsm_rank(), &u) == DSM_OK, "usage of self");
}

static int finish(const char *what)
{
    int all = 0;
    MPI_Allreduce(&bad, &all, 1, MPI_INT, MPI_SUM, dsm_comm());
    if (dsm_rank() == 0 && all == 0) {
        printf("regroup: ok %s on %d ranks, %d segments\n", what, dsm_nranks(), dsm_nsegments());
    }
    dsm_finalize();
    return all ? 1 : 0;
}

static int build(void)
{
    EXPECT(dsm_nranks() == LISTS, "build needs %d ranks", LISTS);
    EXPECT(!dsm_restarted(NULL), "build must start fresh");
    build_list((uint64_t)dsm_rank(), dsm_nsegments());
    protect(false, 0);
    dsm_gptr_t mg = DSM_GPTR_NULL;
    if (dsm_rank() == 0) {
        struct meta m = {.writers = LISTS};
        EXPECT(dsm_mutex_create(3, &m.mutex) == DSM_OK, "mutex_create");
        EXPECT(dsm_alloc_on(3, 8, &m.count) == DSM_OK, "alloc count");
        EXPECT(dsm_put(m.count, &m.counter, 8) == DSM_OK, "put count");
        EXPECT(dsm_alloc_on(0, sizeof m, &mg) == DSM_OK, "alloc meta");
        EXPECT(dsm_root_set("meta", mg) == DSM_OK, "root meta");
        settle();
        dsm_barrier(); // every list built: usage is final
        record_usage(&m);
        EXPECT(dsm_put(mg, &m, sizeof m) == DSM_OK, "put meta");
    } else {
        settle();
        dsm_barrier();
    }
    EXPECT(dsm_checkpoint() == DSM_OK, "checkpoint");
    return finish("build");
}

/* On every segment: a fresh block written, read back and freed. */
static void churn(void)
{
    for (int s = 0; s < dsm_nsegments(); s++) {
        dsm_gptr_t g;
        unsigned char out[200], in[200];
        for (int j = 0; j < 200; j++) {
            out[j] = pattern((uint64_t)s, (uint64_t)dsm_rank(), (uint64_t)j);
        }
        int rc = dsm_alloc_on(s, sizeof out, &g);
        EXPECT(rc == DSM_OK && dsm_gptr_rank(g) == s, "alloc on segment %d: %s", s,
               dsm_strerror(rc));
        if (rc != DSM_OK) {
            continue;
        }
        EXPECT(dsm_put(g, out, sizeof out) == DSM_OK, "put on segment %d", s);
        EXPECT(dsm_get(in, g, sizeof in) == DSM_OK && memcmp(in, out, sizeof in) == 0,
               "read back on segment %d", s);
        EXPECT(dsm_free(g) == DSM_OK, "free on segment %d", s);
    }
}

/* Balanced allocation takes every segment, the hosted ones too (with more segments than
 * ranks some of 48 blocks per rank must land there); the blocks are usable and freed. */
static void balanced(void)
{
    enum { K = 48 };
    dsm_gptr_t g[K];
    int hosted = 0, all = 0;
    for (int k = 0; k < K; k++) {
        int rc = dsm_alloc_balanced(4096, &g[k]);
        EXPECT(rc == DSM_OK, "alloc_balanced: %s", dsm_strerror(rc));
        if (rc != DSM_OK) {
            g[k] = DSM_GPTR_NULL;
            continue;
        }
        hosted += dsm_gptr_rank(g[k]) >= dsm_nranks();
        uint64_t v = (uint64_t)k, back = 0;
        EXPECT(dsm_put(g[k], &v, 8) == DSM_OK && dsm_get(&back, g[k], 8) == DSM_OK && back == v,
               "balanced block %d", k);
    }
    MPI_Allreduce(&hosted, &all, 1, MPI_INT, MPI_SUM, dsm_comm());
    EXPECT(dsm_nsegments() == dsm_nranks() || all > 0,
           "no balanced block of %d x %d landed on the %d hosted segments", dsm_nranks(), K,
           dsm_nsegments() - dsm_nranks());
    for (int k = 0; k < K; k++) {
        if (!dsm_gptr_is_null(g[k])) {
            EXPECT(dsm_free(g[k]) == DSM_OK, "free balanced block %d", k);
        }
    }
}

/* Placement sees the running ranks: keyed blocks land on their own segments. */
static void place(void)
{
    for (uint64_t k = 0; k < 32; k++) {
        int r = -1;
        dsm_gptr_t g;
        EXPECT(dsm_place(&k, sizeof k, &r) == DSM_OK && r >= 0 && r < dsm_nranks(),
               "dsm_place gave %d of %d ranks", r, dsm_nranks());
        int rc = dsm_alloc_keyed(&k, sizeof k, 64, &g);
        EXPECT(rc == DSM_OK && dsm_gptr_rank(g) == r, "alloc_keyed: %s", dsm_strerror(rc));
        if (rc == DSM_OK) {
            dsm_free(g);
        }
    }
}

static void check_usage(const struct meta *m)
{
    for (int s = 0; s < (int)m->nseg; s++) {
        dsm_usage_t u;
        EXPECT(dsm_usage(s, &u) == DSM_OK, "usage %d", s);
        EXPECT(u.in_use == m->usage[s].in_use && u.blocks == m->usage[s].blocks,
               "segment %d: in use %" PRIu64 " bytes in %" PRIu64 " blocks, checkpoint had %" PRIu64
               " in %" PRIu64,
               s, u.in_use, u.blocks, m->usage[s].in_use, m->usage[s].blocks);
    }
}

static void bump(const struct meta *m)
{
    for (int k = 0; k < 10; k++) {
        uint64_t c = 0;
        EXPECT(dsm_mutex_lock(m->mutex) == DSM_OK, "lock");
        dsm_get(&c, m->count, 8);
        c++;
        dsm_put(m->count, &c, 8);
        EXPECT(dsm_mutex_unlock(m->mutex) == DSM_OK, "unlock");
    }
}

static int verify(void)
{
    int n = dsm_nranks();
    EXPECT(dsm_restarted(NULL), "not restarted");
    dsm_gptr_t mg = DSM_GPTR_NULL;
    struct meta m = {0};
    EXPECT(dsm_root_get("meta", &mg) == DSM_OK && dsm_get(&m, mg, sizeof m) == DSM_OK, "meta");
    int want = (int)m.nseg > n ? (int)m.nseg : n;
    EXPECT(dsm_nsegments() == want, "%d segments, want %d", dsm_nsegments(), want);
    protect(true, (int)m.writers);
    for (uint64_t l = (uint64_t)dsm_rank(); l < LISTS; l += (uint64_t)n) {
        walk_list(l);
    }
    check_usage(&m);
    uint64_t c = 0;
    EXPECT(dsm_get(&c, m.count, 8) == DSM_OK && c == m.counter, "counter %" PRIu64 " want %" PRIu64,
           c, m.counter);
    dsm_barrier(); // every check of the restored state done before anything changes
    churn();
    place();
    balanced();
    bump(&m);
    dsm_barrier();
    EXPECT(dsm_get(&c, m.count, 8) == DSM_OK && c == m.counter + 10 * (uint64_t)n,
           "counter %" PRIu64 " after %d x 10 increments from %" PRIu64, c, n, m.counter);
    settle();
    dsm_barrier();
    if (dsm_rank() == 0) {
        m.counter = c;
        m.writers = (uint64_t)n;
        record_usage(&m);
        EXPECT(dsm_put(mg, &m, sizeof m) == DSM_OK, "put meta");
    }
    EXPECT(dsm_checkpoint() == DSM_OK, "checkpoint");
    return finish("verify");
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "build") != 0 && strcmp(argv[1], "verify") != 0)) {
        fprintf(stderr, "usage: regroup build|verify\n");
        return 2;
    }
    int rc = dsm_init(&argc, &argv);
    if (rc != DSM_OK) {
        fprintf(stderr, "regroup: dsm_init: %s\n", dsm_strerror(rc));
        return 1;
    }
    return strcmp(argv[1], "build") == 0 ? build() : verify();
}
