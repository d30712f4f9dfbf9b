/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/**
 * \file mpidsm.h
 * \brief mpidsm: a distributed shared memory runtime on MPI-3 one-sided communication.
 *
 * Every rank owns one segment of a global address space (one MPI window allocated at
 * dsm_init). Memory anywhere in it is named by a 64-bit global pointer (rank, offset) and
 * is read and written with put/get, updated with remote atomics, and guarded by
 * distributed locks. This header is the whole public API and its reference.
 *
 * \par The error contract
 * Every function that can fail returns an `int` holding a ::dsm_err value: ::DSM_OK (0) on
 * success, a positive `DSM_ERR_*` code otherwise. Results come back through
 * out-parameters, which are left untouched on failure. Each failure also logs one line
 * naming the rank, the call and the cause (`DSM_LOG_LEVEL`), which dsm_last_error()
 * returns to the caller. With `DSM_ERRORS=abort` any failure prints that line and calls
 * `MPI_Abort`. Nothing in this library exits or aborts because of a caller error.
 *
 * \par The consistency model
 * - dsm_put() and dsm_get() are blocking: on return the data is in place at the target
 *   (put) or in the caller's buffer (get), and visible to every later operation of any
 *   rank that is ordered after this return (by a barrier, a lock hand-over, a flag read
 *   with an atomic).
 * - Non-blocking dsm_put_nb() / dsm_get_nb() return a request. dsm_wait() / dsm_test()
 *   completing a get means the data is in the buffer; completing a put means only that
 *   the source buffer may be reused. Remote completion of puts needs dsm_flush() for
 *   that target or dsm_flush_all(); dsm_flush*() also completes every outstanding
 *   non-blocking get of the calling rank to that target.
 * - Atomics (`dsm_atomic_*`) are blocking (except the `_nb` forms) and complete at the
 *   target on return. They are atomic with respect to other atomics of the same class
 *   (one MPI type, see \ref atomics) on the same location, from any rank, and not with
 *   respect to dsm_put()/dsm_get() of it, nor to atomics of a different class on
 *   overlapping bytes. Atomic targets must be naturally aligned.
 * - Two operations from one rank to the same target location are not ordered unless
 *   the first is complete (blocking call returned, or flushed) before the second starts.
 * - dsm_barrier() completes every outstanding operation of every rank and synchronises
 *   memory: anything written before the barrier by any rank is visible after it to all.
 * - Local loads and stores through dsm_gptr_local() pointers are ordinary memory
 *   accesses: the usual MPI unified-model rules apply, so order them against remote
 *   accesses with a barrier, a lock or an atomic flag.
 * - These promises hold on both data paths: MPI one-sided calls, and, when every rank
 *   shares one node (DSM_DIRECT=1, the default), loads, stores and CPU atomics on the
 *   other ranks' segments mapped through an MPI shared-memory window (README).
 */
#ifndef DSM_H
#define DSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DSM_BUILDING_LIBRARY) && defined(__GNUC__)
#define DSM_API __attribute__((visibility("default")))
#else
#define DSM_API
#endif

/** \defgroup version Version
 * @{ */
#define DSM_VERSION_MAJOR 0
#define DSM_VERSION_MINOR 1
#define DSM_VERSION_PATCH 0
/** Version as one number: major * 10000 + minor * 100 + patch. */
#define DSM_VERSION (DSM_VERSION_MAJOR * 10000 + DSM_VERSION_MINOR * 100 + DSM_VERSION_PATCH)
/** \brief Version of the library linked at run time, as ::DSM_VERSION. Never fails. */
DSM_API int dsm_version(void);
/** @} */

/** \defgroup errors Errors
 * @{ */
/** Result codes. Never renumbered once released. */
enum dsm_err {
    DSM_OK = 0,              /**< success */
    DSM_ERR_ARG = 1,         /**< bad argument: null pointer, zero size, bad flag */
    DSM_ERR_NOMEM = 2,       /**< not enough memory in the segment or the process */
    DSM_ERR_STATE = 3,       /**< not initialised, finalised, or wrong object state */
    DSM_ERR_RANGE = 4,       /**< address or rank outside the global address space */
    DSM_ERR_ENV = 5,         /**< a DSM_* environment variable is malformed or differs */
    DSM_ERR_MPI = 6,         /**< an MPI call failed */
    DSM_ERR_UNSUPPORTED = 7, /**< the MPI library or build cannot do this */
    DSM_ERR_INTERNAL = 8,    /**< a broken internal invariant (a bug in mpidsm) */
    DSM_ERR_INVALID = 9,     /**< not a live block: freed, interior or made-up pointer */
    DSM_ERR_BUSY = 10,       /**< resource held by someone else (try-operations) */
    DSM_ERR_TIMEOUT = 11,    /**< waited longer than the configured limit */
    DSM_ERR_NOTFOUND = 12,   /**< no such name, checkpoint or entry */
    DSM_ERR_IO = 13,         /**< a file system operation failed */
    DSM_ERR_CORRUPT = 14,    /**< stored data failed validation (checksum, header) */
    DSM_ERR_MISMATCH = 15,   /**< a checkpoint of another program or heap size, or too big */
    DSM_ERR_QUORUM = 16,     /**< a replicated object lost a majority of its copies */
    DSM_ERR_COUNT            /**< number of codes; not a code */
};

/** \brief Name of a result code: a static string, never NULL ("unknown error" for
 * anything out of range). */
DSM_API const char *dsm_strerror(int err);

/** \brief The message of the calling thread's last failed call ("" if none): rank, call
 * and cause. The string stays valid until the thread's next failing call. */
DSM_API const char *dsm_last_error(void);
/** @} */

/** \defgroup types Types
 * @{ */
/**
 * \brief A global pointer: 64 bits, one rank's segment and a byte offset in it.
 *
 * Bits 63..44 hold the rank (20 bits: at most ::DSM_GPTR_MAX_RANKS ranks), bits 43..0
 * the byte offset (44 bits: segments up to ::DSM_GPTR_MAX_OFFSET + 1 bytes, 16 TiB).
 * Offset 0 of every segment is the runtime's header, so the all-zero value (rank 0,
 * offset 0) is ::DSM_GPTR_NULL and never a valid allocation. The value fits one 64-bit
 * atomic, so global pointers stored in shared memory can be swapped and
 * compared-and-swapped (dsm_atomic_cas_gptr()).
 */
typedef struct dsm_gptr {
    uint64_t bits; /**< encoded (rank, offset); use the helpers, not this field */
} dsm_gptr_t;

#define DSM_GPTR_RANK_BITS 20
#define DSM_GPTR_OFFSET_BITS 44
#define DSM_GPTR_MAX_RANKS (1L << DSM_GPTR_RANK_BITS)
#define DSM_GPTR_MAX_OFFSET ((UINT64_C(1) << DSM_GPTR_OFFSET_BITS) - 1)
/** The null global pointer. */
#define DSM_GPTR_NULL ((dsm_gptr_t){0})

/** A non-blocking operation in flight. Plain storage: copy it, never inspect it. */
typedef struct dsm_request {
    uint64_t opaque[2];
} dsm_request_t;

/** Facts about where this rank runs (dsm_topology()). */
typedef struct dsm_topo {
    int32_t rank;          /**< rank in dsm_comm() */
    int32_t nranks;        /**< ranks in dsm_comm() */
    int32_t node;          /**< node index, 0..nnodes-1 */
    int32_t nnodes;        /**< nodes the job spans */
    int32_t local_rank;    /**< rank among the ranks of this node */
    int32_t local_ranks;   /**< ranks on this node */
    int32_t numa_nodes;    /**< NUMA nodes of this node (1 without hwloc) */
    int32_t cores;         /**< physical cores of this node */
    int32_t pus;           /**< hardware threads of this node */
    int32_t direct_ranks;  /**< ranks whose segments this rank reaches with loads and
                                stores (DSM_DIRECT): nranks on one node, local_ranks on
                                several nodes (hybrid mode), 0 = MPI calls only */
    uint64_t node_memory;  /**< bytes of memory on this node */
    uint64_t segment_size; /**< bytes of each rank's segment (all equal) */
} dsm_topo_t;
/** @} */

/** \defgroup lifecycle Start and stop
 * @{ */
/**
 * \brief Start mpidsm on MPI_COMM_WORLD; initialises MPI first if the program has not.
 *
 * Reads every `DSM_*` variable (strictly; a malformed value is ::DSM_ERR_ENV), checks
 * that the ones that must agree do agree on all ranks, allocates this rank's segment
 * (`DSM_HEAP_SIZE`) as one MPI window and opens the passive-target epoch that lasts
 * until dsm_finalize(). With `DSM_THREADS=multiple` MPI is initialised with
 * `MPI_THREAD_MULTIPLE` (an already initialised MPI must provide it). When the job may
 * span nodes and `DSM_PROGRESS` is not `off`, MPI is initialised with
 * `MPI_THREAD_MULTIPLE` whatever `DSM_THREADS` says (Open MPI: only with osc ucx), and
 * on a network path a progress thread lets other ranks' operations on this rank's
 * memory complete while it computes (README, passive progress; `DSM_PROGRESS=on` and
 * no such thread possible: ::DSM_ERR_UNSUPPORTED).
 * \param[in,out] argc,argv passed to MPI_Init_thread when MPI is not yet initialised;
 *                may be NULL
 * \return ::DSM_OK, ::DSM_ERR_STATE (already initialised, MPI finalised, thread level
 *         too low), ::DSM_ERR_ENV (also a job name whose directory name would exceed 255
 *         bytes), ::DSM_ERR_NOMEM, ::DSM_ERR_MPI, ::DSM_ERR_UNSUPPORTED; and with
 *         `DSM_RESTART=auto` or `required` (see \ref ckpt): ::DSM_ERR_IO (the job
 *         directory or a commit record cannot be read, or is a symbolic link),
 *         ::DSM_ERR_MISMATCH (the job directory holds another program's checkpoints;
 *         with `required` also: no committed epoch fits this heap size or format, or
 *         can be hosted by this rank count, see dsm_nsegments()),
 *         ::DSM_ERR_NOTFOUND (`required`: no committed epoch),
 *         ::DSM_ERR_CORRUPT (`required`: no fitting epoch could be restored)
 * \par Collective over MPI_COMM_WORLD. Not thread safe: call from one thread.
 */
DSM_API int dsm_init(int *argc, char ***argv);

/** \brief As dsm_init() over a communicator of the program's; MPI must be initialised.
 * \param[in] comm the ranks that share the address space; mpidsm duplicates it
 * \par Collective over comm. */
DSM_API int dsm_init_comm(MPI_Comm comm);

/**
 * \brief Stop mpidsm: complete all operations, free the window, finalise MPI if
 * dsm_init() initialised it. `DSM_STATS=1` prints per-rank counters first.
 * \return ::DSM_OK, ::DSM_ERR_STATE (not initialised), ::DSM_ERR_MPI
 * \par Collective. Every object of this library is invalid afterwards.
 */
DSM_API int dsm_finalize(void);

/** \brief Whether dsm_init() has succeeded and dsm_finalize() has not run. */
DSM_API bool dsm_initialized(void);

/** \brief This rank's number in dsm_comm(), or -1 when not initialised. */
DSM_API int dsm_rank(void);

/** \brief Number of ranks sharing the address space, or 0 when not initialised. */
DSM_API int dsm_nranks(void);

/** \brief Most segments one rank holds after a restart on fewer ranks (see
 * dsm_nsegments()). */
#define DSM_MAX_SEGMENTS_PER_RANK 16

