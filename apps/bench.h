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

/* --plot DIR (apps/bench_plot.c). While a suite runs on rank 0, bench_data records one
 * figure it prints as point (x, y) of a named series and bench_note a few words for the
 * plot's title (no-ops without --plot and on other ranks). */
void bench_data(const char *series, double x, double y);
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "Open MPI v4.1.4" or "MPICH Version: 4.0.2": the library's name, for notes. */
const char *bench_mpi_name(void);
int bench_plot_check(const char *dir);
void bench_plot_begin(void);
int bench_plot_end(const char *dir, const char *suite);
int bench_plot_draw(const char *dir, const char *suite);

int bench_rma(const struct bench_opts *o);
int bench_ckpt(const struct bench_opts *o);
int bench_heap(const struct bench_opts *o);
int bench_sync(const struct bench_opts *o);
int bench_progress(const struct bench_opts *o);
int bench_xfer(const struct bench_opts *o);
int bench_nodes(const struct bench_opts *o);
int bench_repl(const struct bench_opts *o);

#endif
