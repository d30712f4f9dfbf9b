/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The heap suite, each figure against its comparison in the same run:
 *  1. local dsm_alloc + dsm_free versus glibc malloc + free (rank 0, others wait), as
 *     immediate pairs and as batches of 1000 allocations then 1000 frees, on both
 *     sides each block's first word written after its allocation and read back and
 *     checked before its free (a block handed out twice fails the run), timed in
 *     thread CPU time;
 *  2. one-sided dsm_alloc_on / dsm_free of a block on rank 1 from rank 0 (latency, and
 *     RMA operations per call from dsm_stats when DSM_STATS=1), against one raw
 *     MPI_Compare_and_swap + flush round trip as the unit;
 *  3. contention and fairness on one heap: every rank allocating on rank 0 and freeing
 *     (throughput of the heap lock), then rank 0 allocating and freeing on its own
 *     heap in a loop (512 B: its lock, not its cache) while the others each make a
 *     fixed number of remote pairs on it
 *     (remote pairs completed per owner pair, and remote latency, under a busy owner);
 *  4. collective dsm_alloc_all + dsm_free_all versus MPI_Win_allocate + MPI_Win_free of
 *     the same size on all ranks.
 * Rounds alternate the two sides and the median is reported.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define BATCH 1000

/* Thread CPU seconds: the local comparison is timed in CPU time, so the other jobs of a
 * shared machine (wall time there is mostly waiting for a core) do not decide it. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The work check: each block's first word holds its (round, index) stamp from its
 * allocation to its free; a wrong word means two live blocks overlapped. */
static void stamp(void *p, long i, int k)
{
    *(volatile long *)p = i * BATCH + k; // volatile: the pair is never elided
}

static void unstamp(const void *p, long i, int k, const char *who)
{
    if (*(const volatile long *)p != i * BATCH + k) {
        fprintf(stderr, "dsm-bench heap: %s block %d of round %ld was overwritten\n", who, k, i);
        exit(1);
    }
}

static double t_malloc(size_t len, long iters, int batch)
{
    static void *p[BATCH];
    double t0 = cpu_now();
    for (long i = 0; i < iters; i += batch) {
        for (int k = 0; k < batch; k++) {
            p[k] = malloc(len);
            stamp(p[k], i, k);
        }
        for (int k = 0; k < batch; k++) {
            unstamp(p[k], i, k, "malloc");
            free(p[k]);
        }
    }
    return cpu_now() - t0;
}

static double t_dsm(size_t len, long iters, int batch)
{
    static dsm_gptr_t g[BATCH];
    static void *p[BATCH];
    double t0 = cpu_now();
    for (long i = 0; i < iters; i += batch) {
        for (int k = 0; k < batch; k++) {
            bench_check(dsm_alloc(len, &g[k]), "dsm_alloc");
            bench_check(dsm_gptr_local(g[k], &p[k]), "dsm_gptr_local");
            stamp(p[k], i, k);
        }
        for (int k = 0; k < batch; k++) {
            unstamp(p[k], i, k, "dsm_alloc");
            bench_check(dsm_free(g[k]), "dsm_free");
        }
    }
    return cpu_now() - t0;
}

static void local_line(const struct bench_opts *o, size_t len, int batch)
{
    long iters = o->iters ? o->iters : (o->quick ? 2000 : 200000);
    iters = (iters + batch - 1) / batch * batch;
    int rounds = o->rounds > 64 ? 64 : o->rounds;
    double a[64], b[64];
    for (int r = 0; r < rounds; r++) {
        t_malloc(len, iters / 10 + batch, batch); // warm both
        t_dsm(len, iters / 10 + batch, batch);
        if (r % 2) {
            a[r] = t_malloc(len, iters, batch);
            b[r] = t_dsm(len, iters, batch);
        } else {
            b[r] = t_dsm(len, iters, batch);
            a[r] = t_malloc(len, iters, batch);
        }
    }
    double tm = bench_median(a, rounds) / iters * 1e9, td = bench_median(b, rounds) / iters * 1e9;
    printf("%-22s %8zu %10.1f %10.1f %7.2f\n", batch == 1 ? "pair" : "batch of 1000", len, tm, td,
           td / tm);
    bench_data(batch == 1 ? "pair_malloc" : "batch_malloc", (double)len, tm);
    bench_data(batch == 1 ? "pair_dsm" : "batch_dsm", (double)len, td);
}