/**
 * \brief Number of segments in the address space, or 0 when not initialised.
 *
 * Segments outlive ranks. The "rank" of a global pointer, and the rank argument of
 * dsm_alloc_on(), dsm_usage(), dsm_gptr_make() and dsm_rank_lock(), names a segment:
 * 0..dsm_nsegments()-1. Normally there is one per rank (dsm_nsegments() ==
 * dsm_nranks()) and segment r is rank r's. A restart (DSM_RESTART=auto or required) from
 * a checkpoint of N segments on M ranks keeps all of them: the job has max(N, M)
 * segments; segment s is held by rank s % M, so with M < N a rank holds up to
 * ceil(N / M) segments (its own, number = its rank, plus hosted ones; at most
 * ::DSM_MAX_SEGMENTS_PER_RANK, and its memory is that many times DSM_HEAP_SIZE), and with
 * M > N ranks N..M-1 start with empty segments. Every global pointer stored anywhere
 * stays valid, unchanged: only the runtime's translation from segment to rank changes.
 * Data, heap and usage of a hosted segment are as at the checkpoint; allocation, free,
 * put/get, atomics, mutexes and roots work on it from every rank. Not kept for a
 * hosted segment: the protected regions of the process that owned it (it is gone), its
 * partner replica in memory (its image is read from the shared checkpoint directory,
 * where every checkpoint of a job that hosts segments writes every image), and
 * dsm_simulate_failure()/dsm_recover() act on a rank's own segment only.
 * dsm_rank_lock() of a hosted segment locks its host rank (every segment it holds).
 * A checkpoint with more segments than ::DSM_MAX_SEGMENTS_PER_RANK x M, or only on
 * node-local storage (DSM_CKPT_LOCAL_DIR without its shared level), is not restored on
 * M ranks: skipped with a logged reason (DSM_RESTART=required then fails with
 * ::DSM_ERR_MISMATCH). dsm_place() and dsm_alloc_keyed() place over the ranks of the
 * running job (their own segments 0..M-1; see dsm_place() for keys placed before a
 * restart); dsm_alloc_balanced() over every segment.
 */
DSM_API int dsm_nsegments(void);

/** \brief mpidsm's private duplicate of the communicator (errors return), for programs
 * that mix their own MPI calls in; MPI_COMM_NULL when not initialised. Do not free it. */
DSM_API MPI_Comm dsm_comm(void);

/** \brief Fill *out with where this rank runs (node, NUMA, cores, memory).
 * \return ::DSM_OK, ::DSM_ERR_ARG (out NULL), ::DSM_ERR_STATE */
DSM_API int dsm_topology(dsm_topo_t *out);
/** @} */

/** \defgroup gptr Global pointers
 * Pure functions: no communication, usable from any thread.
 * @{ */
/** \brief Build a pointer from (rank, offset).
 * \return ::DSM_OK, ::DSM_ERR_ARG (out NULL), ::DSM_ERR_RANGE (rank outside 0..nranks-1
 *         or offset beyond the segment; before init: beyond the encodable limits) */
DSM_API int dsm_gptr_make(int rank, uint64_t offset, dsm_gptr_t *out);
/** \brief The rank of g (garbage in, garbage out: no validation). */
DSM_API int dsm_gptr_rank(dsm_gptr_t g);
/** \brief The byte offset of g in its rank's segment (no validation). */
DSM_API uint64_t dsm_gptr_offset(dsm_gptr_t g);
/** \brief Whether g is ::DSM_GPTR_NULL. */
DSM_API bool dsm_gptr_is_null(dsm_gptr_t g);
/** \brief Whether a and b name the same byte. */
DSM_API bool dsm_gptr_equal(dsm_gptr_t a, dsm_gptr_t b);
/** \brief Order pointers by (rank, offset): negative, zero or positive as a <, =, > b. */
DSM_API int dsm_gptr_cmp(dsm_gptr_t a, dsm_gptr_t b);
/** \brief *out = g moved by delta bytes within the same segment.
 * \return ::DSM_OK, ::DSM_ERR_ARG (out NULL or g null), ::DSM_ERR_RANGE (the result
 *         leaves the segment) */
DSM_API int dsm_gptr_add(dsm_gptr_t g, int64_t delta, dsm_gptr_t *out);
/** \brief Write "rank:0xoffset" (or "null") into buf; returns buf. Never fails: a small
 * buffer is truncated, a NULL buf returns "". */
DSM_API char *dsm_gptr_str(dsm_gptr_t g, char *buf, size_t len);
/** \brief A process address for g when it lives on the calling rank.
 * \param[out] out the address; valid until dsm_finalize()
 * \return ::DSM_OK, ::DSM_ERR_ARG, ::DSM_ERR_RANGE (g on another rank or out of range),
 *         ::DSM_ERR_STATE */
DSM_API int dsm_gptr_local(dsm_gptr_t g, void **out);
/**
 * \brief A plain pointer to the byte g names when the calling process can load and store
 * it directly, else NULL (OpenSHMEM's shmem_ptr).
 *
 * The caller's own memory always has one. Another rank's has one when its segment is
 * mapped here: every rank of the caller's node when `DSM_DIRECT` is on (the default),
 * on one node and on several; none with `DSM_DIRECT=0` or where the node could not share
 * memory (dsm_topology()'s direct_ranks says how many ranks are reachable). So a loop
 * can walk a neighbour's data without copying.
 *
 * Invalid input (a null pointer, an offset outside the user bytes of the segment, a rank
 * outside the job, mpidsm not initialised) also returns NULL, and unlike a valid
 * pointer out of reach it is an error: logged with the cause, given to dsm_last_error(),
 * counted, and fatal under `DSM_ERRORS=abort`.
 *
 * Loads and stores through the pointer are ordinary memory accesses on shared memory:
 * they are ordered against mpidsm's operations only by dsm_barrier(), a mutex or
 * dsm_flush() on the owner's side, as for dsm_gptr_local() memory; and they are not
 * atomic against dsm_atomic_* (use those for words others update atomically).
 * Alignment: offset k lies at an address equal to k modulo 4096 (a page); modulo
 * ::DSM_MAX_ALIGN for the caller's own segment and, in a job over several nodes, for
 * every segment (mpidsm maps them itself there; on one node MPI maps them).
 * \param[in] g any global pointer
 * \return the address (valid until dsm_finalize()), or NULL
 * \par Not collective. Completion: none (no communication). Thread safety: yes.
 */
DSM_API void *dsm_ptr(dsm_gptr_t g);
/** \brief The global pointer for a process address inside a segment this rank holds:
 * its own, or one it hosts after a restart on fewer ranks (see dsm_nsegments()).
 * \return ::DSM_OK, ::DSM_ERR_ARG, ::DSM_ERR_RANGE (not in the segment), ::DSM_ERR_STATE */
DSM_API int dsm_gptr_from_local(const void *addr, dsm_gptr_t *out);
/** @} */

/** \defgroup rma Data movement and completion
 * Every access is bounds-checked against the target's segment: the runtime header at the
 * start of each segment is not user memory (::DSM_ERR_RANGE).
 * Thread safety: with `DSM_THREADS=multiple` all of these may be called concurrently.
 * @{ */
/** \brief Copy len bytes from src to g. Complete at the target on return.
 * \return ::DSM_OK, ::DSM_ERR_ARG (src NULL with len > 0, g null), ::DSM_ERR_RANGE,
 *         ::DSM_ERR_STATE, ::DSM_ERR_MPI. len 0 is a no-op that returns ::DSM_OK. */
DSM_API int dsm_put(dsm_gptr_t g, const void *src, size_t len);
/** \brief Copy len bytes from g into dst. Complete (data in dst) on return.
 * \return as dsm_put() */
DSM_API int dsm_get(void *dst, dsm_gptr_t g, size_t len);
/** \brief Start a put; *req completes when src may be reused (not remote completion:
 * see dsm_flush()). \return as dsm_put() */
DSM_API int dsm_put_nb(dsm_gptr_t g, const void *src, size_t len, dsm_request_t *req);
/** \brief Start a get; *req completes when the data is in dst. \return as dsm_put() */
DSM_API int dsm_get_nb(void *dst, dsm_gptr_t g, size_t len, dsm_request_t *req);
/** \brief Wait for *req to complete; the request is consumed.
 * \return ::DSM_OK, ::DSM_ERR_ARG (NULL or unused request), ::DSM_ERR_MPI */
DSM_API int dsm_wait(dsm_request_t *req);
/** \brief Set *done to whether *req has completed (consumed when it has); never blocks.
 * \return as dsm_wait() */
DSM_API int dsm_test(dsm_request_t *req, bool *done);
/** \brief Complete at the target every operation this rank issued to rank.
 * \return ::DSM_OK, ::DSM_ERR_RANGE (bad rank), ::DSM_ERR_STATE, ::DSM_ERR_MPI */
DSM_API int dsm_flush(int rank);
/** \brief Complete at their targets all operations this rank issued. */
DSM_API int dsm_flush_all(void);
/** \brief Complete all operations of all ranks, then synchronise: everything written
 * before it by any rank is visible to every rank after it.
 * \par Collective. */
DSM_API int dsm_barrier(void);
/** @} */

/** \defgroup atomics Remote atomics
 * Blocking (except the `_nb` forms), complete at the target on return, atomic with
 * respect to the atomics of the same class (below) on the same location from any rank.
 * The target must be aligned to the size of the type (::DSM_ERR_ARG otherwise).
 * Fetching variants store the value found before the operation in *old (which may not
 * be NULL).
 *
 * \par Which atomics are atomic with which
 * MPI makes its atomics atomic only against atomics of the same MPI type, so each
 * class below uses one type and is atomic within itself only; do not mix classes (or
 * dsm_put()/dsm_get()) on one word:
 * - `_i32` (and dsm_wait_until*_i32): MPI_INT32_T
 * - `_u32`, `_float` (as bits) and dsm_wait_until*_u32: MPI_UINT32_T
 * - `_i64` (and dsm_wait_until*_i64): MPI_INT64_T
 * - `_u64`, `_double` (as bits), `_gptr`, signals (dsm_put_signal(),
 *   dsm_signal_fetch()) and dsm_wait_until*_u64: MPI_UINT64_T
 *
 * On the direct path every atomic is a CPU atomic, so same-width classes happen to be
 * atomic with each other there; portable programs keep to the rule above.
 * Return codes for all: ::DSM_OK, ::DSM_ERR_ARG, ::DSM_ERR_RANGE, ::DSM_ERR_STATE,
 * ::DSM_ERR_MPI, and ::DSM_ERR_UNSUPPORTED for compare-and-swap on an MPI library with a
 * known broken one that could not be avoided (the message says how to relaunch).
 *
 * Each operation exists for `int32_t` (suffix `_i32`), `int64_t` (`_i64`) and
 * `uint64_t` (`_u64`), e.g. dsm_atomic_fetch_add_i64(); *g is the value at g. Arithmetic
 * wraps around (two's complement) and never fails on overflow.
 * - `fetch_add`: (g, val, old): *old = *g, then *g = *g + val.
 * - `add`: (g, val): *g = *g + val, nothing fetched.
 * - `swap`: (g, val, old): *old = *g, then *g = val.
 * - `cas`: (g, expected, desired, old): *old = *g, and *g = desired if *old == expected
 *   (compare-and-swap; it succeeded when *old == expected).
 * - `load`: (g, out): *out = *g, read atomically.
 * - `store`: (g, val): *g = val, written atomically.
 * - `fetch_and`, `fetch_or`, `fetch_xor`: (g, val, old): *old = *g, then *g = *g & val,
 *   *g | val or *g ^ val.
 * - `and`, `or`, `xor`: (g, val): *g = *g & val, *g | val or *g ^ val, nothing fetched.
 * @{ */
#define DSM_ATOMIC_DECLARE(T, S)                                                                   \
    DSM_API int dsm_atomic_fetch_add_##S(dsm_gptr_t g, T val, T *old);                             \
    DSM_API int dsm_atomic_add_##S(dsm_gptr_t g, T val);                                           \
    DSM_API int dsm_atomic_swap_##S(dsm_gptr_t g, T val, T *old);                                  \
    DSM_API int dsm_atomic_cas_##S(dsm_gptr_t g, T expected, T desired, T *old);                   \
    DSM_API int dsm_atomic_load_##S(dsm_gptr_t g, T *out);                                         \
    DSM_API int dsm_atomic_store_##S(dsm_gptr_t g, T val);                                         \
    DSM_API int dsm_atomic_fetch_and_##S(dsm_gptr_t g, T val, T *old);                             \
    DSM_API int dsm_atomic_fetch_or_##S(dsm_gptr_t g, T val, T *old);                              \
    DSM_API int dsm_atomic_fetch_xor_##S(dsm_gptr_t g, T val, T *old);                             \
    DSM_API int dsm_atomic_and_##S(dsm_gptr_t g, T val);                                           \
    DSM_API int dsm_atomic_or_##S(dsm_gptr_t g, T val);                                            \
    DSM_API int dsm_atomic_xor_##S(dsm_gptr_t g, T val);

