/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * dsm-bench repl: replicated objects (dsm_repl_*). For R = 1, 3, 5 copies (those the job
 * has ranks for): the latency of one 8-byte dsm_repl_write and dsm_repl_read from rank
 * 0, beside, in the same run, a plain 8-byte dsm_put + dsm_flush to each other rank (the
 * slowest of them: a write to R copies must reach the farthest one); and the write
 * throughput with every rank writing its own object at once. Every figure counts only
 * work that was checked: each object holds its writer's last value afterwards.
 * Needs DSM_REPL_SIZE (dsm-bench sets 16M when it is unset).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Microseconds per dsm_put + dsm_flush of 8 bytes to rank r (0: rank 0 itself). */
static double put_flush_us(dsm_gptr_t g, int r, long iters)
{
    uint64_t v = 0;
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        v = (uint64_t)i;
        bench_check(dsm_put(g, &v, sizeof v), "dsm_put");
        bench_check(dsm_flush(r), "dsm_flush");
    }
    return (bench_now() - t0) * 1e6 / (double)iters;
}

/* Rank 0: the slowest put+flush to any other rank (a block of 8 bytes on each). */
static double slowest_put(long iters)
{
    int n = dsm_nranks(), me = dsm_rank();
    dsm_gptr_t mine, *all = calloc((size_t)n, sizeof *all);
    bench_check(dsm_alloc(8, &mine), "dsm_alloc");
    MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, dsm_comm());
    double worst = 0;
    for (int r = 1; me == 0 && r < n; r++) {
        double us = put_flush_us(all[r], r, iters);
        worst = us > worst ? us : worst;
    }
    bench_check(dsm_barrier(), "dsm_barrier");
    bench_check(dsm_free(mine), "dsm_free");
    free(all);
    return n > 1 ? worst : put_flush_us(mine, 0, iters);
}

/* Rank 0: microseconds per 8-byte write and read of o; checks the last value. */
static void latency(dsm_repl_t o, long iters, double *w_us, double *r_us)
{
    uint64_t v = 0, got = 0;
    double t0 = bench_now();
    for (long i = 1; i <= iters; i++) {
        v = (uint64_t)i;
        bench_check(dsm_repl_write(o, 0, &v, sizeof v), "dsm_repl_write");
    }
    double t1 = bench_now();
    for (long i = 0; i < iters; i++) {
        bench_check(dsm_repl_read(o, 0, &got, sizeof got), "dsm_repl_read");
    }
    double t2 = bench_now();
    if (got != (uint64_t)iters) {
        fprintf(stderr, "dsm-bench repl: read %llu after writing %ld\n", (unsigned long long)got,
                iters);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    *w_us = (t1 - t0) * 1e6 / (double)iters;
    *r_us = (t2 - t1) * 1e6 / (double)iters;
}

/* All ranks write their own object for iters writes; writes per second of the job,
 * over the slowest rank's time, each object checked. */
static double throughput(dsm_repl_t o, long iters)
{
    bench_check(dsm_barrier(), "dsm_barrier");
    double t0 = bench_now();
    uint64_t v = 0;
    for (long i = 1; i <= iters; i++) {
        v = (uint64_t)i;
        bench_check(dsm_repl_write(o, 0, &v, sizeof v), "dsm_repl_write");
    }
    double secs = bench_now() - t0, slowest = 0;
    bench_check(dsm_repl_read(o, 0, &v, sizeof v), "dsm_repl_read");
    int ok = v == (uint64_t)iters, all = 0;
    MPI_Allreduce(&secs, &slowest, 1, MPI_DOUBLE, MPI_MAX, dsm_comm());
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, dsm_comm());
    if (!all) {
        fprintf(stderr, "dsm-bench repl: an object lost writes\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return (double)iters * dsm_nranks() / slowest;
}

int bench_repl(const struct bench_opts *o)
{
    long iters = o->iters ? o->iters : (o->quick ? 50 : 2000);
    int rounds = o->rounds > 0 && o->rounds < 64 ? o->rounds : 1, n = dsm_nranks();
    static const int copies[] = {1, 3, 5};
    double put[64];
    for (int r = 0; r < rounds; r++) {
        put[r] = slowest_put(iters);
    }
    double base = bench_median(put, rounds);
    dsm_topo_t t;
    bench_check(dsm_topology(&t), "dsm_topology");
    if (dsm_rank() == 0) {
        printf("# repl: 8-byte writes and reads from rank 0 (median of %d rounds of %ld), %d "
               "ranks on %d node(s), %s\n",
               rounds, iters, n, t.nnodes, bench_mpi_name());
        printf("# put+flush of 8 bytes to the slowest other rank: %.3f us\n", base);
        printf("%-7s %10s %10s %12s %16s\n", "copies", "write_us", "read_us", "write/put",
               "writes/s(all)");
        bench_note("%s, %d ranks, %d nodes", bench_mpi_name(), n, t.nnodes);
        bench_data("put+flush", 0, base);
    }
    for (size_t k = 0; k < sizeof copies / sizeof *copies && copies[k] <= n; k++) {
        char name[32];
        dsm_repl_t lat, mine = NULL;
        snprintf(name, sizeof name, "bench-lat-%d", copies[k]);
        bench_check(dsm_repl_alloc(name, 8, copies[k], &lat), "dsm_repl_alloc");
        double w[64], rd[64], tp[64];
        for (int r = 0; r < rounds; r++) {
            if (dsm_rank() == 0) {
                latency(lat, iters, &w[r], &rd[r]);
            }
            bench_check(dsm_barrier(), "dsm_barrier");
        }
        for (int q = 0; q < n; q++) { // one object per rank, collectively
            snprintf(name, sizeof name, "bench-tp-%d-%d", copies[k], q);
            dsm_repl_t x;
            bench_check(dsm_repl_alloc(name, 8, copies[k], &x), "dsm_repl_alloc");
            mine = q == dsm_rank() ? x : mine;
        }
        for (int r = 0; r < rounds; r++) {
            tp[r] = throughput(mine, iters / 4 > 0 ? iters / 4 : 1);
        }
        if (dsm_rank() == 0) {
            double wm = bench_median(w, rounds), rm = bench_median(rd, rounds);
            printf("%-7d %10.3f %10.3f %12.2f %16.0f\n", copies[k], wm, rm, wm / base,
                   bench_median(tp, rounds));
            bench_data("write", copies[k], wm);
            bench_data("read", copies[k], rm);
        }
    }
    bench_check(dsm_barrier(), "dsm_barrier");
    return 0;
}
