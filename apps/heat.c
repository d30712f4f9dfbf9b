/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * heat: 2D heat diffusion (explicit Jacobi, 5-point stencil) on a grid split by rows
 * across ranks in mpidsm's global heap, with halos fetched by one-sided gets,
 * periodic checkpoints (DSM_CKPT_INTERVAL / --ckpt-every) and resumption after a
 * restart (DSM_RESTART=auto, as dsmrun --restarts sets it).
 *
 *   dsmrun -n 4 apps/heat [--nx N] [--ny N] [--steps N] [--alpha A] [--ckpt-every K]
 *                         [--verify] [--expect HEX] [--progress] [--help]
 *
 * The boundary rows and columns are fixed (top edge 100, others 0); the interior starts
 * at 0 with a square of 50 in the middle. Every cell's update is computed with the same
 * arithmetic in the same order whatever the decomposition, so the final grid is
 * bit-identical to the serial computation (--verify computes it on rank 0 and compares)
 * and to a run that was killed and restarted from a checkpoint (--expect), also on
 * another number of ranks (the grid is spread anew over the ranks there are).
 *
 * Layout: every rank holds two symmetric buffers (dsm_alloc_all), each with a halo row
 * above and below its rows; the run's state (dimensions, step, which buffer is current,
 * the buffers' global pointers) sits in a small block on rank 0 named by the root
 * "heat", so a restarted program finds it again.
 *
 * Exit status: 0 success (and checks passed), 1 a failed check or library error,
 * 2 bad arguments.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpidsm.h"

struct opts {
    long nx, ny, steps, ckpt_every;
    double alpha;
    int verify, progress;
    uint64_t expect;
    int have_expect;
};

/* The run's state, stored in the global heap on rank 0 (root "heat"). */
struct meta {
    int64_t nx, ny, nranks, step, steps, cur; // cur: which buffer (0/1) holds step's grid
    double alpha;
    dsm_gptr_t buf[2]; // symmetric: valid with any rank
};

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "heat: " __VA_ARGS__);                                                     \
        fputc('\n', stderr);                                                                       \
        return 1;                                                                                  \
    } while (0)
#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) != DSM_OK) {                                                                    \
            DIE("%s failed: %s", #call, dsm_last_error());                                         \
        }                                                                                          \
    } while (0)

static void usage(FILE *f)
{
    fprintf(f, "usage: heat [--nx N] [--ny N] [--steps N] [--alpha A] [--ckpt-every K]\n"
               "            [--verify] [--expect HEX] [--progress]\n"
               "  --nx, --ny      grid size including the fixed boundary (default 256 x 256)\n"
               "  --steps         time steps (default 200)\n"
               "  --alpha         diffusion number, 0 < A <= 0.25 (default 0.2)\n"
               "  --ckpt-every K  checkpoint every K steps (default: only when DSM_CKPT_INTERVAL\n"
               "                  seconds have passed, via dsm_checkpoint_maybe)\n"
               "  --verify        also compute the grid serially on rank 0; exit 1 unless equal\n"
               "  --expect HEX    exit 1 unless the final checksum is HEX\n"
               "  --progress      print a progress line every 10%% of the steps\n"
               "Run under mpi-launch/dsmrun; resumes from a checkpoint when DSM_RESTART=auto.\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

/* 0 ok, 1 asked for help, 2 bad arguments. */
static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){256, 256, 200, 0, 0.2, 0, 0, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            return 1;
        } else if (!strcmp(a, "--verify")) {
            o->verify = 1;
        } else if (!strcmp(a, "--progress")) {
            o->progress = 1;
        } else if (v && !strcmp(a, "--nx")) {
            bad = parse_long(v, 3, 1 << 20, &o->nx), i++;
        } else if (v && !strcmp(a, "--ny")) {
            bad = parse_long(v, 3, 1 << 20, &o->ny), i++;
        } else if (v && !strcmp(a, "--steps")) {
            bad = parse_long(v, 0, 1L << 40, &o->steps), i++;
        } else if (v && !strcmp(a, "--ckpt-every")) {
            bad = parse_long(v, 1, 1L << 40, &o->ckpt_every), i++;
        } else if (v && !strcmp(a, "--alpha")) {
            char *end;
            o->alpha = strtod(v, &end);
            bad = *end || !(o->alpha > 0 && o->alpha <= 0.25), i++;
        } else if (v && !strcmp(a, "--expect")) {
            char *end;
            o->expect = strtoull(v, &end, 16);
            bad = *end != '\0', o->have_expect = 1, i++;
        } else {
            fprintf(stderr, "heat: unknown or incomplete argument '%s'\n", a);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "heat: bad value '%s' for %s\n", v, a);
            return 2;
        }
    }
    return 0;
}