/** int32_t: dsm_atomic_{fetch_add,add,swap,cas,load,store,fetch_and,fetch_or,
 * fetch_xor,and,or,xor}_i32 */
DSM_ATOMIC_DECLARE(int32_t, i32)
/** uint32_t: the same family with suffix _u32 */
DSM_ATOMIC_DECLARE(uint32_t, u32)
/** int64_t: the same family with suffix _i64 */
DSM_ATOMIC_DECLARE(int64_t, i64)
/** uint64_t: the same family with suffix _u64 */
DSM_ATOMIC_DECLARE(uint64_t, u64)

/** \brief Compare-and-swap a global pointer stored at g (8-byte aligned): if *g equals
 * expected, it becomes desired; *old receives what was there. */
DSM_API int dsm_atomic_cas_gptr(dsm_gptr_t g, dsm_gptr_t expected, dsm_gptr_t desired,
                                dsm_gptr_t *old);
/** \brief Swap the global pointer stored at g with val; *old receives the previous one. */
DSM_API int dsm_atomic_swap_gptr(dsm_gptr_t g, dsm_gptr_t val, dsm_gptr_t *old);
/** \brief Atomically read the global pointer stored at g. */
DSM_API int dsm_atomic_load_gptr(dsm_gptr_t g, dsm_gptr_t *out);
/** \brief Atomically write val as the global pointer stored at g. */
DSM_API int dsm_atomic_store_gptr(dsm_gptr_t g, dsm_gptr_t val);

/*
 * float and double: load, store, swap, compare-and-swap and (fetch-)add, with suffix
 * _float and _double, on 4- and 8-byte aligned words. They work on the bit pattern
 * (see "Which atomics are atomic with which" below): compare-and-swap compares bits,
 * so -0.0 does not match 0.0 and a NaN matches the identical NaN; fetch-add is a
 * compare-and-swap loop (on the MPI path two or more round trips, and
 * ::DSM_ERR_UNSUPPORTED where compare-and-swap is).
 */
#define DSM_ATOMIC_FP_DECLARE(T, S)                                                                \
    DSM_API int dsm_atomic_load_##S(dsm_gptr_t g, T *out);                                         \
    DSM_API int dsm_atomic_store_##S(dsm_gptr_t g, T val);                                         \
    DSM_API int dsm_atomic_swap_##S(dsm_gptr_t g, T val, T *old);                                  \
    DSM_API int dsm_atomic_cas_##S(dsm_gptr_t g, T expected, T desired, T *old);                   \
    DSM_API int dsm_atomic_fetch_add_##S(dsm_gptr_t g, T val, T *old);                             \
    DSM_API int dsm_atomic_add_##S(dsm_gptr_t g, T val);
/** float: dsm_atomic_{load,store,swap,cas,fetch_add,add}_float */
DSM_ATOMIC_FP_DECLARE(float, float)
/** double: the same with suffix _double */
DSM_ATOMIC_FP_DECLARE(double, double)

/*
 * Non-blocking fetching atomics of the integer types (suffix _i32, _u32, _i64, _u64,
 * then _nb): fetch-add, swap and load. They start the operation and return; *req
 * completes (dsm_wait(), dsm_test()) when the value found is in *old (*out). *val and
 * *old belong to the operation until then: do not change or free them. The update is
 * complete at the target after dsm_flush() of that rank (or on return, on the direct
 * path). They are atomic with the blocking atomics of the same type.
 * \return the codes above, and ::DSM_ERR_ARG for a NULL val, old or req.
 */
#define DSM_ATOMIC_NB_DECLARE(T, S)                                                                \
    DSM_API int dsm_atomic_fetch_add_##S##_nb(dsm_gptr_t g, const T *val, T *old,                  \
                                              dsm_request_t *req);                                 \
    DSM_API int dsm_atomic_swap_##S##_nb(dsm_gptr_t g, const T *val, T *old, dsm_request_t *req);  \
    DSM_API int dsm_atomic_load_##S##_nb(dsm_gptr_t g, T *out, dsm_request_t *req);
/** dsm_atomic_{fetch_add,swap,load}_i32_nb */
DSM_ATOMIC_NB_DECLARE(int32_t, i32)
/** the same for uint32_t: _u32_nb */
DSM_ATOMIC_NB_DECLARE(uint32_t, u32)
/** the same for int64_t: _i64_nb */
DSM_ATOMIC_NB_DECLARE(int64_t, i64)
/** the same for uint64_t: _u64_nb */
DSM_ATOMIC_NB_DECLARE(uint64_t, u64)
/** @} */

/** \defgroup strided Strided and indexed transfers
 * 2-D patches and I/O vectors between the caller's memory and one rank's segment, in
 * one call: on the MPI path each side is one MPI derived datatype (so MPI moves the
 * patch in one operation), on the direct path a copy loop. Completion is that of
 * dsm_put()/dsm_get() (blocking: complete on return) and of dsm_put_nb()/dsm_get_nb()
 * for the `_nb` forms (the request completes locally; a put needs dsm_flush() for
 * remote completion). The local buffer must not overlap the remote elements.
 *
 * Common return codes: ::DSM_OK, ::DSM_ERR_STATE, ::DSM_ERR_MPI, ::DSM_ERR_NOMEM;
 * ::DSM_ERR_ARG (NULL descriptor, buffer or request, elem_size 0, a zero stride, elements
 * of one side that overlap each other, overlapping pieces on the written side, more
 * than INT_MAX bytes in one call); ::DSM_ERR_RANGE (a remote element outside the
 * target's user memory). A zero count (or a vector of only empty pieces) moves nothing
 * and returns ::DSM_OK (an `_nb` call then returns a request that is already complete).
 * Thread safety: as dsm_put().
 * @{ */
/**
 * A 2-D patch: count[1] rows of count[0] elements of elem_size bytes. Strides are in
 * elements, on each side: stride[0] between neighbours in a row (1 = contiguous),
 * stride[1] between the starts of neighbouring rows (the leading dimension). Element
 * (i, j) sits at byte elem_size * (i * stride[0] + j * stride[1]) of its side. A 1-D
 * strided transfer (OpenSHMEM's iput/iget) is count = {n, 1}; column-major data is
 * described by swapping the roles (stride = {ld, 1}). Every stride must be at least 1,
 * and no two elements of one side may coincide.
 */
typedef struct dsm_stride {
    size_t elem_size;        /**< bytes of one element */
    size_t count[2];         /**< elements per row, rows */
    size_t remote_stride[2]; /**< at the global pointer: {in a row, between rows} */
    size_t local_stride[2];  /**< in the caller's buffer: {in a row, between rows} */
} dsm_stride_t;

/** \brief Put the patch p from src (local side) to dst (remote side). */
DSM_API int dsm_put_strided(dsm_gptr_t dst, const void *src, const dsm_stride_t *p);
/** \brief Get the patch p from src (remote side) into dst (local side). */
DSM_API int dsm_get_strided(void *dst, dsm_gptr_t src, const dsm_stride_t *p);
/** \brief Start dsm_put_strided(); *req completes when src may be reused. */
DSM_API int dsm_put_strided_nb(dsm_gptr_t dst, const void *src, const dsm_stride_t *p,
                               dsm_request_t *req);
/** \brief Start dsm_get_strided(); *req completes when the data is in dst. */
DSM_API int dsm_get_strided_nb(void *dst, dsm_gptr_t src, const dsm_stride_t *p,
                               dsm_request_t *req);

/** One piece of an I/O vector: len bytes at the caller's local address and at byte
 * offset of the vector's base pointer (same rank, same segment). */
typedef struct dsm_iov {
    void *local;     /**< the caller's bytes (may be NULL when len is 0) */
    uint64_t offset; /**< from the base pointer, in bytes */
    size_t len;      /**< bytes; 0 = skip this piece */
} dsm_iov_t;

/** \brief Put n pieces: iov[i].local to base + iov[i].offset. The remote pieces must not
 * overlap each other (the local ones may). */
DSM_API int dsm_putv(dsm_gptr_t base, const dsm_iov_t *iov, size_t n);
/** \brief Get n pieces: base + iov[i].offset to iov[i].local. The local pieces must not
 * overlap each other (the remote ones may). */
DSM_API int dsm_getv(dsm_gptr_t base, const dsm_iov_t *iov, size_t n);
/** \brief Start dsm_putv(); *req completes when the local pieces may be reused. */
DSM_API int dsm_putv_nb(dsm_gptr_t base, const dsm_iov_t *iov, size_t n, dsm_request_t *req);
/** \brief Start dsm_getv(); *req completes when the data is in the local pieces. */
DSM_API int dsm_getv_nb(dsm_gptr_t base, const dsm_iov_t *iov, size_t n, dsm_request_t *req);
/** @} */

/** \defgroup array Distributed arrays
 * 1-D and 2-D arrays of `int64_t` or `double` spread over all ranks, as Global Arrays
 * and DASH offer them: created and destroyed collectively, read, written and
 * accumulated by patches from any rank, located element by element, and used in place
 * by each owner.
 *
 * Distribution, per dimension: ::DSM_DIST_BLOCK (contiguous blocks of ceil(N/P)),
 * ::DSM_DIST_CYCLIC (element i on grid coordinate i mod P) or ::DSM_DIST_BLOCK_CYCLIC
 * (blocks of `block[d]` dealt round-robin), over a P0 x P1 process grid (rank = p0 *
 * P1 + p1; a 1-D array uses P x 1). Each owner stores its elements row-major (local
 * rows x local columns, as ScaLAPACK does); dsm_array_local() gives them in place and
 * dsm_array_local_to_global() says which global element each is.
 *
 * Patches follow Global Arrays' NGA_Put/Get/Acc: `lo` and `hi` are inclusive global
 * indices (one per dimension), `buf` holds the patch row-major with `ld` elements
 * between rows (ignored for 1-D). put and get are complete on return (data at the
 * owners / in buf); acc adds buf's elements to the patch (a sum of int64_t or double)
 * and is atomic per element with other dsm_array_acc() and dsm_array_read_inc() calls,
 * not with put/get. Arrays start zeroed.
 *
 * Common return codes: ::DSM_OK, ::DSM_ERR_STATE, ::DSM_ERR_MPI, ::DSM_ERR_ARG (NULL
 * argument, not a live handle, ld shorter than the patch's row, bad description);
 * ::DSM_ERR_RANGE (an index or patch outside the array, lo > hi).
 * Thread safety: with `DSM_THREADS=multiple` the patch, locate and local calls may run
 * concurrently; create and destroy are collective. Using a handle after
 * dsm_array_destroy() is undefined (it is freed).
 * @{ */
/** Element types of a distributed array. */
enum dsm_array_type {
    DSM_ARRAY_INT64 = 1, /**< int64_t */
    DSM_ARRAY_DOUBLE = 2 /**< double */
};
/** Distributions of one dimension. */
enum dsm_dist {
    DSM_DIST_BLOCK = 0,       /**< one contiguous block per grid coordinate */
    DSM_DIST_CYCLIC = 1,      /**< element by element, round-robin */
    DSM_DIST_BLOCK_CYCLIC = 2 /**< blocks of block[d] elements, round-robin */
};
/** What dsm_array_create() makes. Fields past ndim are ignored. */
typedef struct dsm_array_desc {
    int type;         /**< ::DSM_ARRAY_INT64 or ::DSM_ARRAY_DOUBLE */
    int ndim;         /**< 1 or 2 */
    int64_t dims[2];  /**< elements per dimension (rows, columns), 1 .. 2^40 */
    int dist[2];      /**< ::dsm_dist per dimension */
    int64_t block[2]; /**< block size per dimension for ::DSM_DIST_BLOCK_CYCLIC */
    int grid[2];      /**< 2-D: process grid P0 x P1 (= dsm_nranks()); {0, 0} = choose */
} dsm_array_desc_t;
/** A distributed array (process-local handle). */
typedef struct dsm_array *dsm_array_t;

/** \brief Create a zeroed array described by *desc; *out receives the handle.
 * \return the common codes, ::DSM_ERR_NOMEM (the largest local part does not fit a
 *         segment); ::DSM_ERR_ARG on every rank when any rank's description is invalid
 *         or the ranks' descriptions differ.
 * \par Collective (every rank, the same description). */
