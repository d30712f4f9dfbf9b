/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * ckpt: checkpoint/restart round trips, the FTI-style disruption matrix (delete, truncate
 * or bit-flip a rank's file, its partner copy, both, the commit record; a checkpoint of
 * another rank count, format or heap size; a full disk; a crash before commit), named
 * roots, protected regions, retention, the interval, simulated failure + recovery of
 * each rank in turn, and the heap and sync state after a restore (valid, as at the
 * checkpoint; an image with damaged heap metadata but good CRCs is rejected); the tree
 * (links never followed), job names and program identity, unreadable job directories,
 * thousands of epoch directories, and wrong-but-intact files condemned once.
 *
 * Every case starts and stops mpidsm itself (the harness owns MPI) under its own job
 * name in a per-run directory made by rank 0 (mkdtemp) and removed at the end. Files
 * are disrupted by rank 0 between dsm_finalize and the next dsm_init, fenced by
 * MPI_Barrier. Data live in one symmetric heap block (dsm_alloc_all) made by a fresh
 * start and found again after a restart through the root "blk" (the heap's block
 * headers are in the segment, so the tests never write outside their blocks).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h" // dsmi_ckpt_hdr_crc and the header, to forge headers
#include "heap.h" // dsmi_heap_check
#include "win.h"  // the sync region's place, to see it cleared
#include "harness.h"

#define PATTERN_LEN (200u << 10) // bytes of pattern per rank
#define RING_AT PATTERN_LEN      // the ring node, right after the pattern
#define BLK_LEN (RING_AT + 64u)  // the symmetric block: pattern, ring node
#define RING_OFF (blk + RING_AT)
#define NPROT 16

static char top[128]; // short, so paths built from it never truncate
static int me, n;
static uint64_t blk;         // user offset of the symmetric block (the same on every rank)
static uint64_t prot[NPROT]; // a protected rank-local region

struct node {
    uint64_t next; // dsm_gptr_t bits
    uint64_t val;
};

static unsigned char pat(int rank, int tag, size_t i)
{
    return (unsigned char)(rank * 37 + tag * 101 + i * 7 + (i >> 9));
}

static void bar(void)
{
    MPI_Barrier(MPI_COMM_WORLD);
}

/* Each case ("job" below) has its own checkpoint directory top/<job>; the job name in
 * it is always JOB, so a case can start from a copy of a prepared directory (the job
 * fingerprint in the headers must match), which saves a dsm_init per case. */
#define JOB "base"

/* Start mpidsm for case job with the given restart mode and replica setting. */
/* The case's data block: restored with the heap after a restart, else allocated. */
static void find_block(void)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    if (dsm_restarted(NULL)) {
        H_OK(dsm_root_get("blk", &g));
    } else {
        H_OK(dsm_alloc_all(BLK_LEN, &g));
        if (me == 0) {
            H_OK(dsm_root_set("blk", g));
        }
        H_OK(dsm_barrier());
    }
    blk = dsm_gptr_offset(g);
}

static int start(const char *job, const char *restart, bool replicas)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", top, job);
    setenv("DSM_CKPT_DIR", dir, 1);
    setenv("DSM_CKPT_JOB", JOB, 1);
    setenv("DSM_RESTART", restart, 1);
    setenv("DSM_CKPT_REPLICAS", replicas ? "1" : "0", 1);
    int rc = dsm_init(NULL, NULL);
    if (rc == DSM_OK) {
        me = dsm_rank();
        n = dsm_nranks();
        memset(prot, 0, sizeof prot);
        H_OK(dsm_ckpt_protect(prot, sizeof prot, "prot")); // refilled on restart
        find_block();
    }
    return rc;
}

static void *local(uint64_t off)
{
    dsm_gptr_t g;
    void *p = NULL;
    H_OK(dsm_gptr_make(me, off, &g));
    H_OK(dsm_gptr_local(g, &p));
    return p;
}

/* This rank's pattern, ring node and protected region for tag (collective). */
static void fill(int tag)
{
    unsigned char *p = local(blk);
    for (size_t i = 0; p && i < PATTERN_LEN; i++) {
        p[i] = pat(me, tag, i);
    }
    dsm_gptr_t next;
    H_OK(dsm_gptr_make((me + 1) % n, RING_OFF, &next));
    struct node *nd = local(RING_OFF);
    if (nd) {
        *nd = (struct node){next.bits, (uint64_t)tag * 1000 + (uint64_t)me};
    }
    for (int i = 0; i < NPROT; i++) {
        prot[i] = (uint64_t)tag * 100 + (uint64_t)me * 10 + (uint64_t)i;
    }
    H_OK(dsm_barrier());
    if (me == 0) {
        dsm_gptr_t head;
        H_OK(dsm_gptr_make(0, RING_OFF, &head));
        H_OK(dsm_root_set("ring", head));
    }
    H_OK(dsm_barrier());
}

/* Whether rank r's state is that of tag tags[r] (bytes, ring through the root,
 * protected region), checked on every rank; collective. */
static bool verify_tags(const int *tags)
{
    bool ok = true;
    unsigned char *p = local(blk);
    for (size_t i = 0; p && i < PATTERN_LEN; i++) {
        ok &= p[i] == pat(me, tags[me], i);
    }
    ok &= p != NULL;
    for (int i = 0; i < NPROT; i++) {
        ok &= prot[i] == (uint64_t)tags[me] * 100 + (uint64_t)me * 10 + (uint64_t)i;
    }
    dsm_gptr_t g = DSM_GPTR_NULL;
    H_OK(dsm_root_get("ring", &g));
    for (int hop = 0; hop < n && ok; hop++) { // every rank walks every pointer
        struct node nd = {0, 0};
        int rc = dsm_get(&nd, g, sizeof nd);
        ok &= rc == DSM_OK && dsm_gptr_rank(g) == hop &&
              nd.val == (uint64_t)tags[hop] * 1000 + (uint64_t)hop;
        g.bits = nd.next;
    }
    ok &= dsm_gptr_rank(g) == 0 && dsm_gptr_offset(g) == RING_OFF;
    H_OK(dsm_barrier());
    return harness_all(ok);
}

static bool verify(int tag)
{
    int tags[64];
    for (int r = 0; r < 64; r++) {
        tags[r] = tag;
    }
    return verify_tags(tags);
}

static void make_epochs(const char *job, bool replicas);

static void path(char *out, const char *job, uint64_t e, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s/" JOB "/%08llu/%s", top, job, (unsigned long long)e, name);
}

/* Case job starts with two committed epochs (tags 1, 2) and tag 3 written but never
 * checkpointed: a copy of a directory made once per replica setting. */
