/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * memsim: the memory-management scenario, checked end to end.
 *
 *   dsmrun -n 4 apps/memsim [--threads T] [--ops N] [--max-block B] [--fail-rank R]
 *                           [--no-failure] [--seed S] [--help]
 *
 * On every rank T threads allocate and free blocks: locally (dsm_alloc), on a chosen
 * rank (dsm_alloc_on, one-sided), on the least-loaded rank (dsm_alloc_balanced) and by
 * key (dsm_alloc_keyed); they fill each block with a pattern naming (rank, thread,
 * serial), verify blocks at random, and free at random, also blocks that live on other
 * ranks. Each thread keeps books: what it holds, where, and how big.
 *
 * Midway every thread stops; the job checkpoints (with partner replicas), a node failure
 * is simulated (dsm_simulate_failure wipes one rank's segment) and recovered from the
 * partner's replica (dsm_recover); then every block of every thread is verified, the
 * wiped rank's included: nothing written before the checkpoint may be lost. The threads
 * then carry on. At the end the books and the heaps must agree exactly, rank by rank
 * (live blocks per rank from dsm_usage equal the blocks the books place there), and
 * after freeing everything every heap is empty again. A table of per-node memory use is
 * printed.
 *
 * Exit status: 0 when every check held, 1 otherwise, 2 for bad arguments.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpidsm.h"

struct opts {
    long threads, ops, max_block, fail_rank, seed;
    int failure;
};

struct block {
    dsm_gptr_t g;
    uint32_t size, serial;
};

struct worker {
    int id, me, n;
    const struct opts *o;
    struct block *held;
    long nheld, cap, serial;
    uint64_t state;
    long allocs, frees, checks, errors, nomem;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= UINT64_C(0x7fb5d329728ea185);
    x ^= x >> 27;
    x *= UINT64_C(0x81dadef4bc2dd44d);
    return x ^ (x >> 33);
}

static uint64_t next(uint64_t *s)
{
    return mix(*s += UINT64_C(0x9e3779b97f4a7c15));
}

/* The byte at i of a block owned by (rank, thread, serial). */
static unsigned char pat(int rank, int thread, uint32_t serial, size_t i)
{
    return (unsigned char)(mix(((uint64_t)rank << 40) ^ ((uint64_t)thread << 32) ^ serial) >>
                           (8 * (i % 8)));
}

static void usage(FILE *f)
{
    fprintf(f, "usage: memsim [--threads T] [--ops N] [--max-block B] [--fail-rank R]\n"
               "              [--no-failure] [--seed S]\n"
               "  --threads    threads per rank (default 3)\n"
               "  --ops        operations per thread in each half (default 2000)\n"
               "  --max-block  largest block in bytes (default 4096)\n"
               "  --fail-rank  the rank whose node failure is simulated (default: the last)\n"
               "  --no-failure skip the simulated failure\n"
               "Sets DSM_THREADS=multiple and DSM_CKPT_REPLICAS=1 unless given. Run under "
               "mpi-launch/dsmrun.\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){3, 2000, 4096, -1, 1, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *end = NULL;
        long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
        bool good = end && *end == '\0' && end != argv[i + 1];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            return 1;
        } else if (!strcmp(a, "--no-failure")) {
            o->failure = 0;
            continue;
        } else if (good && !strcmp(a, "--threads") && v >= 1 && v <= 64) {
            o->threads = v;
        } else if (good && !strcmp(a, "--ops") && v >= 0) {
            o->ops = v;
        } else if (good && !strcmp(a, "--max-block") && v >= 1 && v <= (1 << 24)) {
            o->max_block = v;
        } else if (good && !strcmp(a, "--fail-rank") && v >= 0) {
            o->fail_rank = v;
        } else if (good && !strcmp(a, "--seed") && v >= 0) {
            o->seed = v;
        } else {
            fprintf(stderr, "memsim: bad or incomplete argument '%s'\n", a);
            return 2;
        }
        i++;
    }
    return 0;
}

static void hold(struct worker *w, dsm_gptr_t g, uint32_t size, uint32_t serial)
{
    if (w->nheld == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->held = realloc(w->held, sizeof *w->held * (size_t)w->cap);
    }
    w->held[w->nheld++] = (struct block){g, size, serial};
}