DSM_API int dsm_array_create(const dsm_array_desc_t *desc, dsm_array_t *out);
/** \brief Free the array and its memory. \par Collective. */
DSM_API int dsm_array_destroy(dsm_array_t a);
/** \brief Write the patch [lo, hi] from buf. Complete at the owners on return. */
DSM_API int dsm_array_put(dsm_array_t a, const int64_t *lo, const int64_t *hi, const void *buf,
                          int64_t ld);
/** \brief Read the patch [lo, hi] into buf. Complete on return. */
DSM_API int dsm_array_get(dsm_array_t a, const int64_t *lo, const int64_t *hi, void *buf,
                          int64_t ld);
/** \brief Add buf's elements to the patch [lo, hi], atomically per element. Complete at
 * the owners on return. */
DSM_API int dsm_array_acc(dsm_array_t a, const int64_t *lo, const int64_t *hi, const void *buf,
                          int64_t ld);
/** \brief Where element idx lives: its owner in *rank and, when g is not NULL, its
 * global pointer in *g (usable with dsm_get() and, for int64 arrays, the `_i64` atomics). */
DSM_API int dsm_array_locate(dsm_array_t a, const int64_t *idx, int *rank, dsm_gptr_t *g);
/** \brief This rank's elements in place: *ptr points at count[0] x count[1] elements
 * (count[0] only for 1-D), row-major with count[1] per row; valid until destroy. Local
 * loads and stores follow the consistency model's rules for dsm_gptr_local(). */
DSM_API int dsm_array_local(dsm_array_t a, void **ptr, int64_t *count);
/** \brief The global index of this rank's local element lidx (as dsm_array_local()). */
DSM_API int dsm_array_local_to_global(dsm_array_t a, const int64_t *lidx, int64_t *gidx);
/** \brief Atomically add inc to int64 element idx; *old receives its previous value (a
 * shared counter, as Global Arrays' NGA_Read_inc). ::DSM_ERR_ARG for a double array. */
DSM_API int dsm_array_read_inc(dsm_array_t a, const int64_t *idx, int64_t inc, int64_t *old);
/** \brief Make the array findable after a restart: write its description (type,
 * shape, distribution, grid, where its elements are) into a small block in rank 0's
 * segment and bind the named root name to it (see dsm_root_set(); an earlier binding of
 * name is replaced, and an earlier root of this array is removed). The elements and the
 * description are then in every checkpoint; after a restart dsm_array_attach(name)
 * gives a handle to the array with the elements of the checkpoint.
 * dsm_array_destroy() removes the root (when name still names this array) and frees the
 * description.
 * \return the common codes, ::DSM_ERR_ARG (name NULL, empty, longer than
 *         ::DSM_CKPT_NAME_MAX, or differing between ranks; on every rank), and as
 *         dsm_alloc() and dsm_root_set() on rank 0 (then on every rank).
 * \par Collective (the same name). */
DSM_API int dsm_array_root(dsm_array_t a, const char *name);
/** \brief A handle in *out for the array whose description dsm_array_root() bound to
 * name: after a restart (DSM_RESTART) the array of the checkpoint with its elements, or
 * in the same run a second handle to the same array. An array has at most one handle
 * that is destroyed: destroying two handles of one array frees it twice.
 * \return the common codes, ::DSM_ERR_NOTFOUND (no root name), ::DSM_ERR_CORRUPT (name
 *         does not name an array's description), ::DSM_ERR_MISMATCH (the array was made
 *         for another number of ranks); each on every rank.
 * \par Collective (the same name). */
DSM_API int dsm_array_attach(const char *name, dsm_array_t *out);
/** @} */

/** \defgroup reduce Reductions and broadcast into global memory
 * Collectives over all ranks (built on MPI_Reduce, MPI_Allreduce and MPI_Bcast on
 * dsm_comm()) whose result is written to global memory: each rank passes a local
 * source buffer and a ::dsm_gptr_t destination, which may be in any rank's segment and
 * may overlap the source. The result is complete at every destination, and visible to
 * every rank, when the call returns on any rank (it ends with a barrier). Bytes are
 * written as by dsm_put(): what other ranks write to a destination at the same time
 * is a race, as for dsm_put().
 *
 * Every rank must pass the same type, op, count and root; the calls check that
 * collectively before any data moves, so a bad or differing argument on any rank makes
 * every rank return an error (the faulty rank its own code and log message, the others
 * ::DSM_ERR_ARG "another rank's arguments are invalid"), never a hang.
 *
 * Common return codes: ::DSM_OK, ::DSM_ERR_STATE, ::DSM_ERR_MPI, ::DSM_ERR_NOMEM;
 * ::DSM_ERR_ARG (type or op not in the enums, a bitwise op on float or double, root
 * not a rank, count above INT32_MAX, src NULL with count > 0, a null destination that
 * is written, differing arguments between ranks); ::DSM_ERR_RANGE (a destination
 * outside user memory). A count of 0 checks and agrees but moves nothing.
 * Thread safety: collective; call from one thread per rank.
 * @{ */
/** Element types of dsm_reduce() and dsm_allreduce(). */
enum dsm_type {
    DSM_TYPE_INT32 = 1,  /**< int32_t */
    DSM_TYPE_INT64 = 2,  /**< int64_t */
    DSM_TYPE_UINT64 = 3, /**< uint64_t */
    DSM_TYPE_FLOAT = 4,  /**< float */
    DSM_TYPE_DOUBLE = 5  /**< double */
};
/** Reduction operations (MPI's; the bitwise ones on integer types only). */
enum dsm_op {
    DSM_OP_SUM = 1,  /**< sum */
    DSM_OP_PROD = 2, /**< product */
    DSM_OP_MIN = 3,  /**< minimum */
    DSM_OP_MAX = 4,  /**< maximum */
    DSM_OP_BAND = 5, /**< bitwise and */
    DSM_OP_BOR = 6,  /**< bitwise or */
    DSM_OP_BXOR = 7  /**< bitwise exclusive or */
};
/** \brief Combine every rank's count elements at src element-wise with op and write
 * the result to the root's dst (count elements of type). Only the root's dst is used
 * (the others may pass ::DSM_GPTR_NULL).
 * \return the common codes. \par Collective (same type, op, count, root). */
DSM_API int dsm_reduce(dsm_gptr_t dst, const void *src, size_t count, int type, int op, int root);
/** \brief As dsm_reduce(), and every rank writes the result to its own dst.
 * \return the common codes. \par Collective (same type, op, count). */
DSM_API int dsm_allreduce(dsm_gptr_t dst, const void *src, size_t count, int type, int op);
/** \brief Copy len bytes at the root's src to every rank's own dst (src is read on
 * the root only). \return the common codes. \par Collective (same len and root). */
DSM_API int dsm_broadcast(dsm_gptr_t dst, const void *src, size_t len, int root);
/** @} */

/** \defgroup signal Signals and waiting
 * Put-with-signal (as OpenSHMEM 1.5 defines it) and waiting until words of the caller's
 * own memory satisfy a comparison, on both data paths and across nodes.
 *
 * A signal is a `uint64_t` word in user memory, 8-byte aligned, written only through
 * dsm_put_signal() or the `_u64` atomics (it is updated with the same MPI_UINT64_T
 * atomics, so it is atomic with them). dsm_put_signal() completes its data at the
 * target before it updates the signal, so a rank that sees the new signal value (with
 * dsm_signal_fetch() or a wait) and then reads the data finds it.
 *
 * The waits poll the caller's own words; the writer needs to call nothing else, and no
 * wake-up can be lost: a value stored at any time is seen by the next poll. Between
 * polls a waiter backs off (a few tight polls, then yielding the core, then sleeping
 * from 1 us doubling up to `DSM_WAIT_SLEEP` us), so waiting does not occupy a core;
 * the price is up to that much latency after a long wait. `DSM_WAIT_TIMEOUT`=s > 0
 * makes a wait that lasts longer than s seconds fail with ::DSM_ERR_TIMEOUT.
 * Wait on a word with the type of the atomics that write it (`_u64` for signals): MPI
 * makes atomics atomic only against atomics of the same type.
 *
 * On return of a successful wait, every operation that the writer completed before it
 * wrote the awaited value (a dsm_put_signal()'s data, a blocking put, a flushed
 * non-blocking put) is visible to the caller's gets and local loads.
 *
 * Progress: on the MPI path across nodes the writer's put and atomic are applied at
 * the waiter by the waiter's MPI progress engine, which its polls turn. They need
 * nothing more from the waiter; a writer's call to a rank that neither waits nor calls
 * mpidsm may take until that rank next does (see the README on progress).
 *
 * Common return codes: ::DSM_OK, ::DSM_ERR_STATE, ::DSM_ERR_MPI; ::DSM_ERR_ARG (null
 * pointer, misaligned word, unknown comparison or signal operation, a signal word
 * inside the data it signals); ::DSM_ERR_RANGE (outside user memory; a wait on another
 * rank's memory); ::DSM_ERR_TIMEOUT (`DSM_WAIT_TIMEOUT` expired).
 * Thread safety: with `DSM_THREADS=multiple` any thread may call any of these.
 * @{ */
/** Signal operations of dsm_put_signal(). */
enum dsm_signal_op {
    DSM_SIGNAL_SET = 0, /**< the signal word becomes value */
    DSM_SIGNAL_ADD = 1  /**< value is added to the signal word (modulo 2^64) */
};
/** Comparisons of the waits: the word (left) against the value (right). */
enum dsm_cmp {
    DSM_CMP_EQ = 0, /**< == */
    DSM_CMP_NE = 1, /**< != */
    DSM_CMP_GT = 2, /**< > */
    DSM_CMP_GE = 3, /**< >= */
    DSM_CMP_LT = 4, /**< < */
    DSM_CMP_LE = 5  /**< <= */
};

/**
 * \brief Put len bytes from src to g, then update the signal word sig with value.
 * \param[in] g,src,len as dsm_put() (len 0: only the signal)
 * \param[in] sig the signal word: user memory of any rank, 8-byte aligned, not inside
 *            [g, g + len)
 * \param[in] op ::DSM_SIGNAL_SET or ::DSM_SIGNAL_ADD
 * \return the common codes. Bad arguments are found before any data moves.
 * \par Completion: data and signal are complete at their targets on return, and the
 *      data is complete before the signal changes.
 */
DSM_API int dsm_put_signal(dsm_gptr_t g, const void *src, size_t len, dsm_gptr_t sig,
                           uint64_t value, int op);
/** \brief Atomically read the signal word sig (any rank) into *out. */
DSM_API int dsm_signal_fetch(dsm_gptr_t sig, uint64_t *out);
/** \brief Wait until the caller's own signal word sig compares cmp to value; *out (may
 * be NULL) receives the value that satisfied the comparison. */
DSM_API int dsm_signal_wait_until(dsm_gptr_t sig, int cmp, uint64_t value, uint64_t *out);

/*
 * The waits, one family per word type T with suffix S (i32, u32, i64, u64). ivar/ivars
 * name words in the caller's own segment (::DSM_ERR_RANGE otherwise), aligned to
 * sizeof(T). status, when not NULL, has n entries: a nonzero entry leaves that word out.
 * - dsm_wait_until_S: until *ivar cmp value.
 * - dsm_wait_until_all_S: until every word that takes part holds, all in one pass over
 *   the array. Returns at once when none takes part (also n = 0).
 * - dsm_wait_until_any_S: until one holds; *index is its index, or SIZE_MAX at once
 *   when none takes part.
 * - dsm_wait_until_some_S: until at least one holds; indices[0..*count) are the indices
 *   of all that held in that pass (indices has room for n); *count = 0 at once when
 *   none takes part.
 */
#define DSM_WAIT_DECLARE(T, S)                                                                     \
    DSM_API int dsm_wait_until_##S(dsm_gptr_t ivar, int cmp, T value);                             \
    DSM_API int dsm_wait_until_all_##S(dsm_gptr_t ivars, size_t n, const int *status, int cmp,     \
                                       T value);                                                   \
    DSM_API int dsm_wait_until_any_##S(dsm_gptr_t ivars, size_t n, const int *status, int cmp,     \
                                       T value, size_t *index);                                    \
    DSM_API int dsm_wait_until_some_##S(dsm_gptr_t ivars, size_t n, const int *status, int cmp,    \
                                        T value, size_t *indices, size_t *count);
