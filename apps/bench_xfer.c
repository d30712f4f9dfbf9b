/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The xfer suite: the transfers of issue 17 against what a program would write
 * without them, in the same run, rank 0 -> rank 1 (the other ranks wait).
 *
 * put-with-signal: dsm_put_signal (data, then an ADD on a signal word, both complete
 * at the target) against the same thing by hand: raw MPI (MPI_Put, MPI_Win_flush,
 * MPI_Fetch_and_op(MPI_SUM), MPI_Win_flush on a window of mpidsm's communicator) and
 * mpidsm's own dsm_put + dsm_atomic_add_u64.
 *
 * strided patches: an R x C patch of doubles out of a local R x C matrix into a remote
 * matrix with twice the row length, by dsm_put_strided against raw MPI with derived
 * datatypes (two hvectors, built and committed once outside the loop, as a program
 * would) and against one dsm_put per row. Each completes at the target (flush).
 *
 * Rounds alternate the variants and the median is reported (see bench_rma.c).
 * "ratio" is the mpidsm call / raw MPI.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct xctx {
    MPI_Win win;         // raw window, same displacements as mpidsm's block
    size_t rows, cols;   // the strided table's current patch
    MPI_Datatype lt, rt; // its raw local and remote types
    char *buf;           // local buffer
    dsm_gptr_t target;   // rank 1's block
    size_t off;          // its offset
    size_t max;          // bytes of the block
};

/* One variant: iters operations of len bytes, returns seconds. */
typedef double (*xrun)(struct xctx *, size_t, long);

static dsm_gptr_t at(const struct xctx *c, size_t off)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    bench_check(dsm_gptr_make(1, c->off + off, &g), "dsm_gptr_make");
    return g;
}

static double sig_raw(struct xctx *c, size_t len, long iters)
{
    uint64_t one = 1, old = 0;
    MPI_Aint d = (MPI_Aint)c->off;
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        MPI_Put(c->buf, (int)len, MPI_BYTE, 1, d + 64, (int)len, MPI_BYTE, c->win);
        MPI_Win_flush(1, c->win);
        MPI_Fetch_and_op(&one, &old, MPI_UINT64_T, 1, d, MPI_SUM, c->win);
        MPI_Win_flush(1, c->win);
    }
    return bench_now() - t0;
}

static double sig_by_hand(struct xctx *c, size_t len, long iters)
{
    dsm_gptr_t data = at(c, 64), sig = at(c, 0);
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        bench_check(dsm_put(data, c->buf, len), "dsm_put");
        bench_check(dsm_atomic_add_u64(sig, 1), "dsm_atomic_add_u64");
    }
    return bench_now() - t0;
}

static double sig_dsm(struct xctx *c, size_t len, long iters)
{
    dsm_gptr_t data = at(c, 64), sig = at(c, 0);
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        bench_check(dsm_put_signal(data, c->buf, len, sig, 1, DSM_SIGNAL_ADD), "dsm_put_signal");
    }
    return bench_now() - t0;
}

static double patch_raw(struct xctx *c, size_t len, long iters)
{
    (void)len;
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        MPI_Put(c->buf, 1, c->lt, 1, (MPI_Aint)c->off, 1, c->rt, c->win);
        MPI_Win_flush(1, c->win);
    }
    return bench_now() - t0;
}

static double patch_dsm(struct xctx *c, size_t len, long iters)
{
    (void)len;
    dsm_stride_t p = {sizeof(double), {c->cols, c->rows}, {1, 2 * c->cols}, {1, c->cols}};
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        bench_check(dsm_put_strided(c->target, c->buf, &p), "dsm_put_strided");
    }
    return bench_now() - t0;
}

static double patch_rows(struct xctx *c, size_t len, long iters)
{
    (void)len;
    size_t row = c->cols * sizeof(double);
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        for (size_t r = 0; r < c->rows; r++) {
            bench_check(dsm_put(at(c, 2 * row * r), c->buf + row * r, row), "dsm_put");
        }
    }
    return bench_now() - t0;
}

static long iters_for(const struct bench_opts *o, size_t len)
{
    long base = o->iters ? o->iters : (o->quick ? 200 : 10000);
    long it = len <= 8192 ? base : (long)(base * 8192.0 / (double)len);
    return it < 10 ? 10 : it;
}

/* Median seconds per op of each of k variants (rounds rotate their order). */
static void measure(struct xctx *c, const struct bench_opts *o, const xrun *run, int k, size_t len,
                    double *us)
{
    long iters = iters_for(o, len);
    double t[4][64];
    int rounds = o->rounds > 64 ? 64 : o->rounds;
    for (int r = 0; r < rounds; r++) {
        MPI_Barrier(dsm_comm());
        if (dsm_rank() != 0) {
            continue;
        }
        for (int j = 0; j < k; j++) {
            run[j](c, len, iters / 10 + 1); // warm up
        }
        for (int j = 0; j < k; j++) {
            int v = (r + j) % k;
            t[v][r] = run[v](c, len, iters);
        }
    }
    MPI_Barrier(dsm_comm());
    for (int j = 0; dsm_rank() == 0 && j < k; j++) {
        us[j] = bench_median(t[j], rounds) / iters * 1e6;
    }
}

