/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * kvstore: a distributed hash table over mpidsm's global heap, and a workload driver
 * that checks every read.
 *
 *   dsmrun -n 4 apps/kvstore [--ops N] [--read-ratio R] [--keys K] [--dist uniform|zipf]
 *                            [--zipf-s S] [--value-size V] [--buckets B] [--seed S]
 *                            [--mode dsm|mpi|both] [--ckpt-every N] [--expect HEX]
 *                            [--replicas R [--ack-log PATH]] [--progress] [--help]
 *
 * Placement: a key's owner is a segment chosen by jump consistent hashing (as
 * dsm_place) over the table's segments, the ranks of the run that made it, so that a
 * restart on another rank count finds every key where it was put (the segments outlive
 * the ranks: mpidsm.h, dsm_nsegments); its entry lives in the owner's heap
 * (dsm_alloc_on, one-sided) and hangs off one of the owner's buckets. Buckets are a
 * symmetric array (dsm_alloc_all): bucket b of segment s is {mutex, head}.
 * Every operation on a bucket holds that bucket's dsm_mutex (an MCS queue lock): with
 * thousands of buckets contention is rare, the lock is fair, and a reader never sees a
 * half-written entry or an entry being freed, so reads need no retry protocol. A
 * lock-free design (CAS on the head, as Lubke et al.) would save the lock's round trips
 * on reads but needs safe memory reclamation for deletes; measured first, kept simple.
 *
 * Checking: the workload is that of N writers, N the ranks of the run that made the
 * table; writer w writes only keys k with k % N == w, so its model (version per key,
 * 0 = absent) is exact for those keys: every read of its own keys must match the
 * model; every read of another writer's key must be a well-formed entry (key, version
 * and value pattern agree). At the end each writer checks all its keys. Writer w's
 * op counter and model live in segment w (a symmetric block), and rank r runs the
 * writers whose segments it holds (w % ranks == r): one each normally, several after
 * a restart on fewer ranks, none on the extra ranks of a restart on more. The table
 * is found again through the root "kvstore", so a restarted run carries on and checks.
 * Operation i of writer w draws its key and kind from a generator seeded with (seed,
 * w, i), and each key has one writer, so a run restarted from a checkpoint, on any rank
 * count, ends with the table an uninterrupted run ends with: the digest (every key's
 * version, summed) must then be bit-identical (--expect).
 *
 * --mode mpi runs the same workload on a baseline written with plain MPI RMA: fixed
 * slots per key and one global lock (MPI_Win_lock exclusive on rank 0 of a lock window).
 *
 * --replicas R keeps every key as a replicated object of R copies (dsm_repl_*) instead:
 * a put returns when every copy holds it, so no acknowledged put is lost to a node
 * failure. With --ack-log each rank records its puts outside the job (tests/
 * test_repl_node_kill.sh checks a relaunch against that record). A relaunch reads its
 * keys back and runs the workload again from there, also on another rank count (the
 * objects move onto the ranks there are; rank r then owns keys k % ranks == r); no
 * checkpoints are involved.
 *
 * Exit status: 0 all reads checked out, 1 a check or call failed, 2 bad arguments.
 */
#include <inttypes.h>
#include <math.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpidsm.h"

struct opts {
    long ops, keys, buckets, value_size;
    double read_ratio, zipf_s;
    int zipf, progress, mode; // mode bit 1: dsm, bit 2: mpi
    unsigned long seed;
    long ckpt_every; // dsm mode: checkpoint every this many operations (0: DSM_CKPT_INTERVAL)
    uint64_t expect; // with have_expect: the digest the final table must have
    int have_expect;
    int replicas;        // --replicas R: every key a replicated object with R copies
    const char *ack_log; // --ack-log PATH: acknowledged operations, PATH.<rank>
};

/* An entry in the owner's heap: header, then value_size bytes. */
struct entry {
    dsm_gptr_t next;
    uint64_t key, version, check;
};

struct bucket {
    uint64_t mutex; // a dsm_mutex (DSM_MUTEX_SIZE bytes)
    dsm_gptr_t head;
};
_Static_assert(sizeof(uint64_t) == DSM_MUTEX_SIZE, "bucket layout assumes an 8-byte mutex");

struct meta {
    uint64_t magic, nranks, buckets, keys, value_size; // nranks: the table's segments
    dsm_gptr_t table; // symmetric: bucket b of segment s at (s, offset + 16 b)
    dsm_gptr_t state; // symmetric: writer s's {done, model[]} at (s, offset)
};
#define KV_MAGIC UINT64_C(0x6b7673746f726532)

struct kv {
    struct opts o;
    int me, n;
    struct meta m;
    int nw;          // dsm mode: writers (the table's segments); this rank runs w % n == me
    uint64_t *model; // mpi and replicas modes: version of each own key (index k / n)
    uint64_t done;   // mpi mode: operations completed
    unsigned char *val, *got;
    long reads, writes, dels, misses;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    return x ^ (x >> 33);
}

static uint64_t check_of(uint64_t key, uint64_t version)
{
    return mix(key * 31 + version) | 1;
}

