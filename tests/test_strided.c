/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * strided: 2-D patches (element sizes, element strides and leading dimensions on both
 * sides, transposes, 1-D strides), I/O vectors, their non-blocking forms, random shapes
 * checked element by element against dsm_get, and every bad input (zero strides,
 * overlapping elements or pieces, out-of-range patches, sizes MPI cannot express) with
 * nothing written on failure. Each case uses its own slice of one symmetric block.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define SLICE (1u << 18)
#define SLICES 8

static int me, n, right, left;
static uint64_t base;

static dsm_gptr_t at(int r, unsigned s, uint64_t off)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_gptr_make(r, base + (uint64_t)s * SLICE + off, &g));
    return g;
}

/* This rank's own slice s as a local pointer. */
static unsigned char *mine(unsigned s)
{
    void *p = NULL;
    H_OK(dsm_gptr_local(at(me, s, 0), &p));
    return p;
}

static void test_strided_setup(void)
{
    me = dsm_rank();
    n = dsm_nranks();
    right = (me + 1) % n;
    left = (me + n - 1) % n;
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_alloc_all((size_t)SLICES * SLICE, &g));
    base = dsm_gptr_offset(g);
    unsigned char *p = mine(0);
    if (p) {
        memset(p, 0xee, (size_t)SLICES * SLICE); // sentinel: untouched bytes stay 0xee
    }
    H_OK(dsm_barrier());
}

static void test_strided_teardown(void)
{
    H_OK(dsm_free_all(at(me, 0, 0)));
}

static double val(int rank, int i, int j)
{
    return rank * 10000.0 + i * 100.0 + j;
}

/* A 5 x 7 patch of doubles from a local 10 x 12 matrix (row-major, ld 12) at (2, 3)
 * into the right neighbour's 16 x 20 matrix (ld 20) at (4, 6); then read back into a
 * matrix with ld 9. Bytes outside the patch stay untouched. Slice 0. */
