/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Single-process fuzz target for the allocator core (heap.c's TLSF on a plain buffer,
 * no MPI): seeded random allocations (sizes from 1 byte to 256 KiB, some aligned),
 * local and deferred (remote-style) frees, and bad frees (double, interior, made-up,
 * header) that must be refused without change. Every live block holds a pattern naming
 * it, checked when it is freed (overlap or corruption shows there); the invariant
 * checker walks the heap every 64 steps; at the end everything is freed and the heap
 * must be all wilderness again (no listed block, largest = capacity) with usage zero.
 *
 *   fuzz_heap [--seed S] [--iters N] [--size BYTES]      exit 0 ok, 1 failure
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"

#define MAXLIVE 4096
#define HDR_SIZE 65536u

struct live {
    uint64_t off, size;
    unsigned char pat;
};

static struct live lv[MAXLIVE];
static int nlive, failures;
static unsigned char *seg;
static uint64_t rng;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_heap: " __VA_ARGS__);                                                \
        fputc('\n', stderr);                                                                       \
        failures++;                                                                                \
    } while (0)

static uint64_t pick_size(void)
{
    uint64_t r = next_rand() % 100;
    if (r < 60) {
        return 1 + next_rand() % 256;
    }
    if (r < 90) {
        return 257 + next_rand() % 8192;
    }
    return 1 + next_rand() % (256 * 1024);
}

static void do_alloc(uint64_t seg_size)
{
    uint64_t size = pick_size(), off = 0;
    uint64_t align = next_rand() % 10 == 0 ? (uint64_t)16 << (next_rand() % 9) : 16;
    int rc = dsmi_heap_core_alloc(seg, size, align, &off);
    if (rc == DSM_ERR_NOMEM || (rc == DSM_ERR_ARG && size + 16 > seg_size - HDR_SIZE)) {
        return; // full is fine (frees come next); beyond the heap is refused
    }
    if (rc != DSM_OK || off % align != 0 || off < HDR_SIZE) {
        FAIL("alloc(%llu, align %llu) = %d, offset 0x%llx", (unsigned long long)size,
             (unsigned long long)align, rc, (unsigned long long)off);
        return;
    }
    struct live *l = &lv[nlive++];
    *l = (struct live){off, size, (unsigned char)(next_rand() | 1)};
    memset(seg + off, l->pat, size);
}

static void do_free(int i, int deferred)
{
    struct live l = lv[i];
    for (uint64_t k = 0; k < l.size; k++) {
        if (seg[l.off + k] != l.pat) {
            FAIL("block 0x%llx (%llu bytes) damaged at +%llu", (unsigned long long)l.off,
                 (unsigned long long)l.size, (unsigned long long)k);
            break;
        }
    }
    const char *why = NULL;
    int rc =
        deferred ? dsmi_heap_core_defer(seg, l.off, &why) : dsmi_heap_core_free(seg, l.off, &why);
    if (rc != DSM_OK) {
        FAIL("free(0x%llx) = %d: %s", (unsigned long long)l.off, rc, why ? why : "");
    }
    lv[i] = lv[--nlive];
    // Freed again at once: a double free, refused without change.
    if (dsmi_heap_core_free(seg, l.off, &why) != DSM_ERR_INVALID) {
        FAIL("double free of 0x%llx accepted", (unsigned long long)l.off);
    }
}

/* Pointers that are no block: all refused with DSM_ERR_INVALID. */
static void do_bad_free(uint64_t seg_size)
{
    uint64_t bad[4] = {next_rand() % seg_size, next_rand() % HDR_SIZE, next_rand(), 0};
    if (nlive > 0) {
        struct live *l = &lv[next_rand() % (uint64_t)nlive];
        bad[3] = l->off + 16 * (1 + next_rand() % 4); // interior (may pass the end: fine)
    }
    for (int k = 0; k < 4; k++) {
        int is_live = 0;
        for (int i = 0; i < nlive; i++) {
            is_live |= lv[i].off == bad[k];
        }
        if (is_live || bad[k] >= seg_size) {
            continue;
        }
        if (dsmi_heap_core_free(seg, bad[k], NULL) != DSM_ERR_INVALID) {
            FAIL("bad free of 0x%llx accepted", (unsigned long long)bad[k]);
        }
    }
}

static void check(const char *when)
{
    struct dsmi_heap_report r;
    const char *why = NULL;
    if (dsmi_heap_core_check(seg, &r, &why) != DSM_OK) {
        FAIL("invariant broken %s: %s", when, why ? why : "?");
    } else if (r.blocks != (uint64_t)nlive) {
        FAIL("%s: heap has %llu live blocks, expected %d", when, (unsigned long long)r.blocks,
             nlive);
    }
}

static int parse_args(int argc, char **argv, unsigned long *seed, long *iters, uint64_t *size)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seed")) {
            *seed = strtoul(argv[i + 1], NULL, 10);
        } else if (!strcmp(argv[i], "--iters")) {
            *iters = strtol(argv[i + 1], NULL, 10);
        } else if (!strcmp(argv[i], "--size")) {
            *size = strtoull(argv[i + 1], NULL, 10);
        } else {
            fprintf(stderr, "usage: fuzz_heap [--seed S] [--iters N] [--size BYTES]\n");
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long seed = 12345;
    long iters = 100000;
    uint64_t size = (uint64_t)4 << 20;
    if (parse_args(argc, argv, &seed, &iters, &size) != 0 || size < HDR_SIZE + 65536) {
        return 2;
    }
    printf("fuzz_heap: seed %lu, %ld iterations, %llu-byte segment\n", seed, iters,
           (unsigned long long)size);
    rng = seed * 2654435761u + 88172645463325252u;
    seg = aligned_alloc(64, size);
    if (seg == NULL || dsmi_heap_core_format(seg, size, rng) != DSM_OK) {
        return 2;
    }
    check("after format");
    for (long it = 0; it < iters && failures < 10; it++) {
        uint64_t r = next_rand() % 100;
        if ((r < 55 && nlive < MAXLIVE) || nlive == 0) {
            do_alloc(size);
        } else if (r < 97) {
            do_free((int)(next_rand() % (uint64_t)nlive), r >= 85);
        } else {
            do_bad_free(size);
        }
        if (it % 64 == 0) {
            check("during churn");
        }
    }
    while (nlive > 0) {
        do_free(nlive - 1, nlive % 3 == 0);
    }
    uint64_t off = 0; // one more alloc merges the pending frees
    if (dsmi_heap_core_alloc(seg, 1, 16, &off) != DSM_OK ||
        dsmi_heap_core_free(seg, off, NULL) != DSM_OK) {
        FAIL("final alloc/free failed");
    }
    struct dsmi_heap_report rep;
    const char *why = NULL;
    if (dsmi_heap_core_check(seg, &rep, &why) != DSM_OK || rep.in_use != 0 ||
        rep.free_blocks != 0 || rep.largest != size - HDR_SIZE) {
        FAIL("not one free block at the end (%s): in_use %llu, %llu free blocks, largest %llu",
             why ? why : "ok", (unsigned long long)rep.in_use, (unsigned long long)rep.free_blocks,
             (unsigned long long)rep.largest);
    }
    free(seg);
    printf("fuzz_heap: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
