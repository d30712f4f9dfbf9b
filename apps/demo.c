/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * dsm-demo: a tour of the global address space that checks what it shows.
 *
 *   mpi-launch/dsmrun -n 4 apps/dsm-demo [--rounds N]
 *
 * 1. Every rank writes a message into its right neighbour's segment (dsm_put) and
 *    reads the one its left neighbour left (dsm_get).
 * 2. All ranks hammer one counter on rank 0 with remote fetch-add; the total is exact.
 * 3. All ranks push a node onto one lock-free stack whose head is a global pointer
 *    on the last rank, with compare-and-swap; the stack then holds every rank once.
 * Exit status 0 when every check held, 1 otherwise (2 for bad arguments).
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpidsm.h"

static uint64_t base; /* offset of the demo's symmetric block (dsm_alloc_all) */
#define CHECK(call)                                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != DSM_OK) {                                                                       \
            fprintf(stderr, "dsm-demo: %s: %s\n", #call, dsm_last_error());                        \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static dsm_gptr_t at(int rank, uint64_t off)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    dsm_gptr_make(rank, base + off, &g);
    return g;
}

static int ring(int me, int n, int *ok)
{
    char msg[64], got[64] = "";
    snprintf(msg, sizeof msg, "hello from rank %d", me);
    CHECK(dsm_put(at((me + 1) % n, 0), msg, sizeof msg));
    CHECK(dsm_barrier());
    CHECK(dsm_get(got, at(me, 0), sizeof got));
    char want[64];
    snprintf(want, sizeof want, "hello from rank %d", (me + n - 1) % n);
    *ok &= strcmp(got, want) == 0;
    printf("rank %d: found \"%s\" in its segment\n", me, got);
    return 0;
}

static int counter(int me, int n, long rounds, int *ok)
{
    dsm_gptr_t c = at(0, 4096);
    if (me == 0) {
        CHECK(dsm_atomic_store_i64(c, 0));
    }
    CHECK(dsm_barrier());
    for (long i = 0; i < rounds; i++) {
        CHECK(dsm_atomic_add_i64(c, 1));
    }
    CHECK(dsm_barrier());
    int64_t total = 0;
    CHECK(dsm_atomic_load_i64(c, &total));
    *ok &= total == rounds * n;
    if (me == 0) {
        printf("counter on rank 0: %lld after %d ranks x %ld fetch-adds\n", (long long)total, n,
               rounds);
    }
    return 0;
}

static int stack(int me, int n, int *ok)
{
    dsm_gptr_t head = at(n - 1, 8192), node = at(me, 12288), seen = DSM_GPTR_NULL, old;
    if (me == 0) {
        CHECK(dsm_atomic_store_gptr(head, DSM_GPTR_NULL));
    }
    CHECK(dsm_barrier());
    for (;;) { // link to the head we saw, then swing the head to us if it is unchanged
        CHECK(dsm_put(node, &seen, sizeof seen));
        CHECK(dsm_atomic_cas_gptr(head, seen, node, &old));
        if (dsm_gptr_equal(old, seen)) {
            break;
        }
        seen = old;
    }
    CHECK(dsm_barrier());
    if (me == 0) {
        int count = 0;
        char s[32];
        dsm_gptr_t cur;
        CHECK(dsm_atomic_load_gptr(head, &cur));
        printf("lock-free stack on rank %d:", n - 1);
        while (!dsm_gptr_is_null(cur) && count <= n) {
            printf(" %s", dsm_gptr_str(cur, s, sizeof s));
            CHECK(dsm_get(&cur, cur, sizeof cur));
            count++;
        }
        printf("  (%d nodes)\n", count);
        *ok &= count == n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    long rounds = 1000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc && atol(argv[i + 1]) > 0) {
            rounds = atol(argv[++i]);
        } else {
            fprintf(stderr, "usage: dsm-demo [--rounds N]   (run under mpi-launch/dsmrun)\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (dsm_init(&argc, &argv) != DSM_OK) {
        fprintf(stderr, "dsm-demo: dsm_init failed: %s\n", dsm_last_error());
        return 1;
    }
    int me = dsm_rank(), n = dsm_nranks(), ok = 1;
    dsm_gptr_t block; // 16 KiB at the same offset on every rank: messages, counter, stack
    if (dsm_alloc_all(16384, &block) != DSM_OK) {
        fprintf(stderr, "dsm-demo: dsm_alloc_all: %s\n", dsm_last_error());
        dsm_finalize();
        return 1;
    }
    base = dsm_gptr_offset(block);
    if (ring(me, n, &ok) || counter(me, n, rounds, &ok) || stack(me, n, &ok)) {
        ok = 0;
    }
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, dsm_comm());
    if (me == 0) {
        printf("dsm-demo: %s\n", all ? "all checks passed" : "CHECKS FAILED");
    }
    dsm_free_all(block);
    dsm_finalize();
    return all ? 0 : 1;
}