static int verify(struct worker *w, const struct block *b, unsigned char *buf)
{
    if (dsm_get(buf, b->g, b->size) != DSM_OK) {
        return -1;
    }
    for (size_t i = 0; i < b->size; i++) {
        if (buf[i] != pat(w->me, w->id, b->serial, i)) {
            char s[32];
            fprintf(stderr, "memsim: rank %d thread %d: block %s (serial %u) byte %zu is wrong\n",
                    w->me, w->id, dsm_gptr_str(b->g, s, sizeof s), b->serial, i);
            return -1;
        }
    }
    w->checks++;
    return 0;
}

/* Allocate one block by one of the four placements, fill it, keep it in the books. */
static void do_alloc(struct worker *w, unsigned char *buf)
{
    uint32_t size = 1 + (uint32_t)(next(&w->state) % (uint64_t)w->o->max_block);
    uint32_t serial = (uint32_t)++w->serial;
    uint64_t key = ((uint64_t)w->me << 48) ^ ((uint64_t)w->id << 32) ^ serial;
    dsm_gptr_t g;
    int rc;
    switch (next(&w->state) % 4) {
    case 0:
        rc = dsm_alloc(size, &g);
        break;
    case 1:
        rc = dsm_alloc_on((int)(next(&w->state) % (uint64_t)w->n), size, &g);
        break;
    case 2:
        rc = dsm_alloc_balanced(size, &g);
        break;
    default:
        rc = dsm_alloc_keyed(&key, sizeof key, size, &g);
        break;
    }
    if (rc == DSM_ERR_NOMEM) {
        w->nomem++; // a full heap is an answer, not an error
        return;
    }
    for (size_t i = 0; i < size; i++) {
        buf[i] = pat(w->me, w->id, serial, i);
    }
    if (rc != DSM_OK || dsm_put(g, buf, size) != DSM_OK) {
        fprintf(stderr, "memsim: rank %d thread %d: %s\n", w->me, w->id, dsm_last_error());
        w->errors++;
        return;
    }
    hold(w, g, size, serial);
    w->allocs++;
}

static void do_free(struct worker *w, unsigned char *buf)
{
    long k = (long)(next(&w->state) % (uint64_t)w->nheld);
    w->errors += verify(w, &w->held[k], buf) != 0;
    if (dsm_free(w->held[k].g) != DSM_OK) {
        fprintf(stderr, "memsim: rank %d thread %d: %s\n", w->me, w->id, dsm_last_error());
        w->errors++;
    }
    w->held[k] = w->held[--w->nheld];
    w->frees++;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    unsigned char *buf = malloc((size_t)w->o->max_block);
    for (long i = 0; i < w->o->ops; i++) {
        uint64_t r = next(&w->state) % 10;
        if (w->nheld == 0 || r < 5) {
            do_alloc(w, buf);
        } else if (r < 8) {
            do_free(w, buf);
        } else {
            long k = (long)(next(&w->state) % (uint64_t)w->nheld);
            w->errors += verify(w, &w->held[k], buf) != 0;
        }
    }
    free(buf);
    return NULL;
}

static void run_threads(struct worker *ws, long t)
{
    pthread_t th[64];
    for (long i = 0; i < t; i++) {
        pthread_create(&th[i], NULL, work, &ws[i]);
    }
    for (long i = 0; i < t; i++) {
        pthread_join(th[i], NULL);
    }
}

static long verify_all(struct worker *ws, long t, long max_block)
{
    unsigned char *buf = malloc((size_t)max_block);
    long bad = 0;
    for (long i = 0; i < t; i++) {
        for (long k = 0; k < ws[i].nheld; k++) {
            bad += verify(&ws[i], &ws[i].held[k], buf) != 0;
        }
    }
    free(buf);
    return bad;
}

/* Books against heaps: the blocks the books place on each rank, summed over all ranks'
 * threads, must equal that rank's live blocks. Prints the per-node table. */
static int reconcile(struct worker *ws, long t, int me, int n)
{
    long long *mine = calloc((size_t)n, sizeof(long long)), *all = calloc((size_t)n, 8);
    for (long i = 0; i < t; i++) {
        for (long k = 0; k < ws[i].nheld; k++) {
            mine[dsm_gptr_rank(ws[i].held[k].g)]++;
        }
    }
    MPI_Allreduce(mine, all, n, MPI_LONG_LONG, MPI_SUM, dsm_comm());
    dsm_topo_t topo;
    int mynode = dsm_topology(&topo) == DSM_OK ? topo.node : -1;
    int *nodes = calloc((size_t)n, sizeof(int));
    MPI_Allgather(&mynode, 1, MPI_INT, nodes, 1, MPI_INT, dsm_comm());
    int ok = 1;
    if (me == 0) {
        printf("%5s %5s %10s %12s %12s %12s %10s\n", "rank", "node", "blocks", "in_use_B", "free_B",
               "largest_B", "books");
    }
    for (int r = 0; r < n; r++) {
        dsm_usage_t u;
        if (dsm_usage(r, &u) != DSM_OK) {
            ok = 0;
            continue;
        }
        // Besides the books' blocks, each rank holds nothing: memsim allocates nothing else.
        ok &= (long long)u.blocks == all[r];
        if (me == 0) {
            printf("%5d %5d %10" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %10lld%s\n", r,
                   nodes[r], u.blocks, u.in_use, u.free, u.largest_free, all[r],
                   (long long)u.blocks == all[r] ? "" : "  MISMATCH");
        }
    }
    free(mine);
    free(all);
    free(nodes);
    return ok;
}