static void fill_value(unsigned char *v, long n, uint64_t key, uint64_t version)
{
    uint64_t s = check_of(key, version);
    for (long i = 0; i < n; i++) {
        v[i] = (unsigned char)(s >> (8 * (i % 8)));
    }
}

/* ---- arguments ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: kvstore [--ops N] [--read-ratio R] [--keys K] [--dist uniform|zipf]\n"
               "               [--zipf-s S] [--value-size V] [--buckets B] [--seed S]\n"
               "               [--mode dsm|mpi|both] [--replicas R [--ack-log P]] [--progress]\n"
               "  --ops         operations per rank (default 20000)\n"
               "  --read-ratio  fraction of lookups, 0..1 (default 0.9); the rest are 80%% "
               "puts, 20%% deletes\n"
               "  --keys        key space (default 10000)\n"
               "  --dist        key distribution (default uniform); zipf uses --zipf-s "
               "(default 0.99)\n"
               "  --value-size  bytes per value (default 64)\n"
               "  --buckets     buckets per rank (default 4096)\n"
               "  --mode        dsm (default), mpi (plain MPI RMA + global lock), or both\n"
               "  --ckpt-every  checkpoint every N operations (default: only when\n"
               "                DSM_CKPT_INTERVAL says)\n"
               "  --expect      exit 1 unless the final table's digest is HEX\n"
               "  --replicas R  keep every key as a replicated object with R copies (at most\n"
               "                1000 keys; a put returns when every copy holds it); a relaunch\n"
               "                (DSM_RESTART=auto) carries on with the surviving values\n"
               "  --ack-log P   with --replicas: each rank appends to P.<rank> 'W key version'\n"
               "                before a put, 'A key version' once it returned, 'S ranks time'\n"
               "                at each (re)start, then 'R key version' for its keys as it found\n"
               "                them, 'F key version' at the end\n"
               "Run under mpi-launch/dsmrun. Exit 0 when every read checked out.\n");
}

static int num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){20000, 10000, 4096, 64, 0.9, 0.99, 0, 0, 1, 1, 0, 0, 0, 0, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d = 0;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            return 1;
        } else if (!strcmp(a, "--progress")) {
            o->progress = 1;
            continue;
        } else if (!v) {
            bad = 1;
        } else if (!strcmp(a, "--ops")) {
            bad = num(v, 0, 1e12, &d), o->ops = (long)d;
        } else if (!strcmp(a, "--keys")) {
            bad = num(v, 1, 1e9, &d), o->keys = (long)d;
        } else if (!strcmp(a, "--buckets")) {
            bad = num(v, 1, 1 << 24, &d), o->buckets = (long)d;
        } else if (!strcmp(a, "--value-size")) {
            bad = num(v, 1, 1 << 20, &d), o->value_size = (long)d;
        } else if (!strcmp(a, "--read-ratio")) {
            bad = num(v, 0, 1, &o->read_ratio);
        } else if (!strcmp(a, "--zipf-s")) {
            bad = num(v, 0.01, 10, &o->zipf_s);
        } else if (!strcmp(a, "--seed")) {
            bad = num(v, 0, 4e9, &d), o->seed = (unsigned long)d;
        } else if (!strcmp(a, "--dist")) {
            bad = strcmp(v, "uniform") && strcmp(v, "zipf");
            o->zipf = !strcmp(v, "zipf");
        } else if (!strcmp(a, "--ckpt-every")) {
            bad = num(v, 0, 1e12, &d), o->ckpt_every = (long)d;
        } else if (!strcmp(a, "--expect")) {
            char *end = NULL;
            o->expect = strtoull(v, &end, 16);
            bad = end == v || *end != '\0', o->have_expect = 1;
        } else if (!strcmp(a, "--replicas")) {
            bad = num(v, 1, DSM_REPL_MAX_COPIES, &d), o->replicas = (int)d;
        } else if (!strcmp(a, "--ack-log")) {
            o->ack_log = v;
        } else if (!strcmp(a, "--mode")) {
            o->mode = !strcmp(v, "dsm") ? 1 : !strcmp(v, "mpi") ? 2 : !strcmp(v, "both") ? 3 : 0;
            bad = o->mode == 0;
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "kvstore: bad or incomplete argument '%s%s%s'\n", a, v ? " " : "",
                    v ? v : "");
            return 2;
        }
        i++;
    }
    return 0;
}

/* ---- key choice: uniform or Zipf (inverse CDF over a precomputed table) ---- */

struct keygen {
    double *cdf;
    long n;
    uint64_t state;
};

static double rnd(uint64_t *s)
{
    *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (double)(mix(*s) >> 11) / 9007199254740992.0;
}

static void keygen_init(struct keygen *g, const struct opts *o, int me)
{
    g->n = o->keys;
    g->state = mix(o->seed * 1000003u + (uint64_t)me + 1);
    g->cdf = NULL;
    if (o->zipf) {
        g->cdf = malloc(sizeof(double) * (size_t)o->keys);
        double sum = 0;
        for (long k = 0; k < o->keys; k++) {
            g->cdf[k] = (sum += 1.0 / pow((double)(k + 1), o->zipf_s));
        }
        for (long k = 0; k < o->keys; k++) {
            g->cdf[k] /= sum;
        }
    }
}

