/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The sync suite: three mutexes over the same MPI library in the same run.
 *   dsm_mutex  mpidsm's MCS queue lock (dsm_mutex_lock / dsm_mutex_unlock)
 *   win_lock   MPI_Win_lock(MPI_LOCK_EXCLUSIVE) on rank 0 of a raw 8-byte window, with
 *              one no-op MPI_Fetch_and_op inside so the lock is really taken (MPICH
 *              may defer an empty epoch's lock), then MPI_Win_unlock
 *   cas_spin   a naive spin lock: dsm_atomic_cas_u64(0 -> rank + 1) until it succeeds,
 *              dsm_atomic_store_u64(0) to release; no back-off, no queue
 * Uncontended: rank 0 alone takes and releases a lock on itself and one on rank 1.
 * Contended: the first k ranks (k = 2, 4, all) take and release one lock on rank 0 for
 * a fixed time; throughput is acquisitions per second over all of them, fairness the
 * max/min acquisitions per rank. The critical sections are empty. Rounds alternate the
 * three locks and the median is reported.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define USER0 65536u

enum kind { K_DSM, K_WIN, K_CAS, NKINDS };
static const char *const kind_names[] = {"dsm_mutex", "win_lock", "cas_spin"};

struct lk {
    dsm_gptr_t mutex[2]; // on rank 0 and rank 1
    dsm_gptr_t cas[2];
    MPI_Win win;
    int me, n;
};

static void lock(struct lk *l, enum kind k, int on)
{
    uint64_t old = 0, dummy = 0;
    switch (k) {
    case K_DSM:
        bench_check(dsm_mutex_lock(l->mutex[on]), "dsm_mutex_lock");
        break;
    case K_WIN:
        MPI_Win_lock(MPI_LOCK_EXCLUSIVE, on, 0, l->win);
        MPI_Fetch_and_op(&dummy, &old, MPI_UINT64_T, on, 0, MPI_NO_OP, l->win);
        MPI_Win_flush(on, l->win);
        break;
    case K_CAS:
        do {
            bench_check(dsm_atomic_cas_u64(l->cas[on], 0, (uint64_t)l->me + 1, &old), "cas");
        } while (old != 0);
        break;
    default:
        break;
    }
}

static void unlock(struct lk *l, enum kind k, int on)
{
    switch (k) {
    case K_DSM:
        bench_check(dsm_mutex_unlock(l->mutex[on]), "dsm_mutex_unlock");
        break;
    case K_WIN:
        MPI_Win_unlock(on, l->win);
        break;
    case K_CAS:
        bench_check(dsm_atomic_store_u64(l->cas[on], 0), "atomic_store");
        break;
    default:
        break;
    }
}

/* Microseconds per lock+unlock by rank 0 alone on a lock of rank `on`. */
static double uncontended(struct lk *l, enum kind k, int on, long iters)
{
    double t = 0;
    MPI_Barrier(dsm_comm());
    if (l->me == 0) {
        double t0 = bench_now();
        for (long i = 0; i < iters; i++) {
            lock(l, k, on);
            unlock(l, k, on);
        }
        t = (bench_now() - t0) / (double)iters * 1e6;
    }
    MPI_Barrier(dsm_comm());
    return t;
}

struct result {
    double rate;     // acquisitions per second, all ranks
    double fairness; // max/min acquisitions per rank
};

/* The first nr ranks contend for secs seconds on rank 0's lock. */
static struct result contended(struct lk *l, enum kind k, int nr, double secs)
{
    long long mine = 0, sum = 0, mx = 0, mn = 0, mine_min = LLONG_MAX;
    double el = 0, elmax = 0;
    MPI_Barrier(dsm_comm());
    if (l->me < nr) {
        double t0 = bench_now();
        do {
            lock(l, k, 0);
            unlock(l, k, 0);
            mine++;
        } while ((el = bench_now() - t0) < secs);
        mine_min = mine;
    }
    MPI_Allreduce(&mine, &sum, 1, MPI_LONG_LONG, MPI_SUM, dsm_comm());
    MPI_Allreduce(&mine, &mx, 1, MPI_LONG_LONG, MPI_MAX, dsm_comm());
    MPI_Allreduce(&mine_min, &mn, 1, MPI_LONG_LONG, MPI_MIN, dsm_comm());
    MPI_Allreduce(&el, &elmax, 1, MPI_DOUBLE, MPI_MAX, dsm_comm());
    return (struct result){(double)sum / elmax, mn > 0 ? (double)mx / (double)mn : 0};
}

static void setup(struct lk *l)
{
    l->me = dsm_rank();
    l->n = dsm_nranks();
    uint64_t *base = NULL;
    MPI_Win_allocate(8, 8, MPI_INFO_NULL, dsm_comm(), &base, &l->win);
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, l->me, 0, l->win);
    *base = 0;
    MPI_Win_unlock(l->me, l->win);
    for (int r = 0; r < 2; r++) {
        int on = r < l->n ? r : 0;
        bench_check(dsm_gptr_make(on, USER0, &l->mutex[r]), "gptr");
        bench_check(dsm_gptr_make(on, USER0 + 64, &l->cas[r]), "gptr");
        if (l->me == on) {
            bench_check(dsm_mutex_init(l->mutex[r]), "dsm_mutex_init");
            bench_check(dsm_atomic_store_u64(l->cas[r], 0), "atomic_store");
        }
    }
    bench_check(dsm_barrier(), "dsm_barrier");
}