/** int32_t words: dsm_wait_until{,_all,_any,_some}_i32 */
DSM_WAIT_DECLARE(int32_t, i32)
/** uint32_t words: the same family with suffix _u32 */
DSM_WAIT_DECLARE(uint32_t, u32)
/** int64_t words: the same family with suffix _i64 */
DSM_WAIT_DECLARE(int64_t, i64)
/** uint64_t words (signals): the same family with suffix _u64 */
DSM_WAIT_DECLARE(uint64_t, u64)
/** @} */

/** \defgroup stats Statistics
 * @{ */
/** Per-rank operation counters since dsm_init() (dsm_stats()). The data-path counters
 * are kept only with `DSM_STATS=1` (they cost a few ns per operation); errors always. */
typedef struct dsm_stats {
    uint64_t puts, gets;           /**< put and get calls (blocking and non-blocking) */
    uint64_t bytes_put, bytes_got; /**< payload bytes */
    uint64_t atomics;              /**< atomic operations issued */
    uint64_t flushes;              /**< flushes issued (explicit and implied) */
    uint64_t flush_ns;             /**< nanoseconds spent in flushes */
    uint64_t errors;               /**< failed calls */
    uint64_t ops_direct;           /**< put, get and atomic calls (dsm_put(), dsm_get(), their
                                        _nb forms, dsm_atomic_*) done with loads, stores and
                                        CPU atomics on a segment mapped here */
    uint64_t ops_mpi;              /**< the same calls done with MPI one-sided operations */
    uint64_t repl_writes;          /**< dsm_repl_write() calls that wrote a version (n > 0) */
    uint64_t repl_reads;           /**< dsm_repl_read() calls that read (n > 0) */
    uint64_t repl_cas;             /**< dsm_repl_cas_u64() calls that completed (swapped or not) */
    uint64_t repl_repairs;         /**< copies of replicated objects this rank rewrote because
                                        they were torn or stale (reads, writes, restart) */
} dsm_stats_t;

/** \brief Copy the calling rank's counters into *out.
 * \return ::DSM_OK, ::DSM_ERR_ARG, ::DSM_ERR_STATE */
DSM_API int dsm_stats(dsm_stats_t *out);
/** @} */

/** \defgroup heap Distributed heap
 * Every rank's segment (after the 64 KiB runtime header) is one heap, managed by a TLSF
 * allocator whose metadata live in the segment itself, so any rank can allocate in any
 * rank's heap with RMA alone and a checkpoint of the segment is a checkpoint of the heap.
 * Blocks are 16-byte aligned, by offset and by address on their owner (dsm_gptr_local()):
 * any type, including `long double`, `__int128` and 16-byte SIMD vectors, may live in
 * one. Each block costs a 16-byte header and at least 48 bytes.
 *
 * The owner's cache: a block of 1 to 256 bytes that a rank frees in its own heap is kept
 * by that rank for its own next allocation of that size, and such allocations are
 * carved in batches, so a local dsm_alloc()/dsm_free() pair of a small block usually
 * takes no lock and no atomic. Up to `DSM_HEAP_CACHE` bytes (default 512 KiB, at most
 * 1/16 of the heap, 0 = off) are held so. Cached blocks count as in use in the
 * published usage (dsm_usage()) until the owner returns them to its heap, which it does
 * at its own dsm_usage() of itself, dsm_barrier() (so after a barrier every rank's usage
 * counts live blocks only, until it allocates again), dsm_alloc_all(), dsm_checkpoint()
 * (so an image holds none) and whenever one of its allocations finds the heap full;
 * other ranks never see a cached block as free, and a dsm_free() of one is refused as a
 * second free.
 *
 * Errors common to the allocating calls: ::DSM_ERR_STATE (not initialised),
 * ::DSM_ERR_ARG (out NULL, size 0, size beyond a segment's heap, bad alignment),
 * ::DSM_ERR_NOMEM (no free block large enough; the message names the rank, the size
 * asked, the free bytes and the largest free block), ::DSM_ERR_TIMEOUT (the target's
 * heap lock stayed taken for 30 s: a rank died holding it), ::DSM_ERR_CORRUPT (the
 * target's heap metadata are damaged), ::DSM_ERR_MPI.
 *
 * Thread safety: all calls except the collective ones may be made by any number of
 * threads at once (`DSM_THREADS=multiple`); dsm_alloc_all()/dsm_free_all() are
 * collective and, like every collective, called by one thread per rank.
 * @{ */

/** Published usage of one rank's heap (dsm_usage()). Byte counts are whole blocks,
 * headers included, so in_use + free == capacity at every moment. */
typedef struct dsm_usage {
    uint64_t in_use;       /**< bytes of live blocks, and of blocks in the owner's cache */
    uint64_t free;         /**< bytes of free blocks, including remote frees not yet merged */
    uint64_t largest_free; /**< largest free block in bytes (its usable size is 16 less);
                                a lower bound while remote frees wait to be merged */
    uint64_t blocks;       /**< live blocks, cached ones included */
    uint64_t capacity;     /**< bytes of the heap (segment minus runtime header) */
} dsm_usage_t;

/**
 * \brief Allocate size bytes in the calling rank's heap.
 * \param[in] size bytes wanted, 1 up to the heap's capacity
 * \param[out] out the block's global pointer (16-byte aligned)
 * \return ::DSM_OK or the errors listed for the group
 * \par Collective: no. Completion: the block is usable by any rank on return (tell them
 *      the pointer). Thread safety: yes. Cost: O(1); 1 to 256 bytes usually from the
 *      owner's cache (no lock, no atomic), else two MPI atomics on the own window.
 */
DSM_API int dsm_alloc(size_t size, dsm_gptr_t *out);

/** The largest alignment mpidsm guarantees for an address: every rank's segment starts
 * at an address that is a multiple of it (2 MiB, a huge page on x86-64 and arm64), so
 * the address of offset k of the calling rank's segment (dsm_gptr_local()) is k modulo
 * DSM_MAX_ALIGN, and a block aligned to A <= DSM_MAX_ALIGN by offset is aligned by
 * address. */
#define DSM_MAX_ALIGN ((size_t)2 << 20)

/** \brief As dsm_alloc() with the user bytes aligned to align: the offset and the
 * address on the owning rank are multiples of align, a power of two up to
 * ::DSM_MAX_ALIGN (16 or less is the default alignment). \return as dsm_alloc();
 * ::DSM_ERR_ARG when align is not a power of two, exceeds ::DSM_MAX_ALIGN or the heap. */
DSM_API int dsm_alloc_aligned(size_t size, size_t align, dsm_gptr_t *out);

/** \brief As dsm_alloc() for count elements of size bytes, zero-filled.
 * \return as dsm_alloc(); ::DSM_ERR_ARG also when count * size overflows or is 0 */
DSM_API int dsm_calloc(size_t count, size_t size, dsm_gptr_t *out);

/**
 * \brief Allocate size bytes in rank's heap, one-sided: rank does not take part and may
 *        be computing or allocating at the same time.
 * \param[in] rank any rank (the calling one means dsm_alloc())
 * \return as dsm_alloc(), plus ::DSM_ERR_RANGE (rank outside 0..nranks-1)
 * \par Collective: no. Completion: on return the block is reserved at the target and its
 *      header written; the data are uninitialised. Cost in RMA operations: 5 from the
 *      untouched top of the heap (lock CAS, get roots, put header, put top, release
 *      accumulate), 6 from a free block that stays in its size list (one more get, one
 *      more put); more when a block must move between lists or remote frees must be
 *      merged first. Each operation is one round trip except the puts, flushed once.
 *      Thread safety: yes.
 */
DSM_API int dsm_alloc_on(int rank, size_t size, dsm_gptr_t *out);

/**
 * \brief Free a block, on any rank. A block of another rank is freed one-sided (6 RMA
 *        operations) and merged by its owner's next heap call.
 * \param[in] g a pointer returned by an allocating call and not yet freed
 * \return ::DSM_OK, ::DSM_ERR_STATE, ::DSM_ERR_INVALID (nothing is changed) for: a null
 *         pointer; a pointer outside the address space or into a runtime header; an
 *         interior or made-up pointer (one that is not the start of a live block); a
 *         second free of a block that is still free (not yet merged, waiting on its
 *         owner's pending list after a remote free, or kept in its owner's cache); a
 *         free of a block that has since been merged into a neighbouring free block or
 *         the heap's unused top.
 *         ::DSM_ERR_TIMEOUT, ::DSM_ERR_CORRUPT, ::DSM_ERR_MPI.
 * \par Not caught: a global pointer has no room for a generation (64 bits: rank and
 *      offset), so once the freed address is handed out again by a later allocation
 *      (the owner reuses freed addresses as malloc does, often at once), a free of the
 *      old pointer is a free of the new block and succeeds. Freeing a pointer twice is
 *      a program error whose detection is best effort.
 * \par Collective: no. Completion: the block is free on return. Thread safety: yes; two
 *      frees of one block racing each other are a program error (one is refused when
 *      they are ordered).
 */
DSM_API int dsm_free(dsm_gptr_t g);

/**
 * \brief Symmetric allocation: every rank gets a block of size bytes at the same offset,
 *        so dsm_gptr_make(r, dsm_gptr_offset(*out)) is valid for every rank r.
 * \param[in] size the same on every rank (else ::DSM_ERR_ARG on all)
 * \param[out] out this rank's block
 * \return as dsm_alloc(); ::DSM_ERR_NOMEM when no offset is free on every rank. All ranks
 *         return the same code.
 * \par Collective over dsm_comm(). Cost: a few allreduces and a walk of each heap's block
 *      list (O(blocks)). Remote allocations may run concurrently.
 */
DSM_API int dsm_alloc_all(size_t size, dsm_gptr_t *out);

/** \brief Free a symmetric block on every rank.
 * \param[in] g the pointer from dsm_alloc_all() (any rank's; only the offset is used)
 * \return ::DSM_OK, ::DSM_ERR_INVALID (offsets differ across ranks, null, or not a live
 *         block on some rank: every rank returns an error), ::DSM_ERR_STATE, ::DSM_ERR_MPI
 * \par Collective over dsm_comm(). */
DSM_API int dsm_free_all(dsm_gptr_t g);

/**
 * \brief Read the usage rank publishes in its segment header.
 * \return ::DSM_OK, ::DSM_ERR_ARG (out NULL), ::DSM_ERR_RANGE (bad rank), ::DSM_ERR_STATE,
 *         ::DSM_ERR_MPI
 * \par Collective: no. Completion: one atomic read (MPI_Get_accumulate), each counter is
 *      exact at some moment; counters are updated together with the heap lock's release.
 *      Of the calling rank's own heap, the owner's cache is returned to the heap first
 *      (one heap lock), so in_use and blocks count live blocks only; another rank's
 *      figures count its cached blocks as in use until its next dsm_barrier() or
 *      dsm_usage() of itself (see the group's text).
 *      Thread safety: yes.
 */
DSM_API int dsm_usage(int rank, dsm_usage_t *out);
/** @} */

/** \defgroup placement Placement
 * Where to allocate: the least-loaded rank, or a rank chosen by hashing a key.
 * @{ */

/**
 * \brief Allocate size bytes on a lightly loaded rank, without a collective.
 *
 * Reads the published usage (dsm_usage()) of up to 4 candidate ranks (all of them when
 * there are at most 4 ranks; else the calling rank, the last rank chosen and random
 * others: "power of d choices", whose maximum load is within a few percent of the
 * mean) and allocates on the one with the most free bytes whose largest free block
 * fits; when that fails (full, or a race with other allocators), tries the next, then
 * every rank in turn. After a restart on fewer ranks the candidates are segments, the
 * hosted ones included (see dsm_nsegments()): the block may land in a segment that a
 * rank hosts, and the returned pointer names that segment.
 * \return as dsm_alloc_on(); ::DSM_ERR_NOMEM only when no rank could take the block
 * \par Collective: no. Thread safety: yes.
 */
DSM_API int dsm_alloc_balanced(size_t size, dsm_gptr_t *out);