static long keygen_next(struct keygen *g)
{
    double u = rnd(&g->state);
    if (!g->cdf) {
        return (long)(u * (double)g->n) % g->n;
    }
    long lo = 0, hi = g->n - 1;
    while (lo < hi) {
        long mid = (lo + hi) / 2;
        if (g->cdf[mid] < u) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    // Scatter popular ranks over the key space so hot keys are not all one rank's.
    return (long)(mix((uint64_t)lo) % (uint64_t)g->n);
}

/* ---- the table ---- */

#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) != DSM_OK) {                                                                    \
            fprintf(stderr, "kvstore: %s: %s\n", #call, dsm_last_error());                         \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

/* Jump consistent hashing (Lamping and Veach 2014) of a key over n segments. */
static int jump(uint64_t key, int n)
{
    int64_t b = -1, j = 0;
    key = mix(key);
    while (j < n) {
        b = j;
        key = key * UINT64_C(2862933555777941757) + 1;
        j = (int64_t)((double)(b + 1) * ((double)(INT64_C(1) << 31) / (double)((key >> 33) + 1)));
    }
    return (int)b;
}

static dsm_gptr_t bucket_of(const struct kv *K, uint64_t key, int *owner)
{
    *owner = jump(key, (int)K->m.nranks);
    uint64_t b = mix(key ^ UINT64_C(0x9e3779b97f4a7c15)) % K->m.buckets;
    dsm_gptr_t g = DSM_GPTR_NULL;
    dsm_gptr_make(*owner, dsm_gptr_offset(K->m.table) + b * sizeof(struct bucket), &g);
    return g;
}

static dsm_gptr_t field(dsm_gptr_t g, size_t off)
{
    dsm_gptr_t f = DSM_GPTR_NULL;
    dsm_gptr_add(g, (int64_t)off, &f);
    return f;
}

/* Under the bucket's lock: find key; *prev is the link that points at the entry. */
static int find(dsm_gptr_t bucket, uint64_t key, dsm_gptr_t *at, dsm_gptr_t *prev, struct entry *e)
{
    dsm_gptr_t link = field(bucket, offsetof(struct bucket, head)), cur;
    CHECK(dsm_get(&cur, link, sizeof cur));
    while (!dsm_gptr_is_null(cur)) {
        CHECK(dsm_get(e, cur, sizeof *e));
        if (e->key == key) {
            *at = cur;
            *prev = link;
            return 1;
        }
        link = field(cur, offsetof(struct entry, next));
        cur = e->next;
    }
    return 0;
}

static int kv_put(struct kv *K, uint64_t key, uint64_t version)
{
    int owner, rc = 0;
    dsm_gptr_t b = bucket_of(K, key, &owner), at, prev;
    struct entry e;
    fill_value(K->val, K->o.value_size, key, version);
    CHECK(dsm_mutex_lock(b));
    int found = find(b, key, &at, &prev, &e);
    if (found < 0) {
        rc = -1;
    } else if (found) { // update in place: value first, then the header that names it
        e.version = version;
        e.check = check_of(key, version);
        rc = dsm_put(field(at, sizeof e), K->val, (size_t)K->o.value_size) ||
             dsm_put(at, &e, sizeof e);
    } else if ((rc = dsm_alloc_on(owner, sizeof e + (size_t)K->o.value_size, &at)) == DSM_OK) {
        dsm_gptr_t headp = field(b, offsetof(struct bucket, head));
        rc = dsm_get(&e.next, headp, sizeof e.next);
        e.key = key, e.version = version, e.check = check_of(key, version);
        rc = rc || dsm_put(field(at, sizeof e), K->val, (size_t)K->o.value_size) ||
             dsm_put(at, &e, sizeof e) || dsm_put(headp, &at, sizeof at);
    }
    if (rc) {
        fprintf(stderr, "kvstore: put %" PRIu64 ": %s\n", key, dsm_last_error());
    }
    CHECK(dsm_mutex_unlock(b));
    return rc ? -1 : 0;
}

static int kv_del(struct kv *K, uint64_t key)
{
    int owner, rc = 0;
    dsm_gptr_t b = bucket_of(K, key, &owner), at, prev;
    struct entry e;
    CHECK(dsm_mutex_lock(b));
    int found = find(b, key, &at, &prev, &e);
    if (found > 0) {
        rc = dsm_put(prev, &e.next, sizeof e.next) || dsm_free(at);
    }
    CHECK(dsm_mutex_unlock(b));
    return found < 0 || rc ? -1 : found;
}

/* Returns the version found (0 = absent), or -1 on a failed call or a torn entry. */
static int64_t kv_get(struct kv *K, uint64_t key)
{
    int owner;
    dsm_gptr_t b = bucket_of(K, key, &owner), at, prev;
    struct entry e;
    int64_t version = 0;
    CHECK(dsm_mutex_lock(b));
    int found = find(b, key, &at, &prev, &e);
    if (found > 0) {
        version = (int64_t)e.version;
        if (dsm_get(K->got, field(at, sizeof e), (size_t)K->o.value_size) != DSM_OK) {
            version = -1;
        }
    }
    CHECK(dsm_mutex_unlock(b));
    if (found < 0) {
        return -1;
    }
    if (found > 0) {
        fill_value(K->val, K->o.value_size, key, e.version);
        if (e.check != check_of(key, e.version) ||
            memcmp(K->val, K->got, (size_t)K->o.value_size)) {
            fprintf(stderr, "kvstore: rank %d: key %" PRIu64 " version %" PRIu64 " is malformed\n",
                    K->me, key, e.version);
            return -1;
        }
    }
    return version;
}

/* ---- setting up: a fresh table, or the one a restarted run finds again ---- */

static long own_keys(const struct kv *K)
{
    return (K->o.keys + K->nw - 1) / K->nw;
}

/* Writer w's {done, model[]} in its segment, which this rank holds. */
static uint64_t *writer_state(const struct kv *K, int w)
{
    dsm_gptr_t g = DSM_GPTR_NULL;
    void *p = NULL;
    if (dsm_gptr_make(w, dsm_gptr_offset(K->m.state), &g) != DSM_OK ||
        dsm_gptr_local(g, &p) != DSM_OK) {
        return NULL;
    }
    return p;
}

static int table_setup(struct kv *K)
{
    uint64_t epoch = 0;
    dsm_gptr_t mg;
    if (dsm_restarted(&epoch) && dsm_root_get("kvstore", &mg) == DSM_OK) {
        CHECK(dsm_get(&K->m, mg, sizeof K->m));
        if (K->m.magic != KV_MAGIC || K->m.keys != (uint64_t)K->o.keys ||
            K->m.value_size != (uint64_t)K->o.value_size || K->m.nranks < 1 ||
            K->m.nranks > (uint64_t)dsm_nsegments()) {
            fprintf(stderr, "kvstore: the restored table has other parameters\n");
            return -1;
        }
        K->nw = (int)K->m.nranks;
        if (K->me == 0) {
            printf("kvstore: restarted from epoch %" PRIu64 "%s\n", epoch,
                   K->nw != K->n ? " (a table of another rank count)" : "");
        }
    } else {
        K->m = (struct meta){KV_MAGIC,
                             (uint64_t)K->n,
                             (uint64_t)K->o.buckets,
                             (uint64_t)K->o.keys,
                             (uint64_t)K->o.value_size,
                             DSM_GPTR_NULL,
                             DSM_GPTR_NULL};
        K->nw = K->n;
        CHECK(dsm_alloc_all(sizeof(struct bucket) * (size_t)K->o.buckets, &K->m.table));
        for (long b = 0; b < K->o.buckets; b++) {
            dsm_gptr_t g;
            CHECK(dsm_gptr_make(K->me, dsm_gptr_offset(K->m.table) + (uint64_t)b * 16, &g));
            CHECK(dsm_mutex_init(g));
            CHECK(dsm_put(field(g, 8), &DSM_GPTR_NULL, sizeof(dsm_gptr_t)));
        }
        CHECK(dsm_alloc_all(sizeof(uint64_t) * (size_t)(1 + own_keys(K)), &K->m.state));
        uint64_t *st = writer_state(K, K->me);
        if (st == NULL) {
            fprintf(stderr, "kvstore: rank %d: its writer state is not local\n", K->me);
            return -1;
        }
        memset(st, 0, sizeof(uint64_t) * (size_t)(1 + own_keys(K)));
        if (K->me == 0) {
            CHECK(dsm_alloc(sizeof K->m, &mg));
            CHECK(dsm_put(mg, &K->m, sizeof K->m));
            CHECK(dsm_root_set("kvstore", mg));
        }
    }
    // the writers this rank runs keep their state in segments it holds (w % ranks ==
    // rank, mpidsm.h dsm_nsegments): checked once here, used without checks below
    for (int w = K->me; w < K->nw; w += K->n) {
        if (writer_state(K, w) == NULL) {
            fprintf(stderr, "kvstore: rank %d: writer %d's state is not local: %s\n", K->me, w,
                    dsm_last_error());
            return -1;
        }
    }
    CHECK(dsm_barrier());
    return 0;
}

/* Operation st[0] of writer w (state st = {done, model[]}) on the dsm table; -1 when a
 * check failed. */
static int dsm_op(struct kv *K, struct keygen *g, int w, uint64_t *st)
{
    long k = keygen_next(g);
    uint64_t u = (uint64_t)(rnd(&g->state) * 1000), *model = st + 1;
    bool own_key = k % K->nw == w;
    if (u < (uint64_t)(K->o.read_ratio * 1000) || w >= K->o.keys) {
        int64_t v = kv_get(K, (uint64_t)k);
        K->reads++;
        if (v < 0 || (own_key && (uint64_t)v != model[k / K->nw])) {
            fprintf(stderr,
                    "kvstore: rank %d writer %d: read key %ld: got version %" PRId64
                    ", expected %" PRIu64 "\n",
                    K->me, w, k, v, own_key ? model[k / K->nw] : 0);
            return -1;
        }
        K->misses += v == 0;
        return 0;
    }
    k = k - k % K->nw + w; // write the writer's own keys only: the model stays exact
    if (k >= K->o.keys) {
        k = w;
    }
    uint64_t *slot = &model[k / K->nw];
    if (rnd(&g->state) < 0.8) {
        uint64_t version = st[0] + 1;
        K->writes++;
        if (kv_put(K, (uint64_t)k, version)) {
            return -1;
        }
        *slot = version;
        return 0;
    }
    int found = kv_del(K, (uint64_t)k);
    K->dels++;
    if (found < 0 || found != (*slot != 0)) {
        fprintf(stderr, "kvstore: rank %d writer %d: delete key %ld found=%d, model says %d\n",
                K->me, w, k, found, *slot != 0);
        return -1;
    }
    *slot = 0;
    return 0;
}

/* Every own key against the model; then live blocks against live keys (no leaks). */
static int final_check(struct kv *K)
{
    long present = 0, bad = 0;
    uint64_t digest = 0, all_digest = 0; // a sum: the same whatever the rank count's order
    for (int w = K->me; w < K->nw; w += K->n) {
        const uint64_t *model = writer_state(K, w) + 1;
        for (long k = w; k < K->o.keys; k += K->nw) {
            int64_t v = kv_get(K, (uint64_t)k);
            bad += v < 0 || (uint64_t)v != model[k / K->nw];
            present += v > 0;
            digest += v > 0 ? mix((uint64_t)k * UINT64_C(0x9e3779b97f4a7c15) + (uint64_t)v) : 0;
        }
    }
    MPI_Allreduce(&digest, &all_digest, 1, MPI_UINT64_T, MPI_SUM, dsm_comm());
    long long tot[2] = {present, bad}, sum[2];
    MPI_Allreduce(tot, sum, 2, MPI_LONG_LONG, MPI_SUM, dsm_comm());
    long long blocks = 0, all_blocks = 0;
    for (int seg = K->me; seg < dsm_nsegments(); seg += K->n) { // the segments held here
        dsm_usage_t u;
        CHECK(dsm_usage(seg, &u));
        blocks += (long long)u.blocks;
    }
    MPI_Allreduce(&blocks, &all_blocks, 1, MPI_LONG_LONG, MPI_SUM, dsm_comm());
    // Besides entries: a bucket array and a writer state per segment, the meta block.
    long long want = sum[0] + 2LL * K->nw + 1;
    if (K->me == 0) {
        printf("kvstore: final check: %lld keys present, %lld wrong, %lld live blocks "
               "(expected %lld)\n",
               sum[0], sum[1], all_blocks, want);
        printf("kvstore: digest %016" PRIx64 "\n", all_digest);
        if (K->o.have_expect) {
            printf("kvstore: expected %016" PRIx64 ": %s\n", K->o.expect,
                   K->o.expect == all_digest ? "equal" : "DIFFERENT");
        }
    }
    bool same = !K->o.have_expect || K->o.expect == all_digest;
    return sum[1] == 0 && all_blocks == want && same ? 0 : -1;
}

static void report(const char *what, const struct kv *K, double secs, long ops)
{
    // All ranks' operations over the slowest rank's time: ranks that ran while others
    // were descheduled must not add up to more than the machine did.
    double all_ops = 0, mine = (double)ops, slowest = 0;
    MPI_Allreduce(&mine, &all_ops, 1, MPI_DOUBLE, MPI_SUM, dsm_comm());
    MPI_Allreduce(&secs, &slowest, 1, MPI_DOUBLE, MPI_MAX, dsm_comm());
    double total = slowest > 0 ? all_ops / slowest : 0;
    if (K->me == 0) {
        printf("kvstore %-16s %d ranks: %10.0f ops/s total, %9.0f per rank (%.2f s), "
               "read-ratio %.2f, %ld keys, %s\n",
               what, K->n, total, total / K->n, slowest, K->o.read_ratio, K->o.keys,
               K->o.zipf ? "zipf" : "uniform");
    }
}

/* The operations every writer has done: the same for all at a checkpoint, so any
 * writer's count serves (writer 0's, which rank 0 holds, for a rank that runs none). */
static int rounds_done(struct kv *K, uint64_t *done)
{
    if (K->me < K->nw) {
        *done = writer_state(K, K->me)[0];
        return 0;
    }
    dsm_gptr_t g = DSM_GPTR_NULL;
    CHECK(dsm_gptr_make(0, dsm_gptr_offset(K->m.state), &g));
    CHECK(dsm_get(done, g, sizeof *done));
    return 0;
}

static int run_dsm(struct kv *K, double *rate)
{
    struct keygen g;
    if (table_setup(K)) {
        return -1;
    }
    uint64_t start = 0, round;
    if (rounds_done(K, &start)) {
        return -1;
    }
    keygen_init(&g, &K->o, 0);
    int ok = 1;
    long mine = 0; // operations of this rank's writers
    CHECK(dsm_barrier());
    double t0 = MPI_Wtime();
    long tick = K->o.ops >= 10 ? K->o.ops / 10 : 1;
    for (round = start; round < (uint64_t)K->o.ops;) {
        for (int w = K->me; w < K->nw; w += K->n) {
            uint64_t *st = writer_state(K, w);
            // operation i of writer w draws the same after a restart, on any rank count
            g.state = mix(mix(K->o.seed * 1000003u + (uint64_t)w + 1) + st[0]);
            if (ok && dsm_op(K, &g, w, st)) {
                ok = 0; // keep going so the collectives below stay matched
            }
            st[0]++;
            mine++;
        }
        round++;
        if (K->o.ckpt_every > 0 && round % (uint64_t)K->o.ckpt_every == 0) {
            CHECK(dsm_checkpoint());
        } else if (K->o.ckpt_every == 0 && round % 256 == 0) {
            bool taken;
            CHECK(dsm_checkpoint_maybe(&taken));
        }
        if (K->o.progress && K->me == 0 && round % (uint64_t)tick == 0) {
            fprintf(stderr, "kvstore: %" PRIu64 "/%ld ops\n", round, K->o.ops);
        }
    }
    CHECK(dsm_barrier()); // the makespan: until the last rank is done
    double secs = MPI_Wtime() - t0;
    report("dsm (MCS/bucket)", K, secs, mine);
    *rate = secs > 0 ? (double)mine / secs : 0;
    free(g.cdf);
    int fin = final_check(K);
    return ok && fin == 0 ? 0 : -1;
}

/* ---- --replicas: every key a replicated object ---- */

/* A key's object: its version (0 = absent), the check word, then the value. */
struct rrec {
    uint64_t version, check;
};

struct rkv {
    dsm_repl_t *obj; // per key
    size_t size;     // bytes of a key's object
    unsigned char *buf;
    int ack; // the ack log's descriptor, -1 when none
    uint64_t next_version;
};

#include <fcntl.h>
#include <unistd.h>

static void ack(struct rkv *R, char what, long k, uint64_t v)
{
    if (R->ack < 0) {
        return;
    }
    char line[64];
    int n = snprintf(line, sizeof line, "%c %ld %" PRIu64 "\n", what, k, v);
    // One write(2) per line: in the kernel once it returns, whatever kills us next.
    if (write(R->ack, line, (size_t)n) != n) {
        perror("kvstore: ack log");
    }
}

/* Read key k: its version (0 absent), -1 on a failed call or a malformed object. */
static int64_t r_get(struct kv *K, struct rkv *R, long k)
{
    struct rrec h;
    CHECK(dsm_repl_read(R->obj[k], 0, R->buf, R->size));
    memcpy(&h, R->buf, sizeof h);
    if (h.version == 0) {
        return 0;
    }
    fill_value(K->got, K->o.value_size, (uint64_t)k, h.version);
    if (h.check != check_of((uint64_t)k, h.version) ||
        memcmp(R->buf + sizeof h, K->got, (size_t)K->o.value_size) != 0) {
        fprintf(stderr, "kvstore: rank %d: key %ld: malformed value at version %" PRIu64 "\n",
                K->me, k, h.version);
        return -1;
    }
    return (int64_t)h.version;
}

/* Write key k at version (0: delete). */
static int r_put(struct kv *K, struct rkv *R, long k, uint64_t version)
{
    struct rrec h = {version, version ? check_of((uint64_t)k, version) : 0};
    memcpy(R->buf, &h, sizeof h);
    fill_value(R->buf + sizeof h, K->o.value_size, (uint64_t)k, version);
    ack(R, 'W', k, version);
    CHECK(dsm_repl_write(R->obj[k], 0, R->buf, R->size));
    ack(R, 'A', k, version);
    return 0;
}

/* Find every key's object (a relaunch) or make it; lost ones are reported by name. */
static int r_setup(struct kv *K, struct rkv *R)
{
    long lost = 0;
    for (long k = 0; k < K->o.keys; k++) {
        char name[32];
        snprintf(name, sizeof name, "kv%ld", k);
        // The same answer on every rank (the object table is): alloc is collective.
        int rc = dsm_repl_exists(name) ? dsm_repl_attach(name, &R->obj[k])
                                       : dsm_repl_alloc(name, R->size, K->o.replicas, &R->obj[k]);
        if (rc == DSM_ERR_QUORUM) {
            lost++;
            if (K->me == 0) {
                fprintf(stderr, "kvstore: key %ld is lost (%s): %s\n", k, dsm_strerror(rc),
                        dsm_last_error());
            }
        } else if (rc != DSM_OK) {
            fprintf(stderr, "kvstore: rank %d: key %ld: %s\n", K->me, k, dsm_last_error());
            return -1;
        }
    }
    if (lost > 0) {
        if (K->me == 0) {
            fprintf(stderr, "kvstore: %ld keys lost a majority of their copies: not starting\n",
                    lost);
        }
        return -1;
    }
    // Own keys as this (re)start found them: the model and the next version go on from there.
    // A start on n ranks, named by rank 0's clock (microseconds): the records after it are
    // this attempt's, and the names order the attempts of every rank's record.
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t start = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    MPI_Bcast(&start, 1, MPI_UINT64_T, 0, dsm_comm());
    ack(R, 'S', K->n, start);
    for (long k = K->me; k < K->o.keys; k += K->n) {
        int64_t v = r_get(K, R, k);
        if (v < 0) {
            return -1;
        }
        K->model[k / K->n] = (uint64_t)v;
        R->next_version = (uint64_t)v >= R->next_version ? (uint64_t)v + 1 : R->next_version;
        ack(R, 'R', k, (uint64_t)v);
    }
    return 0;
}

/* One operation: a read (own keys checked against the model), else a put (80%) or a
 * delete of an own key. */
static int r_op(struct kv *K, struct rkv *R, struct keygen *g)
{
    long k = keygen_next(g);
    uint64_t u = (uint64_t)(rnd(&g->state) * 1000);
    if (u < (uint64_t)(K->o.read_ratio * 1000) || K->me >= K->o.keys) {
        int64_t v = r_get(K, R, k);
        K->reads++;
        if (v < 0 || (k % K->n == K->me && (uint64_t)v != K->model[k / K->n])) {
            fprintf(stderr, "kvstore: rank %d: read key %ld: got version %" PRId64 "\n", K->me, k,
                    v);
            return -1;
        }
        return 0;
    }
    k = k - k % K->n + K->me;
    k = k >= K->o.keys ? K->me : k;
    uint64_t version = rnd(&g->state) < 0.8 ? R->next_version++ : 0;
    K->writes += version != 0;
    K->dels += version == 0;
    if (r_put(K, R, k, version)) {
        return -1;
    }
    K->model[k / K->n] = version;
    return 0;
}

static int r_final(struct kv *K, struct rkv *R)
{
    long bad = 0, present = 0;
    for (long k = K->me; k < K->o.keys; k += K->n) {
        int64_t v = r_get(K, R, k);
        bad += v < 0 || (uint64_t)v != K->model[k / K->n];
        present += v > 0;
        ack(R, 'F', k, v < 0 ? 0 : (uint64_t)v);
    }
    long long t[2] = {present, bad}, sum[2];
    MPI_Allreduce(t, sum, 2, MPI_LONG_LONG, MPI_SUM, dsm_comm());
    if (K->me == 0) {
        printf("kvstore: final check (replicated): %lld keys present, %lld wrong\n", sum[0],
               sum[1]);
    }
    return sum[1] == 0 ? 0 : -1;
}

static int run_repl(struct kv *K, double *rate)
{
    struct rkv R = {
        .size = sizeof(struct rrec) + (size_t)K->o.value_size, .ack = -1, .next_version = 1};
    R.obj = calloc((size_t)K->o.keys, sizeof *R.obj);
    R.buf = malloc(R.size);
    if (K->o.ack_log) {
        char path[4096];
        snprintf(path, sizeof path, "%s.%d", K->o.ack_log, K->me);
        R.ack = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (R.ack < 0) {
            perror(path);
        }
    }
    int ok = R.obj && R.buf && (R.ack >= 0 || !K->o.ack_log) && r_setup(K, &R) == 0, all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, dsm_comm());
    struct keygen g;
    keygen_init(&g, &K->o, K->me);
    double t0 = MPI_Wtime();
    for (long i = 0; all && i < K->o.ops; i++) {
        if (ok && r_op(K, &R, &g)) {
            ok = 0;
        }
        // every rank does as many operations: the checkpoints (which hold the objects'
        // image, mpidsm.h) line up
        if (K->o.ckpt_every > 0 && (i + 1) % K->o.ckpt_every == 0 && dsm_checkpoint() != DSM_OK) {
            fprintf(stderr, "kvstore: rank %d: dsm_checkpoint: %s\n", K->me, dsm_last_error());
            ok = 0;
        }
    }
    MPI_Barrier(dsm_comm());
    double secs = MPI_Wtime() - t0;
    if (all) {
        report("dsm (replicated)", K, secs, K->o.ops);
        ok = r_final(K, &R) == 0 && ok;
    }
    *rate = secs > 0 ? (double)K->o.ops / secs : 0;
    free(g.cdf);
    free(R.obj);
    free(R.buf);
    if (R.ack >= 0) {
        close(R.ack);
    }
    return all && ok ? 0 : -1;
}

/* ---- the baseline: plain MPI RMA, a slot per key, one global lock ---- */

struct base {
    MPI_Win data, lock;
    char *mem;
    size_t slot; // 8 bytes of version, then the value
};

#define MPICHECK(call)                                                                             \
    do {                                                                                           \
        if ((call) != MPI_SUCCESS) {                                                               \
            fprintf(stderr, "kvstore: %s failed\n", #call);                                        \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

/* One operation under the global lock (an exclusive lock of rank 0's lock window). */
static int base_op(struct kv *K, struct base *B, struct keygen *g)
{
    long k = keygen_next(g);
    uint64_t u = (uint64_t)(rnd(&g->state) * 1000);
    bool read = u < (uint64_t)(K->o.read_ratio * 1000) || K->me >= K->o.keys;
    if (!read) {
        k = k - k % K->n + K->me;
        k = k >= K->o.keys ? K->me : k;
    }
    int owner = (int)(k % K->n);
    MPI_Aint disp = (MPI_Aint)((size_t)(k / K->n) * B->slot);
    uint64_t *slot = &K->model[k / K->n];
    MPICHECK(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, B->lock));
    int rc = 0;
    if (read) {
        uint64_t version;
        MPI_Get(&version, 8, MPI_BYTE, owner, disp, 8, MPI_BYTE, B->data);
        MPI_Get(K->got, (int)K->o.value_size, MPI_BYTE, owner, disp + 8, (int)K->o.value_size,
                MPI_BYTE, B->data);
        MPI_Win_flush(owner, B->data);
        fill_value(K->val, K->o.value_size, (uint64_t)k, version);
        rc = (owner == K->me && version != *slot) ||
             (version && memcmp(K->val, K->got, (size_t)K->o.value_size));
        K->reads++;
    } else {
        uint64_t version = rnd(&g->state) < 0.8 ? K->done + 1 : 0;
        fill_value(K->val, K->o.value_size, (uint64_t)k, version);
        MPI_Put(&version, 8, MPI_BYTE, owner, disp, 8, MPI_BYTE, B->data);
        MPI_Put(K->val, (int)K->o.value_size, MPI_BYTE, owner, disp + 8, (int)K->o.value_size,
                MPI_BYTE, B->data);
        MPI_Win_flush(owner, B->data);
        *slot = version;
        K->writes++;
    }
    MPICHECK(MPI_Win_unlock(0, B->lock));
    if (rc) {
        fprintf(stderr, "kvstore: baseline read of key %ld failed its check\n", k);
    }
    return rc ? -1 : 0;
}

static int run_base(struct kv *K, double *rate)
{
    struct base B;
    long own = (K->o.keys + K->n - 1) / K->n;
    B.slot = 8 + (size_t)K->o.value_size;
    MPICHECK(MPI_Win_allocate((MPI_Aint)(B.slot * (size_t)own), 1, MPI_INFO_NULL, dsm_comm(),
                              &B.mem, &B.data));
    memset(B.mem, 0, B.slot * (size_t)own);
    char *lockmem;
    MPICHECK(MPI_Win_allocate(8, 1, MPI_INFO_NULL, dsm_comm(), &lockmem, &B.lock));
    memset(K->model, 0, sizeof(uint64_t) * (size_t)own);
    MPI_Barrier(dsm_comm());
    MPI_Win_lock_all(MPI_MODE_NOCHECK, B.data);
    struct keygen g;
    keygen_init(&g, &K->o, K->me);
    int ok = 1;
    MPI_Barrier(dsm_comm());
    double t0 = MPI_Wtime();
    for (long i = 0; i < K->o.ops; i++) {
        K->done = (uint64_t)i;
        if (ok && base_op(K, &B, &g)) {
            ok = 0;
        }
    }
    MPI_Barrier(dsm_comm()); // the makespan: until the last rank is done
    double secs = MPI_Wtime() - t0;
    MPI_Win_unlock_all(B.data);
    report("mpi (global lock)", K, secs, K->o.ops);
    *rate = secs > 0 ? (double)K->o.ops / secs : 0;
    MPI_Win_free(&B.data);
    MPI_Win_free(&B.lock);
    free(g.cdf);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct kv K;
    memset(&K, 0, sizeof K);
    int p = parse(argc, argv, &K.o);
    if (p) {
        usage(p == 1 ? stdout : stderr);
        return p == 1 ? 0 : 2;
    }
    if (K.o.replicas > 0) { // the stores must hold every key's object (mpidsm.h, repl)
        if (K.o.keys > 1000) {
            fprintf(stderr, "kvstore: --replicas takes at most 1000 keys\n");
            return 2;
        }
        char size[32];
        snprintf(size, sizeof size, "%ld",
                 (1L << 20) + K.o.keys * (64 + 2 * (56 + K.o.value_size)));
        setenv("DSM_REPL_SIZE", size, 0);
    }
    if (dsm_init(&argc, &argv) != DSM_OK) {
        fprintf(stderr, "kvstore: dsm_init failed: %s\n", dsm_last_error());
        return 1;
    }
    K.me = dsm_rank();
    K.n = dsm_nranks();
    long own = (K.o.keys + K.n - 1) / K.n;
    K.model = calloc((size_t)own, sizeof(uint64_t));
    K.val = malloc((size_t)K.o.value_size);
    K.got = malloc((size_t)K.o.value_size);
    int rc = 0, all = 0;
    double r_dsm = 0, r_mpi = 0;
    if (K.o.replicas > 0) {
        rc |= run_repl(&K, &r_dsm) != 0;
    } else if (K.o.mode & 1) {
        rc |= run_dsm(&K, &r_dsm) != 0;
    }
    if (K.o.mode & 2) {
        K.reads = K.writes = 0;
        rc |= run_base(&K, &r_mpi) != 0;
    }
    MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, dsm_comm());
    double t[2] = {r_dsm, r_mpi}, tt[2];
    MPI_Allreduce(t, tt, 2, MPI_DOUBLE, MPI_MIN, dsm_comm()); // the slowest rank's rates
    if (K.me == 0) {
        if (K.o.mode == 3 && tt[1] > 0) {
            printf("kvstore: dsm / mpi-global-lock throughput: %.2fx\n", tt[0] / tt[1]);
        }
        printf("kvstore: %s\n", all ? "CHECKS FAILED" : "every read checked out");
    }
    free(K.model);
    free(K.val);
    free(K.got);
    dsm_finalize();
    return all ? 1 : 0;
}
