/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The per-rank allocator that lives inside the window (heap.c). Its contract with the
 * rest of the runtime: all of its state is in the segment (header region
 * DSMI_HDR_HEAP_*, usage in DSMI_HDR_USAGE_*, block headers in the heap), as offsets.
 */
#ifndef DSMI_HEAP_H
#define DSMI_HEAP_H

#include "runtime.h"

/* Subsystem start/stop (runtime.c's table). Start is collective. */
DSMI_HIDDEN int dsmi_heap_start(void);
DSMI_HIDDEN int dsmi_heap_stop(void);
/* Bytes from the start of this rank's segment that can hold live data: a checkpoint
 * writes [0, extent) and may skip the rest. */
DSMI_HIDDEN uint64_t dsmi_heap_extent(void);
/* The same for the segment at base (a slot of this rank's window, win.h). */
DSMI_HIDDEN uint64_t dsmi_heap_extent_at(const char *base);
/* The segment's bytes were replaced (restart or recovery): validate the heap's
 * metadata and rebuild anything derived from it. DSM_ERR_CORRUPT when invalid. */
DSMI_HIDDEN int dsmi_heap_reload(void);
/* The same for the segment at base (a slot of this rank's window, a hosted segment). */
DSMI_HIDDEN int dsmi_heap_reload_at(char *base);
/* Format the empty heap of this rank's slot k (its ident header must be written). */
DSMI_HIDDEN void dsmi_heap_format_slot(int k);

/* Return this rank's cache of freed small blocks (heap_cache.c) to its heap, so that the
 * heap's bytes and usage hold no cached block (before a checkpoint's image). */
DSMI_HIDDEN int dsmi_heap_cache_flush(const char *func);
/* Bytes in that cache now (a hint when other threads run; tests). */
DSMI_HIDDEN uint64_t dsmi_hcache_bytes(void);

/* dsm_alloc_on reporting errors as func (placement.c's calls). */
DSMI_HIDDEN int dsmi_heap_alloc_on(int rank, size_t size, dsm_gptr_t *out, const char *func);

/* What a walk of a heap found (dsmi_heap_check, dsmi_heap_core_check). Byte counts
 * are whole blocks, headers included; pending = remote frees not yet merged back. */
struct dsmi_heap_report {
    uint64_t blocks, free_blocks, pending;
    uint64_t in_use, free, largest;
};

/* Take this rank's heap lock and walk the whole heap checking every invariant (block
 * chain, tags, footers, free lists, bitmaps, pending list, published usage). DSM_OK or
 * DSM_ERR_CORRUPT (logged with the first violation). r may be NULL. */
DSMI_HIDDEN int dsmi_heap_check(struct dsmi_heap_report *r);
/* RMA operations and flushes (round trips) of the calling thread's last remote heap
 * operation (dsm_alloc_on / dsm_free of another rank's block), for tests and tuning. */
DSMI_HIDDEN void dsmi_heap_last_cost(unsigned *ops, unsigned *flushes);

/* The allocator core on a plain buffer laid out like a segment (header, then heap):
 * no MPI, no locks, no logging. For the single-process fuzz target. Offsets are user
 * offsets (what a global pointer holds). Results: DSM_OK, DSM_ERR_NOMEM, DSM_ERR_ARG,
 * DSM_ERR_INVALID, DSM_ERR_CORRUPT; *why (may be NULL) gets a static reason. */
DSMI_HIDDEN int dsmi_heap_core_format(void *seg, uint64_t seg_size, uint64_t salt);
DSMI_HIDDEN int dsmi_heap_core_alloc(void *seg, uint64_t size, uint64_t align, uint64_t *off);
DSMI_HIDDEN int dsmi_heap_core_free(void *seg, uint64_t off, const char **why);
/* A remote-style free: the block goes to the pending list (merged by the next alloc). */
DSMI_HIDDEN int dsmi_heap_core_defer(void *seg, uint64_t off, const char **why);
DSMI_HIDDEN int dsmi_heap_core_check(void *seg, struct dsmi_heap_report *r, const char **why);

/* Tests of the heap lock: how long a waiter waits for one holder (30 s), and taking
 * (take true) or releasing this rank's own heap lock outside any operation. */
DSMI_HIDDEN extern uint64_t dsmi_heap_lock_timeout_ns;
DSMI_HIDDEN int dsmi_heap_lock_hold(bool take);

#endif /* DSMI_HEAP_H */