/**
 * \brief The rank a key belongs to, by jump consistent hashing (Lamping and Veach 2014)
 *        of a 64-bit hash of the key: keys spread evenly, and growing the job from n to
 *        n + 1 ranks moves only 1/(n+1) of them. Pure: the same key gives the same rank
 *        on every rank and in every run with the same rank count.
 *
 * It hashes over dsm_nranks(), the ranks running now, also after a restart on another
 * count (whose extra segments, see dsm_nsegments(), are never chosen). Keys already
 * placed stay where they are: their blocks, and every pointer to them, are valid
 * unchanged. After N -> M ranks (M < N) a key placed on a rank below M is placed there
 * again; only keys of ranks M..N-1, about (N - M) / N of them, now map elsewhere (jump
 * hashing moves no other key), so a program that finds a block by key should look
 * where the key was placed (a root or an index it keeps) rather than recompute
 * dsm_place() for old keys. mpidsm does not migrate blocks: moving one would leave
 * stale every pointer to it that the program stored, which the runtime cannot find.
 * A program that wants old keys on the new ranks copies each block with
 * dsm_alloc_keyed() + dsm_put() and updates its own index, then frees the old block.
 * \param[in] key keylen bytes (may be NULL when keylen is 0)
 * \param[out] rank the owner, 0..nranks-1
 * \return ::DSM_OK, ::DSM_ERR_ARG (key NULL with keylen > 0, rank NULL), ::DSM_ERR_STATE
 * \par Collective: no. Thread safety: yes.
 */
DSM_API int dsm_place(const void *key, size_t keylen, int *rank);

/**
 * \brief Allocate size bytes on the rank dsm_place() names for the key.
 * \return as dsm_alloc_on() (::DSM_ERR_NOMEM when that rank is full: a keyed block never
 *         moves elsewhere, or a later lookup by key would miss it), and as dsm_place()
 * \par Collective: no. Thread safety: yes.
 */
DSM_API int dsm_alloc_keyed(const void *key, size_t keylen, size_t size, dsm_gptr_t *out);
/** @} */

/** \defgroup sync Synchronization: mutexes, reader-writer locks, semaphores, rank locks
 * Lock objects are small structures in global memory at a ::dsm_gptr_t the program
 * chooses (user memory of any rank, ::DSM_MUTEX_SIZE etc. bytes, 8-byte aligned), so
 * they can be embedded in shared data, e.g. one mutex per hash bucket. They are used
 * only through these calls (never with dsm_put()/dsm_get()).
 *
 * \par Ordering (what a release makes visible)
 * Releasing (dsm_mutex_unlock(), dsm_rwlock_unlock(), dsm_sem_post(), dsm_rank_unlock())
 * first completes at their targets ALL operations the calling process issued before,
 * including non-blocking puts whose requests were not waited for (MPI_Win_flush_all),
 * and publishes its local stores to its own segment (MPI_Win_sync). Acquiring (lock,
 * successful trylock, sem wait) synchronises the other way. So everything written
 * before a release, by RMA or by local stores through dsm_gptr_local(), is visible to
 * the next acquirer of the same object, by its gets and by its local loads.
 *
 * \par Ownership and errors
 * Mutexes and rwlocks are owned by the calling thread: the thread that locked unlocks.
 * ::DSM_ERR_STATE, with a message naming the object (rank:offset) and its holder, for:
 * unlocking what this thread does not hold, locking again what it holds (also a read
 * lock twice), destroying a held object, using one that is not initialised (or was
 * destroyed). ::DSM_ERR_BUSY from a try-call is a result, not a failure: it is not
 * logged, does not abort under `DSM_ERRORS=abort` and leaves dsm_last_error() alone.
 * With `DSM_LOCK_TIMEOUT`=s > 0 a wait longer than s seconds returns ::DSM_ERR_TIMEOUT
 * saying who waits for whom; the object stays consistent and the caller does not hold
 * it (see each call). Other codes for all: ::DSM_ERR_ARG (null or misaligned pointer),
 * ::DSM_ERR_RANGE (outside user memory), ::DSM_ERR_MPI.
 *
 * \par Thread safety
 * With `DSM_THREADS=multiple` any thread may call any of these; threads of one rank
 * may hold different locks and queue on the same mutex. Each thread may hold at most 64
 * mutexes and rwlocks at once, and one rank's threads may hold or await at most 255
 * mutexes and rwlock write locks at once (::DSM_ERR_NOMEM beyond).
 * @{ */
/** Bytes of a mutex in global memory (a single 64-bit word). */
#define DSM_MUTEX_SIZE 8
/** Required alignment of a mutex, a rwlock and a semaphore. */
#define DSM_SYNC_ALIGN 8
/** Bytes of a reader-writer lock in global memory. */
#define DSM_RWLOCK_SIZE 32
/** Bytes of a semaphore in global memory. */
#define DSM_SEM_SIZE 8
/** Largest semaphore value (2^40 - 1). */
#define DSM_SEM_VALUE_MAX ((UINT64_C(1) << 40) - 1)

/**
 * \brief Make the ::DSM_MUTEX_SIZE bytes at m a free mutex.
 *
 * An MCS queue lock: waiters queue in FIFO order, each polling a word in its own
 * segment, and the holder hands the lock straight to the next one.
 * \param[in] m where the mutex lives: user memory of any rank, 8-byte aligned
 * \return ::DSM_OK, ::DSM_ERR_STATE (m holds a mutex that is held or awaited)
 * \par Not collective: one rank initialises; others may use it once that is ordered
 *      before their use (e.g. by dsm_barrier()). Completion: on return.
 */
DSM_API int dsm_mutex_init(dsm_gptr_t m);
/**
 * \brief Acquire mutex m, waiting in FIFO order behind earlier callers.
 * Uncontended it costs one remote compare-and-swap. A waiter spins on a word of its
 * own segment; on one node it makes no MPI call for the first microseconds of a wait
 * and then yields its core between polls (sooner when the node has more ranks than
 * processors).
 * \return ::DSM_OK; ::DSM_ERR_STATE (this thread holds m already; m not initialised);
 *         ::DSM_ERR_TIMEOUT (`DSM_LOCK_TIMEOUT` expired: the caller left the queue and does
 *         not hold m; its place is handed on by whoever releases m to it);
 *         ::DSM_ERR_NOMEM (queue nodes exhausted)
 * \par Not collective. Completion: an acquire (see the group's ordering).
 */
DSM_API int dsm_mutex_lock(dsm_gptr_t m);
/** \brief Acquire m only if it is free: one compare-and-swap, never waits.
 * \return ::DSM_OK (acquired), ::DSM_ERR_BUSY (held or awaited by anyone), and as
 *         dsm_mutex_lock() */
DSM_API int dsm_mutex_trylock(dsm_gptr_t m);
/** \brief Release m: complete this process's operations, then hand m to the next waiter
 * (or free it).
 * \return ::DSM_OK, ::DSM_ERR_STATE (this thread does not hold m; the message names the
 *         holder) */
DSM_API int dsm_mutex_unlock(dsm_gptr_t m);
/** \brief Turn a free mutex back into plain memory; later use is ::DSM_ERR_STATE.
 * \return ::DSM_OK, ::DSM_ERR_STATE (held or awaited, with the holder; not initialised) */
DSM_API int dsm_mutex_destroy(dsm_gptr_t m);
/** \brief Allocate a mutex in rank's heap (one-sided, dsm_alloc_on()) and initialise it.
 * \param[in] rank where the mutex lives: put it next to the data it guards
 * \param[out] out the new mutex, ready to use by any rank that learns of it
 * \return ::DSM_OK, and as dsm_alloc_on() \par Not collective. Thread safe. */
DSM_API int dsm_mutex_create(int rank, dsm_gptr_t *out);
/** \brief Destroy a mutex made by dsm_mutex_create() and free its memory.
 * \return as dsm_mutex_destroy() (then nothing is freed), and as dsm_free() */
DSM_API int dsm_mutex_free(dsm_gptr_t m);

/**
 * \brief Make the ::DSM_RWLOCK_SIZE bytes at l a free reader-writer lock.
 *
 * Policy: phase-fair. Readers arriving while a writer holds or awaits the lock wait for
 * that one writer only, then enter together; a writer waits for the readers already in
 * and for the writers queued before it (FIFO). Neither readers nor writers starve.
 * \return ::DSM_OK, ::DSM_ERR_STATE (l holds a lock in use)
 * \par Not collective (as dsm_mutex_init()).
 */
DSM_API int dsm_rwlock_init(dsm_gptr_t l);
/** \brief Acquire l for reading (shared). \return as dsm_mutex_lock(); on
 * ::DSM_ERR_TIMEOUT the caller is not counted as a reader. */
DSM_API int dsm_rwlock_rdlock(dsm_gptr_t l);
/** \brief Acquire l for writing (exclusive). \return as dsm_mutex_lock() */
DSM_API int dsm_rwlock_wrlock(dsm_gptr_t l);
/** \brief Read-lock l unless a writer holds or awaits it; never waits.
 * \return ::DSM_OK, ::DSM_ERR_BUSY, and as dsm_rwlock_rdlock() */
DSM_API int dsm_rwlock_tryrdlock(dsm_gptr_t l);
/** \brief Write-lock l only if nobody holds or awaits it; never waits.
 * \return ::DSM_OK, ::DSM_ERR_BUSY, and as dsm_rwlock_wrlock() */
DSM_API int dsm_rwlock_trywrlock(dsm_gptr_t l);
/** \brief Release the calling thread's read or write hold of l (a release).
 * \return ::DSM_OK, ::DSM_ERR_STATE (not held by this thread) */
DSM_API int dsm_rwlock_unlock(dsm_gptr_t l);
/** \brief Turn a free rwlock back into plain memory.
 * \return ::DSM_OK, ::DSM_ERR_STATE (held, or not initialised) */
DSM_API int dsm_rwlock_destroy(dsm_gptr_t l);

/** \brief Make the ::DSM_SEM_SIZE bytes at s a counting semaphore holding value.
 * \return ::DSM_OK, ::DSM_ERR_ARG (value > ::DSM_SEM_VALUE_MAX)
 * \par Not collective (as dsm_mutex_init()). */
DSM_API int dsm_sem_init(dsm_gptr_t s, uint64_t value);
/** \brief Take one unit of s, waiting while its value is 0 (no FIFO promise).
 * \return ::DSM_OK (an acquire), ::DSM_ERR_STATE (not initialised), ::DSM_ERR_TIMEOUT
 *         (nothing taken) */
DSM_API int dsm_sem_wait(dsm_gptr_t s);
/** \brief Take one unit of s if its value is above 0; never waits.
 * \return ::DSM_OK, ::DSM_ERR_BUSY (value 0), ::DSM_ERR_STATE */
DSM_API int dsm_sem_trywait(dsm_gptr_t s);
/** \brief Add one unit to s (a release). Any thread or rank may post.
 * \return ::DSM_OK, ::DSM_ERR_STATE (not initialised), ::DSM_ERR_RANGE (at the maximum) */
DSM_API int dsm_sem_post(dsm_gptr_t s);
/** \brief *value = the current value of s (a snapshot).
 * \return ::DSM_OK, ::DSM_ERR_ARG (value NULL), ::DSM_ERR_STATE */
DSM_API int dsm_sem_getvalue(dsm_gptr_t s, uint64_t *value);
/** \brief Turn s back into plain memory. \return ::DSM_OK, ::DSM_ERR_STATE */
DSM_API int dsm_sem_destroy(dsm_gptr_t s);

/**
 * \brief Lock rank's whole segment exclusively against other dsm_rank_lock() callers.
 *
 * `MPI_Win_lock(MPI_LOCK_EXCLUSIVE)` on a second, small window, so it never mixes with
 * the data window's epoch. Advisory, like every lock here: dsm_put()/dsm_get() of
 * programs that do not take it are not stopped. Threads of one rank take turns.
 * `DSM_LOCK_TIMEOUT` applies to waiting for another thread of this rank, not to the
 * wait inside MPI_Win_lock.
 * \return ::DSM_OK, ::DSM_ERR_RANGE (bad rank), ::DSM_ERR_STATE (this thread holds it),
 *         ::DSM_ERR_TIMEOUT, ::DSM_ERR_MPI
 * \par Not collective. Completion: an acquire.
 */
DSM_API int dsm_rank_lock(int rank);
/** \brief Release a dsm_rank_lock() (a release).
 * \return ::DSM_OK, ::DSM_ERR_RANGE, ::DSM_ERR_STATE (this thread does not hold it) */
DSM_API int dsm_rank_unlock(int rank);
/** @} */

