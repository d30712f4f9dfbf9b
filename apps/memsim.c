/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * memsim: the memory-management scenario, checked end to end.
 *
 *   dsmrun -n 4 apps/memsim [--threads T] [--ops N] [--max-block B] [--fail-rank R]
 *                           [--no-failure] [--ckpt-every K] [--seed S] [--help]
 *
 * T workers per rank allocate and free blocks: locally (dsm_alloc), on a chosen segment
 * (dsm_alloc_on, one-sided), on the least-loaded one (dsm_alloc_balanced) and by key
 * (dsm_alloc_keyed); they fill each block with a pattern naming (worker, serial), verify
 * blocks at random, and free at random, also blocks that live on other ranks. Each
 * worker keeps books: what it holds, where, and how big.
 *
 * Midway every worker stops; the job checkpoints (with partner replicas), a node failure
 * is simulated (dsm_simulate_failure wipes one rank's segment) and recovered from the
 * partner's replica (dsm_recover); then every block of every worker is verified, the
 * wiped rank's included: nothing written before the checkpoint may be lost. The workers
 * then carry on. At the end the books and the heaps must agree exactly, segment by
 * segment (live blocks from dsm_usage equal the blocks the books place there), and after
 * freeing everything every heap is empty again. A table of per-node memory use is
 * printed.
 *
 * Restartable: the books live in global memory (a symmetric block, worker (s, t)'s in
 * segment s), so with --ckpt-every K the job checkpoints every K operations per worker
 * and a relaunch (DSM_RESTART) resumes from the last one, also on another rank count:
 * the N x T workers of the run that began stay the workers, and rank r runs those of
 * the segments it holds (s % ranks == r). The books then balance against the restored
 * heaps as they would have without the failure. The simulated node failure is skipped
 * when ranks host other ranks' segments (dsm_simulate_failure wipes a rank's own).
 *
 * Exit status: 0 when every check held, 1 otherwise, 2 for bad arguments.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpidsm.h"

#define MEMSIM_MAGIC UINT64_C(0x6d656d73696d0002)
#define MAX_WORKERS 256 // per rank, after a restart on fewer ranks too

struct opts {
    long threads, ops, max_block, fail_rank, seed, ckpt_every;
    int failure;
};

/* The job's description, in a block bound to the root "memsim". */
struct meta {
    uint64_t magic, nseg, threads, ops, max_block, seed, cap, stride;
    dsm_gptr_t books; // symmetric: worker (s, t)'s books at (s, offset + t * stride)
};

struct block {
    dsm_gptr_t g;
    uint32_t size, serial;
};

/* A worker's books, in global memory: its counters, then held[cap]. */
struct books {
    uint64_t state, done, nheld, serial;
    uint64_t allocs, frees, checks, errors, nomem;
    struct block held[];
};

struct worker {
    int seg, id; // segment of the rank that began the job, thread there
    int nseg;    // segments of this run: targets of dsm_alloc_on
    const struct meta *m;
    struct books *b;
    uint64_t until; // run to this many operations
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

/* The byte at i of a block owned by (segment, thread, serial). */
static unsigned char pat(int seg, int thread, uint32_t serial, size_t i)
{
    return (unsigned char)(mix(((uint64_t)seg << 40) ^ ((uint64_t)thread << 32) ^ serial) >>
                           (8 * (i % 8)));
}

static void usage(FILE *f)
{
    fprintf(f, "usage: memsim [--threads T] [--ops N] [--max-block B] [--fail-rank R]\n"
               "              [--no-failure] [--ckpt-every K] [--seed S]\n"
               "  --threads    threads per rank (default 3)\n"
               "  --ops        operations per thread in each half (default 2000)\n"
               "  --max-block  largest block in bytes (default 4096)\n"
               "  --fail-rank  the rank whose node failure is simulated (default: the last)\n"
               "  --no-failure skip the simulated failure\n"
               "  --ckpt-every checkpoint every K operations per thread (default 0: never); a\n"
               "               relaunch resumes from the last one, on any rank count\n"
               "Sets DSM_THREADS=multiple and DSM_CKPT_REPLICAS=1 unless given. Run under "
               "mpi-launch/dsmrun.\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){3, 2000, 4096, -1, 1, 0, 1};
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
        } else if (good && !strcmp(a, "--ops") && v >= 0 && v <= (1L << 24)) {
            o->ops = v;
        } else if (good && !strcmp(a, "--max-block") && v >= 1 && v <= (1 << 24)) {
            o->max_block = v;
        } else if (good && !strcmp(a, "--fail-rank") && v >= 0) {
            o->fail_rank = v;
        } else if (good && !strcmp(a, "--seed") && v >= 0) {
            o->seed = v;
        } else if (good && !strcmp(a, "--ckpt-every") && v >= 0) {
            o->ckpt_every = v;
        } else {
            fprintf(stderr, "memsim: bad or incomplete argument '%s'\n", a);
            return 2;
        }
        i++;
    }
    return 0;
}

