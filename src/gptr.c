/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Global pointer helpers. The encoding is fixed in mpidsm.h and implemented by
 * dsmi_gptr / dsmi_translate in win.h; these functions only build, split, compare and
 * print, plus the two local translations that need this rank's segment address
 * (dsmi_w.base: offset 0, DSMI_SEG_ALIGN-aligned).
 */
#include <inttypes.h>
#include <stdio.h>

#include "win.h"

_Static_assert(sizeof(dsm_gptr_t) == 8, "a global pointer must fit one 64-bit atomic");
_Static_assert(DSM_GPTR_RANK_BITS + DSM_GPTR_OFFSET_BITS == 64, "bit split must fill 64");

int dsm_gptr_make(int rank, uint64_t offset, dsm_gptr_t *out)
{
    if (out == NULL) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_gptr_make", "out is NULL");
    }
    long nranks = dsmi_rt.up ? dsmi_w.nseg : DSM_GPTR_MAX_RANKS; // segments (win.h)
    uint64_t limit = dsmi_rt.up ? dsmi_w.size : DSM_GPTR_MAX_OFFSET + 1;
    if (rank < 0 || rank >= nranks || offset >= limit) {
        return dsmi_fail(DSM_ERR_RANGE, "dsm_gptr_make",
                         "(rank %d, offset 0x%" PRIx64 ") is outside %ld segments of 0x%" PRIx64
                         " bytes",
                         rank, offset, nranks, limit);
    }
    *out = dsmi_gptr(rank, offset);
    return DSM_OK;
}

int dsm_gptr_rank(dsm_gptr_t g)
{
    return (int)(g.bits >> DSM_GPTR_OFFSET_BITS);
}

uint64_t dsm_gptr_offset(dsm_gptr_t g)
{
    return g.bits & DSMI_OFFSET_MASK;
}

bool dsm_gptr_is_null(dsm_gptr_t g)
{
    return g.bits == 0;
}

bool dsm_gptr_equal(dsm_gptr_t a, dsm_gptr_t b)
{
    return a.bits == b.bits;
}

int dsm_gptr_cmp(dsm_gptr_t a, dsm_gptr_t b)
{
    // The rank sits in the high bits, so unsigned order is (rank, offset) order.
    return (a.bits > b.bits) - (a.bits < b.bits);
}

int dsm_gptr_add(dsm_gptr_t g, int64_t delta, dsm_gptr_t *out)
{
    if (out == NULL || g.bits == 0) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_gptr_add", "%s", out ? "g is null" : "out is NULL");
    }
    uint64_t off = dsm_gptr_offset(g);
    uint64_t limit = dsmi_rt.up ? dsmi_w.size : DSM_GPTR_MAX_OFFSET + 1;
    if (off >= limit) {
        return dsmi_fail(DSM_ERR_RANGE, "dsm_gptr_add", "%d:0x%" PRIx64 " is not in a segment",
                         dsm_gptr_rank(g), off);
    }
    bool under = delta < 0 && (uint64_t)(-(delta + 1)) + 1 > off;
    bool over = delta > 0 && (uint64_t)delta >= limit - off;
    if (under || over) {
        return dsmi_fail(DSM_ERR_RANGE, "dsm_gptr_add",
                         "%d:0x%" PRIx64 " %+" PRId64 " leaves the segment (0x%" PRIx64 " bytes)",
                         dsm_gptr_rank(g), off, delta, limit);
    }
    *out = dsmi_gptr(dsm_gptr_rank(g), (uint64_t)((int64_t)off + delta));
    return DSM_OK;
}

char *dsm_gptr_str(dsm_gptr_t g, char *buf, size_t len)
{
    if (buf == NULL) {
        return "";
    }
    if (g.bits == 0) {
        snprintf(buf, len, "null");
    } else {
        snprintf(buf, len, "%d:0x%" PRIx64, dsm_gptr_rank(g), dsm_gptr_offset(g));
    }
    return buf;
}

int dsm_gptr_local(dsm_gptr_t g, void **out)
{
    int rank = 0;
    MPI_Aint disp = 0;
    DSMI_CHECK_UP("dsm_gptr_local");
    if (out == NULL) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_gptr_local", "out is NULL");
    }
    int rc = dsmi_translate(g, 0, true, "dsm_gptr_local", &rank, &disp);
    if (rc != DSM_OK) {
        return rc;
    }
    int seg = dsm_gptr_rank(g);
    char *base = dsmi_seg_local(seg); // its own segment or one it hosts
    if (base == NULL) {
        return dsmi_fail(DSM_ERR_RANGE, "dsm_gptr_local",
                         "%d:0x%" PRIx64 " lives on rank %d, not on this rank", seg,
                         dsm_gptr_offset(g), rank);
    }
    *out = base + dsm_gptr_offset(g); // disp is the window's, pad included
    return DSM_OK;
}

/* Invalid input fails as every call does (logged, dsm_last_error, DSM_ERRORS=abort) and
 * returns NULL; a valid pointer out of reach is no error, only NULL (as shmem_ptr). */
void *dsm_ptr(dsm_gptr_t g)
{
    int rank = 0;
    MPI_Aint disp = 0;
    if (!dsmi_rt.up) {
        dsmi_fail(DSM_ERR_STATE, "dsm_ptr", "mpidsm is not initialised (call dsm_init first)");
        return NULL;
    }
    if (dsmi_translate(g, 0, true, "dsm_ptr", &rank, &disp) != DSM_OK) {
        return NULL;
    }
    char *own = dsmi_seg_local(dsm_gptr_rank(g)); // always mapped, whatever the mode
    if (own != NULL) {
        return own + dsm_gptr_offset(g);
    }
    char *seg = dsmi_peer(rank);            // this node's segments in direct and hybrid mode
    return seg != NULL ? seg + disp : NULL; // disp: from the host's peer pointer (win.h)
}

int dsm_gptr_from_local(const void *addr, dsm_gptr_t *out)
{
    DSMI_CHECK_UP("dsm_gptr_from_local");
    if (out == NULL || addr == NULL) {
        return dsmi_fail(DSM_ERR_ARG, "dsm_gptr_from_local", "%s is NULL", out ? "addr" : "out");
    }
    // Its own segment is slot 0; after a restart on fewer ranks it hosts more (win.h).
    uintptr_t a = (uintptr_t)addr, base = (uintptr_t)dsmi_w.base;
    size_t k = a >= base ? (a - base) / dsmi_w.stride : 0;
    uint64_t off = a >= base ? (uint64_t)(a - base - k * dsmi_w.stride) : 0;
    if (a < base || k >= (size_t)dsmi_w.nslots || off < DSMI_HDR_SIZE || off >= dsmi_w.size) {
        return dsmi_fail(DSM_ERR_RANGE, "dsm_gptr_from_local",
                         "address %p is not in the user part of a segment this rank holds", addr);
    }
    *out = dsmi_gptr(dsmi_slot_seg((int)k), off);
    return DSM_OK;
}
