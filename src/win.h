/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The window layer: the one place that creates and frees MPI windows, knows the layout
 * of a segment, and turns a global pointer into (target rank, displacement).
 *
 * Segment layout (every rank's segment has the same size, agreed at dsm_init):
 *
 *   0       DSMI_HDR_SIZE                                             seg_size
 *   | header | heap ............................................... |
 *
 * Where a segment lies in its window: MPI returns window memory with whatever
 * alignment it likes (Open MPI's osc sm: 8 mod 16; MPICH: a page), and allocator
 * offsets alone cannot make addresses aligned. So each window is DSMI_SEG_ALIGN bytes
 * longer than the segment and the segment starts at the first DSMI_SEG_ALIGN boundary
 * inside it, pad[r] bytes in. The pads differ between ranks; the window layer keeps
 * them in dsmi_w.disp0, read only by dsmi_translate (in direct mode they are folded
 * into the dsmi_peer pointers instead; in hybrid mode mpidsm maps the memory itself at
 * DSMI_SEG_ALIGN boundaries in every process, and the pads are zero). A segment's offsets
 * (what global pointers, the heap and checkpoints use) never include the pad, so a
 * checkpoint written under one pad restores under another.
 *
 * Segments outlive ranks (DESIGN.md decision 9). The rank field of a global pointer
 * names a segment; dsmi_w.nseg segments exist, which is the rank count except after a
 * restart on another count (ckpt.c sizes it from the checkpoint before the window is
 * made: max(segments of the checkpoint, ranks)). Segment s lives on rank s % nranks, in
 * that rank's slot s / nranks: a rank's window holds its slots one after the other,
 * dsmi_w.stride bytes apart, slot 0 (its own segment, number = its rank) first. So
 * with as many segments as ranks every rank holds exactly its own, as before. The table
 * of dsmi_translate is per segment: host[s] (the rank whose window holds it) and
 * disp0[s] (the displacement of its offset 0 in that window: the host's pad plus
 * slot * stride; in direct mode slot * stride from dsmi_peer(host)). Nothing else
 * changes on a restart: no stored pointer is rewritten.
 *
 * The header is split into fixed regions, one per subsystem, so each subsystem owns its
 * bytes and no one's layout moves when another grows. Everything in it is made of
 * fixed-width integers and offsets, never process pointers, so a segment's bytes are its
 * whole state (checkpoints copy them as they are).
 */
#ifndef DSMI_WIN_H
#define DSMI_WIN_H

#include "runtime.h"

#define DSMI_MAGIC UINT64_C(0x4d504944534d3031) // "MPIDSM01"
#define DSMI_LAYOUT_VERSION 1u

/* Header regions: [offset, offset + size) of each, inside the first DSMI_HDR_SIZE bytes. */
#define DSMI_HDR_IDENT_OFF 0u // struct dsmi_ident (win.c)
#define DSMI_HDR_IDENT_SIZE 256u
#define DSMI_HDR_USAGE_OFF 256u // usage counters other ranks read (heap.c)
#define DSMI_HDR_USAGE_SIZE 768u
#define DSMI_HDR_HEAP_OFF 1024u // allocator roots (heap.c)
#define DSMI_HDR_HEAP_SIZE 15360u
#define DSMI_HDR_SYNC_OFF 16384u // lock words, queue nodes (sync.c)
#define DSMI_HDR_SYNC_SIZE 16384u
#define DSMI_HDR_ROOTS_OFF 32768u // named roots (ckpt.c)
#define DSMI_HDR_ROOTS_SIZE 16384u
#define DSMI_HDR_SPARE_OFF 49152u // unassigned
#define DSMI_HDR_SIZE 65536u      // the heap starts here: the first user offset

/* Region 0: who this segment belongs to and how it is laid out. */
struct dsmi_ident {
    uint64_t magic;       // DSMI_MAGIC
    uint32_t layout;      // DSMI_LAYOUT_VERSION
    uint32_t hdr_size;    // DSMI_HDR_SIZE
    uint64_t seg_size;    // bytes of the whole segment
    int32_t rank, nranks; // owner and job size when created
    uint64_t launch_id;   // random, the same on all ranks of one dsm_init
};
_Static_assert(sizeof(struct dsmi_ident) <= DSMI_HDR_IDENT_SIZE, "ident region overflow");

/* Every segment starts at an address that is a multiple of this (see above). */
#define DSMI_SEG_ALIGN ((size_t)DSM_MAX_ALIGN)
_Static_assert(DSMI_HDR_SIZE % 16 == 0, "the heap's first block must stay 16-byte aligned");

/* Most segments one rank's window holds (its own and hosted ones) after a restart on
 * fewer ranks; mpidsm.h documents it as DSM_MAX_SEGMENTS_PER_RANK. */
#define DSMI_MAX_SLOTS 16

struct dsmi_win {
    MPI_Win win;     // the data window, in a lock_all epoch from create to destroy
    char *base;      // this rank's segment (offset 0), DSMI_SEG_ALIGN-aligned
    size_t size;     // every segment's size (slot 0's window part is DSMI_SEG_ALIGN longer)
    bool shared;     // made by MPI_Win_allocate_shared (see the Open MPI note in win.c)
    bool passive;    // the MPI library needs the target's progress engine (progress.c)
    bool direct;     // direct mode: every rank is in peer[] (atomics are CPU atomics)
    char **peer;     // direct or hybrid mode: rank's slot 0 (offset 0) mapped here, or NULL
    MPI_Aint *disp0; // per segment: displacement of its offset 0 (dsmi_translate's table)
    int *host;       // per segment: the rank whose window holds it (dsmi_translate's table)
    int nseg;        // segments in the address space (>= ranks)
    int nslots;      // segments this rank's window holds (slot k: segment rank + k * nranks)
    size_t stride;   // bytes between two slots (size rounded up to DSMI_SEG_ALIGN)
    int npeers;      // how many ranks peer[] maps (this one included)
};
DSMI_HIDDEN extern struct dsmi_win dsmi_w;

/* Collective: allocate every segment of size bytes (nseg >= ranks of them, each rank
 * holding its slots, see above), write the ident headers, open the passive-target
 * epoch. single_node tells whether all ranks share a node. */
DSMI_HIDDEN int dsmi_win_create(size_t size, int nseg, bool single_node);
/* Collective: close the epoch and free the window. */
DSMI_HIDDEN int dsmi_win_destroy(void);
/* Collective: the small second window of the whole-rank lock (sync.c): 8 bytes per
 * rank, zeroed, no epoch open (it is used with MPI_Win_lock on one target at a time). */
DSMI_HIDDEN int dsmi_win_create_lockwin(MPI_Win *win);
/* Collective: free it (no-op for MPI_WIN_NULL). */
DSMI_HIDDEN int dsmi_win_free_lockwin(MPI_Win *win);
/* MPI_Win_flush_all(win) over its nranks targets, done right on MPICH (see win.c). */
DSMI_HIDDEN int dsmi_win_flush_all(MPI_Win win, int nranks, const char *func);
/* Before MPI_Init: steer Open MPI away from known-broken one-sided components. */
DSMI_HIDDEN void dsmi_win_prepare_mpi(void);
/* Open MPI's "osc" MCA setting (MPI_T) into value; "" when unset or not Open MPI. */
DSMI_HIDDEN void dsmi_win_osc_setting(char *value, size_t cap);

/*
 * The data path of each (caller, target) pair, decided once at dsm_init (win.c):
 *  - direct mode (DSM_DIRECT, every rank on one node): every segment is mapped here;
 *    data moves with memcpy and atomics are CPU atomics;
 *  - hybrid mode (DSM_DIRECT, ranks on several nodes): the segments of the ranks on this
 *    node are mapped here (node-shared memory) and reached with loads and stores; ranks
 *    on other nodes with MPI RMA on the job-wide window over the same memory;
 *  - MPI mode (DSM_DIRECT=0, or the memory could not be shared): MPI RMA for everyone.
 *
 * The atomics rule. MPI promises no atomicity between its atomics and CPU atomics (osc
 * sm and pt2pt take a lock or run the operation in the target's progress engine, a NIC
 * does it in hardware), so every rank must use one mechanism on a word. The rule: in
 * direct mode every atomic is a CPU atomic; otherwise (hybrid and MPI mode) every atomic
 * on the data window, to any target the caller's own segment included, is an MPI atomic.
 * That covers dsm_atomic_*, the heap lock, the MCS queue words, signals and the usage
 * counters, and every read of a word that atomics update goes through an MPI atomic too
 * (MPI_NO_OP), never a plain load. So dsmi_peer() serves data only and dsmi_peer_atomic()
 * is the one gate for atomics. Plain put/get racing with atomics on one word is the
 * user's data race, on every path (mpidsm.h, consistency model).
 */

/* Where rank's segment (offset 0) is mapped in this process, for loads and stores (put,
 * get, strided, vectors, the heap's metadata copies): direct mode every rank, hybrid mode
 * the ranks of this node. NULL: use MPI calls. rank is a host (dsmi_translate's *rank);
 * address a byte as dsmi_peer(rank) + the displacement dsmi_translate gave (the slot's
 * place included; pads are folded in or zero on these paths). */
static inline char *dsmi_peer(int rank)
{
    return dsmi_w.peer ? dsmi_w.peer[rank] : NULL;
}

/* The rank whose window holds segment seg (seg in 0..nseg-1): the target rank of an
 * MPI call on it. */
static inline int dsmi_host(int seg)
{
    return dsmi_w.host[seg];
}

/* The segment in this rank's slot k (0 <= k < dsmi_w.nslots) and where it is here. */
static inline int dsmi_slot_seg(int k)
{
    return dsmi_rt.rank + k * dsmi_rt.nranks;
}
static inline char *dsmi_slot_base(int k)
{
    return dsmi_w.base + (size_t)k * dsmi_w.stride;
}

/* Segment seg's offset 0 in this process when this rank hosts it, else NULL. */
static inline char *dsmi_seg_local(int seg)
{
    if (seg < 0 || seg >= dsmi_w.nseg || dsmi_w.host[seg] != dsmi_rt.rank) {
        return NULL;
    }
    return dsmi_slot_base(seg / dsmi_rt.nranks);
}

/* dsmi_peer for a segment id instead of a translated rank: segment seg's offset 0 as
 * mapped here (direct mode, and hybrid mode for a host on this node), else NULL. For
 * data only; atomics go through dsmi_peer_seg_atomic. */
static inline char *dsmi_peer_seg(int seg)
{
    char *p = dsmi_peer(dsmi_w.host[seg]);
    return p ? p + dsmi_w.disp0[seg] : NULL;
}

/* Where to apply an atomic to rank's segment with CPU atomics, or NULL for an MPI atomic
 * (the atomics rule above): only in direct mode. */
static inline char *dsmi_peer_atomic(int rank)
{
    return dsmi_w.direct ? dsmi_w.peer[rank] : NULL;
}

/* dsmi_peer_atomic for a segment id: segment seg's offset 0 for CPU atomics, or NULL. */
static inline char *dsmi_peer_seg_atomic(int seg)
{
    return dsmi_w.direct ? dsmi_w.peer[dsmi_w.host[seg]] + dsmi_w.disp0[seg] : NULL;
}

/* Whether this job runs in direct mode (every rank mapped, no MPI operation ever pending
 * on the data window). False in hybrid mode, which also has MPI operations to complete. */
static inline bool dsmi_direct(void)
{
    return dsmi_w.direct;
}

/* Hybrid mode: some ranks mapped, others reached by MPI. */
static inline bool dsmi_hybrid(void)
{
    return dsmi_w.peer != NULL && !dsmi_w.direct;
}

/* Direct mode's memory synchronisation: no MPI operation is ever pending on the data
 * window, so completing them (flush) and publishing local stores (MPI_Win_sync) both
 * come down to a full CPU fence. Returns whether it handled the call. */
static inline bool dsmi_direct_fence(void)
{
    if (!dsmi_direct()) {
        return false;
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return true;
}

/* Whether an operation on a rank's memory needs that rank's MPI progress engine: an MPI
 * path whose window is not shared memory (the same answer on every rank). */
static inline bool dsmi_win_needs_progress(void)
{
    return dsmi_w.passive;
}

/* Encoding of dsm_gptr_t (documented in mpidsm.h). */
#define DSMI_OFFSET_MASK DSM_GPTR_MAX_OFFSET
static inline dsm_gptr_t dsmi_gptr(int rank, uint64_t offset)
{
    return (dsm_gptr_t){((uint64_t)rank << DSM_GPTR_OFFSET_BITS) | offset};
}

/*
 * The one translation from a global pointer to (rank, displacement), with the bounds
 * check every access needs: [offset, offset + len) inside the target's segment and, for
 * user accesses, past the header. The rank field is a segment; *rank is its host.
 * Restarting on a different rank count changes this function's table and nothing else.
 * The displacement is where the path addresses the byte: in the host's window for an
 * MPI call (offset + the host's pad + slot * stride), from dsmi_peer(*rank) in direct
 * and hybrid mode (offset + slot * stride: peer points at the host's slot 0, and hybrid
 * windows have no pad, so the two agree there). Every MPI call on the data window takes
 * its displacement from here.
 * Returns DSM_OK or fails (logged) as func.
 */
static inline int dsmi_translate(dsm_gptr_t g, size_t len, bool user, const char *func, int *rank,
                                 MPI_Aint *disp)
{
    uint64_t r = g.bits >> DSM_GPTR_OFFSET_BITS;
    uint64_t off = g.bits & DSMI_OFFSET_MASK;
    uint64_t lo = user ? DSMI_HDR_SIZE : 0;
    if (__builtin_expect(r >= (uint64_t)dsmi_w.nseg || off < lo || len > dsmi_w.size - off ||
                             off > dsmi_w.size,
                         0)) {
        if (g.bits == 0) {
            return dsmi_fail(DSM_ERR_ARG, func, "null global pointer");
        }
        return dsmi_fail(DSM_ERR_RANGE, func,
                         "global pointer %llu:0x%llx (+%zu bytes) is outside the address "
                         "space (%d segments, user bytes 0x%llx..0x%zx of each)",
                         (unsigned long long)r, (unsigned long long)off, len, dsmi_w.nseg,
                         (unsigned long long)lo, dsmi_w.size);
    }
    *rank = dsmi_w.host[r]; // segment -> hosting rank (r itself unless restarted N->M)
    *disp = (MPI_Aint)off + dsmi_w.disp0[r];
    return DSM_OK;
}

#endif /* DSMI_WIN_H */
