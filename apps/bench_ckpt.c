/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * dsm-bench ckpt: checkpoint write throughput against `dd conv=fsync` writing the same
 * number of bytes to the same file system, and restore throughput (dsm_recover of every
 * rank from its files) against `dd` reading those files, in the same run.
 *
 * With DSM_CKPT_ASYNC=1 it also shows how long dsm_checkpoint blocks (the copy) while
 * the write completes in the background.
 *
 * A checkpoint writes each rank's heap up to its highest block, not the whole segment,
 * so every rank allocates one block of 7/8 of its heap and rewrites every byte of it
 * each round. The bytes counted are the sizes of the rank files the checkpoint wrote
 * (stat after it commits); the benchmark fails unless they hold at least the filled
 * bytes and at most 1/64 plus 1 MiB per rank more (headers, allocator metadata), so a
 * figure never counts bytes that were not written. dd writes exactly as many bytes,
 * to the same directory, in the same round. Files go to DSM_CKPT_DIR (default
 * ./dsm-ckpt); the dd scratch file is written beside them and removed. Both reads come
 * from the page cache (the checkpoint was just written), which is what a restart on
 * the same node sees; rank 0 prints the table.
 *
 * Per level (dsm_ckpt_cost): node-local (DSM_CKPT_LOCAL_DIR), partner (the ward's copy:
 * exchange plus write) and shared (DSM_CKPT_DIR; with levels only flush epochs, so set
 * DSM_CKPT_FLUSH_EVERY=1 to see it every round). For each level the slowest rank's
 * seconds are set beside every rank running `dd conv=fsync` of exactly the bytes it
 * wrote to that level, into the same directory, at once (as the ranks write), in the
 * same round. The bytes counted are what the library reports, and must equal the
 * sizes of the files each rank finds on that level, or the benchmark fails.
 */
#include "bench.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
#include <sys/stat.h>

/* The directory of checkpoint level l for epoch e (e = 0: the job's), as the library
 * names it (dsm_ckpt_dir: "" for the node-local level when it is off). */
static void level_dir(int l, uint64_t e, char *out, size_t len)
{
    bench_check(dsm_ckpt_dir(l, e, out, len), "dsm_ckpt_dir");
}

/* The block a checkpoint must write: 7/8 of this rank's heap, in one allocation (*g,
 * freed when the suite ends so the next suite of the same run has the heap). */
static uint64_t *alloc_payload(size_t *bytes, dsm_gptr_t *g)
{
    dsm_usage_t u;
    void *p = NULL;
    bench_check(dsm_usage(dsm_rank(), &u), "dsm_usage");
    *bytes = (size_t)(u.capacity / 8 * 7) & ~(size_t)4095;
    bench_check(dsm_alloc(*bytes, g), "dsm_alloc");
    bench_check(dsm_gptr_local(*g, &p), "dsm_gptr_local");
    return p;
}

/* Rewrite every byte, different in each round and rank (no zero or shared pages). */
static void fill_payload(uint64_t *w, size_t bytes, int round)
{
    uint64_t x = ((uint64_t)dsm_rank() << 32) ^ (uint64_t)(round + 1) * 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < bytes / 8; i++) {
        w[i] = x + i;
    }
    bench_check(dsm_barrier(), "dsm_barrier");
}