static int verify(struct worker *w, const struct block *b, unsigned char *buf)
{
    if (dsm_get(buf, b->g, b->size) != DSM_OK) {
        return -1;
    }
    for (size_t i = 0; i < b->size; i++) {
        if (buf[i] != pat(w->seg, w->id, b->serial, i)) {
            char s[32];
            fprintf(stderr, "memsim: worker %d.%d: block %s (serial %u) byte %zu is wrong\n",
                    w->seg, w->id, dsm_gptr_str(b->g, s, sizeof s), b->serial, i);
            return -1;
        }
    }
    w->b->checks++;
    return 0;
}

/* Allocate one block by one of the four placements, fill it, keep it in the books. */
static void do_alloc(struct worker *w, unsigned char *buf)
{
    struct books *b = w->b;
    uint32_t size = 1 + (uint32_t)(next(&b->state) % w->m->max_block);
    uint32_t serial = (uint32_t)++b->serial;
    uint64_t key = ((uint64_t)w->seg << 48) ^ ((uint64_t)w->id << 32) ^ serial;
    dsm_gptr_t g;
    int rc;
    switch (next(&b->state) % 4) {
    case 0:
        rc = dsm_alloc(size, &g);
        break;
    case 1:
        rc = dsm_alloc_on((int)(next(&b->state) % (uint64_t)w->nseg), size, &g);
        break;
    case 2:
        rc = dsm_alloc_balanced(size, &g);
        break;
    default:
        rc = dsm_alloc_keyed(&key, sizeof key, size, &g);
        break;
    }
    if (rc == DSM_ERR_NOMEM) {
        b->nomem++; // a full heap is an answer, not an error
        return;
    }
    for (size_t i = 0; i < size; i++) {
        buf[i] = pat(w->seg, w->id, serial, i);
    }
    if (rc != DSM_OK || dsm_put(g, buf, size) != DSM_OK) {
        fprintf(stderr, "memsim: worker %d.%d: %s\n", w->seg, w->id, dsm_last_error());
        b->errors++;
        return;
    }
    b->held[b->nheld++] = (struct block){g, size, serial};
    b->allocs++;
}

static void do_free(struct worker *w, unsigned char *buf)
{
    struct books *b = w->b;
    uint64_t k = next(&b->state) % b->nheld;
    b->errors += verify(w, &b->held[k], buf) != 0;
    if (dsm_free(b->held[k].g) != DSM_OK) {
        fprintf(stderr, "memsim: worker %d.%d: %s\n", w->seg, w->id, dsm_last_error());
        b->errors++;
    }
    b->held[k] = b->held[--b->nheld];
    b->frees++;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct books *b = w->b;
    unsigned char *buf = malloc(w->m->max_block);
    for (; b->done < w->until; b->done++) {
        uint64_t r = next(&b->state) % 10;
        if (b->nheld == 0 || (r < 5 && b->nheld < w->m->cap)) {
            do_alloc(w, buf);
        } else if (r < 8 || b->nheld == w->m->cap) {
            do_free(w, buf);
        } else {
            uint64_t k = next(&b->state) % b->nheld;
            b->errors += verify(w, &b->held[k], buf) != 0;
        }
    }
    free(buf);
    return NULL;
}