static void signal_table(struct xctx *c, const struct bench_opts *o)
{
    const xrun run[3] = {sig_raw, sig_by_hand, sig_dsm};
    if (dsm_rank() == 0) {
        printf("# put-with-signal: us per operation (data + signal complete at the target)\n");
        printf("%-12s %9s %12s %12s %12s %7s\n", "op", "bytes", "raw_put+fl+at", "dsm_put+atom",
               "dsm_put_sig", "ratio");
    }
    for (size_t len = 8; len <= c->max - 64; len *= 8) {
        double us[3] = {0, 0, 0};
        measure(c, o, run, 3, len, us);
        if (dsm_rank() == 0) {
            printf("%-12s %9zu %12.3f %12.3f %12.3f %7.3f\n", "put_signal", len, us[0], us[1],
                   us[2], us[2] / us[0]);
            fflush(stdout);
        }
    }
}

/* The raw side types of an R x C patch of doubles (remote rows 2C apart). */
static void raw_types(struct xctx *c)
{
    MPI_Datatype row;
    MPI_Type_contiguous((int)c->cols, MPI_DOUBLE, &row);
    MPI_Type_create_hvector((int)c->rows, 1, (MPI_Aint)(c->cols * sizeof(double)), row, &c->lt);
    MPI_Type_create_hvector((int)c->rows, 1, (MPI_Aint)(2 * c->cols * sizeof(double)), row, &c->rt);
    MPI_Type_commit(&c->lt);
    MPI_Type_commit(&c->rt);
    MPI_Type_free(&row);
}

static void strided_table(struct xctx *c, const struct bench_opts *o)
{
    const xrun run[3] = {patch_raw, patch_dsm, patch_rows};
    const size_t shapes[][2] = {{64, 8}, {64, 64}, {128, 128}};
    if (dsm_rank() == 0) {
        printf("# strided patch of doubles (rows x cols), remote rows twice as long: us per "
               "patch\n");
        printf("%-12s %9s %12s %12s %12s %7s\n", "patch", "bytes", "raw_MPI_type", "dsm_strided",
               "dsm_put/row", "ratio");
    }
    for (size_t k = 0; k < 3; k++) {
        c->rows = shapes[k][0];
        c->cols = shapes[k][1];
        size_t bytes = c->rows * c->cols * sizeof(double);
        if (2 * bytes > c->max || (o->quick && k > 1)) {
            break;
        }
        raw_types(c);
        double us[3] = {0, 0, 0};
        measure(c, o, run, 3, bytes, us);
        MPI_Type_free(&c->lt);
        MPI_Type_free(&c->rt);
        if (dsm_rank() == 0) {
            char name[32];
            snprintf(name, sizeof name, "%zux%zu", c->rows, c->cols);
            printf("%-12s %9zu %12.3f %12.3f %12.3f %7.3f\n", name, bytes, us[0], us[1], us[2],
                   us[1] / us[0]);
            fflush(stdout);
        }
    }
}

int bench_xfer(const struct bench_opts *o)
{
    if (dsm_nranks() < 2) {
        if (dsm_rank() == 0) {
            fprintf(stderr, "dsm-bench xfer: needs at least 2 ranks\n");
        }
        return 2;
    }
    struct xctx c;
    dsm_topo_t t;
    bench_check(dsm_topology(&t), "dsm_topology");
    c.max = (o->quick ? 65536 : 262144) + 64;
    dsm_gptr_t block;
    bench_check(dsm_alloc_all(c.max, &block), "dsm_alloc_all");
    bench_check(dsm_barrier(), "dsm_barrier");
    c.off = dsm_gptr_offset(block);
    c.target = at(&c, 0);
    char *base;
    if (MPI_Win_allocate((MPI_Aint)(c.off + c.max), 1, MPI_INFO_NULL, dsm_comm(), &base, &c.win) !=
        MPI_SUCCESS) {
        fprintf(stderr, "dsm-bench: MPI_Win_allocate failed\n");
        return 1;
    }
    memset(base, 0, c.off + c.max);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, c.win);
    MPI_Barrier(dsm_comm());
    c.buf = calloc(1, c.max);
    if (dsm_rank() == 0) {
        printf("# xfer: rank 0 -> rank 1, median of %d rounds; data path: %s\n", o->rounds,
               t.direct_ranks ? "direct load/store (DSM_DIRECT)" : "MPI one-sided calls");
    }
    signal_table(&c, o);
    strided_table(&c, o);
    MPI_Win_unlock_all(c.win);
    MPI_Win_free(&c.win);
    free(c.buf);
    bench_check(dsm_free_all(block), "dsm_free_all");
    return 0;
}
