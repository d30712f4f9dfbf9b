/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The progress suite: the busy-target probe of issue 14. Rank 0 is the target; the last
 * rank (on another node when the job spans nodes) times 8-byte dsm_atomic_fetch_add_u64
 * on rank 0's memory, one at a time, for a fixed time while rank 0
 *  - idles: waits in dsm_barrier (inside MPI, so MPI progresses), then
 *  - computes: a loop without any MPI or mpidsm call for the same time.
 * Each round does both; the samples of all rounds are pooled and the median, p99 and
 * max of each phase are reported, with the busy/idle p99 ratio. Without passive
 * progress on a network path the first busy fetch-add waits for the whole computation.
 * Rank 0 also reports how fast it computed (loop iterations per second): the share
 * of its core a progress thread takes. Other ranks wait in the barrier. The window's path and
 * DSM_PROGRESS are printed with the figures.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define MAX_SAMPLES 1000000

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Time fetch-adds on g for secs seconds, appending latencies (seconds) to v. */
static int probe(dsm_gptr_t g, double secs, double *v, int n)
{
    uint64_t old = 0;
    double end = bench_now() + secs;
    for (double t = bench_now(); t < end && n < MAX_SAMPLES; t = bench_now()) {
        bench_check(dsm_atomic_fetch_add_u64(g, 1, &old), "dsm_atomic_fetch_add_u64");
        v[n++] = bench_now() - t;
    }
    return n;
}

/* The target's computation: no MPI or mpidsm call for secs seconds. Returns the loop
 * iterations done: what a progress thread takes from the computation shows there. */
static double compute(double secs)
{
    volatile double x = 0;
    double end = bench_now() + secs, iters = 0;
    while (bench_now() < end) {
        for (int i = 0; i < 1000; i++) {
            x = x + 1.0;
        }
        iters += 1000;
    }
    return iters;
}

static void report(const char *phase, double *v, int n, double *p99)
{
    if (n == 0) {
        printf("  %-22s no samples\n", phase);
        *p99 = 0;
        return;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *p99 = v[(size_t)((double)n * 0.99)];
    printf("  %-22s %9d %12.2f %12.2f %14.2f\n", phase, n, v[n / 2] * 1e6, *p99 * 1e6,
           v[n - 1] * 1e6);
}

int bench_progress(const struct bench_opts *o)
{
    int rank = dsm_rank(), n = dsm_nranks(), prober = n - 1;
    if (n < 2) {
        if (rank == 0) {
            printf("progress: needs 2 ranks or more\n");
        }
        return 0;
    }
    double secs = o->quick ? 0.2 : 1.0;
    int rounds = o->quick ? 1 : o->rounds;
    dsm_gptr_t g = DSM_GPTR_NULL;
    if (rank == 0) {
        bench_check(dsm_calloc(1, 8, &g), "dsm_calloc");
    }
    MPI_Bcast(&g, sizeof g, MPI_BYTE, 0, dsm_comm());
    double *idle = rank == prober ? malloc(MAX_SAMPLES * sizeof *idle) : NULL;
    double *busy = rank == prober ? malloc(MAX_SAMPLES * sizeof *busy) : NULL;
    if (rank == prober && (idle == NULL || busy == NULL)) {
        fprintf(stderr, "dsm-bench: no memory for samples\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int ni = 0, nb = 0;
    double work = 0;
    for (int r = 0; r < rounds; r++) {
        bench_check(dsm_barrier(), "dsm_barrier");
        if (rank == prober) {
            ni = probe(g, secs, idle, ni);
        }
        bench_check(dsm_barrier(), "dsm_barrier"); // the target idles in here
        if (rank == 0) {
            work += compute(secs);
        } else if (rank == prober) {
            nb = probe(g, secs, busy, nb);
        }
    }
    bench_check(dsm_barrier(), "dsm_barrier");
    MPI_Bcast(&work, 1, MPI_DOUBLE, 0, dsm_comm());
    if (rank == prober) {
        dsm_topo_t t;
        bench_check(dsm_topology(&t), "dsm_topology");
        const char *p = getenv("DSM_PROGRESS");
        printf("progress: 8-byte fetch-add from rank %d on rank 0 (%d node(s)), %d x %.1f s "
               "per phase, DSM_PROGRESS=%s\n",
               prober, t.nnodes, rounds, secs, p ? p : "auto (default)");
        printf("  %-22s %9s %12s %12s %14s\n", "target", "ops", "median us", "p99 us", "max us");
        double pi, pb;
        report("idle (in dsm_barrier)", idle, ni, &pi);
        report("busy (computing)", busy, nb, &pb);
        printf("  busy/idle p99 ratio %.2f; the target computed %.1f M iterations/s\n",
               pi > 0 ? pb / pi : 0.0, work / (rounds * secs) / 1e6);
        fflush(stdout);
    }
    free(idle);
    free(busy);
    bench_check(dsm_barrier(), "dsm_barrier");
    if (rank == 0) {
        bench_check(dsm_free(g), "dsm_free");
    }
    return 0;
}
