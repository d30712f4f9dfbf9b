/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * dsm-bench: measures mpidsm against raw MPI in the same run, on the same path.
 *
 *   dsm-bench [suite] [--iters N] [--rounds R] [--max-size BYTES] [--quick]
 *
 * Suites: rma (put/get/fetch-add/CAS latency and bandwidth, OSU-style). Run it under
 * mpi-launch/dsmrun with at least 2 ranks; rank 0 prints the table.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    {"xfer", bench_xfer, "put-with-signal vs put+flush+atomic, strided vs MPI datatypes"},
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

static void usage(FILE *f)
{
    fprintf(f, "usage: dsm-bench [suite...] [--iters N] [--rounds R] [--max-size BYTES] "
               "[--quick]\nsuites:\n");
    for (size_t i = 0; i < NSUITES; i++) {
        fprintf(f, "  %-8s %s\n", suites[i].name, suites[i].what);
    }
    fprintf(f, "Run with at least 2 ranks, e.g. mpi-launch/dsmrun -n 2 dsm-bench rma\n");
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

int main(int argc, char **argv)
{
    struct bench_opts o = {0, 5, (size_t)4 << 20, 0};
    const char *chosen[NSUITES + 1];
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
        } else if (argv[i][0] != '-' && nchosen < (int)NSUITES) {
            chosen[nchosen++] = argv[i];
        } else {
            fprintf(stderr, "dsm-bench: bad argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (dsm_init(&argc, &argv) != DSM_OK) {
        fprintf(stderr, "dsm-bench: dsm_init failed: %s\n", dsm_last_error());
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < NSUITES && rc == 0; i++) {
        int want = nchosen == 0;
        for (int k = 0; k < nchosen; k++) {
            want |= !strcmp(chosen[k], suites[i].name);
        }
        if (want) {
            rc = suites[i].run(&o);
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
    return rc;
}
