/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The rma suite: OSU-style latency loops from rank 0 to rank 1 (the other ranks wait):
 * each iteration is one operation completed at the target (raw: the MPI call plus
 * MPI_Win_flush; mpidsm: the blocking call, which does the same). The raw window is
 * made by MPI_Win_allocate on mpidsm's own communicator in a lock_all epoch, so both
 * run over the same MPI one-sided component. Rounds alternate raw and mpidsm and the
 * median of the rounds is reported, which keeps a noisy neighbour from favouring one.
 *
 * When every rank shares a node, mpidsm's direct mode (DSM_DIRECT) moves data with loads
 * and stores, so a third column times the floor of that path: a raw shared-memory
 * window (MPI_Win_allocate_shared + MPI_Win_shared_query) used with memcpy and GCC
 * atomics, with the same fences mpidsm uses (seq_cst after a put, acquire after a get).
 * "ratio" is mpidsm / raw MPI calls; "vs_shm" is mpidsm / that floor.
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
    MPI_Win swin;      // raw shared-memory window, MPI_WIN_NULL when ranks span nodes
    char *speer;       // rank 1's part of it, mapped here
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

static double run_shm(struct ctx *c, enum op op, size_t len, long iters)
{
    char *p = c->speer + c->user_off;
    int64_t res = 0, cmp = 0;
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        switch (op) {
        case OP_PUT:
            memcpy(p, c->buf, len);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            break;
        case OP_GET:
            memcpy(c->buf, p, len);
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            break;
        case OP_FADD:
            res = __atomic_fetch_add((int64_t *)p, 1, __ATOMIC_SEQ_CST);
            break;
        case OP_CAS:
            __atomic_compare_exchange_n((int64_t *)p, &cmp, 1, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST);
            res = cmp;
            break;
        }
    }
    volatile int64_t sink = res; // keep the atomics' results alive
    (void)sink;
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

/* One line of the table: median time per op for raw, shm (when there is one) and
 * mpidsm, and the ratios. Rounds rotate the order so none always runs first. */
static void measure(struct ctx *c, const struct bench_opts *o, enum op op, size_t len)
{
    typedef double (*runner)(struct ctx *, enum op, size_t, long);
    runner run[3] = {run_raw, run_dsm, c->speer ? run_shm : NULL};
    long iters = iters_for(o, len);
    double t[3][64];
    int rounds = o->rounds > 64 ? 64 : o->rounds;
    int me = dsm_rank();
    for (int r = 0; r < rounds; r++) {
        MPI_Barrier(dsm_comm());
        if (me != 0) {
            continue;
        }
        for (int k = 0; k < 3; k++) {
            if (run[k]) {
                run[k](c, op, len, iters / 10 + 1); // warm up every path
            }
        }
        for (int j = 0; j < 3; j++) {
            int k = (r + j) % 3;
            t[k][r] = run[k] ? run[k](c, op, len, iters) : 0.0;
        }
    }
    MPI_Barrier(dsm_comm());
    if (me == 0) {
        double tr = bench_median(t[0], rounds) / iters * 1e6;
        double td = bench_median(t[1], rounds) / iters * 1e6;
        double ts = bench_median(t[2], rounds) / iters * 1e6;
        double mbs = (double)len / (td * 1e-6) / 1e6;
        if (op <= OP_GET) {
            char s[32];
            snprintf(s, sizeof s, "%s_raw", op_names[op]);
            bench_data(s, (double)len, tr);
            snprintf(s, sizeof s, "%s_dsm", op_names[op]);
            bench_data(s, (double)len, td);
            snprintf(s, sizeof s, "%s_shm", op_names[op]);
            if (c->speer) { // the floor exists when every rank shares this node
                bench_data(s, (double)len, ts);
            }
        }
        if (c->speer) {
            printf("%-10s %9zu %10.3f %10.3f %10.3f %7.3f %7.3f %11.1f\n", op_names[op], len, tr,
                   ts, td, td / tr, td / ts, op <= OP_GET ? mbs : 0.0);
        } else {
            printf("%-10s %9zu %10.3f %10s %10.3f %7.3f %7s %11.1f\n", op_names[op], len, tr, "-",
                   td, td / tr, "-", op <= OP_GET ? mbs : 0.0);
        }
        fflush(stdout);
    }
}

/* The raw shared-memory window, when every rank shares this node. */
static void open_shm(struct ctx *c, size_t bytes)
{
    MPI_Comm node;
    int nn = 0;
    c->swin = MPI_WIN_NULL;
    c->speer = NULL;
    MPI_Comm_split_type(dsm_comm(), MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &nn);
    MPI_Comm_free(&node);
    if (nn != dsm_nranks()) {
        return;
    }
    char *mine;
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    int rc = MPI_Win_allocate_shared((MPI_Aint)bytes, 1, info, dsm_comm(), &mine, &c->swin);
    MPI_Info_free(&info);
    if (rc != MPI_SUCCESS) {
        c->swin = MPI_WIN_NULL;
        return;
    }
    memset(mine, 0, bytes);
    MPI_Aint sz;
    int du;
    MPI_Win_shared_query(c->swin, 1, &sz, &du, &c->speer);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, c->swin);
    MPI_Win_sync(c->swin);
    MPI_Barrier(dsm_comm());
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
    open_shm(&c, c.user_off + max);
    c.buf = calloc(1, max);
    if (dsm_rank() == 0) {
        printf("# rma: rank 0 -> rank 1, median of %d rounds; times in us per operation\n",
               o->rounds);
        printf("# data path: %s\n",
               t.direct_ranks ? "direct load/store (DSM_DIRECT)" : "MPI one-sided calls");
        bench_note("%s, %s, rank 0 to rank 1 of %d", bench_mpi_name(),
                   t.direct_ranks ? "direct path" : "MPI path", dsm_nranks());
        printf("%-10s %9s %10s %10s %10s %7s %7s %11s\n", "op", "bytes", "raw_us", "shm_us",
               "dsm_us", "ratio", "vs_shm", "dsm_MB/s");
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
    if (c.swin != MPI_WIN_NULL) {
        MPI_Win_unlock_all(c.swin);
        MPI_Win_free(&c.swin);
    }
    free(c.buf);
    bench_check(dsm_free_all(block), "dsm_free_all");
    return 0;
}