/** \defgroup ckpt Checkpoint, restart, replicas and recovery
 *
 * A checkpoint is the bytes of every rank's segment (everything mpidsm knows lives there,
 * as offsets) plus the rank-local memory the program registered with dsm_ckpt_protect().
 * dsm_checkpoint() writes one file per rank under `DSM_CKPT_DIR/<job>/<epoch>/` (epoch
 * directories are zero-padded decimal, e.g. `00000003`), each with a header (magic,
 * format, job and program fingerprints, epoch, rank count, rank, layout, segment size,
 * lengths) and a CRC32C over everything, written to a temporary name, fsync'd and renamed. Only
 * when every rank has written does rank 0 write `<epoch>/COMMIT` ("epoch N\nranks R\n..."); an
 * epoch without it never counts. `DSM_CKPT_KEEP` committed epochs are kept. Files are mode 0600,
 * directories 0700. `DSM_CKPT_DIR` must name the same file system on all ranks.
 *
 * The job name is `DSM_CKPT_JOB`, else the program's basename; its directory is the
 * name with every byte outside `[A-Za-z0-9._-]` (and a leading '.') written as `%XX`,
 * so distinct names never share a directory (`exp/1` is `exp%2F1`, `exp 1` is
 * `exp%201`); a name whose directory name would exceed 255 bytes is refused
 * (::DSM_ERR_ENV). The command `dsm-ckpt-dir DIR JOB PROGRAM`, installed beside
 * dsmrun, prints that directory (dsmrun uses it). Each image and COMMIT record names the program
 * that wrote it (its basename). Below `DSM_CKPT_DIR` no symbolic link is followed: a linked job or
 * epoch directory is refused (::DSM_ERR_IO naming it), a numbered link or file in the job directory
 * is no epoch and is never deleted.
 *
 * Restart: with `DSM_RESTART=auto` (or `required`) dsm_init() restores the newest
 * committed epoch whose every rank's image (own file, else the partner's replica file)
 * verifies against this job (layout, segment size, checksums; an epoch of another
 * rank count restores too, see dsm_nsegments()); ranks fall
 * back together to older epochs, each tried once, logging what was rejected and why.
 * An epoch found damaged (some rank has no intact copy: a file missing, cut, flipped,
 * or intact but not this epoch's, e.g. another rank's or epoch's image; or a COMMIT
 * that is not a valid record of that epoch) gets its COMMIT renamed to COMMIT.rejected
 * so no later restart reads or reports it again. An epoch whose COMMIT says another
 * heap size, format or layout, or more segments than this job can host, is skipped
 * (`auto`, logged) and kept;
 * `required` then fails with ::DSM_ERR_MISMATCH naming the difference. Checkpoints of
 * another program under the same job name are neither restored nor overwritten:
 * ::DSM_ERR_MISMATCH under `auto` and `required`. A job directory that exists but
 * cannot be read stops a restart with ::DSM_ERR_IO (it never counts as "no
 * checkpoints"). Every epoch directory counts, however many there are.
 *
 * Levels (`DSM_CKPT_LOCAL_DIR`; the default `auto` turns them on when the job spans more
 * than one node, in `$SIMCLUSTER_NODE_DIR`, else `$TMPDIR`, else `/tmp`, and leaves them
 * off on one node; a path turns them on always; empty turns them off): each rank writes
 * its image to its node's local directory (`<local>/<job>.<tag>/<epoch>/rank-<r>.ckpt`,
 * see dsm_ckpt_dir()), its partner keeps a copy in the partner's
 * node-local directory (`rank-<k>.replica-of-<r>`; partners as for
 * `DSM_CKPT_REPLICAS`, which is implied), and only epochs whose number is a multiple of
 * `DSM_CKPT_FLUSH_EVERY` (default 4; 0 = never) also go to `DSM_CKPT_DIR`. COMMIT stays
 * in `DSM_CKPT_DIR` and names the epoch's levels (`levels local,partner[,shared]`; no
 * such line: shared only). The node-local level survives the rank's process dying and a
 * relaunch on the same node, not the loss of the node's storage; the partner level
 * survives the loss of any one node (the partner is on another node when the job spans
 * nodes), not the loss of both the rank's and its partner's node; the shared level
 * survives the loss of any number of nodes. A restart restores the newest committed
 * epoch in which every rank finds an intact image on a surviving level, tried in that
 * order (own node-local file, the partner's node-local copy sent by the partner, the
 * shared directory), verified as above; when some rank finds none, rank 0 logs that the
 * epoch is lost and whose image, and all ranks fall back together. Node-local copies
 * are found by rank and node, so only a relaunch with the same ranks on the same nodes
 * uses them. Each level keeps `DSM_CKPT_KEEP` epochs (the shared directory: that many
 * with the shared level, plus the newest COMMIT records). `DSM_CKPT_LOCAL_DIR` set on
 * some ranks only, relative, or naming `DSM_CKPT_DIR` makes dsm_init() fail with
 * ::DSM_ERR_ENV. No symbolic link below it is followed. A restart with the levels off
 * skips epochs that have no shared level.
 *
 * Global pointers stay valid because segments are restored at the same offsets. The
 * program then finds its data with dsm_root_get() and gets its protected regions back
 * by registering them again with dsm_ckpt_protect().
 *
 * What is not recovered: writes after the last committed checkpoint; process state not
 * in a segment or a protected region (open files, MPI objects, pointers into
 * process memory); outstanding non-blocking requests; locks. A restore (restart, or
 * dsm_recover() of a rank) brings the heap back exactly as it was at the checkpoint
 * (blocks, usage; its lock free) and empties the restored rank's lock queue nodes, as
 * no waiter survives it: take checkpoints with no mutex, rwlock or semaphore held or
 * awaited, since a lock word in user memory comes back as it was and would name a
 * holder that no longer exists.
 * @{ */
/** Longest name of a protected region or a root, in characters. */
#define DSM_CKPT_NAME_MAX 31

/**
 * \brief Write a coordinated checkpoint of every rank's segment and protected regions.
 * \return ::DSM_OK when the new epoch is committed; ::DSM_ERR_IO (a rank could not
 *         write: full disk, permissions; the epoch is removed and older ones are intact,
 *         on every rank), ::DSM_ERR_NOMEM, ::DSM_ERR_STATE (not initialised, or a segment
 *         is wiped: call dsm_recover() first), ::DSM_ERR_MPI
 * \par Collective. Completes all outstanding RMA first (as dsm_barrier()); no rank
 *      returns before every rank has written its image, so the images form one
 *      consistent cut. Not thread safe: call from one thread per rank, with no other
 *      mpidsm calls in flight.
 */
DSM_API int dsm_checkpoint(void);

/**
 * \brief Commit the epoch an asynchronous dsm_checkpoint() (`DSM_CKPT_ASYNC=1`) is still
 * writing: wait for every rank's background writer, then commit as dsm_checkpoint()
 * does. With `DSM_CKPT_ASYNC=1`, dsm_checkpoint() returns once every rank has copied
 * its image into process memory (and sent it to its partner); the epoch is committed,
 * and a write error reported, by the next dsm_checkpoint(), dsm_checkpoint_maybe()
 * that checkpoints, dsm_ckpt_wait() or dsm_finalize(). Until then dsm_recover() and a
 * restart use the previous committed epoch.
 * \return ::DSM_OK (also when nothing is in flight), and as dsm_checkpoint()
 * \par Collective.
 */
DSM_API int dsm_ckpt_wait(void);

/**
 * \brief Checkpoint when `DSM_CKPT_INTERVAL` seconds (measured by rank 0) have passed
 * since the last checkpoint or dsm_init(); rank 0 decides for all ranks.
 * \param[out] taken whether a checkpoint was committed (may be NULL)
 * \return as dsm_checkpoint(); ::DSM_OK when none was due
 * \par Collective.
 */
DSM_API int dsm_checkpoint_maybe(bool *taken);

/**
 * \brief Include size bytes of rank-local memory at ptr in this rank's checkpoints, under
 * name. Registering an existing name again replaces its pointer and size.
 *
 * After a restart or a recovery, the restored image's region of the same name is copied
 * into ptr by this call (so: dsm_init(), then dsm_ckpt_protect() for each region, then
 * read them); dsm_recover() refills regions that are registered at the time.
 * \return ::DSM_OK, ::DSM_ERR_ARG (NULL ptr, size 0, name empty or longer than
 *         ::DSM_CKPT_NAME_MAX, or a restored region of that name has another size),
 *         ::DSM_ERR_NOMEM (more than 64 regions), ::DSM_ERR_STATE
 * \par Local. The memory must stay valid until dsm_ckpt_unprotect() or dsm_finalize().
 */
DSM_API int dsm_ckpt_protect(void *ptr, size_t size, const char *name);

/** \brief Stop including the region called name in checkpoints.
 * \return ::DSM_OK, ::DSM_ERR_ARG, ::DSM_ERR_NOTFOUND, ::DSM_ERR_STATE  \par Local. */
DSM_API int dsm_ckpt_unprotect(const char *name);

/** \brief The newest epoch committed (or restored) in this run.
 * \return ::DSM_OK, ::DSM_ERR_ARG (NULL), ::DSM_ERR_NOTFOUND (none yet), ::DSM_ERR_STATE
 * \par Local; the same value on every rank. */
DSM_API int dsm_ckpt_epoch(uint64_t *epoch);

/** Checkpoint levels, the indices of dsm_ckpt_cost_t's arrays (see \ref ckpt). */
enum dsm_ckpt_level {
    DSM_CKPT_LEVEL_LOCAL = 0,   /**< the rank's image in its node-local directory */
    DSM_CKPT_LEVEL_PARTNER = 1, /**< its ward's copy: received over MPI and written */
    DSM_CKPT_LEVEL_SHARED = 2,  /**< the rank's image in `DSM_CKPT_DIR` */
};

/** What this rank's part of a checkpoint cost, per level. */
typedef struct dsm_ckpt_cost {
    double seconds[3]; /**< wall seconds this rank (or its writer thread) spent on the level:
                            write, fsync and rename; for the partner level also receiving the
                            ward's image and sending its own */
    uint64_t bytes[3]; /**< bytes this rank wrote to the level's file (0: the epoch lacks
                            the level) */
} dsm_ckpt_cost_t;

/** \brief The per-level cost of this rank's part of the newest checkpoint committed in
 * this run. With the levels off (`DSM_CKPT_LOCAL_DIR`) every image is shared and the
 * partner level is the replica (`DSM_CKPT_REPLICAS`), written beside it.
 * \return ::DSM_OK, ::DSM_ERR_ARG (NULL), ::DSM_ERR_NOTFOUND (none committed in this run),
 *         ::DSM_ERR_STATE
 * \par Local. */
DSM_API int dsm_ckpt_cost(dsm_ckpt_cost_t *cost);

/** \brief Where this rank's files of checkpoint level `level` live: the directory of
 * `epoch` (whether or not it exists), or with `epoch` 0 the job's directory of that
 * level. The node-local job directory is `<DSM_CKPT_LOCAL_DIR>/<job>.<tag>`, the tag (12
 * hex digits) naming `DSM_CKPT_DIR`'s job directory, so two jobs of one name with
 * different `DSM_CKPT_DIR`s never share node-local files. Without the node-local level
 * the partner level is the shared directory (replicas lie beside the images).
 * \param[in] level a ::dsm_ckpt_level
 * \param[in] epoch an epoch number, or 0
 * \param[out] buf receives the path, NUL-terminated
 * \param[in] len bytes at buf
 * \return ::DSM_OK (for ::DSM_CKPT_LEVEL_LOCAL while the node-local level is off: an
 *         empty string), ::DSM_ERR_ARG (NULL buf, bad level, len too small: the message
 *         gives the length needed), ::DSM_ERR_STATE
 * \par Local. */
DSM_API int dsm_ckpt_dir(int level, uint64_t epoch, char *buf, size_t len);

/** \brief Whether dsm_init() restored a checkpoint; if so and epoch is not NULL, *epoch
 * is its number. False when not initialised. \par Local, any thread. */
DSM_API bool dsm_restarted(uint64_t *epoch);

