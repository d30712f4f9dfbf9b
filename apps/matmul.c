/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * matmul: C = A * B on distributed arrays (dsm_array_*), computed two ways and checked
 * against the serial product.
 *
 *   dsmrun -n 4 apps/matmul [--n N] [--block B] [--help]
 *
 * A, B, C and C2 are N x N arrays of doubles, block-cyclic with B x B blocks over the
 * chosen process grid. Rank 0 writes A and B with one patch put each. Then:
 *  - owner computes: every rank fills its own elements of C in place (dsm_array_local),
 *    reading the rows and columns it needs with patch gets;
 *  - accumulate: rank r multiplies the r-th slice of the inner dimension (A's columns
 *    and B's rows k0..k1) and adds its partial product into all of C2 with one
 *    dsm_array_acc, which is atomic per element, so the ranks' sums meet correctly.
 * Rank 0 reads C and C2 back and compares them with its serial product. The entries are
 * small integers, so every sum is exact and the comparison is bit for bit.
 *
 * Exit status: 0 success and both results match, 1 a failed check or library error,
 * 2 bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpidsm.h"

#define CHECK(call)                                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != DSM_OK) {                                                                       \
            fprintf(stderr, "matmul: %s failed: %s\n", #call, dsm_last_error());                   \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static double a_of(long i, long j)
{
    return (double)((i * 7 + j * 3) % 11 - 5);
}

static double b_of(long i, long j)
{
    return (double)((i + 2 * j) % 13 - 6);
}

static int parse(int argc, char **argv, long *n, long *block)
{
    *n = 96;
    *block = 8;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf("usage: matmul [--n N] [--block B]\n");
            exit(0);
        }
        long *dst = !strcmp(argv[i], "--n") ? n : !strcmp(argv[i], "--block") ? block : NULL;
        char *end = NULL;
        if (dst == NULL || i + 1 >= argc) {
            return 2;
        }
        *dst = strtol(argv[++i], &end, 10);
        if (*end != '\0' || *dst < 1 || *dst > 2048) {
            return 2;
        }
    }
    return 0;
}

/* Rank 0: A and B from their formulas, one patch put each. */
static int init_inputs(dsm_array_t A, dsm_array_t B, long n, double *buf)
{
    int64_t lo[2] = {0, 0}, hi[2] = {n - 1, n - 1};
    for (long i = 0; i < n * n; i++) {
        buf[i] = a_of(i / n, i % n);
    }
    CHECK(dsm_array_put(A, lo, hi, buf, n));
    for (long i = 0; i < n * n; i++) {
        buf[i] = b_of(i / n, i % n);
    }
    CHECK(dsm_array_put(B, lo, hi, buf, n));
    return 0;
}

/* Owner computes: each local element of C from a row of A and a column of B; each row
 * and column this rank needs is read once, with one patch get. */
static int owner_computes(dsm_array_t A, dsm_array_t B, dsm_array_t C, long n)
{
    double *c = NULL;
    int64_t cnt[2] = {0, 0};
    CHECK(dsm_array_local(C, (void **)&c, cnt));
    double *row = malloc((size_t)n * 8), *cols = malloc((size_t)(n * (cnt[1] + 1)) * 8);
    if (row == NULL || cols == NULL) {
        return 1;
    }
    for (int64_t lj = 0; lj < cnt[1]; lj++) {
        int64_t l[2] = {0, lj}, g[2];
        CHECK(dsm_array_local_to_global(C, l, g));
        int64_t clo[2] = {0, g[1]}, chi[2] = {n - 1, g[1]};
        CHECK(dsm_array_get(B, clo, chi, cols + lj * n, 1)); // a column: one per row
    }
    for (int64_t li = 0; li < cnt[0]; li++) {
        int64_t l[2] = {li, 0}, g[2];
        CHECK(dsm_array_local_to_global(C, l, g));
        int64_t rlo[2] = {g[0], 0}, rhi[2] = {g[0], n - 1};
        CHECK(dsm_array_get(A, rlo, rhi, row, n));
        for (int64_t lj = 0; lj < cnt[1]; lj++) {
            double s = 0;
            for (long k = 0; k < n; k++) {
                s += row[k] * cols[lj * n + k];
            }
            c[li * cnt[1] + lj] = s;
        }
    }
    free(row);
    free(cols);
    return 0;
}