static int all_ok(int ok)
{
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, dsm_comm());
    return all;
}

/* Checkpoint, wipe one rank as a node loss would, recover, check every block. */
static int failure_drill(struct worker *ws, const struct opts *o, int me, int n)
{
    int victim = o->fail_rank < 0 ? n - 1 : (int)(o->fail_rank % n);
    if (dsm_checkpoint() != DSM_OK || dsm_simulate_failure(victim) != DSM_OK ||
        dsm_recover() != DSM_OK) {
        fprintf(stderr, "memsim: rank %d: failure drill: %s\n", me, dsm_last_error());
        return all_ok(0);
    }
    long bad = verify_all(ws, o->threads, o->max_block);
    int ok = all_ok(bad == 0);
    if (me == 0) {
        printf("memsim: node of rank %d failed and was recovered from its replica: %s\n", victim,
               ok ? "every block intact" : "BLOCKS LOST OR DAMAGED");
    }
    return ok;
}

int main(int argc, char **argv)
{
    struct opts o;
    int p = parse(argc, argv, &o);
    if (p) {
        usage(p == 1 ? stdout : stderr);
        return p == 1 ? 0 : 2;
    }
    setenv("DSM_THREADS", "multiple", 0);
    setenv("DSM_CKPT_REPLICAS", "1", 0);
    setenv("DSM_CKPT_DIR", "/tmp/dsm-memsim-ckpt", 0);
    if (dsm_init(&argc, &argv) != DSM_OK) {
        fprintf(stderr, "memsim: dsm_init failed: %s\n", dsm_last_error());
        return 1;
    }
    int me = dsm_rank(), n = dsm_nranks(), ok = 1;
    struct worker *ws = calloc((size_t)o.threads, sizeof *ws);
    for (long i = 0; i < o.threads; i++) {
        ws[i] = (struct worker){.id = (int)i, .me = me, .n = n, .o = &o};
        ws[i].state = mix((uint64_t)o.seed * 7919 + (uint64_t)me * 131 + (uint64_t)i);
    }
    run_threads(ws, o.threads);
    dsm_barrier();
    if (o.failure) {
        ok &= failure_drill(ws, &o, me, n);
    }
    run_threads(ws, o.threads);
    dsm_barrier();
    ok &= all_ok(verify_all(ws, o.threads, o.max_block) == 0);
    ok &= all_ok(reconcile(ws, o.threads, me, n));
    long tot[5] = {0};
    for (long i = 0; i < o.threads; i++) {
        tot[0] += ws[i].allocs, tot[1] += ws[i].frees, tot[2] += ws[i].checks;
        tot[3] += ws[i].errors, tot[4] += ws[i].nomem;
        while (ws[i].nheld > 0) { // free everything, from whichever rank holds it
            ok &= dsm_free(ws[i].held[--ws[i].nheld].g) == DSM_OK;
        }
        free(ws[i].held);
    }
    dsm_barrier();
    dsm_usage_t u;
    ok &= dsm_usage(me, &u) == DSM_OK && u.blocks == 0 && u.in_use == 0;
    long all[5];
    MPI_Allreduce(tot, all, 5, MPI_LONG, MPI_SUM, dsm_comm());
    ok = all_ok(ok && all[3] == 0);
    if (me == 0) {
        printf("memsim: %ld allocs, %ld frees, %ld verified blocks, %ld full-heap refusals, "
               "%ld errors; heaps empty after freeing: %s\n",
               all[0], all[1], all[2], all[4], all[3], ok ? "yes" : "NO");
        printf("memsim: %s\n", ok ? "books and heaps agree" : "CHECKS FAILED");
    }
    free(ws);
    dsm_finalize();
    return ok ? 0 : 1;
}
