/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The rma suite: OSU-style latency loops from rank 0 to rank 1 (the other ranks wait):
 * each iteration is one operation completed at the target (raw: the MPI call plus
 * MPI_Win_flush; mpidsm: the blocking call, which does the same). The raw window is
 * made by MPI_Win_allocate on mpidsm's own communicator in a lock_all epoch, so both
 * run over the same MPI one-sided component. Rounds alternate raw and mpidsm and the
 * median of the rounds is reported, which keeps a noisy neighbour from favouring one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum op { OP_PUT, OP_GET, OP_FADD, OP_CAS };
static const char *const op_names[] = {"put", "get", "fetch-add", "cas"};

struct ctx {
    MPI_Win win;       // raw window
    char *buf;         // local buffer, max_size bytes
    dsm_gptr_t target; // rank 1's first user byte
    size_t user_off;   // its offset (raw uses the same displacement)
};

static double run_raw(struct ctx *c, enum op op, size_t len, long iters)
{
    int64_t one = 1, res = 0, cmp = 0;
    MPI_Aint disp = (MPI_Aint)c->user_off;
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        switch (op) {
        case OP_PUT:
            MPI_Put(c->buf, (int)len, MPI_BYTE, 1, disp, (int)len, MPI_BYTE, c->win);
            break;
        case OP_GET:
            MPI_Get(c->buf, (int)len, MPI_BYTE, 1, disp, (int)len, MPI_BYTE, c->win);
            break;
        case OP_FADD:
            MPI_Fetch_and_op(&one, &res, MPI_INT64_T, 1, disp, MPI_SUM, c->win);
            break;
        case OP_CAS:
            MPI_Compare_and_swap(&one, &cmp, &res, MPI_INT64_T, 1, disp, c->win);
            cmp = res;
            break;
        }
        MPI_Win_flush(1, c->win);
    }
    return bench_now() - t0;
}

static double run_dsm(struct ctx *c, enum op op, size_t len, long iters)
{
    int64_t res = 0, cmp = 0;
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        switch (op) {
        case OP_PUT:
            bench_check(dsm_put(c->target, c->buf, len), "dsm_put");
            break;
        case OP_GET:
            bench_check(dsm_get(c->buf, c->target, len), "dsm_get");
            break;
        case OP_FADD:
            bench_check(dsm_atomic_fetch_add_i64(c->target, 1, &res), "fetch_add");
            break;
        case OP_CAS:
            bench_check(dsm_atomic_cas_i64(c->target, cmp, 1, &res), "cas");
            cmp = res;
            break;
        }
    }
    return bench_now() - t0;
}

static long iters_for(const struct bench_opts *o, size_t len)
{
    long base = o->iters ? o->iters : (o->quick ? 200 : 20000);
    long it = len <= 8192 ? base : (long)(base * 8192.0 / (double)len);
    return it < 10 ? 10 : it;
}

/* One line of the table: median time per op for raw and mpidsm, and their ratio. */
static void measure(struct ctx *c, const struct bench_opts *o, enum op op, size_t len)
{
    long iters = iters_for(o, len);
    double raw[64], dsm[64];
    int rounds = o->rounds > 64 ? 64 : o->rounds;
    int me = dsm_rank();
    for (int r = 0; r < rounds; r++) {
        MPI_Barrier(dsm_comm());
        if (me == 0) {
            run_raw(c, op, len, iters / 10 + 1); // warm up both paths
            run_dsm(c, op, len, iters / 10 + 1);
            if (r % 2 == 0) {
                raw[r] = run_raw(c, op, len, iters);
                dsm[r] = run_dsm(c, op, len, iters);
            } else {
                dsm[r] = run_dsm(c, op, len, iters);
                raw[r] = run_raw(c, op, len, iters);
            }
        }
    }
    MPI_Barrier(dsm_comm());
    if (me == 0) {
        double tr = bench_median(raw, rounds) / iters * 1e6;
        double td = bench_median(dsm, rounds) / iters * 1e6;
        double mbs = (double)len / (td * 1e-6) / 1e6;
        printf("%-10s %9zu %10.3f %10.3f %7.3f %11.1f\n", op_names[op], len, tr, td, td / tr,
               op <= OP_GET ? mbs : 0.0);
        fflush(stdout);
    }
}

int bench_rma(const struct bench_opts *o)
{
    if (dsm_nranks() < 2) {
        if (dsm_rank() == 0) {
            fprintf(stderr, "dsm-bench rma: needs at least 2 ranks\n");
        }
        return 2;
    }
    struct ctx c;
    dsm_topo_t t;
    bench_check(dsm_topology(&t), "dsm_topology");
    size_t max = o->quick ? 65536 : o->max_size;
    if (max > t.segment_size / 2) {
        max = t.segment_size / 2;
    }
    dsm_gptr_t block;
    bench_check(dsm_alloc_all(max, &block), "dsm_alloc_all");
    c.user_off = dsm_gptr_offset(block); // raw MPI uses the same displacement
    bench_check(dsm_gptr_make(1, c.user_off, &c.target), "dsm_gptr_make");
    char *base;
    if (MPI_Win_allocate((MPI_Aint)(c.user_off + max), 1, MPI_INFO_NULL, dsm_comm(), &base,
                         &c.win) != MPI_SUCCESS) {
        fprintf(stderr, "dsm-bench: MPI_Win_allocate failed\n");
        return 1;
    }
    memset(base, 0, c.user_off + max);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, c.win);
    c.buf = calloc(1, max);
    if (dsm_rank() == 0) {
        printf("# rma: rank 0 -> rank 1, median of %d rounds; times in us per operation\n",
               o->rounds);
        printf("%-10s %9s %10s %10s %7s %11s\n", "op", "bytes", "raw_us", "dsm_us", "ratio",
               "dsm_MB/s");
    }
    for (enum op op = OP_PUT; op <= OP_GET; op++) {
        for (size_t len = 8; len <= max; len *= (len < 65536 ? 8 : 4)) {
            measure(&c, o, op, len);
        }
    }
    measure(&c, o, OP_FADD, 8);
    measure(&c, o, OP_CAS, 8);
    MPI_Win_unlock_all(c.win);
    MPI_Win_free(&c.win);
    free(c.buf);
    bench_check(dsm_free_all(block), "dsm_free_all");
    return 0;
}
