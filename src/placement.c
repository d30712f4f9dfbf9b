/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Placement: where an allocation goes.
 *
 * Keyed placement hashes the key to 64 bits and maps it with jump consistent hashing
 * (Lamping and Veach 2014): O(log n) time, no table, near-perfect balance (max/mean
 * keys per rank about 1 + 3/sqrt(keys/rank)), and going from n to n + 1 ranks moves
 * exactly the expected 1/(n + 1) of the keys, all onto the new rank. Rendezvous hashing
 * has the same movement but costs O(n) hashes per key (1000 ranks: 1000 hashes).
 *
 * Balanced placement reads the usage every rank publishes in its header (heap.c keeps
 * it exact under the heap lock, readable with one MPI atomic) for a few candidates and
 * picks the emptiest whose largest free block fits: the "power of d choices" keeps the
 * most loaded rank close to the mean without reading all ranks or any collective.
 * Nothing here writes shared memory; the allocation itself is heap.c's dsm_alloc_on.
 */
#include "placement.h"

#include <string.h>
#include <time.h>

#include "heap.h"
#include "win.h"

#define CANDIDATES 4

uint64_t dsmi_place_key_hash(const void *key, size_t len)
{
    const uint64_t m = UINT64_C(0xc6a4a7935bd1e995);
    const unsigned char *p = key;
    uint64_t h = UINT64_C(0x9E3779B97F4A7C15) ^ (len * m);
    for (; len >= 8; len -= 8, p += 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        k *= m;
        k ^= k >> 47;
        k *= m;
        h ^= k;
        h *= m;
    }
    if (len > 0) {
        uint64_t k = 0;
        memcpy(&k, p, len); // the tail, little-endian-insensitive enough for placement
        h ^= k;
        h *= m;
    }
    h ^= h >> 47;
    h *= m;
    h ^= h >> 47;
    return h;
}

int dsmi_place_jump(uint64_t h, int nranks)
{
    int64_t b = -1, j = 0;
    while (j < nranks) {
        b = j;
        h = h * UINT64_C(2862933555777941757) + 1;
        j = (int64_t)((double)(b + 1) * ((double)(INT64_C(1) << 31) / (double)((h >> 33) + 1)));
    }
    return (int)b;
}

int dsmi_place_hash(const void *key, size_t len, int nranks)
{
    return dsmi_place_jump(dsmi_place_key_hash(key, len), nranks);
}

int dsm_place(const void *key, size_t keylen, int *rank)
{
    DSMI_CHECK_UP("dsm_place");
    if (rank == NULL || (key == NULL && keylen > 0)) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_place", "%s is NULL", rank ? "key" : "rank");
    }
    *rank = dsmi_place_hash(key, keylen, dsmi_rt.nranks);
    return DSM_OK;
}

int dsm_alloc_keyed(const void *key, size_t keylen, size_t size, dsm_gptr_t *out)
{
    DSMI_CHECK_UP("dsm_alloc_keyed");
    if (key == NULL && keylen > 0) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_alloc_keyed", "key is NULL");
    }
    return dsmi_heap_alloc_on(dsmi_place_hash(key, keylen, dsmi_rt.nranks), size, out,
                              "dsm_alloc_keyed");
}

/* ---- balanced ---- */

static _Thread_local uint64_t rng;
static _Thread_local int last_rank = -1;

static int random_rank(void)
{
    if (rng == 0) {
        rng = dsmi_now_ns() ^ ((uint64_t)dsmi_rt.rank << 32) ^ (uint64_t)(uintptr_t)&rng;
        rng |= 1;
    }
    rng ^= rng << 13; // xorshift64
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (int)(rng % (uint64_t)dsmi_w.nseg);
}

static bool listed(const int *r, int n, int x)
{
    for (int i = 0; i < n; i++) {
        if (r[i] == x) {
            return true;
        }
    }
    return false;
}

/* Up to CANDIDATES distinct segments (the ranks' own and, after a restart on fewer
 * ranks, the hosted ones: their memory would otherwise sit unused): all when few, else
 * this rank's own, the last choice, random. */
static int pick_candidates(int *r)
{
    int n = 0, nr = dsmi_w.nseg;
    if (nr <= CANDIDATES) {
        for (; n < nr; n++) {
            r[n] = n;
        }
        return n;
    }
    r[n++] = dsmi_rt.rank;
    if (last_rank >= 0 && last_rank != dsmi_rt.rank) {
        r[n++] = last_rank;
    }
    for (int tries = 0; n < CANDIDATES && tries < 64; tries++) {
        int x = random_rank();
        if (!listed(r, n, x)) {
            r[n++] = x;
        }
    }
    return n;
}

/* Try one rank when its published largest block fits; DSM_ERR_NOMEM means "next". */
static int try_rank(int rank, const dsm_usage_t *u, size_t size, dsm_gptr_t *out)
{
    if (u->largest_free < (uint64_t)size + 16) {
        return DSM_ERR_NOMEM;
    }
    // Full after all (its usage was published before another allocation): try the next.
    int outer = dsmi_probe_begin(DSM_ERR_NOMEM);
    int rc = dsmi_heap_alloc_on(rank, size, out, "dsm_alloc_balanced");
    dsmi_probe_end(outer);
    if (rc == DSM_OK) {
        last_rank = rank;
    }
    return rc;
}

/* Candidates by most free bytes first. */
static int try_candidates(size_t size, dsm_gptr_t *out)
{
    int r[CANDIDATES], n = pick_candidates(r), rc;
    dsm_usage_t u[CANDIDATES];
    for (int i = 0; i < n; i++) {
        if ((rc = dsm_usage(r[i], &u[i])) != DSM_OK) {
            return rc;
        }
    }
    for (int i = 1; i < n; i++) { // insertion sort, descending free
        for (int j = i; j > 0 && u[j].free > u[j - 1].free; j--) {
            dsm_usage_t tu = u[j];
            int tr = r[j];
            u[j] = u[j - 1], r[j] = r[j - 1];
            u[j - 1] = tu, r[j - 1] = tr;
        }
    }
    for (int i = 0; i < n; i++) {
        if ((rc = try_rank(r[i], &u[i], size, out)) != DSM_ERR_NOMEM) {
            return rc;
        }
    }
    return DSM_ERR_NOMEM;
}

int dsm_alloc_balanced(size_t size, dsm_gptr_t *out)
{
    DSMI_CHECK_UP("dsm_alloc_balanced");
    if (out == NULL || size == 0) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_alloc_balanced", "%s",
                         out ? "size is 0" : "out is NULL");
    }
    int rc = try_candidates(size, out);
    if (rc != DSM_ERR_NOMEM) {
        return rc;
    }
    // The candidates are full: every segment in turn, from a random start.
    int start = random_rank();
    for (int k = 0; k < dsmi_w.nseg; k++) {
        int rank = (start + k) % dsmi_w.nseg;
        dsm_usage_t u;
        if ((rc = dsm_usage(rank, &u)) != DSM_OK) {
            return rc;
        }
        if ((rc = try_rank(rank, &u, size, out)) != DSM_ERR_NOMEM) {
            return rc;
        }
    }
    return dsmi_fail(DSM_ERR_NOMEM, "dsm_alloc_balanced",
                     "no segment of %d has a free block of %zu bytes", dsmi_w.nseg, size);
}