/* One raw compare-and-swap round trip to rank 1, the unit of remote cost. */
static double cas_unit(long iters)
{
    MPI_Win win;
    int64_t *base, one = 1, zero = 0, res;
    MPI_Win_allocate(64, 8, MPI_INFO_NULL, dsm_comm(), &base, &win);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
    double t0 = bench_now();
    for (long i = 0; i < iters && dsm_rank() == 0; i++) {
        MPI_Compare_and_swap(&one, &zero, &res, MPI_INT64_T, 1, 0, win);
        MPI_Win_flush(1, win);
    }
    double t = bench_now() - t0;
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
    return t / (double)iters;
}

static void remote_lines(const struct bench_opts *o)
{
    long iters = o->iters ? o->iters / 10 : (o->quick ? 256 : 2560);
    enum { K = 256 };
    dsm_gptr_t g[K];
    double ta = 0, tf = 0, unit = cas_unit(iters);
    dsm_stats_t s0, s1;
    if (dsm_rank() == 0) {
        bench_check(dsm_stats(&s0), "dsm_stats");
        for (long i = 0; i < iters; i += K) {
            double t0 = bench_now();
            for (int k = 0; k < K; k++) {
                bench_check(dsm_alloc_on(1, 64, &g[k]), "dsm_alloc_on");
            }
            double t1 = bench_now();
            for (int k = 0; k < K; k++) {
                bench_check(dsm_free(g[k]), "dsm_free");
            }
            ta += t1 - t0;
            tf += bench_now() - t1;
            if (i == 0) { // op counts from the first batch (stats count every op)
                bench_check(dsm_stats(&s1), "dsm_stats");
            }
        }
        long n = (iters + K - 1) / K * K;
        uint64_t ops = (s1.puts + s1.gets + s1.atomics) - (s0.puts + s0.gets + s0.atomics);
        printf("# remote (rank 0 -> rank 1, 64 B): one raw CAS+flush round trip = %.2f us\n",
               unit * 1e6);
        printf("%-22s %10.2f us %7.1f round trips", "dsm_alloc_on", ta / n * 1e6, ta / n / unit);
        printf("   RMA ops per alloc+free: %s%.1f\n", ops ? "" : "(DSM_STATS=1) ", (double)ops / K);
        printf("%-22s %10.2f us %7.1f round trips\n", "dsm_free (remote)", tf / n * 1e6,
               tf / n / unit);
    }
    MPI_Barrier(dsm_comm());
}

/* Every rank makes iters pairs dsm_alloc_on(0) + dsm_free: the heap lock's throughput
 * when all ranks want it. Returns 0, or 1 on rank 0 when fewer pairs were made. */
static int contended_line(const struct bench_opts *o)
{
    long iters = o->iters ? o->iters / 10 : (o->quick ? 200 : 2000), done = 0, all = 0;
    MPI_Barrier(dsm_comm());
    double t0 = bench_now();
    for (long i = 0; i < iters; i++, done++) {
        dsm_gptr_t g;
        bench_check(dsm_alloc_on(0, 64, &g), "dsm_alloc_on");
        bench_check(dsm_free(g), "dsm_free");
    }
    double t = bench_now() - t0, tmax = 0;
    MPI_Reduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, 0, dsm_comm());
    MPI_Reduce(&done, &all, 1, MPI_LONG, MPI_SUM, 0, dsm_comm());
    if (dsm_rank() == 0) {
        printf(
            "%-22s %10.2f us per pair  %8.0f pairs/s  (%ld pairs by %d ranks on rank 0's heap)\n",
            "contended alloc+free", tmax / (double)all * 1e6, (double)all / tmax, all,
            dsm_nranks());
    }
    return dsm_rank() == 0 && all != iters * dsm_nranks();
}

/* Rank 0 allocates and frees on its own heap until the others have each made iters
 * remote pairs on it (they count down a word on rank 0's heap). A fair heap lock lets
 * a remote pair through for every owner pair or so; the starving lock of issue 12 let
 * one through for hundreds or none. Returns 0, or 1 on rank 0 when the remote ranks made
 * fewer pairs than asked or the owner none. */