/* Rows [*first, *first + *count) of the interior (global rows 1..ny-2) belong to rank r. */
static void my_rows(long ny, int r, int n, long *first, long *count)
{
    long interior = ny - 2;
    long lo = interior * r / n, hi = interior * (r + 1) / n;
    *first = 1 + lo;
    *count = hi - lo;
}

static double initial(long i, long j, long nx, long ny)
{
    if (i == 0) {
        return 100.0;
    }
    if (i == ny - 1 || j == 0 || j == nx - 1) {
        return 0.0;
    }
    bool centre = labs(2 * i - ny) < ny / 4 && labs(2 * j - nx) < nx / 4;
    return centre ? 50.0 : 0.0;
}

/* One cell's update: the arithmetic every decomposition and the serial code share. */
static inline double stencil(const double *up, const double *row, const double *down, long j,
                             double alpha)
{
    double c = row[j];
    return c + alpha * ((up[j] + down[j]) + (row[j - 1] + row[j + 1]) - 4.0 * c);
}

static uint64_t fnv_rows(uint64_t h, const double *rows, size_t n)
{
    const unsigned char *p = (const unsigned char *)rows;
    for (size_t i = 0; i < n * sizeof(double); i++) {
        h = (h ^ p[i]) * 1099511628211u;
    }
    return h;
}

/* The whole computation on one rank, for --verify. Returns the checksum. */
static uint64_t serial(const struct opts *o)
{
    long nx = o->nx, ny = o->ny;
    double *a = malloc(sizeof(double) * (size_t)(nx * ny));
    double *b = malloc(sizeof(double) * (size_t)(nx * ny));
    for (long i = 0; i < ny; i++) {
        for (long j = 0; j < nx; j++) {
            a[i * nx + j] = b[i * nx + j] = initial(i, j, nx, ny);
        }
    }
    for (long s = 0; s < o->steps; s++) {
        for (long i = 1; i < ny - 1; i++) {
            for (long j = 1; j < nx - 1; j++) {
                b[i * nx + j] =
                    stencil(a + (i - 1) * nx, a + i * nx, a + (i + 1) * nx, j, o->alpha);
            }
        }
        double *t = a;
        a = b;
        b = t;
    }
    uint64_t h = fnv_rows(14695981039346656037u, a, (size_t)(nx * ny));
    free(a);
    free(b);
    return h;
}

struct run {
    struct opts o;
    int me, n;
    long first, count, maxrows;
    dsm_gptr_t metag; // on rank 0
    struct meta m;
    double *local[2]; // this rank's two buffers: (maxrows + 2) rows of nx
};

/* Global pointer to row k (0 = top halo, 1.. = own rows) of buffer b on rank r. */
static dsm_gptr_t row_of(const struct run *R, int b, int r, long k)
{
    dsm_gptr_t g = DSM_GPTR_NULL, base;
    dsm_gptr_make(r, dsm_gptr_offset(R->m.buf[b]), &base);
    dsm_gptr_add(base, (int64_t)(k * R->o.nx * (long)sizeof(double)), &g);
    return g;
}

static int fresh_start(struct run *R)
{
    size_t bytes = sizeof(double) * (size_t)((R->maxrows + 2) * R->o.nx);
    R->m = (struct meta){R->o.nx, R->o.ny, R->n, 0, R->o.steps, 0, R->o.alpha, {{0}, {0}}};
    CHECK(dsm_alloc_all(bytes, &R->m.buf[0]));
    CHECK(dsm_alloc_all(bytes, &R->m.buf[1]));
    for (int b = 0; b < 2; b++) {
        CHECK(dsm_gptr_local(row_of(R, b, R->me, 0), (void **)&R->local[b]));
        for (long k = 0; k < R->count + 2; k++) {
            for (long j = 0; j < R->o.nx; j++) {
                long i = R->first - 1 + k;
                R->local[b][k * R->o.nx + j] = i < R->o.ny ? initial(i, j, R->o.nx, R->o.ny) : 0;
            }
        }
    }
    if (R->me == 0) {
        CHECK(dsm_alloc(sizeof R->m, &R->metag));
        CHECK(dsm_put(R->metag, &R->m, sizeof R->m));
        CHECK(dsm_root_set("heat", R->metag));
    }
    CHECK(dsm_barrier());
    return 0;
}

/* Row k (1.. = own rows) of buffer b of rank r in the layout of meta m (r < m->nranks). */
static dsm_gptr_t old_row(const struct meta *m, int b, int r, long k)
{
    dsm_gptr_t g = DSM_GPTR_NULL, base;
    dsm_gptr_make(r, dsm_gptr_offset(m->buf[b]), &base);
    dsm_gptr_add(base, (int64_t)(k * m->nx * (long)sizeof(double)), &g);
    return g;
}