static void run_workers(struct worker *ws, int nw, uint64_t until)
{
    pthread_t th[MAX_WORKERS];
    for (int i = 0; i < nw; i++) {
        ws[i].until = until;
        pthread_create(&th[i], NULL, work, &ws[i]);
    }
    for (int i = 0; i < nw; i++) {
        pthread_join(th[i], NULL);
    }
}

static long verify_all(struct worker *ws, int nw)
{
    unsigned char *buf = malloc(nw > 0 ? ws[0].m->max_block : 1);
    long bad = 0;
    for (int i = 0; i < nw; i++) {
        for (uint64_t k = 0; k < ws[i].b->nheld; k++) {
            bad += verify(&ws[i], &ws[i].b->held[k], buf) != 0;
        }
    }
    free(buf);
    return bad;
}

static int all_ok(int ok)
{
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, dsm_comm());
    return all;
}

/* The blocks memsim keeps besides the books' own: a books block in each segment of the
 * run that began, and the meta block in segment 0. */
static long long kept(const struct meta *m, int s)
{
    return ((uint64_t)s < m->nseg) + (s == 0);
}

/* Books against heaps: the blocks the books place in each segment, summed over all
 * workers, must equal that segment's live blocks. Prints the per-node table. */
static int reconcile(struct worker *ws, int nw, const struct meta *m, int me, int n)
{
    int nseg = dsm_nsegments();
    long long *mine = calloc((size_t)nseg, sizeof(long long)), *all = calloc((size_t)nseg, 8);
    for (int i = 0; i < nw; i++) {
        for (uint64_t k = 0; k < ws[i].b->nheld; k++) {
            mine[dsm_gptr_rank(ws[i].b->held[k].g)]++;
        }
    }
    MPI_Allreduce(mine, all, nseg, MPI_LONG_LONG, MPI_SUM, dsm_comm());
    dsm_topo_t topo;
    int mynode = dsm_topology(&topo) == DSM_OK ? topo.node : -1;
    int *nodes = calloc((size_t)n, sizeof(int));
    MPI_Allgather(&mynode, 1, MPI_INT, nodes, 1, MPI_INT, dsm_comm());
    int ok = 1;
    if (me == 0) {
        printf("%5s %5s %5s %10s %12s %12s %12s %10s\n", "seg", "rank", "node", "blocks",
               "in_use_B", "free_B", "largest_B", "books");
    }
    for (int s = 0; s < nseg; s++) {
        dsm_usage_t u;
        if (dsm_usage(s, &u) != DSM_OK) {
            ok = 0;
            continue;
        }
        long long want = all[s] + kept(m, s);
        ok &= (long long)u.blocks == want;
        if (me == 0) {
            printf("%5d %5d %5d %10" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %10lld%s\n",
                   s, s % n, nodes[s % n], u.blocks, u.in_use, u.free, u.largest_free, want,
                   (long long)u.blocks == want ? "" : "  MISMATCH");
        }
    }
    free(mine);
    free(all);
    free(nodes);
    return ok;
}

/* Checkpoint, wipe one rank as a node loss would, recover, check every block. */
static int failure_drill(struct worker *ws, int nw, const struct opts *o, int me, int n)
{
    if (dsm_nsegments() != n) {
        if (me == 0) {
            printf("memsim: simulated node failure skipped: ranks host other segments\n");
        }
        return 1;
    }
    int victim = o->fail_rank < 0 ? n - 1 : (int)(o->fail_rank % n);
    if (dsm_checkpoint() != DSM_OK || dsm_simulate_failure(victim) != DSM_OK ||
        dsm_recover() != DSM_OK) {
        fprintf(stderr, "memsim: rank %d: failure drill: %s\n", me, dsm_last_error());
        return all_ok(0);
    }
    long bad = verify_all(ws, nw);
    int ok = all_ok(bad == 0);
    if (me == 0) {
        printf("memsim: node of rank %d failed and was recovered from its replica: %s\n", victim,
               ok ? "every block intact" : "BLOCKS LOST OR DAMAGED");
    }
    return ok;
}