/* Accumulate: this rank's slice of the inner dimension, added into all of C2. */
static int accumulate(dsm_array_t A, dsm_array_t B, dsm_array_t C2, long n, double *part)
{
    int me = dsm_rank(), np = dsm_nranks();
    long k0 = n * me / np, k1 = n * (me + 1) / np; // [k0, k1)
    memset(part, 0, (size_t)(n * n) * 8);
    if (k1 > k0) {
        long w = k1 - k0;
        double *as = malloc((size_t)(n * w) * 8), *bs = malloc((size_t)(w * n) * 8);
        int64_t alo[2] = {0, k0}, ahi[2] = {n - 1, k1 - 1}, blo[2] = {k0, 0},
                bhi[2] = {k1 - 1, n - 1};
        if (as == NULL || bs == NULL) {
            return 1;
        }
        CHECK(dsm_array_get(A, alo, ahi, as, w));
        CHECK(dsm_array_get(B, blo, bhi, bs, n));
        for (long i = 0; i < n; i++) {
            for (long k = 0; k < w; k++) {
                for (long j = 0; j < n; j++) {
                    part[i * n + j] += as[i * w + k] * bs[k * n + j];
                }
            }
        }
        free(as);
        free(bs);
    }
    int64_t lo[2] = {0, 0}, hi[2] = {n - 1, n - 1};
    CHECK(dsm_array_acc(C2, lo, hi, part, n));
    return 0;
}

/* Rank 0: C and C2 against the serial product. */
static int verify(dsm_array_t C, dsm_array_t C2, long n, double *buf)
{
    int64_t lo[2] = {0, 0}, hi[2] = {n - 1, n - 1};
    double *buf2 = malloc((size_t)(n * n) * 8);
    long bad = 0, bad2 = 0;
    if (buf2 == NULL) {
        return 1;
    }
    CHECK(dsm_array_get(C, lo, hi, buf, n));
    CHECK(dsm_array_get(C2, lo, hi, buf2, n));
    for (long i = 0; i < n; i++) {
        for (long j = 0; j < n; j++) {
            double s = 0;
            for (long k = 0; k < n; k++) {
                s += a_of(i, k) * b_of(k, j);
            }
            bad += buf[i * n + j] != s;
            bad2 += buf2[i * n + j] != s;
        }
    }
    free(buf2);
    printf("matmul: %ldx%ld on %d ranks: owner-computes %s, accumulate %s the serial product\n", n,
           n, dsm_nranks(), bad ? "DIFFERS from" : "matches", bad2 ? "DIFFERS from" : "matches");
    return bad || bad2;
}

int main(int argc, char **argv)
{
    long n, block;
    if (parse(argc, argv, &n, &block) != 0) {
        fprintf(stderr, "matmul: bad arguments (see --help)\n");
        return 2;
    }
    if (dsm_init(&argc, &argv) != DSM_OK) {
        fprintf(stderr, "matmul: dsm_init failed: %s\n", dsm_last_error());
        return 1;
    }
    dsm_array_desc_t d = {DSM_ARRAY_DOUBLE, 2,
                          {n, n},           {DSM_DIST_BLOCK_CYCLIC, DSM_DIST_BLOCK_CYCLIC},
                          {block, block},   {0, 0}};
    dsm_array_t A, B, C, C2;
    CHECK(dsm_array_create(&d, &A));
    CHECK(dsm_array_create(&d, &B));
    CHECK(dsm_array_create(&d, &C));
    CHECK(dsm_array_create(&d, &C2));
    double *buf = malloc((size_t)(n * n) * 8);
    int rc = buf == NULL;
    if (rc == 0 && dsm_rank() == 0) {
        rc = init_inputs(A, B, n, buf);
    }
    CHECK(dsm_barrier());
    rc = rc ? rc : owner_computes(A, B, C, n);
    rc = rc ? rc : accumulate(A, B, C2, n, buf);
    CHECK(dsm_barrier()); // C's local stores and C2's sums are visible to all
    if (rc == 0 && dsm_rank() == 0) {
        rc = verify(C, C2, n, buf);
    }
    free(buf);
    int all = 0;
    MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, dsm_comm());
    CHECK(dsm_array_destroy(C2));
    CHECK(dsm_array_destroy(C));
    CHECK(dsm_array_destroy(B));
    CHECK(dsm_array_destroy(A));
    CHECK(dsm_finalize());
    return all;
}