/* Sum of the sizes of the n rank files of epoch e; exits when one is missing. */
static double file_bytes(uint64_t e, int n)
{
    double sum = 0;
    for (int r = 0; r < n; r++) {
        char dir[900], path[1024];
        struct stat st;
        level_dir(DSM_CKPT_LEVEL_SHARED, e, dir, sizeof dir);
        snprintf(path, sizeof path, "%s/rank-%d.ckpt", dir, r);
        if (stat(path, &st) != 0) {
            fprintf(stderr,
                    "dsm-bench ckpt: cannot stat %s: the benchmark would count bytes "
                    "it cannot see written\n",
                    path);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        sum += (double)st.st_size;
    }
    return sum;
}

/* The files must hold the filled bytes plus bounded overhead, or the figures lie. */
static void check_written(double written, double filled, int n)
{
    double slack = filled / 64 + (double)n * 1048576.0;
    if (written < filled || written > filled + slack) {
        fprintf(stderr,
                "dsm-bench ckpt: FAILED: the checkpoint files hold %.0f bytes but %d "
                "ranks filled %.0f (allowed overhead %.0f): no throughput reported\n",
                written, n, filled, slack);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

/* Seconds rank 0 takes to run cmd (others wait at a barrier). */
static double timed_system(const char *cmd)
{
    double t = bench_now();
    int rc = 0;
    if (dsm_rank() == 0) {
        rc = system(cmd);
    }
    t = bench_now() - t;
    MPI_Bcast(&t, 1, MPI_DOUBLE, 0, dsm_comm());
    MPI_Bcast(&rc, 1, MPI_INT, 0, dsm_comm());
    if (rc != 0 && dsm_rank() == 0) {
        fprintf(stderr, "dsm-bench ckpt: '%s' failed (%d)\n", cmd, rc);
    }
    return rc == 0 ? t : -1;
}

/* Seconds to a committed checkpoint; *blocking gets the part dsm_checkpoint itself
 * takes (all of it, unless DSM_CKPT_ASYNC=1 leaves the writing to dsm_ckpt_wait). */
static double time_checkpoint(double *blocking)
{
    MPI_Barrier(dsm_comm());
    double t = bench_now();
    bench_check(dsm_checkpoint(), "dsm_checkpoint");
    *blocking = bench_now() - t;
    bench_check(dsm_ckpt_wait(), "dsm_ckpt_wait");
    return bench_now() - t;
}

/* Wipe every rank, then one collective recovery reads all files in parallel. */
static double time_restore(void)
{
    for (int r = 0; r < dsm_nranks(); r++) {
        bench_check(dsm_simulate_failure(r), "dsm_simulate_failure");
    }
    MPI_Barrier(dsm_comm());
    double t = bench_now();
    bench_check(dsm_recover(), "dsm_recover");
    return bench_now() - t;
}

/* ---- per level ---- */

static const char *const level_name[3] = {"node-local", "partner", "shared"};

/* Size of this rank's level-l file of epoch e (0 when there is none). */
static double level_file(int l, uint64_t e)
{
    char dir[900], pat[1024];
    struct stat st;
    glob_t g;
    level_dir(l, e, dir, sizeof dir);
    if (l == DSM_CKPT_LEVEL_PARTNER) {
        snprintf(pat, sizeof pat, "%s/rank-%d.replica-of-*", dir, dsm_rank());
    } else {
        snprintf(pat, sizeof pat, "%s/rank-%d.ckpt", dir, dsm_rank());
    }
    double size = 0;
    if (glob(pat, 0, NULL, &g) == 0) {
        size = g.gl_pathc == 1 && stat(g.gl_pathv[0], &st) == 0 ? (double)st.st_size : -1;
        globfree(&g);
    }
    return size;
}

/* Every rank at once: dd conv=fsync of bytes into the level's directory; the slowest
 * rank's seconds (0 when no rank writes to it). */
static double level_dd(int l, uint64_t e, double bytes)
{
    char dir[900], cmd[2048];
    level_dir(l, e, dir, sizeof dir);
    snprintf(cmd, sizeof cmd,
             "dd if=/dev/zero of=%s/../dd-bench.%d.tmp bs=4M count=%.0f iflag=count_bytes "
             "conv=fsync status=none && rm -f %s/../dd-bench.%d.tmp",
             dir, dsm_rank(), bytes, dir, dsm_rank());
    MPI_Barrier(dsm_comm());
    double t = bench_now();
    int rc = bytes > 0 ? system(cmd) : 0;
    t = bench_now() - t;
    double slowest = 0;
    int bad = 0;
    MPI_Allreduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, dsm_comm());
    MPI_Allreduce(&rc, &bad, 1, MPI_INT, MPI_MAX, dsm_comm());
    if (bad != 0 && dsm_rank() == 0) {
        fprintf(stderr, "dsm-bench ckpt: dd into the %s level failed\n", level_name[l]);
    }
    return bad != 0 ? -1 : slowest;
}

/* The levels of the checkpoint just committed: the slowest rank's seconds into sec[l],
 * all ranks' bytes into bytes[l] (checked against the files), dd's seconds into dd[l]. */
static void measure_levels(uint64_t e, double sec[3], double bytes[3], double dd[3])
{
    dsm_ckpt_cost_t c;
    bench_check(dsm_ckpt_cost(&c), "dsm_ckpt_cost");
    for (int l = 0; l < 3; l++) {
        double mine = (double)c.bytes[l], file = c.bytes[l] ? level_file(l, e) : 0;
        int bad = file != mine, any = 0;
        MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, dsm_comm());
        if (any) {
            fprintf(stderr,
                    "dsm-bench ckpt: rank %d: FAILED: the %s level of epoch %llu: the library "
                    "reports %.0f bytes, the file holds %.0f: no throughput reported\n",
                    dsm_rank(), level_name[l], (unsigned long long)e, mine, file);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        MPI_Allreduce(&mine, &bytes[l], 1, MPI_DOUBLE, MPI_SUM, dsm_comm());
        MPI_Allreduce(&c.seconds[l], &sec[l], 1, MPI_DOUBLE, MPI_MAX, dsm_comm());
        dd[l] = level_dd(l, e, mine);
    }
}

static void report_levels(double sec[][3], double bytes[][3], double dd[][3], int rounds)
{
    for (int l = 0; l < 3; l++) {
        double s[64], b[64], d[64];
        int k = 0;
        for (int i = 0; i < rounds; i++) {
            if (bytes[i][l] > 0) {
                s[k] = sec[i][l], b[k] = bytes[i][l], d[k++] = dd[i][l];
            }
        }
        if (k > 0 && dsm_rank() == 0) {
            double bm = bench_median(b, k), sm = bench_median(s, k), dm = bench_median(d, k);
            printf("level %-10s %7.1f MiB  %8.1f ms %8.1f MB/s   dd conv=fsync (every rank) "
                   "%8.1f ms %8.1f MB/s   ratio %.2f  (%d of %d rounds)\n",
                   level_name[l], bm / 1048576.0, sm * 1e3, bm / sm / 1e6, dm * 1e3,
                   dm > 0 ? bm / dm / 1e6 : 0.0, dm > 0 ? dm / sm : 0.0, k, rounds);
        }
    }
}

/* One row; x places it in the plot (1: write, 2: restore). */
static void report(const char *what, int x, double bytes, double ours, double dd, const char *vs)
{
    if (dsm_rank() == 0) {
        bench_data("dsm_bw", x, bytes / ours / 1e6);
        bench_data("dd_bw", x, dd > 0 ? bytes / dd / 1e6 : 0.0);
    }
    if (dsm_rank() == 0 && dd > 0) {
        printf("%-22s %8.1f MB/s   %-26s %8.1f MB/s   ratio %.2f\n", what, bytes / ours / 1e6, vs,
               bytes / dd / 1e6, dd / ours);
    } else if (dsm_rank() == 0) {
        printf("%-22s %8.1f MB/s   %-26s      n/a\n", what, bytes / ours / 1e6, vs);
    }
}

/* dd writing exactly bytes (iflag=count_bytes) to the checkpoint directory, fsynced. */
static void dd_command(char *cmd, size_t len, double bytes)
{
    char dir[900];
    level_dir(DSM_CKPT_LEVEL_SHARED, 0, dir, sizeof dir);
    snprintf(cmd, len,
             "dd if=/dev/zero of=%s/dd-bench.tmp bs=4M count=%.0f iflag=count_bytes "
             "conv=fsync status=none && rm -f %s/dd-bench.tmp",
             dir, bytes, dir);
}

int bench_ckpt(const struct bench_opts *o)
{
    dsm_topo_t t;
    bench_check(dsm_topology(&t), "dsm_topology");
    int rounds = o->quick ? 1 : o->rounds, n = dsm_nranks();
    size_t mine = 0;
    dsm_gptr_t payload_g;
    uint64_t *payload = alloc_payload(&mine, &payload_g);
    double filled = 0, mine_d = (double)mine, total = 0;
    MPI_Allreduce(&mine_d, &filled, 1, MPI_DOUBLE, MPI_SUM, dsm_comm());
    double w[64], b[64], d[64], r[64], rd[64];
    double lsec[64][3], lbytes[64][3], ldd[64][3];
    char shared[900], local[900], cmd[2048];
    level_dir(DSM_CKPT_LEVEL_SHARED, 0, shared, sizeof shared);
    level_dir(DSM_CKPT_LEVEL_LOCAL, 0, local, sizeof local);
    bool levels = local[0] != '\0';
    uint64_t e = 0;
    rounds = rounds > 64 ? 64 : rounds;
    snprintf(cmd, sizeof cmd, "mkdir -p %s", shared);
    timed_system(cmd);
    for (int i = 0; i < rounds; i++) {
        // Alternate which goes first, so neither always meets the other's writeback;
        // dd before the first checkpoint writes the filled bytes, later the files' size.
        dd_command(cmd, sizeof cmd, total > 0 ? total : filled);
        if (i % 2) {
            d[i] = timed_system(cmd);
        }
        fill_payload(payload, mine, i);
        w[i] = time_checkpoint(&b[i]);
        bench_check(dsm_ckpt_epoch(&e), "dsm_ckpt_epoch");
        measure_levels(e, lsec[i], lbytes[i], ldd[i]);
        if (levels) { // the image's bytes: its node-local files, checked above
            total = lbytes[i][DSM_CKPT_LEVEL_LOCAL];
        } else if (dsm_rank() == 0) {
            total = file_bytes(e, n);
        }
        if (dsm_rank() == 0) {
            check_written(total, filled, n);
        }
        MPI_Bcast(&total, 1, MPI_DOUBLE, 0, dsm_comm());
        dd_command(cmd, sizeof cmd, total);
        if (i % 2 == 0) {
            d[i] = timed_system(cmd);
        }
        snprintf(cmd, sizeof cmd,
                 "cat %s/%08llu/rank-*.ckpt | dd of=/dev/null bs=4M "
                 "status=none",
                 levels ? local : shared, (unsigned long long)e);
        // With levels across nodes rank 0 sees only its own node's files: no dd figure.
        bool cat_all = !levels || t.nnodes == 1;
        rd[i] = i % 2 && cat_all ? timed_system(cmd) : 0;
        r[i] = time_restore();
        rd[i] = i % 2 || !cat_all ? rd[i] : timed_system(cmd);
    }
    if (dsm_rank() == 0) {
        printf("# ckpt: %d ranks x %.1f MiB segment, %.1f MiB filled = %.1f MiB of rank "
               "files per checkpoint (checked) in %s, median of %d\n",
               n, t.segment_size / 1048576.0, filled / 1048576.0, total / 1048576.0, shared,
               rounds);
        bench_note("%d ranks, %.0f MiB per checkpoint", n, total / 1048576.0);
    }
    report("checkpoint write", 1, total, bench_median(w, rounds), bench_median(d, rounds),
           "dd conv=fsync (1 stream)");
    if (dsm_rank() == 0) {
        double bl = bench_median(b, rounds);
        printf("%-22s %8.1f ms   (the program waits this long; DSM_CKPT_ASYNC=%s)\n",
               "checkpoint call", bl * 1e3,
               getenv("DSM_CKPT_ASYNC") ? getenv("DSM_CKPT_ASYNC") : "0");
    }
    report("restore (recover all)", 2, total, bench_median(r, rounds), bench_median(rd, rounds),
           "cat files | dd (cached)");
    if (dsm_rank() == 0) {
        printf("# per level: the slowest rank's part of each checkpoint (dsm_ckpt_cost; the "
               "partner level includes the MPI exchange) vs every rank's dd of the same bytes "
               "into the same directory, median over the rounds that had the level\n");
    }
    report_levels(lsec, lbytes, ldd, rounds);
    bench_check(dsm_free(payload_g), "dsm_free");
    return 0;
}