static void print_uncontended(struct lk *l, const struct bench_opts *o)
{
    long iters = o->iters ? o->iters : (o->quick ? 200 : 20000);
    int rounds = o->rounds > 0 ? o->rounds : 1;
    double v[NKINDS][2][64];
    for (int r = 0; r < rounds && r < 64; r++) {
        for (int k = 0; k < NKINDS; k++) {
            for (int on = 0; on < 2; on++) {
                v[k][on][r] = uncontended(l, (enum kind)k, on < l->n ? on : 0, iters);
            }
        }
    }
    if (l->me == 0) {
        printf("# sync: uncontended lock+unlock by rank 0, median of %d rounds of %ld\n", rounds,
               iters);
        printf("%-10s %14s %14s\n", "lock", "own_rank_us", "rank1_us");
        bench_note("%s, %d ranks", bench_mpi_name(), l->n);
        for (int k = 0; k < NKINDS; k++) {
            double own = bench_median(v[k][0], rounds);
            printf("%-10s %14.3f %14.3f\n", kind_names[k], own, bench_median(v[k][1], rounds));
            bench_data(kind_names[k], 1, 1 / own); // one rank alone: 1/us = M acquisitions/s
        }
    }
}

static void print_contended(struct lk *l, const struct bench_opts *o)
{
    double secs = o->quick ? 0.02 : 0.5;
    int rounds = o->rounds > 0 ? o->rounds : 1, counts[3] = {2, 4, l->n}, nc = 0;
    for (int i = 0; i < 3; i++) { // distinct rank counts the job has, in order
        if (counts[i] <= l->n && (nc == 0 || counts[i] > counts[nc - 1])) {
            counts[nc++] = counts[i];
        }
    }
    if (l->me == 0) {
        printf("# sync: contended, k ranks on one lock of rank 0 for %.2f s, median of %d\n", secs,
               rounds);
        printf("%-10s %5s %12s %10s\n", "lock", "ranks", "Macq/s", "max/min");
    }
    for (int c = 0; c < nc; c++) {
        double rate[NKINDS][64], fair[NKINDS][64];
        for (int r = 0; r < rounds && r < 64; r++) {
            for (int k = 0; k < NKINDS; k++) {
                struct result res = contended(l, (enum kind)k, counts[c], secs);
                rate[k][r] = res.rate;
                fair[k][r] = res.fairness;
            }
        }
        for (int k = 0; k < NKINDS && l->me == 0; k++) {
            double macq = bench_median(rate[k], rounds) / 1e6;
            printf("%-10s %5d %12.3f %10.2f\n", kind_names[k], counts[c], macq,
                   bench_median(fair[k], rounds));
            bench_data(kind_names[k], counts[c], macq);
        }
    }
}

int bench_sync(const struct bench_opts *o)
{
    struct lk l;
    setup(&l);
    print_uncontended(&l, o);
    if (l.n >= 2) {
        print_contended(&l, o);
    }
    bench_check(dsm_barrier(), "dsm_barrier");
    MPI_Win_free(&l.win);
    return 0;
}