/* Copy the current grid's global row i from the old layout into dst (nx doubles). */
static int fetch_row(const struct meta *old, long i, double *dst)
{
    for (int r = 0; r < (int)old->nranks; r++) {
        long first, count;
        my_rows(old->ny, r, (int)old->nranks, &first, &count);
        if (i >= first && i < first + count) {
            CHECK(dsm_get(dst, old_row(old, (int)old->cur, r, i - first + 1),
                          sizeof(double) * (size_t)old->nx));
            return 0;
        }
    }
    for (long j = 0; j < old->nx; j++) { // a fixed boundary row
        dst[j] = initial(i, j, old->nx, old->ny);
    }
    return 0;
}

/* A checkpoint of another rank count (mpidsm keeps every old rank's segment, hosted
 * by the ranks there are now, dsm_nsegments()): spread the grid over this job's ranks
 * in new symmetric buffers, then free the old ones. Both buffers get the current grid
 * (the other one's interior is overwritten by the next step; its boundary columns and
 * halos must hold the fixed values). */
static int regrid(struct run *R)
{
    struct meta old = R->m;
    size_t bytes = sizeof(double) * (size_t)((R->maxrows + 2) * R->o.nx);
    CHECK(dsm_alloc_all(bytes, &R->m.buf[0]));
    CHECK(dsm_alloc_all(bytes, &R->m.buf[1]));
    R->m.nranks = R->n;
    for (int b = 0; b < 2; b++) {
        CHECK(dsm_gptr_local(row_of(R, b, R->me, 0), (void **)&R->local[b]));
        for (long k = 0; k < R->count + 2; k++) {
            if (fetch_row(&old, R->first - 1 + k, R->local[b] + k * R->o.nx)) {
                return 1;
            }
        }
    }
    CHECK(dsm_barrier()); // every rank has its rows: the old buffers can go
    if (R->me == 0) {
        for (int r = 0; r < (int)old.nranks; r++) {
            for (int b = 0; b < 2; b++) {
                CHECK(dsm_free(old_row(&old, b, r, 0)));
            }
        }
        CHECK(dsm_put(R->metag, &R->m, sizeof R->m));
        fprintf(stderr, "heat: regridded from %" PRId64 " to %d ranks\n", old.nranks, R->n);
    }
    CHECK(dsm_barrier());
    return 0;
}

/* After a restart: find the state again and check it is this run's. */
static int resume(struct run *R)
{
    CHECK(dsm_root_get("heat", &R->metag));
    CHECK(dsm_get(&R->m, R->metag, sizeof R->m));
    if (R->m.nx != R->o.nx || R->m.ny != R->o.ny || R->m.alpha != R->o.alpha ||
        R->m.steps != R->o.steps) {
        DIE("the checkpoint is of another run (%" PRId64 "x%" PRId64 ", %" PRId64 " ranks, %" PRId64
            " steps); remove it or use the same arguments",
            R->m.nx, R->m.ny, R->m.nranks, R->m.steps);
    }
    if (R->m.nranks != R->n && regrid(R)) {
        return 1;
    }
    for (int b = 0; b < 2; b++) {
        CHECK(dsm_gptr_local(row_of(R, b, R->me, 0), (void **)&R->local[b]));
    }
    if (R->me == 0) {
        fprintf(stderr, "heat: resumed at step %" PRId64 " of %" PRId64 "\n", R->m.step,
                R->m.steps);
    }
    return 0;
}

/* Fetch the neighbours' edge rows of the current buffer into our halo rows. */
static int exchange(struct run *R)
{
    int c = (int)R->m.cur;
    size_t rowbytes = sizeof(double) * (size_t)R->o.nx;
    dsm_request_t req[2];
    int nreq = 0;
    if (R->me > 0 && R->count > 0) { // row above ours: the last row of the rank above
        long above_count, above_first;
        my_rows(R->o.ny, R->me - 1, R->n, &above_first, &above_count);
        CHECK(
            dsm_get_nb(R->local[c], row_of(R, c, R->me - 1, above_count), rowbytes, &req[nreq++]));
    }
    if (R->me < R->n - 1 && R->count > 0) { // row below ours: the first of the rank below
        CHECK(dsm_get_nb(R->local[c] + (R->count + 1) * R->o.nx, row_of(R, c, R->me + 1, 1),
                         rowbytes, &req[nreq++]));
    }
    for (int k = 0; k < nreq; k++) {
        CHECK(dsm_wait(&req[k]));
    }
    return 0;
}