/**
 * \brief Simulate the loss of rank's node: that rank's whole segment is zeroed and the
 * partner replica it holds in memory is dropped.
 * \param[in] rank the rank to wipe; the same value on every rank
 * \return ::DSM_OK, ::DSM_ERR_ARG (out of range or not the same on all ranks),
 *         ::DSM_ERR_STATE, ::DSM_ERR_MPI
 * \par Collective. Completes all outstanding RMA before wiping.
 */
DSM_API int dsm_simulate_failure(int rank);

/**
 * \brief Restore every wiped segment from its partner's in-memory replica
 * (`DSM_CKPT_REPLICAS=1`), else from the last committed epoch's files (own, then
 * replica), verified by checksum; the wiped rank's registered protected regions are
 * refilled too. Global pointers into it work again. Lost: the wiped rank's writes after
 * the last checkpoint. Other ranks' segments are not rolled back, so pointers they hold
 * to blocks allocated on the wiped rank after that checkpoint dangle.
 * \return ::DSM_OK (also when nothing was wiped), ::DSM_ERR_NOTFOUND (no committed
 *         checkpoint in this run), ::DSM_ERR_CORRUPT / ::DSM_ERR_IO /
 *         ::DSM_ERR_UNSUPPORTED (no copy verified; the segment stays wiped), ::DSM_ERR_MPI
 * \par Collective.
 */
DSM_API int dsm_recover(void);

/**
 * \brief Bind name to g in the named-root table, which lives in rank 0's segment (so it
 * is checkpointed and restored with it). ::DSM_GPTR_NULL removes the name.
 * \return ::DSM_OK, ::DSM_ERR_ARG (name empty or longer than ::DSM_CKPT_NAME_MAX),
 *         ::DSM_ERR_RANGE (g outside user memory), ::DSM_ERR_NOTFOUND (removing an
 *         unknown name), ::DSM_ERR_NOMEM (table full: 408 names), ::DSM_ERR_TIMEOUT,
 *         ::DSM_ERR_MPI, ::DSM_ERR_UNSUPPORTED (compare-and-swap refused, see atomics)
 * \par Local, any rank, one-sided (RMA to rank 0 under a table lock). Complete on return.
 */
DSM_API int dsm_root_set(const char *name, dsm_gptr_t g);

/** \brief The pointer bound to name, into *out.
 * \return ::DSM_OK, ::DSM_ERR_NOTFOUND (no such name), ::DSM_ERR_ARG, and as
 *         dsm_root_set() \par Local, any rank, one-sided. */
DSM_API int dsm_root_get(const char *name, dsm_gptr_t *out);
/** @} */

/** \defgroup repl Replicated objects
 * Small objects whose every write that returned survives the loss of any minority of
 * their copies' nodes, even between checkpoints (a key-value store's acknowledged puts,
 * a queue's claimed items).
 *
 * An object of size bytes has R copies on R ranks: on R different nodes when the job
 * spans at least R nodes (else spread over the nodes round-robin, some nodes holding
 * two), on R ranks of one node in a one-node job. Copies live in a store per rank: the
 * file `<DSM_REPL_DIR>/<job>.<tag>/repl/rank-<r>.store` (`DSM_REPL_DIR` auto: the
 * node-local `$SIMCLUSTER_NODE_DIR`, else `$TMPDIR`, else `/tmp`; job and tag as for the
 * node-local checkpoint level, see dsm_ckpt_dir(), so jobs of one name with different
 * `DSM_CKPT_DIR`s never share stores) of
 * `DSM_REPL_SIZE` bytes, mapped into memory and reached by the other ranks through a
 * second MPI window. `DSM_REPL_SIZE=0` (the default) turns replicated objects off:
 * every call then fails with ::DSM_ERR_STATE. A store holds at most
 * ::DSM_REPL_MAX_OBJECTS objects (alloc, free and names are kept in every rank's
 * store); each copy takes 64 + 2 x (32 + size rounded up to 8) bytes of its holder's
 * store. A freed object's space is reused only by an object of the same size and R.
 *
 * \par Guarantees
 * - dsm_repl_write() and dsm_repl_cas_u64() return when every copy holds the new
 *   value (so a majority does: MPI without ULFM has no rank that could miss it while
 *   the job runs). Concurrent writers of one object are ordered by its version word,
 *   kept with the first copy: a writer takes it with a compare-and-swap, writes the
 *   next version into every copy, and gives it back with that version.
 * - Reads and writes are linearizable: dsm_repl_read() returns the newest version
 *   whose write has completed or one being written concurrently, and once a read
 *   returned a version no later read returns an older one.
 * - Every copy holds each version with its number, the object's identity and a CRC32C.
 *   A copy found torn or stale is skipped, logged (warn) and rewritten from an intact
 *   one; ::DSM_ERR_CORRUPT when no copy is intact.
 *
 * \par Failure model
 * A process that dies ends the job (MPI without ULFM); dsmrun relaunches it. The copies
 * outlive the processes: they are in the pages of the store files, which stay on their
 * nodes. With `DSM_RESTART=auto` or `required` (dsmrun --restarts sets auto) dsm_init()
 * finds the stores again (a relaunch with the same ranks on the same nodes) and rebuilds
 * every object: when a majority of its copies is intact it takes the highest version
 * among them, which includes every write that returned, and rewrites the stale and lost
 * copies (a wiped node's) from it. An object with fewer than a majority of intact copies
 * is lost: dsm_init() logs its name, and every call on it fails with ::DSM_ERR_QUORUM
 * naming it, never returning an older value; dsm_repl_free() still frees it. A write
 * that had not returned when the job died may be present or not. The copies on a node
 * are lost with its storage (`simcluster kill --wipe`) or its memory (an OS crash:
 * the stores are not written to disk). With `DSM_RESTART=never` dsm_init() empties the
 * store. A store of another size (`DSM_REPL_SIZE`) counts as lost.
 *
 * A relaunch on another rank count (dsmrun --shrink or --grow, as for checkpoints: see
 * dsm_nsegments()) reads the stores the old ranks left in the store directories of its
 * nodes: per object the highest version held by a majority of its intact copies, as
 * above, and moves every object onto the new ranks with its name, version and bytes
 * (min(R, ranks) copies, placed as dsm_repl_alloc() places them); its old copies
 * are then removed. An object without such a majority is lost as above. Every rank
 * receives each object's bytes once during dsm_init() (memory: the objects' total size
 * for a moment).
 *
 * \par Costs
 * A write takes the version word (one compare-and-swap at the first copy), reads the
 * object from the nearest copy unless this rank wrote or read the current version last,
 * puts the new version (size + 32 bytes) into all R copies at once and completes them
 * with a flush (on one node, where the copies are plain stores, the compare-and-swap
 * that follows completes them), and gives the word back (one compare-and-swap). A read
 * is one atomic read of the version word, plus one get from the nearest copy when this
 * rank's cached version is older. `dsm-bench repl` measures them (docs/PERFORMANCE.md):
 * on one node an 8-byte write at R = 3 took 2.2-3.6x one 8-byte dsm_put() + dsm_flush()
 * in the same run (R = 1: 1.8-1.9x, R = 5: 2.1-3.8x; Open MPI and MPICH on a loaded
 * machine), a read about one put. Across nodes a write is three network round trips in
 * a row (CAS, puts and flush, CAS) against one for a put and flush. On one node with
 * `DSM_DIRECT=0` Open MPI serves the second window with osc pt2pt, whose operations
 * progress when the target rank calls MPI (any mpidsm call).
 *
 * \par Checkpoints
 * dsm_checkpoint() keeps an image of every live object (the object table, each
 * object's version and bytes, from its first copy) in one block of rank 0's heap,
 * bound to the root name "dsm:repl-image" (reserved; the block counts in rank 0's
 * dsm_usage() and is freed by the first checkpoint after the last object is freed), so
 * every epoch holds the objects as they were when it was taken. A restart that
 * restores an epoch and finds no store of the job at all, on any rank (new nodes, or
 * every node's storage lost), lays the stores out from that image, on any rank count,
 * and logs (warn) how many objects it restored and from which epoch: writes after the
 * epoch are not in it, as for the heap. When any store is found, the stores decide
 * (above), and an object without a majority of intact copies is lost, never taken
 * from the image.
 *
 * Thread safety: one thread per rank at a time (the handle caches the object).
 * `DSM_STATS=1` counts their
 * operations with the others (puts, gets, atomics, flushes; bytes put and got) and on
 * their own: each rank's writes, reads and compare-and-swaps that completed, and the
 * torn or stale copies it rewrote (::dsm_stats_t repl_writes, repl_reads, repl_cas,
 * repl_repairs).
 * @{ */
/** Most objects in a store (alive or freed). */
#define DSM_REPL_MAX_OBJECTS 1024
/** Most copies of one object. */
#define DSM_REPL_MAX_COPIES 15
/** A replicated object (process-local handle; valid until dsm_repl_free() or
 * dsm_finalize()). */
typedef struct dsm_repl *dsm_repl_t;

/** \brief Make a replicated object of size zeroed bytes with copies copies, called name.
 * \param[in] name 1 .. ::DSM_CKPT_NAME_MAX characters, unique among live objects
 * \param[in] size 1 .. 2^32 - 1 bytes
 * \param[in] copies 1 .. ::DSM_REPL_MAX_COPIES and at most dsm_nranks()
 * \return ::DSM_OK, ::DSM_ERR_ARG (bad or differing arguments; on every rank),
 *         ::DSM_ERR_BUSY (name names a live object: dsm_repl_attach() it),
 *         ::DSM_ERR_NOMEM (a holder's store is full, or ::DSM_REPL_MAX_OBJECTS reached),
 *         ::DSM_ERR_STATE (not initialised or `DSM_REPL_SIZE=0`), ::DSM_ERR_MPI
 * \par Collective (the same name, size and copies). Complete on return on every rank. */
DSM_API int dsm_repl_alloc(const char *name, size_t size, int copies, dsm_repl_t *out);
/** \brief Whether a live object (also a lost one) is called name: a relaunch finds its
 * objects, a first run makes them. False when not initialised or off. Never fails.
 * \par Local: no communication. */
DSM_API bool dsm_repl_exists(const char *name);
/** \brief The object called name, e.g. after a relaunch.
 * \return ::DSM_OK, ::DSM_ERR_NOTFOUND (no live object of that name), ::DSM_ERR_QUORUM
 *         (it is lost: *out is untouched), ::DSM_ERR_ARG, ::DSM_ERR_STATE
 * \par Local: no communication. */
DSM_API int dsm_repl_attach(const char *name, dsm_repl_t *out);
/** \brief Write n bytes from buf at byte off of o as one new version (n = 0: nothing).
 * \return ::DSM_OK, ::DSM_ERR_ARG (buf NULL with n > 0), ::DSM_ERR_RANGE ([off, off + n)
 *         outside o), ::DSM_ERR_INVALID (not a live object), ::DSM_ERR_QUORUM (o is
 *         lost), ::DSM_ERR_CORRUPT (no intact copy), ::DSM_ERR_TIMEOUT
 *         (`DSM_LOCK_TIMEOUT`), ::DSM_ERR_STATE, ::DSM_ERR_MPI
 * \par Not collective. Completion: every copy holds the version on return. */
DSM_API int dsm_repl_write(dsm_repl_t o, size_t off, const void *buf, size_t n);
/** \brief Read n bytes at byte off of o into buf (linearizable).
 * \return as dsm_repl_write() except ::DSM_ERR_TIMEOUT \par Not collective. */
DSM_API int dsm_repl_read(dsm_repl_t o, size_t off, void *buf, size_t n);
/** \brief Compare-and-swap the uint64_t at byte off of o: *old = its value, and it
 * becomes desired (a new version) if *old == expected.
 * \return as dsm_repl_write(), ::DSM_ERR_ARG (old NULL, off not 8-byte aligned)
 * \par Not collective. Completion: as dsm_repl_write(). */
DSM_API int dsm_repl_cas_u64(dsm_repl_t o, size_t off, uint64_t expected, uint64_t desired,
                             uint64_t *old);
/** \brief Free o (also a lost one) and its copies' space; every handle to it is invalid.
 * \return ::DSM_OK, ::DSM_ERR_INVALID (not a live object; on every rank when on one),
 *         ::DSM_ERR_ARG (the ranks free different objects), ::DSM_ERR_STATE, ::DSM_ERR_MPI
 * \par Collective (the same object); no rank may still use it. */
DSM_API int dsm_repl_free(dsm_repl_t o);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* DSM_H */
