/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * pipeline: a producer-consumer chain over all ranks, built on put-with-signal.
 *
 *   dsmrun -n 4 apps/pipeline [--items N] [--block N] [--depth N] [--help]
 *
 * Rank 0 produces N blocks of int64 values; every rank applies its own stage to each
 * block and passes it on to the next rank, and the last rank folds every block into a
 * checksum that it compares with the same chain computed serially.
 *
 * Each rank owns a ring of DEPTH slots that its upstream neighbour fills. A block goes
 * downstream with one dsm_put_signal(..., DSM_SIGNAL_ADD) that adds 1 to the
 * receiver's "filled" counter after the data has landed; the receiver waits for the
 * counter with dsm_signal_wait_until (on its own memory, without spinning a core),
 * processes the slot and returns it with a data-less put-with-signal that adds 1 to
 * the sender's "freed" counter. So there are no barriers and no polling of other
 * ranks' memory: the counters are the flow control.
 *
 * Exit status: 0 success and the checksum matched, 1 a failed check or library error,
 * 2 bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpidsm.h"

struct opts {
    long items, block, depth;
};

#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) != DSM_OK) {                                                                    \
            fprintf(stderr, "pipeline: %s failed: %s\n", #call, dsm_last_error());                 \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* Stage r's transformation of one value (wraps modulo 2^64 the same way everywhere). */
static int64_t stage(int r, int64_t x)
{
    return (int64_t)((uint64_t)x * 3u + (uint64_t)r * 7u + 1u);
}

static int64_t produce(long b, long i, long block)
{
    return (int64_t)(b * block + i);
}

static uint64_t fold(uint64_t sum, const int64_t *v, long k)
{
    for (long i = 0; i < k; i++) {
        sum = sum * 1099511628211u ^ (uint64_t)v[i]; // FNV-like: order matters
    }
    return sum;
}

/* The whole chain on one rank, as the reference. */
static uint64_t serial(const struct opts *o, int nranks)
{
    uint64_t sum = 14695981039346656037u;
    int64_t *v = malloc((size_t)o->block * sizeof *v);
    for (long b = 0; v && b < o->items; b++) {
        for (long i = 0; i < o->block; i++) {
            int64_t x = produce(b, i, o->block);
            for (int r = 0; r < nranks; r++) {
                x = stage(r, x);
            }
            v[i] = x;
        }
        sum = fold(sum, v, o->block);
    }
    free(v);
    return sum;
}

static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){1000, 256, 4};
    for (int i = 1; i < argc; i++) {
        long *dst = !strcmp(argv[i], "--items")   ? &o->items
                    : !strcmp(argv[i], "--block") ? &o->block
                    : !strcmp(argv[i], "--depth") ? &o->depth
                                                  : NULL;
        if (!strcmp(argv[i], "--help")) {
            printf("usage: pipeline [--items N] [--block N] [--depth N]\n");
            exit(0);
        }
        char *end = NULL;
        if (dst == NULL || i + 1 >= argc) {
            return 2;
        }
        *dst = strtol(argv[++i], &end, 10);
        if (*end != '\0' || *dst < 1 || *dst > 100000000) {
            return 2;
        }
    }
    return o->block * o->depth > 16 * 1024 * 1024 ? 2 : 0; // the ring must fit the heap
}

/* Layout of each rank's block (symmetric): [filled][freed][ring of depth*block]. */
struct ring {
    dsm_gptr_t base;
    int me, n;
};

static dsm_gptr_t word(const struct ring *R, int rank, uint64_t off)
{
    dsm_gptr_t g = R->base, r;
    dsm_gptr_make(rank, dsm_gptr_offset(g) + off, &r);
    return r;
}

static int run(const struct opts *o, struct ring *R, uint64_t *sum)
{
    const uint64_t FILLED = 0, FREED = 8, RING = 64;
    size_t bytes = (size_t)o->block * sizeof(int64_t);
    int64_t *v = malloc(bytes);
    if (v == NULL) {
        return 1;
    }
    *sum = 14695981039346656037u;
    for (long b = 0; b < o->items; b++) {
        uint64_t slot = RING + (uint64_t)(b % o->depth) * bytes;
        if (R->me == 0) {
            for (long i = 0; i < o->block; i++) {
                v[i] = produce(b, i, o->block);
            }
        } else { // take block b from upstream, then hand its slot back
            CHECK(dsm_signal_wait_until(word(R, R->me, FILLED), DSM_CMP_GE, (uint64_t)b + 1, NULL));
            CHECK(dsm_get(v, word(R, R->me, slot), bytes));
            CHECK(dsm_put_signal(word(R, R->me - 1, 0), NULL, 0, word(R, R->me - 1, FREED), 1,
                                 DSM_SIGNAL_ADD));
        }
        for (long i = 0; i < o->block; i++) {
            v[i] = stage(R->me, v[i]);
        }
        if (R->me == R->n - 1) {
            *sum = fold(*sum, v, o->block);
            continue;
        }
        // downstream has a free slot once it returned block b - depth
        if (b >= o->depth) {
            CHECK(dsm_signal_wait_until(word(R, R->me, FREED), DSM_CMP_GE,
                                        (uint64_t)(b - o->depth + 1), NULL));
        }
        CHECK(dsm_put_signal(word(R, R->me + 1, slot), v, bytes, word(R, R->me + 1, FILLED), 1,
                             DSM_SIGNAL_ADD));
    }
    free(v);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "pipeline: bad arguments (see --help)\n");
        return 2;
    }
    if (dsm_init(&argc, &argv) != DSM_OK) {
        fprintf(stderr, "pipeline: dsm_init failed: %s\n", dsm_last_error());
        return 1;
    }
    struct ring R = {DSM_GPTR_NULL, dsm_rank(), dsm_nranks()};
    size_t total = 64 + (size_t)o.depth * (size_t)o.block * sizeof(int64_t);
    CHECK(dsm_alloc_all(total, &R.base));
    void *local = NULL;
    CHECK(dsm_gptr_local(word(&R, R.me, 0), &local));
    memset(local, 0, 64); // the counters start at 0
    CHECK(dsm_barrier());
    double t0 = MPI_Wtime();
    uint64_t sum = 0;
    int rc = run(&o, &R, &sum);
    double t = MPI_Wtime() - t0;
    CHECK(dsm_barrier());
    if (rc == 0 && R.me == R.n - 1) {
        uint64_t want = serial(&o, R.n);
        printf("pipeline: %ld blocks of %ld values through %d stages in %.3f s "
               "(%.1f MB/s per link), checksum %s\n",
               o.items, o.block, R.n, t, o.items * o.block * 8.0 / t / 1e6,
               sum == want ? "matches the serial chain" : "DIFFERS from the serial chain");
        rc = sum == want ? 0 : 1;
    }
    int all = 0;
    MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, dsm_comm());
    CHECK(dsm_free_all(R.base));
    CHECK(dsm_finalize());
    return all;
}