static void compute(struct run *R)
{
    const double *a = R->local[R->m.cur];
    double *b = R->local[1 - R->m.cur];
    long nx = R->o.nx;
    for (long k = 1; k <= R->count; k++) {
        for (long j = 1; j < nx - 1; j++) {
            b[k * nx + j] = stencil(a + (k - 1) * nx, a + k * nx, a + (k + 1) * nx, j, R->o.alpha);
        }
    }
}

static int advance(struct run *R)
{
    if (exchange(R)) {
        return 1;
    }
    compute(R);
    // Everyone has read the current buffer's edges before anyone overwrites them.
    CHECK(dsm_barrier());
    R->m.cur = 1 - R->m.cur;
    R->m.step++;
    if (R->me == 0) {
        CHECK(dsm_put(R->metag, &R->m, sizeof R->m));
    }
    if (R->o.ckpt_every ? R->m.step % R->o.ckpt_every == 0 : 1) {
        bool taken = false;
        CHECK(R->o.ckpt_every ? dsm_checkpoint() : dsm_checkpoint_maybe(&taken));
    }
    return 0;
}

/* Checksum of the whole grid in global row order, gathered on rank 0. */
static int checksum(struct run *R, uint64_t *out)
{
    uint64_t h = 14695981039346656037u;
    long nx = R->o.nx;
    double *row = malloc(sizeof(double) * (size_t)nx);
    for (long j = 0; j < nx; j++) {
        row[j] = initial(0, j, nx, R->o.ny);
    }
    h = fnv_rows(h, row, (size_t)nx); // the fixed top boundary
    for (int r = 0; r < R->n; r++) {
        long first, count;
        my_rows(R->o.ny, r, R->n, &first, &count);
        for (long k = 1; k <= count; k++) {
            CHECK(dsm_get(row, row_of(R, (int)R->m.cur, r, k), sizeof(double) * (size_t)nx));
            h = fnv_rows(h, row, (size_t)nx);
        }
    }
    for (long j = 0; j < nx; j++) {
        row[j] = initial(R->o.ny - 1, j, nx, R->o.ny);
    }
    h = fnv_rows(h, row, (size_t)nx); // the fixed bottom boundary
    free(row);
    *out = h;
    return 0;
}

static int run(struct run *R)
{
    uint64_t epoch = 0;
    int rc = dsm_restarted(&epoch) ? resume(R) : fresh_start(R);
    if (rc) {
        return rc;
    }
    double t0 = MPI_Wtime();
    long start = R->m.step, tick = R->o.steps >= 10 ? R->o.steps / 10 : 1;
    while (R->m.step < R->o.steps) {
        if (advance(R)) {
            return 1;
        }
        if (R->o.progress && R->me == 0 && R->m.step % tick == 0) {
            fprintf(stderr, "heat: step %" PRId64 "/%ld\n", R->m.step, R->o.steps);
        }
    }
    double dt = MPI_Wtime() - t0;
    uint64_t h = 0;
    if (R->me == 0 && checksum(R, &h)) {
        return 1;
    }
    int ok = 1;
    if (R->me == 0) {
        printf("heat: %ldx%ld, %ld steps on %d ranks, %.3f ms/step, checksum %016" PRIx64 "\n",
               R->o.nx, R->o.ny, R->o.steps, R->n,
               R->m.step > start ? dt * 1e3 / (double)(R->m.step - start) : 0.0, h);
        if (R->o.verify) {
            uint64_t s = serial(&R->o);
            ok &= s == h;
            printf("heat: serial checksum %016" PRIx64 ": %s\n", s, s == h ? "equal" : "DIFFERENT");
        }
        if (R->o.have_expect) {
            ok &= R->o.expect == h;
            printf("heat: expected %016" PRIx64 ": %s\n", R->o.expect,
                   R->o.expect == h ? "equal" : "DIFFERENT");
        }
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, dsm_comm());
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct run R;
    memset(&R, 0, sizeof R);
    int p = parse(argc, argv, &R.o);
    if (p) {
        usage(p == 1 ? stdout : stderr);
        return p == 1 ? 0 : 2;
    }
    if (dsm_init(&argc, &argv) != DSM_OK) {
        fprintf(stderr, "heat: dsm_init failed: %s\n", dsm_last_error());
        return 1;
    }
    R.me = dsm_rank();
    R.n = dsm_nranks();
    if (R.n > R.o.ny - 2) {
        if (R.me == 0) {
            fprintf(stderr, "heat: %d ranks need a grid of at least %d rows\n", R.n, R.n + 2);
        }
        dsm_finalize();
        return 2;
    }
    my_rows(R.o.ny, R.me, R.n, &R.first, &R.count);
    R.maxrows = (R.o.ny - 2 + R.n - 1) / R.n;
    int rc = run(&R);
    dsm_finalize();
    return rc;
}
