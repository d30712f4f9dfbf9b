/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The nodes suite: a job over several nodes (e.g. mpi-launch/simcluster run --ppn 2,2).
 * Rank 0 times 8-byte and 1 MiB put/get and 8-byte fetch-add/CAS, each completed at the
 * target, to a peer on its own node and to a peer on another node, beside raw MPI calls
 * (plus MPI_Win_flush) on a window made by MPI_Win_allocate on mpidsm's communicator in
 * a lock_all epoch: the same library, communicator and target. Rounds alternate raw and
 * mpidsm; the median of the rounds is reported with mpidsm / raw. The other ranks wait
 * in a collective (inside MPI, so their MPI progresses, as an idle target's would).
 *
 * The work is checked: every timed fetch-add lands on one counter per target and path,
 * which must end at exactly the number issued, and a put's bytes are read back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum op { OP_PUT, OP_GET, OP_FADD, OP_CAS };
static const char *const op_names[] = {"put", "get", "fetch-add", "cas"};

struct nctx {
    MPI_Win win;      // raw window: [0, 8) counter, [64, 64 + max) data, on every rank
    char *buf;        // local buffer
    dsm_gptr_t g;     // mpidsm block: the same layout, symmetric
    int peer;         // the target of this measurement
    long fadds[2][2]; // fetch-adds issued: [raw/dsm][same node/other node]
};

static dsm_gptr_t at(const struct nctx *c, uint64_t off)
{
    dsm_gptr_t g;
    bench_check(dsm_gptr_make(c->peer, dsm_gptr_offset(c->g) + off, &g), "dsm_gptr_make");
    return g;
}

static double run_raw(struct nctx *c, enum op op, size_t len, long iters)
{
    int64_t one = 1, res = 0, cmp = 0;
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        if (op == OP_PUT) {
            MPI_Put(c->buf, (int)len, MPI_BYTE, c->peer, 64, (int)len, MPI_BYTE, c->win);
        } else if (op == OP_GET) {
            MPI_Get(c->buf, (int)len, MPI_BYTE, c->peer, 64, (int)len, MPI_BYTE, c->win);
        } else if (op == OP_FADD) {
            MPI_Fetch_and_op(&one, &res, MPI_INT64_T, c->peer, 0, MPI_SUM, c->win);
        } else {
            MPI_Compare_and_swap(&one, &cmp, &res, MPI_INT64_T, c->peer, 8, c->win);
            cmp = res;
        }
        MPI_Win_flush(c->peer, c->win);
    }
    return bench_now() - t0;
}

static double run_dsm(struct nctx *c, enum op op, size_t len, long iters)
{
    int64_t res = 0, cmp = 0;
    dsm_gptr_t cnt = at(c, 0), word = at(c, 8), data = at(c, 64);
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        if (op == OP_PUT) {
            bench_check(dsm_put(data, c->buf, len), "dsm_put");
        } else if (op == OP_GET) {
            bench_check(dsm_get(c->buf, data, len), "dsm_get");
        } else if (op == OP_FADD) {
            bench_check(dsm_atomic_fetch_add_i64(cnt, 1, &res), "fetch_add");
        } else {
            bench_check(dsm_atomic_cas_i64(word, cmp, 1, &res), "cas");
            cmp = res;
        }
    }
    return bench_now() - t0;
}

/* One table line for the current peer (where: 0 same node, 1 other node). */
static void measure(struct nctx *c, const struct bench_opts *o, enum op op, size_t len, int where)
{
    long base = o->iters ? o->iters : (o->quick ? 100 : 5000);
    long iters = len <= 8192 ? base : (long)(base * 8192.0 / (double)len);
    iters = iters < 10 ? 10 : iters;
    int rounds = o->rounds > 64 ? 64 : (o->rounds < 1 ? 1 : o->rounds);
    double t[2][64];
    for (int r = 0; r < rounds && dsm_rank() == 0; r++) {
        run_raw(c, op, len, iters / 10 + 1); // warm up both paths
        run_dsm(c, op, len, iters / 10 + 1);
        for (int j = 0; j < 2; j++) {
            int k = (r + j) % 2;
            t[k][r] = k ? run_dsm(c, op, len, iters) : run_raw(c, op, len, iters);
        }
        if (op == OP_FADD) { // warm-up and timed loop, on each path
            c->fadds[0][where] += iters + iters / 10 + 1;
            c->fadds[1][where] += iters + iters / 10 + 1;
        }
    }
    if (dsm_rank() == 0) {
        double tr = bench_median(t[0], rounds) / iters * 1e6;
        double td = bench_median(t[1], rounds) / iters * 1e6;
        char s[48];
        snprintf(s, sizeof s, "%s_%s", op_names[op], where ? "other" : "same");
        bench_data(s, (double)len, td / tr);
        printf("%-10s %-10s %9zu %10.3f %10.3f %7.3f\n", where ? "other-node" : "same-node",
               op_names[op], len, tr, td, td / tr);
        fflush(stdout);
    }
}

