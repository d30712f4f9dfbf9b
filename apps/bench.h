/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/* dsm-bench: shared helpers of the benchmark suites (one file per suite). */
#ifndef DSM_BENCH_H
#define DSM_BENCH_H

#include <mpi.h>
#include <stddef.h>

#include "mpidsm.h"

struct bench_opts {
    long iters;      // timed iterations per measurement (0: suite default)
    int rounds;      // repetitions, alternating mpidsm and raw MPI; median reported
    size_t max_size; // largest message
    int quick;       // smoke run: few iterations, small sizes
};

double bench_now(void);
double bench_median(double *v, int n);
/* Abort the benchmark with a message when an mpidsm call fails. */
void bench_check(int rc, const char *what);

int bench_rma(const struct bench_opts *o);
int bench_ckpt(const struct bench_opts *o);
int bench_heap(const struct bench_opts *o);
int bench_sync(const struct bench_opts *o);
int bench_xfer(const struct bench_opts *o);

#endif
