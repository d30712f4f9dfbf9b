/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * dsm-bench --plot DIR: a PNG per suite, drawn by gnuplot from the figures the suite
 * printed. While a suite runs, rank 0 collects each figure it prints as a point of a
 * named series (bench_data); afterwards it writes DIR/<suite>.dat (one block per
 * series, headed "# <series>", which gnuplot selects with `index "<series>"`),
 * DIR/<suite>.gp and, by running gnuplot in DIR, DIR/<suite>.png:
 *   rma   latency and bandwidth against message size: mpidsm, raw MPI RMA, the
 *         shared-memory floor, put and get
 *   sync  lock throughput against ranks (1 = uncontended), one line per lock
 *   heap  local alloc+free against size (vs malloc); collective alloc+free (vs
 *         MPI_Win_allocate)
 *   ckpt  checkpoint write and restore bandwidth beside dd's
 * gnuplot ($GNUPLOT when set, else gnuplot on PATH) runs after MPI is finalised, so no
 * MPI process forks it.
 */
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_POINTS 512

struct point {
    char series[32];
    double x, y;
};

static struct point points[MAX_POINTS];
static int npoints = -1; // -1: not collecting (no --plot, or not rank 0)
static char note[256];

void bench_data(const char *series, double x, double y)
{
    if (npoints < 0 || npoints == MAX_POINTS) {
        return;
    }
    snprintf(points[npoints].series, sizeof points[npoints].series, "%s", series);
    points[npoints].x = x;
    points[npoints].y = y;
    npoints++;
}

void bench_note(const char *fmt, ...)
{
    if (npoints < 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note, sizeof note, fmt, ap);
    va_end(ap);
    for (char *p = note; *p; p++) {
        *p = *p == '"' || *p == '\\' ? '\'' : *p; // it goes into a gnuplot string
    }
}

void bench_plot_begin(void)
{
    npoints = 0;
    note[0] = '\0';
}

static bool has_series(const char *s)
{
    for (int i = 0; i < npoints; i++) {
        if (strcmp(points[i].series, s) == 0) {
            return true;
        }
    }
    return false;
}

/* DIR/<suite>.dat: every series as one block, in the order series first appeared. */
static int write_data(const char *dir, const char *suite)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.dat", dir, suite);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "dsm-bench: --plot: %s: %s\n", path, strerror(errno));
        return 1;
    }
    for (int i = 0; i < npoints; i++) {
        int first = 1;
        for (int k = 0; k < i && first; k++) {
            first = strcmp(points[k].series, points[i].series) != 0;
        }
        if (!first) {
            continue;
        }
        fprintf(f, "# %s\n", points[i].series);
        for (int k = i; k < npoints; k++) {
            if (strcmp(points[k].series, points[i].series) == 0) {
                fprintf(f, "%.9g %.9g\n", points[k].x, points[k].y);
            }
        }
        fprintf(f, "\n\n");
    }
    return fclose(f) == 0 ? 0 : 1;
}

/* A series and how it is drawn: its legend, and the y expression of the plot. */
struct line {
    const char *series, *title, *y;
};

/* "plot" with a clause per series that has data; "" when none has. */
static void plot_lines(FILE *f, const char *suite, const struct line *l, size_t n)
{
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        if (has_series(l[i].series)) {
            fprintf(f, "%s\"%s.dat\" index \"%s\" using 1:(%s) with linespoints lw 2 title \"%s\"",
                    any ? ", \\\n     " : "plot ", suite, l[i].series, l[i].y, l[i].title);
            any = 1;
        }
    }
    fprintf(f, any ? "\n" : "set label \"no data\" at graph 0.5, 0.5 center\nplot NaN notitle\n");
}

static const char common[] = "set terminal pngcairo noenhanced size 1280,540 font \",11\"\n"
                             "set grid\nset key top left\n";

static void gp_rma(FILE *f)
{
    static const struct line lat[] = {{"put_dsm", "mpidsm put", "$2"},
                                      {"put_raw", "raw MPI put+flush", "$2"},
                                      {"put_shm", "shared-memory floor put", "$2"},
                                      {"get_dsm", "mpidsm get", "$2"},
                                      {"get_raw", "raw MPI get+flush", "$2"},
                                      {"get_shm", "shared-memory floor get", "$2"}};
    struct line bw[6];
    for (int i = 0; i < 6; i++) {
        bw[i] = lat[i];
        bw[i].y = "$1 / $2"; // bytes per us = MB/s
    }
    fprintf(f,
            "set multiplot layout 1,2 title \"dsm-bench rma: mpidsm beside raw MPI RMA and the "
            "shared-memory floor (%s)\"\n"
            "set logscale x 2\nset logscale y 10\nset format x \"%%.0b%%B\"\n"
            "set xlabel \"message size (bytes)\"\n",
            note);
    fprintf(f, "set title \"latency against size\"\nset ylabel \"us per operation (lower is "
               "better)\"\n");
    plot_lines(f, "rma", lat, 6);
    fprintf(f, "set title \"bandwidth against size\"\nset ylabel \"MB/s (higher is better)\"\n"
               "set key bottom right\n");
    plot_lines(f, "rma", bw, 6);
    fprintf(f, "unset multiplot\n");
}

static void gp_sync(FILE *f)
{
    static const struct line l[] = {{"dsm_mutex", "dsm_mutex (MCS)", "$2"},
                                    {"win_lock", "MPI_Win_lock mutex", "$2"},
                                    {"cas_spin", "CAS spin lock", "$2"}};
    fprintf(f,
            "set title \"dsm-bench sync: lock throughput against ranks (k ranks on one lock; "
            "1 = uncontended) (%s)\"\n"
            "set key top right\nset xlabel \"ranks taking the lock\"\nset ylabel \"million "
            "acquisitions per second "
            "(higher is better)\"\nset logscale y 10\nset xtics 1\nset xrange [0.5:*]\nset offsets "
            "0, 0.5, 0, 0\n",
            note);
    plot_lines(f, "sync", l, 3);
}

