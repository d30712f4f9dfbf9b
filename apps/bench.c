/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * dsm-bench: measures mpidsm against raw MPI in the same run, on the same path.
 *
 *   dsm-bench [suite...] [--iters N] [--rounds R] [--max-size BYTES] [--quick] [--plot DIR]
 *
 * Suites: rma (put/get/fetch-add/CAS latency and bandwidth, OSU-style), ckpt, heap,
 * sync, progress (a remote fetch-add while its target computes), xfer (put-with-signal,
 * strided patches), nodes (a job over several nodes: a same-node and an other-node
 * peer); one file each. Run it
 * under mpi-launch/dsmrun with at least 2 ranks; rank 0 prints the tables, and with
 * --plot DIR also draws DIR/<suite>.png (apps/bench_plot.c).
 */
#include "bench.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <mpi.h>

struct suite {
    const char *name;
    int (*run)(const struct bench_opts *);
    const char *what;
};

static const struct suite suites[] = {
    {"rma", bench_rma, "put/get/fetch-add/CAS, 8 B to 4 MiB, mpidsm vs raw MPI RMA"},
    {"ckpt", bench_ckpt, "checkpoint write vs dd conv=fsync, restore vs dd read"},
    {"heap", bench_heap, "alloc/free: local vs malloc, remote, collective vs MPI_Win_allocate"},
    {"sync", bench_sync, "mutex lock+unlock: dsm_mutex vs MPI_Win_lock vs CAS spin lock"},
    {"progress", bench_progress, "8 B fetch-add on rank 0 while it idles vs computes 1 s"},
    {"xfer", bench_xfer, "put-with-signal vs put+flush+atomic, strided vs MPI datatypes"},
    {"nodes", bench_nodes, "8 B/1 MiB ops to a same-node and an other-node peer vs raw MPI"},
    {"repl", bench_repl,
     "replicated 8 B write/read, R = 1, 3, 5, vs put+flush to the slowest rank"},
};
#define NSUITES (sizeof suites / sizeof suites[0])

double bench_now(void)
{
    return MPI_Wtime();
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_check(int rc, const char *what)
{
    if (rc != DSM_OK) {
        fprintf(stderr, "dsm-bench: %s failed: %s (%s)\n", what, dsm_strerror(rc),
                dsm_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

const char *bench_mpi_name(void)
{
    static char name[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(name, &len);
    name[strcspn(name, ",\n")] = '\0'; // "Open MPI v4.1.4", "MPICH Version:\t4.0.2"
    for (char *t = strchr(name, '\t'); t; t = strchr(t, '\t')) {
        *t = ' ';
    }
    return name;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: dsm-bench [suite...] [--iters N] [--rounds R] [--max-size BYTES] "
               "[--quick] [--plot DIR]\nsuites:\n");
    for (size_t i = 0; i < NSUITES; i++) {
        fprintf(f, "  %-8s %s\n", suites[i].name, suites[i].what);
    }
    fprintf(f, "--plot DIR: also draw DIR/<suite>.png with gnuplot ($GNUPLOT if set; the data\n"
               "  in DIR/<suite>.dat, the script in DIR/<suite>.gp)\n"
               "Run with at least 2 ranks, e.g. mpi-launch/dsmrun -n 2 dsm-bench rma\n");
}

static int parse_num(const char *s, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v <= 0) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Whether suite name runs: named, or every suite when none is. */
static int wants(const char *const *chosen, int nchosen, const char *name)
{
    int want = nchosen == 0;
    for (int k = 0; k < nchosen; k++) {
        want |= !strcmp(chosen[k], name);
    }
    return want;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* The repl suite's stores: DSM_REPL_SIZE 4M and, unless the user names them, a fresh
 * directory per rank (DSM_REPL_DIR) that dir receives and main removes after the run,
 * so repeated runs leave no stores behind. A user's values win. */
static void repl_setup(char *dir, size_t len)
{
    setenv("DSM_REPL_SIZE", "4M", 0);
    if (getenv("DSM_REPL_DIR") != NULL) {
        return;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, len, "%s/dsm-bench-repl.XXXXXX", tmp && tmp[0] == '/' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        dir[0] = '\0';
        return;
    }
    setenv("DSM_REPL_DIR", dir, 1);
}

int main(int argc, char **argv)
{
    struct bench_opts o = {0, 5, (size_t)4 << 20, 0};
    const char *chosen[NSUITES + 1], *plot = NULL;
    int nchosen = 0;
    for (int i = 1; i < argc; i++) {
        long v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--quick")) {
            o.quick = 1;
        } else if (i + 1 < argc && !strcmp(argv[i], "--iters") && !parse_num(argv[i + 1], &v)) {
            o.iters = v, i++;
        } else if (i + 1 < argc && !strcmp(argv[i], "--rounds") && !parse_num(argv[i + 1], &v)) {
            o.rounds = (int)v, i++;
        } else if (i + 1 < argc && !strcmp(argv[i], "--max-size") && !parse_num(argv[i + 1], &v)) {
            o.max_size = (size_t)v, i++;
        } else if (i + 1 < argc && !strcmp(argv[i], "--plot")) {
            plot = argv[++i];
        } else if (argv[i][0] != '-' && nchosen < (int)NSUITES) {
            chosen[nchosen++] = argv[i];
        } else {
            fprintf(stderr, "dsm-bench: bad argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    char repl_dir[512] = "";
    if (wants(chosen, nchosen, "repl")) {
        repl_setup(repl_dir, sizeof repl_dir);
    }
    if (dsm_init(&argc, &argv) != DSM_OK) {
        fprintf(stderr, "dsm-bench: dsm_init failed: %s\n", dsm_last_error());
        return 1;
    }
    int rc = 0, me = dsm_rank(), ran[NSUITES] = {0};
    if (plot) { // rank 0 decides for all: gnuplot and the directory are its business
        rc = me == 0 ? bench_plot_check(plot) : 0;
        MPI_Bcast(&rc, 1, MPI_INT, 0, dsm_comm());
    }
    for (size_t i = 0; i < NSUITES && rc == 0; i++) {
        int want = nchosen == 0;
        for (int k = 0; k < nchosen; k++) {
            want |= !strcmp(chosen[k], suites[i].name);
        }
        if (want && plot && me == 0) {
            bench_plot_begin();
        }
        if (want) {
            rc = suites[i].run(&o);
            ran[i] = rc == 0;
        }
        if (want && plot && me == 0 && bench_plot_end(plot, suites[i].name) != 0) {
            rc = 1;
        }
    }
    for (int k = 0; k < nchosen; k++) {
        int known = 0;
        for (size_t i = 0; i < NSUITES; i++) {
            known |= !strcmp(chosen[k], suites[i].name);
        }
        if (!known && dsm_rank() == 0) {
            fprintf(stderr, "dsm-bench: unknown suite '%s'\n", chosen[k]);
            rc = 2;
        }
    }
    dsm_finalize();
    if (repl_dir[0] != '\0') { // this run's stores, in a directory of its own
        nftw(repl_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    }
    for (size_t i = 0; i < NSUITES && plot && me == 0; i++) {
        if (ran[i] && bench_plot_draw(plot, suites[i].name) != 0) {
            rc = rc ? rc : 1;
        }
    }
    return rc;
}