static void test_strided_patch_2d(void)
{
    double src[10 * 12], back[8 * 9];
    for (int i = 0; i < 10; i++) {
        for (int j = 0; j < 12; j++) {
            src[i * 12 + j] = val(me, i, j);
        }
    }
    dsm_stride_t p = {sizeof(double), {7, 5}, {1, 20}, {1, 12}};
    H_OK(dsm_put_strided(at(right, 0, (4 * 20 + 6) * 8), &src[2 * 12 + 3], &p));
    H_OK(dsm_barrier());
    const double *m = (const double *)mine(0);
    int bad = 0;
    for (int i = 0; m && i < 16; i++) {
        for (int j = 0; j < 20; j++) {
            bool in = i >= 4 && i < 9 && j >= 6 && j < 13;
            unsigned char raw[8];
            memcpy(raw, &m[i * 20 + j], 8);
            bad += in ? m[i * 20 + j] != val(left, i - 4 + 2, j - 6 + 3) : raw[0] != 0xee;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    memset(back, 0, sizeof back);
    dsm_stride_t q = {sizeof(double), {7, 5}, {1, 20}, {1, 9}};
    H_OK(dsm_get_strided(back, at(right, 0, (4 * 20 + 6) * 8), &q));
    bad = 0;
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 7; j++) {
            bad += back[i * 9 + j] != val(me, i + 2, j + 3);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    H_OK(dsm_barrier());
}

/* Element strides on both sides with odd element sizes, and a transpose: the local
 * side walks a column-major matrix (stride {ld, 1}) while the remote is row-major. */
static void test_strided_elements(void)
{
    const size_t sizes[] = {1, 4, 8, 12};
    unsigned char src[64 * 12 * 3], got[64 * 12 * 2];
    int bad = 0;
    for (size_t k = 0; k < 4; k++) {
        size_t es = sizes[k];
        for (size_t b = 0; b < sizeof src; b++) {
            src[b] = (unsigned char)(b * 7 + k + (size_t)me);
        }
        dsm_stride_t p = {es, {40, 1}, {3, 1}, {2, 1}}; // OpenSHMEM iput: tst 3, sst 2
        dsm_gptr_t dst = at(right, 1, k * 8192);
        H_OK(dsm_put_strided(dst, src, &p));
        dsm_stride_t q = {es, {40, 1}, {3, 1}, {1, 1}};
        H_OK(dsm_get_strided(got, dst, &q)); // complete: a blocking put came first
        for (size_t i = 0; i < 40; i++) {
            bad += memcmp(got + i * es, src + i * 2 * es, es) != 0;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    // transpose: remote row-major 6 x 4 (ld 4) <- local column-major 6 x 4 (ld 6)
    int32_t cm[4 * 6], rm[6 * 4];
    for (int c = 0; c < 4; c++) {
        for (int r = 0; r < 6; r++) {
            cm[c * 6 + r] = me * 1000 + r * 10 + c;
        }
    }
    dsm_stride_t t = {4, {4, 6}, {1, 4}, {6, 1}};
    H_OK(dsm_put_strided(at(right, 1, 65536), cm, &t));
    H_OK(dsm_get(rm, at(right, 1, 65536), sizeof rm));
    bad = 0;
    for (int r = 0; r < 6; r++) {
        for (int c = 0; c < 4; c++) {
            bad += rm[r * 4 + c] != me * 1000 + r * 10 + c;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    H_OK(dsm_barrier());
}

/* Non-blocking patches: several in flight to the right neighbour, waited, flushed;
 * then non-blocking gets of them. Slice 2. */
static void test_strided_nonblocking(void)
{
    enum { K = 8 };
    int64_t src[K][16], got[K][8];
    dsm_request_t req[K];
    dsm_stride_t p = {8, {4, 2}, {2, 16}, {1, 8}}; // 2 rows of 4, every other remote word
    for (int k = 0; k < K; k++) {
        for (int i = 0; i < 16; i++) {
            src[k][i] = me * 100000 + k * 100 + i;
        }
        H_OK(dsm_put_strided_nb(at(right, 2, (uint64_t)k * 1024), src[k], &p, &req[k]));
    }
    for (int k = 0; k < K; k++) {
        H_OK(dsm_wait(&req[k]));
    }
    H_OK(dsm_flush(right));
    H_OK(dsm_barrier());
    dsm_stride_t q = {8, {4, 2}, {2, 16}, {1, 4}};
    for (int k = 0; k < K; k++) {
        H_OK(dsm_get_strided_nb(got[k], at(me, 2, (uint64_t)k * 1024), &q, &req[k]));
    }
    int bad = 0;
    for (int k = 0; k < K; k++) {
        H_OK(dsm_wait(&req[k]));
        for (int j = 0; j < 2; j++) {
            for (int i = 0; i < 4; i++) {
                bad += got[k][j * 4 + i] != left * 100000 + k * 100 + j * 8 + i;
            }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    dsm_request_t empty;
    dsm_stride_t z = {8, {0, 3}, {1, 1}, {1, 1}};
    H_OK(dsm_put_strided_nb(at(right, 2, 0), src, &z, &empty)); // nothing to move
    H_OK(dsm_wait(&empty));
    H_OK(dsm_barrier());
}

/* Random shapes (seeded): dsm_get_strided agrees with one dsm_get per element, and a
 * dsm_put_strided of a shape lands exactly where per-element reasoning says. Slice 3. */
static void test_strided_random_shapes(void)
{
    unsigned seed = harness_seed() + (unsigned)me;
    unsigned char *local = malloc(65536), *ref = malloc(65536);
    unsigned char *img = mine(3);
    int bad = 0;
    for (size_t b = 0; img && b < 65536; b++) {
        img[b] = (unsigned char)(b * 13 + (size_t)me);
    }
    H_OK(dsm_barrier());
    for (int it = 0; it < 40 && local && ref; it++) {
        dsm_stride_t p;
        p.elem_size = 1 + (size_t)rand_r(&seed) % 9;
        p.count[0] = 1 + (size_t)rand_r(&seed) % 6;
        p.count[1] = 1 + (size_t)rand_r(&seed) % 6;
        p.remote_stride[0] = 1 + (size_t)rand_r(&seed) % 3;
        p.remote_stride[1] = p.count[0] * p.remote_stride[0] + (size_t)rand_r(&seed) % 4;
        p.local_stride[0] = 1 + (size_t)rand_r(&seed) % 3;
        p.local_stride[1] = p.count[0] * p.local_stride[0] + (size_t)rand_r(&seed) % 4;
        uint64_t off = (uint64_t)(rand_r(&seed) % 1000);
        memset(local, 0, 65536);
        memset(ref, 0, 65536);
        H_OK(dsm_get_strided(local, at(right, 3, off), &p));
        for (size_t j = 0; j < p.count[1]; j++) {
            for (size_t i = 0; i < p.count[0]; i++) {
                size_t es = p.elem_size;
                size_t r = (i * p.remote_stride[0] + j * p.remote_stride[1]) * es;
                size_t l = (i * p.local_stride[0] + j * p.local_stride[1]) * es;
                H_OK(dsm_get(ref + l, at(right, 3, off + r), es));
            }
        }
        bad += memcmp(local, ref, 65536) != 0;
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(local);
    free(ref);
    H_OK(dsm_barrier());
}

/* I/O vectors: scattered pieces of different lengths, given out of order, to the right
 * neighbour and back; the non-blocking forms too. Slice 4. */
static void test_strided_iov(void)
{
    char a[100], b[3], c[517], ga[100], gb[3], gc[517];
    memset(a, 'a' + me, sizeof a);
    memset(b, 'k' + me, sizeof b);
    memset(c, 'u' + me, sizeof c);
    dsm_iov_t v[4] = {{c, 9000, sizeof c}, {a, 0, sizeof a}, {NULL, 5, 0}, {b, 200, sizeof b}};
    H_OK(dsm_putv(at(right, 4, 0), v, 4));
    dsm_iov_t w[3] = {{ga, 0, sizeof ga}, {gb, 200, sizeof gb}, {gc, 9000, sizeof gc}};
    H_OK(dsm_getv(at(right, 4, 0), w, 3));
    CU_ASSERT(!memcmp(a, ga, sizeof a) && !memcmp(b, gb, sizeof b) && !memcmp(c, gc, sizeof c));
    H_OK(dsm_barrier());
    const unsigned char *m = mine(4);
    CU_ASSERT(m && m[100] == 0xee && m[199] == 0xee && m[203] == 0xee && m[9517] == 0xee);
    CU_ASSERT(m && m[0] == 'a' + left && m[202] == 'k' + left && m[9516] == 'u' + left);
    H_OK(dsm_barrier());
    dsm_request_t r1, r2;
    memset(a, 'A' + me, sizeof a);
    dsm_iov_t x[1] = {{a, 40000, sizeof a}};
    H_OK(dsm_putv_nb(at(right, 4, 0), x, 1, &r1));
    H_OK(dsm_wait(&r1));
    H_OK(dsm_flush(right));
    memset(ga, 0, sizeof ga);
    dsm_iov_t y[2] = {{ga, 40000, 50}, {ga + 50, 40050, 50}};
    H_OK(dsm_getv_nb(at(right, 4, 0), y, 2, &r2));
    H_OK(dsm_wait(&r2));
    CU_ASSERT(!memcmp(a, ga, sizeof a));
    H_OK(dsm_putv(at(right, 4, 0), NULL, 0)); // nothing to move
    H_OK(dsm_barrier());
}

static void test_strided_bad_input(void)
{
    double buf[64] = {0};
    dsm_request_t req;
    dsm_gptr_t g = at(right, 5, 0);
    dsm_stride_t ok = {8, {4, 3}, {1, 8}, {1, 4}};
    dsm_stride_t p = ok;
    H_EXPECT(dsm_put_strided(g, buf, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_put_strided(g, NULL, &p), DSM_ERR_ARG);
    p.elem_size = 0;
    H_EXPECT(dsm_put_strided(g, buf, &p), DSM_ERR_ARG);
    p = ok;
    p.remote_stride[0] = 0;
    H_EXPECT(dsm_put_strided(g, buf, &p), DSM_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "dsm_put_strided"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "zero stride"));
    p = ok;
    p.local_stride[1] = 0;
    H_EXPECT(dsm_get_strided(buf, g, &p), DSM_ERR_ARG);
    // rows of 4 elements two apart: remote elements overlap, nothing is written
    p = ok;
    p.remote_stride[1] = 2;
    H_EXPECT(dsm_put_strided(g, buf, &p), DSM_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "overlap"));
    p = ok; // stride {2, 3} with 3 x 3: 2i + 3j is distinct for i, j < 3: accepted
    p.count[0] = 3;
    p.remote_stride[0] = 2;
    p.remote_stride[1] = 3;
    H_OK(dsm_put_strided(g, buf, &p));
    p.count[0] = 4; // now 3*2 == 2*3: element (3,0) meets (0,2)
    H_EXPECT(dsm_put_strided(g, buf, &p), DSM_ERR_ARG);
    // out of range: past the segment's end, inside the header, extent overflow
    dsm_topo_t t;
    H_OK(dsm_topology(&t));
    dsm_gptr_t end, hdr;
    H_OK(dsm_gptr_make(right, t.segment_size - 8 * 19, &end)); // the patch spans 8 * 20
    p = ok;
    H_EXPECT(dsm_put_strided(end, buf, &p), DSM_ERR_RANGE);
    hdr.bits = (uint64_t)right << DSM_GPTR_OFFSET_BITS | 64;
    H_EXPECT(dsm_get_strided(buf, hdr, &p), DSM_ERR_RANGE);
    p.remote_stride[1] = SIZE_MAX / 2;
    H_EXPECT(dsm_put_strided(g, buf, &p), DSM_ERR_RANGE);
    p = ok;
    p.count[0] = (size_t)1 << 20;
    p.count[1] = (size_t)1 << 12;
    p.local_stride[1] = p.remote_stride[1] = (size_t)1 << 20;
    H_EXPECT(dsm_put_strided(g, buf, &p), DSM_ERR_ARG); // 32 GiB in one call
    p = ok;
    H_EXPECT(dsm_put_strided_nb(g, buf, &p, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_get_strided_nb(buf, g, NULL, &req), DSM_ERR_ARG);
    // vectors
    char c[16] = {0};
    dsm_iov_t v[2] = {{c, 0, 8}, {c, 4, 8}};
    H_EXPECT(dsm_putv(g, NULL, 2), DSM_ERR_ARG);
    H_EXPECT(dsm_putv(g, v, 2), DSM_ERR_ARG); // remote [0,8) and [4,12) overlap
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "overlap"));
    dsm_iov_t v2[2] = {{c, 0, 8}, {c + 8, 4, 8}};
    H_OK(dsm_getv(g, v2, 2)); // overlapping remote reads are fine
    dsm_iov_t w[2] = {{c, 0, 8}, {c + 4, 1000, 8}};
    H_EXPECT(dsm_getv(g, w, 2), DSM_ERR_ARG); // local pieces overlap
    H_OK(dsm_putv(g, w, 2));                  // overlapping local reads are fine
    dsm_iov_t u[1] = {{NULL, 0, 8}};
    H_EXPECT(dsm_putv(g, u, 1), DSM_ERR_ARG);
    dsm_iov_t far[1] = {{c, t.segment_size, 8}};
    H_EXPECT(dsm_putv(g, far, 1), DSM_ERR_RANGE);
    dsm_iov_t huge[1] = {{c, UINT64_MAX - 2, 8}};
    H_EXPECT(dsm_getv(g, huge, 1), DSM_ERR_ARG);
    H_EXPECT(dsm_putv_nb(g, v, 1, NULL), DSM_ERR_ARG);
    H_OK(dsm_barrier());
    // the refused 4 x 3 put with strides {2, 3} would have written element 12 (bytes
    // 96..103); the accepted calls wrote elements up to 10 and bytes 1000..1007
    const unsigned char *m = mine(5);
    CU_ASSERT(m && m[96] == 0xee && m[103] == 0xee && m[1000] != 0xee);
    H_OK(dsm_barrier());
}

static CU_TestInfo cases[] = {
    {"setup", test_strided_setup},
    {"patch_2d", test_strided_patch_2d},
    {"elements", test_strided_elements},
    {"nonblocking", test_strided_nonblocking},
    {"random_shapes", test_strided_random_shapes},
    {"iov", test_strided_iov},
    {"bad_input", test_strided_bad_input},
    {"teardown", test_strided_teardown},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_LOG_LEVEL", "none", 0); // the error cases would flood stderr
    struct harness_suite s = {"strided", 1, true, cases};
    return harness_main(argc, argv, &s);
}
