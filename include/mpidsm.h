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
 * - Atomics (`dsm_atomic_*`) are blocking and complete at the target on return. They are
 *   atomic with respect to other `dsm_atomic_*` calls of the same type on the same
 *   location, from any rank, and not with respect to dsm_put()/dsm_get() of it, nor to
 *   atomics of a different type on overlapping bytes. Atomic targets must be naturally
 *   aligned.
 * - Two operations from one rank to the same target location are not ordered unless
 *   the first is complete (blocking call returned, or flushed) before the second starts.
 * - dsm_barrier() completes every outstanding operation of every rank and synchronises
 *   memory: anything written before the barrier by any rank is visible after it to all.
 * - Local loads and stores through dsm_gptr_local() pointers are ordinary memory
 *   accesses: the usual MPI unified-model rules apply, so order them against remote
 *   accesses with a barrier, a lock or an atomic flag.
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
#define DSM_VERSION                                                                      \
    (DSM_VERSION_MAJOR * 10000 + DSM_VERSION_MINOR * 100 + DSM_VERSION_PATCH)
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
    int32_t rank;           /**< rank in dsm_comm() */
    int32_t nranks;         /**< ranks in dsm_comm() */
    int32_t node;           /**< node index, 0..nnodes-1 */
    int32_t nnodes;         /**< nodes the job spans */
    int32_t local_rank;     /**< rank among the ranks of this node */
    int32_t local_ranks;    /**< ranks on this node */
    int32_t numa_nodes;     /**< NUMA nodes of this node (1 without hwloc) */
    int32_t cores;          /**< physical cores of this node */
    int32_t pus;            /**< hardware threads of this node */
    int32_t reserved;       /**< zero */
    uint64_t node_memory;   /**< bytes of memory on this node */
    uint64_t segment_size;  /**< bytes of each rank's segment (all equal) */
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
 * `MPI_THREAD_MULTIPLE` (an already initialised MPI must provide it).
 * \param[in,out] argc,argv passed to MPI_Init_thread when MPI is not yet initialised;
 *                may be NULL
 * \return ::DSM_OK, ::DSM_ERR_STATE (already initialised, MPI finalised, thread level
 *         too low), ::DSM_ERR_ENV, ::DSM_ERR_NOMEM, ::DSM_ERR_MPI, ::DSM_ERR_UNSUPPORTED
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
/** \brief The global pointer for a process address inside this rank's segment.
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
 * Blocking, complete at the target on return, atomic with respect to the same-typed
 * atomics on the same location from any rank. The target must be aligned to the size
 * of the type (::DSM_ERR_ARG otherwise). Fetching variants store the value found
 * before the operation in *old (which may not be NULL).
 * Return codes for all: ::DSM_OK, ::DSM_ERR_ARG, ::DSM_ERR_RANGE, ::DSM_ERR_STATE,
 * ::DSM_ERR_MPI, and ::DSM_ERR_UNSUPPORTED for compare-and-swap on an MPI library with a
 * known broken one that could not be avoided (the message says how to relaunch).
 * @{ */
#define DSM_ATOMIC_DECLARE(T, S)                                                        \
    DSM_API int dsm_atomic_fetch_add_##S(dsm_gptr_t g, T val, T *old);                  \
    DSM_API int dsm_atomic_add_##S(dsm_gptr_t g, T val);                                \
    DSM_API int dsm_atomic_swap_##S(dsm_gptr_t g, T val, T *old);                       \
    DSM_API int dsm_atomic_cas_##S(dsm_gptr_t g, T expected, T desired, T *old);        \
    DSM_API int dsm_atomic_load_##S(dsm_gptr_t g, T *out);                              \
    DSM_API int dsm_atomic_store_##S(dsm_gptr_t g, T val);                              \
    DSM_API int dsm_atomic_fetch_and_##S(dsm_gptr_t g, T val, T *old);                  \
    DSM_API int dsm_atomic_fetch_or_##S(dsm_gptr_t g, T val, T *old);                   \
    DSM_API int dsm_atomic_fetch_xor_##S(dsm_gptr_t g, T val, T *old);                  \
    DSM_API int dsm_atomic_and_##S(dsm_gptr_t g, T val);                                \
    DSM_API int dsm_atomic_or_##S(dsm_gptr_t g, T val);                                 \
    DSM_API int dsm_atomic_xor_##S(dsm_gptr_t g, T val);

/** int32_t: dsm_atomic_{fetch_add,add,swap,cas,load,store,fetch_and,fetch_or,
 * fetch_xor,and,or,xor}_i32 */
DSM_ATOMIC_DECLARE(int32_t, i32)
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
} dsm_stats_t;

/** \brief Copy the calling rank's counters into *out.
 * \return ::DSM_OK, ::DSM_ERR_ARG, ::DSM_ERR_STATE */
DSM_API int dsm_stats(dsm_stats_t *out);
/** @} */

/** \defgroup ckpt Checkpoint, restart, replicas and recovery
 *
 * A checkpoint is the bytes of every rank's segment (everything mpidsm knows lives there,
 * as offsets) plus the rank-local memory the program registered with dsm_ckpt_protect().
 * dsm_checkpoint() writes one file per rank under `DSM_CKPT_DIR/<job>/<epoch>/` (epoch
 * directories are zero-padded decimal, e.g. `00000003`), each with a header (magic,
 * format, job fingerprint, epoch, rank count, rank, layout, segment size, lengths) and
 * a CRC32C over everything, written to a temporary name, fsync'd and renamed. Only when
 * every rank has written does rank 0 write `<epoch>/COMMIT` ("epoch N\nranks R\n...");
 * an epoch without it never counts. `DSM_CKPT_KEEP` committed epochs are kept. Files are
 * mode 0600, directories 0700. `DSM_CKPT_DIR` must name the same file system on all
 * ranks.
 *
 * Restart: with `DSM_RESTART=auto` (or `required`) dsm_init() restores the newest
 * committed epoch whose every rank's image (own file, else the partner's replica file)
 * verifies against this job (rank count, layout, segment size, checksums); ranks fall
 * back together to older epochs, each tried once, logging what was rejected and why.
 * An epoch found damaged (some rank has no intact copy) gets its COMMIT renamed to
 * COMMIT.rejected so no later restart tries it again; one that only does not fit this
 * job (rank count, heap size, format) is left alone.
 * Global pointers stay valid because segments are restored at the same offsets. The
 * program then finds its data with dsm_root_get() and gets its protected regions back
 * by registering them again with dsm_ckpt_protect().
 *
 * What is not recovered: writes after the last committed checkpoint; process state not
 * in a segment or a protected region (open files, MPI objects, pointers into
 * process memory); outstanding non-blocking requests.
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

#ifdef __cplusplus
}
#endif
#endif /* DSM_H */