/* The fetch-add counters must hold exactly what was issued; a put must read back. */
static int verify(struct nctx *c, int where)
{
    int64_t raw = 0, dsm = 0, none = 0;
    MPI_Fetch_and_op(&none, &raw, MPI_INT64_T, c->peer, 0, MPI_NO_OP, c->win);
    MPI_Win_flush(c->peer, c->win);
    bench_check(dsm_atomic_load_i64(at(c, 0), &dsm), "dsm_atomic_load_i64");
    for (size_t i = 0; i < 4096; i++) {
        c->buf[i] = (char)(i * 7 + (size_t)where);
    }
    char back[4096];
    bench_check(dsm_put(at(c, 64), c->buf, sizeof back), "dsm_put");
    bench_check(dsm_get(back, at(c, 64), sizeof back), "dsm_get");
    int bad = raw != c->fadds[0][where] || dsm != c->fadds[1][where] ||
              memcmp(back, c->buf, sizeof back) != 0;
    if (bad) {
        fprintf(stderr,
                "dsm-bench nodes: FAIL rank %d: fetch-adds raw %lld of %ld, mpidsm %lld of %ld, "
                "put read back %s\n",
                c->peer, (long long)raw, c->fadds[0][where], (long long)dsm, c->fadds[1][where],
                memcmp(back, c->buf, sizeof back) ? "differs" : "ok");
    }
    return bad;
}

/* Rank 0's peers: the first other rank on its node and the first on another node. */
static void pick_peers(const dsm_topo_t *t, int peers[2])
{
    int n = dsm_nranks(), *nodes = malloc((size_t)n * sizeof *nodes);
    MPI_Allgather(&t->node, 1, MPI_INT, nodes, 1, MPI_INT, dsm_comm());
    peers[0] = peers[1] = -1;
    for (int r = n - 1; r > 0; r--) {
        peers[nodes[r] == nodes[0] ? 0 : 1] = r;
    }
    free(nodes);
}

int bench_nodes(const struct bench_opts *o)
{
    dsm_topo_t t;
    bench_check(dsm_topology(&t), "dsm_topology");
    int peers[2];
    pick_peers(&t, peers);
    if (peers[0] < 0 || peers[1] < 0) { // not an error: "dsm-bench" runs every suite
        if (dsm_rank() == 0) {
            printf("# nodes: skipped: needs 2 nodes or more, rank 0's with another rank "
                   "(e.g. mpi-launch/simcluster run --ppn 2,2)\n");
        }
        return 0;
    }
    size_t max = (size_t)1 << 20;
    struct nctx c = {.buf = calloc(1, max)};
    char *base;
    MPI_Win_allocate((MPI_Aint)(64 + max), 1, MPI_INFO_NULL, dsm_comm(), &base, &c.win);
    memset(base, 0, 64 + max);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, c.win);
    bench_check(dsm_alloc_all(64 + max, &c.g), "dsm_alloc_all");
    void *mine;
    bench_check(dsm_gptr_local(c.g, &mine), "dsm_gptr_local");
    memset(mine, 0, 64 + max);
    bench_check(dsm_barrier(), "dsm_barrier");
    MPI_Win_sync(c.win);
    MPI_Barrier(dsm_comm());
    if (dsm_rank() == 0) {
        printf("# nodes: rank 0 -> rank %d (same node) and rank %d (other node), %d nodes, "
               "%d ranks here reached by loads and stores; median of %d rounds, us per op\n",
               peers[0], peers[1], t.nnodes, t.direct_ranks, o->rounds);
        bench_note("%s, %d nodes, same-node vs other-node peer", bench_mpi_name(), t.nnodes);
        printf("%-10s %-10s %9s %10s %10s %7s\n", "peer", "op", "bytes", "raw_us", "dsm_us",
               "ratio");
    }
    int bad = 0;
    for (int where = 0; where < 2; where++) {
        c.peer = peers[where];
        measure(&c, o, OP_PUT, 8, where);
        measure(&c, o, OP_GET, 8, where);
        measure(&c, o, OP_PUT, max, where);
        measure(&c, o, OP_GET, max, where);
        measure(&c, o, OP_FADD, 8, where);
        measure(&c, o, OP_CAS, 8, where);
        if (dsm_rank() == 0) {
            bad |= verify(&c, where);
        }
    }
    MPI_Bcast(&bad, 1, MPI_INT, 0, dsm_comm());
    MPI_Win_unlock_all(c.win);
    MPI_Win_free(&c.win);
    bench_check(dsm_free_all(c.g), "dsm_free_all");
    free(c.buf);
    return bad ? 1 : 0;
}