#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) != DSM_OK) {                                                                    \
            fprintf(stderr, "memsim: rank %d: %s: %s\n", dsm_rank(), #call, dsm_last_error());     \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

/* The books of a new job, or those a restart restored; *start is the operations every
 * worker has done. */
static int setup(struct meta *m, const struct opts *o, uint64_t *start)
{
    int me = dsm_rank(), n = dsm_nranks();
    uint64_t epoch = 0;
    dsm_gptr_t mg;
    if (dsm_restarted(&epoch) && dsm_root_get("memsim", &mg) == DSM_OK) {
        CHECK(dsm_get(m, mg, sizeof *m));
        if (m->magic != MEMSIM_MAGIC || m->threads != (uint64_t)o->threads ||
            m->ops != (uint64_t)o->ops || m->max_block != (uint64_t)o->max_block ||
            m->seed != (uint64_t)o->seed || m->nseg < 1 || m->nseg > (uint64_t)dsm_nsegments()) {
            fprintf(stderr, "memsim: rank %d: the restored job has other parameters\n", me);
            return -1;
        }
        dsm_gptr_t b0;
        CHECK(dsm_gptr_make(0, dsm_gptr_offset(m->books), &b0));
        uint64_t head[2]; // worker 0.0's {state, done}; every worker has done as many
        CHECK(dsm_get(head, b0, sizeof head));
        *start = head[1];
        if (me == 0) {
            printf("memsim: restarted from epoch %" PRIu64 " after %" PRIu64
                   " operations per worker, %" PRIu64 " segments on %d ranks\n",
                   epoch, *start, m->nseg, n);
        }
        return 0;
    }
    uint64_t cap = 2 * (uint64_t)o->ops;
    uint64_t stride = (sizeof(struct books) + cap * sizeof(struct block) + 63) & ~UINT64_C(63);
    *m = (struct meta){MEMSIM_MAGIC,
                       (uint64_t)n,
                       (uint64_t)o->threads,
                       (uint64_t)o->ops,
                       (uint64_t)o->max_block,
                       (uint64_t)o->seed,
                       cap,
                       stride,
                       DSM_GPTR_NULL};
    CHECK(dsm_alloc_all(stride * (uint64_t)o->threads, &m->books));
    for (long t = 0; t < o->threads; t++) {
        dsm_gptr_t g;
        void *p;
        CHECK(dsm_gptr_make(me, dsm_gptr_offset(m->books) + (uint64_t)t * stride, &g));
        CHECK(dsm_gptr_local(g, &p));
        memset(p, 0, sizeof(struct books));
        ((struct books *)p)->state =
            mix((uint64_t)o->seed * 7919 + (uint64_t)me * 131 + (uint64_t)t);
    }
    if (me == 0) {
        CHECK(dsm_alloc(sizeof *m, &mg));
        CHECK(dsm_put(mg, m, sizeof *m));
        CHECK(dsm_root_set("memsim", mg));
    }
    *start = 0;
    return dsm_barrier() == DSM_OK ? 0 : -1;
}

/* This rank's workers: those of the segments it holds. */
static struct worker *workers(const struct meta *m, int *nw)
{
    int me = dsm_rank(), n = dsm_nranks(), k = 0;
    int count = (int)(((int)m->nseg - me + n - 1) / n) * (int)m->threads;
    if (count > MAX_WORKERS) {
        fprintf(stderr, "memsim: rank %d: %d workers are more than %d\n", me, count, MAX_WORKERS);
        return NULL;
    }
    struct worker *ws = calloc((size_t)(count > 0 ? count : 1), sizeof *ws);
    for (int s = me; s < (int)m->nseg; s += n) {
        for (int t = 0; t < (int)m->threads; t++) {
            dsm_gptr_t g;
            void *p = NULL;
            if (dsm_gptr_make(s, dsm_gptr_offset(m->books) + (uint64_t)t * m->stride, &g) !=
                    DSM_OK ||
                dsm_gptr_local(g, &p) != DSM_OK) {
                fprintf(stderr, "memsim: rank %d: the books of worker %d.%d are not local: %s\n",
                        me, s, t, dsm_last_error());
                free(ws);
                return NULL;
            }
            ws[k++] = (struct worker){s, t, dsm_nsegments(), m, p, 0};
        }
    }
    *nw = k;
    return ws;
}

/* Run every worker to op `until`, stopping at each checkpoint and at the midpoint. */
static int run_to(struct worker *ws, int nw, const struct opts *o, uint64_t *at, uint64_t until)
{
    while (*at < until) {
        uint64_t stop = until;
        if (o->ckpt_every > 0) {
            uint64_t c = (*at / (uint64_t)o->ckpt_every + 1) * (uint64_t)o->ckpt_every;
            stop = c < stop ? c : stop;
        }
        run_workers(ws, nw, stop);
        *at = stop;
        CHECK(dsm_barrier());
        if (o->ckpt_every > 0 && stop % (uint64_t)o->ckpt_every == 0) {
            CHECK(dsm_checkpoint());
        }
    }
    return 0;
}

static int finish(struct worker *ws, int nw, const struct meta *m, int me, int n, int ok)
{
    ok &= all_ok(verify_all(ws, nw) == 0);
    ok &= all_ok(reconcile(ws, nw, m, me, n));
    long tot[5] = {0};
    for (int i = 0; i < nw; i++) {
        struct books *b = ws[i].b;
        tot[0] += (long)b->allocs, tot[1] += (long)b->frees, tot[2] += (long)b->checks;
        tot[3] += (long)b->errors, tot[4] += (long)b->nomem;
        while (b->nheld > 0) { // free everything, from whichever rank holds it
            ok &= dsm_free(b->held[--b->nheld].g) == DSM_OK;
        }
    }
    CHECK(dsm_barrier());
    for (int s = me; s < (int)m->nseg; s += n) { // the books blocks this rank holds
        dsm_gptr_t g;
        ok &= dsm_gptr_make(s, dsm_gptr_offset(m->books), &g) == DSM_OK && dsm_free(g) == DSM_OK;
    }
    dsm_gptr_t mg;
    if (me == 0) {
        ok &= dsm_root_get("memsim", &mg) == DSM_OK &&
              dsm_root_set("memsim", DSM_GPTR_NULL) == DSM_OK && dsm_free(mg) == DSM_OK;
    }
    CHECK(dsm_barrier());
    for (int s = me; s < dsm_nsegments(); s += n) {
        dsm_usage_t u;
        ok &= dsm_usage(s, &u) == DSM_OK && u.blocks == 0 && u.in_use == 0;
    }
    long all[5];
    MPI_Allreduce(tot, all, 5, MPI_LONG, MPI_SUM, dsm_comm());
    ok = all_ok(ok && all[3] == 0);
    if (me == 0) {
        printf("memsim: %ld allocs, %ld frees, %ld verified blocks, %ld full-heap refusals, "
               "%ld errors; heaps empty after freeing: %s\n",
               all[0], all[1], all[2], all[4], all[3], ok ? "yes" : "NO");
        printf("memsim: %s\n", ok ? "books and heaps agree" : "CHECKS FAILED");
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
    int me = dsm_rank(), n = dsm_nranks(), ok = 1, nw = 0;
    struct meta m;
    uint64_t at = 0;
    struct worker *ws = setup(&m, &o, &at) == 0 ? workers(&m, &nw) : NULL;
    if (!all_ok(ws != NULL)) {
        free(ws);
        dsm_finalize();
        return 1;
    }
    int failed = run_to(ws, nw, &o, &at, (uint64_t)o.ops);
    if (o.failure && at == (uint64_t)o.ops && !failed) {
        ok &= failure_drill(ws, nw, &o, me, n);
    }
    failed |= run_to(ws, nw, &o, &at, 2 * (uint64_t)o.ops);
    ok = finish(ws, nw, &m, me, n, ok && !failed);
    free(ws);
    dsm_finalize();
    return ok ? 0 : 1;
}