static void gp_heap(FILE *f)
{
    static const struct line local[] = {{"pair_dsm", "dsm_alloc+dsm_free, one pair", "$2"},
                                        {"pair_malloc", "malloc+free, one pair", "$2"},
                                        {"batch_dsm", "dsm_alloc+dsm_free, batches of 1000", "$2"},
                                        {"batch_malloc", "malloc+free, batches of 1000", "$2"}};
    static const struct line coll[] = {{"coll_dsm", "dsm_alloc_all+dsm_free_all", "$2"},
                                       {"coll_mpi", "MPI_Win_allocate+MPI_Win_free", "$2"}};
    fprintf(f,
            "set multiplot layout 1,2 title \"dsm-bench heap: allocation cost against size "
            "(%s)\"\n"
            "set logscale x 2\nset logscale y 10\nset format x \"%%.0b%%B\"\n"
            "set xlabel \"block size (bytes)\"\n",
            note);
    fprintf(f, "set title \"local alloc+free, mpidsm beside glibc malloc\"\n"
               "set ylabel \"CPU ns per alloc+free (lower is better)\"\n");
    plot_lines(f, "heap", local, 4);
    fprintf(f, "set title \"collective alloc+free, mpidsm beside an MPI window\"\n"
               "set ylabel \"us per alloc+free (lower is better)\"\n");
    plot_lines(f, "heap", coll, 2);
    fprintf(f, "unset multiplot\n");
}

static void gp_ckpt(FILE *f)
{
    fprintf(f,
            "set title \"dsm-bench ckpt: checkpoint write and restore bandwidth beside dd "
            "(%s)\"\n"
            "set ylabel \"MB/s (higher is better)\"\nset style fill solid 0.7\n"
            "set boxwidth 0.35\nset xrange [0.4:2.6]\nset yrange [0:*]\n"
            "set xtics (\"checkpoint write (dd conv=fsync)\" 1, \"restore (cat | dd, cached)\" "
            "2)\n"
            "plot \"ckpt.dat\" index \"dsm_bw\" using ($1 - 0.18):2 with boxes title \"mpidsm\", "
            "\\\n     \"ckpt.dat\" index \"dd_bw\" using ($1 + 0.18):2 with boxes title \"dd\"\n",
            note);
}

/* Write DIR/<suite>.gp for the suite's plot. */
static int write_script(const char *dir, const char *suite)
{
    static const struct {
        const char *suite;
        void (*gp)(FILE *);
    } scripts[] = {{"rma", gp_rma}, {"sync", gp_sync}, {"heap", gp_heap}, {"ckpt", gp_ckpt}};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.gp", dir, suite);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "dsm-bench: --plot: %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "# dsm-bench --plot: draws %s.png from %s.dat (run in this directory)\n%s", suite,
            suite, common);
    fprintf(f, "set output \"%s.png\"\n", suite);
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        if (strcmp(scripts[i].suite, suite) == 0) {
            scripts[i].gp(f);
        }
    }
    return fclose(f) == 0 ? 0 : 1;
}

/* Rank 0 after a suite: keep its data and script for bench_plot_draw. */
int bench_plot_end(const char *dir, const char *suite)
{
    int rc = npoints >= 0 ? write_data(dir, suite) || write_script(dir, suite) : 0;
    npoints = -1;
    return rc;
}

static const char *gnuplot(void)
{
    const char *g = getenv("GNUPLOT");
    return g && *g ? g : "gnuplot";
}

/* gnuplot <suite>.gp in dir, without a shell (no quoting of dir). */
int bench_plot_draw(const char *dir, const char *suite)
{
    char gp[64], png[4096];
    snprintf(gp, sizeof gp, "%s.gp", suite);
    snprintf(png, sizeof png, "%s/%s.png", dir, suite);
    remove(png);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) == 0) {
            execlp(gnuplot(), gnuplot(), gp, (char *)NULL);
        }
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "dsm-bench: --plot: %s %s/%s failed (status %d)\n", gnuplot(), dir, gp,
                WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return 1;
    }
    struct stat sb;
    if (stat(png, &sb) != 0 || sb.st_size == 0) {
        fprintf(stderr, "dsm-bench: --plot: gnuplot made no %s\n", png);
        return 1;
    }
    printf("# plot: %s\n", png);
    return 0;
}

/* Before any suite runs: DIR exists or can be made, and gnuplot is on PATH. */
int bench_plot_check(const char *dir)
{
    struct stat sb;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "dsm-bench: --plot: cannot make %s: %s\n", dir, strerror(errno));
        return 1;
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(dir, W_OK) != 0) {
        fprintf(stderr, "dsm-bench: --plot: %s is not a writable directory\n", dir);
        return 1;
    }
    const char *path = getenv("PATH");
    char buf[4096];
    if (strchr(gnuplot(), '/') != NULL) {
        path = NULL;
        if (access(gnuplot(), X_OK) == 0) {
            return 0;
        }
    }
    for (const char *p = path ? path : ""; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, gnuplot());
        if (n > 0 && access(buf, X_OK) == 0) {
            return 0;
        }
        p += n + (p[n] == ':');
    }
    fprintf(stderr, "dsm-bench: --plot needs gnuplot (%s not found; Debian: gnuplot-nox)\n",
            gnuplot());
    return 1;
}