static void two_epochs(const char *job, bool replicas)
{
    static bool made[2];
    const char *base = replicas ? "base-rep" : "base-norep";
    if (!made[replicas]) {
        make_epochs(base, replicas);
        made[replicas] = true;
    }
    if (harness_rank() == 0) {
        char cmd[3 * PATH_MAX];
        snprintf(cmd, sizeof cmd, "cp -r %s/%s %s/%s", top, base, top, job);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
    bar();
}

static void make_epochs(const char *job, bool replicas)
{
    uint64_t e = 0;
    H_OK(start(job, "never", replicas));
    fill(1);
    H_OK(dsm_checkpoint());
    H_OK(dsm_ckpt_epoch(&e));
    CU_ASSERT_EQUAL(e, 1);
    fill(2);
    H_OK(dsm_checkpoint());
    H_OK(dsm_ckpt_epoch(&e));
    CU_ASSERT_EQUAL(e, 2);
    fill(3);
    H_OK(dsm_finalize());
}

/* Restart job (auto) and check it restored epoch want with tag's data (0: fresh). */
static void expect_restart(const char *job, bool replicas, uint64_t want, int tag)
{
    H_OK(start(job, "auto", replicas));
    uint64_t e = 0;
    bool r = dsm_restarted(&e);
    CU_ASSERT_EQUAL(r, want != 0);
    CU_ASSERT_EQUAL(e, want);
    if (want != 0) {
        CU_ASSERT_TRUE(verify(tag));
    }
    if (want != 0 || dsm_initialized()) {
        H_OK(dsm_finalize());
    }
}

/* ---- file disruptions (rank 0 only; callers fence with bar()) ---- */

static void remove_file(const char *job, uint64_t e, const char *name)
{
    char p[PATH_MAX];
    path(p, job, e, name);
    CU_ASSERT_EQUAL(unlink(p), 0);
}

static void truncate_file(const char *job, uint64_t e, const char *name)
{
    char p[PATH_MAX];
    struct stat st;
    path(p, job, e, name);
    CU_ASSERT_EQUAL(stat(p, &st), 0);
    CU_ASSERT_EQUAL(truncate(p, st.st_size / 2), 0);
}

static void flip_bit(const char *job, uint64_t e, const char *name, off_t at)
{
    char p[PATH_MAX];
    unsigned char b = 0;
    path(p, job, e, name);
    int fd = open(p, O_RDWR);
    CU_ASSERT(fd >= 0);
    CU_ASSERT_EQUAL(pread(fd, &b, 1, at), 1);
    b ^= 0x10;
    CU_ASSERT_EQUAL(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

/* Change a header field and fix the header CRC, as another job would have written it. */
enum forge { FORGE_NRANKS, FORGE_FORMAT };
static void forge(const char *job, uint64_t e, const char *name, enum forge what)
{
    char p[PATH_MAX];
    struct dsmi_ckpt_hdr h;
    path(p, job, e, name);
    int fd = open(p, O_RDWR);
    CU_ASSERT_EQUAL(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    if (what == FORGE_NRANKS) {
        h.nranks = harness_nranks() + 1;
    } else {
        h.format = DSMI_CKPT_FORMAT + 1;
    }
    h.hdr_crc = dsmi_ckpt_hdr_crc(&h);
    CU_ASSERT_EQUAL(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    close(fd);
}

/* Overwrite the heap block header in front of user offset at in rank's image and fix
 * both CRCs: the file check passes, only the heap's own validation can tell. */
static void corrupt_heap(const char *job, uint64_t e, const char *name, uint64_t at)
{
    char p[PATH_MAX];
    struct dsmi_ckpt_hdr h;
    path(p, job, e, name);
    int fd = open(p, O_RDWR);
    CU_ASSERT_EQUAL(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    size_t len = h.seg_len + h.reg_len;
    unsigned char *data = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    CU_ASSERT_EQUAL(pread(fd, data, len, sizeof h), (ssize_t)len);
    CU_ASSERT_EQUAL(dsmi_crc32c(0, data, len), h.data_crc); // intact before
    memset(data + at - 16, 0xA5, 16); // the header {size, tag} (heap_core.h: HDR)
    h.data_crc = dsmi_crc32c(0, data, len);
    h.hdr_crc = dsmi_ckpt_hdr_crc(&h);
    CU_ASSERT_EQUAL(pwrite(fd, data, len, sizeof h), (ssize_t)len);
    CU_ASSERT_EQUAL(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    free(data);
    close(fd);
}

static bool exists(const char *job, uint64_t e, const char *name)
{
    char p[PATH_MAX];
    struct stat st;
    path(p, job, e, name);
    return stat(p, &st) == 0;
}

/* Whether path p exists (as rank 0 sees it, without following a link); collective. */
static bool rank0_exists(const char *p)
{
    struct stat st;
    int yes = harness_rank() == 0 ? lstat(p, &st) == 0 : 0;
    MPI_Bcast(&yes, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return yes;
}

/* name: the file in epoch e that keeps owner's replica. src/replica.c picks the keeper
 * by node (rank + 1 on one node, the same local rank on the next node across nodes), so
 * the name is looked up rather than assumed; "" (and a failed assertion) when there is
 * not exactly one. */
static void replica_file(char *name, size_t cap, const char *job, uint64_t e, int owner)
{
    char pat[PATH_MAX], file[64];
    glob_t g;
    snprintf(file, sizeof file, "rank-*.replica-of-%d", owner);
    path(pat, job, e, file);
    name[0] = '\0';
    if (glob(pat, 0, NULL, &g) == 0) {
        CU_ASSERT_EQUAL(g.gl_pathc, 1);
        const char *slash = strrchr(g.gl_pathv[0], '/');
        snprintf(name, cap, "%s", slash ? slash + 1 : g.gl_pathv[0]);
        globfree(&g);
    } else {
        CU_FAIL("no replica file for the owner");
    }
}

/* ---- cases ---- */

static void test_ckpt_crc32c(void)
{
    const char *v = "123456789";
    CU_ASSERT_EQUAL(dsmi_crc32c(0, v, 9), 0xE3069283u);
    CU_ASSERT_EQUAL(dsmi_crc32c(dsmi_crc32c(0, v, 4), v + 4, 5), 0xE3069283u);
    unsigned char buf[1000];
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] = (unsigned char)(i * 13);
    }
    uint32_t whole = dsmi_crc32c(0, buf, sizeof buf);
    CU_ASSERT_EQUAL(dsmi_crc32c(dsmi_crc32c(0, buf, 333), buf + 333, 667), whole);
    buf[500] ^= 1;
    CU_ASSERT_NOT_EQUAL(dsmi_crc32c(0, buf, sizeof buf), whole);
}

static void make_top(void)
{
    if (harness_rank() == 0) {
        snprintf(top, sizeof top, "/tmp/dsm-test-ckpt-XXXXXX");
        CU_ASSERT_PTR_NOT_NULL(mkdtemp(top));
    }
    MPI_Bcast(top, sizeof top, MPI_CHAR, 0, MPI_COMM_WORLD);
}

/* Every byte, pointer, root and protected region comes back; files are private. */
static void test_ckpt_round_trip(void)
{
    make_top();
    two_epochs("trip", false);
    if (harness_rank() == 0) {
        char p[PATH_MAX], text[256] = "";
        struct stat st;
        char name[32];
        snprintf(name, sizeof name, "rank-%d.ckpt", 1 % harness_nranks());
        path(p, "trip", 2, name);
        CU_ASSERT(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
        path(p, "trip", 2, "");
        CU_ASSERT(stat(p, &st) == 0 && (st.st_mode & 0777) == 0700);
        path(p, "trip", 2, "COMMIT");
        FILE *f = fopen(p, "r");
        CU_ASSERT_PTR_NOT_NULL(f);
        if (f) {
            CU_ASSERT(fread(text, 1, sizeof text - 1, f) > 0);
            fclose(f);
        }
        char want[64];
        snprintf(want, sizeof want, "epoch 2\nranks %d\n", harness_nranks());
        CU_ASSERT_EQUAL(strncmp(text, want, strlen(want)), 0);
    }
    bar();
    expect_restart("trip", false, 2, 2);
    H_OK(start("trip", "never", false)); // never: the checkpoint is ignored
    CU_ASSERT_FALSE(dsm_restarted(NULL));
    H_OK(dsm_finalize());
}

static void test_ckpt_roots(void)
{
    H_OK(start("roots", "never", false));
    dsm_gptr_t g, got = DSM_GPTR_NULL;
    char name[40];
    H_OK(dsm_gptr_make(me, blk + 64 * (uint64_t)me, &g));
    snprintf(name, sizeof name, "root-of-%d", me);
    H_OK(dsm_root_set(name, g));
    H_OK(dsm_barrier());
    snprintf(name, sizeof name, "root-of-%d", (me + 1) % n);
    H_OK(dsm_root_get(name, &got));
    CU_ASSERT_EQUAL(dsm_gptr_rank(got), (me + 1) % n);
    CU_ASSERT_EQUAL(dsm_gptr_offset(got), blk + 64 * (uint64_t)((me + 1) % n));
    H_EXPECT(dsm_root_get("no-such-root", &got), DSM_ERR_NOTFOUND);
    H_EXPECT(dsm_root_get("", &got), DSM_ERR_ARG);
    H_EXPECT(dsm_root_get(NULL, &got), DSM_ERR_ARG);
    H_EXPECT(dsm_root_get("ring", NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_root_set("a-name-that-is-longer-than-31-chars", g), DSM_ERR_ARG);
    H_EXPECT(dsm_root_set("bad", (dsm_gptr_t){UINT64_MAX}), DSM_ERR_RANGE);
    H_OK(dsm_barrier());
    if (me == 0) { // overwrite; remove with the null pointer
        H_OK(dsm_root_set("shared", g));
        H_OK(dsm_root_set("gone", g));
        H_OK(dsm_root_set("gone", DSM_GPTR_NULL));
        H_EXPECT(dsm_root_set("gone", DSM_GPTR_NULL), DSM_ERR_NOTFOUND);
    }
    H_OK(dsm_barrier());
    if (me == n - 1) {
        H_OK(dsm_root_set("shared", g)); // the last writer wins
    }
    H_OK(dsm_barrier());
    H_OK(dsm_root_get("shared", &got));
    CU_ASSERT_EQUAL(dsm_gptr_rank(got), n - 1);
    H_EXPECT(dsm_root_get("gone", &got), DSM_ERR_NOTFOUND);
    H_OK(dsm_finalize());
}

static void test_ckpt_bad_input(void)
{
    H_EXPECT(dsm_checkpoint(), DSM_ERR_STATE);
    H_EXPECT(dsm_recover(), DSM_ERR_STATE);
    H_EXPECT(dsm_ckpt_protect(prot, 8, "x"), DSM_ERR_STATE);
    CU_ASSERT_FALSE(dsm_restarted(NULL));
    H_OK(start("bad", "never", false));
    uint64_t e;
    H_EXPECT(dsm_ckpt_epoch(&e), DSM_ERR_NOTFOUND);
    H_EXPECT(dsm_ckpt_epoch(NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_ckpt_protect(NULL, 8, "x"), DSM_ERR_ARG);
    H_EXPECT(dsm_ckpt_protect(prot, 0, "x"), DSM_ERR_ARG);
    H_EXPECT(dsm_ckpt_protect(prot, 8, ""), DSM_ERR_ARG);
    H_EXPECT(dsm_ckpt_protect(prot, 8, NULL), DSM_ERR_ARG);
    H_EXPECT(dsm_ckpt_unprotect("never-registered"), DSM_ERR_NOTFOUND);
    H_EXPECT(dsm_simulate_failure(-1), DSM_ERR_ARG);
    H_EXPECT(dsm_simulate_failure(n), DSM_ERR_ARG);
    H_EXPECT(dsm_simulate_failure(me), n > 1 ? DSM_ERR_ARG : DSM_OK); // must agree
    H_EXPECT(dsm_recover(), n > 1 ? DSM_OK : DSM_ERR_NOTFOUND);       // n > 1: nothing wiped
    H_OK(dsm_simulate_failure(n - 1));
    H_EXPECT(dsm_checkpoint(), DSM_ERR_STATE); // would overwrite good data with zeros
    H_EXPECT(dsm_recover(), DSM_ERR_NOTFOUND); // no checkpoint in this run
    bool taken = true;
    H_OK(dsm_checkpoint_maybe(&taken)); // DSM_CKPT_INTERVAL=0: never due
    CU_ASSERT_FALSE(taken);
    H_OK(dsm_finalize());
    setenv("DSM_CKPT_KEEP", "0", 1); // at least one epoch must be kept
    H_EXPECT(start("bad", "never", false), DSM_ERR_ENV);
    setenv("DSM_CKPT_KEEP", "2", 1);
}

/* Own file lost, cut short or flipped: the partner copy restores the newest epoch. */
static void own_file_case(const char *job, int victim, int how)
{
    char name[32];
    snprintf(name, sizeof name, "rank-%d.ckpt", victim % harness_nranks());
    two_epochs(job, true);
    if (harness_rank() == 0) {
        if (how == 0) {
            remove_file(job, 2, name);
        } else if (how == 1) {
            truncate_file(job, 2, name);
        } else {
            flip_bit(job, 2, name, 128 + 70000); // in the segment bytes
        }
    }
    bar();
    int nr = harness_nranks(); // one rank has no partner: back to the older epoch
    expect_restart(job, true, nr > 1 ? 2 : 1, nr > 1 ? 2 : 1);
}

static void test_ckpt_delete_own(void)
{
    own_file_case("del", 1, 0);
}

/* A large replica (19 MiB of data per rank, where the other cases' images are under
 * 1 MiB): the owner's file is deleted, so the restart reads the partner's, and every
 * byte must come back. */
#define BIG_LEN ((size_t)19 << 20)
static void test_ckpt_replica_pieces(void)
{
    static uint64_t big_off; // the segment comes back bit for bit: so does the offset
    int nr = harness_nranks(), victim = 1 % nr;
    dsm_gptr_t g = DSM_GPTR_NULL;
    unsigned char *p = NULL;
    const char *was = getenv("DSM_HEAP_SIZE");
    char saved[32] = "";
    snprintf(saved, sizeof saved, "%s", was ? was : "");
    setenv("DSM_HEAP_SIZE", "64M", 1); // room for BIG_LEN whatever an earlier case set
    H_OK(start("pieces", "never", true));
    H_OK(dsm_alloc(BIG_LEN, &g));
    H_OK(dsm_gptr_local(g, (void **)&p));
    big_off = dsm_gptr_offset(g);
    for (size_t i = 0; p && i < BIG_LEN; i++) {
        p[i] = pat(me, 7, i * 31);
    }
    fill(1);
    H_OK(dsm_checkpoint());
    H_OK(dsm_finalize());
    if (harness_rank() == 0 && nr > 1) {
        char name[32];
        snprintf(name, sizeof name, "rank-%d.ckpt", victim);
        remove_file("pieces", 1, name);
    }
    bar();
    H_OK(start("pieces", "auto", true));
    uint64_t e = 0;
    CU_ASSERT_TRUE(dsm_restarted(&e));
    CU_ASSERT_EQUAL(e, 1);
    CU_ASSERT_TRUE(verify(1));
    p = local(big_off);
    size_t bad = 0;
    for (size_t i = 0; p && i < BIG_LEN; i++) {
        bad += p[i] != pat(me, 7, i * 31);
    }
    CU_ASSERT_PTR_NOT_NULL(p);
    CU_ASSERT_EQUAL(bad, 0);
    H_OK(dsm_finalize());
    if (was) {
        setenv("DSM_HEAP_SIZE", saved, 1);
    } else {
        unsetenv("DSM_HEAP_SIZE");
    }
}

static void test_ckpt_truncate_own(void)
{
    own_file_case("trunc", 2, 1);
}

static void test_ckpt_bitflip_own(void)
{
    own_file_case("flip", 3, 2);
}

/* The partner copy alone is damaged: the own file is used. */
static void test_ckpt_partner_copy_lost(void)
{
    int nr = harness_nranks(), owner = 1 % nr;
    char name[64];
    two_epochs("partner", true);
    if (harness_rank() == 0 && nr > 1) {
        replica_file(name, sizeof name, "partner", 2, owner);
        CU_ASSERT_TRUE(exists("partner", 2, name));
        flip_bit("partner", 2, name, 20); // in the header
    }
    bar();
    expect_restart("partner", true, 2, 2);
}

/* Both copies of one rank bad: every rank falls back to the older epoch together. */
static void test_ckpt_both_copies(void)
{
    int nr = harness_nranks(), owner = 3 % nr;
    char name[64];
    two_epochs("both", true);
    if (harness_rank() == 0) {
        snprintf(name, sizeof name, "rank-%d.ckpt", owner);
        flip_bit("both", 2, name, 128 + 1000);
        if (nr > 1) {
            replica_file(name, sizeof name, "both", 2, owner);
            truncate_file("both", 2, name);
        }
    }
    bar();
    expect_restart("both", true, 1, 1);
    if (harness_rank() == 0) { // damaged: condemned, never tried again
        CU_ASSERT_FALSE(exists("both", 2, "COMMIT"));
        CU_ASSERT_TRUE(exists("both", 2, "COMMIT.rejected"));
    }
    bar();
    H_OK(start("both", "auto", true)); // goes straight to epoch 1 now
    uint64_t e = 0;
    CU_ASSERT_TRUE(dsm_restarted(&e));
    CU_ASSERT_EQUAL(e, 1);
    H_OK(dsm_checkpoint()); // epoch 3; retention keeps 3 and 1, drops the damaged 2
    bar();
    if (me == 0) {
        CU_ASSERT_FALSE(exists("both", 2, ""));
        CU_ASSERT_TRUE(exists("both", 1, "COMMIT"));
        CU_ASSERT_TRUE(exists("both", 3, "COMMIT"));
    }
    H_OK(dsm_finalize());
}

/* Without replicas, a lost file means the older epoch. */
static void test_ckpt_no_replica(void)
{
    two_epochs("norep", false);
    if (harness_rank() == 0) {
        remove_file("norep", 2, "rank-0.ckpt");
    }
    bar();
    expect_restart("norep", false, 1, 1);
}

/* Without its commit record an epoch does not count; a garbled record neither. */
static void test_ckpt_commit_record(void)
{
    two_epochs("commit", false);
    if (harness_rank() == 0) {
        remove_file("commit", 2, "COMMIT");
    }
    bar();
    expect_restart("commit", false, 1, 1);
    if (harness_rank() == 0) {
        char p[PATH_MAX];
        path(p, "commit", 1, "COMMIT");
        FILE *f = fopen(p, "w");
        CU_ASSERT_PTR_NOT_NULL(f);
        if (f) {
            fputs("garbage\n", f);
            fclose(f);
        }
    }
    bar();
    expect_restart("commit", false, 0, 0);            // auto: nothing valid, start fresh
    setenv("DSM_RESTART", "required", 1);             // DSM_CKPT_DIR is still this case's
    H_EXPECT(dsm_init(NULL, NULL), DSM_ERR_NOTFOUND); // on every rank alike
    CU_ASSERT_FALSE(dsm_initialized());
}

/* Images that say another rank count or format (header edited, CRC fixed) in an epoch
 * whose record says this job's are wrong files: rejected, and the epoch condemned. */
static void forged_case(const char *job, enum forge what)
{
    int nr = harness_nranks();
    two_epochs(job, true);
    if (harness_rank() == 0) {
        char name[64];
        for (int r = 0; r < nr; r++) {
            snprintf(name, sizeof name, "rank-%d.ckpt", r);
            forge(job, 2, name, what);
            if (nr > 1) {
                replica_file(name, sizeof name, job, 2, r);
                forge(job, 2, name, what);
            }
        }
    }
    bar();
    expect_restart(job, true, 1, 1);
    if (harness_rank() == 0) { // the record says this job's shape: wrong files, condemned
        CU_ASSERT_FALSE(exists(job, 2, "COMMIT"));
        CU_ASSERT_TRUE(exists(job, 2, "COMMIT.rejected"));
    }
    bar();
}

static void test_ckpt_other_rank_count_header(void)
{
    forged_case("ranks", FORGE_NRANKS);
}

static void test_ckpt_other_format(void)
{
    forged_case("format", FORGE_FORMAT);
}

/* An epoch whose record says another format is of another build: skipped and kept;
 * required names the cause (DSM_ERR_MISMATCH). */
static void test_ckpt_other_format_record(void)
{
    two_epochs("fmtrec", false);
    if (harness_rank() == 0) {
        char p[PATH_MAX], cmd[2 * PATH_MAX];
        path(p, "fmtrec", 2, "COMMIT");
        snprintf(cmd, sizeof cmd, "sed -i 's/^format .*/format %u/' %s", DSMI_CKPT_FORMAT + 1, p);
        CU_ASSERT_EQUAL(system(cmd), 0);
        path(p, "fmtrec", 1, "COMMIT");
        CU_ASSERT_EQUAL(unlink(p), 0);
    }
    bar();
    expect_restart("fmtrec", false, 0, 0);
    H_EXPECT(start("fmtrec", "required", false), DSM_ERR_MISMATCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "format"));
    char p[PATH_MAX];
    path(p, "fmtrec", 2, "COMMIT");
    CU_ASSERT_TRUE(rank0_exists(p));
}

/* A job of another heap size cannot use the checkpoint: auto starts fresh, required
 * fails on every rank with DSM_ERR_MISMATCH naming the cause. */
static void test_ckpt_other_heap_size(void)
{
    two_epochs("heap", true);
    setenv("DSM_HEAP_SIZE", "3M", 1);
    expect_restart("heap", true, 0, 0);
    setenv("DSM_RESTART", "required", 1);
    int rc = dsm_init(NULL, NULL);
    CU_ASSERT_NOT_EQUAL(rc, DSM_OK);
    CU_ASSERT_TRUE(harness_all(rc == DSM_ERR_MISMATCH));
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "DSM_HEAP_SIZE differs"));
    setenv("DSM_HEAP_SIZE", "2M", 1);
    char p[PATH_MAX];
    path(p, "heap", 2, "COMMIT"); // another shape is not damage: the epochs stay
    CU_ASSERT_TRUE(rank0_exists(p));
    // Most failures here are the expected outcome; set DSM_LOG_LEVEL=error to see them.
    setenv("DSM_LOG_LEVEL", "none", 0);
}

/* A real job of half the ranks (dsm_init_comm) takes a 4-rank checkpoint: it hosts
 * all 4 segments (segments outlive ranks; tests/test_ckpt_regroup.sh checks the data),
 * with DSM_RESTART=auto and required alike. */
static void test_ckpt_other_rank_count(void)
{
    int nr = harness_nranks();
    two_epochs("half", false);
    MPI_Comm half;
    MPI_Comm_split(MPI_COMM_WORLD, harness_rank() < nr / 2 ? 0 : MPI_UNDEFINED, 0, &half);
    if (half != MPI_COMM_NULL) {
        setenv("DSM_RESTART", "auto", 1);
        H_OK(dsm_init_comm(half));
        uint64_t e = 0;
        CU_ASSERT_TRUE(dsm_restarted(&e));
        CU_ASSERT_EQUAL(e, 2);
        CU_ASSERT_EQUAL(dsm_nsegments(), nr);
        CU_ASSERT_EQUAL(dsm_nranks(), nr / 2);
        H_OK(dsm_finalize());
        setenv("DSM_RESTART", "required", 1);
        H_OK(dsm_init_comm(half));
        CU_ASSERT_TRUE(dsm_restarted(NULL));
        CU_ASSERT_EQUAL(dsm_nsegments(), nr);
        H_OK(dsm_finalize());
        MPI_Comm_free(&half);
    }
    bar();
    expect_restart("half", false, 2, 2); // the full job still can
}

/* A full disk on one rank: DSM_ERR_IO everywhere, no trace of the epoch, the older one
 * intact and restorable. */
static void test_ckpt_full_disk(void)
{
    struct rlimit old, small = {64 << 10, 0};
    H_OK(start("full", "never", true));
    fill(1);
    H_OK(dsm_checkpoint());
    fill(2);
    signal(SIGXFSZ, SIG_IGN); // write fails with EFBIG instead of killing the process
    getrlimit(RLIMIT_FSIZE, &old);
    small.rlim_max = old.rlim_max;
    if (me == 1 % n) {
        CU_ASSERT_EQUAL(setrlimit(RLIMIT_FSIZE, &small), 0);
    }
    H_EXPECT(dsm_checkpoint(), DSM_ERR_IO);
    if (me == 1 % n) {
        setrlimit(RLIMIT_FSIZE, &old);
    }
    signal(SIGXFSZ, SIG_DFL);
    uint64_t e = 0;
    H_OK(dsm_ckpt_epoch(&e));
    CU_ASSERT_EQUAL(e, 1);
    bar();
    if (me == 0) {
        CU_ASSERT_FALSE(exists("full", 2, ""));
        CU_ASSERT_TRUE(exists("full", 1, "COMMIT"));
    }
    H_OK(dsm_finalize());
    expect_restart("full", true, 1, 1);
}

/* A crash after the files but before COMMIT: that epoch is ignored, its number is not
 * reused, and it is cleaned up after the next commit. */
static void test_ckpt_crash_before_commit(void)
{
    two_epochs("crash", false);
    if (harness_rank() == 0) {
        char cmd[3 * PATH_MAX];
        snprintf(cmd, sizeof cmd,
                 "cd %s/crash/" JOB " && cp -r 00000002 00000003 && "
                 "rm 00000003/COMMIT",
                 top);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
    bar();
    H_OK(start("crash", "auto", false));
    uint64_t e = 0;
    CU_ASSERT_TRUE(dsm_restarted(&e));
    CU_ASSERT_EQUAL(e, 2);
    CU_ASSERT_TRUE(verify(2));
    H_OK(dsm_checkpoint());
    H_OK(dsm_ckpt_epoch(&e));
    CU_ASSERT_EQUAL(e, 4);
    bar();
    if (me == 0) {
        CU_ASSERT_FALSE(exists("crash", 3, ""));
        CU_ASSERT_TRUE(exists("crash", 4, "COMMIT"));
    }
    H_OK(dsm_finalize());
}

/* DSM_CKPT_KEEP=2: after four checkpoints the two newest remain. */
static void test_ckpt_keep(void)
{
    uint64_t other[3] = {0, 0, 0}, small[2];
    setenv("DSM_CKPT_KEEP", "2", 1);
    H_OK(start("keep", "never", false));
    H_OK(dsm_ckpt_protect(other, sizeof other, "other"));
    for (int i = 1; i <= 4; i++) {
        fill(i);
        other[2] = (uint64_t)(i * 10 + me);
        H_OK(dsm_checkpoint());
    }
    bar();
    if (me == 0) {
        CU_ASSERT_FALSE(exists("keep", 1, ""));
        CU_ASSERT_FALSE(exists("keep", 2, ""));
        CU_ASSERT_TRUE(exists("keep", 3, "COMMIT"));
        CU_ASSERT_TRUE(exists("keep", 4, "COMMIT"));
    }
    H_OK(dsm_finalize());
    expect_restart("keep", false, 4, 4);
    H_OK(start("keep", "auto", false)); // a region comes back only at its own size
    other[2] = 0;
    H_EXPECT(dsm_ckpt_protect(small, sizeof small, "other"), DSM_ERR_ARG);
    H_OK(dsm_ckpt_protect(other, sizeof other, "other"));
    CU_ASSERT_EQUAL(other[2], (uint64_t)(40 + me));
    H_OK(dsm_finalize());
}

/* The interval is decided by rank 0 for everyone. */
static void test_ckpt_maybe(void)
{
    bool taken = true;
    setenv("DSM_CKPT_INTERVAL", "1", 1);
    H_OK(start("maybe", "never", false));
    fill(1);
    H_OK(dsm_checkpoint_maybe(&taken)); // normally not due yet; all ranks agree anyway
    bool first = taken;
    CU_ASSERT_TRUE(harness_all(first) || harness_all(!first));
    if (me == 0) {
        usleep(1100 * 1000); // only rank 0's clock matters
    }
    H_OK(dsm_checkpoint_maybe(&taken));
    CU_ASSERT_TRUE(harness_all(taken));
    uint64_t e = 0;
    H_OK(dsm_ckpt_epoch(&e));
    CU_ASSERT_EQUAL(e, first ? 2u : 1u);
    H_OK(dsm_finalize());
    unsetenv("DSM_CKPT_INTERVAL");
}

/* Wipe each rank in turn and recover: it is back at the checkpoint, the others keep
 * their newer state, and every pointer works. */
static void recover_each(const char *job, bool replicas)
{
    int tags[64];
    H_OK(start(job, "never", replicas));
    fill(1);
    H_OK(dsm_checkpoint());
    for (int v = 0; v < n; v++) {
        fill(2);
        H_OK(dsm_simulate_failure(v));
        if (me == v) {
            unsigned char *p = local(blk);
            CU_ASSERT(p != NULL && p[0] == 0 && p[PATTERN_LEN - 1] == 0);
        }
        H_OK(dsm_recover());
        for (int r = 0; r < n && r < 64; r++) {
            tags[r] = r == v ? 1 : 2;
        }
        CU_ASSERT_TRUE(verify_tags(tags));
    }
    H_OK(dsm_finalize());
}

static void test_ckpt_recover_from_replica(void)
{
    recover_each("rec-mem", true);
}

static void test_ckpt_recover_from_files(void)
{
    recover_each("rec-file", false);
}

/* A rank and its keeper lost together: one comes from files, one from memory. */
static void test_ckpt_recover_two(void)
{
    int tags[64];
    H_OK(start("rec-two", "never", true));
    fill(1);
    H_OK(dsm_checkpoint());
    fill(2);
    H_OK(dsm_simulate_failure(0));
    H_OK(dsm_simulate_failure(1 % n));
    H_OK(dsm_recover());
    for (int r = 0; r < n && r < 64; r++) {
        tags[r] = r <= 1 ? 1 : 2;
    }
    CU_ASSERT_TRUE(verify_tags(tags));
    H_OK(dsm_checkpoint()); // allowed again once nothing is wiped
    H_OK(dsm_finalize());
}

/* After a restart the partners hold the replicas in memory again: with both files of
 * a rank gone, its wiped segment still comes back. Registering a region again after a
 * restart keeps its live bytes (restored data are handed out once). */
static void test_ckpt_restart_then_recover(void)
{
    int nr = harness_nranks(), tags[64];
    two_epochs("rr", true);
    H_OK(start("rr", "auto", true));
    CU_ASSERT_TRUE(verify(2));
    prot[0] = 4242;
    H_OK(dsm_ckpt_protect(prot, sizeof prot, "prot"));
    CU_ASSERT_EQUAL(prot[0], 4242);
    fill(4);
    bar();
    if (me == 0 && nr > 1) { // the files can no longer help rank n-1
        char name[64];
        snprintf(name, sizeof name, "rank-%d.ckpt", nr - 1);
        remove_file("rr", 2, name);
        replica_file(name, sizeof name, "rr", 2, nr - 1);
        remove_file("rr", 2, name);
    }
    bar();
    H_OK(dsm_simulate_failure(n - 1));
    H_OK(dsm_recover()); // one rank alone: from its own file, which is still there
    for (int r = 0; r < n && r < 64; r++) {
        tags[r] = r == n - 1 ? 2 : 4;
    }
    CU_ASSERT_TRUE(verify_tags(tags));
    H_OK(dsm_finalize());
}

/* Asynchronous mode: dsm_checkpoint returns after the copy, so writes right after it
 * do not reach the image; the epoch commits at dsm_ckpt_wait (or the next checkpoint
 * call), replicas included. */
static void test_ckpt_async(void)
{
    uint64_t e = 0;
    setenv("DSM_CKPT_ASYNC", "1", 1);
    H_OK(start("async", "never", true));
    fill(1);
    H_OK(dsm_checkpoint());
    fill(2);                                        // while the writer may still be busy
    H_EXPECT(dsm_ckpt_epoch(&e), DSM_ERR_NOTFOUND); // not committed yet
    H_OK(dsm_ckpt_wait());
    H_OK(dsm_ckpt_epoch(&e));
    CU_ASSERT_EQUAL(e, 1);
    H_OK(dsm_ckpt_wait());  // nothing in flight
    H_OK(dsm_checkpoint()); // epoch 2 (tag 2), committed by dsm_finalize
    fill(3);
    H_OK(dsm_finalize());
    unsetenv("DSM_CKPT_ASYNC");
    if (harness_rank() == 0) {
        CU_ASSERT_TRUE(exists("async", 2, "COMMIT"));
        remove_file("async", 2, "rank-0.ckpt"); // the replica written in the background
    }
    bar();
    expect_restart("async", true, harness_nranks() > 1 ? 2 : 1, harness_nranks() > 1 ? 2 : 1);
}

/* An image whose heap metadata are damaged although its CRCs match (written by a
 * buggy program, say): dsmi_heap_reload rejects it with DSM_ERR_CORRUPT on its rank,
 * every rank falls back to the older epoch together, and the epoch is condemned. The
 * restart runs with DSM_ERRORS=abort: a fallback is not an error of the job's, so it
 * must not kill it. */
static void test_ckpt_heap_corrupt(void)
{
    two_epochs("hcorrupt", false);
    if (harness_rank() == 0) {
        char name[32];
        snprintf(name, sizeof name, "rank-%d.ckpt", 2 % harness_nranks());
        corrupt_heap("hcorrupt", 2, name, blk);
    }
    bar();
    setenv("DSM_ERRORS", "abort", 1);
    expect_restart("hcorrupt", false, 1, 1);
    unsetenv("DSM_ERRORS");
    if (harness_rank() == 0) {
        CU_ASSERT_FALSE(exists("hcorrupt", 2, "COMMIT"));
        CU_ASSERT_TRUE(exists("hcorrupt", 2, "COMMIT.rejected"));
    }
    bar();
}

static bool usage_same(const dsm_usage_t *a, const dsm_usage_t *b)
{
    return a->in_use == b->in_use && a->free == b->free && a->largest_free == b->largest_free &&
           a->blocks == b->blocks && a->capacity == b->capacity;
}

/* This rank's queue-node region holds no node (what dsmi_sync_reload leaves). */
static bool sync_region_clear(void)
{
    const unsigned char *p = (const unsigned char *)dsmi_w.base + DSMI_HDR_SYNC_OFF;
    bool clear = true;
    for (size_t i = 0; i < DSMI_HDR_SYNC_SIZE; i++) {
        clear &= p[i] == 0;
    }
    return clear;
}

/* Every rank takes a new mutex once, in turn: the queue-node pool works. */
static void mutex_round(void)
{
    dsm_gptr_t m = DSM_GPTR_NULL;
    if (me == 0) {
        H_OK(dsm_alloc(64, &m));
        H_OK(dsm_mutex_init(m));
    }
    MPI_Bcast(&m.bits, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    for (int r = 0; r < n; r++) {
        if (me == r) {
            H_OK(dsm_mutex_lock(m));
            H_OK(dsm_mutex_unlock(m));
        }
        H_OK(dsm_barrier());
    }
}

/* The heap and the sync state after a restore: dsm_recover and a restart bring each
 * heap back exactly as it was at the checkpoint (same usage, blocks live then are live
 * again, later ones are not), allocation and free still work and the walk finds no
 * fault; the queue nodes in use at checkpoint time (rank 0 held a mutex) are gone. */
static void test_ckpt_heap_restored(void)
{
    dsm_gptr_t a, b, c, d, m = DSM_GPTR_NULL;
    dsm_usage_t ck, now;
    H_OK(start("heapok", "never", false));
    fill(1);
    H_OK(dsm_alloc(3000, &a));
    H_OK(dsm_alloc_on((me + 1) % n, 700, &b));
    if (me == 0) { // held across the checkpoint: its queue node is in the image
        H_OK(dsm_alloc(64, &m));
        H_OK(dsm_mutex_init(m));
        H_OK(dsm_mutex_lock(m));
    }
    H_OK(dsm_barrier());
    H_OK(dsm_usage(me, &ck));
    H_OK(dsm_checkpoint());
    if (me == 0) {
        H_OK(dsm_mutex_unlock(m));
    }
    H_OK(dsm_alloc(5000, &c)); // first, so that c cannot take a's place
    H_OK(dsm_free(a));
    H_OK(dsm_barrier());
    H_OK(dsm_usage(me, &now));
    CU_ASSERT_FALSE(usage_same(&now, &ck)); // the check below can tell
    int v = n - 1;
    H_OK(dsm_simulate_failure(v));
    H_OK(dsm_recover());
    H_OK(dsm_usage(me, &now));
    CU_ASSERT_EQUAL(usage_same(&now, &ck), me == v);
    if (me == v) {
        CU_ASSERT_TRUE(sync_region_clear());
        H_EXPECT(dsm_free(c), DSM_ERR_INVALID); // allocated after the checkpoint
        H_OK(dsm_free(a));                      // freed after the checkpoint: live again
    } else {
        H_OK(dsm_free(c));
    }
    H_OK(dsm_barrier());
    H_OK(dsm_free(b)); // on the next rank, the restored one for rank v - 1
    H_OK(dsm_alloc(100, &d));
    H_OK(dsm_free(d));
    H_OK(dsmi_heap_check(NULL));
    mutex_round();
    H_OK(dsm_finalize());

    H_OK(start("heapok", "auto", false)); // the restart: every rank at the checkpoint
    CU_ASSERT_TRUE(dsm_restarted(NULL));
    CU_ASSERT_TRUE(verify(1));
    H_OK(dsm_usage(me, &now));
    CU_ASSERT_TRUE(usage_same(&now, &ck));
    CU_ASSERT_TRUE(sync_region_clear());
    H_OK(dsmi_heap_check(NULL));
    H_OK(dsm_barrier()); // all have looked before b is freed on the next rank
    H_OK(dsm_free(a));
    H_OK(dsm_free(b));
    H_OK(dsm_barrier()); // the previous rank's b is freed here, d merges it
    H_OK(dsm_alloc(100, &d));
    H_OK(dsm_usage(me, &now));
    CU_ASSERT_EQUAL(now.blocks, ck.blocks - 1); // a and a b gone, d new
    H_OK(dsm_free(d));
    H_OK(dsmi_heap_check(NULL));
    mutex_round();
    H_OK(dsm_finalize());
}

/* ---- the checkpoint tree, job identity, restart edge cases ---- */

/* An epoch-numbered link in the job directory is never followed: retention neither
 * empties nor removes its target, and a linked job directory is refused. */
static void test_ckpt_symlinks(void)
{
    char victim[256], link[PATH_MAX], p[PATH_MAX];
    snprintf(victim, sizeof victim, "%s/victim", top); // top is short
    path(link, "links", 1, "");
    link[strlen(link) - 1] = '\0'; // top/links/JOB/00000001
    if (harness_rank() == 0) {
        char cmd[4 * 256];
        snprintf(cmd, sizeof cmd, "mkdir -p %s/links/" JOB " %s && touch %s/a %s/b", top, victim,
                 victim, victim);
        CU_ASSERT_EQUAL(system(cmd), 0);
        CU_ASSERT_EQUAL(symlink(victim, link), 0);
    }
    bar();
    setenv("DSM_CKPT_KEEP", "1", 1);
    H_OK(start("links", "auto", false)); // the link is no epoch: nothing to restore
    CU_ASSERT_FALSE(dsm_restarted(NULL));
    for (int i = 1; i <= 3; i++) { // retention runs after each commit
        fill(i);
        H_OK(dsm_checkpoint());
    }
    H_OK(dsm_finalize());
    setenv("DSM_CKPT_KEEP", "2", 1);
    snprintf(p, sizeof p, "%s/a", victim);
    CU_ASSERT_TRUE(rank0_exists(p));
    CU_ASSERT_TRUE(rank0_exists(link));
    // A linked job directory: refused at restart and at checkpoint; its target keeps
    // its mode and gets no files.
    char jobdir[PATH_MAX];
    snprintf(jobdir, sizeof jobdir, "%s/jlink/" JOB, top);
    if (harness_rank() == 0) {
        char cmd[2 * PATH_MAX];
        snprintf(cmd, sizeof cmd, "mkdir -p %s/jlink && chmod 755 %s", top, victim);
        CU_ASSERT_EQUAL(system(cmd), 0);
        CU_ASSERT_EQUAL(symlink(victim, jobdir), 0);
    }
    bar();
    H_EXPECT(start("jlink", "auto", false), DSM_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "symbolic link"));
    H_OK(start("jlink", "never", false));
    H_EXPECT(dsm_checkpoint(), DSM_ERR_IO);
    H_OK(dsm_finalize());
    if (harness_rank() == 0) {
        struct stat st;
        CU_ASSERT_EQUAL(stat(victim, &st), 0);
        CU_ASSERT_EQUAL(st.st_mode & 0777, 0755);
    }
    snprintf(p, sizeof p, "%s/00000001", victim);
    CU_ASSERT_FALSE(rank0_exists(p));
}

/* Start with job name name (not JOB) in case dir job. */
static int start_named(const char *job, const char *name, const char *restart)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", top, job);
    setenv("DSM_CKPT_DIR", dir, 1);
    setenv("DSM_CKPT_JOB", name, 1);
    setenv("DSM_RESTART", restart, 1);
    setenv("DSM_CKPT_REPLICAS", "0", 1);
    int rc = dsm_init(NULL, NULL);
    if (rc == DSM_OK) {
        me = dsm_rank();
        n = dsm_nranks();
        find_block();
    }
    return rc;
}

/* Distinct job names are distinct jobs; a name too long for a directory is refused. */
static void test_ckpt_job_names(void)
{
    H_OK(start_named("names", "exp/1", "never"));
    fill(1);
    H_OK(dsm_checkpoint());
    H_OK(dsm_finalize());
    H_EXPECT(start_named("names", "exp_1", "required"), DSM_ERR_NOTFOUND);
    H_EXPECT(start_named("names", "exp 1", "required"), DSM_ERR_NOTFOUND);
    H_EXPECT(start_named("names", "exp%2F1", "required"), DSM_ERR_NOTFOUND);
    H_OK(start_named("names", "exp/1", "required"));
    CU_ASSERT_TRUE(dsm_restarted(NULL));
    H_OK(dsm_finalize());
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/names/exp%%2F1/00000001/COMMIT", top);
    CU_ASSERT_TRUE(rank0_exists(p));
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    H_EXPECT(start_named("names", longname, "never"), DSM_ERR_ENV);
    memset(longname, '/', 100); // 100 encoded bytes of 3 and 155 plain: 455 > 255
    longname[255] = '\0';
    H_EXPECT(start_named("names", longname, "never"), DSM_ERR_ENV);
    CU_ASSERT_FALSE(dsm_initialized());
}

/* Another program's checkpoint under the same job name is refused, under auto too. */
static void test_ckpt_other_program(void)
{
    two_epochs("prog", false);
    char *self = program_invocation_short_name;
    program_invocation_short_name = (char *)"other-program";
    H_EXPECT(start("prog", "auto", false), DSM_ERR_MISMATCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(dsm_last_error(), "test_ckpt"));
    H_EXPECT(start("prog", "required", false), DSM_ERR_MISMATCH);
    program_invocation_short_name = self;
    expect_restart("prog", false, 2, 2); // the program that wrote it still can
}

/* Retention never deletes another program's epochs: a run that does not restart
 * (DSM_RESTART=never) and checkpoints more than DSM_CKPT_KEEP times under a job name
 * another program used keeps that program's epochs 1 and 2. */
static void test_ckpt_keeps_other_program(void)
{
    two_epochs("keepprog", false);
    char *self = program_invocation_short_name;
    program_invocation_short_name = (char *)"other-program";
    H_OK(start("keepprog", "never", false));
    for (int i = 0; i < 4; i++) {
        H_OK(dsm_checkpoint());
    }
    H_OK(dsm_finalize());
    program_invocation_short_name = self;
    for (int e = 1; e <= 2; e++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/keepprog/" JOB "/%08d/COMMIT", top, e);
        CU_ASSERT_TRUE(rank0_exists(p));
    }
}

/* A job directory that cannot be read stops a restart (DSM_ERR_IO), it does not count
 * as "no checkpoints". Root reads anything: there a file in its place stands in. */
static void test_ckpt_unreadable_jobdir(void)
{
    char jobdir[PATH_MAX];
    snprintf(jobdir, sizeof jobdir, "%s/noread/" JOB, top);
    bool root = geteuid() == 0;
    if (harness_rank() == 0) {
        char cmd[2 * PATH_MAX];
        snprintf(cmd, sizeof cmd,
                 root ? "mkdir -p %s && rmdir %s && touch %s" : "mkdir -p %s && chmod 0 %s%.0s",
                 jobdir, jobdir, jobdir);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
    bar();
    H_EXPECT(start("noread", "auto", false), DSM_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(dsm_last_error(), root ? "Not a directory" : "Permission denied"));
    if (dsm_initialized()) { // the old behaviour: started fresh
        H_OK(dsm_finalize());
    }
    H_EXPECT(start("noread", "required", false), DSM_ERR_IO);
    if (dsm_initialized()) {
        H_OK(dsm_finalize());
    }
    if (harness_rank() == 0 && !root) {
        chmod(jobdir, 0700);
    }
    bar();
}

/* More epoch directories than any fixed table: the newest commit still wins and the
 * next epoch is numbered above all of them. Rank 0 adds empty (uncommitted) directories
 * until the committed epoch 2 lies beyond the first 1024 that readdir returns. */
static void test_ckpt_many_epochs(void)
{
    char dir[PATH_MAX], p[PATH_MAX + 32];
    two_epochs("many", false);
    snprintf(dir, sizeof dir, "%s/many/" JOB, top);
    int made = 0;
    if (harness_rank() == 0) {
        for (int pos = 0; pos < 1100 && made < 20000;) {
            for (int k = 0; k < 1000; k++, made++) {
                snprintf(p, sizeof p, "%s/%08d", dir, 10 + made);
                mkdir(p, 0700);
            }
            DIR *d = opendir(dir);
            struct dirent *ent;
            for (pos = 0; d && (ent = readdir(d)) && strcmp(ent->d_name, "00000002") != 0;) {
                pos++;
            }
            if (d) {
                closedir(d);
            }
        }
    }
    MPI_Bcast(&made, 1, MPI_INT, 0, MPI_COMM_WORLD);
    expect_restart("many", false, 2, 2);
    H_OK(start("many", "auto", false));
    H_OK(dsm_checkpoint());
    uint64_t e = 0;
    H_OK(dsm_ckpt_epoch(&e));
    CU_ASSERT_EQUAL(e, (uint64_t)(10 + made));
    H_OK(dsm_finalize());
}

/* Intact but wrong files in an epoch (swapped ranks, another epoch's image, a record
 * of another epoch) condemn it once: the next restart does not read it again. */
static void wrong_file_case(const char *job, int how)
{
    two_epochs(job, false);
    int nr = harness_nranks();
    if (harness_rank() == 0) {
        char a[PATH_MAX], b[PATH_MAX], t[PATH_MAX];
        if (how == 0 && nr > 1) { // rank 0's and rank 1's images swapped
            path(a, job, 2, "rank-0.ckpt");
            path(b, job, 2, "rank-1.ckpt");
            path(t, job, 2, "swap");
            CU_ASSERT(rename(a, t) == 0 && rename(b, a) == 0 && rename(t, b) == 0);
        } else if (how <= 1) { // epoch 1's image in epoch 2
            char cmd[3 * PATH_MAX];
            path(a, job, 1, "rank-0.ckpt");
            path(b, job, 2, "rank-0.ckpt");
            snprintf(cmd, sizeof cmd, "cp %s %s", a, b);
            CU_ASSERT_EQUAL(system(cmd), 0);
        } else { // epoch 1's record in epoch 2
            char cmd[3 * PATH_MAX];
            path(a, job, 1, "COMMIT");
            path(b, job, 2, "COMMIT");
            snprintf(cmd, sizeof cmd, "cp %s %s", a, b);
            CU_ASSERT_EQUAL(system(cmd), 0);
        }
    }
    bar();
    expect_restart(job, false, 1, 1);
    char p[PATH_MAX];
    path(p, job, 2, "COMMIT");
    CU_ASSERT_FALSE(rank0_exists(p));
    path(p, job, 2, "COMMIT.rejected");
    CU_ASSERT_TRUE(rank0_exists(p));
}

static void test_ckpt_wrong_files(void)
{
    wrong_file_case("swapped", 0);
    wrong_file_case("otherepoch", 1);
    wrong_file_case("otherrecord", 2);
}

/* dsm_ckpt_cost: per-level bytes are the files written (stat), in both layouts. */
static off_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

/* Size of the one replica file this rank wrote in directory dir (its ward is rank - 1
 * on one node, the same local rank of the previous node across nodes). */
static off_t replica_size(const char *dir)
{
    char pat[PATH_MAX];
    glob_t g;
    off_t size = -1;
    snprintf(pat, sizeof pat, "%s/rank-%d.replica-of-*", dir, me);
    if (glob(pat, 0, NULL, &g) == 0) {
        size = g.gl_pathc == 1 ? file_size(g.gl_pathv[0]) : -1;
        globfree(&g);
    }
    return size;
}

static void test_ckpt_cost(void)
{
    dsm_ckpt_cost_t c;
    char p[PATH_MAX], name[64], ldir[200];
    H_OK(start("cost", "never", true));
    H_EXPECT(dsm_ckpt_cost(&c), DSM_ERR_NOTFOUND); // nothing committed yet
    H_EXPECT(dsm_ckpt_cost(NULL), DSM_ERR_ARG);
    fill(1);
    H_OK(dsm_checkpoint());
    H_OK(dsm_ckpt_cost(&c));
    snprintf(name, sizeof name, "rank-%d.ckpt", me);
    path(p, "cost", 1, name);
    CU_ASSERT_EQUAL((off_t)c.bytes[DSM_CKPT_LEVEL_SHARED], file_size(p));
    CU_ASSERT_EQUAL(c.bytes[DSM_CKPT_LEVEL_LOCAL], 0);
    path(p, "cost", 1, "");
    CU_ASSERT_EQUAL((off_t)c.bytes[DSM_CKPT_LEVEL_PARTNER], n > 1 ? replica_size(p) : 0);
    CU_ASSERT(c.seconds[DSM_CKPT_LEVEL_SHARED] > 0);
    H_OK(dsm_finalize());
    // Levels, epoch 1 not a flush epoch: local and partner in the node-local tree only.
    snprintf(ldir, sizeof ldir, "%s/cost-local", top);
    setenv("DSM_CKPT_LOCAL_DIR", ldir, 1);
    setenv("DSM_CKPT_FLUSH_EVERY", "2", 1);
    H_OK(start("cost2", "never", false));
    fill(1);
    H_OK(dsm_checkpoint());
    H_OK(dsm_ckpt_cost(&c));
    char d[PATH_MAX - 32];
    H_OK(dsm_ckpt_dir(DSM_CKPT_LEVEL_LOCAL, 1, d, sizeof d));
    snprintf(p, sizeof p, "%s/rank-%d.ckpt", d, me);
    CU_ASSERT(strncmp(d, ldir, strlen(ldir)) == 0);
    CU_ASSERT_EQUAL((off_t)c.bytes[DSM_CKPT_LEVEL_LOCAL], file_size(p));
    CU_ASSERT_EQUAL(c.bytes[DSM_CKPT_LEVEL_SHARED], 0);
    CU_ASSERT_EQUAL((off_t)c.bytes[DSM_CKPT_LEVEL_PARTNER], n > 1 ? replica_size(d) : 0);
    H_OK(dsm_checkpoint()); // epoch 2: also shared
    H_OK(dsm_ckpt_cost(&c));
    snprintf(name, sizeof name, "rank-%d.ckpt", me);
    path(p, "cost2", 2, name);
    CU_ASSERT_EQUAL((off_t)c.bytes[DSM_CKPT_LEVEL_SHARED], file_size(p));
    CU_ASSERT_EQUAL(c.bytes[DSM_CKPT_LEVEL_SHARED], c.bytes[DSM_CKPT_LEVEL_LOCAL]);
    H_OK(dsm_finalize());
    setenv("DSM_CKPT_LOCAL_DIR", "", 1); // the suite's setting (main)
    unsetenv("DSM_CKPT_FLUSH_EVERY");
}

/* The default DSM_CKPT_LOCAL_DIR (auto): levels on exactly when the job spans nodes,
 * in the node's local storage; dsm_ckpt_dir names where. */
static void test_ckpt_default_levels(void)
{
    unsetenv("DSM_CKPT_LOCAL_DIR");
    H_OK(start("deflev", "never", false));
    dsm_topo_t t;
    H_OK(dsm_topology(&t));
    fill(1);
    H_OK(dsm_checkpoint());
    dsm_ckpt_cost_t c;
    H_OK(dsm_ckpt_cost(&c));
    char d[PATH_MAX], sh[PATH_MAX], want[PATH_MAX];
    H_OK(dsm_ckpt_dir(DSM_CKPT_LEVEL_LOCAL, 0, d, sizeof d));
    H_OK(dsm_ckpt_dir(DSM_CKPT_LEVEL_SHARED, 1, sh, sizeof sh));
    snprintf(want, sizeof want, "%s/deflev/" JOB "/00000001", top);
    CU_ASSERT_STRING_EQUAL(sh, want);
    if (t.nnodes == 1) {
        CU_ASSERT_STRING_EQUAL(d, "");
        CU_ASSERT_EQUAL(c.bytes[DSM_CKPT_LEVEL_LOCAL], 0);
        CU_ASSERT(c.bytes[DSM_CKPT_LEVEL_SHARED] > 0);
    } else { // epoch 1 is no flush epoch (DSM_CKPT_FLUSH_EVERY=4): node-local only
        const char *node = getenv("SIMCLUSTER_NODE_DIR");
        const char *root = node && node[0] == '/' ? node : getenv("TMPDIR");
        root = root && root[0] == '/' ? root : "/tmp";
        CU_ASSERT(strncmp(d, root, strlen(root)) == 0 && d[strlen(root)] == '/');
        CU_ASSERT(c.bytes[DSM_CKPT_LEVEL_LOCAL] > 0);
        CU_ASSERT(c.bytes[DSM_CKPT_LEVEL_PARTNER] > 0);
        CU_ASSERT_EQUAL(c.bytes[DSM_CKPT_LEVEL_SHARED], 0);
    }
    char tiny[4];
    CU_ASSERT_EQUAL(dsm_ckpt_dir(DSM_CKPT_LEVEL_SHARED, 1, tiny, sizeof tiny), DSM_ERR_ARG);
    CU_ASSERT_EQUAL(dsm_ckpt_dir(7, 1, d, sizeof d), DSM_ERR_ARG);
    CU_ASSERT_EQUAL(dsm_ckpt_dir(DSM_CKPT_LEVEL_SHARED, 1, NULL, 8), DSM_ERR_ARG);
    H_OK(dsm_finalize());
    CU_ASSERT_EQUAL(dsm_ckpt_dir(DSM_CKPT_LEVEL_SHARED, 1, d, sizeof d), DSM_ERR_STATE);
    setenv("DSM_CKPT_LOCAL_DIR", "", 1);
}

/* Two jobs of one name with different DSM_CKPT_DIRs and one node-local directory (a
 * parameter sweep on shared nodes) keep apart: each restores its own images. */
static void test_ckpt_local_lineage(void)
{
    char ldir[PATH_MAX], da[PATH_MAX], db[PATH_MAX];
    snprintf(ldir, sizeof ldir, "%s/lineage-local", top);
    setenv("DSM_CKPT_LOCAL_DIR", ldir, 1);
    setenv("DSM_CKPT_FLUSH_EVERY", "0", 1); // node-local and partner levels only
    H_OK(start("lineage-a", "never", false));
    fill(1);
    H_OK(dsm_checkpoint());
    H_OK(dsm_ckpt_dir(DSM_CKPT_LEVEL_LOCAL, 0, da, sizeof da));
    H_OK(dsm_finalize());
    H_OK(start("lineage-b", "never", false));
    fill(2);
    H_OK(dsm_checkpoint());
    H_OK(dsm_ckpt_dir(DSM_CKPT_LEVEL_LOCAL, 0, db, sizeof db));
    H_OK(dsm_finalize());
    CU_ASSERT(strcmp(da, db) != 0);
    H_OK(start("lineage-a", "required", false));
    CU_ASSERT(verify(1)); // job b's epoch 1 did not overwrite job a's
    H_OK(dsm_finalize());
    H_OK(start("lineage-b", "required", false));
    CU_ASSERT(verify(2));
    H_OK(dsm_finalize());
    setenv("DSM_CKPT_LOCAL_DIR", "", 1);
    unsetenv("DSM_CKPT_FLUSH_EVERY");
}

static void test_ckpt_cleanup(void)
{
    if (harness_rank() == 0 && strncmp(top, "/tmp/dsm-test-ckpt-", 19) == 0) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf %s", top);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
    bar();
}

static CU_TestInfo cases[] = {
    {"test_ckpt_crc32c", test_ckpt_crc32c},
    {"test_ckpt_round_trip", test_ckpt_round_trip},
    {"test_ckpt_roots", test_ckpt_roots},
    {"test_ckpt_bad_input", test_ckpt_bad_input},
    {"test_ckpt_delete_own", test_ckpt_delete_own},
    {"test_ckpt_replica_pieces", test_ckpt_replica_pieces},
    {"test_ckpt_truncate_own", test_ckpt_truncate_own},
    {"test_ckpt_bitflip_own", test_ckpt_bitflip_own},
    {"test_ckpt_partner_copy_lost", test_ckpt_partner_copy_lost},
    {"test_ckpt_both_copies", test_ckpt_both_copies},
    {"test_ckpt_no_replica", test_ckpt_no_replica},
    {"test_ckpt_commit_record", test_ckpt_commit_record},
    {"test_ckpt_other_rank_count_header", test_ckpt_other_rank_count_header},
    {"test_ckpt_other_format", test_ckpt_other_format},
    {"test_ckpt_other_format_record", test_ckpt_other_format_record},
    {"test_ckpt_other_heap_size", test_ckpt_other_heap_size},
    {"test_ckpt_other_rank_count", test_ckpt_other_rank_count},
    {"test_ckpt_full_disk", test_ckpt_full_disk},
    {"test_ckpt_crash_before_commit", test_ckpt_crash_before_commit},
    {"test_ckpt_keep", test_ckpt_keep},
    {"test_ckpt_maybe", test_ckpt_maybe},
    {"test_ckpt_recover_from_replica", test_ckpt_recover_from_replica},
    {"test_ckpt_recover_from_files", test_ckpt_recover_from_files},
    {"test_ckpt_recover_two", test_ckpt_recover_two},
    {"test_ckpt_restart_then_recover", test_ckpt_restart_then_recover},
    {"test_ckpt_async", test_ckpt_async},
    {"test_ckpt_heap_restored", test_ckpt_heap_restored},
    {"test_ckpt_heap_corrupt", test_ckpt_heap_corrupt},
    {"test_ckpt_symlinks", test_ckpt_symlinks},
    {"test_ckpt_job_names", test_ckpt_job_names},
    {"test_ckpt_other_program", test_ckpt_other_program},
    {"test_ckpt_keeps_other_program", test_ckpt_keeps_other_program},
    {"test_ckpt_unreadable_jobdir", test_ckpt_unreadable_jobdir},
    {"test_ckpt_many_epochs", test_ckpt_many_epochs},
    {"test_ckpt_wrong_files", test_ckpt_wrong_files},
    {"test_ckpt_cost", test_ckpt_cost},
    {"test_ckpt_default_levels", test_ckpt_default_levels},
    {"test_ckpt_local_lineage", test_ckpt_local_lineage},
    {"test_ckpt_cleanup", test_ckpt_cleanup},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    // Small segments keep the many checkpoints fast; the format does not care.
    setenv("DSM_HEAP_SIZE", "2M", 1);
    // Most failures here are the expected outcome; set DSM_LOG_LEVEL=error to see them.
    setenv("DSM_LOG_LEVEL", "none", 0);
    // The cases check DSM_CKPT_DIR's files of every epoch: levels off unless a case
    // turns them on (test_ckpt_cost, test_ckpt_default_levels, test_ckpt_local_lineage).
    setenv("DSM_CKPT_LOCAL_DIR", "", 0);
    struct harness_suite suite = {"ckpt", 1, false, cases};
    return harness_main(argc, argv, &suite);
}