static int fairness_line(const struct bench_opts *o)
{
    long iters = o->iters ? o->iters / 100 : (o->quick ? 20 : 200), owner = 0, mine = 0, remote = 0;
    dsm_gptr_t left = DSM_GPTR_NULL;
    if (dsm_rank() == 0) {
        bench_check(dsm_calloc(1, 8, &left), "dsm_calloc");
        bench_check(dsm_atomic_store_i64(left, dsm_nranks() - 1), "dsm_atomic_store_i64");
    }
    MPI_Bcast(&left.bits, 1, MPI_UINT64_T, 0, dsm_comm());
    MPI_Barrier(dsm_comm());
    double t0 = bench_now(), lat = 0;
    if (dsm_rank() == 0) {
        for (int64_t n = 1; n > 0; owner++) {
            dsm_gptr_t g;
            // 512 B: above the owner's cache of small blocks, so each pair takes the lock
            bench_check(dsm_alloc(512, &g), "dsm_alloc");
            bench_check(dsm_free(g), "dsm_free");
            bench_check(dsm_atomic_load_i64(left, &n), "dsm_atomic_load_i64");
        }
    } else {
        for (; mine < iters; mine++) {
            dsm_gptr_t g;
            double t1 = bench_now();
            bench_check(dsm_alloc_on(0, 64, &g), "dsm_alloc_on");
            lat += bench_now() - t1;
            bench_check(dsm_free(g), "dsm_free");
        }
        bench_check(dsm_atomic_add_i64(left, -1), "dsm_atomic_add_i64");
    }
    double t = bench_now() - t0, lat_all = 0;
    MPI_Reduce(&mine, &remote, 1, MPI_LONG, MPI_SUM, 0, dsm_comm());
    MPI_Reduce(&lat, &lat_all, 1, MPI_DOUBLE, MPI_SUM, 0, dsm_comm());
    if (dsm_rank() == 0) {
        printf("%-22s %10.2f remote pairs per owner pair  (%ld remote by %d ranks, %ld owner, "
               "%.2f s); dsm_alloc_on %.2f us\n",
               "busy owner", (double)remote / (double)owner, remote, dsm_nranks() - 1, owner, t,
               lat_all / (double)remote * 1e6);
        bench_check(dsm_free(left), "dsm_free");
    }
    return dsm_rank() == 0 && (remote != iters * (dsm_nranks() - 1) || owner == 0);
}

static void collective_line(const struct bench_opts *o, size_t len)
{
    int rounds = o->rounds > 64 ? 64 : o->rounds, iters = o->quick ? 4 : 10;
    double a[64], b[64];
    for (int r = 0; r < rounds; r++) {
        MPI_Barrier(dsm_comm());
        double t0 = bench_now();
        for (int i = 0; i < iters; i++) {
            MPI_Win win;
            void *base;
            MPI_Win_allocate((MPI_Aint)len, 1, MPI_INFO_NULL, dsm_comm(), &base, &win);
            MPI_Win_free(&win);
        }
        MPI_Barrier(dsm_comm());
        double t1 = bench_now();
        for (int i = 0; i < iters; i++) {
            dsm_gptr_t g;
            bench_check(dsm_alloc_all(len, &g), "dsm_alloc_all");
            bench_check(dsm_free_all(g), "dsm_free_all");
        }
        MPI_Barrier(dsm_comm());
        a[r] = (t1 - t0) / iters;
        b[r] = (bench_now() - t1) / iters;
    }
    if (dsm_rank() == 0) {
        double tm = bench_median(a, rounds) * 1e6, td = bench_median(b, rounds) * 1e6;
        printf("%-22s %8zu %10.1f %10.1f %7.3f\n", "collective alloc+free", len, tm, td, td / tm);
        bench_data("coll_mpi", (double)len, tm);
        bench_data("coll_dsm", (double)len, td);
    }
}

int bench_heap(const struct bench_opts *o)
{
    if (dsm_nranks() < 2) {
        if (dsm_rank() == 0) {
            fprintf(stderr, "dsm-bench heap: needs at least 2 ranks\n");
        }
        return 2;
    }
    if (dsm_rank() == 0) {
        printf("# heap: local, median of %d rounds; CPU ns per alloc+free\n", o->rounds);
        bench_note("%s, %d ranks", bench_mpi_name(), dsm_nranks());
        printf("%-22s %8s %10s %10s %7s\n", "pattern", "bytes", "malloc_ns", "dsm_ns", "ratio");
        const size_t sizes[] = {16, 64, 256, 4096, 65536};
        for (int i = 0; i < 5; i++) {
            local_line(o, sizes[i], 1);
        }
        for (int i = 0; i < 5; i++) {
            local_line(o, sizes[i], BATCH);
        }
        fflush(stdout);
    }
    MPI_Barrier(dsm_comm());
    remote_lines(o);
    if (dsm_rank() == 0) {
        printf("# one heap, %d ranks: contention and fairness (rank 0's heap)\n", dsm_nranks());
    }
    int bad = contended_line(o) + fairness_line(o);
    if (dsm_rank() == 0) {
        printf("# collective, %d ranks; us per alloc+free\n", dsm_nranks());
        printf("%-22s %8s %10s %10s %7s\n", "call", "bytes", "MPI_Win_us", "dsm_us", "ratio");
    }
    collective_line(o, 4096);
    collective_line(o, (size_t)1 << 20);
    if (bad) {
        fprintf(stderr, "dsm-bench heap: a contention line made fewer operations than it counts\n");
    }
    return bad ? 1 : 0;
}
