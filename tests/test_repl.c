/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Replicated objects (src/repl.c): concurrent writers are ordered, compare-and-swap is
 * linearizable, torn copies are detected and repaired, the objects survive a restart
 * (dsm_finalize + dsm_init with DSM_RESTART=auto stands in for dsmrun's relaunch) with a
 * minority of their holders' stores lost, re-create the lost copies, and report
 * DSM_ERR_QUORUM naming the object when a majority is lost. Bad input gets clear codes.
 * DSM_STATS counts their writes, reads, compare-and-swaps and repaired copies exactly.
 * Runs on the direct path by default and on the MPI path with DSM_DIRECT=0.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/repl.h"
#include "harness.h"

static int me, n;
static char store[512]; // this rank's store file

static void test_repl_setup(void)
{
    me = harness_rank();
    n = harness_nranks();
    snprintf(store, sizeof store, "%s/rank-%d.store", dsmi_repl_dir(), me);
    CU_ASSERT_EQUAL(access(store, F_OK), 0);
}

/* Every rank writes its own 8 bytes of one object at once: a write is a whole new
 * version, so unordered writers would lose each other's bytes. The object is large
 * (256 KiB) so that each write lasts long enough for writers to overlap. */
static void test_repl_concurrent_writers(void)
{
    dsm_repl_t o = NULL;
    H_OK(dsm_repl_alloc("writers", 256 << 10, 3, &o));
    for (uint64_t i = 1; i <= 100; i++) {
        uint64_t v = (uint64_t)me * 10000 + i;
        H_OK(dsm_repl_write(o, 8 * (size_t)me, &v, sizeof v));
    }
    H_OK(dsm_barrier());
    for (int r = 0; r < n; r++) {
        uint64_t v = 0;
        H_OK(dsm_repl_read(o, 8 * (size_t)r, &v, sizeof v));
        CU_ASSERT_EQUAL(v, (uint64_t)r * 10000 + 100);
    }
    H_OK(dsm_barrier());
}

/* A shared counter incremented with compare-and-swap: no increment is lost. */
static void test_repl_cas_counter(void)
{
    dsm_repl_t o = NULL;
    H_OK(dsm_repl_alloc("counter", 16, 3, &o));
    for (int i = 0; i < 200; i++) {
        uint64_t cur = 0, old = 0;
        bool done = false;
        H_OK(dsm_repl_read(o, 8, &cur, sizeof cur));
        for (int k = 0; k < 10000 && !done; k++) {
            H_OK(dsm_repl_cas_u64(o, 8, cur, cur + 1, &old));
            done = old == cur;
            cur = old;
        }
        CU_ASSERT_TRUE(done);
    }
    H_OK(dsm_barrier());
    uint64_t v = 0;
    H_OK(dsm_repl_read(o, 8, &v, sizeof v));
    CU_ASSERT_EQUAL(v, 200 * (uint64_t)n);
    H_OK(dsm_barrier());
}

/* Flip one data byte of copy c of o's current version, on its holder. */
static void damage(dsm_repl_t o, int c)
{
    int rank = -1;
    void *addr = NULL;
    H_OK(dsmi_repl_copy_slot(o, c, &rank, &addr));
    if (rank == me) {
        ((unsigned char *)addr)[40] ^= 0x5a;
    }
    H_OK(dsm_barrier());
}

/* Copies 0 and 1 torn: a reader that holds no cache and reaches them before copy 2
 * (any rank but copy 2's holder: the nearest-first order is self, then copy order)
 * gets copy 2's intact value and repairs them, so when copy 2 is torn next, another
 * reader still gets the value from a repaired one. */
static void test_repl_torn_copies(void)
{
    dsm_repl_t o = NULL;
    char msg[64] = "the value every copy must hold", got[64];
    H_OK(dsm_repl_alloc("torn", sizeof msg, 3, &o));
    int h2 = -1, r1, r2;
    void *addr;
    H_OK(dsmi_repl_copy_slot(o, 2, &h2, &addr));
    r1 = (h2 + 1) % n == 0 ? (h2 + 2) % n : (h2 + 1) % n; // rank 0 writes: it has a cache
    r2 = (r1 + 1) % n == 0 ? (r1 + 2) % n : (r1 + 1) % n;
    if (me == 0) {
        H_OK(dsm_repl_write(o, 0, msg, sizeof msg));
    }
    H_OK(dsm_barrier());
    damage(o, 0);
    damage(o, 1);
    dsm_stats_t a, b;
    H_OK(dsm_stats(&a));
    if (me == r1) {
        H_OK(dsm_repl_read(o, 0, got, sizeof got));
        CU_ASSERT_STRING_EQUAL(got, msg);
        H_OK(dsm_stats(&b));
        CU_ASSERT_EQUAL(b.repl_repairs - a.repl_repairs, 2); // copies 0 and 1
    }
    H_OK(dsm_barrier());
    damage(o, 2);
    H_OK(dsm_stats(&a));
    if (me == r2 && r2 != r1) {
        memset(got, 0, sizeof got);
        H_OK(dsm_repl_read(o, 0, got, sizeof got));
        CU_ASSERT_STRING_EQUAL(got, msg);
        H_OK(dsm_stats(&b));
        // copy 2 only when it comes first (r2 holds it), else a repaired copy served
        CU_ASSERT_EQUAL(b.repl_repairs - a.repl_repairs, r2 == h2 ? 1 : 0);
    }
    H_OK(dsm_barrier());
}

/* DSM_STATS counts each rank's own calls exactly: N writes count N, as do reads and
 * compare-and-swaps (swapped or not); n = 0 and failed calls count nothing, and intact
 * copies are never counted as repaired. */
static void test_repl_stats(void)
{
    dsm_repl_t o = NULL;
    dsm_stats_t a, b, c;
    H_OK(dsm_repl_alloc("stats", 8 * (size_t)n, n < 3 ? n : 3, &o));
    H_OK(dsm_stats(&a));
    const uint64_t writes = 5 + (uint64_t)me, reads = 7 + 2 * (uint64_t)me, cas = 4;
    uint64_t v = 0, old = 0;
    for (uint64_t i = 1; i <= writes; i++) {
        H_OK(dsm_repl_write(o, 8 * (size_t)me, &i, sizeof i));
    }
    H_OK(dsm_repl_write(o, 0, &v, 0));
    for (uint64_t i = 0; i < reads; i++) {
        H_OK(dsm_repl_read(o, 8 * (size_t)me, &v, sizeof v));
        CU_ASSERT_EQUAL(v, writes);
    }
    for (uint64_t i = 0; i < cas; i++) { // swaps when i is even, fails when odd
        uint64_t want = writes + i / 2;
        H_OK(dsm_repl_cas_u64(o, 8 * (size_t)me, i % 2 ? want + 7 : want, want + 1, &old));
        CU_ASSERT_EQUAL(old, i % 2 ? want + 1 : want);
    }
    H_OK(dsm_stats(&b));
    CU_ASSERT_EQUAL(b.repl_writes - a.repl_writes, writes);
    CU_ASSERT_EQUAL(b.repl_reads - a.repl_reads, reads);
    CU_ASSERT_EQUAL(b.repl_cas - a.repl_cas, cas);
    CU_ASSERT_EQUAL(b.repl_repairs - a.repl_repairs, 0);
    H_EXPECT(dsm_repl_write(o, 8 * (size_t)n, &v, sizeof v), DSM_ERR_RANGE);
    H_EXPECT(dsm_repl_read(o, 8 * (size_t)n, &v, sizeof v), DSM_ERR_RANGE);
    H_OK(dsm_stats(&c));
    CU_ASSERT_EQUAL(c.repl_writes, b.repl_writes);
    CU_ASSERT_EQUAL(c.repl_reads, b.repl_reads);
    H_OK(dsm_barrier());
    H_OK(dsm_repl_free(o));
}

static void test_repl_bad_input(void)
{
    dsm_repl_t o = NULL, p = NULL;
    uint64_t v = 0;
    H_EXPECT(dsm_repl_alloc(NULL, 8, 1, &o), DSM_ERR_ARG);
    H_EXPECT(dsm_repl_alloc("x", 0, 1, &o), DSM_ERR_ARG);
    H_EXPECT(dsm_repl_alloc("x", 8, 0, &o), DSM_ERR_ARG);
    H_EXPECT(dsm_repl_alloc("x", 8, n + 1, &o), DSM_ERR_ARG);
    H_EXPECT(dsm_repl_alloc("x", 8, 1, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_repl_alloc("a-name-that-is-longer-than-31-chars", 8, 1, &o), DSM_ERR_ARG);
    H_EXPECT(dsm_repl_alloc("x", 8 + (size_t)me, 1, &o), n > 1 ? DSM_ERR_ARG : DSM_OK);
    H_EXPECT(dsm_repl_alloc("writers", 8, 1, &o), DSM_ERR_BUSY);
    H_OK(dsm_repl_alloc("bad", 16, 2, &o));
    H_EXPECT(dsm_repl_write(o, 9, &v, 8), DSM_ERR_RANGE);
    H_EXPECT(dsm_repl_write(o, 0, NULL, 8), DSM_ERR_ARG);
    H_EXPECT(dsm_repl_read(o, 16, &v, 1), DSM_ERR_RANGE);
    H_EXPECT(dsm_repl_cas_u64(o, 4, 0, 1, &v), DSM_ERR_ARG);
    H_EXPECT(dsm_repl_cas_u64(o, 8, 0, 1, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_repl_attach("nothing", &p), DSM_ERR_NOTFOUND);
    H_OK(dsm_repl_attach("bad", &p));
    CU_ASSERT_PTR_EQUAL(p, o);
    H_OK(dsm_repl_free(o));
    H_EXPECT(dsm_repl_write(o, 0, &v, 8), DSM_ERR_INVALID);
    H_EXPECT(dsm_repl_free(o), DSM_ERR_INVALID);
    H_EXPECT(dsm_repl_write(NULL, 0, &v, 8), DSM_ERR_INVALID);
    H_OK(dsm_barrier());
}

/* Restart with DSM_RESTART=auto after the ranks in lose (bits) lost their stores. */
static void restart(unsigned lose)
{
    H_OK(dsm_finalize());
    if (lose & (1u << me)) {
        CU_ASSERT_EQUAL(unlink(store), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    setenv("DSM_RESTART", "auto", 1);
    H_OK(dsm_init(NULL, NULL));
    unsetenv("DSM_RESTART");
}

/* The holders of copies in mask (bits) of object name. */
static unsigned holders(const char *name, unsigned mask)
{
    dsm_repl_t o = NULL;
    unsigned set = 0;
    H_OK(dsm_repl_attach(name, &o));
    for (int c = 0; c < 3; c++) {
        int rank = -1;
        void *addr;
        if ((mask & (1u << c)) && dsmi_repl_copy_slot(o, c, &rank, &addr) == DSM_OK) {
            set |= 1u << rank;
        }
    }
    return set;
}

static void check_value(const char *name, uint64_t want)
{
    dsm_repl_t o = NULL;
    uint64_t v = 0;
    H_OK(dsm_repl_attach(name, &o));
    H_OK(dsm_repl_read(o, 0, &v, sizeof v));
    CU_ASSERT_EQUAL(v, want);
    if (v != want) {
        fprintf(stderr, "rank %d: '%s' holds %llu, not %llu\n", me, name, (unsigned long long)v,
                (unsigned long long)want);
    }
    H_OK(dsm_barrier()); // before anyone writes again
}

/* Losing one holder's store, then another's: each restart rebuilds the object from the
 * majority and re-creates the lost copy. Losing two at once loses the object. */
static void test_repl_restart(void)
{
    if (n < 3) {
        return;
    }
    dsm_repl_t o = NULL;
    H_OK(dsm_repl_alloc("kept", 8, 3, &o));
    for (uint64_t v = 1; v <= 3; v++) {
        if (me == n - 1) {
            H_OK(dsm_repl_write(o, 0, &v, sizeof v));
        }
    }
    restart(0);
    check_value("kept", 3);
    restart(holders("kept", 1));
    check_value("kept", 3);
    if (me == 0) {
        uint64_t v = 4;
        H_OK(dsm_repl_attach("kept", &o));
        H_OK(dsm_repl_write(o, 0, &v, sizeof v));
    }
    H_OK(dsm_barrier());
    restart(holders("kept", 2));
    check_value("kept", 4);
    restart(holders("kept", 3));
    H_EXPECT(dsm_repl_attach("kept", &o), DSM_ERR_QUORUM);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "'kept'"));
    H_OK(dsm_barrier());
    // Without DSM_RESTART the store starts empty.
    H_OK(dsm_finalize());
    H_OK(dsm_init(NULL, NULL));
    H_EXPECT(dsm_repl_attach("kept", &o), DSM_ERR_NOTFOUND);
}

/* rm -r of path (the other job's directories), depth first. */
static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* A job of the same name with another DSM_CKPT_DIR (a parameter sweep on one node) has
 * stores of its own: with DSM_RESTART=auto it finds none of this job's objects and
 * writes none of its files, and this job then finds its own again. */
static void test_repl_other_ckpt_dir(void)
{
    dsm_repl_t o = NULL;
    uint64_t v = 7;
    H_OK(dsm_repl_alloc("mine", 8, n < 3 ? n : 3, &o));
    if (me == 0) {
        H_OK(dsm_repl_write(o, 0, &v, sizeof v));
    }
    H_OK(dsm_barrier());
    char mine[512], other[512], theirs[512];
    snprintf(mine, sizeof mine, "%s", dsmi_repl_dir());
    const char *tmp = getenv("TMPDIR");
    snprintf(other, sizeof other, "%s/%s.other-ckpt", tmp && tmp[0] == '/' ? tmp : "/tmp",
             getenv("DSM_CKPT_JOB"));
    H_OK(dsm_finalize());
    setenv("DSM_CKPT_DIR", other, 1);
    setenv("DSM_RESTART", "auto", 1);
    H_OK(dsm_init(NULL, NULL));
    snprintf(theirs, sizeof theirs, "%s", dsmi_repl_dir());
    CU_ASSERT(strcmp(mine, theirs) != 0);
    H_EXPECT(dsm_repl_attach("mine", &o), DSM_ERR_NOTFOUND);
    H_OK(dsm_finalize());
    unsetenv("DSM_CKPT_DIR");
    MPI_Barrier(MPI_COMM_WORLD);
    if (me == 0) { // the other job's store directory (one node) and checkpoint directory
        char up[512];
        snprintf(up, sizeof up, "%s", theirs);
        *strrchr(up, '/') = '\0';
        CU_ASSERT_EQUAL(nftw(up, rm_one, 8, FTW_DEPTH | FTW_PHYS), 0);
        CU_ASSERT_EQUAL(nftw(other, rm_one, 8, FTW_DEPTH | FTW_PHYS) == 0 || errno == ENOENT, 1);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    H_OK(dsm_init(NULL, NULL));
    unsetenv("DSM_RESTART");
    CU_ASSERT_STRING_EQUAL(dsmi_repl_dir(), mine);
    check_value("mine", 7);
}

static void test_repl_off(void)
{
    dsm_repl_t o = NULL;
    H_OK(dsm_finalize());
    H_EXPECT(dsm_repl_alloc("x", 8, 1, &o), DSM_ERR_STATE);
    setenv("DSM_REPL_SIZE", "0", 1);
    H_OK(dsm_init(NULL, NULL));
    H_EXPECT(dsm_repl_alloc("x", 8, 1, &o), DSM_ERR_STATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "DSM_REPL_SIZE"));
    H_OK(dsm_finalize());
    unlink(store);
    MPI_Barrier(MPI_COMM_WORLD);
    if (me == 0) { // the last case: remove the job's store directory (<job>.<tag>)
        char up[512];
        snprintf(up, sizeof up, "%s", store);
        *strrchr(up, '/') = '\0';
        *strrchr(up, '/') = '\0';
        CU_ASSERT_EQUAL(nftw(up, rm_one, 8, FTW_DEPTH | FTW_PHYS), 0);
    }
    H_OK(dsm_init(NULL, NULL)); // DSM_REPL_SIZE=0: no store again
}

static CU_TestInfo cases[] = {
    {"setup", test_repl_setup},
    {"concurrent_writers", test_repl_concurrent_writers},
    {"cas_counter", test_repl_cas_counter},
    {"torn_copies", test_repl_torn_copies},
    {"stats", test_repl_stats},
    {"bad_input", test_repl_bad_input},
    {"restart", test_repl_restart},
    {"other_ckpt_dir", test_repl_other_ckpt_dir},
    {"off", test_repl_off},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    setenv("DSM_LOG_LEVEL", "none", 0); // the error cases would flood stderr
    setenv("DSM_REPL_SIZE", "4M", 0);
    setenv("DSM_STATS", "1", 1); // torn_copies and stats check the counters
    // One job name per launch (the ranks share their launcher's PID), so two lanes running
    // at once never share stores.
    char job[64];
    snprintf(job, sizeof job, "test_repl.%d", (int)getppid());
    setenv("DSM_CKPT_JOB", job, 1);
    unsetenv("DSM_RESTART");
    struct harness_suite s = {"repl", 1, true, cases};
    return harness_main(argc, argv, &s);
}
